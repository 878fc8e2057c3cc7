/* btrfs: subvolumes. Every subvolume and snapshot has a ROOT_ITEM in the
 * root tree (its tree's root, its root directory, generation, flags) and
 * a ROOT_BACKREF naming the subvolume and directory that hold it; the
 * directory entry that names it leads to a ROOT_ITEM key, and counts only
 * where a ROOT_REF of the holder confirms it (as the kernel's
 * fixup_tree_root_location checks): elsewhere (a snapshot's copy of a
 * nested subvolume's entry) the kernel shows an empty directory, and so
 * do we. The driver's inode numbers pair a subvolume's index in
 * struct btrfs_fs.sv with an objectid (btrfs.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/btrfs.h"

/* Root item (struct btrfs_root_item) after its inode item. */
#define ROOT_GENERATION 160
#define ROOT_DIRID 168
#define ROOT_BYTENR 176
#define ROOT_FLAGS 208
#define ROOT_REFS 216
#define ROOT_LEVEL 238
#define ROOT_ITEM_MIN 239u
#define ROOT_OTIME 339
#define ROOT_ITEM_V2 439u
/* Subvolumes one filesystem may show (their index is 16 bits). */
#define BTRFS_MAX_SUBVOLS 65535u
/* Steps up a directory chain to a subvolume's root. */
#define BTRFS_MAX_PATH_STEPS 4096u
#define BTRFS_PATH_MAX 4096u

/* ---- subvolumes and inode numbers ---- */

struct btrfs_subvol *vd_btrfs_sv_by_id(struct btrfs_fs *fs, uint64_t id)
{
	size_t lo = 0, hi = fs->nsv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fs->sv[mid].id == id)
			return &fs->sv[mid];
		if (fs->sv[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int vd_btrfs_ino_split(struct btrfs_fs *fs, uint64_t ino,
		       struct btrfs_subvol **sv_r, uint64_t *objectid_r)
{
	uint64_t idx = ino >> 48;

	if (idx >= fs->nsv)
		return -ENOENT;
	*sv_r = &fs->sv[idx];
	*objectid_r = ino & ((1ull << 48) - 1);
	return 0;
}


/* Whether subvolume child hangs in parent's directory dir under name
 * (a ROOT_REF item says so, as the kernel's fixup_tree_root_location
 * checks). */
static bool btrfs_root_ref_ok(struct btrfs_fs *fs, uint64_t parent,
			      uint64_t child, uint64_t dir, const char *name,
			      size_t len)
{
	struct btrfs_key k = { parent, BTRFS_ROOT_REF_KEY, child };
	uint8_t *d;
	uint32_t size;
	bool ok;

	if (vd_btrfs_lookup(fs, &fs->tree_root, &k, &d, &size))
		return false;
	ok = size >= 18 && get_le64(d) == dir && get_le16(d + 16) == len &&
	     size - 18 >= len && !memcmp(d + 18, name, len);
	free(d);
	return ok;
}

int vd_btrfs_resolve(struct btrfs_fs *fs, const struct btrfs_subvol *sv,
		     uint64_t dir, const struct btrfs_key *loc,
		     const char *name, size_t len, uint64_t *ino_r)
{
	unsigned idx = (unsigned)(sv - fs->sv);

	if (loc->type == BTRFS_INODE_ITEM_KEY) {
		if (loc->objectid < BTRFS_FIRST_FREE_OBJECTID ||
		    loc->objectid >= 1ull << 48)
			goto bad;
		*ino_r = vd_btrfs_ino(idx, loc->objectid);
		return 0;
	}
	if (loc->type == BTRFS_ROOT_ITEM_KEY) {
		struct btrfs_subvol *c = vd_btrfs_sv_by_id(fs, loc->objectid);

		if (c && c != fs->sv &&
		    btrfs_root_ref_ok(fs, sv->id, c->id, dir, name, len))
			*ino_r = vd_btrfs_ino((unsigned)(c - fs->sv), c->dirid);
		else
			*ino_r = vd_btrfs_ino(idx,
					      BTRFS_EMPTY_SUBVOL_DIR_OBJECTID);
		return 0;
	}
bad:
	vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64 " directory %"
	       PRIu64 ": entry %.*s leads to key (%" PRIu64 ", %u)", fs->name,
	       sv->id, dir, (int)VD_MIN(len, 255u), name, loc->objectid,
	       loc->type);
	return -EIO;
}

int vd_btrfs_subvol_info(struct vd_fs *vfs, size_t n, struct vd_fs_subvol *s)
{
	struct btrfs_fs *fs = (struct btrfs_fs *)vfs;
	const struct btrfs_subvol *sv;

	if (n + 1 >= fs->nsv)
		return -ENOENT;
	sv = &fs->sv[n + 1];
	memset(s, 0, sizeof(*s));
	s->id = sv->id;
	s->parent = sv->parent;
	s->generation = sv->generation;
	s->readonly = sv->flags & BTRFS_SUBVOL_RDONLY;
	s->path = sv->path;
	return 0;
}


/* Every subvolume's root item, sorted by id (the root tree's order). */
int vd_btrfs_load_subvols(struct btrfs_fs *fs, struct vd_err *e)
{
	struct btrfs_path p;
	struct btrfs_key k = { BTRFS_FS_TREE_OBJECTID, BTRFS_ROOT_ITEM_KEY, 0 };
	size_t cap = 0;
	int ret;

	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &fs->tree_root, &k);
	/* Ends: keys strictly increase; at most BTRFS_MAX_SUBVOLS kept. */
	while (!ret) {
		const uint8_t *d;
		uint32_t size;
		struct btrfs_subvol *sv;

		vd_btrfs_item(&p, &k, &d, &size);
		if (k.objectid > BTRFS_LAST_FREE_OBJECTID)
			break;
		if (k.type != BTRFS_ROOT_ITEM_KEY ||
		    (k.objectid != BTRFS_FS_TREE_OBJECTID &&
		     k.objectid < BTRFS_FIRST_FREE_OBJECTID) ||
		    (fs->nsv && fs->sv[fs->nsv - 1].id == k.objectid))
			goto next;
		if (size < ROOT_ITEM_MIN) {
			vd_log(VD_LOG_ERR, "%s: btrfs: root item of subvolume %"
			       PRIu64 " is too short (%" PRIu32 " bytes): not "
			       "shown", fs->name, k.objectid, size);
			goto next;
		}
		/* A deleted subvolume waiting for cleanup. */
		if (!get_le32(d + ROOT_REFS) &&
		    k.objectid != BTRFS_FS_TREE_OBJECTID)
			goto next;
		if (fs->nsv == BTRFS_MAX_SUBVOLS) {
			vd_log(VD_LOG_ERR, "%s: btrfs: more than %u subvolumes:"
			       " the rest are not shown", fs->name,
			       BTRFS_MAX_SUBVOLS);
			break;
		}
		if (fs->nsv == cap) {
			struct btrfs_subvol *n;

			cap = cap ? 2 * cap : 16;
			n = realloc(fs->sv, cap * sizeof(*n));
			if (!n) {
				ret = -ENOMEM;
				break;
			}
			fs->sv = n;
		}
		sv = &fs->sv[fs->nsv++];
		memset(sv, 0, sizeof(*sv));
		sv->id = k.objectid;
		sv->root.bytenr = get_le64(d + ROOT_BYTENR);
		sv->root.level = d[ROOT_LEVEL];
		sv->dirid = get_le64(d + ROOT_DIRID);
		sv->generation = get_le64(d + ROOT_GENERATION);
		sv->flags = get_le64(d + ROOT_FLAGS);
		if (size >= ROOT_ITEM_V2)
			vd_btrfs_time(d + ROOT_OTIME, &sv->otime);
		if (sv->dirid < BTRFS_FIRST_FREE_OBJECTID ||
		    sv->dirid >= 1ull << 48) {
			vd_log(VD_LOG_ERR, "%s: btrfs: subvolume %" PRIu64
			       " has root directory %" PRIu64 ": not shown",
			       fs->name, sv->id, sv->dirid);
			fs->nsv--;
		}
next:
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	if (ret < 0)
		return vd_fail(e, ret, "%s: btrfs: the root tree is unreadable",
			       fs->name);
	if (!fs->nsv || fs->sv[0].id != BTRFS_FS_TREE_OBJECTID)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: the root tree holds no "
			       "top-level subvolume (id 5)", fs->name);
	return 0;
}

/* The path of directory dir inside subvolume sv, up to its root, into
 * buf (ending with '/' unless empty). */
static int btrfs_dir_path(struct btrfs_fs *fs, const struct btrfs_subvol *sv,
			  uint64_t dir, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	/* Ends: at most BTRFS_MAX_PATH_STEPS steps up. */
	for (unsigned step = 0; dir != sv->dirid; step++) {
		struct btrfs_path p;
		struct btrfs_key k = { dir, BTRFS_INODE_REF_KEY, 0 };
		const uint8_t *d;
		uint32_t isize;
		unsigned nl;
		int ret;

		if (step >= BTRFS_MAX_PATH_STEPS)
			return -ELOOP;
		vd_btrfs_path_init(&p, fs);
		ret = vd_btrfs_search(&p, &sv->root, &k);
		if (!ret) {
			struct btrfs_key f;

			vd_btrfs_item(&p, &f, &d, &isize);
			nl = isize >= 10 ? get_le16(d + 8) : 0;
			if (f.objectid != dir || f.type != BTRFS_INODE_REF_KEY ||
			    !nl || isize - 10 < nl || len + nl + 1 >= size) {
				ret = -EIO;
			} else {
				memmove(buf + nl + 1, buf, len + 1);
				memcpy(buf, d + 10, nl);
				buf[nl] = '/';
				len += nl + 1;
				dir = f.offset;
			}
		}
		vd_btrfs_path_free(&p);
		if (ret)
			return ret < 0 ? ret : -EIO;
	}
	return 0;
}

/* Parents and paths of the subvolumes (ROOT_BACKREF items). */
void vd_btrfs_subvol_paths(struct btrfs_fs *fs)
{
	char *dbuf = malloc(BTRFS_PATH_MAX), *full = malloc(BTRFS_PATH_MAX);

	if (!dbuf || !full)
		goto out;
	fs->sv[0].path = strdup("");
	for (size_t i = 1; i < fs->nsv; i++) {
		struct btrfs_subvol *sv = &fs->sv[i];
		struct btrfs_path p;
		struct btrfs_key k = { sv->id, BTRFS_ROOT_BACKREF_KEY, 0 };
		const uint8_t *d;
		uint32_t size;

		vd_btrfs_path_init(&p, fs);
		if (!vd_btrfs_search(&p, &fs->tree_root, &k)) {
			vd_btrfs_item(&p, &k, &d, &size);
			if (k.objectid == sv->id &&
			    k.type == BTRFS_ROOT_BACKREF_KEY && size >= 18)
				sv->parent = k.offset;
		}
		vd_btrfs_path_free(&p);
	}
	/* Paths, parents first: each pass names the subvolumes whose parent
	 * has a path. Ends: at most nsv passes, each naming one or more. */
	for (size_t pass = 0; pass < fs->nsv; pass++) {
		bool more = false;

		for (size_t i = 1; i < fs->nsv; i++) {
			struct btrfs_subvol *sv = &fs->sv[i], *par;
			struct btrfs_key k = { sv->id, BTRFS_ROOT_BACKREF_KEY,
					       sv->parent };
			uint8_t *d;
			uint32_t size;
			unsigned nl;

			if (sv->path || !sv->parent)
				continue;
			par = vd_btrfs_sv_by_id(fs, sv->parent);
			if (!par || !par->path)
				continue;
			if (vd_btrfs_lookup(fs, &fs->tree_root, &k, &d, &size))
				continue;
			nl = size >= 18 ? get_le16(d + 16) : 0;
			if (nl && size - 18 >= nl &&
			    !btrfs_dir_path(fs, par, get_le64(d), dbuf,
					    BTRFS_PATH_MAX) &&
			    snprintf(full, BTRFS_PATH_MAX, "%s%s%s%.*s",
				     par->path, par->path[0] ? "/" : "", dbuf,
				     (int)nl, (const char *)d + 18) <
				    (int)BTRFS_PATH_MAX) {
				sv->path = strdup(full);
				more = true;
			}
			free(d);
		}
		if (!more)
			break;
	}
out:
	free(dbuf);
	free(full);
}

/* The default subvolume: the root tree directory's entry "default". */
uint64_t vd_btrfs_default_subvol(struct btrfs_fs *fs)
{
	struct btrfs_key k = { BTRFS_ROOT_TREE_DIR_OBJECTID, BTRFS_DIR_ITEM_KEY,
			       vd_btrfs_name_hash("default", 7) };
	uint8_t *d;
	uint32_t size;
	uint64_t id = BTRFS_FS_TREE_OBJECTID;

	if (vd_btrfs_lookup(fs, &fs->tree_root, &k, &d, &size))
		return id;
	if (size >= BTRFS_DIR_ITEM_LEN + 7 && get_le16(d + 27) == 7 &&
	    !memcmp(d + BTRFS_DIR_ITEM_LEN, "default", 7))
		id = get_le64(d);
	free(d);
	return id;
}
