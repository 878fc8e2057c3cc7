/* Partition tables: the table of a volume (the disk, or a volume such as
 * an LV that holds a whole guest disk).
 *
 * MBR (primary, extended 0x05/0x0f/0x85 with their EBR chains, logical
 * partitions numbered 5+ as Linux numbers them) and GPT (protective MBR,
 * header and entry-array CRC32, backup header when the primary is
 * damaged, 512- and 4096-byte logical sectors; numbered by entry index as
 * Linux does, so an unused entry leaves a gap). A hybrid MBR is read as
 * GPT.
 *
 * Sector size: a GPT is looked for at byte 512 (LBA 1 of 512-byte
 * sectors), then at byte 4096 (LBA 1 of 4096-byte sectors); the one found
 * gives the table's sector size. An MBR's sectors are 512 bytes: a file
 * or an image cannot say what logical sector size its disk had, and
 * Linux (a loop device) and libfdisk (a file) assume 512 unless told.
 *
 * The extended partition (an MBR's 0x05/0x0f/0x85 entry) is listed under
 * its own number with its full extent, as fdisk -l and libfdisk list it,
 * and with extended = true. Its bytes are the EBRs and the logical
 * partitions: the FUSE tree shows them as pN.raw but has no file tree
 * (pN/) to look for in it. (Linux's /dev/sdX2 for an extended partition
 * is 1 KiB long only to keep mkfs off it, which a read-only view need
 * not do.)
 *
 * Where this differs from Linux, on purpose: a GPT entry that runs past
 * the disk's end is clipped with a warning, as Linux clips an MBR
 * partition (Linux's efi.c drops such a GPT entry, and refuses a GPT
 * whose last usable LBA lies past the disk's end, as on a truncated
 * image); GPT entries past the 255th are listed (Linux stops there); a
 * valid GPT without a protective MBR is read with a warning (Linux needs
 * gpt on its command line). */
#ifndef VD_PART_H
#define VD_PART_H

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "core/disk.h"
#include "volumes/vol.h"

/* More GPT entries than this are refused as absurd. */
#define VD_PART_MAX_GPT_ENTRIES 4096
/* More logical partitions than this end the EBR walk. */
#define VD_PART_MAX_LOGICAL 256

enum vd_part_scheme { VD_PART_NONE, VD_PART_MBR, VD_PART_GPT };

struct vd_part {
	unsigned num;	    /* as Linux numbers it: the N of pN */
	uint64_t start;	    /* bytes from the start of the disk */
	uint64_t len;	    /* bytes, clipped to the disk's end */
	uint8_t mbr_type;   /* MBR: the type byte; GPT: 0 */
	uint8_t type_guid[16]; /* GPT: type GUID in on-disk byte order */
	uint8_t uuid[16];   /* GPT: unique partition GUID, on-disk order */
	uint64_t attrs;	    /* GPT: attribute bits */
	bool bootable;	    /* MBR: 0x80 flag */
	bool extended;	    /* MBR: an extended partition (see above) */
	char type[40];	    /* "0x83" or the type GUID as text, lower case */
	char name[144];	    /* GPT name as UTF-8 (36 UTF-16 units), or "" */
};

struct vd_parts {
	enum vd_part_scheme scheme;
	unsigned sector_size; /* logical sector size the table uses */
	uint8_t disk_guid[16]; /* GPT: disk GUID, on-disk order */
	uint32_t mbr_id;       /* MBR: disk identifier at 440 */
	unsigned n;
	struct vd_part part[]; /* in increasing num */
};

/* Read the table of d. A disk with no table gives scheme VD_PART_NONE and
 * n = 0 (not an error). Damage that can be worked around (a bad primary
 * GPT with a good backup, a partition past the disk's end, a looping EBR
 * chain) is logged as a warning and worked around; an unreadable or
 * absurd table fails with -EUCLEAN and a one-line message in e. name is
 * the disk's name for messages. */
int vd_parts_read(const struct vd_vol *v, const char *name,
		  struct vd_parts **p_r, struct vd_err *e);
void vd_parts_free(struct vd_parts *p);

#endif
