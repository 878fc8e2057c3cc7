/* vmdk images — placeholder until the driver lands. */
#include <errno.h>

#include "core/layer.h"

static int vmdk_probe(const uint8_t *head, size_t len)
{
	(void)head;
	(void)len;
	return 0;
}

static int vmdk_open(struct vd_layer *l, const struct vd_layer_opts *o,
		     struct vd_err *e)
{
	(void)o;
	return vd_fail(e, -ENOTSUP, "%s: vmdk is not supported yet", l->path);
}

const struct vd_format vd_format_vmdk = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.open = vmdk_open,
};
