/* btrfs: read by our own code. This file: the superblock, mount, inode
 * attributes, statfs, info and the ops table. Chunks and checksums are in
 * btrfs-chunk.c, tree searches in btrfs-tree.c, subvolumes in
 * btrfs-subvol.c, directories and xattrs in btrfs-dir.c, file data in
 * btrfs-file.c.
 *
 * The volume is read as Linux mounts it with `-o ro,subvolid=5`:
 * - The primary superblock (64 KiB) is used when it checks out (magic,
 *   checksum, geometry); else the newest good mirror (64 MiB, 256 GiB),
 *   with a warning. An incompatible feature we do not know refuses the
 *   volume by name.
 * - The top-level subvolume (id 5) is the root; every other subvolume and
 *   snapshot appears where its parent's directory names it. Each has its
 *   own inode numbers (see btrfs.h for how they are made unique).
 * - A log tree left by fsync is not replayed: the tree is what `mount -o
 *   ro,nologreplay` shows, with one warning. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "common/lazy.h"
#include "common/util.h"
#include "fsread/btrfs.h"
#include "volumes/btrfs-asm.h"

/* Superblock (struct btrfs_super_block), 4096 bytes at 64 KiB. */
#define BTRFS_SB_OFF 65536u
#define BTRFS_SB_LEN 4096u
#define SB_FSID 0x20
#define SB_BYTENR 0x30
#define SB_MAGIC 0x40
#define SB_GENERATION 0x48
#define SB_ROOT 0x50
#define SB_CHUNK_ROOT 0x58
#define SB_LOG_ROOT 0x60
#define SB_TOTAL_BYTES 0x70
#define SB_BYTES_USED 0x78
#define SB_NUM_DEVICES 0x88
#define SB_SECTORSIZE 0x90
#define SB_NODESIZE 0x94
#define SB_COMPAT_RO 0xb4
#define SB_INCOMPAT 0xbc
#define SB_CSUM_TYPE 0xc4
#define SB_ROOT_LEVEL 0xc6
#define SB_CHUNK_ROOT_LEVEL 0xc7
#define SB_DEV_ITEM 0xc9 /* devid at 0, total_bytes at 8 */
#define SB_LABEL 0x12b
#define SB_METADATA_UUID 0x23b
#define BTRFS_MAGIC 0x4d5f53665248425full /* "_BHRfS_M" */

/* Root item (struct btrfs_root_item) after its inode item. */
#define ROOT_BYTENR 176
#define ROOT_LEVEL 238
#define ROOT_ITEM_MIN 239u

static const struct {
	uint64_t bit;
	const char *name;
	bool ok;
} btrfs_incompat[] = {
	{ 1ull << 0, "mixed_backref", true },
	{ 1ull << 1, "default_subvol", true },
	{ 1ull << 2, "mixed_groups", true },
	{ 1ull << 3, "compress_lzo", true },
	{ 1ull << 4, "compress_zstd", true },
	{ 1ull << 5, "big_metadata", true },
	{ 1ull << 6, "extended_iref", true },
	{ 1ull << 7, "raid56", true },
	{ 1ull << 8, "skinny_metadata", true },
	{ 1ull << 9, "no_holes", true },
	{ 1ull << 10, "metadata_uuid", true },
	{ 1ull << 11, "raid1c34", true },
	{ 1ull << 12, "zoned", true },
	{ 1ull << 13, "extent_tree_v2", false },
	{ 1ull << 14, "raid_stripe_tree", false },
	{ 1ull << 16, "simple_quota", true },
};
#define BTRFS_INCOMPAT_METADATA_UUID (1ull << 10)

static const char *const btrfs_csum_names[] = { "crc32c", "xxhash64",
						"sha256", "blake2b" };
static const unsigned btrfs_csum_sizes[] = { 4, 8, 32, 32 };


int vd_btrfs_inode(struct btrfs_fs *fs, const struct btrfs_subvol *sv,
		   uint64_t objectid, uint8_t *item)
{
	struct btrfs_key k = { objectid, BTRFS_INODE_ITEM_KEY, 0 };
	uint8_t *d;
	uint32_t size;
	int ret;

	ret = vd_btrfs_lookup(fs, &sv->root, &k, &d, &size);
	if (ret)
		return ret;
	if (size < BTRFS_INODE_ITEM_LEN) {
		vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " inode %"
		       PRIu64 ": inode item of %" PRIu32 " bytes is too short",
		       fs->name, sv->id, objectid, size);
		free(d);
		return -EIO;
	}
	memcpy(item, d, BTRFS_INODE_ITEM_LEN);
	free(d);
	return 0;
}

/* ---- attributes ---- */

static int btrfs_getattr(struct vd_fs *vfs, uint64_t ino,
			 struct vd_fs_attr *a)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	struct btrfs_subvol *sv;
	uint8_t it[BTRFS_INODE_ITEM_LEN];
	uint64_t oid, rdev;
	int ret;

	if (vd_btrfs_ino_split(fs, ino, &sv, &oid))
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID) {
		/* As the kernel's new_simple_dir (its times are the
		 * lookup's: ours are the subvolume's creation). */
		a->mode = S_IFDIR | 0755;
		a->nlink = 1;
		a->atime = a->mtime = a->ctime = sv->otime;
		return 0;
	}
	ret = vd_btrfs_inode(fs, sv, oid, it);
	if (ret == -ENOENT) {
		vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " has no "
		       "inode %" PRIu64, fs->name, sv->id, oid);
		return -EIO;
	}
	if (ret)
		return ret;
	a->mode = get_le32(it + BTRFS_INODE_MODE);
	a->nlink = get_le32(it + BTRFS_INODE_NLINK);
	a->uid = get_le32(it + BTRFS_INODE_UID);
	a->gid = get_le32(it + BTRFS_INODE_GID);
	a->size = get_le64(it + BTRFS_INODE_SIZE_OFF);
	/* btrfs_getattr: the bytes the inode holds, rounded up to whole
	 * sectors. */
	a->blocks = ((get_le64(it + BTRFS_INODE_NBYTES) + fs->sectorsize - 1) /
		     fs->sectorsize * fs->sectorsize) >> 9;
	vd_btrfs_time(it + BTRFS_INODE_ATIME, &a->atime);
	vd_btrfs_time(it + BTRFS_INODE_MTIME, &a->mtime);
	vd_btrfs_time(it + BTRFS_INODE_CTIME, &a->ctime);
	rdev = get_le64(it + BTRFS_INODE_RDEV);
	/* The kernel's own dev_t: 12 bits of major above 20 of minor. */
	if (S_ISCHR(a->mode) || S_ISBLK(a->mode))
		a->rdev = makedev((unsigned)(rdev >> 20) & 0xfff,
				  (unsigned)rdev & 0xfffff);
	return 0;
}

/* ---- info (statfs: btrfs-space.c) ---- */

static void btrfs_info(struct vd_fs *vfs, struct vd_fs_info *i)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;

	memset(i, 0, sizeof(*i));
	snprintf(i->type, sizeof(i->type), "btrfs");
	snprintf(i->label, sizeof(i->label), "%.*s",
		 (int)sizeof(i->label) - 1, fs->label);
	vd_uuid_str(fs->fsid, false, i->uuid);
	i->block_size = fs->sectorsize;
	i->needed_recovery = fs->log_tree;
	i->generation = fs->generation;
	i->nsubvols = fs->nsv ? fs->nsv - 1 : 0;
	i->subvol = vd_btrfs_subvol_info;
	i->default_subvol = fs->default_subvol;
}


/* ---- mount ---- */

static int btrfs_probe(const struct vd_vol *v)
{
	uint8_t b[8];

	if (v->len < BTRFS_SB_OFF + BTRFS_SB_LEN ||
	    vd_vol_read(v, b, sizeof(b), BTRFS_SB_OFF + SB_MAGIC))
		return 0;
	return get_le64(b) == BTRFS_MAGIC;
}

static uint64_t btrfs_root_ino(struct vd_fs *vfs)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;

	return vd_btrfs_ino(0, fs->sv[0].dirid);
}

static void btrfs_free(struct btrfs_fs *fs)
{
	vd_btrfs_zcache_free(fs);
	vd_btrfs_free_chunks(fs);
	for (size_t i = 0; i < fs->nsv; i++)
		free(fs->sv[i].path);
	free(fs->sv);
	free(fs->devs);
	if (fs->cache)
		vd_cache_free(fs->cache);
	pthread_mutex_destroy(&fs->zlock);
	free(fs);
}

static void btrfs_unmount(struct vd_fs *vfs)
{
	btrfs_free((struct btrfs_fs *)vfs);
}

/* Whether the superblock copy b (read at off) checks out: "" or why not. */
static const char *btrfs_sb_bad(struct btrfs_fs *fs, const uint8_t *b,
				uint64_t off)
{
	unsigned ct = get_le16(b + SB_CSUM_TYPE);
	uint8_t sum[BTRFS_CSUM_SIZE];
	struct btrfs_fs tmp;

	if (get_le64(b + SB_MAGIC) != BTRFS_MAGIC)
		return "bad magic";
	if (get_le64(b + SB_BYTENR) != off)
		return "names another offset";
	if (ct >= VD_ARRAY_SIZE(btrfs_csum_names))
		return "unknown checksum type";
	tmp = *fs;
	tmp.csum_type = ct;
	vd_btrfs_csum(&tmp, b + BTRFS_CSUM_SIZE, BTRFS_SB_LEN - BTRFS_CSUM_SIZE,
		      sum);
	if (memcmp(sum, b, btrfs_csum_sizes[ct]) && !vd_btrfs_fuzzing)
		return "fails its checksum";
	return "";
}

/* The superblock into sb: the primary when good, else the newest good
 * mirror. */
static int btrfs_read_sb(struct btrfs_fs *fs, uint8_t *sb, struct vd_err *e)
{
	static const uint64_t offs[] = { BTRFS_SB_OFF, 64ull << 20,
					 256ull << 30 };
	const struct vd_vol *v = fs->base.vol;
	uint8_t *b = malloc(BTRFS_SB_LEN);
	const char *why = "unreadable";
	uint64_t best = 0;
	bool found = false;

	if (!b)
		return -ENOMEM;
	for (unsigned i = 0; i < VD_ARRAY_SIZE(offs); i++) {
		const char *w;

		if (!vd_range_ok(offs[i], BTRFS_SB_LEN, v->len) ||
		    vd_vol_read(v, b, BTRFS_SB_LEN, offs[i])) {
			if (!i)
				why = "unreadable";
			continue;
		}
		w = btrfs_sb_bad(fs, b, offs[i]);
		if (w[0]) {
			if (!i)
				why = w;
			continue;
		}
		if (!found || get_le64(b + SB_GENERATION) > best) {
			best = get_le64(b + SB_GENERATION);
			memcpy(sb, b, BTRFS_SB_LEN);
			found = true;
		}
		if (!i)
			break;
	}
	free(b);
	if (!found)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: superblock %s, and no "
			       "mirror is good", fs->name, why);
	if (get_le64(sb + SB_BYTENR) != BTRFS_SB_OFF)
		vd_log(VD_LOG_WARN, "%s: btrfs: primary superblock %s: the "
		       "mirror at %" PRIu64 " (generation %" PRIu64 ") is used",
		       fs->name, why, get_le64(sb + SB_BYTENR), best);
	return 0;
}

static int btrfs_parse_sb(struct btrfs_fs *fs, const uint8_t *sb,
			  struct vd_err *e)
{
	const struct vd_vol *v = fs->base.vol;
	uint64_t incompat = get_le64(sb + SB_INCOMPAT), rest;

	fs->sectorsize = get_le32(sb + SB_SECTORSIZE);
	fs->nodesize = get_le32(sb + SB_NODESIZE);
	if (!vd_is_pow2(fs->sectorsize) || fs->sectorsize < 4096 ||
	    fs->sectorsize > 65536 || !vd_is_pow2(fs->nodesize) ||
	    fs->nodesize < fs->sectorsize || fs->nodesize > 65536)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: superblock sector size "
			       "%u or node size %u is invalid", fs->name,
			       fs->sectorsize, fs->nodesize);
	rest = incompat;
	for (unsigned i = 0; i < VD_ARRAY_SIZE(btrfs_incompat); i++) {
		if (!(incompat & btrfs_incompat[i].bit))
			continue;
		if (!btrfs_incompat[i].ok)
			return vd_fail(e, -ENOTSUP, "%s: btrfs: incompatible "
				       "feature %s is not supported", fs->name,
				       btrfs_incompat[i].name);
		rest &= ~btrfs_incompat[i].bit;
	}
	if (rest)
		return vd_fail(e, -ENOTSUP, "%s: btrfs: unknown incompatible "
			       "features 0x%" PRIx64, fs->name, rest);
	fs->incompat = incompat;
	fs->compat_ro = get_le64(sb + SB_COMPAT_RO);
	fs->csum_type = get_le16(sb + SB_CSUM_TYPE);
	fs->csum_size = btrfs_csum_sizes[fs->csum_type];
	fs->csum_name = btrfs_csum_names[fs->csum_type];
	if ((fs->csum_type == 1 && vd_lazy_need(&vd_lazy_xxhash)) ||
	    (fs->csum_type == 3 && vd_lazy_need(&vd_lazy_b2)))
		return vd_fail(e, -ENOSYS, "%s: btrfs: its %s checksums need a "
			       "library that cannot be loaded", fs->name,
			       fs->csum_name);
	memcpy(fs->fsid, sb + SB_FSID, 16);
	memcpy(fs->meta_uuid,
	       sb + (incompat & BTRFS_INCOMPAT_METADATA_UUID ? SB_METADATA_UUID :
							      SB_FSID), 16);
	memcpy(fs->label, sb + SB_LABEL, 256);
	fs->label[256] = '\0';
	fs->generation = get_le64(sb + SB_GENERATION);
	fs->total_bytes = get_le64(sb + SB_TOTAL_BYTES);
	fs->bytes_used = get_le64(sb + SB_BYTES_USED);
	fs->num_devices = get_le64(sb + SB_NUM_DEVICES);
	fs->tree_root.bytenr = get_le64(sb + SB_ROOT);
	fs->tree_root.level = sb[SB_ROOT_LEVEL];
	fs->chunk_root.bytenr = get_le64(sb + SB_CHUNK_ROOT);
	fs->chunk_root.level = sb[SB_CHUNK_ROOT_LEVEL];
	if (fs->tree_root.level >= BTRFS_MAX_LEVEL ||
	    fs->chunk_root.level >= BTRFS_MAX_LEVEL)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: superblock root levels "
			       "%u and %u exceed 7", fs->name,
			       fs->tree_root.level, fs->chunk_root.level);
	if (!fs->num_devices || fs->num_devices > 1024)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: superblock says %" PRIu64
			       " devices", fs->name, fs->num_devices);
	fs->log_tree = get_le64(sb + SB_LOG_ROOT) != 0;
	if (!strcmp(v->ops->kind, VD_BTRFS_ASM_KIND) && v->desc) {
		/* Assembled over several volumes (volumes/btrfs-asm.c). */
		const struct vd_btrfs_devs *d = v->desc;

		fs->devs = calloc(d->n ? d->n : 1, sizeof(*fs->devs));
		if (!fs->devs)
			return -ENOMEM;
		for (unsigned i = 0; i < d->n; i++) {
			fs->devs[i].devid = d->dev[i].devid;
			fs->devs[i].vol = d->dev[i].vol;
		}
		fs->ndevs = d->n;
		return 0;
	}
	fs->devs = calloc(1, sizeof(*fs->devs));
	if (!fs->devs)
		return -ENOMEM;
	fs->devs[0].devid = get_le64(sb + SB_DEV_ITEM);
	fs->devs[0].vol = v;
	fs->ndevs = 1;
	return 0;
}

/* The root item of tree id: its root (the newest item of that id). */
static int btrfs_root_item(struct btrfs_fs *fs, uint64_t id,
			   struct btrfs_root *r)
{
	struct btrfs_path p;
	struct btrfs_key k = { id, BTRFS_ROOT_ITEM_KEY, 0 };
	const uint8_t *d;
	uint32_t size;
	int ret;

	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &fs->tree_root, &k);
	if (!ret) {
		struct btrfs_key f;

		vd_btrfs_item(&p, &f, &d, &size);
		if (f.objectid != id || f.type != BTRFS_ROOT_ITEM_KEY ||
		    size < ROOT_ITEM_MIN)
			ret = -ENOENT;
		else {
			r->bytenr = get_le64(d + ROOT_BYTENR);
			r->level = d[ROOT_LEVEL];
		}
	} else if (ret == 1) {
		ret = -ENOENT;
	}
	vd_btrfs_path_free(&p);
	return ret;
}

static int btrfs_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		       struct vd_fs **fs_r, struct vd_err *e)
{
	struct btrfs_fs *fs = calloc(1, sizeof(*fs));
	uint8_t *sb = malloc(BTRFS_SB_LEN);
	int ret;

	(void)o;
	if (!fs || !sb) {
		free(fs);
		free(sb);
		return -ENOMEM;
	}
	fs->base.ops = &vd_fs_btrfs;
	fs->base.vol = v;
	fs->name = v->name;
	pthread_mutex_init(&fs->zlock, NULL);
	ret = btrfs_read_sb(fs, sb, e);
	if (!ret)
		ret = btrfs_parse_sb(fs, sb, e);
	if (ret)
		goto fail;
	/* 16 MiB of tree blocks: the top levels of every tree and the
	 * leaves in use stay cached. */
	fs->cache = vd_cache_new(16u << 20, 4096);
	if (!fs->cache) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = vd_btrfs_load_chunks(fs, sb, e);
	if (ret)
		goto fail;
	ret = vd_btrfs_load_subvols(fs, e);
	if (ret)
		goto fail;
	ret = btrfs_root_item(fs, BTRFS_CSUM_TREE_OBJECTID, &fs->csum_root);
	if (ret && ret != -ENOENT) {
		ret = vd_fail(e, ret, "%s: btrfs: the root tree is unreadable",
			      fs->name);
		goto fail;
	}
	fs->has_csum_root = !ret;
	ret = 0;
	vd_btrfs_subvol_paths(fs);
	fs->default_subvol = vd_btrfs_default_subvol(fs);
	if (fs->log_tree)
		vd_log(VD_LOG_WARN, "%s: btrfs: a log tree is left to replay, "
		       "which is not done: the files are shown as `mount -o "
		       "ro,nologreplay` shows them", fs->name);
	free(sb);
	*fs_r = &fs->base;
	return 0;
fail:
	free(sb);
	btrfs_free(fs);
	return ret;
}

const struct vd_fs_ops vd_fs_btrfs = {
	.name = "btrfs",
	.probe = btrfs_probe,
	.mount = btrfs_mount,
	.unmount = btrfs_unmount,
	.root = btrfs_root_ino,
	.lookup = vd_btrfs_lookup_name,
	.getattr = btrfs_getattr,
	.readdir = vd_btrfs_readdir,
	.open = vd_btrfs_open,
	.read = vd_btrfs_read,
	.map = vd_btrfs_map,
	.seek = vd_btrfs_seek,
	.release = vd_btrfs_release,
	.readlink = vd_btrfs_readlink,
	.listxattr = vd_btrfs_listxattr,
	.getxattr = vd_btrfs_getxattr,
	.statfs = vd_btrfs_statfs,
	.info = btrfs_info,
};
