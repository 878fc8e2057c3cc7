/* VDI (VirtualBox Disk Image), read-only.
 *
 * Field offsets are those of VirtualBox's VDICore.h (VDIPREHEADER and
 * VDIHEADER1), cross-read with QEMU's block/vdi.c, which names them as
 * qemu-img info shows them. All fields are little-endian; UUIDs are
 * stored as VirtualBox's RTUUID (first three fields little-endian).
 *
 * Layout: a 512-byte header, the block map (one u32 per block of the
 * virtual disk), then the blocks. Block map entry i is the index of guest
 * block i among the stored blocks (at offset_data + index * (block_extra
 * + block_size) + block_extra), or ~0 (free: zeros, or the parent's bytes
 * in a differencing image) or ~1 (zeroed).
 *
 * Header versions: 1.1 only, as QEMU (the older 0.0 layout, which QEMU
 * does not read either, is refused by name). Image types: normal
 * ("dynamic"), fixed ("static"), differencing; undo images are refused.
 *
 * A differencing image names its parent only by UUID (uuidLinkage, the
 * parent's uuidCreate) and records the parent's modification UUID at the
 * time it was made (uuidParentModify). The parent is looked for among
 * the .vdi files of the child's folder, that folder's parent (VirtualBox
 * keeps the base image beside the Snapshots folder) and the --backing-dir
 * folders. A parent found in the folder above the child's is allowed
 * there (issue 22: `vdmount Snapshots/{uuid}.vdi` opens the whole chain):
 * the image named no path, and only a .vdi file whose header holds the
 * UUID is taken. The file found is then opened under the folder rule,
 * like any backing file, so a parent elsewhere is refused with
 * the --backing-dir that would allow it.
 *
 * Open reads the header, and validates the block map by streaming it
 * when it is at most VDI_VALIDATE_MAX bytes (16 TiB of 1 MiB blocks);
 * lookups go through the disk's bounded cache a 4 KiB page at a time and
 * check each entry again, so open stays O(1) in memory and a larger map
 * costs no more than reading it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"

#define V_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vdi: " fmt, l->path, ##__VA_ARGS__)
#define V_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: vdi: " fmt, l->path, ##__VA_ARGS__)

#define VDI_HEADER_READ 512u
/* VDIPREHEADER: 64 bytes of text, then: */
#define VDI_H_SIGNATURE 0x40 /* u32 0xbeda107f */
#define VDI_H_VERSION 0x44   /* u32 major << 16 | minor */
/* VDIHEADER1 (version 1.1): */
#define VDI_H_SIZE 0x48	     /* cbHeader: at least VDI_HEADER1_SIZE */
#define VDI_H_TYPE 0x4c
#define VDI_H_OFF_BMAP 0x154 /* offBlocks */
#define VDI_H_OFF_DATA 0x158 /* offData */
#define VDI_H_SECTOR 0x168   /* legacy geometry cbSector */
#define VDI_H_DISK_SIZE 0x170 /* u64 cbDisk */
#define VDI_H_BLOCK_SIZE 0x178
#define VDI_H_BLOCK_EXTRA 0x17c
#define VDI_H_BLOCKS 0x180	  /* cBlocks */
#define VDI_H_ALLOCATED 0x184	  /* cBlocksAllocated */
#define VDI_H_UUID 0x188	  /* uuidCreate */
#define VDI_H_UUID_MODIFY 0x198	  /* uuidModify */
#define VDI_H_UUID_LINK 0x1a8	  /* uuidLinkage: the parent's uuidCreate */
#define VDI_H_UUID_PARENT_MOD 0x1b8 /* uuidParentModify */
#define VDI_HEADER1_SIZE 0x180	  /* VDIHEADER1, from VDI_H_SIZE */

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u

enum vdi_type {
	VDI_NORMAL = 1,
	VDI_FIXED = 2,
	VDI_UNDO = 3,
	VDI_DIFF = 4,
};

#define VDI_BLOCK_FREE 0xffffffffu
#define VDI_BLOCK_ZERO 0xfffffffeu
/* QEMU's limit: a block map of at most 4 GiB. */
#define VDI_MAX_BLOCKS 0x3fffffffu
#define VDI_MIN_BLOCK 512u
#define VDI_MAX_BLOCK (256u << 20)
#define VDI_MAX_EXTRA (1u << 20)
/* Block maps up to this size are checked entry by entry at open. */
#define VDI_VALIDATE_MAX (16u << 20)
/* .vdi files looked at in one folder while searching for a parent. */
#define VDI_MAX_SCAN 4096u

/* Cache keys: block map pages of 4 KiB (1024 entries) by index. */
#define VDI_PAGE_BITS 12
#define VDI_PER_PAGE (1u << (VDI_PAGE_BITS - 2))

struct vdi {
	enum vdi_type type;
	uint8_t uuid[16];	    /* 0x188 */
	uint8_t uuid_modify[16];    /* 0x198 */
	uint8_t uuid_link[16];	    /* 0x1a8 */
	uint8_t uuid_parent_mod[16]; /* 0x1b8 */
	uint64_t bmap_off;	    /* 0x154 */
	uint64_t data_off;	    /* 0x158 */
	uint32_t blocks;	    /* 0x180 */
	uint32_t block_size;	    /* 0x178, a power of two */
	uint32_t block_extra;	    /* 0x17c */
	unsigned block_bits;
};

extern const struct vd_format vd_format_vdi;

static int vdi_probe(const uint8_t *head, size_t len)
{
	return len >= VDI_H_VERSION + 4 &&
			       get_le32(head + VDI_H_SIGNATURE) == VDI_SIGNATURE ?
		       100 :
		       0;
}

static bool vdi_uuid_null(const uint8_t *u)
{
	for (unsigned i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

static void vdi_close(struct vd_layer *l)
{
	free(l->priv);
	l->priv = NULL;
}

/* Whether block map entry ent (of guest block blk) is one the map can
 * use: free, zero, or a stored block wholly inside the file. The bytes
 * needed are those of the guest block up to the virtual size. */
static bool vdi_entry_ok(const struct vd_layer *l, const struct vdi *v,
			 uint64_t blk, uint32_t ent, uint64_t *host_r)
{
	uint64_t total = (uint64_t)v->block_size + v->block_extra;
	uint64_t need = VD_MIN((uint64_t)v->block_size,
			       l->size - (blk << v->block_bits));
	uint64_t host;

	if (ent == VDI_BLOCK_FREE || ent == VDI_BLOCK_ZERO)
		return true;
	if (ent >= v->blocks)
		return false;
	/* ent < 2^30 and total <= 2^29: no overflow. */
	host = v->data_off + (uint64_t)ent * total + v->block_extra;
	if (host_r)
		*host_r = host;
	return vd_range_ok(host, need, l->file->size);
}

/* Stream the block map once, checking every entry (maps of at most
 * VDI_VALIDATE_MAX bytes). */
static int vdi_validate_map(struct vd_layer *l, struct vdi *v,
			    struct vd_err *e)
{
	uint64_t used = (l->size + v->block_size - 1) >> v->block_bits;
	uint64_t bytes = used * 4, done = 0;
	size_t cap = 64u << 10;
	uint8_t *buf;
	int ret = 0;

	if (bytes > VDI_VALIDATE_MAX)
		return 0;
	buf = malloc(cap);
	if (!buf)
		return V_FAIL(-ENOMEM, "out of memory");
	/* Ends: done grows by n > 0 per pass up to bytes. */
	while (done < bytes) {
		size_t n = (size_t)VD_MIN((uint64_t)cap, bytes - done);

		ret = vd_file_pread(l->file, buf, n, v->bmap_off + done);
		if (ret) {
			ret = V_FAIL(ret, "cannot read the block map at 0x%llx",
				     (unsigned long long)(v->bmap_off + done));
			break;
		}
		for (size_t i = 0; i < n; i += 4) {
			uint64_t blk = (done + i) / 4;
			uint32_t ent = get_le32(buf + i);
			uint64_t host = 0;

			if (vdi_entry_ok(l, v, blk, ent, &host))
				continue;
			if (ent >= v->blocks)
				ret = V_FAIL(-EUCLEAN, "block map entry %llu "
					     "is %u, past the %u blocks of the "
					     "image", (unsigned long long)blk,
					     ent, v->blocks);
			else
				ret = V_FAIL(-EUCLEAN, "block map entry %llu "
					     "(block %u at 0x%llx) lies past "
					     "the end of the file (%llu bytes)",
					     (unsigned long long)blk, ent,
					     (unsigned long long)host,
					     (unsigned long long)l->file->size);
			goto out;
		}
		done += n;
	}
out:
	free(buf);
	return ret;
}

/* ------------------------------------------------------------ parent */

/* Read the header of candidate parent path; whether it is a VDI whose
 * uuidCreate is uuid. The child's own file (dev, ino) never is. */
static bool vdi_is_parent(const char *path, const uint8_t *uuid,
			  const struct vd_file *child)
{
	uint8_t h[VDI_HEADER_READ];
	struct stat st;
	bool ok = false;
	int fd;

	/* Only regular files are opened: a device or FIFO named *.vdi is
	 * not touched. */
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    !(st.st_dev == child->dev && st.st_ino == child->ino) &&
	    pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    get_le32(h + VDI_H_SIGNATURE) == VDI_SIGNATURE &&
	    get_le32(h + VDI_H_VERSION) == VDI_VERSION_1_1 &&
	    !memcmp(h + VDI_H_UUID, uuid, 16))
		ok = true;
	close(fd);
	return ok;
}

static int vdi_name_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && !strcasecmp(d->d_name + n - 4, ".vdi");
}

/* Search folder dir (a canonical path) for the parent; its path in
 * *found_r (allocated) if there. 0, or -ENOMEM. */
static int vdi_search_dir(const char *dir, const uint8_t *uuid,
			  const struct vd_file *child, char **found_r)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, vdi_name_filter, alphasort);
	int ret = 0;

	if (n < 0)
		return 0; /* no such folder, or not readable: nothing here */
	/* Ends: at most n names, and at most VDI_MAX_SCAN are opened. */
	for (int i = 0; i < n; i++) {
		char *path;

		if (!*found_r && (unsigned)i < VDI_MAX_SCAN) {
			if (asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "",
				     names[i]->d_name) < 0) {
				ret = -ENOMEM;
			} else if (vdi_is_parent(path, uuid, child)) {
				*found_r = path;
			} else {
				free(path);
			}
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

/* Find the parent of differencing image l by its uuidLinkage, and record
 * it as the layer's backing file (format vdi). */
static int vdi_find_parent(struct vd_layer *l, struct vdi *v,
			   struct vd_err *e)
{
	const char *const *allowed;
	unsigned n_allowed = vd_layer_allowed_dirs(l, &allowed);
	char *dirs[2 + 64] = { NULL }, *tmp, *found = NULL, uuid[37];
	unsigned nd = 0;
	bool up = false; /* dirs[1] is the folder above the child's */
	int ret = 0;

	if (!memcmp(v->uuid_link, v->uuid, 16)) {
		vd_uuid_str(v->uuid, true, uuid);
		return V_FAIL(-ELOOP, "differencing image names itself ({%s}) "
			      "as its parent", uuid);
	}
	/* The child's folder and its parent, canonical. */
	tmp = realpath(l->file->path, NULL);
	if (tmp) {
		char *slash = strrchr(tmp, '/');

		if (slash && slash != tmp) {
			*slash = '\0';
			dirs[nd++] = strdup(tmp);
			slash = strrchr(tmp, '/');
			if (slash) {
				slash[slash == tmp ? 1 : 0] = '\0';
				dirs[nd++] = strdup(tmp);
				up = true;
			}
		}
		free(tmp);
	}
	for (unsigned i = 0; i < n_allowed && nd < VD_ARRAY_SIZE(dirs); i++)
		dirs[nd++] = strdup(allowed[i]);
	/* Ends: nd folders, each scanned once (a repeat is skipped). */
	for (unsigned i = 0; i < nd && !found && !ret; i++) {
		bool seen = false;

		if (!dirs[i]) {
			ret = -ENOMEM;
			break;
		}
		for (unsigned k = 0; k < i; k++)
			if (dirs[k] && !strcmp(dirs[k], dirs[i]))
				seen = true;
		if (seen)
			continue;
		ret = vdi_search_dir(dirs[i], v->uuid_link, l->file, &found);
		if (!ret && found && i == 1 && up)
			ret = vd_layer_allow_dir(l, dirs[1], e) ? -ENOMEM : 0;
	}
	if (ret) {
		ret = V_FAIL(ret, "out of memory");
		goto out;
	}
	vd_uuid_str(v->uuid_link, true, uuid);
	if (!found) {
		ret = V_FAIL(-ENOENT, "parent {%s} not found among the .vdi "
			     "files of %s%s%s and the --backing-dir folders",
			     uuid, nd > 0 && dirs[0] ? dirs[0] : "its folder",
			     nd > 1 && dirs[1] ? " and " : "",
			     nd > 1 && dirs[1] ? dirs[1] : "");
		goto out;
	}
	l->backing_name = found;
	l->backing_format = strdup("vdi");
	if (!l->backing_format)
		ret = V_FAIL(-ENOMEM, "out of memory");
out:
	for (unsigned i = 0; i < nd; i++)
		free(dirs[i]);
	return ret;
}

/* ------------------------------------------------------------ open */

static int vdi_open(struct vd_layer *l, const struct vd_layer_opts *o,
		    struct vd_err *e)
{
	struct vd_file *f = l->file;
	uint8_t h[VDI_HEADER_READ] = { 0 };
	uint64_t disk_size, bmap_bytes;
	uint32_t version, hsize, sector;
	struct vdi *v;
	int ret;

	(void)o;
	if (f->size < VDI_H_UUID_PARENT_MOD + 16)
		return V_FAIL(-EUCLEAN, "file too short for a header (%llu "
			      "bytes)", (unsigned long long)f->size);
	ret = vd_file_pread(f, h, (size_t)VD_MIN(sizeof(h), f->size), 0);
	if (ret)
		return V_FAIL(ret, "cannot read the header");
	if (get_le32(h + VDI_H_SIGNATURE) != VDI_SIGNATURE)
		return V_FAIL(-EUCLEAN, "not a VDI image (signature 0x%08x)",
			      get_le32(h + VDI_H_SIGNATURE));
	version = get_le32(h + VDI_H_VERSION);
	if (version != VDI_VERSION_1_1)
		return V_FAIL(-ENOTSUP, "header version %u.%u is not supported "
			      "(only 1.1, as qemu)", version >> 16,
			      version & 0xffff);
	hsize = get_le32(h + VDI_H_SIZE);
	if (hsize < VDI_HEADER1_SIZE)
		return V_FAIL(-EUCLEAN, "header size %u is smaller than a "
			      "version 1.1 header (%u)", hsize,
			      VDI_HEADER1_SIZE);

	v = calloc(1, sizeof(*v));
	if (!v)
		return V_FAIL(-ENOMEM, "out of memory");
	l->priv = v;
	v->type = get_le32(h + VDI_H_TYPE);
	v->bmap_off = get_le32(h + VDI_H_OFF_BMAP);
	v->data_off = get_le32(h + VDI_H_OFF_DATA);
	sector = get_le32(h + VDI_H_SECTOR);
	disk_size = get_le64(h + VDI_H_DISK_SIZE);
	v->block_size = get_le32(h + VDI_H_BLOCK_SIZE);
	v->block_extra = get_le32(h + VDI_H_BLOCK_EXTRA);
	v->blocks = get_le32(h + VDI_H_BLOCKS);
	memcpy(v->uuid, h + VDI_H_UUID, 16);
	memcpy(v->uuid_modify, h + VDI_H_UUID_MODIFY, 16);
	memcpy(v->uuid_link, h + VDI_H_UUID_LINK, 16);
	memcpy(v->uuid_parent_mod, h + VDI_H_UUID_PARENT_MOD, 16);

	if (v->type != VDI_NORMAL && v->type != VDI_FIXED &&
	    v->type != VDI_DIFF) {
		ret = V_FAIL(-ENOTSUP, "image type %u is not supported (only "
			     "normal, fixed and differencing)%s", v->type,
			     v->type == VDI_UNDO ? ": an undo image" : "");
		goto fail;
	}
	if (sector != 512) {
		ret = V_FAIL(-ENOTSUP, "sector size %u is not supported (only "
			     "512)", sector);
		goto fail;
	}
	if (!vd_is_pow2(v->block_size) || v->block_size < VDI_MIN_BLOCK ||
	    v->block_size > VDI_MAX_BLOCK) {
		ret = V_FAIL(-EUCLEAN, "block size %u is not a power of two "
			     "from %u to %u", v->block_size, VDI_MIN_BLOCK,
			     VDI_MAX_BLOCK);
		goto fail;
	}
	v->block_bits = (unsigned)__builtin_ctz(v->block_size);
	if (v->block_extra > VDI_MAX_EXTRA) {
		ret = V_FAIL(-EUCLEAN, "%u extra bytes per block (at most %u)",
			     v->block_extra, VDI_MAX_EXTRA);
		goto fail;
	}
	if (v->blocks > VDI_MAX_BLOCKS) {
		ret = V_FAIL(-EUCLEAN, "%u blocks (at most %u)", v->blocks,
			     VDI_MAX_BLOCKS);
		goto fail;
	}
	/* As qemu: a size that is not whole sectors (VBoxManage
	 * convertfromraw writes them) is rounded up. */
	if (disk_size > (uint64_t)v->blocks * v->block_size) {
		ret = V_FAIL(-EUCLEAN, "disk size %llu is larger than its %u "
			     "blocks of %u bytes", (unsigned long long)disk_size,
			     v->blocks, v->block_size);
		goto fail;
	}
	l->size = (disk_size + 511) & ~511ULL;
	if (l->size > (uint64_t)v->blocks * v->block_size) {
		ret = V_FAIL(-EUCLEAN, "disk size %llu, rounded up to whole "
			     "sectors, is larger than its %u blocks of %u "
			     "bytes", (unsigned long long)disk_size, v->blocks,
			     v->block_size);
		goto fail;
	}
	bmap_bytes = ((l->size + v->block_size - 1) >> v->block_bits) * 4;
	if (v->bmap_off < VDI_H_UUID_PARENT_MOD + 16 ||
	    !vd_range_ok(v->bmap_off, bmap_bytes, f->size)) {
		ret = V_FAIL(-EUCLEAN, "block map (%llu entries at 0x%llx) "
			     "overlaps the header or lies past the end of the "
			     "file (%llu bytes)",
			     (unsigned long long)(bmap_bytes / 4),
			     (unsigned long long)v->bmap_off,
			     (unsigned long long)f->size);
		goto fail;
	}
	/* Data after the map, as VirtualBox and qemu lay it out: then no
	 * block (checked inside the file) can overlap the header or map. */
	if (v->data_off < v->bmap_off + bmap_bytes) {
		ret = V_FAIL(-EUCLEAN, "data offset 0x%llx lies inside the "
			     "header or the block map (%llu entries at 0x%llx)",
			     (unsigned long long)v->data_off,
			     (unsigned long long)(bmap_bytes / 4),
			     (unsigned long long)v->bmap_off);
		goto fail;
	}
	ret = vdi_validate_map(l, v, e);
	if (ret)
		goto fail;
	if (v->type == VDI_DIFF) {
		if (vdi_uuid_null(v->uuid_link)) {
			ret = V_FAIL(-EUCLEAN, "differencing image with no "
				     "parent UUID");
			goto fail;
		}
		ret = vdi_find_parent(l, v, e);
		if (ret)
			goto fail;
	}
	return 0;
fail:
	vdi_close(l);
	return ret;
}

/* The parent found by UUID must still be the one the child was made
 * over: its modification UUID is the one the child recorded. */
static int vdi_check_backing(struct vd_layer *l, struct vd_err *e)
{
	const struct vdi *v = l->priv, *p;
	char want[37], got[37];

	if (!l->backing || l->backing->fmt != &vd_format_vdi)
		return 0;
	p = l->backing->priv;
	if (vdi_uuid_null(v->uuid_parent_mod) ||
	    !memcmp(v->uuid_parent_mod, p->uuid_modify, 16))
		return 0;
	vd_uuid_str(v->uuid_parent_mod, true, want);
	vd_uuid_str(p->uuid_modify, true, got);
	return V_FAIL(-EUCLEAN, "parent modification UUID {%s} does not "
		      "match the modification UUID {%s} of parent %s (was the "
		      "parent changed after this child was made?); "
		      "--ignore-parent-id mounts it anyway", want, got,
		      l->backing->path);
}

/* ------------------------------------------------------------ map */

static int vdi_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct vd_layer *l = arg;
	struct vdi *v = l->priv;
	uint64_t start = key << VDI_PAGE_BITS;
	uint64_t total = ((l->size + v->block_size - 1) >> v->block_bits) * 4;
	uint64_t n;

	if (start >= total)
		return -EIO;
	n = VD_MIN(size, total - start);
	memset((uint8_t *)buf + n, 0xff, size - n);
	return vd_file_pread(l->file, buf, n, v->bmap_off + start);
}

static int vdi_map(struct vd_layer *l, uint64_t off, uint64_t len,
		   struct vd_run *r)
{
	struct vdi *v = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t blk = off >> v->block_bits, end = off + len, pos;
	uint64_t page = blk / VDI_PER_PAGE;
	struct vd_cache_ref ref;
	bool first = true;
	int ret;

	ret = vd_cache_get(cache, l, page, 1u << VDI_PAGE_BITS, vdi_load, l,
			   &ref);
	if (ret) {
		V_LOG("cannot read the block map at 0x%llx",
		      (unsigned long long)v->bmap_off);
		return -EIO;
	}
	/* One run within this page of the map. */
	end = VD_MIN(end, (page + 1) * VDI_PER_PAGE << v->block_bits);
	r->file = l->file;
	/* Ends: pos moves to the next block boundary (or end) per pass. */
	for (pos = off; pos < end;) {
		uint64_t b = pos >> v->block_bits;
		uint64_t in_blk = pos & (v->block_size - 1);
		uint64_t n = VD_MIN(v->block_size - in_blk, end - pos);
		uint32_t ent = get_le32((const uint8_t *)ref.data +
					(b % VDI_PER_PAGE) * 4);
		enum vd_run_type type;
		uint64_t host = 0;

		if (!vdi_entry_ok(l, v, b, ent, &host)) {
			if (first) {
				V_LOG("block map entry %llu (%u) points past "
				      "the blocks of the image or the end of "
				      "the file (%llu bytes)",
				      (unsigned long long)b, ent,
				      (unsigned long long)l->file->size);
				ret = -EIO;
			}
			break; /* the next map call starts here and fails */
		}
		if (ent == VDI_BLOCK_ZERO)
			type = VD_RUN_ZERO;
		else if (ent == VDI_BLOCK_FREE)
			type = v->type == VDI_DIFF ? VD_RUN_UNALLOC :
						     VD_RUN_ZERO;
		else
			type = VD_RUN_DATA;
		if (first) {
			first = false;
			r->type = type;
			r->len = n;
			r->host_off = host + in_blk;
		} else if (!vd_run_extend(r, type, host, n)) {
			break;
		}
		pos += n;
	}
	vd_cache_put(cache, &ref);
	return ret;
}

static void vdi_describe(const struct vd_layer *l, struct vd_layer_info *i)
{
	const struct vdi *v = l->priv;

	snprintf(i->subformat, sizeof(i->subformat), "%s",
		 v->type == VDI_FIXED ? "static" :
		 v->type == VDI_NORMAL ? "dynamic" : "differencing");
	i->cluster_size = v->block_size;
}

const struct vd_format vd_format_vdi = {
	.name = "vdi",
	.probe = vdi_probe,
	.open = vdi_open,
	.map = vdi_map,
	.check_backing = vdi_check_backing,
	.describe = vdi_describe,
	.close = vdi_close,
};
