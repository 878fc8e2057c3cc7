/* vmdk: the descriptor, a small text file (or a text area inside a sparse
 * extent) that names the disk's extents and its parent.
 *
 *	# Disk DescriptorFile
 *	version=1
 *	CID=89c1d5a2
 *	parentCID=ffffffff
 *	createType="twoGbMaxExtentSparse"
 *	parentFileNameHint="base.vmdk"
 *	RW 4194304 SPARSE "disk-s001.vmdk"
 *	RDONLY 2048 FLAT "disk-flat.vmdk" 0
 *	NOACCESS 100 ZERO
 *	ddb.adapterType = "ide"
 *
 * (Virtual Disk Format 1.1, "The Descriptor File".) Lines end in LF or
 * CRLF; '#' starts a comment line; other lines are `key = value` (the
 * value optionally in double quotes) or extent lines
 * `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`. A NUL ends the text: an
 * embedded descriptor is padded with them.
 *
 * The parser is strict where a value will be used (numbers, file names,
 * extent lines, the keys above) and ignores keys it does not use (the
 * disk database, encoding, ...). It only reads text; what the extents
 * name is checked when they are opened (vmdk.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/vmdk.h"

#define D_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "line %u: " fmt, line, ##__VA_ARGS__)

/* One line, without its end, as a counted string. */
struct desc_str {
	const char *p;
	size_t n;
};

static bool desc_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The offset of the first byte of s that is not text (a control byte
 * other than tab and CR, or not part of a UTF-8 sequence), or s.n. */
static size_t desc_binary(struct desc_str s)
{
	size_t i = 0;

	/* Ends: i grows by one sequence per pass. */
	while (i < s.n) {
		unsigned char c = (unsigned char)s.p[i];
		size_t more = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 :
			      c >= 0xe0 && c <= 0xef ? 2 :
			      c >= 0xf0 && c <= 0xf4 ? 3 : SIZE_MAX;

		if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f ||
		    more == SIZE_MAX || more >= s.n - i)
			return i;
		for (size_t k = 1; k <= more; k++)
			if (((unsigned char)s.p[i + k] & 0xc0) != 0x80)
				return i;
		i += more + 1;
	}
	return s.n;
}

static void desc_trim(struct desc_str *s)
{
	while (s->n && desc_space(s->p[0])) {
		s->p++;
		s->n--;
	}
	while (s->n && desc_space(s->p[s->n - 1]))
		s->n--;
}

static bool desc_eq(struct desc_str s, const char *word)
{
	return s.n == strlen(word) && !memcmp(s.p, word, s.n);
}

/* Split off the next whitespace-separated token of s. */
static struct desc_str desc_token(struct desc_str *s)
{
	struct desc_str t = { s->p, 0 };

	while (t.n < s->n && !desc_space(s->p[t.n]))
		t.n++;
	s->p += t.n;
	s->n -= t.n;
	desc_trim(s);
	return t;
}

/* A decimal number of at most max: digits only, no sign. */
static bool desc_dec(struct desc_str s, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (!s.n)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* A CID: one to eight hex digits. */
static bool desc_hex32(struct desc_str s, uint32_t *v_r)
{
	uint32_t v = 0;

	if (!s.n || s.n > 8)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*v_r = v;
	return true;
}

/* "text" at the start of s: the text, and s moved past the closing quote.
 * -1 when s does not start with a quote, -2 when the quote is not closed. */
static int desc_quoted(struct desc_str *s, struct desc_str *q_r)
{
	const char *close;

	if (!s->n || s->p[0] != '"')
		return -1;
	close = memchr(s->p + 1, '"', s->n - 1);
	if (!close)
		return -2;
	q_r->p = s->p + 1;
	q_r->n = (size_t)(close - s->p) - 1;
	s->n -= (size_t)(close - s->p) + 1;
	s->p = close + 1;
	desc_trim(s);
	return 0;
}

static char *desc_dup(struct desc_str s)
{
	return strndup(s.p, s.n);
}

/* Printable excerpt of s for a message. */
static int desc_show_len(struct desc_str s)
{
	return (int)VD_MIN(s.n, 40u);
}

static const struct {
	const char *word;
	enum vmdk_ext_type type;
} desc_types[] = {
	{ "FLAT", VMDK_EXT_FLAT },
	{ "SPARSE", VMDK_EXT_SPARSE },
	{ "ZERO", VMDK_EXT_ZERO },
	{ "VMFS", VMDK_EXT_VMFS },
	{ "VMFSSPARSE", VMDK_EXT_VMFSSPARSE },
	{ "SESPARSE", VMDK_EXT_SESPARSE },
};

/* Extent types VMware defines that we do not read: raw device mappings
 * (they name host devices). */
static const char *const desc_unsupported[] = {
	"VMFSRDM", "VMFSRAW", "VMFSPASSTHROUGHRAW",
};

static int desc_extent(struct vmdk_desc *d, enum vmdk_access acc,
		       struct desc_str rest, unsigned line, uint64_t *total,
		       struct vd_err *e)
{
	struct vmdk_desc_extent x = { .access = acc, .line = line };
	struct desc_str tok, name;
	bool known = false;
	int q;

	tok = desc_token(&rest);
	if (!desc_dec(tok, VMDK_MAX_SECTORS, &x.sectors) || !x.sectors)
		return D_FAIL(-EUCLEAN, "extent size '%.*s' is not a number of "
			      "sectors from 1 to %llu", desc_show_len(tok),
			      tok.p, (unsigned long long)VMDK_MAX_SECTORS);
	tok = desc_token(&rest);
	for (unsigned i = 0; i < VD_ARRAY_SIZE(desc_types); i++) {
		if (desc_eq(tok, desc_types[i].word)) {
			x.type = desc_types[i].type;
			known = true;
		}
	}
	for (unsigned i = 0; !known && i < VD_ARRAY_SIZE(desc_unsupported); i++)
		if (desc_eq(tok, desc_unsupported[i]))
			return D_FAIL(-ENOTSUP, "extent type %s is not "
				      "supported", desc_unsupported[i]);
	if (!known)
		return D_FAIL(-EUCLEAN, "unknown extent type '%.*s'",
			      desc_show_len(tok), tok.p);

	q = desc_quoted(&rest, &name);
	if (q == -2)
		return D_FAIL(-EUCLEAN, "extent file name has no closing quote");
	if (x.type == VMDK_EXT_ZERO) {
		if (q == 0 || rest.n)
			return D_FAIL(-EUCLEAN, "a ZERO extent names no file");
	} else {
		if (q != 0)
			return D_FAIL(-EUCLEAN, "extent file name missing (it "
				      "must be in double quotes)");
		if (!name.n || name.n > VMDK_DESC_MAX_NAME ||
		    memchr(name.p, '\0', name.n))
			return D_FAIL(-EUCLEAN, "extent file name of %zu bytes",
				      name.n);
		tok = desc_token(&rest);
		if (tok.n) {
			if (x.type != VMDK_EXT_FLAT && x.type != VMDK_EXT_VMFS)
				return D_FAIL(-EUCLEAN, "unexpected '%.*s' "
					      "after the file name of a sparse "
					      "extent", desc_show_len(tok),
					      tok.p);
			if (!desc_dec(tok, VMDK_MAX_SECTORS, &x.offset))
				return D_FAIL(-EUCLEAN, "extent offset '%.*s' "
					      "is not a number of sectors",
					      desc_show_len(tok), tok.p);
		}
		if (rest.n)
			return D_FAIL(-EUCLEAN, "unexpected '%.*s' at the end "
				      "of an extent line", desc_show_len(rest),
				      rest.p);
	}
	if (d->n_ext >= VMDK_DESC_MAX_EXTENTS)
		return D_FAIL(-EUCLEAN, "more than %u extents",
			      VMDK_DESC_MAX_EXTENTS);
	*total += x.sectors; /* both <= 2^44 * 4096: no overflow */
	if (*total > VMDK_MAX_SECTORS)
		return D_FAIL(-EUCLEAN, "the extents add up to more than %llu "
			      "sectors", (unsigned long long)VMDK_MAX_SECTORS);
	if (x.type != VMDK_EXT_ZERO && !(x.name = desc_dup(name)))
		return -ENOMEM;
	/* Grow by doubling; the count is capped above. */
	if (!(d->n_ext & (d->n_ext - 1))) {
		struct vmdk_desc_extent *n =
			realloc(d->ext, (d->n_ext ? 2 * d->n_ext : 1) *
						sizeof(*n));
		if (!n) {
			free(x.name);
			return -ENOMEM;
		}
		d->ext = n;
	}
	d->ext[d->n_ext++] = x;
	return 0;
}

/* key = value, for the keys we use. */
static int desc_pair(struct vmdk_desc *d, struct desc_str key,
		     struct desc_str val, unsigned line, struct vd_err *e)
{
	struct desc_str raw = val, q;
	int qr = desc_quoted(&val, &q);
	uint64_t n;

	if (qr == -2)
		return D_FAIL(-EUCLEAN, "value of %.*s has no closing quote",
			      desc_show_len(key), key.p);
	if (qr == 0) {
		if (val.n)
			return D_FAIL(-EUCLEAN, "unexpected '%.*s' after the "
				      "quoted value of %.*s",
				      desc_show_len(val), val.p,
				      desc_show_len(key), key.p);
		val = q;
	} else {
		val = raw;
	}

	if (desc_eq(key, "version")) {
		if (d->version)
			return D_FAIL(-EUCLEAN, "version given twice");
		if (!desc_dec(val, 1000, &n) || !n)
			return D_FAIL(-EUCLEAN, "version '%.*s' is not a "
				      "number", desc_show_len(val), val.p);
		if (n > 3)
			return D_FAIL(-ENOTSUP, "descriptor version %llu is "
				      "not supported (1 to 3)",
				      (unsigned long long)n);
		d->version = (unsigned)n;
	} else if (desc_eq(key, "CID") || desc_eq(key, "parentCID")) {
		bool parent = key.n > 3;
		bool *has = parent ? &d->has_parent_cid : &d->has_cid;

		if (*has)
			return D_FAIL(-EUCLEAN, "%s given twice",
				      parent ? "parentCID" : "CID");
		if (!desc_hex32(val, parent ? &d->parent_cid : &d->cid))
			return D_FAIL(-EUCLEAN, "%s '%.*s' is not a 32-bit "
				      "hex number", parent ? "parentCID" : "CID",
				      desc_show_len(val), val.p);
		*has = true;
	} else if (desc_eq(key, "createType")) {
		if (d->create_type)
			return D_FAIL(-EUCLEAN, "createType given twice");
		if (!val.n || val.n > 32)
			return D_FAIL(-EUCLEAN, "createType of %zu bytes",
				      val.n);
		if (!(d->create_type = desc_dup(val)))
			return -ENOMEM;
	} else if (desc_eq(key, "parentFileNameHint")) {
		if (d->parent_hint)
			return D_FAIL(-EUCLEAN, "parentFileNameHint given "
				      "twice");
		if (val.n > VMDK_DESC_MAX_NAME)
			return D_FAIL(-EUCLEAN, "parentFileNameHint of %zu "
				      "bytes", val.n);
		/* An empty hint names no parent. */
		if (val.n && !(d->parent_hint = desc_dup(val)))
			return -ENOMEM;
	}
	return 0;
}

static int desc_line(struct vmdk_desc *d, struct desc_str s, unsigned line,
		     uint64_t *total, struct vd_err *e)
{
	static const struct {
		const char *word;
		enum vmdk_access access;
	} acc[] = {
		{ "RW", VMDK_RW },
		{ "RDONLY", VMDK_RDONLY },
		{ "NOACCESS", VMDK_NOACCESS },
	};
	struct desc_str first, rest, key, val;
	const char *eq;

	desc_trim(&s);
	if (!s.n || s.p[0] == '#')
		return 0;
	rest = s;
	first = desc_token(&rest);
	for (unsigned i = 0; i < VD_ARRAY_SIZE(acc); i++)
		if (desc_eq(first, acc[i].word))
			return desc_extent(d, acc[i].access, rest, line, total,
					   e);

	eq = memchr(s.p, '=', s.n);
	if (!eq)
		return D_FAIL(-EUCLEAN, "'%.*s' is neither key = value nor an "
			      "extent", desc_show_len(s), s.p);
	key.p = s.p;
	key.n = (size_t)(eq - s.p);
	desc_trim(&key);
	val.p = eq + 1;
	val.n = (size_t)(s.p + s.n - val.p);
	desc_trim(&val);
	if (!key.n)
		return D_FAIL(-EUCLEAN, "'=' without a key");
	for (size_t i = 0; i < key.n; i++)
		if (desc_space(key.p[i]) || key.p[i] == '"')
			return D_FAIL(-EUCLEAN, "key '%.*s' holds a space or "
				      "a quote", desc_show_len(key), key.p);
	return desc_pair(d, key, val, line, e);
}

int vmdk_desc_parse(const char *text, size_t len, struct vmdk_desc *d,
		    struct vd_err *e)
{
	const char *nul = memchr(text, '\0', len);
	const char *p = text, *end = nul ? nul : text + len;
	uint64_t total = 0;
	unsigned line = 0;

	memset(d, 0, sizeof(*d));
	if ((size_t)(end - text) > VMDK_DESC_MAX_BYTES)
		return vd_fail(e, -EUCLEAN, "descriptor larger than %u bytes",
			       VMDK_DESC_MAX_BYTES);
	/* Ends: p moves past one line end (or to end) per pass. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct desc_str s = { p, (size_t)((nl ? nl : end) - p) };
		size_t bad;
		int ret;

		line++;
		if (s.n > VMDK_DESC_MAX_LINE)
			return D_FAIL(-EUCLEAN, "line longer than %u bytes",
				      VMDK_DESC_MAX_LINE);
		/* Text only, so that a message never quotes binary bytes. */
		bad = desc_binary(s);
		if (bad < s.n)
			return D_FAIL(-EUCLEAN, "byte 0x%02x at column %zu is "
				      "not UTF-8 text: not a descriptor",
				      (unsigned char)s.p[bad], bad + 1);
		ret = desc_line(d, s, line, &total, e);
		if (ret) {
			if (ret == -ENOMEM)
				vd_fail(e, ret, "out of memory");
			return ret;
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	for (unsigned i = 0; i < d->n_ext; i++)
		free(d->ext[i].name);
	free(d->ext);
	free(d->create_type);
	free(d->parent_hint);
	memset(d, 0, sizeof(*d));
}
