/* Unit tests: VHDX CRC-32C, the map's block states, and the log replay's
 * resolution of overlapping writes (later writes win, zero ranges cut by
 * data pages, pages past the end of the file), on an image built field
 * by field in memory.
 *
 * Layout: headers at 64 and 128 KiB, region tables at 192 and 256 KiB,
 * BAT at 1 MiB, metadata at 2 MiB (items from +64 KiB), block 0 at 3 MiB
 * (0x11), block 3 at 4 MiB (0x33); block 1 ZERO, block 2 not present. The
 * log variant adds a log at 5 MiB. 1 MiB blocks, 4 MiB disk. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "core/disk.h"
#include "core/vhdx.h"
#include "tests/unit/unit.h"

#define MIB (1u << 20)
#define LEN (6u * MIB)

static uint8_t *img;
static uint8_t got[MIB];

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* GUIDs as stored ([MS-VHDX]: the first three fields little-endian). */
static const uint8_t bat_g[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00,
				   0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd,
				   0x4a, 0x08 };
static const uint8_t meta_g[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47,
				    0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f,
				    0x05, 0x0f, 0x88, 0x6e };
static const uint8_t items[4][16] = {
	{ 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33,
	  0xf0, 0xaa, 0x44, 0xe7, 0x6b }, /* file parameters */
	{ 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d,
	  0xbe, 0xd8, 0x3b, 0xf4, 0xb8 }, /* virtual disk size */
	{ 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2,
	  0x33, 0xa8, 0xfa, 0xab, 0x5f }, /* logical sector size */
	{ 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44, 0x9c, 0xc9, 0xe9,
	  0x88, 0x52, 0x51, 0xc5, 0x56 }, /* physical sector size */
};
static const uint8_t log_g[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				   13, 14, 15, 16 };

static void fix_sums(void)
{
	for (uint32_t at = 64 << 10; at <= 128 << 10; at += 64 << 10)
		put32(img + at + 4, vd_vhdx_sum(img + at, 4096, 4));
	for (uint32_t at = 192 << 10; at <= 256 << 10; at += 64 << 10)
		put32(img + at + 4, vd_vhdx_sum(img + at, 64 << 10, 4));
}

static void build(void)
{
	memset(img, 0, LEN);
	memcpy(img, "vhdxfile", 8);
	for (uint32_t k = 1; k <= 2; k++) {
		uint8_t *h = img + k * (64 << 10);

		memcpy(h, "head", 4);
		put64(h + 8, k);
		put16(h + 66, 1);
		put32(h + 68, MIB);
		put64(h + 72, 5 * MIB);
	}
	for (uint32_t at = 192 << 10; at <= 256 << 10; at += 64 << 10) {
		memcpy(img + at, "regi", 4);
		put32(img + at + 8, 2);
		memcpy(img + at + 16, bat_g, 16);
		put64(img + at + 32, MIB);
		put32(img + at + 40, MIB);
		memcpy(img + at + 48, meta_g, 16);
		put64(img + at + 64, 2 * MIB);
		put32(img + at + 72, MIB);
	}
	memcpy(img + 2 * MIB, "metadata", 8);
	put16(img + 2 * MIB + 10, 4);
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *e = img + 2 * MIB + 32 + 32 * i;

		memcpy(e, items[i], 16);
		put32(e + 16, (64u << 10) + 8 * i);
		put32(e + 20, i == 1 || i == 0 ? 8 : 4);
		put32(e + 24, 4);
	}
	put32(img + 2 * MIB + (64 << 10), MIB);	     /* block size */
	put64(img + 2 * MIB + (64 << 10) + 8, 4 * MIB); /* virtual size */
	put32(img + 2 * MIB + (64 << 10) + 16, 512);
	put32(img + 2 * MIB + (64 << 10) + 24, 512);
	put64(img + MIB, 3 * MIB | 6);	  /* block 0 */
	put64(img + MIB + 8, 2);	  /* block 1: ZERO */
	put64(img + MIB + 24, 4 * MIB | 6); /* block 3 */
	memset(img + 3 * MIB, 0x11, MIB);
	memset(img + 4 * MIB, 0x33, MIB);
	fix_sums();
}

static int open_img(size_t len, struct vd_disk **d, char *msg)
{
	struct vd_open_opts o = { 0 };

	return unit_mem_disk(img, len, &o, d, msg);
}

static void test_crc(void)
{
	CHECK("crc32c of 123456789",
	      ~vd_crc32c(~0u, "123456789", 9) == 0xe3069283u);
	CHECK("crc32c of nothing", ~vd_crc32c(~0u, "", 0) == 0);
}

static void test_states(void)
{
	struct vd_disk *d = NULL;
	char msg[256] = "";

	build();
	CHECK("open", open_img(LEN, &d, msg) == 0);
	if (!d) {
		printf("  %s\n", msg);
		return;
	}
	CHECK("size", vd_disk_size(d) == 4 * MIB);
	CHECK("read 0", vd_disk_read(d, got, MIB, 0) == 0 &&
				all_bytes(got, MIB, 0x11));
	CHECK("read zero", vd_disk_read(d, got, MIB, MIB) == 0 &&
				   all_bytes(got, MIB, 0));
	CHECK("read absent", vd_disk_read(d, got, MIB, 2 * MIB) == 0 &&
				     all_bytes(got, MIB, 0));
	CHECK("read 3", vd_disk_read(d, got, MIB, 3 * MIB) == 0 &&
				all_bytes(got, MIB, 0x33));
	vd_disk_close(d);
	/* Header 2 (current) broken: header 1 still opens it. */
	img[128 << 10] ^= 1;
	d = NULL;
	CHECK("one header", open_img(LEN, &d, msg) == 0);
	vd_disk_close(d);
	img[64 << 10] ^= 1;
	d = NULL;
	CHECK("no header", open_img(LEN, &d, msg) == -EUCLEAN);
	CHECK_MSG("no header msg", msg, "neither header");
}

/* One log entry at 5 MiB: descriptors, then a data sector per "desc". */
struct desc {
	const char *sig;
	uint64_t off, len; /* len: zero descriptors */
	int byte;	   /* data: fill byte, or -1: the BAT page below */
};

static void put_entry(const struct desc *ds, unsigned n)
{
	uint8_t *e = img + 5 * MIB, page[4096];
	unsigned data = 0;
	uint32_t len;

	memset(e, 0, MIB);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(ds[i].sig, "desc"))
			data++;
	len = (1 + data) * 4096;
	memcpy(e, "loge", 4);
	put32(e + 8, len);
	put32(e + 12, 0);
	put64(e + 16, 7);
	put32(e + 24, n);
	memcpy(e + 32, log_g, 16);
	put64(e + 48, 5 * MIB);
	put64(e + 56, 7 * MIB);
	data = 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = e + 64 + 32 * i, *s;

		memcpy(d, ds[i].sig, 4);
		put64(d + 16, ds[i].off);
		put64(d + 24, 7);
		if (!strcmp(ds[i].sig, "zero")) {
			put64(d + 8, ds[i].len);
			continue;
		}
		if (ds[i].byte >= 0) {
			memset(page, ds[i].byte, sizeof(page));
		} else {
			/* The BAT's first page: block 1 at 6 MiB (past
			 * the end), block 2 at block 3's place. */
			memcpy(page, img + MIB, sizeof(page));
			put64(page + 8, 6 * MIB | 6);
			put64(page + 16, 4 * MIB | 6);
		}
		memcpy(d + 8, page, 8);
		memcpy(d + 4, page + 4092, 4);
		s = e + 4096 * (1 + data++);
		memcpy(s, "data", 4);
		memcpy(s + 8, page + 8, 4084);
		put32(s + 4092, 7);
	}
	put32(e + 4, vd_vhdx_sum(e, len, 4));
	for (uint32_t k = 1; k <= 2; k++)
		memcpy(img + k * (64 << 10) + 48, log_g, 16);
	fix_sums();
}

static void test_log(void)
{
	const uint32_t b0 = 3 * MIB;
	const struct desc ds[] = {
		{ "zero", b0, 16384, 0 },
		{ "desc", b0 + 4096, 0, 0xaa },
		{ "desc", b0 + 8192, 0, 0xbb },
		{ "zero", b0 + 8192, 4096, 0 }, /* over 0xbb */
		{ "desc", b0, 0, 0xcc },	/* over the zeros */
		{ "desc", MIB, 0, -1 },		/* the BAT page */
		{ "desc", 6 * MIB, 0, 0xdd },	/* past the end */
	};
	struct vd_disk *d = NULL;
	char msg[256] = "";

	build();
	put_entry(ds, VD_ARRAY_SIZE(ds));
	CHECK("log open", open_img(LEN, &d, msg) == 0);
	if (!d) {
		printf("  %s\n", msg);
		return;
	}
	CHECK("log block 0", vd_disk_read(d, got, MIB, 0) == 0 &&
				     all_bytes(got, 4096, 0xcc) &&
				     all_bytes(got + 4096, 4096, 0xaa) &&
				     all_bytes(got + 8192, 8192, 0) &&
				     all_bytes(got + 16384, MIB - 16384, 0x11));
	CHECK("log block 1 past the end",
	      vd_disk_read(d, got, MIB, MIB) == 0 &&
		      all_bytes(got, 4096, 0xdd) &&
		      all_bytes(got + 4096, MIB - 4096, 0));
	CHECK("log block 2 moved", vd_disk_read(d, got, MIB, 2 * MIB) == 0 &&
					   all_bytes(got, MIB, 0x33));
	vd_disk_close(d);
	/* The entry's checksum broken: no valid sequence. */
	img[5 * MIB + 4] ^= 1;
	d = NULL;
	CHECK("log invalid", open_img(LEN, &d, msg) == -EUCLEAN);
	CHECK_MSG("log invalid msg", msg, "holds no valid sequence");
}

int main(void)
{
	vd_log_set_level(VD_LOG_ERR - 1); /* expected errors stay quiet */
	img = calloc(1, LEN);
	if (!img)
		return 1;
	test_crc();
	test_states();
	test_log();
	free(img);
	return unit_done();
}
