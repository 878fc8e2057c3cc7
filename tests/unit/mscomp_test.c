/* The WOF chunk decoders (fsread/xpress.c, fsread/lzx.c) on streams
 * written out by hand from [MS-XCA] 2.1/2.2 and the LZX block layout:
 * literals, matches, the extra length byte's place after the words
 * read ahead, the end of the input, bad Huffman codes, and LZX's
 * uncompressed blocks with E8 translation undone. The encoders of
 * tests/mkwof.py and wimlib's cover the rest (t-86-ntfs-wof). */
#include "tests/unit/unit.h"

#include "common/util.h"
#include "fsread/mscomp.h"

static uint8_t in[512];
static uint8_t out[70000];

/* An XPRESS table giving sym[i] the length len[i], all others 0. */
static void xp_table(const unsigned *sym, const unsigned *len, unsigned n)
{
	memset(in, 0, sizeof(in));
	for (unsigned i = 0; i < n; i++)
		in[sym[i] / 2] |= (uint8_t)(len[i] << (sym[i] % 2 ? 4 : 0));
}

static int xp(size_t in_len, size_t out_len, const char **why)
{
	memset(out, 0xAA, sizeof(out));
	return vd_xpress_decode(in, in_len, out, out_len, why);
}

static void test_xpress(void)
{
	const char *why = "";
	unsigned s2[] = { 'a', 'b' }, l2[] = { 1, 1 };
	unsigned sm[] = { 'a', 256 }, sl[] = { 1, 1 };
	unsigned s15[] = { 'a', 256 + 15 };

	/* 'a' = 0, 'b' = 1: "abba" is 0110, in the first word's top. */
	xp_table(s2, l2, 2);
	in[256] = 0x00, in[257] = 0x60, in[258] = 0, in[259] = 0;
	CHECK("xpress literals", xp(260, 4, &why) == 0 &&
				       !memcmp(out, "abba", 4));
	/* 32 bits held in two real words: 32 symbols, not 33. */
	CHECK("xpress 32 symbols from 2 words", xp(260, 32, &why) == 0 &&
							out[31] == 'a');
	CHECK("xpress past the input", xp(260, 33, &why) == -EUCLEAN);
	CHECK_MSG("xpress past the input: why", why, "input ends");
	/* 'a' = 0, (length 3, offset 1) = 1: "a" then the match. */
	xp_table(sm, sl, 2);
	in[256] = 0x00, in[257] = 0x40, in[258] = 0, in[259] = 0;
	CHECK("xpress match", xp(260, 4, &why) == 0 &&
				    !memcmp(out, "aaaa", 4) && out[4] == 0xAA);
	CHECK("xpress match past the chunk", xp(260, 3, &why) == -EUCLEAN);
	/* A match first: its offset is before the chunk. */
	in[257] = 0x80;
	CHECK("xpress match before the start", xp(260, 4, &why) == -EUCLEAN);
	CHECK_MSG("xpress match before the start: why", why, "offset");
	/* Length 15 + byte: the byte follows the two words read ahead. */
	xp_table(s15, sl, 2);
	in[256] = 0x00, in[257] = 0x40, in[258] = 0, in[259] = 0;
	in[260] = 10; /* 15 + 10 + 3 = 28 */
	CHECK("xpress length byte", xp(261, 29, &why) == 0 &&
					  all_bytes(out, 29, 'a'));
	CHECK("xpress length byte missing", xp(260, 29, &why) == -EUCLEAN);
	/* 255 then a 16-bit length (the whole length less 3). */
	in[260] = 255, in[261] = 40, in[262] = 0;
	CHECK("xpress 16-bit length", xp(263, 44, &why) == 0 &&
					    all_bytes(out, 44, 'a'));
	in[261] = 14; /* below 15: not allowed */
	CHECK("xpress 16-bit length below 15", xp(263, 44, &why) == -EUCLEAN);
	/* Codes: empty, incomplete (one symbol of 1 bit), over-full. */
	memset(in, 0, 256);
	CHECK("xpress empty code", xp(260, 4, &why) == -EUCLEAN);
	in[0] = 0x01;
	CHECK("xpress incomplete code", xp(260, 4, &why) == -EUCLEAN);
	in[0] = 0x11, in[1] = 0x01;
	CHECK("xpress over-full code", xp(260, 4, &why) == -EUCLEAN);
	CHECK_MSG("xpress over-full code: why", why, "complete code");
	CHECK("xpress no table", xp(255, 4, &why) == -EUCLEAN);
	CHECK("xpress chunk of 0", xp(260, 0, &why) == -EINVAL);
	CHECK("xpress chunk past 64 KiB", xp(260, 65537, &why) == -EINVAL);
}

/* An LZX chunk: one uncompressed block of data[n] (n < 2^16), its
 * recent offsets r0..r2. Returns the input's length. */
static size_t lzx_stored(const uint8_t *data, size_t n, uint32_t r0)
{
	size_t at = 4;

	/* Type 3, flag 0, 16-bit size: 20 bits in two words; the rest of
	 * the second word is the padding to the word. */
	uint32_t bits = 3u << 29 | (uint32_t)n << 12;

	in[0] = (uint8_t)(bits >> 16), in[1] = (uint8_t)(bits >> 24);
	in[2] = (uint8_t)bits, in[3] = (uint8_t)(bits >> 8);
	for (int k = 0; k < 3; k++, at += 4) {
		uint32_t r = k ? 1 : r0;

		memcpy(in + at, &r, 4);
	}
	memcpy(in + at, data, n);
	at += n;
	if (n & 1)
		in[at++] = 0;
	return at;
}

static void test_lzx(void)
{
	const char *why = "";
	static const uint8_t data[16] = { 0, 0, 0xE8, 5, 0, 0, 0, 0xE8, 5 };
	static const uint8_t want[16] = { 0, 0, 0xE8, 3, 0, 0, 0, 0xE8, 5 };
	uint8_t neg[16] = { 0xE8, 0, 0, 0, 0, 0xE8, 0xFF, 0xFF, 0xFF, 0xFF };
	size_t n;

	/* E8 at 2: absolute 5 becomes 5 - 2; at 7 (within the last 10
	 * bytes) nothing changes. */
	n = lzx_stored(data, 16, 1);
	CHECK("lzx stored block", vd_lzx_decode(in, n, out, 16, &why) == 0 &&
					  !memcmp(out, want, 16));
	/* At 5: -1 is inside [-5, 0): 12000000 - 1. */
	n = lzx_stored(neg, 16, 1);
	CHECK("lzx E8 negative", vd_lzx_decode(in, n, out, 16, &why) == 0 &&
					 get_le32(out + 6) == 12000000 - 1);
	n = lzx_stored(data, 16, 0);
	CHECK("lzx recent offset 0", vd_lzx_decode(in, n, out, 16, &why) ==
					     -EUCLEAN);
	n = lzx_stored(data, 16, 1);
	CHECK("lzx stored block cut", vd_lzx_decode(in, n - 1, out, 16,
						    &why) == -EUCLEAN);
	CHECK_MSG("lzx stored block cut: why", why, "past the end");
	/* Block size 16 in a chunk of 15 bytes. */
	CHECK("lzx block past the chunk", vd_lzx_decode(in, n, out, 15,
							&why) == -EUCLEAN);
	/* Block type 0. */
	in[1] &= 0x1F;
	CHECK("lzx block type 0", vd_lzx_decode(in, n, out, 16, &why) ==
					  -EUCLEAN);
	CHECK_MSG("lzx block type 0: why", why, "block type");
	CHECK("lzx chunk past 32 KiB", vd_lzx_decode(in, n, out, 32769,
						     &why) == -EINVAL);
	CHECK("lzx no input", vd_lzx_decode(in, 0, out, 16, &why) ==
				      -EUCLEAN);
}

int main(void)
{
	test_xpress();
	test_lzx();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed != 0;
}
