/* The open-and-walk shared by the fuzz targets (see fuzz.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <zlib.h>

#include "common/log.h"
#include "common/util.h"
#include "core/check.h"
#include "core/disk.h"
#include "core/vhdx.h"
#include "ns/image.h"
#include "ns/ns.h"
#include "tests/fuzz/fuzz.h"

/* Caps that keep one input's walk short: entries visited in all, depth
 * of directories, the bytes read at one place. */
#define FUZZ_MAX_ENTS 2000
#define FUZZ_MAX_DEPTH 32
#define FUZZ_BUF (64 * 1024)

static char fuzz_dir[64];	/* split inputs: a private tmpfs folder */
static uint8_t *fuzz_buf;	/* FUZZ_BUF bytes */
static unsigned fuzz_budget;	/* entries left to visit for this input */
static bool fuzz_verbose;	/* FUZZ_LOG=1: show logs and open errors */

/* ---------------------------------------------------------- checksums */

static void fuzz_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A VHD checksum (footer offset 64, dynamic header offset 36): the one's
 * complement of the byte sum with the field itself zero. */
static void fuzz_vhd_sum(uint8_t *p, size_t n, size_t at)
{
	uint32_t sum = 0;

	put_be32(p + at, 0);
	for (size_t i = 0; i < n; i++)
		sum += p[i];
	put_be32(p + at, ~sum);
}

/* A GPT header at off (UEFI 2.x, 5.3.2: 12 header size, 16 header CRC,
 * 72 entries LBA, 80 entry count, 84 entry size, 88 entries CRC). */
static void fuzz_gpt_fix(uint8_t *d, size_t n, uint64_t off, unsigned ss)
{
	uint8_t *h;
	uint32_t hs, cnt, esz;
	uint64_t ents, bytes;

	if (!vd_range_ok(off, 92, n) || memcmp(d + off, "EFI PART", 8))
		return;
	h = d + off;
	hs = get_le32(h + 12);
	ents = get_le64(h + 72);
	cnt = get_le32(h + 80);
	esz = get_le32(h + 84);
	bytes = (uint64_t)cnt * esz;
	if (bytes < (64u << 20) && ents < n / ss &&
	    vd_range_ok(ents * ss, bytes, n))
		fuzz_put_le32(h + 88, (uint32_t)crc32(0, d + ents * ss,
						      (uInt)bytes));
	if (hs >= 92 && hs <= ss && vd_range_ok(off, hs, n)) {
		fuzz_put_le32(h + 16, 0);
		fuzz_put_le32(h + 16, (uint32_t)crc32(0, h, hs));
	}
}

/* VHDX ([MS-VHDX] 2.2): both headers (4 KiB at 64 and 128 KiB) and both
 * region tables (64 KiB at 192 and 256 KiB), CRC-32C at offset 4. */
static void fuzz_vhdx_fix(uint8_t *d, size_t n)
{
	static const uint32_t at[] = { 64 << 10, 128 << 10, 192 << 10,
				       256 << 10 };

	for (unsigned i = 0; i < 4; i++) {
		uint32_t len = i < 2 ? 4096 : 64 << 10;

		if (vd_range_ok(at[i], len, n))
			fuzz_put_le32(d + at[i] + 4,
				      vd_vhdx_sum(d + at[i], len, 4));
	}
}

static void fuzz_fix(uint8_t *d, size_t n)
{
	if (n >= 8 && !memcmp(d, "vhdxfile", 8)) {
		fuzz_vhdx_fix(d, n);
		return;
	}
	if (n >= 512 && !memcmp(d + n - 512, "conectix", 8)) {
		uint8_t *f = d + n - 512;
		uint64_t dyn = get_be64(f + 16);

		if (vd_range_ok(dyn, 1024, n) && !memcmp(d + dyn, "cxsparse", 8))
			fuzz_vhd_sum(d + dyn, 1024, 36);
		fuzz_vhd_sum(f, 512, 64);
		if (n >= 1024 && !memcmp(d, "conectix", 8))
			fuzz_vhd_sum(d, 512, 64);
	} else if (n >= 512 && !memcmp(d, "conectix", 8)) {
		fuzz_vhd_sum(d, 512, 64);
	}
	for (unsigned ss = 512; ss <= 4096; ss *= 8) {
		uint64_t alt = 0;

		if (n < 2 * ss)
			continue;
		if (!memcmp(d + ss, "EFI PART", 8) && n - ss >= 40)
			alt = get_le64(d + ss + 32);
		fuzz_gpt_fix(d, n, ss, ss);
		if (alt && alt < n / ss)
			fuzz_gpt_fix(d, n, alt * ss, ss);
		else
			fuzz_gpt_fix(d, n, n / ss * ss - ss, ss);
	}
}

/* ---------------------------------------------------------- files */

static void fuzz_write_all(int fd, const uint8_t *d, size_t n)
{
	while (n) {
		ssize_t w = write(fd, d, n);

		if (w <= 0)
			abort();
		d += w;
		n -= (size_t)w;
	}
}

static void fuzz_put(const char *name, const uint8_t *d, size_t n)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", fuzz_dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	fuzz_write_all(fd, d, n);
	close(fd);
}

static void fuzz_cleanup(void)
{
	static const char *const names[] = { "img", "e.vmdk", "p.vhd",
					     "d.img", "p.vdi" };
	char p[128];

	if (!fuzz_dir[0])
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, names[i]);
		unlink(p);
	}
	rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_verbose = getenv("FUZZ_LOG") != NULL;
	vd_log_set_level(fuzz_verbose ? VD_LOG_DEBUG : (enum vd_log_level)-1);
	fuzz_buf = malloc(FUZZ_BUF);
	if (!fuzz_buf)
		abort();
	if (fuzz_target.split) {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "/dev/shm/vdfuzz.%d",
			 (int)getpid());
		if (mkdir(fuzz_dir, 0700) && errno != EEXIST)
			abort();
		atexit(fuzz_cleanup);
	}
	return 0;
}

/* ---------------------------------------------------------- the walk */

struct fuzz_ent {
	char name[256];
	uint64_t ino, next;
};

struct fuzz_ents {
	struct fuzz_ent *e;
	unsigned n, cap;
};

static int fuzz_fill(void *arg, const char *name, uint64_t ino,
		     unsigned type, uint64_t next)
{
	struct fuzz_ents *l = arg;
	struct fuzz_ent *e;

	(void)type;
	if (l->n >= l->cap)
		return 1;
	e = &l->e[l->n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->ino = ino;
	e->next = next;
	return 0;
}

static void fuzz_file(struct vd_ns *ns, uint64_t ino, uint64_t size)
{
	struct vd_ns_file *f;
	size_t got;
	uint64_t o;

	if (vd_ns_open_file(ns, ino, &f))
		return;
	vd_ns_read(f, fuzz_buf, FUZZ_BUF, 0, &got);
	if (size > FUZZ_BUF)
		vd_ns_read(f, fuzz_buf, FUZZ_BUF, size - FUZZ_BUF, &got);
	vd_ns_read(f, fuzz_buf, 4096, size / 2, &got);
	vd_ns_read(f, fuzz_buf, 100, size + 10, &got);
	vd_ns_read(f, fuzz_buf, 1, UINT64_MAX - 1, &got);
	vd_ns_seek(f, 0, true, &o);
	vd_ns_seek(f, 0, false, &o);
	vd_ns_seek(f, size / 3, true, &o);
	vd_ns_seek(f, size / 3, false, &o);
	vd_ns_seek(f, size, true, &o);
	vd_ns_file_is_raw(f);
	vd_ns_release(f);
}

static void fuzz_xattrs(struct vd_ns *ns, uint64_t ino)
{
	char list[4096], nm[300];
	size_t len, p = 0, vl;

	vd_ns_listxattr(ns, ino, NULL, 0, &len);
	if (vd_ns_listxattr(ns, ino, list, sizeof(list), &len))
		len = 0;
	while (p < len) {
		size_t k = strnlen(list + p, len - p);

		if (k >= sizeof(nm))
			break;
		memcpy(nm, list + p, k);
		nm[k] = 0;
		vd_ns_getxattr(ns, ino, nm, NULL, 0, &vl);
		vd_ns_getxattr(ns, ino, nm, fuzz_buf, FUZZ_BUF, &vl);
		vd_ns_getxattr(ns, ino, nm, fuzz_buf, 1, &vl);
		p += k + 1;
	}
	vd_ns_getxattr(ns, ino, "user.nope", fuzz_buf, 10, &vl);
}

static void fuzz_walk(struct vd_ns *ns, uint64_t dir, unsigned depth)
{
	struct fuzz_ents l = { .cap = 512 };
	struct fuzz_ent page[3];
	struct fuzz_ents p = { .e = page, .cap = 3 };
	uint64_t cookie = 0;
	struct statvfs sv;

	l.e = calloc(l.cap, sizeof(*l.e));
	if (!l.e)
		abort();
	if (vd_ns_readdir(ns, dir, 0, fuzz_fill, &l))
		goto out;
	/* Readdir again a few entries at a time, resuming from cookies as
	 * the kernel does; ends when no entry comes or a cookie repeats,
	 * and after 64 pages at most. */
	for (int it = 0; it < 64; it++) {
		p.n = 0;
		if (vd_ns_readdir(ns, dir, cookie, fuzz_fill, &p) || !p.n ||
		    page[p.n - 1].next == cookie)
			break;
		cookie = page[p.n - 1].next;
	}
	for (unsigned i = 0; i < l.n && fuzz_budget; i++) {
		struct fuzz_ent *e = &l.e[i];
		struct vd_fs_attr a;
		char tmp[4096];
		uint64_t ino;

		fuzz_budget--;
		if (!strcmp(e->name, ".") || !strcmp(e->name, ".."))
			continue;
		if (vd_ns_lookup(ns, dir, e->name, &ino))
			ino = e->ino;
		if (vd_ns_getattr(ns, ino, &a))
			continue;
		fuzz_xattrs(ns, ino);
		if (S_ISLNK(a.mode)) {
			vd_ns_readlink(ns, ino, tmp, sizeof(tmp));
			vd_ns_readlink(ns, ino, tmp, 3);
		} else if (S_ISREG(a.mode)) {
			fuzz_file(ns, ino, a.size);
		} else if (S_ISDIR(a.mode) && depth < FUZZ_MAX_DEPTH) {
			fuzz_walk(ns, ino, depth + 1);
		}
	}
	vd_ns_lookup(ns, dir, "no-such-name", &cookie);
	vd_ns_statfs(ns, dir, &sv);
out:
	free(l.e);
}

/* The disk itself: reads spread over it, the last bytes, seeks, the
 * status of the whole, a vectored read, and what describes each layer. */
static void fuzz_disk(struct vd_disk *d)
{
	uint64_t vs = vd_disk_size(d), o, l;
	struct vd_seg segs[8];
	unsigned nseg;
	bool data;

	for (int i = 0; i <= 8; i++) {
		uint64_t off = vs / 8 * (uint64_t)i;
		size_t len = FUZZ_BUF;

		if (off >= vs)
			break;
		if (len > vs - off)
			len = (size_t)(vs - off);
		vd_disk_read(d, fuzz_buf, len, off);
	}
	if (vs > 777)
		vd_disk_read(d, fuzz_buf, 777, vs - 777);
	if (vs > 3 * 4096)
		vd_disk_read_vec(d, fuzz_buf, 3 * 4096, vs / 3, segs, 8, &nseg);
	vd_disk_seek(d, 0, true, &o);
	vd_disk_seek(d, 0, false, &o);
	vd_disk_seek(d, vs / 2, true, &o);
	vd_disk_seek(d, vs / 2, false, &o);
	vd_disk_status(d, 0, vs, &data, &l);
	vd_disk_host_bytes(d);
	/* The chain is bounded by VD_MAX_CHAIN at open. */
	for (const struct vd_layer *y = vd_disk_top(d); y;
	     y = vd_layer_backing(y)) {
		struct vd_layer_info info;

		if (!vd_layer_info(y, &info))
			vd_layer_info_free(&info);
	}
}

/* A qcow2 with internal snapshots: open each of the first few too. */
static void fuzz_snapshots(const char *path, struct vd_disk *d)
{
	struct vd_layer_info info;
	char ids[3][64];
	unsigned n = 0;

	if (vd_layer_info(vd_disk_top(d), &info))
		return;
	for (unsigned i = 0; i < info.n_snapshots && n < 3; i++)
		memcpy(ids[n++], info.snapshots[i].id, sizeof(ids[0]));
	vd_layer_info_free(&info);
	for (unsigned i = 0; i < n; i++) {
		struct vd_open_opts o = { .format = "qcow2",
					  .snapshot = ids[i],
					  .cache_bytes = 1 << 20 };
		struct vd_disk *s;
		struct vd_err e;

		if (vd_disk_open(path, &o, &s, &e))
			continue;
		fuzz_disk(s);
		vd_disk_close(s);
	}
}

static void fuzz_open_walk(const char *path)
{
	struct vd_image_opts io = {
		.open = { .format = fuzz_target.format,
			  .cache_bytes = 1 << 20 },
		.uid = 0,
		.gid = 0,
	};
	struct vd_image img;
	struct vd_err e;

	/* As the front ends open an image (ns/image.h). */
	if (vd_image_open(path, &io, &img, &e)) {
		if (fuzz_verbose)
			fprintf(stderr, "fuzz: open: %s\n", e.msg);
		return;
	}
	fuzz_disk(img.disk);
	if (fuzz_target.format && !strcmp(fuzz_target.format, "qcow2"))
		fuzz_snapshots(path, img.disk);
	fuzz_budget = FUZZ_MAX_ENTS;
	fuzz_walk(img.ns, VD_NS_ROOT, 0);
	if (fuzz_verbose)
		fprintf(stderr, "fuzz: walked %u entries\n",
			FUZZ_MAX_ENTS - fuzz_budget);
	vd_image_close(&img);
}

/* The target's check of the file at path; its lines go nowhere. */
static void fuzz_check(const char *path)
{
	static FILE *null;
	struct vd_check r;
	struct vd_err e;

	if (!null && !(null = fopen("/dev/null", "w")))
		abort();
	fuzz_target.check(path, fuzz_verbose ? stderr : null, &r, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sib = (const uint8_t *)"";
	size_t main_len = size, sib_len = 0;
	uint8_t *w = NULL;
	char path[128];
	int fd = -1;

	if (fuzz_target.one)
		return fuzz_target.one(data, size);
	if (fuzz_target.split) {
		const uint8_t *p = memmem(data, size, FUZZ_SPLIT_SEP,
					  sizeof(FUZZ_SPLIT_SEP) - 1);

		if (p) {
			main_len = (size_t)(p - data);
			sib = p + sizeof(FUZZ_SPLIT_SEP) - 1;
			sib_len = size - main_len - (sizeof(FUZZ_SPLIT_SEP) - 1);
		}
	}
	if (fuzz_target.fix || fuzz_target.fix_fn) {
		w = malloc(main_len ? main_len : 1);
		if (!w)
			abort();
		memcpy(w, data, main_len);
		if (fuzz_target.fix)
			fuzz_fix(w, main_len);
		if (fuzz_target.fix_fn)
			fuzz_target.fix_fn(w, main_len);
		data = w;
	}
	if (fuzz_target.split) {
		fuzz_put("img", data, main_len);
		fuzz_put("e.vmdk", sib, sib_len);
		fuzz_put("p.vhd", sib, sib_len);
		fuzz_put("d.img", sib, sib_len);
		fuzz_put("p.vdi", sib, sib_len);
		snprintf(path, sizeof(path), "%s/img", fuzz_dir);
	} else {
		/* No sibling can be named: an in-memory file will do. */
		fd = memfd_create("fuzz", 0);
		if (fd < 0)
			abort();
		fuzz_write_all(fd, data, main_len);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (fuzz_target.check)
		fuzz_check(path);
	else
		fuzz_open_walk(path);
	if (fd >= 0)
		close(fd);
	free(w);
	return 0;
}
