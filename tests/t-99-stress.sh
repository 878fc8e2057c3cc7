#!/bin/bash
# The daemon under stress (issue 6): concurrent readers, mount/unmount
# loops, leaks of descriptors, threads and memory, readers and the daemon
# killed mid-read, the image truncated under the mount.
#
# Modes (environment):
#   VD_STRESS=short  (default) seconds per reader run, 200 mount cycles,
#                    a 5-cycle LeakSanitizer sample, one valgrind run;
#                    the whole script stays well under two minutes.
#   VD_STRESS=long   longer reader runs (60 s each), 1000 mount cycles,
#                    25 LeakSanitizer cycles, a longer valgrind run.
#
# The image: a 64 MiB GPT disk, p1 ext4 (mkfs.ext4 -d) and p2 FAT16
# (mkfs.vfat + mcopy), as a qcow2 over a compressed qcow2 backing file;
# the top holds data and zero clusters, the backing compressed and plain
# data clusters and holes (qemu-img map and check show the mix).
# Oracles we did not write: qemu-img convert -O raw for disk.raw, dd
# slices of it for p1.raw and p2.raw, the source trees mkfs.ext4 -d and
# mcopy were given for the guest files. The readers are tests/stress.py:
# every byte read is compared.
#
# Daemons are the ASan+UBSan build ($VDMOUNT) unless a test says
# otherwise; tests that look at a sanitizer report themselves give the
# daemon their own ASAN_OPTIONS (LeakSanitizer on) and fail on any
# report. Daemons run in the foreground (-f) in the background of the
# test where the test needs their pid, exit status or stderr log.
. "$(dirname "$0")/lib.sh"

STRESS=$VD_LIB_DIR/stress.py
MIB=1048576
export MTOOLS_SKIP_CHECK=1

case ${VD_STRESS:-short} in
long)
	READ_SECS=60
	CYCLES=1000
	LSAN_CYCLES=25
	VG_SECS=30
	FD_ROUNDS=50
	;;
*)
	READ_SECS=5
	CYCLES=200
	LSAN_CYCLES=5
	VG_SECS=4
	FD_ROUNDS=12
	;;
esac
RELEASE=$BUILD/vdmount

# Partitions of the disk, in bytes: p1 ext4, p2 FAT16.
P1_OFF=$((1 * MIB))
P1_LEN=$((32 * MIB))
P2_OFF=$((34 * MIB))
P2_LEN=$((24 * MIB))

# ------------------------------------------------------------ image

gen_stress() {
	local d spec off len cmds=()
	# Guest trees: sizes at block, cluster and request edges; random
	# (incompressible) and text (compressible) contents.
	mkdir -p ext/dir/sub fat/SUB
	for d in ext fat; do
		: >$d/empty
		printf x >$d/one
		head -c 4095 /dev/urandom >$d/b4095
		head -c $((2 * MIB + 4097)) /dev/urandom >$d/rand2m
		yes "$d text line for the stress test 0123456789" |
			head -c $((3 * MIB + 123)) >$d/text3m
	done
	head -c 70001 /dev/urandom >fat/SUB/b70001
	head -c $((5 * MIB - 1)) /dev/urandom >ext/dir/sub/rand5m
	head -c $((MIB + 1)) /dev/urandom >ext/dir/b1m1
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -d ext p1.img $((P1_LEN / MIB))M || return 1
	truncate -s $P2_LEN p2.img
	mkfs.vfat -F 16 -n STRESS p2.img || return 1
	(cd fat && mcopy -s -m -i ../p2.img -- * ::) || return 1
	truncate -s $((64 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=$((P1_OFF / 512)), size=$((P1_LEN / 512)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="ext"
		start=$((P2_OFF / 512)), size=$((P2_LEN / 512)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="fat"
	EOF
	dd if=p1.img of=disk.raw bs=1M seek=$((P1_OFF / MIB)) conv=notrunc,sparse status=none || return 1
	dd if=p2.img of=disk.raw bs=1M seek=$((P2_OFF / MIB)) conv=notrunc,sparse status=none || return 1
	rm -f p1.img p2.img
	# The base holds an older disk, compressed (text compresses, random
	# data stays plain), with junk where the top stores data (in both
	# partitions) and where it stores zero clusters (the gap between the
	# partitions, free space past the FAT one). MiB:count pairs.
	cp disk.raw old.raw
	for spec in 10:2 33:1 40:4 60:1; do
		dd if=/dev/urandom of=old.raw bs=1M seek=${spec%:*} count=${spec#*:} \
			conv=notrunc status=none || return 1
	done
	qemu-img convert -c -O qcow2 old.raw base.qcow2 || return 1
	rm -f old.raw
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || return 1
	for spec in 10:2 40:4; do
		off=$((${spec%:*} * MIB))
		len=$((${spec#*:} * MIB))
		dd if=disk.raw of=piece.$off bs=1M skip=${spec%:*} count=${spec#*:} status=none || return 1
		cmds+=("write -s piece.$off $off $len")
	done
	cmds+=("write -z $((33 * MIB)) $MIB" "write -z $((60 * MIB)) $MIB")
	qio qcow2 top.qcow2 "${cmds[@]}" || return 1
	rm -f piece.*
	# The chain shows the disk that was built, and has the mix.
	qemu-img compare -q -f raw -F qcow2 disk.raw top.qcow2 || return 1
	rm -f disk.raw
	qemu-img map --output=json top.qcow2 >top.map || return 1
	grep -q '"depth": 0,.*"zero": true' top.map || return 1
	grep -q '"depth": 0,.*"data": true, "offset"' top.map || return 1
	grep -q '"depth": 1,.*"data": true}' top.map || return 1 # compressed
	grep -q '"depth": 1,.*"present": false' top.map || return 1
	qemu-img check base.qcow2 | grep -q '[1-9][0-9.]*% compressed' || return 1
}

# ------------------------------------------------------------ helpers

# setup — inside a test: D (the image set), ORACLE (disk.raw's), and
# the partition slices $TD/p1.want, $TD/p2.want.
setup() {
	D=$(img_or_die stress) || exit 1
	ORACLE=$(vd_oracle "$D/top.qcow2" 2>"$TD/.oracle.err") ||
		die "qemu-img convert failed: $(cat "$TD/.oracle.err")"
	dd if="$ORACLE" of="$TD/p1.want" bs=1M skip=$((P1_OFF / MIB)) \
		count=$((P1_LEN / MIB)) status=none || die "dd p1"
	dd if="$ORACLE" of="$TD/p2.want" bs=1M skip=$((P2_OFF / MIB)) \
		count=$((P2_LEN / MIB)) status=none || die "dd p2"
}

# pairs MNT — the FILE=ORACLE arguments of stress.py for a mount.
pairs() {
	local m=$1 f
	echo "$m/disk.raw=$ORACLE" "$m/p1.raw=$TD/p1.want" "$m/p2.raw=$TD/p2.want"
	for f in empty one b4095 rand2m text3m dir/b1m1 dir/sub/rand5m; do
		echo "$m/p1/$f=$D/ext/$f"
	done
	for f in empty one b4095 rand2m text3m SUB/b70001; do
		echo "$m/p2/$f=$D/fat/$f"
	done
}

# stress ARGS... — tests/stress.py run ARGS..., under an outer timeout
# (stress.py itself kills and reports workers that hang).
stress() {
	timeout -k 5 $((READ_SECS + 120)) python3 "$STRESS" run "$@"
}

# san_env — inside a test: sanitizer reports of daemons started from now
# on go to $TD/san/, with LeakSanitizer on.
san_env() {
	mkdir -p "$TD/san"
	export ASAN_OPTIONS=log_path=$TD/san/asan:detect_leaks=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$TD/san/ubsan
}

# no_san_reports — inside a test, after the daemons have exited.
no_san_reports() {
	local f
	for f in "$TD"/san/*; do
		[ -e "$f" ] || continue
		head -n 30 "$f"
		die "sanitizer report $(basename "$f")"
	done
}

# fg_mount LOG BIN ARGS... — start BIN -f ARGS in the background (the
# mountpoint is the last argument), stderr to LOG; sets FG_PID and waits
# (for up to 120 s: a busy machine, valgrind) until the mount is live.
# BIN may be a wrapper (valgrind).
fg_mount() {
	local log=$1 m=${!#} end=$((SECONDS + 120))
	shift
	echo "$m" >>"$VD_MOUNTS"
	"$@" </dev/null >"$log.out" 2>"$log" &
	FG_PID=$!
	while [ "$SECONDS" -lt "$end" ]; do
		vd_is_mounted "$m" && return 0
		kill -0 "$FG_PID" 2>/dev/null ||
			die "$* exited before mounting: $(head -c 600 "$log" | tr '\n' ' ')"
		sleep 0.05
	done
	die "$* did not mount within 120 s"
}

# fg_wait PID — wait (for up to 120 s: LeakSanitizer or valgrind at exit
# on a busy machine) for a background daemon to exit; sets FG_RC to its
# exit status.
fg_wait() {
	local pid=$1 end=$((SECONDS + 120))
	while [ "$SECONDS" -lt "$end" ]; do
		kill -0 "$pid" 2>/dev/null || break
		# A zombie is done; wait reaps it below.
		vd_alive "$pid" || break
		sleep 0.05
	done
	vd_alive "$pid" && die "daemon $pid still running 120 s later"
	wait "$pid"
	FG_RC=$?
}

# counts PID — sets FDS (descriptors other than pipes), PIPES (pipe
# ends), THREADS, and WORKERS: the threads waiting in read(2) (x86-64
# syscall 0) or splice(2) (275) on the daemon's /dev/fuse descriptor,
# which at rest are libfuse's idle workers. libfuse gives each worker
# that has spliced a reply its own pipe (two ends), closed when the
# worker exits. A thread that is running has no syscall to show: the
# callers poll until the daemon is at rest.
counts() {
	local fd to t fuse= sc a0
	FDS=0
	PIPES=0
	while read -r fd to; do
		case $to in
		pipe:*) PIPES=$((PIPES + 1)) ;;
		/dev/fuse) fuse=$fd FDS=$((FDS + 1)) ;;
		*) FDS=$((FDS + 1)) ;;
		esac
	done < <(find /proc/"$1"/fd -mindepth 1 -printf '%f %l\n' 2>/dev/null)
	THREADS=0
	WORKERS=0
	for t in /proc/"$1"/task/*; do
		THREADS=$((THREADS + 1))
		read -r sc a0 _ 2>/dev/null <"$t/syscall" || continue
		case $sc in
		0 | 275) [ -n "$fuse" ] && [ "$((a0))" = "$fuse" ] &&
			WORKERS=$((WORKERS + 1)) ;;
		202) # waiting for its turn to read (fuse/spin.c)
			[ "$(cat "$t/comm" 2>/dev/null)" = vdmount-fuse ] &&
				WORKERS=$((WORKERS + 1)) ;;
		esac
	done
}

# ------------------------------------------------------------ tests

# 16 readers over disk.raw, p1.raw, p2.raw and the files of both
# filesystems, every byte compared; the daemon multithreaded, or -s.
t_readers() {
	local m
	setup
	m=$(vd_mnt m)
	mount_ok "$m" "$@" "$D/top.qcow2" "$m"
	# shellcheck disable=SC2046
	must stress --workers 16 --seconds "$READ_SECS" $(pairs "$m")
	umount_ok "$m"
}

# Mount and unmount the release build CYCLES times, reading a guest file
# of each filesystem and a piece of disk.raw each time: every mount
# works, every daemon exits after its unmount, nothing stays mounted.
# (Plain commands, not mount_ok/umount_ok: a cycle costs ~20 ms.)
t_mount_loop() {
	local m i p n left
	setup
	m=$(vd_mnt m)
	echo "$m" >>"$VD_MOUNTS"
	for i in $(seq "$CYCLES"); do
		T "$RELEASE" "$D/top.qcow2" "$m" 2>"$TD/mount.err" ||
			die "cycle $i: vdmount failed: $(head -c 300 "$TD/mount.err")"
		p=$(pgrep -xf "$RELEASE $D/top.qcow2 $m")
		[ -n "$p" ] || die "cycle $i: no daemon for $m"
		T cmp -s "$m/p1/b4095" "$D/ext/b4095" || die "cycle $i: p1/b4095 differs"
		T cmp -s "$m/p2/SUB/b70001" "$D/fat/SUB/b70001" || die "cycle $i: p2/SUB/b70001 differs"
		T cmp -s -n $MIB "$m/disk.raw" "$ORACLE" || die "cycle $i: disk.raw differs"
		T fusermount3 -u "$m" || die "cycle $i: fusermount3 -u failed"
		# Gone or a zombie (PID 1 here may reap orphans late); polled
		# for up to 60 s.
		n=$((SECONDS + 60))
		while vd_alive "$p" && [ "$SECONDS" -lt "$n" ]; do
			sleep 0.01
		done
		vd_alive "$p" && die "cycle $i: daemon $p still there 60 s after its unmount"
		vd_is_mounted "$m" && die "cycle $i: $m still mounted"
	done
	left=$(pgrep -xf "$RELEASE $D/top.qcow2 $m")
	[ -z "$left" ] || die "daemons left: $left"
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	echo "$CYCLES cycles"
}

# A long-lived mount (release build, -f) exercised again and again
# (FD_ROUNDS rounds): after each round of opens, reads and closes, a
# listing, and 16 concurrent readers, the daemon at rest stays within
# bounds that do not depend on how busy the machine is:
#   - descriptors other than pipes: no more than after round 1;
#   - libfuse's idle workers (in read(2) on /dev/fuse, or waiting for
#     their turn to: fuse/spin.c): at most VD_FUSE_IDLE_WORKERS (read from
#     fuse/vdmount.c; libfuse ends a worker that finishes a request
#     while more are waiting), however many a busy machine made it start;
#   - other threads: the main thread and the decoding helpers (one fewer
#     than the cores online, at most VD_POOL_MAX = 7, common/pool.h);
#   - pipe ends: those at the start, plus two per idle worker.
# A descriptor, thread or pipe leaked per round breaks one of these
# within a few rounds (a thread or descriptor at once); load does not,
# as it only changes how many workers up to the bound get started.
t_fds_threads() {
	local m pid round i f files idle others_max pipes0 fds1= why end max_t=0
	[ "$(uname -m)" = x86_64 ] ||
		skip_test "counts tells idle workers by x86-64 syscall numbers"
	idle=$(sed -n 's/^#define VD_FUSE_IDLE_WORKERS \([0-9][0-9]*\)$/\1/p' \
		"$VD_SRC_DIR/fuse/vdmount.c")
	[ -n "$idle" ] || die "no #define VD_FUSE_IDLE_WORKERS in fuse/vdmount.c"
	others_max=$(($(getconf _NPROCESSORS_ONLN) - 1))
	[ "$others_max" -le 7 ] || others_max=7
	others_max=$((others_max + 1))
	setup
	m=$(vd_mnt m)
	fg_mount "$TD/daemon.log" "$RELEASE" -f "$D/top.qcow2" "$m"
	pid=$FG_PID
	counts "$pid"
	pipes0=$PIPES
	echo "start: $FDS descriptors, $PIPES pipe ends, $THREADS threads ($WORKERS idle workers)"
	echo "bounds: $idle idle workers, $others_max other threads"
	for round in $(seq "$FD_ROUNDS"); do
		# 50 opens, reads and closes (head takes one file at a time).
		files=()
		for i in $(seq 10); do
			for f in p1/one p1/dir/b1m1 p2/one p2/SUB/b70001 p1.raw; do
				files+=("$m/$f")
			done
		done
		T head -q -c 70000 "${files[@]}" >/dev/null || die "head of ${#files[@]} files"
		T ls -lR "$m" >/dev/null || die "ls -lR"
		# shellcheck disable=SC2046
		must stress --workers 16 --seconds 0.5 $(pairs "$m") >/dev/null
		# The daemon comes to rest (the kernel may still send it
		# releases and forgets; surplus workers exit as they finish
		# them): poll for the bounds, for up to 60 s.
		end=$((SECONDS + 60))
		while :; do
			counts "$pid"
			[ "$round" = 1 ] && fds1=$FDS
			why=
			[ "$FDS" -le "$fds1" ] ||
				why="$FDS descriptors, $fds1 after round 1"
			[ "$WORKERS" -le "$idle" ] ||
				why="$WORKERS idle workers, more than $idle"
			[ $((THREADS - WORKERS)) -le "$others_max" ] ||
				why="$((THREADS - WORKERS)) threads other than idle workers, more than $others_max"
			[ "$PIPES" -le $((pipes0 + 2 * WORKERS)) ] ||
				why="$PIPES pipe ends for $WORKERS idle workers ($pipes0 at the start)"
			[ -z "$why" ] || [ "$SECONDS" -ge "$end" ] && break
			sleep 0.1
		done
		echo "round $round: $FDS descriptors, $PIPES pipe ends, $THREADS threads ($WORKERS idle workers)"
		[ -z "$why" ] || die "round $round: $why (after 60 s at rest)"
		[ "$THREADS" -le "$max_t" ] || max_t=$THREADS
	done
	echo "$FD_ROUNDS rounds: at most $max_t threads at rest"
	umount_ok "$m"
	fg_wait "$pid"
	[ "$FG_RC" = 0 ] || die "daemon exit status $FG_RC"
}

# LeakSanitizer on a sample: ASan daemons mounted and unmounted with
# reads in between (a leak report fails the test).
t_lsan() {
	local m i
	setup
	san_env
	m=$(vd_mnt m)
	for i in $(seq "$LSAN_CYCLES"); do
		mount_ok "$m" "$D/top.qcow2" "$m"
		# shellcheck disable=SC2046
		must stress --workers 4 --seconds 0.5 $(pairs "$m") >/dev/null
		T ls -lR "$m" >/dev/null || die "ls -lR"
		T cat "$m/p1/text3m" "$m/p2/text3m" >/dev/null || die "cat"
		umount_ok "$m"
	done
	no_san_reports
	echo "$LSAN_CYCLES cycles, no sanitizer report"
}

# valgrind --leak-check=full on the release build, in the foreground,
# exercised by readers: no byte definitely lost, no error.
t_valgrind() {
	local m pid rc
	command -v valgrind >/dev/null || skip_test "no valgrind"
	setup
	m=$(vd_mnt m)
	fg_mount "$TD/vg.log" valgrind --leak-check=full --error-exitcode=99 \
		--track-fds=no "$RELEASE" -f "$D/top.qcow2" "$m"
	pid=$FG_PID
	# shellcheck disable=SC2046
	must stress --workers 4 --seconds "$VG_SECS" $(pairs "$m")
	T ls -lR "$m" >/dev/null || die "ls -lR"
	T fusermount3 -u "$m" || die "fusermount3 -u"
	fg_wait "$pid"
	rc=$FG_RC
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	grep -E 'definitely lost|ERROR SUMMARY|All heap blocks' "$TD/vg.log"
	[ "$rc" = 0 ] || die "valgrind exit status $rc: $(grep -E 'ERROR SUMMARY|definitely' "$TD/vg.log" | tr '\n' ' ')"
	grep -qE 'definitely lost: 0 bytes|All heap blocks were freed' "$TD/vg.log" ||
		die "valgrind: $(grep 'definitely lost' "$TD/vg.log")"
}

# A reader killed (SIGKILL) in the middle of large reads, of disk.raw
# (16 MiB: compressed, plain and zero clusters) and of a guest file
# (readahead through the page cache), while 8 others read: the others
# see no error, the daemon serves reads after, and unmounts cleanly.
t_reader_killed() {
	local m bg spin=() i p end
	setup
	san_env
	m=$(vd_mnt m)
	mount_ok "$m" "$D/top.qcow2" "$m"
	# shellcheck disable=SC2046
	stress --workers 8 --seconds "$READ_SECS" $(pairs "$m") >"$TD/bg.out" 2>&1 &
	bg=$!
	python3 "$STRESS" spin "$m/disk.raw" $((4 * MIB)) $((16 * MIB)) "$TD/spin1" &
	spin+=($!)
	python3 "$STRESS" spin "$m/p1/dir/sub/rand5m" 0 $((5 * MIB)) "$TD/spin2" &
	spin+=($!)
	for i in 1 2; do
		p=${spin[$((i - 1))]}
		# After a first read, and while the reader is inside
		# pread64 (x86-64 syscall 17; a guest file may come from
		# the page cache, so also accept a kill outside it).
		end=$((SECONDS + 120))
		while [ "$SECONDS" -lt "$end" ]; do
			[ -e "$TD/spin$i" ] && break
			kill -0 "$p" 2>/dev/null || die "reader $i ended early"
			sleep 0.05
		done
		[ -e "$TD/spin$i" ] || die "reader $i made no first read in 120 s"
		for _ in $(seq 200); do
			[ "$(cut -d' ' -f1 "/proc/$p/syscall" 2>/dev/null)" = 17 ] && break
			sleep 0.01
		done
		echo "reader $i: syscall $(cut -d' ' -f1 "/proc/$p/syscall" 2>/dev/null) when killed"
		kill -KILL "$p"
		wait "$p" 2>/dev/null
	done
	wait "$bg" || die "concurrent readers failed: $(tail -n 5 "$TD/bg.out" | tr '\n' ' ')"
	cat "$TD/bg.out"
	# The same regions, right, after.
	must T python3 "$STRESS" range "$m/disk.raw" "$ORACLE" $((4 * MIB)) $((16 * MIB))
	must T python3 "$STRESS" range "$m/p1/dir/sub/rand5m" "$D/ext/dir/sub/rand5m" 0 $((5 * MIB - 1))
	umount_ok "$m"
	no_san_reports
}

# SIGTERM to a daemon (-f) while 16 readers read: it exits with status 0,
# the mount is gone, and each reader either finishes or gets an error
# (ENOTCONN, ECONNABORTED or EIO) in bounded time, never wrong bytes.
t_sigterm() {
	local m pid bg rc
	setup
	san_env
	m=$(vd_mnt m)
	fg_mount "$TD/daemon.log" "$VDMOUNT" "$@" -f "$D/top.qcow2" "$m"
	pid=$FG_PID
	# shellcheck disable=SC2046
	stress --workers 16 --seconds "$READ_SECS" --started "$TD/started" \
		--tolerate ENOTCONN,ECONNABORTED,EIO $(pairs "$m") >"$TD/bg.out" 2>&1 &
	bg=$!
	# The readers have all made a first read (stress.py makes the file
	# then, not on a clock; it ends by itself, so this ends too).
	while [ ! -e "$TD/started" ] && kill -0 "$bg" 2>/dev/null; do
		sleep 0.05
	done
	[ -e "$TD/started" ] || die "readers ended before all started: $(tail -n 3 "$TD/bg.out" | tr '\n' ' ')"
	kill -TERM "$pid"
	fg_wait "$pid"
	rc=$FG_RC
	[ "$rc" = 0 ] || die "daemon exit status $rc after SIGTERM: $(tail -n 3 "$TD/daemon.log" | tr '\n' ' ')"
	wait "$bg" || die "readers: $(grep -E '^(ERROR|MISMATCH)' "$TD/bg.out" | head -n 3 | tr '\n' ' ') $(tail -n 1 "$TD/bg.out")"
	cat "$TD/bg.out"
	vd_is_mounted "$m" && die "$m still mounted after the daemon exited"
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	no_san_reports
}

# The image truncated by another process while mounted: reads of what
# is lost fail with EIO and the daemon logs it; what is left reads right;
# the daemon exits cleanly when unmounted. A raw image (the cut at a
# known disk offset), then the qcow2 chain with its backing file cut.
t_truncated_raw() {
	local m pid cut=$((36 * MIB)) f
	setup
	san_env
	cp "$ORACLE" "$TD/disk.img"
	m=$(vd_mnt m)
	fg_mount "$TD/daemon.log" "$VDMOUNT" -f "$TD/disk.img" "$m"
	pid=$FG_PID
	T truncate -s $cut "$TD/disk.img" || die "truncate"
	# Lost: the end of disk.raw and of p2.raw (p2 starts at 34 MiB).
	must T python3 "$STRESS" range --expect eio "$m/disk.raw" "$ORACLE" $cut $((8 * MIB))
	must T python3 "$STRESS" range --expect eio "$m/p2.raw" "$TD/p2.want" \
		$((cut - P2_OFF)) $((4 * MIB))
	# Unaligned, small, and across the cut: right bytes or EIO.
	must T python3 "$STRESS" range --expect either --need-eio --piece 300001 \
		"$m/disk.raw" "$ORACLE" $((cut - 5 * MIB)) $((10 * MIB))
	grep -qE 'ended early|past the end' "$TD/daemon.log" ||
		die "no log line about the short file: $(head -c 400 "$TD/daemon.log")"
	# Left: all of p1 (1..33 MiB) and its files, the start of p2.
	must T python3 "$STRESS" range "$m/disk.raw" "$ORACLE" 0 $cut
	must T python3 "$STRESS" range "$m/p1.raw" "$TD/p1.want" 0 $P1_LEN
	must T python3 "$STRESS" range "$m/p2.raw" "$TD/p2.want" 0 $((cut - P2_OFF))
	for f in one b4095 rand2m text3m dir/b1m1 dir/sub/rand5m; do
		T cmp "$m/p1/$f" "$D/ext/$f" || die "p1/$f differs after the cut"
	done
	# FAT files past the cut: right or EIO.
	for f in rand2m text3m SUB/b70001; do
		must T python3 "$STRESS" range --expect either "$m/p2/$f" "$D/fat/$f" \
			0 "$(stat -c %s "$D/fat/$f")"
	done
	grep -c 'error' "$TD/daemon.log"
	umount_ok "$m"
	fg_wait "$pid"
	[ "$FG_RC" = 0 ] || die "daemon exit status $FG_RC"
	no_san_reports
}

t_truncated_qcow2() {
	local m pid
	setup
	san_env
	cp "$D/top.qcow2" "$D/base.qcow2" "$TD/"
	m=$(vd_mnt m)
	fg_mount "$TD/daemon.log" "$VDMOUNT" -f "$TD/top.qcow2" "$m"
	pid=$FG_PID
	T truncate -s $(($(stat -c %s "$TD/base.qcow2") / 2)) "$TD/base.qcow2" || die "truncate"
	# The top's own clusters (data at 10-12 and 40-44 MiB, zero at
	# 33 and 60 MiB) do not need the backing file.
	must T python3 "$STRESS" range "$m/disk.raw" "$ORACLE" $((10 * MIB)) $((2 * MIB))
	must T python3 "$STRESS" range "$m/disk.raw" "$ORACLE" $((40 * MIB)) $((4 * MIB))
	must T python3 "$STRESS" range "$m/disk.raw" "$ORACLE" $((60 * MIB)) $MIB
	# Elsewhere: right or EIO, and EIO somewhere.
	must T python3 "$STRESS" range --expect either --need-eio "$m/disk.raw" "$ORACLE" \
		0 $((64 * MIB))
	grep -qE 'ended early|past the end' "$TD/daemon.log" ||
		die "no log line about the short file: $(head -c 400 "$TD/daemon.log")"
	umount_ok "$m"
	fg_wait "$pid"
	[ "$FG_RC" = 0 ] || die "daemon exit status $FG_RC"
	no_san_reports
}

vd_test stress-readers-16 t_readers
vd_test stress-readers-16-single t_readers -s
vd_test stress-mount-loop t_mount_loop
vd_test stress-fds-threads t_fds_threads
vd_test stress-lsan-sample t_lsan
vd_test stress-valgrind t_valgrind
vd_test stress-reader-killed t_reader_killed
vd_test stress-sigterm t_sigterm
vd_test stress-sigterm-single t_sigterm -s
vd_test stress-truncated-raw t_truncated_raw
vd_test stress-truncated-qcow2 t_truncated_qcow2
vd_finish
