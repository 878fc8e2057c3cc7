/* vdtool check's qcow2 walk (core/qcow2-fsck.c): the input is the image
 * file (an in-memory file). Whatever the header, tables and refcounts
 * hold, the check must end, bounded in time and memory, with a verdict
 * or a refusal. */
#include "core/check.h"
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.check = vd_qcow2_check,
};
