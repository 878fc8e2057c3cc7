#!/bin/bash
# tests/fuzz/run.sh — make fuzz: every libFuzzer target for a while.
#
#   BUILD=build FUZZ_SECONDS=120 FUZZ_TARGETS="qcow2 ext" FUZZ_JOBS=1 \
#       bash tests/fuzz/run.sh
#
# Builds the library and each tests/fuzz/fuzz-NAME.c with clang-14
# -fsanitize=fuzzer,address,undefined into $BUILD/fuzz/, makes seed
# corpora once into $BUILD/fuzz/seeds/ (seeds.sh), then runs each target
# for FUZZ_SECONDS (default 120) in libFuzzer's fork mode, which keeps
# going past a crash: the grown corpus stays in $BUILD/fuzz/corpus/NAME,
# crashes, timeouts and leaks go to $BUILD/fuzz/artifacts/NAME/, the log
# to $BUILD/fuzz/NAME.log. FUZZ_TARGETS names some targets (default all);
# FUZZ_JOBS targets run at once (default 1). Ends with a summary line per
# target: seconds, executions, new artifacts. Exit 1 when any target left
# a new artifact. To keep one as a regression test, minimise it
# (build/fuzz/fuzz-NAME -minimize_crash=1 -runs=2000 FILE) and copy it
# into tests/fuzz/crashers/NAME/ (t-98-fuzz.sh replays that folder).
set -u
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${BUILD:=build}"
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
OUT=$BUILD/fuzz
: "${FUZZ_SECONDS:=120}"
: "${FUZZ_JOBS:=1}"
CC=clang-14

if ! command -v $CC >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "fuzz: installing clang-14 (libFuzzer)"
		apt-get install -y -q clang-14 >/dev/null || true
	fi
	command -v $CC >/dev/null || {
		echo "fuzz: clang-14 is needed for libFuzzer: apt-get install clang-14" >&2
		exit 2
	}
fi

ALL=$(cd "$SRC/tests/fuzz" && ls fuzz-*.c | grep -v '^fuzz-common\.c$' |
	sed 's/^fuzz-//; s/\.c$//')
TARGETS=${FUZZ_TARGETS:-$ALL}
for t in $TARGETS; do
	[ -f "$SRC/tests/fuzz/fuzz-$t.c" ] || {
		echo "fuzz: no target '$t' (have: $(echo $ALL))" >&2
		exit 2
	}
done

# ---------------------------------------------------------------- build
PKGS="zlib libzstd libdeflate ext2fs com_err libntfs-3g libcryptsetup libcrypto lzo2 libxxhash libb2"
CF="-std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I$SRC $(pkg-config --cflags $PKGS)
    -pthread -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
    -fno-sanitize-recover=undefined"
LIBS="$(pkg-config --libs $PKGS) -pthread"
mkdir -p "$OUT/obj"
# A header newer than the stamp rebuilds everything; a .c newer than its
# object rebuilds that object.
stamp=$OUT/obj/.stamp
newest_h=$(find "$SRC/common" "$SRC/core" "$SRC/volumes" "$SRC/fsread" "$SRC/ns" \
	-name '*.h' -newer "$stamp" 2>/dev/null | head -n 1)
[ -e "$stamp" ] || newest_h=all
objs=()
pids=()
for f in "$SRC"/common/*.c "$SRC"/core/*.c "$SRC"/volumes/*.c "$SRC"/fsread/*.c "$SRC"/ns/*.c; do
	o=$OUT/obj/$(echo "${f#"$SRC"/}" | tr / _).o
	objs+=("$o")
	if [ -n "$newest_h" ] || [ ! -e "$o" ] || [ "$f" -nt "$o" ]; then
		$CC $CF -fsanitize=fuzzer-no-link -c "$f" -o "$o" &
		pids+=($!)
		[ ${#pids[@]} -ge 2 ] && { wait "${pids[0]}" || exit 1; pids=("${pids[@]:1}"); }
	fi
done
for p in "${pids[@]}"; do wait "$p" || exit 1; done
touch "$stamp"
for t in $TARGETS; do
	$CC $CF -fsanitize=fuzzer -o "$OUT/fuzz-$t" "$SRC/tests/fuzz/fuzz-$t.c" \
		"$SRC/tests/fuzz/fuzz-common.c" "${objs[@]}" $LIBS || exit 1
done

# ---------------------------------------------------------------- seeds
if [ ! -e "$OUT/seeds/.ok" ]; then
	echo "fuzz: making seed corpora in $OUT/seeds"
	rm -rf --one-file-system "$OUT/seeds"
	bash "$SRC/tests/fuzz/seeds.sh" "$OUT/seeds" >"$OUT/seeds.log" 2>&1 || {
		echo "fuzz: seeds.sh failed: $(tail -n 5 "$OUT/seeds.log")" >&2
		exit 1
	}
	touch "$OUT/seeds/.ok"
fi

# ---------------------------------------------------------------- run
# Largest input per target: seeds are at most 4 MiB; formats whose
# metadata sits at the start get less, so mutations land there.
max_len() {
	case $1 in
	vmdk-desc) echo 65536 ;;
	xpress | lzx) echo 70000 ;; # one chunk: 64 KiB at most
	vmdk | ova) echo 1048576 ;;
	qcow2) echo 2097152 ;;
	*) echo 4194304 ;;
	esac
}

run_one() {
	local t=$1 art=$OUT/artifacts/$1 dict=() before after t0 execs
	mkdir -p "$art" "$OUT/corpus/$t" "$OUT/seeds/$t"
	for d in "$SRC/tests/fuzz/dict/$t.dict" "$SRC/tests/fuzz/dict/${t%%-*}.dict"; do
		[ -f "$d" ] && { dict=(-dict="$d"); break; }
	done
	before=$(ls "$art" | wc -l)
	t0=$SECONDS
	# The binary is copied so a rebuild does not disturb a running fuzzer.
	cp "$OUT/fuzz-$t" "$OUT/run-$t"
	(cd "$art" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		timeout -k 30 $((FUZZ_SECONDS + 120)) "$OUT/run-$t" \
		-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$t")" \
		-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
		-artifact_prefix="$art/" "${dict[@]}" \
		"$OUT/corpus/$t" "$OUT/seeds/$t") >"$OUT/$t.log" 2>&1
	rm -f "$OUT/run-$t"
	after=$(ls "$art" | wc -l)
	execs=$(grep -oE '^#[0-9]+' "$OUT/$t.log" | tail -n 1 | tr -d '#')
	printf 'fuzz %-10s %4d s  %10s execs  %3d corpus  %d new artifacts%s\n' \
		"$t" $((SECONDS - t0)) "${execs:-?}" "$(ls "$OUT/corpus/$t" | wc -l)" \
		$((after - before)) "$([ $after -gt $before ] && echo " in $art")" \
		>"$OUT/$t.summary"
}

running=0
for t in $TARGETS; do
	echo "fuzz: $t for $FUZZ_SECONDS s (log $OUT/$t.log)"
	run_one "$t" &
	running=$((running + 1))
	if [ $running -ge "$FUZZ_JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
rc=0
for t in $TARGETS; do
	cat "$OUT/$t.summary"
	grep -q ' 0 new artifacts' "$OUT/$t.summary" || rc=1
done
exit $rc
