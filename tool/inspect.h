/* vdtool inspect: what operating system an image holds.
 *
 * inspect.c finds the candidate roots among the image's filesystems,
 * gathers the facts and prints them; inspect-linux.c reads a Linux root
 * (release files, hostname, ELF architecture, packages, fstab),
 * inspect-rpm.c its rpm database through librpm, inspect-win.c a Windows
 * root through hivex; inspect-parse.c holds the parsers of guest bytes
 * that need no image (os-release, fstab, dpkg status, apk's installed
 * file, ELF and PE headers), so the fuzz target can drive them alone.
 *
 * Everything read from the guest is hostile: every file is read up to a
 * cap, every line, value and list is bounded, and a failure becomes a
 * warning of the root it belongs to, never the end of the report. */
#ifndef VDT_INSPECT_H
#define VDT_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns/ns.h"

/* Lines longer than this in a text file a parser reads are skipped
 * (counted, and reported as one warning). */
#define VDT_INSP_LINE_MAX 4096
/* Packages kept per root; more are counted but not listed. */
#define VDT_INSP_MAX_PKGS 200000
/* Bytes kept of one package field (name, version, ...). */
#define VDT_INSP_FIELD_MAX 256
/* fstab entries (or drive letters) kept per root. */
#define VDT_INSP_MAX_MNTS 256
/* Warnings kept per root. */
#define VDT_INSP_MAX_WARN 64

struct vdt_insp_pkg {
	char *name, *version, *release, *arch, *epoch; /* NULL: none */
	/* Windows: DisplayName and Publisher (name is the Uninstall
	 * subkey's, as virt-inspector names it); NULL elsewhere. */
	char *display_name, *publisher;
};

struct vdt_insp_pkgs {
	struct vdt_insp_pkg *p;
	size_t n, cap;
	size_t dropped; /* past VDT_INSP_MAX_PKGS, or no memory */
};

/* Add a package (the strings, len-bounded, are copied; NULL: none).
 * Returns 0 or -ENOMEM; at the cap it counts dropped and returns 0. */
int vdt_insp_pkg_add(struct vdt_insp_pkgs *l, const char *name, size_t nlen,
		     const char *ver, size_t vlen, const char *rel, size_t rlen,
		     const char *arch, size_t alen, const char *epoch,
		     size_t elen);
/* Set the last package's display name and publisher (copies, cut at
 * VDT_INSP_FIELD_MAX; NULL: none). -ENOMEM or 0. */
int vdt_insp_pkg_extra(struct vdt_insp_pkgs *l, const char *display,
		       const char *publisher);
void vdt_insp_pkgs_free(struct vdt_insp_pkgs *l);
void vdt_insp_pkgs_sort(struct vdt_insp_pkgs *l);

/* A Debian version "[epoch:]upstream[-revision]" split as virt-inspector
 * splits it, into pkg (which takes the copies). */
int vdt_insp_pkg_add_deb(struct vdt_insp_pkgs *l, const char *name,
			 size_t nlen, const char *ver, size_t vlen,
			 const char *arch, size_t alen);

/* ---- parsers (inspect-parse.c): buf need not be NUL-terminated */

/* Shell-style KEY=VALUE lines (os-release(5), lsb-release,
 * /etc/sysconfig/network): cb gets each key and its unquoted value.
 * Returns how many lines were longer than VDT_INSP_LINE_MAX (skipped). */
typedef void (*vdt_insp_kv_cb)(void *arg, const char *key, const char *val);
size_t vdt_insp_parse_kv(const char *buf, size_t len, vdt_insp_kv_cb cb,
			 void *arg);

/* fstab(5): cb gets spec, file, vfstype and mntops (octal escapes
 * decoded; "auto" and "defaults" when absent) of each entry. Returns the long lines skipped. */
typedef void (*vdt_insp_fstab_cb)(void *arg, const char *spec,
				  const char *file, const char *type,
				  const char *opts);
size_t vdt_insp_parse_fstab(const char *buf, size_t len,
			    vdt_insp_fstab_cb cb, void *arg);

/* dpkg's status file: the installed packages into l. -ENOMEM or 0;
 * *long_r counts the fields kept that were cut at VDT_INSP_FIELD_MAX
 * (lines of any length are read: none is copied whole). */
int vdt_insp_parse_dpkg(const char *buf, size_t len,
			struct vdt_insp_pkgs *l, size_t *long_r);
/* apk's /lib/apk/db/installed (P:, V:, A: lines). */
int vdt_insp_parse_apk(const char *buf, size_t len, struct vdt_insp_pkgs *l,
		       size_t *long_r);

/* The architecture an ELF header says (virt-inspector's names: "x86_64",
 * "i386", "aarch64", ...), or NULL when b is not one. */
const char *vdt_insp_elf_arch(const uint8_t *b, size_t n);
/* The same for a PE image's COFF machine field (cmd.exe). */
const char *vdt_insp_pe_arch(const uint8_t *b, size_t n);

/* The first line of a release file such as /etc/redhat-release ("Rocky
 * Linux release 9.3 (Blue Onyx)"): distro (virt-inspector's name, or
 * NULL when not known), version "9.3" and codename into the buffers
 * (each of size sz). false when the line has no "release N". */
bool vdt_insp_parse_release(const char *buf, size_t len, char *distro,
			    char *version, char *codename, size_t sz);
/* "12.5" -> 12, 5; "9" -> 9, 0. false when it does not start with a
 * number. */
bool vdt_insp_version(const char *v, long *major_r, long *minor_r);
/* virt-inspector's distro name for an os-release ID ("alpine" ->
 * "alpinelinux"); id itself when there is none. */
const char *vdt_insp_distro(const char *id);

/* ---- one root, as gathered */

#define VDT_INSP_STR 256

struct vdt_insp_mnt {
	char *spec;	/* as fstab or MountedDevices names it */
	char *where;	/* the mountpoint, or the drive ("C:") */
	char *fstype;	/* fstab's, or NULL */
	/* "/p2", "/p2/root" (a btrfs subvolume), or "" when not found */
	char path[VD_VOL_LABEL_MAX + VDT_INSP_STR + 4];
};

/* A filesystem of the image, for the mappings and the clean states. */
struct vdt_insp_fs {
	unsigned vol;
	char path[VD_VOL_LABEL_MAX + 2]; /* "/p2", "/vg-root", "/fs" */
	struct vd_fs *fs;
	struct vd_fs_info info;
	const struct vd_part *part; /* a partition of the disk, or NULL */
	const char *state; /* "clean", "needs recovery", ... */
	int clean;	   /* 1, 0, or -1 when not known */
	uint64_t root_ino; /* its root in the namespace */
};

struct vdt_insp_os {
	struct vdt_insp_fs *fs; /* the root's own filesystem */
	/* The root in the tree: fs->path, or a btrfs subvolume's folder
	 * below it ("/p2/root"), and its namespace inode. */
	char root[VDT_INSP_STR];
	uint64_t root_ino;
	char type[16];		/* "linux", "windows" */
	char distro[64];
	char product_name[VDT_INSP_STR];
	char product_variant[64]; /* Windows InstallationType */
	char edition[64];	  /* Windows EditionID */
	char version[64];	  /* "12.5" */
	char codename[64];
	char build_id[32];
	long major, minor;	/* -1: unknown */
	char arch[32];
	char hostname[VDT_INSP_STR];
	char pkg_format[16], pkg_mgmt[16];
	char systemroot[VDT_INSP_STR]; /* Windows, in the guest */
	char ccs[32];		       /* Windows current control set */
	bool have_pkgs;
	struct vdt_insp_pkgs pkgs;
	bool have_mnts;
	struct vdt_insp_mnt *mnts;
	size_t nmnts;
	char *warn[VDT_INSP_MAX_WARN];
	size_t nwarn;
	bool quiet; /* warnings kept, not printed (a brief look) */
};

/* What every reader of a root gets. */
struct vdt_insp {
	struct vd_ns *ns;
	struct vdt_insp_fs *fss;
	size_t nfs;
	const struct vd_parts *parts; /* the disk's table, or NULL */
	/* Only what names the OS (vdt_insp_brief): no packages, no
	 * warnings printed. */
	bool brief;
};

/* What names the first operating system vdtool inspect would list on
 * the image of namespace ns (for the OS section of an OVF). */
struct vdt_insp_brief {
	char type[16];		      /* "linux", "windows" */
	char distro[64];	      /* "debian", "rhel", "windows", ... */
	char product_name[VDT_INSP_STR];
	char product_variant[64];     /* Windows: "Client", "Server", ... */
	char arch[32];		      /* "x86_64", "i386", ... or "" */
	long major, minor;	      /* -1: unknown */
};
/* 0 and *b filled, -ENOENT when no operating system is found, or
 * -ENOMEM. Prints nothing; reads no package database. */
int vdt_insp_brief(struct vd_ns *ns, struct vdt_insp_brief *b);

/* A warning of os ("vdtool inspect: ROOT: ..." on stderr, and in the
 * JSON), printf-style. */
__attribute__((format(printf, 2, 3))) void
vdt_insp_warn(struct vdt_insp_os *os, const char *fmt, ...);

/* The bytes of the guest file rel (relative to os's root, symlinks
 * followed inside it), at most cap of them, in a
 * new NUL-terminated buffer. 0; -EFBIG when the file is larger than cap
 * (the first cap bytes are given); or -errno (nothing given). */
int vdt_insp_read(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *rel, size_t cap, char **buf_r, size_t *len_r);
/* The namespace inode of rel inside os's root, resolved as chroot(2)
 * would: ".." never climbs above the root, an absolute symlink target
 * starts again at it, at most 40 symlinks (-ELOOP). */
int vdt_insp_lookup(struct vdt_insp *in, struct vdt_insp_os *os,
		    const char *rel, uint64_t *ino_r);
/* Copy the guest file rel to the host file fd (from its offset 0), in
 * pieces, up to cap bytes: 0; -EFBIG when the file is larger than cap
 * (nothing useful copied); or -errno. */
int vdt_insp_copy(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *rel, uint64_t cap, int fd);
/* Whether rel is a directory / exists (following symlinks). */
bool vdt_insp_is_dir(struct vdt_insp *in, struct vdt_insp_os *os,
		     const char *rel);
bool vdt_insp_exists(struct vdt_insp *in, struct vdt_insp_os *os,
		     const char *rel);
/* The filesystem fstab's spec names, or NULL. */
struct vdt_insp_fs *vdt_insp_find_spec(struct vdt_insp *in, const char *spec);

/* inspect-linux.c: whether fs holds a Linux root, and its facts. */
bool vdt_insp_linux_probe(struct vdt_insp *in, struct vdt_insp_os *os);
void vdt_insp_linux(struct vdt_insp *in, struct vdt_insp_os *os);
/* inspect-rpm.c: the packages of the rpm database in the guest folder
 * dbdir (relative to the root) into os->pkgs; warnings on failure. */
void vdt_insp_rpm(struct vdt_insp *in, struct vdt_insp_os *os,
		  const char *dbdir);
/* inspect-win.c: the Windows system root (its path in the guest) on
 * os's filesystem, or false; and its facts. */
bool vdt_insp_win_probe(struct vdt_insp *in, struct vdt_insp_os *os);
void vdt_insp_win(struct vdt_insp *in, struct vdt_insp_os *os);

#endif
