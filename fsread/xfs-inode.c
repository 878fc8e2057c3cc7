/* xfs: inodes (v1/v2/v3 cores), their data and attribute forks, and the
 * extent lists of forks in extents or B-tree (bmbt, any depth) format.
 *
 * An inode is copied out of its filesystem block, which is read once
 * into the filesystem's cache (x->icache) and kept while there is room;
 * its CRC (v3) and its own number are checked on every copy, as the kernel's
 * xfs_dinode_verify checks them. A fork's extents are checked as they
 * are decoded: each lies inside one AG and inside the filesystem, and
 * they strictly increase in file offset (which also stops a B-tree that
 * points at one leaf twice). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/xfs.h"

/* dinode offsets (xfs_format.h, struct xfs_dinode). */
#define DI_MAGIC 0
#define DI_MODE 2
#define DI_VERSION 4
#define DI_FORMAT 5
#define DI_ONLINK 6
#define DI_UID 8
#define DI_GID 12
#define DI_NLINK 16
#define DI_BIG_NEXTENTS 24
#define DI_ATIME 32
#define DI_MTIME 40
#define DI_CTIME 48
#define DI_SIZE 56
#define DI_NBLOCKS 64
#define DI_NEXTENTS 76
#define DI_ANEXTENTS 80
#define DI_FORKOFF 82
#define DI_AFORMAT 83
#define DI_FLAGS 90
#define DI_CRC 100
#define DI_FLAGS2 120
#define DI_INO 152
#define DI_UUID 160
#define DI_V2_SIZE 100u
#define DI_V3_SIZE 176u
#define XFS_DINODE_MAGIC 0x494e
#define XFS_DIFLAG2_BIGTIME (1ull << 3)
#define XFS_DIFLAG2_NREXT64 (1ull << 4)
/* Bigtime: nanoseconds since 1901-12-13 (xfs_format.h,
 * XFS_BIGTIME_EPOCH_OFFSET = -INT32_MIN). */
#define XFS_BIGTIME_EPOCH_OFFSET 2147483648ll

/* bmbt blocks (struct xfs_btree_block, long form): 0 magic, 4 level, 6
 * numrecs, 8 leftsib, 16 rightsib; v5 adds 24 blkno, 32 lsn, 40 uuid,
 * 56 owner, 64 crc. The in-inode root (struct xfs_bmdr_block): 0 level,
 * 2 numrecs. */
#define XFS_BMAP_MAGIC 0x424d4150 /* "BMAP" */
#define XFS_BMAP_CRC_MAGIC 0x424d4133 /* "BMA3" */
#define BMBT_HDR_V4 24u
#define BMBT_HDR_V5 72u
#define BMBT_CRC 64
#define BMBT_OWNER 56
#define BMBT_UUID 40
/* Deeper than any bmbt the kernel can build (XFS_BM_MAXLEVELS is at most
 * 9 even with 64-bit extent counters). */
#define XFS_BMBT_MAX_LEVELS 10u
/* The most extents one fork may have here (32 bytes each: 128 MiB), and
 * the most bmbt blocks one walk reads. */
#define XFS_MAX_EXTENTS (1u << 22)
#define XFS_MAX_BMBT_BLOCKS (1u << 22)

bool vd_xfs_blk_ok(const struct xfs_fs *x, uint64_t blk, uint64_t n)
{
	return vd_range_ok(blk, n, x->dblocks);
}

static struct timespec xfs_time(const struct xfs_inode *ip, const uint8_t *p)
{
	struct timespec t;

	if (ip->flags2 & XFS_DIFLAG2_BIGTIME) {
		uint64_t ns = get_be64(p);

		t.tv_sec = (time_t)((int64_t)(ns / 1000000000u) -
				    XFS_BIGTIME_EPOCH_OFFSET);
		t.tv_nsec = (long)(ns % 1000000000u);
	} else {
		t.tv_sec = (int32_t)get_be32(p);
		t.tv_nsec = (long)get_be32(p + 4);
	}
	return t;
}

/* Whether the data fork's format suits the file type (xfs_dinode_verify
 * and xfs_iformat_data_fork). */
static bool xfs_format_ok(uint16_t mode, uint8_t fmt)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFSOCK:
		return fmt == XFS_DINODE_FMT_DEV;
	case S_IFREG:
		return fmt == XFS_DINODE_FMT_EXTENTS ||
		       fmt == XFS_DINODE_FMT_BTREE;
	case S_IFDIR:
	case S_IFLNK:
		return fmt == XFS_DINODE_FMT_LOCAL ||
		       fmt == XFS_DINODE_FMT_EXTENTS ||
		       fmt == XFS_DINODE_FMT_BTREE;
	default:
		return false;
	}
}

static int xfs_iblock_load(void *arg, uint64_t off, void *buf, size_t size)
{
	struct xfs_fs *x = arg;

	return vd_vol_read(x->base.vol, buf, size, off);
}

int vd_xfs_iget(struct xfs_fs *x, uint64_t ino, struct xfs_inode *ip)
{
	unsigned shift = x->agblklog + x->inopblog;
	uint64_t agno = ino >> shift;
	uint64_t agbno = (ino >> x->inopblog) & ((1ull << x->agblklog) - 1);
	uint64_t n = ino & ((1ull << x->inopblog) - 1), off, blk;
	unsigned lit, forkoff;
	uint8_t *r = ip->raw;
	struct vd_cache_ref ref;

	/* Every number reaching here came from a directory entry (or the
	 * superblock): one that cannot be an inode is corruption. */
	if (agno >= x->agcount || agbno >= x->agblocks) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode number %" PRIu64 " lies "
		       "outside the AGs", x->name, ino);
		return -EIO;
	}
	blk = (agno * x->agblocks + agbno) << x->blocklog;
	off = blk + n * x->inodesize;
	/* An inode lies inside its block: inopblog is blocklog -
	 * inodelog (xfs_read_sb), so n * inodesize < blocksize. */
	if (vd_cache_get(x->icache, x, blk, x->blocksize, xfs_iblock_load, x,
			 &ref)) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " at 0x%" PRIx64
		       " unreadable", x->name, ino, off);
		return -EIO;
	}
	memcpy(r, (const uint8_t *)ref.data + n * x->inodesize, x->inodesize);
	vd_cache_put(x->icache, &ref);
	ip->ino = ino;
	ip->version = r[DI_VERSION];
	if (get_be16(r + DI_MAGIC) != XFS_DINODE_MAGIC ||
	    ip->version < 1 || ip->version > 3 ||
	    (x->crc != (ip->version == 3))) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " at 0x%" PRIx64
		       " has bad magic 0x%04x or version %u", x->name, ino,
		       off, get_be16(r + DI_MAGIC), ip->version);
		return -EIO;
	}
	if (ip->version == 3) {
		if (!vd_xfs_crc_ok(r, x->inodesize, DI_CRC)) {
			vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " at 0x%"
			       PRIx64 " fails its CRC", x->name, ino, off);
			return -EIO;
		}
		if (get_be64(r + DI_INO) != ino ||
		    memcmp(r + DI_UUID, x->meta_uuid, 16)) {
			vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " at 0x%"
			       PRIx64 " says it is inode %" PRIu64 " of "
			       "another filesystem", x->name, ino, off,
			       get_be64(r + DI_INO));
			return -EIO;
		}
	}
	ip->mode = get_be16(r + DI_MODE);
	if (!ip->mode) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " is free",
		       x->name, ino);
		return -EIO;
	}
	ip->format = r[DI_FORMAT];
	ip->aformat = r[DI_AFORMAT];
	if (!xfs_format_ok(ip->mode, ip->format)) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 ": mode 0%o with "
		       "data fork format %u", x->name, ino, ip->mode,
		       ip->format);
		return -EIO;
	}
	ip->nlink = ip->version == 1 ? get_be16(r + DI_ONLINK) :
				       get_be32(r + DI_NLINK);
	ip->uid = get_be32(r + DI_UID);
	ip->gid = get_be32(r + DI_GID);
	ip->size = get_be64(r + DI_SIZE);
	ip->nblocks = get_be64(r + DI_NBLOCKS);
	ip->flags = get_be16(r + DI_FLAGS);
	ip->flags2 = ip->version == 3 ? get_be64(r + DI_FLAGS2) : 0;
	if (ip->flags2 & XFS_DIFLAG2_NREXT64) {
		ip->nextents = get_be64(r + DI_BIG_NEXTENTS);
		ip->anextents = get_be32(r + DI_NEXTENTS);
	} else {
		ip->nextents = get_be32(r + DI_NEXTENTS);
		ip->anextents = get_be16(r + DI_ANEXTENTS);
	}
	ip->atime = xfs_time(ip, r + DI_ATIME);
	ip->mtime = xfs_time(ip, r + DI_MTIME);
	ip->ctime = xfs_time(ip, r + DI_CTIME);
	if (ip->size > INT64_MAX) {
		vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 ": size %" PRIu64
		       " is negative", x->name, ino, ip->size);
		return -EIO;
	}
	lit = ip->version == 3 ? DI_V3_SIZE : DI_V2_SIZE;
	forkoff = (unsigned)r[DI_FORKOFF] * 8;
	ip->dfork = r + lit;
	ip->afork = NULL;
	ip->asize = 0;
	if (forkoff) {
		if (forkoff >= x->inodesize - lit) {
			vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 ": "
			       "attribute fork offset %u lies past the inode",
			       x->name, ino, forkoff);
			return -EIO;
		}
		ip->dsize = forkoff;
		ip->afork = r + lit + forkoff;
		ip->asize = x->inodesize - lit - forkoff;
	} else {
		ip->dsize = x->inodesize - lit;
	}
	return 0;
}

/* ---- extent lists ---- */

struct xfs_walk {
	struct xfs_fs *x;
	uint64_t ino;
	const char *fork;
	struct xfs_map *m;
	size_t cap;
	unsigned blocks; /* bmbt blocks read */
};

static int xfs_bad(struct xfs_walk *w, const char *what, uint64_t a,
		   uint64_t b)
{
	vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " %s fork: %s (%" PRIu64
	       ", %" PRIu64 ")", w->x->name, w->ino, w->fork, what, a, b);
	return -EIO;
}

/* fsblock number fsb (agno << agblklog | agbno) as a linear block, when
 * n blocks from it lie inside one AG and the filesystem. */
static bool xfs_fsb_linear(const struct xfs_fs *x, uint64_t fsb, uint64_t n,
			   uint64_t *blk_r)
{
	uint64_t agno = fsb >> x->agblklog;
	uint64_t agbno = fsb & ((1ull << x->agblklog) - 1);

	if (agno >= x->agcount || agbno >= x->agblocks ||
	    n > x->agblocks - agbno)
		return false;
	*blk_r = agno * x->agblocks + agbno;
	return vd_xfs_blk_ok(x, *blk_r, n);
}

/* Decode one 16-byte extent record (xfs_bmbt_rec: l0 bit 63 unwritten,
 * bits 62..9 file offset; bits 8..0 of l0 and 63..21 of l1 the start
 * block; bits 20..0 of l1 the count) and append it. */
static int xfs_add_rec(struct xfs_walk *w, const uint8_t *p)
{
	uint64_t l0 = get_be64(p), l1 = get_be64(p + 8);
	struct xfs_ext e;
	uint64_t fsb;
	struct xfs_map *m = w->m;

	e.unwritten = l0 >> 63;
	e.off = (l0 >> 9) & ((1ull << 54) - 1);
	fsb = ((l0 & 0x1ff) << 43) | (l1 >> 21);
	e.len = l1 & ((1u << 21) - 1);
	if (!e.len)
		return xfs_bad(w, "an extent of 0 blocks at file block", e.off,
			       fsb);
	if (!xfs_fsb_linear(w->x, fsb, e.len, &e.blk))
		return xfs_bad(w, "an extent lies outside its AG or the "
			       "filesystem (start block, blocks)", fsb, e.len);
	if (m->n && e.off < m->ext[m->n - 1].off + m->ext[m->n - 1].len)
		return xfs_bad(w, "extents out of order (file block, after "
			       "file block)", e.off, m->ext[m->n - 1].off);
	if (m->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct xfs_ext *ne;

		if (m->n >= XFS_MAX_EXTENTS)
			return xfs_bad(w, "too many extents (more than, at "
				       "file block)", XFS_MAX_EXTENTS, e.off);
		ne = realloc(m->ext, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		m->ext = ne;
		w->cap = cap;
	}
	m->ext[m->n++] = e;
	return 0;
}

/* Walk the bmbt subtree at fsblock fsb, whose level must be level. */
static int xfs_bmbt_walk(struct xfs_walk *w, uint64_t fsb, unsigned level,
			 uint8_t *buf)
{
	struct xfs_fs *x = w->x;
	unsigned hdr = x->crc ? BMBT_HDR_V5 : BMBT_HDR_V4;
	unsigned maxrecs = (x->blocksize - hdr) / 16, nrecs;
	uint64_t blk;
	int ret = 0;

	if (++w->blocks > XFS_MAX_BMBT_BLOCKS)
		return xfs_bad(w, "the bmbt has too many blocks (more than, "
			       "at level)", XFS_MAX_BMBT_BLOCKS, level);
	if (!xfs_fsb_linear(x, fsb, 1, &blk))
		return xfs_bad(w, "a bmbt pointer lies outside the filesystem "
			       "(block, level)", fsb, level);
	if (vd_vol_read(x->base.vol, buf, x->blocksize, blk << x->blocklog))
		return xfs_bad(w, "a bmbt block is unreadable (block, level)",
			       fsb, level);
	if (get_be32(buf) != (x->crc ? XFS_BMAP_CRC_MAGIC : XFS_BMAP_MAGIC))
		return xfs_bad(w, "a bmbt block has a bad magic (block, "
			       "magic)", fsb, get_be32(buf));
	if (x->crc) {
		if (!vd_xfs_crc_ok(buf, x->blocksize, BMBT_CRC))
			return xfs_bad(w, "a bmbt block fails its CRC (block, "
				       "level)", fsb, level);
		if (get_be64(buf + BMBT_OWNER) != w->ino ||
		    memcmp(buf + BMBT_UUID, x->meta_uuid, 16))
			return xfs_bad(w, "a bmbt block belongs to another "
				       "inode (block, owner)", fsb,
				       get_be64(buf + BMBT_OWNER));
	}
	if (get_be16(buf + 4) != level)
		return xfs_bad(w, "a bmbt block is at the wrong level (block, "
			       "level)", fsb, get_be16(buf + 4));
	nrecs = get_be16(buf + 6);
	if (!nrecs || nrecs > maxrecs)
		return xfs_bad(w, "a bmbt block has a bad record count (block, "
			       "records)", fsb, nrecs);
	if (!level) {
		for (unsigned i = 0; i < nrecs; i++) {
			ret = xfs_add_rec(w, buf + hdr + 16 * i);
			if (ret)
				return ret;
		}
		return 0;
	} else {
		/* The child pointers must outlive the children's reads into
		 * the next level's buffer: copy them. */
		uint64_t *ptrs = malloc(nrecs * sizeof(*ptrs));

		if (!ptrs)
			return -ENOMEM;
		for (unsigned i = 0; i < nrecs; i++)
			ptrs[i] = get_be64(buf + hdr + 8 * maxrecs + 8 * i);
		/* Ends: each child is one level lower (checked on read). */
		for (unsigned i = 0; i < nrecs; i++) {
			ret = xfs_bmbt_walk(w, ptrs[i], level - 1, buf);
			if (ret)
				break;
		}
		free(ptrs);
		return ret;
	}
}

int vd_xfs_fork_map(struct xfs_fs *x, const struct xfs_inode *ip, int fork,
		    struct xfs_map *m)
{
	struct xfs_walk w = { x, ip->ino, fork ? "attribute" : "data", m, 0,
			      0 };
	const uint8_t *f = fork ? ip->afork : ip->dfork;
	size_t fsize = fork ? ip->asize : ip->dsize;
	uint8_t fmt = fork ? ip->aformat : ip->format;
	uint64_t next = fork ? ip->anextents : ip->nextents;
	int ret = 0;

	m->ext = NULL;
	m->n = 0;
	if (!f)
		return 0;
	if (fmt == XFS_DINODE_FMT_EXTENTS) {
		if (next > fsize / 16)
			return xfs_bad(&w, "more extents than the fork holds "
				       "(extents, fork bytes)", next, fsize);
		for (uint64_t i = 0; i < next && !ret; i++)
			ret = xfs_add_rec(&w, f + 16 * i);
	} else if (fmt == XFS_DINODE_FMT_BTREE) {
		unsigned level, nrecs, maxrecs = (unsigned)((fsize - 4) / 16);
		uint8_t *buf;

		if (fsize < 4 + 16)
			return xfs_bad(&w, "a bmbt root in a fork too small "
				       "(bytes, minimum)", fsize, 20);
		level = get_be16(f);
		nrecs = get_be16(f + 2);
		if (!level || level > XFS_BMBT_MAX_LEVELS || !nrecs ||
		    nrecs > maxrecs)
			return xfs_bad(&w, "a bad bmbt root (level, records)",
				       level, nrecs);
		buf = malloc(x->blocksize);
		if (!buf)
			return -ENOMEM;
		for (unsigned i = 0; i < nrecs && !ret; i++)
			ret = xfs_bmbt_walk(&w, get_be64(f + 4 + 8 * maxrecs +
							 8 * i),
					    level - 1, buf);
		free(buf);
	} else {
		ret = xfs_bad(&w, "the fork's format has no extents (format, "
			      "extents)", fmt, next);
	}
	if (ret) {
		free(m->ext);
		m->ext = NULL;
		m->n = 0;
	}
	return ret;
}

const struct xfs_ext *vd_xfs_map_find(const struct xfs_map *m, uint64_t fb)
{
	size_t lo = 0, hi = m->n;

	/* The last extent starting at or before fb. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ext[mid].off <= fb)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	if (fb - m->ext[lo - 1].off >= m->ext[lo - 1].len)
		return NULL;
	return &m->ext[lo - 1];
}

int vd_xfs_map_read(struct xfs_fs *x, const struct xfs_map *m, uint64_t fb,
		    unsigned n, void *buf)
{
	uint8_t *out = buf;

	/* Ends: each pass reads at least one block of the n. */
	while (n) {
		const struct xfs_ext *e = vd_xfs_map_find(m, fb);
		uint64_t in, k;

		if (!e || e->unwritten)
			return -ENOENT;
		in = fb - e->off;
		k = VD_MIN((uint64_t)n, e->len - in);
		if (vd_vol_read(x->base.vol, out, (size_t)k << x->blocklog,
				(e->blk + in) << x->blocklog))
			return -EIO;
		out += (size_t)k << x->blocklog;
		fb += k;
		n -= (unsigned)k;
	}
	return 0;
}
