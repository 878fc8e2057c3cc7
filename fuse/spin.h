/* Receiving FUSE requests: workers take turns reading /dev/fuse, and a
 * metadata request is served by the worker that read it (spin.c says
 * why). */
#ifndef VD_FUSE_SPIN_H
#define VD_FUSE_SPIN_H

#include "fuse/tree.h"

/* Put the session's requests through spin.c's receive (after
 * fuse_session_mount, before the loop); nothing with
 * VDMOUNT_RECEIVE=libfuse. 0, or -errno with a log line. */
int vd_fuse_spin_start(struct fuse_session *se);

#endif
