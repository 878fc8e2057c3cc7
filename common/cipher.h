/* Sector ciphers as dm-crypt and qemu use them ("aes" + "xts-plain64",
 * "cbc-essiv:sha256", ...), decrypting (and, for writes, encrypting)
 * through OpenSSL's libcrypto (AES-NI where the CPU has it).
 *
 * A cipher decrypts or encrypts whole data units of sector_size bytes,
 * each with an IV made from its unit number. A vd_cipher is immutable once made and
 * may be used by any number of threads at once. Its keys live in
 * libcrypto's contexts, which wipe them when freed. */
#ifndef VD_CIPHER_H
#define VD_CIPHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vd_cipher;

/* cipher: "aes", "camellia", ...; mode: CHAIN[-IVGEN[:HASH]] with CHAIN
 * xts, cbc, ctr or ecb and IVGEN plain, plain64, plain64be, essiv:HASH
 * or null (a HASH after the others, and any IVGEN after ecb, is
 * ignored, as dm-crypt and qemu ignore them). key: key_len bytes (both
 * XTS keys for xts). 0, -ENOMEM, or -ENOTSUP with why filled (names the
 * cipher, never key bytes). */
int vd_cipher_new(const char *cipher, const char *mode, const uint8_t *key,
		  size_t key_len, unsigned sector_size,
		  struct vd_cipher **c_r, char *why, size_t why_len);
/* IV numbers count 512-byte sectors whatever the unit size (dm-crypt
 * without iv_large_sectors, as LUKS2 uses it): unit n's IV number is
 * then first + n * sector_size / 512. The default counts units. */
void vd_cipher_iv_in_512(struct vd_cipher *c);
void vd_cipher_free(struct vd_cipher *c);

/* Decrypt len bytes (a multiple of the sector size) in place; the first
 * unit's IV number is sector (see vd_cipher_iv_in_512). 0 or -EIO. */
int vd_cipher_decrypt(const struct vd_cipher *c, uint8_t *buf, size_t len,
		      uint64_t sector);
/* The same, spread over the cores (common/pool.h) when len is large. */
int vd_cipher_decrypt_par(const struct vd_cipher *c, uint8_t *buf,
			  size_t len, uint64_t sector);
unsigned vd_cipher_sector_size(const struct vd_cipher *c);

/* Whether c can encrypt too (libcrypto has the encrypting side of every
 * cipher here, so only a failure to set it up says no). */
bool vd_cipher_can_encrypt(const struct vd_cipher *c);
/* Encrypt len bytes (whole units) in place, as dm-crypt writes them:
 * the inverse of vd_cipher_decrypt with the same sector. 0, -EIO, or
 * -EROFS when c cannot encrypt. */
int vd_cipher_encrypt(const struct vd_cipher *c, uint8_t *buf, size_t len,
		      uint64_t sector);
int vd_cipher_encrypt_par(const struct vd_cipher *c, uint8_t *buf,
			  size_t len, uint64_t sector);

#endif
