# bench/case-xfs.sh — the guest's files out of the GPT+XFS disk (issue
# 19): the same three operations as case-files.sh (xbig: dd of the 1 GiB
# file, xcp: cp -a of the 20,000-file tree, xfind: find -printf over it),
# through vdmount's p1/ and through the kernel's XFS (`mount -t xfs -o
# ro,norecovery`) on `losetup -r` over qcowmount's whole-disk file (with
# the partition's offset) and over the raw partition file (the limit).
# shellcheck shell=bash

XFS_TOOLS=${VDBENCH_XFS_TOOLS:-"vdmount xfs-qcow xfs-raw"}

# xf_open TOOL: the guest's root at $ROOT, or 1 with REASON; xf_close.
xf_open() {
	local tool=$1 psize
	psize=$(cat "$WORK/xgpt.size")
	ROOT='' FT_LOOP='' FT_K='' FT_FUSE='' REASON=''
	case $tool in
	vdmount)
		fuse_mount vdmount "$WORK/xgpt.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1
		return 0 ;;
	xfs-qcow)
		fuse_mount qcowmount "$WORK/xgpt.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; xf_close; return 1; } ;;
	xfs-raw)
		loop_attach "$WORK/xgpt-p1.raw" || { REASON="losetup failed"; return 1; } ;;
	*) die "xf_open: unknown tool $tool" ;;
	esac
	FT_LOOP=$LOOPDEV
	mkdir -p "$SCR/k-$tool"
	T mount -t xfs -o ro,norecovery "$FT_LOOP" "$SCR/k-$tool" ||
		{ REASON="mount -t xfs failed"; xf_close; return 1; }
	KMOUNTS+=("$SCR/k-$tool")
	FT_K=$SCR/k-$tool ROOT=$FT_K
}
xf_close() { ft_close; }

# verify_xfs: once per run, each tool's tree and big file against the
# kernel's XFS on the raw partition
verify_xfs() {
	local tool t b ref_t ref_b=
	xf_open xfs-raw || die "cannot mount the raw partition with the kernel's XFS: $REASON"
	ref_t=$(tree_sum "$ROOT")
	[ -n "$VERIFY_BYTES" ] || ref_b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1)
	xf_close
	for tool in $XFS_TOOLS; do
		[ "$tool" != xfs-raw ] || continue
		[ -z "$VERIFY_BYTES" ] || [ "$tool" = vdmount ] || continue
		if ! have_tool "$tool"; then BAD["xgpt|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if ! xf_open "$tool"; then BAD["xgpt|$tool"]="n/a: $REASON"; continue; fi
		t=$(tree_sum "$ROOT") || t=
		b=$ref_b
		[ -n "$VERIFY_BYTES" ] || b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1) || b=
		xf_close
		[ "$t" = "$ref_t" ] && [ "$b" = "$ref_b" ] ||
			BAD["xgpt|$tool"]="WRONG: its files differ from the kernel's XFS on the raw partition"
	done
}

# xfs_op OP TOOL COLD: one timed OP; or 1 with REASON
xfs_op() {
	local op=$1 tool=$2 cold=$3 ok=1
	[ "$cold" = 1 ] || cat "$WORK/xgpt.qcow2" "$WORK/xgpt-p1.raw" >/dev/null
	xf_open "$tool" || return 1
	[ "$cold" = 0 ] || drop_caches
	start_clock
	case $op in
	xbig) T dd if="$ROOT/big.bin" of=/dev/null bs=1M status=none || ok=0 ;;
	xcp) T cp -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
	xfind) T find "$ROOT/tree" -printf '%p %s %T@\n' >/dev/null || ok=0 ;;
	esac
	stop_clock
	xf_close
	if [ "$op" = xcp ]; then rm -rf "$SCR/cp/tree"; sync; fi
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

case_xfs() {
	local cache cold run op tool r line v
	cp_dest
	case_begin xbig MB/s high "Copy-out of the guest's 1 GiB file (XFS)" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` (1 GiB of random bytes in XFS in
partition 1 of a GPT qcow2 disk): through vdmount's p1/; through the
kernel's XFS (\`mount -o ro,norecovery\`) on \`losetup -r\` over
qcowmount's whole-disk file (with the partition's offset) and over the raw
partition file (the limit). Fresh mounts and loop devices for every read."
	case_begin xcp ms low "cp -a of the guest's tree (XFS)" \
"\`cp -a tree/ DEST\` of 20,000 files (0.5 GB, 500 folders) to $CP_WHERE,
deleted (and synced) after each run, not timed; the same tools."
	case_begin xfind ms low "find over the guest's tree (XFS)" \
"\`find tree -printf '%p %s %T@\\n' >/dev/null\`: names, sizes and times of the
20,500 entries, metadata only, on a fresh mount."
	say "xfs: checking each tool's files against the kernel's XFS on the raw partition"
	verify_xfs
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		row xbig "$r" $XFS_TOOLS
		row xcp "$r" $XFS_TOOLS
		row xfind "$r" $XFS_TOOLS
		for ((run = 1; run <= RUNS; run++)); do
			for op in xbig xcp xfind; do
				line="$op $r, run $run/$RUNS:"
				for tool in $XFS_TOOLS; do
					! skip_bad "$op" "$r" "$tool" xgpt || continue
					[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
					if xfs_op "$op" "$tool" "$cold"; then
						if [ "$op" = xbig ]; then v=$(mbs_of "$G_BIG" "$ELAPSED")
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
