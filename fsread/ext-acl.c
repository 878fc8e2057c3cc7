/* POSIX ACLs of new inodes and of a chmod, as the kernel's ext4 keeps
 * them (fs/posix_acl.c: posix_acl_create, posix_acl_create_masq,
 * __posix_acl_chmod; fs/ext4/acl.c: ext4_init_acl).
 *
 * A file, device node, fifo, socket or directory made in a directory
 * that has a default ACL gets:
 *   - a mode whose permission bits are the requested ones masked by the
 *     default ACL's owner, mask (else group) and other entries; the
 *     umask is not applied (the default ACL replaces it);
 *   - an access ACL: the default ACL with those three entries masked by
 *     the requested mode, unless the result says no more than the mode
 *     (only owner, group and other entries): then none;
 *   - a directory also the default ACL itself, so it passes on.
 * Without a default ACL the umask applies, as the VFS would have done
 * (FUSE hands the mode over unmasked, with the umask: FUSE_CAP_DONT_MASK).
 * Symlinks get neither.
 *
 * Values here are in the POSIX xattr format (a 4-byte header, version 2,
 * then 8-byte entries: le16 tag, le16 perm, le32 id), which libext2fs
 * turns into ext4's own when it stores them. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Tags (include/uapi/linux/posix_acl.h). */
#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP 0x08
#define ACL_MASK 0x10
#define ACL_OTHER 0x20

/* An entry's perm field (offset 2, le16). */
static void acl_set_perm(uint8_t *e, unsigned perm)
{
	e[2] = (uint8_t)perm;
	e[3] = (uint8_t)(perm >> 8);
}

#define ACL_DEFAULT_NAME "system.posix_acl_default"
#define ACL_ACCESS_NAME "system.posix_acl_access"

/* ACL name of ino as a POSIX xattr value (*v_r malloc'ed): 0, -ENODATA
 * when absent (or the volume keeps no xattrs), -EIO when malformed. */
static int acl_get(struct ext_fs *x, uint64_t ino, const char *name,
		   uint8_t **v_r, size_t *len_r)
{
	struct ext2_xattr_handle *h;
	void *raw = NULL;
	size_t rlen = 0;
	errcode_t err;
	int ret;

	*v_r = NULL;
	ret = vd_ext_xattr_open(x, ino, &h);
	if (ret)
		return ret;
	err = ext2fs_xattr_get(h, name, &raw, &rlen);
	ext2fs_xattrs_close(&h);
	if (err == EXT2_ET_EA_KEY_NOT_FOUND)
		return -ENODATA;
	if (err)
		return vd_ext_io_err(x, ino, "ACL", err);
	ret = vd_ext_acl_to_xattr(raw, rlen, v_r, len_r);
	ext2fs_free_mem(&raw);
	if (ret == -EIO)
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": bad ACL in %s",
		       x->name, ino, name);
	return ret;
}

/* Store ACL name on ino (v NULL: nothing). */
static int acl_put(struct ext_fs *x, uint64_t ino, const char *name,
		   const uint8_t *v, size_t len)
{
	struct ext2_xattr_handle *h;
	unsigned none = 0;
	errcode_t err, err2;
	int ret;

	if (!v)
		return 0;
	ret = vd_ext_xattr_open(x, ino, &h);
	if (ret)
		return ret == -ENODATA ? -EOPNOTSUPP : ret;
	/* Values converted to ext4's format now (the open asked raw). */
	err = ext2fs_xattrs_flags(h, &none, NULL);
	if (!err)
		err = ext2fs_xattr_set(h, name, v, len);
	err2 = ext2fs_xattrs_close(&h);
	if (!err)
		err = err2;
	return err ? vd_ext_werr(x, ino, "ACL", err) : 0;
}

/* posix_acl_create_masq: acl (len bytes, checked) and *mode masked by
 * each other. 1 when the ACL says more than the mode, 0 when not, -EIO
 * for an unknown tag or no group entry. */
static int acl_masq(uint8_t *acl, size_t len, mode_t *mode_p)
{
	mode_t mode = *mode_p;
	uint8_t *group_obj = NULL, *mask_obj = NULL;
	bool not_equiv = false;

	for (size_t off = 4; off < len; off += 8) {
		uint8_t *e = acl + off;
		unsigned perm = get_le16(e + 2);

		switch (get_le16(e)) {
		case ACL_USER_OBJ:
			perm &= (unsigned)(mode >> 6) | ~7u;
			mode &= (mode_t)(perm << 6) | ~(mode_t)S_IRWXU;
			break;
		case ACL_USER:
		case ACL_GROUP:
			not_equiv = true;
			break;
		case ACL_GROUP_OBJ:
			group_obj = e;
			break;
		case ACL_OTHER:
			perm &= (unsigned)mode | ~7u;
			mode &= (mode_t)perm | ~(mode_t)S_IRWXO;
			break;
		case ACL_MASK:
			mask_obj = e;
			not_equiv = true;
			break;
		default:
			return -EIO;
		}
		acl_set_perm(e, (unsigned)perm);
	}
	if (!mask_obj)
		mask_obj = group_obj;
	if (!mask_obj)
		return -EIO;
	{
		unsigned perm = get_le16(mask_obj + 2);

		perm &= (unsigned)(mode >> 3) | ~7u;
		mode &= (mode_t)(perm << 3) | ~(mode_t)S_IRWXG;
		acl_set_perm(mask_obj, (unsigned)perm);
	}
	*mode_p = (*mode_p & ~(mode_t)0777) | (mode & 0777);
	return not_equiv;
}

int vd_ext_acl_inherit(struct ext_fs *x, uint64_t dir, mode_t *mode,
		       mode_t cmask, struct vd_ext_acl_new *a)
{
	uint8_t *dflt = NULL, *clone;
	size_t len = 0;
	int ret;

	memset(a, 0, sizeof(*a));
	if (S_ISLNK(*mode))
		return 0;
	ret = acl_get(x, dir, ACL_DEFAULT_NAME, &dflt, &len);
	/* No entries reads as no ACL (posix_acl_from_xattr gives NULL). */
	if (ret == -ENODATA || (!ret && len <= 4)) {
		free(dflt);
		*mode &= ~(cmask & 0777);
		return 0;
	}
	if (ret)
		return ret;
	clone = malloc(len);
	if (!clone) {
		free(dflt);
		return -ENOMEM;
	}
	memcpy(clone, dflt, len);
	ret = acl_masq(clone, len, mode);
	if (ret < 0) {
		vd_log(VD_LOG_ERR, "%s: ext: inode %" PRIu64 ": bad default "
		       "ACL", x->name, dir);
		free(clone);
		free(dflt);
		return -EIO;
	}
	if (ret) {
		a->access = clone;
		a->alen = len;
	} else {
		free(clone);
	}
	if (S_ISDIR(*mode)) {
		a->dflt = dflt;
		a->dlen = len;
	} else {
		free(dflt);
	}
	return 0;
}

int vd_ext_acl_apply(struct ext_fs *x, uint64_t ino,
		     const struct vd_ext_acl_new *a)
{
	int ret = acl_put(x, ino, ACL_DEFAULT_NAME, a->dflt, a->dlen);

	if (!ret)
		ret = acl_put(x, ino, ACL_ACCESS_NAME, a->access, a->alen);
	return ret;
}

void vd_ext_acl_new_free(struct vd_ext_acl_new *a)
{
	free(a->access);
	free(a->dflt);
	memset(a, 0, sizeof(*a));
}

int vd_ext_acl_chmod(struct ext_fs *x, uint64_t ino, mode_t mode)
{
	uint8_t *acl = NULL, *group_obj = NULL, *mask_obj = NULL;
	size_t len = 0;
	int ret;

	ret = acl_get(x, ino, ACL_ACCESS_NAME, &acl, &len);
	if (ret == -ENODATA)
		return 0;
	if (ret)
		return ret;
	for (size_t off = 4; off < len; off += 8) {
		uint8_t *e = acl + off;

		switch (get_le16(e)) {
		case ACL_USER_OBJ:
			acl_set_perm(e, (unsigned)((mode & S_IRWXU) >> 6));
			break;
		case ACL_GROUP_OBJ:
			group_obj = e;
			break;
		case ACL_MASK:
			mask_obj = e;
			break;
		case ACL_OTHER:
			acl_set_perm(e, (unsigned)(mode & S_IRWXO));
			break;
		default:
			break;
		}
	}
	if (!mask_obj)
		mask_obj = group_obj;
	if (mask_obj) {
		acl_set_perm(mask_obj, (unsigned)((mode & S_IRWXG) >> 3));
		ret = acl_put(x, ino, ACL_ACCESS_NAME, acl, len);
	} else {
		ret = -EIO;
	}
	free(acl);
	return ret;
}
