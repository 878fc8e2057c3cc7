/* LVM2: the assembler. PVs -> VGs -> LVs as mapped volumes.
 *
 * probe: a volume is a PV when one of its first four sectors holds an
 * LVM2 label (lvm-label.c). assemble, after each round of discovery:
 *
 *   1. each newly claimed PV: its label, and the text of its metadata
 *      areas, the first that checks out and parses (the second area
 *      when the first is damaged), the higher seqno when both do;
 *   2. the VGs: PVs grouped by the VG UUID their metadata names, the
 *      copy with the highest seqno believed; PVs matched by PV UUID;
 *   3. each LV checked and, in an order where every LV comes after the
 *      LVs it is made of, turned into a mapped volume (struct lvm_mvol):
 *      a sorted list of segments, each striped (linear is one stripe),
 *      zeros, a chosen mirror or raid1 leg, or a thin device (lvm-thin.c);
 *      sub-LVs (_rimage_N, _tdata, ...) become hidden volumes.
 *
 * An LV that cannot be read faithfully is left out with a one-line
 * notice; the rest of its VG still shows. A VG already assembled is
 * kept in the state, so a later round adds only new VGs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-asm.h"

/* ---------------------------------------------------------- volumes */

static int lvm_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		   struct vd_vol_run *r)
{
	const struct lvm_mvol *m = (const struct lvm_mvol *)v;
	const struct lvm_mseg *s;
	uint32_t lo = 0, hi = m->n_seg;
	uint64_t rel, max;

	/* The last segment starting at or before off. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (m->seg[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	s = &m->seg[lo];
	if (off < s->start || off - s->start >= s->len) {
		vd_log(VD_LOG_ERR, "%s: offset %llu lies in no segment",
		       v->name, (unsigned long long)off);
		return -EIO;
	}
	rel = off - s->start;
	max = VD_MIN(len, s->len - rel);
	switch (s->kind) {
	case MSEG_ZERO:
		*r = (struct vd_vol_run){ NULL, 0, max };
		return 0;
	case MSEG_THIN: {
		bool data;
		uint64_t pos, n;
		int ret = lvm_thin_map(s->pool, s->dev, rel, max, &data, &pos,
				       &n);

		if (ret < 0)
			return ret;
		*r = (struct vd_vol_run){ data ? s->data : NULL, pos, n };
		/* Unwritten blocks of a thin LV with an external origin
		 * are the origin's (zeros past its end). */
		if (!data && s->origin && rel < s->origin->len)
			*r = (struct vd_vol_run){ s->origin, rel,
						  VD_MIN(n, s->origin->len - rel) };
		return 0;
	}
	case MSEG_STRIPED:
	default:
		if (s->stripes == 1) {
			*r = (struct vd_vol_run){ s->area[0].vol,
						  s->area[0].off + rel, max };
		} else {
			uint64_t chunk = rel / s->chunk, in = rel % s->chunk;
			const struct lvm_marea *a =
				&s->area[chunk % s->stripes];

			*r = (struct vd_vol_run){
				a->vol,
				a->off + chunk / s->stripes * s->chunk + in,
				VD_MIN(max, s->chunk - in)
			};
		}
		return 0;
	}
}

static void lvm_destroy(struct vd_vol *v)
{
	struct lvm_mvol *m = (struct lvm_mvol *)v;

	free(m->seg);
	free(m->areas);
}

const struct vd_vol_ops lvm_vol_ops = {
	.kind = "lvm",
	.map = lvm_map,
	.destroy = lvm_destroy,
};

/* ---------------------------------------------------------- scan */

static int lvm_rd(void *ctx, void *buf, size_t len, uint64_t off)
{
	return vd_vol_read(ctx, buf, len, off);
}

static int lvm_probe(const struct vd_vol *v)
{
	uint8_t buf[LVM_LABEL_SECTORS * LVM_SECTOR];
	size_t n = (size_t)VD_MIN(sizeof(buf), v->len);

	if (n < LVM_SECTOR || vd_vol_read(v, buf, n, 0) < 0)
		return 0;
	return lvm_label_find(buf, n) >= 0;
}

/* Step 1 for one volume: label, metadata areas, the best VG. Problems
 * are told once here; only -ENOMEM is returned. */
static int lvm_scan_one(struct lvm_scan *sc, const struct vd_vol *v)
{
	struct vd_err e = { "" };
	int ret;

	memset(sc, 0, sizeof(*sc));
	sc->vol = v;
	ret = lvm_label_read(lvm_rd, (void *)v, v->len, &sc->l, &e);
	if (ret < 0) {
		if (ret != -ENOENT)
			vd_log(VD_LOG_WARN, "%s: %s", v->name,
			       e.msg[0] ? e.msg : "LVM: the label cannot "
						  "be read");
		return 0;
	}
	sc->labelled = true;
	for (unsigned i = 0; i < sc->l.n_mda; i++) {
		struct lvm_vg *vg;
		size_t len;
		char *t;

		e.msg[0] = '\0';
		ret = lvm_mda_read(lvm_rd, (void *)v, v->len, &sc->l, i, &t,
				   &len, &e);
		if (ret == -ENOMEM)
			return ret;
		if (!ret) {
			ret = lvm_vg_parse(t, len, &vg, &e);
			free(t);
			if (ret == -ENOMEM)
				return ret;
		}
		if (ret == -ENOENT)
			continue;
		if (ret < 0) {
			vd_log(VD_LOG_WARN, "%s: %s%s", v->name,
			       e.msg[0] ? e.msg : "LVM: a metadata area "
						  "cannot be read",
			       i + 1 < sc->l.n_mda ?
				       " (trying the next metadata area)" : "");
			continue;
		}
		/* Only what picks the copy is kept: a hostile image may
		 * hold many PVs with large texts. */
		if (!sc->has_vg || vg->seqno > sc->seqno) {
			sc->has_vg = true;
			sc->mda = i;
			sc->seqno = vg->seqno;
			memcpy(sc->vg_uuid, vg->uuid, sizeof(sc->vg_uuid));
		}
		lvm_vg_free(vg);
	}
	return 0;
}

/* The VG of the copy lvm_scan_one chose, read again. */
static int lvm_scan_load(const struct lvm_scan *sc, struct lvm_vg **vg_r)
{
	struct vd_err e = { "" };
	size_t len;
	char *t;
	int ret;

	ret = lvm_mda_read(lvm_rd, (void *)sc->vol, sc->vol->len, &sc->l,
			   sc->mda, &t, &len, &e);
	if (!ret) {
		ret = lvm_vg_parse(t, len, vg_r, &e);
		free(t);
	}
	if (ret < 0 && ret != -ENOMEM)
		vd_log(VD_LOG_WARN, "%s: %s", sc->vol->name,
		       e.msg[0] ? e.msg : "LVM: its metadata cannot be read "
					  "again");
	return ret;
}

/* ---------------------------------------------------------- rounds */

static int lvm_assemble(struct vd_volset *s, struct vd_vol *const *claimed,
			unsigned n, void **state)
{
	struct lvm_state *st = *state;
	unsigned first;
	int ret;

	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return -ENOMEM;
		*state = st;
	}
	/* Step 1: the volumes not scanned in an earlier round. */
	first = st->n_scan;
	for (unsigned i = 0; i < n; i++) {
		struct lvm_scan *sc;
		bool seen = false;

		for (unsigned k = 0; k < st->n_scan && !seen; k++)
			seen = st->scan[k].vol == claimed[i];
		if (seen)
			continue;
		sc = realloc(st->scan, (st->n_scan + 1) * sizeof(*sc));
		if (!sc)
			return -ENOMEM;
		st->scan = sc;
		ret = lvm_scan_one(&st->scan[st->n_scan], claimed[i]);
		st->n_scan++;
		if (ret < 0)
			return ret;
	}
	/* Step 2: every VG seen for the first time, from its copy of the
	 * highest seqno. */
	for (unsigned i = first; i < st->n_scan; i++) {
		struct lvm_scan *best = &st->scan[i];
		struct lvm_vgx *x, **v;
		const struct vd_lvm_vg **vi;
		bool done = false;

		struct lvm_vg *vg;

		if (!best->has_vg)
			continue;
		for (unsigned k = 0; k < st->n_vgx && !done; k++)
			done = !strcmp(st->vgx[k]->vg->uuid, best->vg_uuid);
		if (done)
			continue;
		for (unsigned k = i + 1; k < st->n_scan; k++)
			if (st->scan[k].has_vg &&
			    !strcmp(st->scan[k].vg_uuid, best->vg_uuid) &&
			    st->scan[k].seqno > best->seqno)
				best = &st->scan[k];
		ret = lvm_scan_load(best, &vg);
		if (ret == -ENOMEM)
			return ret;
		if (ret < 0) {
			best->has_vg = false;
			continue;
		}
		x = calloc(1, sizeof(*x));
		v = realloc(st->vgx, (st->n_vgx + 1) * sizeof(*v));
		if (v)
			st->vgx = v;
		vi = realloc(st->vgi, (st->n_vgx + 1) * sizeof(*vi));
		if (vi)
			st->vgi = vi;
		if (!x || !v || !vi) {
			free(x);
			lvm_vg_free(vg);
			return -ENOMEM;
		}
		x->vg = vg;
		ret = lvm_vgx_assemble(s, st, x);
		st->vgx[st->n_vgx] = x;
		st->vgi[st->n_vgx] = &x->info;
		st->n_vgx++;
		st->info.n_vg = st->n_vgx;
		st->info.vg = st->vgi;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void lvm_free_state(void *state)
{
	struct lvm_state *st = state;

	if (!st)
		return;
	for (unsigned i = 0; i < st->n_vgx; i++)
		lvm_vgx_free(st->vgx[i]);
	free(st->scan);
	free(st->vgx);
	free(st->vgi);
	free(st);
}

const struct vd_assembler vd_lvm_assembler = {
	.name = "lvm",
	.probe = lvm_probe,
	.assemble = lvm_assemble,
	.free_state = lvm_free_state,
};

const struct vd_lvm_info *vd_lvm_info(const struct vd_volset *s)
{
	for (unsigned i = 0; vd_assemblers[i]; i++)
		if (vd_assemblers[i] == &vd_lvm_assembler) {
			const struct lvm_state *st =
				s->asm_state ? s->asm_state[i] : NULL;

			return st && st->n_vgx ? &st->info : NULL;
		}
	return NULL;
}

