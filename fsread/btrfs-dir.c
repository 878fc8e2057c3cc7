/* btrfs: directories and extended attributes.
 *
 * A directory's entries are items of its subvolume's tree twice over:
 * DIR_INDEX items keyed by a sequence number (readdir's order, and its
 * cookie: the next index), and DIR_ITEM items keyed by the name's crc32c
 * hash (lookup: one search, then the names sharing that hash). An entry
 * leads to an inode of the same subvolume, or to a subvolume's root
 * (vd_btrfs_resolve).
 *
 * Extended attributes are XATTR_ITEM items of the inode, keyed by the
 * name's hash, laid out as dir items whose data is the value; the names
 * carry their namespace ("user.", "security.", "system.posix_acl_access"
 * with the ACL in the kernel's xattr format), so they pass through as
 * stored. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/btrfs.h"

#define BTRFS_NAME_MAX 255u
/* A cookie past this cannot reach FUSE (ns.c). */
#define BTRFS_COOKIE_MAX ((uint64_t)INT64_MAX - 3)

/* One dir item entry at p within [p, end): its parts; -EIO when it does
 * not fit. */
struct btrfs_dirent {
	struct btrfs_key loc;
	const uint8_t *name, *data;
	unsigned name_len, data_len, type;
	size_t len; /* bytes taken */
};

static int dirent_parse(const uint8_t *p, size_t avail, struct btrfs_dirent *d)
{
	if (avail < BTRFS_DIR_ITEM_LEN)
		return -EIO;
	vd_btrfs_key_read(p, &d->loc);
	d->data_len = get_le16(p + 25);
	d->name_len = get_le16(p + 27);
	d->type = p[29];
	d->name = p + BTRFS_DIR_ITEM_LEN;
	d->data = d->name + d->name_len;
	d->len = BTRFS_DIR_ITEM_LEN + (size_t)d->name_len + d->data_len;
	if (d->len > avail || !d->name_len)
		return -EIO;
	return 0;
}

static unsigned dirent_dtype(unsigned t)
{
	static const unsigned dt[] = { DT_UNKNOWN, DT_REG, DT_DIR, DT_CHR,
				       DT_BLK, DT_FIFO, DT_SOCK, DT_LNK };

	return t < VD_ARRAY_SIZE(dt) ? dt[t] : DT_UNKNOWN;
}

static bool name_ok(const uint8_t *n, unsigned len)
{
	return len <= BTRFS_NAME_MAX && !memchr(n, '/', len) &&
	       !memchr(n, '\0', len);
}

int vd_btrfs_readdir(struct vd_fs *vfs, uint64_t dir, uint64_t cookie,
		     vd_fs_fill fill, void *arg)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	struct btrfs_subvol *sv;
	struct btrfs_path p;
	struct btrfs_key k;
	uint64_t oid;
	char name[BTRFS_NAME_MAX + 1];
	int ret;

	if (vd_btrfs_ino_split(fs, dir, &sv, &oid))
		return -ENOENT;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID)
		return 0;
	k.objectid = oid;
	k.type = BTRFS_DIR_INDEX_KEY;
	k.offset = cookie;
	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &sv->root, &k);
	/* Ends: keys strictly increase (vd_btrfs_next). */
	while (!ret) {
		struct btrfs_dirent d;
		const uint8_t *data;
		uint32_t size;
		uint64_t ino;

		vd_btrfs_item(&p, &k, &data, &size);
		if (k.objectid != oid || k.type != BTRFS_DIR_INDEX_KEY)
			break;
		if (k.offset >= BTRFS_COOKIE_MAX) {
			vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64
			       " directory %" PRIu64 ": index %" PRIu64 " is too "
			       "large: the entries from it are not listed",
			       fs->name, sv->id, oid, k.offset);
			break;
		}
		if (dirent_parse(data, size, &d) ||
		    !name_ok(d.name, d.name_len)) {
			vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64
			       " directory %" PRIu64 ": entry %" PRIu64 " is "
			       "malformed: skipped", fs->name, sv->id, oid,
			       k.offset);
			goto next;
		}
		memcpy(name, d.name, d.name_len);
		name[d.name_len] = '\0';
		if (vd_btrfs_resolve(fs, sv, oid, &d.loc, name, d.name_len,
				     &ino))
			goto next;
		if (fill(arg, name, ino, dirent_dtype(d.type & 0x7f),
			 k.offset + 1))
			break;
next:
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	return ret < 0 ? ret : 0;
}

int vd_btrfs_lookup_name(struct vd_fs *vfs, uint64_t dir, const char *name,
			 uint64_t *ino_r)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	size_t len = strlen(name);
	struct btrfs_subvol *sv;
	struct btrfs_key k;
	uint64_t oid;
	uint8_t *data;
	uint32_t size;
	size_t pos = 0;
	int ret;

	if (vd_btrfs_ino_split(fs, dir, &sv, &oid))
		return -ENOENT;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID || !len ||
	    len > BTRFS_NAME_MAX)
		return -ENOENT;
	k.objectid = oid;
	k.type = BTRFS_DIR_ITEM_KEY;
	k.offset = vd_btrfs_name_hash(name, len);
	ret = vd_btrfs_lookup(fs, &sv->root, &k, &data, &size);
	if (ret)
		return ret;
	ret = -ENOENT;
	/* Ends: each entry moves pos forward by at least 30 bytes. */
	while (pos < size) {
		struct btrfs_dirent d;

		if (dirent_parse(data + pos, size - pos, &d)) {
			vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64
			       " directory %" PRIu64 ": a name item is "
			       "malformed", fs->name, sv->id, oid);
			ret = -EIO;
			break;
		}
		if (d.name_len == len && !memcmp(d.name, name, len)) {
			ret = vd_btrfs_resolve(fs, sv, oid, &d.loc, name, len,
					       ino_r);
			break;
		}
		pos += d.len;
	}
	free(data);
	return ret;
}

/* Call fn for every xattr of ino until it returns nonzero. */
static int xattr_walk(struct btrfs_fs *fs, uint64_t ino,
		      int (*fn)(void *arg, const struct btrfs_dirent *d),
		      void *arg)
{
	struct btrfs_subvol *sv;
	struct btrfs_path p;
	struct btrfs_key k;
	uint64_t oid;
	int ret;

	if (vd_btrfs_ino_split(fs, ino, &sv, &oid))
		return -ENOENT;
	if (oid == BTRFS_EMPTY_SUBVOL_DIR_OBJECTID)
		return 0;
	k.objectid = oid;
	k.type = BTRFS_XATTR_ITEM_KEY;
	k.offset = 0;
	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &sv->root, &k);
	/* Ends: keys strictly increase; entries advance within an item. */
	while (!ret) {
		const uint8_t *data;
		uint32_t size;
		size_t pos = 0;

		vd_btrfs_item(&p, &k, &data, &size);
		if (k.objectid != oid || k.type != BTRFS_XATTR_ITEM_KEY)
			break;
		while (pos < size) {
			struct btrfs_dirent d;

			if (dirent_parse(data + pos, size - pos, &d)) {
				vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %"
				       PRIu64 " inode %" PRIu64 ": an xattr "
				       "item is malformed", fs->name, sv->id,
				       oid);
				ret = -EIO;
				goto out;
			}
			pos += d.len;
			if (memchr(d.name, '\0', d.name_len))
				continue;
			ret = fn(arg, &d);
			if (ret)
				goto out;
		}
		ret = vd_btrfs_next(&p);
	}
out:
	vd_btrfs_path_free(&p);
	return ret < 0 ? ret : 0;
}

struct xattr_list {
	char *buf;
	size_t size, len;
};

static int xattr_list_one(void *arg, const struct btrfs_dirent *d)
{
	struct xattr_list *l = arg;

	if (l->size) {
		if (l->len + d->name_len + 1 > l->size)
			return -ERANGE;
		memcpy(l->buf + l->len, d->name, d->name_len);
		l->buf[l->len + d->name_len] = '\0';
	}
	l->len += d->name_len + 1;
	return 0;
}

int vd_btrfs_listxattr(struct vd_fs *vfs, uint64_t ino, char *buf,
		       size_t size, size_t *len_r)
{
	struct xattr_list l = { buf, size, 0 };
	int ret = xattr_walk((struct btrfs_fs *)vfs, ino, xattr_list_one, &l);

	if (ret)
		return ret;
	*len_r = l.len;
	return 0;
}

struct xattr_get {
	const char *name;
	size_t name_len;
	void *buf;
	size_t size, len;
	bool found;
};

static int xattr_get_one(void *arg, const struct btrfs_dirent *d)
{
	struct xattr_get *g = arg;

	if (d->name_len != g->name_len || memcmp(d->name, g->name, g->name_len))
		return 0;
	g->found = true;
	g->len = d->data_len;
	if (g->size) {
		if (d->data_len > g->size)
			return -ERANGE;
		memcpy(g->buf, d->data, d->data_len);
	}
	return 1;
}

int vd_btrfs_getxattr(struct vd_fs *vfs, uint64_t ino, const char *name,
		      void *buf, size_t size, size_t *len_r)
{
	struct xattr_get g = { name, strlen(name), buf, size, 0, false };
	int ret = xattr_walk((struct btrfs_fs *)vfs, ino, xattr_get_one, &g);

	if (ret)
		return ret;
	if (!g.found)
		return -ENODATA;
	*len_r = g.len;
	return 0;
}
