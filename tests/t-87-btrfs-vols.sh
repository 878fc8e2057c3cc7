#!/bin/bash
# A two-device btrfs over volumes other than partitions, and btrfs' df.
#
# One filesystem, `mkfs.btrfs -d raid1 -m raid1` over two files a.img and
# b.img, filled through the kernel's read-write mount of both (zstd
# compression on), is then placed
#  - in two LVs of one VG (lvm2's own tools, tests/mklvm.sh; LV one in two
#    segments around LV two): vdmount assembles the VG, then the btrfs
#    over its LVs, and shows btrfs-FSID/;
#  - in an OVA as two disks (one device each). A mount shows one disk of
#    an appliance (--disk=N), so each mount holds one device of the two:
#    btrfs-FSID/ from that one, a notice naming the other as missing, and
#    every file read from the RAID1 copy that is there.
# Oracle: the kernel's btrfs mounted read-only from read-only loop
# devices over a.img and b.img (`-o device=`), or over the one of them
# with `-o degraded`; tests/treecmp.py compares every path, attribute,
# xattr and byte, and statvfs (df), which vdmount counts as the kernel
# does on read-only devices (fsread/btrfs-space.c). Also df of a
# single-device btrfs partly filled, with DUP metadata.
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/mklvm.sh"

# ------------------------------------------------------------ images

# textfile FILE BYTES SEED — compressible text.
textfile() {
	"$PY" - "$@" <<-'EOF'
		import sys
		path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		out, i = bytearray(), 0
		while len(out) < n:
		    out += b"seed %d line %d: the quick brown fox %x\n" % (seed, i, i * 7919)
		    i += 1
		open(path, "wb").write(out[:n])
	EOF
}

# A two-device RAID1 btrfs (a.img, b.img, 128 MiB each), in two LVs of
# one VG (lvpair.qcow2) and as the two disks of an OVA (pair.ova).
gen_pair() {
	local la lb rc=0
	truncate -s $((128 * MIB)) a.img b.img || return 1
	mkfs.btrfs -q -f -L pair -d raid1 -m raid1 a.img b.img || return 1
	la=$(losetup -f --show a.img) || return 1
	echo "$la" >>"$VD_LOOPS"
	lb=$(losetup -f --show b.img) || return 1
	echo "$lb" >>"$VD_LOOPS"
	mkdir -p m && echo "$PWD/m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o "device=$lb,compress=zstd" "$la" m || return 1
	{
		"$PY" "$MKTREE" --profile small --seed 87 m >/dev/null &&
			textfile m/text $((6 * MIB + 77)) 8 &&
			head -c $((2 * MIB)) /dev/urandom >m/random &&
			btrfs -q subvolume create m/sv && echo inside >m/sv/file
	} || rc=1
	timeout -k 5 60 umount m || return 1
	grep -vxF -- "$PWD/m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	vd_loop_detach "$la"
	vd_loop_detach "$lb"
	[ $rc -eq 0 ] || return 1
	# One PV of 72 4-MiB extents: LV one at extents 0-15 and 48-63, LV
	# two at 16-47.
	lvm_gpt disk.raw 300 290:lvm || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p1" || return 1
	lvmc vgcreate bt-vg "${LDEV}p1" || return 1
	lvc -n one -l 16 bt-vg "${LDEV}p1:0-15" || return 1
	lvc -n two -l 32 bt-vg "${LDEV}p1:16-47" || return 1
	lvmc lvextend -l +16 bt-vg/one "${LDEV}p1:48-63" || return 1
	mlvm put bt-vg one=a.img two=b.img || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw lvpair.qcow2 || return 1
	rm -f disk.raw
	qemu-img convert -f raw -O qcow2 a.img da.qcow2 || return 1
	qemu-img convert -f raw -O qcow2 b.img db.qcow2 || return 1
	{
		echo '<?xml version="1.0" encoding="UTF-8"?>'
		echo '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"'
		echo '    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">'
		echo '  <References>'
		echo '    <File ovf:href="da.qcow2" ovf:id="file1"/>'
		echo '    <File ovf:href="db.qcow2" ovf:id="file2"/>'
		echo '  </References>'
		echo '  <DiskSection>'
		echo '    <Info>Virtual disk information</Info>'
		echo "    <Disk ovf:capacity=\"$((128 * MIB))\" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\"/>"
		echo "    <Disk ovf:capacity=\"$((128 * MIB))\" ovf:diskId=\"vmdisk2\" ovf:fileRef=\"file2\"/>"
		echo '  </DiskSection>'
		echo '  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>'
		echo '</Envelope>'
	} >pair.ovf
	tar cf pair.ova pair.ovf da.qcow2 db.qcow2 || return 1
	rm -f da.qcow2 db.qcow2
}

# A single-device btrfs with DUP metadata, partly filled (one.img).
gen_one() {
	local rc=0
	truncate -s $((300 * MIB)) one.img || return 1
	mkfs.btrfs -q -f -m dup one.img || return 1
	vd_mount_rw one.img m || return 1
	{
		"$PY" "$MKTREE" --profile small --seed 88 m >/dev/null &&
			head -c $((40 * MIB)) /dev/urandom >m/big
	} || rc=1
	lvm_kumount m || return 1
	[ $rc -eq 0 ] || return 1
}

# ------------------------------------------------------------ checks

# cmp_kernel K DIR — DIR (vdmount) against the kernel's mount K: every
# path, attribute, xattr and byte, and statvfs.
cmp_kernel() {
	T "$PY" "$TREECMP" --statfs --ignore dino "$1" "$2" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences, $2 vs the kernel: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
}

# The btrfs's UUID as the kernel's mount K says it.
k_uuid() {
	T btrfs filesystem show "$1" | sed -n 's/.*uuid: *\([0-9a-f-]*\).*/\1/p'
}

t_lvs() {
	local d uuid dev2
	need_loop
	d=$(img_or_die pair) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/lvpair.qcow2" "$MNT"
	T cmp "$MNT/bt--vg-one.raw" "$d/a.img" || die "bt--vg-one.raw differs from a.img"
	T cmp "$MNT/bt--vg-two.raw" "$d/b.img" || die "bt--vg-two.raw differs from b.img"
	T test -e "$MNT/bt--vg-one" && die "bt--vg-one/ shown for a member of a two-device btrfs"
	dev2=$(T losetup -r -f --show "$d/b.img") || die "losetup of b.img failed"
	echo "$dev2" >>"$VD_LOOPS"
	KMOUNT_OPTS=subvolid=5,device=$dev2 kmount "$d/a.img" 0 $((128 * MIB)) "$TD/k"
	uuid=$(k_uuid "$TD/k")
	T test -d "$MNT/btrfs-$uuid" || die "no btrfs-$uuid/ (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	grep -q 'devices are in the image' "$TD/mount.err" &&
		die "a device reported missing: $(head -c 300 "$TD/mount.err")"
	cmp_kernel "$TD/k" "$MNT/btrfs-$uuid"
	kumount_ok "$TD/k"
	vd_loop_detach "$dev2"
	umount_ok "$MNT"
}

# t_ova N IMG — disk N of the OVA: one device, the other named missing.
t_ova() {
	local d uuid
	need_loop
	d=$(img_or_die pair) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" --disk="$1" "$d/pair.ova" "$MNT"
	grep -q '1 of its 2 devices are in the image' "$TD/mount.err" ||
		die "no notice of the missing device: $(head -c 300 "$TD/mount.err")"
	KMOUNT_OPTS=subvolid=5,degraded kmount "$d/$2" 0 $((128 * MIB)) "$TD/k"
	uuid=$(k_uuid "$TD/k")
	T test -d "$MNT/btrfs-$uuid" || die "no btrfs-$uuid/ (ls: $(ls "$MNT" | tr '\n' ' '))"
	T test -e "$MNT/fs" && die "fs/ shown for a member of a two-device btrfs"
	cmp_kernel "$TD/k" "$MNT/btrfs-$uuid"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

t_df_one() {
	local d
	need_loop
	d=$(img_or_die one) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/one.img" "$MNT"
	KMOUNT_OPTS=subvolid=5 kmount "$d/one.img" 0 $((300 * MIB)) "$TD/k"
	cmp_kernel "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

vd_test btrfs-raid1-over-two-lvs-vs-kernel t_lvs
vd_test btrfs-raid1-ova-disk-1-vs-degraded t_ova 1 a.img
vd_test btrfs-raid1-ova-disk-2-vs-degraded t_ova 2 b.img
vd_test btrfs-df-single-device-vs-kernel t_df_one
vd_finish
