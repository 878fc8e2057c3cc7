/* vdtool info: what an image is — its chain of layers, the partition
 * table, the filesystems — as text for a person or JSON for a program.
 *
 * The JSON names the fields as `qemu-img info --output=json` names them
 * where the two overlap (the layer fields, "format-specific",
 * "snapshots"), so a program that reads one reads the other; everything
 * else is ours (see man/vdtool.1). The report is complete whatever a
 * partition holds: a table or filesystem that cannot be read is shown
 * with the reason, and the exit status is still 0. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "tool/info-luks.h"
#include "tool/info-lvm.h"
#include "tool/json.h"
#include "tool/vdtool.h"

enum { INFO_OPT_JSON = VDT_OPT_FIRST_FREE };

/* Type names for common partition types, as fdisk names them. */
static const struct {
	const char *type; /* vd_part.type: "0x83" or a lower-case GUID */
	const char *name;
} info_type_names[] = {
	{ "0x01", "FAT12" },
	{ "0x04", "FAT16 <32M" },
	{ "0x05", "Extended" },
	{ "0x06", "FAT16" },
	{ "0x07", "HPFS/NTFS/exFAT" },
	{ "0x0b", "W95 FAT32" },
	{ "0x0c", "W95 FAT32 (LBA)" },
	{ "0x0e", "W95 FAT16 (LBA)" },
	{ "0x0f", "W95 Ext'd (LBA)" },
	{ "0x82", "Linux swap / Solaris" },
	{ "0x83", "Linux" },
	{ "0x85", "Linux extended" },
	{ "0x8e", "Linux LVM" },
	{ "0xa5", "FreeBSD" },
	{ "0xee", "GPT" },
	{ "0xef", "EFI (FAT-12/16/32)" },
	{ "0xfd", "Linux raid autodetect" },
	{ "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System" },
	{ "21686148-6449-6e6f-744e-656564454649", "BIOS boot" },
	{ "0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem" },
	{ "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap" },
	{ "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM" },
	{ "a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID" },
	{ "44479540-f297-41b2-9af7-d131d5f0458a", "Linux root (x86)" },
	{ "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)" },
	{ "b921b045-1df0-41c3-af44-4c6f280d3fae", "Linux root (ARM-64)" },
	{ "933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home" },
	{ "bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot" },
	{ "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data" },
	{ "e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved" },
	{ "de94bba4-06d1-4d40-a16a-bfd50179d6ac",
	  "Windows recovery environment" },
	{ "48465300-0000-11aa-aa11-00306543ecac", "Apple HFS/HFS+" },
	{ "7c3457ef-0000-11aa-aa11-00306543ecac", "Apple APFS" },
	{ "516e7cb6-6ecf-11d6-8ff8-00022d09712b", "FreeBSD UFS" },
};

static const char *info_type_name(const char *type)
{
	for (size_t i = 0; i < VD_ARRAY_SIZE(info_type_names); i++)
		if (!strcmp(type, info_type_names[i].type))
			return info_type_names[i].name;
	return NULL;
}

/* ---------------------------------------------------------------- facts */

/* A filesystem, gathered once for both outputs. */
struct info_fs {
	bool shown;		/* mounted: info and st are valid */
	bool has_stat;		/* statfs answered */
	struct vd_fs_info info;
	uint64_t size, used, free;
	const char *error;	/* recognised but not shown, or NULL */
	struct vd_fs *fs;	/* shown: for info.subvol */
};

/* The filesystem of volume id. */
static void info_fs_gather_vol(struct vd_ns *ns, unsigned id,
			       struct info_fs *f)
{
	const char *error;
	struct vd_fs *fs = vd_ns_vol_fs(ns, id, &error);
	struct statvfs st;

	memset(f, 0, sizeof(*f));
	f->error = error;
	if (!fs)
		return;
	f->shown = true;
	f->fs = fs;
	if (fs->ops->info)
		fs->ops->info(fs, &f->info);
	else
		snprintf(f->info.type, sizeof(f->info.type), "%s",
			 fs->ops->name);
	if (fs->ops->statfs && fs->ops->statfs(fs, &st) == 0) {
		uint64_t fr = st.f_frsize ? st.f_frsize : st.f_bsize;

		f->has_stat = true;
		f->size = (uint64_t)st.f_blocks * fr;
		f->used = (uint64_t)(st.f_blocks - st.f_bfree) * fr;
		f->free = (uint64_t)st.f_bfree * fr;
	}
}

/* The volume id of the disk's partition num (0: the disk itself). */
static unsigned info_part_vol(struct vd_ns *ns, unsigned num)
{
	const struct vd_volset *s = vd_ns_volset(ns);

	for (unsigned i = 1; num != VD_NS_VOL_WHOLE && i < s->n; i++)
		if (s->vols[i]->parent == s->vols[0] && s->vols[i]->desc &&
		    ((const struct vd_part *)s->vols[i]->desc)->num == num)
			return i;
	return 0;
}

static void info_fs_gather(struct vd_ns *ns, unsigned num, struct info_fs *f)
{
	info_fs_gather_vol(ns, info_part_vol(ns, num), f);
}

/* Bytes of the disk that hold data anywhere in the chain (zeros that are
 * not stored do not count): the sum of the data runs the read path
 * sees. -errno when a map fails (logged). */
static int info_allocated(struct vd_disk *d, uint64_t *bytes_r)
{
	uint64_t size = vd_disk_size(d), off = 0, sum = 0, n;
	bool data;
	int ret;

	/* Ends: every step moves off forward by n > 0, up to size. */
	while (off < size) {
		ret = vd_disk_status(d, off, size - off, &data, &n);
		if (ret)
			return ret;
		if (!n || n > size - off)
			return -EIO;
		if (data)
			sum += n;
		off += n;
	}
	*bytes_r = sum;
	return 0;
}

/* ---------------------------------------------------------------- JSON */

static void info_json_snapshots(struct vdt_json *j,
				const struct vd_layer_info *li)
{
	if (!li->n_snapshots)
		return;
	vdt_json_arr(j, "snapshots");
	for (unsigned k = 0; k < li->n_snapshots; k++) {
		const struct vd_layer_snapshot *s = &li->snapshots[k];

		vdt_json_obj(j, NULL);
		vdt_json_str(j, "id", s->id);
		vdt_json_str(j, "name", s->name);
		vdt_json_u64(j, "vm-state-size", s->vm_state_size);
		vdt_json_i64(j, "date-sec", s->date_sec);
		vdt_json_u64(j, "date-nsec", s->date_nsec);
		vdt_json_u64(j, "vm-clock-sec", s->vm_clock_nsec / 1000000000);
		vdt_json_u64(j, "vm-clock-nsec", s->vm_clock_nsec % 1000000000);
		if (s->has_icount)
			vdt_json_u64(j, "icount", s->icount);
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
}

/* qemu-img's "format-specific" for the formats that have one. */
static void info_json_specific(struct vdt_json *j,
			       const struct vd_layer_info *li)
{
	if (!strcmp(li->format, "qcow2")) {
		bool v3 = !strcmp(li->subformat, "1.1");

		vdt_json_obj(j, "format-specific");
		vdt_json_str(j, "type", "qcow2");
		vdt_json_obj(j, "data");
		vdt_json_str(j, "compat", li->subformat);
		vdt_json_str(j, "compression-type", li->compression);
		if (v3)
			vdt_json_bool(j, "lazy-refcounts", li->lazy_refcounts);
		vdt_json_u64(j, "refcount-bits", li->refcount_bits);
		if (li->data_file) {
			vdt_json_str(j, "data-file", li->data_file);
			vdt_json_bool(j, "data-file-raw", li->data_file_raw);
		}
		if (v3) {
			vdt_json_bool(j, "corrupt", li->corrupt);
			vdt_json_bool(j, "extended-l2", li->extended_l2);
		}
		vdt_json_end_obj(j);
		vdt_json_end_obj(j);
	} else if (!strcmp(li->format, "vmdk")) {
		vdt_json_obj(j, "format-specific");
		vdt_json_str(j, "type", "vmdk");
		vdt_json_obj(j, "data");
		if (li->has_cid)
			vdt_json_u64(j, "cid", li->cid);
		vdt_json_u64(j, "parent-cid", li->parent_cid);
		vdt_json_str(j, "create-type", li->subformat);
		vdt_json_arr(j, "extents");
		for (unsigned k = 0; k < li->n_extents; k++) {
			const struct vd_layer_extent *x = &li->extents[k];

			vdt_json_obj(j, NULL);
			if (x->compressed)
				vdt_json_bool(j, "compressed", true);
			vdt_json_u64(j, "virtual-size", x->virtual_size);
			vdt_json_str(j, "filename", x->filename);
			if (x->cluster_size)
				vdt_json_u64(j, "cluster-size",
					     x->cluster_size);
			vdt_json_str(j, "format", x->type);
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
		vdt_json_end_obj(j);
		vdt_json_end_obj(j);
	}
}

/* The fields of one layer, into the object already open. */
static void info_json_layer(struct vdt_json *j, const struct vd_layer *l)
{
	struct vd_layer_info li;

	vd_layer_info(l, &li);
	vdt_json_str(j, "filename", vd_layer_path(l));
	vdt_json_str(j, "format", li.format);
	if (li.subformat[0])
		vdt_json_str(j, "subformat", li.subformat);
	vdt_json_u64(j, "virtual-size", li.virtual_size);
	vdt_json_u64(j, "actual-size", li.actual_size);
	if (li.cluster_size)
		vdt_json_u64(j, "cluster-size", li.cluster_size);
	if (li.compression[0])
		vdt_json_str(j, "compression", li.compression);
	vdt_json_bool(j, "dirty-flag", li.dirty);
	if (li.backing_filename)
		vdt_json_str(j, "backing-filename", li.backing_filename);
	if (li.full_backing_filename)
		vdt_json_str(j, "full-backing-filename",
			     li.full_backing_filename);
	if (li.backing_format)
		vdt_json_str(j, "backing-filename-format", li.backing_format);
	info_json_snapshots(j, &li);
	info_json_specific(j, &li);
	if (li.incomplete)
		vdt_json_bool(j, "incomplete", true);
	vd_layer_info_free(&li);
}

static void info_json_fs(struct vdt_json *j, const char *key,
			 const struct info_fs *f)
{
	if (!f->shown) {
		vdt_json_null(j, key);
		return;
	}
	vdt_json_obj(j, key);
	vdt_json_str(j, "type", f->info.type);
	if (f->info.subtype[0])
		vdt_json_str(j, "subtype", f->info.subtype);
	vdt_json_str(j, "label", f->info.label);
	vdt_json_str(j, "uuid", f->info.uuid);
	if (f->info.block_size)
		vdt_json_u64(j, "block-size", f->info.block_size);
	if (f->info.cluster_size)
		vdt_json_u64(j, "cluster-size", f->info.cluster_size);
	if (f->has_stat) {
		vdt_json_u64(j, "size", f->size);
		vdt_json_u64(j, "used", f->used);
		vdt_json_u64(j, "free", f->free);
	}
	vdt_json_bool(j, "journal-needed-recovery", f->info.needed_recovery);
	vdt_json_bool(j, "journal-replayed", f->info.replayed);
	if (f->info.subvol) {
		struct vd_fs_subvol s;

		vdt_json_u64(j, "generation", f->info.generation);
		vdt_json_u64(j, "default-subvolume", f->info.default_subvol);
		vdt_json_arr(j, "subvolumes");
		for (size_t i = 0; i < f->info.nsubvols; i++) {
			if (f->info.subvol(f->fs, i, &s))
				continue;
			vdt_json_obj(j, NULL);
			vdt_json_u64(j, "id", s.id);
			if (s.path)
				vdt_json_str(j, "path", s.path);
			else
				vdt_json_null(j, "path");
			vdt_json_u64(j, "parent", s.parent);
			vdt_json_u64(j, "generation", s.generation);
			vdt_json_bool(j, "read-only", s.readonly);
			vdt_json_end_obj(j);
		}
		vdt_json_end_arr(j);
	}
	vdt_json_end_obj(j);
}

static void info_json_vols(struct vdt_json *j, struct vd_ns *ns);

static void info_json(const struct vd_image *img, int alloc_ret,
		      uint64_t alloc)
{
	const struct vd_parts *parts = vd_ns_parts(img->ns);
	const struct vd_layer *top = vd_disk_top(img->disk);
	struct vdt_json j;
	struct info_fs f;
	char guid[40];

	vdt_json_init(&j, stdout);
	vdt_json_obj(&j, NULL);
	info_json_layer(&j, top);
	vdt_json_arr(&j, "backing-chain");
	for (const struct vd_layer *l = top; l; l = vd_layer_backing(l)) {
		vdt_json_obj(&j, NULL);
		info_json_layer(&j, l);
		vdt_json_end_obj(&j);
	}
	vdt_json_end_arr(&j);
	if (alloc_ret) {
		vdt_json_null(&j, "allocated-bytes");
		vdt_json_str(&j, "allocated-bytes-error",
			     strerror(-alloc_ret));
	} else {
		vdt_json_u64(&j, "allocated-bytes", alloc);
	}

	vdt_json_obj(&j, "partition-table");
	if (parts && parts->scheme == VD_PART_GPT)
		vdt_json_str(&j, "type", "gpt");
	else if (parts && parts->scheme == VD_PART_MBR)
		vdt_json_str(&j, "type", "dos");
	else
		vdt_json_null(&j, "type");
	if (parts && parts->scheme != VD_PART_NONE) {
		vdt_json_u64(&j, "sector-size", parts->sector_size);
		if (parts->scheme == VD_PART_GPT) {
			vd_uuid_str(parts->disk_guid, true, guid);
			vdt_json_str(&j, "id", guid);
		} else {
			snprintf(guid, sizeof(guid), "0x%08" PRIx32,
				 parts->mbr_id);
			vdt_json_str(&j, "id", guid);
		}
	}
	if (vd_ns_parts_error(img->ns))
		vdt_json_str(&j, "error", vd_ns_parts_error(img->ns));
	vdt_json_end_obj(&j);

	vdt_json_arr(&j, "partitions");
	for (unsigned i = 0; parts && i < parts->n; i++) {
		const struct vd_part *p = &parts->part[i];
		const char *tn = info_type_name(p->type);

		vdt_json_obj(&j, NULL);
		vdt_json_u64(&j, "number", p->num);
		vdt_json_u64(&j, "start", p->start);
		vdt_json_u64(&j, "size", p->len);
		vdt_json_str(&j, "type", p->type);
		if (tn)
			vdt_json_str(&j, "type-name", tn);
		if (parts->scheme == VD_PART_GPT) {
			vdt_json_str(&j, "name", p->name);
			vd_uuid_str(p->uuid, true, guid);
			vdt_json_str(&j, "uuid", guid);
			vdt_json_u64(&j, "attributes", p->attrs);
		} else {
			vdt_json_bool(&j, "bootable", p->bootable);
			if (p->extended)
				vdt_json_bool(&j, "extended", true);
		}
		info_fs_gather(img->ns, p->num, &f);
		info_json_fs(&j, "filesystem", &f);
		if (f.error)
			vdt_json_str(&j, "error", f.error);
		vdt_json_end_obj(&j);
	}
	vdt_json_end_arr(&j);

	if (!parts || !parts->n) {
		info_fs_gather(img->ns, VD_NS_VOL_WHOLE, &f);
		if (f.shown)
			info_json_fs(&j, "filesystem", &f);
		if (f.error)
			vdt_json_str(&j, "filesystem-error", f.error);
	}
	info_json_vols(&j, img->ns);
	vdt_info_lvm_json(&j, vd_ns_volset(img->ns));
	vdt_info_luks_json(&j, vd_ns_volset(img->ns));
	vdt_json_end_obj(&j);
}

/* ---------------------------------------------------------------- text */

/* "1.5 GiB": for a person; the exact bytes go beside it. */
const char *vdt_info_human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	unsigned u = 0;
	double d = (double)v;

	while (d >= 1024 && u + 1 < VD_ARRAY_SIZE(units)) {
		d /= 1024;
		u++;
	}
	if (u == 0 || d == (double)(uint64_t)d)
		snprintf(buf, len, "%.0f %s", d, units[u]);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

/* Guest text, with control characters (a terminal's escapes) shown as
 * '?'. */
void vdt_info_put(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void info_size_line(const char *what, uint64_t v)
{
	char h[32];

	printf("    %-17s %s (%" PRIu64 " bytes)\n", what,
	       vdt_info_human(v, h, sizeof(h)), v);
}

static void info_text_layer(const struct vd_layer *l, unsigned depth)
{
	struct vd_layer_info li;

	vd_layer_info(l, &li);
	printf("  [%u] ", depth);
	vdt_info_put(vd_layer_path(l));
	printf("\n    %-17s %s", "format:", li.format);
	if (li.subformat[0]) {
		printf(" (");
		vdt_info_put(li.subformat);
		printf(")");
	}
	printf("\n");
	info_size_line("virtual size:", li.virtual_size);
	info_size_line("file size:", li.actual_size);
	if (li.cluster_size)
		printf("    %-17s %" PRIu32 "\n",
		       !strcmp(li.format, "vmdk") ? "grain size:" :
		       !strcmp(li.format, "vpc")  ? "block size:" :
						    "cluster size:",
		       li.cluster_size);
	if (li.compression[0])
		printf("    %-17s %s\n", "compression:", li.compression);
	if (li.dirty || li.corrupt)
		printf("    %-17s %s%s%s\n", "flags:", li.dirty ? "dirty" : "",
		       li.dirty && li.corrupt ? ", " : "",
		       li.corrupt ? "corrupt" : "");
	if (li.data_file) {
		printf("    %-17s ", "data file:");
		vdt_info_put(li.data_file);
		printf("%s\n", li.data_file_raw ? " (raw)" : "");
	}
	if (li.backing_filename) {
		printf("    %-17s ", "backing file:");
		vdt_info_put(li.backing_filename);
		if (li.backing_format) {
			printf(" (format ");
			vdt_info_put(li.backing_format);
			printf(")");
		}
		printf("\n");
	}
	if (li.n_extents > 1 ||
	    (li.n_extents == 1 && li.extents[0].type[0])) {
		printf("    extents:\n");
		for (unsigned k = 0; k < li.n_extents; k++) {
			const struct vd_layer_extent *x = &li.extents[k];
			char h[32];

			printf("      %-10s %10s  ", x->type,
			       vdt_info_human(x->virtual_size, h, sizeof(h)));
			vdt_info_put(x->filename);
			printf("\n");
		}
	}
	if (li.n_snapshots) {
		printf("    snapshots:\n      %-8s %-20s %12s  %-19s  %s\n",
		       "ID", "NAME", "VM SIZE", "DATE", "VM CLOCK");
		for (unsigned k = 0; k < li.n_snapshots; k++) {
			const struct vd_layer_snapshot *s = &li.snapshots[k];
			uint64_t secs = s->vm_clock_nsec / 1000000000;
			time_t t = (time_t)s->date_sec;
			struct tm tm;
			char date[32] = "?", h[32];

			if (localtime_r(&t, &tm))
				strftime(date, sizeof(date),
					 "%Y-%m-%d %H:%M:%S", &tm);
			printf("      %-8s ", s->id);
			printf("%-20s ", s->name);
			printf("%12s  %-19s  %02" PRIu64 ":%02u:%02u.%03u\n",
			       vdt_info_human(s->vm_state_size, h, sizeof(h)),
			       date, secs / 3600, (unsigned)(secs / 60 % 60),
			       (unsigned)(secs % 60),
			       (unsigned)(s->vm_clock_nsec % 1000000000 /
					  1000000));
		}
	}
	if (li.incomplete)
		printf("    (incomplete: part of the metadata could not be "
		       "read)\n");
	vd_layer_info_free(&li);
}

/* btrfs: the generation, every subvolume, the default one. */
static void info_text_subvols(const struct info_fs *f)
{
	struct vd_fs_subvol s;

	printf("       generation %" PRIu64 "\n", f->info.generation);
	for (size_t i = 0; i < f->info.nsubvols; i++) {
		if (f->info.subvol(f->fs, i, &s))
			continue;
		printf("       subvolume %" PRIu64 " ", s.id);
		if (s.path)
			vdt_info_put(s.path);
		else
			printf("(unreachable)");
		printf(", generation %" PRIu64 "%s\n", s.generation,
		       s.readonly ? ", read-only" : "");
	}
	printf("       default subvolume %" PRIu64 "%s\n",
	       f->info.default_subvol,
	       f->info.default_subvol == 5 ? " (the top level)" : "");
}

static void info_text_fs(const char *name, const struct info_fs *f)
{
	char h1[32], h2[32];

	if (!f->shown && !f->error)
		return;
	printf("  %-4s ", name);
	if (!f->shown) {
		printf("not shown: ");
		vdt_info_put(f->error);
		printf("\n");
		return;
	}
	printf("%s", f->info.type);
	if (f->info.subtype[0])
		printf(" (%s)", f->info.subtype);
	if (f->info.label[0]) {
		printf(", label \"");
		vdt_info_put(f->info.label);
		printf("\"");
	}
	if (f->info.uuid[0]) {
		printf(", %s ", !strcmp(f->info.type, "vfat") ||
					!strcmp(f->info.type, "ntfs") ?
				       "serial" : "UUID");
		vdt_info_put(f->info.uuid);
	}
	if (f->info.block_size)
		printf(", %u-byte blocks", f->info.block_size);
	printf("\n");
	if (f->has_stat)
		printf("       size %s (%" PRIu64 " bytes), used %s (%" PRIu64
		       " bytes)\n", vdt_info_human(f->size, h1, sizeof(h1)),
		       f->size, vdt_info_human(f->used, h2, sizeof(h2)), f->used);
	if (f->info.cluster_size)
		printf("       cluster size %" PRIu32 "\n",
		       f->info.cluster_size);
	if (f->info.needed_recovery)
		printf("       journal needed recovery: %s\n",
		       f->info.replayed ? "replayed in memory" :
					  "not replayed");
	if (f->info.subvol)
		info_text_subvols(f);
}

/* What a volume that shows no filesystem holds, or NULL. */
static const char *info_vol_holds(const struct vd_vol *v)
{
	if (v->role == VD_VOL_MEMBER)
		return v->member_of;
	if (v->role == VD_VOL_TABLE)
		return "partition table";
	return NULL;
}

/* Volumes besides the disk's own partitions (LVs, ...), for both
 * outputs: true when v is one. */
static bool info_other_vol(const struct vd_volset *s, const struct vd_vol *v)
{
	return v->id && v->parent != s->vols[0] && !v->hidden;
}

static void info_text_vols(struct vd_ns *ns)
{
	const struct vd_volset *s = vd_ns_volset(ns);
	struct info_fs f;
	char h[32];
	bool any = false;

	for (unsigned i = 1; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];

		if (!info_other_vol(s, v))
			continue;
		if (!any)
			printf("volumes:\n  %-28s %-10s %14s %10s\n", "NAME",
			       "KIND", "SIZE", "");
		any = true;
		printf("  %-28s %-10s %14" PRIu64 " %10s\n", v->label,
		       v->ops->kind, v->len, vdt_info_human(v->len, h, sizeof(h)));
	}
	if (!any)
		return;
	printf("filesystems on volumes:\n");
	for (unsigned i = 1; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];

		if (!info_other_vol(s, v))
			continue;
		info_fs_gather_vol(ns, i, &f);
		if (!f.shown && !f.error)
			printf("  %s: %s\n", v->label,
			       info_vol_holds(v) ? info_vol_holds(v) :
						   "none recognised");
		else
			info_text_fs(v->label, &f);
	}
}

static void info_json_vols(struct vdt_json *j, struct vd_ns *ns)
{
	const struct vd_volset *s = vd_ns_volset(ns);
	struct info_fs f;

	vdt_json_arr(j, "volumes");
	for (unsigned i = 1; i < s->n; i++) {
		const struct vd_vol *v = s->vols[i];

		if (!info_other_vol(s, v))
			continue;
		vdt_json_obj(j, NULL);
		vdt_json_str(j, "name", v->label);
		vdt_json_str(j, "kind", v->ops->kind);
		vdt_json_u64(j, "size", v->len);
		if (info_vol_holds(v))
			vdt_json_str(j, "holds", info_vol_holds(v));
		info_fs_gather_vol(ns, i, &f);
		if (f.shown)
			info_json_fs(j, "filesystem", &f);
		if (f.error)
			vdt_json_str(j, "error", f.error);
		vdt_json_end_obj(j);
	}
	vdt_json_end_arr(j);
}

static void info_text(const struct vd_image *img, int alloc_ret,
		      uint64_t alloc)
{
	const struct vd_parts *parts = vd_ns_parts(img->ns);
	const struct vd_layer *l = vd_disk_top(img->disk);
	struct info_fs f;
	char h[32];
	unsigned depth = 0;

	printf("image: ");
	vdt_info_put(img->path);
	printf("\nchain (top first):\n");
	for (; l; l = vd_layer_backing(l))
		info_text_layer(l, depth++);
	printf("disk:\n");
	info_size_line("size:", vd_disk_size(img->disk));
	if (alloc_ret)
		printf("    %-17s unknown (%s)\n", "allocated:",
		       strerror(-alloc_ret));
	else
		info_size_line("allocated:", alloc);

	printf("partition table: ");
	if (vd_ns_parts_error(img->ns)) {
		printf("unreadable: ");
		vdt_info_put(vd_ns_parts_error(img->ns));
		printf("\n");
	} else if (!parts || parts->scheme == VD_PART_NONE) {
		printf("none\n");
	} else {
		printf("%s, %u-byte sectors\n",
		       parts->scheme == VD_PART_GPT ? "gpt" : "dos",
		       parts->sector_size);
	}
	if (parts && parts->n) {
		printf("  %-4s %14s %12s %10s  %-24s %s\n", "#", "START",
		       "SIZE", "", "TYPE", "NAME");
		for (unsigned i = 0; i < parts->n; i++) {
			const struct vd_part *p = &parts->part[i];
			const char *tn = info_type_name(p->type);

			printf("  p%-3u %14" PRIu64 " %12" PRIu64 " %10s  "
			       "%-24s ", p->num, p->start, p->len,
			       vdt_info_human(p->len, h, sizeof(h)),
			       tn ? tn : p->type);
			vdt_info_put(p->name);
			printf("%s\n", p->bootable ? "(boot)" : "");
		}
		printf("filesystems:\n");
		for (unsigned i = 0; i < parts->n; i++) {
			char name[16];

			snprintf(name, sizeof(name), "p%u", parts->part[i].num);
			info_fs_gather(img->ns, parts->part[i].num, &f);
			const struct vd_vol *v = vd_ns_volset(img->ns)->vols
				[info_part_vol(img->ns, parts->part[i].num)];

			if (parts->part[i].extended)
				printf("  %-4s extended: holds the logical "
				       "partitions\n", name);
			else if (!f.shown && !f.error)
				printf("  %-4s %s\n", name,
				       info_vol_holds(v) ? info_vol_holds(v) :
							   "none recognised");
			else
				info_text_fs(name, &f);
		}
	} else {
		info_fs_gather(img->ns, VD_NS_VOL_WHOLE, &f);
		printf("filesystem on the whole disk:%s\n",
		       f.shown || f.error ? "" : " none recognised");
		info_text_fs("fs", &f);
	}
	info_text_vols(img->ns);
	vdt_info_lvm_text(vd_ns_volset(img->ns));
	vdt_info_luks_text(vd_ns_volset(img->ns));
}

static void info_usage(FILE *out)
{
	fprintf(out,
"usage: vdtool info [--json] [options] IMAGE\n"
"\n"
"Describe IMAGE: each layer of its backing chain (format, sizes, cluster\n"
"size, compression, backing file, snapshots), the bytes of the disk that\n"
"hold data, the partition table and each partition's filesystem (type,\n"
"label, UUID, size, used, journal state).\n"
"\n"
"  --json                one JSON object; fields named as qemu-img info\n"
"                        --output=json names them where the two overlap\n"
"%s"
"\n"
"Exit status: 0 when the report was printed (also when a partition or\n"
"filesystem could not be read: the report says why), 1 when the image\n"
"cannot be opened, 2 for a bad command line.\n", vdt_common_help);
}

int vdt_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		VDT_COMMON_LONGOPTS,
		{ "json", no_argument, NULL, INFO_OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct vd_image img;
	bool json = false;
	uint64_t alloc = 0;
	int opt, r, alloc_ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, VDT_COMMON_SHORTOPTS, longopts,
				  NULL)) != -1) {
		if (opt == 'h') {
			info_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		if (opt == INFO_OPT_JSON) {
			json = true;
			continue;
		}
		r = vdt_common_opt(&c, opt, optarg);
		if (r == 1)
			continue;
		if (r == 0)
			info_usage(stderr);
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		vdt_error("expected one IMAGE (try --help)");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	if (vdt_open(&c, argv[optind], &img)) {
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	alloc_ret = info_allocated(img.disk, &alloc);
	if (json)
		info_json(&img, alloc_ret, alloc);
	else
		info_text(&img, alloc_ret, alloc);
	vdt_close(&img);
	vdt_common_free(&c);
	if (fflush(stdout) || ferror(stdout)) {
		vdt_error("cannot write the report: %s", strerror(errno));
		return VDT_EXIT_FAIL;
	}
	return VDT_EXIT_OK;
}
