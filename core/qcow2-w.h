/* The qcow2 writer's state and the helpers its files share:
 * qcow2-write.c (the write path, open and close), qcow2-refcount.c
 * (refcounts and allocation), qcow2-check.c (the check at a writable
 * open). See qcow2-write.c for the design. */
#ifndef VD_QCOW2_W_H
#define VD_QCOW2_W_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

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
/* Write-behind (qcow2-write.c, qw_behind): the disk writes of a run of
 * writes of at least QW_BEHIND_MIN bytes each, each going on where the
 * last ended, start once QW_BEHIND bytes of it have not. */
#define QW_BEHIND (4u << 20)
#define QW_BEHIND_MIN (256u << 10)

struct qw_dirty {
	uint64_t key;		   /* L2 table offset, or tagged L1 page */
	struct vd_cache_ref ref;   /* pinned while it is changed */
};

/* Refcount blocks held in memory (qcow2-refcount.c): at most this many,
 * and bytes (at least one block whatever its size). */
#define QW_RB_SLOTS 8
#define QW_RB_BYTES (1u << 20)

struct qw_rb {
	uint64_t r;	  /* its refcount table index */
	uint64_t off;	  /* its host offset (w->rt[r]) */
	uint8_t *data;	  /* a cluster's worth, or NULL */
	bool held;	  /* data is the block r */
	size_t lo, hi;	  /* bytes changed and not yet written: [lo, hi) */
	uint64_t stamp;	  /* when last used */
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
	pthread_mutex_t behind_lock;
	uint64_t behind_done, behind_end; /* guarded by behind_lock */

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
	int fresh_dir;	      /* vd_open_opts.fresh, not yet synced: the
			       * file's folder (open), else -1 */
	struct qw_dirty dirty[QW_MAX_DIRTY]; /* tables to write back */
	unsigned n_dirty;
	size_t dirty_bytes;
	bool new_l2;	      /* one of them is a new L2 table */
	uint64_t rel[QW_MAX_REL]; /* old entries to release after */
	unsigned n_rel;
	struct qw_rb rb[QW_RB_SLOTS]; /* refcount blocks held */
	uint64_t rb_clock;
};

/* Write exactly len bytes at off of the layer's file (growing its
 * size as seen by reads); the same from a vector of cnt pieces. 0 or
 * -errno. */
int qcow2_w_pwrite(struct vd_layer *l, const void *buf, size_t len,
		   uint64_t off);
int qcow2_w_pwritev(struct vd_layer *l, struct iovec *iov, int cnt,
		    uint64_t off);
/* Make everything written so far durable: the refcount blocks changed in
 * memory are written, then the file is fdatasynced. Caller holds
 * w->meta. 0 or -errno. */
int qcow2_w_sync(struct vd_layer *l);
/* Free the refcount blocks held (close): what was changed and not
 * written is dropped. */
void qcow2_rb_drop(struct qcow2_w *w);

/* Refcount entry i of a block of entries of bits bits. */
uint64_t qcow2_rc_get(const uint8_t *blk, uint64_t i, unsigned bits);
/* Set host cluster c's refcount to v (set) or add v to it, making
 * refcount blocks and growing the table as needed. Caller holds
 * w->meta; depth 0. */
int qcow2_rc_change(struct vd_layer *l, uint64_t c, bool set, int64_t v,
		    unsigned depth);
/* A new host cluster, counted. Caller holds w->meta. (Undone by
 * qcow2_rc_change(l, host >> cluster_bits, true, 0, 0).) */
int qcow2_alloc(struct vd_layer *l, uint64_t *host_r);

/* The check at a writable open: fills w's refcount table, reuse map
 * and end, or fails with e naming what does not add up. */
int qcow2_w_check(struct vd_layer *l, const uint8_t *hdr, struct vd_err *e);

#endif
