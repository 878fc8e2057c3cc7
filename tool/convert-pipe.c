/* vdtool convert: the disk read, classified and compressed on every core,
 * handed to a format writer in guest order.
 *
 * The disk is cut into units of CP_UNIT bytes (whole blocks). Worker
 * threads claim units in order and fill the slot the unit maps to (unit
 * mod the number of slots, once the writer has emptied it): they read
 * only the runs the chain holds as data (vd_disk_status), find the blocks
 * that are all zero (or, over a base, equal to the base), and compress
 * the rest when the sink asks for it. The calling thread takes the units
 * back in order and gives their blocks to the sink. So reading and
 * compressing run in parallel while the output is written front to back
 * by one thread. Nothing is copied on the way: a block's data is its
 * place in the unit's buffer (a block that is all hole points at one
 * shared zero block), compressed blocks are packed back to back in the
 * slot's second buffer, and a sink may write straight from them until
 * its flush (after each unit). A worker whose last reads came slowly
 * (from the disk, not the page cache) asks the kernel, when it claims a
 * unit, to start reading the stored bytes of the unit a round of
 * workers later, so a cold input is read ahead of the workers; a warm
 * one is not asked for (asking costs as much as a read then). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"
#include "tool/convert.h"

#define CP_UNIT (4u << 20)
#define CP_MAX_THREADS 4
#define CP_MAX_SLOTS (2 * CP_MAX_THREADS + 2)
/* Reads slower than this (bytes per second) came from the disk. */
#define CP_COLD_RATE (1000ull << 20)

enum { CP_FREE, CP_FILLING, CP_READY };

struct cp_slot {
	uint64_t u;
	int state;
	uint8_t *buf;	/* the unit's bytes */
	uint8_t *bbuf;	/* the base's (with a base) */
	uint8_t *cbuf;	/* compressed blocks, comp_cap bytes each */
	bool *has;	/* per block: a data run touches it */
	size_t cused;	/* bytes of cbuf used */
	struct conv_block *b;
};

struct cp {
	const struct conv_src *in;
	struct vd_disk *base;
	const struct conv_sink *s;
	uint64_t size, base_size, unit, n_units, per_unit;
	unsigned nslot, nthreads;
	struct cp_slot slot[CP_MAX_SLOTS];
	uint8_t *zero;	/* one block of zeros */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next; /* the next unit to claim; guarded by lock */
	int err;       /* the first failure; guarded by lock */
	uint64_t err_off;
	bool err_write;
};

static void cp_fail(struct cp *p, int err, uint64_t off, bool wr)
{
	pthread_mutex_lock(&p->lock);
	if (!p->err) {
		p->err = err;
		p->err_off = off;
		p->err_write = wr;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static bool cp_zero(const uint8_t *d, size_t n)
{
	return !d[0] && !memcmp(d, d + 1, n - 1);
}

/* Zeros in [from, to) of a unit's buffer, but only in the blocks that
 * data also touches: a block the range covers whole is never read (it
 * points at the zero block). */
static void cp_clear(uint8_t *buf, uint64_t from, uint64_t to, uint64_t bs)
{
	uint64_t head = VD_MIN(to, (from + bs - 1) & ~(bs - 1));
	uint64_t tail = VD_MAX(head, to & ~(bs - 1));

	memset(buf + from, 0, (size_t)(head - from));
	memset(buf + tail, 0, (size_t)(to - tail));
}

/* Fill slot s with its unit; *cold_r: its reads were slow. */
static int cp_fill(struct cp *p, struct cp_slot *s, struct vd_encoder *enc,
		   uint64_t *err_off, bool *cold_r)
{
	const uint64_t bs = p->s->block;
	uint64_t off = s->u * p->unit, len = VD_MIN(p->unit, p->size - off);
	uint64_t nb = (len + bs - 1) / bs, pos;
	int ret;

	memset(s->has, 0, (size_t)p->per_unit * sizeof(*s->has));
	s->cused = 0;
	/* Ends: each pass moves pos forward (a run of 0 is an error). */
	for (pos = 0; pos < len;) {
		uint64_t run;
		bool data;

		*err_off = off + pos;
		ret = conv_src_status(p->in, off + pos, len - pos, &data, &run);
		if (!ret && (!run || run > len - pos))
			ret = -EIO;
		if (ret)
			return ret;
		/* A unit that is one hole (most of a sparse disk): no bytes
		 * to clear, every block a hole. */
		if (!data && !pos && run == len && !p->base) {
			for (uint64_t i = 0; i < nb; i++) {
				s->b[i].kind = CONV_HOLE;
				s->b[i].len = (uint32_t)bs;
				s->b[i].data = p->zero;
			}
			return 0;
		}
		if (!data)
			cp_clear(s->buf, pos, pos + run, bs);
		else {
			uint64_t t0 = vd_now_ns(), ns;

			ret = conv_src_read(p->in, s->buf + pos, (size_t)run,
					    off + pos);
			if (ret)
				return ret;
			ns = vd_now_ns() - t0;
			*cold_r = ns > run * 1000000000u / CP_COLD_RATE;
			for (uint64_t i = pos / bs; i <= (pos + run - 1) / bs;
			     i++)
				s->has[i] = true;
		}
		pos += run;
	}
	/* The last block of the disk, zero-padded. */
	cp_clear(s->buf, len, nb * bs, bs);
	if (p->base) {
		uint64_t blen = off < p->base_size ?
					VD_MIN(len, p->base_size - off) : 0;

		memset(s->bbuf, 0, (size_t)p->unit);
		*err_off = off;
		if (blen && (ret = vd_disk_read(p->base, s->bbuf, (size_t)blen,
						off)))
			return ret;
	}
	for (uint64_t i = 0; i < nb; i++) {
		const uint8_t *d = s->has[i] ? s->buf + i * bs : p->zero;
		bool zero = !s->has[i] || cp_zero(d, (size_t)bs);
		struct conv_block *b = &s->b[i];

		b->data = d;
		b->len = (uint32_t)bs;
		if (p->base && !memcmp(d, s->bbuf + i * bs, (size_t)bs))
			b->kind = CONV_HOLE;
		else if (zero)
			b->kind = p->base ? CONV_ZERO : CONV_HOLE;
		else
			b->kind = CONV_DATA;
		if (b->kind == CONV_DATA && p->s->codec != VD_CODEC_NONE) {
			/* Packed: the sink writes a run of them as one
			 * piece. Room: at most comp_cap per block. */
			uint8_t *c = s->cbuf + s->cused;
			long n = vd_encode(enc, p->s->codec, d, (size_t)bs, c,
					   (size_t)p->s->comp_cap);

			if (n < 0)
				return (int)n;
			if (n > 0) {
				b->kind = CONV_COMP;
				b->len = (uint32_t)n;
				b->data = c;
				s->cused += (size_t)n;
			}
		}
	}
	return 0;
}

/* The kernel starts reading what the unit one round of workers after u
 * stores (each worker asks for one unit: together they keep a round
 * ahead). Only a disk is asked: a file of the tree reads through its
 * filesystem. */
static void cp_ahead(struct cp *p, uint64_t u)
{
	uint64_t a = u + p->nthreads;

	if (p->in->disk && a < p->n_units)
		vd_disk_prefetch(p->in->disk, a * p->unit,
				 VD_MIN(p->unit, p->size - a * p->unit));
}

static void *cp_worker(void *arg)
{
	struct cp *p = arg;
	struct vd_encoder *enc = vd_encoder_new();
	bool cold = true; /* until a read says otherwise */

	if (!enc) {
		cp_fail(p, -ENOMEM, 0, false);
		return NULL;
	}
	for (;;) {
		struct cp_slot *s;
		uint64_t u, err_off = 0;
		int ret;

		pthread_mutex_lock(&p->lock);
		/* Ends: next only grows, up to n_units; a failure stops
		 * everyone. */
		while (!p->err && p->next < p->n_units &&
		       p->slot[p->next % p->nslot].state != CP_FREE)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->err || p->next >= p->n_units) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		u = p->next++;
		s = &p->slot[u % p->nslot];
		s->u = u;
		s->state = CP_FILLING;
		pthread_mutex_unlock(&p->lock);
		if (cold)
			cp_ahead(p, u);

		ret = cp_fill(p, s, enc, &err_off, &cold);
		if (ret) {
			cp_fail(p, ret, err_off, false);
			break;
		}
		pthread_mutex_lock(&p->lock);
		s->state = CP_READY;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	vd_encoder_free(enc);
	vd_codec_thread_cleanup();
	return NULL;
}

int conv_src_status(const struct conv_src *s, uint64_t off, uint64_t len,
		    bool *data_r, uint64_t *run_r)
{
	uint64_t next;
	int ret;

	if (s->disk)
		return vd_disk_status(s->disk, off, len, data_r, run_r);
	/* A file: the next data from off (a hole up to it), else the next
	 * hole (data up to it); past the end, or unknown, data. */
	ret = vd_ns_seek(s->file, off, true, &next);
	if (ret == -ENXIO) {
		*data_r = false;
		*run_r = len;
		return 0;
	}
	if (!ret && next > off) {
		*data_r = false;
		*run_r = VD_MIN(next - off, len);
		return 0;
	}
	ret = vd_ns_seek(s->file, off, false, &next);
	*data_r = true;
	*run_r = !ret && next > off ? VD_MIN(next - off, len) : len;
	return 0;
}

int conv_src_read(const struct conv_src *s, void *buf, size_t len,
		  uint64_t off)
{
	size_t got, done = 0;
	int ret;

	if (s->disk)
		return vd_disk_read(s->disk, buf, len, off);
	/* Ends: each pass reads more, or stops at the end of the file. */
	while (done < len) {
		ret = vd_ns_read(s->file, (uint8_t *)buf + done, len - done,
				 off + done, &got);
		if (ret)
			return ret;
		if (!got) {
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += got;
	}
	return 0;
}

int conv_pipe_run(const struct conv_src *in, struct vd_disk *base,
		  const struct conv_sink *sink, struct vdt_progress *prog,
		  uint64_t *err_off_r, bool *err_write_r)
{
	struct cp p = { .in = in, .base = base, .s = sink };
	pthread_t th[CP_MAX_THREADS];
	/* Two workers per core: while one waits for the input's reads
	 * the other compresses. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN) * 2;
	unsigned n = ncpu < 1 ? 1 : ncpu > CP_MAX_THREADS ? CP_MAX_THREADS :
							     (unsigned)ncpu;
	unsigned started = 0;
	int ret = 0;

	p.size = in->size;
	p.base_size = base ? vd_disk_size(base) : 0;
	p.unit = VD_MAX((uint64_t)CP_UNIT, sink->block);
	p.per_unit = p.unit / sink->block;
	p.n_units = (p.size + p.unit - 1) / p.unit;
	p.nslot = 2 * n + 2;
	p.nthreads = n;
	p.zero = calloc(1, (size_t)sink->block);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	for (unsigned i = 0; i < p.nslot; i++) {
		struct cp_slot *s = &p.slot[i];

		s->buf = malloc((size_t)p.unit);
		s->bbuf = base ? malloc((size_t)p.unit) : NULL;
		s->cbuf = sink->codec != VD_CODEC_NONE ?
				  malloc((size_t)(p.per_unit * sink->comp_cap)) :
				  NULL;
		s->has = calloc((size_t)p.per_unit, sizeof(*s->has));
		s->b = calloc((size_t)p.per_unit, sizeof(*s->b));
		if (!s->buf || (base && !s->bbuf) || !s->has || !s->b ||
		    (sink->codec != VD_CODEC_NONE && !s->cbuf))
			ret = -ENOMEM;
	}
	if (!p.zero)
		ret = -ENOMEM;
	if (ret) {
		p.err = ret;
		goto out;
	}
	for (; started < n; started++)
		if (pthread_create(&th[started], NULL, cp_worker, &p))
			break;
	if (!started) {
		p.err = -EAGAIN;
		goto out;
	}
	for (uint64_t u = 0; u < p.n_units; u++) {
		struct cp_slot *s = &p.slot[u % p.nslot];
		uint64_t off = u * p.unit, len = VD_MIN(p.unit, p.size - off);
		uint64_t nb = (len + sink->block - 1) / sink->block;

		pthread_mutex_lock(&p.lock);
		while (!p.err && !(s->state == CP_READY && s->u == u))
			pthread_cond_wait(&p.cond, &p.lock);
		ret = p.err;
		pthread_mutex_unlock(&p.lock);
		if (ret)
			break;
		for (uint64_t i = 0; i < nb && !ret; i++)
			ret = sink->put(sink->ctx, off / sink->block + i, &s->b[i]);
		if (!ret && sink->flush)
			ret = sink->flush(sink->ctx);
		if (ret) {
			cp_fail(&p, ret, off, true);
			break;
		}
		vdt_progress_add(prog, len);
		pthread_mutex_lock(&p.lock);
		s->state = CP_FREE;
		pthread_cond_broadcast(&p.cond);
		pthread_mutex_unlock(&p.lock);
	}
	/* Wake the workers to end (n_units reached, or a failure). */
	pthread_mutex_lock(&p.lock);
	if (!p.err)
		p.next = p.n_units;
	pthread_cond_broadcast(&p.cond);
	pthread_mutex_unlock(&p.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
out:
	ret = p.err;
	*err_off_r = p.err_off;
	*err_write_r = p.err_write;
	for (unsigned i = 0; i < p.nslot; i++) {
		free(p.slot[i].buf);
		free(p.slot[i].bbuf);
		free(p.slot[i].cbuf);
		free(p.slot[i].has);
		free(p.slot[i].b);
	}
	free(p.zero);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	return ret;
}
