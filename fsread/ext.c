/* ext2/3/4 on libext2fs — placeholder until the driver lands. */
#include <errno.h>

#include "fsread/fs.h"

static int ext_probe(const struct vd_vol *v)
{
	(void)v;
	return 0;
}

const struct vd_fs_ops vd_fs_ext = {
	.name = "ext4",
	.probe = ext_probe,
};
