/* VHDX driver internals shared by vhdx.c (headers, regions, metadata,
 * BAT, map) and vhdx-log.c (the log, replayed into an in-memory overlay).
 * Field offsets are those of Microsoft's [MS-VHDX] (v20160714 and later),
 * all little-endian; GUIDs are stored in Microsoft's layout. */
#ifndef VD_VHDX_H
#define VD_VHDX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"

#define VHDX_MIB (1ULL << 20)
/* One sector bitmap block covers 2^23 sectors ([MS-VHDX] 2.4.2). */
#define VHDX_SB_SECTORS (1ULL << 23)

/* A GUID as stored: the first three fields little-endian. */
#define VHDX_GUID(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                 \
	{ (a) & 0xff, (a) >> 8 & 0xff, (a) >> 16 & 0xff, (a) >> 24 & 0xff,  \
	  (b) & 0xff, (b) >> 8 & 0xff, (c) & 0xff, (c) >> 8 & 0xff,          \
	  d0, d1, d2, d3, d4, d5, d6, d7 }
/* [MS-VHDX] 2.3.2: the log's sector. */
#define VHDX_LOG_SECTOR 4096u

/* A byte range of the file as the log leaves it: zeros (mem < 0) or the
 * bytes at mem in the overlay's memory file. Sorted, never overlapping. */
struct vhdx_ext {
	uint64_t off, len;
	int64_t mem;
};

struct vhdx {
	/* Current header ([MS-VHDX] 2.2.2). */
	uint64_t seq;
	uint8_t file_write_guid[16]; /* offset 16 */
	uint8_t data_write_guid[16]; /* offset 32 */
	uint8_t log_guid[16];	     /* offset 48 */
	uint64_t log_off, log_len;   /* offsets 72, 68 */
	/* The file's size as the log leaves it: at least the host file's,
	 * more when a replayed entry's last file offset says so (the bytes
	 * past the host file read as zeros). */
	uint64_t file_size;

	/* Regions ([MS-VHDX] 2.2.3). */
	uint64_t bat_off, bat_len;
	uint64_t meta_off, meta_len;

	/* Metadata items ([MS-VHDX] 2.6.2). */
	uint32_t block_size;
	unsigned block_bits;
	uint32_t lss, pss;	     /* logical, physical sector size */
	bool has_parent, leave_allocated;
	bool has_page83;
	uint8_t page83[16];
	/* Parent locator: the parent's data write GUID, as text in braces
	 * (parent_linkage, and parent_linkage2 when given). */
	char linkage[40], linkage2[40];

	/* Payload blocks per sector bitmap block ([MS-VHDX] 2.4). */
	uint64_t chunk_ratio;
	uint64_t data_blocks;
	uint64_t bat_entries;	     /* entries the virtual size needs */

	/* The replayed log, if any: NULL/0 when there was none. */
	struct vhdx_ext *ovl;
	size_t n_ovl;
	struct vd_file *ovl_file;    /* memfd holding replayed sectors */
	unsigned replayed;	     /* log entries replayed */
};

/* CRC-32C of len bytes with the 4 bytes at skip read as zero, as every
 * VHDX checksum is computed. */
uint32_t vd_vhdx_sum(const uint8_t *p, size_t len, size_t skip);

/* Replay the log the current header names (v->log_guid not zero) into
 * v->ovl; 0 or -errno with e filled (one line). */
int vd_vhdx_log_replay(struct vd_layer *l, struct vhdx *v, struct vd_err *e);
void vd_vhdx_log_free(struct vhdx *v);

/* Read the metadata region's table and items into v and l->size; a
 * differencing disk's parent into l->backing_*. 0 or -errno, e filled. */
int vd_vhdx_read_metadata(struct vd_layer *l, struct vhdx *v,
			  struct vd_err *e);

/* len bytes at off of the file as the log leaves it; 0 or -EIO (logged
 * when past its end). */
int vd_vhdx_pread(struct vd_layer *l, void *buf, size_t len, uint64_t off);

/* The overlay extent holding off, else the first one after it (NULL when
 * none). */
const struct vhdx_ext *vd_vhdx_ovl_find(const struct vhdx *v, uint64_t off);

#endif
