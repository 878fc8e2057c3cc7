/* Key material in locked memory, and the ring of passphrases: see
 * keys.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/keys.h"

/* A secure block: one or more whole pages, its length in the first
 * 16 bytes, the caller's bytes after them. */
#define KEYS_HDR 16u

void *vd_secure_alloc(size_t len)
{
	static int undumpable;
	long pg = sysconf(_SC_PAGESIZE);
	size_t total;
	uint8_t *p;

	if (pg <= 0)
		pg = 4096;
	if (!len || len > SIZE_MAX / 2)
		return NULL;
	total = (len + KEYS_HDR + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	/* Before the first key byte is stored: no core file and no
	 * ptrace by the same user from here on. */
	if (!undumpable) {
		(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		undumpable = 1;
	}
	p = mmap(NULL, total, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, total, MADV_DONTDUMP);
	/* A user past RLIMIT_MEMLOCK still gets the key (not dumped, wiped
	 * on free); it might reach swap. Said once. */
	if (mlock(p, total)) {
		static int said;

		if (!said++)
			vd_log(VD_LOG_DEBUG, "cannot lock key memory (%s)",
			       strerror(errno));
	}
	memcpy(p, &total, sizeof(total));
	return p + KEYS_HDR;
}

void vd_secure_free(void *q)
{
	uint8_t *p;
	size_t total;

	if (!q)
		return;
	p = (uint8_t *)q - KEYS_HDR;
	memcpy(&total, p, sizeof(total));
	explicit_bzero(p, total);
	munlock(p, total);
	munmap(p, total);
}

struct keys_one {
	uint8_t *p; /* secure */
	size_t len;
};

struct vd_keys {
	struct keys_one key[VD_KEYS_MAX];
	unsigned n;
	bool prompt;
};

struct vd_keys *vd_keys_new(void)
{
	return calloc(1, sizeof(struct vd_keys));
}

void vd_keys_free(struct vd_keys *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < k->n; i++)
		vd_secure_free(k->key[i].p);
	free(k);
}

/* Takes over p (secure memory). */
static int keys_put(struct vd_keys *k, uint8_t *p, size_t len)
{
	if (k->n == VD_KEYS_MAX) {
		vd_secure_free(p);
		return -E2BIG;
	}
	k->key[k->n].p = p;
	k->key[k->n].len = len;
	k->n++;
	return 0;
}

int vd_keys_add(struct vd_keys *k, const void *p, size_t len)
{
	uint8_t *s = vd_secure_alloc(len ? len : 1);

	if (!s)
		return -ENOMEM;
	memcpy(s, p, len);
	return keys_put(k, s, len);
}

int vd_keys_add_file(struct vd_keys *k, const char *path, struct vd_err *e)
{
	struct stat st;
	uint8_t *s = NULL;
	size_t done = 0;
	int fd, ret;

	if (k->n == VD_KEYS_MAX)
		return vd_fail(e, -E2BIG, "%s: more than %u key files",
			       path, VD_KEYS_MAX);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vd_fail(e, -errno, "%s: cannot open the key file: %s",
			       path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ret = vd_fail(e, -EINVAL, "%s: the key file is not a regular "
			      "file", path);
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > (off_t)VD_KEY_FILE_MAX) {
		ret = vd_fail(e, -EINVAL, "%s: a key file holds 1 to %u "
			      "bytes, this one %lld", path, VD_KEY_FILE_MAX,
			      (long long)st.st_size);
		goto out;
	}
	s = vd_secure_alloc((size_t)st.st_size);
	if (!s) {
		ret = -ENOMEM;
		goto out;
	}
	/* Ends: each pass reads at least one byte, up to st_size. */
	while (done < (size_t)st.st_size) {
		ssize_t got = read(fd, s + done, (size_t)st.st_size - done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			ret = vd_fail(e, -EIO, "%s: cannot read the key file: "
				      "%s", path, got ? strerror(errno) :
				      "it shrank while read");
			goto out;
		}
		done += (size_t)got;
	}
	ret = keys_put(k, s, done);
	s = NULL;
out:
	vd_secure_free(s);
	close(fd);
	return ret;
}

unsigned vd_keys_count(const struct vd_keys *k)
{
	return k ? k->n : 0;
}

const uint8_t *vd_keys_get(const struct vd_keys *k, unsigned i,
			   size_t *len_r)
{
	*len_r = k->key[i].len;
	return k->key[i].p;
}

void vd_keys_allow_prompt(struct vd_keys *k, bool on)
{
	k->prompt = on;
}

int vd_keys_ask(struct vd_keys *k, const char *what, unsigned *i_r)
{
	struct termios old, quiet;
	uint8_t *s;
	size_t n = 0;
	bool echo_off;
	int ret;

	if (!k || !k->prompt || !isatty(STDIN_FILENO) || k->n == VD_KEYS_MAX)
		return -ENOKEY;
	s = vd_secure_alloc(VD_KEY_TYPED_MAX + 1);
	if (!s)
		return -ENOMEM;
	/* Echo off before the prompt is shown, and without flushing:
	 * what is typed as soon as the prompt appears is kept. */
	echo_off = tcgetattr(STDIN_FILENO, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		echo_off = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
	}
	fprintf(stderr, "Passphrase for %s: ", what);
	fflush(stderr);
	/* Byte by byte, straight into locked memory (stdio would keep a
	 * copy in its buffer). Ends at a newline, end of input, or the
	 * cap (the rest of a longer line is read and dropped). */
	for (;;) {
		uint8_t c;
		ssize_t got = read(STDIN_FILENO, &c, 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || c == '\n')
			break;
		if (n < VD_KEY_TYPED_MAX)
			s[n++] = c;
	}
	if (echo_off)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fputc('\n', stderr);
	if (n && s[n - 1] == '\r')
		n--;
	if (!n) {
		vd_secure_free(s);
		return -ENOKEY;
	}
	ret = keys_put(k, s, n);
	if (!ret)
		*i_r = k->n - 1;
	return ret;
}
