/* btrfs: file data.
 *
 * A file's bytes are EXTENT_DATA items keyed by file offset: inline (the
 * bytes in the item, maybe compressed), regular (a range of a logical
 * extent, maybe compressed as a whole) or prealloc (reads as zeros). A
 * regular extent at logical 0 is a hole; with NO_HOLES a hole has no
 * item at all. The list is read once per open, checked (no overlaps,
 * every range inside its extent), then reads go to the volume with no
 * lock held.
 *
 * Compressed extents (zlib, LZO in btrfs' own framing, zstd) are decoded
 * whole, at most 128 KiB each, and kept in a small cache of decoded
 * extents (zlock), so a sequential read decodes each once; decoding runs
 * outside the lock. The compressed extents one read covers (a 1 MiB
 * request covers eight) are decoded together on the helper pool
 * (common/pool.h), so a single reader uses every core, as compressed
 * qcow2 clusters are. Output shorter than the
 * extent reads as zeros past its end, as the kernel fills it; longer
 * output is cut.
 *
 * Data is checked against its checksums (btrfs-chunk.c), so a file that
 * has them is read, not handed up as pieces to splice: map() gives
 * pieces only for files without checksums (nodatasum, nodatacow). */
#include <errno.h>
#include <inttypes.h>
#include <lzo/lzo1x.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/lazy.h"
#include "common/pool.h"
#include "common/tls.h"
#include "common/util.h"
#include "fsread/btrfs.h"

#define EXT_INLINE 0
#define EXT_REG 1
#define EXT_PREALLOC 2
#define COMP_NONE 0
#define COMP_ZLIB 1
#define COMP_LZO 2
#define COMP_ZSTD 3
/* File extent item (struct btrfs_file_extent_item). */
#define FE_RAM_BYTES 8
#define FE_COMPRESSION 16
#define FE_ENCRYPTION 17
#define FE_OTHER 18
#define FE_TYPE 20
#define FE_INLINE_DATA 21
#define FE_DISK_BYTENR 21
#define FE_DISK_NUM 29
#define FE_OFFSET 37
#define FE_NUM_BYTES 45
#define FE_LEN 53u
/* Extents one open file may list (each at least a sector). */
#define BTRFS_MAX_EXTENTS (1u << 22)
/* Decoded extents kept. */
#define BTRFS_ZCACHE 32u
/* Compressed extents one read gathers before decoding them together. */
#define BTRFS_ZJOBS 16u
/* Bytes read from the volume per pass. */
#define BTRFS_READ_CHUNK (1u << 20)
#define BTRFS_SYMLINK_MAX 4095u

struct btrfs_ext {
	uint64_t off, len;	/* file bytes [off, off + len) */
	uint64_t bytenr;	/* regular: the logical extent */
	uint64_t disk_len;	/* its bytes on disk */
	uint64_t doff;		/* where off lies in the (decoded) extent */
	uint64_t ram;		/* compressed: the decoded length */
	uint8_t type, comp;
	uint8_t *idata;		/* inline: the stored bytes */
	uint32_t ilen;
};

struct btrfs_zent {
	uint64_t bytenr, disk_len;
	uint8_t comp;
	uint32_t ram;
	uint8_t *data; /* ram bytes */
};

struct btrfs_file {
	struct vd_fs_file base;
	struct btrfs_fs *fs;
	uint64_t sv_id, oid;
	uint64_t size;
	bool verify;
	struct btrfs_ext *ext;
	size_t n;
};

static void file_free(struct btrfs_file *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->ext[i].idata);
	free(h->ext);
	free(h);
}

static int file_bad(struct btrfs_file *h, uint64_t off, const char *why)
{
	vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " inode %" PRIu64
	       ": extent at file offset %" PRIu64 " %s", h->fs->name, h->sv_id,
	       h->oid, off, why);
	return -EIO;
}

/* One EXTENT_DATA item into e; 1 when it adds nothing (a hole). */
static int file_parse(struct btrfs_file *h, uint64_t off, const uint8_t *d,
		      uint32_t size, struct btrfs_ext *e)
{
	struct btrfs_fs *fs = h->fs;

	memset(e, 0, sizeof(*e));
	if (size < FE_INLINE_DATA)
		return file_bad(h, off, "is too short");
	e->off = off;
	e->type = d[FE_TYPE];
	e->comp = d[FE_COMPRESSION];
	e->ram = get_le64(d + FE_RAM_BYTES);
	if (d[FE_ENCRYPTION] || get_le16(d + FE_OTHER))
		return file_bad(h, off, "is encrypted or encoded, which is not "
				"supported");
	if (e->comp > COMP_ZSTD)
		return file_bad(h, off, "has an unknown compression");
	if (e->type == EXT_INLINE) {
		e->ilen = size - FE_INLINE_DATA;
		e->len = e->comp ? e->ram : e->ilen;
		if (e->len > BTRFS_MAX_COMPRESSED || (e->comp && !e->ilen))
			return file_bad(h, off, "is an inline extent of a "
					"wrong size");
		e->idata = malloc(e->ilen ? e->ilen : 1);
		if (!e->idata)
			return -ENOMEM;
		memcpy(e->idata, d + FE_INLINE_DATA, e->ilen);
		return e->len ? 0 : 1;
	}
	if (e->type != EXT_REG && e->type != EXT_PREALLOC)
		return file_bad(h, off, "has an unknown type");
	if (size < FE_LEN)
		return file_bad(h, off, "is too short");
	e->bytenr = get_le64(d + FE_DISK_BYTENR);
	e->disk_len = get_le64(d + FE_DISK_NUM);
	e->doff = get_le64(d + FE_OFFSET);
	e->len = get_le64(d + FE_NUM_BYTES);
	if (!e->len)
		return 1;
	if (!vd_range_ok(off, e->len, UINT64_MAX) || e->len % fs->sectorsize)
		return file_bad(h, off, "has a wrong length");
	if (!e->bytenr || e->type == EXT_PREALLOC)
		return 1; /* a hole, or zeros */
	if (!vd_range_ok(e->bytenr, e->disk_len, UINT64_MAX) ||
	    e->bytenr % fs->sectorsize || !e->disk_len ||
	    e->disk_len % fs->sectorsize)
		return file_bad(h, off, "lies at a wrong address");
	if (e->comp) {
		if (e->disk_len > BTRFS_MAX_COMPRESSED ||
		    e->ram > BTRFS_MAX_COMPRESSED ||
		    !vd_range_ok(e->doff, e->len, e->ram))
			return file_bad(h, off, "is a compressed extent of a "
					"wrong size");
	} else if (!vd_range_ok(e->doff, e->len, e->disk_len)) {
		return file_bad(h, off, "reaches past its disk extent");
	}
	return 0;
}

/* The checked extent list of inode oid of sv, and its size. */
static int file_load(struct btrfs_fs *fs, struct btrfs_subvol *sv,
		     uint64_t oid, struct btrfs_file **h_r, uint8_t *item)
{
	struct btrfs_file *h = calloc(1, sizeof(*h));
	struct btrfs_path p;
	struct btrfs_key k = { oid, BTRFS_EXTENT_DATA_KEY, 0 };
	size_t cap = 0;
	int ret;

	if (!h)
		return -ENOMEM;
	h->fs = fs;
	h->sv_id = sv->id;
	h->oid = oid;
	h->size = get_le64(item + BTRFS_INODE_SIZE_OFF);
	h->verify = fs->has_csum_root &&
		    !(get_le64(item + BTRFS_INODE_FLAGS) & BTRFS_INODE_NODATASUM);
	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &sv->root, &k);
	/* Ends: keys strictly increase; at most BTRFS_MAX_EXTENTS kept. */
	while (!ret) {
		const uint8_t *d;
		uint32_t size;
		struct btrfs_ext e;

		vd_btrfs_item(&p, &k, &d, &size);
		if (k.objectid != oid || k.type != BTRFS_EXTENT_DATA_KEY)
			break;
		if (h->n && k.offset < h->ext[h->n - 1].off +
					       h->ext[h->n - 1].len) {
			ret = file_bad(h, k.offset, "overlaps the one before");
			break;
		}
		ret = file_parse(h, k.offset, d, size, &e);
		if (ret < 0)
			break;
		if (ret == 0) {
			if (h->n == BTRFS_MAX_EXTENTS) {
				free(e.idata);
				ret = file_bad(h, k.offset, "is one too many");
				break;
			}
			if (h->n == cap) {
				struct btrfs_ext *n;

				cap = cap ? 2 * cap : 16;
				n = realloc(h->ext, cap * sizeof(*n));
				if (!n) {
					free(e.idata);
					ret = -ENOMEM;
					break;
				}
				h->ext = n;
			}
			h->ext[h->n++] = e;
		}
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	if (ret < 0) {
		file_free(h);
		return ret;
	}
	*h_r = h;
	return 0;
}

/* ---- decoding ---- */

static int unzlib(const uint8_t *in, size_t inlen, uint8_t *out, size_t ram,
		  size_t *got_r)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return -ENOMEM;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)ram;
	r = inflate(&z, Z_FINISH);
	*got_r = ram - z.avail_out;
	inflateEnd(&z);
	return r == Z_STREAM_END || (r == Z_BUF_ERROR && !z.avail_out) ? 0 :
									  -EIO;
}

/* A zstd decoder per thread, made once (making one per extent costs
 * more than decoding it), and the thread's buffer for an extent's
 * compressed bytes (BTRFS_MAX_COMPRESSED). */
struct btrfs_codec {
	ZSTD_DCtx *zd;
	uint8_t *raw;
};

static void codec_free(void *state)
{
	struct btrfs_codec *c = state;

	ZSTD_freeDCtx(c->zd);
	free(c->raw);
	free(c);
}

static struct vd_tls codec_tls = VD_TLS_INIT(struct btrfs_codec, codec_free);

static int unzstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t ram,
		  size_t *got_r)
{
	struct btrfs_codec *c = vd_tls_get(&codec_tls);
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, ram, 0 };
	ZSTD_DCtx *z;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	if (!c->zd) {
		c->zd = ZSTD_createDCtx();
		if (!c->zd)
			return -ENOMEM;
		/* btrfs writes frames with windows of at most 128 KiB:
		 * refuse the huge windows a crafted frame could ask for. */
		ZSTD_DCtx_setParameter(c->zd, ZSTD_d_windowLogMax, 20);
	}
	z = c->zd;
	ZSTD_DCtx_reset(z, ZSTD_reset_session_only);
	/* The kernel pledges the frame's size: one call then, into out
	 * directly (streaming goes through the context's own buffers). */
	{
		unsigned long long fs = ZSTD_getFrameContentSize(in, inlen);

		if (fs != ZSTD_CONTENTSIZE_UNKNOWN &&
		    fs != ZSTD_CONTENTSIZE_ERROR && fs <= ram) {
			size_t r = ZSTD_decompressDCtx(z, out, ram, in, inlen);

			if (!ZSTD_isError(r)) {
				*got_r = r;
				return 0;
			}
			/* Trailing bytes after the frame (padding): the
			 * stream decoder stops at the frame's end. */
			ZSTD_DCtx_reset(z, ZSTD_reset_session_only);
		}
	}
	/* Ends: each pass consumes input or produces output, or stops. */
	while (ob.pos < ob.size) {
		size_t in0 = ib.pos, out0 = ob.pos;
		size_t r = ZSTD_decompressStream(z, &ob, &ib);

		if (ZSTD_isError(r)) {
			ret = -EIO;
			break;
		}
		if (!r || (ib.pos == in0 && ob.pos == out0))
			break;
	}
	*got_r = ob.pos;
	return ret;
}

/* btrfs' LZO: a 4-byte total length, then segments (a 4-byte length and
 * the LZO1X data of up to a sector), a segment's header never crossing a
 * sector boundary (lzo.c). out has room for ram + a sector. */
static int unlzo(const uint8_t *in, size_t inlen, uint8_t *out, size_t ram,
		 unsigned ss, size_t *got_r)
{
	size_t total, pos = 4, done = 0;

	*got_r = 0;
	if (vd_lazy_need(&vd_lazy_lzo2))
		return -EIO;
	if (inlen < 4)
		return -EIO;
	total = get_le32(in);
	if (total > inlen || total < 4)
		return -EIO;
	/* Ends: each pass moves pos forward by at least 4 bytes. */
	while (pos < total && done < ram) {
		lzo_uint olen = ss;
		size_t seg;

		if (ss - pos % ss < 4)
			pos += ss - pos % ss;
		if (pos >= total || total - pos < 4)
			break;
		seg = get_le32(in + pos);
		pos += 4;
		if (seg > total - pos)
			return -EIO;
		if (lzo1x_decompress_safe(in + pos, seg, out + done, &olen,
					  NULL) != LZO_E_OK)
			return -EIO;
		done += olen;
		pos += seg;
	}
	*got_r = VD_MIN(done, ram);
	return 0;
}

/* Decode in[inlen] of compression comp into out (ram bytes, room for a
 * sector more); short output is zero-filled. */
static int decode(struct btrfs_fs *fs, uint8_t comp, const uint8_t *in,
		  size_t inlen, uint8_t *out, size_t ram)
{
	size_t got = 0;
	int ret;

	switch (comp) {
	case COMP_ZLIB:
		ret = unzlib(in, inlen, out, ram, &got);
		break;
	case COMP_LZO:
		ret = unlzo(in, inlen, out, ram, fs->sectorsize, &got);
		break;
	case COMP_ZSTD:
		ret = unzstd(in, inlen, out, ram, &got);
		break;
	default:
		ret = -EIO;
	}
	if (!ret && got < ram)
		memset(out + got, 0, ram - got);
	return ret;
}

static const char *const comp_names[] = { "none", "zlib", "lzo", "zstd" };

/* The calling thread's buffer for compressed bytes, or NULL. */
static uint8_t *codec_raw(void)
{
	struct btrfs_codec *c = vd_tls_get(&codec_tls);

	if (c && !c->raw)
		c->raw = malloc(BTRFS_MAX_COMPRESSED);
	return c ? c->raw : NULL;
}

/* Every decoded-extent buffer has this size (the decoders may write a
 * sector past ram). */
static size_t zbuf_size(const struct btrfs_fs *fs)
{
	return BTRFS_MAX_COMPRESSED + fs->sectorsize;
}

/* Caller holds zlock. Keep buffer b for reuse, or free it. */
static void zbuf_put(struct btrfs_fs *fs, uint8_t *b)
{
	if (fs->nzspare < BTRFS_ZSPARE)
		fs->zspare[fs->nzspare++] = b;
	else
		free(b);
}

/* Copy n bytes at at of e's decoded bytes into buf. A read that takes
 * the whole extent (as a sequential reader's do, the kernel's requests
 * being whole multiples of 128 KiB) has it decoded straight into buf and
 * not kept: nothing else of it is left to ask for. zlib and zstd write
 * no further than they are told; LZO's segments may run a sector past
 * the end, so LZO goes through a buffer. */
static int zread(struct btrfs_file *h, const struct btrfs_ext *e,
		 uint64_t at, void *buf, size_t n)
{
	struct btrfs_fs *fs = h->fs;
	uint8_t *raw = NULL, *dec = NULL;
	bool whole = at == 0 && n == e->ram && e->comp != COMP_LZO;
	struct btrfs_zent z;
	int ret;

	pthread_mutex_lock(&fs->zlock);
	for (unsigned i = 0; i < fs->nzc; i++) {
		struct btrfs_zent *c = &fs->zc[i];

		if (c->bytenr == e->bytenr && c->disk_len == e->disk_len &&
		    c->comp == e->comp && c->ram == e->ram) {
			memcpy(buf, c->data + at, n);
			if (i) { /* most recent first */
				z = *c;
				memmove(&fs->zc[1], &fs->zc[0],
					i * sizeof(*c));
				fs->zc[0] = z;
			}
			pthread_mutex_unlock(&fs->zlock);
			return 0;
		}
	}
	if (!whole)
		dec = fs->nzspare ? fs->zspare[--fs->nzspare] : NULL;
	pthread_mutex_unlock(&fs->zlock);
	/* Checked when the extent was listed: both at most 128 KiB. */
	if (e->disk_len > BTRFS_MAX_COMPRESSED ||
	    e->ram > BTRFS_MAX_COMPRESSED) {
		ret = -EIO;
		goto out;
	}
	raw = codec_raw();
	if (!dec && !whole)
		dec = malloc(zbuf_size(fs));
	if (!raw || (!dec && !whole)) {
		ret = -ENOMEM;
		goto out;
	}
	ret = vd_btrfs_read_data(fs, raw, e->disk_len, e->bytenr, h->verify);
	if (ret)
		goto out;
	ret = decode(fs, e->comp, raw, e->disk_len, whole ? buf : dec, e->ram);
	if (ret) {
		vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " inode %"
		       PRIu64 ": %s extent at %" PRIu64 " does not decode",
		       fs->name, h->sv_id, h->oid, comp_names[e->comp],
		       e->bytenr);
		goto out;
	}
	if (whole)
		goto out;
	memcpy(buf, dec + at, n);
	pthread_mutex_lock(&fs->zlock);
	if (!fs->zc)
		fs->zc = calloc(BTRFS_ZCACHE, sizeof(*fs->zc));
	if (fs->zc) {
		if (fs->nzc == BTRFS_ZCACHE)
			zbuf_put(fs, fs->zc[--fs->nzc].data);
		memmove(&fs->zc[1], &fs->zc[0], fs->nzc * sizeof(*fs->zc));
		fs->zc[0] = (struct btrfs_zent){ e->bytenr, e->disk_len,
						 e->comp, (uint32_t)e->ram,
						 dec };
		fs->nzc++;
		dec = NULL;
	}
	pthread_mutex_unlock(&fs->zlock);
out:
	if (dec) {
		pthread_mutex_lock(&fs->zlock);
		zbuf_put(fs, dec);
		pthread_mutex_unlock(&fs->zlock);
	}
	return ret;
}

void vd_btrfs_zcache_free(struct btrfs_fs *fs)
{
	for (unsigned i = 0; i < fs->nzc; i++)
		free(fs->zc[i].data);
	for (unsigned i = 0; i < fs->nzspare; i++)
		free(fs->zspare[i]);
	fs->nzspare = 0;
	free(fs->zc);
	fs->zc = NULL;
	fs->nzc = 0;
}

/* ---- reads ---- */

/* The extent holding pos, or NULL with *next_r the start of the next
 * extent (UINT64_MAX: none). */
static const struct btrfs_ext *ext_find(const struct btrfs_file *h,
					uint64_t pos, uint64_t *next_r)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->ext[mid].off <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	*next_r = lo < h->n ? h->ext[lo].off : UINT64_MAX;
	if (lo && pos - h->ext[lo - 1].off < h->ext[lo - 1].len)
		return &h->ext[lo - 1];
	return NULL;
}

/* An inline extent's bytes [at, at + n) into buf. */
static int iread(struct btrfs_file *h, const struct btrfs_ext *e,
		 uint64_t at, uint8_t *buf, size_t n)
{
	uint8_t *dec;
	int ret;

	if (!e->comp) {
		memcpy(buf, e->idata + at, n);
		return 0;
	}
	dec = malloc(e->len + h->fs->sectorsize);
	if (!dec)
		return -ENOMEM;
	ret = decode(h->fs, e->comp, e->idata, e->ilen, dec, e->len);
	if (ret)
		vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " inode %"
		       PRIu64 ": inline %s extent does not decode",
		       h->fs->name, h->sv_id, h->oid, comp_names[e->comp]);
	else
		memcpy(buf, dec + at, n);
	free(dec);
	return ret;
}

/* Plain bytes of a regular extent: [logical, logical + n) into buf,
 * read in whole sectors. */
static int pread_plain(struct btrfs_file *h, uint64_t logical, uint8_t *buf,
		       size_t n)
{
	struct btrfs_fs *fs = h->fs;
	uint64_t ss = fs->sectorsize, a = logical / ss * ss;
	uint64_t b = (logical + n + ss - 1) / ss * ss;
	uint8_t *tmp;
	int ret;

	if (a == logical && b == logical + n)
		return vd_btrfs_read_data(fs, buf, n, logical, h->verify);
	tmp = malloc(b - a);
	if (!tmp)
		return -ENOMEM;
	ret = vd_btrfs_read_data(fs, tmp, b - a, a, h->verify);
	if (!ret)
		memcpy(buf, tmp + (logical - a), n);
	free(tmp);
	return ret;
}

/* A compressed piece of a read: n decoded bytes of e from at, into o. */
struct btrfs_zjob {
	const struct btrfs_ext *e;
	uint64_t at;
	uint8_t *o;
	size_t n;
};

struct btrfs_zjobs {
	struct btrfs_file *h;
	struct btrfs_zjob j[BTRFS_ZJOBS];
	unsigned n;
};

static int zjob_run(void *arg, unsigned i)
{
	struct btrfs_zjobs *z = arg;
	struct btrfs_zjob *j = &z->j[i];

	return zread(z->h, j->e, j->at, j->o, j->n);
}

/* Decode the gathered compressed pieces, in parallel. */
static int zjobs_flush(struct btrfs_zjobs *z)
{
	unsigned n = z->n;

	z->n = 0;
	if (n == 1)
		return zjob_run(z, 0);
	return n ? vd_pool_run(n, zjob_run, z) : 0;
}

static int file_read(struct btrfs_file *h, void *buf, size_t len,
		     uint64_t off, size_t *got_r)
{
	struct btrfs_zjobs z;
	uint8_t *out = buf;
	uint64_t pos, end;
	int ret;

	*got_r = 0;
	if (off >= h->size || !len)
		return 0;
	len = (size_t)VD_MIN(len, h->size - off);
	pos = off;
	end = off + len;
	z.h = h;
	z.n = 0;
	/* Ends: each pass covers at least one byte of [pos, end). */
	while (pos < end) {
		uint64_t next, n, at;
		const struct btrfs_ext *e = ext_find(h, pos, &next);
		uint8_t *o = out + (pos - off);

		ret = 0;
		if (!e) {
			n = VD_MIN(end, next) - pos;
			memset(o, 0, n);
			pos += n;
			continue;
		}
		n = VD_MIN(end, e->off + e->len) - pos;
		at = pos - e->off + e->doff;
		if (e->type == EXT_INLINE) {
			ret = iread(h, e, at, o, n);
		} else if (e->comp) {
			z.j[z.n++] = (struct btrfs_zjob){ e, at, o, (size_t)n };
			if (z.n == BTRFS_ZJOBS)
				ret = zjobs_flush(&z);
		} else {
			n = VD_MIN(n, (uint64_t)BTRFS_READ_CHUNK);
			ret = pread_plain(h, e->bytenr + at, o, n);
		}
		if (ret)
			return ret;
		pos += n;
	}
	ret = zjobs_flush(&z);
	if (ret)
		return ret;
	*got_r = len;
	return 0;
}

int vd_btrfs_open(struct vd_fs *vfs, uint64_t ino, struct vd_fs_file **f_r)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	uint8_t it[BTRFS_INODE_ITEM_LEN];
	struct btrfs_subvol *sv;
	struct btrfs_file *h;
	uint64_t oid;
	uint32_t mode;
	int ret;

	if (vd_btrfs_ino_split(fs, ino, &sv, &oid))
		return -ENOENT;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID)
		return -EISDIR;
	ret = vd_btrfs_inode(fs, sv, oid, it);
	if (ret)
		return ret == -ENOENT ? -EIO : ret;
	mode = get_le32(it + BTRFS_INODE_MODE);
	if (!S_ISREG(mode))
		return S_ISDIR(mode) ? -EISDIR : -EINVAL;
	ret = file_load(fs, sv, oid, &h, it);
	if (ret)
		return ret;
	h->base.fs = vfs;
	*f_r = &h->base;
	return 0;
}

int vd_btrfs_read(struct vd_fs_file *f, void *buf, size_t len, uint64_t off,
		  size_t *got_r)
{
	return file_read((struct btrfs_file *)f, buf, len, off, got_r);
}

int vd_btrfs_map(struct vd_fs_file *f, uint64_t off, size_t len,
		 struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		 size_t *got_r)
{
	struct btrfs_file *h = (struct btrfs_file *)f;
	uint64_t pos = off, end;

	*n_r = 0;
	*got_r = 0;
	if (off >= h->size || !len || !max)
		return 0;
	if (h->verify)
		return -EOPNOTSUPP;
	end = off + VD_MIN((uint64_t)len, h->size - off);
	/* Ends: each pass covers at least one byte, or stops. */
	while (pos < end) {
		uint64_t next, n, vol_off = 0;
		const struct btrfs_ext *e = ext_find(h, pos, &next);
		struct vd_fs_piece q = { 0, 0, true };
		struct vd_fs_piece *last = *n_r ? &p[*n_r - 1] : NULL;

		if (!e) {
			n = VD_MIN(end, next) - pos;
		} else if (e->type == EXT_INLINE || e->comp) {
			break;
		} else {
			n = VD_MIN(end, e->off + e->len) - pos;
			if (vd_btrfs_map_plain(h->fs, e->bytenr + e->doff +
						       (pos - e->off),
					       &n, &vol_off))
				break;
			q.zero = false;
			q.vol_off = vol_off;
		}
		q.len = n;
		if (last && last->zero == q.zero &&
		    (q.zero || last->vol_off + last->len == q.vol_off))
			last->len += n;
		else if (*n_r == max)
			break;
		else
			p[(*n_r)++] = q;
		pos += n;
	}
	if (pos == off)
		return -EOPNOTSUPP;
	*got_r = (size_t)(pos - off);
	return 0;
}

int vd_btrfs_seek(struct vd_fs_file *f, uint64_t off, bool want_data,
		  uint64_t *off_r)
{
	struct btrfs_file *h = (struct btrfs_file *)f;
	uint64_t pos = off;

	if (off >= h->size)
		return -ENXIO;
	/* Ends: each pass moves pos to the end of an extent or a gap. */
	while (pos < h->size) {
		uint64_t next;
		const struct btrfs_ext *e = ext_find(h, pos, &next);

		if (!!e == want_data) {
			*off_r = pos;
			return 0;
		}
		pos = e ? e->off + e->len : next;
	}
	if (!want_data) {
		*off_r = h->size;
		return 0;
	}
	return -ENXIO;
}

void vd_btrfs_release(struct vd_fs_file *f)
{
	file_free((struct btrfs_file *)f);
}

int vd_btrfs_readlink(struct vd_fs *vfs, uint64_t ino, char *buf,
		      size_t size)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	uint8_t it[BTRFS_INODE_ITEM_LEN];
	char t[BTRFS_SYMLINK_MAX + 1];
	struct btrfs_subvol *sv;
	struct btrfs_file *h;
	uint64_t oid, len;
	size_t got;
	int ret;

	if (vd_btrfs_ino_split(fs, ino, &sv, &oid))
		return -ENOENT;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID)
		return -EINVAL;
	ret = vd_btrfs_inode(fs, sv, oid, it);
	if (ret)
		return ret == -ENOENT ? -EIO : ret;
	if (!S_ISLNK(get_le32(it + BTRFS_INODE_MODE)))
		return -EINVAL;
	len = get_le64(it + BTRFS_INODE_SIZE_OFF);
	if (!len || len > BTRFS_SYMLINK_MAX) {
		vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " symlink %"
		       PRIu64 ": length %" PRIu64 " is outside 1..%u",
		       fs->name, sv->id, oid, len, BTRFS_SYMLINK_MAX);
		return -EIO;
	}
	ret = file_load(fs, sv, oid, &h, it);
	if (ret)
		return ret;
	ret = file_read(h, t, (size_t)len, 0, &got);
	file_free(h);
	if (ret)
		return ret;
	if (size) {
		size_t n = VD_MIN(got, size - 1);

		memcpy(buf, t, n);
		buf[n] = '\0';
	}
	return 0;
}
