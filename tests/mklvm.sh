# tests/mklvm.sh — shell helpers that build LVM2 disk images with lvm2's
# own tools (sourced by tests/t-86-lvm.sh, after tests/lib.sh).
#
# This kernel has no device-mapper and no partition-table parsers: a disk
# file gets a loop device (losetup -P) whose partitions partx adds; pvcreate,
# vgcreate and lvcreate run on those partitions only (--devices) with
# activation disabled (tests/mklvm.py adds both to every lvm2 command). No
# LV is ever activated, so the LVs' bytes are written by tests/mklvm.py at
# the extents lvm2 reports; the file each LV's bytes came from is its
# oracle. Generators run inside vd_img: plain return codes, no die.

MKLVM=$VD_LIB_DIR/mklvm.py
MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576
# GPT type "Linux LVM"
LVM_TYPE=E6D6D379-F507-44C2-A23C-238F2A3DF928

# The interpreter itself: a version manager's python3 shim can cost
# seconds a call on a loaded machine, and the builders make many.
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || PY=python3
[ -n "$PY" ] || PY=python3
# The same interpreter for lib.sh's helpers (random_reads, treecmp), when
# its folder holds a python3.
if [ -x "$(dirname "$PY")/python3" ]; then
	PATH=$(dirname "$PY"):$PATH
fi

mlvm() { "$PY" "$MKLVM" "$@"; }
# lvmc CMD ARGS... — an lvm2 command with mklvm.py's options (lvm_attach
# sets LVMCONF), without a python in between.
lvmc() {
	local rc
	LVM_SUPPRESS_FD_WARNINGS=1 "$1" --devices "$MKLVM_DEVICES" --config "$LVMCONF" "${@:2}" \
		</dev/null >"$LDIR.lvm.out" 2>&1
	rc=$?
	grep -v 'WARNING: \(Activation disabled\|This metadata update\|Logical volume .* not zeroed\)' "$LDIR.lvm.out"
	return $rc
}
# lvc ARGS... — lvcreate, inactive, neither zeroing nor wiping (both would
# need the LV active).
lvc() { lvmc lvcreate -an -Zn -Wn "$@"; }

# lvm_attach DISK — a loop device over DISK with its partitions
# (/dev/loopNpK); sets LDEV and MKLVM_DEVICES (every partition of DISK).
# Recorded, so a test's cleanup detaches it if the builder fails halfway.
lvm_attach() {
	local i p
	LDEV=$(losetup -P -f --show "$1") || return 1
	echo "$LDEV" >>"$VD_LOOPS"
	# A kernel with partition parsers has added them already.
	partx -a "$LDEV" 2>/dev/null
	for i in $(seq 50); do
		[ -b "${LDEV}p1" ] && break
		sleep 0.1
	done
	[ -b "${LDEV}p1" ] || { echo "no ${LDEV}p1 after partx -a"; return 1; }
	MKLVM_DEVICES=
	for p in "$LDEV"p*; do
		MKLVM_DEVICES=${MKLVM_DEVICES:+$MKLVM_DEVICES,}$p
	done
	export MKLVM_DEVICES
	LVMCONF=$(mlvm config) || return 1
	LDIR=$PWD/.lvm
}

# lvm_detach — flush and detach LDEV (its partitions go with it).
lvm_detach() {
	sync "$LDEV"
	blockdev --flushbufs "$LDEV" 2>/dev/null
	losetup -d "$LDEV" || return 1
	vd_loop_forget "$LDEV"
	LDEV=
}


lvm_kumount() {
	timeout -k 5 60 umount "$1" || return 1
	grep -vxF -- "$1" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	rmdir "$1"
}

# lvm_mkext IMG SIZE TAG [MKFS-ARGS...] — IMG holds an ext4 made by
# mkfs.ext4 -d from mktree's small tree (made once per run: gen_tree)
# plus tag.bin, 300 KB of random bytes of its own; e2fsck must find
# nothing. (Unlike tests/t-91-ext.sh's mkext, the times stay mkfs's whole
# seconds: the kernel's view of the same image is the oracle, and t-91
# tests the times.)
lvm_mkext() {
	local img=$1 size=$2 tag=$3 tree
	shift 3
	tree=$(vd_img tree) || return 1
	rm -f "$img"
	truncate -s "$size" "$img" || return 1
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -I 256 "$@" -d "$tree/tree" "$img" || return 1
	head -c 300000 /dev/urandom >"$img.tag"
	debugfs -w -R "write $img.tag tag.bin" "$img" >/dev/null 2>&1 || return 1
	debugfs -R "stat /tag.bin" "$img" 2>/dev/null | grep -q 'Size: 300000' ||
		{ echo "debugfs did not write tag.bin into $img"; return 1; }
	rm -f "$img.tag"
	printf '%s\n' "$tag" >"$img.tagname"
	e2fsck -fn "$img" >"$img.fsck" 2>&1 || { cat "$img.fsck"; return 1; }
}

# lvm_ext_change IMG NEW TAG — NEW is a copy of the ext4 IMG with files
# added, rewritten, removed and renamed by the kernel (a later state of
# the same filesystem: a thin snapshot, the top of a qcow2 chain).
lvm_ext_change() {
	local img=$1 new=$2 tag=$3 rc=0
	cp --sparse=always "$img" "$new" || return 1
	vd_mount_rw "$new" "$new.mnt" || return 1
	{
		mkdir -p "$new.mnt/changed/$tag" &&
			head -c 700000 /dev/urandom >"$new.mnt/changed/$tag/new.bin" &&
			printf '%s\n' "$tag" >"$new.mnt/changed/hostname" &&
			head -c 5000 /dev/urandom >"$new.mnt/files/size_4097" &&
			rm -f "$new.mnt/files/size_65537" &&
			mv "$new.mnt/files/size_1025" "$new.mnt/changed/moved" &&
			sync -f "$new.mnt"
	} || rc=1
	lvm_kumount "$new.mnt" || return 1
	[ $rc -eq 0 ] || return 1
	e2fsck -fn "$new" >"$new.fsck" 2>&1 || { cat "$new.fsck"; return 1; }
}

# lvm_data FILE SIZE SEED — SIZE bytes: random runs at seeded offsets
# (one at the very start, one ending at the very end), zeros between.
lvm_data() {
	"$PY" - "$1" "$2" "$3" <<-'EOF'
		import random, sys
		path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		rng = random.Random(seed)
		with open(path, "wb") as f:
		    f.truncate(size)
		    runs = [(0, 5000), (size - 70000, 70000)]
		    for _ in range(12):
		        n = rng.randrange(1, 600000)
		        runs.append((rng.randrange(0, size - n), n))
		    for off, n in runs:
		        f.seek(off)
		        f.write(rng.randbytes(n))
	EOF
}

# lvm_gpt DISK SIZE_MIB PART... — a GPT on a new sparse DISK; each PART
# is "SIZE_MIB:TYPE" (TYPE: lvm, linux, esp), the first at 1 MiB,
# each after the last.
lvm_gpt() {
	local disk=$1 size=$2 p start=2048 n=0
	shift 2
	rm -f "$disk"
	truncate -s $((size * MIB)) "$disk"
	{
		echo "label: gpt"
		for p in "$@"; do
			n=$((n + 1))
			local t=${p#*:}
			case $t in
			lvm) t=$LVM_TYPE ;;
			linux) t=0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;;
			esp) t=C12A7328-F81F-11D2-BA4B-00A0C93EC93B ;;
			esac
			echo "start=$start, size=$((${p%%:*} * 2048)), type=$t"
			start=$((start + ${p%%:*} * 2048))
		done
	} | sfdisk -q "$disk" || return 1
	sfdisk --json "$disk" >"$disk.json"
}

# lvm_part_off DISK N — partition N's byte offset (from sfdisk's JSON).
lvm_part_off() {
	"$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
print(t["partitions"][int(sys.argv[2]) - 1]["start"] * 512)' "$1.json" "$2"
}

# lvm_place DISK IMG OFFSET — copy IMG into DISK at OFFSET.
lvm_place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}
