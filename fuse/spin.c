/* Receiving FUSE requests: one worker at a time.
 *
 * libfuse's multi-threaded loop has every idle worker sleep in read(2) on
 * /dev/fuse, and the kernel wakes the one that has slept longest for each
 * request: a caller that asks one thing at a time (ls -l, find, cp -a)
 * has each of its requests served by another thread, woken from sleep,
 * often on the other CPU. On the 2-vCPU VMs this is measured on, those
 * wake-ups are most of a round trip.
 *
 * Here the workers take turns instead: the one whose turn it is reads
 * the device, and the others wait for the turn in the daemon (a
 * condition variable), not in the kernel, so the kernel has one reader
 * to wake, the same one each time. A metadata request (lookup,
 * attributes, xattrs, listings, open and release) is served by the
 * worker that read it, which keeps the turn and reads again after its
 * reply; anything else (file data, writes, syncs), or a request read
 * while another is already waiting, hands the turn to a waiting worker
 * first, so reads still run side by side as before; a worker back from
 * such a request reads the next at once if one is queued, as libfuse's
 * workers do, and waits for the turn otherwise. The cost: a
 * metadata request arriving while one is served waits for it (ext2/3/4
 * serve them one at a time under the filesystem's lock anyway).
 *
 * ls -l of a folder of 100,000 entries on ext4 (200,000 xattr probes,
 * each a round trip), the machine loaded (load average 7-9): 39-41 s
 * with libfuse's loop, 14 s taking turns, as fast as libfuse's
 * single-threaded loop; the daemon's CPU time 8.6 s -> 3.5 s; a round
 * trip 150 us -> 40-50 us.
 *
 * Optionally (VDMOUNT_SPIN_US=N), the worker with the turn watches the
 * device for up to N microseconds (poll(2) with no wait) before it
 * sleeps in read(2), while requests keep coming back to back: no
 * wake-up at all for the next one. Off by default: on the loaded
 * machine 50 us of watching made ls -l slower (18-25 s), taking the CPU
 * the caller needed. It stops after one watch that saw nothing, and
 * starts again only after a sleep shorter than twice N, so an idle mount
 * never spins.
 *
 * libfuse calls this receive from its own loop (fuse_session_custom_io),
 * which still starts and ends workers, splices replies and handles
 * interrupts and the end of the session.
 *
 * Off by default (VDMOUNT_RECEIVE=turns turns it on): the gains above
 * are a loaded machine's. On a quiet one (load under 2, the bench's
 * fsmeta case, one round each way) libfuse's receive was as fast or
 * faster: ls -lR of the 20,000-file tree 279 ms against 376 on vfat,
 * 1532 against 1588 on XFS, 1202 against 1452 on btrfs; cp -a within
 * noise either way; random 4 KiB reads of disk.raw the same with 4 jobs.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fuse/spin.h"

#define SPIN_DEFAULT_US 0u
#define SPIN_MAX_US 10000u
#define SPIN_THREAD_NAME "vdmount-fuse"

static uint64_t spin_ns;     /* the budget; 0: no watching */
static atomic_bool spin_hot; /* the last requests came back to back */

/* The turn to receive: one worker at a time reads the device; the
 * others wait here, not in the kernel. */
static pthread_mutex_t spin_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spin_cond = PTHREAD_COND_INITIALIZER;
static bool spin_taken; /* guarded by spin_lock */
static pthread_key_t spin_key; /* non-NULL: the calling thread has the turn */

static void spin_unlock(void *arg)
{
	(void)arg;
	pthread_mutex_unlock(&spin_lock);
}

static void spin_take(void)
{
	static __thread bool named;

	/* Workers waiting for their turn wait here, not in read(2) on the
	 * device: their name says what they are (tests/t-99-stress.sh
	 * counts idle workers by it). Not the main thread (-s): its name
	 * is the process's. */
	if (!named) {
		named = true;
		if (gettid() != getpid())
			pthread_setname_np(pthread_self(), SPIN_THREAD_NAME);
	}
	pthread_mutex_lock(&spin_lock);
	/* libfuse cancels workers waiting for a request when the session
	 * ends: one cancelled here holds the mutex again. */
	pthread_cleanup_push(spin_unlock, NULL);
	while (spin_taken)
		pthread_cond_wait(&spin_cond, &spin_lock);
	spin_taken = true;
	pthread_cleanup_pop(1);
	pthread_setspecific(spin_key, &spin_taken);
}

/* Give the turn up, to a waiting worker if there is one. Also the key's
 * destructor: a worker that ends with the turn (libfuse ends surplus
 * workers after a request) gives it up. */
static void spin_give(void *mine)
{
	(void)mine;
	pthread_mutex_lock(&spin_lock);
	spin_taken = false;
	pthread_cond_signal(&spin_cond);
	pthread_mutex_unlock(&spin_lock);
}

static void spin_pass(void)
{
	pthread_setspecific(spin_key, NULL);
	spin_give(NULL);
}

/* Whether a request waits to be read. */
static bool spin_queued(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && p.revents & POLLIN;
}

/* Whether the request in buf goes on with the turn given up: one that
 * may take long (file data, writes), or when another already waits. */
static bool spin_pass_for(const void *buf, int fd)
{
	const struct fuse_in_header *in = buf;

	switch (in->opcode) {
	case FUSE_LOOKUP:
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_GETATTR:
	case FUSE_READLINK:
	case FUSE_OPEN:
	case FUSE_RELEASE:
	case FUSE_STATFS:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_RELEASEDIR:
	case FUSE_ACCESS:
	case FUSE_INTERRUPT:
		return spin_queued(fd);
	default:
		return true;
	}
}

/* Watch fd for a request for up to the budget: 1 when one came (or the
 * device has something else to say: read tells), 0 when none did, -1
 * with errno when poll failed (EINTR: a signal, the session may be
 * ending: libfuse looks). */
static int spin_wait(int fd)
{
	uint64_t end = vd_now_ns() + spin_ns;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, 0);
		if (r)
			return r < 0 ? -1 : 1;
	} while (vd_now_ns() < end);
	return 0;
}

static ssize_t spin_read(int fd, void *buf, size_t len, void *userdata)
{
	uint64_t t0 = 0;
	ssize_t n;
	int r, err;

	(void)userdata;
	/* Back from a request whose turn it handed on: with another
	 * request already queued (parallel readers), read it at once, as
	 * libfuse's loop would, rather than wait for the turn and be woken
	 * for it. (Should another worker take that request first, this
	 * read sleeps in the kernel as libfuse's workers do: no harm.) */
	if (!pthread_getspecific(spin_key)) {
		if (spin_queued(fd))
			return read(fd, buf, len);
		spin_take();
	}
	if (spin_ns) {
		r = atomic_load(&spin_hot) ? spin_wait(fd) : 0;
		if (r < 0)
			return -1;
		if (!r) {
			atomic_store(&spin_hot, false);
			t0 = vd_now_ns();
		}
	}
	n = read(fd, buf, len);
	err = errno;
	/* Slept, but not for long: the next may come as soon. */
	if (t0 && n > 0 && vd_now_ns() - t0 < 2 * spin_ns)
		atomic_store(&spin_hot, true);
	if (n >= (ssize_t)sizeof(struct fuse_in_header) &&
	    spin_pass_for(buf, fd))
		spin_pass();
	errno = err;
	return n;
}

static ssize_t spin_writev(int fd, struct iovec *iov, int count,
			   void *userdata)
{
	(void)userdata;
	return writev(fd, iov, count);
}

static ssize_t spin_splice_send(int fdin, off_t *offin, int fdout,
				off_t *offout, size_t len, unsigned int flags,
				void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int vd_fuse_spin_start(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = spin_read,
		.writev = spin_writev,
		.splice_send = spin_splice_send,
	};
	const char *env = getenv("VDMOUNT_SPIN_US");
	unsigned long us = SPIN_DEFAULT_US;
	char *end;
	int ret;

	if (env && *env) {
		errno = 0;
		us = strtoul(env, &end, 10);
		if (*end || errno || us > SPIN_MAX_US) {
			vd_log(VD_LOG_WARN, "VDMOUNT_SPIN_US=%s: not a number "
			       "of microseconds up to %u, using %u", env,
			       SPIN_MAX_US, SPIN_DEFAULT_US);
			us = SPIN_DEFAULT_US;
		}
	}
	spin_ns = us * 1000u;
	env = getenv("VDMOUNT_RECEIVE");
	if (!env || !*env || !strcmp(env, "libfuse"))
		return 0;
	if (strcmp(env, "turns")) {
		vd_log(VD_LOG_WARN, "VDMOUNT_RECEIVE=%s: neither libfuse nor "
		       "turns, using libfuse", env);
		return 0;
	}
	ret = -pthread_key_create(&spin_key, spin_give);
	if (ret) {
		vd_log(VD_LOG_ERR, "cannot start the FUSE receive: %s",
		       strerror(-ret));
		return ret;
	}
	ret = fuse_session_custom_io(se, &io, fuse_session_fd(se));
	if (ret)
		vd_log(VD_LOG_ERR, "cannot start the FUSE receive: %s",
		       strerror(-ret));
	return ret;
}
