/* Checking an image file's metadata, as `qemu-img check` does (vdtool
 * check). Read-only: nothing is repaired.
 *
 * A check reads the file itself, not through an opened layer: the
 * point is to describe images that an open refuses or that a read
 * would trip over later. Only what the check needs of the header is
 * validated; anything else it finds is counted, not refused. */
#ifndef VD_CHECK_H
#define VD_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

/* What a check found, in qemu-img's terms (BdrvCheckResult and
 * BlockFragInfo): corruptions (the metadata contradicts itself; data may
 * be lost), leaks (clusters counted but unused: wasted space only),
 * check_errors (the check itself could not look at something). */
struct vd_check {
	uint64_t check_errors;
	uint64_t corruptions;
	uint64_t leaks;
	uint64_t image_end_offset; /* 0: not known */
	uint64_t total_clusters;   /* of the virtual disk; 0: not known */
	uint64_t allocated_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
};

/* Check the qcow2 image at path. One line per problem goes to msgs (in
 * qemu-img's words, so that the two can be compared). 0 when the check
 * ran (r says what it found), or -errno when it could not start (the
 * header is unreadable or not one qemu would open): e says why. */
int vd_qcow2_check(const char *path, FILE *msgs, struct vd_check *r,
		   struct vd_err *e);

/* The block tables of a VDI image and of a dynamic or differencing VHD
 * (table-check.c): the same contract. A fixed VHD has none: clean. */
int vd_vdi_check(const char *path, FILE *msgs, struct vd_check *r,
		 struct vd_err *e);
int vd_vhd_check(const char *path, FILE *msgs, struct vd_check *r,
		 struct vd_err *e);
/* A VMDK (vmdk-check.c): a descriptor file (a known createType, every
 * extent's file in its folder and as large as its line says, each
 * sparse extent checked as below), or a sparse extent
 * (monolithicSparse, streamOptimized: its embedded descriptor's
 * createType, and as vd_vmdk_sparse_check). -ENOTSUP for a COWD
 * extent. */
int vd_vmdk_check(const char *path, FILE *msgs, struct vd_check *r,
		  struct vd_err *e);
/* A hosted sparse (KDMV) extent's tables (table-check.c): grain tables
 * and grains past the end, grains named twice. -ENOTSUP for anything
 * else. */
int vd_vmdk_sparse_check(const char *path, FILE *msgs, struct vd_check *r,
			 struct vd_err *e);
/* A VHDX's BAT (vhdx-check.c): blocks past the end, over the other
 * regions, overlapping, reserved states. The image must open. */
int vd_vhdx_check(const char *path, FILE *msgs, struct vd_check *r,
		  struct vd_err *e);

#endif
