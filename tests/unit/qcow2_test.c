/* Unit tests: qcow2 header validation and the map, on images built field
 * by field in memory (a memfd), so each test pokes exactly one thing. */
#include <errno.h>
#include <stdint.h>
#include <zlib.h>

#include "common/util.h"
#include "core/disk.h"
#include "core/qcow2.h"
#include "tests/unit/unit.h"

#include "tests/unit/qimg.h"

static uint8_t buf[8 * CS];

static void test_map_basic(void)
{
	struct vd_disk *d;
	bool data;
	uint64_t n;

	img_init(1 << 20);
	add_cluster(0, 0x11, 0);
	add_cluster(1, 0x22, 0);
	/* cluster 2 unallocated; cluster 3 zero flag over real data */
	l2_set(3, add_cluster(3, 0x33, 0) | QCOW2_OFLAG_ZERO, 0);
	CHECK("basic open", !img_open(&d, NULL, NULL));
	CHECK("basic size", vd_disk_size(d) == 1 << 20);
	CHECK("basic read", !vd_disk_read(d, buf, 5 * CS, 0));
	CHECK("basic c0", all_bytes(buf, CS, 0x11));
	CHECK("basic c1", all_bytes(buf + CS, CS, 0x22));
	CHECK("basic unalloc", all_bytes(buf + 2 * CS, 3 * CS, 0));
	CHECK("basic mid read", !vd_disk_read(d, buf, 100, CS - 50) &&
					all_bytes(buf, 50, 0x11) &&
					all_bytes(buf + 50, 50, 0x22));
	CHECK("status data", !vd_disk_status(d, 0, 1 << 20, &data, &n) &&
				     data && n == 2 * CS);
	/* Unallocated then zero-flagged: both read as holes, maybe as two
	 * runs; seeking passes both. */
	CHECK("status hole", !vd_disk_status(d, 2 * CS, 1 << 20, &data, &n) &&
				     !data && n >= CS && n <= 2 * CS);
	CHECK("seek hole", !vd_disk_seek(d, 0, false, &n) && n == 2 * CS);
	CHECK("seek data end", vd_disk_seek(d, 2 * CS, true, &n) == -ENXIO);
	CHECK("read past end", vd_disk_read(d, buf, 2, (1 << 20) - 1) ==
				       -EINVAL);
	vd_disk_close(d);
}

static void test_map_bad_tables(void)
{
	struct vd_disk *d;

	img_init(1 << 20);
	add_cluster(0, 0x11, 0);
	put_be64(m.b + L1_AT, 0x7ff0000ULL); /* L2 past EOF */
	CHECK("l2 past eof opens", !img_open(&d, NULL, NULL));
	CHECK("l2 past eof EIO", vd_disk_read(d, buf, 512, 0) == -EIO);
	vd_disk_close(d);

	put_be64(m.b + L1_AT, L2_AT + 512); /* unaligned L2 */
	CHECK("l2 unaligned opens", !img_open(&d, NULL, NULL));
	CHECK("l2 unaligned EIO", vd_disk_read(d, buf, 512, 0) == -EIO);
	vd_disk_close(d);

	img_init(1 << 20);
	l2_set(0, 3 * CS + 4096, 0); /* unaligned data cluster */
	m.len = 4 * CS;
	CHECK("data unaligned opens", !img_open(&d, NULL, NULL));
	CHECK("data unaligned EIO", vd_disk_read(d, buf, 512, 0) == -EIO);
	CHECK("other cluster fine", !vd_disk_read(d, buf, 512, CS));
	vd_disk_close(d);

	img_init(1 << 20);
	l2_set(0, 20 * CS, 0); /* data past EOF */
	CHECK("data past eof opens", !img_open(&d, NULL, NULL));
	CHECK("data past eof EIO", vd_disk_read(d, buf, 512, 0) == -EIO);
	vd_disk_close(d);
}

static void test_compressed(void)
{
	struct vd_disk *d;
	size_t clen;
	bool ok = true;

	img_init(1 << 20);
	clen = add_compressed(1, 7);
	CHECK("compressed small", clen < CS / 4);
	CHECK("compressed open", !img_open(&d, NULL, NULL));
	CHECK("compressed read", !vd_disk_read(d, buf, CS, CS));
	for (unsigned i = 0; i < CS; i++)
		ok &= buf[i] == (uint8_t)(7 + i / 1000);
	CHECK("compressed bytes", ok);
	CHECK("compressed tail", !vd_disk_read(d, buf, 10, 2 * CS - 10) &&
					 buf[9] == (uint8_t)(7 + (CS - 1) / 1000));
	vd_disk_close(d);

	/* Damage the stream: the read fails with EIO, not garbage. */
	memset(m.b + m.len - clen + 10, 0xff, 32);
	CHECK("bad compressed open", !img_open(&d, NULL, NULL));
	CHECK("bad compressed EIO", vd_disk_read(d, buf, CS, CS) == -EIO);
	vd_disk_close(d);
}

static void test_extended_l2(void)
{
	struct vd_disk *d;
	const unsigned sc = CS / 32;

	img_init(1 << 20);
	put_be64(m.b + 72, QCOW2_INCOMPAT_EXTL2);
	m.entry = 16;
	/* subclusters 0-1 allocated, 2 zero, 3+ unallocated */
	add_cluster(0, 0x44, 0x3ULL | 0x4ULL << 32);
	CHECK("extl2 open", !img_open(&d, NULL, NULL));
	CHECK("extl2 read", !vd_disk_read(d, buf, 4 * sc, 0));
	CHECK("extl2 alloc", all_bytes(buf, 2 * sc, 0x44));
	CHECK("extl2 zero+unalloc", all_bytes(buf + 2 * sc, 2 * sc, 0));
	vd_disk_close(d);

	l2_set(0, 3 * CS | QCOW2_OFLAG_COPIED, 0x1ULL | 0x1ULL << 32);
	CHECK("extl2 bad open", !img_open(&d, NULL, NULL));
	CHECK("extl2 alloc+zero EIO", vd_disk_read(d, buf, sc, 0) == -EIO);
	vd_disk_close(d);

	put_be32(m.b + 20, 12); /* 4 KiB clusters: too small for ext L2 */
	CHECK("extl2 small clusters", img_open(&d, NULL, NULL) == -EUCLEAN);
}

static void test_header(void)
{
	static const struct {
		const char *name;
		unsigned off, width;
		uint64_t val;
		int err;
		const char *msg;
	} t[] = {
		{ "magic", 0, 4, 0x12345678, -EUCLEAN, "bad magic" },
		{ "version", 4, 4, 4, -ENOTSUP, "version 4" },
		{ "cluster_bits low", 20, 4, 8, -EUCLEAN, "cluster_bits 8" },
		{ "cluster_bits high", 20, 4, 22, -EUCLEAN, "cluster_bits 22" },
		{ "aes", 32, 4, 1, -ENOKEY, "AES-encrypted; give its passphrase "
		  "with --key-file" },
		{ "luks", 32, 4, 2, -EUCLEAN, "LUKS-encrypted, but the "
		  "encryption header extension is missing" },
		{ "l1 too small", 36, 4, 0, -EUCLEAN, "too small" },
		{ "l1 too large", 36, 4, 0x800000, -EUCLEAN, "too large" },
		{ "l1 unaligned", 40, 8, L1_AT + 8, -EUCLEAN, "aligned" },
		{ "l1 past eof", 40, 8, 0x7fff0000, -EUCLEAN,
		  "lies past the end of the file" },
		{ "header_length", 100, 4, 100, -EUCLEAN, "header_length 100" },
		{ "header_length odd", 100, 4, 108, -EUCLEAN, "header_length" },
		{ "incompat", 72, 8, 1ULL << 20, -ENOTSUP, "bit 20" },
		{ "compression no bit", 100, 4, 112, 0, NULL },
		{ "size huge", 24, 8, UINT64_MAX, -EUCLEAN, "too large" },
		{ "backing name", 8, 8, CS - 4, -EUCLEAN, "backing file name" },
	};
	struct vd_disk *d;
	char msg[VD_ERR_LEN];

	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		int ret;

		img_init(1 << 20);
		if (!strcmp(t[i].name, "backing name"))
			put_be32(m.b + 16, 100);
		if (t[i].width == 4)
			put_be32(m.b + t[i].off, (uint32_t)t[i].val);
		else
			put_be64(m.b + t[i].off, t[i].val);
		img_format = "qcow2"; /* no probing: bad magic must fail */
		ret = img_open(&d, NULL, msg);
		img_format = NULL;
		CHECK(t[i].name, ret == t[i].err);
		if (ret == 0)
			vd_disk_close(d);
		else if (t[i].msg)
			CHECK_MSG(t[i].name, msg, t[i].msg);
	}

	/* A feature name table names the unknown bit. */
	img_init(1 << 20);
	put_be64(m.b + 72, 1ULL << 20);
	put_be32(m.b + 104, 0x6803f857);
	put_be32(m.b + 108, 48);
	m.b[112] = 0;
	m.b[113] = 20;
	strcpy((char *)m.b + 114, "frobnicate");
	CHECK("feature name", img_open(&d, NULL, msg) == -ENOTSUP);
	CHECK_MSG("feature name", msg, "bit 20 (frobnicate)");

	/* An extension longer than the header area. */
	img_init(1 << 20);
	put_be32(m.b + 104, 0x12345678);
	put_be32(m.b + 108, CS);
	CHECK("ext too long", img_open(&d, NULL, msg) == -EUCLEAN);
	CHECK_MSG("ext too long", msg, "header extension 0x12345678");

	/* zstd named but the bit missing, and the reverse. */
	img_init(1 << 20);
	put_be32(m.b + 100, 112);
	m.b[104] = 1;
	CHECK("ctype without bit", img_open(&d, NULL, msg) == -EUCLEAN);
	put_be64(m.b + 72, QCOW2_INCOMPAT_COMPRESSION);
	m.b[104] = 0;
	CHECK("bit without ctype", img_open(&d, NULL, msg) == -EUCLEAN);
	m.b[104] = 9;
	CHECK("unknown ctype", img_open(&d, NULL, msg) == -ENOTSUP);

	/* Too short to be anything. */
	img_init(1 << 20);
	m.len = 50;
	CHECK("short file", img_open(&d, NULL, msg) == -EUCLEAN);
	CHECK_MSG("short file", msg, "too short");

	/* No snapshots to pick from. */
	img_init(1 << 20);
	CHECK("no snapshots", img_open(&d, "s1", msg) == -ENOENT);
	CHECK_MSG("no snapshots", msg, "no internal snapshots");
	/* A snapshot table entry past the end of the file. */
	put_be32(m.b + 60, 1);
	put_be64(m.b + 64, 30 * CS);
	CHECK("snapshot table past eof", img_open(&d, "s1", msg) == -EUCLEAN);
}

int main(void)
{
	vd_log_set_level(VD_LOG_ERR - 1); /* expected errors stay quiet */
	test_map_basic();
	test_map_bad_tables();
	test_compressed();
	test_extended_l2();
	test_header();
	return unit_done();
}
