#!/bin/bash
# Command line and FUSE behaviour: the tree, --format/-F/-o format, a
# regular file as mountpoint, -o after the positional arguments, -s and
# multi-threaded parallel readers, read-only opens, SEEK_DATA/SEEK_HOLE
# and cp --sparse, signals, -f/-d, --help/--version, usage errors.
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024 + 3584))

gen_basic() {
	seed_raw seed.raw "$SIZE"
	qemu-img convert -O qcow2 seed.raw disk.qcow2 || return 1
	rm -f seed.raw
	scatter qcow2 disk.qcow2 "$SIZE" 1 || return 1
	seed_raw disk.raw "$SIZE"
}

# 32 MiB of mostly random data for the parallel readers.
gen_par() {
	local i
	head -c $((32 * 1048576)) /dev/urandom >seed.raw
	for i in 3 9 20; do
		dd if=/dev/zero of=seed.raw bs=1M seek=$i count=1 conv=notrunc status=none
	done
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw base.qcow2 || return 1
	rm -f seed.raw
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 par.qcow2 || return 1
	scatter qcow2 par.qcow2 $((32 * 1048576)) 2
}

# Sparse images with known written extents (offset length pattern).
SEEK_WRITES="1048576 4096 0x11
$((5 * 1048576 + 1000)) 300000 0x12
$((40 * 1048576)) 65536 0x13
$((64 * 1048576 - 512)) 512 0x14"
SEEK_WRITES_BASE="$((20 * 1048576)) 131072 0x21
$((30 * 1048576 + 7)) 10 0x22"

gen_seek() {
	local cmds=() o l p
	qemu-img create -q -f qcow2 base.qcow2 64M || return 1
	while read -r o l p; do cmds+=("write -P $p $o $l"); done <<<"$SEEK_WRITES_BASE"
	qio qcow2 base.qcow2 "${cmds[@]}" || return 1
	cmds=()
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || return 1
	while read -r o l p; do cmds+=("write -P $p $o $l"); done <<<"$SEEK_WRITES"
	qio qcow2 top.qcow2 "${cmds[@]}" || return 1
	qemu-img create -q -f qcow2 single.qcow2 64M || return 1
	cmds=()
	while read -r o l p; do cmds+=("write -P $p $o $l"); done <<<"$SEEK_WRITES"
	qio qcow2 single.qcow2 "${cmds[@]}" || return 1
	qemu-img map --output=json top.qcow2 >top.map
	qemu-img map --output=json single.qcow2 >single.map
	# 1 GiB, a few MiB written, for cp --sparse=always and cmp.
	qemu-img create -q -f qcow2 gig.qcow2 1G || return 1
	qio qcow2 gig.qcow2 "write -P 0x31 0 1048576" "write -P 0x32 $((300 * 1048576 + 5)) 2000000" \
		"write -P 0x33 $((1024 * 1048576 - 4096)) 4096"
}

t_tree() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/disk.qcow2" "$m"
	check_root_tree "$m" "$SIZE"
	local n
	n=$(T ls -A "$m" | wc -l)
	[ "$n" = 1 ] || die "root of a disk with no partitions holds $n entries, expected only disk.raw"
	T stat -c '%i' "$m/disk.raw" >/dev/null || die "stat failed"
	umount_ok "$m"
}

# -F raw and its spellings: disk.raw is the qcow2 file's own bytes.
t_format_raw() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	case $1 in
	F) mount_ok "$m" -F raw "$d/disk.qcow2" "$m" ;;
	long) mount_ok "$m" --format=raw "$d/disk.qcow2" "$m" ;;
	o) mount_ok "$m" -o format=raw "$d/disk.qcow2" "$m" ;;
	oafter) mount_ok "$m" "$d/disk.qcow2" "$m" -o ro,format=raw ;;
	esac
	check_root_tree "$m" "$(stat -c %s "$d/disk.qcow2")"
	cmp_files "$m/disk.raw" "$d/disk.qcow2"
	umount_ok "$m"
}

t_format_qcow2() {
	local d
	d=$(img_or_die basic)
	mount_compare "$d/disk.qcow2" -F qcow2
	mount_compare "$d/disk.qcow2" --format=qcow2
}

t_format_bad() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/disk.raw" "qcow2" -- -F qcow2 "$d/disk.raw" "$m"
	mount_fails "$m" "nosuchformat" -- --format=nosuchformat "$d/disk.qcow2" "$m"
}

t_file_mountpoint() {
	local d f
	d=$(img_or_die basic)
	f=$TD/flat.img
	: >"$f"
	mount_ok "$f" "$d/disk.qcow2" "$f"
	local got
	got=$(T stat -c '%F %s' "$f") || die "stat failed"
	[ "$got" = "regular file $SIZE" ] || die "mounted file is '$got', expected 'regular file $SIZE'"
	cmp_oracle "$f" "$d/disk.qcow2"
	umount_ok "$f"
	[ "$(stat -c %s "$f")" = 0 ] || die "the file under the mount changed"
}

t_opts_after() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/disk.qcow2" "$m" -o ro
	cmp_oracle "$m/disk.raw" "$d/disk.qcow2"
	umount_ok "$m"
	mount_ok "$m" -s "$d/disk.qcow2" "$m" -o ro,format=qcow2
	cmp_oracle "$m/disk.raw" "$d/disk.qcow2"
	umount_ok "$m"
	# Options before and after.
	mount_ok "$m" -o ro "$d/disk.qcow2" "$m" -o format=qcow2
	cmp_oracle "$m/disk.raw" "$d/disk.qcow2"
	umount_ok "$m"
}

# Relative mountpoint: vdmount must resolve it before it changes folder.
t_relative_mnt() {
	local d
	d=$(img_or_die basic)
	mkdir -p "$TD/rel"
	cd "$TD" || die "cd"
	mount_ok "$TD/rel" "$d/disk.qcow2" rel
	cmp_oracle "$TD/rel/disk.raw" "$d/disk.qcow2"
	umount_ok "$TD/rel"
}

# Readers at different offsets and block sizes, all at once, on a -s mount
# and a multi-threaded mount of the same image; every slice must match.
t_parallel() {
	local d o ms mm
	d=$(img_or_die par)
	o=$(vd_oracle "$d/par.qcow2") || die "oracle failed"
	ms=$(vd_mnt single)
	mm=$(vd_mnt multi)
	mount_ok "$ms" -s "$d/par.qcow2" "$ms"
	mount_ok "$mm" "$d/par.qcow2" "$mm"
	local specs="0 4096 2048
$((1048576 + 512)) 13000 700
$((5 * 1048576)) 1048576 8
$((7 * 1048576 + 4096)) 65536 120
$((16 * 1048576 - 333)) 131072 60
$((20 * 1048576)) 4096 1500
$((31 * 1048576)) 1000 1048"
	local pids=() i=0 m off bs cnt
	for m in "$ms" "$mm"; do
		while read -r off bs cnt; do
			i=$((i + 1))
			timeout -k 5 120 dd if="$m/disk.raw" of="$TD/slice.$i" bs="$bs" count="$cnt" \
				iflag=skip_bytes skip="$off" status=none &
			pids+=($!)
			echo "$i $off" >>"$TD/slices"
		done <<<"$specs"
	done
	for p in "${pids[@]}"; do
		wait "$p" || die "a parallel reader failed"
	done
	local n start
	while read -r n start; do
		local len
		len=$(stat -c %s "$TD/slice.$n")
		[ "$len" -gt 0 ] || die "slice $n is empty"
		cmp -n "$len" -i "0:$start" "$TD/slice.$n" "$o" >/dev/null ||
			die "slice $n (offset $start, $len bytes) differs from the oracle"
	done <"$TD/slices"
	cmp_files "$ms/disk.raw" "$o"
	cmp_files "$mm/disk.raw" "$o"
	umount_ok "$ms"
	umount_ok "$mm"
}

t_erofs() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/disk.qcow2" "$m"
	must T python3 - "$m" <<'EOF'
import errno, os, sys
m = sys.argv[1]
f = os.path.join(m, "disk.raw")
for name, flags in (("O_WRONLY", os.O_WRONLY), ("O_RDWR", os.O_RDWR),
                    ("O_WRONLY|O_TRUNC", os.O_WRONLY | os.O_TRUNC),
                    ("O_WRONLY|O_APPEND", os.O_WRONLY | os.O_APPEND)):
    try:
        fd = os.open(f, flags)
        os.close(fd)
        sys.exit("open(disk.raw, %s) succeeded" % name)
    except OSError as e:
        if e.errno != errno.EROFS:
            sys.exit("open(disk.raw, %s): %s, expected EROFS" % (name, e))
# Other changes fail too (errno not part of the contract).
for what, fn in (("create", lambda: os.open(os.path.join(m, "new"), os.O_WRONLY | os.O_CREAT, 0o644)),
                 ("mkdir", lambda: os.mkdir(os.path.join(m, "dir"))),
                 ("unlink", lambda: os.unlink(f)),
                 ("truncate", lambda: os.truncate(f, 0)),
                 ("chmod", lambda: os.chmod(f, 0o666))):
    try:
        fn()
        sys.exit("%s in the mount succeeded" % what)
    except OSError:
        pass
if sorted(os.listdir(m)) != ["disk.raw"]:
    sys.exit("root now holds %s" % os.listdir(m))
print("all refused")
EOF
	cmp_oracle "$m/disk.raw" "$d/disk.qcow2"
	umount_ok "$m"
}

# The image is opened read-only and left unchanged.
t_image_readonly() {
	local d m sum p fd found=0
	d=$(img_or_die basic)
	cp "$d/disk.qcow2" "$TD/img.qcow2"
	sum=$(stat -c '%s %Y' "$TD/img.qcow2")$(md5sum <"$TD/img.qcow2")
	m=$(vd_mnt m)
	mount_ok "$m" "$TD/img.qcow2" "$m"
	cmp_oracle "$m/disk.raw" "$TD/img.qcow2"
	for p in $(vd_daemon_pids "$m"); do
		for fd in /proc/"$p"/fd/*; do
			[ "$(readlink "$fd")" = "$TD/img.qcow2" ] || continue
			found=1
			local flags
			flags=$(awk '/^flags:/ { print $2 }' "/proc/$p/fdinfo/${fd##*/}")
			[ $((8#$flags & 3)) = 0 ] || die "image open with flags $flags (not O_RDONLY)"
		done
	done
	[ $found = 1 ] || die "no daemon holding the image open found"
	umount_ok "$m"
	[ "$(stat -c '%s %Y' "$TD/img.qcow2")$(md5sum <"$TD/img.qcow2")" = "$sum" ] ||
		die "the image changed"
}

t_seek() {
	local d m
	d=$(img_or_die seek)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1.qcow2" "$m"
	if [ "$1" = top ]; then
		must seek_check "$m/disk.raw" "$d/top.map" "$SEEK_WRITES" "$SEEK_WRITES_BASE"
	else
		must seek_check "$m/disk.raw" "$d/single.map" "$SEEK_WRITES"
	fi
	cmp_oracle "$m/disk.raw" "$d/$1.qcow2"
	umount_ok "$m"
}

t_cp_sparse() {
	local d m kib
	d=$(img_or_die seek)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/gig.qcow2" "$m"
	timeout -k 5 120 cp --sparse=always "$m/disk.raw" "$TD/copy.raw" || die "cp --sparse=always failed"
	kib=$(du -k "$TD/copy.raw" | cut -f1)
	[ "$kib" -lt 16384 ] || die "sparse copy of 1 GiB with 3 MiB written uses $kib KiB"
	cmp_oracle "$TD/copy.raw" "$d/gig.qcow2"
	rm -f "$TD/copy.raw"
	umount_ok "$m"
}

# SIGTERM or SIGINT to the daemon unmounts and ends it (polled for up to
# 60 s each: how fast does not matter, only that it happens).
t_signal() {
	local d m p i
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/disk.qcow2" "$m"
	T cat "$m/disk.raw" >/dev/null || die "read failed"
	p=$(vd_daemon_pids "$m")
	[ -n "$p" ] || die "no daemon found for $m"
	[ "$(echo "$p" | wc -l)" = 1 ] || die "several processes for $m: $p"
	kill -"$1" "$p"
	for i in $(seq 600); do
		vd_is_mounted "$m" || break
		sleep 0.1
	done
	vd_is_mounted "$m" && die "still mounted 60 s after SIG$1"
	for i in $(seq 600); do
		vd_alive "$p" || break
		sleep 0.1
	done
	vd_alive "$p" && die "daemon still running 60 s after SIG$1"
	umount_ok "$m"
}

# -f and -d: vdmount stays in the foreground; unmounting ends it, status 0.
t_foreground() {
	local d m pid i rc
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 600 "$VDMOUNT" "$1" "$d/disk.qcow2" "$m" >"$TD/fg.out" 2>"$TD/fg.err" &
	pid=$!
	for i in $(seq 600); do
		vd_is_mounted "$m" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	vd_is_mounted "$m" || die "not mounted 60 s after vdmount $1: $(head -c 300 "$TD/fg.err")"
	kill -0 "$pid" 2>/dev/null || die "vdmount $1 did not stay in the foreground"
	cmp_oracle "$m/disk.raw" "$d/disk.qcow2"
	if [ "$1" = -d ]; then
		[ -s "$TD/fg.err" ] || [ -s "$TD/fg.out" ] || die "vdmount -d printed no debug output"
	fi
	timeout -k 2 20 fusermount3 -u "$m" || die "fusermount3 -u failed"
	wait "$pid"
	rc=$?
	[ $rc = 0 ] || die "vdmount $1 exited with $rc after unmount: $(tail -n 3 "$TD/fg.err")"
	umount_ok "$m"
}

t_help() {
	local out rc
	out=$(T "$VDMOUNT" "$1" 2>&1)
	rc=$?
	[ $rc = 0 ] || die "vdmount $1 exited $rc"
	case $1 in
	--help | -h) echo "$out" | grep -qi 'usage' || die "no usage in $1 output" ;;
	--version | -V) echo "$out" | grep -q 'vdmount' || die "no version line: $out" ;;
	esac
	[ -z "$(T "$VDMOUNT" "$1" 2>/dev/null)" ] && die "$1 printed nothing on stdout"
	return 0
}

t_usage_errors() {
	local d m rc
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	T "$VDMOUNT" >/dev/null 2>&1
	rc=$?
	[ $rc != 0 ] || die "vdmount without arguments exited 0"
	T "$VDMOUNT" "$d/disk.qcow2" >/dev/null 2>&1
	rc=$?
	[ $rc != 0 ] || die "vdmount without a mountpoint exited 0"
	vd_is_mounted "$m" && die "mounted"
	mount_fails "$m" "$TD/nosuchdir" -- "$d/disk.qcow2" "$TD/nosuchdir"
	return 0
}

t_unknown_option() {
	local d m
	d=$(img_or_die basic)
	m=$(vd_mnt m)
	mount_fails "$m" "--bogus" -- --bogus "$d/disk.qcow2" "$m"
}

# An image a running QEMU has open for writing (it holds QEMU's write
# lock byte): qemu-img refuses it without -U; vdmount mounts and warns.
t_qemu_writer() {
	local d m q
	d=$(img_or_die basic)
	cp "$d/disk.qcow2" "$TD/busy.qcow2"
	qemu-io -c 'sleep 20000' "$TD/busy.qcow2" >/dev/null 2>&1 &
	q=$!
	# Wait until it holds the write lock byte (101) on the file.
	local ino held=0
	ino=$(stat -c %i "$TD/busy.qcow2")
	for _ in $(seq 600); do
		if awk -v ino="$ino" '$2 == "OFDLCK" { n = split($(NF-2), a, ":");
			if (a[n] == ino && $(NF-1) <= 101 && ($NF == "EOF" || $NF >= 101)) f = 1 }
			END { exit !f }' /proc/locks; then
			held=1
			break
		fi
		sleep 0.1
	done
	[ $held = 1 ] || die "qemu-io never took its write lock"
	sleep 0.2
	m=$(vd_mnt m)
	mount_ok "$m" "$TD/busy.qcow2" "$m"
	kill "$q" 2>/dev/null
	wait "$q" 2>/dev/null
	grep -qF "vdmount: warning: $TD/busy.qcow2: a running QEMU has it open for writing" "$TD/mount.err" ||
		die "no warning: $(cat "$TD/mount.err")"
	umount_ok "$m"
	# Without the writer: no warning.
	mount_ok "$m" "$TD/busy.qcow2" "$m"
	[ ! -s "$TD/mount.err" ] || die "unexpected output: $(cat "$TD/mount.err")"
	umount_ok "$m"
}

vd_test tree-and-modes t_tree
vd_test format-F-raw-shows-file t_format_raw F
vd_test format-long-raw-shows-file t_format_raw long
vd_test format-o-raw-shows-file t_format_raw o
vd_test format-o-raw-after-args t_format_raw oafter
vd_test format-qcow2-explicit t_format_qcow2
vd_test format-wrong-or-unknown t_format_bad
vd_test regular-file-mountpoint t_file_mountpoint
vd_test options-after-positional-args t_opts_after
vd_test relative-mountpoint t_relative_mnt
vd_test parallel-readers-single-and-multi-thread t_parallel
vd_test open-for-write-erofs t_erofs
vd_test image-opened-read-only t_image_readonly
vd_test seek-data-hole t_seek single
vd_test seek-data-hole-chain t_seek top
vd_test cp-sparse-always t_cp_sparse
vd_test sigterm-unmounts t_signal TERM
vd_test sigint-unmounts t_signal INT
vd_test foreground-f t_foreground -f
vd_test debug-d-foreground t_foreground -d
vd_test help t_help --help
vd_test help-short t_help -h
vd_test version t_help --version
vd_test version-short t_help -V
vd_test usage-errors t_usage_errors
vd_test unknown-option-error t_unknown_option
vd_test qemu-writer-warns t_qemu_writer
vd_finish
