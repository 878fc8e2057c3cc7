/* Opening an image, the one way every front end does it (vdmount,
 * vdtool, the fuzz targets): the options a person gives, the chain
 * opened and checked, the volumes found and the filesystems mounted. */
#ifndef VD_IMAGE_H
#define VD_IMAGE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/log.h"
#include "core/disk.h"
#include "ns/ns.h"

/* Every option that changes what an image shows. */
struct vd_image_opts {
	struct vd_open_opts open; /* format, snapshot, backing dirs, ... */
	/* Owner shown for the synthetic entries and for files on
	 * filesystems that store none (vfat); -1: the caller's own. */
	long uid, gid;
	unsigned codepage; /* vfat short names (0: 437) */
	bool disk_only;	   /* disk.raw only: no volumes, no files */
	/* The mount point (absolute), for absolute link targets; NULL
	 * where the tree is not mounted (vdtool). */
	const char *mountpoint;
};

struct vd_image {
	const char *path;
	struct vd_disk *disk;
	struct vd_ns *ns;
};

/* 0, or -errno with e filled: one line naming the file (or option) and
 * the problem. img is zeroed first; vd_image_close undoes a success. */
int vd_image_open(const char *path, const struct vd_image_opts *o,
		  struct vd_image *img, struct vd_err *e);
void vd_image_close(struct vd_image *img);

#endif
