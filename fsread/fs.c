/* The table of filesystem drivers, and reads of a volume through core. */
#include <errno.h>
#include <stddef.h>

#include "common/util.h"
#include "fsread/fs.h"

extern const struct vd_fs_ops vd_fs_ext;
extern const struct vd_fs_ops vd_fs_vfat;
extern const struct vd_fs_ops vd_fs_ntfs;

/* vfat.c: whether vfat can decode short names in code page cp. */
bool vd_vfat_cp_supported(unsigned cp);

const struct vd_fs_ops *const vd_fs_drivers[] = {
	&vd_fs_ext,
	&vd_fs_vfat,
	&vd_fs_ntfs,
	NULL,
};

/* -EIO (logged) unless [off, off + len) lies inside v. */
static int vol_range_check(const struct vd_vol *v, size_t len, uint64_t off)
{
	if (vd_range_ok(off, len, v->len))
		return 0;
	vd_log(VD_LOG_ERR, "%s: read of %zu bytes at 0x%llx lies past the end "
	       "of the volume (%llu bytes)", v->name, len,
	       (unsigned long long)off, (unsigned long long)v->len);
	return -EIO;
}

int vd_vol_read(const struct vd_vol *v, void *buf, size_t len, uint64_t off)
{
	int ret = vol_range_check(v, len, off);

	return ret ? ret : vd_disk_read(v->disk, buf, len, v->start + off);
}

int vd_vol_read_vec(const struct vd_vol *v, void *buf, size_t len,
		    uint64_t off, struct vd_seg *segs, unsigned max_segs,
		    unsigned *n_r)
{
	int ret = vol_range_check(v, len, off);

	*n_r = 0;
	return ret ? ret : vd_disk_read_vec(v->disk, buf, len, v->start + off,
					    segs, max_segs, n_r);
}

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
