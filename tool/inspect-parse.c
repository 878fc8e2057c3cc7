/* vdtool inspect: the parsers of guest bytes that need no image —
 * os-release and other KEY=VALUE files, fstab, dpkg's status file, apk's
 * installed file, release lines, ELF and PE headers. Each takes a buffer
 * and its length (no NUL needed), never reads past it, skips a line
 * longer than VDT_INSP_LINE_MAX (counting it), and keeps at most
 * VDT_INSP_FIELD_MAX bytes of a field, so a hostile file costs time in
 * proportion to its (capped) size and no memory beyond the list it
 * fills. tests/fuzz/fuzz-inspect.c drives them directly. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tool/inspect.h"

/* ------------------------------------------------------------ packages */

static char *insp_dup(const char *s, size_t n)
{
	if (!s)
		return NULL;
	if (n > VDT_INSP_FIELD_MAX)
		n = VDT_INSP_FIELD_MAX;
	return strndup(s, n);
}

int vdt_insp_pkg_add(struct vdt_insp_pkgs *l, const char *name, size_t nlen,
		     const char *ver, size_t vlen, const char *rel, size_t rlen,
		     const char *arch, size_t alen, const char *epoch,
		     size_t elen)
{
	struct vdt_insp_pkg *p;

	if (l->n >= VDT_INSP_MAX_PKGS) {
		l->dropped++;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;

		p = realloc(l->p, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->p = p;
		l->cap = cap;
	}
	p = &l->p[l->n];
	memset(p, 0, sizeof(*p));
	p->name = insp_dup(name, nlen);
	p->version = insp_dup(ver, vlen);
	p->release = insp_dup(rel, rlen);
	p->arch = insp_dup(arch, alen);
	p->epoch = insp_dup(epoch, elen);
	if (!p->name || (ver && !p->version) || (rel && !p->release) ||
	    (arch && !p->arch) || (epoch && !p->epoch)) {
		free(p->name);
		free(p->version);
		free(p->release);
		free(p->arch);
		free(p->epoch);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

int vdt_insp_pkg_add_deb(struct vdt_insp_pkgs *l, const char *name,
			 size_t nlen, const char *ver, size_t vlen,
			 const char *arch, size_t alen)
{
	const char *colon = ver ? memchr(ver, ':', vlen) : NULL;
	const char *e = NULL, *r = NULL;
	size_t elen = 0, rlen = 0;

	/* deb-version(7): the epoch ends at the first ':', the revision
	 * starts after the last '-'. */
	if (colon) {
		e = ver;
		elen = (size_t)(colon - ver);
		vlen -= elen + 1;
		ver = colon + 1;
	}
	for (size_t i = vlen; ver && i > 0; i--)
		if (ver[i - 1] == '-') {
			r = ver + i;
			rlen = vlen - i;
			vlen = i - 1;
			break;
		}
	return vdt_insp_pkg_add(l, name, nlen, ver, vlen, r, rlen, arch, alen,
				e, elen);
}

int vdt_insp_pkg_extra(struct vdt_insp_pkgs *l, const char *display,
		       const char *publisher)
{
	struct vdt_insp_pkg *p;

	/* A package past the cap was counted, not kept. */
	if (!l->n || l->dropped)
		return 0;
	p = &l->p[l->n - 1];
	if (display && !(p->display_name = insp_dup(display, strlen(display))))
		return -ENOMEM;
	if (publisher &&
	    !(p->publisher = insp_dup(publisher, strlen(publisher))))
		return -ENOMEM;
	return 0;
}

void vdt_insp_pkgs_free(struct vdt_insp_pkgs *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->p[i].display_name);
		free(l->p[i].publisher);
		free(l->p[i].name);
		free(l->p[i].version);
		free(l->p[i].release);
		free(l->p[i].arch);
		free(l->p[i].epoch);
	}
	free(l->p);
	memset(l, 0, sizeof(*l));
}

static int insp_pkg_cmp(const void *a, const void *b)
{
	const struct vdt_insp_pkg *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return strcmp(x->arch ? x->arch : "", y->arch ? y->arch : "");
}

void vdt_insp_pkgs_sort(struct vdt_insp_pkgs *l)
{
	if (l->n > 1)
		qsort(l->p, l->n, sizeof(*l->p), insp_pkg_cmp);
}

/* ------------------------------------------------------------ lines */

/* The next line of buf from *pos: its start and length (without the
 * newline); false at the end. */
static bool insp_line(const char *buf, size_t len, size_t *pos,
		      const char **l_r, size_t *n_r)
{
	const char *nl;

	if (*pos >= len)
		return false;
	*l_r = buf + *pos;
	nl = memchr(*l_r, '\n', len - *pos);
	*n_r = nl ? (size_t)(nl - *l_r) : len - *pos;
	*pos += *n_r + 1;
	if (*n_r && (*l_r)[*n_r - 1] == '\r')
		(*n_r)--;
	return true;
}

static bool insp_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ------------------------------------------------------------ KEY=VALUE */

size_t vdt_insp_parse_kv(const char *buf, size_t len, vdt_insp_kv_cb cb,
			 void *arg)
{
	char key[128], val[VDT_INSP_LINE_MAX + 1];
	size_t pos = 0, n, nlong = 0;
	const char *l;

	while (insp_line(buf, len, &pos, &l, &n)) {
		size_t i = 0, k = 0, v = 0;

		if (n > VDT_INSP_LINE_MAX) {
			nlong++;
			continue;
		}
		while (i < n && insp_blank(l[i]))
			i++;
		/* "export KEY=..." as a shell reads it. */
		if (n - i > 7 && !memcmp(l + i, "export ", 7))
			i += 7;
		while (i < n && (isalnum((unsigned char)l[i]) || l[i] == '_') &&
		       k < sizeof(key) - 1)
			key[k++] = l[i++];
		key[k] = '\0';
		if (!k || i >= n || l[i] != '=')
			continue;
		i++;
		/* The value: quoted parts and bare words up to a blank or
		 * '#', as sh(1) joins them; escapes inside "" (\" \\ \$ \`)
		 * and bare (\c), none inside ''. */
		while (i < n && !insp_blank(l[i]) && l[i] != '#') {
			if (l[i] == '"') {
				for (i++; i < n && l[i] != '"'; i++) {
					if (l[i] == '\\' && i + 1 < n &&
					    strchr("\"\\$`", l[i + 1]))
						i++;
					val[v++] = l[i];
				}
				i++;
			} else if (l[i] == '\'') {
				for (i++; i < n && l[i] != '\''; i++)
					val[v++] = l[i];
				i++;
			} else {
				if (l[i] == '\\' && i + 1 < n)
					i++;
				val[v++] = l[i++];
			}
		}
		/* v <= n <= VDT_INSP_LINE_MAX: every byte of val came from
		 * a distinct byte of the line. */
		val[v] = '\0';
		cb(arg, key, val);
	}
	return nlong;
}

/* ------------------------------------------------------------ fstab */

/* The next blank-separated field of l[*i..n) into out (size sz), with
 * fstab's octal escapes (\040) decoded; false when there is none. */
static bool insp_field(const char *l, size_t n, size_t *i, char *out,
		       size_t sz)
{
	size_t o = 0;

	while (*i < n && insp_blank(l[*i]))
		(*i)++;
	if (*i >= n)
		return false;
	while (*i < n && !insp_blank(l[*i])) {
		char c = l[*i];

		if (c == '\\' && n - *i >= 4 && l[*i + 1] >= '0' &&
		    l[*i + 1] <= '3' && l[*i + 2] >= '0' && l[*i + 2] <= '7' &&
		    l[*i + 3] >= '0' && l[*i + 3] <= '7') {
			c = (char)((l[*i + 1] - '0') << 6 |
				   (l[*i + 2] - '0') << 3 | (l[*i + 3] - '0'));
			*i += 3;
		}
		(*i)++;
		if (o + 1 < sz && c)
			out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

size_t vdt_insp_parse_fstab(const char *buf, size_t len,
			    vdt_insp_fstab_cb cb, void *arg)
{
	char spec[1024], file[1024], type[64], opts[1024];
	size_t pos = 0, n, nlong = 0;
	const char *l;

	while (insp_line(buf, len, &pos, &l, &n)) {
		size_t i = 0;

		if (n > VDT_INSP_LINE_MAX) {
			nlong++;
			continue;
		}
		while (i < n && insp_blank(l[i]))
			i++;
		if (i >= n || l[i] == '#')
			continue;
		if (!insp_field(l, n, &i, spec, sizeof(spec)) ||
		    !insp_field(l, n, &i, file, sizeof(file)))
			continue;
		if (!insp_field(l, n, &i, type, sizeof(type)))
			strcpy(type, "auto");
		if (!insp_field(l, n, &i, opts, sizeof(opts)))
			strcpy(opts, "defaults");
		cb(arg, spec, file, type, opts);
	}
	return nlong;
}

/* ------------------------------------------------------------ dpkg, apk */

struct insp_stanza {
	const char *name, *ver, *arch, *status;
	size_t nlen, vlen, alen, slen;
};

/* "Key: value" with key (length kn, ':' included) at the start of l:
 * the value's start and length, leading blanks dropped. */
static bool insp_field_is(const char *l, size_t n, const char *key,
			  const char **v_r, size_t *vn_r)
{
	size_t kn = strlen(key), i;

	if (n < kn || strncasecmp(l, key, kn))
		return false;
	for (i = kn; i < n && insp_blank(l[i]); i++)
		;
	*v_r = l + i;
	*vn_r = n - i;
	while (*vn_r && insp_blank((*v_r)[*vn_r - 1]))
		(*vn_r)--;
	return true;
}

/* dpkg's Status is "want flag status": only "installed" counts (not
 * "config-files", "half-installed", ...). */
static bool insp_dpkg_installed(const char *s, size_t n)
{
	return n >= 9 && !memcmp(s + n - 9, "installed", 9) &&
	       (n == 9 || insp_blank(s[n - 10]));
}

static int insp_dpkg_end(struct insp_stanza *st, struct vdt_insp_pkgs *l)
{
	int ret = 0;

	if (st->name && st->nlen &&
	    (!st->status || insp_dpkg_installed(st->status, st->slen)))
		ret = vdt_insp_pkg_add_deb(l, st->name, st->nlen, st->ver,
					   st->vlen, st->arch, st->alen);
	memset(st, 0, sizeof(*st));
	return ret;
}

int vdt_insp_parse_dpkg(const char *buf, size_t len,
			struct vdt_insp_pkgs *l, size_t *long_r)
{
	struct insp_stanza st = { 0 };
	size_t pos = 0, n;
	const char *l0, *v;
	size_t vn;
	int ret;

	while (insp_line(buf, len, &pos, &l0, &n)) {
		if (!n) {
			ret = insp_dpkg_end(&st, l);
			if (ret)
				return ret;
			continue;
		}
		/* No line is copied whole: a long one (a Depends or
		 * Description) costs nothing; a kept field is cut at
		 * VDT_INSP_FIELD_MAX, counted. */
		if (insp_blank(l0[0]))
			continue;
		if (insp_field_is(l0, n, "Package:", &v, &vn)) {
			st.name = v;
			st.nlen = vn;
		} else if (insp_field_is(l0, n, "Version:", &v, &vn)) {
			st.ver = v;
			st.vlen = vn;
		} else if (insp_field_is(l0, n, "Architecture:", &v, &vn)) {
			st.arch = v;
			st.alen = vn;
		} else if (insp_field_is(l0, n, "Status:", &v, &vn)) {
			st.status = v;
			st.slen = vn;
		} else {
			continue;
		}
		if (vn > VDT_INSP_FIELD_MAX)
			(*long_r)++;
	}
	return insp_dpkg_end(&st, l);
}

static int insp_apk_end(struct insp_stanza *st, struct vdt_insp_pkgs *l)
{
	int ret = 0;

	/* apk versions are "upstream-rREV": kept whole. */
	if (st->name && st->nlen)
		ret = vdt_insp_pkg_add(l, st->name, st->nlen, st->ver, st->vlen,
				       NULL, 0, st->arch, st->alen, NULL, 0);
	memset(st, 0, sizeof(*st));
	return ret;
}

int vdt_insp_parse_apk(const char *buf, size_t len, struct vdt_insp_pkgs *l,
		       size_t *long_r)
{
	struct insp_stanza st = { 0 };
	size_t pos = 0, n;
	const char *l0;
	int ret;

	while (insp_line(buf, len, &pos, &l0, &n)) {
		if (!n) {
			ret = insp_apk_end(&st, l);
			if (ret)
				return ret;
			continue;
		}
		if (n < 2 || l0[1] != ':')
			continue;
		if ((l0[0] == 'P' || l0[0] == 'V' || l0[0] == 'A') &&
		    n - 2 > VDT_INSP_FIELD_MAX)
			(*long_r)++;
		if (l0[0] == 'P') {
			st.name = l0 + 2;
			st.nlen = n - 2;
		} else if (l0[0] == 'V') {
			st.ver = l0 + 2;
			st.vlen = n - 2;
		} else if (l0[0] == 'A') {
			st.arch = l0 + 2;
			st.alen = n - 2;
		}
	}
	return insp_apk_end(&st, l);
}

/* ------------------------------------------------------------ headers */

const char *vdt_insp_elf_arch(const uint8_t *b, size_t n)
{
	bool is64, le;
	unsigned m;

	/* ELF header (the System V gABI): e_ident[4] class (1: 32-bit,
	 * 2: 64-bit), [5] data (1: little-endian, 2: big), e_machine a
	 * 16-bit field at 18 in the file's byte order. */
	if (n < 20 || memcmp(b, "\177ELF", 4) || b[4] < 1 || b[4] > 2 ||
	    b[5] < 1 || b[5] > 2)
		return NULL;
	is64 = b[4] == 2;
	le = b[5] == 1;
	m = le ? get_le16(b + 18) : get_be16(b + 18);
	switch (m) {
	case 2: return is64 ? "sparc64" : "sparc";
	case 3: return "i386";
	case 8: return is64 ? (le ? "mips64el" : "mips64") : (le ? "mipsel" : "mips");
	case 20: return "ppc";
	case 21: return le ? "ppc64le" : "ppc64";
	case 22: return is64 ? "s390x" : "s390";
	case 40: return "arm";
	case 43: return "sparc64";
	case 50: return "ia64";
	case 62: return "x86_64";
	case 183: return "aarch64";
	case 243: return is64 ? "riscv64" : "riscv32";
	case 258: return "loongarch64";
	default: return NULL;
	}
}

const char *vdt_insp_pe_arch(const uint8_t *b, size_t n)
{
	uint32_t pe;

	/* MZ header: e_lfanew (u32) at 0x3c gives the "PE\0\0" signature;
	 * the COFF header's Machine (u16) follows it (Microsoft's PE
	 * format, "Machine Types"). */
	if (n < 0x40 || b[0] != 'M' || b[1] != 'Z')
		return NULL;
	pe = get_le32(b + 0x3c);
	if (!vd_range_ok(pe, 6, n) || memcmp(b + pe, "PE\0\0", 4))
		return NULL;
	switch (get_le16(b + pe + 4)) {
	case 0x014c: return "i386";
	case 0x8664: return "x86_64";
	case 0xaa64: return "aarch64";
	case 0x01c4: return "arm";
	case 0x0200: return "ia64";
	default: return NULL;
	}
}

/* ------------------------------------------------------------ releases */

static const struct {
	const char *prefix; /* of a release line, or an os-release ID */
	const char *distro;
} insp_distros[] = {
	{ "Red Hat Enterprise Linux", "rhel" },
	{ "CentOS Stream", "centos" },
	{ "CentOS", "centos" },
	{ "Rocky Linux", "rocky" },
	{ "AlmaLinux", "almalinux" },
	{ "Fedora", "fedora" },
	{ "Oracle Linux", "oraclelinux" },
	{ "Scientific Linux", "scientificlinux" },
	{ "openSUSE", "opensuse" },
	{ "SUSE Linux Enterprise", "sles" },
	{ "Mageia", "mageia" },
	{ "Alpine", "alpinelinux" },
};

static const struct {
	const char *id, *distro;
} insp_ids[] = {
	{ "alpine", "alpinelinux" },
	{ "arch", "archlinux" },
	{ "ol", "oraclelinux" },
	{ "opensuse-leap", "opensuse" },
	{ "opensuse-tumbleweed", "opensuse" },
	{ "sled", "sles" },
	{ "scientific", "scientificlinux" },
	{ "rocky", "rocky" },
	{ "almalinux", "almalinux" },
};

const char *vdt_insp_distro(const char *id)
{
	for (size_t i = 0; i < VD_ARRAY_SIZE(insp_ids); i++)
		if (!strcmp(id, insp_ids[i].id))
			return insp_ids[i].distro;
	return id;
}

bool vdt_insp_version(const char *v, long *major_r, long *minor_r)
{
	char *end;

	if (!isdigit((unsigned char)*v))
		return false;
	errno = 0;
	*major_r = strtol(v, &end, 10);
	*minor_r = 0;
	if (errno || *major_r < 0)
		return false;
	if (*end == '.' && isdigit((unsigned char)end[1])) {
		*minor_r = strtol(end + 1, NULL, 10);
		if (*minor_r < 0 || errno)
			*minor_r = 0;
	}
	return true;
}

bool vdt_insp_parse_release(const char *buf, size_t len, char *distro,
			    char *version, char *codename, size_t sz)
{
	const char *nl = memchr(buf, '\n', len), *r, *p, *q;
	char line[512];
	size_t n = nl ? (size_t)(nl - buf) : len, i;

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, buf, n);
	line[n] = '\0';
	distro[0] = version[0] = codename[0] = '\0';
	r = strstr(line, " release ");
	if (!r)
		return false;
	p = r + 9;
	if (!isdigit((unsigned char)*p))
		return false;
	for (q = p; isdigit((unsigned char)*q) || *q == '.'; q++)
		;
	snprintf(version, sz, "%.*s", (int)(q - p), p);
	p = strchr(q, '(');
	if (p && (q = strchr(p + 1, ')')))
		snprintf(codename, sz, "%.*s", (int)(q - p - 1), p + 1);
	for (i = 0; i < VD_ARRAY_SIZE(insp_distros); i++)
		if (!strncmp(line, insp_distros[i].prefix,
			     strlen(insp_distros[i].prefix))) {
			snprintf(distro, sz, "%s", insp_distros[i].distro);
			break;
		}
	return true;
}
