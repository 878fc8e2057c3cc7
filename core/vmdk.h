/* vmdk driver internals, shared by vmdk.c (opening: headers, extents,
 * parent check), vmdk-map.c (the map through grain directories and
 * grain tables) and vmdk-desc.c (the descriptor text parser).
 *
 * Sources: VMware "Virtual Disk Format 1.1" (the hosted sparse extent
 * header, grain directory and tables, stream-optimized markers, the
 * descriptor file), libyal's "VMware Virtual Disk (VMDK) format" notes
 * (the COWD header of vmfsSparse extents), and QEMU's block/vmdk.c for
 * what qemu-img writes and how it reads corner cases. */
#ifndef VD_VMDK_H
#define VD_VMDK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/layer.h"

#define VMDK_SECTOR 512u

/* ------------------------------------------------------------ descriptor */

/* A descriptor file larger than this is refused (QEMU reads at most
 * 1 MiB); lines longer than VMDK_DESC_MAX_LINE, extent file names longer
 * than VMDK_DESC_MAX_NAME and more than VMDK_DESC_MAX_EXTENTS extents too.
 * 4096 extents of 2 GiB (twoGbMaxExtent*) are 8 TiB, four times VMware's
 * largest hosted disk. */
#define VMDK_DESC_MAX_BYTES (1u << 20)
#define VMDK_DESC_MAX_LINE 16384u
#define VMDK_DESC_MAX_NAME 4095u
#define VMDK_DESC_MAX_EXTENTS 4096u
/* Sectors in one extent and in the whole disk: 2^53 bytes, far above any
 * VMDK (VMware's limit is 62 TiB), and small enough that no sum of
 * VMDK_DESC_MAX_EXTENTS of them overflows. */
#define VMDK_MAX_SECTORS (1ULL << 44)

/* "no parent" in CID and parentCID. */
#define VMDK_CID_NONE 0xffffffffu

enum vmdk_access { VMDK_RW, VMDK_RDONLY, VMDK_NOACCESS };

enum vmdk_ext_type {
	VMDK_EXT_FLAT,	     /* FLAT "file" offset: plain bytes */
	VMDK_EXT_SPARSE,     /* SPARSE "file": hosted sparse (KDMV) or COWD */
	VMDK_EXT_ZERO,	     /* ZERO: reads as zeros, no file */
	VMDK_EXT_VMFS,	     /* VMFS "file": plain bytes, ESX */
	VMDK_EXT_VMFSSPARSE, /* VMFSSPARSE "file": COWD (or KDMV) sparse */
	VMDK_EXT_SESPARSE,   /* SESPARSE "file": ESXi space-efficient sparse */
};

struct vmdk_desc_extent {
	enum vmdk_access access;
	enum vmdk_ext_type type;
	uint64_t sectors;
	char *name;	 /* NULL for ZERO */
	uint64_t offset; /* FLAT, VMFS: first sector in the file */
	unsigned line;	 /* in the descriptor, for messages */
};

struct vmdk_desc {
	unsigned version; /* 0 when absent */
	bool has_cid, has_parent_cid;
	uint32_t cid, parent_cid;
	char *create_type;   /* NULL when absent */
	char *parent_hint;   /* parentFileNameHint, or NULL */
	struct vmdk_desc_extent *ext;
	unsigned n_ext;
};

/* Parse descriptor text (len bytes; a NUL ends it early, as the padding
 * of an embedded descriptor does). 0, or -EUCLEAN / -ENOTSUP / -ENOMEM
 * with e filled ("line N: ..."). d is cleared first and must be freed
 * with vmdk_desc_free whatever the result. */
int vmdk_desc_parse(const char *text, size_t len, struct vmdk_desc *d,
		    struct vd_err *e);
void vmdk_desc_free(struct vmdk_desc *d);

/* ------------------------------------------------------------ headers */

/* Hosted sparse extent header (Virtual Disk Format 1.1,
 * "SparseExtentHeader"), little-endian, at offset 0 of the extent file (and again in the footer of
 * a stream-optimized file). */
#define VMDK4_MAGIC 0x564d444bu /* "KDMV" read as LE32 */
#define VMDK3_MAGIC 0x44574f43u /* "COWD" read as LE32 */
#define VMDK4_FLAG_NL_DETECT (1u << 0)
#define VMDK4_FLAG_RGD (1u << 1)
#define VMDK4_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK4_FLAG_COMPRESS (1u << 16)
#define VMDK4_FLAG_MARKER (1u << 17)
#define VMDK4_GD_AT_END 0xffffffffffffffffULL
#define VMDK4_COMPRESS_NONE 0
#define VMDK4_COMPRESS_DEFLATE 1
/* Stream-optimized markers: u64 value, u32 size, u32 type (when size is
 * 0); a grain marker's data follows its 12 bytes. */
#define VMDK_MARKER_EOS 0
#define VMDK_MARKER_GT 1
#define VMDK_MARKER_GD 2
#define VMDK_MARKER_FOOTER 3
#define VMDK_GRAIN_MARKER_BYTES 12u
/* GTE 1 is a zero grain when the zeroed-grain flag is set. */
#define VMDK_GTE_ZERO 1u

/* QEMU's limits: grains of at most 1 GiB (we also want a power of two),
 * at most 512 entries per grain table, grain directories of at most 32 Mi
 * entries. COWD grain tables always have 4096 entries. */
#define VMDK_MAX_GRAIN_SECTORS 0x200000u
#define VMDK4_MAX_GTES 512u
#define VMDK_MAX_GD_ENTRIES (32u << 20)
#define VMDK3_GTES 4096u
/* A compressed grain is decoded whole into per-thread buffers: 2 MiB. */
#define VMDK_MAX_COMPRESSED_GRAIN (2u << 20)

/* seSparse (ESXi 6.5+ snapshots, VMFS6), as QEMU's block/vmdk.c reads
 * it (the format has no public specification): a 512-byte constant
 * header at 0, a 512-byte volatile header, a grain directory of u64
 * entries (0: no grain table; 0x10000000_IIIIIIII: table I of the grain
 * tables area), grain tables of 4096 u64 entries (top nibble 0 with the
 * rest 0: not allocated; 1 unmapped and 2 zeroed: zeros; 3 allocated,
 * the grain index with its low 12 bits in bits 48-59 and the rest in
 * bits 0-47, counted in grains from the grains area). All sizes and
 * offsets in the headers are in sectors. */
#define VMDK_SE_CONST_MAGIC 0xcafebabeULL
#define VMDK_SE_VOLATILE_MAGIC 0xcafecafeULL
#define VMDK_SE_VERSION 0x0000000200000001ULL
#define VMDK_SE_GRAIN_SECTORS 8u
#define VMDK_SE_GT_SECTORS 64u
#define VMDK_SE_GTES (VMDK_SE_GT_SECTORS * VMDK_SECTOR / 8)

/* One sparse extent's geometry, from its header, checked against its
 * file: everything the map relies on. */
struct vmdk_sparse {
	bool cowd;	     /* VMDK3 (COWD) rather than hosted (KDMV) */
	bool se;	     /* seSparse: u64 entries, the fields below */
	uint64_t se_gt_off;  /* seSparse: first grain table (bytes) */
	uint64_t se_grains_off; /* seSparse: first grain (bytes) */
	unsigned version;
	uint32_t flags;
	uint64_t capacity;   /* sectors */
	uint64_t grain;	     /* bytes, a power of two */
	unsigned grain_bits;
	uint32_t gtes;	     /* entries per grain table */
	uint64_t gd_off;     /* bytes */
	uint64_t rgd_off;    /* bytes, 0: none */
	uint32_t gd_entries;
	uint64_t desc_off;   /* bytes, 0: no embedded descriptor */
	uint64_t desc_len;
	bool compressed, markers, zero_grain;
};

/* Parse and check the 512-byte header at the start of an extent file of
 * file_size bytes (hdr holds min(512, file_size) bytes, zero padded).
 * A stream-optimized header whose grain directory is at the end must be
 * passed again with its footer (footer = the 1536 bytes before the end
 * of the file: footer marker, footer header, end-of-stream marker);
 * otherwise footer is NULL and gd_at_end_r (if not NULL) tells whether
 * the footer is needed. name names the file in messages. 0 or -errno
 * with e filled. */
int vmdk_sparse_parse(const uint8_t *hdr, const uint8_t *footer,
		      uint64_t file_size, const char *name,
		      struct vmdk_sparse *s, bool *gd_at_end_r,
		      struct vd_err *e);

/* ------------------------------------------------------------ layer */

struct vmdk_extent {
	enum vmdk_ext_type type;    /* FLAT (also VMFS), SPARSE, ZERO */
	uint64_t start, size;	    /* guest bytes */
	struct vd_file *file;	    /* NULL for ZERO */
	bool own_file;		    /* opened here: close it */
	unsigned name_idx;	    /* descriptor extent that named file */
	uint64_t flat_off;	    /* FLAT: host offset of the first byte */
	struct vmdk_sparse sp;	    /* SPARSE */
	atomic_bool warned_rgd;	    /* logged the fallback to the RGD */
	/* For describe: the file as the descriptor names it, joined to
	 * its folder (owned when own_file; NULL for ZERO and for a lone
	 * sparse file), and the descriptor's type word ("" without one). */
	char *name;
	const char *kind;
};

struct vmdk {
	struct vmdk_extent *ext; /* sorted by start, contiguous from 0 */
	unsigned n_ext;
	bool has_cid;
	uint32_t cid, parent_cid;
	char create_type[40];
};

int vmdk_map(struct vd_layer *l, uint64_t off, uint64_t len,
	     struct vd_run *r);

#endif
