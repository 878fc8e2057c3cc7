/* The table of image formats. Adding a format: one driver file and one
 * line here. raw comes last: it claims whatever nothing else does. */
#include <stddef.h>

#include "core/layer.h"

extern const struct vd_format vd_format_qcow2;
extern const struct vd_format vd_format_vmdk;
extern const struct vd_format vd_format_vhd;
extern const struct vd_format vd_format_vdi;
extern const struct vd_format vd_format_vhdx;
extern const struct vd_format vd_format_raw;

const struct vd_format *const vd_formats[] = {
	&vd_format_qcow2,
	&vd_format_vmdk,
	&vd_format_vhd,
	&vd_format_vdi,
	&vd_format_vhdx,
	&vd_format_raw,
	NULL,
};
