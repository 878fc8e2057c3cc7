#!/bin/bash
# NTFS files, against ntfs-3g's own read-only mount.
#
# Volumes are made at test time by mkntfs (-Q, several cluster sizes) and
# filled through ntfs-3g's read-write FUSE mount: the standard test tree
# of tests/mktree.py (what NTFS can hold of it), plus hard links, Interix
# and reparse-point symlinks (relative and absolute), a junction and a
# reparse point of a tag ntfs-3g cannot translate (both written as
# system.ntfs_reparse_data), named streams (setfattr user.*), a folder
# with the compression attribute (mount option compression), sparse
# files, a fragmented file, a large file, UTF-8 names (Korean, Japanese,
# 255 UTF-16 units) and a big folder. They are placed in a GPT disk
# (ESP, MSR, C: with 4 KiB clusters, recovery with 512-byte ones) made a
# two-layer qcow2 chain by qemu-img, and, with VD_FULL=1, an MBR disk
# ("System Reserved" with 64 KiB clusters, C: with 2 KiB ones). A
# hibernated volume (hiberfil.sys as Fast Startup leaves it) must mount
# with a warning. Oracle: `ntfs-3g -o
# ro` of the same partition of qemu-img's raw copy, through a read-only
# loop device; tests/treecmp.py compares every path and attribute.
. "$(dirname "$0")/lib.sh"

MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

command -v mkntfs >/dev/null && command -v ntfs-3g >/dev/null || {
	echo "ok ntfs # skipped: ntfs-3g is not installed"
	exit 0
}

# ------------------------------------------------------------ builders
# (run inside vd_img generators: plain return codes, no die)

# reparse_hex KIND TARGET — a reparse point's bytes (MS-FSCC 2.1.2) as
# setfattr's 0x... value: "junction" (IO_REPARSE_TAG_MOUNT_POINT),
# "abs"/"rel" (IO_REPARSE_TAG_SYMLINK, flags 0 / 1 = relative), or
# "other" (a tag ntfs-3g has no translation for: WOF's, 0x80000017).
reparse_hex() {
	python3 - "$1" "$2" <<-'EOF'
		import struct, sys
		kind, target = sys.argv[1], sys.argv[2]
		if kind == "other":
		    data = struct.pack("<IIII", 1, 1, 2, 0)
		    print("0x" + (struct.pack("<IHH", 0x80000017, len(data), 0) + data).hex())
		    sys.exit(0)
		sub = target.encode("utf-16-le")
		prn = target.replace("\\??\\", "").encode("utf-16-le")
		buf = sub + b"\0\0" + prn + b"\0\0"
		hdr = struct.pack("<HHHH", 0, len(sub), len(sub) + 2, len(prn))
		if kind == "junction":
		    tag, body = 0xA0000003, hdr + buf
		else:
		    tag, body = 0xA000000C, hdr + struct.pack("<I", 1 if kind == "rel" else 0) + buf
		print("0x" + (struct.pack("<IHH", tag, len(body), 0) + body).hex())
	EOF
}

# fill M SEED BIGDIR LARGE — fill the ntfs-3g rw mount M; LARGE (MiB):
# 0 leaves out the test tree and the large file (small volumes).
fill() {
	local m=$1 seed=$2 nbig=$3 large=$4 i
	if [ "$large" -gt 0 ]; then
		python3 "$MKTREE" --profile small --seed "$seed" tree >/dev/null || return 1
		# Owners, modes, devices, ACLs and trusted. xattrs do not go
		# onto NTFS through ntfs-3g; what does is compared.
		cp -a tree/. "$m"/ 2>/dev/null
		rm -rf tree
	fi
	mkdir -p "$m/nt/links" "$m/nt/streams" "$m/nt/names" "$m/nt/big" || return 1
	head -c 300000 /dev/urandom >"$m/nt/links/target.bin" || return 1
	ln "$m/nt/links/target.bin" "$m/nt/links/hard1" || return 1
	ln "$m/nt/links/target.bin" "$m/nt/big/hard2" || return 1
	ln -s target.bin "$m/nt/links/sym_rel" || return 1
	ln -s /no/such/abs "$m/nt/links/sym_abs" || return 1
	ln -s ../names "$m/nt/links/sym_dir" || return 1
	touch "$m/nt/links/rp_rel" "$m/nt/links/rp_other" && mkdir "$m/nt/links/junction" \
		"$m/nt/links/rp_abs" || return 1
	setfattr -n system.ntfs_reparse_data -v "$(reparse_hex rel 'target.bin')" \
		"$m/nt/links/rp_rel" || return 1
	setfattr -n system.ntfs_reparse_data -v "$(reparse_hex other x)" \
		"$m/nt/links/rp_other" || return 1
	setfattr -n system.ntfs_reparse_data -v "$(reparse_hex junction '\??\C:\nt\names')" \
		"$m/nt/links/junction" || return 1
	setfattr -n system.ntfs_reparse_data -v "$(reparse_hex abs '\??\C:\nt\big')" \
		"$m/nt/links/rp_abs" || return 1
	printf 'main\n' >"$m/nt/streams/file" || return 1
	setfattr -n user.small -v "stream data" "$m/nt/streams/file" || return 1
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.big", os.urandom(60000))' \
		"$m/nt/streams/file" || return 1
	mkdir "$m/nt/streams/dir" && setfattr -n user.on_dir -v x "$m/nt/streams/dir" || return 1
	setfattr -n system.ntfs_attrib_be -v 0x00000002 "$m/nt/streams/file" || return 1 # hidden
	mkdir "$m/nt/comp" || return 1
	setfattr -n system.ntfs_attrib_be -v 0x00000800 "$m/nt/comp" || return 1
	seq 1 300000 >"$m/nt/comp/seq.txt" || return 1
	head -c 3000000 /dev/zero >"$m/nt/comp/zeros" || return 1
	head -c 200000 /dev/urandom >"$m/nt/comp/random" || return 1
	{ head -c 70000 /dev/urandom; head -c 70000 /dev/zero; seq 1 9000; } >"$m/nt/comp/mixed" || return 1
	truncate -s 100M "$m/nt/sparse" || return 1
	printf 'mid' | dd of="$m/nt/sparse" bs=1 seek=50000000 conv=notrunc status=none
	printf 'end' | dd of="$m/nt/sparse" bs=1 seek=104857597 conv=notrunc status=none
	# Two files appended in turns: both fragmented.
	for i in $(seq 100); do
		head -c 8192 /dev/urandom >>"$m/nt/frag_a"
		head -c 8192 /dev/urandom >>"$m/nt/frag_b"
	done
	head -c $((large * MIB + 12345)) /dev/urandom >"$m/nt/large.bin" || return 1
	printf 'ko\n' >"$m/nt/names/한국어 파일.txt" || return 1
	printf 'ja\n' >"$m/nt/names/日本語のファイル名.txt" || return 1
	printf 'mixed\n' >"$m/nt/names/Mixed Case Name.TXT" || return 1
	python3 -c 'import sys; open(sys.argv[1] + "/" + "\u00e9" * 255, "w").write("255 units\n")' \
		"$m/nt/names" || return 1
	mkdir "$m/nt/bigdir" || return 1
	(cd "$m/nt/bigdir" && seq -f "entry %06g with a longer name" 1 "$nbig" | xargs -d '\n' touch) ||
		return 1
	touch -d '2001-02-03 04:05:06.1234567' "$m/nt/names/Mixed Case Name.TXT"
}

# mkvol FILE SIZE CLUSTER SEED NBIG LARGE — an NTFS volume in FILE,
# filled.
mkvol() {
	local f=$1 size=$2 cl=$3 seed=$4 nbig=$5 large=$6 rc
	rm -f "$f"
	truncate -s "$size" "$f" || return 1
	mkntfs -Q -F -q -c "$cl" -L "vd ntfs $cl" "$f" 2>/dev/null || return 1
	mkdir -p rw
	echo "$PWD/rw" >>"$VD_MOUNTS"
	timeout -k 5 120 ntfs-3g -o compression,big_writes "$f" rw || return 1
	fill rw "$seed" "$nbig" "$large"
	rc=$?
	timeout -k 5 60 umount rw || return 1
	return $rc
}

place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}

# GPT: ESP-like FAT-less partition left empty, MSR, C: (4 KiB clusters),
# recovery (512-byte clusters); the same disk as a two-layer qcow2 chain.
gen_gpt() {
	local big=1500 large=8
	[ "${VD_FULL:-}" = 1 ] && big=20000 large=64
	mkvol c.img $((200 * MIB)) 4096 1 "$big" "$large" || return 1
	mkvol r.img $((32 * MIB)) 512 2 300 0 || return 1
	truncate -s $((270 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
		start=18432, size=32768, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE, name="Microsoft reserved partition"
		start=51200, size=409600, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Basic data partition"
		start=460800, size=65536, type=DE94BBA4-06D1-4D40-A16A-BFD50179D6AC, name="Recovery"
	EOF
	place disk.raw c.img $((51200 * 512)) || return 1
	place disk.raw r.img $((460800 * 512)) || return 1
	sfdisk --json disk.raw >gpt.json || return 1
	qemu-img convert -O qcow2 disk.raw base.qcow2 || return 1
	# The top layer: C: changed through ntfs-3g once more.
	mkdir -p rw
	echo "$PWD/rw" >>"$VD_MOUNTS"
	timeout -k 5 60 ntfs-3g c.img rw || return 1
	mkdir rw/top && printf 'in the top layer\n' >rw/top/new.txt
	head -c 500000 /dev/urandom >rw/nt/large.bin.new && mv rw/nt/large.bin.new rw/nt/large.bin
	timeout -k 5 60 umount rw || return 1
	place disk.raw c.img $((51200 * 512)) || return 1
	qemu-img convert -O qcow2 -B base.qcow2 -F qcow2 disk.raw top.qcow2 || return 1
	rm -f c.img r.img disk.raw
}

# MBR: "System Reserved" (64 KiB clusters) + C: (2 KiB clusters).
gen_mbr() {
	mkvol s.img $((40 * MIB)) 65536 3 50 0 || return 1
	mkvol c.img $((120 * MIB)) 2048 4 500 0 || return 1
	truncate -s $((170 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=2048, size=81920, type=7, bootable
		start=83968, size=245760, type=7
	EOF
	place disk.raw s.img $((2048 * 512)) || return 1
	place disk.raw c.img $((83968 * 512)) || return 1
	sfdisk --json disk.raw >mbr.json || return 1
	qemu-img convert -O qcow2 disk.raw mbr.qcow2 || return 1
	rm -f s.img c.img disk.raw
}

# A hibernated volume: hiberfil.sys starting "HIBR", as Windows leaves
# it with Fast Startup.
gen_states() {
	truncate -s $((16 * MIB)) h.img
	mkntfs -Q -F -q -c 4096 -L hibernated h.img 2>/dev/null || return 1
	mkdir -p rw
	echo "$PWD/rw" >>"$VD_MOUNTS"
	timeout -k 5 60 ntfs-3g h.img rw || return 1
	mkdir rw/Users && printf 'a file\n' >rw/Users/file.txt
	{ printf 'HIBR'; head -c 8188 /dev/zero; } >rw/hiberfil.sys
	timeout -k 5 60 umount rw || return 1
}

# ------------------------------------------------------------ helpers

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

# omount FILE OFF LEN MNT — inside a test: ntfs-3g -o ro of LEN bytes at
# OFF of FILE, through a read-only loop device; both recorded.
omount() {
	local f=$1 off=$2 len=$3 m=$4 dev
	need_loop
	mkdir -p "$m"
	dev=$(T losetup -r -f --show -o "$off" --sizelimit "$len" "$f" 2>"$TD/.om.err") ||
		die "losetup of $f at $off+$len failed: $(cat "$TD/.om.err")"
	echo "$dev" >>"$VD_LOOPS"
	echo "$dev" >"$m.dev"
	echo "$m" >>"$VD_MOUNTS"
	T ntfs-3g -o ro "$dev" "$m" 2>"$TD/.om.err" ||
		die "ntfs-3g -o ro of $f at $off+$len failed: $(cat "$TD/.om.err")"
}

oumount() {
	timeout -k 5 60 umount "$1" || die "umount $1 failed"
	grep -vxF -- "$1" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	vd_loop_detach "$(cat "$1.dev")"
}

# Junctions and absolute symlinks: ntfs-3g puts its own mount point in
# front of the target, vdmount the folder the filesystem is shown as
# (MNT/pN): compared apart, each after its own prefix.
ABS_LINKS="nt/links/junction nt/links/rp_abs"

treecmp() {
	local a=$1 b=$2 x
	shift 2
	T python3 "$TREECMP" --statfs "$@" "$a" "$b" >"$TD/treecmp.out" 2>&1
	grep -v -e "^/nt/links/junction: \(symlink\|size\):" \
		-e "^/nt/links/rp_abs: \(symlink\|size\):" -e '^treecmp:' \
		"$TD/treecmp.out" >"$TD/treecmp.diff"
	[ -s "$TD/treecmp.diff" ] &&
		die "$(grep -c . "$TD/treecmp.diff") lines of differences, $b vs ntfs-3g: $(head -n 8 "$TD/treecmp.diff" | tr '\n' '|')"
	for x in $ABS_LINKS; do
		[ -L "$a/$x" ] || continue
		local ta tb
		ta=$(readlink "$a/$x")
		tb=$(readlink "$b/$x")
		[ "$(realpath -s "$b")${ta#"$a"}" = "$tb" ] ||
			die "$x: ntfs-3g says '$ta' (under $a), we say '$tb' (under $b)"
	done
	tail -n 1 "$TD/treecmp.out"
}

# cmp_part IMG JSON N — pN/ of vdmount's mount of IMG against ntfs-3g.
cmp_part() {
	local img=$1 json=$2 n=$3 r
	r=$(parts_of "$json" | awk -v n="$n" '$1 == n { print $2, $3 }')
	[ -n "$r" ] || die "no partition $n in $json"
	T test -d "$MNT/p$n" || die "$MNT/p$n/ is missing (ls: $(ls "$MNT" | tr '\n' ' '))"
	omount "$ORACLE" ${r% *} ${r#* } "$TD/o$n"
	treecmp "$TD/o$n" "$MNT/p$n"
	oumount "$TD/o$n"
}

mount_img() {
	need_loop
	IMGDIR=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	ORACLE=$(vd_oracle "$IMGDIR/$2") || die "qemu-img convert failed"
	mount_ok "$MNT" "$IMGDIR/$2" "$MNT"
}

# ------------------------------------------------------------ tests

t_gpt() {
	mount_img gpt "$1"
	T test -e "$MNT/p1" && die "p1/ exists for an empty partition"
	T test -e "$MNT/p2" && die "p2/ exists for the MSR"
	cmp_part "$1" "$IMGDIR/gpt.json" 3
	# The top layer changed C: only.
	[ "$1" = top.qcow2 ] || cmp_part "$1" "$IMGDIR/gpt.json" 4
	if [ "$1" = top.qcow2 ]; then
		T grep -q 'in the top layer' "$MNT/p3/top/new.txt" || die "top/new.txt is not the top layer's"
	fi
	umount_ok "$MNT"
}

# 64 KiB and 2 KiB clusters: slow to build, so with VD_FULL=1 only.
t_mbr() {
	[ "${VD_FULL:-}" = 1 ] || skip_test "VD_FULL=1 runs it (64 KiB and 2 KiB clusters, an MBR disk)"
	mount_img mbr mbr.qcow2
	cmp_part mbr.qcow2 "$IMGDIR/mbr.json" 1
	cmp_part mbr.qcow2 "$IMGDIR/mbr.json" 2
	umount_ok "$MNT"
}

# What the test images must hold, or the comparisons test little.
t_images_hold() {
	mount_img gpt base.qcow2
	local p=$MNT/p3
	T test "$(stat -c %i "$p/nt/links/target.bin")" = "$(stat -c %i "$p/nt/big/hard2")" ||
		die "hard links do not share an inode number"
	T test -L "$p/nt/links/junction" || die "the junction is not a symlink"
	T readlink "$p/nt/links/rp_other" | grep -q '^unsupported reparse tag 0x80000017$' ||
		die "rp_other reads '$(readlink "$p/nt/links/rp_other")'"
	T readlink "$p/nt/links/rp_rel" | grep -qx 'target.bin' || die "rp_rel is not target.bin"
	T getfattr -n user.small --only-values "$p/nt/streams/file" | grep -qx 'stream data' ||
		die "no user.small stream"
	T getfattr -n system.ntfs_attrib_be -e hex "$p/nt/comp/seq.txt" | grep -q '=0x00000[89a-f]..' ||
		die "comp/seq.txt is not compressed: $(getfattr -n system.ntfs_attrib_be -e hex "$p/nt/comp/seq.txt")"
	local blocks
	blocks=$(stat -c %b "$p/nt/sparse")
	[ "$blocks" -lt 4096 ] || die "nt/sparse has $blocks blocks: not sparse"
	T stat -c %y "$p/nt/names/Mixed Case Name.TXT" | grep -q '04:05:06.1234567' ||
		die "no 100 ns time: $(stat -c %y "$p/nt/names/Mixed Case Name.TXT")"
	[ "$(ls "$p/nt/bigdir" | wc -l)" -ge 1500 ] || die "bigdir is small"
	umount_ok "$MNT"
}

# The system xattrs ntfs-3g offers, read one by one (they are not
# listed, so treecmp does not see them), in one Python process per side.
sysx() {
	python3 - "$@" <<-'EOF'
		import os, sys
		root = sys.argv[1]
		names = ["system.ntfs_attrib", "system.ntfs_attrib_be", "system.ntfs_times",
		         "system.ntfs_times_be", "system.ntfs_crtime", "system.ntfs_crtime_be",
		         "system.ntfs_dos_name", "system.ntfs_reparse_data",
		         "system.ntfs_object_id", "system.ntfs_acl", "system.ntfs_ea",
		         "user.small", "user.none", "trusted.none", "security.none"]
		for f in sys.argv[2:]:
		    for n in names:
		        try:
		            v = os.getxattr(os.path.join(root, f), n, follow_symlinks=False).hex()
		        except OSError as e:
		            v = "errno %d" % e.errno
		        print(f, n, v)
	EOF
}

t_system_xattrs() {
	local r files
	mount_img gpt base.qcow2
	r=$(parts_of "$IMGDIR/gpt.json" | awk '$1 == 3 { print $2, $3 }')
	omount "$ORACLE" ${r% *} ${r#* } "$TD/o"
	files=(nt/comp/seq.txt nt/streams/file nt/links/rp_rel nt/links/junction
		nt/links/rp_other nt/links/hard1 nt/links/sym_rel "nt/names/Mixed Case Name.TXT"
		nt/bigdir . links/fast)
	sysx "$TD/o" "${files[@]}" >a.txt || die "reading ntfs-3g's xattrs failed"
	sysx "$MNT/p3" "${files[@]}" >b.txt || die "reading our xattrs failed"
	grep -q 'system.ntfs_times [0-9a-f]\{64\}' a.txt || die "ntfs-3g gave no system.ntfs_times"
	# The root's security descriptor as mkntfs writes it is 4140 bytes;
	# ntfs-3g fails to return it (EIO), we return it.
	grep -q '^\. system.ntfs_acl 0100' b.txt || die "no system.ntfs_acl on the root"
	sed -i '/^\. system.ntfs_acl /d' a.txt b.txt
	diff a.txt b.txt >d.txt || die "system xattrs differ from ntfs-3g's: $(head -n 6 d.txt | tr '\n' '|')"
	oumount "$TD/o"
	umount_ok "$MNT"
}

# vdtool reads the same files as the mount.
t_vdtool() {
	local d
	need_loop
	d=$(img_or_die gpt) || exit 1
	T "$VDTOOL" info "$d/base.qcow2" >info.txt || die "vdtool info failed"
	grep -q 'ntfs (3.1), label "vd ntfs 4096", serial [0-9A-F]\{16\}' info.txt ||
		die "info: $(grep -i ntfs info.txt | tr '\n' '|')"
	grep -q 'cluster size 512' info.txt || die "no cluster size in: $(tr '\n' '|' <info.txt)"
	T "$VDTOOL" cat "$d/base.qcow2" "/p3/nt/names/한국어 파일.txt" | grep -qx ko ||
		die "vdtool cat of a Korean name failed"
	mkdir -p out
	# Not nt/names: a 255-unit name is 510 bytes of UTF-8, past the
	# host's NAME_MAX.
	T "$VDTOOL" cp -r "$d/base.qcow2" /p3/nt/comp /p3/nt/streams out >cp.out 2>&1 ||
		die "vdtool cp failed: $(tail -n 3 cp.out | tr "\n" " ")"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/base.qcow2" "$MNT"
	T python3 "$TREECMP" --ignore mode,uid,gid,nlink,blocks,atime,ctime,dirsize,xattr,links,dino,symlink,mtime \
		"$MNT/p3/nt/comp" out/comp >cmp.out 2>&1 || die "vdtool cp differs: $(head -n 5 cmp.out | tr '\n' '|')"
	umount_ok "$MNT"
}

t_states() {
	local d
	need_loop
	d=$(img_or_die states) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$d/h.img" "$MNT"
	grep -q 'hibernated' "$TD/mount.err" ||
		die "no warning for a hibernated volume: $(head -c 300 "$TD/mount.err")"
	omount "$d/h.img" 0 "$(stat -c %s "$d/h.img")" "$TD/o"
	treecmp "$TD/o" "$MNT/fs"
	oumount "$TD/o"
	umount_ok "$MNT"
}

vd_test gpt-base-vs-ntfs-3g t_gpt base.qcow2
vd_test gpt-qcow2-chain-vs-ntfs-3g t_gpt top.qcow2
vd_test mbr-vs-ntfs-3g t_mbr
vd_test images-hold-what-they-should t_images_hold
vd_test system-xattrs-vs-ntfs-3g t_system_xattrs
vd_test vdtool-info-cat-cp t_vdtool
vd_test hibernated-mounts-read-only t_states
vd_finish
