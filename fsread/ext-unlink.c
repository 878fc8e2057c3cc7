/* ext2/3/4 changes that remove names, in a writable mount: unlink,
 * rmdir and rename (RENAME_NOREPLACE, RENAME_EXCHANGE), on the helpers
 * of ext-write.c (which says how changes are made and ordered). An
 * entry goes before the link count it held is lowered; a renamed
 * folder's ".." and its parents' link counts follow it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "fsread/ext.h"

/* Directories walked up through ".." looking for a loop in a rename:
 * a deeper tree is refused (ELOOP) rather than walked for ever. */
#define EXT_MAX_DEPTH 65536u

/* The entry name of dir, for removal: its inode (read into in). */
static int ext_old_entry(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t *ino_r, struct ext2_inode_large *in)
{
	struct ext2_inode_large din;
	int ret = vd_ext_name_ok(name);

	if (ret)
		return ret;
	ret = vd_ext_dir_for_change(x, dir, &din);
	if (!ret)
		ret = vd_ext_lookup_locked(x, dir, name, ino_r);
	if (!ret)
		ret = vd_ext_read_inode(x, *ino_r, in);
	return ret;
}

int vd_ext_unlink(struct vd_fs *fs, uint64_t dir, const char *name)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	uint64_t ino;
	int ret;

	pthread_mutex_lock(&x->lock);
	ret = ext_old_entry(x, dir, name, &ino, &in);
	if (!ret && LINUX_S_ISDIR(in.i_mode))
		ret = vd_ext_is_dot(name) ? -EINVAL : -EISDIR;
	if (!ret)
		ret = vd_ext_begin(x);
	if (!ret)
		ret = vd_ext_del_entry(x, dir, name, ino);
	if (!ret)
		ret = vd_ext_dir_changed(x, dir, 0);
	if (!ret)
		ret = vd_ext_drop_link(x, ino, &in);
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* Directory ino (inode in) loses its entry: it must be empty; it is
 * freed and its parent loses the link its ".." made. */
static int ext_dir_empty_check(struct ext_fs *x, uint64_t ino,
			       struct ext2_inode_large *in)
{
	bool empty;
	int ret;

	if (ino == EXT2_ROOT_INO)
		return -EBUSY;
	ret = vd_ext_dir_empty(x, ino, in, &empty);
	if (ret)
		return ret;
	return empty ? 0 : -ENOTEMPTY;
}

int vd_ext_rmdir(struct vd_fs *fs, uint64_t dir, const char *name)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	struct ext2_inode_large in;
	uint64_t ino;
	int ret;

	pthread_mutex_lock(&x->lock);
	if (!strcmp(name, ".")) {
		ret = -EINVAL;
		goto out;
	}
	if (!strcmp(name, "..")) {
		ret = -ENOTEMPTY;
		goto out;
	}
	ret = ext_old_entry(x, dir, name, &ino, &in);
	if (!ret && !LINUX_S_ISDIR(in.i_mode))
		ret = -ENOTDIR;
	if (!ret)
		ret = ext_dir_empty_check(x, ino, &in);
	if (!ret)
		ret = vd_ext_begin(x);
	if (!ret)
		ret = vd_ext_del_entry(x, dir, name, ino);
	if (!ret)
		ret = vd_ext_dir_changed(x, dir, -1);
	if (!ret)
		ret = vd_ext_inode_free(x, ino);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* Whether directory anc is dir or one of its ancestors (walking up
 * through ".."): a rename may not move anc there. */
static int ext_is_ancestor(struct ext_fs *x, uint64_t anc, uint64_t dir,
			   bool *yes_r)
{
	uint64_t d = dir, up;
	int ret;

	*yes_r = false;
	/* Ends: at the root, or after EXT_MAX_DEPTH steps (a loop in a
	 * damaged tree). */
	for (unsigned i = 0; i < EXT_MAX_DEPTH; i++) {
		if (d == anc) {
			*yes_r = true;
			return 0;
		}
		if (d == EXT2_ROOT_INO)
			return 0;
		ret = vd_ext_lookup_locked(x, d, "..", &up);
		if (ret)
			return ret == -ENOENT ? -EIO : ret;
		d = up;
	}
	return -ELOOP;
}

static int ext_touch_ctime(struct ext_fs *x, uint64_t ino)
{
	struct ext2_inode_large in;
	struct timespec now;
	int ret = vd_ext_read_inode(x, ino, &in);

	if (ret)
		return ret;
	vd_ext_now(&now);
	VD_EXT_TIME_PUT(&in, ctime, now);
	return vd_ext_write_inode(x, ino, &in);
}

int vd_ext_rename(struct vd_fs *fs, uint64_t odir, const char *oname,
		  uint64_t ndir, const char *nname, unsigned flags)
{
	struct ext_fs *x = (struct ext_fs *)fs;
	bool exchange = flags & VD_FS_RENAME_EXCHANGE, sdir, ddir = false;
	bool inside;
	struct ext2_inode_large sin, din, ndin;
	uint64_t sino, dino = 0;
	int odelta = 0, ndelta = 0, ret;

	memset(&din, 0, sizeof(din));
	if (flags & ~(VD_FS_RENAME_NOREPLACE | VD_FS_RENAME_EXCHANGE) ||
	    flags == (VD_FS_RENAME_NOREPLACE | VD_FS_RENAME_EXCHANGE))
		return -EINVAL;
	ret = vd_ext_name_ok(nname);
	if (ret)
		return ret;
	if (vd_ext_is_dot(oname) || vd_ext_is_dot(nname))
		return -EBUSY;
	pthread_mutex_lock(&x->lock);
	ret = ext_old_entry(x, odir, oname, &sino, &sin);
	if (!ret)
		ret = vd_ext_dir_for_change(x, ndir, &ndin);
	if (ret)
		goto out;
	ret = vd_ext_lookup_locked(x, ndir, nname, &dino);
	if (ret == -ENOENT) {
		dino = 0;
		ret = exchange ? -ENOENT : 0;
	} else if (!ret && (flags & VD_FS_RENAME_NOREPLACE)) {
		ret = -EEXIST;
	}
	if (ret)
		goto out;
	if (dino == sino)
		goto out; /* two names of one inode: nothing to do */
	sdir = LINUX_S_ISDIR(sin.i_mode);
	if (dino) {
		ret = vd_ext_read_inode(x, dino, &din);
		if (ret)
			goto out;
		ddir = LINUX_S_ISDIR(din.i_mode);
		if (!exchange && sdir && !ddir)
			ret = -ENOTDIR;
		else if (!exchange && !sdir && ddir)
			ret = -EISDIR;
		else if (!exchange && ddir)
			ret = ext_dir_empty_check(x, dino, &din);
		if (ret)
			goto out;
	}
	/* A directory moved elsewhere may not land inside itself. */
	if (sdir && odir != ndir) {
		ret = ext_is_ancestor(x, sino, ndir, &inside);
		if (!ret && inside)
			ret = -EINVAL;
	}
	if (!ret && exchange && ddir && odir != ndir) {
		ret = ext_is_ancestor(x, dino, odir, &inside);
		if (!ret && inside)
			ret = -EINVAL;
	}
	if (ret)
		goto out;
	/* The links the directories' ".." entries give their parents. */
	if (odir != ndir) {
		if (sdir && !(exchange && ddir)) {
			odelta--;
			ndelta++;
		}
		if (exchange && ddir && !sdir) {
			odelta++;
			ndelta--;
		}
	}
	if (!exchange && ddir)
		ndelta--; /* the replaced directory's ".." goes */
	if (ndelta > 0 && ndin.i_links_count >= EXT_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = vd_ext_begin(x);
	if (ret)
		goto out;

	if (exchange) {
		ret = vd_ext_set_entry(x, odir, oname, dino, din.i_mode);
		if (!ret)
			ret = vd_ext_set_entry(x, ndir, nname, sino, sin.i_mode);
		if (!ret && odir != ndir && sdir)
			ret = vd_ext_set_entry(x, sino, "..", ndir, S_IFDIR);
		if (!ret && odir != ndir && ddir)
			ret = vd_ext_set_entry(x, dino, "..", odir, S_IFDIR);
		if (!ret)
			ret = ext_touch_ctime(x, dino);
	} else {
		if (dino)
			ret = vd_ext_set_entry(x, ndir, nname, sino, sin.i_mode);
		else
			ret = vd_ext_add_entry(x, ndir, nname, sino, sin.i_mode);
		if (!ret)
			ret = vd_ext_del_entry(x, odir, oname, sino);
		if (!ret && sdir && odir != ndir)
			ret = vd_ext_set_entry(x, sino, "..", ndir, S_IFDIR);
		if (!ret && dino) {
			/* The replaced inode loses its name. */
			if (ddir)
				ret = vd_ext_inode_free(x, dino);
			else
				ret = vd_ext_drop_link(x, dino, &din);
		}
	}
	if (!ret)
		ret = ext_touch_ctime(x, sino);
	if (!ret)
		ret = vd_ext_dir_changed(x, odir, odir == ndir ? odelta + ndelta :
							       odelta);
	if (!ret && odir != ndir)
		ret = vd_ext_dir_changed(x, ndir, ndelta);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}
