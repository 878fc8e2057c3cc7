/* qcow2, writing: the copy-on-write path of a writable top layer.
 *
 * Only a qcow2 top layer opened with vd_open_opts.writable is written
 * (vdmount --overlay, --rw); every other layer stays O_RDONLY.
 *
 * A write maps the top layer, cluster by cluster, in batches of up to
 * QW_BATCH clusters planned, allocated (one hold of w->meta), written
 * (one pwritev for clusters that lie one after the other in the file)
 * and named together:
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
 * The changed entries are written back, as QEMU's L2 cache does: an
 * entry changes at once in the cached L2 table (readers see it), which
 * stays pinned in the cache until the next commit (an fsync, a close, or
 * 64 tables or 8 MiB held). Ordering, so that a crash at any moment
 * leaves an image qemu-img check finds consistent (clusters may leak,
 * nothing is corrupt) and every byte written before the last fsync is
 * there:
 *   1. a new cluster is counted in its refcount block, held in memory
 *      (qcow2-refcount.c), and its data is written (no sync);
 *   2. a commit syncs first: the changed refcount blocks are written,
 *      then fdatasync, so data and refcounts are on disk before anything
 *      points to them;
 *   3. then it writes the changed L2 tables, syncs when one of them is
 *      new, writes the changed L1 entries, and syncs again;
 *   4. only then are the clusters the old entries named (a rewritten
 *      compressed cluster) released, so a refcount never drops while an
 *      L2 entry on disk still names its cluster.
 * A table the cache cannot hold (clusters larger than its budget) is
 * written through at once after the same syncs. A new refcount block is
 * synced before the refcount table names it; a grown refcount table is
 * synced before the header names it, and the header before the old
 * table is released. The dirty bit is never used (refcounts on disk are
 * never below the references on disk), so a clean close has nothing to
 * clear.
 *
 * Locks: w->busy (guest clusters being written) serialises writers of
 * one cluster, and lets writers of different clusters run in parallel;
 * w->meta serialises allocation and every metadata write; w->tables is
 * held for reading by every map (qcow2-map.c) while it looks at cached
 * L1 pages and L2 tables, and for writing while a cached table is
 * patched, so readers never see a half-changed entry. Host clusters freed while the image is open
 * are not reused before the next open: a reader that mapped a cluster
 * just before it was released still reads the bytes it mapped.
 *
 * A --rw open first checks the image (qcow2-check.c): every cluster the
 * metadata references lies inside the file, no metadata cluster is
 * referenced twice or shared with data, and no cluster is referenced
 * more often than its refcount says. A corrupt image is refused for
 * writing (it still opens read-only). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "core/qcow2-w.h"

#define Q_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

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
		QW_LOG("cannot read the L1 table at 0x%llx",
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
		QW_LOG("L2 table at 0x%llx (L1 index %llu) is outside the file",
		      (unsigned long long)l2, (unsigned long long)l1_idx);
		return -EIO;
	}
	ret = vd_cache_get(cache, l, l2, q->cluster_size, qcow2_table_load, l,
			   &ref);
	if (ret) {
		QW_LOG("cannot read the L2 table at 0x%llx",
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

/* Point guest cluster g at entry ent (and bitmap bm), on disk at once:
 * in its L2 table, or in a new one (written and synced before the L1
 * entry names it). The caller holds w->meta, has synced the data, and
 * has no table of this layer dirty. For tables the cache cannot hold. */
static int qw_set_entry_sync(struct vd_layer *l, uint64_t g, uint64_t ent,
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
	ret = qw_l1_entry(l, l1_idx, &l1e);
	if (ret)
		return ret;
	l2 = l1e & QCOW2_OFFSET_MASK;
	if (!l2) {
		uint8_t *t = calloc(1, q->cluster_size), le[8];

		if (!t)
			return -ENOMEM;
		ret = qcow2_alloc(l, &l2);
		if (!ret) {
			memcpy(t + idx * q->entry_bytes, e, q->entry_bytes);
			ret = qcow2_w_pwrite(l, t, q->cluster_size, l2);
		}
		free(t);
		if (!ret)
			ret = qcow2_w_sync(l);
		if (ret)
			return ret;
		put_be64(le, l2 | QCOW2_OFLAG_COPIED);
		pthread_rwlock_wrlock(&w->tables);
		ret = qcow2_w_pwrite(l, le, 8, q->l1_off + l1_idx * 8);
		if (!ret)
			qw_patch(l, QCOW2_L1_PAGE_KEY | (l1_idx >> pb),
				 (l1_idx & ((1ULL << pb) - 1)) * 8, le, 8);
		pthread_rwlock_unlock(&w->tables);
		return ret;
	}
	pthread_rwlock_wrlock(&w->tables);
	ret = qcow2_w_pwrite(l, e, q->entry_bytes, l2 + idx * q->entry_bytes);
	if (!ret)
		qw_patch(l, l2, idx * q->entry_bytes, e, q->entry_bytes);
	pthread_rwlock_unlock(&w->tables);
	return ret;
}

/* Release what an L2 entry referenced before it was replaced. The
 * caller holds w->meta and synced first: the entry on disk must no
 * longer name it. */
static int qw_release(struct vd_layer *l, uint64_t old)
{
	struct qcow2 *q = l->priv;
	uint64_t first, last;
	int ret = 0;

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
	for (uint64_t c = first; !ret && c <= last; c++)
		ret = qcow2_rc_change(l, c, false, -1, 0);
	return ret;
}

/* ---- tables written back: changed in the cache at once (readers see
 * them), on disk at the next commit (a flush, or when too many are
 * held). A changed table stays pinned in the cache until then. */

static int qw_zero_load(void *arg, uint64_t key, void *buf, size_t size)
{
	(void)arg;
	(void)key;
	memset(buf, 0, size);
	return 0;
}

/* Commit: data and refcounts synced, then the changed L2 tables written,
 * (synced when a new one must be before its L1 entry) the changed L1
 * pages written, synced, and the clusters the old entries named
 * released. Caller holds w->meta. On failure everything stays held and
 * is tried again at the next commit. */
static int qw_commit_tables(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t l1_bytes = (uint64_t)q->l1_entries * 8;
	int ret;

	ret = qcow2_w_sync(l);
	if (ret || (!w->n_dirty && !w->n_rel))
		return ret;
	for (unsigned i = 0; !ret && i < w->n_dirty; i++)
		if (!(w->dirty[i].key & QCOW2_L1_PAGE_KEY))
			ret = qcow2_w_pwrite(l, w->dirty[i].ref.data,
					     q->cluster_size, w->dirty[i].key);
	if (!ret && w->new_l2)
		ret = qcow2_w_sync(l);
	for (unsigned i = 0; !ret && i < w->n_dirty; i++) {
		uint64_t k = w->dirty[i].key, start;

		if (!(k & QCOW2_L1_PAGE_KEY))
			continue;
		start = (k & ~QCOW2_L1_PAGE_KEY) << QCOW2_L1_PAGE_BITS;
		ret = qcow2_w_pwrite(l, w->dirty[i].ref.data,
				     (size_t)VD_MIN(1u << QCOW2_L1_PAGE_BITS,
						    l1_bytes - start),
				     q->l1_off + start);
	}
	if (!ret)
		ret = qcow2_w_sync(l);
	if (ret)
		return ret;
	/* What the old entries named: free now (a failure leaks). */
	for (unsigned i = 0; i < w->n_rel; i++)
		qw_release(l, w->rel[i]);
	for (unsigned i = 0; i < w->n_dirty; i++)
		vd_cache_put(cache, &w->dirty[i].ref);
	w->n_dirty = 0;
	w->n_rel = 0;
	w->dirty_bytes = 0;
	w->new_l2 = false;
	return 0;
}

/* The table key (an L2 table's offset or a tagged L1 page), pinned and
 * marked changed: *data_r is its cached copy to change (with w->tables
 * held for writing). -EAGAIN when the cache cannot hold it. Caller holds
 * w->meta and made room (qw_room). */
static int qw_dirty_get(struct vd_layer *l, uint64_t key, size_t size,
			vd_cache_load_fn load, uint8_t **data_r)
{
	struct qcow2_w *w = ((struct qcow2 *)l->priv)->w;
	struct vd_cache *cache = vd_layer_cache(l);
	struct vd_cache_ref ref;
	int ret;

	for (unsigned i = 0; i < w->n_dirty; i++) {
		if (w->dirty[i].key == key) {
			*data_r = (uint8_t *)w->dirty[i].ref.data;
			return 0;
		}
	}
	ret = vd_cache_get(cache, l, key, size, load, l, &ref);
	if (ret)
		return ret;
	if (ref.slot < 0) {
		vd_cache_put(cache, &ref);
		return -EAGAIN;
	}
	w->dirty[w->n_dirty].key = key;
	w->dirty[w->n_dirty].ref = ref;
	w->n_dirty++;
	w->dirty_bytes += size;
	*data_r = (uint8_t *)ref.data;
	return 0;
}

/* Room for one more entry change (two tables, one release): commit when
 * the held tables are too many or too large. Caller holds w->meta. */
static int qw_room(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;

	if (w->n_dirty + 2 <= QW_MAX_DIRTY && w->n_rel < QW_MAX_REL &&
	    w->dirty_bytes + 2 * q->cluster_size <= QW_MAX_DIRTY_BYTES)
		return 0;
	return qw_commit_tables(l);
}

/* Point guest cluster g at entry ent (and bitmap bm), replacing old
 * (released after the commit that makes the change durable when
 * release). The data of what ent names is written and it is counted.
 * Caller holds w->meta. */
static int qw_set_entry(struct vd_layer *l, uint64_t g, uint64_t ent,
			uint64_t bm, uint64_t old, bool release)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	const unsigned pb = QCOW2_L1_PAGE_BITS - 3;
	uint64_t l1_idx = g >> (q->cluster_bits + q->l2_bits), l1e, l2;
	uint64_t idx = (g >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1);
	uint8_t e[16], *t, *pg;
	int ret;

	put_be64(e, ent);
	put_be64(e + 8, bm);
	ret = qw_room(l);
	if (!ret)
		ret = qw_l1_entry(l, l1_idx, &l1e);
	if (ret)
		goto out;
	l2 = l1e & QCOW2_OFFSET_MASK;
	if (l2) {
		ret = qw_dirty_get(l, l2, q->cluster_size, qcow2_table_load, &t);
		if (ret)
			goto fallback;
		pthread_rwlock_wrlock(&w->tables);
		memcpy(t + idx * q->entry_bytes, e, q->entry_bytes);
		pthread_rwlock_unlock(&w->tables);
	} else {
		uint8_t *z = calloc(1, q->cluster_size);

		/* The L1 page first: if it cannot be held, nothing changed. */
		ret = qw_dirty_get(l, QCOW2_L1_PAGE_KEY | (l1_idx >> pb),
				   1u << QCOW2_L1_PAGE_BITS, qcow2_table_load,
				   &pg);
		if (!ret)
			ret = z ? qcow2_alloc(l, &l2) : -ENOMEM;
		if (!ret) {
			/* Zeros now, so a full disk fails this write, not a
			 * commit. */
			ret = qcow2_w_pwrite(l, z, q->cluster_size, l2);
			if (!ret)
				ret = qw_dirty_get(l, l2, q->cluster_size,
						   qw_zero_load, &t);
			/* Not written, or not held: the table is given back. */
			if (ret)
				qcow2_rc_change(l, l2 >> q->cluster_bits, true,
						0, 0);
		}
		free(z);
		if (ret)
			goto fallback;
		w->new_l2 = true;
		pthread_rwlock_wrlock(&w->tables);
		memcpy(t + idx * q->entry_bytes, e, q->entry_bytes);
		put_be64(pg + (l1_idx & ((1ULL << pb) - 1)) * 8,
			 l2 | QCOW2_OFLAG_COPIED);
		pthread_rwlock_unlock(&w->tables);
	}
	if (release)
		w->rel[w->n_rel++] = old;
	goto out;
fallback:
	/* A table the cache cannot hold (clusters larger than its budget):
	 * everything held is committed, then this entry goes to disk. */
	if (ret == -EAGAIN) {
		ret = qw_commit_tables(l);
		if (!ret)
			ret = qw_set_entry_sync(l, g, ent, bm);
		if (!ret && release && !(ret = qcow2_w_sync(l)))
			qw_release(l, old);
	}
out:
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

/* Clusters of one write planned, allocated, written and named together. */
#define QW_BATCH 64

/* One cluster of a write. */
struct qw_piece {
	uint64_t g;	      /* guest offset of the cluster */
	uint64_t ent, bm;     /* its L2 entry (and bitmap) before */
	uint64_t host;	      /* the host cluster written */
	uint64_t new_bm;      /* its bitmap after */
	uint64_t wfrom, wlen; /* the bytes of the cluster written */
	const uint8_t *data;  /* what is written there */
	uint8_t *buf;	      /* data, when completed from below */
	bool pend;	      /* its L2 entry changes after the write */
	bool fresh;	      /* host is allocated for it */
};

/* How n bytes of src at byte in_cl of guest cluster p->g are written:
 * in place (p->pend false: a cluster this layer owns), or into a host
 * cluster whose L2 entry changes after (fresh when one must be
 * allocated: unallocated, zero, compressed, shared), the rest of what
 * is written there read from what the guest sees now. The caller has
 * claimed the cluster. */
static int qw_plan(struct vd_layer *l, struct qw_piece *p, uint64_t in_cl,
		   const uint8_t *src, uint64_t n)
{
	struct qcow2 *q = l->priv;
	const uint64_t cs = q->cluster_size;
	uint64_t l2, ent, bm, host;
	bool copied, own, compressed;
	int ret;

	pthread_rwlock_rdlock(&q->w->tables);
	ret = qw_lookup(l, p->g, &l2, &ent, &bm);
	pthread_rwlock_unlock(&q->w->tables);
	if (ret)
		return ret;
	compressed = ent & QCOW2_OFLAG_COMPRESSED;
	host = compressed ? 0 : ent & QCOW2_OFFSET_MASK;
	copied = ent & QCOW2_OFLAG_COPIED;
	own = host && copied;
	if (host && (host & (cs - 1) || host >= l->file->size)) {
		QW_LOG("cluster offset 0x%llx for guest offset 0x%llx is "
		      "invalid", (unsigned long long)host,
		      (unsigned long long)p->g);
		return -EIO;
	}
	p->ent = ent;
	p->bm = bm;
	p->host = host;
	p->data = src;
	p->buf = NULL;
	p->pend = p->fresh = false;

	if (q->ext_l2 && !compressed && (own || !host)) {
		/* Subclusters: write the ones touched, completed. */
		unsigned sb = q->sc_bits;
		uint64_t s0 = in_cl >> sb, s1 = (in_cl + n - 1) >> sb;
		uint64_t mask = ((2ULL << s1) - 1) & ~((1ULL << s0) - 1);

		if (bm & (bm >> 32) || (!host && (bm & 0xffffffffULL))) {
			QW_LOG("invalid subcluster bitmap 0x%016llx at guest "
			      "offset 0x%llx", (unsigned long long)bm,
			      (unsigned long long)p->g);
			return -EIO;
		}
		if (own && (bm & mask) == mask)
			goto in_place;
		p->wfrom = s0 << sb;
		p->wlen = (s1 - s0 + 1) << sb;
		p->new_bm = (bm | mask) & ~(mask << 32);
	} else {
		if (own && !(ent & QCOW2_OFLAG_ZERO) && !compressed)
			goto in_place;
		p->wfrom = 0;
		p->wlen = cs;
		p->new_bm = q->ext_l2 ? 0xffffffffULL : 0;
	}
	/* A zero cluster this layer owns keeps its host cluster. */
	p->fresh = !own;
	p->pend = true;
	if (n == p->wlen)
		return 0;
	p->buf = malloc(p->wlen);
	if (!p->buf)
		return -ENOMEM;
	ret = qw_read_current(l, p->buf, p->wlen, p->g + p->wfrom);
	if (ret)
		return ret;
	memcpy(p->buf + (in_cl - p->wfrom), src, n);
	p->data = p->buf;
	return 0;
in_place:
	p->wfrom = in_cl;
	p->wlen = n;
	return 0;
}

/* Host clusters for the pieces that need one, under one hold of
 * w->meta: a fresh file gives a run, written by one call. On failure
 * none is taken. */
static int qw_alloc(struct vd_layer *l, struct qw_piece *pc, unsigned np)
{
	struct qcow2 *q = l->priv;
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&q->w->meta);
	for (i = 0; !ret && i < np; i++)
		if (pc[i].fresh)
			ret = qcow2_alloc(l, &pc[i].host);
	/* i - 1 failed; those before it are given back. */
	for (unsigned j = 0; ret && j + 1 < i; j++)
		if (pc[j].fresh)
			qcow2_rc_change(l, pc[j].host >> q->cluster_bits, true,
					0, 0);
	pthread_mutex_unlock(&q->w->meta);
	return ret;
}

/* Write-behind, as convert's output does (vd_out_writeback): a write
 * of QW_BEHIND_MIN bytes or more that starts where the last one ended
 * continues a run, and once QW_BEHIND bytes of the run are written,
 * their disk writes are started (sync_file_range, no waiting). A
 * sequential writer's data then reaches the disk while it goes on
 * writing, instead of all in its final fsync. Only a start: the order
 * is still what the commit's syncs make it (the data lies in clusters
 * nothing on disk names yet, or in this layer's own), and a failure
 * shows again in the next fdatasync. Random writers (a 4 KiB write
 * fills one 64 KiB cluster) start nothing: their disk writes would
 * only compete with their reads from the layers below. */
static void qw_behind(struct vd_layer *l, uint64_t start, uint64_t end)
{
	struct qcow2_w *w = ((struct qcow2 *)l->priv)->w;
	uint64_t from = 0, to = 0;

	if (end - start < QW_BEHIND_MIN)
		return;
	pthread_mutex_lock(&w->behind_lock);
	if (start != w->behind_end || w->behind_done > start)
		w->behind_done = start;
	w->behind_end = end;
	if (end - w->behind_done >= QW_BEHIND) {
		from = w->behind_done;
		to = end;
		w->behind_done = end;
	}
	pthread_mutex_unlock(&w->behind_lock);
	if (to > from)
		(void)sync_file_range(l->file->fd, (off_t)from,
				      (off_t)(to - from), SYNC_FILE_RANGE_WRITE);
}

/* The pieces' bytes to their host clusters: one write for each run of
 * pieces that lie one after the other in the file. */
static int qw_put(struct vd_layer *l, struct qw_piece *pc, unsigned np)
{
	const uint64_t cs = ((struct qcow2 *)l->priv)->cluster_size;
	struct iovec iov[QW_BATCH];
	int ret = 0;

	/* Ends: each pass writes at least one piece. */
	for (unsigned i = 0, j; !ret && i < np; i = j) {
		uint64_t start = pc[i].host + pc[i].wfrom, end = start;
		int cnt = 0;

		for (j = i; j < np && pc[j].host + pc[j].wfrom == end; j++) {
			iov[cnt++] = (struct iovec){ (void *)pc[j].data,
						     pc[j].wlen };
			end += pc[j].wlen;
		}
		ret = qcow2_w_pwritev(l, iov, cnt, start);
		if (!ret)
			qw_behind(l, start, end);
		/* A partly written new cluster still ends inside the file. */
		for (unsigned k = i; !ret && k < j; k++) {
			uint8_t z = 0;

			if (pc[k].fresh && pc[k].wfrom + pc[k].wlen < cs)
				ret = qcow2_w_pwrite(l, &z, 1,
						     pc[k].host + cs - 1);
		}
	}
	return ret;
}

/* Point the L2 entries of the pieces written at their data (in the
 * cache; on disk at the next commit). With ret set, or on failure, the
 * clusters not yet named are given back. */
static int qw_apply(struct vd_layer *l, struct qw_piece *pc, unsigned np,
		    int ret)
{
	struct qcow2 *q = l->priv;
	unsigned i = 0;

	pthread_mutex_lock(&q->w->meta);
	for (; !ret && i < np; i++) {
		bool rel = pc[i].fresh &&
			   (pc[i].ent & (QCOW2_OFLAG_COMPRESSED |
					 QCOW2_OFFSET_MASK));

		if (!pc[i].pend)
			continue;
		ret = qw_set_entry(l, pc[i].g, pc[i].host | QCOW2_OFLAG_COPIED,
				   pc[i].new_bm, pc[i].ent, rel);
		if (ret)
			break;
	}
	for (unsigned j = i; j < np; j++)
		if (pc[j].fresh)
			qcow2_rc_change(l, pc[j].host >> q->cluster_bits, true,
					0, 0);
	pthread_mutex_unlock(&q->w->meta);
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

/* A child vd_overlay_create has just made (vd_open_opts.fresh) is
 * written but not synced, so that a mount does not wait for the disk
 * (two syncs were most of the time from exec to the first stat). It and
 * its name are made durable before the first change to it, or at its
 * close: a crash (power loss) before then leaves no child, an empty one
 * (which vdmount --overlay makes again) or the whole new one; never one
 * written to but not whole. Caller holds w->meta. */
static int qw_sync_fresh(struct vd_layer *l)
{
	struct qcow2_w *w = ((struct qcow2 *)l->priv)->w;
	int ret;

	if (w->fresh_dir < 0)
		return 0;
	ret = qcow2_w_sync(l);
	if (!ret && fsync(w->fresh_dir) < 0) {
		ret = -errno;
		QW_LOG("fsync of its folder: %s", strerror(-ret));
	}
	if (ret)
		return ret;
	close(w->fresh_dir);
	w->fresh_dir = -1;
	return 0;
}

/* Before the first change to the file: a fresh child made durable
 * (qw_sync_fresh); autoclear bits (offset 88) name what a writer that
 * does not know them must drop (bitmaps); we know none but
 * data_file_raw, which comes only with a data file (refused for
 * writing). Not at open: an open that then fails (an overlay that does
 * not lead to its base) must leave the file as it was. */
static int qw_touch(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;
	uint8_t z[8] = { 0 };
	int ret = 0;

	pthread_mutex_lock(&w->meta);
	if (!w->touched)
		ret = qw_sync_fresh(l);
	if (!ret && !w->touched && q->version >= 3 && q->autoclear) {
		ret = qcow2_w_pwrite(l, z, 8, 88);
		if (!ret)
			ret = qcow2_w_sync(l);
		if (!ret)
			q->autoclear = 0;
	}
	__atomic_store_n(&w->touched, !ret, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->meta);
	return ret;
}

int qcow2_write(struct vd_layer *l, const void *buf, size_t len,
		uint64_t off)
{
	struct qcow2 *q = l->priv;
	const uint8_t *p = buf;
	struct qw_piece pc[QW_BATCH];
	struct qw_busy b;
	int ret = 0;

	if (!q->w)
		return -EROFS;
	if (!len)
		return 0;
	if (!__atomic_load_n(&q->w->touched, __ATOMIC_ACQUIRE)) {
		ret = qw_touch(l);
		if (ret)
			return ret;
	}
	b.first = off >> q->cluster_bits;
	b.last = (off + len - 1) >> q->cluster_bits;
	qw_claim(q->w, &b);
	/* Ends: each pass plans at least one cluster (or fails). */
	while (!ret && len > 0) {
		unsigned np = 0;

		/* Ends: each pass takes at least one byte. */
		for (; len > 0 && np < QW_BATCH; np++) {
			uint64_t in_cl = off & (q->cluster_size - 1);
			uint64_t n = VD_MIN((uint64_t)len,
					    q->cluster_size - in_cl);

			pc[np].g = off - in_cl;
			pc[np].buf = NULL;
			ret = qw_plan(l, &pc[np], in_cl, p, n);
			if (ret) {
				free(pc[np].buf);
				break;
			}
			p += n;
			off += n;
			len -= (size_t)n;
		}
		if (!ret)
			ret = qw_alloc(l, pc, np);
		if (!ret) {
			ret = qw_put(l, pc, np);
			ret = qw_apply(l, pc, np, ret);
		}
		for (unsigned i = 0; i < np; i++)
			free(pc[i].buf);
	}
	qw_unclaim(q->w, &b);
	return ret;
}

int qcow2_flush(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	int ret;

	if (!q->w)
		return 0;
	pthread_mutex_lock(&q->w->meta);
	ret = qw_commit_tables(l);
	pthread_mutex_unlock(&q->w->meta);
	return ret;
}

void qcow2_w_close(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;
	struct qcow2_w *w = q->w;

	if (!w)
		return;
	if (qcow2_flush(l))
		vd_log(VD_LOG_ERR, "%s: qcow2: closing: the last writes could "
		       "not be made durable", l->path);
	pthread_mutex_lock(&w->meta);
	qw_sync_fresh(l);
	pthread_mutex_unlock(&w->meta);
	if (w->fresh_dir >= 0)
		close(w->fresh_dir);
	for (unsigned i = 0; i < w->n_dirty; i++)
		vd_cache_put(vd_layer_cache(l), &w->dirty[i].ref);
	qcow2_rb_drop(w);
	pthread_rwlock_destroy(&w->tables);
	pthread_mutex_destroy(&w->meta);
	pthread_mutex_destroy(&w->busy_lock);
	pthread_cond_destroy(&w->busy_cond);
	pthread_mutex_destroy(&w->behind_lock);
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

/* The folder of the layer's file, open, for syncing the file's name
 * later: a daemon moves to / after the open, and the path may be
 * relative. */
static int qw_open_dir(struct vd_layer *l, int *fd_r, struct vd_err *e)
{
	char *tmp = strdup(l->path);
	int fd;

	if (!tmp)
		return Q_FAIL(-ENOMEM, "out of memory");
	fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(tmp);
	if (fd < 0)
		return Q_FAIL(-errno, "cannot open its folder: %s",
			      strerror(errno));
	*fd_r = fd;
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
	/* Offset 32, crypt_method: writes would have to be encrypted. */
	if (get_be32(hdr + 32))
		return Q_FAIL(-ENOTSUP, "writing to an encrypted image is not "
			      "supported");
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_rwlock_init(&w->tables, NULL);
	pthread_mutex_init(&w->meta, NULL);
	pthread_mutex_init(&w->busy_lock, NULL);
	pthread_cond_init(&w->busy_cond, NULL);
	pthread_mutex_init(&w->behind_lock, NULL);
	w->rc_bits = 1u << q->refcount_order;
	w->rb_shift = q->cluster_bits + 3 - q->refcount_order;
	w->fresh_dir = -1;
	q->w = w;
	ret = qw_lock(l, e);
	if (!ret && o->fresh)
		ret = qw_open_dir(l, &w->fresh_dir, e);
	if (!ret)
		ret = qcow2_w_check(l, hdr, e);
	if (ret) {
		q->w = NULL;
		pthread_rwlock_destroy(&w->tables);
		pthread_mutex_destroy(&w->meta);
		pthread_mutex_destroy(&w->busy_lock);
		pthread_cond_destroy(&w->busy_cond);
		pthread_mutex_destroy(&w->behind_lock);
		qcow2_rb_drop(w);
		if (w->fresh_dir >= 0)
			close(w->fresh_dir);
		free(w->rt);
		free(w->reuse);
		free(w);
	}
	return ret;
}

