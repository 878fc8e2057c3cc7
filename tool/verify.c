/* vdtool verify: check an appliance against its OVF manifest.
 *
 * The manifest (DSP0243, "Manifest and certificate") is a text file
 * named as the descriptor with the extension .mf; each line names a file
 * of the appliance and its digest:
 *
 *     SHA256(disk1.vmdk)= 3f1c...
 *
 * SHA1 (OVF 1.x) and SHA256 (OVF 2.0) are checked; spaces around '=' and
 * CRLF line ends are accepted. In an OVA the files are members of the
 * tar, read in place; beside an .ovf they are files in its folder,
 * opened only when they resolve inside it (the folder rule of
 * ARCHITECTURE.md). Output, one line per file:
 *
 *     OK NAME (ALG)
 *     FAILED NAME (ALG): expected HEX, got HEX
 *     FAILED NAME (ALG): REASON            (unreadable, not a file, ...)
 *     MISSING NAME
 *     UNCHECKED NAME (ALG): REASON         (an algorithm we do not know)
 *     WARNING NAME: not in the manifest
 *     CERTIFICATE NAME: present, not checked
 *
 * then a summary line. Exit 0 only when every file the manifest lists
 * matches; a file it does not list is a warning only. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha.h"
#include "common/util.h"
#include "core/archive.h"
#include "tool/vdtool.h"

/* A manifest larger than this is refused (as an OVF descriptor is). */
#define VERIFY_MAX_MANIFEST VD_OVF_MAX_BYTES
/* Files are hashed in pieces of this size. */
#define VERIFY_CHUNK (1u << 20)

struct verify_entry {
	char *name;
	char alg_name[16];
	bool known; /* SHA1 or SHA256 */
	enum vd_sha_alg alg;
	char hex[2 * VD_SHA_MAX_LEN + 1]; /* lower case */
};

struct verify_manifest {
	struct verify_entry *e;
	unsigned n;
	unsigned bad_lines;
};

struct verify_counts {
	unsigned ok, failed, missing, unchecked;
};

/* ------------------------------------------------------------ manifest */

/* s for a terminal: control characters (escape sequences a hostile
 * manifest or archive could carry) shown as '?'. One result at a time. */
static const char *verify_safe(const char *s)
{
	static char buf[2 * PATH_MAX];
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] =
		    (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static void verify_manifest_free(struct verify_manifest *m)
{
	for (unsigned i = 0; i < m->n; i++)
		free(m->e[i].name);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* One line "ALG(name)= hex" (len bytes, no line end). 0, 1 for a line
 * that is not an entry (reported), -ENOMEM. */
static int verify_parse_line(const char *mf, unsigned lineno, char *line,
			     size_t len, struct verify_manifest *m)
{
	struct verify_entry *e, *ne;
	char *open, *close, *eq, *hex, *end;
	size_t alen, hlen;

	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
		       line[len - 1] == '\r'))
		line[--len] = '\0';
	end = line + len;
	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line)
		return 1; /* blank: nothing to say */
	open = strchr(line, '(');
	eq = strrchr(line, '=');
	if (!open || !eq || eq < open)
		goto bad;
	/* The name ends at the last ')' before the last '=': names may
	 * hold parentheses, digests never hold '='. */
	close = eq;
	while (close > open && (close[-1] == ' ' || close[-1] == '\t'))
		close--;
	if (close == open + 1 || close[-1] != ')')
		goto bad;
	close--;
	alen = (size_t)(open - line);
	hex = eq + 1;
	while (*hex == ' ' || *hex == '\t')
		hex++;
	hlen = (size_t)(end - hex);
	if (!alen || alen >= sizeof(e->alg_name) || close == open + 1 ||
	    !hlen || hlen > 2 * VD_SHA_MAX_LEN + 64)
		goto bad;
	ne = realloc(m->e, (m->n + 1) * sizeof(*m->e));
	if (!ne)
		return -ENOMEM;
	m->e = ne;
	e = &m->e[m->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->alg_name, line, alen);
	for (size_t i = 0; i < alen; i++)
		if ((unsigned char)e->alg_name[i] < 0x20 ||
		    e->alg_name[i] == 0x7f)
			e->alg_name[i] = '?';
	e->name = strndup(open + 1, (size_t)(close - open - 1));
	if (!e->name)
		return -ENOMEM;
	if (!strcasecmp(e->alg_name, "SHA1")) {
		e->known = true;
		e->alg = VD_SHA1;
	} else if (!strcasecmp(e->alg_name, "SHA256")) {
		e->known = true;
		e->alg = VD_SHA256;
	}
	if (e->known) {
		if (hlen != 2 * vd_sha_len(e->alg) ||
		    strspn(hex, "0123456789abcdefABCDEF") != hlen) {
			free(e->name);
			goto bad;
		}
		for (size_t i = 0; i < hlen; i++)
			e->hex[i] = (char)(hex[i] | 0x20);
	}
	m->n++;
	return 0;
bad:
	printf("FAILED %s line %u: not a digest line (ALG(name)= hex)\n",
	       verify_safe(mf), lineno);
	m->bad_lines++;
	return 1;
}

static int verify_parse(const char *mf, char *text, size_t len,
			struct verify_manifest *m)
{
	unsigned lineno = 0;
	size_t pos = 0;

	/* Ends: each step consumes one line, at least one byte. */
	while (pos < len) {
		char *line = text + pos;
		char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		int ret;

		lineno++;
		line[n] = '\0';
		if (memchr(line, '\0', n)) {
			printf("FAILED %s line %u: holds a NUL byte\n",
			       verify_safe(mf), lineno);
			m->bad_lines++;
		} else {
			ret = verify_parse_line(mf, lineno, line, n, m);
			if (ret < 0)
				return ret;
		}
		pos += n + 1;
	}
	return 0;
}

/* ------------------------------------------------------------ checking */

/* Digest hex of whatever read_fn yields, in VERIFY_CHUNK pieces. */
typedef int (*verify_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

static int verify_digest(enum vd_sha_alg alg, uint64_t size, verify_read_fn rd,
			 void *ctx, uint8_t *buf, char *hex)
{
	uint8_t d[VD_SHA_MAX_LEN];
	struct vd_sha s;
	uint64_t off = 0;
	int ret;

	vd_sha_init(&s, alg);
	/* Ends: off grows by n > 0 up to size. */
	while (off < size) {
		size_t n = (size_t)VD_MIN((uint64_t)VERIFY_CHUNK, size - off);

		ret = rd(ctx, buf, n, off);
		if (ret)
			return ret;
		vd_sha_update(&s, buf, n);
		off += n;
	}
	vd_sha_final(&s, d);
	for (size_t i = 0; i < vd_sha_len(alg); i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
	return 0;
}

/* Print the line for entry e whose bytes rd reads. */
static void verify_one(const struct verify_entry *e, uint64_t size,
		       verify_read_fn rd, void *ctx, uint8_t *buf,
		       struct verify_counts *c)
{
	char got[2 * VD_SHA_MAX_LEN + 1];
	int ret;

	if (!e->known) {
		printf("UNCHECKED %s (%s): algorithm not supported (only SHA1 "
		       "and SHA256)\n",
		       verify_safe(e->name), e->alg_name);
		c->unchecked++;
		return;
	}
	ret = verify_digest(e->alg, size, rd, ctx, buf, got);
	if (ret) {
		printf("FAILED %s (%s): cannot read it: %s\n",
		       verify_safe(e->name), vd_sha_name(e->alg),
		       strerror(-ret));
		c->failed++;
	} else if (strcmp(got, e->hex)) {
		printf("FAILED %s (%s): expected %s, got %s\n",
		       verify_safe(e->name), vd_sha_name(e->alg), e->hex, got);
		c->failed++;
	} else {
		printf("OK %s (%s)\n", verify_safe(e->name),
		       vd_sha_name(e->alg));
		c->ok++;
	}
}

static bool verify_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcasecmp(s + n - k, suffix);
}

static bool verify_listed(const struct verify_manifest *m, const char *name)
{
	for (unsigned i = 0; i < m->n; i++)
		if (!strcmp(m->e[i].name, name))
			return true;
	return false;
}

static void verify_summary(const struct verify_counts *c, unsigned bad)
{
	printf("%u OK, %u failed, %u missing, %u unchecked%s\n", c->ok,
	       c->failed + bad, c->missing, c->unchecked,
	       bad ? " (manifest lines that are not digests count as "
		     "failed)"
		   : "");
}

static int verify_status(const struct verify_counts *c,
			 const struct verify_manifest *m)
{
	if (!m->n) {
		vdt_error("the manifest lists no files");
		return VDT_EXIT_FAIL;
	}
	return c->failed || c->missing || c->unchecked || m->bad_lines
		   ? VDT_EXIT_FAIL
		   : VDT_EXIT_OK;
}

/* ------------------------------------------------------------ OVA */

struct verify_ova {
	struct vd_archive *ar;
	struct vd_file *tar;
	const struct vd_archive_member **m;
	unsigned n;
	const struct vd_archive_member *cur; /* being hashed */
};

static int verify_ova_collect(void *ctx, const struct vd_archive_member *m)
{
	struct verify_ova *o = ctx;
	const struct vd_archive_member **nm;

	nm = realloc(o->m, (o->n + 1) * sizeof(*o->m));
	if (!nm)
		return -ENOMEM;
	o->m = nm;
	o->m[o->n++] = m;
	return 0;
}

static int verify_ova_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct verify_ova *o = ctx;

	return vd_file_pread(o->tar, buf, len, o->cur->off + off);
}

static const struct vd_archive_member *
verify_ova_find(const struct verify_ova *o, const char *name)
{
	for (unsigned i = 0; i < o->n; i++)
		if (o->m[i]->type != 'D' && !strcmp(o->m[i]->name, name))
			return o->m[i];
	return NULL;
}

/* The manifest member: named as the first .ovf member with .mf, else
 * the only .mf member. */
static const struct vd_archive_member *
verify_ova_manifest(const struct verify_ova *o, char *want, size_t len)
{
	const struct vd_archive_member *mf = NULL;
	unsigned n_mf = 0;

	want[0] = '\0';
	for (unsigned i = 0; i < o->n; i++) {
		const char *nm = o->m[i]->name;

		if (!want[0] && verify_ends_with(nm, ".ovf")) {
			snprintf(want, len, "%.*s.mf", (int)(strlen(nm) - 4),
				 nm);
			mf = verify_ova_find(o, want);
			if (mf)
				return mf;
		}
	}
	for (unsigned i = 0; i < o->n; i++)
		if (verify_ends_with(o->m[i]->name, ".mf")) {
			mf = o->m[i];
			n_mf++;
		}
	return n_mf == 1 ? mf : NULL;
}

static int verify_ova(const char *path, struct vd_file *f)
{
	struct verify_ova o = {0};
	struct verify_manifest man = {0};
	struct verify_counts c = {0};
	const struct vd_archive_member *mf;
	struct vd_err e = {""};
	char want[PATH_MAX + 8], prefix[PATH_MAX], *text = NULL;
	uint8_t *buf = NULL;
	size_t plen;
	int ret, status = VDT_EXIT_FAIL;

	ret = vd_tar_open(f, path, &o.ar, &e);
	if (ret) {
		vd_file_close(f);
		fprintf(stderr, "vdtool: %s\n", e.msg);
		return VDT_EXIT_FAIL;
	}
	o.tar = vd_archive_file(o.ar);
	if (vd_archive_foreach(o.ar, verify_ova_collect, &o)) {
		vdt_error("out of memory");
		goto out;
	}
	mf = verify_ova_manifest(&o, want, sizeof(want));
	if (!mf) {
		vdt_error("%s: no manifest%s%s%s in the archive: nothing to "
			  "verify",
			  path, want[0] ? " (" : "", want, want[0] ? ")" : "");
		goto out;
	}
	if (mf->type == 'S' || mf->size > VERIFY_MAX_MANIFEST) {
		vdt_error("%s: manifest '%s' is %s", path, mf->name,
			  mf->type == 'S' ? "a sparse member" : "too large");
		goto out;
	}
	text = malloc(mf->size + 1);
	buf = malloc(VERIFY_CHUNK);
	if (!text || !buf) {
		vdt_error("out of memory");
		goto out;
	}
	if (vd_file_pread(o.tar, text, mf->size, mf->off)) {
		vdt_error("%s: cannot read the manifest '%s'", path, mf->name);
		goto out;
	}
	text[mf->size] = '\0';
	if (verify_parse(mf->name, text, mf->size, &man)) {
		vdt_error("out of memory");
		goto out;
	}
	/* Names are relative to the manifest's folder in the archive. */
	snprintf(prefix, sizeof(prefix), "%s", mf->name);
	plen = strrchr(prefix, '/')
		   ? (size_t)(strrchr(prefix, '/') - prefix) + 1
		   : 0;
	prefix[plen] = '\0';

	for (unsigned i = 0; i < man.n; i++) {
		const struct verify_entry *en = &man.e[i];
		const struct vd_archive_member *m = NULL;
		char full[PATH_MAX + 8];

		if (vd_name_inside(en->name)) {
			snprintf(full, sizeof(full), "%s%s", prefix, en->name);
			m = verify_ova_find(&o, full);
		}
		if (!m) {
			printf("MISSING %s\n", verify_safe(en->name));
			c.missing++;
			continue;
		}
		if (m->type == 'S') {
			printf("FAILED %s (%s): a GNU sparse member, whose "
			       "bytes cannot be checked in place\n",
			       verify_safe(en->name), en->alg_name);
			c.failed++;
			continue;
		}
		o.cur = m;
		verify_one(en, m->size, verify_ova_read, &o, buf, &c);
	}
	for (unsigned i = 0; i < o.n; i++) {
		const char *nm = o.m[i]->name;

		if (o.m[i] == mf || strncmp(nm, prefix, plen) ||
		    verify_listed(&man, nm + plen))
			continue;
		if (verify_ends_with(nm, ".cert"))
			printf("CERTIFICATE %s: present, not checked (vdtool "
			       "does not verify signatures)\n",
			       verify_safe(nm));
		else
			printf("WARNING %s: not in the manifest\n",
			       verify_safe(nm));
	}
	verify_summary(&c, man.bad_lines);
	status = verify_status(&c, &man);
out:
	verify_manifest_free(&man);
	free(text);
	free(buf);
	free(o.m);
	vd_archive_free(o.ar);
	return status;
}

/* ------------------------------------------------------------ OVF */

struct verify_fd {
	int fd;
};

static int verify_fd_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct verify_fd *v = ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(v->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank */
		done += (size_t)n;
	}
	return 0;
}

/* Open name inside the real folder dir: it must resolve to a regular
 * file inside it. A file descriptor, or -errno. */
static int verify_open_inside(const char *dir, const char *name,
			      struct stat *st)
{
	char *joined = NULL, *real = NULL;
	size_t dl = strlen(dir);
	int fd = -ENOENT;

	if (!vd_name_inside(name))
		return -EPERM;
	if (asprintf(&joined, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	real = realpath(joined, NULL);
	if (!real) {
		fd = -errno;
		goto out;
	}
	if (strncmp(real, dir, dl) || (real[dl] != '/' && dl != 1)) {
		fd = -EPERM;
		goto out;
	}
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		goto out;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		fd = -EINVAL;
	}
out:
	free(joined);
	free(real);
	return fd;
}

static int verify_ovf(const char *path, struct vd_file *f)
{
	struct verify_manifest man = {0};
	struct verify_counts c = {0};
	struct vd_ovf *ovf = NULL;
	struct vd_err e = {""};
	char *tmp = strdup(path), *dir = NULL, *base, *mfname = NULL;
	char *text = NULL, *desc = NULL;
	uint8_t *buf = NULL;
	struct verify_fd vf;
	struct stat st;
	int fd = -1, status = VDT_EXIT_FAIL;

	if (!tmp || !(dir = realpath(dirname(tmp), NULL))) {
		vdt_error("%s: %s", path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = strdup(path);
	if (!tmp) {
		vdt_error("out of memory");
		goto out;
	}
	base = basename(tmp);
	if (verify_ends_with(base, ".ovf"))
		base[strlen(base) - 4] = '\0';
	if (asprintf(&mfname, "%s.mf", base) < 0) {
		mfname = NULL;
		vdt_error("out of memory");
		goto out;
	}
	fd = verify_open_inside(dir, mfname, &st);
	if (fd < 0) {
		vdt_error("%s: no manifest (%s beside it: %s): nothing to "
			  "verify",
			  path, mfname, strerror(-fd));
		goto out;
	}
	if ((uint64_t)st.st_size > VERIFY_MAX_MANIFEST) {
		vdt_error("%s: manifest '%s' is too large", path, mfname);
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	buf = malloc(VERIFY_CHUNK);
	if (!text || !buf) {
		vdt_error("out of memory");
		goto out;
	}
	vf.fd = fd;
	if (verify_fd_read(&vf, text, (size_t)st.st_size, 0)) {
		vdt_error("%s: cannot read the manifest '%s'", path, mfname);
		goto out;
	}
	text[st.st_size] = '\0';
	close(fd);
	fd = -1;
	if (verify_parse(mfname, text, (size_t)st.st_size, &man)) {
		vdt_error("out of memory");
		goto out;
	}
	for (unsigned i = 0; i < man.n; i++) {
		const struct verify_entry *en = &man.e[i];

		fd = verify_open_inside(dir, en->name, &st);
		if (fd == -ENOENT) {
			printf("MISSING %s\n", verify_safe(en->name));
			c.missing++;
			continue;
		}
		if (fd < 0) {
			printf("FAILED %s (%s): %s\n", verify_safe(en->name),
			       en->alg_name,
			       fd == -EPERM ? "outside the appliance's folder"
					    : strerror(-fd));
			c.failed++;
			continue;
		}
		vf.fd = fd;
		verify_one(en, (uint64_t)st.st_size, verify_fd_read, &vf, buf,
			   &c);
		close(fd);
		fd = -1;
	}
	/* The files the appliance is made of: the descriptor and each
	 * file it references. */
	if (vd_file_size(f) <= VD_OVF_MAX_BYTES && (desc = malloc(vd_file_size(f) + 1)) &&
	    !vd_file_pread(f, desc, vd_file_size(f), 0) &&
	    !vd_ovf_parse(desc, vd_file_size(f), path, &ovf, &e)) {
		const char *self =
		    strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

		if (!verify_listed(&man, self))
			printf("WARNING %s: not in the manifest\n",
			       verify_safe(self));
		for (unsigned i = 0; i < ovf->n_files; i++)
			if (!verify_listed(&man, ovf->files[i].href))
				printf("WARNING %s: not in the manifest\n",
				       verify_safe(ovf->files[i].href));
	} else if (e.msg[0]) {
		printf("WARNING %s: cannot list its files: %s\n", path,
		       verify_safe(e.msg));
	}
	{
		char *cert = NULL;
		struct stat cst;
		int cfd;

		if (asprintf(&cert, "%s.cert", base) >= 0) {
			cfd = verify_open_inside(dir, cert, &cst);
			if (cfd >= 0) {
				printf("CERTIFICATE %s: present, not checked "
				       "(vdtool does not verify signatures)\n",
				       cert);
				close(cfd);
			}
			free(cert);
		}
	}
	verify_summary(&c, man.bad_lines);
	status = verify_status(&c, &man);
out:
	if (fd >= 0)
		close(fd);
	vd_ovf_free(ovf);
	verify_manifest_free(&man);
	free(desc);
	free(text);
	free(buf);
	free(mfname);
	free(tmp);
	free(dir);
	vd_file_close(f);
	return status;
}

/* ------------------------------------------------------------ command */

static void verify_usage(FILE *out)
{
	fprintf(out, "usage: vdtool verify IMAGE.ova | DESCRIPTOR.ovf\n"
		     "\n"
		     "Check every file an OVF manifest (the .mf named as the "
		     "descriptor) lists\n"
		     "against its SHA1 or SHA256 digest: the members of an "
		     "OVA, or the files\n"
		     "beside an .ovf. One line per file:\n"
		     "  OK NAME (ALG)\n"
		     "  FAILED NAME (ALG): expected HEX, got HEX\n"
		     "  MISSING NAME\n"
		     "and WARNING lines for files the manifest does not list; "
		     "a certificate\n"
		     "is reported as present but not checked.\n"
		     "\n"
		     "  -h, --help            this help\n"
		     "\n"
		     "Exit status: 0 when every listed file matches; 1 when "
		     "one does not, is\n"
		     "missing or cannot be checked, or there is no manifest; 2 "
		     "for a bad\n"
		     "command line.\n");
}

int vdt_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vd_err e = {""};
	struct vd_file *f;
	uint8_t head[512] = {0};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			verify_usage(stdout);
			return VDT_EXIT_OK;
		}
		verify_usage(stderr);
		return VDT_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		vdt_error("expected one IMAGE.ova or .ovf (try --help)");
		return VDT_EXIT_USAGE;
	}
	if (vd_file_open(argv[optind], &f, &e)) {
		fprintf(stderr, "vdtool: %s\n", e.msg);
		return VDT_EXIT_FAIL;
	}
	if (vd_file_size(f) &&
	    vd_file_pread(f, head, (size_t)VD_MIN(sizeof(head), vd_file_size(f)), 0)) {
		vdt_error("%s: cannot read it", argv[optind]);
		vd_file_close(f);
		return VDT_EXIT_FAIL;
	}
	if (vd_tar_probe(head, sizeof(head)))
		return verify_ova(argv[optind], f);
	if (vd_ovf_probe((const char *)head,
			 (size_t)VD_MIN(sizeof(head), vd_file_size(f))))
		return verify_ovf(argv[optind], f);
	vdt_error("%s: neither an OVA (tar) nor an OVF descriptor",
		  argv[optind]);
	vd_file_close(f);
	return VDT_EXIT_FAIL;
}
