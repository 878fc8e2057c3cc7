/* VHD: footer (and its copy), dynamic header, BAT, sector bitmaps,
 * parent locators of a differencing disk whose parent is p.vhd, the
 * sibling of a split input. Checksums are recomputed after mutation. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "vpc",
	.split = true,
	.fix = true,
};
