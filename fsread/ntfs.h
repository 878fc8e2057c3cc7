/* NTFS driver internals, shared by ntfs.c (the device, the mount,
 * directories, attributes, xattrs) and ntfs-file.c (file data).
 *
 * libntfs-3g does the NTFS work. It is not thread-safe: every call into
 * one mounted volume runs under that mount's lock (struct nt_fs.lock),
 * and no library object (ntfs_inode, ntfs_attr) is kept across requests.
 * File data stored plainly (non-resident, neither compressed nor
 * encrypted) is mapped once per open file from the runlist and read
 * through core outside the lock; the rest (resident, compressed) is read
 * through the library under it. */
#ifndef VD_NTFS_H
#define VD_NTFS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/volume.h>

#include "common/lazy.h"
#include "fsread/fs.h"

/* libntfs-3g's own name constants (it tells some apart by address),
 * from the library, which is loaded on first use (common/lazy.h). */
#define VD_AT_UNNAMED                                                      \
	((ntfschar *)vd_lazy_sym(&vd_lazy_ntfs3g, "AT_UNNAMED"))
#define VD_NTFS_INDEX_I30                                                  \
	((ntfschar *)vd_lazy_sym(&vd_lazy_ntfs3g, "NTFS_INDEX_I30"))

struct nt_fs {
	struct vd_fs base;    /* first: the generic part */
	pthread_mutex_t lock; /* guards vol and every library call */
	ntfs_volume *vol;     /* guarded by lock */
	struct ntfs_device *dev;
	struct nt_dev *dev_priv; /* what dev reads: the volume */
	const char *name;     /* the volume's name, for messages */
	uid_t uid;	      /* every file's owner, as ntfs-3g without */
	gid_t gid;	      /* a user mapping shows them */
	uint32_t cluster;     /* bytes per cluster */
	uint64_t clusters;    /* clusters in the volume */
	unsigned read_budget; /* device reads left, 0: no limit (lock) */
	struct statvfs st;    /* fixed at mount */
	char *link_root;      /* vd_fs_opts.link_root, "" for "/" */
	struct vd_fs_info info;
};

extern const struct vd_fs_ops vd_fs_ntfs;

/* Device reads one lookup may make: the index B-tree's depth in index
 * blocks and a few MFT records for each level. libntfs-3g descends an
 * index without a depth limit, so a sub-node pointer back up the tree
 * would loop forever; past this many reads the lookup fails (EIO). A
 * B-tree of 4 KiB blocks that deep would index more names than any
 * volume holds. */
#define VD_NTFS_LOOKUP_READS 4096u

/* ntfs.c: open inode ino under x->lock, logging a failure. NULL with
 * *err_r = -ENOENT (no such record in use) or -EIO. */
ntfs_inode *vd_ntfs_iget(struct nt_fs *x, uint64_t ino, int *err_r);

/* ---- ntfs-inode.c: attributes, directories, symlinks ---- */

/* Whether ntfs-3g has a built-in translation for a reparse tag (its
 * internal plugins: junction_getattr and wsl_getattr), the tags compared
 * as ntfs-3g selects plugins, under IO_REPARSE_PLUGIN_SELECT. */
enum nt_rp { NT_RP_OTHER, NT_RP_LINK, NT_RP_WSL };
enum nt_rp vd_ntfs_rp_kind(uint32_t tag);
/* The reparse tag of ni (host order), or 0 when it has none readable. */
uint32_t vd_ntfs_reparse_tag(ntfs_inode *ni);
/* Attributes as ntfs_fuse_getattr gives them. Under the lock. */
int vd_ntfs_stat(struct nt_fs *x, ntfs_inode *ni, struct vd_fs_attr *a);

uint64_t vd_ntfs_root(struct vd_fs *fs);
int vd_ntfs_getattr(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a);
int vd_ntfs_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		    vd_fs_fill fill, void *arg);
int vd_ntfs_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		   uint64_t *ino_r);
int vd_ntfs_readlink(struct vd_fs *fs, uint64_t ino, char *buf, size_t size);

/* ---- ntfs-xattr.c ---- */
int vd_ntfs_listxattr(struct vd_fs *fs, uint64_t ino, char *buf, size_t size,
		      size_t *len_r);
int vd_ntfs_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
		     void *buf, size_t size, size_t *len_r);

/* ---- ntfs-wof.c: files compressed by WOF (Compact OS) ---- */
struct nt_wof;
/* Whether ni is a WOF-compressed file shown as a regular file (as
 * ntfs-3g's system-compression plugin shows it). Under the lock. */
bool vd_ntfs_wof_is(ntfs_inode *ni);
/* When it is: fill a's type, mode, size and blocks and return true. */
bool vd_ntfs_wof_stat(ntfs_inode *ni, struct vd_fs_attr *a);
/* Under the lock: 0 with *w_r NULL when ni is no such file, 0 with *w_r
 * set, or -EIO (logged) / -ENOMEM. */
int vd_ntfs_wof_open(struct nt_fs *x, ntfs_inode *ni, struct nt_wof **w_r);
uint64_t vd_ntfs_wof_size(const struct nt_wof *w);
/* len bytes at off (inside the file), taking x->lock for the stream's
 * reads only. 0, or -EIO (logged) / -ENOMEM. Thread-safe. */
int vd_ntfs_wof_read(struct nt_fs *x, struct nt_wof *w, void *buf,
		     size_t len, uint64_t off);
void vd_ntfs_wof_close(struct nt_wof *w);

/* ---- ntfs-file.c ---- */
int vd_ntfs_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r);
int vd_ntfs_read(struct vd_fs_file *f, void *buf, size_t len, uint64_t off,
		 size_t *got_r);
int vd_ntfs_seek(struct vd_fs_file *f, uint64_t off, bool want_data,
		 uint64_t *off_r);
int vd_ntfs_map(struct vd_fs_file *f, uint64_t off, size_t len,
		struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		size_t *got_r);
void vd_ntfs_release(struct vd_fs_file *f);

#endif
