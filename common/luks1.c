/* A LUKS1 key slot opened by our own code: see luks1.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/cipher.h"
#include "common/keys.h"
#include "common/lazy.h"
#include "common/luks-hdr.h"
#include "common/luks1.h"
#include "common/util.h"

#define LUKS1_SECTOR 512u
#define LUKS1_DIGEST_LEN 20u
#define LUKS1_SALT_LEN 32u
#define LUKS1_SLOT_ACTIVE 0x00ac71f3u

/* A NUL-terminated string field of 32 bytes at p, or NULL. */
static const char *luks1_str(const uint8_t *p)
{
	return memchr(p, 0, 32) ? (const char *)p : NULL;
}

int vd_luks1_slot_area(const uint8_t *hdr, unsigned slot, uint64_t *off_r,
		       uint64_t *len_r, char *why, size_t why_len)
{
	/* Header, offset 108: key_bytes; key slot i at 208 + 48 i: +0
	 * active, +40 key material offset (sectors), +44 stripes. */
	const uint8_t *s = hdr + 208 + 48 * slot;
	uint32_t kb = get_be32(hdr + 108), stripes;

	if (slot >= VD_LUKS1_SLOTS || get_be32(s) != LUKS1_SLOT_ACTIVE) {
		snprintf(why, why_len, "LUKS1 key slot %u is not active", slot);
		return -EUCLEAN;
	}
	stripes = get_be32(s + 44);
	if (!kb || kb > 256 || !stripes || stripes > VD_LUKS1_MAX_STRIPES) {
		snprintf(why, why_len, "LUKS1 key slot %u: %u stripes of a "
			 "%u-byte key (1 to %u stripes, 1 to 256 bytes)", slot,
			 stripes, kb, VD_LUKS1_MAX_STRIPES);
		return -EUCLEAN;
	}
	*off_r = (uint64_t)get_be32(s + 40) * LUKS1_SECTOR;
	/* Whole sectors: the key material is encrypted sector by sector
	 * (at most 256 * 4000 bytes, rounded up). */
	*len_r = ((uint64_t)kb * stripes + LUKS1_SECTOR - 1) / LUKS1_SECTOR *
		 LUKS1_SECTOR;
	return 0;
}

int vd_luks1_hash_check(const uint8_t *hdr, char *why, size_t why_len)
{
	const char *hname = luks1_str(hdr + 72);
	const EVP_MD *md;

	if (vd_lazy_need(&vd_lazy_crypto)) {
		snprintf(why, why_len, "libcrypto cannot be loaded");
		return -ENOSYS;
	}
	md = hname ? EVP_get_digestbyname(hname) : NULL;
	if (!md) {
		snprintf(why, why_len, "LUKS1 hash \"%.31s\" is not in "
			 "libcrypto", hname ? hname : "");
		return -ENOTSUP;
	}
	if (EVP_MD_get_size(md) < (int)LUKS1_DIGEST_LEN) {
		snprintf(why, why_len, "LUKS1 hash %s (a %d-byte digest) is "
			 "not supported: libcryptsetup needs %u bytes or more",
			 hname, EVP_MD_get_size(md), LUKS1_DIGEST_LEN);
		return -ENOTSUP;
	}
	return 0;
}

/* The AF diffusion H of the spec (2.3): each digest-sized piece i of
 * buf (the last one maybe shorter) replaced by the first bytes of
 * HASH(i as big-endian u32 || piece). */
static int luks1_diffuse(const EVP_MD *md, uint8_t *buf, size_t len)
{
	size_t ds = (size_t)EVP_MD_get_size(md);
	uint8_t out[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ret = -ENOMEM;

	if (!ctx)
		return ret;
	ret = -EIO;
	for (size_t at = 0, i = 0; at < len; at += ds, i++) {
		size_t n = VD_MIN(ds, len - at);
		uint8_t iv[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16),
				  (uint8_t)(i >> 8), (uint8_t)i };

		if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, iv, 4) != 1 ||
		    EVP_DigestUpdate(ctx, buf + at, n) != 1 ||
		    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
			goto out;
		memcpy(buf + at, out, n);
	}
	ret = 0;
out:
	OPENSSL_cleanse(out, sizeof(out));
	EVP_MD_CTX_free(ctx);
	return ret;
}

int vd_luks1_slot_open(const uint8_t *hdr, unsigned slot, const uint8_t *km,
		       size_t km_len, const uint8_t *pass, size_t pass_len,
		       uint8_t *vk, size_t vk_cap, size_t *vk_len_r,
		       char *why, size_t why_len)
{
	/* Header, offsets: 8 cipher name, 40 cipher mode, 72 hash (32
	 * bytes each), 108 key_bytes, 112 digest (20), 132 digest salt
	 * (32), 164 digest iterations; slot +4 iterations, +8 salt. */
	const char *cname = luks1_str(hdr + 8), *mode = luks1_str(hdr + 40);
	const char *hname = luks1_str(hdr + 72);
	const uint8_t *s = hdr + 208 + 48 * slot;
	uint32_t kb = get_be32(hdr + 108), it, dit = get_be32(hdr + 164);
	uint8_t *key = NULL, *split = NULL, digest[LUKS1_DIGEST_LEN];
	struct vd_cipher *c = NULL;
	const EVP_MD *md;
	uint64_t off, len;
	size_t stripes;
	int ret;

	why[0] = 0;
	ret = vd_luks1_slot_area(hdr, slot, &off, &len, why, why_len);
	if (ret)
		return ret;
	it = get_be32(s + 4);
	stripes = get_be32(s + 44);
	if (!cname || !mode || !hname) {
		snprintf(why, why_len, "a LUKS1 cipher, mode or hash name is "
			 "not terminated");
		return -EUCLEAN;
	}
	if (km_len != len || kb > vk_cap) {
		snprintf(why, why_len, "LUKS1 key slot %u: %zu bytes of key "
			 "material, %llu expected", slot, km_len,
			 (unsigned long long)len);
		return -EUCLEAN;
	}
	if (!it || !dit || it > VD_KDF_MAX_ITERATIONS ||
	    dit > VD_KDF_MAX_ITERATIONS) {
		snprintf(why, why_len, "LUKS1 key slot %u: PBKDF2 iterations "
			 "%u (digest %u) outside 1 to %u", slot, it, dit,
			 VD_KDF_MAX_ITERATIONS);
		return -EPERM;
	}
	md = EVP_get_digestbyname(hname);
	if (!md || EVP_MD_get_size(md) <= 0) {
		snprintf(why, why_len, "LUKS1 hash \"%s\" is not in libcrypto",
			 hname);
		return -ENOTSUP;
	}
	key = vd_secure_alloc(kb);
	split = vd_secure_alloc(km_len);
	if (!key || !split) {
		ret = -ENOMEM;
		goto out;
	}
	ret = -EIO;
	if (PKCS5_PBKDF2_HMAC((const char *)pass, (int)pass_len, s + 8,
			      LUKS1_SALT_LEN, (int)it, md, (int)kb,
			      key) != 1) {
		snprintf(why, why_len, "PBKDF2-%s failed", hname);
		goto out;
	}
	ret = vd_cipher_new(cname, mode, key, kb, LUKS1_SECTOR, &c, why,
			    why_len);
	if (ret)
		goto out;
	memcpy(split, km, km_len);
	ret = vd_cipher_decrypt(c, split, km_len, 0);
	if (ret) {
		snprintf(why, why_len, "cannot decrypt LUKS1 key slot %u",
			 slot);
		goto out;
	}
	/* AF merge (2.3): d = 0; d = H(d ^ s_i) for every stripe but the
	 * last; the key is d ^ s_last. key is reused as d. Ends: stripes
	 * is at most VD_LUKS1_MAX_STRIPES. */
	memset(key, 0, kb);
	for (size_t i = 0; i + 1 < stripes; i++) {
		for (size_t b = 0; b < kb; b++)
			key[b] ^= split[i * kb + b];
		ret = luks1_diffuse(md, key, kb);
		if (ret)
			goto out;
	}
	for (size_t b = 0; b < kb; b++)
		vk[b] = key[b] ^ split[(stripes - 1) * kb + b];
	ret = -EIO;
	if (PKCS5_PBKDF2_HMAC((const char *)vk, (int)kb, hdr + 132,
			      LUKS1_SALT_LEN, (int)dit, md, LUKS1_DIGEST_LEN,
			      digest) != 1) {
		snprintf(why, why_len, "PBKDF2-%s failed", hname);
		goto out;
	}
	if (CRYPTO_memcmp(digest, hdr + 112, LUKS1_DIGEST_LEN)) {
		OPENSSL_cleanse(vk, kb);
		ret = 0;
		goto out;
	}
	*vk_len_r = kb;
	ret = 1;
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	vd_cipher_free(c);
	vd_secure_free(key);
	vd_secure_free(split);
	return ret;
}
