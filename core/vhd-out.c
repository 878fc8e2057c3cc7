/* VHD, writing a new image front to back (vdtool convert -O vpc).
 * Fields from Microsoft's "Virtual Hard Disk Image Format Specification"
 * (version 1.0), all big-endian.
 *
 * Dynamic: a copy of the footer at 0, the dynamic disk header at 512,
 * the block allocation table (BAT) at 1536, then the blocks the writer
 * is given, in guest order, each a 512-byte sector bitmap (every sector
 * present) and 2 MiB of data; the footer last. The BAT and the headers
 * are written when everything else is. Fixed: the disk's bytes (the
 * blocks given; the rest a hole in the file) and the footer.
 *
 * The creator application is "qem2", the one QEMU writes with
 * force_size=on: readers that follow QEMU (and Hyper-V, Azure) take the
 * disk's size from the footer's current_size, not from the CHS geometry,
 * which cannot express most sizes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "core/writer.h"

#define VHD_SECTOR 512u
/* Seconds from 1970-01-01 to 2000-01-01, the VHD epoch. */
#define VHD_EPOCH 946684800LL

struct vd_vhd_out {
	int fd;
	bool fixed;
	uint64_t size;
	uint32_t n_blocks;
	uint32_t *bat;	    /* sector offsets, host order */
	uint64_t bat_bytes;
	uint64_t end;	    /* where the next block goes */
	uint64_t wb;	    /* disk writes started up to here */
	uint8_t footer[VHD_SECTOR];
	uint8_t bitmap[VHD_SECTOR];
};

/* The spec's checksum: the one's complement of the sum of the bytes,
 * with the checksum field counted as zero. */
static uint32_t vo_checksum(const uint8_t *p, size_t n, size_t field)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i++)
		if (i < field || i >= field + 4)
			sum += p[i];
	return ~sum;
}

/* The CHS geometry of the spec's appendix ("CHS calculation"). */
static void vo_geometry(uint64_t size, uint16_t *c_r, uint8_t *h_r,
			uint8_t *s_r)
{
	uint64_t total = size / VHD_SECTOR, cth;
	unsigned spt, heads;

	if (total > 65535ULL * 16 * 255)
		total = 65535ULL * 16 * 255;
	if (total >= 65535ULL * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		heads = (unsigned)((cth + 1023) / 1024);
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024ULL || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total / spt;
		}
		if (cth >= heads * 1024ULL) {
			spt = 63;
			heads = 16;
			cth = total / spt;
		}
	}
	*c_r = (uint16_t)VD_MIN(cth / heads, 65535ULL);
	*h_r = (uint8_t)heads;
	*s_r = (uint8_t)spt;
}

int vd_vhd_out_open(int fd, const struct vd_vhd_out_opts *o,
		    struct vd_vhd_out **w_r, struct vd_err *e)
{
	struct vd_vhd_out *w;
	uint8_t *f;
	uint16_t cyl;
	uint8_t heads, spt;
	uint64_t n;

	if (o->size % VHD_SECTOR)
		return vd_fail(e, -EINVAL, "a VHD's size must be a multiple "
			       "of 512 bytes, not %llu",
			       (unsigned long long)o->size);
	/* The largest VHD: 2040 GiB (the spec's limit for dynamic disks,
	 * and the BAT's 32-bit sector offsets). */
	if (o->size > 2040ULL << 30)
		return vd_fail(e, -EFBIG, "a VHD holds at most 2040 GiB; the "
			       "disk has %llu bytes",
			       (unsigned long long)o->size);
	w = calloc(1, sizeof(*w));
	if (!w)
		return vd_fail(e, -ENOMEM, "out of memory");
	w->fd = fd;
	w->fixed = o->fixed;
	w->size = o->size;
	n = (o->size + VD_VHD_BLOCK - 1) / VD_VHD_BLOCK;
	w->n_blocks = (uint32_t)n;
	w->bat_bytes = (n * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	if (!w->fixed) {
		w->bat = malloc(VD_MAX(n, 1) * 4);
		if (!w->bat) {
			free(w);
			return vd_fail(e, -ENOMEM, "out of memory");
		}
		memset(w->bat, 0xff, VD_MAX(n, 1) * 4);
		/* The first block's data starts on a 4 KiB boundary. */
		w->end = ((1536 + w->bat_bytes + VHD_SECTOR + 4095) & ~4095ULL) -
			 VHD_SECTOR;
	}
	memset(w->bitmap, 0xff, sizeof(w->bitmap));

	/* The footer (spec, "Hard Disk Footer Format"). */
	f = w->footer;
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);		   /* features: reserved bit set */
	put_be32(f + 12, 0x00010000);	   /* file format version 1.0 */
	put_be64(f + 16, w->fixed ? UINT64_MAX : VHD_SECTOR); /* data offset */
	put_be32(f + 24, (uint32_t)(time(NULL) - VHD_EPOCH));
	memcpy(f + 28, "qem2", 4);	   /* creator application */
	put_be32(f + 32, 0x00050003);	   /* creator version, as QEMU's */
	memcpy(f + 36, "Wi2k", 4);	   /* creator host OS */
	put_be64(f + 40, o->size);	   /* original size */
	put_be64(f + 48, o->size);	   /* current size */
	vo_geometry(o->size, &cyl, &heads, &spt);
	f[56] = (uint8_t)(cyl >> 8);
	f[57] = (uint8_t)cyl;
	f[58] = heads;
	f[59] = spt;
	put_be32(f + 60, w->fixed ? 2 : 3); /* disk type */
	if (getrandom(f + 68, 16, 0) != 16) {
		/* A unique id need not be secret: time and pid will do. */
		put_be64(f + 68, (uint64_t)time(NULL));
		put_be64(f + 76, (uint64_t)getpid());
	}
	put_be32(f + 64, vo_checksum(f, VHD_SECTOR, 64));
	*w_r = w;
	return 0;
}

int vd_vhd_out_block(struct vd_vhd_out *w, uint64_t idx, const void *buf)
{
	uint64_t off = idx * VD_VHD_BLOCK;
	int ret;

	if (idx >= w->n_blocks)
		return -EINVAL;
	if (w->fixed) {
		uint64_t n = VD_MIN((uint64_t)VD_VHD_BLOCK, w->size - off);

		ret = vd_out_pwrite(w->fd, buf, (size_t)n, off);
		if (!ret)
			vd_out_writeback(w->fd, &w->wb, off + n, false);
		return ret;
	}
	if (w->bat[idx] != UINT32_MAX || w->end / VHD_SECTOR > UINT32_MAX)
		return -EINVAL;
	ret = vd_out_pwrite(w->fd, w->bitmap, VHD_SECTOR, w->end);
	if (!ret)
		ret = vd_out_pwrite(w->fd, buf, VD_VHD_BLOCK, w->end + VHD_SECTOR);
	if (ret)
		return ret;
	w->bat[idx] = (uint32_t)(w->end / VHD_SECTOR);
	w->end += VHD_SECTOR + VD_VHD_BLOCK;
	vd_out_writeback(w->fd, &w->wb, w->end, false);
	return 0;
}

int vd_vhd_out_finish(struct vd_vhd_out *w)
{
	uint8_t h[1024] = { 0 }, *bat;
	int ret;

	if (w->fixed) {
		ret = vd_out_pwrite(w->fd, w->footer, VHD_SECTOR, w->size);
		if (!ret && ftruncate(w->fd, (off_t)(w->size + VHD_SECTOR)))
			ret = -errno;
		goto sync;
	}
	/* The dynamic disk header (spec, "Dynamic Disk Header Format"). */
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX);	  /* data offset: unused */
	put_be64(h + 16, 1536);		  /* table offset */
	put_be32(h + 24, 0x00010000);	  /* header version */
	put_be32(h + 28, w->n_blocks);	  /* max table entries */
	put_be32(h + 32, VD_VHD_BLOCK);	  /* block size */
	put_be32(h + 36, vo_checksum(h, sizeof(h), 36));
	bat = malloc((size_t)VD_MAX(w->bat_bytes, 1));
	if (!bat)
		return -ENOMEM;
	memset(bat, 0xff, (size_t)w->bat_bytes);
	for (uint32_t i = 0; i < w->n_blocks; i++)
		put_be32(bat + (size_t)i * 4, w->bat[i]);
	ret = vd_out_pwrite(w->fd, bat, (size_t)w->bat_bytes, 1536);
	free(bat);
	if (!ret)
		ret = vd_out_pwrite(w->fd, h, sizeof(h), VHD_SECTOR);
	if (!ret)
		ret = vd_out_pwrite(w->fd, w->footer, VHD_SECTOR, 0);
	if (!ret)
		ret = vd_out_pwrite(w->fd, w->footer, VHD_SECTOR, w->end);
sync:
	if (!ret && fdatasync(w->fd))
		ret = -errno;
	return ret;
}

void vd_vhd_out_free(struct vd_vhd_out *w)
{
	if (!w)
		return;
	free(w->bat);
	free(w);
}
