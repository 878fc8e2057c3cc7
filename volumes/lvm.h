/* volumes/lvm.h — what the LVM2 assembler found, for front ends
 * (vdtool info): read-only, valid as long as the volume set is. */
#ifndef VD_LVM_H
#define VD_LVM_H

#include <stdbool.h>
#include <stdint.h>

#include "volumes/vol.h"

extern const struct vd_assembler vd_lvm_assembler;

struct vd_lvm_pv {
	const char *uuid;	   /* as LVM shows it, with hyphens */
	const char *key;	   /* its name in the metadata: "pv0" */
	const struct vd_vol *vol;  /* where it was found; NULL: missing */
	uint64_t size;		   /* bytes the metadata records (dev_size) */
	uint64_t pe_start;	   /* bytes from the PV's start */
	uint64_t pe_count;	   /* extents */
};

struct vd_lvm_seg {
	const char *type;	   /* "striped", "raid1", "thin", ... */
	uint64_t start_extent, extent_count;
	uint32_t stripes;	   /* stripes, legs or images; 0: none */
	uint64_t stripe_size;	   /* bytes; 0 when not striped */
};

struct vd_lvm_lv {
	const char *name, *uuid;
	char dm_name[VD_VOL_LABEL_MAX]; /* "ubuntu--vg-ubuntu--lv" */
	uint64_t size;		   /* bytes */
	uint32_t n_seg;
	const struct vd_lvm_seg *seg;
	/* Shown as a volume of its own in the tree. */
	bool shown;
	/* Not shown by design: a sub-LV (_rimage_N, _tmeta, ...) or a
	 * thin pool. */
	bool sub;
	/* Why it is not shown or not usable ("" when it is). */
	char why_not[192];
	/* The volume it became (hidden sub-LVs too), or NULL. */
	const struct vd_vol *vol;
};

struct vd_lvm_vg {
	const char *name;
	const char *shown_name; /* name, or name_UUID when two VGs share it */
	const char *uuid;	/* with hyphens */
	uint64_t extent_size;	/* bytes */
	uint64_t seqno;
	uint32_t n_pv, n_missing;
	const struct vd_lvm_pv *pv;
	uint32_t n_lv;
	const struct vd_lvm_lv *lv;
};

struct vd_lvm_info {
	unsigned n_vg;
	const struct vd_lvm_vg *const *vg;
};

/* The VGs assembled in s, or NULL when there are none. */
const struct vd_lvm_info *vd_lvm_info(const struct vd_volset *s);

#endif
