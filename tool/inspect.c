/* vdtool inspect: what operating system an image holds — as
 * virt-inspector answers it, without booting anything.
 *
 * Every filesystem the namespace shows is a candidate root: a Linux root
 * has an /etc with os-release or a distribution's release file and a
 * /bin or /usr/bin (inspect-linux.c); a Windows root a folder holding
 * System32/config (inspect-win.c). Only the files inspection needs are
 * read, each through the namespace with symlinks resolved as in a chroot
 * at the root (".." stops there, an absolute target starts there: no
 * guest link reaches another filesystem), each up to a cap. A btrfs
 * whose top level is no root is looked into: each writable subvolume is
 * a candidate (Fedora installs into one named "root"). A file that cannot be read, or holds garbage, is a warning
 * of its root; the report goes on.
 *
 * The JSON names fields as libguestfs' inspect_get_* calls and
 * virt-inspector's XML do where they have one ("type", "distro",
 * "product_name", "major_version", "package_format", "mountpoints",
 * "applications", "drive_mappings", ...); man/vdtool.1 lists them. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/util.h"
#include "tool/inspect.h"
#include "tool/json.h"
#include "tool/vdtool.h"

enum { INSP_OPT_JSON = VDT_OPT_FIRST_FREE, INSP_OPT_PACKAGES };

/* Roots reported per image. */
#define INSP_MAX_ROOTS 64

/* ------------------------------------------------------------ helpers */

static const char *insp_root_name(const struct vdt_insp_os *os)
{
	return os->root[0] ? os->root : "?";
}

void vdt_insp_warn(struct vdt_insp_os *os, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, *e;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	if (!os->quiet) {
		e = vdt_escape(s);
		vdt_error("%s: %s", insp_root_name(os), e ? e : "?");
		free(e);
	}
	if (os->nwarn < VDT_INSP_MAX_WARN)
		os->warn[os->nwarn++] = s;
	else
		free(s);
}

/* Symlinks followed in one lookup, as Linux's MAXSYMLINKS; folders deep. */
#define INSP_MAX_LINKS 40
#define INSP_MAX_DEPTH 256
#define INSP_LINK_MAX 4096

int vdt_insp_lookup(struct vdt_insp *in, struct vdt_insp_os *os,
		    const char *rel, uint64_t *ino_r)
{
	uint64_t stack[INSP_MAX_DEPTH], ino;
	char *todo = strdup(rel), *p, *nt, *slash, *rest;
	char target[INSP_LINK_MAX];
	struct vd_fs_attr a;
	unsigned links = 0;
	size_t depth = 0;
	int ret = 0;

	if (!todo)
		return -ENOMEM;
	stack[depth++] = os->root_ino;
	p = todo;
	/* Ends: each step consumes a component, or expands a symlink
	 * (at most INSP_MAX_LINKS of them, each target bounded). */
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		rest = slash ? slash + 1 : p + strlen(p);
		if (!strcmp(p, ".")) {
			p = rest;
			continue;
		}
		/* The root's ".." is the root itself, as in a chroot. */
		if (!strcmp(p, "..")) {
			if (depth > 1)
				depth--;
			p = rest;
			continue;
		}
		ret = vd_ns_lookup(in->ns, stack[depth - 1], p, &ino);
		if (!ret)
			ret = vd_ns_getattr(in->ns, ino, &a);
		if (ret)
			break;
		if (S_ISLNK(a.mode)) {
			if (++links > INSP_MAX_LINKS) {
				ret = -ELOOP;
				break;
			}
			ret = vd_ns_readlink(in->ns, ino, target, sizeof(target));
			if (ret)
				break;
			if (target[0] == '/')
				depth = 1;
			if (asprintf(&nt, "%s/%s", target, rest) < 0) {
				ret = -ENOMEM;
				break;
			}
			free(todo);
			todo = p = nt;
			continue;
		}
		if (rest[strspn(rest, "/")] && !S_ISDIR(a.mode)) {
			ret = -ENOTDIR;
			break;
		}
		if (depth == INSP_MAX_DEPTH) {
			ret = -ENAMETOOLONG;
			break;
		}
		stack[depth++] = ino;
		p = rest;
	}
	if (!ret)
		*ino_r = stack[depth - 1];
	free(todo);
	return ret;
}

static int insp_stat(struct vdt_insp *in, struct vdt_insp_os *os,
		     const char *rel, uint64_t *ino_r, struct vd_fs_attr *a_r)
{
	int ret = vdt_insp_lookup(in, os, rel, ino_r);

	return ret ? ret : vd_ns_getattr(in->ns, *ino_r, a_r);
}

bool vdt_insp_is_dir(struct vdt_insp *in, struct vdt_insp_os *os,
		     const char *rel)
{
	struct vd_fs_attr a;
	uint64_t ino;

	return !insp_stat(in, os, rel, &ino, &a) && S_ISDIR(a.mode);
}

bool vdt_insp_exists(struct vdt_insp *in, struct vdt_insp_os *os,
		     const char *rel)
{
	struct vd_fs_attr a;
	uint64_t ino;

	return !insp_stat(in, os, rel, &ino, &a);
}

int vdt_insp_read(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *rel, size_t cap, char **buf_r, size_t *len_r)
{
	struct vd_ns_file *f;
	struct vd_fs_attr a;
	uint64_t ino, want;
	size_t got = 0, n;
	char *buf;
	int ret;

	ret = insp_stat(in, os, rel, &ino, &a);
	if (ret)
		return ret;
	if (!S_ISREG(a.mode))
		return S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
	want = VD_MIN(a.size, (uint64_t)cap);
	buf = malloc(want + 1);
	if (!buf)
		return -ENOMEM;
	ret = vd_ns_open_file(in->ns, ino, &f);
	if (ret) {
		free(buf);
		return ret;
	}
	/* Ends: each step reads more, or stops at the end of the file. */
	while (got < want) {
		ret = vd_ns_read(f, buf + got, want - got, got, &n);
		if (ret || !n)
			break;
		got += n;
	}
	vd_ns_release(f);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[got] = '\0';
	*buf_r = buf;
	*len_r = got;
	return a.size > cap ? -EFBIG : 0;
}

#define INSP_CHUNK (1u << 20)

int vdt_insp_copy(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *rel, uint64_t cap, int fd)
{
	struct vd_ns_file *f;
	struct vd_fs_attr a;
	uint64_t ino, off = 0;
	size_t n;
	char *buf;
	int ret;

	ret = insp_stat(in, os, rel, &ino, &a);
	if (ret)
		return ret;
	if (!S_ISREG(a.mode))
		return S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
	if (a.size > cap)
		return -EFBIG;
	buf = malloc(INSP_CHUNK);
	if (!buf)
		return -ENOMEM;
	ret = vd_ns_open_file(in->ns, ino, &f);
	if (ret) {
		free(buf);
		return ret;
	}
	/* Ends: off grows by n > 0 each step, up to the size (capped). */
	while (off < a.size) {
		ret = vd_ns_read(f, buf, VD_MIN(INSP_CHUNK, a.size - off), off,
				 &n);
		if (ret || !n)
			break;
		ret = vdt_pwrite_all(fd, buf, n, off);
		if (ret)
			break;
		off += n;
	}
	vd_ns_release(f);
	free(buf);
	return ret;
}

/* ------------------------------------------------------------ filesystems */

/* ext2/3/4 superblock (at byte 1024), s_state (le16) at 0x3a: 1 cleanly
 * unmounted, 2 errors detected (the kernel's ext4.h). */
#define INSP_EXT_SB 1024
#define INSP_EXT_STATE 0x3a

/* FAT's two marks of a volume not cleanly unmounted (Microsoft's FAT
 * specification, "FAT[1]"; the Linux kernel's fat driver): Linux sets
 * bit 0 of the boot sector's state byte (0x25 on FAT12/16, 0x41 on
 * FAT32) while mounted; Windows clears the "clean shutdown" bit of the
 * FAT's second entry (bit 15 on FAT16, bit 27 on FAT32). The driver
 * checked the boot sector's geometry at mount; the entry's offset is
 * still checked against the volume. */
static void insp_fat_state(struct vdt_insp_fs *f)
{
	const struct vd_vol *v = f->fs->vol;
	bool fat32 = !strcmp(f->info.subtype, "FAT32");
	bool fat16 = !strcmp(f->info.subtype, "FAT16");
	uint8_t bs[512], fe[4];
	uint64_t off;
	bool dirty;

	if (v->len < sizeof(bs) || vd_vol_read(v, bs, sizeof(bs), 0))
		return;
	dirty = bs[fat32 ? 0x41 : 0x25] & 1;
	/* Boot sector: bytes per sector (le16) at 0x0b, reserved sectors
	 * (le16) at 0x0e; the first FAT follows them. */
	off = (uint64_t)get_le16(bs + 0x0b) * get_le16(bs + 0x0e) +
	      (fat32 ? 4 : 2);
	if ((fat16 || fat32) && vd_range_ok(off, 4, v->len) &&
	    !vd_vol_read(v, fe, 4, off))
		dirty |= fat32 ? !(get_le32(fe) & 0x08000000) :
				 !(get_le16(fe) & 0x8000);
	f->clean = !dirty;
	f->state = dirty ? "dirty bit set" : "clean";
}

static void insp_fs_state(struct vdt_insp_fs *f)
{
	const char *t = f->info.type;
	uint8_t b[2];

	f->clean = -1;
	f->state = "unknown";
	if (!strncmp(t, "ext", 3)) {
		if (vd_vol_read(f->fs->vol, b, 2, INSP_EXT_SB + INSP_EXT_STATE))
			return;
		if (f->info.needed_recovery) {
			f->clean = 0;
			f->state = "journal needs recovery";
		} else if (get_le16(b) & 2) {
			f->clean = 0;
			f->state = "errors recorded";
		} else if (!(get_le16(b) & 1)) {
			f->clean = 0;
			f->state = "not cleanly unmounted";
		} else {
			f->clean = 1;
			f->state = "clean";
		}
	} else if (!strcmp(t, "xfs")) {
		f->clean = !f->info.needed_recovery;
		f->state = f->clean ? "clean" : "log needs recovery";
	} else if (!strcmp(t, "btrfs")) {
		f->clean = !f->info.needed_recovery;
		f->state = f->clean ? "clean" : "log tree not replayed";
	} else if (!strcmp(t, "ntfs")) {
		f->clean = !f->info.needed_recovery;
		f->state = f->clean ? "clean" : "dirty or hibernated";
	} else if (!strcmp(t, "vfat")) {
		insp_fat_state(f);
	}
}

static int insp_gather_fss(struct vdt_insp *in)
{
	const struct vd_volset *s = vd_ns_volset(in->ns);

	in->fss = calloc(s->n ? s->n : 1, sizeof(*in->fss));
	if (!in->fss)
		return -ENOMEM;
	for (unsigned i = 0; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];
		struct vdt_insp_fs *f = &in->fss[in->nfs];
		const char *err;
		uint64_t ino;

		memset(f, 0, sizeof(*f));
		f->fs = vd_ns_vol_fs(in->ns, i, &err);
		if (!f->fs)
			continue;
		f->vol = i;
		snprintf(f->path, sizeof(f->path), "/%s", i ? v->label : "fs");
		if (f->fs->ops->info)
			f->fs->ops->info(f->fs, &f->info);
		else
			snprintf(f->info.type, sizeof(f->info.type), "%s",
				 f->fs->ops->name);
		if (i && v->parent == s->vols[0] && v->desc)
			f->part = v->desc;
		if (vdt_resolve(in->ns, f->path, true, &ino))
			continue;
		f->root_ino = vd_ns_vol_root(in->ns, ino);
		insp_fs_state(f);
		in->nfs++;
	}
	return 0;
}

/* /dev/mapper's name of LV lv in VG vg: hyphens doubled, joined by
 * one. */
static void insp_dm_name(const char *vg, size_t vn, const char *lv, char *out,
			 size_t sz)
{
	size_t o = 0;

	for (size_t i = 0; i < vn && o + 3 < sz; i++) {
		if (vg[i] == '-')
			out[o++] = '-';
		out[o++] = vg[i];
	}
	if (o + 2 < sz)
		out[o++] = '-';
	for (; *lv && o + 3 < sz; lv++) {
		if (*lv == '-')
			out[o++] = '-';
		out[o++] = *lv;
	}
	out[o] = '\0';
}

/* The partition number of a first-disk device name ("/dev/sda2",
 * "/dev/vda1", "/dev/xvda3", "/dev/nvme0n1p2", "/dev/mmcblk0p1"), or 0.
 * The image is one disk: a name of another disk maps nowhere. */
static unsigned insp_dev_part(const char *spec)
{
	static const char *const pre[] = { "/dev/sda", "/dev/vda", "/dev/hda",
					   "/dev/xvda", "/dev/nvme0n1p",
					   "/dev/mmcblk0p" };
	char *end;

	for (size_t i = 0; i < VD_ARRAY_SIZE(pre); i++) {
		size_t n = strlen(pre[i]);
		unsigned long v;

		if (strncmp(spec, pre[i], n) || spec[n] < '1' || spec[n] > '9')
			continue;
		v = strtoul(spec + n, &end, 10);
		if (*end || v > 4096)
			return 0;
		return (unsigned)v;
	}
	return 0;
}

struct vdt_insp_fs *vdt_insp_find_spec(struct vdt_insp *in, const char *spec)
{
	const struct vd_volset *s = vd_ns_volset(in->ns);
	const char *v;
	char buf[VD_VOL_LABEL_MAX * 2 + 8];
	unsigned num;

	for (size_t i = 0; i < in->nfs; i++) {
		struct vdt_insp_fs *f = &in->fss[i];
		const struct vd_part *p = f->part;
		const char *label = s->vols[f->vol]->label;

		if ((!strncmp(spec, "UUID=", 5) && (v = spec + 5)) ||
		    (!strncmp(spec, "/dev/disk/by-uuid/", 18) &&
		     (v = spec + 18))) {
			if (f->info.uuid[0] && !strcasecmp(v, f->info.uuid))
				return f;
		} else if ((!strncmp(spec, "LABEL=", 6) && (v = spec + 6)) ||
			   (!strncmp(spec, "/dev/disk/by-label/", 19) &&
			    (v = spec + 19))) {
			if (f->info.label[0] && !strcmp(v, f->info.label))
				return f;
		} else if ((!strncmp(spec, "PARTUUID=", 9) && (v = spec + 9)) ||
			   (!strncmp(spec, "/dev/disk/by-partuuid/", 22) &&
			    (v = spec + 22))) {
			if (!p || !in->parts)
				continue;
			if (in->parts->scheme == VD_PART_GPT) {
				char u[40];

				vd_uuid_str(p->uuid, true, u);
				if (!strcasecmp(v, u))
					return f;
			} else {
				/* MBR: "SIGNATURE-NN" as blkid makes it. */
				snprintf(buf, sizeof(buf), "%08" PRIx32 "-%02x",
					 in->parts->mbr_id, p->num);
				if (!strcasecmp(v, buf))
					return f;
			}
		} else if (!strncmp(spec, "PARTLABEL=", 10)) {
			if (p && p->name[0] && !strcmp(spec + 10, p->name))
				return f;
		} else if (!strncmp(spec, "/dev/mapper/", 12)) {
			if (f->vol && !strcmp(spec + 12, label))
				return f;
		} else if ((num = insp_dev_part(spec))) {
			if (p && p->num == num)
				return f;
		} else if (!strncmp(spec, "/dev/", 5) && (v = strchr(spec + 5, '/')) &&
			   !strchr(v + 1, '/') && v[1]) {
			/* /dev/VG/LV */
			insp_dm_name(spec + 5, (size_t)(v - spec - 5), v + 1,
				     buf, sizeof(buf));
			if (f->vol && !strcmp(buf, label))
				return f;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ roots */

static void insp_os_free(struct vdt_insp_os *os)
{
	vdt_insp_pkgs_free(&os->pkgs);
	for (size_t i = 0; i < os->nmnts; i++) {
		free(os->mnts[i].spec);
		free(os->mnts[i].where);
		free(os->mnts[i].fstype);
	}
	free(os->mnts);
	for (size_t i = 0; i < os->nwarn; i++)
		free(os->warn[i]);
}

/* The filesystems a root uses: its own, then those its mounts name. */
static size_t insp_os_fss(const struct vdt_insp *in,
			  const struct vdt_insp_os *os,
			  struct vdt_insp_fs **out, size_t max)
{
	size_t n = 0;

	if (max)
		out[n++] = os->fs;
	for (size_t i = 0; i < os->nmnts && n < max; i++) {
		struct vdt_insp_fs *f = NULL;
		bool dup = false;

		/* A btrfs subvolume's path lies below its filesystem's. */
		for (size_t k = 0; k < in->nfs; k++) {
			size_t pl = strlen(in->fss[k].path);

			if (os->mnts[i].path[0] &&
			    !strncmp(in->fss[k].path, os->mnts[i].path, pl) &&
			    (!os->mnts[i].path[pl] || os->mnts[i].path[pl] == '/'))
				f = &in->fss[k];
		}
		for (size_t k = 0; f && k < n; k++)
			dup |= out[k] == f;
		if (f && !dup)
			out[n++] = f;
	}
	return n;
}

/* Inspect the folder root (a path in the tree) of f as a root: true
 * when it is one (os filled), else false (os cleared). */
static bool insp_try(struct vdt_insp *in, struct vdt_insp_fs *f,
		     const char *root, struct vdt_insp_os *os)
{
	struct vd_fs_attr a;
	uint64_t ino;

	memset(os, 0, sizeof(*os));
	os->fs = f;
	os->major = os->minor = -1;
	os->quiet = in->brief;
	snprintf(os->root, sizeof(os->root), "%s", root);
	if (vdt_resolve(in->ns, root, false, &ino) ||
	    vd_ns_getattr(in->ns, ino, &a) || !S_ISDIR(a.mode) ||
	    vd_ns_vol_root(in->ns, ino) != f->root_ino)
		return false;
	os->root_ino = ino;
	if (vdt_insp_linux_probe(in, os)) {
		vdt_insp_linux(in, os);
	} else if (vdt_insp_win_probe(in, os)) {
		vdt_insp_win(in, os);
	} else {
		insp_os_free(os);
		memset(os, 0, sizeof(*os));
		return false;
	}
	vdt_insp_pkgs_sort(&os->pkgs);
	return true;
}

/* The roots on filesystem f, into oss (at most max): its own root, else
 * the writable btrfs subvolumes that hold one (Fedora installs into a
 * subvolume "root"; read-only snapshots are left out, as copies). */
static size_t insp_fs_roots(struct vdt_insp *in, struct vdt_insp_fs *f,
			    struct vdt_insp_os *oss, size_t max)
{
	size_t n = 0;

	if (!max)
		return 0;
	if (insp_try(in, f, f->path, &oss[n]))
		return 1;
	for (size_t i = 0; f->info.subvol && i < f->info.nsubvols &&
			   i < INSP_MAX_ROOTS && n < max; i++) {
		struct vd_fs_subvol sv;
		char root[VDT_INSP_STR];

		if (f->info.subvol(f->fs, i, &sv) || !sv.path || sv.readonly)
			continue;
		if (snprintf(root, sizeof(root), "%s/%s", f->path, sv.path) >=
		    (int)sizeof(root))
			continue;
		if (insp_try(in, f, root, &oss[n]))
			n++;
	}
	return n;
}

int vdt_insp_brief(struct vd_ns *ns, struct vdt_insp_brief *b)
{
	struct vdt_insp in = { .ns = ns, .brief = true };
	struct vdt_insp_os os;
	int ret = -ENOENT;

	memset(b, 0, sizeof(*b));
	b->major = b->minor = -1;
	in.parts = vd_ns_parts(ns);
	if (insp_gather_fss(&in))
		return -ENOMEM;
	/* The first root, as vdtool inspect lists them. */
	for (size_t i = 0; i < in.nfs && ret; i++) {
		if (!insp_fs_roots(&in, &in.fss[i], &os, 1))
			continue;
		snprintf(b->type, sizeof(b->type), "%s", os.type);
		snprintf(b->distro, sizeof(b->distro), "%s", os.distro);
		snprintf(b->product_name, sizeof(b->product_name), "%s",
			 os.product_name);
		snprintf(b->product_variant, sizeof(b->product_variant), "%s",
			 os.product_variant);
		snprintf(b->arch, sizeof(b->arch), "%s", os.arch);
		b->major = os.major;
		b->minor = os.minor;
		insp_os_free(&os);
		ret = 0;
	}
	free(in.fss);
	return ret;
}

/* ------------------------------------------------------------ text */

static void insp_put(const char *s)
{
	vdt_put_escaped(stdout, s);
}

static void insp_pkg_version(const struct vdt_insp_pkg *p, char *out,
			     size_t sz)
{
	snprintf(out, sz, "%s%s%s%s%s", p->epoch && *p->epoch ? p->epoch : "",
		 p->epoch && *p->epoch ? ":" : "", p->version ? p->version : "",
		 p->release && *p->release ? "-" : "",
		 p->release ? p->release : "");
}

static void insp_text(const struct vdt_insp *in, struct vdt_insp_os *os,
		      bool packages)
{
	struct vdt_insp_fs *fss[VDT_INSP_MAX_MNTS + 1];
	size_t n;
	bool win = !strcmp(os->type, "windows");

	printf("root ");
	insp_put(os->root);
	printf(" (%s): %s", os->fs->info.type, os->type);
	if (win) {
		if (os->product_name[0]) {
			printf(", \"");
			insp_put(os->product_name);
			printf("\"");
		}
		if (os->major >= 0)
			printf(", %ld.%ld", os->major, os->minor);
		if (os->build_id[0]) {
			printf(" build ");
			insp_put(os->build_id);
		}
	} else {
		if (os->distro[0]) {
			printf(", ");
			insp_put(os->distro);
		}
		if (os->version[0]) {
			printf(" ");
			insp_put(os->version);
		}
		if (os->codename[0]) {
			printf(" \"");
			insp_put(os->codename);
			printf("\"");
		}
	}
	if (os->arch[0])
		printf(", %s", os->arch);
	if (os->hostname[0]) {
		printf(", hostname ");
		insp_put(os->hostname);
	}
	if (os->pkg_format[0]) {
		const char *fmt = !strcmp(os->pkg_format, "deb") ? "dpkg" :
								  os->pkg_format;

		printf(", %s", fmt);
		if (os->pkg_mgmt[0] && strcmp(os->pkg_mgmt, fmt))
			printf("/%s", os->pkg_mgmt);
	}
	if (os->have_pkgs)
		printf(", %zu %s", os->pkgs.n + os->pkgs.dropped,
		       win ? "applications" : "packages");
	printf("\n");
	if (os->product_name[0] && !win) {
		printf("  product: ");
		insp_put(os->product_name);
		printf("\n");
	}
	if (win && (os->edition[0] || os->product_variant[0] ||
		    os->systemroot[0])) {
		printf("  ");
		if (os->edition[0]) {
			printf("edition ");
			insp_put(os->edition);
			printf(", ");
		}
		if (os->product_variant[0]) {
			printf("installation type ");
			insp_put(os->product_variant);
			printf(", ");
		}
		printf("system root ");
		insp_put(os->systemroot);
		printf("\n");
	}
	if (os->have_mnts) {
		printf("  %s:", win ? "drive letters" : "fstab");
		for (size_t i = 0; i < os->nmnts; i++) {
			const struct vdt_insp_mnt *m = &os->mnts[i];

			printf("%s ", i ? "," : "");
			if (win) {
				insp_put(m->where);
				printf(" \u2192 %s", m->path[0] ? m->path : "?");
				continue;
			}
			if (m->path[0]) {
				printf("%s", m->path);
			} else {
				insp_put(m->spec);
				printf(" (not found)");
			}
			printf(" \u2192 ");
			insp_put(m->where);
		}
		printf("%s\n", os->nmnts ? "" : " none");
	}
	n = insp_os_fss(in, os, fss, VD_ARRAY_SIZE(fss));
	printf("  filesystems:");
	for (size_t i = 0; i < n; i++)
		printf("%s %s %s", i ? "," : "", fss[i]->path, fss[i]->state);
	printf("\n");
	if (packages && os->have_pkgs) {
		for (size_t i = 0; i < os->pkgs.n; i++) {
			const struct vdt_insp_pkg *p = &os->pkgs.p[i];
			char v[3 * VDT_INSP_FIELD_MAX + 8];

			insp_pkg_version(p, v, sizeof(v));
			printf("    ");
			insp_put(p->display_name ? p->display_name : p->name);
			printf("  ");
			insp_put(v);
			if (p->arch && *p->arch) {
				printf("  ");
				insp_put(p->arch);
			}
			printf("\n");
		}
	}
}

/* ------------------------------------------------------------ JSON */

static void insp_json_str(struct vdt_json *j, const char *key, const char *s)
{
	if (s && *s)
		vdt_json_str(j, key, s);
	else
		vdt_json_null(j, key);
}

static void insp_json(const struct vdt_insp *in, struct vdt_json *j,
		      struct vdt_insp_os *os, bool packages)
{
	struct vdt_insp_fs *fss[VDT_INSP_MAX_MNTS + 1];
	bool win = !strcmp(os->type, "windows");
	size_t n;

	vdt_json_obj(j, NULL);
	vdt_json_str(j, "root", os->root);
	vdt_json_str(j, "type", os->type);
	insp_json_str(j, "distro", os->distro);
	insp_json_str(j, "product_name", os->product_name);
	insp_json_str(j, "product_variant", os->product_variant);
	if (win)
		insp_json_str(j, "edition", os->edition);
	insp_json_str(j, "version", os->version);
	if (os->major >= 0) {
		vdt_json_i64(j, "major_version", os->major);
		vdt_json_i64(j, "minor_version", os->minor);
	} else {
		vdt_json_null(j, "major_version");
		vdt_json_null(j, "minor_version");
	}
	insp_json_str(j, "codename", os->codename);
	insp_json_str(j, "build_id", os->build_id);
	insp_json_str(j, "arch", os->arch);
	insp_json_str(j, "hostname", os->hostname);
	insp_json_str(j, "package_format", os->pkg_format);
	insp_json_str(j, "package_management", os->pkg_mgmt);
	if (win) {
		insp_json_str(j, "windows_systemroot", os->systemroot);
		insp_json_str(j, "windows_current_control_set", os->ccs);
	}
	if (os->have_pkgs)
		vdt_json_u64(j, "packages_count",
			     os->pkgs.n + os->pkgs.dropped);
	else
		vdt_json_null(j, "packages_count");
	vdt_json_arr(j, win ? "drive_mappings" : "mountpoints");
	for (size_t i = 0; i < os->nmnts; i++) {
		const struct vdt_insp_mnt *m = &os->mnts[i];

		vdt_json_obj(j, NULL);
		if (win) {
			vdt_json_str(j, "name", m->where);
		} else {
			vdt_json_str(j, "mountpoint", m->where);
			vdt_json_str(j, "device", m->spec);
			insp_json_str(j, "fstype", m->fstype);
		}
		insp_json_str(j, "path", m->path);
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
	n = insp_os_fss(in, os, fss, VD_ARRAY_SIZE(fss));
	vdt_json_arr(j, "filesystems");
	for (size_t i = 0; i < n; i++) {
		vdt_json_obj(j, NULL);
		vdt_json_str(j, "path", fss[i]->path);
		vdt_json_str(j, "type", fss[i]->info.type);
		insp_json_str(j, "uuid", fss[i]->info.uuid);
		insp_json_str(j, "label", fss[i]->info.label);
		if (fss[i]->clean >= 0)
			vdt_json_bool(j, "clean", fss[i]->clean);
		else
			vdt_json_null(j, "clean");
		vdt_json_str(j, "state", fss[i]->state);
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
	if (packages && os->have_pkgs) {
		vdt_json_arr(j, "applications");
		for (size_t i = 0; i < os->pkgs.n; i++) {
			const struct vdt_insp_pkg *p = &os->pkgs.p[i];

			vdt_json_obj(j, NULL);
			vdt_json_str(j, "name", p->name);
			if (win) {
				insp_json_str(j, "display_name", p->display_name);
				insp_json_str(j, "publisher", p->publisher);
			}
			insp_json_str(j, "epoch", p->epoch);
			insp_json_str(j, "version", p->version);
			insp_json_str(j, "release", p->release);
			insp_json_str(j, "arch", p->arch);
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
	}
	vdt_json_arr(j, "warnings");
	for (size_t i = 0; i < os->nwarn; i++)
		vdt_json_str(j, NULL, os->warn[i]);
	vdt_json_end_arr(j);
	vdt_json_end_obj(j);
}

/* ------------------------------------------------------------ command */

static void insp_usage(FILE *out)
{
	fprintf(out,
"usage: vdtool inspect [--json] [--packages] [options] IMAGE\n"
"\n"
"Say what operating system IMAGE holds, as virt-inspector does: for each\n"
"root filesystem found (Linux: /etc with os-release or a release file and\n"
"/bin or /usr/bin; Windows: a folder holding System32/config), its type,\n"
"distribution and version, architecture, hostname, package format and\n"
"manager, installed packages, the fstab (or drive letters) mapped onto the\n"
"tree's paths, and whether each filesystem was cleanly unmounted.\n"
"\n"
"  --json                one JSON object; fields named as virt-inspector\n"
"                        names them where it has one (see vdtool(1))\n"
"  --packages            list the installed packages (name, version, arch)\n"
"%s"
"\n"
"Exit status: 0 when an operating system was found (a file that could not\n"
"be read is a warning on stderr), 1 when the image cannot be opened or\n"
"holds no operating system found, 2 for a bad command line.\n",
		vdt_common_help);
}

int vdt_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		VDT_COMMON_LONGOPTS,
		{ "json", no_argument, NULL, INSP_OPT_JSON },
		{ "packages", no_argument, NULL, INSP_OPT_PACKAGES },
		{ NULL, 0, NULL, 0 },
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct vdt_insp in = { 0 };
	struct vdt_insp_os *oss = NULL;
	size_t nos = 0;
	struct vd_image img;
	bool json = false, packages = false;
	int opt, r, status = VDT_EXIT_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, VDT_COMMON_SHORTOPTS, longopts,
				  NULL)) != -1) {
		if (opt == 'h') {
			insp_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		if (opt == INSP_OPT_JSON) {
			json = true;
			continue;
		}
		if (opt == INSP_OPT_PACKAGES) {
			packages = true;
			continue;
		}
		r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);
		if (r == 1)
			continue;
		if (r == 0)
			fprintf(stderr, "Try 'vdtool inspect --help'.\n");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		vdt_error("expected one IMAGE (try --help)");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	if (vdt_open(&c, argv[optind], &img)) {
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	in.ns = img.ns;
	in.parts = vd_ns_parts(img.ns);
	oss = calloc(INSP_MAX_ROOTS, sizeof(*oss));
	if (!oss || insp_gather_fss(&in)) {
		vdt_error("out of memory");
		status = VDT_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < in.nfs && nos < INSP_MAX_ROOTS; i++)
		nos += insp_fs_roots(&in, &in.fss[i], &oss[nos],
				     INSP_MAX_ROOTS - nos);
	if (json) {
		struct vdt_json j;

		vdt_json_init(&j, stdout);
		vdt_json_obj(&j, NULL);
		vdt_json_str(&j, "image", argv[optind]);
		vdt_json_arr(&j, "operatingsystems");
		for (size_t i = 0; i < nos; i++)
			insp_json(&in, &j, &oss[i], packages);
		vdt_json_end_arr(&j);
		vdt_json_end_obj(&j);
	} else {
		for (size_t i = 0; i < nos; i++)
			insp_text(&in, &oss[i], packages);
	}
	if (!nos) {
		vdt_error("%s: no operating system found (%zu filesystem%s "
			  "looked at)", argv[optind], in.nfs,
			  in.nfs == 1 ? "" : "s");
		status = VDT_EXIT_FAIL;
	}
out:
	for (size_t i = 0; oss && i < nos; i++)
		insp_os_free(&oss[i]);
	free(oss);
	free(in.fss);
	vdt_close(&img);
	vdt_common_free(&c);
	if (fflush(stdout) || ferror(stdout)) {
		vdt_error("cannot write the report: %s", strerror(errno));
		return VDT_EXIT_FAIL;
	}
	return status;
}
