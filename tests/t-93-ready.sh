#!/bin/bash
# vdmount answers the kernel's INIT before it daemonises (fuse/vdmount.c,
# answer_init): when the command returns, the mount is initialised and
# its readahead already raised (fuse/tree.c: four requests of 512 KiB,
# 2048 KiB), before any request has been sent to it. Before, both
# waited for the daemon's first worker, and the readahead for the first
# lookup: read_ahead_kb, read right after the command returned, was the
# INIT reply's 128. Read here without sending the mount a request (the
# device from mountinfo, not a stat of the mountpoint), read-only and
# through a new overlay; then the mount must answer as before.
. "$(dirname "$0")/lib.sh"

# ra_of MNT: read_ahead_kb of the mount at MNT, found in mountinfo
ra_of() {
	local dev
	dev=$(awk -v m="$1" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
	[ -n "$dev" ] || die "$1 is not in mountinfo"
	cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null ||
		die "no read_ahead_kb for $1 (device $dev)"
}

t_ready() {
	local mode=$1 m ra
	# Raising the readahead needs root (best effort otherwise).
	[ "$(id -u)" = 0 ] || skip_test "needs root (writes read_ahead_kb)"
	T qemu-img create -q -f qcow2 base.qcow2 64M || die "qemu-img create failed"
	qio qcow2 base.qcow2 "write -P 0x5a 1M 64k" || die "qemu-io failed"
	m=$(vd_mnt m)
	case $mode in
	ro) mount_ok "$m" base.qcow2 "$m" ;;
	overlay) mount_ok "$m" --overlay="$TD/child.qcow2" base.qcow2 "$m" ;;
	esac
	ra=$(ra_of "$m")
	[ "$ra" = 2048 ] ||
		die "read_ahead_kb is $ra right after vdmount returned (want 2048: INIT answered, readahead raised)"
	cmp <(T dd if="$m/disk.raw" bs=64k skip=16 count=1 status=none) \
		<(head -c 65536 /dev/zero | tr '\0' '\132') ||
		die "disk.raw does not read back what qemu-io wrote"
	[ "$(ra_of "$m")" = 2048 ] || die "read_ahead_kb changed after the first requests"
	umount_ok "$m"
	if [ "$mode" = overlay ]; then
		T qemu-img check -q child.qcow2 || die "qemu-img check of the child failed"
	fi
}

vd_test mount-initialised-when-vdmount-returns t_ready ro
vd_test overlay-initialised-when-vdmount-returns t_ready overlay
