/* Shared helpers for every layer: checked ranges, endian reads, small
 * arithmetic. The only place range arithmetic on untrusted values is
 * written. */
#ifndef VD_UTIL_H
#define VD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Nanoseconds on the monotonic clock: for intervals, never for dates. */
static inline uint64_t vd_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* [off, off + len) lies within [0, limit). Subtraction on the trusted
 * side, so no overflow whatever off and len hold. */
static inline bool vd_range_ok(uint64_t off, uint64_t len, uint64_t limit)
{
	return off <= limit && len <= limit - off;
}

/* Reading ahead in steps: a reader is at pos in something that ends at
 * end, and what was asked for so far ends at *ahead (0 at first).
 * Returns how many bytes to ask for now, from *from_r (0: none), so that
 * the next window bytes (or all that is left) are asked for once each,
 * step or more at a time, and moves *ahead. */
static inline uint64_t vd_ahead_next(uint64_t *ahead, uint64_t pos,
				     uint64_t end, uint64_t window,
				     uint64_t step, uint64_t *from_r)
{
	uint64_t from, to;

	if (pos >= end)
		return 0;
	from = VD_MAX(*ahead, pos);
	to = pos + VD_MIN(end - pos, window);
	if (from - pos > window - step || to <= from)
		return 0;
	*ahead = to;
	*from_r = from;
	return to - from;
}

static inline bool vd_is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* A 16-byte UUID as 36 lower-case characters. guid: Microsoft's layout
 * (GPT, ...), whose first three fields are stored little-endian; else
 * the bytes in order (RFC 4122 as ext and VHD store it). */
static inline void vd_uuid_str(const uint8_t *u, bool guid, char out[37])
{
	static const uint8_t plain[16] = { 0, 1, 2, 3, 4, 5, 6, 7,
					   8, 9, 10, 11, 12, 13, 14, 15 };
	static const uint8_t ms[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					8, 9, 10, 11, 12, 13, 14, 15 };
	const uint8_t *o = guid ? ms : plain;
	char *p = out;

	for (unsigned i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		snprintf(p, 3, "%02x", u[o[i]]);
		p += 2;
	}
}

/* Whether a relative name an image or manifest holds stays inside the
 * folder it is relative to: not empty, not absolute, no ".." component. */
static inline bool vd_name_inside(const char *name)
{
	const char *p = name;

	if (!name[0] || name[0] == '/')
		return false;
	/* Ends: p moves past one component per step. */
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

#endif
