#!/bin/bash
# Writing through the volumes above the disk: ext4 in LVM logical volumes
# (linear, striped) and in LUKS volumes (LUKS2 aes-xts-plain64, LUKS1
# aes-cbc-essiv:sha256) made writable by vdmount --overlay, and raw writes
# to a LUKS volume with 4096-byte sectors (luks-UUID.raw), encrypted with
# the volume key into the child.
#
# The model is the kernel's ext4: a read-write loop mount of a copy of
# each filesystem's plaintext with the same changes. Oracles not ours,
# after the unmount: qemu-img check of the child, the base's sha256
# unchanged; the LVs' bytes taken from the child's raw disk where lvm2
# reports their extents (tests/mklvm.py pieces), the LUKS volumes'
# plaintext from qemu's luks driver (LUKS1; the LUKS2 xts volume after
# `cryptsetup convert --type luks1` of a copy of its header, which keeps
# the data as it is); then e2fsck -fn of each and the kernel's read-only
# mount against the model. The raw LUKS writes are compared with the
# same writes on the plaintext, read back by a fresh mount.
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/mklvm.sh"

PATH=/usr/bin:$PATH
K0='write three key'

# An ext4 of src/ (NAME.img, SIZE MiB).
mkext() {
	truncate -s $(($2 * MIB)) "$1.img"
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -I 256 -d src "$1.img"
}

# NAME.luks: NAME.img (16 MiB) encrypted in place (cryptsetup reencrypt
# --encrypt, offline), 32 MiB more for the header.
enc() {
	local n=$1
	shift
	cp "$n.img" "$n.luks"
	truncate -s $((48 * MIB)) "$n.luks"
	cryptsetup reencrypt -q --encrypt --reduce-device-size 32M \
		--key-file K0 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		"$@" "$n.luks" || return 1
	cryptsetup luksUUID "$n.luks" >"$n.uuid"
}

# GPT: p1, p2 PVs of vg (lin: linear on p1, st: striped over both), p3
# LUKS2 xts (ext4), p4 LUKS1 cbc-essiv (ext4), p5 LUKS2 xts with 4 KiB
# sectors (raw writes).
gen_vols() {
	printf '%s' "$K0" >K0
	mkdir -p src/sub
	printf 'hello\n' >src/hello
	head -c 200000 /dev/urandom >src/sub/blob
	mkext lin 16 && mkext st 16 && mkext x 16 && mkext c 16 && mkext r 16 || return 1
	enc x --type luks2 --sector-size 512 --cipher aes-xts-plain64 --key-size 512 || return 1
	enc c --type luks2 --sector-size 512 --hash sha256 \
		--cipher aes-cbc-essiv:sha256 --key-size 256 || return 1
	cryptsetup convert -q --type luks1 c.luks || return 1
	enc r --type luks2 --sector-size 4096 --cipher aes-xts-plain64 --key-size 256 || return 1
	lvm_gpt disk.raw 216 34:lvm 34:lvm 48:linux 48:linux 48:linux || return 1
	lvm_place disk.raw x.luks "$(lvm_part_off disk.raw 3)" || return 1
	lvm_place disk.raw c.luks "$(lvm_part_off disk.raw 4)" || return 1
	lvm_place disk.raw r.luks "$(lvm_part_off disk.raw 5)" || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p1" "${LDEV}p2" || return 1
	lvmc vgcreate vg "${LDEV}p1" "${LDEV}p2" || return 1
	lvc -n lin -L 16m vg "${LDEV}p1" || return 1
	lvc -n st -i 2 -I 64k -L 16m vg "${LDEV}p1" "${LDEV}p2" || return 1
	mlvm put vg lin=lin.img st=st.img || return 1
	mlvm pieces vg lin st || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw base.qcow2 || return 1
	rm -f disk.raw x.luks c.luks r.luks
}

# The changes, on folder $1.
changes() {
	local d=$1
	printf 'written through %s\n' "$2" >"$d/new.txt" &&
		mkdir -p "$d/dir/sub" &&
		head -c 1000000 "$D/src/sub/blob" >"$d/dir/sub/copy" &&
		dd if=/dev/zero of="$d/dir/zeros" bs=4096 count=300 status=none &&
		printf 'x' | dd of="$d/sub/blob" bs=1 seek=777 conv=notrunc status=none &&
		rm "$d/hello" &&
		touch -d @1600000000 "$d" "$d/new.txt" "$d/dir" "$d/dir/sub" \
			"$d/dir/sub/copy" "$d/dir/zeros" "$d/sub/blob" "$d/sub"
}

# check_fs NAME FILE — e2fsck -fn of FILE (a filesystem's bytes) clean,
# and the kernel's read-only mount of it holds what the model NAME holds.
check_fs() {
	T e2fsck -fn "$2" >"$TD/fsck.$1" 2>&1 ||
		die "$1: e2fsck -fn: $(tail -n 6 "$TD/fsck.$1" | tr '\n' '|')"
	kmount "$2" 0 "$(stat -c %s "$2")" "$TD/k.$1"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino \
		--exclude lost+found "$TD/ref.$1" "$TD/k.$1" >"$TD/cmp.$1" 2>&1 ||
		die "$1 differs from the model: $(head -n 6 "$TD/cmp.$1" | tr '\n' '|')"
	kumount_ok "$TD/k.$1"
}

# lv_bytes NAME — the LV's bytes from out.raw, by the pieces lvm2 gave.
lv_bytes() {
	local lo doff len
	: >"$TD/$1.out"
	while read -r lo doff len; do
		dd if="$TD/out.raw" of="$TD/$1.out" bs=64K iflag=skip_bytes,count_bytes \
			oflag=seek_bytes skip="$doff" seek="$lo" count="$len" \
			conv=notrunc,sparse status=none || die "dd of $1 failed"
	done <"$D/$1.pieces"
}

# part_bytes N OUT — partition N of out.raw.
part_bytes() {
	dd if="$TD/out.raw" of="$2" bs=1M iflag=skip_bytes,count_bytes \
		skip="$(lvm_part_off "$D/disk.raw" "$1")" count=$((48 * MIB)) \
		conv=sparse status=none || die "dd of p$1 failed"
}

# luks_plain LUKS1-FILE OUT — the plaintext, by qemu's luks driver.
luks_plain() {
	T qemu-img convert --object secret,id=s,file="$D/K0" --image-opts \
		"driver=luks,file.filename=$1,key-secret=s" -O raw "$2" ||
		die "qemu's luks driver cannot read $1"
}

t_volumes() {
	local n u out
	need_loop
	D=$(img_or_die vols) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	BASESUM=$(sha256sum <"$TD/base.qcow2")
	M=$(vd_mnt m)
	mount_ok "$M" --key-file="$D/K0" --overlay="$TD/child.qcow2" \
		"$TD/base.qcow2" "$M"
	grep -q "read-only" "$TD/mount.err" && die "read-only: $(cat "$TD/mount.err")"
	for n in lin st x c; do
		case $n in
		lin|st) A=$M/vg-$n ;;
		*) A=$M/luks-$(cat "$D/$n.uuid") ;;
		esac
		[ -d "$A" ] || die "no $A: $(ls "$M" | tr '\n' ' ')"
		cp --sparse=always "$D/$n.img" "$TD/ref.$n.img" || die "copy failed"
		vd_mount_rw "$TD/ref.$n.img" "$TD/ref.$n" || die "kernel mount of the model failed"
		changes "$A" "$n" || die "changes through vdmount in $n failed"
		changes "$TD/ref.$n" "$n" || die "changes on the model $n failed"
	done
	# Raw writes into the 4 KiB-sector volume: unaligned, across units,
	# several at once (none overlaps another, some share a unit: 69993
	# bytes each); the same on its plaintext as read now.
	u=$(cat "$D/r.uuid")
	cp "$M/luks-$u.raw" "$TD/rmodel" || die "read of luks-$u.raw failed"
	head -c 300000 /dev/urandom >"$TD/rdata"
	for off in 1 70000 139993 1048575 5000001; do
		dd if="$TD/rdata" of="$M/luks-$u.raw" bs=9999 count=7 \
			oflag=seek_bytes seek=$off conv=notrunc status=none &
		dd if="$TD/rdata" of="$TD/rmodel" bs=9999 count=7 \
			oflag=seek_bytes seek=$off conv=notrunc status=none
	done
	wait
	umount_ok "$M"
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1) || die "qemu-img check: $out"
	echo "$out" | grep -q "No errors were found" || die "qemu-img check: $out"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$BASESUM" ] || die "the base changed"
	# The raw writes, by a fresh read-only mount of the child.
	mount_ok "$M" --key-file="$D/K0" "$TD/child.qcow2" "$M"
	cmp "$M/luks-$u.raw" "$TD/rmodel" || die "luks-$u.raw differs from its model"
	umount_ok "$M"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "convert failed"
	lv_bytes lin
	lv_bytes st
	check_fs lin "$TD/lin.out"
	check_fs st "$TD/st.out"
	part_bytes 4 "$TD/c.luks"
	luks_plain "$TD/c.luks" "$TD/c.out"
	check_fs c "$TD/c.out"
	part_bytes 3 "$TD/x.luks"
	T cryptsetup convert -q --type luks1 "$TD/x.luks" >"$TD/conv.out" 2>&1 ||
		die "cryptsetup convert: $(cat "$TD/conv.out")"
	luks_plain "$TD/x.luks" "$TD/x.out"
	check_fs x "$TD/x.out"
	rm -f "$TD"/*.raw "$TD"/*.out "$TD"/*.qcow2 "$TD"/*.luks "$TD/rmodel"
}

vd_test volumes t_volumes
vd_finish
