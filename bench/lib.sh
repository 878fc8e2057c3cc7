# bench/lib.sh — helpers shared by bench/run.sh and the case files:
# messages, the clock, medians, the mount/loop/daemon registry that the
# exit trap tears down, one mount helper per FUSE tool, and the result
# store the report is written from.
#
# Everything here runs in the main shell, never in $(...): the registry
# arrays must see every mount made, or the trap could not undo it.
# shellcheck shell=bash

BENCH_T0=$EPOCHREALTIME
say() {
	printf 'bench [%4.0fs]: %s\n' "$(awk -v a="$BENCH_T0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$*" >&2
}
die() { say "$*"; exit 1; }

NOTES=()
note() { NOTES+=("$*"); say "$*"; }

# T CMD...: a command that may block on a FUSE mount or a peer, under a
# time limit (SIGKILL 5 s after SIGTERM if it ignores that).
T() { timeout -k 5 "$VDBENCH_TIMEOUT" "$@"; }

# --- the clock ------------------------------------------------------------

T0=
ELAPSED= # seconds of the last start_clock..stop_clock
start_clock() { T0=$EPOCHREALTIME; }
stop_clock() {
	local t1=$EPOCHREALTIME
	ELAPSED=$(awk -v a="$T0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}
mbs_of() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
ms_of() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }

# median [-pN] V...: the median of the values, N decimals (default 0);
# nothing when there are no values.
median() {
	local p=0
	case ${1:-} in -p*) p=${1#-p}; shift ;; esac
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 }
		END { if (NR == 0) exit
		      if (NR % 2) m = v[(NR + 1) / 2]
		      else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.*f", p, m }'
}

# --- caches ------------------------------------------------------------------

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# cache_prep COLD FILE...: cold: drop every cache; warm: read FILE... so
# the host's page cache holds them.
cache_prep() {
	local cold=$1
	shift
	if [ "$cold" = 1 ]; then drop_caches; else cat "$@" >/dev/null; fi
}

# --- the registry: whatever is set up here, the trap takes down -------------

FUSE_MOUNTS=() # FUSE mountpoints (directories or, for qsd, a file)
KMOUNTS=()     # kernel ext4 mountpoints
LOOPS=()       # loop devices we attached
QSD_PIDS=()    # qemu-storage-daemon processes we started

# forget ARRAY VALUE: drop VALUE from the named array.
forget() {
	local -n arr=$1
	local out=() x
	for x in "${arr[@]}"; do [ "$x" = "$2" ] || out+=("$x"); done
	arr=("${out[@]}")
}

fuse_unmount() {
	# fusermount3 also unmounts fuse2 mounts (qcowmount, fuse2fs); -z as
	# a last resort when something still holds the mount.
	fusermount3 -u -q "$1" 2>/dev/null ||
		fusermount -u -q "$1" 2>/dev/null ||
		umount "$1" 2>/dev/null ||
		fusermount3 -u -z -q "$1" 2>/dev/null || true
}

# wait_gone PID: wait (up to 10 s) for a daemon to exit after its unmount,
# so the next turn does not share the CPUs with it.
wait_gone() {
	local i
	[ -n "$1" ] || return 0
	for ((i = 0; i < 200; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
}

bench_cleanup() {
	local m p
	for m in "${KMOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	KMOUNTS=()
	for m in "${LOOPS[@]}"; do losetup -d "$m" 2>/dev/null || true; done
	LOOPS=()
	for p in "${QSD_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	QSD_PIDS=()
	for m in "${FUSE_MOUNTS[@]}"; do fuse_unmount "$m"; done
	FUSE_MOUNTS=()
}

# --- FUSE tools -----------------------------------------------------------------
# fuse_mount TOOL IMG: a fresh mount of IMG by TOOL; sets MNT (the mount
# point), FLAT (its file holding the whole virtual disk) and DPID (the
# daemon's pid), or returns 1 with REASON set. fuse_umount records the
# daemon's peak RSS (VmHWM) and unmounts.

MNT=
FLAT=
READY_AT= # $EPOCHREALTIME when the mount's file was first seen
DPID=
REASON=
DTOOL=
DIMG=
declare -A MEM # "image|tool" -> largest VmHWM seen, kB

# the one line of a tool's error output worth keeping
first_err() {
	printf '%s\n' "$1" | grep -m1 -i -e unsupported -e 'not supported' -e error ||
		printf '%s\n' "$1" | awk 'NF { l = $0 } END { print l }'
}

qsd_driver() {
	case $1 in qcow2) echo qcow2 ;; vmdk) echo vmdk ;; vpc) echo vpc ;; vdi) echo vdi ;; vhdx) echo vhdx ;; raw) echo raw ;; esac
}

declare -A VSIZE_OF
vsize() {
	if [ -z "${VSIZE_OF[$1]:-}" ]; then
		VSIZE_OF[$1]=$(qemu-img info --output=json "$1" |
			sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -n1)
	fi
	echo "${VSIZE_OF[$1]}"
}

# Extra options for the next fuse_mount calls (empty by default): VD_ARGS,
# vdmount's options (--key-file=..., --overlay=...); QSD_OBJ,
# qemu-storage-daemon's --object (a secret); QSD_FMT_OPTS, options of its
# format node (",encrypt.key-secret=s"); QSD_WRITABLE=on for a writable
# export.
VD_ARGS=()
QSD_OBJ=()
QSD_FMT_OPTS=
QSD_WRITABLE=off

# fuse_mount TOOL IMG [FMT]
fuse_mount() {
	local tool=$1 img=$2 fmt=${3:-qcow2} err i want
	MNT=$SCR/m-$tool FLAT='' DPID='' REASON='' DTOOL=$tool DIMG=$img
	case $tool in
	qsd)
		: >"$MNT"
		want=$(vsize "$img")
		FUSE_MOUNTS+=("$MNT")
		qemu-storage-daemon "${QSD_OBJ[@]}" \
			--blockdev "driver=file,node-name=f,filename=$img,cache.direct=off" \
			--blockdev "driver=$(qsd_driver "$fmt"),node-name=q,file=f$QSD_FMT_OPTS" \
			--export "type=fuse,id=e,node-name=q,mountpoint=$MNT,writable=$QSD_WRITABLE" \
			>"$SCR/qsd.log" 2>&1 &
		DPID=$!
		QSD_PIDS+=("$DPID")
		for ((i = 0; i < 1000; i++)); do
			[ "$(stat -c %s "$MNT" 2>/dev/null)" != "$want" ] || break
			if ! kill -0 "$DPID" 2>/dev/null; then
				REASON="refused: $(first_err "$(cat "$SCR/qsd.log")")"
				forget QSD_PIDS "$DPID"
				forget FUSE_MOUNTS "$MNT"
				return 1
			fi
			sleep 0.01
		done
		[ "$i" -lt 1000 ] || { REASON="no export after 10 s"; fuse_umount; return 1; }
		READY_AT=$EPOCHREALTIME
		FLAT=$MNT
		return 0
		;;
	esac
	mkdir -p "$MNT"
	FUSE_MOUNTS+=("$MNT")
	case $tool in
	vdmount) err=$(T "$VDMOUNT" "${VD_ARGS[@]}" "$img" "$MNT" 2>&1) && FLAT=$MNT/disk.raw ;;
	qcowmount) err=$(T qcowmount "$img" "$MNT" 2>&1) && FLAT=$MNT/qcow1 ;;
	vmdkmount) err=$(T vmdkmount "$img" "$MNT" 2>&1) && FLAT=$MNT/vmdk1 ;;
	vhdimount) err=$(T vhdimount "$img" "$MNT" 2>&1) && FLAT=$MNT/vhdi1 ;;
	fuse2fs) err=$(T fuse2fs -o "${FUSE2FS_MODE:-ro},fakeroot" "$img" "$MNT" 2>&1) && FLAT=$MNT ;;
	*) die "fuse_mount: unknown tool $tool" ;;
	esac
	if [ -z "$FLAT" ]; then
		forget FUSE_MOUNTS "$MNT"
		REASON="refused: $(first_err "$err")"
		return 1
	fi
	# All these return once the mount is live; the first stat proves it
	# (of READY_REL under the mount when the caller names one).
	want=$FLAT
	[ -z "${READY_REL:-}" ] || want=$MNT/$READY_REL
	for ((i = 0; i < 5000; i++)); do
		[ ! -e "$want" ] || break
		sleep 0.001
	done
	READY_AT=$EPOCHREALTIME
	# The daemon is the process whose command line is exactly the one
	# we ran (all these daemonise and keep their argv).
	case $tool in
	vdmount) DPID=$(pgrep -xf "$VDMOUNT${VD_ARGS[*]:+ ${VD_ARGS[*]}} $img $MNT" | head -n1) ;;
	fuse2fs) DPID=$(pgrep -xf "fuse2fs -o ${FUSE2FS_MODE:-ro},fakeroot $img $MNT" | head -n1) ;;
	*) DPID=$(pgrep -xf "$tool $img $MNT" | head -n1) ;;
	esac
	return 0
}

# hwm PID: the process's peak RSS in kB (nothing when it is gone)
hwm() {
	[ -n "$1" ] || return 0
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

record_mem() {
	local kb key="${DIMG##*/}|$DTOOL"
	kb=$(hwm "$DPID")
	[ -n "$kb" ] || return 0
	if [ "$kb" -gt "${MEM[$key]:-0}" ]; then MEM[$key]=$kb; fi
}

fuse_umount() {
	record_mem
	if [ "$DTOOL" = qsd ]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
		forget QSD_PIDS "$DPID"
		fuse_unmount "$MNT" # only if qsd died without removing it
		rm -f "$MNT"
	else
		fuse_unmount "$MNT"
		wait_gone "$DPID"
	fi
	forget FUSE_MOUNTS "$MNT"
}

# --- loop devices and the kernel's ext4 ----------------------------------------

LOOPDEV=
# loop_attach FILE [OFFSET SIZE]: a read-only loop device over FILE
loop_attach() {
	local opts=()
	[ $# -lt 3 ] || opts=(-o "$2" --sizelimit "$3")
	LOOPDEV=$(T losetup -r -f --show "${opts[@]}" "$1") || return 1
	LOOPS+=("$LOOPDEV")
}
loop_detach() { losetup -d "$1" 2>/dev/null || true; forget LOOPS "$1"; }

# kmount DEV DIR: the kernel's ext4, read-only, no journal replay
kmount() {
	mkdir -p "$2"
	T mount -t ext4 -o ro,noload "$1" "$2" || return 1
	KMOUNTS+=("$2")
}
kumount() { umount "$1" 2>/dev/null || umount -l "$1"; forget KMOUNTS "$1"; }

# --- results ----------------------------------------------------------------------
# A case declares its table with case_begin, then for each row (a variant:
# image and cache state, say) records each tool's figures with rec, or why
# it has none with na. The report prints one table per case, in order.

CASES_DONE=()
declare -A C_TITLE C_UNIT C_BETTER C_TEXT C_ROWS C_TOOLS
declare -A VAL # "case|row|tool" -> the runs' figures, space-separated
declare -A WHY # "case|row|tool" -> why there is no figure (n/a: ..., WRONG: ...)
declare -A LABEL

# case_begin CASE UNIT high|low TITLE TEXT
case_begin() {
	CASES_DONE+=("$1")
	C_UNIT[$1]=$2 C_BETTER[$1]=$3 C_TITLE[$1]=$4 C_TEXT[$1]=$5
	C_ROWS[$1]=
}
# row CASE ROW TOOL...: declare a row and the tools in its turn order
row() {
	local c=$1 r=$2
	shift 2
	C_ROWS[$c]+="$r"$'\n'
	C_TOOLS["$c|$r"]="$*"
}
rec() { VAL["$1|$2|$3"]+="$4 "; }
na() { [ -n "${WHY["$1|$2|$3"]:-}" ] || WHY["$1|$2|$3"]=$4; }
med_of() { # med_of CASE ROW TOOL [-pN]
	local words
	read -ra words <<<"${VAL["$1|$2|$3"]:-}"
	median ${4:+"$4"} "${words[@]}"
}
