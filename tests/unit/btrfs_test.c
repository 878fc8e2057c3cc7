/* btrfs: checksums against published vectors and a bytewise crc32c, the
 * name hash, and the tree block checks on in-memory leaves and nodes
 * (each case pokes one field of a valid block, its checksum redone). */
#include "tests/unit/unit.h"

#include "common/crc32c.h"
#include "common/util.h"
#include "fsread/btrfs.h"

static uint32_t crc_bytewise(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return c;
}

static void test_csums(void)
{
	struct btrfs_fs fs;
	uint8_t sum[BTRFS_CSUM_SIZE], buf[1000];
	static const uint8_t sha_abc[] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
	};
	static const uint8_t b2_abc[] = {
		0xbd, 0xdd, 0x81, 0x3c, 0x63, 0x42, 0x39, 0x72, 0x31, 0x71, 0xef,
		0x3f, 0xee, 0x98, 0x57, 0x9b, 0x94, 0x96, 0x4e, 0x3b, 0xb1, 0xcb,
		0x3e, 0x42, 0x72, 0x62, 0xc8, 0xc0, 0x68, 0xd5, 0x23, 0x19
	};

	memset(&fs, 0, sizeof(fs));
	/* crc32c: the check value of "123456789" (RFC 3720, B.4). */
	fs.csum_type = 0;
	vd_btrfs_csum(&fs, "123456789", 9, sum);
	CHECK("crc32c 123456789", get_le32(sum) == 0xe3069283u);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t n = 0; n < sizeof(buf); n += 37)
	{
		CHECK("crc32c vs bytewise",
		      vd_crc32c(0x12345678u, buf + 3, n - (n ? 3 : 0)) ==
			      crc_bytewise(0x12345678u, buf + 3,
					   n - (n ? 3 : 0)));
		CHECK("crc32c slicing vs bytewise",
		      vd_crc32c_sw(0x12345678u, buf + 3, n - (n ? 3 : 0)) ==
			      crc_bytewise(0x12345678u, buf + 3,
					   n - (n ? 3 : 0)));
	}
	/* The dir item hash of the kernel's btrfs_name_hash: crc32c seeded
	 * with ~1, not inverted (the key offset of "default" in the root
	 * tree directory, as btrfs-progs' dump prints it). */
	CHECK("name hash", vd_btrfs_name_hash("default", 7) ==
				   crc_bytewise(~1u, (const uint8_t *)"default", 7));
	/* xxhash64 of "" with seed 0 (the reference implementation's). */
	fs.csum_type = 1;
	vd_btrfs_csum(&fs, "", 0, sum);
	CHECK("xxhash64 empty", get_le64(sum) == 0xef46db3751d8e999ull);
	fs.csum_type = 2;
	vd_btrfs_csum(&fs, "abc", 3, sum);
	CHECK("sha256 abc", !memcmp(sum, sha_abc, 32));
	/* BLAKE2b-256 of "abc" (RFC 7693's algorithm, 32-byte output). */
	fs.csum_type = 3;
	vd_btrfs_csum(&fs, "abc", 3, sum);
	CHECK("blake2b-256 abc", !memcmp(sum, b2_abc, 32));
}

#define NODE 4096u
#define AT 0x100000ull

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_key(uint8_t *p, uint64_t obj, uint8_t type, uint64_t off)
{
	put_le(p, obj, 8);
	p[8] = type;
	put_le(p + 9, off, 8);
}

/* A valid leaf of three items (data of 10 bytes each at the end), or a
 * node of three pointers, at AT. */
static void make_block(struct btrfs_fs *fs, uint8_t *b, unsigned level)
{
	memset(b, 0, NODE);
	memcpy(b + BTRFS_HDR_FSID, fs->meta_uuid, 16);
	put_le(b + BTRFS_HDR_BYTENR, AT, 8);
	put_le(b + BTRFS_HDR_NRITEMS, 3, 4);
	b[BTRFS_HDR_LEVEL] = (uint8_t)level;
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *it = b + BTRFS_HDR_SIZE +
			      i * (level ? BTRFS_PTR_SIZE : BTRFS_ITEM_SIZE);

		put_key(it, 256 + i, 1, 0);
		if (level) {
			put_le(it + 17, AT + (i + 1) * NODE, 8);
		} else {
			put_le(it + 17, NODE - BTRFS_HDR_SIZE - 10 * (i + 1), 4);
			put_le(it + 21, 10, 4);
		}
	}
}

static void seal(struct btrfs_fs *fs, uint8_t *b)
{
	vd_btrfs_csum(fs, b + BTRFS_CSUM_SIZE, NODE - BTRFS_CSUM_SIZE, b);
}

static void test_blocks(void)
{
	static const struct {
		const char *name;
		unsigned level;
		size_t off;
		int width;
		uint64_t val;
		const char *why;
	} cases[] = {
		{ "valid leaf", 0, 0, 0, 0, NULL },
		{ "valid node", 1, 0, 0, 0, NULL },
		{ "wrong bytenr", 0, BTRFS_HDR_BYTENR, 8, AT + NODE,
		  "names another address" },
		{ "other fsid", 0, BTRFS_HDR_FSID, 1, 0x55,
		  "belongs to another filesystem" },
		{ "level 8", 0, BTRFS_HDR_LEVEL, 1, 8, "has a level of 8" },
		{ "leaf too many items", 0, BTRFS_HDR_NRITEMS, 4, 200,
		  "has more items than fit" },
		{ "node too many items", 1, BTRFS_HDR_NRITEMS, 4, 130,
		  "has more items than fit" },
		{ "item offset outside", 0, BTRFS_HDR_SIZE + 17, 4, NODE,
		  "has an item outside the leaf" },
		{ "item size outside", 0, BTRFS_HDR_SIZE + 21, 4, 0xffffffffu,
		  "has an item outside the leaf" },
		{ "item data over headers", 0, BTRFS_HDR_SIZE + 17, 4, 10,
		  "has an item outside the leaf" },
		{ "keys out of order", 0, BTRFS_HDR_SIZE + BTRFS_ITEM_SIZE, 8,
		  999, "has keys out of order" },
		{ "equal keys", 1, BTRFS_HDR_SIZE + BTRFS_PTR_SIZE, 8, 256,
		  "has keys out of order" },
		{ "child misaligned", 1, BTRFS_HDR_SIZE + 17, 8, AT + 1,
		  "points to a misaligned child" },
		{ "child zero", 1, BTRFS_HDR_SIZE + 17, 8, 0,
		  "points to a misaligned child" },
	};
	struct btrfs_fs fs;
	uint8_t *b = malloc(NODE);
	const char *why;

	if (!b)
		abort();
	memset(&fs, 0, sizeof(fs));
	fs.nodesize = NODE;
	fs.sectorsize = 4096;
	fs.csum_type = 0;
	fs.csum_size = 4;
	memset(fs.meta_uuid, 0xab, 16);
	for (size_t i = 0; i < VD_ARRAY_SIZE(cases); i++) {
		make_block(&fs, b, cases[i].level);
		if (cases[i].width)
			put_le(b + cases[i].off, cases[i].val, cases[i].width);
		seal(&fs, b);
		why = "";
		if (!cases[i].why) {
			CHECK(cases[i].name, !vd_btrfs_check_block(&fs, b, AT, &why));
		} else {
			CHECK(cases[i].name,
			      vd_btrfs_check_block(&fs, b, AT, &why) == -EIO);
			CHECK_MSG(cases[i].name, why, cases[i].why);
		}
	}
	/* A bad checksum: one byte changed after sealing. */
	make_block(&fs, b, 0);
	seal(&fs, b);
	b[NODE - 1] ^= 1;
	CHECK("bad checksum", vd_btrfs_check_block(&fs, b, AT, &why) == -EIO);
	CHECK_MSG("bad checksum", why, "fails its checksum");
	free(b);
}

static void test_keys(void)
{
	struct btrfs_key a = { 256, 1, 0 }, b = { 256, 1, 1 }, c = { 257, 0, 0 },
			 d = { 256, 12, 0 };

	CHECK("key offset", vd_btrfs_key_cmp(&a, &b) < 0);
	CHECK("key objectid", vd_btrfs_key_cmp(&c, &b) > 0);
	CHECK("key type", vd_btrfs_key_cmp(&a, &d) < 0);
	CHECK("key equal", vd_btrfs_key_cmp(&a, &a) == 0);
}

int main(void)
{
	test_csums();
	test_blocks();
	test_keys();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
