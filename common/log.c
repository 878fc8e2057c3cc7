#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>

static atomic_int log_syslog;
static const char *log_name = "vdmount"; /* set before any thread starts */

void vd_log_set_name(const char *name)
{
	log_name = name;
}
static atomic_int log_max = VD_LOG_INFO;

void vd_log_use_syslog(int on)
{
	if (on)
		openlog(log_name, LOG_PID, LOG_DAEMON);
	atomic_store(&log_syslog, on);
}

void vd_log_set_level(enum vd_log_level max)
{
	atomic_store(&log_max, (int)max);
}

void vd_log(enum vd_log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error: ", "warning: ", "", "" };
	char line[VD_ERR_LEN];
	va_list ap;

	if ((int)lvl > atomic_load(&log_max))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_load(&log_syslog))
		syslog(prio[lvl], "%s%s", tag[lvl], line);
	else
		fprintf(stderr, "%s: %s%s\n", log_name, tag[lvl], line);
}

int vd_fail(struct vd_err *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}
