# bench/case-write.sh — writing (issue 23): vdmount --overlay=CHILD over a
# qcow2 base against qemu-storage-daemon's writable FUSE export
# (`writable=on`) of a child of the same kind (qemu-img create -b: qcow2
# v3, 64 KiB clusters, the same base), each run on a fresh child:
#   wseq    dd of 512 MiB in 1 MiB writes (O_DIRECT, fsync at the end);
#           and, as its ceiling, the same dd into a new host file (no
#           FUSE, no qcow2: buffered, one fsync)
#   wrand   fio random 4 KiB writes, 1 and 4 jobs (O_DIRECT)
#   wstart  creating the overlay and mounting it, to the first stat
#   wcp     cp -a of the files case's 20,000-file tree into p1/ of the
#           GPT+ext4 disk (gpt.qcow2) through vdmount --overlay, against
#           fuse2fs -o rw on a copy of the raw partition; and the same by
#           vdtool copy-in -p (each timed to the unmount or exit, when
#           everything is written)
# After every run the child is checked by `qemu-img check` (must be
# clean) and its bytes by QEMU: `qemu-img compare` against the expected
# disk (wseq), fio --verify_only over `qemu-img convert` of it (wrand).
# wcp's copies are checked after each run (not timed): qemu-img check of
# the child, e2fsck -fn of the written partition, and the kernel's ext4
# over it against the host tree (tree_sum of case-files.sh).
# And the images it needs (groups "write", "gpt" and "wtree").
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
# wtree/tree: the 20,000 files of gpt.qcow2's tree/ (make_tree, the same
# seed) on the host, for wcp to copy in.
SPEC[wtree]="v1 files=$G_FILES seed=7"
FILES_OF[wtree]="wtree.done"
VDTOOL=$BUILD/vdtool

img_wtree() {
	say "  wtree/tree: the files case's $G_FILES-file tree (make_tree) on the host"
	rm -rf "$WORK/wtree" "$WORK/wtree.done"
	mkdir -p "$WORK/wtree/tree"
	make_tree "$WORK/wtree/tree"
	: >"$WORK/wtree.done"
}

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
	# (a test first: wstart times this, and rm is an exec)
	[ ! -e "$W_CHILD" ] || rm -f "$W_CHILD"
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

# w_host_seq: wseq's ceiling, the same 512 MiB written by dd straight
# into a new file in the child's folder (no FUSE, no qcow2): buffered
# 1 MiB writes, then one fsync (conv=fsync), which is what both daemons
# do to their child (qemu-storage-daemon with cache.direct=off, vdmount
# by pwrite) for dd's O_DIRECT writes to their FUSE file and its fsync.
# oflag=direct here would instead wait for the disk on every 1 MiB
# write, which neither daemon does. Cold: the caches are dropped first,
# as after the others' mount. Checked after (not timed): cmp with
# wsrc.raw. w_host_seq COLD: sets V (MB/s) or returns 1 with REASON.
w_host_seq() {
	local cold=$1 f=$SCR/hostfile.raw
	rm -f "$f"
	[ "$cold" = 0 ] || drop_caches
	start_clock
	T dd if="$WORK/wsrc.raw" of="$f" bs=1M conv=fsync status=none ||
		{ rm -f "$f"; REASON="dd failed"; return 1; }
	stop_clock
	V=$(mbs_of "$W_SEQ" "$ELAPSED")
	T cmp -s "$f" "$WORK/wsrc.raw" ||
		{ rm -f "$f"; REASON="WRONG: the file is not what was written"; return 1; }
	rm -f "$f"
}

# w_op OP TOOL COLD [JOBS]: one timed run on a fresh child, then the
# checks; sets V (the figure) or returns 1 with REASON (WRONG: ... when
# the child or its bytes are wrong).
V=
w_op() {
	local op=$1 tool=$2 cold=$3 jobs=${4:-1} ok=1 i
	V=
	[ "$cold" = 1 ] || cat "$WORK/wbase.qcow2" "$WORK/wsrc.raw" >/dev/null
	case $op:$tool in
	wseq:hostfile)
		w_host_seq "$cold"
		return ;;
	wstart:*)
		# A child left by an earlier run is removed before the clock
		# starts: an exec of rm is no part of creating the overlay.
		rm -f "$SCR/child.qcow2"
		[ "$cold" = 0 ] || drop_caches
		start_clock
		w_mount "$tool" || return 1
		for ((i = 0; i < 5000; i++)); do
			[ ! -e "$FLAT" ] || break
			sleep 0.001
		done
		# Up to fuse_mount's first stat (READY_AT), as the start and
		# lvm cases time it: not the pgrep for the daemon's pid that
		# fuse_mount runs after it for vdmount only (10-60 ms here).
		ELAPSED=$(awk -v a="$T0" -v b="$READY_AT" 'BEGIN { printf "%.6f", b - a }')
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

# wc_verify ROOT: the copy at ROOT/wcopy/tree is the host tree; 1 with
# REASON. WC_MODES_ONLY=1 when only modes differ (then WC_MODE_EG: the
# first that does, "path: mode on the host, mode in the copy").
WC_REF=
WC_REF_NOMODE=
WC_MODES_ONLY=0
WC_MODE_EG=
wc_verify() {
	local t
	WC_MODES_ONLY=0 WC_MODE_EG=
	[ -n "$WC_REF" ] || WC_REF=$(tree_sum "$WORK/wtree")
	[ -n "$WC_REF_NOMODE" ] || WC_REF_NOMODE=$(wc_sum_nomode "$WORK/wtree")
	t=$(tree_sum "$1/wcopy") || t=
	[ "$t" != "$WC_REF" ] || return 0
	REASON="the copy differs from the host tree"
	t=$(wc_sum_nomode "$1/wcopy") || t=
	if [ "$t" = "$WC_REF_NOMODE" ]; then
		REASON="the copy's modes differ from the host tree's (names, types, sizes, links and contents are the same)"
		WC_MODES_ONLY=1
		WC_MODE_EG=$(LC_ALL=C join <(cd "$WORK/wtree" && T find tree -printf '%p %m\n' | LC_ALL=C sort) \
			<(cd "$1/wcopy" && T find tree -printf '%p %m\n' | LC_ALL=C sort) |
			awk '$2 != $3 { printf "%s: %s on the host, %s in the copy", $1, $2, $3; exit }')
	fi
	return 1
}

# wc_sum_nomode DIR: tree_sum without the modes
wc_sum_nomode() {
	(cd "$1" && {
		T find tree \( -type d -printf '%y %p\n' \) -o -printf '%y %p %s %l\n' | sort
		T find tree -type f -print0 | sort -z | T xargs -0 md5sum
	}) | md5sum | cut -d' ' -f1
}

# wc_note_modes: once per run, the note that fuse2fs's copies have
# wrong modes (its times are still shown)
WC_NOTED=0
wc_note_modes() {
	[ "$WC_NOTED" = 0 ] || return 0
	WC_NOTED=1
	note "wcp: fuse2fs's copy (checked by e2fsck -fn and the kernel's ext4) has every name, type, size, link and byte of the host tree but not its modes (${WC_MODE_EG:-?}): a fault of fuse2fs; its times are shown all the same."
}

# wc_check_fs FILE: e2fsck -fn of the partition FILE, then the kernel's
# ext4 over it against the host tree; 1 with REASON
wc_check_fs() {
	local out ok=0
	out=$(T e2fsck -fn "$1" 2>&1) ||
		{ REASON="e2fsck -fn: $(printf '%s\n' "$out" | tail -n 3 | tr '\n' ' ')"; return 1; }
	loop_attach "$1" || { REASON="losetup failed"; return 1; }
	if kmount "$LOOPDEV" "$SCR/wk"; then
		wc_verify "$SCR/wk" && ok=1
		kumount "$SCR/wk"
	else
		REASON="mount -t ext4 failed"
	fi
	loop_detach "$LOOPDEV"
	[ "$ok" = 1 ]
}

# wc_room TOOL: before the timed copy, big.bin (1 GiB) removed from a
# fresh child (vdmount, vdtool) or a fresh copy of the raw partition
# (fuse2fs), so that the tree fits beside the one already there; 1 with
# REASON.
wc_room() {
	local tool=$1 ok=1
	rm -f "$W_CHILD" "$SCR/f2fs.raw"
	if [ "$tool" = fuse2fs ]; then
		cp --sparse=always "$WORK/gpt-p1.raw" "$SCR/f2fs.raw" ||
			{ REASON="cannot copy the raw partition"; return 1; }
		FUSE2FS_MODE=rw
		fuse_mount fuse2fs "$SCR/f2fs.raw" || { FUSE2FS_MODE=ro; return 1; }
		FUSE2FS_MODE=ro
		rm -f "$MNT/big.bin" || ok=0
	else
		VD_ARGS=("--overlay=$W_CHILD" "--backing-dir=$WORK")
		fuse_mount vdmount "$WORK/gpt.qcow2" || { VD_ARGS=(); return 1; }
		VD_ARGS=()
		rm -f "$MNT/p1/big.bin" || ok=0
	fi
	fuse_umount
	[ "$ok" = 1 ] || { REASON="rm big.bin failed"; return 1; }
}

# wc_op TOOL COLD: one timed copy of wtree/tree into p1/wcopy/ (after
# wc_room), then its checks; sets V (ms) or returns 1 with REASON.
wc_op() {
	local tool=$1 cold=$2 ok=1
	V='' REASON=''
	W_CHILD=$SCR/child.qcow2
	wc_room "$tool" || return 1
	if [ "$cold" = 1 ]; then
		drop_caches
	else
		cat "$WORK/gpt.qcow2" >/dev/null
		T tar -C "$WORK/wtree" -cf - tree >/dev/null
	fi
	case $tool in
	vdmount)
		VD_ARGS=("--backing-dir=$WORK" --rw)
		fuse_mount vdmount "$W_CHILD" || { VD_ARGS=(); return 1; }
		VD_ARGS=()
		start_clock
		{ mkdir "$MNT/p1/wcopy" && T cp -a "$WORK/wtree/tree" "$MNT/p1/wcopy/"; } || ok=0
		fuse_umount
		stop_clock ;;
	vdtool)
		start_clock
		T "$VDTOOL" copy-in -p --parents --rw --backing-dir="$WORK" \
			"$W_CHILD" "$WORK/wtree/tree" /p1/wcopy/ >"$SCR/ci.log" 2>&1 || ok=0
		stop_clock
		[ "$ok" = 1 ] || REASON="copy-in failed: $(head -n 2 "$SCR/ci.log" | tr '\n' ' ')" ;;
	fuse2fs)
		FUSE2FS_MODE=rw
		fuse_mount fuse2fs "$SCR/f2fs.raw" || { FUSE2FS_MODE=ro; return 1; }
		FUSE2FS_MODE=ro
		start_clock
		{ mkdir "$MNT/wcopy" && T cp -a "$WORK/wtree/tree" "$MNT/wcopy/"; } || ok=0
		fuse_umount
		stop_clock ;;
	esac
	rm -f "$SCR/ci.log"
	[ "$ok" = 1 ] || { rm -f "$W_CHILD" "$SCR/f2fs.raw"; REASON=${REASON:-"cp -a failed"}; return 1; }
	V=$(ms_of "$ELAPSED")
	if [ "$tool" = fuse2fs ]; then
		WC_MODES_ONLY=0
		wc_check_fs "$SCR/f2fs.raw" || ok=0
		rm -f "$SCR/f2fs.raw"
		# Modes alone wrong: fuse2fs's own fault (how it sets the
		# modes cp -a asks for; the note names one), not a shortcut
		# that makes it faster: it wrote every file, folder and byte,
		# so its time is kept, with a note saying what is wrong.
		if [ "$ok" = 0 ] && [ "$WC_MODES_ONLY" = 1 ]; then
			wc_note_modes
			return 0
		fi
		[ "$ok" = 1 ] || { REASON="WRONG: $REASON; it took $V ms"; return 1; }
		return 0
	fi
	w_check || { rm -f "$W_CHILD"; REASON="WRONG: $REASON"; return 1; }
	VD_ARGS=("--backing-dir=$WORK")
	fuse_mount vdmount "$W_CHILD" || { VD_ARGS=(); rm -f "$W_CHILD"; return 1; }
	VD_ARGS=()
	wc_check_fs "$MNT/p1.raw" || ok=0
	fuse_umount
	rm -f "$W_CHILD"
	[ "$ok" = 1 ] || { REASON="WRONG: $REASON"; return 1; }
}

# w_want OPS: whether VDBENCH_WRITE_OPS (default "disk wcp") names OPS:
# disk (wseq, wrand, wstart), wcp
w_want() {
	case " ${VDBENCH_WRITE_OPS:-disk wcp} " in *" $1 "*) return 0 ;; esac
	return 1
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
child clean, \`qemu-img compare\` of the child with the expected disk.
*host file* (the ceiling, in the same rounds): \`dd if=wsrc.raw
of=NEW bs=1M conv=fsync\` into a new file in the child's folder, no FUSE,
no qcow2: buffered writes and one fsync, what both daemons do to their
child; checked by \`cmp\`."
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
	case_begin wcp ms low "Writing: cp -a of the guest's tree into p1/" \
"\`cp -a tree DEST\` of the files case's 20,000 files (0.5 GB, 500 folders,
made again on the host by the same generator) into p1/wcopy/ of the
GPT+ext4 disk: through \`vdmount --overlay=child.qcow2 --backing-dir=DIR
gpt.qcow2\` (a fresh child each run) and through \`fuse2fs -o rw,fakeroot\`
on a fresh copy of the raw partition, each with big.bin (1 GiB) removed
first, not timed, so that the copy fits; timed from the copy's start to
the end of the unmount (the daemon gone: everything written). vdtool:
\`vdtool copy-in -p --parents --rw child.qcow2 tree /p1/wcopy/\` on such
a child, to its exit. Checked after each (not timed): \`qemu-img check\` of the child,
\`e2fsck -fn\` of the written partition, the kernel's ext4 over it against
the host tree. Times: ratio = peer / vdmount."
	LABEL[vdtool]="vdtool copy-in"
	say "write: each run is checked (qemu-img check, the bytes) after it"
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r=$cache
		if w_want disk; then
			# shellcheck disable=SC2086
			row wseq "$r" $tools hostfile
			for jobs in 1 4; do
				# shellcheck disable=SC2086
				row wrand "$jobs job$([ "$jobs" = 1 ] || echo s), $r" $tools
			done
			# shellcheck disable=SC2086
			row wstart "$r" $tools
			have_tool qsd || na wseq "$r" qsd "n/a: ${MISSING[qsd]}"
			for ((run = 1; run <= RUNS; run++)); do
				line="wseq $r, run $run/$RUNS:"
				for tool in $tools hostfile; do
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
		fi
		if w_want wcp; then
			row wcp "$r" vdmount vdtool fuse2fs
			for ((run = 1; run <= RUNS; run++)); do
				line="wcp $r, run $run/$RUNS:"
				for tool in vdmount vdtool fuse2fs; do
					[ -z "${WHY["wcp|$r|$tool"]:-}" ] || continue
					if [ "$tool" = fuse2fs ] && ! have_tool fuse2fs; then
						na wcp "$r" fuse2fs "n/a: ${MISSING[fuse2fs]}"
						continue
					fi
					if wc_op "$tool" "$cold"; then
						rec wcp "$r" "$tool" "$V"
						line="$line $tool $V"
					else
						case $REASON in WRONG*) na wcp "$r" "$tool" "$REASON" ;;
						*) na wcp "$r" "$tool" "n/a: $REASON" ;; esac
						[ "$tool" = fuse2fs ] || FAILED=1
						say "  $tool: $REASON"
					fi
				done
				say "$line"
			done
		fi
	done
}
