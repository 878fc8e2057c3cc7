/* btrfs: tree blocks and searches.
 *
 * A tree block is loaded once into the cache (common/cache.c) after every
 * check the kernel's tree-checker makes that a reader needs: the
 * checksum, the address and filesystem id it names, its level, its item
 * count, every item's data inside the leaf, keys strictly increasing. A
 * copy whose check fails is replaced by the chunk's next copy; a block
 * with no good copy fails the search with EIO (logged).
 *
 * A search descends from the root, each child's level one less than its
 * parent's (so a tree is at most 8 blocks deep and cannot loop back on
 * itself) and each child starting with the key its parent names for it.
 * Walking on from an item (vd_btrfs_next) requires the next key to be
 * greater than the last: a block listed twice cannot make a walk go on
 * for ever. A path pins its blocks in the cache (one per level) instead
 * of copying them: a search of three levels copied 48 KiB of 16 KiB
 * nodes, and a tree walk makes several searches per file (the inode,
 * its extents, the data's checksums, its xattrs). Every path is freed
 * by the function that made it, which ends its pins; the cache stays
 * within its budget plus the blocks pinned at one time (a few per
 * thread). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/btrfs.h"

void vd_btrfs_key_read(const uint8_t *p, struct btrfs_key *k)
{
	k->objectid = get_le64(p);
	k->type = p[8];
	k->offset = get_le64(p + 9);
}

int vd_btrfs_key_cmp(const struct btrfs_key *a, const struct btrfs_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

int vd_btrfs_check_block(const struct btrfs_fs *fs, const uint8_t *b,
			 uint64_t logical, const char **why_r)
{
	uint8_t sum[BTRFS_CSUM_SIZE];
	unsigned level = b[BTRFS_HDR_LEVEL];
	uint32_t nr = get_le32(b + BTRFS_HDR_NRITEMS);
	size_t room = fs->nodesize - BTRFS_HDR_SIZE;
	struct btrfs_key prev, k;

	vd_btrfs_csum(fs, b + BTRFS_CSUM_SIZE, fs->nodesize - BTRFS_CSUM_SIZE,
		      sum);
	if (memcmp(sum, b, fs->csum_size) && !vd_btrfs_fuzzing) {
		*why_r = "fails its checksum";
		return -EIO;
	}
	if (get_le64(b + BTRFS_HDR_BYTENR) != logical) {
		*why_r = "names another address";
		return -EIO;
	}
	if (memcmp(b + BTRFS_HDR_FSID, fs->meta_uuid, 16)) {
		*why_r = "belongs to another filesystem";
		return -EIO;
	}
	if (level >= BTRFS_MAX_LEVEL) {
		*why_r = "has a level of 8 or more";
		return -EIO;
	}
	if (nr > room / (level ? BTRFS_PTR_SIZE : BTRFS_ITEM_SIZE)) {
		*why_r = "has more items than fit";
		return -EIO;
	}
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *it = b + BTRFS_HDR_SIZE +
				    i * (level ? BTRFS_PTR_SIZE : BTRFS_ITEM_SIZE);

		vd_btrfs_key_read(it, &k);
		if (i && vd_btrfs_key_cmp(&prev, &k) >= 0) {
			*why_r = "has keys out of order";
			return -EIO;
		}
		prev = k;
		if (level) {
			uint64_t ptr = get_le64(it + 17);

			if (!ptr || ptr % fs->sectorsize) {
				*why_r = "points to a misaligned child";
				return -EIO;
			}
		} else {
			uint32_t off = get_le32(it + 17), size = get_le32(it + 21);

			/* Item data lies after the item headers. */
			if (off < nr * BTRFS_ITEM_SIZE ||
			    !vd_range_ok(off, size, room)) {
				*why_r = "has an item outside the leaf";
				return -EIO;
			}
		}
	}
	return 0;
}

static int tree_load(void *arg, uint64_t logical, void *buf, size_t size)
{
	struct btrfs_fs *fs = arg;
	unsigned copies = vd_btrfs_copies(fs, logical);
	const char *why = "lies in no chunk";
	bool bad = false; /* a copy was read and was bad */

	(void)size;
	if (logical % fs->sectorsize)
		why = "is misaligned";
	else
		/* Ends: one pass per copy. */
		for (unsigned m = 0; m < copies; m++) {
			int ret = vd_btrfs_read_copy(fs, buf, fs->nodesize,
						     logical, m);

			if (ret == -ENXIO) {
				why = "is on a missing device";
				continue;
			}
			if (ret) {
				why = "is unreadable";
				bad = true;
				continue;
			}
			if (vd_btrfs_check_block(fs, buf, logical, &why)) {
				bad = true;
				continue;
			}
			if (bad)
				vd_log(VD_LOG_WARN, "%s: btrfs: tree block at %"
				       PRIu64 ": a copy is bad, copy %u used",
				       fs->name, logical, m + 1);
			return 0;
		}
	vd_log(VD_LOG_ERR, "%s: btrfs: tree block at %" PRIu64 " %s",
	       fs->name, logical, why);
	return -EIO;
}

void vd_btrfs_path_init(struct btrfs_path *p, struct btrfs_fs *fs)
{
	memset(p, 0, sizeof(*p));
	p->fs = fs;
}

void vd_btrfs_path_free(struct btrfs_path *p)
{
	for (unsigned i = 0; i < BTRFS_MAX_LEVEL; i++)
		if (p->blk[i])
			vd_cache_put(p->fs->cache, &p->ref[i]);
	memset(p->blk, 0, sizeof(p->blk));
}

/* Load the block at logical into level's slot of p; first, when given,
 * is the key its parent names for it. */
static int path_load(struct btrfs_path *p, unsigned level, uint64_t logical,
		     const struct btrfs_key *first)
{
	struct btrfs_fs *fs = p->fs;
	struct vd_cache_ref ref;
	struct btrfs_key k;
	const uint8_t *b;
	int ret;

	ret = vd_cache_get(fs->cache, fs, logical, fs->nodesize, tree_load, fs,
			   &ref);
	if (ret)
		return ret == -ENOMEM ? ret : -EIO;
	/* The block this level held before is done with. */
	if (p->blk[level])
		vd_cache_put(fs->cache, &p->ref[level]);
	p->ref[level] = ref;
	b = p->blk[level] = ref.data;
	if (b[BTRFS_HDR_LEVEL] != level) {
		vd_log(VD_LOG_ERR, "%s: btrfs: tree block at %" PRIu64 " has "
		       "level %u where %u is expected", fs->name, logical,
		       b[BTRFS_HDR_LEVEL], level);
		return -EIO;
	}
	p->nr[level] = get_le32(b + BTRFS_HDR_NRITEMS);
	p->slot[level] = 0;
	if (first) {
		if (p->nr[level])
			vd_btrfs_key_read(b + BTRFS_HDR_SIZE, &k);
		if (!p->nr[level] || vd_btrfs_key_cmp(&k, first)) {
			vd_log(VD_LOG_ERR, "%s: btrfs: tree block at %" PRIu64
			       " does not begin with the key its parent "
			       "names", fs->name, logical);
			return -EIO;
		}
	}
	return 0;
}

static void node_ptr(const struct btrfs_path *p, unsigned level,
		     struct btrfs_key *k, uint64_t *ptr)
{
	const uint8_t *it = p->blk[level] + BTRFS_HDR_SIZE +
			    p->slot[level] * BTRFS_PTR_SIZE;

	vd_btrfs_key_read(it, k);
	*ptr = get_le64(it + 17);
}

/* Descend from level (its slot set) to the leaf, taking the first
 * (or, rightmost, the last) slot of every block below. */
static int path_descend(struct btrfs_path *p, unsigned level, bool rightmost)
{
	/* Ends: the level decreases. */
	while (level > 0) {
		struct btrfs_key k;
		uint64_t ptr;
		int ret;

		node_ptr(p, level, &k, &ptr);
		ret = path_load(p, level - 1, ptr, &k);
		if (ret)
			return ret;
		level--;
		if (rightmost && p->nr[level])
			p->slot[level] = p->nr[level] - 1;
	}
	return 0;
}

void vd_btrfs_item(const struct btrfs_path *p, struct btrfs_key *k_r,
		   const uint8_t **data_r, uint32_t *size_r)
{
	const uint8_t *it = p->blk[0] + BTRFS_HDR_SIZE +
			    p->slot[0] * BTRFS_ITEM_SIZE;

	vd_btrfs_key_read(it, k_r);
	*data_r = p->blk[0] + BTRFS_HDR_SIZE + get_le32(it + 17);
	*size_r = get_le32(it + 21);
}

static void path_note(struct btrfs_path *p)
{
	const uint8_t *d;
	uint32_t size;

	vd_btrfs_item(p, &p->last, &d, &size);
	p->have_last = true;
}

/* Move to the first item of the next leaf: 0, 1 at the end, -EIO. */
static int path_next_leaf(struct btrfs_path *p)
{
	/* Ends: the level rises to the root. */
	for (unsigned l = 1; l <= p->top; l++) {
		if (p->slot[l] + 1 < p->nr[l]) {
			int ret;

			p->slot[l]++;
			ret = path_descend(p, l, false);
			return ret ? ret : (p->nr[0] ? 0 : -EIO);
		}
	}
	return 1;
}

int vd_btrfs_search(struct btrfs_path *p, const struct btrfs_root *root,
		    const struct btrfs_key *k)
{
	struct btrfs_fs *fs = p->fs;
	unsigned level = root->level;
	int ret;

	p->have_last = false;
	if (level >= BTRFS_MAX_LEVEL) {
		vd_log(VD_LOG_ERR, "%s: btrfs: tree root at %" PRIu64 " has "
		       "level %u", fs->name, root->bytenr, level);
		return -EIO;
	}
	p->top = level;
	ret = path_load(p, level, root->bytenr, NULL);
	if (ret)
		return ret;
	if (!p->nr[level])
		return level ? -EIO : 1;
	/* Ends: the level decreases. */
	for (;;) {
		const uint8_t *b = p->blk[level];
		unsigned lo = 0, hi = p->nr[level];
		size_t step = level ? BTRFS_PTR_SIZE : BTRFS_ITEM_SIZE;

		/* lo: the first entry whose key is > k (>= k in a leaf). */
		while (lo < hi) {
			unsigned mid = lo + (hi - lo) / 2;
			struct btrfs_key mk;
			int c;

			vd_btrfs_key_read(b + BTRFS_HDR_SIZE + mid * step, &mk);
			c = vd_btrfs_key_cmp(&mk, k);
			if (c < 0 || (level && c == 0))
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!level) {
			p->slot[0] = lo;
			break;
		}
		p->slot[level] = lo ? lo - 1 : 0;
		{
			struct btrfs_key ck;
			uint64_t ptr;

			node_ptr(p, level, &ck, &ptr);
			ret = path_load(p, level - 1, ptr, &ck);
			if (ret)
				return ret;
		}
		level--;
	}
	if (p->slot[0] >= p->nr[0]) {
		ret = path_next_leaf(p);
		if (ret)
			return ret;
	}
	path_note(p);
	return 0;
}

int vd_btrfs_next(struct btrfs_path *p)
{
	struct btrfs_key prev = p->last;
	bool had = p->have_last;
	int ret;

	if (p->slot[0] + 1 < p->nr[0]) {
		p->slot[0]++;
	} else {
		ret = path_next_leaf(p);
		if (ret)
			return ret;
	}
	path_note(p);
	if (had && vd_btrfs_key_cmp(&prev, &p->last) >= 0) {
		vd_log(VD_LOG_ERR, "%s: btrfs: tree keys do not increase "
		       "across blocks (a block listed twice?)", p->fs->name);
		return -EIO;
	}
	return 0;
}

int vd_btrfs_prev(struct btrfs_path *p)
{
	if (p->slot[0] > 0 && p->slot[0] <= p->nr[0]) {
		p->slot[0]--;
	} else {
		unsigned l;
		int ret;

		for (l = 1; l <= p->top; l++)
			if (p->slot[l] > 0)
				break;
		if (l > p->top)
			return 1;
		p->slot[l]--;
		ret = path_descend(p, l, true);
		if (ret)
			return ret;
		if (!p->nr[0])
			return -EIO;
	}
	path_note(p);
	return 0;
}

int vd_btrfs_lookup(struct btrfs_fs *fs, const struct btrfs_root *root,
		    const struct btrfs_key *k, uint8_t **data_r,
		    uint32_t *size_r)
{
	struct btrfs_path p;
	struct btrfs_key f;
	const uint8_t *d;
	uint32_t size;
	int ret;

	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, root, k);
	if (ret == 1)
		ret = -ENOENT;
	if (ret)
		goto out;
	vd_btrfs_item(&p, &f, &d, &size);
	if (vd_btrfs_key_cmp(&f, k)) {
		ret = -ENOENT;
		goto out;
	}
	*data_r = malloc(size ? size : 1);
	if (!*data_r) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(*data_r, d, size);
	*size_r = size;
out:
	vd_btrfs_path_free(&p);
	return ret;
}
