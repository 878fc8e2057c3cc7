/* SHA-1 and SHA-256 as FIPS 180-4 specifies them: section 5.1.1
 * (padding), 6.1.2 (the SHA-1 computation), 6.2.2 (SHA-256), 4.1.1 and
 * 4.1.2 (the functions), 4.2.1 and 4.2.2 (the constants), 5.3.1 and
 * 5.3.3 (the initial hash values). Words are big-endian. */
#include <string.h>

#include "common/sha.h"

static inline uint32_t sha_rotl(uint32_t x, unsigned n)
{
	return x << n | x >> (32 - n);
}

static inline uint32_t sha_rotr(uint32_t x, unsigned n)
{
	return x >> n | x << (32 - n);
}

static inline uint32_t sha_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t sha_ch(uint32_t x, uint32_t y, uint32_t z)
{
	return (x & y) ^ (~x & z);
}

static inline uint32_t sha_maj(uint32_t x, uint32_t y, uint32_t z)
{
	return (x & y) ^ (x & z) ^ (y & z);
}

/* FIPS 180-4 6.1.2: one 512-bit block. */
static void sha1_block(uint32_t h[5], const uint8_t *m)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;

	for (unsigned i = 0; i < 16; i++)
		w[i] = sha_be32(m + 4 * i);
	for (unsigned i = 16; i < 80; i++)
		w[i] = sha_rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	for (unsigned i = 0; i < 80; i++) {
		if (i < 20) {
			f = sha_ch(b, c, d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = sha_maj(b, c, d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = sha_rotl(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = sha_rotl(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the
 * cube roots of the first 64 primes. */
static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b,
	0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
	0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7,
	0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152,
	0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
	0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
	0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
	0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* FIPS 180-4 6.2.2: one 512-bit block. */
static void sha256_block(uint32_t h[8], const uint8_t *m)
{
	uint32_t w[64], v[8], t1, t2;

	for (unsigned i = 0; i < 16; i++)
		w[i] = sha_be32(m + 4 * i);
	for (unsigned i = 16; i < 64; i++) {
		uint32_t s0 = sha_rotr(w[i - 15], 7) ^
			      sha_rotr(w[i - 15], 18) ^ w[i - 15] >> 3;
		uint32_t s1 = sha_rotr(w[i - 2], 17) ^
			      sha_rotr(w[i - 2], 19) ^ w[i - 2] >> 10;

		w[i] = s1 + w[i - 7] + s0 + w[i - 16];
	}
	memcpy(v, h, sizeof(v));
	/* v[0..7] are a..h of the standard. */
	for (unsigned i = 0; i < 64; i++) {
		uint32_t S1 = sha_rotr(v[4], 6) ^ sha_rotr(v[4], 11) ^
			      sha_rotr(v[4], 25);
		uint32_t S0 = sha_rotr(v[0], 2) ^ sha_rotr(v[0], 13) ^
			      sha_rotr(v[0], 22);

		t1 = v[7] + S1 + sha_ch(v[4], v[5], v[6]) + sha256_k[i] + w[i];
		t2 = S0 + sha_maj(v[0], v[1], v[2]);
		v[7] = v[6];
		v[6] = v[5];
		v[5] = v[4];
		v[4] = v[3] + t1;
		v[3] = v[2];
		v[2] = v[1];
		v[1] = v[0];
		v[0] = t1 + t2;
	}
	for (unsigned i = 0; i < 8; i++)
		h[i] += v[i];
}

static void sha_block(struct vd_sha *s, const uint8_t *m)
{
	if (s->alg == VD_SHA1)
		sha1_block(s->h, m);
	else
		sha256_block(s->h, m);
}

void vd_sha_init(struct vd_sha *s, enum vd_sha_alg alg)
{
	/* FIPS 180-4 5.3.1 and 5.3.3. */
	static const uint32_t h1[5] = { 0x67452301, 0xefcdab89, 0x98badcfe,
					0x10325476, 0xc3d2e1f0 };
	static const uint32_t h256[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
					  0xa54ff53a, 0x510e527f, 0x9b05688c,
					  0x1f83d9ab, 0x5be0cd19 };

	memset(s, 0, sizeof(*s));
	s->alg = alg;
	if (alg == VD_SHA1)
		memcpy(s->h, h1, sizeof(h1));
	else
		memcpy(s->h, h256, sizeof(h256));
}

void vd_sha_update(struct vd_sha *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->bytes += len;
	if (s->fill) {
		size_t n = 64 - s->fill < len ? 64 - s->fill : len;

		memcpy(s->block + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill < 64)
			return;
		sha_block(s, s->block);
		s->fill = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha_block(s, p);
	memcpy(s->block, p, len);
	s->fill = len;
}

void vd_sha_final(struct vd_sha *s, uint8_t *out)
{
	/* FIPS 180-4 5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the
	 * length in bits as a 64-bit big-endian number. */
	uint64_t bits = s->bytes * 8;
	unsigned words = s->alg == VD_SHA1 ? 5 : 8;

	s->block[s->fill++] = 0x80;
	if (s->fill > 56) {
		memset(s->block + s->fill, 0, 64 - s->fill);
		sha_block(s, s->block);
		s->fill = 0;
	}
	memset(s->block + s->fill, 0, 56 - s->fill);
	for (unsigned i = 0; i < 8; i++)
		s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_block(s, s->block);
	for (unsigned i = 0; i < words; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
	s->fill = 0;
}

size_t vd_sha_len(enum vd_sha_alg alg)
{
	return alg == VD_SHA1 ? VD_SHA1_LEN : VD_SHA256_LEN;
}

const char *vd_sha_name(enum vd_sha_alg alg)
{
	return alg == VD_SHA1 ? "SHA1" : "SHA256";
}
