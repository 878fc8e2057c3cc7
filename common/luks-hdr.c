/* LUKS headers through libcryptsetup: see luks-hdr.h.
 *
 * Header layouts (for our own checks only): LUKS1, "LUKS On-Disk Format
 * Specification" 1.2.3, section 2.4: the header is 592 bytes, key slot i
 * at 208 + 48 i; LUKS2, "LUKS2 On-Disk Format Specification" 1.1.x,
 * section 2: a 4096-byte binary header with hdr_size (BE64) at offset 8,
 * then the JSON area up to hdr_size, then the second copy. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "common/cipher.h"
#include "common/luks-hdr.h"
#include "common/lazy.h"
#include "common/luks1.h"
#include "common/util.h"

#define LUKS1_HDR_LEN 592u
#define LUKS1_SLOTS 8u
#define LUKS1_SLOT_ACTIVE 0x00ac71f3u
#define LUKS2_BIN_LEN 4096u

struct vd_luks {
	struct crypt_device *cd;
	int other_err; /* a key slot failed otherwise than by a wrong key */
	char other_why[200]; /* what our own LUKS1 code said of it */
	/* LUKS1 key slots are opened by our own code (common/luks1.h):
	 * libcryptsetup could not run the header's cipher. */
	bool own;
	uint8_t hdr1[VD_LUKS1_HDR_LEN]; /* LUKS1: the header */
	int fd; /* the memfd libcryptsetup reads */
	vd_luks_read_fn rd;
	void *arg;
	uint64_t size;
	char *name;
	bool copied[VD_LUKS_MAX_SLOTS]; /* key material in the memfd */
	struct vd_luks_info info;
};

bool vd_luks_magic(const uint8_t *h, size_t len)
{
	return len >= 8 && !memcmp(h, "LUKS\xba\xbe", 6) && h[6] == 0 &&
	       (h[7] == 1 || h[7] == 2);
}

/* libcryptsetup's own messages ("Device ... is too small") describe its
 * view of our memfd: debug only. They never hold key bytes. */
static void luks_log(int level, const char *msg, void *usrptr)
{
	(void)level;
	(void)usrptr;
	vd_log(VD_LOG_DEBUG, "libcryptsetup: %.*s", (int)strcspn(msg, "\n"),
	       msg);
}

/* A run of digits after "key" (quoted), whitespace and a colon. */
static bool json_number_after(const char *p, const char *end,
			      unsigned long long *v)
{
	unsigned long long n = 0;
	bool any = false;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
			   *p == '\r'))
		p++;
	if (p >= end || *p != ':')
		return false;
	p++;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
			   *p == '\r'))
		p++;
	/* Ends: p moves forward each pass. */
	while (p < end && *p >= '0' && *p <= '9') {
		n = n > ULLONG_MAX / 10 ? ULLONG_MAX : n * 10 + (unsigned)(*p - '0');
		any = true;
		p++;
	}
	*v = n;
	return any;
}

int vd_luks2_json_check(const char *json, size_t len, const char *name,
			struct vd_err *e)
{
	static const struct {
		const char *key;
		unsigned long long cap;
	} caps[] = {
		{ "\"iterations\"", VD_KDF_MAX_ITERATIONS },
		{ "\"memory\"", VD_KDF_MAX_MEMORY_KB },
		{ "\"time\"", VD_KDF_MAX_TIME },
		{ "\"cpus\"", VD_KDF_MAX_THREADS },
	};
	const char *end = json + len;

	/* Every number given to a KDF parameter's name, wherever it
	 * stands (key slots, digests, tokens): a cost beyond a cap
	 * anywhere refuses the header. Linear in len. */
	for (const char *p = json; p < end; p++) {
		if (*p != '"')
			continue;
		for (size_t i = 0; i < VD_ARRAY_SIZE(caps); i++) {
			size_t kl = strlen(caps[i].key);
			unsigned long long v;

			if ((size_t)(end - p) < kl || memcmp(p, caps[i].key, kl))
				continue;
			if (json_number_after(p + kl, end, &v) &&
			    v > caps[i].cap)
				return vd_fail(e, -EPERM, "%s: LUKS2 key "
					       "derivation %.*s %llu is beyond "
					       "the cap of %llu; refused", name,
					       (int)kl - 2, caps[i].key + 1, v,
					       caps[i].cap);
		}
	}
	return 0;
}

/* LUKS1: the digest's and every active slot's PBKDF2 iterations. */
static int luks1_check(const uint8_t *h, const char *name, struct vd_err *e)
{
	/* LUKS1 header, offset 164: mk-digest-iter. */
	uint32_t it = get_be32(h + 164);

	if (it > VD_KDF_MAX_ITERATIONS)
		return vd_fail(e, -EPERM, "%s: LUKS1 digest iterations %u "
			       "are beyond the cap of %u; refused", name, it,
			       VD_KDF_MAX_ITERATIONS);
	for (unsigned i = 0; i < LUKS1_SLOTS; i++) {
		const uint8_t *s = h + 208 + 48 * i;

		/* Key slot, offset 0: active; 4: iterations. */
		if (get_be32(s) != LUKS1_SLOT_ACTIVE)
			continue;
		it = get_be32(s + 4);
		if (it > VD_KDF_MAX_ITERATIONS)
			return vd_fail(e, -EPERM, "%s: LUKS1 key slot %u "
				       "iterations %u are beyond the cap of "
				       "%u; refused", name, i, it,
				       VD_KDF_MAX_ITERATIONS);
	}
	return 0;
}

/* Copy len bytes at off of the device into the memfd. */
static int luks_copy(struct vd_luks *l, uint64_t off, uint64_t len,
		     struct vd_err *e)
{
	uint8_t *buf;
	int ret = 0;

	if (!vd_range_ok(off, len, l->size))
		return vd_fail(e, -EUCLEAN, "%s: LUKS area (%llu bytes at "
			       "%llu) lies past the end (%llu bytes)", l->name,
			       (unsigned long long)len,
			       (unsigned long long)off,
			       (unsigned long long)l->size);
	buf = malloc(len ? (size_t)len : 1);
	if (!buf)
		return -ENOMEM;
	ret = l->rd(l->arg, buf, (size_t)len, off);
	if (ret)
		ret = vd_fail(e, ret, "%s: cannot read the LUKS area at %llu: "
			      "%s", l->name, (unsigned long long)off,
			      strerror(-ret));
	else if (pwrite(l->fd, buf, (size_t)len, (off_t)off) != (ssize_t)len)
		ret = vd_fail(e, -EIO, "%s: cannot copy the LUKS header: %s",
			      l->name, strerror(errno));
	free(buf);
	return ret;
}

static void luks_describe(struct vd_luks *l)
{
	struct vd_luks_info *i = &l->info;
	struct crypt_device *cd = l->cd;
	struct crypt_params_integrity ip = { 0 };
	const char *s;
	int max = crypt_keyslot_max(crypt_get_type(cd));

	snprintf(i->uuid, sizeof(i->uuid), "%s",
		 (s = crypt_get_uuid(cd)) ? s : "");
	snprintf(i->label, sizeof(i->label), "%s",
		 (s = crypt_get_label(cd)) ? s : "");
	snprintf(i->cipher, sizeof(i->cipher), "%s",
		 (s = crypt_get_cipher(cd)) ? s : "");
	snprintf(i->mode, sizeof(i->mode), "%s",
		 (s = crypt_get_cipher_mode(cd)) ? s : "");
	i->key_bits = (unsigned)VD_MAX(crypt_get_volume_key_size(cd), 0) * 8;
	i->data_off = crypt_get_data_offset(cd) * 512;
	i->sector_size = (unsigned)VD_MAX(crypt_get_sector_size(cd), 0);
	i->iv_offset = crypt_get_iv_offset(cd);
	for (int n = 0; n < max && i->n_slots < VD_LUKS_MAX_SLOTS; n++) {
		struct crypt_pbkdf_type pb;
		struct vd_luks_slot *sl;
		crypt_keyslot_info st = crypt_keyslot_status(cd, n);

		if (st != CRYPT_SLOT_ACTIVE && st != CRYPT_SLOT_ACTIVE_LAST)
			continue;
		sl = &i->slot[i->n_slots++];
		memset(sl, 0, sizeof(*sl));
		sl->num = n;
		if (crypt_keyslot_get_pbkdf(cd, n, &pb) == 0) {
			snprintf(sl->kdf, sizeof(sl->kdf), "%s",
				 pb.type ? pb.type : "");
			snprintf(sl->hash, sizeof(sl->hash), "%s",
				 pb.hash ? pb.hash : "");
			sl->iterations = pb.iterations;
			sl->memory_kb = pb.max_memory_kb;
			sl->threads = pb.parallel_threads;
		}
	}
	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.integrity &&
	    ip.integrity[0])
		snprintf(i->unsupported, sizeof(i->unsupported),
			 "integrity protection (%s) is not supported",
			 ip.integrity);
	else if (i->version == 2 &&
		 crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
		snprintf(i->unsupported, sizeof(i->unsupported),
			 "an unfinished re-encryption is not supported");
	else if (!i->sector_size || i->sector_size % 512 ||
		 i->sector_size > 4096)
		snprintf(i->unsupported, sizeof(i->unsupported),
			 "sector size %u is not supported", i->sector_size);
}

int vd_luks_load(vd_luks_read_fn rd, void *arg, uint64_t size,
		 const char *name, struct vd_luks **l_r, struct vd_err *e)
{
	static bool logged;
	uint8_t head[LUKS2_BIN_LEN] = { 0 };
	uint64_t hdr_len;
	struct vd_luks *l;
	char path[64];
	int ret;

	*l_r = NULL;
	if (size < LUKS1_HDR_LEN)
		return -ENODEV;
	ret = rd(arg, head, (size_t)VD_MIN(size, sizeof(head)), 0);
	if (ret)
		return vd_fail(e, ret, "%s: cannot read the LUKS header: %s",
			       name, strerror(-ret));
	if (!vd_luks_magic(head, sizeof(head)))
		return -ENODEV;
	if (head[7] == 1) {
		ret = luks1_check(head, name, e);
		if (ret)
			return ret;
		hdr_len = VD_MIN(size, LUKS2_BIN_LEN);
	} else {
		/* LUKS2 binary header, offset 8: hdr_size, a power of two
		 * from 16 KiB to 4 MiB (spec 1.1, section 2). */
		hdr_len = get_be64(head + 8);
		if (hdr_len < (16u << 10) || hdr_len > (4u << 20) ||
		    !vd_is_pow2(hdr_len) || 2 * hdr_len > size)
			return vd_fail(e, -EUCLEAN, "%s: LUKS2 header size %llu "
				       "is invalid (16 KiB to 4 MiB, twice "
				       "within %llu bytes)", name,
				       (unsigned long long)hdr_len,
				       (unsigned long long)size);
		hdr_len *= 2;
	}
	if (!logged) {
		crypt_set_log_callback(NULL, luks_log, NULL);
		crypt_set_debug_level(CRYPT_DEBUG_NONE);
		logged = true;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->rd = rd;
	l->arg = arg;
	l->size = size;
	l->name = strdup(name);
	l->info.version = head[7];
	memcpy(l->hdr1, head, sizeof(l->hdr1));
	if (!l->name) {
		ret = -ENOMEM;
		goto fail;
	}
	l->fd = memfd_create("vdmount-luks", MFD_CLOEXEC);
	if (l->fd < 0 || ftruncate(l->fd, (off_t)size)) {
		ret = vd_fail(e, -errno, "%s: cannot make a memfd for the LUKS "
			      "header: %s", name, strerror(errno));
		goto fail;
	}
	ret = luks_copy(l, 0, hdr_len, e);
	if (ret)
		goto fail;
	if (head[7] == 2) {
		/* Both copies of the JSON area are scanned: libcryptsetup
		 * may fall back to the second. */
		size_t half = (size_t)hdr_len / 2;
		char *json = malloc(hdr_len);

		if (!json) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = pread(l->fd, json, (size_t)hdr_len, 0) == (ssize_t)hdr_len
			      ? 0 : -EIO;
		if (!ret)
			ret = vd_luks2_json_check(json + LUKS2_BIN_LEN,
						  half - LUKS2_BIN_LEN, name, e);
		if (!ret)
			ret = vd_luks2_json_check(json + half + LUKS2_BIN_LEN,
						  half - LUKS2_BIN_LEN, name, e);
		free(json);
		if (ret)
			goto fail;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", l->fd);
	ret = vd_lazy_need(&vd_lazy_cryptsetup);
	if (ret) {
		ret = vd_fail(e, ret, "%s: the LUKS header needs libcryptsetup, "
			      "which cannot be loaded", name);
		goto fail;
	}
	crypt_metadata_locking(NULL, 0);
	ret = crypt_init(&l->cd, path);
	if (ret < 0) {
		ret = vd_fail(e, ret, "%s: libcryptsetup cannot open the LUKS "
			      "header: %s", name, strerror(-ret));
		goto fail;
	}
	ret = crypt_load(l->cd, CRYPT_LUKS, NULL);
	if (ret < 0) {
		char why[160];

		/* A hash libcryptsetup refuses is named, not "invalid". */
		if (head[7] == 1 && vd_luks1_hash_check(head, why,
							sizeof(why)))
			ret = vd_fail(e, -ENOTSUP, "%s: %s", name, why);
		else
			ret = vd_fail(e, -EUCLEAN, "%s: the LUKS%u header is "
				      "invalid (libcryptsetup: %s)", name,
				      head[7], strerror(-ret));
		goto fail;
	}
	luks_describe(l);
	*l_r = l;
	return 0;
fail:
	vd_luks_free(l);
	return ret;
}

const struct vd_luks_info *vd_luks_info(const struct vd_luks *l)
{
	return &l->info;
}

void vd_luks_free(struct vd_luks *l)
{
	if (!l)
		return;
	if (l->cd)
		crypt_free(l->cd);
	if (l->fd >= 0)
		close(l->fd);
	free(l->name);
	free(l);
}

/* Whether slot sl may be tried: its KDF within the caps. */
static bool luks_slot_ok(const struct vd_luks_slot *sl)
{
	if (!strcmp(sl->kdf, "pbkdf2"))
		return sl->iterations <= VD_KDF_MAX_ITERATIONS;
	return sl->iterations <= VD_KDF_MAX_TIME &&
	       sl->memory_kb <= VD_KDF_MAX_MEMORY_KB &&
	       sl->threads <= VD_KDF_MAX_THREADS;
}

/* LUKS1 slot num opened by our own code: 1 (vk, *vk_len filled), 0 (a
 * wrong key), or -errno with l->other_why filled. */
static int luks1_try(struct vd_luks *l, int num, const uint8_t *key,
		     size_t key_len, uint8_t *vk, size_t *vk_len)
{
	uint64_t off, len;
	uint8_t *km;
	int ret;

	ret = vd_luks1_slot_area(l->hdr1, (unsigned)num, &off, &len,
				 l->other_why, sizeof(l->other_why));
	if (ret)
		return ret;
	if (!vd_range_ok(off, len, l->size)) {
		snprintf(l->other_why, sizeof(l->other_why), "LUKS1 key slot "
			 "%d (%llu bytes at %llu) lies past the end (%llu "
			 "bytes)", num, (unsigned long long)len,
			 (unsigned long long)off, (unsigned long long)l->size);
		return -EUCLEAN;
	}
	km = malloc((size_t)len);
	if (!km)
		return -ENOMEM;
	ret = l->rd(l->arg, km, (size_t)len, off);
	if (ret)
		snprintf(l->other_why, sizeof(l->other_why), "cannot read "
			 "LUKS1 key slot %d: %s", num, strerror(-ret));
	else
		ret = vd_luks1_slot_open(l->hdr1, (unsigned)num, km,
					 (size_t)len, key, key_len, vk, *vk_len,
					 vk_len, l->other_why,
					 sizeof(l->other_why));
	free(km);
	return ret;
}

/* Key i against every usable slot: the slot number, or -1. */
static int luks_try(struct vd_luks *l, const uint8_t *key, size_t key_len,
		    uint8_t *vk, size_t *vk_len, struct vd_err *e)
{
	for (unsigned s = 0; s < l->info.n_slots; s++) {
		const struct vd_luks_slot *sl = &l->info.slot[s];
		uint64_t off, len;
		size_t n = *vk_len;
		int r;

		if (!luks_slot_ok(sl))
			continue;
		if (l->own) {
			r = luks1_try(l, sl->num, key, key_len, vk, vk_len);
			if (r > 0)
				return sl->num;
			if (r < 0)
				l->other_err = r;
			continue;
		}
		if (!l->copied[s]) {
			if (crypt_keyslot_area(l->cd, sl->num, &off, &len) < 0 ||
			    len > VD_LUKS_MAX_SLOT_AREA)
				continue;
			if (luks_copy(l, off, len, e))
				continue;
			l->copied[s] = true;
		}
		r = crypt_volume_key_get(l->cd, sl->num, (char *)vk, &n,
					 (const char *)key, key_len);
		if (r >= 0) {
			*vk_len = n;
			return sl->num;
		}
		/* -EPERM: a wrong passphrase. Anything else is a cipher or
		 * IV spelling libcryptsetup's backend lacks: a LUKS1 slot
		 * is then opened by our own code (luks1.h), this one and
		 * every later one; a LUKS2 slot's failure is said. */
		if (r == -EPERM)
			continue;
		if (l->info.version != 1) {
			l->other_err = r;
			continue;
		}
		vd_log(VD_LOG_DEBUG, "%s: libcryptsetup cannot open LUKS1 key "
		       "slot %d (%s): opening it ourselves", l->name, sl->num,
		       strerror(-r));
		l->own = true;
		r = luks1_try(l, sl->num, key, key_len, vk, vk_len);
		if (r > 0)
			return sl->num;
		if (r < 0)
			l->other_err = r;
	}
	return -1;
}

int vd_luks_unlock(struct vd_luks *l, struct vd_keys *k, const char *what,
		   struct vd_cipher **c_r, struct vd_err *e)
{
	const struct vd_luks_info *i = &l->info;
	size_t vk_cap = 512, vk_len = 0;
	uint8_t *vk;
	char why[200];
	unsigned usable = 0, asked = 0, tried = 0;
	int slot = -1, ret;

	*c_r = NULL;
	if (i->unsupported[0])
		return vd_fail(e, -ENOTSUP, "%s: %s", l->name, i->unsupported);
	for (unsigned s = 0; s < i->n_slots; s++)
		usable += luks_slot_ok(&i->slot[s]);
	if (!usable)
		return vd_fail(e, -EPERM, "%s: LUKS%u has no key slot within "
			       "the key-derivation caps", l->name, i->version);
	vk = vd_secure_alloc(vk_cap);
	if (!vk)
		return -ENOMEM;
	/* A data cipher libcrypto lacks is refused by name before any
	 * key derivation runs (a zero key of the right size). */
	ret = vd_cipher_new(i->cipher, i->mode, vk,
			    VD_MIN(i->key_bits / 8, vk_cap), i->sector_size,
			    c_r, why, sizeof(why));
	vd_cipher_free(*c_r);
	*c_r = NULL;
	if (ret) {
		vd_secure_free(vk);
		return ret == -ENOTSUP ? vd_fail(e, ret, "%s: %s", l->name,
						 why) : ret;
	}
	for (unsigned n = 0; n < vd_keys_count(k) && slot < 0; n++) {
		size_t kl;
		const uint8_t *key = vd_keys_get(k, n, &kl);

		vk_len = vk_cap;
		slot = luks_try(l, key, kl, vk, &vk_len, e);
		tried++;
	}
	/* Ends: at most three answers are asked for. */
	while (slot < 0 && asked < 3) {
		unsigned n;
		size_t kl;
		const uint8_t *key;

		if (vd_keys_ask(k, what, &n))
			break;
		asked++;
		tried++;
		key = vd_keys_get(k, n, &kl);
		vk_len = vk_cap;
		slot = luks_try(l, key, kl, vk, &vk_len, e);
	}
	if (slot < 0) {
		if (l->other_err && l->other_why[0])
			ret = vd_fail(e, l->other_err == -ENOMEM ? -ENOMEM :
				      -ENOTSUP, "%s: cannot open a key slot of "
				      "%s-%s (LUKS%u %s): %s", l->name,
				      i->cipher, i->mode, i->version, i->uuid,
				      l->other_why);
		else if (l->other_err)
			ret = vd_fail(e, -ENOTSUP, "%s: libcryptsetup cannot "
				      "open a key slot of %s-%s (LUKS%u %s): %s",
				      l->name, i->cipher, i->mode, i->version,
				      i->uuid, strerror(-l->other_err));
		else if (!tried)
			ret = vd_fail(e, -ENOKEY, "%s is LUKS%u-encrypted (UUID "
				      "%s); give its passphrase with "
				      "--key-file", l->name, i->version,
				      i->uuid);
		else
			ret = vd_fail(e, -ENOKEY, "no key slot of %s (LUKS%u "
				      "%s) opens with the given keys", l->name,
				      i->version, i->uuid);
		goto out;
	}
	vd_log(VD_LOG_DEBUG, "%s: key slot %d opened", l->name, slot);
	ret = vd_cipher_new(i->cipher, i->mode, vk, vk_len, i->sector_size,
			    c_r, why, sizeof(why));
	if (ret == -ENOTSUP)
		vd_fail(e, ret, "%s: %s", l->name, why);
	else if (!ret)
		vd_cipher_iv_in_512(*c_r);
out:
	vd_secure_free(vk);
	return ret;
}
