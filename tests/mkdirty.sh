#!/bin/bash
# tests/mkdirty.sh — make an ext2/3/4 image whose journal needs recovery,
# the way a crash leaves one: the kernel writes through a loop mount, every
# change is committed to the journal (fsync), and the image file is copied
# while still mounted, before the kernel has checkpointed the changes to
# their home blocks. The copy has needs_recovery set and a journal whose
# s_start is not 0; the kernel's recovery (a loop mount of a copy) or
# e2fsck/debugfs's replay gives the tree after recovery.
#
#   bash tests/mkdirty.sh [-t ext4|ext3] [-b BLOCKSIZE] [-O FEATURES]
#                         [-s SIZE] [-J] OUT.img
#   bash tests/mkdirty.sh -c DIRTY.img REPLAYED.img
#
# -O is passed to mkfs as is (e.g. ^metadata_csum,^64bit or fast_commit).
# -J mounts with data=journal, so file data goes through the journal too
# (and blocks that begin with the jbd2 magic are escaped there).
# Needs root (mount), loop devices and e2fsprogs. Exits 0 with OUT.img
# made, or non-zero with a message and no OUT.img. Never leaves a mount
# or loop device behind.
#
# -c compares the kernel's tree of DIRTY.img after its own recovery (a
# read-only loop mount of a scratch copy: the kernel replays the journal
# into the copy) with its tree of REPLAYED.img mounted ro,noload (journal
# ignored): names, types, modes, sizes, link counts, owners, times,
# symlink targets, xattrs and file contents. It also checks that DIRTY
# mounted ro,noload differs, i.e. that the journal held changes. Exit 0
# when equal, 1 with the differences on stderr.
#
# Why it is reliable: fsync on ext4 with a journal waits for the commit
# of the running transaction and writes nothing else; the committed
# metadata goes home only when the block device's dirty buffers are
# written back (after vm.dirty_expire_centisecs, 30 s by default) or at a
# checkpoint (a full journal, sync(2), syncfs, unmount). On a busy
# machine phase 2 below can take longer than 30 s, and the writeback
# then puts everything home before the copy (the copy "reads the same
# without recovery"); so from phase 2 to the copy dirty_expire_centisecs
# is raised to an hour and put back afterwards (also on SIGTERM/INT).
# Builders take turns on a lock for that span, so one never saves
# another's raised value. A sync(2) by any other process on the machine
# also writes the dirty metadata home; so the copy is checked before it
# is kept (mounted ro,noload it must differ from the live tree), and a
# copy that needs no recovery is made again, up to five times. Phase 1
# syncs only its own filesystem, so as not to do that to other builders.
set -u

ORIG_ARGS=("$@")
TYPE=ext4
BS=4096
FEAT=
SIZE=64M
DATAOPT=
COMPARE=
while getopts t:b:O:s:Jc opt; do
	case $opt in
	t) TYPE=$OPTARG ;;
	b) BS=$OPTARG ;;
	O) FEAT=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	J) DATAOPT=,data=journal ;;
	c) COMPARE=1 ;;
	*) echo "usage: $0 [-t ext4|ext3] [-b BS] [-O FEAT] [-s SIZE] [-J] OUT" >&2
	   echo "       $0 -c DIRTY.img REPLAYED.img" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))

die() {
	echo "mkdirty.sh: $*" >&2
	exit 1
}

# One line per entry below the mountpoint $1: what a person sees.
listing() {
	(cd "$1" && find . -xdev ! -path './lost+found*' \
		-printf '%p %y %m %s %n %U %G %T@ %C@ %l\n' | LC_ALL=C sort &&
		getfattr -R -h -d -m - --absolute-names . 2>/dev/null)
}

# Contents of the regular files below $1 and $2 (same names) equal.
same_data() {
	local f rc=0
	while IFS= read -r -d '' f; do
		cmp -s "$1/$f" "$2/$f" || { echo "content differs: $f" >&2; rc=1; }
	done < <(cd "$1" && find . -xdev -type f ! -path './lost+found*' -print0)
	return $rc
}

if [ -n "$COMPARE" ]; then
	[ $# -eq 2 ] || die "-c needs DIRTY.img REPLAYED.img"
	S=$(mktemp -d "${TMPDIR:-/tmp}/mkdirty.XXXXXX") || die "mktemp failed"
	mkdir "$S/k" "$S/m" "$S/u"
	M=
	LOOP=
	ccleanup() {
		local d
		for d in $M; do
			timeout -k 5 60 umount "$d" 2>/dev/null || umount -l "$d"
		done
		[ -n "$LOOP" ] && losetup -d "$LOOP"
		rm -f "$S/kernel.img" "$S/dirty.img"
		rmdir "$S/k" "$S/m" "$S/u" 2>/dev/null
		rm -f "$S"/*.lst
		rmdir "$S" 2>/dev/null
	}
	trap ccleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cp --sparse=always "$1" "$S/kernel.img" || die "copy failed"
	cp --sparse=always "$1" "$S/dirty.img" || die "copy failed"
	# ro on a writable loop device: the kernel replays the journal
	# (writing into the scratch copy) before it mounts. (mount -o loop,ro
	# would make the loop device read-only, and recovery refuse.)
	LOOP=$(losetup -f --show "$S/kernel.img") || die "losetup failed"
	timeout 60 mount -t ext4 -o ro "$LOOP" "$S/k" ||
		die "the kernel cannot recover $1"
	M="$S/k"
	timeout 60 mount -t ext4 -o loop,ro,noload "$2" "$S/m" ||
		die "the kernel cannot mount $2 (noload)"
	M="$M $S/m"
	timeout 60 mount -t ext4 -o loop,ro,noload "$S/dirty.img" "$S/u" ||
		die "the kernel cannot mount $1 unreplayed (noload)"
	M="$M $S/u"
	listing "$S/k" >"$S/k.lst"
	listing "$S/m" >"$S/m.lst"
	listing "$S/u" >"$S/u.lst" 2>/dev/null # unreplayed: may read as corrupt
	rc=0
	if ! cmp -s "$S/k.lst" "$S/m.lst"; then
		echo "mkdirty.sh: trees differ (< kernel recovery, > $2):" >&2
		diff "$S/k.lst" "$S/m.lst" | head -n 20 >&2
		rc=1
	fi
	same_data "$S/k" "$S/m" || rc=1
	if cmp -s "$S/k.lst" "$S/u.lst" && same_data "$S/k" "$S/u" 2>/dev/null; then
		echo "mkdirty.sh: $1 reads the same without recovery" >&2
		rc=1
	fi
	exit $rc
fi

[ $# -eq 1 ] || { echo "usage: $0 [options] OUT.img" >&2; exit 2; }
OUT=$1

# Tries: an inner run exits 3 when its copy needed no recovery.
if [ -z "${MKDIRTY_TRY:-}" ]; then
	for try in 1 2 3 4 5; do
		MKDIRTY_TRY=$try bash "$0" "${ORIG_ARGS[@]}"
		rc=$?
		[ $rc -eq 3 ] || exit $rc
	done
	die "5 copies in a row needed no recovery (something syncs all the time)"
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/mkdirty.XXXXXX") || die "mktemp failed"
MNT=$SCRATCH/mnt
IMG=$SCRATCH/live.img
MOUNTED=
EXPIRE=/proc/sys/vm/dirty_expire_centisecs
EXPIRE_OLD=
# Put the writeback delay back (and let the next builder in).
expire_restore() {
	if [ -n "$EXPIRE_OLD" ]; then
		echo "$EXPIRE_OLD" >"$EXPIRE"
		EXPIRE_OLD=
	fi
	exec 9>&-
}
cleanup() {
	expire_restore
	if [ -n "$MOUNTED" ]; then
		timeout -k 5 60 umount "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	if mountpoint -q "$SCRATCH/u" 2>/dev/null; then
		timeout -k 5 60 umount "$SCRATCH/u" 2>/dev/null || umount -l "$SCRATCH/u"
	fi
	rmdir "$SCRATCH/u" 2>/dev/null
	rm -f "$IMG"
	rmdir "$MNT" 2>/dev/null
	rmdir "$SCRATCH" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$MNT" || die "mkdir failed"
rm -f "$OUT"

truncate -s "$SIZE" "$IMG" || die "truncate failed"
# No lazy inode-table or journal init: the kernel's lazyinit thread
# would write behind the journal's back while the copy is made.
timeout 120 mkfs."$TYPE" -q -F -b "$BS" ${FEAT:+-O "$FEAT"} \
	-E lazy_itable_init=0,lazy_journal_init=0 "$IMG" ||
	die "mkfs.$TYPE failed"

# ext3 images are mounted by the ext4 driver (ext3 may not be built).
timeout 60 mount -t ext4 -o "loop,rw,noatime$DATAOPT" "$IMG" "$MNT" ||
	die "cannot loop-mount the new $TYPE image"
MOUNTED=1

# Some bytes that are not all one value: line after numbered line
# (FILE - writes to stdout).
fill() { # FILE BYTES TAG
	if [ "$1" != - ]; then
		fill - "$2" "$3" >"$1"
		return
	fi
	yes "$3 0123456789abcdefghijklmnopqrstuvwxyz" | head -c "$2" |
		awk '{ printf "%08d %s\n", NR, $0 }' | head -c "$2"
}

# Phase 1: a tree that reaches its home blocks (sync checkpoints).
mkdir -p "$MNT/old/deep/er" "$MNT/gone" || die "mkdir failed"
fill "$MNT/old/a.txt" 5000 a
fill "$MNT/old/deep/b.bin" 300000 b
fill "$MNT/old/deep/er/c" 70000 c
fill "$MNT/gone/d" 9000 d
ln -s deep/b.bin "$MNT/old/link" || die "symlink failed"
sync -f "$MNT" || die "sync failed"

# Phase 2: changes that only the journal holds. No writeback of them
# until the copy is made (see the top).
exec 9>>"${TMPDIR:-/tmp}/vdtest-mkdirty.lock"
timeout 600 flock 9 || die "cannot take the writeback lock"
if [ -w "$EXPIRE" ]; then
	EXPIRE_OLD=$(cat "$EXPIRE")
	echo 360000 >"$EXPIRE" || EXPIRE_OLD=
fi
mkdir -p "$MNT/new/sub" || die "mkdir failed"
fill "$MNT/new/e.txt" 12345 e
fill "$MNT/new/sub/f.bin" 1000000 f
fill "$MNT/new/small" 60 s
# Blocks that begin with the jbd2 magic: the journal escapes their copies.
for i in $(seq 1 6); do
	printf '\xc0\x3b\x39\x98'
	fill - $((BS - 4)) "x$i"
done >"$MNT/new/magic"
for i in $(seq 1 40); do
	fill "$MNT/new/sub/many-$i" $((i * 97)) "m$i"
done
fill "$MNT/old/a.txt" 20000 a2           # rewritten
head -c 100000 "$MNT/new/sub/f.bin" >>"$MNT/old/deep/er/c"  # appended
truncate -s 1000 "$MNT/old/deep/b.bin"   # shrunk
mv "$MNT/old/deep/er" "$MNT/new/moved"   # renamed across folders
rm -rf "$MNT/gone"                       # deleted
ln "$MNT/new/e.txt" "$MNT/old/e-hard"    # hard link
ln -s ../new/sub/f.bin "$MNT/old/flink"
chmod 0640 "$MNT/old/a.txt"
chmod 0700 "$MNT/new/sub"
mknod "$MNT/new/fifo" p 2>/dev/null
setfattr -n user.vd -v journal "$MNT/new/e.txt" 2>/dev/null

# fsync every changed file and folder: each waits for the commit of
# the transaction holding its changes (data first, in ordered mode).
mapfile -t ALL < <(find "$MNT" -xdev \( -type f -o -type d \) \
	! -path "$MNT/lost+found*")
timeout 120 sync "${ALL[@]}" || die "fsync failed"

# The crash: a copy of the image as it is now on "disk".
cp --sparse=always "$IMG" "$OUT.tmp" || die "cannot copy the live image"
expire_restore

# The copy must need its journal: without it, it must read otherwise
# than the live tree (see the top).
mkdir "$SCRATCH/u" || die "mkdir failed"
if timeout 60 mount -t ext4 -o loop,ro,noload "$OUT.tmp" "$SCRATCH/u" 2>/dev/null; then
	same=
	listing "$MNT" >"$SCRATCH/live.lst"
	listing "$SCRATCH/u" >"$SCRATCH/copy.lst" 2>/dev/null
	if cmp -s "$SCRATCH/live.lst" "$SCRATCH/copy.lst" &&
		same_data "$MNT" "$SCRATCH/u" 2>/dev/null; then
		same=1
	fi
	rm -f "$SCRATCH/live.lst" "$SCRATCH/copy.lst"
	timeout -k 5 60 umount "$SCRATCH/u" || umount -l "$SCRATCH/u"
	rmdir "$SCRATCH/u"
	if [ -n "$same" ]; then
		rm -f "$OUT.tmp"
		echo "mkdirty.sh: try $MKDIRTY_TRY: the copy needs no recovery (written home before it was made); again" >&2
		exit 3
	fi
else
	rmdir "$SCRATCH/u"
fi

timeout -k 5 60 umount "$MNT" || die "umount failed"
MOUNTED=

if ! dumpe2fs -h "$OUT.tmp" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
	rm -f "$OUT.tmp"
	die "the copy does not need recovery"
fi
start=$(dumpe2fs -h "$OUT.tmp" 2>/dev/null | awk -F: '/^Journal start:/ { print $2 + 0 }')
if [ "${start:-0}" -eq 0 ]; then
	rm -f "$OUT.tmp"
	die "the copy's journal is clean (s_start 0)"
fi
mv "$OUT.tmp" "$OUT" || die "cannot write $OUT"
