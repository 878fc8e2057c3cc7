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
#define VHDX_META_TABLE_SIZE (64u << 10)

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

/* Metadata table ([MS-VHDX] 2.6.1): 32-byte header and entries. */
#define M_SIG 0 /* "metadata" */
#define M_COUNT 10
#define M_ENTRIES 32
#define M_ENTRY_SIZE 32
#define M_MAX_ENTRIES 2047u
#define ME_GUID 0
#define ME_OFFSET 16
#define ME_LENGTH 20
#define ME_FLAGS 24
#define ME_IS_REQUIRED 4u

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

/* [MS-VHDX] 2.6.2.2: at most 64 TiB. */
#define VHDX_MAX_SIZE (64ULL << 40)
/* One sector bitmap block covers 2^23 sectors. */
#define VHDX_SB_SECTORS (1ULL << 23)

/* Cache keys: BAT pages of 4 KiB (512 entries) by index, tagged; sector
 * bitmap pages of 4 KiB by host offset (< 2^52). */
#define VHDX_BAT_KEY (1ULL << 63)
#define VHDX_PAGE 4096u
#define VHDX_BAT_PER_PAGE (VHDX_PAGE / 8)

/* GUIDs as stored: the first three fields little-endian. */
#define G(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                         \
	{ (a) & 0xff, (a) >> 8 & 0xff, (a) >> 16 & 0xff, (a) >> 24 & 0xff,  \
	  (b) & 0xff, (b) >> 8 & 0xff, (c) & 0xff, (c) >> 8 & 0xff,          \
	  d0, d1, d2, d3, d4, d5, d6, d7 }
static const uint8_t vhdx_bat_guid[16] =
	G(0x2dc27766u, 0xf623, 0x4200, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd,
	  0x4a, 0x08);
static const uint8_t vhdx_meta_guid[16] =
	G(0x8b7ca206u, 0x4790, 0x4b9a, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f,
	  0x88, 0x6e);
static const uint8_t vhdx_fparams_guid[16] =
	G(0xcaa16737u, 0xfa36, 0x4d43, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44,
	  0xe7, 0x6b);
static const uint8_t vhdx_vsize_guid[16] =
	G(0x2fa54224u, 0xcd1b, 0x4876, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b,
	  0xf4, 0xb8);
static const uint8_t vhdx_page83_guid[16] =
	G(0xbeca12abu, 0xb2e6, 0x4523, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00,
	  0xc7, 0x46);
static const uint8_t vhdx_lss_guid[16] =
	G(0x8141bf1du, 0xa96f, 0x4709, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa,
	  0xab, 0x5f);
static const uint8_t vhdx_pss_guid[16] =
	G(0xcda348c7u, 0x445d, 0x4471, 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51,
	  0xc5, 0x56);
static const uint8_t vhdx_locator_guid[16] =
	G(0xa8d35f2du, 0xb30b, 0x454d, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34,
	  0xab, 0x0c);
/* [MS-VHDX] 2.6.2.6.1: the VHDX parent locator type. */
static const uint8_t vhdx_loctype_guid[16] =
	G(0xb04aefb7u, 0xd19e, 0x4a81, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44,
	  0x59, 0x13);

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

/* ------------------------------------------------------------ metadata */

/* UTF-16LE (n bytes) to new UTF-8, to the first NUL; NULL when not valid
 * or out of memory. */
static char *vhdx_utf16(const uint8_t *p, size_t n)
{
	char *out = malloc(n / 2 * 3 + 1), *o = out;

	if (!out)
		return NULL;
	/* Ends: i grows by one or two units per pass up to n / 2. */
	for (size_t i = 0; i < n / 2; i++) {
		uint32_t c = get_le16(p + 2 * i);

		if (!c)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < n / 2 &&
		    get_le16(p + 2 * i + 2) >= 0xdc00 &&
		    get_le16(p + 2 * i + 2) < 0xe000) {
			c = 0x10000 + ((c - 0xd800) << 10) +
			    (get_le16(p + 2 * i + 2) - 0xdc00u);
			i++;
		} else if (c >= 0xd800 && c < 0xe000) {
			free(out);
			return NULL;
		}
		if (c < 0x80) {
			*o++ = (char)c;
		} else if (c < 0x800) {
			*o++ = (char)(0xc0 | c >> 6);
			*o++ = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			*o++ = (char)(0xe0 | c >> 12);
			*o++ = (char)(0x80 | (c >> 6 & 0x3f));
			*o++ = (char)(0x80 | (c & 0x3f));
		} else {
			*o++ = (char)(0xf0 | c >> 18);
			*o++ = (char)(0x80 | (c >> 12 & 0x3f));
			*o++ = (char)(0x80 | (c >> 6 & 0x3f));
			*o++ = (char)(0x80 | (c & 0x3f));
		}
	}
	*o = '\0';
	return out;
}

/* A Windows path from a locator to the name we look for: separators to
 * '/'; a relative path as it is, less leading "./"; an absolute one
 * (drive letter, "\\?\Volume{..}\..." or a leading separator) by its last
 * component, beside the child, as for VHD parents. NULL when it holds a
 * control character or nothing. In place. */
static char *vhdx_windows_path(char *s, bool absolute)
{
	char *last;

	for (char *c = s; *c; c++) {
		if (*c == '\\')
			*c = '/';
		else if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return NULL;
	}
	if (absolute) {
		last = strrchr(s, '/');
		if (last)
			memmove(s, last + 1, strlen(last + 1) + 1);
		else if (s[0] && s[1] == ':')
			memmove(s, s + 2, strlen(s + 2) + 1);
	}
	/* Ends: each pass removes two bytes. */
	while (s[0] == '.' && s[1] == '/')
		memmove(s, s + 2, strlen(s + 2) + 1);
	return s[0] ? s : NULL;
}

/* Copy a "{GUID}" linkage value (as UTF-8) into out, or fail. */
static bool vhdx_linkage(const char *s, char out[40])
{
	size_t n = strlen(s);

	if (n != 38 || s[0] != '{' || s[37] != '}')
		return false;
	for (size_t i = 1; i < 37; i++) {
		char c = s[i];

		if (i == 9 || i == 14 || i == 19 || i == 24) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') ||
			     ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))) {
			return false;
		}
		out[i - 1] = (char)(c >= 'A' && c <= 'F' ? c | 0x20 : c);
	}
	out[36] = '\0';
	return true;
}

/* [MS-VHDX] 2.6.2.6: the parent locator item (n bytes at p). Sets
 * l->backing_name to the first of relative_path, absolute_win32_path,
 * volume_path that names an existing file (else the first given), and the
 * linkage GUIDs. */
static int vhdx_parent_locator(struct vd_layer *l, struct vhdx *v,
			       const uint8_t *p, uint32_t n, struct vd_err *e)
{
	static const char *const keys[] = { "relative_path",
					     "absolute_win32_path",
					     "volume_path" };
	char *cand[3] = { NULL };
	unsigned count;
	int ret = 0, pick = -1;

	if (n < 20 || memcmp(p, vhdx_loctype_guid, 16))
		return X_FAIL(-ENOTSUP, "parent locator is not of the VHDX "
			      "type (B04AEFB7-D19E-4A81-B789-25B8E9445913)");
	count = get_le16(p + 18);
	if (20 + (uint64_t)count * 12 > n)
		return X_FAIL(-EUCLEAN, "parent locator of %u bytes cannot hold "
			      "%u entries", n, count);
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *ent = p + 20 + i * 12;
		uint32_t ko = get_le32(ent), vo = get_le32(ent + 4);
		uint16_t kl = get_le16(ent + 8), vl = get_le16(ent + 10);
		char *key, *val;

		if (!vd_range_ok(ko, kl, n) || !vd_range_ok(vo, vl, n)) {
			ret = X_FAIL(-EUCLEAN, "parent locator entry %u lies "
				     "outside the item (%u bytes)", i, n);
			goto out;
		}
		key = vhdx_utf16(p + ko, kl);
		val = vhdx_utf16(p + vo, vl);
		if (!key || !val) {
			free(key);
			free(val);
			ret = X_FAIL(-EUCLEAN, "parent locator entry %u is not "
				     "valid UTF-16", i);
			goto out;
		}
		if (!strcmp(key, "parent_linkage") ||
		    !strcmp(key, "parent_linkage2")) {
			char *dst = key[14] ? v->linkage2 : v->linkage;

			if (!vhdx_linkage(val, dst)) {
				ret = X_FAIL(-EUCLEAN, "parent locator: %s is "
					     "not a {GUID}", key);
				free(key);
				free(val);
				goto out;
			}
		}
		for (unsigned k = 0; k < VD_ARRAY_SIZE(keys); k++) {
			if (strcmp(key, keys[k]) || cand[k])
				continue;
			if (vhdx_windows_path(val, k != 0)) {
				cand[k] = val;
				val = NULL;
			}
		}
		free(key);
		free(val);
	}
	if (!v->linkage[0]) {
		ret = X_FAIL(-EUCLEAN, "parent locator has no parent_linkage");
		goto out;
	}
	for (unsigned k = 0; k < 3; k++) {
		if (cand[k] && pick < 0)
			pick = (int)k;
		if (cand[k] && vd_layer_name_exists(l, cand[k])) {
			pick = (int)k;
			break;
		}
	}
	if (pick < 0) {
		ret = X_FAIL(-EUCLEAN, "differencing disk names no parent (no "
			     "relative_path, absolute_win32_path or "
			     "volume_path in its parent locator)");
		goto out;
	}
	l->backing_name = strdup(cand[pick]);
	l->backing_format = strdup("vhdx");
	if (!l->backing_name || !l->backing_format)
		ret = -ENOMEM;
out:
	for (unsigned k = 0; k < 3; k++)
		free(cand[k]);
	return ret;
}

/* Read one item (n bytes at off within the metadata region) into buf. */
static int vhdx_item(struct vd_layer *l, struct vhdx *v, const char *what,
		     uint32_t off, uint32_t len, uint32_t want, void *buf,
		     struct vd_err *e)
{
	if (len < want)
		return X_FAIL(-EUCLEAN, "metadata item %s holds %u bytes (at "
			      "least %u)", what, len, want);
	return vd_vhdx_pread(l, buf, want, v->meta_off + off) ?
		       X_FAIL(-EIO, "cannot read metadata item %s", what) :
		       0;
}

static int vhdx_read_metadata(struct vd_layer *l, struct vhdx *v,
			      struct vd_err *e)
{
	uint8_t *mt = malloc(VHDX_META_TABLE_SIZE), b[16];
	uint8_t *loc = NULL;
	uint32_t loc_len = 0, have = 0;
	uint64_t vsize = 0;
	unsigned n;
	int ret;

	if (!mt)
		return -ENOMEM;
	ret = vd_vhdx_pread(l, mt, VHDX_META_TABLE_SIZE, v->meta_off);
	if (ret) {
		ret = X_FAIL(ret, "cannot read the metadata table");
		goto out;
	}
	n = get_le16(mt + M_COUNT);
	if (memcmp(mt + M_SIG, "metadata", 8) || n > M_MAX_ENTRIES) {
		ret = X_FAIL(-EUCLEAN, "metadata table at 0x%llx is not valid "
			     "(signature 'metadata', %u entries, at most %u)",
			     (unsigned long long)v->meta_off, n, M_MAX_ENTRIES);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *m = mt + M_ENTRIES + i * M_ENTRY_SIZE;
		uint32_t off = get_le32(m + ME_OFFSET);
		uint32_t len = get_le32(m + ME_LENGTH);
		bool req = get_le32(m + ME_FLAGS) & ME_IS_REQUIRED;
		char g[40];

		vd_uuid_str(m + ME_GUID, true, g);
		if (len && (off < VHDX_META_TABLE_SIZE ||
			    !vd_range_ok(off, len, v->meta_len))) {
			ret = X_FAIL(-EUCLEAN, "metadata item %s (%u bytes at "
				     "%u) lies outside the metadata region "
				     "(%llu bytes) or on its table", g, len,
				     off, (unsigned long long)v->meta_len);
			goto out;
		}
		if (!memcmp(m, vhdx_fparams_guid, 16)) {
			ret = vhdx_item(l, v, "file parameters", off, len, 8,
					b, e);
			if (ret)
				goto out;
			v->block_size = get_le32(b);
			v->leave_allocated = get_le32(b + 4) & 1;
			v->has_parent = get_le32(b + 4) & 2;
			have |= 1;
		} else if (!memcmp(m, vhdx_vsize_guid, 16)) {
			ret = vhdx_item(l, v, "virtual disk size", off, len, 8,
					b, e);
			if (ret)
				goto out;
			vsize = get_le64(b);
			have |= 2;
		} else if (!memcmp(m, vhdx_lss_guid, 16)) {
			ret = vhdx_item(l, v, "logical sector size", off, len,
					4, b, e);
			if (ret)
				goto out;
			v->lss = get_le32(b);
			have |= 4;
		} else if (!memcmp(m, vhdx_pss_guid, 16)) {
			ret = vhdx_item(l, v, "physical sector size", off, len,
					4, b, e);
			if (ret)
				goto out;
			v->pss = get_le32(b);
			have |= 8;
		} else if (!memcmp(m, vhdx_page83_guid, 16)) {
			ret = vhdx_item(l, v, "page 83 data", off, len, 16,
					v->page83, e);
			if (ret)
				goto out;
			v->has_page83 = true;
		} else if (!memcmp(m, vhdx_locator_guid, 16)) {
			if (loc) {
				ret = X_FAIL(-EUCLEAN, "two parent locators");
				goto out;
			}
			loc = malloc(len ? len : 1);
			if (!loc) {
				ret = -ENOMEM;
				goto out;
			}
			loc_len = len;
			ret = vhdx_item(l, v, "parent locator", off, len, len,
					loc, e);
			if (ret)
				goto out;
		} else if (req) {
			ret = X_FAIL(-ENOTSUP, "metadata item %s is required "
				     "but not known", g);
			goto out;
		}
	}
	if ((have & 15) != 15) {
		ret = X_FAIL(-EUCLEAN, "metadata lacks the %s item",
			     !(have & 1) ? "file parameters" :
			     !(have & 2) ? "virtual disk size" :
			     !(have & 4) ? "logical sector size" :
					   "physical sector size");
		goto out;
	}
	if (!vd_is_pow2(v->block_size) || v->block_size < VHDX_MIB ||
	    v->block_size > 256 * VHDX_MIB) {
		ret = X_FAIL(-EUCLEAN, "block size %u is not a power of two "
			     "from 1 MiB to 256 MiB", v->block_size);
		goto out;
	}
	v->block_bits = (unsigned)__builtin_ctz(v->block_size);
	if ((v->lss != 512 && v->lss != 4096) ||
	    (v->pss != 512 && v->pss != 4096)) {
		ret = X_FAIL(-EUCLEAN, "sector sizes %u (logical) and %u "
			     "(physical) are not 512 or 4096", v->lss, v->pss);
		goto out;
	}
	if (!vsize || vsize > VHDX_MAX_SIZE || vsize % v->lss) {
		ret = X_FAIL(-EUCLEAN, "virtual disk size %llu is not a "
			     "multiple of the %u-byte sector up to 64 TiB",
			     (unsigned long long)vsize, v->lss);
		goto out;
	}
	l->size = vsize;
	v->chunk_ratio = (VHDX_SB_SECTORS * v->lss) / v->block_size;
	v->data_blocks = (vsize + v->block_size - 1) >> v->block_bits;
	if (v->has_parent)
		v->bat_entries = (v->data_blocks + v->chunk_ratio - 1) /
				 v->chunk_ratio * (v->chunk_ratio + 1);
	else
		v->bat_entries = v->data_blocks +
				 (v->data_blocks - 1) / v->chunk_ratio;
	if (v->bat_entries > v->bat_len / 8) {
		ret = X_FAIL(-EUCLEAN, "BAT region of %llu bytes is too small "
			     "for %llu entries (virtual size %llu, blocks of "
			     "%u)", (unsigned long long)v->bat_len,
			     (unsigned long long)v->bat_entries,
			     (unsigned long long)vsize, v->block_size);
		goto out;
	}
	if (v->has_parent) {
		if (!loc) {
			ret = X_FAIL(-EUCLEAN, "differencing disk without a "
				     "parent locator");
			goto out;
		}
		ret = vhdx_parent_locator(l, v, loc, loc_len, e);
	}
out:
	free(loc);
	free(mt);
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
		ret = vhdx_read_metadata(l, v, e);
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
	here = bm[(bit - first) / 8] >> ((bit - first) % 8) & 1;
	/* Ends: s grows to last, at most 32768 sectors on. */
	for (s = bit + 1; s < last &&
			  (bool)(bm[(s - first) / 8] >> ((s - first) % 8) & 1) ==
				  here;
	     s++)
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
