/* Unit test: the vfat driver against volumes mkfs.vfat made and mcopy
 * filled from a source tree (FAT12, FAT16, FAT32, 512- and 4096-byte
 * sectors, clusters of 512 bytes to 64 KiB, one volume at an offset in a
 * bigger file). The tree is walked through the driver and compared with
 * the source (names, types, sizes, bytes, mtimes); the FAT type, cluster
 * and free counts are compared with fsck.fat's, label and serial with
 * blkid's; cluster-count boundaries are made by moving the total sector
 * count of tool-made volumes. Then one byte or a few at a time is poked
 * into copies: case flags, code pages, surrogate pairs, broken long
 * names, chain loops and bad FAT entries, bad BPB fields, a directory
 * without an end marker. */
/* Paths here live under a short mkdtemp folder; GCC cannot know that. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/disk.h"
#include "fsread/fs.h"
#include "fsread/vfat.h"
#include "tests/unit/unit.h"

static char scratch[] = "/tmp/vd-vfat-test.XXXXXX";
static char src[256];
static uint8_t rnd[300000];

__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

#define SH(...)                                                            \
	do {                                                               \
		if (run(__VA_ARGS__)) {                                    \
			fprintf(stderr, "command failed at line %d\n",     \
				__LINE__);                                 \
			exit(2);                                           \
		}                                                          \
	} while (0)

/* The first line of a command's output that contains key, or "". */
static void out_line(const char *cmd, const char *key, char *line, size_t n)
{
	FILE *p = popen(cmd, "r");

	line[0] = '\0';
	if (!p)
		return;
	while (fgets(line, (int)n, p))
		if (strstr(line, key))
			break;
	if (!strstr(line, key))
		line[0] = '\0';
	pclose(p);
}

static void put_file(const char *rel, const void *data, size_t len)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", src, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		unit_die(p);
	close(fd);
}

#define LONG_NAME "a rather long file name with many parts.data"

static void make_source(void)
{
	unsigned seed = 7;
	char name[64];

	snprintf(src, sizeof(src), "%s/src", scratch);
	SH("mkdir -p %s/sub/deeper %s/many", src, src);
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(rand_r(&seed) >> 7);
	put_file("lower.txt", "hello\n", 6);
	put_file("UPPER.TXT", "upper\n", 6);
	put_file("Mixed Case Name.TXT", "mixed\n", 6);
	put_file(LONG_NAME, "long\n", 5);
	put_file("한국어 파일.txt", "korean\n", 7);
	put_file("日本語ファイル.txt", "japanese\n", 9);
	put_file("empty", "", 0);
	put_file("random.bin", rnd, sizeof(rnd));
	put_file("sub/deeper/tiny.txt", "x", 1);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "many/file number %03d.txt", i);
		put_file(name, name, strlen(name));
	}
	/* Times mcopy -m keeps: whole even seconds in 2001. */
	SH("cd %s && find . -exec touch -h -d '2001-02-03 04:05:06' {} +",
	   src);
}

/* mkfs.vfat options, size in KiB; the image is filled with the source. */
static void make_image(const char *img, const char *mkfs, unsigned kib)
{
	SH("rm -f %s && mkfs.vfat -C %s -n VDTEST %s %u >/dev/null", img, mkfs,
	   img, kib);
	SH("cd %s && LC_ALL=C.UTF-8 TZ=UTC MTOOLS_SKIP_CHECK=1 mcopy -s -m "
	   "-i %s ./* ::", src, img);
}

/* ---- a mounted volume ---- */

struct mnt {
	struct vd_disk *disk;
	struct vd_vol *vol;
	struct vd_fs *fs;
	const struct vd_fs_ops *ops;
};

static int mnt_open(struct mnt *m, const char *img, uint64_t start,
		    const struct vd_fs_opts *o, char *msg)
{
	struct vd_open_opts oo = { .format = "raw" };
	struct vd_fs_opts none = { 0 };
	struct vd_err e = { "" };
	int ret = vd_disk_open(img, &oo, &m->disk, &e);

	m->ops = &vd_fs_vfat;
	if (ret)
		return ret;
	m->vol = vd_vol_new_disk_range(m->disk, start,
				       vd_disk_size(m->disk) - start,
				       "test-vol");
	ret = m->vol && m->ops->probe(m->vol) ? 0 : -ENODEV;
	if (!ret)
		ret = m->ops->mount(m->vol, o ? o : &none, &m->fs, &e);
	if (msg)
		strcpy(msg, e.msg);
	if (ret) {
		vd_vol_free(m->vol);
		vd_disk_close(m->disk);
	}
	return ret;
}

static void mnt_close(struct mnt *m)
{
	m->ops->unmount(m->fs);
	vd_vol_free(m->vol);
	vd_disk_close(m->disk);
}

static int lookup_path(struct mnt *m, const char *rel, uint64_t *ino_r)
{
	char buf[512], *save = NULL, *part;
	uint64_t ino = m->ops->root(m->fs);
	int ret = 0;

	snprintf(buf, sizeof(buf), "%s", rel);
	for (part = strtok_r(buf, "/", &save); part && !ret;
	     part = strtok_r(NULL, "/", &save))
		ret = m->ops->lookup(m->fs, ino, part, &ino);
	*ino_r = ino;
	return ret;
}

/* Whether ops->map's pieces, at most 1 to 4 a call, give want. */
static bool map_matches(struct mnt *m, struct vd_fs_file *f,
			const uint8_t *want, size_t len)
{
	uint8_t *a = malloc(len ? len : 1);
	bool ok = a != NULL;
	size_t pos = 0;

	while (ok && pos < len) {
		struct vd_fs_piece p[4];
		unsigned np, max = 1 + (unsigned)(pos % 4);
		size_t got, sum = 0;

		ok = !m->ops->map(f, pos, VD_MIN(len - pos, 99999), p, max,
				  &np, &got) && got && np && np <= max;
		for (unsigned i = 0; ok && i < np; i++) {
			ok = !p[i].zero && p[i].len && p[i].len <= got - sum &&
			     (!i || p[i - 1].vol_off + p[i - 1].len !=
					    p[i].vol_off) &&
			     !vd_vol_read(m->fs->vol, a + pos + sum, p[i].len,
					  p[i].vol_off);
			sum += p[i].len;
		}
		ok = ok && sum == got;
		pos += got;
	}
	ok = ok && !memcmp(a, want, len);
	free(a);
	return ok;
}

/* The whole file: 0, or the error of open or read; -EBADMSG when the
 * file's map gives other bytes than read. */
static int read_all(struct mnt *m, uint64_t ino, uint8_t *buf, size_t cap,
		    size_t *len_r)
{
	struct vd_fs_file *f;
	size_t got = 0, n;
	int ret = m->ops->open(m->fs, ino, &f);

	if (ret)
		return ret;
	/* In odd-sized pieces, so reads start and end inside clusters. */
	while (!ret && got < cap) {
		ret = m->ops->read(f, buf + got, VD_MIN(cap - got, 7777), got,
				   &n);
		if (!ret && !n)
			break;
		got += n;
	}
	if (!ret && !map_matches(m, f, buf, got))
		ret = -EBADMSG;
	m->ops->release(f);
	*len_r = got;
	return ret;
}

struct names {
	size_t n;
	char name[400][256];
	uint64_t ino[400];
	uint64_t next[400];
	size_t stop_after; /* stop (return 1) after this many; 0: never */
};

static int names_fill(void *arg, const char *name, uint64_t ino,
		      unsigned type, uint64_t next)
{
	struct names *l = arg;

	(void)type;
	if (l->n >= 400)
		return 1;
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->ino[l->n] = ino;
	l->next[l->n] = next;
	l->n++;
	return l->stop_after && l->n % l->stop_after == 0;
}

static bool names_has(const struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->name[i], name))
			return true;
	return false;
}

/* ---- the tree against the source ---- */

static int tree_fails;

#define TCHECK(what, cond)                                                 \
	do {                                                               \
		if (!(cond)) {                                             \
			tree_fails++;                                      \
			printf("FAIL %s: %s (%s)\n", where, what, #cond);  \
		}                                                          \
	} while (0)

static char where[600];

static void compare_dir(struct mnt *m, const char *rel, uint64_t dino)
{
	struct names *lp = malloc(sizeof(*lp));
	static uint8_t buf[sizeof(rnd) + 1];
	char path[512];
	struct dirent *de;
	size_t n_src = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", src, rel);
	d = opendir(path);
	if (!d || !lp)
		unit_die(path);
#define l (*lp)
	l.n = 0;
	l.stop_after = 0;
	snprintf(where, sizeof(where), "%s", rel);
	TCHECK("readdir", !m->ops->readdir(m->fs, dino, 0, names_fill, &l));
	TCHECK("dot entries", l.n >= 2 && !strcmp(l.name[0], ".") &&
				      !strcmp(l.name[1], ".."));
	/* Ends: the directory is finite. */
	while ((de = readdir(d))) {
		char sub[512], full[1024];
		struct vd_fs_attr a;
		struct stat st;
		uint64_t ino;
		size_t len;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n_src++;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
			 de->d_name);
		snprintf(full, sizeof(full), "%s/%s", src, sub);
		snprintf(where, sizeof(where), "%s", sub);
		if (lstat(full, &st))
			unit_die(full);
		TCHECK("listed", names_has(&l, de->d_name));
		if (m->ops->lookup(m->fs, dino, de->d_name, &ino)) {
			TCHECK("lookup", false);
			continue;
		}
		if (m->ops->getattr(m->fs, ino, &a)) {
			TCHECK("getattr", false);
			continue;
		}
		TCHECK("ino", a.ino == ino && ino > 1 && ino < (1ull << 48));
		TCHECK("atime is a day", a.atime.tv_sec % 86400 == 0);
		TCHECK("ctime", a.ctime.tv_sec == a.mtime.tv_sec);
		if (S_ISDIR(st.st_mode)) {
			TCHECK("dir mode", a.mode == (S_IFDIR | 0755));
			TCHECK("dir size", a.size && a.size % 512 == 0);
			compare_dir(m, sub, ino);
			continue;
		}
		TCHECK("file mode", a.mode == (S_IFREG | 0644));
		TCHECK("mtime", a.mtime.tv_sec == st.st_mtime);
		TCHECK("nlink", a.nlink == 1);
		TCHECK("size", a.size == (uint64_t)st.st_size);
		TCHECK("read", !read_all(m, ino, buf, sizeof(buf), &len));
		if (len == (size_t)st.st_size) {
			int fd = open(full, O_RDONLY);
			static uint8_t want[sizeof(rnd) + 1];

			if (fd < 0 || read(fd, want, sizeof(want)) != (ssize_t)len)
				unit_die(full);
			close(fd);
			TCHECK("bytes", !memcmp(buf, want, len));
		} else {
			TCHECK("length", false);
		}
	}
	closedir(d);
	snprintf(where, sizeof(where), "%s", rel);
	TCHECK("nothing more listed", l.n == n_src + 2);
#undef l
	free(lp);
}

/* ---- what the image says, read by the test itself ---- */

struct geo {
	unsigned bps, csize, bits;
	uint64_t fat_off, data_off;
};

static void read_img(const char *img, uint64_t off, void *b, size_t n)
{
	int fd = open(img, O_RDONLY);

	if (fd < 0 || pread(fd, b, n, (off_t)off) != (ssize_t)n)
		unit_die(img);
	close(fd);
}

static void copy(const char *from, const char *to)
{
	SH("cp --sparse=always %s %s", from, to);
}

static struct geo geo_of(const char *img, unsigned bits)
{
	uint8_t b[64];
	struct geo g;
	unsigned fatsz;

	read_img(img, 0, b, sizeof(b));
	g.bps = get_le16(b + 11);
	g.csize = g.bps * b[13];
	fatsz = get_le16(b + 22) ? get_le16(b + 22) : get_le32(b + 36);
	g.fat_off = (uint64_t)get_le16(b + 14) * g.bps;
	g.data_off = g.fat_off + (uint64_t)b[16] * fatsz * g.bps +
		     (uint64_t)get_le16(b + 17) * 32;
	g.bits = bits;
	return g;
}

static uint32_t fat_get(const char *img, const struct geo *g, uint32_t cl)
{
	uint8_t b[4] = { 0 };

	if (g->bits == 12) {
		read_img(img, g->fat_off + cl + cl / 2, b, 2);
		return cl & 1 ? get_le16(b) >> 4 : get_le16(b) & 0xfff;
	}
	read_img(img, g->fat_off + (uint64_t)cl * g->bits / 8, b, g->bits / 8);
	return g->bits == 16 ? get_le16(b) : get_le32(b) & 0x0fffffff;
}

static void fat_set(const char *img, const struct geo *g, uint32_t cl,
		    uint32_t v)
{
	uint8_t b[4];

	if (g->bits == 12) {
		uint64_t off = g->fat_off + cl + cl / 2;
		uint16_t w;

		read_img(img, off, b, 2);
		w = get_le16(b);
		w = cl & 1 ? (uint16_t)((w & 0x000f) | v << 4) :
			     (uint16_t)((w & 0xf000) | (v & 0xfff));
		b[0] = (uint8_t)w;
		b[1] = (uint8_t)(w >> 8);
		unit_poke(img, off, b, 2);
		return;
	}
	for (unsigned i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	unit_poke(img, g->fat_off + (uint64_t)cl * g->bits / 8, b, g->bits / 8);
}

/* The first cluster of the entry of inode ino. */
static uint32_t first_cluster(const char *img, const struct geo *g,
			      uint64_t ino)
{
	uint8_t de[32];

	read_img(img, ino * 32, de, 32);
	return get_le16(de + 26) |
	       (g->bits == 32 ? (uint32_t)get_le16(de + 20) << 16 : 0);
}

/* fsck.fat's view: FAT width, data clusters, used clusters. */
static void fsck_view(const char *img, unsigned *bits, uint64_t *clusters,
		      uint64_t *used)
{
	char cmd[600], line[512];
	const char *p;

	*bits = 0;
	*clusters = *used = 0;
	snprintf(cmd, sizeof(cmd), "fsck.fat -n -v %s 2>&1", img);
	out_line(cmd, "bit entries", line, sizeof(line));
	if ((p = strstr(line, "FATs, ")))
		*bits = (unsigned)atoi(p + 6);
	out_line(cmd, "data clusters", line, sizeof(line));
	*clusters = strtoull(line, NULL, 10);
	snprintf(cmd, sizeof(cmd), "fsck.fat -n %s 2>&1 | tail -n 1", img);
	out_line(cmd, "clusters", line, sizeof(line));
	if ((p = strstr(line, "files, ")))
		*used = strtoull(p + 7, NULL, 10);
}

/* ---- the volumes made by the tools ---- */

struct cfg {
	const char *name;
	const char *mkfs;
	unsigned kib;
	unsigned bits;
};

static const struct cfg cfgs[] = {
	{ "fat12-512", "-F 12 -s 1", 2000, 12 },
	{ "fat12-2k", "-F 12 -s 4", 7000, 12 },
	{ "fat16-2k", "-F 16 -s 4", 16384, 16 },
	{ "fat16-64k", "-F 16 -s 128", 300000, 16 },
	{ "fat32-512", "-F 32 -s 1", 40000, 32 },
	{ "fat32-4k-sectors", "-F 32 -S 4096 -s 1", 300000, 32 },
};

static void check_cfg(const struct cfg *c, const char *img)
{
	struct vd_fs_info info;
	struct vd_fs_attr a;
	struct statvfs st;
	struct mnt m;
	char msg[1100], line[256], cmd[600];
	unsigned fbits;
	uint64_t fclusters, fused, ino;
	int before = tree_fails;

	if (mnt_open(&m, img, 0, NULL, msg)) {
		printf("FAIL %s: mount: %s\n", c->name, msg);
		unit_failed++;
		return;
	}
	m.ops->info(m.fs, &info);
	fsck_view(img, &fbits, &fclusters, &fused);
	snprintf(line, sizeof(line), "FAT%u", fbits);
	CHECK(c->name, !strcmp(info.subtype, line) && fbits == c->bits);
	CHECK(c->name, !m.ops->statfs(m.fs, &st));
	CHECK(c->name, st.f_blocks == fclusters && fclusters > 0);
	CHECK(c->name, st.f_bfree == fclusters - fused);
	snprintf(cmd, sizeof(cmd), "blkid -p -o value -s UUID %s", img);
	out_line(cmd, "-", line, sizeof(line));
	line[strcspn(line, "\n")] = '\0';
	CHECK(c->name, !strcmp(info.uuid, line));
	CHECK(c->name, !strcmp(info.label, "VDTEST") &&
			       !strcmp(info.type, "vfat"));
	compare_dir(&m, "", m.ops->root(m.fs));
	CHECK(c->name, tree_fails == before);
	/* Root: 2 + its subdirectories; sub: 2 + deeper. */
	CHECK(c->name, !m.ops->getattr(m.fs, 1, &a) && a.nlink == 4 &&
			       a.mtime.tv_sec == 0 && S_ISDIR(a.mode));
	CHECK(c->name, !lookup_path(&m, "sub", &ino) &&
			       !m.ops->getattr(m.fs, ino, &a) && a.nlink == 3);
	mnt_close(&m);
}

/* ---- parallel reads ---- */

struct par {
	struct mnt *m;
	uint64_t ino;
	unsigned seed;
	int bad;
};

static void *par_reader(void *arg)
{
	struct par *p = arg;
	struct vd_fs_file *f;
	uint8_t buf[20000];

	if (p->m->ops->open(p->m->fs, p->ino, &f)) {
		p->bad++;
		return NULL;
	}
	for (int i = 0; i < 300; i++) {
		size_t off = (size_t)rand_r(&p->seed) % sizeof(rnd), got;
		size_t len = (size_t)rand_r(&p->seed) % sizeof(buf) + 1;

		if (p->m->ops->read(f, buf, len, off, &got) ||
		    got != VD_MIN(len, sizeof(rnd) - off) ||
		    memcmp(buf, rnd + off, got))
			p->bad++;
	}
	p->m->ops->release(f);
	return NULL;
}

static void test_parallel(const char *img)
{
	struct mnt m;
	struct par p[8];
	pthread_t t[8];
	uint64_t ino;
	int bad = 0;

	if (mnt_open(&m, img, 0, NULL, NULL) ||
	    lookup_path(&m, "random.bin", &ino)) {
		CHECK("parallel mount", false);
		return;
	}
	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){ &m, ino, (unsigned)i + 1, 0 };
		pthread_create(&t[i], NULL, par_reader, &p[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		bad += p[i].bad;
	}
	CHECK("parallel reads", bad == 0);
	mnt_close(&m);
}

/* ---- the FAT type at the cluster-count boundaries ---- */

/* Set the total sector count so the data area holds exactly n clusters,
 * then ask fsck.fat and the driver. */
static void boundary(const char *base, const char *name, uint32_t n,
		     unsigned want_bits)
{
	char img[300], msg[1100], sub[16];
	uint8_t b[64], t[4];
	struct mnt m;
	struct statvfs st;
	struct vd_fs_info info;
	uint64_t data_sec, total, fcl, fused;
	unsigned fbits, spc;

	snprintf(img, sizeof(img), "%s/%s.img", scratch, name);
	copy(base, img);
	read_img(img, 0, b, sizeof(b));
	spc = b[13];
	data_sec = get_le16(b + 14) +
		   (uint64_t)b[16] * (get_le16(b + 22) ? get_le16(b + 22) :
							get_le32(b + 36)) +
		   get_le16(b + 17) * 32u / get_le16(b + 11);
	total = data_sec + (uint64_t)n * spc;
	memset(t, 0, 2);
	unit_poke(img, 19, t, 2);
	t[0] = (uint8_t)total;
	t[1] = (uint8_t)(total >> 8);
	t[2] = (uint8_t)(total >> 16);
	t[3] = (uint8_t)(total >> 24);
	unit_poke(img, 32, t, 4);
	fsck_view(img, &fbits, &fcl, &fused);
	snprintf(sub, sizeof(sub), "FAT%u", want_bits);
	if (mnt_open(&m, img, 0, NULL, msg)) {
		printf("FAIL %s: %s\n", name, msg);
		unit_failed++;
		return;
	}
	m.ops->info(m.fs, &info);
	m.ops->statfs(m.fs, &st);
	CHECK(name, fbits == want_bits && fcl == n);
	CHECK(name, !strcmp(info.subtype, sub) && st.f_blocks == n);
	mnt_close(&m);
}

static void test_boundaries(void)
{
	char f16[300], f32[300], msg[1100];
	struct vd_fs_info info;
	struct mnt m;

	snprintf(f16, sizeof(f16), "%s/b16.img", scratch);
	snprintf(f32, sizeof(f32), "%s/b32.img", scratch);
	SH("mkfs.vfat -C -F 16 -s 1 %s 2400 >/dev/null", f16);
	SH("mkfs.vfat -C -F 32 -s 1 %s 34000 >/dev/null", f32);
	boundary(f16, "clusters-4084", 4084, 12);
	boundary(f16, "clusters-4085", 4085, 16);
	boundary(f32, "clusters-65525", 65525, 32);
	/* A FAT32 BPB (16-bit FAT size 0) stays FAT32 below 65525, as
	 * Linux and fsck.fat read it. */
	boundary(f32, "clusters-65524", 65524, 32);
	/* The type string is not looked at. */
	unit_poke(f16, 54, "FAT32   ", 8);
	CHECK("FAT32 label on FAT16", !mnt_open(&m, f16, 0, NULL, msg));
	if (!msg[0]) {
		m.ops->info(m.fs, &info);
		CHECK("FAT32 label on FAT16", !strcmp(info.subtype, "FAT16"));
		mnt_close(&m);
	}
}

/* ---- names ---- */

/* The inode (entry position / 32) of rel, via the driver. */
static uint64_t ino_of(const char *img, const char *rel)
{
	struct mnt m;
	uint64_t ino = 0;

	if (mnt_open(&m, img, 0, NULL, NULL))
		return 0;
	if (lookup_path(&m, rel, &ino))
		ino = 0;
	mnt_close(&m);
	return ino;
}

/* The 8.3 name of the entry of inode ino, as "BASE.EXT". */
static void alias_of(const char *img, uint64_t ino, char *alias)
{
	uint8_t de[32];
	int n = 0;

	read_img(img, ino * 32, de, 32);
	for (int i = 0; i < 8 && de[i] != ' '; i++)
		alias[n++] = (char)de[i];
	if (de[8] != ' ')
		alias[n++] = '.';
	for (int i = 8; i < 11 && de[i] != ' '; i++)
		alias[n++] = (char)de[i];
	alias[n] = '\0';
}

/* The names of directory rel as the driver lists them (codepage cp). */
static void list(const char *img, const char *rel, unsigned cp,
		 struct names *l)
{
	struct vd_fs_opts o = { .codepage = cp };
	struct mnt m;
	uint64_t ino;

	l->n = 0;
	l->stop_after = 0;
	if (mnt_open(&m, img, 0, &o, NULL))
		return;
	if (!lookup_path(&m, rel, &ino))
		m.ops->readdir(m.fs, ino, 0, names_fill, l);
	mnt_close(&m);
}

static void test_names(const char *base)
{
	static struct names l;
	char img[300];
	uint8_t de[32], b[32];
	uint64_t up, mixed, lng, low;
	struct mnt m;

	snprintf(img, sizeof(img), "%s/names.img", scratch);
	copy(base, img);
	up = ino_of(img, "UPPER.TXT");
	mixed = ino_of(img, "Mixed Case Name.TXT");
	lng = ino_of(img, LONG_NAME);
	low = ino_of(img, "lower.txt");
	CHECK("names found", up && mixed && lng && low);

	/* lower.txt: mcopy stores either NT case flags or a long name. */
	read_img(img, low * 32, de, 32);
	read_img(img, low * 32 - 32, b, 32);
	CHECK("lower.txt stored", !memcmp(de, "LOWER   TXT", 11) &&
					  ((de[12] & 0x18) == 0x18 ||
					   b[11] == 0x0f));
	printf("# lower.txt is stored with %s\n",
	       b[11] == 0x0f ? "a long name" : "NT case flags");

	/* NT case flags on UPPER.TXT, which has no long name. */
	unit_poke(img, up * 32 + 12, "\x08", 1);
	list(img, "", 0, &l);
	CHECK("case flag base", names_has(&l, "upper.TXT"));
	unit_poke(img, up * 32 + 12, "\x10", 1);
	list(img, "", 0, &l);
	CHECK("case flag ext", names_has(&l, "UPPER.txt"));
	unit_poke(img, up * 32 + 12, "\x00", 1);

	/* Code pages of short names: 0x9b is U+00A2 in 437, U+00F8 in
	 * 850; 0x83 0x41 is U+30A2 in 932 (Shift-JIS). */
	unit_poke(img, up * 32 + 1, "\x9b", 1);
	list(img, "", 0, &l);
	CHECK("cp437", names_has(&l, "U\xc2\xa2PER.TXT"));
	list(img, "", 850, &l);
	CHECK("cp850", names_has(&l, "U\xc3\xb8PER.TXT"));
	unit_poke(img, up * 32 + 1, "\x83\x41", 2);
	list(img, "", 932, &l);
	CHECK("cp932", names_has(&l, "U\xe3\x82\xa2" "ER.TXT"));
	unit_poke(img, up * 32, "UPPER", 5);

	/* Lookup by the 8.3 alias and without case. */
	{
		char alias[16];
		uint64_t i1 = 0, i2 = 0;

		alias_of(img, mixed, alias);
		if (!mnt_open(&m, img, 0, NULL, NULL)) {
			CHECK("alias lookup", !lookup_path(&m, alias, &i1) &&
						      i1 == mixed);
			CHECK("caseless lookup",
			      !lookup_path(&m, "MIXED case name.txt", &i2) &&
				      i2 == mixed);
			CHECK("no such name",
			      lookup_path(&m, "nothing here", &i2) == -ENOENT);
			mnt_close(&m);
		}

		/* A broken checksum: the 8.3 name shows. */
		read_img(img, mixed * 32 - 32, b, 32);
		b[13] ^= 0x55;
		unit_poke(img, mixed * 32 - 32, b, 32);
		list(img, "", 0, &l);
		CHECK("bad checksum falls back", names_has(&l, alias) &&
					!names_has(&l, "Mixed Case Name.TXT"));
		b[13] ^= 0x55;
		unit_poke(img, mixed * 32 - 32, b, 32);
	}

	/* LONG_NAME has 4 parts: 0x44 0x03 0x02 0x01, then the 8.3 entry.
	 * A gap: 0x03 becomes 0x02. */
	read_img(img, lng * 32 - 4 * 32, b, 32);
	CHECK("4 parts", b[0] == 0x44 && b[11] == 0x0f);
	read_img(img, lng * 32 - 3 * 32, b, 32);
	CHECK("part 3", b[0] == 0x03);
	unit_poke(img, lng * 32 - 3 * 32, "\x02", 1);
	list(img, "", 0, &l);
	{
		char alias[16];

		alias_of(img, lng, alias);
		CHECK("sequence gap falls back",
		      !names_has(&l, LONG_NAME) && names_has(&l, alias));
	}
	unit_poke(img, lng * 32 - 3 * 32, "\x03", 1);

	/* A surrogate pair: units 1 and 2 (" r", in the last part, which
	 * holds units 0..12) become U+1F600; then an unpaired one. */
	read_img(img, lng * 32 - 32, b, 32);
	CHECK("part 1", b[0] == 0x01);
	unit_poke(img, lng * 32 - 32 + 3, "\x3d\xd8\x00\xde", 4);
	list(img, "", 0, &l);
	CHECK("surrogate pair",
	      names_has(&l, "a\xf0\x9f\x98\x80" "ather long file name with "
				"many parts.data"));
	unit_poke(img, lng * 32 - 32 + 3, "\x3d\xd8", 2);
	unit_poke(img, lng * 32 - 32 + 5, "r\0", 2);
	list(img, "", 0, &l);
	CHECK("unpaired surrogate dropped",
	      names_has(&l, "arather long file name with many parts.data"));
	unlink(img);
}

/* ---- attributes ---- */

static void test_attrs(const char *base)
{
	char img[300], val[64];
	struct vd_fs_opts o = { .uid = 1234, .gid = 567 };
	struct vd_fs_attr a;
	struct mnt m;
	uint64_t ino;
	size_t len;

	snprintf(img, sizeof(img), "%s/attrs.img", scratch);
	copy(base, img);
	SH("MTOOLS_SKIP_CHECK=1 mattrib -i %s -a +r ::/lower.txt", img);
	SH("MTOOLS_SKIP_CHECK=1 mattrib -i %s -a +h +s ::/UPPER.TXT", img);
	SH("MTOOLS_SKIP_CHECK=1 mattrib -i %s -a ::/empty", img);
	if (mnt_open(&m, img, 0, &o, NULL)) {
		CHECK("attrs mount", false);
		return;
	}
	CHECK("ro mode", !lookup_path(&m, "lower.txt", &ino) &&
				 !m.ops->getattr(m.fs, ino, &a) &&
				 a.mode == (S_IFREG | 0444) && a.uid == 1234 &&
				 a.gid == 567);
	CHECK("ro xattr", !m.ops->getxattr(m.fs, ino, "user.fat.attrib", val,
					   sizeof(val), &len) &&
				  len == 8 && !memcmp(val, "readonly", 8));
	CHECK("hs xattr", !lookup_path(&m, "UPPER.TXT", &ino) &&
				  !m.ops->getxattr(m.fs, ino,
						   "user.fat.attrib", val,
						   sizeof(val), &len) &&
				  len == 13 && !memcmp(val, "hidden,system", 13));
	/* read by name only: listed by no file, as the kernel's vfat */
	CHECK("xattr not listed", !m.ops->listxattr(m.fs, ino, val,
						    sizeof(val), &len) &&
					  len == 0);
	CHECK("acl probe", m.ops->getxattr(m.fs, ino,
					   "system.posix_acl_access", val,
					   sizeof(val), &len) == -EOPNOTSUPP &&
				   m.ops->getxattr(m.fs, ino, "security.selinux",
						   val, sizeof(val),
						   &len) == -EOPNOTSUPP &&
				   m.ops->getxattr(m.fs, ino, "user.other", val,
						   sizeof(val),
						   &len) == -ENODATA);
	CHECK("no attrs", !lookup_path(&m, "empty", &ino) &&
				  m.ops->getxattr(m.fs, ino, "user.fat.attrib",
						  val, sizeof(val),
						  &len) == -ENODATA &&
				  !m.ops->listxattr(m.fs, ino, val, sizeof(val),
						    &len) &&
				  len == 0);
	CHECK("archive", !lookup_path(&m, "random.bin", &ino) &&
				 !m.ops->getxattr(m.fs, ino, "user.fat.attrib",
						  val, sizeof(val), &len) &&
				 len == 7 && !memcmp(val, "archive", 7));
	CHECK("readlink", m.ops->readlink(m.fs, ino, val, 64) == -EINVAL);
	CHECK("root uid", !m.ops->getattr(m.fs, 1, &a) && a.uid == 1234);
	CHECK("open dir", !lookup_path(&m, "sub", &ino) &&
				  m.ops->open(m.fs, ino, &(struct vd_fs_file *){
							 NULL }) == -EISDIR);
	CHECK("bad ino", m.ops->getattr(m.fs, 12345678, &a) == -ENOENT);
	mnt_close(&m);
	unlink(img);
}

/* readdir resumed from its cookies, 7 entries per call. */
static void test_resume(const char *img)
{
	static struct names all, part;
	struct mnt m;
	uint64_t ino, cookie = 0;
	bool same = true;

	if (mnt_open(&m, img, 0, NULL, NULL) ||
	    lookup_path(&m, "many", &ino)) {
		CHECK("resume mount", false);
		return;
	}
	all.n = part.n = 0;
	all.stop_after = 0;
	m.ops->readdir(m.fs, ino, 0, names_fill, &all);
	part.stop_after = 7;
	/* Ends: every call adds 7 entries or reaches the end. */
	for (;;) {
		size_t before = part.n;

		m.ops->readdir(m.fs, ino, cookie, names_fill, &part);
		if (part.n == before)
			break;
		cookie = part.next[part.n - 1];
	}
	for (size_t i = 0; i < all.n && same; i++)
		same = i < part.n && !strcmp(all.name[i], part.name[i]) &&
		       all.ino[i] == part.ino[i];
	CHECK("resume", same && all.n == part.n && all.n == 302);
	/* ".." of many is the root; of sub/deeper, sub. */
	CHECK("dotdot", all.ino[1] == 1);
	{
		uint64_t sub, deeper, up;

		CHECK("dotdot lookup", !lookup_path(&m, "sub", &sub) &&
					       !lookup_path(&m, "sub/deeper",
							    &deeper) &&
					       !m.ops->lookup(m.fs, deeper,
							      "..", &up) &&
					       up == sub);
	}
	mnt_close(&m);
	/* A fresh mount has no parent map: ".." is found on disk. */
	if (!mnt_open(&m, img, 0, NULL, NULL)) {
		uint64_t sub = ino_of(img, "sub"), deeper = 0, up = 0;

		deeper = ino_of(img, "sub/deeper");
		CHECK("dotdot from disk", !m.ops->lookup(m.fs, deeper, "..",
							 &up) &&
						  up == sub);
		mnt_close(&m);
	}
}

/* ---- volumes at an offset, fragmented files ---- */

static void test_offset(const char *base)
{
	char img[300];
	struct mnt m;
	int before = tree_fails;

	snprintf(img, sizeof(img), "%s/offset.img", scratch);
	SH("rm -f %s && truncate -s 1M %s && cat %s >>%s && truncate -s +3M "
	   "%s", img, img, base, img, img);
	if (mnt_open(&m, img, 1 << 20, NULL, NULL)) {
		CHECK("offset mount", false);
		return;
	}
	compare_dir(&m, "", 1);
	CHECK("offset tree", tree_fails == before);
	mnt_close(&m);
	unlink(img);
}

static void test_fragmented(void)
{
	char img[300], msg[1100];
	struct mnt m;
	struct vfat_run *runs;
	size_t nruns, len;
	uint64_t ino, count;
	static uint8_t buf[sizeof(rnd)];

	snprintf(img, sizeof(img), "%s/frag.img", scratch);
	SH("rm -f %s && mkfs.vfat -C -F 12 -s 1 %s 2000 >/dev/null", img,
	   img);
	put_file("../a.bin", rnd, 20000);
	put_file("../b.bin", rnd + 1, 20000);
	put_file("../c.bin", rnd + 2, 20000);
	put_file("../d.bin", rnd, sizeof(rnd));
	SH("cd %s && MTOOLS_SKIP_CHECK=1 mcopy -i %s a.bin b.bin c.bin :: && "
	   "MTOOLS_SKIP_CHECK=1 mdel -i %s ::/b.bin && MTOOLS_SKIP_CHECK=1 "
	   "mcopy -i %s d.bin ::", scratch, img, img, img);
	if (mnt_open(&m, img, 0, NULL, msg) || lookup_path(&m, "d.bin", &ino)) {
		CHECK("frag mount", false);
		return;
	}
	CHECK("frag bytes", !read_all(&m, ino, buf, sizeof(buf), &len) &&
				    len == sizeof(rnd) &&
				    !memcmp(buf, rnd, len));
	{
		struct geo g = geo_of(img, 12);
		uint32_t c = first_cluster(img, &g, ino), odd = 0;

		CHECK("frag chain",
		      !vd_vfat_chain((struct vfat_fs *)m.fs, c, UINT64_MAX,
				     "test", ino, &runs, &nruns, &count) &&
			      nruns >= 2 &&
			      count == (sizeof(rnd) + 511) / 512);
		/* The chain uses odd entries that straddle FAT sectors
		 * (entry 341 is at bytes 511-512, 1023 at 1534-1535...). */
		for (size_t i = 0; i < nruns; i++)
			for (uint32_t k = 0; k < runs[i].n; k++) {
				uint32_t e = runs[i].first + k;
				uint64_t off = e + e / 2;

				if ((e & 1) && off % 512 == 511)
					odd++;
			}
		CHECK("straddling entries", odd >= 1);
		free(runs);
	}
	mnt_close(&m);
	unlink(img);
}

/* ---- hostile volumes ---- */

static int read_file(const char *img, const char *rel, size_t *len_r)
{
	static uint8_t buf[sizeof(rnd) + 1];
	struct mnt m;
	uint64_t ino;
	int ret;

	if (mnt_open(&m, img, 0, NULL, NULL))
		return -ENODEV;
	ret = lookup_path(&m, rel, &ino);
	if (!ret)
		ret = read_all(&m, ino, buf, sizeof(buf), len_r);
	mnt_close(&m);
	return ret;
}

static void test_chains(const char *base, unsigned bits, const char *tag)
{
	char img[300], name[64];
	struct geo g;
	uint64_t ino;
	uint32_t c1, c2, c3, last;
	size_t len;

	snprintf(img, sizeof(img), "%s/chain.img", scratch);
	copy(base, img);
	g = geo_of(img, bits);
	ino = ino_of(img, "random.bin");
	c1 = first_cluster(img, &g, ino);
	c2 = fat_get(img, &g, c1);
	c3 = fat_get(img, &g, c2);
	last = c3;
	/* Ends: the tool wrote a finite chain (and i bounds it anyway). */
	for (uint32_t v, i = 0; i < 100000; i++) {
		v = fat_get(img, &g, last);
		if (v < 2 || v >= (bits == 12 ? 0xff8u :
				   bits == 16 ? 0xfff8u : 0x0ffffff8u))
			break;
		last = v;
	}
	CHECK("chain made", c1 >= 2 && c2 >= 2 && c3 >= 2);

	snprintf(name, sizeof(name), "%s loop", tag);
	fat_set(img, &g, c3, c2);
	CHECK(name, read_file(img, "random.bin", &len) == -EIO);
	snprintf(name, sizeof(name), "%s loop in the tail", tag);
	copy(base, img);
	fat_set(img, &g, last, c1);
	CHECK(name, read_file(img, "random.bin", &len) == -EIO);
	snprintf(name, sizeof(name), "%s past the FAT", tag);
	copy(base, img);
	fat_set(img, &g, c2, bits == 12 ? 0xff0 : bits == 16 ? 0xfff0 :
							       0x0ffffff0);
	CHECK(name, read_file(img, "random.bin", &len) == -EIO);
	snprintf(name, sizeof(name), "%s free in a chain", tag);
	fat_set(img, &g, c2, 0);
	CHECK(name, read_file(img, "random.bin", &len) == -EIO);
	snprintf(name, sizeof(name), "%s chain shorter than size", tag);
	fat_set(img, &g, c2, 0x0fffffff);
	CHECK(name, read_file(img, "random.bin", &len) == -EIO);
	snprintf(name, sizeof(name), "%s others still read", tag);
	CHECK(name, !read_file(img, "sub/deeper/tiny.txt", &len) && len == 1);
	unlink(img);
}

static void test_bpb(const char *base)
{
	char img[300], msg[1100];
	struct mnt m;

	snprintf(img, sizeof(img), "%s/bpb.img", scratch);
	copy(base, img);
	unit_poke(img, 13, "\x00", 1);
	CHECK("spc 0", mnt_open(&m, img, 0, NULL, msg) == -EUCLEAN);
	CHECK_MSG("spc 0", msg, "sectors per cluster 0");
	copy(base, img);
	unit_poke(img, 11, "\x2c\x01", 2); /* 300 */
	CHECK("bps 300", mnt_open(&m, img, 0, NULL, msg) == -EUCLEAN);
	CHECK_MSG("bps 300", msg, "bytes per sector 300");
	copy(base, img);
	unit_poke(img, 16, "\x00", 1);
	CHECK("no FATs", mnt_open(&m, img, 0, NULL, msg) != 0);
	copy(base, img);
	unit_poke(img, 0, "\x00\x00\x00", 3);
	CHECK("no jump: not FAT", mnt_open(&m, img, 0, NULL, msg) == -ENODEV);
	unlink(img);
}

/* sub/deeper's cluster filled with live entries to its end: no entry
 * ends the directory, the chain does. */
static void test_full_dir(const char *base, unsigned bits)
{
	static struct names l;
	char img[300];
	struct geo g;
	uint8_t de[32];
	uint64_t ino, at;
	uint32_t cl;
	unsigned n = 0;

	snprintf(img, sizeof(img), "%s/full.img", scratch);
	copy(base, img);
	g = geo_of(img, bits);
	ino = ino_of(img, "sub/deeper");
	cl = first_cluster(img, &g, ino);
	CHECK("full dir one cluster", fat_get(img, &g, cl) >= 0xff8);
	at = g.data_off + (uint64_t)(cl - 2) * g.csize;
	for (unsigned i = 0; i < g.csize / 32; i++) {
		read_img(img, at + i * 32, de, 32);
		if (de[0])
			continue;
		memset(de, 0, 32);
		snprintf((char *)de, 12, "F%07u   ", i);
		memcpy(de + 8, "BIN", 3);
		de[11] = 0x20;
		unit_poke(img, at + i * 32, de, 32);
		n++;
	}
	list(img, "sub/deeper", 0, &l);
	snprintf((char *)de, 16, "F%07u.BIN", g.csize / 32 - 1);
	CHECK("full dir lists", n > 0 && l.n == 3 + n &&
					names_has(&l, "tiny.txt") &&
					names_has(&l, (char *)de));
	unlink(img);
}

/* Our code page 437 table against glibc's. */
static void test_cp437(void)
{
	struct vfat_fs f;
	struct vd_err e;
	bool same = true;

	memset(&f, 0, sizeof(f));
	f.name = "cp";
	if (vd_vfat_cp_init(&f, 437, &e)) {
		CHECK("cp437 init", false);
		return;
	}
	for (unsigned b = 0x80; b < 0x100 && same; b++) {
		char cmd[128], want[16] = "", got[16];
		uint8_t c = (uint8_t)b;
		FILE *p;

		snprintf(cmd, sizeof(cmd),
			 "printf '\\%03o' | iconv -f CP437 -t UTF-8", b);
		p = popen(cmd, "r");
		if (!p || !fgets(want, sizeof(want), p))
			same = false;
		if (p)
			pclose(p);
		vd_vfat_cp_decode(&f, &c, 1, got);
		if (strcmp(want, got)) {
			printf("# cp437 0x%02x: %s vs iconv %s\n", b, got, want);
			same = false;
		}
	}
	CHECK("cp437 table", same);
	CHECK("cp supported", vd_vfat_cp_supported(850) &&
				      vd_vfat_cp_supported(932) &&
				      !vd_vfat_cp_supported(1252));
	vd_vfat_cp_fini(&f);
}

int main(void)
{
	char img[300], fat12[300] = "", fat16[300] = "", fat32[300] = "";

	if (!mkdtemp(scratch))
		unit_die("mkdtemp");
	make_source();
	test_cp437();
	for (size_t i = 0; i < VD_ARRAY_SIZE(cfgs); i++) {
		snprintf(img, sizeof(img), "%s/%s.img", scratch, cfgs[i].name);
		make_image(img, cfgs[i].mkfs, cfgs[i].kib);
		check_cfg(&cfgs[i], img);
		if (!strcmp(cfgs[i].name, "fat12-512"))
			snprintf(fat12, sizeof(fat12), "%s", img);
		else if (!strcmp(cfgs[i].name, "fat16-2k"))
			snprintf(fat16, sizeof(fat16), "%s", img);
		else if (!strcmp(cfgs[i].name, "fat32-512"))
			snprintf(fat32, sizeof(fat32), "%s", img);
		else
			unlink(img);
	}
	test_boundaries();
	test_parallel(fat32);
	test_names(fat16);
	test_attrs(fat12);
	test_resume(fat32);
	test_offset(fat16);
	test_fragmented();
	test_chains(fat12, 12, "fat12");
	test_chains(fat16, 16, "fat16");
	test_chains(fat32, 32, "fat32");
	test_bpb(fat16);
	test_full_dir(fat12, 12);
	test_full_dir(fat32, 32);
	run("rm -rf %s", scratch);
	return unit_done();
}
