/* vdmount: mount a VM disk image read-only as a flat file.
 *
 * The image and its whole chain are opened and checked first, so a bad
 * image fails the command with one clear line; then the FUSE session is
 * mounted, and only then does the process daemonise, so the mount is live
 * when the command returns. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/pool.h"
#include "fuse/spin.h"
#include "fuse/tree.h"

#define VDMOUNT_VERSION "0.1.0"

struct vd_cli {
	char *image;
	char *mountpoint;
	char *format;
	char *snapshot;
	char *overlay; /* --overlay=CHILD */
	char **backing_dirs;
	unsigned n_backing_dirs;
	unsigned disk;
	unsigned codepage;
	long uid, gid; /* -1: the mounting user's */
	int ignore_parent_ids;
	int rw; /* --rw */
	struct vd_keys *keys; /* --key-file passphrases, until opened */
	bool foreground, single, help, version, allow_other, bad;
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_BACKING_DIR,
	KEY_ALLOW_OTHER,
	KEY_UID,
	KEY_GID,
	KEY_KEY_FILE,
};

#define VD_OPT(t, field) { t, offsetof(struct vd_cli, field), 0 }

static const struct fuse_opt vd_opts[] = {
	VD_OPT("-F %s", format),
	VD_OPT("--format=%s", format),
	VD_OPT("format=%s", format),
	VD_OPT("--snapshot=%s", snapshot),
	VD_OPT("snapshot=%s", snapshot),
	VD_OPT("--disk=%u", disk),
	VD_OPT("disk=%u", disk),
	VD_OPT("codepage=%u", codepage),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	VD_OPT("--overlay=%s", overlay),
	{ "--rw", offsetof(struct vd_cli, rw), 1 },
	{ "--ignore-parent-id", offsetof(struct vd_cli, ignore_parent_ids), 1 },
	{ "ignore_parent_id", offsetof(struct vd_cli, ignore_parent_ids), 1 },
	FUSE_OPT_KEY("--backing-dir=", KEY_BACKING_DIR),
	FUSE_OPT_KEY("backing_dir=", KEY_BACKING_DIR),
	FUSE_OPT_KEY("--key-file=", KEY_KEY_FILE),
	FUSE_OPT_KEY("key_file=", KEY_KEY_FILE),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_END,
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: vdmount [options] IMAGE MOUNTPOINT [-o opt[,opt...]]\n"
"\n"
"Mount a virtual machine disk image (qcow2, VMDK, VHD, VHDX or raw, with its\n"
"backing chain, or the disk of an OVA/OVF appliance) read-only, or writable\n"
"through a qcow2 overlay (--overlay, --rw).\n"
"MOUNTPOINT/disk.raw is the whole virtual disk; a regular file as\n"
"MOUNTPOINT becomes the disk itself. Unmount with fusermount3 -u.\n"
"\n"
"options:\n"
"  -F, --format=FMT      format of IMAGE (qcow2, vmdk, vpc, vhdx, vdi, raw)\n"
"                        instead of probing\n"
"  --backing-dir=DIR     also allow backing and data files inside DIR\n"
"                        (repeatable; by default only IMAGE's folder)\n"
"  --snapshot=ID|NAME    show a qcow2 internal snapshot, not the active state\n"
"  --disk=N              the Nth disk of an OVA/OVF appliance (default 1)\n"
"  --overlay=CHILD       writable: writes go to the qcow2 CHILD (created\n"
"                        with IMAGE as its backing file unless it exists;\n"
"                        an existing one must lead to IMAGE); IMAGE is\n"
"                        never written\n"
"  --rw                  writable: IMAGE is a qcow2 top layer written in\n"
"                        place (copy-on-write over its backing chain)\n"
"  --key-file=FILE       a passphrase for encrypted layers and LUKS volumes:\n"
"                        FILE's exact bytes (repeatable; -o key_file=FILE);\n"
"                        on a terminal, what stays locked is asked for\n"
"  --ignore-parent-id    mount a VMDK/VHD child whose recorded parent id\n"
"                        (parentCID, parent UUID) differs from its parent's\n"
"  -o OPT[,OPT...]       mount options: FUSE's (allow_other, ...) and\n"
"                        format=, backing_dir=, key_file=, snapshot=, disk=,\n"
"                        ignore_parent_id as above; and as the kernel's\n"
"                        vfat: uid=N, gid=N (owner of vfat files and of\n"
"                        the tree; default the mounting user),\n"
"                        codepage=N (vfat short names; default 437)\n"
"  -f                    stay in the foreground\n"
"  -d                    debug output (implies -f)\n"
"  -s                    single-threaded\n"
"  -h, --help            this help\n"
"  -V, --version         version\n");
}

/* "uid=N" or "gid=N": N a decimal id below (uid_t)-1. */
static int parse_id(const char *arg, long *id_r)
{
	const char *p = strchr(arg, '=') + 1;
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(p, &end, 10);
	if (!*p || *end || errno || *p == '-' || v >= (uid_t)-1)
		return -1;
	*id_r = (long)v;
	return 0;
}

static int vd_opt_proc(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	struct vd_cli *c = data;
	char **n;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!c->image)
			c->image = strdup(arg);
		else if (!c->mountpoint)
			c->mountpoint = strdup(arg);
		else {
			fprintf(stderr, "vdmount: unexpected argument '%s'\n",
				arg);
			c->bad = true;
		}
		return 0;
	case KEY_HELP:
		c->help = true;
		return 0;
	case KEY_VERSION:
		c->version = true;
		return 0;
	case KEY_FOREGROUND:
		c->foreground = true;
		return 0;
	case KEY_DEBUG:
		c->foreground = true;
		vd_log_set_level(VD_LOG_DEBUG);
		return 1; /* libfuse prints its requests too */
	case KEY_SINGLE:
		c->single = true;
		return 0;
	case KEY_ALLOW_OTHER:
		c->allow_other = true;
		return 1;
	case KEY_UID:
	case KEY_GID:
		if (parse_id(arg, key == KEY_UID ? &c->uid : &c->gid)) {
			fprintf(stderr, "vdmount: bad option '%s': want a "
				"number\n", arg);
			c->bad = true;
		}
		return 0;
	case KEY_BACKING_DIR:
		n = realloc(c->backing_dirs,
			    (c->n_backing_dirs + 1) * sizeof(*n));
		if (!n)
			return -1;
		c->backing_dirs = n;
		n[c->n_backing_dirs] = strdup(strchr(arg, '=') + 1);
		if (!n[c->n_backing_dirs])
			return -1;
		c->n_backing_dirs++;
		return 0;
	case KEY_KEY_FILE: {
		struct vd_err e = { "" };

		if (!c->keys && !(c->keys = vd_keys_new()))
			return -1;
		if (vd_keys_add_file(c->keys, strchr(arg, '=') + 1, &e)) {
			fprintf(stderr, "vdmount: %s\n", e.msg);
			c->bad = true;
		}
		return 0;
	}
	default:
		return 1; /* FUSE's own options */
	}
}

static void cli_free(struct vd_cli *c)
{
	free(c->image);
	free(c->mountpoint);
	free(c->format);
	free(c->snapshot);
	free(c->overlay);
	for (unsigned i = 0; i < c->n_backing_dirs; i++)
		free(c->backing_dirs[i]);
	free(c->backing_dirs);
	vd_keys_free(c->keys);
	c->keys = NULL;
}

/* libfuse's own messages. While the session is created they are caught,
 * so that a bad option gives one vdmount line; afterwards they go where
 * ours go (stderr, or syslog once daemonised). */
static bool fuse_log_capture;
static char fuse_log_first[512];

static void vd_fuse_log(enum fuse_log_level level, const char *fmt,
			va_list ap)
{
	char line[512], *p = line;
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (fuse_log_capture) {
		/* libfuse writes one message in several pieces: collect
		 * them all, keep the first line. */
		n = strlen(fuse_log_first);
		snprintf(fuse_log_first + n, sizeof(fuse_log_first) - n, "%s",
			 line);
		return;
	}
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (!strncmp(p, "fuse: ", 6))
		p += 6;
	vd_log(level <= FUSE_LOG_ERR	   ? VD_LOG_ERR :
	       level == FUSE_LOG_WARNING ? VD_LOG_WARN :
	       level <= FUSE_LOG_INFO	   ? VD_LOG_INFO :
					     VD_LOG_DEBUG,
	       "%s", p);
}

/* The first line libfuse said while it was being listened to. */
static const char *fuse_log_caught(void)
{
	char *p = fuse_log_first;

	p[strcspn(p, "\n")] = '\0';
	if (!strncmp(p, "fuse: ", 6))
		p += 6;
	return p[0] ? p : "cannot start a FUSE session";
}

/* Mount options for the session: ours appended after the user's, so
 * read-only wins over a "rw" from fstab (unless --rw or --overlay);
 * mount(8) shows the image's absolute path as the source (a relative one
 * would name another file from another folder: mkfs.btrfs, for one,
 * then takes that file for a mounted one); other users, when allowed in,
 * get the modes shown. */
static int add_mount_opts(struct vd_cli *c, struct fuse_args *args)
{
	char *mopts = NULL, *fsname = NULL, *abs = realpath(c->image, NULL);
	int ret = -1;

	ret = asprintf(&fsname, "fsname=%s", abs ? abs : c->image);
	free(abs);
	if (ret < 0)
		return -1;
	ret = -1;
	if (!fuse_opt_add_opt(&mopts, c->rw || c->overlay ? "rw" : "ro") &&
	    !fuse_opt_add_opt(&mopts, VD_FUSE_MAX_READ_OPT) &&
	    !fuse_opt_add_opt(&mopts, "subtype=vdmount") &&
	    !fuse_opt_add_opt_escaped(&mopts, fsname) &&
	    !(c->allow_other &&
	      fuse_opt_add_opt(&mopts, "default_permissions")) &&
	    !fuse_opt_add_arg(args, "-o") && !fuse_opt_add_arg(args, mopts))
		ret = 0;
	free(mopts);
	free(fsname);
	return ret;
}

/* libfuse's multi-threaded loop (3.12+ semantics, as in the 3.14 we build
 * against): a worker that takes a request starts another when none is
 * left waiting, up to VD_FUSE_MAX_WORKERS; a worker that finishes one
 * exits when more than VD_FUSE_IDLE_WORKERS are then waiting. So a
 * daemon serves at most 16 requests at once and, at rest, keeps at most
 * 8 workers (plus its main thread and the decoding helpers), each with
 * at most one splice pipe. libfuse's own default keeps every worker it
 * ever started. tests/t-99-stress.sh reads the idle number from here. */
#define VD_FUSE_MAX_WORKERS 16
#define VD_FUSE_IDLE_WORKERS 8

static int loop(struct fuse_session *se, bool single)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (single)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, VD_FUSE_MAX_WORKERS);
	fuse_loop_cfg_set_idle_threads(cfg, VD_FUSE_IDLE_WORKERS);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret;
}

/* A split VMDK set keeps one descriptor per extent file open, and a set
 * may have thousands: take the hard limit the system allows us. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* mountinfo's escapes (\ooo for space, tab, newline, backslash) undone
 * in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The kernel reads ahead at most 128 KiB in a FUSE file (the default of
 * the mount's backing device; the INIT reply may only lower it), so a
 * guest file under pN/ would be read in 128 KiB round trips, one at a
 * time. Root may raise it, as for any block device: the window becomes
 * several full requests (TREE_READAHEAD), asked for together.
 * The device is found in mountinfo, not by stat(mnt), which would wait
 * for this very process to answer; the tree writes the setting once
 * INIT is done (its reply would lower it again). Best effort: nothing
 * changes when this fails (say, without root). */
static void find_readahead(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	unsigned maj = 0, min = 0;
	bool found = false;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char dev[32], path[4096];
		unsigned a, b;

		if (sscanf(line, "%*u %*u %31s %*s %4095s", dev, path) != 2 ||
		    sscanf(dev, "%u:%u", &a, &b) != 2)
			continue;
		unescape_octal(path);
		if (!strcmp(path, mnt)) { /* the last one is on top */
			maj = a;
			min = b;
			found = true;
		}
	}
	free(line);
	fclose(f);
	if (!found)
		return;

	snprintf(vd_fuse_readahead_path, sizeof(vd_fuse_readahead_path),
		 "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
}

/* INIT, answered before the process daemonises. The kernel queues it as
 * mount(2) makes the mount, and holds every other request until it is
 * answered; left to the daemon, the caller's first request after the
 * command returned (the stat a script runs next) waited for the daemon
 * to start its first worker thread, read INIT, answer it and raise the
 * readahead, then for its own answer. Answered here, the mount is ready
 * when the command returns, and the daemon's start overlaps the
 * caller's. Best effort: should reading fail, the loop reads INIT as
 * before. */
static void answer_init(struct fuse_session *se)
{
	struct fuse_buf buf = { .mem = NULL };

	if (fuse_session_receive_buf(se, &buf) > 0) {
		fuse_session_process_buf(se, &buf);
		/* The answer is taken as it is written: the kernel has
		 * set the mount's readahead from it (and would lower a
		 * setting made before). */
		vd_fuse_raise_readahead();
	}
	free(buf.mem);
}

/* The image as asked: read-only; --rw, the image itself writable;
 * --overlay=CHILD, CHILD writable over the image, made first when it
 * does not exist (and removed again if it then fails to open). */
static int open_image(struct vd_cli *c, struct vd_image_opts *io,
		      struct vd_image *img, struct vd_err *e)
{
	bool created = false;
	struct stat st;
	int ret;

	if (c->rw && c->overlay)
		return vd_fail(e, -EINVAL, "--rw and --overlay: choose one");
	if (!c->overlay) {
		io->open.writable = c->rw;
		return vd_image_open(c->image, io, img, e);
	}
	if (c->snapshot || c->disk)
		return vd_fail(e, -EINVAL, "--overlay cannot be combined with "
			       "--%s", c->snapshot ? "snapshot" : "disk");
	/* Empty: what a power loss may leave of one made and never written
	 * (it is synced at its first write): made again. */
	if (!stat(c->overlay, &st) && S_ISREG(st.st_mode) && !st.st_size &&
	    unlink(c->overlay) < 0)
		return vd_fail(e, -errno, "%s: %s", c->overlay, strerror(errno));
	if (stat(c->overlay, &st) < 0) {
		if (errno != ENOENT)
			return vd_fail(e, -errno, "%s: %s", c->overlay,
				       strerror(errno));
		ret = vd_overlay_create(c->overlay, c->image, &io->open, e);
		if (ret)
			return ret;
		created = true;
	}
	/* The base's format is recorded in the child. */
	io->open.format = "qcow2";
	io->open.writable = true;
	io->open.fresh = created;
	io->open.backed_by = c->image;
	ret = vd_image_open(c->overlay, io, img, e);
	if (ret && created)
		unlink(c->overlay);
	return ret;
}

static int run(struct vd_cli *c, struct fuse_args *args)
{
	struct vd_image_opts io = {
		.open = {
			.format = c->format,
			.snapshot = c->snapshot,
			.disk = c->disk,
			.ignore_parent_ids = c->ignore_parent_ids,
			.backing_dirs = (const char *const *)c->backing_dirs,
			.n_backing_dirs = c->n_backing_dirs,
		},
		.uid = c->uid,
		.gid = c->gid,
		.codepage = c->codepage,
	};
	struct vd_mount m = { .ns = NULL };
	struct vd_fs_opts fo = { .codepage = c->codepage };
	struct fuse_session *se = NULL;
	struct vd_err err = { "" };
	struct stat st;
	char *mnt = NULL;
	int ret = 1;

	fuse_set_log_func(vd_fuse_log);
	raise_fd_limit();
	errno = 0;
	if (stat(c->mountpoint, &st) < 0 ||
	    (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) ||
	    !(mnt = realpath(c->mountpoint, NULL))) {
		fprintf(stderr, "vdmount: %s: %s\n", c->mountpoint,
			errno ? strerror(errno) :
				"not a directory or regular file");
		return 1;
	}
	m.root_is_disk = S_ISREG(st.st_mode);
	m.allow_other = c->allow_other;

	/* Options first: a typo should not wait for a long chain to open. */
	if (vd_fs_check_opts(&fo, &err)) {
		fprintf(stderr, "vdmount: %s\n", err.msg);
		goto out;
	}
	if (add_mount_opts(c, args)) {
		fprintf(stderr, "vdmount: out of memory\n");
		goto out;
	}
	fuse_log_capture = true;
	se = fuse_session_new(args, &vd_fuse_ops, sizeof(vd_fuse_ops), &m);
	fuse_log_capture = false;
	if (!se) {
		fprintf(stderr, "vdmount: %s\n", fuse_log_caught());
		goto out;
	}

	io.disk_only = m.root_is_disk;
	io.mountpoint = mnt;
	/* Passphrases: the key files, and on a terminal what is typed for
	 * whatever stays locked (asked now, before the daemon detaches).
	 * Wiped once the image is open: the volume keys live on in the
	 * ciphers. */
	if (!c->keys)
		c->keys = vd_keys_new();
	if (c->keys)
		vd_keys_allow_prompt(c->keys, isatty(STDIN_FILENO));
	io.open.keys = c->keys;
	ret = open_image(c, &io, &m.img, &err);
	vd_keys_free(c->keys);
	c->keys = NULL;
	io.open.keys = NULL;
	if (ret) {
		ret = 1;
		fprintf(stderr, "vdmount: %s\n", err.msg);
		goto out_destroy;
	}
	ret = 1;
	m.ns = m.img.ns;

	if (fuse_set_signal_handlers(se)) {
		fprintf(stderr, "vdmount: cannot set signal handlers\n");
		goto out_destroy;
	}
	/* Daemonising moves to /: the mount and the unmount at exit use the
	 * full path. */
	if (fuse_session_mount(se, mnt)) {
		fprintf(stderr, "vdmount: %s: mount failed\n", c->mountpoint);
		goto out_signals;
	}
	find_readahead(mnt);
	answer_init(se);
	if (!c->foreground) {
		vd_log_use_syslog(1);
		/* Opening may have started decoding helpers: only the
		 * forking thread goes on in the daemon. */
		vd_pool_stop();
	}
	if (fuse_daemonize(c->foreground)) {
		fprintf(stderr, "vdmount: cannot daemonise\n");
		goto out_unmount;
	}
	/* Best effort: without it, requests are received as libfuse does. */
	vd_fuse_spin_start(se);
	ret = loop(se, c->single);
	/* libfuse reports the signal that ended the loop: being asked to
	 * stop is a clean exit. */
	if (ret == SIGINT || ret == SIGTERM || ret == SIGHUP)
		ret = 0;
	ret = ret ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out:
	free(mnt);
	vd_image_close(&m.img);
	/* No thread outlives the exit (each would hold its stack). */
	vd_pool_stop();
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct vd_cli c = { .uid = -1, .gid = -1 };
	int ret = 1;

	if (fuse_opt_parse(&args, &c, vd_opts, vd_opt_proc) || c.bad) {
		ret = 1;
		goto out;
	}
	if (c.help) {
		usage(stdout);
		ret = 0;
		goto out;
	}
	if (c.version) {
		printf("vdmount %s (libfuse %s)\n", VDMOUNT_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out;
	}
	if (!c.image || !c.mountpoint) {
		usage(stderr);
		goto out;
	}
	ret = run(&c, &args);
out:
	fuse_opt_free_args(&args);
	cli_free(&c);
	return ret;
}
