/* A journal that needs recovery, written home in a writable mount.
 *
 * The read path replays the journal in memory (ext-journal.c: a map of
 * the blocks recovery would write, laid over the volume by ext-io.c).
 * Before the first change of a writable mount those blocks go where
 * jbd2 recovery would write them, into the volume and so the qcow2
 * child, and the journal and superblock are left as e2fsck (and the
 * kernel's mount) leave them after a recovery:
 *   1. every replayed block written to its home, then the disk flushed;
 *   2. the journal superblock: s_start 0 (an empty log), s_sequence
 *      past the last transaction replayed, its checksum redone; flushed;
 *   3. the filesystem superblock (vd_ext_recover_super, on libext2fs's
 *      read-write handle): needs_recovery cleared, the free block and
 *      inode counts summed from the group descriptors (ext4 keeps them
 *      lazily, so the superblock copy in the journal may be stale; the
 *      kernel sums them at mount too).
 * A crash before step 2 is durable leaves the journal to replay again
 * (replaying is idempotent: the same blocks, the same bytes); after it,
 * the blocks are home, and only needs_recovery may still be set over an
 * empty log, which both e2fsck and the kernel clear.
 *
 * Fast commits are not written home: their in-memory replay does not
 * keep the allocation bitmaps (ext-fc.c), so such a filesystem stays
 * read-only (ext.c decides before). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

struct recover_ctx {
	struct ext_fs *x;
	uint64_t n;
};

static int recover_put(void *arg, uint64_t blk, const void *buf)
{
	struct recover_ctx *c = arg;
	struct ext_fs *x = c->x;
	uint64_t off;
	int ret;

	/* blk was checked against the filesystem's blocks at the scan,
	 * and they against the volume at mount. */
	if (__builtin_mul_overflow(blk, (uint64_t)x->bs, &off) ||
	    !vd_range_ok(off, x->bs, x->base.vol->len))
		return -EIO;
	ret = vd_vol_write(x->base.vol, buf, x->bs, off);
	if (ret)
		vd_log(VD_LOG_ERR, "%s: ext journal: writing replayed block "
		       "%" PRIu64 " home failed: %s", x->name, blk,
		       strerror(-ret));
	c->n++;
	return ret;
}

int vd_ext_recover_home(struct ext_fs *x)
{
	struct recover_ctx c = { x, 0 };
	const struct vd_vol *v = x->base.vol;
	int ret;

	ret = vd_ext_replay_each(x->replay, recover_put, &c);
	if (!ret)
		ret = vd_vol_flush(v);
	if (!ret)
		ret = vd_ext_journal_reset(v, &x->jreset);
	if (!ret)
		ret = vd_vol_flush(v);
	if (ret) {
		vd_log(VD_LOG_ERR, "%s: ext: the journal's recovery could not "
		       "be written (%s); its files stay read-only", x->name,
		       strerror(-ret));
		return ret == -ENOSPC ? ret : -EROFS;
	}
	/* The volume now holds what the overlay showed. */
	vd_ext_io_drop_replay(x->io);
	vd_log(VD_LOG_INFO, "%s: ext journal: recovery written: %" PRIu64
	       " blocks, the journal emptied", x->name, c.n);
	return 0;
}

void vd_ext_recover_super(struct ext_fs *x)
{
	ext2_filsys fs = x->fs;
	uint64_t free_c = 0, free_i = 0;

	/* Ends: one pass over the groups libext2fs checked at open. */
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		free_c += ext2fs_bg_free_blocks_count(fs, g);
		free_i += ext2fs_bg_free_inodes_count(fs, g);
	}
	ext2fs_clear_feature_journal_needs_recovery(fs->super);
	ext2fs_free_blocks_count_set(fs->super, EXT2FS_C2B(fs, free_c));
	fs->super->s_free_inodes_count = (__u32)free_i;
	ext2fs_mark_super_dirty(fs);
}
