/* LVM2 metadata text alone (lvm-cfg.c's parser, lvm-text.c's VG model):
 * text in, a VG or a one-line error out. Every LV's segments and areas
 * are walked as the assembler walks them, so an index the model made
 * that points outside its arrays is caught. Use with dict/lvm.dict. */
#include <stdio.h>
#include <stdlib.h>

#include "volumes/lvm-internal.h"
#include "tests/fuzz/fuzz.h"

static int lvm_text_one(const uint8_t *data, size_t size)
{
	struct lvm_vg *vg;
	struct vd_err e;
	volatile uint64_t sum = 0;

	if (lvm_vg_parse((const char *)data, size, &vg, &e) < 0)
		return 0;
	for (uint32_t i = 0; i < vg->n_pv; i++)
		sum += vg->pv[i].pe_start + vg->pv[i].pe_count;
	for (uint32_t i = 0; i < vg->n_lv; i++) {
		const struct lvm_lv *lv = &vg->lv[i];

		sum += lv->extents + lv->status;
		for (uint32_t k = 0; k < lv->n_seg; k++) {
			const struct lvm_seg *s = &lv->seg[k];
			const int refs[] = { s->meta_lv, s->data_lv,
					     s->pool_lv, s->origin_lv,
					     s->ext_origin_lv, s->cow_lv };

			for (size_t r = 0; r < sizeof(refs) / sizeof(refs[0]);
			     r++)
				if (refs[r] >= 0)
					sum += vg->lv[refs[r]].extents;
			for (uint32_t a = 0; a < s->n_area; a++) {
				const struct lvm_area *ar = &s->area[a];

				if (ar->pv >= 0)
					sum += vg->pv[ar->pv].pe_count;
				if (ar->lv >= 0)
					sum += vg->lv[ar->lv].extents;
				if (ar->meta >= 0)
					sum += vg->lv[ar->meta].extents;
			}
		}
	}
	if (lvm_vg_find_lv(vg, "lvol0") >= 0)
		sum++;
	lvm_vg_free(vg);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = lvm_text_one,
};
