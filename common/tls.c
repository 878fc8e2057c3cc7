#include "common/tls.h"

#include <stdbool.h>
#include <stdlib.h>

static bool tls_ready(struct vd_tls *t)
{
	if (atomic_load_explicit(&t->ready, memory_order_acquire))
		return true;
	pthread_mutex_lock(&t->lock);
	if (!atomic_load_explicit(&t->ready, memory_order_relaxed) &&
	    !pthread_key_create(&t->key, t->destroy))
		atomic_store_explicit(&t->ready, true, memory_order_release);
	pthread_mutex_unlock(&t->lock);
	return atomic_load_explicit(&t->ready, memory_order_acquire);
}

void *vd_tls_get(struct vd_tls *t)
{
	void *s;

	if (!tls_ready(t))
		return NULL;
	s = pthread_getspecific(t->key);
	if (!s) {
		s = calloc(1, t->size);
		if (s && pthread_setspecific(t->key, s)) {
			free(s);
			s = NULL;
		}
	}
	return s;
}

void vd_tls_clear(struct vd_tls *t)
{
	void *s;

	if (!tls_ready(t))
		return;
	s = pthread_getspecific(t->key);
	if (s) {
		pthread_setspecific(t->key, NULL);
		t->destroy(s);
	}
}
