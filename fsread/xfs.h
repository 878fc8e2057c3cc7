/* xfs driver internals, shared by xfs.c (superblock, AG headers, log
 * state, mount, attributes of inodes, file data, the ops table),
 * xfs-inode.c (inodes, forks, extent lists and the bmbt), xfs-dir.c
 * (directories) and xfs-attr.c (extended attributes).
 *
 * On-disk format: the kernel's fs/xfs/libxfs (xfs_format.h,
 * xfs_da_format.h, xfs_log_format.h); every multi-byte field is big-endian
 * except the CRCs, which are stored little-endian.
 *
 * Inode numbers are XFS's own: AG number, block in the AG and inode in the
 * block packed as agno << (agblklog + inopblog) | agbno << inopblog | n.
 *
 * Locking: everything in struct xfs_fs is fixed at mount; reads go to the
 * volume without any lock. The filesystem blocks holding inodes are kept
 * in a cache of our own (icache, locked inside common/cache.c): a tree
 * walk asks for each file's inode five times or more (its attributes,
 * the open, the xattr probes), and neighbours share a block; the rest
 * is read afresh (core caches the image's metadata, the host its
 * pages). */
#ifndef VD_XFS_H
#define VD_XFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/cache.h"
#include "fsread/fs.h"

/* The largest inode (sb_inodesize 256..2048). */
#define XFS_INODE_MAX 2048u
/* Byte offset of a directory's leaf and free sections (xfs_da_format.h:
 * XFS_DIR2_LEAF_OFFSET, XFS_DIR2_FREE_OFFSET). */
#define XFS_DIR2_LEAF_OFFSET (1ull << 35)
#define XFS_DIR2_FREE_OFFSET (2ull << 35)

/* Data fork formats (di_format). */
#define XFS_DINODE_FMT_DEV 0
#define XFS_DINODE_FMT_LOCAL 1
#define XFS_DINODE_FMT_EXTENTS 2
#define XFS_DINODE_FMT_BTREE 3

#define XFS_DATA_FORK 0
#define XFS_ATTR_FORK 1

struct xfs_fs {
	struct vd_fs base; /* first: the generic part */
	const char *name;  /* the volume's name, for messages */
	unsigned version;  /* 4 or 5 */
	bool crc;	   /* v5: metadata carries CRCs */
	bool ftype;	   /* directory entries carry the file type */
	bool nrext64;	   /* large extent counters possible */
	bool ci;	   /* ASCII case-insensitive names (version bit) */
	unsigned blocklog, blocksize;
	unsigned sectsize;
	unsigned inodesize, inodelog, inopblog;
	unsigned agblklog;
	uint32_t agblocks, agcount;
	uint64_t dblocks;
	unsigned dirblklog;  /* directory block = blocksize << dirblklog */
	uint32_t dirblksize; /* bytes */
	uint64_t rootino;
	uint64_t logstart; /* 0: an external log */
	uint32_t logblocks;
	uint8_t uuid[16];
	uint8_t meta_uuid[16]; /* what v5 metadata blocks carry */
	char label[13];
	bool log_dirty;
	uint64_t maxicount; /* the most inodes (0: no limit) */
	/* Sums of the AG headers (what the kernel counts at mount). */
	uint64_t fdblocks, icount, ifree, allocbt_blks;
	/* Filesystem blocks holding inodes, keyed by byte offset in the
	 * volume (vd_xfs_iget). */
	struct vd_cache *icache;
};

/* An inode as read (pointers point into raw). */
struct xfs_inode {
	uint64_t ino;
	unsigned version;
	uint16_t mode;
	uint8_t format, aformat;
	uint32_t nlink, uid, gid;
	uint64_t size, nblocks, nextents, anextents;
	uint16_t flags;
	uint64_t flags2;
	struct timespec atime, mtime, ctime;
	const uint8_t *dfork, *afork; /* afork NULL: no attribute fork */
	size_t dsize, asize;
	uint8_t raw[XFS_INODE_MAX];
};

/* A mapping of a fork: file blocks [off, off + len) at filesystem
 * block blk (linear: agno * agblocks + agbno); unwritten reads zeros. */
struct xfs_ext {
	uint64_t off;
	uint64_t len;
	uint64_t blk;
	bool unwritten;
};

struct xfs_map {
	struct xfs_ext *ext;
	size_t n;
};

/* ---- xfs.c ---- */

extern const struct vd_fs_ops vd_fs_xfs;

/* CRC32c (Castagnoli) of b[0, len) with the 4 bytes at crcoff taken as
 * zero, compared with the little-endian value stored there. */
bool vd_xfs_crc_ok(const uint8_t *b, size_t len, size_t crcoff);

/* ---- xfs-inode.c ---- */

/* Read and check inode ino: 0, or -EIO (a number outside the AGs, a free
 * inode, unreadable, bad magic or CRC; logged). */
int vd_xfs_iget(struct xfs_fs *x, uint64_t ino, struct xfs_inode *ip);
/* The sorted, checked extent list of a fork (extents or btree format).
 * -EIO (logged) on corrupt metadata; m->ext is malloc'ed. */
int vd_xfs_fork_map(struct xfs_fs *x, const struct xfs_inode *ip, int fork,
		    struct xfs_map *m);
/* The extent holding file block fb, or NULL in a hole. */
const struct xfs_ext *vd_xfs_map_find(const struct xfs_map *m, uint64_t fb);
/* n file blocks from fb, all written and mapped, into buf: 0, -ENOENT
 * (a hole or unwritten) or -EIO. */
int vd_xfs_map_read(struct xfs_fs *x, const struct xfs_map *m, uint64_t fb,
		    unsigned n, void *buf);
/* Whether fs block blk (linear) plus n blocks lie in the filesystem. */
bool vd_xfs_blk_ok(const struct xfs_fs *x, uint64_t blk, uint64_t n);

/* ---- xfs-dir.c ---- */

int vd_xfs_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		   vd_fs_fill fill, void *arg);
int vd_xfs_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		  uint64_t *ino_r);
/* The directory/attribute name hash (xfs_da_hashname). */
uint32_t vd_xfs_da_hash(const uint8_t *name, size_t len);

/* ---- xfs-attr.c ---- */

int vd_xfs_listxattr(struct vd_fs *fs, uint64_t ino, char *buf, size_t size,
		     size_t *len_r);
int vd_xfs_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
		    void *buf, size_t size, size_t *len_r);

#endif
