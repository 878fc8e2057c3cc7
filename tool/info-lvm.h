/* vdtool info: the LVM2 part (info-lvm.c), called by info.c. */
#ifndef VDT_INFO_LVM_H
#define VDT_INFO_LVM_H

#include <stddef.h>
#include <stdint.h>

#include "tool/json.h"
#include "volumes/vol.h"

/* Shared by info.c and info-lvm.c (defined in info.c): a string with its
 * control bytes shown as '?', and "1.5 GiB" for a person. */
void vdt_info_put(const char *s);
const char *vdt_info_human(uint64_t v, char *buf, size_t len);

/* "LVM volume groups:" and each VG's PVs and LVs; nothing when the
 * image holds none. */
void vdt_info_lvm_text(const struct vd_volset *s);
/* "lvm-volume-groups": [...] (empty when the image holds none). */
void vdt_info_lvm_json(struct vdt_json *j, const struct vd_volset *s);

#endif
