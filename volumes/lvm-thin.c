/* LVM2 thin pools: dm-thin's metadata, read.
 *
 * The pool's metadata LV (_tmeta) holds 4 KiB blocks (the kernel's
 * drivers/md/dm-thin-metadata.c and persistent-data/dm-btree*.c;
 * thin-provisioning-tools' thin_dump reads the same):
 *
 *   block 0, the superblock: 0 csum, 8 blocknr, 32 magic (27022010),
 *       40 version, 48 trans_id, 320 data_mapping_root, 328
 *       device_details_root, 336 data_block_size (sectors), 340
 *       metadata_block_size (sectors, 8), 344 metadata_nr_blocks, 360
 *       incompat_flags;
 *   btree nodes: a 32-byte header (0 csum, 4 flags: 1 internal, 2 leaf,
 *       8 blocknr, 16 nr_entries, 20 max_entries, 24 value_size), then
 *       max_entries u64 keys, then max_entries values. An internal
 *       node's values are child block numbers; a key is the smallest key
 *       below it.
 *
 * The data mapping is two levels: thin device id -> the root of that
 * device's tree, virtual block -> (data block << 24 | time). A thin
 * snapshot is a device whose tree shares blocks with its origin's, so
 * it is read like any other. A block with no mapping reads as zeros.
 * Checksums are CRC-32C of the block from byte 4 on, xor a constant.
 *
 * Metadata blocks are cached, checked, in a small cache under the
 * pool's own lock (map is called from many threads); the lock is never
 * held across a read. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "volumes/lvm-internal.h"
#include "volumes/vol.h"

#define THIN_BLOCK 4096
#define THIN_MAGIC 27022010u
#define THIN_SB_XOR 160774u
#define THIN_NODE_XOR 121107u
#define THIN_INTERNAL 1u
#define THIN_LEAF 2u
#define THIN_NODE_HDR 32
/* dm-btree's trees are a few levels deep (126 keys a node); a path
 * longer than this is a loop or garbage. */
#define THIN_MAX_LEVELS 16
#define THIN_CACHE_SLOTS 64
/* dm-thin's limits on the data block size (sectors). */
#define THIN_MIN_DATA_BLOCK 128
#define THIN_MAX_DATA_BLOCK 2097152

struct thin_slot {
	uint64_t blk;
	uint64_t used; /* the tick of its last use; 0: empty */
	uint8_t data[THIN_BLOCK];
};

struct lvm_thin_pool {
	const struct vd_vol *meta, *data;
	char name[VD_VOL_LABEL_MAX];
	uint64_t block_bytes; /* a data block */
	uint64_t data_blocks; /* data blocks the data LV holds */
	uint64_t meta_blocks; /* metadata blocks we may read */
	uint64_t mapping_root, details_root, trans;
	bool fresh;	      /* never activated: no devices, all zeros */
	pthread_mutex_t lock; /* guards slot[] and tick */
	uint64_t tick;
	struct thin_slot slot[THIN_CACHE_SLOTS];
};

/* dm_bm_checksum: CRC-32C from ~0 with no final inversion, xor x. */
static uint32_t thin_csum(const uint8_t *p, size_t n, uint32_t x)
{
	return vd_crc32c(0xffffffffu, p, n) ^ x;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

uint64_t lvm_thin_transaction(const struct lvm_thin_pool *p)
{
	return p->trans;
}

uint64_t lvm_thin_block_bytes(const struct lvm_thin_pool *p)
{
	return p->block_bytes;
}

/* Metadata block blk, checked as a btree node, into buf. */
static int thin_block(struct lvm_thin_pool *p, uint64_t blk, uint8_t *buf)
{
	struct thin_slot *victim;
	uint32_t csum;
	int ret;

	if (blk >= p->meta_blocks) {
		vd_log(VD_LOG_ERR, "%s: thin pool metadata: block %llu lies "
		       "past the metadata's %llu blocks", p->name,
		       (unsigned long long)blk,
		       (unsigned long long)p->meta_blocks);
		return -EIO;
	}
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < THIN_CACHE_SLOTS; i++)
		if (p->slot[i].used && p->slot[i].blk == blk) {
			p->slot[i].used = ++p->tick;
			memcpy(buf, p->slot[i].data, THIN_BLOCK);
			pthread_mutex_unlock(&p->lock);
			return 0;
		}
	pthread_mutex_unlock(&p->lock);
	ret = vd_vol_read(p->meta, buf, THIN_BLOCK, blk * THIN_BLOCK);
	if (ret < 0)
		return ret;
	csum = thin_csum(buf + 4, THIN_BLOCK - 4, THIN_NODE_XOR);
	if (get_le32(buf) != csum || get_le64(buf + 8) != blk) {
		vd_log(VD_LOG_ERR, "%s: thin pool metadata: btree node at "
		       "block %llu is damaged (checksum 0x%08x, its bytes give "
		       "0x%08x; blocknr %llu)", p->name,
		       (unsigned long long)blk, get_le32(buf), csum,
		       (unsigned long long)get_le64(buf + 8));
		return -EIO;
	}
	pthread_mutex_lock(&p->lock);
	victim = &p->slot[0];
	for (unsigned i = 1; i < THIN_CACHE_SLOTS; i++)
		if (p->slot[i].used < victim->used)
			victim = &p->slot[i];
	victim->blk = blk;
	victim->used = ++p->tick;
	memcpy(victim->data, buf, THIN_BLOCK);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Descends the tree at root to the leaf where key is or would be: the
 * leaf in buf, *idx_r the last entry whose key <= key (-1: none),
 * *nr_r its entry count. vsize: the leaf values' size. */
static int thin_leaf(struct lvm_thin_pool *p, uint64_t root, uint64_t key,
		     uint32_t vsize, uint8_t *buf, int *idx_r, uint32_t *nr_r)
{
	uint64_t blk = root;

	/* Ends: at a leaf, or after THIN_MAX_LEVELS levels. */
	for (unsigned level = 0; level < THIN_MAX_LEVELS; level++) {
		uint32_t flags, nr, max, vs;
		int lo = -1, hi;
		int ret = thin_block(p, blk, buf);

		if (ret < 0)
			return ret;
		flags = get_le32(buf + 4);
		nr = get_le32(buf + 16);
		max = get_le32(buf + 20);
		vs = get_le32(buf + 24);
		if ((flags != THIN_INTERNAL && flags != THIN_LEAF) ||
		    vs != (flags == THIN_LEAF ? vsize : 8) || nr > max ||
		    max > (THIN_BLOCK - THIN_NODE_HDR) / (8 + vs) ||
		    (flags == THIN_INTERNAL && !nr)) {
			vd_log(VD_LOG_ERR, "%s: thin pool metadata: btree "
			       "node at block %llu has flags %u, %u of %u "
			       "entries of %u bytes", p->name,
			       (unsigned long long)blk, flags, nr, max, vs);
			return -EIO;
		}
		/* The last key <= key: keys[lo] <= key < keys[hi]. */
		hi = (int)nr;
		while (hi - lo > 1) {
			int mid = lo + (hi - lo) / 2;

			if (get_le64(buf + THIN_NODE_HDR + 8 * mid) <= key)
				lo = mid;
			else
				hi = mid;
		}
		if (flags == THIN_LEAF) {
			*idx_r = lo;
			*nr_r = nr;
			return 0;
		}
		blk = get_le64(buf + THIN_NODE_HDR + 8 * (size_t)max +
			       8 * (size_t)(lo < 0 ? 0 : lo));
	}
	vd_log(VD_LOG_ERR, "%s: thin pool metadata: btree deeper than %u "
	       "levels", p->name, THIN_MAX_LEVELS);
	return -EIO;
}

static uint64_t thin_key(const uint8_t *leaf, int i)
{
	return get_le64(leaf + THIN_NODE_HDR + 8 * (size_t)i);
}

static const uint8_t *thin_val(const uint8_t *leaf, int i, uint32_t vsize)
{
	uint32_t max = get_le32(leaf + 20);

	return leaf + THIN_NODE_HDR + 8 * (size_t)max + (size_t)vsize * i;
}

/* The root of thin device dev's mapping tree: 0, -ENOENT, -EIO. */
static int thin_dev_root(struct lvm_thin_pool *p, uint64_t dev,
			 uint64_t *root_r)
{
	uint8_t buf[THIN_BLOCK];
	uint32_t nr;
	int idx, ret;

	ret = thin_leaf(p, p->mapping_root, dev, 8, buf, &idx, &nr);
	if (ret < 0)
		return ret;
	if (idx < 0 || thin_key(buf, idx) != dev)
		return -ENOENT;
	*root_r = get_le64(thin_val(buf, idx, 8));
	return 0;
}

int lvm_thin_has_dev(struct lvm_thin_pool *p, uint64_t dev)
{
	uint64_t root;
	int ret;

	if (p->fresh)
		return 0;
	ret = thin_dev_root(p, dev, &root);
	return ret == -EIO ? -EUCLEAN : ret;
}

int lvm_thin_map(struct lvm_thin_pool *p, uint64_t dev, uint64_t off,
		 uint64_t len, bool *data_r, uint64_t *pos_r, uint64_t *len_r)
{
	uint8_t buf[THIN_BLOCK];
	uint64_t bb = p->block_bytes, vb, in, root;
	uint64_t next, n;
	uint32_t nr;
	int idx, ret;

	*data_r = false;
	*pos_r = 0;
	*len_r = len;
	if (p->fresh)
		return 0;
	vb = off / bb;
	in = off % bb;
	*len_r = VD_MIN(len, bb - in);
	ret = thin_dev_root(p, dev, &root);
	if (ret == -ENOENT) {
		vd_log(VD_LOG_ERR, "%s: thin device %llu is no longer in the "
		       "pool's metadata", p->name, (unsigned long long)dev);
		return -EIO;
	}
	if (!ret)
		ret = thin_leaf(p, root, vb, 8, buf, &idx, &nr);
	if (ret < 0)
		return ret;
	if (idx < 0 || thin_key(buf, idx) != vb) {
		/* A hole up to the next key in this leaf (or one block when
		 * the next key is in another leaf). */
		next = idx + 1 < (int)nr ? thin_key(buf, idx + 1) : vb + 1;
		n = next > vb ? next - vb : 1;
		*len_r = n > (in + len) / bb + 1 ? len :
						  VD_MIN(len, n * bb - in);
		return 0;
	}
	/* A run of consecutive blocks mapped to consecutive data blocks,
	 * within this leaf and len. */
	{
		uint64_t d = get_le64(thin_val(buf, idx, 8)) >> 24;
		uint64_t want = (in + len + bb - 1) / bb;

		n = 1;
		while (n < want && idx + (int)n < (int)nr &&
		       thin_key(buf, idx + (int)n) == vb + n &&
		       get_le64(thin_val(buf, idx + (int)n, 8)) >> 24 == d + n)
			n++;
		if (d >= p->data_blocks || n > p->data_blocks - d) {
			vd_log(VD_LOG_ERR, "%s: thin device %llu: block %llu "
			       "maps to data block %llu, past the pool's %llu",
			       p->name, (unsigned long long)dev,
			       (unsigned long long)vb, (unsigned long long)d,
			       (unsigned long long)p->data_blocks);
			return -EIO;
		}
		*data_r = true;
		*pos_r = d * bb + in;
		*len_r = VD_MIN(len, n * bb - in);
	}
	return 0;
}

int lvm_thin_open(const struct vd_vol *meta, const struct vd_vol *data,
		  uint64_t chunk, const char *name,
		  struct lvm_thin_pool **p_r, bool *fresh_r, struct vd_err *e)
{
	uint8_t sb[THIN_BLOCK];
	struct lvm_thin_pool *p;
	uint32_t csum, dbs;
	int ret;

	*p_r = NULL;
	*fresh_r = false;
	if (meta->len < THIN_BLOCK)
		return vd_fail(e, -EUCLEAN, "its metadata LV is %llu bytes",
			       (unsigned long long)meta->len);
	ret = vd_vol_read(meta, sb, sizeof(sb), 0);
	if (ret < 0)
		return vd_fail(e, ret, "its metadata superblock cannot be "
				       "read");
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->meta = meta;
	p->data = data;
	snprintf(p->name, sizeof(p->name), "%s", name);
	pthread_mutex_init(&p->lock, NULL);
	if (all_zero(sb, sizeof(sb))) {
		p->fresh = *fresh_r = true;
		*p_r = p;
		return 0;
	}
	ret = -EUCLEAN;
	csum = thin_csum(sb + 4, THIN_BLOCK - 4, THIN_SB_XOR);
	dbs = get_le32(sb + 336);
	if (get_le64(sb + 32) != THIN_MAGIC) {
		vd_fail(e, ret, "its metadata has no thin-pool superblock "
				"magic");
	} else if (get_le32(sb) != csum || get_le64(sb + 8)) {
		vd_fail(e, ret, "its metadata superblock checksum is 0x%08x, "
			"its bytes give 0x%08x", get_le32(sb), csum);
	} else if (get_le32(sb + 360)) {
		ret = vd_fail(e, -ENOTSUP, "its metadata has incompatible "
			      "features 0x%x", get_le32(sb + 360));
	} else if (get_le32(sb + 340) != THIN_BLOCK / 512 ||
		   dbs < THIN_MIN_DATA_BLOCK || dbs > THIN_MAX_DATA_BLOCK ||
		   dbs % THIN_MIN_DATA_BLOCK) {
		vd_fail(e, ret, "its metadata has block sizes %u and %u "
			"sectors", get_le32(sb + 340), dbs);
	} else if ((uint64_t)dbs * 512 != chunk) {
		vd_fail(e, ret, "its data block size is %u sectors, LVM's "
			"chunk_size %llu", dbs,
			(unsigned long long)(chunk / 512));
	} else {
		ret = 0;
	}
	if (ret < 0) {
		lvm_thin_close(p);
		return ret;
	}
	p->block_bytes = (uint64_t)dbs * 512;
	p->data_blocks = data->len / p->block_bytes;
	p->meta_blocks = VD_MIN(get_le64(sb + 344), meta->len / THIN_BLOCK);
	p->trans = get_le64(sb + 48);
	p->mapping_root = get_le64(sb + 320);
	p->details_root = get_le64(sb + 328);
	*p_r = p;
	return 0;
}

void lvm_thin_close(struct lvm_thin_pool *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}
