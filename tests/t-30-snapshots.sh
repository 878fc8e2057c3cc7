#!/bin/bash
# qcow2 internal snapshots: the active layer, a snapshot by name and by id
# (--snapshot= and -o snapshot=), snapshots over a backing file, after the
# image grew, and an unknown snapshot.
# Oracle: qemu-img convert -O raw -l snapshot.name=X / snapshot.id=N.
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024 + 3584))

gen_snap() {
	seed_raw seed.raw "$SIZE"
	qemu-img convert -O qcow2 seed.raw snap.qcow2 || return 1
	rm -f seed.raw
	scatter qcow2 snap.qcow2 "$SIZE" 1 || return 1
	qemu-img snapshot -c s1 snap.qcow2 || return 1
	scatter qcow2 snap.qcow2 "$SIZE" 2 || return 1
	qio qcow2 snap.qcow2 "write -z 0 65536" "write -P 0x99 100000 300000" || return 1
	qemu-img snapshot -c s2 snap.qcow2 || return 1
	scatter qcow2 snap.qcow2 "$SIZE" 3 || return 1
	qio qcow2 snap.qcow2 "write -z -u 131072 131072" "write -P 0x98 $((SIZE / 2)) 70000" || return 1
	qemu-img snapshot -l snap.qcow2 >snap.list

	# A snapshot of a layer over a backing file.
	seed_raw base.raw "$SIZE"
	qemu-img convert -O qcow2 base.raw base.qcow2 || return 1
	rm -f base.raw
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 || return 1
	scatter qcow2 over.qcow2 "$SIZE" 4 || return 1
	qemu-img snapshot -c before over.qcow2 || return 1
	scatter qcow2 over.qcow2 "$SIZE" 5 || return 1

	# A snapshot taken before the image grew.
	qemu-img create -q -f qcow2 grow.qcow2 8M || return 1
	qio qcow2 grow.qcow2 "write -P 0x11 0 1M" "write -P 0x12 $((8 * 1048576 - 512)) 512" || return 1
	qemu-img snapshot -c small grow.qcow2 || return 1
	qemu-img resize -q grow.qcow2 12M || return 1
	qio qcow2 grow.qcow2 "write -P 0x22 $((10 * 1048576)) 1M" "write -P 0x23 0 4096"
}

# t_snap IMG HOW VALUE ORACLE-OPTION
t_snap() {
	local d m
	d=$(img_or_die snap)
	m=$(vd_mnt m)
	case $2 in
	flag) mount_ok "$m" --snapshot="$3" "$d/$1" "$m" ;;
	opt) mount_ok "$m" -o snapshot="$3" "$d/$1" "$m" ;;
	optafter) mount_ok "$m" "$d/$1" "$m" -o snapshot="$3" ;;
	esac
	check_root_tree "$m" "$SIZE"
	cmp_oracle "$m/disk.raw" "$d/$1" -l "$4"
	umount_ok "$m"
}

t_active() {
	local d
	d=$(img_or_die snap)
	mount_compare "$d/$1"
}

t_unknown() {
	local d m
	d=$(img_or_die snap)
	m=$(vd_mnt m)
	# The message names the snapshot asked for and lists those that exist.
	mount_fails "$m" "no snapshot 'nosuch'" "s1" "s2" -- --snapshot=nosuch "$d/snap.qcow2" "$m"
	mount_fails "$m" "no snapshot '9'" "s1" -- --snapshot=9 "$d/snap.qcow2" "$m"
}

# A format without internal snapshots refuses --snapshot, never ignores it.
t_raw_snapshot() {
	local d m
	d=$(img_or_die snap)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/snap.qcow2: raw images have no internal snapshots (--snapshot=s1)" \
		-- -F raw --snapshot=s1 "$d/snap.qcow2" "$m"
}

# The snapshot was taken at 8 MiB; the image is now 12 MiB. qemu-img
# convert shows the snapshot at the current size (zeros past 8 MiB); the
# snapshot's own size is as fair. Either way the first 8 MiB must match.
t_grown() {
	local d m o size
	d=$(img_or_die snap)
	m=$(vd_mnt m)
	mount_ok "$m" --snapshot=small "$d/grow.qcow2" "$m"
	o=$(vd_oracle "$d/grow.qcow2" -l snapshot.name=small) || die "oracle failed"
	size=$(stat -c %s "$m/disk.raw")
	case $size in
	$((8 * 1048576))) ;;
	$((12 * 1048576))) cmp_files "$m/disk.raw" "$o" ;;
	*) die "snapshot disk.raw is $size bytes, expected 8 MiB or 12 MiB" ;;
	esac
	local out
	out=$(T cmp -n $((8 * 1048576)) "$m/disk.raw" "$o" 2>&1) || die "first 8 MiB differ: $out"
	umount_ok "$m"
	mount_compare "$d/grow.qcow2"
}

vd_test snapshot-active-layer t_active snap.qcow2
vd_test snapshot-by-name t_snap snap.qcow2 flag s1 snapshot.name=s1
vd_test snapshot-by-name-2 t_snap snap.qcow2 flag s2 snapshot.name=s2
vd_test snapshot-by-id t_snap snap.qcow2 flag 1 snapshot.id=1
vd_test snapshot-option-name t_snap snap.qcow2 opt s2 snapshot.name=s2
vd_test snapshot-option-id-after-args t_snap snap.qcow2 optafter 2 snapshot.id=2
vd_test snapshot-unknown t_unknown
vd_test snapshot-refused-on-raw t_raw_snapshot
vd_test snapshot-over-backing-active t_active over.qcow2
vd_test snapshot-over-backing t_snap over.qcow2 flag before snapshot.name=before
vd_test snapshot-before-grow t_grown
vd_finish
