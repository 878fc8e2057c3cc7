# bench/case-btrfs.sh — the guest's files out of a GPT+btrfs disk (issue
# 21), through vdmount's p1/ and through the kernel's btrfs (`mount -t
# btrfs -o ro`) on `losetup -r` over qcowmount's whole-disk file (with the
# partition's offset) and over the raw partition file (the limit):
#   bbig   dd of the 1 GiB file of random bytes (stored uncompressed)
#   bzbig  dd of a 1 GiB file stored zstd-compressed (compress-force=zstd),
#          with vdmount's CPU use
#   bfind  find -printf over the 20,000-file tree
# and the images it needs (group "btrfs").
# shellcheck shell=bash

BTRFS_TOOLS=${VDBENCH_BTRFS_TOOLS:-"vdmount btrfs-qcow btrfs-raw"}

# bgpt.qcow2: GPT, partition 1 at 1 MiB: btrfs (mkfs.btrfs defaults: data
# checksums, copy on write) filled by the kernel's read-write loop mount:
# big.bin (1 GiB of /dev/urandom) and tree/ (make_tree, the files case's
# 20,000 files) with the default mount options, then zbig.bin (1 GiB of
# this machine's /usr files concatenated) through a second mount with
# compress-force=zstd.
SPEC[btrfs]="v1 big=$G_BIG zbig=$G_BIG files=$G_FILES offset=$G_OFFSET seed=7 cluster=$CLUSTER zstd=compress-force"
FILES_OF[btrfs]="bgpt.raw bgpt-p1.raw bgpt.qcow2 bgpt.size bgpt.zref"

img_btrfs() {
	local src=$WORK/bgpt-src m=$WORK/bgpt-mnt psize used have
	[ "$(id -u)" = 0 ] || die "making the btrfs images needs root (the kernel's loop mount)"
	command -v mkfs.btrfs >/dev/null || die "making the btrfs images needs mkfs.btrfs (btrfs-progs)"
	say "  bgpt.raw: GPT, partition 1 btrfs (mkfs.btrfs, filled by the kernel) with a 1 GiB file, a 1 GiB zstd file and $G_FILES files"
	rm -rf "$src"
	mkdir -p "$src/tree" "$m"
	head -c "$G_BIG" /dev/urandom >"$src/big.bin"
	make_tree "$src/tree"
	find /usr -xdev -type f -size +16k -print0 2>/dev/null | sort -z |
		xargs -0 cat 2>/dev/null | head -c "$G_BIG" >"$src/zbig.bin" || true
	have=$(stat -c %s "$src/zbig.bin")
	[ "$have" -gt 0 ] || die "found no files to read in /usr"
	while [ "$have" -lt "$G_BIG" ]; do # a small /usr: repeat what there is
		cat "$src/zbig.bin" "$src/zbig.bin" | head -c "$G_BIG" >"$src/z2.tmp" || true
		mv "$src/z2.tmp" "$src/zbig.bin"
		have=$(stat -c %s "$src/zbig.bin")
	done
	used=$(du -sb "$src" | awk '{ print $1 }')
	psize=$(((used * 12 / 10 + 256 * MIB) / MIB * MIB))
	rm -f "$WORK/bgpt-p1.raw"
	truncate -s "$psize" "$WORK/bgpt-p1.raw"
	mkfs.btrfs -q -f -L bench "$WORK/bgpt-p1.raw" >/dev/null
	mount -t btrfs -o loop "$WORK/bgpt-p1.raw" "$m"
	KMOUNTS+=("$m")
	cp -a "$src/big.bin" "$src/tree" "$m/"
	kumount "$m"
	mount -t btrfs -o loop,compress-force=zstd "$WORK/bgpt-p1.raw" "$m"
	KMOUNTS+=("$m")
	cp -a "$src/zbig.bin" "$m/"
	sync
	kumount "$m"
	rmdir "$m"
	# the first 64 MiB of zbig.bin: what quick runs check vdmount's against
	head -c $((64 * MIB)) "$src/zbig.bin" >"$WORK/bgpt.zref"
	rm -rf "$src"
	gpt_disk bgpt linux "$psize"
}

# bt_open TOOL: the guest's root at $ROOT, or 1 with REASON; bt_close.
bt_open() {
	local tool=$1 psize
	psize=$(cat "$WORK/bgpt.size")
	ROOT='' FT_LOOP='' FT_K='' FT_FUSE='' REASON=''
	case $tool in
	vdmount)
		fuse_mount vdmount "$WORK/bgpt.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1
		return 0 ;;
	btrfs-qcow)
		fuse_mount qcowmount "$WORK/bgpt.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; bt_close; return 1; } ;;
	btrfs-raw)
		loop_attach "$WORK/bgpt-p1.raw" || { REASON="losetup failed"; return 1; } ;;
	*) die "bt_open: unknown tool $tool" ;;
	esac
	FT_LOOP=$LOOPDEV
	mkdir -p "$SCR/k-$tool"
	T mount -t btrfs -o ro "$FT_LOOP" "$SCR/k-$tool" ||
		{ REASON="mount -t btrfs failed"; bt_close; return 1; }
	KMOUNTS+=("$SCR/k-$tool")
	FT_K=$SCR/k-$tool ROOT=$FT_K
}
bt_close() { ft_close; }

# verify_btrfs: once per run, each tool's tree and files against the
# kernel's btrfs on the raw partition
verify_btrfs() {
	local tool t b z ref_t ref_b= ref_z=
	bt_open btrfs-raw || die "cannot mount the raw partition with the kernel's btrfs: $REASON"
	ref_t=$(tree_sum "$ROOT")
	if [ -z "$VERIFY_BYTES" ]; then
		ref_b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1)
		ref_z=$(T md5sum <"$ROOT/zbig.bin" | cut -d' ' -f1)
	fi
	bt_close
	for tool in $BTRFS_TOOLS; do
		[ "$tool" != btrfs-raw ] || continue
		[ -z "$VERIFY_BYTES" ] || [ "$tool" = vdmount ] || continue
		if ! have_tool "$tool"; then BAD["bgpt|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if ! bt_open "$tool"; then BAD["bgpt|$tool"]="n/a: $REASON"; continue; fi
		t=$(tree_sum "$ROOT") || t=
		b=$ref_b z=$ref_z
		if [ -z "$VERIFY_BYTES" ]; then
			b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1) || b=
			z=$(T md5sum <"$ROOT/zbig.bin" | cut -d' ' -f1) || z=
		elif [ "$tool" = vdmount ]; then
			# quick runs: the compressed file's first 64 MiB at least
			T cmp -s -n $((64 * MIB)) "$ROOT/zbig.bin" "$WORK/bgpt.zref" 2>/dev/null || z=bad
		fi
		bt_close
		[ "$t" = "$ref_t" ] && [ "$b" = "$ref_b" ] && [ "$z" = "$ref_z" ] ||
			BAD["bgpt|$tool"]="WRONG: its files differ from the kernel's btrfs on the raw partition"
	done
}

# bt_op OP TOOL COLD: one timed OP; or 1 with REASON; CPU for vdmount
bt_op() {
	local op=$1 tool=$2 cold=$3 ok=1 c0=
	CPU=
	[ "$cold" = 1 ] || cat "$WORK/bgpt.qcow2" "$WORK/bgpt-p1.raw" >/dev/null
	bt_open "$tool" || return 1
	[ "$cold" = 0 ] || drop_caches
	[ "$tool" != vdmount ] || c0=$(cpu_s "$DPID")
	start_clock
	case $op in
	bbig) T dd if="$ROOT/big.bin" of=/dev/null bs=1M status=none || ok=0 ;;
	bzbig) T dd if="$ROOT/zbig.bin" of=/dev/null bs=1M status=none || ok=0 ;;
	bfind) T find "$ROOT/tree" -printf '%p %s %T@\n' >/dev/null || ok=0 ;;
	esac
	stop_clock
	[ -z "$c0" ] || CPU=$(awk -v a="$c0" -v b="$(cpu_s "$DPID")" -v s="$ELAPSED" 'BEGIN { printf "%.2f", (b - a) / s }')
	bt_close
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

case_btrfs() {
	local cache cold run op tool r line v
	LABEL[btrfs-qcow]="btrfs on loop over qcowmount"
	LABEL[btrfs-raw]="btrfs on loop over the raw partition"
	case_begin bbig MB/s high "Copy-out of the guest's 1 GiB file (btrfs)" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` (1 GiB of random bytes, stored
uncompressed, with data checksums, in btrfs in partition 1 of a GPT qcow2
disk): through vdmount's p1/; through the kernel's btrfs (\`mount -t btrfs
-o ro\`) on \`losetup -r\` over qcowmount's whole-disk file (with the
partition's offset) and over the raw partition file (the limit). Fresh
mounts and loop devices for every read."
	case_begin bzbig MB/s high "Copy-out of a 1 GiB zstd-compressed file (btrfs)" \
"\`dd bs=1M\` of zbig.bin: 1 GiB of this machine's /usr files concatenated,
written through a \`compress-force=zstd\` mount (128 KiB compressed
extents); the same tools. *vdmount CPU use*: the daemon's CPU seconds over
the read's wall time (2.00 = both cores)."
	case_begin bfind ms low "find over the guest's tree (btrfs)" \
"\`find tree -printf '%p %s %T@\\n' >/dev/null\`: names, sizes and times of the
20,500 entries, metadata only, on a fresh mount; the same tools."
	say "btrfs: checking each tool's files against the kernel's btrfs on the raw partition"
	verify_btrfs
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		row bbig "$r" $BTRFS_TOOLS
		row bzbig "$r" $BTRFS_TOOLS vdmount-cpu
		row bfind "$r" $BTRFS_TOOLS
		for ((run = 1; run <= RUNS; run++)); do
			for op in bbig bzbig bfind; do
				line="$op $r, run $run/$RUNS:"
				for tool in $BTRFS_TOOLS; do
					! skip_bad "$op" "$r" "$tool" bgpt || continue
					[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
					if bt_op "$op" "$tool" "$cold"; then
						if [ "$op" = bfind ]; then v=$(ms_of "$ELAPSED")
						else v=$(mbs_of "$G_BIG" "$ELAPSED"); fi
						rec "$op" "$r" "$tool" "$v"
						line="$line $tool $v"
						if [ "$op" = bzbig ] && [ -n "$CPU" ]; then
							rec bzbig "$r" vdmount-cpu "$CPU"
							line="$line (cpu $CPU)"
						fi
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
