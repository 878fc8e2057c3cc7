#!/bin/bash
# Partitions and ext2/3/4 files, against the kernel.
#
# Disks are built at test time by real tools: sfdisk writes the tables
# (GPT with 512- and 4096-byte sectors, MBR with an extended partition and
# logicals), mkfs.ext4 -d fills the filesystems from trees that
# tests/mktree.py generates, mkfs.vfat + mcopy the ESP, mkswap the swap;
# qemu-img converts to qcow2. Oracles: sfdisk --json (libfdisk) for the
# tables, qemu-img convert -O raw for the bytes, the kernel's own
# read-only loop mount of the same partition for the files
# (tests/treecmp.py compares every path and attribute), mtools for the
# FAT files.
. "$(dirname "$0")/lib.sh"

MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# ------------------------------------------------------------ builders
# (run inside vd_img generators: plain return codes, no die)

# kmount_rw FILE MNT — a read-write loop mount for building an image;
# recorded so that the test's cleanup unmounts it if we die halfway.
kmount_rw() {
	echo "$2" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o loop "$1" "$2"
}


# mkext IMG SIZE PROFILE SEED MKFS-ARGS... — IMG (SIZE bytes) holds an
# ext filesystem made by mkfs.ext4 -d from mktree's PROFILE/SEED tree;
# then the kernel (read-write loop mount) sets the times that mkfs -d
# cannot store. The tree is kept in IMG.tree (a test compares it with
# what the kernel sees in the image).
mkext() {
	local img=$1 size=$2 profile=$3 seed=$4 rc
	shift 4
	rm -rf "$img.tree" "$img.mnt"
	python3 "$MKTREE" --profile "$profile" --seed "$seed" "$img.tree" || return 1
	rm -f "$img"
	truncate -s "$size" "$img" || return 1
	mkfs.ext4 -q -F -E root_owner=0:0 "$@" -d "$img.tree" "$img" || return 1
	mkdir -p "$img.mnt"
	kmount_rw "$img" "$img.mnt" || return 1
	python3 "$MKTREE" --times-only --seed "$seed" "$img.mnt"
	rc=$?
	kumount "$img.mnt" || return 1
	rmdir "$img.mnt"
	[ $rc -eq 0 ] || return 1
	# The kernel has unmounted it cleanly: e2fsck finds nothing.
	e2fsck -fn "$img" >"$img.fsck" 2>&1 || {
		cat "$img.fsck"
		return 1
	}
}

# place DISK PART_IMG OFFSET — copy a filesystem image into a disk image.
place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}

# table_json DISK [SECTOR] — sfdisk's view of the table, saved as
# DISK.json; for 4096-byte sectors through a loop device with that
# logical sector size (sfdisk 2.38 has no --sector-size).
table_json() {
	local disk=$1 ss=${2:-512} dev rc
	if [ "$ss" = 512 ]; then
		sfdisk --json "$disk" >"$disk.json"
		return
	fi
	dev=$(losetup -r -b "$ss" -f --show "$disk") || return 1
	echo "$dev" >>"$VD_LOOPS"
	sfdisk --json "$dev" >"$disk.json"
	rc=$?
	vd_loop_detach "$dev"
	return $rc
}

# ------------------------------------------------------------ images

# GPT, 512-byte sectors: p1 FAT32 ESP, p2 ext4 root with the full tree,
# no p3 (an unused entry), p4 swap.
gen_gpt() {
	local dev
	mkext root.img $((180 * MIB)) full 1 -b 4096 -I 256 || return 1
	truncate -s $((40 * MIB)) esp.img
	mkfs.vfat -F 32 -n ESP esp.img || return 1
	mkdir -p esp/EFI/BOOT esp/deep/er
	printf 'boot\n' >esp/EFI/BOOT/BOOTX64.EFI
	head -c 300000 /dev/urandom >"esp/a long file name.bin"
	printf 'x' >esp/deep/er/tiny.txt
	: >esp/empty
	TZ=UTC mcopy -s -m -i esp.img esp/* :: || return 1
	truncate -s $((8 * MIB)) swap.img
	mkswap -L swap0 swap.img || return 1
	truncate -s $((232 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		disk.raw1 : start=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"
		disk.raw2 : start=83968, size=368640, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root ü"
		disk.raw4 : start=452608, size=16384, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
	EOF
	place disk.raw esp.img $((2048 * 512)) || return 1
	place disk.raw root.img $((83968 * 512)) || return 1
	place disk.raw swap.img $((452608 * 512)) || return 1
	table_json disk.raw || return 1
	qemu-img convert -O qcow2 disk.raw gpt.qcow2 || return 1
	mv disk.raw.json gpt.qcow2.json
	rm -f disk.raw root.img swap.img
}

# MBR: p1 ext4 with inline_data, p2 ext4 on 1 KiB blocks, p3 extended
# holding p5 ext2 (1 KiB blocks: triple-indirect blocks), p6 ext3, p7
# ext4 with 128-byte inodes (no nanoseconds, no extra fields) on 2 KiB
# blocks.
gen_mbr() {
	mkext p1.img $((16 * MIB)) inline 11 -b 4096 -I 256 -O inline_data || return 1
	# The volume really holds inline data (else this tests nothing).
	debugfs -R "stat /inline/size_40" p1.img 2>/dev/null | grep -q "Size of inline data" ||
		{ echo "mkfs made no inline data"; return 1; }
	debugfs -R "stat /inline/dir_3" p1.img 2>/dev/null | grep -q "Size of inline data" ||
		{ echo "mkfs made no inline directory"; return 1; }
	mkext p2.img $((24 * MIB)) small 12 -t ext4 -b 1024 -I 256 || return 1
	mkext p5.img $((80 * MIB)) small 15 -t ext2 -b 1024 -I 256 || return 1
	mkext p6.img $((24 * MIB)) small 16 -t ext3 -b 4096 -I 256 || return 1
	mkext p7.img $((24 * MIB)) small 17 -t ext4 -b 2048 -I 128 || return 1
	truncate -s $((184 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=2048, size=32768, type=83, bootable
		start=34816, size=49152, type=83
		start=83968, type=5
		size=163840, type=83
		size=49152, type=83
		size=49152, type=83
	EOF
	table_json disk.raw || return 1
	local n start
	for n in 1 2 5 6 7; do
		start=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
for p in t["partitions"]:
    if p["node"] == "disk.raw" + sys.argv[2]:
        print(p["start"] * t.get("sectorsize", 512))' disk.raw.json "$n")
		[ -n "$start" ] || { echo "no partition $n in the table"; return 1; }
		place disk.raw "p$n.img" "$start" || return 1
	done
	qemu-img convert -O qcow2 disk.raw mbr.qcow2 || return 1
	mv disk.raw.json mbr.qcow2.json
	rm -f disk.raw p?.img
}

# No table: one ext4 without a journal fills the disk.
gen_whole() {
	mkext fs.img $((48 * MIB)) small 21 -b 4096 -I 256 -O ^has_journal || return 1
	qemu-img convert -O qcow2 fs.img whole.qcow2 || return 1
	rm -f fs.img
}

# GPT on 4096-byte sectors: p1 ext4, p2 ext2.
gen_gpt4k() {
	local dev rc
	mkext p1.img $((32 * MIB)) small 31 -b 4096 -I 256 || return 1
	mkext p2.img $((16 * MIB)) small 32 -t ext2 -b 4096 -I 256 || return 1
	truncate -s $((64 * MIB)) disk.raw
	dev=$(losetup -b 4096 -f --show disk.raw) || return 1
	echo "$dev" >>"$VD_LOOPS"
	sfdisk -q --no-reread "$dev" <<-EOF
		label: gpt
		unit: sectors
		start=256, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="four k one"
		start=8448, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="four k two"
	EOF
	rc=$?
	vd_loop_detach "$dev"
	[ $rc -eq 0 ] || return 1
	place disk.raw p1.img $((256 * 4096)) || return 1
	place disk.raw p2.img $((8448 * 4096)) || return 1
	table_json disk.raw 4096 || return 1
	qemu-img convert -O qcow2 disk.raw gpt4k.qcow2 || return 1
	mv disk.raw.json gpt4k.qcow2.json
	rm -f disk.raw p?.img
}

# GPT whose primary header is destroyed (LBA 1 zeroed); the backup at the
# disk's last LBA is intact. Raw images, so the disk is the file.
gen_gptbad() {
	mkext p1.img $((24 * MIB)) small 41 -b 4096 -I 256 || return 1
	mkext p2.img $((8 * MIB)) small 42 -b 1024 -I 256 || return 1
	truncate -s $((40 * MIB)) good.raw
	sfdisk -q good.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=49152, type=L, name="one"
		start=53248, size=16384, type=L, name="two"
	EOF
	place good.raw p1.img $((2048 * 512)) || return 1
	place good.raw p2.img $((53248 * 512)) || return 1
	table_json good.raw || return 1
	cp --sparse=always good.raw bad.raw
	dd if=/dev/zero of=bad.raw bs=512 seek=1 count=1 conv=notrunc status=none
	rm -f p?.img
}

# An ext4 whose journal holds committed transactions that were never
# checkpointed (needs_recovery set): dirty.img. rec.img is the same image
# after the kernel's own journal recovery (a read-only mount of a
# writable copy replays the journal into it).
gen_dirty() {
	local dev rc i
	for i in 1 2 3; do
		mkext base.img $((64 * MIB)) small 51 -b 4096 -I 256 || return 1
		mkdir -p m
		dev=$(losetup -f --show base.img) || return 1
		echo "$dev" >>"$VD_LOOPS"
		echo "$PWD/m" >>"$VD_MOUNTS"
		# A long commit interval: only our sync commits, and nothing is
		# checkpointed before we copy.
		timeout -k 5 60 mount -o commit=300 "$dev" m || { vd_loop_detach "$dev"; return 1; }
		dirty_writes m
		rc=$?
		# fsync commits the running transaction (everything above) to
		# the journal but leaves the metadata blocks dirty in memory, not
		# at home (a sync would write them home too); the copy must
		# come before writeback (30 s) or the unmount checkpoints them.
		[ $rc -eq 0 ] && python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))' m/dirty/small &&
			cp --sparse=always base.img dirty.img
		kumount "$PWD/m"
		vd_loop_detach "$dev"
		[ $rc -eq 0 ] || return 1
		# The copy must need recovery, and its metadata at home must
		# still lack what the journal holds.
		if dumpe2fs -h dirty.img 2>/dev/null | grep -q needs_recovery &&
			! debugfs -R "stat /dirty/new_dir/nested" dirty.img 2>&1 | grep -q "Inode:"; then
			break
		fi
		echo "attempt $i: copy is not dirty enough, retrying"
		rm -f dirty.img
	done
	[ -e dirty.img ] || return 1
	cp --sparse=always dirty.img rec.img
	dev=$(losetup -f --show rec.img) || return 1
	echo "$dev" >>"$VD_LOOPS"
	echo "$PWD/m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o ro "$dev" m
	rc=$?
	[ $rc -eq 0 ] && kumount "$PWD/m"
	vd_loop_detach "$dev"
	[ $rc -eq 0 ] || return 1
	dumpe2fs -h rec.img 2>/dev/null | grep -q needs_recovery &&
		{ echo "kernel did not recover rec.img"; return 1; }
	rm -f base.img
	rm -rf base.img.tree
}

# Changes of every kind, to be found only in the journal.
dirty_writes() {
	local m=$1 i
	mkdir -p "$m/dirty/new_dir" || return 1
	head -c 300000 /dev/urandom >"$m/dirty/new_dir/nested" || return 1
	printf 'appended\n' >>"$m/files/text.txt" || return 1
	head -c 5000 /dev/urandom >"$m/dirty/small" || return 1
	mv "$m/files/size_4097" "$m/dirty/renamed" || return 1
	rm -f "$m/files/size_65537" "$m/hard/b" || return 1
	chmod 4711 "$m/dirty/small" && chown 4321:8765 "$m/dirty/small" || return 1
	setfattr -n user.dirty -v journal "$m/dirty/small" || return 1
	ln -s "a-slow-symlink-target-that-is-longer-than-sixty-bytes-for-sure-yes" "$m/dirty/slow" || return 1
	ln "$m/dirty/small" "$m/dirty/small_link" || return 1
	truncate -s 12345 "$m/files/size_1025" || return 1
	touch -d '2001-02-03 04:05:06.123456789' "$m/dirty/small" || return 1
	for i in $(seq 300); do : >"$m/dirty/new_dir/f$i"; done
}

# ------------------------------------------------------------ checks


# treecmp A B [options] — inside a test: A (the kernel) and B (vdmount)
# must not differ.
treecmp() {
	local a=$1 b=$2
	shift 2
	T python3 "$TREECMP" --statfs "$@" "$a" "$b" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences, $b vs the kernel: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
	cat "$TD/treecmp.out"
}

# parts_of JSON — lines "N START LEN" (bytes) from sfdisk's JSON.
parts_of() {
	python3 - "$1" <<-'EOF'
		import json, re, sys
		t = json.load(open(sys.argv[1]))["partitiontable"]
		ss = t.get("sectorsize", 512)
		for p in t["partitions"]:
		    n = re.search(r"(\d+)$", p["node"]).group(1)
		    print(n, p["start"] * ss, p["size"] * ss)
	EOF
}

# check_parts MNT JSON ORACLE [SKIPTYPE] — inside a test: MNT shows
# exactly the pN.raw that sfdisk lists (an MBR extended container, type
# 5, may or may not be shown), each of the listed size and with the
# oracle's bytes.
check_parts() {
	local m=$1 json=$2 oracle=$3 n off len got want extended
	extended=$(python3 -c '
import json, re, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
print(" ".join(re.search(r"(\d+)$", p["node"]).group(1) for p in t["partitions"]
               if p["type"] in ("5", "f", "85")))' "$json")
	parts_of "$json" >"$TD/parts" || die "cannot read $json"
	T ls -A "$m" >"$TD/ls" || die "ls $m failed"
	want=$( (echo disk.raw; awk '{ print "p" $1 ".raw" }' "$TD/parts") | sort)
	got=$(grep -E '^(disk|p[0-9]+)\.raw$' "$TD/ls" | sort)
	for n in $extended; do
		want=$(echo "$want" | grep -vx "p$n.raw")
		got=$(echo "$got" | grep -vx "p$n.raw")
	done
	[ "$got" = "$want" ] ||
		die "partition files: got '$(echo $got)', expected '$(echo $want)' (sfdisk)"
	while read -r n off len; do
		[[ " $extended " == *" $n "* ]] && continue
		got=$(T stat -c %s "$m/p$n.raw") || die "stat p$n.raw failed"
		[ "$got" = "$len" ] || die "p$n.raw is $got bytes, sfdisk says $len"
		T cmp -n "$len" -i "0:$off" "$m/p$n.raw" "$oracle" >"$TD/cmp.out" 2>&1 ||
			die "p$n.raw differs from bytes $off+$len of the disk: $(cat "$TD/cmp.out")"
	done <"$TD/parts"
}

# part_range JSON N — "START LEN" in bytes.
part_range() {
	parts_of "$1" | awk -v n="$2" '$1 == n { print $2, $3 }'
}

# cmp_part_tree IMGFILE JSON N [treecmp options] — inside a test, with
# $MNT the vdmount mount and $ORACLE the raw disk: MNT/pN/ against the
# kernel's mount of partition N.
cmp_part_tree() {
	local json=$1 n=$2 r
	shift 2
	r=$(part_range "$json" "$n")
	[ -n "$r" ] || die "no partition $n in $json"
	T test -d "$MNT/p$n" || die "$MNT/p$n/ is missing (ls: $(ls "$MNT" | tr '\n' ' '))"
	kmount "$ORACLE" ${r% *} ${r#* } "$TD/k$n"
	treecmp "$TD/k$n" "$MNT/p$n" "$@"
	kumount_ok "$TD/k$n"
}

# ------------------------------------------------------------ tests

# The comparison must be able to fail: a copy of a tree with known
# changes gives exactly those differences.
# mount_img GEN FILE — inside a test: the cached image GEN's FILE, its
# qemu-img oracle in ORACLE, mounted by vdmount at MNT; IMGDIR is GEN's
# folder.
mount_img() {
	need_loop
	IMGDIR=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$(vd_oracle "$IMGDIR/$2") || die "qemu-img convert failed"
	mount_ok "$MNT" "$IMGDIR/$2" "$MNT"
}

t_treecmp_catches() {
	need_loop
	must python3 "$MKTREE" --profile small --seed 7 a >/dev/null
	cp -a a b || die "cp -a failed"
	printf 'X' | dd of=b/files/size_4097 bs=1 seek=4000 conv=notrunc status=none
	touch -h -d '@1234567890.000000001' b/links/fast
	setfattr -n user.a -v beta b/xattr/few
	chmod 4700 b/modes/f0000
	rm b/hard/y && printf '' >b/hard/y && touch -r a/hard/y b/hard/y
	ln -sfn elsewhere b/links/dangling_fast && touch -h -r a/links/dangling_fast b/links/dangling_fast
	mv b/names/-rf b/names/-rF
	local p
	for p in files/size_4097 hard links names; do
		touch -h -r "a/$p" "b/$p"
	done
	T python3 "$TREECMP" --ignore ctime,atime,blocks a b >out 2>&1 && die "treecmp found no difference"
	local want
	for want in \
		'/files/size_4097: content (first difference at byte 4000' \
		'/links/fast: mtime: A=' \
		"/xattr/few: xattr user.a: A=b'alpha' B=b'beta'" \
		'/modes/f0000: mode: A=100000 B=104700' \
		'/hard/x: hard-link group' \
		'/hard/y: nlink: A=2 B=1' \
		"/links/dangling_fast: symlink: A=b'nowhere' B=b'elsewhere'" \
		'/names/-rf: presence: A=present B=missing' \
		'/names/-rF: presence: A=missing B=present'; do
		grep -qF -- "$want" out || die "treecmp missed '$want': $(tr '\n' '|' <out)"
	done
	[ "$(grep -c '^/' out)" -eq 12 ] || die "treecmp reported more than expected: $(tr '\n' '|' <out)"
	T python3 "$TREECMP" a a >/dev/null 2>&1 || die "treecmp of a tree with itself failed"
}

# The images hold what the tests claim: the kernel sees the generated
# tree (devices, sockets, xattrs, ACLs, owners, nanosecond and post-2038
# times, hard links, odd names). The root's link count differs by
# lost+found.
t_images_hold_the_tree() {
	local d o
	need_loop
	d=$(img_or_die whole) || exit 1
	o=$(vd_oracle "$d/whole.qcow2") || die "qemu-img convert failed"
	kmount "$o" 0 "$(stat -c %s "$o")" "$TD/k"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino --exclude lost+found \
		"$d/fs.img.tree" "$TD/k" >out 2>&1
	grep -v '^/: nlink: ' out | grep -q '^/' &&
		die "the image differs from its tree: $(head -n 5 out | tr '\n' '|')"
	T stat -c '%y' "$TD/k/times/t07" | grep -q '^2100-01-01 00:00:00.999999999' ||
		die "the kernel sees times/t07 as $(stat -c %y "$TD/k/times/t07"), not 2100-01-01 with ns"
	kumount_ok "$TD/k"
}

t_gpt_table() {
	local d
	mount_img gpt gpt.qcow2
	d=$IMGDIR
	check_parts "$MNT" "$d/gpt.qcow2.json" "$ORACLE"
	T test -e "$MNT/p3.raw" && die "p3.raw exists for an unused GPT entry"
	T test -e "$MNT/p4" && die "p4/ exists for a swap partition"
	T test -d "$MNT/p2" || die "no p2/ for the ext4 root"
	T test -e "$MNT/fs" && die "fs/ exists on a partitioned disk"
	umount_ok "$MNT"
}

t_gpt_root() {
	local d
	mount_img gpt gpt.qcow2
	d=$IMGDIR
	cmp_part_tree "$d/gpt.qcow2.json" 2
	umount_ok "$MNT"
}

# The ESP's files against mtools' copy of them (the kernel here has no
# vfat): names, types, sizes, bytes.
t_gpt_esp() {
	local d r
	need_loop
	d=$(img_or_die gpt) || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$(vd_oracle "$d/gpt.qcow2") || die "qemu-img convert failed"
	r=$(part_range "$d/gpt.qcow2.json" 1)
	mkdir -p mt
	TZ=UTC T mcopy -s -n -m -i "$ORACLE@@${r% *}" '::*' mt/ || die "mcopy failed"
	mount_ok "$MNT" "$d/gpt.qcow2" "$MNT"
	if [ ! -d "$MNT/p1" ] && ! ls "$VD_SRC_DIR"/fsread/*fat*.c >/dev/null 2>&1; then
		skip_test "no vfat driver in fsread/ yet"
	fi
	T test -d "$MNT/p1" || die "no p1/ for the FAT ESP"
	# Not treecmp: statfs of mtools' copy (a host folder) says nothing.
	T python3 "$TREECMP" --ignore mode,uid,gid,nlink,blocks,atime,mtime,ctime,dirsize,xattr,links,dino \
		mt "$MNT/p1" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
	umount_ok "$MNT"
}

t_mbr_table() {
	local d
	mount_img mbr mbr.qcow2
	d=$IMGDIR
	check_parts "$MNT" "$d/mbr.qcow2.json" "$ORACLE"
	T test -e "$MNT/p4.raw" && die "p4.raw exists; the MBR has no fourth primary"
	umount_ok "$MNT"
}

t_mbr_part() {
	local d
	mount_img mbr mbr.qcow2
	d=$IMGDIR
	cmp_part_tree "$d/mbr.qcow2.json" "$1"
	umount_ok "$MNT"
}

t_whole() {
	local d o
	need_loop
	d=$(img_or_die whole) || exit 1
	MNT=$(vd_mnt m)
	o=$(vd_oracle "$d/whole.qcow2") || die "qemu-img convert failed"
	mount_ok "$MNT" "$d/whole.qcow2" "$MNT"
	T test -d "$MNT/fs" || die "no fs/ for a disk that is one ext4 (ls: $(ls "$MNT" | tr '\n' ' '))"
	ls "$MNT" | grep -q '^p[0-9]' && die "pN entries on a disk without a table: $(ls "$MNT" | tr '\n' ' ')"
	kmount "$o" 0 "$(stat -c %s "$o")" "$TD/k"
	treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

t_gpt4k() {
	local d
	mount_img gpt4k gpt4k.qcow2
	d=$IMGDIR
	check_parts "$MNT" "$d/gpt4k.qcow2.json" "$ORACLE"
	cmp_part_tree "$d/gpt4k.qcow2.json" 1
	cmp_part_tree "$d/gpt4k.qcow2.json" 2
	umount_ok "$MNT"
}

# Primary GPT header destroyed: the backup gives the same partitions, and
# the mount says it used the backup.
t_gpt_damaged() {
	local d
	need_loop
	d=$(img_or_die gptbad) || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$d/good.raw
	mount_ok "$MNT" "$d/bad.raw" "$MNT"
	grep -qi 'gpt' "$TD/mount.err" ||
		die "no warning about the damaged primary GPT header (stderr: $(head -c 300 "$TD/mount.err"))"
	check_parts "$MNT" "$d/good.raw.json" "$d/bad.raw"
	cmp_part_tree "$d/good.raw.json" 1
	cmp_part_tree "$d/good.raw.json" 2
	umount_ok "$MNT"
}

# vdmount replays the journal in memory; the kernel's view after its own
# recovery is the oracle.
t_dirty() {
	local d
	need_loop
	d=$(img_or_die dirty) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/dirty.img" "$MNT"
	T test -d "$MNT/fs" || die "no fs/ for the dirty ext4"
	T test -f "$MNT/fs/dirty/new_dir/nested" ||
		die "fs/dirty/new_dir/nested is missing: the journal was not replayed"
	kmount "$d/rec.img" 0 "$(stat -c %s "$d/rec.img")" "$TD/k"
	treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
	# vdmount does not write: the image still needs recovery.
	dumpe2fs -h "$d/dirty.img" 2>/dev/null | grep -q needs_recovery ||
		die "dirty.img no longer needs recovery after vdmount"
}

vd_test treecmp-catches-differences t_treecmp_catches
vd_test images-hold-the-tree t_images_hold_the_tree
vd_test gpt-table t_gpt_table
vd_test gpt-ext4-root-vs-kernel t_gpt_root
vd_test gpt-esp-vs-mtools t_gpt_esp
vd_test mbr-table t_mbr_table
vd_test mbr-p1-ext4-inline-vs-kernel t_mbr_part 1
vd_test mbr-p2-ext4-1k-vs-kernel t_mbr_part 2
vd_test mbr-p5-ext2-logical-vs-kernel t_mbr_part 5
vd_test mbr-p6-ext3-logical-vs-kernel t_mbr_part 6
vd_test mbr-p7-ext4-128-inode-vs-kernel t_mbr_part 7
vd_test whole-disk-ext4-vs-kernel t_whole
vd_test gpt-4k-sectors t_gpt4k
vd_test gpt-damaged-primary t_gpt_damaged
vd_test dirty-journal-vs-kernel-recovery t_dirty
vd_finish
