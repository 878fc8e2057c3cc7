#include "common/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct vd_cache_slot {
	uint64_t key;
	void *data;	 /* NULL: empty slot */
	unsigned pins;	 /* readers holding the block; > 0 blocks eviction */
	uint64_t stamp;	 /* last use, for LRU */
};

struct vd_cache {
	pthread_mutex_t lock; /* guards slots[] and clock */
	size_t entry_size;
	unsigned nslots;
	uint64_t clock;
	struct vd_cache_slot slots[];
};

struct vd_cache *vd_cache_new(size_t entry_size, unsigned nslots)
{
	struct vd_cache *c;

	c = calloc(1, sizeof(*c) + nslots * sizeof(c->slots[0]));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->entry_size = entry_size;
	c->nslots = nslots;
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
static int cache_find(struct vd_cache *c, uint64_t key)
{
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->slots[i].data && c->slots[i].key == key)
			return (int)i;
	return -1;
}

/* Caller holds c->lock. An empty slot, else the least recently used
 * unpinned one, else -1. */
static int cache_victim(struct vd_cache *c)
{
	int best = -1;

	for (unsigned i = 0; i < c->nslots; i++) {
		struct vd_cache_slot *s = &c->slots[i];

		if (!s->data)
			return (int)i;
		if (s->pins == 0 &&
		    (best < 0 || s->stamp < c->slots[best].stamp))
			best = (int)i;
	}
	return best;
}

static void cache_pin(struct vd_cache *c, int i, struct vd_cache_ref *ref)
{
	c->slots[i].pins++;
	c->slots[i].stamp = ++c->clock;
	ref->data = c->slots[i].data;
	ref->slot = i;
}

int vd_cache_get(struct vd_cache *c, uint64_t key, vd_cache_load_fn load,
		 void *arg, struct vd_cache_ref *ref_r)
{
	void *buf;
	int i, ret;

	pthread_mutex_lock(&c->lock);
	i = cache_find(c, key);
	if (i >= 0) {
		cache_pin(c, i, ref_r);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	buf = malloc(c->entry_size);
	if (!buf)
		return -ENOMEM;
	ret = load(arg, key, buf);
	if (ret) {
		free(buf);
		return ret;
	}

	pthread_mutex_lock(&c->lock);
	i = cache_find(c, key); /* another reader may have loaded it meanwhile */
	if (i >= 0) {
		free(buf);
	} else {
		i = cache_victim(c);
		if (i < 0) {
			/* Every slot pinned: hand out an uncached block. */
			pthread_mutex_unlock(&c->lock);
			ref_r->data = buf;
			ref_r->slot = -1;
			return 0;
		}
		free(c->slots[i].data);
		c->slots[i].data = buf;
		c->slots[i].key = key;
		c->slots[i].pins = 0;
	}
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
