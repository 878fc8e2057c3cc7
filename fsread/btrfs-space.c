/* btrfs: statfs, as the kernel's btrfs_statfs (fs/btrfs/super.c) counts
 * on a read-only mount of read-only devices (`losetup -r`), so that df on
 * pN/ shows what df shows on the kernel's mount of the same bytes:
 *
 * - f_blocks: the superblock's total_bytes (every device's size) over the
 *   data profile's copies ("factor": 2 for RAID1, DUP and RAID10, 3 and 4
 *   for RAID1C3/C4, else 1; the data block groups' profile, the highest
 *   of btrfs_raid_array's order present).
 * - f_bfree: f_blocks less every block group's used bytes (weighed by its
 *   own profile's copies, then over factor) and less the global block
 *   reserve (block-rsv.c: the bytes used by the extent, checksum, free
 *   space and block group trees, at least what an unlink and its delayed
 *   references need: nodesize * 16 per item, one for the root tree, one
 *   per tree counted, 6 for the unlink, and 6 delayed references, twice
 *   those with the free space tree; at most 512 MiB).
 * - f_bavail: the space no chunk holds yet, as btrfs_calc_avail_data_space
 *   finds it, over factor. On read-only devices the kernel can allocate
 *   nothing but single chunks (btrfs_reduce_alloc_profile with no
 *   writable device), so that space is each present device's unallocated
 *   bytes, in 64 KiB stripes, less the 1 MiB it keeps at a device's
 *   start, for every device with more than 1 MiB + 64 KiB. The free bytes
 *   inside data block groups, which btrfs_statfs adds on a writable
 *   mount, add nothing on such a mount (Linux 6.18: `btrfs filesystem
 *   usage` shows them, df does not), and are left out here too.
 *
 * Block groups are BLOCK_GROUP_ITEMs keyed by their chunk (in the extent
 * tree, or in the block group tree); devices are DEV_ITEMs of the chunk
 * tree. A statfs reads one item per chunk: a few searches of cached
 * blocks. An item that cannot be read counts as nothing used (the
 * kernel would not have mounted); statfs does not fail for it. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/btrfs.h"

#define BTRFS_EXTENT_TREE_OBJECTID 2ull
#define BTRFS_FREE_SPACE_TREE_OBJECTID 10ull
#define BTRFS_BLOCK_GROUP_TREE_OBJECTID 11ull
#define BTRFS_BLOCK_GROUP_ITEM_KEY 192
/* Root item: bytes_used at 192 (after inode item, generation, root_dirid,
 * bytenr, byte_limit). */
#define ROOT_BYTES_USED 192
#define ROOT_BYTES_USED_END 200u
/* Block group item: used at 0, chunk_objectid at 8, flags at 16. */
#define BG_ITEM_LEN 24u
/* Dev item: devid at 0, total_bytes at 8, bytes_used at 16. */
#define DEV_ITEM_MIN 24u
/* Root item: bytenr at 176, level at 238. */
#define ROOT_BYTENR 176
#define ROOT_LEVEL 238
#define BTRFS_BG_DATA (1ull << 0)
#define BTRFS_STRIPE_LEN_BYTES (64u << 10)
#define SPACE_MIB (1ull << 20)
/* compat_ro: free space tree, block group tree. */
#define COMPAT_RO_FST (1ull << 0)
#define COMPAT_RO_BGT (1ull << 3)
/* block-rsv.c: items an unlink changes (BTRFS_UNLINK_METADATA_UNITS). */
#define UNLINK_UNITS 6u

/* btrfs_raid_array's index order (raid10 first, single at 4), and each
 * profile's copies (ncopies). */
static unsigned space_raid_index(uint64_t type)
{
	if (type & BTRFS_BG_RAID10)
		return 0;
	if (type & BTRFS_BG_RAID1)
		return 1;
	if (type & BTRFS_BG_DUP)
		return 2;
	if (type & BTRFS_BG_RAID0)
		return 3;
	if (type & BTRFS_BG_RAID5)
		return 5;
	if (type & BTRFS_BG_RAID6)
		return 6;
	if (type & BTRFS_BG_RAID1C3)
		return 7;
	if (type & BTRFS_BG_RAID1C4)
		return 8;
	return 4;
}

static unsigned space_copies(uint64_t type)
{
	if (type & (BTRFS_BG_RAID10 | BTRFS_BG_RAID1 | BTRFS_BG_DUP))
		return 2;
	if (type & BTRFS_BG_RAID1C3)
		return 3;
	if (type & BTRFS_BG_RAID1C4)
		return 4;
	return 1;
}

/* bytes_used of tree id's root item, or 0 when it has none. */
static uint64_t space_root_used(struct btrfs_fs *fs, uint64_t id)
{
	struct btrfs_key k = { id, BTRFS_ROOT_ITEM_KEY, 0 };
	uint64_t used = 0;
	uint8_t *d;
	uint32_t size;

	if (vd_btrfs_lookup(fs, &fs->tree_root, &k, &d, &size))
		return 0;
	if (size >= ROOT_BYTES_USED_END)
		used = get_le64(d + ROOT_BYTES_USED);
	free(d);
	return used;
}

/* The root of tree id, or false. */
static bool space_root(struct btrfs_fs *fs, uint64_t id, struct btrfs_root *r)
{
	struct btrfs_key k = { id, BTRFS_ROOT_ITEM_KEY, 0 };
	uint8_t *d;
	uint32_t size;
	bool ok = false;

	if (vd_btrfs_lookup(fs, &fs->tree_root, &k, &d, &size))
		return false;
	if (size > ROOT_LEVEL && d[ROOT_LEVEL] <
						   BTRFS_MAX_LEVEL) {
		r->bytenr = get_le64(d + ROOT_BYTENR);
		r->level = d[ROOT_LEVEL];
		ok = true;
	}
	free(d);
	return ok;
}

/* The used bytes of the block group of chunk c (0 when its item cannot
 * be read). */
static uint64_t space_bg_used(struct btrfs_fs *fs, const struct btrfs_root *r,
			      const struct btrfs_chunk *c)
{
	struct btrfs_key k = { c->logical, BTRFS_BLOCK_GROUP_ITEM_KEY, c->len };
	uint64_t used = 0;
	uint8_t *d;
	uint32_t size;

	if (vd_btrfs_lookup(fs, r, &k, &d, &size))
		return 0;
	if (size >= BG_ITEM_LEN)
		used = VD_MIN(get_le64(d), c->len);
	free(d);
	return used;
}

/* The space no chunk holds, usable for single data chunks: each present
 * device's unallocated bytes (its DEV_ITEM's total_bytes - bytes_used)
 * in whole stripes, less 1 MiB, when more than 1 MiB + a stripe. */
static uint64_t space_unallocated(struct btrfs_fs *fs)
{
	struct btrfs_key k = { BTRFS_DEV_ITEMS_OBJECTID, BTRFS_DEV_ITEM_KEY, 0 };
	struct btrfs_path p;
	uint64_t sum = 0;
	int ret;

	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &fs->chunk_root, &k);
	/* Ends: keys strictly increase (vd_btrfs_next). */
	while (!ret) {
		const uint8_t *d;
		uint32_t size;
		uint64_t total, used, avail;
		bool present = false;

		vd_btrfs_item(&p, &k, &d, &size);
		if (k.objectid != BTRFS_DEV_ITEMS_OBJECTID ||
		    k.type != BTRFS_DEV_ITEM_KEY)
			break;
		for (size_t i = 0; i < fs->ndevs; i++)
			present |= fs->devs[i].devid == k.offset &&
				   fs->devs[i].vol;
		if (present && size >= DEV_ITEM_MIN) {
			total = get_le64(d + 8);
			used = get_le64(d + 16);
			avail = used < total ? total - used : 0;
			avail -= avail % BTRFS_STRIPE_LEN_BYTES;
			if (avail > SPACE_MIB + BTRFS_STRIPE_LEN_BYTES &&
			    sum <= UINT64_MAX - avail)
				sum += avail - SPACE_MIB;
		}
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	return sum;
}

/* The global block reserve's size (block-rsv.c,
 * btrfs_update_global_block_rsv). */
static uint64_t space_global_rsv(struct btrfs_fs *fs)
{
	uint64_t bytes = 0, item = (uint64_t)fs->nodesize * BTRFS_MAX_LEVEL * 2;
	uint64_t least, refs;
	unsigned items = 1; /* the root tree */
	static const uint64_t trees[] = { BTRFS_EXTENT_TREE_OBJECTID,
					  BTRFS_CSUM_TREE_OBJECTID,
					  BTRFS_FREE_SPACE_TREE_OBJECTID };

	for (unsigned i = 0; i < VD_ARRAY_SIZE(trees); i++) {
		struct btrfs_root r;

		if (!space_root(fs, trees[i], &r))
			continue;
		bytes += space_root_used(fs, trees[i]);
		items++;
	}
	if (fs->compat_ro & COMPAT_RO_BGT) {
		bytes += space_root_used(fs, BTRFS_BLOCK_GROUP_TREE_OBJECTID);
		items++;
	}
	items += UNLINK_UNITS;
	refs = item * UNLINK_UNITS;
	if (fs->compat_ro & COMPAT_RO_FST)
		refs *= 2;
	least = item * items + refs;
	return VD_MIN(VD_MAX(bytes, least), 512ull << 20);
}

int vd_btrfs_statfs(struct vd_fs *vfs, struct statvfs *st)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	unsigned bits = 0, factor = 1, best = 0;
	uint64_t used = 0, rsv, blocks, bfree;
	struct btrfs_root bg_root;
	bool have_data = false;

	/* Ends: sectorsize is a power of two, at most 65536. */
	while ((1u << bits) < fs->sectorsize)
		bits++;
	if (!(fs->compat_ro & COMPAT_RO_BGT) ||
	    !space_root(fs, BTRFS_BLOCK_GROUP_TREE_OBJECTID, &bg_root))
		if (!space_root(fs, BTRFS_EXTENT_TREE_OBJECTID, &bg_root))
			bg_root.bytenr = 0;
	for (size_t i = 0; i < fs->nchunks; i++) {
		const struct btrfs_chunk *c = &fs->chunks[i];
		unsigned copies = space_copies(c->type);
		uint64_t u = bg_root.bytenr ? space_bg_used(fs, &bg_root, c) : 0;

		used += u * copies;
		if (c->type & BTRFS_BG_DATA) {
			unsigned idx = space_raid_index(c->type);

			if (!have_data || idx > best) {
				best = idx;
				factor = copies;
				have_data = true;
			}
		}
	}
	rsv = space_global_rsv(fs);
	blocks = (fs->total_bytes / factor) >> bits;
	used = (used / factor) >> bits;
	bfree = blocks > used ? blocks - used : 0;
	bfree = bfree > (rsv >> bits) ? bfree - (rsv >> bits) : 0;
	memset(st, 0, sizeof(*st));
	st->f_bsize = fs->sectorsize;
	st->f_frsize = fs->sectorsize;
	st->f_blocks = blocks;
	st->f_bfree = bfree;
	st->f_bavail = (space_unallocated(fs) / factor) >> bits;
	st->f_namemax = 255;
	return 0;
}
