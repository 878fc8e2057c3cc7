/* volumes/lvm-*.c — LVM2's on-disk format, shared between its files.
 *
 *   lvm-label.c  the PV label, the PV header and the metadata areas: which
 *                copy of the metadata text to believe (pure: reads through
 *                a callback, so the fuzzer drives it on a buffer);
 *   lvm-cfg.c    the metadata text's syntax (LVM's config format: a
 *                tree of sections, keys and values; pure);
 *   lvm-text.c   the VG that tree describes (pure);
 *   lvm-thin.c   a thin pool's metadata (dm-thin's btrees);
 *   lvm.c        the assembler: PVs -> VGs -> LVs as mapped volumes.
 *
 * Sources: LVM2's lib/format_text/layout.h and format-text.c (label,
 * pv_header, mda_header, raw_locn), lib/format_text/import_vsn1.c and
 * export.c (the text), the kernel's drivers/md/dm-thin-metadata.c and
 * persistent-data/dm-btree*.c (thin pools). */
#ifndef VD_LVM_INTERNAL_H
#define VD_LVM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define LVM_SECTOR 512
/* The label lies in one of the first four sectors (LABEL_SCAN_SECTORS). */
#define LVM_LABEL_SECTORS 4
/* A PV or VG UUID: 32 characters, shown in groups as 6-4-4-4-4-4-6. */
#define LVM_ID_LEN 32
#define LVM_ID_TEXT 39
/* Metadata areas read per PV (LVM writes at most two). */
#define LVM_MAX_MDAS 2
/* The metadata text we accept (LVM's default area is 1 MiB; a VG of a
 * few thousand LVs stays well under this). */
#define LVM_TEXT_MAX (8u << 20)

/* ---- lvm-label.c */

/* Reads len bytes at off of the device (a PV), 0 or -errno. */
typedef int (*lvm_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

struct lvm_pv_label {
	unsigned sector;	   /* where the label was found, 0-3 */
	char uuid[LVM_ID_LEN + 1]; /* the PV's UUID, without hyphens */
	uint64_t dev_size;	   /* bytes, as the header records */
	uint64_t data_off;	   /* the first data area (bytes; pe_start) */
	unsigned n_mda;
	struct {
		uint64_t off, size; /* bytes from the device's start */
	} mda[LVM_MAX_MDAS];
};

/* Whether one of the first four sectors (the first 2048 bytes, n of
 * them given) holds an LVM2 label with a good CRC; its sector or -1. */
int lvm_label_find(const uint8_t *buf, size_t n);

/* The label and PV header of a device of dev_len bytes. 0, -ENOENT (no
 * label), -EUCLEAN (a damaged header, e filled), -EIO. */
int lvm_label_read(lvm_read_fn rd, void *ctx, uint64_t dev_len,
		   struct lvm_pv_label *l, struct vd_err *e);

/* The committed metadata text of area i of l: a NUL-terminated copy
 * (free()), *len_r its length without the NUL. 0, -ENOENT (area empty
 * or ignored), -EUCLEAN (e filled: bad magic, CRC, bounds), -ENOMEM,
 * -EIO. */
int lvm_mda_read(lvm_read_fn rd, void *ctx, uint64_t dev_len,
		 const struct lvm_pv_label *l, unsigned i, char **text_r,
		 size_t *len_r, struct vd_err *e);

/* LVM's CRC: CRC-32 (reflected 0xedb88320) from INITIAL_CRC, no final
 * inversion. */
#define LVM_INITIAL_CRC 0xf597a6cfu
uint32_t lvm_crc(uint32_t crc, const void *buf, size_t len);

/* ---- lvm-cfg.c: the config tree */

/* Hard limits of the parser: a hostile text cannot take more memory or
 * time than these allow. */
#define LVM_CFG_MAX_LINE 65536	  /* bytes in one line */
#define LVM_CFG_MAX_DEPTH 16	  /* sections and lists nested */
#define LVM_CFG_MAX_NODES 262144 /* keys, sections and values */

enum lvm_cfg_type { LVM_CFG_SECTION, LVM_CFG_INT, LVM_CFG_FLOAT,
		    LVM_CFG_STR, LVM_CFG_LIST };

/* One node: a section (children: its items), a key = value (the value
 * is the node itself, or a list whose children are its values), or a
 * value inside a list (key NULL). Nodes are in one array; links are
 * indexes, 0 meaning none (node 0 is the root section). */
struct lvm_cfg_node {
	const char *key;
	enum lvm_cfg_type type;
	uint32_t child, next;
	int64_t i;	/* LVM_CFG_INT */
	const char *s;	/* LVM_CFG_STR */
};

struct lvm_cfg {
	struct lvm_cfg_node *node;
	uint32_t n;
	char *arena; /* keys and decoded strings */
};

/* Parses text (len bytes; need not be NUL-terminated). 0, or -EUCLEAN
 * with e naming the line and what was wrong, -ENOMEM. */
int lvm_cfg_parse(const char *text, size_t len, struct lvm_cfg *c,
		  struct vd_err *e);
void lvm_cfg_free(struct lvm_cfg *c);
/* The child of section (or root, 0) named key, or NULL. */
const struct lvm_cfg_node *lvm_cfg_get(const struct lvm_cfg *c,
				       const struct lvm_cfg_node *sec,
				       const char *key);

/* ---- lvm-text.c: the VG model */

#define LVM_MAX_PVS 4096
#define LVM_MAX_LVS 8192
#define LVM_MAX_SEGS 65536  /* segments in all LVs of a VG */
#define LVM_MAX_AREAS 65536 /* areas in all segments of a VG */
/* Stripes, mirror legs or raid images of one segment. */
#define LVM_MAX_STRIPES 128

/* LV status flags (import_vsn1.c's status table). */
enum {
	LVM_LV_READ = 1u << 0,
	LVM_LV_WRITE = 1u << 1,
	LVM_LV_VISIBLE = 1u << 2,
	LVM_LV_REBUILD = 1u << 3,
	LVM_LV_NOTSYNCED = 1u << 4,
	LVM_LV_PVMOVE = 1u << 5,
	LVM_LV_LOCKED = 1u << 6,
};

enum lvm_seg_kind {
	LVM_SEG_OTHER,	/* a type we do not read (raid5, cache, ...) */
	LVM_SEG_STRIPED, /* "striped" (linear is one stripe) */
	LVM_SEG_ZERO,	/* "zero" */
	LVM_SEG_MIRROR,	/* "mirror" (also pvmove) */
	LVM_SEG_RAID1,	/* "raid1" */
	LVM_SEG_THIN_POOL,
	LVM_SEG_THIN,
	LVM_SEG_SNAPSHOT, /* old-style COW snapshot */
};

/* Where one stripe or leg lies: a PV (pv >= 0) or an LV (lv >= 0), from
 * extent start. For raid1, meta is the leg's _rmeta LV (or -1). */
struct lvm_area {
	int pv, lv, meta;
	uint64_t start;
};

struct lvm_seg {
	uint64_t start_extent, extent_count;
	const char *type;
	enum lvm_seg_kind kind;
	uint32_t stripe_count;	/* stripes or legs: n_area */
	uint64_t stripe_size;	/* sectors */
	uint32_t n_area, area0; /* area0: index in the VG's areas */
	struct lvm_area *area;
	/* thin-pool: metadata and pool (data) LVs, chunk size (sectors) */
	int meta_lv, data_lv;
	uint64_t chunk_size, transaction_id;
	/* thin: its pool, device id, origin and external origin (or -1) */
	int pool_lv, origin_lv, ext_origin_lv;
	uint64_t device_id;
	/* snapshot: the COW store LV, origin LV */
	int cow_lv;
};

struct lvm_lv {
	const char *name;
	const char *id;
	unsigned status;
	uint32_t n_seg, seg0; /* seg0: index in the VG's segs */
	struct lvm_seg *seg;
	uint64_t extents; /* the sum of the segments' extent_count */
	/* Why the model cannot describe this LV (a field missing, a name
	 * that refers to nothing); "" when it can. */
	char bad[160];
};

struct lvm_pv_meta {
	const char *key;		/* "pv0" */
	const char *id;			/* as written, with hyphens */
	char uuid[LVM_ID_LEN + 1];	/* without */
	uint64_t dev_size, pe_start, pe_count; /* sectors, sectors, extents */
};

struct lvm_vg {
	struct lvm_cfg cfg; /* the strings below point into it */
	const char *name, *id;
	char uuid[LVM_ID_LEN + 1];
	uint64_t seqno, extent_size; /* extent_size in sectors */
	uint32_t n_pv, n_lv;
	struct lvm_pv_meta *pv;
	struct lvm_lv *lv;
	struct lvm_seg *segs;	/* all segments, n_segs */
	struct lvm_area *areas; /* all areas */
	uint32_t n_segs, n_areas;
};

/* The VG described by a metadata text. 0, or -EUCLEAN with e filled
 * (not LVM2 text, no VG, a VG-level field missing or out of range),
 * -ENOMEM. Problems with one LV are kept in that LV's bad. */
int lvm_vg_parse(const char *text, size_t len, struct lvm_vg **vg_r,
		 struct vd_err *e);
void lvm_vg_free(struct lvm_vg *vg);
/* The LV named name, or -1. */
int lvm_vg_find_lv(const struct lvm_vg *vg, const char *name);
/* LVM's id without its hyphens into out (LVM_ID_LEN + 1); false when
 * it is not 32 characters of [A-Za-z0-9] once the hyphens are gone. */
bool lvm_id_plain(const char *id, char *out);

/* ---- lvm-thin.c: a thin pool's metadata */

struct vd_vol;
struct lvm_thin_pool;

/* Opens the pool whose metadata is volume meta and data volume data,
 * chunk (bytes) as LVM's metadata records. 0, or -errno with e filled
 * (-EUCLEAN: a damaged superblock, -ENOTSUP: a feature flag). An
 * all-zero superblock (never activated) gives a pool with no devices
 * (*fresh_r set). */
int lvm_thin_open(const struct vd_vol *meta, const struct vd_vol *data,
		  uint64_t chunk, const char *name,
		  struct lvm_thin_pool **p_r, bool *fresh_r, struct vd_err *e);
void lvm_thin_close(struct lvm_thin_pool *p);
/* Whether thin device dev is in the pool (0), -ENOENT, or -errno. */
int lvm_thin_has_dev(struct lvm_thin_pool *p, uint64_t dev);
/* The pool's transaction id as its superblock holds it. */
uint64_t lvm_thin_transaction(const struct lvm_thin_pool *p);
/* Where the bytes of thin device dev at off (at most len of them, at
 * least 1) lie: in the data volume (*data_r) at *pos_r, or nowhere
 * (zeros). *len_r: how many bytes share that answer. 0 or -EIO
 * (logged). */
int lvm_thin_map(struct lvm_thin_pool *p, uint64_t dev, uint64_t off,
		 uint64_t len, bool *data_r, uint64_t *pos_r,
		 uint64_t *len_r);
/* The bytes a data block takes (the pool's block size). */
uint64_t lvm_thin_block_bytes(const struct lvm_thin_pool *p);

#endif
