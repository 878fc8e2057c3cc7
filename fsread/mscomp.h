/* Microsoft's chunk compression formats, as Windows' Compact OS (WOF,
 * the WofCompressedData stream of an NTFS file) and WIM archives store
 * them: XPRESS Huffman ([MS-XCA] 2.1, 2.2: "LZ77+Huffman") and LZX as
 * WIM uses it ([MS-PATCH] LZX DELTA without its extensions: a 32 KiB
 * window that is the chunk, E8 call translation always on with the
 * fixed file size 12000000, the block size as one flag bit or 16 bits).
 *
 * Each call decodes one chunk, independent of every other, into out
 * (exactly out_len bytes). The input is hostile: every read stays inside
 * in, every write inside out, every loop makes progress towards filling
 * out; a stream that is corrupt, truncated, or decodes to more or fewer
 * bytes is an error, never a partly filled or zero-padded chunk. */
#ifndef VD_MSCOMP_H
#define VD_MSCOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest chunk each decoder takes: XPRESS reads one Huffman block of
 * 64 KiB ([MS-XCA] 2.2.4; WOF's chunks are 4, 8 or 16 KiB), LZX a
 * chunk of its 32 KiB window. */
#define VD_XPRESS_MAX_OUT 65536u
#define VD_LZX_MAX_OUT 32768u

/* 0, or -EUCLEAN (*why_r, when given, says what was wrong; a static
 * string), or -EINVAL for an out_len outside 1..MAX. */
int vd_xpress_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t out_len, const char **why_r);
int vd_lzx_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		  size_t out_len, const char **why_r);

/* ---- canonical Huffman codes, shared by both (mscomp.c) ----
 *
 * Both formats read codewords most significant bit first, assign them
 * canonically (shorter codes first, then by symbol value) and allow
 * only complete codes; LZX also allows an empty one (all lengths 0: a
 * code the block never uses). */
#define VD_HUFF_FAST 10	      /* bits resolved by one table lookup */
#define VD_HUFF_MAX_SYMS 512u /* XPRESS: 512; LZX main code: 496 */
#define VD_HUFF_MAX_LEN 16u

struct vd_huff {
	/* Codes of at most VD_HUFF_FAST bits: sym << 5 | len for every
	 * VD_HUFF_FAST-bit prefix that starts with one; 0 for a prefix of
	 * a longer code. */
	uint16_t fast[1u << VD_HUFF_FAST];
	uint16_t count[VD_HUFF_MAX_LEN + 1]; /* codes of each length */
	uint16_t first[VD_HUFF_MAX_LEN + 1]; /* first code of each length */
	uint16_t start[VD_HUFF_MAX_LEN + 1]; /* its symbol's place in sym */
	uint16_t sym[VD_HUFF_MAX_SYMS];      /* by (length, symbol) */
	unsigned max_len;
	bool empty;
};

/* lens[n] (each at most max_len <= VD_HUFF_MAX_LEN, n <= MAX_SYMS). 0,
 * or -1 when the lengths over-fill the code space or leave some of it
 * unused (unless all are 0 and allow_empty). */
int vd_huff_build(struct vd_huff *h, const uint8_t *lens, unsigned n,
		  unsigned max_len, bool allow_empty);

/* The symbol whose codeword starts the 16 bits top (first bit in bit
 * 15), and its length in *len_r; -1 for an empty code. */
static inline int vd_huff_decode(const struct vd_huff *h, uint32_t top,
				 unsigned *len_r)
{
	uint16_t e = h->fast[top >> (16 - VD_HUFF_FAST)];

	if (e) {
		*len_r = e & 31u;
		return e >> 5;
	}
	for (unsigned l = VD_HUFF_FAST + 1; l <= h->max_len; l++) {
		uint32_t code = top >> (16 - l);

		if (code >= h->first[l] && code - h->first[l] < h->count[l]) {
			*len_r = l;
			return h->sym[h->start[l] + (code - h->first[l])];
		}
	}
	return -1;
}

#endif
