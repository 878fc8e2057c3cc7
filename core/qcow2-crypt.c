/* qcow2 encryption, read-only: encrypt.format=luks and the legacy
 * encrypt.format=aes.
 *
 * LUKS (qcow2.txt, "Full disk encryption header pointer"): header
 * extension 0x0537be77 holds the offset and length of a LUKS1 header
 * stored in the image's own clusters. It is read and unlocked through
 * libcryptsetup like any LUKS header (common/luks-hdr.c); the payload
 * offset it records is ignored, as qemu ignores it. Each allocated
 * cluster is encrypted in 512-byte sectors whose IV number is the
 * sector's *host* offset / 512 (qemu's block/qcow2.c sets
 * crypt_physical_offset for every method but AES).
 *
 * AES (qemu's crypto/block-qcow.c, which is what images hold): AES-128-
 * CBC, the key the passphrase's first 16 bytes up to a NUL (zeros after
 * a shorter one), IV plain64 of the *guest* offset / 512. Nothing in the
 * image checks the key: a wrong one reads as noise, as under qemu.
 *
 * Compressed clusters in an encrypted image: qemu never writes them and
 * fails to read them; so do we. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cipher.h"
#include "common/keys.h"
#include "common/luks-hdr.h"
#include "common/util.h"
#include "core/qcow2.h"

#define Q_FAIL(err, fmt, ...)                                              \
	vd_fail(e, err, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)
#define Q_LOG(fmt, ...)                                                    \
	vd_log(VD_LOG_ERR, "%s: qcow2: " fmt, l->path, ##__VA_ARGS__)

struct qcow2_crypt {
	struct vd_cipher *c;
	bool host_iv; /* LUKS: IVs from host offsets; AES: guest */
};

void qcow2_crypt_free(struct qcow2_crypt *c)
{
	if (!c)
		return;
	vd_cipher_free(c->c);
	free(c);
}

struct crypt_rd {
	struct vd_file *f;
	uint64_t base;
};

static int crypt_rd(void *arg, void *buf, size_t len, uint64_t off)
{
	struct crypt_rd *r = arg;

	return vd_file_pread(r->f, buf, len, r->base + off);
}

static int crypt_open_luks(struct vd_layer *l, struct qcow2_crypt *qc,
			   const uint8_t *ext, uint32_t ext_len,
			   struct vd_keys *keys, struct vd_err *e)
{
	struct crypt_rd rd = { l->file, 0 };
	struct vd_luks *luks;
	uint64_t len;
	char what[300];
	int ret;

	/* Extension: offset (BE64), length (BE64) of the LUKS header. */
	if (!ext || ext_len < 16)
		return Q_FAIL(-EUCLEAN, "LUKS-encrypted, but the encryption "
			      "header extension is %s", ext ? "short" :
			      "missing");
	rd.base = get_be64(ext);
	len = get_be64(ext + 8);
	if (!len)
		return Q_FAIL(-EUCLEAN, "the LUKS header's length is 0 (in "
			      "the encryption header extension)");
	if (!vd_range_ok(rd.base, len, l->file->size))
		return Q_FAIL(-EUCLEAN, "LUKS header (%llu bytes at 0x%llx) "
			      "lies outside the file (%llu bytes)",
			      (unsigned long long)len,
			      (unsigned long long)rd.base,
			      (unsigned long long)l->file->size);
	ret = vd_luks_load(crypt_rd, &rd, len, l->path, &luks, e);
	if (ret == -ENODEV)
		return Q_FAIL(-EUCLEAN, "no LUKS header at 0x%llx, where the "
			      "encryption header extension points",
			      (unsigned long long)rd.base);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "%s (qcow2 LUKS %s)", l->path,
		 vd_luks_info(luks)->uuid);
	ret = vd_luks_unlock(luks, keys, what, &qc->c, e);
	if (!ret && vd_cipher_sector_size(qc->c) != 512)
		ret = Q_FAIL(-ENOTSUP, "LUKS sector size %u (qemu's is 512)",
			     vd_cipher_sector_size(qc->c));
	vd_luks_free(luks);
	qc->host_iv = true;
	return ret;
}

static int crypt_open_aes(struct vd_layer *l, struct qcow2_crypt *qc,
			  struct vd_keys *keys, struct vd_err *e)
{
	const uint8_t *p;
	uint8_t *key;
	size_t len;
	unsigned n = 0;
	char why[200], what[300];
	int ret;

	if (!vd_keys_count(keys)) {
		snprintf(what, sizeof(what), "%s (qcow2 AES)", l->path);
		if (vd_keys_ask(keys, what, &n))
			return Q_FAIL(-ENOKEY, "AES-encrypted; give its "
				      "passphrase with --key-file");
	} else if (vd_keys_count(keys) > 1) {
		vd_log(VD_LOG_WARN, "%s: qcow2 AES cannot tell a right key "
		       "from a wrong one: the first key file is used",
		       l->path);
	}
	p = vd_keys_get(keys, n, &len);
	key = vd_secure_alloc(16);
	if (!key)
		return -ENOMEM;
	/* qemu takes the secret as a C string: up to a NUL, 16 bytes. */
	len = strnlen((const char *)p, VD_MIN(len, 16));
	memcpy(key, p, len);
	ret = vd_cipher_new("aes", "cbc-plain64", key, 16, 512, &qc->c, why,
			    sizeof(why));
	vd_secure_free(key);
	if (ret == -ENOTSUP)
		return Q_FAIL(ret, "%s", why);
	qc->host_iv = false;
	return ret;
}

int qcow2_crypt_open(struct vd_layer *l, struct qcow2 *q, uint32_t method,
		     const uint8_t *ext, uint32_t ext_len,
		     struct vd_keys *keys, struct vd_err *e)
{
	struct qcow2_crypt *qc;
	int ret;

	if (method != 1 && method != 2)
		return Q_FAIL(-ENOTSUP, "encryption method %u is not "
			      "supported (1 AES, 2 LUKS are)", method);
	qc = calloc(1, sizeof(*qc));
	if (!qc)
		return -ENOMEM;
	ret = method == 2 ? crypt_open_luks(l, qc, ext, ext_len, keys, e) :
			    crypt_open_aes(l, qc, keys, e);
	if (ret) {
		qcow2_crypt_free(qc);
		return ret;
	}
	q->crypt = qc;
	return 0;
}

int qcow2_crypt_unit(struct vd_layer *l, struct qcow2 *q, uint64_t guest,
		     struct qcow2_unit *u)
{
	if (u->type == VD_RUN_COMPRESSED) {
		Q_LOG("compressed cluster at guest offset 0x%llx in an "
		      "encrypted image (qemu cannot read these either)",
		      (unsigned long long)guest);
		return -EIO;
	}
	if (u->type != VD_RUN_DATA)
		return 0;
	/* The whole cluster is one unit: its sectors' IVs follow from the
	 * cluster's host (LUKS) or guest (AES) offset. */
	u->type = VD_RUN_COMPRESSED;
	u->coff = u->host;
	u->clen = q->cluster_size;
	return 0;
}

int qcow2_crypt_decode(struct vd_layer *l, const struct vd_run *r,
		       const uint8_t *in, uint8_t *out)
{
	struct qcow2 *q = l->priv;
	uint64_t at;

	if (!q->crypt)
		return qcow2_decompress(l, in, (size_t)r->comp_len, out,
					r->unit_size);
	if (r->comp_len != r->unit_size)
		return -EIO;
	at = q->crypt->host_iv ? r->host_off : r->unit_guest;
	memcpy(out, in, r->unit_size);
	return vd_cipher_decrypt(q->crypt->c, out, r->unit_size, at / 512);
}
