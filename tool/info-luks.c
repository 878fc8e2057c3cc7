/* vdtool info: every LUKS header found, whether or not a key opened it
 * (what libcryptsetup read of it: common/luks-hdr.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/luks-hdr.h"
#include "tool/info-luks.h"
#include "tool/info-lvm.h"

/* The decrypted volume of ciphertext volume v, or NULL (locked). */
static const struct vd_vol *luks_child(const struct vd_volset *s,
				       const struct vd_vol *v)
{
	for (unsigned i = v->id + 1; i < s->n; i++)
		if (s->vols[i]->parent == v &&
		    !strcmp(s->vols[i]->ops->kind, "luks"))
			return s->vols[i];
	return NULL;
}

static const char *luks_where(const struct vd_vol *v)
{
	return v->id ? v->label : "disk";
}

void vdt_info_luks_text(const struct vd_volset *s)
{
	bool any = false;

	for (unsigned i = 0; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];
		const struct vd_luks_info *l = v->luks;
		const struct vd_vol *c;

		if (!l)
			continue;
		if (!any)
			printf("LUKS headers:\n");
		any = true;
		c = luks_child(s, v);
		printf("  %s: LUKS%u, UUID ", luks_where(v), l->version);
		vdt_info_put(l->uuid);
		printf(", cipher ");
		vdt_info_put(l->cipher);
		printf("-");
		vdt_info_put(l->mode);
		printf(", %u-bit key, data at byte %" PRIu64 ", %u-byte "
		       "sectors\n", l->key_bits, l->data_off, l->sector_size);
		if (l->label[0]) {
			printf("    label: ");
			vdt_info_put(l->label);
			printf("\n");
		}
		for (unsigned k = 0; k < l->n_slots; k++) {
			const struct vd_luks_slot *sl = &l->slot[k];

			printf("    key slot %d: ", sl->num);
			vdt_info_put(sl->kdf);
			if (!strcmp(sl->kdf, "pbkdf2")) {
				printf(" ");
				vdt_info_put(sl->hash);
				printf(", %u iterations\n", sl->iterations);
			} else {
				printf(", %u passes, %u KiB, %u threads\n",
				       sl->iterations, sl->memory_kb,
				       sl->threads);
			}
		}
		if (l->unsupported[0]) {
			printf("    unsupported: ");
			vdt_info_put(l->unsupported);
			printf("\n");
		} else {
			printf("    %s%s\n", c ? "unlocked as " : "locked",
			       c ? c->label : "");
		}
	}
}

void vdt_info_luks_json(struct vdt_json *j, const struct vd_volset *s)
{
	vdt_json_arr(j, "luks");
	for (unsigned i = 0; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];
		const struct vd_luks_info *l = v->luks;
		const struct vd_vol *c;
		char cm[96];

		if (!l)
			continue;
		c = luks_child(s, v);
		vdt_json_obj(j, NULL);
		vdt_json_str(j, "volume", luks_where(v));
		vdt_json_u64(j, "version", l->version);
		vdt_json_str(j, "uuid", l->uuid);
		vdt_json_str(j, "label", l->label);
		snprintf(cm, sizeof(cm), "%s-%s", l->cipher, l->mode);
		vdt_json_str(j, "cipher", cm);
		vdt_json_u64(j, "key-bits", l->key_bits);
		vdt_json_u64(j, "data-offset", l->data_off);
		vdt_json_u64(j, "sector-size", l->sector_size);
		vdt_json_arr(j, "key-slots");
		for (unsigned k = 0; k < l->n_slots; k++) {
			const struct vd_luks_slot *sl = &l->slot[k];

			vdt_json_obj(j, NULL);
			vdt_json_u64(j, "slot", (uint64_t)sl->num);
			vdt_json_str(j, "kdf", sl->kdf);
			if (!strcmp(sl->kdf, "pbkdf2")) {
				vdt_json_str(j, "hash", sl->hash);
				vdt_json_u64(j, "iterations", sl->iterations);
			} else {
				vdt_json_u64(j, "time", sl->iterations);
				vdt_json_u64(j, "memory-kib", sl->memory_kb);
				vdt_json_u64(j, "threads", sl->threads);
			}
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
		if (l->unsupported[0])
			vdt_json_str(j, "unsupported", l->unsupported);
		if (c)
			vdt_json_str(j, "unlocked-as", c->label);
		else
			vdt_json_null(j, "unlocked-as");
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
}
