#!/bin/bash
# Hostile FAT volumes through the mount: each starts as a volume made by
# mkfs.vfat and filled by mtools (fsck.fat -n says it is clean), then has
# one field poked, at an offset computed from its BPB and directories
# (tests/fatvol.py). A broken BPB hides pN/ (pN.raw stays) with a line
# naming the field; a broken cluster chain fails that file's or that
# directory's reads with EIO, logged, while the rest of the volume reads
# as mtools copied it out before the poke; a broken long-name run shows
# the 8.3 name (as mdir listed it before the poke), as Linux does. Never
# a crash or a hang: every command runs under a timeout, the daemon must
# still answer afterwards, and the ASan build reports memory errors.
. "$(dirname "$0")/lib.sh"

FATVOL=$VD_LIB_DIR/fatvol.py
shopt -s extglob
MIB=1048576
export LC_ALL=C.UTF-8 MTOOLS_SKIP_CHECK=1 TZ=UTC
CKNAME='Checksum Broken Name.txt'
SQNAME='A Long Name In Three Entries.txt'

fv() { python3 "$FATVOL" "$@"; }

# ------------------------------------------------------------ builders

# clus VOL PATH — the first cluster of PATH.
clus() { fv entry "$1" "$2" | sed 's/.* clus=\([0-9]*\) .*/\1/'; }

# chainvol VOL MIB MKFS-ARGS... — a volume for the chain and name pokes:
# files of a few clusters, dirfull/ filling exactly one cluster (no end
# marker), dloop/ filling exactly two, two long names. VOL.out is mtools'
# copy-out and VOL.mdir its listing, both before any poke.
chainvol() {
	local v=$1 mib=$2 cs n i free k
	shift 2
	truncate -s $((mib * MIB)) "$v"
	mkfs.vfat "$@" "$v" || return 1
	cs=$(fv geom "$v" | awk -F= '$1 == "bps" { b = $2 } $1 == "spc" { s = $2 } END { print b * s }')
	rm -rf src
	mkdir -p src/good src/dirfull src/dloop
	printf 'fine\n' >src/ok.txt
	printf 'inner\n' >src/good/inner.txt
	head -c $((4 * cs + 100)) /dev/urandom >src/loop.bin
	head -c $((3 * cs)) /dev/urandom >src/past.bin
	head -c $((3 * cs - 1)) /dev/urandom >src/free.bin
	# short.bin: its chain is cut after k clusters, k * cs >= 8 KiB, so
	# that the first page reads whole (the kernel reads a page at least).
	k=$(((8192 + cs - 1) / cs))
	head -c $(((k + 3) * cs)) /dev/urandom >src/short.bin
	echo "$k" >"$v.shortk"
	printf 'checksum\n' >"src/$CKNAME"
	printf 'sequence\n' >"src/$SQNAME"
	# One slot per 8.3 upper-case name; "." and ".." take two.
	n=$((cs / 32 - 2))
	for i in $(seq "$n"); do printf '%d' "$i" >"src/dirfull/F$i.TXT"; done
	n=$((2 * cs / 32 - 2))
	for i in $(seq "$n"); do printf '%d' "$i" >"src/dloop/L$i.TXT"; done
	(cd src && mcopy -s -m -i "../$v" -- * ::) || return 1
	fsck.fat -n "$v" || return 1
	for i in dirfull:1 dloop:2; do
		free=$(fv dirfree "$v" "${i%:*}") || return 1
		[ "$free" = "0 ${i#*:}" ] ||
			{ echo "${i%:*}: free slots and clusters '$free', expected 0 ${i#*:}"; return 1; }
	done
	mkdir "$v.out"
	mcopy -s -m -n -i "$v" '::*' "$v.out/" || return 1
	mdir -/ -a -i "$v" :: >"$v.mdir" || return 1
	rm -rf src
	chainpoke "$v" || return 1
}

# chainpoke VOL — one poke per file: loop.bin's third cluster links back
# to its second; past.bin's first links past the last cluster; free.bin's
# second is marked free; short.bin's k-th ends the chain (the size says
# k + 3 clusters); dloop/'s second cluster links back to its first; every
# LFN slot of CKNAME gets a wrong checksum (byte 13); the middle slot of
# SQNAME's three gets sequence number 7 instead of 2 (byte 0).
chainpoke() {
	local v=$1 c geom count o
	geom=$(fv geom "$v")
	count=$(echo "$geom" | sed -n 's/^clusters=//p')
	c=$(fv chain "$v" "$(clus "$v" loop.bin)")
	set -- $c
	[ $# = 5 ] || { echo "loop.bin chain: $c"; return 1; }
	fv fatset "$v" "$3" "$2" || return 1
	c=$(clus "$v" past.bin)
	fv fatset "$v" "$c" $((count + 2 + 5)) || return 1
	set -- $(fv chain "$v" "$(clus "$v" free.bin)")
	[ $# = 3 ] || return 1
	fv fatset "$v" "$2" 0 || return 1
	k=$(cat "$v.shortk")
	set -- $(fv chain "$v" "$(clus "$v" short.bin)")
	[ $# = $((k + 3)) ] || return 1
	fv fatset "$v" "${!k}" 0x0FFFFFFF || return 1
	set -- $(fv chain "$v" "$(clus "$v" dloop)")
	[ $# = 2 ] || return 1
	fv fatset "$v" "$2" "$1" || return 1
	o=$(fv entry "$v" "$CKNAME" | sed 's/.* nlfn=[0-9]* lfn=//')
	[ -n "$o" ] || return 1
	for o in ${o//,/ }; do
		poke "$v" $((o + 13)) "$(printf '%02x' $((0x$(peek "$v" $((o + 13)) 1) ^ 0x5a)))"
	done
	o=$(fv entry "$v" "$SQNAME" | sed -n 's/.* nlfn=3 lfn=[0-9]*,\([0-9]*\),[0-9]*$/\1/p')
	[ -n "$o" ] || { echo "SQNAME has not 3 LFN slots"; return 1; }
	[ "$(peek "$v" "$o" 1)" = 02 ] || { echo "SQNAME's middle slot is not sequence 2"; return 1; }
	poke "$v" "$o" 07
}

# gen_chains: a GPT disk, p1 FAT12 and p2 FAT32 with chainvol's pokes.
gen_chains() {
	chainvol p1.vol 4 -F 12 -n CHAIN12 || return 1
	chainvol p2.vol 34 -F 32 -s 1 -n CHAIN32 || return 1
	truncate -s $(((1 + 4 + 34 + 1) * MIB)) chains.raw
	sfdisk -q chains.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=$((4 * 2048)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
		start=$((2048 + 4 * 2048)), size=$((34 * 2048)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7
	EOF
	fv place chains.raw p1.vol $((2048 * 512)) || return 1
	fv place chains.raw p2.vol $(((2048 + 4 * 2048) * 512)) || return 1
	rm -f p1.vol p2.vol p1.vol.shortk p2.vol.shortk
}

# gen_bpb: a GPT disk of five 8 MiB FAT16 copies of one volume: p1 with
# sectors per cluster 0 (BPB offset 13), p2 bytes per sector 300
# (offset 11), p3 number of FATs 0 (offset 16), p4 a total sector count
# (offset 19, or 32 when that is 0) twice the partition's (mounted with a
# warning naming the field); p5 intact.
BPB_PARTS="1 2 3 4"
gen_bpb() {
	local n ts
	truncate -s $((8 * MIB)) base.vol
	mkfs.vfat -F 16 -s 1 -n BPB base.vol || return 1
	printf 'intact\n' >OK.TXT
	mcopy -i base.vol OK.TXT :: || return 1
	fsck.fat -n base.vol || return 1
	[ "$(fv geom base.vol | sed -n 's/^fat_bits=//p')" = 16 ] || return 1
	for n in 1 2 3 4 5; do cp base.vol p$n.vol; done
	poke p1.vol 13 00
	poke p2.vol 11 2c 01
	poke p3.vol 16 00
	if [ "$(peek p4.vol 19 2)" != 0000 ]; then
		poke p4.vol 19 00 80 # 32768 sectors: 16 MiB
	else
		poke p4.vol 32 00 80 00 00
	fi
	truncate -s $((42 * MIB)) bpb.raw
	{
		printf 'label: gpt\nunit: sectors\n'
		for n in 1 2 3 4 5; do
			echo "start=$((2048 + (n - 1) * 16384)), size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
		done
	} | sfdisk -q bpb.raw || return 1
	for n in 1 2 3 4 5; do
		fv place bpb.raw p$n.vol $(((2048 + (n - 1) * 16384) * 512)) || return 1
	done
	rm -f p?.vol base.vol OK.TXT
}

# ------------------------------------------------------------ checks

# vfat_or_skip DIR — inside a test, after mounting: skip (not fail) when
# DIR is missing because this tree has no vfat driver yet.
vfat_or_skip() {
	T test -d "$1" && return 0
	ls "$VD_SRC_DIR"/fsread/*fat*.c >/dev/null 2>&1 ||
		skip_test "no vfat driver in fsread/ yet"
}

# fg_mount MNT ARGS... — inside a test: vdmount -f in the background,
# its stderr (the log of read errors) in $TD/fg.err.
fg_mount() {
	local m=$1 i
	shift
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 600 "$VDMOUNT" -f "$@" "$m" >"$TD/fg.out" 2>"$TD/fg.err" </dev/null &
	for i in $(seq 600); do
		vd_is_mounted "$m" && return 0
		sleep 0.1
	done
	die "vdmount -f did not mount in 60 s: $(head -c 300 "$TD/fg.err")"
}

alive() {
	[ -n "$(vd_daemon_pids "$1")" ] || die "the vdmount daemon for $1 is gone"
	T stat "$1/disk.raw" >/dev/null 2>&1 || die "$1 no longer answers"
}

# eio CMD... — inside a test: CMD fails with EIO (not a timeout).
eio() {
	local rc
	T "$@" >"$TD/eio.out" 2>"$TD/eio.err"
	rc=$?
	[ $rc = 124 ] || [ $rc = 137 ] && die "$* timed out (a chain followed forever?)"
	[ $rc != 0 ] || die "$* succeeded; expected EIO"
	grep -q 'Input/output error' "$TD/eio.err" ||
		die "$* failed without EIO: $(head -c 200 "$TD/eio.err")"
}

# short_of MDIR LONGNAME — the 8.3 name mdir lists beside LONGNAME.
short_of() {
	local line b e
	line=$(grep -F -- "  $2" "$1" | head -n 1)
	b=${line:0:8}
	e=${line:9:3}
	b=${b%%+( )}
	e=${e%%+( )}
	echo "$b${e:+.$e}"
}

t_chains() {
	local p=$1 d m v o n s
	d=$(img_or_die chains) || exit 1
	o=$d/p$p.vol.out
	m=$(vd_mnt m)
	fg_mount "$m" "$d/chains.raw"
	v=$m/p$p
	vfat_or_skip "$v"
	T test -d "$v" || die "no p$p/: $(ls "$m" | tr '\n' ' ')"
	# What no poke touched reads as mtools read it.
	T cmp "$v/ok.txt" "$o/ok.txt" || die "ok.txt"
	T cmp "$v/good/inner.txt" "$o/good/inner.txt" || die "good/inner.txt"
	eio cat "$v/loop.bin"
	eio cat "$v/past.bin"
	eio cat "$v/free.bin"
	# short.bin: its first page still reads; the whole fails.
	T cmp -n 4096 "$v/short.bin" "$o/short.bin" || die "the first page of short.bin"
	eio cat "$v/short.bin"
	eio ls "$v/dloop"
	alive "$m"
	# A directory without an end marker that fills its chain lists whole.
	T ls "$v/dirfull" | sort >ls.out || die "ls dirfull failed"
	ls "$o/dirfull" | sort | cmp -s - ls.out ||
		die "dirfull lists $(wc -l <ls.out) names, mtools $(ls "$o/dirfull" | wc -l)"
	n=$(ls "$o/dirfull" | head -n 1)
	T cmp "$v/dirfull/$n" "$o/dirfull/$n" || die "dirfull/$n"
	# Broken long-name runs: the 8.3 name shows, the long one does not.
	for n in "$CKNAME" "$SQNAME"; do
		s=$(short_of "$d/p$p.vol.mdir" "$n")
		[[ $s == *~* ]] || die "no 8.3 alias of '$n' in mdir: '$s'"
		T ls "$v" >ls.out || die "ls failed"
		grep -qxF "$n" ls.out && die "the broken long name '$n' shows"
		grep -qxF "$s" ls.out || die "'$s' (the 8.3 name of '$n') is missing: $(tr '\n' '|' <ls.out)"
		T cmp "$v/$s" "$o/$n" || die "$s differs from $n"
	done
	alive "$m"
	umount_ok "$m"
	# The read errors were logged.
	grep -qi 'p'"$p" "$TD/fg.err" || die "no log line names p$p: $(head -c 300 "$TD/fg.err")"
	echo "log: $(head -n 5 "$TD/fg.err" | tr '\n' '|')"
}

# Impossible BPB fields: pN.raw is there, pN/ is not, a line names the
# partition and the field; the intact p5 shows its file.
t_bpb() {
	local d m n s
	d=$(img_or_die bpb) || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$d/bpb.raw" "$m"
	for n in 1 2 3 4 5; do
		T test -f "$m/p$n.raw" || die "no p$n.raw"
	done
	vfat_or_skip "$m/p5"
	[ "$(T cat "$m/p5/OK.TXT")" = intact ] || die "the intact p5 does not read"
	for n in $BPB_PARTS; do
		# A volume longer than its partition is shown, as a
		# partition cut short is (reads past the end give EIO);
		# the other three cannot be read at all.
		if [ "$n" != 4 ]; then
			T test -e "$m/p$n" && die "p$n/ exists for an impossible BPB"
		else
			[ "$(T cat "$m/p4/OK.TXT")" = intact ] ||
				die "p4 (total sectors past its end) does not read"
		fi
		grep "p$n" "$TD/mount.err" >line.out ||
			die "no line names p$n: $(head -c 600 "$TD/mount.err" | tr '\n' '|')"
		# The field, as the FAT spec names it (BPB_SecPerClus,
		# BPB_BytsPerSec, BPB_NumFATs, BPB_TotSec16/32).
		case $n in
		1) s='sectors per cluster' ;;
		2) s='bytes per sector' ;;
		3) s='FATs|FAT count|number of FAT' ;;
		4) s='total sectors|sector count' ;;
		esac
		grep -qE -- "$s" line.out || die "the line about p$n does not name the field ($s): $(cat line.out)"
	done
	alive "$m"
	umount_ok "$m"
}

vd_test vfat-hostile-chains-fat12 t_chains 1
vd_test vfat-hostile-chains-fat32 t_chains 2
vd_test vfat-hostile-bpb t_bpb
vd_finish
