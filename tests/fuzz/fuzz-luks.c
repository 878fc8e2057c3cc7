/* LUKS headers: what we parse ourselves (the LUKS1 cap checks, the
 * LUKS2 header size and the KDF-cost scan of the JSON area) and then
 * libcryptsetup's loading of the header from our memfd, describing it,
 * and, when every key slot is cheap, unlocking it with the key "fuzz"
 * and decrypting a few sectors (common/luks-hdr.c, common/cipher.c);
 * for LUKS1, also our own key-slot opening (common/luks1.c).
 * Both LUKS2 header checksums are made right after mutation
 * (luks_fix), so mutated JSON reaches libcryptsetup's parser. The
 * input is the start of a LUKS device (seeds: cryptsetup luksFormat
 * with small metadata areas); use with dict/luks.dict. */
#include <stdlib.h>
#include <string.h>

#include "common/cipher.h"
#include "common/keys.h"
#include "common/luks-hdr.h"
#include "common/luks1.h"
#include "common/sha.h"
#include "common/util.h"
#include "tests/fuzz/fuzz.h"

struct luks_buf {
	const uint8_t *p;
	size_t n;
};

static int luks_rd(void *arg, void *buf, size_t len, uint64_t off)
{
	const struct luks_buf *b = arg;

	if (!vd_range_ok(off, len, b->n))
		return -5; /* -EIO */
	memcpy(buf, b->p + off, len);
	return 0;
}

/* LUKS2: the SHA-256 of each header copy (hdr_size bytes with the
 * checksum field, offset 448, zeroed) into that field. */
static void luks_fix(uint8_t *d, size_t n)
{
	uint64_t hs;

	if (n < 4096 || memcmp(d, "LUKS\xba\xbe\0\x02", 8))
		return;
	hs = get_be64(d + 8);
	if (hs < 4096 || hs > (4u << 20) || hs > n)
		return;
	for (uint64_t at = 0; at + hs <= n && at <= hs; at += hs) {
		uint8_t *h = d + at;
		struct vd_sha s;

		if (memcmp(h, "LUKS\xba\xbe", 6) && memcmp(h, "SKUL\xba\xbe", 6))
			continue;
		if (strcmp((const char *)h + 72, "sha256"))
			continue;
		memset(h + 448, 0, 64);
		vd_sha_init(&s, VD_SHA256);
		vd_sha_update(&s, h, (size_t)hs);
		vd_sha_final(&s, h + 448);
	}
}

/* LUKS1: our own key-slot opening (common/luks1.c) on every slot whose
 * key derivation is cheap, whatever libcryptsetup thinks of the header. */
static void luks1_own(const uint8_t *d, size_t n)
{
	uint8_t vk[256];
	size_t vk_len;
	char why[200];

	if (n < VD_LUKS1_HDR_LEN || memcmp(d, "LUKS\xba\xbe\0\x01", 8) ||
	    get_be32(d + 164) > 2000)
		return;
	for (unsigned s = 0; s < VD_LUKS1_SLOTS; s++) {
		uint64_t off, len;

		if (vd_luks1_slot_area(d, s, &off, &len, why, sizeof(why)) ||
		    !vd_range_ok(off, len, n) ||
		    get_be32(d + 208 + 48 * s + 4) > 2000)
			continue;
		vd_luks1_slot_open(d, s, d + off, (size_t)len,
				   (const uint8_t *)"fuzz", 4, vk, sizeof(vk),
				   &vk_len, why, sizeof(why));
	}
}

static int luks_one(const uint8_t *in, size_t size)
{
	uint8_t *data = malloc(size ? size : 1);
	struct luks_buf b = { data, size };
	const struct vd_luks_info *i;
	struct vd_cipher *c = NULL;
	struct vd_keys *k;
	struct vd_luks *l;
	struct vd_err e;
	bool cheap = true;

	if (!data)
		abort();
	memcpy(data, in, size);
	luks_fix(data, size);
	luks1_own(data, size);
	vd_luks2_json_check((const char *)data, size, "fuzz", &e);
	if (vd_luks_load(luks_rd, &b, size, "fuzz", &l, &e)) {
		free(data);
		return 0;
	}
	i = vd_luks_info(l);
	/* Real key derivation only where it is quick (the caps allow
	 * seconds per slot: too slow for a fuzzer). */
	for (unsigned s = 0; s < i->n_slots; s++)
		if (i->slot[s].iterations > 2000 || i->slot[s].memory_kb > 256)
			cheap = false;
	k = vd_keys_new();
	if (cheap && k && !vd_keys_add(k, "fuzz", 4) &&
	    !vd_luks_unlock(l, k, "fuzz", &c, &e)) {
		uint8_t buf[8192] = { 0 };
		unsigned ss = vd_cipher_sector_size(c);

		vd_cipher_decrypt(c, buf, sizeof(buf) / ss * ss, i->iv_offset);
		vd_cipher_free(c);
	}
	vd_keys_free(k);
	vd_luks_free(l);
	free(data);
	return 0;
}

const struct fuzz_target fuzz_target = {
	.one = luks_one,
};
