/* The LZX chunk decoder (fsread/lzx.c) alone, as WOF's
 * LZX files (and WIM archives) use it: the input is a le16 (the chunk's size
 * less one, taken modulo the largest chunk) then the compressed chunk.
 * The output buffer is exactly the chunk's size, so ASan sees a write
 * past it; a chunk that decodes must fill it, one that does not must
 * say why. Seeds: tests/mkwof.py seeds (our encoder). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/mscomp.h"
#include "tests/fuzz/fuzz.h"

static int lzx_one(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	int ret;
	size_t out_len;
	uint8_t *out;
	volatile unsigned sum = 0;

	if (size < 2)
		return 0;
	out_len = get_le16(data) % VD_LZX_MAX_OUT + 1;
	out = malloc(out_len);
	if (!out)
		return 0;
	ret = vd_lzx_decode(data + 2, size - 2, out, out_len, &why);
	if (ret == 0) {
		for (size_t i = 0; i < out_len; i++)
			sum += out[i];
	} else if (ret == -EUCLEAN && (!why || !*why)) {
		abort();
	}
	free(out);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = lzx_one,
};
