/* ext4 fast commits, replayed in memory after the journal.
 *
 * With the fast_commit feature, ext4 commits small changes (fsync of a
 * file, a create, a link, an unlink) not as a jbd2 transaction but as a
 * few tags in a fast-commit area at the end of the journal: the changes
 * of the transaction that follows the log's last full commit. Recovery
 * (Linux fs/ext4/fast_commit.c, run by jbd2 after its own replay; and
 * e2fsck/journal.c, its libext2fs counterpart) scans the area, keeps the
 * tags up to the last tail tag whose tid and crc32c are good, and
 * replays them in order:
 *   ADD_RANGE  map a file's logical blocks to physical ones
 *   DEL_RANGE  unmap (punch) a file's logical blocks
 *   INODE      the inode's new fields (its block map root kept, i_blocks
 *              recounted)
 *   CREAT/LINK a directory entry; UNLINK removes one
 *   HEAD/TAIL/PAD  framing only
 *
 * Here the scan runs on the journal's blocks (from ext-journal.c) and
 * the replay runs through libext2fs, as e2fsck does, on a second handle
 * opened read-write over the same io_manager: its writes go to the
 * in-memory overlay (vd_ext_replay_put), never to the image. The
 * allocation bitmaps are loaded so that extent-tree blocks the replay
 * allocates avoid every block the fast commits use, but they are not
 * written back: a read-only view never reads them. A replay that fails
 * (a corrupt inode, a tag libext2fs refuses) is dropped whole with a
 * warning, leaving the full journal's replay: never half a replay.
 *
 * Tag layout (Linux fs/ext4/fast_commit.h, all little-endian): fc_tag
 * (le16), fc_len (le16), then fc_len bytes of value. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

#define FC_TAG_ADD_RANGE 0x1
#define FC_TAG_DEL_RANGE 0x2
#define FC_TAG_CREAT 0x3
#define FC_TAG_LINK 0x4
#define FC_TAG_UNLINK 0x5
#define FC_TAG_INODE 0x6
#define FC_TAG_PAD 0x7
#define FC_TAG_TAIL 0x8
#define FC_TAG_HEAD 0x9

/* Value sizes: add_range (fc_ino, a 12-byte ext4_extent), del_range
 * (fc_ino, fc_lblk, fc_len), dentry info (fc_parent_ino, fc_ino, then
 * the name), inode (fc_ino, then the raw inode), tail (fc_tid, fc_crc),
 * head (fc_features, fc_tid). */
#define FC_ADD_RANGE_LEN 16
#define FC_DEL_RANGE_LEN 12
#define FC_DENTRY_LEN 8
#define FC_INODE_LEN 4
#define FC_TAIL_LEN 8
#define FC_HEAD_LEN 8
#define FC_TL_LEN 4

/* EXT4_FC_SUPPORTED_FEATURES: no head feature is defined. */
#define FC_SUPPORTED_FEATURES 0

/* ee_len above this marks an unwritten extent (EXT_INIT_MAX_LEN). */
#define FC_INIT_MAX_LEN 32768u

/* Logical blocks mapped one by one by all ADD_RANGE tags together: a
 * real area of 256 blocks maps far fewer; more is refused. */
#define FC_MAX_MAPPED (1u << 22)

static void fc_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void fc_why(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* ext4_fc_value_len_isvalid(): the lengths the kernel accepts. */
static bool fc_len_ok(unsigned tag, unsigned len, unsigned inode_size)
{
	switch (tag) {
	case FC_TAG_ADD_RANGE:
		return len == FC_ADD_RANGE_LEN;
	case FC_TAG_DEL_RANGE:
		return len == FC_DEL_RANGE_LEN;
	case FC_TAG_CREAT:
	case FC_TAG_LINK:
	case FC_TAG_UNLINK:
		return len > FC_DENTRY_LEN &&
		       len - FC_DENTRY_LEN <= EXT_NAME_MAX;
	case FC_TAG_INODE:
		return len >= FC_INODE_LEN + EXT2_GOOD_OLD_INODE_SIZE &&
		       len - FC_INODE_LEN <= inode_size;
	case FC_TAG_PAD:
		return true;
	case FC_TAG_TAIL:
		return len >= FC_TAIL_LEN;
	case FC_TAG_HEAD:
		return len == FC_HEAD_LEN;
	}
	return false;
}

int vd_ext_fc_scan(const uint8_t *area, size_t nblocks, unsigned bs,
		   uint32_t tid, unsigned inode_size, struct vd_ext_fc *fc,
		   char *why, size_t why_size)
{
	uint8_t *out = NULL;
	size_t olen = 0, valid_len = 0;
	uint32_t ntags = 0, valid_tags = 0, crc = 0;
	int err = 0;

	memset(fc, 0, sizeof(*fc));
	/* The area opens with a head tag, or holds nothing to replay. */
	if (!nblocks || get_le16(area) != FC_TAG_HEAD)
		return 0;
	/* The valid tags are copied out, so never more than the area. */
	out = malloc(nblocks * (size_t)bs);
	if (!out) {
		fc_why(why, why_size, "no memory");
		return -ENOMEM;
	}
	for (size_t b = 0; b < nblocks; b++) {
		const uint8_t *start = area + b * bs, *end = start + bs;
		bool stop = false;

		/* Ends: each tag moves cur forward by at least its 4-byte
		 * header, and a tag that would cross the block's end stops
		 * the scan. */
		for (const uint8_t *cur = start;
		     !stop && end - cur >= FC_TL_LEN;) {
			unsigned tag = get_le16(cur), len = get_le16(cur + 2);
			const uint8_t *val = cur + FC_TL_LEN;

			if (len > (size_t)(end - val) ||
			    !fc_len_ok(tag, len, inode_size)) {
				if (valid_tags)
					goto done;
				fc_why(why, why_size, "tag %u of %u bytes at "
				       "fast-commit block %zu is not valid",
				       tag, len, b);
				err = -EUCLEAN;
				goto out;
			}
			switch (tag) {
			case FC_TAG_HEAD:
				/* fc_features (0), fc_tid (4). */
				if (get_le32(val) & ~FC_SUPPORTED_FEATURES) {
					fc_why(why, why_size, "unknown fast-"
					       "commit features 0x%x",
					       get_le32(val));
					err = -ENOTSUP;
					goto out;
				}
				/* Fast commits of an older transaction,
				 * left behind by a full commit: nothing
				 * for this one. */
				if (get_le32(val + 4) != tid)
					goto done;
				/* fall through */
			case FC_TAG_ADD_RANGE:
			case FC_TAG_DEL_RANGE:
			case FC_TAG_CREAT:
			case FC_TAG_LINK:
			case FC_TAG_UNLINK:
			case FC_TAG_INODE:
			case FC_TAG_PAD:
				crc = ext2fs_crc32c_le(crc, cur,
						       FC_TL_LEN + len);
				break;
			case FC_TAG_TAIL:
				/* fc_tid (0), fc_crc (4): the crc covers
				 * every tag since the last tail, and this
				 * one up to fc_crc. */
				crc = ext2fs_crc32c_le(crc, cur,
						       FC_TL_LEN + 4);
				if (get_le32(val) != tid ||
				    get_le32(val + 4) != crc) {
					if (valid_tags) {
						stop = true;
						break;
					}
					fc_why(why, why_size, "the first fast "
					       "commit's tail fails its "
					       "checksum or tid");
					err = -EUCLEAN;
					goto out;
				}
				crc = 0;
				break;
			default:
				if (valid_tags)
					goto done;
				fc_why(why, why_size, "unknown fast-commit tag "
				       "%u in block %zu", tag, b);
				err = -EUCLEAN;
				goto out;
			}
			if (stop)
				break;
			memcpy(out + olen, cur, FC_TL_LEN + len);
			olen += FC_TL_LEN + len;
			ntags++;
			if (tag == FC_TAG_TAIL) {
				valid_len = olen;
				valid_tags = ntags;
			}
			cur = val + len;
		}
		if (stop)
			break;
	}
done:
	if (!valid_tags) {
		free(out);
		return 0;
	}
	fc->tags = out;
	fc->len = valid_len;
	fc->ntags = valid_tags;
	fc->tid = tid;
	return 0;
out:
	free(out);
	return err;
}

/* ------------------------------------------------------------ replay */

struct fc_replay {
	ext2_filsys fs;
	const char *name;	/* the volume's, for messages */
	uint64_t mapped;	/* logical blocks mapped so far */
	char why[200];
};

#define fc_fail(f, ...) (fc_why((f)->why, sizeof((f)->why), __VA_ARGS__), -1)

static bool fc_ino_ok(const struct fc_replay *f, uint32_t ino)
{
	return ino >= 1 && ino <= f->fs->super->s_inodes_count;
}

/* ADD_RANGE: fc_ino (0), then an ext4_extent (4): ee_block (0), ee_len
 * (4, le16), ee_start_hi (6, le16), ee_start_lo (8). */
static int fc_add_range(struct fc_replay *f, const uint8_t *v)
{
	uint32_t ino = get_le32(v), lblk = get_le32(v + 4);
	uint32_t len = get_le16(v + 8);
	uint64_t pblk = (uint64_t)get_le16(v + 10) << 32 | get_le32(v + 12);
	int flags = BMAP_SET;
	errcode_t ec;

	if (len > FC_INIT_MAX_LEN) {
		len -= FC_INIT_MAX_LEN;
		flags |= BMAP_UNINIT;
	}
	if (!fc_ino_ok(f, ino))
		return fc_fail(f, "add_range names inode %u", ino);
	if (!len)
		return 0;
	if (!vd_range_ok(pblk, len, ext2fs_blocks_count(f->fs->super)) ||
	    pblk < f->fs->super->s_first_data_block ||
	    !vd_range_ok(lblk, len, 1ull << 32))
		return fc_fail(f, "add_range of inode %u maps %u blocks at "
			       "%u to fs block %llu, outside the volume",
			       ino, len, lblk, (unsigned long long)pblk);
	if (len > FC_MAX_MAPPED - f->mapped)
		return fc_fail(f, "more than %u blocks mapped", FC_MAX_MAPPED);
	f->mapped += len;
	/* The kernel maps the range piece by piece over what the file
	 * maps already; setting each block gives the same map. */
	for (uint32_t i = 0; i < len; i++) {
		blk64_t p = pblk + i;

		ec = ext2fs_bmap2(f->fs, ino, NULL, NULL, flags, lblk + i,
				  NULL, &p);
		if (ec)
			return fc_fail(f, "add_range of inode %u, block %u: "
				       "%s", ino, lblk + i, error_message(ec));
	}
	return 0;
}

/* DEL_RANGE: fc_ino (0), fc_lblk (4), fc_len (8). */
static int fc_del_range(struct fc_replay *f, const uint8_t *v)
{
	uint32_t ino = get_le32(v), lblk = get_le32(v + 4);
	uint32_t len = get_le32(v + 8);
	errcode_t ec;

	if (!fc_ino_ok(f, ino))
		return fc_fail(f, "del_range names inode %u", ino);
	if (!len)
		return 0;
	/* ext2fs_punch's end is inclusive. */
	ec = ext2fs_punch(f->fs, ino, NULL, NULL, lblk,
			  len > UINT32_MAX - lblk ? UINT32_MAX :
						    (blk64_t)lblk + len - 1);
	if (ec)
		return fc_fail(f, "del_range of inode %u (%u blocks at %u): %s",
			       ino, len, lblk, error_message(ec));
	return 0;
}

/* INODE: fc_ino (0), then the raw on-disk inode: its fields replace the
 * inode's, but for the block map root (i_block) of an extent-mapped
 * file, which the range tags have already updated. */
static int fc_inode(struct fc_replay *f, const uint8_t *v, unsigned len)
{
	unsigned isize = EXT2_INODE_SIZE(f->fs->super);
	unsigned ilen = EXT2_GOOD_OLD_INODE_SIZE;
	uint32_t ino = get_le32(v);
	const uint8_t *raw = v + FC_INODE_LEN;
	struct ext2_inode_large *in = NULL, *fci = NULL;
	blk64_t blocks;
	errcode_t ec;
	int ret = 0;

	if (!fc_ino_ok(f, ino))
		return fc_fail(f, "inode tag names inode %u", ino);
	if (isize > EXT2_GOOD_OLD_INODE_SIZE) {
		/* i_extra_isize (128): at least up to i_checksum_hi. */
		unsigned extra = get_le16(raw + EXT2_GOOD_OLD_INODE_SIZE);

		if (extra < 4 || extra > isize - EXT2_GOOD_OLD_INODE_SIZE)
			return fc_fail(f, "inode %u: i_extra_isize %u", ino,
				       extra);
		ilen += extra;
	}
	if (ilen > len - FC_INODE_LEN)
		return fc_fail(f, "inode %u: %u bytes of inode in a tag of %u",
			       ino, ilen, len);
	in = calloc(1, isize);
	fci = calloc(1, isize);
	if (!in || !fci) {
		ret = fc_fail(f, "no memory");
		goto out;
	}
	ec = ext2fs_read_inode_full(f->fs, ino, EXT2_INODE(in), ilen);
	if (ec) {
		ret = fc_fail(f, "inode %u: %s", ino, error_message(ec));
		goto out;
	}
	/* The raw inode is little-endian, as libext2fs holds it on a
	 * little-endian host (the only kind this builds for). */
	memcpy(fci, raw, ilen);
	memcpy(in, fci, offsetof(struct ext2_inode_large, i_block));
	memcpy(&in->i_generation, &fci->i_generation,
	       ilen - offsetof(struct ext2_inode_large, i_generation));
	if (in->i_flags & EXT4_EXTENTS_FL) {
		/* A file new since the last full commit has no tree yet:
		 * an empty root, as the kernel makes. */
		uint8_t *eh = (uint8_t *)in->i_block;

		if (get_le16(eh) != EXT3_EXT_MAGIC) {
			memset(eh, 0, 12);
			fc_put_le16(eh, EXT3_EXT_MAGIC);
			fc_put_le16(eh + 4, (sizeof(in->i_block) - 12) / 12);
		}
	} else if (in->i_flags & EXT4_INLINE_DATA_FL) {
		memcpy(in->i_block, fci->i_block, sizeof(in->i_block));
	}
	ec = ext2fs_count_blocks(f->fs, ino, EXT2_INODE(in), &blocks);
	if (!ec)
		ec = ext2fs_iblk_set(f->fs, EXT2_INODE(in), blocks);
	if (!ec)
		ec = ext2fs_write_inode_full(f->fs, ino, EXT2_INODE(in), ilen);
	if (ec)
		ret = fc_fail(f, "inode %u: %s", ino, error_message(ec));
out:
	free(in);
	free(fci);
	return ret;
}

/* CREAT, LINK, UNLINK: fc_parent_ino (0), fc_ino (4), the name (8). */
static int fc_dentry(struct fc_replay *f, unsigned tag, const uint8_t *v,
		     unsigned len)
{
	uint32_t dir = get_le32(v), ino = get_le32(v + 4);
	unsigned nlen = len - FC_DENTRY_LEN;
	char name[EXT_NAME_MAX + 1];
	struct ext2_inode in;
	errcode_t ec;
	int ft;

	if (!fc_ino_ok(f, dir) || !fc_ino_ok(f, ino))
		return fc_fail(f, "dentry tag names inodes %u and %u", dir,
			       ino);
	memcpy(name, v + FC_DENTRY_LEN, nlen);
	name[nlen] = '\0';
	if (strlen(name) != nlen)
		return fc_fail(f, "dentry tag's name holds a NUL byte");
	if (tag == FC_TAG_UNLINK) {
		/* Gone already is fine: the kernel ignores it too. */
		ext2fs_unlink(f->fs, dir, name, ino, 0);
		return 0;
	}
	ec = ext2fs_read_inode(f->fs, ino, &in);
	if (ec)
		return fc_fail(f, "link of inode %u: %s", ino,
			       error_message(ec));
	switch (in.i_mode & LINUX_S_IFMT) {
	case LINUX_S_IFREG: ft = EXT2_FT_REG_FILE; break;
	case LINUX_S_IFDIR: ft = EXT2_FT_DIR; break;
	case LINUX_S_IFCHR: ft = EXT2_FT_CHRDEV; break;
	case LINUX_S_IFBLK: ft = EXT2_FT_BLKDEV; break;
	case LINUX_S_IFLNK: ft = EXT2_FT_SYMLINK; break;
	case LINUX_S_IFIFO: ft = EXT2_FT_FIFO; break;
	case LINUX_S_IFSOCK: ft = EXT2_FT_SOCK; break;
	default:
		return fc_fail(f, "link of inode %u of mode 0%o", ino,
			       in.i_mode);
	}
	if (!ext2fs_has_feature_filetype(f->fs->super))
		ft = 0;
	/* An entry of that name may be there already (the kernel's link
	 * replaces it). */
	ext2fs_unlink(f->fs, dir, name, 0, EXT2FS_UNLINK_FORCE);
	ec = ext2fs_link(f->fs, dir, name, ino, ft);
	if (ec == EXT2_ET_DIR_NO_SPACE) {
		ec = ext2fs_expand_dir(f->fs, dir);
		if (!ec)
			ec = ext2fs_link(f->fs, dir, name, ino, ft);
	}
	if (ec)
		return fc_fail(f, "link of inode %u as \"%s\" in directory "
			       "%u: %s", ino, name, dir, error_message(ec));
	return 0;
}

static int fc_replay_tags(struct fc_replay *f, const struct vd_ext_fc *fc)
{
	size_t off = 0;
	int ret = 0;

	/* Ends: the tags were checked by the scan to lie end to end in
	 * fc->len bytes; each step moves off past one. */
	for (uint32_t n = 0; n < fc->ntags && !ret; n++) {
		const uint8_t *t = fc->tags + off;
		unsigned tag = get_le16(t), len = get_le16(t + 2);
		const uint8_t *v = t + FC_TL_LEN;

		if (!vd_range_ok(off, FC_TL_LEN + (size_t)len, fc->len))
			return fc_fail(f, "tag %u runs past the tags", n);
		off += FC_TL_LEN + len;
		switch (tag) {
		case FC_TAG_ADD_RANGE:
			ret = fc_add_range(f, v);
			break;
		case FC_TAG_DEL_RANGE:
			ret = fc_del_range(f, v);
			break;
		case FC_TAG_INODE:
			ret = fc_inode(f, v, len);
			break;
		case FC_TAG_CREAT:
		case FC_TAG_LINK:
		case FC_TAG_UNLINK:
			ret = fc_dentry(f, tag, v, len);
			break;
		default: /* head, tail, pad */
			break;
		}
	}
	return ret;
}

/* Mark every block an ADD_RANGE maps as in use, before the replay
 * allocates: what the kernel's scan records as regions to exclude. */
static void fc_reserve(struct fc_replay *f, const struct vd_ext_fc *fc)
{
	size_t off = 0;
	uint64_t nblk = ext2fs_blocks_count(f->fs->super);

	for (uint32_t n = 0; n < fc->ntags; n++) {
		const uint8_t *t = fc->tags + off, *v = t + FC_TL_LEN;
		unsigned len = get_le16(t + 2);

		if (!vd_range_ok(off, FC_TL_LEN + (size_t)len, fc->len))
			break;
		off += FC_TL_LEN + len;
		if (get_le16(t) == FC_TAG_ADD_RANGE) {
			uint32_t elen = get_le16(v + 8);
			uint64_t p = (uint64_t)get_le16(v + 10) << 32 |
				     get_le32(v + 12);

			if (elen > FC_INIT_MAX_LEN)
				elen -= FC_INIT_MAX_LEN;
			if (elen && p >= f->fs->super->s_first_data_block &&
			    vd_range_ok(p, elen, nblk))
				ext2fs_mark_block_bitmap_range2(
					f->fs->block_map, p, elen);
		}
	}
}

int vd_ext_fc_replay(struct ext_io *io, const char *io_name,
		     struct vd_ext_replay *r, const char *vol_name)
{
	const struct vd_ext_fc *fc = vd_ext_replay_fc(r);
	struct fc_replay f = { .name = vol_name };
	errcode_t ec;
	int ret = 0;

	if (!fc)
		return 0;
	vd_ext_io_set_writable(io, true);
	/* MASTER_SB_ONLY: the superblock's backups are not rewritten;
	 * SKIP_MMP: nothing is written to claim the volume;
	 * IGNORE_CSUM_ERRORS: blocks the replay rewrites get new
	 * checksums, as e2fsck's replay does. */
	ec = ext2fs_open2(io_name, NULL,
			  EXT2_FLAG_RW | EXT2_FLAG_64BITS |
				  EXT2_FLAG_MASTER_SB_ONLY | EXT2_FLAG_SKIP_MMP |
				  EXT2_FLAG_IGNORE_CSUM_ERRORS,
			  0, 0, vd_ext_io_manager, &f.fs);
	if (ec) {
		f.fs = NULL;
		ret = fc_fail(&f, "cannot open for the replay: %s",
			      error_message(ec));
		goto out;
	}
	ec = ext2fs_read_bitmaps(f.fs);
	if (ec) {
		ret = fc_fail(&f, "cannot read the allocation bitmaps: %s",
			      error_message(ec));
		goto out;
	}
	fc_reserve(&f, fc);
	ret = fc_replay_tags(&f, fc);
	if (!ret) {
		/* The bitmaps stay unwritten (see the top); the superblock
		 * and group descriptors go to memory. */
		f.fs->flags &= ~(EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY);
		ec = ext2fs_close_free(&f.fs);
		if (ec)
			ret = fc_fail(&f, "cannot write the replay: %s",
				      error_message(ec));
	}
out:
	if (f.fs) {
		/* Nothing more reaches the overlay from a failed replay. */
		f.fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY |
				 EXT2_FLAG_IB_DIRTY);
		ext2fs_free(f.fs);
		f.fs = NULL;
	}
	vd_ext_io_set_writable(io, false);
	if (ret) {
		vd_ext_replay_drop_mem(r);
		vd_log(VD_LOG_WARN, "%s: ext journal: the fast commits of "
		       "transaction %u cannot be replayed (%s); showing the "
		       "full journal's replay only", vol_name, fc->tid, f.why);
		return -EUCLEAN;
	}
	vd_log(VD_LOG_INFO, "%s: ext journal: replayed %u fast-commit tags of "
	       "transaction %u in memory: %zu blocks", vol_name, fc->ntags,
	       fc->tid, vd_ext_replay_mem_blocks(r));
	return 0;
}
