/* volumes/ — byte sources that stack.
 *
 * A *volume* is anything that yields bytes by offset: the virtual disk
 * (core), a partition (a slice of a volume), an LVM logical volume
 * (slices of one or more volumes, linear, striped, or a thin volume's
 * mapping), a decrypted LUKS volume (a transform of one volume). Every
 * layer above core reads through a volume, never through the disk.
 *
 * Two kinds of volume, one ops table:
 *   - a *mapped* volume says, for an offset, where its next run of bytes
 *     lies: in a parent volume (at an offset there) or nowhere (zeros).
 *     Partitions and LVs are mapped; reads, data/hole status and
 *     read-ahead are then generic (vol.c) and stored bytes still reach a
 *     front end as host file pieces it can splice.
 *   - a *computed* volume (the disk, LUKS) answers read_vec and status
 *     itself.
 *
 * A volume is immutable once it is in the set (struct vd_volset), and
 * every call may come from any thread: calls take const volumes, and a
 * volume whose map needs caches (a thin pool's btrees) keeps them behind
 * a pointer, guarded by a lock of its own.
 *
 * *Schemes* (partition tables; later LUKS) take one volume and add its
 * children to the set; *assemblers* (LVM) claim volumes by their labels
 * across the whole image and add the volumes they assemble. Discovery
 * (discover.c) recurses: disk -> table -> partitions -> LUKS -> LVM ->
 * filesystem, with a depth limit, every volume probed once. */
#ifndef VD_VOL_H
#define VD_VOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "core/disk.h"

/* Discovery stops descending below this depth (the disk is depth 0). */
#define VD_VOL_MAX_DEPTH 8
/* More volumes than this in one image are not added (logged once). */
#define VD_VOL_MAX 8192
/* Size of struct vd_vol's label, its NUL included. */
#define VD_VOL_LABEL_MAX 96

struct vd_vol;
struct vd_volset;
struct vd_keys;
struct vd_luks_info;
struct vd_parts;

/* Where a mapped volume's bytes lie: len bytes of vol at off, or, when
 * vol is NULL, len bytes of zeros that are not stored. */
struct vd_vol_run {
	const struct vd_vol *vol;
	uint64_t off;
	uint64_t len;
};

struct vd_vol_ops {
	const char *kind; /* "disk", "partition", "lvm", "luks" */
	/* Mapped volumes: the run that begins at off, at most len bytes
	 * long and at least one. [off, off + len) lies inside the volume
	 * (the caller checked). 0, or -errno (-EIO for corrupt metadata,
	 * logged). */
	int (*map)(const struct vd_vol *v, uint64_t off, uint64_t len,
		   struct vd_vol_run *r);
	/* Computed volumes (map NULL): as vd_disk_read_vec, and as
	 * vd_disk_status, and a best-effort read-ahead; the range is
	 * checked by the caller. */
	int (*read_vec)(const struct vd_vol *v, void *buf, size_t len,
			uint64_t off, struct vd_seg *segs, unsigned max_segs,
			unsigned *n_r);
	/* Computed volumes, optional: the same bytes read into buf whole
	 * (NULL: read_vec, then its pieces read). Cheaper for the small
	 * reads of discovery and metadata: no piece has to be checked
	 * against the host file's size. */
	int (*read)(const struct vd_vol *v, void *buf, size_t len,
		    uint64_t off);
	int (*status)(const struct vd_vol *v, uint64_t off, uint64_t len,
		      bool *data_r, uint64_t *len_r);
	void (*prefetch)(const struct vd_vol *v, uint64_t off, uint64_t len);
	/* Computed volumes that can be written (the disk of a writable
	 * image): write len bytes at off, range checked by the caller; 0 or
	 * -errno. NULL: -EROFS. Mapped volumes are written through their
	 * map (a run of unstored zeros cannot be: -EROFS). */
	int (*write)(const struct vd_vol *v, const void *buf, size_t len,
		     uint64_t off);
	/* Computed volumes that can be written: make every write that
	 * returned durable. NULL: nothing to do. */
	int (*flush)(const struct vd_vol *v);
	/* Frees what the volume owns beyond struct vd_vol; NULL: nothing. */
	void (*destroy)(struct vd_vol *v);
};

/* Every volume begins with this (implementations embed it first). */
struct vd_vol {
	const struct vd_vol_ops *ops;
	uint64_t len;
	/* For messages: "vm.qcow2 p2", "vm.qcow2 vg0-root". */
	char *name;
	/* The name in the tree, without ".raw": "p2", "vg0-root",
	 * "luks-UUID"; "" for the disk itself. At most VD_VOL_LABEL_MAX - 1
	 * bytes, no '/'. */
	char label[VD_VOL_LABEL_MAX];
	unsigned id;	       /* index in the set; the disk is 0 */
	unsigned depth;	       /* 0 for the disk */
	const struct vd_vol *parent; /* the volume a scheme found this in; NULL
				  for the disk and assembled volumes */
	/* What discovery found in it (VD_VOL_*), and the one-line reason
	 * when something recognised could not be used. */
	unsigned role;
	char *error;
	/* VD_VOL_MEMBER: the assembler that claimed it ("lvm"). */
	const char *member_of;
	/* Not shown in the tree (an extended partition's children are;
	 * an LV's hidden sub-volumes are not). */
	bool hidden;
	/* Scheme- or assembler-specific description for front ends
	 * (vdtool info): the struct vd_part of a partition, ... */
	const void *desc;
	/* The partition table read in this volume (owned), or NULL. */
	struct vd_parts *parts;
	/* The LUKS header found at its start (owned), or NULL: for vdtool
	 * info, whether or not a key opened it. */
	struct vd_luks_info *luks;
};

enum vd_vol_role {
	VD_VOL_RAW = 0,	      /* nothing recognised */
	VD_VOL_TABLE = 1,     /* holds a partition table (children) */
	VD_VOL_MEMBER = 2,    /* claimed by an assembler (an LVM PV) */
	VD_VOL_FS = 3,	      /* holds a filesystem that is shown */
	VD_VOL_CONTAINER = 4, /* holds children otherwise (extended, LUKS) */
};

/* Exactly len bytes at off within the volume, or -EIO (a read past the
 * volume's end included, logged). */
int vd_vol_read(const struct vd_vol *v, void *buf, size_t len, uint64_t off);
/* As vd_vol_read, in pieces (see vd_disk_read_vec). */
int vd_vol_read_vec(const struct vd_vol *v, void *buf, size_t len, uint64_t off,
		    struct vd_seg *segs, unsigned max_segs, unsigned *n_r);
/* As vd_disk_status / vd_disk_seek / vd_disk_prefetch over the volume. */
int vd_vol_status(const struct vd_vol *v, uint64_t off, uint64_t len, bool *data_r,
		  uint64_t *len_r);
int vd_vol_seek(const struct vd_vol *v, uint64_t off, bool want_data,
		uint64_t *off_r);
void vd_vol_prefetch(const struct vd_vol *v, uint64_t off, uint64_t len);
/* Write exactly len bytes at off within the volume, down to the disk:
 * 0, -EROFS when the volume (or the disk) cannot be written, -ENOSPC
 * past its end, or the disk's -errno. */
int vd_vol_write(const struct vd_vol *v, const void *buf, size_t len,
		 uint64_t off);
/* Make every write to the volume that returned durable (down to the
 * disk's flush): 0 or -errno. */
int vd_vol_flush(const struct vd_vol *v);

/* ---- the set of volumes of one image */

struct vd_volset {
	struct vd_disk *disk;
	const char *name; /* the image's name, for messages */
	struct vd_vol **vols; /* by id; vols[0] is the disk */
	unsigned n, cap;
	/* Assemblers' state, by index in vd_assemblers. */
	void **asm_state;
	/* Passphrases for LUKS volumes (not owned), or NULL. */
	struct vd_keys *keys;
};

/* A new volume of ops with len bytes, zeroed beyond struct vd_vol, of
 * size bytes in all (the implementation's struct), not yet in a set.
 * name is copied. NULL on no memory. */
struct vd_vol *vd_vol_new(const struct vd_vol_ops *ops, size_t size,
			  uint64_t len, const char *name);
/* Frees a volume not (or no longer) in a set. */
void vd_vol_free(struct vd_vol *v);
/* A slice [start, start + len) of parent (checked by the caller). */
struct vd_vol *vd_vol_new_slice(const struct vd_vol *parent, uint64_t start,
				uint64_t len, const char *name);

/* The disk as a volume (not owning d). */
struct vd_vol *vd_vol_new_disk(struct vd_disk *d, const char *name);
/* Bytes [start, start + len) of d as a volume of its own (tests and
 * fuzz targets: a filesystem at an offset of an image); NULL when the
 * range is not inside d, or on no memory. */
struct vd_vol *vd_vol_new_disk_range(struct vd_disk *d, uint64_t start,
				     uint64_t len, const char *name);
/* Whether v is a slice, and of what. */
bool vd_vol_slice_of(const struct vd_vol *v, const struct vd_vol **parent_r,
		     uint64_t *start_r);

/* Adds v to the set (taking it over, freed on failure): sets v->id.
 * -ENOSPC past VD_VOL_MAX volumes (logged once by discovery). */
int vd_volset_add(struct vd_volset *s, struct vd_vol *v);

/* A label made unique in the set: "name", else "name_2", "name_3"... */
void vd_volset_unique_label(const struct vd_volset *s, char *label,
			    size_t size);

/* ---- discovery (discover.c) */

struct vd_volset_opts {
	bool no_partitions; /* the disk only: no table, no volumes */
	struct vd_keys *keys; /* passphrases for LUKS (not owned), or NULL */
};

/* The disk's volumes: the disk itself (id 0) and everything discovery
 * finds under it. Never fails on a bad table or label (those are logged,
 * kept in the volume's error, and the volume shown raw); only on memory.
 * name is the image's name for messages. */
int vd_volset_open(struct vd_disk *d, const char *name,
		   const struct vd_volset_opts *o, struct vd_volset **s_r);
void vd_volset_close(struct vd_volset *s);

/* ---- schemes and assemblers */

struct vd_scheme {
	const char *name; /* "gpt/mbr", "luks" */
	/* Nonzero when v holds this scheme (cheap). */
	int (*probe)(const struct vd_vol *v);
	/* Add v's children to the set with parent = v and depth + 1.
	 * 0; -ENODEV (e untouched) when v holds nothing of this scheme
	 * after all; or another -errno with e filled (then the volume is
	 * shown raw and e logged). */
	int (*open)(struct vd_volset *s, struct vd_vol *v, struct vd_err *e);
};

struct vd_assembler {
	const char *name; /* "lvm" */
	/* Nonzero when v carries this assembler's label (cheap). */
	int (*probe)(const struct vd_vol *v);
	/* Called after every round of discovery that claimed volumes:
	 * claimed lists every volume probe accepted so far (all rounds),
	 * in id order. Adds the assembled volumes it has not added in an
	 * earlier round, each with depth = 1 + the deepest member. Problems
	 * with one group (a VG with a PV missing, an LV of an unknown type)
	 * are logged and that group (or LV) left out; only running out of
	 * memory fails. *state is this assembler's, NULL at first. */
	int (*assemble)(struct vd_volset *s, struct vd_vol *const *claimed,
			unsigned n, void **state);
	/* Frees *state. */
	void (*free_state)(void *state);
};

extern const struct vd_scheme *const vd_schemes[];
extern const struct vd_assembler *const vd_assemblers[];

#endif
