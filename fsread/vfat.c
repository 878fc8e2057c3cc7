/* vfat: FAT12/16/32 with VFAT long names, read by our own code: the boot
 * sector, FAT access, cluster chains, attributes, xattrs, statfs and file
 * data. Directories and names are in vfat-dir.c, code pages in
 * vfat-cp.c.
 *
 * The volume is read as Linux's vfat reads it with default options:
 * - The boot sector's BPB is checked as fat_fill_super checks it (bytes
 *   per sector a power of two 512..4096, sectors per cluster a power of
 *   two, reserved sectors and FATs nonzero, a valid media byte, a root
 *   directory of whole sectors); the 0x55AA signature is not required.
 * - FAT32 is a BPB whose 16-bit FAT size is 0 (it has the FAT32 fields);
 *   otherwise the cluster count decides, as the FAT specification says:
 *   below 4085 FAT12, else FAT16, and a FAT16 of 65525 clusters or more
 *   is refused as Linux refuses it. The type string at offset 54/82 is
 *   never looked at. The cluster count is clipped to what the FAT can
 *   hold, as Linux clips it.
 * - The first FAT is read (Linux ignores FAT32 mirroring flags); FAT
 *   blocks are kept in a small cache.
 * - A file's chain is resolved into runs of contiguous clusters once per
 *   open; reads then go to core outside any lock. A chain with a loop, a
 *   free, bad or out-of-range entry fails reads with EIO (logged); a
 *   chain longer than the size is cut as Linux cuts it, one shorter
 *   fails reads past its end.
 * - Times as fat_fill_inode: mtime and ctime from the write time and
 *   date, atime from the access date, local time taken as UTC (the
 *   kernel's default offset 0); the root's are the epoch.
 * - Modes 0755 for directories and 0644 for files (0444 read-only), the
 *   owner from -o uid=,gid=; the read-only, hidden, system and archive
 *   bits in the xattr user.fat.attrib. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/vfat.h"

/* Boot sector and BPB offsets (Microsoft FAT specification, "Boot
 * Sector and BPB"). */
#define BPB_JMP 0
#define BPB_BYTES_PER_SEC 11
#define BPB_SEC_PER_CLUS 13
#define BPB_RSVD_SECS 14
#define BPB_NUM_FATS 16
#define BPB_ROOT_ENTS 17
#define BPB_TOT_SEC16 19
#define BPB_MEDIA 21
#define BPB_FAT_SZ16 22
#define BPB_TOT_SEC32 32
#define BS_VOL_ID16 39 /* FAT12/16: volume serial */
#define BS_VOL_LAB16 43
#define BPB_FAT_SZ32 36 /* FAT32 */
#define BPB_ROOT_CLUS 44
#define BS_VOL_ID32 67
#define BS_VOL_LAB32 71

/* Linux's MAX_FAT12 and MAX_FAT16 (fs/fat/fat.h) plus one: the FAT
 * specification's thresholds. */
#define VFAT_FAT12_LIMIT 4085u
#define VFAT_FAT16_LIMIT 65525u
/* FAT32 uses 28 bits. */
#define VFAT_FAT32_MASK 0x0fffffffu

/* The FAT block cache: 64 KiB blocks, 32 of them (2 MiB). */
#define VFAT_FBLOCK 65536u
#define VFAT_FSLOTS 32u
/* The most runs one chain may have (12 bytes each: 48 MiB). */
#define VFAT_MAX_RUNS (1u << 22)
/* The free count reads the FAT in pieces of this size. */
#define VFAT_FREE_CHUNK (1u << 20)

struct vfat_fslot {
	uint64_t blk; /* block number in the FAT, or UINT64_MAX */
	uint64_t used; /* LRU clock */
	uint8_t *data;
};

struct vfat_fcache {
	uint64_t clock;
	struct vfat_fslot slot[VFAT_FSLOTS];
};

/* ---- FAT access ---- */

/* The cached FAT block blk (under fat_lock): its bytes, or NULL on a
 * read error (logged). */
static const uint8_t *vfat_fblock(struct vfat_fs *f, uint64_t blk,
				  size_t *len_r)
{
	struct vfat_fcache *c = f->fcache;
	struct vfat_fslot *s = NULL, *lru = &c->slot[0];
	uint64_t off = blk * VFAT_FBLOCK;
	size_t len = (size_t)VD_MIN(VFAT_FBLOCK, f->fat_bytes - off);

	*len_r = len;
	for (unsigned i = 0; i < VFAT_FSLOTS; i++) {
		if (c->slot[i].blk == blk) {
			s = &c->slot[i];
			break;
		}
		if (c->slot[i].used < lru->used)
			lru = &c->slot[i];
	}
	if (!s) {
		s = lru;
		s->blk = UINT64_MAX;
		if (vd_vol_read(f->base.vol, s->data, len, f->fat_off + off)) {
			vd_log(VD_LOG_ERR, "%s: vfat: FAT bytes at 0x%" PRIx64
			       " unreadable", f->name, f->fat_off + off);
			return NULL;
		}
		s->blk = blk;
	}
	s->used = ++c->clock;
	return s->data;
}

/* n (at most 4) bytes at byte off of the FAT, which may span two cache
 * blocks (a FAT12 entry at a block's last byte). */
static int vfat_fat_bytes(struct vfat_fs *f, uint64_t off, uint8_t *out,
			  unsigned n)
{
	unsigned done = 0;

	/* Ends: each pass copies at least one byte. */
	while (done < n) {
		uint64_t at = off + done, blk = at / VFAT_FBLOCK;
		size_t len, in = (size_t)(at % VFAT_FBLOCK), k;
		const uint8_t *p = vfat_fblock(f, blk, &len);

		if (!p || in >= len)
			return -EIO;
		k = VD_MIN(len - in, (size_t)(n - done));
		memcpy(out + done, p + in, k);
		done += (unsigned)k;
	}
	return 0;
}

int vd_vfat_fat_get(struct vfat_fs *f, uint32_t cl, uint32_t *next_r)
{
	uint8_t b[4] = { 0 };
	uint64_t off;
	int ret;

	/* Entry cl of the FAT: FAT12 packs two entries in 3 bytes (an odd
	 * entry in the high 12 bits of its 2 bytes), FAT16 2 bytes, FAT32
	 * 4 bytes of which the low 28 bits count. mount clipped the
	 * cluster count so that every entry lies inside the FAT. */
	if (f->bits == 12)
		off = (uint64_t)cl + cl / 2;
	else
		off = (uint64_t)cl * (f->bits / 8);
	pthread_mutex_lock(&f->fat_lock);
	ret = vfat_fat_bytes(f, off, b, f->bits == 32 ? 4 : 2);
	pthread_mutex_unlock(&f->fat_lock);
	if (ret)
		return ret;
	if (f->bits == 12)
		*next_r = cl & 1 ? get_le16(b) >> 4 : get_le16(b) & 0xfff;
	else if (f->bits == 16)
		*next_r = get_le16(b);
	else
		*next_r = get_le32(b) & VFAT_FAT32_MASK;
	return 0;
}

/* Whether FAT value v ends a chain (0xff8 and up, per width). */
static bool vfat_eoc(const struct vfat_fs *f, uint32_t v)
{
	if (f->bits == 12)
		return v >= 0xff8;
	if (f->bits == 16)
		return v >= 0xfff8;
	return v >= 0x0ffffff8;
}

/* What a FAT value that cannot continue a chain is, for messages. */
static const char *vfat_entry_kind(const struct vfat_fs *f, uint32_t v)
{
	uint32_t bad = f->bits == 12 ? 0xff7 : f->bits == 16 ? 0xfff7 :
							       0x0ffffff7;

	if (v == 0)
		return "free";
	if (v == 1)
		return "reserved";
	if (v == bad)
		return "a bad-cluster mark";
	return "past the last cluster";
}

static bool vfat_cluster_ok(const struct vfat_fs *f, uint32_t cl)
{
	return cl >= 2 && cl - 2 < f->clusters;
}

int vd_vfat_chain(struct vfat_fs *f, uint32_t start, uint64_t want,
		  const char *what, uint64_t what_ino, struct vfat_run **runs_r,
		  size_t *nruns_r, uint64_t *count_r)
{
	struct vfat_run *runs = NULL;
	size_t n = 0, cap = 0;
	uint64_t idx = 0, steps;
	uint32_t cl = start, tortoise = start, power = 1, lam = 1;
	int ret = 0;

	*runs_r = NULL;
	*nruns_r = 0;
	*count_r = 0;
	if (!vfat_cluster_ok(f, start)) {
		vd_log(VD_LOG_ERR, "%s: vfat: %s %" PRIu64 ": first cluster "
		       "%" PRIu32 " is outside 2..%" PRIu32, f->name, what,
		       what_ino, start, f->clusters + 1);
		return -EIO;
	}
	/* Ends: a chain without a loop visits each cluster at most once, so
	 * it is never longer than the cluster count; Brent's cycle finding
	 * (tortoise, power, lam) stops a loop within about twice its
	 * length plus the steps before it. */
	for (steps = 0;; steps++) {
		uint32_t next;

		if (steps >= f->clusters) {
			vd_log(VD_LOG_ERR, "%s: vfat: %s %" PRIu64 ": chain "
			       "longer than the %" PRIu32 " clusters of the "
			       "volume (a loop)", f->name, what, what_ino,
			       f->clusters);
			ret = -EIO;
			break;
		}
		if (idx < want) {
			if (n && runs[n - 1].first + runs[n - 1].n == cl) {
				runs[n - 1].n++;
			} else {
				if (n == cap) {
					size_t nc = cap ? 2 * cap : 16;
					void *p;

					if (nc > VFAT_MAX_RUNS) {
						vd_log(VD_LOG_ERR, "%s: vfat: "
						       "%s %" PRIu64 ": more "
						       "than %u fragments",
						       f->name, what, what_ino,
						       VFAT_MAX_RUNS);
						ret = -EIO;
						break;
					}
					p = realloc(runs, nc * sizeof(*runs));
					if (!p) {
						ret = -ENOMEM;
						break;
					}
					runs = p;
					cap = nc;
				}
				runs[n++] = (struct vfat_run){ (uint32_t)idx,
							       cl, 1 };
			}
		}
		idx++;
		ret = vd_vfat_fat_get(f, cl, &next);
		if (ret)
			break;
		if (vfat_eoc(f, next))
			break;
		if (!vfat_cluster_ok(f, next)) {
			vd_log(VD_LOG_ERR, "%s: vfat: %s %" PRIu64 ": FAT entry "
			       "of cluster %" PRIu32 " is 0x%" PRIx32 " (%s)",
			       f->name, what, what_ino, cl, next,
			       vfat_entry_kind(f, next));
			ret = -EIO;
			break;
		}
		if (lam == power) {
			tortoise = cl;
			power *= 2;
			lam = 0;
		}
		lam++;
		if (next == tortoise) {
			vd_log(VD_LOG_ERR, "%s: vfat: %s %" PRIu64 ": cluster "
			       "chain loops back to cluster %" PRIu32, f->name,
			       what, what_ino, next);
			ret = -EIO;
			break;
		}
		cl = next;
	}
	if (ret) {
		free(runs);
		return ret;
	}
	*runs_r = runs;
	*nruns_r = n;
	*count_r = VD_MIN(idx, want);
	return 0;
}

uint64_t vd_vfat_run_pos(struct vfat_fs *f, const struct vfat_run *runs,
			 size_t nruns, uint64_t idx, uint64_t *contig_r)
{
	size_t lo = 0, hi = nruns;

	/* The last run starting at or before idx; callers keep idx below
	 * the chain's kept count, so it lies inside that run. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (runs[mid].idx <= idx)
			lo = mid;
		else
			hi = mid;
	}
	*contig_r = runs[lo].n - (idx - runs[lo].idx);
	return f->data_off +
	       ((uint64_t)runs[lo].first - 2 + (idx - runs[lo].idx)) *
		       f->csize;
}

uint32_t vd_vfat_de_cluster(struct vfat_fs *f, const uint8_t *de)
{
	uint32_t cl = get_le16(de + 26);

	/* Offset 20, the high half, only on FAT32 (Linux's fat_get_start). */
	if (f->bits == 32)
		cl |= (uint32_t)get_le16(de + 20) << 16;
	return cl;
}

int vd_vfat_read_de(struct vfat_fs *f, uint64_t ino, uint8_t *de)
{
	uint64_t pos;

	if (ino <= VFAT_ROOT_INO || ino > UINT64_MAX / VFAT_DE_SIZE)
		return -ENOENT;
	pos = ino * VFAT_DE_SIZE;
	/* The entry lies in the fixed root directory or in the clusters of
	 * the data area. */
	if (!(f->bits != 32 && pos >= f->root_off &&
	      pos - f->root_off < f->root_bytes) &&
	    !(pos >= f->data_off &&
	      pos - f->data_off < (uint64_t)f->clusters * f->csize))
		return -ENOENT;
	if (vd_vol_read(f->base.vol, de, VFAT_DE_SIZE, pos)) {
		vd_log(VD_LOG_ERR, "%s: vfat: directory entry at 0x%" PRIx64
		       " unreadable", f->name, pos);
		return -EIO;
	}
	if (de[0] == 0 || de[0] == 0xe5 ||
	    (de[11] & 0x3f) == VFAT_ATTR_LFN || (de[11] & VFAT_ATTR_VOLUME))
		return -ENOENT;
	if (de[0] == '.' && (!memcmp(de, ".          ", 11) ||
			     !memcmp(de, "..         ", 11)))
		return -ENOENT;
	return 0;
}

/* ---- attributes ---- */

/* A FAT date and time as Linux's fat_time_fat2unix reads them with the
 * time offset 0: date bits 0-4 day, 5-8 month, 9-15 years from 1980;
 * time bits 0-4 seconds / 2, 5-10 minutes, 11-15 hours; no range checks
 * (a month 0 counts as January, as the kernel's table does). cs adds
 * hundredths of a second. */
static struct timespec vfat_time(uint16_t time, uint16_t date, unsigned cs)
{
	/* Days before the 1st of each month in a common year, indexed by
	 * month 1..12; 13..15 count as 0 as in the kernel. */
	static const int64_t before[16] = { 0,	 0,   31,  59,	90,  120,
					    151, 181, 212, 243, 273, 304,
					    334, 0,   0,   0 };
	int64_t year = date >> 9, month = (date >> 5) & 0xf;
	int64_t day = date & 0x1f, leap, sec;
	struct timespec ts;

	if (month < 1)
		month = 1;
	if (day < 1)
		day = 1;
	day--;
	/* Leap days since 1980 (2100, year 120, is not one). */
	leap = (year + 3) / 4;
	if (year > 120)
		leap--;
	if (!(year & 3) && year != 120 && month > 2)
		leap++;
	sec = (time & 0x1f) * 2 + ((time >> 5) & 0x3f) * 60 +
	      (int64_t)(time >> 11) * 3600;
	/* 3652 days from 1970 to 1980. */
	sec += (year * 365 + leap + before[month] + day + 3652) * 86400;
	ts.tv_sec = sec + cs / 100;
	ts.tv_nsec = cs ? (long)(cs % 100) * 10000000 : 0;
	return ts;
}

static int vfat_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;
	uint64_t subdirs = 0, size = 0;
	uint8_t de[VFAT_DE_SIZE];
	int ret;

	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->uid = f->opts.uid;
	a->gid = f->opts.gid;
	if (ino == VFAT_ROOT_INO) {
		ret = vd_vfat_dir_stat(f, ino, &subdirs, &size);
		if (ret)
			return ret;
		/* The root has no "." and ".." entries (fat_read_root). */
		a->mode = S_IFDIR | 0755;
		a->nlink = (nlink_t)(subdirs + 2);
		a->size = size;
		a->blocks = size / 512;
		return 0;
	}
	ret = vd_vfat_read_de(f, ino, de);
	if (ret)
		return ret;
	if (de[11] & VFAT_ATTR_DIR) {
		ret = vd_vfat_dir_stat(f, ino, &subdirs, &size);
		if (ret)
			return ret;
		/* Linux's rodir option is off by default: the read-only bit
		 * of a directory does not change its mode. */
		a->mode = S_IFDIR | 0755;
		a->nlink = (nlink_t)VD_MAX(subdirs, 2);
		a->size = size;
	} else {
		a->mode = S_IFREG | (de[11] & VFAT_ATTR_RO ? 0444 : 0644);
		a->nlink = 1;
		a->size = get_le32(de + 28);
	}
	/* As the kernel: the size rounded up to whole clusters. */
	a->blocks = (a->size + f->csize - 1) / f->csize * f->csize / 512;
	/* Offsets 22 write time, 24 write date, 18 access date. */
	a->mtime = vfat_time(get_le16(de + 22), get_le16(de + 24), 0);
	a->ctime = a->mtime;
	a->atime = vfat_time(0, get_le16(de + 18), 0);
	return 0;
}

static int vfat_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
			 size_t size)
{
	(void)fs;
	(void)ino;
	(void)buf;
	(void)size;
	return -EINVAL; /* no symlinks on FAT */
}

/* ---- xattrs ---- */

#define VFAT_XATTR "user.fat.attrib"

/* The attribute bits as "readonly,hidden,system,archive" (those set);
 * the length, 0 when none is set. */
static size_t vfat_attr_names(uint8_t attr, char *out)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} bits[] = {
		{ VFAT_ATTR_RO, "readonly" },
		{ VFAT_ATTR_HIDDEN, "hidden" },
		{ VFAT_ATTR_SYSTEM, "system" },
		{ VFAT_ATTR_ARCHIVE, "archive" },
	};
	size_t n = 0;

	for (size_t i = 0; i < VD_ARRAY_SIZE(bits); i++) {
		if (!(attr & bits[i].bit))
			continue;
		if (n)
			out[n++] = ',';
		memcpy(out + n, bits[i].name, strlen(bits[i].name));
		n += strlen(bits[i].name);
	}
	return n;
}

/* The value of user.fat.attrib of ino into val (at least 40 bytes). */
static int vfat_attr_value(struct vfat_fs *f, uint64_t ino, char *val,
			   size_t *len_r)
{
	uint8_t de[VFAT_DE_SIZE];
	int ret;

	*len_r = 0;
	if (ino == VFAT_ROOT_INO)
		return 0; /* the root has no entry, no attributes */
	ret = vd_vfat_read_de(f, ino, de);
	if (ret)
		return ret;
	*len_r = vfat_attr_names(de[11], val);
	return 0;
}

/* user.fat.attrib is read by its name only, not listed (as ntfs-3g's
 * system.ntfs_attrib): the kernel's vfat shows no xattrs, so cp -a and
 * rsync -aX copy none out, as guestfish's copy-out does, and spend no
 * listxattr + two getxattr round trips per file on it. */
static int vfat_listxattr(struct vd_fs *fs, uint64_t ino, char *buf,
			  size_t size, size_t *len_r)
{
	(void)fs;
	(void)ino;
	(void)buf;
	(void)size;
	*len_r = 0;
	return 0;
}

static int vfat_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
			 void *buf, size_t size, size_t *len_r)
{
	char val[40];
	size_t len;
	int ret;

	/* The kernel's vfat has no xattrs at all: a probe for an ACL or a
	 * security label gets EOPNOTSUPP there, and ls -l, told so once,
	 * stops asking for the rest of its run (two round trips per entry
	 * otherwise). Only user.* names are ours. */
	if (strncmp(name, "user.", 5))
		return -EOPNOTSUPP;
	if (strcmp(name, VFAT_XATTR))
		return -ENODATA;
	ret = vfat_attr_value((struct vfat_fs *)fs, ino, val, &len);
	if (ret)
		return ret;
	if (!len)
		return -ENODATA;
	*len_r = len;
	if (!size)
		return 0;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return 0;
}

/* ---- statfs, info ---- */

/* Count free clusters (FAT entries 0) as the kernel's first statfs does
 * (fat_count_free_clusters; the FAT32 FSInfo count is only a hint it does
 * not report), reading the FAT in 1 MiB pieces. */
static int vfat_count_free(struct vfat_fs *f, uint32_t *free_r)
{
	uint64_t bytes, chunk = VFAT_FREE_CHUNK;
	uint32_t free_c = 0, cl = 2, last = f->clusters + 1;
	uint8_t *buf;
	int ret = 0;

	/* The bytes holding entries 0 .. last. */
	if (f->bits == 12)
		bytes = (uint64_t)last + last / 2 + 2;
	else
		bytes = ((uint64_t)last + 1) * (f->bits / 8);
	bytes = VD_MIN(bytes, f->fat_bytes);
	buf = malloc(chunk + 4);
	if (!buf)
		return -ENOMEM;
	/* Ends: cl grows on every pass until past the last cluster. A
	 * piece starts at an even entry (a multiple of 6 bytes for FAT12,
	 * so entries never straddle pieces). */
	chunk -= chunk % 12;
	for (uint64_t off = 0; off < bytes && cl <= last; off += chunk) {
		size_t len = (size_t)VD_MIN(chunk, bytes - off);

		ret = vd_vol_read(f->base.vol, buf, len, f->fat_off + off);
		if (ret)
			break;
		for (;; cl++) {
			uint64_t eo;
			uint32_t v;

			if (cl > last)
				break;
			eo = f->bits == 12 ? (uint64_t)cl + cl / 2 :
					     (uint64_t)cl * (f->bits / 8);
			if (eo + (f->bits == 32 ? 4 : 2) > off + len)
				break;
			eo -= off;
			if (f->bits == 12)
				v = cl & 1 ? get_le16(buf + eo) >> 4 :
					     get_le16(buf + eo) & 0xfff;
			else if (f->bits == 16)
				v = get_le16(buf + eo);
			else
				v = get_le32(buf + eo) & VFAT_FAT32_MASK;
			free_c += v == 0;
		}
	}
	free(buf);
	if (ret)
		vd_log(VD_LOG_ERR, "%s: vfat: FAT unreadable while counting "
		       "free clusters", f->name);
	*free_r = free_c;
	return ret ? -EIO : 0;
}

static int vfat_statfs(struct vd_fs *fs, struct statvfs *st)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;
	int ret = 0;

	pthread_mutex_lock(&f->free_lock);
	if (!f->free_known) {
		ret = vfat_count_free(f, &f->free_count);
		f->free_known = !ret;
	}
	pthread_mutex_unlock(&f->free_lock);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = f->csize;
	st->f_blocks = f->clusters;
	st->f_bfree = st->f_bavail = f->free_count;
	st->f_fsid = f->serial;
	st->f_flag = ST_RDONLY;
	st->f_namemax = VFAT_NAME_MAX;
	return 0;
}

static void vfat_info(struct vd_fs *fs, struct vd_fs_info *i)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;

	memset(i, 0, sizeof(*i));
	snprintf(i->type, sizeof(i->type), "vfat");
	snprintf(i->subtype, sizeof(i->subtype), "FAT%u", f->bits);
	snprintf(i->label, sizeof(i->label), "%s", f->label);
	snprintf(i->uuid, sizeof(i->uuid), "%04X-%04X", f->serial >> 16,
		 f->serial & 0xffff);
}

/* ---- file data ---- */

struct vfat_file {
	struct vd_fs_file base; /* first */
	struct vfat_fs *f;
	uint64_t ino;
	uint64_t size;
	uint64_t count; /* clusters the chain holds, at most size's */
	struct vfat_run *runs;
	size_t nruns;
	int err; /* the chain is damaged: every read fails with it */
};

static int vfat_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;
	uint8_t de[VFAT_DE_SIZE];
	struct vfat_file *h;
	uint32_t start;
	int ret;

	if (ino == VFAT_ROOT_INO)
		return -EISDIR;
	ret = vd_vfat_read_de(f, ino, de);
	if (ret)
		return ret;
	if (de[11] & VFAT_ATTR_DIR)
		return -EISDIR;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->base.fs = fs;
	h->f = f;
	h->ino = ino;
	h->size = get_le32(de + 28);
	start = vd_vfat_de_cluster(f, de);
	/* As Linux, the chain is only checked when read: a damaged one
	 * fails reads, not the open. An empty file may have no cluster. */
	if (h->size && start)
		h->err = vd_vfat_chain(f, start, (h->size + f->csize - 1) /
						      f->csize,
				       "file", ino, &h->runs, &h->nruns,
				       &h->count);
	if (h->err == -ENOMEM) {
		free(h);
		return -ENOMEM;
	}
	*f_r = &h->base;
	return 0;
}

/* The pieces of [off, off + len), inside the file: at most max, each a
 * run of contiguous clusters; stops early where the chain is shorter
 * than the size (read says so). The bytes mapped. */
static uint64_t vfat_pieces(struct vfat_file *h, uint64_t off, uint64_t len,
			    struct vd_fs_piece *p, unsigned max, unsigned *n_r)
{
	struct vfat_fs *f = h->f;
	uint64_t pos = off, end = off + len;

	*n_r = 0;
	/* Ends: each pass maps at least one byte of [pos, end), or
	 * stops. */
	while (pos < end) {
		uint64_t idx = pos / f->csize, in = pos % f->csize, contig;
		uint64_t at, n;
		struct vd_fs_piece *last = *n_r ? &p[*n_r - 1] : NULL;

		if (idx >= h->count)
			break;
		at = vd_vfat_run_pos(f, h->runs, h->nruns, idx, &contig) + in;
		n = VD_MIN(end - pos, contig * f->csize - in);
		if (last && last->vol_off + last->len == at)
			last->len += n;
		else if (*n_r == max)
			break;
		else
			p[(*n_r)++] = (struct vd_fs_piece){ at, n, false };
		pos += n;
	}
	return pos - off;
}

static int vfat_map(struct vd_fs_file *ff, uint64_t off, size_t len,
		    struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		    size_t *got_r)
{
	struct vfat_file *h = (struct vfat_file *)ff;

	*n_r = 0;
	*got_r = 0;
	if (off >= h->size || !len || !max)
		return 0;
	if (h->err)
		return -EIO;
	*got_r = (size_t)vfat_pieces(h, off, VD_MIN(len, h->size - off), p,
				     max, n_r);
	return 0;
}

static int vfat_read(struct vd_fs_file *ff, void *buf, size_t len,
		     uint64_t off, size_t *got_r)
{
	struct vfat_file *h = (struct vfat_file *)ff;
	struct vfat_fs *f = h->f;
	uint8_t *out = buf;
	uint64_t pos, end;

	*got_r = 0;
	if (off >= h->size || !len)
		return 0;
	if (h->err)
		return -EIO;
	len = (size_t)VD_MIN(len, h->size - off);
	pos = off;
	end = off + len;
	/* Ends: each pass reads at least one byte of [pos, end), or
	 * fails. */
	while (pos < end) {
		struct vd_fs_piece p[16];
		unsigned n;

		if (!vfat_pieces(h, pos, end - pos, p, 16, &n)) {
			vd_log(VD_LOG_ERR, "%s: vfat: file %" PRIu64 ": its "
			       "chain of %" PRIu64 " clusters is shorter than "
			       "its size (%" PRIu64 " bytes)", f->name, h->ino,
			       h->count, h->size);
			return -EIO;
		}
		for (unsigned i = 0; i < n; i++) {
			if (vd_vol_read(f->base.vol, out + (pos - off),
					p[i].len, p[i].vol_off)) {
				vd_log(VD_LOG_ERR, "%s: vfat: file %" PRIu64
				       ": read at %" PRIu64 " failed", f->name,
				       h->ino, pos);
				return -EIO;
			}
			pos += p[i].len;
		}
	}
	*got_r = len;
	return 0;
}

static void vfat_release(struct vd_fs_file *ff)
{
	struct vfat_file *h = (struct vfat_file *)ff;

	if (h) {
		free(h->runs);
		free(h);
	}
}

/* ---- mount ---- */

/* Linux's fat_valid_media: 0xf0 or 0xf8..0xff. */
static bool vfat_media_ok(uint8_t m)
{
	return m == 0xf0 || m >= 0xf8;
}

static int vfat_probe(const struct vd_vol *v)
{
	uint8_t b[64];

	if (v->len < 512 || vd_vol_read(v, b, sizeof(b), 0))
		return 0;
	/* A jump to the boot code: EB xx 90 or E9 xx xx. */
	if (!((b[BPB_JMP] == 0xeb && b[2] == 0x90) || b[BPB_JMP] == 0xe9))
		return 0;
	/* Enough that NTFS (no reserved sectors, no FAT size), exFAT (a
	 * zero BPB), a boot loader's MBR and stray jumps are not taken for
	 * FAT. Bytes and sectors per cluster and the number of FATs are
	 * left to mount, which names a bad one in its message rather than
	 * showing nothing. */
	return get_le16(b + BPB_BYTES_PER_SEC) && get_le16(b + BPB_RSVD_SECS) &&
	       vfat_media_ok(b[BPB_MEDIA]) &&
	       (get_le16(b + BPB_FAT_SZ16) || get_le32(b + BPB_FAT_SZ32));
}

static uint64_t vfat_root(struct vd_fs *fs)
{
	(void)fs;
	return VFAT_ROOT_INO;
}

static void vfat_unmount(struct vd_fs *fs)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;

	if (!f)
		return;
	if (f->fcache) {
		for (unsigned i = 0; i < VFAT_FSLOTS; i++)
			free(f->fcache->slot[i].data);
		free(f->fcache);
	}
	vd_vfat_pmap_free(f);
	vd_vfat_cp_fini(f);
	pthread_mutex_destroy(&f->fat_lock);
	pthread_mutex_destroy(&f->parent_lock);
	pthread_mutex_destroy(&f->free_lock);
	free(f);
}

/* The label bytes lab[11] trimmed and decoded into f->label; "NO NAME"
 * (mkfs's placeholder) is none. */
static void vfat_set_label(struct vfat_fs *f, const uint8_t *lab)
{
	size_t n = 11;

	while (n && (lab[n - 1] == ' ' || lab[n - 1] == 0))
		n--;
	if (n == 7 && !memcmp(lab, "NO NAME", 7))
		n = 0;
	vd_vfat_cp_decode(f, lab, n, f->label);
}

/* Read and check the boot sector: f's geometry, or -EUCLEAN with e. */
static int vfat_read_bpb(struct vfat_fs *f, struct vd_err *e)
{
	const struct vd_vol *v = f->base.vol;
	uint8_t b[512];
	unsigned bps, spc, rsvd, nfats, root_ents, media;
	uint64_t total, fat_len, fat_secs, root_secs, data_sec, clusters;
	uint64_t fat_cap;
	int ret = vd_vol_read(v, b, sizeof(b), 0);

	if (ret)
		return vd_fail(e, ret, "%s: vfat: boot sector unreadable",
			       f->name);
	bps = get_le16(b + BPB_BYTES_PER_SEC);
	spc = b[BPB_SEC_PER_CLUS];
	rsvd = get_le16(b + BPB_RSVD_SECS);
	nfats = b[BPB_NUM_FATS];
	root_ents = get_le16(b + BPB_ROOT_ENTS);
	media = b[BPB_MEDIA];
	if (!vd_is_pow2(bps) || bps < 512 || bps > 4096)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector bytes per "
			       "sector %u is not a power of two 512..4096",
			       f->name, bps);
	if (!vd_is_pow2(spc))
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector sectors "
			       "per cluster %u is not a power of two",
			       f->name, spc);
	if (!rsvd)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector reserved "
			       "sector count is 0", f->name);
	if (!nfats)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector number of "
			       "FATs is 0", f->name);
	if (!vfat_media_ok((uint8_t)media))
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector media "
			       "byte 0x%02x is invalid", f->name, media);
	f->bps = bps;
	f->csize = bps * spc;
	total = get_le16(b + BPB_TOT_SEC16);
	if (!total)
		total = get_le32(b + BPB_TOT_SEC32);
	fat_len = get_le16(b + BPB_FAT_SZ16);
	if (!fat_len) {
		f->bits = 32;
		fat_len = get_le32(b + BPB_FAT_SZ32);
	}
	if (!fat_len)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector FAT size "
			       "is 0", f->name);
	/* The root directory fills whole sectors (Linux: "dir entries
	 * not multiple of sector"). */
	if ((root_ents * VFAT_DE_SIZE) % bps)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector root "
			       "entries %u do not fill whole %u-byte sectors",
			       f->name, root_ents, bps);
	if (f->bits != 32 && !root_ents)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector root "
			       "entries is 0 on a FAT12/16 volume", f->name);
	root_secs = (uint64_t)root_ents * VFAT_DE_SIZE / bps;
	fat_secs = (uint64_t)nfats * fat_len;
	data_sec = rsvd + fat_secs + root_secs;
	if (!total || total <= data_sec)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector total "
			       "sectors %" PRIu64 " leave no data area (it "
			       "starts at sector %" PRIu64 ")", f->name, total,
			       data_sec);
	clusters = (total - data_sec) / spc;
	if (!clusters)
		return vd_fail(e, -EUCLEAN, "%s: vfat: no whole cluster in "
			       "the data area", f->name);
	if (f->bits != 32)
		f->bits = clusters < VFAT_FAT12_LIMIT ? 12 : 16;
	/* Entries the FAT can hold, less the two reserved ones. */
	fat_cap = fat_len * bps * 8 / f->bits;
	if (fat_cap <= 2)
		return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector FAT size "
			       "%" PRIu64 " sectors holds no cluster", f->name,
			       fat_len);
	clusters = VD_MIN(clusters, fat_cap - 2);
	if (f->bits == 16 && clusters >= VFAT_FAT16_LIMIT)
		return vd_fail(e, -EUCLEAN, "%s: vfat: %" PRIu64 " clusters "
			       "are too many for FAT16", f->name, clusters);
	if (f->bits == 32 && clusters > 0x0ffffff5u)
		return vd_fail(e, -EUCLEAN, "%s: vfat: %" PRIu64 " clusters "
			       "are too many for FAT32", f->name, clusters);
	f->clusters = (uint32_t)clusters;
	f->vol_bytes = total * bps;
	f->fat_off = (uint64_t)rsvd * bps;
	f->fat_bytes = fat_len * bps;
	f->root_off = (rsvd + fat_secs) * bps;
	f->root_bytes = (uint32_t)(root_secs * bps);
	f->data_off = data_sec * bps;
	/* The metadata must be readable; file data past the volume's end
	 * only fails the reads that reach it (a partition cut short). */
	if (f->data_off > v->len)
		return vd_fail(e, -EUCLEAN, "%s: vfat: the FATs and root "
			       "directory (%" PRIu64 " bytes) run past the "
			       "end of the volume (%" PRIu64 " bytes)", f->name,
			       f->data_off, v->len);
	if (f->vol_bytes > v->len)
		vd_log(VD_LOG_WARN, "%s: vfat: boot sector total sectors %"
		       PRIu64 " (%" PRIu64 " bytes) exceed the volume (%"
		       PRIu64 " bytes)", f->name, total, f->vol_bytes, v->len);
	if (f->bits == 32) {
		f->root_cluster = get_le32(b + BPB_ROOT_CLUS) & VFAT_FAT32_MASK;
		if (!vfat_cluster_ok(f, f->root_cluster))
			return vd_fail(e, -EUCLEAN, "%s: vfat: boot sector "
				       "root cluster %" PRIu32 " is outside "
				       "2..%" PRIu32, f->name, f->root_cluster,
				       f->clusters + 1);
		f->serial = get_le32(b + BS_VOL_ID32);
	} else {
		f->serial = get_le32(b + BS_VOL_ID16);
	}
	vfat_set_label(f, b + (f->bits == 32 ? BS_VOL_LAB32 : BS_VOL_LAB16));
	return 0;
}

static int vfat_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		      struct vd_fs **fs_r, struct vd_err *e)
{
	struct vfat_fs *f = calloc(1, sizeof(*f));
	char label[64];
	int ret;

	if (!f)
		return -ENOMEM;
	f->base.ops = &vd_fs_vfat;
	f->base.vol = v;
	f->base.lists_no_xattrs = true; /* vfat_listxattr */
	f->name = v->name;
	f->opts = *o;
	pthread_mutex_init(&f->fat_lock, NULL);
	pthread_mutex_init(&f->parent_lock, NULL);
	pthread_mutex_init(&f->free_lock, NULL);
	ret = vd_vfat_cp_init(f, o->codepage, e);
	if (ret)
		goto fail;
	f->fcache = calloc(1, sizeof(*f->fcache));
	if (!f->fcache) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < VFAT_FSLOTS; i++) {
		f->fcache->slot[i].blk = UINT64_MAX;
		f->fcache->slot[i].data = malloc(VFAT_FBLOCK);
		if (!f->fcache->slot[i].data) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	ret = vfat_read_bpb(f, e);
	if (ret)
		goto fail;
	/* blkid's rule: the root's volume-label entry wins over the boot
	 * sector's copy. */
	if (!vd_vfat_root_label(f, label, sizeof(label)))
		snprintf(f->label, sizeof(f->label), "%s", label);
	*fs_r = &f->base;
	return 0;
fail:
	vfat_unmount(&f->base);
	return ret;
}

const struct vd_fs_ops vd_fs_vfat = {
	.name = "vfat",
	.probe = vfat_probe,
	.mount = vfat_mount,
	.unmount = vfat_unmount,
	.root = vfat_root,
	.lookup = vd_vfat_lookup,
	.getattr = vfat_getattr,
	.readdir = vd_vfat_readdir,
	.open = vfat_open,
	.read = vfat_read,
	.map = vfat_map,
	.seek = NULL,
	.release = vfat_release,
	.readlink = vfat_readlink,
	.listxattr = vfat_listxattr,
	.getxattr = vfat_getxattr,
	.statfs = vfat_statfs,
	.info = vfat_info,
};
