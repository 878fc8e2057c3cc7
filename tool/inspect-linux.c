/* vdtool inspect: a Linux root — its release files, hostname,
 * architecture, packages and fstab. Where libguestfs' inspection looks,
 * in the order it trusts them: os-release(5) (/etc, then /usr/lib),
 * lsb-release, then a distribution's own release file; Debian's
 * debian_version gives the point release os-release lacks. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tool/inspect.h"

/* Caps on what is read of each file. */
#define LNX_SMALL (64u << 10)	 /* release files, hostname */
#define LNX_FSTAB (1u << 20)
#define LNX_PKGDB (64u << 20)	 /* dpkg status, apk installed */
#define LNX_HEADER 64		 /* an ELF header */

static const char *const lnx_release_files[] = {
	"etc/os-release",     "usr/lib/os-release", "etc/lsb-release",
	"etc/redhat-release", "etc/fedora-release", "etc/centos-release",
	"etc/rocky-release",  "etc/debian_version", "etc/alpine-release",
	"etc/SuSE-release",   "etc/arch-release",   "etc/gentoo-release",
};

bool vdt_insp_linux_probe(struct vdt_insp *in, struct vdt_insp_os *os)
{
	bool rel = false;

	if (!vdt_insp_is_dir(in, os, "etc") ||
	    (!vdt_insp_is_dir(in, os, "bin") &&
	     !vdt_insp_is_dir(in, os, "usr/bin")))
		return false;
	for (size_t i = 0; i < VD_ARRAY_SIZE(lnx_release_files) && !rel; i++)
		rel = vdt_insp_exists(in, os, lnx_release_files[i]);
	return rel;
}

/* Read a file, warning on everything but its absence; a file larger
 * than cap is read in part (with a warning). 0 or -errno. */
static int lnx_read(struct vdt_insp *in, struct vdt_insp_os *os,
		    const char *rel, size_t cap, char **buf_r, size_t *len_r)
{
	int ret = vdt_insp_read(in, os, rel, cap, buf_r, len_r);

	if (ret == -EFBIG) {
		vdt_insp_warn(os, "%s: larger than %zu bytes; only its first "
			      "%zu bytes were read", rel, cap, cap);
		return 0;
	}
	if (ret && ret != -ENOENT)
		vdt_insp_warn(os, "%s: %s", rel, strerror(-ret));
	return ret;
}

static void lnx_long(struct vdt_insp_os *os, const char *rel, size_t n)
{
	if (n)
		vdt_insp_warn(os, "%s: %zu line%s longer than %u bytes skipped",
			      rel, n, n == 1 ? "" : "s", VDT_INSP_LINE_MAX);
}

/* Printable text only, trimmed, into out. */
static void lnx_copy(char *out, size_t sz, const char *s, size_t n)
{
	size_t o = 0;

	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	for (size_t i = 0; i < n && o + 1 < sz; i++)
		out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[o] = '\0';
}

/* ------------------------------------------------------------ release */

struct lnx_osr {
	char id[64], version_id[64], name[VDT_INSP_STR];
	char pretty[VDT_INSP_STR], codename[64], version[VDT_INSP_STR];
	char lsb_id[64], lsb_release[64], lsb_codename[64];
	char lsb_desc[VDT_INSP_STR], hostname[VDT_INSP_STR];
};

static void lnx_osr_kv(void *arg, const char *key, const char *val)
{
	struct lnx_osr *r = arg;
	static const struct {
		const char *key;
		size_t off, sz;
	} keys[] = {
#define K(k, f) { k, offsetof(struct lnx_osr, f), sizeof(((struct lnx_osr *)0)->f) }
		K("ID", id),
		K("VERSION_ID", version_id),
		K("NAME", name),
		K("PRETTY_NAME", pretty),
		K("VERSION_CODENAME", codename),
		K("VERSION", version),
		K("DISTRIB_ID", lsb_id),
		K("DISTRIB_RELEASE", lsb_release),
		K("DISTRIB_CODENAME", lsb_codename),
		K("DISTRIB_DESCRIPTION", lsb_desc),
		K("HOSTNAME", hostname),
#undef K
	};

	for (size_t i = 0; i < VD_ARRAY_SIZE(keys); i++)
		if (!strcmp(key, keys[i].key))
			lnx_copy((char *)r + keys[i].off, keys[i].sz, val,
				 strlen(val));
	/* Ubuntu's, when VERSION_CODENAME is missing. */
	if (!strcmp(key, "UBUNTU_CODENAME") && !r->codename[0])
		lnx_copy(r->codename, sizeof(r->codename), val, strlen(val));
}

static void lnx_kv_file(struct vdt_insp *in, struct vdt_insp_os *os,
			const char *rel, struct lnx_osr *r)
{
	char *buf;
	size_t len;

	if (lnx_read(in, os, rel, LNX_SMALL, &buf, &len))
		return;
	lnx_long(os, rel, vdt_insp_parse_kv(buf, len, lnx_osr_kv, r));
	free(buf);
}

static void lnx_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void lnx_release(struct vdt_insp *in, struct vdt_insp_os *os)
{
	static const char *const older[] = {
		"etc/redhat-release", "etc/fedora-release", "etc/centos-release",
		"etc/rocky-release", "etc/SuSE-release",
	};
	struct lnx_osr r = { 0 };
	char *buf;
	size_t len;

	if (vdt_insp_exists(in, os, "etc/os-release"))
		lnx_kv_file(in, os, "etc/os-release", &r);
	else
		lnx_kv_file(in, os, "usr/lib/os-release", &r);
	if (r.id[0]) {
		lnx_lower(r.id);
		snprintf(os->distro, sizeof(os->distro), "%s",
			 vdt_insp_distro(r.id));
		snprintf(os->version, sizeof(os->version), "%s", r.version_id);
		snprintf(os->product_name, sizeof(os->product_name), "%s",
			 r.pretty[0] ? r.pretty : r.name);
		snprintf(os->codename, sizeof(os->codename), "%s", r.codename);
		/* VERSION="12 (bookworm)" */
		if (!os->codename[0]) {
			char *p = strchr(r.version, '('), *q;

			if (p && (q = strchr(p, ')')))
				snprintf(os->codename, sizeof(os->codename),
					 "%.*s", (int)(q - p - 1), p + 1);
		}
	}
	if (!os->distro[0] && vdt_insp_exists(in, os, "etc/lsb-release")) {
		lnx_kv_file(in, os, "etc/lsb-release", &r);
		if (r.lsb_id[0]) {
			lnx_lower(r.lsb_id);
			snprintf(os->distro, sizeof(os->distro), "%s",
				 vdt_insp_distro(r.lsb_id));
			snprintf(os->version, sizeof(os->version), "%s",
				 r.lsb_release);
			snprintf(os->codename, sizeof(os->codename), "%s",
				 r.lsb_codename);
			snprintf(os->product_name, sizeof(os->product_name),
				 "%s", r.lsb_desc);
		}
	}
	for (size_t i = 0; !os->distro[0] && i < VD_ARRAY_SIZE(older); i++) {
		char d[64], v[64], c[64];

		if (lnx_read(in, os, older[i], LNX_SMALL, &buf, &len))
			continue;
		if (vdt_insp_parse_release(buf, len, d, v, c, sizeof(d))) {
			snprintf(os->distro, sizeof(os->distro), "%s",
				 d[0] ? d : "linux");
			snprintf(os->version, sizeof(os->version), "%s", v);
			snprintf(os->codename, sizeof(os->codename), "%s", c);
			lnx_copy(os->product_name, sizeof(os->product_name),
				 buf, strcspn(buf, "\n"));
		}
		free(buf);
	}
	/* Debian's point release ("12.5") is only in debian_version. */
	if ((!os->distro[0] || !strcmp(os->distro, "debian")) &&
	    !lnx_read(in, os, "etc/debian_version", LNX_SMALL, &buf, &len)) {
		char v[64];

		lnx_copy(v, sizeof(v), buf, strcspn(buf, "\n"));
		if (!os->distro[0])
			snprintf(os->distro, sizeof(os->distro), "debian");
		if (isdigit((unsigned char)v[0]))
			snprintf(os->version, sizeof(os->version), "%s", v);
		free(buf);
	}
	if (!os->distro[0] &&
	    !lnx_read(in, os, "etc/alpine-release", LNX_SMALL, &buf, &len)) {
		snprintf(os->distro, sizeof(os->distro), "alpinelinux");
		lnx_copy(os->version, sizeof(os->version), buf,
			 strcspn(buf, "\n"));
		free(buf);
	}
	if (!os->distro[0] && vdt_insp_exists(in, os, "etc/arch-release"))
		snprintf(os->distro, sizeof(os->distro), "archlinux");
	if (!os->distro[0] && vdt_insp_exists(in, os, "etc/gentoo-release"))
		snprintf(os->distro, sizeof(os->distro), "gentoo");
	if (!os->distro[0])
		vdt_insp_warn(os, "no distribution found in the release files");
	if (!vdt_insp_version(os->version, &os->major, &os->minor))
		os->major = os->minor = -1;
}

/* ------------------------------------------------------------ hostname */

static void lnx_hostname(struct vdt_insp *in, struct vdt_insp_os *os)
{
	static const char *const files[] = { "etc/hostname", "etc/HOSTNAME" };
	struct lnx_osr r = { 0 };
	char *buf;
	size_t len;

	for (size_t i = 0; i < VD_ARRAY_SIZE(files); i++) {
		if (lnx_read(in, os, files[i], LNX_SMALL, &buf, &len))
			continue;
		/* The first line that is not a comment. */
		char *l = buf;

		while (*l == '#' || *l == '\n') {
			l = strchr(l, '\n');
			l = l ? l + 1 : buf + len;
		}
		lnx_copy(os->hostname, sizeof(os->hostname), l,
			 strcspn(l, "\n"));
		free(buf);
		if (os->hostname[0])
			return;
	}
	if (vdt_insp_exists(in, os, "etc/sysconfig/network")) {
		lnx_kv_file(in, os, "etc/sysconfig/network", &r);
		snprintf(os->hostname, sizeof(os->hostname), "%s", r.hostname);
	}
}

/* ------------------------------------------------------------ arch */

static void lnx_arch(struct vdt_insp *in, struct vdt_insp_os *os)
{
	static const char *const bins[] = {
		"bin/sh",     "usr/bin/sh",   "bin/bash",	   "usr/bin/bash",
		"bin/ls",     "usr/bin/ls",   "bin/busybox", "sbin/init",
		"usr/lib/systemd/systemd",
	};

	for (size_t i = 0; i < VD_ARRAY_SIZE(bins); i++) {
		const char *a;
		char *buf;
		size_t len;
		int ret = vdt_insp_read(in, os, bins[i], LNX_HEADER, &buf, &len);

		if (ret == -ENOENT)
			continue;
		if (ret && ret != -EFBIG) {
			vdt_insp_warn(os, "%s: %s", bins[i], strerror(-ret));
			continue;
		}
		a = vdt_insp_elf_arch((const uint8_t *)buf, len);
		free(buf);
		if (a) {
			snprintf(os->arch, sizeof(os->arch), "%s", a);
			return;
		}
		vdt_insp_warn(os, "%s: not an ELF binary of a known machine",
			      bins[i]);
	}
	vdt_insp_warn(os, "architecture: no core binary could be read");
}

/* ------------------------------------------------------------ packages */

static void lnx_pkgfile(struct vdt_insp *in, struct vdt_insp_os *os,
			const char *rel,
			int (*parse)(const char *, size_t,
				     struct vdt_insp_pkgs *, size_t *))
{
	size_t len, nlong = 0;
	char *buf;
	int ret;

	if (lnx_read(in, os, rel, LNX_PKGDB, &buf, &len))
		return;
	ret = parse(buf, len, &os->pkgs, &nlong);
	free(buf);
	if (nlong)
		vdt_insp_warn(os, "%s: %zu field%s longer than %u bytes cut", rel,
			      nlong, nlong == 1 ? "" : "s", VDT_INSP_FIELD_MAX);
	if (ret)
		vdt_insp_warn(os, "%s: %s", rel, strerror(-ret));
	if (os->pkgs.dropped)
		vdt_insp_warn(os, "%s: only the first %u packages are listed",
			      rel, VDT_INSP_MAX_PKGS);
	os->have_pkgs = true;
}

static void lnx_packages(struct vdt_insp *in, struct vdt_insp_os *os)
{
	static const char *const rpmdirs[] = { "usr/lib/sysimage/rpm",
					       "var/lib/rpm" };

	if (vdt_insp_exists(in, os, "var/lib/dpkg/status")) {
		strcpy(os->pkg_format, "deb");
		strcpy(os->pkg_mgmt, "apt");
		lnx_pkgfile(in, os, "var/lib/dpkg/status", vdt_insp_parse_dpkg);
		return;
	}
	if (vdt_insp_exists(in, os, "lib/apk/db/installed")) {
		strcpy(os->pkg_format, "apk");
		strcpy(os->pkg_mgmt, "apk");
		lnx_pkgfile(in, os, "lib/apk/db/installed", vdt_insp_parse_apk);
		return;
	}
	for (size_t i = 0; i < VD_ARRAY_SIZE(rpmdirs); i++) {
		char p[64];
		bool db = false;

		for (const char *const *f = (const char *const[]){
			     "rpmdb.sqlite", "Packages", "Packages.db", NULL };
		     *f && !db; f++) {
			snprintf(p, sizeof(p), "%s/%s", rpmdirs[i], *f);
			db = vdt_insp_exists(in, os, p);
		}
		if (!db)
			continue;
		strcpy(os->pkg_format, "rpm");
		if (vdt_insp_exists(in, os, "usr/bin/dnf") ||
		    vdt_insp_exists(in, os, "usr/bin/dnf5"))
			strcpy(os->pkg_mgmt, "dnf");
		else if (vdt_insp_exists(in, os, "usr/bin/zypper"))
			strcpy(os->pkg_mgmt, "zypper");
		else if (vdt_insp_exists(in, os, "usr/bin/yum"))
			strcpy(os->pkg_mgmt, "yum");
		vdt_insp_rpm(in, os, rpmdirs[i]);
		return;
	}
	if (vdt_insp_is_dir(in, os, "var/lib/pacman/local")) {
		strcpy(os->pkg_format, "pacman");
		strcpy(os->pkg_mgmt, "pacman");
	}
}

/* ------------------------------------------------------------ fstab */

/* crypttab(5) entries kept: a /dev/mapper name and the LUKS UUID it is
 * opened from. */
#define LNX_MAX_CRYPT 64

struct lnx_crypt {
	char name[128];
	char uuid[64];
};

struct lnx_fstab {
	struct vdt_insp *in;
	struct vdt_insp_os *os;
	size_t cap, skipped;
	int err;
	struct lnx_crypt crypt[LNX_MAX_CRYPT];
	size_t ncrypt;
};

/* A crypttab line: "NAME DEVICE [KEYFILE [OPTIONS]]", the same shape as
 * fstab's first fields. Only devices named by UUID= (or by-uuid) are
 * kept: vdmount names an opened LUKS volume luks-UUID. */
static void lnx_crypt_entry(void *arg, const char *name, const char *dev,
			    const char *key, const char *opts)
{
	struct lnx_fstab *x = arg;
	struct lnx_crypt *c;
	const char *u = NULL;

	(void)key;
	(void)opts;
	if (!strncmp(dev, "UUID=", 5))
		u = dev + 5;
	else if (!strncmp(dev, "/dev/disk/by-uuid/", 18))
		u = dev + 18;
	if (!u || x->ncrypt >= LNX_MAX_CRYPT || strlen(name) >= sizeof(c->name))
		return;
	c = &x->crypt[x->ncrypt++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->uuid, sizeof(c->uuid), "%s", u);
	for (char *p = c->uuid; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* btrfs' "subvol=NAME" among fstab's options: NAME (without leading
 * slashes) into out; false when there is none. */
static bool lnx_subvol(const char *opts, char *out, size_t sz)
{
	const char *p = opts, *q;

	/* Ends: p moves past a ',' each time, or stops. */
	while (p) {
		if (!strncmp(p, "subvol=", 7)) {
			p += 7;
			while (*p == '/')
				p++;
			q = strchr(p, ',');
			snprintf(out, sz, "%.*s",
				 (int)(q ? (size_t)(q - p) : strlen(p)), p);
			return out[0] != '\0';
		}
		q = strchr(p, ',');
		p = q ? q + 1 : NULL;
	}
	return false;
}

static void lnx_fstab_entry(void *arg, const char *spec, const char *file,
			    const char *type, const char *opts)
{
	static const char *const pre[] = { "/dev/", "UUID=", "LABEL=",
					   "PARTUUID=", "PARTLABEL=" };
	struct lnx_fstab *x = arg;
	struct vdt_insp_os *os = x->os;
	struct vdt_insp_mnt *m;
	struct vdt_insp_fs *f;
	char s[1024];
	size_t o = 0;
	bool dev = false;

	/* Swap and what is not a filesystem of a disk (proc, tmpfs, a
	 * network share) map nowhere. */
	if (!strcmp(type, "swap") || !strcmp(file, "none") || file[0] != '/')
		return;
	for (size_t i = 0; i < VD_ARRAY_SIZE(pre); i++)
		dev |= !strncmp(spec, pre[i], strlen(pre[i]));
	if (!dev || x->err)
		return;
	if (os->nmnts >= VDT_INSP_MAX_MNTS) {
		x->skipped++;
		return;
	}
	/* UUID="..." as some installers write it. */
	for (const char *p = spec; *p && o + 1 < sizeof(s); p++)
		if (*p != '"')
			s[o++] = *p;
	s[o] = '\0';
	if (os->nmnts == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 8;

		m = realloc(os->mnts, cap * sizeof(*m));
		if (!m) {
			x->err = -ENOMEM;
			return;
		}
		os->mnts = m;
		x->cap = cap;
	}
	m = &os->mnts[os->nmnts];
	memset(m, 0, sizeof(*m));
	m->spec = strdup(s);
	m->where = strdup(file);
	m->fstype = strdup(type);
	if (!m->spec || !m->where || !m->fstype) {
		free(m->spec);
		free(m->where);
		free(m->fstype);
		x->err = -ENOMEM;
		return;
	}
	f = vdt_insp_find_spec(x->in, s);
	/* /dev/mapper/NAME of crypttab: the LUKS volume vdmount opened
	 * (its filesystem shown as luks-UUID). */
	for (size_t i = 0; !f && i < x->ncrypt; i++)
		if (!strncmp(s, "/dev/mapper/", 12) &&
		    !strcmp(s + 12, x->crypt[i].name)) {
			char ls[sizeof(x->crypt[i].uuid) + 20];

			snprintf(ls, sizeof(ls), "/dev/mapper/luks-%s",
				 x->crypt[i].uuid);
			f = vdt_insp_find_spec(x->in, ls);
		}
	if (f) {
		char sv[VDT_INSP_STR];

		if (!strcmp(f->info.type, "btrfs") &&
		    lnx_subvol(opts, sv, sizeof(sv)))
			snprintf(m->path, sizeof(m->path), "%s/%s", f->path, sv);
		else
			snprintf(m->path, sizeof(m->path), "%s", f->path);
	}
	os->nmnts++;
}

static void lnx_fstab(struct vdt_insp *in, struct vdt_insp_os *os)
{
	struct lnx_fstab *x = calloc(1, sizeof(*x));
	size_t len, nlong;
	char *buf;

	if (!x)
		return;
	x->in = in;
	x->os = os;
	if (!lnx_read(in, os, "etc/crypttab", LNX_SMALL, &buf, &len)) {
		lnx_long(os, "etc/crypttab",
			 vdt_insp_parse_fstab(buf, len, lnx_crypt_entry, x));
		free(buf);
	}
	if (lnx_read(in, os, "etc/fstab", LNX_FSTAB, &buf, &len)) {
		free(x);
		return;
	}
	nlong = vdt_insp_parse_fstab(buf, len, lnx_fstab_entry, x);
	free(buf);
	lnx_long(os, "etc/fstab", nlong);
	if (x->skipped)
		vdt_insp_warn(os, "etc/fstab: %zu entries past the first %u "
			      "left out", x->skipped, VDT_INSP_MAX_MNTS);
	if (x->err)
		vdt_insp_warn(os, "etc/fstab: %s", strerror(-x->err));
	os->have_mnts = true;
	free(x);
}

void vdt_insp_linux(struct vdt_insp *in, struct vdt_insp_os *os)
{
	strcpy(os->type, "linux");
	lnx_release(in, os);
	lnx_hostname(in, os);
	lnx_arch(in, os);
	if (!in->brief)
		lnx_packages(in, os);
	lnx_fstab(in, os);
}
