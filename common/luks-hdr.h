/* A LUKS1 or LUKS2 header, read and unlocked through libcryptsetup.
 *
 * The header's bytes come from wherever the caller reads them (a volume
 * in a guest, the LUKS area inside an encrypted qcow2), so libcryptsetup
 * is given a sparse memfd holding only the header and, before a key slot
 * is tried, that slot's key material; it reaches it as /proc/self/fd/N
 * and needs no block device and no device-mapper. libcryptsetup does the
 * LUKS logic (header checks, PBKDF2 and Argon2, AF merging, the digest),
 * but for LUKS1 key slots whose cipher its crypto backend cannot run
 * (aes-192-xts, qemu's "xts-plain64:sha256"): those are opened by our
 * own code, common/luks1.h, with common/cipher.c's ciphers;
 * this file checks, before any of it runs, what it could not bound: the
 * header area's size, and the cost of every key derivation (see
 * VD_KDF_MAX_*: beyond them a header is refused, named, and never tried).
 * Bulk decryption is common/cipher.c's. */
#ifndef VD_LUKS_HDR_H
#define VD_LUKS_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/log.h"

struct vd_cipher;

/* Caps on key derivation (checked in the header before libcryptsetup
 * runs): PBKDF2 iterations, and Argon2 memory (KiB), passes and
 * threads. cryptsetup's own defaults aim at 2 s and 1 GiB. */
#define VD_KDF_MAX_ITERATIONS (1u << 24)
#define VD_KDF_MAX_MEMORY_KB (1u << 20)
#define VD_KDF_MAX_TIME 64u
#define VD_KDF_MAX_THREADS 16u
/* The largest LUKS2 metadata area (spec: 4 MiB, two copies) and key
 * slot area we copy for libcryptsetup. */
#define VD_LUKS_MAX_SLOT_AREA (16u << 20)
#define VD_LUKS_MAX_SLOTS 32

/* "LUKS\xba\xbe" at byte 0, version 1 or 2. */
bool vd_luks_magic(const uint8_t *head, size_t len);

typedef int (*vd_luks_read_fn)(void *arg, void *buf, size_t len,
			       uint64_t off);

struct vd_luks_slot {
	int num;
	char kdf[16];	/* "pbkdf2", "argon2i", "argon2id" */
	char hash[16];	/* PBKDF2's */
	uint32_t iterations; /* PBKDF2 iterations, Argon2 passes */
	uint32_t memory_kb, threads; /* Argon2 */
};

struct vd_luks_info {
	unsigned version;
	char uuid[40];
	char label[48];
	char cipher[32], mode[48];
	unsigned key_bits;
	uint64_t data_off;    /* bytes */
	unsigned sector_size; /* bytes */
	uint64_t iv_offset;   /* added to the unit number */
	unsigned n_slots;
	struct vd_luks_slot slot[VD_LUKS_MAX_SLOTS];
	/* What cannot be read, or "" (integrity, re-encryption, ...). */
	char unsupported[160];
};

struct vd_luks;

/* Loads the header of a LUKS device of size bytes read through rd.
 * 0; -ENODEV when there is no LUKS header; -ENOTSUP or -EUCLEAN with e
 * filled ("NAME: ..."). A header that loads but is unsupported still
 * loads (info->unsupported says why) for describing. */
int vd_luks_load(vd_luks_read_fn rd, void *arg, uint64_t size,
		 const char *name, struct vd_luks **l_r, struct vd_err *e);
const struct vd_luks_info *vd_luks_info(const struct vd_luks *l);
/* Tries every key of k on every usable key slot; when none opens one
 * and k allows it, asks on the terminal for "WHAT", up to three times.
 * 0 with *c_r the data cipher (unit numbers as the header says: the
 * caller adds info->iv_offset); -ENOKEY (no key opens it), -ENOTSUP,
 * -ENOMEM, with e filled. */
int vd_luks_unlock(struct vd_luks *l, struct vd_keys *k, const char *what,
		   struct vd_cipher **c_r, struct vd_err *e);
void vd_luks_free(struct vd_luks *l);

/* The KDF-cost scan of a LUKS2 JSON area (exposed for the fuzz target):
 * 0, or -EPERM with e filled naming the field and value over its cap. */
int vd_luks2_json_check(const char *json, size_t len, const char *name,
			struct vd_err *e);

#endif
