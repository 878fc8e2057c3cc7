/* qcow2: header, extensions, L1/L2 walks (standard and extended L2),
 * compressed clusters (zlib, zstd), internal snapshots (each opened),
 * refcount-free reads; a backing file named d.img is the sibling of a
 * split input ("img\n--8<--\nd.img", see fuzz.h). */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "qcow2",
	.split = true,
	.fix = false,
};
