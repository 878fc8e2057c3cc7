/* Unit tests: checked ranges, endian reads, the metadata cache. */
#include <errno.h>
#include <stdint.h>

#include "common/cache.h"
#include "common/util.h"
#include "tests/unit/unit.h"

static int loads;

static int load_key(void *arg, uint64_t key, void *buf)
{
	(void)arg;
	if (key == 666)
		return -EIO;
	loads++;
	memset(buf, (int)(key & 0xff), 16);
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

static void test_cache(void)
{
	struct vd_cache *c = vd_cache_new(16, 2);
	struct vd_cache_ref a, b, d;

	loads = 0;
	CHECK("cache get", !vd_cache_get(c, 1, load_key, NULL, &a));
	CHECK("cache data", ((const uint8_t *)a.data)[0] == 1);
	vd_cache_put(c, &a);
	CHECK("cache hit", !vd_cache_get(c, 1, load_key, NULL, &a) &&
				   loads == 1);
	/* Slot 0 pinned by a; key 2 takes slot 1; key 3 must not evict
	 * pinned blocks: both slots pinned, so it comes back uncached. */
	CHECK("cache 2", !vd_cache_get(c, 2, load_key, NULL, &b));
	CHECK("cache 3", !vd_cache_get(c, 3, load_key, NULL, &d));
	CHECK("cache uncached", d.slot == -1 &&
				      ((const uint8_t *)d.data)[0] == 3);
	CHECK("cache pinned kept", ((const uint8_t *)a.data)[0] == 1 &&
					   ((const uint8_t *)b.data)[0] == 2);
	vd_cache_put(c, &d);
	vd_cache_put(c, &a);
	vd_cache_put(c, &b);
	/* Now LRU: key 1 used before key 2, so key 4 evicts key 1. */
	CHECK("cache 4", !vd_cache_get(c, 4, load_key, NULL, &d));
	vd_cache_put(c, &d);
	loads = 0;
	CHECK("cache 2 kept", !vd_cache_get(c, 2, load_key, NULL, &b) &&
				      loads == 0);
	vd_cache_put(c, &b);
	CHECK("cache load error", vd_cache_get(c, 666, load_key, NULL, &b) ==
					  -EIO);
	vd_cache_free(c);
}

int main(void)
{
	test_range();
	test_endian();
	test_cache();
	return unit_done();
}
