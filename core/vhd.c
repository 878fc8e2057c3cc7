/* vhd images — placeholder until the driver lands. */
#include <errno.h>

#include "core/layer.h"

static int vhd_probe(const uint8_t *head, size_t len)
{
	(void)head;
	(void)len;
	return 0;
}

static int vhd_open(struct vd_layer *l, const struct vd_layer_opts *o,
		     struct vd_err *e)
{
	(void)o;
	return vd_fail(e, -ENOTSUP, "%s: vhd is not supported yet", l->path);
}

const struct vd_format vd_format_vhd = {
	.name = "vpc", /* as qemu names it; "vhd" is accepted too */
	.probe = vhd_probe,
	.open = vhd_open,
};
