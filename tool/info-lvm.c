/* vdtool info: LVM2's volume groups, from the assembler's description
 * (volumes/lvm.h): each VG, its PVs (where each was found, or missing)
 * and its LVs (the volume each became, its segments, and why one is not
 * shown). Names and UUIDs are the image's bytes: control characters are
 * shown as '?' in the text, escaped in the JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "tool/info-lvm.h"
#include "volumes/lvm.h"

/* The segment type as lvs(8) names it: the metadata's "striped" with one
 * stripe is what lvs and a person call linear. */
static const char *lvm_seg_type(const struct vd_lvm_seg *g)
{
	return !strcmp(g->type, "striped") && g->stripes <= 1 ? "linear" :
								  g->type;
}

static void lvm_text_seg(const struct vd_lvm_seg *g)
{
	char h[32];

	printf("        extents %" PRIu64 "-%" PRIu64 ": ", g->start_extent,
	       g->start_extent + g->extent_count - 1);
	vdt_info_put(lvm_seg_type(g));
	if (g->stripe_size)
		printf(", %u stripes of %s", g->stripes,
		       vdt_info_human(g->stripe_size, h, sizeof(h)));
	else if (g->stripes > 1)
		printf(", %u %s", g->stripes,
		       !strcmp(g->type, "striped") ? "stripes" : "legs");
	printf("\n");
}

void vdt_info_lvm_text(const struct vd_volset *s)
{
	const struct vd_lvm_info *in = vd_lvm_info(s);
	char h[32];

	if (!in)
		return;
	printf("LVM volume groups:\n");
	for (unsigned v = 0; v < in->n_vg; v++) {
		const struct vd_lvm_vg *g = in->vg[v];

		printf("  ");
		vdt_info_put(g->shown_name);
		printf("  UUID ");
		vdt_info_put(g->uuid);
		printf(", extent size %s, seqno %" PRIu64 ", %u PV%s",
		       vdt_info_human(g->extent_size, h, sizeof(h)), g->seqno,
		       g->n_pv, g->n_pv == 1 ? "" : "s");
		if (g->n_missing)
			printf(" (%u missing)", g->n_missing);
		printf("\n");
		for (uint32_t p = 0; p < g->n_pv; p++) {
			const struct vd_lvm_pv *pv = &g->pv[p];

			printf("    PV %-6s ", pv->key);
			vdt_info_put(pv->uuid);
			if (!pv->vol) {
				printf("  missing\n");
				continue;
			}
			printf("  on %s, %s, %" PRIu64 " extents from byte %"
			       PRIu64 "\n",
			       pv->vol->label[0] ? pv->vol->label : "disk",
			       vdt_info_human(pv->size, h, sizeof(h)),
			       pv->pe_count, pv->pe_start);
		}
		for (uint32_t l = 0; l < g->n_lv; l++) {
			const struct vd_lvm_lv *lv = &g->lv[l];

			printf("    LV %-20s %10s  ", lv->name,
			       vdt_info_human(lv->size, h, sizeof(h)));
			if (lv->shown && lv->vol)
				printf("%s.raw", lv->vol->label);
			else if (lv->why_not[0]) {
				printf("not shown: ");
				vdt_info_put(lv->why_not);
			} else
				printf("(%s, not shown)",
				       lv->n_seg && !strcmp(lv->seg[0].type,
							    "thin-pool") ?
					       "thin pool" :
					       "sub-LV");
			printf("\n");
			for (uint32_t k = 0; k < lv->n_seg; k++)
				lvm_text_seg(&lv->seg[k]);
		}
	}
}

void vdt_info_lvm_json(struct vdt_json *j, const struct vd_volset *s)
{
	const struct vd_lvm_info *in = vd_lvm_info(s);

	vdt_json_arr(j, "lvm-volume-groups");
	for (unsigned v = 0; in && v < in->n_vg; v++) {
		const struct vd_lvm_vg *g = in->vg[v];

		vdt_json_obj(j, NULL);
		vdt_json_str(j, "name", g->name);
		vdt_json_str(j, "shown-name", g->shown_name);
		vdt_json_str(j, "uuid", g->uuid);
		vdt_json_u64(j, "extent-size", g->extent_size);
		vdt_json_u64(j, "seqno", g->seqno);
		vdt_json_u64(j, "missing-pvs", g->n_missing);
		vdt_json_arr(j, "physical-volumes");
		for (uint32_t p = 0; p < g->n_pv; p++) {
			const struct vd_lvm_pv *pv = &g->pv[p];

			vdt_json_obj(j, NULL);
			vdt_json_str(j, "name", pv->key);
			vdt_json_str(j, "uuid", pv->uuid);
			if (pv->vol)
				vdt_json_str(j, "volume", pv->vol->label[0] ?
								  pv->vol->label :
								  "disk");
			else
				vdt_json_null(j, "volume");
			vdt_json_u64(j, "size", pv->size);
			vdt_json_u64(j, "pe-start", pv->pe_start);
			vdt_json_u64(j, "pe-count", pv->pe_count);
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
		vdt_json_arr(j, "logical-volumes");
		for (uint32_t l = 0; l < g->n_lv; l++) {
			const struct vd_lvm_lv *lv = &g->lv[l];

			vdt_json_obj(j, NULL);
			vdt_json_str(j, "name", lv->name);
			vdt_json_str(j, "uuid", lv->uuid);
			vdt_json_str(j, "dm-name", lv->dm_name);
			vdt_json_u64(j, "size", lv->size);
			vdt_json_bool(j, "shown", lv->shown);
			vdt_json_bool(j, "sub-lv", lv->sub);
			if (lv->why_not[0])
				vdt_json_str(j, "not-shown-because",
					     lv->why_not);
			if (lv->vol)
				vdt_json_str(j, "volume", lv->vol->label);
			else
				vdt_json_null(j, "volume");
			vdt_json_arr(j, "segments");
			for (uint32_t k = 0; k < lv->n_seg; k++) {
				const struct vd_lvm_seg *sg = &lv->seg[k];

				vdt_json_obj(j, NULL);
				vdt_json_str(j, "type", lvm_seg_type(sg));
				vdt_json_u64(j, "start-extent",
					     sg->start_extent);
				vdt_json_u64(j, "extent-count",
					     sg->extent_count);
				vdt_json_u64(j, "stripes", sg->stripes);
				if (sg->stripe_size)
					vdt_json_u64(j, "stripe-size",
						     sg->stripe_size);
				vdt_json_end_obj(j);
			}
			vdt_json_end_arr(j);
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
}
