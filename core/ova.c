/* OVA / OVF appliances — placeholder until the reader lands. */
#include <errno.h>

#include "core/ova.h"

int vd_appliance_open(struct vd_disk *d, struct vd_file **f, char **path,
		      unsigned disk, struct vd_archive **ar_r,
		      struct vd_err *e)
{
	(void)d;
	(void)f;
	(void)path;
	(void)disk;
	(void)e;
	*ar_r = NULL;
	return 0;
}

int vd_archive_open_member(struct vd_archive *a, const char *name,
			   struct vd_file **f_r, char **path_r,
			   struct vd_err *e)
{
	(void)a;
	(void)name;
	(void)f_r;
	(void)path_r;
	(void)e;
	return -ENOENT;
}

void vd_archive_free(struct vd_archive *a)
{
	(void)a;
}
