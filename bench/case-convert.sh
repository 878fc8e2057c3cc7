# bench/case-convert.sh — writing images (issue 24): `vdtool convert`
# against `qemu-img convert` with the same options, of the 4 GiB qcow2
# that *seq* reads (rand.qcow2) and of the same layout holding /usr's
# files (text.qcow2, which compresses), and `vdtool check` against
# `qemu-img check` of a 1 TiB qcow2 with 100 GiB allocated:
#   conv    -O qcow2 (plain, -c zlib, -c zstd) and -O vmdk
#           subformat=streamOptimized, MB/s of the 4 GiB virtual disk,
#           with vdtool's CPU use; the compressing ones of text.qcow2
#           too (random bytes do not compress, so only there is the
#           compressor the work)
#   vcheck  the check of the 1 TiB image, ms
# Every output is checked after its run (not timed): `qemu-img compare`
# against the input and, for qcow2, `qemu-img check` clean. Outputs are
# written to the run's scratch folder (same disk as the images) and
# deleted after each run.
# And the image it needs of its own (group "conv1t").
# shellcheck shell=bash

# conv1t.qcow2: `qemu-img create -o preallocation=metadata` of 100 GiB (every
# cluster of the first 100 GiB allocated: L2 tables and refcounts for
# 1.6 million clusters, the data a hole of the host file), then `qemu-img
# resize` to 1 TiB. A few tens of MB on disk.
CV_ALLOC=$((100 * GIB))
CV_VSIZE=$((1024 * GIB))
SPEC[conv1t]="v1 alloc=$CV_ALLOC vsize=$CV_VSIZE cluster=$CLUSTER prealloc=metadata"
FILES_OF[conv1t]="conv1t.qcow2"

img_conv1t() {
	say "  conv1t.qcow2: qemu-img create -o preallocation=metadata 100 GiB, qemu-img resize to 1 TiB"
	rm -f "$WORK/conv1t.qcow2"
	qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER,preallocation=metadata \
		"$WORK/conv1t.qcow2" "$CV_ALLOC" || die "qemu-img create of conv1t.qcow2 failed"
	qemu-img resize -q -f qcow2 "$WORK/conv1t.qcow2" "$CV_VSIZE" ||
		die "qemu-img resize of conv1t.qcow2 failed"
	say "  conv1t.qcow2 uses $(du -h "$WORK/conv1t.qcow2" | cut -f1) of disk"
}

# The variants: name -> "FORMAT OPTIONS..." given alike to both tools
declare -A CV_OPTS=(
	[qcow2]="qcow2"
	[zlib]="qcow2 -c -o compression_type=zlib"
	[zstd]="qcow2 -c -o compression_type=zstd"
	[vmdk-so]="vmdk -o subformat=streamOptimized"
)
# A variant ending in "-t" converts text.qcow2 instead of rand.qcow2.
CV_VARIANTS="qcow2 zlib zstd vmdk-so zlib-t zstd-t vmdk-so-t"
declare -A CV_ROW=(
	[qcow2]="qcow2"
	[zlib]="qcow2 -c zlib"
	[zstd]="qcow2 -c zstd"
	[vmdk-so]="vmdk streamOptimized"
	[zlib-t]="text, qcow2 -c zlib"
	[zstd-t]="text, qcow2 -c zstd"
	[vmdk-so-t]="text, vmdk streamOptimized"
)

# cv_run VARIANT TOOL COLD: one timed convert of rand.qcow2 (text.qcow2)
# into
# $SCR/conv-out (then `sync` of the output, in the timing: vdtool fsyncs
# its output before renaming it into place, qemu-img convert does not by
# default); then the checks. Sets ELAPSED and CPU (user+system of the
# command and its children over the wall time), or returns 1 with REASON
# (WRONG: ... when the output is wrong).
cv_run() {
	local v=$1 tool=$2 cold=$3 out=$SCR/conv-out ok=1 words fmt rus u s chk
	local in=$WORK/rand.qcow2
	case $v in *-t) in=$WORK/text.qcow2 v=${v%-t} ;; esac
	read -ra words <<<"${CV_OPTS[$v]}"
	fmt=${words[0]}
	CPU=
	rm -f "$out" "$SCR/conv-time"
	[ "$cold" = 1 ] || cat "$in" >/dev/null
	[ "$cold" = 0 ] || drop_caches
	local TIMEFORMAT='%3U %3S'
	start_clock
	case $tool in
	vdmount)
		{ time T "$BUILD/vdtool" convert -q -O "${words[@]}" "$in" "$out" \
			>/dev/null 2>"$SCR/conv-err" && sync -d "$out"; } 2>"$SCR/conv-time" || ok=0 ;;
	qimg-convert)
		{ time T qemu-img convert -f qcow2 -O "${words[@]}" "$in" "$out" \
			>/dev/null 2>"$SCR/conv-err" && sync -d "$out"; } 2>"$SCR/conv-time" || ok=0 ;;
	esac
	stop_clock
	if [ "$ok" = 0 ]; then
		REASON="convert failed: $(first_err "$(cat "$SCR/conv-err")")"
		rm -f "$out" "$SCR/conv-err" "$SCR/conv-time"
		return 1
	fi
	read -r u s <"$SCR/conv-time" || true
	CPU=$(awk -v u="${u:-0}" -v s="${s:-0}" -v e="$ELAPSED" 'BEGIN { printf "%.2f", (u + s) / e }')
	rm -f "$SCR/conv-err" "$SCR/conv-time"
	# the checks, QEMU's, not timed
	rus=$(T qemu-img info "$out" 2>/dev/null | sed -n 's/^file format: *//p' | head -n1)
	if [ "$rus" != "$fmt" ]; then
		REASON="WRONG: qemu-img info reads the output as '${rus:-nothing}', not $fmt"
	elif ! chk=$(T qemu-img compare -q -f qcow2 -F "$fmt" "$in" "$out" 2>&1); then
		REASON="WRONG: qemu-img compare: the output's disk differs from the input's${chk:+: $(first_err "$chk")}"
	elif [ "$fmt" = qcow2 ] && ! chk=$(T qemu-img check -q -f qcow2 "$out" 2>&1); then
		REASON="WRONG: qemu-img check of the output: $(first_err "$chk")"
	else
		rm -f "$out"
		return 0
	fi
	rm -f "$out"
	return 1
}

# verify_conv1t: both tools must find conv1t.qcow2 clean (exit 0), and
# vdtool must count the clusters as qemu-img does; sets BAD["conv1t|TOOL"]
verify_conv1t() {
	local out qout
	qout=$(T qemu-img check -f qcow2 "$WORK/conv1t.qcow2" 2>&1) ||
		BAD["conv1t|qemu-check"]="WRONG: qemu-img check of the image exits $?: $(first_err "$qout")"
	if ! out=$(T "$BUILD/vdtool" check "$WORK/conv1t.qcow2" 2>&1); then
		BAD["conv1t|vdmount"]="WRONG: vdtool check of a clean image exits $?: $(first_err "$out")"
	elif [ -z "${BAD["conv1t|qemu-check"]:-}" ] &&
		[ "$(grep -m1 allocated <<<"$out")" != "$(grep -m1 allocated <<<"$qout")" ]; then
		# "N/M = P% allocated, ...": the same counts as qemu-img's
		BAD["conv1t|vdmount"]="WRONG: vdtool check counts '$(grep -m1 allocated <<<"$out")', qemu-img check '$(grep -m1 allocated <<<"$qout")'"
	fi
}

# cv_check TOOL COLD: one timed check of conv1t.qcow2 (ELAPSED); 1 with
# REASON when it does not find it clean
cv_check() {
	local tool=$1 cold=$2 ok=1 rc=0
	# warm: the metadata in the page cache by an untimed check (not cat:
	# the file is 100 GB of mostly holes)
	if [ "$cold" = 1 ]; then drop_caches
	else T qemu-img check -q -f qcow2 "$WORK/conv1t.qcow2" >/dev/null 2>&1 || true; fi
	start_clock
	case $tool in
	vdmount) T "$BUILD/vdtool" check "$WORK/conv1t.qcow2" >/dev/null 2>&1 || { ok=0 rc=$?; } ;;
	qemu-check) T qemu-img check -f qcow2 "$WORK/conv1t.qcow2" >/dev/null 2>&1 || { ok=0 rc=$?; } ;;
	esac
	stop_clock
	[ "$ok" = 1 ] || { REASON="WRONG: it exits $rc on a clean image"; return 1; }
}

case_convert() {
	local cache cold run r v tool line x
	case_begin conv MB/s high "Converting the 4 GiB qcow2 (vdtool convert)" \
"The vdmount row is \`vdtool convert -O FMT [OPTS] rand.qcow2 OUT\` (no
FUSE), against \`qemu-img convert -f qcow2 -O FMT [OPTS]\` with the same
options: qcow2 (-O qcow2), qcow2 -c zlib (\`-c -o compression_type=zlib\`),
qcow2 -c zstd (\`-c -o compression_type=zstd\`), vmdk streamOptimized
(\`-O vmdk -o subformat=streamOptimized\`). The input is the image *seq*
reads: 4 GiB virtual, 2 GiB of random bytes in 1 MiB runs; rows marked
*text* convert text.qcow2 instead, the same layout holding 2 GiB of this
machine's /usr files (which compress about 2.5:1: on random bytes the
compressors give up early, so only here is compressing the work). MB/s
of the 4 GiB virtual size, from exec to the output on disk (\`sync -d OUT\` after
the convert, in the timing: vdtool fsyncs its output, qemu-img does not
by default). OUT is in a scratch folder on the images' disk, deleted
after each run. Checked after each run (not timed): \`qemu-img info\`
reads OUT as FMT, \`qemu-img compare\` of OUT with the input, and
\`qemu-img check\` of a qcow2 OUT clean. *vdmount CPU use*: vdtool's
user+system CPU seconds over the wall time (2.00 = both cores busy)."
	case_begin vcheck ms low "Checking a 1 TiB qcow2 with 100 GiB allocated (vdtool check)" \
"The vdmount row is \`vdtool check conv1t.qcow2\`, against \`qemu-img check
-f qcow2\` of the same image: 1 TiB virtual, the first 100 GiB allocated by
\`qemu-img create -o preallocation=metadata\` (1.6 million clusters' L2
entries and refcounts; the data is a hole of the host file), then
\`qemu-img resize\` to 1 TiB. From exec to exit; both must exit 0 (clean),
checked before timing."
	# (once seen here: /dev/null replaced by a regular file, into which
	# the warm-up reads of 2 GB filled /dev's tmpfs)
	[ -c /dev/null ] || die "/dev/null is not the null device (a regular file?): not running case convert"
	say "convert: each output is checked (qemu-img compare, check) after its run"
	verify_conv1t
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		for x in $CV_VARIANTS; do
			row conv "${CV_ROW[$x]}, $cache" vdmount qimg-convert vdmount-cpu
		done
		row vcheck "$cache" vdmount qemu-check
		for ((run = 1; run <= RUNS; run++)); do
			for x in $CV_VARIANTS; do
				r="${CV_ROW[$x]}, $cache"
				line="conv $r, run $run/$RUNS:"
				for tool in vdmount qimg-convert; do
					[ -z "${WHY["conv|$r|$tool"]:-}" ] || continue
					if cv_run "$x" "$tool" "$cold"; then
						v=$(mbs_of "$D_VSIZE" "$ELAPSED")
						rec conv "$r" "$tool" "$v"
						line="$line $tool $v (CPU $CPU)"
						[ "$tool" != vdmount ] || rec conv "$r" vdmount-cpu "$CPU"
					else
						case $REASON in WRONG*) na conv "$r" "$tool" "$REASON" ;;
						*) na conv "$r" "$tool" "n/a: $REASON" ;; esac
						[ "$tool" != vdmount ] || FAILED=1
						say "  $tool: $REASON"
					fi
				done
				say "$line"
			done
			line="vcheck $cache, run $run/$RUNS:"
			for tool in vdmount qemu-check; do
				! skip_bad vcheck "$cache" "$tool" conv1t || continue
				[ -z "${WHY["vcheck|$cache|$tool"]:-}" ] || continue
				if cv_check "$tool" "$cold"; then
					rec vcheck "$cache" "$tool" "$(ms_of "$ELAPSED")"
					line="$line $tool $(ms_of "$ELAPSED")"
				else
					na vcheck "$cache" "$tool" "$REASON"
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
			say "$line"
		done
	done
	rm -f "$SCR"/conv-out "$SCR"/conv-err "$SCR"/conv-time
}
