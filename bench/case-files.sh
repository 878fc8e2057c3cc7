# bench/case-files.sh — reading the guest's files out of the GPT+ext4 disk:
#   big    copy-out of the 1 GiB file (dd bs=1M to /dev/null)
#   cp     cp -a of the 20,000-file tree (to a tmpfs: see cp_dest)
#   find   find -printf over the tree (metadata only)
#   ls     ls -l of a folder of 100,000 entries (the meta image)
#   findp  find -printf '%s %m %u' over the tree (sizes, modes, owners)
#   rsync  rsync -a of the tree (to the same tmpfs)
#   probe  one xattr probe (lgetxattr security.selinux, as ls -l makes per
#          entry) on one guest file, repeated: the cost of one request
# each through vdmount's p1/ and through the kernel's ext4 or fuse2fs
# over the peers' exposed files; vdtool (no FUSE: cp -r -p, ls -l,
# ls -lR) beside them in cp, ls and findp.
# shellcheck shell=bash

FILE_TOOLS=${VDBENCH_FILE_TOOLS:-"vdmount ext4-vd ext4-qcow ext4-qsd ext4-raw fuse2fs"}
FILE_OPS=${VDBENCH_FILE_OPS:-"big cp find ls findp rsync probe"}
VDTOOL=$BUILD/vdtool
# FT_IMG: the image ft_open mounts, gpt (the tree and big.bin) or meta
# (the folder of 100,000 entries, for ls)
FT_IMG=gpt
PROBES=${VDBENCH_PROBES:-20000}

# ft_open TOOL: the guest's root folder ready to read at $ROOT, or 1 with
# REASON; ft_close undoes it. Every timed operation gets a fresh open, so
# no tool's own cache (FUSE page cache, dentries, the loop device's page
# cache) carries over from the last one.
ROOT=
FT_LOOP=
FT_K=
FT_FUSE=
ft_open() {
	local tool=$1 psize img=$FT_IMG
	psize=$(cat "$WORK/$img.size")
	ROOT='' FT_LOOP='' FT_K='' FT_FUSE='' REASON=''
	case $tool in
	vdmount)
		fuse_mount vdmount "$WORK/$img.qcow2" || return 1
		FT_FUSE=1 ROOT=$MNT/p1
		return 0 ;;
	fuse2fs)
		fuse_mount fuse2fs "$WORK/$img-p1.raw" || return 1
		FT_FUSE=1 ROOT=$MNT
		return 0 ;;
	ext4-vd)
		fuse_mount vdmount "$WORK/$img.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$MNT/p1.raw" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-qcow)
		fuse_mount qcowmount "$WORK/$img.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-qsd)
		fuse_mount qsd "$WORK/$img.qcow2" || return 1
		FT_FUSE=1
		loop_attach "$FLAT" "$G_OFFSET" "$psize" || { REASON="losetup failed"; ft_close; return 1; } ;;
	ext4-raw)
		loop_attach "$WORK/$img-p1.raw" || { REASON="losetup failed"; return 1; } ;;
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

# meta_sum DIR: one hash over many/'s names, types, modes, sizes, owners
# and link targets (what ls -l shows)
meta_sum() {
	(cd "$1" && T find many -printf '%y %p %m %s %U %G %l\n' | sort) | md5sum | cut -d' ' -f1
}

# verify_files: once per run, each tool's tree and big file against the
# kernel's ext4 on the raw partition (the oracle: not our code); with
# the ls op, each tool's view of many/ against the kernel's too.
REF_TREE='' REF_BIG='' REF_META=''
verify_files() {
	local tool t b
	ft_open ext4-raw || die "cannot mount the raw partition with the kernel's ext4: $REASON"
	REF_TREE=$(tree_sum "$ROOT")
	# quick runs check the tree only
	REF_BIG=
	[ -n "$VERIFY_BYTES" ] || REF_BIG=$(T md5sum <"$ROOT/big.bin" | cut -d' ' -f1)
	ft_close
	for tool in $FILE_TOOLS debugfs vdtool; do
		[ "$tool" != ext4-raw ] || continue
		# quick runs check vdmount's two ways only
		[ -z "$VERIFY_BYTES" ] || [ "$tool" = vdmount ] || [ "$tool" = ext4-vd ] || continue
		if ! have_tool "$tool"; then BAD["gpt|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if [ "$tool" = debugfs ] || [ "$tool" = vdtool ]; then
			if [ "$tool" = debugfs ]; then
				T debugfs -R "rdump /tree $SCR/cp" "$WORK/gpt-p1.raw" >/dev/null 2>&1 || true
			else
				T "$VDTOOL" cp -r -p -q "$WORK/gpt.qcow2" /p1/tree "$SCR/cp" >/dev/null 2>&1 || true
			fi
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
	case " $FILE_OPS " in *" ls "*) ;; *) return 0 ;; esac
	FT_IMG=meta
	ft_open ext4-raw || die "cannot mount the meta image's raw partition with the kernel's ext4: $REASON"
	REF_META=$(meta_sum "$ROOT")
	ft_close
	for tool in $FILE_TOOLS; do
		[ "$tool" != ext4-raw ] || continue
		[ -z "$VERIFY_BYTES" ] || [ "$tool" = vdmount ] || [ "$tool" = ext4-vd ] || continue
		if ! have_tool "$tool"; then BAD["meta|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if [ "$tool" = fuse2fs ]; then BAD["meta|$tool"]="n/a: $LS_FUSE2FS"; continue; fi
		if ! ft_open "$tool"; then BAD["meta|$tool"]="n/a: $REASON"; continue; fi
		t=$(meta_sum "$ROOT") || t=
		ft_close
		[ "$t" = "$REF_META" ] ||
			BAD["meta|$tool"]="WRONG: its view of many/ differs from the kernel's ext4 on the raw partition"
	done
	FT_IMG=gpt
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

# fuse2fs (high-level libfuse, no readdirplus) looks every entry up, and
# libext2fs finds a name by reading the folder from its start (no htree
# lookup): listing 100,000 entries would read 5 billion of them.
LS_FUSE2FS="fuse2fs looks each of the 100,000 names up by reading the folder from its start (libext2fs has no htree lookup): the first try ran past the 600 s limit"

# slab_kb: the kernel's slab memory now, kB
slab_kb() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }

# file_op OP TOOL COLD: one timed OP; records into case OP, or returns 1.
# For ls, SLAB is the kernel's slab growth during the listing (kB).
SLAB=
file_op() {
	local op=$1 tool=$2 cold=$3 ok=1 img=gpt s0
	[ "$op" != ls ] || img=meta
	if [ "$op" = probe ]; then
		ft_open "$tool" || return 1
		[ "$cold" = 0 ] || drop_caches
		PROBE_US=$(T python3 - "$ROOT/tree" "$PROBES" <<'EOF'
import os, sys, time
n = int(sys.argv[2])
f = next(os.path.join(r, fs[0]) for r, _, fs in os.walk(sys.argv[1]) if fs)
t = time.perf_counter()
for _ in range(n):
    try:
        os.getxattr(f, "security.selinux", follow_symlinks=False)
    except OSError:
        pass
print("%.1f" % ((time.perf_counter() - t) / n * 1e6))
EOF
) || ok=0
		ft_close
		[ "$ok" = 1 ] && [ -n "$PROBE_US" ] || { REASON="probe failed"; return 1; }
		return 0
	fi
	if [ "$tool" = disk ]; then
		big_at || { REASON="debugfs cannot find big.bin's blocks"; return 1; }
		drop_caches
		DISK_MBS=$(big_disk) || { REASON="fio failed"; return 1; }
		return 0
	fi
	if [ "$op" = rsync ] && ! command -v rsync >/dev/null; then
		REASON="rsync is not installed"
		return 1
	fi
	if [ "$tool" = debugfs ] || [ "$tool" = vdtool ]; then
		if [ "$cold" = 0 ]; then cat "$WORK/$img.qcow2" "$WORK/$img-p1.raw" >/dev/null; else drop_caches; fi
		start_clock
		case $tool:$op in
		debugfs:cp) T debugfs -R "rdump /tree $SCR/cp" "$WORK/gpt-p1.raw" >/dev/null 2>&1 || ok=0 ;;
		vdtool:cp) T "$VDTOOL" cp -r -p -q "$WORK/gpt.qcow2" /p1/tree "$SCR/cp" >/dev/null || ok=0 ;;
		vdtool:ls) T "$VDTOOL" ls -l "$WORK/meta.qcow2" /p1/many >/dev/null || ok=0 ;;
		vdtool:findp) T "$VDTOOL" ls -lR "$WORK/gpt.qcow2" /p1/tree >/dev/null || ok=0 ;;
		esac
		stop_clock
	else
		# Warm: the images are read again just before, so none of
		# their pages has been reclaimed since the run began (these
		# VMs reclaim idle page cache: 100 MB of gpt.qcow2 were gone
		# by vdmount's turn, read from disk inside the timed copy).
		[ "$cold" = 1 ] || cat "$WORK/$img.qcow2" "$WORK/$img-p1.raw" >/dev/null
		FT_IMG=$img
		ft_open "$tool" || { FT_IMG=gpt; return 1; }
		FT_IMG=gpt
		[ "$cold" = 0 ] || drop_caches
		s0=$(slab_kb)
		start_clock
		case $op in
		big) T dd if="$ROOT/big.bin" of=/dev/null bs=1M status=none || ok=0 ;;
		cp) T cp -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
		find) T find "$ROOT/tree" -printf '%p %s %T@\n' >/dev/null || ok=0 ;;
		ls) T ls -l "$ROOT/many" >/dev/null || ok=0 ;;
		findp) T find "$ROOT/tree" -printf '%s %m %u\n' >/dev/null || ok=0 ;;
		rsync) T rsync -a "$ROOT/tree" "$SCR/cp/" || ok=0 ;;
		esac
		stop_clock
		SLAB=$(($(slab_kb) - s0))
		ft_close
	fi
	case $op in cp | rsync) rm -rf "$SCR/cp/tree"; sync ;; esac
	[ "$ok" = 1 ] || { REASON="$op failed"; return 1; }
}

# op_tools OP COLD: the tools of OP, in turn order
op_tools() {
	local t=$FILE_TOOLS
	case $1 in
	big) [ "$2" = 0 ] || ! have_tool fio || t="$t disk" ;;
	cp) t="$t debugfs vdtool" ;;
	ls | findp) t="$t vdtool" ;;
	probe) t=$(for x in $t; do case $x in vdmount | fuse2fs | ext4-raw) echo "$x" ;; esac; done) ;;
	esac
	echo "$t"
}

case_files() {
	local cache cold run op tool r line v img
	cp_dest
	[ -x "$VDTOOL" ] || MISSING["vdtool"]="$VDTOOL not found (make all)"
	for op in $FILE_OPS; do
		case $op in
		big) case_begin big MB/s high "Copy-out of the guest's 1 GiB file" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` (1 GiB of random bytes in ext4 in
partition 1 of a GPT qcow2 disk): through vdmount's p1/; through the
kernel's ext4 (\`mount -o ro,noload\`) on \`losetup -r\` over vdmount's
p1.raw, over qcowmount's and qemu-storage-daemon's whole-disk file (with
the partition's offset), and over the raw partition file (the limit);
through fuse2fs on the raw partition file. Fresh mounts and loop devices
for every read. Cold only: the disk itself, fio reading big.bin's blocks
in the raw partition file with O_DIRECT, 16 reads of 1 MiB in flight:
with the kernel's ext4 on the raw partition, what a cold read can reach
on this disk, nothing in between." ;;
		cp) case_begin cp ms low "cp -a of the guest's tree" \
"\`cp -a tree/ DEST\` of 20,000 files (0.5 GB, 500 folders) to $CP_WHERE,
deleted (and synced) after each run, not timed; the
same tools as above plus \`debugfs -R 'rdump /tree DEST'\` on the raw
partition file and \`vdtool cp -r -p IMAGE /p1/tree DEST\` (no FUSE).
Times: ratio = peer / vdmount, above 1 vdmount is faster." ;;
		find) case_begin find ms low "find over the guest's tree" \
"\`find tree -printf '%p %s %T@\\n' >/dev/null\`: names, sizes and times of the
20,500 entries, metadata only, on a fresh mount." ;;
		ls) case_begin ls ms low "ls -l of a folder of 100,000 entries" \
"\`ls -l many/ >/dev/null\`: a folder of 100,000 entries (90,000 empty
files, 9,000 small ones, 1,000 symlinks; htree-indexed) in ext4 in
partition 1 of a GPT qcow2 disk (the meta image), on a fresh mount: one
lstat, one ACL and one SELinux-label probe per entry; the same tools as
*big*, and \`vdtool ls -l IMAGE /p1/many\` (no FUSE)." ;;
		findp) case_begin findp ms low "find -printf '%s %m %u' over the guest's tree" \
"\`find tree -printf '%s %m %u\\n' >/dev/null\`: sizes, modes and owners'
names of the 20,500 entries, on a fresh mount; and \`vdtool ls -lR IMAGE
/p1/tree\` (no FUSE), the same facts." ;;
		rsync) case_begin rsync ms low "rsync -a of the guest's tree" \
"\`rsync -a tree DEST/\` of the 20,000 files to $CP_WHERE, deleted (and
synced) after each run, not timed." ;;
		probe) case_begin probe µs low "One xattr probe: the cost of a request" \
"\`lgetxattr(\"security.selinux\")\` of one file of the tree, $PROBES times
in a loop (python3), on a fresh mount: the probe \`ls -l\` makes for each
entry (with an ACL probe beside it), answered \"no such attribute\" by every
tool. Through a FUSE daemon (vdmount, fuse2fs) each is a round trip to the
daemon; the kernel's ext4 answers from memory. Times \`ls -l\`'s 200,000
probes, this is a floor for *ls* through any FUSE daemon." ;;
		*) die "unknown op '$op' in VDBENCH_FILE_OPS (big cp find ls findp rsync probe)" ;;
		esac
	done
	case " $FILE_OPS " in *" ls "*)
		case_begin slab MiB low "Kernel slab growth during ls -l of 100,000 entries" \
"The kernel's \`Slab:\` (/proc/meminfo) after the listing less before it, on
a fresh mount: the dentries and inodes each tool leaves the kernel
holding (FUSE tools: the daemon's own memory is in the peak RSS table).
Other jobs on the machine move it too: a rough figure." ;;
	esac
	say "files: checking each tool's files against the kernel's ext4 on the raw partition"
	verify_files
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		for op in $FILE_OPS; do
			# shellcheck disable=SC2046
			row "$op" "$r" $(op_tools "$op" "$cold")
		done
		case " $FILE_OPS " in *" ls "*)
			# shellcheck disable=SC2086
			row slab "$r" $FILE_TOOLS ;;
		esac
		[ "$cold" = 1 ] || cat "$WORK/gpt.qcow2" "$WORK/gpt-p1.raw" >/dev/null
		for ((run = 1; run <= RUNS; run++)); do
			for op in $FILE_OPS; do
				img=gpt
				[ "$op" != ls ] || img=meta
				line="$op $r, run $run/$RUNS:"
				for tool in $(op_tools "$op" "$cold"); do
					! skip_bad "$op" "$r" "$tool" "$img" || continue
					[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
					if file_op "$op" "$tool" "$cold"; then
						if [ "$tool" = disk ]; then v=$DISK_MBS
						elif [ "$op" = big ]; then v=$(mbs_of "$G_BIG" "$ELAPSED")
						elif [ "$op" = probe ]; then v=$PROBE_US
						else v=$(ms_of "$ELAPSED"); fi
						rec "$op" "$r" "$tool" "$v"
						line="$line $tool $v"
						if [ "$op" = ls ] && [ "$tool" != vdtool ]; then
							rec slab "$r" "$tool" "$(awk -v k="$SLAB" 'BEGIN { printf "%.1f", k / 1024 }')"
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
