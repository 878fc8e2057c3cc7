#!/bin/bash
# Chains that mix formats: qcow2 over VMDK over VHD over raw data, each
# layer's format recorded (qcow2 -F) or probed (a VMDK's parent, which
# records none), and a missing parent named with its path.
#
# No single tool reads such a chain (qemu-img refuses a VMDK parent that
# is not VMDK and reads a differencing VHD as if it were dynamic), so the
# oracle is a raw model of the disk: every write made to a layer with
# qemu-io or tests/mkvhd.py is made to model.raw too, in chain order.
# Writes are whole 64 KiB clusters and grains, so that no layer copies
# bytes up from a parent it could not see when it was written.
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024))
MKVHD=$VD_SRC_DIR/tests/mkvhd.py

# both FMT IMG OFF LEN BYTE: write to the layer and to the model.
both() {
	qio "$1" "$2" "write -P $5 $3 $4" || die "qemu-io write to $2 failed"
	qio raw model.raw "write -P $5 $3 $4" || die "qemu-io write to the model failed"
}

# A VMDK delta over PARENT (any format): a twoGbMaxExtentSparse set made
# by qemu-img, whose descriptor is then given parentCID and
# parentFileNameHint (VMware Virtual Disk Format 1.1, "The Descriptor").
vmdk_delta_over() {
	local img=$1 parent=$2
	must qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse "$img" "$SIZE"
	both vmdk "$img" $((2 * 1048576)) 65536 0x41
	both vmdk "$img" $((5 * 1048576 + 65536)) 131072 0x42
	sed -i -e 's/^parentCID=ffffffff$/parentCID=0badcafe/' \
		-e "/^parentCID=/a parentFileNameHint=\"$parent\"" "$img" ||
		die "cannot edit $img"
	grep -q "^parentFileNameHint=\"$parent\"" "$img" || die "no parent hint in $img"
}

# model.raw, bottom.vhd (a fixed VHD of the model's bytes), mid.vhd (a
# differencing VHD over it), delta.vmdk (over mid.vhd), top.qcow2.
build_four() {
	seed_raw model.raw "$SIZE"
	must qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on \
		model.raw bottom.vhd
	must python3 "$MKVHD" diff bottom.vhd mid.vhd \
		--write 1048576:65536:0x21 --write $((3 * 1048576)):4096:0x22 \
		--write $((7 * 1048576 + 512)):512:0x23
	qio raw model.raw "write -P 0x21 1048576 65536" \
		"write -P 0x22 $((3 * 1048576)) 4096" \
		"write -P 0x23 $((7 * 1048576 + 512)) 512" || die "model write failed"
	vmdk_delta_over delta.vmdk mid.vhd
	# Written before the backing file is set: qemu would open the
	# VMDK's parent as VMDK, which this one is not.
	must qemu-img create -q -f qcow2 top.qcow2 "$SIZE"
	both qcow2 top.qcow2 $((3 * 1048576)) 65536 0x51
	both qcow2 top.qcow2 $((SIZE - 65536)) 65536 0x52
	must qemu-img rebase -u -f qcow2 -b delta.vmdk -F vmdk top.qcow2
}

t_four() {
	build_four
	local m
	m=$(vd_mnt m)
	mount_ok "$m" top.qcow2 "$m"
	cmp_files "$m/disk.raw" model.raw
	random_reads "$m/disk.raw" model.raw 200
	umount_ok "$m"
	# Each layer mounted on its own shows its own part of the chain.
	mount_ok "$m" --format=vpc bottom.vhd "$m"
	cmp_range "$m/disk.raw" bottom.vhd vpc 0 "$SIZE"
	umount_ok "$m"
}

# The qcow2 records its backing format: a VHD is opened as VHD, not
# probed, and bytes equal qemu-img's reading of the same chain.
t_qcow2_over_vhd() {
	seed_raw base.raw "$SIZE"
	must qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on base.raw base.vhd
	must qemu-img create -q -f qcow2 -b base.vhd -F vpc top.qcow2
	scatter qcow2 top.qcow2 "$SIZE" 4 || die "scatter failed"
	local m
	m=$(vd_mnt m)
	mount_ok "$m" top.qcow2 "$m"
	cmp_oracle "$m/disk.raw" top.qcow2
	umount_ok "$m"
}

# A VMDK delta over a qcow2 and over a raw file: the parent is probed.
t_vmdk_over() {
	local pfmt=$1
	seed_raw model.raw "$SIZE"
	case $pfmt in
	qcow2) must qemu-img convert -q -f raw -O qcow2 model.raw parent.img ;;
	raw) cp model.raw parent.img ;;
	esac
	vmdk_delta_over delta.vmdk parent.img
	local m
	m=$(vd_mnt m)
	mount_ok "$m" delta.vmdk "$m"
	cmp_files "$m/disk.raw" model.raw
	umount_ok "$m"
}

# A layer whose parent is gone: the message names the missing path.
t_missing() {
	build_four
	rm -f bottom.vhd
	local m
	m=$(vd_mnt m)
	mount_fails "$m" "mid.vhd" "'bottom.vhd' not found" "$TD/bottom.vhd" \
		-- top.qcow2 "$m"
}

vd_test mixed-qcow2-vmdk-vhd-vhd t_four
vd_test mixed-qcow2-over-vhd-recorded t_qcow2_over_vhd
vd_test mixed-vmdk-over-qcow2-probed t_vmdk_over qcow2
vd_test mixed-vmdk-over-raw-probed t_vmdk_over raw
vd_test mixed-missing-parent-named t_missing
vd_finish
