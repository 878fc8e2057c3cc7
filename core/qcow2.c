/* qcow2, read-only: opening an image.
 *
 * Everything the map relies on is validated here, once: cluster size,
 * table offsets and sizes against the file, header extensions within the
 * first cluster, features we know. Opening reads the header cluster and,
 * only when a snapshot is asked for, the snapshot table; nothing
 * proportional to the virtual size (the L1 table is read lazily, a page
 * at a time, by qcow2-map.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "core/qcow2.h"

#define Q_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

/* Header extension types. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* QEMU's limits: backing names of 1023 bytes, snapshot extra data of 1 KiB. */
#define QCOW2_MAX_NAME 1023u
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024u

struct qcow2_hdr_info {
	const uint8_t *feature_names; /* feature name table, 48-byte entries */
	uint32_t feature_names_len;
	char *backing_format;
	char *data_file;
	const uint8_t *crypt_ext; /* encryption header extension, or NULL */
	uint32_t crypt_ext_len;
};

static int qcow2_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && get_be32(head) == QCOW2_MAGIC ? 100 : 0;
}

/* "bit 12 (name)" for an incompatible feature, named by the image's own
 * feature name table when it has one. */
static void feature_name(const struct qcow2_hdr_info *hi, unsigned bit,
			 char *buf, size_t len)
{
	for (uint32_t i = 0; i + 48 <= hi->feature_names_len; i += 48) {
		const uint8_t *ent = hi->feature_names + i;

		if (ent[0] == 0 && ent[1] == bit) {
			snprintf(buf, len, "bit %u (%.46s)", bit,
				 (const char *)ent + 2);
			return;
		}
	}
	snprintf(buf, len, "bit %u", bit);
}

static int qcow2_read_extensions(struct vd_layer *l, const uint8_t *c0,
				 uint32_t start, uint32_t end,
				 struct qcow2_hdr_info *hi, struct vd_err *e)
{
	uint32_t pos = start;

	/* Ends: every extension moves pos forward by at least 8 bytes, and
	 * pos never passes end (at most one cluster). */
	while (end >= 8 && pos <= end - 8) {
		uint32_t type = get_be32(c0 + pos);
		uint32_t len = get_be32(c0 + pos + 4);

		pos += 8;
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos)
			return Q_FAIL(-EUCLEAN, "header extension 0x%08x (%u "
				      "bytes at 0x%x) runs past the end of "
				      "the header area (0x%x)", type, len,
				      pos - 8, end);
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			free(hi->backing_format);
			hi->backing_format = strndup((const char *)c0 + pos,
						     VD_MIN(len, 63u));
			if (!hi->backing_format)
				return -ENOMEM;
			break;
		case QCOW2_EXT_FEATURE_NAMES:
			hi->feature_names = c0 + pos;
			hi->feature_names_len = len;
			break;
		case QCOW2_EXT_DATA_FILE:
			if (len == 0 || len > QCOW2_MAX_NAME)
				return Q_FAIL(-EUCLEAN, "data file name of %u "
					      "bytes", len);
			free(hi->data_file);
			hi->data_file = strndup((const char *)c0 + pos, len);
			if (!hi->data_file)
				return -ENOMEM;
			break;
		case QCOW2_EXT_CRYPT:
			hi->crypt_ext = c0 + pos;
			hi->crypt_ext_len = len;
			break;
		default:
			break; /* unknown extensions may be ignored */
		}
		pos += len;
		pos += (8 - (pos & 7)) & 7;
		if (pos > end)
			break;
	}
	return 0;
}

struct snap_pick {
	bool found;
	uint64_t l1_off;
	uint32_t l1_entries;
	uint64_t size;
};

/* Find the internal snapshot whose id is want, else whose name is want
 * (QEMU's order), and report its L1 table and virtual size. */
static int qcow2_find_snapshot(struct vd_layer *l, struct qcow2 *q,
			       uint32_t nb, uint64_t table_off,
			       const char *want, struct snap_pick *pick,
			       struct vd_err *e)
{
	struct vd_file *f = l->file;
	struct snap_pick by_id = { 0 }, by_name = { 0 };
	char list[400] = "";
	size_t list_len = 0;
	uint8_t *var = NULL;
	uint64_t pos = table_off;
	int ret = 0;

	if (nb == 0)
		return Q_FAIL(-ENOENT, "no snapshot '%s': the image has no "
			      "internal snapshots", want);
	if (nb > QCOW2_MAX_SNAPSHOTS)
		return Q_FAIL(-EUCLEAN, "snapshot table has %u entries (at "
			      "most %u)", nb, QCOW2_MAX_SNAPSHOTS);
	/* Aligned, so below one cluster means 0: the header's cluster. */
	if (!(table_off & (q->cluster_size - 1)) && table_off < q->cluster_size)
		return Q_FAIL(-EUCLEAN, "snapshot table offset 0x%llx overlaps "
			      "the header cluster",
			      (unsigned long long)table_off);
	if (table_off & (q->cluster_size - 1) || table_off >= f->size)
		return Q_FAIL(-EUCLEAN, "snapshot table at 0x%llx is not "
			      "inside the file (%llu bytes)",
			      (unsigned long long)table_off,
			      (unsigned long long)f->size);
	var = malloc(QCOW2_MAX_SNAPSHOT_EXTRA + 2 * 65535u);
	if (!var)
		return -ENOMEM;

	/* Ends: at most nb (<= 65536) entries, each read once. */
	for (uint32_t i = 0; i < nb; i++) {
		uint8_t h[40];
		uint32_t l1n, extra, vlen;
		uint16_t id_len, name_len;
		uint64_t snap_size = l->size;
		const char *id, *name;

		if (!vd_range_ok(pos, sizeof(h), f->size) ||
		    vd_file_pread(f, h, sizeof(h), pos)) {
			ret = Q_FAIL(-EUCLEAN, "snapshot table entry %u at "
				     "0x%llx lies past the end of the file", i,
				     (unsigned long long)pos);
			goto out;
		}
		l1n = get_be32(h + 8);
		id_len = get_be16(h + 12);
		name_len = get_be16(h + 14);
		extra = get_be32(h + 36);
		if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
			ret = Q_FAIL(-EUCLEAN, "snapshot table entry %u has %u "
				     "bytes of extra data (at most %u)", i,
				     extra, QCOW2_MAX_SNAPSHOT_EXTRA);
			goto out;
		}
		vlen = extra + id_len + name_len;
		if (!vd_range_ok(pos + 40, vlen, f->size) ||
		    vd_file_pread(f, var, vlen, pos + 40)) {
			ret = Q_FAIL(-EUCLEAN, "snapshot table entry %u at "
				     "0x%llx lies past the end of the file", i,
				     (unsigned long long)pos);
			goto out;
		}
		if (extra >= 16)
			snap_size = get_be64(var + 8);
		id = (const char *)var + extra;
		name = id + id_len;
		/* Counted strings: a NUL in one means the lengths are off. */
		if (memchr(id, 0, (size_t)id_len + name_len)) {
			ret = Q_FAIL(-EUCLEAN, "snapshot table entry %u at "
				     "0x%llx: its id or name (%u and %u bytes) "
				     "holds a NUL byte", i,
				     (unsigned long long)pos, id_len, name_len);
			goto out;
		}

		if (list_len < sizeof(list) - 1)
			list_len += (size_t)snprintf(
				list + list_len, sizeof(list) - list_len,
				"%s%.*s (%.*s)", i ? ", " : "", (int)id_len, id,
				(int)name_len, name);
		struct snap_pick p = { true, get_be64(h), l1n, snap_size };
		if (!by_id.found && strlen(want) == id_len &&
		    !memcmp(want, id, id_len))
			by_id = p;
		if (!by_name.found && strlen(want) == name_len &&
		    !memcmp(want, name, name_len))
			by_name = p;
		pos += 40 + (uint64_t)vlen;
		pos += (8 - (pos & 7)) & 7;
	}
	if (by_id.found)
		*pick = by_id;
	else if (by_name.found)
		*pick = by_name;
	else
		ret = Q_FAIL(-ENOENT, "no snapshot '%s'; snapshots (id and "
			     "name): %s%s", want, list,
			     list_len >= sizeof(list) - 1 ? "..." : "");
out:
	free(var);
	return ret;
}

/* The L1 table of the state shown (active or snapshot), checked against
 * the file and the virtual size. */
static int qcow2_check_l1(struct vd_layer *l, struct qcow2 *q, uint64_t size,
			  const char *which, struct vd_err *e)
{
	uint64_t bytes = (uint64_t)q->l1_entries * 8;
	unsigned span_bits = q->cluster_bits + q->l2_bits;
	uint64_t needed = size ? ((size - 1) >> span_bits) + 1 : 0;

	if (bytes > QCOW2_MAX_L1_BYTES)
		return Q_FAIL(-EUCLEAN, "%s L1 table of %u entries is too "
			      "large (at most %u)", which, q->l1_entries,
			      QCOW2_MAX_L1_BYTES / 8);
	if (q->l1_entries < needed)
		return Q_FAIL(-EUCLEAN, "%s L1 table of %u entries is too "
			      "small for the virtual size (%llu bytes needs "
			      "%llu)", which, q->l1_entries,
			      (unsigned long long)size,
			      (unsigned long long)needed);
	if (!q->l1_entries)
		return 0;
	if (q->l1_off & (q->cluster_size - 1))
		return Q_FAIL(-EUCLEAN, "%s L1 table offset 0x%llx is not "
			      "cluster aligned", which,
			      (unsigned long long)q->l1_off);
	/* Aligned, so below one cluster means 0: the header's cluster. */
	if (q->l1_off < q->cluster_size)
		return Q_FAIL(-EUCLEAN, "%s L1 table offset 0x%llx overlaps "
			      "the header cluster", which,
			      (unsigned long long)q->l1_off);
	if (!vd_range_ok(q->l1_off, bytes, l->file->size))
		return Q_FAIL(-EUCLEAN, "%s L1 table (%u entries at 0x%llx) "
			      "lies past the end of the file (%llu bytes)",
			      which, q->l1_entries,
			      (unsigned long long)q->l1_off,
			      (unsigned long long)l->file->size);
	return 0;
}

static void qcow2_close(struct vd_layer *l)
{
	struct qcow2 *q = l->priv;

	if (!q)
		return;
	qcow2_w_close(l);
	if (q->ext_data)
		vd_file_close(q->data);
	free(q->data_file_name);
	qcow2_crypt_free(q->crypt);
	free(q);
	l->priv = NULL;
}

static int qcow2_open(struct vd_layer *l, const struct vd_layer_opts *o,
		      struct vd_err *e)
{
	struct vd_file *f = l->file;
	struct qcow2_hdr_info hi = { 0 };
	struct qcow2 *q;
	uint8_t hdr[112] = { 0 };
	uint8_t *c0 = NULL;
	uint64_t size, backing_off, autoclear = 0;
	uint32_t backing_len, crypt, hdr_len = 72, nb_snap, c0_len, ext_end;
	unsigned ctype = 0;
	int ret;

	if (f->size < 72)
		return Q_FAIL(-EUCLEAN, "file too short for a header (%llu "
			      "bytes)", (unsigned long long)f->size);
	ret = vd_file_pread(f, hdr, (size_t)VD_MIN(sizeof(hdr), f->size), 0);
	if (ret)
		return Q_FAIL(ret, "cannot read the header");
	if (get_be32(hdr) != QCOW2_MAGIC)
		return Q_FAIL(-EUCLEAN, "not a qcow2 image (bad magic)");

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	l->priv = q;
	q->data = f;

	q->version = get_be32(hdr + 4);
	if (q->version != 2 && q->version != 3) {
		ret = Q_FAIL(-ENOTSUP, "version %u is not supported (only 2 "
			     "and 3)", q->version);
		goto fail;
	}
	q->cluster_bits = get_be32(hdr + 20);
	if (q->cluster_bits < 9 || q->cluster_bits > 21) {
		ret = Q_FAIL(-EUCLEAN, "cluster_bits %u out of range (9 to "
			     "21)", q->cluster_bits);
		goto fail;
	}
	q->cluster_size = 1ULL << q->cluster_bits;
	size = get_be64(hdr + 24);
	crypt = get_be32(hdr + 32); /* opened once the extensions are read */
	q->l1_entries = get_be32(hdr + 36);
	q->l1_off = get_be64(hdr + 40);
	nb_snap = get_be32(hdr + 60);
	backing_off = get_be64(hdr + 8);
	backing_len = get_be32(hdr + 16);

	if (q->version >= 3) {
		if (f->size < 104) {
			ret = Q_FAIL(-EUCLEAN, "file too short for a version 3 "
				     "header (%llu bytes)",
				     (unsigned long long)f->size);
			goto fail;
		}
		q->incompat = get_be64(hdr + 72);
		q->compat_features = get_be64(hdr + 80);
		autoclear = get_be64(hdr + 88);
		q->refcount_order = get_be32(hdr + 96);
		hdr_len = get_be32(hdr + 100);
		if (hdr_len < 104 || hdr_len & 7 ||
		    hdr_len > q->cluster_size) {
			ret = Q_FAIL(-EUCLEAN, "header_length %u is invalid",
				     hdr_len);
			goto fail;
		}
		if (hdr_len > 104)
			ctype = hdr[104];
	}
	/* data_file_raw: reads go through L2 either way; describe shows it. */
	q->autoclear = autoclear;
	if (q->version < 3)
		q->refcount_order = 4;
	q->nb_snapshots = nb_snap;
	q->snapshots_off = get_be64(hdr + 64);

	c0_len = (uint32_t)VD_MIN(q->cluster_size, f->size);
	if (hdr_len > c0_len) {
		ret = Q_FAIL(-EUCLEAN, "header (%u bytes) runs past the end "
			     "of the file (%llu bytes)", hdr_len,
			     (unsigned long long)f->size);
		goto fail;
	}
	c0 = malloc(c0_len);
	if (!c0) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = vd_file_pread(f, c0, c0_len, 0);
	if (ret)
		goto fail;

	if (backing_off) {
		if (backing_len > QCOW2_MAX_NAME ||
		    backing_off > q->cluster_size ||
		    backing_len > q->cluster_size - backing_off ||
		    !vd_range_ok(backing_off, backing_len, c0_len)) {
			ret = Q_FAIL(-EUCLEAN, "backing file name (%u bytes at "
				     "0x%llx) is not inside the first cluster",
				     backing_len,
				     (unsigned long long)backing_off);
			goto fail;
		}
		/* A counted string: a NUL would silently cut the name
		 * short, naming another file. */
		if (memchr(c0 + backing_off, 0, backing_len)) {
			ret = Q_FAIL(-EUCLEAN, "backing file name (%u bytes at "
				     "0x%llx) holds a NUL byte", backing_len,
				     (unsigned long long)backing_off);
			goto fail;
		}
	}
	/* The extensions end where the backing file name begins. */
	ext_end = backing_off && backing_off < c0_len ? (uint32_t)backing_off :
							c0_len;
	ret = qcow2_read_extensions(l, c0, hdr_len, ext_end, &hi, e);
	if (ret)
		goto fail;

	if (q->incompat & ~QCOW2_INCOMPAT_KNOWN) {
		char names[256] = "", one[80];
		size_t n = 0;

		for (unsigned b = 0; b < 64; b++) {
			if (!(q->incompat & ~QCOW2_INCOMPAT_KNOWN & 1ULL << b))
				continue;
			feature_name(&hi, b, one, sizeof(one));
			if (n < sizeof(names) - 1)
				n += (size_t)snprintf(names + n,
						      sizeof(names) - n,
						      "%s%s", n ? ", " : "",
						      one);
		}
		ret = Q_FAIL(-ENOTSUP, "unsupported incompatible feature: %s",
			     names);
		goto fail;
	}

	q->ext_l2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
	if (q->ext_l2 && q->cluster_bits < 14) {
		ret = Q_FAIL(-EUCLEAN, "extended L2 entries need clusters of "
			     "16 KiB or more (cluster_bits %u)",
			     q->cluster_bits);
		goto fail;
	}
	q->entry_bytes = q->ext_l2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->ext_l2 ? 4 : 3);
	q->sc_bits = q->cluster_bits - 5;

	if (q->incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if (ctype != 1) {
			ret = Q_FAIL(ctype ? -ENOTSUP : -EUCLEAN,
				     "compression type %u is not supported",
				     ctype);
			goto fail;
		}
	} else if (ctype) {
		ret = Q_FAIL(-EUCLEAN, "compression type %u set without its "
			     "incompatible feature bit", ctype);
		goto fail;
	}
	q->compression = ctype;
	q->csize_shift = 62 - (q->cluster_bits - 8);
	q->csize_mask = (1ULL << (q->cluster_bits - 8)) - 1;
	q->coff_mask = (1ULL << q->csize_shift) - 1;

	if (size > (uint64_t)INT64_MAX / 2) {
		ret = Q_FAIL(-EUCLEAN, "virtual size %llu is too large",
			     (unsigned long long)size);
		goto fail;
	}
	/* QEMU counts whole 512-byte sectors: a size that is not a multiple
	 * (only a hand-edited header has one) is rounded down, as there. */
	l->size = size & ~511ULL;

	if (o->snapshot) {
		struct snap_pick pick = { 0 };

		ret = qcow2_find_snapshot(l, q, nb_snap, get_be64(hdr + 64),
					  o->snapshot, &pick, e);
		if (ret)
			goto fail;
		q->l1_off = pick.l1_off;
		q->l1_entries = pick.l1_entries;
		if (pick.size > (uint64_t)INT64_MAX / 2) {
			ret = Q_FAIL(-EUCLEAN, "snapshot '%s' has virtual size "
				     "%llu", o->snapshot,
				     (unsigned long long)pick.size);
			goto fail;
		}
		l->size = pick.size & ~511ULL;
	}
	ret = qcow2_check_l1(l, q, l->size, o->snapshot ? "snapshot" : "active",
			     e);
	if (ret)
		goto fail;

	if (q->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		if (!hi.data_file) {
			ret = Q_FAIL(-ENOTSUP, "the image keeps its data in an "
				     "external data file but does not name it");
			goto fail;
		}
		ret = vd_layer_open_named(l, hi.data_file, "data file",
					  &q->data, NULL, e);
		if (ret)
			goto fail;
		q->ext_data = true;
		l->alloc += q->data->alloc;
		q->data_file_name = hi.data_file;
		hi.data_file = NULL;
	}
	if (crypt) {
		ret = qcow2_crypt_open(l, q, crypt, hi.crypt_ext,
				       hi.crypt_ext_len, o->keys, e);
		if (ret)
			goto fail;
	}
	if (q->incompat & QCOW2_INCOMPAT_CORRUPT)
		vd_log(VD_LOG_WARN, "%s: qcow2: the image is marked corrupt; "
		       "reading it anyway (check it with qemu-img check)",
		       l->path);

	if (backing_off) {
		l->backing_name = strndup((const char *)c0 + backing_off,
					  backing_len);
		if (!l->backing_name) {
			ret = -ENOMEM;
			goto fail;
		}
		l->backing_format = hi.backing_format;
		hi.backing_format = NULL;
	}
	if (o->writable) {
		ret = qcow2_w_open(l, o, e);
		if (ret)
			goto fail;
	}
	ret = 0;
	goto out;
fail:
	qcow2_close(l);
out:
	free(hi.backing_format);
	free(hi.data_file);
	free(c0);
	return ret;
}

int qcow2_decompress(struct vd_layer *l, const uint8_t *in, size_t in_len,
		     uint8_t *out, size_t out_len)
{
	struct qcow2 *q = l->priv;

	if (q->compression == 1)
		return vd_zstd_decode(in, in_len, out, out_len);
	/* Raw deflate; QEMU writes 4 KiB windows, accept up to 32 KiB. */
	return vd_inflate(in, in_len, out, out_len, -15);
}

/* The snapshot table, read again for describe: at most
 * QCOW2_MAX_SNAPSHOTS entries and QCOW2_MAX_SNAPSHOT_TABLE bytes, as QEMU
 * allows (qcow2.txt, "Snapshots"; entry fields at the offsets below). */
#define QCOW2_MAX_SNAPSHOT_TABLE (64u << 20)

static void qcow2_describe_snapshots(const struct vd_layer *l,
				     const struct qcow2 *q,
				     struct vd_layer_info *i)
{
	struct vd_file *f = l->file;
	uint64_t pos = q->snapshots_off, end;
	uint32_t nb = q->nb_snapshots;
	uint8_t *var;

	if (!nb)
		return;
	if (nb > QCOW2_MAX_SNAPSHOTS || q->snapshots_off >= f->size) {
		vd_log(VD_LOG_WARN, "%s: qcow2: snapshot table (%u entries at "
		       "0x%llx) not listed: outside the file or too large",
		       l->path, nb, (unsigned long long)q->snapshots_off);
		i->incomplete = true;
		return;
	}
	end = q->snapshots_off + VD_MIN((uint64_t)QCOW2_MAX_SNAPSHOT_TABLE,
					f->size - q->snapshots_off);
	i->snapshots = calloc(nb, sizeof(*i->snapshots));
	var = malloc(QCOW2_MAX_SNAPSHOT_EXTRA + 2 * 65535u);
	if (!i->snapshots || !var) {
		free(var);
		free(i->snapshots);
		i->snapshots = NULL;
		i->incomplete = true;
		return;
	}
	/* Ends: at most nb (<= 65536) entries, each read once, pos only
	 * grows and stays below end. */
	for (uint32_t k = 0; k < nb; k++) {
		struct vd_layer_snapshot *sn = &i->snapshots[k];
		uint8_t h[40];
		uint32_t extra, vlen;
		uint16_t id_len, name_len;

		if (!vd_range_ok(pos, sizeof(h), end) ||
		    vd_file_pread(f, h, sizeof(h), pos))
			break;
		id_len = get_be16(h + 12);   /* id_str_size */
		name_len = get_be16(h + 14); /* name_size */
		extra = get_be32(h + 36);    /* extra_data_size */
		if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
			break;
		vlen = extra + id_len + name_len;
		if (!vd_range_ok(pos + 40, vlen, end) ||
		    vd_file_pread(f, var, vlen, pos + 40))
			break;
		sn->date_sec = get_be32(h + 16);      /* date_sec */
		sn->date_nsec = get_be32(h + 20);     /* date_nsec */
		sn->vm_clock_nsec = get_be64(h + 24); /* vm_clock_nsec */
		sn->vm_state_size = get_be32(h + 32); /* vm_state_size */
		/* Extra data, offset 0: vm_state_size_large; 16: icount
		 * (-1: none). */
		if (extra >= 8)
			sn->vm_state_size = get_be64(var);
		sn->icount = extra >= 24 ? get_be64(var + 16) : UINT64_MAX;
		sn->has_icount = sn->icount != UINT64_MAX;
		snprintf(sn->id, sizeof(sn->id), "%.*s",
			 (int)strnlen((const char *)var + extra, id_len),
			 (const char *)var + extra);
		snprintf(sn->name, sizeof(sn->name), "%.*s",
			 (int)strnlen((const char *)var + extra + id_len,
				      name_len),
			 (const char *)var + extra + id_len);
		i->n_snapshots++;
		pos += 40 + (uint64_t)vlen;
		pos += (8 - (pos & 7)) & 7;
	}
	free(var);
	if (i->n_snapshots < nb) {
		vd_log(VD_LOG_WARN, "%s: qcow2: snapshot table entry %u at "
		       "0x%llx is unreadable; listing %u of %u snapshots",
		       l->path, i->n_snapshots, (unsigned long long)pos,
		       i->n_snapshots, nb);
		i->incomplete = true;
	}
}

static void qcow2_describe(const struct vd_layer *l, struct vd_layer_info *i)
{
	const struct qcow2 *q = l->priv;

	snprintf(i->subformat, sizeof(i->subformat), "%s",
		 q->version >= 3 ? "1.1" : "0.10");
	i->cluster_size = (uint32_t)q->cluster_size;
	snprintf(i->compression, sizeof(i->compression), "%s",
		 q->compression == 1 ? "zstd" : "zlib");
	i->dirty = q->incompat & QCOW2_INCOMPAT_DIRTY;
	i->corrupt = q->incompat & QCOW2_INCOMPAT_CORRUPT;
	i->extended_l2 = q->ext_l2;
	i->lazy_refcounts = q->compat_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
	/* refcount_order is at most 6 in any image QEMU opens; a larger
	 * one only changes what is shown. */
	i->refcount_bits = q->refcount_order < 32 ? 1u << q->refcount_order
						  : 0;
	i->data_file = q->data_file_name;
	i->data_file_raw = q->autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	qcow2_describe_snapshots(l, q, i);
}

const struct vd_format vd_format_qcow2 = {
	.name = "qcow2",
	.snapshots = true,
	.probe = qcow2_probe,
	.open = qcow2_open,
	.map = qcow2_map,
	.decompress = qcow2_decompress,
	.write = qcow2_write,
	.flush = qcow2_flush,
	.decode = qcow2_crypt_decode,
	.describe = qcow2_describe,
	.close = qcow2_close,
};
