/* XPRESS Huffman ("LZ77+Huffman", [MS-XCA] 2.1 and 2.2), one chunk.
 *
 * A block starts with 256 bytes: the 4-bit codeword lengths of 512
 * symbols (symbol 2k in the low nibble of byte k). Symbols 0..255 are
 * literals; symbol 256 + 16 * b + l is a match whose offset has b bits
 * below its leading 1 and whose length is l + 3, or, for l = 15, 15 + 3
 * plus a byte, or (byte 255) a 16-bit length, or (16-bit 0) a 32-bit
 * one. Bits come from little-endian 16-bit words, most significant bit
 * first; the extra length bytes sit between those words, in the order
 * [MS-XCA]'s decoder meets them: it keeps 16 to 32 bits ahead, reading
 * the next word as soon as fewer than 16 remain, so a byte read takes
 * the input just past the last word read.
 *
 * WOF's chunks are at most 16 KiB, one block: decoding stops when the
 * chunk is full (Windows may add an end-of-data symbol 256 after it;
 * it is not read). */
#include <errno.h>

#include "common/util.h"
#include "fsread/mscomp.h"

#define XP_SYMS 512u
#define XP_TABLE 256u /* bytes of codeword lengths */
#define XP_MAX_LEN 15u
#define XP_MIN_MATCH 3u

struct xp_in {
	const uint8_t *p;
	size_t n, pos;	 /* next unread byte */
	uint32_t bits;	 /* next bit at bit 31 */
	int extra;	 /* bits held beyond 16 ([MS-XCA]'s ExtraBitCount) */
	unsigned fake;	 /* words read past the end (as zeros) */
};

/* The next word, or a zero word once the input is used up: [MS-XCA]'s
 * decoder reads ahead, so a stream's last words are read before they
 * are needed. xp_done checks that none of the made-up bits were used. */
static uint32_t xp_word(struct xp_in *s)
{
	uint32_t w;

	if (s->fake || s->n - s->pos < 2) {
		s->fake++;
		return 0;
	}
	w = get_le16(s->p + s->pos);
	s->pos += 2;
	return w;
}

/* Drop k <= 16 bits; refill as [MS-XCA] does when fewer than 16 are
 * left. */
static void xp_drop(struct xp_in *s, unsigned k)
{
	if (!k)
		return;
	s->bits <<= k;
	s->extra -= (int)k;
	if (s->extra < 0) {
		s->bits |= xp_word(s) << -s->extra;
		s->extra += 16;
	}
}

/* A byte of the extra length: after every word read so far. */
static int xp_bytes(struct xp_in *s, unsigned k, uint32_t *v_r)
{
	if (s->fake || s->n - s->pos < k)
		return -1;
	*v_r = k == 1 ? s->p[s->pos] :
	       k == 2 ? get_le16(s->p + s->pos) : get_le32(s->p + s->pos);
	s->pos += k;
	return 0;
}

int vd_xpress_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t out_len, const char **why_r)
{
	uint8_t lens[XP_SYMS];
	struct vd_huff h;
	struct xp_in s;
	size_t o = 0;
	const char *why;

	if (!out_len || out_len > VD_XPRESS_MAX_OUT)
		return -EINVAL;
	why = "shorter than its 256-byte Huffman table";
	if (in_len < XP_TABLE)
		goto bad;
	for (unsigned i = 0; i < XP_TABLE; i++) {
		lens[2 * i] = in[i] & 15;
		lens[2 * i + 1] = in[i] >> 4;
	}
	why = "Huffman code lengths do not form a complete code";
	if (vd_huff_build(&h, lens, XP_SYMS, XP_MAX_LEN, false))
		goto bad;
	s = (struct xp_in){ .p = in, .n = in_len, .pos = XP_TABLE };
	s.bits = xp_word(&s) << 16;
	s.bits |= xp_word(&s);
	s.extra = 16;
	/* Ends: every pass writes at least one byte of out, or fails. */
	while (o < out_len) {
		unsigned len, nb;
		uint32_t mlen, off;
		int sym = vd_huff_decode(&h, s.bits >> 16, &len);

		why = "no codeword";
		if (sym < 0)
			goto bad;
		xp_drop(&s, len);
		if (sym < 256) {
			out[o++] = (uint8_t)sym;
			continue;
		}
		sym -= 256;
		mlen = (unsigned)sym & 15;
		nb = (unsigned)sym >> 4;
		why = "match length bytes past the end of the input";
		if (mlen == 15) {
			if (xp_bytes(&s, 1, &mlen))
				goto bad;
			if (mlen == 255) {
				if (xp_bytes(&s, 2, &mlen))
					goto bad;
				if (mlen == 0 && xp_bytes(&s, 4, &mlen))
					goto bad;
				why = "a long match length below 15";
				if (mlen < 15)
					goto bad;
			} else {
				mlen += 15;
			}
		}
		why = "a match longer than the chunk";
		if (mlen > out_len - o || out_len - o - mlen < XP_MIN_MATCH)
			goto bad;
		mlen += XP_MIN_MATCH;
		off = (1u << nb) | (nb ? s.bits >> (32 - nb) : 0);
		xp_drop(&s, nb);
		why = "a match offset before the chunk's start";
		if (off > o)
			goto bad;
		for (uint32_t i = 0; i < mlen; i++, o++)
			out[o] = out[o - off];
	}
	/* The bits held that were never used must include every made-up
	 * one: else the stream ended early. */
	why = "the input ends before the chunk does";
	if ((unsigned)(16 + s.extra) < 16u * s.fake)
		goto bad;
	return 0;
bad:
	if (why_r)
		*why_r = why;
	return -EUCLEAN;
}
