/* vdtool inspect's parsers (tool/inspect-parse.c, included whole: they
 * are vdtool's, not the library's), table by table: os-release quoting
 * as sh(1) reads it, fstab's octal escapes, dpkg's stanzas and Debian
 * version splitting, apk records, release lines, ELF and PE machines,
 * and the caps on long lines. */
#include "tests/unit/unit.h"
#include "tool/inspect-parse.c"

struct kv_seen {
	char id[64], ver[64], pretty[128], x[64];
	unsigned n;
};

static void kv_cb(void *arg, const char *key, const char *val)
{
	struct kv_seen *s = arg;

	s->n++;
	if (!strcmp(key, "ID"))
		snprintf(s->id, sizeof(s->id), "%s", val);
	else if (!strcmp(key, "VERSION_ID"))
		snprintf(s->ver, sizeof(s->ver), "%s", val);
	else if (!strcmp(key, "PRETTY_NAME"))
		snprintf(s->pretty, sizeof(s->pretty), "%s", val);
	else if (!strcmp(key, "X"))
		snprintf(s->x, sizeof(s->x), "%s", val);
}

static void test_kv(void)
{
	static const char f[] =
		"# a comment\n"
		"ID=\"rocky\"\n"
		"  VERSION_ID='9.3'\r\n"
		"PRETTY_NAME=\"Rocky \\\"Linux\\\" 9.3 \\\\ (Blue Onyx)\" # tail\n"
		"export X=a\\ b'c d'\"e\"\n"
		"not a line\n"
		"=novalue\n";
	struct kv_seen s = { 0 };
	char *big;
	size_t n;

	CHECK("kv: no long lines", vdt_insp_parse_kv(f, strlen(f), kv_cb, &s) == 0);
	CHECK("kv: ID unquoted", !strcmp(s.id, "rocky"));
	CHECK("kv: single quotes, CRLF", !strcmp(s.ver, "9.3"));
	CHECK("kv: escapes in double quotes",
	      !strcmp(s.pretty, "Rocky \"Linux\" 9.3 \\ (Blue Onyx)"));
	CHECK("kv: words joined, export", !strcmp(s.x, "a bc de"));
	CHECK("kv: four keys", s.n == 4);

	/* A line past the cap is skipped and counted; the next one is
	 * read; no NUL needed at the end. */
	n = VDT_INSP_LINE_MAX + 100;
	big = malloc(n + 20);
	memset(big, 'A', n);
	memcpy(big + n, "\nID=deb", 7);
	memset(&s, 0, sizeof(s));
	CHECK("kv: long line counted",
	      vdt_insp_parse_kv(big, n + 7, kv_cb, &s) == 1);
	CHECK("kv: line after it read", !strcmp(s.id, "deb"));
	free(big);
}

struct fstab_seen {
	char spec[3][128], file[3][128], type[3][16], opts[3][64];
	unsigned n;
};

static void fstab_cb(void *arg, const char *spec, const char *file,
		     const char *type, const char *opts)
{
	struct fstab_seen *s = arg;

	if (s->n < 3) {
		snprintf(s->spec[s->n], 128, "%s", spec);
		snprintf(s->file[s->n], 128, "%s", file);
		snprintf(s->type[s->n], 16, "%s", type);
		snprintf(s->opts[s->n], 64, "%s", opts);
	}
	s->n++;
}

static void test_fstab(void)
{
	static const char f[] =
		"# <file system> <mount point> <type>\n"
		"UUID=0a1b / ext4 errors=remount-ro 0 1\n"
		"\n"
		"   LABEL=My\\040Data\t/srv/my\\040data  xfs ro\n"
		"/dev/sdb1 /mnt\n"
		"onlyone\n";
	struct fstab_seen s = { 0 };

	vdt_insp_parse_fstab(f, strlen(f), fstab_cb, &s);
	CHECK("fstab: three entries", s.n == 3);
	CHECK("fstab: first", !strcmp(s.spec[0], "UUID=0a1b") &&
				      !strcmp(s.file[0], "/") &&
				      !strcmp(s.type[0], "ext4"));
	CHECK("fstab: octal escapes", !strcmp(s.spec[1], "LABEL=My Data") &&
					      !strcmp(s.file[1], "/srv/my data"));
	CHECK("fstab: options", !strcmp(s.opts[0], "errors=remount-ro") &&
					!strcmp(s.opts[1], "ro"));
	CHECK("fstab: no type is auto", !strcmp(s.type[2], "auto") &&
						!strcmp(s.opts[2], "defaults"));
}

static void test_dpkg(void)
{
	static const char f[] =
		"Package: libc6\n"
		"Status: install ok installed\n"
		"Architecture: amd64\n"
		"Version: 2.36-9+deb12u4\n"
		"Description: GNU C Library\n"
		" continuation line Version: 9\n"
		"\n"
		"Package: gone\n"
		"Status: deinstall ok config-files\n"
		"Version: 1.0\n"
		"\n"
		"Package: tzdata\n"
		"Status: install ok installed\n"
		"Version: 2024a-0+deb12u1\n"
		"Architecture: all\n"
		"\n"
		"Package: perl-epoch\n"
		"Status: hold ok installed\n"
		"Version: 1:5.36.0\n"
		"Architecture: amd64";
	struct vdt_insp_pkgs l = { 0 };
	size_t nlong = 0;

	CHECK("dpkg: parses", !vdt_insp_parse_dpkg(f, strlen(f), &l, &nlong));
	CHECK("dpkg: installed only", l.n == 3);
	vdt_insp_pkgs_sort(&l);
	CHECK("dpkg: libc6 split", l.n == 3 && !strcmp(l.p[0].name, "libc6") &&
					   !strcmp(l.p[0].version, "2.36") &&
					   !strcmp(l.p[0].release, "9+deb12u4") &&
					   !strcmp(l.p[0].arch, "amd64") &&
					   !l.p[0].epoch);
	CHECK("dpkg: epoch, no revision, last stanza without a blank line",
	      l.n == 3 && !strcmp(l.p[1].name, "perl-epoch") &&
		      !strcmp(l.p[1].epoch, "1") &&
		      !strcmp(l.p[1].version, "5.36.0") && !l.p[1].release);
	CHECK("dpkg: tzdata", l.n == 3 && !strcmp(l.p[2].arch, "all"));
	vdt_insp_pkgs_free(&l);

	static const char a[] = "C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\n"
				"P:busybox\nV:1.36.1-r15\n";
	CHECK("apk: parses", !vdt_insp_parse_apk(a, strlen(a), &l, &nlong));
	CHECK("apk: two", l.n == 2 && !strcmp(l.p[0].name, "musl") &&
				  !strcmp(l.p[0].version, "1.2.4-r2") &&
				  !strcmp(l.p[1].name, "busybox") &&
				  !l.p[1].arch);
	CHECK("dpkg, apk: no long lines", nlong == 0);
	vdt_insp_pkgs_free(&l);

	/* A 10,000-byte Depends costs nothing; a 300-byte name is cut
	 * and counted. */
	char *big = malloc(20000), *p = big;

	p += sprintf(p, "Package: ok\nDepends: ");
	memset(p, 'd', 10000);
	p += 10000;
	p += sprintf(p, "\nVersion: 1\n\nPackage: ");
	memset(p, 'n', 300);
	p += 300;
	p += sprintf(p, "\nVersion: 2\n");
	CHECK("dpkg long: parses", !vdt_insp_parse_dpkg(big, (size_t)(p - big),
							&l, &nlong));
	CHECK("dpkg long: both", l.n == 2 && !strcmp(l.p[0].name, "ok") &&
					 strlen(l.p[1].name) == VDT_INSP_FIELD_MAX);
	CHECK("dpkg long: one cut", nlong == 1);
	vdt_insp_pkgs_free(&l);
	free(big);
}

static void test_release(void)
{
	static const struct {
		const char *line, *distro, *version, *codename;
		long major, minor;
	} t[] = {
		{ "Rocky Linux release 9.3 (Blue Onyx)\n", "rocky", "9.3",
		  "Blue Onyx", 9, 3 },
		{ "CentOS release 6.10 (Final)", "centos", "6.10", "Final", 6,
		  10 },
		{ "Red Hat Enterprise Linux Server release 7.9 (Maipo)", "rhel",
		  "7.9", "Maipo", 7, 9 },
		{ "Fedora release 39 (Thirty Nine)", "fedora", "39",
		  "Thirty Nine", 39, 0 },
		{ "Something release 1", "", "1", "", 1, 0 },
	};
	char d[64], v[64], c[64];
	long ma, mi;

	for (size_t i = 0; i < VD_ARRAY_SIZE(t); i++) {
		bool ok = vdt_insp_parse_release(t[i].line, strlen(t[i].line),
						 d, v, c, sizeof(d));

		CHECK(t[i].line, ok && !strcmp(d, t[i].distro) &&
					 !strcmp(v, t[i].version) &&
					 !strcmp(c, t[i].codename) &&
					 vdt_insp_version(v, &ma, &mi) &&
					 ma == t[i].major && mi == t[i].minor);
	}
	CHECK("release: none", !vdt_insp_parse_release("Debian", 6, d, v, c,
						       sizeof(d)));
	CHECK("version: not a number", !vdt_insp_version("bookworm/sid", &ma,
							 &mi));
	CHECK("distro: alpine", !strcmp(vdt_insp_distro("alpine"),
					"alpinelinux"));
	CHECK("distro: debian", !strcmp(vdt_insp_distro("debian"), "debian"));
}

static void test_headers(void)
{
	uint8_t b[128] = { 0x7f, 'E', 'L', 'F', 2, 1 };
	uint8_t pe[0x90] = { 'M', 'Z' };

	b[18] = 62;
	CHECK("elf: x86_64", !strcmp(vdt_insp_elf_arch(b, 64), "x86_64"));
	b[18] = 183;
	CHECK("elf: aarch64", !strcmp(vdt_insp_elf_arch(b, 64), "aarch64"));
	b[4] = 1;
	b[18] = 3;
	CHECK("elf: i386", !strcmp(vdt_insp_elf_arch(b, 64), "i386"));
	b[5] = 2;
	b[18] = 0;
	b[19] = 21;
	CHECK("elf: big-endian ppc64", !strcmp(vdt_insp_elf_arch(b, 64), "ppc64"));
	CHECK("elf: too short", !vdt_insp_elf_arch(b, 19));
	b[0] = 0;
	CHECK("elf: no magic", !vdt_insp_elf_arch(b, 64));

	pe[0x3c] = 0x80;
	memcpy(pe + 0x80, "PE\0\0\x64\x86", 6);
	CHECK("pe: x86_64", !strcmp(vdt_insp_pe_arch(pe, sizeof(pe)), "x86_64"));
	CHECK("pe: cut before the machine", !vdt_insp_pe_arch(pe, 0x85));
	pe[0x3c] = 0xff;
	pe[0x3f] = 0xff;
	CHECK("pe: e_lfanew past the end", !vdt_insp_pe_arch(pe, sizeof(pe)));
}

int main(void)
{
	test_kv();
	test_fstab();
	test_dpkg();
	test_release();
	test_headers();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed != 0;
}
