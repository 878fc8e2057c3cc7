#!/bin/bash
# bench/run.sh — read throughput of vdmount's disk.raw beside its peers,
# measured in one run on one machine so the figures can be compared.
#
#   BUILD=build bash bench/run.sh        (what `make bench` runs)
#
# For each test image, every tool reads the whole 1 GiB virtual disk,
# sequentially in 1 MiB requests; the tools take turns (round-robin,
# VDBENCH_RUNS rounds) so drift on the machine hits them all alike. Each
# round is done with the host files in the page cache (warm) and, where
# /proc/sys/vm/drop_caches can be written, after dropping every cache
# (cold). Medians go to stdout and to bench/results/<date>.md; see
# bench/README.md for what each tool does and why.
#
# Environment:
#   BUILD          where vdmount was built (default: build)
#   VDBENCH_DIR    where the images are made and kept (default: /var/tmp/vdbench)
#   VDBENCH_RUNS   rounds per image and cache state (default: 3)
#   VDBENCH_TOOLS  tools to run, in turn order
#                  (default: "vdmount qemu-img qcowmount raw";
#                   also available: qemu-convert)
#   VDBENCH_CACHE  cache states (default: "warm cold")
#   VDBENCH_INSTALL=0  do not try to install libqcow-utils for qcowmount
# shellcheck disable=SC2317 # the read_<tool> functions are called by name
set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in printf's numbers

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
VDMOUNT=$BUILD/vdmount
WORK=${VDBENCH_DIR:-/var/tmp/vdbench}
RUNS=${VDBENCH_RUNS:-3}
TOOLS=${VDBENCH_TOOLS:-vdmount qemu-img qcowmount raw}
CACHES=${VDBENCH_CACHE:-warm cold}
RESULTS=$HERE/results

# The images: VSIZE of virtual disk, of which DATA is written, CHUNK at a
# time with a CHUNK-sized hole after each (so half the disk is holes,
# which every tool must still return as zeros), at 64 KiB qcow2 clusters.
MIB=$((1024 * 1024))
VSIZE=$((1024 * MIB))
CHUNK=$MIB
NCHUNKS=512
CLUSTER=65536
IMAGE_SPEC="v1 vsize=$VSIZE chunk=$CHUNK nchunks=$NCHUNKS cluster=$CLUSTER"

MNT_VD=$WORK/mnt-vdmount
MNT_QC=$WORK/mnt-qcowmount
STAMP=$WORK/images.spec

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- cleanup: always unmount, whatever ends the run --------------------

unmount() {
	# fusermount3 handles fuse2 mounts (qcowmount) as well; -z as a last
	# resort when something still holds the mount.
	fusermount3 -u -q "$1" 2>/dev/null ||
		fusermount -u -q "$1" 2>/dev/null ||
		fusermount3 -u -z -q "$1" 2>/dev/null || true
}

RESULT_TMP=
cleanup() {
	local m
	for m in "$MNT_VD" "$MNT_QC"; do
		[ -d "$m" ] || continue
		unmount "$m"
		rmdir "$m" 2>/dev/null || true
	done
	[ -z "$RESULT_TMP" ] || rm -f "$RESULT_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- what is available -------------------------------------------------

command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils)"
command -v fusermount3 >/dev/null || die "fusermount3 not found (apt-get install fuse3)"

NOTES=()
note() { NOTES+=("$*"); say "$*"; }

has_tool() { case " $TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }
drop_tool() {
	local t out=
	for t in $TOOLS; do [ "$t" = "$1" ] || out="$out $t"; done
	TOOLS=${out# }
}

if has_tool vdmount && [ ! -x "$VDMOUNT" ]; then
	die "$VDMOUNT not found: build it first (make BUILD=$BUILD all), or leave it out with VDBENCH_TOOLS=\"qemu-img qcowmount raw\""
fi

if has_tool qcowmount && ! command -v qcowmount >/dev/null; then
	if [ "${VDBENCH_INSTALL:-1}" != 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "qcowmount missing: trying apt-get install libqcow-utils"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			libqcow-utils >/dev/null 2>&1 || true
	fi
	if ! command -v qcowmount >/dev/null; then
		note "qcowmount (libqcow-utils) is not available here: its column is left out."
		drop_tool qcowmount
	fi
fi
[ -n "$TOOLS" ] || die "no tools left to run"

case " $CACHES " in *" cold "*)
	if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
		:
	else
		note "cannot write /proc/sys/vm/drop_caches (not root, or in a container): cold-cache runs skipped."
		CACHES=${CACHES//cold/}
	fi
esac
read -ra words <<<"$CACHES"
CACHES=${words[*]:-}
[ -n "$CACHES" ] || die "no cache states left to run"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- the images, made once and kept in $WORK ---------------------------

# scatter SRC DST: DST becomes a sparse VSIZE raw file holding SRC's
# NCHUNKS chunks, chunk i at offset 2*i*CHUNK.
scatter() {
	local i
	rm -f "$2"
	truncate -s "$VSIZE" "$2"
	for ((i = 0; i < NCHUNKS; i++)); do
		dd if="$1" of="$2" bs="$CHUNK" count=1 skip="$i" seek=$((2 * i)) \
			conv=notrunc status=none
	done
}

make_images() {
	local need=$((NCHUNKS * CHUNK)) have
	mkdir -p "$WORK"
	rm -f "$STAMP"

	say "making test images in $WORK (once; later runs reuse them)"
	say "  random.raw: $((need / MIB)) MiB of /dev/urandom in a $((VSIZE / MIB)) MiB sparse disk"
	head -c "$need" /dev/urandom >"$WORK/src.tmp"
	scatter "$WORK/src.tmp" "$WORK/random.raw"

	# Compressible data that looks like a real system disk: the files
	# of this machine's /usr, concatenated (compresses about 2.5:1).
	say "  text.raw: $((need / MIB)) MiB of files from /usr, same layout"
	find /usr -xdev -type f -size +16k -print0 2>/dev/null | sort -z |
		xargs -0 cat 2>/dev/null | head -c "$need" >"$WORK/src.tmp" || true
	have=$(stat -c %s "$WORK/src.tmp")
	[ "$have" -gt 0 ] || die "found no files to read in /usr"
	while [ "$have" -lt "$need" ]; do # a small /usr: repeat what there is
		cat "$WORK/src.tmp" "$WORK/src.tmp" | head -c "$need" >"$WORK/src2.tmp" || true
		mv "$WORK/src2.tmp" "$WORK/src.tmp"
		have=$(stat -c %s "$WORK/src.tmp")
	done
	scatter "$WORK/src.tmp" "$WORK/text.raw"
	rm -f "$WORK/src.tmp"

	say "  random.qcow2: qemu-img convert, 64 KiB clusters"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER \
		"$WORK/random.raw" "$WORK/random.qcow2"
	say "  zlib.qcow2: qemu-img convert -c, compression_type=zlib (takes ~20 s)"
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=$CLUSTER,compression_type=zlib \
		"$WORK/text.raw" "$WORK/zlib.qcow2"
	say "  zstd.qcow2: qemu-img convert -c, compression_type=zstd"
	rm -f "$WORK/zstd.qcow2"
	if ! qemu-img convert -c -f raw -O qcow2 -o cluster_size=$CLUSTER,compression_type=zstd \
		"$WORK/text.raw" "$WORK/zstd.qcow2"; then
		rm -f "$WORK/zstd.qcow2"
		say "  (this qemu-img cannot write zstd clusters)"
	fi
	echo "$IMAGE_SPEC" >"$STAMP"
}

if [ "$(cat "$STAMP" 2>/dev/null)" != "$IMAGE_SPEC" ] ||
	[ ! -f "$WORK/random.qcow2" ] || [ ! -f "$WORK/zlib.qcow2" ]; then
	make_images
else
	say "reusing the images in $WORK (delete it to remake them)"
fi

# name:qcow2:equivalent raw file
IMAGES=("random:random.qcow2:random.raw" "zlib:zlib.qcow2:text.raw")
if [ -f "$WORK/zstd.qcow2" ]; then
	IMAGES+=("zstd:zstd.qcow2:text.raw")
else
	note "qemu-img here cannot write zstd-compressed qcow2: the zstd image is left out."
fi

# --- one timed read per tool -------------------------------------------
# Each read_<tool> IMG RAW COLD reads the whole virtual disk once and
# sets ELAPSED (seconds, wall clock, of the read alone) or returns 1
# with REASON set. Mounts are made fresh for every read, so the kernel's
# page cache of a FUSE file never carries data from one read to the next.

ELAPSED=
REASON=
T0=
start_clock() { T0=$EPOCHREALTIME; }
stop_clock() {
	local t1=$EPOCHREALTIME
	ELAPSED=$(awk -v a="$T0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}

# mount_vdmount IMG / mount_qcowmount IMG: a fresh mount, or 1 with
# REASON set.
mount_vdmount() {
	local err t0=$EPOCHREALTIME
	if err=$("$VDMOUNT" "$1" "$MNT_VD" 2>&1); then
		MOUNT_MS+="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }') "
		return 0
	fi
	REASON="mount failed: ${err%%$'\n'*}"
	return 1
}

mount_qcowmount() {
	local err
	err=$(qcowmount "$1" "$MNT_QC" 2>&1) && return 0
	# libqcow prints a stack of messages; the one naming the feature
	# it lacks is the one worth keeping.
	REASON="refused: $(printf '%s\n' "$err" | grep -m1 -i 'unsupported' ||
		printf '%s\n' "$err" | tail -n1)"
	return 1
}

# read_mounted DIR FILE COLD: dd the whole flat disk at DIR/FILE, then
# unmount DIR.
read_mounted() {
	[ "$3" = 0 ] || drop_caches
	start_clock
	if ! dd if="$1/$2" of=/dev/null bs=1M status=none; then
		unmount "$1"
		REASON="read failed"
		return 1
	fi
	stop_clock
	unmount "$1"
}

read_vdmount() { mount_vdmount "$1" && read_mounted "$MNT_VD" disk.raw "$3"; }
read_qcowmount() { mount_qcowmount "$1" && read_mounted "$MNT_QC" qcow1 "$3"; }

# qemu-img bench: VSIZE/1MiB read requests of 1 MiB, one at a time, in
# order from offset 0 — the same requests dd makes of disk.raw. It reads
# every byte of the virtual disk through the qcow2 driver (holes as
# zeros, compressed clusters decompressed) into a buffer and writes
# nothing. Default cache mode (writeback): host reads go through the page
# cache, as vdmount's do.
read_qemu-img() {
	[ "$3" = 0 ] || drop_caches
	start_clock
	if ! qemu-img bench -f qcow2 -c $((VSIZE / MIB)) -s 1M -d 1 "$1" >/dev/null; then
		REASON="qemu-img bench failed"
		return 1
	fi
	stop_clock
}

# qemu-img convert to a null target: what a person would run to get the
# disk out, but it skips holes by block status and keeps 8 requests in
# flight, so it does less (and different) work than the others.
read_qemu-convert() {
	[ "$3" = 0 ] || drop_caches
	start_clock
	if ! qemu-img convert -n -f qcow2 "$1" \
		--target-image-opts "driver=null-co,size=$VSIZE"; then
		REASON="qemu-img convert failed"
		return 1
	fi
	stop_clock
}

read_raw() {
	[ "$3" = 0 ] || drop_caches
	start_clock
	cat "$2" >/dev/null
	stop_clock
}

# verify TOOL IMG RAW: before timing, check the tool returns the right
# bytes (a fast wrong answer is not a result). Also warms the page cache.
verify() {
	local dir file
	case $1 in
	vdmount) dir=$MNT_VD file=disk.raw
		mount_vdmount "$2" || { echo "$REASON"; return; } ;;
	qcowmount) dir=$MNT_QC file=qcow1
		mount_qcowmount "$2" || { echo "$REASON"; return; } ;;
	*) echo ok; return ;;
	esac
	if cmp -s "$dir/$file" "$3"; then echo ok; else echo "WRONG DATA (differs from $(basename "$3"))"; fi
	unmount "$dir"
}

# --- the runs ------------------------------------------------------------

median() { # median of the arguments, rounded; nothing when there are none
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) exit
		      if (NR % 2) printf "%.0f", v[(NR + 1) / 2]
		      else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

mkdir -p "$MNT_VD" "$MNT_QC"
declare -A MBS     # "image cache tool" -> MB/s of each run, space-separated
declare -A STATUS  # "image tool" -> ok | reason it has no figures
MOUNT_MS=          # how long each vdmount command took to return, in ms
STARTED=$EPOCHREALTIME
FAILED=0

for spec in "${IMAGES[@]}"; do
	IFS=: read -r name qcow raw <<<"$spec"
	img=$WORK/$qcow
	rawf=$WORK/$raw
	say "$name: checking each tool's bytes against $raw"
	cat "$img" "$rawf" >/dev/null
	for tool in $TOOLS; do
		STATUS["$name $tool"]=$(verify "$tool" "$img" "$rawf")
		if [ "${STATUS["$name $tool"]}" != ok ]; then
			say "  $tool: ${STATUS["$name $tool"]}"
			[ "$tool" != vdmount ] || FAILED=1
		fi
	done
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		[ "$cold" = 1 ] || cat "$img" "$rawf" >/dev/null
		for ((run = 1; run <= RUNS; run++)); do
			line="$name $cache run $run/$RUNS:"
			for tool in $TOOLS; do
				[ "${STATUS["$name $tool"]}" = ok ] || continue
				if "read_$tool" "$img" "$rawf" "$cold"; then
					mbs=$(awk -v s="$ELAPSED" -v b="$VSIZE" 'BEGIN { printf "%.1f", b / 1e6 / s }')
					MBS["$name $cache $tool"]+="$mbs "
					line="$line $tool $mbs"
				else
					STATUS["$name $tool"]=$REASON
					say "  $tool: $REASON"
					[ "$tool" != vdmount ] || FAILED=1
				fi
			done
			say "$line"
		done
	done
done
ELAPSED_ALL=$(awk -v a="$STARTED" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# --- the report ------------------------------------------------------------

label() {
	case $1 in
	vdmount) echo "vdmount" ;;
	qemu-img) echo "qemu-img bench" ;;
	qemu-convert) echo "qemu-img convert" ;;
	raw) echo "raw file (cat)" ;;
	*) echo "$1" ;;
	esac
}

report() {
	local name cache tool peer m v cols
	echo "# vdmount read throughput, $(date '+%Y-%m-%d %H:%M')"
	echo
	echo "Median MB/s (10^6 bytes/s) of $RUNS reads of the whole $((VSIZE / MIB)) MiB"
	echo "virtual disk in 1 MiB sequential requests; ratio = vdmount / peer"
	echo "(above 1: vdmount is faster). Images: 64 KiB clusters, $((NCHUNKS * CHUNK / MIB)) MiB"
	echo "of data in 1 MiB runs with a 1 MiB hole after each; *random* holds"
	echo "random bytes, *zlib* and *zstd* hold compressed files from /usr."
	echo
	cols="| image | cache |"
	m="|---|---|"
	for tool in $TOOLS; do cols="$cols $(label "$tool") |"; m="$m--:|"; done
	if has_tool vdmount; then
		for peer in $TOOLS; do
			[ "$peer" != vdmount ] || continue
			cols="$cols vdmount / $(label "$peer") |"
			m="$m--:|"
		done
	fi
	echo "$cols"
	echo "$m"
	for spec in "${IMAGES[@]}"; do
		IFS=: read -r name _ _ <<<"$spec"
		for cache in $CACHES; do
			declare -A med=()
			cols="| $name | $cache |"
			for tool in $TOOLS; do
				read -ra words <<<"${MBS["$name $cache $tool"]:-}"
				v=$(median "${words[@]}")
				med[$tool]=$v
				if [ -n "$v" ]; then cols="$cols $v |"
				elif [ "${STATUS["$name $tool"]}" = ok ]; then cols="$cols — |"
				else cols="$cols n/a¹ |"; fi
			done
			if has_tool vdmount; then
				for peer in $TOOLS; do
					[ "$peer" != vdmount ] || continue
					if [ -n "${med[vdmount]}" ] && [ -n "${med[$peer]}" ]; then
						cols="$cols $(awk -v a="${med[vdmount]}" -v b="${med[$peer]}" 'BEGIN { printf "%.2f", a / b }') |"
					else
						cols="$cols — |"
					fi
				done
			fi
			echo "$cols"
			unset med
		done
	done
	echo
	local any=0
	for spec in "${IMAGES[@]}"; do
		IFS=: read -r name _ _ <<<"$spec"
		for tool in $TOOLS; do
			[ "${STATUS["$name $tool"]}" != ok ] || continue
			[ "$any" = 1 ] || { echo "¹ No figures:"; any=1; }
			echo "- $(label "$tool") on $name: ${STATUS["$name $tool"]}"
		done
	done
	for v in "${NOTES[@]}"; do echo "- $v"; done
	echo
	echo "Every run (MB/s, in the order taken):"
	echo
	for spec in "${IMAGES[@]}"; do
		IFS=: read -r name _ _ <<<"$spec"
		for cache in $CACHES; do
			for tool in $TOOLS; do
				[ -n "${MBS["$name $cache $tool"]:-}" ] || continue
				echo "- $name, $cache, $(label "$tool"): ${MBS["$name $cache $tool"]% }"
			done
		done
	done
	echo
	if [ -n "$MOUNT_MS" ]; then
		read -ra words <<<"$MOUNT_MS"
		echo "vdmount command, start to live mount: median $(median "${words[@]}") ms over ${#words[@]} mounts."
		echo
	fi
	echo "Machine and versions:"
	echo
	echo "- $(uname -srm); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "- $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo); images on $(df -PT "$WORK" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
	if has_tool vdmount; then
		echo "- vdmount: $("$VDMOUNT" -V 2>&1 | head -n1), source tree at run time: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'with no commit yet')$( [ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] || echo ' plus local changes')"
	fi
	echo "- $(qemu-img --version | head -n1)"
	if has_tool qcowmount; then
		echo "- qcowmount $(qcowmount -V 2>&1 | awk 'NF { print $2; exit }') (libqcow-utils)"
	fi
	echo "- whole run: ${ELAPSED_ALL} s, bench/run.sh with VDBENCH_RUNS=$RUNS"
}

mkdir -p "$RESULTS"
OUT=$RESULTS/$(date +%Y-%m-%d_%H%M%S).md
RESULT_TMP=$OUT.tmp
report >"$RESULT_TMP"
mv "$RESULT_TMP" "$OUT"
RESULT_TMP=
echo
cat "$OUT"
echo
say "written to ${OUT#"$ROOT"/}"
exit "$FAILED"
