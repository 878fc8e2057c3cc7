/* Unit tests: the OVF descriptor reader (a strict, bounded XML subset)
 * and the tar walk, table-driven on in-memory buffers; then whole
 * appliances built in a memfd and opened through vd_disk_open. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "core/disk.h"
#include "core/ova.h"
#include "tests/unit/unit.h"

#define NS "xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" " \
	   "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
#define REFS "<References><File ovf:id=\"f1\" ovf:href=\"a.img\"/>" \
	     "<File ovf:id=\"f2\" ovf:href=\"b.img\"/></References>"
#define DISKS "<DiskSection><Info>x</Info>" \
	      "<Disk ovf:diskId=\"d1\" ovf:fileRef=\"f1\"/>" \
	      "<Disk ovf:diskId=\"d2\" ovf:fileRef=\"f2\"/></DiskSection>"
#define ENV(body) "<Envelope " NS ">" body "</Envelope>"

/* ------------------------------------------------------------- OVF/XML */

struct ovf_case {
	const char *name;
	const char *xml;
	int ret;
	const char *msg;   /* substring of the message when ret != 0 */
	unsigned n_disks;  /* when ret == 0 */
	const char *href1; /* href of disk 1's file, when ret == 0 */
};

static const struct ovf_case ovf_cases[] = {
	{ "plain", ENV(REFS DISKS), 0, NULL, 2, "a.img" },
	{ "prolog comment pi", "\xef\xbb\xbf<?xml version=\"1.0\"?>\n"
	  "<!-- a <comment> -->\n<?pi x?>\n" ENV(REFS DISKS) "\n<!-- end -->\n",
	  0, NULL, 2, "a.img" },
	{ "doctype", "<!DOCTYPE Envelope>" ENV(REFS DISKS), 0, NULL, 2,
	  "a.img" },
	{ "prefixed elements",
	  "<ovf:Envelope xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\">"
	  "<ovf:References><ovf:File ovf:id='f1' ovf:href='x.vmdk'/>"
	  "</ovf:References><ovf:DiskSection><ovf:Disk ovf:diskId='d' "
	  "ovf:fileRef='f1'/></ovf:DiskSection></ovf:Envelope>",
	  0, NULL, 1, "x.vmdk" },
	{ "other prefix name",
	  "<e:Envelope xmlns:e=\"http://schemas.dmtf.org/ovf/envelope/2\">"
	  "<e:References><e:File e:id='f1' e:href='y'/></e:References>"
	  "<e:DiskSection><e:Disk e:diskId='d' e:fileRef='f1'/>"
	  "</e:DiskSection></e:Envelope>",
	  0, NULL, 1, "y" },
	{ "unprefixed attributes",
	  "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\">"
	  "<References><File id='f1' href='u.img'/></References>"
	  "<DiskSection><Disk diskId='d' fileRef='f1'/></DiskSection>"
	  "</Envelope>", 0, NULL, 1, "u.img" },
	{ "entities",
	  ENV("<References><File ovf:id=\"f1\" ovf:href=\"a&amp;b&lt;&gt;"
	      "&quot;&apos;&#65;&#x42;&#xe9;.img\"/></References>"
	      "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f1\"/>"
	      "</DiskSection>"),
	  0, NULL, 1, "a&b<>\"'AB\xc3\xa9.img" },
	{ "cdata and text",
	  ENV("<Annotation><![CDATA[ <not a tag> & ]]> a &amp; b"
	      "</Annotation>" REFS DISKS), 0, NULL, 2, "a.img" },
	{ "other namespaces and sections",
	  "<Envelope " NS " xmlns:vmw=\"http://www.vmware.com/schema/ovf\">"
	  "<vmw:Thing vmw:a=\"1\"><References/></vmw:Thing>"
	  REFS "<VirtualSystem ovf:id=\"vm\"><Info>i</Info></VirtualSystem>"
	  DISKS "</Envelope>", 0, NULL, 2, "a.img" },
	{ "disk order is document order",
	  ENV(REFS "<DiskSection><Disk ovf:diskId=\"d2\" ovf:fileRef=\"f2\"/>"
	      "<Disk ovf:diskId=\"d1\" ovf:fileRef=\"f1\"/></DiskSection>"),
	  0, NULL, 2, "b.img" },
	{ "empty disk", ENV(REFS "<DiskSection><Disk ovf:diskId=\"e\"/>"
			    "</DiskSection>"), 0, NULL, 1, NULL },
	{ "vmware 0.9 namespace",
	  "<Envelope xmlns=\"http://www.vmware.com/schema/ovf/1/envelope\" "
	  "xmlns:ovf=\"http://www.vmware.com/schema/ovf/1/envelope\">" REFS
	  DISKS "</Envelope>", 0, NULL, 2, "a.img" },

	{ "not xml", "this is not XML\n", -EUCLEAN, "text outside the root", 0, NULL },
	{ "empty", "", -EUCLEAN, "no root element", 0, NULL },
	{ "binary", "\x7f" "ELF\0\0", -EUCLEAN, "NUL byte", 0, NULL },
	{ "utf16", "\xff\xfe<\0E\0", -ENOTSUP, "UTF-16", 0, NULL },
	{ "wrong root", "<html><body/></html>", -EUCLEAN,
	  "not an OVF Envelope", 0, NULL },
	{ "root without namespace", "<Envelope>" REFS DISKS "</Envelope>",
	  -EUCLEAN, "not an OVF Envelope", 0, NULL },
	{ "other namespace",
	  "<Envelope xmlns=\"http://example.com/ovf/envelope/1\">"
	  "</Envelope>", -EUCLEAN, "namespace http://example.com", 0, NULL },
	{ "no disk section", ENV(REFS), -EUCLEAN, "no DiskSection", 0, NULL },
	{ "empty disk section", ENV(REFS "<DiskSection/>"), -EUCLEAN,
	  "lists no Disk", 0, NULL },
	{ "dangling fileRef",
	  ENV(REFS "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f9\"/>"
	      "</DiskSection>"), -EUCLEAN, "ovf:fileRef=\"f9\"", 0, NULL },
	{ "file without href", ENV("<References><File ovf:id=\"f1\"/>"
				   "</References>" DISKS),
	  -EUCLEAN, "without ovf:id or ovf:href", 0, NULL },
	{ "duplicate file id",
	  ENV("<References><File ovf:id=\"f1\" ovf:href=\"a\"/>"
	      "<File ovf:id=\"f1\" ovf:href=\"b\"/></References>" DISKS),
	  -EUCLEAN, "two Files", 0, NULL },
	{ "bad size", ENV("<References><File ovf:id=\"f1\" ovf:href=\"a\" "
			  "ovf:size=\"12k\"/></References>" DISKS),
	  -EUCLEAN, "not a number", 0, NULL },
	{ "size overflow",
	  ENV("<References><File ovf:id=\"f1\" ovf:href=\"a\" "
	      "ovf:size=\"99999999999999999999\"/></References>" DISKS),
	  -EUCLEAN, "not a number", 0, NULL },
	{ "mismatched end", ENV(REFS DISKS "</Foo>"), -EUCLEAN,
	  "does not match", 0, NULL },
	{ "unclosed", "<Envelope " NS ">" REFS DISKS, -EUCLEAN,
	  "ends inside <Envelope>", 0, NULL },
	{ "unclosed comment", "<!-- x" ENV(REFS DISKS), -EUCLEAN,
	  "comment never ends", 0, NULL },
	{ "unclosed tag", "<Envelope " NS, -EUCLEAN, "never ends", 0, NULL },
	{ "two roots", ENV(REFS DISKS) ENV(REFS DISKS), -EUCLEAN,
	  "second root", 0, NULL },
	{ "text after root", ENV(REFS DISKS) "junk", -EUCLEAN,
	  "text outside the root", 0, NULL },
	{ "unknown entity", ENV("<a b=\"&nbsp;\"/>" REFS DISKS), -EUCLEAN,
	  "unknown entity", 0, NULL },
	{ "entity in text", ENV("<a>&bogus;</a>" REFS DISKS), -EUCLEAN,
	  "unknown entity", 0, NULL },
	{ "bare ampersand", ENV("<a b=\"x & y\"/>" REFS DISKS), -EUCLEAN,
	  "'&' that starts", 0, NULL },
	{ "char ref zero", ENV("<a b=\"&#0;\"/>" REFS DISKS), -EUCLEAN,
	  "invalid character", 0, NULL },
	{ "char ref surrogate", ENV("<a b=\"&#xD800;\"/>" REFS DISKS),
	  -EUCLEAN, "invalid character", 0, NULL },
	{ "char ref too big", ENV("<a b=\"&#x110000;\"/>" REFS DISKS),
	  -EUCLEAN, "invalid character", 0, NULL },
	{ "char ref huge", ENV("<a b=\"&#99999999;\"/>" REFS DISKS),
	  -EUCLEAN, "invalid character", 0, NULL },
	{ "char ref bad digit", ENV("<a b=\"&#x4G;\"/>" REFS DISKS),
	  -EUCLEAN, "bad character reference", 0, NULL },
	{ "lt in attribute", ENV("<a b=\"x<y\"/>" REFS DISKS), -EUCLEAN,
	  "'<' in an attribute", 0, NULL },
	{ "unquoted attribute", ENV("<a b=c/>" REFS DISKS), -EUCLEAN,
	  "not quoted", 0, NULL },
	{ "attribute without value", ENV("<a b/>" REFS DISKS), -EUCLEAN,
	  "has no value", 0, NULL },
	{ "duplicate attribute", ENV("<a b='1' b='2'/>" REFS DISKS),
	  -EUCLEAN, "given twice", 0, NULL },
	{ "no space between attributes", ENV("<a b='1'c='2'/>" REFS DISKS),
	  -EUCLEAN, "expected white space", 0, NULL },
	{ "undeclared prefix", ENV("<x:a/>" REFS DISKS), -EUCLEAN,
	  "undeclared namespace prefix", 0, NULL },
	{ "undeclared attribute prefix", ENV("<a x:b='1'/>" REFS DISKS),
	  -EUCLEAN, "undeclared namespace prefix in attribute", 0, NULL },
	{ "doctype internal subset",
	  "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>" ENV(REFS DISKS), -ENOTSUP,
	  "internal subset", 0, NULL },
	{ "line number", "<?xml version='1.0'?>\n<Envelope " NS ">\n\n"
	  "<a b='&x;'/>" REFS DISKS "</Envelope>", -EUCLEAN, "line 4:", 0, NULL },
};

static void test_ovf_table(void)
{
	for (unsigned i = 0; i < VD_ARRAY_SIZE(ovf_cases); i++) {
		const struct ovf_case *c = &ovf_cases[i];
		struct vd_err e = { "" };
		struct vd_ovf *o = NULL;
		/* The strings with NULs inside are measured by hand. */
		size_t len = !strcmp(c->name, "binary") ? 6 :
			     !strcmp(c->name, "utf16")	? 6 :
							  strlen(c->xml);
		int ret = vd_ovf_parse(c->xml, len, "t.ovf", &o, &e);

		CHECK(c->name, ret == c->ret);
		if (ret != c->ret)
			printf("  %s: got %d (%s)\n", c->name, ret, e.msg);
		if (c->ret) {
			CHECK_MSG(c->name, e.msg, c->msg);
			CHECK_MSG(c->name, e.msg, "t.ovf: ");
			continue;
		}
		if (ret)
			continue;
		CHECK(c->name, o->n_disks == c->n_disks);
		if (c->href1)
			CHECK(c->name, o->disks[0].file >= 0 &&
					       !strcmp(o->files[o->disks[0].file]
							       .href,
						       c->href1));
		else
			CHECK(c->name, o->disks[0].file == -1 &&
					       !o->disks[0].file_ref);
		vd_ovf_free(o);
	}
}

static void test_ovf_limits(void)
{
	struct vd_err e = { "" };
	struct vd_ovf *o = NULL;
	static char deep[64 * 8 + 4096];
	size_t n = 0;

	/* 65 nested elements inside the envelope: over the depth limit. */
	n += (size_t)sprintf(deep + n, "<Envelope " NS ">");
	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(deep + n, "<a>");
	CHECK("depth limit", vd_ovf_parse(deep, n, "t.ovf", &o, &e) ==
				     -EUCLEAN);
	CHECK_MSG("depth limit", e.msg, "nested deeper");

	CHECK("size limit", vd_ovf_parse(deep, VD_OVF_MAX_BYTES + 1ul, "t.ovf",
					 &o, &e) == -EUCLEAN);
	CHECK_MSG("size limit", e.msg, "at most");

	/* Chunked and compressed files parse (the selection refuses
	 * them, tested below). */
	const char *x = ENV("<References><File ovf:id=\"f1\" ovf:href=\"a\" "
			    "ovf:chunkSize=\"1024\" ovf:size=\"7\"/>"
			    "<File ovf:id=\"f2\" ovf:href=\"b\" "
			    "ovf:compression=\"gzip\"/></References>" DISKS);
	CHECK("chunked parses", !vd_ovf_parse(x, strlen(x), "t", &o, &e));
	CHECK("chunk size", o->files[0].chunk_size == 1024 &&
				    o->files[0].has_size &&
				    o->files[0].size == 7);
	CHECK("compression", !strcmp(o->files[1].compression, "gzip"));
	vd_ovf_free(o);

	CHECK("probe yes", vd_ovf_probe(ENV(REFS), strlen(ENV(REFS))));
	/* Only the start of the document is needed to probe. */
	const char *pre = "<?xml version='1.0'?><Envelope " NS "><Refer";
	CHECK("probe prefix", vd_ovf_probe(pre, strlen(pre)));
	CHECK("probe no", !vd_ovf_probe("<html/>", 7));
	CHECK("probe text", !vd_ovf_probe("hello", 5));
}

/* ------------------------------------------------------------------ tar */

static uint8_t tar[1 << 20];
static size_t tar_len;

enum tar_style { USTAR, GNU, V7 };

static void tar_cksum(uint8_t *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* Append a header (and data of size bytes of `fill`, padded). */
static uint8_t *tar_add_hdr(const char *name, uint64_t size, char type,
			    enum tar_style st, const void *data, int fill)
{
	uint8_t *h = tar + tar_len;

	memset(h, 0, 512);
	memcpy(h, name, VD_MIN(strlen(name), 100u));
	memcpy(h + 100, "0000644", 7);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	memcpy(h + 136, "00000000000", 11);
	h[156] = (uint8_t)type;
	if (st == USTAR)
		memcpy(h + 257, "ustar\0" "00", 8);
	else if (st == GNU)
		memcpy(h + 257, "ustar  \0", 8);
	tar_cksum(h);
	tar_len += 512;
	if (data)
		memcpy(tar + tar_len, data, size);
	else
		memset(tar + tar_len, fill, size);
	tar_len += (size + 511) / 512 * 512;
	return h;
}

static void tar_end(void)
{
	memset(tar + tar_len, 0, 1024);
	tar_len += 1024;
}

static int open_mem(const void *buf, size_t len, struct vd_file **f_r)
{
	struct vd_err e = { "" };
	char path[64];
	int fd = unit_memfd(buf, len, path, sizeof(path)), ret;

	if (fd < 0)
		return -EIO;
	ret = vd_file_open(path, f_r, &e);
	close(fd);
	return ret;
}

struct listing {
	char names[8][300];
	uint64_t off[8], size[8];
	char type[8];
	unsigned n;
};

static int list_cb(void *ctx, const struct vd_archive_member *m)
{
	struct listing *l = ctx;

	if (l->n < 8) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", m->name);
		l->off[l->n] = m->off;
		l->size[l->n] = m->size;
		l->type[l->n] = m->type;
	}
	l->n++;
	return 0;
}

/* Walk tar[0, len); 0 or -errno with msg. */
static int walk(size_t len, struct listing *l, char *msg)
{
	struct vd_file *f;
	struct vd_archive *a;
	struct vd_err e = { "" };
	int ret;

	memset(l, 0, sizeof(*l));
	if (open_mem(tar, len, &f))
		return -EIO;
	ret = vd_tar_open(f, "t.ova", &a, &e);
	if (msg)
		strcpy(msg, e.msg);
	if (ret) {
		vd_file_close(f);
		return ret;
	}
	vd_archive_foreach(a, list_cb, l);
	vd_archive_free(a);
	return 0;
}

static void test_tar(void)
{
	struct listing l;
	char msg[VD_ERR_LEN], longname[201], pax[512];
	uint8_t *h;

	/* The three header styles, data offsets and sizes. */
	tar_len = 0;
	tar_add_hdr("./a.ovf", 10, '0', USTAR, NULL, 'a');
	tar_add_hdr("b.img", 1000, '0', GNU, NULL, 'b');
	tar_add_hdr("c.img", 0, '\0', V7, NULL, 0);
	tar_add_hdr("dir/", 0, '5', USTAR, NULL, 0);
	tar_end();
	CHECK("styles walk", !walk(tar_len, &l, msg));
	CHECK("styles count", l.n == 4);
	CHECK("strip ./", !strcmp(l.names[0], "a.ovf"));
	CHECK("offsets", l.off[0] == 512 && l.off[1] == 1536 &&
				 l.size[1] == 1000 && l.off[2] == 3072);
	CHECK("types", l.type[0] == '0' && l.type[1] == '0' &&
			       l.type[2] == '0' && l.type[3] == '5');
	CHECK("probe ustar", vd_tar_probe(tar, 512));
	CHECK("probe v7", vd_tar_probe(tar + 2560, 512));
	CHECK("probe short", !vd_tar_probe(tar, 511));

	/* End: no end marker at all, and garbage after the marker. */
	CHECK("eof without marker", !walk(tar_len - 1024, &l, msg) &&
					    l.n == 4);
	memset(tar + tar_len, 'x', 512);
	CHECK("after marker ignored", !walk(tar_len + 512, &l, msg) &&
					      l.n == 4);

	/* A bad checksum: in the second header. */
	tar[1024 + 10] ^= 1; /* b.img's name */
	CHECK("bad checksum", walk(tar_len, &l, msg) == -EUCLEAN);
	CHECK_MSG("bad checksum", msg, "header at 0x400 has a bad checksum");
	tar[1024 + 10] ^= 1;
	CHECK("v7 probe needs checksum", (tar[2560] ^= 1, !vd_tar_probe(tar +
								       2560,
								       512)));
	tar[2560] ^= 1;

	/* A member running past the end of the file. */
	CHECK("truncated data", walk(1024 + 512 + 500, &l, msg) == -EUCLEAN);
	CHECK_MSG("truncated data", msg, "runs past the end");
	CHECK("truncated header", walk(1024 + 100, &l, msg) == -EUCLEAN);
	CHECK_MSG("truncated header", msg, "ends inside the header");
	/* The last member's padding may be missing. */
	tar_len = 0;
	tar_add_hdr("x", 10, '0', USTAR, NULL, 'x');
	CHECK("unpadded last", !walk(522, &l, msg) && l.n == 1 &&
				       l.size[0] == 10);

	/* Size fields: base-256, bad octal, negative base-256. */
	tar_len = 0;
	h = tar_add_hdr("big", 0, '0', GNU, NULL, 0);
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 200;
	tar_cksum(h);
	memset(tar + tar_len, 'z', 512);
	tar_len += 512;
	tar_end();
	CHECK("base-256", !walk(tar_len, &l, msg) && l.size[0] == 200);
	h[124] = 0xff;
	tar_cksum(h);
	CHECK("negative size", walk(tar_len, &l, msg) == -EUCLEAN);
	CHECK_MSG("negative size", msg, "size field");
	memcpy(h + 124, "0000000009x", 11);
	tar_cksum(h);
	CHECK("bad octal", walk(tar_len, &l, msg) == -EUCLEAN);
	h[124] = 0x80;
	memset(h + 125, 0xff, 11);
	tar_cksum(h);
	CHECK("base-256 huge", walk(tar_len, &l, msg) == -EUCLEAN);

	/* GNU long name ('L') then pax path (x), a global header (g) and
	 * a ustar prefix. */
	memset(longname, 'n', 200);
	memcpy(longname + 196, ".ovf", 5);
	tar_len = 0;
	tar_add_hdr("././@LongLink", 201, 'L', GNU, longname, 0);
	tar_add_hdr("truncated-name", 3, '0', GNU, NULL, 'L');
	/* The record length counts its own digits: iterate to the fixed
	 * point. */
	int pl = 0;
	for (int i = 0; i < 3; i++)
		pl = snprintf(pax, sizeof(pax), "%d path=%s/p.img\n", pl,
			      longname);
	tar_add_hdr("g", 20, 'g', USTAR, "13 comment=x\n0000000", 0);
	tar_add_hdr("PaxHeaders/p", (uint64_t)pl, 'x', USTAR, pax, 0);
	tar_add_hdr("short-p", 5, '0', USTAR, NULL, 'P');
	h = tar_add_hdr("after", 1, '0', USTAR, NULL, 'A');
	memcpy(h + 345, "pre/fix", 7);
	tar_cksum(h);
	tar_end();
	CHECK("long names walk", !walk(tar_len, &l, msg));
	CHECK("long names count", l.n == 3);
	CHECK("gnu long name", !strcmp(l.names[0], longname) &&
				       l.size[0] == 3);
	CHECK("pax path", strlen(l.names[1]) == 206 &&
				  !strcmp(l.names[1] + 201, "p.img"));
	CHECK("ustar prefix", !strcmp(l.names[2], "pre/fix/after"));

	/* pax size= overrides the header's; GNU.sparse marks sparse. */
	tar_len = 0;
	const char *sp = "12 size=600\n22 GNU.sparse.major=1\n"
			 "24 GNU.sparse.name=real\n15 path=fake/x\n";
	tar_add_hdr("P", strlen(sp), 'x', USTAR, sp, 0);
	tar_add_hdr("s", 0, '0', USTAR, NULL, 0);
	memset(tar + tar_len, 's', 1024);
	tar_len += 1024;
	tar_end();
	CHECK("pax size", !walk(tar_len, &l, msg) && l.n == 1 &&
				  l.size[0] == 600 && l.type[0] == 'S' &&
				  !strcmp(l.names[0], "real"));

	/* Bad pax records. */
	static const char *const bad_pax[] = {
		"99 path=x\n",	/* longer than the data */
		"5 path=x\n",	/* shorter than itself */
		"8 pathx\n", 	/* no '=' */
		"x path=y\n",	/* no length */
		"11 size=1k\n", /* bad number */
	};
	for (unsigned i = 0; i < VD_ARRAY_SIZE(bad_pax); i++) {
		tar_len = 0;
		tar_add_hdr("P", strlen(bad_pax[i]), 'x', USTAR, bad_pax[i], 0);
		tar_add_hdr("f", 0, '0', USTAR, NULL, 0);
		tar_end();
		CHECK("bad pax", walk(tar_len, &l, msg) == -EUCLEAN);
		CHECK_MSG("bad pax", msg, "pax header at 0x0");
	}

	/* An oversized long name. */
	tar_len = 0;
	tar_add_hdr("L", 70000, 'L', GNU, NULL, 'n');
	tar_add_hdr("f", 0, '0', GNU, NULL, 0);
	tar_end();
	CHECK("huge long name", walk(tar_len, &l, msg) == -EUCLEAN);
	CHECK_MSG("huge long name", msg, "at most");
}

/* ---------------------------------------------------- whole appliances */

static int open_ova(unsigned disk, struct vd_disk **d_r, char *msg)
{
	struct vd_open_opts o = { .disk = disk };

	return unit_mem_disk(tar, tar_len, &o, d_r, msg);
}

/* An OVA with descriptor xml and members a.img (3000 bytes of 'a') and
 * b.img (5000 of 'b'), the descriptor placed after the disks when
 * desc_last. */
static void make_ova(const char *xml, bool desc_last)
{
	tar_len = 0;
	if (!desc_last)
		tar_add_hdr("t.ovf", strlen(xml), '0', USTAR, xml, 0);
	tar_add_hdr("a.img", 3000, '0', USTAR, NULL, 'a');
	tar_add_hdr("b.img", 5000, '0', USTAR, NULL, 'b');
	if (desc_last)
		tar_add_hdr("t.ovf", strlen(xml), '0', USTAR, xml, 0);
	tar_end();
}

static void test_appliance(void)
{
	static uint8_t buf[5000];
	char msg[VD_ERR_LEN];
	struct vd_disk *d;

	make_ova(ENV(REFS DISKS), false);
	CHECK("ova disk 1", !open_ova(0, &d, msg) && vd_disk_size(d) == 3000);
	CHECK("ova read 1", !vd_disk_read(d, buf, 3000, 0) && buf[0] == 'a' &&
				    buf[2999] == 'a');
	CHECK_MSG("ova path", vd_layer_path(vd_disk_top(d)), "/a.img");
	vd_disk_close(d);

	make_ova(ENV(REFS DISKS), true);
	CHECK("ova disk 2", !open_ova(2, &d, msg) && vd_disk_size(d) == 5000);
	CHECK("ova read 2", !vd_disk_read(d, buf, 5000, 0) && buf[0] == 'b' &&
				    buf[4999] == 'b');
	vd_disk_close(d);
	CHECK("ova disk 9", open_ova(9, &d, msg) == -EINVAL);
	CHECK_MSG("ova disk 9", msg, "--disk=9: the appliance has 2 disks");

	struct {
		const char *name, *xml, *msg;
		int ret;
	} bad[] = {
		{ "missing member",
		  ENV("<References><File ovf:id=\"f1\" ovf:href=\"z.img\"/>"
		      "</References><DiskSection><Disk ovf:diskId=\"d\" "
		      "ovf:fileRef=\"f1\"/></DiskSection>"),
		  "disk file 'z.img' is not in the OVA", -ENOENT },
		{ "dotdot",
		  ENV("<References><File ovf:id=\"f1\" "
		      "ovf:href=\"../../etc/passwd\"/></References>"
		      "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f1\"/>"
		      "</DiskSection>"),
		  "outside the appliance", -EPERM },
		{ "absolute",
		  ENV("<References><File ovf:id=\"f1\" ovf:href=\"/a.img\"/>"
		      "</References><DiskSection><Disk ovf:diskId=\"d\" "
		      "ovf:fileRef=\"f1\"/></DiskSection>"),
		  "outside the appliance", -EPERM },
		{ "url",
		  ENV("<References><File ovf:id=\"f1\" "
		      "ovf:href=\"http://x/a.img\"/></References>"
		      "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f1\"/>"
		      "</DiskSection>"),
		  "is a URL", -ENOTSUP },
		{ "gzip",
		  ENV("<References><File ovf:id=\"f1\" ovf:href=\"a.img\" "
		      "ovf:compression=\"gzip\"/></References>"
		      "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f1\"/>"
		      "</DiskSection>"),
		  "compressed (ovf:compression=\"gzip\")", -ENOTSUP },
		{ "chunked",
		  ENV("<References><File ovf:id=\"f1\" ovf:href=\"a.img\" "
		      "ovf:chunkSize=\"1000\"/></References>"
		      "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f1\"/>"
		      "</DiskSection>"),
		  "chunked files are not supported", -ENOTSUP },
		{ "empty disk",
		  ENV(REFS "<DiskSection><Disk ovf:diskId=\"d\"/>"
			   "</DiskSection>"),
		  "has no file", -ENOTSUP },
		{ "not xml", "not xml at all", "text outside the root",
		  -EUCLEAN },
	};
	for (unsigned i = 0; i < VD_ARRAY_SIZE(bad); i++) {
		make_ova(bad[i].xml, false);
		CHECK(bad[i].name, open_ova(0, &d, msg) == bad[i].ret);
		CHECK_MSG(bad[i].name, msg, bad[i].msg);
	}

	/* A tar without a descriptor. */
	tar_len = 0;
	tar_add_hdr("a.img", 3000, '0', USTAR, NULL, 'a');
	tar_end();
	CHECK("no ovf", open_ova(0, &d, msg) == -EUCLEAN);
	CHECK_MSG("no ovf", msg, "no OVF descriptor");

	/* The descriptor in a folder: hrefs are relative to it. */
	const char *x = ENV(REFS DISKS);
	tar_len = 0;
	tar_add_hdr("vm/t.ovf", strlen(x), '0', USTAR, x, 0);
	tar_add_hdr("a.img", 100, '0', USTAR, NULL, 'x');
	tar_add_hdr("vm/a.img", 300, '0', USTAR, NULL, 'a');
	tar_end();
	CHECK("ovf in folder", !open_ova(0, &d, msg) &&
				       vd_disk_size(d) == 300);
	vd_disk_close(d);

	/* --disk on a plain image. */
	tar_len = 4096;
	memset(tar, 0, tar_len);
	CHECK("disk on raw", open_ova(2, &d, msg) == -EINVAL);
	CHECK_MSG("disk on raw", msg, "applies to OVA and OVF");
	CHECK("raw untouched", !open_ova(0, &d, msg) &&
				       vd_disk_size(d) == 4096);
	vd_disk_close(d);
}

int main(void)
{
	test_ovf_table();
	test_ovf_limits();
	test_tar();
	test_appliance();
	return unit_done();
}
