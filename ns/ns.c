/* The namespace of ns.h: synthetic entries over the image's volumes and
 * the files of their filesystems.
 *
 * Inode numbers. A namespace inode is `volume:16 | local:48`. Volume 0
 * holds the synthetic entries: the root (1), disk.raw (2) and the raw
 * file of volume id N at NS_RAW_BASE + N. Volume number N + 1 holds the
 * files of the filesystem on volume id N, local being the filesystem's
 * own inode number; a filesystem whose numbers do not fit below
 * NS_DIRECT (XFS puts the AG number in the high bits; btrfs pairs a
 * subvolume with an inode) has those numbers mapped to NS_DIRECT + k,
 * k counting the distinct large numbers met so far on that volume
 * (ns_local_in / ns_local_out). The map only grows, so a number, once
 * given, names one inode for the life of the namespace: hard links keep
 * one number, and a front end may cache them.
 *
 * Entries named "." and "..": the namespace gives every directory its
 * own two entries first and drops every entry of those names the
 * filesystem lists (its own two silently, any other with a log line, as
 * drivers drop names holding '/'): a crafted directory cannot show a
 * second "." or "..". So the namespace's readdir cookies are the
 * driver's plus NS_COOKIE_SKIP: 0 starts with ".", 1 resumes at "..",
 * 2 + c resumes the driver at its cookie c; NS_COOKIE_END ends. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ns/ns.h"

/* Volume 0's own numbers besides the root and disk.raw: raw files. */
#define NS_RAW_BASE 0x10000u
/* Local numbers from here on are mapped (see the top of the file). */
#define NS_DIRECT (UINT64_C(1) << 47)
#define NS_LOCAL_MASK ((UINT64_C(1) << VD_NS_VOL_SHIFT) - 1)
/* Readdir cookies below this are the namespace's own "." and "..". */
#define NS_COOKIE_SKIP 2u
/* The cookie after a directory's last entry. Cookies reach FUSE as
 * off_t, so none may pass INT64_MAX; a driver's cookie that would is
 * taken as the driver's own "nothing follows" (ntfs ends with INT64_MAX,
 * an ext inline directory with UINT64_MAX). */
#define NS_COOKIE_END ((uint64_t)INT64_MAX)

/* The large inode numbers of one filesystem met so far: an open-
 * addressing hash from number to index, and the numbers by index. */
struct ns_inomap {
	uint64_t *by_idx;  /* n entries */
	uint32_t *slots;   /* index + 1, 0 when free; cap entries */
	uint64_t n, cap;   /* cap a power of two, n <= cap / 2 */
};

struct ns_vol {
	struct vd_vol *vol;
	struct vd_fs *fs;     /* NULL: no filesystem shown */
	char *error;	      /* why a recognised filesystem is not shown */
	struct ns_inomap map; /* guarded by vd_ns.map_lock */
};

struct ns_ent {
	char name[VD_VOL_LABEL_MAX + 8];
	uint64_t ino;
	unsigned type; /* DT_* */
};

struct vd_ns {
	struct vd_disk *disk;
	struct vd_volset *set;
	struct vd_ns_opts o;
	struct ns_vol *vols; /* by volume id */
	unsigned n_vols;
	struct ns_ent *ents; /* the root directory, "." and ".." first */
	unsigned n_ents;
	unsigned n_dirs; /* directories in the root, for its nlink */
	pthread_mutex_t map_lock;
};

enum ns_kind { NS_RAW, NS_FS };

struct vd_ns_file {
	enum ns_kind kind;
	const struct vd_vol *vol; /* NS_RAW */
	struct vd_fs_file *ff;	  /* NS_FS */
	uint64_t local;		  /* NS_FS: the file's inode */
};

static uint64_t ns_vol_of(uint64_t ino)
{
	return ino >> VD_NS_VOL_SHIFT;
}

static uint64_t ns_ino(unsigned volnum, uint64_t local)
{
	return (uint64_t)volnum << VD_NS_VOL_SHIFT | local;
}

/* ---- the map of large inode numbers */

static uint64_t ns_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

/* The slot holding local, or the free slot where it would go. */
static uint32_t *ns_map_slot(const struct ns_inomap *m, uint64_t local)
{
	uint64_t i = ns_hash(local) & (m->cap - 1);

	/* Ends: the table is never more than half full. */
	while (m->slots[i] && m->by_idx[m->slots[i] - 1] != local)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int ns_map_grow(struct ns_inomap *m)
{
	uint64_t cap = m->cap ? 2 * m->cap : 64;
	struct ns_inomap nm = { .n = m->n, .cap = cap };

	/* Indexes are 32-bit and lie below NS_DIRECT's space. */
	if (cap > UINT32_MAX)
		return -ENOSPC;
	nm.slots = calloc(cap, sizeof(*nm.slots));
	nm.by_idx = realloc(m->by_idx, cap / 2 * sizeof(*nm.by_idx));
	if (!nm.slots || !nm.by_idx) {
		free(nm.slots);
		if (nm.by_idx)
			m->by_idx = nm.by_idx;
		return -ENOMEM;
	}
	for (uint64_t k = 0; k < nm.n; k++)
		*ns_map_slot(&nm, nm.by_idx[k]) = (uint32_t)(k + 1);
	free(m->slots);
	*m = nm;
	return 0;
}

/* The namespace's local number for a filesystem's own inode number. */
static int ns_local_in(struct vd_ns *ns, struct ns_vol *v, uint64_t fs_ino,
		       uint64_t *local_r)
{
	struct ns_inomap *m = &v->map;
	uint32_t *slot;
	int ret = 0;

	if (fs_ino < NS_DIRECT) {
		*local_r = fs_ino;
		return 0;
	}
	pthread_mutex_lock(&ns->map_lock);
	if (m->n + 1 > m->cap / 2)
		ret = ns_map_grow(m);
	if (!ret) {
		slot = ns_map_slot(m, fs_ino);
		if (!*slot) {
			m->by_idx[m->n++] = fs_ino;
			*slot = (uint32_t)m->n;
		}
		*local_r = NS_DIRECT + *slot - 1;
	}
	pthread_mutex_unlock(&ns->map_lock);
	if (ret)
		vd_log(VD_LOG_ERR, "%s: cannot number inode %llu: %s",
		       v->vol->name, (unsigned long long)fs_ino,
		       strerror(-ret));
	return ret;
}

/* The filesystem's own number for a namespace local number. */
static int ns_local_out(struct vd_ns *ns, struct ns_vol *v, uint64_t local,
			uint64_t *fs_ino_r)
{
	int ret = 0;

	if (local < NS_DIRECT) {
		*fs_ino_r = local;
		return 0;
	}
	pthread_mutex_lock(&ns->map_lock);
	if (local - NS_DIRECT < v->map.n)
		*fs_ino_r = v->map.by_idx[local - NS_DIRECT];
	else
		ret = -ENOENT; /* never given out */
	pthread_mutex_unlock(&ns->map_lock);
	return ret;
}

/* ---- volumes */

/* The mounted volume an inode belongs to, and the filesystem's own
 * number of it; NULL for volume 0, a volume without a filesystem, or a
 * number never given out. */
static struct ns_vol *ns_fs_vol(struct vd_ns *ns, uint64_t ino,
				uint64_t *fs_ino_r)
{
	uint64_t num = ns_vol_of(ino);
	struct ns_vol *v;

	if (!num || num > ns->n_vols)
		return NULL;
	v = &ns->vols[num - 1];
	if (!v->fs || ns_local_out(ns, v, ino & NS_LOCAL_MASK, fs_ino_r))
		return NULL;
	return v;
}

static struct ns_vol *ns_raw_vol(const struct vd_ns *ns, uint64_t ino)
{
	if (ns_vol_of(ino) || ino <= NS_RAW_BASE ||
	    ino - NS_RAW_BASE >= ns->n_vols)
		return NULL;
	return &ns->vols[ino - NS_RAW_BASE];
}

static unsigned ns_volnum(const struct ns_vol *v)
{
	return v->vol->id + 1;
}

/* The namespace number of the filesystem's root on v. */
static uint64_t ns_fs_root(struct vd_ns *ns, struct ns_vol *v)
{
	uint64_t local;

	if (ns_local_in(ns, v, v->fs->ops->root(v->fs), &local))
		return VD_NS_ROOT;
	return ns_ino(ns_volnum(v), local);
}

/* Mount what the volume holds, if anything: a filesystem the drivers do
 * not recognise is no error (swap, an empty partition); one they
 * recognise but cannot mount is reported and left out. */
static void ns_mount_vol(const struct vd_ns *ns, struct ns_vol *v,
			 const char *dir)
{
	struct vd_fs_opts fo = {
		.uid = ns->o.uid,
		.gid = ns->o.gid,
		.codepage = ns->o.codepage,
		.writable = vd_disk_writable(ns->disk),
	};
	struct vd_err e = { "" };
	char *root = NULL;
	int ret;

	/* The folder the filesystem is shown as, under the mount point. */
	if (ns->o.mountpoint &&
	    asprintf(&root, "%s/%s", strcmp(ns->o.mountpoint, "/") ?
					     ns->o.mountpoint : "", dir) < 0)
		root = NULL;
	fo.link_root = root;
	ret = vd_fs_mount(v->vol, &fo, &v->fs, &e);
	free(root);
	if (ret)
		v->fs = NULL;
	if (ret && ret != -ENODEV) {
		vd_log(VD_LOG_WARN, "%s; its files are not shown",
		       e.msg[0] ? e.msg : strerror(-ret));
		v->error = strdup(e.msg[0] ? e.msg : strerror(-ret));
	}
	if (!ret)
		v->vol->role = VD_VOL_FS;
}

static void ns_add_ent(struct vd_ns *ns, const char *name, const char *suffix,
		       uint64_t ino, unsigned type)
{
	struct ns_ent *en = &ns->ents[ns->n_ents++];

	snprintf(en->name, sizeof(en->name), "%s%s", name, suffix);
	en->ino = ino;
	en->type = type;
	if (type == DT_DIR && strcmp(name, ".") && strcmp(name, ".."))
		ns->n_dirs++;
}

static int ns_build(struct vd_ns *ns, const char *name)
{
	struct vd_volset_opts so = { .no_partitions = ns->o.no_partitions,
				     .keys = ns->o.keys };
	int ret;

	ret = vd_volset_open(ns->disk, name, &so, &ns->set);
	if (ret)
		return ret;
	ns->n_vols = ns->set->n;
	ns->vols = calloc(ns->n_vols, sizeof(*ns->vols));
	/* ., .., disk.raw, then a raw file and a folder per volume (or
	 * fs/ for the disk). */
	ns->ents = calloc(3 + 2 * (size_t)ns->n_vols, sizeof(*ns->ents));
	if (!ns->vols || !ns->ents)
		return -ENOMEM;
	ns_add_ent(ns, ".", "", VD_NS_ROOT, DT_DIR);
	ns_add_ent(ns, "..", "", VD_NS_ROOT, DT_DIR);
	ns_add_ent(ns, "disk.raw", "", VD_NS_DISK, DT_REG);
	for (unsigned i = 0; i < ns->n_vols; i++) {
		struct ns_vol *v = &ns->vols[i];

		v->vol = ns->set->vols[i];
		/* Only what discovery left raw may hold a filesystem; the
		 * disk only when nothing at all was looked for in it. */
		if (v->vol->role == VD_VOL_RAW && !v->vol->hidden &&
		    !(ns->o.no_partitions && i == 0))
			ns_mount_vol(ns, v, i ? v->vol->label : "fs");
	}
	for (unsigned i = 0; i < ns->n_vols; i++) {
		struct ns_vol *v = &ns->vols[i];

		if (v->vol->hidden)
			continue;
		if (i)
			ns_add_ent(ns, v->vol->label, ".raw", NS_RAW_BASE + i,
				   DT_REG);
		if (v->fs)
			ns_add_ent(ns, i ? v->vol->label : "fs", "",
				   ns_fs_root(ns, v), DT_DIR);
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
	ns->o = *o;
	ns->disk = d;
	pthread_mutex_init(&ns->map_lock, NULL);
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
	for (unsigned i = 0; ns->vols && i < ns->n_vols; i++) {
		struct ns_vol *v = &ns->vols[i];

		if (v->fs)
			v->fs->ops->unmount(v->fs);
		free(v->error);
		free(v->map.by_idx);
		free(v->map.slots);
	}
	free(ns->vols);
	free(ns->ents);
	vd_volset_close(ns->set);
	pthread_mutex_destroy(&ns->map_lock);
	free(ns);
}

const struct vd_volset *vd_ns_volset(const struct vd_ns *ns)
{
	return ns->set;
}

const struct vd_parts *vd_ns_parts(const struct vd_ns *ns)
{
	return ns->set->vols[0]->parts;
}

const char *vd_ns_parts_error(const struct vd_ns *ns)
{
	return ns->set->vols[0]->error;
}

/* The volume of the disk's partition num, or of the disk itself for
 * VD_NS_VOL_WHOLE. */
static const struct ns_vol *ns_part_vol(const struct vd_ns *ns, unsigned num)
{
	if (num == VD_NS_VOL_WHOLE)
		return &ns->vols[0];
	for (unsigned i = 1; i < ns->n_vols; i++) {
		const struct vd_vol *v = ns->vols[i].vol;

		if (v->parent == ns->set->vols[0] && v->desc &&
		    ((const struct vd_part *)v->desc)->num == num)
			return &ns->vols[i];
	}
	return NULL;
}

const char *vd_ns_fs_error(const struct vd_ns *ns, unsigned num)
{
	const struct ns_vol *v = ns_part_vol(ns, num);

	return v ? v->error : NULL;
}

struct vd_fs *vd_ns_fs(const struct vd_ns *ns, unsigned num)
{
	const struct ns_vol *v = ns_part_vol(ns, num);

	return v ? v->fs : NULL;
}

struct vd_fs *vd_ns_vol_fs(const struct vd_ns *ns, unsigned id,
			   const char **error_r)
{
	if (id >= ns->n_vols) {
		*error_r = NULL;
		return NULL;
	}
	*error_r = ns->vols[id].error;
	return ns->vols[id].fs;
}

uint64_t vd_ns_vol_root(struct vd_ns *ns, uint64_t ino)
{
	uint64_t num = ns_vol_of(ino);

	if (!num || num > ns->n_vols || !ns->vols[num - 1].fs)
		return VD_NS_ROOT;
	return ns_fs_root(ns, &ns->vols[num - 1]);
}

static bool ns_is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

int vd_ns_lookup(struct vd_ns *ns, uint64_t dir, const char *name,
		 uint64_t *ino_r)
{
	struct ns_vol *v;
	uint64_t fs_dir, got, local;
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
	v = ns_fs_vol(ns, dir, &fs_dir);
	if (!v)
		return ns_vol_of(dir) || dir == VD_NS_DISK ||
				       ns_raw_vol(ns, dir) ?
			       -ENOTDIR :
			       -ENOENT;
	if (!strcmp(name, ".")) {
		*ino_r = dir;
		return 0;
	}
	/* The filesystem's root leads up to ours. */
	if (!strcmp(name, "..") && fs_dir == v->fs->ops->root(v->fs)) {
		*ino_r = VD_NS_ROOT;
		return 0;
	}
	ret = v->fs->ops->lookup(v->fs, fs_dir, name, &got);
	if (ret)
		return ret;
	ret = ns_local_in(ns, v, got, &local);
	if (ret)
		return -EIO;
	*ino_r = ns_ino(ns_volnum(v), local);
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
	if (S_ISREG(mode)) {
		/* What the image file allows, and to whom: nobody reads
		 * through the mount what the image denies them. */
		a->mode = S_IFREG | (ns->o.raw_mode &
				     (vd_disk_writable(ns->disk) ? 0666 : 0444));
		a->uid = ns->o.raw_uid;
		a->gid = ns->o.raw_gid;
		/* What the image occupies, never more than the file: cp
		 * and tar then treat a sparse disk as sparse. */
		a->blocks = (VD_MIN(vd_disk_host_bytes(ns->disk), size) +
			     511) / 512;
	}
}

int vd_ns_getattr(struct vd_ns *ns, uint64_t ino, struct vd_fs_attr *a_r)
{
	struct ns_vol *v;
	uint64_t fs_ino;
	int ret;

	if (ino == VD_NS_ROOT) {
		ns_synthetic_attr(ns, ino, S_IFDIR | 0555, 0, a_r);
		return 0;
	}
	if (ino == VD_NS_DISK) {
		ns_synthetic_attr(ns, ino, S_IFREG, ns->vols[0].vol->len, a_r);
		return 0;
	}
	v = ns_raw_vol(ns, ino);
	if (v) {
		ns_synthetic_attr(ns, ino, S_IFREG, v->vol->len, a_r);
		return 0;
	}
	v = ns_fs_vol(ns, ino, &fs_ino);
	if (!v)
		return -ENOENT;
	ret = v->fs->ops->getattr(v->fs, fs_ino, a_r);
	if (!ret)
		a_r->ino = ino;
	return ret;
}

struct ns_fill {
	struct vd_ns *ns;
	vd_fs_fill fill;
	void *arg;
	struct ns_vol *v;
	uint64_t dir;	  /* namespace number of the directory listed */
	bool from_start;  /* the driver's listing began at its start */
	bool seen[2];	  /* its own "." and ".." went by */
	int err;
};

static int ns_fill_guest(void *arg, const char *name, uint64_t ino,
			 unsigned type, uint64_t next)
{
	struct ns_fill *f = arg;
	uint64_t local;

	if (ns_is_dot(name)) {
		bool *seen = &f->seen[name[1] == '.'];

		/* The directory's own come first; any other is crafted. */
		if (!f->from_start || *seen)
			vd_log(VD_LOG_WARN, "%s: directory %llu lists a second "
			       "entry named \"%s\"; not shown",
			       f->v->vol->name,
			       (unsigned long long)(f->dir & NS_LOCAL_MASK),
			       name);
		*seen = true;
		return 0;
	}
	if (strchr(name, '/'))
		return 0; /* drivers drop these already (and log them) */
	if (ns_local_in(f->ns, f->v, ino, &local)) {
		f->err = -EIO;
		return 1;
	}
	return f->fill(f->arg, name, ns_ino(ns_volnum(f->v), local), type,
		       next >= NS_COOKIE_END - NS_COOKIE_SKIP ?
			       NS_COOKIE_END :
			       next + NS_COOKIE_SKIP);
}

int vd_ns_readdir(struct vd_ns *ns, uint64_t dir, uint64_t cookie,
		  vd_fs_fill fill, void *arg)
{
	struct ns_fill f = { .ns = ns, .fill = fill, .arg = arg, .dir = dir };
	uint64_t fs_dir, up;
	int ret;

	if (dir == VD_NS_ROOT) {
		for (uint64_t i = cookie; i < ns->n_ents; i++)
			if (fill(arg, ns->ents[i].name, ns->ents[i].ino,
				 ns->ents[i].type, i + 1))
				break;
		return 0;
	}
	f.v = ns_fs_vol(ns, dir, &fs_dir);
	if (!f.v)
		return ns_vol_of(dir) ? -ENOENT : -ENOTDIR;
	if (cookie >= NS_COOKIE_END)
		return 0;
	if (cookie == 0 && fill(arg, ".", dir, DT_DIR, 1))
		return 0;
	if (cookie <= 1) {
		if (vd_ns_lookup(ns, dir, "..", &up))
			up = dir; /* a directory without one: itself */
		if (fill(arg, "..", up, DT_DIR, 2))
			return 0;
		cookie = NS_COOKIE_SKIP;
	}
	f.from_start = cookie == NS_COOKIE_SKIP;
	ret = f.v->fs->ops->readdir(f.v->fs, fs_dir, cookie - NS_COOKIE_SKIP,
				    ns_fill_guest, &f);
	return ret ? ret : f.err;
}

int vd_ns_readlink(struct vd_ns *ns, uint64_t ino, char *buf, size_t size)
{
	uint64_t fs_ino;
	struct ns_vol *v = ns_fs_vol(ns, ino, &fs_ino);

	if (!v)
		return -EINVAL;
	return v->fs->ops->readlink(v->fs, fs_ino, buf, size);
}

int vd_ns_listxattr(struct vd_ns *ns, uint64_t ino, char *buf, size_t size,
		    size_t *len_r)
{
	uint64_t fs_ino;
	struct ns_vol *v = ns_fs_vol(ns, ino, &fs_ino);

	if (!v || !v->fs->ops->listxattr) {
		*len_r = 0;
		return 0;
	}
	return v->fs->ops->listxattr(v->fs, fs_ino, buf, size, len_r);
}

bool vd_ns_lists_no_xattrs(const struct vd_ns *ns)
{
	for (unsigned i = 0; i < ns->n_vols; i++)
		if (ns->vols[i].fs && !ns->vols[i].fs->lists_no_xattrs)
			return false;
	return true;
}

int vd_ns_getxattr(struct vd_ns *ns, uint64_t ino, const char *name,
		   void *buf, size_t size, size_t *len_r)
{
	uint64_t fs_ino;
	struct ns_vol *v = ns_fs_vol(ns, ino, &fs_ino);

	if (!v || !v->fs->ops->getxattr)
		return -ENODATA;
	return v->fs->ops->getxattr(v->fs, fs_ino, name, buf, size, len_r);
}

int vd_ns_statfs(struct vd_ns *ns, uint64_t ino, struct statvfs *st_r)
{
	uint64_t fs_ino;
	struct ns_vol *v = ns_fs_vol(ns, ino, &fs_ino);

	if (v && v->fs->ops->statfs)
		return v->fs->ops->statfs(v->fs, st_r);
	memset(st_r, 0, sizeof(*st_r));
	st_r->f_bsize = st_r->f_frsize = 4096;
	st_r->f_blocks = (ns->vols[0].vol->len + 4095) / 4096;
	st_r->f_files = ns->n_ents - 2;
	st_r->f_namemax = 255;
	st_r->f_flag = ST_RDONLY;
	return 0;
}

int vd_ns_open_file(struct vd_ns *ns, uint64_t ino, struct vd_ns_file **f_r)
{
	struct vd_ns_file *f;
	struct ns_vol *v;
	uint64_t fs_ino;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (ino == VD_NS_DISK) {
		f->kind = NS_RAW;
		f->vol = ns->vols[0].vol;
	} else if ((v = ns_raw_vol(ns, ino))) {
		f->kind = NS_RAW;
		f->vol = v->vol;
	} else if ((v = ns_fs_vol(ns, ino, &fs_ino))) {
		f->kind = NS_FS;
		f->local = fs_ino;
		ret = v->fs->ops->open(v->fs, fs_ino, &f->ff);
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
	if (off >= f->vol->len) {
		*got_r = 0;
		return 0;
	}
	len = (size_t)VD_MIN((uint64_t)len, f->vol->len - off);
	ret = vd_vol_read(f->vol, buf, len, off);
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
	if (off >= f->vol->len)
		return 0;
	len = (size_t)VD_MIN((uint64_t)len, f->vol->len - off);
	ret = vd_vol_read_vec(f->vol, buf, len, off, segs, max_segs, n_r);
	if (!ret) {
		*n_r = ns_segs_merge(segs, *n_r);
		*got_r = len;
	}
	return ret;
}

void vd_ns_prefetch(struct vd_ns_file *f, uint64_t off, uint64_t len)
{
	struct vd_fs_file *ff = f->ff;
	const struct vd_vol *v;
	uint64_t end;

	if (f->kind != NS_FS) {
		vd_vol_prefetch(f->vol, off, len);
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
				vd_vol_prefetch(v, p[i].vol_off, p[i].len);
		off += got;
	}
}

int vd_ns_seek(struct vd_ns_file *f, uint64_t off, bool want_data,
	       uint64_t *off_r)
{
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
	return vd_vol_seek(f->vol, off, want_data, off_r);
}

void vd_ns_release(struct vd_ns_file *f)
{
	if (!f)
		return;
	if (f->kind == NS_FS && f->ff->fs->ops->release)
		f->ff->fs->ops->release(f->ff);
	free(f);
}

bool vd_ns_file_is_raw(const struct vd_ns_file *f)
{
	return f->kind == NS_RAW;
}

int vd_ns_write(struct vd_ns_file *f, const void *buf, size_t len,
		uint64_t off, size_t *put_r)
{
	int ret;

	*put_r = 0;
	if (f->kind == NS_FS) {
		struct vd_fs *fs = f->ff->fs;

		if (!fs->writable || !fs->ops->write)
			return -EROFS;
		return fs->ops->write(f->ff, buf, len, off, put_r);
	}
	if (!len)
		return 0;
	/* As a block device: nothing past the end. */
	if (off >= f->vol->len)
		return -ENOSPC;
	len = (size_t)VD_MIN((uint64_t)len, f->vol->len - off);
	ret = vd_vol_write(f->vol, buf, len, off);
	if (!ret)
		*put_r = len;
	return ret;
}

int vd_ns_fallocate(struct vd_ns_file *f, int mode, uint64_t off,
		    uint64_t len)
{
	struct vd_fs *fs;

	if (f->kind != NS_FS)
		return -EOPNOTSUPP;
	fs = f->ff->fs;
	if (!fs->writable)
		return -EROFS;
	if (!fs->ops->fallocate)
		return -EOPNOTSUPP;
	return fs->ops->fallocate(f->ff, mode, off, len);
}

bool vd_ns_writable(const struct vd_ns *ns)
{
	return vd_disk_writable(ns->disk);
}

/* The filesystem's changes made durable, then the disk's. */
static int ns_sync_fs(struct vd_ns *ns, struct ns_vol *v)
{
	int ret = 0;

	if (v && v->fs && v->fs->writable && v->fs->ops->sync)
		ret = v->fs->ops->sync(v->fs);
	(void)ns;
	return ret;
}

int vd_ns_flush(struct vd_ns *ns)
{
	int ret = 0, r;

	for (unsigned i = 0; i < ns->n_vols; i++) {
		r = ns_sync_fs(ns, &ns->vols[i]);
		if (r && !ret)
			ret = r;
	}
	r = vd_disk_flush(ns->disk);
	return ret ? ret : r;
}

int vd_ns_fsync(struct vd_ns *ns, uint64_t ino)
{
	uint64_t fs_ino;
	int ret;

	if (!vd_disk_writable(ns->disk))
		return 0;
	ret = ns_sync_fs(ns, ns_fs_vol(ns, ino, &fs_ino));
	if (ret)
		return ret;
	return vd_disk_flush(ns->disk);
}

/* ---- changes to guest trees */

/* The filesystem ino lies on, when it may be changed: -EROFS for the
 * synthetic entries and for filesystems mounted read-only. */
static int ns_wvol(struct vd_ns *ns, uint64_t ino, struct ns_vol **v_r,
		   uint64_t *fs_ino_r)
{
	struct ns_vol *v = ns_fs_vol(ns, ino, fs_ino_r);

	if (!v)
		return ns_vol_of(ino) ? -ENOENT : -EROFS;
	if (!v->fs->writable)
		return -EROFS;
	*v_r = v;
	return 0;
}

bool vd_ns_can_change(struct vd_ns *ns, uint64_t ino)
{
	struct ns_vol *v;
	uint64_t fs_ino;

	return !ns_wvol(ns, ino, &v, &fs_ino);
}

/* The namespace number of a new inode of v. */
static int ns_new_ino(struct vd_ns *ns, struct ns_vol *v, uint64_t got,
		      uint64_t *ino_r)
{
	uint64_t local;

	if (ns_local_in(ns, v, got, &local))
		return -EIO;
	*ino_r = ns_ino(ns_volnum(v), local);
	return 0;
}

#define NS_WOP(v, op) ((v)->fs->ops->op ? 0 : -EROFS)

int vd_ns_mknod(struct vd_ns *ns, uint64_t dir, const char *name,
		mode_t mode, dev_t rdev, const struct vd_fs_cred *c,
		uint64_t *ino_r)
{
	struct ns_vol *v;
	uint64_t fs_dir, got;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = NS_WOP(v, mknod);
	if (!ret)
		ret = v->fs->ops->mknod(v->fs, fs_dir, name, mode, rdev, c,
					&got);
	return ret ? ret : ns_new_ino(ns, v, got, ino_r);
}

int vd_ns_mkdir(struct vd_ns *ns, uint64_t dir, const char *name,
		mode_t mode, const struct vd_fs_cred *c, uint64_t *ino_r)
{
	struct ns_vol *v;
	uint64_t fs_dir, got;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = NS_WOP(v, mkdir);
	if (!ret)
		ret = v->fs->ops->mkdir(v->fs, fs_dir, name, mode, c, &got);
	return ret ? ret : ns_new_ino(ns, v, got, ino_r);
}

int vd_ns_symlink(struct vd_ns *ns, uint64_t dir, const char *name,
		  const char *target, const struct vd_fs_cred *c,
		  uint64_t *ino_r)
{
	struct ns_vol *v;
	uint64_t fs_dir, got;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = NS_WOP(v, symlink);
	if (!ret)
		ret = v->fs->ops->symlink(v->fs, fs_dir, name, target, c, &got);
	return ret ? ret : ns_new_ino(ns, v, got, ino_r);
}

int vd_ns_link(struct vd_ns *ns, uint64_t ino, uint64_t dir,
	       const char *name)
{
	struct ns_vol *v, *dv;
	uint64_t fs_ino, fs_dir;
	int ret = ns_wvol(ns, ino, &v, &fs_ino);

	if (!ret)
		ret = ns_wvol(ns, dir, &dv, &fs_dir);
	if (ret == -EROFS && ns_vol_of(ino) != ns_vol_of(dir))
		ret = -EXDEV;
	if (!ret && dv != v)
		ret = -EXDEV;
	if (!ret)
		ret = NS_WOP(v, link);
	return ret ? ret : v->fs->ops->link(v->fs, fs_ino, fs_dir, name);
}

int vd_ns_unlink(struct vd_ns *ns, uint64_t dir, const char *name)
{
	struct ns_vol *v;
	uint64_t fs_dir;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = NS_WOP(v, unlink);
	return ret ? ret : v->fs->ops->unlink(v->fs, fs_dir, name);
}

int vd_ns_rmdir(struct vd_ns *ns, uint64_t dir, const char *name)
{
	struct ns_vol *v;
	uint64_t fs_dir;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = NS_WOP(v, rmdir);
	return ret ? ret : v->fs->ops->rmdir(v->fs, fs_dir, name);
}

int vd_ns_rename(struct vd_ns *ns, uint64_t dir, const char *name,
		 uint64_t newdir, const char *newname, unsigned flags)
{
	struct ns_vol *v, *nv;
	uint64_t fs_dir, fs_newdir;
	int ret = ns_wvol(ns, dir, &v, &fs_dir);

	if (!ret)
		ret = ns_wvol(ns, newdir, &nv, &fs_newdir);
	if (ret == -EROFS && ns_vol_of(dir) != ns_vol_of(newdir) &&
	    ns_vol_of(dir) && ns_vol_of(newdir))
		ret = -EXDEV;
	if (!ret && nv != v)
		ret = -EXDEV;
	if (!ret)
		ret = NS_WOP(v, rename);
	return ret ? ret : v->fs->ops->rename(v->fs, fs_dir, name, fs_newdir,
					      newname, flags);
}

int vd_ns_setattr(struct vd_ns *ns, uint64_t ino,
		  const struct vd_fs_setattr *s)
{
	struct ns_vol *v;
	uint64_t fs_ino;
	int ret = ns_wvol(ns, ino, &v, &fs_ino);

	if (!ret)
		ret = NS_WOP(v, setattr);
	return ret ? ret : v->fs->ops->setattr(v->fs, fs_ino, s);
}

int vd_ns_setxattr(struct vd_ns *ns, uint64_t ino, const char *name,
		   const void *value, size_t size, int flags)
{
	struct ns_vol *v;
	uint64_t fs_ino;
	int ret = ns_wvol(ns, ino, &v, &fs_ino);

	if (!ret)
		ret = NS_WOP(v, setxattr);
	return ret ? ret : v->fs->ops->setxattr(v->fs, fs_ino, name, value,
						size, flags);
}

int vd_ns_removexattr(struct vd_ns *ns, uint64_t ino, const char *name)
{
	struct ns_vol *v;
	uint64_t fs_ino;
	int ret = ns_wvol(ns, ino, &v, &fs_ino);

	if (!ret)
		ret = NS_WOP(v, removexattr);
	return ret ? ret : v->fs->ops->removexattr(v->fs, fs_ino, name);
}
