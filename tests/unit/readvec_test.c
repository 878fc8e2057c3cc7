/* Unit test: vd_disk_read_vec against vd_disk_read. For many ranges of a
 * qcow2 image holding every kind of run (host-contiguous and scattered
 * data, zeros, unallocated clusters, compressed clusters, a table
 * boundary), and for piece budgets from 1 up, the pieces put together
 * must be exactly the bytes of a plain read; pieces must be merged where
 * they touch, MEM pieces must lie at their place in the buffer, and FD
 * pieces must name the image's own descriptor. vd_disk_prefetch must
 * bring a range's stored bytes, and only those, into the page cache. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tests/unit/qimg.h"
#include "tests/unit/unit.h"
#include "tool/vdtool.h"

#define PER_TABLE (CS / 8) /* guest clusters per L2 table */
#define SPAN (8 * CS)

static uint8_t want[SPAN], got[SPAN], scratch[SPAN];

/* Put the pieces together into got; false if they break a rule. */
static bool assemble(const struct vd_seg *s, unsigned n, size_t len,
		     const char **why)
{
	size_t pos = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!s[i].len || s[i].len > len - pos) {
			*why = "piece lengths do not add up";
			return false;
		}
		if (i && s[i].type == s[i - 1].type && s[i].type != VD_SEG_FD) {
			*why = "touching pieces of one kind not merged";
			return false;
		}
		if (i && s[i].type == VD_SEG_FD && s[i - 1].type == VD_SEG_FD &&
		    s[i].fd == s[i - 1].fd &&
		    s[i - 1].fd_off + s[i - 1].len == s[i].fd_off) {
			*why = "host-contiguous pieces not merged";
			return false;
		}
		switch (s[i].type) {
		case VD_SEG_FD:
			if (pread(s[i].fd, got + pos, s[i].len,
				  (off_t)s[i].fd_off) != (ssize_t)s[i].len) {
				*why = "FD piece unreadable";
				return false;
			}
			break;
		case VD_SEG_ZERO:
			memset(got + pos, 0, s[i].len);
			break;
		case VD_SEG_MEM:
			if (s[i].mem != scratch + pos) {
				*why = "MEM piece not at its place";
				return false;
			}
			memcpy(got + pos, s[i].mem, s[i].len);
			break;
		default:
			*why = "unknown piece";
			return false;
		}
		pos += s[i].len;
	}
	if (pos != len) {
		*why = "pieces shorter than the read";
		return false;
	}
	return true;
}

static void check_ranges(struct vd_disk *d, const char *name)
{
	static const unsigned budgets[] = { 1, 2, 3, 5, 64 };
	static const uint64_t offs[] = { 0, 1, 511, CS - 7, CS, 2 * CS + 100,
					 4 * CS - 1, 5 * CS };
	static const size_t lens[] = { 1, 512, CS, CS + 1, 3 * CS - 5,
				       SPAN - 5 * CS };
	unsigned bad = 0, cases = 0, min_segs = 64, max_used = 0;
	const char *why = "";

	for (unsigned a = 0; a < VD_ARRAY_SIZE(offs); a++) {
		for (unsigned b = 0; b < VD_ARRAY_SIZE(lens); b++) {
			uint64_t off = (PER_TABLE - 3) * CS + offs[a];
			size_t len = lens[b];

			if (vd_disk_read(d, want, len, off)) {
				bad++;
				why = "plain read failed";
				continue;
			}
			for (unsigned c = 0; c < VD_ARRAY_SIZE(budgets); c++) {
				struct vd_seg segs[64];
				unsigned n = 0;

				cases++;
				memset(scratch, 0xa5, sizeof(scratch));
				if (vd_disk_read_vec(d, scratch, len, off, segs,
						     budgets[c], &n)) {
					bad++;
					why = "vec read failed";
					continue;
				}
				if (n > budgets[c]) {
					bad++;
					why = "more pieces than allowed";
					continue;
				}
				if (!assemble(segs, n, len, &why) ||
				    memcmp(got, want, len)) {
					if (!*why)
						why = "bytes differ";
					bad++;
					continue;
				}
				if (budgets[c] == 64) {
					min_segs = VD_MIN(min_segs, n);
					max_used = VD_MAX(max_used, n);
				}
			}
		}
	}
	if (bad)
		printf("%s: %u of %u cases wrong (last: %s)\n", name, bad, cases,
		       why);
	CHECK(name, bad == 0);
	/* The image has every kind of run: some reads need many pieces. */
	CHECK("vec uses pieces", max_used >= 4 && min_segs >= 1);
}

/* Whether every page of [off, off + len) of the mapped file is in the
 * page cache. */
static bool resident(const uint8_t *map, uint64_t off, uint64_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t a = off / (uint64_t)pg * (uint64_t)pg;
	unsigned char v[64];
	size_t n = (size_t)((off + len - a + (uint64_t)pg - 1) / (uint64_t)pg);

	if (n > sizeof(v) || mincore((void *)(map + a), (size_t)(off + len - a), v))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] & 1))
			return false;
	return true;
}

/* vd_disk_prefetch brings a range's stored bytes into the host file's
 * page cache (and nothing else), on a file on disk: a memfd ignores the
 * advice. Skipped where the cache cannot be emptied first. */
static void check_prefetch(void)
{
	char path[] = "/var/tmp/vd-prefetch.XXXXXX";
	struct vd_open_opts o = { .format = NULL };
	struct vd_err e = { "" };
	struct vd_disk *d = NULL;
	uint64_t at, other;
	struct vd_seg seg;
	uint8_t *map;
	unsigned n;
	int fd = mkstemp(path);
	bool in = false;

	if (fd < 0 || write(fd, m.b, m.len) != (ssize_t)m.len || fsync(fd))
		unit_die("prefetch image");
	map = mmap(NULL, m.len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		unit_die("prefetch mmap");
	CHECK("prefetch open", !vd_disk_open(path, &o, &d, &e));
	if (!d)
		goto out;
	/* Where two stored clusters lie (an FD piece reads nothing). */
	CHECK("prefetch map",
	      !vd_disk_read_vec(d, scratch, CS, (PER_TABLE + 5) * CS, &seg, 1,
				&n) && n == 1 && seg.type == VD_SEG_FD);
	at = seg.fd_off;
	CHECK("prefetch map other",
	      !vd_disk_read_vec(d, scratch, CS, (PER_TABLE + 2) * CS, &seg, 1,
				&n) && n == 1 && seg.type == VD_SEG_FD);
	other = seg.fd_off;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (resident(map, at, CS) || resident(map, other, CS)) {
		printf("# prefetch: the page cache kept the file; not checked\n");
		goto out;
	}
	/* Past the end, and compressed clusters: nothing happens. */
	vd_disk_prefetch(d, (1ULL << 30) - 1, 100);
	vd_disk_prefetch(d, (PER_TABLE + 3) * CS, 2 * CS);
	vd_disk_prefetch(d, (PER_TABLE + 5) * CS, CS);
	/* Asked for, not waited on: poll, for up to 60 s on a busy host. */
	for (int i = 0; i < 6000 && !in; i++) {
		in = resident(map, at, CS);
		if (!in)
			usleep(10000);
	}
	CHECK("prefetch caches the stored bytes", in);
	CHECK("prefetch leaves other clusters", !resident(map, other, CS));
out:
	if (d)
		vd_disk_close(d);
	munmap(map, m.len);
	close(fd);
	unlink(path);
}

/* The read-ahead window (vd_ahead_next): a reader going through len
 * bytes, chunk at a time, from start. Before each read, the next window -
 * step bytes (or all that is left) have been asked for; nothing is asked
 * for twice, past the end, or more than window ahead; and the asks are
 * steps, not one per read. */
static void check_window(const char *name, uint64_t window, uint64_t step,
			 uint64_t start, uint64_t len, uint64_t chunk)
{
	uint64_t ahead = 0, asked_to = start, end = start + len, from, n;
	unsigned asks = 0;
	bool covered = true, contiguous = true, bounded = true;

	for (uint64_t off = start; off < end; off += chunk) {
		uint64_t need = end - off > window - step ? off + window - step :
							    end;

		if ((n = vd_ahead_next(&ahead, off, end, window, step,
				       &from))) {
			asks++;
			contiguous &= from == asked_to;
			bounded &= from + n <= end && from + n <= off + window;
			asked_to = from + n;
		}
		covered &= asked_to >= need;
	}
	CHECK(name, covered && contiguous && bounded && asked_to == end &&
		    asks <= len / step + 2);
}

/* vdtool's window (vdt_ahead). */
static void check_ahead(const char *name, uint64_t start, uint64_t len,
			uint64_t chunk)
{
	uint64_t a1 = 0, a2 = 0, f1 = 0, f2 = 0;
	bool same = true;

	check_window(name, VDT_AHEAD, VDT_AHEAD_STEP, start, len, chunk);
	/* vdt_ahead is vd_ahead_next with that window. */
	for (uint64_t off = start; off < start + len; off += chunk)
		same &= vdt_ahead(&a1, off, start + len, &f1) ==
				vd_ahead_next(&a2, off, start + len, VDT_AHEAD,
					      VDT_AHEAD_STEP, &f2) &&
			a1 == a2 && f1 == f2;
	CHECK(name, same);
}

int main(void)
{
	struct vd_disk *d = NULL;
	struct vd_seg seg;
	unsigned n;

	vd_log_set_level((enum vd_log_level)-1);
	check_ahead("ahead 1 GiB in 1 MiB reads", 0, 1ULL << 30, 1 << 20);
	check_ahead("ahead from an odd start", 12345, 300ULL << 20, 4096);
	check_ahead("ahead shorter than the window", 7, 5 << 20, 1 << 20);
	check_ahead("ahead in reads larger than a step", 0, 1ULL << 30,
		    (uint64_t)VDT_AHEAD_STEP * 3 / 2);
	/* The mount's window (fuse/tree.c): 16 MiB, 8 MiB steps, reads of
	 * a FUSE request. */
	check_window("tree window 1 GiB in 512 KiB reads", 16 << 20, 8 << 20, 0,
		     1ULL << 30, 512 << 10);
	img_init(1ULL << 30);
	/* From guest cluster PER_TABLE - 3, across the first table's end:
	 * data, data right after it on the host, unallocated, compressed,
	 * (table boundary) zero, data, compressed, compressed, data. */
	add_cluster(PER_TABLE - 3, 0x11, 0);
	add_cluster(PER_TABLE - 2, 0x22, 0);
	add_compressed(PER_TABLE, 0x30);
	l2_set(PER_TABLE + 1, add_cluster(PER_TABLE + 1, 0xee, 0) |
				      QCOW2_OFLAG_ZERO, 0);
	add_cluster(PER_TABLE + 2, 0x44, 0);
	add_compressed(PER_TABLE + 3, 0x50);
	add_compressed(PER_TABLE + 4, 0x60);
	add_cluster(PER_TABLE + 5, 0x77, 0);
	/* The first table's last cluster: compressed, then data elsewhere. */
	add_compressed(PER_TABLE - 1, 0x80);
	CHECK("vec open", !img_open(&d, NULL, NULL));
	if (!d)
		return unit_done();
	check_ranges(d, "vec matches plain read");

	/* A read that is all one stored cluster: one FD piece. */
	CHECK("vec one data piece",
	      !vd_disk_read_vec(d, scratch, CS, (PER_TABLE - 3) * CS, &seg, 1,
				&n) && n == 1 && seg.type == VD_SEG_FD &&
		      seg.len == CS);
	/* Two host-contiguous clusters: still one piece. */
	CHECK("vec merges contiguous data",
	      !vd_disk_read_vec(d, scratch, 2 * CS, (PER_TABLE - 3) * CS, &seg,
				1, &n) && n == 1 && seg.type == VD_SEG_FD &&
		      seg.len == 2 * CS);
	/* Unallocated at the bottom of the chain: one zero piece. */
	CHECK("vec zero piece",
	      !vd_disk_read_vec(d, scratch, 3 * CS, 12000ULL * CS, &seg,
				1, &n) && n == 1 && seg.type == VD_SEG_ZERO &&
		      seg.len == 3 * CS);
	CHECK("vec past end refused",
	      vd_disk_read_vec(d, scratch, 2, (1ULL << 30) - 1, &seg, 1, &n) ==
		      -EINVAL);
	CHECK("vec no pieces refused",
	      vd_disk_read_vec(d, scratch, 2, 0, &seg, 0, &n) == -EINVAL);
	vd_disk_close(d);
	check_prefetch();
	return unit_done();
}
