#!/bin/bash
# tests/run.sh — run every unit test binary and image test script.
#
#   BUILD=build bash tests/run.sh [PATTERN]
#
# PATTERN (optional, a glob) runs only the t-*.sh scripts whose name matches *PATTERN*
# (and then no unit binaries unless it matches "unit").
# Unit binaries: $BUILD/asan/tests/*, each printing a last line
# "N passed, M failed". Image tests: tests/t-*.sh in name order, each
# printing "ok NAME" / "FAIL NAME: why" lines. A sanitizer report written
# while a script ran counts as one more failure. The last line printed is
# "N passed, M failed"; the exit status is non-zero when M > 0.
set -u
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${BUILD:=build}"
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
: "${VDMOUNT:=$BUILD/asan/vdmount}"
case $VDMOUNT in /*) ;; *) VDMOUNT=$PWD/$VDMOUNT ;; esac
export BUILD VDMOUNT

PATTERN=${1:-}

# Hang guards, not time limits, scaled by VD_TIMEOUT (the seconds one
# command may take, tests/lib.sh; raise it on a machine far busier than
# two cores at load 6): 30 times it per unit binary, 60 per script.
VD_TIMEOUT=${VD_TIMEOUT:-60}
export VD_TIMEOUT

VD_WORK=$(mktemp -d /tmp/vdtest.XXXXXX) || exit 1
# Readable by the unprivileged user of t-*-user.sh.
chmod 755 "$VD_WORK"
mkdir -m 1777 "$VD_WORK/san"
chmod 1777 "$VD_WORK/san"
export VD_WORK
export ASAN_OPTIONS=log_path=$VD_WORK/san/asan:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$VD_WORK/san/ubsan

PASSED=0
FAILED=0

# Unmount whatever is still mounted under the work folder; detach loop
# devices whose backing file lives there. Prints what it had to clean.
cleanup_leftovers() {
	local m l left=0
	while read -r l; do
		[ -n "$l" ] || continue
		echo "run.sh: detaching leftover loop device $l"
		losetup -d "$l" 2>/dev/null
		left=1
	done < <(losetup -l -n -O NAME,BACK-FILE 2>/dev/null |
		awk -v w="$VD_WORK/" 'index($2, w) == 1 { print $1 }')
	while read -r m; do
		[ -n "$m" ] || continue
		echo "run.sh: unmounting leftover $m"
		timeout -k 2 20 fusermount3 -u "$m" 2>/dev/null ||
			timeout -k 2 20 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		left=1
	done < <(awk -v w="$VD_WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | tac)
	return $left
}

# Any sanitizer report is a failure: print it (a report whose stack was
# printed already in this run only by name), delete it.
declare -A SAN_SEEN=()
check_sanitizers() {
	local where=$1 f sig
	for f in "$VD_WORK"/san/*; do
		[ -e "$f" ] || continue
		sig=$(grep -E '^ +#[0-9]+ |SUMMARY' "$f" | head -n 8 |
			sed -E 's/0x[0-9a-f]+//g; s/==[0-9]+==//g' | md5sum | cut -c1-12)
		if [ -n "${SAN_SEEN[$sig]:-}" ]; then
			echo "FAIL sanitizer($where): $(basename "$f"): same report as ${SAN_SEEN[$sig]}"
		else
			SAN_SEEN[$sig]="$where $(basename "$f")"
			echo "FAIL sanitizer($where): $(basename "$f")"
			sed 's/^/    | /' "$f" | head -n 60
		fi
		rm -f "$f"
		FAILED=$((FAILED + 1))
	done
}

CHILD=
TAIL=
finish() {
	trap - EXIT INT TERM
	# Interrupted: let the running script clean up its own mounts first.
	if [ -n "$CHILD" ]; then
		kill -TERM "$CHILD" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$CHILD" 2>/dev/null || break
			sleep 0.2
		done
	fi
	[ -n "$TAIL" ] && kill "$TAIL" 2>/dev/null
	cleanup_leftovers >/dev/null
	rm -rf --one-file-system "$VD_WORK"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T0=$SECONDS

# ---------------------------------------------------------------- unit tests
if [ -z "$PATTERN" ] || [[ unit == *$PATTERN* ]]; then
	for bin in "$BUILD"/asan/tests/*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		name=unit/$(basename "$bin")
		out=$VD_WORK/unit.out
		timeout -k 5 $((30 * VD_TIMEOUT)) "$bin" >"$out" 2>&1
		rc=$?
		last=$(tail -n 1 "$out")
		if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
			p=${BASH_REMATCH[1]}
			f=${BASH_REMATCH[2]}
			PASSED=$((PASSED + p))
			FAILED=$((FAILED + f))
			if [ "$f" -gt 0 ] || [ $rc -ne 0 ]; then
				echo "FAIL $name: $last (exit $rc)"
				grep -v -E '^(ok|PASS)\b' "$out" | tail -n 30 | sed 's/^/    | /'
				[ "$f" -eq 0 ] && FAILED=$((FAILED + 1))
			else
				echo "ok $name: $last"
			fi
		else
			echo "FAIL $name: exit $rc, last line not 'N passed, M failed': $last"
			tail -n 30 "$out" | sed 's/^/    | /'
			FAILED=$((FAILED + 1))
		fi
		check_sanitizers "$name"
	done
fi

# ---------------------------------------------------------------- image tests
if [ ! -x "$VDMOUNT" ]; then
	echo "FAIL image-tests: $VDMOUNT is missing; build with make check-build"
	FAILED=$((FAILED + 1))
else
	for script in "$SRC"/tests/t-*.sh; do
		[ -e "$script" ] || continue
		sname=$(basename "$script" .sh)
		if [ -n "$PATTERN" ] && [[ $sname != *$PATTERN* ]]; then
			continue
		fi
		echo "# $sname"
		ts=$SECONDS
		out=$VD_WORK/$sname.out
		: >"$out" # exists before tail opens it
		# In the background, so a signal to run.sh reaches its trap
		# at once; tail shows each line as it comes.
		timeout -k 10 $((60 * VD_TIMEOUT)) bash "$script" </dev/null >"$out" 2>&1 &
		CHILD=$!
		tail -s 0.1 -n +1 -f --pid="$CHILD" "$out" &
		TAIL=$!
		wait "$CHILD"
		rc=$?
		CHILD=
		wait "$TAIL"
		TAIL=
		p=$(grep -c '^ok ' "$out")
		f=$(grep -c '^FAIL ' "$out")
		PASSED=$((PASSED + p))
		FAILED=$((FAILED + f))
		if [ "$rc" -ne 0 ]; then
			echo "FAIL $sname: script exited with status $rc"
			FAILED=$((FAILED + 1))
		fi
		if ! cleanup_leftovers; then
			echo "FAIL $sname: left mounts or loop devices behind"
			FAILED=$((FAILED + 1))
		fi
		check_sanitizers "$sname"
		[ -n "${VD_VERBOSE:-}" ] && echo "# $sname: $((SECONDS - ts)) s"
	done
fi

echo "# $((SECONDS - T0)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
