/* MBR: four primary entries in sector 0, and for each extended entry a
 * chain of EBRs (extended boot records) holding the logical partitions.
 *
 * Layout (the IBM PC convention, as Linux's block/partitions/msdos.c
 * reads it): entries of 16 bytes at offset 446 of a 512-byte sector,
 * signature 0x55 0xaa at 510, disk identifier (le32) at 440. An entry:
 *   offset 0   boot flag (0x80 active)
 *   offset 4   type
 *   offset 8   first sector (le32)
 *   offset 12  number of sectors (le32)
 * In sector 0, first sectors count from the disk's start. In an EBR, the
 * data entry's first sector counts from that EBR, and the link entry's
 * (an extended type) from the start of the extended partition in
 * sector 0.
 *
 * Numbering as Linux's: primaries 1-4 by slot, logical partitions 5, 6,
 * ... in chain order, across all extended partitions. An EBR's data
 * entries are taken from all four slots as Linux takes them (slots 3 and
 * 4 only when they lie inside the current EBR's link and the extended
 * partition: they often hold garbage). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "volumes/part-internal.h"

struct mbr_entry {
	uint8_t boot;
	uint8_t type;
	uint32_t start; /* sectors */
	uint32_t count; /* sectors */
};

static void mbr_entry(const uint8_t *sec, unsigned i, struct mbr_entry *m)
{
	const uint8_t *ent = sec + MBR_ENTRIES_AT + i * MBR_ENTRY_LEN;

	m->boot = ent[0];
	m->type = ent[4];
	m->start = get_le32(ent + 8);
	m->count = get_le32(ent + 12);
}

static bool mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static int mbr_add(struct part_ctx *c, unsigned num, uint64_t start_sec,
		   uint64_t count, const struct mbr_entry *m, bool extended)
{
	struct vd_part *pt;
	int err;

	/* Sector numbers are below 2^33 (a 32-bit EBR start plus a 32-bit
	 * offset), so the byte values cannot overflow. */
	pt = vd_part_add(c, num, start_sec * MBR_SECTOR, count * MBR_SECTOR,
			 &err);
	if (!pt)
		return err;
	pt->mbr_type = m->type;
	pt->bootable = m->boot == 0x80;
	pt->extended = extended;
	snprintf(pt->type, sizeof(pt->type), "0x%02x", m->type);
	return 0;
}

/* The logical partitions of the extended partition at [ext, ext + size)
 * (sectors); *next_num is the number the next logical gets. */
static int mbr_walk_ebrs(struct part_ctx *c, unsigned slot, uint64_t ext,
			 uint64_t size, unsigned *next_num)
{
	uint8_t ebr[MBR_SECTOR];
	uint64_t cur = ext;      /* this EBR's sector */
	uint64_t cur_size = size; /* its link entry's extent */
	unsigned steps = 0;
	int ret;

	/* Ends: every link must point strictly forward (a sector greater
	 * than the current EBR's) and inside the extended partition, so
	 * the chain can neither loop nor go backwards, and
	 * VD_PART_MAX_LOGICAL caps the steps whatever the sizes. */
	for (;;) {
		struct mbr_entry m, link = { 0 };
		bool have_link = false;
		uint64_t next;

		if (++steps > VD_PART_MAX_LOGICAL) {
			vd_log(VD_LOG_WARN, "%s: MBR: more than %u EBRs in "
			       "extended partition %u; the rest are ignored",
			       c->name, VD_PART_MAX_LOGICAL, slot);
			return 0;
		}
		if (!vd_range_ok(cur * MBR_SECTOR, MBR_SECTOR, c->size)) {
			vd_log(VD_LOG_WARN, "%s: MBR: EBR at sector %llu lies "
			       "past the disk's end; the chain stops there",
			       c->name, (unsigned long long)cur);
			return 0;
		}
		ret = vd_part_read(c, ebr, sizeof(ebr), cur * MBR_SECTOR,
				   "EBR");
		if (ret < 0)
			return ret;
		if (ebr[MBR_SIG_AT] != 0x55 || ebr[MBR_SIG_AT + 1] != 0xaa) {
			/* An empty extended partition may hold no EBR;
			 * a link to a sector without one is damage. */
			if (cur != ext)
				vd_log(VD_LOG_WARN, "%s: MBR: no EBR "
				       "signature at sector %llu; the chain "
				       "stops there", c->name,
				       (unsigned long long)cur);
			return 0;
		}

		for (unsigned i = 0; i < 4; i++) {
			uint64_t first;

			mbr_entry(ebr, i, &m);
			if (!m.count || !m.type)
				continue;
			if (mbr_is_extended(m.type)) {
				if (!have_link)
					link = m;
				have_link = true;
				continue;
			}
			if (!m.start) {
				vd_log(VD_LOG_WARN, "%s: MBR: EBR at sector "
				       "%llu: entry %u starts at the EBR "
				       "itself; skipped", c->name,
				       (unsigned long long)cur, i + 1);
				continue;
			}
			first = cur + m.start;
			/* Slots 3 and 4: Linux's checks for garbage. */
			if (i >= 2 &&
			    ((uint64_t)m.start + m.count > cur_size ||
			     first + m.count > ext + size))
				continue;
			if (*next_num - 4 > VD_PART_MAX_LOGICAL) {
				vd_log(VD_LOG_WARN, "%s: MBR: more than %u "
				       "logical partitions; the rest are "
				       "ignored", c->name,
				       VD_PART_MAX_LOGICAL);
				return 0;
			}
			ret = mbr_add(c, (*next_num)++, first, m.count, &m,
				      false);
			if (ret < 0)
				return ret;
		}
		if (!have_link)
			return 0;

		next = ext + link.start;

		if (next <= cur) {
			vd_log(VD_LOG_WARN, "%s: MBR: EBR at sector %llu links "
			       "back to sector %llu (a loop); the chain stops "
			       "there", c->name, (unsigned long long)cur,
			       (unsigned long long)next);
			return 0;
		}
		if (next >= ext + size) {
			vd_log(VD_LOG_WARN, "%s: MBR: EBR at sector %llu links "
			       "to sector %llu, outside extended partition "
			       "%u (sectors %llu-%llu); the chain stops there",
			       c->name, (unsigned long long)cur,
			       (unsigned long long)next, slot,
			       (unsigned long long)ext,
			       (unsigned long long)(ext + size - 1));
			return 0;
		}
		cur = next;
		cur_size = link.count;
	}
}

int vd_mbr_read(struct part_ctx *c, const uint8_t *mbr)
{
	struct mbr_entry m;
	unsigned next_num = 5;
	int ret;

	c->p->scheme = VD_PART_MBR;
	c->p->sector_size = MBR_SECTOR;
	/* MBR offset 440: the disk identifier. */
	c->p->mbr_id = get_le32(mbr + 440);

	for (unsigned i = 0; i < 4; i++) {
		mbr_entry(mbr, i, &m);
		if (!m.type || !m.count)
			continue; /* unused */
		if (!m.start) {
			vd_log(VD_LOG_WARN, "%s: MBR: partition %u starts at "
			       "sector 0, over the MBR itself; skipped",
			       c->name, i + 1);
			continue;
		}
		ret = mbr_add(c, i + 1, m.start, m.count, &m,
			      mbr_is_extended(m.type));
		if (ret < 0)
			return ret;
	}
	/* Logical partitions are numbered after all primaries, walking the
	 * extended partitions in slot order as Linux does. */
	for (unsigned i = 0; i < 4; i++) {
		mbr_entry(mbr, i, &m);
		if (!m.count || !m.start || !mbr_is_extended(m.type))
			continue;
		ret = mbr_walk_ebrs(c, i + 1, m.start, m.count, &next_num);
		if (ret < 0)
			return ret;
	}
	return 0;
}
