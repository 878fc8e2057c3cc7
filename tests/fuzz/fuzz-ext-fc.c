/* The ext4 fast-commit area scan alone (vd_ext_fc_scan): the tags the
 * kernel's PASS_SCAN would keep. The input is the transaction id
 * (4 bytes, little-endian) then the area, in 1 KiB blocks; the seeds are
 * fast-commit areas the kernel wrote (tests/fuzz/seeds.sh). The replay
 * of what it keeps runs under fuzz-ext, on whole images. */
#include <stdlib.h>

#include "common/util.h"
#include "fsread/ext-journal.h"
#include "tests/fuzz/fuzz.h"

static int ext_fc_one(const uint8_t *data, size_t size)
{
	struct vd_ext_fc fc;
	char why[160];

	if (size < 4)
		return 0;
	/* A full block at the end only: the area is whole blocks. */
	if (!vd_ext_fc_scan(data + 4, (size - 4) / 1024, 1024, get_le32(data),
			    256, &fc, why, sizeof(why)))
		free(fc.tags);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = ext_fc_one,
};
