# bench/case-fsmeta.sh — issue 28's metadata operations on the other
# guest filesystems: the 20,000-file tree (the *files* case's, 500
# folders) on vfat, XFS, btrfs and NTFS, each in partition 1 of a GPT
# qcow2, read through vdmount's p1/ and through the tool that reads that
# filesystem best on this machine, on the raw partition file:
#   the kernel's XFS and btrfs (`losetup -r` + `mount -o ro`, as the xfs
#   and btrfs cases mount them), ntfs-3g -o ro (as the ntfs case), and
#   mtools for vfat (this kernel has no vfat; mtools reads the file).
# Operations, on a fresh mount each:
#   fmls     ls -lR of the tree (20,500 entries: what ls -l of a big
#            folder does, the ACL and label probes included), mtools:
#            mdir -/ -a
#   fmfindp  find -printf '%s %m %u' over the tree (no mtools peer)
#   fmcp     cp -a of the tree to the tmpfs, mtools: mcopy -s -m
#   fmrsync  rsync -a of the tree to the tmpfs (no mtools peer)
# The XFS, btrfs and NTFS images are the xfs, btrfs and ntfs cases'
# (groups xgpt, btrfs, ntfs); vfat's is its own group, fgpt.
# shellcheck shell=bash

SPEC[fgpt]="v1 files=$G_FILES offset=$G_OFFSET seed=7 cluster=$CLUSTER fat32 mcopy"
FILES_OF[fgpt]="fgpt.raw fgpt-p1.raw fgpt.qcow2 fgpt.size"
FSMETA_FS=${VDBENCH_FSMETA_FS:-"vfat xfs btrfs ntfs"}
FSMETA_OPS="fmls fmfindp fmcp fmrsync"

# The tree on FAT32 (mkfs.vfat, filled by mcopy -s: FAT has no symlinks,
# so the tree's up-links are left out).
img_fgpt() {
	local src=$WORK/fgpt-src psize used
	say "  fgpt.raw: GPT, partition 1 FAT32 (mkfs.vfat, filled by mcopy) with $G_FILES files"
	command -v mkfs.vfat >/dev/null || die "mkfs.vfat not found (apt-get install dosfstools)"
	command -v mcopy >/dev/null || die "mcopy not found (apt-get install mtools)"
	rm -rf "$src"
	mkdir -p "$src/tree"
	make_tree "$src/tree"
	find "$src/tree" -type l -delete
	used=$(du -sb "$src" | awk '{ print $1 }')
	psize=$(((used * 12 / 10 + 256 * MIB) / MIB * MIB))
	rm -f "$WORK/fgpt-p1.raw"
	truncate -s "$psize" "$WORK/fgpt-p1.raw"
	mkfs.vfat -F 32 -n BENCH "$WORK/fgpt-p1.raw" >/dev/null
	MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$WORK/fgpt-p1.raw" "$src/tree" ::/ ||
		die "mcopy of the tree into fgpt-p1.raw failed"
	rm -rf "$src"
	gpt_disk fgpt EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 "$psize"
}

# fm_img FS: the image group FS's files belong to
fm_img() {
	case $1 in vfat) echo fgpt ;; xfs) echo xgpt ;; btrfs) echo btrfs ;; ntfs) echo ntfs ;; esac
}

# fm_peer FS: who reads FS on the raw partition, for the report
fm_peer() {
	case $1 in vfat) echo "mtools" ;; ntfs) echo "ntfs-3g" ;; *) echo "the kernel's $1" ;; esac
}

# fm_stem FS: the image file name stem (WORK/STEM.qcow2, STEM-p1.raw)
fm_stem() {
	case $1 in vfat) echo fgpt ;; xfs) echo xgpt ;; btrfs) echo bgpt ;; ntfs) echo ntfs ;; esac
}

# fm_open FS TOOL: the tree's parent at $ROOT (empty for mtools, which
# reads the partition file itself), or 1 with REASON; fm_close FS.
fm_open() {
	local fs=$1 tool=$2
	ROOT='' FT_LOOP='' FT_K='' FT_FUSE='' NT_K='' REASON=''
	case $fs:$tool in
	vfat:vdmount)
		fuse_mount vdmount "$WORK/fgpt.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1 ;;
	vfat:peer) ;;
	xfs:vdmount) xf_open vdmount ;;
	xfs:peer) xf_open xfs-raw ;;
	btrfs:vdmount) bt_open vdmount ;;
	btrfs:peer) bt_open btrfs-raw ;;
	ntfs:vdmount) nt_open vdmount ;;
	ntfs:peer) nt_open ntfs3g-raw ;;
	*) die "fm_open: unknown $fs:$tool" ;;
	esac
}
fm_close() {
	case $1 in
	ntfs) nt_close ;;
	*) ft_close ;;
	esac
}

# content_sum DIR: one hash over DIR/tree's names, types, file sizes and
# contents (no modes, owners or links: FAT has none of them)
content_sum() {
	(cd "$1" && {
		T find tree -type f -printf 'f %p %s\n' -o -type d -printf 'd %p\n' | sort
		T find tree -type f -print0 | sort -z | T xargs -0 md5sum
	}) | md5sum | cut -d' ' -f1
}

# verify_fsmeta: once per run, vdmount's vfat tree against what mtools
# copies out (the other filesystems' trees are checked by their own
# cases' verify functions, called here too)
verify_fsmeta() {
	local fs ref got
	for fs in $FSMETA_FS; do
		case $fs in
		xfs) XFS_TOOLS="vdmount xfs-raw" verify_xfs ;;
		btrfs) BTRFS_TOOLS="vdmount btrfs-raw" verify_btrfs ;;
		ntfs) NTFS_TOOLS="vdmount ntfs3g-raw" verify_ntfs ;;
		vfat)
			rm -rf "$SCR/cp/tree"
			MTOOLS_SKIP_CHECK=1 T mcopy -s -m -n -i "$WORK/fgpt-p1.raw" ::/tree "$SCR/cp/" ||
				die "mcopy -s out of fgpt-p1.raw failed"
			ref=$(content_sum "$SCR/cp")
			rm -rf "$SCR/cp/tree"
			if ! fm_open vfat vdmount; then
				BAD["fgpt|vdmount"]="n/a: $REASON"
				continue
			fi
			got=$(content_sum "$ROOT") || got=
			fm_close vfat
			[ "$got" = "$ref" ] ||
				BAD["fgpt|vdmount"]="WRONG: its vfat tree differs from what mcopy -s copies out"
			;;
		esac
	done
}

# fm_op OP FS TOOL COLD: one timed OP; or 1 with REASON
fm_op() {
	local op=$1 fs=$2 tool=$3 cold=$4 ok=1 stem img
	stem=$(fm_stem "$fs")
	img=$WORK/$stem-p1.raw
	[ "$cold" = 1 ] || cat "$WORK/$stem.qcow2" "$img" >/dev/null
	fm_open "$fs" "$tool" || return 1
	[ "$cold" = 0 ] || drop_caches
	start_clock
	if [ "$fs:$tool" = vfat:peer ]; then
		export MTOOLS_SKIP_CHECK=1
		case $op in
		fmls) T mdir -/ -a -i "$img" ::/tree >/dev/null || ok=0 ;;
		fmcp) T mcopy -s -m -n -i "$img" ::/tree "$SCR/cp/" || ok=0 ;;
		esac
	else
		case $op in
		fmls) T ls -lR "$ROOT/tree" >/dev/null || ok=0 ;;
		fmfindp) T find "$ROOT/tree" -printf '%s %m %u\n' >/dev/null || ok=0 ;;
		fmcp) T cp -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
		fmrsync) T rsync -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
		esac
	fi
	stop_clock
	fm_close "$fs"
	case $op in fmcp | fmrsync) rm -rf "$SCR/cp/tree"; sync ;; esac
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

case_fsmeta() {
	local cache cold run op tool r line v fs g
	cp_dest
	LABEL[peer]="kernel XFS or btrfs, ntfs-3g or mtools on the raw partition"
	LABEL[btrfs-qcow]="btrfs on loop over qcowmount"
	LABEL[btrfs-raw]="btrfs on loop over the raw partition"
	case_begin fmls ms low "ls -lR of the guest's tree (vfat, XFS, btrfs, NTFS)" \
"\`ls -lR tree >/dev/null\` (20,500 entries in 500 folders, the files
case's tree; on vfat without its symlinks) through vdmount's p1/, against
the kernel's XFS or btrfs (\`mount -o ro\` on \`losetup -r\`), ntfs-3g -o ro,
or mtools' \`mdir -/ -a\` (vfat), each on the raw partition file, on
fresh mounts."
	case_begin fmfindp ms low "find -printf '%s %m %u' over the guest's tree (vfat, XFS, btrfs, NTFS)" \
"\`find tree -printf '%s %m %u\\n'\`; the same tools (mtools has no find)."
	case_begin fmcp ms low "cp -a of the guest's tree (vfat, XFS, btrfs, NTFS)" \
"\`cp -a tree/ DEST\` to $CP_WHERE, deleted (and synced) after each run,
not timed; for vfat, mtools' \`mcopy -s -m\` of the same tree."
	case_begin fmrsync ms low "rsync -a of the guest's tree (vfat, XFS, btrfs, NTFS)" \
"\`rsync -a tree DEST/\` to $CP_WHERE; the same tools (mtools has none)."
	for fs in $FSMETA_FS; do
		case $fs in
		vfat) command -v mdir >/dev/null || BAD["fgpt|peer"]="n/a: mtools is not installed" ;;
		xfs) have_tool xfs-raw || BAD["xgpt|peer"]="n/a: ${MISSING[xfs-raw]}" ;;
		btrfs) have_tool btrfs-raw || BAD["bgpt|peer"]="n/a: ${MISSING[btrfs-raw]}" ;;
		ntfs) command -v ntfs-3g >/dev/null || BAD["ntfs|peer"]="n/a: ntfs-3g is not installed" ;;
		esac
	done
	say "fsmeta: checking vdmount's trees against the other tools'"
	verify_fsmeta
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		for fs in $FSMETA_FS; do
			for op in $FSMETA_OPS; do row "$op" "$fs, $cache" vdmount peer; done
		done
		for ((run = 1; run <= RUNS; run++)); do
			for fs in $FSMETA_FS; do
				g=$(fm_stem "$fs") # the key of BAD
				for op in $FSMETA_OPS; do
					r="$fs, $cache"
					line="$op $r, run $run/$RUNS:"
					for tool in vdmount peer; do
						if [ "$fs:$tool" = vfat:peer ]; then
							case $op in fmfindp | fmrsync)
								na "$op" "$r" peer "n/a: mtools has no ${op#fm}"
								continue ;;
							esac
						fi
						! skip_bad "$op" "$r" "$tool" "$g" || continue
						[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
						if fm_op "$op" "$fs" "$tool" "$cold"; then
							v=$(ms_of "$ELAPSED")
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
	done
}
