/* MBR: primary entries, extended partitions and their EBR chains,
 * logical partitions, and whatever filesystems the partitions hold. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.split = false,
	.fix = false,
};
