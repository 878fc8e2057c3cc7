/* Key material: the passphrases a person gives (--key-file, a prompt on
 * the terminal) and the volume keys they unlock.
 *
 * Every byte of key material lives in memory from vd_secure_alloc:
 * locked (mlock, so it never reaches swap), left out of core dumps
 * (MADV_DONTDUMP), and wiped (explicit_bzero) when freed. The first such
 * allocation also makes the process not dumpable (PR_SET_DUMPABLE 0: no
 * core file, no ptrace attach by the same user). No function here logs
 * key bytes; messages name files and volumes only. */
#ifndef VD_KEYS_H
#define VD_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

/* At most this many passphrases in a ring (each tried on every locked
 * layer and volume, so the count multiplies key-derivation work). */
#define VD_KEYS_MAX 16
/* A key file larger than this is refused (cryptsetup's own default cap
 * for a key file is 8 MiB; a passphrase is short). */
#define VD_KEY_FILE_MAX (64u << 10)
/* A typed passphrase: at most this many bytes (cryptsetup's 512). */
#define VD_KEY_TYPED_MAX 512u

/* len bytes (len > 0) of locked, undumpable, zeroed memory, or NULL. */
void *vd_secure_alloc(size_t len);
/* Wipes and frees what vd_secure_alloc gave (NULL: nothing). */
void vd_secure_free(void *p);

struct vd_keys;

struct vd_keys *vd_keys_new(void);
/* Wipes every key and frees the ring (NULL: nothing). */
void vd_keys_free(struct vd_keys *k);
/* Adds the exact bytes of file path as one passphrase. 0, or -errno
 * with e filled (naming the file, never its bytes). */
int vd_keys_add_file(struct vd_keys *k, const char *path, struct vd_err *e);
/* Adds len bytes at p (copied into locked memory). */
int vd_keys_add(struct vd_keys *k, const void *p, size_t len);
unsigned vd_keys_count(const struct vd_keys *k);
/* Key i (< count): its bytes and length. */
const uint8_t *vd_keys_get(const struct vd_keys *k, unsigned i,
			   size_t *len_r);
/* Whether a locked layer or volume may ask for a passphrase on the
 * terminal (the front end sets it when stdin is a terminal and the
 * person did not say otherwise). */
void vd_keys_allow_prompt(struct vd_keys *k, bool on);
/* Ask on the terminal, without echo, "Passphrase for WHAT: ", and add
 * the answer to the ring: 0 and *i_r its index; -ENOKEY when asking is
 * not allowed, stdin is not a terminal, or the answer is empty. */
int vd_keys_ask(struct vd_keys *k, const char *what, unsigned *i_r);

#endif
