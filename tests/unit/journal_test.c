/* Unit test: in-memory jbd2 journal replay (fsread/ext-journal.c).
 *
 * Dirty volumes are made at test time by real tools: debugfs's journal
 * commands (jo/jw/jc: several transactions, revokes, an uncommitted
 * transaction, checksums v1/v2/v3, 32- and 64-bit tags) and the kernel
 * (tests/mkdirty.sh: writes through a loop mount, fsync, copy while
 * mounted). Every block the replay map gives is compared with the same
 * image replayed by e2fsprogs (debugfs -w -R journal_run); for the
 * kernel's images, the image rebuilt from the map is also mounted by the
 * kernel with the journal ignored and its tree compared with the
 * kernel's own recovery of the dirty image (mkdirty.sh -c). Hostile
 * journals are made by poking one field of a valid one.
 *
 * libext2fs opens the test images through unix_io here (the test only);
 * the replay itself reads through core, as in the product. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "common/util.h"
#include "core/disk.h"
#include "fsread/ext-journal.h"
#include "fsread/fs.h"
#include "tests/unit/unit.h"

#define JMAGIC 0xc03b3998u

static char scratch[PATH_MAX];
static char mkdirty[PATH_MAX];

/* snprintf into a path buffer; a path too long is a test setup error. */
#define PATHF(buf, ...)                                                     \
	do {                                                                \
		if (snprintf(buf, PATH_MAX, __VA_ARGS__) >= PATH_MAX)       \
			abort();                                            \
	} while (0)

static int sh(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void path(char *buf, const char *name)
{
	PATHF(buf, "%s/%s", scratch, name);
}

/* ---------------------------------------------------- a volume to scan */

struct vimg {
	struct vd_disk *d;
	struct vd_vol *vol;
	ext2_filsys fs;
};

static int vimg_open(struct vimg *v, const char *p)
{
	struct vd_open_opts o = { .format = "raw" };
	struct vd_err e;
	errcode_t ec;

	memset(v, 0, sizeof(*v));
	if (vd_disk_open(p, &o, &v->d, &e)) {
		printf("cannot open %s: %s\n", p, e.msg);
		return -1;
	}
	v->vol = vd_vol_new_disk(v->d, p);
	ec = ext2fs_open(p, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS,
			 0, 0, unix_io_manager, &v->fs);
	if (ec) {
		printf("ext2fs_open %s: %s\n", p, error_message(ec));
		vd_vol_free(v->vol);
		vd_disk_close(v->d);
		return -1;
	}
	return 0;
}

static void vimg_close(struct vimg *v)
{
	if (v->fs)
		ext2fs_close_free(&v->fs);
	if (v->d) {
		vd_vol_free(v->vol);
		vd_disk_close(v->d);
	}
	v->d = NULL;
}

/* The volume of the last scan: its map points at it, so it stays open
 * until the next scan (free the map before scanning again). */
static struct vimg held;

/* Scan p: the result, the map in *r_r (may stay NULL), the message. */
static int scan(const char *p, struct vd_ext_replay **r_r, struct vd_err *e)
{
	*r_r = NULL;
	e->msg[0] = 0;
	vimg_close(&held);
	if (vimg_open(&held, p))
		return -1000;
	return vd_ext_replay_scan(held.fs, held.vol, r_r, e);
}

/* A scan that should fail with err and a message holding needle. */
static void scan_fails(const char *name, const char *p, int err,
		       const char *needle)
{
	struct vd_ext_replay *r;
	struct vd_err e;
	int got = scan(p, &r, &e);

	if (got != err)
		printf("%s: scan gave %d (%s), expected %d\n", name, got,
		       e.msg, err);
	CHECK(name, got == err && !r);
	CHECK_MSG(name, e.msg, needle);
	vd_ext_replay_free(r);
}

/* fs block holding journal block lblk of image p (0 on failure). */
static uint64_t jphys(const char *p, uint64_t lblk)
{
	ext2_filsys fs;
	blk64_t phys = 0;

	if (ext2fs_open(p, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS, 0,
			0, unix_io_manager, &fs))
		return 0;
	if (ext2fs_bmap2(fs, fs->super->s_journal_inum, NULL, NULL, 0, lblk,
			 NULL, &phys))
		phys = 0;
	ext2fs_close_free(&fs);
	return phys;
}

static int rd(const char *p, void *buf, size_t len, uint64_t off)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int wr(const char *p, const void *buf, size_t len, uint64_t off)
{
	int fd = open(p, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pwrite(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* -------------------------------------------- map against e2fsprogs' */

/* Compare the map of dirty with e2fsprogs' replay of a copy, block by
 * block. With mine (not NULL), also write the image the map makes: the
 * dirty image with every replayed block put in. Returns the number of
 * blocks the map replaces (-1 on setup failure). */
static long check_replay(const char *name, const char *dirty,
			 const char *mine)
{
	char oracle[PATH_MAX], label[256];
	struct vd_ext_replay *r = NULL;
	struct vd_err e;
	struct vimg v;
	uint8_t *orig = NULL, *want = NULL, *got = NULL;
	uint64_t nblk, jsb, sbblk, sboff;
	unsigned bs;
	long nrep = 0, bad = 0, changed = 0;
	int fo = -1, fw = -1, fm = -1, err;

	PATHF(oracle, "%s.jr", dirty);
	if (sh("cp --sparse=always '%s' '%s' && debugfs -w -n -R jr '%s' "
	       ">/dev/null 2>&1", dirty, oracle, oracle)) {
		printf("%s: debugfs journal_run failed\n", name);
		CHECK(name, false);
		return -1;
	}
	if (vimg_open(&v, dirty)) {
		CHECK(name, false);
		return -1;
	}
	bs = v.fs->blocksize;
	nblk = ext2fs_blocks_count(v.fs->super);
	err = vd_ext_replay_scan(v.fs, v.vol, &r, &e);
	snprintf(label, sizeof(label), "%s: scan", name);
	if (err)
		printf("%s: scan failed: %s\n", name, e.msg);
	CHECK(label, !err && r);
	jsb = jphys(dirty, 0);
	/* The superblock's 1024 bytes at byte 1024 of the volume. */
	sbblk = 1024 / bs;
	sboff = 1024 % bs;

	orig = malloc(bs);
	want = malloc(bs);
	got = malloc(bs);
	fo = open(dirty, O_RDONLY);
	fw = open(oracle, O_RDONLY);
	if (mine) {
		if (sh("cp --sparse=always '%s' '%s'", dirty, mine) == 0)
			fm = open(mine, O_WRONLY);
		CHECK(name, fm >= 0);
	}
	if (!orig || !want || !got || fo < 0 || fw < 0 || err)
		goto out;
	for (uint64_t b = 0; b < nblk; b++) {
		off_t off = (off_t)(b * bs);
		int rc;

		if (pread(fo, orig, bs, off) != (ssize_t)bs ||
		    pread(fw, want, bs, off) != (ssize_t)bs) {
			printf("%s: short read at block %llu\n", name,
			       (unsigned long long)b);
			bad++;
			break;
		}
		rc = vd_ext_replay_block(r, b, got);
		if (rc < 0) {
			printf("%s: replay_block(%llu) = %d\n", name,
			       (unsigned long long)b, rc);
			bad++;
			continue;
		}
		if (rc == 1) {
			nrep++;
			if (fm >= 0 && pwrite(fm, got, bs, off) != (ssize_t)bs)
				bad++;
		} else {
			memcpy(got, orig, bs);
		}
		/* The journal superblock: e2fsprogs marks it clean after the
		 * replay (s_start, s_sequence); replay never writes it. */
		if (b == jsb)
			continue;
		if (b == sbblk) {
			/* Fields e2fsprogs sets after the replay, besides
			 * it: s_wtime (0x30), s_state (0x3a), s_lastcheck
			 * (0x40), s_feature_incompat's needs_recovery
			 * (0x60), s_kbytes_written (0x178), s_checksum
			 * (0x3fc). */
			uint8_t *s[] = { got + sboff, want + sboff,
					 orig + sboff };
			for (unsigned i = 0; i < 3; i++) {
				memset(s[i] + 0x30, 0, 4);
				memset(s[i] + 0x3a, 0, 2);
				memset(s[i] + 0x40, 0, 4);
				s[i][0x60] &= ~EXT3_FEATURE_INCOMPAT_RECOVER;
				memset(s[i] + 0x178, 0, 8);
				memset(s[i] + 0x3fc, 0, 4);
			}
		}
		if (memcmp(orig, want, bs))
			changed++;
		if (memcmp(got, want, bs)) {
			if (bad < 5) {
				unsigned i = 0;

				while (got[i] == want[i])
					i++;
				printf("%s: block %llu differs from e2fsprogs' "
				       "replay at byte %u (%s)\n", name,
				       (unsigned long long)b, i,
				       rc == 1 ? "replayed" : "not replayed");
			}
			bad++;
		}
	}
	snprintf(label, sizeof(label), "%s: every block as e2fsprogs replays",
		 name);
	CHECK(label, bad == 0);
	/* Not vacuous: the journal held blocks not yet at home. */
	snprintf(label, sizeof(label), "%s: the journal changes blocks", name);
	CHECK(label, changed > 0 && nrep > 0);
	snprintf(label, sizeof(label), "%s: past the end is not replayed",
		 name);
	CHECK(label, vd_ext_replay_block(r, nblk, got) == 0 &&
			     vd_ext_replay_block(r, UINT64_MAX, got) == 0);
out:
	if (fo >= 0)
		close(fo);
	if (fw >= 0)
		close(fw);
	if (fm >= 0)
		close(fm);
	free(orig);
	free(want);
	free(got);
	vd_ext_replay_free(r);
	vimg_close(&v);
	unlink(oracle);
	return nrep;
}

/* ------------------------------------------- debugfs-made transactions */

#define NDATA 8

/* Block i of the data file jw reads: distinct bytes per block and file. */
static void data_block(uint8_t *b, unsigned bs, int file, unsigned i)
{
	for (unsigned k = 0; k < bs; k++)
		b[k] = (uint8_t)(file * 31 + i * 7 + k / 3);
	snprintf((char *)b, bs, "file %d block %u", file, i);
}

static int write_data(const char *p, unsigned bs, int file)
{
	uint8_t *b = malloc(bs);
	FILE *f = fopen(p, "w");
	int rc = 0;

	if (!b || !f)
		rc = -1;
	for (unsigned i = 0; !rc && i < NDATA; i++) {
		data_block(b, bs, file, i);
		if (fwrite(b, bs, 1, f) != 1)
			rc = -1;
	}
	if (f && fclose(f))
		rc = -1;
	free(b);
	return rc;
}

struct dbg {
	char img[PATH_MAX];
	unsigned bs;
	uint64_t base; /* first fs block the transactions write */
};

/* A fresh image (mkfs args), then through debugfs (jo jo_args):
 *   T1: base+0..2 from file 1      T2: base+1, base+5 from file 2
 *   T3: revoke base+0              T4: base+10..13 from file 3
 *   T5: revoke base+11             T6: base+0 from file 4
 *   T7: base+20 from file 5, not committed */
static int make_dbg(struct dbg *d, const char *name, const char *mkfs,
		    const char *jo)
{
	char dat[PATH_MAX];
	ext2_filsys fs;
	unsigned long long b;

	path(d->img, name);
	if (sh("rm -f '%s' && truncate -s 32M '%s' && %s -q -F '%s'", d->img,
	       d->img, mkfs, d->img))
		return -1;
	if (ext2fs_open(d->img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs))
		return -1;
	d->bs = fs->blocksize;
	/* A data area well past the metadata of group 0. */
	d->base = ext2fs_blocks_count(fs->super) * 5 / 8;
	ext2fs_close_free(&fs);
	for (int f = 1; f <= 5; f++) {
		PATHF(dat, "%s/d%d", scratch, f);
		if (write_data(dat, d->bs, f))
			return -1;
	}
	b = d->base;
	return sh("cd '%s' && debugfs -w -f - '%s' >/dev/null 2>&1 <<EOF\n"
		  "jo %s\n"
		  "jw -b %llu-%llu d1\n"
		  "jw -b %llu,%llu d2\n"
		  "jw -r %llu\n"
		  "jw -b %llu-%llu d3\n"
		  "jw -r %llu\n"
		  "jw -b %llu d4\n"
		  "jw -c -b %llu d5\n"
		  "jc\n"
		  "EOF\n"
		  "dumpe2fs -h '%s' 2>/dev/null | grep -q needs_recovery",
		  scratch, d->img, jo, b, b + 2, b + 1, b + 5, b, b + 10,
		  b + 13, b + 11, b, b + 20, d->img);
}

/* Block b holds block i of data file f after replay (f 0: not replayed). */
static void expect_block(const char *label, struct vd_ext_replay *r,
			 const struct dbg *d, uint64_t b, int f, unsigned i,
			 uint8_t *got, uint8_t *want)
{
	int rc = vd_ext_replay_block(r, d->base + b, got);

	if (!f) {
		CHECK(label, rc == 0);
		return;
	}
	data_block(want, d->bs, f, i);
	CHECK(label, rc == 1 && !memcmp(got, want, d->bs));
}

/* What the transactions say, whatever e2fsprogs does, when the first
 * ntrans of them are complete. */
static void check_semantics(const char *name, const struct dbg *d,
			    unsigned ntrans)
{
	struct vd_ext_replay *r;
	struct vd_err e;
	uint8_t *got = malloc(d->bs), *want = malloc(d->bs);
	char label[256];
	int err = scan(d->img, &r, &e);

	snprintf(label, sizeof(label), "%s: semantics", name);
	CHECK(label, !err && r && got && want);
	if (err || !r || !got || !want)
		goto out;
	/* From T1, revoked in T3, written again in T6. */
	expect_block(label, r, d, 0, ntrans >= 6 ? 4 : ntrans >= 3 ? 0 : 1,
		     0, got, want);
	/* T2 overwrote T1's copy. */
	expect_block(label, r, d, 1, 2, 0, got, want);
	expect_block(label, r, d, 2, 1, 2, got, want);
	expect_block(label, r, d, 5, 2, 1, got, want);
	/* T4; revoked in T5. */
	expect_block(label, r, d, 13, ntrans >= 4 ? 3 : 0, 3, got, want);
	expect_block(label, r, d, 11, ntrans == 4 ? 3 : 0, 1, got, want);
	/* Never logged; not committed. */
	expect_block(label, r, d, 3, 0, 0, got, want);
	expect_block(label, r, d, 20, 0, 0, got, want);
out:
	vd_ext_replay_free(r);
	free(got);
	free(want);
}

/* The journal block (logical) holding the block whose first bytes are
 * start, searching the first 200; -1 when none. */
static long find_jblock(const char *img, unsigned bs, const void *start,
			size_t n)
{
	uint8_t *b = malloc(bs);
	long found = -1;

	for (long l = 1; b && l < 200 && found < 0; l++) {
		uint64_t p = jphys(img, (uint64_t)l);

		if (p && !rd(img, b, bs, p * bs) && !memcmp(b, start, n))
			found = l;
	}
	free(b);
	return found;
}

/* The journal block of the n-th block with header type type. */
static long find_header(const char *img, unsigned bs, uint32_t type,
			unsigned nth)
{
	uint8_t h[12];

	for (long l = 1; l < 200; l++) {
		uint64_t p = jphys(img, (uint64_t)l);

		if (p && !rd(img, h, 12, p * bs) && get_be32(h) == JMAGIC &&
		    get_be32(h + 4) == type && nth-- == 0)
			return l;
	}
	return -1;
}

/* Copy src to a new scratch image named name; its path into dst. */
static int copy_img(char *dst, const char *src, const char *name)
{
	path(dst, name);
	return sh("cp --sparse=always '%s' '%s'", src, dst);
}

static void poke_be32(const char *img, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	CHECK("poke", !wr(img, b, 4, off));
}

static void test_debugfs(void)
{
	/* debugfs (1.47) writes a v1 commit checksum for a transaction
	 * without descriptors that its own recovery, like the kernel's,
	 * rejects: with v1 the log ends after T2. */
	static const struct {
		const char *name, *mkfs, *jo;
		unsigned ntrans;
	} cases[] = {
		/* 64bit + metadata_csum: 16-byte tags, checksums v3. */
		{ "csum-v3", "mkfs.ext4 -b 1024", "-c", 6 },
		{ "csum-v2 4k", "mkfs.ext4 -b 4096", "-c -v 2", 6 },
		/* No metadata_csum: jo -c sets the v1 (crc32_be) commit
		 * checksum; 32-bit tags. */
		{ "csum-v1", "mkfs.ext4 -O ^metadata_csum,^64bit", "-c", 2 },
		{ "plain", "mkfs.ext4 -O ^metadata_csum,^64bit", "", 6 },
		/* Block-mapped journal inode. */
		{ "ext3 csum-v1", "mkfs.ext3 -b 1024", "-c", 2 },
		{ "ext3 4k", "mkfs.ext3 -b 4096", "", 6 },
		{ "ext4 2k 64bit", "mkfs.ext4 -b 2048 -O ^metadata_csum", "", 6 },
	};
	struct dbg d;

	for (size_t i = 0; i < VD_ARRAY_SIZE(cases); i++) {
		char img[64];

		snprintf(img, sizeof(img), "%s.img", cases[i].name);
		if (make_dbg(&d, img, cases[i].mkfs, cases[i].jo)) {
			printf("%s: cannot make the image\n", cases[i].name);
			CHECK(cases[i].name, false);
			continue;
		}
		check_replay(cases[i].name, d.img, NULL);
		check_semantics(cases[i].name, &d, cases[i].ntrans);
	}
}

/* A block revoked by the transaction that logs it is not replayed (a
 * revoke in T covers copies in transactions up to T, T included). Its
 * own image: debugfs misplaces the next transaction after such a one. */
static void test_self_revoke(void)
{
	struct dbg d;
	struct vd_ext_replay *r;
	struct vd_err e;
	uint8_t *got, *want;

	path(d.img, "self-revoke.img");
	if (sh("truncate -s 32M '%s' && mkfs.ext4 -q -F -b 4096 '%s'",
	       d.img, d.img)) {
		CHECK("self revoke: mkfs", false);
		return;
	}
	d.bs = 4096;
	d.base = 5000;
	got = malloc(d.bs);
	want = malloc(d.bs);
	for (int f = 1; f <= 2; f++) {
		char dat[PATH_MAX];

		PATHF(dat, "%s/d%d", scratch, f);
		CHECK("self revoke: data", !write_data(dat, d.bs, f));
	}
	CHECK("self revoke: debugfs",
	      got && want &&
		      !sh("cd '%s' && debugfs -w -f - '%s' >/dev/null 2>&1 "
			  "<<EOF\njo -c\njw -b 5000,5001 d1\n"
			  "jw -b 5001,5002 -r 5001,5002 d2\njc\nEOF",
			  scratch, d.img));
	check_replay("self revoke", d.img, NULL);
	CHECK("self revoke: scan", !scan(d.img, &r, &e) && r);
	if (r && got && want) {
		data_block(want, d.bs, 1, 0);
		CHECK("self revoke: kept", vd_ext_replay_block(r, 5000, got) ==
				1 && !memcmp(got, want, d.bs));
		CHECK("self revoke: revoked",
		      vd_ext_replay_block(r, 5001, got) == 0 &&
			      vd_ext_replay_block(r, 5002, got) == 0);
	}
	vd_ext_replay_free(r);
	free(got);
	free(want);
}

/* Hostile journals: one field of a valid one poked. */
static void test_poked(void)
{
	struct dbg v3, pl;
	char p[PATH_MAX];
	uint8_t *b;
	uint64_t jsb;
	long l;
	struct vd_ext_replay *r;
	struct vd_err e;

	if (make_dbg(&v3, "pv3.img", "mkfs.ext4", "-c") ||
	    make_dbg(&pl, "ppl.img", "mkfs.ext4 -O ^metadata_csum,^64bit",
		     "")) {
		CHECK("poked: images", false);
		return;
	}
	b = malloc(v3.bs > pl.bs ? v3.bs : pl.bs);
	if (!b)
		return;

	/* A copy that fails its tag checksum: the kernel fails recovery. */
	data_block(b, v3.bs, 2, 1);
	l = find_jblock(v3.img, v3.bs, b, 32);
	CHECK("poked: find copy", l > 0);
	copy_img(p, v3.img, "bad-copy.img");
	poke_be32(p, jphys(p, (uint64_t)l) * v3.bs + 100, 0xdeadbeef);
	scan_fails("copy checksum", p, -EUCLEAN, "fails its checksum");

	/* The last commit fails its checksum: T6 is not replayed, as
	 * e2fsprogs agrees; base+0 stays revoked. */
	l = find_header(v3.img, v3.bs, 2, 5); /* T6's commit block */
	CHECK("poked: find commit", l > 0);
	copy_img(p, v3.img, "bad-commit.img");
	poke_be32(p, jphys(p, (uint64_t)l) * v3.bs + 0x10, 0x12345678);
	check_replay("bad last commit", p, NULL);
	{
		struct dbg t = v3;

		PATHF(t.img, "%s", p);
		check_semantics("bad last commit", &t, 5);
	}

	/* A descriptor that fails its checksum before a commit whose time
	 * does not go back: corrupt, recovery fails. */
	l = find_header(v3.img, v3.bs, 1, 1); /* T2's descriptor */
	CHECK("poked: find descriptor", l > 0);
	copy_img(p, v3.img, "bad-desc.img");
	poke_be32(p, jphys(p, (uint64_t)l) * v3.bs + v3.bs - 4, 0x1);
	scan_fails("descriptor checksum", p, -EUCLEAN, "fails its checksum");

	/* An escaped tag (no checksums here to redo): the copy's first 4
	 * bytes come back as the magic. */
	l = find_header(pl.img, pl.bs, 1, 0); /* T1's descriptor */
	copy_img(p, pl.img, "escape.img");
	{
		uint64_t at = jphys(p, (uint64_t)l) * pl.bs;
		bool done = false;

		CHECK("escape: read", !rd(p, b, pl.bs, at));
		/* 8-byte tags: t_blocknr (0), t_flags (6, be16). */
		for (unsigned o = 12; o + 8 <= pl.bs && !done; o += 4)
			if (get_be32(b + o) == pl.base + 2) {
				b[o + 7] |= 1; /* JBD2_FLAG_ESCAPE */
				done = !wr(p, b, pl.bs, at);
			}
		CHECK("escape: poke", done);
		check_replay("escaped tag", p, NULL);
		CHECK("escape: magic back", !scan(p, &r, &e) && r &&
			vd_ext_replay_block(r, pl.base + 2, b) == 1 &&
			get_be32(b) == JMAGIC);
		vd_ext_replay_free(r);
	}

	/* A tag naming a block past the volume. */
	copy_img(p, pl.img, "far-tag.img");
	{
		uint64_t at = jphys(p, (uint64_t)l) * pl.bs;
		bool done = false;

		CHECK("far tag: read", !rd(p, b, pl.bs, at));
		for (unsigned o = 12; o + 8 <= pl.bs && !done; o += 4)
			if (get_be32(b + o) == pl.base + 2) {
				put_be32(b + o, 0xffffff00u);
				done = !wr(p, b, pl.bs, at);
			}
		CHECK("far tag: poke", done);
		scan_fails("far tag", p, -EUCLEAN, "past the volume");
	}

	/* A revoke block that counts more bytes than it has. */
	l = find_header(pl.img, pl.bs, 5, 0);
	copy_img(p, pl.img, "long-revoke.img");
	poke_be32(p, jphys(p, (uint64_t)l) * pl.bs + 0xc, pl.bs + 4);
	scan_fails("long revoke", p, -EUCLEAN, "revoke block");

	/* Journal superblock fields (no superblock checksum here). */
	jsb = jphys(pl.img, 0) * pl.bs;
	copy_img(p, pl.img, "unknown-feature.img");
	CHECK("jsb read", !rd(p, b, 64, jsb));
	poke_be32(p, jsb + 0x28, get_be32(b + 0x28) | 0x100);
	scan_fails("unknown incompat", p, -ENOTSUP, "unknown journal incompat");

	copy_img(p, pl.img, "bad-start.img");
	poke_be32(p, jsb + 0x1c, get_be32(b + 0x10) + 5);
	scan_fails("s_start", p, -EUCLEAN, "s_start");

	copy_img(p, pl.img, "bad-first.img");
	poke_be32(p, jsb + 0x14, 0);
	scan_fails("s_first", p, -EUCLEAN, "s_first");

	copy_img(p, pl.img, "short.img");
	poke_be32(p, jsb + 0x10, 100);
	scan_fails("s_maxlen", p, -EUCLEAN, "s_maxlen");

	copy_img(p, pl.img, "bsize.img");
	poke_be32(p, jsb + 0xc, 512);
	scan_fails("journal block size", p, -EUCLEAN, "block size");

	copy_img(p, pl.img, "not-jsb.img");
	poke_be32(p, jsb, 0x11223344);
	scan_fails("journal magic", p, -EUCLEAN, "no journal superblock");

	/* A journal superblock whose checksum no longer matches. */
	copy_img(p, v3.img, "jsb-csum.img");
	jsb = jphys(p, 0) * v3.bs;
	poke_be32(p, jsb + 0x40, 7); /* s_nr_users */
	scan_fails("jsb checksum", p, -EUCLEAN, "checksum mismatch");

	/* Clean journal (s_start 0): nothing to replay. */
	copy_img(p, pl.img, "clean-jnl.img");
	jsb = jphys(p, 0) * pl.bs;
	poke_be32(p, jsb + 0x1c, 0);
	CHECK("s_start 0: nothing", !scan(p, &r, &e) && !r);

	/* External journal (s_journal_inum 0, le32 at 0xe0). */
	copy_img(p, pl.img, "external.img");
	{
		uint8_t z[4] = { 0 };

		CHECK("external: poke", !wr(p, z, 4, 1024 + 0xe0));
	}
	scan_fails("external journal", p, -ENOTSUP, "external");

	/* A volume that does not need recovery. */
	path(p, "fresh.img");
	CHECK("fresh: mkfs", !sh("truncate -s 16M '%s' && mkfs.ext4 -q -F '%s'",
				 p, p));
	CHECK("fresh: nothing", !scan(p, &r, &e) && !r);

	free(b);
}

/* ----------------------------------------------- the kernel's journals */

static void test_kernel(void)
{
	static const struct {
		const char *name, *args;
	} cases[] = {
		{ "kernel ext4", "" },
		{ "kernel data=journal", "-J" },
		{ "kernel ext3 1k", "-t ext3 -b 1024" },
		{ "kernel ext4 2k 32-bit", "-b 2048 -O ^metadata_csum,^64bit" },
	};

	for (size_t i = 0; i < VD_ARRAY_SIZE(cases); i++) {
		char dirty[PATH_MAX], mine[PATH_MAX], label[256];
		long n;

		path(dirty, "kdirty.img");
		path(mine, "kmine.img");
		snprintf(label, sizeof(label), "%s: mkdirty", cases[i].name);
		if (sh("bash '%s' %s '%s'", mkdirty, cases[i].args, dirty)) {
			CHECK(label, false);
			continue;
		}
		n = check_replay(cases[i].name, dirty, mine);
		if (n <= 0)
			continue;
		/* The kernel's recovery against the map's image. */
		snprintf(label, sizeof(label), "%s: kernel tree after recovery",
			 cases[i].name);
		CHECK(label, !sh("bash '%s' -c '%s' '%s'", mkdirty, dirty, mine));
		unlink(dirty);
		unlink(mine);
	}
}

/* Fast commits after the last full commit: refused, not half replayed. */
static void test_fast_commit(void)
{
	char img[PATH_MAX];

	path(img, "fc.img");
	if (sh("set -e; d=$(mktemp -d '%s/fcm.XXXXXX'); "
	       "truncate -s 64M '%s'; "
	       "mkfs.ext4 -q -F -O fast_commit -E lazy_itable_init=0,"
	       "lazy_journal_init=0 '%s'; "
	       "timeout 60 mount -o loop,noatime '%s' $d; "
	       "rc=0; { head -c 20000 /dev/zero | tr '\\0' a >$d/f && sync && "
	       "head -c 5000 /dev/zero | tr '\\0' b >>$d/f && sync $d/f && "
	       "cp --sparse=always '%s' '%s.tmp'; } || rc=1; "
	       "timeout 60 umount $d; rmdir $d; exit $rc",
	       scratch, img, img, img, img, img) ||
	    sh("mv '%s.tmp' '%s'", img, img)) {
		CHECK("fast commit: image", false);
		return;
	}
	scan_fails("fast commit", img, -ENOTSUP, "fast commit");
}

/* tests/mkdirty.sh: beside this binary's source tree. */
static int find_mkdirty(void)
{
	char exe[PATH_MAX];
	const char *env = getenv("VD_SRC");
	ssize_t n;

	if (env) {
		PATHF(mkdirty, "%s/tests/mkdirty.sh", env);
		if (!access(mkdirty, R_OK))
			return 0;
	}
	/* BUILD/asan/tests/journal_test, BUILD usually in the tree. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		for (int up = 0; up < 4; up++) {
			char *s = strrchr(exe, '/');

			if (!s)
				break;
			*s = 0;
			PATHF(mkdirty, "%s/tests/mkdirty.sh", exe);
			if (!access(mkdirty, R_OK))
				return 0;
		}
	}
	PATHF(mkdirty, "tests/mkdirty.sh");
	return access(mkdirty, R_OK);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	vd_log_set_level(VD_LOG_WARN);
	PATHF(scratch, "%s/vdjournal.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch)) {
		printf("mkdtemp failed\n");
		return 1;
	}
	CHECK("find tests/mkdirty.sh", !find_mkdirty());

	test_debugfs();
	test_self_revoke();
	test_poked();
	test_fast_commit();
	if (mkdirty[0])
		test_kernel();

	vimg_close(&held);
	sh("rm -rf --one-file-system '%s'", scratch);
	return unit_done();
}
