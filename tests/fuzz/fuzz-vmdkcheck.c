/* vdtool check of a VMDK (core/vmdk-check.c, table-check.c): the input
 * is the file checked (in memory), a sparse extent or a descriptor.
 * Whatever its header, tables or descriptor lines hold, the check must
 * end with a verdict or a refusal, bounded in time and memory; extents a
 * descriptor names lie outside the memory file's folder, so they are
 * refused, never opened. Per-problem lines go to /dev/null. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/check.h"
#include "tests/fuzz/fuzz.h"

static int vmdkcheck_one(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct vd_check r;
	struct vd_err e;
	char path[64];
	int fd = memfd_create("fuzz-vmdkcheck", 0);

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
	vd_vmdk_check(path, null, &r, &e);
	close(fd);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = vmdkcheck_one,
};
