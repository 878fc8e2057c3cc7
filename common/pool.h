/* A few helper threads that share the CPU-bound part of one request
 * (decoding compressed clusters) with the thread that serves it, so a
 * single reader that has one request in flight still uses every core.
 *
 * vd_pool_run runs fn(arg, 0) ... fn(arg, n - 1), each exactly once, on
 * the calling thread and on whichever helpers are idle, and returns when
 * all are done. The caller always takes part, so a batch completes even
 * when every helper is busy with other batches (or there are none: one
 * core, or the helpers could not be started). Helpers start on first use
 * (one fewer than the cores online, at most VD_POOL_MAX) and live until
 * the process exits or vd_pool_stop; a forked child starts its own.
 * An idle helper watches for the next batch for a millisecond before it
 * sleeps, so the batches of a streaming reader find it awake. */
#ifndef VD_POOL_H
#define VD_POOL_H

#define VD_POOL_MAX 7

/* The first nonzero value fn returned, or 0. */
int vd_pool_run(unsigned n, int (*fn)(void *arg, unsigned i), void *arg);

/* End the helpers and wait until they are gone; the next vd_pool_run
 * starts new ones. For a process about to fork() and go on in the child
 * only (vdmount daemonising after the image was opened): a thread alive
 * at fork() does not exist in the child, yet the sanitizers' list of
 * threads, copied with the memory, still says it runs. Not to be called
 * by two threads at once. */
void vd_pool_stop(void);

#endif
