/* ext2/3/4 file data: block maps resolved under the filesystem lock, data
 * read through core outside it.
 *
 * open reads the inode and maps the start of the file into a window of at
 * most EXT_WIN_MAX extents. A read finds its blocks in the window and
 * reads them with vd_ext_io_read, no lock held, so reads of one file and
 * of many run in parallel. A read past the window maps the next window
 * (under the lock) and keeps it for the reads that follow; windows are
 * shared by reference count so a reader never sees one freed. A huge,
 * fragmented file therefore costs at most one window of memory per open,
 * never an array proportional to the file.
 *
 * Two kinds of map (ext4 spec, "The Contents of inode.i_block"):
 * - extents (EXT4_EXTENTS_FL): the tree is walked here from the index
 *   entry covering the window's start, every node's header, depth and
 *   checksum checked; leaves must strictly increase and stay inside the
 *   filesystem.
 * - the ext2/ext3 block map: 12 direct pointers, then single, double and
 *   triple indirect blocks, walked here (libext2fs can only walk a whole
 *   map from the start).
 * Inline-data files (EXT4_INLINE_DATA_FL) are copied at open, whole (at
 * most 60 bytes plus one xattr value). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Extents per window: 8192 * 24 bytes = 192 KiB per open file at most. */
#define EXT_WIN_MAX 8192u
/* The most bytes an inline-data file holds: 60 in i_block plus the
 * system.data xattr, which lives in the inode body (at most 64 KiB
 * inodes; the kernel caps inode size at the block size). */
#define EXT_INLINE_MAX (60u + 65536u)

struct ext_file {
	struct vd_fs_file base; /* first */
	struct ext_fs *x;
	uint64_t ino;
	uint64_t size;	  /* bytes (EXT2_I_SIZE) */
	uint64_t nblocks; /* size in blocks, rounded up */
	uint8_t *inline_data; /* inline-data files: the bytes, else NULL */
	size_t inline_len;
	struct ext2_inode_large inode; /* as read at open, to map windows */
	pthread_mutex_t lock; /* guards win and every window's refs */
	struct ext_win *win;  /* the last window mapped */
	/* A writable mount: the file may change under the handle, so
	 * nothing is kept; every read goes through libext2fs under the
	 * filesystem's lock (vd_ext_opened counts the handle). */
	bool rw;
};

/* ---- building windows ---- */

struct ext_mapper {
	struct ext_fs *x;
	uint64_t ino;
	uint64_t lblk;	  /* the window starts here */
	uint64_t nblocks; /* map nothing at or past this */
	struct ext_win *w;
	bool full; /* w holds EXT_WIN_MAX extents: stop */
};

static int ext_map_corrupt(struct ext_mapper *m, const char *what,
			   uint64_t a, uint64_t b)
{
	vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": %s (%" PRIu64
	       ", %" PRIu64 ")", m->x->name, m->ino, what, a, b);
	return -EIO;
}

/* Append logical blocks [lblk, lblk + len) stored from pblk. Callers
 * give strictly increasing, non-overlapping runs. */
static int ext_map_add(struct ext_mapper *m, uint64_t lblk, uint64_t pblk,
		       uint64_t len, bool uninit)
{
	struct ext_win *w = m->w;
	struct ext_extent *last = w->n ? &w->ex[w->n - 1] : NULL;

	if (lblk + len <= m->lblk || lblk >= m->nblocks)
		return 0; /* before the window, or past the end of file */
	if (len == 0 || pblk < m->x->fs->super->s_first_data_block ||
	    !vd_range_ok(pblk, len, m->x->blocks))
		return ext_map_corrupt(m, "extent outside the filesystem "
				       "(block, length)", pblk, len);
	if (last && lblk < last->lblk + last->len)
		return ext_map_corrupt(m, "extents overlap or go backwards "
				       "(logical block, after)", lblk,
				       last->lblk + last->len);
	/* Clip to the window start and to the end of file. */
	if (lblk < m->lblk) {
		pblk += m->lblk - lblk;
		len -= m->lblk - lblk;
		lblk = m->lblk;
	}
	if (len > m->nblocks - lblk)
		len = m->nblocks - lblk;
	if (last && !uninit && !last->uninit &&
	    lblk == last->lblk + last->len && pblk == last->pblk + last->len &&
	    last->len + len <= UINT32_MAX) {
		last->len += (uint32_t)len;
		return 0;
	}
	if (w->n == EXT_WIN_MAX) {
		m->full = true;
		return 0;
	}
	/* An extent is at most 32768 blocks and a block-map run at most
	 * 2^32 - 1 after the merge check above, so len fits. */
	w->ex[w->n++] = (struct ext_extent){ lblk, pblk, (uint32_t)len,
					     uninit };
	return 0;
}

/* One node of an extent tree (ext4 spec, "Extent Tree"): a 12-byte
 * header (0 magic 0xf30a, 2 entries, 4 max, 6 depth), then 12-byte
 * entries: in a leaf (depth 0) 0 ee_block, 4 ee_len (over 32768:
 * unwritten, len - 32768), 6 ee_start_hi, 8 ee_start_lo; in an index
 * 0 ei_block, 4 ei_leaf_lo, 8 ei_leaf_hi. size: bytes the node may use.
 * We walk the tree ourselves rather than with libext2fs's extent handle,
 * whose "next leaf" after a goto revisits leaves. */
/* Whether node's header is sound: magic, the depth its parent expects,
 * and eh_max entries (eh_entries of them used) that fit in size bytes.
 * In a tree block, eh_max also places the checksum tail (at 12 + 12 *
 * eh_max, 4 bytes), which (size - 12) / 12 entries always leave room for
 * in a 1 KiB..64 KiB block; so this must hold before libext2fs's
 * ext2fs_extent_block_csum_verify reads the tail. */
static bool ext_node_ok(const uint8_t *node, size_t size, unsigned depth)
{
	unsigned n = get_le16(node + 2), max = get_le16(node + 4);

	return get_le16(node) == EXT3_EXT_MAGIC &&
	       get_le16(node + 6) == depth && n <= max &&
	       max <= (size - 12) / 12;
}

static int ext_map_node(struct ext_mapper *m, const uint8_t *node,
			size_t size, unsigned depth)
{
	unsigned n = get_le16(node + 2), first = 0;
	uint8_t *child = NULL;
	int ret = 0;

	if (!ext_node_ok(node, size, depth))
		return ext_map_corrupt(m, "bad extent tree node (entries, "
				       "depth)", n, depth);
	if (depth == 0) {
		/* Ends: n entries; ext_map_add refuses ones that do not
		 * increase and stops at a full window. */
		for (unsigned i = 0; i < n && !ret && !m->full; i++) {
			const uint8_t *e = node + 12 + 12 * i;
			uint64_t lblk = get_le32(e), len = get_le16(e + 4);
			uint64_t pblk = get_le32(e + 8) |
					(uint64_t)get_le16(e + 6) << 32;
			bool uninit = len > EXT_INIT_MAX_LEN;

			if (lblk >= m->nblocks)
				break;
			if (uninit)
				len -= EXT_INIT_MAX_LEN;
			ret = ext_map_add(m, lblk, pblk, len, uninit);
		}
		return ret;
	}
	/* Start at the last index at or before the window start. */
	while (first + 1 < n && get_le32(node + 12 + 12 * (first + 1)) <=
					m->lblk)
		first++;
	child = malloc(m->x->bs);
	if (!child)
		return -ENOMEM;
	/* Ends: n entries, and each level down is one less deep (checked
	 * in the child's header), so at most EXT_MAX_EXTENT_DEPTH levels. */
	for (unsigned i = first; i < n && !ret && !m->full; i++) {
		const uint8_t *ix = node + 12 + 12 * i;
		uint64_t blk = get_le32(ix + 4) | (uint64_t)get_le16(ix + 8) << 32;
		errcode_t err;

		if (get_le32(ix) >= m->nblocks)
			break;
		if (blk < m->x->fs->super->s_first_data_block ||
		    blk >= m->x->blocks) {
			ret = ext_map_corrupt(m, "extent tree block outside "
					      "the filesystem (block, depth)",
					      blk, depth);
			break;
		}
		err = io_channel_read_blk64(m->x->fs->io, blk, 1, child);
		if (err) {
			ret = ext_map_corrupt(m, "extent tree block unreadable "
					      "(block, depth)", blk, depth);
			break;
		}
		/* The header first: the checksum's place depends on it. */
		if (!ext_node_ok(child, m->x->bs, depth - 1)) {
			ret = ext_map_corrupt(m, "bad extent tree node (block, "
					      "depth)", blk, depth - 1);
			break;
		}
		if (!(m->x->fs->flags & EXT2_FLAG_IGNORE_CSUM_ERRORS) &&
		    !ext2fs_extent_block_csum_verify(
			    m->x->fs, (ext2_ino_t)m->ino,
			    (struct ext3_extent_header *)child)) {
			ret = ext_map_corrupt(m, "extent tree block checksum "
					      "wrong (block, depth)", blk, depth);
			break;
		}
		/* The child's first entry starts where its index says, as
		 * the kernel's ext4_valid_extent_entries requires (e2fsprogs'
		 * f_extent_interior_start_lblk). */
		if (get_le16(child + 2) &&
		    get_le32(child + 12) != get_le32(ix)) {
			ret = ext_map_corrupt(m, "extent tree block does not "
					      "start at its index's block "
					      "(block, depth)", blk, depth - 1);
			break;
		}
		ret = ext_map_node(m, child, m->x->bs, depth - 1);
	}
	free(child);
	return ret;
}

static int ext_map_extents(struct ext_mapper *m, struct ext2_inode_large *in)
{
	/* i_block holds the root: ext4 extent header, offset 6: eh_depth */
	const uint8_t *root = (const uint8_t *)in->i_block;
	unsigned depth = get_le16(root + 6);

	if (depth > EXT_MAX_EXTENT_DEPTH)
		return ext_map_corrupt(m, "extent tree too deep (depth, most)",
				       depth, EXT_MAX_EXTENT_DEPTH);
	return ext_map_node(m, root, sizeof(in->i_block), depth);
}

/* One table of the ext2 block map: tblk holds per pointers, each covering
 * span logical blocks from base. level 0 means tblk is a data block. */
static int ext_map_table(struct ext_mapper *m, uint64_t tblk, unsigned level,
			 uint64_t base, uint8_t *bufs)
{
	unsigned bs = m->x->bs, per = bs / 4;
	uint64_t span = 1;
	uint8_t *buf = bufs + (size_t)(level - 1) * bs;
	errcode_t err;
	int ret;

	for (unsigned i = 1; i < level; i++)
		span *= per;
	if (tblk < m->x->fs->super->s_first_data_block || tblk >= m->x->blocks)
		return ext_map_corrupt(m, "indirect block outside the "
				       "filesystem (block, level)", tblk, level);
	err = io_channel_read_blk64(m->x->fs->io, tblk, 1, buf);
	if (err)
		return ext_map_corrupt(m, "indirect block unreadable (block, "
				       "level)", tblk, level);
	/* Ends: per entries, and the recursion is at most three deep. */
	for (unsigned i = 0; i < per && !m->full; i++) {
		uint64_t b = get_le32(buf + 4 * i), lb = base + i * span;

		if (lb >= m->nblocks)
			break;
		if (!b || lb + span <= m->lblk)
			continue; /* a hole, or before the window */
		if (level == 1)
			ret = ext_map_add(m, lb, b, 1, false);
		else
			ret = ext_map_table(m, b, level - 1, lb, bufs);
		if (ret)
			return ret;
	}
	return 0;
}

static int ext_map_blockmap(struct ext_mapper *m, struct ext2_inode_large *in)
{
	uint64_t per = m->x->bs / 4, base = EXT2_NDIR_BLOCKS, span = per;
	uint8_t *bufs;
	int ret = 0;

	/* i_block[0..11]: direct pointers. */
	for (unsigned i = 0; i < EXT2_NDIR_BLOCKS && !m->full; i++) {
		if (!in->i_block[i] || i + 1 <= m->lblk)
			continue;
		if (i >= m->nblocks)
			return 0;
		ret = ext_map_add(m, i, in->i_block[i], 1, false);
		if (ret)
			return ret;
	}
	bufs = malloc(3 * (size_t)m->x->bs);
	if (!bufs)
		return -ENOMEM;
	/* i_block[12..14]: single, double, triple indirect. */
	for (unsigned lvl = 1; lvl <= 3 && !m->full; lvl++) {
		uint32_t b = in->i_block[EXT2_NDIR_BLOCKS + lvl - 1];

		if (base >= m->nblocks)
			break;
		if (b && base + span > m->lblk) {
			ret = ext_map_table(m, b, lvl, base, bufs);
			if (ret)
				break;
		}
		base += span;
		span *= per;
	}
	free(bufs);
	return ret;
}

int vd_ext_map(struct ext_fs *x, uint64_t ino, struct ext2_inode_large *in,
	       uint64_t nblocks, uint64_t lblk, struct ext_win **w_r)
{
	struct ext_mapper m = { x, ino, lblk, nblocks, NULL, false };
	int ret;

	m.w = malloc(sizeof(*m.w) + EXT_WIN_MAX * sizeof(struct ext_extent));
	if (!m.w)
		return -ENOMEM;
	m.w->refs = 1;
	m.w->start = lblk;
	m.w->n = 0;
	if (lblk >= nblocks)
		ret = 0;
	else if (in->i_flags & EXT4_EXTENTS_FL)
		ret = ext_map_extents(&m, in);
	else
		ret = ext_map_blockmap(&m, in);
	if (ret) {
		free(m.w);
		return ret;
	}
	/* A full window covers up to its last extent: what follows is
	 * mapped by the next window. */
	m.w->end = m.full ? m.w->ex[m.w->n - 1].lblk + m.w->ex[m.w->n - 1].len :
			    UINT64_MAX;
	*w_r = m.w;
	return 0;
}

size_t vd_ext_win_find(const struct ext_win *w, uint64_t lblk)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->ex[mid].lblk + w->ex[mid].len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- open files ---- */

static void ext_win_put(struct ext_file *f, struct ext_win *w)
{
	bool last;

	pthread_mutex_lock(&f->lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (last)
		free(w);
}

/* A window covering lblk, with a reference the caller puts. */
static int ext_win_get(struct ext_file *f, uint64_t lblk, struct ext_win **w_r)
{
	struct ext_win *w, *old;
	int ret;

	pthread_mutex_lock(&f->lock);
	w = f->win;
	if (w && w->start <= lblk && lblk < w->end) {
		w->refs++;
		pthread_mutex_unlock(&f->lock);
		*w_r = w;
		return 0;
	}
	pthread_mutex_unlock(&f->lock);

	pthread_mutex_lock(&f->x->lock);
	ret = vd_ext_map(f->x, f->ino, &f->inode, f->nblocks, lblk, &w);
	pthread_mutex_unlock(&f->x->lock);
	if (ret)
		return ret;
	/* Keep it for the reads that follow: one for f->win, one for us. */
	pthread_mutex_lock(&f->lock);
	old = f->win;
	w->refs = 2;
	f->win = w;
	if (old && --old->refs)
		old = NULL;
	pthread_mutex_unlock(&f->lock);
	free(old);
	*w_r = w;
	return 0;
}

int vd_ext_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext_file *f = calloc(1, sizeof(*f));
	errcode_t err;
	int ret;

	if (!f)
		return -ENOMEM;
	f->base.fs = fs;
	f->x = x;
	f->ino = ino;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_read_inode(x, ino, &f->inode);
	if (ret)
		goto out;
	if (!LINUX_S_ISREG(f->inode.i_mode)) {
		ret = LINUX_S_ISDIR(f->inode.i_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (f->inode.i_flags & EXT4_ENCRYPT_FL) {
		/* The kernel without the key refuses to open the file
		 * (ENOKEY); never hand out ciphertext as the contents. */
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 " is encrypted "
		       "(fscrypt); its contents cannot be read", x->name, ino);
		ret = -ENOKEY;
		goto out;
	}
	f->size = EXT2_I_SIZE(&f->inode);
	f->nblocks = f->size / x->bs + (f->size % x->bs != 0);
	if (x->base.writable) {
		ret = vd_ext_opened(x, ino);
		if (!ret)
			f->rw = true;
	} else if (f->inode.i_flags & EXT4_INLINE_DATA_FL) {
		size_t len = 0;

		err = ext2fs_inline_data_size(x->fs, (ext2_ino_t)ino, &len);
		if (!err && len > EXT_INLINE_MAX)
			err = EXT2_ET_INLINE_DATA_NO_SPACE; /* cannot be */
		if (!err) {
			f->inline_data = malloc(EXT_INLINE_MAX);
			if (!f->inline_data) {
				ret = -ENOMEM;
				goto out;
			}
			err = ext2fs_inline_data_get(x->fs, (ext2_ino_t)ino,
						     EXT2_INODE(&f->inode),
						     f->inline_data, &len);
		}
		if (err) {
			vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": "
			       "inline data unreadable: %s", x->name, ino,
			       error_message(err));
			ret = -EIO;
			goto out;
		}
		f->inline_len = VD_MIN(len, EXT_INLINE_MAX);
	} else {
		ret = vd_ext_map(x, ino, &f->inode, f->nblocks, 0, &f->win);
	}
out:
	pthread_mutex_unlock(&x->lock);
	if (ret) {
		vd_ext_release(&f->base);
		return ret;
	}
	*f_r = &f->base;
	return 0;
}

void vd_ext_release(struct vd_fs_file *ff)
{
	struct ext_file *f = (struct ext_file *)ff;

	if (!f)
		return;
	if (f->rw) {
		pthread_mutex_lock(&f->x->lock);
		vd_ext_closed(f->x, f->ino);
		pthread_mutex_unlock(&f->x->lock);
	}
	/* No read runs on a released handle: f->win holds the only
	 * reference left. */
	free(f->win);
	free(f->inline_data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* Append [vol_off, +len) (or len zero bytes) to p[0..*n), merging with
 * the last piece when they touch. False when max pieces are used. */
static bool ext_piece_add(struct vd_fs_piece *p, unsigned max, unsigned *n,
			  bool zero, uint64_t vol_off, uint64_t len)
{
	struct vd_fs_piece *last = *n ? &p[*n - 1] : NULL;

	if (last && last->zero == zero &&
	    (zero || last->vol_off + last->len == vol_off)) {
		last->len += len;
		return true;
	}
	if (*n == max)
		return false;
	p[(*n)++] = (struct vd_fs_piece){ vol_off, len, zero };
	return true;
}

/* The pieces of [off, off + len), all inside the file: at most max, for
 * the *got_r bytes from off. Holes and unwritten extents are zero
 * pieces; the blocks are where the map says (vd_ext_map keeps them
 * inside the filesystem). */
static int ext_pieces(struct ext_file *f, uint64_t off, uint64_t len,
		      struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		      uint64_t *got_r)
{
	uint64_t bs = f->x->bs, pos = off, end = off + len;
	bool room = true;
	int ret = 0;

	*n_r = 0;
	/* Ends: every pass consumes at least one byte of [pos, end), or
	 * finds no room for it. */
	while (pos < end && room) {
		uint64_t lblk = pos / bs, n;
		struct ext_win *w;
		size_t i;

		ret = ext_win_get(f, lblk, &w);
		if (ret)
			break;
		i = vd_ext_win_find(w, lblk);
		while (pos < end && lblk < w->end) {
			const struct ext_extent *e = i < w->n ? &w->ex[i] : NULL;

			if (!e || lblk < e->lblk) {
				/* A hole up to the next extent. */
				uint64_t stop = e ? e->lblk : w->end;

				n = VD_MIN(end, stop >= UINT64_MAX / bs ?
							UINT64_MAX : stop * bs) -
				    pos;
				room = ext_piece_add(p, max, n_r, true, 0, n);
			} else {
				uint64_t in = pos - e->lblk * bs;

				n = VD_MIN(end - pos, (uint64_t)e->len * bs - in);
				room = ext_piece_add(p, max, n_r, e->uninit,
						     e->uninit ? 0 :
						     e->pblk * bs + in, n);
				i++;
			}
			if (!room)
				break;
			pos += n;
			lblk = pos / bs;
		}
		ext_win_put(f, w);
	}
	*got_r = pos - off;
	return ret;
}

int vd_ext_map_file(struct vd_fs_file *ff, uint64_t off, size_t len,
		    struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		    size_t *got_r)
{
	struct ext_file *f = (struct ext_file *)ff;
	uint64_t got;
	int ret;

	*n_r = 0;
	*got_r = 0;
	if (f->inline_data || f->x->replay || f->rw)
		return -EOPNOTSUPP;
	if (off >= f->size || !len || !max)
		return 0;
	ret = ext_pieces(f, off, VD_MIN(len, f->size - off), p, max, n_r,
			 &got);
	*got_r = (size_t)got;
	return ret;
}

/* A read in a writable mount: through libext2fs, under the lock, from
 * the file as it is now. */
static int ext_rw_read(struct ext_file *f, void *buf, size_t len,
		       uint64_t off, size_t *got_r)
{
	struct ext_fs *x = f->x;
	ext2_file_t h;
	__u64 size = 0;
	size_t done = 0;
	errcode_t err;

	pthread_mutex_lock(&x->lock);
	err = ext2fs_file_open(x->fs, (ext2_ino_t)f->ino, 0, &h);
	if (err)
		goto out;
	err = ext2fs_file_get_lsize(h, &size);
	if (!err && off < size) {
		len = (size_t)VD_MIN((uint64_t)len, size - off);
		err = ext2fs_file_llseek(h, off, EXT2_SEEK_SET, NULL);
		/* Ends: every pass reads at least a byte, or stops. */
		while (!err && done < len) {
			unsigned got = 0;

			err = ext2fs_file_read(h, (uint8_t *)buf + done,
					       (unsigned)VD_MIN(len - done,
								1u << 30),
					       &got);
			if (!got)
				break;
			done += got;
		}
		if (!err && done < len)
			err = EXT2_ET_SHORT_READ;
	}
	ext2fs_file_close(h);
out:
	pthread_mutex_unlock(&x->lock);
	if (err)
		return vd_ext_io_err(x, f->ino, "read", err);
	*got_r = done;
	return 0;
}

/* A write that failed (a full filesystem) is undone where it extended
 * the file: the blocks it added past the old end are freed and the old
 * size is back, so the inode stays as e2fsck wants it. */
static void ext_write_undo(struct ext_fs *x, uint64_t ino, uint64_t size)
{
	struct ext2_inode_large in;
	uint64_t from = size / x->bs + (size % x->bs != 0);
	errcode_t err;

	if (vd_ext_read_inode(x, ino, &in))
		return;
	err = ext2fs_punch(x->fs, (ext2_ino_t)ino, EXT2_INODE(&in), NULL, from,
			   ~0ULL);
	if (!err)
		err = ext2fs_inode_size_set(x->fs, EXT2_INODE(&in), size);
	if (err)
		vd_ext_io_err(x, ino, "undoing a failed write", err);
	else
		vd_ext_write_inode(x, ino, &in);
}

/* Blocks kept free by a write, for the extent tree blocks that map what
 * it allocates (a split per level, a few levels). */
#define EXT_WRITE_RESERVE 16u

/* The bytes of [off, off + len) of inode ino that a nearly full
 * filesystem can take (lock held). libext2fs allocates a file's data
 * blocks before the extent tree blocks that map them, so a write that
 * runs out of room for the latter leaves blocks counted in the inode
 * and the bitmap but mapped nowhere, which nothing can take back. So,
 * as the kernel's ext4 keeps clusters back for metadata, a write is cut
 * to what leaves EXT_WRITE_RESERVE blocks free: it counts the blocks of
 * the range not mapped yet only when the filesystem is nearly full. 0:
 * nothing fits (-ENOSPC for the caller). */
static size_t ext_write_fits(struct ext_fs *x, uint64_t ino, uint64_t off,
			     size_t len)
{
	uint64_t bs = x->bs, ratio = EXT2FS_CLUSTER_RATIO(x->fs);
	uint64_t free_b = ext2fs_free_blocks_count(x->fs->super);
	uint64_t first = off / bs, last = (off + len - 1) / bs, avail, blk;
	struct ext2_inode_large in;

	avail = free_b > EXT_WRITE_RESERVE * ratio ?
			free_b - EXT_WRITE_RESERVE * ratio : 0;
	if (last - first + 1 <= avail)
		return len;
	if (vd_ext_read_inode(x, ino, &in))
		return len; /* the write reports it */
	/* Ends: one pass per block of the range, at most the free blocks
	 * plus one of them new. */
	for (blk = first; blk <= last; blk++) {
		blk64_t phys = 0;

		if (ext2fs_bmap2(x->fs, (ext2_ino_t)ino, EXT2_INODE(&in), NULL,
				 0, blk, NULL, &phys) || !phys) {
			if (!avail)
				break;
			avail--;
		}
	}
	if (blk > last)
		return len;
	return blk * bs > off ? (size_t)(blk * bs - off) : 0;
}

int vd_ext_write(struct vd_fs_file *ff, const void *buf, size_t len,
		 uint64_t off, size_t *put_r)
{
	struct ext_file *f = (struct ext_file *)ff;
	struct ext_fs *x = f->x;
	struct ext2_inode_large in;
	struct timespec now;
	ext2_file_t h;
	__u64 size = 0, orig = 0;
	size_t done = 0;
	errcode_t err, err2;
	int ret;

	*put_r = 0;
	if (!f->rw)
		return -EROFS;
	if (!len)
		return 0;
	/* ext4's largest file: 2^32 blocks (the kernel's s_maxbytes for
	 * extents; a block-mapped file runs out of blocks before). */
	if (off >= ((uint64_t)x->bs << 32) ||
	    len > ((uint64_t)x->bs << 32) - off)
		return -EFBIG;
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_begin(x);
	if (ret)
		goto out;
	len = ext_write_fits(x, f->ino, off, len);
	if (!len) {
		ret = -ENOSPC;
		goto out;
	}
	err = ext2fs_file_open(x->fs, (ext2_ino_t)f->ino, EXT2_FILE_WRITE, &h);
	if (err) {
		ret = vd_ext_werr(x, f->ino, "write", err);
		goto out;
	}
	err = ext2fs_file_get_lsize(h, &orig);
	if (!err)
		err = ext2fs_file_llseek(h, off, EXT2_SEEK_SET, NULL);
	/* Ends: every pass writes at least a byte, or stops. */
	while (!err && done < len) {
		unsigned got = 0;

		err = ext2fs_file_write(h, (const uint8_t *)buf + done,
					(unsigned)VD_MIN(len - done, 1u << 30),
					&got);
		done += got;
		if (!got)
			break;
	}
	if (!err && done < len)
		err = EXT2_ET_SHORT_WRITE;
	/* The last block is written by the flush, which a full
	 * filesystem may refuse. */
	if (!err)
		err = ext2fs_file_flush(h);
	if (!err && !(err = ext2fs_file_get_lsize(h, &size)) &&
	    off + done > size)
		err = ext2fs_file_set_size2(h, off + done);
	err2 = ext2fs_file_close(h);
	if (!err)
		err = err2;
	if (err) {
		/* All or nothing: what the write added is taken back. */
		ret = vd_ext_werr(x, f->ino, "write", err);
		if (off + len > orig)
			ext_write_undo(x, f->ino, orig);
		goto out;
	}
	/* As the kernel's file_update_time: the contents changed. */
	ret = vd_ext_read_inode(x, f->ino, &in);
	if (!ret) {
		vd_ext_now(&now);
		VD_EXT_TIME_PUT(&in, mtime, now);
		VD_EXT_TIME_PUT(&in, ctime, now);
		ret = vd_ext_write_inode(x, f->ino, &in);
	}
	if (!ret)
		*put_r = done;
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* As the kernel's ext4_fallocate: extent-mapped files only (EOPNOTSUPP
 * for the others), the blocks allocated as unwritten extents (reading
 * as zeros), the size raised unless FALLOC_FL_KEEP_SIZE. */
int vd_ext_fallocate(struct vd_fs_file *ff, int mode, uint64_t off,
		     uint64_t len)
{
	struct ext_file *f = (struct ext_file *)ff;
	struct ext_fs *x = f->x;
	struct ext2_inode_large in;
	struct timespec now;
	uint64_t bs = x->bs, start, end;
	errcode_t err;
	int ret;

	if (!f->rw)
		return -EROFS;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	if (!len)
		return -EINVAL;
	if (off >= (bs << 32) || len > (bs << 32) - off)
		return -EFBIG;
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_begin(x);
	if (!ret)
		ret = vd_ext_read_inode(x, f->ino, &in);
	if (ret)
		goto out;
	if (!(in.i_flags & EXT4_EXTENTS_FL)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	start = off / bs;
	end = (off + len + bs - 1) / bs;
	/* The extent handle writes the tree's root into in (and the
	 * inode): in stays current. */
	err = ext2fs_fallocate(x->fs, EXT2_FALLOCATE_FORCE_UNINIT,
			       (ext2_ino_t)f->ino, EXT2_INODE(&in), ~0ULL,
			       start, end - start);
	if (err) {
		ret = vd_ext_werr(x, f->ino, "fallocate", err);
		goto out;
	}
	vd_ext_now(&now);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > EXT2_I_SIZE(&in)) {
		err = ext2fs_inode_size_set(x->fs, EXT2_INODE(&in), off + len);
		if (err) {
			ret = vd_ext_werr(x, f->ino, "fallocate", err);
			goto out;
		}
		VD_EXT_TIME_PUT(&in, mtime, now);
	}
	VD_EXT_TIME_PUT(&in, ctime, now);
	ret = vd_ext_write_inode(x, f->ino, &in);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ext_read(struct vd_fs_file *ff, void *buf, size_t len, uint64_t off,
		size_t *got_r)
{
	struct ext_file *f = (struct ext_file *)ff;
	uint8_t *out = buf;
	uint64_t pos, end;
	int ret = 0;

	*got_r = 0;
	if (f->rw)
		return len ? ext_rw_read(f, buf, len, off, got_r) : 0;
	if (off >= f->size || !len)
		return 0;
	len = (size_t)VD_MIN(len, f->size - off);
	if (f->inline_data) {
		size_t have = off < f->inline_len ?
				      VD_MIN(len, f->inline_len - off) : 0;

		memcpy(out, f->inline_data + off, have);
		memset(out + have, 0, len - have);
		*got_r = len;
		return 0;
	}
	pos = off;
	end = off + len;
	/* Ends: every pass maps at least one byte of [pos, end). */
	while (pos < end) {
		struct vd_fs_piece p[16];
		unsigned n;
		uint64_t got;

		ret = ext_pieces(f, pos, end - pos, p, 16, &n, &got);
		if (ret)
			break;
		for (unsigned i = 0; i < n && !ret; i++) {
			if (p[i].zero)
				memset(out + (pos - off), 0, p[i].len);
			else
				ret = vd_ext_io_read(f->x->io, out + (pos - off),
						     p[i].len, p[i].vol_off);
			if (!ret)
				pos += p[i].len;
		}
		if (ret) {
			vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": read "
			       "at %" PRIu64 " failed", f->x->name, f->ino,
			       pos);
			ret = -EIO;
			break;
		}
	}
	if (!ret)
		*got_r = len;
	return ret;
}

int vd_ext_seek(struct vd_fs_file *ff, uint64_t off, bool want_data,
		uint64_t *off_r)
{
	struct ext_file *f = (struct ext_file *)ff;
	uint64_t bs = f->x->bs, lblk;
	int ret;

	if (f->rw) {
		/* All data: the file may change under the handle. */
		struct ext2_inode_large in;
		uint64_t size;

		pthread_mutex_lock(&f->x->lock);
		ret = vd_ext_read_inode(f->x, f->ino, &in);
		pthread_mutex_unlock(&f->x->lock);
		if (ret)
			return ret;
		size = EXT2_I_SIZE(&in);
		if (off >= size)
			return -ENXIO;
		*off_r = want_data ? off : size;
		return 0;
	}
	if (off >= f->size)
		return -ENXIO;
	if (f->inline_data) {
		*off_r = want_data ? off : f->size;
		return 0;
	}
	lblk = off / bs;
	/* Ends: each pass moves lblk to the end of a window (or of an
	 * extent) inside the file, and windows never go backwards. */
	while (lblk < f->nblocks) {
		struct ext_win *w;
		size_t i;

		ret = ext_win_get(f, lblk, &w);
		if (ret)
			return ret;
		i = vd_ext_win_find(w, lblk);
		/* Unwritten extents count as holes, as the kernel's
		 * SEEK_DATA treats them when nothing is cached. */
		for (; i < w->n; i++) {
			const struct ext_extent *e = &w->ex[i];

			if (want_data) {
				if (e->uninit)
					continue;
				*off_r = VD_MAX(off, e->lblk * bs);
				ext_win_put(f, w);
				return 0;
			}
			if (e->lblk > lblk || e->uninit)
				break; /* lblk is in a hole */
			lblk = e->lblk + e->len;
		}
		if (i < w->n || w->end == UINT64_MAX) {
			uint64_t at = VD_MAX(off, lblk * bs);

			ext_win_put(f, w);
			if (want_data)
				return -ENXIO;
			*off_r = VD_MIN(at, f->size);
			return 0;
		}
		lblk = VD_MAX(lblk, w->end);
		ext_win_put(f, w);
	}
	if (want_data)
		return -ENXIO;
	*off_r = f->size;
	return 0;
}
