/* OVA and OVF: the tar walk (ustar, pax, GNU long names), the OVF XML
 * (References, DiskSection), and the disks it names: members of the
 * archive, or d.img beside a plain .ovf descriptor (split input). */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = NULL,
	.split = true,
	.fix = false,
};
