/* A bounded cache of fixed-size metadata blocks (qcow2 L1 pages and L2
 * tables, later VMDK grain tables and VHD BAT pages), keyed by a 64-bit
 * value, usually the block's host offset.
 *
 * Entries are pinned while a caller reads them and are never evicted while
 * pinned. The lock guards only the slot table: a block is loaded from the
 * host file with the lock dropped, so one slow read never stalls the
 * readers that hit. Memory is bounded by nslots * entry_size plus one
 * transient block per reading thread. */
#ifndef VD_CACHE_H
#define VD_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct vd_cache;

struct vd_cache_ref {
	const void *data;
	int slot; /* -1: not cached, freed by vd_cache_put */
};

/* Fill buf (entry_size bytes) with the block for key; 0 or -errno. */
typedef int (*vd_cache_load_fn)(void *arg, uint64_t key, void *buf);

struct vd_cache *vd_cache_new(size_t entry_size, unsigned nslots);
void vd_cache_free(struct vd_cache *c);

/* Find or load the block for key and pin it; 0 or the loader's -errno. */
int vd_cache_get(struct vd_cache *c, uint64_t key, vd_cache_load_fn load,
		 void *arg, struct vd_cache_ref *ref_r);
void vd_cache_put(struct vd_cache *c, struct vd_cache_ref *ref);

#endif
