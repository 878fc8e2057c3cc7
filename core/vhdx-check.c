/* VHDX: vdtool check's look at the BAT ([MS-VHDX] 2.5) of an image that
 * opens (headers, regions and metadata are validated by the open, and
 * its log replayed in memory, as QEMU replays it). Every present payload
 * block (state 6 or 7) and sector bitmap block (state 6) must lie in the
 * file, past the header section and clear of the BAT, metadata and log
 * regions, and no two may overlap; a reserved state is a corruption too.
 * QEMU's check counts blocks past the end of the file the same way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/check.h"
#include "core/disk.h"
#include "core/vhdx.h"

#define VX_STATE_MASK 7u
#define VX_OFF_MASK 0xfffffffffff00000ULL
#define VX_PAGE 4096u

struct vx_span {
	uint64_t off, end, idx;
};

static int vx_cmp(const void *a, const void *b)
{
	const struct vx_span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static bool vx_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

int vd_vhdx_check(const char *path, FILE *msgs, struct vd_check *r,
		  struct vd_err *e)
{
	struct vd_open_opts o = { .format = "vhdx" };
	struct vd_disk *d = NULL;
	struct vd_layer *l;
	struct vhdx *v;
	struct vx_span *s = NULL;
	uint8_t page[VX_PAGE];
	uint64_t n, ns = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = vd_disk_open(path, &o, &d, e);
	if (ret)
		return ret;
	l = (struct vd_layer *)vd_disk_top(d);
	v = l->priv;
	/* Entries the BAT region holds, at most (its length is whole
	 * MiB, checked at open): the virtual size's, sector bitmaps
	 * included. */
	n = VD_MIN(v->bat_entries, v->bat_len / 8);
	s = malloc((size_t)VD_MAX(n, 1) * sizeof(*s));
	if (!s) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		bool sb = v->chunk_ratio &&
			  i % (v->chunk_ratio + 1) == v->chunk_ratio;
		uint64_t ent, off, len = sb ? VHDX_MIB : v->block_size;
		unsigned state;

		if (i % (VX_PAGE / 8) == 0) {
			ret = vd_vhdx_pread(l, page, VX_PAGE,
					    v->bat_off + i * 8);
			if (ret) {
				vd_fail(e, ret, "%s: vhdx: cannot read the BAT "
					"at 0x%llx", path,
					(unsigned long long)(v->bat_off +
							     i * 8));
				goto out;
			}
		}
		ent = get_le64(page + (i % (VX_PAGE / 8)) * 8);
		state = ent & VX_STATE_MASK;
		off = ent & VX_OFF_MASK;
		if (state == 4 || state == 5 || (sb && state && state != 6)) {
			fprintf(msgs, "ERROR: BAT entry %llu has reserved state "
				"%u\n", (unsigned long long)i, state);
			r->corruptions++;
			continue;
		}
		if (state < 6)
			continue;
		if (!vd_range_ok(off, len, v->file_size)) {
			fprintf(msgs, "ERROR: BAT entry %llu: the %s block at "
				"0x%llx lies past the end of the file (%llu "
				"bytes)\n", (unsigned long long)i,
				sb ? "sector bitmap" : "payload",
				(unsigned long long)off,
				(unsigned long long)v->file_size);
			r->corruptions++;
			continue;
		}
		if (off < VHDX_MIB ||
		    vx_overlap(off, len, v->bat_off, v->bat_len) ||
		    vx_overlap(off, len, v->meta_off, v->meta_len) ||
		    vx_overlap(off, len, v->log_off, v->log_len)) {
			fprintf(msgs, "ERROR: BAT entry %llu: the block at "
				"0x%llx overlaps the headers, the BAT, the "
				"metadata or the log\n", (unsigned long long)i,
				(unsigned long long)off);
			r->corruptions++;
			continue;
		}
		s[ns].off = off;
		s[ns].end = off + len;
		s[ns].idx = i;
		ns++;
	}
	if (ns)
		qsort(s, (size_t)ns, sizeof(*s), vx_cmp);
	for (uint64_t i = 1; i < ns; i++) {
		if (s[i].off < s[i - 1].end) {
			fprintf(msgs, "ERROR: BAT entry %llu: the block at "
				"0x%llx overlaps that of entry %llu\n",
				(unsigned long long)s[i].idx,
				(unsigned long long)s[i].off,
				(unsigned long long)s[i - 1].idx);
			r->corruptions++;
		}
	}
	ret = 0;
out:
	free(s);
	vd_disk_close(d);
	return ret;
}
