/* VHDX metadata ([MS-VHDX] 2.6): the metadata table, its items (file
 * parameters, virtual disk size, logical and physical sector size, page
 * 83 data) and the parent locator of a differencing disk, which names
 * the parent (found under the folder rule) and its data write GUID. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/vhdx.h"

#define X_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vhdx: " fmt, l->path, ##__VA_ARGS__)

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
/* The table takes the region's first 64 KiB; items lie past it. */
#define VHDX_META_TABLE_SIZE (64u << 10)

/* [MS-VHDX] 2.6.2.2: at most 64 TiB. */
#define VHDX_MAX_SIZE (64ULL << 40)
/* The largest parent locator item read (it is read whole). */
#define VHDX_MAX_LOCATOR (256u << 10)

static const uint8_t vhdx_fparams_guid[16] =
	VHDX_GUID(0xcaa16737u, 0xfa36, 0x4d43, 0xb3, 0xb6, 0x33, 0xf0,
		  0xaa, 0x44, 0xe7, 0x6b);
static const uint8_t vhdx_vsize_guid[16] =
	VHDX_GUID(0x2fa54224u, 0xcd1b, 0x4876, 0xb2, 0x11, 0x5d, 0xbe,
		  0xd8, 0x3b, 0xf4, 0xb8);
static const uint8_t vhdx_page83_guid[16] =
	VHDX_GUID(0xbeca12abu, 0xb2e6, 0x4523, 0x93, 0xef, 0xc3, 0x09,
		  0xe0, 0x00, 0xc7, 0x46);
static const uint8_t vhdx_lss_guid[16] =
	VHDX_GUID(0x8141bf1du, 0xa96f, 0x4709, 0xba, 0x47, 0xf2, 0x33,
		  0xa8, 0xfa, 0xab, 0x5f);
static const uint8_t vhdx_pss_guid[16] =
	VHDX_GUID(0xcda348c7u, 0x445d, 0x4471, 0x9c, 0xc9, 0xe9, 0x88,
		  0x52, 0x51, 0xc5, 0x56);
static const uint8_t vhdx_locator_guid[16] =
	VHDX_GUID(0xa8d35f2du, 0xb30b, 0x454d, 0xab, 0xf7, 0xd3, 0xd8,
		  0x48, 0x34, 0xab, 0x0c);
/* [MS-VHDX] 2.6.2.6.1: the VHDX parent locator type. */
static const uint8_t vhdx_loctype_guid[16] =
	VHDX_GUID(0xb04aefb7u, 0xd19e, 0x4a81, 0xb7, 0x89, 0x25, 0xb8,
		  0xe9, 0x44, 0x59, 0x13);


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

int vd_vhdx_read_metadata(struct vd_layer *l, struct vhdx *v,
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
			/* Read whole: capped, as no locator of a few paths
			 * comes near it. */
			if (len > VHDX_MAX_LOCATOR) {
				ret = X_FAIL(-EUCLEAN, "parent locator of %u bytes "
					     "is larger than %u", len,
					     VHDX_MAX_LOCATOR);
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
