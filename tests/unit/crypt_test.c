/* Unit tests of the key and cipher helpers: IEEE 1619's XTS-AES test
 * vectors through vd_cipher (the oracle tests of t-89 cover the other
 * chains against cryptsetup and qemu), the LUKS2 KDF-cost scan at and
 * past its caps, and key files read byte for byte. */
#include <sys/stat.h>

#include <openssl/evp.h>

#include "common/cipher.h"
#include "common/keys.h"
#include "common/luks-hdr.h"
#include "tests/unit/unit.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* IEEE 1619-2007, annex B, vector 2 (XTS-AES-128, data unit
 * 0x3333333333): decrypting its ciphertext gives its plaintext. */
static void test_xts_vectors(void)
{
	uint8_t key[32], ct[32], want[32];
	struct vd_cipher *c;
	char why[200];

	memset(key, 0x11, 16);
	memset(key + 16, 0x22, 16);
	hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
	    ct, 32);
	memset(want, 0x44, 32);
	CHECK("xts: made", !vd_cipher_new("aes", "xts-plain64", key, 32, 32, &c,
					   why, sizeof(why)));
	if (c) {
		CHECK("xts: vector 2", !vd_cipher_decrypt(c, ct, 32, 0x3333333333ULL) &&
					       !memcmp(ct, want, 32));
		vd_cipher_free(c);
	}
}

static void test_refusals(void)
{
	uint8_t key[64] = { 1 };
	struct vd_cipher *c;
	char why[200];

	CHECK("serpent refused", vd_cipher_new("serpent", "xts-plain64", key, 64,
						512, &c, why, sizeof(why)) ==
					  -ENOTSUP && !c);
	CHECK_MSG("serpent named", why, "serpent-xts-plain64");
	CHECK("benbi refused", vd_cipher_new("aes", "cbc-benbi", key, 32, 512, &c,
					      why, sizeof(why)) == -ENOTSUP);
	CHECK_MSG("benbi named", why, "benbi");
	CHECK("odd xts key", vd_cipher_new("aes", "xts-plain64", key, 33, 512, &c,
					    why, sizeof(why)) == -ENOTSUP);
	CHECK("aes-192-xts made (on ECB)",
	      !vd_cipher_new("aes", "xts-plain64", key, 48, 512, &c, why,
			     sizeof(why)));
	vd_cipher_free(c);
	CHECK("essiv sha1 with aes refused",
	      vd_cipher_new("aes", "cbc-essiv:sha1", key, 16, 512, &c, why,
			    sizeof(why)) == -ENOTSUP);
	/* What qemu-img writes: a hash after plain64, an IV generator
	 * after ecb (both ignored, as dm-crypt ignores them), ctr. */
	CHECK("plain64:sha256 made", !vd_cipher_new("aes", "xts-plain64:sha256",
						    key, 64, 512, &c, why,
						    sizeof(why)));
	vd_cipher_free(c);
	CHECK("plain64x refused", vd_cipher_new("aes", "xts-plain64x", key, 64,
						 512, &c, why, sizeof(why)) ==
					   -ENOTSUP);
	CHECK("ecb-plain64 made", !vd_cipher_new("aes", "ecb-plain64", key, 32,
						  512, &c, why, sizeof(why)));
	vd_cipher_free(c);
	CHECK("ctr-plain64 made", !vd_cipher_new("aes", "ctr-plain64", key, 24,
						  512, &c, why, sizeof(why)));
	vd_cipher_free(c);
}

/* CTR: unit n's counter starts at its IV (plain64: n little-endian in
 * the first 8 bytes), big-endian increments per block: decrypting two
 * units at once equals libcrypto's CTR run from each unit's IV. */
static void test_ctr(void)
{
	uint8_t key[16] = { 7 }, buf[1024] = { 0 }, want[1024] = { 0 };
	uint8_t iv[16] = { 0 };
	struct vd_cipher *c;
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	char why[200];
	int outl;

	CHECK("ctr: made", !vd_cipher_new("aes", "ctr-plain64", key, 16, 512,
					   &c, why, sizeof(why)));
	if (!c || !x)
		return;
	for (unsigned u = 0; u < 2; u++) {
		iv[0] = (uint8_t)(5 + u);
		EVP_DecryptInit_ex(x, EVP_aes_128_ctr(), NULL, key, iv);
		EVP_DecryptUpdate(x, want + 512 * u, &outl, want + 512 * u,
				  512);
	}
	CHECK("ctr: two units", !vd_cipher_decrypt(c, buf, sizeof(buf), 5) &&
				       !memcmp(buf, want, sizeof(buf)));
	vd_cipher_free(c);
	EVP_CIPHER_CTX_free(x);
}

/* Encryption, for writes: the XTS vector's plaintext encrypts to its
 * ciphertext, and for every chain (XTS on ECB for aes-192 included)
 * decrypt(encrypt(x)) is x while encrypt(x) is not x, in 512- and
 * 4096-byte units, spread over the pool. */
static void test_encrypt(void)
{
	static const struct {
		const char *mode;
		size_t klen;
		unsigned ss;
	} cs[] = {
		{ "xts-plain64", 64, 512 },   { "xts-plain64", 32, 4096 },
		{ "xts-plain64", 48, 512 },   { "cbc-essiv:sha256", 32, 512 },
		{ "cbc-plain", 16, 512 },     { "ctr-plain64", 24, 512 },
		{ "ecb", 32, 4096 },
	};
	uint8_t key[64], ct[32], want[32];
	struct vd_cipher *c;
	char why[200];
	size_t n = 1 << 20;
	uint8_t *buf = malloc(n), *orig = malloc(n);

	memset(key, 0x11, 16);
	memset(key + 16, 0x22, 16);
	memset(ct, 0x44, 32);
	hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
	    want, 32);
	CHECK("enc: xts made", !vd_cipher_new("aes", "xts-plain64", key, 32, 32,
					      &c, why, sizeof(why)));
	if (c) {
		CHECK("enc: can", vd_cipher_can_encrypt(c));
		CHECK("enc: vector 2",
		      !vd_cipher_encrypt(c, ct, 32, 0x3333333333ULL) &&
			      !memcmp(ct, want, 32));
		vd_cipher_free(c);
	}
	if (!buf || !orig)
		goto out;
	for (size_t i = 0; i < n; i++)
		orig[i] = (uint8_t)(i * 7 + (i >> 9));
	for (size_t k = 0; k < sizeof(key); k++)
		key[k] = (uint8_t)(k * 13 + 1);
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		char name[64];
		bool ok;

		snprintf(name, sizeof(name), "enc: %s, %zu-byte key, %u", cs[i].mode,
			 cs[i].klen, cs[i].ss);
		if (vd_cipher_new("aes", cs[i].mode, key, cs[i].klen, cs[i].ss,
				  &c, why, sizeof(why))) {
			CHECK(name, false);
			continue;
		}
		vd_cipher_iv_in_512(c);
		memcpy(buf, orig, n);
		ok = !vd_cipher_encrypt_par(c, buf, n, 77) &&
		     memcmp(buf, orig, n) &&
		     !vd_cipher_decrypt_par(c, buf, n, 77) &&
		     !memcmp(buf, orig, n);
		CHECK(name, ok);
		vd_cipher_free(c);
	}
out:
	free(buf);
	free(orig);
}

static void test_json_caps(void)
{
	struct vd_err e;
	char big[64];

#define J(s) vd_luks2_json_check(s, strlen(s), "t", &e)
	CHECK("json: at the cap", !J("{\"kdf\":{\"iterations\":16777216}}"));
	CHECK("json: past the cap", J("{\"kdf\":{\"iterations\":16777217}}") == -EPERM);
	CHECK_MSG("json: named", e.msg, "iterations 16777217 is beyond the cap of 16777216");
	CHECK("json: spaces", J("{\"memory\" :\n 1048577}") == -EPERM);
	CHECK("json: memory at cap", !J("{\"memory\":1048576,\"time\":64,\"cpus\":16}"));
	CHECK("json: time", J("{\"time\":65}") == -EPERM);
	CHECK("json: cpus", J("{\"cpus\":17}") == -EPERM);
	CHECK("json: a string value", !J("{\"iterations\":\"99999999999\"}"));
	CHECK("json: cut short", !J("{\"iterations\""));
	CHECK("json: cut after colon", !J("{\"iterations\":"));
	snprintf(big, sizeof(big), "{\"iterations\":%s}", "99999999999999999999999999999");
	CHECK("json: saturates", J(big) == -EPERM);
	CHECK_MSG("json: saturated value", e.msg, "18446744073709551615");
#undef J
}

static void test_key_files(void)
{
	char dir[] = "/tmp/vdkeysXXXXXX", path[64];
	struct vd_keys *k = vd_keys_new();
	struct vd_err e;
	const uint8_t *p;
	size_t n;
	unsigned i;
	FILE *f;

	if (!mkdtemp(dir) || !k)
		abort();
	snprintf(path, sizeof(path), "%s/k", dir);
	f = fopen(path, "wb");
	fwrite("pass\n\0x", 1, 7, f);
	fclose(f);
	CHECK("key file read", !vd_keys_add_file(k, path, &e));
	p = vd_keys_get(k, 0, &n);
	CHECK("key file exact bytes", n == 7 && !memcmp(p, "pass\n\0x", 7));
	CHECK_MSG("missing key file", (vd_keys_add_file(k, "/nonexistent/k", &e), e.msg),
		  "/nonexistent/k: cannot open the key file");
	f = fopen(path, "wb");
	fclose(f);
	CHECK("empty key file refused", vd_keys_add_file(k, path, &e) == -EINVAL);
	CHECK_MSG("empty key file named", e.msg, "a key file holds 1 to");
	CHECK("no prompt unless allowed", vd_keys_ask(k, "x", &i) == -ENOKEY);
	CHECK("count", vd_keys_count(k) == 1);
	unlink(path);
	rmdir(dir);
	vd_keys_free(k);
	CHECK("magic", vd_luks_magic((const uint8_t *)"LUKS\xba\xbe\0\x02", 8) &&
			       !vd_luks_magic((const uint8_t *)"LUKS\xba\xbe\0\x03", 8));
}

int main(void)
{
	test_xts_vectors();
	test_refusals();
	test_ctr();
	test_encrypt();
	test_json_caps();
	test_key_files();
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
