/* A bounded cache of metadata blocks (qcow2 L1 pages and L2 tables, later
 * VMDK grain tables and VHD BAT pages), one per disk and shared by all
 * its layers, so memory is bounded by one budget whatever the depth of
 * the chain. A block is keyed by its owner (a layer) and a 64-bit value,
 * usually its host offset; blocks may differ in size.
 *
 * Blocks are pinned while a caller reads them and never evicted while
 * pinned. The lock guards only the index: a block is loaded from the
 * host with the lock dropped, so one slow read never stalls the readers
 * that hit. Memory: at most the budget, plus one transient block per
 * reading thread when every cached block is pinned. */
#ifndef VD_CACHE_H
#define VD_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct vd_cache;

struct vd_cache_ref {
	const void *data;
	int slot; /* -1: not cached, freed by vd_cache_put */
};

/* Fill buf (size bytes) with the block for key; 0 or -errno. */
typedef int (*vd_cache_load_fn)(void *arg, uint64_t key, void *buf,
				size_t size);

/* budget: bytes of blocks kept; nslots: most blocks kept. */
struct vd_cache *vd_cache_new(size_t budget, unsigned nslots);
void vd_cache_free(struct vd_cache *c);

/* Find or load the block (owner, key) of size bytes and pin it; 0 or the
 * loader's -errno. A block's size must not change between calls. */
int vd_cache_get(struct vd_cache *c, const void *owner, uint64_t key,
		 size_t size, vd_cache_load_fn load, void *arg,
		 struct vd_cache_ref *ref_r);
void vd_cache_put(struct vd_cache *c, struct vd_cache_ref *ref);
/* Pin the block (owner, key) only if it is cached: 0, or -ENOENT. For a
 * writer that patches a cached block in place to match what it wrote;
 * it must keep readers of the block out meanwhile (its own lock). */
int vd_cache_peek(struct vd_cache *c, const void *owner, uint64_t key,
		  struct vd_cache_ref *ref_r);

#endif
