/* NTFS inodes as ntfs-3g -o ro shows them (src/ntfs-3g.c, 2022.10):
 * attributes (ntfs_fuse_getattr), directories (ntfs_fuse_filler over
 * ntfs_readdir), lookups, symlink targets (the internal reparse plugins
 * and Interix links). What is shown and why is in ntfs.c's header. */
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

/* ntfs-3g's text for a reparse point it cannot translate
 * (src/ntfs-3g.c: ntfs_bad_reparse), and the size it reports for it. */
#define NT_BAD_REPARSE "unsupported reparse tag 0x%08lx"
#define NT_BAD_REPARSE_LEN (sizeof(NT_BAD_REPARSE) + 2)

/* Interix (Services for Unix) special files: an 8-byte magic, then the
 * device numbers (le64 major, le64 minor) or a UTF-16 symlink target. */
#define NT_INTX_MAGIC_LEN 8
#define NT_INTX_DEV_LEN 24
#define NT_INTX_LNK 0x014B4E4C78746E49ULL /* "IntxLNK\1" */
#define NT_INTX_CHR 0x0052484378746E49ULL /* "IntxCHR\0" */
#define NT_INTX_BLK 0x004B4C4278746E49ULL /* "IntxBLK\0" */
#define NT_PATH_MAX 4096		    /* PATH_MAX, as ntfs-3g bounds */

/* ---- inodes and attributes ---- */

ntfs_inode *vd_ntfs_iget(struct nt_fs *x, uint64_t ino, int *err_r)
{
	ntfs_inode *ni;

	if (ino >= (1ULL << 48)) {
		*err_r = -ENOENT;
		return NULL;
	}
	errno = 0;
	ni = ntfs_inode_open(x->vol, (MFT_REF)ino);
	if (ni)
		return ni;
	*err_r = errno == ENOENT ? -ENOENT : errno == ENOMEM ? -ENOMEM : -EIO;
	if (*err_r == -EIO)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 " "
		       "unreadable: %s", x->name, ino, strerror(errno ? errno :
								 EIO));
	return NULL;
}

uint64_t vd_ntfs_root(struct vd_fs *fs)
{
	(void)fs;
	return FILE_root;
}

uint32_t vd_ntfs_reparse_tag(ntfs_inode *ni)
{
	REPARSE_POINT *r = ntfs_get_reparse_point(ni);
	uint32_t tag = 0;

	if (r) {
		tag = le32_to_cpu(r->reparse_tag);
		free(r);
	}
	return tag;
}

enum nt_rp vd_ntfs_rp_kind(uint32_t tag)
{
	uint32_t sel = tag & le32_to_cpu(IO_REPARSE_PLUGIN_SELECT);

	if (sel == le32_to_cpu(IO_REPARSE_TAG_MOUNT_POINT) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_SYMLINK) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_SYMLINK))
		return NT_RP_LINK;
	if (sel == le32_to_cpu(IO_REPARSE_TAG_AF_UNIX) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_FIFO) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_CHR) ||
	    sel == le32_to_cpu(IO_REPARSE_TAG_LX_BLK))
		return NT_RP_WSL;
	return NT_RP_OTHER;
}

/* The target of a symlink-like reparse point as ntfs-3g gives it: the
 * translation, or the "unsupported" text when there is none. *t_r is
 * malloc'ed. Under the lock. */
static int nt_rp_target(struct nt_fs *x, ntfs_inode *ni, char **t_r)
{
	uint32_t tag = vd_ntfs_reparse_tag(ni);
	char *t = NULL;

	if (vd_ntfs_rp_kind(tag) == NT_RP_LINK) {
		errno = 0;
		/* Absolute targets on this volume get the place the
		 * tree is shown in front, as ntfs-3g puts its mount point
		 * (vdmount gives it; elsewhere it is "/"). */
		t = ntfs_make_symlink(ni, x->link_root);
		if (!t && errno != EOPNOTSUPP)
			return errno == ENOMEM ? -ENOMEM : -EIO;
	}
	if (!t) {
		t = malloc(NT_BAD_REPARSE_LEN + 1);
		if (!t)
			return -ENOMEM;
		snprintf(t, NT_BAD_REPARSE_LEN + 1, NT_BAD_REPARSE,
			 (long)tag);
	}
	*t_r = t;
	return 0;
}

/* A file's unnamed $DATA read whole (at most max bytes), or NULL. */
static uint8_t *nt_read_small(ntfs_inode *ni, s64 max, s64 *len_r)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, VD_AT_UNNAMED, 0);
	uint8_t *b = NULL;

	if (!na)
		return NULL;
	if (na->data_size > 0 && na->data_size <= max) {
		b = malloc((size_t)na->data_size);
		if (b && ntfs_attr_pread(na, 0, na->data_size, b) !=
				 na->data_size) {
			free(b);
			b = NULL;
		}
		*len_r = na->data_size;
	}
	ntfs_attr_close(na);
	return b;
}

int vd_ntfs_stat(struct nt_fs *x, ntfs_inode *ni, struct vd_fs_attr *a)
{
	bool perms = true;
	ntfs_attr *na;

	memset(a, 0, sizeof(*a));
	a->nlink = le16_to_cpu(ni->mrec->link_count);
	if ((ni->flags & FILE_ATTR_REPARSE_POINT) && vd_ntfs_wof_stat(ni, a)) {
		/* WOF-compressed: a regular file (ntfs-wof.c). */
	} else if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		uint32_t tag = vd_ntfs_reparse_tag(ni);
		enum nt_rp kind = vd_ntfs_rp_kind(tag);
		int ret;

		a->blocks = ((uint64_t)ni->allocated_size + 511) >> 9;
		a->mode = S_IFLNK;
		a->size = NT_BAD_REPARSE_LEN;
		if (kind == NT_RP_LINK) {
			char *t = NULL;

			ret = nt_rp_target(x, ni, &t);
			if (ret)
				return ret;
			a->size = strlen(t);
			free(t);
		} else if (kind == NT_RP_WSL) {
			REPARSE_POINT *r = ntfs_get_reparse_point(ni);
			dev_t rdev = 0;

			if (r && !ntfs_reparse_check_wsl(ni, r)) {
				a->size = 0;
				a->blocks = 0;
				if (tag == le32_to_cpu(IO_REPARSE_TAG_AF_UNIX)) {
					a->mode = S_IFSOCK;
				} else if (tag == le32_to_cpu(
						   IO_REPARSE_TAG_LX_FIFO)) {
					a->mode = S_IFIFO;
				} else {
					a->mode = tag == le32_to_cpu(
						   IO_REPARSE_TAG_LX_CHR) ?
							  S_IFCHR : S_IFBLK;
					if (!ntfs_ea_check_wsldev(ni, &rdev))
						a->rdev = rdev;
				}
			}
			free(r);
		}
	} else if (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) {
		a->mode = S_IFDIR | 0777;
		na = ntfs_attr_open(ni, AT_INDEX_ALLOCATION, VD_NTFS_INDEX_I30,
				    4);
		if (na) {
			a->size = (uint64_t)na->data_size;
			a->blocks = (uint64_t)na->allocated_size >> 9;
			ntfs_attr_close(na);
		} else {
			a->size = (uint64_t)ni->data_size;
			a->blocks = (uint64_t)ni->allocated_size >> 9;
		}
		a->nlink = 1; /* as ntfs-3g: "make find(1) work" */
	} else {
		a->mode = S_IFREG;
		a->size = (uint64_t)ni->data_size;
		a->blocks = ((uint64_t)ni->allocated_size + 511) >> 9;
		if (ni->flags & FILE_ATTR_SYSTEM) {
			na = ntfs_attr_open(ni, AT_DATA, VD_AT_UNNAMED, 0);
			if (!na) {
				/* ntfs-3g leaves owner and mode bits unset
				 * for a system file with no data. */
				perms = false;
				goto times;
			}
			if (!(ni->flags & FILE_ATTR_HIDDEN)) {
				if (na->data_size == 0)
					a->mode = S_IFIFO;
				if (na->data_size == 1)
					a->mode = S_IFSOCK;
			}
			if (na->data_size > NT_INTX_MAGIC_LEN &&
			    na->data_size <= NT_INTX_MAGIC_LEN +
						     2 * NT_PATH_MAX) {
				s64 len = 0;
				uint8_t *b;

				ntfs_attr_close(na);
				na = NULL;
				b = nt_read_small(ni, NT_INTX_MAGIC_LEN +
							2 * NT_PATH_MAX,
						    &len);
				if (!b)
					return -EIO;
				if ((get_le64(b) == NT_INTX_BLK ||
				     get_le64(b) == NT_INTX_CHR) &&
				    len == NT_INTX_DEV_LEN) {
					a->mode = get_le64(b) == NT_INTX_BLK ?
							  S_IFBLK : S_IFCHR;
					a->rdev = makedev(
						(unsigned)get_le64(b + 8),
						(unsigned)get_le64(b + 16));
				}
				if (get_le64(b) == NT_INTX_LNK) {
					char *t = NULL;
					int n = ntfs_ucstombs(
						(ntfschar *)(b + 8),
						(int)((len - 8) / 2), &t, 0);

					if (n < 0) {
						free(b);
						return -EIO;
					}
					free(t);
					a->mode = S_IFLNK;
					a->size = (uint64_t)n;
				}
				free(b);
			}
			if (na)
				ntfs_attr_close(na);
		}
		a->mode |= 0777;
	}
	a->uid = x->uid;
	a->gid = x->gid;
	if (S_ISLNK(a->mode))
		a->mode |= 0777;
times:
	if (!perms)
		a->mode &= S_IFMT;
	a->ino = ni->mft_no;
	a->atime = ntfs2timespec(ni->last_access_time);
	a->ctime = ntfs2timespec(ni->last_mft_change_time);
	a->mtime = ntfs2timespec(ni->last_data_change_time);
	return 0;
}

int vd_ntfs_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_inode *ni;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (ni) {
		ret = vd_ntfs_stat(x, ni, a);
		ntfs_inode_close(ni);
	}
	pthread_mutex_unlock(&x->lock);
	if (ret == -EIO)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": "
		       "attributes unreadable", x->name, ino);
	return ret;
}

/* ---- directories ---- */

/* Cookies: ntfs_readdir's positions (0 ".", 1 "..", then the place of
 * an index entry) plus one, so 0 is the start; NT_END after the last. */
#define NT_END ((uint64_t)INT64_MAX)

struct nt_rd {
	struct nt_fs *x;
	vd_fs_fill fill;
	void *arg;
	/* The entry last seen is held back until the next one gives the
	 * cookie that resumes after it. */
	char *name;
	uint64_t ino;
	unsigned type;
	bool full;  /* fill said stop */
	int err;
	s64 skip;   /* entries before this position were given already */
};

static unsigned nt_dtype(struct nt_fs *x, unsigned dt, MFT_REF mref)
{
	struct vd_fs_attr a;
	ntfs_inode *ni;
	int ret;

	switch (dt) {
	case NTFS_DT_DIR:
		return DT_DIR;
	case NTFS_DT_LNK:
		return DT_LNK;
	case NTFS_DT_FIFO:
		return DT_FIFO;
	case NTFS_DT_SOCK:
		return DT_SOCK;
	case NTFS_DT_BLK:
		return DT_BLK;
	case NTFS_DT_CHR:
		return DT_CHR;
	case NTFS_DT_REPARSE:
		/* As ntfs-3g's filler: the type the reparse point is shown
		 * with. */
		ni = vd_ntfs_iget(x, MREF(mref), &ret);
		if (!ni)
			return DT_LNK;
		ret = vd_ntfs_stat(x, ni, &a);
		ntfs_inode_close(ni);
		return ret ? DT_LNK : IFTODT(a.mode);
	default:
		return DT_REG;
	}
}

/* Emit the held-back entry, resuming at next. */
static int nt_rd_flush(struct nt_rd *r, uint64_t next)
{
	int stop;

	if (!r->name)
		return 0;
	stop = r->fill(r->arg, r->name, r->ino, r->type, next);
	free(r->name);
	r->name = NULL;
	if (stop)
		r->full = true;
	return stop;
}

static int nt_rd_one(void *arg, const ntfschar *name, const int name_len,
		       const int name_type, const s64 pos, const MFT_REF mref,
		       const unsigned dt_type)
{
	struct nt_rd *r = arg;
	char *s = NULL;

	if (name_type == FILE_NAME_DOS || pos < r->skip)
		return 0;
	if (nt_rd_flush(r, (uint64_t)pos + 1))
		return 1;
	if (ntfs_ucstombs(name, name_len, &s, 0) < 0) {
		vd_log(VD_LOG_ERR, "%s: ntfs: a name in a directory (record "
		       "%llu) is not valid UTF-16", r->x->name,
		       (unsigned long long)MREF(mref));
		r->err = -EIO;
		return 1;
	}
	r->name = s;
	r->ino = MREF(mref);
	r->type = nt_dtype(r->x, dt_type, mref);
	return 0;
}

int vd_ntfs_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
			vd_fs_fill fill, void *arg)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	struct nt_rd r = { .x = x, .fill = fill, .arg = arg };
	ntfs_inode *ni;
	s64 pos;
	int ret;

	if (cookie == NT_END)
		return 0;
	if (cookie > (uint64_t)INT64_MAX)
		return -EINVAL;
	pos = cookie ? (s64)cookie - 1 : 0;
	pthread_mutex_lock(&x->lock);
	/* libntfs-3g 2022.10's ntfs_readdir misreads the index bitmap when
	 * it resumes at a block whose number is not a multiple of 8 (it
	 * tests bit 0 of that block's bitmap byte, not the block's bit): it
	 * then reads blocks that are not in use. Resume at the first block
	 * of that group of 8 and skip what was given. Positions past the
	 * index root (an MFT record's size) are index blocks' byte offsets
	 * plus the record size (dir.c: ntfs_filldir). */
	if ((u64)pos >= x->vol->mft_record_size) {
		s64 blk = (pos - x->vol->mft_record_size) >>
			  x->vol->indx_record_size_bits;

		r.skip = pos;
		pos = x->vol->mft_record_size +
		      ((blk & ~(s64)7) << x->vol->indx_record_size_bits);
	}
	ni = vd_ntfs_iget(x, dir, &ret);
	if (!ni)
		goto out;
	if (!(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) ||
	    (ni->flags & FILE_ATTR_REPARSE_POINT)) {
		ret = -ENOTDIR;
	} else if (ntfs_readdir(ni, &pos, &r, nt_rd_one) && !r.full &&
		   !r.err) {
		vd_log(VD_LOG_ERR, "%s: ntfs: directory (record %" PRIu64
		       ") unreadable: %s", x->name, dir, strerror(errno));
		ret = -EIO;
	} else {
		ret = r.err;
		if (!ret && !r.full)
			nt_rd_flush(&r, NT_END);
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	free(r.name);
	return ret;
}

int vd_ntfs_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		       uint64_t *ino_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	ntfs_inode *ni;
	u64 mref;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, dir, &ret);
	if (!ni)
		goto out;
	if (!(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) ||
	    (ni->flags & FILE_ATTR_REPARSE_POINT)) {
		ret = -ENOTDIR;
	} else {
		errno = 0;
		x->read_budget = VD_NTFS_LOOKUP_READS;
		mref = ntfs_inode_lookup_by_mbsname(ni, name);
		x->read_budget = 0;
		if (mref == (u64)-1) {
			ret = errno == ENOENT || errno == EINVAL ||
					      errno == ENAMETOOLONG ?
				      -ENOENT : -EIO;
			if (ret == -EIO)
				vd_log(VD_LOG_ERR, "%s: ntfs: lookup in "
				       "directory (record %" PRIu64 ") failed:"
				       " %s", x->name, dir, strerror(errno));
		} else {
			*ino_r = MREF(mref);
			ret = 0;
		}
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

/* ---- symlinks ---- */

int vd_ntfs_readlink(struct vd_fs *fs, uint64_t ino, char *buf,
			 size_t size)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	char *t = NULL;
	ntfs_inode *ni;
	int ret;

	if (!size)
		return -EINVAL;
	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		ret = vd_ntfs_wof_is(ni) ? -EINVAL : nt_rp_target(x, ni, &t);
	} else if (ni->flags & FILE_ATTR_SYSTEM) {
		s64 len = 0;
		uint8_t *b = nt_read_small(ni, NT_INTX_MAGIC_LEN +
						     2 * NT_PATH_MAX, &len);

		if (!b || get_le64(b) != NT_INTX_LNK ||
		    len <= NT_INTX_MAGIC_LEN)
			ret = -EINVAL;
		else if (ntfs_ucstombs((ntfschar *)(b + 8),
				       (int)((len - 8) / 2), &t, 0) < 0)
			ret = -EIO;
		else
			ret = 0;
		free(b);
	} else {
		ret = -EINVAL;
	}
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	if (!ret) {
		size_t n = VD_MIN(strlen(t), size - 1);

		memcpy(buf, t, n);
		buf[n] = '\0';
	}
	free(t);
	return ret;
}
