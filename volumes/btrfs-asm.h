/* volumes/btrfs-asm.c: a btrfs filesystem over several volumes, as the
 * volume layer assembles it for fsread/btrfs.c. */
#ifndef VD_BTRFS_ASM_H
#define VD_BTRFS_ASM_H

#include <stdint.h>

#include "volumes/vol.h"

/* The vd_vol_ops.kind of an assembled btrfs volume; its desc is a
 * struct vd_btrfs_devs. */
#define VD_BTRFS_ASM_KIND "btrfs"

struct vd_btrfs_dev {
	uint64_t devid;
	const struct vd_vol *vol;
};

/* The devices found of one filesystem (fsid), by devid; num_devices is
 * what their superblocks say the filesystem has. */
struct vd_btrfs_devs {
	uint8_t fsid[16];
	uint64_t num_devices;
	unsigned n;
	struct vd_btrfs_dev dev[];
};

#endif
