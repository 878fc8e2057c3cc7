/* Opening a disk: the top image, then each backing layer it names, under
 * the rule for files that images name (ARCHITECTURE.md): a named file is
 * opened only if it resolves to a regular file inside the top image's
 * folder or an allowed --backing-dir. Chains have a depth limit and loop
 * detection by (device, inode). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"
#include "core/ova.h"

struct vd_disk {
	struct vd_layer *top;
	struct vd_archive *archive; /* the OVA the top image lives in */
	bool ignore_parent_ids;
	bool writable;		/* the top layer is */
	char **allowed;		/* realpaths of allowed folders */
	unsigned n_allowed;
	struct vd_cache *cache; /* metadata of every layer */
	struct vd_cache *units; /* decoded compressed units of every layer */
};

static atomic_uint_fast64_t layer_uids;

const struct vd_format *vd_format_find(const char *name)
{
	/* qemu calls VHD "vpc"; people call it "vhd". */
	if (!strcmp(name, "vhd"))
		name = "vpc";
	for (unsigned i = 0; vd_formats[i]; i++)
		if (!strcmp(vd_formats[i]->name, name))
			return vd_formats[i];
	return NULL;
}

static const struct vd_format *probe_format(struct vd_file *f)
{
	uint8_t head[512];
	size_t n = (size_t)VD_MIN(sizeof(head), f->size);
	const struct vd_format *best = vd_format_find("raw");
	int best_score = 0;

	if (n && vd_file_pread(f, head, n, 0))
		return best;
	for (unsigned i = 0; vd_formats[i]; i++) {
		int s = vd_formats[i]->probe(head, n);

		if (s > best_score) {
			best_score = s;
			best = vd_formats[i];
		}
	}
	/* Nothing claims the head: a format known by its last bytes. */
	if (best_score || f->size < sizeof(head) ||
	    vd_file_pread(f, head, sizeof(head), f->size - sizeof(head)))
		return best;
	for (unsigned i = 0; vd_formats[i]; i++) {
		int s = vd_formats[i]->probe_tail ?
				vd_formats[i]->probe_tail(head, sizeof(head),
							  f->size) :
				0;

		if (s > best_score) {
			best_score = s;
			best = vd_formats[i];
		}
	}
	return best;
}

static void layer_free(struct vd_layer *l)
{
	if (!l)
		return;
	if (l->fmt && l->fmt->close)
		l->fmt->close(l);
	vd_file_close(l->file);
	free(l->path);
	free(l->backing_name);
	free(l->backing_format);
	free(l);
}

/* Is the canonical path p inside the canonical folder dir? */
static bool path_inside(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(p, dir, n) && p[n] == '/';
}

static char *dir_of(const char *path)
{
	char *tmp = strdup(path), *d;

	if (!tmp)
		return NULL;
	d = strdup(dirname(tmp));
	free(tmp);
	return d;
}

int vd_layer_open_named(struct vd_layer *l, const char *name,
			const char *what, struct vd_file **f_r, char **path_r,
			struct vd_err *e)
{
	/* An image inside an archive names its siblings in the archive. */
	if (l->file->archive && name[0]) {
		int ret = vd_archive_open_member(l->file->archive, name, f_r,
						 path_r, e);

		if (ret != -ENOENT)
			return ret;
		/* The image's "folder" is the archive itself. */
		if (name[0] != '/')
			return vd_fail(e, -ENOENT, "%s: %s '%s' is not in the "
				       "archive", l->path, what, name);
	}
	return vd_disk_open_named(l->disk, l->path, name, what, f_r, path_r,
				  e);
}

bool vd_layer_name_exists(struct vd_layer *l, const char *name)
{
	char *dir = NULL, *path = NULL;
	struct vd_file *f;
	bool ok;

	if (!name[0])
		return false;
	if (l->file->archive) {
		if (vd_archive_open_member(l->file->archive, name, &f, NULL,
					   NULL))
			return false;
		vd_file_close(f);
		return true;
	}
	if (name[0] == '/')
		return access(name, F_OK) == 0;
	dir = dir_of(l->path);
	ok = dir && asprintf(&path, "%s/%s", dir, name) >= 0 &&
	     access(path, F_OK) == 0;
	free(path);
	free(dir);
	return ok;
}

unsigned vd_layer_allowed_dirs(const struct vd_layer *l,
			       const char *const **dirs_r)
{
	*dirs_r = (const char *const *)l->disk->allowed;
	return l->disk->n_allowed;
}

static int allow_dir(struct vd_disk *d, const char *dir, struct vd_err *e);

int vd_layer_allow_dir(struct vd_layer *l, const char *dir, struct vd_err *e)
{
	for (unsigned i = 0; i < l->disk->n_allowed; i++)
		if (!strcmp(l->disk->allowed[i], dir))
			return 0;
	return allow_dir(l->disk, dir, e);
}

int vd_disk_open_named(struct vd_disk *d, const char *from, const char *name,
		       const char *what, struct vd_file **f_r, char **path_r,
		       struct vd_err *e)
{
	char *dir = NULL, *joined = NULL, *real = NULL;
	struct stat st;
	int ret;

	if (!name[0])
		return vd_fail(e, -EUCLEAN, "%s: empty %s name", from, what);
	if (!strncmp(name, "json:", 5) || strstr(name, "://"))
		return vd_fail(e, -ENOTSUP, "%s: %s '%s' is not a local file "
			       "(protocols are not supported)", from, what,
			       name);
	if (name[0] == '/') {
		joined = strdup(name);
	} else {
		dir = dir_of(from);
		if (dir && !strcmp(dir, "."))
			joined = strdup(name);
		else if (dir && asprintf(&joined, "%s/%s", dir, name) < 0)
			joined = NULL;
	}
	if (!joined) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", from);
		goto out;
	}
	real = realpath(joined, NULL);
	if (!real) {
		ret = -errno;
		if (ret == -ENOENT) {
			char cwd[PATH_MAX] = "";

			if (joined[0] != '/' && !getcwd(cwd, sizeof(cwd)))
				cwd[0] = '\0';
			vd_fail(e, ret, "%s: %s '%s' not found (looked for "
				"%s%s%s)", from, what, name, cwd,
				cwd[0] ? "/" : "", joined);
		}
		else
			vd_fail(e, ret, "%s: %s '%s': %s", from, what, name,
				strerror(errno));
		goto out;
	}
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = vd_fail(e, -EINVAL, "%s: %s '%s' is not a regular file",
			      from, what, name);
		goto out;
	}
	ret = -EPERM;
	for (unsigned i = 0; i < d->n_allowed; i++)
		if (path_inside(real, d->allowed[i]))
			ret = 0;
	if (ret) {
		char *rdir = dir_of(real);

		vd_fail(e, ret, "%s: %s '%s' is outside the allowed folders; "
			"allow it with --backing-dir=%s", from, what, real,
			rdir ? rdir : "DIR");
		free(rdir);
		goto out;
	}
	ret = vd_file_open(real, f_r, e);
	if (!ret && path_r) {
		/* Show the name as the image records it, resolved. */
		*path_r = joined;
		joined = NULL;
	}
out:
	free(dir);
	free(joined);
	free(real);
	return ret;
}

/* Open the layer in file f (taken over) at depth, and below it the chain
 * it names. */
static int layer_open(struct vd_disk *d, struct vd_file *f, char *path,
		      const char *format, const struct vd_layer_opts *o,
		      unsigned depth, struct vd_layer **l_r, struct vd_err *e)
{
	struct vd_layer *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l) {
		vd_file_close(f);
		free(path);
		return vd_fail(e, -ENOMEM, "out of memory");
	}
	l->file = f;
	l->path = path;
	l->disk = d;
	l->uid = atomic_fetch_add(&layer_uids, 1) + 1;
	*l_r = l;

	if (format) {
		l->fmt = vd_format_find(format);
		if (!l->fmt)
			return vd_fail(e, -ENOTSUP, "%s: unsupported format "
				       "'%s'", path, format);
	} else {
		l->fmt = probe_format(f);
	}
	if (o->writable && !l->fmt->write) {
		const char *name = l->fmt->name;

		l->fmt = NULL;
		return vd_fail(e, -EROFS, "%s: a %s image cannot be written; "
			       "only a qcow2 top layer can (see --overlay)",
			       path, name);
	}
	if (o->snapshot && !l->fmt->snapshots) {
		const char *name = l->fmt->name;

		l->fmt = NULL;
		return vd_fail(e, -ENOTSUP, "%s: %s images have no internal "
			       "snapshots (--snapshot=%s)", path, name,
			       o->snapshot);
	}
	l->alloc = f->alloc;
	ret = l->fmt->open(l, o, e);
	if (ret) {
		l->fmt = NULL; /* nothing for close to undo */
		return ret;
	}
	if (!l->backing_name)
		return 0;

	if (depth + 1 >= VD_MAX_CHAIN)
		return vd_fail(e, -ELOOP, "%s: backing chain deeper than %d "
			       "layers", d->top->path, VD_MAX_CHAIN);
	struct vd_file *bf;
	char *bpath;
	ret = vd_layer_open_named(l, l->backing_name, "backing file", &bf,
				  &bpath, e);
	if (ret)
		return ret;
	/* Ends: the depth check above bounds the recursion; this makes a
	 * loop an error rather than 256 layers of the same files. */
	for (struct vd_layer *p = d->top; p; p = p->backing) {
		if (p->file->dev == bf->dev && p->file->ino == bf->ino &&
		    p->file->base == bf->base) {
			ret = vd_fail(e, -ELOOP, "%s: backing loop: '%s' is "
				      "already in the chain", l->path, bpath);
			vd_file_close(bf);
			free(bpath);
			return ret;
		}
	}
	/* A backing layer: no snapshot, the same keys. */
	const struct vd_layer_opts bo = { .keys = o->keys };
	ret = layer_open(d, bf, bpath, l->backing_format, &bo, depth + 1,
			 &l->backing, e);
	if (ret || !l->fmt->check_backing || d->ignore_parent_ids)
		return ret;
	return l->fmt->check_backing(l, e);
}

static int allow_dir(struct vd_disk *d, const char *dir, struct vd_err *e)
{
	char *real = realpath(dir, NULL);
	char **n;
	struct stat st;

	if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int err = real ? ENOTDIR : errno;

		free(real);
		return vd_fail(e, -err, "%s: %s", dir, strerror(err));
	}
	n = realloc(d->allowed, (d->n_allowed + 1) * sizeof(*n));
	if (!n) {
		free(real);
		return vd_fail(e, -ENOMEM, "out of memory");
	}
	d->allowed = n;
	d->allowed[d->n_allowed++] = real;
	return 0;
}

/* Whether the file at path is one of the layers below the top. */
static int disk_check_backed_by(struct vd_disk *d, const char *path,
				struct vd_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	/* Ends: the chain was opened with a depth limit. */
	for (struct vd_layer *l = d->top->backing; l; l = l->backing)
		if (l->file->dev == st.st_dev && l->file->ino == st.st_ino &&
		    !l->file->base)
			return 0;
	return vd_fail(e, -EINVAL, "%s: the overlay exists but its backing "
		       "chain does not lead to %s (%s)", d->top->path, path,
		       d->top->backing_name ? d->top->backing_name :
					      "it has no backing file");
}

int vd_disk_open(const char *path, const struct vd_open_opts *opts,
		 struct vd_disk **disk_r, struct vd_err *e)
{
	static const struct vd_open_opts defaults;
	struct vd_layer_opts lo = { 0 };
	struct vd_disk *d;
	struct vd_file *f;
	char *dir, *p;
	int ret;

	if (!opts)
		opts = &defaults;
	ret = opts->writable ? vd_file_open_rw(path, &f, e) :
			       vd_file_open(path, &f, e);
	if (ret)
		return ret;
	d = calloc(1, sizeof(*d));
	p = strdup(path);
	dir = dir_of(path);
	if (d)
		d->cache = vd_cache_new(opts->cache_bytes ? opts->cache_bytes :
							    VD_CACHE_BUDGET,
					VD_CACHE_SLOTS);
	if (d)
		d->units = vd_cache_new(VD_UNIT_CACHE_BUDGET,
					VD_UNIT_CACHE_SLOTS);
	if (!d || !d->cache || !d->units || !p || !dir) {
		if (d) {
			vd_cache_free(d->cache);
			vd_cache_free(d->units);
		}
		free(d);
		free(p);
		free(dir);
		vd_file_close(f);
		return vd_fail(e, -ENOMEM, "out of memory");
	}
	ret = allow_dir(d, dir, e);
	free(dir);
	for (unsigned i = 0; !ret && i < opts->n_backing_dirs; i++) {
		ret = allow_dir(d, opts->backing_dirs[i], e);
		if (ret)
			vd_fail(e, ret, "--backing-dir=%s: %s",
				opts->backing_dirs[i], strerror(-ret));
	}
	if (ret) {
		free(p);
		vd_file_close(f);
		vd_disk_close(d);
		return ret;
	}
	d->ignore_parent_ids = opts->ignore_parent_ids;
	/* An appliance is not a layer: it only says which file is. */
	if (!opts->format) {
		ret = vd_appliance_open(d, &f, &p, opts->disk, &d->archive, e);
		if (ret) {
			vd_file_close(f);
			free(p);
			vd_disk_close(d);
			return ret;
		}
	} else if (opts->disk) {
		vd_file_close(f);
		free(p);
		vd_disk_close(d);
		return vd_fail(e, -EINVAL, "%s: --disk applies to OVA and OVF "
			       "appliances, not with --format", path);
	}
	lo.snapshot = opts->snapshot;
	lo.writable = opts->writable;
	lo.fresh = opts->fresh;
	lo.keys = opts->keys;
	ret = layer_open(d, f, p, opts->format, &lo, 0, &d->top, e);
	if (ret) {
		vd_disk_close(d);
		return ret;
	}
	d->writable = opts->writable;
	if (opts->backed_by) {
		ret = disk_check_backed_by(d, opts->backed_by, e);
		if (ret) {
			vd_disk_close(d);
			return ret;
		}
	}
	*disk_r = d;
	return 0;
}

void vd_disk_close(struct vd_disk *d)
{
	struct vd_layer *l, *next;

	if (!d)
		return;
	for (l = d->top; l; l = next) {
		next = l->backing;
		layer_free(l);
	}
	vd_archive_free(d->archive);
	for (unsigned i = 0; i < d->n_allowed; i++)
		free(d->allowed[i]);
	free(d->allowed);
	vd_cache_free(d->cache);
	vd_cache_free(d->units);
	free(d);
	vd_thread_cleanup();
}

uint64_t vd_disk_size(const struct vd_disk *d)
{
	return d->top->size;
}

bool vd_disk_writable(const struct vd_disk *d)
{
	return d->writable;
}

int vd_disk_write(struct vd_disk *d, const void *buf, size_t len,
		  uint64_t off)
{
	if (!d->writable)
		return -EROFS;
	if (!vd_range_ok(off, len, d->top->size))
		return -EINVAL;
	return d->top->fmt->write(d->top, buf, len, off);
}

int vd_disk_flush(struct vd_disk *d)
{
	if (!d->writable || !d->top->fmt->flush)
		return 0;
	return d->top->fmt->flush(d->top);
}

struct vd_cache *vd_layer_cache(struct vd_layer *l)
{
	return l->disk->cache;
}

struct vd_cache *vd_layer_unit_cache(struct vd_layer *l)
{
	return l->disk->units;
}

uint64_t vd_disk_host_bytes(const struct vd_disk *d)
{
	uint64_t sum = 0;

	for (const struct vd_layer *l = d->top; l; l = l->backing)
		sum += l->alloc;
	return sum;
}

const struct vd_layer *vd_disk_top(const struct vd_disk *d)
{
	return d->top;
}

const struct vd_layer *vd_layer_backing(const struct vd_layer *l)
{
	return l->backing;
}

const char *vd_layer_path(const struct vd_layer *l)
{
	return l->path;
}

const char *vd_layer_format(const struct vd_layer *l)
{
	return l->fmt ? l->fmt->name : "?";
}

uint64_t vd_layer_size(const struct vd_layer *l)
{
	return l->size;
}

/* ---- describing a layer: the common fields here, the rest by the
 * driver's describe op. */
int vd_layer_info(const struct vd_layer *l, struct vd_layer_info *i)
{
	memset(i, 0, sizeof(*i));
	i->format = vd_layer_format(l);
	i->virtual_size = l->size;
	i->actual_size = l->alloc;
	i->backing_filename = l->backing_name;
	i->backing_format = l->backing_format;
	i->full_backing_filename = l->backing ? l->backing->path : NULL;
	if (l->fmt && l->fmt->describe)
		l->fmt->describe(l, i);
	return 0;
}

void vd_layer_info_free(struct vd_layer_info *i)
{
	free(i->snapshots);
	free(i->extents);
	i->snapshots = NULL;
	i->extents = NULL;
	i->n_snapshots = i->n_extents = 0;
}
