/* vdtool cp: copy files out of the tree, as cp -a would from a mount.
 *
 * The guest is hostile and the destination is the user's own disk, so
 * every path is created relative to a directory fd that this walk opened
 * itself: openat/mkdirat/symlinkat/mknodat/linkat with O_NOFOLLOW,
 * O_EXCL and AT_SYMLINK_NOFOLLOW. A guest name is one path component or
 * nothing ("", ".", ".." and names holding '/' are refused), and no
 * symlink at the destination is ever followed — not one this copy made
 * from a guest symlink, not one that was there before. So whatever the
 * image holds (a symlink "evil -> /etc" followed by a directory "evil"
 * with files in it, say), nothing is written outside DEST.
 *
 * An existing non-directory at the destination is replaced (removed
 * first, as cp --remove-destination: never written through, so a hard
 * link in DEST to a file elsewhere is not changed); an existing
 * directory is merged into; a non-directory where a directory must go,
 * or the reverse, is an error for that entry.
 *
 * Regular files are written sparse: holes of the guest file (SEEK_DATA /
 * SEEK_HOLE through vd_ns_seek) and all-zero 4 KiB blocks of its data are
 * not written, and the file is then cut to its size. Files sharing one
 * namespace inode (hard links) are linked to the first copy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/util.h"
#include "tool/vdtool.h"

#define CP_CHUNK (1u << 20)
/* Directory levels copied: one fd is open per level. */
#define CP_MAX_DEPTH 1000
#define CP_LINK_MAX 4096
/* xattr list and value sizes accepted (ext's limit is one block). */
#define CP_XATTR_MAX 65536
/* Nodes the pre-walk for the progress bar's total visits before it
 * gives up (the total is then unknown). */
#define CP_SUM_BUDGET 2000000

/* What was copied where, by namespace inode: hard-linked files (to link
 * the later names to the first copy) and directories (a hostile
 * filesystem may link one into two places, or into itself). */
struct cp_seen {
	uint64_t ino; /* 0: free slot (namespace inodes are never 0) */
	char *rel;    /* the copy, relative to cp->basefd */
	bool dir;
};

struct cp {
	struct vd_ns *ns;
	bool recursive, preserve, verbose;
	bool root; /* owners can be set */
	mode_t umask;
	int status;
	int basefd;	     /* the folder the top-level copies go in */
	const char *basestr; /* its name, for -v */
	char *buf;
	char *xbuf, *xval; /* CP_XATTR_MAX each */
	struct cp_seen *seen;
	size_t nseen, cap; /* cap: a power of two */
	struct vdt_progress prog;
};

static void cp_fail(struct cp *cp, const char *gpath, const char *what,
		    int err)
{
	char *e = vdt_escape(gpath);

	if (what && err)
		vdt_error("%s: %s: %s", e ? e : "?", what, strerror(err));
	else if (what)
		vdt_error("%s: %s", e ? e : "?", what);
	else
		vdt_error("%s: %s", e ? e : "?", strerror(err));
	free(e);
	cp->status = VDT_EXIT_FAIL;
}

static char *cp_join(const char *a, const char *b)
{
	char *p;
	size_t n = strlen(a);

	if (!n)
		return strdup(b);
	if (asprintf(&p, "%s%s%s", a, a[n - 1] == '/' ? "" : "/", b) < 0)
		return NULL;
	return p;
}

/* -v: "'GUEST' -> 'DEST/REL'" ("=>" for a hard link), names escaped. */
static void cp_said(const struct cp *cp, const char *gpath, const char *rel,
		    const char *arrow)
{
	if (!cp->verbose)
		return;
	putchar('\'');
	vdt_put_escaped(stdout, gpath);
	printf("' %s '%s%s", arrow, cp->basestr, *rel ? "/" : "");
	vdt_put_escaped(stdout, rel);
	fputs("'\n", stdout);
}

/* ------------------------------------------------------------ seen map */

static struct cp_seen *cp_seen_slot(struct cp_seen *t, size_t cap,
				    uint64_t ino)
{
	size_t i = (size_t)(ino * UINT64_C(0x9e3779b97f4a7c15) >> 20) &
		   (cap - 1);

	while (t[i].ino && t[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static const struct cp_seen *cp_seen_find(const struct cp *cp, uint64_t ino)
{
	const struct cp_seen *s;

	if (!cp->cap)
		return NULL;
	s = cp_seen_slot(cp->seen, cp->cap, ino);
	return s->ino ? s : NULL;
}

static int cp_seen_add(struct cp *cp, uint64_t ino, const char *rel,
		       bool dir)
{
	struct cp_seen *s;

	if (2 * (cp->nseen + 1) > cp->cap) {
		size_t cap = cp->cap ? 2 * cp->cap : 256;
		struct cp_seen *t = calloc(cap, sizeof(*t));

		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < cp->cap; i++)
			if (cp->seen[i].ino)
				*cp_seen_slot(t, cap, cp->seen[i].ino) =
					cp->seen[i];
		free(cp->seen);
		cp->seen = t;
		cp->cap = cap;
	}
	s = cp_seen_slot(cp->seen, cp->cap, ino);
	if (s->ino)
		return 0;
	s->rel = strdup(rel);
	if (!s->rel)
		return -ENOMEM;
	s->ino = ino;
	s->dir = dir;
	cp->nseen++;
	return 0;
}

/* -------------------------------------------------------- destination */

/* Make room for a non-directory called name in dfd: an existing
 * non-directory is removed (never followed), a directory is an error.
 * 0 or -errno (-EISDIR for a directory). */
static int cp_make_room(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (unlinkat(dfd, name, 0))
		return -errno;
	return 0;
}

/* The directory holding rel (relative to basefd), opened component by
 * component with O_NOFOLLOW, so it is one this copy made; *name_r points
 * into rel at the last component. -1 with errno set. */
static int cp_open_parent(const struct cp *cp, const char *rel,
			  const char **name_r)
{
	char *p = strdup(rel), *s, *comp;
	int fd, nfd;

	if (!p)
		return -1;
	fd = dup(cp->basefd);
	comp = p;
	while (fd >= 0 && (s = strchr(comp, '/'))) {
		*s = '\0';
		nfd = openat(fd, comp,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = nfd;
		comp = s + 1;
	}
	*name_r = rel + (comp - p);
	free(p);
	return fd;
}

/* ------------------------------------------------------------ attributes */

static mode_t cp_mode(const struct cp *cp, const struct vd_fs_attr *a)
{
	if (!cp->preserve)
		return a->mode & 0777 & ~cp->umask;
	/* As cp -p: set-id bits only when the owner is the guest's too. */
	return a->mode & (cp->root ? 07777 : 01777);
}

/* Copy the guest's xattrs (-p), as cp -a does: whatever the destination
 * refuses (a namespace it does not support, no privilege) is skipped
 * silently. fd >= 0: set through it; else through "/proc/self/fd/DFD/
 * NAME" without following NAME (symlinks and device nodes cannot be
 * opened for this). */
static void cp_xattrs(struct cp *cp, uint64_t ino, int fd, int dfd,
		      const char *name)
{
	char path[64 + 256];
	size_t len, vlen;

	if (vd_ns_listxattr(cp->ns, ino, cp->xbuf, CP_XATTR_MAX, &len) ||
	    !len || len > CP_XATTR_MAX)
		return;
	if (fd < 0 && snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd,
			       name) >= (int)sizeof(path))
		return;
	for (size_t off = 0; off < len;) {
		const char *x = cp->xbuf + off;
		size_t n = strnlen(x, len - off);

		if (n == len - off)
			break; /* no NUL: a damaged list */
		off += n + 1;
		if (!n)
			continue;
		if (vd_ns_getxattr(cp->ns, ino, x, cp->xval, CP_XATTR_MAX,
				   &vlen))
			continue;
		if (fd >= 0)
			(void)fsetxattr(fd, x, cp->xval, vlen, 0);
		else
			(void)lsetxattr(path, x, cp->xval, vlen, 0);
	}
}

/* Owner, mode, xattrs, times — in that order: chown clears set-id bits,
 * and setting an ACL after chmod keeps the guest's mask. fd >= 0 is the
 * open node; else the node is name in dfd (not followed). */
static void cp_attrs(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		     int fd, int dfd, const char *name, const char *gpath)
{
	struct timespec ts[2] = { a->atime, a->mtime };
	int r;

	if (cp->preserve && cp->root) {
		r = fd >= 0 ? fchown(fd, a->uid, a->gid) :
			      fchownat(dfd, name, a->uid, a->gid,
				       AT_SYMLINK_NOFOLLOW);
		if (r)
			cp_fail(cp, gpath, "setting the owner", errno);
	}
	if (!S_ISLNK(a->mode)) {
		r = fd >= 0 ? fchmod(fd, cp_mode(cp, a)) :
			      fchmodat(dfd, name, cp_mode(cp, a),
				       AT_SYMLINK_NOFOLLOW);
		if (r)
			cp_fail(cp, gpath, "setting the mode", errno);
	}
	if (!cp->preserve)
		return;
	cp_xattrs(cp, ino, fd, dfd, name);
	r = fd >= 0 ? futimens(fd, ts) :
		      utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (r)
		cp_fail(cp, gpath, "setting the times", errno);
}

/* ------------------------------------------------------------ files */

/* The data of ino into fd; 0 or a reported failure (-1). */
static int cp_data(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		   int fd, const char *gpath)
{
	struct vd_ns_file *f;
	uint64_t off = 0, data, hole, pos, ahead = 0, from, n;
	size_t got;
	int ret;

	ret = vd_ns_open_file(cp->ns, ino, &f);
	if (ret) {
		cp_fail(cp, gpath, NULL, -ret);
		return -1;
	}
	while (off < a->size) {
		ret = vd_ns_seek(f, off, true, &data);
		if (ret == -ENXIO)
			break;
		if (!ret)
			ret = vd_ns_seek(f, data, false, &hole);
		if (ret) {
			cp_fail(cp, gpath, "finding its data", -ret);
			goto fail;
		}
		if (data < off || hole <= data || data > a->size)
			break; /* no progress: treat the rest as a hole */
		hole = VD_MIN(hole, a->size);
		vdt_progress_add(&cp->prog, data - off);
		for (pos = data; pos < hole; pos += got) {
			size_t want = (size_t)VD_MIN((uint64_t)CP_CHUNK,
						     hole - pos);

			if ((n = vdt_ahead(&ahead, pos, hole, &from)))
				vd_ns_prefetch(f, from, n);
			ret = vd_ns_read(f, cp->buf, want, pos, &got);
			if (ret) {
				char what[64];

				snprintf(what, sizeof(what),
					 "read at byte %llu",
					 (unsigned long long)pos);
				cp_fail(cp, gpath, what, -ret);
				goto fail;
			}
			if (!got)
				break;
			ret = vdt_pwrite_sparse(fd, cp->buf, got, pos);
			if (ret) {
				cp_fail(cp, gpath, "write", -ret);
				goto fail;
			}
			vdt_progress_add(&cp->prog, got);
		}
		off = hole;
	}
	if (off < a->size)
		vdt_progress_add(&cp->prog, a->size - off);
	if (ftruncate(fd, (off_t)a->size)) {
		cp_fail(cp, gpath, "setting the size", errno);
		goto fail;
	}
	vd_ns_release(f);
	return 0;
fail:
	vd_ns_release(f);
	return -1;
}

static int cp_file(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		   int dfd, const char *name, const char *gpath)
{
	const int fl = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd, ret;

	fd = openat(dfd, name, fl, 0600);
	if (fd < 0 && errno == EEXIST) {
		ret = cp_make_room(dfd, name);
		if (ret) {
			cp_fail(cp, gpath, ret == -EISDIR ?
				"cannot overwrite a directory with a file" :
				"cannot replace the destination", -ret);
			return -1;
		}
		fd = openat(dfd, name, fl, 0600);
	}
	if (fd < 0) {
		cp_fail(cp, gpath, "cannot create the copy", errno);
		return -1;
	}
	if (cp_data(cp, ino, a, fd, gpath)) {
		close(fd);
		return -1;
	}
	cp_attrs(cp, ino, a, fd, dfd, name, gpath);
	if (close(fd)) {
		cp_fail(cp, gpath, "write", errno);
		return -1;
	}
	return 0;
}

static int cp_symlink(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		      int dfd, const char *name, const char *gpath)
{
	char target[CP_LINK_MAX];
	int ret;

	ret = vd_ns_readlink(cp->ns, ino, target, sizeof(target));
	if (ret) {
		cp_fail(cp, gpath, NULL, -ret);
		return -1;
	}
	if (strlen(target) >= sizeof(target) - 1) {
		cp_fail(cp, gpath, "symlink target too long", ENAMETOOLONG);
		return -1;
	}
	/* The target is stored as the guest has it, never followed. */
	if (symlinkat(target, dfd, name)) {
		ret = errno == EEXIST ? cp_make_room(dfd, name) : -errno;
		if (!ret && symlinkat(target, dfd, name))
			ret = -errno;
		if (ret) {
			cp_fail(cp, gpath, ret == -EISDIR ?
				"cannot overwrite a directory with a symlink" :
				"cannot create the symlink", ret == -EISDIR ?
				0 : -ret);
			return -1;
		}
	}
	if (cp->preserve)
		cp_attrs(cp, ino, a, -1, dfd, name, gpath);
	return 0;
}

/* Device nodes, fifos, sockets: made as cp -a makes them. */
static int cp_special(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		      int dfd, const char *name, const char *gpath)
{
	mode_t type = a->mode & S_IFMT;
	int ret;

	for (int tries = 0; tries < 2; tries++) {
		if (!mknodat(dfd, name, type | 0600,
			     S_ISCHR(type) || S_ISBLK(type) ? a->rdev : 0))
			break;
		if (errno == EPERM && !cp->root &&
		    (S_ISCHR(type) || S_ISBLK(type))) {
			char *e = vdt_escape(gpath);

			vdt_error("%s: a device node needs root; skipped",
				  e ? e : "?");
			free(e);
			return 0;
		}
		if (errno != EEXIST || tries) {
			cp_fail(cp, gpath, "cannot create the node", errno);
			return -1;
		}
		ret = cp_make_room(dfd, name);
		if (ret) {
			cp_fail(cp, gpath, "cannot replace the destination",
				-ret);
			return -1;
		}
	}
	cp_attrs(cp, ino, a, -1, dfd, name, gpath);
	return 0;
}

/* A second name of an inode copied before: a hard link to that copy.
 * 0, or -1 (reported). */
static int cp_link(struct cp *cp, const struct cp_seen *s, int dfd,
		   const char *name, const char *gpath)
{
	const char *oname;
	int ofd = cp_open_parent(cp, s->rel, &oname), ret = 0;

	if (ofd < 0) {
		cp_fail(cp, gpath, "cannot reach the first copy to link to",
			errno);
		return -1;
	}
	if (linkat(ofd, oname, dfd, name, 0)) {
		ret = errno == EEXIST ? cp_make_room(dfd, name) : -errno;
		if (!ret && linkat(ofd, oname, dfd, name, 0))
			ret = -errno;
	}
	close(ofd);
	if (ret) {
		cp_fail(cp, gpath, "cannot make the hard link", -ret);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ the walk */

static bool cp_name_ok(const char *name)
{
	return *name && strcmp(name, ".") && strcmp(name, "..") &&
	       !strchr(name, '/');
}

static void cp_node(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		    int dfd, const char *name, const char *gpath,
		    const char *rel, unsigned depth);

/* The entries of guest directory ino into dfd. */
static void cp_contents(struct cp *cp, uint64_t ino, int dfd,
			const char *gpath, const char *rel, unsigned depth)
{
	struct vdt_dirent *e;
	size_t n;
	int ret;

	ret = vdt_readdir(cp->ns, ino, &e, &n);
	if (ret) {
		cp_fail(cp, gpath, "reading the directory", -ret);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *nm = e[i].name;
		struct vd_fs_attr a;
		char *gp, *rp;

		if (!strcmp(nm, ".") || !strcmp(nm, ".."))
			continue;
		gp = cp_join(gpath, nm);
		rp = cp_join(rel, nm);
		if (!gp || !rp) {
			cp_fail(cp, gpath, NULL, ENOMEM);
		} else if (!cp_name_ok(nm)) {
			cp_fail(cp, gp, "a name no path can hold; skipped", 0);
		} else if ((ret = vd_ns_getattr(cp->ns, e[i].ino, &a))) {
			cp_fail(cp, gp, NULL, -ret);
		} else {
			cp_node(cp, e[i].ino, &a, dfd, nm, gp, rp, depth + 1);
		}
		free(gp);
		free(rp);
	}
	vdt_dirents_free(e, n);
}

static void cp_dir(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		   int dfd, const char *name, const char *gpath,
		   const char *rel, unsigned depth)
{
	const struct cp_seen *s = cp_seen_find(cp, ino);
	bool made;
	int fd;

	if (s) {
		char *e = vdt_escape(s->rel);
		char what[160];

		/* A directory has one name: a second one is a hostile or
		 * damaged filesystem (or a loop); copied once only. */
		snprintf(what, sizeof(what), "the same directory as '%.100s' "
			 "(copied once only)", e ? e : "?");
		free(e);
		cp_fail(cp, gpath, what, 0);
		return;
	}
	if (depth > CP_MAX_DEPTH) {
		cp_fail(cp, gpath, "too deep", ELOOP);
		return;
	}
	if (cp_seen_add(cp, ino, rel, true)) {
		cp_fail(cp, gpath, NULL, ENOMEM);
		return;
	}
	made = !mkdirat(dfd, name, 0700);
	if (!made && errno != EEXIST) {
		cp_fail(cp, gpath, "cannot create the directory", errno);
		return;
	}
	/* Never through a symlink: an existing one (made from a guest
	 * symlink of the same name, or there before) fails with ELOOP. */
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		cp_fail(cp, gpath, errno == ELOOP || errno == ENOTDIR ?
			"cannot overwrite a non-directory with a directory" :
			"cannot open the directory", errno == ELOOP || errno ==
			ENOTDIR ? 0 : errno);
		return;
	}
	cp_said(cp, gpath, rel, "->");
	cp_contents(cp, ino, fd, gpath, rel, depth);
	/* After the contents, so the times stay (and a read-only mode
	 * does not stop the copy). */
	if (made || cp->preserve)
		cp_attrs(cp, ino, a, fd, dfd, name, gpath);
	close(fd);
}

static void cp_node(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		    int dfd, const char *name, const char *gpath,
		    const char *rel, unsigned depth)
{
	const struct cp_seen *s;
	int ret;

	if (S_ISDIR(a->mode)) {
		if (!cp->recursive) {
			char *e = vdt_escape(gpath);

			vdt_error("-r not specified; omitting directory '%s'",
				  e ? e : "?");
			free(e);
			cp->status = VDT_EXIT_FAIL;
			return;
		}
		cp_dir(cp, ino, a, dfd, name, gpath, rel, depth);
		return;
	}
	if (a->nlink > 1 && (s = cp_seen_find(cp, ino)) && !s->dir) {
		if (!cp_link(cp, s, dfd, name, gpath))
			cp_said(cp, gpath, rel, "=>");
		if (S_ISREG(a->mode))
			vdt_progress_add(&cp->prog, a->size);
		return;
	}
	if (S_ISREG(a->mode))
		ret = cp_file(cp, ino, a, dfd, name, gpath);
	else if (S_ISLNK(a->mode))
		ret = cp_symlink(cp, ino, a, dfd, name, gpath);
	else
		ret = cp_special(cp, ino, a, dfd, name, gpath);
	if (ret)
		return;
	cp_said(cp, gpath, rel, "->");
	if (a->nlink > 1 && cp_seen_add(cp, ino, rel, false))
		cp_fail(cp, gpath, NULL, ENOMEM);
}

/* Bytes of regular files under ino, for the progress bar; *budget
 * counts nodes down, so a hostile tree (a directory linked into itself
 * or a thousand times) ends the walk. */
static uint64_t cp_sum(struct cp *cp, uint64_t ino, const struct vd_fs_attr *a,
		       long *budget, unsigned depth)
{
	struct vdt_dirent *e;
	struct vd_fs_attr ca;
	uint64_t sum = 0;
	size_t n;

	if (--*budget < 0)
		return 0;
	if (S_ISREG(a->mode))
		return a->size;
	if (!S_ISDIR(a->mode) || !cp->recursive || depth > CP_MAX_DEPTH ||
	    vdt_readdir(cp->ns, ino, &e, &n))
		return 0;
	for (size_t i = 0; i < n && *budget >= 0; i++)
		if (strcmp(e[i].name, ".") && strcmp(e[i].name, "..") &&
		    !vd_ns_getattr(cp->ns, e[i].ino, &ca))
			sum += cp_sum(cp, e[i].ino, &ca, budget, depth + 1);
	vdt_dirents_free(e, n);
	return sum;
}

/* ------------------------------------------------------------ command */

static void cp_usage(FILE *f)
{
	fprintf(f,
"usage: vdtool cp [-r] [-p] [-a] [-v] [-q] [options] IMAGE PATH... DEST\n"
"Copy PATHs of the tree (as a vdmount mount shows it: /pN/..., /pN.raw,\n"
"/disk.raw) out of IMAGE, as cp -a would from a mount: symlinks as\n"
"symlinks, hard links as hard links, sparse files sparse. If DEST is a\n"
"directory the copies go inside it; else the only PATH is copied as\n"
"DEST. Nothing is ever written outside DEST, whatever the image holds.\n"
"\n"
"  -r, -R, --recursive  copy directories and what they hold\n"
"  -p, --preserve       keep modes, times, xattrs, and owners (as root)\n"
"  -a, --archive        -r and -p\n"
"  -v, --verbose        name each file as it is copied\n"
"  -q, --quiet          no progress bar (it is drawn only on a terminal)\n"
"\n%s", vdt_common_help);
}

/* The last component of p (trailing slashes ignored), in a new string;
 * "" for "/". */
static char *cp_base(const char *p)
{
	size_t n = strlen(p), s;

	while (n && p[n - 1] == '/')
		n--;
	s = n;
	while (s && p[s - 1] != '/')
		s--;
	return strndup(p + s, n - s);
}

static void cp_top(struct cp *cp, const char *path, int destfd, int parentfd,
		   const char *asname)
{
	struct vd_fs_attr a;
	uint64_t ino;
	char *base = NULL;
	int ret;

	/* As cp -r: a symlink named on the command line is copied as a
	 * symlink; without -r it is followed. */
	ret = vdt_resolve(cp->ns, path, !cp->recursive, &ino);
	if (!ret)
		ret = vd_ns_getattr(cp->ns, ino, &a);
	if (ret) {
		cp_fail(cp, path, NULL, -ret);
		return;
	}
	if (asname) {
		cp_node(cp, ino, &a, parentfd, asname, path, asname, 0);
		return;
	}
	base = cp_base(path);
	if (!base) {
		cp_fail(cp, path, NULL, ENOMEM);
	} else if (cp_name_ok(base)) {
		cp_node(cp, ino, &a, destfd, base, path, base, 0);
	} else if (!S_ISDIR(a.mode)) {
		cp_fail(cp, path, "no name to copy it as", 0);
	} else if (!cp->recursive) {
		cp_node(cp, ino, &a, destfd, base, path, base, 0);
	} else if (cp_seen_find(cp, ino)) {
		cp_fail(cp, path, "copied already", 0);
	} else if (cp_seen_add(cp, ino, "", true)) {
		cp_fail(cp, path, NULL, ENOMEM);
	} else {
		/* "/", "/p2/." or "x/..": the contents go into DEST itself,
		 * as `cp -r dir/. DEST` does; DEST's own attributes stay. */
		cp_contents(cp, ino, destfd, path, "", 0);
	}
	free(base);
}

int vdt_cp(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "preserve", no_argument, NULL, 'p' },
		{ "archive", no_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		VDT_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct cp cp = { .basefd = -1 };
	struct vd_image img = { 0 };
	const char *dest;
	char *asname = NULL, *parent = NULL;
	int opt, destfd = -1, parentfd = -1, npaths;
	bool quiet = false;
	struct rlimit rl;

	while ((opt = getopt_long(argc, argv, "rRpavq" VDT_COMMON_SHORTOPTS,
				  lo, NULL)) != -1) {
		switch (opt) {
		case 'r':
		case 'R': cp.recursive = true; continue;
		case 'p': cp.preserve = true; continue;
		case 'a': cp.recursive = cp.preserve = true; continue;
		case 'v': cp.verbose = true; continue;
		case 'q': quiet = true; continue;
		case 'h':
			cp_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		int r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);

		if (r <= 0) {
			if (r == 0)
				fprintf(stderr, "Try 'vdtool cp --help'.\n");
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
	}
	if (argc - optind < 3) {
		vdt_error(argc - optind == 0 ? "no IMAGE given" :
			  argc - optind == 1 ? "no PATH given" :
					       "no DEST given");
		fprintf(stderr, "Try 'vdtool cp --help'.\n");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	npaths = argc - optind - 2;
	dest = argv[argc - 1];
	cp.root = geteuid() == 0;
	cp.umask = umask(0);
	umask(cp.umask);
	/* One fd per directory level. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* DEST itself is the user's: a symlink there is followed. */
	destfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (destfd < 0 && (errno == ENOENT || errno == ENOTDIR) &&
	    npaths == 1) {
		asname = cp_base(dest);
		parent = strdup(dest);
		if (!asname || !parent) {
			vdt_error("out of memory");
			goto out;
		}
		if (!cp_name_ok(asname)) {
			vdt_error("cannot copy to '%s'", dest);
			goto out;
		}
		/* The folder DEST is in. */
		size_t n = strlen(parent);

		while (n > 1 && parent[n - 1] == '/')
			parent[--n] = '\0';
		while (n && parent[n - 1] != '/')
			parent[--n] = '\0';
		if (!n)
			strcpy(parent, ".");
		parentfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parentfd < 0) {
			vdt_error("%s: %s", parent, strerror(errno));
			goto out;
		}
		cp.basefd = parentfd;
		cp.basestr = parent;
	} else if (destfd < 0) {
		if (errno == ENOTDIR || errno == ENOENT)
			vdt_error("target '%s' is not a directory", dest);
		else
			vdt_error("%s: %s", dest, strerror(errno));
		goto out;
	} else {
		cp.basefd = destfd;
		cp.basestr = dest;
	}

	cp.buf = malloc(CP_CHUNK);
	cp.xbuf = malloc(CP_XATTR_MAX);
	cp.xval = malloc(CP_XATTR_MAX);
	if (!cp.buf || !cp.xbuf || !cp.xval) {
		vdt_error("out of memory");
		goto out;
	}
	if (vdt_open(&c, argv[optind], &img))
		goto out;
	cp.ns = img.ns;

	uint64_t total = 0;

	if (!quiet && isatty(STDERR_FILENO)) {
		long budget = CP_SUM_BUDGET;

		for (int i = optind + 1; i < argc - 1; i++) {
			struct vd_fs_attr a;
			uint64_t ino;

			if (!vdt_resolve(cp.ns, argv[i], !cp.recursive, &ino) &&
			    !vd_ns_getattr(cp.ns, ino, &a))
				total += cp_sum(&cp, ino, &a, &budget, 0);
		}
		if (budget < 0)
			total = 0;
	}
	vdt_progress_init(&cp.prog, quiet, total);
	for (int i = optind + 1; i < argc - 1; i++)
		cp_top(&cp, argv[i], destfd, parentfd, asname);
	vdt_progress_end(&cp.prog);
	if (fflush(stdout)) {
		vdt_error("write error: %s", strerror(errno));
		cp.status = VDT_EXIT_FAIL;
	}
	vdt_close(&img);
	goto done;
out:
	cp.status = VDT_EXIT_FAIL;
done:
	for (size_t i = 0; i < cp.cap; i++)
		free(cp.seen[i].rel);
	free(cp.seen);
	free(cp.buf);
	free(cp.xbuf);
	free(cp.xval);
	free(asname);
	free(parent);
	if (destfd >= 0)
		close(destfd);
	if (parentfd >= 0)
		close(parentfd);
	vdt_common_free(&c);
	return cp.status;
}
