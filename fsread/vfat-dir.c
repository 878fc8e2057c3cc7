/* vfat directories: iteration, long names, short names, lookup, readdir
 * and the parent of a directory. Part of the vfat driver (vfat.c).
 *
 * A directory is a run of 32-byte entries: the fixed root region of
 * FAT12/16, or a cluster chain (at most 2 MiB, Linux's FAT_MAX_DIR_SIZE).
 * An entry whose first byte is 0 ends the directory, as the FAT
 * specification says. A long name is a run of parts (attribute 0x0f)
 * before its 8.3 entry, parsed as Linux's fat_parse_long parses it: the
 * first part carries 0x40 and the part count (1..20), the others count
 * down to 1, and every part carries the checksum of the 8.3 name. A part
 * that breaks the run starts a new one if it can (else it is passed
 * over); an 8.3 entry after a broken run, or whose checksum differs, is
 * shown by its 8.3 name. UTF-16 becomes UTF-8, surrogate pairs joined;
 * an unpaired surrogate is dropped, as the kernel's utf16s_to_utf8s drops
 * it. A name holding '/' cannot be shown and is skipped.
 *
 * readdir cookies: 0 is ".", 1 is "..", 2 + i resumes at entry i (the
 * entry after the last 8.3 entry returned, where the next long name
 * starts), so a listing in many calls reads the directory once. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/vfat.h"

/* A directory is read in pieces of up to this many bytes. */
#define VFAT_DIR_CHUNK 65536u
/* The parent map holds at most this many directories (24 bytes each). */
#define VFAT_PMAP_MAX (1u << 20)
/* Long-name parts: at most 20 of 13 UTF-16 units. */
#define VFAT_LFN_PARTS 20u
#define VFAT_LFN_UNITS (VFAT_LFN_PARTS * 13u)

struct vfat_dir {
	struct vfat_fs *f;
	uint64_t ino;
	bool fixed;    /* the FAT12/16 root region */
	uint64_t size; /* bytes */
	struct vfat_run *runs;
	size_t nruns;
	uint8_t *buf;
	uint64_t buf_start, buf_len; /* directory bytes held in buf */
};

/* One name of a directory. */
struct vfat_dent {
	uint64_t next; /* the entry index after the 8.3 entry */
	uint64_t ino;  /* the 8.3 entry's position / 32 */
	uint8_t de[VFAT_DE_SIZE];
	bool dot; /* a "." or ".." entry */
	char name[VFAT_UTF8_MAX + 4];
	char sfn[40]; /* the 8.3 name (its alias), case flags ignored */
};

static void vfat_dir_close(struct vfat_dir *d)
{
	free(d->runs);
	free(d->buf);
}

/* Open the directory whose chain starts at cluster start, or the root
 * (start 0). ino names it in messages. */
static int vfat_dir_open_at(struct vfat_fs *f, uint32_t start, uint64_t ino,
			    struct vfat_dir *d)
{
	uint64_t max = VD_MAX(VFAT_MAX_DIR_BYTES / f->csize, 1u), count;
	int ret;

	memset(d, 0, sizeof(*d));
	d->f = f;
	d->ino = ino;
	if (!start && f->bits != 32) {
		d->fixed = true;
		d->size = f->root_bytes;
	} else {
		if (!start)
			start = f->root_cluster;
		ret = vd_vfat_chain(f, start, max + 1, "directory", ino,
				    &d->runs, &d->nruns, &count);
		if (ret)
			return ret;
		if (count > max) {
			vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64 " is "
			       "longer than %u bytes", f->name, ino,
			       VFAT_MAX_DIR_BYTES);
			vfat_dir_close(d);
			return -EIO;
		}
		d->size = count * f->csize;
	}
	d->buf = malloc(VD_MAX(VFAT_DIR_CHUNK, f->csize));
	if (!d->buf) {
		vfat_dir_close(d);
		return -ENOMEM;
	}
	return 0;
}

/* Open directory inode ino: -ENOTDIR for a file. */
static int vfat_dir_open(struct vfat_fs *f, uint64_t ino, struct vfat_dir *d)
{
	uint8_t de[VFAT_DE_SIZE];
	uint32_t start;
	int ret;

	if (ino == VFAT_ROOT_INO)
		return vfat_dir_open_at(f, 0, ino, d);
	ret = vd_vfat_read_de(f, ino, de);
	if (ret)
		return ret;
	if (!(de[11] & VFAT_ATTR_DIR))
		return -ENOTDIR;
	start = vd_vfat_de_cluster(f, de);
	if (!start) {
		vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64 " has no "
		       "first cluster", f->name, ino);
		return -EIO;
	}
	return vfat_dir_open_at(f, start, ino, d);
}

/* Entry idx of d: *p_r points to its 32 bytes (valid until the next
 * call), *pos_r is its byte position in the volume. 1 past the end. */
static int vfat_dir_get(struct vfat_dir *d, uint64_t idx, const uint8_t **p_r,
			uint64_t *pos_r)
{
	struct vfat_fs *f = d->f;
	uint64_t off = idx * VFAT_DE_SIZE, vpos, len, start;

	if (idx >= d->size / VFAT_DE_SIZE)
		return 1;
	if (off < d->buf_start || off - d->buf_start >= d->buf_len) {
		if (d->fixed) {
			start = off - off % VFAT_DIR_CHUNK;
			len = VD_MIN(VFAT_DIR_CHUNK, d->size - start);
			vpos = f->root_off + start;
		} else {
			uint64_t contig, in;

			start = off - off % f->csize;
			vpos = vd_vfat_run_pos(f, d->runs, d->nruns,
					       start / f->csize, &contig);
			in = VD_MAX(VFAT_DIR_CHUNK, f->csize);
			len = VD_MIN(contig * f->csize, in - in % f->csize);
		}
		d->buf_len = 0;
		if (vd_vol_read(f->base.vol, d->buf, len, vpos)) {
			vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64
			       ": bytes at 0x%" PRIx64 " unreadable", f->name,
			       d->ino, vpos);
			return -EIO;
		}
		d->buf_start = start;
		d->buf_len = len;
	}
	*p_r = d->buf + (off - d->buf_start);
	if (d->fixed)
		*pos_r = f->root_off + off;
	else
		*pos_r = vd_vfat_run_pos(f, d->runs, d->nruns, off / f->csize,
					 &len) + off % f->csize;
	return 0;
}

/* The checksum of an 8.3 name that each long-name part carries. */
static uint8_t vfat_checksum(const uint8_t *n)
{
	uint8_t s = 0;

	for (unsigned i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + n[i]);
	return s;
}

/* The 13 UTF-16 units of a long-name part (offsets 1, 14, 28). */
static void vfat_lfn_units(const uint8_t *p, uint16_t *u)
{
	static const uint8_t at[13] = { 1,  3,  5,  7,	9,  14, 16,
					18, 20, 22, 24, 28, 30 };

	for (unsigned i = 0; i < 13; i++)
		u[i] = get_le16(p + at[i]);
}

/* UTF-16 units (up to n, or the first 0) as UTF-8 into out: the length. */
static size_t vfat_utf16_to_utf8(const uint16_t *u, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n && u[i]; i++) {
		uint32_t c = u[i];

		if (c >= 0xdc00 && c <= 0xdfff)
			continue; /* a low surrogate alone */
		if (c >= 0xd800 && c <= 0xdbff) {
			if (i + 1 >= n || u[i + 1] < 0xdc00 ||
			    u[i + 1] > 0xdfff)
				continue; /* a high surrogate alone */
			c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00);
			i++;
		}
		o += vd_vfat_utf8_put(out + o, c);
	}
	out[o] = '\0';
	return o;
}

/* The 8.3 name of de as shown: trailing spaces trimmed, 0x05 meaning
 * 0xe5, and, when lower is set, the NT case flags at offset 12 applied
 * (ASCII letters only). */
static void vfat_short_name(struct vfat_fs *f, const uint8_t *de, bool lower,
			    char *out)
{
	uint8_t b[8], x[3];
	size_t nb = 8, nx = 3, o;

	memcpy(b, de, 8);
	memcpy(x, de + 8, 3);
	if (b[0] == 0x05)
		b[0] = 0xe5;
	while (nb && b[nb - 1] == ' ')
		nb--;
	while (nx && x[nx - 1] == ' ')
		nx--;
	for (size_t i = 0; lower && i < nb; i++)
		if (de[12] & VFAT_CASE_LOWER_BASE && b[i] >= 'A' && b[i] <= 'Z')
			b[i] = (uint8_t)(b[i] + 32);
	for (size_t i = 0; lower && i < nx; i++)
		if (de[12] & VFAT_CASE_LOWER_EXT && x[i] >= 'A' && x[i] <= 'Z')
			x[i] = (uint8_t)(x[i] + 32);
	vd_vfat_cp_decode(f, b, nb, out);
	if (!nx)
		return;
	o = strlen(out);
	out[o++] = '.';
	vd_vfat_cp_decode(f, x, nx, out + o);
}

/* The next name of d from entry *idx on: 1 with *e filled and *idx moved
 * past it, 0 at the end of the directory, or -errno. Deleted entries,
 * volume labels and names no path can hold are passed over. */
static int vfat_dir_next(struct vfat_dir *d, uint64_t *idx,
			 struct vfat_dent *e)
{
	uint16_t uni[VFAT_LFN_UNITS + 1];
	unsigned slots = 0, expect = 0;
	uint8_t csum = 0;
	uint64_t i = *idx;

	/* Ends: i grows on every pass and the directory is finite. */
	for (;;) {
		const uint8_t *p;
		uint64_t pos;
		int ret = vfat_dir_get(d, i, &p, &pos);

		if (ret) {
			*idx = i;
			return ret == 1 ? 0 : ret;
		}
		i++;
		if (p[0] == 0) { /* no entries follow */
			*idx = d->size / VFAT_DE_SIZE;
			return 0;
		}
		if (p[0] == 0xe5) { /* deleted */
			slots = expect = 0;
			continue;
		}
		if (p[11] == VFAT_ATTR_LFN) {
			unsigned id = p[0] & ~0x40u;

			if (expect && id == expect && p[13] == csum) {
				expect--;
				vfat_lfn_units(p, uni + expect * 13);
				continue;
			}
			/* Not the next part: maybe the start of a new run
			 * (fat_parse_long's "goto parse_long"). */
			slots = expect = 0;
			if (!(p[0] & 0x40) || !id || id > VFAT_LFN_PARTS)
				continue;
			slots = id;
			expect = id - 1;
			csum = p[13];
			uni[slots * 13] = 0;
			vfat_lfn_units(p, uni + expect * 13);
			continue;
		}
		if (p[11] & VFAT_ATTR_VOLUME) { /* the volume label */
			slots = expect = 0;
			continue;
		}
		memcpy(e->de, p, VFAT_DE_SIZE);
		e->ino = pos / VFAT_DE_SIZE;
		e->next = i;
		e->dot = p[0] == '.' && (!memcmp(p, ".          ", 11) ||
					 !memcmp(p, "..         ", 11));
		vfat_short_name(d->f, p, false, e->sfn);
		e->name[0] = '\0';
		if (slots && !expect && vfat_checksum(p) == csum)
			vfat_utf16_to_utf8(uni, slots * 13, e->name);
		if (!e->name[0])
			vfat_short_name(d->f, p, true, e->name);
		slots = expect = 0;
		if (strchr(e->name, '/') || !e->name[0]) {
			vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64 ": "
			       "entry at 0x%" PRIx64 " has a name no path can "
			       "hold; skipped", d->f->name, d->ino, pos);
			continue;
		}
		*idx = i;
		return 1;
	}
}

/* ---- the parent map ---- */

/* Directories' parents, as lookups and listings met them: an open-
 * addressing hash table of (dir, parent), at most VFAT_PMAP_MAX. */
struct vfat_pent {
	uint64_t dir, parent; /* dir 0: empty */
};

struct vfat_pmap {
	size_t n, cap; /* cap a power of two */
	struct vfat_pent *e;
};

static size_t vfat_pmap_slot(uint64_t dir, size_t cap)
{
	return (size_t)((dir * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static void vfat_pmap_put(struct vfat_fs *f, uint64_t dir, uint64_t parent)
{
	struct vfat_pmap *m;
	size_t s;

	pthread_mutex_lock(&f->parent_lock);
	if (!f->pmap)
		f->pmap = calloc(1, sizeof(*f->pmap));
	m = f->pmap;
	if (!m)
		goto out;
	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 256;
		struct vfat_pent *old = m->e;
		size_t ocap = m->cap;

		if (m->n >= VFAT_PMAP_MAX)
			goto out; /* full: the slow way finds the rest */
		m->e = calloc(cap, sizeof(*m->e));
		if (!m->e) {
			m->e = old;
			goto out;
		}
		m->cap = cap;
		m->n = 0;
		for (size_t i = 0; i < ocap; i++) {
			uint64_t d = old[i].dir;

			if (!d)
				continue;
			s = vfat_pmap_slot(d, cap);
			while (m->e[s].dir)
				s = (s + 1) & (cap - 1);
			m->e[s].dir = d;
			m->e[s].parent = old[i].parent;
			m->n++;
		}
		free(old);
	}
	s = vfat_pmap_slot(dir, m->cap);
	/* Ends: the table is at most half full. */
	while (m->e[s].dir && m->e[s].dir != dir)
		s = (s + 1) & (m->cap - 1);
	if (!m->e[s].dir)
		m->n++;
	m->e[s].dir = dir;
	m->e[s].parent = parent;
out:
	pthread_mutex_unlock(&f->parent_lock);
}

static bool vfat_pmap_get(struct vfat_fs *f, uint64_t dir, uint64_t *parent)
{
	struct vfat_pmap *m;
	bool found = false;

	pthread_mutex_lock(&f->parent_lock);
	m = f->pmap;
	if (m && m->cap) {
		size_t s = vfat_pmap_slot(dir, m->cap);

		/* Ends: the table always has empty slots. */
		while (m->e[s].dir && m->e[s].dir != dir)
			s = (s + 1) & (m->cap - 1);
		if (m->e[s].dir == dir) {
			*parent = m->e[s].parent;
			found = true;
		}
	}
	pthread_mutex_unlock(&f->parent_lock);
	return found;
}

void vd_vfat_pmap_free(struct vfat_fs *f)
{
	if (f->pmap) {
		free(f->pmap->e);
		free(f->pmap);
		f->pmap = NULL;
	}
}

/* The cluster the ".." entry (the second) of the directory starting at
 * cluster cl names; 0 is the root. */
static int vfat_dotdot(struct vfat_fs *f, uint32_t cl, uint64_t ino,
		       uint32_t *parent_r)
{
	uint8_t de[VFAT_DE_SIZE];

	if (cl < 2 || cl - 2 >= f->clusters || f->csize < 2 * VFAT_DE_SIZE ||
	    vd_vol_read(f->base.vol, de, sizeof(de),
			f->data_off + (uint64_t)(cl - 2) * f->csize +
				VFAT_DE_SIZE) ||
	    memcmp(de, "..         ", 11) || !(de[11] & VFAT_ATTR_DIR)) {
		vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64 ": no "
		       "\"..\" entry in cluster %" PRIu32, f->name, ino, cl);
		return -EIO;
	}
	*parent_r = vd_vfat_de_cluster(f, de);
	if (f->bits == 32 && *parent_r == f->root_cluster)
		*parent_r = 0;
	return 0;
}

/* The parent of directory dir: from the map, else as the kernel finds
 * it: the ".." entry gives the parent's cluster, the parent's ".." the
 * grandparent, whose entry naming that cluster is the parent's. */
static int vfat_parent(struct vfat_fs *f, uint64_t dir, uint64_t *parent_r)
{
	uint8_t de[VFAT_DE_SIZE];
	uint32_t pcl, gcl;
	struct vfat_dir g;
	struct vfat_dent *e;
	uint64_t i = 0;
	int ret;

	if (dir == VFAT_ROOT_INO || vfat_pmap_get(f, dir, parent_r)) {
		if (dir == VFAT_ROOT_INO)
			*parent_r = VFAT_ROOT_INO;
		return 0;
	}
	ret = vd_vfat_read_de(f, dir, de);
	if (ret)
		return ret;
	ret = vfat_dotdot(f, vd_vfat_de_cluster(f, de), dir, &pcl);
	if (ret)
		return ret;
	if (!pcl) {
		*parent_r = VFAT_ROOT_INO;
		return 0;
	}
	ret = vfat_dotdot(f, pcl, dir, &gcl);
	if (ret)
		return ret;
	ret = vfat_dir_open_at(f, gcl, dir, &g);
	if (ret)
		return ret;
	e = malloc(sizeof(*e));
	if (!e) {
		vfat_dir_close(&g);
		return -ENOMEM;
	}
	ret = -EIO;
	/* Ends: vfat_dir_next moves i on and stops at the directory end. */
	while (vfat_dir_next(&g, &i, e) == 1) {
		if (!e->dot && e->de[11] & VFAT_ATTR_DIR &&
		    vd_vfat_de_cluster(f, e->de) == pcl) {
			*parent_r = e->ino;
			vfat_pmap_put(f, dir, e->ino);
			ret = 0;
			break;
		}
	}
	if (ret)
		vd_log(VD_LOG_ERR, "%s: vfat: directory %" PRIu64 ": its "
		       "parent (cluster %" PRIu32 ") is not found", f->name,
		       dir, pcl);
	free(e);
	vfat_dir_close(&g);
	return ret;
}

/* ---- operations ---- */

int vd_vfat_readdir(struct vd_fs *fs, uint64_t dir, uint64_t cookie,
		    vd_fs_fill fill, void *arg)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;
	struct vfat_dent *e = NULL;
	struct vfat_dir d;
	uint64_t parent = VFAT_ROOT_INO, i;
	int ret = vfat_dir_open(f, dir, &d);

	if (ret)
		return ret;
	if (cookie == 0 && fill(arg, ".", dir, DT_DIR, 1))
		goto out;
	if (cookie <= 1) {
		ret = vfat_parent(f, dir, &parent);
		if (ret)
			goto out;
		if (fill(arg, "..", parent, DT_DIR, 2))
			goto out;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		ret = -ENOMEM;
		goto out;
	}
	i = cookie < 2 ? 0 : cookie - 2;
	/* Ends: vfat_dir_next moves i on and stops at the directory end. */
	while ((ret = vfat_dir_next(&d, &i, e)) == 1) {
		bool isdir = e->de[11] & VFAT_ATTR_DIR;

		if (e->dot)
			continue;
		if (isdir)
			vfat_pmap_put(f, e->ino, dir);
		if (fill(arg, e->name, e->ino, isdir ? DT_DIR : DT_REG,
			 e->next + 2))
			break;
	}
	if (ret > 0)
		ret = 0;
out:
	free(e);
	vfat_dir_close(&d);
	return ret;
}

/* ASCII letters compared without case, as vfat compares names by
 * default; other bytes exactly. */
static bool vfat_name_eq_ci(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned ca = (uint8_t)*a, cb = (uint8_t)*b;

		if (ca >= 'A' && ca <= 'Z')
			ca += 32;
		if (cb >= 'A' && cb <= 'Z')
			cb += 32;
		if (ca != cb)
			return false;
		if (!ca)
			return true;
	}
}

int vd_vfat_lookup(struct vd_fs *fs, uint64_t dir, const char *name,
		   uint64_t *ino_r)
{
	struct vfat_fs *f = (struct vfat_fs *)fs;
	struct vfat_dent *e;
	struct vfat_dir d;
	uint64_t i = 0, found = 0;
	bool found_dir = false;
	int ret;

	if (!strcmp(name, ".")) {
		*ino_r = dir;
		return 0;
	}
	if (!strcmp(name, ".."))
		return vfat_parent(f, dir, ino_r);
	if (strlen(name) > VFAT_UTF8_MAX)
		return -ENAMETOOLONG;
	ret = vfat_dir_open(f, dir, &d);
	if (ret)
		return ret;
	e = malloc(sizeof(*e));
	if (!e) {
		vfat_dir_close(&d);
		return -ENOMEM;
	}
	/* An exact match wins; else the first that matches without case,
	 * by its long name or its 8.3 alias. Ends: vfat_dir_next moves i
	 * on and stops at the directory end. */
	while ((ret = vfat_dir_next(&d, &i, e)) == 1) {
		if (e->dot)
			continue;
		if (!strcmp(e->name, name)) {
			found = e->ino;
			found_dir = e->de[11] & VFAT_ATTR_DIR;
			break;
		}
		if (!found && (vfat_name_eq_ci(e->name, name) ||
			       vfat_name_eq_ci(e->sfn, name))) {
			found = e->ino;
			found_dir = e->de[11] & VFAT_ATTR_DIR;
		}
	}
	free(e);
	vfat_dir_close(&d);
	if (ret < 0)
		return ret;
	if (!found)
		return -ENOENT;
	if (found_dir)
		vfat_pmap_put(f, found, dir);
	*ino_r = found;
	return 0;
}

int vd_vfat_dir_stat(struct vfat_fs *f, uint64_t dir, uint64_t *subdirs_r,
		     uint64_t *size_r)
{
	struct vfat_dir d;
	uint64_t n = 0;
	int ret = vfat_dir_open(f, dir, &d);

	if (ret)
		return ret;
	*size_r = d.size;
	/* fat_subdirs: 8.3 entries (not free, not a label or long-name
	 * part) with the directory bit, "." and ".." included. Ends: one
	 * pass over a directory of bounded size. */
	for (uint64_t i = 0;; i++) {
		const uint8_t *p;
		uint64_t pos;

		ret = vfat_dir_get(&d, i, &p, &pos);
		if (ret || p[0] == 0)
			break;
		if (p[0] != 0xe5 && !(p[11] & VFAT_ATTR_VOLUME) &&
		    p[11] & VFAT_ATTR_DIR)
			n++;
	}
	vfat_dir_close(&d);
	if (ret < 0)
		return ret;
	*subdirs_r = n;
	return 0;
}

int vd_vfat_root_label(struct vfat_fs *f, char *label, size_t size)
{
	struct vfat_dir d;
	int ret = vfat_dir_open(f, VFAT_ROOT_INO, &d);

	if (ret)
		return ret;
	ret = -ENOENT;
	/* blkid's rule: the first live entry with the volume bit, not a
	 * long-name part and not a directory. Ends: one pass over the
	 * root directory. */
	for (uint64_t i = 0;; i++) {
		const uint8_t *p;
		uint64_t pos;
		size_t n = 11;
		char out[40];

		if (vfat_dir_get(&d, i, &p, &pos) || p[0] == 0)
			break;
		if (p[0] == 0xe5 || (p[11] & 0x3f) == VFAT_ATTR_LFN ||
		    (p[11] & (VFAT_ATTR_VOLUME | VFAT_ATTR_DIR)) !=
			    VFAT_ATTR_VOLUME)
			continue;
		while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
			n--;
		if (n == 7 && !memcmp(p, "NO NAME", 7))
			n = 0;
		vd_vfat_cp_decode(f, p, n, out);
		snprintf(label, size, "%s", out);
		ret = 0;
		break;
	}
	vfat_dir_close(&d);
	return ret;
}
