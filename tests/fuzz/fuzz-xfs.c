/* XFS: superblock, AG headers, the log's head, inodes (v2/v3 cores),
 * extent lists and bmbt blocks, directories of every form, symlinks,
 * attributes (shortform, leaf, node, remote values), file data. The input
 * is a qcow2 (4 KiB clusters) of the volume: the smallest XFS mkfs.xfs
 * makes is 16 MiB or so, far above the 4 MiB a seed may have, and a
 * qcow2 keeps only its written clusters. */
#include "tests/fuzz/fuzz.h"

const struct fuzz_target fuzz_target = {
	.format = "qcow2",
	.split = false,
	.fix = false,
};
