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

#include <stdbool.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "common/log.h"
#include "fsread/fs.h"

struct vd_ext_replay;

/* The fast commits to replay after the journal: the tags (little-endian
 * TLVs as on disk: fc_tag, fc_len, value) of the valid prefix of the
 * fast-commit area, ntags of them in len bytes. */
struct vd_ext_fc {
	uint8_t *tags;
	size_t len;
	uint32_t ntags;
	uint32_t tid; /* the transaction they belong to */
};

/* fs is open (read-only, through the ext driver's io_manager, with no
 * overlay yet). When the volume needs recovery
 * (EXT3_FEATURE_INCOMPAT_RECOVER), scan its internal journal and build
 * the map of the blocks that recovery would write, and find the fast
 * commits to replay after it (vd_ext_replay_fc; a fast-commit area that
 * does not validate is left out with a warning, as the kernel would
 * replay nothing of it): 0 with *r_r NULL when there is nothing to
 * replay; -errno with e filled when it cannot (-ENOTSUP: an external
 * journal, an unknown journal feature; -EUCLEAN: a corrupt journal or
 * one the kernel would refuse to recover; -EIO: a read error). The
 * caller then mounts unreplayed with a warning naming the volume.
 * Journal blocks are read with vd_vol_read(vol, ...), never through
 * fs->io; vol must outlive the map. */
int vd_ext_replay_scan(ext2_filsys fs, const struct vd_vol *vol,
		       struct vd_ext_replay **r_r, struct vd_err *e);

/* What recovery leaves in the journal itself once the replayed blocks
 * are home (a writable mount writes them: vd_ext_journal_reset). */
struct vd_ext_jreset {
	bool dirty;	   /* the log is not empty (s_start != 0) */
	uint64_t sb_off;   /* byte offset of the journal superblock */
	uint32_t next_seq; /* s_sequence after recovery */
	/* The kernel's recovery would succeed (no copy failing its
	 * checksum, a fast-commit area that validates) and the replay is
	 * the journal's alone (no fast commits: their replay here does
	 * not keep the allocation bitmaps). */
	bool kernel_ok, fast_commits;
};

/* As vd_ext_replay_scan, and when it returns 0 also fills *js (zeroed
 * first: dirty false when the log was empty). */
int vd_ext_recover_scan(ext2_filsys fs, const struct vd_vol *vol,
			struct vd_ext_replay **r_r, struct vd_ext_jreset *js,
			struct vd_err *e);

/* Each block the replay writes, in block order, with the bytes recovery
 * leaves in it (as vd_ext_replay_block): fn's nonzero return stops the
 * walk and is returned; -EIO when a journal copy cannot be read. */
int vd_ext_replay_each(struct vd_ext_replay *r,
		       int (*fn)(void *arg, uint64_t blk, const void *buf),
		       void *arg);

/* Write the journal superblock of vol as recovery leaves it (js from
 * vd_ext_recover_scan): an empty log (s_start 0) that goes on at
 * transaction js->next_seq, its checksum redone. 0 (nothing to do when
 * the log was empty), -EUCLEAN when the block is no longer a journal
 * superblock, or vd_vol_write's -errno. */
int vd_ext_journal_reset(const struct vd_vol *vol,
			 const struct vd_ext_jreset *js);

/* The bytes recovery would leave in filesystem block blk
 * (fs->blocksize bytes into buf): 1 when the journal replaces the block
 * (buf filled), 0 when it does not (buf untouched), -EIO on a read error
 * (logged). Thread-safe: the map is immutable after the scan, and this
 * calls no libext2fs function. */
int vd_ext_replay_block(struct vd_ext_replay *r, uint64_t blk, void *buf);

void vd_ext_replay_free(struct vd_ext_replay *r);

/* The fast commits the scan found to replay (ext-fc.c), or NULL. */
const struct vd_ext_fc *vd_ext_replay_fc(const struct vd_ext_replay *r);

/* Fast-commit replay only, while the mount opens (no reader yet): block
 * blk now holds buf (bs bytes), above the journal's copy. 0, -ENOMEM,
 * or -ENOSPC past a fixed budget of memory. */
int vd_ext_replay_put(struct vd_ext_replay *r, uint64_t blk, const void *buf);
/* Forget every block put (a fast-commit replay that failed). */
void vd_ext_replay_drop_mem(struct vd_ext_replay *r);
size_t vd_ext_replay_mem_blocks(const struct vd_ext_replay *r);

/* ---- ext-fc.c: ext4 fast commits ---- */

/* The kernel's PASS_SCAN of the fast-commit area (nblocks blocks of bs
 * bytes at area) for transaction tid: fills fc with the tags up to the
 * last tail whose tid and checksum are good (fc->ntags 0: nothing to
 * replay, e.g. an area that does not open with a head tag for tid).
 * -EUCLEAN or -ENOTSUP with why filled when the area does not validate
 * (the kernel fails the recovery then). inode_size: the filesystem's. */
int vd_ext_fc_scan(const uint8_t *area, size_t nblocks, unsigned bs,
		   uint32_t tid, unsigned inode_size, struct vd_ext_fc *fc,
		   char *why, size_t why_size);

#endif
