/* vdtool inspect's parsers of guest bytes (tool/inspect-parse.c) alone:
 * the same input as os-release/lsb-release (KEY=VALUE), fstab, dpkg's
 * status file, apk's installed file, a release line, an ELF and a PE
 * header. The parsers live with vdtool, not in the library the other
 * targets link, so the source is included here whole. Seeds:
 * tests/fuzz/seeds.sh (seeds_inspect: the host's own files). */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tool/inspect-parse.c"

static void fz_kv(void *arg, const char *key, const char *val)
{
	size_t *n = arg;

	*n += strlen(key) + strlen(val);
}

static void fz_fstab(void *arg, const char *spec, const char *file,
		     const char *type, const char *opts)
{
	size_t *n = arg;

	*n += strlen(spec) + strlen(file) + strlen(type) + strlen(opts);
}

static int inspect_one(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct vdt_insp_pkgs l = { 0 };
	char d[64], v[64], c[64];
	volatile size_t sum = 0;
	size_t n = 0, nlong = 0;
	long maj, min;

	vdt_insp_parse_kv(s, size, fz_kv, &n);
	vdt_insp_parse_fstab(s, size, fz_fstab, &n);
	vdt_insp_parse_dpkg(s, size, &l, &nlong);
	vdt_insp_parse_apk(s, size, &l, &nlong);
	vdt_insp_pkgs_sort(&l);
	for (size_t i = 0; i < l.n; i++)
		sum += strlen(l.p[i].name);
	vdt_insp_pkgs_free(&l);
	sum += vdt_insp_elf_arch(data, size) != NULL;
	sum += vdt_insp_pe_arch(data, size) != NULL;
	if (vdt_insp_parse_release(s, size, d, v, c, sizeof(d)))
		sum += vdt_insp_version(v, &maj, &min);
	sum += n + nlong;
	(void)sum;
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = inspect_one,
};
