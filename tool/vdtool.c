/* vdtool: the tree vdmount shows, read without FUSE — the command
 * dispatcher, the options every command shares, and path lookup. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/log.h"
#include "tool/vdtool.h"

#define VDTOOL_VERSION "0.1.0"
/* Symlinks followed in one path, as Linux's MAXSYMLINKS. */
#define VDT_MAX_LINKS 40
#define VDT_PATH_MAX 4096

const char *vdt_cmd = NULL;

const char vdt_common_help[] =
"image options (as vdmount's):\n"
"  -F, --format=FMT      format of IMAGE (qcow2, vmdk, vpc, vhdx, vdi,\n"
"                        raw)\n"
"  --backing-dir=DIR     also allow backing files inside DIR (repeatable)\n"
"  --key-file=FILE       a passphrase: FILE's exact bytes (repeatable)\n"
"  --snapshot=ID|NAME    a qcow2 internal snapshot instead of the active\n"
"                        state\n"
"  --disk=N              the Nth disk of an OVA/OVF appliance\n"
"  --ignore-parent-id    accept a VMDK/VHD child whose parent id differs\n"
"  --codepage=N          code page of vfat short names (default 437)\n"
"  --uid=N, --gid=N      owner shown for vfat files (default: yours)\n"
"  -h, --help            this help\n";

void vdt_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vdtool%s%s: ", vdt_cmd ? " " : "",
		vdt_cmd ? vdt_cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int vdt_number(const char *arg, unsigned long max,
		      unsigned long *v_r)
{
	char *end;

	errno = 0;
	*v_r = strtoul(arg, &end, 10);
	return !*arg || *end || errno || *arg == '-' || *v_r > max ? -1 : 0;
}

int vdt_common_opt(struct vdt_common *c, int opt, const char *arg)
{
	unsigned long v;
	char **n;

	switch (opt) {
	case 'F':
		c->io.open.format = arg;
		return 1;
	case VDT_OPT_SNAPSHOT:
		c->io.open.snapshot = arg;
		return 1;
	case VDT_OPT_IGNORE_PARENT_ID:
		c->io.open.ignore_parent_ids = true;
		return 1;
	case VDT_OPT_BACKING_DIR:
		n = realloc(c->backing_dirs,
			    (c->io.open.n_backing_dirs + 1) * sizeof(*n));
		if (!n) {
			vdt_error("out of memory");
			return -1;
		}
		c->backing_dirs = n;
		n[c->io.open.n_backing_dirs++] = (char *)arg;
		c->io.open.backing_dirs = (const char *const *)n;
		return 1;
	case VDT_OPT_KEY_FILE: {
		struct vd_err e = { "" };

		if (!c->io.open.keys && !(c->io.open.keys = vd_keys_new())) {
			vdt_error("out of memory");
			return -1;
		}
		if (vd_keys_add_file(c->io.open.keys, arg, &e)) {
			vdt_error("%s", e.msg);
			return -1;
		}
		return 1;
	}
	case VDT_OPT_DISK:
	case VDT_OPT_CODEPAGE:
	case VDT_OPT_UID:
	case VDT_OPT_GID:
		if (vdt_number(arg, (uid_t)-1 - 1, &v)) {
			vdt_error("bad number '%s'", arg);
			return -1;
		}
		if (opt == VDT_OPT_DISK)
			c->io.open.disk = (unsigned)v;
		else if (opt == VDT_OPT_CODEPAGE)
			c->io.codepage = (unsigned)v;
		else if (opt == VDT_OPT_UID)
			c->io.uid = (long)v;
		else
			c->io.gid = (long)v;
		return 1;
	default:
		return 0;
	}
}

void vdt_common_free(struct vdt_common *c)
{
	free(c->backing_dirs);
	c->backing_dirs = NULL;
	vd_keys_free(c->io.open.keys);
	c->io.open.keys = NULL;
}

int vdt_open(const struct vdt_common *c, const char *path,
	     struct vd_image *img)
{
	struct vd_err e = { "" };
	struct vd_image_opts io = c->io;
	struct vd_keys *asked = NULL;
	int ret = 0;

	/* Without --key-file, a ring only for what is typed at the
	 * prompt (a terminal on stdin), wiped once the image is open. */
	if (!io.open.keys)
		io.open.keys = asked = vd_keys_new();
	if (io.open.keys)
		vd_keys_allow_prompt(io.open.keys, isatty(STDIN_FILENO));
	if (vd_image_open(path, &io, img, &e)) {
		fprintf(stderr, "vdtool: %s\n", e.msg);
		ret = -1;
	}
	vd_keys_free(asked);
	return ret;
}

int vdt_open_disk(const struct vdt_common *c, const char *path,
		  struct vd_image *img)
{
	struct vdt_common dc = *c;

	dc.io.disk_only = true;
	return vdt_open(&dc, path, img);
}

void vdt_close(struct vd_image *img)
{
	vd_image_close(img);
}

/* The root of the volume ino lies on, as a namespace inode (the tree's
 * root for the synthetic entries). */
static uint64_t vdt_vol_root(struct vd_ns *ns, uint64_t ino)
{
	return vd_ns_vol_root(ns, ino);
}

/* The walk keeps the directories it went through, so ".." goes back the
 * way it came (and never above "/") and a symlink's absolute target
 * restarts at its volume's root: the volume is a chroot. The path left to
 * walk is rebuilt when a symlink is expanded; each expansion counts
 * toward VDT_MAX_LINKS, so the walk ends. */
int vdt_resolve(struct vd_ns *ns, const char *path, bool follow,
		uint64_t *ino_r)
{
	uint64_t *stack = NULL, ino;
	size_t depth = 0, cap = 0;
	char *todo = strdup(path), *p, *slash, *nt;
	char target[VDT_PATH_MAX];
	struct vd_fs_attr a;
	unsigned links = 0;
	int ret = 0;

	if (!todo)
		return -ENOMEM;
	p = todo;
	stack = malloc(16 * sizeof(*stack));
	if (!stack) {
		ret = -ENOMEM;
		goto out;
	}
	cap = 16;
	stack[depth++] = VD_NS_ROOT;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		const char *comp = p;
		char *rest = slash ? slash + 1 : p + strlen(p);
		bool last = !slash || !rest[strspn(rest, "/")];

		if (!strcmp(comp, ".")) {
			p = rest;
			continue;
		}
		if (!strcmp(comp, "..")) {
			if (depth > 1)
				depth--;
			p = rest;
			continue;
		}
		ret = vd_ns_lookup(ns, stack[depth - 1], comp, &ino);
		if (!ret)
			ret = vd_ns_getattr(ns, ino, &a);
		if (ret)
			goto out;
		if (S_ISLNK(a.mode) && (!last || follow)) {
			if (++links > VDT_MAX_LINKS) {
				ret = -ELOOP;
				goto out;
			}
			ret = vd_ns_readlink(ns, ino, target, sizeof(target));
			if (ret)
				goto out;
			if (target[0] == '/') {
				uint64_t root = vdt_vol_root(ns, ino);

				depth = 1;
				if (root != VD_NS_ROOT)
					stack[depth++] = root;
			}
			if (asprintf(&nt, "%s/%s", target, rest) < 0) {
				ret = -ENOMEM;
				goto out;
			}
			free(todo);
			todo = p = nt;
			continue;
		}
		if (!last && !S_ISDIR(a.mode)) {
			ret = -ENOTDIR;
			goto out;
		}
		if (depth == cap) {
			uint64_t *ns2 = realloc(stack, 2 * cap * sizeof(*stack));

			if (!ns2) {
				ret = -ENOMEM;
				goto out;
			}
			stack = ns2;
			cap *= 2;
		}
		stack[depth++] = ino;
		p = rest;
	}
	*ino_r = stack[depth - 1];
out:
	free(stack);
	free(todo);
	return ret;
}

struct vdt_rd {
	struct vdt_dirent *e;
	size_t n, cap;
	uint64_t next;
	bool got;
	int err;
};

static int vdt_rd_fill(void *arg, const char *name, uint64_t ino,
		       unsigned type, uint64_t next)
{
	struct vdt_rd *r = arg;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct vdt_dirent *e;

		if (r->n >= VDT_MAX_DIRENTS) {
			r->err = -EFBIG;
			return 1;
		}
		e = realloc(r->e, cap * sizeof(*e));
		if (!e) {
			r->err = -ENOMEM;
			return 1;
		}
		r->e = e;
		r->cap = cap;
	}
	r->e[r->n].name = strdup(name);
	if (!r->e[r->n].name) {
		r->err = -ENOMEM;
		return 1;
	}
	r->e[r->n].ino = ino;
	r->e[r->n].type = type;
	r->n++;
	r->got = true;
	/* Cookies only grow (a position in the directory); one that does
	 * not would make the walk below loop. */
	if (next <= r->next) {
		r->err = -EIO;
		return 1;
	}
	r->next = next;
	return 0;
}

static int vdt_dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vdt_dirent *)a)->name,
		      ((const struct vdt_dirent *)b)->name);
}

/* A filesystem may stop filling early; each call resumes at the last
 * cookie, and the walk ends when a call adds nothing (cookies strictly
 * grow, and the entry count is capped). */
int vdt_readdir(struct vd_ns *ns, uint64_t dir, struct vdt_dirent **ents_r,
		size_t *n_r)
{
	struct vdt_rd r = { 0 };
	int ret;

	do {
		r.got = false;
		ret = vd_ns_readdir(ns, dir, r.next, vdt_rd_fill, &r);
		if (!ret)
			ret = r.err;
	} while (!ret && r.got);
	if (ret) {
		vdt_dirents_free(r.e, r.n);
		return ret;
	}
	if (r.n)
		qsort(r.e, r.n, sizeof(*r.e), vdt_dirent_cmp);
	*ents_r = r.e;
	*n_r = r.n;
	return 0;
}

void vdt_dirents_free(struct vdt_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} vdt_cmds[] = {
	{ "info", vdt_info, "describe the image chain, partitions and filesystems" },
	{ "ls", vdt_ls, "list a directory of the tree" },
	{ "cat", vdt_cat, "write files of the tree to standard output" },
	{ "cp", vdt_cp, "copy files and directories out of the tree" },
	{ "convert", vdt_convert, "write the flat disk as a sparse raw file" },
	{ "verify", vdt_verify, "check an OVA's manifest digests" },
	{ "check", vdt_check, "check an image's metadata as qemu-img check does" },
	{ "copy-in", vdt_copy_in, "copy host files into an ext filesystem (writable)" },
	{ "inspect", vdt_inspect, "say what operating system the image holds" },
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: vdtool COMMAND [options] IMAGE [ARGS...]\n"
"\n"
"Read a virtual machine disk image (qcow2, VMDK, VHD, VHDX, raw, OVA/OVF)\n"
"without mounting it. Paths are those a vdmount mount shows: /disk.raw,\n"
"/pN.raw, /pN/... (partition N's files), /fs/... (a disk without\n"
"partitions).\n"
"\n"
"commands:\n");
	for (size_t i = 0; i < sizeof(vdt_cmds) / sizeof(vdt_cmds[0]); i++)
		fprintf(out, "  %-9s %s\n", vdt_cmds[i].name, vdt_cmds[i].what);
	fprintf(out, "\n'vdtool COMMAND --help' describes a command; "
		"see also vdtool(1).\n");
}

int main(int argc, char **argv)
{
	vd_log_set_name("vdtool");
	if (argc < 2) {
		usage(stderr);
		return VDT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return VDT_EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("vdtool %s\n", VDTOOL_VERSION);
		return VDT_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(vdt_cmds) / sizeof(vdt_cmds[0]); i++)
		if (!strcmp(argv[1], vdt_cmds[i].name)) {
			vdt_cmd = vdt_cmds[i].name;
			return vdt_cmds[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "vdtool: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return VDT_EXIT_USAGE;
}
