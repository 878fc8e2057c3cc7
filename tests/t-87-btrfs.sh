#!/bin/bash
# btrfs files, against the kernel's btrfs.
#
# Every filesystem is made by mkfs.btrfs and filled through the kernel's
# own read-write loop mount: tests/mktree.py's tree plus what btrfs keeps
# in forms of its own (subvolumes, nested ones, read-only and writable
# snapshots, files compressed with zlib, LZO and zstd, inline files,
# prealloc'ed, sparse and reflinked files, a nodatacow file, a directory
# of thousands of entries, hard links across directories). The oracle is
# the kernel's read-only loop mount of the same bytes with subvolid=5 (and
# nologreplay for a log tree); tests/treecmp.py compares every path,
# attribute, xattr and byte. Also: RAID1 over two partitions (assembled
# by fsid) against the kernel's two-device mount, one of them against its
# ro,degraded mount, and RAID5 data refused with a notice.
#
# Where the kernel and a single FUSE mount cannot agree by design:
#  - readdir's d_ino of a subvolume entry is, in the kernel, the
#    subvolume's id, not its root's st_ino (dino is not compared);
#  - an entry a snapshot copied from a nested subvolume shows, in the
#    kernel, as an empty directory whose times are the lookup's: such
#    paths are compared for everything but their times.
#
# VD_FULL=1 adds a 20,000-entry directory and one image per mkfs variant
# with the whole tree.
. "$(dirname "$0")/lib.sh"

PATH=/usr/bin:$PATH
MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# ------------------------------------------------------------ builders
# (run inside vd_img generators: plain return codes, no die)

# bt_rw FILE MNT [OPTS] — a read-write loop mount for building an image;
# recorded so that the cleanup unmounts it if we die halfway.
bt_rw() {
	mkdir -p "$2"
	echo "$2" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o "loop${3:+,$3}" "$1" "$2"
}

bt_unmount() {
	timeout -k 5 60 umount "$1" || return 1
	grep -vxF -- "$1" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
}

# manyfiles DIR N — N files (every 97th with a byte of data).
manyfiles() {
	python3 - "$@" <<-'EOF'
		import os, sys
		d, n = sys.argv[1], int(sys.argv[2])
		os.makedirs(d, exist_ok=True)
		for i in range(n):
		    fd = os.open(os.path.join(d, "n%06d_%s" % (i, "y" * (i % 41))),
		                 os.O_CREAT | os.O_WRONLY, 0o644)
		    if i % 97 == 0:
		        os.write(fd, b"%d\n" % i)
		    os.close(fd)
	EOF
}

# textfile FILE BYTES SEED — compressible text.
textfile() {
	python3 - "$@" <<-'EOF'
		import sys
		path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		out, i = bytearray(), 0
		while len(out) < n:
		    out += b"seed %d line %d: the quick brown fox %x\n" % (seed, i, i * 7919)
		    i += 1
		open(path, "wb").write(out[:n])
	EOF
}

# bt_extras MNT LEVEL — what btrfs keeps in forms of its own; LEVEL 2
# makes the big directory 20,000 entries.
bt_extras() {
	local m=$1/btrfs level=$2 c
	mkdir -p "$m" || return 1
	# Compression per directory (inherited by new files): text that
	# compresses, random bytes that do not, an inline compressed file, a
	# file of many compressed extents, partly overwritten.
	for c in zlib lzo zstd; do
		mkdir "$m/$c" && btrfs property set "$m/$c" compression "$c" || return 1
		textfile "$m/$c/text" $((3 * MIB + 1234)) 1 || return 1
		textfile "$m/$c/small_inline" 1800 2 || return 1
		head -c $((300 * 1024)) /dev/urandom >"$m/$c/random" || return 1
		textfile "$m/$c/patched" $((1 * MIB)) 3 || return 1
		sync -f "$m"
		printf 'patch in the middle' | dd of="$m/$c/patched" bs=1 seek=200000 conv=notrunc status=none || return 1
	done
	# Inline files, of every size around the inline limit.
	mkdir "$m/inline" || return 1
	for n in 1 100 2047 2048 2049 4095 4096; do
		head -c "$n" /dev/urandom >"$m/inline/size_$n" || return 1
	done
	# Prealloc'ed space, partly written, also past the end.
	fallocate -l $((2 * MIB)) "$m/prealloc" || return 1
	printf 'in the middle' | dd of="$m/prealloc" bs=1 seek=$MIB conv=notrunc status=none || return 1
	printf 'head' >"$m/prealloc_past_eof" || return 1
	fallocate -n -o 0 -l $((3 * MIB)) "$m/prealloc_past_eof" || return 1
	# Holes (no-holes: no items for them).
	truncate -s $((100 * MIB)) "$m/sparse" || return 1
	printf 'island' | dd of="$m/sparse" bs=1 seek=$((37 * MIB + 123)) conv=notrunc status=none || return 1
	# Shared extents: a reflinked copy, then changed.
	head -c $((2 * MIB + 5)) /dev/urandom >"$m/original" || return 1
	cp --reflink=always "$m/original" "$m/reflinked" || return 1
	printf 'changed' | dd of="$m/reflinked" bs=1 seek=5000 conv=notrunc status=none || return 1
	# No checksums, no copy-on-write: handed up in pieces to splice.
	touch "$m/nodatacow" && chattr +C "$m/nodatacow" || return 1
	head -c $((3 * MIB)) /dev/urandom >"$m/nodatacow" || return 1
	# Hard links across directories, xattrs in every namespace.
	mkdir "$m/a" "$m/b" && echo linked >"$m/a/one" && ln "$m/a/one" "$m/b/two" &&
		ln "$m/a/one" "$m/three" || return 1
	setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' v)" "$m/a/one" || return 1
	setfattr -n trusted.t -v tval "$m/a/one" && setfattr -n security.s -v sval "$m/a/one" || return 1
	manyfiles "$m/bigdir" $((level == 2 ? 20000 : 3000)) || return 1
	ln -s "$(printf 's%.0s' $(seq 3000))" "$m/long_symlink" || return 1
}

# bt_subvols MNT — subvolumes, a nested one, snapshots read-only and
# writable (then changed), a deleted one, the default set to one.
bt_subvols() {
	local m=$1
	btrfs -q subvolume create "$m/sv" && mkdir "$m/sv/dir" &&
		textfile "$m/sv/dir/file" 100000 4 &&
		btrfs -q subvolume create "$m/sv/dir/nested" &&
		echo nested >"$m/sv/dir/nested/inside" || return 1
	mkdir "$m/snaps" || return 1
	btrfs -q subvolume snapshot -r "$m/sv" "$m/snaps/sv-ro" || return 1
	btrfs -q subvolume snapshot "$m/sv" "$m/snaps/sv-rw" || return 1
	echo "changed in the snapshot" >>"$m/snaps/sv-rw/dir/file" || return 1
	rm -f "$m/sv/dir/file" || return 1
	btrfs -q subvolume create "$m/gone" && btrfs -q subvolume delete "$m/gone" || return 1
	btrfs -q subvolume set-default "$m/sv" || return 1
}

# mkbt IMG SIZE PROFILE SEED EXTRAS MKFS-ARGS... — IMG (SIZE bytes) holds
# a btrfs made by mkfs.btrfs MKFS-ARGS and filled by the kernel with
# mktree's PROFILE/SEED tree (none: no tree), bt_extras of level EXTRAS
# (0: none) and the subvolumes.
mkbt() {
	local img=$1 size=$2 profile=$3 seed=$4 extras=$5 rc=0
	shift 5
	rm -f "$img"
	truncate -s "$size" "$img" || return 1
	mkfs.btrfs -q -f "$@" "$img" || return 1
	bt_rw "$img" "$img.mnt" || return 1
	[ "$profile" = none ] ||
		python3 "$MKTREE" --profile "$profile" --seed "$seed" "$img.mnt" || rc=1
	[ $rc -eq 0 ] && [ "$extras" != 0 ] && { bt_extras "$img.mnt" "$extras" || rc=1; }
	[ $rc -eq 0 ] && [ "$extras" != 0 ] && { bt_subvols "$img.mnt" || rc=1; }
	bt_unmount "$img.mnt" || return 1
	rmdir "$img.mnt"
	[ $rc -eq 0 ] || return 1
	btrfs check --readonly "$img" >"$img.check" 2>&1 || { cat "$img.check"; return 1; }
}

place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}

# ------------------------------------------------------------ images

# A Fedora-like disk: GPT, an ESP (vfat), /boot (ext4) and btrfs holding
# subvolumes root (with the tree, the extras and a nested subvolume) and
# home; as qcow2.
gen_fedora() {
	local rc=0
	truncate -s $((34 * MIB)) esp.img && mkfs.vfat -n EFI esp.img >/dev/null || return 1
	mkdir -p boot.tree/grub2 && echo 'menuentry fedora' >boot.tree/grub2/grub.cfg &&
		head -c 100000 /dev/urandom >boot.tree/vmlinuz || return 1
	truncate -s $((64 * MIB)) boot.img && mkfs.ext4 -q -d boot.tree boot.img || return 1
	truncate -s $((400 * MIB)) root.img && mkfs.btrfs -q -f -L fedora root.img || return 1
	bt_rw root.img m compress=zstd:1 || return 1
	{
		btrfs -q subvolume create m/root && btrfs -q subvolume create m/home &&
			mkdir -p m/home/user && echo 'hello from home' >m/home/user/notes.txt &&
			python3 "$MKTREE" --profile small --seed 21 m/root >/dev/null &&
			bt_extras m/root "$([ "${VD_FULL:-}" = 1 ] && echo 2 || echo 1)" && bt_subvols m/root &&
			mkdir -p m/root/var/lib && btrfs -q subvolume create m/root/var/lib/machines
	} || rc=1
	bt_unmount "$PWD/m" || return 1
	[ $rc -eq 0 ] || return 1
	btrfs check --readonly root.img >root.check 2>&1 || { cat root.check; return 1; }
	truncate -s $((520 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=69632, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"
		start=71680, size=131072, type=BC13C2FF-59E6-4262-A352-B275FD6F7172, name="boot"
		start=202752, size=819200, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="fedora"
	EOF
	place disk.raw esp.img $((2048 * 512)) && place disk.raw boot.img $((71680 * 512)) &&
		place disk.raw root.img $((202752 * 512)) || return 1
	qemu-img convert -O qcow2 disk.raw fedora.qcow2 || return 1
	rm -f disk.raw esp.img boot.img
}

# Whole-disk variants: checksums, metadata profiles, holes with items.
gen_variants() {
	mkbt xxhash.img $((160 * MIB)) small 31 0 --csum xxhash -m single || return 1
	mkbt sha256.img $((160 * MIB)) small 32 1 --csum sha256 -O ^no-holes || return 1
	mkbt blake2.img $((256 * MIB)) small 33 0 --csum blake2 -m dup -d dup || return 1
}

gen_full() {
	mkbt xxhash.img $((300 * MIB)) full 41 1 --csum xxhash -m single || return 1
	mkbt sha256.img $((300 * MIB)) full 42 1 --csum sha256 -O ^no-holes || return 1
	mkbt blake2.img $((400 * MIB)) full 43 1 --csum blake2 -m dup -d dup || return 1
	mkbt noholes.img $((300 * MIB)) full 44 1 -O ^no-holes -n 4096 || return 1
}

# A log tree: files written and fsync'ed, the image copied before the
# transaction commits (commit=300), as if the machine lost power. A
# sync(2) by anything else on the machine in between commits the
# transaction and leaves no log tree: then again, up to five times.
gen_dirty() {
	local rc i
	for i in 1 2 3 4 5; do
		rm -f base.img dirty.img
		mkbt base.img $((160 * MIB)) none 0 0 || return 1
		bt_rw base.img m commit=300 || return 1
		mkdir -p m/d && textfile m/d/committed 50000 5 && sync -f m &&
			head -c 300000 /dev/urandom >m/d/logged && echo appended >>m/d/committed &&
			xfs_io -c fsync m/d/logged && xfs_io -c fsync m/d/committed &&
			cp --sparse=always base.img dirty.img
		rc=$?
		bt_unmount "$PWD/m" || return 1
		[ $rc -eq 0 ] || return 1
		rm -f base.img
		btrfs inspect-internal dump-super dirty.img | grep -Eq '^log_root[[:space:]]+[1-9]' &&
			return 0
		echo "attempt $i: no log tree in dirty.img; again"
	done
	return 1
}

# RAID1 data and metadata over two GPT partitions of one disk (assembled
# by fsid), as qcow2; and the same disk with the second partition's entry
# removed (a device missing).
gen_raid1() {
	local la lb rc=0
	truncate -s $((200 * MIB)) a.img b.img || return 1
	mkfs.btrfs -q -f -L pair -d raid1 -m raid1 a.img b.img || return 1
	la=$(losetup -f --show a.img) || return 1
	echo "$la" >>"$VD_LOOPS"
	lb=$(losetup -f --show b.img) || return 1
	echo "$lb" >>"$VD_LOOPS"
	mkdir -p m && echo "$PWD/m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o "device=$lb" "$la" m || return 1
	python3 "$MKTREE" --profile small --seed 51 m >/dev/null && textfile m/text $((5 * MIB)) 6 || rc=1
	bt_unmount "$PWD/m" || return 1
	vd_loop_detach "$la"
	vd_loop_detach "$lb"
	[ $rc -eq 0 ] || return 1
	truncate -s $((420 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=409600, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=411648, size=409600, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	place disk.raw a.img $((2048 * 512)) && place disk.raw b.img $((411648 * 512)) || return 1
	qemu-img convert -O qcow2 disk.raw raid1.qcow2 || return 1
	sfdisk -q --delete disk.raw 2 || return 1
	qemu-img convert -O qcow2 disk.raw half.qcow2 || return 1
	rm -f disk.raw a.img b.img
}

# RAID5 data (RAID1C3 metadata) over three partitions: its data chunks
# are not read.
gen_raid5() {
	local l rc=0 devs=() n
	for n in 1 2 3; do
		truncate -s $((128 * MIB)) "d$n.img" || return 1
	done
	mkfs.btrfs -q -f -d raid5 -m raid1c3 d1.img d2.img d3.img || return 1
	for n in 1 2 3; do
		l=$(losetup -f --show "d$n.img") || return 1
		echo "$l" >>"$VD_LOOPS"
		devs+=("$l")
	done
	mkdir -p m && echo "$PWD/m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o "device=${devs[1]},device=${devs[2]}" "${devs[0]}" m || return 1
	{ echo small >m/inline.txt && textfile m/big.txt 300000 7; } || rc=1
	bt_unmount "$PWD/m" || return 1
	for l in "${devs[@]}"; do vd_loop_detach "$l"; done
	[ $rc -eq 0 ] || return 1
	truncate -s $((400 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=262144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=264192, size=262144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=526336, size=262144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	place disk.raw d1.img $((2048 * 512)) && place disk.raw d2.img $((264192 * 512)) &&
		place disk.raw d3.img $((526336 * 512)) || return 1
	rm -f d1.img d2.img d3.img
}

# ------------------------------------------------------------ checks

# bt_treecmp A B — inside a test: A (the kernel) and B (vdmount) must
# not differ (see the top of the file for what is left out).
bt_treecmp() {
	local a=$1 b=$2 ex=() p
	shift 2
	# Entries of subvolumes that a snapshot copied: the kernel's empty
	# directories with times of their own.
	for p in root/snaps/sv-ro/dir/nested root/snaps/sv-rw/dir/nested \
		snaps/sv-ro/dir/nested snaps/sv-rw/dir/nested; do
		ex+=(--exclude "$p")
	done
	T python3 "$TREECMP" --ignore dino "${ex[@]}" "$@" "$a" "$b" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences, $b vs the kernel: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
	cat "$TD/treecmp.out"
}

# The snapshot's copies of a nested subvolume's entry: empty directories.
bt_placeholders() {
	local d=$1 p
	for p in snaps/sv-ro/dir/nested snaps/sv-rw/dir/nested; do
		T test -d "$d/$p" || die "$p is not a directory"
		[ -z "$(ls -A "$d/$p")" ] || die "$p is not empty: $(ls -A "$d/$p" | head -c 200)"
		[ "$(stat -c %i "$d/$p")" != "$(stat -c %i "$d/sv/dir/nested")" ] ||
			die "$p has the nested subvolume's inode number"
	done
}

t_fedora() {
	local d
	need_loop
	d=$(img_or_die fedora) || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$(vd_oracle "$d/fedora.qcow2") || die "qemu-img convert failed"
	mount_ok "$MNT" "$d/fedora.qcow2" "$MNT"
	for n in 1 2 3; do
		T test -d "$MNT/p$n" || die "no p$n/ (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	done
	T cmp "$MNT/p2/grub2/grub.cfg" "$d/boot.tree/grub2/grub.cfg" || die "/boot's grub.cfg differs"
	T test "$(cat "$MNT/p3/home/user/notes.txt")" = "hello from home" || die "home/user/notes.txt"
	grep -q 'log tree' "$TD/mount.err" && die "a log tree reported on a clean filesystem: $(cat "$TD/mount.err")"
	KMOUNT_OPTS=subvolid=5 kmount "$ORACLE" $((202752 * 512)) $((819200 * 512)) "$TD/k"
	bt_treecmp "$TD/k" "$MNT/p3"
	kumount_ok "$TD/k"
	bt_placeholders "$MNT/p3/root"
	# Unique inode numbers across subvolumes: the roots of root, home
	# and a snapshot (all 256 in their own subvolumes) differ.
	[ "$(stat -c %i "$MNT/p3/root" "$MNT/p3/home" "$MNT/p3/root/snaps/sv-ro" | sort -u | wc -l)" = 3 ] ||
		die "subvolume roots share inode numbers: $(stat -c '%n %i' "$MNT/p3/root" "$MNT/p3/home" "$MNT/p3/root/snaps/sv-ro")"
	umount_ok "$MNT"
}

# vdtool info lists the label, UUID, generation, every subvolume (id,
# path, read-only flag, generation) and the default one, as btrfs-progs
# reads them from the kernel's mount.
t_info() {
	local d out raw uuid gen id path def n=0
	need_loop
	d=$(img_or_die fedora) || exit 1
	raw=$(vd_oracle "$d/fedora.qcow2") || die "qemu-img convert failed"
	out=$(T "$VDTOOL" info "$d/fedora.qcow2" 2>&1) || die "vdtool info failed: $out"
	echo "$out"
	KMOUNT_OPTS=subvolid=5 kmount "$raw" $((202752 * 512)) $((819200 * 512)) "$TD/k"
	uuid=$(T btrfs filesystem show "$TD/k" | sed -n 's/.*uuid: *\([0-9a-f-]*\).*/\1/p')
	gen=$(T btrfs inspect-internal dump-super "$(cat "$TD/k.dev")" | awk '$1 == "generation" { print $2 }')
	echo "$out" | grep -F "btrfs, label \"fedora\", UUID $uuid, 4096-byte blocks" >/dev/null ||
		die "vdtool info lacks 'btrfs, label \"fedora\", UUID $uuid, 4096-byte blocks': $(echo "$out" | tr '\n' '|')"
	echo "$out" | grep -E "^ +generation $gen\$" >/dev/null || die "vdtool info lacks generation $gen"
	T btrfs subvolume list "$TD/k" >list.txt || die "btrfs subvolume list failed"
	T btrfs subvolume list -r "$TD/k" >ro.txt || die "btrfs subvolume list -r failed"
	while read -r _ id _ gen _ _ _ _ path; do
		local ro=""
		grep -q "^ID $id " ro.txt && ro=", read-only"
		echo "$out" | grep -xE " +subvolume $id $path, generation $gen$ro" >/dev/null ||
			die "vdtool info lacks 'subvolume $id $path, generation $gen$ro': $(echo "$out" | grep subvolume | tr '\n' '|')"
		n=$((n + 1))
	done <list.txt
	[ "$n" -ge 7 ] || die "only $n subvolumes listed by btrfs-progs"
	[ "$(echo "$out" | grep -c '^ *subvolume [0-9]')" = "$n" ] ||
		die "vdtool info lists $(echo "$out" | grep -c '^ *subvolume [0-9]') subvolumes, btrfs-progs $n"
	def=$(T btrfs subvolume get-default "$TD/k" | awk '{ print $2 }')
	echo "$out" | grep -E "^ +default subvolume $def\$" >/dev/null ||
		die "vdtool info lacks 'default subvolume $def'"
	kumount_ok "$TD/k"
	out=$(T "$VDTOOL" info --json "$d/fedora.qcow2" 2>&1) || die "vdtool info --json failed: $out"
	echo "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
s = json.dumps(j)
assert "\"subvolumes\"" in s and "\"default-subvolume\"" in s, s[:300]' ||
		die "vdtool info --json lacks the subvolumes"
}

# Whole-disk variants: checksum algorithms, metadata profiles, holes.
whole_vs_kernel() {
	local d
	need_loop
	d=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/$2" "$MNT"
	T test -d "$MNT/fs" || die "no fs/ for $2 (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	KMOUNT_OPTS=subvolid=5 kmount "$d/$2" 0 "$(stat -c %s "$d/$2")" "$TD/k"
	bt_treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

# A log tree: the files as `ro,nologreplay` shows them, one warning.
t_dirty() {
	local d sum
	need_loop
	d=$(img_or_die dirty) || exit 1
	sum=$(md5sum <"$d/dirty.img")
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/dirty.img" "$MNT"
	[ "$(grep -c 'log tree' "$TD/mount.err")" = 1 ] ||
		die "not one warning about the log tree (stderr: $(head -c 300 "$TD/mount.err"))"
	KMOUNT_OPTS=subvolid=5,rescue=nologreplay kmount "$d/dirty.img" 0 "$(stat -c %s "$d/dirty.img")" "$TD/k"
	bt_treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
	[ "$(md5sum <"$d/dirty.img")" = "$sum" ] || die "dirty.img changed"
}

# crc32c in python, for pokes that must keep a superblock valid.
crcfix() {
	python3 - "$@" <<-'EOF'
		import sys
		path, off = sys.argv[1], int(sys.argv[2])
		t = []
		for i in range(256):
		    c = i
		    for _ in range(8):
		        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
		    t.append(c)
		with open(path, "r+b") as f:
		    f.seek(off)
		    b = bytearray(f.read(4096))
		    c = 0xFFFFFFFF
		    for x in b[32:]:
		        c = t[(c ^ x) & 0xFF] ^ (c >> 8)
		    b[0:4] = (c ^ 0xFFFFFFFF).to_bytes(4, "little")
		    f.seek(off)
		    f.write(b)
	EOF
}

# An incompatible feature we do not know: refused by name, the volume's
# bytes still shown; a bad primary superblock: the mirror is used.
t_superblocks() {
	MNT=$(vd_mnt m)
	truncate -s $((128 * MIB)) y.img && mkfs.btrfs -q -f y.img || die "mkfs.btrfs failed"
	cp y.img z.img
	python3 -c '
import sys
f = open(sys.argv[1], "r+b"); f.seek(65536 + 0xbc)
v = int.from_bytes(f.read(8), "little") | (1 << 40)
f.seek(65536 + 0xbc); f.write(v.to_bytes(8, "little"))' y.img
	crcfix y.img 65536
	mount_ok "$MNT" y.img "$MNT"
	T test -e "$MNT/fs" && die "fs/ shown for a filesystem with an unknown incompatible feature"
	grep -q 'unknown incompatible features 0x10000000000' "$TD/mount.err" ||
		die "no message naming the feature: $(head -c 300 "$TD/mount.err")"
	T test -f "$MNT/disk.raw" || die "disk.raw missing"
	umount_ok "$MNT"
	# The primary's label poked without fixing its checksum.
	printf 'poked' | dd of=z.img bs=1 seek=$((65536 + 0x12b)) conv=notrunc status=none
	mount_ok "$MNT" z.img "$MNT"
	T test -d "$MNT/fs" || die "no fs/ from the mirror superblock: $(head -c 300 "$TD/mount.err")"
	grep -q 'primary superblock fails its checksum: the mirror at 67108864' "$TD/mount.err" ||
		die "no warning about the mirror: $(head -c 300 "$TD/mount.err")"
	umount_ok "$MNT"
}

# A data sector that fails its checksum: that file's read fails with EIO
# and a log line; the other files read.
# extent_of IMG NAME — the logical address of the first extent of the
# file NAME (a name unique in the top level), from btrfs-progs' dump.
extent_of() {
	btrfs inspect-internal dump-tree -t 5 "$1" | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
ino = None
for i, l in enumerate(lines):
    m = re.search(r"item \d+ key \((\d+) INODE_REF (\d+)\)", l)
    if m and i + 1 < len(lines) and lines[i + 1].strip().endswith("name: " + sys.argv[1]):
        ino = m.group(1)
for i, l in enumerate(lines):
    if ino and re.search(r"key \(%s EXTENT_DATA 0\)" % ino, l):
        for k in lines[i:i + 4]:
            m = re.search(r"disk byte (\d+)", k)
            if m:
                print(m.group(1)); sys.exit()' "$2"
}

t_bad_data() {
	local d logical phys
	d=$(img_or_die variants) || exit 1
	cp "$d/sha256.img" x.img
	# files/size_65537: its first extent's logical address, then where
	# copy 1 lies (single data: one copy).
	logical=$(btrfs inspect-internal dump-tree -t 5 x.img |
		python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
ino = None
for i, l in enumerate(lines):
    m = re.search(r"item \d+ key \((\d+) INODE_REF (\d+)\)", l)
    if m and i + 1 < len(lines) and "name: size_65537" in lines[i + 1]:
        ino = m.group(1)
for i, l in enumerate(lines):
    if ino and re.search(r"key \(%s EXTENT_DATA 0\)" % ino, l):
        for k in lines[i:i + 4]:
            m = re.search(r"disk byte (\d+)", k)
            if m:
                print(m.group(1)); sys.exit()')
	[ -n "$logical" ] || die "no extent found for files/size_65537"
	phys=$(btrfs-map-logical -l "$logical" x.img 2>/dev/null | sed -n 's/.*physical \([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$phys" ] || die "btrfs-map-logical gives nothing for $logical"
	printf 'X' | dd of=x.img bs=1 seek=$((phys + 4100)) conv=notrunc status=none
	# vdtool cp logs to stderr (a daemonised vdmount, to syslog).
	T "$VDTOOL" cp x.img /fs/files/size_4097 good.out 2>"$TD/cp.err" ||
		die "a good file fails: $(head -c 300 "$TD/cp.err")"
	T "$VDTOOL" cp x.img /fs/files/size_65537 bad.out 2>"$TD/cp.err" &&
		die "a file with a bad sector copies"
	grep -q "data sector at $((logical + 4096)) (copy 1) fails its sha256 checksum" "$TD/cp.err" ||
		die "no log line naming the sector: $(head -c 400 "$TD/cp.err")"
	# And through vdmount: EIO.
	MNT=$(vd_mnt m)
	mount_ok "$MNT" x.img "$MNT"
	T cat "$MNT/fs/files/size_65537" >/dev/null 2>"$TD/cat.err" && die "a file with a bad sector reads"
	grep -q 'Input/output error' "$TD/cat.err" || die "not EIO: $(cat "$TD/cat.err")"
	T cmp "$MNT/fs/files/size_4097" good.out || die "good file differs"
	umount_ok "$MNT"
}

# kmount2 FILE OFF1 OFF2 LEN MNT — the kernel's mount of a two-device
# btrfs whose devices are LEN bytes at OFF1 and OFF2 of FILE.
kmount2() {
	local dev2
	dev2=$(T losetup -r -f --show -o "$3" --sizelimit "$4" "$1" 2>"$TD/.kmount.err") ||
		die "losetup of $1 at $3+$4 failed: $(cat "$TD/.kmount.err")"
	echo "$dev2" >>"$VD_LOOPS"
	echo "$dev2" >"$5.dev2"
	KMOUNT_OPTS=subvolid=5,device=$dev2 kmount "$1" "$2" "$4" "$5"
}

# Two partitions, one filesystem: btrfs-FSID/ shows it; the partitions
# show no files of their own.
t_raid1() {
	local d oracle uuid
	need_loop
	d=$(img_or_die raid1) || exit 1
	oracle=$(vd_oracle "$d/raid1.qcow2") || die "qemu-img convert failed"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/raid1.qcow2" "$MNT"
	ls -d "$MNT"/btrfs-*/ >/dev/null 2>&1 || die "no btrfs-FSID/ (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	T test -e "$MNT/p1" && die "p1/ shown for a member of a two-device btrfs"
	kmount2 "$oracle" $((2048 * 512)) $((411648 * 512)) $((409600 * 512)) "$TD/k"
	uuid=$(T btrfs filesystem show "$TD/k" | sed -n 's/.*uuid: *\([0-9a-f-]*\).*/\1/p')
	T test -d "$MNT/btrfs-$uuid" || die "no btrfs-$uuid/ (ls: $(ls "$MNT" | tr '\n' ' '))"
	bt_treecmp "$TD/k" "$MNT/btrfs-$uuid"
	kumount_ok "$TD/k"
	vd_loop_detach "$(cat "$TD/k.dev2")"
	umount_ok "$MNT"
}

# One device of the two: a notice names what is missing; RAID1 keeps
# every byte on the one left (the kernel's ro,degraded mount agrees).
t_raid1_half() {
	local d oracle uuid
	need_loop
	d=$(img_or_die raid1) || exit 1
	oracle=$(vd_oracle "$d/half.qcow2") || die "qemu-img convert failed"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/half.qcow2" "$MNT"
	grep -q '1 of its 2 devices are in the image' "$TD/mount.err" ||
		die "no notice of the missing device: $(head -c 300 "$TD/mount.err")"
	KMOUNT_OPTS=subvolid=5,degraded kmount "$oracle" $((2048 * 512)) $((409600 * 512)) "$TD/k"
	uuid=$(T btrfs filesystem show "$TD/k" | sed -n 's/.*uuid: *\([0-9a-f-]*\).*/\1/p')
	bt_treecmp "$TD/k" "$MNT/btrfs-$uuid"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

# RAID5: the tree (metadata in RAID1C3) and inline data read; a file in
# a RAID5 chunk fails with EIO, and a notice names the profile.
t_raid5() {
	local d b
	d=$(img_or_die raid5) || exit 1
	b=$(T "$VDTOOL" ls "$d/disk.raw" / 2>"$TD/ls.err" | grep '^btrfs-.*[^w]$') ||
		die "no btrfs-FSID/: $(head -c 300 "$TD/ls.err")"
	T "$VDTOOL" ls "$d/disk.raw" "/$b" >ls.out 2>"$TD/ls.err" || die "vdtool ls failed: $(head -c 300 "$TD/ls.err")"
	grep -qx 'big.txt' ls.out || die "big.txt not listed: $(head -c 300 ls.out)"
	T "$VDTOOL" cp "$d/disk.raw" "/$b/inline.txt" inline.out 2>"$TD/cp.err" ||
		die "inline.txt: $(head -c 300 "$TD/cp.err")"
	[ "$(cat inline.out)" = small ] || die "inline.txt holds $(head -c 100 inline.out)"
	T "$VDTOOL" cp "$d/disk.raw" "/$b/big.txt" big.out 2>"$TD/cp.err" &&
		die "a file in a RAID5 chunk copies"
	grep -q 'RAID5 chunks (at [0-9]* and maybe others) are not read' "$TD/cp.err" ||
		die "no notice naming RAID5: $(head -c 300 "$TD/cp.err")"
}

# DUP data: a sector bad in copy 1 is read from copy 2, with a log line.
t_dup_data() {
	local d logical phys
	d=$(img_or_die variants) || exit 1
	cp "$d/blake2.img" x.img
	logical=$(extent_of x.img size_65537)
	[ -n "$logical" ] || die "no extent found for files/size_65537"
	phys=$(btrfs-map-logical -l "$logical" x.img 2>/dev/null | sed -n 's/^mirror 1 .*physical \([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$phys" ] || die "btrfs-map-logical gives no copy 1 for $logical"
	btrfs-map-logical -l "$logical" x.img 2>/dev/null | grep -q '^mirror 2 ' || die "no copy 2 of $logical"
	printf 'X' | dd of=x.img bs=1 seek=$((phys + 4100)) conv=notrunc status=none
	T "$VDTOOL" cp x.img /fs/files/size_65537 got.out 2>"$TD/cp.err" ||
		die "the file fails with copy 2 good: $(head -c 300 "$TD/cp.err")"
	T "$VDTOOL" cp "$d/blake2.img" /fs/files/size_65537 want.out 2>/dev/null || die "the unpoked image fails"
	cmp got.out want.out || die "the file read differs"
	grep -q "data sector at $((logical + 4096)) (copy 1) fails its blake2b checksum" "$TD/cp.err" ||
		die "no log line naming the sector: $(head -c 400 "$TD/cp.err")"
}

# Under make check: the Fedora-like qcow2, the variants, the log tree,
# superblocks, a bad data sector. The rest with VD_FULL=1.
vd_test btrfs-fedora-qcow2-vs-kernel t_fedora
vd_test btrfs-vdtool-info t_info
vd_test btrfs-xxhash-single-vs-kernel whole_vs_kernel variants xxhash.img
vd_test btrfs-sha256-holes-vs-kernel whole_vs_kernel variants sha256.img
vd_test btrfs-blake2-dup-vs-kernel whole_vs_kernel variants blake2.img
vd_test btrfs-log-tree-vs-nologreplay t_dirty
vd_test btrfs-superblocks t_superblocks
vd_test btrfs-bad-data-checksum t_bad_data
vd_test btrfs-dup-data-copy2 t_dup_data
vd_test btrfs-raid1-two-partitions-vs-kernel t_raid1
vd_test btrfs-raid1-one-device-vs-degraded t_raid1_half
vd_test btrfs-raid5-data-refused t_raid5
if [ "${VD_FULL:-}" = 1 ]; then
	for v in xxhash sha256 blake2 noholes; do
		vd_test "btrfs-full-$v-vs-kernel" whole_vs_kernel full "$v.img"
	done
fi
vd_finish
