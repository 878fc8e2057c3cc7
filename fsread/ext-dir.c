/* ext2/3/4 directories: listing (readdir cookies are byte positions in
 * the directory) and lookup (a name table for big directories, built
 * once and kept within a budget). Part of the ext driver (ext.c). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Directories of at least this many blocks get a lookup table. */
#define EXT_DCACHE_MIN_BLOCKS 4
/* Memory for lookup tables of all directories of one mount. */
#define EXT_DCACHE_BUDGET (16u << 20)

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
 * position from are passed over; none begins at or past end (the
 * directory's size: the kernel's ext4_readdir stops there, mid-block
 * too; e2fsprogs' f_trunc_dirent_header). Stops early (returning 1)
 * when fn asks. A bad entry ends the region (logged; returning
 * EXT_DIR_BAD): the entries before it stand, as the kernel's readdir
 * and lookup keep them and pass over the rest of the block. */
#define EXT_DIR_BAD 2

static int ext_dir_parse(struct ext_fs *x, uint64_t dino, const uint8_t *buf,
			 size_t len, uint64_t base, uint64_t from, uint64_t end,
			 ext_dent_fn fn, void *arg)
{
	size_t off = 0;

	/* Ends: every entry is at least 12 bytes long. */
	while (len - off >= 8 && base + off < end) {
		/* ext4 directory entry: 0 inode, 4 rec_len, 6 name_len,
		 * 7 file_type (ext4 spec, "Linear Directories"). */
		const uint8_t *p = buf + off;
		unsigned ino = get_le32(p), nl = p[6];
		unsigned rl = ext_rec_len(get_le16(p + 4), x->bs);
		struct ext_dent d;

		/* The kernel's ext4_check_dir_entry also refuses an entry
		 * that leaves less than a minimal entry (12 bytes) before
		 * the block's end without reaching it (e2fsprogs'
		 * f_trunc_dirent_header). */
		if (rl < 12 || (rl & 3) || rl > len - off ||
		    (rl != len - off && len - off - rl < 12) ||
		    rl < ((8u + nl + 3) & ~3u) ||
		    ino > x->fs->super->s_inodes_count) {
			vd_log(VD_LOG_ERR, "%s: ext: directory %" PRIu64 ": bad "
			       "entry at byte %" PRIu64 " (rec_len %u, "
			       "name_len %u, inode %u)", x->name, dino,
			       base + off, rl, nl, ino);
			return EXT_DIR_BAD;
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
	uint64_t size = vd_ext_isize(x, in), bs = x->bs, pos = *pos_r;
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
			return vd_ext_io_err(x, dino, "inline directory", err);
		if (len < EXT4_MIN_INLINE_DATA_SIZE || len > 65536 + 60)
			return vd_ext_io_err(x, dino, "inline directory size",
					  EXT2_ET_DIR_CORRUPTED);
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		err = ext2fs_inline_data_get(x->fs, (ext2_ino_t)dino,
					     EXT2_INODE(in), buf, &len);
		if (err) {
			free(buf);
			return vd_ext_io_err(x, dino, "inline directory", err);
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
					    pos, UINT64_MAX, fn, arg);
		if (!ret && len > EXT4_MIN_INLINE_DATA_SIZE)
			ret = ext_dir_parse(x, dino,
					    buf + EXT4_MIN_INLINE_DATA_SIZE,
					    len - EXT4_MIN_INLINE_DATA_SIZE,
					    EXT4_MIN_INLINE_DATA_SIZE, pos,
					    UINT64_MAX, fn, arg);
		free(buf);
		/* A bad entry ends an inline directory's listing, as the
		 * kernel's ext4_read_inline_dir does. */
		return ret == EXT_DIR_BAD ? 0 : ret;
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
		/* An unwritten extent's blocks are read as stored, as the
		 * kernel's ext4_bread does for directories (it maps them
		 * like written ones): e2fsprogs' f_uninit_dir. */
		pblk = e->pblk + (lblk - e->lblk);
		err = ext2fs_read_dir_block4(x->fs, pblk, buf, 0,
					     (ext2_ino_t)dino);
		if (err) {
			ret = vd_ext_io_err(x, dino, "directory block", err);
			break;
		}
		ret = ext_dir_parse(x, dino, buf, bs, lblk * bs, pos, size,
				    fn, arg);
		if (ret == EXT_DIR_BAD)
			ret = 0; /* on with the next block */
		else if (ret)
			break;
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

int vd_ext_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
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
	while (!ret && pos < vd_ext_isize(x, &in)) {
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
	/* A corrupt directory may yield no entry at all (not even "."):
	 * then c->v is NULL, which qsort_r must not be given. */
	if (c->n > 1)
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

int vd_ext_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		      uint64_t *ino_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = vd_ext_lookup_locked(x, dir, name, ino_r);
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ext_lookup_locked(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t *ino_r)
{
	struct ext_find f = { x, name, strlen(name), false, 0 };
	struct ext2_inode_large in;
	struct ext_dcache *c = NULL;
	struct ext_win *w = NULL;
	uint64_t pos = 0;
	int ret;

	if (!f.len || f.len > EXT_NAME_MAX)
		return f.len ? -ENAMETOOLONG : -ENOENT;
	ret = ext_dir_inode(x, dir, &in);
	if (ret)
		goto out;
	f.casefold = (in.i_flags & EXT4_CASEFOLD_FL) && x->fs->encoding;
	if (!(in.i_flags & EXT4_INLINE_DATA_FL) &&
	    vd_ext_isize(x, &in) >= (uint64_t)EXT_DCACHE_MIN_BLOCKS * x->bs) {
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
	return ret;
}

void vd_ext_dcache_drop(struct ext_fs *x, uint64_t dir)
{
	for (struct ext_dcache **pp = &x->dcache; *pp; pp = &(*pp)->next) {
		struct ext_dcache *c = *pp;

		if (c->ino == dir) {
			*pp = c->next;
			x->dcache_bytes -= c->bytes;
			ext_dcache_free(c);
			return;
		}
	}
}

static int ext_not_dots(void *arg, const struct ext_dent *d)
{
	bool *empty = arg;

	if ((d->len == 1 && d->name[0] == '.') ||
	    (d->len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	*empty = false;
	return 1;
}

int vd_ext_dir_empty(struct ext_fs *x, uint64_t dir,
		     struct ext2_inode_large *in, bool *empty_r)
{
	struct ext_win *w = NULL;
	uint64_t pos = 0;
	int ret;

	*empty_r = true;
	ret = ext_dir_walk(x, dir, in, &pos, &w, false, ext_not_dots, empty_r);
	free(w);
	return ret < 0 ? ret : 0;
}

void vd_ext_dcache_clear(struct ext_fs *x)
{
	while (x->dcache) {
		struct ext_dcache *c = x->dcache;

		x->dcache = c->next;
		ext_dcache_free(c);
	}
}
