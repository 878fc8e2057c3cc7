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
 * against a LUKS2 volume with 4096-byte sectors made by cryptsetup). */
#include <errno.h>
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
};

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

static void luks_destroy(struct vd_vol *v)
{
	vd_cipher_free(((struct luks_vol *)v)->c);
}

static const struct vd_vol_ops luks_vol_ops = {
	.kind = "luks",
	.read_vec = luks_read_vec,
	.status = luks_status,
	.prefetch = luks_prefetch,
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
