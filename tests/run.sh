#!/bin/bash
# tests/run.sh — run every unit test binary and image test script.
#
#   BUILD=build bash tests/run.sh [PATTERN]
#
# PATTERN (optional, a glob) runs only the t-*.sh scripts whose name matches *PATTERN*
# (and then no unit binaries unless it matches "unit").
# Unit binaries: $BUILD/asan/tests/*, each printing a last line
# "N passed, M failed". Image tests: tests/t-*.sh, each printing
# "ok NAME" / "FAIL NAME: why" lines. A sanitizer report written while a
# binary or script ran counts as one more failure. The last line printed
# is "N passed, M failed"; the exit status is non-zero when M > 0.
#
# Jobs (each unit binary, each script) run VD_JOBS at a time (default 2,
# one per core of the machines we test on; 1 runs them one after the
# other and shows each script's lines as they come). Each job's lines are
# printed together when it ends, followed by "# NAME: N s". The slow
# scripts start first so that the lanes end together. Each job has its
# own sanitizer log folder ($VD_SAN) and its leftover mounts and loop
# devices are looked for under its own folders only; what is left under
# the shared image cache is looked for once all jobs have ended.
set -u
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${BUILD:=build}"
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
: "${VDMOUNT:=$BUILD/asan/vdmount}"
case $VDMOUNT in /*) ;; *) VDMOUNT=$PWD/$VDMOUNT ;; esac
export BUILD VDMOUNT

PATTERN=${1:-}
VD_JOBS=${VD_JOBS:-2}
[[ $VD_JOBS =~ ^[1-9][0-9]*$ ]] || VD_JOBS=1

# Hang guards, not time limits, scaled by VD_TIMEOUT (the seconds one
# command may take, tests/lib.sh; raise it on a machine far busier than
# two cores at load 6): 30 times it per unit binary, 60 per script.
VD_TIMEOUT=${VD_TIMEOUT:-60}
export VD_TIMEOUT

# Longest first (measured on two cores), so no lane is left with a long
# script at the end; every other job follows in name order.
SLOW_FIRST=" t-84-vhdx t-91-ext t-99-hostile t-86-lvm t-91-xfs t-94-vfat
t-97-vdtool-info t-86-ntfs t-87-btrfs t-95-vfat-hostile t-90-parts t-85-vdi
t-98-fuzz t-81-vhd t-96-vdtool t-80-vmdk t-99-stress t-89-luks t-82-ova "
SLOW_FIRST=${SLOW_FIRST//$'\n'/ }

VD_WORK=$(mktemp -d /tmp/vdtest.XXXXXX) || exit 1
# Readable by the unprivileged user of t-*-user.sh.
chmod 755 "$VD_WORK"
mkdir -m 1777 "$VD_WORK/san"
chmod 1777 "$VD_WORK/san"
mkdir "$VD_WORK/res"
export VD_WORK

# cleanup_leftovers DIR... — unmount whatever is still mounted under the
# DIRs; detach loop devices whose backing file lives there. Prints what
# it had to clean; returns 1 when there was something.
cleanup_leftovers() {
	local m l left=0 dirs
	dirs=$(printf '%s\n' "$@")
	while read -r l; do
		[ -n "$l" ] || continue
		echo "run.sh: detaching leftover loop device $l"
		losetup -d "$l" 2>/dev/null
		left=1
	done < <(losetup -l -n -O NAME,BACK-FILE 2>/dev/null |
		awk -v d="$dirs" 'BEGIN { n = split(d, w, "\n") }
			{ for (i = 1; i <= n; i++) if (index($2, w[i]) == 1) { print $1; break } }')
	while read -r m; do
		[ -n "$m" ] || continue
		echo "run.sh: unmounting leftover $m"
		timeout -k 2 20 fusermount3 -u "$m" 2>/dev/null ||
			timeout -k 2 20 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		left=1
	done < <(awk -v d="$dirs" 'BEGIN { n = split(d, w, "\n") }
			{ for (i = 1; i <= n; i++) if (index($2, w[i]) == 1) { print $2; break } }' /proc/mounts | tac)
	return $left
}

# check_sanitizers WHERE DIR — any report in DIR is a failure: print it
# (a report whose stack was printed already for this job only by name),
# delete it. Prints the number of reports as the last line "# san N".
check_sanitizers() {
	local where=$1 dir=$2 f sig n=0
	declare -A seen=()
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		sig=$(grep -E '^ +#[0-9]+ |SUMMARY' "$f" | head -n 8 |
			sed -E 's/0x[0-9a-f]+//g; s/==[0-9]+==//g' | md5sum | cut -c1-12)
		if [ -n "${seen[$sig]:-}" ]; then
			echo "FAIL sanitizer($where): $(basename "$f"): same report as ${seen[$sig]}"
		else
			seen[$sig]=$(basename "$f")
			echo "FAIL sanitizer($where): $(basename "$f")"
			sed 's/^/    | /' "$f" | head -n 60
		fi
		rm -f "$f"
		n=$((n + 1))
	done
	return $n
}

# job_env NAME — this job's own sanitizer logs.
job_env() {
	VD_SAN=$VD_WORK/san/$1
	mkdir -p "$VD_SAN"
	chmod 1777 "$VD_SAN"
	export VD_SAN
	export ASAN_OPTIONS=log_path=$VD_SAN/asan:detect_leaks=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$VD_SAN/ubsan
}

# run_unit BIN — one unit binary; its counts go to res/NAME.cnt.
run_unit() {
	local bin=$1 name out rc last p=0 f=0
	name=unit/$(basename "$bin")
	job_env "unit.$(basename "$bin")"
	out=$VD_WORK/res/unit.$(basename "$bin").raw
	timeout -k 5 $((30 * VD_TIMEOUT)) "$bin" >"$out" 2>&1
	rc=$?
	last=$(tail -n 1 "$out")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		p=${BASH_REMATCH[1]}
		f=${BASH_REMATCH[2]}
		if [ "$f" -gt 0 ] || [ $rc -ne 0 ]; then
			echo "FAIL $name: $last (exit $rc)"
			grep -v -E '^(ok|PASS)\b' "$out" | tail -n 30 | sed 's/^/    | /'
			[ "$f" -eq 0 ] && f=1
		else
			echo "ok $name: $last"
		fi
	else
		echo "FAIL $name: exit $rc, last line not 'N passed, M failed': $last"
		tail -n 30 "$out" | sed 's/^/    | /'
		f=1
	fi
	check_sanitizers "$name" "$VD_SAN"
	f=$((f + $?))
	echo "$p $f" >"$VD_WORK/res/unit.$(basename "$bin").cnt"
}

# run_script SCRIPT — one image test script, run in the background so a
# TERM to this job reaches the script at once.
run_script() {
	local script=$1 sname rc p f out cpid
	sname=$(basename "$script" .sh)
	job_env "$sname"
	out=$VD_WORK/res/$sname.raw
	: >"$out"
	echo "# $sname"
	timeout -k 10 $((60 * VD_TIMEOUT)) bash "$script" </dev/null >"$out" 2>&1 &
	cpid=$!
	trap 'kill -TERM $cpid 2>/dev/null' TERM
	while :; do
		wait "$cpid"
		rc=$?
		kill -0 "$cpid" 2>/dev/null || break
	done
	trap - TERM
	cat "$out"
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $sname: script exited with status $rc"
		f=$((f + 1))
	fi
	if ! cleanup_leftovers "$VD_WORK/t/$sname/" "$VD_WORK/img/$sname."; then
		echo "FAIL $sname: left mounts or loop devices behind"
		f=$((f + 1))
	fi
	check_sanitizers "$sname" "$VD_SAN"
	f=$((f + $?))
	echo "$p $f" >"$VD_WORK/res/$sname.cnt"
}

# --------------------------------------------------------------- the jobs
SCRIPTS=()
MISSING=0
if [ ! -x "$VDMOUNT" ]; then
	MISSING=1
else
	for script in "$SRC"/tests/t-*.sh; do
		[ -e "$script" ] || continue
		sname=$(basename "$script" .sh)
		[ -n "$PATTERN" ] && [[ $sname != *$PATTERN* ]] && continue
		SCRIPTS+=("$sname")
	done
fi
# "unit PATH" or "script PATH": the slow scripts, the unit binaries, the
# other scripts.
ORDERED=()
for s in $SLOW_FIRST; do
	[[ " ${SCRIPTS[*]} " == *" $s "* ]] && ORDERED+=("script $SRC/tests/$s.sh")
done
if [ -z "$PATTERN" ] || [[ unit == *$PATTERN* ]]; then
	for bin in "$BUILD"/asan/tests/*; do
		[ -f "$bin" ] && [ -x "$bin" ] && ORDERED+=("unit $bin")
	done
fi
for s in "${SCRIPTS[@]}"; do
	[[ $SLOW_FIRST == *" $s "* ]] || ORDERED+=("script $SRC/tests/$s.sh")
done

declare -A RUNNING=()  # pid -> job name
declare -A STARTED=()  # pid -> $SECONDS at start
finish() {
	trap - EXIT INT TERM
	local pid
	# Interrupted: let the running scripts clean up their own mounts first.
	for pid in "${!RUNNING[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for _ in $(seq 100); do
		local alive=0
		for pid in "${!RUNNING[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.2
	done
	cleanup_leftovers "$VD_WORK/" >/dev/null
	rm -rf --one-file-system "$VD_WORK"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T0=$SECONDS
PASSED=0
FAILED=0

# job_done PID — print the job's lines and add up its counts.
job_done() {
	local pid=$1 name=${RUNNING[$1]} c
	[ "$VD_JOBS" -gt 1 ] && cat "$VD_WORK/res/$name.out"
	c=$(cat "$VD_WORK/res/$name.cnt" 2>/dev/null)
	if [[ $c =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
		PASSED=$((PASSED + BASH_REMATCH[1]))
		FAILED=$((FAILED + BASH_REMATCH[2]))
	else
		echo "FAIL $name: the job ended without its counts"
		FAILED=$((FAILED + 1))
	fi
	case $name in unit.*) ;; *) echo "# $name: $((SECONDS - STARTED[$pid])) s" ;; esac
	unset "RUNNING[$pid]" "STARTED[$pid]"
}

for j in "${ORDERED[@]}"; do
	while [ "${#RUNNING[@]}" -ge "$VD_JOBS" ]; do
		wait -n -p donepid "${!RUNNING[@]}"
		[ -n "${donepid:-}" ] && [ -n "${RUNNING[$donepid]:-}" ] && job_done "$donepid"
	done
	kind=${j%% *}
	path=${j#* }
	if [ "$kind" = unit ]; then
		name=unit.$(basename "$path")
		run_unit "$path" >"$VD_WORK/res/$name.out" 2>&1 &
	else
		name=$(basename "$path" .sh)
		run_script "$path" >"$VD_WORK/res/$name.out" 2>&1 &
	fi
	pid=$!
	RUNNING[$pid]=$name
	STARTED[$pid]=$SECONDS
	if [ "$VD_JOBS" = 1 ]; then
		# one at a time: show the lines as they come
		tail -s 0.1 -n +1 -f --pid="$pid" "$VD_WORK/res/$name.out" &
		tailpid=$!
		wait "$pid"
		wait "$tailpid"
		job_done "$pid"
	fi
done
while [ "${#RUNNING[@]}" -gt 0 ]; do
	donepid=
	wait -n -p donepid "${!RUNNING[@]}"
	[ -n "${donepid:-}" ] && [ -n "${RUNNING[$donepid]:-}" ] && job_done "$donepid"
done

if [ "$MISSING" = 1 ]; then
	echo "FAIL image-tests: $VDMOUNT is missing; build with make check-build"
	FAILED=$((FAILED + 1))
fi
# What a shared image builder left behind, and reports written outside
# any job's folder.
if ! cleanup_leftovers "$VD_WORK/"; then
	echo "FAIL run: mounts or loop devices were left behind"
	FAILED=$((FAILED + 1))
fi
check_sanitizers run "$VD_WORK/san"
FAILED=$((FAILED + $?))

echo "# $((SECONDS - T0)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
