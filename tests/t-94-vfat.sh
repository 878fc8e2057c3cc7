#!/bin/bash
# FAT12/16/32 volumes through the mount: in MBR and GPT partitions of
# qcow2 disks, and bare (fs/). Volumes are made by mkfs.vfat (several
# cluster sizes) and filled by mtools (mcopy -s -m) from the tree
# tests/fatvol.py generates: long, mixed-case, CJK and 228-character
# names, names that differ only in case, a 20-deep tree, an empty and a
# 5 MiB file, a directory of 300 entries, a full fixed root directory, a
# fragmented file, attributes, mtimes from 1980 to 2107.
#
# Oracles we did not write: fsck.fat -n says each volume is clean;
# mtools copies each volume out (mcopy -s -m) and lists names (mdir -/ -a)
# and attributes (mattrib -/); minfo and mdir give the geometry and the
# free space; python's codecs give the expected UTF-8 of names that
# mtools cannot write (a surrogate pair) or decodes in another code page.
# tests/fatcmp.py compares every path: type, size, sha256, mtime, mode,
# owner, user.fat.attrib, and the names of every directory.
. "$(dirname "$0")/lib.sh"

FATVOL=$VD_LIB_DIR/fatvol.py
FATCMP=$VD_LIB_DIR/fatcmp.py
MIB=1048576
export LC_ALL=C.UTF-8 MTOOLS_SKIP_CHECK=1 TZ=UTC
EMOJI='🦊 fox.txt'

# Volumes: NAME IMAGE DIR-IN-MOUNT. fat12 is a bare volume; the others
# are partitions of mbr.qcow2 (FAT16 type 06, FAT32 type 0c) and
# gpt.qcow2 (the ESP, a FAT16 and a FAT32 with 64 KiB clusters).
VOLS="fat12:fat12.vol:fs f16s1:mbr.qcow2:p1 f32s8:mbr.qcow2:p2
esp:gpt.qcow2:p1 f16s8:gpt.qcow2:p2 f32s128:gpt.qcow2:p3"

# ------------------------------------------------------------ builders
# (run inside vd_img generators: plain return codes, no die)

fv() { python3 "$FATVOL" "$@"; }

# fragment VOL — frag/fa, frag/fb, frag/fc, then fb deleted and frag/fbig
# written: fbig fills fb's hole and continues elsewhere. mshowfat (mtools)
# must show fbig in more than one run.
fragment() {
	local v=$1 cs
	cs=$(minfo -i "$v" :: | sed -n 's/^cluster size: \([0-9]*\) sectors$/\1/p')
	cs=$((cs * 512))
	[ "$cs" -gt 0 ] || return 1
	mkdir -p frag
	head -c $((2 * cs)) /dev/urandom >frag/fa
	head -c $((3 * cs)) /dev/urandom >frag/fb
	head -c $((2 * cs - 100)) /dev/urandom >frag/fc
	head -c $((6 * cs + 1234)) /dev/urandom >frag/fbig
	touch -d '2011-05-06 07:08:10' frag/*
	mmd -i "$v" ::/frag || return 1
	mcopy -m -i "$v" frag/fa frag/fb frag/fc ::/frag/ || return 1
	mdel -i "$v" ::/frag/fb || return 1
	# FAT32: mtools allocates after the FSInfo next-free hint; "unknown"
	# (a value any FAT32 may hold) makes it search from the start.
	if minfo -i "$v" :: | grep -q 'disk type="FAT32'; then
		fv nohint "$v" || return 1
	fi
	mcopy -m -i "$v" frag/fbig ::/frag/ || return 1
	mshowfat -i "$v" ::/frag/fbig >"$v.frag" || return 1
	[ "$(grep -o '<' "$v.frag" | wc -l)" -ge 2 ] ||
		{ echo "fbig is not fragmented: $(cat "$v.frag")"; return 1; }
	rm -rf frag
}

# fill_root VOL — fill every free slot of a FAT12/16 fixed root with
# 8.3 upper-case names (one slot each); mtools must then refuse one more.
fill_root() {
	local v=$1 n i
	n=$(fv rootfree "$v") || return 1
	[ "$n" -gt 0 ] || return 1
	rm -rf fill
	mkdir fill
	for i in $(seq "$n"); do
		printf 'r%d' $((i % 3)) | head -c $((i % 3)) >"fill/R$i.TXT"
	done
	touch -d '2012-01-02 03:04:06' fill/*
	mcopy -m -i "$v" fill/* :: || return 1
	[ "$(fv rootfree "$v")" = 0 ] || { echo "root not full"; return 1; }
	printf x >ONEMORE.TXT
	if mcopy -i "$v" ONEMORE.TXT :: 2>/dev/null; then
		echo "mtools could add to a full root"
		return 1
	fi
	rm -rf fill ONEMORE.TXT
}

# mkvol NAME MIB FATBITS FULLROOT MKFS-ARGS... — NAME.vol, filled from
# src/, checked clean, copied out by mtools to NAME.out with the listings
# NAME.mdir, NAME.mattrib, NAME.minfo; then the emoji poked into the
# long name of "ZZ fox.txt" (the copy-out and listings renamed to match).
mkvol() {
	local n=$1 mib=$2 bits=$3 full=$4 v
	shift 4
	v=$n.vol
	rm -f "$v"
	truncate -s $((mib * MIB)) "$v" || return 1
	mkfs.vfat -n "$(echo "$n" | tr a-z A-Z)" "$@" "$v" || return 1
	minfo -i "$v" :: | grep -q "disk type=\"FAT$bits" ||
		{ echo "$n: not FAT$bits"; return 1; }
	[ "$(fv geom "$v" | sed -n 's/^fat_bits=//p')" = "$bits" ] ||
		{ echo "$n: cluster count is not FAT$bits's"; return 1; }
	fragment "$v" || return 1
	(cd src && mcopy -s -m -D a -i "../$v" -- * .[!.]* ::) || return 1
	mattrib -i "$v" +r ::/attr/ro.txt || return 1
	mattrib -i "$v" +h ::/attr/hidden.txt || return 1
	mattrib -i "$v" +s ::/attr/system.txt || return 1
	mattrib -i "$v" +r +h +s ::/attr/rhs.txt || return 1
	mattrib -i "$v" -a ::/attr/noarch.txt || return 1
	mattrib -i "$v" +h ::/attr/hdir || return 1
	if [ "$full" = full ]; then
		fill_root "$v" || return 1
	fi
	fsck.fat -n "$v" >"$n.fsck" 2>&1 || { cat "$n.fsck"; return 1; }
	mkdir "$n.out"
	mcopy -s -m -n -i "$v" '::*' "$n.out/" || return 1
	mdir -/ -a -i "$v" :: >"$n.mdir" || return 1
	mattrib -/ -i "$v" :: >"$n.mattrib" || return 1
	minfo -i "$v" :: >"$n.minfo" || return 1
	# The copy-out must hold what was put in (else the oracle is empty).
	cmp src/big.bin "$n.out/big.bin" || return 1
	[ -f "$n.out/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/leaf.txt" ] || return 1
	[ "$(ls "$n.out/many" | wc -l)" = 300 ] || return 1
	fv lfnname "$v" "ZZ fox.txt" "$EMOJI" || return 1
	fsck.fat -n "$v" >"$n.fsck" 2>&1 || { cat "$n.fsck"; return 1; }
	mv "$n.out/ZZ fox.txt" "$n.out/$EMOJI" || return 1
	sed -i "s/ZZ fox.txt/$EMOJI/" "$n.mdir" "$n.mattrib" || return 1
}

# The code-page volume: a 1.44 MB FAT12 floppy whose short names CPA.TXT
# and CPB.TXT get bytes >= 0x80: "A\x9bB\xd0.TXT" (CP437 "A¢B╨", CP850
# "AøBð") and "\x05PB.TXT" (0x05 stands for a first byte 0xE5: CP437 "σPB",
# CP850 "ÕPB").
gen_cp() {
	local o
	truncate -s 1440K cp.vol
	mkfs.vfat -F 12 -n CP cp.vol || return 1
	printf 'aaa' >CPA.TXT
	printf 'bbbb' >CPB.TXT
	mcopy -i cp.vol CPA.TXT CPB.TXT :: || return 1
	o=$(fv entry cp.vol CPA.TXT | sed 's/^off=\([0-9]*\) .*/\1/') || return 1
	poke cp.vol "$o" 41 9b 42 d0 20 20 20 20
	o=$(fv entry cp.vol CPB.TXT | sed 's/^off=\([0-9]*\) .*/\1/') || return 1
	poke cp.vol "$o" 05
	fsck.fat -n cp.vol || return 1
}

gen_vols() {
	fv tree src --esp || return 1
	mkvol fat12 8 12 full -F 12 -r 112 || return 1
	mkvol f16s1 24 16 full -F 16 -s 1 -r 256 || return 1
	mkvol f32s8 280 32 no -F 32 -s 8 || return 1
	mkvol esp 40 32 no -F 32 -s 1 || return 1
	mkvol f16s8 64 16 no -F 16 -s 8 || return 1
	mkvol f32s128 4200 32 no -F 32 -s 128 || return 1
	rm -rf src
	truncate -s $(((2 + 24 + 280 + 1) * MIB)) mbr.raw
	sfdisk -q mbr.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=4096, size=$((24 * 2048)), type=06
		start=$((4096 + 24 * 2048)), size=$((280 * 2048)), type=0c
	EOF
	fv place mbr.raw f16s1.vol $((4096 * 512)) || return 1
	fv place mbr.raw f32s8.vol $(((4096 + 24 * 2048) * 512)) || return 1
	qemu-img convert -O qcow2 mbr.raw mbr.qcow2 || return 1
	rm -f mbr.raw
	truncate -s $(((1 + 40 + 64 + 4200 + 2) * MIB)) gpt.raw
	sfdisk -q gpt.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=$((40 * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"
		start=$((2048 + 40 * 2048)), size=$((64 * 2048)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data16"
		start=$((2048 + 104 * 2048)), size=$((4200 * 2048)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data32"
	EOF
	fv place gpt.raw esp.vol $((2048 * 512)) || return 1
	fv place gpt.raw f16s8.vol $(((2048 + 40 * 2048) * 512)) || return 1
	fv place gpt.raw f32s128.vol $(((2048 + 104 * 2048) * 512)) || return 1
	qemu-img convert -O qcow2 gpt.raw gpt.qcow2 || return 1
	rm -f gpt.raw f16s1.vol f32s8.vol esp.vol f16s8.vol f32s128.vol
}

# ------------------------------------------------------------ helpers

# vfat_or_skip DIR — inside a test, after mounting: skip (not fail) when
# DIR is missing because this tree has no vfat driver yet.
vfat_or_skip() {
	T test -d "$1" && return 0
	ls "$VD_SRC_DIR"/fsread/*fat*.c >/dev/null 2>&1 ||
		skip_test "no vfat driver in fsread/ yet"
}

# mount_vol NAME [vdmount options...] — inside a test: mount NAME's image
# at $MNT; sets D (the cache), V (the volume's folder in the mount).
mount_vol() {
	local n=$1 spec img dir
	shift
	D=$(img_or_die vols) || exit 1
	spec=$(echo $VOLS | tr ' ' '\n' | grep "^$n:") || die "no volume $n"
	img=$(echo "$spec" | cut -d: -f2)
	dir=$(echo "$spec" | cut -d: -f3)
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$@" "$D/$img" "$MNT"
	V=$MNT/$dir
	vfat_or_skip "$V"
	T test -d "$V" || die "no $dir/ in the mount: $(ls "$MNT" | tr '\n' ' ')"
}

# fatcmp NAME DIR [options] — inside a test.
fatcmp() {
	local n=$1 dir=$2
	shift 2
	T python3 "$FATCMP" --mdir "$D/$n.mdir" --mattrib "$D/$n.mattrib" \
		--mtime times/t2100.txt=4107542400 \
		--mtime times/t2107.txt=4354819198 "$@" "$D/$n.out" "$dir" \
		>"$TD/fatcmp.out" 2>&1 ||
		die "$(grep -c . "$TD/fatcmp.out") lines: $(head -n 8 "$TD/fatcmp.out" | tr '\n' '|')"
	cat "$TD/fatcmp.out"
}

# ------------------------------------------------------------ tests

t_tree() {
	mount_vol "$1"
	fatcmp "$1" "$V" --uid "$(id -u)" --gid "$(id -g)"
	umount_ok "$MNT"
}

# The mtools copy-out has wrong dates after 2100-02-28 (it counts 2100
# as a leap year): the check of that oracle itself, so that the --mtime
# overrides above stay needed and right.
t_mtools_2100() {
	D=$(img_or_die vols) || exit 1
	local got
	got=$(stat -c %Y "$D/fat12.out/times/t2099.txt")
	[ "$got" = 4102444798 ] || die "mtools' t2099 mtime is $got"
	grep -q ' 2100-03-01   0:00 ' "$D/fat12.mdir" ||
		die "mdir does not list t2100 as 2100-03-01 00:00"
	grep -q ' 2107-12-31  23:59 ' "$D/fat12.mdir" ||
		die "mdir does not list t2107 as 2107-12-31 23:59"
}

# -o uid=,gid= own every path; inode numbers (from the entry positions)
# are the same in the next mount.
t_owner() {
	mount_vol f16s8 -o uid=1234,gid=5678
	fatcmp f16s8 "$V" --uid 1234 --gid 5678
	(cd "$V" && T find . -printf '%i %p\n' | sort -k2) >ino1 || die "find failed"
	umount_ok "$MNT"
	mount_vol f16s8
	(cd "$V" && T find . -printf '%i %p\n' | sort -k2) >ino2 || die "find failed"
	[ "$(wc -l <ino1)" -gt 300 ] || die "find listed $(wc -l <ino1) paths"
	cmp -s ino1 ino2 || die "inode numbers differ between mounts: $(diff ino1 ino2 | head -n 4 | tr '\n' '|')"
	umount_ok "$MNT"
}

# Mounted by an ordinary user (as tests/t-70-user.sh does): every path
# is that user's.
t_user_owner() {
	local u=vdtest m uid gid bin
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot switch to user $u"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	vd_useradd "$u" || skip_test "useradd $u failed"
	[ -u "$(command -v fusermount3)" ] || skip_test "fusermount3 is not setuid root"
	uid=$(id -u "$u")
	gid=$(id -g "$u")
	T setpriv --reuid="$uid" --regid="$gid" --clear-groups test -r /dev/fuse -a -w /dev/fuse ||
		skip_test "/dev/fuse is not open to $u"
	D=$(img_or_die vols) || exit 1
	bin=$VDMOUNT
	if ! T setpriv --reuid="$uid" --regid="$gid" --clear-groups test -x "$bin"; then
		mkdir -p "$TD/u"
		cp "$VDMOUNT" "$TD/u/vdmount"
		chmod 755 "$TD/u" "$TD/u/vdmount"
		bin=$TD/u/vdmount
	fi
	m=$(vd_mnt u)
	chown "$uid:$gid" "$m"
	VDMOUNT=$bin VD_AS_USER=$u mount_ok "$m" "$D/fat12.vol" "$m"
	vfat_or_skip "$m/fs"
	# fatcmp reads as root: the kernel lets root into another user's
	# FUSE mount only with fuse's allow_sys_admin_access=Y
	T ls "$m/fs" >/dev/null 2>&1 ||
		skip_test "root cannot read $u's FUSE mount (fuse allow_sys_admin_access is $(cat /sys/module/fuse/parameters/allow_sys_admin_access 2>/dev/null || echo unknown))"
	fatcmp fat12 "$m/fs" --uid "$uid" --gid "$gid"
	umount_ok "$m"
}

# With allow_other the kernel decides access from ACLs it asks the daemon
# for: vfat's "no ACLs here" must read as none, not as a denial.
t_allow_other() {
	local u=vdtest
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot switch to user $u"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	vd_useradd "$u" || skip_test "useradd $u failed"
	mount_vol fat12 -o allow_other
	chmod 755 "$TD" "$(dirname "$MNT")" 2>/dev/null || true
	T setpriv --reuid="$u" --regid="$u" --clear-groups cat "$V/attr/ro.txt" >ro.out 2>ro.err ||
		die "$u cannot read attr/ro.txt through allow_other: $(cat ro.err)"
	cmp -s ro.out "$V/attr/ro.txt" || die "$u reads other bytes of attr/ro.txt"
	T setpriv --reuid="$u" --regid="$u" --clear-groups ls "$V/attr" >/dev/null 2>ls.err ||
		die "$u cannot list attr/: $(cat ls.err)"
	umount_ok "$MNT"
}

t_esp() {
	local a b
	mount_vol esp
	T ls "$V/EFI/BOOT" >ls.out || die "ls EFI/BOOT failed"
	[ "$(cat ls.out)" = BOOTX64.EFI ] || die "EFI/BOOT holds: $(tr '\n' ' ' <ls.out)"
	# Lookup is case-insensitive, as on Linux's vfat.
	T cmp "$V/efi/boot/bootx64.efi" "$D/esp.out/EFI/BOOT/BOOTX64.EFI" ||
		die "efi/boot/bootx64.efi differs or fails"
	T cmp "$V/mixedcase.txt" "$D/esp.out/MixedCase.TXT" || die "mixedcase.txt"
	# The 8.3 alias of a long name, as mdir lists it, finds the same file.
	a=$(awk '$NF == "MixedCase.TXT" { print $1 "." $2 }' "$D/esp.mdir" | head -n 1)
	[[ $a == MIXEDC~* ]] || die "no 8.3 alias of MixedCase.TXT in mdir: '$a'"
	for b in "$a" "${a,,}"; do
		T cmp "$V/$b" "$D/esp.out/MixedCase.TXT" || die "alias $b"
		[ "$(stat -c %i "$V/$b")" = "$(stat -c %i "$V/MixedCase.TXT")" ] ||
			die "alias $b has another inode number"
	done
	T test -e "$V/EFI/BOOT/BOOTX6~1.EFI" && die "a made-up alias exists"
	T ls "$V" | grep -q '^ESP$' && die "the volume label shows as a file"
	[ "$(T ls "$V/$EMOJI")" = "$V/$EMOJI" ] || die "no $EMOJI"
	umount_ok "$MNT"
}

# xattrs and modes of the attribute files, spelled out (fatcmp checks all
# paths against mattrib as well).
t_attrib() {
	local f want got
	mount_vol fat12
	# No file lists an xattr, so the mount says "not supported" to the
	# first list and the kernel answers the rest (fuse/tree.c): cp -a
	# copies silently, and the names read below still answer.
	T cp -a "$V/attr" cp.out 2>cp.err || die "cp -a attr/: $(cat cp.err)"
	[ ! -s cp.err ] || die "cp -a attr/ said: $(cat cp.err)"
	for f in ro.txt:readonly,archive:444 hidden.txt:hidden,archive:644 \
		system.txt:system,archive:644 rhs.txt:readonly,hidden,system,archive:444 \
		hdir:hidden:755; do
		want=$(echo "$f" | cut -d: -f2)
		got=$(T getfattr --only-values -n user.fat.attrib "$V/attr/${f%%:*}" 2>gf.err) ||
			die "getfattr ${f%%:*}: $(cat gf.err)"
		[ "$got" = "$want" ] || die "${f%%:*}: user.fat.attrib '$got', expected '$want'"
		got=$(stat -c %a "$V/attr/${f%%:*}")
		[ "$got" = "${f##*:}" ] || die "${f%%:*}: mode $got"
	done
	T getfattr -n user.fat.attrib "$V/attr/noarch.txt" >/dev/null 2>&1 &&
		die "noarch.txt has user.fat.attrib"
	# read by name only, listed by no file (the kernel's vfat lists none)
	T getfattr -d -m - "$V/attr/noarch.txt" 2>/dev/null | grep -q . && die "noarch.txt lists an xattr"
	T getfattr -d -m - "$V/attr/ro.txt" 2>/dev/null | grep -q . && die "ro.txt lists an xattr"
	# ACL and label probes: EOPNOTSUPP, as from the kernel's vfat (ls
	# then stops asking); another user.* name: no such attribute.
	for f in security.selinux system.posix_acl_access; do
		got=$(T getfattr -n "$f" "$V/attr/ro.txt" 2>&1) && die "ro.txt has $f"
		case $got in
		*"Operation not supported"*) ;;
		*) die "getfattr -n $f on vfat: '$got', expected 'Operation not supported'" ;;
		esac
	done
	got=$(T getfattr -n user.other "$V/attr/ro.txt" 2>&1) && die "ro.txt has user.other"
	case $got in
	*"No such attribute"*) ;;
	*) die "getfattr -n user.other on vfat: '$got', expected 'No such attribute'" ;;
	esac
	T ls -l "$V/attr" | grep -q ' ro.txt$' || die "ls -l of attr/ lacks ro.txt"
	umount_ok "$MNT"
}

# statfs: block size = cluster size, blocks = data clusters, free blocks
# as mdir counts free bytes.
t_statfs() {
	local n=$1 spc bps tot rsvd nfats fatsz roots clus free got
	mount_vol "$n"
	bps=$(sed -n 's/^sector size: \([0-9]*\) bytes$/\1/p' "$D/$n.minfo")
	spc=$(sed -n 's/^cluster size: \([0-9]*\) sectors$/\1/p' "$D/$n.minfo")
	rsvd=$(sed -n 's/^reserved (boot) sectors: \([0-9]*\)$/\1/p' "$D/$n.minfo")
	nfats=$(sed -n 's/^fats: \([0-9]*\)$/\1/p' "$D/$n.minfo")
	fatsz=$(sed -n 's/^sectors per fat: \([0-9]*\)$/\1/p; s/^Big fatlen=\([0-9]*\)$/\1/p' "$D/$n.minfo" | grep -v '^0$' | head -n 1)
	roots=$(sed -n 's/^max available root directory slots: \([0-9]*\)$/\1/p' "$D/$n.minfo")
	tot=$(sed -n 's/^\(small\|big\) size: \([0-9]*\) sectors$/\2/p' "$D/$n.minfo" | grep -v '^0$' | head -n 1)
	[ -n "$bps$spc$rsvd$nfats$fatsz$tot" ] || die "minfo output not understood"
	clus=$(((tot - rsvd - nfats * fatsz - (roots * 32 + bps - 1) / bps) / spc))
	free=$(grep 'bytes free' "$D/$n.mdir" | tail -n 1 | tr -d ' ' | sed 's/bytesfree//')
	got=$(T stat -f -c '%S %b %f %a' "$V") || die "stat -f failed"
	[ "$got" = "$((spc * bps)) $clus $((free / spc / bps)) $((free / spc / bps))" ] ||
		die "statfs '$got', expected '$((spc * bps)) $clus $((free / spc / bps)) (twice)' (minfo, mdir)"
	umount_ok "$MNT"
}

# Reads at random offsets of the 5 MiB file and of the fragmented one,
# from the multi-threaded and the single-threaded (-s) daemon.
t_random() {
	local n=$1 f
	shift
	mount_vol "$n" "$@"
	for f in big.bin frag/fbig frag/fc; do
		must random_reads "$V/$f" "$D/$n.out/$f" 150
		cmp_files "$V/$f" "$D/$n.out/$f"
	done
	umount_ok "$MNT"
}

t_codepage() {
	local d m a b
	d=$(img_or_die cp) || exit 1
	a=$(python3 -c 'print(b"A\x9bB\xd0.TXT".decode("cp437"))')
	b=$(python3 -c 'print(b"\xe5PB.TXT".decode("cp437"))')
	m=$(vd_mnt m)
	mount_ok "$m" "$d/cp.vol" "$m"
	vfat_or_skip "$m/fs"
	T ls "$m/fs" | sort >ls.out
	printf '%s\n' "$a" "$b" | sort | cmp - ls.out || die "CP437 names: $(tr '\n' ' ' <ls.out), expected $a $b"
	[ "$(T cat "$m/fs/$a")" = aaa ] || die "cat $a"
	[ "$(T cat "$m/fs/$b")" = bbbb ] || die "cat $b"
	umount_ok "$m"
	a=$(python3 -c 'print(b"A\x9bB\xd0.TXT".decode("cp850"))')
	b=$(python3 -c 'print(b"\xe5PB.TXT".decode("cp850"))')
	mount_ok "$m" -o codepage=850 "$d/cp.vol" "$m"
	T ls "$m/fs" | sort >ls.out
	printf '%s\n' "$a" "$b" | sort | cmp - ls.out || die "CP850 names: $(tr '\n' ' ' <ls.out), expected $a $b"
	[ "$(T cat "$m/fs/$a")" = aaa ] || die "cat $a"
	[ "$(T cat "$m/fs/$b")" = bbbb ] || die "cat $b"
	umount_ok "$m"
	mount_fails "$m" 12345 -- -o codepage=12345 "$d/cp.vol" "$m"
}

for v in $VOLS; do
	vd_test "vfat-tree-${v%%:*}" t_tree "${v%%:*}"
done
vd_test vfat-mtools-2100 t_mtools_2100
vd_test vfat-owner t_owner
vd_test vfat-owner-user t_user_owner
vd_test vfat-allow-other t_allow_other
vd_test vfat-esp t_esp
vd_test vfat-attrib t_attrib
for v in $VOLS; do
	vd_test "vfat-statfs-${v%%:*}" t_statfs "${v%%:*}"
done
vd_test vfat-random-fat12 t_random fat12
vd_test vfat-random-f32s128 t_random f32s128
vd_test vfat-random-f16s1-single t_random f16s1 -s
vd_test vfat-codepage t_codepage
vd_finish
