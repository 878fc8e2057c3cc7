#include "common/lazy.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

/* The sonames come from the Makefile (the libraries the build found);
 * the unversioned names are a fallback for a build without them. */
#ifndef VD_SONAME_CRYPTSETUP
#define VD_SONAME_CRYPTSETUP "libcryptsetup.so"
#endif
#ifndef VD_SONAME_CRYPTO
#define VD_SONAME_CRYPTO "libcrypto.so"
#endif
#ifndef VD_SONAME_NTFS3G
#define VD_SONAME_NTFS3G "libntfs-3g.so"
#endif
#ifndef VD_SONAME_LZO2
#define VD_SONAME_LZO2 "liblzo2.so"
#endif
#ifndef VD_SONAME_XXHASH
#define VD_SONAME_XXHASH "libxxhash.so"
#endif
#ifndef VD_SONAME_B2
#define VD_SONAME_B2 "libb2.so"
#endif
#ifndef VD_SONAME_HIVEX
#define VD_SONAME_HIVEX "libhivex.so"
#endif
#ifndef VD_SONAME_RPM
#define VD_SONAME_RPM "librpm.so"
#endif
#ifndef VD_SONAME_SQLITE3
#define VD_SONAME_SQLITE3 "libsqlite3.so"
#endif

#define LAZY(soname) { soname, PTHREAD_ONCE_INIT, NULL, "" }
struct vd_lazy vd_lazy_cryptsetup = LAZY(VD_SONAME_CRYPTSETUP);
struct vd_lazy vd_lazy_crypto = LAZY(VD_SONAME_CRYPTO);
struct vd_lazy vd_lazy_ntfs3g = LAZY(VD_SONAME_NTFS3G);
struct vd_lazy vd_lazy_lzo2 = LAZY(VD_SONAME_LZO2);
struct vd_lazy vd_lazy_xxhash = LAZY(VD_SONAME_XXHASH);
struct vd_lazy vd_lazy_b2 = LAZY(VD_SONAME_B2);
struct vd_lazy vd_lazy_hivex = LAZY(VD_SONAME_HIVEX);
struct vd_lazy vd_lazy_rpm = LAZY(VD_SONAME_RPM);
struct vd_lazy vd_lazy_sqlite3 = LAZY(VD_SONAME_SQLITE3);

/* pthread_once takes no argument: one loader per library. */
static void lazy_load(struct vd_lazy *l)
{
	const char *e;

	/* RTLD_NOW: a library that lacks a symbol fails here, once. */
	l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!l->handle) {
		e = dlerror();
		snprintf(l->error, sizeof(l->error), "%s",
			 e ? e : "cannot be loaded");
	}
}

#define LOADER(lib)                                                        \
	static void load_##lib(void)                                       \
	{                                                                  \
		lazy_load(&vd_lazy_##lib);                                 \
	}
LOADER(cryptsetup)
LOADER(crypto)
LOADER(ntfs3g)
LOADER(lzo2)
LOADER(xxhash)
LOADER(b2)
LOADER(hivex)
LOADER(rpm)
LOADER(sqlite3)

static void lazy_once(struct vd_lazy *l)
{
	void (*fn)(void) = l == &vd_lazy_cryptsetup ? load_cryptsetup :
			   l == &vd_lazy_crypto	    ? load_crypto :
			   l == &vd_lazy_ntfs3g	    ? load_ntfs3g :
			   l == &vd_lazy_lzo2	    ? load_lzo2 :
			   l == &vd_lazy_xxhash	    ? load_xxhash :
			   l == &vd_lazy_hivex	    ? load_hivex :
			   l == &vd_lazy_rpm	    ? load_rpm :
			   l == &vd_lazy_sqlite3    ? load_sqlite3 :
						      load_b2;

	pthread_once(&l->once, fn);
}

int vd_lazy_need(struct vd_lazy *l)
{
	lazy_once(l);
	if (l->handle)
		return 0;
	vd_log(VD_LOG_ERR, "%s: cannot load it: %s", l->soname, l->error);
	return -ENOSYS;
}

void *vd_lazy_sym(struct vd_lazy *l, const char *name)
{
	void *p;

	lazy_once(l);
	if (!l->handle) {
		fprintf(stderr, "vdmount: %s: cannot load it: %s\n", l->soname,
			l->error);
		exit(2);
	}
	p = dlsym(l->handle, name);
	if (!p) {
		fprintf(stderr, "vdmount: %s: has no %s\n", l->soname, name);
		exit(2);
	}
	return p;
}
