/* The one read loop: turns the drivers' maps into bytes.
 *
 * For each run a layer's map reports, DATA becomes a pread (adjacent DATA
 * runs that continue in the same host file are coalesced into one pread),
 * ZERO a memset, UNALLOC a read of the backing layer (or zeros at the
 * bottom of the chain), and COMPRESSED a decode of the unit: all the
 * units of one read are decoded together, spread over the cores
 * (common/pool.h); a whole unit is decoded straight into the caller's
 * buffer, part of one through the disk's cache of decoded units.
 *
 * The same loop can describe a read instead (vd_disk_read_vec): DATA
 * becomes a (host fd, offset) piece and ZERO a zero piece, which a front
 * end moves without copying; only decoded data is copied into the
 * caller's buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/pool.h"
#include "common/tls.h"
#include "common/util.h"
#include "core/layer.h"

/* Per-thread: compressed input. */
struct vd_read_state {
	uint8_t *in;
	size_t in_cap;
};

static void read_state_free(void *p)
{
	struct vd_read_state *s = p;

	free(s->in);
	free(s);
}

static struct vd_tls read_tls = VD_TLS_INIT(struct vd_read_state,
					    read_state_free);

void vd_thread_cleanup(void)
{
	vd_tls_clear(&read_tls);
	vd_codec_thread_cleanup();
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (*cap >= need)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

/* A driver's map, with its promise (0 < len <= asked) checked. */
static int layer_map(struct vd_layer *l, uint64_t off, uint64_t len,
		     struct vd_run *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = l->fmt->map(l, off, len, r);
	if (ret)
		return ret;
	if (r->len == 0 || r->len > len) {
		vd_log(VD_LOG_ERR, "%s: %s: bad map at 0x%llx", l->path,
		       l->fmt->name, (unsigned long long)off);
		return -EIO;
	}
	return 0;
}

/* Whether run b, which starts where a ends, continues a (so both can be
 * served by one operation). */
static bool runs_join(const struct vd_run *a, const struct vd_run *b)
{
	if (a->type != b->type)
		return false;
	if (a->type == VD_RUN_DATA)
		return a->file == b->file && a->host_off + a->len == b->host_off;
	return a->type == VD_RUN_UNALLOC || a->type == VD_RUN_ZERO;
}

/* Where a read's bytes go. buf holds the whole request (its byte 0 is at
 * guest offset base). Without segs every run is copied into buf; with
 * segs, stored runs and zero runs are described as pieces instead, and
 * only decoded data is written to buf. */
/* Compressed runs a read decodes together, in parallel (common/pool.h),
 * once it has mapped them all (or this many). */
#define READ_JOBS 32

struct read_job {
	struct vd_layer *l;
	struct vd_run r;
	uint8_t *dest; /* the run's place in the caller's buffer */
};

struct read_out {
	uint8_t *buf;
	uint64_t base;
	struct vd_seg *segs; /* NULL: a plain read */
	bool prefetch;	     /* only ask for the stored bytes (buf NULL) */
	unsigned max, n;
	struct vd_file *last_file; /* the file of segs[n - 1] when VD_SEG_FD */
	/* The host file last looked at with fstat, and the bytes it held
	 * then (see out_fd_ok). */
	struct vd_file *stat_file;
	uint64_t stat_size;
	struct read_job jobs[READ_JOBS];
	unsigned njobs;
};

/* Make the bytes of piece s, which ends where p starts, real in buf. */
static int out_fill(struct read_out *o, struct vd_seg *s, uint8_t *p)
{
	uint8_t *at = p - s->len;
	int ret = 0;

	if (s->type == VD_SEG_FD)
		ret = vd_file_pread(o->last_file, at, s->len,
				    s->fd_off - o->last_file->base);
	else if (s->type == VD_SEG_ZERO)
		memset(at, 0, s->len);
	s->type = VD_SEG_MEM;
	s->mem = at;
	return ret;
}

/* Whether len bytes at host offset host of f may become an FD piece: the
 * check vd_file_pread makes, since the caller reads the piece. Against
 * the size fixed at open, and against what the host file holds now
 * (one fstat per file of the read, block devices excepted): another
 * process may have cut the file short under the mount, and a piece past
 * its new end would reach the reader as a short read, not as an error.
 * A cut between this and the caller's read can still slip through. */
static int out_fd_ok(struct read_out *o, struct vd_file *f, uint64_t host,
		     uint64_t len)
{
	struct stat st;

	if (!vd_range_ok(host, len, f->size)) {
		vd_log(VD_LOG_ERR, "%s: read of %llu bytes at 0x%llx lies "
		       "past the end of the file (%llu bytes)", f->path,
		       (unsigned long long)len, (unsigned long long)host,
		       (unsigned long long)f->size);
		return -EIO;
	}
	if (f != o->stat_file) {
		if (fstat(f->fd, &st) < 0) {
			vd_log(VD_LOG_ERR, "%s: fstat: %s", f->path,
			       strerror(errno));
			return -EIO;
		}
		o->stat_file = f;
		o->stat_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size :
						     UINT64_MAX;
	}
	/* base + host + len fit: the range lay inside the file at open. */
	if (!vd_range_ok(f->base + host, len, o->stat_size)) {
		vd_log(VD_LOG_ERR, "%s: read of %llu bytes at 0x%llx lies "
		       "past the end of the file (now %llu bytes: "
		       "truncated?)", f->path, (unsigned long long)len,
		       (unsigned long long)host,
		       (unsigned long long)o->stat_size);
		return -EIO;
	}
	return 0;
}

/* Ask the kernel to start reading len bytes at host offset host of f
 * (what of them lies inside the file) into its cache, without waiting
 * for them; nothing unless want. One WILLNEED reads at most the host
 * device's readahead or largest request (8 MiB here, 128 KiB to a few
 * MiB elsewhere) and drops the rest, so it is asked for in pieces. */
#define OUT_PREFETCH_PIECE (1u << 20)
static void out_prefetch(struct vd_file *f, uint64_t host, uint64_t len,
			 bool want)
{
	if (!want || host >= f->size)
		return;
	len = VD_MIN(len, f->size - host);
	while (len) {
		uint64_t n = VD_MIN(len, (uint64_t)OUT_PREFETCH_PIECE);

		(void)posix_fadvise(f->fd, (off_t)(f->base + host), (off_t)n,
				    POSIX_FADV_WILLNEED);
		host += n;
		len -= n;
	}
}

/* The next len bytes of the read, at guest offset off: stored in f at
 * host (VD_SEG_FD), zeros (VD_SEG_ZERO), or already in buf (VD_SEG_MEM). */
static int out_put(struct read_out *o, enum vd_seg_type type,
		   struct vd_file *f, uint64_t host, uint64_t len, uint64_t off)
{
	uint8_t *p;
	struct vd_seg *last = o->n ? &o->segs[o->n - 1] : NULL;
	struct vd_seg cur = { .type = type, .len = len };
	int ret;

	if (o->prefetch) {
		out_prefetch(f, host, len, type == VD_SEG_FD);
		return 0;
	}
	p = o->buf + (off - o->base);
	if (!o->segs) {
		if (type == VD_SEG_FD)
			return vd_file_pread(f, p, len, host);
		if (type == VD_SEG_ZERO)
			memset(p, 0, len);
		return 0;
	}
	if (type == VD_SEG_FD) {
		ret = out_fd_ok(o, f, host, len);
		if (ret)
			return ret;
		cur.fd = f->fd;
		cur.fd_off = f->base + host;
	} else if (type == VD_SEG_MEM) {
		cur.mem = p;
	}
again:
	/* Pieces are contiguous in the read, so a MEM piece always ends
	 * where the next begins in buf. */
	if (last && last->type == type &&
	    (type != VD_SEG_FD || (last->fd == cur.fd &&
				   last->fd_off + last->len == cur.fd_off))) {
		last->len += len;
		return 0;
	}
	if (o->n == o->max) {
		/* No piece left: the last one becomes bytes in buf. If
		 * the one before it is in buf too, they join and free a
		 * piece (this happens once: the new last is then MEM);
		 * else this and everything after it join the last. */
		ret = out_fill(o, last, p);
		if (ret)
			return ret;
		if (o->n >= 2 && o->segs[o->n - 2].type == VD_SEG_MEM) {
			o->segs[o->n - 2].len += last->len;
			o->n--;
			last = &o->segs[o->n - 1];
			goto again;
		}
		o->last_file = f;
		ret = out_fill(o, &cur, p + len);
		if (!ret)
			last->len += len;
		return ret;
	}
	o->segs[o->n++] = cur;
	if (type == VD_SEG_FD)
		o->last_file = f;
	return 0;
}

/* Read compressed unit r->host_off of layer l and decode it into out
 * (r->unit_size bytes). */
static int unit_decode(struct vd_layer *l, const struct vd_run *r,
		       uint8_t *out)
{
	struct vd_read_state *s = vd_tls_get(&read_tls);
	struct vd_file *f = r->file;
	uint64_t have;
	int ret;

	if (!s)
		return -ENOMEM;
	if (r->host_off >= f->size) {
		vd_log(VD_LOG_ERR, "%s: compressed data at 0x%llx lies past "
		       "the end of the file (%llu bytes)", l->path,
		       (unsigned long long)r->host_off,
		       (unsigned long long)f->size);
		return -EIO;
	}
	if (grow(&s->in, &s->in_cap, r->comp_len))
		return -ENOMEM;
	/* The last unit's sector count may run past EOF: zeros there. */
	have = VD_MIN(r->comp_len, f->size - r->host_off);
	ret = vd_file_pread(f, s->in, have, r->host_off);
	if (ret)
		return ret;
	memset(s->in + have, 0, r->comp_len - have);
	ret = l->fmt->decode ? l->fmt->decode(l, r, s->in, out) :
			       l->fmt->decompress(l, s->in, r->comp_len, out,
						  r->unit_size);
	if (ret) {
		vd_log(VD_LOG_ERR, "%s: compressed data at 0x%llx (%llu bytes) "
		       "does not decode to %u bytes", l->path,
		       (unsigned long long)r->host_off,
		       (unsigned long long)r->comp_len, r->unit_size);
		return -EIO;
	}
	return 0;
}

struct unit_load {
	struct vd_layer *l;
	const struct vd_run *r;
};

/* Cache loader for a decoded unit (key: its input offset). */
static int unit_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct unit_load *u = arg;

	(void)key;
	(void)size;
	return unit_decode(u->l, u->r, buf);
}

/* The bytes of compressed run r, into buf. A whole unit is decoded in
 * place; part of one comes through the disk's cache of decoded units, so
 * that the reads of its other parts find it decoded. */
static int read_compressed(struct vd_layer *l, const struct vd_run *r,
			   uint8_t *buf)
{
	struct vd_cache *c = vd_layer_unit_cache(l);
	struct unit_load u = { l, r };
	struct vd_cache_ref ref;
	int ret;

	if (r->unit_off >= r->unit_size || r->len > r->unit_size - r->unit_off)
		return -EIO;
	if (r->unit_off == 0 && r->len == r->unit_size)
		return unit_decode(l, r, buf);
	ret = vd_cache_get(c, l, r->host_off, r->unit_size, unit_load, &u,
			   &ref);
	if (ret)
		return ret;
	memcpy(buf, (const uint8_t *)ref.data + r->unit_off, r->len);
	vd_cache_put(c, &ref);
	return 0;
}

static int job_run(void *arg, unsigned i)
{
	struct read_job *j = &((struct read_out *)arg)->jobs[i];

	return read_compressed(j->l, &j->r, j->dest);
}

/* Decode the compressed runs gathered so far, in parallel. */
static int out_flush(struct read_out *o)
{
	unsigned n = o->njobs;

	o->njobs = 0;
	return vd_pool_run(n, job_run, o);
}

static int read_layer(struct vd_layer *l, struct read_out *o, uint64_t len,
		      uint64_t off)
{
	struct vd_run r, next;
	bool have_next = false;
	int ret;

	while (len > 0) {
		uint64_t avail;

		/* A backing layer smaller than its child reads as zeros
		 * past its end. */
		if (off >= l->size)
			return out_put(o, VD_SEG_ZERO, NULL, 0, len, off);
		avail = VD_MIN(len, l->size - off);
		if (have_next) {
			r = next;
			have_next = false;
		} else if ((ret = layer_map(l, off, avail, &r))) {
			return ret;
		}
		if (r.type != VD_RUN_COMPRESSED) {
			while (r.len < avail) {
				ret = layer_map(l, off + r.len, avail - r.len,
						&next);
				if (ret)
					return ret;
				if (!runs_join(&r, &next)) {
					have_next = true;
					break;
				}
				r.len += next.len;
			}
		}
		switch (r.type) {
		case VD_RUN_DATA:
			ret = out_put(o, VD_SEG_FD, r.file, r.host_off, r.len,
				      off);
			break;
		case VD_RUN_UNALLOC:
			if (l->backing) {
				ret = read_layer(l->backing, o, r.len, off);
				break;
			}
			/* the bottom of the chain reads zeros */
			__attribute__((fallthrough));
		case VD_RUN_ZERO:
			ret = out_put(o, VD_SEG_ZERO, NULL, 0, r.len, off);
			break;
		case VD_RUN_COMPRESSED:
			if (o->prefetch) {
				/* Its stored bytes only: not decoded. */
				out_prefetch(r.file, r.host_off, r.comp_len,
					     r.unit_off == 0);
				ret = 0;
				break;
			}
			/* Decoded later, with the read's other units. */
			ret = o->njobs == READ_JOBS ? out_flush(o) : 0;
			if (ret)
				break;
			o->jobs[o->njobs++] = (struct read_job){
				l, r, o->buf + (off - o->base)
			};
			ret = out_put(o, VD_SEG_MEM, NULL, 0, r.len, off);
			break;
		default:
			ret = -EIO;
		}
		if (ret)
			return ret;
		off += r.len;
		len -= r.len;
	}
	return 0;
}

int vd_disk_read(struct vd_disk *d, void *buf, size_t len, uint64_t off)
{
	struct read_out o = { .buf = buf, .base = off };
	int ret;

	if (!vd_range_ok(off, len, vd_disk_size(d)))
		return -EINVAL;
	ret = read_layer((struct vd_layer *)vd_disk_top(d), &o, len, off);
	return ret ? ret : out_flush(&o);
}

int vd_disk_read_vec(struct vd_disk *d, void *buf, size_t len, uint64_t off,
		     struct vd_seg *segs, unsigned max_segs, unsigned *n_r)
{
	struct read_out o = { .buf = buf, .base = off, .segs = segs,
			      .max = max_segs };
	int ret;

	*n_r = 0;
	if (!vd_range_ok(off, len, vd_disk_size(d)) || !max_segs)
		return -EINVAL;
	ret = read_layer((struct vd_layer *)vd_disk_top(d), &o, len, off);
	if (!ret)
		ret = out_flush(&o);
	if (!ret)
		*n_r = o.n;
	return ret;
}

void vd_disk_prefetch(struct vd_disk *d, uint64_t off, uint64_t len)
{
	struct read_out o = { .base = off, .prefetch = true };

	if (vd_range_ok(off, len, vd_disk_size(d)))
		(void)read_layer((struct vd_layer *)vd_disk_top(d), &o, len,
				 off);
}

static int status_layer(struct vd_layer *l, uint64_t off, uint64_t len,
			bool *data_r, uint64_t *len_r)
{
	struct vd_run r;
	int ret;

	if (off >= l->size) {
		*data_r = false;
		*len_r = len;
		return 0;
	}
	ret = layer_map(l, off, VD_MIN(len, l->size - off), &r);
	if (ret)
		return ret;
	switch (r.type) {
	case VD_RUN_DATA:
	case VD_RUN_COMPRESSED:
		*data_r = true;
		*len_r = r.len;
		return 0;
	case VD_RUN_UNALLOC:
		if (l->backing)
			return status_layer(l->backing, off, r.len, data_r,
					    len_r);
		__attribute__((fallthrough));
	default:
		*data_r = false;
		*len_r = r.len;
		return 0;
	}
}

int vd_disk_status(struct vd_disk *d, uint64_t off, uint64_t len,
		   bool *data_r, uint64_t *len_r)
{
	uint64_t size = vd_disk_size(d);

	if (off >= size || len == 0)
		return -EINVAL;
	return status_layer((struct vd_layer *)vd_disk_top(d), off,
			    VD_MIN(len, size - off), data_r, len_r);
}

/* Status runs one lseek may walk. A hostile image (tiny clusters that
 * alternate data and zeros) could otherwise keep one request busy for
 * minutes; past the bound the answer errs towards "data", which is always
 * safe: a copy reads zeros it could have skipped, never skips data. */
#define VD_SEEK_MAX_STEPS (1u << 20)

int vd_disk_seek(struct vd_disk *d, uint64_t off, bool want_data,
		 uint64_t *off_r)
{
	uint64_t size = vd_disk_size(d);
	unsigned steps = 0;

	if (off >= size)
		return -ENXIO;
	/* Ends: every step moves off forward by at least one byte, and
	 * there are at most VD_SEEK_MAX_STEPS of them. */
	while (off < size) {
		if (++steps > VD_SEEK_MAX_STEPS) {
			*off_r = want_data ? off : size;
			return 0;
		}
		bool data;
		uint64_t n;
		int ret = vd_disk_status(d, off, size - off, &data, &n);

		if (ret)
			return ret;
		if (data == want_data) {
			*off_r = off;
			return 0;
		}
		off += n;
	}
	if (want_data)
		return -ENXIO;
	*off_r = size; /* the end of the disk is a hole */
	return 0;
}
