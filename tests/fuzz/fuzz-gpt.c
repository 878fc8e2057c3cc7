/* GPT: protective MBR, primary and backup headers, entry arrays (512-
 * and 4096-byte sectors). Header and entry CRCs are recomputed after
 * mutation, so the fuzzer reaches the entries themselves. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.split = false,
	.fix = true,
};
