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

#include "common/util.h"
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

/* Whether disc_probe looks at v: a hidden volume (an LV's sub-volume:
 * a raid leg, a thin pool's data) holds what its LV shows, or nothing of
 * its own. */
static bool disc_will_probe(const struct vd_vol *v)
{
	return v->role == VD_VOL_RAW && !v->hidden &&
	       v->depth < VD_VOL_MAX_DEPTH;
}

/* Probe one volume: a scheme, else an assembler's label. */
static int disc_probe(struct vd_volset *s, struct vd_vol *v,
		      struct disc_claims *claims)
{
	int ret;

	if (!disc_will_probe(v))
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

/* Read-ahead for the probes. Each probe is a few small reads near a
 * volume's start, and the filesystem probes of the layer above read the
 * same places: sector 0 (MBR, LUKS, vfat, XFS, NTFS), the LVM label in
 * sectors 0-3, ext's superblock at 1024, a GPT header at 512 or 4096;
 * and btrfs' superblock at 64 KiB. With the host's cache cold, probing
 * in turn waited for each of those pages; and as the probes' reads went
 * forward through the image file, the kernel took them for a sequential
 * reader and read the whole file ahead (all 26 MiB of the bench's qcow2
 * of a VG of 200 LVs, to probe 3 MiB of it). Asked for ahead, without
 * waiting, the pages are read together and nothing else is. A window of
 * volumes at a time, so what is asked for stays small whatever the
 * number of volumes. */
#define DISC_AHEAD_VOLS 256u
#define DISC_HEAD_BYTES 8192u
#define DISC_SB_OFF 65536u
#define DISC_SB_BYTES 4096u

/* Read ahead for the volumes [*ahead, next + DISC_AHEAD_VOLS) that will
 * be probed; *ahead moves past them. Best effort: nothing fails. */
static void disc_prefetch(const struct vd_volset *s, unsigned next,
			  unsigned *ahead)
{
	unsigned end = VD_MIN(s->n, next + DISC_AHEAD_VOLS);

	if (*ahead < next)
		*ahead = next;
	/* One volume alone gains nothing from its reads being asked for
	 * first (the disk, say). */
	if (end - *ahead < 2)
		return;
	for (; *ahead < end; (*ahead)++) {
		const struct vd_vol *v = s->vols[*ahead];

		if (!disc_will_probe(v))
			continue;
		vd_vol_prefetch(v, 0, DISC_HEAD_BYTES);
		if (vd_range_ok(DISC_SB_OFF, DISC_SB_BYTES, v->len))
			vd_vol_prefetch(v, DISC_SB_OFF, DISC_SB_BYTES);
	}
}

static int disc_run(struct vd_volset *s, struct disc_claims *claims)
{
	unsigned next = 0, ahead = 0;
	int ret;

	/* Ends: see the top of the file. */
	for (;;) {
		unsigned before;

		while (next < s->n) {
			if (ahead <= next)
				disc_prefetch(s, next, &ahead);
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
