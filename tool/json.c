/* The JSON writer of json.h. */
#include <inttypes.h>
#include <string.h>

#include "tool/json.h"

void vdt_json_init(struct vdt_json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->first[0] = true;
}

static void json_indent(struct vdt_json *j)
{
	for (unsigned i = 0; i < j->depth; i++)
		fputs("    ", j->out);
}

size_t vdt_utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0; /* a continuation byte, 0xc0/0xc1, or 0xf5.. */
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static void json_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', out);
	/* Ends: each step consumes at least one byte. */
	while (n) {
		size_t len = vdt_utf8_len(s, n);

		if (!len) {
			fputs("\\ufffd", out);
			len = 1;
		} else if (*s == '"' || *s == '\\') {
			fputc('\\', out);
			fputc(*s, out);
		} else if (*s == '\n') {
			fputs("\\n", out);
		} else if (*s == '\t') {
			fputs("\\t", out);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(out, "\\u%04x", *s);
		} else {
			fwrite(s, 1, len, out);
		}
		s += len;
		n -= len;
	}
	fputc('"', out);
}

/* Separator, newline and indentation before a member, then its key. */
static void json_key(struct vdt_json *j, const char *key)
{
	if (j->depth) {
		fputs(j->first[j->depth] ? "\n" : ",\n", j->out);
		json_indent(j);
	}
	j->first[j->depth] = false;
	if (key) {
		json_string(j->out, key);
		fputs(": ", j->out);
	}
}

static void json_open(struct vdt_json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->out);
	if (j->depth + 1 < VDT_JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct vdt_json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth)
		j->depth--;
	if (!empty) {
		fputc('\n', j->out);
		json_indent(j);
	}
	fputc(c, j->out);
	if (!j->depth)
		fputc('\n', j->out);
}

void vdt_json_obj(struct vdt_json *j, const char *key)
{
	json_open(j, key, '{');
}

void vdt_json_arr(struct vdt_json *j, const char *key)
{
	json_open(j, key, '[');
}

void vdt_json_end_obj(struct vdt_json *j)
{
	json_close(j, '}');
}

void vdt_json_end_arr(struct vdt_json *j)
{
	json_close(j, ']');
}

void vdt_json_str(struct vdt_json *j, const char *key, const char *s)
{
	json_key(j, key);
	if (s)
		json_string(j->out, s);
	else
		fputs("null", j->out);
}

void vdt_json_u64(struct vdt_json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->out, "%" PRIu64, v);
}

void vdt_json_i64(struct vdt_json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->out, "%" PRId64, v);
}

void vdt_json_bool(struct vdt_json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->out);
}

void vdt_json_null(struct vdt_json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->out);
}
