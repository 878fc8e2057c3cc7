/* Opening an image: see image.h. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsread/fs.h"
#include "ns/image.h"

int vd_image_open(const char *path, const struct vd_image_opts *o,
		  struct vd_image *img, struct vd_err *e)
{
	struct vd_fs_opts fo = { .codepage = o->codepage };
	struct vd_ns_opts no = {
		.uid = o->uid >= 0 ? (uid_t)o->uid : getuid(),
		.gid = o->gid >= 0 ? (gid_t)o->gid : getgid(),
		.codepage = o->codepage,
		.no_partitions = o->disk_only,
		.raw_uid = getuid(),
		.raw_gid = getgid(),
		.raw_mode = 0444,
		.keys = o->open.keys,
		.mountpoint = o->mountpoint,
	};
	struct stat st;
	int ret;

	memset(img, 0, sizeof(*img));
	img->path = path;
	/* Options first: a typo should not wait for a long chain. */
	ret = vd_fs_check_opts(&fo, e);
	if (ret)
		return ret;
	ret = vd_disk_open(path, &o->open, &img->disk, e);
	if (ret)
		return ret;
	/* The raw files are the image's bytes: whoever may not read the
	 * image file may not read them either. */
	if (stat(path, &st) == 0) {
		no.time = st.st_mtim;
		no.raw_uid = st.st_uid;
		no.raw_gid = st.st_gid;
		no.raw_mode = st.st_mode & (o->open.writable ? 0666 : 0444);
	}
	ret = vd_ns_open(img->disk, path, &no, &img->ns);
	if (ret) {
		vd_disk_close(img->disk);
		img->disk = NULL;
		return vd_fail(e, ret, "%s: %s", path, strerror(-ret));
	}
	return 0;
}

void vd_image_close(struct vd_image *img)
{
	vd_ns_close(img->ns);
	vd_disk_close(img->disk);
	memset(img, 0, sizeof(*img));
}
