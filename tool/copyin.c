/* vdtool copy-in: copy host files into a guest filesystem of an image, as
 * guestfish's copy-in does, through the namespace's write calls (ns.h)
 * that a writable mount uses: the image is opened writable, a qcow2
 * child made over it (--overlay=CHILD) or an existing qcow2 top layer
 * written in place (--rw); only ext2/3/4 can be written.
 *
 * Folders are copied recursively, symlinks as symlinks (never
 * followed on the host), files sharing an inode on the host as hard
 * links, fifos, sockets and device nodes as such; -p keeps modes,
 * owners, times and xattrs, else a copy gets the host mode less the
 * umask (or, in a guest folder with a default ACL, masked by that ACL,
 * whose entries it inherits, as on the kernel), the caller as owner and
 * the time of the copy. Every guest path
 * is made by name inside a folder this copy reached by name from DEST:
 * an entry that is a symlink in the guest is never followed (a folder
 * to be merged into that is a symlink in the guest is an error), so
 * nothing is written outside DEST. An existing non-folder is replaced,
 * an existing folder merged into. Missing folders above DEST are made
 * only with --parents. Errors are reported per path and the copy goes
 * on; the exit status is then 1. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tool/vdtool.h"

#define CI_CHUNK (1u << 20)
#define CI_MAX_DEPTH 1000
#define CI_XATTR_MAX 65536
/* The longest symlink target read from the host (ext keeps less than a
 * block). */
#define CI_TARGET_MAX 65536

enum { CI_OPT_OVERLAY = VDT_OPT_FIRST_FREE, CI_OPT_RW, CI_OPT_PARENTS };

/* A host file with several links, and its copy. */
struct ci_link {
	dev_t dev;
	ino_t ino;
	uint64_t copy; /* namespace inode */
};

struct ci {
	struct vd_ns *ns;
	bool preserve, verbose;
	mode_t umask;
	struct vd_fs_cred cred;
	int status;
	char *buf, *xlist, *xval;
	struct ci_link *links;
	size_t nlinks, cap;
};

static void ci_fail(struct ci *ci, const char *path, const char *what,
		    int err)
{
	char *e = vdt_escape(path);

	vdt_error("%s: %s%s%s", e ? e : "?", what ? what : "",
		  what && err ? ": " : "", err ? strerror(err) : "");
	free(e);
	ci->status = VDT_EXIT_FAIL;
}

static uint64_t *ci_link_find(struct ci *ci, const struct stat *st)
{
	for (size_t i = 0; i < ci->nlinks; i++)
		if (ci->links[i].dev == st->st_dev &&
		    ci->links[i].ino == st->st_ino)
			return &ci->links[i].copy;
	return NULL;
}

static void ci_link_add(struct ci *ci, const struct stat *st, uint64_t copy)
{
	if (ci->nlinks == ci->cap) {
		size_t cap = ci->cap ? 2 * ci->cap : 64;
		struct ci_link *n = realloc(ci->links, cap * sizeof(*n));

		if (!n)
			return; /* later names become copies, not links */
		ci->links = n;
		ci->cap = cap;
	}
	ci->links[ci->nlinks++] = (struct ci_link){ st->st_dev, st->st_ino,
						    copy };
}

/* -p: the host file's mode, owner, times and xattrs on the copy. */
static void ci_preserve(struct ci *ci, const char *src, const struct stat *st,
			uint64_t ino)
{
	struct vd_fs_setattr s = {
		.valid = VD_FS_SET_UID | VD_FS_SET_GID | VD_FS_SET_ATIME |
			 VD_FS_SET_MTIME,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.atime = st->st_atim,
		.mtime = st->st_mtim,
	};
	ssize_t n, v;
	int ret;

	/* The owner first: a chown clears set-user-ID bits. */
	ret = vd_ns_setattr(ci->ns, ino, &s);
	if (!ret && !S_ISLNK(st->st_mode)) {
		s.valid = VD_FS_SET_MODE;
		s.mode = st->st_mode & 07777;
		ret = vd_ns_setattr(ci->ns, ino, &s);
	}
	if (ret)
		ci_fail(ci, src, "attributes", -ret);
	n = llistxattr(src, ci->xlist, CI_XATTR_MAX);
	if (n < 0) {
		if (errno != ENOTSUP)
			ci_fail(ci, src, "listxattr", errno);
		return;
	}
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(ci->xlist + i) + 1) {
		const char *name = ci->xlist + i;

		v = lgetxattr(src, name, ci->xval, CI_XATTR_MAX);
		if (v < 0) {
			ci_fail(ci, src, name, errno);
			continue;
		}
		ret = vd_ns_setxattr(ci->ns, ino, name, ci->xval, (size_t)v, 0);
		if (ret)
			ci_fail(ci, src, name, -ret);
	}
	/* Setting xattrs changed no time but ctime. */
}

/* What is at name in dir: 0 and its attributes, -ENOENT, or -errno. */
static int ci_at(struct ci *ci, uint64_t dir, const char *name,
		 uint64_t *ino_r, struct vd_fs_attr *a)
{
	int ret = vd_ns_lookup(ci->ns, dir, name, ino_r);

	if (!ret)
		ret = vd_ns_getattr(ci->ns, *ino_r, a);
	return ret;
}

/* Make room for a non-folder: an existing non-folder is removed, a
 * folder is an error. */
static int ci_make_room(struct ci *ci, uint64_t dir, const char *name)
{
	struct vd_fs_attr a;
	uint64_t ino;
	int ret = ci_at(ci, dir, name, &ino, &a);

	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	if (S_ISDIR(a.mode))
		return -EISDIR;
	return vd_ns_unlink(ci->ns, dir, name);
}

static int ci_write_file(struct ci *ci, const char *src, uint64_t ino)
{
	struct vd_ns_file *f;
	uint64_t off = 0;
	int fd, ret;

	fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = vd_ns_open_file(ci->ns, ino, &f);
	if (ret) {
		close(fd);
		return ret;
	}
	/* Ends: at the end of the host file, or at an error. */
	for (;;) {
		ssize_t got = read(fd, ci->buf, CI_CHUNK);
		size_t put = 0, done = 0;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			break;
		}
		if (!got)
			break;
		while (!ret && done < (size_t)got) {
			ret = vd_ns_write(f, ci->buf + done, (size_t)got - done,
					  off + done, &put);
			if (!ret && !put)
				ret = -ENOSPC;
			done += put;
		}
		if (ret)
			break;
		off += (uint64_t)got;
	}
	vd_ns_release(f);
	close(fd);
	return ret;
}

static void ci_copy(struct ci *ci, const char *src, uint64_t dir,
		    const char *name, unsigned depth);

static int ci_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of host folder src copied into guest folder dir. */
static void ci_copy_contents(struct ci *ci, const char *src, uint64_t dir,
			     unsigned depth)
{
	DIR *d = opendir(src);
	struct dirent *de;
	char **names = NULL, *p;
	size_t n = 0, cap = 0;

	if (!d) {
		ci_fail(ci, src, NULL, errno);
		return;
	}
	/* Ends: at the end of the host folder. */
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) *
							   sizeof(*nn));

			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), ci_namecmp);
	for (size_t i = 0; i < n; i++) {
		if (asprintf(&p, "%s/%s", src, names[i]) >= 0) {
			ci_copy(ci, p, dir, names[i], depth + 1);
			free(p);
		} else {
			ci_fail(ci, src, names[i], ENOMEM);
		}
		free(names[i]);
	}
	free(names);
}

/* Host path src (never followed) copied as name in guest folder dir. */
static void ci_copy(struct ci *ci, const char *src, uint64_t dir,
		    const char *name, unsigned depth)
{
	mode_t mode = ci->preserve ? 0700 : 0;
	struct vd_fs_attr a;
	struct stat st;
	uint64_t ino = 0, *seen;
	char *target = NULL;
	ssize_t len;
	int ret;

	if (lstat(src, &st)) {
		ci_fail(ci, src, NULL, errno);
		return;
	}
	if (depth > CI_MAX_DEPTH) {
		ci_fail(ci, src, "too deep", 0);
		return;
	}
	if (!ci->preserve)
		mode = st.st_mode & 07777; /* the fs applies the umask */
	if (ci->verbose)
		printf("'%s' -> '%s'\n", src, name);
	if (S_ISDIR(st.st_mode)) {
		ret = ci_at(ci, dir, name, &ino, &a);
		if (!ret && !S_ISDIR(a.mode)) {
			/* Never followed: a guest symlink here could lead
			 * out of the destination. */
			ci_fail(ci, src, S_ISLNK(a.mode) ?
				"a symlink in the guest is in the way" :
				"a non-folder in the guest is in the way", 0);
			return;
		}
		if (ret == -ENOENT)
			ret = vd_ns_mkdir(ci->ns, dir, name, mode, &ci->cred,
					  &ino);
		if (ret) {
			ci_fail(ci, src, "mkdir", -ret);
			return;
		}
		ci_copy_contents(ci, src, ino, depth);
		if (ci->preserve)
			ci_preserve(ci, src, &st, ino);
		return;
	}
	ret = ci_make_room(ci, dir, name);
	if (ret) {
		ci_fail(ci, src, NULL, -ret);
		return;
	}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
	    (seen = ci_link_find(ci, &st))) {
		ret = vd_ns_link(ci->ns, *seen, dir, name);
		if (ret)
			ci_fail(ci, src, "link", -ret);
		return;
	}
	if (S_ISREG(st.st_mode)) {
		ret = vd_ns_mknod(ci->ns, dir, name, S_IFREG | mode, 0,
				  &ci->cred, &ino);
		if (!ret)
			ret = ci_write_file(ci, src, ino);
	} else if (S_ISLNK(st.st_mode)) {
		target = malloc(CI_TARGET_MAX + 1);
		len = target ? readlink(src, target, CI_TARGET_MAX) : -1;
		if (len < 0) {
			ret = target ? -errno : -ENOMEM;
		} else {
			target[len] = '\0';
			ret = vd_ns_symlink(ci->ns, dir, name, target,
					    &ci->cred, &ino);
		}
		free(target);
	} else {
		ret = vd_ns_mknod(ci->ns, dir, name,
				  (st.st_mode & S_IFMT) | mode, st.st_rdev,
				  &ci->cred, &ino);
	}
	if (ret) {
		ci_fail(ci, src, NULL, -ret);
		return;
	}
	if (st.st_nlink > 1)
		ci_link_add(ci, &st, ino);
	if (ci->preserve)
		ci_preserve(ci, src, &st, ino);
}

/* The folder path names, made (with --parents) where missing; a guest
 * symlink on the way is followed only as vdt_resolve follows it (inside
 * its volume). */
static int ci_dest_dir(struct ci *ci, const char *path, bool parents,
		       uint64_t *ino_r)
{
	char *p, *comp, *save = NULL, *sofar;
	uint64_t ino;
	size_t n = 0;
	int ret = vdt_resolve(ci->ns, path, true, ino_r);

	if (ret != -ENOENT || !parents)
		return ret;
	/* Resolve the longest existing prefix, then make the rest. */
	p = strdup(path);
	sofar = calloc(1, strlen(path) + 2);
	if (!p || !sofar) {
		free(p);
		free(sofar);
		return -ENOMEM;
	}
	ino = VD_NS_ROOT;
	ret = 0;
	for (comp = strtok_r(p, "/", &save); comp && !ret;
	     comp = strtok_r(NULL, "/", &save)) {
		uint64_t next;

		n += (size_t)sprintf(sofar + n, "/%s", comp);
		ret = vdt_resolve(ci->ns, sofar, true, &next);
		if (ret == -ENOENT)
			ret = vd_ns_mkdir(ci->ns, ino, comp, 0777, &ci->cred,
					  &next);
		ino = next;
	}
	free(p);
	free(sofar);
	if (!ret)
		*ino_r = ino;
	return ret;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: vdtool copy-in [options] (--overlay=CHILD | --rw) IMAGE SRC... DEST\n"
"\n"
"Copy host files and folders into a guest ext2/3/4 filesystem of IMAGE\n"
"(DEST a folder, or a new name for a single SRC, as /pN/... in a mount);\n"
"SRC/. copies the folder's contents. Symlinks are copied as symlinks,\n"
"hard links kept; a guest symlink is never followed out of DEST.\n"
"\n"
"options:\n"
"  --overlay=CHILD       write into the qcow2 CHILD over IMAGE (created\n"
"                        unless it exists); IMAGE is never written\n"
"  --rw                  IMAGE is a qcow2 top layer, written in place\n"
"  -p                    keep modes, owners, times and xattrs\n"
"  --parents             make missing folders of DEST\n"
"  -v                    name each file copied\n"
"%s",
		vdt_common_help);
}

int vdt_copy_in(int argc, char **argv)
{
	static const struct option lo[] = {
		VDT_COMMON_LONGOPTS,
		{ "overlay", required_argument, NULL, CI_OPT_OVERLAY },
		{ "rw", no_argument, NULL, CI_OPT_RW },
		{ "parents", no_argument, NULL, CI_OPT_PARENTS },
		{ NULL, 0, NULL, 0 },
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct ci ci = { .status = VDT_EXIT_OK };
	struct vd_image img = { 0 };
	const char *overlay = NULL, *image, *dest;
	bool rw = false, parents = false, created = false;
	struct vd_err e = { "" };
	struct stat st;
	uint64_t dino;
	int opt, ret, nsrc;

	while ((opt = getopt_long(argc, argv, VDT_COMMON_SHORTOPTS "pv", lo,
				  NULL)) != -1) {
		ret = vdt_common_opt(&c, opt, optarg);
		if (ret < 0)
			goto usage_err;
		if (ret)
			continue;
		switch (opt) {
		case 'h':
			usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		case 'p':
			ci.preserve = true;
			break;
		case 'v':
			ci.verbose = true;
			break;
		case CI_OPT_OVERLAY:
			overlay = optarg;
			break;
		case CI_OPT_RW:
			rw = true;
			break;
		case CI_OPT_PARENTS:
			parents = true;
			break;
		default:
			goto usage_err;
		}
	}
	if (argc - optind < 3 || !!overlay == rw) {
		if (argc - optind >= 3)
			vdt_error("give one of --overlay=CHILD and --rw");
		goto usage_err;
	}
	image = argv[optind];
	dest = argv[argc - 1];
	nsrc = argc - optind - 2;

	c.io.open.writable = true;
	if (overlay) {
		/* Empty: what a power loss may leave of one made and never
		 * written (it is synced at its first write): made again. */
		if (!stat(overlay, &st) && S_ISREG(st.st_mode) && !st.st_size &&
		    unlink(overlay) < 0) {
			vdt_error("%s: %s", overlay, strerror(errno));
			vdt_common_free(&c);
			return VDT_EXIT_FAIL;
		}
		if (stat(overlay, &st) < 0) {
			if (errno != ENOENT) {
				vdt_error("%s: %s", overlay, strerror(errno));
				vdt_common_free(&c);
				return VDT_EXIT_FAIL;
			}
			if (vd_overlay_create(overlay, image, &c.io.open, &e)) {
				fprintf(stderr, "vdtool: %s\n", e.msg);
				vdt_common_free(&c);
				return VDT_EXIT_FAIL;
			}
			created = true;
		}
		c.io.open.format = "qcow2";
		c.io.open.backed_by = image;
		c.io.open.fresh = created;
		image = overlay;
	}
	if (vdt_open(&c, image, &img)) {
		if (created)
			unlink(overlay);
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	ci.ns = img.ns;
	ci.umask = umask(0);
	umask(ci.umask);
	ci.cred = (struct vd_fs_cred){ getuid(), getgid(), ci.umask & 0777 };
	ci.buf = malloc(CI_CHUNK);
	ci.xlist = malloc(CI_XATTR_MAX);
	ci.xval = malloc(CI_XATTR_MAX);
	if (!ci.buf || !ci.xlist || !ci.xval) {
		vdt_error("out of memory");
		ci.status = VDT_EXIT_FAIL;
		goto out;
	}

	ret = ci_dest_dir(&ci, dest, parents && (nsrc > 1 ||
						 dest[strlen(dest) - 1] == '/'),
			  &dino);
	if (!ret) {
		struct vd_fs_attr a;

		ret = vd_ns_getattr(ci.ns, dino, &a);
		if (!ret && !S_ISDIR(a.mode))
			ret = -ENOTDIR;
	}
	if (!ret) {
		/* Each SRC into the folder DEST; SRC/. its contents. */
		for (int i = optind + 1; i < argc - 1; i++) {
			const char *src = argv[i], *base;
			size_t n = strlen(src);
			char *b = strdup(src);

			if (!b) {
				vdt_error("out of memory");
				ci.status = VDT_EXIT_FAIL;
				break;
			}
			while (n > 1 && b[n - 1] == '/')
				b[--n] = '\0';
			if (n >= 2 && !strcmp(b + n - 2, "/.")) {
				ci_copy_contents(&ci, b, dino, 0);
				free(b);
				continue;
			}
			base = strrchr(b, '/') ? strrchr(b, '/') + 1 : b;
			if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
				ci_copy_contents(&ci, b, dino, 0);
			else
				ci_copy(&ci, b, dino, base, 0);
			free(b);
		}
	} else if (ret == -ENOENT && nsrc == 1 &&
		   dest[strlen(dest) - 1] != '/') {
		/* A new name: DEST's folder must exist (or be made). */
		char *d = strdup(dest), *slash, *name;

		if (!d) {
			vdt_error("out of memory");
			ci.status = VDT_EXIT_FAIL;
			goto out;
		}
		slash = strrchr(d, '/');
		name = slash ? slash + 1 : d;
		if (slash)
			*slash = '\0';
		ret = ci_dest_dir(&ci, slash && *d ? d : "/", parents, &dino);
		if (ret) {
			ci_fail(&ci, dest, NULL, -ret);
		} else {
			ci_copy(&ci, argv[optind + 1], dino, name, 0);
		}
		free(d);
	} else if (ret == -ENOTDIR && nsrc == 1) {
		/* An existing non-folder: replaced. */
		char *d = strdup(dest), *slash;

		if (!d) {
			vdt_error("out of memory");
			ci.status = VDT_EXIT_FAIL;
			goto out;
		}
		slash = strrchr(d, '/');
		if (slash)
			*slash = '\0';
		ret = vdt_resolve(ci.ns, slash && *d ? d : "/", true, &dino);
		if (ret)
			ci_fail(&ci, dest, NULL, -ret);
		else
			ci_copy(&ci, argv[optind + 1], dino,
				slash ? slash + 1 : d, 0);
		free(d);
	} else {
		ci_fail(&ci, dest, NULL, -ret);
	}
	ret = vd_ns_flush(ci.ns);
	if (ret)
		ci_fail(&ci, image, "flush", -ret);
out:
	free(ci.buf);
	free(ci.xlist);
	free(ci.xval);
	free(ci.links);
	vdt_close(&img);
	vdt_common_free(&c);
	return ci.status;

usage_err:
	usage(stderr);
	vdt_common_free(&c);
	return VDT_EXIT_USAGE;
}
