/* ext2/3/4 changes, in a writable mount, through libext2fs: new inodes
 * (files, device nodes, fifos, sockets, directories, symlinks), links,
 * attributes and sizes, and the helpers ext-unlink.c builds unlink,
 * rmdir and rename (RENAME_NOREPLACE and RENAME_EXCHANGE) on. File data
 * is written in ext-file.c, xattrs in ext.c.
 *
 * libext2fs opens the filesystem read-write through our io_manager,
 * whose writes go down the volume into the qcow2 child (ext-io.c). Every
 * call runs under the mount's lock (ext.h). The kernel's rules are kept
 * where libext2fs leaves them to the caller: names at most 255 bytes,
 * EEXIST, ENOTDIR/EISDIR, ENOTEMPTY, EMLINK, no directory moved into
 * itself, ctime and mtime as the kernel sets them (with nanoseconds),
 * owners as inode_init_owner gives them (a set-group-ID directory passes
 * its group on). Nothing goes through the journal: what a crash leaves
 * is what fuse2fs leaves, and fsync, unmount and SIGTERM flush (the
 * superblock says "not clean" from the first change until the unmount,
 * so e2fsck checks after a crash).
 *
 * The order of steps keeps a crash between two of them repairable by
 * e2fsck without losing a file: a new inode is written and counted
 * before the entry naming it, a link count is raised before the new
 * entry and lowered after the entry is gone.
 *
 * An inode whose last link goes while it is open through vd_ext_open
 * stays allocated until its last release, as the kernel keeps an
 * unlinked open file (without the orphan list: a crash leaks it, which
 * e2fsck reclaims). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <et/com_err.h>

#include "common/util.h"
#include "fsread/ext.h"


struct ext_open {
	struct ext_open *next;
	uint64_t ino;
	unsigned count;
	bool orphan; /* its last link is gone: freed at the last release */
};

/* ---- helpers ---- */

void vd_ext_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

void vd_ext_time_put(struct ext2_inode_large *in, __u32 *base, __u32 *extra,
		     size_t extra_off, struct timespec ts)
{
	int64_t sec = (int64_t)ts.tv_sec;

	*base = (uint32_t)sec;
	/* As EXT4_FITS_IN_INODE: only an inode with room keeps them. */
	if (extra_off + 4 <= EXT2_GOOD_OLD_INODE_SIZE + (size_t)in->i_extra_isize)
		*extra = (uint32_t)(((sec - (int64_t)(int32_t)sec) >> 32) &
				    EXT4_EPOCH_MASK) |
			 ((uint32_t)ts.tv_nsec << EXT4_EPOCH_BITS);
}

int vd_ext_werr(struct ext_fs *x, uint64_t ino, const char *what,
		errcode_t err)
{
	switch (err) {
	case 0:
		return 0;
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_INLINE_DATA_NO_SPACE:
		return -ENOSPC;
	case EXT2_ET_FILE_TOO_BIG:
		return -EFBIG;
	case EXT2_ET_DIR_EXISTS:
		return -EEXIST;
	case EXT2_ET_NO_DIRECTORY:
		return -ENOTDIR;
	case EXT2_ET_FILE_NOT_FOUND:
		return -ENOENT;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return -ENODATA;
	case EXT2_ET_MISSING_EA_FEATURE:
		return -EOPNOTSUPP;
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_RO_FILSYS:
		return -EROFS;
	}
	/* Our channel's own errno (ENOSPC: the host disk is full; EROFS:
	 * a volume that cannot be written). */
	if (err > 0 && err < 4096)
		return -(int)err;
	return vd_ext_io_err(x, ino, what, err);
}

int vd_ext_write_inode(struct ext_fs *x, uint64_t ino,
		       struct ext2_inode_large *in)
{
	errcode_t err = ext2fs_write_inode_full(x->fs, (ext2_ino_t)ino,
						EXT2_INODE(in), sizeof(*in));

	return err ? vd_ext_werr(x, ino, "inode write", err) : 0;
}

int vd_ext_begin(struct ext_fs *x)
{
	errcode_t err;

	if (x->werr || x->dirtied)
		return x->werr;
	if (x->recover) {
		x->werr = vd_ext_recover_home(x);
		if (x->werr)
			return x->werr;
	}
	x->werr = vd_ext_open_rw(x);
	if (x->werr)
		return x->werr;
	if (x->recover) {
		vd_ext_recover_super(x);
		x->recover = false;
	}
	/* As the kernel's read-write mount: "not clean" until the
	 * unmount, so that e2fsck checks the filesystem after a crash. */
	x->fs->super->s_state &= (__u16)~EXT2_VALID_FS;
	ext2fs_mark_super_dirty(x->fs);
	err = ext2fs_flush(x->fs);
	if (err) {
		x->fs->super->s_state |= EXT2_VALID_FS;
		x->werr = vd_ext_werr(x, 0, "superblock write", err);
		if (x->werr == -EROFS)
			vd_log(VD_LOG_ERR, "%s: ext: the volume cannot be "
			       "written; its files stay read-only", x->name);
		return x->werr;
	}
	x->dirtied = true;
	return 0;
}

int vd_ext_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n)
		return -ENOENT;
	if (n > EXT_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

bool vd_ext_is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

static int ext_ftype(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EXT2_FT_REG_FILE;
	case S_IFDIR:
		return EXT2_FT_DIR;
	case S_IFCHR:
		return EXT2_FT_CHRDEV;
	case S_IFBLK:
		return EXT2_FT_BLKDEV;
	case S_IFIFO:
		return EXT2_FT_FIFO;
	case S_IFSOCK:
		return EXT2_FT_SOCK;
	case S_IFLNK:
		return EXT2_FT_SYMLINK;
	}
	return EXT2_FT_UNKNOWN;
}

static uint32_t ext_gid(const struct ext2_inode_large *in)
{
	return in->i_gid | (uint32_t)in->osd2.linux2.l_i_gid_high << 16;
}

static void ext_set_owner(struct ext2_inode_large *in, uint32_t uid,
			  uint32_t gid)
{
	in->i_uid = (__u16)uid;
	in->osd2.linux2.l_i_uid_high = (__u16)(uid >> 16);
	in->i_gid = (__u16)gid;
	in->osd2.linux2.l_i_gid_high = (__u16)(gid >> 16);
}

/* Read directory dir for a change (lock held): -ENOTDIR, -ENOENT when it
 * was removed, -ENOKEY when encrypted (its names are ciphertext). */
int vd_ext_dir_for_change(struct ext_fs *x, uint64_t dir,
			      struct ext2_inode_large *din)
{
	int ret = vd_ext_read_inode(x, dir, din);

	if (ret)
		return ret;
	if (!LINUX_S_ISDIR(din->i_mode))
		return -ENOTDIR;
	if (!din->i_links_count)
		return -ENOENT;
	if (din->i_flags & EXT4_ENCRYPT_FL)
		return -ENOKEY;
	return 0;
}

/* Everything before a new entry name in dir (lock held): the name, the
 * directory, no entry of that name, and the first change allowed. */
static int ext_new_entry(struct ext_fs *x, uint64_t dir, const char *name,
			 struct ext2_inode_large *din)
{
	uint64_t got;
	int ret = vd_ext_name_ok(name);

	if (ret)
		return ret;
	if (vd_ext_is_dot(name))
		return -EEXIST;
	ret = vd_ext_dir_for_change(x, dir, din);
	if (ret)
		return ret;
	ret = vd_ext_lookup_locked(x, dir, name, &got);
	if (!ret)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	return vd_ext_begin(x);
}

/* Add the entry name -> ino (of type mode) to dir, growing the
 * directory when it is full. */
int vd_ext_add_entry(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t ino, mode_t mode)
{
	errcode_t err;

	err = ext2fs_link(x->fs, (ext2_ino_t)dir, name, (ext2_ino_t)ino,
			  ext_ftype(mode));
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(x->fs, (ext2_ino_t)dir);
		if (!err)
			err = ext2fs_link(x->fs, (ext2_ino_t)dir, name,
					  (ext2_ino_t)ino, ext_ftype(mode));
	}
	vd_ext_dcache_drop(x, dir);
	return err ? vd_ext_werr(x, dir, "directory entry", err) : 0;
}

int vd_ext_del_entry(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t ino)
{
	errcode_t err = ext2fs_unlink(x->fs, (ext2_ino_t)dir, name,
				      (ext2_ino_t)ino, 0);

	vd_ext_dcache_drop(x, dir);
	return err ? vd_ext_werr(x, dir, "directory entry removal", err) : 0;
}

struct ext_setent {
	ext2_filsys fs;
	const char *name;
	size_t len;
	ext2_ino_t ino;
	int ft;
	bool done;
};

static int ext_setent_proc(ext2_ino_t dir, int entry,
			   struct ext2_dir_entry *d, int offset, int blocksize,
			   char *buf, void *priv)
{
	struct ext_setent *s = priv;

	(void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
	if (!d->inode || (size_t)ext2fs_dirent_name_len(d) != s->len ||
	    memcmp(d->name, s->name, s->len))
		return 0;
	d->inode = s->ino;
	if (ext2fs_has_feature_filetype(s->fs->super))
		ext2fs_dirent_set_file_type(d, s->ft);
	s->done = true;
	return DIRENT_CHANGED | DIRENT_ABORT;
}

/* Point dir's existing entry name (".." too) at ino, of type mode. */
int vd_ext_set_entry(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t ino, mode_t mode)
{
	struct ext_setent s = { x->fs, name, strlen(name), (ext2_ino_t)ino,
				ext_ftype(mode), false };
	errcode_t err;

	err = ext2fs_dir_iterate2(x->fs, (ext2_ino_t)dir, 0, NULL,
				  ext_setent_proc, &s);
	vd_ext_dcache_drop(x, dir);
	if (!err && !s.done)
		err = EXT2_ET_FILE_NOT_FOUND;
	return err ? vd_ext_werr(x, dir, "directory entry update", err) : 0;
}

/* dir's entries changed: mtime and ctime now, links up or down. */
int vd_ext_dir_changed(struct ext_fs *x, uint64_t dir, int links)
{
	struct ext2_inode_large in;
	struct timespec now;
	int ret = vd_ext_read_inode(x, dir, &in);

	if (ret)
		return ret;
	vd_ext_now(&now);
	VD_EXT_TIME_PUT(&in, mtime, now);
	VD_EXT_TIME_PUT(&in, ctime, now);
	if (links < 0 && in.i_links_count > 1)
		in.i_links_count--;
	else if (links > 0 && in.i_links_count < EXT_LINK_MAX)
		in.i_links_count++;
	return vd_ext_write_inode(x, dir, &in);
}

/* ---- freeing inodes, open inodes ---- */

static struct ext_open *ext_open_find(struct ext_fs *x, uint64_t ino)
{
	struct ext_open *o;

	for (o = x->opens; o; o = o->next)
		if (o->ino == ino)
			break;
	return o;
}

/* Free inode ino, whose last link is gone: its blocks, its xattr
 * block, then the inode itself. */
int vd_ext_inode_free(struct ext_fs *x, uint64_t ino)
{
	struct ext2_inode_large in;
	struct timespec now;
	errcode_t err;
	int ret = vd_ext_read_inode(x, ino, &in);

	if (ret)
		return ret;
	/* Each writes the inode and updates in. */
	err = ext2fs_free_ext_attr(x->fs, (ext2_ino_t)ino, &in);
	if (!err && ext2fs_inode_has_valid_blocks2(x->fs, EXT2_INODE(&in)))
		err = ext2fs_punch(x->fs, (ext2_ino_t)ino, EXT2_INODE(&in),
				   NULL, 0, ~0ULL);
	if (err)
		return vd_ext_werr(x, ino, "freeing blocks", err);
	vd_ext_now(&now);
	in.i_links_count = 0;
	in.i_dtime = (uint32_t)now.tv_sec;
	ret = vd_ext_write_inode(x, ino, &in);
	if (ret)
		return ret;
	ext2fs_inode_alloc_stats2(x->fs, (ext2_ino_t)ino, -1,
				  LINUX_S_ISDIR(in.i_mode));
	vd_ext_dcache_drop(x, ino);
	return 0;
}

/* One link to ino (inode in) is gone: count it, free the inode with its
 * last link unless it is open. */
int vd_ext_drop_link(struct ext_fs *x, uint64_t ino,
			 struct ext2_inode_large *in)
{
	struct ext_open *o;
	struct timespec now;
	int ret;

	vd_ext_now(&now);
	if (in->i_links_count > 1) {
		in->i_links_count--;
		VD_EXT_TIME_PUT(in, ctime, now);
		return vd_ext_write_inode(x, ino, in);
	}
	o = ext_open_find(x, ino);
	if (o) {
		in->i_links_count = 0;
		VD_EXT_TIME_PUT(in, ctime, now);
		ret = vd_ext_write_inode(x, ino, in);
		if (!ret)
			o->orphan = true;
		return ret;
	}
	return vd_ext_inode_free(x, ino);
}

int vd_ext_opened(struct ext_fs *x, uint64_t ino)
{
	struct ext_open *o = ext_open_find(x, ino);

	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		o->ino = ino;
		o->next = x->opens;
		x->opens = o;
	}
	o->count++;
	return 0;
}

void vd_ext_closed(struct ext_fs *x, uint64_t ino)
{
	struct ext_open **pp, *o;

	for (pp = &x->opens; *pp && (*pp)->ino != ino; pp = &(*pp)->next)
		;
	o = *pp;
	if (!o || --o->count)
		return;
	*pp = o->next;
	if (o->orphan)
		vd_ext_inode_free(x, ino); /* logged on failure */
	free(o);
}

void vd_ext_end(struct ext_fs *x)
{
	errcode_t err;

	while (x->opens) {
		struct ext_open *o = x->opens;

		x->opens = o->next;
		if (o->orphan)
			vd_ext_inode_free(x, o->ino);
		free(o);
	}
	if (!x->dirtied)
		return;
	x->fs->super->s_state |= EXT2_VALID_FS;
	ext2fs_mark_super_dirty(x->fs);
	err = ext2fs_flush(x->fs);
	if (err)
		vd_log(VD_LOG_ERR, "%s: ext: flush at unmount failed: %s",
		       x->name, error_message(err));
	x->dirtied = false;
}

/* ---- new inodes ---- */

/* The bytes of an inode past the first 128 that a new one uses, as
 * ext2fs_write_new_inode and the kernel give them. */
static unsigned ext_extra_isize(struct ext_fs *x)
{
	unsigned isize = EXT2_INODE_SIZE(x->fs->super);

	if (isize <= EXT2_GOOD_OLD_INODE_SIZE)
		return 0;
	return VD_MIN(isize - EXT2_GOOD_OLD_INODE_SIZE,
		      (unsigned)(sizeof(struct ext2_inode_large) -
				 EXT2_GOOD_OLD_INODE_SIZE));
}

/* A fresh inode of the given mode, owned as inode_init_owner gives it
 * for the directory din, every time now. */
static void ext_inode_init(struct ext_fs *x, struct ext2_inode_large *in,
			   const struct ext2_inode_large *din, mode_t mode,
			   const struct vd_fs_cred *c)
{
	struct timespec now;
	uint32_t gid = c->gid;

	memset(in, 0, sizeof(*in));
	if (din->i_mode & S_ISGID) {
		gid = ext_gid(din);
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	in->i_mode = (__u16)mode;
	ext_set_owner(in, c->uid, gid);
	in->i_links_count = 1;
	in->i_extra_isize = (__u16)ext_extra_isize(x);
	vd_ext_now(&now);
	VD_EXT_TIME_PUT(in, atime, now);
	VD_EXT_TIME_PUT(in, mtime, now);
	VD_EXT_TIME_PUT(in, ctime, now);
	VD_EXT_TIME_PUT(in, crtime, now);
}

/* An empty extent tree in i_block (ext4 spec, "Extent Tree": magic
 * 0xf30a, no entries, room for 4, depth 0). */
static void ext_inode_extents(struct ext_fs *x, struct ext2_inode_large *in)
{
	struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;

	if (!ext2fs_has_feature_extents(x->fs->super))
		return;
	in->i_flags |= EXT4_EXTENTS_FL;
	eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
	eh->eh_entries = 0;
	eh->eh_depth = 0;
	eh->eh_max = ext2fs_cpu_to_le16((sizeof(in->i_block) - sizeof(*eh)) /
					sizeof(struct ext3_extent));
}

/* Write the new inode ino whole (the rest of an inode larger than in
 * zeroed: a freed inode's old xattrs must not come back) and count it
 * as used. */
static int ext_inode_create(struct ext_fs *x, ext2_ino_t ino,
			    struct ext2_inode_large *in)
{
	unsigned isize = EXT2_INODE_SIZE(x->fs->super);
	uint8_t *buf = calloc(1, VD_MAX((size_t)isize, sizeof(*in)));
	errcode_t err;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, in, VD_MIN((size_t)isize, sizeof(*in)));
	err = ext2fs_write_inode_full(x->fs, ino, (struct ext2_inode *)buf,
				      (int)isize);
	free(buf);
	if (err)
		return vd_ext_werr(x, ino, "new inode", err);
	ext2fs_inode_alloc_stats2(x->fs, ino, +1, LINUX_S_ISDIR(in->i_mode));
	return 0;
}

/* A slow symlink's target: its first block, written as a file's. */
static int ext_symlink_block(struct ext_fs *x, ext2_ino_t ino,
			     const char *target, size_t len)
{
	ext2_file_t h;
	unsigned got = 0;
	errcode_t err, err2;

	err = ext2fs_file_open(x->fs, ino, EXT2_FILE_WRITE, &h);
	if (err)
		return vd_ext_werr(x, ino, "symlink", err);
	err = ext2fs_file_write(h, target, (unsigned)len, &got);
	if (!err && got != len)
		err = EXT2_ET_SHORT_WRITE;
	if (!err)
		err = ext2fs_file_set_size2(h, len);
	err2 = ext2fs_file_close(h);
	if (!err)
		err = err2;
	return err ? vd_ext_werr(x, ino, "symlink", err) : 0;
}

/* A new inode of type mode named name in dir: a regular file, device
 * node, fifo, socket, or (target) a symlink. */
static int ext_create(struct ext_fs *x, uint64_t dir, const char *name,
		      mode_t mode, dev_t rdev, const char *target,
		      const struct vd_fs_cred *c, uint64_t *ino_r)
{
	struct ext2_inode_large din, in;
	struct vd_ext_acl_new acl;
	size_t tlen = target ? strlen(target) : 0;
	ext2_ino_t ino;
	errcode_t err;
	int ret;

	ret = ext_new_entry(x, dir, name, &din);
	if (ret)
		return ret;
	/* The kernel keeps a target shorter than a block. */
	if (target && (!tlen || tlen >= x->bs))
		return tlen ? -ENAMETOOLONG : -ENOENT;
	ret = vd_ext_acl_inherit(x, dir, &mode, c->umask, &acl);
	if (ret)
		return ret;
	err = ext2fs_new_inode(x->fs, (ext2_ino_t)dir, (int)mode, NULL, &ino);
	if (err) {
		vd_ext_acl_new_free(&acl);
		return vd_ext_werr(x, dir, "new inode", err);
	}
	ext_inode_init(x, &in, &din, mode, c);
	if (S_ISCHR(mode) || S_ISBLK(mode)) {
		unsigned maj = major(rdev), min = minor(rdev);

		/* As ext4_mknod: the old 16-bit encoding in i_block[0]
		 * when it fits, else the new one in i_block[1]. */
		if (maj < 256 && min < 256)
			in.i_block[0] = ext2fs_cpu_to_le32(maj << 8 | min);
		else
			in.i_block[1] = ext2fs_cpu_to_le32(
				(min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12));
	} else if (target && tlen < sizeof(in.i_block)) {
		/* A fast symlink: the target in i_block, no extents. */
		memcpy(in.i_block, target, tlen);
		in.i_size = (uint32_t)tlen;
	} else if (S_ISREG(mode) || target) {
		ext_inode_extents(x, &in);
	}
	ret = ext_inode_create(x, ino, &in);
	if (ret) {
		vd_ext_acl_new_free(&acl);
		return ret;
	}
	if (target && tlen >= sizeof(in.i_block))
		ret = ext_symlink_block(x, ino, target, tlen);
	if (!ret)
		ret = vd_ext_acl_apply(x, ino, &acl);
	vd_ext_acl_new_free(&acl);
	if (!ret)
		ret = vd_ext_add_entry(x, dir, name, ino, mode);
	if (ret) {
		vd_ext_inode_free(x, ino);
		return ret;
	}
	ret = vd_ext_dir_changed(x, dir, 0);
	if (!ret)
		*ino_r = ino;
	return ret;
}

int vd_ext_mknod(struct vd_fs *fs, uint64_t dir, const char *name,
		 mode_t mode, dev_t rdev, const struct vd_fs_cred *c,
		 uint64_t *ino_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	int ret;

	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return -EINVAL;
	}
	pthread_mutex_lock(&x->lock);
	ret = ext_create(x, dir, name, mode, rdev, NULL, c, ino_r);
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ext_symlink(struct vd_fs *fs, uint64_t dir, const char *name,
		   const char *target, const struct vd_fs_cred *c,
		   uint64_t *ino_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = ext_create(x, dir, name, S_IFLNK | 0777, 0, target, c, ino_r);
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ext_mkdir(struct vd_fs *fs, uint64_t dir, const char *name,
		 mode_t mode, const struct vd_fs_cred *c, uint64_t *ino_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large din, in, init;
	struct vd_ext_acl_new acl = { 0 };
	mode_t m = S_IFDIR | (mode & 07777);
	uint64_t ino = 0;
	errcode_t err;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = ext_new_entry(x, dir, name, &din);
	if (ret)
		goto out;
	if (din.i_links_count >= EXT_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = vd_ext_acl_inherit(x, dir, &m, c->umask, &acl);
	if (ret)
		goto out;
	/* libext2fs makes the inode, its first block ("." and ".."), the
	 * entry, and counts the parent's new link; owner, mode and times
	 * are set here after. */
	err = ext2fs_mkdir(x->fs, (ext2_ino_t)dir, 0, name);
	if (err == EXT2_ET_DIR_NO_SPACE) {
		err = ext2fs_expand_dir(x->fs, (ext2_ino_t)dir);
		if (!err)
			err = ext2fs_mkdir(x->fs, (ext2_ino_t)dir, 0, name);
	}
	vd_ext_dcache_drop(x, dir);
	if (err) {
		ret = vd_ext_werr(x, dir, "mkdir", err);
		goto out;
	}
	ret = vd_ext_lookup_locked(x, dir, name, &ino);
	if (!ret)
		ret = vd_ext_read_inode(x, ino, &in);
	if (ret)
		goto out;
	ext_inode_init(x, &init, &din, m, c);
	in.i_mode = init.i_mode;
	in.i_uid = init.i_uid;
	in.i_gid = init.i_gid;
	in.osd2.linux2.l_i_uid_high = init.osd2.linux2.l_i_uid_high;
	in.osd2.linux2.l_i_gid_high = init.osd2.linux2.l_i_gid_high;
	in.i_atime = init.i_atime;
	in.i_mtime = init.i_mtime;
	in.i_ctime = init.i_ctime;
	if (in.i_extra_isize >= init.i_extra_isize) {
		in.i_atime_extra = init.i_atime_extra;
		in.i_mtime_extra = init.i_mtime_extra;
		in.i_ctime_extra = init.i_ctime_extra;
		in.i_crtime = init.i_crtime;
		in.i_crtime_extra = init.i_crtime_extra;
	}
	ret = vd_ext_write_inode(x, ino, &in);
	/* A failure leaves the folder without its ACLs, as a crash of the
	 * kernel between the two would. */
	if (!ret)
		ret = vd_ext_acl_apply(x, ino, &acl);
	if (!ret)
		ret = vd_ext_dir_changed(x, dir, 0);
	if (!ret)
		*ino_r = ino;
out:
	vd_ext_acl_new_free(&acl);
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* ---- links ---- */

int vd_ext_link(struct vd_fs *fs, uint64_t ino, uint64_t dir,
		const char *name)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large din, in;
	struct timespec now;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = ext_new_entry(x, dir, name, &din);
	if (!ret)
		ret = vd_ext_read_inode(x, ino, &in);
	if (ret)
		goto out;
	if (LINUX_S_ISDIR(in.i_mode)) {
		ret = -EPERM;
		goto out;
	}
	if (!in.i_links_count) {
		ret = -ENOENT; /* unlinked while open */
		goto out;
	}
	if (in.i_links_count >= EXT_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	/* The count first: a crash then leaves one too many, which e2fsck
	 * lowers, never an entry the count does not know. */
	vd_ext_now(&now);
	in.i_links_count++;
	VD_EXT_TIME_PUT(&in, ctime, now);
	ret = vd_ext_write_inode(x, ino, &in);
	if (ret)
		goto out;
	ret = vd_ext_add_entry(x, dir, name, ino, in.i_mode);
	if (ret) {
		if (!vd_ext_read_inode(x, ino, &in)) {
			in.i_links_count--;
			vd_ext_write_inode(x, ino, &in);
		}
		goto out;
	}
	ret = vd_ext_dir_changed(x, dir, 0);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* ---- attributes ---- */

int vd_ext_truncate(struct ext_fs *x, uint64_t ino, uint64_t size)
{
	ext2_file_t h;
	errcode_t err, err2;

	err = ext2fs_file_open(x->fs, (ext2_ino_t)ino, EXT2_FILE_WRITE, &h);
	if (err)
		return vd_ext_werr(x, ino, "truncate", err);
	err = ext2fs_file_set_size2(h, size);
	err2 = ext2fs_file_close(h);
	if (!err)
		err = err2;
	return err ? vd_ext_werr(x, ino, "truncate", err) : 0;
}

int vd_ext_setattr(struct vd_fs *fs, uint64_t ino,
		   const struct vd_fs_setattr *s)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	struct timespec now;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = vd_ext_read_inode(x, ino, &in);
	if (!ret)
		ret = vd_ext_begin(x);
	if (ret)
		goto out;
	vd_ext_now(&now);
	if (s->valid & VD_FS_SET_SIZE) {
		if (!LINUX_S_ISREG(in.i_mode)) {
			ret = LINUX_S_ISDIR(in.i_mode) ? -EISDIR : -EINVAL;
			goto out;
		}
		if (s->size != EXT2_I_SIZE(&in)) {
			ret = vd_ext_truncate(x, ino, s->size);
			/* As ext4_setattr: a new size is a change of
			 * the contents. */
			if (!ret)
				ret = vd_ext_read_inode(x, ino, &in);
			if (ret)
				goto out;
			VD_EXT_TIME_PUT(&in, mtime, now);
		}
	}
	if (s->valid & VD_FS_SET_MODE)
		in.i_mode = (__u16)((in.i_mode & LINUX_S_IFMT) |
				    (s->mode & 07777));
	if (s->valid & (VD_FS_SET_UID | VD_FS_SET_GID))
		ext_set_owner(&in,
			      s->valid & VD_FS_SET_UID ?
				      s->uid :
				      in.i_uid | (uint32_t)in.osd2.linux2.l_i_uid_high << 16,
			      s->valid & VD_FS_SET_GID ? s->gid : ext_gid(&in));
	if (s->valid & VD_FS_SET_ATIME_NOW)
		VD_EXT_TIME_PUT(&in, atime, now);
	else if (s->valid & VD_FS_SET_ATIME)
		VD_EXT_TIME_PUT(&in, atime, s->atime);
	if (s->valid & VD_FS_SET_MTIME_NOW)
		VD_EXT_TIME_PUT(&in, mtime, now);
	else if (s->valid & VD_FS_SET_MTIME)
		VD_EXT_TIME_PUT(&in, mtime, s->mtime);
	VD_EXT_TIME_PUT(&in, ctime, now);
	ret = vd_ext_write_inode(x, ino, &in);
	/* As ext4_setattr: the access ACL follows a new mode. */
	if (!ret && (s->valid & VD_FS_SET_MODE) && !LINUX_S_ISLNK(in.i_mode))
		ret = vd_ext_acl_chmod(x, ino, in.i_mode);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ext_sync(struct vd_fs *fs)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	errcode_t err = 0;

	pthread_mutex_lock(&x->lock);
	if (x->dirtied)
		err = ext2fs_flush(x->fs);
	pthread_mutex_unlock(&x->lock);
	return err ? vd_ext_werr(x, 0, "flush", err) : 0;
}
