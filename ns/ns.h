/* ns/ — the namespace a person sees, for every front end (the FUSE
 * mount, and tools that read images without FUSE):
 *
 *   /              directory
 *   /disk.raw      the whole virtual disk
 *   /LABEL.raw     each volume's bytes: pN.raw for partition N (as
 *                  volumes/part.h numbers it), VG-LV.raw for an LVM
 *                  logical volume, ...
 *   /LABEL/        its files, when fsread recognises them
 *   /fs/           the files of a filesystem filling the whole disk
 *
 * Inode numbers are computed, never stored (ns.c says how): hard links
 * inside a guest keep one number; numbers never collide across volumes.
 * The root is 1, as FUSE wants.
 *
 * Everything is fixed once vd_ns_open returns: the volumes are found and
 * every recognised filesystem mounted then, so a front end can list the
 * root without further I/O, and a filesystem that cannot be mounted is
 * reported once, at open, and simply not shown.
 *
 * disk.raw and the volume files take the owner, group and read bits of
 * the image file (vd_ns_opts.raw_*), so that nobody reads through a
 * mount what the image file itself denies them. */
#ifndef VD_NS_H
#define VD_NS_H

#include <stdbool.h>
#include <stdint.h>

#include "fsread/fs.h"
#include "volumes/part.h"
#include "volumes/vol.h"

#define VD_NS_ROOT 1
#define VD_NS_DISK 2
#define VD_NS_VOL_SHIFT 48
#define VD_NS_VOL_WHOLE 0xffffu

struct vd_ns;
struct vd_ns_file;

struct vd_ns_opts {
	uid_t uid; /* owner of the synthetic entries, and of files on */
		   /* filesystems that store none (vfat) */
	gid_t gid;
	struct timespec time; /* their times (the image's mtime) */
	bool no_partitions;   /* show disk.raw only */
	unsigned codepage;    /* vfat short names (struct vd_fs_opts) */
	/* Owner, group and permission bits (only the read bits count) of
	 * disk.raw and the volume files: the image file's. */
	uid_t raw_uid;
	gid_t raw_gid;
	mode_t raw_mode;
	/* Passphrases for LUKS volumes (not owned), or NULL. */
	struct vd_keys *keys;
	/* Where the tree is shown (vdmount's mount point, absolute), for
	 * absolute link targets (struct vd_fs_opts link_root); NULL: a
	 * front end with no place (vdtool), "/" stands for each root. */
	const char *mountpoint;
};

/* Never fails on a bad table or filesystem (those are logged and left
 * out); only on memory. name is the image's name for messages. */
int vd_ns_open(struct vd_disk *d, const char *name,
	       const struct vd_ns_opts *o, struct vd_ns **ns_r);
void vd_ns_close(struct vd_ns *ns);

/* The volumes found in the image (volumes/vol.h), for front ends that
 * describe them. */
const struct vd_volset *vd_ns_volset(const struct vd_ns *ns);
/* The filesystem shown for volume id (NULL: none), and why a recognised
 * one is not shown (NULL: nothing to say). */
struct vd_fs *vd_ns_vol_fs(const struct vd_ns *ns, unsigned id,
			   const char **error_r);
/* The namespace number of the root of the filesystem that ino lies on,
 * or VD_NS_ROOT for the synthetic entries. */
uint64_t vd_ns_vol_root(struct vd_ns *ns, uint64_t ino);

/* The disk's own partition table. */
const struct vd_parts *vd_ns_parts(const struct vd_ns *ns);
/* Why the partition table was not read (it was logged at open), or NULL
 * when it was read or there is none. */
const char *vd_ns_parts_error(const struct vd_ns *ns);
/* Why partition num (VD_NS_VOL_WHOLE: the whole disk) holds a
 * filesystem that is not shown (logged at open), or NULL. */
const char *vd_ns_fs_error(const struct vd_ns *ns, unsigned num);
/* The filesystem shown at pN/ (num = N) or fs/ (VD_NS_VOL_WHOLE), or
 * NULL. */
struct vd_fs *vd_ns_fs(const struct vd_ns *ns, unsigned num);

int vd_ns_lookup(struct vd_ns *ns, uint64_t dir, const char *name,
		 uint64_t *ino_r);
int vd_ns_getattr(struct vd_ns *ns, uint64_t ino, struct vd_fs_attr *a_r);
/* As vd_fs_ops.readdir; inode numbers given to fill are namespace
 * numbers. */
int vd_ns_readdir(struct vd_ns *ns, uint64_t dir, uint64_t cookie,
		  vd_fs_fill fill, void *arg);
int vd_ns_readlink(struct vd_ns *ns, uint64_t ino, char *buf, size_t size);
int vd_ns_listxattr(struct vd_ns *ns, uint64_t ino, char *buf, size_t size,
		    size_t *len_r);
int vd_ns_getxattr(struct vd_ns *ns, uint64_t ino, const char *name,
		   void *buf, size_t size, size_t *len_r);
/* True when vd_ns_listxattr names nothing anywhere in the tree, ever:
 * every filesystem shown lists none (struct vd_fs.lists_no_xattrs). */
bool vd_ns_lists_no_xattrs(const struct vd_ns *ns);
int vd_ns_statfs(struct vd_ns *ns, uint64_t ino, struct statvfs *st_r);

/* Regular files: -EISDIR for a directory, -EINVAL for other types. */
int vd_ns_open_file(struct vd_ns *ns, uint64_t ino, struct vd_ns_file **f_r);
/* Up to len bytes at off; *got_r < len only at the end of the file. */
int vd_ns_read(struct vd_ns_file *f, void *buf, size_t len, uint64_t off,
	       size_t *got_r);
/* As vd_ns_read, in pieces (see vd_disk_read_vec): the host bytes of a
 * raw file or of a guest file whose filesystem can map it become FD
 * pieces, holes ZERO pieces, and what had to be read or decoded lies in
 * buf (len bytes) as MEM pieces. max_segs >= 1. */
int vd_ns_read_vec(struct vd_ns_file *f, void *buf, size_t len, uint64_t off,
		   struct vd_seg *segs, unsigned max_segs, unsigned *n_r,
		   size_t *got_r);
/* Start the host reads of the file's bytes [off, off + len) without
 * waiting (vd_disk_prefetch), for a reader that will ask for them next.
 * Best effort: nothing for what cannot be mapped. */
void vd_ns_prefetch(struct vd_ns_file *f, uint64_t off, uint64_t len);
int vd_ns_seek(struct vd_ns_file *f, uint64_t off, bool want_data,
	       uint64_t *off_r);
void vd_ns_release(struct vd_ns_file *f);
/* True for disk.raw and the volume files, false for guest files. */
bool vd_ns_file_is_raw(const struct vd_ns_file *f);

/* Writing, when the disk was opened writable: the raw files, and the
 * files of filesystems that can be written (ext2/3/4; others: -EROFS).
 * Up to len bytes at off, *put_r of them written: fewer only at the end
 * of a raw file (-ENOSPC at or past it) or when a guest filesystem
 * fills up. */
int vd_ns_write(struct vd_ns_file *f, const void *buf, size_t len,
		uint64_t off, size_t *put_r);
/* fallocate(2) of a guest file (vd_fs_ops.fallocate); raw files, and
 * filesystems without it: -EOPNOTSUPP (-EROFS when read-only). */
int vd_ns_fallocate(struct vd_ns_file *f, int mode, uint64_t off,
		    uint64_t len);
bool vd_ns_writable(const struct vd_ns *ns);
/* Make every write that returned durable: the guest filesystems'
 * changes, then the disk. */
int vd_ns_flush(struct vd_ns *ns);
/* fsync of ino: its filesystem's changes (if any), then the disk. */
int vd_ns_fsync(struct vd_ns *ns, uint64_t ino);

/* Changes to the tree of a guest filesystem mounted writable (struct
 * vd_fs.writable); -EROFS for the synthetic entries, in a read-only
 * mount and on filesystems that cannot be written. dir and ino are
 * namespace numbers; a new entry's number comes back in *ino_r. A link
 * or rename between two filesystems: -EXDEV. Otherwise as the
 * vd_fs_ops of the same names. */
bool vd_ns_can_change(struct vd_ns *ns, uint64_t ino);
int vd_ns_mknod(struct vd_ns *ns, uint64_t dir, const char *name,
		mode_t mode, dev_t rdev, const struct vd_fs_cred *c,
		uint64_t *ino_r);
int vd_ns_mkdir(struct vd_ns *ns, uint64_t dir, const char *name,
		mode_t mode, const struct vd_fs_cred *c, uint64_t *ino_r);
int vd_ns_symlink(struct vd_ns *ns, uint64_t dir, const char *name,
		  const char *target, const struct vd_fs_cred *c,
		  uint64_t *ino_r);
int vd_ns_link(struct vd_ns *ns, uint64_t ino, uint64_t dir,
	       const char *name);
int vd_ns_unlink(struct vd_ns *ns, uint64_t dir, const char *name);
int vd_ns_rmdir(struct vd_ns *ns, uint64_t dir, const char *name);
int vd_ns_rename(struct vd_ns *ns, uint64_t dir, const char *name,
		 uint64_t newdir, const char *newname, unsigned flags);
int vd_ns_setattr(struct vd_ns *ns, uint64_t ino,
		  const struct vd_fs_setattr *s);
int vd_ns_setxattr(struct vd_ns *ns, uint64_t ino, const char *name,
		   const void *value, size_t size, int flags);
int vd_ns_removexattr(struct vd_ns *ns, uint64_t ino, const char *name);

#endif
