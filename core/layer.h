/* core/ internals shared by the generic code and the format drivers.
 *
 * A format driver fills one struct vd_format. Its central operation is
 * map: given a guest offset, describe the next run of bytes. The generic
 * read loop (read.c) turns runs into bytes; drivers never copy guest data
 * themselves. */
#ifndef VD_LAYER_H
#define VD_LAYER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cache.h"
#include "common/log.h"
#include "core/disk.h"
#include "core/archive.h"

struct vd_archive;

/* A host file, or a byte range of one (an image inside an archive). */
struct vd_file {
	int fd;
	uint64_t base; /* where the range starts in the host file */
	uint64_t size; /* length of the range, fixed at open */
	char *path;    /* for messages */
	dev_t dev;
	ino_t ino;
	uint64_t alloc; /* bytes the host file occupies (st_blocks * 512) */
	/* The archive this range is a member of (names that an image in it
	 * records are looked up there first), or NULL. Owned by the disk. */
	struct vd_archive *archive;
};

/* A new file for the byte range [off, off + len) of f (which stays
 * open), shown as path in messages. */
int vd_file_open_range(const struct vd_file *f, uint64_t off, uint64_t len,
		       const char *path, struct vd_file **f_r,
		       struct vd_err *e);
/* Whether a running QEMU holds this file open with write permission (as
 * its image locks say): reads may then see a half-written state. */
bool vd_file_written_by_qemu(const struct vd_file *f);

enum vd_run_type {
	VD_RUN_DATA,	   /* stored at file/host_off */
	VD_RUN_ZERO,	   /* reads as zeros, nothing stored, backing ignored */
	VD_RUN_UNALLOC,	   /* not in this layer: read the backing layer */
	VD_RUN_COMPRESSED, /* inside a compressed unit the driver decodes */
};

struct vd_run {
	enum vd_run_type type;
	uint64_t len;	      /* guest bytes from the queried offset */
	struct vd_file *file; /* DATA, COMPRESSED */
	uint64_t host_off;    /* DATA: host offset of the queried byte;
				 COMPRESSED: first byte of the unit's input */
	uint64_t comp_len;    /* COMPRESSED: input bytes (may run past EOF:
				 the tail reads as zeros) */
	uint32_t unit_size;   /* COMPRESSED: decoded size of the unit */
	uint32_t unit_off;    /* COMPRESSED: queried byte's place in it */
	uint64_t unit_guest;  /* COMPRESSED: guest offset of the unit's
				 first byte, for drivers whose decode needs
				 it (legacy qcow2 AES IVs) */
};

/* Whether n more guest bytes, stored as type (at host offset host for
 * DATA), continue run r as a driver's map builds it: the same type, never
 * a second compressed unit, and DATA only when contiguous on the host
 * (same file). If so r grows by n. */
static inline bool vd_run_extend(struct vd_run *r, enum vd_run_type type,
				 uint64_t host, uint64_t n)
{
	if (type != r->type || type == VD_RUN_COMPRESSED)
		return false;
	if (type == VD_RUN_DATA && host != r->host_off + r->len)
		return false;
	r->len += n;
	return true;
}

struct vd_layer {
	const struct vd_format *fmt;
	struct vd_file *file;
	char *path;	 /* as named: the user's path or the resolved name */
	uint64_t size;	 /* virtual size */
	uint64_t uid;	 /* unique in the process, keys decode caches */
	struct vd_layer *backing;
	struct vd_disk *disk;
	void *priv;
	/* Host bytes this layer occupies: its file, plus any files the
	 * driver opened (a qcow2 data file). */
	uint64_t alloc;
	/* Set by the driver's open when the image names a parent. */
	char *backing_name;
	char *backing_format; /* as recorded, or NULL: probe */
};

struct vd_layer_opts {
	const char *snapshot; /* top layer only */
	bool writable;	      /* top layer only; its file is open O_RDWR */
	bool fresh;	      /* with writable: vd_open_opts.fresh */
	struct vd_keys *keys; /* passphrases for encrypted layers, or NULL */
};

struct vd_format {
	const char *name;
	bool snapshots; /* open honours vd_layer_opts.snapshot */
	/* How sure the format is that head (the file's first bytes) is
	 * its own: 0 no, higher is surer. */
	int (*probe)(const uint8_t *head, size_t len);
	/* Optional: the same for the last bytes of a file of file_size
	 * bytes, asked only when no format claims its head (a fixed VHD is
	 * known by its footer alone). */
	int (*probe_tail)(const uint8_t *tail, size_t len, uint64_t file_size);
	/* Validate metadata and set l->size, l->priv, l->backing_*. */
	int (*open)(struct vd_layer *l, const struct vd_layer_opts *o,
		    struct vd_err *e);
	/* off < l->size, 0 < len <= l->size - off. Fill run_r with
	 * 0 < run_r->len <= len. 0 or -errno (logged). */
	int (*map)(struct vd_layer *l, uint64_t off, uint64_t len,
		   struct vd_run *run_r);
	/* Decode one compressed unit: exactly out_len bytes, or -EIO. */
	int (*decompress)(struct vd_layer *l, const uint8_t *in, size_t in_len,
			  uint8_t *out, size_t out_len);
	/* Optional, for a layer opened writable (vd_layer_opts.writable):
	 * write len bytes at off (inside l->size), each byte or none
	 * visible to later reads, as a disk does; 0 or -errno. flush makes
	 * every write that returned durable. */
	int (*write)(struct vd_layer *l, const void *buf, size_t len,
		     uint64_t off);
	int (*flush)(struct vd_layer *l);
	/* Optional, used instead of decompress when set: decode the unit
	 * of run r (its input, r->comp_len bytes, at in) into out
	 * (r->unit_size bytes), knowing where it lies (an encrypted
	 * cluster's IV comes from its host or guest offset). 0 or -EIO. */
	int (*decode)(struct vd_layer *l, const struct vd_run *r,
		      const uint8_t *in, uint8_t *out);
	/* Optional: once l->backing is open, check that it is the parent
	 * l records (VMDK parentCID, VHD parent unique id). Skipped under
	 * vd_open_opts.ignore_parent_ids; a message should name that
	 * option as --ignore-parent-id. */
	int (*check_backing)(struct vd_layer *l, struct vd_err *e);
	/* Optional: fill what is particular to the format (vd_layer_info
	 * has filled the common fields). Never fails: what cannot be read
	 * is logged, left out, and i->incomplete set. */
	void (*describe)(const struct vd_layer *l, struct vd_layer_info *i);
	void (*close)(struct vd_layer *l);
};

/* The disk's metadata cache, shared by all its layers: one budget bounds
 * the memory of the whole chain, however deep. */
#define VD_CACHE_BUDGET (32u << 20)
#define VD_CACHE_SLOTS 4096u
struct vd_cache *vd_layer_cache(struct vd_layer *l);
/* Decoded compressed units, shared likewise (keyed by layer and input
 * offset), so small reads of one unit decode it once whichever thread
 * serves them. A unit larger than the budget is decoded uncached. */
#define VD_UNIT_CACHE_BUDGET (4u << 20)
#define VD_UNIT_CACHE_SLOTS 64u
struct vd_cache *vd_layer_unit_cache(struct vd_layer *l);

/* The NULL-terminated table of formats (formats.c). */
extern const struct vd_format *const vd_formats[];
const struct vd_format *vd_format_find(const char *name);

/* Open a file an image names (backing file, data file, extent) relative to
 * the folder of the image l, under the rule of ARCHITECTURE.md: it must
 * resolve to a regular file inside the top image's folder or an allowed
 * --backing-dir. what is "backing file", "data file", ... for messages.
 * path_r (if not NULL) receives the path to show for the file. */
int vd_layer_open_named(struct vd_layer *l, const char *name,
			const char *what, struct vd_file **f_r, char **path_r,
			struct vd_err *e);
/* Whether the file an image names exists where vd_layer_open_named would
 * look first (the archive, or beside the image): for a driver choosing
 * among several recorded names. The open still applies the rule. */
bool vd_layer_name_exists(struct vd_layer *l, const char *name);
/* The folders named files may live in (canonical paths: the top image's
 * folder, then each --backing-dir), for a driver that searches them for
 * a parent it knows only by an id (VDI). The array lives as the disk. */
unsigned vd_layer_allowed_dirs(const struct vd_layer *l,
			       const char *const **dirs_r);
/* Add canonical folder dir to the folders named files may live in: for a
 * driver that found a file there by an id of its own, not by a name the
 * image gave (VDI: a parent beside the child's Snapshots folder). 0 or
 * -errno (filled in e). */
int vd_layer_allow_dir(struct vd_layer *l, const char *dir, struct vd_err *e);
/* The same for a name recorded in the file at `from` (an OVF descriptor)
 * that is not a layer. */
int vd_disk_open_named(struct vd_disk *d, const char *from, const char *name,
		       const char *what, struct vd_file **f_r, char **path_r,
		       struct vd_err *e);

/* Decoders with per-thread state (compress.c). 0 when exactly out_len
 * bytes were produced, else -EIO. */
int vd_inflate(const uint8_t *in, size_t in_len, uint8_t *out,
	       size_t out_len, int window_bits);
int vd_zstd_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		   size_t out_len);

/* Free the calling thread's read-loop scratch memory (read.c) and
 * decoder state (compress.c). */
void vd_thread_cleanup(void);
void vd_codec_thread_cleanup(void);

#endif
