/* OVA and OVF appliances: which file holds the disk.
 *
 * An OVA (DSP0243 section 5.3) is a tar archive: the OVF descriptor
 * (*.ovf), an optional manifest (*.mf) and certificate, then the files the
 * descriptor's References name. We never extract it: the tar is walked
 * once at open to list its members (name, data offset, size), and the
 * selected disk is opened as a byte range of the tar, so reads go
 * straight to the member's bytes. Names the disk image records itself (a
 * VMDK descriptor's extents, a backing file) are looked up among the
 * members first (vd_archive_open_member).
 *
 * The tar walk accepts what GNU tar and POSIX pax writers produce:
 * 512-byte headers (POSIX.1-1988 ustar, and the older v7 layout),
 * sizes in octal or GNU base-256, GNU 'L' long names, pax 'x' extended
 * headers (path=, size=), and skips 'g' global headers, 'K' long link
 * names and every non-file member. Each header's checksum is checked,
 * each member's data must lie within the file, and the walk stops at the
 * first zero block (end of archive), at the end of the file, or at
 * VD_TAR_MAX_MEMBERS members.
 *
 * An OVF descriptor beside its disks is the same without the tar: its
 * hrefs are files next to it, opened under the folder rule. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "core/ova.h"

#define TAR_BLOCK 512u
/* Extension headers larger than this are refused: a GNU long name is a
 * path (PATH_MAX is 4096), pax records hold a few of them. */
#define TAR_MAX_LONGNAME (64u << 10)
#define TAR_MAX_PAX (1u << 20)

struct vd_archive {
	struct vd_file *file; /* the tar */
	char *path;	      /* the tar, for messages */
	char *dir;	      /* folder of the .ovf inside the tar: "" or
				 "name/" */
	struct vd_archive_member *m;
	unsigned n, cap;
};

/* ---------------------------------------------------------------- tar */

/* A NUL- or space-terminated octal field of a ustar header (leading
 * spaces allowed), or GNU base-256 when the first byte has its top bit
 * set. False when it is neither. */
static bool tar_number(const uint8_t *p, size_t n, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i = 0;

	if (p[0] & 0x80) {
		/* Base-256, big-endian, two's complement: 0xff starts a
		 * negative number, never a size. */
		if (p[0] == 0xff)
			return false;
		v = p[0] & 0x7f;
		for (i = 1; i < n; i++) {
			if (v >> 55)
				return false;
			v = v << 8 | p[i];
		}
		*v_r = v;
		return true;
	}
	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
		v = v << 3 | (uint64_t)(p[i] - '0'); /* <= 12 digits: no wrap */
	if (i < n && p[i] != ' ' && p[i] != '\0')
		return false;
	*v_r = v;
	return true;
}

/* ustar header (POSIX.1 "pax" Interchange Format, ustar header block):
 * checksum at 148, 8 bytes: the sum of all header bytes with the
 * checksum field taken as spaces. Old writers summed signed chars;
 * both sums are accepted. */
static bool tar_checksum_ok(const uint8_t *h, uint64_t *stored_r,
			    uint64_t *computed_r)
{
	uint64_t stored, usum = 0;
	int64_t ssum = 0;

	for (unsigned i = 0; i < TAR_BLOCK; i++) {
		uint8_t b = i >= 148 && i < 156 ? ' ' : h[i];

		usum += b;
		ssum += (int8_t)b;
	}
	*computed_r = usum;
	*stored_r = 0;
	/* An empty field is not a checksum. */
	if (h[148] == '\0')
		return false;
	if (!tar_number(h + 148, 8, &stored))
		return false;
	*stored_r = stored;
	return stored == usum || (int64_t)stored == ssum;
}

static bool tar_ustar_magic(const uint8_t *h)
{
	/* "ustar\0" + "00" (POSIX) or "ustar " + " \0" (GNU), at 257. */
	return !memcmp(h + 257, "ustar", 5) &&
	       (h[262] == '\0' || h[262] == ' ');
}

bool vd_tar_probe(const uint8_t *h, size_t len)
{
	uint64_t stored, computed;

	if (len < TAR_BLOCK)
		return false;
	if (tar_ustar_magic(h))
		return true;
	return h[0] != '\0' && tar_checksum_ok(h, &stored, &computed);
}

static bool tar_all_zero(const uint8_t *h)
{
	for (unsigned i = 0; i < TAR_BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

static char *tar_strip_dot(char *name)
{
	size_t skip = 0;

	/* Ends: each step removes two bytes of the name. */
	while (name[skip] == '.' && name[skip + 1] == '/')
		skip += 2;
	memmove(name, name + skip, strlen(name + skip) + 1);
	return name;
}

/* Parse pax extended header records ("LEN key=value\n", POSIX pax
 * "Extended Header"): path= and size= override the next header's; any
 * GNU.sparse key marks a sparse file. */
static int tar_pax(struct vd_archive *a, const char *rec, size_t n,
		   uint64_t at, char **name_r, uint64_t *size_r,
		   bool *has_size_r, bool *sparse_r, struct vd_err *e)
{
	char *sparse_name = NULL;
	size_t pos = 0;
	int ret = 0;

	/* Ends: each record is at least one byte long and pos moves past
	 * it; pos never passes n. */
	while (pos < n) {
		size_t len = 0, i = pos;
		const char *kv, *eq, *val;
		size_t kvn;

		while (i < n && rec[i] >= '0' && rec[i] <= '9' &&
		       len <= TAR_MAX_PAX)
			len = len * 10 + (size_t)(rec[i++] - '0');
		if (i == pos || i >= n || rec[i] != ' ' || len <= i - pos + 1 ||
		    len > n - pos || rec[pos + len - 1] != '\n')
		{
			ret = vd_fail(e, -EUCLEAN, "%s: pax header at 0x%llx: "
				      "bad record at byte %zu", a->path,
				      (unsigned long long)at, pos);
			goto out;
		}
		kv = rec + i + 1;
		kvn = (size_t)(rec + pos + len - 1 - kv);
		eq = memchr(kv, '=', kvn);
		if (!eq) {
			ret = vd_fail(e, -EUCLEAN, "%s: pax header at 0x%llx: "
				      "record without '=' at byte %zu",
				      a->path, (unsigned long long)at, pos);
			goto out;
		}
		val = eq + 1;
		size_t kn = (size_t)(eq - kv), vn = kvn - kn - 1;

		if (kn == 4 && !memcmp(kv, "path", 4) && vn) {
			char *nm = strndup(val, vn);

			if (!nm) {
				ret = -ENOMEM;
				goto out;
			}
			free(*name_r);
			*name_r = nm;
		} else if (kn == 4 && !memcmp(kv, "size", 4) && vn) {
			uint64_t v = 0;

			for (size_t k = 0; k < vn && !ret; k++)
				if (val[k] < '0' || val[k] > '9' ||
				    __builtin_mul_overflow(v, 10, &v) ||
				    __builtin_add_overflow(
					    v, (uint64_t)(val[k] - '0'), &v))
					ret = vd_fail(e, -EUCLEAN, "%s: pax "
						      "header at 0x%llx: bad "
						      "size '%.*s'", a->path,
						      (unsigned long long)at,
						      (int)VD_MIN(vn, 40u),
						      val);
			if (ret)
				goto out;
			*size_r = v;
			*has_size_r = true;
		} else if (kn > 10 && !memcmp(kv, "GNU.sparse", 10)) {
			*sparse_r = true;
			/* Sparse format 1.0 stores the real name here and
			 * a made-up one in path=. */
			if (kn == 15 && !memcmp(kv, "GNU.sparse.name", 15) &&
			    vn) {
				free(sparse_name);
				sparse_name = strndup(val, vn);
				if (!sparse_name) {
					ret = -ENOMEM;
					goto out;
				}
			}
		}
		pos += len;
	}
	if (sparse_name) {
		free(*name_r);
		*name_r = sparse_name;
		sparse_name = NULL;
	}
out:
	free(sparse_name);
	return ret;
}

/* The data of an extension header (long name, pax records), NUL-ended. */
static int tar_read_ext(struct vd_archive *a, uint64_t off, uint64_t size,
			uint64_t cap, char type, char **buf_r,
			struct vd_err *e)
{
	char *buf;

	if (size > cap)
		return vd_fail(e, -EUCLEAN, "%s: '%c' header at 0x%llx has "
			       "%llu bytes of data (at most %llu)", a->path,
			       type,
			       (unsigned long long)(off - TAR_BLOCK),
			       (unsigned long long)size,
			       (unsigned long long)cap);
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	if (size && vd_file_pread(a->file, buf, size, off)) {
		free(buf);
		return vd_fail(e, -EIO, "%s: cannot read '%c' header data at "
			       "0x%llx", a->path, type,
			       (unsigned long long)off);
	}
	buf[size] = '\0';
	*buf_r = buf;
	return 0;
}

static int tar_add(struct vd_archive *a, char *name, uint64_t off,
		   uint64_t size, char type, struct vd_err *e)
{
	if (a->n >= VD_TAR_MAX_MEMBERS) {
		free(name);
		return vd_fail(e, -EUCLEAN, "%s: more than %u members in the "
			       "tar", a->path, VD_TAR_MAX_MEMBERS);
	}
	if (a->n == a->cap) {
		unsigned cap = a->cap ? a->cap * 2 : 16;
		struct vd_archive_member *m;

		m = realloc(a->m, cap * sizeof(*m));
		if (!m) {
			free(name);
			return -ENOMEM;
		}
		a->m = m;
		a->cap = cap;
	}
	a->m[a->n++] = (struct vd_archive_member){
		.name = tar_strip_dot(name),
		.off = off,
		.size = size,
		.type = type,
	};
	return 0;
}

static int tar_walk(struct vd_archive *a, struct vd_err *e)
{
	const uint64_t fsize = a->file->size;
	uint64_t pos = 0;
	char *ext_name = NULL; /* from a GNU 'L' or pax path= */
	uint64_t pax_size = 0;
	bool has_pax_size = false, pax_sparse = false;
	int ret = 0;

	/* Ends: every header moves pos forward by at least one block, pos
	 * never passes fsize, and the member count is capped. */
	while (pos < fsize) {
		uint8_t h[TAR_BLOCK];
		uint64_t size, data, padded, stored, computed;
		char type;

		if (fsize - pos < TAR_BLOCK) {
			ret = vd_fail(e, -EUCLEAN, "%s: tar ends inside the "
				      "header at 0x%llx (%llu bytes)", a->path,
				      (unsigned long long)pos,
				      (unsigned long long)fsize);
			break;
		}
		if (vd_file_pread(a->file, h, TAR_BLOCK, pos)) {
			ret = vd_fail(e, -EIO, "%s: cannot read the tar header "
				      "at 0x%llx", a->path,
				      (unsigned long long)pos);
			break;
		}
		/* The end-of-archive marker is two zero blocks; GNU tar
		 * stops at the first one, and so do we. */
		if (tar_all_zero(h))
			break;
		if (!tar_checksum_ok(h, &stored, &computed)) {
			ret = vd_fail(e, -EUCLEAN, "%s: tar header at 0x%llx "
				      "has a bad checksum (field at 148 holds "
				      "%llu, the header sums to %llu)",
				      a->path, (unsigned long long)pos,
				      (unsigned long long)stored,
				      (unsigned long long)computed);
			break;
		}
		/* size at 124, 12 bytes; typeflag at 156. */
		type = (char)h[156];
		if (!tar_number(h + 124, 12, &size)) {
			ret = vd_fail(e, -EUCLEAN, "%s: tar header at 0x%llx: "
				      "size field is not a number", a->path,
				      (unsigned long long)pos);
			break;
		}
		if (has_pax_size && type != 'x' && type != 'g' &&
		    type != 'L' && type != 'K')
			size = pax_size;
		data = pos + TAR_BLOCK;
		if (!vd_range_ok(data, size, fsize)) {
			ret = vd_fail(e, -EUCLEAN, "%s: tar member at 0x%llx "
				      "(%llu bytes of data) runs past the end "
				      "of the file (%llu bytes)", a->path,
				      (unsigned long long)pos,
				      (unsigned long long)size,
				      (unsigned long long)fsize);
			break;
		}
		/* Data is padded to whole blocks; a last member's padding
		 * may be missing. size <= fsize, so no overflow. */
		padded = (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
		pos = vd_range_ok(data, padded, fsize) ? data + padded : fsize;

		if (type == 'L') {
			char *nm;

			ret = tar_read_ext(a, data, size, TAR_MAX_LONGNAME,
					   type, &nm, e);
			if (ret)
				break;
			free(ext_name);
			ext_name = nm;
			continue;
		}
		if (type == 'x') {
			char *rec;

			ret = tar_read_ext(a, data, size, TAR_MAX_PAX, type,
					   &rec, e);
			if (ret)
				break;
			ret = tar_pax(a, rec, size, data - TAR_BLOCK,
				      &ext_name, &pax_size, &has_pax_size,
				      &pax_sparse, e);
			free(rec);
			if (ret)
				break;
			continue;
		}
		if (type == 'g' || type == 'K')
			continue;

		/* A real member: its name is the extension's, else the
		 * header's: name at 0 (100 bytes), and for POSIX ustar
		 * ("ustar\0") a prefix at 345 (155 bytes) before it. GNU
		 * headers use 345 for other things. */
		char *name = ext_name;

		ext_name = NULL;
		if (!name) {
			size_t nl = strnlen((const char *)h, 100);
			size_t pl = 0;

			if (tar_ustar_magic(h) && h[262] == '\0')
				pl = strnlen((const char *)h + 345, 155);
			name = malloc(pl + 1 + nl + 1);
			if (!name) {
				ret = -ENOMEM;
				break;
			}
			if (pl)
				sprintf(name, "%.*s/%.*s", (int)pl,
					(const char *)h + 345, (int)nl,
					(const char *)h);
			else
				sprintf(name, "%.*s", (int)nl,
					(const char *)h);
		}
		if (type == '\0' || type == '7')
			type = '0';
		if (type == '0' && pax_sparse)
			type = 'S';
		has_pax_size = false;
		pax_sparse = false;
		ret = tar_add(a, name, data, size, type, e);
		if (ret)
			break;
	}
	free(ext_name);
	if (ret == -ENOMEM)
		vd_fail(e, ret, "%s: out of memory", a->path);
	return ret;
}

void vd_archive_free(struct vd_archive *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n; i++)
		free(a->m[i].name);
	free(a->m);
	vd_file_close(a->file);
	free(a->path);
	free(a->dir);
	free(a);
}

int vd_tar_open(struct vd_file *f, const char *path,
		struct vd_archive **a_r, struct vd_err *e)
{
	struct vd_archive *a = calloc(1, sizeof(*a));
	int ret;

	if (!a || !(a->path = strdup(path)) || !(a->dir = strdup(""))) {
		if (a)
			free(a->path);
		free(a);
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	}
	a->file = f;
	ret = tar_walk(a, e);
	if (ret) {
		a->file = NULL; /* the caller's still */
		vd_archive_free(a);
		return ret;
	}
	*a_r = a;
	return 0;
}

int vd_archive_foreach(const struct vd_archive *a,
		       int (*fn)(void *ctx, const struct vd_archive_member *m),
		       void *ctx)
{
	for (unsigned i = 0; i < a->n; i++) {
		int ret = fn(ctx, &a->m[i]);

		if (ret)
			return ret;
	}
	return 0;
}

struct vd_file *vd_archive_file(const struct vd_archive *a)
{
	return a->file;
}

/* The last member named dir + name (a later copy of a name replaces an
 * earlier one, as tar extraction would). */
static const struct vd_archive_member *ova_find(const struct vd_archive *a,
						const char *name)
{
	size_t dl = strlen(a->dir);

	/* Ends: "./" prefixes are two bytes each. */
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	for (unsigned i = a->n; i-- > 0;) {
		const char *m = a->m[i].name;

		if (!strncmp(m, a->dir, dl) && !strcmp(m + dl, name))
			return &a->m[i];
	}
	return NULL;
}

/* Open member m as a byte range of the tar, shown as "tar/member". */
static int ova_open_range(struct vd_archive *a,
			  const struct vd_archive_member *m,
			  struct vd_file **f_r, char **path_r,
			  struct vd_err *e)
{
	char *show;
	int ret;

	if (m->type != '0')
		return vd_fail(e, -ENOTSUP, "%s: member '%s' is %s, not a "
			       "plain file", a->path, m->name,
			       m->type == 'S' ? "a sparse file (GNU sparse "
						"members are not supported)" :
						"a link or special file");
	if (asprintf(&show, "%s/%s", a->path, m->name) < 0)
		return vd_fail(e, -ENOMEM, "%s: out of memory", a->path);
	ret = vd_file_open_range(a->file, m->off, m->size, show, f_r, e);
	if (ret) {
		free(show);
		return ret;
	}
	(*f_r)->archive = a;
	if (path_r)
		*path_r = show;
	else
		free(show);
	return 0;
}

int vd_archive_open_member(struct vd_archive *a, const char *name,
			   struct vd_file **f_r, char **path_r,
			   struct vd_err *e)
{
	const struct vd_archive_member *m;

	if (!vd_name_inside(name))
		return -ENOENT;
	m = ova_find(a, name);
	if (!m)
		return -ENOENT;
	return ova_open_range(a, m, f_r, path_r, e);
}

/* ---------------------------------------------------------- selection */

static bool ova_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcasecmp(s + n - k, suffix);
}

/* Disk number `disk` (0: the first) of the descriptor, checked for what
 * we can read. */
static int ova_pick(const struct vd_ovf *o, const char *desc, unsigned disk,
		    const struct vd_ovf_file **f_r, struct vd_err *e)
{
	const struct vd_ovf_disk *dk;
	const struct vd_ovf_file *f;
	unsigned n = disk ? disk : 1;

	if (n > o->n_disks)
		return vd_fail(e, -EINVAL, "%s: --disk=%u: the appliance has "
			       "%u disk%s", desc, disk, o->n_disks,
			       o->n_disks == 1 ? "" : "s");
	dk = &o->disks[n - 1];
	if (dk->file < 0)
		return vd_fail(e, -ENOTSUP, "%s: disk %u ('%s') has no file: "
			       "it is an empty disk the importer creates",
			       desc, n, dk->disk_id);
	f = &o->files[dk->file];
	if (f->chunk_size)
		return vd_fail(e, -ENOTSUP, "%s: disk %u file '%s' is split "
			       "into chunks (ovf:chunkSize=%llu); chunked "
			       "files are not supported", desc, n, f->href,
			       (unsigned long long)f->chunk_size);
	if (f->compression && strcmp(f->compression, "identity"))
		return vd_fail(e, -ENOTSUP, "%s: disk %u file '%s' is "
			       "compressed (ovf:compression=\"%s\"); "
			       "compressed files are not supported", desc, n,
			       f->href, f->compression);
	*f_r = f;
	return 0;
}

/* Read a descriptor of size bytes at off of f. */
static int ova_read_desc(struct vd_file *f, uint64_t off, uint64_t size,
			 const char *desc, char **buf_r, struct vd_err *e)
{
	char *buf;

	if (size > VD_OVF_MAX_BYTES)
		return vd_fail(e, -EUCLEAN, "%s: OVF descriptor of %llu bytes "
			       "(at most %u)", desc, (unsigned long long)size,
			       VD_OVF_MAX_BYTES);
	buf = malloc(size + 1);
	if (!buf)
		return vd_fail(e, -ENOMEM, "%s: out of memory", desc);
	if (size && vd_file_pread(f, buf, size, off)) {
		free(buf);
		return vd_fail(e, -EIO, "%s: cannot read the OVF descriptor",
			       desc);
	}
	buf[size] = '\0';
	*buf_r = buf;
	return 0;
}

static int ova_open(struct vd_file **f, char **path, unsigned disk,
		    struct vd_archive **ar_r, struct vd_err *e)
{
	const struct vd_archive_member *desc_m = NULL;
	const struct vd_ovf_file *of;
	const struct vd_archive_member *m;
	struct vd_archive *a;
	struct vd_ovf *o = NULL;
	struct vd_file *nf;
	char *desc = NULL, *buf = NULL, *npath, *slash;
	int ret;

	ret = vd_tar_open(*f, *path, &a, e);
	if (ret)
		return ret;
	/* The descriptor should come first (DSP0243 5.3); take the
	 * first *.ovf wherever it is. */
	for (unsigned i = 0; i < a->n && !desc_m; i++)
		if (a->m[i].type == '0' && ova_ends_with(a->m[i].name, ".ovf"))
			desc_m = &a->m[i];
	if (!desc_m) {
		ret = vd_fail(e, -EUCLEAN, "%s: a tar archive with no OVF "
			      "descriptor (*.ovf member), so not an OVA; "
			      "--format=raw mounts the file itself", *path);
		goto out;
	}
	if (asprintf(&desc, "%s/%s", *path, desc_m->name) < 0) {
		desc = NULL;
		ret = vd_fail(e, -ENOMEM, "%s: out of memory", *path);
		goto out;
	}
	/* The descriptor's hrefs are relative to its own folder. */
	slash = strrchr(desc_m->name, '/');
	if (slash) {
		free(a->dir);
		a->dir = strndup(desc_m->name,
				 (size_t)(slash - desc_m->name) + 1);
		if (!a->dir) {
			ret = vd_fail(e, -ENOMEM, "%s: out of memory", *path);
			goto out;
		}
	}
	ret = ova_read_desc(a->file, desc_m->off, desc_m->size, desc, &buf,
			    e);
	if (!ret)
		ret = vd_ovf_parse(buf, desc_m->size, desc, &o, e);
	if (!ret)
		ret = ova_pick(o, desc, disk, &of, e);
	if (ret)
		goto out;
	if (strstr(of->href, "://")) {
		ret = vd_fail(e, -ENOTSUP, "%s: disk file '%s' is a URL, not a "
			      "member of the OVA", desc, of->href);
		goto out;
	}
	if (!vd_name_inside(of->href)) {
		ret = vd_fail(e, -EPERM, "%s: disk file '%s' lies outside the "
			      "appliance; refused", desc, of->href);
		goto out;
	}
	m = ova_find(a, of->href);
	if (!m) {
		ret = vd_fail(e, -ENOENT, "%s: disk file '%s' is not in the "
			      "OVA", desc, of->href);
		goto out;
	}
	ret = ova_open_range(a, m, &nf, &npath, e);
	if (ret)
		goto out;
	/* The archive now owns the tar's file; the caller gets the
	 * member. */
	free(*path);
	*f = nf;
	*path = npath;
	*ar_r = a;
	a = NULL;
out:
	if (a) {
		a->file = NULL; /* still the caller's */
		vd_archive_free(a);
	}
	vd_ovf_free(o);
	free(buf);
	free(desc);
	return ret;
}

static int ovf_beside_open(struct vd_disk *d, struct vd_file **f,
			   char **path, unsigned disk, struct vd_err *e)
{
	const struct vd_ovf_file *of;
	struct vd_ovf *o = NULL;
	struct vd_file *nf;
	char *buf = NULL, *npath = NULL;
	int ret;

	ret = ova_read_desc(*f, 0, (*f)->size, *path, &buf, e);
	if (!ret)
		ret = vd_ovf_parse(buf, (*f)->size, *path, &o, e);
	if (!ret)
		ret = ova_pick(o, *path, disk, &of, e);
	if (!ret)
		ret = vd_disk_open_named(d, *path, of->href, "disk file", &nf,
					 &npath, e);
	if (!ret) {
		vd_file_close(*f);
		free(*path);
		*f = nf;
		*path = npath;
	}
	vd_ovf_free(o);
	free(buf);
	return ret;
}

/* What an image format claims the head as its own, if any. */
static bool ova_other_format(const uint8_t *head, size_t n)
{
	for (unsigned i = 0; vd_formats[i]; i++)
		if (vd_formats[i]->probe(head, n) > 0)
			return true;
	return false;
}

/* First bytes read to recognise an OVF descriptor: the root element's
 * start tag comes after at most a prolog and some comments. */
#define OVF_PROBE_BYTES (64u << 10)

int vd_appliance_open(struct vd_disk *d, struct vd_file **f, char **path,
		      unsigned disk, struct vd_archive **ar_r,
		      struct vd_err *e)
{
	size_t n = (size_t)VD_MIN((uint64_t)OVF_PROBE_BYTES, (*f)->size);
	uint8_t *head = NULL;
	size_t s = 0;
	int ret = 0;

	*ar_r = NULL;
	head = malloc(n + 1);
	if (!head)
		return vd_fail(e, -ENOMEM, "%s: out of memory", *path);
	if (n && vd_file_pread(*f, head, n, 0)) {
		free(head);
		return vd_fail(e, -EIO, "%s: cannot read the first %zu bytes",
			       *path, n);
	}
	/* An image format's magic wins: the bytes decide, not the name. */
	if (ova_other_format(head, n))
		goto not_appliance;
	if (vd_tar_probe(head, n)) {
		free(head);
		return ova_open(f, path, disk, ar_r, e);
	}
	/* XML: optional BOM and white space, then '<'. A file named *.ovf
	 * that no format claims is read as a descriptor too, so that a
	 * broken one is reported rather than mounted as a raw disk. */
	if (n >= 3 && !memcmp(head, "\xef\xbb\xbf", 3))
		s = 3;
	while (s < n && (head[s] == ' ' || head[s] == '\t' ||
			 head[s] == '\n' || head[s] == '\r'))
		s++;
	if ((s < n && head[s] == '<' && vd_ovf_probe((const char *)head, n)) ||
	    ova_ends_with(*path, ".ovf")) {
		free(head);
		return ovf_beside_open(d, f, path, disk, e);
	}
not_appliance:
	free(head);
	if (disk)
		ret = vd_fail(e, -EINVAL, "%s: --disk=%u applies to OVA and "
			      "OVF appliances; this is not one", *path, disk);
	return ret;
}
