/* volumes/lvm.c and lvm-vg.c: the assembler's own types. */
#ifndef VD_LVM_ASM_H
#define VD_LVM_ASM_H

#include <stdbool.h>
#include <stdint.h>

#include "volumes/lvm-internal.h"
#include "volumes/lvm.h"

/* ---- an LV as a mapped volume (lvm.c's map) */

enum mseg_kind { MSEG_STRIPED, MSEG_ZERO, MSEG_THIN };

struct lvm_marea {
	const struct vd_vol *vol;
	uint64_t off; /* bytes in vol where this stripe starts */
};

struct lvm_mseg {
	uint64_t start, len; /* bytes in the LV */
	enum mseg_kind kind;
	uint32_t stripes;
	uint64_t chunk;	/* stripe size, bytes (stripes > 1) */
	struct lvm_marea *area;
	struct lvm_thin_pool *pool; /* MSEG_THIN; owned by the state */
	const struct vd_vol *data;  /* MSEG_THIN: the pool's data LV */
	const struct vd_vol *origin; /* MSEG_THIN: external origin, or NULL */
	uint64_t dev;
};

struct lvm_mvol {
	struct vd_vol v;
	uint32_t n_seg;
	struct lvm_mseg *seg; /* sorted, contiguous from 0 */
	struct lvm_marea *areas;
};

extern const struct vd_vol_ops lvm_vol_ops;

/* ---- the assembler's state (kept across rounds) */

/* One claimed volume, read once; of its metadata only what picks the
 * copy to believe (the VG's UUID and seqno, the area) is kept. */
struct lvm_scan {
	const struct vd_vol *vol;
	bool labelled;
	struct lvm_pv_label l;
	bool has_vg;
	unsigned mda;
	uint64_t seqno;
	char vg_uuid[LVM_ID_LEN + 1];
};

/* What happens to one LV while its VG is assembled. */
enum lv_state { LV_UNDECIDED, LV_OK, LV_REFUSED };

struct lvm_vgx {
	struct lvm_vg *vg;
	char shown_name[160];
	struct vd_lvm_vg info;
	struct vd_lvm_pv *pv;
	struct vd_lvm_lv *lv;
	struct vd_lvm_seg *seg;
	const struct vd_vol **pv_vol; /* by PV index; NULL: missing */
	struct lvm_thin_pool **pool;  /* by LV index, for thin pools */
	enum lv_state *st;
	unsigned *stack;	      /* by LV index: how deep it stacks */
	unsigned depth;		      /* of its volumes */
};

struct lvm_state {
	struct lvm_scan *scan;
	unsigned n_scan;
	struct lvm_vgx **vgx;
	unsigned n_vgx;
	const struct vd_lvm_vg **vgi;
	struct vd_lvm_info info;
};

/* One VG (x->vg, taken over) into volumes and its description; 0 or
 * -ENOMEM (everything else is told and left out). lvm-vg.c. */
int lvm_vgx_assemble(struct vd_volset *s, struct lvm_state *st,
		     struct lvm_vgx *x);
void lvm_vgx_free(struct lvm_vgx *x);

#endif
