/* xfs: XFS v4 and v5, read by our own code: the superblock, the headers
 * of every AG, the log's state, inode attributes, symlinks, file data,
 * statfs. Inodes and forks are in xfs-inode.c, directories in xfs-dir.c,
 * extended attributes in xfs-attr.c.
 *
 * The volume is read as Linux's XFS reads it mounted read-only:
 * - The primary superblock is checked as xfs_validate_sb_common checks
 *   it, its CRC on v5; an incompatible feature we do not know refuses the
 *   volume by name, read-only-compatible ones (reflink, rmap, finobt) do
 *   not matter to a reader. The AGF, AGI and AGFL of every AG (and the
 *   secondary superblocks' magic) are checked at mount, and their counts
 *   give statfs as xfs_initialize_perag_data sums them.
 * - A log that needs recovery is not replayed: the tree is what
 *   `mount -o ro,norecovery` shows, with one warning.
 * - File data: a file's extent list is built once per open, then reads
 *   and maps go to the volume outside any lock. Holes and unwritten
 *   extents read as zeros; a realtime file fails with EIO (logged).
 * - v5 metadata blocks are checked for their magic and CRC; a bad one
 *   fails what needs it with EIO and a log line. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "fsread/xfs.h"

/* Superblock offsets (xfs_format.h, struct xfs_dsb). */
#define SB_MAGIC 0
#define SB_BLOCKSIZE 4
#define SB_DBLOCKS 8
#define SB_UUID 32
#define SB_LOGSTART 48
#define SB_ROOTINO 56
#define SB_AGBLOCKS 84
#define SB_AGCOUNT 88
#define SB_LOGBLOCKS 96
#define SB_VERSIONNUM 100
#define SB_SECTSIZE 102
#define SB_INODESIZE 104
#define SB_INOPBLOCK 106
#define SB_FNAME 108
#define SB_BLOCKLOG 120
#define SB_SECTLOG 121
#define SB_INODELOG 122
#define SB_INOPBLOG 123
#define SB_AGBLKLOG 124
#define SB_IMAX_PCT 127
#define SB_DIRBLKLOG 192
#define SB_FEATURES2 200
#define SB_FEAT_RO_COMPAT 212
#define SB_FEAT_INCOMPAT 216
#define SB_CRC 224
#define SB_META_UUID 248
#define XFS_SB_MAGIC 0x58465342 /* "XFSB" */

#define XFS_SB_VERSION_DIRV2BIT 0x2000
#define XFS_SB_VERSION_BORGBIT 0x4000
#define XFS_SB_VERSION_MOREBITSBIT 0x8000
#define XFS_SB_VERSION2_FTYPE 0x200

/* Incompatible features (XFS_SB_FEAT_INCOMPAT_*). */
static const struct {
	uint32_t bit;
	const char *name;
	bool ok; /* read here */
} xfs_incompat[] = {
	{ 1u << 0, "ftype", true },
	{ 1u << 1, "sparse inodes", true },
	{ 1u << 2, "meta_uuid", true },
	{ 1u << 3, "bigtime", true },
	{ 1u << 4, "needsrepair", false },
	{ 1u << 5, "nrext64", true },
	{ 1u << 6, "exchange-range", true },
	{ 1u << 7, "parent pointers", true },
	{ 1u << 8, "metadir", false },
	{ 1u << 9, "zoned", false },
};
#define XFS_INCOMPAT_FTYPE (1u << 0)
#define XFS_INCOMPAT_META_UUID (1u << 2)
#define XFS_INCOMPAT_NREXT64 (1u << 5)

/* AG headers (struct xfs_agf, xfs_agi, xfs_agfl), one sector each after
 * the AG's superblock copy. */
#define XFS_AGF_MAGIC 0x58414746 /* "XAGF" */
#define XFS_AGI_MAGIC 0x58414749 /* "XAGI" */
#define XFS_AGFL_MAGIC 0x5841464c /* "XAFL" */
#define AGF_SEQNO 8
#define AGF_LENGTH 12
#define AGF_FLCOUNT 48
#define AGF_FREEBLKS 52
#define AGF_BTREEBLKS 60
#define AGF_RMAP_BLOCKS 80
#define AGF_CRC 216
#define AGI_SEQNO 8
#define AGI_LENGTH 12
#define AGI_COUNT 16
#define AGI_FREECOUNT 28
#define AGI_CRC 312
#define AGFL_SEQNO 4
#define AGFL_CRC 32
#define XFS_RO_COMPAT_RMAPBT (1u << 1)
/* Refused above this many AGs: mkfs makes at most a few thousand. */
#define XFS_MAX_AGCOUNT (1u << 20)

/* Log record header (xfs_log_format.h, struct xlog_rec_header) and op
 * header (struct xlog_op_header). */
#define XLOG_HEADER_MAGIC 0xfeedbabe
#define XLOG_CYCLE 4
#define XLOG_VERSION 8
#define XLOG_NUM_LOGOPS 40
#define XLOG_SIZE 320
#define XLOG_OP_FLAGS 9
#define XLOG_UNMOUNT_TRANS 0x20
#define XLOG_BB 512u
/* How far back from the head a record header is looked for: more than
 * the largest record (256 KiB plus its headers). */
#define XLOG_SEARCH_BB 2048u

#define XFS_SYMLINK_MAXLEN 1024u
#define XFS_SYMLINK_MAGIC 0x58534c4d /* "XSLM" */
#define XFS_SYMLINK_HDR 56u
#define XFS_SYMLINK_MAX_BLOCKS 4u
#define XFS_DIFLAG_REALTIME 0x1

/* ---- CRC32c ---- */

bool vd_xfs_crc_ok(const uint8_t *b, size_t len, size_t crcoff)
{
	static const uint8_t zero[4];
	uint32_t c = 0xffffffffu;

	if (crcoff + 4 > len)
		return false;
	c = vd_crc32c(c, b, crcoff);
	c = vd_crc32c(c, zero, 4);
	c = vd_crc32c(c, b + crcoff + 4, len - crcoff - 4);
	return ~c == get_le32(b + crcoff);
}

/* ---- attributes ---- */

static int xfs_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	struct xfs_inode *ip = malloc(sizeof(*ip));
	int ret;

	if (!ip)
		return -ENOMEM;
	ret = vd_xfs_iget(x, ino, ip);
	if (ret)
		goto out;
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = ip->mode;
	a->nlink = ip->nlink;
	a->uid = ip->uid;
	a->gid = ip->gid;
	a->size = ip->size;
	a->blocks = ip->nblocks << (x->blocklog - 9);
	a->atime = ip->atime;
	a->mtime = ip->mtime;
	a->ctime = ip->ctime;
	if (ip->format == XFS_DINODE_FMT_DEV) {
		/* xfs_dev_t: the SysV encoding, 14 bits of major (the
		 * kernel keeps 9) and 18 of minor. */
		uint32_t d = ip->dsize >= 4 ? get_be32(ip->dfork) : 0;

		if (S_ISCHR(ip->mode) || S_ISBLK(ip->mode))
			a->rdev = makedev((d >> 18) & 0x1ff, d & 0x3ffff);
		a->size = 0;
	}
out:
	free(ip);
	return ret;
}

/* A symlink's target in blocks: one buffer per extent, which on v5 starts
 * with a header (magic, offset, bytes, CRC over the extent, owner) as
 * xfs_symlink_write_target writes it. */
static int xfs_symlink_remote(struct xfs_fs *x, const struct xfs_inode *ip,
			      const struct xfs_map *m, char *t, size_t *len_r)
{
	unsigned hdr = x->crc ? XFS_SYMLINK_HDR : 0;
	size_t len = 0;
	uint64_t fb = 0;
	uint8_t *b = NULL;
	int ret = 0;

	/* Ends: each extent gives at least one byte (hdr < blocksize), or
	 * fails; the target is at most 1023 bytes. */
	for (size_t i = 0; i < m->n && len < ip->size; i++) {
		const struct xfs_ext *e = &m->ext[i];
		size_t bytes, n;

		/* 1023 bytes and a header fill at most 2 blocks of 1 KiB
		 * (or of 512 bytes on v4). */
		/* ... and follow each other from file block 0. */
		if (e->len > XFS_SYMLINK_MAX_BLOCKS || e->unwritten ||
		    e->off != fb) {
			ret = -EIO;
			break;
		}
		bytes = (size_t)e->len << x->blocklog;
		n = VD_MIN(bytes - hdr, (size_t)ip->size - len);
		free(b);
		b = malloc(bytes);
		if (!b)
			return -ENOMEM;
		ret = vd_xfs_map_read(x, m, e->off, (unsigned)e->len, b);
		if (!ret && x->crc &&
		    (get_be32(b) != XFS_SYMLINK_MAGIC ||
		     !vd_xfs_crc_ok(b, bytes, 12) || get_be32(b + 4) != len ||
		     get_be32(b + 8) != n || get_be64(b + 32) != ip->ino))
			ret = -EIO;
		if (ret)
			break;
		memcpy(t + len, b + hdr, n);
		len += n;
		fb += e->len;
	}
	free(b);
	if (!ret && len < ip->size)
		ret = -EIO;
	if (ret) {
		vd_log(VD_LOG_ERR, "%s: xfs: symlink %" PRIu64 ": the blocks "
		       "of its target are missing or bad", x->name, ip->ino);
		return -EIO;
	}
	*len_r = len;
	return 0;
}

static int xfs_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
			size_t size)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	struct xfs_inode *ip = malloc(sizeof(*ip));
	struct xfs_map m = { NULL, 0 };
	char t[XFS_SYMLINK_MAXLEN + 1];
	size_t len = 0;
	int ret;

	if (!ip)
		return -ENOMEM;
	ret = vd_xfs_iget(x, ino, ip);
	if (ret)
		goto out;
	if (!S_ISLNK(ip->mode)) {
		ret = -EINVAL;
		goto out;
	}
	if (!ip->size || ip->size > XFS_SYMLINK_MAXLEN) {
		vd_log(VD_LOG_ERR, "%s: xfs: symlink %" PRIu64 ": length %"
		       PRIu64 " is outside 1..%u", x->name, ino, ip->size,
		       XFS_SYMLINK_MAXLEN);
		ret = -EIO;
		goto out;
	}
	if (ip->format == XFS_DINODE_FMT_LOCAL) {
		if (ip->size > ip->dsize) {
			vd_log(VD_LOG_ERR, "%s: xfs: symlink %" PRIu64 ": "
			       "length %" PRIu64 " exceeds its fork (%zu "
			       "bytes)", x->name, ino, ip->size, ip->dsize);
			ret = -EIO;
			goto out;
		}
		memcpy(t, ip->dfork, (size_t)ip->size);
		len = (size_t)ip->size;
	} else {
		ret = vd_xfs_fork_map(x, ip, XFS_DATA_FORK, &m);
		if (!ret)
			ret = xfs_symlink_remote(x, ip, &m, t, &len);
		if (ret)
			goto out;
	}
	if (size) {
		size_t n = VD_MIN(len, size - 1);

		memcpy(buf, t, n);
		buf[n] = '\0';
	}
out:
	free(m.ext);
	free(ip);
	return ret;
}

/* ---- file data ---- */

struct xfs_file {
	struct vd_fs_file base;
	struct xfs_fs *x;
	uint64_t ino;
	uint64_t size;
	struct xfs_map m;
};

static int xfs_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	struct xfs_inode *ip = malloc(sizeof(*ip));
	struct xfs_file *h = NULL;
	int ret;

	if (!ip)
		return -ENOMEM;
	ret = vd_xfs_iget(x, ino, ip);
	if (ret)
		goto out;
	if (!S_ISREG(ip->mode)) {
		ret = S_ISDIR(ip->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (ip->flags & XFS_DIFLAG_REALTIME) {
		vd_log(VD_LOG_ERR, "%s: xfs: file %" PRIu64 " lies on the "
		       "realtime device, which is not read", x->name, ino);
		ret = -EIO;
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		ret = -ENOMEM;
		goto out;
	}
	h->base.fs = fs;
	h->x = x;
	h->ino = ino;
	h->size = ip->size;
	ret = vd_xfs_fork_map(x, ip, XFS_DATA_FORK, &h->m);
	if (ret) {
		free(h);
		goto out;
	}
	*f_r = &h->base;
out:
	free(ip);
	return ret;
}

/* Pieces of [off, off + len) (inside the size): data at volume offsets,
 * zeros for holes and unwritten extents, adjacent ones merged. Returns
 * the bytes covered (less than len when max pieces are used up). */
static uint64_t xfs_pieces(struct xfs_file *h, uint64_t off, uint64_t len,
			   struct vd_fs_piece *p, unsigned max, unsigned *n_r)
{
	struct xfs_fs *x = h->x;
	const struct xfs_map *m = &h->m;
	uint64_t pos = off, end = off + len, mask = x->blocksize - 1;

	*n_r = 0;
	/* Ends: each pass covers at least one byte of [pos, end), or
	 * stops. */
	while (pos < end) {
		uint64_t fb = pos >> x->blocklog, in = pos & mask, n, avail;
		uint64_t want = ((in + (end - pos) - 1) >> x->blocklog) + 1;
		size_t lo = 0, hi = m->n;
		struct vd_fs_piece q = { 0, 0, true };
		struct vd_fs_piece *last = *n_r ? &p[*n_r - 1] : NULL;

		/* lo: the first extent starting after fb. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (m->ext[mid].off <= fb)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo && fb - m->ext[lo - 1].off < m->ext[lo - 1].len) {
			const struct xfs_ext *e = &m->ext[lo - 1];

			avail = e->off + e->len - fb;
			q.zero = e->unwritten;
			q.vol_off = ((e->blk + (fb - e->off)) << x->blocklog) +
				    in;
		} else {
			avail = lo < m->n ? m->ext[lo].off - fb : want;
		}
		n = avail >= want ? end - pos : (avail << x->blocklog) - in;
		q.len = n;
		if (q.zero)
			q.vol_off = 0;
		if (last && last->zero == q.zero &&
		    (q.zero || last->vol_off + last->len == q.vol_off))
			last->len += n;
		else if (*n_r == max)
			break;
		else
			p[(*n_r)++] = q;
		pos += n;
	}
	return pos - off;
}

static int xfs_map(struct vd_fs_file *ff, uint64_t off, size_t len,
		   struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		   size_t *got_r)
{
	struct xfs_file *h = (struct xfs_file *)ff;

	*n_r = 0;
	*got_r = 0;
	if (off >= h->size || !len || !max)
		return 0;
	*got_r = (size_t)xfs_pieces(h, off, VD_MIN(len, h->size - off), p,
				    max, n_r);
	return 0;
}

static int xfs_read(struct vd_fs_file *ff, void *buf, size_t len,
		    uint64_t off, size_t *got_r)
{
	struct xfs_file *h = (struct xfs_file *)ff;
	struct xfs_fs *x = h->x;
	uint8_t *out = buf;
	uint64_t pos, end;

	*got_r = 0;
	if (off >= h->size || !len)
		return 0;
	len = (size_t)VD_MIN(len, h->size - off);
	pos = off;
	end = off + len;
	/* Ends: each pass covers at least one byte of [pos, end). */
	while (pos < end) {
		struct vd_fs_piece p[16];
		unsigned n;

		xfs_pieces(h, pos, end - pos, p, 16, &n);
		for (unsigned i = 0; i < n; i++) {
			if (p[i].zero)
				memset(out + (pos - off), 0, p[i].len);
			else if (vd_vol_read(x->base.vol, out + (pos - off),
					     p[i].len, p[i].vol_off)) {
				vd_log(VD_LOG_ERR, "%s: xfs: file %" PRIu64
				       ": read at %" PRIu64 " failed", x->name,
				       h->ino, pos);
				return -EIO;
			}
			pos += p[i].len;
		}
	}
	*got_r = len;
	return 0;
}

static int xfs_seek(struct vd_fs_file *ff, uint64_t off, bool want_data,
		    uint64_t *off_r)
{
	struct xfs_file *h = (struct xfs_file *)ff;
	uint64_t pos = off;

	if (off >= h->size)
		return -ENXIO;
	/* Ends: each pass moves pos past one piece. */
	while (pos < h->size) {
		struct vd_fs_piece p;
		unsigned n;

		xfs_pieces(h, pos, h->size - pos, &p, 1, &n);
		if (!n)
			break;
		if (p.zero != want_data) {
			*off_r = pos;
			return 0;
		}
		pos += p.len;
	}
	if (!want_data) {
		*off_r = h->size;
		return 0;
	}
	return -ENXIO;
}

static void xfs_release(struct vd_fs_file *ff)
{
	struct xfs_file *h = (struct xfs_file *)ff;

	if (h) {
		free(h->m.ext);
		free(h);
	}
}

/* ---- statfs, info ---- */

static int xfs_statfs(struct vd_fs *fs, struct statvfs *st)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	uint64_t aside = (uint64_t)x->agcount * 8 + x->allocbt_blks;
	uint64_t bfree = x->fdblocks > aside ? x->fdblocks - aside : 0;
	uint64_t files, used = x->icount - VD_MIN(x->ifree, x->icount);

	/* As xfs_fs_statfs on a read-only mount: the internal log is not
	 * counted, 4 + XFS_ALLOCBT_AGFL_RESERVE blocks per AG and the
	 * free-space B-trees' blocks are set aside, and free inodes are
	 * what the free blocks could still hold. */
	memset(st, 0, sizeof(*st));
	st->f_bsize = x->blocksize;
	st->f_frsize = x->blocksize;
	st->f_blocks = x->dblocks - (x->logstart ? x->logblocks : 0);
	st->f_bfree = bfree;
	st->f_bavail = bfree;
	files = x->icount + (bfree << x->inopblog);
	if (x->maxicount && files > x->maxicount)
		files = x->maxicount;
	if (files < x->icount)
		files = x->icount;
	st->f_files = files;
	st->f_ffree = files - used;
	st->f_favail = st->f_ffree;
	st->f_namemax = 255;
	return 0;
}

static void xfs_info(struct vd_fs *fs, struct vd_fs_info *i)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;

	memset(i, 0, sizeof(*i));
	snprintf(i->type, sizeof(i->type), "xfs");
	snprintf(i->subtype, sizeof(i->subtype), "V%u", x->version);
	snprintf(i->label, sizeof(i->label), "%s", x->label);
	vd_uuid_str(x->uuid, false, i->uuid);
	i->block_size = x->blocksize;
	i->needed_recovery = x->log_dirty;
}

/* ---- mount ---- */

static int xfs_probe(const struct vd_vol *v)
{
	uint8_t b[8];

	if (v->len < 4096 || vd_vol_read(v, b, sizeof(b), 0))
		return 0;
	return get_be32(b + SB_MAGIC) == XFS_SB_MAGIC;
}

static uint64_t xfs_root(struct vd_fs *fs)
{
	return ((struct xfs_fs *)fs)->rootino;
}

static void xfs_unmount(struct vd_fs *fs)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;

	if (x->icache)
		vd_cache_free(x->icache);
	free(x);
}

static unsigned xfs_log2(uint64_t v)
{
	unsigned l = 0;

	while (v > 1) {
		v >>= 1;
		l++;
	}
	return l;
}

/* Check the primary superblock sb[sectsize]: x's geometry, or -EUCLEAN /
 * -ENOTSUP with e. */
static int xfs_read_sb(struct xfs_fs *x, const uint8_t *sb, struct vd_err *e)
{
	const struct vd_vol *v = x->base.vol;
	unsigned vnum = get_be16(sb + SB_VERSIONNUM);
	uint32_t incompat, f2 = get_be32(sb + SB_FEATURES2);
	uint64_t need;

	x->version = vnum & 0xf;
	if (x->version != 4 && x->version != 5)
		return vd_fail(e, -ENOTSUP, "%s: xfs: superblock version %u "
			       "is not supported (4 and 5 are)", x->name,
			       x->version);
	x->crc = x->version == 5;
	x->blocksize = get_be32(sb + SB_BLOCKSIZE);
	x->blocklog = sb[SB_BLOCKLOG];
	if (!vd_is_pow2(x->blocksize) || x->blocksize < 512 ||
	    x->blocksize > 65536 || x->blocksize != 1u << x->blocklog)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock block size %u "
			       "(log %u) is not a power of two 512..65536",
			       x->name, x->blocksize, x->blocklog);
	x->sectsize = get_be16(sb + SB_SECTSIZE);
	if (!vd_is_pow2(x->sectsize) || x->sectsize < 512 ||
	    x->sectsize > 32768 || x->sectsize != 1u << sb[SB_SECTLOG] ||
	    x->sectsize > x->blocksize)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock sector size "
			       "%u (log %u) is not a power of two 512..32768 "
			       "within a block", x->name, x->sectsize,
			       sb[SB_SECTLOG]);
	x->inodesize = get_be16(sb + SB_INODESIZE);
	x->inodelog = sb[SB_INODELOG];
	x->inopblog = sb[SB_INOPBLOG];
	if (!vd_is_pow2(x->inodesize) || x->inodesize < 256 ||
	    x->inodesize > XFS_INODE_MAX || x->inodesize > x->blocksize ||
	    x->inodesize != 1u << x->inodelog ||
	    x->inopblog != x->blocklog - x->inodelog ||
	    get_be16(sb + SB_INOPBLOCK) != x->blocksize / x->inodesize ||
	    (x->crc && x->inodesize < 512))
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock inode size %u "
			       "(log %u, %u per block) does not suit %u-byte "
			       "blocks", x->name, x->inodesize, x->inodelog,
			       get_be16(sb + SB_INOPBLOCK), x->blocksize);
	x->agblocks = get_be32(sb + SB_AGBLOCKS);
	x->agcount = get_be32(sb + SB_AGCOUNT);
	x->agblklog = sb[SB_AGBLKLOG];
	x->dblocks = get_be64(sb + SB_DBLOCKS);
	if (x->agblocks < 64 || x->agblklog != xfs_log2(x->agblocks - 1) + 1)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock AG size %"
			       PRIu32 " blocks (log %u) is invalid", x->name,
			       x->agblocks, x->agblklog);
	if (!x->agcount || x->agcount > XFS_MAX_AGCOUNT ||
	    x->dblocks > (uint64_t)x->agcount * x->agblocks ||
	    x->dblocks <= (uint64_t)(x->agcount - 1) * x->agblocks)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock AG count %"
			       PRIu32 " of %" PRIu32 " blocks does not match "
			       "%" PRIu64 " blocks", x->name, x->agcount,
			       x->agblocks, x->dblocks);
	if (__builtin_mul_overflow(x->dblocks, (uint64_t)x->blocksize,
				   &need) || need > v->len)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock says %" PRIu64
			       " blocks of %u bytes, more than the volume (%"
			       PRIu64 " bytes)", x->name, x->dblocks,
			       x->blocksize, v->len);
	x->dirblklog = sb[SB_DIRBLKLOG];
	if (x->blocklog + x->dirblklog > 16)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock directory "
			       "block size 2^%u exceeds 64 KiB", x->name,
			       x->blocklog + x->dirblklog);
	x->dirblksize = x->blocksize << x->dirblklog;
	if (x->version == 4) {
		if (!(vnum & XFS_SB_VERSION_DIRV2BIT))
			return vd_fail(e, -ENOTSUP, "%s: xfs: version 1 "
				       "directories are not supported",
				       x->name);
		x->ftype = (vnum & XFS_SB_VERSION_MOREBITSBIT) &&
			   (f2 & XFS_SB_VERSION2_FTYPE);
		incompat = 0;
	} else {
		if (!vd_xfs_crc_ok(sb, x->sectsize, SB_CRC))
			return vd_fail(e, -EUCLEAN, "%s: xfs: superblock "
				       "fails its CRC", x->name);
		incompat = get_be32(sb + SB_FEAT_INCOMPAT);
		for (unsigned i = 0; i < VD_ARRAY_SIZE(xfs_incompat); i++) {
			if (!(incompat & xfs_incompat[i].bit))
				continue;
			if (!xfs_incompat[i].ok)
				return vd_fail(e, -ENOTSUP, "%s: xfs: "
					       "incompatible feature %s is not "
					       "supported", x->name,
					       xfs_incompat[i].name);
			incompat &= ~xfs_incompat[i].bit;
		}
		if (incompat)
			return vd_fail(e, -ENOTSUP, "%s: xfs: unknown "
				       "incompatible features 0x%" PRIx32,
				       x->name, incompat);
		incompat = get_be32(sb + SB_FEAT_INCOMPAT);
		x->ftype = incompat & XFS_INCOMPAT_FTYPE;
		x->nrext64 = incompat & XFS_INCOMPAT_NREXT64;
	}
	x->ci = vnum & XFS_SB_VERSION_BORGBIT;
	memcpy(x->uuid, sb + SB_UUID, 16);
	memcpy(x->meta_uuid,
	       sb + (incompat & XFS_INCOMPAT_META_UUID ? SB_META_UUID :
							 SB_UUID), 16);
	memcpy(x->label, sb + SB_FNAME, 12);
	x->label[12] = '\0';
	/* xfs_ialloc_setup_geometry: at most imax_pct percent of the
	 * blocks hold inodes, in whole inode chunks (64 inodes, or one
	 * block of them). */
	if (sb[SB_IMAX_PCT]) {
		uint64_t chunk = VD_MAX(64u >> x->inopblog, 1u);

		x->maxicount = (x->dblocks * sb[SB_IMAX_PCT] / 100 / chunk *
				chunk) << x->inopblog;
	}
	x->rootino = get_be64(sb + SB_ROOTINO);
	x->logstart = get_be64(sb + SB_LOGSTART);
	x->logblocks = get_be32(sb + SB_LOGBLOCKS);
	if (x->agblklog + x->inopblog > 56 ||
	    (x->rootino >> (x->agblklog + x->inopblog)) >= x->agcount)
		return vd_fail(e, -EUCLEAN, "%s: xfs: superblock root inode %"
			       PRIu64 " lies outside the AGs", x->name,
			       x->rootino);
	return 0;
}

/* One AG header sector: its magic, CRC (v5) and AG number. */
static int xfs_check_hdr(struct xfs_fs *x, const uint8_t *b, uint32_t agno,
			 uint32_t magic, size_t crcoff, size_t seqoff,
			 const char *what, struct vd_err *e)
{
	if (get_be32(b) != magic)
		return vd_fail(e, -EUCLEAN, "%s: xfs: AG %" PRIu32 " %s has "
			       "bad magic 0x%08" PRIx32, x->name, agno, what,
			       get_be32(b));
	if (x->crc && !vd_xfs_crc_ok(b, x->sectsize, crcoff))
		return vd_fail(e, -EUCLEAN, "%s: xfs: AG %" PRIu32 " %s fails "
			       "its CRC", x->name, agno, what);
	if (seqoff && get_be32(b + seqoff) != agno)
		return vd_fail(e, -EUCLEAN, "%s: xfs: AG %" PRIu32 " %s says "
			       "it is AG %" PRIu32, x->name, agno, what,
			       get_be32(b + seqoff));
	return 0;
}

/* The headers of every AG: the superblock copy, AGF, AGI and AGFL. */
static int xfs_read_ags(struct xfs_fs *x, uint8_t *b, bool rmap,
			struct vd_err *e)
{
	unsigned ss = x->sectsize;
	int ret;

	for (uint32_t ag = 0; ag < x->agcount; ag++) {
		uint64_t at = ((uint64_t)ag * x->agblocks) << x->blocklog;
		uint32_t len = ag + 1 < x->agcount ?
				       x->agblocks :
				       (uint32_t)(x->dblocks -
						  (uint64_t)ag * x->agblocks);
		const uint8_t *agf = b + ss, *agi = b + 2 * ss;
		int64_t bt;

		if (vd_vol_read(x->base.vol, b, 4 * ss, at))
			return vd_fail(e, -EIO, "%s: xfs: AG %" PRIu32 " headers"
				       " at 0x%" PRIx64 " unreadable", x->name,
				       ag, at);
		if (get_be32(b) != XFS_SB_MAGIC)
			return vd_fail(e, -EUCLEAN, "%s: xfs: AG %" PRIu32
				       " superblock copy has bad magic 0x%08"
				       PRIx32, x->name, ag, get_be32(b));
		ret = xfs_check_hdr(x, agf, ag, XFS_AGF_MAGIC, AGF_CRC,
				    AGF_SEQNO, "AGF", e);
		if (!ret)
			ret = xfs_check_hdr(x, agi, ag, XFS_AGI_MAGIC,
					    AGI_CRC, AGI_SEQNO, "AGI", e);
		if (!ret && x->crc)
			ret = xfs_check_hdr(x, b + 3 * ss, ag, XFS_AGFL_MAGIC,
					    AGFL_CRC, AGFL_SEQNO, "AGFL", e);
		if (ret)
			return ret;
		if (get_be32(agf + AGF_LENGTH) != len ||
		    get_be32(agi + AGI_LENGTH) != len)
			return vd_fail(e, -EUCLEAN, "%s: xfs: AG %" PRIu32
				       " headers say %" PRIu32 " and %" PRIu32
				       " blocks, the superblock %" PRIu32,
				       x->name, ag, get_be32(agf + AGF_LENGTH),
				       get_be32(agi + AGI_LENGTH), len);
		x->fdblocks += (uint64_t)get_be32(agf + AGF_FREEBLKS) +
			       get_be32(agf + AGF_FLCOUNT) +
			       get_be32(agf + AGF_BTREEBLKS);
		/* xfs_alloc_read_agf: the free-space B-trees' blocks are
		 * the AGF's B-tree blocks less the rmap's. */
		bt = get_be32(agf + AGF_BTREEBLKS);
		if (rmap)
			bt -= (int64_t)get_be32(agf + AGF_RMAP_BLOCKS) - 1;
		if (bt > 0)
			x->allocbt_blks += (uint64_t)bt;
		x->icount += get_be32(agi + AGI_COUNT);
		x->ifree += get_be32(agi + AGI_FREECOUNT);
	}
	return 0;
}

/* The cycle number a log basic block carries: in a record header after
 * the magic, else in its first word (xlog_pack_data). */
static int xfs_log_cycle(struct xfs_fs *x, uint64_t log, uint64_t bb,
			 uint32_t *c_r, uint8_t *b)
{
	if (vd_vol_read(x->base.vol, b, XLOG_BB, log + bb * XLOG_BB))
		return -EIO;
	*c_r = get_be32(b) == XLOG_HEADER_MAGIC ? get_be32(b + XLOG_CYCLE) :
						  get_be32(b);
	return 0;
}

/* Whether the internal log needs recovery: its head is where the cycle
 * number drops (xlog_find_head, without the torn-write corner cases); the
 * log is clean when the last record before it is a lone unmount record
 * (xlog_check_unmount_rec). Unreadable or unrecognisable: dirty. */
static bool xfs_log_dirty(struct xfs_fs *x)
{
	uint64_t blk, log, nbb, head, lo, hi;
	uint32_t c0, cl, c;
	uint8_t b[XLOG_BB];

	if (!x->logstart)
		return false; /* an external log: not ours to read */
	if (!x->logblocks ||
	    !vd_range_ok(x->logstart >> x->agblklog, 1, x->agcount))
		return true;
	blk = (x->logstart >> x->agblklog) * x->agblocks +
	      (x->logstart & ((1ull << x->agblklog) - 1));
	if (!vd_xfs_blk_ok(x, blk, x->logblocks))
		return true;
	log = blk << x->blocklog;
	nbb = (uint64_t)x->logblocks << (x->blocklog - 9);
	if (xfs_log_cycle(x, log, 0, &c0, b) ||
	    xfs_log_cycle(x, log, nbb - 1, &cl, b))
		return true;
	if (c0 == cl) {
		head = nbb;
	} else {
		lo = 0;
		hi = nbb - 1;
		/* Ends: the interval halves. */
		while (hi - lo > 1) {
			uint64_t mid = lo + (hi - lo) / 2;

			if (xfs_log_cycle(x, log, mid, &c, b))
				return true;
			if (c == c0)
				lo = mid;
			else
				hi = mid;
		}
		head = hi;
	}
	/* Ends: at most XLOG_SEARCH_BB blocks back, wrapping once. */
	for (uint64_t i = 1; i <= VD_MIN((uint64_t)XLOG_SEARCH_BB, nbb); i++) {
		uint64_t bb = (head + nbb - i) % nbb, hblks = 1, size;
		unsigned version;

		if (vd_vol_read(x->base.vol, b, XLOG_BB, log + bb * XLOG_BB))
			return true;
		if (get_be32(b) != XLOG_HEADER_MAGIC)
			continue;
		version = get_be32(b + XLOG_VERSION);
		size = get_be32(b + XLOG_SIZE);
		if ((version & 2) && size > 32768)
			hblks = (size + 32767) / 32768;
		if (get_be32(b + XLOG_NUM_LOGOPS) != 1)
			return true;
		if (vd_vol_read(x->base.vol, b, XLOG_BB,
				log + ((bb + hblks) % nbb) * XLOG_BB))
			return true;
		return !(b[XLOG_OP_FLAGS] & XLOG_UNMOUNT_TRANS);
	}
	return true;
}

static int xfs_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		     struct vd_fs **fs_r, struct vd_err *e)
{
	struct xfs_fs *x = calloc(1, sizeof(*x));
	uint8_t *b = NULL;
	int ret;

	(void)o;
	if (!x)
		return -ENOMEM;
	x->base.ops = &vd_fs_xfs;
	x->base.vol = v;
	x->name = v->name;
	/* The largest sector (32 KiB) times the four AG header sectors. */
	b = malloc(4 * 32768);
	if (!b) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = vd_vol_read(v, b, 512, 0);
	if (!ret && get_be16(b + SB_SECTSIZE) > 512 &&
	    get_be16(b + SB_SECTSIZE) <= 32768)
		ret = vd_vol_read(v, b, get_be16(b + SB_SECTSIZE), 0);
	if (ret) {
		ret = vd_fail(e, ret, "%s: xfs: superblock unreadable",
			      x->name);
		goto fail;
	}
	ret = xfs_read_sb(x, b, e);
	/* 4 MiB of inode blocks: a walk's working set (the inodes of the
	 * folders it is in) with room to spare. */
	if (!ret && !(x->icache = vd_cache_new(4u << 20, 1024)))
		ret = -ENOMEM;
	if (!ret)
		ret = xfs_read_ags(x, b,
				   x->crc && (get_be32(b + SB_FEAT_RO_COMPAT) &
					      XFS_RO_COMPAT_RMAPBT), e);
	if (ret)
		goto fail;
	x->log_dirty = xfs_log_dirty(x);
	if (x->log_dirty)
		vd_log(VD_LOG_WARN, "%s: xfs: the log needs recovery, which is "
		       "not done: the files are shown as `mount -o "
		       "ro,norecovery` shows them", x->name);
	free(b);
	*fs_r = &x->base;
	return 0;
fail:
	free(b);
	xfs_unmount(&x->base);
	return ret;
}

const struct vd_fs_ops vd_fs_xfs = {
	.name = "xfs",
	.probe = xfs_probe,
	.mount = xfs_mount,
	.unmount = xfs_unmount,
	.root = xfs_root,
	.lookup = vd_xfs_lookup,
	.getattr = xfs_getattr,
	.readdir = vd_xfs_readdir,
	.open = xfs_open,
	.read = xfs_read,
	.map = xfs_map,
	.seek = xfs_seek,
	.release = xfs_release,
	.readlink = xfs_readlink,
	.listxattr = vd_xfs_listxattr,
	.getxattr = vd_xfs_getxattr,
	.statfs = xfs_statfs,
	.info = xfs_info,
};
