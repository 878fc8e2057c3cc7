#include "common/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* Hash buckets; slots are chained through next. */
#define CACHE_BUCKETS 256

struct vd_cache_slot {
	const void *owner;
	uint64_t key;
	void *data;	/* NULL: free slot */
	size_t size;
	unsigned pins;	/* readers holding the block; > 0 blocks eviction */
	uint64_t stamp;	/* last use, for LRU */
	int next;	/* next slot in the bucket, or -1 */
};

struct vd_cache {
	pthread_mutex_t lock; /* guards everything below */
	size_t budget, used;
	unsigned nslots;
	uint64_t clock;
	int bucket[CACHE_BUCKETS];
	struct vd_cache_slot slots[];
};

static unsigned cache_hash(const void *owner, uint64_t key)
{
	uint64_t h = key ^ ((uint64_t)(uintptr_t)owner * 0x9e3779b97f4a7c15ULL);

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return (unsigned)(h >> 56) % CACHE_BUCKETS;
}

struct vd_cache *vd_cache_new(size_t budget, unsigned nslots)
{
	struct vd_cache *c;

	c = calloc(1, sizeof(*c) + nslots * sizeof(c->slots[0]));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->budget = budget;
	c->nslots = nslots;
	for (unsigned i = 0; i < CACHE_BUCKETS; i++)
		c->bucket[i] = -1;
	return c;
}

void vd_cache_free(struct vd_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nslots; i++)
		free(c->slots[i].data);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Caller holds c->lock. */
static int cache_find(struct vd_cache *c, const void *owner, uint64_t key)
{
	int i = c->bucket[cache_hash(owner, key)];

	/* Ends: a bucket chains distinct slots, at most nslots of them. */
	while (i >= 0 && !(c->slots[i].owner == owner && c->slots[i].key == key))
		i = c->slots[i].next;
	return i;
}

/* Caller holds c->lock. Unlink slot i and free its block. */
static void cache_drop(struct vd_cache *c, int i)
{
	struct vd_cache_slot *s = &c->slots[i];
	int *p = &c->bucket[cache_hash(s->owner, s->key)];

	while (*p != i)
		p = &c->slots[*p].next;
	*p = s->next;
	c->used -= s->size;
	free(s->data);
	s->data = NULL;
	s->owner = NULL;
}

/* Caller holds c->lock. Make room for size more bytes and find a free
 * slot, evicting least recently used unpinned blocks; -1 if the pinned
 * blocks leave no room. */
static int cache_make_room(struct vd_cache *c, size_t size)
{
	int free_slot = -1;

	if (size > c->budget)
		return -1;
	/* Ends: each pass frees a block or stops. */
	for (;;) {
		int lru = -1;

		free_slot = -1;
		for (unsigned i = 0; i < c->nslots; i++) {
			struct vd_cache_slot *s = &c->slots[i];

			if (!s->data) {
				if (free_slot < 0)
					free_slot = (int)i;
			} else if (!s->pins &&
				   (lru < 0 || s->stamp < c->slots[lru].stamp)) {
				lru = (int)i;
			}
		}
		if (free_slot >= 0 && c->used + size <= c->budget)
			return free_slot;
		if (lru < 0)
			return -1;
		cache_drop(c, lru);
	}
}

static void cache_pin(struct vd_cache *c, int i, struct vd_cache_ref *ref)
{
	c->slots[i].pins++;
	c->slots[i].stamp = ++c->clock;
	ref->data = c->slots[i].data;
	ref->slot = i;
}

int vd_cache_get(struct vd_cache *c, const void *owner, uint64_t key,
		 size_t size, vd_cache_load_fn load, void *arg,
		 struct vd_cache_ref *ref_r)
{
	struct vd_cache_slot *s;
	unsigned b;
	void *buf;
	int i, ret;

	pthread_mutex_lock(&c->lock);
	i = cache_find(c, owner, key);
	if (i >= 0) {
		cache_pin(c, i, ref_r);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	ret = load(arg, key, buf, size);
	if (ret) {
		free(buf);
		return ret;
	}

	pthread_mutex_lock(&c->lock);
	i = cache_find(c, owner, key); /* loaded by another reader meanwhile? */
	if (i >= 0) {
		free(buf);
		cache_pin(c, i, ref_r);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	i = cache_make_room(c, size);
	if (i < 0) {
		/* No room beside pinned blocks: an uncached block. */
		pthread_mutex_unlock(&c->lock);
		ref_r->data = buf;
		ref_r->slot = -1;
		return 0;
	}
	s = &c->slots[i];
	s->owner = owner;
	s->key = key;
	s->data = buf;
	s->size = size;
	s->pins = 0;
	b = cache_hash(owner, key);
	s->next = c->bucket[b];
	c->bucket[b] = i;
	c->used += size;
	cache_pin(c, i, ref_r);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void vd_cache_put(struct vd_cache *c, struct vd_cache_ref *ref)
{
	if (!ref->data)
		return;
	if (ref->slot < 0) {
		free((void *)ref->data);
	} else {
		pthread_mutex_lock(&c->lock);
		c->slots[ref->slot].pins--;
		pthread_mutex_unlock(&c->lock);
	}
	ref->data = NULL;
}

int vd_cache_peek(struct vd_cache *c, const void *owner, uint64_t key,
		  struct vd_cache_ref *ref_r)
{
	int i;

	pthread_mutex_lock(&c->lock);
	i = cache_find(c, owner, key);
	if (i >= 0)
		cache_pin(c, i, ref_r);
	pthread_mutex_unlock(&c->lock);
	return i >= 0 ? 0 : -ENOENT;
}
