/* LVM2 metadata text: the config format (lvm-text.c reads the VG out
 * of the tree made here).
 *
 * The text (LVM2's lib/config and lib/format_text/export.c):
 *
 *   vg0 {                          # a section
 *       id = "Q8d3rk-..."          # key = value
 *       seqno = 7                  # integers (decimal, maybe negative)
 *       status = ["READ", "WRITE"] # lists of strings and integers
 *       physical_volumes { pv0 { ... } }
 *       logical_volumes { lv0 { segment1 { ... } } }
 *   }
 *   contents = "Text Format Volume Group"
 *
 * Strings are in double quotes with \" and \\ escaped; '#' starts a
 * comment. Whoever made the image wrote this text, so the parser has
 * hard limits (the text's size, a line's length, nesting depth, the
 * count of nodes) and uses an explicit stack, never recursion. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-internal.h"

/* ------------------------------------------------------------ parser */

struct cfg_parse {
	const char *t;
	size_t len, pos;
	unsigned line;
	struct lvm_cfg *c;
	uint32_t cap;
	size_t arena_len, arena_cap;
	struct vd_err *e;
};

static int cfg_err(struct cfg_parse *p, const char *what)
{
	return vd_fail(p->e, -EUCLEAN, "LVM metadata: line %u: %s", p->line,
		       what);
}

/* Skips blanks, newlines and comments. */
static void cfg_skip(struct cfg_parse *p)
{
	while (p->pos < p->len) {
		char ch = p->t[p->pos];

		if (ch == '\n') {
			p->line++;
			p->pos++;
		} else if (ch == ' ' || ch == '\t' || ch == '\r' ||
			   ch == '\f' || ch == '\v') {
			p->pos++;
		} else if (ch == '#') {
			while (p->pos < p->len && p->t[p->pos] != '\n')
				p->pos++;
		} else {
			break;
		}
	}
}

static bool cfg_key_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '+' ||
	       ch == '.' || ch == '-';
}

static int cfg_node(struct cfg_parse *p, enum lvm_cfg_type type,
		    const char *key, uint32_t *idx_r)
{
	struct lvm_cfg *c = p->c;

	if (c->n == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 256;
		struct lvm_cfg_node *n;

		if (p->cap >= LVM_CFG_MAX_NODES)
			return cfg_err(p, "more keys and values than the "
					  "parser's limit (262144)");
		cap = VD_MIN(cap, (uint32_t)LVM_CFG_MAX_NODES);
		n = realloc(c->node, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->node = n;
		p->cap = cap;
	}
	memset(&c->node[c->n], 0, sizeof(c->node[0]));
	c->node[c->n].type = type;
	c->node[c->n].key = key;
	*idx_r = c->n++;
	return 0;
}

/* Copies n bytes into the arena as a string; the arena holds one byte
 * more than the text, and every copy comes from a distinct stretch of
 * the text followed by at least one byte not copied, so it fits. */
static char *cfg_arena(struct cfg_parse *p, const char *s, size_t n)
{
	char *out;

	if (n >= p->arena_cap - p->arena_len)
		return NULL;
	out = p->c->arena + p->arena_len;
	memcpy(out, s, n);
	out[n] = '\0';
	p->arena_len += n + 1;
	return out;
}

static int cfg_key(struct cfg_parse *p, const char **key_r)
{
	size_t start = p->pos;

	while (p->pos < p->len && cfg_key_char(p->t[p->pos]))
		p->pos++;
	if (p->pos == start)
		return cfg_err(p, "expected a name");
	*key_r = cfg_arena(p, p->t + start, p->pos - start);
	return *key_r ? 0 : cfg_err(p, "text too long for its tokens");
}

/* A scalar value at pos into node idx. */
static int cfg_scalar(struct cfg_parse *p, uint32_t idx)
{
	struct lvm_cfg_node *n = &p->c->node[idx];
	char ch = p->t[p->pos];

	if (ch == '"') {
		char *out = p->c->arena + p->arena_len, *o = out;
		size_t room = p->arena_cap - p->arena_len;

		p->pos++;
		/* Ends: pos moves forward every step, to the closing
		 * quote or the text's end. */
		while (p->pos < p->len && p->t[p->pos] != '"') {
			if (p->t[p->pos] == '\\' && p->pos + 1 < p->len)
				p->pos++;
			if (p->t[p->pos] == '\n')
				p->line++;
			if ((size_t)(o - out) + 1 >= room)
				return cfg_err(p, "text too long for its "
						  "tokens");
			*o++ = p->t[p->pos++];
		}
		if (p->pos >= p->len)
			return cfg_err(p, "a string is not closed");
		p->pos++;
		*o = '\0';
		p->arena_len += (size_t)(o - out) + 1;
		n->type = LVM_CFG_STR;
		n->s = out;
		return 0;
	}
	if (ch == '-' || (ch >= '0' && ch <= '9')) {
		bool neg = ch == '-';
		uint64_t v = 0;
		size_t digits = 0;

		if (neg)
			p->pos++;
		while (p->pos < p->len && p->t[p->pos] >= '0' &&
		       p->t[p->pos] <= '9') {
			unsigned d = (unsigned)(p->t[p->pos] - '0');

			if (v > (UINT64_MAX - d) / 10 ||
			    v * 10 + d > (uint64_t)INT64_MAX)
				return cfg_err(p, "an integer out of range");
			v = v * 10 + d;
			p->pos++;
			digits++;
		}
		if (!digits)
			return cfg_err(p, "a '-' without digits");
		n->type = LVM_CFG_INT;
		n->i = neg ? -(int64_t)v : (int64_t)v;
		if (p->pos < p->len && p->t[p->pos] == '.') {
			/* LVM writes floats for some settings; the VG uses
			 * none of them. */
			p->pos++;
			while (p->pos < p->len && p->t[p->pos] >= '0' &&
			       p->t[p->pos] <= '9')
				p->pos++;
			n->type = LVM_CFG_FLOAT;
		}
		return 0;
	}
	return cfg_err(p, "expected a string, a number or a list");
}

/* Appends node idx to the children of par, after last. */
static void cfg_link(struct lvm_cfg *c, uint32_t par, uint32_t *last,
		     uint32_t idx)
{
	if (*last)
		c->node[*last].next = idx;
	else
		c->node[par].child = idx;
	*last = idx;
}

static int cfg_value(struct cfg_parse *p, uint32_t idx)
{
	uint32_t last = 0, v;
	int ret;

	if (p->pos >= p->len)
		return cfg_err(p, "a value is missing at the end");
	if (p->t[p->pos] != '[')
		return cfg_scalar(p, idx);
	p->c->node[idx].type = LVM_CFG_LIST;
	p->pos++;
	/* Ends: each step takes a value and a comma, or the ']'. Lists
	 * do not nest in LVM's metadata. */
	for (;;) {
		cfg_skip(p);
		if (p->pos >= p->len)
			return cfg_err(p, "a list is not closed");
		if (p->t[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		ret = cfg_node(p, LVM_CFG_INT, NULL, &v);
		if (!ret)
			ret = cfg_scalar(p, v);
		if (ret < 0)
			return ret;
		cfg_link(p->c, idx, &last, v);
		cfg_skip(p);
		if (p->pos < p->len && p->t[p->pos] == ',')
			p->pos++;
		else if (p->pos < p->len && p->t[p->pos] != ']')
			return cfg_err(p, "expected ',' or ']' in a list");
	}
}

int lvm_cfg_parse(const char *text, size_t len, struct lvm_cfg *c,
		  struct vd_err *e)
{
	struct cfg_parse p = { .t = text, .len = len, .line = 1, .c = c,
			       .e = e };
	/* The open sections, root first, and each one's last child. */
	uint32_t stack[LVM_CFG_MAX_DEPTH + 1], last[LVM_CFG_MAX_DEPTH + 1];
	unsigned depth = 0, line = 1;
	size_t line_start = 0;
	uint32_t idx;
	int ret;

	memset(c, 0, sizeof(*c));
	if (len > LVM_TEXT_MAX)
		return vd_fail(e, -EUCLEAN,
			       "LVM metadata: %zu bytes of text (at most %u)",
			       len, LVM_TEXT_MAX);
	for (size_t i = 0; i <= len; i++) {
		if (i == len || text[i] == '\n') {
			if (i - line_start > LVM_CFG_MAX_LINE)
				return vd_fail(e, -EUCLEAN,
					       "LVM metadata: line %u is "
					       "longer than %u bytes", line,
					       LVM_CFG_MAX_LINE);
			line++;
			line_start = i + 1;
		} else if (!text[i]) {
			return vd_fail(e, -EUCLEAN,
				       "LVM metadata: line %u holds a NUL "
				       "byte", line);
		}
	}
	p.arena_cap = len + 2;
	c->arena = malloc(p.arena_cap);
	if (!c->arena)
		return -ENOMEM;
	ret = cfg_node(&p, LVM_CFG_SECTION, "", &idx);
	if (ret < 0)
		goto fail;
	stack[0] = 0;
	last[0] = 0;
	/* Ends: every step consumes at least one byte or fails. */
	for (;;) {
		const char *key;

		cfg_skip(&p);
		if (p.pos >= p.len) {
			if (depth) {
				ret = cfg_err(&p, "a section is not closed "
						  "at the end of the text");
				goto fail;
			}
			return 0;
		}
		if (p.t[p.pos] == '}') {
			if (!depth) {
				ret = cfg_err(&p, "'}' without a section");
				goto fail;
			}
			depth--;
			p.pos++;
			continue;
		}
		ret = cfg_key(&p, &key);
		if (ret < 0)
			goto fail;
		cfg_skip(&p);
		if (p.pos < p.len && p.t[p.pos] == '{') {
			if (depth == LVM_CFG_MAX_DEPTH) {
				ret = cfg_err(&p, "sections nested deeper "
						  "than 16");
				goto fail;
			}
			p.pos++;
			ret = cfg_node(&p, LVM_CFG_SECTION, key, &idx);
			if (ret < 0)
				goto fail;
			cfg_link(c, stack[depth], &last[depth], idx);
			depth++;
			stack[depth] = idx;
			last[depth] = 0;
			continue;
		}
		if (p.pos >= p.len || p.t[p.pos] != '=') {
			ret = cfg_err(&p, "expected '=' or '{' after a name");
			goto fail;
		}
		p.pos++;
		cfg_skip(&p);
		ret = cfg_node(&p, LVM_CFG_INT, key, &idx);
		if (!ret)
			ret = cfg_value(&p, idx);
		if (ret < 0)
			goto fail;
		cfg_link(c, stack[depth], &last[depth], idx);
	}
fail:
	lvm_cfg_free(c);
	return ret;
}

void lvm_cfg_free(struct lvm_cfg *c)
{
	free(c->node);
	free(c->arena);
	memset(c, 0, sizeof(*c));
}

const struct lvm_cfg_node *lvm_cfg_get(const struct lvm_cfg *c,
				       const struct lvm_cfg_node *sec,
				       const char *key)
{
	uint32_t i;

	if (!sec)
		sec = &c->node[0];
	if (sec->type != LVM_CFG_SECTION)
		return NULL;
	/* Ends: indexes only grow along a chain (children are made after
	 * their parent, siblings in order). */
	for (i = sec->child; i; i = c->node[i].next)
		if (c->node[i].key && !strcmp(c->node[i].key, key))
			return &c->node[i];
	return NULL;
}

