/* A tiny table-friendly unit test harness. Each test binary ends with
 * the runner's line "N passed, M failed" and exits non-zero on failure. */
#ifndef VD_UNIT_H
#define VD_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(name, cond)                                                  \
	do {                                                               \
		if (cond) {                                                \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			printf("FAIL %s (%s:%d: %s)\n", name, __FILE__,    \
			       __LINE__, #cond);                           \
		}                                                          \
	} while (0)

/* Expect message text containing needle. */
#define CHECK_MSG(name, msg, needle)                                       \
	do {                                                               \
		if (strstr(msg, needle)) {                                 \
			unit_passed++;                                     \
		} else {                                                   \
			unit_failed++;                                     \
			printf("FAIL %s: message '%s' lacks '%s'\n", name, \
			       msg, needle);                               \
		}                                                          \
	} while (0)

/* Whether n bytes at p all equal byte. */
static inline bool all_bytes(const uint8_t *p, size_t n, int byte)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != byte)
			return false;
	return true;
}

static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
