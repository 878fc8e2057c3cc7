/* NTFS xattrs as ntfs-3g's default streams interface shows them:
 * named data streams as user.NAME (listed), streams named
 * "ntfs-3g.<name>" as the security., trusted. and other system. names
 * (read, not listed), and the system.ntfs_* attributes through
 * libntfs-3g's own getter (read, not listed), each under the mount's
 * lock. Streams of symlinks, devices and system files are not shown,
 * as ntfs-3g's user_xattrs_allowed decides. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/sysmacros.h>

#include "common/util.h"
#include "fsread/ntfs.h"

#include <ntfs-3g/ea.h>
#include <ntfs-3g/ntfstime.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/xattrs.h>

/* The prefix ntfs-3g gives to streams that hold xattrs of the security,
 * trusted and unmapped system namespaces (xattr_ntfs_3g). */
#define NT_XATTR_PREFIX "ntfs-3g."

/* ---- xattrs ---- */

/* ntfs-3g's user_xattrs_allowed: streams of symlinks, fifos, devices
 * and system files are not shown. Under the lock. */
static bool nt_xattrs_allowed(struct nt_fs *x, ntfs_inode *ni)
{
	struct vd_fs_attr a;
	u32 dt;

	if (!(ni->flags & (FILE_ATTR_SYSTEM | FILE_ATTR_REPARSE_POINT)) ||
	    ni->mft_no == FILE_root)
		return true;
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		uint32_t tag = vd_ntfs_reparse_tag(ni);

		/* ntfs-3g asks the plugin; without one: no xattrs. WOF
		 * files are regular files (ntfs-wof.c). */
		if (vd_ntfs_rp_kind(tag) == NT_RP_OTHER)
			return vd_ntfs_wof_is(ni);
		return !vd_ntfs_stat(x, ni, &a) &&
		       (S_ISREG(a.mode) || S_ISDIR(a.mode));
	}
	if (ni->mft_no < FILE_first_user)
		return false;
	dt = ntfs_interix_types(ni);
	return dt == NTFS_DT_REG || dt == NTFS_DT_DIR;
}

int vd_ntfs_listxattr(struct vd_fs *fs, uint64_t ino, char *buf,
			  size_t size, size_t *len_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_attr_search_ctx *ctx = NULL;
	size_t len = 0;
	ntfs_inode *ni;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	ret = 0;
	if (!nt_xattrs_allowed(x, ni))
		goto close;
	ctx = ntfs_attr_get_search_ctx(ni, NULL);
	if (!ctx) {
		ret = -ENOMEM;
		goto close;
	}
	/* Ends: the library walks the record's attributes (and its
	 * attribute list) once, and stops at the end marker. */
	errno = 0;
	while (!ntfs_attr_lookup(AT_DATA, NULL, 0, CASE_SENSITIVE, 0, NULL, 0,
				 ctx)) {
		ATTR_RECORD *ar = ctx->attr;
		char *s = NULL;
		size_t n;

		if (!ar->name_length)
			continue;
		if (ntfs_ucstombs((ntfschar *)((u8 *)ar +
					       le16_to_cpu(ar->name_offset)),
				  ar->name_length, &s, 0) < 0) {
			ret = -EIO;
			break;
		}
		n = strlen(s);
		/* Streams holding other namespaces' xattrs are not listed. */
		if (n > strlen(NT_XATTR_PREFIX) &&
		    !strncmp(s, NT_XATTR_PREFIX, strlen(NT_XATTR_PREFIX))) {
			free(s);
			continue;
		}
		if (size && len + 5 + n + 1 <= size) {
			memcpy(buf + len, "user.", 5);
			memcpy(buf + len + 5, s, n + 1);
		}
		len += 5 + n + 1;
		free(s);
		errno = 0;
	}
	if (!ret && errno && errno != ENOENT) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": "
		       "attributes unreadable: %s", x->name, ino,
		       strerror(errno));
		ret = -EIO;
	}
	ntfs_attr_put_search_ctx(ctx);
close:
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	if (ret)
		return ret;
	*len_r = len;
	return size && len > size ? -ERANGE : 0;
}

/* The directory holding ni's first long (or only) name, for
 * system.ntfs_dos_name, or NULL. Under the lock. */
static ntfs_inode *nt_parent(struct nt_fs *x, ntfs_inode *ni)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	ntfs_inode *dir = NULL;
	int ret;

	if (!ctx)
		return NULL;
	if (!ntfs_attr_lookup(AT_FILE_NAME, NULL, 0, CASE_SENSITIVE, 0, NULL,
			      0, ctx) &&
	    !ctx->attr->non_resident &&
	    le32_to_cpu(ctx->attr->value_length) >= sizeof(FILE_NAME_ATTR)) {
		FILE_NAME_ATTR *fn = (FILE_NAME_ATTR *)(
			(u8 *)ctx->attr + le16_to_cpu(ctx->attr->value_offset));

		dir = vd_ntfs_iget(x, MREF_LE(fn->parent_directory), &ret);
	}
	ntfs_attr_put_search_ctx(ctx);
	return dir;
}

int vd_ntfs_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
			 void *buf, size_t size, size_t *len_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	enum SYSTEMXATTRS sys;
	ntfschar *uname = NULL;
	ntfs_inode *ni;
	ntfs_attr *na;
	char *sname = NULL;
	int ret, ulen;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	sys = ntfs_xattr_system_type(name, x->vol);
	if (sys == XATTR_POSIX_ACC || sys == XATTR_POSIX_DEF) {
		ret = -ENODATA; /* no ACLs without a user mapping */
	} else if (sys != XATTR_UNMAPPED) {
		/* As ntfs-3g: the library's getter, with a security context
		 * that has no user mapping. */
		struct PERMISSIONS_CACHE *cache = NULL;
		struct SECURITY_CONTEXT scx;
		ntfs_inode *dir = NULL;
		char *tmp = NULL;

		memset(&scx, 0, sizeof(scx));
		scx.vol = x->vol;
		scx.pseccache = &cache;
		scx.uid = x->uid;
		scx.gid = x->gid;
		if (sys == XATTR_NTFS_DOS_NAME) {
			if (ino == FILE_root) {
				ret = -EPERM;
				goto close;
			}
			dir = nt_parent(x, ni);
			if (!dir) {
				ret = -ENODATA;
				goto close;
			}
		}
		errno = 0;
		ret = ntfs_xattr_system_getxattr(&scx, sys, ni, dir, NULL, 0);
		if (ret > 0 && size && (size_t)ret <= size) {
			tmp = malloc((size_t)ret);
			if (!tmp)
				ret = -ENOMEM;
			else
				ret = ntfs_xattr_system_getxattr(&scx, sys, ni,
								 dir, tmp,
								 (size_t)ret);
		}
		if (ret >= 0) {
			*len_r = (size_t)ret;
			if (size && (size_t)ret > size)
				ret = -ERANGE;
			else {
				if (size)
					memcpy(buf, tmp, (size_t)ret);
				ret = 0;
			}
		} else if (ret == -1) {
			ret = errno == ENODATA || errno == ENOENT ? -ENODATA :
			      errno == ERANGE ? -ERANGE :
			      errno == EOPNOTSUPP ? -EOPNOTSUPP :
			      errno == ENOMEM ? -ENOMEM : -EIO;
		}
		free(tmp);
		/* Frees the permission cache the getter may have made. */
		ntfs_destroy_security_context(&scx);
		if (dir)
			ntfs_inode_close(dir);
		goto close;
	}
	/* Streams: user.NAME is the stream NAME; security., trusted. and
	 * other system. names live in streams named "ntfs-3g.<name>". */
	if (!strncmp(name, "user.", 5) && name[5]) {
		sname = strdup(name + 5);
	} else if ((!strncmp(name, "security.", 9) && name[9]) ||
		   (!strncmp(name, "trusted.", 8) && name[8]) ||
		   (!strncmp(name, "system.", 7) && name[7])) {
		if (asprintf(&sname, "%s%s", NT_XATTR_PREFIX, name) < 0)
			sname = NULL;
	} else {
		ret = -EOPNOTSUPP;
		goto close;
	}
	if (!sname) {
		ret = -ENOMEM;
		goto close;
	}
	ret = -ENODATA;
	if (!nt_xattrs_allowed(x, ni))
		goto close;
	ulen = ntfs_mbstoucs(sname, &uname);
	if (ulen <= 0)
		goto close;
	na = ntfs_attr_open(ni, AT_DATA, uname, (u32)ulen);
	if (!na)
		goto close;
	if (na->data_size < 0 || na->data_size > (s64)(64u << 20)) {
		/* Linux caps xattr values at 64 KiB; a huge stream is
		 * refused here rather than copied. */
		ret = -E2BIG;
	} else {
		*len_r = (size_t)na->data_size;
		ret = 0;
		if (size && *len_r > size)
			ret = -ERANGE;
		else if (size && ntfs_attr_pread(na, 0, na->data_size, buf) !=
						 na->data_size) {
			vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64
			       ": stream %s unreadable", x->name, ino, sname);
			ret = -EIO;
		}
	}
	ntfs_attr_close(na);
close:
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	free(uname);
	free(sname);
	return ret;
}
