/* The tree a person sees, on the libfuse3 low-level API. */
#ifndef VD_FUSE_TREE_H
#define VD_FUSE_TREE_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "core/disk.h"
#include "ns/image.h"
#include "ns/ns.h"

struct vd_mount {
	struct vd_image img;   /* the image as opened (ns/image.h) */
	struct vd_ns *ns;      /* what the tree shows: img.ns */
	bool root_is_disk;     /* a regular file was the mountpoint */
	bool allow_other;      /* -o allow_other: default_permissions is on */
};

extern const struct fuse_lowlevel_ops vd_fuse_ops;

/* The mount's read_ahead_kb in sysfs, or "": set before the session loop
 * starts; the tree raises it to four requests at its first lookup, or
 * when vd_fuse_raise_readahead is called first. */
extern char vd_fuse_readahead_path[96];

/* Raise it now (once): only after INIT has been answered. */
void vd_fuse_raise_readahead(void);

/* The largest read request, and the max_read mount option the session
 * must be created with: vd_init asks for the same (libfuse refuses a
 * mismatch). */
#define VD_FUSE_MAX_READ 524288u
#define VD_FUSE_MAX_READ_OPT "max_read=524288"

#endif
