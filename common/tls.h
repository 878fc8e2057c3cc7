/* Per-thread state that is created on first use and freed when its
 * thread ends (or on request), e.g. decoder contexts and scratch buffers
 * of the read path, so parallel reads never share them. */
#ifndef VD_TLS_H
#define VD_TLS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct vd_tls {
	pthread_mutex_t lock; /* guards creating key */
	atomic_bool ready;
	pthread_key_t key;
	size_t size;		    /* bytes, zeroed on creation */
	void (*destroy)(void *state); /* frees what state holds and state */
};

#define VD_TLS_INIT(type, destroy_fn)                                      \
	{ PTHREAD_MUTEX_INITIALIZER, false, 0, sizeof(type), destroy_fn }

/* The calling thread's state, or NULL when out of memory. */
void *vd_tls_get(struct vd_tls *t);
/* Free the calling thread's state now. */
void vd_tls_clear(struct vd_tls *t);

#endif
