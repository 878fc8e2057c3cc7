/* ext2/3/4 driver internals, shared by ext.c (mount, directories,
 * attributes), ext-io.c (the io_manager that reads through core) and
 * ext-file.c (block maps and file data).
 *
 * Locking: libext2fs is not thread-safe, so every call into one
 * ext2_filsys runs under that mount's lock (struct ext_fs.lock). File data
 * is read outside it: an open file resolves its block map (a window of
 * extents) under the lock, then reads the volume through core with the
 * lock dropped. */
#ifndef VD_EXT_H
#define VD_EXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ext2fs/ext2fs.h>

#include "fsread/fs.h"

#include "fsread/ext-journal.h"

/* The kernel's ext4 name limit (EXT4_NAME_LEN). */
#define EXT_NAME_MAX 255

/* The deepest extent tree the kernel builds (EXT4_MAX_EXTENT_DEPTH in
 * fs/ext4/ext4_extents.h); a deeper header is corrupt. */
#define EXT_MAX_EXTENT_DEPTH 5

/* ---- ext-io.c: the io_manager and the volume it reads ---- */

/* One registered volume: what an io_channel opened by name reads. */
struct ext_io;

/* The io_manager; channels are opened by the name vd_ext_io_new gives. */
extern io_manager vd_ext_io_manager;

/* Register v; name_r (at least 32 bytes) receives the name to hand to
 * ext2fs_open2 with vd_ext_io_manager. */
int vd_ext_io_new(const struct vd_vol *v, struct ext_io **io_r,
		  char *name_r, size_t name_size);
/* Unregister; no channel may be open on io any more. */
void vd_ext_io_free(struct ext_io *io);
/* From now on every read consults r first (blocks of block_size bytes),
 * as the kernel's journal recovery would have written them. Called
 * before any channel that should see it is opened. */
void vd_ext_io_set_replay(struct ext_io *io, struct vd_ext_replay *r,
			  unsigned block_size);
/* While on, channels may be opened read-write and their writes go to
 * the overlay's memory (vd_ext_replay_put): the fast-commit replay only,
 * while the mount opens. */
void vd_ext_io_set_writable(struct ext_io *io, bool on);
/* From now on channels may be opened read-write and their writes go to
 * the volume (a writable mount), held first in a write-back cache
 * (ext-wc.c) that io_channel_flush writes: never while a replay overlay
 * is on. */
void vd_ext_io_set_volume_writes(struct ext_io *io);
/* Reads no longer consult the replay overlay (it was written home); the
 * overlay itself stays allocated until the unmount, for readers that
 * loaded it just before. */
void vd_ext_io_drop_replay(struct ext_io *io);
/* len bytes at byte off of the volume, with the journal overlay applied,
 * and the blocks the write-back cache holds. Takes no filesystem lock:
 * thread-safe in a read-only mount; in a writable one (a cache), called
 * under the filesystem's lock. 0 or -EIO. */
int vd_ext_io_read(struct ext_io *io, void *buf, size_t len, uint64_t off);

/* ---- ext-wc.c: the write-back cache of a writable mount's channel ---- */

struct ext_wc;

struct ext_wc *vd_ext_wc_new(void);
/* Frees what is held, written or not (flush first). */
void vd_ext_wc_free(struct ext_wc *wc);
/* A write of len bytes at byte off of v, by a channel of blocks of bs
 * bytes: 0 held; 1 not taken, the caller writes it to v (the held copies
 * of the blocks it touches have taken its bytes); -errno when a flush
 * to make room failed. */
int vd_ext_wc_put(struct ext_wc *wc, const struct vd_vol *v, unsigned bs,
		  const void *buf, uint64_t len, uint64_t off);
/* Write everything held to v, neighbouring blocks together; on failure
 * everything stays held. 0 or -errno. */
int vd_ext_wc_flush(struct ext_wc *wc, const struct vd_vol *v);
/* Whether every block of [off, off + len) is held (whole blocks, at
 * most a few): then buf has them, and the volume need not be read. */
bool vd_ext_wc_read(struct ext_wc *wc, void *buf, uint64_t len, uint64_t off);
/* Lay the held blocks over buf, which holds len bytes read at off. */
void vd_ext_wc_overlay(struct ext_wc *wc, void *buf, uint64_t len,
		       uint64_t off);

/* libext2fs's errcode_t as a negative errno: -EUCLEAN for corrupt
 * metadata (bad checksums included), -ENOTSUP for unsupported features,
 * -EIO for I/O, -ENOMEM. */
int vd_ext_errno(errcode_t err);

/* ---- ext-fc.c: the fast-commit replay ---- */

/* Replay r's fast commits (if any) through a read-write libext2fs
 * handle opened by io_name over io, into r's memory. 0, or -EUCLEAN
 * after a warning naming vol_name: then r holds the journal's replay
 * only. */
int vd_ext_fc_replay(struct ext_io *io, const char *io_name,
		     struct vd_ext_replay *r, const char *vol_name);

/* ---- ext.c: the mount ---- */

extern const struct vd_fs_ops vd_fs_ext;

struct ext_dcache;
struct ext_open;

struct ext_fs {
	struct vd_fs base;     /* first: the generic part */
	pthread_mutex_t lock;  /* guards fs, the channel and dcache */
	ext2_filsys fs;	       /* guarded by lock */
	struct ext_io *io;
	struct vd_ext_replay *replay; /* or NULL; thread-safe */
	const char *name;      /* the volume's name, for messages */
	unsigned bs;	       /* block size in bytes */
	uint64_t blocks;       /* blocks in the filesystem */
	struct ext_dcache *dcache; /* lookup tables of big dirs (lock) */
	size_t dcache_bytes;	   /* their memory (lock) */
	struct statvfs st;	   /* fixed at mount */
	bool needed_recovery;	   /* the journal was dirty at mount */
	/* Writable mounts whose journal needed recovery: what recovery
	 * leaves in the journal, and whether the replay (x->replay, or
	 * nothing) is still to be written home before the first change
	 * (guarded by lock). */
	struct vd_ext_jreset jreset;
	bool recover;
	/* Writable mounts (base.writable): the inodes open through
	 * vd_ext_open with their counts, and those whose last link went
	 * while open (freed at the last release); whether the superblock
	 * was marked "not clean" by the first change (set clean again at
	 * unmount), and the error that stopped writing, if any. All
	 * guarded by lock. */
	struct ext_open *opens;
	bool dirtied;
	int werr;
	char ioname[32]; /* the io_manager's name of the volume */
};

/* Read inode ino whole (its extra fields included) into a zeroed large
 * inode, with its checksum checked; under x->lock. 0 or -EIO (logged:
 * a bad number or a damaged inode). */
int vd_ext_read_inode(struct ext_fs *x, uint64_t ino,
		      struct ext2_inode_large *in_r);

/* ---- ext-file.c: block maps and file data ---- */

/* A run of a file's logical blocks stored contiguously. */
struct ext_extent {
	uint64_t lblk;
	uint64_t pblk;
	uint32_t len;
	bool uninit; /* allocated but unwritten: reads as zeros */
};

/* A window of a file's map: every mapped block in [start, end) is in ex
 * (sorted, not overlapping); the rest of [start, end) is a hole. end is
 * UINT64_MAX when nothing is mapped past the last extent. Immutable once
 * built; shared by reference count. */
struct ext_win {
	unsigned refs; /* guarded by the owning file's lock */
	uint64_t start, end;
	size_t n;
	struct ext_extent ex[];
};

/* Map the blocks of inode ino from lblk on (at most a bounded number of
 * extents) into a new window with refs = 1; under x->lock. Blocks at or
 * past nblocks (the file's size in blocks) are left out. 0, or -EIO
 * (logged) for a corrupt map. */
int vd_ext_map(struct ext_fs *x, uint64_t ino, struct ext2_inode_large *in,
	       uint64_t nblocks, uint64_t lblk, struct ext_win **w_r);
/* The index of the first extent in w that ends after lblk (w->n if
 * none). */
size_t vd_ext_win_find(const struct ext_win *w, uint64_t lblk);

int vd_ext_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r);
int vd_ext_read(struct vd_fs_file *f, void *buf, size_t len, uint64_t off,
		size_t *got_r);
int vd_ext_seek(struct vd_fs_file *f, uint64_t off, bool want_data,
		uint64_t *off_r);
int vd_ext_map_file(struct vd_fs_file *f, uint64_t off, size_t len,
		    struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		    size_t *got_r);
void vd_ext_release(struct vd_fs_file *f);
int vd_ext_write(struct vd_fs_file *f, const void *buf, size_t len,
		 uint64_t off, size_t *put_r);
int vd_ext_fallocate(struct vd_fs_file *f, int mode, uint64_t off,
		     uint64_t len);
/* Set the size of regular file ino (lock held, vd_ext_begin done). */
int vd_ext_truncate(struct ext_fs *x, uint64_t ino, uint64_t size);

/* ---- ext.c ---- */

/* An inode's size as the kernel's ext4_isize reads it: i_size_high
 * counts only for regular files, or on a volume with large_dir (it
 * was i_dir_acl once; e2fsprogs' f_recnect_bad). */
static inline uint64_t vd_ext_isize(const struct ext_fs *x,
				    const struct ext2_inode_large *in)
{
	if (LINUX_S_ISREG(in->i_mode) || ext2fs_has_feature_largedir(x->fs->super))
		return EXT2_I_SIZE(in);
	return in->i_size;
}

/* Log a libext2fs error on inode ino and return -EIO (or -ENOMEM). */
int vd_ext_io_err(struct ext_fs *x, uint64_t ino, const char *what,
		  errcode_t err);

/* ---- ext-recover.c: a journal's recovery written home ---- */

/* Before the first change of a mount that needed recovery (lock held,
 * x->recover set, libext2fs still read-only): the replayed blocks
 * written to the volume, flushed, then the journal emptied as jbd2
 * recovery leaves it, flushed; the overlay is dropped. 0 or -errno
 * (logged). */
int vd_ext_recover_home(struct ext_fs *x);
/* Then, on the read-write handle: the superblock as the kernel's
 * recovery leaves it (needs_recovery clear, the free counts summed
 * from the group descriptors). Written by the caller's flush. */
void vd_ext_recover_super(struct ext_fs *x);

/* ---- ext.c: xattrs, and ext-acl.c: ACLs of new inodes ---- */

/* ino's xattrs opened and read, raw (ACLs in ext4's disk format); lock
 * held. 0, -ENODATA when the volume has no xattrs, or -EIO (logged). */
int vd_ext_xattr_open(struct ext_fs *x, uint64_t ino,
		      struct ext2_xattr_handle **h_r);
/* An ext4 disk ACL as the POSIX xattr value the kernel returns
 * (*out_r malloc'ed); -EIO when malformed. */
int vd_ext_acl_to_xattr(const uint8_t *v, size_t len, uint8_t **out_r,
			size_t *len_r);

/* The ACLs a new inode gets from its directory (POSIX xattr values,
 * malloc'ed, or NULL). */
struct vd_ext_acl_new {
	uint8_t *access, *dflt;
	size_t alen, dlen;
};

/* Before inode *mode (type and permission bits) is made in dir (lock
 * held), as the kernel's posix_acl_create: with a default ACL on dir,
 * the mode is masked by it and a->access gets the default ACL masked by
 * the mode (unless the mode says all of it), a->dflt the default ACL
 * itself for a directory; without one, the mode loses cmask's bits
 * (the caller's umask, when not applied yet).
 * Nothing for a symlink. 0 or -errno (a bad default ACL: -EIO,
 * logged). */
int vd_ext_acl_inherit(struct ext_fs *x, uint64_t dir, mode_t *mode,
		       mode_t cmask, struct vd_ext_acl_new *a);
/* Store a's ACLs on the new inode ino (written already); lock held. */
int vd_ext_acl_apply(struct ext_fs *x, uint64_t ino,
		     const struct vd_ext_acl_new *a);
void vd_ext_acl_new_free(struct vd_ext_acl_new *a);
/* After a chmod of ino to mode (the inode written): its access ACL's
 * owner, group (or mask) and other entries follow the mode, as the
 * kernel's posix_acl_chmod. Lock held; 0 when it has none. */
int vd_ext_acl_chmod(struct ext_fs *x, uint64_t ino, mode_t mode);

/* ---- ext-dir.c: directories ---- */

int vd_ext_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		   vd_fs_fill fill, void *arg);
int vd_ext_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		  uint64_t *ino_r);
/* Free the lookup tables (at unmount). */
void vd_ext_dcache_clear(struct ext_fs *x);
/* As vd_ext_lookup, with x->lock held. */
int vd_ext_lookup_locked(struct ext_fs *x, uint64_t dir, const char *name,
			 uint64_t *ino_r);
/* Forget directory dir's lookup table (its entries changed); lock
 * held. */
void vd_ext_dcache_drop(struct ext_fs *x, uint64_t dir);
/* Whether directory dir (inode in) holds nothing but "." and ".."; lock
 * held. */
int vd_ext_dir_empty(struct ext_fs *x, uint64_t dir,
		     struct ext2_inode_large *in, bool *empty_r);

/* ---- ext-write.c: changes, in a writable mount ---- */

/* The kernel's EXT4_LINK_MAX. */
#define EXT_LINK_MAX 65000u

int vd_ext_mknod(struct vd_fs *fs, uint64_t dir, const char *name,
		 mode_t mode, dev_t rdev, const struct vd_fs_cred *c,
		 uint64_t *ino_r);
int vd_ext_mkdir(struct vd_fs *fs, uint64_t dir, const char *name,
		 mode_t mode, const struct vd_fs_cred *c, uint64_t *ino_r);
int vd_ext_symlink(struct vd_fs *fs, uint64_t dir, const char *name,
		   const char *target, const struct vd_fs_cred *c,
		   uint64_t *ino_r);
int vd_ext_link(struct vd_fs *fs, uint64_t ino, uint64_t dir,
		const char *name);
int vd_ext_unlink(struct vd_fs *fs, uint64_t dir, const char *name);
int vd_ext_rmdir(struct vd_fs *fs, uint64_t dir, const char *name);
int vd_ext_rename(struct vd_fs *fs, uint64_t dir, const char *name,
		  uint64_t newdir, const char *newname, unsigned flags);
int vd_ext_setattr(struct vd_fs *fs, uint64_t ino,
		   const struct vd_fs_setattr *s);
int vd_ext_sync(struct vd_fs *fs);
/* Reopen libext2fs read-write (lock held): 0, or -EROFS (logged) and
 * the read-only handle kept. */
int vd_ext_open_rw(struct ext_fs *x);
/* Before the first change: libext2fs reopened read-write
 * (vd_ext_open_rw) and the superblock marked not clean, as the
 * kernel does at a read-write mount. 0, or the error that stops every
 * change (the volume cannot be written). Lock held. */
int vd_ext_begin(struct ext_fs *x);
/* At unmount: free the orphans left, mark the superblock clean again
 * when vd_ext_begin marked it. Lock held (or no other thread). */
void vd_ext_end(struct ext_fs *x);
/* An inode was opened / released through vd_ext_open (lock held): the
 * last release of one whose last link went frees it. */
int vd_ext_opened(struct ext_fs *x, uint64_t ino);
void vd_ext_closed(struct ext_fs *x, uint64_t ino);
/* libext2fs's error from a change as a negative errno: -ENOSPC for a
 * full filesystem, -EFBIG, ...; damage is logged (naming ino and what)
 * and gives -EIO. */
int vd_ext_werr(struct ext_fs *x, uint64_t ino, const char *what,
		errcode_t err);
/* The current time, and ts stored in an inode's time field and its
 * _extra (at extra_off) as the kernel's ext4_encode_extra_time. */
void vd_ext_now(struct timespec *ts);
void vd_ext_time_put(struct ext2_inode_large *in, __u32 *base, __u32 *extra,
		     size_t extra_off, struct timespec ts);
#define VD_EXT_TIME_PUT(in, f, ts)                                          \
	vd_ext_time_put((in), &(in)->i_##f, &(in)->i_##f##_extra,           \
			offsetof(struct ext2_inode_large, i_##f##_extra), (ts))
/* Helpers of the changes (lock held), shared with ext-unlink.c: a
 * name's checks (-ENOENT empty, -ENAMETOOLONG, -EINVAL with '/'); "."
 * or ".."; directory dir read for a change (-ENOTDIR, -ENOENT when
 * removed, -ENOKEY when encrypted); an entry added (the directory grown
 * when full), removed, or pointed at another inode (".." too); a
 * directory's mtime and ctime now and its link count up or down; one
 * link of ino (inode in) gone, the inode freed with its last unless
 * open; an inode freed. */
int vd_ext_name_ok(const char *name);
bool vd_ext_is_dot(const char *name);
int vd_ext_dir_for_change(struct ext_fs *x, uint64_t dir,
			  struct ext2_inode_large *din);
int vd_ext_add_entry(struct ext_fs *x, uint64_t dir, const char *name,
		     uint64_t ino, mode_t mode);
int vd_ext_del_entry(struct ext_fs *x, uint64_t dir, const char *name,
		     uint64_t ino);
int vd_ext_set_entry(struct ext_fs *x, uint64_t dir, const char *name,
		     uint64_t ino, mode_t mode);
int vd_ext_dir_changed(struct ext_fs *x, uint64_t dir, int links);
int vd_ext_drop_link(struct ext_fs *x, uint64_t ino,
		     struct ext2_inode_large *in);
int vd_ext_inode_free(struct ext_fs *x, uint64_t ino);
/* Write inode ino whole (lock held): 0 or -errno (logged). */
int vd_ext_write_inode(struct ext_fs *x, uint64_t ino,
		       struct ext2_inode_large *in);

#endif
