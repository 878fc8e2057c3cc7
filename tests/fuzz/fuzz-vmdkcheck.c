/* vdtool check of a VMDK (core/vmdk-check.c, table-check.c): the input
 * is the file checked (in memory), a sparse extent or a descriptor.
 * Whatever its header, tables or descriptor lines hold, the check must
 * end with a verdict or a refusal, bounded in time and memory; extents a
 * descriptor names lie outside the memory file's folder, so they are
 * refused, never opened. */
#include "core/check.h"
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.check = vd_vmdk_check,
};
