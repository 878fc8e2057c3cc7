/* qcow2, read-only: the map from guest offsets to runs.
 *
 * Guest offset -> L1 index -> L2 table -> cluster (or, with extended L2
 * entries, subcluster) descriptor. L1 pages and L2 tables come through the
 * disk's bounded cache; an L2 table is pinned only while one map call
 * walks it. One call returns the longest run it can see within one L2
 * table (or across empty L1 entries), so a sequential read costs one map
 * per L2 table rather than one per cluster.
 *
 * Every table offset met here is checked against the file before it is
 * read; a bad one fails this read with EIO and a log line, not the mount. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "core/qcow2.h"

#define Q_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

/* Cache loader: an L1 page (tagged key) or an L2 table (its offset). */
int qcow2_table_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct vd_layer *l = arg;
	struct qcow2 *q = l->priv;

	if (key & QCOW2_L1_PAGE_KEY) {
		uint64_t start = (key & ~QCOW2_L1_PAGE_KEY) << QCOW2_L1_PAGE_BITS;
		uint64_t total = (uint64_t)q->l1_entries * 8;
		uint64_t n;

		if (start >= total)
			return -EIO;
		/* The last page may be partial: zeros (no L2) after it. */
		n = VD_MIN(size, total - start);
		memset((uint8_t *)buf + n, 0, size - n);
		return vd_file_pread(l->file, buf, n, q->l1_off + start);
	}
	return vd_file_pread(l->file, buf, size, key);
}

static int qcow2_classify(struct vd_layer *l, struct qcow2 *q, uint64_t ent,
			  uint64_t bm, unsigned sc, uint64_t guest,
			  struct qcow2_unit *u)
{
	uint64_t host = ent & QCOW2_OFFSET_MASK;
	bool has_host;

	if (ent & QCOW2_OFLAG_COMPRESSED) {
		if (q->ext_data || bm) {
			Q_LOG("compressed cluster at guest offset 0x%llx is "
			      "invalid here (%s)", (unsigned long long)guest,
			      q->ext_data ? "external data file" :
					    "subcluster bits set");
			return -EIO;
		}
		u->type = VD_RUN_COMPRESSED;
		u->coff = ent & q->coff_mask;
		/* Sectors beyond the first, then the bytes actually used:
		 * the data may start mid-sector. */
		u->clen = (((ent >> q->csize_shift) & q->csize_mask) + 1) * 512 -
			  (u->coff & 511);
		return 0;
	}
	if (host & (q->cluster_size - 1)) {
		Q_LOG("cluster offset 0x%llx for guest offset 0x%llx is not "
		      "cluster aligned", (unsigned long long)host,
		      (unsigned long long)guest);
		return -EIO;
	}
	/* Offset 0 means "no host cluster", except in an external data
	 * file, where the copied flag says host offset 0 is real. */
	has_host = host || (q->ext_data && (ent & QCOW2_OFLAG_COPIED));
	u->host = host;
	if (q->ext_l2) {
		bool alloc = bm >> sc & 1, zero = bm >> (32 + sc) & 1;

		if ((alloc && zero) || (alloc && !has_host)) {
			Q_LOG("invalid subcluster bitmap 0x%016llx at guest "
			      "offset 0x%llx", (unsigned long long)bm,
			      (unsigned long long)guest);
			return -EIO;
		}
		u->type = zero ? VD_RUN_ZERO :
			  alloc ? VD_RUN_DATA : VD_RUN_UNALLOC;
		return 0;
	}
	if (ent & QCOW2_OFLAG_ZERO)
		u->type = VD_RUN_ZERO;
	else
		u->type = has_host ? VD_RUN_DATA : VD_RUN_UNALLOC;
	return 0;
}

static int qcow2_map_tables(struct vd_layer *l, uint64_t off, uint64_t len,
			    struct vd_run *r)
{
	struct qcow2 *q = l->priv;
	const unsigned span_bits = q->cluster_bits + q->l2_bits;
	const unsigned page_bits = QCOW2_L1_PAGE_BITS - 3; /* entries/page */
	const uint64_t per_page = 1ULL << page_bits;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t l1_idx = off >> span_bits, l1e, l2_off, end, pos;
	unsigned unit_bits = q->ext_l2 ? q->sc_bits : q->cluster_bits;
	struct vd_cache_ref ref;
	const uint8_t *page;
	bool first = true;
	int ret;

	end = off + len; /* <= l->size: no overflow */
	if (l1_idx >= q->l1_entries) {
		/* Checked at open not to happen; be safe anyway. */
		r->type = VD_RUN_UNALLOC;
		r->len = len;
		return 0;
	}

	ret = vd_cache_get(cache, l, QCOW2_L1_PAGE_KEY | (l1_idx >> page_bits),
			   1u << QCOW2_L1_PAGE_BITS, qcow2_table_load, l, &ref);
	if (ret) {
		Q_LOG("cannot read the L1 table at 0x%llx",
		      (unsigned long long)q->l1_off);
		return -EIO;
	}
	page = ref.data;
	l1e = get_be64(page + (l1_idx & (per_page - 1)) * 8);
	l2_off = l1e & QCOW2_OFFSET_MASK;
	if (!l2_off) {
		/* No L2 table: unallocated up to the next L1 entry that
		 * has one (within this page, which is cached already). */
		uint64_t j = l1_idx + 1;

		while (j < q->l1_entries && (j & (per_page - 1)) &&
		       !(get_be64(page + (j & (per_page - 1)) * 8) &
			 QCOW2_OFFSET_MASK))
			j++;
		vd_cache_put(cache, &ref);
		r->type = VD_RUN_UNALLOC;
		r->len = VD_MIN(end, j << span_bits) - off;
		return 0;
	}
	vd_cache_put(cache, &ref);

	if (l2_off & (q->cluster_size - 1) ||
	    !vd_range_ok(l2_off, q->cluster_size, l->file->size)) {
		Q_LOG("L2 table at 0x%llx (L1 index %llu) is %s (file is %llu "
		      "bytes)", (unsigned long long)l2_off,
		      (unsigned long long)l1_idx,
		      l2_off & (q->cluster_size - 1) ? "not cluster aligned" :
						       "past the end of the file",
		      (unsigned long long)l->file->size);
		return -EIO;
	}
	ret = vd_cache_get(cache, l, l2_off, q->cluster_size, qcow2_table_load,
			   l, &ref);
	if (ret) {
		Q_LOG("cannot read the L2 table at 0x%llx",
		      (unsigned long long)l2_off);
		return -EIO;
	}

	end = VD_MIN(end, (l1_idx + 1) << span_bits);
	/* Ends: pos grows by at least one byte per pass up to end. */
	for (pos = off; pos < end;) {
		uint64_t idx = (pos >> q->cluster_bits) &
			       ((1ULL << q->l2_bits) - 1);
		const uint8_t *ent = (const uint8_t *)ref.data +
				     idx * q->entry_bytes;
		uint64_t in_cl = pos & (q->cluster_size - 1), n;
		struct qcow2_unit u;

		ret = qcow2_classify(l, q, get_be64(ent),
				     q->ext_l2 ? get_be64(ent + 8) : 0,
				     (unsigned)(in_cl >> q->sc_bits), pos, &u);
		if (ret) {
			/* A bad entry after the first ends the run; the
			 * next map call starts there and fails the read. */
			if (!first)
				ret = 0;
			break;
		}
		if (q->crypt && (ret = qcow2_crypt_unit(l, q, pos, &u))) {
			if (!first)
				ret = 0;
			break;
		}
		if (u.type == VD_RUN_COMPRESSED && !q->crypt)
			n = q->cluster_size - in_cl;
		else
			n = (1ULL << unit_bits) - (pos & ((1ULL << unit_bits) - 1));
		n = VD_MIN(n, end - pos);

		if (first) {
			first = false;
			r->type = u.type;
			r->len = n;
			r->file = q->data;
			if (u.type == VD_RUN_DATA) {
				r->host_off = u.host + in_cl;
			} else if (u.type == VD_RUN_COMPRESSED) {
				r->file = q->crypt ? q->data : l->file;
				r->unit_guest = pos - in_cl;
				r->host_off = u.coff;
				r->comp_len = u.clen;
				r->unit_size = (uint32_t)q->cluster_size;
				r->unit_off = (uint32_t)in_cl;
				break; /* one compressed cluster per run */
			}
		} else if (!vd_run_extend(r, u.type, u.host + in_cl, n)) {
			break;
		}
		pos += n;
	}
	vd_cache_put(cache, &ref);
	return ret;
}

/* A writable layer's tables change under the map: it looks at them with
 * the writers' table lock held for reading (qcow2-write.c). */
int qcow2_map(struct vd_layer *l, uint64_t off, uint64_t len,
	      struct vd_run *r)
{
	struct qcow2 *q = l->priv;
	int ret;

	if (!q->w)
		return qcow2_map_tables(l, off, len, r);
	qcow2_w_rdlock(q);
	ret = qcow2_map_tables(l, off, len, r);
	qcow2_w_unlock(q);
	return ret;
}
