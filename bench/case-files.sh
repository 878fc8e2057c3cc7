# bench/case-files.sh — reading the guest's files out of the GPT+ext4 disk:
#   big   copy-out of the 1 GiB file (dd bs=1M to /dev/null)
#   cp    cp -a of the 20,000-file tree (to a tmpfs: see cp_dest)
#   find  find -printf over the tree (metadata only)
# each through vdmount's p1/ and through the kernel's ext4 or fuse2fs
# over the peers' exposed files.
# shellcheck shell=bash

FILE_TOOLS=${VDBENCH_FILE_TOOLS:-"vdmount ext4-vd ext4-qcow ext4-qsd ext4-raw fuse2fs"}

# ft_open TOOL: the guest's root folder ready to read at $ROOT, or 1 with
# REASON; ft_close undoes it. Every timed operation gets a fresh open, so
# no tool's own cache (FUSE page cache, dentries, the loop device's page
# cache) carries over from the last one.
ROOT=
FT_LOOP=
FT_K=
FT_FUSE=
ft_open() {
	local tool=$1 psize
	psize=$(cat "$WORK/gpt.size")
	ROOT='' FT_LOOP='' FT_K='' FT_FUSE='' REASON=''
	case $tool in
	vdmount)
		fuse_mount vdmount "$WORK/gpt.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1
		return 0 ;;
	fuse2fs)
		fuse_mount fuse2fs "$WORK/gpt-p1.raw" || return 1
		FT_FUSE=1 ROOT=$MNT
		return 0 ;;
	ext4-vd)
		fuse_mount vdmount "$WORK/gpt.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$MNT/p1.raw" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-qcow)
		fuse_mount qcowmount "$WORK/gpt.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-qsd)
		fuse_mount qsd "$WORK/gpt.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-raw)
		loop_attach "$WORK/gpt-p1.raw" || { REASON="losetup failed"; return 1; } ;;
	*) die "ft_open: unknown tool $tool" ;;
	esac
	FT_LOOP=$LOOPDEV
	kmount "$FT_LOOP" "$SCR/k-$tool" || { REASON="mount -t ext4 failed"; ft_close; return 1; }
	FT_K=$SCR/k-$tool ROOT=$FT_K
}
ft_close() {
	[ -z "$FT_K" ] || kumount "$FT_K"
	[ -z "$FT_LOOP" ] || loop_detach "$FT_LOOP"
	[ -z "$FT_FUSE" ] || fuse_umount
	FT_K='' FT_LOOP='' FT_FUSE=''
}

# cp_dest: $SCR/cp, where cp -a and debugfs copy the tree to. By default
# a tmpfs of our own: on a disk, writing 20,000 files (and deleting them
# after) takes longer than reading them through any of the tools, and
# varies with the host's writeback, so it hid what is measured here.
# VDBENCH_CP_DEST=disk: a folder in $WORK instead.
CP_WHERE=
cp_dest() {
	[ -z "$CP_WHERE" ] || return 0
	mkdir -p "$SCR/cp"
	CP_WHERE="a folder on the disk holding $WORK"
	if [ "${VDBENCH_CP_DEST:-tmpfs}" = tmpfs ] && [ "$(id -u)" = 0 ] &&
		mount -t tmpfs -o size=2g,mode=0700 vdbench-cp "$SCR/cp"; then
		KMOUNTS+=("$SCR/cp")
		CP_WHERE="a tmpfs"
	fi
	say "files: cp -a and debugfs rdump copy to $CP_WHERE"
}

# tree_sum DIR: one hash over tree/'s names, types, modes, link targets
# and every file's contents (folder sizes left out: debugfs's copy sits
# on the host's filesystem)
tree_sum() {
	(cd "$1" && {
		T find tree \( -type d -printf '%y %p %m\n' \) -o -printf '%y %p %m %s %l\n' | sort
		T find tree -type f -print0 | sort -z | T xargs -0 md5sum
	}) | md5sum | cut -d' ' -f1
}

# verify_files: once per run, each tool's tree and big file against the
# kernel's ext4 on the raw partition (the oracle: not our code)
REF_TREE='' REF_BIG=''
verify_files() {
	local tool t b
	ft_open ext4-raw || die "cannot mount the raw partition with the kernel's ext4: $REASON"
	REF_TREE=$(tree_sum "$ROOT")
	# quick runs check the tree only
	REF_BIG=
	[ -n "$VERIFY_BYTES" ] || REF_BIG=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1)
	ft_close
	for tool in $FILE_TOOLS debugfs; do
		[ "$tool" != ext4-raw ] || continue
		# quick runs check vdmount's two ways only
		[ -z "$VERIFY_BYTES" ] || [ "$tool" = vdmount ] || [ "$tool" = ext4-vd ] || continue
		if ! have_tool "$tool"; then BAD["gpt|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if [ "$tool" = debugfs ]; then
			T debugfs -R "rdump /tree $SCR/cp" "$WORK/gpt-p1.raw" >/dev/null 2>&1 || true
			t=$(tree_sum "$SCR/cp")
			rm -rf "$SCR/cp/tree"
			[ "$t" = "$REF_TREE" ] || BAD["gpt|$tool"]="WRONG: its copy of tree/ differs from the kernel's"
			continue
		fi
		if ! ft_open "$tool"; then BAD["gpt|$tool"]="n/a: $REASON"; continue; fi
		t=$(tree_sum "$ROOT") || t=
		b=$REF_BIG
		[ -n "$VERIFY_BYTES" ] || b=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1) || b=
		ft_close
		[ "$t" = "$REF_TREE" ] && [ "$b" = "$REF_BIG" ] ||
			BAD["gpt|$tool"]="WRONG: its files differ from the kernel's ext4 on the raw partition"
	done
}

# big_at: BIG_AT, where big.bin starts in the raw partition file (it
# lies in one run: mkfs -d writes it whole), or 1.
BIG_AT=
DISK_MBS=
big_at() {
	local blk bs
	[ -z "$BIG_AT" ] || return 0
	blk=$(T debugfs -R "bmap /big.bin 0" "$WORK/gpt-p1.raw" 2>/dev/null) || return 1
	bs=$(T dumpe2fs -h "$WORK/gpt-p1.raw" 2>/dev/null | awk -F: '/^Block size/ { print $2 + 0 }')
	[[ $blk =~ ^[0-9]+$ && $bs =~ ^[0-9]+$ ]] || return 1
	BIG_AT=$((blk * bs))
}

# big_disk: the host disk's own rate over big.bin's blocks, in MB/s: fio,
# O_DIRECT, 16 reads of 1 MiB in flight. The disk's rate varies from
# minute to minute on these VMs: the kernel's ext4 on the raw partition,
# read in the same round, sometimes beats it.
big_disk() {
	T fio --name=disk --filename="$WORK/gpt-p1.raw" --readonly --rw=read \
		--bs=1M --direct=1 --ioengine=libaio --iodepth=16 \
		--offset="$BIG_AT" --size="$G_BIG" --output-format=terse \
		--terse-version=3 2>/dev/null |
		awk -F';' '$7 > 0 { printf "%.1f", $7 * 1024 / 1e6; ok = 1 } END { exit !ok }'
}

# file_op OP TOOL COLD: one timed OP; records into case OP, or returns 1
file_op() {
	local op=$1 tool=$2 cold=$3 ok=1
	if [ "$tool" = disk ]; then
		big_at || { REASON="debugfs cannot find big.bin's blocks"; return 1; }
		drop_caches
		DISK_MBS=$(big_disk) || { REASON="fio failed"; return 1; }
		return 0
	fi
	if [ "$tool" = debugfs ]; then
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T debugfs -R "rdump /tree $SCR/cp" "$WORK/gpt-p1.raw" >/dev/null 2>&1 || ok=0
		stop_clock
	else
		# Warm: the images are read again just before, so none of
		# their pages has been reclaimed since the run began (these
		# VMs reclaim idle page cache: 100 MB of gpt.qcow2 were gone
		# by vdmount's turn, read from disk inside the timed copy).
		[ "$cold" = 1 ] || cat "$WORK/gpt.qcow2" "$WORK/gpt-p1.raw" >/dev/null
		ft_open "$tool" || return 1
		[ "$cold" = 0 ] || drop_caches
		start_clock
		case $op in
		big) T dd if="$ROOT/big.bin" of=/dev/null bs=1M status=none || ok=0 ;;
		cp) T cp -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
		find) T find "$ROOT/tree" -printf '%p %s %T@\n' >/dev/null || ok=0 ;;
		esac
		stop_clock
		ft_close
	fi
	if [ "$op" = cp ]; then rm -rf "$SCR/cp/tree"; sync; fi
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

case_files() {
	local cache cold run op tool r line v disk
	cp_dest
	case_begin big MB/s high "Copy-out of the guest's 1 GiB file" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` (1 GiB of random bytes in ext4 in
partition 1 of a GPT qcow2 disk): through vdmount's p1/; through the
kernel's ext4 (\`mount -o ro,noload\`) on \`losetup -r\` over vdmount's
p1.raw, over qcowmount's and qemu-storage-daemon's whole-disk file (with
the partition's offset), and over the raw partition file (the limit);
through fuse2fs on the raw partition file. Fresh mounts and loop devices
for every read. Cold only: the disk itself, fio reading big.bin's blocks
in the raw partition file with O_DIRECT, 16 reads of 1 MiB in flight:
with the kernel's ext4 on the raw partition, what a cold read can reach
on this disk, nothing in between."
	case_begin cp ms low "cp -a of the guest's tree" \
"\`cp -a tree/ DEST\` of 20,000 files (0.5 GB, 500 folders) to $CP_WHERE,
deleted (and synced) after each run, not timed; the
same tools as above plus \`debugfs -R 'rdump /tree DEST'\` on the raw
partition file. Times: ratio = peer / vdmount, above 1 vdmount is faster."
	case_begin find ms low "find over the guest's tree" \
"\`find tree -printf '%p %s %T@\\n' >/dev/null\`: names, sizes and times of the
20,500 entries, metadata only, on a fresh mount."
	say "files: checking each tool's files against the kernel's ext4 on the raw partition"
	verify_files
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		disk=
		[ "$cold" = 0 ] || ! have_tool fio || disk=disk
		row big "$r" $FILE_TOOLS $disk
		row cp "$r" $FILE_TOOLS debugfs
		row find "$r" $FILE_TOOLS
		[ "$cold" = 1 ] || cat "$WORK/gpt.qcow2" "$WORK/gpt-p1.raw" >/dev/null
		for ((run = 1; run <= RUNS; run++)); do
			for op in big cp find; do
				line="$op $r, run $run/$RUNS:"
				for tool in $FILE_TOOLS debugfs $disk; do
					[ "$tool" != debugfs ] || [ "$op" = cp ] || continue
					[ "$tool" != disk ] || [ "$op" = big ] || continue
					! skip_bad "$op" "$r" "$tool" gpt || continue
					[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
					if file_op "$op" "$tool" "$cold"; then
						if [ "$tool" = disk ]; then v=$DISK_MBS
						elif [ "$op" = big ]; then v=$(mbs_of "$G_BIG" "$ELAPSED")
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
