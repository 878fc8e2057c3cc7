/* Canonical Huffman codes for the XPRESS and LZX decoders (mscomp.h):
 * [MS-XCA] 2.2.2 builds its decoding table by walking the lengths from 1
 * to 15 and, within a length, the symbols in order, each taking the next
 * 2^(15 - length) entries of a 2^15-entry table; the table must come out
 * exactly full. That is the canonical code below, checked by the same
 * count (the Kraft sum), with a small first-level table in front. */
#include <string.h>

#include "fsread/mscomp.h"

int vd_huff_build(struct vd_huff *h, const uint8_t *lens, unsigned n,
		  unsigned max_len, bool allow_empty)
{
	uint16_t next[VD_HUFF_MAX_LEN + 1];
	int32_t left = 1;
	unsigned used = 0, code = 0;

	if (n > VD_HUFF_MAX_SYMS || max_len > VD_HUFF_MAX_LEN || !max_len)
		return -1;
	memset(h->count, 0, sizeof(h->count));
	for (unsigned s = 0; s < n; s++) {
		if (lens[s] > max_len)
			return -1;
		h->count[lens[s]]++;
	}
	h->count[0] = 0;
	/* The code space left after each length; below 0: over-full. */
	for (unsigned l = 1; l <= max_len; l++) {
		left = left * 2 - h->count[l];
		if (left < 0)
			return -1;
		used += h->count[l];
	}
	memset(h->fast, 0, sizeof(h->fast));
	h->max_len = max_len;
	h->empty = !used;
	if (!used)
		return allow_empty ? 0 : -1;
	if (left != 0)
		return -1;
	h->start[0] = 0;
	for (unsigned l = 1; l <= max_len; l++) {
		code = (code + h->count[l - 1]) << 1;
		h->first[l] = (uint16_t)code;
		next[l] = (uint16_t)code;
		h->start[l] = (uint16_t)(l == 1 ? 0 :
					 h->start[l - 1] + h->count[l - 1]);
	}
	for (unsigned l = 1; l <= max_len; l++) {
		unsigned k = h->start[l];

		for (unsigned s = 0; s < n; s++) {
			unsigned c;

			if (lens[s] != l)
				continue;
			h->sym[k++] = (uint16_t)s;
			c = next[l]++;
			if (l <= VD_HUFF_FAST) {
				unsigned span = 1u << (VD_HUFF_FAST - l);
				unsigned at = c << (VD_HUFF_FAST - l);

				/* Complete code: at + span <= 2^FAST. */
				for (unsigned i = 0; i < span; i++)
					h->fast[at + i] =
						(uint16_t)(s << 5 | l);
			}
		}
	}
	return 0;
}
