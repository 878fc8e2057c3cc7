/* vdtool info: the LVM2 part (info-lvm.c), called by info.c. */
#ifndef VDT_INFO_LVM_H
#define VDT_INFO_LVM_H

#include "tool/json.h"
#include "volumes/vol.h"

/* "LVM volume groups:" and each VG's PVs and LVs; nothing when the
 * image holds none. */
void vdt_info_lvm_text(const struct vd_volset *s);
/* "lvm-volume-groups": [...] (empty when the image holds none). */
void vdt_info_lvm_json(struct vdt_json *j, const struct vd_volset *s);

#endif
