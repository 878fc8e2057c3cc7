/* raw: the file is the disk, byte for byte and of the same size. (QEMU
 * pads a raw file to whole 512-byte sectors; disk.raw stays the file.)
 * Holes in the host file are reported as ZERO runs, so reads skip them
 * and SEEK_HOLE finds them. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"

static int raw_probe(const uint8_t *head, size_t len)
{
	(void)head;
	(void)len;
	return 0; /* the fallback when nothing else claims a file */
}

static int raw_open(struct vd_layer *l, const struct vd_layer_opts *o,
		    struct vd_err *e)
{
	(void)o;
	(void)e;
	l->size = l->file->size;
	return 0;
}

/* No data at or after host offset pos: a hole up to the file's end. The
 * file may have been cut short since it was opened (another process
 * truncated it): what is gone fails, not reads as zeros. */
static int raw_map_tail(struct vd_layer *l, off_t pos, struct vd_run *r)
{
	struct stat st;

	r->type = VD_RUN_ZERO;
	if (fstat(l->file->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_size <= pos) {
		vd_log(VD_LOG_ERR, "%s: read at 0x%llx lies past the end of "
		       "the file (now %lld bytes: truncated?)", l->path,
		       (unsigned long long)pos, (long long)st.st_size);
		return -EIO;
	}
	r->len = VD_MIN(r->len, (uint64_t)(st.st_size - pos));
	return 0;
}

static int raw_map(struct vd_layer *l, uint64_t off, uint64_t len,
		   struct vd_run *r)
{
	struct vd_file *f = l->file;
	off_t pos = (off_t)(f->base + off), next;

	r->file = f;
	r->host_off = off;
	r->type = VD_RUN_DATA;
	r->len = len;

	next = lseek(f->fd, pos, SEEK_DATA);
	if (next < 0) {
		/* ENXIO: only a hole from here to EOF, or the file now ends
		 * before pos; anything else: the host filesystem cannot
		 * tell, so treat it all as data. */
		if (errno == ENXIO)
			return raw_map_tail(l, pos, r);
		return 0;
	}
	if (next > pos) {
		r->type = VD_RUN_ZERO;
		r->len = VD_MIN(len, (uint64_t)(next - pos));
		return 0;
	}
	next = lseek(f->fd, pos, SEEK_HOLE);
	if (next > pos)
		r->len = VD_MIN(len, (uint64_t)(next - pos));
	return 0;
}

const struct vd_format vd_format_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.map = raw_map,
};
