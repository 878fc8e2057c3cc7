/* vfat driver internals, shared by vfat.c (boot sector, FAT access,
 * chains, attributes, file data), vfat-dir.c (directories, names, lookup,
 * readdir) and vfat-cp.c (code pages of short names).
 *
 * Inode numbers: the root directory is 1; every other file or directory
 * is the byte position of its 8.3 entry within the volume divided by 32,
 * as Linux's i_pos. An entry can never lie at byte 32 (the boot sector
 * is there), so no other number is 1; a volume of at most 2^32 sectors of
 * 4 KiB keeps every number below 2^48.
 *
 * Locking: the volume's geometry is fixed at mount. The FAT block cache
 * (fat_lock), the parent map (parent_lock), the free count (free_lock)
 * and a multi-byte code page's iconv handle (cp_lock) each have a mutex;
 * a FAT block is read from the volume under fat_lock (metadata, short),
 * file data never under any lock. */
#ifndef VD_VFAT_H
#define VD_VFAT_H

#include <iconv.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fsread/fs.h"

/* The root directory's inode number. */
#define VFAT_ROOT_INO 1u

/* Directory entry (Microsoft FAT specification, "Directory Structure"):
 * 0 name[11], 11 attr, 12 NT case flags, 13 create time tenths (10 ms),
 * 14 create time, 16 create date, 18 access date, 20 first cluster high
 * (FAT32), 22 write time, 24 write date, 26 first cluster low, 28 size. */
#define VFAT_DE_SIZE 32u
#define VFAT_ATTR_RO 0x01
#define VFAT_ATTR_HIDDEN 0x02
#define VFAT_ATTR_SYSTEM 0x04
#define VFAT_ATTR_VOLUME 0x08
#define VFAT_ATTR_DIR 0x10
#define VFAT_ATTR_ARCHIVE 0x20
#define VFAT_ATTR_LFN 0x0f /* a long-name part: exactly these bits */
#define VFAT_CASE_LOWER_BASE 0x08
#define VFAT_CASE_LOWER_EXT 0x10

/* The largest directory Linux reads (FAT_MAX_DIR_SIZE, 65536 entries). */
#define VFAT_MAX_DIR_BYTES (65536u * VFAT_DE_SIZE)

/* A name as vfat allows it: 255 UTF-16 units, at most 3 UTF-8 bytes
 * each (a surrogate pair, 2 units, gives 4). */
#define VFAT_NAME_MAX 255u
#define VFAT_UTF8_MAX (VFAT_NAME_MAX * 3 + 1)

/* A run of a chain: clusters [first, first + n) hold the chain's
 * clusters [idx, idx + n). */
struct vfat_run {
	uint32_t idx;
	uint32_t first;
	uint32_t n;
};

struct vfat_fcache;
struct vfat_pmap;

struct vfat_fs {
	struct vd_fs base; /* first: the generic part */
	const char *name;  /* the volume's name, for messages */
	struct vd_fs_opts opts;
	unsigned bits;	    /* 12, 16 or 32 */
	unsigned bps;	    /* bytes per sector */
	uint32_t csize;	    /* bytes per cluster */
	uint32_t clusters;  /* data clusters: numbers 2 .. clusters + 1 */
	uint64_t fat_off;   /* byte offset of the first FAT */
	uint64_t fat_bytes; /* bytes of one FAT */
	uint64_t root_off;  /* FAT12/16: the fixed root directory */
	uint32_t root_bytes;
	uint32_t root_cluster; /* FAT32: the root directory's chain */
	uint64_t data_off;     /* byte offset of cluster 2 */
	uint64_t vol_bytes;    /* total sectors * bytes per sector */
	uint32_t serial;
	char label[64];

	pthread_mutex_t fat_lock; /* guards fcache */
	struct vfat_fcache *fcache;

	pthread_mutex_t parent_lock; /* guards pmap */
	struct vfat_pmap *pmap;

	pthread_mutex_t free_lock; /* guards free_known, free_count */
	bool free_known;
	uint32_t free_count;

	/* Short names: 128 code points for bytes 0x80..0xff of a
	 * single-byte code page; or, for a multi-byte one (932, 936, 949,
	 * 950), an iconv handle under cp_lock. */
	uint16_t cp_high[128];
	bool cp_multi;
	iconv_t cp_iconv;
	pthread_mutex_t cp_lock;
};

/* ---- vfat.c ---- */

extern const struct vd_fs_ops vd_fs_vfat;

/* The FAT entry of cluster cl (2 .. clusters + 1), masked to its width. */
int vd_vfat_fat_get(struct vfat_fs *f, uint32_t cl, uint32_t *next_r);

/* Follow the chain from cluster start into runs (malloc'ed): up to
 * `want` clusters are kept (the rest of the chain is followed only to
 * check it: a loop, a free, bad or out-of-range entry is -EIO, logged
 * with what). *count_r receives the clusters kept, which is less than
 * want when the chain ends first. */
int vd_vfat_chain(struct vfat_fs *f, uint32_t start, uint64_t want,
		  const char *what, uint64_t what_ino, struct vfat_run **runs_r,
		  size_t *nruns_r, uint64_t *count_r);

/* Byte position of cluster index idx of a chain mapped by runs. */
uint64_t vd_vfat_run_pos(struct vfat_fs *f, const struct vfat_run *runs,
			 size_t nruns, uint64_t idx, uint64_t *contig_r);

/* The first cluster of the 8.3 entry de. */
uint32_t vd_vfat_de_cluster(struct vfat_fs *f, const uint8_t *de);

/* Read the 8.3 entry of inode ino (not the root) into de[32]: -ENOENT
 * when the number cannot be a live entry, -EIO on a read error. */
int vd_vfat_read_de(struct vfat_fs *f, uint64_t ino, uint8_t *de);

/* ---- vfat-dir.c ---- */

int vd_vfat_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		    vd_fs_fill fill, void *arg);
int vd_vfat_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		   uint64_t *ino_r);
/* Subdirectories of dir (Linux's fat_subdirs: 8.3 entries with the
 * directory bit, "." and ".." included) and its size in bytes. */
int vd_vfat_dir_stat(struct vfat_fs *f, uint64_t dir, uint64_t *subdirs_r,
		     uint64_t *size_r);
/* The volume label entry of the root directory, trimmed: 0 and label
 * filled, or -ENOENT. */
int vd_vfat_root_label(struct vfat_fs *f, char *label, size_t size);
void vd_vfat_pmap_free(struct vfat_fs *f);

/* ---- vfat-cp.c ---- */

/* Whether code page cp (0 = 437) can decode short names. */
bool vd_vfat_cp_supported(unsigned cp);
/* Prepare f's short-name decoding for code page cp. */
int vd_vfat_cp_init(struct vfat_fs *f, unsigned cp, struct vd_err *e);
void vd_vfat_cp_fini(struct vfat_fs *f);
/* Short-name bytes s[0, n) as UTF-8 into out (room for 3 * n + 1, NUL
 * terminated). */
void vd_vfat_cp_decode(struct vfat_fs *f, const uint8_t *s, size_t n,
		       char *out);
/* Code point c as UTF-8 at out (at most 4 bytes): the length. */
size_t vd_vfat_utf8_put(char *out, uint32_t c);

#endif
