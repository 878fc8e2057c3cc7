/* xfs: directories (version 2/3 format, xfs_da_format.h) in all their
 * forms: shortform (in the inode), block (one directory block holding
 * entries and their hash index), leaf (data blocks plus one leaf block of
 * hashes at XFS_DIR2_LEAF_OFFSET), node and B-tree (a da-btree of hashes
 * over many leaf blocks; the data fork itself in bmbt form).
 *
 * readdir walks the data blocks in file order, as the kernel's
 * xfs_readdir does; its cookie is the byte offset in the directory's data
 * space after the last entry given (shortform: the entry's index + 3).
 * lookup hashes the name and follows the hash index of the form, so a
 * name in a huge directory costs a few block reads, not a scan.
 *
 * Every block is checked before use: its magic, on v5 its CRC and owner;
 * an entry's length stays inside its block. A bad block fails the
 * readdir or lookup that needs it with EIO (logged). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/xfs.h"

#define XFS_DIR2_BLOCK_MAGIC 0x58443242 /* XD2B */
#define XFS_DIR2_DATA_MAGIC 0x58443244	/* XD2D */
#define XFS_DIR3_BLOCK_MAGIC 0x58444233 /* XDB3 */
#define XFS_DIR3_DATA_MAGIC 0x58444433	/* XDD3 */
#define XFS_DIR2_LEAF1_MAGIC 0xd2f1
#define XFS_DIR2_LEAFN_MAGIC 0xd2ff
#define XFS_DIR3_LEAF1_MAGIC 0x3df1
#define XFS_DIR3_LEAFN_MAGIC 0x3dff
#define XFS_DA_NODE_MAGIC 0xfebe
#define XFS_DA3_NODE_MAGIC 0x3ebe
#define XFS_DIR2_DATA_FREE_TAG 0xffff
/* Data block header: v4 16 bytes (magic, bestfree[3]); v5 64 (magic, crc
 * at 4, blkno, lsn, uuid at 24, owner at 40, bestfree, pad). */
#define DIR_DATA_HDR_V4 16u
#define DIR_DATA_HDR_V5 64u
#define DIR_DATA_CRC 4
#define DIR_DATA_UUID 24
#define DIR_DATA_OWNER 40
/* da block info: v4 12 bytes (forw, back, magic at 8, pad); v5 56 (crc at
 * 12, blkno, lsn, uuid at 32, owner at 48). Leaf and node headers add
 * count and stale/level: entries at 16 (v4) or 64 (v5). */
#define DA_FORW 0
#define DA_MAGIC 8
#define DA_CRC 12
#define DA_UUID 32
#define DA_OWNER 48
#define DA_HDR_V4 16u
#define DA_HDR_V5 64u
#define DA_COUNT_V4 12
#define DA_COUNT_V5 56
/* The deepest da-btree (XFS_DA_NODE_MAXDEPTH). */
#define XFS_DA_NODE_MAXDEPTH 5
/* Leaf blocks one lookup may follow sideways for one hash value. */
#define XFS_DIR_MAX_SIDEWAYS 1024

uint32_t vd_xfs_da_hash(const uint8_t *name, size_t len)
{
	uint32_t h = 0;

#define ROL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
	for (; len >= 4; len -= 4, name += 4)
		h = ((uint32_t)name[0] << 21) ^ ((uint32_t)name[1] << 14) ^
		    ((uint32_t)name[2] << 7) ^ name[3] ^ ROL32(h, 7 * 4);
	switch (len) {
	case 3:
		return ((uint32_t)name[0] << 14) ^ ((uint32_t)name[1] << 7) ^
		       name[2] ^ ROL32(h, 7 * 3);
	case 2:
		return ((uint32_t)name[0] << 7) ^ name[1] ^ ROL32(h, 7 * 2);
	case 1:
		return name[0] ^ ROL32(h, 7);
	default:
		return h;
	}
#undef ROL32
}

/* The hash of a name as the filesystem stores it: ASCII-folded on a
 * case-insensitive one (xfs_ascii_ci_hashname). */
static uint32_t xdir_hash(const struct xfs_fs *x, const char *name,
			  size_t len)
{
	uint8_t low[256];

	if (!x->ci || len > sizeof(low))
		return vd_xfs_da_hash((const uint8_t *)name, len);
	for (size_t i = 0; i < len; i++)
		low[i] = (uint8_t)tolower((unsigned char)name[i]);
	return vd_xfs_da_hash(low, len);
}

static bool xdir_name_eq(const struct xfs_fs *x, const uint8_t *a,
			 size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	if (!x->ci)
		return !memcmp(a, b, alen);
	for (size_t i = 0; i < alen; i++)
		if (tolower(a[i]) != tolower((unsigned char)b[i]))
			return false;
	return true;
}

/* XFS_DIR3_FT_* as DT_*. */
static unsigned xdir_dtype(const struct xfs_fs *x, uint8_t ft)
{
	static const unsigned dt[] = { DT_UNKNOWN, DT_REG,  DT_DIR,
				       DT_CHR,	   DT_BLK,  DT_FIFO,
				       DT_SOCK,	   DT_LNK,  DT_WHT };

	if (!x->ftype || ft >= VD_ARRAY_SIZE(dt))
		return DT_UNKNOWN;
	return dt[ft];
}

/* A directory being read: its inode, its data fork's map, and a buffer
 * of one directory block. */
struct xdir {
	struct xfs_fs *x;
	struct xfs_inode ip;
	struct xfs_map m;
	uint8_t *blk;
	uint64_t blk_fb; /* file block held in blk, or UINT64_MAX */
};

static void xdir_close(struct xdir *d)
{
	free(d->m.ext);
	free(d->blk);
}

static int xdir_bad(struct xdir *d, uint64_t fb, const char *what)
{
	vd_log(VD_LOG_ERR, "%s: xfs: directory %" PRIu64 ": block %" PRIu64
	       ": %s", d->x->name, d->ip.ino, fb, what);
	d->blk_fb = UINT64_MAX;
	return -EIO;
}

static int xdir_open(struct xfs_fs *x, uint64_t ino, struct xdir *d)
{
	int ret;

	d->x = x;
	d->m.ext = NULL;
	d->m.n = 0;
	d->blk = NULL;
	d->blk_fb = UINT64_MAX;
	ret = vd_xfs_iget(x, ino, &d->ip);
	if (ret)
		return ret;
	if (!S_ISDIR(d->ip.mode))
		return -ENOTDIR;
	if (d->ip.format == XFS_DINODE_FMT_LOCAL)
		return 0;
	ret = vd_xfs_fork_map(x, &d->ip, XFS_DATA_FORK, &d->m);
	if (ret)
		return ret;
	d->blk = malloc(x->dirblksize);
	return d->blk ? 0 : -ENOMEM;
}

/* Read the directory block at file block fb into d->blk and check it: a
 * data block (da false: magic at 0, CRC at 4) or a da block (leaf or
 * node: magic at 8, CRC at 12). The magic is returned in *magic_r. */
static int xdir_read(struct xdir *d, uint64_t fb, bool da, uint32_t *magic_r)
{
	struct xfs_fs *x = d->x;
	uint8_t *b = d->blk;
	int ret;

	if (d->blk_fb != fb) {
		d->blk_fb = UINT64_MAX;
		ret = vd_xfs_map_read(x, &d->m, fb, 1u << x->dirblklog, b);
		if (ret == -ENOENT)
			return xdir_bad(d, fb, "lies in a hole");
		if (ret)
			return xdir_bad(d, fb, "unreadable");
		if (x->crc) {
			bool ok = da ? vd_xfs_crc_ok(b, x->dirblksize, DA_CRC) :
				       vd_xfs_crc_ok(b, x->dirblksize,
						     DIR_DATA_CRC);

			if (!ok)
				return xdir_bad(d, fb, "fails its CRC");
			if (get_be64(b + (da ? DA_OWNER : DIR_DATA_OWNER)) !=
				    d->ip.ino ||
			    memcmp(b + (da ? DA_UUID : DIR_DATA_UUID),
				   x->meta_uuid, 16))
				return xdir_bad(d, fb, "belongs to another "
						"inode");
		}
		d->blk_fb = fb;
	}
	*magic_r = da ? get_be16(b + DA_MAGIC) : get_be32(b);
	return 0;
}

/* Where the entries of a data or block block end: a block-form block
 * holds its hash index and tail (count, stale) at the end. */
static int xdir_data_end(struct xdir *d, uint64_t fb, uint32_t magic,
			 unsigned *end_r)
{
	struct xfs_fs *x = d->x;
	unsigned hdr = x->crc ? DIR_DATA_HDR_V5 : DIR_DATA_HDR_V4;
	uint32_t count;

	if (magic == (x->crc ? XFS_DIR3_DATA_MAGIC : XFS_DIR2_DATA_MAGIC)) {
		*end_r = x->dirblksize;
		return 0;
	}
	if (magic != (x->crc ? XFS_DIR3_BLOCK_MAGIC : XFS_DIR2_BLOCK_MAGIC))
		return xdir_bad(d, fb, "is not a directory data block");
	count = get_be32(d->blk + x->dirblksize - 8);
	if (count > (x->dirblksize - hdr - 8) / 8)
		return xdir_bad(d, fb, "its hash index is larger than the "
				"block");
	*end_r = x->dirblksize - 8 - count * 8;
	return 0;
}

/* The entry at byte o of the data block in d->blk (entries end at end):
 * 0 with *len_r its length and, for a live entry, name/namelen/ino/ft;
 * a free entry has *namelen_r 0. -EIO when it overruns. */
static int xdir_entry(struct xdir *d, uint64_t fb, unsigned o, unsigned end,
		      unsigned *len_r, const uint8_t **name_r,
		      unsigned *namelen_r, uint64_t *ino_r, uint8_t *ft_r)
{
	const uint8_t *b = d->blk;
	unsigned len, nl;

	if (end - o < 8)
		return xdir_bad(d, fb, "an entry overruns the block");
	if (get_be16(b + o) == XFS_DIR2_DATA_FREE_TAG) {
		len = get_be16(b + o + 2);
		if (len < 8 || len % 8 || len > end - o)
			return xdir_bad(d, fb, "a free entry has a bad length");
		*len_r = len;
		*namelen_r = 0;
		return 0;
	}
	if (end - o < 16)
		return xdir_bad(d, fb, "an entry overruns the block");
	nl = b[o + 8];
	len = (8 + 1 + nl + (d->x->ftype ? 1 : 0) + 2 + 7) & ~7u;
	if (!nl || len > end - o || get_be16(b + o + len - 2) != o)
		return xdir_bad(d, fb, "an entry has a bad length or tag");
	*len_r = len;
	*name_r = b + o + 9;
	*namelen_r = nl;
	*ino_r = get_be64(b + o);
	*ft_r = d->x->ftype ? b[o + 9 + nl] : 0;
	return 0;
}

/* ---- shortform ---- */

/* Shortform header: 0 count, 1 i8count, 2 parent (8 bytes if i8count,
 * else 4). Entry: 0 namelen, 1 offset (2 bytes), 3 name, then the file
 * type (ftype) and the inode number (8 or 4 bytes). */
struct xdir_sf {
	const uint8_t *p, *end;
	unsigned count, isize;
	uint64_t parent;
};

static int xdir_sf_open(struct xdir *d, struct xdir_sf *sf)
{
	const struct xfs_inode *ip = &d->ip;
	size_t size = (size_t)VD_MIN(ip->size, (uint64_t)ip->dsize);

	if (size < 6)
		return xdir_bad(d, 0, "shortform header overruns the fork");
	sf->count = ip->dfork[0];
	sf->isize = ip->dfork[1] ? 8 : 4;
	if (size < 2 + sf->isize)
		return xdir_bad(d, 0, "shortform header overruns the fork");
	sf->parent = sf->isize == 8 ? get_be64(ip->dfork + 2) :
				      get_be32(ip->dfork + 2);
	sf->p = ip->dfork + 2 + sf->isize;
	sf->end = ip->dfork + size;
	return 0;
}

/* The next shortform entry at sf->p; advances. */
static int xdir_sf_next(struct xdir *d, struct xdir_sf *sf,
			const uint8_t **name_r, unsigned *nl_r,
			uint64_t *ino_r, uint8_t *ft_r)
{
	const uint8_t *p = sf->p;
	unsigned nl, ftb = d->x->ftype ? 1 : 0;

	if (sf->end - p < 3 || !p[0] ||
	    (size_t)(sf->end - p) < 3u + p[0] + ftb + sf->isize)
		return xdir_bad(d, 0, "a shortform entry overruns the fork");
	nl = p[0];
	*name_r = p + 3;
	*nl_r = nl;
	*ft_r = ftb ? p[3 + nl] : 0;
	*ino_r = sf->isize == 8 ? get_be64(p + 3 + nl + ftb) :
				  get_be32(p + 3 + nl + ftb);
	sf->p = p + 3 + nl + ftb + sf->isize;
	return 0;
}

/* ---- readdir ---- */

static int xdir_emit(vd_fs_fill fill, void *arg, const uint8_t *name,
		     unsigned nl, uint64_t ino, unsigned type, uint64_t next)
{
	char s[256];

	memcpy(s, name, nl);
	s[nl] = '\0';
	return fill(arg, s, ino, type, next);
}

static int xdir_sf_readdir(struct xdir *d, uint64_t cookie, vd_fs_fill fill,
			   void *arg)
{
	struct xdir_sf sf;
	int ret = xdir_sf_open(d, &sf);

	if (ret)
		return ret;
	if (cookie == 0 && fill(arg, ".", d->ip.ino, DT_DIR, 1))
		return 0;
	if (cookie <= 1 && fill(arg, "..", sf.parent, DT_DIR, 2))
		return 0;
	for (unsigned i = 0; i < sf.count; i++) {
		const uint8_t *name;
		unsigned nl;
		uint64_t ino;
		uint8_t ft;

		ret = xdir_sf_next(d, &sf, &name, &nl, &ino, &ft);
		if (ret)
			return ret;
		if (i + 2 < cookie)
			continue;
		if (xdir_emit(fill, arg, name, nl, ino, xdir_dtype(d->x, ft),
			      i + 3))
			return 0;
	}
	return 0;
}

/* The first file block of a directory block at or after fb that holds
 * data (skipping holes), or UINT64_MAX. */
static uint64_t xdir_next_mapped(const struct xdir *d, uint64_t fb)
{
	uint64_t per = 1ull << d->x->dirblklog;

	for (size_t i = 0; i < d->m.n; i++) {
		const struct xfs_ext *e = &d->m.ext[i];

		if (e->off + e->len <= fb)
			continue;
		return VD_MAX(fb, e->off & ~(per - 1));
	}
	return UINT64_MAX;
}

static int xdir_blocks_readdir(struct xdir *d, uint64_t cookie,
			       vd_fs_fill fill, void *arg)
{
	struct xfs_fs *x = d->x;
	uint64_t fb, limit = XFS_DIR2_LEAF_OFFSET >> x->blocklog;
	unsigned hdr = x->crc ? DIR_DATA_HDR_V5 : DIR_DATA_HDR_V4;
	int ret;

	fb = (cookie / x->dirblksize) << x->dirblklog;
	/* Ends: fb grows by a directory block each pass, below the leaf
	 * offset. */
	for (fb = xdir_next_mapped(d, fb); fb < limit;
	     fb = xdir_next_mapped(d, fb + (1ull << x->dirblklog))) {
		uint64_t base = (fb >> x->dirblklog) * x->dirblksize;
		unsigned end, o, len, nl;
		uint32_t magic;

		ret = xdir_read(d, fb, false, &magic);
		if (!ret)
			ret = xdir_data_end(d, fb, magic, &end);
		if (ret)
			return ret;
		/* Ends: each entry is at least 8 bytes long. */
		for (o = hdr; o < end; o += len) {
			const uint8_t *name;
			uint64_t ino;
			uint8_t ft;

			ret = xdir_entry(d, fb, o, end, &len, &name, &nl, &ino,
					 &ft);
			if (ret)
				return ret;
			if (!nl || base + o < cookie)
				continue;
			if (xdir_emit(fill, arg, name, nl, ino,
				      xdir_dtype(x, ft), base + o + len))
				return 0;
		}
	}
	return 0;
}

int vd_xfs_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		   vd_fs_fill fill, void *arg)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	struct xdir *d = malloc(sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	ret = xdir_open(x, dir, d);
	if (!ret) {
		if (d->ip.format == XFS_DINODE_FMT_LOCAL)
			ret = xdir_sf_readdir(d, cookie, fill, arg);
		else if (cookie < XFS_DIR2_LEAF_OFFSET)
			ret = xdir_blocks_readdir(d, cookie, fill, arg);
	}
	xdir_close(d);
	free(d);
	return ret;
}

/* ---- lookup ---- */

/* The entry at data-space address addr (in 8-byte units) if it is name:
 * 1 with *ino_r, 0 when it is another name, or -EIO. */
static int xdir_check_addr(struct xdir *d, uint32_t addr, const char *name,
			   size_t len, uint64_t *ino_r)
{
	struct xfs_fs *x = d->x;
	uint64_t byte = (uint64_t)addr * 8, fb;
	unsigned o = (unsigned)(byte % x->dirblksize), end, elen, nl;
	unsigned hdr = x->crc ? DIR_DATA_HDR_V5 : DIR_DATA_HDR_V4;
	const uint8_t *n;
	uint8_t ft;
	uint32_t magic;
	int ret;

	fb = (byte / x->dirblksize) << x->dirblklog;
	ret = xdir_read(d, fb, false, &magic);
	if (!ret)
		ret = xdir_data_end(d, fb, magic, &end);
	if (ret)
		return ret;
	if (o < hdr || o >= end)
		return xdir_bad(d, fb, "a hash entry points outside the "
				"entries");
	ret = xdir_entry(d, fb, o, end, &elen, &n, &nl, ino_r, &ft);
	if (ret)
		return ret;
	if (!nl)
		return xdir_bad(d, fb, "a hash entry points at a free entry");
	return xdir_name_eq(x, n, nl, name, len) ? 1 : 0;
}

/* Search a sorted hash index (8-byte entries hashval, address at ents,
 * count of them) for name: 1 found, 0 not here, -EIO. *more_r: the
 * index's last hash is <= hash, so the run may continue in the next
 * leaf. The index lives in d->blk, which a check may replace: it is
 * copied first. */
static int xdir_index_find(struct xdir *d, const uint8_t *ents,
			   unsigned count, uint32_t hash, const char *name,
			   size_t len, uint64_t *ino_r, bool *more_r)
{
	uint8_t *copy;
	unsigned lo = 0, hi = count;
	int ret = 0;

	*more_r = count && get_be32(ents + 8 * (count - 1)) <= hash;
	copy = malloc((size_t)count * 8 + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, ents, (size_t)count * 8);
	/* The first entry whose hash is >= hash. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (get_be32(copy + 8 * mid) < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < count && get_be32(copy + 8 * lo) == hash; lo++) {
		uint32_t addr = get_be32(copy + 8 * lo + 4);

		if (!addr)
			continue; /* stale */
		ret = xdir_check_addr(d, addr, name, len, ino_r);
		if (ret)
			break;
	}
	free(copy);
	return ret;
}

static int xdir_sf_lookup(struct xdir *d, const char *name, size_t len,
			  uint64_t *ino_r)
{
	struct xdir_sf sf;
	int ret = xdir_sf_open(d, &sf);

	if (ret)
		return ret;
	if (len == 2 && !memcmp(name, "..", 2)) {
		*ino_r = sf.parent;
		return 0;
	}
	for (unsigned i = 0; i < sf.count; i++) {
		const uint8_t *n;
		unsigned nl;
		uint8_t ft;

		ret = xdir_sf_next(d, &sf, &n, &nl, ino_r, &ft);
		if (ret)
			return ret;
		if (xdir_name_eq(d->x, n, nl, name, len))
			return 0;
	}
	return -ENOENT;
}

static int xdir_block_lookup(struct xdir *d, const char *name, size_t len,
			     uint32_t hash, uint64_t *ino_r)
{
	struct xfs_fs *x = d->x;
	unsigned end;
	uint32_t magic;
	bool more;
	int ret = xdir_read(d, 0, false, &magic);

	if (!ret)
		ret = xdir_data_end(d, 0, magic, &end);
	if (ret)
		return ret;
	if (magic != (x->crc ? XFS_DIR3_BLOCK_MAGIC : XFS_DIR2_BLOCK_MAGIC))
		return xdir_bad(d, 0, "a one-block directory's block is not "
				"a block-form block");
	ret = xdir_index_find(d, d->blk + end,
			      (x->dirblksize - 8 - end) / 8, hash, name, len,
			      ino_r, &more);
	return ret == 1 ? 0 : ret ? ret : -ENOENT;
}

/* Leaf and node forms: the da-btree from the leaf offset down to the
 * leaf that may hold hash, then sideways while the run of equal hashes
 * continues. */
static int xdir_leaf_lookup(struct xdir *d, const char *name, size_t len,
			    uint32_t hash, uint64_t *ino_r)
{
	struct xfs_fs *x = d->x;
	uint64_t fb = XFS_DIR2_LEAF_OFFSET >> x->blocklog;
	unsigned hdr = x->crc ? DA_HDR_V5 : DA_HDR_V4;
	unsigned coff = x->crc ? DA_COUNT_V5 : DA_COUNT_V4;
	unsigned maxents = (x->dirblksize - hdr) / 8;
	int depth = 0, side = 0, ret;
	int level = -1;

	/* Ends: each pass goes one level down (at most MAXDEPTH) or one
	 * leaf sideways (at most XFS_DIR_MAX_SIDEWAYS). */
	for (;;) {
		uint32_t magic;
		unsigned count;
		bool more;

		ret = xdir_read(d, fb, true, &magic);
		if (ret)
			return ret;
		count = get_be16(d->blk + coff);
		if (count > maxents)
			return xdir_bad(d, fb, "its count exceeds the block");
		if (magic == (x->crc ? XFS_DA3_NODE_MAGIC : XFS_DA_NODE_MAGIC)) {
			unsigned lvl = get_be16(d->blk + coff + 2), i;

			if (!count || ++depth > XFS_DA_NODE_MAXDEPTH ||
			    lvl == 0 || (level >= 0 && lvl != (unsigned)level - 1))
				return xdir_bad(d, fb, "a bad da-btree node "
						"(empty, too deep or at the "
						"wrong level)");
			level = (int)lvl;
			for (i = 0; i + 1 < count &&
				    get_be32(d->blk + hdr + 8 * i) < hash;
			     i++)
				;
			fb = get_be32(d->blk + hdr + 8 * i + 4);
			continue;
		}
		if (magic != (x->crc ? XFS_DIR3_LEAF1_MAGIC :
				       XFS_DIR2_LEAF1_MAGIC) &&
		    magic != (x->crc ? XFS_DIR3_LEAFN_MAGIC :
				       XFS_DIR2_LEAFN_MAGIC))
			return xdir_bad(d, fb, "is not a leaf or node block");
		if (level > 1)
			return xdir_bad(d, fb, "a leaf where a node was due");
		ret = xdir_index_find(d, d->blk + hdr, count, hash, name, len,
				      ino_r, &more);
		if (ret)
			return ret == 1 ? 0 : ret;
		if (!more || ++side > XFS_DIR_MAX_SIDEWAYS)
			return -ENOENT;
		/* d->blk may now hold a data block: reread the leaf. */
		ret = xdir_read(d, fb, true, &magic);
		if (ret)
			return ret;
		if (!get_be32(d->blk + DA_FORW))
			return -ENOENT;
		if (get_be32(d->blk + DA_FORW) == fb)
			return xdir_bad(d, fb, "its next leaf is itself");
		fb = get_be32(d->blk + DA_FORW);
		level = 1; /* another leaf */
	}
}

int vd_xfs_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		  uint64_t *ino_r)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	size_t len = strlen(name);
	struct xdir *d;
	int ret;

	if (!len || len > 255)
		return -ENOENT;
	if (!strcmp(name, ".")) {
		*ino_r = dir;
		return 0;
	}
	d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	ret = xdir_open(x, dir, d);
	if (!ret) {
		uint32_t hash = xdir_hash(x, name, len);

		if (d->ip.format == XFS_DINODE_FMT_LOCAL)
			ret = xdir_sf_lookup(d, name, len, ino_r);
		else if (d->ip.size == x->dirblksize)
			ret = xdir_block_lookup(d, name, len, hash, ino_r);
		else
			ret = xdir_leaf_lookup(d, name, len, hash, ino_r);
	}
	xdir_close(d);
	free(d);
	return ret;
}
