/* Unit test: the ext2/3/4 driver against the directory mkfs.ext4 -d built
 * each volume from, in several layouts (ext2 with 1 KiB blocks and block
 * maps, ext3, ext4 with 4 KiB and 64 KiB blocks, bigalloc, inline data,
 * no metadata_csum). The tree is walked through the driver and compared
 * with the source (type, size, bytes, link target, mode, owner, mtime,
 * device numbers, xattrs and ACLs, hard links); readdir is resumed from
 * its cookies in small steps over 10,000 entries; 8 threads read at once;
 * SEEK_DATA/SEEK_HOLE are compared with the host's answer on the source;
 * one layout is mounted at an offset inside a bigger file. Then damaged
 * copies (made with libext2fs or by poking a byte) must fail cleanly. */
/* Paths here live under a short mkdtemp folder; GCC cannot know that. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "common/util.h"
#include "core/disk.h"
#include "fsread/fs.h"
#include "tests/unit/unit.h"

extern const struct vd_fs_ops vd_fs_ext;

#define BIGDIR_N 10000
#define SPARSE_SIZE (5ull << 30) /* past 4 GiB */

static char scratch[] = "/tmp/vd-ext-test.XXXXXX";
static char src[4200];

struct cfg {
	const char *name;
	const char *mkfs; /* options for mkfs.ext4 */
	bool bigdir;	  /* the 10,000-entry directory */
	bool nsec;	  /* inodes large enough for nanoseconds */
	/* mkfs.ext4 1.47.0 -d -O inline_data copies a sparse file wrongly
	 * (the kernel shows the same wrong file): skip it there. */
	bool bad_sparse;
};

static const struct cfg cfgs[] = {
	{ "ext2-1k", "-t ext2 -b 1024", true, true, false },
	{ "ext3-4k", "-t ext3 -b 4096 -I 128", false, false, false },
	{ "ext4-4k", "-t ext4 -b 4096", true, true, false },
	{ "ext4-64k", "-t ext4 -b 65536", false, true, false },
	{ "ext4-bigalloc", "-t ext4 -O bigalloc -C 16384", false, true,
	  false },
	{ "ext4-inline", "-t ext4 -O inline_data -I 512", false, true,
	  true },
	{ "ext4-nocsum", "-t ext4 -O ^metadata_csum,^64bit", false, true,
	  false },
};

static void put_file(const char *rel, const void *data, size_t len, off_t at)
{
	char p[4400];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", src, rel);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || pwrite(fd, data, len, at) != (ssize_t)len)
		unit_die(p);
	close(fd);
}

static void sh(const char *cmd)
{
	if (system(cmd))
		fprintf(stderr, "command failed: %s\n", cmd), exit(2);
}

/* The source tree every layout is built from. */
static void make_source(void)
{
	static uint8_t rnd[3 << 20];
	char p[4400];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* A POSIX ACL in the xattr format: user::rwx user:1234:r-x
	 * group::r-x mask::r-x other::--- */
	static const uint8_t acl[] = {
		2, 0, 0, 0,			       /* version */
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,    /* USER_OBJ */
		2, 0, 5, 0, 0xd2, 0x04, 0, 0,	       /* USER 1234 */
		4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,    /* GROUP_OBJ */
		0x10, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, /* MASK */
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, /* OTHER */
	};
	struct timespec ts[2] = { { 1000000000, 123456789 },
				  { 1234567890, 987654321 } };
	unsigned seed = 1;
	int fd;

	snprintf(src, sizeof(src), "%s/src", scratch);
	if (mkdir(src, 0755))
		unit_die(src);
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(rand_r(&seed) >> 7);
	put_file("hello", "hello, world\n", 13, 0);
	put_file("empty", "", 0, 0);
	put_file("random", rnd, sizeof(rnd) - 12345, 0);
	put_file("tiny", "abc", 3, 0);
	/* Holes: data at 1 MiB and at 4.5 GiB of a 5 GiB file. */
	put_file("sparse", rnd, 65536, 1 << 20);
	put_file("sparse", rnd + 65536, 4096, (off_t)4608 << 20);
	snprintf(p, sizeof(p), "%s/sparse", src);
	if (truncate(p, (off_t)SPARSE_SIZE))
		unit_die(p);
	snprintf(p, sizeof(p), "%s/hello", src);
	if (utimensat(AT_FDCWD, p, ts, 0))
		unit_die(p);
	if (setxattr(p, "user.colour", "blue", 4, 0) ||
	    setxattr(p, "trusted.t", "tt", 2, 0) ||
	    setxattr(p, "security.s", "secret", 6, 0) ||
	    setxattr(p, "system.posix_acl_access", acl, sizeof(acl), 0))
		unit_die("setxattr");
	snprintf(p, sizeof(p), "%s/link2", src);
	{
		char h[4400];

		snprintf(h, sizeof(h), "%s/random", src);
		if (link(h, p))
			unit_die(p);
	}
	snprintf(p, sizeof(p), "%s/fast", src);
	if (symlink("hello", p))
		unit_die(p);
	{
		char t[300];

		memset(t, 'x', 200);
		memcpy(t, "/some/long/", 11);
		t[200] = '\0';
		snprintf(p, sizeof(p), "%s/slow", src);
		if (symlink(t, p))
			unit_die(p);
	}
	snprintf(p, sizeof(p), "%s/sub", src);
	if (mkdir(p, 0750))
		unit_die(p);
	put_file("sub/owned", "owned\n", 6, 0);
	snprintf(p, sizeof(p), "%s/sub/owned", src);
	if (chown(p, 70000, 5678) || chmod(p, 04751))
		unit_die(p);
	snprintf(p, sizeof(p), "%s/sub/chr", src);
	if (mknod(p, S_IFCHR | 0600, makedev(4, 5)))
		unit_die(p);
	snprintf(p, sizeof(p), "%s/sub/blk", src);
	if (mknod(p, S_IFBLK | 0600, makedev(300, 70000)))
		unit_die(p);
	snprintf(p, sizeof(p), "%s/sub/fifo", src);
	if (mkfifo(p, 0644))
		unit_die(p);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sub/sock", src);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		unit_die("bind");
	close(fd);
	snprintf(p, sizeof(p), "%s/sub/deeper", src);
	if (mkdir(p, 0700))
		unit_die(p);
	put_file("sub/deeper/x", "x", 1, 0);
	snprintf(p, sizeof(p), "%s/big", src);
	if (mkdir(p, 0755))
		unit_die(p);
}

/* A file of more extents than one map window holds (8192): 10,000
 * pieces of 100 bytes, one every 8 KiB. */
static void make_frag(bool on)
{
	char p[4400], piece[100];

	snprintf(p, sizeof(p), "%s/frag", src);
	unlink(p);
	if (!on)
		return;
	for (unsigned i = 0; i < 10000; i++) {
		memset(piece, 'a' + i % 26, sizeof(piece));
		memcpy(piece, &i, sizeof(i));
		put_file("frag", piece, sizeof(piece), (off_t)i * 8192);
	}
}

static void make_bigdir(bool on)
{
	char p[4400];

	snprintf(p, sizeof(p), "%s/big/f00000", src);
	if (on && access(p, F_OK) == 0)
		return;
	for (unsigned i = 0; i < BIGDIR_N; i++) {
		snprintf(p, sizeof(p), "%s/big/f%05u-%s", src, i,
			 i % 7 ? "a-longer-name-to-fill-blocks" : "s");
		if (on) {
			int fd = open(p, O_WRONLY | O_CREAT, 0644);

			if (fd < 0)
				unit_die(p);
			close(fd);
		} else {
			unlink(p);
		}
	}
}

/* ---- the mounted volume ---- */

static struct vd_disk *disk;
static struct vd_vol *vol;
static struct vd_fs *fs;
static const struct vd_fs_ops *ops = &vd_fs_ext;
static char where[128];

static int mount_image(const char *img, uint64_t start, uint64_t len,
		       struct vd_err *e)
{
	struct vd_open_opts o = { .format = "raw" };
	int ret = vd_disk_open(img, &o, &disk, e);

	if (ret)
		return ret;
	vol = vd_vol_new_disk_range(disk, start,
				    len ? len : vd_disk_size(disk) - start,
				    "test-vol");
	if (!vol || !ops->probe(vol)) {
		vd_vol_free(vol);
		vd_disk_close(disk);
		snprintf(e->msg, sizeof(e->msg), "probe said no");
		return -ENODEV;
	}
	ret = ops->mount(vol, &(struct vd_fs_opts){ 0 }, &fs, e);
	if (ret) {
		vd_vol_free(vol);
		vd_disk_close(disk);
	}
	return ret;
}

static void unmount_image(void)
{
	ops->unmount(fs);
	vd_vol_free(vol);
	vd_disk_close(disk);
}

static int lookup_path(const char *rel, uint64_t *ino_r)
{
	char buf[4400], *save, *tok;
	uint64_t ino = ops->root(fs);
	int ret;

	snprintf(buf, sizeof(buf), "%s", rel);
	for (tok = strtok_r(buf, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		ret = ops->lookup(fs, ino, tok, &ino);
		if (ret)
			return ret;
	}
	*ino_r = ino;
	return 0;
}

/* readdir in steps of `step` entries, resuming from the cookies. */
struct names {
	char **v;
	uint64_t *ino;
	unsigned *type;
	size_t n, cap;
	unsigned left; /* entries this call may still take */
	uint64_t next;
};

static int names_fill(void *arg, const char *name, uint64_t ino,
		      unsigned type, uint64_t next)
{
	struct names *l = arg;

	if (!l->left)
		return 1;
	l->left--;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		l->ino = realloc(l->ino, l->cap * sizeof(*l->ino));
		l->type = realloc(l->type, l->cap * sizeof(*l->type));
	}
	l->v[l->n] = strdup(name);
	l->ino[l->n] = ino;
	l->type[l->n] = type;
	l->n++;
	l->next = next;
	return 0;
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->ino);
	free(l->type);
	memset(l, 0, sizeof(*l));
}

static int list_dir(uint64_t dir, unsigned step, struct names *l)
{
	uint64_t cookie = 0;
	int ret;

	/* Ends: each call adds entries, or the directory is done. */
	for (unsigned calls = 0; calls < 100000; calls++) {
		size_t before = l->n;

		l->left = step;
		ret = ops->readdir(fs, dir, cookie, names_fill, l);
		if (ret)
			return ret;
		if (l->n == before)
			return 0;
		cookie = l->next;
	}
	return -ELOOP;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- comparing with the source ---- */

static int fails, fails_shown;

#define EXPECT(name, cond)                                                 \
	do {                                                               \
		if (!(cond)) {                                             \
			fails++;                                           \
			if (fails_shown++ < 20)                                \
				printf("  %s: %s: %s\n", where, name, #cond); \
		}                                                          \
	} while (0)

/* [off, off + n) of f put together from ops->map's pieces, at most max
 * a call, into a: 1, 0 when a piece breaks a rule, -1 when the file
 * cannot be mapped (inline data). */
static int read_by_map(struct vd_fs_file *f, uint8_t *a, size_t n,
		       uint64_t off, unsigned max)
{
	size_t pos = 0;

	while (pos < n) {
		struct vd_fs_piece p[8];
		size_t got, sum = 0;
		unsigned np;
		int ret = ops->map(f, off + pos, n - pos, p, max, &np, &got);

		if (ret == -EOPNOTSUPP)
			return -1;
		if (ret || !got || got > n - pos || !np || np > max)
			return 0;
		for (unsigned i = 0; i < np; i++) {
			const struct vd_fs_piece *q = &p[i], *last = q - 1;

			if (!q->len || q->len > got - sum)
				return 0;
			if (i && last->zero == q->zero &&
			    (q->zero || last->vol_off + last->len == q->vol_off))
				return 0; /* touching pieces not merged */
			if (q->zero)
				memset(a + pos + sum, 0, q->len);
			else if (vd_vol_read(vol, a + pos + sum, q->len,
					     q->vol_off))
				return 0;
			sum += q->len;
		}
		if (sum != got)
			return 0;
		pos += got;
	}
	return 1;
}

static void compare_content(const char *path, uint64_t ino, uint64_t size)
{
	static uint8_t a[1 << 20], b[1 << 20];
	struct vd_fs_file *f;
	int fd = open(path, O_RDONLY), ret;
	uint64_t off = 0;
	size_t got;

	ret = ops->open(fs, ino, &f);
	EXPECT("open", !ret && fd >= 0);
	if (ret || fd < 0)
		goto out;
	/* Odd-sized reads that straddle blocks; skip the big holes. */
	while (off < size) {
		size_t n = (size_t)VD_MIN(size - off, 777777);
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);

		if (d < 0) {
			d = (off_t)size;
		}
		if ((uint64_t)d > off + n) {
			/* All hole here: check a little of it, jump on. */
			n = 4096 < n ? 4096 : n;
			ret = ops->read(f, a, n, off, &got);
			EXPECT("read hole", !ret && got == n);
			for (size_t i = 0; i < n; i++)
				if (a[i]) {
					EXPECT("hole reads as zeros", 0);
					break;
				}
			off = (uint64_t)d & ~(uint64_t)4095;
			continue;
		}
		ret = ops->read(f, a, n, off, &got);
		EXPECT("read", !ret && got == n);
		EXPECT("pread", pread(fd, b, n, (off_t)off) == (ssize_t)n);
		EXPECT("bytes", !memcmp(a, b, n));
		if (ret || memcmp(a, b, n))
			break;
		/* The same bytes from the map, in 1 to 5 pieces a call. */
		memset(a, 0xee, n);
		ret = read_by_map(f, a, n, off, 1 + (unsigned)(off / 4096 % 5));
		EXPECT("map", ret != 0);
		if (ret > 0)
			EXPECT("map bytes", !memcmp(a, b, n));
		off += n;
	}
	ret = ops->read(f, a, 10, size, &got);
	EXPECT("read at eof", !ret && got == 0);
	{
		struct vd_fs_piece p[2];
		unsigned np = 9;

		ret = ops->map(f, size, 10, p, 2, &np, &got);
		EXPECT("map at eof", (!ret && got == 0 && np == 0) ||
					     ret == -EOPNOTSUPP);
	}
	/* SEEK_DATA / SEEK_HOLE against the host's answer for the
	 * source: data written in 64 KiB-aligned pieces, so both agree
	 * whatever the block size; frag's 100-byte pieces only when both
	 * have 4 KiB blocks. */
	{
		struct statvfs st;

		if (strstr(path, "/frag") &&
		    (ops->statfs(fs, &st) || st.f_bsize != 4096))
			size = 0;
	}
	for (uint64_t at = 0; size && at < size; at += size / 7 + 1) {
		uint64_t ours;
		off_t host = lseek(fd, (off_t)at, SEEK_DATA);

		ret = ops->seek(f, at, true, &ours);
		if (host < 0)
			EXPECT("seek data none", ret == -ENXIO);
		else
			EXPECT("seek data", !ret && ours == (uint64_t)host);
		host = lseek(fd, (off_t)at, SEEK_HOLE);
		ret = ops->seek(f, at, false, &ours);
		EXPECT("seek hole", !ret && ours == (uint64_t)host);
	}
	ops->release(f);
out:
	if (fd >= 0)
		close(fd);
}

static void compare_xattrs(const char *path, uint64_t ino)
{
	char hl[4096], ol[4096], hv[4096], ov[4096];
	ssize_t hn = llistxattr(path, hl, sizeof(hl));
	size_t on = 0, len;
	int ret = ops->listxattr(fs, ino, ol, sizeof(ol), &on);

	EXPECT("listxattr", !ret && hn >= 0);
	if (ret || hn < 0)
		return;
	/* Same set of names (the host may order them otherwise). */
	for (ssize_t i = 0; i < hn; i += (ssize_t)strlen(hl + i) + 1) {
		bool found = false;
		ssize_t vn;

		for (size_t j = 0; j < on; j += strlen(ol + j) + 1)
			found |= !strcmp(hl + i, ol + j);
		EXPECT(hl + i, found);
		vn = lgetxattr(path, hl + i, hv, sizeof(hv));
		ret = ops->getxattr(fs, ino, hl + i, ov, sizeof(ov), &len);
		EXPECT("getxattr", !ret && vn >= 0 && len == (size_t)vn &&
					   !memcmp(hv, ov, len));
		ret = ops->getxattr(fs, ino, hl + i, NULL, 0, &len);
		EXPECT("getxattr size", !ret && len == (size_t)vn);
		if (vn > 0)
			EXPECT("getxattr ERANGE",
			       ops->getxattr(fs, ino, hl + i, ov, 1, &len) ==
				       -ERANGE);
	}
	EXPECT("listxattr length", on == (size_t)hn);
	EXPECT("no system.data", ops->getxattr(fs, ino, "system.data", ov,
					       sizeof(ov), &len) == -ENODATA);
}

/* Walk dir (rel to the source root) and compare everything. */
static void compare_tree(const char *rel, uint64_t dir, const struct cfg *c,
			 uint64_t *hardlink_ino)
{
	char path[4400];
	struct names l = { 0 };
	DIR *d;
	struct dirent *de;
	size_t nsrc = 0;

	snprintf(path, sizeof(path), "%s/%s", src, rel);
	EXPECT("readdir", !list_dir(dir, 5, &l));
	d = opendir(path);
	if (!d)
		unit_die(path);
	while ((de = readdir(d))) {
		char sp[4400], srel[4400];
		struct stat st;
		struct vd_fs_attr a;
		uint64_t ino = 0;
		bool listed = false;

		nsrc++;
		for (size_t i = 0; i < l.n; i++)
			if (!strcmp(l.v[i], de->d_name)) {
				listed = true;
				ino = l.ino[i];
			}
		snprintf(where, sizeof(where), "%s/%s", rel, de->d_name);
		EXPECT("listed", listed);
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strcmp(rel, ".") && (!strcmp(de->d_name, "lost+found") ||
					  (c->bad_sparse &&
					   !strcmp(de->d_name, "sparse"))))
			continue;
		{
			uint64_t li;

			EXPECT("lookup", !ops->lookup(fs, dir, de->d_name,
						      &li) && li == ino);
		}
		snprintf(sp, sizeof(sp), "%s/%s", path, de->d_name);
		snprintf(srel, sizeof(srel), "%s/%s", rel, de->d_name);
		if (lstat(sp, &st))
			unit_die(sp);
		EXPECT("getattr", !ops->getattr(fs, ino, &a));
		EXPECT("ino", a.ino == ino);
		EXPECT("mode", a.mode == st.st_mode);
		EXPECT("uid", a.uid == st.st_uid);
		EXPECT("gid", a.gid == st.st_gid);
		if (c->nsec && !strcmp(srel, "./hello")) {
			/* Set by debugfs: nanoseconds and epoch bit 1. */
			EXPECT("mtime extra", a.mtime.tv_sec ==
						      1234567890 + (1ll << 32) &&
						      a.mtime.tv_nsec ==
							      987654321);
		} else {
			/* mkfs -d stores whole seconds. */
			EXPECT("mtime", a.mtime.tv_sec == st.st_mtim.tv_sec &&
						a.mtime.tv_nsec == 0);
		}
		EXPECT("nlink", a.nlink == st.st_nlink ||
					S_ISDIR(st.st_mode));
		if (!S_ISDIR(st.st_mode))
			EXPECT("size", a.size == (uint64_t)st.st_size);
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			EXPECT("rdev", a.rdev == st.st_rdev);
		if (!strcmp(de->d_name, "random") ||
		    !strcmp(de->d_name, "link2")) {
			if (*hardlink_ino)
				EXPECT("hard link ino", *hardlink_ino == ino);
			*hardlink_ino = ino;
		}
		if (!S_ISLNK(st.st_mode))
			compare_xattrs(sp, ino);
		if (S_ISREG(st.st_mode)) {
			compare_content(sp, ino, (uint64_t)st.st_size);
		} else if (S_ISLNK(st.st_mode)) {
			char t1[4096], t2[4096];
			ssize_t n = readlink(sp, t1, sizeof(t1) - 1);

			t1[n < 0 ? 0 : n] = '\0';
			EXPECT("readlink", !ops->readlink(fs, ino, t2,
							  sizeof(t2)) &&
						   !strcmp(t1, t2));
			EXPECT("readlink short",
			       !ops->readlink(fs, ino, t2, 3) &&
				       !strncmp(t1, t2, 2) && !t2[2]);
		} else if (S_ISDIR(st.st_mode)) {
			compare_tree(srel, ino, c, hardlink_ino);
		} else {
			struct vd_fs_file *f;

			EXPECT("open special", ops->open(fs, ino, &f) == -EINVAL);
		}
	}
	closedir(d);
	snprintf(where, sizeof(where), "%s", rel);
	/* lost+found is extra on our side of the root. */
	EXPECT("entry count", l.n == nsrc + !strcmp(rel, "."));
	{
		uint64_t x;

		EXPECT("lookup missing",
		       ops->lookup(fs, dir, "no-such-name", &x) == -ENOENT);
	}
	names_free(&l);
}

static void check_bigdir(const struct cfg *c)
{
	struct names l = { 0 };
	uint64_t dir, ino;
	char name[64];
	bool dup = false;

	snprintf(where, sizeof(where), "big");
	EXPECT("lookup big", !lookup_path("big", &dir));
	/* 37 entries per call: cookies inside blocks, thousands of calls. */
	EXPECT("list big", !list_dir(dir, 37, &l));
	EXPECT("big count", l.n == (c->bigdir ? BIGDIR_N + 2 : 2));
	qsort(l.v, l.n, sizeof(*l.v), name_cmp);
	for (size_t i = 1; i < l.n; i++)
		dup |= !strcmp(l.v[i - 1], l.v[i]);
	EXPECT("big no duplicates", !dup);
	if (c->bigdir) {
		for (unsigned i = 0; i < BIGDIR_N; i += 97) {
			snprintf(name, sizeof(name), "f%05u-%s", i,
				 i % 7 ? "a-longer-name-to-fill-blocks" : "s");
			EXPECT("big lookup", !ops->lookup(fs, dir, name, &ino));
		}
		EXPECT("big lookup missing",
		       ops->lookup(fs, dir, "f99999-s", &ino) == -ENOENT);
	}
	names_free(&l);
}

/* ---- parallel reads ---- */

static uint8_t *ref;
static size_t ref_len;
static struct vd_fs_file *shared;
static atomic_int par_bad;

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	uint8_t *buf = malloc(300000);

	for (int i = 0; buf && i < 300; i++) {
		size_t n = (size_t)rand_r(&seed) % 300000 + 1;
		uint64_t off = (uint64_t)rand_r(&seed) % ref_len;
		size_t got;

		n = (size_t)VD_MIN(n, ref_len - off);
		if (ops->read(shared, buf, n, off, &got) || got != n ||
		    memcmp(buf, ref + off, n))
			atomic_fetch_add(&par_bad, 1);
	}
	free(buf);
	return NULL;
}

static void check_parallel(const char *rel)
{
	char p[4400];
	pthread_t t[8];
	uint64_t ino;
	int fd;

	snprintf(where, sizeof(where), "parallel");
	snprintf(p, sizeof(p), "%s/%s", src, rel);
	fd = open(p, O_RDONLY);
	ref_len = (size_t)lseek(fd, 0, SEEK_END);
	ref = malloc(ref_len);
	if (fd < 0 || !ref || pread(fd, ref, ref_len, 0) != (ssize_t)ref_len)
		unit_die(p);
	close(fd);
	EXPECT("lookup", !lookup_path(rel, &ino));
	EXPECT("open", !ops->open(fs, ino, &shared));
	atomic_store(&par_bad, 0);
	for (unsigned i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)(i + 1));
	for (unsigned i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	EXPECT("8 threads read the same bytes", atomic_load(&par_bad) == 0);
	ops->release(shared);
	free(ref);
}

static void check_volume(const struct cfg *c)
{
	struct statvfs st;
	uint64_t hl = 0;

	compare_tree(".", ops->root(fs), c, &hl);
	check_bigdir(c);
	check_parallel("random");
	if (c->bigdir)
		check_parallel("frag");
	snprintf(where, sizeof(where), "statfs");
	EXPECT("statfs", !ops->statfs(fs, &st) && st.f_blocks > 0 &&
				 st.f_bfree <= st.f_blocks &&
				 st.f_namemax == 255);
}

static void run_cfg(const struct cfg *c)
{
	char cmd[9000], img[4400];
	struct vd_err e = { "" };
	int before = fails;

	fails_shown = 0;
	make_bigdir(c->bigdir);
	make_frag(c->bigdir);
	snprintf(img, sizeof(img), "%s/%s.img", scratch, c->name);
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F %s -E root_owner=0:0 -d %s %s 96M "
		 "</dev/null >/dev/null 2>&1", c->mkfs, src, img);
	sh(cmd);
	if (c->nsec) {
		/* inode offset 0x88: i_mtime_extra, nanoseconds << 2 | epoch
		 * bits (ext4 spec, "Inode Timestamps"). */
		snprintf(cmd, sizeof(cmd),
			 "debugfs -w -R 'set_inode_field /hello mtime_extra "
			 "0x%x' %s >/dev/null 2>&1", 987654321u << 2 | 1, img);
		sh(cmd);
	}
	if (mount_image(img, 0, 0, &e)) {
		printf("FAIL %s: mount: %s\n", c->name, e.msg);
		unit_failed++;
		return;
	}
	if (chdir(src))
		unit_die(src);
	check_volume(c);
	unmount_image();
	CHECK(c->name, fails == before);
	unlink(img);
}

/* ---- a volume inside a bigger file ---- */

static void check_offset(void)
{
	char cmd[9000], img[4400], big[4400];
	struct vd_err e = { "" };
	const struct cfg *c = &cfgs[2];
	int before = fails;

	make_bigdir(false);
	make_frag(false);
	snprintf(img, sizeof(img), "%s/part.img", scratch);
	snprintf(big, sizeof(big), "%s/disk.img", scratch);
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -b 4096 -d %s %s 32M >/dev/null 2>&1 && "
		 "(head -c 1048576 /dev/urandom; cat %s; head -c 65536 "
		 "/dev/urandom) > %s", src, img, img, big);
	sh(cmd);
	CHECK("offset mount", !mount_image(big, 1 << 20, 32 << 20, &e));
	if (e.msg[0])
		printf("  %s\n", e.msg);
	else {
		struct cfg nb = *c;

		nb.bigdir = false;
		nb.nsec = false; /* hello keeps whole seconds here */
		check_volume(&nb);
		unmount_image();
	}
	CHECK("offset tree", fails == before);
	/* Shifted by a block: no superblock there. */
	{
		struct vd_open_opts o = { .format = "raw" };

		if (!vd_disk_open(big, &o, &disk, &e)) {
			vol = vd_vol_new_disk_range(disk, (1 << 20) + 4096,
						    32 << 20, "shifted");
			CHECK("offset wrong start", vol && !ops->probe(vol));
			vd_vol_free(vol);
			vd_disk_close(disk);
		}
	}
	unlink(big);
}

/* ---- hostile and odd volumes ---- */

static void copy(const char *from, const char *to)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp --sparse=always %s %s", from, to);
	sh(cmd);
}

/* Change inode rel of img with libext2fs, checksums kept right so that
 * only the change is wrong: flags set_flags added; the extent header's
 * depth (offset 6: eh_depth) set when depth >= 0; i_block (60 bytes)
 * replaced when iblock is not NULL. */
static void edit_inode(const char *img, const char *rel, uint32_t set_flags,
		       int depth, const uint8_t *iblock)
{
	ext2_filsys efs;
	ext2_ino_t ino;
	struct ext2_inode in;

	if (ext2fs_open(img, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0,
			unix_io_manager, &efs) ||
	    ext2fs_namei(efs, EXT2_ROOT_INO, EXT2_ROOT_INO, rel, &ino) ||
	    ext2fs_read_inode(efs, ino, &in))
		unit_die("libext2fs edit");
	in.i_flags |= set_flags;
	if (depth >= 0)
		((uint8_t *)in.i_block)[6] = (uint8_t)depth;
	if (iblock)
		memcpy(in.i_block, iblock, sizeof(in.i_block));
	if (ext2fs_write_inode(efs, ino, &in) || ext2fs_close_free(&efs))
		unit_die("libext2fs write");
}

static uint64_t dir_block_off(const char *img, const char *rel)
{
	ext2_filsys efs;
	ext2_ino_t ino;
	blk64_t pblk;
	uint64_t off;

	if (ext2fs_open(img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &efs) ||
	    ext2fs_namei(efs, EXT2_ROOT_INO, EXT2_ROOT_INO, rel, &ino) ||
	    ext2fs_bmap2(efs, ino, NULL, NULL, 0, 0, NULL, &pblk))
		unit_die("libext2fs bmap");
	off = pblk * efs->blocksize;
	ext2fs_close_free(&efs);
	return off;
}

static void check_hostile(void)
{
	char cmd[9000], base[4400], img[4400];
	struct vd_err e = { "" };
	uint8_t b[4];
	uint64_t ino, off;
	struct names l = { 0 };
	struct vd_fs_file *f;
	char buf[64];
	size_t got;
	int ret;

	make_bigdir(false);
	snprintf(base, sizeof(base), "%s/base.img", scratch);
	snprintf(img, sizeof(img), "%s/bad.img", scratch);
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -b 1024 -O ^metadata_csum -d %s %s 16M "
		 ">/dev/null 2>&1", src, base);
	sh(cmd);

	/* Superblock offset 0: s_inodes_count, made impossible. */
	copy(base, img);
	b[0] = 0xff, b[1] = 0xff, b[2] = 0xff, b[3] = 0x7f;
	unit_poke(img, 1024 + 0, b, 4);
	ret = mount_image(img, 0, 0, &e);
	CHECK("bad inodes_count refused", ret == -EUCLEAN);
	CHECK_MSG("bad inodes_count message", e.msg, "test-vol");
	if (!ret)
		unmount_image();

	/* Offset 4: s_blocks_count past the volume. */
	copy(base, img);
	b[0] = 0, b[1] = 0, b[2] = 0, b[3] = 0x10;
	unit_poke(img, 1024 + 4, b, 4);
	e.msg[0] = '\0';
	ret = mount_image(img, 0, 0, &e);
	CHECK("blocks_count refused", ret == -EUCLEAN);
	CHECK_MSG("blocks_count message", e.msg, "block count");
	if (!ret)
		unmount_image();

	/* Offset 0x18: s_log_block_size absurd. */
	copy(base, img);
	b[0] = 40, b[1] = b[2] = b[3] = 0;
	unit_poke(img, 1024 + 0x18, b, 4);
	ret = mount_image(img, 0, 0, &e);
	CHECK("log_block_size refused", ret == -EUCLEAN);
	if (!ret)
		unmount_image();

	/* A directory entry's rec_len (offset 4) of 5 in the first entry
	 * of the directory's only block: as in the kernel, the bad entry
	 * ends the block's listing, so readdir lists nothing and lookup
	 * finds nothing. */
	copy(base, img);
	off = dir_block_off(img, "sub");
	b[0] = 5, b[1] = 0;
	unit_poke(img, off + 4, b, 2);
	ret = mount_image(img, 0, 0, &e);
	CHECK("bad rec_len mounts", !ret);
	if (!ret) {
		CHECK("bad rec_len lookup dir", !lookup_path("sub", &ino));
		l.left = 100;
		CHECK("bad rec_len readdir empty",
		      ops->readdir(fs, ino, 0, names_fill, &l) == 0 &&
			      l.n == 0);
		CHECK("bad rec_len lookup ENOENT",
		      ops->lookup(fs, ino, "owned", &ino) == -ENOENT);
		names_free(&l);
		unmount_image();
	}

	/* rec_len running past the block. */
	copy(base, img);
	b[0] = 0xf0, b[1] = 0x7f;
	unit_poke(img, off + 4, b, 2);
	if (!mount_image(img, 0, 0, &e)) {
		CHECK("long rec_len lookup dir", !lookup_path("sub", &ino));
		l.left = 100;
		CHECK("long rec_len readdir empty",
		      ops->readdir(fs, ino, 0, names_fill, &l) == 0 &&
			      l.n == 0);
		names_free(&l);
		unmount_image();
	}

	/* An extent tree claiming depth 40. */
	copy(base, img);
	edit_inode(img, "random", 0, 40, NULL);
	if (!mount_image(img, 0, 0, &e)) {
		CHECK("deep extents lookup", !lookup_path("random", &ino));
		CHECK("deep extents EIO", ops->open(fs, ino, &f) == -EIO);
		unmount_image();
	}

	/* An extent tree block whose header claims eh_max 0xffff, on a
	 * metadata_csum volume: libext2fs finds a tree block's checksum at
	 * 12 + 12 * eh_max, so the header must be refused before the
	 * checksum is looked at (found by fuzzing: a read 768 KiB past a
	 * 1 KiB buffer). The root of "random" becomes an index (depth 1)
	 * pointing at the data block of "hello", which gets the header. */
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -b 1024 -O metadata_csum -d %s %s 16M "
		 ">/dev/null 2>&1", src, img);
	sh(cmd);
	{
		static const uint8_t leaf[12] = { 0x0a, 0xf3, 1, 0, 0xff, 0xff };
		uint8_t root[60] = { 0x0a, 0xf3, 1, 0, 4, 0, 1, 0 };
		uint64_t blk = dir_block_off(img, "hello") / 1024;

		/* index entry: 0 ei_block, 4 ei_leaf_lo, 8 ei_leaf_hi */
		root[16] = (uint8_t)blk, root[17] = (uint8_t)(blk >> 8);
		root[18] = (uint8_t)(blk >> 16), root[19] = (uint8_t)(blk >> 24);
		unit_poke(img, blk * 1024, leaf, sizeof(leaf));
		edit_inode(img, "random", 0, -1, root);
	}
	ret = mount_image(img, 0, 0, &e);
	CHECK("big eh_max mounts", !ret);
	if (!ret) {
		CHECK("big eh_max lookup", !lookup_path("random", &ino));
		CHECK("big eh_max EIO", ops->open(fs, ino, &f) == -EIO);
		unmount_image();
	}

	/* fscrypt: an encrypted file is refused, not read as ciphertext. */
	copy(base, img);
	edit_inode(img, "hello", EXT4_ENCRYPT_FL, -1, NULL);
	edit_inode(img, "sub", EXT4_ENCRYPT_FL, -1, NULL);
	if (!mount_image(img, 0, 0, &e)) {
		CHECK("encrypted lookup", !lookup_path("hello", &ino));
		CHECK("encrypted open ENOKEY",
		      ops->open(fs, ino, &f) == -ENOKEY);
		CHECK("encrypted dir lookup", !lookup_path("sub", &ino));
		l.left = 100;
		CHECK("encrypted dir ENOKEY",
		      ops->readdir(fs, ino, 0, names_fill, &l) == -ENOKEY);
		names_free(&l);
		unmount_image();
	}

	/* A volume that needs journal recovery still mounts (replayed,
	 * or with a warning) and reads. */
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -b 4096 -d %s %s 16M >/dev/null 2>&1 && "
		 "debugfs -w -R 'feature needs_recovery' %s >/dev/null 2>&1",
		 src, img, img);
	sh(cmd);
	if (!mount_image(img, 0, 0, &e)) {
		CHECK("recovery lookup", !lookup_path("hello", &ino));
		CHECK("recovery read",
		      !ops->open(fs, ino, &f) &&
			      !ops->read(f, buf, sizeof(buf), 0, &got) &&
			      got == 13 && !memcmp(buf, "hello, world\n", 13));
		ops->release(f);
		unmount_image();
	} else {
		CHECK("needs_recovery mounts", 0);
		printf("  %s\n", e.msg);
	}

	/* A volume made without xattrs: an empty list and ENODATA, as the
	 * kernel gives, not EIO (libext2fs refuses to open xattrs there). */
	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -b 1024 -O ^ext_attr -d %s %s 16M "
		 ">/dev/null 2>&1", src, img);
	sh(cmd);
	if (!mount_image(img, 0, 0, &e)) {
		size_t len = 1;

		CHECK("no ext_attr lookup", !lookup_path("hello", &ino));
		CHECK("no ext_attr listxattr empty",
		      !ops->listxattr(fs, ino, buf, sizeof(buf), &len) &&
			      len == 0);
		CHECK("no ext_attr getxattr ENODATA",
		      ops->getxattr(fs, ino, "user.colour", buf, sizeof(buf),
				    &len) == -ENODATA);
		unmount_image();
	} else {
		CHECK("no ext_attr mounts", 0);
		printf("  %s\n", e.msg);
	}

	/* Not ext at all. */
	snprintf(cmd, sizeof(cmd), "head -c 1048576 /dev/zero > %s", img);
	sh(cmd);
	CHECK("zeros not probed", mount_image(img, 0, 0, &e) == -ENODEV);
	unlink(img);
	unlink(base);
}

int main(void)
{
	char cmd[200];

	if (!mkdtemp(scratch))
		unit_die("mkdtemp");
	make_source();
	for (size_t i = 0; i < VD_ARRAY_SIZE(cfgs); i++) {
		printf("%s\n", cfgs[i].name);
		fflush(stdout);
		run_cfg(&cfgs[i]);
	}
	check_offset();
	check_hostile();
	if (chdir("/"))
		unit_die("/");
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", scratch);
	sh(cmd);
	return unit_done();
}
