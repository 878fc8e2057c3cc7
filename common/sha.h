/* SHA-1 and SHA-256 (FIPS 180-4), for the digests of an OVF manifest.
 *
 * Incremental: init, update any number of times with any lengths, final.
 * Our own implementation from the standard's text; no library among our
 * dependencies offers it. Not constant-time, which a digest of public
 * files does not need. */
#ifndef VD_SHA_H
#define VD_SHA_H

#include <stddef.h>
#include <stdint.h>

#define VD_SHA1_LEN 20
#define VD_SHA256_LEN 32
#define VD_SHA_MAX_LEN VD_SHA256_LEN

enum vd_sha_alg { VD_SHA1, VD_SHA256 };

struct vd_sha {
	enum vd_sha_alg alg;
	uint32_t h[8];	   /* the hash value H (5 words for SHA-1) */
	uint64_t bytes;	   /* message length so far */
	uint8_t block[64]; /* a partial block */
	size_t fill;	   /* bytes in block, < 64 */
};

void vd_sha_init(struct vd_sha *s, enum vd_sha_alg alg);
void vd_sha_update(struct vd_sha *s, const void *data, size_t len);
/* Writes vd_sha_len(alg) bytes to out. */
void vd_sha_final(struct vd_sha *s, uint8_t *out);
size_t vd_sha_len(enum vd_sha_alg alg);
/* "SHA1" or "SHA256", as OVF manifests name them. */
const char *vd_sha_name(enum vd_sha_alg alg);

#endif
