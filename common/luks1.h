/* A LUKS1 key slot opened by our own code, for the slots libcryptsetup
 * cannot open here: its crypto backend (OpenSSL) lacks the cipher or
 * the IV spelling, and its only fallbacks, the kernel's AF_ALG sockets
 * and a temporary dm-crypt device, are absent from containers and
 * kernels without device-mapper. qemu-img writes such headers: aes-192
 * in XTS (libcrypto has no AES-192-XTS) and "xts-plain64:sha256" (an
 * IV hash qemu writes when given ivgen-hash-alg with plain64, which
 * dm-crypt ignores and libcryptsetup's storage code refuses).
 *
 * "LUKS On-Disk Format Specification" 1.2.3, section 2.4 (the header,
 * offsets below), 3 (opening a key slot: PBKDF2 of the passphrase with
 * the slot's salt and iterations, the key material decrypted with that
 * key by the header's cipher in 512-byte sectors numbered from 0, AF
 * merged, and accepted when PBKDF2 of the result with the digest salt
 * and iterations gives the header's 20-byte digest) and 2.3 (AF
 * merge and its diffusion H). Bulk decryption is common/cipher.c's, so
 * any cipher it reads can be a key slot's. */
#ifndef VD_LUKS1_H
#define VD_LUKS1_H

#include <stddef.h>
#include <stdint.h>

#define VD_LUKS1_HDR_LEN 592u
#define VD_LUKS1_SLOTS 8u
/* cryptsetup and qemu write 4000 stripes; more is refused. */
#define VD_LUKS1_MAX_STRIPES 4000u

/* Where slot's key material lies (bytes from the header's start): 0,
 * or -EUCLEAN with why filled (a slot not active, stripes or key size
 * out of range). hdr: VD_LUKS1_HDR_LEN bytes. */
int vd_luks1_slot_area(const uint8_t *hdr, unsigned slot, uint64_t *off_r,
		       uint64_t *len_r, char *why, size_t why_len);

/* Whether libcryptsetup can take the header's hash (offset 72): 0, or
 * -ENOTSUP with why filled when libcrypto lacks it or its digest is
 * shorter than the 20-byte LUKS1 digest (md5, which qemu-img accepts as
 * hash-alg and cryptsetup refuses). */
int vd_luks1_hash_check(const uint8_t *hdr, char *why, size_t why_len);

/* Opens slot with passphrase pass: km is its key material (km_len, as
 * vd_luks1_slot_area says). 1 with the volume key in vk (the header's
 * key_bytes, at most vk_cap) and *vk_len_r; 0 when the passphrase does
 * not open it; -ENOTSUP (a cipher or hash libcrypto lacks), -EUCLEAN,
 * -EPERM (iterations beyond VD_KDF_MAX_ITERATIONS), -ENOMEM, with why
 * filled (never key bytes). */
int vd_luks1_slot_open(const uint8_t *hdr, unsigned slot, const uint8_t *km,
		       size_t km_len, const uint8_t *pass, size_t pass_len,
		       uint8_t *vk, size_t vk_cap, size_t *vk_len_r,
		       char *why, size_t why_len);

#endif
