/* vdtool ls and cat: list the tree and write its files to stdout.
 *
 * ls prints one fixed format, documented in vdtool(1), so that scripts
 * and tests can compare it: names one per line, sorted by bytes; with
 * -l, "MODE NLINK UID GID SIZE MTIME NAME[ -> TARGET]" separated by
 * single spaces, MTIME in UTC. Names and targets always go through
 * vdt_escape: a guest name never reaches the terminal raw. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "tool/vdtool.h"

/* Directory levels -R descends: far past any real tree, well short of
 * the stack. */
#define LS_MAX_DEPTH 4096
#define LS_LINK_MAX 4096
/* cat's read size. */
#define CAT_CHUNK (1u << 20)

struct ls_opts {
	bool l, R, a;
	struct vd_ns *ns;
	bool printed; /* something is on stdout: a header needs a blank line */
	int status;
};

/* The ancestors of a directory being listed, to refuse a cycle that a
 * hostile filesystem can hold (a directory entry naming an ancestor). */
struct ls_up {
	uint64_t ino;
	const struct ls_up *up;
};

static void ls_err(struct ls_opts *o, const char *path, int err)
{
	char *e = vdt_escape(path);

	vdt_error("%s: %s", e ? e : "?", strerror(-err));
	free(e);
	o->status = VDT_EXIT_FAIL;
}

/* "drwxr-xr-x" as ls -l writes it. */
static void ls_mode(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	switch (m & S_IFMT) {
	case S_IFDIR: out[0] = 'd'; break;
	case S_IFLNK: out[0] = 'l'; break;
	case S_IFCHR: out[0] = 'c'; break;
	case S_IFBLK: out[0] = 'b'; break;
	case S_IFIFO: out[0] = 'p'; break;
	case S_IFSOCK: out[0] = 's'; break;
	case S_IFREG: out[0] = '-'; break;
	default: out[0] = '?'; break;
	}
	for (int i = 0; i < 9; i++)
		out[1 + i] = m & (0400 >> i) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = m & S_IXUSR ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = m & S_IXGRP ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = m & S_IXOTH ? 't' : 'T';
	out[10] = '\0';
}

/* One line of -l for ino shown as name. */
static void ls_long(struct ls_opts *o, uint64_t ino, const struct vd_fs_attr *a,
		    const char *name, const char *path)
{
	char mode[11], when[64], target[LS_LINK_MAX];
	struct tm tm;
	time_t t = a->mtime.tv_sec;
	int ret;

	ls_mode(a->mode, mode);
	if (!gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(when, sizeof(when), "%lld", (long long)t);
	printf("%s %lu %u %u ", mode, (unsigned long)a->nlink,
	       (unsigned)a->uid, (unsigned)a->gid);
	if (S_ISCHR(a->mode) || S_ISBLK(a->mode))
		printf("%u, %u", major(a->rdev), minor(a->rdev));
	else
		printf("%llu", (unsigned long long)a->size);
	printf(" %s ", when);
	vdt_put_escaped(stdout, name);
	if (S_ISLNK(a->mode)) {
		ret = vd_ns_readlink(o->ns, ino, target, sizeof(target));
		if (ret) {
			putchar('\n');
			ls_err(o, path, ret);
			return;
		}
		fputs(" -> ", stdout);
		vdt_put_escaped(stdout, target);
	}
	putchar('\n');
}

static char *ls_join(const char *dir, const char *name)
{
	char *p;
	size_t n = strlen(dir);

	if (asprintf(&p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/",
		     name) < 0)
		return NULL;
	return p;
}

static bool ls_shown(const struct ls_opts *o, const char *name)
{
	return o->a || name[0] != '.';
}

/* List directory dir (shown as path); with -R, then its subdirectories.
 * header: print "path:" first. */
static void ls_dir(struct ls_opts *o, uint64_t dir, const char *path,
		   bool header, const struct ls_up *up, unsigned depth)
{
	struct ls_up me = { dir, up };
	struct vdt_dirent *e;
	struct vd_fs_attr *attr = NULL;
	size_t n;
	int ret;

	for (const struct ls_up *u = up; u; u = u->up)
		if (u->ino == dir) {
			char *ep = vdt_escape(path);

			vdt_error("%s: not listing a directory that contains "
				  "itself", ep ? ep : "?");
			free(ep);
			o->status = VDT_EXIT_FAIL;
			return;
		}
	if (depth > LS_MAX_DEPTH) {
		ls_err(o, path, -ELOOP);
		return;
	}
	ret = vdt_readdir(o->ns, dir, &e, &n);
	if (ret) {
		ls_err(o, path, ret);
		return;
	}
	if (header) {
		if (o->printed)
			putchar('\n');
		vdt_put_escaped(stdout, path);
		fputs(":\n", stdout);
	}
	o->printed = true;
	if (o->l || o->R) {
		attr = calloc(n ? n : 1, sizeof(*attr));
		if (!attr) {
			ls_err(o, path, -ENOMEM);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!ls_shown(o, e[i].name))
			continue;
		if (attr) {
			ret = vd_ns_getattr(o->ns, e[i].ino, &attr[i]);
			if (ret) {
				char *p = ls_join(path, e[i].name);

				ls_err(o, p ? p : path, ret);
				free(p);
				attr[i].mode = 0;
				continue;
			}
		}
		if (o->l) {
			char *p = ls_join(path, e[i].name);

			ls_long(o, e[i].ino, &attr[i], e[i].name, p ? p : path);
			free(p);
		} else {
			vdt_put_escaped(stdout, e[i].name);
			putchar('\n');
		}
	}
	if (!o->R)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *p;

		if (!ls_shown(o, e[i].name) || !S_ISDIR(attr[i].mode) ||
		    !strcmp(e[i].name, ".") || !strcmp(e[i].name, ".."))
			continue;
		p = ls_join(path, e[i].name);
		if (!p) {
			ls_err(o, path, -ENOMEM);
			continue;
		}
		ls_dir(o, e[i].ino, p, true, &me, depth + 1);
		free(p);
	}
out:
	free(attr);
	vdt_dirents_free(e, n);
}

static void ls_usage(FILE *f)
{
	fprintf(f,
"usage: vdtool ls [-l] [-R] [-a] [options] IMAGE [PATH...]\n"
"List PATH (default /) as a vdmount mount would show it: /disk.raw,\n"
"/pN.raw, /pN/... (partition N's files), /fs/... (a disk that is one\n"
"filesystem). Entries are sorted by name (bytes); names are escaped.\n"
"\n"
"  -l     long format: MODE NLINK UID GID SIZE MTIME NAME[ -> TARGET],\n"
"         one space apart; SIZE is \"MAJOR, MINOR\" for devices; MTIME is\n"
"         YYYY-MM-DD HH:MM:SS in UTC\n"
"  -R     list subdirectories recursively, each after a \"PATH:\" line\n"
"  -a     include names starting with '.', and . and ..\n"
"\n%s", vdt_common_help);
}

/* Strip trailing slashes (not the only one). */
static void ls_trim(char *p)
{
	size_t n = strlen(p);

	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

int vdt_ls(int argc, char **argv)
{
	static const struct option lo[] = { VDT_COMMON_LONGOPTS,
					    { NULL, 0, NULL, 0 } };
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct ls_opts o = { 0 };
	struct vd_image img;
	char *root[] = { "/" }, **paths;
	int opt, npaths;

	while ((opt = getopt_long(argc, argv, "lRa" VDT_COMMON_SHORTOPTS, lo,
				  NULL)) != -1) {
		switch (opt) {
		case 'l': o.l = true; continue;
		case 'R': o.R = true; continue;
		case 'a': o.a = true; continue;
		case 'h':
			ls_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		int r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);

		if (r <= 0) {
			if (r == 0)
				fprintf(stderr, "Try 'vdtool ls --help'.\n");
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		vdt_error("no IMAGE given");
		fprintf(stderr, "Try 'vdtool ls --help'.\n");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	paths = optind + 1 < argc ? argv + optind + 1 : root;
	npaths = optind + 1 < argc ? argc - optind - 1 : 1;
	if (vdt_open(&c, argv[optind], &img)) {
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	o.ns = img.ns;
	for (int i = 0; i < npaths; i++) {
		struct vd_fs_attr a;
		uint64_t ino;
		char *p = strdup(paths[i]);
		int ret;

		if (!p) {
			ls_err(&o, paths[i], -ENOMEM);
			break;
		}
		ls_trim(p);
		/* As ls: a symlink is shown as such with -l, else followed
		 * (and a directory it names listed). */
		ret = vdt_resolve(o.ns, p, !o.l, &ino);
		if (!ret)
			ret = vd_ns_getattr(o.ns, ino, &a);
		if (ret) {
			ls_err(&o, p, ret);
		} else if (S_ISDIR(a.mode)) {
			ls_dir(&o, ino, p, o.R || npaths > 1, NULL, 0);
		} else if (o.l) {
			ls_long(&o, ino, &a, p, p);
			o.printed = true;
		} else {
			vdt_put_escaped(stdout, p);
			putchar('\n');
			o.printed = true;
		}
		free(p);
	}
	if (fflush(stdout) || ferror(stdout)) {
		vdt_error("write error: %s", strerror(errno));
		o.status = VDT_EXIT_FAIL;
	}
	vdt_close(&img);
	vdt_common_free(&c);
	return o.status;
}

/* ---------------------------------------------------------------- cat */

static void cat_usage(FILE *f)
{
	fprintf(f,
"usage: vdtool cat [options] IMAGE PATH...\n"
"Write each PATH's bytes to standard output: files of a partition\n"
"(/pN/...), a partition (/pN.raw), or the whole disk (/disk.raw).\n"
"Symlinks are followed inside their own filesystem.\n"
"\n%s", vdt_common_help);
}

/* 0, 1 for a failure of this path (reported), -1 when stdout failed
 * (reported; nothing more can be written). */
static int cat_one(struct vd_ns *ns, const char *path, char *buf)
{
	struct vd_ns_file *f;
	uint64_t ino, off = 0, ahead = 0, from, n;
	size_t got;
	char *ep = vdt_escape(path);
	int ret;

	ret = vdt_resolve(ns, path, true, &ino);
	if (!ret)
		ret = vd_ns_open_file(ns, ino, &f);
	if (ret) {
		vdt_error("%s: %s", ep ? ep : "?", strerror(-ret));
		free(ep);
		return 1;
	}
	for (;;) {
		/* Past the end of the file nothing is asked for. */
		if ((n = vdt_ahead(&ahead, off, UINT64_MAX, &from)))
			vd_ns_prefetch(f, from, n);
		ret = vd_ns_read(f, buf, CAT_CHUNK, off, &got);
		if (ret) {
			vdt_error("%s: read at byte %llu: %s", ep ? ep : "?",
				  (unsigned long long)off, strerror(-ret));
			ret = 1;
			break;
		}
		if (!got)
			break;
		ret = vdt_write_all(STDOUT_FILENO, buf, got);
		if (ret) {
			vdt_error("write error: %s", strerror(-ret));
			ret = -1;
			break;
		}
		off += got;
	}
	vd_ns_release(f);
	free(ep);
	return ret;
}

int vdt_cat(int argc, char **argv)
{
	static const struct option lo[] = { VDT_COMMON_LONGOPTS,
					    { NULL, 0, NULL, 0 } };
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct vd_image img;
	int opt, status = VDT_EXIT_OK;
	char *buf;

	while ((opt = getopt_long(argc, argv, VDT_COMMON_SHORTOPTS, lo,
				  NULL)) != -1) {
		if (opt == 'h') {
			cat_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		int r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);

		if (r <= 0) {
			if (r == 0)
				fprintf(stderr, "Try 'vdtool cat --help'.\n");
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		vdt_error(optind < argc ? "no PATH given" : "no IMAGE given");
		fprintf(stderr, "Try 'vdtool cat --help'.\n");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	buf = malloc(CAT_CHUNK);
	if (!buf) {
		vdt_error("out of memory");
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	if (vdt_open(&c, argv[optind], &img)) {
		free(buf);
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	/* As cat: a closed pipe ends us by SIGPIPE, as the default
	 * disposition does; if the caller ignores it, EPIPE is a write
	 * error like any other. */
	for (int i = optind + 1; i < argc; i++) {
		int r = cat_one(img.ns, argv[i], buf);

		if (r)
			status = VDT_EXIT_FAIL;
		if (r < 0)
			break;
	}
	vdt_close(&img);
	free(buf);
	vdt_common_free(&c);
	return status;
}
