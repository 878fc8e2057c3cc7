/* NTFS through our device-operations table and libntfs-3g: the boot
 * sector and $MFT checks in front of the library, then the library's
 * mount ($MFT, $MFTMirr, $Volume, $UpCase, $AttrDef, $Bitmap), MFT
 * records and their fixups, attribute lists, runlists, index B-trees,
 * reparse points, named streams and compressed data, as the walk reaches
 * them; the input is the volume itself. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.split = false,
	.fix = false,
};
