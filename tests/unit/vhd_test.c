/* Unit tests: VHD footer and dynamic header validation, the virtual size
 * rule, the map (BAT, sector bitmaps), parent locator decoding and the
 * parent unique id check, on images built field by field in memory.
 *
 * Layout of a built image: footer copy at 0, dynamic header at 512, BAT
 * at 1536 (padded to 4 KiB), locator data from LOC_AT, then blocks
 * appended as added, then the footer. Fixed images: data, then footer.
 * Differencing images and their parents are written to a scratch folder
 * (a parent is found by name beside the child); others go to a memfd. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "core/disk.h"
#include "tests/unit/unit.h"

#define SEC 512u
#define BS (64u * 1024) /* block size: 128 sectors, a 512-byte bitmap */
#define BAT_AT 1536u
#define LOC_AT (BAT_AT + 4096u)
#define DATA_AT (LOC_AT + 8 * 1024u)
#define MAXLEN (4u << 20)

struct vimg {
	uint8_t b[MAXLEN];
	size_t len;	/* end of data; the footer goes here */
	bool fixed;
	bool keep_sums; /* vimg_done leaves checksums as they are */
};

static struct vimg m;
static char dir[64];
static uint8_t buf[4 * BS];

static uint32_t sum_of(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			s += p[i];
	return ~s;
}

/* A disk of size bytes (creator "win ": size is current_size). */
static void vimg_init(unsigned type, uint64_t size)
{
	uint8_t *ft = m.b;

	memset(&m, 0, sizeof(m));
	m.fixed = type == 2;
	if (m.fixed) {
		ft = m.b + size;
		m.len = size;
	}
	memcpy(ft, "conectix", 8);
	put_be32(ft + 8, 2);
	put_be32(ft + 12, 0x00010000);
	put_be64(ft + 16, m.fixed ? ~0ULL : 512);
	memcpy(ft + 28, "win ", 4);
	put_be64(ft + 40, size);
	put_be64(ft + 48, size);
	put_be32(ft + 56, 0x01020304); /* geometry: ignored for "win " */
	put_be32(ft + 60, type);
	for (int i = 0; i < 16; i++)
		ft[68 + i] = (uint8_t)(0xa0 + i + type);
	if (m.fixed)
		return;
	memcpy(m.b + 512, "cxsparse", 8);
	put_be64(m.b + 512 + 8, ~0ULL);
	put_be64(m.b + 512 + 16, BAT_AT);
	put_be32(m.b + 512 + 24, 0x00010000);
	put_be32(m.b + 512 + 28, (uint32_t)((size + BS - 1) / BS));
	put_be32(m.b + 512 + 32, BS);
	memset(m.b + BAT_AT, 0xff, LOC_AT - BAT_AT);
	m.len = DATA_AT;
}

/* Fill in checksums and the footer at the end. */
static void vimg_done(void)
{
	if (m.keep_sums)
		return; /* final: a test broke something on purpose */
	if (m.fixed) {
		put_be32(m.b + m.len + 64, sum_of(m.b + m.len, 512, 64));
		return;
	}
	put_be32(m.b + 64, sum_of(m.b, 512, 64));
	put_be32(m.b + 512 + 36, sum_of(m.b + 512, 1024, 36));
	memcpy(m.b + m.len, m.b, 512);
}

static size_t vimg_total(void)
{
	return m.len + 512;
}

/* Block idx: data byte (byte + sector % 7), bitmap bits from bits (bit
 * i for sector i, repeating every 64 sectors). */
static uint64_t vimg_block(uint32_t idx, int byte, uint64_t bits)
{
	uint64_t at = m.len;

	for (unsigned s = 0; s < BS / SEC; s++) {
		if (bits >> (s % 64) & 1)
			m.b[at + s / 8] |= (uint8_t)(0x80 >> (s % 8));
		memset(m.b + at + SEC + s * SEC, byte + (int)(s % 7), SEC);
	}
	put_be32(m.b + BAT_AT + idx * 4, (uint32_t)(at / SEC));
	m.len = at + SEC + BS;
	return at;
}

static void vimg_locator(unsigned slot, const char *code, const void *data,
			 uint32_t n)
{
	uint8_t *ent = m.b + 512 + 576 + slot * 24;
	uint64_t at = LOC_AT + slot * 1024u;

	memcpy(ent, code, 4);
	put_be32(ent + 4, 2);
	put_be32(ent + 8, n);
	put_be64(ent + 16, at);
	memcpy(m.b + at, data, n);
}

/* UTF-8 test strings here are ASCII or spelled out as UTF-16 below. */
static uint32_t utf16le(const char *s, uint8_t *out)
{
	uint32_t n = 0;

	for (; *s; s++) {
		out[n++] = (uint8_t)*s;
		out[n++] = 0;
	}
	return n;
}

static int vimg_open_opts(struct vd_disk **d, const char *format,
			  bool ignore_ids, char *msg)
{
	struct vd_open_opts o = { .format = format,
				  .ignore_parent_ids = ignore_ids };
	size_t total = vimg_total();

	vimg_done();
	return unit_mem_disk(m.b, total, &o, d, msg);
}

static int vimg_open(struct vd_disk **d, char *msg)
{
	return vimg_open_opts(d, NULL, false, msg);
}

/* Save the image as dir/name. */
static void vimg_save(const char *name)
{
	char path[128];
	FILE *f;

	vimg_done();
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(m.b, 1, vimg_total(), f) != vimg_total())
		printf("cannot write %s\n", path);
	if (f)
		fclose(f);
}

static int open_saved(const char *name, bool ignore_ids, struct vd_disk **d,
		      char *msg)
{
	struct vd_open_opts o = { .ignore_parent_ids = ignore_ids };
	struct vd_err e = { "" };
	char path[128];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ret = vd_disk_open(path, &o, d, &e);
	if (msg)
		strcpy(msg, e.msg);
	return ret;
}

static void test_footer(void)
{
	struct vd_disk *d;
	char msg[VD_ERR_LEN];

	vimg_init(3, 1 << 20);
	CHECK("dynamic opens", !vimg_open(&d, msg));
	if (!d)
		return;
	CHECK("dynamic size", vd_disk_size(d) == 1 << 20);
	CHECK("dynamic format", !strcmp(vd_layer_format(vd_disk_top(d)),
					"vpc"));
	vd_disk_close(d);

	/* A bad footer checksum. */
	vimg_init(3, 1 << 20);
	vimg_done();
	m.b[24] ^= 1; /* time stamp */
	m.keep_sums = true;
	CHECK("footer checksum", vimg_open(&d, msg) == -EUCLEAN);
	CHECK_MSG("footer checksum", msg, "footer copy at offset 0: checksum");

	/* Bad dynamic header checksum. */
	vimg_init(3, 1 << 20);
	vimg_done();
	m.b[512 + 60] ^= 1;
	m.keep_sums = true;
	CHECK("dyn checksum", vimg_open(&d, msg) == -EUCLEAN);
	CHECK_MSG("dyn checksum", msg, "dynamic header checksum");

	static const struct {
		const char *name;
		size_t off;	/* field in the file */
		uint32_t v;	/* be32 written there */
		int err;
		const char *needle;
	} t[] = {
		{ "version", 12, 0x00020000, -ENOTSUP, "footer version" },
		{ "type 5", 60, 5, -ENOTSUP, "disk type 5" },
		{ "type fixed at head", 60, 2, -EUCLEAN, "footer copy at offset 0" },
		{ "dyn cookie", 512, 0x41414141, -EUCLEAN, "cxsparse" },
		{ "dyn version", 512 + 24, 0x00030000, -ENOTSUP,
		  "dynamic header version" },
		{ "block size 3000", 512 + 32, 3000, -EUCLEAN, "block size 3000" },
		{ "block size 256", 512 + 32, 256, -EUCLEAN, "block size 256" },
		{ "block size 0", 512 + 32, 0, -EUCLEAN, "block size 0" },
		{ "BAT too small", 512 + 28, 15, -EUCLEAN, "too small" },
		{ "BAT absurd", 512 + 28, 0x7fffffff, -EUCLEAN,
		  "BAT (2147483647 entries at 0x600) lies past the end" },
		{ "BAT past eof", 512 + 20, 0x7ffffff0, -EUCLEAN,
		  "lies past the end of the file" },
		{ "dyn header past eof", 16 + 4, 0x7ffffff0, -EUCLEAN,
		  "dynamic header at 0x7ffffff0" },
	};
	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		vimg_init(3, 1 << 20);
		put_be32(m.b + t[i].off, t[i].v);
		CHECK(t[i].name, vimg_open(&d, msg) == t[i].err);
		CHECK_MSG(t[i].name, msg, t[i].needle);
	}

	/* Too short for anything: refused as vpc. */
	{
		struct vd_open_opts o = { .format = "vpc" };
		struct vd_err e = { "" };
		int fd = memfd_create("short", 0);
		char path[64];

		CHECK("short write", write(fd, "conectix", 8) == 8);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		CHECK("short file", vd_disk_open(path, &o, &d, &e) == -EUCLEAN);
		CHECK_MSG("short file", e.msg, "too short");
		close(fd);
	}
}

/* QEMU 7.2's size rule: CHS unless the creator is known to record the
 * exact size, or the geometry is the maximum. */
static void test_size_rule(void)
{
	static const struct {
		const char app[5];
		uint16_t c;
		uint8_t h, s;
		uint64_t cur, want;
	} t[] = {
		{ "qemu", 100, 16, 63, 52000256, 100ULL * 16 * 63 * 512 },
		{ "vpc ", 100, 16, 63, 52000256, 100ULL * 16 * 63 * 512 },
		{ "vs  ", 100, 16, 63, 52000256, 100ULL * 16 * 63 * 512 },
		{ "win ", 100, 16, 63, 52000256, 52000256 },
		{ "qem2", 100, 16, 63, 52000256, 52000256 },
		{ "d2v ", 100, 16, 63, 52000256, 52000256 },
		{ "CTXS", 100, 16, 63, 52000256, 52000256 },
		{ "tap", 100, 16, 63, 52000256, 52000256 },
		/* Not a whole number of sectors: rounded down. */
		{ "win ", 100, 16, 63, 52000100, 51999744 },
		/* Maximum geometry: current_size, whatever the creator. */
		{ "qemu", 65535, 16, 255, 52000256, 52000256 },
	};
	struct vd_disk *d;
	char msg[VD_ERR_LEN];

	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		/* A dynamic image with enough BAT entries for either. */
		vimg_init(3, 60000000);
		memcpy(m.b + 28, t[i].app, 4);
		put_be64(m.b + 48, t[i].cur);
		m.b[56] = (uint8_t)(t[i].c >> 8);
		m.b[57] = (uint8_t)t[i].c;
		m.b[58] = t[i].h;
		m.b[59] = t[i].s;
		CHECK(t[i].app, !vimg_open(&d, msg));
		if (!d)
			continue;
		CHECK(t[i].app, vd_disk_size(d) == t[i].want);
		vd_disk_close(d);
	}

	/* Larger than 2040 GiB. */
	vimg_init(3, 1 << 20);
	put_be64(m.b + 48, 0xff000001ULL * 512);
	CHECK("too large", vimg_open(&d, msg) == -EUCLEAN);
	CHECK_MSG("too large", msg, "2040 GiB");
}

static void test_fixed(void)
{
	struct vd_disk *d = NULL;
	char msg[VD_ERR_LEN];

	vimg_init(2, 1 << 20);
	memset(m.b, 0x42, 1 << 20);
	m.b[5] = 0x43;
	CHECK("fixed opens as vpc", !vimg_open_opts(&d, "vpc", false, msg));
	if (d) {
		CHECK("fixed size", vd_disk_size(d) == 1 << 20);
		CHECK("fixed read", !vd_disk_read(d, buf, 4096, (1 << 20) - 4096) &&
					    all_bytes(buf, 4096, 0x42));
		CHECK("fixed read 0", !vd_disk_read(d, buf, 8, 0) &&
					      buf[5] == 0x43 && buf[4] == 0x42);
		vd_disk_close(d);
	}
	/* Probed: by its footer (QEMU would say raw). */
	CHECK("fixed probes vpc", !vimg_open(&d, msg));
	if (d) {
		CHECK("fixed probed format", !strcmp(vd_layer_format(vd_disk_top(d)),
						     "vpc"));
		CHECK("fixed probed size", vd_disk_size(d) == 1 << 20);
		vd_disk_close(d);
	}
	/* -F raw: the file, footer included. */
	CHECK("fixed as raw", !vimg_open_opts(&d, "raw", false, msg));
	if (d) {
		CHECK("fixed as raw size", vd_disk_size(d) == (1 << 20) + 512);
		vd_disk_close(d);
	}
	/* A footer whose size is not the file's: data, the file is raw. */
	vimg_init(2, 1 << 20);
	put_be64(m.b + m.len + 48, 1 << 19);
	CHECK("footer of another size probes raw", !vimg_open(&d, msg));
	if (d) {
		CHECK("footer of another size: raw",
		      !strcmp(vd_layer_format(vd_disk_top(d)), "raw"));
		vd_disk_close(d);
	}
	/* A footer with the cookie and a bad checksum: refused, naming -F. */
	vimg_init(2, 1 << 20);
	vimg_done();
	m.b[m.len + 24] ^= 1;
	m.keep_sums = true;
	CHECK("bad footer checksum refused", vimg_open(&d, msg) == -EUCLEAN);
	CHECK_MSG("bad footer checksum refused", msg, "-F raw");
	/* The footer claims more than the file holds. */
	vimg_init(2, 1 << 20);
	put_be64(m.b + m.len + 48, 2 << 20);
	CHECK("fixed too big", vimg_open_opts(&d, "vpc", false, msg) == -EUCLEAN);
	CHECK_MSG("fixed too big", msg, "holds only 1048576 bytes");
	/* No footer anywhere. */
	vimg_init(2, 1 << 20);
	vimg_done();
	memset(m.b + m.len, 0, 8);
	m.keep_sums = true;
	CHECK("no footer", vimg_open_opts(&d, "vpc", false, msg) == -EUCLEAN);
	CHECK_MSG("no footer", msg, "not a VHD image");
	/* A dynamic disk whose footer copy at 0 is gone. */
	vimg_init(3, 1 << 20);
	vimg_done();
	memset(m.b, 0, 8);
	m.keep_sums = true;
	CHECK("no copy", vimg_open_opts(&d, "vpc", false, msg) == -EUCLEAN);
	CHECK_MSG("no copy", msg, "no footer copy");
}

static void test_map(void)
{
	struct vd_disk *d = NULL;
	char msg[VD_ERR_LEN];
	bool data;
	uint64_t n;

	/* 1 MiB + 1 KiB: the last block is partial. */
	vimg_init(3, (1 << 20) + 1024);
	vimg_block(0, 0x10, 0);	  /* dynamic: the bitmap is ignored */
	vimg_block(2, 0x30, ~0ULL);
	vimg_block(16, 0x50, ~0ULL);
	CHECK("map opens", !vimg_open(&d, msg));
	if (!d)
		return;
	CHECK("map read", !vd_disk_read(d, buf, 3 * BS, 0));
	CHECK("map block 0", all_bytes(buf, SEC, 0x10) &&
				     all_bytes(buf + 6 * SEC, SEC, 0x16) &&
				     all_bytes(buf + 7 * SEC, SEC, 0x10));
	CHECK("map block 1 zero", all_bytes(buf + BS, BS, 0));
	CHECK("map block 2", all_bytes(buf + 2 * BS, SEC, 0x30));
	CHECK("map tail", !vd_disk_read(d, buf, 1024, 1 << 20) &&
				  all_bytes(buf, SEC, 0x50) &&
				  all_bytes(buf + SEC, SEC, 0x51));
	CHECK("map unaligned", !vd_disk_read(d, buf, 3, BS - 1) &&
				       buf[0] == 0x10 + (int)((BS / SEC - 1) % 7) &&
				       buf[1] == 0 && buf[2] == 0);
	CHECK("status data", !vd_disk_status(d, 0, 1 << 20, &data, &n) &&
				     data && n == BS);
	CHECK("status hole", !vd_disk_status(d, BS, 1 << 20, &data, &n) &&
				     !data && n == BS);
	vd_disk_close(d);

	/* A BAT entry past the end of the file: that block fails with EIO,
	 * others read. */
	vimg_init(3, 1 << 20);
	vimg_block(0, 0x10, ~0ULL);
	vimg_block(1, 0x20, ~0ULL);
	put_be32(m.b + BAT_AT + 4, 0x00ffffff);
	CHECK("bat past eof opens", !vimg_open(&d, msg));
	if (d) {
		CHECK("bat past eof EIO", vd_disk_read(d, buf, SEC, BS) == -EIO);
		CHECK("bat past eof other", !vd_disk_read(d, buf, SEC, 0) &&
						    buf[0] == 0x10);
		vd_disk_close(d);
	}
	/* The bitmap fits, the block's data does not. */
	vimg_init(3, 1 << 20);
	vimg_block(0, 0x10, ~0ULL);
	put_be32(m.b + BAT_AT, (uint32_t)(m.len / SEC));
	CHECK("data past eof opens", !vimg_open(&d, msg));
	if (d) {
		CHECK("data past eof EIO", vd_disk_read(d, buf, SEC, 0) == -EIO);
		vd_disk_close(d);
	}
}

/* ------------------------------------------------------------ chains */

/* A dynamic parent with every block's sectors = 0x70 + sector % 7. */
static void save_parent(const char *name)
{
	vimg_init(3, 1 << 20);
	for (uint32_t i = 0; i < 16; i++)
		vimg_block(i, 0x70, 0);
	vimg_save(name);
}

static const uint8_t parent_id[16] = { 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
				       0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
				       0xaf, 0xb0, 0xb1, 0xb2 };

/* A differencing child of a 1 MiB parent (parent_id matches what
 * vimg_init gives a dynamic disk). */
static void child_init(void)
{
	vimg_init(4, 1 << 20);
	memcpy(m.b + 512 + 40, parent_id, 16);
}

static void test_differencing(void)
{
	struct vd_disk *d = NULL;
	char msg[VD_ERR_LEN];
	uint8_t loc[256];
	bool ok = true, data;
	uint64_t n;

	save_parent("parent.vhd");
	child_init();
	/* Block 1: runs of sectors in the child (bit set) and in the
	 * parent, of lengths 3, 2, 3, 5, 3, ... (the pattern repeats every
	 * 64 sectors). */
	vimg_block(1, 0x10, 0xe0e0e0e0e0e0e0e7ULL);
	vimg_block(3, 0x30, ~0ULL);
	vimg_locator(0, "W2ru", loc, utf16le(".\\parent.vhd", loc));
	vimg_save("child.vhd");
	CHECK("diff opens", !open_saved("child.vhd", false, &d, msg));
	if (!d) {
		printf("    %s\n", msg);
		return;
	}
	CHECK("diff backing", vd_layer_backing(vd_disk_top(d)) &&
				      strstr(vd_layer_path(vd_layer_backing(
						     vd_disk_top(d))),
					     "parent.vhd"));
	CHECK("diff read", !vd_disk_read(d, buf, 4 * BS, 0));
	/* Block 0 unallocated in the child: the parent's. */
	CHECK("diff block 0", all_bytes(buf, SEC, 0x70) &&
				      all_bytes(buf + SEC, SEC, 0x71));
	for (unsigned s = 0; s < BS / SEC; s++) {
		uint64_t bits = 0xe0e0e0e0e0e0e0e7ULL;
		int want = (bits >> (s % 64) & 1 ? 0x10 : 0x70) + (int)(s % 7);

		if (!all_bytes(buf + BS + s * SEC, SEC, want)) {
			ok = false;
			printf("    sector %u of block 1: got 0x%02x, want "
			       "0x%02x\n", s, buf[BS + s * SEC], want);
			break;
		}
	}
	CHECK("diff bitmap", ok);
	CHECK("diff block 3", all_bytes(buf + 3 * BS, SEC, 0x30));
	/* Reads that start and end inside sectors across bitmap changes. */
	CHECK("diff unaligned", !vd_disk_read(d, buf, 3 * SEC, BS + 2 * SEC + 100) &&
					buf[0] == 0x12 && buf[SEC - 100] == 0x73 &&
					buf[2 * SEC] == 0x74);
	/* The whole chain reports data where either layer has it. */
	CHECK("diff status", !vd_disk_status(d, 0, 1 << 20, &data, &n) && data);
	vd_disk_close(d);

	/* The parent's unique id differs. */
	child_init();
	m.b[512 + 40] ^= 0xff;
	vimg_locator(0, "W2ru", loc, utf16le("parent.vhd", loc));
	vimg_save("wrongid.vhd");
	CHECK("parent id mismatch", open_saved("wrongid.vhd", false, &d, msg) ==
					    -EUCLEAN);
	CHECK_MSG("parent id mismatch", msg, "parent unique id 5ca4a5a6-");
	CHECK_MSG("parent id mismatch", msg, "unique id a3a4a5a6-a7a8-a9aa-abac-adaeafb0b1b2");
	CHECK_MSG("parent id mismatch", msg, "--ignore-parent-id");
	CHECK("parent id ignored", !open_saved("wrongid.vhd", true, &d, msg));
	if (d)
		vd_disk_close(d);

	/* The parent is not a VHD. */
	{
		char path[128];
		FILE *f;

		snprintf(path, sizeof(path), "%s/raw.img", dir);
		f = fopen(path, "wb");
		if (f) {
			fwrite(buf, 1, 4096, f);
			fclose(f);
		}
	}
	child_init();
	vimg_locator(0, "W2ru", loc, utf16le("raw.img", loc));
	vimg_save("rawparent.vhd");
	CHECK("raw parent", open_saved("rawparent.vhd", false, &d, msg) ==
				    -EUCLEAN);
	CHECK_MSG("raw parent", msg, "not a VHD image");
}

/* Locators: which one is chosen and how its text becomes a name. The
 * named files do not exist, so the open fails naming the decoded name. */
static void test_locators(void)
{
	static const uint8_t w2ku_utf16[] = {
		/* "C:\vms\p" U+00E9 U+1F600 ".vhd" in UTF-16LE */
		'C', 0, ':', 0, '\\', 0, 'v', 0, 'm', 0, 's', 0, '\\', 0,
		'p', 0, 0xe9, 0x00, 0x3d, 0xd8, 0x00, 0xde, '.', 0, 'v', 0,
		'h', 0, 'd', 0, 0, 0, 0, 0,
	};
	static const uint8_t bad_surrogate[] = { 'a', 0, 0x00, 0xdc, 'b', 0 };
	static const uint8_t name_be[] = { 0, 'n', 0, 'm', 0, '.', 0, 'v',
					   0, 'h', 0, 'd' };
	struct vd_disk *d = NULL;
	char msg[VD_ERR_LEN];
	uint8_t loc[512];
	uint32_t n;

	static const struct {
		const char *name;
		const char *code;
		const char *text; /* ASCII; W2* codes get UTF-16LE */
		int err;
		const char *needle;
	} t[] = {
		{ "W2ru dot", "W2ru", ".\\sub\\p.vhd", -ENOENT, "'sub/p.vhd' not found" },
		{ "W2ru dotdot", "W2ru", "..\\up\\p.vhd", -ENOENT, "'../up/p.vhd' not found" },
		{ "W2ru drive", "W2ru", "D:\\x\\q.vhd", -ENOENT, "'q.vhd' not found" },
		{ "W2ku", "W2ku", "C:\\Hyper-V\\disks\\base.vhd", -ENOENT,
		  "'base.vhd' not found" },
		{ "W2ku UNC", "W2ku", "\\\\server\\share\\b2.vhd", -ENOENT,
		  "'b2.vhd' not found" },
		{ "MacX abs", "MacX", "file:///Users/me/p%20x.vhd", -ENOENT,
		  "'/Users/me/p x.vhd' not found" },
		{ "MacX localhost", "MacX", "file://localhost/v/y.vhd", -ENOENT,
		  "'/v/y.vhd' not found" },
		{ "MacX relative", "MacX", "file://./rel.vhd", -ENOENT,
		  "'./rel.vhd' not found" },
		{ "MacX not file", "MacX", "http://x/y.vhd", -EUCLEAN,
		  "parent locator 0 (MacX): not a file:// URL" },
		{ "MacX bad escape", "MacX", "file:///a%zz", -EUCLEAN,
		  "not a file:// URL" },
		{ "MacX NUL escape", "MacX", "file:///a%00b", -EUCLEAN,
		  "not a file:// URL" },
		{ "control char", "W2ru", "a\nb.vhd", -EUCLEAN,
		  "control character" },
	};
	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		child_init();
		if (t[i].code[0] == 'W')
			n = utf16le(t[i].text, loc);
		else
			n = (uint32_t)strlen(t[i].text);
		vimg_locator(0, t[i].code, t[i].code[0] == 'W' ? loc :
					   (const uint8_t *)t[i].text, n);
		vimg_save("loc.vhd");
		CHECK(t[i].name, open_saved("loc.vhd", false, &d, msg) ==
					 t[i].err);
		CHECK_MSG(t[i].name, msg, t[i].needle);
	}

	/* UTF-16 beyond ASCII, with a surrogate pair, and trailing NULs. */
	child_init();
	vimg_locator(0, "W2ku", w2ku_utf16, sizeof(w2ku_utf16));
	vimg_save("loc.vhd");
	CHECK("W2ku utf8", open_saved("loc.vhd", false, &d, msg) == -ENOENT);
	CHECK_MSG("W2ku utf8", msg, "'p\xc3\xa9\xf0\x9f\x98\x80.vhd' not found");

	child_init();
	vimg_locator(0, "W2ru", bad_surrogate, sizeof(bad_surrogate));
	vimg_save("loc.vhd");
	CHECK("bad surrogate", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("bad surrogate", msg, "invalid UTF-16");

	child_init();
	vimg_locator(0, "W2ru", "a\0b", 3);
	vimg_save("loc.vhd");
	CHECK("odd length", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("odd length", msg, "odd length");

	/* Locator data past the end of the file, and absurdly long. */
	child_init();
	vimg_locator(0, "W2ru", loc, utf16le("x.vhd", loc));
	put_be64(m.b + 512 + 576 + 16, 0x7ffffff000ULL);
	vimg_save("loc.vhd");
	CHECK("locator past eof", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("locator past eof", msg, "parent locator 0 (10 bytes at 0x7ffffff000) lies past");
	child_init();
	vimg_locator(3, "W2ru", loc, utf16le("x.vhd", loc));
	put_be32(m.b + 512 + 576 + 3 * 24 + 8, 1 << 20);
	vimg_save("loc.vhd");
	CHECK("locator too long", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("locator too long", msg, "parent locator 3 holds 1048576 bytes");

	/* Order: W2ru before W2ku before MacX whatever the slots, when
	 * none exists ... */
	child_init();
	vimg_locator(0, "MacX", "file:///m.vhd", 13);
	vimg_locator(1, "W2ku", loc, utf16le("C:\\k.vhd", loc));
	vimg_locator(2, "W2ru", loc, utf16le("r.vhd", loc));
	vimg_save("loc.vhd");
	CHECK("order", open_saved("loc.vhd", false, &d, msg) == -ENOENT);
	CHECK_MSG("order", msg, "'r.vhd' not found");
	/* ... and the first that exists otherwise. */
	save_parent("k.vhd");
	CHECK("order exists", !open_saved("loc.vhd", false, &d, msg));
	if (d) {
		CHECK("order picked", strstr(vd_layer_path(vd_layer_backing(
						     vd_disk_top(d))),
					     "/k.vhd") != NULL);
		vd_disk_close(d);
	}

	/* Unread codes are skipped; the header's parent name is the last
	 * resort (UTF-16BE). */
	child_init();
	vimg_locator(0, "Mac ", "alias", 5);
	memcpy(m.b + 512 + 64, name_be, sizeof(name_be));
	vimg_save("loc.vhd");
	CHECK("parent name", open_saved("loc.vhd", false, &d, msg) == -ENOENT);
	CHECK_MSG("parent name", msg, "'nm.vhd' not found");
	/* A relative Windows path as the parent name. */
	child_init();
	{
		static const char pn[] = "sub\\nm.vhd";

		for (size_t i = 0; pn[i]; i++)
			m.b[512 + 64 + 2 * i + 1] = (uint8_t)pn[i];
	}
	vimg_save("loc.vhd");
	CHECK("parent name path", open_saved("loc.vhd", false, &d, msg) == -ENOENT);
	CHECK_MSG("parent name path", msg, "'sub/nm.vhd' not found");
	/* An invalid parent name is no candidate. */
	child_init();
	m.b[512 + 64] = 0xdc;
	m.b[512 + 65] = 0x01;
	vimg_save("loc.vhd");
	CHECK("bad parent name", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("bad parent name", msg, "names no parent");
	/* Nothing at all. */
	child_init();
	vimg_save("loc.vhd");
	CHECK("no parent", open_saved("loc.vhd", false, &d, msg) == -EUCLEAN);
	CHECK_MSG("no parent", msg, "names no parent");

	/* A locator leading out of the folder: refused by the folder rule. */
	child_init();
	vimg_locator(0, "W2ru", loc, utf16le("..\\..\\..\\..\\..\\..\\..\\..\\"
					     "..\\..\\etc\\passwd", loc));
	vimg_save("loc.vhd");
	CHECK("passwd", open_saved("loc.vhd", false, &d, msg) == -EPERM);
	CHECK_MSG("passwd", msg, "'/etc/passwd' is outside the allowed folders");
}

static void cleanup(void)
{
	static const char *const names[] = { "parent.vhd", "child.vhd",
					     "wrongid.vhd", "raw.img",
					     "rawparent.vhd", "loc.vhd",
					     "k.vhd" };
	char path[128];

	for (size_t i = 0; i < VD_ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	vd_log_set_level(VD_LOG_ERR - 1); /* expected errors stay quiet */
	strcpy(dir, "/tmp/vhd_test.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_footer();
	test_size_rule();
	test_fixed();
	test_map();
	test_differencing();
	test_locators();
	cleanup();
	return unit_done();
}
