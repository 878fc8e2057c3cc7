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
#include <sys/xattr.h>

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

/* The POSIX ACL xattr format (include/uapi/linux/posix_acl_xattr.h) and
 * ext4's on-disk one (fs/ext4/acl.h). */
#define EXT_ACL_DISK_VERSION 1
#define EXT_ACL_XATTR_VERSION 2
#define EXT_ACL_UNDEFINED_ID 0xffffffffu

int vd_ext_io_err(struct ext_fs *x, uint64_t ino, const char *what,
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
	blk64_t acl;
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
		return vd_ext_io_err(x, ino, "unreadable", err);
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
	/* i_file_acl (0x68, high bits at 0x76 with 64bit): the kernel's
	 * iget refuses an inode whose xattr block lies outside the data
	 * blocks (ext4_inode_block_valid), so the whole inode, not only
	 * its xattrs, is unreadable (e2fsprogs' f_ea_checks). */
	acl = ext2fs_file_acl_block(x->fs, EXT2_INODE(in));
	if (acl && (acl <= x->fs->super->s_first_data_block ||
		    acl >= ext2fs_blocks_count(x->fs->super))) {
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": xattr block "
		       "%llu lies outside the filesystem (%llu blocks)",
		       x->name, ino, (unsigned long long)acl,
		       (unsigned long long)ext2fs_blocks_count(x->fs->super));
		return -EIO;
	}
	return 0;
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
		a->blocks += (vd_ext_isize(x, &in) + 511) >> 9;
	a->ino = ino;
	a->mode = in.i_mode;
	a->nlink = in.i_links_count;
	a->uid = in.i_uid | (uint32_t)in.osd2.linux2.l_i_uid_high << 16;
	a->gid = in.i_gid | (uint32_t)in.osd2.linux2.l_i_gid_high << 16;
	a->size = vd_ext_isize(x, &in);
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
		return vd_ext_isize(x, in) < sizeof(in->i_block);
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
	len = vd_ext_isize(x, &in);
	if (!LINUX_S_ISLNK(in.i_mode)) {
		ret = -EINVAL;
	} else if (in.i_flags & EXT4_ENCRYPT_FL) {
		vd_log(VD_LOG_ERR, "%s: ext: symlink inode %" PRIu64 " is "
		       "encrypted (fscrypt); its target cannot be read",
		       x->name, ino);
		ret = -ENOKEY;
	} else if (len == 0 || len > 65535 ||
		   (len >= x->bs && (in.i_flags & EXT4_INLINE_DATA_FL))) {
		/* The kernel keeps a target shorter than a block. */
		ret = vd_ext_io_err(x, ino, "symlink length",
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
			ret = vd_ext_io_err(x, ino, "inline symlink", err);
	} else if (ext_fast_symlink(x, &in)) {
		/* The target is in i_block; the kernel refuses one whose
		 * length disagrees with i_size. */
		if (len >= sizeof(in.i_block) ||
		    strnlen((const char *)in.i_block, len + 1) != len) {
			ret = vd_ext_io_err(x, ino, "fast symlink length",
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
		 * extent-mapped one shorter than 60 bytes is also here.
		 * One that claims a block or more reads as the kernel's
		 * ext4_get_link cuts it: the block's first bs - 1 bytes, up
		 * to a NUL (e2fsprogs' f_invalid_extent_symlink). */
		struct ext_win *w = NULL;
		size_t i;

		if (len >= x->bs)
			len = x->bs - 1;

		t = malloc(x->bs);
		if (!t)
			ret = -ENOMEM;
		else
			ret = vd_ext_map(x, ino, &in, 1, 0, &w);
		if (!ret) {
			i = vd_ext_win_find(w, 0);
			if (i == w->n || w->ex[i].lblk || w->ex[i].uninit)
				ret = vd_ext_io_err(x, ino, "symlink block",
						 EXT2_ET_INODE_CORRUPTED);
			else if (vd_ext_io_read(x->io, t, x->bs,
						w->ex[i].pblk * x->bs))
				ret = vd_ext_io_err(x, ino, "symlink block", EIO);
		}
		free(w);
	}
out:
	pthread_mutex_unlock(&x->lock);
	if (!ret) {
		size_t n = strnlen(t, (size_t)VD_MIN(len, size - 1));

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

int vd_ext_xattr_open(struct ext_fs *x, uint64_t ino,
		      struct ext2_xattr_handle **h_r)
{
	struct ext2_inode_large in;
	unsigned raw = XATTR_HANDLE_FLAG_RAW;
	errcode_t err;
	int ret = vd_ext_read_inode(x, ino, &in);

	if (ret)
		return ret;
	/* The kernel reads an inode's xattrs whether or not the volume
	 * has the ext_attr feature (e2fsprogs' f_clear_xattr); libext2fs
	 * refuses without it (EXT2_ET_MISSING_EA_FEATURE), so the flag is
	 * lent to the in-memory superblock for the call, under the lock,
	 * and taken back at once: it never reaches the volume. */
	if (!ext2fs_has_feature_xattr(x->fs->super)) {
		ext2fs_set_feature_xattr(x->fs->super);
		err = ext2fs_xattrs_open(x->fs, (ext2_ino_t)ino, h_r);
		ext2fs_clear_feature_xattr(x->fs->super);
	} else {
		err = ext2fs_xattrs_open(x->fs, (ext2_ino_t)ino, h_r);
	}
	if (err)
		return vd_ext_io_err(x, ino, "xattrs", err);
	/* Raw values: libext2fs's ACL conversion trusts the value's
	 * length; vd_ext_acl_to_xattr checks it. */
	err = ext2fs_xattrs_flags(*h_r, &raw, NULL);
	if (!err)
		err = ext2fs_xattrs_read(*h_r);
	if (err) {
		ext2fs_xattrs_close(h_r);
		return vd_ext_io_err(x, ino, "xattrs", err);
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
	ret = vd_ext_xattr_open(x, ino, &h);
	if (!ret) {
		err = ext2fs_xattrs_iterate(h, ext_xattr_list_one, &l);
		if (err)
			ret = vd_ext_io_err(x, ino, "xattrs", err);
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
int vd_ext_acl_to_xattr(const uint8_t *v, size_t len, uint8_t **out_r,
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
	ret = vd_ext_xattr_open(x, ino, &h);
	if (!ret) {
		err = ext2fs_xattr_get(h, name, &val, &len);
		if (err == EXT2_ET_EA_KEY_NOT_FOUND)
			ret = -ENODATA;
		else if (err)
			ret = vd_ext_io_err(x, ino, "xattr", err);
		ext2fs_xattrs_close(&h);
	}
	pthread_mutex_unlock(&x->lock);
	if (!ret && !strncmp(name, "system.posix_acl_", 17)) {
		ret = vd_ext_acl_to_xattr(val, len, &acl, &len);
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

/* An access ACL in the POSIX xattr format (vd_ext_acl_to_xattr's output):
 * the permission bits it gives (the mask's for the group when it has
 * one), and whether the mode says all of it (only the owner, group and
 * other entries), as the kernel's posix_acl_equiv_mode. -EINVAL when
 * malformed. */
static int ext_acl_mode(const uint8_t *v, size_t len, mode_t *perm_r,
			bool *equiv_r)
{
	unsigned user = 0, group = 0, other = 0, mask = 0;
	bool has_mask = false, named = false;

	if (len < 4 || (len - 4) % 8 || get_le32(v) != EXT_ACL_XATTR_VERSION)
		return -EINVAL;
	for (size_t off = 4; off < len; off += 8) {
		unsigned perm = get_le16(v + off + 2) & 7;

		switch (get_le16(v + off)) {
		case 0x01:
			user = perm;
			break;
		case 0x04:
			group = perm;
			break;
		case 0x10:
			mask = perm;
			has_mask = true;
			break;
		case 0x20:
			other = perm;
			break;
		case 0x02:
		case 0x08:
			named = true;
			break;
		default:
			return -EINVAL;
		}
	}
	*perm_r = (mode_t)(user << 6 | (has_mask ? mask : group) << 3 | other);
	*equiv_r = !has_mask && !named;
	return 0;
}

/* Caller holds x->lock. Close h after a change to ino's xattrs (ret:
 * how the change went) and, if it went well, stamp the inode's ctime;
 * with acl, perm replaces its permission bits. */
static int ext_xattr_done(struct ext_fs *x, uint64_t ino,
			  struct ext2_xattr_handle **h, int ret, bool acl,
			  mode_t perm)
{
	struct ext2_inode_large in;
	struct timespec now;
	errcode_t err = ext2fs_xattrs_close(h);

	if (!ret && err)
		ret = vd_ext_werr(x, ino, "xattr", err);
	if (!ret)
		ret = vd_ext_read_inode(x, ino, &in);
	if (!ret) {
		vd_ext_now(&now);
		VD_EXT_TIME_PUT(&in, ctime, now);
		if (acl)
			in.i_mode = (__u16)((in.i_mode & ~0777) | perm);
		ret = vd_ext_write_inode(x, ino, &in);
	}
	return ret;
}

/* Changes, in a writable mount. Values go to libext2fs as given (ACLs
 * in the POSIX xattr format, which it turns into ext4's own); only the
 * namespaces the kernel lets a user set. An access ACL sets the mode's
 * permission bits, and one the mode says all of is not stored, as the
 * kernel's ext4_set_acl does (FUSE hands ACLs to us as xattrs). */
static int ext_setxattr(struct vd_fs *fs, uint64_t ino, const char *name,
			const void *value, size_t size, int flags)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_xattr_handle *h;
	void *old = NULL;
	size_t old_len = 0;
	bool acl = !strcmp(name, "system.posix_acl_access"), equiv = false;
	mode_t perm = 0;
	errcode_t err;
	int ret;

	if (!ext_xattr_visible(name))
		return -EOPNOTSUPP;
	if (strlen(name) > 255)
		return -ERANGE;
	if (size > 65536)
		return -E2BIG;
	if (acl) {
		ret = ext_acl_mode(value, size, &perm, &equiv);
		if (ret)
			return ret;
	}
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_begin(x);
	if (!ret)
		ret = vd_ext_xattr_open(x, ino, &h);
	if (ret)
		goto out;
	err = ext2fs_xattr_get(h, name, &old, &old_len);
	ext2fs_free_mem(&old);
	if (err && err != EXT2_ET_EA_KEY_NOT_FOUND)
		ret = vd_ext_werr(x, ino, "xattr", err);
	else if (!err && (flags & XATTR_CREATE))
		ret = -EEXIST;
	else if (err && (flags & XATTR_REPLACE))
		ret = -ENODATA;
	if (!ret) {
		/* Values are converted now: the raw flag was for reads. */
		unsigned none = 0;

		err = ext2fs_xattrs_flags(h, &none, NULL);
		if (!err && equiv && old_len)
			err = ext2fs_xattr_remove(h, name);
		else if (!err && !equiv)
			err = ext2fs_xattr_set(h, name, value, size);
		if (err)
			ret = vd_ext_werr(x, ino, "xattr", err);
	}
	ret = ext_xattr_done(x, ino, &h, ret, acl, perm);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

static int ext_removexattr(struct vd_fs *fs, uint64_t ino, const char *name)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_xattr_handle *h;
	void *old = NULL;
	size_t old_len = 0;
	errcode_t err;
	int ret;

	if (!ext_xattr_visible(name))
		return -ENODATA;
	pthread_mutex_lock(&x->lock);
	ret = vd_ext_begin(x);
	if (!ret)
		ret = vd_ext_xattr_open(x, ino, &h);
	if (ret)
		goto out;
	err = ext2fs_xattr_get(h, name, &old, &old_len);
	ext2fs_free_mem(&old);
	if (!err)
		err = ext2fs_xattr_remove(h, name);
	if (err)
		ret = vd_ext_werr(x, ino, "xattr", err);
	ret = ext_xattr_done(x, ino, &h, ret, false, 0);
out:
	pthread_mutex_unlock(&x->lock);
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
			o += vd_ext_isize(x, &j) / x->bs;
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
	st->f_flag = x->base.writable ? 0 : ST_RDONLY;
	st->f_namemax = EXT_NAME_MAX;
}

static int ext_statfs(struct vd_fs *fs, struct statvfs *st_r)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	uint64_t free_c, resv, ratio;

	*st_r = x->st;
	if (!x->base.writable)
		return 0;
	/* The free counts as they are now (libext2fs keeps the
	 * superblock's up to date); the reserve as at mount. */
	pthread_mutex_lock(&x->lock);
	ratio = EXT2FS_CLUSTER_RATIO(x->fs);
	free_c = ext2fs_free_blocks_count(x->fs->super) / ratio * ratio;
	st_r->f_ffree = st_r->f_favail = x->fs->super->s_free_inodes_count;
	pthread_mutex_unlock(&x->lock);
	resv = x->st.f_bfree - x->st.f_bavail;
	st_r->f_bfree = free_c;
	st_r->f_bavail = free_c > resv ? free_c - resv : 0;
	return 0;
}

/* The name blkid gives: ext4 for any ext4-only feature, ext3 for a
 * journal, else ext2. */
static void ext_info(struct vd_fs *fs, struct vd_fs_info *i)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_super_block *sb = x->fs->super;
	const uint8_t *u = sb->s_uuid;
	const char *type = "ext2";
	size_t n;

	memset(i, 0, sizeof(*i));
	if ((sb->s_feature_incompat & ~(EXT3_FEATURE_INCOMPAT_RECOVER |
					EXT2_FEATURE_INCOMPAT_FILETYPE |
					EXT3_FEATURE_INCOMPAT_JOURNAL_DEV)) ||
	    (sb->s_feature_ro_compat & ~(EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
					 EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
					 0x0004 /* btree_dir */)))
		type = "ext4";
	else if (ext2fs_has_feature_journal(sb))
		type = "ext3";
	snprintf(i->type, sizeof(i->type), "%s", type);
	n = strnlen((const char *)sb->s_volume_name,
		    sizeof(sb->s_volume_name));
	memcpy(i->label, sb->s_volume_name, n);
	vd_uuid_str(u, false, i->uuid);
	i->needed_recovery = x->needed_recovery;
	i->replayed = x->replay != NULL;
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
	vd_ext_dcache_clear(x);
	if (x->fs && x->base.writable)
		vd_ext_end(x);
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

/* Inodes libext2fs keeps in memory (its default is 4). A readdirplus
 * reply reads ~180, and ls -l then asks each of them for its ACL and
 * its security label, cp -a for its xattrs: with 4 kept, each of those
 * read the inode's block again through core (a pread and an fstat;
 * counted with strace over ls -l of 100,000 entries: 203,000 preads,
 * 103,000 with 256 kept). 256 inodes of 256 bytes: 64 KiB per
 * filesystem. */
#define EXT_ICACHE_INODES 256u

static void ext_icache(ext2_filsys fs)
{
	/* Made by the first inode read if not here: start ours afresh
	 * (its entries are only copies of what is on the volume). */
	if (fs->icache) {
		ext2fs_free_inode_cache(fs->icache);
		fs->icache = NULL;
	}
	(void)ext2fs_create_inode_cache(fs, EXT_ICACHE_INODES); /* else 4 */
}

static int ext_open_fs(struct ext_fs *x, const char *name, struct vd_err *e)
{
	const struct vd_vol *v = x->base.vol;
	errcode_t err;
	int ret;

	err = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS, 0, 0,
			   vd_ext_io_manager, &x->fs);
	if (!err) {
		ext_icache(x->fs);
		return 0;
	}
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

/* A writable mount: changes are allowed unless the filesystem has
 * read-only-compatible features libext2fs cannot write, or a journal
 * that needs recovery cannot be recovered as the kernel would (a scan
 * that failed, a copy failing its checksum, an area of fast commits
 * that does not validate) or holds fast commits (their replay here does
 * not keep the bitmaps); each says so once, in a mount whose other
 * files stay writable. A journal that can be recovered is written home
 * before the first change (ext-recover.c). libext2fs is reopened
 * read-write only before the first change (vd_ext_open_rw): a mount
 * that only reads does not read the bitmaps. */
static void ext_allow_writes(struct ext_fs *x, bool scanned)
{
	const struct vd_vol *v = x->base.vol;
	__u32 ro = x->fs->super->s_feature_ro_compat &
		   ~EXT2_LIB_FEATURE_RO_COMPAT_SUPP;

	if (x->needed_recovery && (!scanned || !x->jreset.kernel_ok))
		vd_log(VD_LOG_WARN, "%s: ext: the journal needs recovery and "
		       "cannot be recovered as the kernel would; its files "
		       "stay read-only", v->name);
	else if (x->needed_recovery && x->jreset.fast_commits)
		vd_log(VD_LOG_WARN, "%s: ext: the journal needs recovery of "
		       "fast commits; its files stay read-only (replay it "
		       "first: e2fsck, or a kernel mount of the disk)",
		       v->name);
	else if (ro)
		vd_log(VD_LOG_WARN, "%s: ext: read-only compatible features "
		       "0x%x cannot be written; its files stay read-only",
		       v->name, ro);
	else
		x->base.writable = true;
	x->recover = x->base.writable && x->needed_recovery;
}

int vd_ext_open_rw(struct ext_fs *x)
{
	ext2_filsys rw = NULL;
	errcode_t err;

	/* A second handle, read-write: the first stays until this one
	 * has opened, so a failure leaves the mount reading as before. */
	vd_ext_io_set_volume_writes(x->io);
	err = ext2fs_open2(x->ioname, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_RW, 0,
			   0, vd_ext_io_manager, &rw);
	if (!err)
		err = ext2fs_read_bitmaps(rw);
	if (err) {
		if (rw)
			ext2fs_close_free(&rw);
		vd_log(VD_LOG_ERR, "%s: ext: cannot open for writing: %s; its "
		       "files stay read-only", x->name, error_message(err));
		return -EROFS;
	}
	ext2fs_close_free(&x->fs);
	x->fs = rw;
	ext_icache(x->fs);
	return 0;
}

static int ext_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		     struct vd_fs **fs_r, struct vd_err *e)
{
	struct ext_fs *x = calloc(1, sizeof(*x));
	char *name;
	struct vd_err je;
	bool scanned = false;
	int ret;

	/* ext stores owners; no code pages. */
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
	name = x->ioname;
	ret = vd_ext_io_new(v, &x->io, name, sizeof(x->ioname));
	if (ret)
		goto fail;
	ret = ext_open_fs(x, name, e);
	if (ret)
		goto fail;
	if (ext2fs_has_feature_journal_needs_recovery(x->fs->super)) {
		je.msg[0] = '\0';
		ret = vd_ext_recover_scan(x->fs, v, &x->replay, &x->jreset,
					  &je);
		scanned = !ret;
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
			/* Then the fast commits, on their own handle;
			 * a failure leaves the journal's replay. */
			vd_ext_fc_replay(x->io, name, x->replay, v->name);
			ret = ext_open_fs(x, name, e);
			if (ret)
				goto fail;
		}
		x->needed_recovery = true;
		/* As the kernel's recovery leaves it (in memory only). */
		ext2fs_clear_feature_journal_needs_recovery(x->fs->super);
		ret = 0;
	}
	if (o->writable)
		ext_allow_writes(x, scanned);
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
	.lookup = vd_ext_lookup,
	.getattr = ext_getattr,
	.readdir = vd_ext_readdir,
	.open = vd_ext_open,
	.read = vd_ext_read,
	.seek = vd_ext_seek,
	.map = vd_ext_map_file,
	.release = vd_ext_release,
	.readlink = ext_readlink,
	.listxattr = ext_listxattr,
	.getxattr = ext_getxattr,
	.statfs = ext_statfs,
	.info = ext_info,
	.mknod = vd_ext_mknod,
	.mkdir = vd_ext_mkdir,
	.symlink = vd_ext_symlink,
	.link = vd_ext_link,
	.unlink = vd_ext_unlink,
	.rmdir = vd_ext_rmdir,
	.rename = vd_ext_rename,
	.setattr = vd_ext_setattr,
	.write = vd_ext_write,
	.fallocate = vd_ext_fallocate,
	.setxattr = ext_setxattr,
	.removexattr = ext_removexattr,
	.sync = vd_ext_sync,
};
