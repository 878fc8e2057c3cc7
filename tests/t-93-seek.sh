#!/bin/bash
# SEEK_DATA / SEEK_HOLE on guest files (pN/) and on partitions (pN.raw).
#
# Oracles: for a guest file, the kernel's own ext4 (a read-only loop mount
# of the same partition) answering lseek on the same file; for pN.raw, the
# holes of disk.raw (already checked against qemu-img map by t-10) within
# the partition's range.
. "$(dirname "$0")/lib.sh"

P1_START=$((1024 * 1024))
P1_SECTORS=120000

# A GPT disk (qcow2): p1 ext4 holding sparse and dense files, p2 empty.
gen_seekdisk() {
	local out=$1/disk.qcow2 t=$1/tree
	mkdir -p "$t" || return 1
	# Data at 0, 1 MiB (8 KiB, two blocks), 10 MiB (1 byte), then a hole
	# to the end; a file that ends in data; a dense file; an empty file.
	truncate -s 20M "$t/sparse" &&
		printf 'head' | dd of="$t/sparse" conv=notrunc status=none &&
		head -c 8192 /dev/urandom | dd of="$t/sparse" bs=1M seek=1 conv=notrunc status=none &&
		printf 'x' | dd of="$t/sparse" bs=1M seek=10 conv=notrunc status=none || return 1
	truncate -s 3M "$t/tail" &&
		head -c 5000 /dev/urandom | dd of="$t/tail" bs=1 seek=$((3 * 1048576 - 5000)) conv=notrunc status=none || return 1
	head -c 200000 /dev/urandom >"$t/dense" && : >"$t/empty" || return 1
	truncate -s 128M "$out.raw" &&
		printf 'label: gpt\nstart=%d, size=%d, type=linux\nstart=%d, size=20000, type=linux\n' \
			$((P1_START / 512)) $P1_SECTORS $((P1_START / 512 + P1_SECTORS + 2048)) |
		sfdisk -q "$out.raw" &&
		mkfs.ext4 -q -F -b 4096 -d "$t" -E offset=$P1_START "$out.raw" $((P1_SECTORS / 2))k &&
		qemu-img convert -q -f raw -O qcow2 "$out.raw" "$out"
}

t_guest_files() {
	local img m k f
	img=$(img_or_die seekdisk)/disk.qcow2 || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$img" "$m"
	k=$TD/k
	kmount "$img.raw" $P1_START $((P1_SECTORS * 512)) "$k"
	for f in sparse tail dense empty; do
		python3 "$VD_SRC_DIR/tests/seekmap.py" "$k/$f" >"$TD/want.$f" ||
			die "seekmap on the kernel's $f failed"
		python3 "$VD_SRC_DIR/tests/seekmap.py" "$m/p1/$f" >"$TD/got.$f" 2>"$TD/err" ||
			die "seekmap on p1/$f failed: $(cat "$TD/err")"
		cmp -s "$TD/want.$f" "$TD/got.$f" ||
			die "p1/$f: extents $(tr '\n' ' ' <"$TD/got.$f"), the kernel's $(tr '\n' ' ' <"$TD/want.$f")"
	done
	# The sparse file really has holes (else the test proves nothing).
	[ "$(wc -l <"$TD/want.sparse")" -ge 3 ] || die "the sparse file has no holes"
	kumount_ok "$k"
	umount_ok "$m"
}

t_partitions() {
	local img m n start len
	img=$(img_or_die seekdisk)/disk.qcow2 || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$img" "$m"
	for n in 1 2; do
		read -r start len < <(sfdisk -J "$img.raw" | python3 -c "
import json, sys
p = json.load(sys.stdin)['partitiontable']['partitions'][$n - 1]
print(p['start'] * 512, p['size'] * 512)")
		python3 "$VD_SRC_DIR/tests/seekmap.py" "$m/disk.raw" "$start" "$len" >"$TD/want" ||
			die "seekmap on disk.raw failed"
		python3 "$VD_SRC_DIR/tests/seekmap.py" "$m/p$n.raw" >"$TD/got" 2>"$TD/err" ||
			die "seekmap on p$n.raw failed: $(cat "$TD/err")"
		cmp -s "$TD/want" "$TD/got" ||
			die "p$n.raw: extents $(head -c 300 "$TD/got" | tr '\n' ' '), disk.raw's range: $(head -c 300 "$TD/want" | tr '\n' ' ')"
	done
	# p2 is all holes: SEEK_DATA from 0 fails, SEEK_HOLE stays.
	[ ! -s "$TD/got" ] || die "p2.raw (never written) reports data: $(head -c 200 "$TD/got")"
	umount_ok "$m"
}

vd_test seek-guest-files-vs-kernel t_guest_files
vd_test seek-partitions-vs-disk t_partitions
vd_finish
