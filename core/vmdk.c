/* vmdk, read-only: opening an image.
 *
 * A VMDK disk is a list of extents laid end to end: flat files (FLAT,
 * VMFS), sparse files (hosted "KDMV" sparse extents, also the
 * stream-optimized kind with compressed grains; ESX "COWD" vmfsSparse
 * extents) and ZERO extents. The list comes from a descriptor: a text
 * file of its own (monolithicFlat, twoGbMaxExtent*, vmfs, vmfsSparse) or,
 * for a monolithic sparse or stream-optimized file, one sparse extent
 * whose header gives the geometry, with a text area in it that carries
 * the CID and the parent (a "delta link": parentFileNameHint, parentCID).
 *
 * Everything the map relies on is validated here, once: each header's
 * grain size, table sizes and offsets against its file, each flat
 * extent against its file, the extents' sizes. Nothing proportional to
 * the virtual size is read: grain directories are read lazily, a page
 * at a time, by vmdk-map.c.
 *
 * Where qemu and VMware's spec differ on what a reader should do we
 * follow qemu (the test oracle), except where qemu would lose data:
 *  - RDONLY extents read like RW ones (qemu skips every extent line that
 *    is not RW, shifting the extents after it);
 *  - ZERO extents read as zeros (qemu skips them too);
 *  - NOACCESS extents are skipped, as qemu does, with a warning;
 *  - a flat extent that runs past the end of its file is refused (qemu
 *    reads zeros there). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "common/util.h"
#include "core/vmdk.h"

#define V_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vmdk: " fmt, l->path, ##__VA_ARGS__)

extern const struct vd_format vd_format_vmdk;

/* ------------------------------------------------------------ probe */

/* qemu's rule for a text descriptor: comment lines and blank lines, then
 * "version=1" (2, 3) at the start of a line. */
static bool vmdk_probe_text(const uint8_t *head, size_t len)
{
	const char *p = (const char *)head, *end = p + len;

	/* Ends: each pass moves p past one line, or returns. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p), blank = 0;

		if (!nl)
			return false; /* the line may go on past head */
		while (blank < n && (p[blank] == ' ' || p[blank] == '\r'))
			blank++;
		if (blank < n && p[0] != '#') {
			if (n < 9 || strncmp(p, "version=", 8) || p[8] < '1' ||
			    p[8] > '3')
				return false;
			return n == 9 || (n == 10 && p[9] == '\r');
		}
		p = nl + 1; /* a blank or comment line */
	}
	return false;
}

static int vmdk_probe(const uint8_t *head, size_t len)
{
	static const char sig[] = "# Disk DescriptorFile";

	if (len >= 4 && (get_le32(head) == VMDK4_MAGIC ||
			 get_le32(head) == VMDK3_MAGIC))
		return 100;
	if (len >= sizeof(sig) - 1 && !memcmp(head, sig, sizeof(sig) - 1))
		return 100;
	return vmdk_probe_text(head, len) ? 100 : 0;
}

/* ------------------------------------------------------------ headers */

/* "name: vmdk: ..." for a sparse extent header. */
#define H_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: vmdk: " fmt, name, ##__VA_ARGS__)

/* Sectors to bytes for a value read from a file of file_size bytes: the
 * product, or UINT64_MAX when it cannot lie within the file. */
static uint64_t vmdk_sec_bytes(uint64_t sectors, uint64_t file_size)
{
	return sectors > file_size / VMDK_SECTOR ? UINT64_MAX :
						   sectors * VMDK_SECTOR;
}

/* Why a grain directory at sector sec of a file is not usable, given
 * that it is not inside the file: sector 0 is the header. */
static const char *vmdk_where(uint64_t sec)
{
	return sec ? "lies past the end of the file" : "overlaps the header";
}

/* COWD header (libyal "VMware Virtual Disk (VMDK) format", COWD sparse
 * extent file header; QEMU's VMDK3Header), little-endian. */
static int vmdk_cowd_parse(const uint8_t *h, uint64_t file_size,
			   const char *name, struct vmdk_sparse *s,
			   struct vd_err *e)
{
	uint32_t grain_sec, gd_sec;
	uint64_t span, gd_bytes;

	s->cowd = true;
	s->version = get_le32(h + 4);	  /* offset 4: version */
	s->flags = get_le32(h + 8);	  /* offset 8: flags */
	s->capacity = get_le32(h + 12);	  /* offset 12: numSectors */
	grain_sec = get_le32(h + 16);	  /* offset 16: grainSize (sectors) */
	gd_sec = get_le32(h + 20);	  /* offset 20: gdOffset (sectors) */
	s->gd_entries = get_le32(h + 24); /* offset 24: numGDEntries */
	s->gtes = VMDK3_GTES;

	if (!s->capacity)
		return H_FAIL(-EUCLEAN, "COWD capacity is 0 sectors");
	if (!vd_is_pow2(grain_sec) || grain_sec > VMDK_MAX_GRAIN_SECTORS)
		return H_FAIL(-EUCLEAN, "COWD grain size of %u sectors (a "
			      "power of two up to %u expected)", grain_sec,
			      VMDK_MAX_GRAIN_SECTORS);
	s->grain = (uint64_t)grain_sec * VMDK_SECTOR;
	s->grain_bits = (unsigned)__builtin_ctzll(s->grain);
	span = (uint64_t)VMDK3_GTES * grain_sec;
	if (s->gd_entries > VMDK_MAX_GD_ENTRIES ||
	    (uint64_t)s->gd_entries * span < s->capacity)
		return H_FAIL(-EUCLEAN, "COWD grain directory of %u entries "
			      "does not cover the capacity (%llu sectors)",
			      s->gd_entries,
			      (unsigned long long)s->capacity);
	gd_bytes = (uint64_t)s->gd_entries * 4;
	s->gd_off = vmdk_sec_bytes(gd_sec, file_size);
	if (!vd_range_ok(s->gd_off, gd_bytes, file_size))
		return H_FAIL(-EUCLEAN, "grain directory (%u entries at sector "
			      "%u) lies past the end of the file (%llu bytes)",
			      s->gd_entries, gd_sec,
			      (unsigned long long)file_size);
	return 0;
}

/* The footer of a stream-optimized file (Virtual Disk Format 1.1, "The
 * Stream-Optimized Compressed Sparse Extent"): a footer marker, a copy
 * of the header whose gdOffset is real, an end-of-stream marker. */
static bool vmdk_footer_ok(const uint8_t *f)
{
	return get_le32(f + 8) == 0 && get_le32(f + 12) == VMDK_MARKER_FOOTER &&
	       get_le32(f + 512) == VMDK4_MAGIC && get_le64(f + 1024) == 0 &&
	       get_le32(f + 1032) == 0 &&
	       get_le32(f + 1036) == VMDK_MARKER_EOS;
}

int vmdk_sparse_parse(const uint8_t *hdr, const uint8_t *footer,
		      uint64_t file_size, const char *name,
		      struct vmdk_sparse *s, bool *gd_at_end_r,
		      struct vd_err *e)
{
	uint64_t grain_sec, desc_sec, desc_len_sec, gd_sec, rgd_sec, over;
	uint64_t span, gd_bytes;
	uint16_t alg;
	bool gd_ok;

	memset(s, 0, sizeof(*s));
	if (gd_at_end_r)
		*gd_at_end_r = false;
	if (file_size < VMDK_SECTOR)
		return H_FAIL(-EUCLEAN, "file too short for a sparse extent "
			      "header (%llu bytes)",
			      (unsigned long long)file_size);
	if (get_le32(hdr) == VMDK3_MAGIC)
		return vmdk_cowd_parse(hdr, file_size, name, s, e);
	if (get_le32(hdr) != VMDK4_MAGIC)
		return H_FAIL(-EUCLEAN, "not a sparse extent (magic "
			      "%02x%02x%02x%02x)", hdr[0], hdr[1], hdr[2],
			      hdr[3]);

	/* Offsets in SparseExtentHeader (Virtual Disk Format 1.1). */
	gd_sec = get_le64(hdr + 56); /* gdOffset */
	if (gd_sec == VMDK4_GD_AT_END) {
		if (!footer) {
			if (gd_at_end_r) {
				*gd_at_end_r = true;
				return 0;
			}
			return H_FAIL(-EUCLEAN, "grain directory at the end "
				      "but no footer");
		}
		if (!vmdk_footer_ok(footer))
			return H_FAIL(-EUCLEAN, "the header puts the grain "
				      "directory at the end, but there is no "
				      "footer at offset 0x%llx (truncated "
				      "stream-optimized file?)",
				      (unsigned long long)((file_size & ~511ULL) -
							   1536));
		/* The footer's copy of the header is the one to use. */
		hdr = footer + 512;
		gd_sec = get_le64(hdr + 56);
		if (gd_sec == VMDK4_GD_AT_END)
			return H_FAIL(-EUCLEAN, "the footer does not say "
				      "where the grain directory is");
	}
	s->version = get_le32(hdr + 4);	 /* version */
	s->flags = get_le32(hdr + 8);	 /* flags */
	s->capacity = get_le64(hdr + 12); /* capacity (sectors) */
	grain_sec = get_le64(hdr + 20);	 /* grainSize (sectors) */
	desc_sec = get_le64(hdr + 28);	 /* descriptorOffset */
	desc_len_sec = get_le64(hdr + 36); /* descriptorSize */
	s->gtes = get_le32(hdr + 44);	 /* numGTEsPerGT */
	rgd_sec = get_le64(hdr + 48);	 /* rgdOffset */
	over = get_le64(hdr + 64);	 /* overHead (sectors) */
	alg = get_le16(hdr + 77);	 /* compressAlgorithm */

	if (s->version < 1 || s->version > 3)
		return H_FAIL(-ENOTSUP, "sparse extent version %u is not "
			      "supported (1 to 3)", s->version);
	/* Offsets 73-76: "\n \r\n", to detect a text-mode transfer. */
	if (s->flags & VMDK4_FLAG_NL_DETECT &&
	    memcmp(hdr + 73, "\n \r\n", 4))
		return H_FAIL(-EUCLEAN, "the end-of-line check bytes of the "
			      "header are damaged (was the file copied in "
			      "text mode?)");
	if (alg != VMDK4_COMPRESS_NONE && alg != VMDK4_COMPRESS_DEFLATE)
		return H_FAIL(-ENOTSUP, "compression algorithm %u is not "
			      "supported", alg);
	s->compressed = alg == VMDK4_COMPRESS_DEFLATE;
	s->markers = s->flags & VMDK4_FLAG_MARKER;
	s->zero_grain = s->flags & VMDK4_FLAG_ZERO_GRAIN;

	if (desc_sec && desc_len_sec) {
		s->desc_off = vmdk_sec_bytes(desc_sec, file_size);
		s->desc_len = vmdk_sec_bytes(desc_len_sec, file_size);
		if (s->desc_len > VMDK_DESC_MAX_BYTES ||
		    !vd_range_ok(s->desc_off, s->desc_len, file_size))
			return H_FAIL(-EUCLEAN, "embedded descriptor (%llu "
				      "sectors at sector %llu) is not inside "
				      "the file (%llu bytes) or larger than "
				      "%u bytes",
				      (unsigned long long)desc_len_sec,
				      (unsigned long long)desc_sec,
				      (unsigned long long)file_size,
				      VMDK_DESC_MAX_BYTES);
	}
	/* Capacity 0 with a descriptor: the file only holds a descriptor
	 * naming other extents (as qemu reads it); the caller decides. */
	if (!s->capacity) {
		if (s->desc_off)
			return 0;
		return H_FAIL(-EUCLEAN, "capacity is 0 sectors");
	}
	if (s->capacity > VMDK_MAX_SECTORS)
		return H_FAIL(-EUCLEAN, "capacity of %llu sectors is too large",
			      (unsigned long long)s->capacity);
	if (!vd_is_pow2(grain_sec) || grain_sec > VMDK_MAX_GRAIN_SECTORS)
		return H_FAIL(-EUCLEAN, "grain size of %llu sectors (a power "
			      "of two up to %u expected)",
			      (unsigned long long)grain_sec,
			      VMDK_MAX_GRAIN_SECTORS);
	/* A compressed grain is decoded whole, into per-thread buffers. */
	if (s->compressed && grain_sec * VMDK_SECTOR > VMDK_MAX_COMPRESSED_GRAIN)
		return H_FAIL(-ENOTSUP, "compressed grains of %llu sectors "
			      "(at most %u)", (unsigned long long)grain_sec,
			      VMDK_MAX_COMPRESSED_GRAIN / VMDK_SECTOR);
	s->grain = grain_sec * VMDK_SECTOR;
	s->grain_bits = (unsigned)__builtin_ctzll(s->grain);
	if (!s->gtes || s->gtes > VMDK4_MAX_GTES)
		return H_FAIL(-EUCLEAN, "%u entries per grain table (1 to %u "
			      "expected)", s->gtes, VMDK4_MAX_GTES);
	span = grain_sec * s->gtes;
	if ((s->capacity + span - 1) / span > VMDK_MAX_GD_ENTRIES)
		return H_FAIL(-EUCLEAN, "grain directory of more than %u "
			      "entries", VMDK_MAX_GD_ENTRIES);
	s->gd_entries = (uint32_t)((s->capacity + span - 1) / span);
	gd_bytes = (uint64_t)s->gd_entries * 4;
	if (vmdk_sec_bytes(over, file_size) == UINT64_MAX)
		return H_FAIL(-EUCLEAN, "the grains start at sector %llu, past "
			      "the end of the file (%llu bytes): truncated?",
			      (unsigned long long)over,
			      (unsigned long long)file_size);

	s->gd_off = vmdk_sec_bytes(gd_sec, file_size);
	gd_ok = gd_sec && vd_range_ok(s->gd_off, gd_bytes, file_size);
	if (s->flags & VMDK4_FLAG_RGD) {
		s->rgd_off = vmdk_sec_bytes(rgd_sec, file_size);
		if (!rgd_sec || !vd_range_ok(s->rgd_off, gd_bytes, file_size)) {
			/* Said only when the primary is used: when both are
			 * bad, the one-line refusal below says it all. */
			if (gd_ok)
				vd_log(VD_LOG_WARN, "%s: vmdk: redundant grain "
				       "directory (%u entries at sector %llu) "
				       "%s; not using it", name, s->gd_entries,
				       (unsigned long long)rgd_sec,
				       vmdk_where(rgd_sec));
			s->rgd_off = 0;
		}
	}
	if (!gd_ok) {
		if (!s->rgd_off)
			return H_FAIL(-EUCLEAN, "grain directory (%u entries "
				      "at sector %llu) %s (%llu bytes)%s",
				      s->gd_entries,
				      (unsigned long long)gd_sec,
				      vmdk_where(gd_sec),
				      (unsigned long long)file_size,
				      s->flags & VMDK4_FLAG_RGD ?
				      ", and the redundant one is not usable "
				      "either" : "");
		vd_log(VD_LOG_WARN, "%s: vmdk: grain directory (%u entries at "
		       "sector %llu) %s; using the redundant one", name,
		       s->gd_entries, (unsigned long long)gd_sec,
		       vmdk_where(gd_sec));
		s->gd_off = s->rgd_off;
		s->rgd_off = 0;
	}
	return 0;
}

/* ------------------------------------------------------------ opening */

/* Read and check the header of the sparse extent file f (and its footer
 * when the header asks for it). */
static int vmdk_open_sparse(struct vd_file *f, const char *name,
			    struct vmdk_sparse *s, struct vd_err *e)
{
	uint8_t hdr[VMDK_SECTOR] = { 0 }, footer[3 * VMDK_SECTOR];
	uint64_t at;
	bool at_end;
	int ret;

	ret = vd_file_pread(f, hdr, (size_t)VD_MIN(sizeof(hdr), f->size), 0);
	if (ret)
		return H_FAIL(ret, "cannot read the header");
	ret = vmdk_sparse_parse(hdr, NULL, f->size, name, s, &at_end, e);
	if (ret || !at_end)
		return ret;
	if (f->size < 5 * VMDK_SECTOR)
		return H_FAIL(-EUCLEAN, "the header puts the grain directory "
			      "at the end, but the file is too short for a "
			      "footer (%llu bytes)",
			      (unsigned long long)f->size);
	at = (f->size & ~511ULL) - sizeof(footer);
	ret = vd_file_pread(f, footer, sizeof(footer), at);
	if (ret)
		return H_FAIL(ret, "cannot read the footer at 0x%llx",
			      (unsigned long long)at);
	return vmdk_sparse_parse(hdr, footer, f->size, name, s, NULL, e);
}

/* The headers of a seSparse extent file f (vmdk.h). Checked as strictly
 * as QEMU does, the format being undocumented: any field we do not
 * understand refuses the extent. */
static int vmdk_open_sesparse(struct vd_file *f, const char *name,
			      struct vmdk_sparse *s, struct vd_err *e)
{
	uint8_t ch[VMDK_SECTOR], vh[VMDK_SECTOR];
	uint64_t vol_sec, gd_sec, gd_len_sec, gt_sec, grains_sec, gd_bytes;
	uint64_t fsize = f->size;
	int ret;

	memset(s, 0, sizeof(*s));
	if (fsize < VMDK_SECTOR)
		return H_FAIL(-EUCLEAN, "file too short for a seSparse header "
			      "(%llu bytes)", (unsigned long long)fsize);
	ret = vd_file_pread(f, ch, sizeof(ch), 0);
	if (ret)
		return H_FAIL(ret, "cannot read the seSparse header");
	/* Constant header: u64 fields, by index. */
	if (get_le64(ch) != VMDK_SE_CONST_MAGIC)
		return H_FAIL(-EUCLEAN, "not a seSparse extent (magic "
			      "0x%016llx)", (unsigned long long)get_le64(ch));
	if (get_le64(ch + 8) != VMDK_SE_VERSION)
		return H_FAIL(-ENOTSUP, "seSparse version 0x%016llx is not "
			      "supported", (unsigned long long)get_le64(ch + 8));
	s->capacity = get_le64(ch + 16);
	if (get_le64(ch + 24) != VMDK_SE_GRAIN_SECTORS)
		return H_FAIL(-ENOTSUP, "seSparse grain of %llu sectors is not "
			      "supported (only %u)",
			      (unsigned long long)get_le64(ch + 24),
			      VMDK_SE_GRAIN_SECTORS);
	if (get_le64(ch + 32) != VMDK_SE_GT_SECTORS)
		return H_FAIL(-ENOTSUP, "seSparse grain table of %llu sectors "
			      "is not supported (only %u)",
			      (unsigned long long)get_le64(ch + 32),
			      VMDK_SE_GT_SECTORS);
	if (get_le64(ch + 40))
		return H_FAIL(-ENOTSUP, "seSparse flags 0x%016llx are not "
			      "supported", (unsigned long long)get_le64(ch + 40));
	for (unsigned i = 48; i < 80; i++)
		if (ch[i])
			return H_FAIL(-ENOTSUP, "seSparse reserved fields are "
				      "not zero");
	for (unsigned i = 208; i < VMDK_SECTOR; i++)
		if (ch[i])
			return H_FAIL(-ENOTSUP, "seSparse header padding is not "
				      "zero");
	vol_sec = get_le64(ch + 80);
	gd_sec = get_le64(ch + 128);
	gd_len_sec = get_le64(ch + 136);
	gt_sec = get_le64(ch + 144);
	grains_sec = get_le64(ch + 192);

	if (!s->capacity || s->capacity > VMDK_MAX_SECTORS)
		return H_FAIL(-EUCLEAN, "seSparse capacity of %llu sectors",
			      (unsigned long long)s->capacity);
	if (!vol_sec || !vd_range_ok(vmdk_sec_bytes(vol_sec, fsize),
				     VMDK_SECTOR, fsize))
		return H_FAIL(-EUCLEAN, "seSparse volatile header at sector "
			      "%llu %s (%llu bytes)",
			      (unsigned long long)vol_sec, vmdk_where(vol_sec),
			      (unsigned long long)fsize);
	ret = vd_file_pread(f, vh, sizeof(vh), vol_sec * VMDK_SECTOR);
	if (ret)
		return H_FAIL(ret, "cannot read the seSparse volatile header");
	if (get_le64(vh) != VMDK_SE_VOLATILE_MAGIC)
		return H_FAIL(-EUCLEAN, "bad seSparse volatile header magic "
			      "0x%016llx", (unsigned long long)get_le64(vh));
	if (get_le64(vh + 24))
		return H_FAIL(-ENOTSUP, "the seSparse journal needs replaying "
			      "(the image was not closed cleanly)");
	for (unsigned i = 32; i < VMDK_SECTOR; i++)
		if (vh[i])
			return H_FAIL(-ENOTSUP, "seSparse volatile header "
				      "padding is not zero");

	s->se = true;
	s->version = 2;
	s->grain = VMDK_SE_GRAIN_SECTORS * VMDK_SECTOR;
	s->grain_bits = (unsigned)__builtin_ctzll(s->grain);
	s->gtes = VMDK_SE_GTES;
	/* 64 u64 entries per sector of the directory. */
	if (gd_len_sec > VMDK_MAX_GD_ENTRIES / (VMDK_SECTOR / 8))
		return H_FAIL(-EUCLEAN, "seSparse grain directory of %llu "
			      "sectors (at most %u entries)",
			      (unsigned long long)gd_len_sec,
			      VMDK_MAX_GD_ENTRIES);
	s->gd_entries = (uint32_t)(gd_len_sec * (VMDK_SECTOR / 8));
	if ((uint64_t)s->gd_entries * VMDK_SE_GTES * VMDK_SE_GRAIN_SECTORS <
	    s->capacity)
		return H_FAIL(-EUCLEAN, "seSparse grain directory of %u "
			      "entries does not cover the capacity (%llu "
			      "sectors)", s->gd_entries,
			      (unsigned long long)s->capacity);
	gd_bytes = (uint64_t)s->gd_entries * 8;
	s->gd_off = vmdk_sec_bytes(gd_sec, fsize);
	if (!gd_sec || !vd_range_ok(s->gd_off, gd_bytes, fsize))
		return H_FAIL(-EUCLEAN, "seSparse grain directory (%u entries "
			      "at sector %llu) %s (%llu bytes)", s->gd_entries,
			      (unsigned long long)gd_sec, vmdk_where(gd_sec),
			      (unsigned long long)fsize);
	s->se_gt_off = vmdk_sec_bytes(gt_sec, fsize);
	s->se_grains_off = vmdk_sec_bytes(grains_sec, fsize);
	if (!gt_sec || s->se_gt_off > fsize || !grains_sec ||
	    s->se_grains_off > fsize)
		return H_FAIL(-EUCLEAN, "seSparse grain tables (sector %llu) "
			      "or grains (sector %llu) lie past the end of the "
			      "file (%llu bytes)", (unsigned long long)gt_sec,
			      (unsigned long long)grains_sec,
			      (unsigned long long)fsize);
	return 0;
}

/* The text of a descriptor (len <= VMDK_DESC_MAX_BYTES bytes at off),
 * NUL-terminated, parsed. */
static int vmdk_read_desc(struct vd_layer *l, uint64_t off, uint64_t len,
			  struct vmdk_desc *d, struct vd_err *e)
{
	struct vd_err pe = { "" };
	char *text = malloc(len + 1);
	int ret;

	memset(d, 0, sizeof(*d));
	if (!text)
		return V_FAIL(-ENOMEM, "out of memory");
	ret = vd_file_pread(l->file, text, len, off);
	if (ret) {
		free(text);
		return V_FAIL(ret, "cannot read the descriptor");
	}
	text[len] = '\0';
	ret = vmdk_desc_parse(text, len, d, &pe);
	free(text);
	if (ret)
		return V_FAIL(ret, "descriptor %s", pe.msg);
	return 0;
}

/* A twoGbMaxExtent (or flat, or delta) set renamed as a whole: the
 * descriptor is now NEW.vmdk, but still names OLD-s001.vmdk. Returns
 * NEW-s001.vmdk (in the folder the name gives), or NULL when name does
 * not look like an extent of a set (stem-s001, -f001, -flat, -delta). */
static char *vmdk_renamed(const char *desc_path, const char *name)
{
	const char *db = strrchr(desc_path, '/'), *nb = strrchr(name, '/');
	const char *dash, *ext, *suf;
	size_t stem_len, suf_len;
	char *out;

	db = db ? db + 1 : desc_path;
	nb = nb ? nb + 1 : name;
	ext = strrchr(nb, '.');
	dash = strrchr(nb, '-');
	if (!ext || !dash || dash > ext)
		return NULL;
	suf = dash + 1;
	suf_len = (size_t)(ext - suf);
	if (suf_len == 4 && (suf[0] == 's' || suf[0] == 'f') &&
	    strspn(suf + 1, "0123456789") >= 3)
		;
	else if (!(suf_len == 4 && !strncmp(suf, "flat", 4)) &&
		 !(suf_len == 5 && !strncmp(suf, "delta", 5)))
		return NULL;
	stem_len = strlen(db);
	if (stem_len > 5 && !strcasecmp(db + stem_len - 5, ".vmdk"))
		stem_len -= 5;
	if (!stem_len || ((size_t)(dash - nb) == stem_len &&
			  !strncmp(nb, db, stem_len)))
		return NULL; /* the same stem: nothing else to try */
	if (asprintf(&out, "%.*s%.*s%s", (int)(nb - name), name, (int)stem_len,
		     db, dash) < 0)
		return NULL;
	return out;
}

static int vmdk_open_extent_file(struct vd_layer *l, const char *name,
				 struct vd_file **f_r, char **path_r,
				 struct vd_err *e)
{
	struct vd_err e2;
	char *alt;
	int ret;

	ret = vd_layer_open_named(l, name, "extent", f_r, path_r, e);
	if (ret != -ENOENT)
		return ret;
	alt = vmdk_renamed(l->path, name);
	if (!alt)
		return ret;
	if (vd_layer_open_named(l, alt, "extent", f_r, path_r, &e2)) {
		free(alt);
		return ret; /* report the name the descriptor gives */
	}
	vd_log(VD_LOG_WARN, "%s: vmdk: extent '%s' not found; using '%s' "
	       "(the set was renamed)", l->path, name, alt);
	free(alt);
	return 0;
}

static const char *const vmdk_create_types[] = {
	"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
	"twoGbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsSparse",
	"vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick", "custom",
	"seSparse",
};

static int vmdk_check_create_type(struct vd_layer *l, const char *ct,
				  struct vd_err *e)
{
	if (!ct)
		return V_FAIL(-EUCLEAN, "descriptor has no createType");
	for (unsigned i = 0; i < VD_ARRAY_SIZE(vmdk_create_types); i++)
		if (!strcmp(ct, vmdk_create_types[i]))
			return 0;
	/* vmfsRaw, vmfsRawDeviceMap, fullDevice, partitionedDevice name host
	 * devices. */
	return V_FAIL(-ENOTSUP, "createType '%s' is not supported", ct);
}

/* The descriptor's words for extent types, as qemu-img info shows them. */
static const char *const vmdk_kind_names[] = {
	[VMDK_EXT_FLAT] = "FLAT",
	[VMDK_EXT_SPARSE] = "SPARSE",
	[VMDK_EXT_ZERO] = "ZERO",
	[VMDK_EXT_VMFS] = "VMFS",
	[VMDK_EXT_VMFSSPARSE] = "VMFSSPARSE",
	[VMDK_EXT_SESPARSE] = "SESPARSE",
};

/* Open the extents a descriptor lists, after the layer's own. */
static int vmdk_open_extents(struct vd_layer *l, struct vmdk *v,
			     const struct vmdk_desc *d, struct vd_err *e)
{
	uint64_t start = 0;
	int ret;

	v->ext = calloc(d->n_ext ? d->n_ext : 1, sizeof(*v->ext));
	if (!v->ext)
		return V_FAIL(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < d->n_ext; i++) {
		const struct vmdk_desc_extent *de = &d->ext[i];
		struct vmdk_extent *x = &v->ext[v->n_ext];
		uint64_t bytes = de->sectors * VMDK_SECTOR;

		if (de->access == VMDK_NOACCESS) {
			vd_log(VD_LOG_WARN, "%s: vmdk: skipping the NOACCESS "
			       "extent on descriptor line %u, as qemu does",
			       l->path, de->line);
			continue;
		}
		x->kind = vmdk_kind_names[de->type];
		if (de->type == VMDK_EXT_VMFS)
			x->type = VMDK_EXT_FLAT;
		else if (de->type == VMDK_EXT_VMFSSPARSE ||
			 de->type == VMDK_EXT_SESPARSE)
			x->type = VMDK_EXT_SPARSE;
		else
			x->type = de->type;
		x->start = start;
		x->size = bytes;
		if (x->type != VMDK_EXT_ZERO) {
			/* Extents naming one file share it. */
			for (unsigned k = 0; k < v->n_ext && !x->file; k++)
				if (v->ext[k].own_file &&
				    !strcmp(d->ext[v->ext[k].name_idx].name,
					    de->name)) {
					x->file = v->ext[k].file;
					x->name = v->ext[k].name;
				}
			if (!x->file) {
				ret = vmdk_open_extent_file(l, de->name,
							    &x->file,
							    &x->name, e);
				if (ret)
					return ret;
				x->own_file = true;
				l->alloc += x->file->alloc;
			}
			x->name_idx = i;
		}
		v->n_ext++;
		if (x->type == VMDK_EXT_FLAT) {
			uint64_t off = de->offset * VMDK_SECTOR;

			x->flat_off = off;
			if (!vd_range_ok(off, bytes, x->file->size))
				return V_FAIL(-EUCLEAN, "extent '%s' (line %u) "
					      "holds %llu bytes at offset %llu, "
					      "but the file has %llu bytes",
					      de->name, de->line,
					      (unsigned long long)bytes,
					      (unsigned long long)off,
					      (unsigned long long)x->file->size);
		} else if (x->type == VMDK_EXT_SPARSE) {
			if (de->type == VMDK_EXT_SESPARSE)
				ret = vmdk_open_sesparse(x->file, x->file->path,
							 &x->sp, e);
			else
				ret = vmdk_open_sparse(x->file, x->file->path,
						       &x->sp, e);
			if (ret)
				return ret;
			if (!x->sp.capacity)
				return V_FAIL(-EUCLEAN, "extent '%s' (line %u) "
					      "is a descriptor, not a sparse "
					      "extent", de->name, de->line);
			if (x->sp.capacity != de->sectors)
				return V_FAIL(-EUCLEAN, "extent '%s' (line %u) "
					      "has %llu sectors, but the "
					      "descriptor says %llu", de->name,
					      de->line,
					      (unsigned long long)x->sp.capacity,
					      (unsigned long long)de->sectors);
		}
		start += bytes;
	}
	if (!v->n_ext)
		return V_FAIL(-EUCLEAN, "descriptor names no extents");
	l->size = start;
	return 0;
}

static void vmdk_close(struct vd_layer *l)
{
	struct vmdk *v = l->priv;

	if (!v)
		return;
	for (unsigned i = 0; i < v->n_ext; i++)
		if (v->ext[i].own_file) {
			vd_file_close(v->ext[i].file);
			free(v->ext[i].name);
		}
	free(v->ext);
	free(v);
	l->priv = NULL;
}

/* Take the CIDs and the parent from a parsed descriptor. */
static int vmdk_take_desc(struct vd_layer *l, struct vmdk *v,
			  struct vmdk_desc *d, struct vd_err *e)
{
	(void)e;
	v->has_cid = d->has_cid;
	v->cid = d->cid;
	v->parent_cid = d->has_parent_cid ? d->parent_cid : VMDK_CID_NONE;
	if (d->create_type)
		snprintf(v->create_type, sizeof(v->create_type), "%s",
			 d->create_type);
	if (d->parent_hint) {
		l->backing_name = d->parent_hint;
		d->parent_hint = NULL;
		/* No format recorded: the parent is probed, as qemu probes
		 * it, so a parent of another format (a chain mixing
		 * formats) reads too; the CID check applies to VMDK
		 * parents. */
	}
	return 0;
}

static int vmdk_open(struct vd_layer *l, const struct vd_layer_opts *o,
		     struct vd_err *e)
{
	struct vd_file *f = l->file;
	struct vmdk_desc d = { 0 };
	uint8_t head[4] = { 0 };
	struct vmdk *v;
	int ret;

	(void)o;
	v = calloc(1, sizeof(*v));
	if (!v)
		return V_FAIL(-ENOMEM, "out of memory");
	l->priv = v;
	if (f->size >= 4) {
		ret = vd_file_pread(f, head, 4, 0);
		if (ret) {
			ret = V_FAIL(ret, "cannot read the file");
			goto fail;
		}
	}

	if (get_le32(head) == VMDK4_MAGIC || get_le32(head) == VMDK3_MAGIC) {
		struct vmdk_extent *x;
		struct vmdk_sparse sp;

		ret = vmdk_open_sparse(f, l->path, &sp, e);
		if (ret)
			goto fail;
		if (sp.desc_off) {
			ret = vmdk_read_desc(l, sp.desc_off, sp.desc_len, &d, e);
			if (ret)
				goto fail;
		}
		if (!sp.capacity) {
			/* Only a descriptor, naming other files. */
			ret = vmdk_check_create_type(l, d.create_type, e);
			if (!ret)
				ret = vmdk_open_extents(l, v, &d, e);
		} else {
			/* One sparse extent; the lines of its embedded
			 * descriptor only describe the file itself. */
			v->ext = x = calloc(1, sizeof(*x));
			if (!x) {
				ret = V_FAIL(-ENOMEM, "out of memory");
				goto fail;
			}
			v->n_ext = 1;
			x->type = VMDK_EXT_SPARSE;
			x->kind = "";
			x->file = f;
			x->size = sp.capacity * VMDK_SECTOR;
			x->sp = sp;
			l->size = x->size;
			ret = 0;
		}
	} else {
		if (f->size > VMDK_DESC_MAX_BYTES) {
			ret = V_FAIL(-EUCLEAN, "not a sparse extent, and too "
				     "large for a descriptor (%llu bytes)",
				     (unsigned long long)f->size);
			goto fail;
		}
		ret = vmdk_read_desc(l, 0, f->size, &d, e);
		if (!ret)
			ret = vmdk_check_create_type(l, d.create_type, e);
		if (!ret)
			ret = vmdk_open_extents(l, v, &d, e);
	}
	if (!ret)
		ret = vmdk_take_desc(l, v, &d, e);
	if (ret)
		goto fail;
	vmdk_desc_free(&d);
	return 0;
fail:
	vmdk_desc_free(&d);
	vmdk_close(l);
	return ret;
}

/* The delta link: this layer's parentCID must be the parent's CID, or
 * the parent changed after this child was made. */
static int vmdk_check_backing(struct vd_layer *l, struct vd_err *e)
{
	const struct vmdk *v = l->priv, *pv;
	const struct vd_layer *p = l->backing;

	if (!p || p->fmt != &vd_format_vmdk)
		return 0;
	pv = p->priv;
	if (pv->has_cid && pv->cid == v->parent_cid)
		return 0;
	if (!pv->has_cid)
		return V_FAIL(-EUCLEAN, "parentCID %08x, but the parent '%s' "
			      "has no CID; --ignore-parent-id mounts it anyway",
			      v->parent_cid, p->path);
	return V_FAIL(-EUCLEAN, "parentCID %08x does not match the CID %08x "
		      "of the parent '%s' (was the parent changed after this "
		      "child was made?); --ignore-parent-id mounts it anyway",
		      v->parent_cid, pv->cid, p->path);
}

/* Grains are zlib streams (deflate with the zlib header and checksum).
 * The stream must end, so that its checksum is checked: right where the
 * unit does, or later for the last grain of an extent, which VMware pads
 * to a whole grain (qemu compresses only the bytes up to the end). */
static int vmdk_decompress(struct vd_layer *l, const uint8_t *in,
			   size_t in_len, uint8_t *out, size_t out_len)
{
	uint8_t scratch[4096];
	z_stream z = { 0 };
	size_t extra = 0;
	int zr;

	(void)l;
	if (inflateInit2(&z, 15) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	zr = inflate(&z, Z_FINISH);
	/* Ends: each pass produces output or stops, and the padding is at
	 * most one largest compressed grain. */
	while ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_out == 0 &&
	       extra < VMDK_MAX_COMPRESSED_GRAIN) {
		z.next_out = scratch;
		z.avail_out = sizeof(scratch);
		zr = inflate(&z, Z_FINISH);
		if (z.avail_out == sizeof(scratch) && zr != Z_STREAM_END)
			break;
		extra += sizeof(scratch) - z.avail_out;
	}
	if (z.total_out < out_len)
		zr = Z_DATA_ERROR;
	inflateEnd(&z);
	return zr == Z_STREAM_END ? 0 : -EIO;
}

static void vmdk_describe(const struct vd_layer *l, struct vd_layer_info *i)
{
	const struct vmdk *v = l->priv;

	snprintf(i->subformat, sizeof(i->subformat), "%s", v->create_type);
	i->has_cid = v->has_cid;
	i->cid = v->cid;
	i->parent_cid = v->parent_cid;
	/* As qemu-img: the first extent's grain stands for the image. */
	if (v->n_ext && v->ext[0].type == VMDK_EXT_SPARSE)
		i->cluster_size = (uint32_t)v->ext[0].sp.grain;
	i->extents = calloc(v->n_ext, sizeof(*i->extents));
	if (!i->extents) {
		i->incomplete = true;
		return;
	}
	for (unsigned k = 0; k < v->n_ext; k++) {
		const struct vmdk_extent *x = &v->ext[k];
		struct vd_layer_extent *o = &i->extents[k];

		o->filename = x->name ? x->name : l->path;
		o->type = x->kind ? x->kind : "";
		o->virtual_size = x->size;
		if (x->type == VMDK_EXT_SPARSE) {
			o->cluster_size = (uint32_t)x->sp.grain;
			o->compressed = x->sp.compressed;
		}
		if (o->compressed)
			snprintf(i->compression, sizeof(i->compression),
				 "deflate");
	}
	i->n_extents = v->n_ext;
}

const struct vd_format vd_format_vmdk = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.map = vmdk_map,
	.decompress = vmdk_decompress,
	.describe = vmdk_describe,
	.check_backing = vmdk_check_backing,
	.close = vmdk_close,
};
