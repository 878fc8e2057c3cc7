/* xfs: extended attributes (xfs_da_format.h): shortform in the inode's
 * attribute fork, or a leaf block, or a da-btree of leaf blocks; values
 * local to the leaf or remote in blocks of their own (with a header and
 * CRC each on v5).
 *
 * Namespaces are flags on disk: none is user., XFS_ATTR_ROOT trusted.,
 * XFS_ATTR_SECURE security.; parent pointers (XFS_ATTR_PARENT) and
 * half-made entries (XFS_ATTR_INCOMPLETE) are the filesystem's own and not
 * shown. POSIX ACLs are trusted.SGI_ACL_FILE and SGI_ACL_DEFAULT in XFS's
 * own big-endian format (struct xfs_acl); they are shown as the kernel
 * shows them, as system.posix_acl_access and system.posix_acl_default in
 * the POSIX xattr format.
 *
 * Both calls walk every entry (a hash lookup would save little: an
 * inode's attributes are few and a leaf holds hundreds). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/xfs.h"

#define XFS_ATTR_LEAF_MAGIC 0xfbee
#define XFS_ATTR3_LEAF_MAGIC 0x3bee
#define XFS_DA_NODE_MAGIC 0xfebe
#define XFS_DA3_NODE_MAGIC 0x3ebe
#define XFS_ATTR3_RMT_MAGIC 0x5841524d /* "XARM" */
#define XFS_ATTR_LOCAL 0x01
#define XFS_ATTR_ROOT 0x02
#define XFS_ATTR_SECURE 0x04
#define XFS_ATTR_PARENT 0x08
#define XFS_ATTR_INCOMPLETE 0x80
/* da block info (see xfs-dir.c): magic at 8, CRC at 12, owner at 48;
 * the attr leaf header puts its count at 12 (v4) or 56 (v5) and its
 * entries at 32 or 80; a node's entries are at 16 or 64. */
#define DA_FORW 0
#define DA_MAGIC 8
#define DA_CRC 12
#define DA_OWNER 48
#define ALEAF_COUNT_V4 12 /* also a node's count */
#define ALEAF_COUNT_V5 56
#define ALEAF_HDR_V4 32u
#define ALEAF_HDR_V5 80u
#define DA_NODE_HDR_V4 16u
#define DA_NODE_HDR_V5 64u
#define XFS_RMT_HDR 56u
#define XFS_RMT_CRC 12
#define XFS_RMT_OWNER 32
#define XFS_DA_NODE_MAXDEPTH 5
/* Leaves one walk may visit (each at least a block of the fork). */
#define XFS_ATTR_MAX_LEAVES (1u << 20)
/* The largest value Linux allows (XATTR_SIZE_MAX). */
#define XFS_XATTR_SIZE_MAX 65536u

#define ACL_UNDEFINED_ID 0xffffffffu

/* One attribute: local value at val, or remote at fork block rblk. */
struct xattr_ent {
	uint8_t flags;
	const uint8_t *name;
	unsigned nl;
	const uint8_t *val;
	uint32_t vlen;
	uint32_t rblk;
};

/* Returns 1 to stop, 0 to go on, or -errno. */
typedef int (*xattr_fn)(void *arg, const struct xattr_ent *a);

struct xattr_walk {
	struct xfs_fs *x;
	struct xfs_inode *ip;
	struct xfs_map m;
	uint8_t *blk;
};

static int xattr_bad(struct xattr_walk *w, uint64_t fb, const char *what)
{
	vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 " attribute block %"
	       PRIu64 ": %s", w->x->name, w->ip->ino, fb, what);
	return -EIO;
}

static int xattr_sf(struct xattr_walk *w, xattr_fn fn, void *arg)
{
	const uint8_t *p = w->ip->afork, *end;
	unsigned count;
	size_t tot;

	if (w->ip->asize < 4)
		return xattr_bad(w, 0, "shortform header overruns the fork");
	tot = get_be16(p);
	count = p[2];
	if (tot < 4 || tot > w->ip->asize)
		return xattr_bad(w, 0, "shortform size overruns the fork");
	end = p + tot;
	p += 4;
	for (unsigned i = 0; i < count; i++) {
		struct xattr_ent a;
		int ret;

		if (end - p < 3 || (size_t)(end - p) < 3u + p[0] + p[1])
			return xattr_bad(w, 0, "a shortform entry overruns "
					 "the fork");
		a.nl = p[0];
		a.vlen = p[1];
		a.flags = p[2];
		a.name = p + 3;
		a.val = p + 3 + a.nl;
		a.rblk = 0;
		p += 3 + a.nl + a.vlen;
		ret = fn(arg, &a);
		if (ret)
			return ret;
	}
	return 0;
}

/* Read attribute fork block fb into w->blk and check it (da block). */
static int xattr_read(struct xattr_walk *w, uint64_t fb, unsigned *magic_r)
{
	struct xfs_fs *x = w->x;
	int ret = vd_xfs_map_read(x, &w->m, fb, 1, w->blk);

	if (ret == -ENOENT)
		return xattr_bad(w, fb, "lies in a hole");
	if (ret)
		return xattr_bad(w, fb, "unreadable");
	if (x->crc && (!vd_xfs_crc_ok(w->blk, x->blocksize, DA_CRC) ||
		       get_be64(w->blk + DA_OWNER) != w->ip->ino))
		return xattr_bad(w, fb, "fails its CRC or belongs to another "
				 "inode");
	*magic_r = get_be16(w->blk + DA_MAGIC);
	return 0;
}

static int xattr_leaf(struct xattr_walk *w, uint64_t fb, xattr_fn fn,
		      void *arg)
{
	struct xfs_fs *x = w->x;
	const uint8_t *b = w->blk;
	unsigned hdr = x->crc ? ALEAF_HDR_V5 : ALEAF_HDR_V4;
	unsigned count = get_be16(b + (x->crc ? ALEAF_COUNT_V5 :
						ALEAF_COUNT_V4));
	unsigned bs = x->blocksize;

	if (count > (bs - hdr) / 8)
		return xattr_bad(w, fb, "its count exceeds the block");
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *e = b + hdr + 8 * i;
		unsigned idx = get_be16(e + 4);
		struct xattr_ent a;
		int ret;

		a.flags = e[6];
		if (idx < hdr || idx >= bs)
			return xattr_bad(w, fb, "an entry's name lies outside "
					 "the block");
		if (a.flags & XFS_ATTR_LOCAL) {
			if (bs - idx < 3)
				return xattr_bad(w, fb, "a local entry "
						 "overruns the block");
			a.vlen = get_be16(b + idx);
			a.nl = b[idx + 2];
			a.name = b + idx + 3;
			a.val = a.name + a.nl;
			a.rblk = 0;
			if (bs - idx - 3 < a.nl + a.vlen)
				return xattr_bad(w, fb, "a local entry "
						 "overruns the block");
		} else {
			if (bs - idx < 9)
				return xattr_bad(w, fb, "a remote entry "
						 "overruns the block");
			a.rblk = get_be32(b + idx);
			a.vlen = get_be32(b + idx + 4);
			a.nl = b[idx + 8];
			a.name = b + idx + 9;
			a.val = NULL;
			if (bs - idx - 9 < a.nl)
				return xattr_bad(w, fb, "a remote entry "
						 "overruns the block");
		}
		ret = fn(arg, &a);
		if (ret)
			return ret;
	}
	return 0;
}

static int xattr_walk(struct xattr_walk *w, xattr_fn fn, void *arg)
{
	struct xfs_fs *x = w->x;
	uint64_t fb = 0;
	unsigned magic, depth = 0, nhdr;
	uint64_t leaves = 0, max_leaves = 0;
	int ret;

	if (!w->ip->afork)
		return 0;
	if (w->ip->aformat == XFS_DINODE_FMT_LOCAL)
		return xattr_sf(w, fn, arg);
	ret = vd_xfs_fork_map(x, w->ip, XFS_ATTR_FORK, &w->m);
	if (ret)
		return ret;
	if (!w->m.n)
		return 0;
	w->blk = malloc(x->blocksize);
	if (!w->blk)
		return -ENOMEM;
	nhdr = x->crc ? DA_NODE_HDR_V5 : DA_NODE_HDR_V4;
	/* Down the leftmost path. Ends: at most MAXDEPTH levels. */
	for (;;) {
		ret = xattr_read(w, fb, &magic);
		if (ret)
			return ret;
		if (magic != (x->crc ? XFS_DA3_NODE_MAGIC : XFS_DA_NODE_MAGIC))
			break;
		if (++depth > XFS_DA_NODE_MAXDEPTH ||
		    !get_be16(w->blk + (x->crc ? ALEAF_COUNT_V5 :
						 ALEAF_COUNT_V4)))
			return xattr_bad(w, fb, "a da-btree node too deep or "
					 "empty");
		fb = get_be32(w->blk + nhdr + 4);
	}
	/* Along the leaves, in hash order (not block order: a split puts
	 * the new leaf wherever there was room). Ends: at most as many
	 * leaves as the fork has blocks (a loop runs into the limit). */
	for (uint64_t i = 0; i < w->m.n; i++)
		max_leaves += w->m.ext[i].len;
	max_leaves = VD_MIN(max_leaves, (uint64_t)XFS_ATTR_MAX_LEAVES);
	for (;;) {
		uint64_t next;

		if (magic != (x->crc ? XFS_ATTR3_LEAF_MAGIC :
				       XFS_ATTR_LEAF_MAGIC))
			return xattr_bad(w, fb, "is not an attribute leaf");
		next = get_be32(w->blk + DA_FORW);
		ret = xattr_leaf(w, fb, fn, arg);
		if (ret)
			return ret;
		if (!next)
			return 0;
		if (next == fb || ++leaves >= max_leaves)
			return xattr_bad(w, fb, "the chain of leaves loops");
		fb = next;
		ret = xattr_read(w, fb, &magic);
		if (ret)
			return ret;
	}
}

/* A remote value of vlen bytes from fork block rblk into out. */
static int xattr_remote(struct xattr_walk *w, uint32_t rblk, uint32_t vlen,
			uint8_t *out)
{
	struct xfs_fs *x = w->x;
	unsigned hdr = x->crc ? XFS_RMT_HDR : 0, per = x->blocksize - hdr;
	uint8_t *b = malloc(x->blocksize);
	uint32_t done = 0;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	/* Ends: each block gives at least one byte. */
	for (uint64_t fb = rblk; done < vlen; fb++) {
		uint32_t n = VD_MIN(per, vlen - done);

		ret = vd_xfs_map_read(x, &w->m, fb, 1, b);
		if (!ret && x->crc &&
		    (get_be32(b) != XFS_ATTR3_RMT_MAGIC ||
		     !vd_xfs_crc_ok(b, x->blocksize, XFS_RMT_CRC) ||
		     get_be32(b + 4) != done || get_be32(b + 8) != n ||
		     get_be64(b + XFS_RMT_OWNER) != w->ip->ino))
			ret = -EIO;
		if (ret) {
			ret = xattr_bad(w, fb, "a remote value block is "
					"missing or bad");
			break;
		}
		memcpy(out + done, b + hdr, n);
		done += n;
	}
	free(b);
	return ret;
}

static int xattr_open(struct xfs_fs *x, uint64_t ino, struct xattr_walk *w)
{
	w->x = x;
	w->m.ext = NULL;
	w->m.n = 0;
	w->blk = NULL;
	w->ip = malloc(sizeof(*w->ip));
	if (!w->ip)
		return -ENOMEM;
	return vd_xfs_iget(x, ino, w->ip);
}

static void xattr_close(struct xattr_walk *w)
{
	free(w->ip);
	free(w->m.ext);
	free(w->blk);
}

/* The name a reader sees for an entry (prefix + name) into out[300];
 * false when it is not shown. An ACL is shown under this name (its raw
 * value, as the kernel lists trusted.SGI_ACL_FILE) and under the name of
 * xattr_acl_name as well. */
static bool xattr_name(const struct xattr_ent *a, char *out, size_t size)
{
	const char *pfx;
	size_t pl;

	if (a->flags & (XFS_ATTR_PARENT | XFS_ATTR_INCOMPLETE))
		return false;
	if (a->flags & XFS_ATTR_ROOT)
		pfx = "trusted.";
	else if (a->flags & XFS_ATTR_SECURE)
		pfx = "security.";
	else
		pfx = "user.";
	pl = strlen(pfx);
	if (pl + a->nl + 1 > size)
		return false;
	memcpy(out, pfx, pl);
	memcpy(out + pl, a->name, a->nl);
	out[pl + a->nl] = '\0';
	return true;
}

/* system.posix_acl_access/default for XFS's own ACL attributes, or
 * NULL. */
static const char *xattr_acl_name(const struct xattr_ent *a)
{
	if ((a->flags & (XFS_ATTR_ROOT | XFS_ATTR_PARENT |
			 XFS_ATTR_INCOMPLETE)) != XFS_ATTR_ROOT)
		return NULL;
	if (a->nl == 12 && !memcmp(a->name, "SGI_ACL_FILE", 12))
		return "system.posix_acl_access";
	if (a->nl == 15 && !memcmp(a->name, "SGI_ACL_DEFAULT", 15))
		return "system.posix_acl_default";
	return NULL;
}

struct xattr_list {
	char *buf;
	size_t size, len;
};

static int xattr_list_one(void *arg, const struct xattr_ent *a)
{
	struct xattr_list *l = arg;
	char name[300];
	const char *acl = xattr_acl_name(a);
	size_t n;

	if (!xattr_name(a, name, sizeof(name)))
		return 0;
	/* Ends: the name, then the ACL's name if any. */
	for (const char *s = name; s; s = s == acl ? NULL : acl) {
		n = strlen(s) + 1;
		if (l->size && l->len + n <= l->size)
			memcpy(l->buf + l->len, s, n);
		l->len += n;
	}
	return 0;
}

int vd_xfs_listxattr(struct vd_fs *fs, uint64_t ino, char *buf, size_t size,
		     size_t *len_r)
{
	struct xattr_walk w;
	struct xattr_list l = { buf, size, 0 };
	int ret = xattr_open((struct xfs_fs *)fs, ino, &w);

	if (!ret)
		ret = xattr_walk(&w, xattr_list_one, &l);
	xattr_close(&w);
	if (ret)
		return ret;
	*len_r = l.len;
	return size && l.len > size ? -ERANGE : 0;
}

struct xattr_get {
	struct xattr_walk *w;
	const char *want;
	uint8_t *val; /* malloc'ed when found */
	uint32_t vlen;
};

static int xattr_get_one(void *arg, const struct xattr_ent *a)
{
	struct xattr_get *g = arg;
	char name[300];
	int ret;

	const char *acl = xattr_acl_name(a);

	if (!xattr_name(a, name, sizeof(name)) ||
	    (strcmp(name, g->want) && (!acl || strcmp(acl, g->want))))
		return 0;
	if (a->vlen > XFS_XATTR_SIZE_MAX)
		return xattr_bad(g->w, a->rblk, "a value is larger than 64 KiB");
	g->val = malloc(a->vlen + 1);
	if (!g->val)
		return -ENOMEM;
	g->vlen = a->vlen;
	if (a->val) {
		memcpy(g->val, a->val, a->vlen);
		return 1;
	}
	ret = xattr_remote(g->w, a->rblk, a->vlen, g->val);
	return ret ? ret : 1;
}

/* XFS's ACL (acl_cnt, then 12-byte entries tag, id, perm, pad; all
 * big-endian) in the POSIX xattr format: version 2, then 8-byte entries
 * tag, perm (16 bits each), id (ACL_UNDEFINED_ID unless a named user or
 * group), little-endian. */
static int xattr_acl(const uint8_t *v, uint32_t len, uint8_t **out_r,
		     size_t *len_r)
{
	uint32_t cnt;
	uint8_t *o;

	if (len < 4)
		return -EIO;
	cnt = get_be32(v);
	if (cnt > (len - 4) / 12 || 4 + (size_t)cnt * 12 != len)
		return -EIO;
	o = malloc(4 + (size_t)cnt * 8);
	if (!o)
		return -ENOMEM;
	memset(o, 0, 4);
	o[0] = 2;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *e = v + 4 + 12 * i;
		uint8_t *d = o + 4 + 8 * i;
		uint32_t tag = get_be32(e), id = get_be32(e + 4);
		uint16_t perm = get_be16(e + 8);

		if (tag != 0x02 && tag != 0x08) /* ACL_USER, ACL_GROUP */
			id = ACL_UNDEFINED_ID;
		if (tag != 0x01 && tag != 0x02 && tag != 0x04 &&
		    tag != 0x08 && tag != 0x10 && tag != 0x20) {
			free(o);
			return -EIO;
		}
		d[0] = (uint8_t)tag;
		d[1] = (uint8_t)(tag >> 8);
		d[2] = (uint8_t)perm;
		d[3] = (uint8_t)(perm >> 8);
		d[4] = (uint8_t)id;
		d[5] = (uint8_t)(id >> 8);
		d[6] = (uint8_t)(id >> 16);
		d[7] = (uint8_t)(id >> 24);
	}
	*out_r = o;
	*len_r = 4 + (size_t)cnt * 8;
	return 0;
}

int vd_xfs_getxattr(struct vd_fs *fs, uint64_t ino, const char *name,
		    void *buf, size_t size, size_t *len_r)
{
	struct xfs_fs *x = (struct xfs_fs *)fs;
	struct xattr_walk w;
	struct xattr_get g = { &w, name, NULL, 0 };
	uint8_t *acl = NULL;
	size_t len;
	int ret = xattr_open(x, ino, &w);

	if (!ret)
		ret = xattr_walk(&w, xattr_get_one, &g);
	xattr_close(&w);
	if (ret < 0)
		goto out;
	if (!ret) {
		ret = -ENODATA;
		goto out;
	}
	ret = 0;
	len = g.vlen;
	if (!strncmp(name, "system.posix_acl_", 17)) {
		ret = xattr_acl(g.val, g.vlen, &acl, &len);
		if (ret == -EIO)
			vd_log(VD_LOG_ERR, "%s: xfs: inode %" PRIu64 ": bad "
			       "ACL in %s", x->name, ino, name);
		if (ret)
			goto out;
	}
	*len_r = len;
	if (size && len > size)
		ret = -ERANGE;
	else if (size)
		memcpy(buf, acl ? acl : g.val, len);
out:
	free(acl);
	free(g.val);
	return ret;
}
