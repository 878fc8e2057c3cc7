/* Logging and one-line error messages.
 *
 * Open-time failures fill a struct vd_err: one line naming the file and
 * what was wrong. Problems found later (a read that meets corrupt
 * metadata) go to vd_log: stderr while vdmount runs in the foreground,
 * syslog once it has daemonised. */
#ifndef VD_LOG_H
#define VD_LOG_H

#include <stddef.h>

#define VD_ERR_LEN 1024

struct vd_err {
	char msg[VD_ERR_LEN];
};

enum vd_log_level { VD_LOG_ERR, VD_LOG_WARN, VD_LOG_INFO, VD_LOG_DEBUG };

__attribute__((format(printf, 2, 3))) void vd_log(enum vd_log_level lvl,
						  const char *fmt, ...);

/* Route vd_log to syslog (after daemonising) or stderr. */
void vd_log_use_syslog(int on);
void vd_log_set_level(enum vd_log_level max);
/* The program name messages start with (default "vdmount"); call it
 * before any thread starts. */
void vd_log_set_name(const char *name);

/* Fill e (if not NULL) with a one-line message and return err (a negative
 * errno), so that `return vd_fail(e, -EUCLEAN, ...)` reads naturally. */
__attribute__((format(printf, 3, 4))) int vd_fail(struct vd_err *e, int err,
						  const char *fmt, ...);

#endif
