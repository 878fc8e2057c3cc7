/* The VMDK descriptor parser alone (vmdk_desc_parse): text in, extents
 * and keys out. Much faster than a whole open, so it goes deep into the
 * line syntax; use with dict/vmdk.dict. */
#include <stdlib.h>

#include "core/vmdk.h"
#include "tests/fuzz/fuzz.h"

static int vmdk_desc_one(const uint8_t *data, size_t size)
{
	struct vmdk_desc d;
	struct vd_err e;

	/* d must be freed whatever the result. */
	vmdk_desc_parse((const char *)data, size, &d, &e);
	vmdk_desc_free(&d);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = vmdk_desc_one,
};
