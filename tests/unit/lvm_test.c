/* Unit tests: LVM2 PVs built field by field in memory, read through the
 * volume interface (volumes/vol.h).
 *
 *   lvm_test              run the unit tests
 *   lvm_test --scan FILE  print what the assembler makes of FILE (a raw
 *                         PV, e.g. a loop device's backing file made by
 *                         pvcreate), to compare with lvm's own reports
 *
 * PVs are memory volumes (computed: read_vec and status of their own)
 * in a set made here; the LVs are read through volumes/vol.c. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/unit/unit.h"
#include "volumes/lvm-internal.h"
#include "volumes/lvm.h"
#include "volumes/vol.h"

/* ------------------------------------------------ memory volumes */

struct mem_vol {
	struct vd_vol v;
	uint8_t *buf;
	unsigned reads; /* calls to read_vec */
};

static int mem_read_vec(const struct vd_vol *v, void *buf, size_t len,
			uint64_t off, struct vd_seg *segs, unsigned max_segs,
			unsigned *n_r)
{
	struct mem_vol *m = (struct mem_vol *)v;

	(void)max_segs;
	memcpy(buf, m->buf + off, len);
	segs[0] = (struct vd_seg){ .type = VD_SEG_MEM, .len = len,
				   .mem = buf };
	*n_r = 1;
	__atomic_add_fetch(&m->reads, 1, __ATOMIC_RELAXED);
	return 0;
}

static int mem_status(const struct vd_vol *v, uint64_t off, uint64_t len,
		      bool *data_r, uint64_t *len_r)
{
	(void)v;
	(void)off;
	*data_r = true;
	*len_r = len;
	return 0;
}

static void mem_destroy(struct vd_vol *v)
{
	free(((struct mem_vol *)v)->buf);
}

static const struct vd_vol_ops mem_ops = {
	.kind = "disk",
	.read_vec = mem_read_vec,
	.status = mem_status,
	.destroy = mem_destroy,
};

/* LVM's index in vd_assemblers (its state's in a set's asm_state). */
static unsigned lvm_index(void)
{
	for (unsigned i = 0; vd_assemblers[i]; i++)
		if (vd_assemblers[i] == &vd_lvm_assembler)
			return i;
	fprintf(stderr, "lvm_test: vd_lvm_assembler is not in vd_assemblers\n");
	exit(2);
}

/* An empty set, as discovery makes one. */
static struct vd_volset *set_new(void)
{
	struct vd_volset *s = calloc(1, sizeof(*s));

	s->name = "t.img";
	s->asm_state = calloc(lvm_index() + 1, sizeof(void *));
	return s;
}

static struct vd_vol *set_add_mem(struct vd_volset *s, uint8_t *buf,
				  size_t len, const char *name)
{
	struct mem_vol *m = (struct mem_vol *)vd_vol_new(&mem_ops,
							 sizeof(*m), len,
							 name);

	m->buf = buf;
	m->v.depth = 1;
	snprintf(m->v.label, sizeof(m->v.label), "%s", name);
	if (vd_volset_add(s, &m->v))
		unit_die("vd_volset_add");
	return &m->v;
}

static void set_free(struct vd_volset *s)
{
	vd_lvm_assembler.free_state(s->asm_state[lvm_index()]);
	for (unsigned i = 0; i < s->n; i++)
		vd_vol_free(s->vols[i]);
	free(s->vols);
	free(s->asm_state);
	free(s);
}

static const struct vd_vol *set_find(const struct vd_volset *s,
				     const char *label)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->vols[i]->label, label))
			return s->vols[i];
	return NULL;
}

/* ------------------------------------------------ captured notices */

static char logbuf[65536];
static int log_fd = -1, log_saved = -1;

static void log_begin(void)
{
	fflush(stderr);
	log_fd = memfd_create("log", 0);
	log_saved = dup(2);
	dup2(log_fd, 2);
}

static const char *log_end(void)
{
	ssize_t n;

	fflush(stderr);
	dup2(log_saved, 2);
	close(log_saved);
	n = pread(log_fd, logbuf, sizeof(logbuf) - 1, 0);
	close(log_fd);
	logbuf[n > 0 ? n : 0] = '\0';
	return logbuf;
}

/* Runs the assembler over every volume of s that probes as a PV. */
static int set_assemble(struct vd_volset *s)
{
	struct vd_vol *claimed[64];
	unsigned n = 0;

	for (unsigned i = 0; i < s->n && n < 64; i++)
		if (!strcmp(s->vols[i]->ops->kind, "disk") &&
		    vd_lvm_assembler.probe(s->vols[i]))
			claimed[n++] = s->vols[i];
	return vd_lvm_assembler.assemble(s, claimed, n,
					 &s->asm_state[lvm_index()]);
}

/* ------------------------------------------------ PV images */

#define PV_SIZE (4u << 20)
#define MDA_OFF 4096u
#define MDA_SIZE (60u * 1024)
#define PE_START 128u /* sectors: 64 KiB */
#define EXTENT 128u   /* sectors: 64 KiB */
#define PE_COUNT ((PV_SIZE / 512 - PE_START) / EXTENT)

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

/* PV uuids: 32 characters, shown with hyphens 6-4-4-4-4-4-6. */
static void uuid_of(char tag, char plain[33], char text[40])
{
	for (int i = 0; i < 32; i++)
		plain[i] = (char)(i < 2 ? tag : 'a' + i % 26);
	plain[32] = '\0';
	snprintf(text, 40, "%.6s-%.4s-%.4s-%.4s-%.4s-%.4s-%.6s", plain,
		 plain + 6, plain + 10, plain + 14, plain + 18, plain + 22,
		 plain + 26);
}

/* The label in sector sec and the PV header: one data area at
 * PE_START, metadata areas at MDA_OFF and (two) at the end. */
static void pv_label(uint8_t *b, unsigned sec, char tag, int n_mda)
{
	uint8_t *l = b + sec * 512, *h = l + 32;
	char plain[33], text[40];

	uuid_of(tag, plain, text);
	memset(l, 0, 512);
	memcpy(l, "LABELONE", 8);
	put_le64(l + 8, sec);
	put_le32(l + 20, 32);
	memcpy(l + 24, "LVM2 001", 8);
	memcpy(h, plain, 32);
	put_le64(h + 32, PV_SIZE);
	put_le64(h + 40, PE_START * 512);
	/* data list ends at 56; metadata list from 72 */
	if (n_mda >= 1) {
		put_le64(h + 72, MDA_OFF);
		put_le64(h + 80, MDA_SIZE);
	}
	if (n_mda >= 2) {
		put_le64(h + 88, PV_SIZE - MDA_SIZE);
		put_le64(h + 96, MDA_SIZE);
	}
	put_le32(l + 16, lvm_crc(LVM_INITIAL_CRC, l + 20, 512 - 20));
}

/* The mda_header at off and the committed text at toff (from the
 * area's start), wrapping after the area's end; size counts a NUL. */
static void pv_mda(uint8_t *b, uint64_t off, const char *text, uint64_t toff)
{
	uint8_t *h = b + off;
	size_t len = strlen(text) + 1, first;
	uint32_t crc;

	memset(h, 0, 512);
	memcpy(h + 4, " LVM2 x[5A%r0N*>", 16);
	put_le32(h + 20, 1);
	put_le64(h + 24, off);
	put_le64(h + 32, MDA_SIZE);
	first = VD_MIN(len, MDA_SIZE - toff);
	memcpy(b + off + toff, text, first);
	memcpy(b + off + 512, text + first, len - first);
	crc = lvm_crc(LVM_INITIAL_CRC, text, len);
	put_le64(h + 40, toff);
	put_le64(h + 48, len);
	put_le32(h + 56, crc);
	put_le32(h, lvm_crc(LVM_INITIAL_CRC, h + 4, 508));
}

/* Fills the data area of a PV: byte i of extent e of PV tag is
 * pat(tag, e, i). */
static uint8_t pat(char tag, uint64_t pe, uint64_t i)
{
	return (uint8_t)(tag * 7 + pe * 13 + i / 512 * 3 + i % 251);
}

static uint8_t *pv_new(unsigned sec, char tag, int n_mda, const char *text)
{
	uint8_t *b = calloc(1, PV_SIZE);

	for (uint64_t e = 0; e < PE_COUNT; e++)
		for (uint64_t i = 0; i < EXTENT * 512; i++)
			b[PE_START * 512 + e * EXTENT * 512 + i] = pat(tag, e, i);
	pv_label(b, sec, tag, n_mda);
	if (text && n_mda >= 1)
		pv_mda(b, MDA_OFF, text, 2048);
	if (text && n_mda >= 2)
		pv_mda(b, PV_SIZE - MDA_SIZE, text, 4096);
	return b;
}

/* The text of VG name (uuid tag vgtag), seqno, with PVs pv0 (tag 'A')
 * ... as many as tags, and lvs (the logical_volumes' contents). */
static char *vg_text(const char *name, char vgtag, unsigned seqno,
		     const char *tags, const char *lvs)
{
	size_t cap = 1 << 20, o = 0;
	char *t = malloc(cap), plain[33], id[40];

	uuid_of(vgtag, plain, id);
	o += (size_t)snprintf(t + o, cap - o,
			      "%s {\nid = \"%s\"\nseqno = %u\nformat = \"lvm2\"\n"
			      "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n"
			      "flags = []\nextent_size = %u\nmax_lv = 0\n"
			      "max_pv = 0\nmetadata_copies = 0\n\n"
			      "physical_volumes {\n",
			      name, id, seqno, EXTENT);
	for (unsigned i = 0; tags[i]; i++) {
		uuid_of(tags[i], plain, id);
		o += (size_t)snprintf(t + o, cap - o,
				      "\npv%u {\nid = \"%s\"\n"
				      "device = \"/dev/loop%u\"\t# Hint only\n\n"
				      "status = [\"ALLOCATABLE\"]\nflags = []\n"
				      "dev_size = %u\npe_start = %u\n"
				      "pe_count = %u\n}\n",
				      i, id, i, PV_SIZE / 512, PE_START,
				      (unsigned)PE_COUNT);
	}
	o += (size_t)snprintf(t + o, cap - o,
			      "}\n\nlogical_volumes {\n%s\n}\n\n}\n"
			      "# Generated by LVM2 version 2.03.16(2)\n\n"
			      "contents = \"Text Format Volume Group\"\n"
			      "version = 1\n\ndescription = \"lvcreate \\\"x\\\"\"\n\n"
			      "creation_host = \"vm\"\t# Linux vm\n"
			      "creation_time = 1796609310\t# Mon Dec  7\n",
			      lvs);
	return t;
}

/* An LV section: name, status, then segments text. */
static char *lv_sec(char *out, size_t cap, const char *name, bool visible,
		    const char *segs)
{
	snprintf(out, cap,
		 "\n%s {\nid = \"VeI0gz-Wjt3-ugW0-vS60-grcr-DeJ8-LcNcmQ\"\n"
		 "status = [\"READ\", \"WRITE\"%s]\nflags = []\n"
		 "creation_time = 1796609309\ncreation_host = \"vm\"\n"
		 "%s}\n",
		 name, visible ? ", \"VISIBLE\"" : "", segs);
	return out;
}

/* A linear segment: number, start, count, on pvN at pe. */
static char *seg_lin(char *out, size_t cap, unsigned num, unsigned start,
		     unsigned count, const char *pv, unsigned pe)
{
	snprintf(out, cap,
		 "segment%u {\nstart_extent = %u\nextent_count = %u\n\n"
		 "type = \"striped\"\nstripe_count = 1\t# linear\n\n"
		 "stripes = [\n\"%s\", %u\n]\n}\n",
		 num, start, count, pv, pe);
	return out;
}

/* ------------------------------------------------ expected bytes */

struct ref_seg {
	unsigned start, count; /* extents of the LV */
	unsigned n, ss;	       /* stripes, stripe size (sectors) */
	struct {
		char tag;    /* the PV */
		unsigned pe; /* its first extent */
	} a[4];
};

/* The byte at off of an LV made of segs, by the book: dm-linear and
 * dm-stripe's arithmetic written out plainly. */
static uint8_t ref_byte(const struct ref_seg *segs, unsigned n, uint64_t off)
{
	const uint64_t es = EXTENT * 512;

	for (unsigned k = 0; k < n; k++) {
		const struct ref_seg *s = &segs[k];
		uint64_t rel, at, stripe;

		if (off < s->start * es || off >= (s->start + s->count) * es)
			continue;
		rel = off - s->start * es;
		if (s->n <= 1) {
			stripe = 0;
			at = rel;
		} else {
			uint64_t ss = s->ss * 512, chunk = rel / ss;

			stripe = chunk % s->n;
			at = chunk / s->n * ss + rel % ss;
		}
		return pat(s->a[stripe].tag, s->a[stripe].pe + at / es,
			   at % es);
	}
	abort();
}

/* Reads the whole volume labelled label (in pieces of odd sizes) and
 * compares it with segs. */
static bool lv_matches(const struct vd_volset *s, const char *label,
		       const struct ref_seg *segs, unsigned n)
{
	const struct vd_vol *v = set_find(s, label);
	uint64_t len = 0, off = 0;
	uint8_t *b;
	bool ok = true;

	for (unsigned k = 0; k < n; k++)
		len = VD_MAX(len, (uint64_t)(segs[k].start + segs[k].count) *
					  EXTENT * 512);
	if (!v || v->len != len) {
		printf("  %s: %s (len %llu, want %llu)\n", label,
		       v ? "wrong size" : "no such volume",
		       v ? (unsigned long long)v->len : 0ULL,
		       (unsigned long long)len);
		return false;
	}
	b = malloc(len);
	/* Ends: off grows by at least 1 each step. */
	for (unsigned step = 1; off < len; step++) {
		size_t piece = (size_t)VD_MIN(len - off, 4096u * step + 333);

		if (vd_vol_read(v, b + off, piece, off) < 0) {
			ok = false;
			break;
		}
		off += piece;
	}
	for (uint64_t i = 0; ok && i < len; i++)
		if (b[i] != ref_byte(segs, n, i)) {
			printf("  %s: byte %llu is %u, want %u\n", label,
			       (unsigned long long)i, b[i],
			       ref_byte(segs, n, i));
			ok = false;
		}
	free(b);
	return ok;
}

/* ------------------------------------------------ label and areas */

struct buf_ctx {
	const uint8_t *b;
	size_t n;
};

static int buf_rd(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct buf_ctx *c = ctx;

	if (!vd_range_ok(off, len, c->n))
		return -EIO;
	memcpy(buf, c->b + off, len);
	return 0;
}

static void fix_label(uint8_t *b, unsigned sec)
{
	put_le32(b + sec * 512 + 16,
		 lvm_crc(LVM_INITIAL_CRC, b + sec * 512 + 20, 492));
}

static void fix_mda(uint8_t *b, uint64_t off)
{
	put_le32(b + off, lvm_crc(LVM_INITIAL_CRC, b + off + 4, 508));
}

static void test_label(void)
{
	static const char text[] = "vg { id = \"x\" }";
	struct lvm_pv_label l;
	struct vd_err e = { "" };
	struct buf_ctx c = { NULL, PV_SIZE };
	char name[64], *t;
	size_t tl;
	int ret;

	for (unsigned sec = 0; sec < 4; sec++) {
		uint8_t *b = pv_new(sec, 'A', 2, text);

		c.b = b;
		snprintf(name, sizeof(name), "label in sector %u", sec);
		ret = lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e);
		CHECK(name, ret == 0 && l.sector == sec && l.n_mda == 2 &&
				    l.data_off == PE_START * 512 &&
				    l.dev_size == PV_SIZE &&
				    l.mda[0].off == MDA_OFF &&
				    l.mda[1].off == PV_SIZE - MDA_SIZE &&
				    !strncmp(l.uuid, "AAcdef", 6));
		CHECK(name, lvm_label_find(b, 2048) == (int)sec);
		b[sec * 512 + 40] ^= 1;
		CHECK("label with a bad CRC is no label",
		      lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e) == -ENOENT);
		free(b);
	}
	uint8_t *b = pv_new(1, 'A', 1, text);

	c.b = b;
	/* sector_xl (offset 8) is outside the CRC: a label copied to
	 * another sector is no label there. */
	put_le64(b + 512 + 8, 2);
	CHECK("label naming another sector",
	      lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e) == -ENOENT);
	put_le64(b + 512 + 8, 1);
	put_le32(b + 512 + 20, 500);
	fix_label(b, 1);
	ret = lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e);
	CHECK("PV header offset outside the sector", ret == -EUCLEAN);
	CHECK_MSG("PV header offset outside the sector", e.msg,
		  "PV header offset 500 lies outside the sector");
	put_le32(b + 512 + 20, 32);
	for (unsigned o = 32 + 40; o + 16 <= 512; o += 16) {
		put_le64(b + 512 + o, 4096);
		put_le64(b + 512 + o + 8, 4096);
	}
	fix_label(b, 1);
	ret = lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e);
	CHECK("area list without its end", ret == -EUCLEAN);
	CHECK_MSG("area list without its end", e.msg,
		  "the data area list runs past the label sector");
	free(b);
	CHECK("a volume of 100 bytes",
	      lvm_label_read(buf_rd, &c, 100, &l, &e) == -ENOENT);

	/* Metadata areas. */
	static const struct {
		const char *name;
		uint64_t at;	/* byte poked in the area (from its start) */
		uint64_t toff;	/* where the text starts */
		int ret;
		const char *msg;
	} mt[] = {
		{ "metadata text", 0, 2048, 0, "" },
		{ "metadata text that wraps", 0, MDA_SIZE - 7, 0, "" },
		{ "metadata text that wraps at its NUL", 0,
		  MDA_SIZE - sizeof(text) + 1, 0, "" },
		{ "metadata text CRC", 2050, 2048, -EUCLEAN,
		  "metadata area 1: text CRC is 0x" },
		{ "wrapped text CRC", 514, MDA_SIZE - 7, -EUCLEAN,
		  "text CRC is" },
		{ "mda_header CRC", 300, 2048, -EUCLEAN,
		  "metadata area 1: header CRC is 0x" },
		{ "mda_header magic", 5, 2048, -EUCLEAN,
		  "has no mda_header magic" },
	};
	for (size_t i = 0; i < VD_ARRAY_SIZE(mt); i++) {
		b = pv_new(1, 'A', 1, NULL);
		pv_mda(b, MDA_OFF, text, mt[i].toff);
		if (mt[i].at)
			b[MDA_OFF + mt[i].at] ^= 0x20;
		c.b = b;
		e.msg[0] = '\0';
		lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e);
		ret = lvm_mda_read(buf_rd, &c, PV_SIZE, &l, 0, &t, &tl, &e);
		CHECK(mt[i].name, ret == mt[i].ret);
		if (!ret)
			CHECK(mt[i].name, tl == strlen(text) && !strcmp(t, text));
		else
			CHECK_MSG(mt[i].name, e.msg, mt[i].msg);
		free(t);
		free(b);
	}
	/* raw_locn fields: size past the area, ignored, empty. */
	b = pv_new(1, 'A', 1, text);
	c.b = b;
	lvm_label_read(buf_rd, &c, PV_SIZE, &l, &e);
	put_le64(b + MDA_OFF + 48, MDA_SIZE);
	fix_mda(b, MDA_OFF);
	ret = lvm_mda_read(buf_rd, &c, PV_SIZE, &l, 0, &t, &tl, &e);
	CHECK("text larger than its area", ret == -EUCLEAN);
	CHECK_MSG("text larger than its area", e.msg, "does not fit the area");
	put_le64(b + MDA_OFF + 48, sizeof(text));
	put_le32(b + MDA_OFF + 60, 1);
	fix_mda(b, MDA_OFF);
	CHECK("ignored metadata area",
	      lvm_mda_read(buf_rd, &c, PV_SIZE, &l, 0, &t, &tl, &e) == -ENOENT);
	put_le64(b + MDA_OFF + 24, MDA_OFF + 512);
	put_le32(b + MDA_OFF + 60, 0);
	fix_mda(b, MDA_OFF);
	ret = lvm_mda_read(buf_rd, &c, PV_SIZE, &l, 0, &t, &tl, &e);
	CHECK("mda_header start", ret == -EUCLEAN);
	CHECK_MSG("mda_header start", e.msg, "start 4608 (expected 1, 4096)");
	l.mda[0].off = PV_SIZE - 1024;
	ret = lvm_mda_read(buf_rd, &c, PV_SIZE, &l, 0, &t, &tl, &e);
	CHECK_MSG("metadata area past the device", e.msg,
		  "lies outside the device");
	free(b);
}

/* ------------------------------------------------ the parser */

static char *repeat(const char *head, const char *unit, unsigned n,
		    const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *t = malloc(hl + ul * n + tl + 1), *p = t;

	memcpy(p, head, hl);
	p += hl;
	for (unsigned i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return t;
}

static void test_parser(void)
{
	static const char good[] =
		"# a comment\nvg0 {\n\tid = \"a\\\"b\\\\c\" # after\n"
		"\tn = -42\n\tf = 1.50\n\tl = [\"x\", 7, \"y\",]\n"
		"\tempty = []\n\tsub { deeper { k = 1 } }\n}\n"
		"contents = \"Text Format Volume Group\"\n";
	struct lvm_cfg c;
	struct vd_err e = { "" };
	const struct lvm_cfg_node *vg, *n;
	int ret;

	ret = lvm_cfg_parse(good, strlen(good), &c, &e);
	CHECK("parse a good text", ret == 0);
	if (!ret) {
		vg = lvm_cfg_get(&c, NULL, "vg0");
		CHECK("section", vg && vg->type == LVM_CFG_SECTION);
		n = lvm_cfg_get(&c, vg, "id");
		CHECK("string with escapes",
		      n && n->type == LVM_CFG_STR && !strcmp(n->s, "a\"b\\c"));
		n = lvm_cfg_get(&c, vg, "n");
		CHECK("negative integer",
		      n && n->type == LVM_CFG_INT && n->i == -42);
		n = lvm_cfg_get(&c, vg, "f");
		CHECK("float", n && n->type == LVM_CFG_FLOAT);
		n = lvm_cfg_get(&c, vg, "l");
		CHECK("list", n && n->type == LVM_CFG_LIST && n->child &&
				      !strcmp(c.node[n->child].s, "x") &&
				      c.node[c.node[n->child].next].i == 7);
		n = lvm_cfg_get(&c, vg, "empty");
		CHECK("empty list", n && n->type == LVM_CFG_LIST && !n->child);
		n = lvm_cfg_get(&c, lvm_cfg_get(&c, vg, "sub"), "deeper");
		CHECK("nested", n && lvm_cfg_get(&c, n, "k") &&
					lvm_cfg_get(&c, n, "k")->i == 1);
		CHECK("top-level key", lvm_cfg_get(&c, NULL, "contents"));
		CHECK("absent key", !lvm_cfg_get(&c, vg, "nope"));
		lvm_cfg_free(&c);
	}

	char *long_line = repeat("a = 1 #", "x", LVM_CFG_MAX_LINE, "\n");
	char *deep16 = repeat("", "a{", 16, "}}}}}}}}}}}}}}}}");
	char *deep17 = repeat("", "a{", 17, "}}}}}}}}}}}}}}}}}");
	char *many = repeat("l = [", "1,\n", LVM_CFG_MAX_NODES, "]");
	char *fits = repeat("l = [", "1,\n", LVM_CFG_MAX_NODES - 2, "]");
	static const char nul[] = "a = 1\nb = \"x\0y\"\n";
	const struct {
		const char *name, *text;
		size_t len; /* 0: strlen */
		int ret;
		const char *msg;
	} t[] = {
		{ "line too long", long_line, 0, -EUCLEAN,
		  "line 1 is longer than 65536 bytes" },
		{ "16 sections deep", deep16, 0, 0, "" },
		{ "17 sections deep", deep17, 0, -EUCLEAN,
		  "line 1: sections nested deeper than 16" },
		{ "too many values", many, 0, -EUCLEAN,
		  "more keys and values than the parser's limit" },
		{ "as many values as allowed", fits, 0, 0, "" },
		{ "NUL byte", nul, sizeof(nul) - 1, -EUCLEAN,
		  "line 2 holds a NUL byte" },
		{ "string not closed", "a = \"abc\n\n", 0, -EUCLEAN,
		  "line 3: a string is not closed" },
		{ "stray brace", "a = 1\n}\n", 0, -EUCLEAN,
		  "line 2: '}' without a section" },
		{ "section not closed", "a {\nb = 1\n", 0, -EUCLEAN,
		  "a section is not closed" },
		{ "value missing", "a = ", 0, -EUCLEAN,
		  "a value is missing at the end" },
		{ "integer too large", "a = 9223372036854775808", 0, -EUCLEAN,
		  "an integer out of range" },
		{ "largest integer", "a = 9223372036854775807", 0, 0, "" },
		{ "key without =", "a b", 0, -EUCLEAN,
		  "expected '=' or '{' after a name" },
		{ "list without comma", "a = [1 2]", 0, -EUCLEAN,
		  "expected ',' or ']' in a list" },
		{ "nested list", "a = [[1]]", 0, -EUCLEAN,
		  "expected a string, a number or a list" },
		{ "list not closed", "a = [1,", 0, -EUCLEAN,
		  "a list is not closed" },
		{ "bare word", "a = word", 0, -EUCLEAN,
		  "expected a string, a number or a list" },
		{ "lone minus", "a = -", 0, -EUCLEAN, "a '-' without digits" },
		{ "bad name", "@ = 1", 0, -EUCLEAN, "expected a name" },
		{ "text too long", "", LVM_TEXT_MAX + 1, -EUCLEAN,
		  "bytes of text (at most 8388608)" },
		{ "empty text", "", 0, 0, "" },
	};
	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].text);

		e.msg[0] = '\0';
		ret = lvm_cfg_parse(t[i].text, len, &c, &e);
		CHECK(t[i].name, ret == t[i].ret);
		if (ret < 0)
			CHECK_MSG(t[i].name, e.msg, t[i].msg);
		else
			lvm_cfg_free(&c);
	}
	free(long_line);
	free(deep16);
	free(deep17);
	free(many);
	free(fits);
}

/* ------------------------------------------------ the VG model */

static void test_model(void)
{
	char segs[512], lvs[2048], *text;
	struct lvm_vg *vg;
	struct vd_err e = { "" };
	int ret;

	seg_lin(segs, sizeof(segs), 1, 0, 2, "pv0", 4);
	lv_sec(lvs, sizeof(lvs), "lv-a", true, segs);
	text = vg_text("my-vg", 'V', 7, "AB", lvs);
	ret = lvm_vg_parse(text, strlen(text), &vg, &e);
	CHECK("VG parse", ret == 0);
	if (!ret) {
		CHECK("VG fields", !strcmp(vg->name, "my-vg") &&
					   vg->seqno == 7 &&
					   vg->extent_size == EXTENT &&
					   vg->n_pv == 2 && vg->n_lv == 1 &&
					   !strncmp(vg->uuid, "VVcdef", 6));
		CHECK("PV fields", vg->pv[1].pe_start == PE_START &&
					   vg->pv[1].pe_count == PE_COUNT &&
					   !strncmp(vg->pv[1].uuid, "BBcd", 4));
		CHECK("LV fields",
		      !strcmp(vg->lv[0].name, "lv-a") && !vg->lv[0].bad[0] &&
			      vg->lv[0].status ==
				      (LVM_LV_READ | LVM_LV_WRITE |
				       LVM_LV_VISIBLE) &&
			      vg->lv[0].n_seg == 1 && vg->lv[0].extents == 2 &&
			      vg->lv[0].seg[0].area[0].pv == 0 &&
			      vg->lv[0].seg[0].area[0].start == 4);
		lvm_vg_free(vg);
	}
	free(text);

	static const struct {
		const char *name, *text, *msg;
	} bad[] = {
		{ "no VG", "contents = \"x\"\n", "no volume group section" },
		{ "VG without id", "vg { seqno = 1 extent_size = 8 }",
		  "VG vg: no valid id, seqno or extent_size" },
		{ "VG with a bad id",
		  "vg { id = \"short\" seqno = 1 extent_size = 8 }",
		  "no valid id" },
		{ "extent size 0",
		  "vg { id = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\" "
		  "seqno = 1 extent_size = 0 }",
		  "extent_size 0 sectors" },
		{ "no PVs",
		  "vg { id = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\" "
		  "seqno = 1 extent_size = 8 }",
		  "no physical_volumes section" },
		{ "PV without pe_count",
		  "vg { id = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\" "
		  "seqno = 1 extent_size = 8 physical_volumes { pv0 { "
		  "id = \"abcdef-ghij-klmn-opqr-stuv-wxyz-012345\" "
		  "pe_start = 8 } } }",
		  "PV pv0 lacks a valid id, pe_start or pe_count" },
	};
	for (size_t i = 0; i < VD_ARRAY_SIZE(bad); i++) {
		e.msg[0] = '\0';
		ret = lvm_vg_parse(bad[i].text, strlen(bad[i].text), &vg, &e);
		CHECK(bad[i].name, ret == -EUCLEAN && !vg);
		CHECK_MSG(bad[i].name, e.msg, bad[i].msg);
	}
}

/* ------------------------------------------------ the assembler */

/* A set holding PVs of the tags in present, each with the text of VG
 * name over the PVs tags and lvs; assembled, its notices in *log. */
static struct vd_volset *scene(const char *name, const char *tags,
			       const char *present, const char *lvs,
			       const char **log)
{
	struct vd_volset *s = set_new();
	char *text = vg_text(name, 'V', 3, tags, lvs), pvname[32];
	int ret;

	for (unsigned i = 0; present[i]; i++) {
		snprintf(pvname, sizeof(pvname), "p%c", present[i]);
		set_add_mem(s, pv_new(1, present[i], 1, text), PV_SIZE,
			    pvname);
	}
	free(text);
	log_begin();
	ret = set_assemble(s);
	*log = log_end();
	CHECK("assemble", ret == 0);
	return s;
}

/* The info of LV name in the first VG. */
static const struct vd_lvm_lv *info_lv(const struct vd_volset *s,
				       unsigned vg, const char *name)
{
	const struct vd_lvm_info *in = vd_lvm_info(s);

	if (!in || vg >= in->n_vg)
		return NULL;
	for (uint32_t i = 0; i < in->vg[vg]->n_lv; i++)
		if (!strcmp(in->vg[vg]->lv[i].name, name))
			return &in->vg[vg]->lv[i];
	return NULL;
}

static void test_linear_striped(void)
{
	char lvs[8192], a[512], b[512], sec[2048];
	const char *log;
	struct vd_volset *s;
	size_t o = 0;

	/* lv-a: two segments, the second first on the PV; b on pv1;
	 * st2: 2 stripes of 16 KiB; st3: 3 stripes of 64 KiB over
	 * three PVs; z: a zero segment. */
	seg_lin(a, sizeof(a), 1, 0, 2, "pv0", 10);
	seg_lin(b, sizeof(b), 2, 2, 3, "pv0", 1);
	snprintf(sec, sizeof(sec), "%s%s", a, b);
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "lv-a", true, sec));
	seg_lin(a, sizeof(a), 1, 0, 4, "pv1", 0);
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "b", true, a));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "st2", true,
			   "segment1 {\nstart_extent = 0\nextent_count = 4\n"
			   "type = \"striped\"\nstripe_count = 2\n"
			   "stripe_size = 32\nstripes = [\n\"pv0\", 20,\n"
			   "\"pv1\", 30\n]\n}\n"));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "st3", true,
			   "segment1 {\nstart_extent = 0\nextent_count = 6\n"
			   "type = \"striped\"\nstripe_count = 3\n"
			   "stripe_size = 128\nstripes = [\n\"pv0\", 40,\n"
			   "\"pv1\", 40,\n\"pv2\", 2\n]\n}\n"
			   "segment2 {\nstart_extent = 6\nextent_count = 1\n"
			   "type = \"striped\"\nstripe_count = 1\n"
			   "stripes = [\n\"pv2\", 0\n]\n}\n"));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "z", true,
			   "segment1 {\nstart_extent = 0\nextent_count = 2\n"
			   "type = \"zero\"\n}\n"));
	s = scene("my-vg", "ABC", "ABC", lvs, &log);
	CHECK("no notices for a good VG", !log[0]);
	if (log[0])
		printf("  log: %s", log);
	static const struct ref_seg lva[] = {
		{ 0, 2, 1, 0, { { 'A', 10 } } },
		{ 2, 3, 1, 0, { { 'A', 1 } } },
	};
	static const struct ref_seg lb[] = { { 0, 4, 1, 0, { { 'B', 0 } } } };
	static const struct ref_seg st2[] = {
		{ 0, 4, 2, 32, { { 'A', 20 }, { 'B', 30 } } },
	};
	static const struct ref_seg st3[] = {
		{ 0, 6, 3, 128, { { 'A', 40 }, { 'B', 40 }, { 'C', 2 } } },
		{ 6, 1, 1, 0, { { 'C', 0 } } },
	};
	CHECK("linear, two segments out of order",
	      lv_matches(s, "my--vg-lv--a", lva, 2));
	CHECK("linear on the second PV", lv_matches(s, "my--vg-b", lb, 1));
	CHECK("striped 2 ways, 16 KiB", lv_matches(s, "my--vg-st2", st2, 1));
	CHECK("striped 3 ways then linear",
	      lv_matches(s, "my--vg-st3", st3, 2));
	const struct vd_vol *z = set_find(s, "my--vg-z");
	uint8_t buf[1000];

	memset(buf, 1, sizeof(buf));
	CHECK("zero segment", z && z->len == 2 * EXTENT * 512 &&
				      !vd_vol_read(z, buf, sizeof(buf), 5000) &&
				      all_bytes(buf, sizeof(buf), 0));
	const struct vd_vol *v = set_find(s, "my--vg-lv--a");

	CHECK("volume fields", v && !v->hidden && v->depth == 2 &&
				       !strcmp(v->name, "t.img my--vg-lv--a") &&
				       !strcmp(v->ops->kind, "lvm"));
	CHECK("read past the end", v && vd_vol_read(v, buf, 2, v->len - 1));
	const struct vd_lvm_info *in = vd_lvm_info(s);

	CHECK("info", in && in->n_vg == 1 && in->vg[0]->n_pv == 3 &&
			      in->vg[0]->n_missing == 0 &&
			      in->vg[0]->n_lv == 5 &&
			      in->vg[0]->extent_size == EXTENT * 512 &&
			      in->vg[0]->seqno == 3 &&
			      !strcmp(in->vg[0]->name, "my-vg") &&
			      in->vg[0]->pv[2].vol == s->vols[2]);
	const struct vd_lvm_lv *li = info_lv(s, 0, "st3");

	CHECK("LV info", li && li->shown && li->vol &&
				 li->size == 7 * EXTENT * 512 &&
				 li->n_seg == 2 && li->seg[0].stripes == 3 &&
				 li->seg[0].stripe_size == 65536 &&
				 !strcmp(li->seg[0].type, "striped") &&
				 !strcmp(li->dm_name, "my--vg-st3"));

	/* A later round with the same PVs and one more VG's PV adds
	 * only the new VG's volumes. */
	unsigned before = s->n;
	char *text = vg_text("other", 'W', 1, "D",
			     lv_sec(sec, sizeof(sec), "x", true,
				    seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 0)));

	set_add_mem(s, pv_new(3, 'D', 1, text), PV_SIZE, "pD");
	free(text);
	log_begin();
	CHECK("second round", set_assemble(s) == 0);
	log_end();
	CHECK("second round adds only the new VG",
	      s->n == before + 2 && set_find(s, "other-x") &&
		      vd_lvm_info(s)->n_vg == 2);
	set_free(s);
}

/* raid1 r1 (2 extents) on legs pv0@31 and pv1@31 with rmeta at @30;
 * rebuild0 marks leg 0 as being rebuilt. */
static char *raid_lvs(char *lvs, size_t cap, bool rebuild0)
{
	char a[512], t[1024];
	size_t o = 0;

	o += strlen(lv_sec(lvs + o, cap - o, "r1", true,
			   "segment1 {\nstart_extent = 0\nextent_count = 2\n"
			   "type = \"raid1\"\ndevice_count = 2\n"
			   "region_size = 1024\nraids = [\n"
			   "\"r1_rmeta_0\", \"r1_rimage_0\",\n"
			   "\"r1_rmeta_1\", \"r1_rimage_1\"\n]\n}\n"));
	for (int k = 0; k < 2; k++) {
		char n[32];

		snprintf(n, sizeof(n), "r1_rmeta_%d", k);
		seg_lin(a, sizeof(a), 1, 0, 1, k ? "pv1" : "pv0", 30);
		o += strlen(lv_sec(lvs + o, cap - o, n, false, a));
		snprintf(n, sizeof(n), "r1_rimage_%d", k);
		seg_lin(a, sizeof(a), 1, 0, 2, k ? "pv1" : "pv0", 31);
		lv_sec(t, sizeof(t), n, false, a);
		if (k == 0 && rebuild0) {
			char *p = strstr(t, "\"WRITE\"");

			memmove(p + 18, p + 7, strlen(p + 7) + 1);
			memcpy(p + 7, ", \"REBUILD\"", 11);
		}
		o += strlen(strcpy(lvs + o, t));
	}
	return lvs;
}

static void test_legs(void)
{
	static const struct ref_seg leg0[] = { { 0, 2, 1, 0, { { 'A', 31 } } } };
	static const struct ref_seg leg1[] = { { 0, 2, 1, 0, { { 'B', 31 } } } };
	char lvs[8192];
	const char *log;
	struct vd_volset *s;

	s = scene("vg", "AB", "AB", raid_lvs(lvs, sizeof(lvs), false), &log);
	CHECK("raid1 reads leg 0", lv_matches(s, "vg-r1", leg0, 1));
	const struct vd_vol *img = set_find(s, "vg-r1_rimage_0");

	CHECK("raid1 images are hidden volumes", img && img->hidden);
	CHECK("raid1 LV is shown", info_lv(s, 0, "r1") &&
					   info_lv(s, 0, "r1")->shown &&
					   !info_lv(s, 0, "r1_rmeta_1")->shown &&
					   info_lv(s, 0, "r1_rmeta_1")->sub);
	/* dm-raid's superblock on leg 0's rmeta: leg 0 failed. */
	struct mem_vol *pa = (struct mem_vol *)s->vols[0];
	uint8_t *sb = pa->buf + PE_START * 512 + 30 * EXTENT * 512;

	set_free(s);
	s = scene("vg", "AB", "AB", raid_lvs(lvs, sizeof(lvs), true), &log);
	CHECK("raid1 skips a leg being rebuilt",
	      lv_matches(s, "vg-r1", leg1, 1));
	set_free(s);

	/* Leg 0's superblock says it failed; then that it is recovering. */
	for (int k = 0; k < 2; k++) {
		char *text = vg_text("vg", 'V', 3, "AB",
				     raid_lvs(lvs, sizeof(lvs), false));
		uint8_t *a = pv_new(1, 'A', 1, text);

		s = set_new();
		sb = a + PE_START * 512 + 30 * EXTENT * 512;
		memset(sb, 0, 64);
		put_le32(sb, 0x64526d44);
		put_le32(sb + 12, 0);
		put_le64(sb + 24, k ? 0 : 1);
		put_le64(sb + 32, k ? 12345 : UINT64_MAX);
		set_add_mem(s, a, PV_SIZE, "pA");
		set_add_mem(s, pv_new(1, 'B', 1, text), PV_SIZE, "pB");
		free(text);
		log_begin();
		set_assemble(s);
		log_end();
		CHECK(k ? "raid1 skips a recovering leg" :
			  "raid1 skips a failed leg",
		      lv_matches(s, "vg-r1", leg1, 1));
		set_free(s);
	}

	/* Leg 0 on a missing PV: leg 1, and no notice for r1 itself. */
	s = scene("vg", "AB", "B", raid_lvs(lvs, sizeof(lvs), false), &log);
	CHECK("raid1 with a leg missing", lv_matches(s, "vg-r1", leg1, 1));
	CHECK_MSG("raid1 with a leg missing", log, "is missing");
	set_free(s);

	/* An old mirror: legs as LVs, a log LV. */
	char a[512];
	size_t o = 0;

	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "m", true,
			   "segment1 {\nstart_extent = 0\nextent_count = 2\n"
			   "type = \"mirror\"\nmirror_count = 2\n"
			   "mirror_log = \"m_mlog\"\nregion_size = 1024\n"
			   "mirrors = [\n\"m_mimage_0\", 0,\n\"m_mimage_1\", 0\n]\n}\n"));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "m_mlog", false,
			   seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 5)));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "m_mimage_0", false,
			   seg_lin(a, sizeof(a), 1, 0, 2, "pv0", 31)));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "m_mimage_1", false,
			   seg_lin(a, sizeof(a), 1, 0, 2, "pv1", 31)));
	s = scene("vg", "AB", "AB", lvs, &log);
	CHECK("mirror reads leg 0", lv_matches(s, "vg-m", leg0, 1));
	CHECK("mirror log hidden", set_find(s, "vg-m_mlog") &&
					   set_find(s, "vg-m_mlog")->hidden);
	set_free(s);
	/* pvmove: the moved LV's segment is on pvmove0, whose legs are
	 * the source and the destination PVs. */
	o = 0;
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "pvmove0", false,
			   "segment1 {\nstart_extent = 0\nextent_count = 2\n"
			   "type = \"mirror\"\nmirror_count = 2\n"
			   "extents_moved = 0\nmirrors = [\n\"pv0\", 31,\n"
			   "\"pv1\", 7\n]\n}\n"));
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "moving", true,
			   seg_lin(a, sizeof(a), 1, 0, 2, "pvmove0", 0)));
	s = scene("vg", "AB", "AB", lvs, &log);
	CHECK("an LV being moved reads its source",
	      lv_matches(s, "vg-moving", leg0, 1));
	set_free(s);
}

/* Each refusal: the LV is not shown, with the notice; the good LV
 * beside it still is. */
static void test_refusals(void)
{
	static const struct {
		const char *name, *segs, *notice;
	} t[] = {
		{ "extents past the PV's last extent",
		  "segment1 {\nstart_extent = 0\nextent_count = 10\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 60]\n}\n",
		  "LV bad is not shown: extents 60+10 lie past the last "
		  "extent of PV AAcdef-" },
		{ "segments overlap",
		  "segment1 {\nstart_extent = 0\nextent_count = 3\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 1]\n}\n"
		  "segment2 {\nstart_extent = 2\nextent_count = 2\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 9]\n}\n",
		  "LV bad is not shown: segments overlap at extent 2 "
		  "(expected 3, 2 extents)" },
		{ "a gap between segments",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 1]\n}\n"
		  "segment2 {\nstart_extent = 3\nextent_count = 2\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 9]\n}\n",
		  "a gap at extent 3 (expected 1, 2 extents)" },
		{ "stripe count 0",
		  "segment1 {\nstart_extent = 0\nextent_count = 2\n"
		  "type = \"striped\"\nstripe_count = 0\nstripe_size = 8\n"
		  "stripes = []\n}\n",
		  "striped segment with 0 stripes (1 to 128)" },
		{ "stripe count absurd",
		  "segment1 {\nstart_extent = 0\nextent_count = 200\n"
		  "type = \"striped\"\nstripe_count = 4000000000\n"
		  "stripe_size = 8\nstripes = [\"pv0\", 0]\n}\n",
		  "striped segment with 4000000000 stripes" },
		{ "stripe list shorter than its count",
		  "segment1 {\nstart_extent = 0\nextent_count = 2\n"
		  "type = \"striped\"\nstripe_count = 2\nstripe_size = 8\n"
		  "stripes = [\"pv0\", 0]\n}\n",
		  "'stripes' lists 2 entries, not 4" },
		{ "stripe size 0",
		  "segment1 {\nstart_extent = 0\nextent_count = 2\n"
		  "type = \"striped\"\nstripe_count = 2\nstripe_size = 0\n"
		  "stripes = [\"pv0\", 0, \"pv0\", 9]\n}\n",
		  "stripe size 0 sectors does not divide a stripe" },
		{ "stripes not dividing the extents",
		  "segment1 {\nstart_extent = 0\nextent_count = 3\n"
		  "type = \"striped\"\nstripe_count = 2\nstripe_size = 8\n"
		  "stripes = [\"pv0\", 0, \"pv0\", 9]\n}\n",
		  "3 extents do not divide into 2 stripes" },
		{ "an LV that refers to itself",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"bad\", 0]\n}\n",
		  "LV bad is not shown: it refers to itself" },
		{ "LVs in a loop",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"loop2\", 0]\n}\n",
		  "LV bad is not shown: it refers to LVs in a loop" },
		{ "a size that overflows",
		  "segment1 {\nstart_extent = 0\n"
		  "extent_count = 4611686018427387904\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"pv0\", 0]\n}\n",
		  "its size (4611686018427387904 extents of 65536 bytes) "
		  "overflows" },
		{ "raid5",
		  "segment1 {\nstart_extent = 0\nextent_count = 2\n"
		  "type = \"raid5\"\ndevice_count = 3\n"
		  "raids = [\"a\", \"b\", \"c\"]\n}\n",
		  "LV bad is not shown: segment type raid5 is not supported" },
		{ "cache",
		  "segment1 {\nstart_extent = 0\nextent_count = 2\n"
		  "type = \"cache\"\ncache_pool = \"cp\"\norigin = \"o\"\n}\n",
		  "segment type cache is not supported" },
		{ "an unknown LV",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n"
		  "type = \"striped\"\nstripe_count = 1\n"
		  "stripes = [\"nosuch\", 0]\n}\n",
		  "area 'nosuch' is not an LV of the VG" },
		{ "a segment without a type",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n}\n",
		  "segment segment1 lacks start_extent, extent_count or type" },
		{ "no segments", "", "LV bad is not shown: no segments" },
		{ "thin LV on a plain LV",
		  "segment1 {\nstart_extent = 0\nextent_count = 1\n"
		  "type = \"thin\"\nthin_pool = \"ok\"\ntransaction_id = 0\n"
		  "device_id = 1\n}\n",
		  "its thin_pool ok is not a thin pool" },
	};
	static const struct ref_seg ok[] = { { 0, 2, 1, 0, { { 'A', 50 } } } };

	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		char lvs[8192], a[512];
		const char *log;
		struct vd_volset *s;
		size_t o = 0;

		o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "ok", true,
				   seg_lin(a, sizeof(a), 1, 0, 2, "pv0", 50)));
		o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "bad", true,
				   t[i].segs));
		o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "loop2", false,
				   "segment1 {\nstart_extent = 0\n"
				   "extent_count = 1\ntype = \"striped\"\n"
				   "stripe_count = 1\n"
				   "stripes = [\"bad\", 0]\n}\n"));
		s = scene("vg", "A", "A", lvs, &log);
		CHECK(t[i].name, !set_find(s, "vg-bad") &&
					 info_lv(s, 0, "bad") &&
					 !info_lv(s, 0, "bad")->shown);
		CHECK_MSG(t[i].name, log, t[i].notice);
		CHECK(t[i].name, lv_matches(s, "vg-ok", ok, 1));
		CHECK(t[i].name, strstr(log, "t.img: LVM: VG vg: LV bad is "
					     "not shown: ") &&
					 !strchr(strchr(log, '\n') + 1, '\n'));
		set_free(s);
	}

	/* A PV shorter than its extents say. */
	char lvs[4096], a[512];
	const char *log;
	char *text;
	struct vd_volset *s = set_new();

	lv_sec(lvs, sizeof(lvs), "tail", true,
	       seg_lin(a, sizeof(a), 1, 0, 2, "pv0", 40));
	text = vg_text("vg", 'V', 3, "A", lvs);
	set_add_mem(s, pv_new(1, 'A', 1, text), PV_SIZE / 2, "pA");
	free(text);
	log_begin();
	set_assemble(s);
	log = log_end();
	CHECK("extents past the PV's end", !set_find(s, "vg-tail"));
	CHECK_MSG("extents past the PV's end", log,
		  "extents 40+2 lie past the end of PV AAcdef-ghij-klmn-"
		  "opqr-stuv-wxyz-abcdef (2097152 bytes)");
	set_free(s);
}

static void test_vgs(void)
{
	char lvs[4096], a[512], b[1024];
	const char *log;
	struct vd_volset *s;
	size_t o = 0;

	/* A PV missing: the LV wholly on the other one shows. */
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "ona", true,
			   seg_lin(a, sizeof(a), 1, 0, 2, "pv0", 3)));
	snprintf(b, sizeof(b), "%s%s", seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 9),
		 "segment2 {\nstart_extent = 1\nextent_count = 1\n"
		 "type = \"striped\"\nstripe_count = 1\n"
		 "stripes = [\"pv1\", 0]\n}\n");
	o += strlen(lv_sec(lvs + o, sizeof(lvs) - o, "span", true, b));
	s = scene("vg", "AB", "A", lvs, &log);
	static const struct ref_seg ona[] = { { 0, 2, 1, 0, { { 'A', 3 } } } };
	CHECK("missing PV: LV on the present one", lv_matches(s, "vg-ona", ona, 1));
	CHECK("missing PV: LV spanning both", !set_find(s, "vg-span"));
	CHECK_MSG("missing PV", log, "t.img: LVM: VG vg: PV "
				     "BBcdef-ghij-klmn-opqr-stuv-wxyz-abcdef is "
				     "missing; the LVs on it are not shown\n");
	CHECK("missing PV: one notice", !strchr(strchr(log, '\n') + 1, '\n'));
	CHECK("missing PV: info", vd_lvm_info(s)->vg[0]->n_missing == 1 &&
					  !vd_lvm_info(s)->vg[0]->pv[1].vol &&
					  strstr(info_lv(s, 0, "span")->why_not,
						 "which is missing"));
	set_free(s);

	/* Two VGs of one name. */
	char *t1, *t2;

	lv_sec(lvs, sizeof(lvs), "lv", true,
	       seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 0));
	t1 = vg_text("data-vg", 'V', 3, "A", lvs);
	t2 = vg_text("data-vg", 'W', 3, "B", lvs);
	s = set_new();
	set_add_mem(s, pv_new(0, 'A', 1, t1), PV_SIZE, "pA");
	set_add_mem(s, pv_new(2, 'B', 1, t2), PV_SIZE, "pB");
	log_begin();
	set_assemble(s);
	log = log_end();
	CHECK("clash: the first keeps its name", set_find(s, "data--vg-lv"));
	CHECK("clash: the second gets its UUID",
	      set_find(s, "data--vg_WWcdefghijklmnopqrstuvwxyzabcdef-lv"));
	CHECK_MSG("clash", log, "t.img: LVM: two VGs are named data-vg; the "
				"one of UUID WWcdef-ghij-klmn-opqr-stuv-wxyz-"
				"abcdef is shown as data-vg_WWcdef");
	set_free(s);
	free(t1);
	free(t2);

	/* The highest seqno: across two metadata areas of a PV, and
	 * across PVs; the second area when the first is damaged. */
	lv_sec(lvs, sizeof(lvs), "old", true,
	       seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 0));
	t1 = vg_text("vg", 'V', 5, "AB", lvs);
	lv_sec(lvs, sizeof(lvs), "new", true,
	       seg_lin(a, sizeof(a), 1, 0, 1, "pv0", 0));
	t2 = vg_text("vg", 'V', 6, "AB", lvs);
	for (int k = 0; k < 4; k++) {
		static const char *const names[] = {
			"seqno: second area newer", "seqno: first area newer",
			"seqno: second PV newer",
			"first area damaged: the second is used",
		};
		uint8_t *pa = pv_new(1, 'A', 2, k == 1 ? t2 : t1);

		s = set_new();
		if (k == 0)
			pv_mda(pa, PV_SIZE - MDA_SIZE, t2, 1000);
		if (k == 1)
			pv_mda(pa, PV_SIZE - MDA_SIZE, t1, 1000);
		if (k == 3) {
			pv_mda(pa, PV_SIZE - MDA_SIZE, t2, 1000);
			pv_mda(pa, MDA_OFF, t2, 1000);
			pa[MDA_OFF + 1000 + 10] ^= 1;
		}
		set_add_mem(s, pa, PV_SIZE, "pA");
		set_add_mem(s, pv_new(1, 'B', 1, k == 2 ? t2 : t1), PV_SIZE,
			    "pB");
		log_begin();
		set_assemble(s);
		log = log_end();
		CHECK(names[k], set_find(s, "vg-new") && !set_find(s, "vg-old"));
		if (k == 3)
			CHECK_MSG(names[k], log,
				  "pA: LVM: PV AAcdefghijklmnopqrstuvwx"
				  "yzabcdef: metadata area 1: text CRC is 0x");
		if (k == 3)
			CHECK_MSG(names[k], log,
				  "(trying the next metadata area)");
		set_free(s);
	}
	free(t1);
	free(t2);
}

/* 200 LVs of one extent each over four PVs (as a server with many
 * LVs): every one shown, each where its extent is. */
static void test_many(void)
{
	size_t cap = 1 << 20, o = 0;
	char *lvs = malloc(cap), a[512], name[32];
	const char *log;
	struct vd_volset *s;
	bool ok = true;

	for (unsigned i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "lv%u", i);
		snprintf(name, sizeof(name), "pv%u", i % 4);
		seg_lin(a, sizeof(a), 1, 0, 1, name, i / 4);
		snprintf(name, sizeof(name), "lv%u", i);
		o += strlen(lv_sec(lvs + o, cap - o, name, true, a));
	}
	s = scene("many", "ABCD", "ABCD", lvs, &log);
	CHECK("200 LVs: no notices", !log[0]);
	for (unsigned i = 0; i < 200 && ok; i++) {
		struct ref_seg r[] = {
			{ 0, 1, 1, 0, { { (char)('A' + i % 4), i / 4 } } }
		};
		char label[40];

		snprintf(label, sizeof(label), "many-lv%u", i);
		ok = lv_matches(s, label, r, 1);
	}
	CHECK("200 LVs", ok && vd_lvm_info(s)->vg[0]->n_lv == 200);
	set_free(s);
	free(lvs);
}

/* ------------------------------------------------ thin pools */

/* The pool's metadata made by thin_restore (thin-provisioning-tools)
 * from XML: into the PV at extent 0 (16 extents, 1 MiB). 0, or -1 when
 * the tool is missing. */
static int thin_meta(uint8_t *pv, const char *xml)
{
	char dir[] = "/tmp/lvmtest.XXXXXX", cmd[512], path[600];
	FILE *f;
	int ret = -1;

	if (!mkdtemp(dir))
		unit_die("mkdtemp");
	snprintf(path, sizeof(path), "%s/t.xml", dir);
	f = fopen(path, "w");
	fputs(xml, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && truncate -s 1M m && thin_restore -q -i t.xml -o m "
		 ">/dev/null 2>&1", dir);
	if (!system(cmd)) {
		snprintf(path, sizeof(path), "%s/m", dir);
		f = fopen(path, "rb");
		if (f && fread(pv + PE_START * 512, 1, 1 << 20, f) == 1 << 20)
			ret = 0;
		if (f)
			fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		unit_die("rm");
	return ret;
}

static const char thin_xml[] =
	"<superblock uuid=\"\" time=\"1\" transaction=\"3\" flags=\"0\" "
	"version=\"2\" data_block_size=\"128\" nr_data_blocks=\"32\">\n"
	"<device dev_id=\"1\" mapped_blocks=\"4\" transaction=\"0\" "
	"creation_time=\"0\" snap_time=\"1\">\n"
	"<range_mapping origin_begin=\"0\" data_begin=\"10\" length=\"3\" "
	"time=\"0\"/>\n"
	"<single_mapping origin_block=\"5\" data_block=\"3\" time=\"0\"/>\n"
	"</device>\n"
	"<device dev_id=\"2\" mapped_blocks=\"2\" transaction=\"0\" "
	"creation_time=\"1\" snap_time=\"1\">\n"
	"<single_mapping origin_block=\"0\" data_block=\"10\" time=\"0\"/>\n"
	"<single_mapping origin_block=\"1\" data_block=\"20\" time=\"1\"/>\n"
	"</device>\n</superblock>\n";

/* A pool: _tmeta pv0 0-15, _tdata pv0 16-47 (32 blocks of 64 KiB);
 * thin1 (device 1) and its snapshot snap (device 2), 16 blocks each,
 * gone (device 9, not in the metadata), and eo: device 1 again, over
 * the external origin plain (pv0 50-53). */
static char *thin_lvs(char *lvs, size_t cap, unsigned chunk)
{
	char a[512], t[1024];
	size_t o = 0;

	snprintf(t, sizeof(t),
		 "segment1 {\nstart_extent = 0\nextent_count = 32\n"
		 "type = \"thin-pool\"\nmetadata = \"pool_tmeta\"\n"
		 "pool = \"pool_tdata\"\ntransaction_id = 3\n"
		 "chunk_size = %u\ndiscards = \"passdown\"\n"
		 "zero_new_blocks = 1\n}\n", chunk);
	o += strlen(lv_sec(lvs + o, cap - o, "pool", true, t));
	o += strlen(lv_sec(lvs + o, cap - o, "pool_tmeta", false,
			   seg_lin(a, sizeof(a), 1, 0, 16, "pv0", 0)));
	o += strlen(lv_sec(lvs + o, cap - o, "pool_tdata", false,
			   seg_lin(a, sizeof(a), 1, 0, 32, "pv0", 16)));
	for (int k = 0; k < 4; k++) {
		static const char *const names[] = { "thin1", "snap", "gone",
						     "eo" };
		static const int dev[] = { 1, 2, 9, 1 };

		snprintf(t, sizeof(t),
			 "segment1 {\nstart_extent = 0\nextent_count = 16\n"
			 "type = \"thin\"\nthin_pool = \"pool\"\n"
			 "transaction_id = 0\ndevice_id = %d\n%s}\n",
			 dev[k],
			 k == 1 ? "origin = \"thin1\"\n" :
			 k == 3 ? "external_origin = \"plain\"\n" : "");
		o += strlen(lv_sec(lvs + o, cap - o, names[k], true, t));
	}
	o += strlen(lv_sec(lvs + o, cap - o, "plain", true,
			   seg_lin(a, sizeof(a), 1, 0, 4, "pv0", 50)));
	return lvs;
}

struct thin_reader {
	const struct vd_vol *v;
	bool ok;
};

static void *thin_thread(void *arg)
{
	struct thin_reader *r = arg;
	uint8_t b[3000];

	r->ok = true;
	for (unsigned i = 0; i < 300; i++) {
		uint64_t off = (uint64_t)i * 7919 * 13 % (r->v->len - sizeof(b));

		if (vd_vol_read(r->v, b, sizeof(b), off) < 0)
			r->ok = false;
		for (size_t k = 0; k < sizeof(b) && r->ok; k++) {
			uint64_t o = off + k, blk = o / 65536, in = o % 65536;
			uint8_t want = blk <= 2 ? pat('A', 16 + 10 + blk, in) :
				       blk == 5 ? pat('A', 16 + 3, in) : 0;

			if (b[k] != want)
				r->ok = false;
		}
	}
	return NULL;
}

static void test_thin(void)
{
	char lvs[8192], *text;
	const char *log;
	struct vd_volset *s;
	uint8_t *pv;

	text = vg_text("vg", 'V', 3, "A", thin_lvs(lvs, sizeof(lvs), 128));
	pv = pv_new(1, 'A', 1, text);
	free(text);
	if (thin_meta(pv, thin_xml)) {
		printf("SKIP thin pools: thin_restore failed or is missing\n");
		free(pv);
		return;
	}
	s = set_new();
	set_add_mem(s, pv, PV_SIZE, "pA");
	log_begin();
	CHECK("thin: assemble", set_assemble(s) == 0);
	log = log_end();
	/* Device 1: blocks 0-2 at data 10-12, 5 at 3; the rest zeros.
	 * Data block d is PV extent 16 + d (64 KiB blocks and extents). */
	static const struct ref_seg data10[] = {
		{ 0, 3, 1, 0, { { 'A', 26 } } }
	};
	const struct vd_vol *t1 = set_find(s, "vg-thin1");
	uint8_t *b = malloc(16 * 65536);

	CHECK("thin: volume", t1 && t1->len == 16 * 65536 && !t1->hidden);
	if (t1 && !vd_vol_read(t1, b, 16 * 65536, 0)) {
		bool ok = true;

		for (uint64_t i = 0; i < 16 * 65536 && ok; i++) {
			uint64_t blk = i / 65536;
			uint8_t want = blk <= 2 ? ref_byte(data10, 1, i) :
				       blk == 5 ? pat('A', 19, i % 65536) : 0;

			ok = b[i] == want;
		}
		CHECK("thin: mapped blocks and zeros", ok);
	} else {
		CHECK("thin: read", false);
	}
	struct vd_vol_run r;

	CHECK("thin: a run of 3 mapped blocks in one piece",
	      t1 && !t1->ops->map(t1, 100, 16 * 65536 - 100, &r) &&
		      r.len == 3 * 65536 - 100 &&
		      r.vol == set_find(s, "vg-pool_tdata") &&
		      r.off == 10 * 65536 + 100);
	CHECK("thin: a hole up to the next mapping",
	      t1 && !t1->ops->map(t1, 3 * 65536 + 5, 10 * 65536, &r) &&
		      !r.vol && r.len == 2 * 65536 - 5);
	const struct vd_vol *sn = set_find(s, "vg-snap");

	CHECK("thin: snapshot", sn && !vd_vol_read(sn, b, 2 * 65536, 0) &&
					b[7] == pat('A', 26, 7) &&
					b[65536 + 9] == pat('A', 36, 9));
	CHECK("thin: pool and its sub-LVs are not shown",
	      !set_find(s, "vg-pool") && set_find(s, "vg-pool_tmeta") &&
		      set_find(s, "vg-pool_tmeta")->hidden &&
		      info_lv(s, 0, "pool")->sub &&
		      !info_lv(s, 0, "pool")->shown);
	CHECK("thin: a device not in the metadata", !set_find(s, "vg-gone"));
	const struct vd_vol *eo = set_find(s, "vg-eo");

	if (eo && !vd_vol_read(eo, b, 16 * 65536, 0)) {
		bool ok = true;

		for (uint64_t i = 0; i < 16 * 65536 && ok; i++) {
			uint64_t blk = i / 65536, in = i % 65536;
			uint8_t want = blk <= 2 ? pat('A', 26 + blk, in) :
				       blk == 3 ? pat('A', 53, in) :
				       blk == 5 ? pat('A', 19, in) : 0;

			ok = b[i] == want;
		}
		CHECK("thin: external origin under unmapped blocks", ok);
	} else {
		CHECK("thin: external origin", false);
	}
	CHECK_MSG("thin: a device not in the metadata", log,
		  "LV gone is not shown: thin device 9 is not in pool pool's "
		  "metadata");

	/* Threads reading at once through the cache. */
	pthread_t th[4];
	struct thin_reader rd[4];

	for (int i = 0; i < 4; i++) {
		rd[i].v = t1;
		pthread_create(&th[i], NULL, thin_thread, &rd[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK("thin: threads", rd[i].ok);
	}
	set_free(s);

	/* Damaged metadata: a btree node's checksum; the superblock's;
	 * a chunk size that differs; never activated. */
	for (int k = 0; k < 4; k++) {
		static const char *const names[] = {
			"thin: damaged btree node", "thin: damaged superblock",
			"thin: chunk size differs", "thin: never activated",
		};
		text = vg_text("vg", 'V', 3, "A",
			       thin_lvs(lvs, sizeof(lvs), k == 2 ? 256 : 128));
		pv = pv_new(1, 'A', 1, text);
		free(text);
		thin_meta(pv, thin_xml);
		uint8_t *meta = pv + PE_START * 512;

		if (k == 0) /* the data mapping root's entries */
			meta[get_le64(meta + 320) * 4096 + 100] ^= 1;
		if (k == 1)
			meta[200] ^= 1;
		if (k == 3)
			memset(meta, 0, 4096);
		s = set_new();
		set_add_mem(s, pv, PV_SIZE, "pA");
		log_begin();
		set_assemble(s);
		log = log_end();
		t1 = set_find(s, "vg-thin1");
		if (k == 0) {
			CHECK(names[k], !t1);
			CHECK_MSG(names[k], log, "btree node at block");
		} else if (k == 1) {
			CHECK(names[k], !t1);
			CHECK_MSG(names[k], log,
				  "LV thin1 is not shown: it uses LV pool, "
				  "which cannot be read: its metadata "
				  "superblock checksum is 0x");
		} else if (k == 2) {
			CHECK(names[k], !t1);
			CHECK_MSG(names[k], log, "its data block size is 128 "
						 "sectors, LVM's chunk_size 256");
		} else {
			CHECK(names[k], t1 && !vd_vol_read(t1, b, 65536, 0) &&
						all_bytes(b, 65536, 0));
			CHECK_MSG(names[k], log, "was never activated");
		}
		set_free(s);
	}
	free(b);
}

/* ------------------------------------------------ --scan */

static int scan(int argc, char **argv)
{
	struct vd_volset *s = set_new();
	const struct vd_lvm_info *in;

	for (int i = 0; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		long n;
		uint8_t *b;

		if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 ||
		    fseek(f, 0, SEEK_SET))
			unit_die(argv[i]);
		b = malloc((size_t)n);
		if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
			unit_die(argv[i]);
		fclose(f);
		set_add_mem(s, b, (size_t)n, argv[i]);
	}
	if (set_assemble(s) < 0)
		unit_die("assemble");
	in = vd_lvm_info(s);
	/* LVM_TEST_DUMP=DIR writes each LV's bytes to DIR/LABEL. */
	for (unsigned i = 0; getenv("LVM_TEST_DUMP") && i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];
		char out[4096];
		uint8_t *b;
		FILE *f;

		if (strcmp(v->ops->kind, "lvm"))
			continue;
		snprintf(out, sizeof(out), "%s/%s", getenv("LVM_TEST_DUMP"),
			 v->label);
		b = malloc(v->len ? v->len : 1);
		f = fopen(out, "wb");
		if (!b || !f || vd_vol_read(v, b, v->len, 0) ||
		    fwrite(b, 1, v->len, f) != v->len)
			unit_die(out);
		fclose(f);
		free(b);
	}
	for (unsigned v = 0; in && v < in->n_vg; v++) {
		const struct vd_lvm_vg *g = in->vg[v];

		printf("vg %s %s seqno %llu extent %llu pvs %u missing %u\n",
		       g->shown_name, g->uuid, (unsigned long long)g->seqno,
		       (unsigned long long)g->extent_size, g->n_pv,
		       g->n_missing);
		for (uint32_t p = 0; p < g->n_pv; p++)
			printf("  pv %s %s pe_start %llu pe_count %llu\n",
			       g->pv[p].uuid,
			       g->pv[p].vol ? g->pv[p].vol->name : "(missing)",
			       (unsigned long long)g->pv[p].pe_start,
			       (unsigned long long)g->pv[p].pe_count);
		for (uint32_t l = 0; l < g->n_lv; l++) {
			const struct vd_lvm_lv *lv = &g->lv[l];

			printf("  lv %s %s size %llu %s%s%s\n", lv->name,
			       lv->dm_name, (unsigned long long)lv->size,
			       lv->shown ? "shown" : lv->sub ? "sub" : "not-shown",
			       lv->why_not[0] ? ": " : "", lv->why_not);
			for (uint32_t k = 0; k < lv->n_seg; k++)
				printf("    seg %llu+%llu %s stripes %u size %llu\n",
				       (unsigned long long)lv->seg[k].start_extent,
				       (unsigned long long)lv->seg[k].extent_count,
				       lv->seg[k].type, lv->seg[k].stripes,
				       (unsigned long long)lv->seg[k].stripe_size);
		}
	}
	set_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "--scan"))
		return scan(argc - 2, argv + 2);
	test_label();
	test_parser();
	test_model();
	test_linear_striped();
	test_legs();
	test_refusals();
	test_vgs();
	test_many();
	test_thin();
	return unit_done();
}
