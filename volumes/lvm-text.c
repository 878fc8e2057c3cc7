/* LVM2 metadata text: the VG it describes (the tree comes from
 * lvm-cfg.c). Source: LVM2's lib/format_text/import_vsn1.c.
 *
 * What spoils the whole VG (no id, no extent size, a PV without its
 * extents) fails the parse; what spoils one LV (a segment without its
 * fields, a list of the wrong length, a name that refers to nothing)
 * is kept in that LV's bad, so the rest of the VG still shows. Names
 * are resolved to indexes here; loops among LVs are the assembler's to
 * find (lvm.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-internal.h"

/* Builds the VG from the tree; fills e and returns -EUCLEAN for what
 * spoils the whole VG, keeps one LV's problems in its bad. */
struct vg_build {
	struct lvm_vg *vg;
	const struct lvm_cfg *c;
	uint32_t segs_cap, areas_cap;
	struct vd_err *e;
};

bool lvm_id_plain(const char *id, char *out)
{
	unsigned n = 0;

	for (; *id; id++) {
		char ch = *id;

		if (ch == '-')
			continue;
		if (n == LVM_ID_LEN ||
		    !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return false;
		out[n++] = ch;
	}
	out[n] = '\0';
	return n == LVM_ID_LEN;
}

static const char *vg_str(const struct lvm_cfg *c,
			  const struct lvm_cfg_node *sec, const char *key)
{
	const struct lvm_cfg_node *n = lvm_cfg_get(c, sec, key);

	return n && n->type == LVM_CFG_STR ? n->s : NULL;
}

/* A non-negative integer key: 0, or -ENOENT (absent or not one). */
static int vg_u64(const struct lvm_cfg *c, const struct lvm_cfg_node *sec,
		  const char *key, uint64_t *v)
{
	const struct lvm_cfg_node *n = lvm_cfg_get(c, sec, key);

	if (!n || n->type != LVM_CFG_INT || n->i < 0)
		return -ENOENT;
	*v = (uint64_t)n->i;
	return 0;
}

int lvm_vg_find_lv(const struct lvm_vg *vg, const char *name)
{
	for (uint32_t i = 0; i < vg->n_lv; i++)
		if (!strcmp(vg->lv[i].name, name))
			return (int)i;
	return -1;
}

static int vg_find_pv(const struct lvm_vg *vg, const char *key)
{
	for (uint32_t i = 0; i < vg->n_pv; i++)
		if (!strcmp(vg->pv[i].key, key))
			return (int)i;
	return -1;
}

static __attribute__((format(printf, 2, 3))) void
vg_bad(struct lvm_lv *lv, const char *fmt, ...)
{
	va_list ap;

	if (lv->bad[0])
		return; /* the first problem is the one told */
	va_start(ap, fmt);
	vsnprintf(lv->bad, sizeof(lv->bad), fmt, ap);
	va_end(ap);
}

static unsigned vg_status(const struct lvm_cfg *c,
			  const struct lvm_cfg_node *n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} flags[] = {
		{ "READ", LVM_LV_READ },	 { "WRITE", LVM_LV_WRITE },
		{ "VISIBLE", LVM_LV_VISIBLE },	 { "REBUILD", LVM_LV_REBUILD },
		{ "NOTSYNCED", LVM_LV_NOTSYNCED }, { "PVMOVE", LVM_LV_PVMOVE },
		{ "LOCKED", LVM_LV_LOCKED },
	};
	unsigned st = 0;

	if (!n || n->type != LVM_CFG_LIST)
		return 0;
	for (uint32_t i = n->child; i; i = c->node[i].next) {
		if (c->node[i].type != LVM_CFG_STR)
			continue;
		for (size_t k = 0; k < VD_ARRAY_SIZE(flags); k++)
			if (!strcmp(c->node[i].s, flags[k].name))
				st |= flags[k].bit;
	}
	return st;
}

static int vg_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem,
		   uint32_t limit)
{
	void *a;
	uint32_t n;

	if (need <= *cap)
		return 0;
	if (need > limit)
		return -E2BIG;
	n = VD_MIN(VD_MAX(need, *cap ? *cap * 2 : 64), limit);
	a = realloc(*arr, (size_t)n * elem);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = n;
	return 0;
}

/* The areas of a segment from a list: pairs (name, extent) when pairs,
 * else names alone (raid images with or without their metadata LVs).
 * Names are resolved later (vg_resolve); here they are kept in the
 * cfg: area i's name is node name_node. */
struct seg_names {
	uint32_t node[2 * LVM_MAX_STRIPES];
	uint32_t n;
};

static int vg_list(struct vg_build *b, struct lvm_lv *lv,
		   const struct lvm_cfg_node *sec, const char *key,
		   uint32_t want, bool pairs, struct seg_names *names,
		   uint64_t *starts)
{
	const struct lvm_cfg *c = b->c;
	const struct lvm_cfg_node *l = lvm_cfg_get(c, sec, key);
	uint32_t k = 0;

	if (!l || l->type != LVM_CFG_LIST) {
		vg_bad(lv, "segment has no list '%s'", key);
		return -1;
	}
	for (uint32_t i = l->child; i; i = c->node[i].next, k++) {
		const struct lvm_cfg_node *v = &c->node[i];
		bool name = !pairs || k % 2 == 0;

		if (k >= want) {
			vg_bad(lv, "'%s' lists more than %u entries", key,
			       want);
			return -1;
		}
		if (name && v->type != LVM_CFG_STR) {
			vg_bad(lv, "'%s' entry %u is not a name", key, k);
			return -1;
		}
		if (name) {
			names->node[names->n++] = i;
		} else if (v->type != LVM_CFG_INT || v->i < 0) {
			vg_bad(lv, "'%s' entry %u is not an extent", key, k);
			return -1;
		} else {
			starts[k / 2] = (uint64_t)v->i;
		}
	}
	if (k != want) {
		vg_bad(lv, "'%s' lists %u entries, not %u", key, k, want);
		return -1;
	}
	return 0;
}

static int vg_lv_ref(struct lvm_vg *vg, struct lvm_lv *lv, const char *name,
		     const char *what)
{
	int i = lvm_vg_find_lv(vg, name);

	if (i < 0)
		vg_bad(lv, "%s '%s' is not an LV of the VG", what, name);
	return i;
}

/* One segment: its kind and fields, its areas resolved to PVs or LVs. */
static int vg_seg(struct vg_build *b, struct lvm_lv *lv, struct lvm_seg *s,
		  const struct lvm_cfg_node *sec)
{
	static const struct {
		const char *type;
		enum lvm_seg_kind kind;
	} kinds[] = {
		{ "striped", LVM_SEG_STRIPED },	 { "zero", LVM_SEG_ZERO },
		{ "mirror", LVM_SEG_MIRROR },	 { "raid1", LVM_SEG_RAID1 },
		{ "thin-pool", LVM_SEG_THIN_POOL }, { "thin", LVM_SEG_THIN },
		{ "snapshot", LVM_SEG_SNAPSHOT },
	};
	struct lvm_vg *vg = b->vg;
	const struct lvm_cfg *c = b->c;
	struct seg_names names = { .n = 0 };
	uint64_t starts[LVM_MAX_STRIPES] = { 0 }, n = 0;
	const char *key = NULL, *str;
	bool pairs = true, with_meta = false;
	uint32_t want = 0;
	int ret;

	s->meta_lv = s->data_lv = s->pool_lv = -1;
	s->origin_lv = s->ext_origin_lv = s->cow_lv = -1;
	if (vg_u64(c, sec, "start_extent", &s->start_extent) ||
	    vg_u64(c, sec, "extent_count", &s->extent_count) ||
	    !(s->type = vg_str(c, sec, "type"))) {
		vg_bad(lv, "segment %s lacks start_extent, extent_count or "
			   "type", sec->key);
		s->type = "";
		return 0;
	}
	for (size_t k = 0; k < VD_ARRAY_SIZE(kinds); k++)
		if (!strcmp(s->type, kinds[k].type))
			s->kind = kinds[k].kind;
	switch (s->kind) {
	case LVM_SEG_STRIPED:
		key = "stripes";
		if (vg_u64(c, sec, "stripe_count", &n))
			vg_bad(lv, "striped segment without stripe_count");
		if (n > 1 && vg_u64(c, sec, "stripe_size", &s->stripe_size))
			vg_bad(lv, "striped segment without stripe_size");
		break;
	case LVM_SEG_MIRROR:
		key = "mirrors";
		if (vg_u64(c, sec, "mirror_count", &n))
			vg_bad(lv, "mirror segment without mirror_count");
		break;
	case LVM_SEG_RAID1: {
		const struct lvm_cfg_node *l = lvm_cfg_get(c, sec, "raids");

		key = "raids";
		if (vg_u64(c, sec, "device_count", &n))
			vg_bad(lv, "raid1 segment without device_count");
		for (uint32_t i = l && l->type == LVM_CFG_LIST ? l->child : 0;
		     i && want < 2 * LVM_MAX_STRIPES + 1;
		     i = c->node[i].next)
			want++;
		/* [rmeta, rimage] pairs, or the images alone. */
		pairs = false;
		with_meta = want == 2 * n;
		if (!with_meta)
			want = (uint32_t)VD_MIN(n, 2 * LVM_MAX_STRIPES + 1);
		break;
	}
	case LVM_SEG_THIN_POOL:
		str = vg_str(c, sec, "metadata");
		if (!str || !vg_str(c, sec, "pool") ||
		    vg_u64(c, sec, "chunk_size", &s->chunk_size)) {
			vg_bad(lv, "thin-pool segment lacks metadata, pool or "
				   "chunk_size");
			break;
		}
		vg_u64(c, sec, "transaction_id", &s->transaction_id);
		s->meta_lv = vg_lv_ref(vg, lv, str, "metadata");
		s->data_lv = vg_lv_ref(vg, lv, vg_str(c, sec, "pool"), "pool");
		break;
	case LVM_SEG_THIN:
		str = vg_str(c, sec, "thin_pool");
		if (!str || vg_u64(c, sec, "device_id", &s->device_id)) {
			vg_bad(lv, "thin segment lacks thin_pool or device_id");
			break;
		}
		vg_u64(c, sec, "transaction_id", &s->transaction_id);
		s->pool_lv = vg_lv_ref(vg, lv, str, "thin_pool");
		if ((str = vg_str(c, sec, "origin")))
			s->origin_lv = vg_lv_ref(vg, lv, str, "origin");
		if ((str = vg_str(c, sec, "external_origin")))
			s->ext_origin_lv =
				vg_lv_ref(vg, lv, str, "external_origin");
		break;
	case LVM_SEG_SNAPSHOT:
		if ((str = vg_str(c, sec, "cow_store")))
			s->cow_lv = vg_lv_ref(vg, lv, str, "cow_store");
		if ((str = vg_str(c, sec, "origin")))
			s->origin_lv = vg_lv_ref(vg, lv, str, "origin");
		break;
	default:
		break;
	}
	if (!key || lv->bad[0])
		return 0;
	if (!n || n > LVM_MAX_STRIPES) {
		vg_bad(lv, "%s segment with %llu %s (1 to %u)", s->type,
		       (unsigned long long)n, key, LVM_MAX_STRIPES);
		return 0;
	}
	if (pairs)
		want = (uint32_t)n * 2;
	if (vg_list(b, lv, sec, key, want, pairs, &names, starts))
		return 0;
	s->n_area = (uint32_t)n;
	s->stripe_count = s->n_area;
	ret = vg_grow((void **)&vg->areas, &b->areas_cap,
		      vg->n_areas + s->n_area, sizeof(*vg->areas),
		      LVM_MAX_AREAS);
	if (ret == -E2BIG)
		return vd_fail(b->e, -EUCLEAN,
			       "LVM: VG %s: more than %u stripes and legs in "
			       "all", vg->name, LVM_MAX_AREAS);
	if (ret < 0)
		return ret;
	s->area0 = vg->n_areas;
	vg->n_areas += s->n_area;
	for (uint32_t k = 0; k < s->n_area; k++) {
		struct lvm_area *a = &vg->areas[s->area0 + k];
		const char *name =
			c->node[names.node[with_meta ? 2 * k + 1 : k]].s;

		a->pv = a->lv = a->meta = -1;
		a->start = starts[k];
		if (with_meta)
			a->meta = vg_lv_ref(vg, lv,
					    c->node[names.node[2 * k]].s,
					    "raid metadata");
		/* A PV key ("pv0") first, then an LV (stacked, pvmove). */
		if (s->kind != LVM_SEG_RAID1)
			a->pv = vg_find_pv(vg, name);
		if (a->pv < 0)
			a->lv = vg_lv_ref(vg, lv, name, "area");
	}
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct lvm_seg *x = a, *y = b;

	return x->start_extent < y->start_extent ? -1 :
	       x->start_extent > y->start_extent;
}

static int vg_pvs(struct vg_build *b, const struct lvm_cfg_node *vgsec)
{
	const struct lvm_cfg *c = b->c;
	const struct lvm_cfg_node *pvs = lvm_cfg_get(c, vgsec,
						     "physical_volumes");
	struct lvm_vg *vg = b->vg;
	uint32_t n = 0;

	if (!pvs || pvs->type != LVM_CFG_SECTION)
		return vd_fail(b->e, -EUCLEAN,
			       "LVM: VG %s: no physical_volumes section",
			       vg->name);
	for (uint32_t i = pvs->child; i; i = c->node[i].next)
		if (c->node[i].type == LVM_CFG_SECTION)
			n++;
	if (!n || n > LVM_MAX_PVS)
		return vd_fail(b->e, -EUCLEAN,
			       "LVM: VG %s: %u PVs (1 to %u)", vg->name, n,
			       LVM_MAX_PVS);
	vg->pv = calloc(n, sizeof(*vg->pv));
	if (!vg->pv)
		return -ENOMEM;
	for (uint32_t i = pvs->child; i; i = c->node[i].next) {
		const struct lvm_cfg_node *sec = &c->node[i];
		struct lvm_pv_meta *pv = &vg->pv[vg->n_pv];

		if (sec->type != LVM_CFG_SECTION)
			continue;
		pv->key = sec->key;
		pv->id = vg_str(c, sec, "id");
		if (!pv->id || !lvm_id_plain(pv->id, pv->uuid) ||
		    vg_u64(c, sec, "pe_start", &pv->pe_start) ||
		    vg_u64(c, sec, "pe_count", &pv->pe_count))
			return vd_fail(b->e, -EUCLEAN,
				       "LVM: VG %s: PV %s lacks a valid id, "
				       "pe_start or pe_count", vg->name,
				       sec->key);
		vg_u64(c, sec, "dev_size", &pv->dev_size);
		if (vg_find_pv(vg, pv->key) >= 0)
			return vd_fail(b->e, -EUCLEAN,
				       "LVM: VG %s: two PVs named %s",
				       vg->name, pv->key);
		vg->n_pv++;
	}
	return 0;
}

static int vg_lvs(struct vg_build *b, const struct lvm_cfg_node *vgsec)
{
	const struct lvm_cfg *c = b->c;
	const struct lvm_cfg_node *lvs = lvm_cfg_get(c, vgsec,
						     "logical_volumes");
	struct lvm_vg *vg = b->vg;
	uint32_t n = 0, k = 0;
	int ret;

	if (!lvs)
		return 0; /* a VG without LVs */
	if (lvs->type != LVM_CFG_SECTION)
		return vd_fail(b->e, -EUCLEAN,
			       "LVM: VG %s: logical_volumes is not a section",
			       vg->name);
	for (uint32_t i = lvs->child; i; i = c->node[i].next)
		if (c->node[i].type == LVM_CFG_SECTION)
			n++;
	if (n > LVM_MAX_LVS)
		return vd_fail(b->e, -EUCLEAN,
			       "LVM: VG %s: %u LVs (at most %u)", vg->name, n,
			       LVM_MAX_LVS);
	vg->lv = calloc(n ? n : 1, sizeof(*vg->lv));
	if (!vg->lv)
		return -ENOMEM;
	/* Every name first: segments refer to LVs defined after them. */
	for (uint32_t i = lvs->child; i; i = c->node[i].next) {
		const struct lvm_cfg_node *sec = &c->node[i];
		struct lvm_lv *lv = &vg->lv[vg->n_lv];

		if (sec->type != LVM_CFG_SECTION)
			continue;
		lv->name = sec->key;
		lv->id = vg_str(c, sec, "id");
		if (!lv->id)
			lv->id = "";
		lv->status = vg_status(c, lvm_cfg_get(c, sec, "status"));
		if (lvm_vg_find_lv(vg, lv->name) >= 0)
			return vd_fail(b->e, -EUCLEAN,
				       "LVM: VG %s: two LVs named %s",
				       vg->name, lv->name);
		vg->n_lv++;
	}
	for (uint32_t i = lvs->child; i; i = c->node[i].next) {
		const struct lvm_cfg_node *sec = &c->node[i];
		struct lvm_lv *lv;

		if (sec->type != LVM_CFG_SECTION)
			continue;
		lv = &vg->lv[k++];
		lv->seg0 = vg->n_segs;
		/* The segments are the LV's subsections (segment1...). */
		for (uint32_t j = sec->child; j; j = c->node[j].next) {
			if (c->node[j].type != LVM_CFG_SECTION)
				continue;
			ret = vg_grow((void **)&vg->segs, &b->segs_cap,
				      vg->n_segs + 1, sizeof(*vg->segs),
				      LVM_MAX_SEGS);
			if (ret == -E2BIG)
				return vd_fail(b->e, -EUCLEAN,
					       "LVM: VG %s: more than %u "
					       "segments in all", vg->name,
					       LVM_MAX_SEGS);
			if (ret < 0)
				return ret;
			memset(&vg->segs[vg->n_segs], 0, sizeof(*vg->segs));
			ret = vg_seg(b, lv, &vg->segs[vg->n_segs],
				     &c->node[j]);
			if (ret < 0)
				return ret;
			vg->n_segs++;
			lv->n_seg++;
		}
		if (!lv->n_seg)
			vg_bad(lv, "no segments");
	}
	return 0;
}

int lvm_vg_parse(const char *text, size_t len, struct lvm_vg **vg_r,
		 struct vd_err *e)
{
	struct lvm_vg *vg = calloc(1, sizeof(*vg));
	struct vg_build b = { .vg = vg, .c = &vg->cfg, .e = e };
	const struct lvm_cfg_node *sec = NULL;
	int ret;

	*vg_r = NULL;
	if (!vg)
		return -ENOMEM;
	ret = lvm_cfg_parse(text, len, &vg->cfg, e);
	if (ret < 0)
		goto fail;
	/* The VG is the text's one top-level section. */
	for (uint32_t i = vg->cfg.node[0].child; i; i = vg->cfg.node[i].next)
		if (vg->cfg.node[i].type == LVM_CFG_SECTION) {
			sec = &vg->cfg.node[i];
			break;
		}
	ret = vd_fail(e, -EUCLEAN, "LVM metadata: no volume group section");
	if (!sec)
		goto fail;
	vg->name = sec->key;
	vg->id = vg_str(&vg->cfg, sec, "id");
	ret = vd_fail(e, -EUCLEAN,
		      "LVM: VG %s: no valid id, seqno or extent_size", vg->name);
	if (!vg->id || !lvm_id_plain(vg->id, vg->uuid) ||
	    vg_u64(&vg->cfg, sec, "seqno", &vg->seqno) ||
	    vg_u64(&vg->cfg, sec, "extent_size", &vg->extent_size))
		goto fail;
	if (!vg->extent_size || vg->extent_size > UINT32_MAX) {
		ret = vd_fail(e, -EUCLEAN,
			      "LVM: VG %s: extent_size %llu sectors (1 to "
			      "2^32 - 1)", vg->name,
			      (unsigned long long)vg->extent_size);
		goto fail;
	}
	ret = vg_pvs(&b, sec);
	if (!ret)
		ret = vg_lvs(&b, sec);
	if (ret < 0)
		goto fail;
	for (uint32_t i = 0; i < vg->n_segs; i++)
		vg->segs[i].area = vg->segs[i].n_area ?
					   vg->areas + vg->segs[i].area0 : NULL;
	for (uint32_t i = 0; i < vg->n_lv; i++) {
		struct lvm_lv *lv = &vg->lv[i];

		if (!lv->n_seg)
			continue;
		lv->seg = vg->segs + lv->seg0;
		qsort(lv->seg, lv->n_seg, sizeof(*lv->seg), seg_cmp);
		for (uint32_t k = 0; k < lv->n_seg; k++)
			if (__builtin_add_overflow(lv->extents,
						   lv->seg[k].extent_count,
						   &lv->extents))
				vg_bad(lv, "its extent count overflows");
	}
	*vg_r = vg;
	return 0;
fail:
	lvm_vg_free(vg);
	return ret;
}

void lvm_vg_free(struct lvm_vg *vg)
{
	if (!vg)
		return;
	lvm_cfg_free(&vg->cfg);
	free(vg->pv);
	free(vg->lv);
	free(vg->segs);
	free(vg->areas);
	free(vg);
}
