#!/bin/bash
# Partition tables: MBR with primaries and an extended partition holding
# logicals, GPT with gaps in its entry numbers and all 128 entries used,
# GPT on 4096-byte sectors, a hybrid MBR; and damage: a bad primary GPT
# with a good backup, both bad, an EBR chain that loops or goes
# backwards, a GPT entry past the disk's end.
#
# Tables are written by sfdisk/fdisk (util-linux) on raw files filled
# with data first; qcow2 copies by qemu-img convert. Oracles: libfdisk
# (build/tools/fdisk-list) for the list, compared line for line with the
# product's (build/asan/tests/part_test --list, same format); the raw
# file's own bytes (dd of the partition's range) for each pN.raw through
# a mount.
. "$(dirname "$0")/lib.sh"

FDL=$BUILD/tools/fdisk-list
PTL=$BUILD/asan/tests/part_test
MiB=$((1024 * 1024))
SIZE=$((24 * MiB))

# ------------------------------------------------------------ images

# mkraw FILE — SIZE bytes of scattered data, so every pN.raw has bytes of
# its own to compare.
mkraw() {
	seed_raw "$1" "$SIZE"
}

gen_tables() {
	local f
	# MBR: two primaries, an extended (slot 3) with four logicals, and a
	# primary after it in slot 4.
	mkraw mbr.raw
	sfdisk -q mbr.raw <<-'EOF' || return 1
		label: dos
		label-id: 0x1234abcd
		start=2048, size=4096, type=83, bootable
		size=2048, type=82
		size=30720, type=5
		size=6144, type=7
		size=4096, type=83
		size=2048, type=7
		size=8192, type=83
		size=4096, type=c
	EOF
	# MBR: a Linux extended partition (0x85) first, three logicals.
	mkraw mbr85.raw
	sfdisk -q mbr85.raw <<-'EOF' || return 1
		label: dos
		start=2048, size=20480, type=85
		size=8192, type=83
		size=100, type=83
		size=4096, type=82
		size=4096, type=83
	EOF
	# GPT with gaps: entries 1, 3 and 128, names with spaces.
	mkraw gpt.raw
	sfdisk -q gpt.raw <<-'EOF' || return 1
		label: gpt
		gpt.raw1 : start=2048, size=4096, type=L, name="first one"
		gpt.raw3 : start=8192, size=4096, type=S
		gpt.raw128 : start=16384, size=2048, name="entry 128"
	EOF
	# GPT with all 128 entries used.
	mkraw full.raw
	{
		echo "label: gpt"
		for i in $(seq 128); do
			echo "start=$((2048 + 256 * (i - 1))), size=256, name=\"part $i\""
		done
	} | sfdisk -q full.raw || return 1
	# GPT on 4096-byte sectors: sfdisk 2.38 has no --sector-size;
	# fdisk -b 4096 writes one to a file (g: new GPT, n: new partition,
	# x/n: name it).
	mkraw g4k.raw
	printf 'g\nn\n\n\n+4M\nn\n\n\n+2M\nn\n\n\n+1M\nx\nn\n2\nsecond 4k\nr\nw\n' |
		fdisk -b 4096 g4k.raw >/dev/null || return 1
	# Hybrid MBR: a GPT, then its nested MBR (-Y dos) rewritten to hold
	# an 0xee entry over the GPT's own sectors and a 0x83 entry over
	# partition 1.
	mkraw hybrid.raw
	sfdisk -q hybrid.raw <<-'EOF' || return 1
		label: gpt
		start=2048, size=8192, type=L, name="shared"
		size=4096, type=S
	EOF
	printf 'start=1, size=2047, type=ee\nstart=2048, size=8192, type=83\n' |
		sfdisk -q -Y dos hybrid.raw || return 1
	[ "$(peek hybrid.raw 450 1)$(peek hybrid.raw 466 1)" = ee83 ] || {
		echo "sfdisk -Y dos did not write a hybrid MBR" >&2
		return 1
	}
	for f in mbr mbr85 gpt full g4k hybrid; do
		qemu-img convert -O qcow2 "$f.raw" "$f.qcow2" || return 1
	done
}

# ------------------------------------------------------------ helpers

# lists IMG RAW [-b SS] — inside a test: part_test --list IMG must print
# what libfdisk prints for RAW, and warn about nothing. The lists are
# left in $TD/want and $TD/got.
lists() {
	local img=$1 raw=$2
	shift 2
	T "$FDL" "$@" "$raw" >"$TD/want" 2>"$TD/want.err" ||
		die "fdisk-list $raw failed: $(cat "$TD/want.err")"
	T "$PTL" --list "$img" >"$TD/got" 2>"$TD/got.err" ||
		die "part_test --list $img failed: $(cat "$TD/got.err")"
	diff -u "$TD/want" "$TD/got" >"$TD/diff" ||
		die "$img: list differs from libfdisk's: $(tr '\n' '|' <"$TD/diff")"
	[ ! -s "$TD/got.err" ] || die "$img: unexpected warnings: $(cat "$TD/got.err")"
	[ "$(wc -l <"$TD/want")" -gt 1 ] || die "$raw: libfdisk lists no partitions"
}

# same_list IMG WANTFILE — the product's list of IMG equals WANTFILE;
# its warnings are left in $TD/got.err.
same_list() {
	T "$PTL" --list "$1" >"$TD/got" 2>"$TD/got.err" ||
		die "part_test --list $1 failed: $(cat "$TD/got.err")"
	diff -u "$2" "$TD/got" >"$TD/diff" ||
		die "$1: list differs: $(tr '\n' '|' <"$TD/diff")"
}

# mount_parts IMG RAW LIST — inside a test: mount IMG; the root holds
# disk.raw and one pN.raw per line of LIST (as lists/fdisk-list print
# them) and nothing else; each pN.raw has LIST's size and RAW's bytes in
# that range.
mount_parts() {
	local img=$1 raw=$2 list=$3 m n start size rest
	m=$(vd_mnt "m$RANDOM")
	mount_ok "$m" "$img" "$m"
	{
		echo disk.raw
		awk '$1 != "table" { print "p" $1 ".raw" }' "$list"
	} | sort >"$TD/ls.want"
	T ls -A "$m" | sort >"$TD/ls.got" || die "ls $m failed"
	diff -u "$TD/ls.want" "$TD/ls.got" >"$TD/ls.diff" ||
		die "root of $img differs: $(tr '\n' '|' <"$TD/ls.diff")"
	while read -r n start size rest; do
		[ "$n" = table ] && continue
		[ "$(T stat -c %s "$m/p$n.raw")" = "$size" ] ||
			die "p$n.raw is $(stat -c %s "$m/p$n.raw") bytes, libfdisk says $size"
		T dd if="$raw" bs=1M iflag=skip_bytes,count_bytes skip="$start" \
			count="$size" status=none >"$TD/range" || die "dd of $raw failed"
		T cmp "$TD/range" "$m/p$n.raw" >"$TD/cmp" 2>&1 ||
			die "p$n.raw differs from bytes $start+$size of $raw: $(cat "$TD/cmp")"
	done <"$list"
	rm -f "$TD/range"
	umount_ok "$m"
}

# ------------------------------------------------------------ tables

# t_table NAME [-b SS] — the list, from the raw file and from qcow2, and
# the mounted tree of both.
t_table() {
	local d name=$1
	shift
	d=$(img_or_die tables) || exit 1
	lists "$d/$name.raw" "$d/$name.raw" "$@"
	cp "$TD/want" "$TD/list"
	lists "$d/$name.qcow2" "$d/$name.raw" "$@"
	mount_parts "$d/$name.raw" "$d/$name.raw" "$TD/list"
	mount_parts "$d/$name.qcow2" "$d/$name.raw" "$TD/list"
}

# Checks that the lists hold what the test is about, so a tool that
# wrote something else cannot make the comparison vacuous.
t_mbr_shape() {
	local d
	d=$(img_or_die tables) || exit 1
	T "$PTL" --list "$d/mbr.raw" >got || die "list failed"
	[ "$(awk '{ print $1 }' got | tr '\n' ' ')" = "table 1 2 3 4 5 6 7 8 " ] ||
		die "unexpected numbering: $(tr '\n' '|' <got)"
	grep -q '^table dos 512$' got || die "not dos/512"
	grep -q '^3 .* 0x05 -$' got || die "no extended partition 3"
	grep -q '^1 .* 0x83 \*$' got || die "partition 1 not bootable"
}

t_gpt_shape() {
	local d
	d=$(img_or_die tables) || exit 1
	T "$PTL" --list "$d/gpt.raw" >got || die "list failed"
	[ "$(awk '{ print $1 }' got | tr '\n' ' ')" = "table 1 3 128 " ] ||
		die "entry numbers not kept: $(tr '\n' '|' <got)"
	grep -q ' entry 128$' got || die "name of entry 128 lost"
	T "$PTL" --list "$d/full.raw" >got || die "list failed"
	[ "$(grep -c '^[0-9]' got)" = 128 ] || die "full table does not list 128"
	T "$PTL" --list "$d/g4k.raw" >got || die "list failed"
	grep -q '^table gpt 4096$' got || die "4k disk not read at 4096: $(head -1 got)"
	grep -q ' second 4k$' got || die "4k name lost"
	T "$PTL" --list "$d/hybrid.raw" >got || die "list failed"
	grep -q '^table gpt 512$' got || die "hybrid not read as GPT"
	grep -q '^2 .* 0657fd6d-a4ab-43c4-84e5-0933c84b4f4f ' got ||
		die "hybrid: GPT partition 2 (swap) missing"
}

# ------------------------------------------------------------ damage

# flip FILE OFFSET — invert the byte at OFFSET.
flip() {
	poke "$1" "$2" "$(printf '%02x' $((0x$(peek "$1" "$2" 1) ^ 0xff)))"
}

# The primary header's disk GUID (LBA 1, offset 56) changed: its CRC no
# longer matches; libfdisk and the product both read the backup.
t_gpt_bad_crc() {
	local d m
	d=$(img_or_die tables) || exit 1
	T "$FDL" "$d/gpt.raw" >want || die "fdisk-list failed"
	cp "$d/gpt.raw" bad.raw
	flip bad.raw $((512 + 56))
	same_list bad.raw want
	grep -q "GPT: primary header is damaged (header CRC32 is" "$TD/got.err" ||
		die "no warning: $(cat "$TD/got.err")"
	# libfdisk too reads the backup of the damaged disk.
	T "$FDL" bad.raw >fdl.bad 2>/dev/null || die "fdisk-list bad.raw failed"
	diff -u want fdl.bad >/dev/null || die "libfdisk's view of bad.raw: $(tr '\n' '|' <fdl.bad)"
	m=$(vd_mnt bad)
	mount_ok "$m" bad.raw "$m"
	grep -q "using the backup" "$TD/mount.err" || die "mount did not warn: $(cat "$TD/mount.err")"
	umount_ok "$m"
	mount_parts bad.raw bad.raw want
}

# Both headers bad: the table is refused with one line; the mount shows
# only disk.raw.
t_gpt_both_bad() {
	local d m last
	d=$(img_or_die tables) || exit 1
	cp "$d/gpt.raw" bad.raw
	last=$(($(stat -c %s bad.raw) / 512 - 1))
	flip bad.raw $((512 + 56))
	flip bad.raw $((last * 512 + 56))
	T "$PTL" --list bad.raw >got 2>err && die "both bad: listed $(cat got)"
	grep -q "GPT: primary header: header CRC32 is .*; backup header at LBA $last: header CRC32" err ||
		die "message: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || die "not one line: $(cat err)"
	m=$(vd_mnt bad)
	mount_ok "$m" bad.raw "$m"
	[ "$(T ls -A "$m")" = disk.raw ] || die "root holds $(ls -A "$m" | tr '\n' ' ')"
	umount_ok "$m"
}

# The disk cut inside entry 128 (8 MiB + 1 MiB): the backup header is
# gone, entry 128 is clipped at the disk's end with a warning.
t_gpt_past_end() {
	local d cut=$((8 * MiB + MiB / 2))
	d=$(img_or_die tables) || exit 1
	T "$FDL" "$d/gpt.raw" >full || die "fdisk-list failed"
	awk -v cut=$cut '$1 == "table" { print; next }
		$2 >= cut { next }
		$2 + $3 > cut { $3 = cut - $2 } { print }' full >want
	grep -q "^128 $((8 * MiB)) $((MiB / 2)) " want || die "bad expectation: $(cat want)"
	head -c $cut "$d/gpt.raw" >cut.raw
	same_list cut.raw want
	grep -q "partition 128 ($MiB bytes at byte $((8 * MiB))) runs past the disk's end ($cut bytes); clipped to $((MiB / 2)) bytes" \
		"$TD/got.err" || die "no clip warning: $(cat "$TD/got.err")"
	grep -q "backup header at LBA .* is damaged" "$TD/got.err" ||
		die "no backup warning: $(cat "$TD/got.err")"
	mount_parts cut.raw cut.raw want
}

# ebr_chain RAW — the sectors of the EBRs of the extended partition in
# MBR slot 3, following the links (at most 20).
ebr_chain() {
	local raw=$1 ext cur link i
	ext=$((0x$(peek "$raw" $((446 + 32 + 8)) 4 | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')))
	cur=$ext
	for i in $(seq 20); do
		echo "$cur"
		# Entry 2: type at offset 4 (0: no link), start at 8.
		[ "$(peek "$raw" $((cur * 512 + 446 + 16 + 4)) 1)" != 00 ] || return 0
		link=$((0x$(peek "$raw" $((cur * 512 + 446 + 16 + 8)) 4 | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')))
		cur=$((ext + link))
	done
}

# t_ebr_bad HOW — the last EBR's link (entry 2, start at offset 8)
# pointed back at the first EBR (loop) or at the second (backwards);
# the product lists what libfdisk listed before the damage and warns.
t_ebr_bad() {
	local d ebrs ext lastebr target
	d=$(img_or_die tables) || exit 1
	T "$FDL" "$d/mbr.raw" >want || die "fdisk-list failed"
	cp "$d/mbr.raw" bad.raw
	mapfile -t ebrs < <(ebr_chain bad.raw)
	[ "${#ebrs[@]}" = 4 ] || die "expected 4 EBRs, found: ${ebrs[*]}"
	ext=${ebrs[0]}
	lastebr=${ebrs[3]}
	case $1 in
	loop) target=$ext ;;
	backwards) target=${ebrs[1]} ;;
	esac
	# type 0x05, start (relative to the extended partition), size 1
	poke bad.raw $((lastebr * 512 + 446 + 16 + 4)) 05
	poke bad.raw $((lastebr * 512 + 446 + 16 + 8)) \
		$(printf '%08x' $((target - ext)) | sed 's/\(..\)\(..\)\(..\)\(..\)/\4 \3 \2 \1/') 01 00 00 00
	[ "$(ebr_chain bad.raw | wc -l)" -gt 4 ] || die "the poke made no loop"
	same_list bad.raw want
	grep -q "MBR: EBR at sector $lastebr links back to sector $target (a loop); the chain stops there" \
		"$TD/got.err" || die "no loop warning: $(cat "$TD/got.err")"
	mount_parts bad.raw bad.raw want
}

vd_test mbr-extended-logicals t_table mbr
vd_test mbr-extended-0x85 t_table mbr85
vd_test mbr-numbering t_mbr_shape
vd_test gpt-gaps-and-names t_table gpt
vd_test gpt-128-entries t_table full
vd_test gpt-4096-sectors t_table g4k -b 4096
vd_test gpt-hybrid-mbr t_table hybrid
vd_test gpt-shapes t_gpt_shape
vd_test gpt-bad-crc-good-backup t_gpt_bad_crc
vd_test gpt-both-headers-bad t_gpt_both_bad
vd_test gpt-entry-past-end t_gpt_past_end
vd_test ebr-loop t_ebr_bad loop
vd_test ebr-backwards t_ebr_bad backwards
vd_finish
