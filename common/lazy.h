/* Libraries loaded on first use.
 *
 * Most images need neither encryption nor NTFS nor btrfs' rarer
 * checksums, yet linking libcryptsetup, libcrypto, libntfs-3g, liblzo2,
 * libxxhash and libb2 made every start load and relocate them and the
 * dozen libraries they pull in (device-mapper, argon2, json-c, udev,
 * selinux, pcre2, gomp...): more of a mount's start-up than vdmount's
 * own work. So for vdtool's hivex, librpm (with its lua, popt, magic,
 * ...) and sqlite3, which only `vdtool inspect` uses. Instead, common/lazy-*.c (written by scripts/gen-lazy.py)
 * define the functions vdmount calls, with the libraries' own
 * prototypes; each looks up the real function with dlopen/dlsym the
 * first time it is called.
 *
 * A library that cannot be loaded is a broken installation, not bad
 * input: code that can refuse gracefully calls vd_lazy_need() first
 * (one log line, -ENOSYS); a stand-in called without that check stops
 * the process with a message. */
#ifndef VD_LAZY_H
#define VD_LAZY_H

#include <pthread.h>

struct vd_lazy {
	const char *soname; /* as the build found it (Makefile) */
	pthread_once_t once;
	void *handle;	    /* NULL: not loaded (see error) */
	char error[256];
};

extern struct vd_lazy vd_lazy_cryptsetup, vd_lazy_crypto, vd_lazy_ntfs3g,
	vd_lazy_lzo2, vd_lazy_xxhash, vd_lazy_b2;
/* vdtool inspect's: hivex, librpm, sqlite3. */
extern struct vd_lazy vd_lazy_hivex, vd_lazy_rpm, vd_lazy_sqlite3;

/* Load l now: 0, or -ENOSYS with a log line naming the library. */
int vd_lazy_need(struct vd_lazy *l);

/* The address of name in l; exits with a message when l cannot be
 * loaded or lacks name. */
void *vd_lazy_sym(struct vd_lazy *l, const char *name);

/* In a stand-in of function NAME: f, the real function. */
#define VD_LAZY_FN(name)                                                   \
	static __typeof__(&name) fn_;                                      \
	__typeof__(&name) f = __atomic_load_n(&fn_, __ATOMIC_ACQUIRE);     \
	if (!f) {                                                          \
		f = (__typeof__(&name))vd_lazy_sym(&VD_LAZY_LIB, #name);   \
		__atomic_store_n(&fn_, f, __ATOMIC_RELEASE);               \
	}

#endif
