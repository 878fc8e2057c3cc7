/* In-memory replay of an ext3/ext4 internal journal (jbd2).
 *
 * A volume whose superblock says needs_recovery holds committed
 * transactions in its journal that were not yet written to their home
 * blocks. The kernel replays them (by writing) before it mounts; here the
 * journal is scanned once, as jbd2 recovery does, into a map from each
 * filesystem block the recovery would write to the journal block holding
 * its last committed copy. The ext driver's io_manager consults the map,
 * so the tree read is the one the kernel shows after recovery, and the
 * image is never written. */
#ifndef VD_EXT_JOURNAL_H
#define VD_EXT_JOURNAL_H

#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "common/log.h"
#include "fsread/fs.h"

struct vd_ext_replay;

/* fs is open (read-only, through the ext driver's io_manager, with no
 * overlay yet). When the volume needs recovery
 * (EXT3_FEATURE_INCOMPAT_RECOVER), scan its internal journal and build
 * the map of the blocks that recovery would write: 0 with *r_r NULL when
 * there is nothing to replay; -errno with e filled when it cannot
 * (-ENOTSUP: an external journal, fast commits to replay, an unknown
 * journal feature; -EUCLEAN: a corrupt journal or one the kernel would
 * refuse to recover; -EIO: a read error). The caller then mounts
 * unreplayed with a warning naming the volume. Journal blocks are read
 * with vd_vol_read(vol, ...), never through fs->io; vol must outlive
 * the map. */
int vd_ext_replay_scan(ext2_filsys fs, const struct vd_vol *vol,
		       struct vd_ext_replay **r_r, struct vd_err *e);

/* The bytes recovery would leave in filesystem block blk
 * (fs->blocksize bytes into buf): 1 when the journal replaces the block
 * (buf filled), 0 when it does not (buf untouched), -EIO on a read error
 * (logged). Thread-safe: the map is immutable after the scan, and this
 * calls no libext2fs function. */
int vd_ext_replay_block(struct vd_ext_replay *r, uint64_t blk, void *buf);

void vd_ext_replay_free(struct vd_ext_replay *r);

#endif
