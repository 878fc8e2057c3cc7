/* core/archive.h — the part of core that front ends may use to read an
 * appliance's container themselves (vdtool verify checks an OVA's
 * manifest): host files opened as core opens them, the tar walker and
 * the OVF descriptor reader. Everything else of core stays behind
 * core/disk.h; a front end never includes core's internal headers. */
#ifndef VD_ARCHIVE_H
#define VD_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

struct vd_file;
struct vd_archive;

/* A host file, read-only (core/file.c). */
int vd_file_open(const char *path, struct vd_file **f_r, struct vd_err *e);
/* The same, open for reading and writing: only a writable top layer. */
int vd_file_open_rw(const char *path, struct vd_file **f_r,
		    struct vd_err *e);
void vd_file_close(struct vd_file *f);
/* Exactly len bytes at off, or -EIO (logged): a short read is an
 * error, never silent zeros. */
int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off);
/* Its size in bytes, fixed at open (a writable file's grows as it is
 * written). */
uint64_t vd_file_size(const struct vd_file *f);
void vd_archive_free(struct vd_archive *a);

/* ---- tar (ova.c) */

/* More members than this and the archive is refused. */
#define VD_TAR_MAX_MEMBERS 65536u

struct vd_archive_member {
	char *name;    /* as stored, leading "./" removed */
	uint64_t off;  /* first data byte, within the tar */
	uint64_t size; /* data bytes */
	/* The ustar type flag: '0' for a regular file (also for '\0' and
	 * '7'); 'S' for a GNU sparse file, whose data is not its bytes. */
	char type;
};

/* Whether a 512-byte block looks like a tar header: ustar magic at 257,
 * or an old-style header with a valid checksum and a name. */
bool vd_tar_probe(const uint8_t *h, size_t len);

/* Walk the tar in f (taken over on success, left open on failure) and
 * list its members. path names the tar in messages. */
int vd_tar_open(struct vd_file *f, const char *path,
		struct vd_archive **a_r, struct vd_err *e);

/* Call fn for each member in tar order, until it returns non-zero (which
 * is returned). For vdtool verify (the .mf manifest) and tests. */
int vd_archive_foreach(const struct vd_archive *a,
		       int (*fn)(void *ctx, const struct vd_archive_member *m),
		       void *ctx);
/* The tar itself (member data lies at m->off in it). */
struct vd_file *vd_archive_file(const struct vd_archive *a);

/* ---- OVF descriptor (ovf.c) */

/* A descriptor larger than this is refused. */
#define VD_OVF_MAX_BYTES (16u << 20)
/* More References/File or DiskSection/Disk entries than this are
 * refused. */
#define VD_OVF_MAX_ENTRIES 4096u

/* <References><File ovf:id ovf:href ovf:size ovf:compression
 * ovf:chunkSize> (DSP0243, "File references"). */
struct vd_ovf_file {
	char *id;
	char *href;
	char *compression; /* NULL when absent */
	uint64_t size;	   /* 0 when absent (has_size false) */
	uint64_t chunk_size; /* 0 when absent: not chunked */
	bool has_size;
};

/* <DiskSection><Disk ovf:diskId ovf:fileRef ovf:capacity> in document
 * order: that order numbers the disks (--disk=N). */
struct vd_ovf_disk {
	char *disk_id;
	char *file_ref; /* NULL: an empty disk, made at import */
	int file;	/* index into files, -1 without file_ref */
};

struct vd_ovf {
	struct vd_ovf_file *files;
	unsigned n_files;
	struct vd_ovf_disk *disks;
	unsigned n_disks;
};

/* Whether buf (a descriptor's first bytes) is XML whose root element is
 * an Envelope in an OVF namespace. */
bool vd_ovf_probe(const char *buf, size_t len);
/* Parse a whole descriptor of len bytes (at most VD_OVF_MAX_BYTES);
 * path names it in messages. Checks that it is well-formed XML whose
 * root is an OVF Envelope with a DiskSection listing at least one disk,
 * and that each fileRef names a File. */
int vd_ovf_parse(const char *buf, size_t len, const char *path,
		 struct vd_ovf **o_r, struct vd_err *e);
void vd_ovf_free(struct vd_ovf *o);

#endif
