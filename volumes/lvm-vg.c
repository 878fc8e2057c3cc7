/* LVM2: one VG's LVs into volumes (the assembler's step 3, lvm.c).
 *
 * Each LV is first checked alone (lv_check: its own fields, segments
 * contiguous from extent 0, types we read, sizes that do not overflow),
 * then, once every LV it is made of is decided, built (lv_build): its
 * segments mapped to the PVs and LVs below, a raid1 or mirror leg
 * chosen, a thin pool opened. The passes end: an LV stacked d deep is
 * decided by pass d, and what is undecided after LVM_MAX_STACK + 1
 * passes refers to itself through a loop or stacks too deep. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-asm.h"

/* LVs stacked on LVs (a raid1 on its images, a thin LV on its pool on
 * its data LV, an LV being moved on pvmove0 on a raid...) at most this
 * deep; deeper is refused. */
#define LVM_MAX_STACK 6

/* ---------------------------------------------------------- names */

/* device-mapper's name: hyphens inside the VG and LV names doubled,
 * one hyphen between. Cut to fit a volume label. */
static void lvm_dm_name(const char *vg, const char *lv, char *out,
			size_t size)
{
	size_t o = 0;

	for (int part = 0; part < 2; part++) {
		for (const char *p = part ? lv : vg; *p; p++) {
			if (o + (*p == '-' ? 2 : 1) >= size)
				goto out;
			if (*p == '-')
				out[o++] = '-';
			out[o++] = *p;
		}
		if (!part) {
			if (o + 1 >= size)
				goto out;
			out[o++] = '-';
		}
	}
out:
	out[o] = '\0';
}


/* ---------------------------------------------------------- one VG */

struct vg_ctx {
	struct vd_volset *s;
	struct lvm_vgx *x;
	struct lvm_vg *vg;
	uint64_t es; /* extent size, bytes */
	bool *quiet; /* by LV: refused for a reason told once for the VG */
};

static __attribute__((format(printf, 4, 5))) void
lv_refuse(struct vg_ctx *c, uint32_t i, bool quiet, const char *fmt, ...)
{
	struct vd_lvm_lv *li = &c->x->lv[i];
	va_list ap;

	c->x->st[i] = LV_REFUSED;
	c->quiet[i] = quiet;
	va_start(ap, fmt);
	vsnprintf(li->why_not, sizeof(li->why_not), fmt, ap);
	va_end(ap);
	if (!quiet && !li->sub)
		vd_log(VD_LOG_WARN, "%s: LVM: VG %s: LV %s is not shown: %s",
		       c->s->name, c->x->shown_name, li->name, li->why_not);
}

/* A reason, cut to fit (the reasons quote other LVs' reasons). */
static __attribute__((format(printf, 3, 4))) void
why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* Where area a of an LV (area_len extents) starts, in bytes of *vol_r;
 * 0, or a reason in why (and -1). */
static int lv_area(struct vg_ctx *c, const struct lvm_area *a,
		   uint64_t area_len, const struct vd_vol **vol_r,
		   uint64_t *off_r, char *why, size_t why_len, bool *quiet)
{
	uint64_t end, pe0;

	*quiet = false;
	if (a->pv >= 0) {
		const struct lvm_pv_meta *pv = &c->vg->pv[a->pv];
		const struct vd_vol *v = c->x->pv_vol[a->pv];

		if (!v) {
			*quiet = true;
			why_set(why, why_len, "it lies on PV %s, which is "
					       "missing", pv->id);
			return -1;
		}
		if (!vd_range_ok(a->start, area_len, pv->pe_count)) {
			why_set(why, why_len, "extents %llu+%llu lie past "
				 "the last extent of PV %s (%llu extents)",
				 (unsigned long long)a->start,
				 (unsigned long long)area_len, pv->id,
				 (unsigned long long)pv->pe_count);
			return -1;
		}
		if (__builtin_mul_overflow(pv->pe_start, LVM_SECTOR, &pe0) ||
		    __builtin_mul_overflow(a->start + area_len, c->es, &end) ||
		    __builtin_add_overflow(end, pe0, &end) || end > v->len) {
			why_set(why, why_len, "extents %llu+%llu lie past "
				 "the end of PV %s (%llu bytes)",
				 (unsigned long long)a->start,
				 (unsigned long long)area_len, pv->id,
				 (unsigned long long)v->len);
			return -1;
		}
		*vol_r = v;
		*off_r = pe0 + a->start * c->es;
		return 0;
	}
	if (a->lv < 0 || c->x->st[a->lv] != LV_OK || !c->x->lv[a->lv].vol) {
		const char *name = a->lv >= 0 ? c->vg->lv[a->lv].name : "?";

		if (a->lv >= 0 && c->quiet[a->lv])
			*quiet = true;
		why_set(why, why_len, "it uses LV %s, which cannot be read%s%s",
			 name, a->lv >= 0 && c->x->lv[a->lv].why_not[0] ?
				       ": " : "",
			 a->lv >= 0 ? c->x->lv[a->lv].why_not : "");
		return -1;
	}
	if (!vd_range_ok(a->start, area_len, c->vg->lv[a->lv].extents)) {
		why_set(why, why_len, "extents %llu+%llu lie past the end "
			 "of LV %s", (unsigned long long)a->start,
			 (unsigned long long)area_len, c->vg->lv[a->lv].name);
		return -1;
	}
	*vol_r = c->x->lv[a->lv].vol;
	*off_r = a->start * c->es;
	return 0;
}

/* Checks that need no other LV: 0, or the LV refused. */
static int lv_check(struct vg_ctx *c, uint32_t i)
{
	const struct lvm_lv *lv = &c->vg->lv[i];
	uint64_t next = 0, size;

	if (lv->bad[0]) {
		lv_refuse(c, i, false, "%s", lv->bad);
		return -1;
	}
	if (__builtin_mul_overflow(lv->extents, c->es, &size)) {
		lv_refuse(c, i, false, "its size (%llu extents of %llu bytes) "
			  "overflows", (unsigned long long)lv->extents,
			  (unsigned long long)c->es);
		return -1;
	}
	for (uint32_t k = 0; k < lv->n_seg; k++) {
		const struct lvm_seg *s = &lv->seg[k];

		if (s->kind == LVM_SEG_OTHER) {
			lv_refuse(c, i, false, "segment type %s is not "
				  "supported", s->type);
			return -1;
		}
		if (s->kind == LVM_SEG_SNAPSHOT) {
			lv_refuse(c, i, true, "an old-style snapshot");
			return -1;
		}
		if (!s->extent_count || s->start_extent != next) {
			lv_refuse(c, i, false, "%s at extent %llu (expected "
				  "%llu, %llu extents)",
				  s->start_extent < next ?
					  "segments overlap" :
				  s->extent_count ? "a gap" :
						    "an empty segment",
				  (unsigned long long)s->start_extent,
				  (unsigned long long)next,
				  (unsigned long long)s->extent_count);
			return -1;
		}
		next = s->start_extent + s->extent_count; /* <= extents */
		if ((s->kind == LVM_SEG_THIN || s->kind == LVM_SEG_THIN_POOL) &&
		    lv->n_seg != 1) {
			lv_refuse(c, i, false, "a %s LV of %u segments",
				  s->type, lv->n_seg);
			return -1;
		}
		if (s->kind == LVM_SEG_STRIPED && s->stripe_count > 1) {
			uint64_t per, bytes, ss;

			if (s->extent_count % s->stripe_count) {
				lv_refuse(c, i, false, "%llu extents do not "
					  "divide into %u stripes",
					  (unsigned long long)s->extent_count,
					  s->stripe_count);
				return -1;
			}
			per = s->extent_count / s->stripe_count;
			/* per * es <= lv size, which did not overflow. */
			bytes = per * c->es;
			if (!s->stripe_size ||
			    __builtin_mul_overflow(s->stripe_size, LVM_SECTOR,
						   &ss) ||
			    bytes % ss) {
				lv_refuse(c, i, false, "stripe size %llu "
					  "sectors does not divide a stripe "
					  "of %llu bytes",
					  (unsigned long long)s->stripe_size,
					  (unsigned long long)bytes);
				return -1;
			}
		}
	}
	return 0;
}

/* The LVs LV i needs: each dep is called with hard (the LV cannot be
 * read without it) or soft (one leg of several). Returns what it
 * found: 1 some still undecided, -1 a hard dep refused (*bad), -2 LV i
 * refers to itself, 0 all decided. */
static int lv_deps(struct vg_ctx *c, uint32_t i, int *bad, unsigned *stack)
{
	const struct lvm_lv *lv = &c->vg->lv[i];
	int ret = 0;

	*stack = 1;
	for (uint32_t k = 0; k < lv->n_seg; k++) {
		const struct lvm_seg *s = &lv->seg[k];
		int dep[2 * LVM_MAX_STRIPES + 2];
		bool hard[2 * LVM_MAX_STRIPES + 2];
		unsigned n = 0;

		switch (s->kind) {
		case LVM_SEG_STRIPED:
		case LVM_SEG_MIRROR:
		case LVM_SEG_RAID1:
			for (uint32_t a = 0; a < s->n_area; a++) {
				hard[n] = s->kind == LVM_SEG_STRIPED;
				dep[n++] = s->area[a].lv;
				hard[n] = false;
				dep[n++] = s->area[a].meta;
			}
			break;
		case LVM_SEG_THIN_POOL:
			hard[n] = true;
			dep[n++] = s->meta_lv;
			hard[n] = true;
			dep[n++] = s->data_lv;
			break;
		case LVM_SEG_THIN:
			hard[n] = true;
			dep[n++] = s->pool_lv;
			hard[n] = true;
			dep[n++] = s->ext_origin_lv;
			break;
		default:
			break;
		}
		for (unsigned d = 0; d < n; d++) {
			if (dep[d] < 0)
				continue;
			if ((uint32_t)dep[d] == i)
				return -2;
			if (c->x->st[dep[d]] == LV_UNDECIDED) {
				ret = 1;
			} else if (c->x->st[dep[d]] == LV_REFUSED && hard[d]) {
				*bad = dep[d];
				return -1;
			} else if (c->x->st[dep[d]] == LV_OK) {
				*stack = VD_MAX(*stack,
						c->x->stack[dep[d]] + 1);
			}
		}
	}
	return ret;
}

/* dm-raid's superblock at the start of a raid1 leg's _rmeta LV (the
 * kernel's drivers/md/dm-raid.c, struct dm_raid_superblock): 0 magic
 * "DmRd", 12 array_position, 24 failed_devices (bits), 32
 * disk_recovery_offset (all ones once the leg is in sync). A leg with
 * no superblock was never activated: nothing says it is out of sync. */
#define DM_RAID_MAGIC 0x64526d44u

static bool leg_in_sync(struct vg_ctx *c, const struct lvm_area *a)
{
	uint8_t sb[40];
	const struct vd_vol *m;
	uint32_t pos;

	if (a->lv >= 0 && (c->vg->lv[a->lv].status & LVM_LV_REBUILD))
		return false;
	if (a->meta < 0 || c->x->st[a->meta] != LV_OK)
		return true;
	m = c->x->lv[a->meta].vol;
	if (!m || m->len < sizeof(sb) || vd_vol_read(m, sb, sizeof(sb), 0))
		return true;
	if (get_le32(sb) != DM_RAID_MAGIC)
		return true;
	pos = get_le32(sb + 12);
	if (pos < 64 && (get_le64(sb + 24) >> pos & 1))
		return false;
	return get_le64(sb + 32) == UINT64_MAX;
}

/* Segment k of LV i into m: 0, or the LV refused (1), or -ENOMEM. */
static int lv_build_seg(struct vg_ctx *c, uint32_t i, const struct lvm_seg *s,
			struct lvm_mseg *ms, struct lvm_marea *areas)
{
	char why[192];
	bool quiet;

	ms->start = s->start_extent * c->es;
	ms->len = s->extent_count * c->es;
	ms->area = areas;
	switch (s->kind) {
	case LVM_SEG_ZERO:
		ms->kind = MSEG_ZERO;
		return 0;
	case LVM_SEG_STRIPED: {
		uint64_t per = s->extent_count / s->stripe_count;

		ms->kind = MSEG_STRIPED;
		ms->stripes = s->stripe_count;
		ms->chunk = s->stripe_size * LVM_SECTOR;
		for (uint32_t a = 0; a < s->n_area; a++)
			if (lv_area(c, &s->area[a], per, &areas[a].vol,
				    &areas[a].off, why, sizeof(why), &quiet)) {
				lv_refuse(c, i, quiet, "%s", why);
				return 1;
			}
		return 0;
	}
	case LVM_SEG_MIRROR:
	case LVM_SEG_RAID1: {
		int first = -1, leg = -1;

		ms->kind = MSEG_STRIPED;
		ms->stripes = 1;
		for (uint32_t a = 0; a < s->n_area && leg < 0; a++) {
			struct lvm_marea m;

			if (lv_area(c, &s->area[a], s->extent_count, &m.vol,
				    &m.off, why, sizeof(why), &quiet))
				continue;
			if (first < 0) {
				first = (int)a;
				areas[0] = m;
			}
			if (s->kind == LVM_SEG_RAID1 &&
			    !leg_in_sync(c, &s->area[a]))
				continue;
			leg = (int)a;
			areas[0] = m;
		}
		if (first < 0) {
			lv_refuse(c, i, quiet, "no leg of its %s segment at "
				  "extent %llu can be read (%s)", s->type,
				  (unsigned long long)s->start_extent, why);
			return 1;
		}
		if (leg < 0)
			vd_log(VD_LOG_WARN, "%s: LVM: VG %s: LV %s: no leg is "
			       "known to be in sync; reading leg %d",
			       c->s->name, c->x->shown_name, c->vg->lv[i].name,
			       first);
		return 0;
	}
	case LVM_SEG_THIN: {
		const struct lvm_lv *pl = &c->vg->lv[s->pool_lv];
		struct lvm_thin_pool *pool = c->x->pool[s->pool_lv];
		int ret;

		if (!pool || pl->n_seg != 1 ||
		    pl->seg[0].kind != LVM_SEG_THIN_POOL) {
			lv_refuse(c, i, false, "its thin_pool %s is not a "
				  "thin pool", pl->name);
			return 1;
		}
		ret = lvm_thin_has_dev(pool, s->device_id);
		if (ret == -ENOMEM)
			return ret;
		if (ret < 0) {
			lv_refuse(c, i, false, "thin device %llu is not in "
				  "pool %s's metadata",
				  (unsigned long long)s->device_id, pl->name);
			return 1;
		}
		ms->kind = MSEG_THIN;
		ms->pool = pool;
		ms->dev = s->device_id;
		ms->data = c->x->lv[pl->seg[0].data_lv].vol;
		/* An external origin: what the thin LV has not written is
		 * read from it (a read-only LV of any kind). */
		if (s->ext_origin_lv >= 0) {
			ms->origin = c->x->lv[s->ext_origin_lv].vol;
			if (!ms->origin) {
				lv_refuse(c, i, false, "its external origin %s "
					  "is not a readable LV",
					  c->vg->lv[s->ext_origin_lv].name);
				return 1;
			}
		}
		return 0;
	}
	default:
		lv_refuse(c, i, false, "segment type %s is not supported",
			  s->type);
		return 1;
	}
}

static int lv_build_pool(struct vg_ctx *c, uint32_t i)
{
	const struct lvm_seg *s = &c->vg->lv[i].seg[0];
	const struct vd_vol *meta = c->x->lv[s->meta_lv].vol;
	const struct vd_vol *data = c->x->lv[s->data_lv].vol;
	struct vd_err e = { "" };
	uint64_t chunk;
	bool fresh = false;
	int ret;

	if (!meta || !data) {
		lv_refuse(c, i, false, "its metadata or data LV is not a "
			  "plain LV");
		return 0;
	}
	if (__builtin_mul_overflow(s->chunk_size, LVM_SECTOR, &chunk))
		chunk = 0;
	ret = lvm_thin_open(meta, data, chunk, c->x->lv[i].dm_name,
			    &c->x->pool[i], &fresh, &e);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		lv_refuse(c, i, false, "%s", e.msg);
		return 0;
	}
	if (fresh)
		vd_log(VD_LOG_WARN, "%s: LVM: VG %s: thin pool %s was never "
		       "activated (its metadata is empty): its thin LVs read "
		       "as zeros", c->s->name, c->x->shown_name,
		       c->vg->lv[i].name);
	else if (lvm_thin_transaction(c->x->pool[i]) != s->transaction_id)
		vd_log(VD_LOG_WARN, "%s: LVM: VG %s: thin pool %s: its "
		       "metadata is at transaction %llu, LVM's at %llu",
		       c->s->name, c->x->shown_name, c->vg->lv[i].name,
		       (unsigned long long)lvm_thin_transaction(c->x->pool[i]),
		       (unsigned long long)s->transaction_id);
	c->x->st[i] = LV_OK;
	return 0;
}

/* LV i, whose deps are all decided, into a volume (or a pool). 0 (built
 * or refused) or -ENOMEM. */
static int lv_build(struct vg_ctx *c, uint32_t i)
{
	const struct lvm_lv *lv = &c->vg->lv[i];
	struct vd_lvm_lv *li = &c->x->lv[i];
	struct lvm_mvol *m;
	struct lvm_mseg *segs;
	struct lvm_marea *areas;
	char name[512];
	size_t n_area = 0;
	int ret;

	if (lv->seg[0].kind == LVM_SEG_THIN_POOL)
		return lv_build_pool(c, i);
	for (uint32_t k = 0; k < lv->n_seg; k++)
		n_area += lv->seg[k].kind == LVM_SEG_STRIPED ?
				  lv->seg[k].n_area : 1;
	segs = calloc(lv->n_seg, sizeof(*segs));
	areas = calloc(n_area, sizeof(*areas));
	if (!segs || !areas) {
		ret = -ENOMEM;
		goto fail;
	}
	n_area = 0;
	for (uint32_t k = 0; k < lv->n_seg; k++) {
		ret = lv_build_seg(c, i, &lv->seg[k], &segs[k], areas + n_area);
		if (ret)
			goto fail;
		n_area += lv->seg[k].kind == LVM_SEG_STRIPED ?
				  lv->seg[k].n_area : 1;
	}
	snprintf(name, sizeof(name), "%s %s", c->s->name, li->dm_name);
	m = (struct lvm_mvol *)vd_vol_new(&lvm_vol_ops, sizeof(*m), li->size,
					  name);
	if (!m) {
		ret = -ENOMEM;
		goto fail;
	}
	m->n_seg = lv->n_seg;
	m->seg = segs;
	m->areas = areas;
	snprintf(m->v.label, sizeof(m->v.label), "%s", li->dm_name);
	vd_volset_unique_label(c->s, m->v.label, sizeof(m->v.label));
	m->v.depth = c->x->depth;
	m->v.hidden = li->sub;
	m->v.desc = li;
	ret = vd_volset_add(c->s, &m->v);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		lv_refuse(c, i, false, "the image holds too many volumes");
		return 0;
	}
	li->vol = &m->v;
	li->shown = !li->sub;
	c->x->st[i] = LV_OK;
	return 0;
fail:
	free(segs);
	free(areas);
	return ret < 0 ? ret : 0;
}

/* ---------------------------------------------------------- the VG */

void lvm_vgx_free(struct lvm_vgx *x)
{
	if (!x)
		return;
	for (uint32_t i = 0; x->pool && i < x->vg->n_lv; i++)
		lvm_thin_close(x->pool[i]);
	free(x->pool);
	free(x->pv);
	free(x->lv);
	free(x->seg);
	free(x->pv_vol);
	free(x->st);
	free(x->stack);
	lvm_vg_free(x->vg);
	free(x);
}

static uint64_t sectors_to_bytes(uint64_t n)
{
	return n > UINT64_MAX / LVM_SECTOR ? UINT64_MAX : n * LVM_SECTOR;
}

/* The description of vg for front ends, and the PVs matched. */
static int vgx_describe(struct vd_volset *s, struct lvm_state *st,
			struct lvm_vgx *x)
{
	struct lvm_vg *vg = x->vg;
	uint32_t nseg = 0;

	x->pv = calloc(vg->n_pv, sizeof(*x->pv));
	x->pv_vol = calloc(vg->n_pv, sizeof(*x->pv_vol));
	x->lv = calloc(vg->n_lv ? vg->n_lv : 1, sizeof(*x->lv));
	x->seg = calloc(vg->n_segs ? vg->n_segs : 1, sizeof(*x->seg));
	x->st = calloc(vg->n_lv ? vg->n_lv : 1, sizeof(*x->st));
	x->stack = calloc(vg->n_lv ? vg->n_lv : 1, sizeof(*x->stack));
	x->pool = calloc(vg->n_lv ? vg->n_lv : 1, sizeof(*x->pool));
	if (!x->pv || !x->pv_vol || !x->lv || !x->seg || !x->st ||
	    !x->stack || !x->pool)
		return -ENOMEM;
	/* Two VGs of one name: the later one's volumes get its UUID. */
	snprintf(x->shown_name, sizeof(x->shown_name), "%s", vg->name);
	for (unsigned k = 0; k < st->n_vgx; k++)
		if (!strcmp(st->vgx[k]->vg->name, vg->name)) {
			snprintf(x->shown_name, sizeof(x->shown_name), "%s_%s",
				 vg->name, vg->uuid);
			vd_log(VD_LOG_WARN, "%s: LVM: two VGs are named %s; "
			       "the one of UUID %s is shown as %s", s->name,
			       vg->name, vg->id, x->shown_name);
			break;
		}
	x->depth = 1;
	for (uint32_t p = 0; p < vg->n_pv; p++) {
		const struct lvm_pv_meta *pm = &vg->pv[p];

		for (unsigned k = 0; k < st->n_scan; k++) {
			const struct lvm_scan *sc = &st->scan[k];

			if (!sc->labelled || strcmp(sc->l.uuid, pm->uuid))
				continue;
			if (x->pv_vol[p]) {
				vd_log(VD_LOG_WARN, "%s: LVM: PV %s is on both "
				       "%s and %s; using the first", s->name,
				       pm->id, x->pv_vol[p]->name,
				       sc->vol->name);
				continue;
			}
			x->pv_vol[p] = sc->vol;
			x->depth = VD_MAX(x->depth, sc->vol->depth + 1);
		}
		x->pv[p] = (struct vd_lvm_pv){
			pm->id, pm->key, x->pv_vol[p],
			sectors_to_bytes(pm->dev_size),
			sectors_to_bytes(pm->pe_start), pm->pe_count
		};
		if (!x->pv_vol[p]) {
			x->info.n_missing++;
			vd_log(VD_LOG_WARN, "%s: LVM: VG %s: PV %s is missing; "
			       "the LVs on it are not shown", s->name,
			       x->shown_name, pm->id);
		}
	}
	for (uint32_t i = 0; i < vg->n_lv; i++) {
		const struct lvm_lv *lv = &vg->lv[i];
		struct vd_lvm_lv *li = &x->lv[i];

		li->name = lv->name;
		li->uuid = lv->id;
		lvm_dm_name(x->shown_name, lv->name, li->dm_name,
			    sizeof(li->dm_name));
		if (__builtin_mul_overflow(lv->extents,
					   vg->extent_size * LVM_SECTOR,
					   &li->size))
			li->size = 0;
		li->sub = !(lv->status & LVM_LV_VISIBLE) ||
			  (lv->n_seg && lv->seg[0].kind == LVM_SEG_THIN_POOL);
		li->n_seg = lv->n_seg;
		li->seg = x->seg + nseg;
		for (uint32_t k = 0; k < lv->n_seg; k++) {
			const struct lvm_seg *sg = &lv->seg[k];

			x->seg[nseg++] = (struct vd_lvm_seg){
				sg->type, sg->start_extent, sg->extent_count,
				sg->n_area,
				sg->kind == LVM_SEG_STRIPED && sg->n_area > 1 ?
					sectors_to_bytes(sg->stripe_size) : 0
			};
		}
	}
	x->info = (struct vd_lvm_vg){
		vg->name, x->shown_name, vg->id, vg->extent_size * LVM_SECTOR,
		vg->seqno, vg->n_pv, x->info.n_missing, x->pv, vg->n_lv, x->lv
	};
	return 0;
}

int lvm_vgx_assemble(struct vd_volset *s, struct lvm_state *st,
		     struct lvm_vgx *x)
{
	struct vg_ctx c = { s, x, x->vg, x->vg->extent_size * LVM_SECTOR,
			    NULL };
	uint32_t n = x->vg->n_lv;
	int ret = vgx_describe(s, st, x);

	if (ret < 0)
		return ret;
	c.quiet = calloc(n ? n : 1, sizeof(*c.quiet));
	if (!c.quiet)
		return -ENOMEM;
	/* Old-style snapshots: the COW store is not the snapshot's data. */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < x->vg->lv[i].n_seg; k++) {
			int cow = x->vg->lv[i].seg[k].cow_lv;

			if (cow >= 0 && x->st[cow] == LV_UNDECIDED)
				lv_refuse(&c, (uint32_t)cow, false,
					  "an old-style (COW) snapshot, not "
					  "supported");
		}
	for (uint32_t i = 0; i < n; i++)
		if (x->st[i] == LV_UNDECIDED)
			lv_check(&c, i);
	/* Each pass decides every LV whose deps are decided; an LV
	 * stacked d deep is decided by pass d, so after LVM_MAX_STACK + 1
	 * passes what is left is in a loop or too deep. */
	for (unsigned pass = 0; pass <= LVM_MAX_STACK + 1; pass++) {
		bool left = false;

		for (uint32_t i = 0; i < n; i++) {
			unsigned stack;
			int bad = -1, r;

			if (x->st[i] != LV_UNDECIDED)
				continue;
			r = lv_deps(&c, i, &bad, &stack);
			if (r == 1) {
				left = true;
				continue;
			}
			if (r == -2) {
				lv_refuse(&c, i, false, "it refers to itself");
			} else if (r == -1) {
				lv_refuse(&c, i, c.quiet[bad], "it uses LV %s, "
					  "which cannot be read: %s",
					  x->vg->lv[bad].name,
					  x->lv[bad].why_not);
			} else if (stack > LVM_MAX_STACK) {
				lv_refuse(&c, i, false, "LVs stacked more "
					  "than %u deep", LVM_MAX_STACK);
			} else {
				x->stack[i] = stack;
				ret = lv_build(&c, i);
				if (ret < 0)
					goto out;
			}
		}
		if (!left)
			break;
	}
	for (uint32_t i = 0; i < n; i++)
		if (x->st[i] == LV_UNDECIDED)
			lv_refuse(&c, i, false, "it refers to LVs in a loop, "
				  "or is stacked more than %u deep",
				  LVM_MAX_STACK);
	ret = 0;
out:
	free(c.quiet);
	return ret;
}

