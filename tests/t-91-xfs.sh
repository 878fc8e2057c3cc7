#!/bin/bash
# XFS files, against the kernel's XFS.
#
# Every filesystem is made by mkfs.xfs and filled through the kernel's own
# read-write loop mount (tests/mktree.py's tree plus what XFS stores in
# forms of its own: directories of every form, a file of thousands of
# extents (a bmbt), reflinked copies, preallocated and sparse files,
# xattrs in leaf, node and remote form). The oracle is the kernel's
# read-only loop mount of the same bytes (ro,norecovery for a log that
# needs recovery); tests/treecmp.py compares every path, attribute, xattr
# and byte, and statvfs.
#
# This kernel has no v4 XFS (CONFIG_XFS_SUPPORT_V4 off): a v4 filesystem
# (crc=0, also ftype=0 and 512-byte blocks) is made by mkfs.xfs -p from a
# prototype of a source tree, and that tree is the oracle (names, types,
# sizes, bytes, modes, owners, symlinks, device numbers; mkfs sets no
# times or xattrs from a prototype).
#
# VD_FULL=1 adds the heavy cases: a 100,000-entry directory, a file of
# tens of thousands of extents on 1 KiB blocks, 512-byte blocks (v4).
. "$(dirname "$0")/lib.sh"

MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# ------------------------------------------------------------ builders
# (run inside vd_img generators: plain return codes, no die)

# xfs_rw FILE MNT — a read-write loop mount for building an image;
# recorded so that the cleanup unmounts it if we die halfway.
xfs_rw() { vd_mount_rw "$@"; }

xfs_unmount() { vd_umount_rw "$1"; }

# fragment FILE BLOCKS BS — a file of BLOCKS blocks of BS bytes whose even
# blocks were written (and allocated) before its odd ones: about one
# extent per block, so its data fork is a bmbt.
fragment() {
	python3 - "$@" <<-'EOF'
		import os, sys
		path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
		for first in (0, 1):
		    for i in range(first, n, 2):
		        os.pwrite(fd, (b"%08d" % i) * (bs // 8), i * bs)
		    os.fsync(fd)
		os.close(fd)
	EOF
}

# manyattrs FILE N SIZE — N user xattrs of SIZE bytes.
manyattrs() {
	python3 - "$@" <<-'EOF'
		import os, sys
		path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		for i in range(n):
		    os.setxattr(path, "user.attr%05d" % i, (b"%05d" % i) * (size // 5))
	EOF
}

# manyfiles DIR N — N empty files with names of varied length.
manyfiles() {
	python3 - "$@" <<-'EOF'
		import os, sys
		d, n = sys.argv[1], int(sys.argv[2])
		os.makedirs(d, exist_ok=True)
		for i in range(n):
		    os.close(os.open(os.path.join(d, "n%06d_%s" % (i, "y" * (i % 41))),
		                     os.O_CREAT | os.O_WRONLY, 0o644))
	EOF
}

# xfs_extras MNT BS LEVEL — what XFS keeps in forms of its own; LEVEL 2
# adds a longer fragmented file and more attributes.
xfs_extras() {
	local m=$1/xfs bs=$2 level=$3 n
	mkdir -p "$m" || return 1
	# Directories: shortform, block, leaf, node (also with 16 KiB
	# directory blocks).
	for n in 3 60 400 3000; do
		manyfiles "$m/dir_$n" "$n" || return 1
	done
	# A bmbt: more extents than the inode holds (21 with 512-byte
	# inodes).
	fragment "$m/fragmented" $((level == 2 ? 1600 : 300)) "$bs" || return 1
	# Shared extents, where the filesystem has reflink.
	cp --reflink=auto "$m/fragmented" "$m/reflinked" || return 1
	printf 'changed' | dd of="$m/reflinked" bs=1 seek=5000 conv=notrunc status=none || return 1
	# Unwritten extents, partly written over, also past the end.
	fallocate -l $((2 * MIB)) "$m/prealloc" || return 1
	printf 'in the middle' | dd of="$m/prealloc" bs=1 seek=$MIB conv=notrunc status=none || return 1
	printf 'head' >"$m/prealloc_past_eof" || return 1
	fallocate -n -o 0 -l $((3 * MIB)) "$m/prealloc_past_eof" || return 1
	# Holes.
	truncate -s $((100 * MIB)) "$m/sparse" || return 1
	printf 'island' | dd of="$m/sparse" bs=1 seek=$((37 * MIB + 123)) conv=notrunc status=none || return 1
	# Attributes: leaf (dozens), node (hundreds), remote values, the
	# trusted and security namespaces.
	: >"$m/attr_leaf" && manyattrs "$m/attr_leaf" 40 40 || return 1
	: >"$m/attr_node" && manyattrs "$m/attr_node" $((level == 2 ? 700 : 300)) 30 || return 1
	: >"$m/attr_remote" && manyattrs "$m/attr_remote" 3 20000 || return 1
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.big", b"A" * 60000)' \
		"$m/attr_remote" || return 1
	setfattr -n trusted.t -v tval "$m/attr_leaf" || return 1
	setfattr -n security.s -v sval "$m/attr_leaf" || return 1
	mkdir -p "$m/names" || return 1
	: >"$m/names/$(printf 'L%.0s' $(seq 255))" || return 1
	: >"$m/names/ünïcödé ☃ 名前" || return 1
	ln "$m/fragmented" "$m/hardlink_to_fragmented" || return 1
	ln -s "$(printf 's%.0s' $(seq 1000))" "$m/slow_symlink" || return 1
}

# mkxfs IMG SIZE PROFILE SEED EXTRAS MKFS-ARGS... — IMG (SIZE bytes)
# holds an XFS made by mkfs.xfs MKFS-ARGS and filled by the kernel with
# mktree's PROFILE/SEED tree (PROFILE none: no tree), plus xfs_extras of
# level EXTRAS (0: none).
mkxfs() {
	local img=$1 size=$2 profile=$3 seed=$4 extras=$5 bs rc=0
	shift 5
	rm -f "$img"
	truncate -s "$size" "$img" || return 1
	# Small test filesystems: mkfs.xfs wants 300 MB unless it runs
	# under xfstests (these variables say so).
	TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f "$@" "$img" || return 1
	xfs_rw "$img" "$img.mnt" || return 1
	[ "$profile" = none ] ||
		python3 "$MKTREE" --profile "$profile" --seed "$seed" --fs xfs "$img.mnt" || rc=1
	bs=$(stat -f -c %S "$img.mnt")
	[ $rc -eq 0 ] && [ "$extras" != 0 ] && { xfs_extras "$img.mnt" "$bs" "$extras" || rc=1; }
	xfs_unmount "$img.mnt" || return 1
	rmdir "$img.mnt"
	[ $rc -eq 0 ] || return 1
	xfs_repair -n "$img" >"$img.repair" 2>&1 || { cat "$img.repair"; return 1; }
}

# v4_tree DIR — a source tree for a prototype: every directory form
# (shortform to node), files around block sizes, symlinks short and long,
# devices, a fifo, set-id modes, owners; names without spaces or colons.
v4_tree() {
	python3 - "$1" <<-'EOF'
		import os, random, stat, sys
		r, rng = sys.argv[1], random.Random(4)
		os.makedirs(r)
		def f(rel, n, mode=0o644):
		    p = os.path.join(r, rel)
		    with open(p, "wb") as fh:
		        fh.write(rng.randbytes(n))
		    os.chmod(p, mode)
		os.mkdir(r + "/files")
		for n in (0, 1, 511, 512, 513, 2047, 2048, 2049, 4096, 65537, 3000001):
		    f("files/size_%d" % n, n)
		for n in (3, 60, 400, 3000):
		    os.mkdir(r + "/dir_%d" % n)
		    for i in range(n):
		        f("dir_%d/n%05d_%s" % (n, i, "y" * (i % 41)), i % 3)
		os.makedirs(r + "/deep/a/b/c/d")
		f("deep/a/b/c/d/leaf", 10)
		os.mkdir(r + "/links")
		os.symlink("../files/size_1", r + "/links/short")
		os.symlink("x" * 700 + "/end", r + "/links/long")
		os.mkdir(r + "/special")
		os.mknod(r + "/special/null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
		os.mknod(r + "/special/loop", stat.S_IFBLK | 0o640, os.makedev(7, 300))
		os.mkfifo(r + "/special/fifo", 0o644)
		f("files/setuid", 5, 0o4755)
		f("files/setgid", 5, 0o2711)
		f("files/owned", 7)
		os.chown(r + "/files/owned", 1234, 70000)
		f("names_\u00fcn\u00efc\u00f6d\u00e9_\u540d\u524d", 3)
		f("L" * 255, 2)
	EOF
}

# proto DIR — the prototype of DIR for mkfs.xfs -p.
proto() {
	python3 - "$1" <<-'EOF'
		import os, stat, sys
		root = sys.argv[1]
		def mode(st):
		    m = st.st_mode
		    t = {stat.S_IFREG: "-", stat.S_IFDIR: "d", stat.S_IFCHR: "c",
		         stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFLNK: "l"}[stat.S_IFMT(m)]
		    return "%s%s%s%03o %d %d" % (t, "u" if m & stat.S_ISUID else "-",
		                                 "g" if m & stat.S_ISGID else "-",
		                                 m & 0o777, st.st_uid, st.st_gid)
		def walk(d, depth):
		    for n in sorted(os.listdir(d)):
		        p = os.path.join(d, n)
		        st = os.lstat(p)
		        line = "%s %s" % (n, mode(st))
		        if stat.S_ISREG(st.st_mode):
		            line += " " + p
		        elif stat.S_ISLNK(st.st_mode):
		            line += " " + os.readlink(p)
		        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
		            line += " %d %d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
		        print(line)
		        if stat.S_ISDIR(st.st_mode):
		            walk(p, depth + 1)
		            print("$")
		print("dummy")
		print("0 0")
		print(mode(os.lstat(root)))
		walk(root, 0)
		print("$")
	EOF
}

# mkv4 IMG SIZE MKFS-ARGS... — a v4 XFS (crc=0) made from IMG.tree by a
# prototype.
mkv4() {
	local img=$1 size=$2
	shift 2
	rm -rf "$img.tree"
	v4_tree "$img.tree" || return 1
	proto "$img.tree" >"$img.proto" || return 1
	rm -f "$img"
	truncate -s "$size" "$img" || return 1
	TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 \
		mkfs.xfs -q -f -m crc=0 "$@" -p "$img.proto" "$img" || return 1
	xfs_repair -n "$img" >"$img.repair" 2>&1 || { cat "$img.repair"; return 1; }
}

place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}

# ------------------------------------------------------------ images

# GPT (512-byte sectors): p1 the mkfs defaults (v5: CRCs, reflink,
# bigtime, sparse inodes, finobt) with the tree and the extras; p2 a v4.
# As qcow2, and a qcow2 child over it (a chain).
gen_gpt() {
	mkxfs p1.img $((200 * MIB)) small 1 "$([ "${VD_FULL:-}" = 1 ] && echo 2 || echo 1)" || return 1
	mkv4 p2.img $((64 * MIB)) || return 1
	truncate -s $((280 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=409600, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="xfs root"
		start=411648, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="xfs v4"
	EOF
	place disk.raw p1.img $((2048 * 512)) || return 1
	place disk.raw p2.img $((411648 * 512)) || return 1
	qemu-img convert -O qcow2 disk.raw gpt.qcow2 || return 1
	qemu-img create -q -f qcow2 -b gpt.qcow2 -F qcow2 top.qcow2 || return 1
	mv p2.img.tree p2.tree
	rm -f disk.raw p1.img p2.img
}

# Whole-disk filesystems (raw images, fs/) of the mkfs variants, two
# options to an image to keep the run short (VD_FULL makes one each, with
# the whole tree): 1 KiB blocks with 16 KiB directory blocks, v4 without
# ftype; and (VD_FULL) nrext64, rmap and 4 KiB sectors, v4 on 2 KiB
# blocks.
gen_variants() {
	mkxfs b1k.img $((64 * MIB)) none 0 1 -b size=1024 -n size=16384 || return 1
	mkv4 ftype0.img $((48 * MIB)) -n ftype=0 || return 1
}

gen_more() {
	mkxfs mix.img $((64 * MIB)) none 0 1 -i nrext64=1 -m rmapbt=1 -s size=4096 || return 1
	mkv4 v4b2k.img $((48 * MIB)) -b size=2048 -i size=256 || return 1
}

gen_full() {
	mkxfs b1k.img $((64 * MIB)) small 12 2 -b size=1024 || return 1
	mkxfs dir16k.img $((64 * MIB)) small 13 2 -n size=16384 || return 1
	mkxfs nrext64.img $((64 * MIB)) small 14 2 -i nrext64=1 || return 1
	mkxfs sect4k.img $((64 * MIB)) small 15 2 -s size=4096 || return 1
	mkxfs rmap.img $((64 * MIB)) small 17 2 -m rmapbt=1 || return 1
	mkxfs noreflink.img $((64 * MIB)) small 18 2 -m reflink=0,bigtime=0 -i sparse=0 || return 1
}

# A log that needs recovery: changes committed to the log (fsync) and
# the filesystem shut down before they reach their homes.
gen_dirty() {
	mkxfs dirty.img $((64 * MIB)) none 0 1 || return 1
	xfs_rw dirty.img m || return 1
	mkdir -p m/dirty/new_dir && head -c 300000 /dev/urandom >m/dirty/new_dir/nested &&
		printf 'appended\n' >>m/xfs/prealloc && setfattr -n user.dirty -v log m/dirty &&
		for i in $(seq 200); do : >"m/dirty/new_dir/f$i"; done &&
		xfs_io -c fsync m/dirty/new_dir/nested &&
		xfs_io -x -c 'shutdown -f' m
	local rc=$?
	xfs_unmount "$PWD/m" || return 1
	[ $rc -eq 0 ] || return 1
	# The image needs recovery: xfs_repair refuses to check it.
	xfs_repair -n dirty.img >dirty.repair 2>&1 && { echo "xfs_repair -n finds the log clean"; return 1; }
	grep -qi 'log' dirty.repair || { cat dirty.repair; return 1; }
}

# The heavy ones (VD_FULL): a 100,000-entry directory (node form over a
# bmbt), a file of 30,000 extents on 1 KiB blocks, 512-byte blocks (v4).
gen_heavy() {
	mkxfs big.img $((400 * MIB)) none 0 0 -b size=1024 || return 1
	xfs_rw big.img m || return 1
	manyfiles m/hundred_k 100000 && fragment m/frag30k 30000 1024
	local rc=$?
	xfs_unmount "$PWD/m" || return 1
	[ $rc -eq 0 ] || return 1
	mkv4 b512.img $((48 * MIB)) -b size=512 || return 1
}

# ------------------------------------------------------------ checks

# xfs_treecmp A B — inside a test: A (the kernel) and B (vdmount) must
# not differ.
xfs_treecmp() {
	local a=$1 b=$2
	shift 2
	T python3 "$TREECMP" --statfs "$@" "$a" "$b" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences, $b vs the kernel: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
	cat "$TD/treecmp.out"
}

# whole_vs_kernel GEN IMG [MKFS-CHECK] — inside a test: vdmount's fs/ of
# the raw image IMG against the kernel's mount of it; no log warning.
whole_vs_kernel() {
	local d
	need_loop
	d=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/$2" "$MNT"
	T test -d "$MNT/fs" || die "no fs/ for $2 (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	grep -q 'log needs recovery' "$TD/mount.err" && die "a clean log is taken for a dirty one: $(cat "$TD/mount.err")"
	kmount "$d/$2" 0 "$(stat -c %s "$d/$2")" "$TD/k"
	xfs_treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

# v4_vs_tree TREE DIR — inside a test: DIR (vdmount's view of a v4 made
# from TREE by a prototype) shows TREE; not the times mkfs set, xattrs
# (none), blocks, directory sizes, or file types in entries (ftype=0 has
# none).
v4_vs_tree() {
	T python3 "$TREECMP" --ignore atime,mtime,ctime,xattr,blocks,dirsize,dtype,dino \
		"$1" "$2" >"$TD/treecmp.out" 2>&1 ||
		die "$(grep -c . "$TD/treecmp.out") lines of differences, $2 vs its source tree: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
}

# v4_whole GEN IMG — inside a test: vdmount's fs/ of IMG against its
# source tree.
v4_whole() {
	local d
	d=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/$2" "$MNT"
	T test -d "$MNT/fs" || die "no fs/ for $2 (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	v4_vs_tree "$d/$2.tree" "$MNT/fs"
	umount_ok "$MNT"
}

# The images hold what the tests claim: the fork formats XFS names.
t_forms() {
	local d f
	d=$(img_or_die variants) || exit 1
	f=$d/b1k.img
	xfs_db -r -c 'path /xfs/fragmented' -c 'print core.format' "$f" 2>/dev/null | grep -q 'btree' ||
		die "xfs/fragmented is not in B-tree format: $(xfs_db -r -c 'path /xfs/fragmented' -c 'print core.format' "$f" 2>&1)"
	xfs_db -r -c 'path /xfs/dir_3000' -c 'print core.nextents' "$f" 2>/dev/null | grep -q 'nextents = [1-9]' ||
		die "xfs/dir_3000 has no extents"
	xfs_db -r -c 'path /xfs/attr_node' -c 'print core.aformat' "$f" 2>/dev/null | grep -Eq 'extents|btree' ||
		die "xfs/attr_node has no attribute blocks"
	xfs_db -r -c 'path /xfs/dir_3' -c 'print core.format' "$f" 2>/dev/null | grep -q 'local' ||
		die "xfs/dir_3 is not shortform"
}

t_gpt() {
	local d r
	need_loop
	d=$(img_or_die gpt) || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$(vd_oracle "$d/$1") || die "qemu-img convert failed"
	mount_ok "$MNT" "$d/$1" "$MNT"
	for n in 1 2; do
		T test -d "$MNT/p$n" || die "no p$n/ for the XFS partition (ls: $(ls "$MNT" | tr '\n' ' '); $(head -c 300 "$TD/mount.err"))"
	done
	kmount "$ORACLE" $((2048 * 512)) $((409600 * 512)) "$TD/k1"
	xfs_treecmp "$TD/k1" "$MNT/p1"
	kumount_ok "$TD/k1"
	v4_vs_tree "$d/p2.tree" "$MNT/p2"
	umount_ok "$MNT"
}

# vdtool info names the filesystem, its version, UUID and block size as
# xfs_db reads them.
t_info() {
	local d uuid out
	d=$(img_or_die variants) || exit 1
	uuid=$(xfs_db -r -c uuid "$d/b1k.img" | sed -n 's/^UUID = //p')
	[ -n "$uuid" ] || die "xfs_db gives no UUID"
	out=$(T "$VDTOOL" info "$d/b1k.img" 2>&1) || die "vdtool info failed: $out"
	echo "$out" | grep -F "xfs (V5), UUID $uuid, 1024-byte blocks" >/dev/null ||
		die "vdtool info does not show 'xfs (V5), UUID $uuid, 1024-byte blocks': $(echo "$out" | tr '\n' '|')"
	out=$(T "$VDTOOL" info "$d/ftype0.img" 2>&1) || die "vdtool info failed: $out"
	echo "$out" | grep -F "xfs (V4)" | grep -F "4096-byte blocks" >/dev/null ||
		die "vdtool info of a v4: $(echo "$out" | tr '\n' '|')"
}

# A log that needs recovery: the tree as `ro,norecovery` shows it, one
# warning; vdmount writes nothing.
t_dirty() {
	local d sum
	need_loop
	d=$(img_or_die dirty) || exit 1
	sum=$(md5sum <"$d/dirty.img")
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/dirty.img" "$MNT"
	grep -q 'log needs recovery' "$TD/mount.err" ||
		die "no warning about the dirty log (stderr: $(head -c 300 "$TD/mount.err"))"
	KMOUNT_OPTS=norecovery kmount "$d/dirty.img" 0 "$(stat -c %s "$d/dirty.img")" "$TD/k"
	xfs_treecmp "$TD/k" "$MNT/fs"
	kumount_ok "$TD/k"
	umount_ok "$MNT"
	[ "$(md5sum <"$d/dirty.img")" = "$sum" ] || die "dirty.img changed"
}

# An incompatible feature we do not know: refused by name, the volume's
# bytes still shown.
t_unknown_incompat() {
	local d
	need_loop
	d=$(img_or_die variants) || exit 1
	cp "$d/b1k.img" x.img
	# sb_features_incompat (offset 216) |= 1 << 30, CRC recomputed by
	# xfs_db's own writer.
	local f
	f=$(xfs_db -r -c 'sb 0' -c 'print features_incompat' x.img | sed -n 's/^features_incompat = //p')
	[ -n "$f" ] || die "xfs_db does not print features_incompat"
	xfs_db -x -c 'sb 0' -c "write -d features_incompat $((f | 0x40000000))" x.img >/dev/null 2>&1 ||
		die "xfs_db could not set the feature bit"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" x.img "$MNT"
	T test -e "$MNT/fs" && die "fs/ shown for a filesystem with an unknown incompatible feature"
	grep -q 'unknown incompatible features 0x40000000' "$TD/mount.err" ||
		die "no message naming the feature: $(head -c 300 "$TD/mount.err")"
	T test -f "$MNT/disk.raw" || die "disk.raw missing"
	umount_ok "$MNT"
}

# Under make check: the GPT disk through a qcow2 chain, one v5 and one v4
# variant, the dirty log, the refusal. The rest with VD_FULL=1.
vd_test xfs-images-hold-the-forms t_forms
vd_test xfs-qcow2-chain-gpt-v5-vs-kernel-v4-vs-source t_gpt top.qcow2
vd_test xfs-1k-blocks-16k-dirs-vs-kernel whole_vs_kernel variants b1k.img
vd_test xfs-v4-ftype0-vs-source v4_whole variants ftype0.img
vd_test xfs-vdtool-info t_info
vd_test xfs-dirty-log-vs-norecovery t_dirty
vd_test xfs-unknown-incompat-refused t_unknown_incompat
if [ "${VD_FULL:-}" = 1 ]; then
	vd_test xfs-gpt-qcow2-vs-kernel t_gpt gpt.qcow2
	vd_test xfs-nrext64-rmap-4k-sectors-vs-kernel whole_vs_kernel more mix.img
	vd_test xfs-v4-2k-blocks-vs-source v4_whole more v4b2k.img
	for v in b1k dir16k nrext64 sect4k rmap noreflink; do
		vd_test "xfs-full-$v-vs-kernel" whole_vs_kernel full "$v.img"
	done
	vd_test xfs-heavy-100k-dir-30k-extents-vs-kernel whole_vs_kernel heavy big.img
	vd_test xfs-v4-512-blocks-vs-source v4_whole heavy b512.img
fi
vd_finish
