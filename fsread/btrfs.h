/* btrfs driver internals, shared by btrfs.c (superblock, mount,
 * attributes, statfs, info, the ops table), btrfs-chunk.c (checksums, the
 * chunk map, logical reads), btrfs-tree.c (tree blocks and searches),
 * btrfs-subvol.c (subvolumes, their paths, inode numbers), btrfs-dir.c
 * (directories, lookups, xattrs) and btrfs-file.c (file extents,
 * compression, reads).
 *
 * On-disk format: the kernel's include/uapi/linux/btrfs_tree.h and
 * fs/btrfs/accessors.h; every field is little-endian; items are read with
 * get_le*() at the offsets named below, never through packed structs.
 *
 * Inode numbers: btrfs numbers inodes per subvolume (every subvolume's
 * root directory is 256), so the driver's number pairs the subvolume's
 * index in struct btrfs_fs.sv (0: the top level, id 5) with the objectid:
 * idx << 48 | objectid. The top level's numbers are the kernel's own;
 * the namespace maps the larger ones (see ns/ns.c).
 *
 * Locking: everything in struct btrfs_fs is fixed at mount except the
 * tree block cache (common/cache.c, its own lock) and the cache of decoded
 * extents (zlock). */
#ifndef VD_BTRFS_H
#define VD_BTRFS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/cache.h"
#include "common/util.h"
#include "fsread/fs.h"

/* Tree block header (struct btrfs_header): csum[32], fsid[16] at 32,
 * bytenr at 48, flags at 56, chunk_tree_uuid at 64, generation at 80,
 * owner at 88, nritems at 96, level at 100; 101 bytes. */
#define BTRFS_HDR_FSID 32
#define BTRFS_HDR_BYTENR 48
#define BTRFS_HDR_GEN 80
#define BTRFS_HDR_OWNER 88
#define BTRFS_HDR_NRITEMS 96
#define BTRFS_HDR_LEVEL 100
#define BTRFS_HDR_SIZE 101u
/* A leaf's item: key[17], data offset (from the header's end) u32 at 17,
 * size u32 at 21. A node's key pointer: key[17], blockptr at 17,
 * generation at 25. */
#define BTRFS_ITEM_SIZE 25u
#define BTRFS_PTR_SIZE 33u
#define BTRFS_MAX_LEVEL 8
#define BTRFS_CSUM_SIZE 32

/* Key types (btrfs_tree.h). */
#define BTRFS_INODE_ITEM_KEY 1
#define BTRFS_INODE_REF_KEY 12
#define BTRFS_INODE_EXTREF_KEY 13
#define BTRFS_XATTR_ITEM_KEY 24
#define BTRFS_DIR_ITEM_KEY 84
#define BTRFS_DIR_INDEX_KEY 96
#define BTRFS_EXTENT_DATA_KEY 108
#define BTRFS_EXTENT_CSUM_KEY 128
#define BTRFS_ROOT_ITEM_KEY 132
#define BTRFS_ROOT_BACKREF_KEY 144
#define BTRFS_ROOT_REF_KEY 156
#define BTRFS_DEV_ITEM_KEY 216
#define BTRFS_CHUNK_ITEM_KEY 228

/* Objectids. */
#define BTRFS_ROOT_TREE_OBJECTID 1ull
#define BTRFS_CHUNK_TREE_OBJECTID 3ull
#define BTRFS_FS_TREE_OBJECTID 5ull
#define BTRFS_ROOT_TREE_DIR_OBJECTID 6ull
#define BTRFS_CSUM_TREE_OBJECTID 7ull
#define BTRFS_FIRST_FREE_OBJECTID 256ull
#define BTRFS_LAST_FREE_OBJECTID (-256ull)
#define BTRFS_FIRST_CHUNK_TREE_OBJECTID 256ull
#define BTRFS_EXTENT_CSUM_OBJECTID (-10ull)
#define BTRFS_DEV_ITEMS_OBJECTID 1ull
/* What the kernel shows where a directory names a subvolume that is not
 * reachable from it (a snapshot's copy of a nested subvolume's entry):
 * an empty directory of this number (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID). */
#define BTRFS_EMPTY_SUBVOL_DIR_OBJECTID 2ull

/* Inode item (struct btrfs_inode_item), 160 bytes. */
#define BTRFS_INODE_SIZE_OFF 16
#define BTRFS_INODE_NBYTES 24
#define BTRFS_INODE_NLINK 40
#define BTRFS_INODE_UID 44
#define BTRFS_INODE_GID 48
#define BTRFS_INODE_MODE 52
#define BTRFS_INODE_RDEV 56
#define BTRFS_INODE_FLAGS 64
#define BTRFS_INODE_ATIME 112
#define BTRFS_INODE_CTIME 124
#define BTRFS_INODE_MTIME 136
#define BTRFS_INODE_ITEM_LEN 160u
#define BTRFS_INODE_NODATASUM (1ull << 0)

/* Dir item (struct btrfs_dir_item): location key[17], transid at 17,
 * data_len u16 at 25, name_len u16 at 27, type u8 at 29; name and data
 * follow. The same layout holds xattrs. */
#define BTRFS_DIR_ITEM_LEN 30u

#define BTRFS_SUBVOL_RDONLY (1ull << 0)

/* Profiles (block group flags). */
#define BTRFS_BG_RAID0 (1ull << 3)
#define BTRFS_BG_RAID1 (1ull << 4)
#define BTRFS_BG_DUP (1ull << 5)
#define BTRFS_BG_RAID10 (1ull << 6)
#define BTRFS_BG_RAID5 (1ull << 7)
#define BTRFS_BG_RAID6 (1ull << 8)
#define BTRFS_BG_RAID1C3 (1ull << 9)
#define BTRFS_BG_RAID1C4 (1ull << 10)

/* The largest extent the kernel compresses (BTRFS_MAX_UNCOMPRESSED),
 * and the largest compressed one it writes. */
#define BTRFS_MAX_COMPRESSED (128u * 1024)
/* Decoded-extent buffers kept for reuse. */
#define BTRFS_ZSPARE 16u

struct btrfs_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};

/* A device of the filesystem; vol NULL when missing. */
struct btrfs_dev {
	uint64_t devid;
	const struct vd_vol *vol;
};

struct btrfs_stripe {
	uint64_t devid;
	uint64_t offset;
	const struct vd_vol *vol; /* NULL: the device is missing */
};

/* A chunk: logical [logical, logical + len) over its stripes. */
struct btrfs_chunk {
	uint64_t logical, len, stripe_len, type;
	unsigned num_stripes, sub_stripes;
	struct btrfs_stripe *stripes;
};

/* The root of a tree: its top block and that block's level. */
struct btrfs_root {
	uint64_t bytenr;
	unsigned level;
};

struct btrfs_subvol {
	uint64_t id;
	struct btrfs_root root;
	uint64_t dirid;	 /* the root directory's objectid (256) */
	uint64_t generation;
	uint64_t flags;	 /* BTRFS_SUBVOL_RDONLY */
	uint64_t parent; /* the subvolume holding it; 0 for the top */
	struct timespec otime;
	char *path;	 /* from the top level, "" for it; NULL unreachable */
};

struct btrfs_zent; /* a decoded compressed extent (btrfs-file.c) */

struct btrfs_fs {
	struct vd_fs base; /* first: the generic part */
	const char *name;  /* the volume's name, for messages */
	uint8_t fsid[16];
	uint8_t meta_uuid[16]; /* what tree blocks carry */
	char label[257];
	uint64_t generation;
	uint64_t total_bytes, bytes_used;
	unsigned sectorsize, nodesize;
	unsigned csum_type, csum_size;
	const char *csum_name;
	uint64_t incompat;
	uint64_t compat_ro; /* superblock's compat_ro_flags (btrfs-space.c) */
	struct btrfs_root tree_root, chunk_root, csum_root;
	bool has_csum_root;
	bool log_tree; /* a log tree was left to replay (it is not) */
	uint64_t num_devices;
	struct btrfs_dev *devs;
	size_t ndevs;
	struct btrfs_chunk *chunks; /* sorted by logical */
	size_t nchunks;
	struct btrfs_subvol *sv; /* sv[0] is the top level; by id after */
	size_t nsv;
	uint64_t default_subvol;
	struct vd_cache *cache; /* tree blocks, by logical address */
	pthread_mutex_t zlock;	/* guards zc */
	struct btrfs_zent *zc;	/* decoded extents, most recent first */
	unsigned nzc;
	/* Buffers for decoded extents, kept for reuse (all of one size, so
	 * that a read does not map and unmap 128 KiB each time). */
	uint8_t *zspare[BTRFS_ZSPARE];
	unsigned nzspare;
	bool reported_raid56; /* atomic: the RAID5/6 notice was given */
};

/* A position in a tree: the blocks from the root down to a leaf, each
 * pinned in the cache until vd_btrfs_path_free (or replaced), and the
 * slot in each. */
struct btrfs_path {
	struct btrfs_fs *fs;
	unsigned top; /* the root's level */
	const uint8_t *blk[BTRFS_MAX_LEVEL]; /* NULL: no block held */
	struct vd_cache_ref ref[BTRFS_MAX_LEVEL]; /* blk[i]'s pin */
	unsigned slot[BTRFS_MAX_LEVEL];
	unsigned nr[BTRFS_MAX_LEVEL];
	struct btrfs_key last; /* the key given last (keys must increase) */
	bool have_last;
};

/* ---- btrfs-chunk.c ---- */

/* Set only by the fuzz target (tests/fuzz/fuzz-btrfs.c): checksums are
 * computed but their mismatches ignored, so that mutated inputs reach
 * the parsers behind them. */
extern bool vd_btrfs_fuzzing;

/* The checksum of b[0, len) by the filesystem's algorithm, into out
 * (BTRFS_CSUM_SIZE bytes, zero padded). */
void vd_btrfs_csum(const struct btrfs_fs *fs, const void *b, size_t len,
		   uint8_t *out);
/* The kernel's name hash (crc32c seeded with ~1). */
uint32_t vd_btrfs_name_hash(const char *name, size_t len);
/* Read the system chunk array of the superblock sb, then the chunk tree. */
int vd_btrfs_load_chunks(struct btrfs_fs *fs, const uint8_t *sb,
			 struct vd_err *e);
/* How many copies the chunk holding logical has (0: none maps it). */
unsigned vd_btrfs_copies(struct btrfs_fs *fs, uint64_t logical);
/* len bytes at logical from copy mirror (0..copies-1): 0, -EIO (logged
 * unless quiet), -ENXIO when that copy is on a missing device. */
int vd_btrfs_read_copy(struct btrfs_fs *fs, void *buf, size_t len,
		       uint64_t logical, unsigned mirror);
/* Where [logical, logical + *len_r) of copy 0 lies when it is plain bytes
 * of the mounted volume: its offset; *len_r clipped to the run. -ENXIO
 * when not (another device, a missing one, RAID5/6). */
int vd_btrfs_map_plain(struct btrfs_fs *fs, uint64_t logical,
		       uint64_t *len_r, uint64_t *vol_off_r);
/* File data: len bytes at logical (sector aligned) into buf, each sector
 * checked against the checksum tree when verify is set, another copy
 * tried when one is bad. 0 or -EIO (logged). */
int vd_btrfs_read_data(struct btrfs_fs *fs, void *buf, size_t len,
		       uint64_t logical, bool verify);
void vd_btrfs_free_chunks(struct btrfs_fs *fs);

/* ---- btrfs-tree.c ---- */

void vd_btrfs_key_read(const uint8_t *p, struct btrfs_key *k);
int vd_btrfs_key_cmp(const struct btrfs_key *a, const struct btrfs_key *b);
void vd_btrfs_path_init(struct btrfs_path *p, struct btrfs_fs *fs);
void vd_btrfs_path_free(struct btrfs_path *p);
/* Position p at the first item of root whose key is >= k: 0, 1 when no
 * item is, -EIO (logged). */
int vd_btrfs_search(struct btrfs_path *p, const struct btrfs_root *root,
		    const struct btrfs_key *k);
/* The next item: 0, 1 at the end, -EIO. */
int vd_btrfs_next(struct btrfs_path *p);
/* The item before p's (its key smaller): 0, 1 at the start, -EIO. */
int vd_btrfs_prev(struct btrfs_path *p);
/* The item at p: key, data and size (checked at load to lie inside the
 * leaf). */
void vd_btrfs_item(const struct btrfs_path *p, struct btrfs_key *k_r,
		   const uint8_t **data_r, uint32_t *size_r);
/* The item of exactly key k: its data copied into a malloc'ed buffer.
 * 0, -ENOENT, -EIO, -ENOMEM. */
int vd_btrfs_lookup(struct btrfs_fs *fs, const struct btrfs_root *root,
		    const struct btrfs_key *k, uint8_t **data_r,
		    uint32_t *size_r);
/* Check a raw tree block read from logical (header, checksum, items):
 * 0 or -EIO with why (for the log). */
int vd_btrfs_check_block(const struct btrfs_fs *fs, const uint8_t *b,
			 uint64_t logical, const char **why_r);

/* ---- btrfs.c ---- */

extern const struct vd_fs_ops vd_fs_btrfs;

/* A btrfs_timespec (u64 seconds, u32 nanoseconds) at p. */
static inline void vd_btrfs_time(const uint8_t *p, struct timespec *t)
{
	uint32_t ns = get_le32(p + 8);

	t->tv_sec = (time_t)get_le64(p);
	t->tv_nsec = ns < 1000000000u ? (long)ns : 0;
}

/* The inode item of objectid in sv, copied (160 bytes): 0, -ENOENT (none:
 * logged as corruption by callers that expect one), -EIO. */
int vd_btrfs_inode(struct btrfs_fs *fs, const struct btrfs_subvol *sv,
		   uint64_t objectid, uint8_t *item);

/* ---- btrfs-space.c ---- */

int vd_btrfs_statfs(struct vd_fs *fs, struct statvfs *st);

/* ---- btrfs-subvol.c ---- */

/* The subvolume of id; NULL when none. */
struct btrfs_subvol *vd_btrfs_sv_by_id(struct btrfs_fs *fs, uint64_t id);
static inline uint64_t vd_btrfs_ino(unsigned idx, uint64_t objectid)
{
	return (uint64_t)idx << 48 | objectid;
}
/* Split a driver inode number: -ENOENT when it names no subvolume. */
int vd_btrfs_ino_split(struct btrfs_fs *fs, uint64_t ino,
		       struct btrfs_subvol **sv_r, uint64_t *objectid_r);
/* A driver inode number for where dir item location key loc in
 * subvolume sv (directory dir, entry name) leads; -EIO when nowhere. */
int vd_btrfs_resolve(struct btrfs_fs *fs, const struct btrfs_subvol *sv,
		     uint64_t dir, const struct btrfs_key *loc,
		     const char *name, size_t len, uint64_t *ino_r);
/* vdtool info's view of subvolume n (after the top level). */
int vd_btrfs_subvol_info(struct vd_fs *fs, size_t n, struct vd_fs_subvol *s);
/* Every subvolume's root item into fs->sv (sorted by id, sv[0] the top
 * level): 0, or -errno with e filled. */
int vd_btrfs_load_subvols(struct btrfs_fs *fs, struct vd_err *e);
/* Each subvolume's parent and path from the top level (NULL when it
 * cannot be made). */
void vd_btrfs_subvol_paths(struct btrfs_fs *fs);
/* The default subvolume's id (the root tree directory's "default"). */
uint64_t vd_btrfs_default_subvol(struct btrfs_fs *fs);

/* ---- btrfs-dir.c ---- */

int vd_btrfs_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		     vd_fs_fill fill, void *arg);
int vd_btrfs_lookup_name(struct vd_fs *fs, uint64_t dir, const char *name,
			 uint64_t *ino_r);
int vd_btrfs_listxattr(struct vd_fs *fs, uint64_t ino, char *buf,
		       size_t size, size_t *len_r);
int vd_btrfs_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
		      void *buf, size_t size, size_t *len_r);

/* ---- btrfs-file.c ---- */

int vd_btrfs_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r);
int vd_btrfs_read(struct vd_fs_file *f, void *buf, size_t len, uint64_t off,
		  size_t *got_r);
int vd_btrfs_map(struct vd_fs_file *f, uint64_t off, size_t len,
		 struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		 size_t *got_r);
int vd_btrfs_seek(struct vd_fs_file *f, uint64_t off, bool want_data,
		  uint64_t *off_r);
void vd_btrfs_release(struct vd_fs_file *f);
int vd_btrfs_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
		      size_t size);
void vd_btrfs_zcache_free(struct btrfs_fs *fs);

#endif
