/* vdtool check for the formats with one block table: VDI and dynamic or
 * differencing VHD. Read-only; the verdicts use check.h's counts.
 *
 * VDI (VirtualBox's VDICore.h; QEMU's vdi_co_check counts the same
 * first three): a block map entry naming a stored block past the number
 * of blocks of the disk; two entries naming one stored block; the
 * header's count of allocated blocks differing from the map's. Beyond
 * QEMU: a stored block lying past the end of the file.
 *
 * VHD (Microsoft's VHD specification 1.0; QEMU has no check for it): a
 * BAT entry whose block (sector bitmap and data) lies past the end of
 * the file or over the headers or the BAT, and two entries whose blocks
 * overlap. Every entry is one corruption. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/check.h"

/* As QEMU's limits: a VDI block map of at most 4 GiB; a VHD BAT of
 * at most 2^28 entries (far past the spec's 2040 GiB). */
#define TC_VDI_MAX_BLOCKS 0x3fffffffu
#define TC_VHD_MAX_ENTRIES (1u << 28)

#define TMSG(fmt, ...) fprintf(msgs, fmt "\n", ##__VA_ARGS__)

static int tc_pread(int fd, uint64_t fsize, void *buf, size_t len,
		    uint64_t off)
{
	uint8_t *p = buf;

	memset(buf, 0, len);
	if (off >= fsize)
		return 0;
	len = (size_t)VD_MIN((uint64_t)len, fsize - off);
	/* Ends: each pass reads at least one byte or returns. */
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int tc_open(const char *path, int *fd_r, uint64_t *size_r,
		   struct vd_err *e)
{
	struct stat st;

	*fd_r = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd_r < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(*fd_r, &st)) {
		int err = errno;

		close(*fd_r);
		return vd_fail(e, -err, "%s: %s", path, strerror(err));
	}
	*size_r = (uint64_t)st.st_size;
	return 0;
}

int vd_vdi_check(const char *path, FILE *msgs, struct vd_check *r,
		 struct vd_err *e)
{
	uint8_t h[512];
	uint32_t *map = NULL, *owner = NULL, blocks, allocated, bsize, extra;
	uint64_t fsize, bmap_off, data_off, counted = 0, stride;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	ret = tc_open(path, &fd, &fsize, e);
	if (ret)
		return ret;
	ret = tc_pread(fd, fsize, h, sizeof(h), 0);
	if (ret || fsize < sizeof(h) || get_le32(h + 0x40) != 0xbeda107fu ||
	    get_le32(h + 0x44) != 0x00010001u) {
		ret = vd_fail(e, ret ? ret : -EINVAL, "%s: vdi: not a VDI "
			      "image of version 1.1", path);
		goto out;
	}
	bmap_off = get_le32(h + 0x154);
	data_off = get_le32(h + 0x158);
	bsize = get_le32(h + 0x178);
	extra = get_le32(h + 0x17c);
	blocks = get_le32(h + 0x180);
	allocated = get_le32(h + 0x184);
	if (blocks > TC_VDI_MAX_BLOCKS || !bsize ||
	    !vd_range_ok(bmap_off, (uint64_t)blocks * 4, fsize)) {
		ret = vd_fail(e, -EUCLEAN, "%s: vdi: block map (%u entries at "
			      "0x%llx) is not inside the file", path, blocks,
			      (unsigned long long)bmap_off);
		goto out;
	}
	stride = (uint64_t)bsize + extra;
	map = malloc((size_t)VD_MAX(blocks, 1) * 4);
	owner = malloc((size_t)VD_MAX(blocks, 1) * 4);
	if (!map || !owner) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	ret = tc_pread(fd, fsize, map, (size_t)blocks * 4, bmap_off);
	if (ret) {
		vd_fail(e, ret, "%s: vdi: cannot read the block map", path);
		goto out;
	}
	memset(owner, 0xff, (size_t)VD_MAX(blocks, 1) * 4);
	for (uint32_t b = 0; b < blocks; b++) {
		uint32_t ent = get_le32((const uint8_t *)&map[b]);

		if (ent >= 0xfffffffeu)
			continue; /* free or zero */
		if (ent >= blocks) {
			TMSG("ERROR: block index %u too large, is %u", b, ent);
			r->corruptions++;
			continue;
		}
		counted++;
		if (owner[ent] != UINT32_MAX) {
			TMSG("ERROR: block index %u also used by %u",
			     owner[ent], ent);
			r->corruptions++;
			continue;
		}
		owner[ent] = ent;
		if (data_off + (uint64_t)ent * stride + stride > fsize) {
			TMSG("ERROR: block %u (stored block %u at 0x%llx) lies "
			     "past the end of the file (%llu bytes)", b, ent,
			     (unsigned long long)(data_off +
						  (uint64_t)ent * stride),
			     (unsigned long long)fsize);
			r->corruptions++;
		}
	}
	if (counted != allocated) {
		TMSG("ERROR: allocated blocks mismatch, is %llu, should be %u",
		     (unsigned long long)counted, allocated);
		r->corruptions++;
	}
	ret = 0;
out:
	free(map);
	free(owner);
	close(fd);
	return ret;
}

struct tc_span {
	uint64_t off, end;
	uint32_t idx;
};

static int tc_span_cmp(const void *a, const void *b)
{
	const struct tc_span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

int vd_vhd_check(const char *path, FILE *msgs, struct vd_check *r,
		 struct vd_err *e)
{
	uint8_t f[512], d[1024];
	uint8_t *bat = NULL;
	struct tc_span *s = NULL;
	uint64_t fsize, dyn, table, block, bitmap, meta_end, n = 0;
	uint32_t entries;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	ret = tc_open(path, &fd, &fsize, e);
	if (ret)
		return ret;
	/* The footer: the last sector (or the copy at 0 when the last is
	 * damaged, as readers fall back to it). */
	ret = fsize >= 512 ? tc_pread(fd, fsize, f, 512, fsize - 512) : -EINVAL;
	if (!ret && memcmp(f, "conectix", 8)) {
		TMSG("ERROR: the footer at the end of the file is missing; "
		     "using its copy at 0");
		r->corruptions++;
		ret = tc_pread(fd, fsize, f, 512, 0);
	}
	if (ret || memcmp(f, "conectix", 8)) {
		ret = vd_fail(e, ret ? ret : -EINVAL, "%s: vpc: no VHD footer",
			      path);
		goto out;
	}
	if (get_be32(f + 60) == 2) {
		ret = 0; /* fixed: no tables */
		goto out;
	}
	dyn = get_be64(f + 16);
	ret = tc_pread(fd, fsize, d, sizeof(d), dyn);
	if (ret || dyn > fsize || memcmp(d, "cxsparse", 8)) {
		ret = vd_fail(e, ret ? ret : -EUCLEAN, "%s: vpc: no dynamic "
			      "disk header at 0x%llx", path,
			      (unsigned long long)dyn);
		goto out;
	}
	table = get_be64(d + 16);
	entries = get_be32(d + 28);
	block = get_be32(d + 32);
	if (entries > TC_VHD_MAX_ENTRIES || !vd_is_pow2(block) ||
	    block < 512 || !vd_range_ok(table, (uint64_t)entries * 4, fsize)) {
		ret = vd_fail(e, -EUCLEAN, "%s: vpc: BAT (%u entries at 0x%llx, "
			      "blocks of %llu bytes) is not inside the file",
			      path, entries, (unsigned long long)table,
			      (unsigned long long)block);
		goto out;
	}
	/* Each block: its sector bitmap (one bit per sector, in whole
	 * sectors), then its data. */
	bitmap = (block / 512 / 8 + 511) / 512 * 512;
	meta_end = VD_MAX(dyn + sizeof(d), table + (uint64_t)entries * 4);
	bat = malloc((size_t)VD_MAX(entries, 1) * 4);
	s = malloc((size_t)VD_MAX(entries, 1) * sizeof(*s));
	if (!bat || !s) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	ret = tc_pread(fd, fsize, bat, (size_t)entries * 4, table);
	if (ret) {
		vd_fail(e, ret, "%s: vpc: cannot read the BAT", path);
		goto out;
	}
	for (uint32_t i = 0; i < entries; i++) {
		uint32_t sec = get_be32(bat + (size_t)i * 4);
		uint64_t off = (uint64_t)sec * 512;

		if (sec == UINT32_MAX)
			continue;
		if (off + bitmap + block > fsize - 512) {
			TMSG("ERROR: block %u at 0x%llx lies past the end of "
			     "the file (%llu bytes, footer included)", i,
			     (unsigned long long)off,
			     (unsigned long long)fsize);
			r->corruptions++;
			continue;
		}
		if (off < meta_end) {
			TMSG("ERROR: block %u at 0x%llx overlaps the headers "
			     "or the BAT (which end at 0x%llx)", i,
			     (unsigned long long)off,
			     (unsigned long long)meta_end);
			r->corruptions++;
			continue;
		}
		s[n].off = off;
		s[n].end = off + bitmap + block;
		s[n].idx = i;
		n++;
	}
	if (n)
		qsort(s, (size_t)n, sizeof(*s), tc_span_cmp);
	for (uint64_t i = 1; i < n; i++) {
		if (s[i].off < s[i - 1].end) {
			TMSG("ERROR: block %u at 0x%llx overlaps block %u at "
			     "0x%llx", s[i].idx, (unsigned long long)s[i].off,
			     s[i - 1].idx, (unsigned long long)s[i - 1].off);
			r->corruptions++;
		}
	}
	ret = 0;
out:
	free(bat);
	free(s);
	close(fd);
	return ret;
}

/* VMDK hosted sparse extents (VMware's "Virtual Disk Format 5.0"; the
 * KDMV header, little-endian): every grain table the grain directory
 * names must lie inside the file, every grain a table names too (an
 * uncompressed grain whole; a compressed one's marker), and no two table
 * entries may name one grain. QEMU's check stops at the first grain past
 * the end and counts one corruption; this one counts each. Anything
 * else (a descriptor file, a COWD extent): -ENOTSUP (vmdk-check.c
 * checks descriptors and the extents they name). */
#define TC_VMDK_MAX_GTES (1u << 28) /* grain table entries in all */

int vd_vmdk_sparse_check(const char *path, FILE *msgs, struct vd_check *r,
			 struct vd_err *e)
{
	uint8_t h[512];
	uint64_t fsize, cap, grain, gd, n_gt, total, n = 0;
	uint32_t gtes, flags;
	uint8_t *gdb = NULL, *gt = NULL;
	struct tc_span *s = NULL;
	bool compressed;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	ret = tc_open(path, &fd, &fsize, e);
	if (ret)
		return ret;
	ret = tc_pread(fd, fsize, h, sizeof(h), 0);
	if (ret || get_le32(h) != 0x564d444bu) {
		ret = ret ? vd_fail(e, ret, "%s: %s", path, strerror(-ret)) :
			    vd_fail(e, -ENOTSUP, "%s: vmdk: not a sparse "
				    "extent (a descriptor file is not checked)",
				    path);
		goto out;
	}
	flags = get_le32(h + 8);
	/* A stream's directory is "at end": the footer (the header again,
	 * 1024 bytes before the end) says where. */
	if (get_le64(h + 56) == UINT64_MAX && fsize >= 1536) {
		ret = tc_pread(fd, fsize, h, sizeof(h), fsize - 1024);
		if (ret || get_le32(h) != 0x564d444bu) {
			ret = vd_fail(e, ret ? ret : -EUCLEAN, "%s: vmdk: no "
				      "footer", path);
			goto out;
		}
	}
	compressed = flags & (1u << 16);
	cap = get_le64(h + 12);
	grain = get_le64(h + 20);
	gtes = get_le32(h + 44);
	gd = get_le64(h + 56);
	if (!grain || grain > 2048 || !gtes || gtes > 4096 ||
	    cap / grain / gtes + 1 > TC_VMDK_MAX_GTES / gtes ||
	    gd > fsize / 512) {
		ret = vd_fail(e, -EUCLEAN, "%s: vmdk: header (grain %llu "
			      "sectors, %u entries per table, directory at "
			      "sector %llu) is invalid", path,
			      (unsigned long long)grain, gtes,
			      (unsigned long long)gd);
		goto out;
	}
	n_gt = (cap + grain * gtes - 1) / (grain * gtes);
	total = n_gt * gtes;
	gdb = malloc((size_t)VD_MAX(n_gt, 1) * 4);
	gt = malloc((size_t)gtes * 4);
	s = malloc((size_t)VD_MAX(total, 1) * sizeof(*s));
	if (!gdb || !gt || !s) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	ret = tc_pread(fd, fsize, gdb, (size_t)n_gt * 4, gd * 512);
	if (ret) {
		vd_fail(e, ret, "%s: vmdk: cannot read the grain directory",
			path);
		goto out;
	}
	for (uint64_t t = 0; t < n_gt; t++) {
		uint64_t gts = get_le32(gdb + t * 4);

		if (!gts)
			continue;
		if (!vd_range_ok(gts * 512, (uint64_t)gtes * 4, fsize)) {
			TMSG("ERROR: grain table %llu at sector %llu lies past "
			     "the end of the file (%llu bytes)",
			     (unsigned long long)t, (unsigned long long)gts,
			     (unsigned long long)fsize);
			r->corruptions++;
			continue;
		}
		ret = tc_pread(fd, fsize, gt, (size_t)gtes * 4, gts * 512);
		if (ret) {
			vd_fail(e, ret, "%s: vmdk: cannot read grain table "
				"%llu", path, (unsigned long long)t);
			goto out;
		}
		for (uint32_t i = 0; i < gtes; i++) {
			uint64_t g = get_le32(gt + (size_t)i * 4);
			uint64_t len = compressed ? 512 : grain * 512;

			/* 0 unallocated; 1 a zero grain (flag bit 2). */
			if (g <= 1)
				continue;
			if (!vd_range_ok(g * 512, len, fsize)) {
				TMSG("ERROR: grain %llu at sector %llu lies "
				     "past the end of the file (%llu bytes)",
				     (unsigned long long)(t * gtes + i),
				     (unsigned long long)g,
				     (unsigned long long)fsize);
				r->corruptions++;
				continue;
			}
			s[n].off = g * 512;
			s[n].end = g * 512 + len;
			s[n].idx = (uint32_t)(t * gtes + i);
			n++;
		}
	}
	if (n)
		qsort(s, (size_t)n, sizeof(*s), tc_span_cmp);
	for (uint64_t i = 1; i < n; i++) {
		if (s[i].off < s[i - 1].end) {
			TMSG("ERROR: grain %u at 0x%llx overlaps grain %u at "
			     "0x%llx", s[i].idx, (unsigned long long)s[i].off,
			     s[i - 1].idx, (unsigned long long)s[i - 1].off);
			r->corruptions++;
		}
	}
	ret = 0;
out:
	free(gdb);
	free(gt);
	free(s);
	close(fd);
	return ret;
}
