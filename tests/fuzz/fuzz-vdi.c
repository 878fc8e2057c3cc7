/* VDI: header, block map, and a differencing image whose parent (found
 * by UUID among the .vdi files of its folder) is p.vdi, the sibling of a
 * split input. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "vdi",
	.split = true,
};
