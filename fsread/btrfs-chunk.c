/* btrfs: checksums, the chunk map (logical -> device addresses) and
 * logical reads.
 *
 * Every address in btrfs' trees is logical. A chunk maps a logical range
 * onto stripes on devices by its profile: single and DUP (one device,
 * one or two copies), RAID1/RAID1C3/RAID1C4 (a copy per stripe), RAID0
 * (striped by stripe_len), RAID10 (striped over mirrored groups of
 * sub_stripes). RAID5/6 chunks are refused, each with a notice: their
 * parity layout is not read here.
 *
 * The chunks come from the superblock's sys_chunk_array (enough to read
 * the chunk tree) and then the chunk tree itself. Every chunk is checked
 * once at mount (its profile's stripe count, its stripes inside their
 * devices, no overlap), so the read path computes without re-checking.
 *
 * Data checksums live in the checksum tree, one per sector keyed by the
 * logical address; a sector that fails its checksum is read from the
 * next copy, and fails the read with EIO (logged) when no copy is good. */
#include <blake2.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/sha.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "fsread/btrfs.h"

/* The most chunks one filesystem may have: a 16 TiB filesystem of 1 GiB
 * data chunks has 16,384. */
#define BTRFS_MAX_CHUNKS (1u << 20)
#define BTRFS_MAX_STRIPES 256u
#define BTRFS_CHUNK_LEN 48u
#define BTRFS_STRIPE_LEN 32u
#define SB_SYS_ARRAY_SIZE 0xa0
#define SB_SYS_ARRAY 0x32b
#define SB_SYS_ARRAY_MAX 2048u

/* ---- checksums ---- */

bool vd_btrfs_fuzzing;

uint32_t vd_btrfs_name_hash(const char *name, size_t len)
{
	return vd_crc32c(~1u, name, len);
}

void vd_btrfs_csum(const struct btrfs_fs *fs, const void *b, size_t len,
		   uint8_t *out)
{
	memset(out, 0, BTRFS_CSUM_SIZE);
	switch (fs->csum_type) {
	case 0: { /* crc32c, stored inverted as the kernel's crc32c_final */
		uint32_t c = ~vd_crc32c(0xffffffffu, b, len);

		out[0] = (uint8_t)c;
		out[1] = (uint8_t)(c >> 8);
		out[2] = (uint8_t)(c >> 16);
		out[3] = (uint8_t)(c >> 24);
		break;
	}
	case 1: { /* xxhash64, seed 0, little-endian */
		uint64_t h = XXH64(b, len, 0);

		for (int i = 0; i < 8; i++)
			out[i] = (uint8_t)(h >> (8 * i));
		break;
	}
	case 2: { /* sha256 */
		struct vd_sha s;

		vd_sha_init(&s, VD_SHA256);
		vd_sha_update(&s, b, len);
		vd_sha_final(&s, out);
		break;
	}
	case 3: /* BLAKE2b-256 */
		blake2b(out, b, NULL, 32, len, 0);
		break;
	}
}

/* ---- chunks ---- */

static unsigned chunk_copies(const struct btrfs_chunk *c)
{
	if (c->type & (BTRFS_BG_RAID1 | BTRFS_BG_RAID1C3 | BTRFS_BG_RAID1C4 |
		       BTRFS_BG_DUP))
		return c->num_stripes;
	if (c->type & BTRFS_BG_RAID10)
		return c->sub_stripes;
	if (c->type & (BTRFS_BG_RAID5 | BTRFS_BG_RAID6))
		return 0;
	return 1;
}

static const char *chunk_profile(uint64_t type)
{
	if (type & BTRFS_BG_RAID0)
		return "RAID0";
	if (type & BTRFS_BG_RAID1)
		return "RAID1";
	if (type & BTRFS_BG_DUP)
		return "DUP";
	if (type & BTRFS_BG_RAID10)
		return "RAID10";
	if (type & BTRFS_BG_RAID5)
		return "RAID5";
	if (type & BTRFS_BG_RAID6)
		return "RAID6";
	if (type & BTRFS_BG_RAID1C3)
		return "RAID1C3";
	if (type & BTRFS_BG_RAID1C4)
		return "RAID1C4";
	return "single";
}

static const struct vd_vol *chunk_dev(struct btrfs_fs *fs, uint64_t devid)
{
	for (size_t i = 0; i < fs->ndevs; i++)
		if (fs->devs[i].devid == devid)
			return fs->devs[i].vol;
	return NULL;
}

/* Parse and check the chunk item p[size] at logical; c->stripes is
 * malloc'ed. */
static int chunk_parse(struct btrfs_fs *fs, uint64_t logical,
		       const uint8_t *p, size_t size, struct btrfs_chunk *c,
		       struct vd_err *e)
{
	uint64_t profiles = BTRFS_BG_RAID0 | BTRFS_BG_RAID1 | BTRFS_BG_DUP |
			    BTRFS_BG_RAID10 | BTRFS_BG_RAID5 | BTRFS_BG_RAID6 |
			    BTRFS_BG_RAID1C3 | BTRFS_BG_RAID1C4;
	unsigned n, min = 1, data;
	uint64_t per;

	if (size < BTRFS_CHUNK_LEN)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %" PRIu64
			       ": item of %zu bytes is too short", fs->name,
			       logical, size);
	memset(c, 0, sizeof(*c));
	c->logical = logical;
	c->len = get_le64(p);
	c->stripe_len = get_le64(p + 16);
	c->type = get_le64(p + 24);
	c->num_stripes = n = get_le16(p + 44);
	c->sub_stripes = get_le16(p + 46);
	if (!n || n > BTRFS_MAX_STRIPES ||
	    size < BTRFS_CHUNK_LEN + (size_t)n * BTRFS_STRIPE_LEN)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %" PRIu64
			       ": %u stripes do not fit its %zu bytes",
			       fs->name, logical, n, size);
	if (!c->len || c->len % fs->sectorsize || logical % fs->sectorsize ||
	    !vd_range_ok(logical, c->len, UINT64_MAX) ||
	    !vd_is_pow2(c->stripe_len) || c->stripe_len < fs->sectorsize ||
	    c->stripe_len > (1u << 30))
		return vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %" PRIu64
			       ": length %" PRIu64 " or stripe length %" PRIu64
			       " is invalid", fs->name, logical, c->len,
			       c->stripe_len);
	if (!vd_is_pow2(c->type & profiles) && (c->type & profiles))
		return vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %" PRIu64
			       ": several profiles in type 0x%" PRIx64,
			       fs->name, logical, c->type);
	data = n;
	if (c->type & (BTRFS_BG_RAID1 | BTRFS_BG_DUP)) {
		min = 2;
		data = 1;
	} else if (c->type & BTRFS_BG_RAID1C3) {
		min = 3;
		data = 1;
	} else if (c->type & BTRFS_BG_RAID1C4) {
		min = 4;
		data = 1;
	} else if (c->type & BTRFS_BG_RAID10) {
		min = 2;
		if (c->sub_stripes < 2 || n % c->sub_stripes)
			return vd_fail(e, -EUCLEAN, "%s: btrfs: RAID10 chunk at %"
				       PRIu64 ": %u stripes in groups of %u",
				       fs->name, logical, n, c->sub_stripes);
		data = n / c->sub_stripes;
	} else if (c->type & BTRFS_BG_RAID5) {
		min = 2;
		data = n - 1;
	} else if (c->type & BTRFS_BG_RAID6) {
		min = 3;
		data = n - 2;
	} else if (!(c->type & BTRFS_BG_RAID0)) {
		data = 1;
	}
	if (n < min || (!(c->type & profiles) && n != 1) ||
	    ((c->type & BTRFS_BG_DUP) && n != 2) ||
	    ((c->type & (BTRFS_BG_RAID1 | BTRFS_BG_RAID1C3 | BTRFS_BG_RAID1C4)) &&
	     n != min))
		return vd_fail(e, -EUCLEAN, "%s: btrfs: %s chunk at %" PRIu64
			       " has %u stripes", fs->name,
			       chunk_profile(c->type), logical, n);
	/* What each stripe holds on its device. */
	per = c->len / data;
	if ((c->type & (BTRFS_BG_RAID0 | BTRFS_BG_RAID10 | BTRFS_BG_RAID5 |
			BTRFS_BG_RAID6)) &&
	    (c->len % data || per % c->stripe_len))
		return vd_fail(e, -EUCLEAN, "%s: btrfs: %s chunk at %" PRIu64
			       ": length %" PRIu64 " is not whole stripes",
			       fs->name, chunk_profile(c->type), logical,
			       c->len);
	c->stripes = calloc(n, sizeof(*c->stripes));
	if (!c->stripes)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *s = p + BTRFS_CHUNK_LEN + i * BTRFS_STRIPE_LEN;
		struct btrfs_stripe *st = &c->stripes[i];

		st->devid = get_le64(s);
		st->offset = get_le64(s + 8);
		st->vol = chunk_dev(fs, st->devid);
		if (st->vol && !vd_range_ok(st->offset, per, st->vol->len)) {
			int ret = vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %"
					  PRIu64 ": stripe %u (%" PRIu64 " bytes "
					  "at %" PRIu64 ") lies past the end of "
					  "device %" PRIu64 " (%" PRIu64 " bytes)",
					  fs->name, logical, i, per, st->offset,
					  st->devid, st->vol->len);

			free(c->stripes);
			c->stripes = NULL;
			return ret;
		}
	}
	return 0;
}

static struct btrfs_chunk *chunk_find(struct btrfs_fs *fs, uint64_t logical)
{
	size_t lo = 0, hi = fs->nchunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fs->chunks[mid].logical <= logical)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && logical - fs->chunks[lo - 1].logical < fs->chunks[lo - 1].len)
		return &fs->chunks[lo - 1];
	return NULL;
}

/* Add c (taken over), keeping the table sorted; the same chunk twice
 * (the system chunks appear in the array and the tree) is kept once. */
static int chunk_add(struct btrfs_fs *fs, struct btrfs_chunk *c,
		     struct vd_err *e)
{
	size_t i = fs->nchunks;

	while (i && fs->chunks[i - 1].logical > c->logical)
		i--;
	if (i && fs->chunks[i - 1].logical == c->logical &&
	    fs->chunks[i - 1].len == c->len) {
		free(c->stripes);
		return 0;
	}
	if ((i && fs->chunks[i - 1].logical + fs->chunks[i - 1].len >
			  c->logical) ||
	    (i < fs->nchunks && c->logical + c->len > fs->chunks[i].logical)) {
		free(c->stripes);
		return vd_fail(e, -EUCLEAN, "%s: btrfs: chunk at %" PRIu64
			       " (%" PRIu64 " bytes) overlaps another",
			       fs->name, c->logical, c->len);
	}
	if (fs->nchunks >= BTRFS_MAX_CHUNKS) {
		free(c->stripes);
		return vd_fail(e, -EUCLEAN, "%s: btrfs: more than %u chunks",
			       fs->name, BTRFS_MAX_CHUNKS);
	}
	if (!(fs->nchunks & (fs->nchunks + 1)) || !fs->nchunks) {
		size_t cap = fs->nchunks ? 2 * (fs->nchunks + 1) : 16;
		struct btrfs_chunk *n = realloc(fs->chunks, cap * sizeof(*n));

		if (!n) {
			free(c->stripes);
			return -ENOMEM;
		}
		fs->chunks = n;
	}
	memmove(&fs->chunks[i + 1], &fs->chunks[i],
		(fs->nchunks - i) * sizeof(*c));
	fs->chunks[i] = *c;
	fs->nchunks++;
	return 0;
}

int vd_btrfs_load_chunks(struct btrfs_fs *fs, const uint8_t *sb,
			 struct vd_err *e)
{
	uint32_t asize = get_le32(sb + SB_SYS_ARRAY_SIZE);
	const uint8_t *a = sb + SB_SYS_ARRAY;
	struct btrfs_path p;
	struct btrfs_key k = { BTRFS_FIRST_CHUNK_TREE_OBJECTID,
			       BTRFS_CHUNK_ITEM_KEY, 0 };
	size_t pos = 0;
	int ret;

	if (asize > SB_SYS_ARRAY_MAX)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: superblock system "
			       "chunk array of %" PRIu32 " bytes exceeds %u",
			       fs->name, asize, SB_SYS_ARRAY_MAX);
	/* Ends: each entry moves pos forward by at least 17 + 48 bytes. */
	while (pos < asize) {
		struct btrfs_key ck;
		struct btrfs_chunk c;
		size_t n;

		if (asize - pos < 17 + BTRFS_CHUNK_LEN)
			return vd_fail(e, -EUCLEAN, "%s: btrfs: system chunk "
				       "array entry at %zu is cut short",
				       fs->name, pos);
		vd_btrfs_key_read(a + pos, &ck);
		n = BTRFS_CHUNK_LEN +
		    (size_t)get_le16(a + pos + 17 + 44) * BTRFS_STRIPE_LEN;
		if (ck.type != BTRFS_CHUNK_ITEM_KEY || n > asize - pos - 17)
			return vd_fail(e, -EUCLEAN, "%s: btrfs: system chunk "
				       "array entry at %zu (key type %u) is "
				       "invalid", fs->name, pos, ck.type);
		ret = chunk_parse(fs, ck.offset, a + pos + 17, n, &c, e);
		if (!ret)
			ret = chunk_add(fs, &c, e);
		if (ret)
			return ret;
		pos += 17 + n;
	}
	if (!fs->nchunks)
		return vd_fail(e, -EUCLEAN, "%s: btrfs: the superblock maps no "
			       "system chunk", fs->name);
	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &fs->chunk_root, &k);
	/* Ends: the tree's keys strictly increase (vd_btrfs_next). */
	while (!ret) {
		const uint8_t *d;
		uint32_t size;
		struct btrfs_chunk c;

		vd_btrfs_item(&p, &k, &d, &size);
		if (k.objectid != BTRFS_FIRST_CHUNK_TREE_OBJECTID ||
		    k.type != BTRFS_CHUNK_ITEM_KEY)
			break;
		ret = chunk_parse(fs, k.offset, d, size, &c, e);
		if (!ret)
			ret = chunk_add(fs, &c, e);
		if (ret)
			break;
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	if (ret < 0)
		return e && !e->msg[0] ?
			       vd_fail(e, ret, "%s: btrfs: the chunk tree is "
				       "unreadable", fs->name) :
			       ret;
	for (size_t i = 0; i < fs->nchunks; i++)
		for (unsigned s = 0; s < fs->chunks[i].num_stripes; s++)
			if (!fs->chunks[i].stripes[s].vol) {
				vd_log(VD_LOG_WARN, "%s: btrfs: device %" PRIu64
				       " is missing: what only it holds "
				       "reads as EIO", fs->name,
				       fs->chunks[i].stripes[s].devid);
				i = fs->nchunks;
				break;
			}
	return 0;
}

void vd_btrfs_free_chunks(struct btrfs_fs *fs)
{
	for (size_t i = 0; i < fs->nchunks; i++)
		free(fs->chunks[i].stripes);
	free(fs->chunks);
	fs->chunks = NULL;
	fs->nchunks = 0;
}

unsigned vd_btrfs_copies(struct btrfs_fs *fs, uint64_t logical)
{
	struct btrfs_chunk *c = chunk_find(fs, logical);

	return c ? VD_MAX(chunk_copies(c), 1u) : 0;
}

/* Copy mirror of the bytes at logical inside c: the stripe and its
 * device offset, and how many bytes follow there in the run. */
static int chunk_map(struct btrfs_fs *fs, const struct btrfs_chunk *c,
		     uint64_t logical, unsigned mirror,
		     const struct btrfs_stripe **st_r, uint64_t *phys_r,
		     uint64_t *len_r)
{
	uint64_t off = logical - c->logical, sn, so, row;
	unsigned idx;

	if (c->type & (BTRFS_BG_RAID5 | BTRFS_BG_RAID6)) {
		if (!__atomic_exchange_n(&fs->reported_raid56, true,
					 __ATOMIC_RELAXED))
			vd_log(VD_LOG_ERR, "%s: btrfs: %s chunks (at %" PRIu64
			       " and maybe others) are not read: what they "
			       "hold reads as EIO", fs->name,
			       chunk_profile(c->type), c->logical);
		return -EIO;
	}
	if (mirror >= chunk_copies(c))
		return -EINVAL;
	if (c->type & (BTRFS_BG_RAID0 | BTRFS_BG_RAID10)) {
		unsigned groups = c->type & BTRFS_BG_RAID10 ?
					  c->num_stripes / c->sub_stripes :
					  c->num_stripes;
		unsigned width = c->type & BTRFS_BG_RAID10 ? c->sub_stripes : 1;

		sn = off / c->stripe_len;
		so = off % c->stripe_len;
		idx = (unsigned)(sn % groups) * width + mirror;
		row = sn / groups;
		*phys_r = c->stripes[idx].offset + row * c->stripe_len + so;
		*len_r = c->stripe_len - so;
	} else {
		idx = mirror;
		*phys_r = c->stripes[idx].offset + off;
		*len_r = c->len - off;
	}
	*st_r = &c->stripes[idx];
	return 0;
}

int vd_btrfs_read_copy(struct btrfs_fs *fs, void *buf, size_t len,
		       uint64_t logical, unsigned mirror)
{
	uint8_t *out = buf;

	/* Ends: each pass reads at least one byte or fails. */
	while (len) {
		struct btrfs_chunk *c = chunk_find(fs, logical);
		const struct btrfs_stripe *st;
		uint64_t phys, run;
		int ret;

		if (!c) {
			vd_log(VD_LOG_ERR, "%s: btrfs: logical address %" PRIu64
			       " lies in no chunk", fs->name, logical);
			return -EIO;
		}
		ret = chunk_map(fs, c, logical, mirror, &st, &phys, &run);
		if (ret)
			return ret;
		if (!st->vol)
			return -ENXIO;
		run = VD_MIN(run, (uint64_t)len);
		if (vd_vol_read(st->vol, out, (size_t)run, phys))
			return -EIO;
		out += run;
		len -= (size_t)run;
		logical += run;
	}
	return 0;
}

int vd_btrfs_map_plain(struct btrfs_fs *fs, uint64_t logical,
		       uint64_t *len_r, uint64_t *vol_off_r)
{
	struct btrfs_chunk *c = chunk_find(fs, logical);
	const struct btrfs_stripe *st;
	uint64_t phys, run;

	if (!c || chunk_map(fs, c, logical, 0, &st, &phys, &run) ||
	    st->vol != fs->base.vol)
		return -ENXIO;
	*len_r = VD_MIN(*len_r, run);
	*vol_off_r = phys;
	return 0;
}

/* The checksums of nsect sectors from logical: have[i] when sector i has
 * one (a file without checksums, or prealloc'ed space, has none). */
static int csum_lookup(struct btrfs_fs *fs, uint64_t logical, size_t nsect,
		       uint8_t *sums, bool *have)
{
	struct btrfs_key k = { BTRFS_EXTENT_CSUM_OBJECTID,
			       BTRFS_EXTENT_CSUM_KEY, logical };
	uint64_t end = logical + nsect * fs->sectorsize;
	struct btrfs_path p;
	int ret;

	memset(have, 0, nsect * sizeof(*have));
	if (!fs->has_csum_root)
		return 0;
	vd_btrfs_path_init(&p, fs);
	ret = vd_btrfs_search(&p, &fs->csum_root, &k);
	if (ret == 0) {
		struct btrfs_key f;
		const uint8_t *d;
		uint32_t size;

		vd_btrfs_item(&p, &f, &d, &size);
		if (vd_btrfs_key_cmp(&f, &k) > 0)
			ret = vd_btrfs_prev(&p);
	} else if (ret == 1) {
		ret = vd_btrfs_prev(&p);
	}
	/* Ends: keys strictly increase, and we stop past end. */
	while (ret == 0) {
		struct btrfs_key f;
		const uint8_t *d;
		uint32_t size;
		uint64_t n, first, last;

		vd_btrfs_item(&p, &f, &d, &size);
		if (f.objectid == BTRFS_EXTENT_CSUM_OBJECTID &&
		    f.type == BTRFS_EXTENT_CSUM_KEY) {
			if (f.offset >= end)
				break;
			n = size / fs->csum_size;
			if (f.offset % fs->sectorsize == 0 &&
			    n <= (UINT64_MAX - f.offset) / fs->sectorsize) {
				first = VD_MAX(f.offset, logical);
				last = VD_MIN(f.offset + n * fs->sectorsize, end);
				for (uint64_t a = first; a < last;
				     a += fs->sectorsize) {
					size_t i = (a - logical) / fs->sectorsize;

					memcpy(sums + i * fs->csum_size,
					       d + (a - f.offset) / fs->sectorsize *
							   fs->csum_size,
					       fs->csum_size);
					have[i] = true;
				}
			}
		} else if (vd_btrfs_key_cmp(&f, &k) > 0) {
			break;
		}
		ret = vd_btrfs_next(&p);
	}
	vd_btrfs_path_free(&p);
	return ret < 0 ? ret : 0;
}

int vd_btrfs_read_data(struct btrfs_fs *fs, void *buf, size_t len,
		       uint64_t logical, bool verify)
{
	unsigned copies = vd_btrfs_copies(fs, logical), ss = fs->sectorsize;
	size_t nsect = len / ss;
	uint8_t *sums = NULL, *out = buf, sum[BTRFS_CSUM_SIZE];
	bool *have = NULL;
	int ret = -EIO;

	if (!copies) {
		vd_log(VD_LOG_ERR, "%s: btrfs: data at %" PRIu64 " lies in no "
		       "chunk", fs->name, logical);
		return -EIO;
	}
	if (!verify || len % ss || logical % ss) {
		for (unsigned m = 0; m < copies && ret; m++)
			ret = vd_btrfs_read_copy(fs, buf, len, logical, m);
		if (ret) {
			vd_log(VD_LOG_ERR, "%s: btrfs: data at %" PRIu64
			       " (%zu bytes) unreadable", fs->name, logical,
			       len);
			return -EIO;
		}
		return 0;
	}
	sums = malloc(nsect * fs->csum_size);
	have = malloc(nsect * sizeof(*have));
	if (!sums || !have) {
		ret = -ENOMEM;
		goto out;
	}
	ret = csum_lookup(fs, logical, nsect, sums, have);
	if (ret)
		goto out;
	ret = vd_btrfs_read_copy(fs, buf, len, logical, 0);
	if (ret && copies < 2)
		goto bad;
	for (size_t i = 0; i < nsect; i++) {
		uint8_t *s = out + i * ss;
		unsigned m = 0;

		if (ret) { /* copy 0 unreadable: every sector from another */
			m = 1;
			if (vd_btrfs_read_copy(fs, s, ss, logical + i * ss, m))
				goto bad;
		}
		if (!have[i])
			continue;
		/* Ends: at most one pass per copy. */
		for (;;) {
			vd_btrfs_csum(fs, s, ss, sum);
			if (!memcmp(sum, sums + i * fs->csum_size,
				    fs->csum_size) || vd_btrfs_fuzzing)
				break;
			vd_log(VD_LOG_ERR, "%s: btrfs: data sector at %" PRIu64
			       " (copy %u) fails its %s checksum", fs->name,
			       logical + i * ss, m + 1, fs->csum_name);
			if (++m >= copies ||
			    vd_btrfs_read_copy(fs, s, ss, logical + i * ss, m)) {
				ret = -EIO;
				goto out;
			}
		}
	}
	ret = 0;
	goto out;
bad:
	vd_log(VD_LOG_ERR, "%s: btrfs: data at %" PRIu64 " (%zu bytes) "
	       "unreadable", fs->name, logical, len);
	ret = -EIO;
out:
	free(sums);
	free(have);
	return ret;
}
