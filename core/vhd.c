/* VHD ("vpc", Virtual PC / Hyper-V) images, read-only.
 *
 * Field offsets below are those of Microsoft's "Virtual Hard Disk Image
 * Format Specification" (version 1.0, 2006), cross-read with libyal's
 * "Virtual Hard Disk (VHD) image format" notes and QEMU's block/vpc.c.
 * All fields are big-endian.
 *
 * Layout:
 *   fixed:        guest data, then a 512-byte footer
 *   dynamic:      footer copy, dynamic header (1 KiB), BAT, blocks, footer
 *   differencing: as dynamic, and the header names the parent
 * A block is a sector bitmap (one bit per 512-byte sector, most
 * significant bit first, padded to whole sectors) followed by the block's
 * data. In a differencing disk a clear bit means "read the parent"; in a
 * dynamic disk QEMU ignores the bitmap and reads the whole block, and so
 * do we, so that disk.raw equals `qemu-img convert`.
 *
 * Opening reads the footer and the dynamic header only: BAT pages and
 * sector bitmaps are read lazily through the disk's bounded metadata
 * cache, so open is O(1) in the virtual size.
 *
 * Virtual size, as QEMU 7.2 computes it: the CHS geometry (cylinders x
 * heads x sectors x 512) unless the creator application is one known to
 * record the exact size in current_size ("win " Hyper-V, "qem2" qemu-img
 * with force_size, "d2v " Disk2vhd, "CTXS" XenConverter, "tap\0"
 * XenServer), or the geometry is the maximum 65535/16/255, which marks a
 * size CHS cannot express; then current_size, rounded down to sectors. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"

#define V_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vhd: " fmt, l->path, ##__VA_ARGS__)
#define V_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: vhd: " fmt, l->path, ##__VA_ARGS__)

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_DYN_SIZE 1024u

/* Footer (spec "Hard Disk Footer Format"). */
#define VHD_F_COOKIE 0	     /* "conectix" */
#define VHD_F_VERSION 12     /* 0x00010000 */
#define VHD_F_DATA_OFFSET 16 /* dynamic header, or ~0 for fixed */
#define VHD_F_CREATOR_APP 28
#define VHD_F_CURRENT_SIZE 48
#define VHD_F_CYLINDERS 56   /* be16 */
#define VHD_F_HEADS 58	     /* u8 */
#define VHD_F_SPT 59	     /* u8, sectors per track */
#define VHD_F_TYPE 60
#define VHD_F_CHECKSUM 64
#define VHD_F_UNIQUE_ID 68   /* 16 bytes */

/* Dynamic disk header (spec "Dynamic Disk Header Format"). */
#define VHD_D_COOKIE 0	     /* "cxsparse" */
#define VHD_D_TABLE_OFFSET 16
#define VHD_D_VERSION 24     /* 0x00010000 */
#define VHD_D_MAX_ENTRIES 28
#define VHD_D_BLOCK_SIZE 32
#define VHD_D_CHECKSUM 36
#define VHD_D_PARENT_ID 40   /* 16 bytes: the parent footer's unique id */
#define VHD_D_PARENT_NAME 64 /* 512 bytes, UTF-16BE */
#define VHD_D_LOCATORS 576   /* 8 entries of 24 bytes */
#define VHD_N_LOCATORS 8
#define VHD_LOCATOR_SIZE 24
/* Within a locator entry. */
#define VHD_L_CODE 0
#define VHD_L_DATA_LEN 8
#define VHD_L_DATA_OFF 16

enum vhd_type {
	VHD_FIXED = 2,
	VHD_DYNAMIC = 3,
	VHD_DIFFERENCING = 4,
};

/* Locator platform codes. */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru": relative Windows path, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326b75u /* "W2ku": absolute Windows path, UTF-16LE */
#define VHD_PLAT_MACX 0x4d616358u /* "MacX": file:// URL, UTF-8 */

#define VHD_BAT_UNUSED 0xffffffffu
/* QEMU's limit: 0xff000000 sectors (2040 GiB). */
#define VHD_MAX_SECTORS 0xff000000ULL
#define VHD_MAX_GEOMETRY (65535ULL * 16 * 255)
/* A locator longer than this is no path anyone can open. */
#define VHD_MAX_LOCATOR 8192u

/* Cache keys: BAT pages of 4 KiB (1024 entries) by index, tagged; sector
 * bitmap sectors by their host offset (< 2^42, entry * 512). */
#define VHD_BAT_PAGE_KEY (1ULL << 63)
#define VHD_BAT_PAGE_BITS 12
#define VHD_BAT_PER_PAGE (1u << (VHD_BAT_PAGE_BITS - 2))
/* One bitmap sector covers 4096 guest sectors (2 MiB). */
#define VHD_BITS_PER_SECTOR (VHD_SECTOR * 8)

struct vhd {
	enum vhd_type type;
	uint8_t unique_id[16];	 /* footer offset 68 */
	uint8_t parent_id[16];	 /* dynamic header offset 40 */
	uint64_t dyn_off;	 /* footer offset 16 */
	uint64_t bat_off;	 /* dynamic header offset 16 */
	uint32_t bat_entries;	 /* dynamic header offset 28 */
	unsigned block_bits;	 /* log2 of dynamic header offset 32 */
	uint32_t bitmap_bytes;	 /* whole sectors */
};

extern const struct vd_format vd_format_vhd;

static int vhd_probe(const uint8_t *head, size_t len)
{
	/* A footer copy at offset 0: a dynamic or differencing disk. */
	return len >= 8 && !memcmp(head, "conectix", 8) ? 100 : 0;
}

/* One's complement of the byte sum, skipping the 4-byte checksum field. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t skip)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < skip || i >= skip + 4)
			sum += p[i];
	return ~sum;
}

/* The virtual size in bytes, by QEMU's rule (top of file). */
static uint64_t vhd_virtual_size(const uint8_t *ft)
{
	static const char exact[][4] = { "win ", "qem2", "d2v ", "CTXS",
					 { 't', 'a', 'p', '\0' } };
	uint64_t chs = (uint64_t)get_be16(ft + VHD_F_CYLINDERS) *
		       ft[VHD_F_HEADS] * ft[VHD_F_SPT];
	bool use_chs = true;

	for (size_t i = 0; i < VD_ARRAY_SIZE(exact); i++)
		if (!memcmp(ft + VHD_F_CREATOR_APP, exact[i], 4))
			use_chs = false;
	if (!use_chs || chs == VHD_MAX_GEOMETRY)
		return get_be64(ft + VHD_F_CURRENT_SIZE) / VHD_SECTOR;
	return chs;
}

/* A fixed disk has its footer at the end only (QEMU probes it as raw):
 * claimed when that footer is valid, says fixed, and its size (current
 * size, or the size by QEMU's rule) is the file's less the footer; or
 * when it has the cookie but a bad checksum, so that the open refuses it
 * with one line rather than showing a damaged VHD as raw bytes
 * (--format=raw still does). */
static int vhd_probe_tail(const uint8_t *ft, size_t len, uint64_t file_size)
{
	uint64_t data = file_size - VHD_FOOTER_SIZE;

	if (len < VHD_FOOTER_SIZE || file_size < VHD_FOOTER_SIZE ||
	    memcmp(ft + VHD_F_COOKIE, "conectix", 8))
		return 0;
	if (get_be32(ft + VHD_F_CHECKSUM) !=
	    vhd_checksum(ft, VHD_FOOTER_SIZE, VHD_F_CHECKSUM))
		return 100;
	if (get_be32(ft + VHD_F_TYPE) != VHD_FIXED)
		return 0;
	if (get_be64(ft + VHD_F_CURRENT_SIZE) == data ||
	    vhd_virtual_size(ft) * VHD_SECTOR == data)
		return 100;
	return 0;
}

/* ------------------------------------------------------------ locators */

static void vhd_put_utf8(char **o, uint32_t c)
{
	char *p = *o;

	if (c < 0x80) {
		*p++ = (char)c;
	} else if (c < 0x800) {
		*p++ = (char)(0xc0 | c >> 6);
		*p++ = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		*p++ = (char)(0xe0 | c >> 12);
		*p++ = (char)(0x80 | (c >> 6 & 0x3f));
		*p++ = (char)(0x80 | (c & 0x3f));
	} else {
		*p++ = (char)(0xf0 | c >> 18);
		*p++ = (char)(0x80 | (c >> 12 & 0x3f));
		*p++ = (char)(0x80 | (c >> 6 & 0x3f));
		*p++ = (char)(0x80 | (c & 0x3f));
	}
	*o = p;
}

/* UTF-16 (big- or little-endian) to a new UTF-8 string, ending at the
 * first NUL. 0, -EUCLEAN for an unpaired surrogate, -ENOMEM. */
static int vhd_utf16(const uint8_t *p, size_t len, bool be, char **out_r)
{
	size_t n = len / 2;
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return -ENOMEM;
	/* Ends: i grows by one or two units per pass, up to n. */
	for (size_t i = 0; i < n; i++) {
		uint32_t c = be ? get_be16(p + 2 * i) : get_le16(p + 2 * i);

		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
			uint32_t d = be ? get_be16(p + 2 * i + 2) :
					  get_le16(p + 2 * i + 2);

			if (d >= 0xdc00 && d < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (d - 0xdc00);
				i++;
				vhd_put_utf8(&o, c);
				continue;
			}
		}
		if (c >= 0xd800 && c < 0xe000) {
			free(out);
			return -EUCLEAN;
		}
		vhd_put_utf8(&o, c);
	}
	*o = '\0';
	*out_r = out;
	return 0;
}

static int vhd_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A MacX locator, "file://[localhost]/path" or "file://./rel" with %XX
 * escapes (RFC 2396), to the path it names, in place. */
static int vhd_file_url(char *s)
{
	char *src, *dst;

	if (strncmp(s, "file://", 7))
		return -EUCLEAN;
	src = s + 7;
	if (!strncmp(src, "localhost/", 10))
		src += 9;
	/* Ends: src moves forward by 1 or 3 bytes up to the NUL. */
	for (dst = s; *src;) {
		if (*src == '%') {
			int hi = vhd_hex(src[1]), lo = hi < 0 ? -1 :
							     vhd_hex(src[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return -EUCLEAN;
			*dst++ = (char)(hi << 4 | lo);
			src += 3;
		} else {
			*dst++ = *src++;
		}
	}
	*dst = '\0';
	return 0;
}

/* A Windows path (separators already '/') to the name we look for: a
 * relative path as it is, less a leading "./"; an absolute one (drive
 * letter or leading separator) by its last component, beside the child,
 * as users of QEMU and Hyper-V who move a chain together expect. In
 * place. */
static void vhd_windows_path(char *s)
{
	bool drive = ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z' &&
		      s[1] == ':');
	char *last;

	if (drive || s[0] == '/') {
		last = strrchr(s, '/');
		if (last)
			memmove(s, last + 1, strlen(last + 1) + 1);
		else if (drive)
			memmove(s, s + 2, strlen(s + 2) + 1);
		return;
	}
	/* Ends: each pass removes two bytes. */
	while (s[0] == '.' && s[1] == '/')
		memmove(s, s + 2, strlen(s + 2) + 1);
}

/* A name with a control character would break one-line messages, and
 * no tool writes one. */
static bool vhd_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Decode locator data (code, n bytes at p) into the name to open.
 * 0 and *name_r (NULL when the code is not one we read), or -EUCLEAN
 * with why set. */
static int vhd_decode_locator(uint32_t code, const uint8_t *p, size_t n,
			      char **name_r, const char **why)
{
	char *s = NULL;
	int ret;

	*name_r = NULL;
	switch (code) {
	case VHD_PLAT_W2RU:
	case VHD_PLAT_W2KU:
		if (n & 1) {
			*why = "odd length for UTF-16";
			return -EUCLEAN;
		}
		ret = vhd_utf16(p, n, false, &s);
		if (ret) {
			*why = "invalid UTF-16";
			return ret;
		}
		for (char *c = s; *c; c++)
			if (*c == '\\')
				*c = '/';
		vhd_windows_path(s);
		break;
	case VHD_PLAT_MACX:
		s = strndup((const char *)p, n);
		if (!s)
			return -ENOMEM;
		if (vhd_file_url(s)) {
			*why = "not a file:// URL";
			free(s);
			return -EUCLEAN;
		}
		break;
	default:
		return 0; /* "Mac " aliases, deprecated Wi2r/Wi2k: not read */
	}
	if (vhd_has_control(s)) {
		*why = "control character in the path";
		free(s);
		return -EUCLEAN;
	}
	if (!s[0]) {
		*why = "empty path";
		free(s);
		return -EUCLEAN;
	}
	*name_r = s;
	return 0;
}

/* The parent's name: the first locator, in the order W2ru, W2ku, MacX,
 * then the header's parent name, that names an existing file; if none
 * does, the first candidate (so the error names what was looked for). */
static int vhd_find_parent(struct vd_layer *l, const uint8_t *dyn,
			   struct vd_err *e)
{
	static const uint32_t order[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU,
					  VHD_PLAT_MACX };
	char *cand[VHD_N_LOCATORS + 1] = { NULL };
	unsigned nc = 0, pick = 0;
	uint8_t *buf = NULL;
	int ret = 0;

	/* Ends: three codes times eight fixed entries. */
	for (size_t k = 0; k < VD_ARRAY_SIZE(order); k++) {
		for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
			const uint8_t *ent = dyn + VHD_D_LOCATORS +
					     i * VHD_LOCATOR_SIZE;
			uint32_t code = get_be32(ent + VHD_L_CODE);
			uint32_t n = get_be32(ent + VHD_L_DATA_LEN);
			uint64_t at = get_be64(ent + VHD_L_DATA_OFF);
			const char *why = "";
			char *name;

			if (code != order[k] || n == 0)
				continue;
			if (n > VHD_MAX_LOCATOR) {
				ret = V_FAIL(-EUCLEAN, "parent locator %u "
					     "holds %u bytes (at most %u)", i,
					     n, VHD_MAX_LOCATOR);
				goto out;
			}
			if (!vd_range_ok(at, n, l->file->size)) {
				ret = V_FAIL(-EUCLEAN, "parent locator %u (%u "
					     "bytes at 0x%llx) lies past the "
					     "end of the file (%llu bytes)", i,
					     n, (unsigned long long)at,
					     (unsigned long long)l->file->size);
				goto out;
			}
			free(buf);
			buf = malloc(n);
			if (!buf) {
				ret = -ENOMEM;
				goto out;
			}
			ret = vd_file_pread(l->file, buf, n, at);
			if (ret) {
				ret = V_FAIL(ret, "cannot read parent locator "
					     "%u", i);
				goto out;
			}
			ret = vhd_decode_locator(code, buf, n, &name, &why);
			if (ret) {
				ret = V_FAIL(ret, "parent locator %u "
					     "(%.4s): %s", i,
					     (const char *)ent + VHD_L_CODE,
					     why);
				goto out;
			}
			if (name)
				cand[nc++] = name;
		}
	}
	/* The header's own parent name (UTF-16BE, a file name or a Windows
	 * path), last; skipped when it is not valid. */
	{
		char *name;

		ret = vhd_utf16(dyn + VHD_D_PARENT_NAME, 512, true, &name);
		if (ret == -ENOMEM)
			goto out;
		if (!ret) {
			for (char *c = name; *c; c++)
				if (*c == '\\')
					*c = '/';
			vhd_windows_path(name);
			if (!name[0] || vhd_has_control(name))
				free(name);
			else
				cand[nc++] = name;
		}
		ret = 0;
	}
	if (!nc) {
		ret = V_FAIL(-EUCLEAN, "differencing disk names no parent (no "
			     "W2ru, W2ku or MacX locator and no valid parent "
			     "name)");
		goto out;
	}
	for (unsigned i = 0; i < nc; i++) {
		if (vd_layer_name_exists(l, cand[i])) {
			pick = i;
			break;
		}
	}
	l->backing_name = cand[pick];
	cand[pick] = NULL;
	/* A differencing disk's parent is a VHD: open it as one, so that
	 * its unique id can be checked whatever its footer looks like. */
	l->backing_format = strdup("vpc");
	if (!l->backing_format)
		ret = -ENOMEM;
out:
	for (unsigned i = 0; i < nc; i++)
		free(cand[i]);
	free(buf);
	return ret;
}

/* ------------------------------------------------------------ open */

static void vhd_close(struct vd_layer *l)
{
	free(l->priv);
	l->priv = NULL;
}

/* Find and check the footer: at offset 0 (the copy dynamic and
 * differencing disks keep there) or in the last 512 bytes. */
static int vhd_read_footer(struct vd_layer *l, uint8_t *ft, bool *at_head,
			   struct vd_err *e)
{
	struct vd_file *f = l->file;
	uint32_t want, got;
	int ret;

	if (f->size < VHD_FOOTER_SIZE)
		return V_FAIL(-EUCLEAN, "file too short for a footer (%llu "
			      "bytes)", (unsigned long long)f->size);
	ret = vd_file_pread(f, ft, VHD_FOOTER_SIZE, 0);
	if (ret)
		return V_FAIL(ret, "cannot read the footer copy at offset 0");
	*at_head = !memcmp(ft + VHD_F_COOKIE, "conectix", 8);
	if (!*at_head) {
		ret = vd_file_pread(f, ft, VHD_FOOTER_SIZE,
				    f->size - VHD_FOOTER_SIZE);
		if (ret)
			return V_FAIL(ret, "cannot read the footer");
		if (memcmp(ft + VHD_F_COOKIE, "conectix", 8))
			return V_FAIL(-EUCLEAN, "not a VHD image (no "
				      "'conectix' footer at offset 0 or in "
				      "the last 512 bytes)");
	}
	want = get_be32(ft + VHD_F_CHECKSUM);
	got = vhd_checksum(ft, VHD_FOOTER_SIZE, VHD_F_CHECKSUM);
	if (want != got)
		return V_FAIL(-EUCLEAN, "footer %s: checksum 0x%08x does not "
			      "match its contents (0x%08x)%s",
			      *at_head ? "copy at offset 0" :
					 "at the end of the file",
			      want, got,
			      *at_head ? "" : "; -F raw shows the file as it "
					      "is");
	if (get_be32(ft + VHD_F_VERSION) >> 16 != 1)
		return V_FAIL(-ENOTSUP, "footer version 0x%08x is not "
			      "supported (only 1.x)",
			      get_be32(ft + VHD_F_VERSION));
	return 0;
}

/* Whether len bytes at off (both inside the file) overlap the footer copy
 * at 0 or the dynamic header. */
static bool vhd_on_header(const struct vhd *v, uint64_t off, uint64_t len)
{
	return off < VHD_FOOTER_SIZE ||
	       (off < v->dyn_off + VHD_DYN_SIZE && v->dyn_off < off + len);
}

static int vhd_open_dynamic(struct vd_layer *l, struct vhd *v,
			    const uint8_t *ft, struct vd_err *e)
{
	struct vd_file *f = l->file;
	uint64_t dyn_off = get_be64(ft + VHD_F_DATA_OFFSET), needed, bat_bytes;
	uint8_t dyn[VHD_DYN_SIZE];
	uint32_t block, want, got;
	int ret;

	if (!vd_range_ok(dyn_off, VHD_DYN_SIZE, f->size))
		return V_FAIL(-EUCLEAN, "dynamic header at 0x%llx (footer "
			      "data offset) lies past the end of the file "
			      "(%llu bytes)", (unsigned long long)dyn_off,
			      (unsigned long long)f->size);
	ret = vd_file_pread(f, dyn, VHD_DYN_SIZE, dyn_off);
	if (ret)
		return V_FAIL(ret, "cannot read the dynamic header");
	if (memcmp(dyn + VHD_D_COOKIE, "cxsparse", 8))
		return V_FAIL(-EUCLEAN, "no dynamic header at 0x%llx (cookie "
			      "is not 'cxsparse')",
			      (unsigned long long)dyn_off);
	want = get_be32(dyn + VHD_D_CHECKSUM);
	got = vhd_checksum(dyn, VHD_DYN_SIZE, VHD_D_CHECKSUM);
	if (want != got)
		return V_FAIL(-EUCLEAN, "dynamic header checksum 0x%08x does "
			      "not match its contents (0x%08x)", want, got);
	if (get_be32(dyn + VHD_D_VERSION) >> 16 != 1)
		return V_FAIL(-ENOTSUP, "dynamic header version 0x%08x is not "
			      "supported (only 1.x)",
			      get_be32(dyn + VHD_D_VERSION));

	block = get_be32(dyn + VHD_D_BLOCK_SIZE);
	if (!vd_is_pow2(block) || block < VHD_SECTOR)
		return V_FAIL(-EUCLEAN, "block size %u is not a power of two "
			      "of at least 512", block);
	v->block_bits = (unsigned)__builtin_ctz(block);
	/* One bit per sector, padded to whole sectors: at most 512 KiB for
	 * the largest (2 GiB) block. */
	v->bitmap_bytes = ((block / VHD_SECTOR / 8) + VHD_SECTOR - 1) &
			  ~(VHD_SECTOR - 1);

	v->bat_off = get_be64(dyn + VHD_D_TABLE_OFFSET);
	v->bat_entries = get_be32(dyn + VHD_D_MAX_ENTRIES);
	needed = (l->size + block - 1) >> v->block_bits;
	if (v->bat_entries < needed)
		return V_FAIL(-EUCLEAN, "BAT of %u entries is too small for "
			      "the virtual size (%llu bytes in blocks of %u "
			      "need %llu)", v->bat_entries,
			      (unsigned long long)l->size, block,
			      (unsigned long long)needed);
	bat_bytes = (uint64_t)v->bat_entries * 4;
	if (!vd_range_ok(v->bat_off, bat_bytes, f->size))
		return V_FAIL(-EUCLEAN, "BAT (%u entries at 0x%llx) lies past "
			      "the end of the file (%llu bytes)",
			      v->bat_entries, (unsigned long long)v->bat_off,
			      (unsigned long long)f->size);
	v->dyn_off = dyn_off;
	if (vhd_on_header(v, v->bat_off, bat_bytes))
		return V_FAIL(-EUCLEAN, "BAT (%u entries at 0x%llx) overlaps "
			      "the footer copy or the dynamic header at 0x%llx",
			      v->bat_entries, (unsigned long long)v->bat_off,
			      (unsigned long long)dyn_off);
	memcpy(v->parent_id, dyn + VHD_D_PARENT_ID, 16);
	if (v->type == VHD_DIFFERENCING)
		return vhd_find_parent(l, dyn, e);
	return 0;
}

static int vhd_open(struct vd_layer *l, const struct vd_layer_opts *o,
		    struct vd_err *e)
{
	uint8_t ft[VHD_FOOTER_SIZE];
	uint64_t sectors;
	struct vhd *v;
	bool at_head = false;
	int ret;

	(void)o;
	ret = vhd_read_footer(l, ft, &at_head, e);
	if (ret)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->priv = v;
	v->type = get_be32(ft + VHD_F_TYPE);
	memcpy(v->unique_id, ft + VHD_F_UNIQUE_ID, 16);

	sectors = vhd_virtual_size(ft);
	if (sectors > VHD_MAX_SECTORS) {
		ret = V_FAIL(-EUCLEAN, "virtual size of %llu sectors is larger "
			     "than VHD allows (2040 GiB)",
			     (unsigned long long)sectors);
		goto fail;
	}
	l->size = sectors * VHD_SECTOR;

	switch (v->type) {
	case VHD_FIXED:
		if (at_head) {
			ret = V_FAIL(-EUCLEAN, "fixed disk with a footer copy "
				     "at offset 0");
			goto fail;
		}
		if (l->size > l->file->size - VHD_FOOTER_SIZE) {
			ret = V_FAIL(-EUCLEAN, "fixed disk of %llu bytes, but "
				     "the file holds only %llu bytes before "
				     "its footer", (unsigned long long)l->size,
				     (unsigned long long)(l->file->size -
							  VHD_FOOTER_SIZE));
			goto fail;
		}
		return 0;
	case VHD_DYNAMIC:
	case VHD_DIFFERENCING:
		if (!at_head) {
			ret = V_FAIL(-EUCLEAN, "the footer says %s disk, but "
				     "offset 0 holds no footer copy",
				     v->type == VHD_DYNAMIC ? "a dynamic" :
							      "a differencing");
			goto fail;
		}
		ret = vhd_open_dynamic(l, v, ft, e);
		if (ret)
			goto fail;
		return 0;
	default:
		ret = V_FAIL(-ENOTSUP, "disk type %u is not supported (only "
			     "fixed, dynamic and differencing)", v->type);
		goto fail;
	}
fail:
	vhd_close(l);
	return ret;
}

static int vhd_check_backing(struct vd_layer *l, struct vd_err *e)
{
	const struct vhd *v = l->priv, *p;
	char want[40], got[40];

	if (!l->backing || l->backing->fmt != &vd_format_vhd)
		return 0;
	p = l->backing->priv;
	if (!memcmp(v->parent_id, p->unique_id, 16))
		return 0;
	vd_uuid_str(v->parent_id, false, want);
	vd_uuid_str(p->unique_id, false, got);
	return V_FAIL(-EUCLEAN, "parent unique id %s does not match the "
		      "unique id %s of parent %s; --ignore-parent-id mounts "
		      "it anyway", want, got, l->backing->path);
}

/* ------------------------------------------------------------ map */

/* Cache loader: a BAT page (tagged key) or one bitmap sector. */
static int vhd_load(void *arg, uint64_t key, void *buf, size_t size)
{
	struct vd_layer *l = arg;
	struct vhd *v = l->priv;

	if (key & VHD_BAT_PAGE_KEY) {
		uint64_t start = (key & ~VHD_BAT_PAGE_KEY) << VHD_BAT_PAGE_BITS;
		uint64_t total = (uint64_t)v->bat_entries * 4, n;

		if (start >= total)
			return -EIO;
		/* The last page may be partial: unused entries after it. */
		n = VD_MIN(size, total - start);
		memset((uint8_t *)buf + n, 0xff, size - n);
		return vd_file_pread(l->file, buf, n, v->bat_off + start);
	}
	return vd_file_pread(l->file, buf, size, key);
}

static int vhd_bat_entry(struct vd_layer *l, uint64_t blk, uint32_t *ent_r)
{
	struct vhd *v = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	struct vd_cache_ref ref;
	int ret;

	ret = vd_cache_get(cache, l, VHD_BAT_PAGE_KEY | (blk / VHD_BAT_PER_PAGE),
			   1u << VHD_BAT_PAGE_BITS, vhd_load, l, &ref);
	if (ret) {
		V_LOG("cannot read the BAT at 0x%llx",
		      (unsigned long long)v->bat_off);
		return -EIO;
	}
	*ent_r = get_be32((const uint8_t *)ref.data +
			  (blk % VHD_BAT_PER_PAGE) * 4);
	vd_cache_put(cache, &ref);
	return 0;
}

/* Bit i of a bitmap sector: most significant bit first. */
static bool vhd_bit(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (7 - i % 8) & 1;
}

/* In a differencing disk's allocated block blk, whose bitmap is at
 * bitmap_off: the run from off (before end, in the block) of sectors
 * that are all in the child (DATA, r->host_off set) or all in the parent
 * (UNALLOC), as the bitmap sector covering off says. */
static int vhd_map_bitmap(struct vd_layer *l, uint64_t blk,
			  uint64_t bitmap_off, uint64_t off, uint64_t end,
			  struct vd_run *r)
{
	struct vhd *v = l->priv;
	struct vd_cache *cache = vd_layer_cache(l);
	uint64_t blk_start = blk << v->block_bits;
	uint64_t sec = (off - blk_start) / VHD_SECTOR;
	uint64_t bm_sec = sec / VHD_BITS_PER_SECTOR;
	uint64_t first = bm_sec * VHD_BITS_PER_SECTOR, last, s;
	struct vd_cache_ref ref;
	bool bit;
	int ret;

	ret = vd_cache_get(cache, l, bitmap_off + bm_sec * VHD_SECTOR,
			   VHD_SECTOR, vhd_load, l, &ref);
	if (ret) {
		V_LOG("cannot read the sector bitmap of block %llu at 0x%llx",
		      (unsigned long long)blk, (unsigned long long)bitmap_off);
		return -EIO;
	}
	/* The sectors this bitmap sector covers, up to the end of the
	 * request. */
	last = VD_MIN(first + VHD_BITS_PER_SECTOR,
		      (end - blk_start + VHD_SECTOR - 1) / VHD_SECTOR);
	bit = vhd_bit(ref.data, sec - first);
	/* Ends: s grows to last, at most 4096 sectors on. */
	for (s = sec + 1; s < last && vhd_bit(ref.data, s - first) == bit; s++)
		;
	vd_cache_put(cache, &ref);
	r->type = bit ? VD_RUN_DATA : VD_RUN_UNALLOC;
	r->len = VD_MIN(end, blk_start + s * VHD_SECTOR) - off;
	return 0;
}

static int vhd_map(struct vd_layer *l, uint64_t off, uint64_t len,
		   struct vd_run *r)
{
	struct vhd *v = l->priv;
	uint64_t blk, in_blk, end, bitmap_off, data_off, blk_size;
	uint32_t ent;
	int ret;

	r->file = l->file;
	if (v->type == VHD_FIXED) {
		r->type = VD_RUN_DATA;
		r->host_off = off;
		r->len = len;
		return 0;
	}
	blk_size = 1ULL << v->block_bits;
	blk = off >> v->block_bits;
	in_blk = off & (blk_size - 1);
	/* A run never crosses a block boundary. */
	end = VD_MIN(off + len, (blk + 1) << v->block_bits);
	r->len = end - off;

	ret = vhd_bat_entry(l, blk, &ent);
	if (ret)
		return ret;
	if (ent == VHD_BAT_UNUSED) {
		/* Dynamic: zeros, as QEMU reads them. Differencing: the
		 * parent's bytes. */
		r->type = v->type == VHD_DYNAMIC ? VD_RUN_ZERO :
						   VD_RUN_UNALLOC;
		return 0;
	}
	bitmap_off = (uint64_t)ent * VHD_SECTOR;
	data_off = bitmap_off + v->bitmap_bytes;
	if (!vd_range_ok(bitmap_off, v->bitmap_bytes, l->file->size)) {
		V_LOG("sector bitmap of block %llu at 0x%llx lies past the end "
		      "of the file (%llu bytes)", (unsigned long long)blk,
		      (unsigned long long)bitmap_off,
		      (unsigned long long)l->file->size);
		return -EIO;
	}
	if (!vd_range_ok(data_off, blk_size, l->file->size)) {
		V_LOG("data of block %llu (%llu bytes at 0x%llx) runs past "
		      "the end of the file (%llu bytes)",
		      (unsigned long long)blk, (unsigned long long)blk_size,
		      (unsigned long long)data_off,
		      (unsigned long long)l->file->size);
		return -EIO;
	}
	/* Within the file (checked above), so no sum overflows. */
	if (vhd_on_header(v, bitmap_off, v->bitmap_bytes + blk_size) ||
	    (bitmap_off < v->bat_off + (uint64_t)v->bat_entries * 4 &&
	     v->bat_off < data_off + blk_size)) {
		V_LOG("block %llu at 0x%llx overlaps the footer copy, the "
		      "dynamic header or the BAT", (unsigned long long)blk,
		      (unsigned long long)bitmap_off);
		return -EIO;
	}
	r->host_off = data_off + in_blk;
	if (v->type == VHD_DYNAMIC) {
		/* QEMU ignores a dynamic disk's bitmap: so do we. */
		r->type = VD_RUN_DATA;
		return 0;
	}
	return vhd_map_bitmap(l, blk, bitmap_off, off, end, r);
}

static void vhd_describe(const struct vd_layer *l, struct vd_layer_info *i)
{
	const struct vhd *v = l->priv;

	snprintf(i->subformat, sizeof(i->subformat), "%s",
		 v->type == VHD_FIXED ? "fixed" :
		 v->type == VHD_DYNAMIC ? "dynamic" : "differencing");
	if (v->type != VHD_FIXED)
		i->cluster_size = 1u << v->block_bits;
}

const struct vd_format vd_format_vhd = {
	.name = "vpc", /* as qemu names it; "vhd" is accepted too */
	.probe = vhd_probe,
	.probe_tail = vhd_probe_tail,
	.open = vhd_open,
	.map = vhd_map,
	.check_backing = vhd_check_backing,
	.describe = vhd_describe,
	.close = vhd_close,
};
