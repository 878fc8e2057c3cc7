/* vmdk, read-only: the map from guest offsets to runs.
 *
 * Guest offset -> extent (binary search over the extents, which lie end
 * to end) -> for a sparse extent: grain directory entry -> grain table
 * -> grain table entry (the grain's sector in the extent file; 0: not
 * allocated here, read the parent; 1 with the zeroed-grain flag: zeros).
 *
 * Grain directory pages and grain tables come through the disk's bounded
 * cache, owned by the extent; a grain table is pinned only while one map
 * call walks it. One call returns the longest run it can see within one
 * grain table (or across empty directory entries), so a sequential read
 * costs one map per grain table rather than one per grain.
 *
 * A grain table that lies past the end of its file is looked up in the
 * redundant grain directory when the extent has one (with a warning,
 * once); otherwise, like any table or grain offset that does not fit its
 * file, it fails that read with EIO and a log line, not the mount. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "core/vmdk.h"

#define M_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: vmdk: " fmt, x->file->path, ##__VA_ARGS__)

/* Cache keys, per extent: grain tables by byte offset (< 2^41, sectors
 * are 32-bit); grain directory pages of 4 KiB by index, tagged. */
#define VMDK_GD_KEY (1ULL << 63)
#define VMDK_RGD_KEY (1ULL << 62)
#define VMDK_GD_PAGE_BITS 12
#define VMDK_GD_PER_PAGE (1u << (VMDK_GD_PAGE_BITS - 2))

static int vmdk_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct vmdk_extent *x = arg;

	if (key & VMDK_GD_KEY) {
		uint64_t gd = key & VMDK_RGD_KEY ? x->sp.rgd_off : x->sp.gd_off;
		uint64_t page = key & ~(VMDK_GD_KEY | VMDK_RGD_KEY);
		uint64_t start = page << VMDK_GD_PAGE_BITS;
		uint64_t total = (uint64_t)x->sp.gd_entries *
				 (x->sp.se ? 8 : 4), n;

		if (start >= total)
			return -EIO;
		/* The last page may be partial: no grain tables after it. */
		n = VD_MIN(size, total - start);
		memset((uint8_t *)buf + n, 0, size - n);
		return vd_file_pread(x->file, buf, n, gd + start);
	}
	return vd_file_pread(x->file, buf, size, key);
}

/* The grain table offset (bytes) in entry idx of the primary or
 * redundant grain directory; with *upto_r (if not NULL) the first entry
 * after idx, within the same page, that is not 0. */
static int vmdk_gde(struct vd_layer *l, struct vmdk_extent *x, uint64_t idx,
		    bool redundant, uint64_t *gt_r, uint64_t *upto_r)
{
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t key = VMDK_GD_KEY | (redundant ? VMDK_RGD_KEY : 0) |
		       idx / VMDK_GD_PER_PAGE;
	struct vd_cache_ref ref;
	const uint8_t *page;
	int ret;

	ret = vd_cache_get(cache, x, key, 1u << VMDK_GD_PAGE_BITS, vmdk_load,
			   x, &ref);
	if (ret) {
		M_LOG("cannot read the %sgrain directory at 0x%llx",
		      redundant ? "redundant " : "",
		      (unsigned long long)(redundant ? x->sp.rgd_off :
						       x->sp.gd_off));
		return -EIO;
	}
	page = ref.data;
	*gt_r = (uint64_t)get_le32(page + (idx % VMDK_GD_PER_PAGE) * 4) *
		VMDK_SECTOR;
	if (upto_r) {
		uint64_t j = idx + 1;

		/* Ends: j stops at the page end or the directory end. */
		while (j < x->sp.gd_entries && j % VMDK_GD_PER_PAGE &&
		       !get_le32(page + (j % VMDK_GD_PER_PAGE) * 4))
			j++;
		*upto_r = j;
	}
	vd_cache_put(cache, &ref);
	return 0;
}

/* One grain table entry, classified. */
struct vmdk_grain {
	enum vd_run_type type;
	uint64_t host; /* DATA, COMPRESSED: the grain's byte offset */
};

/* 0 when grain g, if stored plainly, holds the n bytes at in_grain that
 * extent offset pos asks for inside the file; else -EIO with a line. */
static int vmdk_data_in_file(const struct vmdk_extent *x,
			     const struct vmdk_grain *g, uint64_t in_grain,
			     uint64_t n, uint64_t pos)
{
	if (g->type != VD_RUN_DATA ||
	    vd_range_ok(g->host + in_grain, n, x->file->size))
		return 0;
	M_LOG("grain at 0x%llx for guest offset 0x%llx runs past the end of "
	      "the file (%llu bytes)", (unsigned long long)g->host,
	      (unsigned long long)(x->start + pos),
	      (unsigned long long)x->file->size);
	return -EIO;
}

static int vmdk_classify(struct vmdk_extent *x, uint32_t gte, uint64_t guest,
			 struct vmdk_grain *g)
{
	if (!gte) {
		g->type = VD_RUN_UNALLOC;
		return 0;
	}
	if (gte == VMDK_GTE_ZERO && x->sp.zero_grain) {
		g->type = VD_RUN_ZERO;
		return 0;
	}
	g->host = (uint64_t)gte * VMDK_SECTOR;
	g->type = x->sp.compressed ? VD_RUN_COMPRESSED : VD_RUN_DATA;
	if (g->host >= x->file->size) {
		M_LOG("grain at 0x%llx for guest offset 0x%llx lies past the "
		      "end of the file (%llu bytes)",
		      (unsigned long long)g->host, (unsigned long long)guest,
		      (unsigned long long)x->file->size);
		return -EIO;
	}
	return 0;
}

static int vmdk_map_sparse(struct vd_layer *l, struct vmdk_extent *x,
			   uint64_t off, uint64_t len, struct vd_run *r)
{
	const struct vmdk_sparse *sp = &x->sp;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t span = sp->grain * sp->gtes, gd_idx = off / span;
	uint64_t gt, upto, end = off + len, pos, gt_bytes = sp->gtes * 4ULL;
	struct vd_cache_ref ref;
	bool first = true;
	int ret;

	if (gd_idx >= sp->gd_entries) {
		/* Checked at open not to happen. */
		M_LOG("guest offset 0x%llx is past the grain directory",
		      (unsigned long long)(x->start + off));
		return -EIO;
	}
	ret = vmdk_gde(l, x, gd_idx, false, &gt, &upto);
	if (ret)
		return ret;
	if (!gt) {
		/* No grain table: not allocated up to the next entry that
		 * has one (within this page, which is cached already). */
		r->type = VD_RUN_UNALLOC;
		r->len = VD_MIN(end, upto * span) - off;
		return 0;
	}
	if (!vd_range_ok(gt, gt_bytes, x->file->size)) {
		uint64_t rgt = 0;

		if (sp->rgd_off && !vmdk_gde(l, x, gd_idx, true, &rgt, NULL) &&
		    rgt && vd_range_ok(rgt, gt_bytes, x->file->size)) {
			if (!atomic_exchange(&x->warned_rgd, true))
				vd_log(VD_LOG_WARN, "%s: vmdk: grain table at "
				       "0x%llx (grain directory entry %llu) "
				       "lies past the end of the file; using "
				       "the redundant grain directory",
				       x->file->path, (unsigned long long)gt,
				       (unsigned long long)gd_idx);
			gt = rgt;
		} else {
			M_LOG("grain table at 0x%llx (grain directory entry "
			      "%llu) lies past the end of the file (%llu "
			      "bytes)", (unsigned long long)gt,
			      (unsigned long long)gd_idx,
			      (unsigned long long)x->file->size);
			return -EIO;
		}
	}
	ret = vd_cache_get(cache, x, gt, gt_bytes, vmdk_load, x, &ref);
	if (ret) {
		M_LOG("cannot read the grain table at 0x%llx",
		      (unsigned long long)gt);
		return -EIO;
	}

	end = VD_MIN(end, (gd_idx + 1) * span);
	/* Ends: pos grows by at least one byte per pass up to end. */
	for (pos = off; pos < end;) {
		uint64_t gidx = (pos >> sp->grain_bits) % sp->gtes;
		uint64_t in_grain = pos & (sp->grain - 1), n;
		uint32_t gte = get_le32((const uint8_t *)ref.data + gidx * 4);
		struct vmdk_grain g;

		n = VD_MIN(sp->grain - in_grain, end - pos);
		ret = vmdk_classify(x, gte, x->start + pos, &g);
		if (!ret)
			ret = vmdk_data_in_file(x, &g, in_grain, n, pos);
		if (ret) {
			/* A bad entry after the first ends the run; the
			 * next map call starts there and fails the read. */
			if (!first)
				ret = 0;
			break;
		}
		if (first) {
			first = false;
			r->type = g.type;
			r->len = n;
			r->file = x->file;
			if (g.type == VD_RUN_DATA) {
				r->host_off = g.host + in_grain;
			} else if (g.type == VD_RUN_COMPRESSED) {
				uint64_t gstart = pos - in_grain;

				/* The zlib stream follows the grain marker
				 * (lba, size); it ends itself, so twice the
				 * grain (as qemu reads) bounds its length. */
				r->host_off = g.host + (sp->markers ?
					      VMDK_GRAIN_MARKER_BYTES : 0);
				r->comp_len = 2 * sp->grain;
				/* The last grain of an extent may hold only
				 * the bytes up to its end. */
				r->unit_size = (uint32_t)VD_MIN(sp->grain,
							x->size - gstart);
				r->unit_off = (uint32_t)in_grain;
				break; /* one compressed grain per run */
			}
		} else if (!vd_run_extend(r, g.type, g.host + in_grain, n)) {
			break;
		}
		pos += n;
	}
	vd_cache_put(cache, &ref);
	return ret;
}

/* ------------------------------------------------------------ seSparse */

#define VMDK_SE_GD_PER_PAGE (1u << (VMDK_GD_PAGE_BITS - 3))
#define VMDK_SE_GT_BYTES (VMDK_SE_GTES * 8u)

/* The byte offset of the grain table of seSparse directory entry idx (0:
 * none), checked against the file; with *upto_r the first entry after
 * idx, within the same page, that is not 0. */
static int vmdk_se_gde(struct vd_layer *l, struct vmdk_extent *x,
		       uint64_t idx, uint64_t *gt_r, uint64_t *upto_r)
{
	struct vd_cache *cache = vd_layer_cache(l);
	struct vd_cache_ref ref;
	const uint8_t *page;
	uint64_t ent, j;
	int ret;

	ret = vd_cache_get(cache, x, VMDK_GD_KEY | idx / VMDK_SE_GD_PER_PAGE,
			   1u << VMDK_GD_PAGE_BITS, vmdk_load, x, &ref);
	if (ret) {
		M_LOG("cannot read the grain directory at 0x%llx",
		      (unsigned long long)x->sp.gd_off);
		return -EIO;
	}
	page = ref.data;
	ent = get_le64(page + (idx % VMDK_SE_GD_PER_PAGE) * 8);
	/* Ends: j stops at the page end or the directory end. */
	for (j = idx + 1; j < x->sp.gd_entries && j % VMDK_SE_GD_PER_PAGE &&
			  !get_le64(page + (j % VMDK_SE_GD_PER_PAGE) * 8);
	     j++)
		;
	*upto_r = j;
	vd_cache_put(cache, &ref);
	*gt_r = 0;
	if (!ent)
		return 0;
	/* QEMU's strict check: the top 32 bits say "allocated" and nothing
	 * else (64 TiB of 16 MiB tables need no more than 32 bits). */
	if (ent >> 32 != 0x10000000u) {
		M_LOG("grain directory entry %llu is 0x%016llx (not a grain "
		      "table)", (unsigned long long)idx,
		      (unsigned long long)ent);
		return -EIO;
	}
	*gt_r = x->sp.se_gt_off + (ent & 0xffffffffu) * VMDK_SE_GT_BYTES;
	if (!vd_range_ok(*gt_r, VMDK_SE_GT_BYTES, x->file->size)) {
		M_LOG("grain table %llu (directory entry %llu) at 0x%llx lies "
		      "past the end of the file (%llu bytes)",
		      (unsigned long long)(ent & 0xffffffffu),
		      (unsigned long long)idx, (unsigned long long)*gt_r,
		      (unsigned long long)x->file->size);
		return -EIO;
	}
	return 0;
}

/* One seSparse grain table entry, classified (vmdk.h). */
static int vmdk_se_classify(struct vmdk_extent *x, uint64_t gte,
			    uint64_t guest, struct vmdk_grain *g)
{
	uint64_t grain;

	switch (gte >> 60) {
	case 0:
		if (gte)
			break;
		g->type = VD_RUN_UNALLOC;
		return 0;
	case 1: /* unmapped */
	case 2: /* zeroed */
		g->type = VD_RUN_ZERO;
		return 0;
	case 3:
		grain = (gte >> 48 & 0xfff) | (gte & 0xffffffffffffULL) << 12;
		g->type = VD_RUN_DATA;
		/* grain < 2^60: the product fits when the check passes. */
		if (grain <= (x->file->size - x->sp.se_grains_off) >>
				     x->sp.grain_bits) {
			g->host = x->sp.se_grains_off +
				  (grain << x->sp.grain_bits);
			return 0;
		}
		M_LOG("grain %llu for guest offset 0x%llx lies past the end of "
		      "the file (%llu bytes)", (unsigned long long)grain,
		      (unsigned long long)guest,
		      (unsigned long long)x->file->size);
		return -EIO;
	}
	M_LOG("grain table entry 0x%016llx for guest offset 0x%llx is not "
	      "one seSparse defines", (unsigned long long)gte,
	      (unsigned long long)guest);
	return -EIO;
}

static int vmdk_map_se(struct vd_layer *l, struct vmdk_extent *x,
		       uint64_t off, uint64_t len, struct vd_run *r)
{
	const struct vmdk_sparse *sp = &x->sp;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t span = sp->grain * sp->gtes, gd_idx = off / span;
	uint64_t gt, upto, end = off + len, pos;
	struct vd_cache_ref ref;
	bool first = true;
	int ret;

	if (gd_idx >= sp->gd_entries) {
		M_LOG("guest offset 0x%llx is past the grain directory",
		      (unsigned long long)(x->start + off));
		return -EIO;
	}
	ret = vmdk_se_gde(l, x, gd_idx, &gt, &upto);
	if (ret)
		return ret;
	if (!gt) {
		r->type = VD_RUN_UNALLOC;
		r->len = VD_MIN(end, upto * span) - off;
		return 0;
	}
	ret = vd_cache_get(cache, x, gt, VMDK_SE_GT_BYTES, vmdk_load, x, &ref);
	if (ret) {
		M_LOG("cannot read the grain table at 0x%llx",
		      (unsigned long long)gt);
		return -EIO;
	}
	end = VD_MIN(end, (gd_idx + 1) * span);
	/* Ends: pos grows by at least one byte per pass up to end. */
	for (pos = off; pos < end;) {
		uint64_t gidx = (pos >> sp->grain_bits) % sp->gtes;
		uint64_t in_grain = pos & (sp->grain - 1), n;
		uint64_t gte = get_le64((const uint8_t *)ref.data + gidx * 8);
		struct vmdk_grain g = { .host = 0 };

		n = VD_MIN(sp->grain - in_grain, end - pos);
		ret = vmdk_se_classify(x, gte, x->start + pos, &g);
		if (!ret)
			ret = vmdk_data_in_file(x, &g, in_grain, n, pos);
		if (ret) {
			if (!first)
				ret = 0;
			break;
		}
		if (first) {
			first = false;
			r->type = g.type;
			r->len = n;
			r->file = x->file;
			r->host_off = g.host + in_grain;
		} else if (!vd_run_extend(r, g.type, g.host + in_grain, n)) {
			break;
		}
		pos += n;
	}
	vd_cache_put(cache, &ref);
	return ret;
}

/* A flat extent: data, except where its file has holes, which read as
 * zeros without I/O and show as holes to SEEK_HOLE. */
static void vmdk_map_flat(struct vmdk_extent *x, uint64_t off, uint64_t len,
			  struct vd_run *r)
{
	struct vd_file *f = x->file;
	off_t pos = (off_t)(f->base + x->flat_off + off), next;

	r->type = VD_RUN_DATA;
	r->file = f;
	r->host_off = x->flat_off + off;
	r->len = len;
	next = lseek(f->fd, pos, SEEK_DATA);
	if (next < 0) {
		/* ENXIO: a hole up to the end of the file; anything else:
		 * the host cannot tell, so it is all data. */
		if (errno == ENXIO)
			r->type = VD_RUN_ZERO;
		return;
	}
	if (next > pos) {
		r->type = VD_RUN_ZERO;
		r->len = VD_MIN(len, (uint64_t)(next - pos));
		return;
	}
	next = lseek(f->fd, pos, SEEK_HOLE);
	if (next > pos)
		r->len = VD_MIN(len, (uint64_t)(next - pos));
}

int vmdk_map(struct vd_layer *l, uint64_t off, uint64_t len,
	     struct vd_run *r)
{
	struct vmdk *v = l->priv;
	unsigned lo = 0, hi = v->n_ext;
	struct vmdk_extent *x;
	uint64_t rel, n;

	/* The last extent starting at or before off. Ends: hi - lo halves. */
	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;

		if (v->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	x = &v->ext[lo];
	rel = off - x->start;
	if (rel >= x->size) {
		vd_log(VD_LOG_ERR, "%s: vmdk: no extent at 0x%llx", l->path,
		       (unsigned long long)off);
		return -EIO;
	}
	n = VD_MIN(len, x->size - rel);
	switch (x->type) {
	case VMDK_EXT_ZERO:
		r->type = VD_RUN_ZERO;
		r->len = n;
		return 0;
	case VMDK_EXT_FLAT:
		vmdk_map_flat(x, rel, n, r);
		return 0;
	default:
		if (x->sp.se)
			return vmdk_map_se(l, x, rel, n, r);
		return vmdk_map_sparse(l, x, rel, n, r);
	}
}
