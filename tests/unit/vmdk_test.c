/* Unit tests: the VMDK descriptor parser and sparse header checks, table
 * driven on in-memory buffers; then small hosted sparse images built
 * field by field in a scratch folder, so each test pokes one thing. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "core/disk.h"
#include "core/vmdk.h"
#include "tests/unit/unit.h"

/* ------------------------------------------------------------ descriptor */

#define QEMU_FLAT                                                          \
	"# Disk DescriptorFile\n"                                          \
	"version=1\n"                                                      \
	"CID=89c1d5a2\n"                                                   \
	"parentCID=ffffffff\n"                                             \
	"createType=\"monolithicFlat\"\n"                                  \
	"\n"                                                               \
	"# Extent description\n"                                           \
	"RW 16391 FLAT \"monolithicFlat-flat.vmdk\" 0\n"                   \
	"\n"                                                               \
	"# The Disk Data Base\n"                                           \
	"#DDB\n"                                                           \
	"\n"                                                               \
	"ddb.virtualHWVersion = \"4\"\n"                                   \
	"ddb.geometry.cylinders = \"16\"\n"                                \
	"ddb.adapterType = \"ide\"\n"

struct desc_case {
	const char *name;
	const char *text;
	size_t len; /* 0: strlen */
	int ret;
	const char *msg; /* substring of the error, or NULL */
	/* on success: */
	unsigned n_ext;
	int ext0_type; /* -1: do not check */
	uint64_t ext0_sectors;
	const char *ext0_name;
	uint64_t ext0_offset;
};

/* A case that must fail with ret and a message holding msg. */
#define BAD(n, t, l, r, m)                                                 \
	{ .name = n, .text = t, .len = l, .ret = r, .msg = m, .ext0_type = -1 }

static const struct desc_case desc_cases[] = {
	{ "qemu flat", QEMU_FLAT, 0, 0, NULL, 1, VMDK_EXT_FLAT, 16391,
	  "monolithicFlat-flat.vmdk", 0 },
	{ "crlf",
	  "version=1\r\nCID=1\r\ncreateType=\"vmfs\"\r\n"
	  "RW 8 VMFS \"a b-flat.vmdk\"\r\n",
	  0, 0, NULL, 1, VMDK_EXT_VMFS, 8, "a b-flat.vmdk", 0 },
	{ "whitespace",
	  "  \t version = 1 \t\n\tCID\t=\tabcdef01  \n"
	  "createType = monolithicFlat\n"
	  "   RW\t\t 100   FLAT \t \"x.img\"   7   \n",
	  0, 0, NULL, 1, VMDK_EXT_FLAT, 100, "x.img", 7 },
	{ "comments", "# RW 5 FLAT \"no\" 0\n  # another\nRW 5 ZERO\n", 0, 0,
	  NULL, 1, VMDK_EXT_ZERO, 5, NULL, 0 },
	{ "access kinds",
	  "RDONLY 1 SPARSE \"s.vmdk\"\nNOACCESS 2 ZERO\nRW 3 VMFSSPARSE "
	  "\"d.vmdk\"\nRW 4 FLAT \"f\"\n",
	  0, 0, NULL, 4, VMDK_EXT_SPARSE, 1, "s.vmdk", 0 },
	{ "empty", "", 0, 0, NULL, 0, -1, 0, NULL, 0 },
	{ "nul ends text", "RW 10 FLAT \"a\" 0\n\0garbage here\n", 30, 0, NULL,
	  1, VMDK_EXT_FLAT, 10, "a", 0 },
	BAD("nul inside name", "RW 10 FLAT \"a\0b\" 0\n", 19, -EUCLEAN,
	    "no closing quote"),
	{ "empty hint", "parentFileNameHint=\"\"\n", 0, 0, NULL, 0, -1, 0, NULL,
	  0 },
	BAD("negative size", "RW -5 FLAT \"a\" 0\n", 0, -EUCLEAN,
	    "line 1: extent size '-5'"),
	BAD("zero size", "RW 0 FLAT \"a\" 0\n", 0, -EUCLEAN, "extent size '0'"),
	BAD("size junk", "\nRW 12x FLAT \"a\" 0\n", 0, -EUCLEAN, "line 2: extent size '12x'"),
	BAD("size overflow", "RW 99999999999999999999 FLAT \"a\" 0\n", 0, -EUCLEAN, "extent size"),
	BAD("size too big", "RW 17592186044417 FLAT \"a\" 0\n", 0, -EUCLEAN, "extent size"),
	BAD("hex offset", "RW 1 FLAT \"a\" 0x10\n", 0, -EUCLEAN, "extent offset '0x10'"),
	BAD("offset junk", "RW 1 FLAT \"a\" 0 1\n", 0, -EUCLEAN, "unexpected '1'"),
	BAD("sum too big",
	  "RW 17592186044416 FLAT \"a\" 0\nRW 1 FLAT \"a\" 0\n", 0, -EUCLEAN, "add up"),
	BAD("bad cid", "CID=xyz\n", 0, -EUCLEAN, "CID 'xyz'"),
	BAD("long cid", "CID=123456789\n", 0, -EUCLEAN, "CID '123456789'"),
	BAD("bad parent cid", "parentCID=-1\n", 0, -EUCLEAN, "parentCID '-1'"),
	BAD("cid twice", "CID=1\nCID=2\n", 0, -EUCLEAN, "line 2: CID given"),
	BAD("hint twice", "parentFileNameHint=a\nparentFileNameHint=\"b\"\n", 0, -EUCLEAN, "given twice"),
	BAD("unclosed quote", "createType=\"vmfs\n", 0, -EUCLEAN, "no closing quote"),
	BAD("after quote", "createType=\"vmfs\" x\n", 0, -EUCLEAN, "unexpected 'x'"),
	BAD("unknown type", "RW 1 FOO \"a\"\n", 0, -EUCLEAN, "unknown extent type 'FOO'"),
	BAD("rdm", "RW 1 VMFSRDM \"a\"\n", 0, -ENOTSUP, "VMFSRDM is not supported"),
	BAD("rdm", "RW 1 VMFSRDM \"a\"\n", 0, -ENOTSUP, "VMFSRDM"),
	BAD("zero with name", "RW 1 ZERO \"a\"\n", 0, -EUCLEAN, "ZERO extent names no file"),
	BAD("sparse offset", "RW 1 SPARSE \"a\" 0\n", 0, -EUCLEAN, "after the file name of a sparse"),
	BAD("flat no name", "RW 1 FLAT\n", 0, -EUCLEAN, "file name missing"),
	BAD("flat bare name", "RW 1 FLAT a.vmdk 0\n", 0, -EUCLEAN, "file name missing"),
	BAD("empty name", "RW 1 FLAT \"\" 0\n", 0, -EUCLEAN, "name of 0 bytes"),
	BAD("garbage line", "version=1\nhello world\n", 0, -EUCLEAN, "line 2: 'hello world' is neither"),
	BAD("lowercase access", "rw 1 FLAT \"a\" 0\n", 0, -EUCLEAN, "neither"),
	BAD("key with space", "ddb adapter = 1\n", 0, -EUCLEAN, "holds a space"),
	BAD("no key", " = 1\n", 0, -EUCLEAN, "without a key"),
	BAD("version 4", "version=4\n", 0, -ENOTSUP, "version 4"),
	BAD("version text", "version=one\n", 0, -EUCLEAN, "version 'one'"),
	BAD("cr only", "version=1\rCID=1\r", 0, -EUCLEAN, "version '1"),
	BAD("long type", "createType=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", 0, -EUCLEAN, "createType of 40 bytes"),
};

static void test_desc_table(void)
{
	for (unsigned i = 0; i < VD_ARRAY_SIZE(desc_cases); i++) {
		const struct desc_case *c = &desc_cases[i];
		struct vmdk_desc d;
		struct vd_err e = { "" };
		size_t len = c->len ? c->len : strlen(c->text);
		int ret = vmdk_desc_parse(c->text, len, &d, &e);

		CHECK(c->name, ret == c->ret);
		if (ret != c->ret)
			printf("    got %d (%s)\n", ret, e.msg);
		if (c->msg)
			CHECK_MSG(c->name, e.msg, c->msg);
		if (!ret && !c->ret) {
			CHECK(c->name, d.n_ext == c->n_ext);
			if (c->ext0_type >= 0 && d.n_ext) {
				const struct vmdk_desc_extent *x = &d.ext[0];

				CHECK(c->name, (int)x->type == c->ext0_type);
				CHECK(c->name, x->sectors == c->ext0_sectors);
				CHECK(c->name, x->offset == c->ext0_offset);
				CHECK(c->name,
				      c->ext0_name ? x->name &&
						     !strcmp(x->name, c->ext0_name) :
						     !x->name);
			}
		}
		vmdk_desc_free(&d);
	}
}

static void test_desc_fields(void)
{
	struct vmdk_desc d;
	struct vd_err e = { "" };
	const char *t = "version=1\nCID=fffffffe\nparentCID=0A0b0C0d\n"
			"createType=\"twoGbMaxExtentSparse\"\n"
			"parentFileNameHint=\"sub dir/base.vmdk\"\n"
			"RDONLY 4 SPARSE \"x-s001.vmdk\"\n"
			"NOACCESS 5 FLAT \"y\" 3\n";

	CHECK("fields parse", !vmdk_desc_parse(t, strlen(t), &d, &e));
	CHECK("fields version", d.version == 1);
	CHECK("fields cid", d.has_cid && d.cid == 0xfffffffe);
	CHECK("fields pcid", d.has_parent_cid && d.parent_cid == 0x0a0b0c0d);
	CHECK("fields type", d.create_type &&
				     !strcmp(d.create_type, "twoGbMaxExtentSparse"));
	CHECK("fields hint", d.parent_hint &&
				     !strcmp(d.parent_hint, "sub dir/base.vmdk"));
	CHECK("fields n", d.n_ext == 2);
	CHECK("fields access", d.n_ext == 2 && d.ext[0].access == VMDK_RDONLY &&
				       d.ext[1].access == VMDK_NOACCESS &&
				       d.ext[1].offset == 3 &&
				       d.ext[1].line == 7);
	vmdk_desc_free(&d);
}

/* Huge lines and many extents. */
static void test_desc_limits(void)
{
	size_t cap = (VMDK_DESC_MAX_EXTENTS + 1) * 24 + 100;
	char *t = malloc(VMDK_DESC_MAX_BYTES + 2);
	struct vmdk_desc d;
	struct vd_err e = { "" };
	size_t n = 0;
	int ret;

	if (!t || cap > VMDK_DESC_MAX_BYTES)
		return;
	/* A line one byte too long, in a comment. */
	memset(t, 'a', VMDK_DESC_MAX_LINE + 1);
	t[0] = '#';
	ret = vmdk_desc_parse(t, VMDK_DESC_MAX_LINE + 1, &d, &e);
	CHECK("long line", ret == -EUCLEAN);
	CHECK_MSG("long line", e.msg, "line 1: line longer than");
	vmdk_desc_free(&d);
	/* ... and one just short enough. */
	ret = vmdk_desc_parse(t, VMDK_DESC_MAX_LINE, &d, &e);
	CHECK("long line ok", ret == 0);
	vmdk_desc_free(&d);
	/* A name that fills the line. */
	n = (size_t)sprintf(t, "RW 1 FLAT \"");
	memset(t + n, 'n', VMDK_DESC_MAX_NAME + 1);
	n += VMDK_DESC_MAX_NAME + 1;
	n += (size_t)sprintf(t + n, "\" 0\n");
	ret = vmdk_desc_parse(t, n, &d, &e);
	CHECK("long name", ret == -EUCLEAN);
	CHECK_MSG("long name", e.msg, "name of 4096 bytes");
	vmdk_desc_free(&d);

	/* Exactly the most extents, then one more. */
	n = 0;
	for (unsigned i = 0; i < VMDK_DESC_MAX_EXTENTS; i++)
		n += (size_t)sprintf(t + n, "RW 1 ZERO\n");
	ret = vmdk_desc_parse(t, n, &d, &e);
	CHECK("max extents", ret == 0 && d.n_ext == VMDK_DESC_MAX_EXTENTS);
	vmdk_desc_free(&d);
	n += (size_t)sprintf(t + n, "RW 1 ZERO\n");
	ret = vmdk_desc_parse(t, n, &d, &e);
	CHECK("too many extents", ret == -EUCLEAN);
	CHECK_MSG("too many extents", e.msg, "more than 4096 extents");
	vmdk_desc_free(&d);

	/* Larger than 1 MiB of text. */
	memset(t, '#', VMDK_DESC_MAX_BYTES + 1);
	ret = vmdk_desc_parse(t, VMDK_DESC_MAX_BYTES + 1, &d, &e);
	CHECK("huge text", ret == -EUCLEAN);
	CHECK_MSG("huge text", e.msg, "larger than");
	vmdk_desc_free(&d);
	free(t);
}

/* ------------------------------------------------------------ probe */

extern const struct vd_format vd_format_vmdk;

static void test_probe(void)
{
	static const struct {
		const char *head;
		int score;
	} t[] = {
		{ "KDMV\1", 100 },
		{ "COWD\1", 100 },
		{ "# Disk DescriptorFile\n", 100 },
		{ "# Disk DescriptorFile", 100 },
		{ "\n# comment\n  \r\nversion=1\n", 100 },
		{ "version=2\r\nCID=1\n", 100 },
		{ "version=3\n", 100 },
		{ "version=4\n", 0 },
		{ "version=1", 0 },  /* the line may go on */
		{ "version=12\n", 0 },
		{ " version=1\n", 0 },
		{ "# c\nCID=1\nversion=1\n", 0 },
		{ "   ", 0 },
		{ "QFI\xfb", 0 },
		{ "", 0 },
	};

	for (unsigned i = 0; i < VD_ARRAY_SIZE(t); i++) {
		int s = vd_format_vmdk.probe((const uint8_t *)t[i].head,
					     strlen(t[i].head));
		CHECK(t[i].head, s == t[i].score);
	}
}

/* ------------------------------------------------------------ headers */

static uint8_t hb[3 * 512];

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* A header as qemu-img writes one for 16391 sectors. */
static void hdr_init(uint8_t *h)
{
	memset(h, 0, 512);
	memcpy(h, "KDMV", 4);
	put_le32(h + 4, 1);
	put_le32(h + 8, 3);
	put_le64(h + 12, 16391);
	put_le64(h + 20, 128);
	put_le64(h + 28, 1);
	put_le64(h + 36, 20);
	put_le32(h + 44, 512);
	put_le64(h + 48, 21);
	put_le64(h + 56, 26);
	put_le64(h + 64, 128);
	memcpy(h + 73, "\n \r\n", 4);
}

struct hdr_case {
	const char *name;
	unsigned off, width; /* field to poke; width 0: none */
	uint64_t val;
	uint64_t file_size;
	int ret;
	const char *msg;
};

static const struct hdr_case hdr_cases[] = {
	{ "valid", 0, 0, 0, 65536, 0, NULL },
	{ "short file", 0, 0, 0, 100, -EUCLEAN, "too short" },
	{ "bad magic", 0, 4, 0x44444444, 65536, -EUCLEAN, "not a sparse" },
	{ "version 4", 4, 4, 4, 65536, -ENOTSUP, "version 4" },
	{ "version 0", 4, 4, 0, 65536, -ENOTSUP, "version 0" },
	{ "grain 0", 20, 8, 0, 65536, -EUCLEAN, "grain size of 0" },
	{ "grain 3", 20, 8, 3, 65536, -EUCLEAN, "grain size of 3" },
	{ "grain huge", 20, 8, 1ULL << 22, 65536, -EUCLEAN, "grain size" },
	{ "gtes 0", 44, 4, 0, 65536, -EUCLEAN, "0 entries per grain table" },
	{ "gtes 513", 44, 4, 513, 65536, -EUCLEAN, "513 entries" },
	{ "capacity huge", 12, 8, 1ULL << 60, 65536, -EUCLEAN, "capacity" },
	{ "gd too big", 12, 8, 1ULL << 44, 65536, -EUCLEAN,
	  "grain directory of more than" },
	{ "gd past end", 56, 8, 200, 65536, 0, NULL }, /* RGD used */
	{ "overhead past end", 64, 8, 129, 65536, -EUCLEAN, "truncated?" },
	{ "newline damaged", 75, 1, ' ', 65536, -EUCLEAN, "text mode" },
	{ "compress 2", 77, 2, 2, 65536, -ENOTSUP, "compression algorithm 2" },
	{ "desc past end", 36, 8, 200, 65536, -EUCLEAN, "embedded descriptor" },
	{ "desc huge", 36, 8, 1ULL << 50, 1ULL << 40, -EUCLEAN,
	  "embedded descriptor" },
	{ "capacity 0 no desc", 12, 8, 0, 65536, 0, NULL },
};

static void test_headers(void)
{
	for (unsigned i = 0; i < VD_ARRAY_SIZE(hdr_cases); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		struct vmdk_sparse s;
		struct vd_err e = { "" };
		bool at_end;
		int ret;

		hdr_init(hb);
		for (unsigned b = 0; b < c->width; b++)
			hb[c->off + b] = (uint8_t)(c->val >> (8 * b));
		ret = vmdk_sparse_parse(hb, NULL, c->file_size, "f.vmdk", &s,
					&at_end, &e);
		CHECK(c->name, ret == c->ret);
		if (ret != c->ret)
			printf("    got %d (%s)\n", ret, e.msg);
		if (c->msg)
			CHECK_MSG(c->name, e.msg, c->msg);
	}

	struct vmdk_sparse s;
	struct vd_err e = { "" };
	bool at_end;

	hdr_init(hb);
	CHECK("valid fields",
	      !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) &&
		      !at_end && s.grain == 65536 && s.gd_entries == 1 &&
		      s.gd_off == 26 * 512 && s.rgd_off == 21 * 512 &&
		      s.desc_off == 512 && s.desc_len == 20 * 512 &&
		      !s.compressed);
	/* The primary grain directory past the end: the redundant one. */
	put_le64(hb + 56, 200);
	CHECK("rgd fallback",
	      !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) &&
		      s.gd_off == 21 * 512 && s.rgd_off == 0);
	/* ... and without one, an error. */
	put_le32(hb + 8, 1);
	CHECK("no rgd", vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end,
					  &e) == -EUCLEAN);
	CHECK_MSG("no rgd", e.msg, "f: vmdk: grain directory (1 entries at "
		  "sector 200) lies past the end of the file (65536 bytes)");
	/* A redundant directory past the end is dropped. */
	hdr_init(hb);
	put_le64(hb + 48, 500);
	CHECK("rgd dropped",
	      !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) &&
		      s.rgd_off == 0 && s.gd_off == 26 * 512);
	/* Capacity 0 with a descriptor: a descriptor container. */
	hdr_init(hb);
	put_le64(hb + 12, 0);
	CHECK("container",
	      !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) &&
		      s.capacity == 0 && s.desc_off == 512);

	/* Grain directory at the end: the footer's header counts. */
	hdr_init(hb);
	put_le32(hb + 8, 0x30001);
	hb[77] = 1;
	put_le64(hb + 56, VMDK4_GD_AT_END);
	CHECK("gd at end asks",
	      !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) &&
		      at_end);
	uint8_t *ft = hb + 512;
	memset(ft, 0, 1024);
	put_le64(ft, 1);
	put_le32(ft + 12, VMDK_MARKER_FOOTER);
	memcpy(ft + 512, hb, 512);
	put_le64(ft + 512 + 56, 100);
	uint8_t eos[512] = { 0 };
	uint8_t footer[1536];
	memcpy(footer, ft, 1024);
	memcpy(footer + 1024, eos, 512);
	CHECK("footer ok",
	      !vmdk_sparse_parse(hb, footer, 65536, "f", &s, NULL, &e) &&
		      s.gd_off == 100 * 512 && s.compressed && s.markers);
	footer[12] = VMDK_MARKER_GT;
	CHECK("footer bad", vmdk_sparse_parse(hb, footer, 65536, "f", &s, NULL,
					      &e) == -EUCLEAN);
	CHECK_MSG("footer bad", e.msg, "no footer at offset");
	footer[12] = VMDK_MARKER_FOOTER;
	put_le64(footer + 512 + 56, VMDK4_GD_AT_END);
	CHECK("footer at end", vmdk_sparse_parse(hb, footer, 65536, "f", &s,
						 NULL, &e) == -EUCLEAN);
	CHECK_MSG("footer at end", e.msg, "footer does not say");
	/* Compressed grains larger than 2 MiB. */
	hdr_init(hb);
	hb[77] = 1;
	put_le64(hb + 20, 8192);
	put_le64(hb + 12, 8192);
	CHECK("big compressed grain",
	      vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end, &e) ==
		      -ENOTSUP);

	/* COWD. */
	memset(hb, 0, 512);
	memcpy(hb, "COWD", 4);
	put_le32(hb + 4, 1);
	put_le32(hb + 8, 3);
	put_le32(hb + 12, 16384);
	put_le32(hb + 16, 1);
	put_le32(hb + 20, 4);
	put_le32(hb + 24, 4);
	CHECK("cowd", !vmdk_sparse_parse(hb, NULL, 65536, "f", &s, &at_end,
					 &e) &&
			      s.cowd && s.gtes == 4096 && s.grain == 512 &&
			      s.gd_entries == 4 && s.gd_off == 2048);
	put_le32(hb + 24, 3);
	CHECK("cowd gd short", vmdk_sparse_parse(hb, NULL, 65536, "f", &s,
						 &at_end, &e) == -EUCLEAN);
	CHECK_MSG("cowd gd short", e.msg, "does not cover");
	put_le32(hb + 24, 4);
	put_le32(hb + 16, 6);
	CHECK("cowd grain", vmdk_sparse_parse(hb, NULL, 65536, "f", &s,
					      &at_end, &e) == -EUCLEAN);
	put_le32(hb + 16, 1);
	put_le32(hb + 20, 128);
	CHECK("cowd gd past end", vmdk_sparse_parse(hb, NULL, 65536, "f", &s,
						    &at_end, &e) == -EUCLEAN);
	CHECK_MSG("cowd gd past end", e.msg, "past the end");
}

/* ------------------------------------------------------------ images */

static char dir[64];

static char *path_of(const char *name)
{
	static char p[2][256];
	static int k;

	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static void put_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path_of(name), "wb");

	if (!f || fwrite(data, 1, len, f) != len) {
		perror(name);
		exit(2);
	}
	fclose(f);
}

/* A hosted sparse image in memory: header, descriptor (sectors 1-20),
 * redundant grain directory (sector 21), grain directory (22), primary
 * grain tables (from 24, 4 sectors each), redundant ones after them,
 * grains from overhead on. Grains of 8 sectors, 512 per table: a table
 * covers 2 MiB. */
#define GS 4096u
#define SPAN (512u * GS)
#define NGT 3u
#define OVER 64u
static uint8_t img[OVER * 512 + 64 * GS];
static size_t img_len;

static void s_init(uint64_t size, uint32_t flags, const char *desc)
{
	memset(img, 0, sizeof(img));
	hdr_init(img);
	put_le32(img + 8, flags);
	put_le64(img + 12, size / 512);
	put_le64(img + 20, GS / 512);
	put_le64(img + 48, 21);
	put_le64(img + 56, 22);
	put_le64(img + 64, OVER);
	if (flags & VMDK4_FLAG_COMPRESS)
		img[77] = 1;
	for (unsigned t = 0; t < NGT; t++) {
		put_le32(img + 22 * 512 + t * 4, 24 + 4 * t);
		put_le32(img + 21 * 512 + t * 4, 24 + 4 * NGT + 4 * t);
	}
	if (desc)
		memcpy(img + 512, desc, strlen(desc));
	img_len = OVER * 512;
}

static void s_gte(unsigned idx, uint32_t v)
{
	unsigned t = idx / 512, i = idx % 512;

	put_le32(img + (24 + 4 * t) * 512 + i * 4, v);
	put_le32(img + (24 + 4 * NGT + 4 * t) * 512 + i * 4, v);
}

static void s_grain(unsigned idx, int byte)
{
	memset(img + img_len, byte, GS);
	s_gte(idx, (uint32_t)(img_len / 512));
	img_len += GS;
}

/* A compressed grain with its marker; grain idx holds byte
 * (seed + i / 100) at offset i, for its first `len` bytes. */
static void s_compressed(unsigned idx, int seed, size_t len)
{
	static uint8_t plain[GS];
	uLongf clen = GS * 2;

	for (unsigned i = 0; i < len; i++)
		plain[i] = (uint8_t)(seed + i / 100);
	compress(img + img_len + 12, &clen, plain, len);
	put_le64(img + img_len, (uint64_t)idx * (GS / 512));
	put_le32(img + img_len + 8, (uint32_t)clen);
	s_gte(idx, (uint32_t)(img_len / 512));
	img_len += (12 + clen + 511) / 512 * 512;
}

static int open_img(const char *name, bool ignore, struct vd_disk **d,
		    char *msg, size_t cache)
{
	struct vd_open_opts o = { .ignore_parent_ids = ignore,
				  .cache_bytes = cache };
	struct vd_err e = { "" };
	int ret = vd_disk_open(path_of(name), &o, d, &e);

	if (msg)
		strcpy(msg, e.msg);
	return ret;
}

static uint8_t buf[8 * SPAN];

static void test_sparse_map(void)
{
	struct vd_disk *d;
	uint64_t size = 2 * SPAN + 3 * GS + 1024, n;
	bool data;

	s_init(size, 3 | VMDK4_FLAG_ZERO_GRAIN,
	       "# Disk DescriptorFile\nversion=1\nCID=11111111\n"
	       "parentCID=ffffffff\ncreateType=\"monolithicSparse\"\n");
	s_grain(0, 0x11);
	s_grain(1, 0x22);
	s_gte(2, VMDK_GTE_ZERO);
	s_grain(512 + 7, 0x33);
	s_grain(1024 + 3, 0x44); /* the partial last grain */
	put_file("s.vmdk", img, img_len);
	CHECK("sparse open", !open_img("s.vmdk", false, &d, NULL, 0));
	CHECK("sparse size", vd_disk_size(d) == size);
	CHECK("sparse read", !vd_disk_read(d, buf, size, 0));
	CHECK("sparse g0", all_bytes(buf, GS, 0x11));
	CHECK("sparse g1", all_bytes(buf + GS, GS, 0x22));
	CHECK("sparse zero+unalloc", all_bytes(buf + 2 * GS, SPAN + 5 * GS, 0));
	CHECK("sparse g519", all_bytes(buf + SPAN + 7 * GS, GS, 0x33));
	CHECK("sparse tail", all_bytes(buf + 2 * SPAN + 3 * GS, 1024, 0x44));
	CHECK("sparse status", !vd_disk_status(d, 0, size, &data, &n) &&
				       data && n == 2 * GS);
	CHECK("sparse seek hole", !vd_disk_seek(d, 0, false, &n) &&
					  n == 2 * GS);
	CHECK("sparse seek data", !vd_disk_seek(d, 2 * GS, true, &n) &&
					  n == SPAN + 7 * GS);
	vd_disk_close(d);

	/* A tiny cache (one grain table) still reads it all right. */
	CHECK("tiny cache open", !open_img("s.vmdk", false, &d, NULL, 4096));
	CHECK("tiny cache read", !vd_disk_read(d, buf, size, 0) &&
					 all_bytes(buf + SPAN + 7 * GS, GS,
						   0x33) &&
					 all_bytes(buf, GS, 0x11));
	vd_disk_close(d);

	/* Primary grain table 1 past the end: the redundant one serves. */
	put_le32(img + 22 * 512 + 4, 0x7fffff);
	put_file("s.vmdk", img, img_len);
	CHECK("rgd open", !open_img("s.vmdk", false, &d, NULL, 0));
	CHECK("rgd read", !vd_disk_read(d, buf, GS, SPAN + 7 * GS) &&
				  all_bytes(buf, GS, 0x33));
	vd_disk_close(d);
	/* ... both past the end: EIO there, the rest reads. */
	put_le32(img + 21 * 512 + 4, 0x7ffff0);
	put_file("s.vmdk", img, img_len);
	CHECK("gt past end open", !open_img("s.vmdk", false, &d, NULL, 0));
	CHECK("gt past end EIO", vd_disk_read(d, buf, 512, SPAN) == -EIO);
	CHECK("gt past end other", !vd_disk_read(d, buf, GS, 0) &&
					   all_bytes(buf, GS, 0x11));
	vd_disk_close(d);
	/* A grain past the end of the file. */
	put_le32(img + 21 * 512 + 4, 24 + 4 * NGT + 4);
	s_gte(5, 0x100000);
	put_file("s.vmdk", img, img_len);
	CHECK("grain past end open", !open_img("s.vmdk", false, &d, NULL, 0));
	CHECK("grain past end EIO", vd_disk_read(d, buf, 512, 5 * GS) == -EIO);
	CHECK("grain past end run", vd_disk_read(d, buf, 6 * GS, 0) == -EIO);
	CHECK("grain past end other", !vd_disk_read(d, buf, 4 * GS, 0));
	vd_disk_close(d);

	/* Without the zeroed-grain flag, entry 1 means sector 1 (qemu). */
	s_init(size, 3, NULL);
	s_gte(0, 1);
	put_file("s.vmdk", img, img_len);
	CHECK("gte1 open", !open_img("s.vmdk", false, &d, NULL, 0));
	CHECK("gte1 is sector 1", !vd_disk_read(d, buf, GS, 0) &&
					  !memcmp(buf, img + 512, GS));
	vd_disk_close(d);
}

static void test_compressed(void)
{
	struct vd_disk *d;
	uint64_t size = SPAN + 2 * GS + 1536;
	bool ok = true;

	s_init(size, 3 | VMDK4_FLAG_COMPRESS | VMDK4_FLAG_MARKER, NULL);
	s_compressed(0, 1, GS);
	s_compressed(3, 50, GS);
	s_compressed(514, 90, 1536); /* the tail, as qemu writes it */
	put_file("c.vmdk", img, img_len);
	CHECK("comp open", !open_img("c.vmdk", false, &d, NULL, 0));
	CHECK("comp read", !vd_disk_read(d, buf, size, 0));
	for (unsigned i = 0; i < GS; i++)
		ok = ok && buf[i] == (uint8_t)(1 + i / 100) &&
		     buf[3 * GS + i] == (uint8_t)(50 + i / 100);
	for (unsigned i = 0; i < 1536; i++)
		ok = ok && buf[SPAN + 2 * GS + i] == (uint8_t)(90 + i / 100);
	CHECK("comp bytes", ok);
	CHECK("comp holes", all_bytes(buf + GS, 2 * GS, 0));
	CHECK("comp mid", !vd_disk_read(d, buf, 10, 3 * GS + 1000) &&
				  buf[0] == 60);
	vd_disk_close(d);
	/* Damaged compressed data: EIO on that grain only. */
	img[OVER * 512 + 40] ^= 0xff;
	put_file("c.vmdk", img, img_len);
	CHECK("comp bad open", !open_img("c.vmdk", false, &d, NULL, 0));
	CHECK("comp bad EIO", vd_disk_read(d, buf, 10, 0) == -EIO);
	CHECK("comp bad other", !vd_disk_read(d, buf, 10, 3 * GS));
	vd_disk_close(d);
	/* Truncated inside the last grain. */
	put_file("c.vmdk", img, img_len - 512);
	CHECK("comp trunc open", !open_img("c.vmdk", false, &d, NULL, 0));
	CHECK("comp trunc EIO", vd_disk_read(d, buf, 10, SPAN + 2 * GS) == -EIO);
	vd_disk_close(d);
}

static void test_descriptor_files(void)
{
	struct vd_disk *d;
	char msg[VD_ERR_LEN];
	static uint8_t flat[64 * 1024];
	int ret;

	for (unsigned i = 0; i < sizeof(flat); i++)
		flat[i] = (uint8_t)(i / 512);
	put_file("data.bin", flat, sizeof(flat));
	/* Flat, zero, RDONLY, NOACCESS (skipped), an offset. */
	const char *t = "# Disk DescriptorFile\nversion=1\nCID=22222222\n"
			"parentCID=ffffffff\ncreateType=\"custom\"\n"
			"RW 4 FLAT \"data.bin\" 10\n"
			"NOACCESS 100 ZERO\n"
			"RDONLY 2 ZERO\n"
			"RDONLY 3 VMFS \"data.bin\"\n";
	put_file("f.vmdk", t, strlen(t));
	ret = open_img("f.vmdk", false, &d, msg, 0);
	CHECK("flat open", !ret);
	if (ret)
		printf("    %s\n", msg);
	if (!ret) {
		CHECK("flat size", vd_disk_size(d) == 9 * 512);
		CHECK("flat read", !vd_disk_read(d, buf, 9 * 512, 0));
		CHECK("flat e0", buf[0] == 10 && buf[3 * 512 + 511] == 13);
		CHECK("flat zero", all_bytes(buf + 4 * 512, 1024, 0));
		CHECK("flat vmfs", buf[6 * 512] == 0 && buf[8 * 512] == 2);
		vd_disk_close(d);
	}
	/* A flat extent longer than its file. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"monolithicFlat\"\nRW 200 FLAT \"data.bin\" 0\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("flat short", open_img("f.vmdk", false, &d, msg, 0) == -EUCLEAN);
	CHECK_MSG("flat short", msg, "extent 'data.bin' (line 3) holds 102400 "
		  "bytes at offset 0, but the file has 65536 bytes");
	/* Outside the folder. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"monolithicFlat\"\nRW 1 FLAT \"../../etc/passwd\" 0\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("passwd", open_img("f.vmdk", false, &d, msg, 0) == -EPERM);
	CHECK_MSG("passwd", msg, "extent '/etc/passwd' is outside the allowed "
		  "folders");
	t = "# Disk DescriptorFile\n"
	    "createType=\"monolithicFlat\"\nRW 1 FLAT \"/etc/passwd\" 0\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("abs passwd", open_img("f.vmdk", false, &d, msg, 0) == -EPERM);
	/* Unsupported create types. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"fullDevice\"\nRW 1 FLAT \"/dev/sda\" 0\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("fullDevice", open_img("f.vmdk", false, &d, msg, 0) == -ENOTSUP);
	CHECK_MSG("fullDevice", msg, "createType 'fullDevice' is not supported");
	t = "# Disk DescriptorFile\nversion=1\nRW 1 FLAT \"data.bin\" 0\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("no createType", open_img("f.vmdk", false, &d, msg, 0) == -EUCLEAN);
	CHECK_MSG("no createType", msg, "no createType");
	/* A SPARSE extent that is not one. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"twoGbMaxExtentSparse\"\nRW 1 SPARSE \"data.bin\"\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("not sparse", open_img("f.vmdk", false, &d, msg, 0) == -EUCLEAN);
	CHECK_MSG("not sparse", msg, "data.bin: vmdk: not a sparse extent");
	/* Only NOACCESS extents. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"custom\"\nNOACCESS 1 ZERO\n";
	put_file("f.vmdk", t, strlen(t));
	CHECK("no extents", open_img("f.vmdk", false, &d, msg, 0) == -EUCLEAN);
	CHECK_MSG("no extents", msg, "names no extents");
	/* A renamed set: NEW.vmdk still names OLD-f001.vmdk. */
	t = "# Disk DescriptorFile\n"
	    "createType=\"twoGbMaxExtentFlat\"\nRW 2 FLAT \"OLD-f001.vmdk\" 0\n"
	    "RW 2 FLAT \"sub/OLD-f002.vmdk\" 0\n";
	put_file("NEW.vmdk", t, strlen(t));
	put_file("NEW-f001.vmdk", flat, 1024);
	CHECK("renamed missing", open_img("NEW.vmdk", false, &d, msg, 0) ==
					 -ENOENT);
	CHECK_MSG("renamed missing", msg, "extent 'sub/OLD-f002.vmdk' not found");
	(void)mkdir(path_of("sub"), 0755);
	put_file("sub/NEW-f002.vmdk", flat + 1024, 1024);
	ret = open_img("NEW.vmdk", false, &d, msg, 0);
	CHECK("renamed", !ret);
	if (!ret) {
		CHECK("renamed read", !vd_disk_read(d, buf, 2048, 0) &&
					      buf[0] == 0 && buf[1024] == 2);
		vd_disk_close(d);
	}
}

/* Delta links: parentCID against the parent's CID. */
static void test_parent_cid(void)
{
	struct vd_disk *d;
	char msg[VD_ERR_LEN];
	uint64_t size = SPAN;
	int ret;

	s_init(size, 3, "# Disk DescriptorFile\nversion=1\nCID=0badcafe\n"
			"parentCID=ffffffff\ncreateType=\"monolithicSparse\"\n");
	s_grain(0, 0x55);
	s_grain(1, 0x56);
	put_file("base.vmdk", img, img_len);
	s_init(size, 3, "# Disk DescriptorFile\nversion=1\nCID=00000001\n"
			"parentCID=0badcafe\ncreateType=\"monolithicSparse\"\n"
			"parentFileNameHint=\"base.vmdk\"\n");
	s_grain(1, 0x66);
	put_file("child.vmdk", img, img_len);
	ret = open_img("child.vmdk", false, &d, msg, 0);
	CHECK("delta open", !ret);
	if (!ret) {
		CHECK("delta read", !vd_disk_read(d, buf, 3 * GS, 0) &&
					    all_bytes(buf, GS, 0x55) &&
					    all_bytes(buf + GS, GS, 0x66) &&
					    all_bytes(buf + 2 * GS, GS, 0));
		vd_disk_close(d);
	}
	memcpy(img + 512 + strlen("# Disk DescriptorFile\nversion=1\nCID="
				  "00000001\nparentCID="), "0badcaff", 8);
	put_file("child.vmdk", img, img_len);
	CHECK("cid mismatch", open_img("child.vmdk", false, &d, msg, 0) ==
				      -EUCLEAN);
	CHECK_MSG("cid mismatch", msg, "parentCID 0badcaff does not match the "
		  "CID 0badcafe of the parent");
	CHECK_MSG("cid mismatch", msg, "--ignore-parent-id");
	ret = open_img("child.vmdk", true, &d, msg, 0);
	CHECK("cid ignored", !ret);
	if (!ret)
		vd_disk_close(d);
}

/* Opening reads nothing proportional to the disk: a 512 TiB image whose
 * grain directory (64 MiB) is all holes opens and reads at once. */
static void test_huge(void)
{
	struct vd_disk *d;
	uint64_t cap = 1ULL << 40; /* sectors */
	FILE *f;
	int ret;

	hdr_init(hb);
	put_le64(hb + 12, cap);
	put_le64(hb + 28, 0);
	put_le64(hb + 36, 0);
	put_le32(hb + 8, 1);
	put_le64(hb + 56, 1);
	f = fopen(path_of("huge.vmdk"), "wb");
	if (!f || fwrite(hb, 1, 512, f) != 512)
		exit(2);
	fclose(f);
	if (truncate(path_of("huge.vmdk"), 512 + (cap / 128 / 512 + 1) * 4 +
						   65536))
		exit(2);
	ret = open_img("huge.vmdk", false, &d, NULL, 0);
	CHECK("huge open", !ret);
	if (!ret) {
		CHECK("huge size", vd_disk_size(d) == cap * 512);
		CHECK("huge read", !vd_disk_read(d, buf, 4096,
						 cap * 512 - 4096) &&
					   all_bytes(buf, 4096, 0));
		vd_disk_close(d);
	}
	unlink(path_of("huge.vmdk"));
}

int main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/vmdk_test.XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	test_probe();
	test_desc_table();
	test_desc_fields();
	test_desc_limits();
	test_headers();
	test_sparse_map();
	test_compressed();
	test_descriptor_files();
	test_parent_cid();
	test_huge();
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", dir);
	if (system(cmd)) {
	}
	return unit_done();
}
