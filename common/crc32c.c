#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "common/util.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t crc_tab[8][256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
					crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* Slicing by 8. */
uint32_t vd_crc32c_sw(uint32_t c, const void *b, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = b;

	pthread_once(&once, crc_init);
	while (n >= 8) {
		uint32_t lo = c ^ get_le32(p), hi = get_le32(p + 4);

		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
/* The crc32 instruction computes exactly this CRC (reflected
 * Castagnoli), eight bytes at a time. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c,
							  const void *b,
							  size_t n)
{
	const uint8_t *p = b;
	uint64_t c64 = c;

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = _mm_crc32_u64(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}

uint32_t vd_crc32c(uint32_t c, const void *b, size_t n)
{
	static int hw = -1; /* unknown yet; a race only repeats the test */
	int h = __atomic_load_n(&hw, __ATOMIC_RELAXED);

	if (h < 0) {
		h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&hw, h, __ATOMIC_RELAXED);
	}
	return h ? crc_hw(c, b, n) : vd_crc32c_sw(c, b, n);
}
#else
uint32_t vd_crc32c(uint32_t c, const void *b, size_t n)
{
	return vd_crc32c_sw(c, b, n);
}
#endif
