/* Partition tables: which scheme a disk uses, and the helpers that mbr.c
 * and gpt.c share (checked reads, the list builder, GUID text).
 *
 * Choosing the scheme follows Linux's order (block/partitions/core.c
 * tries efi before msdos):
 *   - sector 0 without the 0x55 0xaa signature, or with a boot flag other
 *     than 0x00/0x80 in one of its four entries (a FAT or NTFS boot sector
 *     filling the whole disk has the signature too): no MBR. A GPT is
 *     then read only if a primary GPT header's signature is there.
 *   - an MBR with an 0xee entry (protective, or hybrid with other entries
 *     beside it): GPT, and a GPT that cannot be read fails the table.
 *   - any other MBR: MBR, a stale GPT behind it ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/part-internal.h"

int vd_part_read(struct part_ctx *c, void *buf, size_t len, uint64_t off,
		 const char *what)
{
	int ret;

	if (!vd_range_ok(off, len, c->size))
		return vd_fail(c->e, -EUCLEAN, "%s: %s (%zu bytes at byte "
			       "%llu) lies past the disk's end (%llu bytes)",
			       c->name, what, len, (unsigned long long)off,
			       (unsigned long long)c->size);
	ret = vd_vol_read(c->v, buf, len, off);
	if (ret < 0)
		return vd_fail(c->e, ret, "%s: cannot read the %s at byte "
			       "%llu: %s", c->name, what,
			       (unsigned long long)off, strerror(-ret));
	return 0;
}

struct vd_part *vd_part_add(struct part_ctx *c, unsigned num, uint64_t start,
			    uint64_t len, int *err)
{
	struct vd_part *pt;

	*err = 0;
	if (start >= c->size) {
		vd_log(VD_LOG_WARN, "%s: partition %u starts at byte %llu, at "
		       "or past the disk's end (%llu bytes); skipped", c->name,
		       num, (unsigned long long)start,
		       (unsigned long long)c->size);
		return NULL;
	}
	if (len > c->size - start) {
		vd_log(VD_LOG_WARN, "%s: partition %u (%llu bytes at byte "
		       "%llu) runs past the disk's end (%llu bytes); clipped "
		       "to %llu bytes", c->name, num, (unsigned long long)len,
		       (unsigned long long)start, (unsigned long long)c->size,
		       (unsigned long long)(c->size - start));
		len = c->size - start;
	}
	if (c->p->n == c->cap) {
		/* Bounded by the callers: 4 primaries plus
		 * VD_PART_MAX_LOGICAL EBRs of 4 entries, or
		 * VD_PART_MAX_GPT_ENTRIES. */
		unsigned cap = c->cap ? 2 * c->cap : 16;
		struct vd_parts *np = realloc(c->p, sizeof(*np) +
						    cap * sizeof(np->part[0]));

		if (!np) {
			*err = -ENOMEM;
			return NULL;
		}
		c->p = np;
		c->cap = cap;
	}
	pt = &c->p->part[c->p->n++];
	memset(pt, 0, sizeof(*pt));
	pt->num = num;
	pt->start = start;
	pt->len = len;
	return pt;
}

static int part_cmp_start(const void *a, const void *b)
{
	const struct vd_part *x = *(const struct vd_part *const *)a;
	const struct vd_part *y = *(const struct vd_part *const *)b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->num < y->num ? -1 : x->num > y->num;
}

void vd_part_check_overlaps(struct part_ctx *c)
{
	struct vd_parts *p = c->p;
	const struct vd_part **v;
	const struct vd_part *last = NULL;
	unsigned n = 0;

	if (p->n < 2)
		return;
	v = malloc(p->n * sizeof(*v));
	if (!v)
		return; /* only a warning is lost */
	for (unsigned i = 0; i < p->n; i++)
		if (!p->part[i].extended)
			v[n++] = &p->part[i];
	qsort(v, n, sizeof(*v), part_cmp_start);
	/* last: the partition reaching furthest so far; an overlap with
	 * any earlier one is an overlap with it. */
	for (unsigned i = 0; i < n; i++) {
		if (last && v[i]->start < last->start + last->len)
			vd_log(VD_LOG_WARN, "%s: partitions %u and %u overlap",
			       c->name, last->num, v[i]->num);
		if (!last || v[i]->start + v[i]->len >
				     last->start + last->len)
			last = v[i];
	}
	free(v);
}

void vd_guid_text(const uint8_t *g, char *buf, size_t len)
{
	char s[37];

	vd_uuid_str(g, true, s);
	snprintf(buf, len, "%s", s);
}

/* An MBR as Linux accepts one: the signature, and boot flags 0x00 or
 * 0x80 only. */
static bool part_is_mbr(const uint8_t *s)
{
	if (s[MBR_SIG_AT] != 0x55 || s[MBR_SIG_AT + 1] != 0xaa)
		return false;
	for (unsigned i = 0; i < 4; i++) {
		uint8_t boot = s[MBR_ENTRIES_AT + i * MBR_ENTRY_LEN];

		if (boot != 0 && boot != 0x80)
			return false;
	}
	return true;
}

int vd_parts_read(const struct vd_vol *v, const char *name,
		  struct vd_parts **p_r, struct vd_err *e)
{
	struct part_ctx c = { .v = v, .name = name, .size = v->len, .e = e };
	uint8_t mbr[MBR_SECTOR];
	bool pmbr = false;
	int ret = 0;

	*p_r = NULL;
	c.p = calloc(1, sizeof(*c.p));
	if (!c.p)
		return -ENOMEM;
	c.p->sector_size = MBR_SECTOR;
	if (c.size < MBR_SECTOR)
		goto out; /* too small for any table */
	ret = vd_part_read(&c, mbr, sizeof(mbr), 0, "MBR");
	if (ret < 0)
		goto out;

	if (part_is_mbr(mbr)) {
		for (unsigned i = 0; i < 4; i++) {
			const uint8_t *ent = mbr + MBR_ENTRIES_AT +
					     i * MBR_ENTRY_LEN;

			/* MBR entry, offset 4: the type byte. */
			if (ent[4] == MBR_TYPE_GPT)
				pmbr = true;
		}
		if (!pmbr) {
			ret = vd_mbr_read(&c, mbr);
			goto out;
		}
	}
	ret = vd_gpt_read(&c, mbr, pmbr);
out:
	if (ret < 0) {
		free(c.p);
		return ret;
	}
	vd_part_check_overlaps(&c);
	*p_r = c.p;
	return 0;
}

void vd_parts_free(struct vd_parts *p)
{
	free(p);
}

/* ---- the partition-table scheme */

static int parts_probe(const struct vd_vol *v)
{
	/* A partition holds no table of its own, as Linux reads it (a FAT
	 * or NTFS boot sector in it carries the MBR signature too). */
	return !(v->parent && v->parent->parts);
}

static int parts_open(struct vd_volset *s, struct vd_vol *v, struct vd_err *e)
{
	struct vd_parts *p;
	int ret;

	ret = vd_parts_read(v, v->name, &p, e);
	if (ret)
		return ret;
	if (p->scheme == VD_PART_NONE) {
		vd_parts_free(p);
		return -ENODEV;
	}
	v->parts = p;
	/* An MBR that lists nothing (a FAT boot sector filling the whole
	 * disk carries its signature) leaves the volume to be probed for
	 * what else it holds; the empty table is kept for vdtool info. */
	if (!p->n)
		return -ENODEV;
	for (unsigned i = 0; i < p->n; i++) {
		const struct vd_part *pt = &p->part[i];
		struct vd_vol *c;
		char *name;

		/* The disk's partitions are pN, as ever; a table inside a
		 * volume (a guest disk on an LV) names its partitions after
		 * it, as kpartx does: vg0-vm1p1. */
		if (asprintf(&name, "%s %sp%u", s->name, v->label,
			     pt->num) < 0)
			return -ENOMEM;
		c = vd_vol_new_slice(v, pt->start, pt->len, name);
		free(name);
		if (!c)
			return -ENOMEM;
		snprintf(c->label, sizeof(c->label), "%.80sp%u", v->label,
			 pt->num);
		vd_volset_unique_label(s, c->label, sizeof(c->label));
		c->parent = v;
		c->depth = v->depth + 1;
		c->desc = pt;
		/* An extended partition holds EBRs and the logical
		 * partitions, never anything of its own. */
		if (pt->extended)
			c->role = VD_VOL_CONTAINER;
		ret = vd_volset_add(s, c);
		if (ret)
			return ret;
	}
	return 0;
}

const struct vd_scheme vd_scheme_parts = {
	.name = "mbr/gpt",
	.probe = parts_probe,
	.open = parts_open,
};
