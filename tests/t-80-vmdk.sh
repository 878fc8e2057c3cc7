#!/bin/bash
# VMDK: every subformat qemu-img writes (monolithicSparse, monolithicFlat,
# twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized), zeroed
# grains, a >4 GiB disk, a set of several 2 GiB extents, delta links
# (vmdk -> vmdk chains, the parentCID check), what qemu-img cannot write
# but reads (vmfs and vmfsSparse/COWD descriptors, a stream whose grain
# directory is only in the footer, a descriptor inside a sparse header:
# made by tests/mkvmdk.py), RDONLY/NOACCESS/ZERO extents, renamed sets,
# and hostile files.
# Oracle: qemu-img convert -O raw (for what qemu reads differently on
# purpose, a descriptor edited so that qemu reads the same bytes).
. "$(dirname "$0")/lib.sh"

MKVMDK="python3 $VD_LIB_DIR/mkvmdk.py"

# 8 MiB plus 3.5 KiB: the last 64 KiB grain is partial.
SIZE=$((8 * 1024 * 1024 + 3584))

# ------------------------------------------------------------ subformats
SUBFORMATS="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat"

gen_sub() {
	local f seed=1
	for f in $SUBFORMATS; do
		qemu-img create -q -f vmdk -o subformat=$f "$f.vmdk" "$SIZE" || return 1
		scatter vmdk "$f.vmdk" "$SIZE" $seed || return 1
		seed=$((seed + 1))
	done
	# streamOptimized can only be converted to: seeded data (random,
	# text, holes) plus scattered writes, then convert.
	seed_raw seed.raw "$SIZE"
	scatter raw seed.raw "$SIZE" 7 || return 1
	qemu-img convert -O vmdk -o subformat=streamOptimized seed.raw streamOptimized.vmdk || return 1
	qemu-img convert -O vmdk seed.raw converted.vmdk || return 1
	# Zeroed grains (GTE 1): whole grains zeroed over data and over
	# nothing; a partial zero write (qemu writes zeros there).
	qemu-img create -q -f vmdk -o zeroed_grain=on zeroed.vmdk "$SIZE" || return 1
	scatter vmdk zeroed.vmdk "$SIZE" 8 || return 1
	qio vmdk zeroed.vmdk "write -P 0x5a 0 1048576" "write -z 0 131072" \
		"write -z 2097152 65536" "write -z 300000 5000" \
		"write -z $((SIZE - 3584)) 3584" || return 1
	rm -f seed.raw
}

t_sub() {
	local d
	d=$(img_or_die sub)
	case $1 in
	streamOptimized.vmdk)
		qemu-img info "$d/$1" | grep -q 'create type: streamOptimized' ||
			die "qemu does not call $1 streamOptimized" ;;
	zeroed.vmdk)
		qemu-img map --output=json "$d/$1" | grep -q '"present": true, "zero": true, "data": false' ||
			die "no zeroed grain in $1 (qemu-img map)" ;;
	esac
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ large
GIB=$((1024 * 1024 * 1024))
BIG=$((5 * GIB + 7 * 512))
# offset length pattern: the start, across the first 2 GiB extent
# boundary, above 4 GiB, the last bytes.
BIG_WRITES="0 4096 0x11
$((2 * GIB - 5000)) 70000 0x22
$((4 * GIB + 12345)) 100000 0x33
$((BIG - 700)) 700 0x44"

gen_big() {
	local f cmds=() o l p
	while read -r o l p; do
		cmds+=("write -P $p $o $l")
	done <<<"$BIG_WRITES"
	for f in monolithicSparse twoGbMaxExtentSparse twoGbMaxExtentFlat; do
		qemu-img create -q -f vmdk -o subformat=$f "big-$f.vmdk" "$BIG" || return 1
		qio vmdk "big-$f.vmdk" "${cmds[@]}" || return 1
	done
	# Several extents, the last one shorter.
	[ "$(grep -c '^RW ' big-twoGbMaxExtentSparse.vmdk)" = 3 ] || return 1
	# The set renamed as a whole, in another folder: new.vmdk still names
	# big-twoGbMaxExtentSparse-s00N.vmdk.
	mkdir -p renamed
	cp big-twoGbMaxExtentSparse.vmdk renamed/new.vmdk
	for f in big-twoGbMaxExtentSparse-s00*.vmdk; do
		cp --sparse=always "$f" "renamed/new-${f##*-}" || return 1
	done
}

# t_big IMG — the written places with context, and unwritten stretches.
t_big() {
	local d m o l p s e
	d=$(img_or_die big)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1" "$m"
	check_root_tree "$m" "$BIG"
	while read -r o l p; do
		s=$((o > 65536 ? (o - 65536) / 512 * 512 : 0))
		e=$(((o + l + 65536 + 511) / 512 * 512))
		[ "$e" -le "$BIG" ] || e=$BIG
		cmp_range "$m/disk.raw" "$d/$1" vmdk "$s" $((e - s))
	done <<<"$BIG_WRITES"
	cmp_range "$m/disk.raw" "$d/$1" vmdk $((3 * GIB)) 1048576
	umount_ok "$m"
}

# A renamed set: the extents are found under the new name, and the log
# says which file was used. The oracle is the set before renaming.
t_renamed() {
	local d m o l p s e
	d=$(img_or_die big)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/renamed/new.vmdk" "$m"
	grep -q "extent 'big-twoGbMaxExtentSparse-s002.vmdk' not found; using 'new-s002.vmdk'" "$TD/mount.err" ||
		die "no log line naming the renamed extent: $(cat "$TD/mount.err")"
	while read -r o l p; do
		s=$((o > 65536 ? (o - 65536) / 512 * 512 : 0))
		e=$(((o + l + 65536 + 511) / 512 * 512))
		[ "$e" -le "$BIG" ] || e=$BIG
		cmp_range "$m/disk.raw" "$d/big-twoGbMaxExtentSparse.vmdk" vmdk "$s" $((e - s))
	done <<<"$BIG_WRITES"
	umount_ok "$m"
}

# ------------------------------------------------------------ delta links
gen_delta() {
	seed_raw seed.raw "$SIZE"
	qemu-img convert -O vmdk seed.raw base.vmdk || return 1
	rm -f seed.raw
	qemu-img create -q -f vmdk -b base.vmdk -F vmdk mid.vmdk || return 1
	scatter vmdk mid.vmdk "$SIZE" 2 || return 1
	qemu-img create -q -f vmdk -o zeroed_grain=on -b mid.vmdk -F vmdk top.vmdk || return 1
	scatter vmdk top.vmdk "$SIZE" 3 || return 1
	# Zeroed grains hide the layers below.
	qio vmdk top.vmdk "write -z 131072 131072" "write -z $((SIZE / 2)) 65536" || return 1
	# A twoGbMaxExtentSparse child.
	qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b base.vmdk -F vmdk two.vmdk || return 1
	scatter vmdk two.vmdk "$SIZE" 4 || return 1
	# The parent changed after the child was made: the child's parentCID
	# no longer matches. (qemu writes CIDs without leading zeros; the new
	# value keeps the length, so the embedded descriptor keeps its size.)
	cp top.vmdk stale.vmdk
	local cid new
	cid=$(grep -ao 'parentCID=[0-9a-f]*' stale.vmdk | head -n 1 | cut -d= -f2)
	[ -n "$cid" ] || return 1
	new=$(printf "%0${#cid}x" $((0x$cid ^ 1)))
	sed -i "s/parentCID=$cid/parentCID=$new/" stale.vmdk
	grep -aq "parentCID=$new" stale.vmdk || return 1
	printf '%08x %08x\n' "0x$new" "0x$(grep -ao '^CID=[0-9a-f]*' mid.vmdk | cut -d= -f2)" >stale.cids
}

t_delta() {
	local d
	d=$(img_or_die delta)
	qemu-img info "$d/$1" | grep -q 'backing file: ' || die "$1 has no parent for qemu"
	mount_compare "$d/$1"
}

t_stale() {
	local d m want have
	d=$(img_or_die delta)
	read -r want have <"$d/stale.cids" || die "no stale.cids"
	m=$(vd_mnt m)
	mount_fails "$m" "$d/stale.vmdk" "parentCID $want does not match the CID $have" \
		"of the parent '$d/mid.vmdk'" "--ignore-parent-id" -- "$d/stale.vmdk" "$m"
	mount_ok "$m" --ignore-parent-id "$d/stale.vmdk" "$m"
	# Only the parentCID differs from top.vmdk.
	cmp_oracle "$m/disk.raw" "$d/top.vmdk"
	umount_ok "$m"
}

# ------------------------------------------------------------ files qemu-img cannot write
gen_vmfs() {
	seed_raw base-flat.vmdk "$SIZE"
	# An ESX vmfs base (a VMFS extent: no offset) ...
	cat >base.vmdk <<EOF
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=5eed5eed
parentCID=ffffffff
isNativeSnapshot="no"
createType="vmfs"

# Extent description
RW $((SIZE / 512)) VMFS "base-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
EOF
	# ... under vmfsSparse (COWD) deltas of 512-byte and 4 KiB grains.
	truncate -s "$SIZE" delta.raw
	printf 'delta was here' | dd of=delta.raw bs=1 seek=5000 conv=notrunc status=none
	head -c 70001 /dev/urandom | dd of=delta.raw bs=1 seek=$((SIZE / 3)) conv=notrunc status=none
	head -c 512 /dev/urandom | dd of=delta.raw bs=1 seek=$((SIZE - 512)) conv=notrunc status=none
	$MKVMDK cowd snap.vmdk delta.raw --parent base.vmdk --parent-cid 5eed5eed || return 1
	$MKVMDK cowd snap8.vmdk delta.raw --grain 8 --cid 0000cafe --parent snap.vmdk \
		--parent-cid 1234abcd || return 1
	rm -f delta.raw
	# The same vmfs base, descriptor in CRLF with extra blanks and tabs.
	sed -e 's/$/\r/' -e 's/^RW /RW\t /' base.vmdk >crlf.vmdk
}

t_vmfs() {
	local d
	d=$(img_or_die vmfs)
	qemu-img info "$d/$1" >/dev/null || die "qemu-img cannot read $1"
	mount_compare "$d/$1"
}

gen_stream() {
	seed_raw seed.raw "$SIZE"
	$MKVMDK stream footer.vmdk seed.raw || return 1
	rm -f seed.raw
	# A descriptor inside a sparse header (capacity 0), naming a flat
	# extent.
	seed_raw flat.bin "$SIZE"
	printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW %d FLAT "flat.bin" 0\n' \
		$((SIZE / 512)) >desc.txt
	$MKVMDK container container.vmdk desc.txt
}

t_stream() {
	local d
	d=$(img_or_die stream)
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ access and ZERO
# A custom descriptor over one data file: qemu skips RDONLY, NOACCESS and
# ZERO extent lines; vdmount reads RDONLY like RW, ZERO as zeros, and
# skips NOACCESS as qemu does. Each oracle is qemu reading a descriptor
# that means the same to both. (No blank line may come right before an
# extent line: qemu's sscanf skips the newline and reads that extent
# twice.)
gen_access() {
	seed_raw data.bin "$SIZE"
	truncate -s 1048576 zeros.bin
	local n=$((SIZE / 512))
	desc() {
		printf '# Disk DescriptorFile\nversion=1\nCID=0000aaaa\nparentCID=ffffffff\ncreateType="monolithicFlat"\n# Extent description\n'
		cat
	}
	desc >rdonly.vmdk <<EOF
RW 1000 FLAT "data.bin" 0
RDONLY 2000 FLAT "data.bin" 1000
RW $((n - 3000)) FLAT "data.bin" 3000
EOF
	sed 's/^RDONLY/RW/' rdonly.vmdk >rdonly.oracle.vmdk
	desc >zero.vmdk <<EOF
RW 1000 FLAT "data.bin" 0
RW 2048 ZERO
RW $((n - 3048)) FLAT "data.bin" 3048
EOF
	sed 's/^RW 2048 ZERO$/RW 2048 FLAT "zeros.bin" 0/' zero.vmdk >zero.oracle.vmdk
	desc >noaccess.vmdk <<EOF
RW 1000 FLAT "data.bin" 0
NOACCESS 2000 FLAT "data.bin" 1000
RW $((n - 3000)) FLAT "data.bin" 3000
EOF
}

t_access() {
	local d m
	d=$(img_or_die access)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1.vmdk" "$m"
	if [ -e "$d/$1.oracle.vmdk" ]; then
		check_root_tree "$m" "$(virtual_size "$d/$1.oracle.vmdk")"
		cmp_oracle "$m/disk.raw" "$d/$1.oracle.vmdk"
	else
		check_root_tree "$m" "$(virtual_size "$d/$1.vmdk")"
		cmp_oracle "$m/disk.raw" "$d/$1.vmdk"
	fi
	umount_ok "$m"
}

# ------------------------------------------------------------ hostile
# A monolithicSparse of 80 MiB: three grain directory entries (32 MiB
# each), with a primary and a redundant grain directory.
H_SIZE=$((80 * 1024 * 1024))
gen_hostile() {
	qemu-img create -q -f vmdk h.vmdk "$H_SIZE" || return 1
	qio vmdk h.vmdk "write -P 0x61 0 65536" "write -P 0x62 $((40 * 1048576)) 65536" \
		"write -P 0x63 $((70 * 1048576)) 65536" || return 1
	# Header, little-endian: 8 flags (bit 1: redundant GD in use),
	# 48 rgdOffset, 56 gdOffset (sectors).
	[ "$(peek h.vmdk 8 1)" = 03 ] || return 1
	seed_raw s.raw "$SIZE"
	qemu-img convert -O vmdk -o subformat=streamOptimized s.raw stream.vmdk || return 1
	$MKVMDK stream footer.vmdk s.raw || return 1
	rm -f s.raw
	mkdir -p sub
	printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8 FLAT "../../../../../../../../etc/passwd" 0\n' >sub/passwd.vmdk
	printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8 FLAT "/etc/passwd" 0\n' >sub/abspasswd.vmdk
}

le32() { # FILE OFFSET
	local h
	h=$(peek "$1" "$2" 4)
	echo $((0x${h:6:2}${h:4:2}${h:2:2}${h:0:2}))
}

poke_le32() { # FILE OFFSET VALUE
	local h
	h=$(printf '%08x' "$3")
	poke "$1" "$2" "${h:6:2}" "${h:4:2}" "${h:2:2}" "${h:0:2}"
}

hostile_copy() {
	local d
	d=$(img_or_die hostile)
	cp "$d/$1" "$TD/$1"
	echo "$TD/$1"
}

# Grain directory entry 1 (the grain table of 32-64 MiB) points past the
# end of the file: the redundant directory serves it, with a warning.
t_gt_past_end_rgd() {
	local f m gd
	f=$(hostile_copy h.vmdk)
	gd=$(le32 "$f" 56)
	poke_le32 "$f" $((gd * 512 + 4)) $((0x7ffffff0))
	m=$(vd_mnt m)
	# In the foreground, so that the warning logged while reading
	# reaches stderr rather than syslog.
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 600 "$VDMOUNT" -f "$f" "$m" 2>"$TD/fg.err" </dev/null &
	local i
	for i in $(seq 600); do
		vd_is_mounted "$m" && break
		sleep 0.1
	done
	vd_is_mounted "$m" || die "no mount: $(cat "$TD/fg.err")"
	cmp_oracle "$m/disk.raw" "$(img_or_die hostile)/h.vmdk"
	umount_ok "$m"
	wait
	grep -q 'using the redundant grain directory' "$TD/fg.err" ||
		die "no warning about the redundant grain directory: $(cat "$TD/fg.err")"
}

# ... and in both directories: EIO in that region only; the daemon stays.
t_gt_past_end() {
	local f m gd rgd
	f=$(hostile_copy h.vmdk)
	gd=$(le32 "$f" 56)
	rgd=$(le32 "$f" 48)
	poke_le32 "$f" $((gd * 512 + 4)) $((0x7ffffff0))
	poke_le32 "$f" $((rgd * 512 + 4)) $((0x7ffffff0))
	# (qemu reads zeros there: a read past the end of a file.)
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	T dd if="$m/disk.raw" of=/dev/null bs=65536 skip=$((40 * 16)) count=1 status=none 2>"$TD/dd.err" &&
		die "read in the bad grain table's region succeeded"
	grep -q 'Input/output error' "$TD/dd.err" || die "not EIO: $(cat "$TD/dd.err")"
	cmp_range "$m/disk.raw" "$(img_or_die hostile)/h.vmdk" vmdk 0 $((32 * 1048576))
	cmp_range "$m/disk.raw" "$(img_or_die hostile)/h.vmdk" vmdk $((64 * 1048576)) $((16 * 1048576))
	umount_ok "$m"
}

t_passwd() {
	local d m
	d=$(img_or_die hostile)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/sub/$1" "extent '/etc/passwd' is outside the allowed folders" -- "$d/sub/$1" "$m"
}

# A truncated qemu stream (grain directory near the start): the grains
# that remain read, those cut off fail with EIO.
t_stream_truncated() {
	local f m size
	f=$(hostile_copy stream.vmdk)
	size=$(stat -c %s "$f")
	truncate -s $((size / 2 / 512 * 512)) "$f"
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	cmp_range "$m/disk.raw" "$(img_or_die hostile)/stream.vmdk" vmdk 0 65536
	T dd if="$m/disk.raw" of=/dev/null bs=65536 status=none 2>"$TD/dd.err" &&
		die "reading the whole truncated stream succeeded"
	grep -q 'Input/output error' "$TD/dd.err" || die "not EIO: $(cat "$TD/dd.err")"
	umount_ok "$m"
}

# A truncated footer-only stream: no footer, no grain directory.
t_footer_truncated() {
	local f m size
	f=$(hostile_copy footer.vmdk)
	size=$(stat -c %s "$f")
	truncate -s $((size - 1024)) "$f"
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "vmdk: the header puts the grain directory at the end, but there is no footer" \
		"truncated" -- "$f" "$m"
}

t_bad_grain_size() {
	local f m
	f=$(hostile_copy h.vmdk)
	# Offset 20: grainSize (sectors), 128 -> 100.
	poke "$f" 20 64
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "vmdk: grain size of 100 sectors" -- "$f" "$m"
}

for f in $SUBFORMATS streamOptimized converted zeroed; do
	vd_test "subformat-$f" t_sub "$f.vmdk"
done
vd_test big-monolithicSparse-5g t_big big-monolithicSparse.vmdk
vd_test big-twoGbMaxExtentSparse-3-extents t_big big-twoGbMaxExtentSparse.vmdk
vd_test big-twoGbMaxExtentFlat-3-extents t_big big-twoGbMaxExtentFlat.vmdk
vd_test renamed-twoGb-set t_renamed
vd_test delta-link t_delta mid.vmdk
vd_test delta-chain-3-zeroed-grains t_delta top.vmdk
vd_test delta-twoGbMaxExtentSparse-child t_delta two.vmdk
vd_test delta-parentCID-mismatch t_stale
vd_test vmfs-flat t_vmfs base.vmdk
vd_test vmfsSparse-cowd-delta t_vmfs snap.vmdk
vd_test vmfsSparse-cowd-grain-8-chain t_vmfs snap8.vmdk
vd_test descriptor-crlf-whitespace t_vmfs crlf.vmdk
vd_test streamOptimized-footer-gd t_stream footer.vmdk
vd_test descriptor-in-sparse-header t_stream container.vmdk
vd_test extent-rdonly t_access rdonly
vd_test extent-zero t_access zero
vd_test extent-noaccess-skipped-as-qemu t_access noaccess
vd_test hostile-gt-past-end-redundant-gd t_gt_past_end_rgd
vd_test hostile-gt-past-end-eio t_gt_past_end
vd_test hostile-extent-dotdot-passwd t_passwd passwd.vmdk
vd_test hostile-extent-absolute-passwd t_passwd abspasswd.vmdk
vd_test hostile-stream-truncated-eio t_stream_truncated
vd_test hostile-footer-stream-truncated t_footer_truncated
vd_test hostile-grain-size t_bad_grain_size
vd_finish
