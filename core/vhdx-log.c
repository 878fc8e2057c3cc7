/* VHDX log replay, read-only ([MS-VHDX] 2.3).
 *
 * Metadata updates (BAT, metadata region, sector bitmaps) are written to
 * the log first; a host that stops before it has copied them to their
 * place leaves the header's log GUID set, and every reader must replay
 * the log before it trusts anything past the headers. We never write the
 * image: the log's active sequence is replayed into an overlay, a sorted
 * list of byte ranges that read as zeros or as 4 KiB sectors kept in a
 * memory file (memfd). Metadata reads go through vd_vhdx_pread, which
 * lays the overlay over the host file; the map hands out DATA runs of the
 * memory file where a payload block's bytes were replayed, so reads of
 * guest data still splice.
 *
 * The log is a circular buffer of 4 KiB sectors. An entry: a header
 * sector (64-byte header, then 32-byte descriptors), more descriptor
 * sectors, then one data sector per data descriptor; its CRC-32C covers
 * all its sectors. The active sequence is the run of valid entries with
 * consecutive sequence numbers, one after the other in the buffer, whose
 * last (head) entry names as its tail an entry of the run, with the
 * highest head sequence number of all such runs; it is replayed from the
 * tail to the head. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "core/vhdx.h"

#define X_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vhdx: " fmt, l->path, ##__VA_ARGS__)

/* The largest log replayed: it is read whole into memory. Hyper-V and
 * qemu-img make 1 MiB logs. */
#define VHDX_MAX_LOG (64ULL << 20)
/* No overlay write lies at or past 2^52 bytes (the largest VHDX file). */
#define VHDX_MAX_FILE (1ULL << 52)

/* Log entry header ([MS-VHDX] 2.3.1.1). */
#define LE_SIG 0	/* "loge" */
#define LE_CHECKSUM 4
#define LE_LENGTH 8
#define LE_TAIL 12
#define LE_SEQ 16
#define LE_NDESC 24
#define LE_GUID 32
#define LE_FLUSHED 48
#define LE_LAST 56
#define LE_HDR_SIZE 64
/* Descriptors ([MS-VHDX] 2.3.1.2, 2.3.1.3), 32 bytes each. */
#define LD_SIZE 32
#define LD_SIG 0	/* "zero" or "desc" */
#define LD_TRAILING 4	/* desc: last 4 bytes of the sector */
#define LD_LEADING 8	/* desc: first 8 bytes; zero: length */
#define LD_OFFSET 16
#define LD_SEQ 24
/* Data sector ([MS-VHDX] 2.3.1.4). */
#define LS_SIG 0	/* "data" */
#define LS_SEQ_HIGH 4
#define LS_DATA 8
#define LS_SEQ_LOW 4092

/* ------------------------------------------------------------ CRC-32C */

uint32_t vd_vhdx_sum(const uint8_t *p, size_t len, size_t skip)
{
	static const uint8_t zero[4];
	uint32_t c = ~0u;

	c = vd_crc32c(c, p, skip);
	c = vd_crc32c(c, zero, 4);
	c = vd_crc32c(c, p + skip + 4, len - skip - 4);
	return ~c;
}

/* ------------------------------------------------------------ overlay */

const struct vhdx_ext *vd_vhdx_ovl_find(const struct vhdx *v, uint64_t off)
{
	size_t lo = 0, hi = v->n_ovl;

	/* The first extent whose end lies past off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->ovl[mid].off + v->ovl[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n_ovl ? &v->ovl[lo] : NULL;
}

int vd_vhdx_pread(struct vd_layer *l, void *buf, size_t len, uint64_t off)
{
	struct vhdx *v = l->priv;
	uint8_t *p = buf;
	uint64_t end = off + len, have;
	const struct vhdx_ext *x;
	int ret;

	if (!vd_range_ok(off, len, v->file_size)) {
		vd_log(VD_LOG_ERR, "%s: vhdx: read of %zu bytes at 0x%llx lies "
		       "past the end of the file (%llu bytes)", l->path, len,
		       (unsigned long long)off,
		       (unsigned long long)v->file_size);
		return -EIO;
	}
	/* What the host file holds; past its end (a size the log grew)
	 * reads as zeros. */
	have = off < l->file->size ? VD_MIN(len, l->file->size - off) : 0;
	if (have) {
		ret = vd_file_pread(l->file, p, have, off);
		if (ret)
			return ret;
	}
	memset(p + have, 0, len - have);
	/* Ends: x moves forward through the sorted extents. */
	for (x = vd_vhdx_ovl_find(v, off);
	     x && x < v->ovl + v->n_ovl && x->off < end; x++) {
		uint64_t a = VD_MAX(x->off, off);
		uint64_t b = VD_MIN(x->off + x->len, end);

		if (x->mem < 0) {
			memset(p + (a - off), 0, b - a);
			continue;
		}
		ret = vd_file_pread(v->ovl_file, p + (a - off), b - a,
				    (uint64_t)x->mem + (a - x->off));
		if (ret)
			return ret;
	}
	return 0;
}

/* One write the log makes, in log order (ord). */
struct vhdx_w {
	uint64_t off, end;
	int64_t mem;
	size_t ord;
};

static int vhdx_w_cmp(const void *a, const void *b)
{
	const struct vhdx_w *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int vhdx_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Max-heap of write indexes by ord (the later write wins). */
static void vhdx_heap_push(size_t *h, size_t *n, const struct vhdx_w *w,
			   size_t i)
{
	size_t k = (*n)++;

	/* Ends: k halves. */
	while (k && w[h[(k - 1) / 2]].ord < w[i].ord) {
		h[k] = h[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	h[k] = i;
}

static void vhdx_heap_pop(size_t *h, size_t *n, const struct vhdx_w *w)
{
	size_t last = h[--*n], k = 0;

	/* Ends: k at least doubles. */
	for (;;) {
		size_t c = 2 * k + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && w[h[c + 1]].ord > w[h[c]].ord)
			c++;
		if (w[h[c]].ord <= w[last].ord)
			break;
		h[k] = h[c];
		k = c;
	}
	if (*n)
		h[k] = last;
}

/* Resolve the writes (in log order) into v->ovl: for each piece of the
 * file, the last write that covers it. A sweep over the sorted bounds
 * with a heap of the writes covering the current piece: O(n log n). */
static int vhdx_ovl_build(struct vhdx *v, struct vhdx_w *w, size_t n)
{
	uint64_t *bd = NULL;
	size_t *heap = NULL, nh = 0, nb = 0, wi = 0;
	int ret = -ENOMEM;

	if (!n)
		return 0;
	bd = malloc(2 * n * sizeof(*bd));
	heap = malloc(n * sizeof(*heap));
	v->ovl = malloc(2 * n * sizeof(*v->ovl));
	if (!bd || !heap || !v->ovl)
		goto out;
	qsort(w, n, sizeof(*w), vhdx_w_cmp);
	for (size_t i = 0; i < n; i++) {
		bd[nb++] = w[i].off;
		bd[nb++] = w[i].end;
	}
	qsort(bd, nb, sizeof(*bd), vhdx_u64_cmp);
	/* Ends: k walks the 2n bounds once; each write enters and leaves
	 * the heap once. */
	for (size_t k = 0; k + 1 < nb; k++) {
		uint64_t a = bd[k], b = bd[k + 1];
		const struct vhdx_w *t;
		struct vhdx_ext *last;
		int64_t mem;

		if (a == b)
			continue;
		while (wi < n && w[wi].off <= a)
			vhdx_heap_push(heap, &nh, w, wi++);
		while (nh && w[heap[0]].end <= a)
			vhdx_heap_pop(heap, &nh, w);
		if (!nh)
			continue;
		/* Writes that ended are popped lazily, when on top. */
		t = &w[heap[0]];
		mem = t->mem < 0 ? -1 : t->mem + (int64_t)(a - t->off);
		last = v->n_ovl ? &v->ovl[v->n_ovl - 1] : NULL;
		if (last && last->off + last->len == a &&
		    ((last->mem < 0 && mem < 0) ||
		     (last->mem >= 0 &&
		      last->mem + (int64_t)last->len == mem))) {
			last->len += b - a;
			continue;
		}
		v->ovl[v->n_ovl++] = (struct vhdx_ext){ a, b - a, mem };
	}
	ret = 0;
out:
	free(bd);
	free(heap);
	return ret;
}

/* ------------------------------------------------------------ log scan */

struct vhdx_log {
	const uint8_t *buf; /* the whole log */
	uint32_t nsec;	    /* its 4 KiB sectors */
	const uint8_t *guid;
};

static const uint8_t *vhdx_sec(const struct vhdx_log *g, uint64_t i)
{
	return g->buf + (i % g->nsec) * (uint64_t)VHDX_LOG_SECTOR;
}

/* Sectors the header and n descriptors take. */
static uint64_t vhdx_desc_sectors(uint64_t n)
{
	return (LE_HDR_SIZE + n * LD_SIZE + VHDX_LOG_SECTOR - 1) /
	       VHDX_LOG_SECTOR;
}

/* Whether the entry at sector s is valid: header fields, checksum over
 * all its sectors (wrapping), descriptors and data sectors. *nsec_r: its
 * length in sectors. */
static bool vhdx_entry_ok(const struct vhdx_log *g, uint32_t s,
			  uint32_t *nsec_r)
{
	const uint8_t *h = vhdx_sec(g, s);
	uint32_t len = get_le32(h + LE_LENGTH), n, ndesc, dsec, ndata = 0;
	uint64_t seq = get_le64(h + LE_SEQ);
	uint32_t c;

	if (memcmp(h + LE_SIG, "loge", 4) || !len ||
	    len % VHDX_LOG_SECTOR || len / VHDX_LOG_SECTOR > g->nsec ||
	    seq == 0 || memcmp(h + LE_GUID, g->guid, 16) ||
	    get_le32(h + LE_TAIL) % VHDX_LOG_SECTOR ||
	    get_le32(h + LE_TAIL) / VHDX_LOG_SECTOR >= g->nsec)
		return false;
	n = len / VHDX_LOG_SECTOR;
	ndesc = get_le32(h + LE_NDESC);
	dsec = (uint32_t)VD_MIN(vhdx_desc_sectors(ndesc), UINT32_MAX);
	if (dsec > n)
		return false;
	/* Checksum: the header sector with its checksum field read as
	 * zero, then every other sector. */
	c = vd_crc32c(~0u, h, LE_CHECKSUM);
	c = vd_crc32c(c, "\0\0\0\0", 4);
	c = vd_crc32c(c, h + 8, VHDX_LOG_SECTOR - 8);
	for (uint32_t i = 1; i < n; i++)
		c = vd_crc32c(c, vhdx_sec(g, (uint64_t)s + i),
				   VHDX_LOG_SECTOR);
	if (~c != get_le32(h + LE_CHECKSUM))
		return false;
	/* Ends: ndesc descriptors, all within the dsec sectors checked. */
	for (uint32_t i = 0; i < ndesc; i++) {
		uint64_t at = LE_HDR_SIZE + (uint64_t)i * LD_SIZE;
		const uint8_t *d = vhdx_sec(g, s + at / VHDX_LOG_SECTOR) +
				   at % VHDX_LOG_SECTOR;

		if (get_le64(d + LD_SEQ) != seq ||
		    get_le64(d + LD_OFFSET) % VHDX_LOG_SECTOR)
			return false;
		if (!memcmp(d + LD_SIG, "zero", 4)) {
			if (get_le64(d + LD_LEADING) % VHDX_LOG_SECTOR ||
			    !vd_range_ok(get_le64(d + LD_OFFSET),
					 get_le64(d + LD_LEADING),
					 VHDX_MAX_FILE))
				return false;
		} else if (!memcmp(d + LD_SIG, "desc", 4)) {
			const uint8_t *ds;

			if (dsec + ndata >= n ||
			    !vd_range_ok(get_le64(d + LD_OFFSET),
					 VHDX_LOG_SECTOR, VHDX_MAX_FILE))
				return false;
			ds = vhdx_sec(g, (uint64_t)s + dsec + ndata);
			if (memcmp(ds + LS_SIG, "data", 4) ||
			    ((uint64_t)get_le32(ds + LS_SEQ_HIGH) << 32 |
			     get_le32(ds + LS_SEQ_LOW)) != seq)
				return false;
			ndata++;
		} else {
			return false;
		}
	}
	*nsec_r = n;
	return true;
}

/* The active sequence: first (tail) sector, entries, head sequence
 * number. */
struct vhdx_seq {
	uint32_t tail;
	uint32_t count;
	uint64_t head_seq;
	bool valid;
};

/* Build the run of entries that starts at s; *span_r: sectors it
 * covers. */
static void vhdx_seq_at(const struct vhdx_log *g, uint32_t s,
			struct vhdx_seq *q, uint64_t *span_r)
{
	uint64_t at = s, span = 0, seq = 0, tail = 0;
	uint32_t count = 0, n;
	/* Where each entry starts, to check that the head's tail is one of
	 * them. Bounded by the log's sectors. */
	uint32_t *starts = malloc(g->nsec * sizeof(*starts));

	q->valid = false;
	if (!starts)
		return;
	/* Ends: every pass covers at least one more sector, and the run
	 * stops before it covers the whole buffer twice. */
	while (span < g->nsec && vhdx_entry_ok(g, (uint32_t)(at % g->nsec),
						&n)) {
		const uint8_t *h = vhdx_sec(g, at);

		if (count && get_le64(h + LE_SEQ) != seq + 1)
			break;
		if (span + n > g->nsec)
			break;
		seq = get_le64(h + LE_SEQ);
		tail = get_le32(h + LE_TAIL) / VHDX_LOG_SECTOR;
		starts[count++] = (uint32_t)(at % g->nsec);
		span += n;
		at += n;
	}
	*span_r = span;
	for (uint32_t i = 0; i < count; i++) {
		if (starts[i] == tail) {
			q->valid = true;
			q->tail = (uint32_t)tail;
			q->count = count - i;
			q->head_seq = seq;
			break;
		}
	}
	free(starts);
}

static int vhdx_find_active(const struct vhdx_log *g, struct vhdx_seq *best)
{
	uint64_t s = 0;

	best->valid = false;
	/* Ends: s grows by at least one sector per pass up to nsec. A
	 * run that starts inside a run already seen has the same head and
	 * at most the same tails, so the scan goes on after the run. */
	while (s < g->nsec) {
		struct vhdx_seq q = { 0 };
		uint64_t span = 0;

		vhdx_seq_at(g, (uint32_t)s, &q, &span);
		if (q.valid && (!best->valid || q.head_seq > best->head_seq))
			*best = q;
		s += span ? span : 1;
	}
	return 0;
}

/* ------------------------------------------------------------ replay */

void vd_vhdx_log_free(struct vhdx *v)
{
	free(v->ovl);
	v->ovl = NULL;
	v->n_ovl = 0;
	vd_file_close(v->ovl_file);
	v->ovl_file = NULL;
}

static int vhdx_mem_file(struct vd_layer *l, struct vhdx *v,
			 struct vd_err *e)
{
	struct vd_file *f;
	int fd = memfd_create("vdmount-vhdx-log", MFD_CLOEXEC);

	if (fd < 0)
		return X_FAIL(-errno, "cannot make a memory file for the log "
			      "replay: %s", strerror(errno));
	f = calloc(1, sizeof(*f));
	if (!f || asprintf(&f->path, "%s (log replay)", l->path) < 0) {
		free(f);
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	v->ovl_file = f;
	return 0;
}

int vd_vhdx_log_replay(struct vd_layer *l, struct vhdx *v, struct vd_err *e)
{
	struct vhdx_log g = { .guid = v->log_guid };
	struct vhdx_w *w = NULL;
	struct vhdx_seq q = { 0 };
	uint8_t *buf = NULL, page[VHDX_LOG_SECTOR];
	size_t nw = 0, capw = 0;
	uint64_t at, mem = 0, new_size = l->file->size;
	int ret;

	if (!v->log_len)
		return X_FAIL(-EUCLEAN, "the header names a log (GUID set) of "
			      "length 0");
	if (v->log_len > VHDX_MAX_LOG)
		return X_FAIL(-ENOTSUP, "log of %llu bytes to replay is larger "
			      "than vdmount replays (%llu bytes)",
			      (unsigned long long)v->log_len,
			      (unsigned long long)VHDX_MAX_LOG);
	buf = malloc(v->log_len);
	if (!buf)
		return -ENOMEM;
	ret = vd_file_pread(l->file, buf, v->log_len, v->log_off);
	if (ret) {
		ret = X_FAIL(ret, "cannot read the log at 0x%llx",
			     (unsigned long long)v->log_off);
		goto out;
	}
	g.buf = buf;
	g.nsec = (uint32_t)(v->log_len / VHDX_LOG_SECTOR);
	vhdx_find_active(&g, &q);
	if (!q.valid) {
		ret = X_FAIL(-EUCLEAN, "the header says the log (%llu bytes at "
			     "0x%llx) must be replayed, but it holds no valid "
			     "sequence of entries",
			     (unsigned long long)v->log_len,
			     (unsigned long long)v->log_off);
		goto out;
	}
	ret = vhdx_mem_file(l, v, e);
	if (ret)
		goto out;
	at = q.tail;
	/* Ends: the q.count entries of the active sequence, validated. */
	for (uint32_t k = 0; k < q.count; k++) {
		const uint8_t *h = vhdx_sec(&g, at);
		uint32_t n = get_le32(h + LE_LENGTH) / VHDX_LOG_SECTOR;
		uint32_t ndesc = get_le32(h + LE_NDESC), ndata = 0;
		uint64_t dsec = vhdx_desc_sectors(ndesc);
		uint64_t flushed = get_le64(h + LE_FLUSHED);

		if (flushed > l->file->size) {
			ret = X_FAIL(-EUCLEAN, "log entry %llu says the file "
				     "held %llu bytes, but it holds %llu "
				     "(truncated?)",
				     (unsigned long long)get_le64(h + LE_SEQ),
				     (unsigned long long)flushed,
				     (unsigned long long)l->file->size);
			goto out;
		}
		new_size = VD_MAX(new_size, VD_MIN(get_le64(h + LE_LAST),
						   VHDX_MAX_FILE));
		if (nw + ndesc > capw) {
			size_t nc = VD_MAX(2 * capw, nw + ndesc);
			struct vhdx_w *nw_ = realloc(w, nc * sizeof(*w));

			if (!nw_) {
				ret = -ENOMEM;
				goto out;
			}
			w = nw_;
			capw = nc;
		}
		for (uint32_t i = 0; i < ndesc; i++) {
			uint64_t dat = LE_HDR_SIZE + (uint64_t)i * LD_SIZE;
			const uint8_t *d = vhdx_sec(&g, at + dat /
							   VHDX_LOG_SECTOR) +
					   dat % VHDX_LOG_SECTOR;
			uint64_t off = get_le64(d + LD_OFFSET);

			if (!memcmp(d + LD_SIG, "zero", 4)) {
				uint64_t zl = get_le64(d + LD_LEADING);

				if (zl) {
					w[nw] = (struct vhdx_w){ off, off + zl,
								 -1, nw };
					nw++;
				}
				continue;
			}
			/* A data sector: 8 leading bytes from the
			 * descriptor, 4084 from the sector, 4 trailing. */
			memcpy(page, d + LD_LEADING, 8);
			memcpy(page + 8, vhdx_sec(&g, at + dsec + ndata) +
					 LS_DATA, 4084);
			memcpy(page + 4092, d + LD_TRAILING, 4);
			ndata++;
			if (pwrite(v->ovl_file->fd, page, sizeof(page),
				   (off_t)mem) != (ssize_t)sizeof(page)) {
				ret = X_FAIL(-EIO, "cannot keep the replayed "
					     "log in memory: %s",
					     strerror(errno));
				goto out;
			}
			w[nw] = (struct vhdx_w){ off, off + VHDX_LOG_SECTOR,
						 (int64_t)mem, nw };
			nw++;
			mem += VHDX_LOG_SECTOR;
		}
		at += n;
	}
	v->ovl_file->size = mem;
	v->replayed = q.count;
	ret = vhdx_ovl_build(v, w, nw);
	if (ret)
		goto out;
	/* Replayed writes past the end grow the file too. */
	if (v->n_ovl)
		new_size = VD_MAX(new_size, v->ovl[v->n_ovl - 1].off +
						    v->ovl[v->n_ovl - 1].len);
	v->file_size = new_size;
	vd_log(VD_LOG_INFO, "%s: vhdx: replayed %u log entries (sequence "
	       "%llu) in memory; the file is unchanged", l->path, q.count,
	       (unsigned long long)q.head_seq);
out:
	free(w);
	free(buf);
	return ret;
}
