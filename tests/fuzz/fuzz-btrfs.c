/* btrfs: superblock (and its mirrors), the system chunk array and the
 * chunk tree, tree blocks and searches, subvolumes and their paths,
 * directories (dir index and dir items), inodes, xattrs, symlinks, file
 * extents (inline, regular, prealloc, holes) and compressed extents
 * (zlib, LZO, zstd). The input is a qcow2 (4 KiB clusters) of the
 * volume: mkfs.btrfs makes nothing under about 110 MiB, and a qcow2
 * keeps only the written clusters. Checksums are not enforced
 * (vd_btrfs_fuzzing): a mutation would otherwise stop at the first. */
#include <stdbool.h>

#include "tests/fuzz/fuzz.h"

extern bool vd_btrfs_fuzzing;

__attribute__((constructor)) static void btrfs_fuzz_init(void)
{
	vd_btrfs_fuzzing = true;
}

const struct fuzz_target fuzz_target = {
	.format = "qcow2",
	.split = false,
	.fix = false,
};
