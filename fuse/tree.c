/* The tree a person sees, on the libfuse3 low-level API: the namespace of
 * ns/ns.h (disk.raw, pN.raw, pN/, fs/), or, when the mountpoint is a
 * regular file, the disk itself as the root.
 *
 * FUSE inode numbers are the namespace's numbers, computed and never
 * stored, so lookups need no table and forget has nothing to do.
 * The image does not change under a read-only mount, so entries,
 * attributes and directory listings are cached for a long time and
 * page-cache contents are kept across opens. In a writable mount the raw
 * files' bytes change, and so do the files of guest filesystems that can
 * be written (ext2/3/4): those are cached only briefly (TREE_RW_TIMEOUT).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/tls.h"
#include "common/util.h"
#include "fuse/tree.h"

#define VD_TIMEOUT 86400.0

#ifndef FOPEN_PARALLEL_DIRECT_WRITES
#define FOPEN_PARALLEL_DIRECT_WRITES (1 << 6) /* Linux 6.2's <linux/fuse.h> */
#endif

/* Pieces one read of disk.raw or pN.raw may be described with (see
 * vd_disk_read_vec); past them the rest is copied. A 1 MiB read of a
 * 64 KiB-cluster image alternating data and holes needs 16. */
#define TREE_MAX_SEGS 64
/* The largest read request: a spliced reply must fit in one pipe, which
 * an unprivileged process can grow to 1 MiB (fs.pipe-max-size), and
 * libfuse wants a page per piece besides the data. */
#define TREE_MAX_READ VD_FUSE_MAX_READ
/* A sequential reader has the host reads of the next TREE_AHEAD bytes
 * started for it (vd_ns_prefetch), TREE_AHEAD_STEP at a time. The host
 * disk of these VMs takes ~5 ms for each request of a few MiB however
 * many are queued, so a cold copy goes as fast as requests are in
 * flight; the kernel's own readahead of the host file kept one or two.
 * Reads count as sequential within TREE_SEQ_SLACK of where the last
 * ended: the kernel's readahead requests run on several threads. The
 * host reads start only once TREE_SEQ_RUN reads in a row have gone on
 * from the last: when one was enough, one random 4 KiB read in 2,000 of
 * a 4 GiB disk landed near the last and started megabytes of host
 * reads, which doubled what the disk read for random readers. */
#define TREE_AHEAD (16u << 20)
#define TREE_AHEAD_STEP (8u << 20)
#define TREE_SEQ_SLACK (2 * (uint64_t)TREE_MAX_READ)
#define TREE_SEQ_RUN 2u
/* Reads of at most this many bytes are copied, not spliced: one pread
 * and one writev cost less than splicing through a pipe. Measured with
 * fio, O_DIRECT random reads of disk.raw from the page cache, reader and
 * daemon on one CPU: 4 KiB 159k reads/s copied, 133k spliced; 8 KiB 136k
 * and 125k; 16 KiB 117k and 122k; larger ones splice faster still. */
#define TREE_COPY_MAX 8192u
/* Length of the hole replies splice zeros from: at least a request. */
#define TREE_ZEROS_LEN (4u << 20)
/* st_blksize of disk.raw and pN.raw: reads of a whole request. */
#define TREE_RAW_BLKSIZE TREE_MAX_READ

/* An open file: the namespace's handle, read piecewise so that stored
 * data is spliced from the host file into the reply instead of copied,
 * and where a sequential reader of it has got to (tree_ahead). */
struct tree_file {
	struct vd_ns_file *f;
	pthread_mutex_t lock; /* guards seq_end, seq_run and ahead */
	uint64_t seq_end;     /* where the last read ended */
	unsigned seq_run;     /* reads in a row that went on from the last */
	uint64_t ahead;	      /* host reads started up to here */
	bool writer;	      /* opened for writing: flush syncs */
	struct tree_file *prev, *next; /* in tree_files */
};

/* Every open file: a session that ends with files open (SIGTERM, or the
 * connection aborted) gets no release for them, so destroy frees them. */
static pthread_mutex_t tree_files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tree_file *tree_files;

/* Per worker thread: the buffer a read's copied bytes go to. */
struct tree_buf {
	uint8_t *p;
	size_t cap;
};

static void tree_buf_free(void *arg)
{
	struct tree_buf *b = arg;

	free(b->p);
	free(b);
}

static struct vd_tls tree_buf_tls = VD_TLS_INIT(struct tree_buf, tree_buf_free);
static int tree_zeros_fd = -1; /* TREE_ZEROS_LEN bytes of hole */

/* The calling thread's buffer of at least size bytes, or NULL. */
static uint8_t *tree_buf_get(size_t size)
{
	struct tree_buf *b = vd_tls_get(&tree_buf_tls);
	uint8_t *p;

	if (!b)
		return NULL;
	if (b->cap < size) {
		p = realloc(b->p, size);
		if (!p)
			return NULL;
		b->p = p;
		b->cap = size;
	}
	return b->p;
}

/* Namespace inode numbers carry a volume in their top bits. */
_Static_assert(sizeof(fuse_ino_t) >= sizeof(uint64_t),
	       "vdmount needs a 64-bit fuse_ino_t");

static struct vd_mount *mount_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The namespace inode a FUSE inode stands for. */
static uint64_t ns_ino_of(struct vd_mount *m, fuse_ino_t ino)
{
	if (m->root_is_disk)
		return ino == FUSE_ROOT_ID ? VD_NS_DISK : 0;
	return ino;
}

/* Whether ino is a guest file or folder of a writable mount: it may
 * change, so the kernel keeps what it was told only briefly (changes all
 * come through this mount, and the kernel drops what each one makes
 * stale; the short timeout is for what it cannot know, such as a link
 * count changed through another name). */
static bool tree_changing(struct vd_mount *m, uint64_t nino)
{
	return vd_ns_writable(m->ns) && (nino >> VD_NS_VOL_SHIFT);
}

#define TREE_RW_TIMEOUT 1.0

static double tree_timeout(struct vd_mount *m, uint64_t nino)
{
	return tree_changing(m, nino) ? TREE_RW_TIMEOUT : VD_TIMEOUT;
}

static void to_stat(const struct vd_fs_attr *a, fuse_ino_t ino,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = 4096;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

static int fill_attr(struct vd_mount *m, fuse_ino_t ino, struct stat *st)
{
	struct vd_fs_attr a;
	uint64_t nino = ns_ino_of(m, ino);
	int ret = vd_ns_getattr(m->ns, nino, &a);

	if (ret)
		return ret;
	to_stat(&a, ino, st);
	/* disk.raw and pN.raw are read without the page cache (vd_open),
	 * one request per read(2): ask for reads as large as a request. */
	if (S_ISREG(a.mode) && !(nino >> VD_NS_VOL_SHIFT))
		st->st_blksize = TREE_RAW_BLKSIZE;
	return 0;
}

char vd_fuse_readahead_path[96];
static pthread_once_t tree_readahead_once = PTHREAD_ONCE_INIT;

/* The kernel's readahead window in a guest file: four requests. The
 * kernel splits a window into requests of at most max_read and sends
 * them together, so a sequential reader keeps four in flight: where the
 * daemon computes the bytes (btrfs' compressed extents) both cores
 * decode, and one reply is copied out while the next decodes. With a
 * window of one request, one was in flight, and a core idled (or the
 * pool's helper spun) while its reply was copied. */
#define TREE_READAHEAD (4u * VD_FUSE_MAX_READ)

/* Only after INIT has been answered: the kernel lowers the setting to
 * what the reply says, and no other request is sent before that. */
static void tree_raise_readahead(void)
{
	FILE *f;

	if (!vd_fuse_readahead_path[0] ||
	    !(f = fopen(vd_fuse_readahead_path, "w")))
		return;
	fprintf(f, "%u\n", TREE_READAHEAD / 1024);
	fclose(f);
}

void vd_fuse_raise_readahead(void)
{
	pthread_once(&tree_readahead_once, tree_raise_readahead);
}

/* The entry of ino as a lookup answers it: 0, or -errno. */
static int tree_entry(struct vd_mount *m, uint64_t ino,
		      struct fuse_entry_param *e)
{
	int ret;

	memset(e, 0, sizeof(*e));
	ret = fill_attr(m, ino, &e->attr);
	if (ret)
		return ret;
	e->ino = ino;
	e->attr_timeout = e->entry_timeout = tree_timeout(m, ino);
	return 0;
}

static void vd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vd_mount *m = mount_of(req);
	struct fuse_entry_param e;
	uint64_t ino;
	int ret;

	pthread_once(&tree_readahead_once, tree_raise_readahead);
	memset(&e, 0, sizeof(e));
	if (m->root_is_disk) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = vd_ns_lookup(m->ns, parent, name, &ino);
	if (ret == -ENOENT) {
		/* Negative entries may be cached too: the tree is fixed,
		 * or changes only through this mount. */
		e.entry_timeout = tree_timeout(m, parent);
		fuse_reply_entry(req, &e);
		return;
	}
	if (!ret)
		ret = tree_entry(m, ino, &e);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fuse_reply_entry(req, &e);
}

/* The reply to a call that made the entry ino: as a lookup's. */
static void tree_reply_new(fuse_req_t req, struct vd_mount *m, int ret,
			   uint64_t ino)
{
	struct fuse_entry_param e;

	if (!ret)
		ret = tree_entry(m, ino, &e);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fuse_reply_entry(req, &e);
}

/* Whether the kernel hands modes over unmasked (FUSE_CAP_DONT_MASK,
 * set once by vd_init before any request): the filesystem applies the
 * caller's umask then, unless a default ACL replaces it. */
static bool tree_dont_mask;
/* The kernel decides access from the guest's ACLs (FUSE_CAP_POSIX_ACL). */
static bool tree_posix_acl;

/* Who is asking: the owner of what the call makes, and the umask still
 * to apply to its mode. */
static struct vd_fs_cred tree_cred(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	return (struct vd_fs_cred){ c->uid, c->gid,
				    tree_dont_mask ? c->umask & 0777 : 0 };
}

static void vd_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	(void)fi;
	ret = fill_attr(mount_of(req), ino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st,
				tree_timeout(mount_of(req),
					     ns_ino_of(mount_of(req), ino)));
}

/* setattr of a guest file or folder of a writable mount. */
static void tree_setattr_guest(fuse_req_t req, struct vd_mount *m,
			       uint64_t nino, struct stat *attr, int to_set)
{
	struct vd_fs_setattr s = { 0 };
	struct stat st;
	int ret;

	if (to_set & FUSE_SET_ATTR_MODE) {
		s.valid |= VD_FS_SET_MODE;
		s.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		s.valid |= VD_FS_SET_UID;
		s.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		s.valid |= VD_FS_SET_GID;
		s.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		s.valid |= VD_FS_SET_SIZE;
		s.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		s.valid |= VD_FS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		s.valid |= VD_FS_SET_ATIME;
		s.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		s.valid |= VD_FS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		s.valid |= VD_FS_SET_MTIME;
		s.mtime = attr->st_mtim;
	}
	ret = vd_ns_setattr(m->ns, nino, &s);
	if (!ret)
		ret = fill_attr(m, nino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, TREE_RW_TIMEOUT);
}

/* Nothing changes but, in a writable mount, the bytes of the raw files:
 * their size is the disk's or the volume's (truncate: EPERM, unless to
 * the size they have), their owner and modes the image file's. */
static void vd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	struct stat st;
	int ret;

	(void)fi;
	if (vd_ns_writable(m->ns) && vd_ns_can_change(m->ns, ns_ino_of(m, ino))) {
		tree_setattr_guest(req, m, ns_ino_of(m, ino), attr, to_set);
		return;
	}
	if (!vd_ns_writable(m->ns) || (ns_ino_of(m, ino) >> VD_NS_VOL_SHIFT)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	ret = fill_attr(m, ino, &st);
	if (!ret && !S_ISREG(st.st_mode))
		ret = -EROFS;
	else if (!ret && (to_set & ~FUSE_SET_ATTR_SIZE ||
			  (to_set & FUSE_SET_ATTR_SIZE &&
			   attr->st_size != st.st_size)))
		ret = -EPERM;
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, VD_TIMEOUT);
}

static void tree_file_free(struct tree_file *tf)
{
	pthread_mutex_lock(&tree_files_lock);
	if (tf->prev)
		tf->prev->next = tf->next;
	else
		tree_files = tf->next;
	if (tf->next)
		tf->next->prev = tf->prev;
	pthread_mutex_unlock(&tree_files_lock);
	vd_ns_release(tf->f);
	pthread_mutex_destroy(&tf->lock);
	free(tf);
}

/* The reply to an open. A raw file open for writing (parallel) also
 * gets FOPEN_PARALLEL_DIRECT_WRITES (Linux 6.2): without it the kernel
 * holds the file's inode lock across each direct write's round trip,
 * so writers of different parts of disk.raw queue behind each other
 * (fio's 4 jobs of random 4 KiB writes made fewer writes a second than
 * 1). The core serialises writers of one cluster itself (qcow2-write.c),
 * and the size never changes. libfuse 3.14 has no bit for the flag:
 * the reply is what fuse_reply_open sends (fill_open's flags), with it
 * added, sent as a vector. A kernel that does not know the flag ignores
 * it. */
static int tree_reply_open(fuse_req_t req, const struct fuse_file_info *fi,
			   bool parallel)
{
	struct fuse_open_out o = { .fh = fi->fh };
	struct iovec v = { .iov_base = &o, .iov_len = sizeof(o) };

	if (!parallel || !fi->direct_io)
		return fuse_reply_open(req, fi);
	o.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
	if (fi->keep_cache)
		o.open_flags |= FOPEN_KEEP_CACHE;
	if (fi->nonseekable)
		o.open_flags |= FOPEN_NONSEEKABLE;
	if (fi->noflush)
		o.open_flags |= FOPEN_NOFLUSH;
	return fuse_reply_iov(req, &v, 1);
}

static void tree_open(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi, const struct fuse_entry_param *e)
{
	struct vd_mount *m = mount_of(req);
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY || fi->flags & O_TRUNC;
	uint64_t nino = ns_ino_of(m, ino);
	bool guest = vd_ns_writable(m->ns) && vd_ns_can_change(m->ns, nino);
	struct tree_file *tf;
	int ret;

	/* The raw files of a writable mount open for writing, their size
	 * fixed (O_TRUNC: EPERM); and guest files on filesystems that can
	 * be written. */
	if (wr && !guest && (!vd_ns_writable(m->ns) ||
			     (nino >> VD_NS_VOL_SHIFT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	tf = calloc(1, sizeof(*tf));
	if (!tf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_open_file(m->ns, nino, &tf->f);
	if (!ret && wr && !guest && !vd_ns_file_is_raw(tf->f))
		ret = -EROFS;
	else if (!ret && wr && !guest && fi->flags & O_TRUNC)
		ret = -EPERM;
	else if (!ret && guest && fi->flags & O_TRUNC) {
		struct vd_fs_setattr s = { .valid = VD_FS_SET_SIZE };

		ret = vd_ns_setattr(m->ns, nino, &s);
	}
	if (ret) {
		if (tf->f)
			vd_ns_release(tf->f);
		free(tf);
		fuse_reply_err(req, -ret);
		return;
	}
	tf->writer = wr;
	ret = -pthread_mutex_init(&tf->lock, NULL);
	if (ret) {
		vd_ns_release(tf->f);
		free(tf);
		fuse_reply_err(req, -ret);
		return;
	}
	pthread_mutex_lock(&tree_files_lock);
	tf->next = tree_files;
	if (tree_files)
		tree_files->prev = tf;
	tree_files = tf;
	pthread_mutex_unlock(&tree_files_lock);
	fi->fh = (uintptr_t)tf;
	/* What the page cache holds stays true unless the file can change
	 * (then the kernel's own writes keep it true while it is open). */
	fi->keep_cache = !guest;
	/* Every close sends FLUSH, and waits for it: a round trip per
	 * file for cp -a and rsync -a (20,000 of cp -a's 143,000 requests
	 * over the bench's tree). Only a raw file open for writing has
	 * anything to do then (vd_flush syncs it); a guest file's close
	 * syncs nothing, as a kernel filesystem's does not, and its writes
	 * have all been answered (no write-back cache here), so a guest
	 * writer needs no FLUSH either: a round trip less for each file
	 * that cp -a or tar writes into pN/. */
	fi->noflush = !wr || guest;
	/* disk.raw and pN.raw bypass the page cache: the host file is
	 * cached already, and a reply spliced from it lands straight in
	 * the reader's buffer (one copy, as a read of the host file). */
	if (vd_ns_file_is_raw(tf->f))
		fi->direct_io = 1;
	if ((e ? fuse_reply_create(req, e, fi) :
		 tree_reply_open(req, fi, wr && !guest)) == -ENOENT)
		tree_file_free(tf); /* the opener was interrupted */
}

static void vd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	tree_open(req, ino, fi, NULL);
}

static void vd_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	tree_file_free((struct tree_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* A read of [off, off + size) is being answered: when it continues the
 * last, start the host reads of what comes next (see TREE_AHEAD). */
static void tree_ahead(struct tree_file *tf, uint64_t off, size_t size)
{
	uint64_t end = off + size, from = 0, len = 0;

	pthread_mutex_lock(&tf->lock);
	if (tf->seq_end && off <= tf->seq_end + TREE_SEQ_SLACK &&
	    off + TREE_SEQ_SLACK >= tf->seq_end) {
		/* The namespace stops the reads at the file's end. */
		if (tf->seq_run >= TREE_SEQ_RUN)
			len = vd_ahead_next(&tf->ahead, end, UINT64_MAX,
					    TREE_AHEAD, TREE_AHEAD_STEP, &from);
		else
			tf->seq_run++;
		tf->seq_end = VD_MAX(tf->seq_end, end);
	} else {
		tf->seq_end = end;
		tf->seq_run = 0;
		tf->ahead = 0;
	}
	pthread_mutex_unlock(&tf->lock);
	if (len)
		vd_ns_prefetch(tf->f, from, len);
}

/* A read of a file: stored data goes from the host file into the reply
 * by splice when the kernel allows (libfuse falls back to copying),
 * zeros from the zero page; only what had to be decoded or read by a
 * filesystem is copied (vd_ns_read_vec). */
static void tree_read_vec(fuse_req_t req, struct tree_file *tf, size_t size,
			  uint64_t off)
{
	/* A fuse_bufvec ends in a one-element array that callers extend. */
	struct {
		struct fuse_bufvec v;
		struct fuse_buf more[TREE_MAX_SEGS - 1];
	} bv;
	struct vd_seg segs[TREE_MAX_SEGS];
	size_t got;
	uint8_t *buf;
	unsigned n;
	int ret;

	buf = tree_buf_get(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_read_vec(tf->f, buf, size, off, segs, TREE_MAX_SEGS, &n,
			     &got);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* Before the reply: once the reader has it, it may close the file,
	 * and another thread free tf. */
	tree_ahead(tf, off, got);
	/* All in buf: one copy from it into the reader (splicing a buffer
	 * would copy it into the pipe first). */
	if (n == 0 || (n == 1 && segs[0].type == VD_SEG_MEM)) {
		fuse_reply_buf(req, n ? segs[0].mem : NULL, n ? segs[0].len : 0);
		return;
	}
	memset(&bv.v, 0, sizeof(bv.v));
	bv.v.count = n;
	for (unsigned i = 0; i < n; i++) {
		struct fuse_buf *b = bv.v.buf + i;

		memset(b, 0, sizeof(*b));
		b->size = segs[i].len;
		if (segs[i].type == VD_SEG_FD) {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			b->fd = segs[i].fd;
			b->pos = (off_t)segs[i].fd_off;
		} else if (segs[i].type == VD_SEG_ZERO) {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			b->fd = tree_zeros_fd;
			b->pos = 0;
		} else {
			b->mem = (void *)segs[i].mem;
		}
	}
	fuse_reply_data(req, &bv.v, 0);
}

static void vd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct tree_file *tf = (struct tree_file *)(uintptr_t)fi->fh;
	size_t got = 0;
	char *buf;
	int ret;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* A zero piece is spliced from the zero file: larger ones would
	 * need more of it. */
	if (tree_zeros_fd >= 0 && size > TREE_COPY_MAX &&
	    size <= TREE_ZEROS_LEN) {
		tree_read_vec(req, tf, size, (uint64_t)off);
		return;
	}
	buf = (char *)tree_buf_get(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_read(tf->f, buf, size, (uint64_t)off, &got);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	tree_ahead(tf, (uint64_t)off, got); /* before the reply: see above */
	fuse_reply_buf(req, buf, got);
}

static void tree_write(fuse_req_t req, struct tree_file *tf,
		       const void *buf, size_t size, off_t off)
{
	size_t put = 0;
	int ret;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = vd_ns_write(tf->f, buf, size, (uint64_t)off, &put);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, put);
}

static void vd_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	tree_write(req, (struct tree_file *)(uintptr_t)fi->fh, buf, size, off);
}

/* fsync and fdatasync of any file, and the flush of a file open for
 * writing at each close: everything written so far is made durable. */
static void vd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);

	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -vd_ns_fsync(m->ns, ns_ino_of(m, ino)));
}

/* The close of a raw file open for writing syncs it; a guest file's
 * close does not (as a kernel filesystem's: fsync does). */
static void vd_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct tree_file *tf = (struct tree_file *)(uintptr_t)fi->fh;
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, tf->writer && vd_ns_file_is_raw(tf->f) ?
				    -vd_ns_fsync(m->ns, ns_ino_of(m, ino)) :
				    0);
}

static void vd_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct vd_ns_file *f = ((struct tree_file *)(uintptr_t)fi->fh)->f;
	uint64_t res;
	int ret;

	(void)ino;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = vd_ns_seek(f, (uint64_t)off, whence == SEEK_DATA, &res);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, (off_t)res);
}

/* Folders are listed by (inode, cookie) alone (vd_readdir), so they
 * need no open: ENOSYS to the first OPENDIR tells the kernel so, and it
 * sends no OPENDIR or RELEASEDIR for any folder after (Linux 5.1+,
 * FUSE_CAP_NO_OPENDIR_SUPPORT; set by vd_init). A tree walk made two
 * such round trips per folder. The kernel then keeps every folder's
 * listing as with cache_readdir and keep_cache: valid as long as the
 * folder's mtime and change counter stay the same. In a writable mount
 * each change made through the mount (create, unlink, rename, link,
 * mkdir, rmdir, symlink) bumps the counter, so a listing that starts
 * after it asks again; nothing else changes a guest folder. */
static bool tree_no_opendir;

static void vd_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	struct stat st;
	int ret;

	if (tree_no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (m->root_is_disk) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ret = fill_attr(m, ino, &st);
	if (!ret && !S_ISDIR(st.st_mode))
		ret = -ENOTDIR;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (!tree_changing(m, ns_ino_of(m, ino))) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

struct dir_buf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int dir_fill(void *arg, const char *name, uint64_t ino, unsigned type,
		    uint64_t next)
{
	struct dir_buf *b = arg;
	struct stat st = { .st_ino = ino, .st_mode = (mode_t)(type << 12) };
	size_t n = fuse_add_direntry(b->req, b->buf + b->used,
				     b->size - b->used, name, &st,
				     (off_t)next);

	if (n > b->size - b->used)
		return 1; /* full: the kernel asks again from here */
	b->used += n;
	return 0;
}

static void vd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	struct dir_buf b = { req, NULL, size, 0 };
	int ret;

	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	b.buf = malloc(size ? size : 1);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_readdir(m->ns, ino, (uint64_t)off, dir_fill, &b);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

/* readdirplus: the entries first (the filesystem may hold its lock
 * while it lists), then their attributes, so that `ls -l` of a large
 * folder costs one request per buffer instead of one per entry. */
struct plus_ent {
	uint64_t ino, next;
	unsigned type; /* DT_* */
	char *name;
};

struct plus_buf {
	fuse_req_t req;
	size_t size, used; /* bytes the entries will take in the reply */
	struct plus_ent *ents;
	size_t n, cap;
};

static int plus_collect(void *arg, const char *name, uint64_t ino,
			unsigned type, uint64_t next)
{
	struct plus_buf *b = arg;
	size_t need = fuse_add_direntry_plus(b->req, NULL, 0, name, NULL, 0);
	struct plus_ent *n;

	if (need > b->size - b->used)
		return 1;
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		n = realloc(b->ents, b->cap * sizeof(*n));
		if (!n)
			return 1;
		b->ents = n;
	}
	b->ents[b->n].name = strdup(name);
	if (!b->ents[b->n].name)
		return 1;
	b->ents[b->n].ino = ino;
	b->ents[b->n].next = next;
	b->ents[b->n].type = type;
	b->n++;
	b->used += need;
	return 0;
}

static void vd_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	struct plus_buf b = { .req = req, .size = size };
	char *buf = NULL;
	size_t used = 0;
	int ret;

	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = vd_ns_readdir(m->ns, ino, (uint64_t)off, plus_collect, &b);
	if (!ret && !(buf = malloc(size ? size : 1)))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < b.n; i++) {
		struct fuse_entry_param e;
		const char *name = b.ents[i].name;
		bool dot = !strcmp(name, ".") || !strcmp(name, "..");
		size_t n;

		memset(&e, 0, sizeof(e));
		/* "." and ".." are not looked up: the kernel keeps no
		 * entry for them. Nor for an entry whose attributes cannot
		 * be read (a damaged inode): it is listed by name and type
		 * alone (node 0), as a plain readdir lists it, and a stat
		 * of it looks it up and gets the error. (Stopping the reply
		 * there instead would end the listing at it: every listing
		 * is readdirplus, so the kernel's next request would fail
		 * the same way.) */
		if (!dot && !fill_attr(m, b.ents[i].ino, &e.attr)) {
			e.ino = b.ents[i].ino;
			e.attr_timeout = e.entry_timeout =
				tree_timeout(m, b.ents[i].ino);
		} else {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = b.ents[i].ino;
			e.attr.st_mode = dot ? S_IFDIR :
					       (mode_t)(b.ents[i].type << 12);
		}
		n = fuse_add_direntry_plus(req, buf + used, size - used, name,
					   &e, (off_t)b.ents[i].next);
		if (n > size - used)
			break;
		used += n;
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, used);
	for (size_t i = 0; i < b.n; i++)
		free(b.ents[i].name);
	free(b.ents);
	free(buf);
}

static void vd_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct vd_mount *m = mount_of(req);
	char buf[PATH_MAX + 1];
	int ret;

	ret = vd_ns_readlink(m->ns, ns_ino_of(m, ino), buf, sizeof(buf));
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_readlink(req, buf);
}

/* listxattr and getxattr share the size protocol: size 0 asks for the
 * length. */
static void reply_xattr(fuse_req_t req, int ret, const char *buf,
			size_t size, size_t len)
{
	if (ret)
		fuse_reply_err(req, -ret);
	else if (!size)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

/* Nothing in the tree lists an xattr (vfat only, or no filesystem):
 * ENOSYS tells the kernel so once, and it answers every later
 * listxattr(2) of the mount itself, "not supported" (set by vd_init). */
static bool tree_no_xattr_lists;

static void vd_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct vd_mount *m = mount_of(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	int ret;

	if (tree_no_xattr_lists) {
		free(buf);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_listxattr(m->ns, ns_ino_of(m, ino), buf, size, &len);
	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

static void vd_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct vd_mount *m = mount_of(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	int ret;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = vd_ns_getxattr(m->ns, ns_ino_of(m, ino), name, buf, size,
			     &len);
	/* A filesystem without ACLs (vfat) says EOPNOTSUPP, which ls
	 * takes as "ask no more"; but when the kernel checks access from
	 * ACLs it takes only ENODATA as "none" and anything else as a
	 * denial. */
	if (ret == -EOPNOTSUPP && tree_posix_acl &&
	    !strncmp(name, "system.posix_acl_", 17))
		ret = -ENODATA;
	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

static void vd_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vd_mount *m = mount_of(req);
	struct statvfs sv;
	int ret;

	ret = vd_ns_statfs(m->ns, ns_ino_of(m, ino), &sv);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_statfs(req, &sv);
}

static void vd_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct vd_mount *m = mount_of(req);
	uint64_t nino = ns_ino_of(m, ino);
	bool raw_file = nino != VD_NS_ROOT && !(nino >> VD_NS_VOL_SHIFT);
	bool can = vd_ns_writable(m->ns) &&
		   (raw_file || vd_ns_can_change(m->ns, nino));

	fuse_reply_err(req, mask & W_OK && !can ? EROFS : 0);
}

/* Entries of guest filesystems that can be written (ext2/3/4 in a
 * writable mount) are made, removed and renamed there; the tree's own
 * names (the root, disk.raw, pN.raw, pN/) never change, and other
 * filesystems stay read-only: EROFS (ns.c decides). */
static void vd_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct vd_mount *m = mount_of(req);
	struct vd_fs_cred c = tree_cred(req);
	uint64_t ino = 0;
	int ret;

	ret = vd_ns_mknod(m->ns, ns_ino_of(m, parent), name, mode, rdev, &c,
			  &ino);
	tree_reply_new(req, m, ret, ino);
}

static void vd_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct vd_mount *m = mount_of(req);
	struct vd_fs_cred c = tree_cred(req);
	uint64_t ino = 0;
	int ret;

	ret = vd_ns_mkdir(m->ns, ns_ino_of(m, parent), name, mode, &c, &ino);
	tree_reply_new(req, m, ret, ino);
}

static void vd_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct vd_mount *m = mount_of(req);
	struct vd_fs_cred c = tree_cred(req);
	uint64_t ino = 0;
	int ret;

	ret = vd_ns_symlink(m->ns, ns_ino_of(m, parent), name, link, &c, &ino);
	tree_reply_new(req, m, ret, ino);
}

static void vd_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct vd_mount *m = mount_of(req);
	int ret;

	ret = vd_ns_link(m->ns, ns_ino_of(m, ino), ns_ino_of(m, newparent),
			 newname);
	tree_reply_new(req, m, ret, ns_ino_of(m, ino));
}

static void vd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, -vd_ns_unlink(m->ns, ns_ino_of(m, parent), name));
}

static void vd_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, -vd_ns_rmdir(m->ns, ns_ino_of(m, parent), name));
}

static void vd_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, -vd_ns_rename(m->ns, ns_ino_of(m, parent), name,
					  ns_ino_of(m, newparent), newname,
					  flags));
}

static void vd_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct vd_mount *m = mount_of(req);
	struct vd_fs_cred c = tree_cred(req);
	struct fuse_entry_param e;
	uint64_t ino = 0;
	int ret;

	ret = vd_ns_mknod(m->ns, ns_ino_of(m, parent), name,
			  S_IFREG | (mode & 07777), 0, &c, &ino);
	if (!ret)
		ret = tree_entry(m, ino, &e);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* New and empty: O_TRUNC has nothing to do. */
	fi->flags &= ~O_TRUNC;
	tree_open(req, ino, fi, &e);
}

static void vd_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, -vd_ns_setxattr(m->ns, ns_ino_of(m, ino), name,
					    value, size, flags));
}

static void vd_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct vd_mount *m = mount_of(req);

	fuse_reply_err(req, -vd_ns_removexattr(m->ns, ns_ino_of(m, ino), name));
}

static void vd_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t off, off_t len, struct fuse_file_info *fi)
{
	struct tree_file *tf = (struct tree_file *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -vd_ns_fallocate(tf->f, mode, (uint64_t)off,
					     (uint64_t)len));
}

static void vd_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	vd_fsync(req, ino, datasync, fi);
}

/* What the kernel is asked for: replies spliced from host files, in
 * requests of at most TREE_MAX_READ bytes (vdmount.c passes the same
 * max_read as a mount option, as libfuse requires). */
static void vd_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vd_mount *m = userdata;
	bool ro = !vd_ns_writable(m->ns);
	int fd;

	conn->max_read = TREE_MAX_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Requests are read, not spliced: a request spliced from
	 * /dev/fuse then takes a second system call to come out of the
	 * pipe, and a write's data is copied all the same. The kernel
	 * copies an O_DIRECT writer's pages into the pipe (it cannot pin
	 * them for as long as a pipe may hold them), and what is written
	 * must be in memory anyway: a cluster completed from below, an ext
	 * file's bytes through libext2fs. Spliced, a 1 MiB write of
	 * disk.raw was copied three times (into the pipe, out of it, into
	 * the child) instead of twice, and every request cost a splice and
	 * a read instead of one read. (libfuse wants splicing by default
	 * when a write_buf callback is given; none is.) */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* Every listing with the entries' attributes: with the kernel's
	 * adaptive choice only a folder's first request was readdirplus
	 * unless a stat came between two getdents, and a reader that lists
	 * a whole folder before it stats (find, cp -a, rsync, du: fts and
	 * savedir) then sent a LOOKUP per entry past the first 32 KiB of
	 * the listing: find over a folder of 100,000 entries made 99,821
	 * lookups. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Default ACLs of guest folders replace the umask (ext-acl.c):
	 * the mode is wanted as the caller gave it. */
	if (conn->capable & FUSE_CAP_DONT_MASK) {
		conn->want |= FUSE_CAP_DONT_MASK;
		tree_dont_mask = true;
	}
	/* A read-only mount's symlinks never change: their targets stay
	 * in the page cache (a second ls -l of 1,000 symlinks: no
	 * READLINK). */
	if (ro && conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* With allow_other, default_permissions has the kernel decide who
	 * may open what from the guest's modes: with POSIX_ACL it reads
	 * the guest's ACLs (through getxattr, then kept per inode) and
	 * decides as the guest's kernel would, a named user's entry and
	 * the mask included. It would turn default_permissions on for a
	 * mount without allow_other too, holding the mounting user to the
	 * guest's modes, so only with allow_other; and only read-only: in
	 * a writable mount the daemon would have to keep modes and ACLs in
	 * step and inherit default ACLs itself. (Not for speed: readdirplus
	 * drops the kernel's cached ACLs, so a second ls -l asks again.) */
	if (ro && m->allow_other && conn->capable & FUSE_CAP_POSIX_ACL) {
		conn->want |= FUSE_CAP_POSIX_ACL;
		tree_posix_acl = true;
	}
	/* cp -a asks each file for its xattr list twice, and vfat lists
	 * none: those round trips go (cp -a of 20,000 files on vfat: six
	 * requests per file become four). listxattr(2) then fails with
	 * EOPNOTSUPP where the kernel's vfat gives an empty list: cp -a
	 * takes either as "no xattrs". */
	tree_no_xattr_lists = ro && vd_ns_lists_no_xattrs(m->ns);
	tree_no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	/* A file that is all hole: splicing from it puts the shared zero
	 * page into the pipe, so zeros cost one copy, into the reader. */
	fd = memfd_create("vdmount-zeros", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, TREE_ZEROS_LEN) < 0) {
		close(fd);
		fd = -1;
	}
	tree_zeros_fd = fd;
}

/* The session ends (fuse_session_destroy), no request runs: free what
 * the kernel will not release. */
static void vd_destroy(void *userdata)
{
	(void)userdata;
	while (tree_files)
		tree_file_free(tree_files);
	if (tree_zeros_fd >= 0)
		close(tree_zeros_fd);
	tree_zeros_fd = -1;
}

const struct fuse_lowlevel_ops vd_fuse_ops = {
	.init = vd_init,
	.destroy = vd_destroy,
	.lookup = vd_lookup,
	.getattr = vd_getattr,
	.setattr = vd_setattr,
	.readlink = vd_readlink,
	.open = vd_open,
	.read = vd_read,
	.write = vd_write,
	.flush = vd_flush,
	.fsync = vd_fsync,
	.fsyncdir = vd_fsyncdir,
	.fallocate = vd_fallocate,
	.release = vd_release,
	.lseek = vd_lseek,
	.opendir = vd_opendir,
	.readdir = vd_readdir,
	.readdirplus = vd_readdirplus,
	.statfs = vd_statfs,
	.listxattr = vd_listxattr,
	.getxattr = vd_getxattr,
	.access = vd_access,
	.mknod = vd_mknod,
	.mkdir = vd_mkdir,
	.unlink = vd_unlink,
	.rmdir = vd_rmdir,
	.symlink = vd_symlink,
	.rename = vd_rename,
	.link = vd_link,
	.create = vd_create,
	.setxattr = vd_setxattr,
	.removexattr = vd_removexattr,
};
