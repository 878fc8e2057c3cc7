/* qcow2, writing: the copy-on-write path of a writable top layer.
 *
 * Only a qcow2 top layer opened with vd_open_opts.writable is written
 * (vdmount --overlay, --rw); every other layer stays O_RDONLY.
 *
 * A write maps the top layer, cluster by cluster:
 *   - a cluster this layer owns alone (L2 entry with the copied flag, no
 *     zero flag; with extended L2 entries, every written subcluster
 *     allocated) is written in place: no metadata changes;
 *   - anything else (unallocated, zero, compressed, shared) gets a host
 *     cluster (a cluster that was free when the image was opened, else
 *     one at the end of the file), receives the whole cluster as the
 *     guest sees it now with the new bytes laid over it (with extended
 *     L2 entries: only the subclusters written, each completed from
 *     what lies below), and then the L2 entry is changed.
 *
 * Ordering, so that a crash at any moment leaves an image qemu-img check
 * finds consistent (clusters may leak, nothing is corrupt) and every
 * byte written before the last flush is there:
 *   1. the new cluster's refcount and its data are written,
 *   2. fdatasync: both are on disk before anything points to them,
 *   3. the L2 entry is written; a new L2 table is written whole and
 *      synced before the L1 entry that points to it;
 *   4. a cluster no longer referenced (a rewritten compressed cluster) is
 *      released only after another fdatasync, so its refcount never
 *      drops while an L2 entry on disk still names it.
 * A new refcount block is synced before the refcount table names it; a
 * grown refcount table is synced before the header names it, and the
 * header is synced before the old table is released. The dirty bit is
 * never used (refcounts are always exact), so a clean close has nothing
 * to clear; fsync is fdatasync of the file.
 *
 * Locks: w->busy (guest clusters being written) serialises writers of
 * one cluster, and lets writers of different clusters run in parallel;
 * w->meta serialises allocation and every metadata write; w->tables is
 * held for reading by every map (qcow2-map.c) while it looks at cached
 * L1 pages and L2 tables, and for writing while a cached table is
 * patched, so readers never see a half-changed entry and the cache
 * always matches the file. Host clusters freed while the image is open
 * are not reused before the next open: a reader that mapped a cluster
 * just before it was released still reads the bytes it mapped.
 *
 * A --rw open first checks the image (qw_check): every cluster the
 * metadata references lies inside the file, no metadata cluster is
 * referenced twice or shared with data, and no cluster is referenced
 * more often than its refcount says. A corrupt image is refused for
 * writing (it still opens read-only). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "core/qcow2.h"

#define Q_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)
#define W_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

/* The open-time check keeps one byte per host cluster: files of more
 * clusters are refused for writing (2^28 clusters of 64 KiB: 16 TiB). */
#define QW_MAX_CLUSTERS (1ULL << 28)
/* QEMU's limit on the refcount table (QCOW_MAX_REFTABLE_SIZE). */
#define QW_MAX_RT_BYTES (8u << 20)
/* Refcount blocks that need refcount blocks: at most this deep. */
#define QW_MAX_RC_DEPTH 4

/* What the check found a host cluster to be. */
#define QW_META 1u
#define QW_DATA 2u
#define QW_COMP 4u

struct qw_busy {
	uint64_t first, last; /* guest cluster indexes */
	struct qw_busy *next;
};

struct qcow2_w {
	pthread_rwlock_t tables; /* see above */
	pthread_mutex_t meta;	 /* guards everything below but busy */
	pthread_mutex_t busy_lock;
	pthread_cond_t busy_cond;
	struct qw_busy *busy; /* guarded by busy_lock */

	uint64_t rt_off;      /* refcount table: header offset 48 */
	uint32_t rt_clusters; /* header offset 56 */
	uint64_t rt_entries;
	uint64_t *rt;	      /* its entries, in memory */
	unsigned rc_bits;     /* 1 << refcount_order */
	unsigned rb_shift;    /* log2(refcounts per block) */
	uint64_t end;	      /* first host cluster index past the file */
	uint8_t *reuse;	      /* bitmap: free when opened, not taken yet */
	uint64_t n_reuse;     /* bits in reuse */
	uint64_t reuse_hint;  /* no bit is set below it */
};

/* ---- host file I/O */

static int qw_pwrite(struct vd_layer *l, const void *buf, size_t len,
		     uint64_t off)
{
	struct vd_file *f = l->file;
	const uint8_t *p = buf;
	uint64_t end = off + len, cur;

	/* Ends: each pass writes at least one byte or returns. */
	while (len > 0) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			if (err != ENOSPC && err != EDQUOT)
				W_LOG("write of %zu bytes at 0x%llx: %s", len,
				      (unsigned long long)off, strerror(err));
			return -err;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
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

static int qw_sync(struct vd_layer *l)
{
	if (fdatasync(l->file->fd) < 0) {
		int err = errno;

		W_LOG("fdatasync: %s", strerror(err));
		return -err;
	}
	return 0;
}

/* ---- refcounts (qcow2.txt, "Host cluster management"): entries of
 * rc_bits bits; below 8 bits packed from the low bits of each byte, from
 * 8 bits up big-endian. */

static uint64_t rc_get(const uint8_t *blk, uint64_t i, unsigned bits)
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

static int qw_rc_change(struct vd_layer *l, uint64_t c, bool set,
			int64_t v, unsigned depth);

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
			W_LOG("refcount table would grow past %u bytes",
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
			ret = qw_rc_change(l, c, true, 1, 1);
			if (ret)
				goto out;
			continue;
		}
		rc_put(blocks + (nrt[r] / cs - e0) * cs,
		       c & ((1ULL << w->rb_shift) - 1), w->rc_bits, 1);
	}
	ret = qw_pwrite(l, blocks, nb * cs, e0 * cs);
	for (uint64_t i = 0; !ret && i < k; i++) {
		uint8_t *t = (uint8_t *)(nrt + i * per);
		uint8_t page[8];

		/* In memory host-endian; on disk big-endian. */
		for (uint64_t x = 0; x < per; x++) {
			put_be64(page, nrt[i * per + x]);
			memcpy(t + x * 8, page, 8);
		}
		ret = qw_pwrite(l, t, cs, (e0 + nb + i) * cs);
		for (uint64_t x = 0; x < per; x++)
			nrt[i * per + x] = get_be64(t + x * 8);
	}
	if (!ret)
		ret = qw_sync(l);
	if (ret)
		goto out;
	/* Header offsets 48 (refcount_table_offset) and 56
	 * (refcount_table_clusters): one write of 12 bytes. */
	put_be64(hdr, (e0 + nb) * cs);
	put_be32(hdr + 8, (uint32_t)k);
	ret = qw_pwrite(l, hdr, sizeof(hdr), 48);
	if (!ret)
		ret = qw_sync(l);
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
		ret = qw_rc_change(l, old_off / cs + i, true, 0, 1);
		if (ret)
			break;
	}
out:
	free(nrt);
	free(blocks);
	return ret;
}

/* Set cluster c's refcount to v (set) or add v to it; a missing
 * refcount block is made (synced before the table names it), a table too
 * small is grown. Caller holds w->meta. */
static int qw_rc_change(struct vd_layer *l, uint64_t c, bool set, int64_t v,
			unsigned depth)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const uint64_t cs = q->cluster_size;
	uint64_t r = c >> w->rb_shift, i = c & ((1ULL << w->rb_shift) - 1);
	uint64_t max = w->rc_bits == 64 ? UINT64_MAX :
					 (1ULL << w->rc_bits) - 1;
	uint64_t boff, cur;
	uint8_t buf[8];
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
			ret = qw_rc_change(l, p, true, 1, depth + 1);
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
		ret = qw_pwrite(l, blk, cs, p * cs);
		free(blk);
		if (!ret)
			ret = qw_sync(l);
		if (ret)
			return ret;
		put_be64(ent, p * cs);
		ret = qw_pwrite(l, ent, 8, w->rt_off + r * 8);
		if (!ret)
			w->rt[r] = p * cs;
		return ret;
	}
	rc_span(w->rc_bits, i, &boff, &blen);
	memset(buf, 0, sizeof(buf));
	ret = vd_file_pread(l->file, buf, blen, w->rt[r] + boff);
	if (ret)
		return ret;
	/* rc_get/rc_put index within buf: entry i's place from boff. */
	uint64_t bi = w->rc_bits < 8 ? i % (8 / w->rc_bits) : 0;
	cur = rc_get(buf, bi, w->rc_bits);
	if (set) {
		cur = (uint64_t)v;
	} else if (v < 0 ? cur < (uint64_t)-v : cur > max - (uint64_t)v) {
		W_LOG("refcount of cluster 0x%llx is %llu: cannot add %lld",
		      (unsigned long long)(c * cs), (unsigned long long)cur,
		      (long long)v);
		return -EIO;
	} else {
		cur += (uint64_t)v;
	}
	rc_put(buf, bi, w->rc_bits, cur);
	return qw_pwrite(l, buf, blen, w->rt[r] + boff);
}

/* A new host cluster, counted: its offset. Caller holds w->meta. */
static int qw_alloc(struct vd_layer *l, uint64_t *host_r)
{
	struct qcow2 *q = l->priv;
	uint64_t c = qw_pick(q->w);
	int ret = qw_rc_change(l, c, true, 1, 0);

	if (ret)
		return ret;
	*host_r = c << q->cluster_bits;
	return 0;
}

/* Give back a cluster qw_alloc returned but nothing references (a data
 * write failed): best effort, a leak otherwise. */
static void qw_unalloc(struct vd_layer *l, uint64_t host)
{
	struct qcow2 *q = l->priv;

	pthread_mutex_lock(&q->w->meta);
	qw_rc_change(l, host >> q->cluster_bits, true, 0, 0);
	pthread_mutex_unlock(&q->w->meta);
}

/* ---- tables */

void qcow2_w_rdlock(struct qcow2 *q)
{
	pthread_rwlock_rdlock(&q->w->tables);
}

void qcow2_w_unlock(struct qcow2 *q)
{
	pthread_rwlock_unlock(&q->w->tables);
}

/* Patch the cached copy of a table (if cached) to match what was just
 * written at byte pos of it. Caller holds w->tables for writing. */
static void qw_patch(struct vd_layer *l, uint64_t key, size_t pos,
		     const void *bytes, size_t len)
{
	struct vd_cache *cache = vd_layer_cache(l);
	struct vd_cache_ref ref;

	if (vd_cache_peek(cache, l, key, &ref))
		return;
	memcpy((uint8_t *)ref.data + pos, bytes, len);
	vd_cache_put(cache, &ref);
}

/* The L1 entry for L1 index idx, through the cache. */
static int qw_l1_entry(struct vd_layer *l, uint64_t idx, uint64_t *e_r)
{
	struct qcow2 *q = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	const unsigned pb = QCOW2_L1_PAGE_BITS - 3;
	struct vd_cache_ref ref;
	int ret;

	ret = vd_cache_get(cache, l, QCOW2_L1_PAGE_KEY | (idx >> pb),
			   1u << QCOW2_L1_PAGE_BITS, qcow2_table_load, l, &ref);
	if (ret) {
		W_LOG("cannot read the L1 table at 0x%llx",
		      (unsigned long long)q->l1_off);
		return -EIO;
	}
	*e_r = get_be64((const uint8_t *)ref.data +
			(idx & ((1ULL << pb) - 1)) * 8);
	vd_cache_put(cache, &ref);
	return 0;
}

/* The L2 entry (and bitmap) of guest offset g: l2_off 0 when no table. */
static int qw_lookup(struct vd_layer *l, uint64_t g, uint64_t *l2_off_r,
		     uint64_t *ent_r, uint64_t *bm_r)
{
	struct qcow2 *q = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t l1_idx = g >> (q->cluster_bits + q->l2_bits), l1e, l2;
	uint64_t idx = (g >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1);
	struct vd_cache_ref ref;
	const uint8_t *p;
	int ret;

	*ent_r = *bm_r = 0;
	ret = qw_l1_entry(l, l1_idx, &l1e);
	if (ret)
		return ret;
	l2 = l1e & QCOW2_OFFSET_MASK;
	*l2_off_r = l2;
	if (!l2)
		return 0;
	if (l2 & (q->cluster_size - 1) ||
	    !vd_range_ok(l2, q->cluster_size, l->file->size)) {
		W_LOG("L2 table at 0x%llx (L1 index %llu) is outside the file",
		      (unsigned long long)l2, (unsigned long long)l1_idx);
		return -EIO;
	}
	ret = vd_cache_get(cache, l, l2, q->cluster_size, qcow2_table_load, l,
			   &ref);
	if (ret) {
		W_LOG("cannot read the L2 table at 0x%llx",
		      (unsigned long long)l2);
		return -EIO;
	}
	p = (const uint8_t *)ref.data + idx * q->entry_bytes;
	*ent_r = get_be64(p);
	if (q->ext_l2)
		*bm_r = get_be64(p + 8);
	vd_cache_put(cache, &ref);
	return 0;
}

/* Point guest cluster g at entry ent (and bitmap bm): in its L2 table,
 * or in a new one (written and synced before the L1 entry names it). */
static int qw_set_entry(struct vd_layer *l, uint64_t g, uint64_t ent,
			uint64_t bm)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const unsigned pb = QCOW2_L1_PAGE_BITS - 3;
	uint64_t l1_idx = g >> (q->cluster_bits + q->l2_bits), l1e, l2;
	uint64_t idx = (g >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1);
	uint8_t e[16];
	int ret;

	put_be64(e, ent);
	put_be64(e + 8, bm);
	pthread_mutex_lock(&w->meta);
	ret = qw_l1_entry(l, l1_idx, &l1e);
	if (ret)
		goto out;
	l2 = l1e & QCOW2_OFFSET_MASK;
	if (!l2) {
		uint8_t *t = calloc(1, q->cluster_size), le[8];

		if (!t) {
			ret = -ENOMEM;
			goto out;
		}
		ret = qw_alloc(l, &l2);
		if (!ret) {
			memcpy(t + idx * q->entry_bytes, e, q->entry_bytes);
			ret = qw_pwrite(l, t, q->cluster_size, l2);
		}
		free(t);
		if (!ret)
			ret = qw_sync(l);
		if (ret)
			goto out;
		put_be64(le, l2 | QCOW2_OFLAG_COPIED);
		pthread_rwlock_wrlock(&w->tables);
		ret = qw_pwrite(l, le, 8, q->l1_off + l1_idx * 8);
		if (!ret)
			qw_patch(l, QCOW2_L1_PAGE_KEY | (l1_idx >> pb),
				 (l1_idx & ((1ULL << pb) - 1)) * 8, le, 8);
		pthread_rwlock_unlock(&w->tables);
		goto out;
	}
	pthread_rwlock_wrlock(&w->tables);
	ret = qw_pwrite(l, e, q->entry_bytes, l2 + idx * q->entry_bytes);
	if (!ret)
		qw_patch(l, l2, idx * q->entry_bytes, e, q->entry_bytes);
	pthread_rwlock_unlock(&w->tables);
out:
	pthread_mutex_unlock(&w->meta);
	return ret;
}

/* Release what an L2 entry referenced before it was replaced. The
 * caller synced first: the entry on disk must no longer name it. */
static int qw_release(struct vd_layer *l, uint64_t old)
{
	struct qcow2 *q = l->priv;
	uint64_t first, last;
	int ret;

	if (old & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coff = old & q->coff_mask;
		uint64_t clen = (((old >> q->csize_shift) & q->csize_mask) + 1) *
				512 - (coff & 511);
		uint64_t fsz = l->file->size;

		/* As the check counted it: the clusters of the input that
		 * lie inside the file. */
		if (coff >= fsz)
			return 0;
		first = coff >> q->cluster_bits;
		last = (VD_MIN(coff + clen, fsz) - 1) >> q->cluster_bits;
	} else {
		first = last = (old & QCOW2_OFFSET_MASK) >> q->cluster_bits;
		if (!first)
			return 0;
	}
	ret = 0;
	pthread_mutex_lock(&q->w->meta);
	for (uint64_t c = first; !ret && c <= last; c++)
		ret = qw_rc_change(l, c, false, -1, 0);
	pthread_mutex_unlock(&q->w->meta);
	return ret;
}

/* The guest's current bytes [g, g + len) into buf; zeros past the end of
 * the disk. */
static int qw_read_current(struct vd_layer *l, uint8_t *buf, uint64_t len,
			   uint64_t g)
{
	uint64_t n = g < l->size ? VD_MIN(len, l->size - g) : 0;

	memset(buf + n, 0, len - n);
	return n ? vd_disk_read(l->disk, buf, n, g) : 0;
}

/* A cluster whose data is written and whose L2 entry is yet to change. */
struct qw_pending {
	uint64_t g;	   /* guest offset of the cluster */
	uint64_t host;	   /* its host cluster now */
	uint64_t bm;	   /* its subcluster bitmap now */
	uint64_t old;	   /* the entry it replaces */
	bool fresh;	   /* host was allocated for it */
};

/* Write n bytes of src at byte in_cl of guest cluster g (cluster start):
 * in place (*pend_r false), or into a host cluster whose L2 entry the
 * caller changes after a sync (*pend_r true, p filled). The caller has
 * claimed the cluster. */
static int qw_write_cluster(struct vd_layer *l, uint64_t g, uint64_t in_cl,
			    const uint8_t *src, uint64_t n,
			    struct qw_pending *p, bool *pend_r)
{
	struct qcow2 *q = l->priv;
	const uint64_t cs = q->cluster_size;
	uint64_t l2, ent, bm, host, new_host, new_bm = 0, wfrom, wlen;
	bool copied, own, compressed, fresh;
	uint8_t *buf = NULL;
	int ret;

	*pend_r = false;
	pthread_rwlock_rdlock(&q->w->tables);
	ret = qw_lookup(l, g, &l2, &ent, &bm);
	pthread_rwlock_unlock(&q->w->tables);
	if (ret)
		return ret;
	compressed = ent & QCOW2_OFLAG_COMPRESSED;
	host = compressed ? 0 : ent & QCOW2_OFFSET_MASK;
	copied = ent & QCOW2_OFLAG_COPIED;
	own = host && copied;
	if (host && (host & (cs - 1) || host >= l->file->size)) {
		W_LOG("cluster offset 0x%llx for guest offset 0x%llx is "
		      "invalid", (unsigned long long)host,
		      (unsigned long long)g);
		return -EIO;
	}

	if (q->ext_l2 && !compressed && (own || !host)) {
		/* Subclusters: write the ones touched, completed. */
		unsigned sb = q->sc_bits;
		uint64_t s0 = in_cl >> sb, s1 = (in_cl + n - 1) >> sb;
		uint64_t mask = ((2ULL << s1) - 1) & ~((1ULL << s0) - 1);

		if (bm & (bm >> 32) || (!host && (bm & 0xffffffffULL))) {
			W_LOG("invalid subcluster bitmap 0x%016llx at guest "
			      "offset 0x%llx", (unsigned long long)bm,
			      (unsigned long long)g);
			return -EIO;
		}
		if (own && (bm & mask) == mask)
			return qw_pwrite(l, src, n, host + in_cl);
		wfrom = s0 << sb;
		wlen = (s1 - s0 + 1) << sb;
		new_bm = (bm | mask) & ~(mask << 32);
		fresh = !own;
	} else {
		if (own && !(ent & QCOW2_OFLAG_ZERO) && !compressed)
			return qw_pwrite(l, src, n, host + in_cl);
		wfrom = 0;
		wlen = cs;
		new_bm = q->ext_l2 ? 0xffffffffULL : 0;
		/* A zero cluster this layer owns keeps its host cluster. */
		fresh = !own;
	}

	if (n == wlen) {
		buf = (uint8_t *)src;
	} else {
		buf = malloc(wlen);
		if (!buf)
			return -ENOMEM;
		ret = qw_read_current(l, buf, wlen, g + wfrom);
		if (ret)
			goto out;
		memcpy(buf + (in_cl - wfrom), src, n);
	}
	new_host = host;
	if (fresh) {
		pthread_mutex_lock(&q->w->meta);
		ret = qw_alloc(l, &new_host);
		pthread_mutex_unlock(&q->w->meta);
		if (ret)
			goto out;
	}
	ret = qw_pwrite(l, buf, wlen, new_host + wfrom);
	/* A partly written new cluster still ends inside the file. */
	if (!ret && fresh && wfrom + wlen < cs) {
		uint8_t z = 0;

		ret = qw_pwrite(l, &z, 1, new_host + cs - 1);
	}
	if (ret) {
		if (fresh)
			qw_unalloc(l, new_host);
		goto out;
	}
	*p = (struct qw_pending){ g, new_host, new_bm, ent, fresh };
	*pend_r = true;
out:
	if (buf != src)
		free(buf);
	return ret;
}

/* Point the L2 entries of the clusters written at their data: one sync
 * first (data and refcounts before what names them), one more before
 * what the old entries named is released. On failure the clusters not
 * yet named are given back. */
static int qw_commit(struct vd_layer *l, struct qw_pending *p, unsigned n,
		     int ret)
{
	bool release = false;
	unsigned i = 0;

	if (!n)
		return ret;
	if (!ret)
		ret = qw_sync(l);
	for (; !ret && i < n; i++) {
		ret = qw_set_entry(l, p[i].g, p[i].host | QCOW2_OFLAG_COPIED,
				   p[i].bm);
		if (ret)
			break;
		release |= p[i].fresh && (p[i].old & (QCOW2_OFLAG_COMPRESSED |
						      QCOW2_OFFSET_MASK));
	}
	for (unsigned j = i; j < n; j++)
		if (p[j].fresh)
			qw_unalloc(l, p[j].host);
	if (release) {
		int r2 = qw_sync(l);

		for (unsigned j = 0; !r2 && j < i; j++)
			if (p[j].fresh &&
			    p[j].old & (QCOW2_OFLAG_COMPRESSED |
					QCOW2_OFFSET_MASK))
				r2 = qw_release(l, p[j].old);
		/* The write itself is done: a failed release leaks. */
		(void)r2;
	}
	return ret;
}

/* Claim guest clusters [first, last] for one writer. */
static void qw_claim(struct qcow2_w *w, struct qw_busy *b)
{
	pthread_mutex_lock(&w->busy_lock);
	for (;;) {
		struct qw_busy *o = w->busy;

		while (o && (o->last < b->first || o->first > b->last))
			o = o->next;
		if (!o)
			break;
		pthread_cond_wait(&w->busy_cond, &w->busy_lock);
	}
	b->next = w->busy;
	w->busy = b;
	pthread_mutex_unlock(&w->busy_lock);
}

static void qw_unclaim(struct qcow2_w *w, struct qw_busy *b)
{
	struct qw_busy **p;

	pthread_mutex_lock(&w->busy_lock);
	for (p = &w->busy; *p != b; p = &(*p)->next)
		;
	*p = b->next;
	pthread_cond_broadcast(&w->busy_cond);
	pthread_mutex_unlock(&w->busy_lock);
}

/* Clusters of one write whose L2 entries change together, after one
 * sync. */
#define QW_BATCH 64

int qcow2_write(struct vd_layer *l, const void *buf, size_t len,
		uint64_t off)
{
	struct qcow2 *q = l->priv;
	const uint8_t *p = buf;
	struct qw_pending pend[QW_BATCH];
	unsigned np = 0;
	struct qw_busy b;
	int ret = 0;

	if (!q->w)
		return -EROFS;
	if (!len)
		return 0;
	b.first = off >> q->cluster_bits;
	b.last = (off + len - 1) >> q->cluster_bits;
	qw_claim(q->w, &b);
	/* Ends: each pass writes at least one byte. */
	while (len > 0) {
		uint64_t in_cl = off & (q->cluster_size - 1);
		uint64_t n = VD_MIN((uint64_t)len, q->cluster_size - in_cl);
		bool pending;

		ret = qw_write_cluster(l, off - in_cl, in_cl, p, n, &pend[np],
				       &pending);
		if (ret)
			break;
		np += pending;
		if (np == QW_BATCH) {
			ret = qw_commit(l, pend, np, 0);
			np = 0;
			if (ret)
				break;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	ret = qw_commit(l, pend, np, ret);
	qw_unclaim(q->w, &b);
	return ret;
}

int qcow2_flush(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;

	return q->w ? qw_sync(l) : 0;
}

/* ---- the check at a writable open */

struct qw_chk {
	uint8_t *refs;	/* references, saturating at 255 */
	uint8_t *kinds; /* QW_* */
	uint64_t n;	/* host clusters in the file */
};

static int qw_mark(struct vd_layer *l, struct qw_chk *k, uint64_t off,
		   unsigned kind, const char *what, struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	uint64_t c = off >> q->cluster_bits;

	if (c >= k->n)
		return Q_FAIL(-EUCLEAN, "%s at 0x%llx lies past the end of the "
			      "file (%llu bytes)", what,
			      (unsigned long long)off,
			      (unsigned long long)l->file->size);
	if ((k->kinds[c] | kind) & QW_META && (k->refs[c] || k->kinds[c]))
		return Q_FAIL(-EUCLEAN, "%s at 0x%llx overlaps other metadata "
			      "or data", what, (unsigned long long)off);
	if ((k->kinds[c] & QW_DATA && kind) || (kind & QW_DATA && k->refs[c]))
		return Q_FAIL(-EUCLEAN, "%s at 0x%llx: the cluster is already "
			      "in use", what, (unsigned long long)off);
	if (k->refs[c] < 255)
		k->refs[c]++;
	k->kinds[c] |= (uint8_t)kind;
	return 0;
}

static int qw_mark_range(struct vd_layer *l, struct qw_chk *k, uint64_t off,
			 uint64_t len, unsigned kind, const char *what,
			 struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	int ret = 0;

	if (!vd_range_ok(off, len, l->file->size))
		return Q_FAIL(-EUCLEAN, "%s (%llu bytes at 0x%llx) lies past "
			      "the end of the file (%llu bytes)", what,
			      (unsigned long long)len, (unsigned long long)off,
			      (unsigned long long)l->file->size);
	/* off is cluster aligned (checked by the caller). */
	for (uint64_t c = off; !ret && c < off + len; c += q->cluster_size)
		ret = qw_mark(l, k, c, kind, what, e);
	return ret;
}

/* Every L2 table and what its entries reference. */
static int qw_check_l2(struct vd_layer *l, struct qw_chk *k, uint8_t *t,
		       struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	const uint64_t cs = q->cluster_size, fsz = l->file->size;
	uint8_t l1[4096];
	int ret;

	/* Ends: at most l1_entries (checked at open) entries, read 512 at
	 * a time. */
	for (uint64_t i = 0; i < q->l1_entries; i++) {
		uint64_t l2;

		if (i % 512 == 0) {
			ret = vd_file_pread(l->file, l1,
					    (size_t)VD_MIN(512, q->l1_entries - i) *
						    8,
					    q->l1_off + i * 8);
			if (ret)
				return Q_FAIL(ret, "cannot read the L1 table");
		}
		l2 = get_be64(l1 + (i % 512) * 8) & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		if (l2 & (cs - 1))
			return Q_FAIL(-EUCLEAN, "L2 table at 0x%llx (L1 index "
				      "%llu) is not cluster aligned",
				      (unsigned long long)l2,
				      (unsigned long long)i);
		ret = qw_mark_range(l, k, l2, cs, QW_META, "L2 table", e);
		if (ret)
			return ret;
		ret = vd_file_pread(l->file, t, cs, l2);
		if (ret)
			return Q_FAIL(ret, "cannot read the L2 table at 0x%llx",
				      (unsigned long long)l2);
		for (uint64_t j = 0; j < (1ULL << q->l2_bits); j++) {
			uint64_t ent = get_be64(t + j * q->entry_bytes);
			uint64_t host = ent & QCOW2_OFFSET_MASK;

			if (ent & QCOW2_OFLAG_COMPRESSED) {
				uint64_t coff = ent & q->coff_mask;
				uint64_t clen = (((ent >> q->csize_shift) &
						  q->csize_mask) + 1) * 512 -
						(coff & 511);

				if (coff >= fsz)
					return Q_FAIL(-EUCLEAN, "compressed "
						      "cluster at 0x%llx lies "
						      "past the end of the file",
						      (unsigned long long)coff);
				for (uint64_t c = coff >> q->cluster_bits;
				     c <= (VD_MIN(coff + clen, fsz) - 1) >>
					      q->cluster_bits;
				     c++) {
					ret = qw_mark(l, k, c << q->cluster_bits,
						      QW_COMP, "compressed "
						      "cluster", e);
					if (ret)
						return ret;
				}
				continue;
			}
			if (!host)
				continue;
			if (host & (cs - 1))
				return Q_FAIL(-EUCLEAN, "data cluster at 0x%llx "
					      "is not cluster aligned",
					      (unsigned long long)host);
			ret = qw_mark(l, k, host, QW_DATA, "data cluster", e);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Compare what is referenced with the refcounts, and find free
 * clusters. */
static int qw_check_refcounts(struct vd_layer *l, struct qw_chk *k,
			      uint8_t *blk, struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const uint64_t per = 1ULL << w->rb_shift;
	int ret;

	w->n_reuse = k->n;
	w->reuse = calloc((k->n + 7) / 8, 1);
	if (!w->reuse)
		return -ENOMEM;
	/* Ends: one pass per refcount block's range inside the file. */
	for (uint64_t r = 0; r * per < k->n; r++) {
		bool have = r < w->rt_entries && w->rt[r];

		if (have) {
			ret = vd_file_pread(l->file, blk, q->cluster_size,
					    w->rt[r]);
			if (ret)
				return Q_FAIL(ret, "cannot read the refcount "
					      "block at 0x%llx",
					      (unsigned long long)w->rt[r]);
		}
		for (uint64_t i = 0; i < per && r * per + i < k->n; i++) {
			uint64_t c = r * per + i;
			uint64_t rc = have ? rc_get(blk, i, w->rc_bits) : 0;

			if (k->refs[c] > rc)
				return Q_FAIL(-EUCLEAN, "cluster at 0x%llx is "
					      "referenced %u times but its "
					      "refcount is %llu",
					      (unsigned long long)(c *
							q->cluster_size),
					      k->refs[c], (unsigned long long)rc);
			if (!rc && c)
				w->reuse[c / 8] |= (uint8_t)(1u << (c % 8));
		}
	}
	return 0;
}

static int qw_check(struct vd_layer *l, const uint8_t *hdr, struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const uint64_t cs = q->cluster_size;
	struct qw_chk k = { 0 };
	uint8_t *buf = NULL;
	int ret;

	k.n = (l->file->size + cs - 1) >> q->cluster_bits;
	if (k.n > QW_MAX_CLUSTERS)
		return Q_FAIL(-EFBIG, "the file has %llu clusters; writing "
			      "supports at most %llu",
			      (unsigned long long)k.n,
			      (unsigned long long)QW_MAX_CLUSTERS);
	w->rt_off = get_be64(hdr + 48);
	w->rt_clusters = get_be32(hdr + 56);
	if (!w->rt_clusters || (uint64_t)w->rt_clusters * cs > QW_MAX_RT_BYTES ||
	    w->rt_off & (cs - 1) || !w->rt_off ||
	    !vd_range_ok(w->rt_off, (uint64_t)w->rt_clusters * cs,
			 l->file->size))
		return Q_FAIL(-EUCLEAN, "refcount table (%u clusters at "
			      "0x%llx) is not inside the file",
			      w->rt_clusters, (unsigned long long)w->rt_off);
	w->rt_entries = (uint64_t)w->rt_clusters * cs / 8;
	w->rt = malloc(w->rt_entries * 8);
	k.refs = calloc(k.n ? k.n : 1, 1);
	k.kinds = calloc(k.n ? k.n : 1, 1);
	buf = malloc(cs);
	if (!w->rt || !k.refs || !k.kinds || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = qw_mark(l, &k, 0, QW_META, "header", e);
	if (!ret)
		ret = qw_mark_range(l, &k, w->rt_off,
				    (uint64_t)w->rt_clusters * cs, QW_META,
				    "refcount table", e);
	if (!ret && q->l1_entries)
		ret = qw_mark_range(l, &k, q->l1_off,
				    (uint64_t)q->l1_entries * 8, QW_META,
				    "L1 table", e);
	for (uint64_t i = 0; !ret && i < w->rt_entries; i++) {
		uint8_t ent[8];
		uint64_t rb;

		if ((i & (cs / 8 - 1)) == 0) {
			ret = vd_file_pread(l->file, buf, cs,
					    w->rt_off + i * 8);
			if (ret)
				break;
		}
		memcpy(ent, buf + (i & (cs / 8 - 1)) * 8, 8);
		rb = get_be64(ent);
		w->rt[i] = rb;
		if (!rb)
			continue;
		if (rb & (cs - 1)) {
			ret = Q_FAIL(-EUCLEAN, "refcount block %llu at 0x%llx "
				     "is not cluster aligned",
				     (unsigned long long)i,
				     (unsigned long long)rb);
			break;
		}
		ret = qw_mark_range(l, &k, rb, cs, QW_META, "refcount block",
				    e);
	}
	if (!ret)
		ret = qw_check_l2(l, &k, buf, e);
	if (!ret)
		ret = qw_check_refcounts(l, &k, buf, e);
	w->end = k.n;
out:
	free(buf);
	free(k.refs);
	free(k.kinds);
	return ret;
}

void qcow2_w_close(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;

	if (!w)
		return;
	qw_sync(l);
	pthread_rwlock_destroy(&w->tables);
	pthread_mutex_destroy(&w->meta);
	pthread_mutex_destroy(&w->busy_lock);
	pthread_cond_destroy(&w->busy_cond);
	free(w->rt);
	free(w->reuse);
	free(w);
	q->w = NULL;
}

/* QEMU's image locks (block/file-posix.c): a shared lock on byte 100 +
 * permission bit says "I hold it", on byte 200 + bit "I share it with
 * nobody". We hold write (bit 1) and share it with nobody, so a QEMU
 * asked to write the image meanwhile refuses, as we refuse when one
 * holds it. */
static int qw_lock(struct vd_layer *l, struct vd_err *e)
{
	static const off_t bytes[] = { 101, 201 };

	if (vd_file_written_by_qemu(l->file))
		return Q_FAIL(-EBUSY, "a running QEMU has the image open for "
			      "writing");
	for (unsigned i = 0; i < VD_ARRAY_SIZE(bytes); i++) {
		struct flock fl = {
			.l_type = F_RDLCK,
			.l_whence = SEEK_SET,
			.l_start = bytes[i],
			.l_len = 1,
		};

		if (fcntl(l->file->fd, F_OFD_SETLK, &fl) < 0)
			return Q_FAIL(-EBUSY, "the image is in use by another "
				      "program (lock on byte %lld: %s)",
				      (long long)bytes[i], strerror(errno));
	}
	return 0;
}

int qcow2_w_open(struct vd_layer *l, const struct vd_layer_opts *o,
		 struct vd_err *e)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w;
	uint8_t hdr[104] = { 0 };
	int ret;

	if (o->snapshot)
		return Q_FAIL(-EROFS, "a snapshot is shown read-only "
			      "(--snapshot with --rw)");
	if (l->file->base || l->file->archive ||
	    (fcntl(l->file->fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		return Q_FAIL(-EROFS, "only an image file given directly can "
			      "be written (not a disk of an appliance)");
	if (q->ext_data)
		return Q_FAIL(-ENOTSUP, "writing to an image with an "
			      "external data file is not supported");
	if (q->nb_snapshots)
		return Q_FAIL(-ENOTSUP, "writing to an image with internal "
			      "snapshots (%u) is not supported",
			      q->nb_snapshots);
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		return Q_FAIL(-EUCLEAN, "the image is marked corrupt; repair "
			      "it with qemu-img check -r all");
	if (q->incompat & QCOW2_INCOMPAT_DIRTY)
		return Q_FAIL(-EUCLEAN, "the image is dirty (its refcounts "
			      "may be stale); repair it with qemu-img check "
			      "-r all");
	if (q->refcount_order > 6)
		return Q_FAIL(-EUCLEAN, "refcount_order %u is invalid (at "
			      "most 6)", q->refcount_order);
	ret = vd_file_pread(l->file, hdr,
			    (size_t)VD_MIN(sizeof(hdr), l->file->size), 0);
	if (ret)
		return Q_FAIL(ret, "cannot read the header");
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_rwlock_init(&w->tables, NULL);
	pthread_mutex_init(&w->meta, NULL);
	pthread_mutex_init(&w->busy_lock, NULL);
	pthread_cond_init(&w->busy_cond, NULL);
	w->rc_bits = 1u << q->refcount_order;
	w->rb_shift = q->cluster_bits + 3 - q->refcount_order;
	q->w = w;
	ret = qw_lock(l, e);
	if (!ret)
		ret = qw_check(l, hdr, e);
	/* Autoclear bits (offset 88) name what a writer that does not
	 * know them must drop (bitmaps): we know none but data_file_raw,
	 * which comes only with a data file, refused above. */
	if (!ret && q->version >= 3 && q->autoclear) {
		uint8_t z[8] = { 0 };

		ret = qw_pwrite(l, z, 8, 88);
		if (!ret)
			ret = qw_sync(l);
		if (ret)
			Q_FAIL(ret, "cannot clear the autoclear features");
		else
			q->autoclear = 0;
	}
	if (ret) {
		q->w = NULL;
		pthread_rwlock_destroy(&w->tables);
		pthread_mutex_destroy(&w->meta);
		pthread_mutex_destroy(&w->busy_lock);
		pthread_cond_destroy(&w->busy_cond);
		free(w->rt);
		free(w->reuse);
		free(w);
	}
	return ret;
}
