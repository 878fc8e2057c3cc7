/* Unit tests: MBR and GPT tables built field by field in memory (a memfd
 * opened as a raw disk), so each test pokes exactly one thing, and the
 * warnings and one-line errors are checked word for word.
 *
 *   part_test                run the unit tests
 *   part_test --list FILE    print the table of FILE (any image format)
 *                            as tests/tools/fdisk-list prints libfdisk's;
 *                            tests/t-90-parts.sh compares the two. */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "core/disk.h"
#include "volumes/part-internal.h"
#include "volumes/part.h"
#include "tests/unit/unit.h"

/* ------------------------------------------------------------ --list */

static void list_name(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int list(const char *path)
{
	static const char *const scheme[] = { "none", "dos", "gpt" };
	struct vd_err e = { "" };
	struct vd_disk *d;
	struct vd_vol *v;
	struct vd_parts *p;
	char uuid[40];
	int ret;

	ret = vd_disk_open(path, NULL, &d, &e);
	if (ret < 0) {
		fprintf(stderr, "part_test: %s\n", e.msg);
		return 1;
	}
	v = vd_vol_new_disk(d, path);
	ret = v ? vd_parts_read(v, path, &p, &e) : -ENOMEM;
	vd_vol_free(v);
	if (ret < 0) {
		fprintf(stderr, "part_test: %s\n",
			ret == -ENOMEM ? "no memory" : e.msg);
		vd_disk_close(d);
		return 1;
	}
	printf("table %s %u\n", scheme[p->scheme], p->sector_size);
	for (unsigned i = 0; i < p->n; i++) {
		const struct vd_part *pt = &p->part[i];

		printf("%u %llu %llu %s ", pt->num,
		       (unsigned long long)pt->start,
		       (unsigned long long)pt->len, pt->type);
		if (p->scheme == VD_PART_GPT) {
			vd_guid_text(pt->uuid, uuid, sizeof(uuid));
			printf("%s", uuid);
			if (pt->name[0]) {
				putchar(' ');
				list_name(pt->name);
			}
		} else {
			printf("%s", pt->bootable ? "*" : "-");
		}
		putchar('\n');
	}
	vd_parts_free(p);
	vd_disk_close(d);
	return 0;
}

/* ------------------------------------------------------------ images */

static uint8_t *img;
static size_t img_len;

static void img_new(size_t len)
{
	free(img);
	img = calloc(1, len);
	if (!img)
		abort();
	img_len = len;
}

/* One MBR or EBR entry in the sector at byte sec. */
static void mbr_ent(uint64_t sec, unsigned slot, uint8_t boot, uint8_t type,
		    uint32_t start, uint32_t count)
{
	uint8_t *p = img + sec + 446 + 16 * slot;

	p[0] = boot;
	p[4] = type;
	memcpy(p + 8, &start, 4); /* little-endian host: as on disk */
	memcpy(p + 12, &count, 4);
	img[sec + 510] = 0x55;
	img[sec + 511] = 0xaa;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* Linux filesystem data, 0fc63daf-8483-4772-8e79-3d69d8477de4. */
static const uint8_t guid_linux[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84,
					0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69,
					0xd8, 0x47, 0x7d, 0xe4 };

struct g_ent {
	unsigned idx; /* entry index from 0 */
	uint64_t first, last;
	const char *name; /* ASCII */
};

struct gpt_geo {
	unsigned ss, n, esz;
	uint64_t last_lba, pri_arr, bak_arr;
};
static struct gpt_geo geo;

static uint8_t *gpt_hdr(bool backup)
{
	return img + (backup ? geo.last_lba : 1) * geo.ss;
}

/* Recompute the header's CRC32 (offset 16, over the header's size, at
 * most a sector) after a poke. */
static void gpt_fix_hdr(bool backup)
{
	uint8_t *h = gpt_hdr(backup);

	put_le32(h + 16, 0);
	put_le32(h + 16, (uint32_t)crc32(0, h, VD_MIN(get_le32(h + 12),
						      geo.ss)));
}

/* Recompute the entry array CRC (offset 88) from the array, then the
 * header's. */
static void gpt_fix_arr(bool backup)
{
	uint8_t *h = gpt_hdr(backup);
	uint8_t *a = img + (backup ? geo.bak_arr : geo.pri_arr) * geo.ss;

	put_le32(h + 88, (uint32_t)crc32(0, a, geo.n * geo.esz));
	gpt_fix_hdr(backup);
}

static void gpt_write_hdr(bool backup, uint64_t first_usable,
			  uint64_t last_usable)
{
	uint8_t *h = gpt_hdr(backup);

	memcpy(h, "EFI PART", 8);
	put_le32(h + 8, 0x00010000);
	put_le32(h + 12, 92);
	put_le64(h + 24, backup ? geo.last_lba : 1);
	put_le64(h + 32, backup ? 1 : geo.last_lba);
	put_le64(h + 40, first_usable);
	put_le64(h + 48, last_usable);
	for (int i = 0; i < 16; i++)
		h[56 + i] = (uint8_t)(0xd0 + i);
	put_le64(h + 72, backup ? geo.bak_arr : geo.pri_arr);
	put_le32(h + 80, geo.n);
	put_le32(h + 84, geo.esz);
	gpt_fix_arr(backup);
}

/* A GPT disk of len bytes, sectors of ss, n entries of esz bytes, with
 * a protective MBR, the primary and the backup. */
static void gpt_build(size_t len, unsigned ss, unsigned n, unsigned esz,
		      const struct g_ent *ents, unsigned n_ents)
{
	uint64_t arr_secs;

	img_new(len);
	geo.ss = ss;
	geo.n = n;
	geo.esz = esz;
	geo.last_lba = len / ss - 1;
	arr_secs = ((uint64_t)n * esz + ss - 1) / ss;
	geo.pri_arr = 2;
	geo.bak_arr = geo.last_lba - arr_secs;
	mbr_ent(0, 0, 0, 0xee, 1,
		(uint32_t)VD_MIN(len / 512 - 1, 0xffffffffu));
	for (unsigned k = 0; k < n_ents; k++) {
		for (int b = 0; b < 2; b++) {
			uint8_t *e = img +
				     (b ? geo.bak_arr : geo.pri_arr) * ss +
				     (size_t)ents[k].idx * esz;

			memcpy(e, guid_linux, 16);
			for (int i = 0; i < 16; i++)
				e[16 + i] = (uint8_t)(ents[k].idx + i);
			put_le64(e + 32, ents[k].first);
			put_le64(e + 40, ents[k].last);
			put_le64(e + 48, 1ULL << 60);
			for (unsigned i = 0; ents[k].name && ents[k].name[i];
			     i++)
				e[56 + 2 * i] = (uint8_t)ents[k].name[i];
		}
	}
	gpt_write_hdr(false, 2 + arr_secs, geo.bak_arr - 1);
	gpt_write_hdr(true, 2 + arr_secs, geo.bak_arr - 1);
}

/* Set an entry field in both arrays (CRCs fixed). */
static void gpt_ent_set64(unsigned idx, unsigned off, uint64_t v)
{
	for (int b = 0; b < 2; b++) {
		put_le64(img + (b ? geo.bak_arr : geo.pri_arr) * geo.ss +
				 (size_t)idx * geo.esz + off,
			 v);
		gpt_fix_arr(b);
	}
}

/* ------------------------------------------------------------ reading */

static char warn[8192]; /* what the last img_parts logged */
static char err[VD_ERR_LEN];

/* Read the table of the image in memory; stderr (vd_log's warnings)
 * captured into warn[]. */
static int img_parts(struct vd_parts **p_r)
{
	struct vd_open_opts o = { .format = "raw" };
	struct vd_err e = { "" };
	struct vd_disk *d;
	char path[64];
	int fd = unit_memfd(img, img_len, path, sizeof(path));
	int cap = memfd_create("log", 0);
	int saved, ret;
	ssize_t got;

	*p_r = NULL;
	warn[0] = err[0] = 0;
	if (fd < 0 || cap < 0)
		abort();
	ret = vd_disk_open(path, &o, &d, &e);
	close(fd);
	if (ret < 0) {
		printf("open failed: %s\n", e.msg);
		close(cap);
		return ret;
	}
	fflush(stderr);
	saved = dup(2);
	dup2(cap, 2);
	{
		struct vd_vol *v = vd_vol_new_disk(d, "disk");

		ret = v ? vd_parts_read(v, "disk", p_r, &e) : -ENOMEM;
		vd_vol_free(v);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	got = pread(cap, warn, sizeof(warn) - 1, 0);
	warn[got > 0 ? got : 0] = 0;
	close(cap);
	snprintf(err, sizeof(err), "%s", e.msg);
	vd_disk_close(d);
	return ret;
}

static const struct vd_part *find(const struct vd_parts *p, unsigned num)
{
	for (unsigned i = 0; p && i < p->n; i++)
		if (p->part[i].num == num)
			return &p->part[i];
	return NULL;
}

/* Partition num is there with this start and length (bytes). */
static bool has(const struct vd_parts *p, unsigned num, uint64_t start,
		uint64_t len)
{
	const struct vd_part *pt = find(p, num);

	if (!pt) {
		printf("  no partition %u\n", num);
		return false;
	}
	if (pt->start != start || pt->len != len) {
		printf("  partition %u: %llu+%llu, expected %llu+%llu\n", num,
		       (unsigned long long)pt->start,
		       (unsigned long long)pt->len, (unsigned long long)start,
		       (unsigned long long)len);
		return false;
	}
	return true;
}

#define MiB (1024 * 1024)

/* ------------------------------------------------------------ MBR */

/* Primaries 1, 2 (extended, sectors 100-999) and 4; logicals in EBRs at
 * 100, 300, 600, each with a logical 10 sectors after it. */
static void mbr_basic_image(void)
{
	img_new(MiB);
	put_le32(img + 440, 0xcafef00d);
	mbr_ent(0, 0, 0x80, 0x83, 10, 90);
	mbr_ent(0, 1, 0, 0x05, 100, 900);
	mbr_ent(0, 3, 0, 0x07, 1000, 500);
	mbr_ent(100 * 512, 0, 0, 0x83, 10, 50);
	mbr_ent(100 * 512, 1, 0, 0x05, 200, 300);
	mbr_ent(300 * 512, 0, 0, 0x82, 10, 60);
	mbr_ent(300 * 512, 1, 0, 0x05, 500, 200);
	mbr_ent(600 * 512, 0, 0, 0x83, 10, 70);
}

static void test_mbr_basic(void)
{
	struct vd_parts *p;

	mbr_basic_image();
	CHECK("mbr ok", !img_parts(&p));
	CHECK("mbr scheme", p && p->scheme == VD_PART_MBR &&
				    p->sector_size == 512 &&
				    p->mbr_id == 0xcafef00d && p->n == 6);
	CHECK("mbr p1", has(p, 1, 10 * 512, 90 * 512));
	CHECK("mbr p1 boot", find(p, 1) && find(p, 1)->bootable &&
				     !strcmp(find(p, 1)->type, "0x83"));
	CHECK("mbr p2 extended", has(p, 2, 100 * 512, 900 * 512) &&
					 find(p, 2)->extended &&
					 !strcmp(find(p, 2)->type, "0x05"));
	CHECK("mbr no p3", !find(p, 3));
	CHECK("mbr p4", has(p, 4, 1000 * 512, 500 * 512) &&
				!find(p, 4)->extended);
	CHECK("mbr p5", has(p, 5, 110 * 512, 50 * 512));
	CHECK("mbr p6", has(p, 6, 310 * 512, 60 * 512) &&
				find(p, 6)->mbr_type == 0x82);
	CHECK("mbr p7", has(p, 7, 610 * 512, 70 * 512));
	CHECK("mbr no warning", !warn[0]);
	for (unsigned i = 1; p && i < p->n; i++)
		CHECK("mbr sorted", p->part[i - 1].num < p->part[i].num);
	vd_parts_free(p);
}

static void test_mbr_ebr_loop(void)
{
	struct vd_parts *p;

	/* The last EBR links back to the first (offset 0): a loop. */
	mbr_basic_image();
	mbr_ent(600 * 512, 1, 0, 0x05, 0, 100);
	CHECK("loop ok", !img_parts(&p));
	CHECK("loop kept", p && p->n == 6 && has(p, 7, 610 * 512, 70 * 512));
	CHECK_MSG("loop warns", warn, "EBR at sector 600 links back to "
				      "sector 100 (a loop)");
	vd_parts_free(p);

	/* The second EBR links to itself. */
	mbr_basic_image();
	mbr_ent(300 * 512, 1, 0, 0x05, 200, 300);
	CHECK("self loop ok", !img_parts(&p));
	CHECK("self loop kept", p && p->n == 5 && has(p, 6, 310 * 512,
							60 * 512));
	CHECK_MSG("self loop warns", warn, "links back to sector 300");
	vd_parts_free(p);

	/* Going backwards without looping: EBR 600 links to 150 (which
	 * holds a valid-looking EBR). */
	mbr_basic_image();
	mbr_ent(150 * 512, 0, 0, 0x83, 1, 2);
	mbr_ent(600 * 512, 1, 0, 0x05, 50, 100);
	CHECK("backwards ok", !img_parts(&p));
	CHECK("backwards stops", p && p->n == 6 && !find(p, 8));
	CHECK_MSG("backwards warns", warn, "links back to sector 150");
	vd_parts_free(p);

	/* A link outside the extended partition. */
	mbr_basic_image();
	mbr_ent(600 * 512, 1, 0, 0x05, 1500, 100);
	CHECK("outside ok", !img_parts(&p));
	CHECK("outside stops", p && p->n == 6);
	CHECK_MSG("outside warns", warn, "outside extended partition 2");
	vd_parts_free(p);

	/* A link to a sector without the EBR signature. */
	mbr_basic_image();
	mbr_ent(600 * 512, 1, 0, 0x05, 800, 100);
	CHECK("nosig ok", !img_parts(&p));
	CHECK("nosig stops", p && p->n == 6);
	CHECK_MSG("nosig warns", warn, "no EBR signature at sector 900");
	vd_parts_free(p);
}

static void test_mbr_long_chain(void)
{
	struct vd_parts *p;
	unsigned i;

	/* 300 EBRs, 2 sectors apart, each with a 1-sector logical. */
	img_new(MiB);
	mbr_ent(0, 0, 0, 0x0f, 100, 1000);
	for (i = 0; i < 300; i++) {
		mbr_ent((100 + 2 * i) * 512, 0, 0, 0x83, 1, 1);
		if (i < 299)
			mbr_ent((100 + 2 * i) * 512, 1, 0, 0x05, 2 * i + 2, 2);
	}
	CHECK("long ok", !img_parts(&p));
	CHECK("long capped", p && p->n == 1 + VD_PART_MAX_LOGICAL);
	CHECK("long last", has(p, 4 + VD_PART_MAX_LOGICAL,
			       (100 + 2 * (VD_PART_MAX_LOGICAL - 1) + 1) * 512,
			       512));
	CHECK_MSG("long warns", warn, "more than 256 EBRs");
	vd_parts_free(p);
}

static void test_mbr_hostile(void)
{
	struct vd_parts *p;

	/* Past the end: clipped; starting past the end: skipped. */
	img_new(MiB);
	mbr_ent(0, 0, 0, 0x83, 2000, 100);
	mbr_ent(0, 1, 0, 0x83, 3000, 100);
	mbr_ent(0, 2, 0, 0x83, 0, 100);
	mbr_ent(0, 3, 0, 0x00, 10, 100);
	CHECK("clip ok", !img_parts(&p));
	CHECK("clip p1", p && p->n == 1 && has(p, 1, 2000 * 512, 48 * 512));
	CHECK_MSG("clip warns", warn, "partition 1 (51200 bytes at byte "
				      "1024000) runs past the disk's end "
				      "(1048576 bytes); clipped to 24576");
	CHECK_MSG("skip warns", warn, "partition 2 starts at byte 1536000, "
				      "at or past the disk's end");
	CHECK_MSG("start 0 warns", warn, "partition 3 starts at sector 0");
	vd_parts_free(p);

	/* A boot flag that is neither 0 nor 0x80: not an MBR (a boot
	 * sector), so no table. */
	img_new(MiB);
	mbr_ent(0, 0, 0, 0x83, 10, 100);
	mbr_ent(0, 2, 0x12, 0x00, 0, 0);
	CHECK("bootflag ok", !img_parts(&p));
	CHECK("bootflag none", p && p->scheme == VD_PART_NONE && p->n == 0);
	vd_parts_free(p);

	/* No signature, a blank disk, a disk smaller than a sector. */
	img_new(MiB);
	CHECK("blank ok", !img_parts(&p));
	CHECK("blank none", p && p->scheme == VD_PART_NONE && !warn[0]);
	vd_parts_free(p);
	img_new(300);
	CHECK("tiny ok", !img_parts(&p));
	CHECK("tiny none", p && p->scheme == VD_PART_NONE && p->n == 0);
	vd_parts_free(p);

	/* An EBR entry in slot 3 outside its link's extent is garbage
	 * (Linux's rule) and ignored; overlapping primaries warn. */
	mbr_basic_image();
	mbr_ent(300 * 512, 2, 0, 0x83, 250, 100);
	mbr_ent(0, 2, 0, 0x83, 1200, 500);
	CHECK("garbage ok", !img_parts(&p));
	CHECK("garbage ignored", p && p->n == 7 && !find(p, 8) &&
					 has(p, 3, 1200 * 512, 500 * 512));
	CHECK_MSG("overlap warns", warn, "partitions 4 and 3 overlap");
	vd_parts_free(p);

	/* A plain MBR over a stale GPT: the MBR wins. */
	gpt_build(MiB, 512, 128, 128, (struct g_ent[]){ { 0, 40, 99, "x" } },
		  1);
	mbr_ent(0, 0, 0, 0x83, 100, 200);
	CHECK("stale gpt ok", !img_parts(&p));
	CHECK("stale gpt mbr", p && p->scheme == VD_PART_MBR && p->n == 1 &&
				       has(p, 1, 100 * 512, 200 * 512));
	vd_parts_free(p);
}

/* ------------------------------------------------------------ GPT */

static const struct g_ent gents[] = {
	{ 0, 40, 99, "boot" },
	{ 2, 100, 299, "data" },
	{ 127, 1000, 1099, "last entry" },
};

static void test_gpt_basic(void)
{
	struct vd_parts *p;
	const struct vd_part *pt;

	gpt_build(MiB, 512, 128, 128, gents, 3);
	CHECK("gpt ok", !img_parts(&p));
	CHECK("gpt scheme", p && p->scheme == VD_PART_GPT &&
				    p->sector_size == 512 && p->n == 3);
	CHECK("gpt p1", has(p, 1, 40 * 512, 60 * 512));
	CHECK("gpt gap", !find(p, 2) && has(p, 3, 100 * 512, 200 * 512));
	CHECK("gpt p128", has(p, 128, 1000 * 512, 100 * 512));
	pt = find(p, 128);
	CHECK("gpt name", pt && !strcmp(pt->name, "last entry"));
	CHECK("gpt type", pt && !strcmp(pt->type, "0fc63daf-8483-4772-8e79-"
						  "3d69d8477de4") &&
				  !memcmp(pt->type_guid, guid_linux, 16));
	CHECK("gpt uuid", pt && pt->uuid[0] == 127 && pt->uuid[15] == 142);
	CHECK("gpt attrs", pt && pt->attrs == 1ULL << 60);
	CHECK("gpt disk guid", p && p->disk_guid[0] == 0xd0);
	CHECK("gpt no warning", !warn[0]);
	vd_parts_free(p);

	/* 4096-byte sectors. */
	gpt_build(4 * MiB, 4096, 128, 128, gents, 2);
	CHECK("gpt4k ok", !img_parts(&p));
	CHECK("gpt4k", p && p->sector_size == 4096 && p->n == 2 &&
			       has(p, 1, 40 * 4096, 60 * 4096) &&
			       has(p, 3, 100 * 4096, 200 * 4096));
	CHECK("gpt4k no warning", !warn[0]);
	vd_parts_free(p);

	/* 256-byte entries (128 << 1, allowed by the spec). */
	gpt_build(MiB, 512, 64, 256, gents, 2);
	CHECK("esz256 ok", !img_parts(&p));
	CHECK("esz256", p && p->n == 2 && has(p, 3, 100 * 512, 200 * 512));
	vd_parts_free(p);

	/* No entries at all. */
	gpt_build(MiB, 512, 0, 128, NULL, 0);
	CHECK("empty ok", !img_parts(&p));
	CHECK("empty", p && p->scheme == VD_PART_GPT && p->n == 0);
	vd_parts_free(p);
}

static void test_gpt_names(void)
{
	struct vd_parts *p;
	/* "é", U+1F600 (a surrogate pair), a lone high surrogate, "z". */
	static const uint16_t name[] = { 0xe9, 0xd83d, 0xde00, 0xd800, 'z', 0 };

	gpt_build(MiB, 512, 128, 128, gents, 1);
	for (int b = 0; b < 2; b++) {
		uint8_t *e = img + (b ? geo.bak_arr : geo.pri_arr) * 512;

		memset(e + 56, 0, 72);
		for (unsigned i = 0; i < VD_ARRAY_SIZE(name); i++)
			e[56 + 2 * i] = (uint8_t)name[i],
				   e[57 + 2 * i] = (uint8_t)(name[i] >> 8);
		gpt_fix_arr(b);
	}
	CHECK("names ok", !img_parts(&p));
	CHECK("names utf8", p && p->n == 1 &&
				    !strcmp(p->part[0].name,
					    "\xc3\xa9\xf0\x9f\x98\x80"
					    "\xef\xbf\xbdz"));
	vd_parts_free(p);

	/* 36 units and no NUL. */
	gpt_build(MiB, 512, 128, 128, gents, 1);
	for (int b = 0; b < 2; b++) {
		uint8_t *e = img + (b ? geo.bak_arr : geo.pri_arr) * 512;

		for (unsigned i = 0; i < 36; i++)
			e[56 + 2 * i] = 'a', e[57 + 2 * i] = 0;
		gpt_fix_arr(b);
	}
	CHECK("long name ok", !img_parts(&p));
	CHECK("long name", p && p->n == 1 && strlen(p->part[0].name) == 36);
	vd_parts_free(p);
}

static void test_gpt_entries_hostile(void)
{
	struct vd_parts *p;

	/* An entry past the disk's end is clipped, one starting past it
	 * skipped, one ending before it starts skipped. */
	gpt_build(MiB, 512, 128, 128, gents, 3);
	gpt_ent_set64(0, 40, 5000);
	gpt_ent_set64(2, 32, 3000);
	gpt_ent_set64(2, 40, 3100);
	gpt_ent_set64(127, 40, 999);
	CHECK("past end ok", !img_parts(&p));
	CHECK("past end clipped", p && p->n == 1 &&
					  has(p, 1, 40 * 512, MiB - 40 * 512));
	CHECK_MSG("past end warns", warn, "partition 1 (2540032 bytes at "
					  "byte 20480) runs past the disk's "
					  "end (1048576 bytes); clipped to "
					  "1028096 bytes");
	CHECK_MSG("past start warns", warn, "partition 3 starts at byte "
					    "1536000, at or past the disk's "
					    "end");
	CHECK_MSG("reversed warns", warn, "entry 128 ends (LBA 999) before "
					  "it starts (LBA 1000)");
	vd_parts_free(p);

	/* LBAs whose byte values overflow 64 bits. */
	gpt_build(MiB, 512, 128, 128, gents, 1);
	gpt_ent_set64(0, 32, 1ULL << 60);
	gpt_ent_set64(0, 40, UINT64_MAX);
	CHECK("overflow ok", !img_parts(&p));
	CHECK("overflow skipped", p && p->n == 0);
	vd_parts_free(p);
	gpt_build(MiB, 512, 128, 128, gents, 1);
	gpt_ent_set64(0, 40, UINT64_MAX);
	CHECK("overflow len ok", !img_parts(&p));
	CHECK("overflow len clipped", p && p->n == 1 &&
					      has(p, 1, 40 * 512,
						  MiB - 40 * 512));
	vd_parts_free(p);

	/* Overlapping entries: listed, with a warning. */
	gpt_build(MiB, 512, 128, 128, gents, 2);
	gpt_ent_set64(2, 32, 90);
	CHECK("overlap ok", !img_parts(&p));
	CHECK("overlap listed", p && p->n == 2);
	CHECK_MSG("overlap warns", warn, "partitions 1 and 3 overlap");
	vd_parts_free(p);
}

/* A header field poked, CRC made right again. */
struct hdr_case {
	const char *name;
	unsigned off, width; /* 4 or 8 bytes */
	uint64_t val;
	bool fix_crc;
	const char *why; /* in the message */
};

static const struct hdr_case hdr_cases[] = {
	{ "crc", 16, 4, 0x12345678, false, "header CRC32 is 0x12345678" },
	{ "count 1e9", 80, 4, 1000000000, true,
	  "1000000000 partition entries (more than 4096 is absurd)" },
	{ "count 4097", 80, 4, 4097, true, "4097 partition entries" },
	{ "esz 0", 84, 4, 0, true, "partition entry size 0" },
	{ "esz 7", 84, 4, 7, true, "partition entry size 7" },
	{ "esz 2^31", 84, 4, 1u << 31, true, "partition entry size 2147483648" },
	{ "esz 96", 84, 4, 96, true, "partition entry size 96" },
	{ "esz 2048", 84, 4, 2048, true, "partition entry size 2048" },
	{ "hsize 91", 12, 4, 91, true, "header size 91" },
	{ "hsize 513", 12, 4, 513, true, "header size 513" },
	{ "hsize 2^32-1", 12, 4, 0xffffffff, true, "header size 4294967295" },
	{ "my lba", 24, 8, 5, true, "says it is at LBA 5" },
	{ "array lba", 72, 8, 1ULL << 62, true, "entry array" },
	{ "array crc", 88, 4, 0xdeadbeef, true, "entry array CRC32 is "
					       "0xdeadbeef" },
	{ "usable", 40, 8, 5000, true, "first usable LBA 5000 is past" },
};

static void hdr_poke(bool backup, const struct hdr_case *hc)
{
	uint8_t *h = gpt_hdr(backup);

	if (hc->width == 4)
		put_le32(h + hc->off, (uint32_t)hc->val);
	else
		put_le64(h + hc->off, hc->val);
	if (hc->fix_crc)
		gpt_fix_hdr(backup);
}

static void test_gpt_headers(void)
{
	struct vd_parts *p;
	char name[80];

	for (unsigned i = 0; i < VD_ARRAY_SIZE(hdr_cases); i++) {
		const struct hdr_case *hc = &hdr_cases[i];
		int ret;

		/* Primary damaged: the backup is used, with a warning. */
		gpt_build(MiB, 512, 128, 128, gents, 3);
		hdr_poke(false, hc);
		snprintf(name, sizeof(name), "primary %s", hc->name);
		ret = img_parts(&p);
		CHECK(name, !ret && p && p->scheme == VD_PART_GPT &&
				    p->n == 3 &&
				    has(p, 128, 1000 * 512, 100 * 512));
		CHECK_MSG(name, warn, hc->why);
		CHECK_MSG(name, warn, "primary header is damaged");
		CHECK_MSG(name, warn, "using the backup at LBA 2047");
		vd_parts_free(p);

		/* Backup damaged: the primary is used, with a warning. */
		gpt_build(MiB, 512, 128, 128, gents, 3);
		hdr_poke(true, hc);
		snprintf(name, sizeof(name), "backup %s", hc->name);
		ret = img_parts(&p);
		CHECK(name, !ret && p && p->n == 3);
		CHECK_MSG(name, warn, "backup header at LBA 2047 is damaged");
		CHECK_MSG(name, warn, hc->why);
		vd_parts_free(p);

		/* Both: the table is refused, naming both. */
		gpt_build(MiB, 512, 128, 128, gents, 3);
		hdr_poke(false, hc);
		hdr_poke(true, hc);
		snprintf(name, sizeof(name), "both %s", hc->name);
		ret = img_parts(&p);
		CHECK(name, ret == -EUCLEAN && !p);
		CHECK_MSG(name, err, "disk: GPT: primary header: ");
		CHECK_MSG(name, err, "; backup header at LBA 2047: ");
		CHECK_MSG(name, err, hc->why);
		CHECK(name, !strchr(err, '\n'));
		vd_parts_free(p);
	}
}

static void test_gpt_layout(void)
{
	struct vd_parts *p;

	/* The primary's sector wiped: found at the end. */
	gpt_build(MiB, 512, 128, 128, gents, 3);
	memset(img + 512, 0, 512);
	CHECK("no primary ok", !img_parts(&p));
	CHECK("no primary", p && p->n == 3 && p->sector_size == 512);
	CHECK_MSG("no primary warns", warn, "no signature at LBA 1");
	vd_parts_free(p);

	/* The same at 4096 bytes a sector. */
	gpt_build(4 * MiB, 4096, 128, 128, gents, 3);
	memset(img + 4096, 0, 4096);
	CHECK("4k no primary ok", !img_parts(&p));
	CHECK("4k no primary", p && p->n == 3 && p->sector_size == 4096 &&
				       has(p, 3, 100 * 4096, 200 * 4096));
	vd_parts_free(p);

	/* A truncated disk: the backup is gone, entries clipped. */
	gpt_build(MiB, 512, 128, 128, gents, 3);
	img_len = 1050 * 512;
	CHECK("truncated ok", !img_parts(&p));
	CHECK("truncated", p && p->n == 3 &&
				   has(p, 128, 1000 * 512, 50 * 512));
	CHECK_MSG("truncated warns", warn, "backup header at LBA 2047 is "
					   "damaged (LBA 2047 lies past the "
					   "disk's end)");
	CHECK_MSG("truncated usable", warn, "last usable LBA");
	vd_parts_free(p);

	/* No protective MBR: read anyway, with a warning. */
	gpt_build(MiB, 512, 128, 128, gents, 3);
	memset(img, 0, 512);
	CHECK("no pmbr ok", !img_parts(&p));
	CHECK("no pmbr", p && p->scheme == VD_PART_GPT && p->n == 3);
	CHECK_MSG("no pmbr warns", warn, "no protective MBR");
	vd_parts_free(p);

	/* No protective MBR and no primary: not taken for a GPT (a stray
	 * "EFI PART" at the end of a whole-disk filesystem). */
	memset(img + 512, 0, 512);
	CHECK("no pmbr no primary ok", !img_parts(&p));
	CHECK("no pmbr no primary", p && p->scheme == VD_PART_NONE);
	vd_parts_free(p);

	/* A protective MBR and no GPT anywhere: refused. */
	img_new(MiB);
	mbr_ent(0, 0, 0, 0xee, 1, 2047);
	CHECK("pmbr only", img_parts(&p) == -EUCLEAN && !p);
	CHECK_MSG("pmbr only msg", err, "disk: GPT: the MBR has a GPT entry "
					"(0xee) but there is no GPT header");
	vd_parts_free(p);

	/* A hybrid MBR: 0xee plus a 0x83 entry; the GPT is read. */
	gpt_build(MiB, 512, 128, 128, gents, 3);
	mbr_ent(0, 0, 0, 0xee, 1, 39);
	mbr_ent(0, 1, 0x80, 0x83, 40, 60);
	mbr_ent(0, 2, 0, 0x05, 100, 200);
	CHECK("hybrid ok", !img_parts(&p));
	CHECK("hybrid gpt", p && p->scheme == VD_PART_GPT && p->n == 3 &&
				    has(p, 3, 100 * 512, 200 * 512) &&
				    !find(p, 2) && !find(p, 5));
	vd_parts_free(p);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--list"))
		return list(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: part_test [--list FILE]\n");
		return 2;
	}
	test_mbr_basic();
	test_mbr_ebr_loop();
	test_mbr_long_chain();
	test_mbr_hostile();
	test_gpt_basic();
	test_gpt_names();
	test_gpt_entries_hostile();
	test_gpt_headers();
	test_gpt_layout();
	free(img);
	return unit_done();
}
