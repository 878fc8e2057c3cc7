/* GPT (UEFI specification 2.x, section 5.3 "GUID Partition Table Disk
 * Layout"): a header at LBA 1 and its backup at the disk's last LBA, each
 * pointing at an array of partition entries.
 *
 * Header (offsets in bytes, all little-endian):
 *   0   signature "EFI PART"
 *   8   revision
 *   12  header size (92 up to one sector)
 *   16  CRC32 of the header's first <header size> bytes, this field zero
 *   24  my LBA (where this header is)
 *   32  alternate LBA (where the other header is)
 *   40  first usable LBA,  48 last usable LBA
 *   56  disk GUID
 *   72  LBA of the entry array
 *   80  number of entries, 84 size of one entry (128 << n)
 *   88  CRC32 of the entry array
 * Entry:
 *   0   type GUID (all zero: unused)   16 unique partition GUID
 *   32  first LBA,  40 last LBA (inclusive)
 *   48  attributes, 56 name, 36 UTF-16LE units
 *
 * A header is used only when its signature, size, CRC, own LBA, entry
 * count and size, and entry-array CRC all check. The primary is used when
 * good (a damaged backup gets a warning); otherwise the backup, with a
 * warning; with neither, the table fails. The CRC is the one zlib's
 * crc32() computes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/util.h"
#include "volumes/part-internal.h"

#define GPT_SIG "EFI PART"
#define GPT_HDR_MIN 92u
#define GPT_ENTRY_MIN 128u
/* The spec allows 128 << n; tools write 128. Larger than this is absurd. */
#define GPT_ENTRY_MAX 1024u

struct gpt_hdr {
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t n_entries, entry_size;
	uint8_t disk_guid[16];
	uint8_t *entries; /* n_entries * entry_size bytes, CRC checked */
};

/* Load and check the header at lba (sector size ss); on failure, why in
 * why[] (for the one-line message) and -EUCLEAN; other errors (-ENOMEM,
 * a read error) fail the table. */
static int gpt_load(struct part_ctx *c, unsigned ss, uint64_t lba,
		    struct gpt_hdr *h, char *why, size_t why_len)
{
	uint8_t sec[4096];
	uint64_t off, array_off, array_len;
	uint32_t hsize, crc, want;
	int ret;

	memset(h, 0, sizeof(*h));
	if (__builtin_mul_overflow(lba, ss, &off) ||
	    !vd_range_ok(off, ss, c->size)) {
		snprintf(why, why_len, "LBA %llu lies past the disk's end",
			 (unsigned long long)lba);
		return -EUCLEAN;
	}
	ret = vd_part_read(c, sec, ss, off, "GPT header");
	if (ret < 0)
		return ret;
	if (memcmp(sec, GPT_SIG, 8)) {
		snprintf(why, why_len, "no signature at LBA %llu",
			 (unsigned long long)lba);
		return -EUCLEAN;
	}
	/* Offset 12: header size. */
	hsize = get_le32(sec + 12);
	if (hsize < GPT_HDR_MIN || hsize > ss) {
		snprintf(why, why_len, "header size %u (expected %u to %u)",
			 hsize, GPT_HDR_MIN, ss);
		return -EUCLEAN;
	}
	/* Offset 16: header CRC32, computed with the field zero. */
	want = get_le32(sec + 16);
	memset(sec + 16, 0, 4);
	crc = (uint32_t)crc32(0, sec, hsize);
	if (crc != want) {
		snprintf(why, why_len, "header CRC32 is 0x%08x, the header's "
			 "bytes give 0x%08x", want, crc);
		return -EUCLEAN;
	}
	h->my_lba = get_le64(sec + 24);
	h->alt_lba = get_le64(sec + 32);
	h->first_usable = get_le64(sec + 40);
	h->last_usable = get_le64(sec + 48);
	memcpy(h->disk_guid, sec + 56, 16);
	h->entries_lba = get_le64(sec + 72);
	h->n_entries = get_le32(sec + 80);
	h->entry_size = get_le32(sec + 84);
	want = get_le32(sec + 88);

	if (h->my_lba != lba) {
		snprintf(why, why_len, "header at LBA %llu says it is at LBA "
			 "%llu", (unsigned long long)lba,
			 (unsigned long long)h->my_lba);
		return -EUCLEAN;
	}
	if (h->first_usable > h->last_usable) {
		snprintf(why, why_len, "first usable LBA %llu is past the "
			 "last usable LBA %llu",
			 (unsigned long long)h->first_usable,
			 (unsigned long long)h->last_usable);
		return -EUCLEAN;
	}
	if (h->n_entries > VD_PART_MAX_GPT_ENTRIES) {
		snprintf(why, why_len, "%u partition entries (more than %u "
			 "is absurd)", h->n_entries, VD_PART_MAX_GPT_ENTRIES);
		return -EUCLEAN;
	}
	if (h->entry_size < GPT_ENTRY_MIN || h->entry_size > GPT_ENTRY_MAX ||
	    !vd_is_pow2(h->entry_size)) {
		snprintf(why, why_len, "partition entry size %u (expected "
			 "128 << n, at most %u)", h->entry_size,
			 GPT_ENTRY_MAX);
		return -EUCLEAN;
	}
	/* At most 4096 entries of 1 KiB: the allocation is capped at
	 * 4 MiB, and neither product overflows. */
	array_len = (uint64_t)h->n_entries * h->entry_size;
	if (__builtin_mul_overflow(h->entries_lba, ss, &array_off) ||
	    !vd_range_ok(array_off, array_len, c->size)) {
		snprintf(why, why_len, "entry array (%llu bytes at LBA %llu) "
			 "lies past the disk's end",
			 (unsigned long long)array_len,
			 (unsigned long long)h->entries_lba);
		return -EUCLEAN;
	}
	h->entries = malloc(array_len ? array_len : 1);
	if (!h->entries)
		return -ENOMEM;
	ret = vd_part_read(c, h->entries, array_len, array_off,
			   "GPT entry array");
	if (ret < 0)
		goto fail;
	crc = (uint32_t)crc32(0, h->entries, (uInt)array_len);
	if (crc != want) {
		snprintf(why, why_len, "entry array CRC32 is 0x%08x, the "
			 "entries give 0x%08x", want, crc);
		ret = -EUCLEAN;
		goto fail;
	}
	return 0;
fail:
	free(h->entries);
	h->entries = NULL;
	return ret;
}

/* A GPT name: UTF-16LE units up to the first NUL, as UTF-8; a lone
 * surrogate becomes U+FFFD. out holds at least 36 * 3 + 1 bytes. */
static void gpt_name(const uint8_t *in, char *out, size_t out_len)
{
	size_t o = 0;

	for (unsigned i = 0; i < 36; i++) {
		uint32_t u = get_le16(in + 2 * i);

		if (!u)
			break;
		if (u >= 0xd800 && u < 0xdc00 && i + 1 < 36) {
			uint32_t lo = get_le16(in + 2 * (i + 1));

			if (lo >= 0xdc00 && lo < 0xe000) {
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
				i++;
			}
		}
		if (u >= 0xd800 && u < 0xe000)
			u = 0xfffd;
		if (o + 5 > out_len)
			break;
		if (u < 0x80) {
			out[o++] = (char)u;
		} else if (u < 0x800) {
			out[o++] = (char)(0xc0 | u >> 6);
			out[o++] = (char)(0x80 | (u & 0x3f));
		} else if (u < 0x10000) {
			out[o++] = (char)(0xe0 | u >> 12);
			out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (u & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | u >> 18);
			out[o++] = (char)(0x80 | ((u >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (u & 0x3f));
		}
	}
	out[o] = 0;
}

static bool gpt_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int gpt_list(struct part_ctx *c, unsigned ss, const struct gpt_hdr *h)
{
	for (uint32_t i = 0; i < h->n_entries; i++) {
		const uint8_t *ent = h->entries + (size_t)i * h->entry_size;
		uint64_t first = get_le64(ent + 32), last = get_le64(ent + 40);
		uint64_t start, len;
		struct vd_part *pt;
		int err;

		if (gpt_zero(ent, 16))
			continue; /* unused entry */
		if (last < first) {
			vd_log(VD_LOG_WARN, "%s: GPT: entry %u ends (LBA %llu) "
			       "before it starts (LBA %llu); skipped",
			       c->name, i + 1, (unsigned long long)last,
			       (unsigned long long)first);
			continue;
		}
		if (!first) {
			vd_log(VD_LOG_WARN, "%s: GPT: entry %u starts at LBA 0, "
			       "over the MBR; skipped", c->name, i + 1);
			continue;
		}
		/* Shown, as Linux shows it, but said: its bytes include the
		 * GPT's own header or entries. */
		if (first < h->first_usable)
			vd_log(VD_LOG_WARN, "%s: GPT: entry %u starts at LBA "
			       "%llu, before the first usable LBA %llu (over "
			       "the GPT header or entries)", c->name, i + 1,
			       (unsigned long long)first,
			       (unsigned long long)h->first_usable);
		/* A length that overflows is past the disk's end anyway:
		 * saturate and let vd_part_add clip it. */
		if (__builtin_mul_overflow(first, ss, &start))
			start = UINT64_MAX;
		if (__builtin_mul_overflow(last - first + 1, ss, &len))
			len = UINT64_MAX;
		pt = vd_part_add(c, i + 1, start, len, &err);
		if (!pt) {
			if (err)
				return err;
			continue;
		}
		memcpy(pt->type_guid, ent, 16);
		memcpy(pt->uuid, ent + 16, 16);
		pt->attrs = get_le64(ent + 48);
		vd_guid_text(ent, pt->type, sizeof(pt->type));
		gpt_name(ent + 56, pt->name, sizeof(pt->name));
	}
	return 0;
}

/* A hybrid MBR: used entries besides the 0xee one. */
static bool gpt_hybrid(const uint8_t *mbr)
{
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *ent = mbr + MBR_ENTRIES_AT + i * MBR_ENTRY_LEN;

		if (ent[4] && ent[4] != MBR_TYPE_GPT && get_le32(ent + 12))
			return true;
	}
	return false;
}

/* Where a header's signature is: LBA 1 at 512, then at 4096 bytes per
 * sector; then, when sector 0 says GPT, the last LBA at each size.
 * 0 when there is none. */
static unsigned gpt_sector_size(struct part_ctx *c, bool pmbr)
{
	static const unsigned sizes[] = { 512, 4096 };
	uint8_t sig[8];

	for (unsigned i = 0; i < VD_ARRAY_SIZE(sizes); i++)
		if (vd_range_ok(sizes[i], sizes[i], c->size) &&
		    !vd_vol_read(c->v, sig, 8, sizes[i]) &&
		    !memcmp(sig, GPT_SIG, 8))
			return sizes[i];
	for (unsigned i = 0; pmbr && i < VD_ARRAY_SIZE(sizes); i++) {
		uint64_t last = c->size / sizes[i];

		if (last >= 3 &&
		    !vd_vol_read(c->v, sig, 8, (last - 1) * sizes[i]) &&
		    !memcmp(sig, GPT_SIG, 8))
			return sizes[i];
	}
	return 0;
}

static int gpt_error(struct part_ctx *c, int err)
{
	if (err == -ENOMEM)
		return vd_fail(c->e, err, "%s: GPT: out of memory", c->name);
	return err;
}

int vd_gpt_read(struct part_ctx *c, const uint8_t *mbr, bool pmbr)
{
	struct gpt_hdr pri, bak, *use;
	char why_pri[160], why_bak[160];
	unsigned ss = gpt_sector_size(c, pmbr);
	uint64_t last_lba, bak_lba;
	int ret, ret_bak;

	if (!ss) {
		if (pmbr)
			return vd_fail(c->e, -EUCLEAN, "%s: GPT: the MBR has a "
				       "GPT entry (0xee) but there is no GPT "
				       "header at LBA 1 or at the disk's last "
				       "LBA, for 512- or 4096-byte sectors",
				       c->name);
		return 0; /* no table at all */
	}
	if (!pmbr)
		vd_log(VD_LOG_WARN, "%s: GPT: no protective MBR in sector 0; "
		       "reading the GPT anyway", c->name);
	last_lba = c->size / ss - 1;

	/* -EUCLEAN from gpt_load: this header is bad (why_*), try the
	 * other; anything else (a read error, its message already in
	 * c->e; no memory) fails the table. */
	ret = gpt_load(c, ss, 1, &pri, why_pri, sizeof(why_pri));
	if (ret < 0 && ret != -EUCLEAN)
		return gpt_error(c, ret);
	/* The backup is where a good primary says, else at the end. */
	bak_lba = ret == 0 ? pri.alt_lba : last_lba;
	ret_bak = gpt_load(c, ss, bak_lba, &bak, why_bak, sizeof(why_bak));
	if (ret_bak < 0 && ret_bak != -EUCLEAN) {
		free(pri.entries);
		return gpt_error(c, ret_bak);
	}
	if (ret < 0 && ret_bak < 0)
		return vd_fail(c->e, -EUCLEAN, "%s: GPT: primary header: %s; "
			       "backup header at LBA %llu: %s", c->name,
			       why_pri, (unsigned long long)bak_lba, why_bak);
	if (ret == 0) {
		use = &pri;
		if (ret_bak < 0)
			vd_log(VD_LOG_WARN, "%s: GPT: backup header at LBA "
			       "%llu is damaged (%s); using the primary",
			       c->name, (unsigned long long)bak_lba, why_bak);
	} else {
		use = &bak;
		vd_log(VD_LOG_WARN, "%s: GPT: primary header is damaged (%s); "
		       "using the backup at LBA %llu", c->name, why_pri,
		       (unsigned long long)bak_lba);
	}
	if (use->last_usable > last_lba)
		vd_log(VD_LOG_WARN, "%s: GPT: last usable LBA %llu is past "
		       "the disk's last LBA %llu (a truncated image?)",
		       c->name, (unsigned long long)use->last_usable,
		       (unsigned long long)last_lba);
	if (pmbr && gpt_hybrid(mbr))
		vd_log(VD_LOG_DEBUG, "%s: GPT: hybrid MBR; its entries are "
		       "ignored, the GPT is read", c->name);

	c->p->scheme = VD_PART_GPT;
	c->p->sector_size = ss;
	memcpy(c->p->disk_guid, use->disk_guid, 16);
	ret = gpt_list(c, ss, use);
	free(pri.entries);
	free(bak.entries);
	return ret;
}
