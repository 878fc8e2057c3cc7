/* Volumes: the generic reads over mapped volumes, the disk as a volume,
 * slices, and the set of an image's volumes.
 *
 * A mapped volume's read walks its runs and reads each from the volume
 * it lies in, recursively, so a piece of an LV on a partition on the
 * disk ends as a piece of the disk (a host file range to splice). The
 * recursion is bounded by the depth of the stack of volumes, which
 * discovery limits (VD_VOL_MAX_DEPTH). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "volumes/part.h"
#include "volumes/vol.h"

/* -EIO (logged) unless [off, off + len) lies inside v. */
static int vol_range_check(const struct vd_vol *v, uint64_t len,
			   uint64_t off)
{
	if (vd_range_ok(off, len, v->len))
		return 0;
	vd_log(VD_LOG_ERR, "%s: read of %llu bytes at 0x%llx lies past the "
	       "end of the volume (%llu bytes)", v->name,
	       (unsigned long long)len, (unsigned long long)off,
	       (unsigned long long)v->len);
	return -EIO;
}

/* The run of mapped volume v at off (at most len bytes), checked: a
 * driver's run that is empty, too long, or outside the volume it names
 * is a bug or corrupt metadata, and fails the read. */
static int vol_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		   struct vd_vol_run *r)
{
	int ret;

	*r = (struct vd_vol_run){ 0 };
	ret = v->ops->map(v, off, len, r);
	if (ret)
		return ret;
	if (!r->len || r->len > len ||
	    (r->vol && !vd_range_ok(r->off, r->len, r->vol->len))) {
		vd_log(VD_LOG_ERR, "%s: the map of byte 0x%llx is bad: a run of "
		       "%llu bytes for %llu asked, or outside the volume "
		       "it names", v->name, (unsigned long long)off,
		       (unsigned long long)r->len, (unsigned long long)len);
		return -EIO;
	}
	return 0;
}

int vd_vol_read_vec(const struct vd_vol *v, void *buf, size_t len,
		    uint64_t off, struct vd_seg *segs, unsigned max_segs,
		    unsigned *n_r)
{
	uint8_t *p = buf;
	size_t pos = 0;
	unsigned n = 0;
	int ret;

	*n_r = 0;
	ret = vol_range_check(v, len, off);
	if (ret)
		return ret;
	if (!v->ops->map)
		return v->ops->read_vec(v, buf, len, off, segs, max_segs, n_r);
	/* Ends: every run is at least one byte long (vol_map). */
	while (pos < len) {
		struct vd_vol_run r;
		unsigned m = 0;

		if (max_segs - n <= 1) {
			/* One piece left: the rest becomes one copy. */
			ret = vd_vol_read(v, p + pos, len - pos, off + pos);
			if (ret)
				return ret;
			segs[n++] = (struct vd_seg){ .type = VD_SEG_MEM,
						     .len = len - pos,
						     .mem = p + pos };
			break;
		}
		ret = vol_map(v, off + pos, len - pos, &r);
		if (ret)
			return ret;
		if (!r.vol) {
			segs[n++] = (struct vd_seg){ .type = VD_SEG_ZERO,
						     .len = (size_t)r.len };
		} else {
			ret = vd_vol_read_vec(r.vol, p + pos, (size_t)r.len,
					      r.off, segs + n, max_segs - n,
					      &m);
			if (ret)
				return ret;
			n += m;
		}
		pos += (size_t)r.len;
	}
	*n_r = n;
	return 0;
}

/* Reads of a computed volume go through read_vec with pieces of their
 * own, whose FD pieces are then read here. */
#define VOL_READ_SEGS 32u

static int vol_read_computed(const struct vd_vol *v, uint8_t *buf,
			     size_t len, uint64_t off)
{
	struct vd_seg segs[VOL_READ_SEGS];
	uint8_t *p = buf;
	unsigned n;
	int ret;

	ret = v->ops->read_vec(v, buf, len, off, segs, VOL_READ_SEGS, &n);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		const struct vd_seg *s = &segs[i];

		switch (s->type) {
		case VD_SEG_ZERO:
			memset(p, 0, s->len);
			break;
		case VD_SEG_MEM:
			if (s->mem != p)
				memmove(p, s->mem, s->len);
			break;
		case VD_SEG_FD:
			for (size_t done = 0; done < s->len;) {
				ssize_t got = pread(s->fd, p + done,
						    s->len - done,
						    (off_t)(s->fd_off + done));

				if (got < 0 && errno == EINTR)
					continue;
				if (got <= 0) {
					vd_log(VD_LOG_ERR, "%s: host read at "
					       "0x%llx failed: %s", v->name,
					       (unsigned long long)(s->fd_off +
								    done),
					       got ? strerror(errno) :
						     "end of file");
					return -EIO;
				}
				done += (size_t)got;
			}
			break;
		}
		p += s->len;
	}
	return 0;
}

int vd_vol_read(const struct vd_vol *v, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t pos = 0;
	int ret = vol_range_check(v, len, off);

	if (ret)
		return ret;
	if (!v->ops->map)
		return v->ops->read ? v->ops->read(v, buf, len, off) :
				      vol_read_computed(v, buf, len, off);
	/* Ends: every run is at least one byte long. */
	while (pos < len) {
		struct vd_vol_run r;

		ret = vol_map(v, off + pos, len - pos, &r);
		if (ret)
			return ret;
		if (!r.vol)
			memset(p + pos, 0, (size_t)r.len);
		else if ((ret = vd_vol_read(r.vol, p + pos, (size_t)r.len,
					    r.off)))
			return ret;
		pos += (size_t)r.len;
	}
	return 0;
}

int vd_vol_write(const struct vd_vol *v, const void *buf, size_t len,
		 uint64_t off)
{
	const uint8_t *p = buf;
	size_t pos = 0;
	int ret;

	if (!vd_range_ok(off, len, v->len))
		return -ENOSPC;
	if (!v->ops->map)
		return v->ops->write ? v->ops->write(v, buf, len, off) : -EROFS;
	/* Ends: every run is at least one byte long. */
	while (pos < len) {
		struct vd_vol_run r;

		ret = vol_map(v, off + pos, len - pos, &r);
		if (ret)
			return ret;
		if (!r.vol)
			return -EROFS;
		ret = vd_vol_write(r.vol, p + pos, (size_t)r.len, r.off);
		if (ret)
			return ret;
		pos += (size_t)r.len;
	}
	return 0;
}

/* Runs of a mapped volume looked at for the volume it is stored in. */
#define VOL_FLUSH_MAX_RUNS 4096

int vd_vol_flush(const struct vd_vol *v)
{
	uint64_t off = 0;
	int ret;

	if (!v->ops->map)
		return v->ops->flush ? v->ops->flush(v) : 0;
	/* Every volume of an image lies on its one disk: the first stored
	 * run leads there. Ends: at most VOL_FLUSH_MAX_RUNS runs, each at
	 * least one byte; the recursion is as deep as the volume stack. */
	for (unsigned n = 0; n < VOL_FLUSH_MAX_RUNS && off < v->len; n++) {
		struct vd_vol_run r;

		ret = vol_map(v, off, v->len - off, &r);
		if (ret)
			return ret;
		if (r.vol)
			return vd_vol_flush(r.vol);
		off += r.len;
	}
	return 0;
}

int vd_vol_status(const struct vd_vol *v, uint64_t off, uint64_t len,
		  bool *data_r, uint64_t *len_r)
{
	struct vd_vol_run r;
	int ret;

	if (!len || vol_range_check(v, len, off))
		return -EINVAL;
	if (!v->ops->map)
		return v->ops->status(v, off, len, data_r, len_r);
	ret = vol_map(v, off, len, &r);
	if (ret)
		return ret;
	if (!r.vol) {
		/* Unmapped runs that follow are holes too. */
		uint64_t pos = r.len;

		while (pos < len) {
			struct vd_vol_run nx;

			if (vol_map(v, off + pos, len - pos, &nx) || nx.vol)
				break;
			pos += nx.len;
		}
		*data_r = false;
		*len_r = pos;
		return 0;
	}
	/* Within the run, the status of what it lies in; a run's end
	 * ends the answer (the caller asks again). */
	return vd_vol_status(r.vol, r.off, r.len, data_r, len_r);
}

int vd_vol_seek(const struct vd_vol *v, uint64_t off, bool want_data,
		uint64_t *off_r)
{
	if (off >= v->len)
		return -ENXIO;
	/* Ends: every status answer covers at least one byte. */
	while (off < v->len) {
		bool data;
		uint64_t n;
		int ret = vd_vol_status(v, off, v->len - off, &data, &n);

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
	*off_r = v->len; /* the end is a hole */
	return 0;
}

/* Runs asked of a mapped volume's map per read-ahead; the rest of a
 * longer range is left to the next call. */
#define VOL_PREFETCH_RUNS 64u

void vd_vol_prefetch(const struct vd_vol *v, uint64_t off, uint64_t len)
{
	if (off >= v->len)
		return;
	len = VD_MIN(len, v->len - off);
	if (!v->ops->map) {
		if (v->ops->prefetch)
			v->ops->prefetch(v, off, len);
		return;
	}
	for (unsigned i = 0; i < VOL_PREFETCH_RUNS && len; i++) {
		struct vd_vol_run r;

		if (vol_map(v, off, len, &r))
			return;
		if (r.vol)
			vd_vol_prefetch(r.vol, r.off, r.len);
		off += r.len;
		len -= r.len;
	}
}

/* ---- construction */

struct vd_vol *vd_vol_new(const struct vd_vol_ops *ops, size_t size,
			  uint64_t len, const char *name)
{
	struct vd_vol *v;

	if (size < sizeof(*v))
		return NULL;
	v = calloc(1, size);
	if (!v)
		return NULL;
	v->ops = ops;
	v->len = len;
	v->name = strdup(name ? name : "");
	if (!v->name) {
		free(v);
		return NULL;
	}
	return v;
}

void vd_vol_free(struct vd_vol *v)
{
	if (!v)
		return;
	if (v->ops->destroy)
		v->ops->destroy(v);
	vd_parts_free(v->parts);
	free(v->luks);
	free(v->error);
	free(v->name);
	free(v);
}

/* A slice: the bytes [start, start + len) of its parent. */
struct vol_slice {
	struct vd_vol v;
	const struct vd_vol *parent;
	uint64_t start;
};

static int slice_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		     struct vd_vol_run *r)
{
	const struct vol_slice *s = (const struct vol_slice *)v;

	r->vol = s->parent;
	r->off = s->start + off;
	r->len = len;
	return 0;
}

static const struct vd_vol_ops vol_slice_ops = {
	.kind = "slice",
	.map = slice_map,
};

struct vd_vol *vd_vol_new_slice(const struct vd_vol *parent, uint64_t start,
				uint64_t len, const char *name)
{
	struct vol_slice *s;

	if (!vd_range_ok(start, len, parent->len))
		return NULL;
	s = (struct vol_slice *)vd_vol_new(&vol_slice_ops, sizeof(*s), len,
					   name);
	if (!s)
		return NULL;
	s->parent = parent;
	s->start = start;
	return &s->v;
}

bool vd_vol_slice_of(const struct vd_vol *v, const struct vd_vol **parent_r,
		     uint64_t *start_r)
{
	const struct vol_slice *s = (const struct vol_slice *)v;

	if (v->ops != &vol_slice_ops)
		return false;
	*parent_r = s->parent;
	*start_r = s->start;
	return true;
}

/* The disk: a computed volume over core's reads. */
struct vol_disk {
	struct vd_vol v;
	struct vd_disk *disk;
	uint64_t start; /* of the range shown (0 but in tests) */
};

static int disk_read_vec(const struct vd_vol *v, void *buf, size_t len,
			 uint64_t off, struct vd_seg *segs, unsigned max_segs,
			 unsigned *n_r)
{
	const struct vol_disk *dv = (const struct vol_disk *)v;

	return vd_disk_read_vec(dv->disk, buf, len, dv->start + off, segs,
				max_segs, n_r);
}

static int disk_read(const struct vd_vol *v, void *buf, size_t len,
		     uint64_t off)
{
	const struct vol_disk *dv = (const struct vol_disk *)v;

	return vd_disk_read(dv->disk, buf, len, dv->start + off);
}

static int disk_status(const struct vd_vol *v, uint64_t off, uint64_t len,
		       bool *data_r, uint64_t *len_r)
{
	const struct vol_disk *dv = (const struct vol_disk *)v;

	return vd_disk_status(dv->disk, dv->start + off, len, data_r, len_r);
}

static void disk_prefetch(const struct vd_vol *v, uint64_t off, uint64_t len)
{
	const struct vol_disk *dv = (const struct vol_disk *)v;

	vd_disk_prefetch(dv->disk, dv->start + off, len);
}

static int disk_write(const struct vd_vol *v, const void *buf, size_t len,
		      uint64_t off)
{
	const struct vol_disk *dv = (const struct vol_disk *)v;

	return vd_disk_write(dv->disk, buf, len, dv->start + off);
}

static int disk_flush(const struct vd_vol *v)
{
	return vd_disk_flush(((const struct vol_disk *)v)->disk);
}

static const struct vd_vol_ops vol_disk_ops = {
	.kind = "disk",
	.read_vec = disk_read_vec,
	.read = disk_read,
	.status = disk_status,
	.prefetch = disk_prefetch,
	.write = disk_write,
	.flush = disk_flush,
};

struct vd_vol *vd_vol_new_disk_range(struct vd_disk *d, uint64_t start,
				     uint64_t len, const char *name)
{
	struct vol_disk *dv;

	if (!vd_range_ok(start, len, vd_disk_size(d)))
		return NULL;
	dv = (struct vol_disk *)vd_vol_new(&vol_disk_ops, sizeof(*dv), len,
					   name);
	if (!dv)
		return NULL;
	dv->disk = d;
	dv->start = start;
	return &dv->v;
}

struct vd_vol *vd_vol_new_disk(struct vd_disk *d, const char *name)
{
	return vd_vol_new_disk_range(d, 0, vd_disk_size(d), name);
}

/* ---- the set */

int vd_volset_add(struct vd_volset *s, struct vd_vol *v)
{
	if (s->n >= VD_VOL_MAX) {
		vd_vol_free(v);
		return -ENOSPC;
	}
	if (s->n == s->cap) {
		/* Bounded by VD_VOL_MAX. */
		unsigned cap = s->cap ? 2 * s->cap : 16;
		struct vd_vol **nv = realloc(s->vols, cap * sizeof(*nv));

		if (!nv) {
			vd_vol_free(v);
			return -ENOMEM;
		}
		s->vols = nv;
		s->cap = cap;
	}
	v->id = s->n;
	s->vols[s->n++] = v;
	return 0;
}

static bool volset_label_taken(const struct vd_volset *s, const char *label)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->vols[i]->label, label))
			return true;
	return false;
}

void vd_volset_unique_label(const struct vd_volset *s, char *label,
			    size_t size)
{
	char base[VD_VOL_LABEL_MAX];

	if (!volset_label_taken(s, label))
		return;
	snprintf(base, sizeof(base), "%s", label);
	/* Ends: at most s->n labels are taken, so one of the first
	 * s->n + 1 suffixes is free. */
	for (unsigned k = 2; k <= s->n + 2; k++) {
		snprintf(label, size, "%.*s_%u", (int)(size - 12), base, k);
		if (!volset_label_taken(s, label))
			return;
	}
}
