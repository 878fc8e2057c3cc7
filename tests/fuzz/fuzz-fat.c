/* FAT12/16/32: boot sector and BPB, FSInfo, FAT chains, directories with
 * VFAT long names, cluster reads; the input is the volume itself. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.split = false,
	.fix = false,
};
