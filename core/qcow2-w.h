/* The qcow2 writer's state and the helpers its files share:
 * qcow2-write.c (the write path, open and close), qcow2-refcount.c
 * (refcounts and allocation), qcow2-check.c (the check at a writable
 * open). See qcow2-write.c for the design. */
#ifndef VD_QCOW2_W_H
#define VD_QCOW2_W_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/qcow2.h"

#define QW_LOG(fmt, ...)                                                   \
	vd_log(VD_LOG_ERR, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

/* QEMU's limit on the refcount table (QCOW_MAX_REFTABLE_SIZE). */
#define QW_MAX_RT_BYTES (8u << 20)
/* Refcount blocks that need refcount blocks: at most this deep. */
#define QW_MAX_RC_DEPTH 4

/* Tables changed in the cache and not yet on disk: at most this many,
 * and bytes; releases waiting for them. */
#define QW_MAX_DIRTY 64
#define QW_MAX_DIRTY_BYTES (8u << 20)
#define QW_MAX_REL 256

struct qw_dirty {
	uint64_t key;		   /* L2 table offset, or tagged L1 page */
	struct vd_cache_ref ref;   /* pinned while it is changed */
};

struct qw_busy {
	uint64_t first, last; /* guest cluster indexes */
	struct qw_busy *next;
};

struct qcow2_w {
	pthread_rwlock_t tables; /* see qcow2-write.c */
	pthread_mutex_t meta;	 /* guards everything below but busy */
	pthread_mutex_t busy_lock;
	pthread_cond_t busy_cond;
	struct qw_busy *busy; /* guarded by busy_lock */

	uint64_t rt_off;      /* refcount table: header offset 48 */
	uint32_t rt_clusters; /* header offset 56 */
	uint64_t rt_entries;
	uint64_t *rt;	      /* its entries, in memory */
	unsigned rc_bits;     /* 1 << refcount_order */
	unsigned rb_shift;    /* log2(refcounts per block) */
	uint64_t end;	      /* first host cluster index past the file */
	uint8_t *reuse;	      /* bitmap: free when opened, not taken yet */
	uint64_t n_reuse;     /* bits in reuse */
	uint64_t reuse_hint;  /* no bit is set below it */
	bool touched;	      /* the file was written since the open */
	struct qw_dirty dirty[QW_MAX_DIRTY]; /* tables to write back */
	unsigned n_dirty;
	size_t dirty_bytes;
	bool new_l2;	      /* one of them is a new L2 table */
	uint64_t rel[QW_MAX_REL]; /* old entries to release after */
	unsigned n_rel;
};

/* Write exactly len bytes at off of the layer's file (growing its
 * size as seen by reads); fdatasync it. 0 or -errno. */
int qcow2_w_pwrite(struct vd_layer *l, const void *buf, size_t len,
		   uint64_t off);
int qcow2_w_sync(struct vd_layer *l);

/* Refcount entry i of a block of entries of bits bits. */
uint64_t qcow2_rc_get(const uint8_t *blk, uint64_t i, unsigned bits);
/* Set host cluster c's refcount to v (set) or add v to it, making
 * refcount blocks and growing the table as needed. Caller holds
 * w->meta; depth 0. */
int qcow2_rc_change(struct vd_layer *l, uint64_t c, bool set, int64_t v,
		    unsigned depth);
/* A new host cluster, counted (caller holds w->meta), and its undoing
 * (takes w->meta). */
int qcow2_alloc(struct vd_layer *l, uint64_t *host_r);
void qcow2_unalloc(struct vd_layer *l, uint64_t host);

/* The check at a writable open: fills w's refcount table, reuse map
 * and end, or fails with e naming what does not add up. */
int qcow2_w_check(struct vd_layer *l, const uint8_t *hdr, struct vd_err *e);

#endif
