/* Sector ciphers through libcrypto: see cipher.h.
 *
 * The IV generators are dm-crypt's (Documentation/admin-guide/
 * device-mapper/dm-crypt.rst): plain is the unit number's low 32 bits
 * little-endian, plain64 all 64 bits little-endian, plain64be big-endian
 * in the IV's last 8 bytes, essiv:HASH the unit number (plain64)
 * encrypted in ECB with HASH(key) as the key, null all zeros; the rest
 * of the IV is zeros. CTR counts blocks from the IV, big-endian over
 * all 16 bytes (as the kernel's ctr() and nettle's, which qemu uses).
 * XTS with a key size libcrypto has no XTS for
 * (aes-192, which qemu accepts) is built on that cipher's ECB: IEEE
 * 1619's tweak, multiplied by x in GF(2^128) per block. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/cipher.h"
#include "common/lazy.h"
#include "common/pool.h"
#include "common/util.h"

enum cipher_chain { CHAIN_EVP, CHAIN_XTS_ECB };
enum cipher_iv { IV_NULL, IV_PLAIN, IV_PLAIN64, IV_PLAIN64BE, IV_ESSIV,
		 IV_NONE };

struct vd_cipher {
	enum cipher_chain chain;
	enum cipher_iv iv;
	EVP_CIPHER_CTX *data;  /* decrypts (EVP chain, or ECB for K1) */
	EVP_CIPHER_CTX *tweak; /* XTS_ECB: encrypts with K2 */
	EVP_CIPHER_CTX *essiv; /* ESSIV: encrypts with HASH(key) */
	EVP_CIPHER_CTX *enc;   /* encrypts (as data), or NULL: cannot */
	unsigned iv_len;
	unsigned sector_size;
	unsigned iv_step; /* IV numbers per unit */
};

void vd_cipher_iv_in_512(struct vd_cipher *c)
{
	c->iv_step = c->sector_size / 512;
}

void vd_cipher_free(struct vd_cipher *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->data);
	EVP_CIPHER_CTX_free(c->tweak);
	EVP_CIPHER_CTX_free(c->essiv);
	EVP_CIPHER_CTX_free(c->enc);
	free(c);
}

unsigned vd_cipher_sector_size(const struct vd_cipher *c)
{
	return c->sector_size;
}

/* A context of cipher "NAME-BITS-CHAIN" with key, no padding; NULL when
 * libcrypto has no such cipher or the key does not fit. */
static EVP_CIPHER_CTX *cipher_ctx(const char *name, unsigned bits,
				  const char *chain, const uint8_t *key,
				  size_t key_len, int enc)
{
	char full[64];
	const EVP_CIPHER *ec;
	EVP_CIPHER_CTX *ctx;

	snprintf(full, sizeof(full), "%s-%u-%s", name, bits, chain);
	ec = EVP_get_cipherbyname(full);
	if (!ec || (size_t)EVP_CIPHER_key_length(ec) != key_len)
		return NULL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return NULL;
	if (EVP_CipherInit_ex(ctx, ec, NULL, key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	return ctx;
}

static int cipher_parse_iv(struct vd_cipher *c, const char *cname,
			   const char *ivgen, const uint8_t *key,
			   size_t key_len, char *why, size_t why_len)
{
	const char *colon = strchr(ivgen, ':');
	unsigned char salt[EVP_MAX_MD_SIZE];
	unsigned salt_len = 0;
	const EVP_MD *md;
	char hash[32];

	/* A hash after the generators that take none ("plain64:sha256",
	 * which qemu writes when given ivgen-hash-alg) is ignored, as
	 * dm-crypt and qemu ignore it. */
	size_t base = colon ? (size_t)(colon - ivgen) : strlen(ivgen);

	if (base == 5 && !strncmp(ivgen, "plain", 5))
		c->iv = IV_PLAIN;
	else if (base == 7 && !strncmp(ivgen, "plain64", 7))
		c->iv = IV_PLAIN64;
	else if (base == 9 && !strncmp(ivgen, "plain64be", 9))
		c->iv = IV_PLAIN64BE;
	else if (base == 4 && !strncmp(ivgen, "null", 4))
		c->iv = IV_NULL;
	else if (!strncmp(ivgen, "essiv:", 6) && colon &&
		 strlen(colon + 1) < sizeof(hash))
		c->iv = IV_ESSIV;
	else {
		snprintf(why, why_len, "IV generator \"%s\" is not supported "
			 "(plain, plain64, plain64be, essiv:HASH, null are)",
			 ivgen);
		return -ENOTSUP;
	}
	if (c->iv != IV_ESSIV)
		return 0;
	snprintf(hash, sizeof(hash), "%s", colon + 1);
	md = EVP_get_digestbyname(hash);
	if (!md || EVP_Digest(key, key_len, salt, &salt_len, md, NULL) != 1) {
		snprintf(why, why_len, "ESSIV hash \"%s\" is not in libcrypto",
			 hash);
		return -ENOTSUP;
	}
	c->essiv = cipher_ctx(cname, salt_len * 8, "ecb", salt, salt_len, 1);
	OPENSSL_cleanse(salt, sizeof(salt));
	if (!c->essiv) {
		snprintf(why, why_len, "ESSIV with %s needs %s with a %u-bit "
			 "key, which libcrypto lacks", hash, cname,
			 salt_len * 8);
		return -ENOTSUP;
	}
	return 0;
}

int vd_cipher_new(const char *cipher, const char *mode, const uint8_t *key,
		  size_t key_len, unsigned sector_size,
		  struct vd_cipher **c_r, char *why, size_t why_len)
{
	char chain[16], cname[32];
	const char *dash = strchr(mode, '-');
	size_t clen = dash ? (size_t)(dash - mode) : strlen(mode);
	struct vd_cipher *c;
	int ret = -ENOTSUP;

	*c_r = NULL;
	why[0] = 0;
	if (vd_lazy_need(&vd_lazy_crypto)) {
		snprintf(why, why_len, "libcrypto cannot be loaded");
		return -ENOSYS;
	}
	if (clen >= sizeof(chain) || strlen(cipher) >= sizeof(cname) ||
	    !key_len || key_len > 256 || sector_size < 16 ||
	    sector_size > 65536 || sector_size % 16) {
		snprintf(why, why_len, "cipher %.31s-%.47s is not supported",
			 cipher, mode);
		return -ENOTSUP;
	}
	memcpy(chain, mode, clen);
	chain[clen] = 0;
	for (size_t i = 0; cipher[i]; i++)
		cname[i] = (char)(cipher[i] >= 'A' && cipher[i] <= 'Z' ?
				  cipher[i] + 32 : cipher[i]);
	cname[strlen(cipher)] = 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sector_size = sector_size;
	c->iv_step = 1;
	if (!strcmp(chain, "xts")) {
		if (key_len % 2) {
			snprintf(why, why_len, "an XTS key of %zu bytes is "
				 "odd", key_len);
			goto fail;
		}
		c->chain = CHAIN_EVP;
		c->data = cipher_ctx(cname, (unsigned)key_len * 4, "xts", key,
				     key_len, 0);
		c->enc = cipher_ctx(cname, (unsigned)key_len * 4, "xts", key,
				    key_len, 1);
		if (!c->data) {
			/* XTS built on ECB (aes-192-xts). */
			c->chain = CHAIN_XTS_ECB;
			c->data = cipher_ctx(cname, (unsigned)key_len * 4,
					     "ecb", key, key_len / 2, 0);
			c->tweak = cipher_ctx(cname, (unsigned)key_len * 4,
					      "ecb", key + key_len / 2,
					      key_len / 2, 1);
			EVP_CIPHER_CTX_free(c->enc);
			c->enc = cipher_ctx(cname, (unsigned)key_len * 4,
					    "ecb", key, key_len / 2, 1);
			if (c->data && (EVP_CIPHER_CTX_block_size(c->data) !=
					16))
				c->tweak = NULL;
		}
	} else if (!strcmp(chain, "cbc") || !strcmp(chain, "ecb") ||
		   !strcmp(chain, "ctr")) {
		c->chain = CHAIN_EVP;
		c->data = cipher_ctx(cname, (unsigned)key_len * 8, chain, key,
				     key_len, 0);
		c->enc = cipher_ctx(cname, (unsigned)key_len * 8, chain, key,
				    key_len, 1);
	}
	if (!c->data || (c->chain == CHAIN_XTS_ECB && !c->tweak)) {
		snprintf(why, why_len, "cipher %s-%s with a %zu-bit key is not "
			 "in libcrypto", cname, mode, key_len * 8);
		goto fail;
	}
	c->iv_len = c->chain == CHAIN_XTS_ECB ? 16 :
		    (unsigned)EVP_CIPHER_CTX_iv_length(c->data);
	if (!strcmp(chain, "ecb")) {
		/* ECB has no IV: an IV generator named with it ("ecb-plain64",
		 * as qemu-img writes) is ignored, as dm-crypt ignores it
		 * ("Selected cipher does not support IVs") and qemu does
		 * (an IV length of 0). */
		c->iv = IV_NONE;
	} else if (!dash) {
		snprintf(why, why_len, "mode %s names no IV generator", mode);
		goto fail;
	} else {
		ret = cipher_parse_iv(c, cname, dash + 1, key, key_len, why,
				      why_len);
		if (ret)
			goto fail;
	}
	if (c->iv_len > 32 || (c->iv != IV_NONE && c->iv_len < 8)) {
		snprintf(why, why_len, "cipher %s-%s has a %u-byte IV", cname,
			 mode, c->iv_len);
		ret = -ENOTSUP;
		goto fail;
	}
	if (sector_size % (unsigned)EVP_CIPHER_CTX_block_size(c->data)) {
		snprintf(why, why_len, "sector size %u is not whole blocks "
			 "of %s", sector_size, cname);
		ret = -ENOTSUP;
		goto fail;
	}
	*c_r = c;
	return 0;
fail:
	vd_cipher_free(c);
	return ret;
}

/* The IV of unit n, into iv (c->iv_len bytes). */
static int cipher_iv(const struct vd_cipher *c, EVP_CIPHER_CTX *essiv,
		     uint64_t n, uint8_t *iv)
{
	int outl;

	memset(iv, 0, c->iv_len);
	switch (c->iv) {
	case IV_PLAIN:
		n &= 0xffffffffu;
		__attribute__((fallthrough));
	case IV_PLAIN64:
	case IV_ESSIV:
		for (unsigned i = 0; i < 8; i++)
			iv[i] = (uint8_t)(n >> (8 * i));
		break;
	case IV_PLAIN64BE:
		for (unsigned i = 0; i < 8; i++)
			iv[c->iv_len - 1 - i] = (uint8_t)(n >> (8 * i));
		break;
	default:
		break;
	}
	if (c->iv == IV_ESSIV &&
	    EVP_EncryptUpdate(essiv, iv, &outl, iv, (int)c->iv_len) != 1)
		return -EIO;
	return 0;
}

/* GF(2^128) multiplication by x of the tweak lo | hi << 64, held as
 * IEEE 1619 holds it: little-endian. */
static void xts_mul_x(uint64_t *lo, uint64_t *hi)
{
	uint64_t carry = *hi >> 63;

	*hi = *hi << 1 | *lo >> 63;
	*lo = *lo << 1 ^ (carry ? 0x87 : 0);
}

static void xts_put_le64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

/* p ^= t over n bytes (a multiple of 8), a word at a time. */
static void xts_xor(uint8_t *p, const uint8_t *t, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t a, b;

		memcpy(&a, p + i, 8);
		memcpy(&b, t + i, 8);
		a ^= b;
		memcpy(p + i, &a, 8);
	}
}

static int cipher_xts_ecb(const struct vd_cipher *c, EVP_CIPHER_CTX *data,
			  EVP_CIPHER_CTX *tweak, uint8_t *p,
			  const uint8_t *iv, uint8_t *tbuf, bool enc)
{
	size_t n = c->sector_size;
	uint64_t lo, hi;
	uint8_t t[16];
	int outl;

	if (EVP_EncryptUpdate(tweak, t, &outl, iv, 16) != 1)
		return -EIO;
	lo = get_le64(t);
	hi = get_le64(t + 8);
	for (size_t b = 0; b < n; b += 16) {
		xts_put_le64(tbuf + b, lo);
		xts_put_le64(tbuf + b + 8, hi);
		xts_mul_x(&lo, &hi);
	}
	xts_xor(p, tbuf, n);
	if ((enc ? EVP_EncryptUpdate(data, p, &outl, p, (int)n) :
		   EVP_DecryptUpdate(data, p, &outl, p, (int)n)) != 1)
		return -EIO;
	xts_xor(p, tbuf, n);
	return 0;
}

static EVP_CIPHER_CTX *cipher_dup(const EVP_CIPHER_CTX *t)
{
	EVP_CIPHER_CTX *ctx;

	if (!t)
		return NULL;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx && EVP_CIPHER_CTX_copy(ctx, t) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Decrypt (enc false, with c->data) or encrypt (with c->enc) whole
 * units in place. */
static int cipher_run(const struct vd_cipher *c, uint8_t *buf, size_t len,
		      uint64_t sector, bool enc)
{
	EVP_CIPHER_CTX *data = cipher_dup(enc ? c->enc : c->data);
	EVP_CIPHER_CTX *tweak = cipher_dup(c->tweak);
	EVP_CIPHER_CTX *essiv = cipher_dup(c->essiv);
	uint8_t iv[32], *tbuf = NULL;
	int ret = -EIO, outl;

	if (len % c->sector_size || !data || (c->tweak && !tweak) ||
	    (c->essiv && !essiv))
		goto out;
	if (c->chain == CHAIN_XTS_ECB) {
		tbuf = malloc(c->sector_size);
		if (!tbuf)
			goto out;
	}
	for (size_t pos = 0; pos < len;
	     pos += c->sector_size, sector += c->iv_step) {
		uint8_t *p = buf + pos;

		if (cipher_iv(c, essiv, sector, iv))
			goto out;
		if (c->chain == CHAIN_XTS_ECB) {
			if (cipher_xts_ecb(c, data, tweak, p, iv, tbuf, enc))
				goto out;
			continue;
		}
		if (EVP_CipherInit_ex(data, NULL, NULL, NULL,
				      c->iv == IV_NONE ? NULL : iv,
				      enc ? 1 : 0) != 1 ||
		    EVP_CipherUpdate(data, p, &outl, p,
				     (int)c->sector_size) != 1 ||
		    outl != (int)c->sector_size)
			goto out;
	}
	ret = 0;
out:
	free(tbuf);
	EVP_CIPHER_CTX_free(data);
	EVP_CIPHER_CTX_free(tweak);
	EVP_CIPHER_CTX_free(essiv);
	return ret;
}

int vd_cipher_decrypt(const struct vd_cipher *c, uint8_t *buf, size_t len,
		      uint64_t sector)
{
	return cipher_run(c, buf, len, sector, false);
}

bool vd_cipher_can_encrypt(const struct vd_cipher *c)
{
	return c->enc != NULL;
}

int vd_cipher_encrypt(const struct vd_cipher *c, uint8_t *buf, size_t len,
		      uint64_t sector)
{
	if (!c->enc)
		return -EROFS;
	return cipher_run(c, buf, len, sector, true);
}

/* Pieces a large decryption (or encryption) is cut into for the pool. */
#define CIPHER_CHUNK (64u << 10)

struct cipher_job {
	const struct vd_cipher *c;
	uint8_t *buf;
	size_t len, chunk;
	uint64_t sector;
	bool enc;
};

static int cipher_job_run(void *arg, unsigned i)
{
	struct cipher_job *j = arg;
	size_t off = (size_t)i * j->chunk;
	size_t n = j->len - off < j->chunk ? j->len - off : j->chunk;

	return cipher_run(j->c, j->buf + off, n,
			  j->sector + off / j->c->sector_size * j->c->iv_step,
			  j->enc);
}

static int cipher_run_par(const struct vd_cipher *c, uint8_t *buf,
			  size_t len, uint64_t sector, bool enc)
{
	struct cipher_job j = { c, buf, len, 0, sector, enc };

	if (len < 2 * CIPHER_CHUNK || len % c->sector_size)
		return cipher_run(c, buf, len, sector, enc);
	/* A whole number of units per piece. */
	j.chunk = CIPHER_CHUNK / c->sector_size * c->sector_size;
	if (!j.chunk)
		j.chunk = c->sector_size;
	return vd_pool_run((unsigned)((len + j.chunk - 1) / j.chunk),
			   cipher_job_run, &j);
}

int vd_cipher_decrypt_par(const struct vd_cipher *c, uint8_t *buf,
			  size_t len, uint64_t sector)
{
	return cipher_run_par(c, buf, len, sector, false);
}

int vd_cipher_encrypt_par(const struct vd_cipher *c, uint8_t *buf,
			  size_t len, uint64_t sector)
{
	if (!c->enc)
		return -EROFS;
	return cipher_run_par(c, buf, len, sector, true);
}
