/* What vdtool commands print besides data: guest names made safe for a
 * terminal, and the progress bar of cp and convert. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tool/vdtool.h"

/* Length of the valid UTF-8 sequence at s that is not a C1 control, or
 * 0. Overlong forms, surrogates and code points past U+10FFFF are not
 * valid (RFC 3629, section 4). */
static size_t output_utf8_len(const unsigned char *s)
{
	unsigned c = s[0], cp, n, min;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	/* The NUL ending s is no continuation byte, so this stops there. */
	for (unsigned i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/* Appends to out (at least 4 * strlen(s) + 1 bytes) and returns the new
 * end. */
static char *output_escape_into(char *out, const char *str)
{
	static const char cesc[] = "\aa\bb\tt\nn\vv\ff\rr";
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		const char *e;
		size_t n;

		if (*s == '\\') {
			*out++ = '\\';
			*out++ = '\\';
			s++;
		} else if (*s >= 0x20 && *s < 0x7f) {
			*out++ = (char)*s++;
		} else if (*s < 0x20 && (e = memchr(cesc, *s, sizeof(cesc) - 1)) &&
			   (e - cesc) % 2 == 0) {
			*out++ = '\\';
			*out++ = e[1];
			s++;
		} else if (*s >= 0x80 && (n = output_utf8_len(s))) {
			memcpy(out, s, n);
			out += n;
			s += n;
		} else {
			out += sprintf(out, "\\%03o", *s++);
		}
	}
	*out = '\0';
	return out;
}

char *vdt_escape(const char *s)
{
	char *out = malloc(4 * strlen(s) + 1);

	if (out)
		output_escape_into(out, s);
	return out;
}

void vdt_put_escaped(FILE *f, const char *s)
{
	char *e = vdt_escape(s);

	fputs(e ? e : "?", f);
	free(e);
}

/* ---------------------------------------------------------- writing */

/* Zero blocks of this size (at offsets that are multiples of it) are
 * left as holes. */
#define OUTPUT_ZERO_BLOCK 4096u

static bool output_zero(const char *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

int vdt_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const char *p = buf;

	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int vdt_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int vdt_pwrite_sparse(int fd, const void *buf, size_t got, uint64_t off)
{
	const char *b = buf;
	size_t i = 0;

	while (i < got) {
		/* The block holding off + i ends at the next multiple. */
		size_t bl = OUTPUT_ZERO_BLOCK -
			    (size_t)((off + i) % OUTPUT_ZERO_BLOCK);
		size_t start;
		int ret;

		if (bl > got - i)
			bl = got - i;
		if (output_zero(b + i, bl)) {
			i += bl;
			continue;
		}
		/* A run of blocks that are not all zero. */
		start = i;
		i += bl;
		while (i < got) {
			bl = got - i < OUTPUT_ZERO_BLOCK ? got - i :
							   OUTPUT_ZERO_BLOCK;
			if (output_zero(b + i, bl))
				break;
			i += bl;
		}
		ret = vdt_pwrite_all(fd, b + start, i - start, off + start);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---------------------------------------------------------- progress */

static double output_now(void)
{
	return (double)vd_now_ns() / 1e9;
}

/* n bytes as "123.4 MiB" into buf. */
static void output_size(char *buf, size_t len, double n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	unsigned u = 0;

	while (n >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		n /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", n);
	else
		snprintf(buf, len, "%.1f %s", n, unit[u]);
}

static void output_hms(char *buf, size_t len, double s)
{
	unsigned long t = s < 0 ? 0 : s > 359999999 ? 359999999 :
						      (unsigned long)s;

	snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
}

static void output_draw(struct vdt_progress *p, bool final)
{
	uint64_t done = atomic_load(&p->done);
	double el = output_now() - p->start, rate = el > 0 ? done / el : 0;
	char d[32], t[32], r[32], eta[32], pct[16] = "";

	output_size(d, sizeof(d), (double)done);
	output_size(r, sizeof(r), rate);
	if (p->total) {
		output_size(t, sizeof(t), (double)p->total);
		snprintf(pct, sizeof(pct), "%3.0f%%",
			 done >= p->total ? 100.0 : 100.0 * done / p->total);
	} else {
		snprintf(t, sizeof(t), "?");
	}
	if (final) {
		output_hms(eta, sizeof(eta), el);
		fprintf(stderr, "\r%s / %s %s  %s/s  in %s\033[K\n", d, t, pct,
			r, eta);
		return;
	}
	if (p->total && rate > 0 && done < p->total)
		output_hms(eta, sizeof(eta), (p->total - done) / rate);
	else
		snprintf(eta, sizeof(eta), "-:--:--");
	fprintf(stderr, "\r%s / %s %s  %s/s  ETA %s\033[K", d, t, pct, r, eta);
}

void vdt_progress_init(struct vdt_progress *p, bool quiet, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->on = !quiet && isatty(STDERR_FILENO);
	p->total = total;
	p->start = output_now();
	pthread_mutex_init(&p->lock, NULL);
	if (p->on) {
		pthread_mutex_lock(&p->lock);
		output_draw(p, false);
		pthread_mutex_unlock(&p->lock);
	}
}

void vdt_progress_add(struct vdt_progress *p, uint64_t n)
{
	long long ms, last;

	atomic_fetch_add(&p->done, n);
	if (!p->on)
		return;
	ms = (long long)((output_now() - p->start) * 1000);
	last = atomic_load(&p->last_ms);
	/* At most five redraws a second; a thread that finds the bar being
	 * drawn skips its turn. */
	if (ms - last < 200 || pthread_mutex_trylock(&p->lock))
		return;
	atomic_store(&p->last_ms, ms);
	output_draw(p, false);
	pthread_mutex_unlock(&p->lock);
}

void vdt_progress_end(struct vdt_progress *p)
{
	if (p->on) {
		pthread_mutex_lock(&p->lock);
		output_draw(p, true);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_destroy(&p->lock);
}
