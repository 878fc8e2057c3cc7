/* LZX as WIM archives and WOF use it, one chunk of at most 32 KiB: the
 * LZX of [MS-PATCH] (LZX DELTA) without its extensions, with a 32 KiB
 * window that is the chunk itself. What differs from the cabinet LZX:
 * no E8 header bit (call translation is always undone, with the file
 * size fixed at 12000000), and a block's size is one bit (1: 32768) or
 * 16 bits.
 *
 * Bits come from little-endian 16-bit words, most significant bit
 * first. The chunk is blocks: 3 bits of type (1 verbatim, 2 aligned
 * offset, 3 uncompressed), the size, then
 *  - aligned: 8 three-bit lengths of the aligned-offset code, then as
 *    verbatim;
 *  - verbatim: the main code's lengths (256 literals, then 8 length
 *    headers for each of 30 offset slots) and the length code's (249),
 *    each part sent as differences from the previous block's lengths
 *    (0 at the chunk's start) through a 20-symbol pretree; then
 *    literals and matches;
 *  - uncompressed: the bit reader is aligned to its word, the three
 *    recent offsets follow as le32 values, then the bytes themselves
 *    (and one byte of padding when their count is odd).
 *
 * The alignment before an uncompressed block drops what the reader
 * holds ahead: this reader holds what wimlib's and libmspack's readers
 * hold at that point, because it reads a word at the same moments --
 * when fewer bits are held than the next item may need (a code's
 * longest codeword, or the raw bits asked for). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/mscomp.h"

#define LX_CHARS 256u
#define LX_HEADERS 8u	  /* length headers per offset slot */
#define LX_SLOTS 30u	  /* offset slots of a 32 KiB window */
#define LX_MAIN (LX_CHARS + LX_HEADERS * LX_SLOTS)
#define LX_LENS 249u	  /* length code: match lengths 9..257 */
#define LX_ALIGNED 8u
#define LX_PRE 20u
#define LX_MIN_MATCH 2u
#define LX_DEFAULT_BLOCK 32768u
#define LX_E8_SIZE 12000000 /* WIM's fixed translation size */

enum { LX_VERBATIM = 1, LX_ALIGNED_BLOCK = 2, LX_STORED = 3 };

struct lx_in {
	const uint8_t *p;
	size_t n, pos;	 /* next unread byte */
	uint32_t bits;	 /* next bit at bit 31 */
	unsigned nb;	 /* bits held */
	unsigned fake;	 /* words read past the end (as zeros) */
};

/* Hold at least k <= 16 bits. Past the end of the input the words are
 * zeros, counted: lzx_decode checks that none of them was used. */
static void lx_need(struct lx_in *s, unsigned k)
{
	uint32_t w = 0;

	if (s->nb >= k)
		return;
	if (!s->fake && s->n - s->pos >= 2) {
		w = get_le16(s->p + s->pos);
		s->pos += 2;
	} else {
		s->fake++;
	}
	s->bits |= w << (16 - s->nb);
	s->nb += 16;
}

/* Take k <= nb bits. */
static uint32_t lx_take(struct lx_in *s, unsigned k)
{
	uint32_t v;

	if (!k)
		return 0;
	v = s->bits >> (32 - k);
	s->bits <<= k;
	s->nb -= k;
	return v;
}

static uint32_t lx_bits(struct lx_in *s, unsigned k)
{
	lx_need(s, k);
	return lx_take(s, k);
}

static int lx_sym(struct lx_in *s, const struct vd_huff *h)
{
	unsigned len;
	int sym;

	lx_need(s, h->max_len);
	sym = vd_huff_decode(h, s->bits >> 16, &len);
	if (sym >= 0)
		lx_take(s, len);
	return sym;
}

/* n codeword lengths, as differences from lens[], through a pretree. */
static int lx_lens(struct lx_in *s, uint8_t *lens, unsigned n,
		   const char **why)
{
	uint8_t pl[LX_PRE];
	struct vd_huff pre;
	unsigned i = 0;

	for (unsigned k = 0; k < LX_PRE; k++)
		pl[k] = (uint8_t)lx_bits(s, 4);
	*why = "pretree lengths do not form a complete code";
	if (vd_huff_build(&pre, pl, LX_PRE, 15, false))
		return -1;
	*why = "bad pretree symbol";
	/* Ends: each pass sets at least one length, or fails. Runs past n
	 * are cut at n. */
	while (i < n) {
		unsigned run;
		uint8_t v;
		int p = lx_sym(s, &pre);

		if (p < 0)
			return -1;
		if (p <= 16) {
			lens[i] = (uint8_t)((lens[i] + 17 - p) % 17);
			i++;
			continue;
		}
		if (p == 17) {
			run = 4 + lx_bits(s, 4);
			v = 0;
		} else if (p == 18) {
			run = 20 + lx_bits(s, 5);
			v = 0;
		} else {
			run = 4 + lx_bits(s, 1);
			p = lx_sym(s, &pre);
			if (p < 0 || p > 17)
				return -1;
			v = (uint8_t)((lens[i] + 17 - p) % 17);
		}
		for (; run && i < n; run--)
			lens[i++] = v;
	}
	return 0;
}

/* Offset slot s (>= 3): its extra bits and its first offset. */
static unsigned lx_extra(unsigned slot)
{
	return slot < 4 ? 0 : slot / 2 - 1;
}

static uint32_t lx_base(unsigned slot)
{
	/* Formatted offsets: slot < 4 is itself; then (2 or 3) << extra.
	 * The real offset is the formatted one less 2 (slots 0..2 name the
	 * recent offsets). */
	return slot < 4 ? slot : (2u | (slot & 1)) << lx_extra(slot);
}

struct lx_state {
	uint8_t main_lens[LX_MAIN];
	uint8_t len_lens[LX_LENS];
	struct vd_huff main, len, aligned;
	uint32_t r[3];
};

static int lx_block(struct lx_in *s, struct lx_state *st, bool aligned,
		    uint8_t *out, size_t o, size_t end, const char **why)
{
	/* Ends: every pass writes at least one byte up to end, or fails. */
	while (o < end) {
		uint32_t mlen, off;
		unsigned slot, hdr;
		int sym = lx_sym(s, &st->main);

		*why = "no codeword in the main code";
		if (sym < 0)
			return -1;
		if (sym < (int)LX_CHARS) {
			out[o++] = (uint8_t)sym;
			continue;
		}
		hdr = (unsigned)sym - LX_CHARS;
		slot = hdr / LX_HEADERS;
		mlen = hdr % LX_HEADERS + LX_MIN_MATCH;
		if (hdr % LX_HEADERS == LX_HEADERS - 1) {
			int ls = lx_sym(s, &st->len);

			*why = "no codeword in the length code";
			if (ls < 0)
				return -1;
			mlen += (uint32_t)ls;
		}
		if (slot < 3) {
			off = st->r[slot];
			st->r[slot] = st->r[0];
		} else {
			unsigned eb = lx_extra(slot);
			uint32_t v;

			if (aligned && eb >= 3) {
				int a;

				v = lx_bits(s, eb - 3) << 3;
				a = lx_sym(s, &st->aligned);
				*why = "no codeword in the aligned code";
				if (a < 0)
					return -1;
				v |= (uint32_t)a;
			} else {
				v = lx_bits(s, eb);
			}
			off = lx_base(slot) + v - 2;
			st->r[2] = st->r[1];
			st->r[1] = st->r[0];
		}
		st->r[0] = off;
		*why = "a match offset before the chunk's start";
		if (!off || off > o)
			return -1;
		*why = "a match past the block's end";
		if (mlen > end - o)
			return -1;
		for (uint32_t i = 0; i < mlen; i++, o++)
			out[o] = out[o - off];
	}
	return 0;
}

/* Undo the E8 translation: in the chunk's first size - 10 bytes, the
 * 4 bytes after each E8 byte (not itself inside such 4 bytes) that hold
 * an absolute target in [-pos, 12000000) go back to relative. */
static void lx_e8(uint8_t *b, size_t size)
{
	if (size <= 10)
		return;
	for (size_t i = 0; i < size - 10;) {
		int32_t abs, rel;
		uint8_t *e = memchr(b + i, 0xE8, size - 10 - i);

		if (!e)
			break;
		i = (size_t)(e - b);
		abs = (int32_t)get_le32(b + i + 1);
		if (abs >= 0 && abs < LX_E8_SIZE)
			rel = abs - (int32_t)i;
		else if (abs < 0 && abs >= -(int32_t)i)
			rel = abs + LX_E8_SIZE;
		else
			rel = abs;
		b[i + 1] = (uint8_t)rel;
		b[i + 2] = (uint8_t)((uint32_t)rel >> 8);
		b[i + 3] = (uint8_t)((uint32_t)rel >> 16);
		b[i + 4] = (uint8_t)((uint32_t)rel >> 24);
		i += 5;
	}
}

int vd_lzx_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		  size_t out_len, const char **why_r)
{
	struct lx_state *st;
	struct lx_in s = { .p = in, .n = in_len };
	const char *why = "";
	size_t o = 0;
	int ret = -EUCLEAN;

	if (!out_len || out_len > VD_LZX_MAX_OUT)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->r[0] = st->r[1] = st->r[2] = 1;
	/* Ends: every block is at least one byte of out. */
	while (o < out_len) {
		unsigned type;
		uint32_t size;

		lx_need(&s, 4);
		type = lx_take(&s, 3);
		size = lx_take(&s, 1) ? LX_DEFAULT_BLOCK : lx_bits(&s, 16);
		why = "a block of no bytes, or past the chunk's end";
		if (!size || size > out_len - o)
			goto out;
		if (type == LX_STORED) {
			lx_need(&s, 1);
			s.bits = 0;
			s.nb = 0;
			why = "an uncompressed block past the end of the input";
			if (s.fake || s.n - s.pos < 12 ||
			    s.n - s.pos - 12 < size)
				goto out;
			why = "a recent offset of 0 in an uncompressed block";
			for (unsigned k = 0; k < 3; k++) {
				st->r[k] = get_le32(in + s.pos + 4 * k);
				if (!st->r[k])
					goto out;
			}
			s.pos += 12;
			memcpy(out + o, in + s.pos, size);
			s.pos += size;
			/* The padding byte may be left out at the end. */
			if ((size & 1) && s.pos < s.n)
				s.pos++;
			o += size;
			continue;
		}
		why = "an unknown block type";
		if (type != LX_VERBATIM && type != LX_ALIGNED_BLOCK)
			goto out;
		if (type == LX_ALIGNED_BLOCK) {
			uint8_t al[LX_ALIGNED];

			for (unsigned k = 0; k < LX_ALIGNED; k++)
				al[k] = (uint8_t)lx_bits(&s, 3);
			why = "aligned-offset code lengths do not form a code";
			if (vd_huff_build(&st->aligned, al, LX_ALIGNED, 7,
					  true))
				goto out;
		}
		if (lx_lens(&s, st->main_lens, LX_CHARS, &why) ||
		    lx_lens(&s, st->main_lens + LX_CHARS, LX_MAIN - LX_CHARS,
			    &why) ||
		    lx_lens(&s, st->len_lens, LX_LENS, &why))
			goto out;
		why = "main code lengths do not form a code";
		if (vd_huff_build(&st->main, st->main_lens, LX_MAIN, 16, true))
			goto out;
		why = "length code lengths do not form a code";
		if (vd_huff_build(&st->len, st->len_lens, LX_LENS, 16, true))
			goto out;
		if (lx_block(&s, st, type == LX_ALIGNED_BLOCK, out, o, o + size,
			     &why))
			goto out;
		o += size;
	}
	why = "the input ends before the chunk does";
	if (s.nb < 16u * s.fake)
		goto out;
	lx_e8(out, out_len);
	ret = 0;
out:
	free(st);
	if (ret && why_r)
		*why_r = why;
	return ret;
}
