/* A write-back cache of the blocks libext2fs writes in a writable mount.
 *
 * libext2fs writes one block at a time, and often one block many times
 * over: a new file of one block costs a block of zeros when the block is
 * allocated (ext2fs_alloc_block3 zeroes every block it hands out), the
 * data over it when the file's buffer is flushed, and half a dozen
 * writes of the inode table block that holds its inode (the new inode,
 * its extent root, its size, its times, each chmod and utimens), and
 * the parent's. Through the qcow2 writer every one is a cluster lookup
 * and a pwrite, and the first into a new cluster of the child copies the
 * rest of the cluster from the base. Held here, each block goes down
 * once, at the next flush, and blocks that follow each other on the
 * volume go down as one write: the data of files allocated one after the
 * other becomes a few large writes that cover whole clusters, so nothing
 * is copied from below.
 *
 * The held blocks are written by io_channel_flush (ext2fs_flush: fsync,
 * the unmount, SIGTERM), at a channel's close, before the block size
 * changes, and when EXT_WC_BYTES are held. So fsync's promise holds, and
 * a crash loses what was not fsynced, as before: libext2fs already kept
 * the bitmaps and the group descriptors until ext2fs_flush, and the
 * qcow2 writer its tables until the next commit. Raw reads of the
 * partition (pN.raw) do not see held blocks, as reads of a block device
 * under a mounted filesystem do not see what its page cache holds.
 *
 * Every read of the channel (and vd_ext_io_read) lays the held blocks
 * over what the volume returns. A write the cache does not take (more
 * than EXT_WC_PUT_MAX blocks, or not whole blocks: the superblock's
 * bytes) goes straight down, and the held copies of the blocks it
 * touches take its bytes too, so neither goes stale. A flush that fails
 * keeps every block held, to be written at the next one, and its error
 * goes to the call that flushed.
 *
 * Only a writable mount has a cache, and there every use of the channel
 * (and every vd_ext_io_read) runs under the filesystem's lock (ext.h):
 * the cache has no lock of its own. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Bytes of blocks held before a flush. */
#define EXT_WC_BYTES (4u << 20)
/* The largest write held, in blocks; larger ones go straight down. */
#define EXT_WC_PUT_MAX 16u
/* The largest write a flush makes: held blocks that follow each other
 * are copied into one buffer of this size. */
#define EXT_WC_RUN_BYTES (1u << 20)

struct ext_wc_ent {
	uint64_t blk;  /* block number, in blocks of wc->bs */
	uint8_t *data; /* wc->bs bytes in wc->pool */
};

struct ext_wc {
	unsigned bs;	     /* block size of what is held; 0 when empty */
	unsigned n, max;     /* blocks held, and room for */
	unsigned hmask;	     /* hash slots - 1 (a power of two) */
	struct ext_wc_ent *ent; /* max entries, n used, in no order */
	int32_t *hash;	     /* index into ent, -1 free; linear probing */
	uint8_t *pool;	     /* EXT_WC_BYTES */
	uint8_t *run;	     /* EXT_WC_RUN_BYTES, for a flush */
	uint32_t *order;     /* max indexes, for a flush */
};

struct ext_wc *vd_ext_wc_new(void)
{
	return calloc(1, sizeof(struct ext_wc));
}

void vd_ext_wc_free(struct ext_wc *wc)
{
	if (!wc)
		return;
	free(wc->ent);
	free(wc->hash);
	free(wc->pool);
	free(wc->run);
	free(wc->order);
	free(wc);
}

static unsigned ext_wc_slot(const struct ext_wc *wc, uint64_t blk)
{
	return (unsigned)((blk * 0x9e3779b97f4a7c15ULL) >> 32) & wc->hmask;
}

/* The entry holding blk, or NULL. */
static struct ext_wc_ent *ext_wc_find(struct ext_wc *wc, uint64_t blk)
{
	/* Ends: the table is at least twice as large as the entries, so
	 * a free slot comes before the probe wraps. */
	for (unsigned s = ext_wc_slot(wc, blk);; s = (s + 1) & wc->hmask) {
		int32_t i = wc->hash[s];

		if (i < 0)
			return NULL;
		if (wc->ent[i].blk == blk)
			return &wc->ent[i];
	}
}

static void ext_wc_clear(struct ext_wc *wc)
{
	wc->n = 0;
	wc->bs = 0;
	if (wc->hash)
		memset(wc->hash, 0xff, (size_t)(wc->hmask + 1) * sizeof(*wc->hash));
}

/* Room for blocks of bs bytes: the arrays made on first use. */
static int ext_wc_setup(struct ext_wc *wc, unsigned bs)
{
	unsigned max = EXT_WC_BYTES / bs, slots = 1;

	if (!wc->pool) {
		wc->pool = malloc(EXT_WC_BYTES);
		wc->run = malloc(EXT_WC_RUN_BYTES);
		/* The most blocks: those of the smallest block size. */
		wc->ent = calloc(EXT_WC_BYTES / 512, sizeof(*wc->ent));
		wc->order = calloc(EXT_WC_BYTES / 512, sizeof(*wc->order));
		while (slots < 2 * (EXT_WC_BYTES / 512))
			slots <<= 1;
		wc->hash = malloc((size_t)slots * sizeof(*wc->hash));
		if (!wc->pool || !wc->run || !wc->ent || !wc->order ||
		    !wc->hash) {
			free(wc->pool);
			free(wc->run);
			free(wc->ent);
			free(wc->order);
			free(wc->hash);
			wc->pool = wc->run = NULL;
			wc->ent = NULL;
			wc->order = NULL;
			wc->hash = NULL;
			return -ENOMEM;
		}
		wc->hmask = slots - 1;
		ext_wc_clear(wc);
	}
	wc->bs = bs;
	wc->max = max;
	return 0;
}

static int ext_wc_cmp(const void *a, const void *b, void *arg)
{
	const struct ext_wc_ent *ent = arg;
	uint64_t x = ent[*(const uint32_t *)a].blk,
		 y = ent[*(const uint32_t *)b].blk;

	return x < y ? -1 : x > y;
}

int vd_ext_wc_flush(struct ext_wc *wc, const struct vd_vol *v)
{
	unsigned bs = wc->bs, per_run, i = 0;
	int ret = 0;

	if (!wc->n)
		return 0;
	per_run = EXT_WC_RUN_BYTES / bs;
	for (unsigned k = 0; k < wc->n; k++)
		wc->order[k] = k;
	qsort_r(wc->order, wc->n, sizeof(*wc->order), ext_wc_cmp, wc->ent);
	/* Ends: every pass writes at least one held block. */
	while (i < wc->n) {
		const struct ext_wc_ent *first = &wc->ent[wc->order[i]];
		unsigned k = 0;

		/* Blocks that follow each other, into one buffer. */
		do {
			memcpy(wc->run + (size_t)k * bs,
			       wc->ent[wc->order[i + k]].data, bs);
			k++;
		} while (i + k < wc->n && k < per_run &&
			 wc->ent[wc->order[i + k]].blk == first->blk + k);
		ret = vd_vol_write(v, wc->run, (size_t)k * bs, first->blk * bs);
		if (ret) {
			vd_log(VD_LOG_ERR, "%s: ext: write of %u bytes at %" PRIu64
			       " failed: %s", v->name, k * bs, first->blk * bs,
			       strerror(-ret));
			return ret; /* everything stays held */
		}
		i += k;
	}
	ext_wc_clear(wc);
	return 0;
}

/* Lay the bytes of [off, off + len) from buf over the held blocks they
 * touch. */
static void ext_wc_update(struct ext_wc *wc, const uint8_t *buf, uint64_t len,
			  uint64_t off)
{
	uint64_t end = off + len, first, last;

	if (!wc->n || !len)
		return;
	first = off / wc->bs;
	last = (end - 1) / wc->bs;
	/* Ends: one pass per block of the range, which is at most
	 * EXT_WC_PUT_MAX blocks or a write the caller bounds. */
	for (uint64_t b = first; b <= last; b++) {
		struct ext_wc_ent *e = ext_wc_find(wc, b);
		uint64_t b0 = b * wc->bs, from, to;

		if (!e)
			continue;
		from = VD_MAX(b0, off);
		to = VD_MIN(b0 + wc->bs, end);
		memcpy(e->data + (from - b0), buf + (from - off), to - from);
	}
}

int vd_ext_wc_put(struct ext_wc *wc, const struct vd_vol *v, unsigned bs,
		  const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;
	uint64_t blk, nblk;
	int ret;

	if (!bs || off % bs || len % bs || !len || len / bs > EXT_WC_PUT_MAX) {
		/* Straight down; held copies take the new bytes too. */
		if (wc->n)
			ext_wc_update(wc, p, len, off);
		return 1;
	}
	if (wc->n && wc->bs != bs) {
		ret = vd_ext_wc_flush(wc, v);
		if (ret)
			return ret;
	}
	if (!wc->n) {
		ret = ext_wc_setup(wc, bs);
		if (ret)
			return 1; /* no memory for a cache: write it down */
	}
	blk = off / bs;
	nblk = len / bs;
	for (uint64_t k = 0; k < nblk; k++) {
		struct ext_wc_ent *e = ext_wc_find(wc, blk + k);
		unsigned s;

		if (!e) {
			if (wc->n == wc->max) {
				ret = vd_ext_wc_flush(wc, v);
				if (ret)
					return ret;
				wc->bs = bs;
			}
			e = &wc->ent[wc->n];
			e->blk = blk + k;
			e->data = wc->pool + (size_t)wc->n * bs;
			/* Ends: fewer entries than half the slots. */
			for (s = ext_wc_slot(wc, blk + k); wc->hash[s] >= 0;
			     s = (s + 1) & wc->hmask)
				;
			wc->hash[s] = (int32_t)wc->n;
			wc->n++;
		}
		memcpy(e->data, p + k * bs, bs);
	}
	return 0;
}

bool vd_ext_wc_read(struct ext_wc *wc, void *buf, uint64_t len, uint64_t off)
{
	uint64_t bs = wc->bs, first, last;
	uint8_t *out = buf;

	if (!wc->n || !len || off % bs || len % bs ||
	    len / bs > EXT_WC_PUT_MAX)
		return false;
	first = off / bs;
	last = first + len / bs - 1;
	for (uint64_t b = first; b <= last; b++)
		if (!ext_wc_find(wc, b))
			return false;
	for (uint64_t b = first; b <= last; b++)
		memcpy(out + (b - first) * bs, ext_wc_find(wc, b)->data, bs);
	return true;
}

void vd_ext_wc_overlay(struct ext_wc *wc, void *buf, uint64_t len,
		       uint64_t off)
{
	uint64_t end = off + len, first, last, bs = wc->bs;
	uint8_t *out = buf;

	if (!wc->n || !len)
		return;
	first = off / bs;
	last = (end - 1) / bs;
	if (last - first + 1 <= wc->n) {
		/* Ends: one pass per block of the range (no more than the
		 * blocks held). */
		for (uint64_t b = first; b <= last; b++) {
			struct ext_wc_ent *e = ext_wc_find(wc, b);
			uint64_t b0 = b * bs, from, to;

			if (!e)
				continue;
			from = VD_MAX(b0, off);
			to = VD_MIN(b0 + bs, end);
			memcpy(out + (from - off), e->data + (from - b0), to - from);
		}
		return;
	}
	for (unsigned i = 0; i < wc->n; i++) {
		const struct ext_wc_ent *e = &wc->ent[i];
		uint64_t b0 = e->blk * bs, from, to;

		if (b0 + bs <= off || b0 >= end)
			continue;
		from = VD_MAX(b0, off);
		to = VD_MIN(b0 + bs, end);
		memcpy(out + (from - off), e->data + (from - b0), to - from);
	}
}
