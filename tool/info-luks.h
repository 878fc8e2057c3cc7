/* vdtool info: the LUKS part (info-luks.c), called by info.c. */
#ifndef VDT_INFO_LUKS_H
#define VDT_INFO_LUKS_H

#include "tool/json.h"
#include "volumes/vol.h"

/* "LUKS headers:" and each header's version, cipher, UUID and key slots
 * with their KDFs (no key needed); nothing when the image holds none. */
void vdt_info_luks_text(const struct vd_volset *s);
/* "luks": [...] (empty when the image holds none). */
void vdt_info_luks_json(struct vdt_json *j, const struct vd_volset *s);

#endif
