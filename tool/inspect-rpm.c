/* vdtool inspect: the packages of a guest's rpm database, through
 * librpm — the library made for it, which reads every backend a guest
 * may have: SQLite (rpmdb.sqlite: RHEL 9, Fedora 33+), BerkeleyDB
 * (Packages: older RHEL, read by librpm's own read-only bdb_ro code,
 * which Debian's librpm has) and ndb (Packages.db: SUSE; Debian's librpm
 * has no ndb, so that one is a warning there).
 *
 * librpm opens a database only by a directory path, so the database
 * files are copied out of the guest (each up to RPM_FILE_MAX bytes, in
 * pieces) into a private folder made with mkdtemp, opened read-only with
 * _dbpath pointing there, and removed afterwards. Header digests and
 * signatures are not checked: only the names are wanted, and a guest's
 * keys are not the host's. librpm's own messages (a damaged header, a
 * file that is not a database) become the root's warnings.
 *
 * An SQLite database is first opened by SQLite itself (read-only, its
 * Packages table counted): librpm 4.18 leaves an SQLite handle behind
 * when the open fails, so a file that is no database never reaches it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <rpm/header.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmmacro.h>
#include <rpm/rpmts.h>

#include "common/lazy.h"
#include "common/util.h"
#include "tool/inspect.h"

#define RPM_FILE_MAX (1ull << 30)

static const struct {
	const char *file; /* in the database folder */
	const char *backend; /* librpm's _db_backend */
	const char *extra;   /* another file of the same backend, or NULL */
} rpm_backends[] = {
	{ "rpmdb.sqlite", "sqlite", "rpmdb.sqlite-wal" },
	{ "Packages.db", "ndb", "Index.db" },
	{ "Packages", "bdb_ro", NULL },
};

/* librpm's first message of a run (the callback has no other way out). */
static char rpm_msg[256];

static int rpm_log(rpmlogRec rec, rpmlogCallbackData data)
{
	const char *m = rpmlogRecMessage(rec);
	size_t n;

	(void)data;
	/* Errors only: librpm warns about every index file it looks for
	 * beside the one database file copied out (Name, Basenames, ...). */
	if (rpm_msg[0] || !m || rpmlogRecPriority(rec) > RPMLOG_ERR)
		return 0;
	snprintf(rpm_msg, sizeof(rpm_msg), "%s", m);
	n = strlen(rpm_msg);
	while (n && (rpm_msg[n - 1] == '\n' || rpm_msg[n - 1] == ' '))
		rpm_msg[--n] = '\0';
	/* 0: nothing more (librpm would print it on stderr). */
	return 0;
}

static void rpm_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int dfd;

	if (d) {
		dfd = dirfd(d);
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dfd, e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

/* Copy dbdir/name into dir/name. 0, or -errno (warned unless the
 * guest file is absent). */
static int rpm_copy(struct vdt_insp *in, struct vdt_insp_os *os,
		    const char *dbdir, const char *name, const char *dir)
{
	char *rel = NULL, *host = NULL;
	int fd, ret;

	if (asprintf(&rel, "%s/%s", dbdir, name) < 0) {
		rel = NULL;
		ret = -ENOMEM;
		goto out;
	}
	if (asprintf(&host, "%s/%s", dir, name) < 0) {
		host = NULL;
		ret = -ENOMEM;
		goto out;
	}
	fd = open(host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = vdt_insp_copy(in, os, rel, RPM_FILE_MAX, fd);
	if (close(fd) && !ret)
		ret = -errno;
	if (ret == -EFBIG)
		vdt_insp_warn(os, "%s: larger than %llu bytes; not read", rel,
			      RPM_FILE_MAX);
	else if (ret && ret != -ENOENT)
		vdt_insp_warn(os, "%s: %s", rel, strerror(-ret));
out:
	if (ret && host)
		unlink(host);
	free(rel);
	free(host);
	return ret;
}

/* Whether SQLite reads dir/file as a database with a Packages table;
 * warns (as rel) when not. */
static bool rpm_sqlite_ok(struct vdt_insp_os *os, const char *dir,
			  const char *file, const char *rel)
{
	sqlite3 *db = NULL;
	char *path = NULL, *err = NULL;
	int rc;

	if (vd_lazy_need(&vd_lazy_sqlite3)) {
		vdt_insp_warn(os, "%s: sqlite3 cannot be loaded: %s", rel,
			      vd_lazy_sqlite3.error);
		return false;
	}
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return false;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "SELECT count(*) FROM Packages", NULL,
				  NULL, &err);
	if (rc != SQLITE_OK)
		vdt_insp_warn(os, "%s: not an rpm database SQLite can read: %s",
			      rel, err ? err : db ? sqlite3_errmsg(db) :
						    sqlite3_errstr(rc));
	sqlite3_free(err);
	sqlite3_close(db);
	free(path);
	return rc == SQLITE_OK;
}

static void rpm_list(struct vdt_insp_os *os, rpmts ts)
{
	rpmdbMatchIterator mi;
	Header h;
	int ret = 0;

	mi = rpmtsInitIterator(ts, RPMDBI_PACKAGES, NULL, 0);
	/* Ends: librpm walks the database's records once. */
	while (mi && !ret && (h = rpmdbNextIterator(mi))) {
		const char *name = headerGetString(h, RPMTAG_NAME);
		const char *ver = headerGetString(h, RPMTAG_VERSION);
		const char *rel = headerGetString(h, RPMTAG_RELEASE);
		const char *arch = headerGetString(h, RPMTAG_ARCH);
		char epoch[24] = "";

		if (!name)
			continue;
		/* gpg-pubkey "packages" are keys, not software. */
		if (!strcmp(name, "gpg-pubkey"))
			continue;
		if (headerIsEntry(h, RPMTAG_EPOCH))
			snprintf(epoch, sizeof(epoch), "%llu",
				 (unsigned long long)headerGetNumber(h,
							RPMTAG_EPOCH));
		ret = vdt_insp_pkg_add(&os->pkgs, name, strlen(name), ver,
				       ver ? strlen(ver) : 0, rel,
				       rel ? strlen(rel) : 0, arch,
				       arch ? strlen(arch) : 0,
				       epoch[0] ? epoch : NULL, strlen(epoch));
	}
	rpmdbFreeIterator(mi);
	if (ret)
		vdt_insp_warn(os, "rpm database: %s", strerror(-ret));
}

void vdt_insp_rpm(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *dbdir)
{
	static bool configured;
	char dir[] = "/tmp/vdtool-rpmdb.XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char *tdir = NULL;
	size_t b;
	rpmts ts = NULL;

	for (b = 0; b < VD_ARRAY_SIZE(rpm_backends); b++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "%s/%s", dbdir, rpm_backends[b].file);
		if (vdt_insp_exists(in, os, rel))
			break;
	}
	if (b == VD_ARRAY_SIZE(rpm_backends))
		return;
	/* librpm is loaded on first use (common/lazy.h). */
	if (vd_lazy_need(&vd_lazy_rpm)) {
		vdt_insp_warn(os, "rpm database: librpm cannot be loaded: %s",
			      vd_lazy_rpm.error);
		return;
	}
	if (tmp && *tmp == '/' &&
	    asprintf(&tdir, "%s/vdtool-rpmdb.XXXXXX", tmp) < 0)
		tdir = NULL;
	if (!mkdtemp(tdir ? tdir : dir)) {
		vdt_insp_warn(os, "rpm database: a folder to read it in: %s",
			      strerror(errno));
		free(tdir);
		return;
	}
	const char *d = tdir ? tdir : dir;

	if (rpm_copy(in, os, dbdir, rpm_backends[b].file, d))
		goto out;
	if (rpm_backends[b].extra)
		rpm_copy(in, os, dbdir, rpm_backends[b].extra, d);
	if (!strcmp(rpm_backends[b].backend, "sqlite")) {
		char rel[128];

		snprintf(rel, sizeof(rel), "%s/%s", dbdir, rpm_backends[b].file);
		if (!rpm_sqlite_ok(os, d, rpm_backends[b].file, rel))
			goto out;
	}

	rpm_msg[0] = '\0';
	rpmlogSetCallback(rpm_log, NULL);
	if (!configured && rpmReadConfigFiles(NULL, NULL)) {
		vdt_insp_warn(os, "rpm database: librpm's configuration cannot "
			      "be read%s%s", rpm_msg[0] ? ": " : "", rpm_msg);
		goto out;
	}
	configured = true;
	rpmPushMacro(NULL, "_dbpath", NULL, d, RMIL_CMDLINE);
	rpmPushMacro(NULL, "_db_backend", NULL, rpm_backends[b].backend,
		     RMIL_CMDLINE);
	ts = rpmtsCreate();
	rpmtsSetRootDir(ts, "/");
	rpmtsSetVSFlags(ts, RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
	if (rpmtsOpenDB(ts, O_RDONLY)) {
		vdt_insp_warn(os, "%s/%s: librpm cannot open it (%s)%s%s",
			      dbdir, rpm_backends[b].file,
			      rpm_backends[b].backend, rpm_msg[0] ? ": " : "",
			      rpm_msg);
	} else {
		rpm_list(os, ts);
		os->have_pkgs = true;
		if (rpm_msg[0])
			vdt_insp_warn(os, "%s/%s: %s", dbdir,
				      rpm_backends[b].file, rpm_msg);
	}
	rpmtsFree(ts);
	rpmPopMacro(NULL, "_db_backend");
	rpmPopMacro(NULL, "_dbpath");
out:
	rpmlogSetCallback(NULL, NULL);
	rpm_rmdir(d);
	free(tdir);
}
