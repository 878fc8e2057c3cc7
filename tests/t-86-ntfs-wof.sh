#!/bin/bash
# NTFS files compressed by Windows' Compact OS (WOF): XPRESS4K, XPRESS8K,
# XPRESS16K and LZX chunks in a WofCompressedData stream behind a WOF
# reparse point.
#
# With no Windows here, tests/mkwof.py makes the streams: with our own
# XPRESS Huffman and LZX encoders (each chunk also read back by wimlib's
# decompressor when libwim15 is installed: a reader we did not write)
# and, when libwim15 is installed, with wimlib's compressors (a writer we
# did not write). The files are put on a volume made by mkntfs through
# ntfs-3g's read-write mount as Windows leaves them: a sparse unnamed
# $DATA of the uncompressed size (truncate), the stream (written as
# "FILE:WofCompressedData", streams_interface=windows) and the reparse
# point (system.ntfs_reparse_data). The oracle is the plaintext each
# stream was made from. Cases: each format; 0 and 1 bytes; exactly one
# chunk and one more byte; chunks stored as they are (random data);
# several MiB; a file past 4 GiB (8-byte table entries); hostile streams
# (bad tables, chunks cut short or decoding past their end, a bad Huffman
# code, an unknown LZX block type) that must fail with EIO and a log
# line, never zeros; reparse points ntfs-3g's system-compression plugin
# would not take (unknown format, WIM provider), still symlinks; and an
# EFS-encrypted file (EIO and a log line).
. "$(dirname "$0")/lib.sh"

MKWOF=$VD_LIB_DIR/mkwof.py
# Past 4 GiB: 131076 LZX chunks, the table's entries 8 bytes each.
BIG_SIZE=$((4 * 1024 * 1024 * 1024 + 123457))

command -v mkntfs >/dev/null && command -v ntfs-3g >/dev/null || {
	echo "ok ntfs-wof # skipped: ntfs-3g is not installed"
	exit 0
}
[ "$(id -u)" = 0 ] || {
	echo "ok ntfs-wof # skipped: filling the volume needs an ntfs-3g mount (root)"
	exit 0
}

# ------------------------------------------------------------ the image

# put M NAME SIZE STREAM RP — a WOF file as Windows leaves it.
put() {
	local m=$1 n=$2 size=$3
	touch "$m/$n" && truncate -s "$size" "$m/$n" || return 1
	cat "$4" >"$m/$n:WofCompressedData" || return 1
	setfattr -n system.ntfs_reparse_data -v "$(cat "$5")" "$m/$n"
}

gen_wof() {
	local n size expect fmt route
	/usr/bin/python3 "$MKWOF" cases cases >mkwof.out || return 1
	/usr/bin/python3 "$MKWOF" big big.rp big.stream "$BIG_SIZE" >big.sha || return 1
	truncate -s 96M wof.img || return 1
	mkntfs -Q -F -q -c 4096 -L wof wof.img 2>/dev/null || return 1
	mkdir -p rw
	echo "$PWD/rw" >>"$VD_MOUNTS"
	timeout -k 5 120 ntfs-3g -o streams_interface=windows,big_writes wof.img rw || return 1
	mkdir rw/wof rw/plain || return 1
	while read -r n size expect fmt route; do
		put rw/wof "$n" "$size" "cases/$n.stream" "cases/$n.rp" || return 1
	done <cases/cases.txt
	put rw/wof big "$BIG_SIZE" big.stream big.rp || return 1
	printf 'an ordinary file\n' >rw/plain/file.txt
	printf 'secret\n' >rw/plain/efs.txt
	stat -c %i rw/plain/efs.txt >efs.ino
	timeout -k 5 60 umount rw || return 1
	/usr/bin/python3 "$MKWOF" efs wof.img "$(cat efs.ino)" || return 1
	rm -f big.stream
}

mount_wof() {
	D=$(img_or_die wof) || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$D/wof.img" "$MNT"
	W=$MNT/fs/wof
}

cases_where() {
	awk -v e="$1" '$3 == e { print $1, $2, $4, $5 }' "$D/cases/cases.txt"
}

# ------------------------------------------------------------ tests

# The routes the streams took: ours, read back by wimlib, and wimlib's.
t_routes() {
	D=$(img_or_die wof) || exit 1
	cat "$D/mkwof.out"
	if ldconfig -p 2>/dev/null | grep -q 'libwim\.so\.15'; then
		grep -q 'wimlib loaded, [1-9][0-9]* of our chunks read back by wimlib' "$D/mkwof.out" ||
			die "libwim15 is installed but mkwof did not use it: $(cat "$D/mkwof.out")"
		grep -q ' wimlib$' "$D/cases/cases.txt" || die "no case compressed by wimlib"
	else
		echo "libwim15 is not installed: only our own encoders"
	fi
}

t_reads() {
	local n size fmt route f got count=0
	mount_wof
	while read -r n size fmt route; do
		f=$W/$n
		T test -f "$f" -a ! -L "$f" || die "$n is not a regular file: $(ls -l "$f")"
		got=$(stat -c '%s %a %F' "$f")
		[ "$got" = "$size 555 regular file" ] ||
			[ "$got" = "$size 555 regular empty file" ] ||
			die "$n: stat says '$got', expected size $size, mode 555, a regular file"
		T cmp "$f" "$D/cases/$n.plain" >"$TD/cmp.out" 2>&1 ||
			die "$n ($route): $(head -c 300 "$TD/cmp.out")"
		count=$((count + 1))
	done < <(cases_where ok)
	[ "$count" -ge 24 ] || die "only $count readable cases"
	# Blocks: the stream's, as the plugin gives them.
	got=$(stat -c %b "$W/lzx-big")
	size=$(stat -c %s "$D/cases/lzx-big.stream")
	[ "$got" = $(((size + 511) / 512)) ] || die "lzx-big: $got blocks, the stream has $size bytes"
	T readlink "$W/lzx-mixed" >/dev/null 2>&1 && die "readlink of a WOF file succeeded"
	# Named streams show as ntfs-3g shows them on a regular file.
	T getfattr -d -m '^user\.' "$W/xpress4k-mixed" 2>/dev/null | grep -q '^user.WofCompressedData=' ||
		die "no user.WofCompressedData xattr"
	T cmp "$MNT/fs/plain/file.txt" <(printf 'an ordinary file\n') || die "plain/file.txt differs"
	echo "$count files read back"
	umount_ok "$MNT"
}

# Reads at random offsets and lengths, O_DIRECT where allowed: parts of
# chunks, chunk boundaries, the end.
t_random_reads() {
	local n p
	mount_wof
	for n in lzx-big xpress4k-big xpress16k-mixed wimlib-lzx-big lzx-chunk-plus-one; do
		[ -e "$D/cases/$n.plain" ] || continue
		random_reads "$W/$n" "$D/cases/$n.plain" 150 || die "$n: random reads differ"
	done
	# Two readers of one file at once (each open file keeps its own
	# last chunk; the mount's lock is shared).
	random_reads "$W/lzx-big" "$D/cases/lzx-big.plain" 100 >"$TD/par.out" 2>&1 &
	p=$!
	random_reads "$W/lzx-big" "$D/cases/lzx-big.plain" 100 || die "lzx-big: parallel reads differ"
	wait "$p" || die "lzx-big: parallel reads differ: $(cat "$TD/par.out")"
	umount_ok "$MNT"
}

# vdtool reads them too (its own read sizes), and copies a folder.
t_vdtool() {
	local n size fmt route
	D=$(img_or_die wof) || exit 1
	while read -r n size fmt route; do
		case $n in *-big | *-mixed) ;; *) continue ;; esac
		T "$VDTOOL" cat "$D/wof.img" "/fs/wof/$n" >"$TD/out" 2>"$TD/err" ||
			die "vdtool cat $n failed: $(head -c 300 "$TD/err")"
		cmp -s "$TD/out" "$D/cases/$n.plain" || die "vdtool cat $n differs"
	done < <(cases_where ok)
}

t_hostile() {
	local n size fmt route count=0
	mount_wof
	while read -r n size fmt route; do
		T cat "$W/$n" >/dev/null 2>"$TD/err" && die "$n: read succeeded"
		grep -q 'Input/output error' "$TD/err" || die "$n: not EIO: $(head -c 200 "$TD/err")"
		# The log line, through vdtool (the daemon's goes to syslog).
		T "$VDTOOL" cat "$D/wof.img" "/fs/wof/$n" >/dev/null 2>"$TD/err" &&
			die "$n: vdtool cat succeeded"
		grep -q "ntfs: MFT record [0-9]*: WOF" "$TD/err" ||
			die "$n: no log line: $(head -c 300 "$TD/err")"
		count=$((count + 1))
	done < <(cases_where eio)
	[ "$count" -ge 8 ] || die "only $count hostile cases"
	while read -r n size fmt route; do
		T readlink "$W/$n" | grep -qx 'unsupported reparse tag 0x80000017' ||
			die "$n: not the unsupported-tag symlink: $(ls -l "$W/$n")"
	done < <(cases_where symlink)
	# The daemon is still up and reads the rest.
	T cmp "$W/xpress8k-mixed" "$D/cases/xpress8k-mixed.plain" || die "reads after the errors fail"
	umount_ok "$MNT"
}

# Past 4 GiB: 8-byte table entries. Whole chunks on either side of 4 GiB,
# the first ones and the last (partial) one, by their sha256.
t_big() {
	local k want got last
	mount_wof
	[ "$(stat -c %s "$W/big")" = "$BIG_SIZE" ] || die "big: size $(stat -c %s "$W/big")"
	last=$(((BIG_SIZE - 1) / 32768))
	for k in 0 1 6 131071 131072 131073 $((last - 1)); do
		want=$(sed -n "$((k % 7 + 1))p" "$D/big.sha")
		got=$(T dd if="$W/big" bs=32768 skip="$k" count=1 status=none | sha256sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || die "big: chunk $k differs"
	done
	want=$(sed -n 8p "$D/big.sha")
	got=$(T dd if="$W/big" bs=32768 skip="$last" status=none | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || die "big: the last chunk differs"
	umount_ok "$MNT"
}

t_efs() {
	mount_wof
	T cat "$MNT/fs/plain/efs.txt" >/dev/null 2>"$TD/err" && die "an EFS file was read"
	grep -q 'Input/output error' "$TD/err" || die "EFS: not EIO: $(head -c 200 "$TD/err")"
	T "$VDTOOL" cat "$D/wof.img" /fs/plain/efs.txt >/dev/null 2>"$TD/err" && die "vdtool read an EFS file"
	grep -q 'encrypted (EFS)' "$TD/err" || die "EFS: no log line: $(head -c 300 "$TD/err")"
	umount_ok "$MNT"
}

vd_test ntfs-wof-routes t_routes
vd_test ntfs-wof-reads t_reads
vd_test ntfs-wof-random-reads t_random_reads
vd_test ntfs-wof-vdtool t_vdtool
vd_test ntfs-wof-hostile-eio t_hostile
vd_test ntfs-wof-past-4gib t_big
vd_test ntfs-efs-eio t_efs
vd_finish
