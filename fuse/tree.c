/* The tree a person sees:
 *
 *   /          directory (or, when the mountpoint is a regular file, the
 *              disk itself)
 *   /disk.raw  the whole virtual disk
 *
 * Inode numbers are fixed: 1 the root, 2 disk.raw. Everything is
 * read-only and the image does not change under the mount, so entries and
 * attributes are cached for a long time and page-cache contents are kept
 * across opens. */
#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "fuse/tree.h"

#define INO_ROOT FUSE_ROOT_ID
#define INO_DISK 2
#define VD_TIMEOUT 86400.0

static struct vd_mount *mount_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool is_disk(struct vd_mount *m, fuse_ino_t ino)
{
	return ino == INO_DISK || (ino == INO_ROOT && m->root_is_disk);
}

static int fill_attr(struct vd_mount *m, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_atim = st->st_mtim = st->st_ctim = m->time;
	st->st_blksize = 4096;
	if (is_disk(m, ino)) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)vd_disk_size(m->disk);
		/* What the image occupies, never more than the disk. */
		st->st_blocks = (blkcnt_t)(VD_MIN(vd_disk_host_bytes(m->disk),
						  (uint64_t)st->st_size) + 511) / 512;
	} else if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		return -ENOENT;
	}
	return 0;
}

static void vd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vd_mount *m = mount_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (parent != INO_ROOT || m->root_is_disk) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (strcmp(name, "disk.raw")) {
		/* Negative entries may be cached too: the tree is fixed. */
		e.entry_timeout = VD_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	e.ino = INO_DISK;
	e.attr_timeout = e.entry_timeout = VD_TIMEOUT;
	fill_attr(m, INO_DISK, &e.attr);
	fuse_reply_entry(req, &e);
}

static void vd_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	(void)fi;
	ret = fill_attr(mount_of(req), ino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, VD_TIMEOUT);
}

static void vd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void)ino;
	(void)attr;
	(void)to_set;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void vd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);

	if (!is_disk(m, ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || fi->flags & O_TRUNC) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void vd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	uint64_t disk_size = vd_disk_size(m->disk);
	char *buf;
	int ret;

	(void)fi;
	if (!is_disk(m, ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (off < 0 || (uint64_t)off >= disk_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size = (size_t)VD_MIN((uint64_t)size, disk_size - (uint64_t)off);
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_disk_read(m->disk, buf, size, (uint64_t)off);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, size);
	free(buf);
}

static void vd_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	uint64_t res;
	int ret;

	(void)fi;
	if (!is_disk(m, ino)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = vd_disk_seek(m->disk, (uint64_t)off, whence == SEEK_DATA, &res);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, (off_t)res);
}

static void vd_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);

	if (ino != INO_ROOT || m->root_is_disk) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void vd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct {
		const char *name;
		fuse_ino_t ino;
		mode_t mode;
	} ents[] = {
		{ ".", INO_ROOT, S_IFDIR },
		{ "..", INO_ROOT, S_IFDIR },
		{ "disk.raw", INO_DISK, S_IFREG },
	};
	char *buf;
	size_t used = 0;

	(void)fi;
	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i >= 0 && (size_t)i < VD_ARRAY_SIZE(ents); i++) {
		struct stat st = { .st_ino = ents[i].ino,
				   .st_mode = ents[i].mode };
		size_t n = fuse_add_direntry(req, buf + used, size - used,
					     ents[i].name, &st, i + 1);

		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void vd_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vd_mount *m = mount_of(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = (vd_disk_size(m->disk) + 4095) / 4096;
	sv.f_files = m->root_is_disk ? 1 : 2;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

static void vd_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	fuse_reply_err(req, mask & W_OK ? EROFS : 0);
}

const struct fuse_lowlevel_ops vd_fuse_ops = {
	.lookup = vd_lookup,
	.getattr = vd_getattr,
	.setattr = vd_setattr,
	.open = vd_open,
	.read = vd_read,
	.lseek = vd_lseek,
	.opendir = vd_opendir,
	.readdir = vd_readdir,
	.statfs = vd_statfs,
	.access = vd_access,
};
