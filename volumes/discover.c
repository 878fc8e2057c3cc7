/* Discovery: from the disk down to every volume an image holds.
 *
 * Volumes are probed in id order, each once: a scheme that recognises one
 * adds its children at the end of the table (so they are probed in turn);
 * else an assembler may claim it by its label. When every volume has been
 * probed, the assemblers that claimed new members assemble, adding their
 * volumes, and probing goes on with those; it ends when a pass adds
 * nothing. Each volume is probed once and a child is one level deeper
 * than its parent, so the walk ends: at most VD_VOL_MAX volumes, none
 * deeper than VD_VOL_MAX_DEPTH (a PV in an LV in a PV... stops there).
 *
 * Filesystems are not looked for here: that is the layer above (ns/),
 * on the volumes left raw. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "volumes/vol.h"

extern const struct vd_scheme vd_scheme_parts;
extern const struct vd_scheme vd_scheme_luks;
extern const struct vd_assembler vd_lvm_assembler;
extern const struct vd_assembler vd_btrfs_assembler;

const struct vd_scheme *const vd_schemes[] = {
	&vd_scheme_luks, /* its magic is sure; a table's signature less so */
	&vd_scheme_parts,
	NULL,
};

const struct vd_assembler *const vd_assemblers[] = {
	&vd_lvm_assembler,
	&vd_btrfs_assembler,
	NULL,
};

/* Assemblers in the table (counted, so that an empty table does not
 * make every loop over it a constant comparison). */
static unsigned disc_n_asm(void)
{
	unsigned n = 0;

	while (vd_assemblers[n])
		n++;
	return n;
}

/* Volumes claimed by one assembler, in id order. */
struct disc_claims {
	struct vd_vol **v;
	unsigned n, cap;
	unsigned assembled; /* n when it last assembled */
};

static int disc_claim(struct disc_claims *c, struct vd_vol *v)
{
	if (c->n == c->cap) {
		/* Bounded by VD_VOL_MAX volumes in the set. */
		unsigned cap = c->cap ? 2 * c->cap : 8;
		struct vd_vol **nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = v;
	return 0;
}

static void disc_error(struct vd_vol *v, const char *msg, const char *what)
{
	vd_log(VD_LOG_WARN, "%s; %s", msg, what);
	free(v->error);
	v->error = strdup(msg);
}

/* Probe one volume: a scheme, else an assembler's label. */
static int disc_probe(struct vd_volset *s, struct vd_vol *v,
		      struct disc_claims *claims)
{
	int ret;

	/* A hidden volume (an LV's sub-volume: a raid leg, a thin pool's
	 * data) holds what its LV shows, or nothing of its own. */
	if (v->role != VD_VOL_RAW || v->hidden ||
	    v->depth >= VD_VOL_MAX_DEPTH)
		return 0;
	for (unsigned i = 0; vd_schemes[i]; i++) {
		struct vd_err e = { "" };

		if (!vd_schemes[i]->probe(v))
			continue;
		ret = vd_schemes[i]->open(s, v, &e);
		if (!ret) {
			v->role = VD_VOL_TABLE;
			return 0;
		}
		if (ret == -ENOMEM)
			return ret;
		if (ret == -ENOSPC) {
			vd_log(VD_LOG_WARN, "%s: more than %u volumes; the "
			       "rest are not shown", s->name, VD_VOL_MAX);
			return ret;
		}
		if (ret != -ENODEV) {
			disc_error(v, e.msg[0] ? e.msg : strerror(-ret),
				   v->id ? "its bytes are shown raw" :
					   "only disk.raw is shown");
			/* A table that was there but bad: nothing else is
			 * looked for in the volume. */
			return 0;
		}
	}
	for (unsigned i = 0; vd_assemblers[i]; i++) {
		if (!vd_assemblers[i]->probe(v))
			continue;
		v->role = VD_VOL_MEMBER;
		v->member_of = vd_assemblers[i]->name;
		return disc_claim(&claims[i], v);
	}
	return 0;
}

static int disc_run(struct vd_volset *s, struct disc_claims *claims)
{
	unsigned next = 0;
	int ret;

	/* Ends: see the top of the file. */
	for (;;) {
		unsigned before;

		while (next < s->n) {
			ret = disc_probe(s, s->vols[next++], claims);
			if (ret == -ENOSPC)
				return 0;
			if (ret)
				return ret;
		}
		before = s->n;
		for (unsigned i = 0; i < disc_n_asm(); i++) {
			struct disc_claims *c = &claims[i];

			if (c->n == c->assembled)
				continue;
			c->assembled = c->n;
			ret = vd_assemblers[i]->assemble(s, c->v, c->n,
							 &s->asm_state[i]);
			if (ret == -ENOSPC)
				return 0;
			if (ret)
				return ret;
		}
		if (s->n == before)
			return 0;
	}
}

int vd_volset_open(struct vd_disk *d, const char *name,
		   const struct vd_volset_opts *o, struct vd_volset **s_r)
{
	struct disc_claims *claims = calloc(disc_n_asm() + 1, sizeof(*claims));
	struct vd_volset *s = calloc(1, sizeof(*s));
	struct vd_vol *dv;
	int ret = -ENOMEM;

	if (!s || !claims) {
		free(s);
		free(claims);
		return -ENOMEM;
	}
	s->disk = d;
	s->keys = o->keys;
	s->name = strdup(name);
	s->asm_state = calloc(disc_n_asm() + 1, sizeof(*s->asm_state));
	dv = s->name && s->asm_state ? vd_vol_new_disk(d, name) : NULL;
	if (!dv)
		goto out;
	ret = vd_volset_add(s, dv);
	if (ret)
		goto out;
	ret = o->no_partitions ? 0 : disc_run(s, claims);
out:
	for (unsigned i = 0; i < disc_n_asm(); i++)
		free(claims[i].v);
	free(claims);
	if (ret) {
		vd_volset_close(s);
		return ret;
	}
	*s_r = s;
	return 0;
}

void vd_volset_close(struct vd_volset *s)
{
	if (!s)
		return;
	/* Children before the volumes they read through. */
	for (unsigned i = s->n; i-- > 0;)
		vd_vol_free(s->vols[i]);
	for (unsigned i = 0; s->asm_state && i < disc_n_asm(); i++)
		if (s->asm_state[i])
			vd_assemblers[i]->free_state(s->asm_state[i]);
	free(s->asm_state);
	free(s->vols);
	free((char *)s->name);
	free(s);
}
