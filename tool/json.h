/* A small JSON writer for vdtool's reports: objects and arrays nested to
 * a fixed depth, indented by four spaces as qemu-img prints them.
 *
 * Strings are escaped so that the output is always valid JSON whatever
 * bytes a guest stored: '"', '\\' and control characters are escaped,
 * valid UTF-8 passes through, and each byte that is not part of a valid
 * UTF-8 sequence becomes U+FFFD. */
#ifndef VDT_JSON_H
#define VDT_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VDT_JSON_MAX_DEPTH 16

struct vdt_json {
	FILE *out;
	unsigned depth;
	bool first[VDT_JSON_MAX_DEPTH]; /* nothing written yet at depth */
};

void vdt_json_init(struct vdt_json *j, FILE *out);
/* key is NULL for a value inside an array (or the outermost value). */
void vdt_json_obj(struct vdt_json *j, const char *key);
void vdt_json_arr(struct vdt_json *j, const char *key);
void vdt_json_end_obj(struct vdt_json *j);
void vdt_json_end_arr(struct vdt_json *j);
/* s NULL writes null. */
void vdt_json_str(struct vdt_json *j, const char *key, const char *s);
void vdt_json_u64(struct vdt_json *j, const char *key, uint64_t v);
void vdt_json_i64(struct vdt_json *j, const char *key, int64_t v);
void vdt_json_bool(struct vdt_json *j, const char *key, bool v);
void vdt_json_null(struct vdt_json *j, const char *key);

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when
 * the byte at s does not start one: overlong forms, surrogates and code
 * points past U+10FFFF are invalid. */
size_t vdt_utf8_len(const unsigned char *s, size_t n);

#endif
