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

/* ntfs-3g's text for a reparse point it cannot translate
 * (src/ntfs-3g.c: ntfs_bad_reparse), and the size it reports for it. */
#define NT_BAD_REPARSE "unsupported reparse tag 0x%08lx"
#define NT_BAD_REPARSE_LEN (sizeof(NT_BAD_REPARSE) + 2)

/* The prefix ntfs-3g gives to streams that hold xattrs of the security,
 * trusted and unmapped system namespaces (xattr_ntfs_3g). */
#define NT_XATTR_PREFIX "ntfs-3g."

/* Interix (Services for Unix) special files: an 8-byte magic, then the
 * device numbers (le64 major, le64 minor) or a UTF-16 symlink target. */
#define NT_INTX_MAGIC_LEN 8
#define NT_INTX_DEV_LEN 24
#define NT_INTX_LNK 0x014B4E4C78746E49ULL /* "IntxLNK\1" */
#define NT_INTX_CHR 0x0052484378746E49ULL /* "IntxCHR\0" */
#define NT_INTX_BLK 0x004B4C4278746E49ULL /* "IntxBLK\0" */
#define NT_PATH_MAX 4096		    /* PATH_MAX, as ntfs-3g bounds */

/* ---- the device: libntfs-3g's reads go to core ---- */

struct nt_dev {
	const struct vd_vol *vol;
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

/* ---- inodes and attributes ---- */

ntfs_inode *vd_ntfs_iget(struct nt_fs *x, uint64_t ino, int *err_r)
{
	ntfs_inode *ni;

	if (ino >= (1ULL << 48)) {
		*err_r = -ENOENT;
		return NULL;
	}
	errno = 0;
	ni = ntfs_inode_open(x->vol, (MFT_REF)ino);
	if (ni)
		return ni;
	*err_r = errno == ENOENT ? -ENOENT : errno == ENOMEM ? -ENOMEM : -EIO;
	if (*err_r == -EIO)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 " "
		       "unreadable: %s", x->name, ino, strerror(errno ? errno :
								 EIO));
	return NULL;
}

static uint64_t nt_root(struct vd_fs *fs)
{
	(void)fs;
	return FILE_root;
}

/* The reparse tag of ni (host order), or 0 when it has none readable. */
static uint32_t nt_reparse_tag(ntfs_inode *ni)
{
	REPARSE_POINT *r = ntfs_get_reparse_point(ni);
	uint32_t tag = 0;

	if (r) {
		tag = le32_to_cpu(r->reparse_tag);
		free(r);
	}
	return tag;
}

/* Whether ntfs-3g has a built-in translation for the tag (its internal
 * plugins: junction_getattr and wsl_getattr). Tags are compared as
 * ntfs-3g selects plugins, under IO_REPARSE_PLUGIN_SELECT. */
enum nt_rp { NT_RP_OTHER, NT_RP_LINK, NT_RP_WSL };

static enum nt_rp nt_rp_kind(uint32_t tag)
{
	uint32_t sel = tag & le32_to_cpu(IO_REPARSE_PLUGIN_SELECT);

	if (sel == le32_to_cpu(IO_REPARSE_TAG_MOUNT_POINT) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_SYMLINK) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_SYMLINK))
		return NT_RP_LINK;
	if (sel == le32_to_cpu(IO_REPARSE_TAG_AF_UNIX) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_FIFO) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_CHR) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_BLK))
		return NT_RP_WSL;
	return NT_RP_OTHER;
}

/* The mount point ntfs-3g would put in front of absolute targets. We are
 * not told where the tree is shown, so absolute targets are given from
 * the filesystem's root ("/dir/target"). */
static const char nt_mnt_point[] = "";

/* The target of a symlink-like reparse point as ntfs-3g gives it: the
 * translation, or the "unsupported" text when there is none. *t_r is
 * malloc'ed. Under the lock. */
static int nt_rp_target(ntfs_inode *ni, char **t_r)
{
	uint32_t tag = nt_reparse_tag(ni);
	char *t = NULL;

	if (nt_rp_kind(tag) == NT_RP_LINK) {
		errno = 0;
		t = ntfs_make_symlink(ni, nt_mnt_point);
		if (!t && errno != EOPNOTSUPP)
			return errno == ENOMEM ? -ENOMEM : -EIO;
	}
	if (!t) {
		t = malloc(NT_BAD_REPARSE_LEN + 1);
		if (!t)
			return -ENOMEM;
		snprintf(t, NT_BAD_REPARSE_LEN + 1, NT_BAD_REPARSE,
			 (long)tag);
	}
	*t_r = t;
	return 0;
}

/* A file's unnamed $DATA read whole (at most max bytes), or NULL. */
static uint8_t *nt_read_small(ntfs_inode *ni, s64 max, s64 *len_r)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	uint8_t *b = NULL;

	if (!na)
		return NULL;
	if (na->data_size > 0 && na->data_size <= max) {
		b = malloc((size_t)na->data_size);
		if (b && ntfs_attr_pread(na, 0, na->data_size, b) !=
				 na->data_size) {
			free(b);
			b = NULL;
		}
		*len_r = na->data_size;
	}
	ntfs_attr_close(na);
	return b;
}

/* Attributes as ntfs_fuse_getattr gives them. Under the lock. */
static int nt_stat(struct nt_fs *x, ntfs_inode *ni, struct vd_fs_attr *a)
{
	bool perms = true;
	ntfs_attr *na;

	memset(a, 0, sizeof(*a));
	a->nlink = le16_to_cpu(ni->mrec->link_count);
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		uint32_t tag = nt_reparse_tag(ni);
		enum nt_rp kind = nt_rp_kind(tag);
		int ret;

		a->blocks = ((uint64_t)ni->allocated_size + 511) >> 9;
		a->mode = S_IFLNK;
		a->size = NT_BAD_REPARSE_LEN;
		if (kind == NT_RP_LINK) {
			char *t = NULL;

			ret = nt_rp_target(ni, &t);
			if (ret)
				return ret;
			a->size = strlen(t);
			free(t);
		} else if (kind == NT_RP_WSL) {
			REPARSE_POINT *r = ntfs_get_reparse_point(ni);
			dev_t rdev = 0;

			if (r && !ntfs_reparse_check_wsl(ni, r)) {
				a->size = 0;
				a->blocks = 0;
				if (tag == le32_to_cpu(IO_REPARSE_TAG_AF_UNIX)) {
					a->mode = S_IFSOCK;
				} else if (tag == le32_to_cpu(
						   IO_REPARSE_TAG_LX_FIFO)) {
					a->mode = S_IFIFO;
				} else {
					a->mode = tag == le32_to_cpu(
						   IO_REPARSE_TAG_LX_CHR) ?
							  S_IFCHR : S_IFBLK;
					if (!ntfs_ea_check_wsldev(ni, &rdev))
						a->rdev = rdev;
				}
			}
			free(r);
		}
	} else if (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) {
		a->mode = S_IFDIR | 0777;
		na = ntfs_attr_open(ni, AT_INDEX_ALLOCATION, NTFS_INDEX_I30, 4);
		if (na) {
			a->size = (uint64_t)na->data_size;
			a->blocks = (uint64_t)na->allocated_size >> 9;
			ntfs_attr_close(na);
		} else {
			a->size = (uint64_t)ni->data_size;
			a->blocks = (uint64_t)ni->allocated_size >> 9;
		}
		a->nlink = 1; /* as ntfs-3g: "make find(1) work" */
	} else {
		a->mode = S_IFREG;
		a->size = (uint64_t)ni->data_size;
		a->blocks = ((uint64_t)ni->allocated_size + 511) >> 9;
		if (ni->flags & FILE_ATTR_SYSTEM) {
			na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
			if (!na) {
				/* ntfs-3g leaves owner and mode bits unset
				 * for a system file with no data. */
				perms = false;
				goto times;
			}
			if (!(ni->flags & FILE_ATTR_HIDDEN)) {
				if (na->data_size == 0)
					a->mode = S_IFIFO;
				if (na->data_size == 1)
					a->mode = S_IFSOCK;
			}
			if (na->data_size > NT_INTX_MAGIC_LEN &&
			    na->data_size <= NT_INTX_MAGIC_LEN +
						     2 * NT_PATH_MAX) {
				s64 len = 0;
				uint8_t *b;

				ntfs_attr_close(na);
				na = NULL;
				b = nt_read_small(ni, NT_INTX_MAGIC_LEN +
							2 * NT_PATH_MAX,
						    &len);
				if (!b)
					return -EIO;
				if ((get_le64(b) == NT_INTX_BLK ||
				     get_le64(b) == NT_INTX_CHR) &&
				    len == NT_INTX_DEV_LEN) {
					a->mode = get_le64(b) == NT_INTX_BLK ?
							  S_IFBLK : S_IFCHR;
					a->rdev = makedev(
						(unsigned)get_le64(b + 8),
						(unsigned)get_le64(b + 16));
				}
				if (get_le64(b) == NT_INTX_LNK) {
					char *t = NULL;
					int n = ntfs_ucstombs(
						(ntfschar *)(b + 8),
						(int)((len - 8) / 2), &t, 0);

					if (n < 0) {
						free(b);
						return -EIO;
					}
					free(t);
					a->mode = S_IFLNK;
					a->size = (uint64_t)n;
				}
				free(b);
			}
			if (na)
				ntfs_attr_close(na);
		}
		a->mode |= 0777;
	}
	a->uid = x->uid;
	a->gid = x->gid;
	if (S_ISLNK(a->mode))
		a->mode |= 0777;
times:
	if (!perms)
		a->mode &= S_IFMT;
	a->ino = ni->mft_no;
	a->atime = ntfs2timespec(ni->last_access_time);
	a->ctime = ntfs2timespec(ni->last_mft_change_time);
	a->mtime = ntfs2timespec(ni->last_data_change_time);
	return 0;
}

static int nt_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_inode *ni;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (ni) {
		ret = nt_stat(x, ni, a);
		ntfs_inode_close(ni);
	}
	pthread_mutex_unlock(&x->lock);
	if (ret == -EIO)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": "
		       "attributes unreadable", x->name, ino);
	return ret;
}

/* ---- directories ---- */

/* Cookies: ntfs_readdir's positions (0 ".", 1 "..", then the place of
 * an index entry) plus one, so 0 is the start; NT_END after the last. */
#define NT_END ((uint64_t)INT64_MAX)

struct nt_rd {
	struct nt_fs *x;
	vd_fs_fill fill;
	void *arg;
	/* The entry last seen is held back until the next one gives the
	 * cookie that resumes after it. */
	char *name;
	uint64_t ino;
	unsigned type;
	bool full;  /* fill said stop */
	int err;
	s64 skip;   /* entries before this position were given already */
};

static unsigned nt_dtype(struct nt_fs *x, unsigned dt, MFT_REF mref)
{
	struct vd_fs_attr a;
	ntfs_inode *ni;
	int ret;

	switch (dt) {
	case NTFS_DT_DIR:
		return DT_DIR;
	case NTFS_DT_LNK:
		return DT_LNK;
	case NTFS_DT_FIFO:
		return DT_FIFO;
	case NTFS_DT_SOCK:
		return DT_SOCK;
	case NTFS_DT_BLK:
		return DT_BLK;
	case NTFS_DT_CHR:
		return DT_CHR;
	case NTFS_DT_REPARSE:
		/* As ntfs-3g's filler: the type the reparse point is shown
		 * with. */
		ni = vd_ntfs_iget(x, MREF(mref), &ret);
		if (!ni)
			return DT_LNK;
		ret = nt_stat(x, ni, &a);
		ntfs_inode_close(ni);
		return ret ? DT_LNK : IFTODT(a.mode);
	default:
		return DT_REG;
	}
}

/* Emit the held-back entry, resuming at next. */
static int nt_rd_flush(struct nt_rd *r, uint64_t next)
{
	int stop;

	if (!r->name)
		return 0;
	stop = r->fill(r->arg, r->name, r->ino, r->type, next);
	free(r->name);
	r->name = NULL;
	if (stop)
		r->full = true;
	return stop;
}

static int nt_rd_one(void *arg, const ntfschar *name, const int name_len,
		       const int name_type, const s64 pos, const MFT_REF mref,
		       const unsigned dt_type)
{
	struct nt_rd *r = arg;
	char *s = NULL;

	if (name_type == FILE_NAME_DOS || pos < r->skip)
		return 0;
	if (nt_rd_flush(r, (uint64_t)pos + 1))
		return 1;
	if (ntfs_ucstombs(name, name_len, &s, 0) < 0) {
		vd_log(VD_LOG_ERR, "%s: ntfs: a name in a directory (record "
		       "%llu) is not valid UTF-16", r->x->name,
		       (unsigned long long)MREF(mref));
		r->err = -EIO;
		return 1;
	}
	r->name = s;
	r->ino = MREF(mref);
	r->type = nt_dtype(r->x, dt_type, mref);
	return 0;
}

static int nt_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
			vd_fs_fill fill, void *arg)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	struct nt_rd r = { .x = x, .fill = fill, .arg = arg };
	ntfs_inode *ni;
	s64 pos;
	int ret;

	if (cookie == NT_END)
		return 0;
	if (cookie > (uint64_t)INT64_MAX)
		return -EINVAL;
	pos = cookie ? (s64)cookie - 1 : 0;
	pthread_mutex_lock(&x->lock);
	/* libntfs-3g 2022.10's ntfs_readdir misreads the index bitmap when
	 * it resumes at a block whose number is not a multiple of 8 (it
	 * tests bit 0 of that block's bitmap byte, not the block's bit): it
	 * then reads blocks that are not in use. Resume at the first block
	 * of that group of 8 and skip what was given. Positions past the
	 * index root (an MFT record's size) are index blocks' byte offsets
	 * plus the record size (dir.c: ntfs_filldir). */
	if ((u64)pos >= x->vol->mft_record_size) {
		s64 blk = (pos - x->vol->mft_record_size) >>
			  x->vol->indx_record_size_bits;

		r.skip = pos;
		pos = x->vol->mft_record_size +
		      ((blk & ~(s64)7) << x->vol->indx_record_size_bits);
	}
	ni = vd_ntfs_iget(x, dir, &ret);
	if (!ni)
		goto out;
	if (!(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) ||
	    (ni->flags & FILE_ATTR_REPARSE_POINT)) {
		ret = -ENOTDIR;
	} else if (ntfs_readdir(ni, &pos, &r, nt_rd_one) && !r.full &&
		   !r.err) {
		vd_log(VD_LOG_ERR, "%s: ntfs: directory (record %" PRIu64
		       ") unreadable: %s", x->name, dir, strerror(errno));
		ret = -EIO;
	} else {
		ret = r.err;
		if (!ret && !r.full)
			nt_rd_flush(&r, NT_END);
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	free(r.name);
	return ret;
}

static int nt_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		       uint64_t *ino_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_inode *ni;
	u64 mref;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, dir, &ret);
	if (!ni)
		goto out;
	if (!(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) ||
	    (ni->flags & FILE_ATTR_REPARSE_POINT)) {
		ret = -ENOTDIR;
	} else {
		errno = 0;
		mref = ntfs_inode_lookup_by_mbsname(ni, name);
		if (mref == (u64)-1) {
			ret = errno == ENOENT || errno == EINVAL ||
					      errno == ENAMETOOLONG ?
				      -ENOENT : -EIO;
			if (ret == -EIO)
				vd_log(VD_LOG_ERR, "%s: ntfs: lookup in "
				       "directory (record %" PRIu64 ") failed:"
				       " %s", x->name, dir, strerror(errno));
		} else {
			*ino_r = MREF(mref);
			ret = 0;
		}
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* ---- symlinks ---- */

static int nt_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
			 size_t size)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	char *t = NULL;
	ntfs_inode *ni;
	int ret;

	if (!size)
		return -EINVAL;
	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		ret = nt_rp_target(ni, &t);
	} else if (ni->flags & FILE_ATTR_SYSTEM) {
		s64 len = 0;
		uint8_t *b = nt_read_small(ni, NT_INTX_MAGIC_LEN +
						     2 * NT_PATH_MAX, &len);

		if (!b || get_le64(b) != NT_INTX_LNK ||
		    len <= NT_INTX_MAGIC_LEN)
			ret = -EINVAL;
		else if (ntfs_ucstombs((ntfschar *)(b + 8),
				       (int)((len - 8) / 2), &t, 0) < 0)
			ret = -EIO;
		else
			ret = 0;
		free(b);
	} else {
		ret = -EINVAL;
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	if (!ret) {
		size_t n = VD_MIN(strlen(t), size - 1);

		memcpy(buf, t, n);
		buf[n] = '\0';
	}
	free(t);
	return ret;
}

/* ---- xattrs ---- */

/* ntfs-3g's user_xattrs_allowed: streams of symlinks, fifos, devices
 * and system files are not shown. Under the lock. */
static bool nt_xattrs_allowed(struct nt_fs *x, ntfs_inode *ni)
{
	struct vd_fs_attr a;
	u32 dt;

	if (!(ni->flags & (FILE_ATTR_SYSTEM | FILE_ATTR_REPARSE_POINT)) ||
	    ni->mft_no == FILE_root)
		return true;
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		uint32_t tag = nt_reparse_tag(ni);

		/* ntfs-3g asks the plugin; without one: no xattrs. */
		if (nt_rp_kind(tag) == NT_RP_OTHER)
			return false;
		return !nt_stat(x, ni, &a) &&
		       (S_ISREG(a.mode) || S_ISDIR(a.mode));
	}
	if (ni->mft_no < FILE_first_user)
		return false;
	dt = ntfs_interix_types(ni);
	return dt == NTFS_DT_REG || dt == NTFS_DT_DIR;
}

static int nt_listxattr(struct vd_fs *fs, uint64_t ino, char *buf,
			  size_t size, size_t *len_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_attr_search_ctx *ctx = NULL;
	size_t len = 0;
	ntfs_inode *ni;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	ret = 0;
	if (!nt_xattrs_allowed(x, ni))
		goto close;
	ctx = ntfs_attr_get_search_ctx(ni, NULL);
	if (!ctx) {
		ret = -ENOMEM;
		goto close;
	}
	/* Ends: the library walks the record's attributes (and its
	 * attribute list) once, and stops at the end marker. */
	errno = 0;
	while (!ntfs_attr_lookup(AT_DATA, NULL, 0, CASE_SENSITIVE, 0, NULL, 0,
				 ctx)) {
		ATTR_RECORD *ar = ctx->attr;
		char *s = NULL;
		size_t n;

		if (!ar->name_length)
			continue;
		if (ntfs_ucstombs((ntfschar *)((u8 *)ar +
					       le16_to_cpu(ar->name_offset)),
				  ar->name_length, &s, 0) < 0) {
			ret = -EIO;
			break;
		}
		n = strlen(s);
		/* Streams holding other namespaces' xattrs are not listed. */
		if (n > strlen(NT_XATTR_PREFIX) &&
		    !strncmp(s, NT_XATTR_PREFIX, strlen(NT_XATTR_PREFIX))) {
			free(s);
			continue;
		}
		if (size && len + 5 + n + 1 <= size) {
			memcpy(buf + len, "user.", 5);
			memcpy(buf + len + 5, s, n + 1);
		}
		len += 5 + n + 1;
		free(s);
		errno = 0;
	}
	if (!ret && errno && errno != ENOENT) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": "
		       "attributes unreadable: %s", x->name, ino,
		       strerror(errno));
		ret = -EIO;
	}
	ntfs_attr_put_search_ctx(ctx);
close:
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	if (ret)
		return ret;
	*len_r = len;
	return size && len > size ? -ERANGE : 0;
}

/* The directory holding ni's first long (or only) name, for
 * system.ntfs_dos_name, or NULL. Under the lock. */
static ntfs_inode *nt_parent(struct nt_fs *x, ntfs_inode *ni)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	ntfs_inode *dir = NULL;
	int ret;

	if (!ctx)
		return NULL;
	if (!ntfs_attr_lookup(AT_FILE_NAME, NULL, 0, CASE_SENSITIVE, 0, NULL,
			      0, ctx) &&
	    !ctx->attr->non_resident &&
	    le32_to_cpu(ctx->attr->value_length) >= sizeof(FILE_NAME_ATTR)) {
		FILE_NAME_ATTR *fn = (FILE_NAME_ATTR *)(
			(u8 *)ctx->attr + le16_to_cpu(ctx->attr->value_offset));

		dir = vd_ntfs_iget(x, MREF_LE(fn->parent_directory), &ret);
	}
	ntfs_attr_put_search_ctx(ctx);
	return dir;
}

static int nt_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
			 void *buf, size_t size, size_t *len_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	enum SYSTEMXATTRS sys;
	ntfschar *uname = NULL;
	ntfs_inode *ni;
	ntfs_attr *na;
	char *sname = NULL;
	int ret, ulen;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	sys = ntfs_xattr_system_type(name, x->vol);
	if (sys == XATTR_POSIX_ACC || sys == XATTR_POSIX_DEF) {
		ret = -ENODATA; /* no ACLs without a user mapping */
	} else if (sys != XATTR_UNMAPPED) {
		/* As ntfs-3g: the library's getter, with a security context
		 * that has no user mapping. */
		struct PERMISSIONS_CACHE *cache = NULL;
		struct SECURITY_CONTEXT scx;
		ntfs_inode *dir = NULL;
		char *tmp = NULL;

		memset(&scx, 0, sizeof(scx));
		scx.vol = x->vol;
		scx.pseccache = &cache;
		scx.uid = x->uid;
		scx.gid = x->gid;
		if (sys == XATTR_NTFS_DOS_NAME) {
			if (ino == FILE_root) {
				ret = -EPERM;
				goto close;
			}
			dir = nt_parent(x, ni);
			if (!dir) {
				ret = -ENODATA;
				goto close;
			}
		}
		errno = 0;
		ret = ntfs_xattr_system_getxattr(&scx, sys, ni, dir, NULL, 0);
		if (ret > 0 && size && (size_t)ret <= size) {
			tmp = malloc((size_t)ret);
			if (!tmp)
				ret = -ENOMEM;
			else
				ret = ntfs_xattr_system_getxattr(&scx, sys, ni,
								 dir, tmp,
								 (size_t)ret);
		}
		if (ret >= 0) {
			*len_r = (size_t)ret;
			if (size && (size_t)ret > size)
				ret = -ERANGE;
			else {
				if (size)
					memcpy(buf, tmp, (size_t)ret);
				ret = 0;
			}
		} else if (ret == -1) {
			ret = errno == ENODATA || errno == ENOENT ? -ENODATA :
			      errno == ERANGE ? -ERANGE :
			      errno == EOPNOTSUPP ? -EOPNOTSUPP :
			      errno == ENOMEM ? -ENOMEM : -EIO;
		}
		free(tmp);
		if (dir)
			ntfs_inode_close(dir);
		goto close;
	}
	/* Streams: user.NAME is the stream NAME; security., trusted. and
	 * other system. names live in streams named "ntfs-3g.<name>". */
	if (!strncmp(name, "user.", 5) && name[5]) {
		sname = strdup(name + 5);
	} else if ((!strncmp(name, "security.", 9) && name[9]) ||
		   (!strncmp(name, "trusted.", 8) && name[8]) ||
		   (!strncmp(name, "system.", 7) && name[7])) {
		if (asprintf(&sname, "%s%s", NT_XATTR_PREFIX, name) < 0)
			sname = NULL;
	} else {
		ret = -EOPNOTSUPP;
		goto close;
	}
	if (!sname) {
		ret = -ENOMEM;
		goto close;
	}
	ret = -ENODATA;
	if (!nt_xattrs_allowed(x, ni))
		goto close;
	ulen = ntfs_mbstoucs(sname, &uname);
	if (ulen <= 0)
		goto close;
	na = ntfs_attr_open(ni, AT_DATA, uname, (u32)ulen);
	if (!na)
		goto close;
	if (na->data_size < 0 || na->data_size > (s64)(64u << 20)) {
		/* Linux caps xattr values at 64 KiB; a huge stream is
		 * refused here rather than copied. */
		ret = -E2BIG;
	} else {
		*len_r = (size_t)na->data_size;
		ret = 0;
		if (size && *len_r > size)
			ret = -ERANGE;
		else if (size && ntfs_attr_pread(na, 0, na->data_size, buf) !=
						 na->data_size) {
			vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64
			       ": stream %s unreadable", x->name, ino, sname);
			ret = -EIO;
		}
	}
	ntfs_attr_close(na);
close:
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	free(uname);
	free(sname);
	return ret;
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
	na = lni ? ntfs_attr_open(lni, AT_DATA, AT_UNNAMED, 0) : NULL;
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
	pthread_mutex_init(&x->lock, NULL);
	ret = nt_check_boot(v, &serial, &x->cluster, &x->clusters, e);
	if (ret)
		goto fail;
	d = calloc(1, sizeof(*d));
	if (!d) {
		ret = -ENOMEM;
		goto fail;
	}
	d->vol = v;
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
	.root = nt_root,
	.lookup = nt_lookup,
	.getattr = nt_getattr,
	.readdir = nt_readdir,
	.open = vd_ntfs_open,
	.read = vd_ntfs_read,
	.seek = vd_ntfs_seek,
	.map = vd_ntfs_map,
	.release = vd_ntfs_release,
	.readlink = nt_readlink,
	.listxattr = nt_listxattr,
	.getxattr = nt_getxattr,
	.statfs = nt_statfs,
	.info = nt_info,
};
