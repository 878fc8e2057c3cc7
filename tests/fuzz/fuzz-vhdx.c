/* VHDX: headers, region tables, metadata items (parent locator included),
 * BAT and sector bitmaps, and the log replayed into memory; a
 * differencing disk names p.vhd, the sibling of a split input. The
 * CRC-32C of both headers and both region tables are recomputed after
 * mutation. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "vhdx",
	.split = true,
	.fix = true,
};
