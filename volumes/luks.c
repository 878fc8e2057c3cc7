/* LUKS1 and LUKS2 volumes: a scheme that finds a LUKS header at the
 * start of a volume and, when a key given opens one of its key slots,
 * adds the decrypted volume "luks-UUID" (the name systemd-cryptsetup
 * gives it), which discovery then probes like any other (LUKS -> LVM ->
 * ext4, LVM -> LUKS -> ext4).
 *
 * The header and key slots are libcryptsetup's business (common/
 * luks-hdr.c); the volume here decrypts its parent's bytes after the
 * data offset, one data unit (sector_size bytes, 512 to 4096) at a time,
 * the unit at byte b with IV number b / 512 + iv_offset: dm-crypt counts
 * IVs in 512-byte sectors whatever the unit size unless told
 * iv_large_sectors, which cryptsetup gives plain mode only (checked
 * against a LUKS2 volume with 4096-byte sectors made by cryptsetup).
 *
 * In a writable image the volume is written as dm-crypt writes it: whole
 * units encrypted with the volume key and written to the parent (and so
 * into the qcow2 child). A write that covers part of a unit reads the
 * unit, decrypts it, lays the new bytes in and encrypts it whole; the
 * units a write touches are locked (a table of striped locks) so that
 * two writes into one unit do not lose each other's bytes. A cipher
 * that cannot encrypt fails writes with EROFS (logged once). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cipher.h"
#include "common/luks-hdr.h"
#include "common/util.h"
#include "volumes/vol.h"

struct luks_vol {
	struct vd_vol v;
	const struct vd_vol *ct; /* the ciphertext */
	uint64_t start;		 /* data offset in ct */
	unsigned ss;		 /* data unit bytes */
	uint64_t iv_offset;
	struct vd_cipher *c;
	/* Writes: unit n is guarded by locks[n % LUKS_LOCKS] (taken in
	 * ascending order, so never a deadlock). */
	pthread_mutex_t *locks;
};

#define LUKS_LOCKS 64u
/* The most a write encrypts at once (a longer one goes in pieces). */
#define LUKS_WRITE_CHUNK (1u << 20)

static int luks_read_aligned(const struct luks_vol *lv, uint8_t *buf,
			     size_t len, uint64_t off)
{
	int ret = vd_vol_read(lv->ct, buf, len, lv->start + off);

	if (ret)
		return ret;
	ret = vd_cipher_decrypt_par(lv->c, buf, len,
				    off / 512 + lv->iv_offset);
	if (ret)
		vd_log(VD_LOG_ERR, "%s: cannot decrypt %zu bytes at 0x%llx",
		       lv->v.name, len, (unsigned long long)off);
	return ret;
}

static int luks_read_vec(const struct vd_vol *v, void *buf, size_t len,
			 uint64_t off, struct vd_seg *segs, unsigned max_segs,
			 unsigned *n_r)
{
	const struct luks_vol *lv = (const struct luks_vol *)v;
	uint64_t a = off / lv->ss * lv->ss;
	uint64_t b = (off + len + lv->ss - 1) / lv->ss * lv->ss;
	uint8_t *tmp;
	int ret;

	(void)max_segs;
	*n_r = 0;
	if (a == off && b == off + len) {
		ret = luks_read_aligned(lv, buf, len, off);
	} else {
		/* A partial unit at either end: the whole units, then the
		 * bytes asked for (v->len is whole units, so b fits). */
		tmp = malloc((size_t)(b - a));
		if (!tmp)
			return -ENOMEM;
		ret = luks_read_aligned(lv, tmp, (size_t)(b - a), a);
		if (!ret)
			memcpy(buf, tmp + (off - a), len);
		free(tmp);
	}
	if (ret)
		return ret;
	segs[0] = (struct vd_seg){ .type = VD_SEG_MEM, .len = len,
				   .mem = buf };
	*n_r = 1;
	return 0;
}

static int luks_status(const struct vd_vol *v, uint64_t off, uint64_t len,
		       bool *data_r, uint64_t *len_r)
{
	(void)v;
	(void)off;
	/* Every byte of ciphertext decrypts to something. */
	*data_r = true;
	*len_r = len;
	return 0;
}

static void luks_prefetch(const struct vd_vol *v, uint64_t off, uint64_t len)
{
	const struct luks_vol *lv = (const struct luks_vol *)v;

	vd_vol_prefetch(lv->ct, lv->start + off, len);
}

/* The stripes of units [a, b) locked (or unlocked), in ascending
 * order. */
static void luks_lock(const struct luks_vol *lv, uint64_t a, uint64_t b,
		      bool on)
{
	uint64_t mask = 0;

	if (b - a >= LUKS_LOCKS)
		mask = ~0ull;
	else
		for (uint64_t n = a; n < b; n++)
			mask |= 1ull << (n % LUKS_LOCKS);
	for (unsigned i = 0; i < LUKS_LOCKS; i++) {
		if (!(mask >> i & 1))
			continue;
		if (on)
			pthread_mutex_lock(&lv->locks[i]);
		else
			pthread_mutex_unlock(&lv->locks[i]);
	}
}

/* Bytes [off, off + len) of one piece (at most LUKS_WRITE_CHUNK plus
 * two units), units [a, b) locked by the caller. */
static int luks_write_piece(const struct luks_vol *lv, const uint8_t *buf,
			    size_t len, uint64_t off)
{
	uint64_t a = off / lv->ss * lv->ss;
	uint64_t b = (off + len + lv->ss - 1) / lv->ss * lv->ss;
	size_t n = (size_t)(b - a);
	uint8_t *tmp = malloc(n);
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	/* A partial unit at either end: its other bytes as they are. */
	if (a != off)
		ret = luks_read_aligned(lv, tmp, lv->ss, a);
	if (!ret && b != off + len && (b - lv->ss != a || a == off))
		ret = luks_read_aligned(lv, tmp + n - lv->ss, lv->ss,
					b - lv->ss);
	if (!ret) {
		memcpy(tmp + (off - a), buf, len);
		ret = vd_cipher_encrypt_par(lv->c, tmp, n,
					    a / 512 + lv->iv_offset);
		if (ret)
			vd_log(VD_LOG_ERR, "%s: cannot encrypt %zu bytes at "
			       "0x%llx", lv->v.name, n, (unsigned long long)a);
	}
	if (!ret)
		ret = vd_vol_write(lv->ct, tmp, n, lv->start + a);
	free(tmp);
	return ret;
}

static int luks_write(const struct vd_vol *v, const void *buf, size_t len,
		      uint64_t off)
{
	const struct luks_vol *lv = (const struct luks_vol *)v;
	const uint8_t *p = buf;
	int ret = 0;

	if (!lv->locks || !vd_cipher_can_encrypt(lv->c)) {
		static bool said;

		if (!__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
			vd_log(VD_LOG_ERR, "%s: this cipher cannot be written "
			       "(no encrypting context); the volume stays "
			       "read-only", v->name);
		return -EROFS;
	}
	/* Ends: each piece writes at least one byte. */
	while (!ret && len) {
		size_t n = len < LUKS_WRITE_CHUNK ? len : LUKS_WRITE_CHUNK;
		uint64_t a = off / lv->ss, b = (off + n + lv->ss - 1) / lv->ss;

		luks_lock(lv, a, b, true);
		ret = luks_write_piece(lv, p, n, off);
		luks_lock(lv, a, b, false);
		p += n;
		off += n;
		len -= n;
	}
	return ret;
}

static int luks_flush(const struct vd_vol *v)
{
	return vd_vol_flush(((const struct luks_vol *)v)->ct);
}

static void luks_destroy(struct vd_vol *v)
{
	struct luks_vol *lv = (struct luks_vol *)v;

	if (lv->locks) {
		for (unsigned i = 0; i < LUKS_LOCKS; i++)
			pthread_mutex_destroy(&lv->locks[i]);
		free(lv->locks);
	}
	vd_cipher_free(lv->c);
}

static const struct vd_vol_ops luks_vol_ops = {
	.kind = "luks",
	.read_vec = luks_read_vec,
	.status = luks_status,
	.prefetch = luks_prefetch,
	.write = luks_write,
	.flush = luks_flush,
	.destroy = luks_destroy,
};

static int luks_probe(const struct vd_vol *v)
{
	uint8_t head[8];

	return v->len >= 4096 && !vd_vol_read(v, head, sizeof(head), 0) &&
	       vd_luks_magic(head, sizeof(head));
}

static int luks_rd(void *arg, void *buf, size_t len, uint64_t off)
{
	return vd_vol_read(arg, buf, len, off);
}

static int luks_open(struct vd_volset *s, struct vd_vol *v, struct vd_err *e)
{
	const struct vd_luks_info *i;
	struct vd_luks *l;
	struct vd_cipher *c = NULL;
	struct luks_vol *lv;
	char *name = NULL, what[200];
	int ret;

	ret = vd_luks_load(luks_rd, v, v->len, v->name, &l, e);
	if (ret)
		return ret;
	i = vd_luks_info(l);
	free(v->luks);
	v->luks = malloc(sizeof(*v->luks));
	if (!v->luks) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(v->luks, i, sizeof(*i));
	/* Where the data lies is the volume's business (a qcow2's LUKS
	 * header records an offset nobody uses). */
	if (!i->data_off && !i->unsupported[0])
		snprintf(v->luks->unsupported, sizeof(v->luks->unsupported),
			 "a detached header (data offset 0: the data lies "
			 "on another device) is not supported");
	else if (i->data_off >= v->len && !i->unsupported[0])
		snprintf(v->luks->unsupported, sizeof(v->luks->unsupported),
			 "the data offset %llu lies at or past the end (%llu "
			 "bytes)", (unsigned long long)i->data_off,
			 (unsigned long long)v->len);
	if (v->luks->unsupported[0]) {
		ret = vd_fail(e, -ENOTSUP, "%s: %s", v->name,
			      v->luks->unsupported);
		goto out;
	}
	snprintf(what, sizeof(what), "%s (LUKS%u %s)", v->name, i->version,
		 i->uuid);
	ret = vd_luks_unlock(l, s->keys, what, &c, e);
	if (ret)
		goto out;
	/* i->data_off < v->len: checked above. */
	if (asprintf(&name, "%s luks-%s", s->name, i->uuid) < 0) {
		name = NULL;
		ret = -ENOMEM;
		goto out;
	}
	lv = (struct luks_vol *)vd_vol_new(&luks_vol_ops, sizeof(*lv),
					   (v->len - i->data_off) /
						   i->sector_size *
						   i->sector_size, name);
	if (!lv) {
		ret = -ENOMEM;
		goto out;
	}
	lv->ct = v;
	lv->start = i->data_off;
	lv->ss = i->sector_size;
	lv->iv_offset = i->iv_offset;
	lv->c = c;
	c = NULL;
	lv->locks = malloc(LUKS_LOCKS * sizeof(*lv->locks));
	if (lv->locks)
		for (unsigned k = 0; k < LUKS_LOCKS; k++)
			pthread_mutex_init(&lv->locks[k], NULL);
	snprintf(lv->v.label, sizeof(lv->v.label), "luks-%.40s", i->uuid);
	vd_volset_unique_label(s, lv->v.label, sizeof(lv->v.label));
	lv->v.parent = v;
	lv->v.depth = v->depth + 1;
	vd_log(VD_LOG_DEBUG, "%s: LUKS%u unlocked as %s", v->name, i->version,
	       lv->v.label);
	ret = vd_volset_add(s, &lv->v);
out:
	free(name);
	vd_cipher_free(c);
	vd_luks_free(l);
	return ret;
}

const struct vd_scheme vd_scheme_luks = {
	.name = "luks",
	.probe = luks_probe,
	.open = luks_open,
};
