#!/bin/bash
# ext3/ext4 journal replay (jbd2 and ext4 fast commits) against the
# kernel's own recovery, on e2fsprogs' journal test images (tests/j_*,
# tests/f_*journal* of its source tree; see tests/corpus/).
#
# For each image: the kernel recovers a copy (a read-only mount of a
# writable loop device replays the journal and fast commits into the
# copy, as a boot would); vdmount mounts the untouched original, and the
# two trees must agree (tests/treecmp.py: every path, attribute, xattr
# and byte). When the kernel refuses the recovery (a corrupt journal,
# an external journal), the copy is mounted again with ro,noload: what
# the kernel's failed attempt left on disk, which is what vdmount must
# show too (for j_corrupt_journal_block: every block but the bad one).
# e2fsck -E journal_only is the second oracle for the fast-commit image.
# The original image is never written.
#
# make check runs a sample (and the kernel-written fast commits);
# VD_FULL=1 every journal image and the e2fsck oracle.
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/corpus/e2fsprogs.sh"

TREECMP=$VD_LIB_DIR/treecmp.py

# krecover IMG MNT — inside a test: the kernel's recovery of IMG (in
# place: a read-write mount, noatime, unmounted at once), then its
# read-only mount at MNT (ro,noload when the recovery was refused);
# prints how it went.
krecover() {
	local img=$1 m=$2 dev how=recovered opt=ro
	mkdir -p "$m"
	dev=$(T losetup -f --show "$img") || die "losetup $img failed"
	echo "$dev" >>"$VD_LOOPS"
	echo "$dev" >"$m.dev"
	echo "$m" >>"$VD_MOUNTS"
	if T mount -t ext4 -o noatime,nodev,nosuid,noexec "$dev" "$m" 2>"$TD/.k1.err"; then
		kumount "$m" || die "umount $m failed"
		echo "$m" >>"$VD_MOUNTS"
	else
		how=refused
		opt=ro,noload
	fi
	if T mount -t ext4 -o $opt,nodev,nosuid,noexec "$dev" "$m" 2>"$TD/.k2.err"; then
		echo $how
	else
		echo none
	fi
}

# ktreecmp A B [PATH...] — inside a test: the trees must agree. statfs
# is left out: the kernel recounts free blocks and inodes at mount. For
# each PATH given, the kernel's (A's) mtime and ctime may differ when
# they are the time of its recovery (not before T0, the test's start):
# ext4's fast-commit replay links and unlinks as a running system does,
# stamping the directory with the current time; vdmount, as e2fsck,
# keeps the directory's recorded times. Each accepted difference is
# printed.
ktreecmp() {
	local a=$1 b=$2 p line t
	shift 2
	T python3 "$TREECMP" "$a" "$b" >"$TD/treecmp.out" 2>&1 && return 0
	grep -v '^treecmp: ' "$TD/treecmp.out" >"$TD/treecmp.diff"
	: >"$TD/treecmp.left"
	while read -r line; do
		for p in "$@"; do
			if [[ $line =~ ^$p:\ (mtime|ctime):\ A=([0-9]+)\  ]]; then
				t=${BASH_REMATCH[2]}
				if [ "${t:0:-9}" -ge "$T0" ]; then
					echo "expected (kernel's recovery time): $line"
					continue 2
				fi
			fi
		done
		echo "$line" >>"$TD/treecmp.left"
	done <"$TD/treecmp.diff"
	[ -s "$TD/treecmp.left" ] &&
		die "$(grep -c . "$TD/treecmp.left") differences, $b vs $a: $(head -n 6 "$TD/treecmp.left" | tr '\n' '|')"
	return 0
}

t_journal() {
	local n=$1 how sum MNT
	need_loop
	T0=$(date +%s)
	E2FS_TREE=$(e2fs_tree) || exit 1
	e2fs_image "$n" orig.img
	sum=$(sha256sum <orig.img)
	cp --sparse=always orig.img copy.img
	how=$(krecover copy.img "$TD/k")
	[ "$how" = none ] && skip_test "the kernel mounts it neither ro nor ro,noload"
	echo "kernel: $how"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$TD/orig.img" "$MNT"
	cat "$TD/mount.err"
	T test -d "$MNT/fs" || die "no fs/ in the mount: $(head -c 300 "$TD/mount.err")"
	if [ "$n" = j_recover_fast_commit ]; then
		ktreecmp "$TD/k" "$MNT/fs" /a
	else
		ktreecmp "$TD/k" "$MNT/fs"
	fi
	umount_ok "$MNT"
	[ "$(sha256sum <orig.img)" = "$sum" ] || die "the image changed"
	# What the mount must have said.
	case $n in
	j_recover_fast_commit)
		grep -q "replayed .* fast-commit tags" "$TD/mount.err" ||
			die "no fast-commit replay was reported: $(tr '\n' ' ' <"$TD/mount.err")"
		;;
	j_corrupt_journal_block)
		[ "$how" = refused ] || die "the kernel recovered j_corrupt_journal_block"
		grep -q "fails its checksum; replaying the rest" "$TD/mount.err" ||
			die "no warning for the bad copy: $(tr '\n' ' ' <"$TD/mount.err")"
		;;
	esac
	return 0
}

# e2fsck -E journal_only's replay of the fast-commit image: the same
# tree as vdmount's (times and block counts aside: e2fsck rebuilds
# extent trees its own way, and its recovery stamps nothing else).
t_fc_e2fsck() {
	local MNT
	need_loop
	E2FS_TREE=$(e2fs_tree) || exit 1
	e2fs_image j_recover_fast_commit orig.img
	cp --sparse=always orig.img fsck.img
	T e2fsck -fy -E journal_only fsck.img >"$TD/fsck.out" 2>&1
	[ $? -le 1 ] || die "e2fsck -E journal_only failed: $(tail -n 3 "$TD/fsck.out" | tr '\n' ' ')"
	dumpe2fs -h fsck.img 2>/dev/null | grep -q needs_recovery &&
		die "e2fsck left the journal to recover"
	kmount "$TD/fsck.img" 0 "$(stat -c %s fsck.img)" "$TD/k"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$TD/orig.img" "$MNT"
	ktreecmp "$TD/k" "$MNT/fs"
	T test -f "$MNT/fs/a/new" && T test -f "$MNT/fs/a/data" ||
		die "a/new or a/data missing"
	[ "$(T cat "$MNT/fs/a/new")" = test ] || die "a/new does not read 'test'"
	T test -e "$MNT/fs/a/old" && die "a/old is still there"
	umount_ok "$MNT"
	kumount_ok "$TD/k"
}

# A volume with fast commits to replay, written by the kernel: a full
# commit (sync), then changes of each kind a fast commit records (a
# link, an append, a create with data, a rename, an unlink, a
# truncate) made durable by fsync alone, with a commit interval long
# enough that no full commit follows; copied while mounted.
gen_kfc() {
	local d rc=0 i
	for i in 1 2 3 4 5; do
		rm -f base.img kfc.img
		truncate -s 8M base.img &&
			mkfs.ext4 -q -F -b 1024 -O fast_commit -E lazy_itable_init=0,lazy_journal_init=0 base.img ||
			return 1
		d=$PWD/m
		mkdir -p "$d"
		echo "$d" >>"$VD_MOUNTS"
		timeout -k 5 60 mount -o loop,noatime,commit=300 base.img "$d" || return 1
		rc=0
		{
			mkdir "$d/a" && head -c 3000 /dev/urandom >"$d/a/f" &&
				head -c 20000 /dev/urandom >"$d/a/t" && : >"$d/a/old" &&
				echo moved >"$d/a/m" && sync -f "$d/a" &&
				ln "$d/a/f" "$d/a/g" && head -c 70000 /dev/urandom >>"$d/a/f" &&
				head -c 5000 /dev/urandom >"$d/a/new" && mv "$d/a/m" "$d/a/m2" &&
				rm "$d/a/old" && truncate -s 5000 "$d/a/t" &&
				python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.close(fd)' \
					"$d/a/f" "$d/a/new" "$d/a/t" "$d/a/m2" &&
				cp --sparse=always base.img kfc.img
		} || rc=1
		timeout -k 5 60 umount "$d" || return 1
		grep -vxF -- "$d" "$VD_MOUNTS" >"$VD_MOUNTS.new"
		mv "$VD_MOUNTS.new" "$VD_MOUNTS"
		[ $rc = 0 ] || return 1
		# Fast commits there: the copy needs recovery, and the
		# journal's fast-commit area opens with a head tag. A sync(2)
		# by anything else on the machine between the full commit and
		# the fsyncs makes a full commit of them instead (seen when two
		# suites ran side by side): then again.
		dumpe2fs -h kfc.img 2>/dev/null | grep -q needs_recovery &&
			debugfs -R logdump kfc.img 2>/dev/null | grep -q '^tag HEAD' && break
		echo "attempt $i: the copy holds no fast commits to replay; again"
	done
	rm -f base.img
	[ -e kfc.img ] && debugfs -R logdump kfc.img 2>/dev/null | grep -q '^tag HEAD'
}

t_kfc() {
	local d sum MNT how
	need_loop
	T0=$(date +%s)
	d=$(img_or_die kfc) || exit 1
	cp --sparse=always "$d/kfc.img" orig.img
	sum=$(sha256sum <orig.img)
	cp --sparse=always orig.img copy.img
	how=$(krecover copy.img "$TD/k")
	[ "$how" = recovered ] || die "the kernel did not recover the image ($how)"
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$TD/orig.img" "$MNT"
	cat "$TD/mount.err"
	grep -q "replayed .* fast-commit tags" "$TD/mount.err" ||
		die "no fast-commit replay was reported: $(tr '\n' ' ' <"$TD/mount.err")"
	ktreecmp "$TD/k" "$MNT/fs" /a
	T test -e "$MNT/fs/a/old" && die "a/old is still there"
	[ "$(T cat "$MNT/fs/a/m2")" = moved ] || die "a/m2 does not read 'moved'"
	umount_ok "$MNT"
	[ "$(sha256sum <orig.img)" = "$sum" ] || die "the image changed"
}

SAMPLE="j_recover_fast_commit j_corrupt_journal_block"

if [ -n "${VD_FULL:-}" ]; then
	NAMES=$(awk '{ split($2, p, "/"); print p[2] }' "$E2FS_SUMS" |
		grep -E '^j_|^f_.*journal')
else
	NAMES=$SAMPLE
fi
for n in $NAMES; do
	vd_test "journal-$n-vs-kernel" t_journal "$n"
done
[ -n "${VD_FULL:-}" ] && vd_test journal-fast-commit-vs-e2fsck t_fc_e2fsck
vd_test journal-kernel-fast-commits-vs-kernel t_kfc
vd_finish
