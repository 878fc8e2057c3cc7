/* Partition-table internals shared by part.c, mbr.c and gpt.c: one reading
 * context and the list builder. Nothing here is seen outside them. */
#ifndef VD_PART_INTERNAL_H
#define VD_PART_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volumes/part.h"

/* MBR (and EBR) layout, from the IBM PC boot sector convention as Linux's
 * block/partitions/msdos.c and libfdisk read it: four 16-byte entries at
 * offset 446, the signature 0x55 0xaa at offset 510. */
#define MBR_SECTOR 512u
#define MBR_ENTRIES_AT 446u
#define MBR_ENTRY_LEN 16u
#define MBR_SIG_AT 510u
#define MBR_TYPE_GPT 0xeeu /* protective (or hybrid) MBR entry */

struct part_ctx {
	const struct vd_vol *v;
	const char *name; /* the disk's name, for messages */
	uint64_t size;	  /* v->len */
	struct vd_err *e;
	struct vd_parts *p; /* the list being built */
	unsigned cap;	    /* entries allocated in p->part[] */
};

/* Read len bytes at off of the disk; fails with -EUCLEAN and a message in
 * c->e when the range is outside the disk (what names the structure),
 * or with the read's error. */
int vd_part_read(struct part_ctx *c, void *buf, size_t len, uint64_t off,
		 const char *what);

/* Append a partition: start and len in bytes, as the table says. A start
 * at or past the disk's end skips it, a run past the end is clipped
 * (both with a warning naming it). Returns the slot to fill in the rest,
 * or NULL when it was skipped; -ENOMEM in *err. */
struct vd_part *vd_part_add(struct part_ctx *c, unsigned num, uint64_t start,
			    uint64_t len, int *err);

/* Warn (only) when two listed partitions overlap; extended containers
 * hold their logicals and are left out. */
void vd_part_check_overlaps(struct part_ctx *c);

/* mbr.c: the table in sector 0 (given, 512 bytes, signature checked) and
 * the EBR chains of its extended partitions. */
int vd_mbr_read(struct part_ctx *c, const uint8_t *mbr);

/* gpt.c: a GPT. pmbr tells whether sector 0 holds a protective or hybrid
 * MBR (an 0xee entry); without one the GPT is read only when a primary
 * header's signature is present, with a warning. Returns 0 with scheme
 * VD_PART_NONE when there is no GPT to read. */
int vd_gpt_read(struct part_ctx *c, const uint8_t *mbr, bool pmbr);

/* The GUID's text form, lower case, from its on-disk (mixed-endian)
 * bytes: the first three fields little-endian, the rest as stored. */
void vd_guid_text(const uint8_t *g, char *buf, size_t len);

#endif
