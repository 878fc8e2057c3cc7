/* The qcow2 write path (core/qcow2-write.c) against a model: a child
 * made by qemu-img over a base qemu-io filled, written through
 * vd_disk_write from 8 threads at once (each thread owns every 8th
 * stripe of an odd size, so threads share clusters and L2 tables), read
 * back, closed, and then judged by qemu-img: check finds nothing, and
 * convert -O raw gives the model byte for byte.
 *
 * Cases: 512-byte clusters (many L2 tables, refcount blocks, and the
 * refcount table growing), 64 KiB clusters with extended L2 entries,
 * a compressed base used as the child itself, 2 MiB clusters, 1- and
 * 64-bit refcounts; writes of up to 600 clusters each (batches of
 * clusters allocated and written together, across L2 tables' and
 * refcount blocks' ranges); one write during which the refcount table
 * grows; a write that the host file cannot take whole (a file size
 * limit: part of a batch written, then EFBIG). */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/util.h"
#include "volumes/vol.h"
#include "tests/unit/unit.h"

#define THREADS 8
#define STRIPE 3001u
/* Stripes of the big-write case: 600 clusters of 512 bytes and more. */
#define BIG_STRIPE 307211u

static char dir[] = "/tmp/vd-qwrite-XXXXXX";

struct job {
	struct vd_disk *d;
	uint8_t *model;
	uint64_t size, stripe;
	unsigned t, n;
	int err;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *writer(void *arg)
{
	struct job *j = arg;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (j->t + 1);
	uint64_t stripes = j->size / j->stripe;
	uint8_t *buf = malloc(j->stripe);

	if (!buf) {
		j->err = -ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < j->n && !j->err; i++) {
		uint64_t st = (rnd(&s) % (stripes / THREADS)) * THREADS + j->t;
		uint64_t in = rnd(&s) % j->stripe;
		uint64_t len = 1 + rnd(&s) % (j->stripe - in);
		uint64_t off = st * j->stripe + in;

		memset(buf, (int)(rnd(&s) & 0xff), len);
		buf[0] = (uint8_t)i;
		buf[len - 1] = (uint8_t)(i * 7);
		j->err = vd_disk_write(j->d, buf, len, off);
		memcpy(j->model + off, buf, len);
	}
	free(buf);
	return NULL;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static uint8_t *slurp(const char *path, uint64_t size)
{
	uint8_t *b = malloc(size);
	FILE *f = fopen(path, "rb");

	if (!b || !f || fread(b, 1, size, f) != size) {
		free(b);
		b = NULL;
	}
	if (f)
		fclose(f);
	return b;
}

static void run(const char *name, const char *base_opts,
		const char *child_opts, bool child_is_base, uint64_t size,
		unsigned per_thread, uint64_t stripe)
{
	char base[256], child[256], raw[256], msg[1400];
	struct vd_open_opts o = { .writable = true };
	struct vd_err e = { "" };
	struct vd_disk *d = NULL;
	struct job jobs[THREADS];
	pthread_t th[THREADS];
	uint8_t *model, *back;
	int ret;

	snprintf(base, sizeof(base), "%s/%s-base.qcow2", dir, name);
	snprintf(child, sizeof(child), "%s/%s.qcow2", dir, name);
	snprintf(raw, sizeof(raw), "%s/%s.raw", dir, name);
	/* The base: a pattern every 300 KiB, holes between. */
	sh("qemu-img create -q -f raw %s %llu && "
	   "for o in $(seq 0 307200 %llu); do echo \"write -P $((o %% 251)) "
	   "$o 70000\"; done | qemu-io -f raw %s >/dev/null",
	   raw, (unsigned long long)size,
	   (unsigned long long)(size - 70000), raw);
	sh("qemu-img convert -f raw -O qcow2 %s %s %s", base_opts, raw,
	   child_is_base ? child : base);
	if (!child_is_base)
		sh("qemu-img create -q -f qcow2 %s -b %s -F qcow2 %s", child_opts,
		   base, child);
	model = slurp(raw, size);
	CHECK(name, model != NULL);
	if (!model)
		return;

	ret = vd_disk_open(child, &o, &d, &e);
	snprintf(msg, sizeof(msg), "%s open: %s", name, e.msg);
	CHECK(msg, ret == 0);
	if (ret) {
		free(model);
		return;
	}
	for (unsigned t = 0; t < THREADS; t++) {
		jobs[t] = (struct job){ d, model, size, stripe, t, per_thread,
					0 };
		pthread_create(&th[t], NULL, writer, &jobs[t]);
	}
	for (unsigned t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		snprintf(msg, sizeof(msg), "%s writer %u: %d", name, t,
			 jobs[t].err);
		CHECK(msg, jobs[t].err == 0);
	}
	if (!strcmp(name, "c512") || !strcmp(name, "rc64")) {
		/* Up to 10 MiB more, in 64 KiB writes: the refcount table of
		 * one 512-byte cluster covers 8 MiB with 16-bit refcounts,
		 * 2 MiB with 64-bit ones, and must grow. */
		uint8_t chunk[65536];
		uint64_t more = VD_MIN(10u << 20, size - (4u << 20));

		for (uint64_t off = 0; off < more; off += sizeof(chunk)) {
			memset(chunk, (int)(off >> 16), sizeof(chunk));
			ret = vd_disk_write(d, chunk, sizeof(chunk),
					    (4u << 20) + off);
			memcpy(model + (4u << 20) + off, chunk, sizeof(chunk));
			if (ret)
				break;
		}
		CHECK("c512: sequential writes", ret == 0);
	}
	back = malloc(size);
	ret = back ? vd_disk_read(d, back, size, 0) : -ENOMEM;
	CHECK(name, ret == 0 && !memcmp(back, model, size));
	CHECK(name, vd_disk_flush(d) == 0);
	vd_disk_close(d);
	free(back);

	snprintf(msg, sizeof(msg), "%s: qemu-img check", name);
	CHECK(msg, sh("qemu-img check -q %s", child) == 0);
	sh("qemu-img convert -O raw %s %s.out", child, raw);
	snprintf(msg, sizeof(msg), "%s.out", raw);
	back = slurp(msg, size);
	snprintf(msg, sizeof(msg), "%s: qemu-img convert equals the model",
		 name);
	CHECK(msg, back && !memcmp(back, model, size));
	free(back);

	/* 512-byte clusters: one cluster of refcount table covers 8 MiB,
	 * so the writes made it grow (header offset 56). */
	if (!strcmp(name, "c512") || !strcmp(name, "rc64")) {
		uint8_t *h = slurp(child, 64);

		snprintf(msg, sizeof(msg), "%s: refcount table grew", name);
		CHECK(msg, h && get_be32(h + 56) > 1);
		free(h);
	}
	/* Open again: the check accepts what we wrote. */
	ret = vd_disk_open(child, &o, &d, &e);
	snprintf(msg, sizeof(msg), "%s reopen: %s", name, e.msg);
	CHECK(msg, ret == 0);
	if (!ret)
		vd_disk_close(d);
	free(model);
}

/* A child's disk as qemu-img converts it equals model (size bytes). */
static bool qemu_sees(const char *child, const uint8_t *model, uint64_t size)
{
	char out[300];
	uint8_t *back;
	bool same;

	snprintf(out, sizeof(out), "%s.out", child);
	if (sh("qemu-img convert -O raw %s %s", child, out))
		return false;
	back = slurp(out, size);
	same = back && !memcmp(back, model, size);
	free(back);
	unlink(out);
	return same;
}

/* One write of 9 MiB into a fresh child of 512-byte clusters with 16-bit
 * refcounts: a cluster of refcount table covers 8 MiB of file, so the
 * table grows in the middle of the write (as do 70 refcount blocks and
 * 290 L2 tables). */
static void one_write(void)
{
	char child[256];
	struct vd_open_opts o = { .writable = true };
	struct vd_err e = { "" };
	const uint64_t size = 12u << 20, len = 9u << 20, off = (1u << 20) + 100;
	struct vd_disk *d;
	uint8_t *model = calloc(1, size), *h;
	int ret;

	snprintf(child, sizeof(child), "%s/one.qcow2", dir);
	sh("qemu-img create -q -f qcow2 -o cluster_size=512 %s %llu", child,
	   (unsigned long long)size);
	if (!model || vd_disk_open(child, &o, &d, &e)) {
		CHECK("one: open", false);
		free(model);
		return;
	}
	for (uint64_t i = 0; i < len; i++)
		model[off + i] = (uint8_t)(i * 2654435761u >> 13);
	ret = vd_disk_write(d, model + off, len, off);
	CHECK("one: the write", ret == 0);
	CHECK("one: flush", vd_disk_flush(d) == 0);
	vd_disk_close(d);
	CHECK("one: qemu-img check", sh("qemu-img check -q %s", child) == 0);
	CHECK("one: qemu-img convert equals the model",
	      qemu_sees(child, model, size));
	h = slurp(child, 64);
	CHECK("one: refcount table grew", h && get_be32(h + 56) > 1);
	free(h);
	free(model);
}

/* The host file takes only part of a write (a file size limit stands in
 * for a full disk, and stops a pwritev part way): the write fails, what
 * it would have allocated is given back, the disk reads as before it,
 * a write in place still works, and qemu-img check finds no error and
 * no leak. */
static void cut_short(void)
{
	char child[256], base[256];
	struct vd_open_opts o = { .writable = true };
	struct vd_err e = { "" };
	const uint64_t size = 16u << 20, cs = 65536;
	struct vd_disk *d;
	struct rlimit old, lim;
	struct stat st;
	uint8_t *model = malloc(size), *big = malloc(1u << 20);
	int ret;

	snprintf(base, sizeof(base), "%s/cut-base.raw", dir);
	snprintf(child, sizeof(child), "%s/cut.qcow2", dir);
	sh("qemu-img create -q -f raw %s %llu && qemu-io -f raw -c "
	   "'write -P 0x5a 0 %llu' %s >/dev/null", base,
	   (unsigned long long)size, (unsigned long long)size, base);
	sh("qemu-img create -q -f qcow2 -b %s -F raw %s", base, child);
	if (!model || !big || vd_disk_open(child, &o, &d, &e)) {
		CHECK("cut: open", false);
		free(model);
		free(big);
		return;
	}
	memset(model, 0x5a, size);
	/* Cluster 0 and its L2 table allocated, everything on disk. */
	memset(model, 0x11, 100);
	CHECK("cut: first write", vd_disk_write(d, model, 100, 0) == 0);
	CHECK("cut: flush", vd_disk_flush(d) == 0);
	CHECK("cut: stat", stat(child, &st) == 0);
	/* Room for 5 clusters and a bit of the 16 one write wants. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 5 * cs + 1000;
	setrlimit(RLIMIT_FSIZE, &lim);
	memset(big, 0x77, 1u << 20);
	ret = vd_disk_write(d, big, 1u << 20, 4u << 20);
	CHECK("cut: the write that does not fit fails", ret == -EFBIG);
	memset(model + 50, 0x22, 10);
	CHECK("cut: a write in place", vd_disk_write(d, model + 50, 10, 50) ==
					       0);
	CHECK("cut: flush after", vd_disk_flush(d) == 0);
	setrlimit(RLIMIT_FSIZE, &old);
	ret = vd_disk_read(d, big, 1u << 20, 4u << 20);
	CHECK("cut: reads as before", ret == 0 && all_bytes(big, 1u << 20,
							    0x5a));
	vd_disk_close(d);
	CHECK("cut: qemu-img check", sh("qemu-img check -q %s", child) == 0);
	CHECK("cut: qemu-img convert equals the model",
	      qemu_sees(child, model, size));
	ret = vd_disk_open(child, &o, &d, &e);
	CHECK("cut: reopen", ret == 0);
	if (!ret)
		vd_disk_close(d);
	free(model);
	free(big);
}

/* A mapped volume whose every run is unstored zeros (a thin LV's
 * unprovisioned range): it cannot be written. */
static int hole_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		    struct vd_vol_run *r)
{
	(void)v;
	r->vol = NULL;
	r->off = off;
	r->len = len;
	return 0;
}

static const struct vd_vol_ops hole_ops = { .kind = "hole", .map = hole_map };

static int fake_read_vec(const struct vd_vol *v, void *buf, size_t len,
			 uint64_t off, struct vd_seg *segs, unsigned max_segs,
			 unsigned *n_r)
{
	(void)v, (void)buf, (void)off, (void)max_segs;
	segs[0] = (struct vd_seg){ .type = VD_SEG_ZERO, .len = len };
	*n_r = 1;
	return 0;
}

static const struct vd_vol_ops computed_ops = { .kind = "computed",
						.read_vec = fake_read_vec };

/* Volumes pass writes down: a slice of a slice of the disk lands in the
 * disk at the sum of the starts; past a volume's end is ENOSPC; a run of
 * unstored zeros, a computed volume without a write op, and a read-only
 * disk are EROFS. */
static void volumes(void)
{
	char path[256];
	struct vd_open_opts o = { .writable = true };
	struct vd_err e = { "" };
	struct vd_disk *d;
	struct vd_vol *dv, *s1, *s2, *h, *c;
	uint8_t back[3];

	snprintf(path, sizeof(path), "%s/vol.qcow2", dir);
	sh("qemu-img create -q -f qcow2 %s 8M", path);
	if (vd_disk_open(path, &o, &d, &e)) {
		CHECK("vol: open", false);
		return;
	}
	dv = vd_vol_new_disk(d, "disk");
	s1 = dv ? vd_vol_new_slice(dv, 1 << 20, 2 << 20, "s1") : NULL;
	s2 = s1 ? vd_vol_new_slice(s1, 4096, 8192, "s2") : NULL;
	h = vd_vol_new(&hole_ops, sizeof(struct vd_vol), 4096, "hole");
	c = vd_vol_new(&computed_ops, sizeof(struct vd_vol), 4096, "computed");
	CHECK("vol: made", dv && s1 && s2 && h && c);
	if (dv && s1 && s2 && h && c) {
		CHECK("vol: nested slice", vd_vol_write(s2, "abc", 3, 100) == 0);
		CHECK("vol: lands in the disk",
		      !vd_disk_read(d, back, 3, (1 << 20) + 4096 + 100) &&
			      !memcmp(back, "abc", 3));
		CHECK("vol: past the end", vd_vol_write(s2, "abc", 3, 8190) ==
						   -ENOSPC);
		CHECK("vol: hole", vd_vol_write(h, "abc", 3, 0) == -EROFS);
		CHECK("vol: computed", vd_vol_write(c, "abc", 3, 0) == -EROFS);
	}
	vd_vol_free(c);
	vd_vol_free(h);
	vd_vol_free(s2);
	vd_vol_free(s1);
	vd_vol_free(dv);
	vd_disk_close(d);
	CHECK("vol: qemu-img check", sh("qemu-img check -q %s", path) == 0);

	/* Read-only: the disk refuses. */
	o.writable = false;
	if (!vd_disk_open(path, &o, &d, &e)) {
		dv = vd_vol_new_disk(d, "disk");
		CHECK("vol: read-only disk", dv && vd_vol_write(dv, "x", 1, 0) ==
							   -EROFS);
		vd_vol_free(dv);
		vd_disk_close(d);
	}
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	if (sh("command -v qemu-img >/dev/null") != 0) {
		printf("qemu-img missing\n");
		return 1;
	}
	run("c512", "-o cluster_size=512", "-o cluster_size=512", false,
	    24u << 20, 300, STRIPE);
	run("extl2", "", "-o cluster_size=65536,extended_l2=on", false,
	    16u << 20, 300, STRIPE);
	run("comp", "-c -o cluster_size=4096", "", true, 8u << 20, 300,
	    STRIPE);
	run("c2m", "", "-o cluster_size=2M", false, 12u << 20, 100, STRIPE);
	/* Refcount widths: 1 bit (8 entries a byte), and 64 bits, whose
	 * blocks of 512-byte clusters cover 32 KiB each, so the table of
	 * one cluster (2 MiB) grows. */
	run("rc1", "", "-o cluster_size=512,refcount_bits=1", false,
	    4u << 20, 60, STRIPE);
	run("rc64", "", "-o cluster_size=512,refcount_bits=64", false,
	    8u << 20, 60, STRIPE);
	/* Writes of many clusters: 512-byte clusters (an L2 table's range
	 * is 32 KiB, a refcount block's 128 KiB), 16 KiB clusters with
	 * extended L2 entries, and 64 KiB ones over a compressed image. */
	run("big512", "-o cluster_size=512", "-o cluster_size=512", false,
	    24u << 20, 12, BIG_STRIPE);
	run("bigx", "", "-o cluster_size=16384,extended_l2=on", false,
	    24u << 20, 12, BIG_STRIPE);
	run("bigz", "-c", "", true, 24u << 20, 12, BIG_STRIPE);
	one_write();
	cut_short();
	volumes();
	sh("rm -rf %s", dir);
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
