/* VMDK: descriptor text, hosted sparse (KDMV) and COWD headers, grain
 * directories and tables, streamOptimized markers and compressed
 * grains, flat extents. A descriptor names its extent e.vmdk, the
 * sibling of a split input; a monolithic sparse file is the whole input. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "vmdk",
	.split = true,
	.fix = false,
};
