/* fsread/ — a read-only file tree on a volume (volumes/vol.h).
 *
 * A filesystem is a driver with one ops table (struct vd_fs_ops), inode
 * based: a directory entry leads to an inode number, and every other call
 * takes an inode number. Drivers read the volume only through
 * vd_vol_read (core), never a host file. Every call may come from any
 * thread at any time; a driver serialises what its library needs
 * serialised and reads file data outside any lock. */
#ifndef VD_FS_H
#define VD_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "common/log.h"
#include "core/disk.h"
#include "volumes/vol.h"

struct vd_fs_attr {
	uint64_t ino;
	mode_t mode; /* type and permission bits */
	nlink_t nlink;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	uint64_t blocks; /* 512-byte units allocated */
	dev_t rdev;
	struct timespec atime, mtime, ctime;
};

/* What a mount is told beyond the volume. */
struct vd_fs_opts {
	/* Owner of every file on filesystems that store none (vfat), as
	 * the kernel's vfat uid=/gid= options. */
	uid_t uid;
	gid_t gid;
	/* Code page of vfat short names (0: 437, the kernel's default). */
	unsigned codepage;
	/* Where the filesystem's root is shown (an absolute path, as a
	 * mount point is), put in front of absolute link targets that
	 * name the volume itself (NTFS junctions, as ntfs-3g puts its
	 * mount point); NULL or "": the root is "/". Copied at mount. */
	const char *link_root;
	/* The volume may be written (a writable mount): a driver with
	 * write ops then opens the filesystem for writing and sets
	 * struct vd_fs.writable; the others ignore it (EROFS). */
	bool writable;
};

/* What vd_fs_ops.setattr changes (VD_FS_SET_* bits in valid). */
enum {
	VD_FS_SET_MODE = 1 << 0,      /* permission bits of mode */
	VD_FS_SET_UID = 1 << 1,
	VD_FS_SET_GID = 1 << 2,
	VD_FS_SET_SIZE = 1 << 3,      /* truncate or extend */
	VD_FS_SET_ATIME = 1 << 4,     /* to atime */
	VD_FS_SET_MTIME = 1 << 5,     /* to mtime */
	VD_FS_SET_ATIME_NOW = 1 << 6, /* to the current time */
	VD_FS_SET_MTIME_NOW = 1 << 7,
};

struct vd_fs_setattr {
	unsigned valid;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime;
};

/* Who makes a new inode: its owner and group, as the kernel's
 * inode_init_owner takes them (a set-group-ID directory gives its
 * group instead), and the umask not yet applied to the mode given: a
 * driver with POSIX ACLs applies it unless the directory's default ACL
 * replaces it, as the kernel's posix_acl_create (0: the mode was
 * masked already). */
struct vd_fs_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

/* vd_fs_ops.rename flags: the values of renameat2(2). */
#define VD_FS_RENAME_NOREPLACE 1u
#define VD_FS_RENAME_EXCHANGE 2u

struct vd_fs;

/* A btrfs subvolume or snapshot, as vdtool info lists it. */
struct vd_fs_subvol {
	uint64_t id, parent, generation;
	bool readonly;
	const char *path; /* from the top level; NULL: unreachable */
};

/* What a front end reports about a mounted filesystem (vdtool info). */
struct vd_fs_info {
	char type[16];	  /* "ext2", "ext3", "ext4", "vfat", "ntfs" */
	char subtype[16]; /* "FAT12", "FAT16", "FAT32", NTFS "3.1", or "" */
	char label[64];	  /* UTF-8; "" when none */
	char uuid[40];	  /* ext: the UUID; vfat: the serial, "ABCD-1234";
			   * ntfs: the serial, 16 hex digits */
	bool needed_recovery; /* the journal was dirty at mount */
	bool replayed;	      /* ... and was replayed in memory */
	unsigned block_size;  /* bytes; 0 when not told (xfs tells) */
	uint32_t cluster_size; /* ntfs: bytes per cluster; 0: not told */
	/* btrfs: the superblock's generation, the subvolumes besides the
	 * top level (subvol(fs, i, ...) for i < nsubvols) and the default
	 * one's id; 0 and NULL elsewhere. */
	uint64_t generation;
	size_t nsubvols;
	int (*subvol)(struct vd_fs *fs, size_t i, struct vd_fs_subvol *s_r);
	uint64_t default_subvol;
};

/* Where some bytes of an open file lie (vd_fs_ops.map): len bytes of the
 * volume at vol_off, or len zero bytes that are not stored. */
struct vd_fs_piece {
	uint64_t vol_off; /* unless zero */
	uint64_t len;
	bool zero;
};

/* readdir callback: return nonzero to stop (the buffer is full). next is
 * the cookie that resumes after this entry. type is a DT_* value. */
typedef int (*vd_fs_fill)(void *arg, const char *name, uint64_t ino,
			  unsigned type, uint64_t next);

struct vd_fs;	   /* a mounted filesystem (driver-defined) */
struct vd_fs_file; /* an open regular file (driver-defined) */

struct vd_fs_ops {
	const char *name; /* "ext4", "vfat" */
	/* Nonzero when the volume holds this filesystem (cheap: reads a
	 * superblock). */
	int (*probe)(const struct vd_vol *v);
	/* The volume outlives the mount. 0, or -errno with e filled. */
	int (*mount)(const struct vd_vol *v, const struct vd_fs_opts *o,
		     struct vd_fs **fs_r, struct vd_err *e);
	void (*unmount)(struct vd_fs *fs);
	uint64_t (*root)(struct vd_fs *fs);
	/* -ENOENT when dir has no entry name. */
	int (*lookup)(struct vd_fs *fs, uint64_t dir, const char *name,
		      uint64_t *ino_r);
	int (*getattr)(struct vd_fs *fs, uint64_t ino, struct vd_fs_attr *a_r);
	/* Entries from cookie (0: the start), "." and ".." included (the
	 * namespace drops them and gives its own). A next cookie of
	 * INT64_MAX - 2 or more is taken to mean that nothing follows:
	 * cookies reach FUSE as off_t. */
	int (*readdir)(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		       vd_fs_fill fill, void *arg);
	/* Open a regular file: resolve what reads need once (the block map),
	 * so that read runs outside the filesystem's lock. */
	int (*open)(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r);
	/* Up to len bytes at off; *got < len only at end of file. 0 or
	 * -errno (-EIO for corrupt metadata, logged). Thread-safe on one
	 * handle. */
	int (*read)(struct vd_fs_file *f, void *buf, size_t len, uint64_t off,
		    size_t *got_r);
	/* lseek SEEK_DATA/SEEK_HOLE within the file; -ENXIO past the end or
	 * when no data follows. NULL: all data. */
	int (*seek)(struct vd_fs_file *f, uint64_t off, bool want_data,
		    uint64_t *off_r);
	/* Where the bytes read would give lie, so a front end can move
	 * them from the host file instead of copying (FUSE splice): up to
	 * max pieces, in order, for the *got_r bytes from off (< len at the
	 * end of the file, or when max pieces did not cover len: the rest
	 * is then read). Pieces lie inside the volume. -EOPNOTSUPP when the
	 * file's bytes are not the volume's (inline data, a journal
	 * replayed in memory): read then. NULL: always read. Thread-safe on
	 * one handle, as read. */
	int (*map)(struct vd_fs_file *f, uint64_t off, size_t len,
		   struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		   size_t *got_r);
	void (*release)(struct vd_fs_file *f);
	/* The target, NUL-terminated, truncated to size. */
	int (*readlink)(struct vd_fs *fs, uint64_t ino, char *buf,
			size_t size);
	/* As listxattr(2)/getxattr(2): size 0 asks for the length; -ERANGE
	 * when size is too small; -ENODATA when the attribute is absent. */
	int (*listxattr)(struct vd_fs *fs, uint64_t ino, char *buf,
			 size_t size, size_t *len_r);
	int (*getxattr)(struct vd_fs *fs, uint64_t ino, const char *name,
			void *buf, size_t size, size_t *len_r);
	int (*statfs)(struct vd_fs *fs, struct statvfs *st_r);
	void (*info)(struct vd_fs *fs, struct vd_fs_info *i_r);

	/* ---- writing: NULL in drivers that only read. Called only on a
	 * filesystem mounted writable (struct vd_fs.writable). Each
	 * returns 0 or -errno with the kernel's meaning: -EEXIST,
	 * -ENOENT, -ENOTDIR, -EISDIR, -ENOTEMPTY, -ENAMETOOLONG, -EMLINK,
	 * -ENOSPC when the filesystem is full, -EIO for damage (logged).
	 * New inodes' numbers come back in *ino_r. */
	/* A regular file, device node, fifo or socket (mode's type). */
	int (*mknod)(struct vd_fs *fs, uint64_t dir, const char *name,
		     mode_t mode, dev_t rdev, const struct vd_fs_cred *c,
		     uint64_t *ino_r);
	int (*mkdir)(struct vd_fs *fs, uint64_t dir, const char *name,
		     mode_t mode, const struct vd_fs_cred *c, uint64_t *ino_r);
	int (*symlink)(struct vd_fs *fs, uint64_t dir, const char *name,
		       const char *target, const struct vd_fs_cred *c,
		       uint64_t *ino_r);
	int (*link)(struct vd_fs *fs, uint64_t ino, uint64_t dir,
		    const char *name);
	int (*unlink)(struct vd_fs *fs, uint64_t dir, const char *name);
	int (*rmdir)(struct vd_fs *fs, uint64_t dir, const char *name);
	/* flags: VD_FS_RENAME_*; -EINVAL for what the driver cannot do. */
	int (*rename)(struct vd_fs *fs, uint64_t dir, const char *name,
		      uint64_t newdir, const char *newname, unsigned flags);
	int (*setattr)(struct vd_fs *fs, uint64_t ino,
		       const struct vd_fs_setattr *s);
	/* len bytes at off into an open regular file; *put_r < len only
	 * when the filesystem filled up (then 0 is returned if any byte
	 * was written, else -ENOSPC). */
	int (*write)(struct vd_fs_file *f, const void *buf, size_t len,
		     uint64_t off, size_t *put_r);
	/* fallocate(2) of an open regular file: mode 0 or
	 * FALLOC_FL_KEEP_SIZE (others: -EOPNOTSUPP). */
	int (*fallocate)(struct vd_fs_file *f, int mode, uint64_t off,
			 uint64_t len);
	/* flags: XATTR_CREATE, XATTR_REPLACE as setxattr(2). */
	int (*setxattr)(struct vd_fs *fs, uint64_t ino, const char *name,
			const void *value, size_t size, int flags);
	int (*removexattr)(struct vd_fs *fs, uint64_t ino, const char *name);
	/* Put everything written so far on the volume (the caller then
	 * flushes the disk). */
	int (*sync)(struct vd_fs *fs);
};

/* Every mounted filesystem begins with this (drivers embed it first). */
struct vd_fs {
	const struct vd_fs_ops *ops;
	const struct vd_vol *vol;
	/* Mounted for writing: the write ops may be called. */
	bool writable;
	/* listxattr names nothing on any inode, ever (vfat: its one xattr
	 * is read by name only): a front end may say "no xattr lists" once
	 * for a tree made only of such filesystems. */
	bool lists_no_xattrs;
};
struct vd_fs_file {
	struct vd_fs *fs;
};

/* The NULL-terminated table of filesystem drivers (fs.c). */
extern const struct vd_fs_ops *const vd_fs_drivers[];

/* Probe v with every driver and mount the first that recognises it.
 * -ENODEV (e untouched) when none does; another -errno with e filled when
 * one recognised it but could not mount it. */
int vd_fs_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		struct vd_fs **fs_r, struct vd_err *e);

/* 0 when every driver can honour o (say, knows its code page); else
 * -EINVAL with e filled, before anything is opened. */
int vd_fs_check_opts(const struct vd_fs_opts *o, struct vd_err *e);

#endif
