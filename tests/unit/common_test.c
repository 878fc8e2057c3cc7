/* Unit tests: checked ranges, endian reads, the metadata cache. */
#include <errno.h>
#include <stdint.h>

#include "common/cache.h"
#include "common/util.h"
#include "tests/unit/unit.h"

static int loads;

/* Fills the block with its key's low byte; arg (an owner tag) in byte 0. */
static int load_key(void *arg, uint64_t key, void *buf, size_t size)
{
	if (key == 666)
		return -EIO;
	loads++;
	memset(buf, (int)(key & 0xff), size);
	((uint8_t *)buf)[0] = (uint8_t)(uintptr_t)arg;
	return 0;
}

static void test_range(void)
{
	static const struct {
		uint64_t off, len, limit;
		bool ok;
	} t[] = {
		{ 0, 0, 0, true },
		{ 0, 10, 10, true },
		{ 1, 10, 10, false },
		{ 10, 0, 10, true },
		{ 11, 0, 10, false },
		{ UINT64_MAX, 1, UINT64_MAX, false },
		{ 1, UINT64_MAX, UINT64_MAX, false },
		{ UINT64_MAX - 5, 5, UINT64_MAX, true },
	};

	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++)
		CHECK("range_ok", vd_range_ok(t[i].off, t[i].len,
					      t[i].limit) == t[i].ok);
}

static void test_endian(void)
{
	static const uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t o[8];

	CHECK("be16", get_be16(b) == 0x0102);
	CHECK("be32", get_be32(b) == 0x01020304);
	CHECK("be64", get_be64(b) == 0x0102030405060708ULL);
	CHECK("le16", get_le16(b) == 0x0201);
	CHECK("le32", get_le32(b) == 0x04030201);
	CHECK("le64", get_le64(b) == 0x0807060504030201ULL);
	put_be64(o, 0x0102030405060708ULL);
	CHECK("put_be64", !memcmp(o, b, 8));
}

static int get(struct vd_cache *c, const void *owner, uint64_t key,
	       size_t size, struct vd_cache_ref *ref)
{
	return vd_cache_get(c, owner, key, size, load_key,
			    (void *)(uintptr_t)(owner == &loads ? 'A' : 'B'),
			    ref);
}

static void test_cache(void)
{
	/* Two owners; a budget of 32 bytes in at most 4 blocks. */
	const void *A = &loads, *B = &unit_passed;
	struct vd_cache *c = vd_cache_new(32, 4);
	struct vd_cache_ref a, b, d;

	loads = 0;
	CHECK("cache get", !get(c, A, 1, 16, &a));
	CHECK("cache data", ((const uint8_t *)a.data)[0] == 'A' &&
				    ((const uint8_t *)a.data)[15] == 1);
	vd_cache_put(c, &a);
	CHECK("cache hit", !get(c, A, 1, 16, &a) && loads == 1);
	/* Same key, other owner: another block. */
	CHECK("cache owner", !get(c, B, 1, 16, &b) && loads == 2 &&
				     ((const uint8_t *)b.data)[0] == 'B');
	/* Budget full of pinned blocks: a third comes back uncached and
	 * the pinned ones stay. */
	CHECK("cache 3", !get(c, A, 3, 16, &d));
	CHECK("cache uncached", d.slot == -1 &&
				      ((const uint8_t *)d.data)[15] == 3);
	CHECK("cache pinned kept", ((const uint8_t *)a.data)[15] == 1 &&
					   ((const uint8_t *)b.data)[0] == 'B');
	vd_cache_put(c, &d);
	vd_cache_put(c, &a);
	vd_cache_put(c, &b);
	/* (A,1) was used before (B,1): a new block evicts (A,1) only. */
	CHECK("cache 4", !get(c, A, 4, 16, &d));
	vd_cache_put(c, &d);
	loads = 0;
	CHECK("cache B kept", !get(c, B, 1, 16, &b) && loads == 0);
	vd_cache_put(c, &b);
	CHECK("cache A evicted", !get(c, A, 1, 16, &a) && loads == 1);
	vd_cache_put(c, &a);
	/* A 24-byte block needs both 16-byte blocks out of the budget. */
	CHECK("cache big", !get(c, A, 5, 24, &a) && a.slot >= 0);
	vd_cache_put(c, &a);
	loads = 0;
	CHECK("cache big evicted both", !get(c, A, 4, 16, &d) &&
						!get(c, B, 1, 16, &b) &&
						loads == 2);
	vd_cache_put(c, &d);
	vd_cache_put(c, &b);
	/* Over the whole budget: never cached. */
	CHECK("cache over budget", !get(c, A, 6, 64, &a) && a.slot == -1);
	vd_cache_put(c, &a);
	CHECK("cache load error", get(c, A, 666, 16, &b) == -EIO);
	/* Many keys through 4 slots: hash chains stay consistent. */
	for (uint64_t k = 100; k < 400; k++) {
		CHECK("cache churn", !get(c, (k & 1) ? A : B, k, 8, &a) &&
					     ((const uint8_t *)a.data)[7] ==
						     (uint8_t)k);
		vd_cache_put(c, &a);
	}
	vd_cache_free(c);
}

int main(void)
{
	test_range();
	test_endian();
	test_cache();
	return unit_done();
}
