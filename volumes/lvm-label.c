/* LVM2 PV label, PV header and metadata areas.
 *
 * A PV (LVM2's lib/format_text/layout.h, lib/label/label.h):
 *
 *   one of sectors 0-3: the label (32 bytes) and, at the label's
 *       offset_xl, the PV header: the PV's UUID, the device size, a
 *       list of data areas and a list of metadata areas, each list
 *       ended by an all-zero entry (offset, size: u64 bytes);
 *   each metadata area (usually one at 4 KiB, optionally a second at
 *       the device's end): a 512-byte mda_header, then a circular buffer
 *       of metadata text. The header's first raw_locn says where the
 *       committed text lies (offset from the area's start, size with its
 *       NUL, CRC); text that reaches the area's end goes on right after
 *       the header.
 *
 * All integers are little-endian. Nothing here trusts a field before it
 * is checked against the sector, the area and the device it points in. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "volumes/lvm-internal.h"

/* label_header: 0 id "LABELONE", 8 sector_xl (u64, the sector the label
 * is in), 16 crc_xl (u32, over bytes 20-511), 20 offset_xl (u32, the PV
 * header's offset in the sector), 24 type "LVM2 001". */
#define LABEL_ID "LABELONE"
#define LABEL_TYPE "LVM2 001"
#define LABEL_HDR 32
/* pv_header: 0 pv_uuid[32], 32 device_size_xl (u64), 40 disk_locn lists. */
#define PVH_UUID 0
#define PVH_SIZE 32
#define PVH_AREAS 40
#define DISK_LOCN 16
/* mda_header: 0 checksum_xl (u32, over bytes 4-511), 4 magic[16], 20
 * version (u32, 1), 24 start (u64, the area's own offset), 32 size
 * (u64), 40 raw_locn[]: offset u64, size u64, checksum u32, flags u32. */
#define MDA_HDR 512
#define MDA_MAGIC " LVM2 x[5A%r0N*>"
#define MDA_RAW_LOCN 40
#define RAW_LOCN_IGNORED 1u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t lvm_crc(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

static bool label_ok(const uint8_t *s, unsigned sector)
{
	return !memcmp(s, LABEL_ID, 8) && !memcmp(s + 24, LABEL_TYPE, 8) &&
	       get_le64(s + 8) == sector &&
	       get_le32(s + 16) ==
		       lvm_crc(LVM_INITIAL_CRC, s + 20, LVM_SECTOR - 20);
}

int lvm_label_find(const uint8_t *buf, size_t n)
{
	for (unsigned i = 0; i < LVM_LABEL_SECTORS; i++)
		if (vd_range_ok((uint64_t)i * LVM_SECTOR, LVM_SECTOR, n) &&
		    label_ok(buf + i * LVM_SECTOR, i))
			return (int)i;
	return -1;
}

/* A UUID of 32 characters LVM could have written ([A-Za-z0-9]). */
static bool label_uuid_ok(const uint8_t *u)
{
	for (unsigned i = 0; i < LVM_ID_LEN; i++)
		if (!((u[i] >= '0' && u[i] <= '9') ||
		      (u[i] >= 'a' && u[i] <= 'z') ||
		      (u[i] >= 'A' && u[i] <= 'Z')))
			return false;
	return true;
}

int lvm_label_read(lvm_read_fn rd, void *ctx, uint64_t dev_len,
		   struct lvm_pv_label *l, struct vd_err *e)
{
	uint8_t buf[LVM_LABEL_SECTORS * LVM_SECTOR];
	const uint8_t *s, *h, *p;
	size_t n = VD_MIN(sizeof(buf), dev_len);
	uint32_t hoff;
	int sector, ret;

	memset(l, 0, sizeof(*l));
	if (n < LVM_SECTOR)
		return -ENOENT;
	ret = rd(ctx, buf, n, 0);
	if (ret < 0)
		return ret;
	sector = lvm_label_find(buf, n);
	if (sector < 0)
		return -ENOENT;
	l->sector = (unsigned)sector;
	s = buf + sector * LVM_SECTOR;
	/* The header and at least its two list terminators fit in the
	 * sector. */
	hoff = get_le32(s + 20);
	if (hoff < LABEL_HDR ||
	    !vd_range_ok(hoff, PVH_AREAS + 2 * DISK_LOCN, LVM_SECTOR))
		return vd_fail(e, -EUCLEAN,
			       "LVM: label in sector %d: PV header offset %u "
			       "lies outside the sector", sector, hoff);
	h = s + hoff;
	if (!label_uuid_ok(h + PVH_UUID))
		return vd_fail(e, -EUCLEAN,
			       "LVM: label in sector %d: the PV UUID is not "
			       "32 letters and digits", sector);
	memcpy(l->uuid, h + PVH_UUID, LVM_ID_LEN);
	l->uuid[LVM_ID_LEN] = '\0';
	l->dev_size = get_le64(h + PVH_SIZE);
	/* Two lists, each ended by a zero entry; the loop ends at the
	 * sector's end whatever the entries hold. */
	p = h + PVH_AREAS;
	for (int list = 0; list < 2; list++) {
		bool ended = false;

		while (p + DISK_LOCN <= s + LVM_SECTOR) {
			uint64_t off = get_le64(p), size = get_le64(p + 8);

			p += DISK_LOCN;
			if (!off) {
				ended = true;
				break;
			}
			if (list == 0) {
				if (!l->data_off)
					l->data_off = off;
				continue;
			}
			if (l->n_mda == LVM_MAX_MDAS)
				continue;
			l->mda[l->n_mda].off = off;
			l->mda[l->n_mda].size = size;
			l->n_mda++;
		}
		if (!ended)
			return vd_fail(e, -EUCLEAN,
				       "LVM: PV %s: the %s area list runs past "
				       "the label sector", l->uuid,
				       list ? "metadata" : "data");
	}
	return 0;
}

int lvm_mda_read(lvm_read_fn rd, void *ctx, uint64_t dev_len,
		 const struct lvm_pv_label *l, unsigned i, char **text_r,
		 size_t *len_r, struct vd_err *e)
{
	uint8_t h[MDA_HDR];
	uint64_t start, size, off, len, first;
	uint32_t crc, flags;
	char *t;
	int ret;

	*text_r = NULL;
	*len_r = 0;
	if (i >= l->n_mda)
		return -ENOENT;
	start = l->mda[i].off;
	size = l->mda[i].size;
	if (size < 2 * MDA_HDR || !vd_range_ok(start, size, dev_len))
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u (%llu bytes at "
			       "%llu) lies outside the device (%llu bytes)",
			       l->uuid, i + 1, (unsigned long long)size,
			       (unsigned long long)start,
			       (unsigned long long)dev_len);
	ret = rd(ctx, h, sizeof(h), start);
	if (ret < 0)
		return ret;
	if (memcmp(h + 4, MDA_MAGIC, 16))
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u at %llu has no "
			       "mda_header magic", l->uuid, i + 1,
			       (unsigned long long)start);
	crc = lvm_crc(LVM_INITIAL_CRC, h + 4, MDA_HDR - 4);
	if (get_le32(h) != crc)
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u: header CRC is "
			       "0x%08x, its bytes give 0x%08x", l->uuid, i + 1,
			       get_le32(h), crc);
	if (get_le32(h + 20) != 1 || get_le64(h + 24) != start)
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u: version %u, "
			       "start %llu (expected 1, %llu)", l->uuid, i + 1,
			       get_le32(h + 20),
			       (unsigned long long)get_le64(h + 24),
			       (unsigned long long)start);
	/* The header's own size, if smaller, bounds the buffer. */
	if (get_le64(h + 32) >= 2 * MDA_HDR)
		size = VD_MIN(size, get_le64(h + 32));
	off = get_le64(h + MDA_RAW_LOCN);
	len = get_le64(h + MDA_RAW_LOCN + 8);
	flags = get_le32(h + MDA_RAW_LOCN + 20);
	if (!off || (flags & RAW_LOCN_IGNORED))
		return -ENOENT;
	if (off < MDA_HDR || off >= size || !len || len > size - MDA_HDR ||
	    len > LVM_TEXT_MAX)
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u: text of %llu "
			       "bytes at %llu does not fit the area (%llu bytes)",
			       l->uuid, i + 1, (unsigned long long)len,
			       (unsigned long long)off,
			       (unsigned long long)size);
	t = malloc(len + 1);
	if (!t)
		return -ENOMEM;
	/* The circular buffer: what passes the area's end goes on right
	 * after the header (len <= size - MDA_HDR, so it fits). */
	first = VD_MIN(len, size - off);
	ret = rd(ctx, t, first, start + off);
	if (!ret && first < len)
		ret = rd(ctx, t + first, len - first, start + MDA_HDR);
	if (ret < 0) {
		free(t);
		return ret;
	}
	crc = lvm_crc(LVM_INITIAL_CRC, t, len);
	if (crc != get_le32(h + MDA_RAW_LOCN + 16)) {
		free(t);
		return vd_fail(e, -EUCLEAN,
			       "LVM: PV %s: metadata area %u: text CRC is "
			       "0x%08x, its bytes give 0x%08x", l->uuid, i + 1,
			       get_le32(h + MDA_RAW_LOCN + 16), crc);
	}
	/* The recorded size counts the text's NUL. */
	while (len && !t[len - 1])
		len--;
	t[len] = '\0';
	*text_r = t;
	*len_r = len;
	return 0;
}
