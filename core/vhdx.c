/* VHDX (Hyper-V, Windows Server 2012 and later) images, read-only.
 *
 * Offsets below are those of Microsoft's [MS-VHDX], cross-read with
 * QEMU's block/vhdx.c. All fields are little-endian.
 *
 * Layout: the first MiB holds the file type identifier ("vhdxfile"), two
 * headers (64 KiB and 128 KiB; the current one is the valid one with the
 * higher sequence number) and two copies of the region table (192 KiB,
 * 256 KiB), which places the BAT and the metadata region. The metadata
 * region's table lists the items: file parameters (block size, has
 * parent), virtual disk size, logical and physical sector size, page 83
 * data, parent locator. The BAT interleaves payload block entries with
 * one sector bitmap entry per chunk (chunk ratio = 2^23 sectors / block).
 *
 * Payload block states: fully present (read the block), partially present
 * (differencing only: the sector bitmap says, bit per sector, LSB first,
 * whether a sector is here or in the parent), not present (the parent's
 * bytes in a differencing disk, zeros otherwise), zero, unmapped and
 * undefined (zeros, as QEMU reads them).
 *
 * A header whose log GUID is set names a log to replay before anything
 * past the headers can be trusted: vhdx-log.c replays it into memory,
 * and every read of metadata goes through vd_vhdx_pread.
 *
 * vhdx-meta.c reads the metadata items and the parent locator.
 *
 * Opening reads the headers, region tables, metadata and (when set) the
 * log only: BAT pages and sector bitmap pages are read lazily through the
 * disk's bounded metadata cache, so open is O(1) in the virtual size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/vhdx.h"

#define X_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vhdx: " fmt, l->path, ##__VA_ARGS__)
#define X_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: vhdx: " fmt, l->path, ##__VA_ARGS__)

/* [MS-VHDX] 2.2: the header section. */
#define VHDX_HEADER1 (64u << 10)
#define VHDX_HEADER2 (128u << 10)
#define VHDX_REGION1 (192u << 10)
#define VHDX_REGION2 (256u << 10)
#define VHDX_HEADER_SIZE 4096u
#define VHDX_REGION_SIZE (64u << 10)

/* Header ([MS-VHDX] 2.2.2). */
#define H_SIG 0 /* "head" */
#define H_CHECKSUM 4
#define H_SEQ 8
#define H_FILE_WRITE 16
#define H_DATA_WRITE 32
#define H_LOG_GUID 48
#define H_LOG_VERSION 64 /* u16, 0 */
#define H_VERSION 66	 /* u16, 1 */
#define H_LOG_LENGTH 68	 /* u32 */
#define H_LOG_OFFSET 72	 /* u64 */

/* Region table ([MS-VHDX] 2.2.3): 16-byte header, 32-byte entries. */
#define R_SIG 0 /* "regi" */
#define R_CHECKSUM 4
#define R_COUNT 8
#define R_ENTRIES 16
#define R_ENTRY_SIZE 32
#define R_MAX_ENTRIES 2047u
#define RE_GUID 0
#define RE_OFFSET 16
#define RE_LENGTH 24
#define RE_REQUIRED 28

/* BAT entry ([MS-VHDX] 2.5.1). */
#define BAT_STATE_MASK 7u
#define BAT_OFF_MASK 0xfffffffffff00000ULL
enum vhdx_state {
	PAYLOAD_NOT_PRESENT = 0,
	PAYLOAD_UNDEFINED = 1,
	PAYLOAD_ZERO = 2,
	PAYLOAD_UNMAPPED = 3,
	PAYLOAD_FULLY_PRESENT = 6,
	PAYLOAD_PARTIALLY_PRESENT = 7,
	SB_PRESENT = 6,
};


/* Cache keys: BAT pages of 4 KiB (512 entries) by index, tagged; sector
 * bitmap pages of 4 KiB by host offset (< 2^52). */
#define VHDX_BAT_KEY (1ULL << 63)
#define VHDX_PAGE 4096u
#define VHDX_BAT_PER_PAGE (VHDX_PAGE / 8)

static const uint8_t vhdx_bat_guid[16] =
	VHDX_GUID(0x2dc27766u, 0xf623, 0x4200, 0x9d, 0x64, 0x11, 0x5e, 0x9b,
		  0xfd, 0x4a, 0x08);
static const uint8_t vhdx_meta_guid[16] =
	VHDX_GUID(0x8b7ca206u, 0x4790, 0x4b9a, 0xb8, 0xfe, 0x57, 0x5f, 0x05,
		  0x0f, 0x88, 0x6e);

extern const struct vd_format vd_format_vhdx;

static int vhdx_probe(const uint8_t *head, size_t len)
{
	return len >= 8 && !memcmp(head, "vhdxfile", 8) ? 100 : 0;
}

static bool vhdx_zero_guid(const uint8_t *g)
{
	static const uint8_t zero[16];

	return !memcmp(g, zero, 16);
}

/* ------------------------------------------------------------ headers */

static bool vhdx_header_ok(const uint8_t *h)
{
	return !memcmp(h + H_SIG, "head", 4) &&
	       get_le32(h + H_CHECKSUM) ==
		       vd_vhdx_sum(h, VHDX_HEADER_SIZE, H_CHECKSUM) &&
	       get_le16(h + H_VERSION) == 1;
}

static int vhdx_read_headers(struct vd_layer *l, struct vhdx *v,
			     struct vd_err *e)
{
	uint8_t h[2][VHDX_HEADER_SIZE];
	const uint8_t *cur;
	bool ok[2];
	int ret;

	if (l->file->size < VHDX_MIB)
		return X_FAIL(-EUCLEAN, "file too short for the header section "
			      "(%llu bytes, at least 1 MiB)",
			      (unsigned long long)l->file->size);
	ret = vd_file_pread(l->file, h[0], VHDX_HEADER_SIZE, VHDX_HEADER1);
	if (!ret)
		ret = vd_file_pread(l->file, h[1], VHDX_HEADER_SIZE,
				    VHDX_HEADER2);
	if (ret)
		return X_FAIL(ret, "cannot read the headers");
	ok[0] = vhdx_header_ok(h[0]);
	ok[1] = vhdx_header_ok(h[1]);
	if (!ok[0] && !ok[1])
		return X_FAIL(-EUCLEAN, "neither header (at 64 KiB and 128 KiB) "
			      "is valid (signature 'head', CRC-32C, version "
			      "1)");
	if (ok[0] && ok[1])
		cur = get_le64(h[1] + H_SEQ) > get_le64(h[0] + H_SEQ) ? h[1] :
									  h[0];
	else
		cur = ok[0] ? h[0] : h[1];
	v->seq = get_le64(cur + H_SEQ);
	memcpy(v->file_write_guid, cur + H_FILE_WRITE, 16);
	memcpy(v->data_write_guid, cur + H_DATA_WRITE, 16);
	memcpy(v->log_guid, cur + H_LOG_GUID, 16);
	v->log_len = get_le32(cur + H_LOG_LENGTH);
	v->log_off = get_le64(cur + H_LOG_OFFSET);
	v->file_size = l->file->size;
	if (get_le16(cur + H_LOG_VERSION) != 0)
		return X_FAIL(-ENOTSUP, "log version %u is not supported (only "
			      "0)", get_le16(cur + H_LOG_VERSION));
	if (v->log_len &&
	    (v->log_len % VHDX_MIB || v->log_off % VHDX_MIB ||
	     v->log_off < VHDX_MIB ||
	     !vd_range_ok(v->log_off, v->log_len, l->file->size)))
		return X_FAIL(-EUCLEAN, "log (%llu bytes at 0x%llx) is not in "
			      "whole MiB past the header section and inside "
			      "the file (%llu bytes)",
			      (unsigned long long)v->log_len,
			      (unsigned long long)v->log_off,
			      (unsigned long long)l->file->size);
	return 0;
}

/* ------------------------------------------------------------ regions */

/* Whether [a, a + alen) and [b, b + blen) overlap. */
static bool vhdx_overlap(uint64_t a, uint64_t alen, uint64_t b,
			 uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int vhdx_read_regions(struct vd_layer *l, struct vhdx *v,
			     struct vd_err *e)
{
	uint8_t *rt = malloc(VHDX_REGION_SIZE);
	const uint64_t at[2] = { VHDX_REGION1, VHDX_REGION2 };
	bool found = false, have_bat = false, have_meta = false;
	uint32_t n = 0;
	int ret = 0;

	if (!rt)
		return -ENOMEM;
	/* The first copy that is valid. */
	for (int k = 0; k < 2 && !found; k++) {
		ret = vd_vhdx_pread(l, rt, VHDX_REGION_SIZE, at[k]);
		if (ret) {
			ret = X_FAIL(ret, "cannot read region table %d", k + 1);
			goto out;
		}
		n = get_le32(rt + R_COUNT);
		found = !memcmp(rt + R_SIG, "regi", 4) &&
			get_le32(rt + R_CHECKSUM) ==
				vd_vhdx_sum(rt, VHDX_REGION_SIZE, R_CHECKSUM) &&
			n <= R_MAX_ENTRIES;
	}
	if (!found) {
		ret = X_FAIL(-EUCLEAN, "neither region table (at 192 KiB and "
			     "256 KiB) is valid (signature 'regi', CRC-32C, "
			     "at most %u entries)", R_MAX_ENTRIES);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *r = rt + R_ENTRIES + i * R_ENTRY_SIZE;
		uint64_t off = get_le64(r + RE_OFFSET);
		uint64_t len = get_le32(r + RE_LENGTH);
		bool req = get_le32(r + RE_REQUIRED) & 1;
		bool bat = !memcmp(r + RE_GUID, vhdx_bat_guid, 16);
		bool meta = !memcmp(r + RE_GUID, vhdx_meta_guid, 16);
		char g[40];

		if (!bat && !meta) {
			if (!req)
				continue;
			vd_uuid_str(r + RE_GUID, true, g);
			ret = X_FAIL(-ENOTSUP, "region %s is required but not "
				     "known", g);
			goto out;
		}
		if ((bat && have_bat) || (meta && have_meta)) {
			ret = X_FAIL(-EUCLEAN, "region table lists the %s "
				     "region twice", bat ? "BAT" : "metadata");
			goto out;
		}
		if (!len || off % VHDX_MIB || len % VHDX_MIB ||
		    off < VHDX_MIB ||
		    !vd_range_ok(off, len, v->file_size)) {
			ret = X_FAIL(-EUCLEAN, "%s region (%llu bytes at 0x%llx) "
				     "is not in whole MiB past the header "
				     "section and inside the file (%llu "
				     "bytes)", bat ? "BAT" : "metadata",
				     (unsigned long long)len,
				     (unsigned long long)off,
				     (unsigned long long)v->file_size);
			goto out;
		}
		if (vhdx_overlap(off, len, v->log_off, v->log_len)) {
			ret = X_FAIL(-EUCLEAN, "%s region (%llu bytes at 0x%llx) "
				     "overlaps the log",
				     bat ? "BAT" : "metadata",
				     (unsigned long long)len,
				     (unsigned long long)off);
			goto out;
		}
		if (bat) {
			v->bat_off = off;
			v->bat_len = len;
			have_bat = true;
		} else {
			v->meta_off = off;
			v->meta_len = len;
			have_meta = true;
		}
	}
	if (!have_bat || !have_meta) {
		ret = X_FAIL(-EUCLEAN, "region table has no %s region",
			     have_bat ? "metadata" : "BAT");
		goto out;
	}
	if (vhdx_overlap(v->bat_off, v->bat_len, v->meta_off, v->meta_len)) {
		ret = X_FAIL(-EUCLEAN, "BAT region (0x%llx) and metadata region "
			     "(0x%llx) overlap", (unsigned long long)v->bat_off,
			     (unsigned long long)v->meta_off);
		goto out;
	}
out:
	free(rt);
	return ret;
}

/* ------------------------------------------------------------ open */

static void vhdx_close(struct vd_layer *l)
{
	struct vhdx *v = l->priv;

	if (!v)
		return;
	vd_vhdx_log_free(v);
	free(v);
	l->priv = NULL;
}

static int vhdx_open(struct vd_layer *l, const struct vd_layer_opts *o,
		     struct vd_err *e)
{
	uint8_t sig[8];
	struct vhdx *v;
	int ret;

	(void)o;
	if (l->file->size < 8 || vd_file_pread(l->file, sig, 8, 0) ||
	    memcmp(sig, "vhdxfile", 8))
		return X_FAIL(-EUCLEAN, "not a VHDX image (no 'vhdxfile' "
			      "signature at offset 0)");
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->priv = v;
	ret = vhdx_read_headers(l, v, e);
	if (!ret && !vhdx_zero_guid(v->log_guid))
		ret = vd_vhdx_log_replay(l, v, e);
	if (!ret)
		ret = vhdx_read_regions(l, v, e);
	if (!ret)
		ret = vd_vhdx_read_metadata(l, v, e);
	if (ret)
		vhdx_close(l);
	return ret;
}

static int vhdx_check_backing(struct vd_layer *l, struct vd_err *e)
{
	const struct vhdx *v = l->priv, *p;
	char got[40];

	if (!l->backing || l->backing->fmt != &vd_format_vhdx)
		return 0;
	p = l->backing->priv;
	vd_uuid_str(p->data_write_guid, true, got);
	if (!strcmp(got, v->linkage) ||
	    (v->linkage2[0] && !strcmp(got, v->linkage2)))
		return 0;
	return X_FAIL(-EUCLEAN, "parent linkage {%s} does not match the data "
		      "write GUID {%s} of parent %s; --ignore-parent-id mounts "
		      "it anyway", v->linkage, got, l->backing->path);
}

/* ------------------------------------------------------------ map */

static int vhdx_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct vd_layer *l = arg;
	struct vhdx *v = l->priv;

	if (key & VHDX_BAT_KEY) {
		uint64_t start = (key & ~VHDX_BAT_KEY) * VHDX_PAGE;

		if (start >= v->bat_len)
			return -EIO;
		/* bat_len is whole MiB: every page is whole. */
		return vd_vhdx_pread(l, buf, size, v->bat_off + start);
	}
	return vd_vhdx_pread(l, buf, size, key);
}

static int vhdx_bat_entry(struct vd_layer *l, uint64_t idx, uint64_t *ent_r)
{
	struct vhdx *v = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	struct vd_cache_ref ref;
	int ret;

	ret = vd_cache_get(cache, l, VHDX_BAT_KEY | (idx / VHDX_BAT_PER_PAGE),
			   VHDX_PAGE, vhdx_load, l, &ref);
	if (ret) {
		X_LOG("cannot read the BAT at 0x%llx",
		      (unsigned long long)v->bat_off);
		return -EIO;
	}
	*ent_r = get_le64((const uint8_t *)ref.data +
			  (idx % VHDX_BAT_PER_PAGE) * 8);
	vd_cache_put(cache, &ref);
	return 0;
}

/* Whether a block of len bytes at off (from a BAT entry) lies in the
 * file, past the header section, clear of the BAT, metadata and log. */
static bool vhdx_block_ok(const struct vhdx *v, uint64_t off, uint64_t len)
{
	return off >= VHDX_MIB && vd_range_ok(off, len, v->file_size) &&
	       !vhdx_overlap(off, len, v->bat_off, v->bat_len) &&
	       !vhdx_overlap(off, len, v->meta_off, v->meta_len) &&
	       !vhdx_overlap(off, len, v->log_off, v->log_len);
}

/* Host run: n bytes of the file (as the log leaves it) at h, holding
 * guest bytes. A replayed range becomes a run of the memory file (or
 * zeros), a range past the host file zeros; otherwise the host file up to
 * the next replayed range. */
static void vhdx_host_run(struct vd_layer *l, uint64_t h, uint64_t n,
			  struct vd_run *r)
{
	struct vhdx *v = l->priv;
	const struct vhdx_ext *x = vd_vhdx_ovl_find(v, h);

	r->file = l->file;
	r->host_off = h;
	r->len = n;
	if (x && x->off <= h) {
		r->len = VD_MIN(n, x->off + x->len - h);
		if (x->mem < 0) {
			r->type = VD_RUN_ZERO;
		} else {
			r->type = VD_RUN_DATA;
			r->file = v->ovl_file;
			r->host_off = (uint64_t)x->mem + (h - x->off);
		}
		return;
	}
	if (x && x->off < h + n)
		r->len = x->off - h;
	if (h >= l->file->size) {
		r->type = VD_RUN_ZERO;
		return;
	}
	r->len = VD_MIN(r->len, l->file->size - h);
	r->type = VD_RUN_DATA;
}

/* Bit i of a sector bitmap: least significant bit first ([MS-VHDX]
 * 2.4.2). */
static bool vhdx_bit(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

/* In a partially present block: the run from off (before end) of sectors
 * all here (their host offset at host) or all in the parent, as the
 * sector bitmap page covering off says. */
static int vhdx_map_partial(struct vd_layer *l, uint64_t blk, uint64_t off,
			    uint64_t end, uint64_t host, struct vd_run *r)
{
	struct vhdx *v = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t chunk = blk / v->chunk_ratio, sb, sb_off;
	uint64_t sec = off / v->lss, first, bit, last, s;
	struct vd_cache_ref ref;
	const uint8_t *bm;
	bool here;
	int ret;

	ret = vhdx_bat_entry(l, chunk * (v->chunk_ratio + 1) + v->chunk_ratio,
			     &sb);
	if (ret)
		return ret;
	sb_off = sb & BAT_OFF_MASK;
	if ((sb & BAT_STATE_MASK) != SB_PRESENT ||
	    !vhdx_block_ok(v, sb_off, VHDX_MIB)) {
		X_LOG("block %llu is partially present, but its sector bitmap "
		      "(BAT entry 0x%llx) is not present in the file",
		      (unsigned long long)blk, (unsigned long long)sb);
		return -EIO;
	}
	/* Bit of sector sec within the chunk's bitmap, and the 4 KiB page
	 * (32768 sectors) that holds it. */
	bit = sec - chunk * VHDX_SB_SECTORS;
	first = bit / (VHDX_PAGE * 8) * (VHDX_PAGE * 8);
	ret = vd_cache_get(cache, l, sb_off + first / 8, VHDX_PAGE, vhdx_load,
			   l, &ref);
	if (ret) {
		X_LOG("cannot read the sector bitmap of block %llu at 0x%llx",
		      (unsigned long long)blk, (unsigned long long)sb_off);
		return -EIO;
	}
	bm = ref.data;
	last = VD_MIN(first + VHDX_PAGE * 8,
		      (end + v->lss - 1) / v->lss - chunk * VHDX_SB_SECTORS);
	here = vhdx_bit(bm, bit - first);
	/* Ends: s grows to last, at most 32768 sectors on. */
	for (s = bit + 1; s < last && vhdx_bit(bm, s - first) == here; s++)
		;
	vd_cache_put(cache, &ref);
	end = VD_MIN(end, (chunk * VHDX_SB_SECTORS + s) * v->lss);
	if (!here) {
		r->type = VD_RUN_UNALLOC;
		r->len = end - off;
		return 0;
	}
	vhdx_host_run(l, host, end - off, r);
	return 0;
}

static int vhdx_map(struct vd_layer *l, uint64_t off, uint64_t len,
		    struct vd_run *r)
{
	struct vhdx *v = l->priv;
	uint64_t blk = off >> v->block_bits, ent, host;
	uint64_t end = VD_MIN(off + len, (blk + 1) << v->block_bits);
	int ret;

	r->file = l->file;
	r->len = end - off;
	ret = vhdx_bat_entry(l, blk + blk / v->chunk_ratio, &ent);
	if (ret)
		return ret;
	switch (ent & BAT_STATE_MASK) {
	case PAYLOAD_NOT_PRESENT:
		r->type = v->has_parent ? VD_RUN_UNALLOC : VD_RUN_ZERO;
		return 0;
	case PAYLOAD_UNDEFINED:
	case PAYLOAD_ZERO:
	case PAYLOAD_UNMAPPED:
		r->type = VD_RUN_ZERO;
		return 0;
	case PAYLOAD_FULLY_PRESENT:
	case PAYLOAD_PARTIALLY_PRESENT:
		break;
	default:
		X_LOG("BAT entry of block %llu has reserved state %u",
		      (unsigned long long)blk,
		      (unsigned)(ent & BAT_STATE_MASK));
		return -EIO;
	}
	if (!vhdx_block_ok(v, ent & BAT_OFF_MASK, v->block_size)) {
		X_LOG("block %llu at 0x%llx (%u bytes) lies past the end of "
		      "the file (%llu bytes) or on the header section, BAT, "
		      "metadata or log", (unsigned long long)blk,
		      (unsigned long long)(ent & BAT_OFF_MASK), v->block_size,
		      (unsigned long long)v->file_size);
		return -EIO;
	}
	host = (ent & BAT_OFF_MASK) + (off - (blk << v->block_bits));
	if ((ent & BAT_STATE_MASK) == PAYLOAD_FULLY_PRESENT) {
		vhdx_host_run(l, host, end - off, r);
		return 0;
	}
	if (!v->has_parent) {
		X_LOG("block %llu is partially present in a disk without a "
		      "parent", (unsigned long long)blk);
		return -EIO;
	}
	return vhdx_map_partial(l, blk, off, end, host, r);
}

static void vhdx_describe(const struct vd_layer *l, struct vd_layer_info *i)
{
	const struct vhdx *v = l->priv;

	snprintf(i->subformat, sizeof(i->subformat), "%s",
		 v->has_parent ? "differencing" :
		 v->leave_allocated ? "fixed" : "dynamic");
	i->cluster_size = v->block_size;
}

const struct vd_format vd_format_vhdx = {
	.name = "vhdx",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.map = vhdx_map,
	.check_backing = vhdx_check_backing,
	.describe = vhdx_describe,
	.close = vhdx_close,
};
