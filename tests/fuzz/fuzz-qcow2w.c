/* qcow2 opened for writing: the writer's open-time check (refcount
 * table and blocks, L1/L2 tables, overlaps), then writes at the start,
 * across a cluster boundary, in the middle and at the end of the disk,
 * each read back: a write that succeeded must read back as written. The
 * input is the image itself (an in-memory file the writes may grow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/disk.h"
#include "tests/fuzz/fuzz.h"

static void qcow2w_write(struct vd_disk *d, uint64_t off, size_t len,
			 uint8_t byte)
{
	static uint8_t buf[200000], back[200000];
	uint64_t size = vd_disk_size(d);

	if (off >= size)
		return;
	if (len > size - off)
		len = (size_t)(size - off);
	memset(buf, byte, len);
	if (vd_disk_write(d, buf, len, off))
		return;
	if (!vd_disk_read(d, back, len, off) && memcmp(buf, back, len)) {
		fprintf(stderr, "fuzz-qcow2w: %zu bytes written at %llu read "
			"back different\n", len, (unsigned long long)off);
		abort();
	}
}

static int qcow2w_one(const uint8_t *data, size_t size)
{
	struct vd_open_opts o = { .format = "qcow2", .writable = true,
				  .cache_bytes = 1 << 20 };
	struct vd_disk *d;
	struct vd_err e;
	char path[64];
	uint64_t vs;
	int fd = memfd_create("fuzz-w", 0);

	if (fd < 0)
		abort();
	for (size_t pos = 0; pos < size;) {
		ssize_t n = write(fd, data + pos, size - pos);

		if (n <= 0)
			abort();
		pos += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!vd_disk_open(path, &o, &d, &e)) {
		vs = vd_disk_size(d);
		qcow2w_write(d, 0, 4096, 0x11);
		qcow2w_write(d, 65536 - 100, 300, 0x22);
		qcow2w_write(d, vs / 2 + 777, 70000, 0x33);
		qcow2w_write(d, vs > 5000 ? vs - 5000 : 0, 5000, 0x44);
		qcow2w_write(d, 0, 100, 0x55);
		vd_disk_flush(d);
		vd_disk_close(d);
	}
	close(fd);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = qcow2w_one,
};
