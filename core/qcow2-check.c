/* qcow2 writing: the check at a writable open (see qcow2-write.c).
 *
 * Before anything is written, what the metadata references is counted
 * per host cluster (one byte each: header, refcount table and blocks, L1
 * and L2 tables, data and compressed clusters) and compared with the
 * refcounts: every reference inside the file, no metadata cluster used
 * twice or shared with data, no normal data cluster used twice, no
 * refcount below its references. Clusters with refcount 0 and no
 * reference may be reused. A corrupt image is refused for writing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/qcow2-w.h"

#define Q_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

/* The open-time check keeps one byte per host cluster: files of more
 * clusters are refused for writing (2^28 clusters of 64 KiB: 16 TiB). */
#define QW_MAX_CLUSTERS (1ULL << 28)

/* What the check found a host cluster to be. */
#define QW_META 1u
#define QW_DATA 2u
#define QW_COMP 4u

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
			uint64_t rc = have ? qcow2_rc_get(blk, i, w->rc_bits) : 0;

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

int qcow2_w_check(struct vd_layer *l, const uint8_t *hdr, struct vd_err *e)
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

