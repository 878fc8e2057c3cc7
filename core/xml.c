/* A small, strict, bounded XML reader for the subset that OVF producers
 * write. We have no XML library, and descriptors are hostile input, so
 * the reader handles exactly that subset and refuses the rest with the
 * line number:
 *   - UTF-8 only (a UTF-8 byte order mark is skipped), no NUL bytes;
 *   - the XML declaration and other processing instructions, comments,
 *     and a DOCTYPE without an internal subset are skipped (an internal
 *     subset could define entities: refused);
 *   - elements and attributes (values in ' or "), with namespace
 *     prefixes resolved through xmlns declarations in scope;
 *   - the five predefined entities and numeric character references,
 *     decoded in attribute values and checked in text;
 *   - CDATA sections are skipped; character data is checked, not kept.
 * Limits: the caller's limit on input, VD_XML_MAX_DEPTH nested
 * elements, VD_XML_MAX_ATTRS attributes per element, VD_XML_MAX_NS
 * namespace bindings in scope. The reader makes one pass; every construct
 * consumes input, so it ends after at most len steps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/xml.h"

unsigned vd_xml_line(const struct vd_xml *x, const char *at)
{
	unsigned line = 1;

	for (const char *q = x->buf; q < at && q < x->end; q++)
		line += *q == '\n';
	return line;
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool xml_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == ':' || c >= 0x80;
}

static bool xml_name_char(unsigned char c)
{
	return xml_name_start(c) || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.';
}

static bool xml_at(const struct vd_xml *x, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(x->end - x->p) >= n && !memcmp(x->p, lit, n);
}

bool vd_xml_str_eq(struct vd_xml_str s, const char *lit)
{
	return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

static bool xml_str_same(struct vd_xml_str a, struct vd_xml_str b)
{
	return a.n == b.n && !memcmp(a.p, b.p, a.n);
}

/* Skip to just past `term`, or fail naming what was left open. */
static int xml_skip_past(struct vd_xml *x, const char *term, const char *what)
{
	const char *start = x->p;
	const char *hit = memmem(x->p, (size_t)(x->end - x->p), term,
				 strlen(term));

	if (!hit)
		return VD_XML_FAIL(x, start, -EUCLEAN, "%s never ends", what);
	x->p = hit + strlen(term);
	return 0;
}

static int xml_name(struct vd_xml *x, struct vd_xml_str *s)
{
	const char *q = x->p;

	if (q >= x->end || !xml_name_start((unsigned char)*q))
		return VD_XML_FAIL(x, q, -EUCLEAN, "expected a name");
	while (q < x->end && xml_name_char((unsigned char)*q))
		q++;
	s->p = x->p;
	s->n = (size_t)(q - x->p);
	x->p = q;
	return 0;
}

static size_t xml_put_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Decode (out != NULL) or only check the references in s: &amp; &lt;
 * &gt; &quot; &apos; &#N; &#xH;. The output is never longer than the
 * input (a reference is at least 4 bytes, its character at most 4), so
 * out needs s.n + 1 bytes. In attribute values (attr) white space
 * becomes a space, as XML 1.0 section 3.3.3 normalises it. */
static int xml_decode(struct vd_xml *x, struct vd_xml_str s, bool attr, char *out,
		      size_t *out_len)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp;", '&' },	{ "lt;", '<' },	  { "gt;", '>' },
		      { "quot;", '"' }, { "apos;", '\'' } };
	size_t o = 0, i = 0;

	/* Ends: every step consumes at least one byte of s. */
	while (i < s.n) {
		char c = s.p[i];

		if (c != '&') {
			if (attr && c == '<')
				return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
						"'<' in an attribute value");
			if (out)
				out[o] = attr && xml_space(c) ? ' ' : c;
			o++;
			i++;
			continue;
		}
		const char *r = s.p + i + 1;
		size_t left = s.n - i - 1;
		const char *semi = memchr(r, ';', VD_MIN(left, (size_t)12));
		size_t rn;

		if (!semi)
			return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
					"'&' that starts no entity reference");
		rn = (size_t)(semi - r) + 1; /* with the ';' */
		if (r[0] == '#') {
			uint32_t v = 0;
			bool hex = rn > 2 && r[1] == 'x';
			size_t k = hex ? 2 : 1;

			if (k >= rn - 1)
				return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
						"empty character reference");
			/* Stop as soon as v passes U+10FFFF: one more
			 * digit of a value below that cannot wrap. */
			for (; k < rn - 1; k++) {
				char d = r[k];
				unsigned dv;

				if (d >= '0' && d <= '9')
					dv = (unsigned)(d - '0');
				else if (hex && d >= 'a' && d <= 'f')
					dv = (unsigned)(d - 'a' + 10);
				else if (hex && d >= 'A' && d <= 'F')
					dv = (unsigned)(d - 'A' + 10);
				else
					return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
							"bad character "
							"reference");
				v = v * (hex ? 16 : 10) + dv;
				if (v > 0x10ffff)
					break;
			}
			if (v == 0 || v > 0x10ffff ||
			    (v >= 0xd800 && v <= 0xdfff))
				return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
						"character reference to an "
						"invalid character");
			if (out)
				o += xml_put_utf8(out + o, v);
			else
				o += 4;
		} else {
			unsigned k;

			for (k = 0; k < VD_ARRAY_SIZE(named); k++)
				if (strlen(named[k].name) == rn &&
				    !memcmp(r, named[k].name, rn))
					break;
			if (k == VD_ARRAY_SIZE(named))
				return VD_XML_FAIL(x, s.p + i, -EUCLEAN,
						"unknown entity '&%.*s' (only "
						"the predefined ones are "
						"supported)",
						(int)rn, r);
			if (out)
				out[o] = named[k].c;
			o++;
		}
		i += 1 + rn;
	}
	if (out)
		out[o] = '\0';
	if (out_len)
		*out_len = o;
	return 0;
}

/* A decoded, NUL-terminated copy of an attribute value. A value with an
 * embedded NUL (&#0; is refused by xml_decode) cannot occur. */
int vd_xml_value(struct vd_xml *x, const struct vd_xml_attr *a, char **out_r)
{
	char *out = malloc(a->raw.n + 1);
	int ret;

	if (!out)
		return -ENOMEM;
	ret = xml_decode(x, a->raw, true, out, NULL);
	if (ret) {
		free(out);
		return ret;
	}
	*out_r = out;
	return 0;
}

/* The namespace URI bound to prefix (empty: the default namespace), or
 * NULL when none is; *known tells an undeclared prefix apart. */
static const char *xml_resolve(const struct vd_xml *x, struct vd_xml_str prefix,
			       bool *known)
{
	*known = true;
	if (vd_xml_str_eq(prefix, "xml"))
		return "http://www.w3.org/XML/1998/namespace";
	for (unsigned i = x->n_ns; i-- > 0;)
		if (xml_str_same(x->ns[i].prefix, prefix))
			return x->ns[i].uri[0] ? x->ns[i].uri : NULL;
	*known = prefix.n == 0;
	return NULL;
}

static void xml_split(struct vd_xml_str q, struct vd_xml_str *prefix,
		      struct vd_xml_str *local)
{
	const char *colon = memchr(q.p, ':', q.n);

	if (!colon) {
		prefix->p = q.p;
		prefix->n = 0;
		*local = q;
		return;
	}
	prefix->p = q.p;
	prefix->n = (size_t)(colon - q.p);
	local->p = colon + 1;
	local->n = q.n - prefix->n - 1;
}

static void xml_pop_ns(struct vd_xml *x)
{
	while (x->n_ns && x->ns[x->n_ns - 1].depth >= x->depth) {
		x->n_ns--;
		free(x->ns[x->n_ns].uri);
	}
}

static int xml_start_tag(struct vd_xml *x)
{
	const char *tag_at = x->p;
	struct vd_xml_str qname, prefix;
	struct vd_xml_tag t = { .attrs = x->attrs };
	bool empty = false, known;
	int ret;

	x->p++; /* '<' */
	ret = xml_name(x, &qname);
	if (ret)
		return ret;
	if (x->seen_root && x->depth == 0)
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "a second root element "
				"<%.*s>", (int)qname.n, qname.p);
	if (x->depth >= VD_XML_MAX_DEPTH)
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "elements nested deeper "
				"than %u", VD_XML_MAX_DEPTH);
	x->depth++;
	x->stack[x->depth - 1] = qname;
	x->seen_root = true;
	t.depth = x->depth;

	/* Attributes. Ends: each one consumes its name and value. */
	for (;;) {
		bool sp = false;

		while (x->p < x->end && xml_space(*x->p)) {
			x->p++;
			sp = true;
		}
		if (x->p >= x->end)
			return VD_XML_FAIL(x, tag_at, -EUCLEAN, "tag <%.*s> never "
					"ends", (int)qname.n, qname.p);
		if (*x->p == '>') {
			x->p++;
			break;
		}
		if (xml_at(x, "/>")) {
			x->p += 2;
			empty = true;
			break;
		}
		if (!sp)
			return VD_XML_FAIL(x, x->p, -EUCLEAN, "expected white "
					"space, '>' or '/>' in <%.*s>",
					(int)qname.n, qname.p);
		if (t.n_attrs >= VD_XML_MAX_ATTRS)
			return VD_XML_FAIL(x, tag_at, -EUCLEAN, "more than %u "
					"attributes in <%.*s>", VD_XML_MAX_ATTRS,
					(int)qname.n, qname.p);
		struct vd_xml_attr *a = &x->attrs[t.n_attrs];
		ret = xml_name(x, &a->qname);
		if (ret)
			return ret;
		while (x->p < x->end && xml_space(*x->p))
			x->p++;
		if (x->p >= x->end || *x->p != '=')
			return VD_XML_FAIL(x, x->p, -EUCLEAN, "attribute '%.*s' "
					"has no value", (int)a->qname.n,
					a->qname.p);
		x->p++;
		while (x->p < x->end && xml_space(*x->p))
			x->p++;
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return VD_XML_FAIL(x, x->p, -EUCLEAN, "attribute '%.*s' "
					"value is not quoted", (int)a->qname.n,
					a->qname.p);
		const char *close = memchr(x->p + 1, *x->p,
					   (size_t)(x->end - x->p - 1));
		if (!close)
			return VD_XML_FAIL(x, x->p, -EUCLEAN, "attribute '%.*s' "
					"value never ends", (int)a->qname.n,
					a->qname.p);
		a->raw.p = x->p + 1;
		a->raw.n = (size_t)(close - x->p - 1);
		x->p = close + 1;
		ret = xml_decode(x, a->raw, true, NULL, NULL);
		if (ret)
			return ret;
		for (unsigned i = 0; i < t.n_attrs; i++)
			if (xml_str_same(x->attrs[i].qname, a->qname))
				return VD_XML_FAIL(x, a->qname.p, -EUCLEAN,
						"attribute '%.*s' given twice",
						(int)a->qname.n, a->qname.p);
		t.n_attrs++;
	}

	/* Namespace declarations first: they apply to this tag's own name
	 * and attributes. */
	for (unsigned i = 0; i < t.n_attrs; i++) {
		struct vd_xml_attr *a = &x->attrs[i];
		struct vd_xml_str pfx;

		if (vd_xml_str_eq(a->qname, "xmlns")) {
			pfx.p = a->qname.p;
			pfx.n = 0;
		} else if (a->qname.n > 6 &&
			   !memcmp(a->qname.p, "xmlns:", 6)) {
			pfx.p = a->qname.p + 6;
			pfx.n = a->qname.n - 6;
		} else {
			continue;
		}
		if (x->n_ns >= VD_XML_MAX_NS)
			return VD_XML_FAIL(x, a->qname.p, -EUCLEAN, "more than %u "
					"namespace declarations in scope",
					VD_XML_MAX_NS);
		ret = vd_xml_value(x, a, &x->ns[x->n_ns].uri);
		if (ret)
			return ret;
		x->ns[x->n_ns].prefix = pfx;
		x->ns[x->n_ns].depth = x->depth;
		x->n_ns++;
	}

	xml_split(qname, &prefix, &t.local);
	if (!t.local.n || (prefix.n == 0 && t.local.n != qname.n))
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "bad element name "
				"'%.*s'", (int)qname.n, qname.p);
	t.uri = xml_resolve(x, prefix, &known);
	if (!known)
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "undeclared namespace "
				"prefix in <%.*s>", (int)qname.n, qname.p);
	for (unsigned i = 0; i < t.n_attrs; i++) {
		struct vd_xml_attr *a = &x->attrs[i];

		xml_split(a->qname, &prefix, &a->local);
		a->uri = NULL;
		/* Unprefixed attributes are in no namespace. */
		if (prefix.n) {
			a->uri = xml_resolve(x, prefix, &known);
			if (!known && !vd_xml_str_eq(prefix, "xmlns"))
				return VD_XML_FAIL(x, a->qname.p, -EUCLEAN,
						"undeclared namespace prefix "
						"in attribute '%.*s'",
						(int)a->qname.n, a->qname.p);
		}
	}

	ret = x->on_start ? x->on_start(x->ctx, &t) : 0;
	if (ret)
		return ret;
	if (empty) {
		ret = x->on_end ? x->on_end(x->ctx, &t) : 0;
		xml_pop_ns(x);
		x->depth--;
	}
	return ret;
}

static int xml_end_tag(struct vd_xml *x)
{
	const char *tag_at = x->p;
	struct vd_xml_str qname, prefix;
	struct vd_xml_tag t = { 0 };
	bool known;
	int ret;

	x->p += 2; /* "</" */
	ret = xml_name(x, &qname);
	if (ret)
		return ret;
	while (x->p < x->end && xml_space(*x->p))
		x->p++;
	if (x->p >= x->end || *x->p != '>')
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "end tag </%.*s> never "
				"ends", (int)qname.n, qname.p);
	x->p++;
	if (!x->depth)
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "end tag </%.*s> with no "
				"element open", (int)qname.n, qname.p);
	if (!xml_str_same(qname, x->stack[x->depth - 1]))
		return VD_XML_FAIL(x, tag_at, -EUCLEAN, "end tag </%.*s> does not "
				"match <%.*s>", (int)qname.n, qname.p,
				(int)x->stack[x->depth - 1].n,
				x->stack[x->depth - 1].p);
	xml_split(qname, &prefix, &t.local);
	t.uri = xml_resolve(x, prefix, &known);
	t.depth = x->depth;
	ret = x->on_end ? x->on_end(x->ctx, &t) : 0;
	xml_pop_ns(x);
	x->depth--;
	return ret;
}

/* Character data between tags: only white space outside the root. */
static int xml_text(struct vd_xml *x)
{
	const char *lt = memchr(x->p, '<', (size_t)(x->end - x->p));
	struct vd_xml_str s = { x->p, (size_t)((lt ? lt : x->end) - x->p) };

	if (!x->depth) {
		for (size_t i = 0; i < s.n; i++)
			if (!xml_space(s.p[i]))
				return VD_XML_FAIL(x, s.p + i, -EUCLEAN, "text "
						"outside the root element (is "
						"this XML?)");
	} else {
		int ret = xml_decode(x, s, false, NULL, NULL);

		if (ret)
			return ret;
	}
	x->p = s.p + s.n;
	return 0;
}

/* Read the document in buf. With root_only, stop after the root's start
 * tag (the start callback sees it) and return 0. */
int vd_xml_parse(struct vd_xml *x, const char *buf, size_t len,
		     bool root_only)
{
	int ret = 0;

	x->buf = x->p = buf;
	x->end = buf + len;
	if (len >= 2 && ((buf[0] == '\xfe' && buf[1] == '\xff') ||
			 (buf[0] == '\xff' && buf[1] == '\xfe')))
		return VD_XML_FAIL(x, buf, -ENOTSUP, "UTF-16 is not supported");
	if (memchr(buf, '\0', len))
		return VD_XML_FAIL(x, (const char *)memchr(buf, '\0', len),
				-EUCLEAN, "NUL byte (not UTF-8 text)");
	if (xml_at(x, "\xef\xbb\xbf"))
		x->p += 3;

	/* Ends: every branch consumes at least one byte or fails. */
	while (!ret && x->p < x->end) {
		if (root_only && x->seen_root)
			return 0;
		if (*x->p != '<') {
			ret = xml_text(x);
		} else if (xml_at(x, "<?")) {
			ret = xml_skip_past(x, "?>", "processing instruction");
		} else if (xml_at(x, "<!--")) {
			x->p += 4;
			ret = xml_skip_past(x, "-->", "comment");
		} else if (xml_at(x, "<![CDATA[")) {
			if (!x->depth)
				return VD_XML_FAIL(x, x->p, -EUCLEAN, "CDATA "
						"outside the root element");
			ret = xml_skip_past(x, "]]>", "CDATA section");
		} else if (xml_at(x, "<!DOCTYPE")) {
			const char *gt = memchr(x->p, '>',
						(size_t)(x->end - x->p));
			const char *sq = memchr(x->p, '[',
						(size_t)(x->end - x->p));

			if (x->seen_root)
				return VD_XML_FAIL(x, x->p, -EUCLEAN, "DOCTYPE "
						"after the root element");
			if (sq && (!gt || sq < gt))
				return VD_XML_FAIL(x, x->p, -ENOTSUP, "a DOCTYPE "
						"with an internal subset "
						"(entity definitions) is not "
						"supported");
			ret = xml_skip_past(x, ">", "DOCTYPE");
		} else if (xml_at(x, "</")) {
			ret = xml_end_tag(x);
		} else {
			ret = xml_start_tag(x);
		}
	}
	if (ret)
		return ret;
	if (root_only && x->seen_root)
		return 0;
	if (!x->seen_root)
		return VD_XML_FAIL(x, x->end, -EUCLEAN, "no root element (is "
				"this XML?)");
	if (x->depth)
		return VD_XML_FAIL(x, x->end, -EUCLEAN, "ends inside <%.*s>",
				(int)x->stack[x->depth - 1].n,
				x->stack[x->depth - 1].p);
	return 0;
}

void vd_xml_done(struct vd_xml *x)
{
	while (x->n_ns) {
		x->n_ns--;
		free(x->ns[x->n_ns].uri);
	}
}

