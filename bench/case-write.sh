# bench/case-write.sh — writing (issue 23): vdmount --overlay=CHILD over a
# qcow2 base against qemu-storage-daemon's writable FUSE export
# (`writable=on`) of a child of the same kind (qemu-img create -b: qcow2
# v3, 64 KiB clusters, the same base), each run on a fresh child:
#   wseq    dd of 512 MiB in 1 MiB writes (O_DIRECT, fsync at the end)
#   wrand   fio random 4 KiB writes, 1 and 4 jobs (O_DIRECT)
#   wstart  creating the overlay and mounting it, to the first stat
# After every run the child is checked by `qemu-img check` (must be
# clean) and its bytes by QEMU: `qemu-img compare` against the expected
# disk (wseq), fio --verify_only over `qemu-img convert` of it (wrand).
# And the images it needs (group "write").
# shellcheck shell=bash

# wbase.qcow2: 1 GiB virtual, 512 MiB of /dev/urandom in 1 MiB runs with
# a 1 MiB hole after each (wbase.raw, as the other disks); wsrc.raw: 512
# MiB of /dev/urandom, what wseq writes at offset 0; wseq.raw: the disk
# as it must be after that.
W_VSIZE=$GIB
W_CHUNKS=512
W_SEQ=$((512 * MIB))
W_FIO_IO=$((32 * MIB)) # bytes fio writes per run, all jobs together
SPEC[write]="v1 vsize=$W_VSIZE chunks=$W_CHUNKS cluster=$CLUSTER seq=$W_SEQ"
FILES_OF[write]="wbase.raw wbase.qcow2 wsrc.raw wseq.raw"

img_write() {
	say "  wbase.raw: 512 MiB of /dev/urandom in a 1 GiB sparse disk; wbase.qcow2: qemu-img convert"
	head -c $((W_CHUNKS * MIB)) /dev/urandom >"$WORK/src.tmp"
	scatter "$WORK/src.tmp" "$WORK/wbase.raw" "$W_VSIZE" "$W_CHUNKS"
	rm -f "$WORK/src.tmp"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/wbase.raw" "$WORK/wbase.qcow2"
	say "  wsrc.raw: 512 MiB of /dev/urandom; wseq.raw: wbase.raw with it at offset 0"
	head -c "$W_SEQ" /dev/urandom >"$WORK/wsrc.raw"
	rm -f "$WORK/wseq.raw"
	cp --sparse=always "$WORK/wbase.raw" "$WORK/wseq.raw"
	dd if="$WORK/wsrc.raw" of="$WORK/wseq.raw" bs=1M conv=notrunc status=none
}

# w_mount TOOL: a fresh child ($SCR/child.qcow2) over wbase.qcow2, mounted
# writable by TOOL; the disk at $FLAT. 1 with REASON.
W_CHILD=
w_mount() {
	local tool=$1 ok=0
	W_CHILD=$SCR/child.qcow2
	rm -f "$W_CHILD"
	case $tool in
	vdmount)
		VD_ARGS=("--overlay=$W_CHILD" "--backing-dir=$WORK")
		fuse_mount vdmount "$WORK/wbase.qcow2" && ok=1
		VD_ARGS=() ;;
	qsd)
		T qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER \
			-b "$WORK/wbase.qcow2" -F qcow2 "$W_CHILD" ||
			{ REASON="qemu-img create failed"; return 1; }
		QSD_WRITABLE=on
		fuse_mount qsd "$W_CHILD" && ok=1
		QSD_WRITABLE=off ;;
	esac
	[ "$ok" = 1 ]
}

# w_check: after the unmount, QEMU's check of the child; 1 with REASON
w_check() {
	local out
	out=$(T qemu-img check -f qcow2 "$W_CHILD" 2>&1) ||
		{ REASON="qemu-img check of the child: $(printf '%s\n' "$out" | grep -m1 -i -e error -e leak -e corrupt || printf '%s' "$out" | tail -n1)"; return 1; }
}

# w_fio FILE JOBS MODE: random 4 KiB writes of W_FIO_IO bytes in all,
# each job in its own 1/JOBS of the first 512 MiB, a crc32c header in
# every block; MODE verify: no writing, check what an earlier run with
# the same arguments wrote. Sets FIO_IOPS, the write IOPS of all jobs.
FIO_IOPS=
w_fio() {
	local f=$1 jobs=$2 mode=$3 span out opts=()
	span=$((W_SEQ / jobs))
	# (--do_verify=0 on the verifying run would verify nothing)
	if [ "$mode" = verify ]; then opts=(--verify_only); else opts=(--do_verify=0); fi
	# in $SCR, with no verify state saved: fio writes one file per job
	# into its folder otherwise
	out=$(cd "$SCR" && T fio --name=wrand --filename="$f" --rw=randwrite --bs=4k \
		--ioengine=psync --direct=1 --invalidate=0 --fallocate=none \
		--numjobs="$jobs" --group_reporting --size="$span" --offset_increment="$span" \
		--io_size=$((W_FIO_IO / jobs)) --randseed=23 --verify=crc32c --verify_state_save=0 \
		"${opts[@]}" --output-format=terse --terse-version=3 2>&1) || {
		REASON="fio ${opts[*]} failed: $(printf '%s\n' "$out" | grep -m1 -i -e verify -e error)"
		return 1
	}
	# terse v3: field 49 is the write IOPS
	FIO_IOPS=$(printf '%s\n' "$out" | awk -F';' 'NF > 49 { printf "%.0f", $49; exit }')
}

# w_op OP TOOL COLD [JOBS]: one timed run on a fresh child, then the
# checks; sets V (the figure) or returns 1 with REASON (WRONG: ... when
# the child or its bytes are wrong).
V=
w_op() {
	local op=$1 tool=$2 cold=$3 jobs=${4:-1} ok=1 i
	V=
	[ "$cold" = 1 ] || cat "$WORK/wbase.qcow2" "$WORK/wsrc.raw" >/dev/null
	case $op in
	wstart)
		[ "$cold" = 0 ] || drop_caches
		start_clock
		w_mount "$tool" || return 1
		for ((i = 0; i < 5000; i++)); do
			[ ! -e "$FLAT" ] || break
			sleep 0.001
		done
		stop_clock
		V=$(ms_of "$ELAPSED") ;;
	*)
		w_mount "$tool" || return 1
		[ "$cold" = 0 ] || drop_caches
		case $op in
		wseq)
			start_clock
			T dd if="$WORK/wsrc.raw" of="$FLAT" bs=1M oflag=direct conv=notrunc,fsync \
				status=none || ok=0
			stop_clock
			V=$(mbs_of "$W_SEQ" "$ELAPSED") ;;
		wrand)
			w_fio "$FLAT" "$jobs" write && V=$FIO_IOPS || ok=0 ;;
		esac ;;
	esac
	fuse_umount
	[ "$ok" = 1 ] || { REASON=${REASON:-"$op failed"}; return 1; }
	w_check || { REASON="WRONG: $REASON"; return 1; }
	case $op in
	wseq)
		T qemu-img compare -q -f qcow2 -F raw "$W_CHILD" "$WORK/wseq.raw" ||
			{ REASON="WRONG: qemu-img compare: the child's disk is not what was written"; return 1; } ;;
	wrand)
		T qemu-img convert -f qcow2 -O raw "$W_CHILD" "$SCR/wcheck.raw" ||
			{ REASON="qemu-img convert of the child failed"; return 1; }
		w_fio "$SCR/wcheck.raw" "$jobs" verify ||
			{ rm -f "$SCR/wcheck.raw"; REASON="WRONG: $REASON"; return 1; }
		rm -f "$SCR/wcheck.raw" ;;
	esac
	rm -f "$W_CHILD"
}

case_write() {
	local cache cold run r tool line jobs tools=vdmount
	have_tool qsd && tools="vdmount qsd"
	case_begin wseq MB/s high "Writing: sequential 1 MiB writes" \
"\`dd if=wsrc.raw of=…/disk.raw bs=1M oflag=direct conv=notrunc,fsync\`: 512 MiB
of random bytes over the first half of a 1 GiB qcow2 disk holding 512 MiB
in 1 MiB runs, through \`vdmount --overlay=child.qcow2 --backing-dir=DIR
wbase.qcow2\` (DIR: the base's folder; the child is in another) and
through qemu-storage-daemon's writable FUSE export of a child made by
\`qemu-img create -f qcow2 -b wbase.qcow2\` (64 KiB clusters); a fresh
child every run. Checked after each (not timed): \`qemu-img check\` of the
child clean, \`qemu-img compare\` of the child with the expected disk."
	case_begin wrand IOPS high "Writing: random 4 KiB writes" \
"fio, psync, O_DIRECT, random 4 KiB writes, $((W_FIO_IO / MIB)) MiB in all
(each job in its own part of the first 512 MiB, no block twice), 1 and 4
jobs, on a fresh child each run; the same tools. Checked after each:
\`qemu-img check\` clean, and \`fio --verify_only\` (crc32c headers) over
\`qemu-img convert\` of the child."
	case_begin wstart ms low "Writing: creating the overlay and mounting it" \
"vdmount: from starting \`vdmount --overlay=child.qcow2 --backing-dir=DIR
wbase.qcow2 MNT\` (the
child not yet there) to the first stat of \`MNT/disk.raw\`;
qemu-storage-daemon: \`qemu-img create -b\` of the child, then the
writable export until stat shows its size. Median of $STARTS."
	say "write: each run is checked (qemu-img check, the bytes) after it"
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r=$cache
		# shellcheck disable=SC2086
		row wseq "$r" $tools
		for jobs in 1 4; do
			# shellcheck disable=SC2086
			row wrand "$jobs job$([ "$jobs" = 1 ] || echo s), $r" $tools
		done
		# shellcheck disable=SC2086
		row wstart "$r" $tools
		have_tool qsd || na wseq "$r" qsd "n/a: ${MISSING[qsd]}"
		for ((run = 1; run <= RUNS; run++)); do
			line="wseq $r, run $run/$RUNS:"
			for tool in $tools; do
				[ -z "${WHY["wseq|$r|$tool"]:-}" ] || continue
				if w_op wseq "$tool" "$cold"; then
					rec wseq "$r" "$tool" "$V"
					line="$line $tool $V"
				else
					case $REASON in WRONG*) na wseq "$r" "$tool" "$REASON" ;;
					*) na wseq "$r" "$tool" "n/a: $REASON" ;; esac
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
			say "$line"
			if have_tool fio; then
				for jobs in 1 4; do
					local rr="$jobs job$([ "$jobs" = 1 ] || echo s), $r"
					line="wrand $rr, run $run/$RUNS:"
					for tool in $tools; do
						[ -z "${WHY["wrand|$rr|$tool"]:-}" ] || continue
						if w_op wrand "$tool" "$cold" "$jobs" && [ -n "$V" ]; then
							rec wrand "$rr" "$tool" "$V"
							line="$line $tool $V"
						else
							case ${REASON:-} in WRONG*) na wrand "$rr" "$tool" "$REASON" ;;
							*) na wrand "$rr" "$tool" "n/a: ${REASON:-fio gave no figure}" ;; esac
							[ "$tool" != vdmount ] || FAILED=1
							say "  $tool: $REASON"
						fi
					done
					say "$line"
				done
			else
				for tool in $tools; do
					na wrand "1 job, $r" "$tool" "n/a: ${MISSING[fio]}"
					na wrand "4 jobs, $r" "$tool" "n/a: ${MISSING[fio]}"
				done
			fi
		done
		line="wstart $r:"
		for ((run = 1; run <= STARTS; run++)); do
			for tool in $tools; do
				[ -z "${WHY["wstart|$r|$tool"]:-}" ] || continue
				if w_op wstart "$tool" "$cold"; then
					rec wstart "$r" "$tool" "$V"
					line="$line $tool $V"
				else
					case $REASON in WRONG*) na wstart "$r" "$tool" "$REASON" ;;
					*) na wstart "$r" "$tool" "n/a: $REASON" ;; esac
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
		done
		say "$line"
	done
}
