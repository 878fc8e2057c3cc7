/* Volumes (volumes/vol.h): the generic reads over mapped volumes, slices
 * of slices, pieces that still name the host file, status and seek
 * through the stack, a map that lies, labels, and discovery of a
 * partition table on a disk.
 *
 * The disk is a memory file whose every byte is known (byte i holds
 * i * 7 + i / 4096, so a misplaced read shows); the expected bytes of a
 * volume are computed from its definition here, not by the code under
 * test. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/unit/unit.h"
#include "volumes/part.h"
#include "volumes/vol.h"

#define DISK_LEN (1u << 20)

static uint8_t disk_bytes[DISK_LEN];

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 4096);
}

/* A test volume that maps [0, len) in runs of `run` bytes, alternately
 * to its parent (at 2 * k * run, so not contiguously) and to zeros, or,
 * when `lie` is set, returns a run of length 0. */
struct zebra {
	struct vd_vol v;
	const struct vd_vol *parent;
	uint64_t run;
	bool lie;
};

static int zebra_map(const struct vd_vol *v, uint64_t off, uint64_t len,
		     struct vd_vol_run *r)
{
	const struct zebra *z = (const struct zebra *)v;
	uint64_t k = off / z->run, in = off % z->run;

	r->len = z->lie ? 0 : VD_MIN(len, z->run - in);
	r->vol = k % 2 ? NULL : z->parent;
	r->off = 2 * k * z->run + in;
	return 0;
}

static const struct vd_vol_ops zebra_ops = { .kind = "zebra",
					     .map = zebra_map };

static uint8_t zebra_byte(const struct zebra *z, uint64_t parent_base,
			  uint64_t off)
{
	uint64_t k = off / z->run, in = off % z->run;

	return k % 2 ? 0 : byte_at(parent_base + 2 * k * z->run + in);
}

/* The pieces of a read, turned back into bytes with pread. */
static bool segs_bytes(const struct vd_seg *s, unsigned n, uint8_t *out,
		       size_t len)
{
	size_t pos = 0;

	for (unsigned i = 0; i < n; i++) {
		if (pos + s[i].len > len)
			return false;
		if (s[i].type == VD_SEG_ZERO)
			memset(out + pos, 0, s[i].len);
		else if (s[i].type == VD_SEG_MEM)
			memmove(out + pos, s[i].mem, s[i].len);
		else if (pread(s[i].fd, out + pos, s[i].len,
			       (off_t)s[i].fd_off) != (ssize_t)s[i].len)
			return false;
		pos += s[i].len;
	}
	return pos == len;
}

static void test_slices(struct vd_disk *d)
{
	struct vd_vol *dv = vd_vol_new_disk(d, "disk");
	struct vd_vol *a = vd_vol_new_slice(dv, 4096, 512 * 1024, "a");
	struct vd_vol *b = a ? vd_vol_new_slice(a, 1000, 100000, "b") : NULL;
	static uint8_t buf[200000], out[200000];
	struct vd_seg segs[8];
	unsigned n = 0;
	bool ok = true;

	CHECK("slice made", dv && a && b);
	if (!b)
		goto out;
	CHECK("slice past its parent refused",
	      !vd_vol_new_slice(a, 512 * 1024 - 10, 11, "bad"));
	CHECK("read of a slice of a slice",
	      !vd_vol_read(b, buf, 5000, 300));
	for (unsigned i = 0; i < 5000; i++)
		ok &= buf[i] == byte_at(4096 + 1000 + 300 + i);
	CHECK("slice bytes are the disk's", ok);
	CHECK("read past a slice's end fails",
	      vd_vol_read(b, buf, 10, 100000 - 5) == -EIO);
	CHECK("read_vec of a slice",
	      !vd_vol_read_vec(b, buf, 70000, 7, segs, 8, &n));
	CHECK("raw disk bytes come as one host-file piece",
	      n == 1 && segs[0].type == VD_SEG_FD &&
		      segs[0].fd_off == 4096 + 1000 + 7);
	memset(out, 0xee, sizeof(out));
	ok = segs_bytes(segs, n, out, 70000);
	for (unsigned i = 0; ok && i < 70000; i++)
		ok = out[i] == byte_at(4096 + 1000 + 7 + i);
	CHECK("pieces of a slice give its bytes", ok);
out:
	vd_vol_free(b);
	vd_vol_free(a);
	vd_vol_free(dv);
}

static void test_mapped(struct vd_disk *d)
{
	struct vd_vol *dv = vd_vol_new_disk(d, "disk");
	struct vd_vol *p = dv ? vd_vol_new_slice(dv, 8192, 600000, "p") : NULL;
	struct zebra *z = (struct zebra *)vd_vol_new(&zebra_ops, sizeof(*z),
						     200000, "zebra");
	static uint8_t buf[200000], out[200000];
	struct vd_seg segs[64];
	unsigned n = 0, max;
	uint64_t at;
	bool data, ok;
	uint64_t len;

	CHECK("mapped volume made", p && z);
	if (!p || !z)
		goto out;
	z->parent = p;
	z->run = 3000;
	CHECK("mapped read", !vd_vol_read(&z->v, buf, 100000, 1234));
	ok = true;
	for (unsigned i = 0; i < 100000; i++)
		ok &= buf[i] == zebra_byte(z, 8192, 1234 + i);
	CHECK("mapped bytes: runs of the parent and zeros", ok);
	/* Every piece budget, down to one: the rest is copied. */
	for (max = 1; max <= 64; max *= 4) {
		char name[64];

		memset(out, 0xee, sizeof(out));
		ok = !vd_vol_read_vec(&z->v, buf, 100000, 1234, segs, max,
				      &n) &&
		     n <= max && segs_bytes(segs, n, out, 100000);
		for (unsigned i = 0; ok && i < 100000; i++)
			ok = out[i] == zebra_byte(z, 8192, 1234 + i);
		snprintf(name, sizeof(name), "mapped read_vec, %u pieces",
			 max);
		CHECK(name, ok);
	}
	CHECK("mapped pieces: FD for stored runs, ZERO for holes",
	      !vd_vol_read_vec(&z->v, buf, 9000, 0, segs, 64, &n) &&
		      n == 3 && segs[0].type == VD_SEG_FD &&
		      segs[0].fd_off == 8192 && segs[1].type == VD_SEG_ZERO &&
		      segs[2].type == VD_SEG_FD &&
		      segs[2].fd_off == 8192 + 12000);
	CHECK("status: data run",
	      !vd_vol_status(&z->v, 10, 100000, &data, &len) && data &&
		      len <= 2990 && len > 0);
	CHECK("status: hole run",
	      !vd_vol_status(&z->v, 3000, 100000, &data, &len) && !data &&
		      len == 3000);
	CHECK("seek data from a hole",
	      !vd_vol_seek(&z->v, 3500, true, &at) && at == 6000);
	CHECK("seek hole from data",
	      !vd_vol_seek(&z->v, 10, false, &at) && at == 3000);
	CHECK("seek past the end", vd_vol_seek(&z->v, 200000, true, &at) ==
					   -ENXIO);
	z->lie = true;
	CHECK("a map that gives an empty run fails the read",
	      vd_vol_read(&z->v, buf, 10, 0) == -EIO);
	CHECK("... and read_vec",
	      vd_vol_read_vec(&z->v, buf, 10, 0, segs, 8, &n) == -EIO);
out:
	vd_vol_free(&z->v);
	vd_vol_free(p);
	vd_vol_free(dv);
}

static void test_labels(void)
{
	struct vd_volset s = { .name = "img" };
	char l[VD_VOL_LABEL_MAX];
	int ok = 1;

	for (unsigned i = 0; i < 3; i++) {
		struct vd_vol *v = vd_vol_new(&zebra_ops, sizeof(struct zebra),
					      10, "v");

		snprintf(l, sizeof(l), "vg-lv");
		vd_volset_unique_label(&s, l, sizeof(l));
		if (v)
			snprintf(v->label, sizeof(v->label), "%s", l);
		ok &= v && !vd_volset_add(&s, v) && v->id == i;
	}
	CHECK("volumes added with ids in order", ok);
	CHECK("labels made unique",
	      s.n == 3 && !strcmp(s.vols[0]->label, "vg-lv") &&
		      !strcmp(s.vols[1]->label, "vg-lv_2") &&
		      !strcmp(s.vols[2]->label, "vg-lv_3"));
	for (unsigned i = 0; i < s.n; i++)
		vd_vol_free(s.vols[i]);
	free(s.vols);
}

/* A GPT disk made by sfdisk: discovery finds its partitions as slices
 * named pN, with their parts on the disk volume. */
static void test_discovery(void)
{
	char path[] = "/tmp/vol_test.XXXXXX", cmd[256];
	struct vd_volset_opts so = { 0 };
	struct vd_volset *s = NULL;
	struct vd_disk *d = NULL;
	struct vd_err e = { "" };
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, 8 << 20))
		unit_die("mkstemp");
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "printf 'label: gpt\\nstart=2048, size=4096\\n"
		 "start=8192, size=2048\\n' | sfdisk -q %s", path);
	if (system(cmd)) {
		printf("sfdisk failed; discovery not tested\n");
		unit_failed++;
		unlink(path);
		return;
	}
	CHECK("open the GPT disk", !vd_disk_open(path, NULL, &d, &e));
	CHECK("discovery", d && !vd_volset_open(d, "gpt", &so, &s));
	CHECK("disk and two partitions",
	      s && s->n == 3 && s->vols[0]->parts &&
		      s->vols[0]->role == VD_VOL_TABLE &&
		      !strcmp(s->vols[1]->label, "p1") &&
		      !strcmp(s->vols[2]->label, "p2") &&
		      s->vols[1]->len == 4096 * 512 &&
		      s->vols[2]->len == 2048 * 512 &&
		      s->vols[1]->parent == s->vols[0] &&
		      s->vols[1]->depth == 1);
	CHECK("partition names for messages",
	      s && s->n == 3 && !strcmp(s->vols[2]->name, "gpt p2"));
	vd_volset_close(s);
	s = NULL;
	so.no_partitions = true;
	CHECK("disk only", d && !vd_volset_open(d, "gpt", &so, &s) && s &&
				   s->n == 1 && !s->vols[0]->parts);
	vd_volset_close(s);
	vd_disk_close(d);
	unlink(path);
}

int main(void)
{
	struct vd_open_opts o = { .format = "raw" };
	struct vd_disk *d;
	char msg[VD_ERR_LEN];

	for (unsigned i = 0; i < DISK_LEN; i++)
		disk_bytes[i] = byte_at(i);
	if (unit_mem_disk(disk_bytes, DISK_LEN, &o, &d, msg))
		unit_die(msg);
	test_slices(d);
	test_mapped(d);
	vd_disk_close(d);
	test_labels();
	test_discovery();
	return unit_done();
}
