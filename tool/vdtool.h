/* vdtool: the tree vdmount shows, without FUSE.
 *
 * One program, one source file per command (info.c, ls.c for ls and
 * cat, cp.c, convert.c, verify.c); this header is what they share:
 * the options every command takes, opening an image into the same
 * namespace as the mount (ns/ns.h), and path lookup in it. */
#ifndef VDTOOL_H
#define VDTOOL_H

#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"
#include "core/disk.h"
#include "ns/image.h"
#include "ns/ns.h"

/* Exit status (documented in man/vdtool.1). */
enum {
	VDT_EXIT_OK = 0,
	VDT_EXIT_FAIL = 1,  /* an image, path or copy failed */
	VDT_EXIT_USAGE = 2, /* a bad command line */
};

/* The options every command takes, as vdmount's. */
struct vdt_common {
	struct vd_image_opts io;
	char **backing_dirs; /* io.open.backing_dirs, owned */
};

/* Long option values of the common options, above any char. */
enum {
	VDT_OPT_BACKING_DIR = 0x100,
	VDT_OPT_SNAPSHOT,
	VDT_OPT_DISK,
	VDT_OPT_IGNORE_PARENT_ID,
	VDT_OPT_CODEPAGE,
	VDT_OPT_UID,
	VDT_OPT_GID,
	VDT_OPT_KEY_FILE,
	VDT_OPT_FIRST_FREE, /* a command's own long-only options start here */
};

#define VDT_COMMON_LONGOPTS                                               \
	{ "format", required_argument, NULL, 'F' },                       \
	{ "backing-dir", required_argument, NULL, VDT_OPT_BACKING_DIR },  \
	{ "key-file", required_argument, NULL, VDT_OPT_KEY_FILE },        \
	{ "snapshot", required_argument, NULL, VDT_OPT_SNAPSHOT },        \
	{ "disk", required_argument, NULL, VDT_OPT_DISK },                \
	{ "ignore-parent-id", no_argument, NULL,                          \
	  VDT_OPT_IGNORE_PARENT_ID },                                     \
	{ "codepage", required_argument, NULL, VDT_OPT_CODEPAGE },        \
	{ "uid", required_argument, NULL, VDT_OPT_UID },                  \
	{ "gid", required_argument, NULL, VDT_OPT_GID },                  \
	{ "help", no_argument, NULL, 'h' }
/* Short options of the common set, for getopt_long's optstring. */
#define VDT_COMMON_SHORTOPTS "F:h"
/* The lines of --help that describe them. */
extern const char vdt_common_help[];

/* Handle option opt (with optarg) if it is a common one: 1 handled, 0 not
 * a common option, -1 a bad value (reported). */
int vdt_common_opt(struct vdt_common *c, int opt, const char *arg);
void vdt_common_free(struct vdt_common *c);

/* Open path (errors printed as vdmount prints them). 0 or -1. */
int vdt_open(const struct vdt_common *c, const char *path,
	     struct vd_image *img_r);
/* Open only the disk (img_r->ns stays NULL): for commands that read the
 * flat disk and need no partitions or filesystems. 0 or -1. */
int vdt_open_disk(const struct vdt_common *c, const char *path,
		  struct vd_image *img_r);
void vdt_close(struct vd_image *img);

/* The namespace inode of a path as it appears under a mount ("/",
 * "/disk.raw", "/p2/etc/passwd"; a missing leading '/' is allowed).
 * Intermediate symlinks are followed within their own volume (an
 * absolute target starts at that volume's root, as in a chroot), at most
 * 40 of them; the last component is followed only when follow is true.
 * 0, or -errno (-ENOENT, -ENOTDIR, -ELOOP, ...). */
int vdt_resolve(struct vd_ns *ns, const char *path, bool follow,
		uint64_t *ino_r);

/* A directory's entries, "." and ".." included, sorted by name (bytes,
 * as LC_ALL=C ls sorts). */
struct vdt_dirent {
	char *name;
	uint64_t ino;
	unsigned type; /* DT_* as the filesystem says */
};
/* 0 or -errno. At most VDT_MAX_DIRENTS entries (-EFBIG beyond). */
#define VDT_MAX_DIRENTS (1u << 24)
int vdt_readdir(struct vd_ns *ns, uint64_t dir, struct vdt_dirent **ents_r,
		size_t *n_r);
void vdt_dirents_free(struct vdt_dirent *ents, size_t n);

/* "vdtool CMD: " + message on stderr. */
__attribute__((format(printf, 1, 2))) void vdt_error(const char *fmt, ...);
/* The command being run, for messages. */
extern const char *vdt_cmd;

/* s made safe for a terminal, malloc'd (NULL on no memory): a backslash
 * becomes "\\", control characters (C0, DEL, and C1 as UTF-8) the C
 * escapes \n \t ... or \ooo octal, bytes that are not valid UTF-8
 * \ooo; printable ASCII and valid UTF-8 pass unchanged (as ls -b in a
 * UTF-8 locale, but spaces stay spaces). Guest names reach the terminal
 * only through this. */
char *vdt_escape(const char *s);
/* Print s escaped as vdt_escape. */
void vdt_put_escaped(FILE *f, const char *s);

/* Commands that read a file or the disk front to back start the host's
 * reads of the next VDT_AHEAD bytes before they need them, VDT_AHEAD_STEP
 * at a time, as fuse/tree.c does for a mount's sequential readers: the
 * host disk then has several requests in flight, where the kernel's
 * readahead of the image file alone often keeps one (half the speed).
 * Wider than the tree's window: one reader, and measured so. */
#define VDT_AHEAD (64u << 20)
#define VDT_AHEAD_STEP (32u << 20)

/* vd_ahead_next with the window above. */
static inline uint64_t vdt_ahead(uint64_t *ahead_r, uint64_t off,
				 uint64_t end, uint64_t *from_r)
{
	return vd_ahead_next(ahead_r, off, end, VDT_AHEAD, VDT_AHEAD_STEP,
			     from_r);
}

/* Write all n bytes (short writes and EINTR retried): 0 or -errno. */
int vdt_write_all(int fd, const void *buf, size_t n);
int vdt_pwrite_all(int fd, const void *buf, size_t n, uint64_t off);
/* As vdt_pwrite_all, but all-zero 4 KiB blocks (at offsets that are
 * multiples of 4 KiB) are skipped, left as holes of a file that is
 * ftruncated to its size at the end. */
int vdt_pwrite_sparse(int fd, const void *buf, size_t n, uint64_t off);

/* A one-line progress bar on stderr (bytes, percent, rate, ETA), drawn
 * only when stderr is a terminal and the user did not ask for quiet;
 * redrawn at most five times a second. vdt_progress_add may be called
 * from several threads. */
struct vdt_progress {
	bool on;
	uint64_t total; /* 0: unknown */
	_Atomic uint64_t done;
	double start;
	_Atomic long long last_ms; /* when last drawn, ms after start */
	pthread_mutex_t lock;	   /* one redraw at a time */
};
void vdt_progress_init(struct vdt_progress *p, bool quiet, uint64_t total);
void vdt_progress_add(struct vdt_progress *p, uint64_t n);
/* The final line (left on the screen), then a newline. */
void vdt_progress_end(struct vdt_progress *p);

/* The commands: argv[0] is the command's name. */
int vdt_info(int argc, char **argv);
int vdt_ls(int argc, char **argv);
int vdt_cat(int argc, char **argv);
int vdt_cp(int argc, char **argv);
int vdt_convert(int argc, char **argv);
int vdt_verify(int argc, char **argv);
int vdt_check(int argc, char **argv);
int vdt_copy_in(int argc, char **argv);
int vdt_inspect(int argc, char **argv);

#endif
