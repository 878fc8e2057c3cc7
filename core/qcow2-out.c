/* qcow2, writing a new image front to back: the stream mode of the
 * writer (vdtool convert -O qcow2). The copy-on-write path
 * (qcow2-write.c) allocates inside an image that exists; here there is
 * nothing to look up, so every host cluster is simply the next one.
 *
 * Layout (qcow2.txt): cluster 0 holds the header, its extensions and the
 * backing file name, written last. From cluster 1 on, in guest order:
 * data clusters and compressed clusters (packed back to back, a normal
 * cluster or a table starting at the next cluster boundary), and each L2
 * table as soon as the guest range it covers is complete. At the end the
 * L1 table, the refcount blocks and the refcount table, then the
 * header. Every cluster is counted in memory (two bytes each) as it is
 * placed: 1 for data and tables, and for the clusters compressed data
 * touches, one per compressed cluster touching it (as qemu-img check
 * counts: the bytes up to the end of the 512-byte sector holding the
 * last one). Refcounts are 16 bits (refcount_order 4, QEMU's default).
 *
 * Nothing is copied that need not be: the bytes of data and compressed
 * clusters stay in the caller's buffers, described as pieces (an
 * iovec, adjacent pieces joined), until vd_qcow2_out_flush writes them
 * all with one pwritev; only what the writer makes itself (tables,
 * padding) is copied, into a staging buffer of VD_QO_STAGE bytes. The
 * disk writes of the file are started as it grows (vd_out_writeback),
 * so the final fdatasync finds little left to do. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "core/qcow2.h"
#include "core/writer.h"

#define VD_QO_STAGE (4u << 20)
#define QO_IOV 1024
#define QO_EXT_BACKING_FORMAT 0xe2792acau
#define QO_HEADER_LEN 112

struct vd_qcow2_out {
	int fd;
	unsigned cluster_bits;
	uint64_t cs;
	unsigned l2_bits;
	uint64_t size;
	enum vd_codec codec;
	unsigned csize_shift;
	char *backing, *backing_fmt;
	uint64_t l1_n;
	uint64_t *l1;	    /* host order */
	uint8_t *l2;	    /* the table being filled, big-endian entries */
	uint64_t l2_idx;    /* its L1 index */
	bool l2_used;
	uint64_t next_g;    /* guest clusters come in increasing order */
	uint64_t end;	    /* where the next byte goes */
	/* Bytes [end - pend, end) given but not written yet: niov pieces,
	 * of the callers' buffers or of stage (stage_len bytes used). */
	struct iovec iov[QO_IOV];
	unsigned niov;
	uint64_t pend;
	uint8_t *stage;
	size_t stage_len;
	uint64_t wb;	    /* disk writes started up to here */
	uint16_t *refs;	    /* references per host cluster */
	uint64_t refs_cap;
};

static int qo_flush(struct vd_qcow2_out *w)
{
	int ret;

	if (!w->pend)
		return 0;
	ret = vd_out_pwritev(w->fd, w->iov, w->niov, w->end - w->pend);
	w->niov = 0;
	w->pend = 0;
	w->stage_len = 0;
	if (!ret)
		vd_out_writeback(w->fd, &w->wb, w->end, false);
	return ret;
}

/* One more piece of n bytes at p, after the pending ones. */
static int qo_piece(struct vd_qcow2_out *w, const void *p, size_t n)
{
	struct iovec *last = w->niov ? &w->iov[w->niov - 1] : NULL;
	int ret;

	if (last && (const uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += n;
	} else {
		if (w->niov == QO_IOV && (ret = qo_flush(w)))
			return ret;
		w->iov[w->niov++] = (struct iovec){ (void *)(uintptr_t)p, n };
	}
	w->pend += n;
	w->end += n;
	return 0;
}

/* Append n bytes of the caller's (kept until the next flush). */
static int qo_ref_bytes(struct vd_qcow2_out *w, const void *buf, size_t n)
{
	return n ? qo_piece(w, buf, n) : 0;
}

/* Append n bytes of the writer's own (buf NULL: zeros), copied. */
static int qo_append(struct vd_qcow2_out *w, const void *buf, size_t n)
{
	int ret;

	if (buf && n > VD_QO_STAGE) {
		ret = qo_flush(w);
		if (!ret)
			ret = vd_out_pwrite(w->fd, buf, n, w->end);
		if (!ret)
			w->end += n;
		return ret;
	}
	/* Ends: each pass stages at least one byte (the stage is empty
	 * after a flush). */
	while (n) {
		size_t k;

		if (w->stage_len == VD_QO_STAGE && (ret = qo_flush(w)))
			return ret;
		if (w->niov == QO_IOV && (ret = qo_flush(w)))
			return ret;
		k = VD_MIN(n, VD_QO_STAGE - w->stage_len);
		if (buf) {
			memcpy(w->stage + w->stage_len, buf, k);
			buf = (const uint8_t *)buf + k;
		} else {
			memset(w->stage + w->stage_len, 0, k);
		}
		ret = qo_piece(w, w->stage + w->stage_len, k);
		if (ret)
			return ret;
		w->stage_len += k;
		n -= k;
	}
	return 0;
}

int vd_qcow2_out_flush(struct vd_qcow2_out *w)
{
	return qo_flush(w);
}

/* Count one reference to host cluster c. */
static int qo_ref(struct vd_qcow2_out *w, uint64_t c)
{
	if (c >= w->refs_cap) {
		uint64_t cap = VD_MAX(w->refs_cap * 2, c + 1024);
		uint16_t *n = realloc(w->refs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		memset(n + w->refs_cap, 0, (cap - w->refs_cap) * sizeof(*n));
		w->refs = n;
		w->refs_cap = cap;
	}
	if (w->refs[c] == UINT16_MAX)
		return -EOVERFLOW;
	w->refs[c]++;
	return 0;
}

/* Move to the next cluster boundary (zeros between). */
static int qo_align(struct vd_qcow2_out *w)
{
	uint64_t pad = (w->cs - (w->end & (w->cs - 1))) & (w->cs - 1);

	return pad ? qo_append(w, NULL, (size_t)pad) : 0;
}

/* A whole cluster at the end: its offset in *host_r, counted. buf is
 * copied when own (the writer's table), else kept until the flush. */
static int qo_cluster(struct vd_qcow2_out *w, const void *buf, bool own,
		      uint64_t *host_r)
{
	int ret = qo_align(w);

	if (ret)
		return ret;
	*host_r = w->end;
	ret = qo_ref(w, w->end >> w->cluster_bits);
	if (ret)
		return ret;
	if (buf)
		return own ? qo_append(w, buf, (size_t)w->cs) :
			     qo_ref_bytes(w, buf, (size_t)w->cs);
	/* Not written: a hole in the file. */
	ret = qo_flush(w);
	w->end += w->cs;
	return ret;
}

/* The L2 table being filled goes out (if anything is in it). */
static int qo_l2_out(struct vd_qcow2_out *w)
{
	uint64_t host;
	int ret;

	if (!w->l2_used)
		return 0;
	ret = qo_cluster(w, w->l2, true, &host);
	if (ret)
		return ret;
	w->l1[w->l2_idx] = host | QCOW2_OFLAG_COPIED;
	memset(w->l2, 0, (size_t)w->cs);
	w->l2_used = false;
	return 0;
}

/* Guest cluster g's L2 entry: the table of g is the one being filled. */
static int qo_entry(struct vd_qcow2_out *w, uint64_t g, uint64_t ent)
{
	uint64_t idx = g >> w->l2_bits;
	int ret;

	if (g < w->next_g || idx >= w->l1_n)
		return -EINVAL;
	w->next_g = g + 1;
	if (idx != w->l2_idx) {
		ret = qo_l2_out(w);
		if (ret)
			return ret;
		w->l2_idx = idx;
	}
	put_be64(w->l2 + (g & ((1ULL << w->l2_bits) - 1)) * 8, ent);
	w->l2_used = true;
	return 0;
}

int vd_qcow2_out_data(struct vd_qcow2_out *w, uint64_t g, const void *buf)
{
	uint64_t host;
	int ret;

	if (g < w->next_g)
		return -EINVAL;
	ret = qo_cluster(w, buf, false, &host);
	return ret ? ret : qo_entry(w, g, host | QCOW2_OFLAG_COPIED);
}

int vd_qcow2_out_alloc(struct vd_qcow2_out *w, uint64_t g)
{
	uint64_t host;
	int ret;

	if (g < w->next_g)
		return -EINVAL;
	ret = qo_cluster(w, NULL, false, &host);
	return ret ? ret : qo_entry(w, g, host | QCOW2_OFLAG_COPIED);
}

int vd_qcow2_out_compressed(struct vd_qcow2_out *w, uint64_t g,
			    const void *buf, size_t len)
{
	uint64_t at = w->end, extra;
	int ret;

	if (!len || len >= w->cs || g < w->next_g)
		return -EINVAL;
	/* A host cluster shared by so many compressed clusters that its
	 * refcount would overflow: start the next one. */
	if ((at >> w->cluster_bits) < w->refs_cap &&
	    w->refs[at >> w->cluster_bits] >= UINT16_MAX - 1) {
		ret = qo_align(w);
		if (ret)
			return ret;
		at = w->end;
	}
	/* qcow2.txt, "Compressed Clusters Descriptor": the host offset,
	 * and the number of 512-byte sectors after the first that hold
	 * the data. */
	extra = ((at + len - 1) >> 9) - (at >> 9);
	for (uint64_t c = at >> w->cluster_bits;
	     c <= (at + len - 1) >> w->cluster_bits; c++) {
		ret = qo_ref(w, c);
		if (ret)
			return ret;
	}
	ret = qo_ref_bytes(w, buf, len);
	if (ret)
		return ret;
	return qo_entry(w, g, QCOW2_OFLAG_COMPRESSED | at |
				      extra << w->csize_shift);
}

int vd_qcow2_out_zero(struct vd_qcow2_out *w, uint64_t g)
{
	return qo_entry(w, g, QCOW2_OFLAG_ZERO);
}

uint64_t vd_qcow2_out_bytes(const struct vd_qcow2_out *w)
{
	return w->end;
}

/* The refcount blocks and table at the end: R blocks and T table
 * clusters that also count themselves. Ends: R and T only grow, and each
 * is bounded by the clusters they describe. */
static int qo_refcounts(struct vd_qcow2_out *w, uint64_t *rt_off_r,
			uint32_t *rt_clusters_r)
{
	const uint64_t per = w->cs / 2; /* 16-bit refcounts per block */
	uint64_t e = w->end >> w->cluster_bits, r = 0, t = 0;
	uint8_t *buf;
	int ret = 0;

	for (;;) {
		uint64_t total = e + r + t;
		uint64_t r2 = (total + per - 1) / per;
		uint64_t t2 = VD_MAX((r2 * 8 + w->cs - 1) / w->cs, 1);

		if (r2 == r && t2 == t)
			break;
		r = r2;
		t = t2;
	}
	if (t * w->cs > (8u << 20))
		return -EFBIG; /* QEMU's limit on the table */
	for (uint64_t c = e; c < e + r + t && !ret; c++)
		ret = qo_ref(w, c);
	buf = calloc(1, (size_t)w->cs);
	if (ret || !buf) {
		free(buf);
		return ret ? ret : -ENOMEM;
	}
	for (uint64_t b = 0; b < r && !ret; b++) {
		memset(buf, 0, (size_t)w->cs);
		for (uint64_t i = 0; i < per; i++) {
			uint64_t c = b * per + i;
			uint16_t v = c < w->refs_cap ? w->refs[c] : 0;

			buf[i * 2] = (uint8_t)(v >> 8);
			buf[i * 2 + 1] = (uint8_t)v;
		}
		ret = qo_append(w, buf, (size_t)w->cs);
	}
	for (uint64_t k = 0; k < t && !ret; k++) {
		memset(buf, 0, (size_t)w->cs);
		for (uint64_t i = 0; i < w->cs / 8; i++) {
			uint64_t b = k * (w->cs / 8) + i;

			if (b < r)
				put_be64(buf + i * 8, (e + b) << w->cluster_bits);
		}
		ret = qo_append(w, buf, (size_t)w->cs);
	}
	free(buf);
	*rt_off_r = (e + r) << w->cluster_bits;
	*rt_clusters_r = (uint32_t)t;
	return ret;
}

int vd_qcow2_out_finish(struct vd_qcow2_out *w)
{
	uint64_t l1_off = 0, rt_off, pos, l1_bytes = w->l1_n * 8;
	uint32_t rt_clusters;
	uint8_t *h = NULL, *l1 = NULL;
	int ret;

	ret = qo_l2_out(w);
	if (!ret)
		ret = qo_align(w);
	if (ret)
		return ret;
	/* The L1 table, whole clusters. */
	if (w->l1_n) {
		uint64_t n = (l1_bytes + w->cs - 1) / w->cs;

		l1 = calloc(n, (size_t)w->cs);
		if (!l1)
			return -ENOMEM;
		for (uint64_t i = 0; i < w->l1_n; i++)
			put_be64(l1 + i * 8, w->l1[i]);
		l1_off = w->end;
		for (uint64_t i = 0; i < n && !ret; i++)
			ret = qo_ref(w, (l1_off >> w->cluster_bits) + i);
		if (!ret)
			ret = qo_append(w, l1, (size_t)(n * w->cs));
		free(l1);
		if (ret)
			return ret;
	}
	ret = qo_refcounts(w, &rt_off, &rt_clusters);
	if (!ret)
		ret = qo_flush(w);
	if (ret)
		return ret;

	/* The header (qcow2.txt "Header", version 3), its extensions and
	 * the backing file name, in cluster 0. */
	h = calloc(1, (size_t)w->cs);
	if (!h)
		return -ENOMEM;
	put_be32(h, QCOW2_MAGIC);
	put_be32(h + 4, 3);
	put_be32(h + 20, w->cluster_bits);
	put_be64(h + 24, w->size);
	put_be32(h + 36, (uint32_t)w->l1_n);
	put_be64(h + 40, l1_off);
	put_be64(h + 48, rt_off);
	put_be32(h + 56, rt_clusters);
	if (w->codec == VD_CODEC_ZSTD)
		put_be64(h + 72, QCOW2_INCOMPAT_COMPRESSION);
	put_be32(h + 96, 4);		  /* refcount_order: 16 bits */
	put_be32(h + 100, QO_HEADER_LEN); /* header_length */
	h[104] = w->codec == VD_CODEC_ZSTD ? 1 : 0; /* compression_type */
	pos = QO_HEADER_LEN;
	if (w->backing_fmt) {
		size_t n = strlen(w->backing_fmt);

		put_be32(h + pos, QO_EXT_BACKING_FORMAT);
		put_be32(h + pos + 4, (uint32_t)n);
		memcpy(h + pos + 8, w->backing_fmt, n);
		pos += 8 + ((n + 7) & ~(size_t)7);
	}
	pos += 8; /* the end of the extensions: type 0, length 0 */
	if (w->backing) {
		size_t n = strlen(w->backing);

		put_be64(h + 8, pos);
		put_be32(h + 16, (uint32_t)n);
		memcpy(h + pos, w->backing, n);
	}
	ret = vd_out_pwrite(w->fd, h, (size_t)w->cs, 0);
	free(h);
	/* Clusters given as holes at the end still belong to the file. */
	if (!ret && ftruncate(w->fd, (off_t)w->end))
		ret = -errno;
	if (!ret && fdatasync(w->fd))
		ret = -errno;
	return ret;
}

int vd_qcow2_out_open(int fd, const struct vd_qcow2_out_opts *o,
		      struct vd_qcow2_out **w_r, struct vd_err *e)
{
	struct vd_qcow2_out *w;
	uint64_t cover;
	int ret;

	if (o->cluster_bits < 9 || o->cluster_bits > 21)
		return vd_fail(e, -EINVAL, "cluster size %llu is not a power "
			       "of two from 512 to 2M",
			       1ULL << VD_MIN(o->cluster_bits, 63u));
	if (o->backing && strlen(o->backing) > 1023)
		return vd_fail(e, -ENAMETOOLONG, "backing file name of %zu "
			       "bytes (at most 1023)", strlen(o->backing));
	if (o->backing_fmt && strlen(o->backing_fmt) > 64)
		return vd_fail(e, -EINVAL, "backing format name too long");
	w = calloc(1, sizeof(*w));
	if (!w)
		return vd_fail(e, -ENOMEM, "out of memory");
	w->fd = fd;
	w->cluster_bits = o->cluster_bits;
	w->cs = 1ULL << o->cluster_bits;
	w->l2_bits = o->cluster_bits - 3;
	w->size = o->size;
	w->codec = o->codec;
	w->csize_shift = 62 - (o->cluster_bits - 8);
	cover = w->cs << w->l2_bits;
	w->l1_n = o->size / cover + (o->size % cover != 0);
	if (w->l1_n * 8 > QCOW2_MAX_L1_BYTES) {
		ret = vd_fail(e, -EFBIG, "a virtual size of %llu bytes needs "
			      "an L1 table larger than 32 MiB with clusters "
			      "of %llu bytes", (unsigned long long)o->size,
			      (unsigned long long)w->cs);
		goto fail;
	}
	w->l1 = calloc(VD_MAX(w->l1_n, 1), 8);
	w->l2 = calloc(1, (size_t)w->cs);
	w->stage = malloc(VD_QO_STAGE);
	w->backing = o->backing ? strdup(o->backing) : NULL;
	w->backing_fmt = o->backing_fmt ? strdup(o->backing_fmt) : NULL;
	if (!w->l1 || !w->l2 || !w->stage || (o->backing && !w->backing) ||
	    (o->backing_fmt && !w->backing_fmt)) {
		ret = vd_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	/* Cluster 0: the header, written at the end. */
	ret = qo_ref(w, 0);
	if (ret) {
		vd_fail(e, ret, "out of memory");
		goto fail;
	}
	w->end = w->cs;
	*w_r = w;
	return 0;
fail:
	vd_qcow2_out_free(w);
	return ret;
}

void vd_qcow2_out_free(struct vd_qcow2_out *w)
{
	if (!w)
		return;
	free(w->l1);
	free(w->l2);
	free(w->stage);
	free(w->refs);
	free(w->backing);
	free(w->backing_fmt);
	free(w);
}
