# bench/case-disk.sh — the cases that read the flat virtual disk:
#   seq   whole-disk sequential read, 1 MiB requests (qcow2, VMDK, VHD, VDI,
#         VHDX)
#   comp  the same over zlib- and zstd-compressed qcow2, with vdmount's CPU use
#   rand  random 4 KiB reads with fio, 1 and 4 jobs
# shellcheck shell=bash

# The disk images: name -> "file format raw-equivalent libyal-mounter"
declare -A DISK=(
	[qcow2]="rand.qcow2 qcow2 rand.raw qcowmount"
	[vmdk]="rand.vmdk vmdk rand.raw vmdkmount"
	[vhd]="rand.vhd vpc rand.raw vhdimount"
	[vdi]="rand.vdi vdi rand.raw -"
	[vhdx]="rand.vhdx vhdx rand.raw vhdimount"
	[zlib]="zlib.qcow2 qcow2 text.raw qcowmount"
	[zstd]="zstd.qcow2 qcow2 text.raw qcowmount"
	[chain20]="chain-20.qcow2 qcow2 chain.raw qcowmount"
)

FUSE_TOOLS=" vdmount qsd qcowmount vmdkmount vhdimount "
is_fuse() { case $FUSE_TOOLS in *" $1 "*) return 0 ;; esac; return 1; }

CLK_TCK=$(getconf CLK_TCK)
# cpu_s PID: seconds of CPU (user + system, all threads) PID has used
cpu_s() { awk -v hz="$CLK_TCK" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# verify_disk TOOL NAME: once per run, check TOOL returns exactly the raw
# equivalent's bytes (a fast wrong answer is not a result); sets
# BAD["NAME|TOOL"] to why not. The qemu-img tools are checked with
# `qemu-img compare`, the same driver they time.
declare -A VERIFIED BAD
verify_disk() {
	local tool=$1 name=$2 file fmt raw differ
	[ -z "${VERIFIED["$name|$tool"]:-}" ] || return 0
	VERIFIED["$name|$tool"]=1
	read -r file fmt raw _ <<<"${DISK[$name]}"
	if ! have_tool "$tool"; then
		BAD["$name|$tool"]="n/a: ${MISSING[$tool]}"
		return 0
	fi
	case $tool in
	raw) return 0 ;;
	qemu-img | qemu-convert)
		T qemu-img compare -q -f "$fmt" -F raw "$WORK/$file" "$WORK/$raw" ||
			BAD["$name|$tool"]="WRONG: qemu-img compare finds the image differs from $raw"
		return 0 ;;
	esac
	if ! fuse_mount "$tool" "$WORK/$file" "$fmt"; then
		BAD["$name|$tool"]="n/a: $REASON"
		return 0
	fi
	if ! differ=$(T cmp ${VERIFY_BYTES:+-n "$VERIFY_BYTES"} "$FLAT" "$WORK/$raw" 2>&1); then
		case $differ in
		*EOF*) BAD["$name|$tool"]="WRONG: its size differs from $raw's" ;;
		*) # cmp: "A B differ: byte N, line M" ("char N" in the C locale)
			differ=${differ##*differ: }
			differ=${differ%%,*}
			BAD["$name|$tool"]="WRONG: its bytes differ from $raw (first at byte ${differ#* })" ;;
		esac
	fi
	fuse_umount
}

# skip_bad CASE ROW TOOL NAME: 0 (and the cell marked) when TOOL has no
# figures to give for image NAME
skip_bad() {
	local why=${BAD["$4|$3"]:-}
	[ -n "$why" ] || return 1
	na "$1" "$2" "$3" "$why"
	[[ $3 != vdmount* || $why != WRONG* ]] || FAILED=1
	return 0
}

# read_disk TOOL NAME COLD: read the whole virtual disk once, 1 MiB at a
# time; sets ELAPSED (and CPU, vdmount's CPU seconds during the read) or
# returns 1 with REASON.
CPU=
read_disk() {
	local tool=$1 name=$2 cold=$3 file fmt raw c0 size
	read -r file fmt raw _ <<<"${DISK[$name]}"
	size=$(vsize "$WORK/$file")
	CPU=
	case $tool in
	qemu-img)
		# QEMU's driver alone: the requests dd makes, one at a time,
		# into a buffer that is thrown away
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T qemu-img bench -f "$fmt" -c $((size / MIB)) -s 1M -d 1 "$WORK/$file" >/dev/null ||
			{ REASON="qemu-img bench failed"; return 1; }
		stop_clock
		return 0 ;;
	qemu-convert)
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T qemu-img convert -n -f "$fmt" "$WORK/$file" \
			--target-image-opts "driver=null-co,size=$size" ||
			{ REASON="qemu-img convert failed"; return 1; }
		stop_clock
		return 0 ;;
	raw)
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T dd if="$WORK/$raw" of=/dev/null bs=1M status=none || { REASON="read failed"; return 1; }
		stop_clock
		return 0 ;;
	esac
	fuse_mount "$tool" "$WORK/$file" "$fmt" || return 1
	[ "$cold" = 0 ] || drop_caches
	c0=$(cpu_s "$DPID")
	start_clock
	if ! T dd if="$FLAT" of=/dev/null bs=1M status=none; then
		fuse_umount
		REASON="read failed"
		return 1
	fi
	stop_clock
	CPU=$(awk -v a="$c0" -v b="$(cpu_s "$DPID")" -v s="$ELAPSED" 'BEGIN { printf "%.2f", (b - a) / s }')
	fuse_umount
}

# disk_rounds CASE NAME TOOL...: the verify, then VDBENCH_RUNS rounds per
# cache state with the tools taking turns; MB/s recorded per run.
disk_rounds() {
	local c=$1 name=$2 tool cache cold run r line file raw size
	shift 2
	read -r file _ raw _ <<<"${DISK[$name]}"
	size=$(vsize "$WORK/$file")
	say "$c $name: checking each tool's bytes against $raw"
	cat "$WORK/$file" "$WORK/$raw" >/dev/null
	for tool in "$@"; do verify_disk "$tool" "$name"; done
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$name, $cache"
		if [ "$c" = comp ]; then row "$c" "$r" "$@" vdmount-cpu; else row "$c" "$r" "$@"; fi
		[ "$cold" = 1 ] || cat "$WORK/$file" "$WORK/$raw" >/dev/null
		for ((run = 1; run <= RUNS; run++)); do
			line="$c $r, run $run/$RUNS:"
			for tool in "$@"; do
				! skip_bad "$c" "$r" "$tool" "$name" || continue
				[ -z "${WHY["$c|$r|$tool"]:-}" ] || continue
				if read_disk "$tool" "$name" "$cold"; then
					rec "$c" "$r" "$tool" "$(mbs_of "$size" "$ELAPSED")"
					line="$line $tool $(mbs_of "$size" "$ELAPSED")"
					if [ "$tool" = vdmount ] && [ "$c" = comp ]; then
						rec "$c" "$r" vdmount-cpu "$CPU"
						line="$line (cpu $CPU)"
					fi
				else
					na "$c" "$r" "$tool" "n/a: $REASON"
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
			say "$line"
		done
	done
}

case_seq() {
	local name yal
	case_begin seq MB/s high "Sequential read of the whole disk" \
"Each tool reads every byte of the 4 GiB virtual disk (2 GiB of random data
in 1 MiB runs, 1 MiB holes between them, 64 KiB clusters) in order, 1 MiB
at a time: \`dd bs=1M\` of the FUSE file, \`qemu-img bench -d 1 -s 1M\`
(QEMU's driver alone), \`qemu-img convert -n\` to a null-co target (what
one would run to copy the disk; it skips holes by block status and keeps
8 requests in flight), \`dd\` of the raw file (the limit). MB/s = 10^6 bytes/s."
	for name in ${SEQ_IMAGES}; do
		read -r _ _ _ yal <<<"${DISK[$name]}"
		[ "$yal" != - ] || yal= # no libyal mounter (VDI)
		disk_rounds seq "$name" vdmount qsd ${yal:+"$yal"} qemu-img qemu-convert raw
	done
}

case_comp() {
	local name
	case_begin comp MB/s high "Sequential read of a compressed disk" \
"As *seq*, over qcow2 images whose every cluster is compressed (zlib and
zstd; 2 GiB of this machine's /usr files in the same 1 MiB data / 1 MiB
hole layout). *vdmount CPU use* is the daemon's user+system CPU time
over the read's wall time, from /proc/PID/stat: 2.00 would be both cores
busy all the time."
	for name in zlib zstd; do
		[ -f "$WORK/${DISK[$name]%% *}" ] || { note "no $name image (qemu-img here cannot write it)"; continue; }
		disk_rounds comp "$name" vdmount qsd qcowmount qemu-img raw
	done
}

# fio_run FILE JOBS DIRECT: random 4 KiB reads for FIO_SECS seconds;
# prints the IOPS of all jobs together. --invalidate=0: fio would
# otherwise drop the raw file's pages from the cache first.
fio_run() {
	local out
	out=$(T fio --name=rand --filename="$1" --readonly --rw=randread --bs=4k \
		--ioengine=psync --direct="$3" --invalidate=0 --numjobs="$2" --group_reporting \
		--time_based --runtime="$FIO_SECS" --norandommap --randrepeat=0 \
		--output-format=terse --terse-version=3 2>/dev/null) || return 1
	# terse v3: field 8 is the read IOPS
	printf '%s\n' "$out" | awk -F';' 'NF > 8 { printf "%.0f", $8; exit }'
}

case_rand() {
	local name=qcow2 tool cache cold run r jobs line iops file raw
	read -r file _ raw _ <<<"${DISK[$name]}"
	case_begin rand IOPS high "Random 4 KiB reads" \
"fio, psync, random 4 KiB reads for $FIO_SECS s over the whole 4 GiB disk of
*seq*'s qcow2 (half of it holes), 1 job and 4 jobs; IOPS of all jobs. The
FUSE files are read with O_DIRECT (\`--direct=1\`) so the kernel's page
cache of the FUSE file does not absorb repeats and every read reaches the
daemon; the raw file is read buffered from the page cache (the limit)."
	say "rand: checking each tool's bytes against $raw"
	for tool in vdmount qsd qcowmount raw; do verify_disk "$tool" "$name"; done
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		for jobs in 1 4; do
			r="$jobs job$([ "$jobs" = 1 ] || echo s), $cache"
			row rand "$r" vdmount qsd qcowmount raw
			[ "$cold" = 1 ] || cat "$WORK/$file" "$WORK/$raw" >/dev/null
			for ((run = 1; run <= RUNS; run++)); do
				line="rand $r, run $run/$RUNS:"
				for tool in vdmount qsd qcowmount raw; do
					! skip_bad rand "$r" "$tool" "$name" || continue
					[ -z "${WHY["rand|$r|$tool"]:-}" ] || continue
					iops='' REASON=''
					if [ "$tool" = raw ]; then
						[ "$cold" = 0 ] || drop_caches
						iops=$(fio_run "$WORK/$raw" "$jobs" 0) || iops=
					elif fuse_mount "$tool" "$WORK/$file"; then
						[ "$cold" = 0 ] || drop_caches
						iops=$(fio_run "$FLAT" "$jobs" 1) || iops=
						fuse_umount
					fi
					if [ -n "$iops" ]; then
						rec rand "$r" "$tool" "$iops"
						line="$line $tool $iops"
					else
						na rand "$r" "$tool" "n/a: ${REASON:-fio failed}"
						[ "$tool" != vdmount ] || FAILED=1
					fi
				done
				say "$line"
			done
		done
	done
}
