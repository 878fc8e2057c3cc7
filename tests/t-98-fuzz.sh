#!/bin/bash
# t-98-fuzz: the fuzz targets' replay programs (build/asan/fuzz/fuzz-NAME,
# tests/fuzz/replay.c) over every saved crasher (tests/fuzz/crashers/NAME/:
# tiny hostile images that once crashed, hung or leaked) and over a fresh
# seed corpus made by tests/fuzz/seeds.sh with real tools. Fails on a
# non-zero exit, a timeout, or a sanitizer report (tests/run.sh counts
# the reports ASan and UBSan write to $VD_SAN).
. "$(dirname "$0")/lib.sh"

FUZZ_BIN=$BUILD/asan/fuzz
FUZZ_SRC=$VD_SRC_DIR/tests/fuzz

gen_seeds() {
	bash "$FUZZ_SRC/seeds.sh" "$1/s"
}

# replay NAME DIR — every input under DIR through target NAME.
replay() {
	local t=$1 dir=$2 out rc n
	[ -x "$FUZZ_BIN/fuzz-$t" ] || die "$FUZZ_BIN/fuzz-$t is missing; make check-build"
	out=$TD/replay-$t.out
	T "$FUZZ_BIN/fuzz-$t" "$dir" >"$out" 2>&1
	rc=$?
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && die "fuzz-$t timed out on $dir"
	[ $rc -eq 0 ] || die "fuzz-$t exit $rc on $dir: $(tail -n 5 "$out" | tr '\n' ' ')"
	n=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$out")
	[ -n "$n" ] && [ "$n" -gt 0 ] || die "fuzz-$t replayed nothing from $dir"
	echo "fuzz-$t: $n inputs from $dir"
}

t_crashers() {
	local t=$1
	[ -d "$FUZZ_SRC/crashers/$t" ] || skip_test "no crashers saved for $t"
	replay "$t" "$FUZZ_SRC/crashers/$t"
}

t_seeds() {
	local t=$1 d
	d=$(img_or_die seeds)
	[ -d "$d/s/$t" ] && [ -n "$(ls "$d/s/$t")" ] || die "seeds.sh made no seeds for $t"
	replay "$t" "$d/s/$t"
}

# Every target source has a replay program, and every crashers folder a
# target.
t_targets() {
	local f t
	for f in "$FUZZ_SRC"/fuzz-*.c; do
		t=$(basename "$f" .c)
		[ "$t" = fuzz-common ] && continue
		[ -x "$FUZZ_BIN/$t" ] || die "$t has no replay program in $FUZZ_BIN"
	done
	for f in "$FUZZ_SRC"/crashers/*/; do
		[ -d "$f" ] || continue
		t=$(basename "$f")
		[ -f "$FUZZ_SRC/fuzz-$t.c" ] || die "crashers/$t has no target fuzz-$t.c"
	done
}

vd_test fuzz-targets t_targets
for f in "$FUZZ_SRC"/fuzz-*.c; do
	t=$(basename "$f" .c)
	t=${t#fuzz-}
	[ "$t" = common ] && continue
	vd_test "fuzz-crashers-$t" t_crashers "$t"
	vd_test "fuzz-seeds-$t" t_seeds "$t"
done
