/* vdtool check's qcow2 walk (core/qcow2-fsck.c): the input is the image
 * file (an in-memory file). Whatever the header, tables and refcounts
 * hold, the check must end, bounded in time and memory, with a verdict
 * or a refusal; its per-problem lines go to /dev/null. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/check.h"
#include "tests/fuzz/fuzz.h"

static int qcow2check_one(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct vd_check r;
	struct vd_err e;
	char path[64];
	int fd = memfd_create("fuzz-check", 0);

	if (fd < 0)
		abort();
	if (!null && !(null = fopen("/dev/null", "w")))
		abort();
	for (size_t pos = 0; pos < size;) {
		ssize_t n = write(fd, data + pos, size - pos);

		if (n <= 0)
			abort();
		pos += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	vd_qcow2_check(path, null, &r, &e);
	close(fd);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = qcow2check_one,
};
