/* A btrfs filesystem over several volumes (mkfs.btrfs -d raid1 over two
 * partitions, two LVs), assembled by fsid and devid. The volumes are
 * those of one disk: an OVA's other disks are not opened (--disk=N picks
 * one), so their devices are missing.
 *
 * probe claims a volume whose btrfs superblock says the filesystem has
 * more than one device; a single-device btrfs is left to fsread/ as any
 * filesystem. assemble groups the claimed volumes by fsid and adds one
 * volume per filesystem, named btrfs-FSID: its bytes are those of the
 * member with the newest generation (whose superblock fsread/btrfs.c
 * reads), and its desc lists every member by devid, so the driver maps
 * each chunk's stripes to their volumes. A device not in the image is
 * left out with a notice: what only it holds reads as EIO.
 *
 * Only the superblock's magic, fsid, devid, generation and device count
 * are read here, each checked; the superblock's checksum is the driver's
 * to check. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/btrfs-asm.h"

#define BT_SB_OFF 65536u
#define BT_SB_FSID 0x20
#define BT_SB_MAGIC 0x40
#define BT_SB_GENERATION 0x48
#define BT_SB_NUM_DEVICES 0x88
#define BT_SB_DEVID 0xc9
#define BT_MAGIC 0x4d5f53665248425full
/* Devices one filesystem may have (the kernel has no fixed limit; a
 * larger count is refused as corrupt). */
#define BT_MAX_DEVICES 1024u

struct bt_member {
	const struct vd_vol *vol;
	uint8_t fsid[16];
	uint64_t devid, generation, num_devices;
};

struct bt_state {
	uint8_t (*done)[16]; /* fsids assembled in earlier rounds */
	unsigned n_done;
};

struct bt_vol {
	struct vd_vol v;
	const struct vd_vol *first;
	struct vd_btrfs_devs *devs;
};

static const struct vd_vol_ops bt_vol_ops;

static int bt_read(const struct vd_vol *v, struct bt_member *m)
{
	uint8_t b[BT_SB_DEVID + 8];

	if (v->len < BT_SB_OFF + 4096 || vd_vol_read(v, b, sizeof(b), BT_SB_OFF))
		return -EIO;
	if (get_le64(b + BT_SB_MAGIC) != BT_MAGIC)
		return -ENODEV;
	m->vol = v;
	memcpy(m->fsid, b + BT_SB_FSID, 16);
	m->devid = get_le64(b + BT_SB_DEVID);
	m->generation = get_le64(b + BT_SB_GENERATION);
	m->num_devices = get_le64(b + BT_SB_NUM_DEVICES);
	return 0;
}

static int bt_probe(const struct vd_vol *v)
{
	struct bt_member m;

	/* An assembled volume reads as its first member: not a member. */
	if (v->ops == &bt_vol_ops)
		return 0;
	return !bt_read(v, &m) && m.num_devices > 1 &&
	       m.num_devices <= BT_MAX_DEVICES;
}

static int bt_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		  struct vd_vol_run *r)
{
	const struct bt_vol *b = (const struct bt_vol *)v;

	r->vol = b->first;
	r->off = off;
	r->len = len;
	return 0;
}

static void bt_destroy(struct vd_vol *v)
{
	free(((struct bt_vol *)v)->devs);
}

static const struct vd_vol_ops bt_vol_ops = {
	.kind = VD_BTRFS_ASM_KIND,
	.map = bt_map,
	.destroy = bt_destroy,
};

/* Add the volume of the filesystem of ms[0] (its members ms[0, n)). */
static int bt_add(struct vd_volset *s, struct bt_member *ms, unsigned n)
{
	struct vd_btrfs_devs *d;
	struct bt_vol *b;
	const struct bt_member *best = &ms[0];
	char uuid[37], name[160];
	unsigned depth = 0;
	int ret;

	d = calloc(1, sizeof(*d) + n * sizeof(d->dev[0]));
	if (!d)
		return -ENOMEM;
	memcpy(d->fsid, ms[0].fsid, 16);
	d->num_devices = ms[0].num_devices;
	for (unsigned i = 0; i < n; i++) {
		bool dup = false;

		for (unsigned k = 0; k < d->n; k++)
			dup |= d->dev[k].devid == ms[i].devid;
		if (dup) {
			vd_log(VD_LOG_WARN, "%s: btrfs device %" PRIu64 " is "
			       "found twice (%s too): the first is used",
			       s->name, ms[i].devid, ms[i].vol->name);
			continue;
		}
		d->dev[d->n].devid = ms[i].devid;
		d->dev[d->n].vol = ms[i].vol;
		d->n++;
		if (ms[i].generation > best->generation)
			best = &ms[i];
		depth = VD_MAX(depth, ms[i].vol->depth + 1);
	}
	vd_uuid_str(d->fsid, false, uuid);
	if (d->n < d->num_devices)
		vd_log(VD_LOG_WARN, "%s: btrfs %s: %u of its %" PRIu64
		       " devices are in the image: what only the others hold "
		       "reads as EIO", s->name, uuid, d->n, d->num_devices);
	snprintf(name, sizeof(name), "%s btrfs-%s", s->name, uuid);
	b = (struct bt_vol *)vd_vol_new(&bt_vol_ops, sizeof(*b),
					best->vol->len, name);
	if (!b) {
		free(d);
		return -ENOMEM;
	}
	b->first = best->vol;
	b->devs = d;
	snprintf(b->v.label, sizeof(b->v.label), "btrfs-%s", uuid);
	vd_volset_unique_label(s, b->v.label, sizeof(b->v.label));
	b->v.depth = depth;
	b->v.desc = d;
	ret = vd_volset_add(s, &b->v);
	if (ret) {
		vd_vol_free(&b->v);
		return ret == -ENOMEM ? ret : 0;
	}
	return 0;
}

static int bt_assemble(struct vd_volset *s, struct vd_vol *const *claimed,
		       unsigned n, void **state)
{
	struct bt_state *st = *state;
	struct bt_member *ms = calloc(n ? n : 1, sizeof(*ms));
	bool *used = calloc(n ? n : 1, sizeof(*used));
	int ret = 0;

	if (!st) {
		st = *state = calloc(1, sizeof(*st));
		if (!st)
			ret = -ENOMEM;
	}
	if (!ms || !used || ret) {
		free(ms);
		free(used);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		if (bt_read(claimed[i], &ms[i]))
			used[i] = true; /* unreadable now: left out */
	for (unsigned i = 0; i < n && !ret; i++) {
		struct bt_member *g;
		unsigned ng = 0;
		bool done = false;

		if (used[i])
			continue;
		for (unsigned k = 0; k < st->n_done; k++)
			done |= !memcmp(st->done[k], ms[i].fsid, 16);
		g = calloc(n, sizeof(*g));
		if (!g) {
			ret = -ENOMEM;
			break;
		}
		for (unsigned k = i; k < n; k++)
			if (!used[k] && !memcmp(ms[k].fsid, ms[i].fsid, 16)) {
				used[k] = true;
				g[ng++] = ms[k];
			}
		if (!done) {
			uint8_t (*nd)[16] = realloc(st->done, (st->n_done + 1) *
							      sizeof(*nd));

			if (!nd) {
				free(g);
				ret = -ENOMEM;
				break;
			}
			st->done = nd;
			memcpy(st->done[st->n_done++], ms[i].fsid, 16);
			ret = bt_add(s, g, ng);
		}
		free(g);
	}
	free(ms);
	free(used);
	return ret;
}

static void bt_free_state(void *state)
{
	struct bt_state *st = state;

	if (st)
		free(st->done);
	free(st);
}

const struct vd_assembler vd_btrfs_assembler = {
	.name = "btrfs",
	.probe = bt_probe,
	.assemble = bt_assemble,
	.free_state = bt_free_state,
};
