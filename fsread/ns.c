/* The namespace of ns.h: synthetic entries over the disk, its partitions
 * and their filesystems. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ns.h"

/* Volume 0's own numbers besides the root and disk.raw: pN.raw. */
#define NS_RAW_BASE 0x10000u

struct ns_vol {
	unsigned num; /* partition number, or VD_NS_VOL_WHOLE */
	struct vd_vol vol;
	struct vd_fs *fs; /* NULL: no filesystem shown */
	char *error;	  /* why a recognised filesystem is not shown */
};

struct ns_ent {
	char name[64];
	uint64_t ino;
	unsigned type; /* DT_* */
};

struct vd_ns {
	struct vd_disk *disk;
	struct vd_ns_opts o;
	struct vd_parts *parts;
	char *parts_error; /* why the table could not be read, or NULL */
	struct ns_vol *vols; /* in increasing num */
	unsigned n_vols;
	struct ns_ent *ents; /* the root directory, "." and ".." first */
	unsigned n_ents;
	unsigned n_dirs; /* pN/ and fs/ entries, for the root's nlink */
};

enum ns_kind { NS_RAW, NS_FS };

struct vd_ns_file {
	enum ns_kind kind;
	struct vd_disk *disk; /* NS_RAW: the range [start, start + len) */
	uint64_t start, len;
	struct vd_fs_file *ff; /* NS_FS */
	uint64_t local;	       /* NS_FS: the file's inode */
};

static uint64_t ns_vol_of(uint64_t ino)
{
	return ino >> VD_NS_VOL_SHIFT;
}

static uint64_t ns_local(uint64_t ino)
{
	return ino & ((UINT64_C(1) << VD_NS_VOL_SHIFT) - 1);
}

static uint64_t ns_ino(unsigned vol, uint64_t local)
{
	return (uint64_t)vol << VD_NS_VOL_SHIFT | local;
}

static struct ns_vol *ns_find(const struct vd_ns *ns, uint64_t num)
{
	unsigned lo = 0, hi = ns->n_vols;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (ns->vols[mid].num == num)
			return &ns->vols[mid];
		if (ns->vols[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The mounted volume an inode belongs to, and its local number; NULL for
 * volume 0 or a volume without a filesystem. */
static struct ns_vol *ns_fs_vol(const struct vd_ns *ns, uint64_t ino,
				uint64_t *local_r)
{
	struct ns_vol *v;

	if (!ns_vol_of(ino))
		return NULL;
	v = ns_find(ns, ns_vol_of(ino));
	if (!v || !v->fs)
		return NULL;
	*local_r = ns_local(ino);
	return v;
}

static struct ns_vol *ns_raw_vol(const struct vd_ns *ns, uint64_t ino)
{
	if (ns_vol_of(ino) || ino <= NS_RAW_BASE)
		return NULL;
	return ns_find(ns, ino - NS_RAW_BASE);
}

/* Mount what the volume holds, if anything: a filesystem the drivers do
 * not recognise is no error (swap, an empty partition); one they
 * recognise but cannot mount is reported and left out. */
static void ns_mount_vol(const struct vd_ns *ns, struct ns_vol *v)
{
	struct vd_fs_opts fo = {
		.uid = ns->o.uid,
		.gid = ns->o.gid,
		.codepage = ns->o.codepage,
	};
	struct vd_err e = { "" };
	int ret;

	ret = vd_fs_mount(&v->vol, &fo, &v->fs, &e);
	if (ret)
		v->fs = NULL;
	if (ret && ret != -ENODEV) {
		vd_log(VD_LOG_WARN, "%s; its files are not shown",
		       e.msg[0] ? e.msg : strerror(-ret));
		v->error = strdup(e.msg[0] ? e.msg : strerror(-ret));
	}
}

/* name (malloc'd, for messages) is taken over, NULL meaning out of
 * memory. */
static int ns_add_vol(struct vd_ns *ns, unsigned num, uint64_t start,
		      uint64_t len, char *name, bool probe)
{
	struct ns_vol *v = &ns->vols[ns->n_vols];

	if (!name)
		return -ENOMEM;
	v->num = num;
	v->vol.disk = ns->disk;
	v->vol.start = start;
	v->vol.len = len;
	v->vol.name = name;
	ns->n_vols++;
	if (probe)
		ns_mount_vol(ns, v);
	return 0;
}

static void ns_add_ent(struct vd_ns *ns, const char *name, uint64_t ino,
		       unsigned type)
{
	struct ns_ent *en = &ns->ents[ns->n_ents++];

	snprintf(en->name, sizeof(en->name), "%s", name);
	en->ino = ino;
	en->type = type;
	if (type == DT_DIR && strcmp(name, ".") && strcmp(name, ".."))
		ns->n_dirs++;
}

static int ns_build(struct vd_ns *ns, const char *name)
{
	struct vd_err e = { "" };
	unsigned n = 0;
	char label[32], *vname;
	int ret;

	if (!ns->o.no_partitions) {
		ret = vd_parts_read(ns->disk, name, &ns->parts, &e);
		if (ret && ret != -ENOMEM) {
			vd_log(VD_LOG_WARN, "%s; only disk.raw is shown",
			       e.msg[0] ? e.msg : strerror(-ret));
			ns->parts = NULL;
			ns->parts_error =
				strdup(e.msg[0] ? e.msg : strerror(-ret));
		} else if (ret) {
			return ret;
		}
		n = ns->parts ? ns->parts->n : 0;
	}
	/* One volume per partition, or one for the whole disk. */
	ns->vols = calloc(n ? n : 1, sizeof(*ns->vols));
	/* ., .., disk.raw, then pN.raw and pN per partition (or fs). */
	ns->ents = calloc(3 + 2 * (size_t)(n ? n : 1), sizeof(*ns->ents));
	if (!ns->vols || !ns->ents)
		return -ENOMEM;
	ns_add_ent(ns, ".", VD_NS_ROOT, DT_DIR);
	ns_add_ent(ns, "..", VD_NS_ROOT, DT_DIR);
	ns_add_ent(ns, "disk.raw", VD_NS_DISK, DT_REG);
	for (unsigned i = 0; i < n; i++) {
		const struct vd_part *p = &ns->parts->part[i];

		if (asprintf(&vname, "%s p%u", name, p->num) < 0)
			vname = NULL;
		/* An extended partition holds EBRs and the logical
		 * partitions, never a filesystem of its own. */
		ret = ns_add_vol(ns, p->num, p->start, p->len, vname,
				 !p->extended);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < ns->n_vols; i++) {
		struct ns_vol *v = &ns->vols[i];

		snprintf(label, sizeof(label), "p%u.raw", v->num);
		ns_add_ent(ns, label, NS_RAW_BASE + v->num, DT_REG);
		if (v->fs) {
			snprintf(label, sizeof(label), "p%u", v->num);
			ns_add_ent(ns, label,
				   ns_ino(v->num, v->fs->ops->root(v->fs)),
				   DT_DIR);
		}
	}
	/* No table: the disk may be one filesystem. */
	if (!n && !ns->o.no_partitions) {
		ret = ns_add_vol(ns, VD_NS_VOL_WHOLE, 0,
				 vd_disk_size(ns->disk), strdup(name), true);
		if (ret)
			return ret;
		if (ns->vols[0].fs)
			ns_add_ent(ns, "fs",
				   ns_ino(VD_NS_VOL_WHOLE,
					  ns->vols[0].fs->ops->root(
						  ns->vols[0].fs)),
				   DT_DIR);
	}
	return 0;
}

int vd_ns_open(struct vd_disk *d, const char *name,
	       const struct vd_ns_opts *o, struct vd_ns **ns_r)
{
	struct vd_ns *ns = calloc(1, sizeof(*ns));
	int ret;

	if (!ns)
		return -ENOMEM;
	ns->disk = d;
	ns->o = *o;
	ret = ns_build(ns, name);
	if (ret) {
		vd_ns_close(ns);
		return ret;
	}
	*ns_r = ns;
	return 0;
}

void vd_ns_close(struct vd_ns *ns)
{
	if (!ns)
		return;
	for (unsigned i = 0; i < ns->n_vols; i++) {
		if (ns->vols[i].fs)
			ns->vols[i].fs->ops->unmount(ns->vols[i].fs);
		free((char *)ns->vols[i].vol.name);
		free(ns->vols[i].error);
	}
	free(ns->vols);
	free(ns->parts_error);
	free(ns->ents);
	vd_parts_free(ns->parts);
	free(ns);
}

const struct vd_parts *vd_ns_parts(const struct vd_ns *ns)
{
	return ns->parts;
}

const char *vd_ns_parts_error(const struct vd_ns *ns)
{
	return ns->parts_error;
}

const char *vd_ns_fs_error(const struct vd_ns *ns, unsigned num)
{
	const struct ns_vol *v = ns_find(ns, num);

	return v ? v->error : NULL;
}

struct vd_fs *vd_ns_fs(const struct vd_ns *ns, unsigned num)
{
	struct ns_vol *v = ns_find(ns, num);

	return v ? v->fs : NULL;
}

int vd_ns_lookup(struct vd_ns *ns, uint64_t dir, const char *name,
		 uint64_t *ino_r)
{
	struct ns_vol *v;
	uint64_t local, got;
	int ret;

	if (dir == VD_NS_ROOT) {
		for (unsigned i = 0; i < ns->n_ents; i++) {
			if (!strcmp(ns->ents[i].name, name)) {
				*ino_r = ns->ents[i].ino;
				return 0;
			}
		}
		return -ENOENT;
	}
	v = ns_fs_vol(ns, dir, &local);
	if (!v)
		return ns_vol_of(dir) || dir == VD_NS_DISK || ns_raw_vol(ns, dir) ?
			       -ENOTDIR :
			       -ENOENT;
	/* The filesystem's root leads up to ours. */
	if (!strcmp(name, "..") && local == v->fs->ops->root(v->fs)) {
		*ino_r = VD_NS_ROOT;
		return 0;
	}
	ret = v->fs->ops->lookup(v->fs, local, name, &got);
	if (ret)
		return ret;
	if (got >> VD_NS_VOL_SHIFT) {
		vd_log(VD_LOG_ERR, "%s: inode number %llu is too large",
		       v->vol.name, (unsigned long long)got);
		return -EIO;
	}
	*ino_r = ns_ino(v->num, got);
	return 0;
}

static void ns_synthetic_attr(struct vd_ns *ns, uint64_t ino, mode_t mode,
			      uint64_t size, struct vd_fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = mode;
	a->nlink = S_ISDIR(mode) ? 2 + ns->n_dirs : 1;
	a->uid = ns->o.uid;
	a->gid = ns->o.gid;
	a->size = size;
	a->atime = a->mtime = a->ctime = ns->o.time;
	if (S_ISREG(mode))
		/* What the image occupies, never more than the file: cp and
		 * tar then treat a sparse disk as sparse. */
		a->blocks = (VD_MIN(vd_disk_host_bytes(ns->disk), size) + 511) /
			    512;
}

int vd_ns_getattr(struct vd_ns *ns, uint64_t ino, struct vd_fs_attr *a_r)
{
	struct ns_vol *v;
	uint64_t local;
	int ret;

	if (ino == VD_NS_ROOT) {
		ns_synthetic_attr(ns, ino, S_IFDIR | 0555, 0, a_r);
		return 0;
	}
	if (ino == VD_NS_DISK) {
		ns_synthetic_attr(ns, ino, S_IFREG | 0444,
				  vd_disk_size(ns->disk), a_r);
		return 0;
	}
	v = ns_raw_vol(ns, ino);
	if (v) {
		ns_synthetic_attr(ns, ino, S_IFREG | 0444, v->vol.len, a_r);
		return 0;
	}
	v = ns_fs_vol(ns, ino, &local);
	if (!v)
		return -ENOENT;
	ret = v->fs->ops->getattr(v->fs, local, a_r);
	if (!ret)
		a_r->ino = ino;
	return ret;
}

struct ns_fill {
	vd_fs_fill fill;
	void *arg;
	struct ns_vol *v;
	uint64_t root;
};

static int ns_fill_guest(void *arg, const char *name, uint64_t ino,
			 unsigned type, uint64_t next)
{
	struct ns_fill *f = arg;

	if (!strcmp(name, "..") && f->root)
		ino = VD_NS_ROOT;
	else
		ino = ns_ino(f->v->num, ns_local(ino));
	return f->fill(f->arg, name, ino, type, next);
}

int vd_ns_readdir(struct vd_ns *ns, uint64_t dir, uint64_t cookie,
		  vd_fs_fill fill, void *arg)
{
	struct ns_fill f = { fill, arg, NULL, 0 };
	uint64_t local;

	if (dir == VD_NS_ROOT) {
		for (uint64_t i = cookie; i < ns->n_ents; i++)
			if (fill(arg, ns->ents[i].name, ns->ents[i].ino,
				 ns->ents[i].type, i + 1))
				break;
		return 0;
	}
	f.v = ns_fs_vol(ns, dir, &local);
	if (!f.v)
		return ns_vol_of(dir) ? -ENOENT : -ENOTDIR;
	f.root = local == f.v->fs->ops->root(f.v->fs);
	return f.v->fs->ops->readdir(f.v->fs, local, cookie, ns_fill_guest,
				     &f);
}

int vd_ns_readlink(struct vd_ns *ns, uint64_t ino, char *buf, size_t size)
{
	uint64_t local;
	struct ns_vol *v = ns_fs_vol(ns, ino, &local);

	if (!v)
		return -EINVAL;
	return v->fs->ops->readlink(v->fs, local, buf, size);
}

int vd_ns_listxattr(struct vd_ns *ns, uint64_t ino, char *buf, size_t size,
		    size_t *len_r)
{
	uint64_t local;
	struct ns_vol *v = ns_fs_vol(ns, ino, &local);

	if (!v || !v->fs->ops->listxattr) {
		*len_r = 0;
		return 0;
	}
	return v->fs->ops->listxattr(v->fs, local, buf, size, len_r);
}

int vd_ns_getxattr(struct vd_ns *ns, uint64_t ino, const char *name,
		   void *buf, size_t size, size_t *len_r)
{
	uint64_t local;
	struct ns_vol *v = ns_fs_vol(ns, ino, &local);

	if (!v || !v->fs->ops->getxattr)
		return -ENODATA;
	return v->fs->ops->getxattr(v->fs, local, name, buf, size, len_r);
}

int vd_ns_statfs(struct vd_ns *ns, uint64_t ino, struct statvfs *st_r)
{
	uint64_t local;
	struct ns_vol *v = ns_fs_vol(ns, ino, &local);

	if (v && v->fs->ops->statfs)
		return v->fs->ops->statfs(v->fs, st_r);
	memset(st_r, 0, sizeof(*st_r));
	st_r->f_bsize = st_r->f_frsize = 4096;
	st_r->f_blocks = (vd_disk_size(ns->disk) + 4095) / 4096;
	st_r->f_files = ns->n_ents - 2;
	st_r->f_namemax = 255;
	st_r->f_flag = ST_RDONLY;
	return 0;
}

int vd_ns_open_file(struct vd_ns *ns, uint64_t ino, struct vd_ns_file **f_r)
{
	struct vd_ns_file *f;
	struct ns_vol *v;
	uint64_t local;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->disk = ns->disk;
	if (ino == VD_NS_DISK) {
		f->kind = NS_RAW;
		f->len = vd_disk_size(ns->disk);
	} else if ((v = ns_raw_vol(ns, ino))) {
		f->kind = NS_RAW;
		f->start = v->vol.start;
		f->len = v->vol.len;
	} else if ((v = ns_fs_vol(ns, ino, &local))) {
		f->kind = NS_FS;
		f->local = local;
		ret = v->fs->ops->open(v->fs, local, &f->ff);
		if (ret) {
			free(f);
			return ret;
		}
	} else {
		free(f);
		return ino == VD_NS_ROOT ? -EISDIR : -ENOENT;
	}
	*f_r = f;
	return 0;
}

int vd_ns_read(struct vd_ns_file *f, void *buf, size_t len, uint64_t off,
	       size_t *got_r)
{
	int ret;

	if (f->kind == NS_FS)
		return f->ff->fs->ops->read(f->ff, buf, len, off, got_r);
	if (off >= f->len) {
		*got_r = 0;
		return 0;
	}
	len = (size_t)VD_MIN((uint64_t)len, f->len - off);
	ret = vd_disk_read(f->disk, buf, len, f->start + off);
	*got_r = ret ? 0 : len;
	return ret;
}

/* Pieces asked of a filesystem's map per read. */
#define NS_PIECES 32u

/* Merge neighbours that continue each other; returns the new count. */
static unsigned ns_segs_merge(struct vd_seg *s, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct vd_seg *last = k ? &s[k - 1] : NULL;

		if (last && last->type == s[i].type &&
		    (s[i].type == VD_SEG_ZERO ||
		     (s[i].type == VD_SEG_FD && last->fd == s[i].fd &&
		      last->fd_off + last->len == s[i].fd_off) ||
		     (s[i].type == VD_SEG_MEM &&
		      (const uint8_t *)last->mem + last->len == s[i].mem))) {
			last->len += s[i].len;
			continue;
		}
		s[k++] = s[i];
	}
	return k;
}

/* Bytes [off, off + len) of f read into buf from pos on, as one MEM
 * piece appended to segs. */
static int ns_fs_read_rest(struct vd_fs_file *ff, uint8_t *buf, size_t pos,
			   size_t len, uint64_t off, struct vd_seg *segs,
			   unsigned *n, size_t *got_r)
{
	size_t got = 0;
	int ret = ff->fs->ops->read(ff, buf + pos, len - pos, off + pos, &got);

	if (ret)
		return ret;
	if (got)
		segs[(*n)++] = (struct vd_seg){ .type = VD_SEG_MEM, .len = got,
						.mem = buf + pos };
	*got_r = pos + got;
	return 0;
}

/* A guest file in pieces: what its filesystem maps becomes the
 * volume's pieces; the rest (past max_segs - 1 pieces, or all of it
 * when the filesystem cannot map) is read into buf. */
static int ns_fs_read_vec(struct vd_fs_file *ff, uint8_t *buf, size_t len,
			  uint64_t off, struct vd_seg *segs, unsigned max,
			  unsigned *n_r, size_t *got_r)
{
	const struct vd_vol *v = ff->fs->vol;
	struct vd_fs_piece p[NS_PIECES];
	unsigned np = 0, n = 0;
	size_t mapped = 0, pos = 0;
	int ret = -EOPNOTSUPP;

	if (max >= 2 && ff->fs->ops->map)
		ret = ff->fs->ops->map(ff, off, len, p,
				       VD_MIN(max - 1, NS_PIECES), &np, &mapped);
	if (!ret && mapped > len)
		return -EIO; /* a driver bug; never seen */
	if (ret == -EOPNOTSUPP)
		np = 0;
	else if (ret)
		return ret;
	/* One piece is kept for the rest. */
	for (unsigned i = 0; i < np && n < max - 1; i++) {
		if (p[i].zero) {
			segs[n++] = (struct vd_seg){ .type = VD_SEG_ZERO,
						     .len = (size_t)p[i].len };
		} else {
			unsigned m;

			/* On failure the read below says what went wrong,
			 * as it would without pieces. */
			if (vd_vol_read_vec(v, buf + pos, (size_t)p[i].len,
					    p[i].vol_off, segs + n,
					    max - 1 - n, &m))
				break;
			n += m;
		}
		pos += (size_t)p[i].len;
	}
	*got_r = pos;
	if (pos < len)
		ret = ns_fs_read_rest(ff, buf, pos, len, off, segs, &n, got_r);
	*n_r = ns_segs_merge(segs, n);
	return ret;
}

int vd_ns_read_vec(struct vd_ns_file *f, void *buf, size_t len, uint64_t off,
		   struct vd_seg *segs, unsigned max_segs, unsigned *n_r,
		   size_t *got_r)
{
	int ret;

	*n_r = 0;
	*got_r = 0;
	if (f->kind == NS_FS)
		return ns_fs_read_vec(f->ff, buf, len, off, segs, max_segs, n_r,
				      got_r);
	if (off >= f->len)
		return 0;
	len = (size_t)VD_MIN((uint64_t)len, f->len - off);
	ret = vd_disk_read_vec(f->disk, buf, len, f->start + off, segs,
			       max_segs, n_r);
	if (!ret)
		*got_r = len;
	return ret;
}

void vd_ns_prefetch(struct vd_ns_file *f, uint64_t off, uint64_t len)
{
	struct vd_fs_file *ff = f->ff;
	const struct vd_vol *v;
	uint64_t end;

	if (f->kind != NS_FS) {
		if (off < f->len)
			vd_disk_prefetch(f->disk, f->start + off,
					 VD_MIN(len, f->len - off));
		return;
	}
	if (!ff->fs->ops->map || len > SIZE_MAX || off > UINT64_MAX - len)
		return;
	v = ff->fs->vol;
	end = off + len;
	/* Ends: every pass maps at least one byte, or stops. */
	while (off < end) {
		struct vd_fs_piece p[NS_PIECES];
		unsigned n;
		size_t got;

		if (ff->fs->ops->map(ff, off, (size_t)(end - off), p,
				     NS_PIECES, &n, &got) || !got)
			return;
		for (unsigned i = 0; i < n; i++)
			if (!p[i].zero && vd_range_ok(p[i].vol_off, p[i].len,
						      v->len))
				vd_disk_prefetch(v->disk,
						 v->start + p[i].vol_off,
						 p[i].len);
		off += got;
	}
}

int vd_ns_seek(struct vd_ns_file *f, uint64_t off, bool want_data,
	       uint64_t *off_r)
{
	uint64_t res;
	int ret;

	if (f->kind == NS_FS) {
		struct vd_fs *fs = f->ff->fs;
		struct vd_fs_attr a;

		if (fs->ops->seek)
			return fs->ops->seek(f->ff, off, want_data, off_r);
		/* All data: the file's end is its only hole. */
		ret = fs->ops->getattr(fs, f->local, &a);
		if (ret)
			return ret;
		if (off >= a.size)
			return -ENXIO;
		*off_r = want_data ? off : a.size;
		return 0;
	}
	if (off >= f->len)
		return -ENXIO;
	ret = vd_disk_seek(f->disk, f->start + off, want_data, &res);
	if (ret == -ENXIO && !want_data) {
		*off_r = f->len;
		return 0;
	}
	if (ret)
		return ret;
	res -= f->start;
	if (res >= f->len) {
		/* Past the range: no more data in it; its end is a hole. */
		if (want_data)
			return -ENXIO;
		res = f->len;
	}
	*off_r = res;
	return 0;
}

void vd_ns_release(struct vd_ns_file *f)
{
	if (!f)
		return;
	if (f->kind == NS_FS && f->ff->fs->ops->release)
		f->ff->fs->ops->release(f->ff);
	free(f);
}

bool vd_ns_file_range(const struct vd_ns_file *f, uint64_t *start_r,
		      uint64_t *len_r)
{
	if (f->kind != NS_RAW)
		return false;
	*start_r = f->start;
	*len_r = f->len;
	return true;
}
