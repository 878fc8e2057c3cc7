/* Host files: every byte core reads from the host goes through
 * vd_file_pread, which turns short reads into -EIO. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"

static int file_open(const char *path, bool rw, struct vd_file **f_r,
		     struct vd_err *e)
{
	struct vd_file *f;
	struct stat st;
	off_t end;
	int fd;

	fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		return vd_fail(e, -err, "%s: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return vd_fail(e, -EINVAL, "%s: not a regular file or block "
			       "device", path);
	}
	/* Block devices report st_size 0: ask the device. */
	end = S_ISBLK(st.st_mode) ? lseek(fd, 0, SEEK_END) : st.st_size;
	if (end < 0) {
		int err = errno;

		close(fd);
		return vd_fail(e, -err, "%s: %s", path, strerror(err));
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		close(fd);
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	}
	f->fd = fd;
	f->size = (uint64_t)end;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->alloc = (uint64_t)st.st_blocks * 512;
	/* qemu-img refuses such a file unless -U; we only read, so say it
	 * and go on. */
	if (!rw && vd_file_written_by_qemu(f))
		vd_log(VD_LOG_WARN, "%s: a running QEMU has it open for "
		       "writing; what the mount shows may change or be "
		       "inconsistent", path);
	*f_r = f;
	return 0;
}

int vd_file_open(const char *path, struct vd_file **f_r, struct vd_err *e)
{
	return file_open(path, false, f_r, e);
}

int vd_file_open_rw(const char *path, struct vd_file **f_r,
		    struct vd_err *e)
{
	return file_open(path, true, f_r, e);
}

int vd_file_open_range(const struct vd_file *f, uint64_t off, uint64_t len,
		       const char *path, struct vd_file **f_r,
		       struct vd_err *e)
{
	struct vd_file *r;
	int fd;

	if (!vd_range_ok(off, len, f->size))
		return vd_fail(e, -EUCLEAN, "%s: %llu bytes at 0x%llx lie past "
			       "the end of %s (%llu bytes)", path,
			       (unsigned long long)len, (unsigned long long)off,
			       f->path, (unsigned long long)f->size);
	fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		close(fd);
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	}
	r->fd = fd;
	r->base = f->base + off;
	r->size = len;
	r->dev = f->dev;
	r->ino = f->ino;
	/* The share of the host file's blocks, for du-like totals. */
	r->alloc = f->size ? (uint64_t)((double)f->alloc * len / f->size) :
			     0;
	r->archive = f->archive;
	*f_r = r;
	return 0;
}

/* QEMU marks the permissions it holds on an image file with OFD locks on
 * byte 100 + the permission's bit (RAW_LOCK_PERM_BASE in QEMU's
 * block/file-posix.c); bit 1 is BLK_PERM_WRITE. */
#define QEMU_LOCK_PERM_WRITE 101

bool vd_file_written_by_qemu(const struct vd_file *f)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = QEMU_LOCK_PERM_WRITE,
		.l_len = 1,
	};

	if (f->base || fcntl(f->fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

void vd_file_close(struct vd_file *f)
{
	if (!f)
		return;
	close(f->fd);
	free(f->path);
	free(f);
}

int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	if (!vd_range_ok(off, len, f->size)) {
		vd_log(VD_LOG_ERR, "%s: read of %zu bytes at 0x%llx lies past "
		       "the end of the file (%llu bytes)", f->path, len,
		       (unsigned long long)off, (unsigned long long)f->size);
		return -EIO;
	}
	off += f->base;
	while (len > 0) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			vd_log(VD_LOG_ERR, "%s: read at 0x%llx: %s", f->path,
			       (unsigned long long)off,
			       n < 0 ? strerror(errno) :
				       "file ended early (truncated?)");
			return -EIO;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

uint64_t vd_file_size(const struct vd_file *f)
{
	return f->size;
}
