/* NTFS on libntfs-3g: the device, the mount, directories, attributes,
 * xattrs, statfs.
 *
 * The library reads the volume through a device-operations table whose
 * reads go to core (vd_vol_read), never to a host file. It is not
 * thread-safe, so every call runs under the mount's lock (ntfs.h).
 *
 * What is shown is what `ntfs-3g -o ro` shows with its default options
 * (ntfs-3g 2022.10, src/ntfs-3g.c), so that one can stand in for the
 * other:
 * - names: the Win32/POSIX names in UTF-8, DOS 8.3 names left out; the
 *   system files ($MFT .. $Extend, records below 16) hidden from listings
 *   but found by name, hidden (FILE_ATTR_HIDDEN) files listed;
 * - inode numbers: the MFT record numbers, so hard links share one;
 * - owners: no user mapping, so every file belongs to the mounting user
 *   (vd_fs_opts uid/gid) with mode 0777 (ntfs-3g's empty umask);
 * - directories: nlink 1, size and blocks of the $I30 index allocation;
 * - reparse points: symlinks and junctions as symlinks, their targets as
 *   ntfs-3g's ntfs_make_symlink translates them; WSL sockets, fifos and
 *   devices as such; any other tag as a symlink to "unsupported reparse
 *   tag 0x...", as ntfs-3g without a plugin for it;
 * - Interix (SFU) fifos, sockets, devices and symlinks as such;
 * - named data streams as user.NAME xattrs; the system.ntfs_* xattrs
 *   (system.ntfs_attrib, _times, _crtime, _reparse_data, _object_id,
 *   _dos_name, _acl, _ea) through the library's own getter, read-only;
 * - times with their 100 ns precision.
 * A volume that is hibernated, marked dirty or whose $LogFile is unclean
 * mounts read-only all the same (ntfs-3g -o ro does too), with one
 * warning line: nothing is replayed or removed.
 *
 * In front of the library we check what a hostile volume could use to
 * lead it astray before it has checked anything: the boot sector's
 * geometry against the volume, and $MFT's first record. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/sysmacros.h>

#include "common/util.h"
#include "fsread/ntfs.h"

#include <ntfs-3g/cache.h>
#include <ntfs-3g/ea.h>
#include <ntfs-3g/logfile.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/ntfstime.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/xattrs.h>

/* Boot sector fields (NTFS boot sector, as libntfs-3g's layout.h and
 * the NTFS documentation of the Linux-NTFS project name them). */
#define NT_BS_OEM 0x03	   /* "NTFS    " */
#define NT_BS_SECTOR 0x0b	   /* le16 bytes per sector */
#define NT_BS_SPC 0x0d	   /* u8 sectors per cluster (>0x80: 2^-n) */
#define NT_BS_TOTAL 0x28	   /* le64 sectors in the volume */
#define NT_BS_MFT_LCN 0x30	   /* le64 first cluster of $MFT */
#define NT_BS_MIRR_LCN 0x38	   /* le64 first cluster of $MFTMirr */
#define NT_BS_MFT_REC 0x40	   /* s8 clusters per record (<0: 2^-n B) */
#define NT_BS_IDX_REC 0x44	   /* s8 clusters per index block */
#define NT_BS_SERIAL 0x48	   /* le64 volume serial number */
#define NT_BS_MAGIC 0x1fe	   /* 0x55 0xaa */

/* ---- the device: libntfs-3g's reads go to core ---- */

struct nt_dev {
	const struct vd_vol *vol;
	struct nt_fs *x; /* its read budget */
	s64 pos; /* for seek + read; used under the mount's lock */
};

static int nt_dev_open(struct ntfs_device *dev, int flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY) {
		errno = EROFS;
		return -1;
	}
	NDevSetOpen(dev);
	NDevSetReadOnly(dev);
	return 0;
}

static int nt_dev_close(struct ntfs_device *dev)
{
	NDevClearOpen(dev);
	return 0;
}

static s64 nt_dev_seek(struct ntfs_device *dev, s64 off, int whence)
{
	struct nt_dev *d = dev->d_private;
	s64 base = whence == SEEK_SET ? 0 :
		   whence == SEEK_CUR ? d->pos :
		   whence == SEEK_END ? (s64)d->vol->len : -1;

	if (base < 0 || (off < 0 && -off > base) ||
	    (off > 0 && off > INT64_MAX - base)) {
		errno = EINVAL;
		return -1;
	}
	d->pos = base + off;
	return d->pos;
}

static s64 nt_dev_pread(struct ntfs_device *dev, void *buf, s64 count,
			  s64 off)
{
	struct nt_dev *d = dev->d_private;
	uint64_t len;

	if (count < 0 || off < 0) {
		errno = EINVAL;
		return -1;
	}
	/* A call that may follow a loop in the volume has a budget of
	 * reads (under the lock, as every device call). */
	if (d->x->read_budget && !--d->x->read_budget) {
		vd_log(VD_LOG_ERR, "%s: ntfs: more than %u reads for one "
		       "lookup: the index B-tree loops", d->vol->name,
		       VD_NTFS_LOOKUP_READS);
		errno = EIO;
		return -1;
	}
	/* As a file: a read at or past the end is short, not an error. */
	if ((uint64_t)off >= d->vol->len)
		return 0;
	len = VD_MIN((uint64_t)count, d->vol->len - (uint64_t)off);
	if (len > SIZE_MAX / 2)
		len = SIZE_MAX / 2;
	if (vd_vol_read(d->vol, buf, (size_t)len, (uint64_t)off)) {
		errno = EIO;
		return -1;
	}
	return (s64)len;
}

static s64 nt_dev_read(struct ntfs_device *dev, void *buf, s64 count)
{
	struct nt_dev *d = dev->d_private;
	s64 got = nt_dev_pread(dev, buf, count, d->pos);

	if (got > 0)
		d->pos += got;
	return got;
}

static s64 nt_dev_write(struct ntfs_device *dev, const void *buf,
			  s64 count)
{
	(void)dev;
	(void)buf;
	(void)count;
	errno = EROFS;
	return -1;
}

static s64 nt_dev_pwrite(struct ntfs_device *dev, const void *buf,
			   s64 count, s64 off)
{
	(void)off;
	return nt_dev_write(dev, buf, count);
}

static int nt_dev_sync(struct ntfs_device *dev)
{
	(void)dev;
	return 0;
}

static int nt_dev_stat(struct ntfs_device *dev, struct stat *st)
{
	struct nt_dev *d = dev->d_private;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0444;
	st->st_size = (off_t)d->vol->len;
	return 0;
}

static int nt_dev_ioctl(struct ntfs_device *dev, unsigned long req,
			  void *arg)
{
	(void)dev;
	(void)req;
	(void)arg;
	errno = ENOTTY;
	return -1;
}

static struct ntfs_device_operations nt_dev_ops = {
	.open = nt_dev_open,
	.close = nt_dev_close,
	.seek = nt_dev_seek,
	.read = nt_dev_read,
	.write = nt_dev_write,
	.pread = nt_dev_pread,
	.pwrite = nt_dev_pwrite,
	.sync = nt_dev_sync,
	.stat = nt_dev_stat,
	.ioctl = nt_dev_ioctl,
};

/* ---- the library's messages ---- */

/* libntfs-3g logs through one global handler: its errors go to our log
 * (at most a line each), its chatter nowhere. */
static int nt_log_fwd(const char *function, const char *file, int line,
			u32 level, void *data, const char *format,
			va_list args)
{
	char msg[256];
	int n, err = errno;

	(void)function;
	(void)file;
	(void)line;
	(void)data;
	if (!(level & (NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
		       NTFS_LOG_LEVEL_CRITICAL)))
		return 0;
	n = vsnprintf(msg, sizeof(msg), format, args);
	if (n < 0)
		return 0;
	while (n > 0 && (size_t)n < sizeof(msg) && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (level & NTFS_LOG_LEVEL_PERROR)
		vd_log(VD_LOG_DEBUG, "libntfs-3g: %s: %s", msg, strerror(err));
	else
		vd_log(VD_LOG_DEBUG, "libntfs-3g: %s", msg);
	errno = err;
	return n;
}

static pthread_once_t nt_once = PTHREAD_ONCE_INIT;

static void nt_init_once(void)
{
	ntfs_log_set_handler(nt_log_fwd);
	ntfs_log_set_levels(NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
			    NTFS_LOG_LEVEL_CRITICAL);
}

/* ---- statfs, info ---- */

static int nt_statfs(struct vd_fs *fs, struct statvfs *st_r)
{
	*st_r = ((struct nt_fs *)fs)->st;
	return 0;
}

static void nt_info(struct vd_fs *fs, struct vd_fs_info *i)
{
	*i = ((struct nt_fs *)fs)->info;
}

/* As ntfs_fuse_statfs, once: the counts do not change. */
static void nt_statfs_init(struct nt_fs *x, uint64_t serial)
{
	ntfs_volume *vol = x->vol;
	struct statvfs *st = &x->st;
	s64 fr = vol->free_clusters < 0 ? 0 : vol->free_clusters, inodes;
	int delta = vol->cluster_size_bits - vol->mft_record_size_bits;

	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = vol->cluster_size;
	st->f_blocks = (fsblkcnt_t)vol->nr_clusters;
	st->f_bfree = st->f_bavail = (fsblkcnt_t)fr;
	inodes = delta >= 0 ? fr << delta : fr >> -delta;
	st->f_files = (fsfilcnt_t)((vol->mftbmp_na->allocated_size << 3) +
				   inodes);
	inodes += vol->free_mft_records;
	st->f_ffree = st->f_favail = (fsfilcnt_t)(inodes < 0 ? 0 : inodes);
	st->f_namemax = NTFS_MAX_NAME_LEN;
	st->f_fsid = (unsigned long)serial;
	st->f_flag = ST_RDONLY;
}

/* ---- mount ---- */

static int nt_probe(const struct vd_vol *v)
{
	uint8_t b[11];

	return v->len >= 4096 && !vd_vol_read(v, b, sizeof(b), 0) &&
	       !memcmp(b + NT_BS_OEM, "NTFS    ", 8);
}

/* Record sizes: a signed byte, clusters when positive, 2^-n bytes when
 * negative (layout.h: clusters_per_mft_record). 0 when invalid. */
static uint32_t nt_rec_size(int8_t c, uint32_t cluster)
{
	if (c > 0)
		return (uint64_t)c * cluster <= 65536 ? (uint32_t)c * cluster : 0;
	if (c < -16 || c > -8)
		return 0;
	return 1u << -c;
}

/* What the library would trust before checking: the boot sector and the
 * first $MFT record. Also reads the serial for info. */
static int nt_check_boot(const struct vd_vol *v, uint64_t *serial_r,
			   uint32_t *cluster_r, uint64_t *clusters_r,
			   struct vd_err *e)
{
	uint8_t bs[512], *rec = NULL;
	uint32_t sector, cluster, mrec, irec, spc_raw;
	uint64_t total, clusters, mft_lcn, mirr_lcn;
	int ret = vd_vol_read(v, bs, sizeof(bs), 0);

	if (ret)
		return vd_fail(e, ret, "%s: ntfs: boot sector unreadable",
			       v->name);
	sector = get_le16(bs + NT_BS_SECTOR);
	if (sector < 256 || sector > 4096 || (sector & (sector - 1)))
		return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector bytes per "
			       "sector %u is not a power of two in 256..4096",
			       v->name, sector);
	spc_raw = bs[NT_BS_SPC];
	if (spc_raw > 0x80) {
		/* 2^(256 - n) sectors: clusters past 64 KiB (Windows 10) */
		if (256 - spc_raw > 12)
			return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector "
				       "sectors per cluster 0x%x out of range",
				       v->name, spc_raw);
		cluster = sector << (256 - spc_raw);
	} else if (spc_raw && !(spc_raw & (spc_raw - 1))) {
		cluster = sector * spc_raw;
	} else {
		return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector sectors "
			       "per cluster %u is not a power of two", v->name,
			       spc_raw);
	}
	if (cluster > (2u << 20))
		return vd_fail(e, -EUCLEAN, "%s: ntfs: cluster size %u is over "
			       "2 MiB", v->name, cluster);
	total = get_le64(bs + NT_BS_TOTAL);
	if (total > v->len / sector)
		return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector sector count "
			       "%" PRIu64 " exceeds the volume (%" PRIu64
			       " sectors of %u bytes)", v->name, total,
			       v->len / sector, sector);
	clusters = total / (cluster / sector);
	mft_lcn = get_le64(bs + NT_BS_MFT_LCN);
	mirr_lcn = get_le64(bs + NT_BS_MIRR_LCN);
	if (mft_lcn >= clusters || mirr_lcn >= clusters)
		return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector $MFT cluster "
			       "%" PRIu64 " or $MFTMirr cluster %" PRIu64
			       " lies past the volume (%" PRIu64 " clusters)",
			       v->name, mft_lcn, mirr_lcn, clusters);
	mrec = nt_rec_size((int8_t)bs[NT_BS_MFT_REC], cluster);
	irec = nt_rec_size((int8_t)bs[NT_BS_IDX_REC], cluster);
	if (mrec < 256 || mrec > 65536 || mrec < sector / 2 ||
	    (mrec & (mrec - 1)) || irec < 256 || irec > 65536 ||
	    (irec & (irec - 1)))
		return vd_fail(e, -EUCLEAN, "%s: ntfs: boot sector record "
			       "sizes (MFT field %d, index field %d) are not "
			       "powers of two in 256..65536", v->name,
			       (int8_t)bs[NT_BS_MFT_REC],
			       (int8_t)bs[NT_BS_IDX_REC]);
	if (!vd_range_ok(mft_lcn * cluster, mrec, clusters * cluster))
		return vd_fail(e, -EUCLEAN, "%s: ntfs: $MFT record 0 lies past "
			       "the volume", v->name);
	/* $MFT record 0: "FILE", and its update sequence array inside the
	 * record with one entry per 512 bytes plus the sequence number. */
	rec = malloc(mrec);
	if (!rec)
		return -ENOMEM;
	ret = vd_vol_read(v, rec, mrec, mft_lcn * cluster);
	if (ret) {
		free(rec);
		return vd_fail(e, ret, "%s: ntfs: $MFT record 0 unreadable",
			       v->name);
	}
	{
		uint32_t usa_ofs = get_le16(rec + 4), usa_cnt = get_le16(rec + 6);
		uint16_t usn = get_le16(rec + usa_ofs < rec + mrec - 1 ?
						rec + usa_ofs : rec);
		bool ok = !memcmp(rec, "FILE", 4) &&
			  usa_cnt == mrec / 512 + 1 && !(usa_ofs & 1) &&
			  usa_ofs >= 0x28 && usa_ofs + 2 * usa_cnt <= 512;

		for (uint32_t i = 1; ok && i < usa_cnt; i++)
			ok = get_le16(rec + i * 512 - 2) == usn;
		free(rec);
		if (!ok)
			return vd_fail(e, -EUCLEAN, "%s: ntfs: $MFT record 0 "
				       "at cluster %" PRIu64 " is damaged (bad "
				       "magic or update sequence)", v->name,
				       mft_lcn);
	}
	*serial_r = get_le64(bs + NT_BS_SERIAL);
	*cluster_r = cluster;
	*clusters_r = clusters;
	return 0;
}

static void nt_unmount(struct vd_fs *fs)
{
	struct nt_fs *x = (struct nt_fs *)fs;

	if (!x)
		return;
	if (x->vol)
		ntfs_umount(x->vol, FALSE); /* frees the device too */
	else if (x->dev)
		ntfs_device_free(x->dev);
	free(x->dev_priv);
	free(x->link_root);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

/* Say once at mount what Windows left: hibernation (Fast Startup), the
 * dirty flag, an unclean $LogFile. Read-only needs none of it undone. */
static void nt_check_state(struct nt_fs *x)
{
	ntfs_volume *vol = x->vol;
	const char *why[3];
	unsigned n = 0;
	ntfs_inode *lni;
	ntfs_attr *na;

	if (ntfs_volume_check_hiberfile(vol, 0) < 0 && errno == EPERM)
		why[n++] = "Windows is hibernated (Fast Startup)";
	if (vol->flags & VOLUME_IS_DIRTY)
		why[n++] = "the volume is marked dirty";
	lni = ntfs_inode_open(vol, FILE_LogFile);
	na = lni ? ntfs_attr_open(lni, AT_DATA, VD_AT_UNNAMED, 0) : NULL;
	if (na) {
		RESTART_PAGE_HEADER *rp = NULL;

		if (!ntfs_check_logfile(na, &rp) ||
		    !ntfs_is_logfile_clean(na, rp))
			why[n++] = "its $LogFile is not clean";
		free(rp);
		ntfs_attr_close(na);
	}
	if (lni)
		ntfs_inode_close(lni);
	if (n)
		vd_log(VD_LOG_WARN, "%s: ntfs: %s%s%s%s%s; showing it read-only "
		       "as last written, which may miss recent changes",
		       x->name, why[0], n > 1 ? ", " : "", n > 1 ? why[1] : "",
		       n > 2 ? ", " : "", n > 2 ? why[2] : "");
	x->info.needed_recovery = n > 0;
}

static int nt_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		      struct vd_fs **fs_r, struct vd_err *e)
{
	struct nt_fs *x = calloc(1, sizeof(*x));
	struct nt_dev *d;
	uint64_t serial = 0;
	int ret;

	if (!x)
		return -ENOMEM;
	pthread_once(&nt_once, nt_init_once);
	x->base.ops = &vd_fs_ntfs;
	x->base.vol = v;
	x->name = v->name;
	x->uid = o->uid;
	x->gid = o->gid;
	x->link_root = strdup(o->link_root ? o->link_root : "");
	if (!x->link_root) {
		free(x);
		return -ENOMEM;
	}
	pthread_mutex_init(&x->lock, NULL);
	ret = nt_check_boot(v, &serial, &x->cluster, &x->clusters, e);
	if (ret)
		goto fail;
	if (vd_lazy_need(&vd_lazy_ntfs3g)) {
		ret = vd_fail(e, -ENOSYS, "%s: NTFS needs libntfs-3g, which "
			      "cannot be loaded", v->name);
		goto fail;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		ret = -ENOMEM;
		goto fail;
	}
	d->vol = v;
	d->x = x;
	x->dev_priv = d;
	x->dev = ntfs_device_alloc(v->name, 0, &nt_dev_ops, d);
	if (!x->dev) {
		ret = -ENOMEM;
		goto fail;
	}
	/* As ntfs-3g -o ro: read-only, so neither the hibernation file nor
	 * the log is looked at or touched by the mount itself. */
	errno = 0;
	x->vol = ntfs_device_mount(x->dev, NTFS_MNT_RDONLY);
	if (!x->vol) {
		int err = errno;

		ret = vd_fail(e, err == ENOMEM ? -ENOMEM :
				 err == EOPNOTSUPP ? -ENOTSUP : -EUCLEAN,
			      "%s: ntfs: libntfs-3g refused the volume: %s",
			      v->name, strerror(err ? err : EIO));
		goto fail;
	}
	ntfs_create_lru_caches(x->vol);
	/* ntfs-3g's defaults: system files hidden, hidden files shown,
	 * dot files shown. */
	ntfs_set_shown_files(x->vol, FALSE, TRUE, FALSE);
	if (ntfs_volume_get_free_space(x->vol) < 0)
		vd_log(VD_LOG_WARN, "%s: ntfs: free space unknown ($Bitmap "
		       "unreadable)", v->name);
	nt_check_state(x);
	nt_statfs_init(x, serial);
	snprintf(x->info.type, sizeof(x->info.type), "ntfs");
	snprintf(x->info.subtype, sizeof(x->info.subtype), "%u.%u",
		 x->vol->major_ver, x->vol->minor_ver);
	if (x->vol->vol_name)
		snprintf(x->info.label, sizeof(x->info.label), "%s",
			 x->vol->vol_name);
	/* As blkid shows an NTFS serial: 16 hex digits. */
	snprintf(x->info.uuid, sizeof(x->info.uuid), "%016" PRIX64, serial);
	x->info.cluster_size = x->cluster;
	*fs_r = &x->base;
	return 0;
fail:
	nt_unmount(&x->base);
	return ret;
}

const struct vd_fs_ops vd_fs_ntfs = {
	.name = "ntfs",
	.probe = nt_probe,
	.mount = nt_mount,
	.unmount = nt_unmount,
	.root = vd_ntfs_root,
	.lookup = vd_ntfs_lookup,
	.getattr = vd_ntfs_getattr,
	.readdir = vd_ntfs_readdir,
	.open = vd_ntfs_open,
	.read = vd_ntfs_read,
	.seek = vd_ntfs_seek,
	.map = vd_ntfs_map,
	.release = vd_ntfs_release,
	.readlink = vd_ntfs_readlink,
	.listxattr = vd_ntfs_listxattr,
	.getxattr = vd_ntfs_getxattr,
	.statfs = nt_statfs,
	.info = nt_info,
};
