/* Unit test: many threads reading one disk at once, with a metadata
 * cache so small that switching L2 tables evicts, and pinned tables
 * force uncached loads: every byte must still be right (and ASan sees
 * any use of an evicted table). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/pool.h"
#include "tests/unit/qimg.h"
#include "tests/unit/unit.h"

#define THREADS 8
#define READS 1500
#define PER_TABLE (CS / 8) /* guest clusters per L2 table */

enum kind { UNALLOC, DATA, ZERO, COMPRESSED };

/* What guest cluster idx holds. */
struct cl {
	uint64_t idx;
	enum kind kind;
	int byte;
};

static struct cl cls[32];
static unsigned ncls;
static struct vd_disk *disk;
static atomic_int wrong, failed;

static void add(uint64_t idx, enum kind k, int byte)
{
	if (k == DATA)
		add_cluster(idx, byte, 0);
	else if (k == ZERO)
		l2_set(idx, add_cluster(idx, 0xee, 0) | QCOW2_OFLAG_ZERO, 0);
	else
		add_compressed(idx, byte);
	cls[ncls++] = (struct cl){ idx, k, byte };
}

static uint8_t expected(uint64_t off)
{
	uint64_t idx = off / CS, in = off % CS;

	for (unsigned i = 0; i < ncls; i++) {
		if (cls[i].idx != idx)
			continue;
		switch (cls[i].kind) {
		case DATA:
			return (uint8_t)cls[i].byte;
		case COMPRESSED:
			return (uint8_t)(cls[i].byte + in / 1000);
		default:
			return 0;
		}
	}
	return 0;
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	static const size_t sizes[] = { 1, 512, 4096, 65536, 131072, 3 * CS };
	uint8_t *buf = malloc(3 * CS);

	for (int r = 0; buf && r < READS; r++) {
		/* Around a populated cluster, often running into its
		 * neighbours (unallocated, or the next table). */
		const struct cl *c = &cls[rand_r(&seed) % ncls];
		uint64_t off = c->idx * CS + rand_r(&seed) % (2 * CS);
		size_t n = sizes[rand_r(&seed) % VD_ARRAY_SIZE(sizes)];

		off = off >= CS ? off - CS : 0;
		n = (size_t)VD_MIN(n, vd_disk_size(disk) - off);
		if (vd_disk_read(disk, buf, n, off)) {
			atomic_fetch_add(&failed, 1);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (buf[i] != expected(off + i)) {
				atomic_fetch_add(&wrong, 1);
				break;
			}
		}
	}
	free(buf);
	return NULL;
}

/* vd_pool_run: every item exactly once, the first error returned, and
 * several callers at once (each must get only its own items back). */
#define POOL_ITEMS 1000
static atomic_int pool_hits[THREADS][POOL_ITEMS];

static int pool_item(void *arg, unsigned i)
{
	unsigned who = (unsigned)(uintptr_t)arg;

	atomic_fetch_add(&pool_hits[who][i], 1);
	return who == 0 && i == 500 ? -EIO : 0;
}

static void *pool_caller(void *arg)
{
	int ret = vd_pool_run(POOL_ITEMS, pool_item, arg);

	return (void *)(intptr_t)ret;
}

static void test_pool(void)
{
	pthread_t t[THREADS];
	void *ret[THREADS];
	bool once = true;

	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, pool_caller, (void *)i);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], &ret[i]);
	for (unsigned i = 0; i < THREADS; i++)
		for (unsigned j = 0; j < POOL_ITEMS; j++)
			once = once && atomic_load(&pool_hits[i][j]) == 1;
	CHECK("pool runs every item once", once);
	CHECK("pool returns the error", (intptr_t)ret[0] == -EIO);
	CHECK("pool others succeed", !ret[1] && !ret[THREADS - 1]);
	CHECK("pool empty batch", vd_pool_run(0, pool_item, NULL) == 0);
}

int main(void)
{
	pthread_t t[THREADS];

	test_pool();

	vd_log_set_level((enum vd_log_level)-1); /* failures are counted */
	img_init(2ULL << 30); /* 4 L1 entries of 512 MiB */
	for (unsigned tb = 0; tb < 3; tb++) {
		uint64_t base = tb * PER_TABLE;

		add(base + 0, DATA, 0x10 + (int)tb);
		add(base + 1, DATA, 0x20 + (int)tb); /* host-contiguous pair */
		add(base + 3, ZERO, 0);
		add(base + 4, COMPRESSED, 0x30 + (int)tb * 7);
		add(base + 5, DATA, 0x40 + (int)tb);
		add(base + PER_TABLE - 1, DATA, 0x50 + (int)tb); /* table end */
	}
	/* One 64 KiB L2 table and a few L1 pages fit; two tables do not. */
	img_cache_bytes = 100 * 1024;
	CHECK("parallel open", !img_open(&disk, NULL, NULL));
	if (!disk)
		return unit_done();
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, reader, (void *)(i + 1));
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK("parallel reads succeed", atomic_load(&failed) == 0);
	CHECK("parallel bytes right", atomic_load(&wrong) == 0);
	vd_disk_close(disk);
	return unit_done();
}
