/* In-memory replay of an ext3/ext4 internal journal (jbd2).
 *
 * The journal is a ring of blocks inside the journal inode: a superblock
 * in block 0, then the log from s_first to the end of the ring (less the
 * fast-commit area when there is one). The log starts at s_start with
 * transaction s_sequence; a transaction is one or more descriptor blocks
 * (each followed by the copies of the filesystem blocks its tags name),
 * revoke blocks, and a commit block; every one of those blocks begins
 * with a header carrying the transaction's sequence number. The log ends
 * at the first block that is not the expected next block: a bad magic, a
 * different sequence, an unknown type, or a commit that fails its
 * checksum.
 *
 * jbd2 recovery (Linux fs/jbd2/recovery.c; e2fsprogs' e2fsck/recovery.c
 * is the same code) walks the log three times: PASS_SCAN finds the last
 * complete transaction, PASS_REVOKE collects revoke records (a block
 * revoked by transaction T is not replayed from transactions up to T),
 * PASS_REPLAY writes every tagged copy that is not revoked to its home
 * block, in log order, so the last transaction that logs a block wins.
 * The replay walk visits exactly the blocks the scan walked, so here one
 * walk records every tag and revoke record with its transaction, and the
 * revoke and replay passes are applied afterwards to the transactions
 * before the end the scan found. The result is the map of the blocks the
 * replay would write, sorted by filesystem block, each pointing at the
 * physical block of its journal copy. The kernel's decisions are kept
 * where they change what is replayed or whether recovery succeeds: the
 * commit-time test that tells stale blocks after a checksum failure from
 * corruption, the async-commit rule, revoke blocks too long for their
 * block, and checksums of the copies (jbd2's PASS_REPLAY skips a copy
 * that fails its tag's checksum, writes all the others, then fails the
 * recovery and so the mount; the disk is left replayed but for that
 * block, as e2fsck leaves it too: here the copy is left out of the map,
 * an older copy of the same block, if any, is kept, and a warning says
 * so).
 *
 * Field offsets below are from the on-disk structures in Linux
 * include/linux/jbd2.h and the kernel's
 * Documentation/filesystems/ext4/journal.rst; all big-endian. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext-journal.h"

#define JBD2_MAGIC 0xc03b3998u

/* Block header h_blocktype values. */
#define JBD2_DESCRIPTOR_BLOCK 1
#define JBD2_COMMIT_BLOCK 2
#define JBD2_SUPERBLOCK_V1 3
#define JBD2_SUPERBLOCK_V2 4
#define JBD2_REVOKE_BLOCK 5

#define JBD2_FEATURE_COMPAT_CHECKSUM 0x1
#define JBD2_FEATURE_INCOMPAT_REVOKE 0x1
#define JBD2_FEATURE_INCOMPAT_64BIT 0x2
#define JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT 0x4
#define JBD2_FEATURE_INCOMPAT_CSUM_V2 0x8
#define JBD2_FEATURE_INCOMPAT_CSUM_V3 0x10
#define JBD2_FEATURE_INCOMPAT_FAST_COMMIT 0x20
#define JBD2_KNOWN_INCOMPAT                                                 \
	(JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT |       \
	 JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT | JBD2_FEATURE_INCOMPAT_CSUM_V2 | \
	 JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_FAST_COMMIT)

/* Descriptor block tag t_flags. */
#define JBD2_FLAG_ESCAPE 0x1    /* the copy's first 4 bytes were the magic */
#define JBD2_FLAG_SAME_UUID 0x2 /* no 16-byte UUID follows this tag */
#define JBD2_FLAG_LAST_TAG 0x8

/* Commit block h_chksum_type for the v1 (COMPAT_CHECKSUM) checksum. */
#define JBD2_CRC32_CHKSUM 1
#define JBD2_CRC32_CHKSUM_SIZE 4
/* Journal superblock s_checksum_type for v2/v3 checksums. */
#define JBD2_CRC32C_CHKSUM 4

/* Linux JBD2_MIN_JOURNAL_BLOCKS: the kernel refuses a shorter journal. */
#define JNL_MIN_BLOCKS 1024
/* mke2fs's largest journal (Linux JBD2_MAX_JOURNAL_BLOCKS); a longer
 * one is refused, which bounds every array below. */
#define JNL_MAX_BLOCKS (1024u * 10000)
/* Linux JBD2_DEFAULT_FAST_COMMIT_BLOCKS: s_num_fc_blks 0 means this. */
#define JNL_DEFAULT_FC_BLOCKS 256
/* Revoke records kept in memory; a real log holds far fewer. */
#define JNL_MAX_REVOKES (1u << 22)
/* Fast-commit blocks read: 256 by default (mke2fs -J fast_commit_size
 * asks more); the rest of a longer area is not replayed. */
#define JNL_MAX_FC_BLOCKS 65536u

/* Journal blocks lblk .. lblk + len - 1 are fs blocks phys ... */
struct jnl_run {
	uint64_t lblk, phys, len;
};

/* One tag of a descriptor block, as the walk met it. */
struct jnl_tag {
	uint64_t fsblk;
	uint32_t jblk;  /* journal block holding the copy */
	uint32_t trans; /* transaction, counted from s_sequence */
	uint32_t csum;  /* t_checksum (16 bits with csum v2) */
	bool escaped;
};

struct jnl_revoke {
	uint64_t fsblk;
	uint32_t trans;
};

/* One replayed block, sorted by blk. */
struct jnl_ent {
	uint64_t blk;
	uint64_t phys; /* fs block of the journal copy */
	bool escaped;
};

/* A block written in memory by the fast-commit replay. */
struct jnl_mem {
	uint64_t blk;
	uint8_t *data; /* bs bytes */
};

/* The memory the fast-commit replay may write: far more than a replay
 * of a full fast-commit area touches. */
#define JNL_MAX_MEM_BYTES (256u << 20)

struct vd_ext_replay {
	const struct vd_vol *vol;
	uint32_t bs;
	size_t n;
	struct jnl_ent *ents;
	/* Fast commits to replay after the journal (ext-fc.c). */
	struct vd_ext_fc fc;
	/* Blocks the fast-commit replay wrote, sorted by blk; they hide
	 * the journal's copies. Written only while the mount opens, before
	 * any reader; immutable after. */
	struct jnl_mem *mem;
	size_t nmem, mem_cap, mem_bytes;
};

/* Scan state; freed when the scan ends. */
struct jnl {
	ext2_filsys fs;
	const struct vd_vol *vol;
	struct vd_err *e;
	uint32_t bs;
	uint64_t fs_blocks;
	uint8_t *blk, *data; /* one journal block each */

	struct jnl_run *runs;
	size_t nruns, runs_cap;
	int map_err;

	/* From the journal superblock. */
	uint32_t maxlen; /* s_maxlen: blocks in the journal */
	uint32_t first;	 /* s_first: first log block */
	uint32_t last;	 /* one past the last log block (before fast commits) */
	uint32_t start;	 /* s_start: where the log begins; 0 when clean */
	uint32_t seq;	 /* s_sequence: the first transaction in the log */
	uint32_t compat, incompat;
	uint32_t seed; /* crc32c of s_uuid: seed of v2/v3 checksums */
	unsigned tag_bytes, tail;

	struct jnl_tag *tags;
	size_t ntags, tags_cap;
	struct jnl_revoke *revs;
	size_t nrevs, revs_cap;
	uint32_t end; /* transactions before this one are complete */
	size_t bad_copies; /* copies skipped: they fail their checksum */
	bool fc_bad;	   /* the fast-commit area does not validate */
	bool bad_revoke;
	uint32_t bad_revoke_trans;
};

#define jnl_fail(j, err, fmt, ...)                                         \
	vd_fail((j)->e, err, "%s: ext journal: " fmt, (j)->vol->name,        \
		##__VA_ARGS__)

static bool jnl_csum_v23(const struct jnl *j)
{
	return j->incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 |
			      JBD2_FEATURE_INCOMPAT_CSUM_V3);
}

/* Grow *p (elements of size bytes) to hold n + 1; never past max. */
static int jnl_grow(void **p, size_t *cap, size_t n, size_t size, size_t max)
{
	size_t ncap;
	void *np;

	if (n < *cap)
		return 0;
	if (n >= max)
		return -E2BIG;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > max)
		ncap = max;
	np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* ------------------------------------------------ the journal inode's map */

static int jnl_map_one(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		       blk64_t ref_blk, int ref_offset, void *priv)
{
	struct jnl *j = priv;
	struct jnl_run *r;
	uint64_t phys = *blocknr;

	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt < 0)
		return 0;
	/* Stops the walk: blocks past s_maxlen are never read. */
	if ((uint64_t)blockcnt >= j->maxlen)
		return BLOCK_ABORT;
	if (phys < fs->super->s_first_data_block || phys >= j->fs_blocks) {
		j->map_err = jnl_fail(j, -EUCLEAN, "journal block %lld lies "
				      "at fs block %llu, outside the volume "
				      "(%llu blocks)", (long long)blockcnt,
				      (unsigned long long)phys,
				      (unsigned long long)j->fs_blocks);
		return BLOCK_ABORT;
	}
	r = j->nruns ? &j->runs[j->nruns - 1] : NULL;
	if (r && (uint64_t)blockcnt < r->lblk + r->len) {
		j->map_err = jnl_fail(j, -EUCLEAN, "the journal inode maps "
				      "block %lld twice", (long long)blockcnt);
		return BLOCK_ABORT;
	}
	if (r && r->lblk + r->len == (uint64_t)blockcnt &&
	    r->phys + r->len == phys) {
		r->len++;
		return 0;
	}
	/* At most maxlen runs: one per block in the worst case. */
	if (jnl_grow((void **)&j->runs, &j->runs_cap, j->nruns,
		     sizeof(*j->runs), j->maxlen)) {
		j->map_err = jnl_fail(j, -ENOMEM, "no memory for the journal "
				      "inode's block map");
		return BLOCK_ABORT;
	}
	j->runs[j->nruns++] = (struct jnl_run){ (uint64_t)blockcnt, phys, 1 };
	return 0;
}

/* The fs block holding journal block lblk, or -EUCLEAN. */
static int jnl_bmap(struct jnl *j, uint32_t lblk, uint64_t *phys_r)
{
	size_t lo = 0, hi = j->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct jnl_run *r = &j->runs[mid];

		if (lblk < r->lblk) {
			hi = mid;
		} else if (lblk - r->lblk >= r->len) {
			lo = mid + 1;
		} else {
			*phys_r = r->phys + (lblk - r->lblk);
			return 0;
		}
	}
	return jnl_fail(j, -EUCLEAN, "journal block %u is not mapped by the "
			"journal inode", lblk);
}

/* Byte offset on the volume of fs block phys, checked. */
static int jnl_vol_off(struct jnl *j, uint64_t phys, uint64_t *off_r)
{
	if (__builtin_mul_overflow(phys, (uint64_t)j->bs, off_r) ||
	    !vd_range_ok(*off_r, j->bs, j->vol->len))
		return jnl_fail(j, -EUCLEAN, "fs block %llu lies past the end "
				"of the volume (%llu bytes)",
				(unsigned long long)phys,
				(unsigned long long)j->vol->len);
	return 0;
}

/* Journal block lblk into buf (j->bs bytes). */
static int jnl_read(struct jnl *j, uint32_t lblk, uint8_t *buf)
{
	uint64_t phys, off;
	int err;

	if (lblk >= j->maxlen)
		return jnl_fail(j, -EUCLEAN, "log block %u lies past the "
				"journal's end (s_maxlen %u)", lblk, j->maxlen);
	err = jnl_bmap(j, lblk, &phys);
	if (!err)
		err = jnl_vol_off(j, phys, &off);
	if (err)
		return err;
	err = vd_vol_read(j->vol, buf, j->bs, off);
	if (err)
		return jnl_fail(j, -EIO, "cannot read journal block %u (fs "
				"block %llu)", lblk, (unsigned long long)phys);
	return 0;
}

static uint32_t jnl_crc32c(uint32_t crc, const void *p, size_t len)
{
	return ext2fs_crc32c_le(crc, p, len);
}

/* crc32c over the block with the 4 bytes at at read as zero, as the
 * kernel computes a checksum stored inside the block it covers. */
static uint32_t jnl_csum_hole(uint32_t seed, const uint8_t *b, size_t len,
			      size_t at)
{
	static const uint8_t zero[4];
	uint32_t c;

	c = jnl_crc32c(seed, b, at);
	c = jnl_crc32c(c, zero, 4);
	return jnl_crc32c(c, b + at + 4, len - at - 4);
}

/* A descriptor or revoke block's tail checksum (csum v2/v3, the block's
 * last 4 bytes); true without those features. */
static bool jnl_tail_ok(const struct jnl *j, const uint8_t *b)
{
	if (!jnl_csum_v23(j))
		return true;
	return get_be32(b + j->bs - 4) ==
	       jnl_csum_hole(j->seed, b, j->bs, j->bs - 4);
}

/* ------------------------------------------------------------ superblock */

static int jnl_load_super(struct jnl *j, const struct ext2_inode *ino)
{
	const uint8_t *b = j->blk;
	uint64_t isize = EXT2_I_SIZE(ino), total;
	uint32_t type, nfc;

	/* h_magic (0), h_blocktype (4). */
	type = get_be32(b + 4);
	if (get_be32(b) != JBD2_MAGIC ||
	    (type != JBD2_SUPERBLOCK_V1 && type != JBD2_SUPERBLOCK_V2))
		return jnl_fail(j, -EUCLEAN, "no journal superblock in the "
				"journal inode's first block");
	/* s_blocksize (0xc): the journal is read in filesystem blocks. */
	if (get_be32(b + 0xc) != j->bs)
		return jnl_fail(j, -EUCLEAN, "journal block size %u differs "
				"from the filesystem's %u", get_be32(b + 0xc),
				j->bs);
	j->maxlen = get_be32(b + 0x10); /* s_maxlen */
	j->first = get_be32(b + 0x14);	/* s_first */
	j->seq = get_be32(b + 0x18);	/* s_sequence */
	j->start = get_be32(b + 0x1c);	/* s_start */
	/* A v1 superblock has no feature words: jbd2 reads them as 0. */
	if (type == JBD2_SUPERBLOCK_V2) {
		j->compat = get_be32(b + 0x24);	  /* s_feature_compat */
		j->incompat = get_be32(b + 0x28); /* s_feature_incompat */
	}
	total = isize / j->bs;
	if (j->maxlen < JNL_MIN_BLOCKS || j->maxlen > total)
		return jnl_fail(j, -EUCLEAN, "s_maxlen %u is not within %u and "
				"the journal inode's %llu blocks", j->maxlen,
				JNL_MIN_BLOCKS, (unsigned long long)total);
	if (j->maxlen > JNL_MAX_BLOCKS)
		return jnl_fail(j, -ENOTSUP, "journal of %u blocks is longer "
				"than the %u supported", j->maxlen,
				JNL_MAX_BLOCKS);
	if (j->incompat & ~JBD2_KNOWN_INCOMPAT)
		return jnl_fail(j, -ENOTSUP, "unknown journal incompat "
				"features 0x%x", j->incompat &
				~JBD2_KNOWN_INCOMPAT);
	if ((j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) &&
	    (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3))
		return jnl_fail(j, -EUCLEAN, "journal claims checksums v2 and "
				"v3 at once");
	if (jnl_csum_v23(j) && (j->compat & JBD2_FEATURE_COMPAT_CHECKSUM))
		return jnl_fail(j, -EUCLEAN, "journal claims checksums v1 and "
				"v2/v3 at once");
	if (jnl_csum_v23(j)) {
		/* s_checksum_type (0x50, u8); s_checksum (0xfc) is crc32c of
		 * the 1024-byte superblock with itself read as zero. */
		if (b[0x50] != JBD2_CRC32C_CHKSUM)
			return jnl_fail(j, -ENOTSUP, "journal checksum type %u "
					"(not crc32c)", b[0x50]);
		if (get_be32(b + 0xfc) != jnl_csum_hole(~0u, b, 1024, 0xfc))
			return jnl_fail(j, -EUCLEAN, "journal superblock "
					"checksum mismatch");
		j->seed = jnl_crc32c(~0u, b + 0x30, 16); /* s_uuid */
		j->tail = 4;
	}
	j->last = j->maxlen;
	if (j->incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT) {
		/* s_num_fc_blks (0x54): the fast-commit area ends the
		 * journal; the log wraps before it. */
		nfc = get_be32(b + 0x54);
		if (!nfc)
			nfc = JNL_DEFAULT_FC_BLOCKS;
		if (nfc >= j->maxlen || j->maxlen - nfc < JNL_MIN_BLOCKS)
			return jnl_fail(j, -EUCLEAN, "%u fast-commit blocks "
					"leave too short a log in %u blocks",
					nfc, j->maxlen);
		j->last = j->maxlen - nfc;
	}
	if (j->first == 0 || j->first >= j->last)
		return jnl_fail(j, -EUCLEAN, "s_first %u is not within the "
				"log (1 to %u)", j->first, j->last - 1);
	if (j->start && (j->start < j->first || j->start >= j->last))
		return jnl_fail(j, -EUCLEAN, "s_start %u is not within the "
				"log (%u to %u)", j->start, j->first,
				j->last - 1);
	/* journal_tag_bytes(): 16 with csum v3; else 12 with 64bit or 8
	 * without, 2 more with csum v2. */
	if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) {
		j->tag_bytes = 16;
	} else {
		j->tag_bytes = 12;
		if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2)
			j->tag_bytes += 2;
		if (!(j->incompat & JBD2_FEATURE_INCOMPAT_64BIT))
			j->tag_bytes -= 4;
	}
	return 0;
}

/* ------------------------------------------------------------- the walk */

static uint32_t jnl_wrap(const struct jnl *j, uint32_t b)
{
	return b >= j->last ? b - (j->last - j->first) : b;
}

/* The tags of the descriptor block in j->blk, transaction trans: record
 * each with the log block of its copy; *next_r moves past the copies.
 * With the v1 checksum, *crc_r (when not NULL) takes in the copies. */
static int jnl_descriptor(struct jnl *j, uint32_t trans, uint32_t *next_r,
			  uint32_t *consumed_r, uint32_t ring, uint32_t *crc_r)
{
	const uint8_t *b = j->blk;
	size_t off = 12, end = j->bs - j->tail;
	int err;

	/* Ends: each tag moves off forward by at least tag_bytes, and the
	 * loop stops before a tag would cross the block's end. */
	while (off + j->tag_bytes <= end) {
		const uint8_t *t = b + off;
		/* t_flags: the low 16 bits at 6 in both tag layouts. */
		uint16_t flags = get_be16(t + 6);
		struct jnl_tag *tg;
		uint32_t jblk = *next_r;

		*next_r = jnl_wrap(j, *next_r + 1);
		if (++*consumed_r > ring)
			return jnl_fail(j, -EUCLEAN, "the log runs longer than "
					"the journal's %u blocks", ring);
		if (crc_r) {
			err = jnl_read(j, jblk, j->data);
			if (err)
				return err;
			*crc_r = ext2fs_crc32_be(*crc_r, j->data, j->bs);
		}
		if (jnl_grow((void **)&j->tags, &j->tags_cap, j->ntags,
			     sizeof(*j->tags), (size_t)ring + 1))
			return jnl_fail(j, -ENOMEM, "no memory for %zu "
					"journal tags", j->ntags + 1);
		tg = &j->tags[j->ntags++];
		/* t_blocknr (0), t_blocknr_high (8) with 64bit. */
		tg->fsblk = get_be32(t);
		if (j->incompat & JBD2_FEATURE_INCOMPAT_64BIT)
			tg->fsblk |= (uint64_t)get_be32(t + 8) << 32;
		tg->jblk = jblk;
		tg->trans = trans;
		/* t_checksum: be32 at 12 (v3), be16 at 4 (v2). */
		if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
			tg->csum = get_be32(t + 12);
		else
			tg->csum = get_be16(t + 4);
		tg->escaped = flags & JBD2_FLAG_ESCAPE;
		off += j->tag_bytes;
		if (!(flags & JBD2_FLAG_SAME_UUID))
			off += 16;
		if (flags & JBD2_FLAG_LAST_TAG)
			break;
	}
	return 0;
}

/* The revoke records of the revoke block in j->blk. */
static int jnl_revoke(struct jnl *j, uint32_t trans)
{
	const uint8_t *b = j->blk;
	/* r_count (0xc): bytes used, header included. */
	uint32_t count = get_be32(b + 0xc);
	size_t rlen = j->incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 8 : 4;

	if (count > j->bs - j->tail) {
		/* The recovery fails on it (see jnl_build). */
		if (!j->bad_revoke) {
			j->bad_revoke = true;
			j->bad_revoke_trans = trans;
		}
		return 0;
	}
	/* Ends: off grows by rlen up to count, which fits the block. */
	for (size_t off = 16; off + rlen <= count; off += rlen) {
		struct jnl_revoke *rv;

		if (jnl_grow((void **)&j->revs, &j->revs_cap, j->nrevs,
			     sizeof(*j->revs), JNL_MAX_REVOKES))
			return jnl_fail(j, -ENOTSUP, "more than %u revoke "
					"records", JNL_MAX_REVOKES);
		rv = &j->revs[j->nrevs++];
		rv->fsblk = rlen == 8 ? get_be64(b + off) : get_be32(b + off);
		rv->trans = trans;
	}
	return 0;
}

/* PASS_SCAN of jbd2 recovery, recording tags and revoke records on the
 * way: sets j->end to the first transaction not to replay. */
static int jnl_walk(struct jnl *j)
{
	uint32_t next = j->start, tid = j->seq, consumed = 0;
	uint32_t ring = j->last - j->first, crc = ~0u;
	uint64_t last_time = 0, time;
	bool need_time_check = false, end_set = false;
	const uint8_t *b = j->blk;
	int err;

	/* Ends: every pass consumes at least one log block, and a log
	 * longer than the ring (plus the block that ends it) is refused. */
	for (;;) {
		uint32_t type, trans = tid - j->seq;
		bool v1crc;

		if (++consumed > ring + 1)
			return jnl_fail(j, -EUCLEAN, "the log runs longer than "
					"the journal's %u blocks", ring);
		err = jnl_read(j, next, j->blk);
		if (err)
			return err;
		next = jnl_wrap(j, next + 1);
		/* h_magic (0), h_blocktype (4), h_sequence (8). */
		if (get_be32(b) != JBD2_MAGIC || get_be32(b + 8) != tid)
			break;
		type = get_be32(b + 4);
		if (type == JBD2_DESCRIPTOR_BLOCK) {
			/* A bad descriptor may be a stale block: the next
			 * commit's time tells (see below). */
			if (!jnl_tail_ok(j, b))
				need_time_check = true;
			v1crc = (j->compat & JBD2_FEATURE_COMPAT_CHECKSUM) &&
				!need_time_check && !end_set;
			if (v1crc)
				crc = ext2fs_crc32_be(crc, b, j->bs);
			err = jnl_descriptor(j, trans, &next, &consumed, ring,
					     v1crc ? &crc : NULL);
			if (err)
				return err;
			continue;
		}
		if (type == JBD2_REVOKE_BLOCK) {
			if (!jnl_tail_ok(j, b))
				need_time_check = true;
			err = jnl_revoke(j, trans);
			if (err)
				return err;
			continue;
		}
		if (type != JBD2_COMMIT_BLOCK)
			break;

		/* h_commit_sec (0x30). */
		time = get_be64(b + 0x30);
		if (need_time_check) {
			/* A block of this transaction failed its checksum.
			 * Commit times that go on increasing say it is this
			 * journal's, corrupt: the kernel fails the
			 * recovery. Otherwise it is stale: the log ends. */
			if (time >= last_time)
				return jnl_fail(j, -EUCLEAN, "transaction %u "
						"has a block that fails its "
						"checksum", tid);
			break;
		}
		if (j->compat & JBD2_FEATURE_COMPAT_CHECKSUM) {
			/* h_chksum_type (0xc), h_chksum_size (0xd),
			 * h_chksum[0] (0x10): crc32_be of the descriptors
			 * and copies, or all zero when unused. */
			uint32_t found = get_be32(b + 0x10);
			bool ok = (crc == found &&
				   b[0xc] == JBD2_CRC32_CHKSUM &&
				   b[0xd] == JBD2_CRC32_CHKSUM_SIZE) ||
				  (!b[0xc] && !b[0xd] && !found);

			/* Past a failed commit the kernel stops the
			 * transaction count here (its "break"). */
			if (end_set)
				continue;
			crc = ~0u;
			if (!ok)
				goto bad_commit;
		}
		if (jnl_csum_v23(j) &&
		    get_be32(b + 0x10) != jnl_csum_hole(j->seed, b, j->bs,
							 0x10))
			goto bad_commit;
		last_time = time;
		tid++;
		continue;
bad_commit:
		/* An older commit time: a stale block, the log ends. */
		if (time < last_time)
			break;
		if (!end_set) {
			end_set = true;
			j->end = trans;
		}
		/* With async commit the kernel walks on (and may still
		 * fail on a later bad block); else it stops counting. */
		if (!(j->incompat & JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT))
			continue;
		last_time = time;
		tid++;
	}
	if (!end_set)
		j->end = tid - j->seq;
	return 0;
}

/* ------------------------------------------------------- building the map */

static int jnl_cmp_revoke(const void *a, const void *b)
{
	const struct jnl_revoke *x = a, *y = b;

	if (x->fsblk != y->fsblk)
		return x->fsblk < y->fsblk ? -1 : 1;
	return x->trans < y->trans ? -1 : x->trans > y->trans;
}

/* A tag to replay: sorted by block, then by idx, its index in tags,
 * which is log order. */
struct jnl_pick {
	uint64_t fsblk;
	size_t idx;
};

static int jnl_cmp_pick(const void *a, const void *b)
{
	const struct jnl_pick *x = a, *y = b;

	if (x->fsblk != y->fsblk)
		return x->fsblk < y->fsblk ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Revoked: a revoke record for fsblk in a transaction at or after
 * trans (all before the end). revs is sorted, one record per block with
 * the latest transaction. */
static bool jnl_revoked(const struct jnl *j, uint64_t fsblk, uint32_t trans)
{
	size_t lo = 0, hi = j->nrevs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->revs[mid].fsblk < fsblk)
			lo = mid + 1;
		else if (j->revs[mid].fsblk > fsblk)
			hi = mid;
		else
			return j->revs[mid].trans >= trans;
	}
	return false;
}

/* A transaction's copy against its tag's checksum (v2/v3): crc32c of
 * the transaction's sequence number (big-endian) then the copy. */
static bool jnl_copy_ok(const struct jnl *j, const struct jnl_tag *t,
			const uint8_t *copy)
{
	uint8_t seq[4];
	uint32_t c;

	if (!jnl_csum_v23(j))
		return true;
	put_be32(seq, j->seq + t->trans);
	c = jnl_crc32c(j->seed, seq, 4);
	c = jnl_crc32c(c, copy, j->bs);
	if (j->incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3)
		return t->csum == c;
	return t->csum == (c & 0xffff);
}

/* The fast-commit area (journal blocks last + 1 to s_maxlen - 1, as
 * jbd2 places it) after the log's last complete transaction: ext4
 * replays the fast commits of the transaction after it (tid). Read
 * whole (bounded: the area is at most the journal) and scanned by
 * ext-fc.c as the kernel's PASS_SCAN does. An area that does not
 * validate makes the kernel fail the recovery; here its fast commits
 * are left out with a warning and the full journal is still replayed. */
static void jnl_fast_commit(struct jnl *j, struct vd_ext_fc *fc)
{
	uint32_t fc_first = j->last + 1, tid = j->seq + j->end;
	uint32_t n = fc_first < j->maxlen ? j->maxlen - fc_first : 0;
	unsigned isize = EXT2_INODE_SIZE(j->fs->super);
	uint8_t *area;
	char why[160];
	int err;

	memset(fc, 0, sizeof(*fc));
	if (!(j->incompat & JBD2_FEATURE_INCOMPAT_FAST_COMMIT) || !n)
		return;
	if (n > JNL_MAX_FC_BLOCKS)
		n = JNL_MAX_FC_BLOCKS;
	area = malloc((size_t)n * j->bs);
	if (!area) {
		vd_log(VD_LOG_WARN, "%s: ext journal: no memory for %u "
		       "fast-commit blocks; not replaying them", j->vol->name,
		       n);
		return;
	}
	/* Only the blocks that can be read: a read error ends the area,
	 * as it ends the kernel's fast-commit pass. */
	for (uint32_t i = 0; i < n; i++) {
		if (jnl_read(j, fc_first + i, area + (size_t)i * j->bs)) {
			n = i;
			break;
		}
	}
	err = vd_ext_fc_scan(area, n, j->bs, tid, isize, fc, why, sizeof(why));
	free(area);
	j->fc_bad = err != 0;
	if (err)
		vd_log(VD_LOG_WARN, "%s: ext journal: the fast commits after "
		       "transaction %u do not validate (%s): replaying the "
		       "full journal only (the kernel would refuse to "
		       "mount)", j->vol->name, tid - 1, why);
}

static int jnl_build(struct jnl *j, struct vd_ext_replay **r_r)
{
	struct vd_ext_replay *r = NULL;
	struct jnl_pick *picks = NULL;
	struct vd_ext_fc fc = { 0 };
	size_t np = 0, nr = 0;
	int err = 0;

	/* Linux (6.18 here) reads revoke records already in PASS_SCAN, to
	 * size its revoke table, so a revoke block anywhere in the log
	 * fails the recovery, even in a transaction never committed
	 * (e2fsprogs' j_corrupt_revoke_block; e2fsck 1.47 still replays
	 * the transactions before it). */
	if (j->bad_revoke)
		return jnl_fail(j, -EUCLEAN, "a revoke block of transaction %u "
				"counts more bytes than its block holds",
				j->seq + j->bad_revoke_trans);

	/* PASS_REVOKE: the records of complete transactions, one per block
	 * with its latest transaction. */
	for (size_t i = 0; i < j->nrevs; i++)
		if (j->revs[i].trans < j->end)
			j->revs[nr++] = j->revs[i];
	if (nr > 1)
		qsort(j->revs, nr, sizeof(*j->revs), jnl_cmp_revoke);
	j->nrevs = 0;
	for (size_t i = 0; i < nr; i++) {
		if (j->nrevs && j->revs[j->nrevs - 1].fsblk == j->revs[i].fsblk)
			j->nrevs--;
		j->revs[j->nrevs++] = j->revs[i];
	}

	/* PASS_REPLAY: every tag of a complete transaction not revoked. */
	picks = calloc(j->ntags ? j->ntags : 1, sizeof(*picks));
	if (!picks)
		return jnl_fail(j, -ENOMEM, "no memory for %zu journal tags",
				j->ntags);
	for (size_t i = 0; i < j->ntags; i++) {
		const struct jnl_tag *t = &j->tags[i];

		if (t->trans >= j->end || jnl_revoked(j, t->fsblk, t->trans))
			continue;
		if (t->fsblk >= j->fs_blocks) {
			err = jnl_fail(j, -EUCLEAN, "transaction %u logs fs "
				       "block %llu, past the volume's %llu "
				       "blocks", j->seq + t->trans,
				       (unsigned long long)t->fsblk,
				       (unsigned long long)j->fs_blocks);
			goto out;
		}
		if (jnl_csum_v23(j)) {
			err = jnl_read(j, t->jblk, j->data);
			if (err)
				goto out;
			if (!jnl_copy_ok(j, t, j->data)) {
				/* jbd2's PASS_REPLAY skips this one copy,
				 * writes every other, and then fails the
				 * recovery (so the mount): what it leaves
				 * on disk, and what e2fsck leaves, is the
				 * replay without this block. */
				vd_log(VD_LOG_WARN, "%s: ext journal: the copy "
				       "of fs block %llu in journal block %u "
				       "(transaction %u) fails its checksum; "
				       "replaying the rest (the kernel would "
				       "refuse to mount)", j->vol->name,
				       (unsigned long long)t->fsblk, t->jblk,
				       j->seq + t->trans);
				j->bad_copies++;
				continue;
			}
		}
		picks[np++] = (struct jnl_pick){ t->fsblk, i };
	}
	jnl_fast_commit(j, &fc);
	if (!np && !fc.ntags)
		goto out;
	if (np)
		qsort(picks, np, sizeof(*picks), jnl_cmp_pick);

	r = calloc(1, sizeof(*r));
	if (r)
		r->ents = calloc(np ? np : 1, sizeof(*r->ents));
	if (!r || !r->ents) {
		err = jnl_fail(j, -ENOMEM, "no memory for %zu replayed blocks",
			       np);
		goto out;
	}
	r->vol = j->vol;
	r->bs = j->bs;
	r->fc = fc;
	memset(&fc, 0, sizeof(fc));
	for (size_t i = 0; i < np; i++) {
		const struct jnl_tag *t = &j->tags[picks[i].idx];
		struct jnl_ent *en;
		uint64_t phys, off;

		/* The last copy in log order wins. */
		if (i + 1 < np && picks[i + 1].fsblk == picks[i].fsblk)
			continue;
		err = jnl_bmap(j, t->jblk, &phys);
		if (!err)
			err = jnl_vol_off(j, phys, &off);
		if (err)
			goto out;
		en = &r->ents[r->n++];
		en->blk = t->fsblk;
		en->phys = phys;
		en->escaped = t->escaped;
	}
	if (j->end)
		vd_log(VD_LOG_INFO, "%s: ext journal: replaying %u "
		       "transaction%s (%u to %u) in memory: %zu blocks",
		       j->vol->name, j->end, j->end == 1 ? "" : "s", j->seq,
		       j->seq + j->end - 1, r->n);
	*r_r = r;
	r = NULL;
out:
	free(fc.tags);
	free(picks);
	vd_ext_replay_free(r);
	return err;
}

int vd_ext_replay_scan(ext2_filsys fs, const struct vd_vol *vol,
		       struct vd_ext_replay **r_r, struct vd_err *e)
{
	struct vd_ext_jreset js;

	return vd_ext_recover_scan(fs, vol, r_r, &js, e);
}

int vd_ext_recover_scan(ext2_filsys fs, const struct vd_vol *vol,
			struct vd_ext_replay **r_r, struct vd_ext_jreset *js,
			struct vd_err *e)
{
	struct ext2_super_block *sb = fs->super;
	struct jnl j = { .fs = fs, .vol = vol, .e = e, .bs = fs->blocksize };
	struct ext2_inode ino;
	ext2_ino_t inum = sb->s_journal_inum;
	blk64_t phys0 = 0;
	uint64_t sb_off = 0;
	errcode_t ec;
	int err;

	*r_r = NULL;
	memset(js, 0, sizeof(*js));
	js->kernel_ok = true;
	if (!ext2fs_has_feature_journal_needs_recovery(sb))
		return 0;
	/* Without has_journal the kernel mounts as if there were no
	 * journal and ignores the flag: nothing to replay either. */
	if (!ext2fs_has_feature_journal(sb))
		return 0;
	if (!inum)
		return jnl_fail(&j, -ENOTSUP, "the journal is on an external "
				"device (not supported)");
	if (inum > sb->s_inodes_count)
		return jnl_fail(&j, -EUCLEAN, "s_journal_inum %u is not an "
				"inode (%u inodes)", inum, sb->s_inodes_count);
	j.fs_blocks = ext2fs_blocks_count(sb);

	ec = ext2fs_read_inode(fs, inum, &ino);
	if (ec)
		return jnl_fail(&j, -EUCLEAN, "cannot read journal inode %u: "
				"%s", inum, error_message(ec));
	if (!LINUX_S_ISREG(ino.i_mode) || !ino.i_links_count)
		return jnl_fail(&j, -EUCLEAN, "journal inode %u is not a "
				"regular file in use", inum);
	j.blk = malloc(j.bs);
	j.data = malloc(j.bs);
	if (!j.blk || !j.data) {
		err = jnl_fail(&j, -ENOMEM, "no memory");
		goto out;
	}

	/* Block 0 first: the superblock says how much of the inode the
	 * walk needs mapped. */
	ec = ext2fs_bmap2(fs, inum, &ino, NULL, 0, 0, NULL, &phys0);
	if (ec || !phys0 || phys0 >= j.fs_blocks) {
		err = jnl_fail(&j, -EUCLEAN, "cannot map the journal "
			       "superblock%s%s", ec ? ": " : "",
			       ec ? error_message(ec) : "");
		goto out;
	}
	j.maxlen = 1;
	j.runs_cap = 0;
	jnl_map_one(fs, &phys0, 0, 0, 0, &j);
	if (j.map_err) {
		err = j.map_err;
		goto out;
	}
	err = jnl_read(&j, 0, j.blk);
	if (!err)
		err = jnl_load_super(&j, &ino);
	if (!err)
		err = jnl_vol_off(&j, phys0, &sb_off);
	if (err)
		goto out;
	if (!j.start)
		goto out; /* clean: the kernel replays nothing */

	j.nruns = 0;
	ec = ext2fs_block_iterate3(fs, inum,
				   BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
				   NULL, jnl_map_one, &j);
	if (j.map_err) {
		err = j.map_err;
		goto out;
	}
	if (ec) {
		err = jnl_fail(&j, -EUCLEAN, "cannot map journal inode %u: %s",
			       inum, error_message(ec));
		goto out;
	}
	err = jnl_walk(&j);
	if (!err)
		err = jnl_build(&j, r_r);
	if (!err) {
		/* jbd2_journal_recover restarts the log at the transaction
		 * after the first one not replayed (++end_transaction), and
		 * e2fsck writes that with s_start 0. */
		js->dirty = true;
		js->sb_off = sb_off;
		js->next_seq = j.seq + j.end + 1;
		js->kernel_ok = !j.bad_copies && !j.fc_bad;
		js->fast_commits = vd_ext_replay_fc(*r_r) != NULL;
	}
out:
	free(j.blk);
	free(j.data);
	free(j.runs);
	free(j.tags);
	free(j.revs);
	return err;
}

/* The index of blk in r->mem, or where it would go (*found_r false). */
static size_t jnl_mem_find(const struct vd_ext_replay *r, uint64_t blk,
			   bool *found_r)
{
	size_t lo = 0, hi = r->nmem;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->mem[mid].blk < blk) {
			lo = mid + 1;
		} else if (r->mem[mid].blk > blk) {
			hi = mid;
		} else {
			*found_r = true;
			return mid;
		}
	}
	*found_r = false;
	return lo;
}

int vd_ext_replay_put(struct vd_ext_replay *r, uint64_t blk, const void *buf)
{
	bool found;
	size_t i = jnl_mem_find(r, blk, &found);
	uint8_t *d;

	if (found) {
		memcpy(r->mem[i].data, buf, r->bs);
		return 0;
	}
	if (r->mem_bytes > JNL_MAX_MEM_BYTES - r->bs)
		return -ENOSPC;
	if (jnl_grow((void **)&r->mem, &r->mem_cap, r->nmem, sizeof(*r->mem),
		     SIZE_MAX / sizeof(*r->mem)))
		return -ENOMEM;
	d = malloc(r->bs);
	if (!d)
		return -ENOMEM;
	memcpy(d, buf, r->bs);
	memmove(&r->mem[i + 1], &r->mem[i], (r->nmem - i) * sizeof(*r->mem));
	r->mem[i] = (struct jnl_mem){ blk, d };
	r->nmem++;
	r->mem_bytes += r->bs;
	return 0;
}

void vd_ext_replay_drop_mem(struct vd_ext_replay *r)
{
	for (size_t i = 0; i < r->nmem; i++)
		free(r->mem[i].data);
	free(r->mem);
	r->mem = NULL;
	r->nmem = r->mem_cap = r->mem_bytes = 0;
}

size_t vd_ext_replay_mem_blocks(const struct vd_ext_replay *r)
{
	return r ? r->nmem : 0;
}

const struct vd_ext_fc *vd_ext_replay_fc(const struct vd_ext_replay *r)
{
	return r && r->fc.ntags ? &r->fc : NULL;
}

int vd_ext_replay_block(struct vd_ext_replay *r, uint64_t blk, void *buf)
{
	size_t lo = 0, hi;
	const struct jnl_ent *en = NULL;
	bool found;

	if (!r)
		return 0;
	if (r->nmem) {
		lo = jnl_mem_find(r, blk, &found);
		if (found) {
			memcpy(buf, r->mem[lo].data, r->bs);
			return 1;
		}
		lo = 0;
	}
	hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->ents[mid].blk < blk) {
			lo = mid + 1;
		} else if (r->ents[mid].blk > blk) {
			hi = mid;
		} else {
			en = &r->ents[mid];
			break;
		}
	}
	if (!en)
		return 0;
	/* phys * bs was checked against the volume at scan time. */
	if (vd_vol_read(r->vol, buf, r->bs, en->phys * r->bs)) {
		vd_log(VD_LOG_ERR, "%s: ext journal: cannot read the journal "
		       "copy of block %llu (fs block %llu)", r->vol->name,
		       (unsigned long long)blk,
		       (unsigned long long)en->phys);
		return -EIO;
	}
	/* An escaped copy had the jbd2 magic in its first 4 bytes. */
	if (en->escaped)
		put_be32(buf, JBD2_MAGIC);
	return 1;
}

void vd_ext_replay_free(struct vd_ext_replay *r)
{
	if (!r)
		return;
	vd_ext_replay_drop_mem(r);
	free(r->fc.tags);
	free(r->ents);
	free(r);
}

int vd_ext_replay_each(struct vd_ext_replay *r,
		       int (*fn)(void *arg, uint64_t blk, const void *buf),
		       void *arg)
{
	size_t i = 0, m = 0;
	uint8_t *buf;
	int ret = 0;

	if (!r)
		return 0;
	buf = malloc(r->bs);
	if (!buf)
		return -ENOMEM;
	/* A merge of the two sorted lists (journal copies, fast-commit
	 * blocks): ends when both are used up, one entry a step. */
	while (!ret && (i < r->n || m < r->nmem)) {
		uint64_t blk;

		if (m < r->nmem && (i == r->n || r->mem[m].blk <= r->ents[i].blk))
			blk = r->mem[m].blk;
		else
			blk = r->ents[i].blk;
		if (i < r->n && r->ents[i].blk == blk)
			i++;
		if (m < r->nmem && r->mem[m].blk == blk)
			m++;
		ret = vd_ext_replay_block(r, blk, buf);
		if (ret == 1)
			ret = fn(arg, blk, buf);
		else if (!ret)
			ret = -EIO; /* cannot be: blk is in the map */
	}
	free(buf);
	return ret;
}

int vd_ext_journal_reset(const struct vd_vol *vol,
			 const struct vd_ext_jreset *js)
{
	uint8_t b[1024];
	uint32_t type, incompat = 0;
	int ret;

	if (!js->dirty)
		return 0;
	ret = vd_vol_read(vol, b, sizeof(b), js->sb_off);
	if (ret)
		return ret;
	/* As jnl_load_super found it at the scan. */
	type = get_be32(b + 4);
	if (get_be32(b) != JBD2_MAGIC ||
	    (type != JBD2_SUPERBLOCK_V1 && type != JBD2_SUPERBLOCK_V2)) {
		vd_log(VD_LOG_ERR, "%s: ext journal: the journal superblock "
		       "at byte %llu is gone", vol->name,
		       (unsigned long long)js->sb_off);
		return -EUCLEAN;
	}
	put_be32(b + 0x18, js->next_seq); /* s_sequence */
	put_be32(b + 0x1c, 0);		  /* s_start: the log is empty */
	if (type == JBD2_SUPERBLOCK_V2)
		incompat = get_be32(b + 0x28);
	if (incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 |
			JBD2_FEATURE_INCOMPAT_CSUM_V3))
		put_be32(b + 0xfc, jnl_csum_hole(~0u, b, sizeof(b), 0xfc));
	return vd_vol_write(vol, b, sizeof(b), js->sb_off);
}
