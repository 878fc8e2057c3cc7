#!/bin/bash
# The flat disk handed to the kernel: a read-only loop device over
# MNT/disk.raw reads the same bytes as qemu-img convert.
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024 + 3584))

t_loop() {
	local d m dev got o
	need_loop
	d=$(img_or_die shared_chain)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/top.qcow2" "$m"
	dev=$(T losetup -r -f --show "$m/disk.raw" 2>"$TD/losetup.err") ||
		die "losetup failed: $(cat "$TD/losetup.err")"
	echo "$dev" >>"$VD_LOOPS"
	got=$(T blockdev --getsize64 "$dev") || die "blockdev failed"
	[ "$got" = "$SIZE" ] || die "$dev is $got bytes, expected $SIZE"
	o=$(vd_oracle "$d/top.qcow2") || die "oracle failed"
	T cmp "$dev" "$o" >"$TD/cmp.out" 2>&1 || die "loop device differs: $(cat "$TD/cmp.out")"
	# Direct I/O on the loop device goes to the FUSE file each time.
	T dd if="$dev" of="$TD/direct" bs=65536 iflag=direct status=none || die "direct read failed"
	cmp "$TD/direct" "$o" >/dev/null || die "direct read of the loop device differs"
	T losetup -d "$dev" || die "losetup -d failed"
	vd_loop_forget "$dev"
	vd_loop_detach "$dev"
	umount_ok "$m"
}

vd_test loop-device-reads-disk t_loop
vd_finish
