/* vdtool inspect: a Windows root — read from its registry hives through
 * hivex, the library made for them, and cmd.exe's PE header.
 *
 * hivex opens only a path, and the hive lies inside the image: each hive
 * is copied (up to WIN_HIVE_MAX bytes, in pieces) into a memfd, and
 * hivex opens /proc/self/fd/N — nothing is written to the host's disks.
 * hivex checks a hive's structure as it reads (every cell it follows must
 * be one it saw while opening); inspection walks only fixed key paths
 * and one level of Uninstall's subkeys (at most WIN_MAX_APPS), so a hive
 * whose keys loop cannot make it loop.
 *
 * What is read (the keys libguestfs' inspection reads):
 *   SOFTWARE\Microsoft\Windows NT\CurrentVersion: ProductName,
 *     CurrentMajorVersionNumber, CurrentMinorVersionNumber (else
 *     CurrentVersion "6.3"), CurrentBuildNumber (else CurrentBuild),
 *     EditionID, InstallationType;
 *   SOFTWARE\[WOW6432Node\]Microsoft\Windows\CurrentVersion\Uninstall\*:
 *     DisplayName, DisplayVersion — the applications;
 *   SYSTEM\Select: Current, naming ControlSet00N;
 *   SYSTEM\ControlSet00N\Services\Tcpip\Parameters: Hostname (else
 *     ...\Control\ComputerName\ComputerName: ComputerName);
 *   SYSTEM\MountedDevices: "\DosDevices\X:" — 12 bytes (MBR disk
 *     signature, partition offset) or "DMIO:ID:" and a GPT partition
 *     GUID — mapped onto the disk's partitions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hivex.h>

#include "common/lazy.h"
#include "common/util.h"
#include "tool/inspect.h"
#include "tool/vdtool.h"

#define WIN_HIVE_MAX (512ull << 20)
#define WIN_MAX_APPS 100000
#define WIN_PE_HEAD 4096

/* Entries looked at in one folder for a name that differs in case. */
#define WIN_CI_MAX (1u << 20)

struct win_ci {
	const char *want;
	char name[256];
	uint64_t ino, next;
	size_t seen;
	bool found, got;
};

static int win_ci_fill(void *arg, const char *name, uint64_t ino,
		       unsigned type, uint64_t next)
{
	struct win_ci *c = arg;

	(void)type;
	c->got = true;
	c->next = next;
	if (++c->seen > WIN_CI_MAX)
		return 1;
	if (!strcasecmp(name, c->want) && strlen(name) < sizeof(c->name)) {
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->ino = ino;
		c->found = true;
		return 1;
	}
	return 0;
}

/* The entry of dir named name without regard to case, as Windows finds
 * it (NTFS stores the case it was given): its inode and real name. The
 * folder is streamed, nothing kept but the match, at most WIN_CI_MAX
 * entries. 0, -ENOENT, or -errno. */
static int win_ci_find(struct vd_ns *ns, uint64_t dir, const char *name,
		       uint64_t *ino_r, char *real, size_t sz)
{
	struct win_ci c = { .want = name };
	uint64_t prev;
	int ret;

	/* Ends: each call resumes past the last entry seen, cookies must
	 * grow, and the entries are counted. */
	do {
		prev = c.next;
		c.got = false;
		ret = vd_ns_readdir(ns, dir, c.next, win_ci_fill, &c);
		if (!ret && c.got && !c.found && c.next <= prev)
			ret = -EIO;
	} while (!ret && c.got && !c.found && c.seen <= WIN_CI_MAX);
	if (ret)
		return ret;
	if (!c.found)
		return c.seen > WIN_CI_MAX ? -E2BIG : -ENOENT;
	*ino_r = c.ino;
	snprintf(real, sz, "%s", c.name);
	return 0;
}

/* The real name of rel's components, matched without case, into out.
 * 0 or -errno. */
static int win_ci_path(struct vdt_insp *in, struct vdt_insp_os *os,
		       const char *rel, char *out, size_t sz)
{
	char *todo = strdup(rel), *save = NULL, *c;
	uint64_t dir = os->root_ino, ino = 0;
	char real[256];
	size_t o = 0;
	int ret = 0;

	if (!todo)
		return -ENOMEM;
	out[0] = '\0';
	for (c = strtok_r(todo, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		const char *name = c;

		ret = vd_ns_lookup(in->ns, dir, c, &ino);
		if (ret == -ENOENT) {
			ret = win_ci_find(in->ns, dir, c, &ino, real,
					  sizeof(real));
			name = real;
		}
		if (!ret && o + strlen(name) + 2 > sz)
			ret = -ENAMETOOLONG;
		if (ret)
			break;
		o += (size_t)snprintf(out + o, sz - o, "%s%s", o ? "/" : "",
				      name);
		dir = ino;
	}
	free(todo);
	return ret;
}

bool vdt_insp_win_probe(struct vdt_insp *in, struct vdt_insp_os *os)
{
	static const char *const roots[] = { "Windows", "WINNT" };
	char p[VDT_INSP_STR];

	for (size_t i = 0; i < VD_ARRAY_SIZE(roots); i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "%s/System32/config", roots[i]);
		if (win_ci_path(in, os, rel, p, sizeof(p)) ||
		    !vdt_insp_is_dir(in, os, p))
			continue;
		/* "Windows/System32/config" as stored: the root is its
		 * first component. */
		snprintf(os->systemroot, sizeof(os->systemroot), "/%.*s",
			 (int)strcspn(p, "/"), p);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ hives */

/* Open the hive systemroot/System32/config/name with hivex. NULL with
 * a warning on failure. */
static hive_h *win_open(struct vdt_insp *in, struct vdt_insp_os *os,
			const char *name)
{
	char rel[VDT_INSP_STR + 64], p[VDT_INSP_STR + 64], fdp[64];
	hive_h *h;
	int fd, ret;

	snprintf(rel, sizeof(rel), "%s/System32/config/%s", os->systemroot + 1,
		 name);
	ret = win_ci_path(in, os, rel, p, sizeof(p));
	if (ret) {
		vdt_insp_warn(os, "%s: %s", rel, strerror(-ret));
		return NULL;
	}
	fd = memfd_create("vdtool-hive", MFD_CLOEXEC);
	if (fd < 0) {
		vdt_insp_warn(os, "%s: memfd_create: %s", p, strerror(errno));
		return NULL;
	}
	ret = vdt_insp_copy(in, os, p, WIN_HIVE_MAX, fd);
	if (ret == -EFBIG) {
		vdt_insp_warn(os, "%s: larger than %llu bytes; not read", p,
			      WIN_HIVE_MAX);
		close(fd);
		return NULL;
	}
	if (ret) {
		vdt_insp_warn(os, "%s: %s", p, strerror(-ret));
		close(fd);
		return NULL;
	}
	/* hivex is loaded on first use (common/lazy.h). */
	if (vd_lazy_need(&vd_lazy_hivex)) {
		vdt_insp_warn(os, "%s: hivex cannot be loaded: %s", p,
			      vd_lazy_hivex.error);
		close(fd);
		return NULL;
	}
	snprintf(fdp, sizeof(fdp), "/proc/self/fd/%d", fd);
	h = hivex_open(fdp, 0);
	ret = errno;
	/* hivex opened a descriptor of its own. */
	close(fd);
	if (!h)
		vdt_insp_warn(os, "%s: not a registry hive hivex can read: %s",
			      p, strerror(ret));
	return h;
}

/* The node at a backslash-separated path below node, or 0. */
static hive_node_h win_node(hive_h *h, hive_node_h node, const char *path)
{
	char buf[256], *save = NULL, *c;

	snprintf(buf, sizeof(buf), "%s", path);
	for (c = strtok_r(buf, "\\", &save); c && node;
	     c = strtok_r(NULL, "\\", &save))
		node = hivex_node_get_child(h, node, c);
	return node;
}

/* A string value into out (printable, trimmed); false when absent or not
 * a string. */
static bool win_str(hive_h *h, hive_node_h node, const char *key, char *out,
		    size_t sz)
{
	hive_value_h v;
	hive_type t;
	size_t len, o = 0;
	char *s;

	if (!node || !(v = hivex_node_get_value(h, node, key)))
		return false;
	if (hivex_value_type(h, v, &t, &len) ||
	    (t != hive_t_REG_SZ && t != hive_t_REG_EXPAND_SZ))
		return false;
	s = hivex_value_string(h, v);
	if (!s)
		return false;
	for (const char *p = s; *p && o + 1 < sz; p++)
		out[o++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
	out[o] = '\0';
	free(s);
	return o > 0;
}

static bool win_dword(hive_h *h, hive_node_h node, const char *key,
		      uint32_t *v_r)
{
	hive_value_h v;
	hive_type t;
	size_t len;

	if (!node || !(v = hivex_node_get_value(h, node, key)))
		return false;
	if (hivex_value_type(h, v, &t, &len) || t != hive_t_REG_DWORD ||
	    len != 4)
		return false;
	errno = 0;
	*v_r = (uint32_t)hivex_value_dword(h, v);
	return !errno;
}

static void win_apps(struct vdt_insp_os *os, hive_h *h, hive_node_h node)
{
	hive_node_h *kids;
	size_t i;
	int ret = 0;

	if (!node)
		return;
	kids = hivex_node_children(h, node);
	if (!kids) {
		vdt_insp_warn(os, "SOFTWARE: the Uninstall key's subkeys: %s",
			      strerror(errno));
		return;
	}
	for (i = 0; kids[i] && i < WIN_MAX_APPS && !ret; i++) {
		char disp[VDT_INSP_FIELD_MAX], ver[VDT_INSP_FIELD_MAX];
		char pub[VDT_INSP_FIELD_MAX];
		char *kn = hivex_node_name(h, kids[i]);

		/* As virt-inspector: the name is the subkey's, the
		 * DisplayName beside it. */
		if (!kn)
			continue;
		if (!win_str(h, kids[i], "DisplayName", disp, sizeof(disp)))
			disp[0] = '\0';
		if (!win_str(h, kids[i], "DisplayVersion", ver, sizeof(ver)))
			ver[0] = '\0';
		if (!win_str(h, kids[i], "Publisher", pub, sizeof(pub)))
			pub[0] = '\0';
		ret = vdt_insp_pkg_add(&os->pkgs, kn, strlen(kn),
				       ver[0] ? ver : NULL, strlen(ver), NULL,
				       0, NULL, 0, NULL, 0);
		free(kn);
		if (!ret)
			ret = vdt_insp_pkg_extra(&os->pkgs,
						 disp[0] ? disp : NULL,
						 pub[0] ? pub : NULL);
	}
	if (kids[i] && i == WIN_MAX_APPS)
		vdt_insp_warn(os, "SOFTWARE: only the first %u Uninstall keys "
			      "are read", WIN_MAX_APPS);
	if (ret)
		vdt_insp_warn(os, "SOFTWARE: %s", strerror(-ret));
	free(kids);
}

static void win_software(struct vdt_insp *in, struct vdt_insp_os *os)
{
	hive_h *h = win_open(in, os, "SOFTWARE");
	hive_node_h root, cv;
	uint32_t maj, min;
	char v[64];

	if (!h)
		return;
	root = hivex_root(h);
	cv = win_node(h, root, "Microsoft\\Windows NT\\CurrentVersion");
	if (!cv) {
		vdt_insp_warn(os, "SOFTWARE: no Microsoft\\Windows NT\\"
			      "CurrentVersion key");
	} else {
		win_str(h, cv, "ProductName", os->product_name,
			sizeof(os->product_name));
		if (!win_str(h, cv, "CurrentBuildNumber", os->build_id,
			     sizeof(os->build_id)))
			win_str(h, cv, "CurrentBuild", os->build_id,
				sizeof(os->build_id));
		win_str(h, cv, "EditionID", os->edition, sizeof(os->edition));
		win_str(h, cv, "InstallationType", os->product_variant,
			sizeof(os->product_variant));
		if (win_dword(h, cv, "CurrentMajorVersionNumber", &maj) &&
		    win_dword(h, cv, "CurrentMinorVersionNumber", &min)) {
			os->major = maj;
			os->minor = min;
		} else if (win_str(h, cv, "CurrentVersion", v, sizeof(v)) &&
			   !vdt_insp_version(v, &os->major, &os->minor)) {
			os->major = os->minor = -1;
		}
		if (os->major >= 0)
			snprintf(os->version, sizeof(os->version), "%ld.%ld",
				 os->major, os->minor);
		/* Windows 11 still says "Windows 10" in ProductName; its
		 * builds start at 22000 (as libguestfs corrects it). */
		if (!strncmp(os->product_name, "Windows 10", 10) &&
		    atol(os->build_id) >= 22000)
			os->product_name[9] = '1';
	}
	if (!in->brief) {
		win_apps(os, h, win_node(h, root, "Microsoft\\Windows\\"
					 "CurrentVersion\\Uninstall"));
		win_apps(os, h, win_node(h, root, "WOW6432Node\\Microsoft\\"
					 "Windows\\CurrentVersion\\Uninstall"));
		os->have_pkgs = true;
	}
	hivex_close(h);
}

/* ------------------------------------------------------------ SYSTEM */

static int win_mnt_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vdt_insp_mnt *)a)->where,
		      ((const struct vdt_insp_mnt *)b)->where);
}

/* The shown path of the disk's partition p, or "". */
static void win_part_path(struct vdt_insp *in, const struct vd_part *p,
			  char *out, size_t sz)
{
	out[0] = '\0';
	for (size_t i = 0; i < in->nfs; i++)
		if (in->fss[i].part == p)
			snprintf(out, sz, "%s", in->fss[i].path);
	if (!out[0])
		snprintf(out, sz, "/p%u", p->num);
}

static void win_drives(struct vdt_insp *in, struct vdt_insp_os *os,
		       hive_h *h, hive_node_h md)
{
	hive_value_h *vals = hivex_node_values(h, md);
	size_t cap = 0;

	os->have_mnts = true;
	if (!vals) {
		vdt_insp_warn(os, "SYSTEM: MountedDevices: %s", strerror(errno));
		return;
	}
	for (size_t i = 0; vals[i] && i < 4096; i++) {
		char *key = hivex_value_key(h, vals[i]);
		struct vdt_insp_mnt *m;
		unsigned char *d = NULL;
		hive_type t;
		size_t len = 0;

		/* "\DosDevices\C:" */
		if (!key || strlen(key) != 14 ||
		    strncasecmp(key, "\\DosDevices\\", 12) || key[13] != ':') {
			free(key);
			continue;
		}
		if (os->nmnts == cap) {
			cap = cap ? 2 * cap : 8;
			m = realloc(os->mnts, cap * sizeof(*m));
			if (!m) {
				free(key);
				break;
			}
			os->mnts = m;
		}
		m = &os->mnts[os->nmnts];
		memset(m, 0, sizeof(*m));
		m->where = strndup(key + 12, 2);
		free(key);
		if (!m->where)
			break;
		os->nmnts++;
		d = (unsigned char *)hivex_value_value(h, vals[i], &t, &len);
		if (!d)
			continue;
		for (unsigned k = 0; in->parts && k < in->parts->n; k++) {
			const struct vd_part *p = &in->parts->part[k];

			/* MBR: the disk signature (le32) and the
			 * partition's byte offset (le64). */
			if (len == 12 && in->parts->scheme == VD_PART_MBR &&
			    get_le32(d) == in->parts->mbr_id &&
			    get_le64(d + 4) == p->start)
				win_part_path(in, p, m->path, sizeof(m->path));
			/* GPT: "DMIO:ID:" and the partition GUID as the
			 * GPT entry stores it. */
			if (len >= 24 && !memcmp(d, "DMIO:ID:", 8) &&
			    in->parts->scheme == VD_PART_GPT &&
			    !memcmp(d + 8, p->uuid, 16))
				win_part_path(in, p, m->path, sizeof(m->path));
		}
		free(d);
	}
	free(vals);
	if (os->nmnts > 1)
		qsort(os->mnts, os->nmnts, sizeof(*os->mnts), win_mnt_cmp);
}

static void win_system(struct vdt_insp *in, struct vdt_insp_os *os)
{
	hive_h *h = win_open(in, os, "SYSTEM");
	hive_node_h root, ccs, md;
	uint32_t cur;

	if (!h)
		return;
	root = hivex_root(h);
	if (win_dword(h, win_node(h, root, "Select"), "Current", &cur) &&
	    cur < 1000) {
		snprintf(os->ccs, sizeof(os->ccs), "ControlSet%03u", cur);
		ccs = win_node(h, root, os->ccs);
		if (!ccs)
			vdt_insp_warn(os, "SYSTEM: Select\\Current names %s, "
				      "which is missing", os->ccs);
		else if (!win_str(h, win_node(h, ccs, "Services\\Tcpip\\"
					      "Parameters"), "Hostname",
				  os->hostname, sizeof(os->hostname)))
			win_str(h, win_node(h, ccs, "Control\\ComputerName\\"
					    "ComputerName"), "ComputerName",
				os->hostname, sizeof(os->hostname));
	} else {
		vdt_insp_warn(os, "SYSTEM: no Select\\Current");
	}
	md = win_node(h, root, "MountedDevices");
	if (md)
		win_drives(in, os, h, md);
	hivex_close(h);
}

void vdt_insp_win(struct vdt_insp *in, struct vdt_insp_os *os)
{
	char rel[VDT_INSP_STR + 32], p[VDT_INSP_STR + 32];
	const char *a = NULL;
	char *buf;
	size_t len;
	int ret;

	strcpy(os->type, "windows");
	strcpy(os->distro, "windows");
	win_software(in, os);
	win_system(in, os);
	snprintf(rel, sizeof(rel), "%s/System32/cmd.exe", os->systemroot + 1);
	ret = win_ci_path(in, os, rel, p, sizeof(p));
	if (!ret) {
		ret = vdt_insp_read(in, os, p, WIN_PE_HEAD, &buf, &len);
		if (ret == -EFBIG)
			ret = 0;
		if (!ret) {
			a = vdt_insp_pe_arch((const uint8_t *)buf, len);
			free(buf);
		}
	}
	if (ret)
		vdt_insp_warn(os, "%s: %s", rel, strerror(-ret));
	else if (!a)
		vdt_insp_warn(os, "%s: not a PE image of a known machine", rel);
	else
		snprintf(os->arch, sizeof(os->arch), "%s", a);
}
