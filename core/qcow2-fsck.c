/* qcow2: the consistency check of vdtool check, with qemu-img check's
 * verdicts (QEMU's block/qcow2-refcount.c describes the same walk;
 * fields from docs/interop/qcow2.txt).
 *
 * Every reference the metadata makes is counted per host cluster: the
 * header, the active L1 table and its L2 tables and what their entries
 * name (data clusters, and every cluster a compressed cluster's bytes
 * touch), each snapshot's L1 and L2 tables, the snapshot table, the
 * encryption header, the refcount table and its blocks. Then, cluster
 * by cluster, the count is compared with the refcount on disk: a count
 * above the refcount is a corruption (the cluster may be reused while in
 * use), below it a leak. A reference to a region one cluster or more past
 * the end of the file is a corruption and is not counted; the last
 * cluster may be partly there. Finally the "copied" flag of every
 * active L1 and L2 entry must say whether the refcount is exactly 1.
 *
 * Reads past the end of the file read zeros, as QEMU's block layer
 * reads them, so a truncated table is counted the way qemu-img counts it.
 *
 * Bounds: the file's clusters are counted in memory (two bytes each; a
 * file of more than VD_FSCK_MAX_CLUSTERS is not checked); L1 tables are
 * at most 32 MiB, as QEMU's; and L2 tables are read at most once per
 * cluster of the file plus VD_FSCK_L2_SLACK times in all, so a table of
 * entries that all name one cluster cannot make the walk unbounded. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/check.h"
#include "core/qcow2-w.h"

#define VD_FSCK_MAX_CLUSTERS (1ULL << 27)
#define VD_FSCK_L2_SLACK 4096

/* Reserved bits (QEMU's masks). */
#define FSCK_L1E_RESERVED 0x7f000000000001ffULL
#define FSCK_L2E_STD_RESERVED 0x3f000000000001feULL
#define FSCK_REFT_RESERVED 0x1ffULL
#define FSCK_REFT_OFFSET 0xfffffffffffffe00ULL
#define FSCK_MAX_RT_BYTES (8u << 20)

#define QCOW2_EXT_DATA_FILE_NAME 0x44415441u

struct fsck {
	const char *path;
	FILE *msgs;
	struct vd_check *r;
	int fd;
	uint64_t fsize;
	unsigned cluster_bits;
	uint64_t cs;
	unsigned rc_bits;   /* bits per refcount */
	unsigned rb_shift;  /* log2(refcounts per block) */
	uint64_t rc_max;    /* the largest count kept in refs */
	bool ext_l2;
	bool data_file;	    /* guest data lives in an external file */
	unsigned eb;	    /* L2 entry bytes */
	uint64_t l2_n;	    /* entries per L2 table */
	unsigned csize_shift;
	uint64_t csize_mask, coff_mask;
	uint64_t size;
	uint64_t l1_off;
	uint32_t l1_size;
	uint64_t *l1;	    /* the active L1, host order */
	uint64_t rt_off;
	uint64_t rt_n;
	uint64_t *rt;	    /* refcount table, host order */
	uint64_t crypt_off, crypt_len;
	uint32_t nb_snap;
	uint64_t snap_off;
	unsigned version;
	uint16_t *refs;	    /* references counted per host cluster */
	uint64_t nb;	    /* clusters of refs in use (grows by one at most) */
	uint64_t nb_file;   /* clusters of the file */
	uint8_t *t;	    /* one L2 table */
	uint8_t *rb;	    /* the refcount block last read */
	uint64_t rb_at;	    /* its offset, or 0 */
	uint64_t l2_reads;  /* tables read, against the budget */
};

#define FMSG(f, fmt, ...) fprintf((f)->msgs, fmt "\n", ##__VA_ARGS__)

/* Read len bytes at off; past the end of the file, zeros. */
static int fsck_pread(struct fsck *f, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	memset(buf, 0, len);
	if (off >= f->fsize)
		return 0;
	len = (size_t)VD_MIN((uint64_t)len, f->fsize - off);
	/* Ends: each pass reads at least one byte or returns. */
	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0; /* the file shrank: zeros */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Count one reference to every cluster of [off, off + size). */
static int fsck_inc(struct fsck *f, uint64_t off, uint64_t size)
{
	uint64_t first, last;

	if (!size)
		return 0;
	/* The last cluster may be partly in the file: up to one cluster
	 * past its end is fine, as QEMU allows. */
	if (off > UINT64_MAX - size ||
	    (off + size > f->fsize && off + size - f->fsize >= f->cs)) {
		FMSG(f, "ERROR: counting reference for region exceeding the "
		     "end of the file by one cluster or more: offset 0x%llx "
		     "size 0x%llx", (unsigned long long)off,
		     (unsigned long long)size);
		f->r->corruptions++;
		return 0;
	}
	first = off >> f->cluster_bits;
	last = (off + size - 1) >> f->cluster_bits;
	/* last <= nb_file: refs has nb_file + 1 entries. */
	for (uint64_t k = first; k <= last; k++) {
		if (k >= f->nb)
			f->nb = k + 1;
		if (f->refs[k] >= f->rc_max) {
			FMSG(f, "ERROR: overflow cluster offset=0x%llx",
			     (unsigned long long)(k << f->cluster_bits));
			f->r->corruptions++;
			continue;
		}
		f->refs[k]++;
	}
	return 0;
}

/* The refcount on disk of host cluster c: 0 or -errno. */
static int fsck_refcount(struct fsck *f, uint64_t c, uint64_t *rc_r)
{
	uint64_t idx = c >> f->rb_shift, rb;
	int ret;

	*rc_r = 0;
	if (idx >= f->rt_n)
		return 0;
	rb = f->rt[idx] & FSCK_REFT_OFFSET;
	if (!rb)
		return 0;
	if (rb & (f->cs - 1))
		return -EIO;
	if (rb != f->rb_at) {
		ret = fsck_pread(f, f->rb, f->cs, rb);
		if (ret)
			return ret;
		f->rb_at = rb;
	}
	*rc_r = qcow2_rc_get(f->rb, c & ((1ULL << f->rb_shift) - 1),
			     f->rc_bits);
	return 0;
}

static int fsck_read_l2(struct fsck *f, uint64_t l2)
{
	int ret;

	if (++f->l2_reads > f->nb_file + VD_FSCK_L2_SLACK) {
		if (f->l2_reads == f->nb_file + VD_FSCK_L2_SLACK + 1) {
			FMSG(f, "ERROR: more L2 tables are named than the file "
			     "can hold; the rest are not read");
			f->r->check_errors++;
		}
		return -E2BIG;
	}
	ret = fsck_pread(f, f->t, f->cs, l2);
	if (ret) {
		FMSG(f, "ERROR: I/O error in check_refcounts_l2");
		f->r->check_errors++;
	}
	return ret;
}

/* An L2 table's entries: references and their checks. */
static int fsck_l2(struct fsck *f, uint64_t l2, bool frag)
{
	uint64_t next = 0;
	int ret;

	ret = fsck_read_l2(f, l2);
	if (ret)
		return ret == -E2BIG ? 0 : ret;
	for (uint64_t i = 0; i < f->l2_n; i++) {
		uint64_t ent = get_be64(f->t + i * f->eb);
		uint64_t bm = f->ext_l2 ? get_be64(f->t + i * f->eb + 8) : 0;
		uint64_t off = ent & QCOW2_OFFSET_MASK;

		if (ent & QCOW2_OFLAG_COMPRESSED) {
			uint64_t coff = ent & f->coff_mask;
			uint64_t nsec = ((ent >> f->csize_shift) &
					 f->csize_mask) + 1;
			uint64_t clen = nsec * 512 - (coff & 511);

			if (ent & QCOW2_OFLAG_COPIED) {
				FMSG(f, "ERROR: coffset=0x%llx: copied flag "
				     "must never be set for compressed "
				     "clusters", (unsigned long long)coff);
				f->r->corruptions++;
			}
			if (f->data_file) {
				FMSG(f, "ERROR compressed cluster %llu with "
				     "data file, entry=0x%llx",
				     (unsigned long long)i,
				     (unsigned long long)ent);
				f->r->corruptions++;
				continue;
			}
			if (bm) {
				FMSG(f, "ERROR compressed cluster %llu with "
				     "non-zero subcluster allocation bitmap, "
				     "entry=0x%llx", (unsigned long long)i,
				     (unsigned long long)ent);
				f->r->corruptions++;
				continue;
			}
			fsck_inc(f, coff, clen);
			if (frag) {
				f->r->allocated_clusters++;
				f->r->compressed_clusters++;
				f->r->fragmented_clusters++;
			}
			continue;
		}
		if (ent & FSCK_L2E_STD_RESERVED) {
			FMSG(f, "ERROR found l2 entry with reserved bits set: "
			     "%llx", (unsigned long long)ent);
			f->r->corruptions++;
		}
		/* Offset 0 is unallocated (or a plain zero cluster), except
		 * in an external data file, where the copied flag marks it
		 * as data at offset 0 (as QEMU decides). */
		if (!off && !(f->data_file && (ent & QCOW2_OFLAG_COPIED))) {
			if (f->ext_l2 && (uint32_t)bm) {
				FMSG(f, "ERROR: Unallocated cluster has "
				     "non-zero subcluster allocation map");
				f->r->corruptions++;
			}
			continue;
		}
		if ((bm >> 32) & bm) {
			FMSG(f, "ERROR offset=%llx: Allocated cluster has "
			     "corrupted subcluster allocation bitmap",
			     (unsigned long long)off);
			f->r->corruptions++;
		}
		if (off & (f->cs - 1)) {
			bool data = f->ext_l2 ? (uint32_t)bm != 0 :
						!(ent & QCOW2_OFLAG_ZERO);

			if (data)
				FMSG(f, "ERROR offset=%llx: Data cluster is not "
				     "properly aligned; L2 entry corrupted.",
				     (unsigned long long)off);
			else
				FMSG(f, "ERROR offset=%llx: Preallocated "
				     "cluster is not properly aligned; L2 "
				     "entry corrupted.", (unsigned long long)off);
			f->r->corruptions++;
		}
		if (frag) {
			f->r->allocated_clusters++;
			if (next && off != next)
				f->r->fragmented_clusters++;
			next = off + f->cs;
		}
		if (!f->data_file)
			fsck_inc(f, off, f->cs);
	}
	return 0;
}

/* An L1 table (the active one, or a snapshot's) and all below it. l1
 * is the table in host order when the caller has it, else NULL. */
static int fsck_l1(struct fsck *f, uint64_t l1_off, uint32_t l1_size,
		   const uint64_t *l1, bool frag)
{
	uint64_t *own = NULL;
	int ret = 0;

	if (!l1_size)
		return 0;
	fsck_inc(f, l1_off, (uint64_t)l1_size * 8);
	if (!l1) {
		uint8_t *raw = malloc((size_t)l1_size * 8);

		own = malloc((size_t)l1_size * 8);
		if (!raw || !own) {
			free(raw);
			free(own);
			f->r->check_errors++;
			return -ENOMEM;
		}
		ret = fsck_pread(f, raw, (size_t)l1_size * 8, l1_off);
		for (uint32_t i = 0; i < l1_size; i++)
			own[i] = get_be64(raw + (size_t)i * 8);
		free(raw);
		if (ret) {
			FMSG(f, "ERROR: I/O error in check_refcounts_l1");
			f->r->check_errors++;
			free(own);
			return ret;
		}
		l1 = own;
	}
	for (uint32_t i = 0; !ret && i < l1_size; i++) {
		uint64_t l2;

		if (!l1[i])
			continue;
		if (l1[i] & FSCK_L1E_RESERVED) {
			FMSG(f, "ERROR found L1 entry with reserved bits set: "
			     "%llx", (unsigned long long)l1[i]);
			f->r->corruptions++;
		}
		l2 = l1[i] & QCOW2_OFFSET_MASK;
		fsck_inc(f, l2, f->cs);
		if (l2 & (f->cs - 1)) {
			FMSG(f, "ERROR l2_offset=%llx: Table is not cluster "
			     "aligned; L1 entry corrupted",
			     (unsigned long long)l2);
			f->r->corruptions++;
		}
		ret = fsck_l2(f, l2, frag);
	}
	free(own);
	return ret;
}

/* The snapshot table (qcow2.txt "Snapshot table"): each snapshot's
 * tables, and the table itself. Entries are 40 bytes, then extra data,
 * the id and the name, padded to 8 bytes. */
static int fsck_snapshots(struct fsck *f)
{
	uint64_t pos = f->snap_off;
	int ret = 0;

	/* Ends: at most nb_snap entries (at most 65536, checked). */
	for (uint32_t i = 0; i < f->nb_snap; i++) {
		uint8_t h[40];
		uint64_t l1_off;
		uint32_t l1_size, extra;
		uint16_t id_len, name_len;

		ret = fsck_pread(f, h, sizeof(h), pos);
		if (ret)
			return ret;
		l1_off = get_be64(h);
		l1_size = get_be32(h + 8);
		id_len = get_be16(h + 12);
		name_len = get_be16(h + 14);
		extra = get_be32(h + 36);
		/* QEMU refuses more than 1 KiB of extra data at open. */
		if (extra > 1024)
			return -EUCLEAN;
		pos += 40 + extra + id_len + name_len;
		pos = (pos + 7) & ~7ULL;
		/* Version 3 entries carry at least 16 bytes of extra data
		 * (the large VM state size and the disk size). */
		if (f->version >= 3 && extra < 16) {
			FMSG(f, "ERROR snapshot table entry %u is incomplete", i);
			f->r->corruptions++;
		}
		if (l1_off & (f->cs - 1)) {
			FMSG(f, "ERROR snapshot %u l1_offset=%#llx: L1 table is "
			     "not cluster aligned; snapshot table entry "
			     "corrupted", i, (unsigned long long)l1_off);
			f->r->corruptions++;
			continue;
		}
		if ((uint64_t)l1_size * 8 > QCOW2_MAX_L1_BYTES) {
			FMSG(f, "ERROR snapshot %u l1_size=%#x: L1 table is too "
			     "large; snapshot table entry corrupted", i,
			     l1_size);
			f->r->corruptions++;
			continue;
		}
		ret = fsck_l1(f, l1_off, l1_size, NULL, false);
		if (ret)
			return ret;
	}
	if (f->nb_snap)
		fsck_inc(f, f->snap_off, pos - f->snap_off);
	return 0;
}

static void fsck_refblocks(struct fsck *f)
{
	for (uint64_t i = 0; i < f->rt_n; i++) {
		uint64_t off = f->rt[i] & FSCK_REFT_OFFSET;

		if (f->rt[i] & FSCK_REFT_RESERVED) {
			FMSG(f, "ERROR refcount table entry %llu has reserved "
			     "bits set", (unsigned long long)i);
			f->r->corruptions++;
			continue;
		}
		if (off & (f->cs - 1)) {
			FMSG(f, "ERROR refcount block %llu is not cluster "
			     "aligned; refcount table entry corrupted",
			     (unsigned long long)i);
			f->r->corruptions++;
			continue;
		}
		if ((off >> f->cluster_bits) >= f->nb) {
			FMSG(f, "ERROR refcount block %llu is outside image",
			     (unsigned long long)i);
			f->r->corruptions++;
			continue;
		}
		if (!off)
			continue;
		fsck_inc(f, off, f->cs);
		if (f->refs[off >> f->cluster_bits] != 1) {
			FMSG(f, "ERROR refcount block %llu refcount=%u",
			     (unsigned long long)i,
			     f->refs[off >> f->cluster_bits]);
			f->r->corruptions++;
		}
	}
}

static void fsck_compare(struct fsck *f)
{
	uint64_t highest = 0;

	for (uint64_t i = 0; i < f->nb; i++) {
		uint64_t rc1, rc2 = f->refs[i];

		if (fsck_refcount(f, i, &rc1)) {
			FMSG(f, "Can't get refcount for cluster %llu: %s",
			     (unsigned long long)i, strerror(EIO));
			f->r->check_errors++;
			continue;
		}
		if (rc1 || rc2)
			highest = i;
		if (rc1 == rc2)
			continue;
		FMSG(f, "%s cluster %llu refcount=%llu reference=%llu",
		     rc1 < rc2 ? "ERROR" : "Leaked", (unsigned long long)i,
		     (unsigned long long)rc1, (unsigned long long)rc2);
		if (rc1 < rc2)
			f->r->corruptions++;
		else
			f->r->leaks++;
	}
	f->r->image_end_offset = (highest + 1) << f->cluster_bits;
}

/* The "copied" flag of the active tables: set exactly when the refcount
 * is 1 (qcow2.txt, L1 and L2 entries, bit 63). */
static void fsck_copied(struct fsck *f)
{
	for (uint32_t i = 0; i < f->l1_size; i++) {
		uint64_t l1e = f->l1[i], l2 = l1e & QCOW2_OFFSET_MASK, rc;

		if (!l2)
			continue;
		if (!fsck_refcount(f, l2 >> f->cluster_bits, &rc) &&
		    (rc == 1) != !!(l1e & QCOW2_OFLAG_COPIED)) {
			FMSG(f, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u "
			     "l1_entry=%llx refcount=%llu", i,
			     (unsigned long long)l1e, (unsigned long long)rc);
			f->r->corruptions++;
		}
		if (fsck_read_l2(f, l2))
			continue;
		for (uint64_t j = 0; j < f->l2_n; j++) {
			uint64_t ent = get_be64(f->t + j * f->eb);
			uint64_t off = ent & QCOW2_OFFSET_MASK;

			if ((ent & QCOW2_OFLAG_COMPRESSED) || !off)
				continue;
			if (f->data_file)
				rc = 1;
			else if (fsck_refcount(f, off >> f->cluster_bits, &rc))
				continue;
			if ((rc == 1) != !!(ent & QCOW2_OFLAG_COPIED)) {
				FMSG(f, "ERROR OFLAG_COPIED data cluster: "
				     "l2_entry=%llx refcount=%llu",
				     (unsigned long long)ent,
				     (unsigned long long)rc);
				f->r->corruptions++;
			}
		}
	}
}

#define FSCK_FAIL(err, fmt, ...)                                           \
	vd_fail(e, err, "%s: qcow2: " fmt, f->path, ##__VA_ARGS__)

/* The header: what an open would refuse stops the check (qemu-img
 * cannot check such an image either). */
static int fsck_header(struct fsck *f, struct vd_err *e)
{
	uint8_t h[4096];
	uint32_t version, hlen = 72;
	uint64_t incompat = 0, l2_cover, need;
	unsigned order = 4;
	int ret;

	ret = fsck_pread(f, h, sizeof(h), 0);
	if (ret)
		return FSCK_FAIL(ret, "cannot read the header: %s",
				 strerror(-ret));
	if (f->fsize < 72 || get_be32(h) != QCOW2_MAGIC)
		return FSCK_FAIL(-EINVAL, "not a qcow2 image (no magic)");
	version = get_be32(h + 4);
	f->version = version;
	if (version != 2 && version != 3)
		return FSCK_FAIL(-ENOTSUP, "version %u is not supported",
				 version);
	f->cluster_bits = get_be32(h + 20);
	if (f->cluster_bits < 9 || f->cluster_bits > 21)
		return FSCK_FAIL(-EUCLEAN, "cluster_bits %u is invalid (9 to "
				 "21)", f->cluster_bits);
	f->cs = 1ULL << f->cluster_bits;
	if (version == 3) {
		if (f->fsize < 104)
			return FSCK_FAIL(-EUCLEAN, "file too short for a "
					 "version 3 header (%llu bytes)",
					 (unsigned long long)f->fsize);
		incompat = get_be64(h + 72);
		order = get_be32(h + 96);
		hlen = get_be32(h + 100);
		if (hlen < 104 || hlen > f->cs || hlen > sizeof(h))
			return FSCK_FAIL(-EUCLEAN, "header_length %u is invalid",
					 hlen);
		if (incompat & ~QCOW2_INCOMPAT_KNOWN)
			return FSCK_FAIL(-ENOTSUP, "unknown incompatible "
					 "features 0x%llx",
					 (unsigned long long)(incompat &
							~QCOW2_INCOMPAT_KNOWN));
		if (order > 6)
			return FSCK_FAIL(-EUCLEAN, "refcount_order %u is "
					 "invalid (at most 6)", order);
	}
	f->ext_l2 = incompat & QCOW2_INCOMPAT_EXTL2;
	f->data_file = incompat & QCOW2_INCOMPAT_DATA_FILE;
	if (f->ext_l2 && f->cluster_bits < 14)
		return FSCK_FAIL(-EUCLEAN, "extended L2 entries need clusters "
				 "of at least 16 KiB");
	f->eb = f->ext_l2 ? 16 : 8;
	f->l2_n = f->cs / f->eb;
	f->rc_bits = 1u << order;
	f->rb_shift = f->cluster_bits + 3 - order;
	f->rc_max = f->rc_bits >= 16 ? UINT16_MAX : (1ULL << f->rc_bits) - 1;
	f->csize_shift = 62 - (f->cluster_bits - 8);
	f->csize_mask = (1ULL << (f->cluster_bits - 8)) - 1;
	f->coff_mask = (1ULL << f->csize_shift) - 1;
	f->size = get_be64(h + 24);
	f->l1_size = get_be32(h + 36);
	f->l1_off = get_be64(h + 40);
	f->rt_off = get_be64(h + 48);
	f->rt_n = (uint64_t)get_be32(h + 56) * f->cs / 8;
	f->nb_snap = get_be32(h + 60);
	f->snap_off = get_be64(h + 64);
	if ((uint64_t)f->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return FSCK_FAIL(-EUCLEAN, "active L1 table too large (%u "
				 "entries)", f->l1_size);
	l2_cover = f->cs * f->l2_n;
	need = f->size / l2_cover + (f->size % l2_cover != 0);
	if (f->l1_size < need)
		return FSCK_FAIL(-EUCLEAN, "L1 table is too small (%u entries "
				 "for a virtual size of %llu bytes)", f->l1_size,
				 (unsigned long long)f->size);
	if (f->l1_size && (f->l1_off & (f->cs - 1)))
		return FSCK_FAIL(-EUCLEAN, "invalid L1 table offset 0x%llx",
				 (unsigned long long)f->l1_off);
	if (f->rt_n * 8 > FSCK_MAX_RT_BYTES || (f->rt_off & (f->cs - 1)))
		return FSCK_FAIL(-EUCLEAN, "invalid refcount table (%llu "
				 "entries at 0x%llx)",
				 (unsigned long long)f->rt_n,
				 (unsigned long long)f->rt_off);
	if (f->nb_snap > QCOW2_MAX_SNAPSHOTS ||
	    (f->nb_snap && (f->snap_off & (f->cs - 1))))
		return FSCK_FAIL(-EUCLEAN, "invalid snapshot table (%u "
				 "snapshots at 0x%llx)", f->nb_snap,
				 (unsigned long long)f->snap_off);
	/* Header extensions (version 3; qcow2.txt "Header extensions"):
	 * only the encryption header's place matters here. Ends: each
	 * step moves forward, inside the first cluster. */
	for (uint64_t pos = hlen; version == 3 && pos + 8 <= VD_MIN(f->cs,
								  sizeof(h));) {
		uint32_t type = get_be32(h + pos), len = get_be32(h + pos + 4);

		if (!type)
			break;
		if (len > f->cs - pos - 8)
			return FSCK_FAIL(-EUCLEAN, "header extension 0x%x "
					 "overruns the header cluster", type);
		if (type == QCOW2_EXT_CRYPT && len >= 16 &&
		    pos + 24 <= sizeof(h)) {
			f->crypt_off = get_be64(h + pos + 8);
			f->crypt_len = get_be64(h + pos + 16);
		}
		pos += 8 + (((uint64_t)len + 7) & ~7ULL);
	}
	return 0;
}

int vd_qcow2_check(const char *path, FILE *msgs, struct vd_check *r,
		   struct vd_err *e)
{
	struct fsck fs = { .path = path, .msgs = msgs, .r = r, .fd = -1 };
	struct fsck *f = &fs;
	struct stat st;
	uint8_t *raw = NULL;
	int ret;

	memset(r, 0, sizeof(*r));
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(f->fd, &st)) {
		ret = vd_fail(e, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	f->fsize = (uint64_t)st.st_size;
	ret = fsck_header(f, e);
	if (ret)
		goto out;
	f->nb_file = (f->fsize + f->cs - 1) >> f->cluster_bits;
	if (f->nb_file > VD_FSCK_MAX_CLUSTERS) {
		ret = FSCK_FAIL(-EFBIG, "the file has %llu clusters; the check "
				"handles at most %llu",
				(unsigned long long)f->nb_file,
				(unsigned long long)VD_FSCK_MAX_CLUSTERS);
		goto out;
	}
	f->nb = f->nb_file;
	f->refs = calloc(f->nb_file + 1, sizeof(*f->refs));
	f->t = malloc(f->cs);
	f->rb = malloc(f->cs);
	f->l1 = malloc((size_t)VD_MAX(f->l1_size, 1) * 8);
	f->rt = malloc((size_t)VD_MAX(f->rt_n, 1) * 8);
	raw = malloc((size_t)VD_MAX(VD_MAX(f->l1_size, f->rt_n), 1) * 8);
	if (!f->refs || !f->t || !f->rb || !f->l1 || !f->rt || !raw) {
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	ret = fsck_pread(f, raw, (size_t)f->l1_size * 8, f->l1_off);
	for (uint32_t i = 0; !ret && i < f->l1_size; i++)
		f->l1[i] = get_be64(raw + (size_t)i * 8);
	if (!ret)
		ret = fsck_pread(f, raw, (size_t)f->rt_n * 8, f->rt_off);
	for (uint64_t i = 0; !ret && i < f->rt_n; i++)
		f->rt[i] = get_be64(raw + i * 8);
	if (ret) {
		vd_fail(e, ret, "%s: qcow2: cannot read the tables: %s", path,
			strerror(-ret));
		goto out;
	}
	r->total_clusters = f->size / f->cs + (f->size % f->cs != 0);

	/* The walk: a failure of the check itself stops it (counted in
	 * check_errors); what it finds is counted and it goes on. */
	fsck_inc(f, 0, f->cs);
	ret = fsck_l1(f, f->l1_off, f->l1_size, f->l1, true);
	if (!ret)
		ret = fsck_snapshots(f);
	if (ret == -EUCLEAN) {
		vd_fail(e, ret, "%s: qcow2: the snapshot table is invalid",
			path);
		goto out;
	}
	if (!ret) {
		fsck_inc(f, f->rt_off, f->rt_n * 8);
		if (f->crypt_len)
			fsck_inc(f, f->crypt_off, f->crypt_len);
		fsck_refblocks(f);
		fsck_compare(f);
		fsck_copied(f);
	} else {
		r->check_errors += r->check_errors ? 0 : 1;
	}
	ret = 0;
out:
	free(raw);
	free(f->refs);
	free(f->t);
	free(f->rb);
	free(f->l1);
	free(f->rt);
	close(f->fd);
	return ret;
}
