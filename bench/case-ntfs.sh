# bench/case-ntfs.sh — reading the guest's files out of the GPT+NTFS disk
# (issue 20):
#   nbig   copy-out of the 1 GiB file (dd bs=1M to /dev/null)
#   ncp    cp -a of the 20,000-file tree (to the tmpfs of case-files.sh)
#   nfind  find -printf over the tree (metadata only)
# through vdmount's p1/, and through ntfs-3g -o ro on a read-only loop
# device over the raw partition file (ntfs3g-raw) and over qcowmount's
# whole-disk file at the partition's offset (ntfs3g-qcow).
# shellcheck shell=bash

NTFS_TOOLS=${VDBENCH_NTFS_TOOLS:-"vdmount ntfs3g-raw ntfs3g-qcow"}

# nt_open TOOL: the guest's root at $ROOT, or 1 with REASON; nt_close
# undoes it. A fresh mount for every timed operation.
NT_K=
nt_open() {
	local tool=$1 psize
	psize=$(cat "$WORK/ntfs.size")
	ROOT='' FT_LOOP='' NT_K='' FT_FUSE='' REASON=''
	case $tool in
	vdmount)
		fuse_mount vdmount "$WORK/ntfs.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1
		return 0 ;;
	ntfs3g-raw)
		loop_attach "$WORK/ntfs-p1.raw" || { REASON="losetup failed"; return 1; } ;;
	ntfs3g-qcow)
		fuse_mount qcowmount "$WORK/ntfs.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; nt_close; return 1; } ;;
	*) die "nt_open: unknown tool $tool" ;;
	esac
	FT_LOOP=$LOOPDEV
	mkdir -p "$SCR/n-$tool"
	T ntfs-3g -o ro "$FT_LOOP" "$SCR/n-$tool" || { REASON="ntfs-3g -o ro failed"; nt_close; return 1; }
	KMOUNTS+=("$SCR/n-$tool")
	NT_K=$SCR/n-$tool ROOT=$NT_K
}
nt_close() {
	[ -z "$NT_K" ] || kumount "$NT_K"
	[ -z "$FT_LOOP" ] || loop_detach "$FT_LOOP"
	[ -z "$FT_FUSE" ] || fuse_umount
	NT_K='' FT_LOOP='' FT_FUSE=''
}

# verify_ntfs: once per run, each tool's tree and big file against
# ntfs-3g on the raw partition (the oracle: not our code)
verify_ntfs() {
	local tool t b ref_t ref_b=
	nt_open ntfs3g-raw || die "cannot mount the raw NTFS partition with ntfs-3g: $REASON"
	ref_t=$(tree_sum "$ROOT")
	[ -n "$VERIFY_BYTES" ] || ref_b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1)
	nt_close
	for tool in $NTFS_TOOLS; do
		[ "$tool" != ntfs3g-raw ] || continue
		[ "$tool" != ntfs3g-qcow ] || have_tool qcowmount ||
			{ BAD["ntfs|$tool"]="n/a: ${MISSING[qcowmount]}"; continue; }
		if ! nt_open "$tool"; then BAD["ntfs|$tool"]="n/a: $REASON"; continue; fi
		t=$(tree_sum "$ROOT") || t=
		b=$ref_b
		[ -n "$VERIFY_BYTES" ] || b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1) || b=
		nt_close
		[ "$t" = "$ref_t" ] && [ "$b" = "$ref_b" ] ||
			BAD["ntfs|$tool"]="WRONG: its files differ from ntfs-3g's on the raw partition"
	done
}

# nt_op OP TOOL COLD: one timed OP; records into case OP, or returns 1
nt_op() {
	local op=$1 tool=$2 cold=$3 ok=1
	[ "$cold" = 1 ] || cat "$WORK/ntfs.qcow2" "$WORK/ntfs-p1.raw" >/dev/null
	nt_open "$tool" || return 1
	[ "$cold" = 0 ] || drop_caches
	start_clock
	case $op in
	nbig) T dd if="$ROOT/big.bin" of=/dev/null bs=1M status=none || ok=0 ;;
	ncp) T cp -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
	nfind) T find "$ROOT/tree" -printf '%p %s %T@\n' >/dev/null || ok=0 ;;
	esac
	stop_clock
	nt_close
	if [ "$op" = ncp ]; then rm -rf "$SCR/cp/tree"; sync; fi
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

case_ntfs() {
	local cache cold run op tool r line v
	cp_dest
	case_begin nbig MB/s high "NTFS: copy-out of the guest's 1 GiB file" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` (1 GiB of random bytes on NTFS in
partition 1 of a GPT qcow2 disk): through vdmount's p1/; through
\`ntfs-3g -o ro\` on \`losetup -r\` over the raw partition file and over
qcowmount's whole-disk file (with the partition's offset). Fresh mounts
and loop devices for every read."
	case_begin ncp ms low "NTFS: cp -a of the guest's tree" \
"\`cp -a tree/ DEST\` of 20,000 files (0.5 GB, 500 folders) to $CP_WHERE,
the same tools. Times: ratio = peer / vdmount, above 1 vdmount is faster."
	case_begin nfind ms low "NTFS: find over the guest's tree" \
"\`find tree -printf '%p %s %T@\\n' >/dev/null\`: names, sizes and times of the
20,500 entries, metadata only, on a fresh mount."
	say "ntfs: checking each tool's files against ntfs-3g on the raw partition"
	verify_ntfs
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		for op in nbig ncp nfind; do row "$op" "$r" $NTFS_TOOLS; done
		for ((run = 1; run <= RUNS; run++)); do
			for op in nbig ncp nfind; do
				line="$op $r, run $run/$RUNS:"
				for tool in $NTFS_TOOLS; do
					! skip_bad "$op" "$r" "$tool" ntfs || continue
					if nt_op "$op" "$tool" "$cold"; then
						if [ "$op" = nbig ]; then v=$(mbs_of "$G_BIG" "$ELAPSED")
						else v=$(ms_of "$ELAPSED"); fi
						rec "$op" "$r" "$tool" "$v"
						line="$line $tool $v"
					else
						na "$op" "$r" "$tool" "n/a: $REASON"
						[ "$tool" != vdmount ] || FAILED=1
						say "  $tool: $REASON"
					fi
				done
				say "$line"
			done
		done
	done
}
