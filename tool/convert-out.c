/* vdtool convert: the output file, complete or absent.
 *
 * The image is written into an unnamed file in OUT's folder (O_TMPFILE),
 * made durable, and only then linked under its name: a convert killed in
 * any way, SIGKILL included, leaves nothing behind. Where the filesystem
 * has no O_TMPFILE the file gets a hidden temporary name (.OUT.XXXXXX)
 * that SIGINT, SIGTERM and SIGHUP remove; only SIGKILL or a crash can
 * leave that one, never a file under OUT's name. Without --force an OUT
 * that exists is refused before anything is read, and the final link
 * does not replace one that appeared meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool/convert.h"

/* The temporary name to remove on a signal ("" when none): written
 * before the signals are caught, read by the handler only. */
static char out_sig_path[PATH_MAX];
static volatile sig_atomic_t out_sig_armed;

static void out_on_signal(int sig)
{
	if (out_sig_armed && out_sig_path[0])
		unlink(out_sig_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void out_arm(const char *path)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = out_on_signal };

	out_sig_armed = 0;
	snprintf(out_sig_path, sizeof(out_sig_path), "%s", path ? path : "");
	out_sig_armed = 1;
	sigemptyset(&sa.sa_mask);
	/* A signal ignored when we started (nohup, a background job)
	 * stays ignored. */
	for (unsigned i = 0; i < VD_ARRAY_SIZE(sigs); i++) {
		struct sigaction old;

		if (!sigaction(sigs[i], NULL, &old) &&
		    old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

static void out_disarm(void)
{
	out_sig_armed = 0;
	out_sig_path[0] = '\0';
}

int conv_out_open(struct conv_out *o, const char *final, bool force)
{
	char *tmp = strdup(final);
	struct stat st;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->force = force;
	o->final = strdup(final);
	o->dir = tmp ? strdup(dirname(tmp)) : NULL;
	free(tmp);
	if (!o->final || !o->dir) {
		vdt_error("out of memory");
		conv_out_abort(o);
		return -1;
	}
	if (!force && !lstat(final, &st)) {
		vdt_error("%s: exists (use --force to replace it)", final);
		conv_out_abort(o);
		return -1;
	}
	if (force && !stat(final, &st) && !S_ISREG(st.st_mode)) {
		vdt_error("%s: not a regular file", final);
		conv_out_abort(o);
		return -1;
	}
	o->fd = open(o->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
	if (o->fd >= 0) {
		/* Permissions as a created file gets them (O_TMPFILE
		 * applies the umask too). */
		out_arm(NULL);
		return 0;
	}
	tmp = strdup(final);
	if (!tmp || asprintf(&o->tmp, "%s/.%s.XXXXXX", o->dir,
			     basename(tmp)) < 0) {
		free(tmp);
		o->tmp = NULL;
		vdt_error("out of memory");
		conv_out_abort(o);
		return -1;
	}
	free(tmp);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		vdt_error("%s: %s", o->dir, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		conv_out_abort(o);
		return -1;
	}
	{
		mode_t um = umask(0);

		umask(um);
		fchmod(o->fd, 0666 & ~um);
	}
	out_arm(o->tmp);
	return 0;
}

static void out_sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int conv_out_commit(struct conv_out *o)
{
	char proc[64];
	int ret = 0;

	if (fsync(o->fd)) {
		vdt_error("%s: %s", o->final, strerror(errno));
		conv_out_abort(o);
		return -1;
	}
	if (!o->tmp) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
		if (!o->force) {
			if (linkat(AT_FDCWD, proc, AT_FDCWD, o->final,
				   AT_SYMLINK_FOLLOW))
				ret = -errno;
			goto done;
		}
		/* A name to rename over OUT. */
		for (unsigned i = 0; i < 100; i++) {
			free(o->tmp);
			if (asprintf(&o->tmp, "%s.tmp%u.%ld", o->final, i,
				     (long)getpid()) < 0) {
				o->tmp = NULL;
				ret = -ENOMEM;
				goto done;
			}
			out_arm(o->tmp);
			if (!linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp,
				    AT_SYMLINK_FOLLOW))
				break;
			if (errno != EEXIST || i == 99) {
				ret = -errno;
				free(o->tmp);
				o->tmp = NULL;
				goto done;
			}
		}
	}
	if (o->force) {
		if (rename(o->tmp, o->final))
			ret = -errno;
	} else if (link(o->tmp, o->final)) {
		ret = -errno;
	}
	unlink(o->tmp);
done:
	out_disarm();
	if (ret) {
		vdt_error("%s: %s", o->final, ret == -EEXIST ?
			  "appeared while it was written (use --force to "
			  "replace it)" : strerror(-ret));
		conv_out_abort(o);
		return -1;
	}
	out_sync_dir(o->dir);
	close(o->fd);
	o->fd = -1;
	free(o->tmp);
	free(o->final);
	free(o->dir);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	return 0;
}

void conv_out_abort(struct conv_out *o)
{
	if (o->tmp)
		unlink(o->tmp);
	out_disarm();
	if (o->fd >= 0)
		close(o->fd);
	free(o->tmp);
	free(o->final);
	free(o->dir);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}
