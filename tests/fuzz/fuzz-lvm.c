/* LVM2 through the whole open-and-walk (fuzz-common.c): a raw image
 * holding PVs, so discovery, the assembler (volumes/lvm.c, lvm-vg.c),
 * thin pools (lvm-thin.c) and the reads of every LV run on the mutated
 * bytes. Each PV's label CRC, mda_header CRCs and committed text CRCs
 * are made right after mutation (lvm_fix), so the fuzzer's changes to
 * the metadata text reach the parser and the assembler. Use with
 * dict/lvm.dict. */
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-internal.h"
#include "tests/fuzz/fuzz.h"

static void lvm_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* One metadata area at byte mda (size msize) of a PV at base: its text
 * CRC (with the circular buffer's wrap) and its header CRC. */
static void lvm_fix_mda(uint8_t *d, size_t n, uint64_t base, uint64_t mda,
			uint64_t msize)
{
	uint8_t *h;
	uint64_t off, len, first;
	uint32_t crc;

	if (mda > n || base > n - mda || !vd_range_ok(base + mda, msize, n) ||
	    msize < 1024)
		return;
	h = d + base + mda;
	if (memcmp(h + 4, " LVM2 x[5A%r0N*>", 16))
		return;
	off = get_le64(h + 40);
	len = get_le64(h + 48);
	if (off >= 512 && off < msize && len && len <= msize - 512) {
		first = VD_MIN(len, msize - off);
		crc = lvm_crc(LVM_INITIAL_CRC, h + off, first);
		crc = lvm_crc(crc, h + 512, len - first);
		lvm_put32(h + 56, crc);
	}
	lvm_put32(h, lvm_crc(LVM_INITIAL_CRC, h + 4, 508));
}

static void lvm_fix(uint8_t *d, size_t n)
{
	/* Every sector that says LABELONE: labels of PVs anywhere. */
	for (size_t at = 0; at + 512 <= n; at += 512) {
		uint8_t *l = d + at;
		uint64_t sec = get_le64(l + 8);
		uint32_t off = get_le32(l + 20);

		if (memcmp(l, "LABELONE", 8) || sec > 3 || at < sec * 512)
			continue;
		if (off >= 32 && off <= 512 - 72) {
			const uint8_t *p = l + off + 40;

			/* Past the data areas to the metadata areas. */
			while (p + 16 <= l + 512 && get_le64(p))
				p += 16;
			for (p += 16; p + 16 <= l + 512 && get_le64(p); p += 16)
				lvm_fix_mda(d, n, at - sec * 512, get_le64(p),
					    get_le64(p + 8));
		}
		lvm_put32(l + 16, lvm_crc(LVM_INITIAL_CRC, l + 20, 492));
	}
}

const struct fuzz_target fuzz_target = {
	.format = "raw",
	.fix_fn = lvm_fix,
};
