/* The table of filesystem drivers. */
#include <errno.h>
#include <stddef.h>

#include "common/util.h"
#include "fsread/fs.h"

extern const struct vd_fs_ops vd_fs_ext;
extern const struct vd_fs_ops vd_fs_vfat;
extern const struct vd_fs_ops vd_fs_xfs;
extern const struct vd_fs_ops vd_fs_ntfs;
extern const struct vd_fs_ops vd_fs_btrfs;

/* vfat.c: whether vfat can decode short names in code page cp. */
bool vd_vfat_cp_supported(unsigned cp);

const struct vd_fs_ops *const vd_fs_drivers[] = {
	&vd_fs_ext,
	&vd_fs_vfat,
	&vd_fs_xfs,
	&vd_fs_ntfs,
	&vd_fs_btrfs,
	NULL,
};

int vd_fs_mount(const struct vd_vol *v, const struct vd_fs_opts *o,
		struct vd_fs **fs_r, struct vd_err *e)
{
	for (unsigned i = 0; vd_fs_drivers[i]; i++)
		if (vd_fs_drivers[i]->probe(v))
			return vd_fs_drivers[i]->mount(v, o, fs_r, e);
	return -ENODEV;
}

int vd_fs_check_opts(const struct vd_fs_opts *o, struct vd_err *e)
{
	if (!vd_vfat_cp_supported(o->codepage))
		return vd_fail(e, -EINVAL, "code page %u is not supported "
			       "(vfat knows 437, 737, 775, 850, 852, 855, 857, "
			       "860-866, 869, 874, 932, 936, 949, 950, 1250, "
			       "1251, 1255)", o->codepage);
	return 0;
}
