/* Appliances: an OVA (a tar holding an OVF descriptor and its disks) or an
 * OVF descriptor beside its disk files. The disks inside an OVA are
 * read in place, as byte ranges of the tar.
 *
 * ova.c walks the tar and picks the disk; ovf.c reads the descriptor
 * with a small, strict, bounded XML reader (there is no XML library
 * among our dependencies). */
#ifndef VD_OVA_H
#define VD_OVA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/archive.h"
#include "core/layer.h"

/* If *f is an OVA or an OVF descriptor, select disk number `disk` (from 1
 * in the descriptor's order; 0: the first) and replace *f and *path (both
 * taken over) by that disk's file and the path to show for it; *ar_r then
 * receives the archive (NULL for an OVF beside its disks), which the disk
 * owns and frees with vd_archive_free after its layers. When *f is
 * neither, nothing changes and 0 is returned (or -EINVAL when `disk` was
 * asked for). */
int vd_appliance_open(struct vd_disk *d, struct vd_file **f, char **path,
		      unsigned disk, struct vd_archive **ar_r,
		      struct vd_err *e);

/* Open member `name` of the archive a as a byte range: -ENOENT (e
 * untouched) when it holds no such member. Names are relative to the
 * folder of the archive's OVF descriptor; a name that climbs out of it
 * (absolute, or with a ".." component) is never looked up here, so the
 * caller's folder rule decides about it. */
int vd_archive_open_member(struct vd_archive *a, const char *name,
			   struct vd_file **f_r, char **path_r,
			   struct vd_err *e);

#endif
