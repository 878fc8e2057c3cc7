/* ext2/3/4 through our io_manager and libext2fs: superblock, group
 * descriptors, inodes, extent trees and block maps, directories (htree,
 * inline data), symlinks, xattrs, the journal replayed in memory; the
 * input is the volume itself. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.split = false,
	.fix = false,
};
