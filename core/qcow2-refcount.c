/* qcow2 writing: refcounts and allocation (see qcow2-write.c).
 *
 * A new host cluster is one that was free when the image was opened, else
 * one at the end of the file. Its refcount is set in its refcount block,
 * made when missing (written and synced before the refcount table names
 * it); a table too small is grown: the new table and the blocks it needs
 * go at the end of the file, are synced, then the header names them
 * (synced), then the old table is released. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "core/qcow2-w.h"

/* ---- host file I/O */

int qcow2_w_pwritev(struct vd_layer *l, struct iovec *iov, int cnt,
		    uint64_t off)
{
	struct vd_file *f = l->file;
	uint64_t pos = off, end, cur;
	size_t left = 0;

	for (int i = 0; i < cnt; i++)
		left += iov[i].iov_len;
	end = off + left;
	/* Ends: each pass writes at least one byte or returns. */
	while (left > 0) {
		ssize_t n = pwritev(f->fd, iov, VD_MIN(cnt, IOV_MAX),
				    (off_t)pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			if (err != ENOSPC && err != EDQUOT)
				QW_LOG("write of %zu bytes at 0x%llx: %s", left,
				       (unsigned long long)pos, strerror(err));
			return -err;
		}
		pos += (uint64_t)n;
		left -= (size_t)n;
		/* Past what was written (the caller's vector changes). */
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	/* Reads check host offsets against the size: it grows before
	 * anything that points past the old end is written. */
	cur = __atomic_load_n(&f->size, __ATOMIC_RELAXED);
	while (end > cur && !__atomic_compare_exchange_n(&f->size, &cur, end,
							 false, __ATOMIC_RELEASE,
							 __ATOMIC_RELAXED))
		;
	return 0;
}

int qcow2_w_pwrite(struct vd_layer *l, const void *buf, size_t len,
		   uint64_t off)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return qcow2_w_pwritev(l, &v, 1, off);
}

static int rb_flush(struct vd_layer *l);

int qcow2_w_sync(struct vd_layer *l)
{
	int ret = rb_flush(l);

	if (ret)
		return ret;
	if (fdatasync(l->file->fd) < 0) {
		int err = errno;

		QW_LOG("fdatasync: %s", strerror(err));
		return -err;
	}
	return 0;
}

/* ---- refcount blocks held in memory. A refcount changes in its block's
 * copy here; what changed is written at the next sync (qcow2_w_sync, so
 * before anything on disk can point to a cluster it counts: every L2 or
 * L1 write that names a new cluster comes after a sync) or when the
 * block makes room for another. A refcount on disk may lag one in
 * memory only by changes not yet synced, which a crash may lose with
 * the metadata that relied on them; a decrement reaching the disk late
 * leaks at worst. All under w->meta. Blocks the table does not name yet
 * are made on disk (qcow2_rc_change, qw_grow) and read here only once
 * named. */

/* Write what changed of a held block. */
static int rb_write(struct vd_layer *l, struct qw_rb *b)
{
	int ret;

	if (!b->held || b->lo >= b->hi)
		return 0;
	ret = qcow2_w_pwrite(l, b->data + b->lo, b->hi - b->lo,
			     b->off + b->lo);
	if (!ret)
		b->lo = b->hi = 0;
	return ret;
}

static int rb_flush(struct vd_layer *l)
{
	struct qcow2_w *w = ((struct qcow2 *)l->priv)->w;
	int ret = 0;

	for (unsigned i = 0; !ret && i < QW_RB_SLOTS; i++)
		ret = rb_write(l, &w->rb[i]);
	return ret;
}

void qcow2_rb_drop(struct qcow2_w *w)
{
	for (unsigned i = 0; i < QW_RB_SLOTS; i++) {
		free(w->rb[i].data);
		w->rb[i] = (struct qw_rb){ 0 };
	}
}

/* The held copy of refcount block r (named by the table): found, or read
 * into a free slot or the least recently used one (its changes written
 * first). */
static int rb_get(struct vd_layer *l, uint64_t r, struct qw_rb **b_r)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	unsigned lim = (unsigned)VD_MAX(1, VD_MIN(QW_RB_SLOTS,
						 QW_RB_BYTES >> q->cluster_bits));
	struct qw_rb *b = NULL;
	int ret;

	for (unsigned i = 0; i < lim; i++) {
		struct qw_rb *c = &w->rb[i];

		if (c->held && c->r == r) {
			c->stamp = ++w->rb_clock;
			*b_r = c;
			return 0;
		}
		if (!b || (b->held && (!c->held || c->stamp < b->stamp)))
			b = c;
	}
	ret = rb_write(l, b);
	if (ret)
		return ret;
	b->held = false;
	if (!b->data) {
		b->data = malloc(q->cluster_size);
		if (!b->data)
			return -ENOMEM;
	}
	ret = vd_file_pread(l->file, b->data, q->cluster_size, w->rt[r]);
	if (ret) {
		QW_LOG("cannot read the refcount block at 0x%llx",
		       (unsigned long long)w->rt[r]);
		return ret;
	}
	*b = (struct qw_rb){ .r = r, .off = w->rt[r], .data = b->data,
			     .held = true, .stamp = ++w->rb_clock };
	*b_r = b;
	return 0;
}

/* ---- refcounts (qcow2.txt, "Host cluster management"): entries of
 * rc_bits bits; below 8 bits packed from the low bits of each byte, from
 * 8 bits up big-endian. */

uint64_t qcow2_rc_get(const uint8_t *blk, uint64_t i, unsigned bits)
{
	switch (bits) {
	case 1: case 2: case 4: {
		unsigned per = 8 / bits;

		return blk[i / per] >> (bits * (i % per)) & ((1u << bits) - 1);
	}
	case 8:
		return blk[i];
	case 16:
		return get_be16(blk + i * 2);
	case 32:
		return get_be32(blk + i * 4);
	default:
		return get_be64(blk + i * 8);
	}
}

static void rc_put(uint8_t *blk, uint64_t i, unsigned bits, uint64_t v)
{
	switch (bits) {
	case 1: case 2: case 4: {
		unsigned per = 8 / bits, sh = bits * (unsigned)(i % per);
		unsigned mask = ((1u << bits) - 1) << sh;

		blk[i / per] = (uint8_t)((blk[i / per] & ~mask) |
					 ((unsigned)v << sh & mask));
		break;
	}
	case 8:
		blk[i] = (uint8_t)v;
		break;
	case 16:
		blk[i * 2] = (uint8_t)(v >> 8);
		blk[i * 2 + 1] = (uint8_t)v;
		break;
	case 32:
		put_be32(blk + i * 4, (uint32_t)v);
		break;
	default:
		put_be64(blk + i * 8, v);
	}
}

/* The bytes of a refcount block holding entry i: offset and length. */
static void rc_span(unsigned bits, uint64_t i, uint64_t *off_r, size_t *len_r)
{
	if (bits < 8) {
		*off_r = i / (8 / bits);
		*len_r = 1;
	} else {
		*off_r = i * (bits / 8);
		*len_r = bits / 8;
	}
}

/* A host cluster to allocate, not yet counted. Caller holds w->meta. */
static uint64_t qw_pick(struct qcow2_w *w)
{
	/* Ends: reuse_hint only grows, up to n_reuse. */
	for (; w->reuse_hint < w->n_reuse; w->reuse_hint++) {
		uint64_t i = w->reuse_hint;

		if (w->reuse[i / 8] & (1u << (i % 8))) {
			w->reuse[i / 8] &= (uint8_t)~(1u << (i % 8));
			return i;
		}
	}
	return w->end++;
}

/* Grow the refcount table so that it has entry need. The new table and
 * the refcount blocks it needs go at the end of the file: blocks first,
 * then the table, each counted in the blocks. Caller holds w->meta. */
static int qw_grow(struct vd_layer *l, uint64_t need)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const uint64_t per = q->cluster_size / 8, cs = q->cluster_size;
	uint64_t e0 = w->end, k, nb = 0, last, first_rb, *nrt = NULL;
	uint8_t *blocks = NULL, hdr[12];
	uint64_t old_off = w->rt_off, old_n = w->rt_clusters;
	int ret;

	k = VD_MAX((uint64_t)w->rt_clusters * 2, need / per + 1);
	/* Ends: nb and k only grow, and k is capped. */
	for (unsigned pass = 0;; pass++) {
		uint64_t cnt = 0;

		if (pass > 64 || k * cs > QW_MAX_RT_BYTES) {
			QW_LOG("refcount table would grow past %u bytes",
			      QW_MAX_RT_BYTES);
			return -ENOSPC;
		}
		last = e0 + nb + k - 1;
		if ((last >> w->rb_shift) >= k * per) {
			k++;
			continue;
		}
		first_rb = e0 >> w->rb_shift;
		for (uint64_t r = first_rb; r <= last >> w->rb_shift; r++)
			if (r >= w->rt_entries || !w->rt[r])
				cnt++;
		if (cnt == nb)
			break;
		nb = cnt;
	}
	nrt = calloc(k * per, 8);
	blocks = calloc(nb ? nb : 1, cs);
	if (!nrt || !blocks) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(nrt, w->rt, w->rt_entries * 8);
	/* The new blocks, in order of the ranges they cover. */
	uint64_t j = 0;
	for (uint64_t r = first_rb; r <= last >> w->rb_shift; r++)
		if (r >= w->rt_entries || !w->rt[r])
			nrt[r] = (e0 + j++) * cs;
	/* Count every new cluster: in a new block, or in an old one. */
	for (uint64_t c = e0; c <= last; c++) {
		uint64_t r = c >> w->rb_shift;

		if (r < w->rt_entries && w->rt[r]) {
			ret = qcow2_rc_change(l, c, true, 1, 1);
			if (ret)
				goto out;
			continue;
		}
		rc_put(blocks + (nrt[r] / cs - e0) * cs,
		       c & ((1ULL << w->rb_shift) - 1), w->rc_bits, 1);
	}
	ret = qcow2_w_pwrite(l, blocks, nb * cs, e0 * cs);
	for (uint64_t i = 0; !ret && i < k; i++) {
		uint8_t *t = (uint8_t *)(nrt + i * per);
		uint8_t page[8];

		/* In memory host-endian; on disk big-endian. */
		for (uint64_t x = 0; x < per; x++) {
			put_be64(page, nrt[i * per + x]);
			memcpy(t + x * 8, page, 8);
		}
		ret = qcow2_w_pwrite(l, t, cs, (e0 + nb + i) * cs);
		for (uint64_t x = 0; x < per; x++)
			nrt[i * per + x] = get_be64(t + x * 8);
	}
	if (!ret)
		ret = qcow2_w_sync(l);
	if (ret)
		goto out;
	/* Header offsets 48 (refcount_table_offset) and 56
	 * (refcount_table_clusters): one write of 12 bytes. */
	put_be64(hdr, (e0 + nb) * cs);
	put_be32(hdr + 8, (uint32_t)k);
	ret = qcow2_w_pwrite(l, hdr, sizeof(hdr), 48);
	if (!ret)
		ret = qcow2_w_sync(l);
	if (ret)
		goto out;
	free(w->rt);
	w->rt = nrt;
	nrt = NULL;
	w->rt_entries = k * per;
	w->rt_off = (e0 + nb) * cs;
	w->rt_clusters = (uint32_t)k;
	w->end = last + 1;
	/* The old table's clusters: free, not reused before the next open. */
	for (uint64_t i = 0; i < old_n; i++) {
		ret = qcow2_rc_change(l, old_off / cs + i, true, 0, 1);
		if (ret)
			break;
	}
out:
	free(nrt);
	free(blocks);
	return ret;
}

/* Set cluster c's refcount to v (set) or add v to it, in the block held
 * in memory; a missing refcount block is made (synced before the table
 * names it), a table too small is grown. Caller holds w->meta. */
int qcow2_rc_change(struct vd_layer *l, uint64_t c, bool set, int64_t v,
			unsigned depth)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const uint64_t cs = q->cluster_size;
	uint64_t r = c >> w->rb_shift, i = c & ((1ULL << w->rb_shift) - 1);
	uint64_t max = w->rc_bits == 64 ? UINT64_MAX :
					 (1ULL << w->rc_bits) - 1;
	uint64_t boff, cur;
	struct qw_rb *b;
	size_t blen;
	int ret;

	if (depth > QW_MAX_RC_DEPTH)
		return -EIO;
	if (r >= w->rt_entries) {
		ret = qw_grow(l, r);
		if (ret)
			return ret;
	}
	if (!w->rt[r]) {
		uint64_t p = qw_pick(w);
		uint8_t *blk;
		uint8_t ent[8];

		if (set && v == 0)
			return 0; /* uncounted already */
		if (set ? v < 0 : v != 1)
			return -EIO; /* releasing an uncounted cluster */
		if ((p >> w->rb_shift) != r) {
			ret = qcow2_rc_change(l, p, true, 1, depth + 1);
			if (ret)
				return ret;
		}
		blk = calloc(1, cs);
		if (!blk)
			return -ENOMEM;
		if ((p >> w->rb_shift) == r)
			rc_put(blk, p & ((1ULL << w->rb_shift) - 1),
			       w->rc_bits, 1);
		rc_put(blk, i, w->rc_bits, (uint64_t)v);
		ret = qcow2_w_pwrite(l, blk, cs, p * cs);
		free(blk);
		if (!ret)
			ret = qcow2_w_sync(l);
		if (ret)
			return ret;
		put_be64(ent, p * cs);
		ret = qcow2_w_pwrite(l, ent, 8, w->rt_off + r * 8);
		if (!ret)
			w->rt[r] = p * cs;
		return ret;
	}
	ret = rb_get(l, r, &b);
	if (ret)
		return ret;
	cur = qcow2_rc_get(b->data, i, w->rc_bits);
	if (set) {
		cur = (uint64_t)v;
	} else if (v < 0 ? cur < (uint64_t)-v : cur > max - (uint64_t)v) {
		QW_LOG("refcount of cluster 0x%llx is %llu: cannot add %lld",
		      (unsigned long long)(c * cs), (unsigned long long)cur,
		      (long long)v);
		return -EIO;
	} else {
		cur += (uint64_t)v;
	}
	rc_put(b->data, i, w->rc_bits, cur);
	rc_span(w->rc_bits, i, &boff, &blen);
	if (b->lo >= b->hi) {
		b->lo = (size_t)boff;
		b->hi = (size_t)boff + blen;
	} else {
		b->lo = VD_MIN(b->lo, (size_t)boff);
		b->hi = VD_MAX(b->hi, (size_t)boff + blen);
	}
	return 0;
}

/* A new host cluster, counted: its offset. Caller holds w->meta. */
int qcow2_alloc(struct vd_layer *l, uint64_t *host_r)
{
	struct qcow2 *q = l->priv;
	uint64_t c = qw_pick(q->w);
	int ret = qcow2_rc_change(l, c, true, 1, 0);

	if (ret)
		return ret;
	*host_r = c << q->cluster_bits;
	return 0;
}
