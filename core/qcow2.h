/* qcow2 driver internals, shared by qcow2.c (open: header, extensions,
 * snapshots) and qcow2-map.c (the map through L1/L2 tables).
 * Field offsets and rules: QEMU's docs/interop/qcow2.txt. */
#ifndef VD_QCOW2_H
#define VD_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cache.h"
#include "core/layer.h"

struct qcow2_crypt;

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Incompatible feature bits (header offset 72). */
#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1fULL
/* Compatible feature bit 0 (offset 80); autoclear bit 1 (offset 88). */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)

/* L1 entry: bits 9-55 the L2 table's offset. L2 entry: bits 9-55 the
 * cluster's offset, bit 62 compressed, bit 63 "copied" (refcount 1). */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_ZERO 1ULL

/* Implementation limits, as QEMU's: an L1 table of at most 32 MiB and
 * 65536 snapshots. */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u

/* Cache keys: L2 tables by host offset (< 2^56); L1 pages, of 4 KiB
 * whatever the cluster size, by index, tagged. */
#define QCOW2_L1_PAGE_KEY (1ULL << 63)
#define QCOW2_L1_PAGE_BITS 12

struct qcow2 {
	unsigned version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;	 /* log2(entries per L2 table) */
	unsigned entry_bytes;	 /* 8, or 16 with extended L2 entries */
	bool ext_l2;
	unsigned sc_bits;	 /* log2(subcluster size) with extended L2 */
	uint64_t l1_off;	 /* active table, or the snapshot's */
	uint32_t l1_entries;
	uint64_t incompat;
	struct vd_file *data;	 /* where guest clusters live */
	bool ext_data;		 /* data is an external data file */
	unsigned compression;	 /* 0 zlib (raw deflate), 1 zstd */
	unsigned csize_shift;	 /* compressed descriptor layout */
	uint64_t csize_mask;
	uint64_t coff_mask;
	/* Kept from the header for describe (qcow2.c) only. */
	uint64_t compat_features; /* offset 80 (version 3) */
	uint64_t autoclear;	  /* offset 88 (version 3) */
	unsigned refcount_order;  /* offset 96; 4 in version 2 */
	uint32_t nb_snapshots;	  /* offset 60 */
	uint64_t snapshots_off;	  /* offset 64 */
	char *data_file_name;	  /* data file extension, or NULL */
	/* Writing state (qcow2-write.c), NULL unless opened writable. */
	struct qcow2_w *w;
	/* An encrypted image's cipher (qcow2-crypt.c), or NULL. */
	struct qcow2_crypt *crypt;
};

int qcow2_map(struct vd_layer *l, uint64_t off, uint64_t len,
	      struct vd_run *r);
/* The cache loader of L1 pages and L2 tables (qcow2-map.c). */
int qcow2_table_load(void *arg, uint64_t key, void *buf, size_t size);

/* Writing (qcow2-write.c): set up at open when asked (the image checked,
 * a corrupt one refused), torn down at close (after a flush). */
int qcow2_w_open(struct vd_layer *l, const struct vd_layer_opts *o,
		 struct vd_err *e);
void qcow2_w_close(struct vd_layer *l);
int qcow2_write(struct vd_layer *l, const void *buf, size_t len,
		uint64_t off);
int qcow2_flush(struct vd_layer *l);
/* Held for reading while a map looks at cached tables (q->w only). */
void qcow2_w_rdlock(struct qcow2 *q);
void qcow2_w_unlock(struct qcow2 *q);

int qcow2_decompress(struct vd_layer *l, const uint8_t *in, size_t in_len,
		     uint8_t *out, size_t out_len);

/* One allocation unit's descriptor, decoded. */
struct qcow2_unit {
	enum vd_run_type type;
	uint64_t host;	   /* DATA: host offset of the cluster */
	uint64_t coff;	   /* COMPRESSED: input offset and length */
	uint64_t clen;
};

/* Encryption (qcow2-crypt.c). method: header offset 32 (1 AES, 2 LUKS);
 * ext: the full encryption header extension's 16 bytes, or NULL. */
#define QCOW2_EXT_CRYPT 0x0537be77u
int qcow2_crypt_open(struct vd_layer *l, struct qcow2 *q, uint32_t method,
		     const uint8_t *ext, uint32_t ext_len,
		     struct vd_keys *keys, struct vd_err *e);
void qcow2_crypt_free(struct qcow2_crypt *c);
/* An allocated unit of an encrypted image becomes a coded one (whole
 * clusters, decrypted by qcow2_crypt_decode); compressed clusters are
 * refused, as qemu refuses them. 0 or -EIO (logged). */
int qcow2_crypt_unit(struct vd_layer *l, struct qcow2 *q, uint64_t guest,
		     struct qcow2_unit *u);
int qcow2_crypt_decode(struct vd_layer *l, const struct vd_run *r,
		       const uint8_t *in, uint8_t *out);

#endif
