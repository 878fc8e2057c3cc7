/* ext2/3/4 on libext2fs: mount, directories, attributes, xattrs, statfs.
 *
 * libext2fs opens the volume read-only through our io_manager (ext-io.c),
 * so it reads only through core. It checks the superblock, the group
 * descriptors and, with metadata_csum, every checksum it meets: a block
 * whose checksum is wrong is refused as the kernel refuses it (EIO), never
 * read around. In front of it we check what it does not: the block count
 * against the volume, inode extra sizes, extent depth (ext-file.c),
 * directory entries (parsed here), xattr ACL values.
 *
 * Everything a Linux guest holds is shown as the kernel's ext4 shows it:
 * times with nanoseconds and epoch bits, 32-bit owners, device numbers in
 * both encodings, inline-data files and directories, only the xattr
 * namespaces the kernel lists, ACLs in the xattr format it returns.
 * Encrypted (fscrypt) names and contents are refused with ENOKEY and a
 * log line, never shown as ciphertext.
 *
 * Directories are read here, block by block (libext2fs's iterator starts
 * over from the first block on every call): a readdir cookie is the byte
 * position of the next entry in the directory, as the kernel's linear
 * readdir uses, so listing a big directory in many calls costs one pass.
 * Lookups in a big directory use a name table built once and kept, within
 * a memory budget, for the directories last looked in. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>
#include <sys/sysmacros.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Offsets in the ext2/3/4 superblock (ext4 disk layout spec, "The Super
 * Block"), which starts 1024 bytes into the volume. */
#define EXT_SB_OFF 1024u
#define EXT_SB_BLOCKS_LO 0x04
#define EXT_SB_LOG_BLOCK 0x18
#define EXT_SB_MAGIC 0x38
#define EXT_SB_INCOMPAT 0x60
#define EXT_SB_BLOCKS_HI 0x150
#define EXT_MAGIC 0xef53

/* Directories of at least this many blocks get a lookup table. */
#define EXT_DCACHE_MIN_BLOCKS 4
/* Memory for lookup tables of all directories of one mount. */
#define EXT_DCACHE_BUDGET (16u << 20)
/* The kernel's ext4 name limit (EXT4_NAME_LEN). */
#define EXT_NAME_MAX 255
/* The POSIX ACL xattr format (include/uapi/linux/posix_acl_xattr.h) and
 * ext4's on-disk one (fs/ext4/acl.h). */
#define EXT_ACL_DISK_VERSION 1
#define EXT_ACL_XATTR_VERSION 2
#define EXT_ACL_UNDEFINED_ID 0xffffffffu

static int ext_io_err(struct ext_fs *x, uint64_t ino, const char *what,
		      errcode_t err)
{
	int ret = vd_ext_errno(err);

	if (ret == -ENOMEM)
		return ret;
	vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": %s: %s", x->name, ino,
	       what, error_message(err));
	return -EIO;
}

int vd_ext_read_inode(struct ext_fs *x, uint64_t ino,
		      struct ext2_inode_large *in)
{
	unsigned isize = EXT2_INODE_SIZE(x->fs->super);
	errcode_t err;

	if (ino < 1 || ino > x->fs->super->s_inodes_count) {
		vd_log(VD_LOG_ERR, "%s: ext: inode number %" PRIu64 " out of "
		       "range (1..%u)", x->name, ino,
		       x->fs->super->s_inodes_count);
		return -EIO;
	}
	memset(in, 0, sizeof(*in));
	err = ext2fs_read_inode_full(x->fs, (ext2_ino_t)ino, EXT2_INODE(in),
				     sizeof(*in));
	if (err)
		return ext_io_err(x, ino, "unreadable", err);
	/* Inode offset 0x80: i_extra_isize, the bytes used past 128; the
	 * kernel refuses an inode whose extra size overruns it. */
	if (isize <= EXT2_GOOD_OLD_INODE_SIZE) {
		in->i_extra_isize = 0;
	} else if (in->i_extra_isize > isize - EXT2_GOOD_OLD_INODE_SIZE ||
		   (in->i_extra_isize & 3)) {
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": extra size "
		       "%u overruns the %u-byte inode", x->name, ino,
		       in->i_extra_isize, isize);
		return -EIO;
	}
	if (!in->i_mode) {
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 " is not in use",
		       x->name, ino);
		return -EIO;
	}
	return 0;
}

/* ---- directories ---- */

struct ext_dent {
	uint64_t ino;
	uint64_t next; /* cookie of the entry after this one */
	unsigned type; /* DT_* */
	unsigned len;
	const char *name; /* not NUL-terminated; valid during the callback */
};

/* Return nonzero to stop the walk. */
typedef int (*ext_dent_fn)(void *arg, const struct ext_dent *d);

static unsigned ext_dtype(struct ext_fs *x, unsigned ft)
{
	static const unsigned char dt[] = {
		[EXT2_FT_REG_FILE] = DT_REG, [EXT2_FT_DIR] = DT_DIR,
		[EXT2_FT_CHRDEV] = DT_CHR,   [EXT2_FT_BLKDEV] = DT_BLK,
		[EXT2_FT_FIFO] = DT_FIFO,    [EXT2_FT_SOCK] = DT_SOCK,
		[EXT2_FT_SYMLINK] = DT_LNK,
	};

	if (!ext2fs_has_feature_filetype(x->fs->super) || ft >= sizeof(dt))
		return DT_UNKNOWN;
	return dt[ft] ? dt[ft] : DT_UNKNOWN;
}

/* The kernel's ext4_rec_len_from_disk: 64 KiB blocks store 65536 as
 * 65535 (or 0) and borrow the low two bits. */
static unsigned ext_rec_len(unsigned v, unsigned bs)
{
	if (bs < 65536)
		return v;
	if (v == 65535 || v == 0)
		return bs;
	return (v & 65532) | ((v & 3) << 16);
}

/* The entries of buf[0, len), which is directory position base onward
 * (one block, or one region of an inline directory). Entries before
 * position from are passed over. Stops early (returning 1) when fn asks. */
static int ext_dir_parse(struct ext_fs *x, uint64_t dino, const uint8_t *buf,
			 size_t len, uint64_t base, uint64_t from,
			 ext_dent_fn fn, void *arg)
{
	size_t off = 0;

	/* Ends: every entry is at least 12 bytes long. */
	while (len - off >= 8) {
		/* ext4 directory entry: 0 inode, 4 rec_len, 6 name_len,
		 * 7 file_type (ext4 spec, "Linear Directories"). */
		const uint8_t *p = buf + off;
		unsigned ino = get_le32(p), nl = p[6];
		unsigned rl = ext_rec_len(get_le16(p + 4), x->bs);
		struct ext_dent d;

		if (rl < 12 || (rl & 3) || rl > len - off ||
		    rl < ((8u + nl + 3) & ~3u) ||
		    ino > x->fs->super->s_inodes_count) {
			vd_log(VD_LOG_ERR, "%s: ext: directory %" PRIu64 ": bad "
			       "entry at byte %" PRIu64 " (rec_len %u, "
			       "name_len %u, inode %u)", x->name, dino,
			       base + off, rl, nl, ino);
			return -EIO;
		}
		d.next = base + off + rl;
		if (ino && nl && base + off >= from) {
			d.ino = ino;
			d.type = ext_dtype(x, p[7]);
			d.len = nl;
			d.name = (const char *)p + 8;
			/* A name holding '/' or NUL cannot be shown. */
			if (memchr(d.name, '/', nl) || memchr(d.name, 0, nl))
				vd_log(VD_LOG_ERR, "%s: ext: directory %" PRIu64
				       ": entry at byte %" PRIu64 " has a "
				       "name no path can hold; skipped",
				       x->name, dino, base + off);
			else if (fn(arg, &d))
				return 1;
		}
		off += rl;
	}
	return 0;
}

/* Walk directory dino (inode in) from position *pos_r under x->lock:
 * a whole inline directory, or the blocks of a block directory (one only
 * when one_block). *pos_r receives where to go on; *w_r is a map window
 * kept between calls (NULL at first, freed by the caller). Returns 0 at
 * the end or after one_block, 1 when fn stopped the walk, or -errno. */
static int ext_dir_walk(struct ext_fs *x, uint64_t dino,
			struct ext2_inode_large *in, uint64_t *pos_r,
			struct ext_win **w_r, bool one_block, ext_dent_fn fn,
			void *arg)
{
	uint64_t size = EXT2_I_SIZE(in), bs = x->bs, pos = *pos_r;
	uint64_t nblocks = size / bs + (size % bs != 0);
	uint8_t *buf;
	errcode_t err;
	int ret = 0;

	if (in->i_flags & EXT4_INLINE_DATA_FL) {
		/* i_block: 4 bytes of parent inode, then entries; the
		 * system.data xattr continues them. "." and ".." are not
		 * stored: positions 0 and 1 stand for them. */
		size_t len = 0;
		struct ext_dent d = { dino, 1, DT_DIR, 1, "." };

		err = ext2fs_inline_data_size(x->fs, (ext2_ino_t)dino, &len);
		if (err)
			return ext_io_err(x, dino, "inline directory", err);
		if (len < EXT4_MIN_INLINE_DATA_SIZE || len > 65536 + 60)
			return ext_io_err(x, dino, "inline directory size",
					  EXT2_ET_DIR_CORRUPTED);
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		err = ext2fs_inline_data_get(x->fs, (ext2_ino_t)dino,
					     EXT2_INODE(in), buf, &len);
		if (err) {
			free(buf);
			return ext_io_err(x, dino, "inline directory", err);
		}
		*pos_r = UINT64_MAX;
		if (pos == 0 && fn(arg, &d))
			ret = 1;
		d = (struct ext_dent){ get_le32(buf), 4, DT_DIR, 2, ".." };
		if (!ret && pos <= 1 && fn(arg, &d))
			ret = 1;
		if (!ret)
			ret = ext_dir_parse(x, dino, buf + 4,
					    EXT4_MIN_INLINE_DATA_SIZE - 4, 4,
					    pos, fn, arg);
		if (!ret && len > EXT4_MIN_INLINE_DATA_SIZE)
			ret = ext_dir_parse(x, dino,
					    buf + EXT4_MIN_INLINE_DATA_SIZE,
					    len - EXT4_MIN_INLINE_DATA_SIZE,
					    EXT4_MIN_INLINE_DATA_SIZE, pos, fn,
					    arg);
		free(buf);
		return ret;
	}

	buf = malloc(bs);
	if (!buf)
		return -ENOMEM;
	/* Ends: pos grows by at least a block per pass (holes jump to the
	 * next extent) and stops at the directory's size. */
	while (pos < size) {
		uint64_t lblk = pos / bs, pblk;
		const struct ext_extent *e;
		struct ext_win *w = *w_r;
		size_t i;

		if (!w || lblk < w->start || lblk >= w->end) {
			free(w);
			*w_r = NULL;
			ret = vd_ext_map(x, dino, in, nblocks, lblk, w_r);
			if (ret)
				break;
			w = *w_r;
		}
		i = vd_ext_win_find(w, lblk);
		if (i == w->n) {
			pos = w->end == UINT64_MAX ? size : w->end * bs;
			continue;
		}
		e = &w->ex[i];
		if (e->lblk > lblk) { /* a hole: no entries there */
			pos = e->lblk * bs;
			continue;
		}
		pblk = e->pblk + (lblk - e->lblk);
		if (!e->uninit) {
			err = ext2fs_read_dir_block4(x->fs, pblk, buf, 0,
						     (ext2_ino_t)dino);
			if (err) {
				ret = ext_io_err(x, dino, "directory block",
						 err);
				break;
			}
			ret = ext_dir_parse(x, dino, buf, bs, lblk * bs, pos, fn,
					    arg);
			if (ret)
				break;
		}
		pos = (lblk + 1) * bs;
		if (one_block)
			break;
	}
	free(buf);
	*pos_r = pos;
	return ret;
}

/* Read directory inode dir under the lock; -ENOTDIR, -ENOKEY (logged)
 * for an encrypted one, whose names are ciphertext. */
static int ext_dir_inode(struct ext_fs *x, uint64_t dir,
			 struct ext2_inode_large *in)
{
	int ret = vd_ext_read_inode(x, dir, in);

	if (ret)
		return ret;
	if (!LINUX_S_ISDIR(in->i_mode))
		return -ENOTDIR;
	if (in->i_flags & EXT4_ENCRYPT_FL) {
		vd_log(VD_LOG_ERR, "%s: ext: directory inode %" PRIu64 " is "
		       "encrypted (fscrypt); its names cannot be read",
		       x->name, dir);
		return -ENOKEY;
	}
	return 0;
}

/* One block's entries, copied out so fill runs without the lock. */
struct ext_batch {
	size_t n;
	struct {
		uint64_t ino, next;
		unsigned type;
		size_t name;
	} *e;
	char *names;
	size_t used;
};

static int ext_batch_add(void *arg, const struct ext_dent *d)
{
	struct ext_batch *b = arg;

	/* Room: a block holds at most bs / 12 entries and bs bytes of
	 * names; an inline directory less than that plus 2. */
	b->e[b->n].ino = d->ino;
	b->e[b->n].next = d->next;
	b->e[b->n].type = d->type;
	b->e[b->n].name = b->used;
	memcpy(b->names + b->used, d->name, d->len);
	b->names[b->used + d->len] = '\0';
	b->used += d->len + 1;
	b->n++;
	return 0;
}

static int ext_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		       vd_fs_fill fill, void *arg)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	struct ext_win *w = NULL;
	struct ext_batch b = { 0 };
	uint64_t pos = cookie;
	/* An inline directory may hold up to 64 KiB + 60 bytes. */
	size_t most = VD_MAX(x->bs, 65536u + 64u);
	int ret;

	b.e = malloc((most / 12 + 2) * sizeof(*b.e));
	b.names = malloc(most + 2 * 3);
	if (!b.e || !b.names) {
		ret = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&x->lock);
	ret = ext_dir_inode(x, dir, &in);
	/* Ends: ext_dir_walk moves pos on by a block (or to the end). */
	while (!ret && pos < EXT2_I_SIZE(&in)) {
		b.n = b.used = 0;
		ret = ext_dir_walk(x, dir, &in, &pos, &w, true, ext_batch_add,
				   &b);
		if (ret)
			break;
		pthread_mutex_unlock(&x->lock);
		for (size_t i = 0; i < b.n && !ret; i++)
			if (fill(arg, b.names + b.e[i].name, b.e[i].ino,
				 b.e[i].type, b.e[i].next))
				ret = 1;
		pthread_mutex_lock(&x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	if (ret == 1)
		ret = 0;
out:
	free(w);
	free(b.e);
	free(b.names);
	return ret;
}

/* ---- lookup ---- */

/* A big directory's names, sorted by hash then name, for lookups. */
struct ext_dname {
	uint32_t hash;
	uint32_t len;
	size_t name; /* offset in names */
	uint64_t ino;
};

struct ext_dcache {
	struct ext_dcache *next; /* most recently used first */
	uint64_t ino;
	size_t n, cap, bytes;
	struct ext_dname *v;
	char *names;
	size_t used, names_cap;
	bool too_big;
};

static uint32_t ext_name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static int ext_dname_cmp(const void *a, const void *b, void *names)
{
	const struct ext_dname *p = a, *q = b;
	int c;

	if (p->hash != q->hash)
		return p->hash < q->hash ? -1 : 1;
	if (p->len != q->len)
		return p->len < q->len ? -1 : 1;
	c = memcmp((char *)names + p->name, (char *)names + q->name, p->len);
	return c;
}

static int ext_dcache_add(void *arg, const struct ext_dent *d)
{
	struct ext_dcache *c = arg;

	if (c->n == c->cap || c->names_cap - c->used < d->len) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		size_t ncap = c->names_cap ? 2 * c->names_cap : 8192;
		void *p;

		if (cap * sizeof(*c->v) + ncap > EXT_DCACHE_BUDGET / 2) {
			c->too_big = true;
			return 1;
		}
		p = realloc(c->v, cap * sizeof(*c->v));
		if (!p)
			return -ENOMEM;
		c->v = p;
		c->cap = cap;
		p = realloc(c->names, ncap);
		if (!p)
			return -ENOMEM;
		c->names = p;
		c->names_cap = ncap;
	}
	c->v[c->n++] = (struct ext_dname){ ext_name_hash(d->name, d->len),
					   d->len, c->used, d->ino };
	memcpy(c->names + c->used, d->name, d->len);
	c->used += d->len;
	return 0;
}

static void ext_dcache_free(struct ext_dcache *c)
{
	if (c) {
		free(c->v);
		free(c->names);
		free(c);
	}
}

/* The lookup table of directory dir (under the lock), built on first use
 * and kept most recent first; NULL when the directory is too big for the
 * budget (the caller then scans). */
static int ext_dcache_get(struct ext_fs *x, uint64_t dir,
			  struct ext2_inode_large *in, struct ext_dcache **c_r)
{
	struct ext_dcache **pp, *c;
	struct ext_win *w = NULL;
	uint64_t pos = 0;
	int ret;

	*c_r = NULL;
	for (pp = &x->dcache; *pp; pp = &(*pp)->next) {
		if ((*pp)->ino == dir) {
			c = *pp;
			*pp = c->next;
			c->next = x->dcache;
			x->dcache = c;
			*c_r = c;
			return 0;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ino = dir;
	ret = ext_dir_walk(x, dir, in, &pos, &w, false, ext_dcache_add, c);
	free(w);
	if (ret < 0 || c->too_big) {
		ext_dcache_free(c);
		return ret < 0 ? ret : 0;
	}
	qsort_r(c->v, c->n, sizeof(*c->v), ext_dname_cmp, c->names);
	c->bytes = c->cap * sizeof(*c->v) + c->names_cap + sizeof(*c);
	/* Make room: drop the least recently used tables. */
	while (x->dcache && x->dcache_bytes + c->bytes > EXT_DCACHE_BUDGET) {
		struct ext_dcache *last;

		for (pp = &x->dcache; (*pp)->next; pp = &(*pp)->next)
			;
		last = *pp;
		*pp = NULL;
		x->dcache_bytes -= last->bytes;
		ext_dcache_free(last);
	}
	c->next = x->dcache;
	x->dcache = c;
	x->dcache_bytes += c->bytes;
	*c_r = c;
	return 0;
}

struct ext_find {
	struct ext_fs *x;
	const char *name;
	size_t len;
	bool casefold;
	uint64_t ino;
};

static bool ext_name_eq(struct ext_find *f, const char *name, size_t len)
{
	if (len == f->len && !memcmp(name, f->name, len))
		return true;
	return f->casefold &&
	       !ext2fs_casefold_cmp(f->x->fs->encoding,
				    (const unsigned char *)name, len,
				    (const unsigned char *)f->name, f->len);
}

static int ext_find_one(void *arg, const struct ext_dent *d)
{
	struct ext_find *f = arg;

	if (!ext_name_eq(f, d->name, d->len))
		return 0;
	f->ino = d->ino;
	return 1;
}

static int ext_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		      uint64_t *ino_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext_find f = { x, name, strlen(name), false, 0 };
	struct ext2_inode_large in;
	struct ext_dcache *c = NULL;
	struct ext_win *w = NULL;
	uint64_t pos = 0;
	int ret;

	if (!f.len || f.len > EXT_NAME_MAX)
		return f.len ? -ENAMETOOLONG : -ENOENT;
	pthread_mutex_lock(&x->lock);
	ret = ext_dir_inode(x, dir, &in);
	if (ret)
		goto out;
	f.casefold = (in.i_flags & EXT4_CASEFOLD_FL) && x->fs->encoding;
	if (!(in.i_flags & EXT4_INLINE_DATA_FL) &&
	    EXT2_I_SIZE(&in) >= (uint64_t)EXT_DCACHE_MIN_BLOCKS * x->bs) {
		ret = ext_dcache_get(x, dir, &in, &c);
		if (ret)
			goto out;
	}
	if (c && !f.casefold) {
		struct ext_dname key = { ext_name_hash(name, f.len),
					 (uint32_t)f.len, 0, 0 };
		size_t lo = 0, hi = c->n;

		/* key.name is an offset into c->names: compare by hand. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct ext_dname *m = &c->v[mid];
			int cmp = m->hash != key.hash ?
					  (m->hash < key.hash ? -1 : 1) :
				  m->len != key.len ?
					  (m->len < key.len ? -1 : 1) :
					  memcmp(c->names + m->name, name, f.len);

			if (cmp < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < c->n && c->v[lo].hash == key.hash &&
		    c->v[lo].len == key.len &&
		    !memcmp(c->names + c->v[lo].name, name, f.len))
			f.ino = c->v[lo].ino;
	} else if (c) {
		for (size_t i = 0; i < c->n && !f.ino; i++)
			if (ext_name_eq(&f, c->names + c->v[i].name,
					c->v[i].len))
				f.ino = c->v[i].ino;
	} else {
		ret = ext_dir_walk(x, dir, &in, &pos, &w, false, ext_find_one,
				   &f);
		free(w);
		if (ret == 1)
			ret = 0;
	}
	if (!ret && !f.ino)
		ret = -ENOENT;
	if (!ret)
		*ino_r = f.ino;
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* ---- attributes ---- */

/* Whether the inode's extra part holds the field at byte off (length 4):
 * the kernel's EXT4_FITS_IN_INODE. */
static bool ext_fits(const struct ext2_inode_large *in, size_t off)
{
	return off + 4 <= EXT2_GOOD_OLD_INODE_SIZE + (size_t)in->i_extra_isize;
}

/* A time as the kernel decodes it (ext4_decode_extra_time): a signed
 * 32-bit base, two epoch bits and 30 bits of nanoseconds from extra. */
static struct timespec ext_time(const struct ext2_inode_large *in,
				uint32_t base, size_t extra_off, uint32_t extra)
{
	struct timespec ts = { .tv_sec = (int32_t)base, .tv_nsec = 0 };

	if (ext_fits(in, extra_off)) {
		ts.tv_sec += (int64_t)(extra & EXT4_EPOCH_MASK) << 32;
		ts.tv_nsec = VD_MIN(extra >> EXT4_EPOCH_BITS, 999999999u);
	}
	return ts;
}

static int ext_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = vd_ext_read_inode(x, ino, &in);
	if (!ret)
		a->blocks = ext2fs_get_stat_i_blocks(x->fs, EXT2_INODE(&in));
	pthread_mutex_unlock(&x->lock);
	if (ret)
		return ret;
	/* As the kernel's ext4_file_getattr: a regular file with inline
	 * data reports its size in sectors on top, so that tar and rsync do
	 * not take it for all holes. */
	if (LINUX_S_ISREG(in.i_mode) && in.i_flags & EXT4_INLINE_DATA_FL)
		a->blocks += (EXT2_I_SIZE(&in) + 511) >> 9;
	a->ino = ino;
	a->mode = in.i_mode;
	a->nlink = in.i_links_count;
	a->uid = in.i_uid | (uint32_t)in.osd2.linux2.l_i_uid_high << 16;
	a->gid = in.i_gid | (uint32_t)in.osd2.linux2.l_i_gid_high << 16;
	a->size = EXT2_I_SIZE(&in);
	a->rdev = 0;
	if (LINUX_S_ISCHR(in.i_mode) || LINUX_S_ISBLK(in.i_mode)) {
		/* As ext4_iget: i_block[0] holds an old 16-bit number,
		 * else i_block[1] a new 32-bit one. */
		uint32_t old = in.i_block[0], nw = in.i_block[1];

		if (old)
			a->rdev = makedev((old >> 8) & 255, old & 255);
		else
			a->rdev = makedev((nw & 0xfff00) >> 8,
					  (nw & 0xff) | ((nw >> 12) & 0xfff00));
	}
	a->atime = ext_time(&in, in.i_atime,
			    offsetof(struct ext2_inode_large, i_atime_extra),
			    in.i_atime_extra);
	a->mtime = ext_time(&in, in.i_mtime,
			    offsetof(struct ext2_inode_large, i_mtime_extra),
			    in.i_mtime_extra);
	a->ctime = ext_time(&in, in.i_ctime,
			    offsetof(struct ext2_inode_large, i_ctime_extra),
			    in.i_ctime_extra);
	return 0;
}

/* The kernel's ext4_inode_is_fast_symlink: no block holds the target
 * (i_blocks counts only the xattr block, if any). */
static bool ext_fast_symlink(struct ext_fs *x, struct ext2_inode_large *in)
{
	uint64_t blocks = ext2fs_get_stat_i_blocks(x->fs, EXT2_INODE(in));
	uint64_t ea = 0;

	if (ext2fs_has_feature_ea_inode(x->fs->super))
		return EXT2_I_SIZE(in) < sizeof(in->i_block);
	if (ext2fs_file_acl_block(x->fs, EXT2_INODE(in)))
		ea = (uint64_t)EXT2_CLUSTER_SIZE(x->fs->super) / 512;
	return blocks == ea;
}

static int ext_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
			size_t size)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	uint64_t len;
	char *t = NULL;
	int ret;

	if (!size)
		return -EINVAL;
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_read_inode(x, ino, &in);
	if (ret)
		goto out;
	len = EXT2_I_SIZE(&in);
	if (!LINUX_S_ISLNK(in.i_mode)) {
		ret = -EINVAL;
	} else if (in.i_flags & EXT4_ENCRYPT_FL) {
		vd_log(VD_LOG_ERR, "%s: ext: symlink inode %" PRIu64 " is "
		       "encrypted (fscrypt); its target cannot be read",
		       x->name, ino);
		ret = -ENOKEY;
	} else if (len == 0 || len >= x->bs || len > 65535) {
		/* The kernel keeps a target shorter than a block. */
		ret = ext_io_err(x, ino, "symlink length",
				 EXT2_ET_INODE_CORRUPTED);
	} else if (in.i_flags & EXT4_INLINE_DATA_FL) {
		size_t got = 0;
		errcode_t err;

		t = malloc(65536 + 64);
		if (!t) {
			ret = -ENOMEM;
			goto out;
		}
		err = ext2fs_inline_data_size(x->fs, (ext2_ino_t)ino, &got);
		if (!err && got > 65536 + 64)
			err = EXT2_ET_INODE_CORRUPTED;
		if (!err)
			err = ext2fs_inline_data_get(x->fs, (ext2_ino_t)ino,
						     EXT2_INODE(&in), t, &got);
		if (!err && got < len)
			err = EXT2_ET_INODE_CORRUPTED;
		if (err)
			ret = ext_io_err(x, ino, "inline symlink", err);
	} else if (ext_fast_symlink(x, &in)) {
		/* The target is in i_block; the kernel refuses one whose
		 * length disagrees with i_size. */
		if (len >= sizeof(in.i_block) ||
		    strnlen((const char *)in.i_block, len + 1) != len) {
			ret = ext_io_err(x, ino, "fast symlink length",
					 EXT2_ET_INODE_CORRUPTED);
			goto out;
		}
		t = malloc(len);
		if (t)
			memcpy(t, in.i_block, len);
		else
			ret = -ENOMEM;
	} else {
		/* A slow symlink: the target is in the first block. An
		 * extent-mapped one shorter than 60 bytes is also here. */
		struct ext_win *w = NULL;
		size_t i;

		t = malloc(x->bs);
		if (!t)
			ret = -ENOMEM;
		else
			ret = vd_ext_map(x, ino, &in, 1, 0, &w);
		if (!ret) {
			i = vd_ext_win_find(w, 0);
			if (i == w->n || w->ex[i].lblk || w->ex[i].uninit)
				ret = ext_io_err(x, ino, "symlink block",
						 EXT2_ET_INODE_CORRUPTED);
			else if (vd_ext_io_read(x->io, t, x->bs,
						w->ex[i].pblk * x->bs))
				ret = ext_io_err(x, ino, "symlink block", EIO);
		}
		free(w);
	}
out:
	pthread_mutex_unlock(&x->lock);
	if (!ret) {
		size_t n = (size_t)VD_MIN(len, size - 1);

		memcpy(buf, t, n);
		buf[n] = '\0';
	}
	free(t);
	return ret;
}

/* ---- xattrs ---- */

/* Whether the kernel's ext4 shows the attribute: the user, trusted and
 * security namespaces and the two POSIX ACLs. system.data (inline data)
 * and the encryption context are its own. */
static bool ext_xattr_visible(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9) ||
	       !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default");
}

static int ext_xattr_open(struct ext_fs *x, uint64_t ino,
			  struct ext2_xattr_handle **h_r)
{
	struct ext2_inode_large in;
	unsigned raw = XATTR_HANDLE_FLAG_RAW;
	errcode_t err;
	int ret = vd_ext_read_inode(x, ino, &in);

	if (ret)
		return ret;
	/* A volume made without xattrs (mkfs -O ^ext_attr) has none to
	 * show: the kernel lists nothing, where libext2fs would fail with
	 * EXT2_ET_MISSING_EA_FEATURE. */
	if (!ext2fs_has_feature_xattr(x->fs->super) &&
	    !ext2fs_has_feature_inline_data(x->fs->super))
		return -ENODATA;
	err = ext2fs_xattrs_open(x->fs, (ext2_ino_t)ino, h_r);
	if (err)
		return ext_io_err(x, ino, "xattrs", err);
	/* Raw values: libext2fs's ACL conversion trusts the value's
	 * length; ext_acl_to_xattr checks it. */
	err = ext2fs_xattrs_flags(*h_r, &raw, NULL);
	if (!err)
		err = ext2fs_xattrs_read(*h_r);
	if (err) {
		ext2fs_xattrs_close(h_r);
		return ext_io_err(x, ino, "xattrs", err);
	}
	return 0;
}

struct ext_xlist {
	char *buf;
	size_t size, len;
};

static int ext_xattr_list_one(char *name, char *value, size_t value_len,
			      void *arg)
{
	struct ext_xlist *l = arg;
	size_t n = strlen(name) + 1;

	(void)value;
	(void)value_len;
	if (!ext_xattr_visible(name))
		return 0;
	if (l->size && l->len + n <= l->size)
		memcpy(l->buf + l->len, name, n);
	l->len += n;
	return 0;
}

static int ext_listxattr(struct vd_fs *fs, uint64_t ino, char *buf,
			 size_t size, size_t *len_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_xattr_handle *h;
	struct ext_xlist l = { buf, size, 0 };
	errcode_t err;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = ext_xattr_open(x, ino, &h);
	if (!ret) {
		err = ext2fs_xattrs_iterate(h, ext_xattr_list_one, &l);
		if (err)
			ret = ext_io_err(x, ino, "xattrs", err);
		ext2fs_xattrs_close(&h);
	} else if (ret == -ENODATA) {
		ret = 0; /* no xattrs on this volume: an empty list */
	}
	pthread_mutex_unlock(&x->lock);
	if (ret)
		return ret;
	*len_r = l.len;
	return size && l.len > size ? -ERANGE : 0;
}

/* An ext4 on-disk ACL (fs/ext4/acl.c: a 4-byte version 1 header, then
 * 4-byte entries tag, perm and 8-byte ones with an id for ACL_USER and
 * ACL_GROUP) in the POSIX xattr format the kernel returns (version 2,
 * 8-byte entries, id -1 where there is none). *out_r is malloc'ed. */
static int ext_acl_to_xattr(const uint8_t *v, size_t len, uint8_t **out_r,
			    size_t *len_r)
{
	uint8_t *out, *o;
	size_t off = 4;

	if (len < 4 || get_le32(v) != EXT_ACL_DISK_VERSION)
		return -EIO;
	out = malloc(4 + (len - 4) * 2); /* each entry at most doubles */
	if (!out)
		return -ENOMEM;
	o = out;
	o[0] = EXT_ACL_XATTR_VERSION;
	o[1] = o[2] = o[3] = 0;
	o += 4;
	/* Ends: each entry consumes 4 or 8 bytes of the value. */
	while (off < len) {
		unsigned tag, id = EXT_ACL_UNDEFINED_ID;

		if (len - off < 4)
			goto bad;
		tag = get_le16(v + off);
		memcpy(o, v + off, 4); /* tag, perm: same layout */
		off += 4;
		switch (tag) {
		case 0x01: /* ACL_USER_OBJ */
		case 0x04: /* ACL_GROUP_OBJ */
		case 0x10: /* ACL_MASK */
		case 0x20: /* ACL_OTHER */
			break;
		case 0x02: /* ACL_USER */
		case 0x08: /* ACL_GROUP */
			if (len - off < 4)
				goto bad;
			id = get_le32(v + off);
			off += 4;
			break;
		default:
			goto bad;
		}
		o[4] = (uint8_t)id;
		o[5] = (uint8_t)(id >> 8);
		o[6] = (uint8_t)(id >> 16);
		o[7] = (uint8_t)(id >> 24);
		o += 8;
	}
	*out_r = out;
	*len_r = (size_t)(o - out);
	return 0;
bad:
	free(out);
	return -EIO;
}

static int ext_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
			void *buf, size_t size, size_t *len_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_xattr_handle *h;
	void *val = NULL;
	uint8_t *acl = NULL;
	size_t len = 0;
	errcode_t err;
	int ret;

	if (!ext_xattr_visible(name))
		return -ENODATA;
	pthread_mutex_lock(&x->lock);
	ret = ext_xattr_open(x, ino, &h);
	if (!ret) {
		err = ext2fs_xattr_get(h, name, &val, &len);
		if (err == EXT2_ET_EA_KEY_NOT_FOUND)
			ret = -ENODATA;
		else if (err)
			ret = ext_io_err(x, ino, "xattr", err);
		ext2fs_xattrs_close(&h);
	}
	pthread_mutex_unlock(&x->lock);
	if (!ret && !strncmp(name, "system.posix_acl_", 17)) {
		ret = ext_acl_to_xattr(val, len, &acl, &len);
		if (ret == -EIO)
			vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": bad "
			       "ACL in %s", x->name, ino, name);
	}
	if (!ret) {
		*len_r = len;
		if (size && len > size)
			ret = -ERANGE;
		else if (size)
			memcpy(buf, acl ? (void *)acl : val, len);
	}
	free(acl);
	ext2fs_free_mem(&val);
	return ret;
}

/* ---- statfs ---- */

/* Blocks the kernel counts as filesystem overhead (ext4_calculate_overhead
 * in fs/ext4/super.c): all before the first data block, each group's
 * superblock and descriptor copies (reserved GDT blocks included), bitmaps
 * and inode table, and the internal journal; or what the superblock
 * records in s_overhead_clusters. */
static uint64_t ext_overhead(struct ext_fs *x)
{
	ext2_filsys fs = x->fs;
	struct ext2_super_block *sb = fs->super;
	uint64_t ratio = EXT2FS_CLUSTER_RATIO(fs), o;

	if (sb->s_overhead_clusters)
		return (uint64_t)sb->s_overhead_clusters * ratio;
	o = sb->s_first_data_block;
	/* Ends: one pass per group, a count libext2fs checked at open. */
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		blk64_t s, od, nd;
		blk_t used = 0;

		ext2fs_super_and_bgd_loc2(fs, g, &s, &od, &nd, &used);
		o += (uint64_t)used + fs->inode_blocks_per_group + 2;
	}
	if (ext2fs_has_feature_journal(sb) && sb->s_journal_inum) {
		struct ext2_inode_large j;

		if (!vd_ext_read_inode(x, sb->s_journal_inum, &j))
			o += EXT2_I_SIZE(&j) / x->bs;
	}
	/* bigalloc: the kernel counts whole clusters. */
	return (o + ratio - 1) / ratio * ratio;
}

static void ext_statfs_init(struct ext_fs *x)
{
	ext2_filsys fs = x->fs;
	struct ext2_super_block *sb = fs->super;
	uint64_t ratio = EXT2FS_CLUSTER_RATIO(fs), free_c = 0, free_i = 0;
	uint64_t over = ext_overhead(x), resv = 0, fsid;
	struct statvfs *st = &x->st;

	/* As the kernel at mount: free counts summed over the groups. */
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		free_c += ext2fs_bg_free_blocks_count(fs, g);
		free_i += ext2fs_bg_free_inodes_count(fs, g);
	}
	/* ext4_calculate_resv_clusters: 2% of the clusters, at most 4096,
	 * kept back from the unprivileged on extent filesystems. */
	if (ext2fs_has_feature_extents(sb))
		resv = VD_MIN((x->blocks / ratio) / 50, 4096u) * ratio;
	resv += ext2fs_r_blocks_count(sb);
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = x->bs;
	st->f_blocks = over < x->blocks ? x->blocks - over : 0;
	st->f_bfree = free_c * ratio;
	st->f_bavail = st->f_bfree > resv ? st->f_bfree - resv : 0;
	st->f_files = sb->s_inodes_count;
	st->f_ffree = st->f_favail = free_i;
	fsid = get_le64(sb->s_uuid) ^ get_le64(sb->s_uuid + 8);
	st->f_fsid = (unsigned long)fsid;
	st->f_flag = ST_RDONLY;
	st->f_namemax = EXT_NAME_MAX;
}

static int ext_statfs(struct vd_fs *fs, struct statvfs *st_r)
{
	*st_r = ((struct ext_fs *)fs)->st;
	return 0;
}

/* ---- mount ---- */

static int ext_probe(const struct vd_vol *v)
{
	uint8_t m[2];

	return v->len >= 2 * EXT_SB_OFF &&
	       !vd_vol_read(v, m, 2, EXT_SB_OFF + EXT_SB_MAGIC) &&
	       get_le16(m) == EXT_MAGIC;
}

static uint64_t ext_root(struct vd_fs *fs)
{
	(void)fs;
	return EXT2_ROOT_INO;
}

static void ext_unmount(struct vd_fs *fs)
{
	struct ext_fs *x = (struct ext_fs *)fs;

	if (!x)
		return;
	while (x->dcache) {
		struct ext_dcache *c = x->dcache;

		x->dcache = c->next;
		ext_dcache_free(c);
	}
	if (x->fs)
		ext2fs_close_free(&x->fs);
	vd_ext_io_free(x->io);
	if (x->replay)
		vd_ext_replay_free(x->replay);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

/* Checks libext2fs leaves to the kernel: the block count against the
 * volume ("bad geometry" in ext4_fill_super). */
static int ext_check_super(const struct vd_vol *v, struct vd_err *e)
{
	uint8_t sb[1024];
	uint64_t blocks;
	unsigned log;
	int ret = vd_vol_read(v, sb, sizeof(sb), EXT_SB_OFF);

	if (ret)
		return vd_fail(e, ret, "%s: ext: superblock unreadable",
			       v->name);
	log = get_le32(sb + EXT_SB_LOG_BLOCK);
	if (log > 6)
		return vd_fail(e, -EUCLEAN, "%s: ext: superblock block size "
			       "field %u is not 0..6 (1 KiB..64 KiB)", v->name,
			       log);
	blocks = get_le32(sb + EXT_SB_BLOCKS_LO);
	if (get_le32(sb + EXT_SB_INCOMPAT) & EXT4_FEATURE_INCOMPAT_64BIT)
		blocks |= (uint64_t)get_le32(sb + EXT_SB_BLOCKS_HI) << 32;
	if (blocks > v->len >> (10 + log))
		return vd_fail(e, -EUCLEAN, "%s: ext: superblock block count "
			       "%" PRIu64 " exceeds the volume (%" PRIu64
			       " blocks of %u bytes)", v->name, blocks,
			       v->len >> (10 + log), 1024u << log);
	return 0;
}

static int ext_open_fs(struct ext_fs *x, const char *name, struct vd_err *e)
{
	const struct vd_vol *v = x->base.vol;
	errcode_t err;
	int ret;

	err = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS, 0, 0,
			   vd_ext_io_manager, &x->fs);
	if (!err)
		return 0;
	x->fs = NULL;
	ret = vd_ext_errno(err);
	if (ret == -EIO)
		return vd_fail(e, -EIO, "%s: ext: read error: %s", v->name,
			       error_message(err));
	if (ret == -ENOTSUP)
		return vd_fail(e, -ENOTSUP, "%s: ext: %s", v->name,
			       error_message(err));
	return vd_fail(e, ret == -ENOMEM ? ret : -EUCLEAN, "%s: ext: %s",
		       v->name, error_message(err));
}

static int ext_mount(const struct vd_vol *v, struct vd_fs **fs_r,
		     struct vd_err *e)
{
	struct ext_fs *x = calloc(1, sizeof(*x));
	char name[32];
	struct vd_err je;
	int ret;

	if (!x)
		return -ENOMEM;
	initialize_ext2_error_table();
	x->base.ops = &vd_fs_ext;
	x->base.vol = v;
	x->name = v->name;
	pthread_mutex_init(&x->lock, NULL);
	ret = ext_check_super(v, e);
	if (ret)
		goto fail;
	ret = vd_ext_io_new(v, &x->io, name, sizeof(name));
	if (ret)
		goto fail;
	ret = ext_open_fs(x, name, e);
	if (ret)
		goto fail;
	if (ext2fs_has_feature_journal_needs_recovery(x->fs->super)) {
		je.msg[0] = '\0';
		ret = vd_ext_replay_scan(x->fs, v, &x->replay, &je);
		if (ret) {
			vd_log(VD_LOG_WARN, "%s: ext: the journal needs "
			       "recovery and cannot be replayed (%s); showing "
			       "the volume as last written, which may be "
			       "inconsistent", v->name, je.msg);
			x->replay = NULL;
		} else if (x->replay) {
			/* Reopen so the superblock and group descriptors
			 * come through the overlay too. */
			vd_ext_io_set_replay(x->io, x->replay, x->fs->blocksize);
			ext2fs_close_free(&x->fs);
			ret = ext_open_fs(x, name, e);
			if (ret)
				goto fail;
		}
		/* As the kernel's recovery leaves it (in memory only). */
		ext2fs_clear_feature_journal_needs_recovery(x->fs->super);
		ret = 0;
	}
	x->bs = x->fs->blocksize;
	x->blocks = ext2fs_blocks_count(x->fs->super);
	ext_statfs_init(x);
	*fs_r = &x->base;
	return 0;
fail:
	ext_unmount(&x->base);
	return ret;
}

const struct vd_fs_ops vd_fs_ext = {
	.name = "ext4",
	.probe = ext_probe,
	.mount = ext_mount,
	.unmount = ext_unmount,
	.root = ext_root,
	.lookup = ext_lookup,
	.getattr = ext_getattr,
	.readdir = ext_readdir,
	.open = vd_ext_open,
	.read = vd_ext_read,
	.seek = vd_ext_seek,
	.release = vd_ext_release,
	.readlink = ext_readlink,
	.listxattr = ext_listxattr,
	.getxattr = ext_getxattr,
	.statfs = ext_statfs,
};
