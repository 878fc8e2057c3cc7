/* vfat short names: the code page of their bytes (Linux's codepage=
 * option; 437 by default) to UTF-8.
 *
 * Bytes below 0x80 are ASCII in every code page the kernel offers. Code
 * page 437 is built in; the others come from glibc's iconv: a single-byte
 * page becomes a 128-entry table at mount, a multi-byte one (932, 936,
 * 949, 950: lead and trail bytes) keeps one iconv handle per mount under
 * a mutex, since a handle holds conversion state. A byte the code page
 * leaves undefined reads as '?', as Linux's fat_short2uni shows it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "fsread/vfat.h"

/* Code page 437 (the original IBM PC set), bytes 0x80..0xff. */
static const uint16_t vfat_cp437[128] = {
	0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7,
	0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
	0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9,
	0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
	0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba,
	0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
	0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
	0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
	0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
	0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
	0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b,
	0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
	0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
	0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
	0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248,
	0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

/* The code pages Linux's vfat offers (fs/nls: nls_cpNNN). */
static const unsigned vfat_cps[] = {
	437, 737, 775, 850, 852, 855, 857, 860, 861, 862, 863, 864,
	865, 866, 869, 874, 932, 936, 949, 950, 1250, 1251, 1255,
};

static bool vfat_cp_is_multi(unsigned cp)
{
	return cp == 932 || cp == 936 || cp == 949 || cp == 950;
}

bool vd_vfat_cp_supported(unsigned cp)
{
	if (!cp)
		return true;
	for (size_t i = 0; i < VD_ARRAY_SIZE(vfat_cps); i++)
		if (vfat_cps[i] == cp)
			return true;
	return false;
}

size_t vd_vfat_utf8_put(char *out, uint32_t c)
{
	uint8_t *o = (uint8_t *)out;

	if (c < 0x80) {
		o[0] = (uint8_t)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (uint8_t)(0xc0 | c >> 6);
		o[1] = (uint8_t)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (uint8_t)(0xe0 | c >> 12);
		o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | c >> 18);
	o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (c & 0x3f));
	return 4;
}

/* One byte of a single-byte code page through iconv: its code point, or
 * '?' when the page leaves it undefined. */
static uint16_t vfat_cp_byte(iconv_t cd, uint8_t b)
{
	char in[1] = { (char)b }, out[8];
	char *ip = in, *op = out;
	size_t il = 1, ol = sizeof(out);
	uint32_t c;

	iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || ol != 4)
		return '?';
	c = get_le32((const uint8_t *)out);
	return c > 0xffff ? '?' : (uint16_t)c;
}

int vd_vfat_cp_init(struct vfat_fs *f, unsigned cp, struct vd_err *e)
{
	char name[16];
	iconv_t cd;

	f->cp_iconv = (iconv_t)-1;
	if (!cp || cp == 437) {
		memcpy(f->cp_high, vfat_cp437, sizeof(f->cp_high));
		return 0;
	}
	if (!vd_vfat_cp_supported(cp))
		return vd_fail(e, -EINVAL, "%s: vfat: code page %u is not "
			       "supported", f->name, cp);
	snprintf(name, sizeof(name), "CP%u", cp);
	if (vfat_cp_is_multi(cp)) {
		cd = iconv_open("UTF-8", name);
		if (cd == (iconv_t)-1)
			return vd_fail(e, -EINVAL, "%s: vfat: code page %u: "
				       "iconv has no %s", f->name, cp, name);
		f->cp_iconv = cd;
		f->cp_multi = true;
		pthread_mutex_init(&f->cp_lock, NULL);
		return 0;
	}
	cd = iconv_open("UTF-32LE", name);
	if (cd == (iconv_t)-1)
		return vd_fail(e, -EINVAL, "%s: vfat: code page %u: iconv has "
			       "no %s", f->name, cp, name);
	for (unsigned b = 0; b < 128; b++)
		f->cp_high[b] = vfat_cp_byte(cd, (uint8_t)(0x80 + b));
	iconv_close(cd);
	return 0;
}

void vd_vfat_cp_fini(struct vfat_fs *f)
{
	if (f->cp_multi) {
		iconv_close(f->cp_iconv);
		pthread_mutex_destroy(&f->cp_lock);
		f->cp_multi = false;
	}
}

/* A multi-byte code page: the whole run of bytes at once. false when
 * iconv refuses it (then the caller decodes byte by byte). */
static bool vfat_cp_multi(struct vfat_fs *f, const uint8_t *s, size_t n,
			  char *out)
{
	char *ip = (char *)s, *op = out;
	size_t il = n, ol = 3 * n;
	bool ok;

	pthread_mutex_lock(&f->cp_lock);
	iconv(f->cp_iconv, NULL, NULL, NULL, NULL);
	ok = iconv(f->cp_iconv, &ip, &il, &op, &ol) != (size_t)-1 && !il;
	pthread_mutex_unlock(&f->cp_lock);
	if (ok)
		*op = '\0';
	return ok;
}

void vd_vfat_cp_decode(struct vfat_fs *f, const uint8_t *s, size_t n,
		       char *out)
{
	size_t o = 0;

	/* A double-byte character takes 2 bytes and gives at most 3
	 * UTF-8 bytes; a single byte at most 3: 3 * n is enough. */
	if (f->cp_multi && vfat_cp_multi(f, s, n, out))
		return;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x80)
			out[o++] = (char)s[i];
		else if (f->cp_multi)
			out[o++] = '?';
		else
			o += vd_vfat_utf8_put(out + o, f->cp_high[s[i] - 0x80]);
	}
	out[o] = '\0';
}
