/* A tiny table-friendly unit test harness. Each test binary ends with
 * the runner's line "N passed, M failed" and exits non-zero on failure. */
#ifndef VD_UNIT_H
#define VD_UNIT_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/disk.h"

static int unit_passed, unit_failed;

#define CHECK(name, cond)                                                  \
	do {                                                               \
		if (cond) {                                                \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			printf("FAIL %s (%s:%d: %s)\n", name, __FILE__,    \
			       __LINE__, #cond);                           \
		}                                                          \
	} while (0)

/* Expect message text containing needle. */
#define CHECK_MSG(name, msg, needle)                                       \
	do {                                                               \
		if (strstr(msg, needle)) {                                 \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			printf("FAIL %s: message '%s' lacks '%s'\n", name, \
			       msg, needle);                               \
		}                                                          \
	} while (0)

/* Whether n bytes at p all equal byte. */
static inline bool all_bytes(const uint8_t *p, size_t n, int byte)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != byte)
			return false;
	return true;
}

/* An in-memory file holding len bytes of buf, named by path (at least
 * 32 bytes) as /proc/self/fd/N: the fd, or -1. */
static inline int unit_memfd(const void *buf, size_t len, char *path,
			     size_t path_len)
{
	int fd = memfd_create("unit", 0);

	if (fd < 0)
		return -1;
	if (write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return fd;
}

/* Open len bytes of buf as a disk; its message goes to msg (when not
 * NULL). The memory file is closed once the disk holds it open. */
static inline int unit_mem_disk(const void *buf, size_t len,
				const struct vd_open_opts *o,
				struct vd_disk **d, char *msg)
{
	struct vd_err e = { "" };
	char path[64];
	int fd = unit_memfd(buf, len, path, sizeof(path)), ret;

	if (fd < 0)
		return -EIO;
	ret = vd_disk_open(path, o, d, &e);
	close(fd);
	if (msg)
		strcpy(msg, e.msg);
	return ret;
}

/* Setup that cannot go on: the harness's own failure, not a check's. */
static inline void unit_die(const char *what)
{
	perror(what);
	exit(2);
}

/* Write n bytes at off into the image file img (one poked field). */
static inline void unit_poke(const char *img, uint64_t off, const void *b,
			     size_t n)
{
	int fd = open(img, O_WRONLY);

	if (fd < 0 || pwrite(fd, b, n, (off_t)off) != (ssize_t)n)
		unit_die(img);
	close(fd);
}

static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
