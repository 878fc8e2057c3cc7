# tests/lib.sh — shared helpers for the image tests (tests/t-*.sh).
#
# Sourced by every t-*.sh. A script declares tests as shell functions and
# runs each with `vd_test NAME func [args]`: the function runs in a subshell
# (so a failed assertion, or `set -u` tripping, ends that test only), in its
# own scratch folder $TD; it ends with `die WHY` on the first failed
# assertion. vd_test then prints `ok NAME` or `FAIL NAME: WHY`, unmounts
# whatever the test mounted and detaches its loop devices, pass or fail.
#
# Lower-level helpers asked for by tests/run.sh's contract are here too:
# `pass NAME`, `fail NAME WHY`, `skip NAME WHY`, `check NAME cmd...`.
#
# Images are made by qemu-img/qemu-io at test time and cached for the run
# in $VD_WORK/img/ (vd_img: shared by all scripts for the generators
# defined here, per script for a script's own); oracles (`qemu-img convert
# -O raw`) are cached in $VD_WORK/oracle/ (vd_oracle). Every command that
# can block on a FUSE mount or a tool runs under `timeout`.
#
# Environment (set by tests/run.sh; defaults let a script run alone,
# e.g. `BUILD=/tmp/b VD_ONLY=chain bash tests/t-20-chains.sh`):
#   VD_WORK    the run's scratch folder
#   VDMOUNT    the binary under test (default $BUILD/asan/vdmount)
#   VDTOOL     vdtool under test (default $BUILD/asan/vdtool)
#   BUILD      build folder (default build)
#   VD_ONLY    run only the tests whose name contains this
#   VD_VERBOSE print each test's duration
#   VD_TIMEOUT seconds allowed to one command (default 60)
#   VD_FULL    1: run the slow, exhaustive cases too (make check-full)
#   VD_SAN     the folder of the sanitizers' reports (default $VD_WORK/san)

set -u
umask 022

VD_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VD_SRC_DIR=$(dirname "$VD_LIB_DIR")
: "${BUILD:=build}"
case $BUILD in /*) ;; *) BUILD=$VD_SRC_DIR/$BUILD ;; esac
: "${VDMOUNT:=$BUILD/asan/vdmount}"
case $VDMOUNT in /*) ;; *) VDMOUNT=$PWD/$VDMOUNT ;; esac
: "${VDTOOL:=$BUILD/asan/vdtool}"
case $VDTOOL in /*) ;; *) VDTOOL=$PWD/$VDTOOL ;; esac
export BUILD VDMOUNT VDTOOL

VD_OWN_WORK=
if [ -z "${VD_WORK:-}" ]; then
	VD_WORK=$(mktemp -d /tmp/vdtest.XXXXXX)
	chmod 755 "$VD_WORK"
	mkdir -m 1777 "$VD_WORK/san"
	VD_OWN_WORK=1
fi
export VD_WORK
# Where the sanitizers write their reports (tests/run.sh gives each script
# a folder of its own and sets ASAN_OPTIONS and UBSAN_OPTIONS to match).
: "${VD_SAN:=$VD_WORK/san}"
export VD_SAN

# Seconds for one command that reads through a mount or runs a tool.
VD_TIMEOUT=${VD_TIMEOUT:-60}

# Debian's python3 before any other on PATH: a version manager's shim
# (pyenv's) costs seconds per call on a busy machine, hundreds of calls
# are made, and the tests need only the standard library.
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ]; then
	mkdir -p "$VD_WORK/bin"
	ln -s /usr/bin/python3 "$VD_WORK/bin/python3" 2>/dev/null
	case :$PATH: in *":$VD_WORK/bin:"*) ;; *) PATH=$VD_WORK/bin:$PATH ;; esac
	export PATH
fi

VD_SCRIPT=$(basename "$0" .sh)
VD_T=$VD_WORK/t/$VD_SCRIPT
mkdir -p "$VD_T" "$VD_WORK/img" "$VD_WORK/oracle"
# Mountpoints and loop devices made by this script, one per line, so the
# cleanup sees those made inside test subshells too.
VD_MOUNTS=$VD_T/.mounts
VD_LOOPS=$VD_T/.loops
: >"$VD_MOUNTS"
: >"$VD_LOOPS"

# ---------------------------------------------------------------- results

pass() { echo "ok $1"; }
fail() { echo "FAIL $1: ${2:-failed}"; }
# A skipped test passes, but only with its reason printed.
skip() { echo "ok $1 # skipped: $2"; }

# check NAME cmd... — pass when cmd exits 0. cmd may be a shell function;
# wrap anything that can block in T.
check() {
	local name=$1 out rc
	shift
	out=$(mktemp "$VD_T/.check.XXXXXX")
	"$@" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$name"
	else
		fail "$name" "exit $rc from: $*"
		tail -n 15 "$out" | sed 's/^/    | /'
	fi
	rm -f "$out"
	return $rc
}

# T cmd... — run an external command under timeout.
T() { timeout -k 5 "$VD_TIMEOUT" "$@"; }

# ---------------------------------------------------------------- tests

# Inside a test: give up with a reason.
die() {
	echo "$*" >"$TD/.why"
	echo "die: $*" >&2
	exit 1
}

# Inside a test: run cmd, die with its stderr when it fails.
must() {
	local rc
	"$@" >"$TD/.must.out" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		die "exit $rc from: $* :: $(tail -n 3 "$TD/.must.out" | tr '\n' ' ')"
	fi
	cat "$TD/.must.out"
}

# vd_test NAME func [args...]
vd_test() {
	local name=$1 fn=$2 rc why
	shift 2
	if [ -n "${VD_ONLY:-}" ] && [[ $name != *$VD_ONLY* ]]; then
		return 0
	fi
	TD=$VD_T/$(echo "$name" | tr -c 'A-Za-z0-9._\n-' '_')
	rm -rf --one-file-system "$TD"
	mkdir -p "$TD"
	local t0=$SECONDS
	(
		cd "$TD" || exit 1
		"$fn" "$@"
	) >"$TD/.log" 2>&1
	rc=$?
	vd_cleanup
	if [ $rc -eq 0 ]; then
		if [ -s "$TD/.skip" ]; then
			skip "$name" "$(cat "$TD/.skip")"
		else
			pass "$name"
		fi
	else
		why="exited with status $rc"
		[ -s "$TD/.why" ] && why=$(cat "$TD/.why")
		fail "$name" "$why"
		grep -v '^die: ' "$TD/.log" | tail -n 12 | sed 's/^/    | /'
	fi
	[ -n "${VD_VERBOSE:-}" ] && echo "    ($((SECONDS - t0))s)"
	# Name the test during which a sanitizer report appeared (tests/run.sh
	# counts and prints the reports themselves after the script).
	local f
	for f in "$VD_SAN"/*; do
		[ -e "$f" ] || continue
		grep -qxF -- "$f" "$VD_T/.san-seen" 2>/dev/null && continue
		echo "$f" >>"$VD_T/.san-seen"
		echo "# sanitizer report $(basename "$f") appeared during $name"
	done
	return 0
}

# Inside a test: end it as skipped, with the reason.
skip_test() {
	echo "$*" >"$TD/.skip"
	exit 0
}

# vd_useradd NAME — make the unprivileged user NAME unless it exists;
# scripts running side by side (and other runs) make it once.
vd_useradd() {
	flock /tmp/.vdtest-useradd.lock sh -c \
		'id -u "$1" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$1" >/dev/null 2>&1' _ "$1"
}

# ---------------------------------------------------------------- mounts

vd_is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# PIDs of vdmount processes whose argument list holds MNT exactly.
vd_daemon_pids() {
	local p
	for p in $(pgrep -x vdmount 2>/dev/null); do
		if tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$1"; then
			echo "$p"
		fi
	done
}

# vd_alive PID — the process exists and is not a zombie (PID 1 here may
# reap orphans late).
vd_alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# vd_umount MNT — unmount, wait for the daemon to exit (so sanitizer logs
# are complete), forget MNT. Returns 1 (message on stderr) if the unmount
# failed or the daemon outlived it.
vd_umount() {
	local m=$1 pids p i rc=0
	pids=$(vd_daemon_pids "$m")
	if vd_is_mounted "$m"; then
		if ! timeout -k 2 20 fusermount3 -u "$m" 2>/dev/null; then
			timeout -k 2 20 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
			echo "vd_umount: fusermount3 -u $m failed" >&2
			rc=1
		fi
	fi
	# An ASan daemon's exit (LeakSanitizer) takes a while on a busy
	# machine: poll for up to 60 s.
	for p in $pids; do
		for i in $(seq 1200); do
			vd_alive "$p" || break
			sleep 0.05
		done
		if vd_alive "$p"; then
			echo "vd_umount: daemon $p still running 60 s after unmounting $m" >&2
			kill -TERM "$p" 2>/dev/null
			sleep 1
			kill -KILL "$p" 2>/dev/null
			rc=1
		fi
	done
	if vd_is_mounted "$m"; then
		umount -l "$m" 2>/dev/null
		echo "vd_umount: $m still mounted" >&2
		rc=1
	fi
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	return $rc
}

# vd_loop_forget DEV — DEV, detached already, is no longer this script's.
vd_loop_forget() {
	grep -vxF -- "$1" "$VD_LOOPS" >"$VD_LOOPS.new"
	mv "$VD_LOOPS.new" "$VD_LOOPS"
}

# vd_loop_detach DEV — detach a loop device this script made. Only while
# its backing file is still one of this run's: once detached, the name
# may be another script's (scripts run side by side, and other runs).
vd_loop_detach() {
	local b
	b=$(cat "/sys/block/${1#/dev/}/loop/backing_file" 2>/dev/null)
	case $b in
	"$VD_WORK"/*) timeout -k 2 20 losetup -d "$1" 2>/dev/null ;;
	esac
	vd_loop_forget "$1"
}

# vd_mount_rw FILE MNT — the kernel's read-write loop mount of FILE on
# MNT (recorded for the cleanup; the loop device goes with the unmount).
# A loop device being set up by another process at the same moment can
# make one attempt fail: three tries.
vd_mount_rw() {
	local i
	mkdir -p "$2"
	echo "$2" >>"$VD_MOUNTS"
	for i in 1 2 3; do
		timeout -k 5 60 mount -o loop "$1" "$2" && return 0
		sleep 1
	done
	return 1
}

# vd_umount_rw MNT — undo vd_mount_rw: unmount MNT and forget it.
vd_umount_rw() {
	timeout -k 5 60 umount "$1" || return 1
	grep -vxF -- "$1" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
}

# Detach every loop device and unmount every mount this script made.
vd_cleanup() {
	local l m
	while read -r l; do
		[ -n "$l" ] && vd_loop_detach "$l"
	done <"$VD_LOOPS"
	while read -r m; do
		[ -n "$m" ] && vd_umount "$m" 2>/dev/null
	done < <(tac "$VD_MOUNTS")
	: >"$VD_MOUNTS"
	: >"$VD_LOOPS"
}

vd_trap_exit() {
	local rc=$?
	trap - EXIT INT TERM
	vd_cleanup
	if [ -n "$VD_OWN_WORK" ]; then
		rm -rf --one-file-system "$VD_WORK"
	fi
	exit $rc
}
trap vd_trap_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# vd_mnt NAME — make an empty mountpoint folder in the test's folder.
vd_mnt() {
	mkdir -p "$TD/mnt/$1"
	echo "$TD/mnt/$1"
}

# vd_run_mount MNT ARGS... — run `$VDMOUNT ARGS...` (ARGS name MNT in the
# order the test wants), under timeout (120 s: a hang guard, generous for
# an ASan build on a busy machine), as ${VD_AS_USER:-the caller}.
# Stdout and stderr go to $TD/mount.out and $TD/mount.err; the exit status
# is returned. MNT is recorded first so the cleanup finds it even when the
# command fails halfway.
vd_run_mount() {
	local m=$1 rc
	shift
	echo "$m" >>"$VD_MOUNTS"
	if [ -n "${VD_AS_USER:-}" ]; then
		timeout -k 5 120 setpriv --reuid="$VD_AS_USER" --regid="$VD_AS_USER" \
			--clear-groups "$VDMOUNT" "$@" >"$TD/mount.out" 2>"$TD/mount.err" </dev/null
	else
		timeout -k 5 120 "$VDMOUNT" "$@" >"$TD/mount.out" 2>"$TD/mount.err" </dev/null
	fi
	rc=$?
	return $rc
}

# mount_ok MNT ARGS... — inside a test: the mount must succeed and be live
# when the command returns.
mount_ok() {
	local m=$1
	vd_run_mount "$@"
	local rc=$?
	if [ $rc -ne 0 ]; then
		die "vdmount ${*:2} failed (exit $rc): $(head -c 600 "$TD/mount.err" | tr '\n' ' ')"
	fi
	vd_is_mounted "$m" || die "vdmount ${*:2} returned 0 but $m is not mounted"
	return 0
}

# umount_ok MNT — inside a test.
umount_ok() {
	vd_umount "$1" 2>"$TD/.umount.err" ||
		die "unmount of $1: $(tr '\n' ' ' <"$TD/.umount.err")"
}

# mount_fails MNT SUBSTRING... -- ARGS... — inside a test: vdmount ARGS must
# exit non-zero with exactly one stderr line that starts "vdmount: " and
# contains every SUBSTRING (grep -F), and leave nothing mounted and no
# daemon running.
mount_fails() {
	local m=$1 s
	shift
	local subs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		subs+=("$1")
		shift
	done
	shift
	vd_run_mount "$m" "$@"
	local rc=$?
	local err=$TD/mount.err
	local msg
	msg=$(head -c 600 "$err" | tr '\n' ' ')
	if [ $rc -eq 0 ]; then
		die "vdmount $* succeeded; expected an error containing '${subs[*]}'"
	fi
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && die "vdmount $* timed out"
	for s in "${subs[@]}"; do
		grep -qF -- "$s" "$err" || die "stderr lacks '$s': $msg"
	done
	[ "$(wc -l <"$err")" -eq 1 ] || die "stderr is not one line: $msg"
	head -n 1 "$err" | grep -q '^vdmount: ' || die "stderr does not start with 'vdmount: ': $msg"
	vd_is_mounted "$m" && die "$m is mounted after a failed vdmount"
	# No process left behind: poll (for up to 60 s) rather than sleep.
	for _ in $(seq 600); do
		[ -z "$(vd_daemon_pids "$m")" ] && break
		sleep 0.1
	done
	[ -z "$(vd_daemon_pids "$m")" ] || die "a vdmount process is still running 60 s after the error"
	echo "got expected error (exit $rc): $msg"
	return 0
}

# ---------------------------------------------------------------- images

# vd_img NAME — print the cache folder of image set NAME, running
# `gen_NAME DIR` the first time in this run. The cache is shared by all
# scripts of the run for generators defined here in lib.sh, and private to
# the script for those the script defines.
vd_img() {
	local src key
	src=$(shopt -s extdebug && declare -F "gen_$1" | cut -d' ' -f3-)
	[ -n "$src" ] || {
		echo "vd_img: no function gen_$1" >&2
		return 1
	}
	if [ "$(basename "$src")" = lib.sh ]; then
		key=$1
	else
		key=$VD_SCRIPT.$1
	fi
	local d=$VD_WORK/img/$key lk rc=0
	if [ ! -e "$d/.ok" ]; then
		# Scripts run side by side (tests/run.sh): one builds, the
		# others wait for it.
		exec {lk}>"$VD_WORK/img/.$key.lock"
		flock "$lk"
		if [ ! -e "$d/.ok" ]; then
			rm -rf "$d"
			mkdir -p "$d"
			if (exec {lk}>&- && cd "$d" && "gen_$1" "$d") >"$d/.gen.log" 2>&1; then
				touch "$d/.ok"
			else
				echo "vd_img: gen_$1 failed: $(tail -n 5 "$d/.gen.log" | tr '\n' ' ')" >&2
				rc=1
			fi
		fi
		exec {lk}>&-
		[ $rc = 0 ] || return 1
	fi
	echo "$d"
}

# img_or_die NAME — inside a test.
img_or_die() {
	vd_img "$1" 2>"$TD/.img.err" || die "$(cat "$TD/.img.err")"
}

# qio FMT IMG CMD... — qemu-io with one -c per CMD; fails when any fails.
qio() {
	local fmt=$1 img=$2 c
	shift 2
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	local out
	out=$(timeout -k 5 120 qemu-io -f "$fmt" "${args[@]}" "$img" 2>&1) || {
		echo "$out" >&2
		return 1
	}
	# qemu-io exits 0 even when a command fails.
	if echo "$out" | grep -qiE 'error|failed|not supported|invalid'; then
		echo "$out" >&2
		return 1
	fi
}

# scatter FMT IMG SIZE SEED — writes of pattern bytes derived from SEED at
# offsets spread over an image of SIZE bytes: cluster-aligned, unaligned,
# crossing 1 MiB boundaries, and one ending at the very last byte.
scatter() {
	local fmt=$1 img=$2 size=$3 seed=$4
	local p=$(((seed * 37 + 0x11) % 255 + 1))
	local cmds=()
	local o l
	for spec in \
		"0 4096" \
		"$((65536 + 512 * (seed % 7))) 3000" \
		"$((1048576 - 100 - seed * 3)) 200" \
		"$((size / 3 + seed * 4099)) 135000" \
		"$((size / 2 - seed * 777)) 1" \
		"$((size - 1500)) 1500"; do
		o=${spec% *}
		l=${spec#* }
		[ "$o" -ge 0 ] && [ $((o + l)) -le "$size" ] || continue
		cmds+=("write -P $(printf '0x%02x' $p) $o $l")
		p=$((p % 255 + 1))
	done
	qio "$fmt" "$img" "${cmds[@]}"
}

# seed_raw FILE SIZE — a raw file with random data, compressible text,
# half-random half-text stretches and holes, at scattered offsets.
seed_raw() {
	local f=$1 size=$2 i
	truncate -s "$size" "$f"
	# Random (incompressible) data.
	for i in 0 5 11; do
		dd if=/dev/urandom of="$f" bs=4096 seek=$((i * size / 16 / 4096)) count=40 conv=notrunc status=none
	done
	# Compressible text.
	yes 'vdmount test data: the quick brown fox 0123456789' | head -c 300000 |
		dd of="$f" bs=65536 oflag=seek_bytes seek=$((size / 4 + 123)) conv=notrunc status=none
	# Partially compressible: alternate 1000 random bytes and 3000 text bytes.
	for i in $(seq 0 40); do
		{
			head -c 1000 /dev/urandom
			yes "partial $i" | head -c 3000
		} >>"$f.part"
	done
	dd if="$f.part" of="$f" bs=4096 seek=$((size / 2 / 4096)) conv=notrunc status=none
	rm -f "$f.part"
	# The last bytes of the disk.
	printf "end of disk" | dd of="$f" bs=512 oflag=seek_bytes seek=$((size - 11)) conv=notrunc status=none
	truncate -s "$size" "$f"
}

# Shared image set: a qcow2 (4 KiB clusters, from seeded data) under a
# qcow2 with scattered writes; top.qcow2 and base.qcow2, 8 MiB + 3.5 KiB.
gen_shared_chain() {
	local size=$((8 * 1024 * 1024 + 3584))
	seed_raw seed.raw "$size"
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw base.qcow2 || return 1
	rm -f seed.raw
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || return 1
	scatter qcow2 top.qcow2 "$size" 1
}

# poke FILE OFFSET HEXBYTES... — overwrite bytes in place, e.g. poke f 72 00 10.
poke() {
	local f=$1 off=$2 s='' b
	shift 2
	for b in "$@"; do s="$s\\x$b"; done
	printf "$s" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# peek FILE OFFSET N — N bytes as hex, no spaces.
peek() {
	od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# poke_be64 FILE OFFSET VALUE
poke_be64() {
	local h
	h=$(printf '%016x' "$3")
	# shellcheck disable=SC2046
	poke "$1" "$2" $(echo "$h" | sed 's/../& /g')
}

# ---------------------------------------------------------------- oracles

# vd_oracle IMG [qemu-img convert options...] — print the path of
# `qemu-img convert -O raw [options] IMG`, cached for the run.
vd_oracle() {
	local img=$1
	shift
	local key
	key=$(printf '%s\n' "$img" "$@" "$(stat -c '%s %Y' "$img")" | md5sum | cut -c1-16)
	local out=$VD_WORK/oracle/$key.raw tmp
	if [ ! -e "$out" ]; then
		tmp=$out.$BASHPID.tmp
		# From the image's folder: qemu opens a relative external data
		# file name from the working folder.
		(cd "$(dirname "$img")" &&
			timeout -k 5 300 qemu-img convert -O raw "$@" "$img" "$tmp") >&2 || {
			rm -f "$tmp"
			return 1
		}
		# another script may have made the same one meanwhile: the
		# same bytes
		mv "$tmp" "$out"
	fi
	echo "$out"
}

# cmp_files A B — inside a test; sizes first, then bytes.
cmp_files() {
	local sa sb out
	sa=$(T stat -c %s "$1") || die "stat $1 failed"
	sb=$(T stat -c %s "$2") || die "stat $2 failed"
	[ "$sa" = "$sb" ] || die "size of $1 is $sa, expected $sb (from $2)"
	out=$(T cmp -- "$1" "$2" 2>&1) || die "bytes differ: $out"
}

# random_reads FILE ORACLE [N] — N preads at random offsets and lengths
# (seeded, so a failure repeats), through O_DIRECT when the file system
# allows it, so the daemon sees unaligned requests rather than the page
# cache's; some cross or start at the end of the file.
random_reads() {
	timeout -k 5 "$VD_TIMEOUT" python3 - "$1" "$2" "${3:-200}" <<'EOF'
import os, random, sys
path, oracle, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = open(oracle, "rb")
size = os.path.getsize(oracle)
try:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    os.pread(fd, 3, 1)
    mode = "O_DIRECT"
except OSError:
    # Not allowed, or only aligned (a local file system).
    fd = os.open(path, os.O_RDONLY)
    mode = "buffered"
seed = random.randrange(1 << 30)
rng = random.Random(seed)
for i in range(n):
    r = rng.random()
    if r < 0.05:
        off = size - rng.randrange(0, 70000)
    elif r < 0.07:
        off = size
    else:
        off = rng.randrange(0, max(size, 1))
    off = max(off, 0)
    # 8192 and 8193: either side of where the mount stops copying and splices
    ln = rng.choice((1, 511, 512, 4096, 8192, 8193, 65535, 65536, 200000,
                     rng.randrange(1, 300000)))
    got = os.pread(fd, ln, off)
    want.seek(off)
    exp = want.read(ln)
    if got != exp:
        k = next((j for j in range(min(len(got), len(exp))) if got[j] != exp[j]),
                 min(len(got), len(exp)))
        sys.exit("%s pread(%d bytes at %d) (seed %d, read %d): got %d bytes, "
                 "expected %d; first difference at %d"
                 % (mode, ln, off, seed, i, len(got), len(exp), off + k))
print("%d %s reads match (seed %d)" % (n, mode, seed))
EOF
}

# cmp_oracle FILE IMG [convert options...] — inside a test: FILE (through
# the mount) must equal qemu-img convert -O raw of IMG, read sequentially
# and at random.
cmp_oracle() {
	local f=$1 img=$2 o
	shift 2
	o=$(vd_oracle "$img" "$@" 2>"$TD/.oracle.err") ||
		die "qemu-img convert $* $img failed: $(tr '\n' ' ' <"$TD/.oracle.err")"
	cmp_files "$f" "$o"
	must random_reads "$f" "$o" >/dev/null
}

# range_oracle IMG FMT OFF LEN OUT — qemu's view of LEN bytes at OFF of the
# image (through the raw driver's offset/size), written to OUT.
range_oracle() {
	timeout -k 5 120 qemu-img convert -O raw --image-opts \
		"driver=raw,offset=$3,size=$4,file.driver=$2,file.file.filename=$1" "$5"
}

# cmp_range FILE IMG FMT OFF LEN — inside a test.
cmp_range() {
	local f=$1 img=$2 fmt=$3 off=$4 len=$5
	range_oracle "$img" "$fmt" "$off" "$len" "$TD/.want" 2>"$TD/.oracle.err" ||
		die "range oracle failed: $(tr '\n' ' ' <"$TD/.oracle.err")"
	T dd if="$f" of="$TD/.got" bs=65536 iflag=skip_bytes,count_bytes \
		skip="$off" count="$len" status=none 2>"$TD/.dd.err" ||
		die "dd of $len bytes at $off from $f failed: $(cat "$TD/.dd.err")"
	local out
	out=$(cmp "$TD/.got" "$TD/.want" 2>&1) ||
		die "range $off+$len differs: $out"
	rm -f "$TD/.got" "$TD/.want"
}

# check_root_tree MNT SIZE — inside a test: MNT is 0555 and holds only
# disk.raw, 0444 regular, SIZE bytes.
check_root_tree() {
	local m=$1 size=$2 got
	got=$(T stat -c '%a %F' "$m") || die "stat $m failed"
	[ "$got" = "555 directory" ] || die "root is '$got', expected '555 directory'"
	T ls -A "$m" >"$TD/.ls" || die "ls $m failed"
	grep -qx disk.raw "$TD/.ls" || die "no disk.raw in $m: $(tr '\n' ' ' <"$TD/.ls")"
	got=$(T stat -c '%a %F %s' "$m/disk.raw") || die "stat disk.raw failed"
	[ "$got" = "444 regular file $size" ] ||
		die "disk.raw is '$got', expected '444 regular file $size'"
}

# virtual_size IMG — as qemu reports it.
virtual_size() {
	qemu-img info --output=json "$@" | sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p'
}

# mount_compare IMG [vdmount options...] — inside a test: mount IMG at a
# fresh mountpoint, check the tree, compare disk.raw with the oracle,
# unmount.
mount_compare() {
	local img=$1
	shift
	local m
	m=$(vd_mnt "mc$RANDOM")
	mount_ok "$m" "$@" "$img" "$m"
	check_root_tree "$m" "$(virtual_size "$img")"
	cmp_oracle "$m/disk.raw" "$img"
	umount_ok "$m"
}

# seek_check FILE MAPJSON WRITES... — see tests/seekcheck.py.
seek_check() {
	timeout -k 5 "$VD_TIMEOUT" python3 "$VD_LIB_DIR/seekcheck.py" "$@"
}

# ---------------------------------------------------------- kernel mounts

# need_loop — inside a test: skip it where loop devices cannot be made.
need_loop() {
	[ "$(id -u)" = 0 ] || skip_test "not root: loop devices need root"
	[ -e /dev/loop-control ] || skip_test "no /dev/loop-control"
}

# kmount FILE OFF LEN MNT — inside a test: the kernel's read-only mount
# of LEN bytes at OFF of FILE, through a read-only loop device (made by
# losetup, not mount -o loop: libmount refuses a second loop device over
# the same bytes). Both are recorded, so the test's cleanup detaches and
# unmounts them on every exit path. KMOUNT_OPTS adds mount options
# (norecovery).
kmount() {
	local f=$1 off=$2 len=$3 m=$4 dev
	need_loop
	mkdir -p "$m"
	dev=$(T losetup -r -f --show -o "$off" --sizelimit "$len" "$f" 2>"$TD/.kmount.err") ||
		die "losetup of $f at $off+$len failed: $(cat "$TD/.kmount.err")"
	echo "$dev" >>"$VD_LOOPS"
	echo "$dev" >"$m.dev"
	echo "$m" >>"$VD_MOUNTS"
	T mount -o ro,nodev,nosuid,noexec${KMOUNT_OPTS:+,$KMOUNT_OPTS} "$dev" "$m" 2>"$TD/.kmount.err" ||
		die "kernel mount of $f at $off+$len failed: $(cat "$TD/.kmount.err")"
}

kumount_ok() {
	kumount "$1" || die "umount $1 failed"
	vd_loop_detach "$(cat "$1.dev")"
}

# kumount MNT — unmount a kernel mount made by kmount.
kumount() {
	timeout -k 5 60 umount "$1" || return 1
	grep -vxF -- "$1" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
}

vd_finish() {
	exit 0
}
