/* An LVM2 PV's label, PV header and metadata areas (lvm-label.c), then
 * the metadata text of each area through the VG model: the input is the
 * PV's first bytes. The label's and the mda_header's CRCs are made right
 * after mutation (fix_crcs), so the fuzzer reaches the fields behind
 * them; the text CRC is left to it (a text that fails it is the normal
 * way a damaged copy is found). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-internal.h"
#include "tests/fuzz/fuzz.h"

struct lvm_buf {
	const uint8_t *b;
	size_t n;
};

static int lvm_buf_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct lvm_buf *c = ctx;

	if (!vd_range_ok(off, len, c->n))
		return -5;
	memcpy(buf, c->b + off, len);
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* The label's CRC in whichever of sectors 0-3 says LABELONE, and the
 * CRC of every mda_header its PV header points at. */
static void fix_crcs(uint8_t *d, size_t n)
{
	for (unsigned s = 0; s < 4 && (s + 1) * 512 <= n; s++) {
		uint8_t *l = d + s * 512;
		uint32_t off = get_le32(l + 20);

		if (memcmp(l, "LABELONE", 8))
			continue;
		if (off >= 32 && off <= 512 - 72) {
			for (uint8_t *p = l + off + 40; p + 16 <= l + 512;
			     p += 16) {
				uint64_t a = get_le64(p);

				if (a && vd_range_ok(a, 512, n) &&
				    !memcmp(d + a + 4, " LVM2 x[5A%r0N*>", 16))
					put32(d + a, lvm_crc(LVM_INITIAL_CRC,
							     d + a + 4, 508));
			}
		}
		put32(l + 16, lvm_crc(LVM_INITIAL_CRC, l + 20, 492));
		break;
	}
}

static int lvm_label_one(const uint8_t *data, size_t size)
{
	uint8_t *d = malloc(size ? size : 1);
	struct lvm_buf c = { d, size };
	struct lvm_pv_label l;
	struct vd_err e;

	if (!d)
		return 0;
	memcpy(d, data, size);
	fix_crcs(d, size);
	if (lvm_label_read(lvm_buf_read, &c, size, &l, &e) == 0)
		for (unsigned i = 0; i < l.n_mda; i++) {
			struct lvm_vg *vg;
			size_t len;
			char *t;

			if (lvm_mda_read(lvm_buf_read, &c, size, &l, i, &t,
					 &len, &e))
				continue;
			if (!lvm_vg_parse(t, len, &vg, &e))
				lvm_vg_free(vg);
			free(t);
		}
	free(d);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = lvm_label_one,
};
