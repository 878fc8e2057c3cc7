/* VMDK, writing a new sparse extent front to back (vdtool convert -O
 * vmdk, and the disk of an OVA). Fields from VMware's "Virtual Disk
 * Format 5.0" (hosted sparse extents, stream-optimized compressed
 * extents), little-endian.
 *
 * monolithicSparse: the header, the embedded descriptor (sectors 1-20),
 * the redundant grain directory and its grain tables, the grain
 * directory and its grain tables (all tables of the disk, preallocated,
 * as VMware expects), then the grains given, 64 KiB each, in guest
 * order. The tables are written last.
 *
 * streamOptimized: the header (grain directory "at end"), the
 * descriptor, then from sector 128 each grain given, compressed (a zlib
 * stream) behind a grain marker (its guest sector and length) and padded
 * to a sector; after the grains of each grain table that has any, a
 * grain-table marker and the table; at the end a grain-directory marker
 * and the directory, a footer marker and the footer (the header with
 * the directory's place), and the end-of-stream marker. Everything is
 * appended: the file could go to a pipe but for the header's rewrite,
 * which only repeats what the footer says. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/util.h"
#include "core/writer.h"

#define VO_SECTOR 512u
#define VO_GRAIN_SECTORS 128u
#define VO_GTES 512u
#define VO_DESC_SECTORS 20u
#define VO_GD_AT_END UINT64_MAX
#define VO_STAGE (4u << 20)

enum { VO_MARKER_EOS = 0, VO_MARKER_GT = 1, VO_MARKER_GD = 2,
       VO_MARKER_FOOTER = 3 };

struct vd_vmdk_out {
	int fd;
	bool stream;
	uint64_t sectors;    /* capacity */
	uint64_t grains;
	uint64_t n_gt;
	uint64_t gd_sectors;
	uint32_t *gtab;	     /* sparse: every grain's sector; stream: the
				current table's */
	uint32_t *gd;	     /* stream: each table's sector */
	uint64_t cur_gt;     /* stream: the table being filled */
	bool cur_used;
	uint64_t rgd, gd_at, gt_at, overhead; /* sparse layout, sectors */
	uint64_t end;	     /* bytes: where the next byte goes */
	uint8_t *stage;	     /* stream: bytes [end - stage_len, end) */
	size_t stage_len;
	uint64_t wb;	     /* disk writes started up to here */
	char *desc;
	uint64_t next_g;
	uint8_t header[VO_SECTOR];
};

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static int vo_flush(struct vd_vmdk_out *w)
{
	int ret;

	if (!w->stage_len)
		return 0;
	ret = vd_out_pwrite(w->fd, w->stage, w->stage_len, w->end - w->stage_len);
	w->stage_len = 0;
	if (!ret)
		vd_out_writeback(w->fd, &w->wb, w->end, false);
	return ret;
}

/* Append n bytes (buf NULL: zeros) through the stage. */
static int vo_append(struct vd_vmdk_out *w, const void *buf, size_t n)
{
	int ret;

	/* Ends: each pass stages at least one byte. */
	while (n) {
		size_t k;

		if (w->stage_len == VO_STAGE && (ret = vo_flush(w)))
			return ret;
		k = VD_MIN(n, VO_STAGE - w->stage_len);
		if (buf) {
			memcpy(w->stage + w->stage_len, buf, k);
			buf = (const uint8_t *)buf + k;
		} else {
			memset(w->stage + w->stage_len, 0, k);
		}
		w->stage_len += k;
		w->end += k;
		n -= k;
	}
	return 0;
}

static int vo_pad(struct vd_vmdk_out *w)
{
	size_t pad = (size_t)((VO_SECTOR - (w->end & (VO_SECTOR - 1))) &
			      (VO_SECTOR - 1));

	return pad ? vo_append(w, NULL, pad) : 0;
}

/* A metadata marker (one sector): val, size 0, type. */
static int vo_marker(struct vd_vmdk_out *w, uint64_t val, uint32_t type)
{
	uint8_t m[VO_SECTOR] = { 0 };

	put_le64(m, val);
	put_le32(m + 12, type);
	return vo_append(w, m, sizeof(m));
}

/* The header (spec, "SparseExtentHeader"). */
static void vo_header(struct vd_vmdk_out *w, uint8_t *h, uint64_t gd_off)
{
	memset(h, 0, VO_SECTOR);
	put_le32(h, 0x564d444b);		 /* "KDMV" */
	put_le32(h + 4, w->stream ? 3 : 1);	 /* version */
	/* flags: valid newline test (0), redundant grain table (1) for
	 * sparse; compressed grains (16) and markers (17) for stream. */
	put_le32(h + 8, w->stream ? 0x30001 : 0x3);
	put_le64(h + 12, w->sectors);		 /* capacity */
	put_le64(h + 20, VO_GRAIN_SECTORS);	 /* grainSize */
	put_le64(h + 28, 1);			 /* descriptorOffset */
	put_le64(h + 36, VO_DESC_SECTORS);	 /* descriptorSize */
	put_le32(h + 44, VO_GTES);		 /* numGTEsPerGT */
	put_le64(h + 48, w->stream ? 0 : w->rgd); /* rgdOffset */
	put_le64(h + 56, gd_off);		 /* gdOffset */
	put_le64(h + 64, w->overhead);		 /* overHead */
	h[72] = 0;				 /* uncleanShutdown */
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	h[77] = w->stream ? 1 : 0;		 /* compressAlgorithm: deflate */
}

int vd_vmdk_desc(char *buf, size_t cap, const char *type, uint64_t sectors,
		 const char *extent_type, const char *extent)
{
	uint32_t cid;
	uint64_t cyl = sectors / (16 * 63);
	int n;

	if (getrandom(&cid, sizeof(cid), 0) != (ssize_t)sizeof(cid))
		cid = (uint32_t)getpid();
	if (cyl > 65535)
		cyl = 65535;
	n = snprintf(buf, cap,
		     "# Disk DescriptorFile\n"
		     "version=1\n"
		     "CID=%08x\n"
		     "parentCID=ffffffff\n"
		     "createType=\"%s\"\n"
		     "\n"
		     "# Extent description\n"
		     "RW %llu %s \"%s\"%s\n"
		     "\n"
		     "# The Disk Data Base\n"
		     "#DDB\n"
		     "\n"
		     "ddb.virtualHWVersion = \"4\"\n"
		     "ddb.geometry.cylinders = \"%llu\"\n"
		     "ddb.geometry.heads = \"16\"\n"
		     "ddb.geometry.sectors = \"63\"\n"
		     "ddb.adapterType = \"ide\"\n",
		     cid ? cid : 1, type, (unsigned long long)sectors,
		     extent_type, extent, strcmp(extent_type, "FLAT") ? "" :
									" 0",
		     (unsigned long long)cyl);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

int vd_vmdk_out_open(int fd, const struct vd_vmdk_out_opts *o,
		     struct vd_vmdk_out **w_r, struct vd_err *e)
{
	struct vd_vmdk_out *w;
	char desc[VO_DESC_SECTORS * VO_SECTOR];
	int ret;

	if (o->size % VO_SECTOR)
		return vd_fail(e, -EINVAL, "a VMDK's size must be a multiple "
			       "of 512 bytes, not %llu",
			       (unsigned long long)o->size);
	if (vd_vmdk_desc(desc, sizeof(desc), o->stream ? "streamOptimized" :
							 "monolithicSparse",
			 o->size / VO_SECTOR, "SPARSE", o->name) < 0)
		return vd_fail(e, -ENAMETOOLONG, "extent name too long");
	w = calloc(1, sizeof(*w));
	if (!w)
		return vd_fail(e, -ENOMEM, "out of memory");
	w->fd = fd;
	w->stream = o->stream;
	w->sectors = o->size / VO_SECTOR;
	w->grains = (w->sectors + VO_GRAIN_SECTORS - 1) / VO_GRAIN_SECTORS;
	w->n_gt = (w->grains + VO_GTES - 1) / VO_GTES;
	w->gd_sectors = (w->n_gt * 4 + VO_SECTOR - 1) / VO_SECTOR;
	/* Grain sectors are 32-bit: at most 2 TiB of file. */
	if (w->sectors > (1ULL << 32) - 1 - (4ULL << 20)) {
		free(w);
		return vd_fail(e, -EFBIG, "a sparse VMDK holds at most 2 TiB; "
			       "the disk has %llu bytes",
			       (unsigned long long)o->size);
	}
	w->desc = strdup(desc);
	if (w->stream) {
		w->gtab = calloc(VO_GTES, 4);
		w->gd = calloc(VD_MAX(w->n_gt, 1), 4);
		w->stage = malloc(VO_STAGE);
		w->overhead = VO_GRAIN_SECTORS;
		w->cur_gt = UINT64_MAX;
	} else {
		w->gtab = calloc(VD_MAX(w->n_gt * VO_GTES, 1), 4);
		w->rgd = 1 + VO_DESC_SECTORS;
		w->gd_at = w->rgd + w->gd_sectors + w->n_gt * 4;
		w->gt_at = w->gd_at + w->gd_sectors;
		w->overhead = (w->gt_at + w->n_gt * 4 + VO_GRAIN_SECTORS - 1) /
			      VO_GRAIN_SECTORS * VO_GRAIN_SECTORS;
	}
	if (!w->desc || !w->gtab || (w->stream && (!w->gd || !w->stage))) {
		ret = vd_fail(e, -ENOMEM, "out of memory");
		vd_vmdk_out_free(w);
		return ret;
	}
	w->end = w->overhead * VO_SECTOR;
	*w_r = w;
	return 0;
}

int vd_vmdk_out_grain(struct vd_vmdk_out *w, uint64_t g, const void *buf)
{
	int ret;

	if (w->stream || g >= w->grains || g < w->next_g ||
	    w->end / VO_SECTOR > UINT32_MAX - VO_GRAIN_SECTORS)
		return -EINVAL;
	w->next_g = g + 1;
	ret = vd_out_pwrite(w->fd, buf, VD_VMDK_GRAIN, w->end);
	if (ret)
		return ret;
	w->gtab[g] = (uint32_t)(w->end / VO_SECTOR);
	w->end += VD_VMDK_GRAIN;
	return 0;
}

/* stream: the table being filled goes out, behind its marker. */
static int vo_gt_out(struct vd_vmdk_out *w)
{
	uint8_t t[VO_GTES * 4];
	int ret;

	if (!w->cur_used)
		return 0;
	for (unsigned i = 0; i < VO_GTES; i++)
		put_le32(t + i * 4, w->gtab[i]);
	ret = vo_marker(w, VO_GTES * 4 / VO_SECTOR, VO_MARKER_GT);
	if (ret)
		return ret;
	w->gd[w->cur_gt] = (uint32_t)(w->end / VO_SECTOR);
	ret = vo_append(w, t, sizeof(t));
	memset(w->gtab, 0, VO_GTES * 4);
	w->cur_used = false;
	return ret;
}

int vd_vmdk_out_cgrain(struct vd_vmdk_out *w, uint64_t g, const void *buf,
		       size_t len)
{
	uint8_t m[12];
	int ret;

	if (!w->stream || g >= w->grains || g < w->next_g || !len ||
	    len > UINT32_MAX || w->end / VO_SECTOR > UINT32_MAX - 1024)
		return -EINVAL;
	w->next_g = g + 1;
	if (g / VO_GTES != w->cur_gt) {
		ret = vo_gt_out(w);
		if (ret)
			return ret;
		w->cur_gt = g / VO_GTES;
	}
	/* Grain marker: the guest sector, the compressed length. */
	put_le64(m, g * VO_GRAIN_SECTORS);
	put_le32(m + 8, (uint32_t)len);
	w->gtab[g % VO_GTES] = (uint32_t)(w->end / VO_SECTOR);
	w->cur_used = true;
	ret = vo_append(w, m, sizeof(m));
	if (!ret)
		ret = vo_append(w, buf, len);
	if (!ret)
		ret = vo_pad(w);
	return ret;
}

int vd_vmdk_out_finish(struct vd_vmdk_out *w)
{
	uint8_t *meta = NULL;
	size_t mlen;
	int ret;

	if (w->stream) {
		uint64_t gd_sector;
		uint8_t *gd;

		ret = vo_gt_out(w);
		if (!ret)
			ret = vo_marker(w, w->gd_sectors, VO_MARKER_GD);
		if (ret)
			return ret;
		gd_sector = w->end / VO_SECTOR;
		gd = calloc(VD_MAX(w->gd_sectors, 1), VO_SECTOR);
		if (!gd)
			return -ENOMEM;
		for (uint64_t i = 0; i < w->n_gt; i++)
			put_le32(gd + i * 4, w->gd[i]);
		ret = vo_append(w, gd, (size_t)(w->gd_sectors * VO_SECTOR));
		free(gd);
		if (!ret)
			ret = vo_marker(w, 1, VO_MARKER_FOOTER);
		vo_header(w, w->header, gd_sector);
		if (!ret)
			ret = vo_append(w, w->header, VO_SECTOR);
		if (!ret)
			ret = vo_marker(w, 0, VO_MARKER_EOS);
		if (!ret)
			ret = vo_flush(w);
		if (ret)
			return ret;
		vo_header(w, w->header, VO_GD_AT_END);
		mlen = (1 + VO_DESC_SECTORS) * VO_SECTOR;
		meta = calloc(1, mlen);
		if (!meta)
			return -ENOMEM;
	} else {
		mlen = (size_t)(w->overhead * VO_SECTOR);
		meta = calloc(1, mlen);
		if (!meta)
			return -ENOMEM;
		vo_header(w, w->header, w->gd_at);
		/* Both directories and both sets of tables. */
		for (uint64_t i = 0; i < w->n_gt; i++) {
			put_le32(meta + w->rgd * VO_SECTOR + i * 4,
				 (uint32_t)(w->rgd + w->gd_sectors + i * 4));
			put_le32(meta + w->gd_at * VO_SECTOR + i * 4,
				 (uint32_t)(w->gt_at + i * 4));
		}
		for (uint64_t g = 0; g < w->grains; g++) {
			put_le32(meta + (w->rgd + w->gd_sectors) * VO_SECTOR +
					 g * 4, w->gtab[g]);
			put_le32(meta + w->gt_at * VO_SECTOR + g * 4,
				 w->gtab[g]);
		}
	}
	memcpy(meta, w->header, VO_SECTOR);
	memcpy(meta + VO_SECTOR, w->desc, strlen(w->desc));
	ret = vd_out_pwrite(w->fd, meta, mlen, 0);
	free(meta);
	if (!ret && !w->stream && ftruncate(w->fd, (off_t)w->end))
		ret = -errno;
	if (!ret && fdatasync(w->fd))
		ret = -errno;
	return ret;
}

void vd_vmdk_out_free(struct vd_vmdk_out *w)
{
	if (!w)
		return;
	free(w->gtab);
	free(w->gd);
	free(w->stage);
	free(w->desc);
	free(w);
}
