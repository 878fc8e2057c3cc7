/* core/ — one flat virtual disk from an image file and its backing chain.
 *
 * This is the whole public interface of core for the layers above it
 * (volumes/, fsread/, ns/, fuse/ and other front ends). Reads are
 * thread-safe and may run in parallel. */
#ifndef VD_DISK_H
#define VD_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

/* A backing chain deeper than this is refused. */
#define VD_MAX_CHAIN 256

struct vd_disk;
struct vd_layer;
struct vd_keys;

struct vd_open_opts {
	const char *format;   /* top layer's format, or NULL to probe */
	const char *snapshot; /* qcow2 internal snapshot (id or name), or NULL */
	/* Folders besides the top image's own folder in which backing files
	 * and data files named by images may live. */
	const char *const *backing_dirs;
	unsigned n_backing_dirs;
	/* Bytes of metadata (tables) cached for the whole chain; 0: the
	 * default, VD_CACHE_BUDGET. */
	size_t cache_bytes;
	/* An appliance (OVA, OVF) holding several disks: which one, from 1
	 * in the descriptor's order; 0 for the first. */
	unsigned disk;
	/* Mount a child whose recorded parent id (VMDK parentCID, VHD
	 * parent unique id) differs from its parent's own. */
	bool ignore_parent_ids;
	/* Open the top layer for writing (vdmount --rw, --overlay): it
	 * must be a qcow2 image that passes the writer's check; every
	 * other layer stays read-only. */
	bool writable;
	/* An overlay's base: the open fails unless this file is a layer
	 * below the top (vdmount --overlay=CHILD IMAGE with CHILD there). */
	const char *backed_by;
	/* With writable: the top layer was just made by vd_overlay_create
	 * and is not synced yet; its first write (or its close) first
	 * makes it and its name durable. */
	bool fresh;
	/* Passphrases (common/keys.h) for encrypted layers and LUKS
	 * volumes, tried on each; NULL: none. Not owned. */
	struct vd_keys *keys;
};

/* 0, or -errno with e filled: one line naming the file and the problem. */
int vd_disk_open(const char *path, const struct vd_open_opts *opts,
		 struct vd_disk **disk_r, struct vd_err *e);
void vd_disk_close(struct vd_disk *d);

uint64_t vd_disk_size(const struct vd_disk *d);

/* Read exactly len bytes at off; [off, off + len) must lie within the
 * disk. 0 or -errno (-EIO for a bad region, logged). */
int vd_disk_read(struct vd_disk *d, void *buf, size_t len, uint64_t off);

/* Writing, when the disk was opened writable (else -EROFS): len bytes
 * at off, inside the disk, into the top layer (copy-on-write over the
 * layers below). Writes to different clusters run in parallel. 0 or
 * -errno (-ENOSPC when the host file system is full: the image stays
 * valid and the write is not done). */
int vd_disk_write(struct vd_disk *d, const void *buf, size_t len,
		  uint64_t off);
/* A new qcow2 version 3 overlay at child (which must not exist) whose
 * backing file is base, its format recorded; base is opened read-only
 * with o's format, backing dirs and parent id option, and must lie in
 * child's folder or one of o's backing dirs (the name is then relative,
 * else absolute). It is written, not synced: open it with
 * vd_open_opts.fresh. 0, or -errno with e filled. */
int vd_overlay_create(const char *child, const char *base,
		      const struct vd_open_opts *o, struct vd_err *e);
/* Make every write that returned durable (fdatasync of the top file). */
int vd_disk_flush(struct vd_disk *d);
bool vd_disk_writable(const struct vd_disk *d);

/* A read described as pieces, for front ends that can move host bytes
 * without copying them (FUSE splices a host file into its reply): the
 * pieces, in order, make up exactly the bytes vd_disk_read would give. */
enum vd_seg_type {
	VD_SEG_FD,   /* len bytes of host file fd at fd_off */
	VD_SEG_ZERO, /* len zero bytes */
	VD_SEG_MEM,  /* len bytes at mem, inside the caller's buffer */
};

struct vd_seg {
	enum vd_seg_type type;
	size_t len;
	int fd;		 /* VD_SEG_FD: open as long as the disk is */
	uint64_t fd_off; /* VD_SEG_FD: offset in the host file */
	const void *mem; /* VD_SEG_MEM */
};

/* As vd_disk_read, but stored guest data (of any layer) becomes FD
 * pieces and unstored ranges ZERO pieces, with adjacent pieces of one
 * kind merged; what must be computed (decoded compressed data) is written
 * to buf (len bytes, at its place in the read) and becomes MEM pieces.
 * When max_segs would be exceeded, the rest of the read is done into buf
 * as one MEM piece, so any max_segs >= 1 works. *n_r: pieces used. An FD
 * piece is checked here against its file's size at open and as it is now
 * (a host file cut short under the mount gives -EIO, logged), but the
 * caller reads it: a cut after this call still gives a short read. */
int vd_disk_read_vec(struct vd_disk *d, void *buf, size_t len, uint64_t off,
		     struct vd_seg *segs, unsigned max_segs, unsigned *n_r);

/* Start the host reads of [off, off + len) without waiting for them
 * (posix_fadvise WILLNEED on the stored bytes; compressed ones are not
 * decoded), so that a sequential reader finds them cached. Best effort:
 * errors and ranges past the disk are ignored. */
void vd_disk_prefetch(struct vd_disk *d, uint64_t off, uint64_t len);

/* Whether the byte at off holds data (true) or reads as zeros without
 * being stored (false), and how many bytes from off share that status
 * (at most len). Walks the chain like a read does. */
int vd_disk_status(struct vd_disk *d, uint64_t off, uint64_t len,
		   bool *data_r, uint64_t *len_r);

/* lseek(2) SEEK_DATA / SEEK_HOLE semantics over the disk: -ENXIO when
 * off is at or past the end or no data follows. */
int vd_disk_seek(struct vd_disk *d, uint64_t off, bool want_data,
		 uint64_t *off_r);

/* Host bytes the chain's files occupy, as du(1) counts them: what the
 * FUSE front end reports as the disk's st_blocks (as qemu's own FUSE
 * export does), so that cp and tar see a sparse disk as sparse. */
uint64_t vd_disk_host_bytes(const struct vd_disk *d);

/* The chain, top first, for front ends that describe it. */
const struct vd_layer *vd_disk_top(const struct vd_disk *d);
const struct vd_layer *vd_layer_backing(const struct vd_layer *l);
const char *vd_layer_path(const struct vd_layer *l);
const char *vd_layer_format(const struct vd_layer *l);
uint64_t vd_layer_size(const struct vd_layer *l);

/* ---- describing a layer (vdtool info); names follow qemu-img info. */

/* One qcow2 internal snapshot, from the snapshot table (qcow2.txt,
 * "Snapshots"). id and name are truncated to fit, NUL-terminated, and
 * may hold any bytes the image stored. */
struct vd_layer_snapshot {
	char id[64];
	char name[256];
	uint64_t vm_state_size;
	int64_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t icount;
	bool has_icount;
};

/* One extent of a VMDK (qemu-img's format-specific "extents"). */
struct vd_layer_extent {
	const char *filename; /* as the descriptor names it, joined to its
				 folder; the image itself for one sparse file */
	const char *type;     /* descriptor type: "SPARSE", "FLAT", "ZERO",
				 "VMFS", ...; "" for a lone sparse file */
	uint64_t virtual_size;
	uint32_t cluster_size; /* grain bytes; 0 for flat and zero extents */
	bool compressed;
};

/* The strings point into the layer (valid while the disk is open) or
 * are literals; only the arrays are allocated. */
struct vd_layer_info {
	const char *format;	 /* "qcow2", "vmdk", "vpc", "raw" (qemu's) */
	char subformat[48];	 /* qcow2: compat "0.10"/"1.1"; vmdk:
				    createType; vpc: "fixed", "dynamic",
				    "differencing"; raw: "" */
	uint64_t virtual_size;
	uint64_t actual_size;	 /* host bytes (l->alloc) */
	uint32_t cluster_size;	 /* qcow2 cluster, vmdk grain, vpc block;
				    0 when none */
	char compression[8];	 /* "zlib", "zstd", "deflate", "" */
	const char *backing_filename;	   /* as recorded, or NULL */
	const char *backing_format;	   /* as recorded, or NULL */
	const char *full_backing_filename; /* the path opened, or NULL */
	bool dirty, corrupt;	 /* qcow2 header flags */
	unsigned n_snapshots;
	struct vd_layer_snapshot *snapshots; /* n_snapshots entries */
	/* qcow2 only (format-specific) */
	unsigned refcount_bits;
	bool lazy_refcounts, extended_l2;
	const char *data_file;	 /* external data file as recorded, or NULL */
	bool data_file_raw;
	/* vmdk only */
	bool has_cid;
	uint32_t cid, parent_cid;
	unsigned n_extents;
	struct vd_layer_extent *extents;
	/* Something could not be read (logged): the lists may be short. */
	bool incomplete;
};

/* Describe layer l. 0; i_r is filled as far as the image allows even
 * when a table cannot be read (then incomplete is set). Free with
 * vd_layer_info_free. */
int vd_layer_info(const struct vd_layer *l, struct vd_layer_info *i_r);
void vd_layer_info_free(struct vd_layer_info *i);

#endif
