#!/bin/bash
# Writing guest ext2/3/4 files: vdmount --overlay=CHILD makes pN/ of an
# ext partition writable through libext2fs, the writes going into the
# qcow2 child.
#
# The same operations run on vdmount's pN/ and on the model: the kernel's
# own ext4 driver, a read-write loop mount of a copy of the same
# partition image; each must end the same way (exit status, errno).
# Oracles not ours, after the unmount: qemu-img check of the child (no
# errors, no leaks), the base's sha256 unchanged, e2fsck -fn of the
# written partition (qemu-img convert -O raw of the child) clean, and
# the kernel's read-only loop mount of it compared with the model
# (tests/treecmp.py: modes, owners, times, xattrs, links, contents).
. "$(dirname "$0")/lib.sh"

# extfsx.py and treecmp.py are called a few times: the real interpreter.
PATH=/usr/bin:$PATH
MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
FSX=$VD_LIB_DIR/extfsx.py
MIB=1048576

# The disk of gen_disk (GPT): start and size of each partition in MiB.
# p1 ext4 holding mktree's small tree, p2 vfat, p3 ext2 (1 KiB blocks,
# no journal), p4 ext3.
declare -A PSTART=([1]=1 [2]=41 [3]=49 [4]=65)
declare -A PSIZE=([1]=40 [2]=8 [3]=16 [4]=16)

# -------------------------------------------------------------- images

gen_disk() {
	python3 "$MKTREE" --profile small --seed 73 src || return 1
	truncate -s $((PSIZE[1] * MIB)) p1.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -I 256 -d src p1.img || return 1
	# mkfs -d keeps whole seconds: the kernel sets the times.
	vd_mount_rw p1.img "$PWD/k" || return 1
	python3 "$MKTREE" --profile small --times-only --seed 73 k
	local rc=$?
	timeout -k 5 60 umount k || return 1
	[ $rc -eq 0 ] || return 1
	e2fsck -fn p1.img || return 1
	truncate -s $((PSIZE[2] * MIB)) p2.img
	mkfs.vfat -n VFAT p2.img || return 1
	echo hello >hello.txt
	mcopy -i p2.img hello.txt :: || return 1
	truncate -s $((PSIZE[3] * MIB)) p3.img
	mkfs.ext2 -q -F -b 1024 -I 256 p3.img || return 1
	truncate -s $((PSIZE[4] * MIB)) p4.img
	mkfs.ext3 -q -F -b 4096 -I 256 p4.img || return 1
	truncate -s $((84 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=81920, type=L, name="ext4"
		start=83968, size=16384, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="vfat"
		start=100352, size=32768, type=L, name="ext2"
		start=133120, size=32768, type=L, name="ext3"
	EOF
	for n in 1 2 3 4; do
		dd if="p$n.img" of=disk.raw bs=1M seek="${PSTART[$n]}" \
			conv=notrunc,sparse status=none || return 1
	done
	qemu-img convert -O qcow2 disk.raw base.qcow2 || return 1
	rm -f disk.raw
	# A small host tree for cp -a: folders, hard and soft links, xattrs,
	# a fifo, odd modes, an owner past 65535, times with nanoseconds.
	mkdir -p host/a/b host/empty
	printf 'one\n' >host/a/one.txt
	head -c 200000 /dev/urandom >host/a/b/rand.bin
	ln host/a/one.txt host/a/b/hard.txt
	ln -s ../one.txt host/a/b/sym
	ln -s "$(printf 'x%.0s' $(seq 100))" host/longsym
	mkfifo host/fifo
	setfattr -n user.colour -v blue host/a/one.txt || return 1
	setfattr -n trusted.t -v "$(printf 'v%.0s' $(seq 700))" host/a/b/rand.bin || return 1
	chmod 4750 host/a/b/rand.bin
	chown 70000:80000 host/a/one.txt
	find host -exec touch -h -d @1234567890.123456789 {} +
}

# ------------------------------------------------------------- helpers

# setup — inside a test: the base copied into $TD (D is the cache), its
# sha256 kept, and mounted at $M with --overlay=$TD/child.qcow2.
setup() {
	D=$(img_or_die disk) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	BASESUM=$(sha256sum <"$TD/base.qcow2")
	M=$(vd_mnt m)
	mount_ok "$M" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$M"
}

# ref_mount N — the model: the kernel's read-write mount of a copy of
# partition N's image, at $TD/refN.
ref_mount() {
	local n=$1
	need_loop
	cp --sparse=always "$D/p$n.img" "$TD/ref$n.img" || die "copy failed"
	vd_mount_rw "$TD/ref$n.img" "$TD/ref$n" || die "kernel mount of the model failed"
}

# finish — unmount; the child is clean for qemu-img, the base unchanged,
# and the disk as qemu-img sees the child is in $TD/out.raw.
finish() {
	local out
	umount_ok "$M"
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1) || die "qemu-img check: $out"
	echo "$out" | grep -q "No errors were found" || die "qemu-img check: $out"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$BASESUM" ] || die "the base changed"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" ||
		die "qemu-img convert failed"
}

# part_out N — partition N of out.raw into $TD/pN.out; e2fsck -fn finds
# nothing wrong in it.
part_out() {
	local n=$1
	dd if="$TD/out.raw" of="$TD/p$n.out" bs=1M skip="${PSTART[$n]}" \
		count="${PSIZE[$n]}" conv=sparse status=none || die "dd failed"
	T e2fsck -fn "$TD/p$n.out" >"$TD/fsck$n.out" 2>&1 ||
		die "e2fsck -fn of p$n: $(tail -n 6 "$TD/fsck$n.out" | tr '\n' '|')"
}

# same_as_model N — the kernel's read-only mount of pN.out holds what the
# model holds.
same_as_model() {
	local n=$1
	kmount "$TD/p$n.out" 0 $((PSIZE[$n] * MIB)) "$TD/k$n"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino \
		--exclude lost+found "$TD/ref$n" "$TD/k$n" >"$TD/treecmp$n.out" 2>&1 ||
		die "p$n differs from the model: $(head -n 6 "$TD/treecmp$n.out" | tr '\n' '|')"
	kumount_ok "$TD/k$n"
}

# tidy — at the end of a test that passed: its images go (a failed test
# keeps them to look at; a mounted one lives on until the cleanup).
tidy() {
	rm -f "$TD"/*.raw "$TD"/*.img "$TD"/*.out "$TD"/*.qcow2 "$TD/src" \
		"$TD/want" "$TD/got"
}

# both WHAT CMD... — run CMD (a function of the folder, given as its first
# argument) on vdmount's folder $A and the model's $B: same exit status.
both() {
	local what=$1 ra rb
	shift
	"$@" "$A" >"$TD/.a.out" 2>&1
	ra=$?
	"$@" "$B" >"$TD/.b.out" 2>&1
	rb=$?
	[ $ra = $rb ] || die "$what: exit $ra through vdmount ($(head -c 200 "$TD/.a.out")), $rb on the kernel ($(head -c 200 "$TD/.b.out"))"
}

# The operations of the write tests, one function each (of the folder).
op_create() { echo hello >"$1/new.txt" && printf 'more\n' >>"$1/new.txt"; }
op_copy() { cp "$D/host/a/b/rand.bin" "$1/rand.bin"; }
op_truncate() { truncate -s 100000 "$1/rand.bin" && truncate -s 500000 "$1/rand.bin"; }
op_mkdir() { mkdir -p "$1/newdir/sub/deeper" && mkdir "$1/gone" && rmdir "$1/gone"; }
op_link() { ln "$1/new.txt" "$1/newdir/hard.txt"; }
op_symlink() { ln -s ../new.txt "$1/newdir/sym" && ln -s "$(printf 'l%.0s' $(seq 300))" "$1/longsym"; }
op_rename() { mv "$1/rand.bin" "$1/newdir/sub/moved.bin" && mv "$1/newdir/sub/deeper" "$1/deeper2"; }
op_rename_over() { echo a >"$1/ra" && echo b >"$1/rb" && mv -f "$1/ra" "$1/rb"; }
op_chmod() { chmod 0640 "$1/new.txt" && chown 1234:70000 "$1/new.txt"; }
op_touch() { touch -h -d @1000000000.123456789 "$1/newdir/sym" && touch -d @-100.5 "$1/newdir/hard.txt"; }
op_xattr() {
	setfattr -n user.test -v hello "$1/new.txt" &&
		setfattr -n user.big -v "$(printf 'b%.0s' $(seq 1500))" "$1/new.txt" &&
		setfattr -n user.gone -v x "$1/new.txt" && setfattr -x user.gone "$1/new.txt"
}
op_special() { mkfifo "$1/fifo2" && mknod "$1/cdev" c 1 3 && mknod "$1/bdev" b 300 70000; }
op_cp_a() { cp -a "$D/host" "$1/copied"; }
op_rm_tree() { rm -rf "$1/newdir/sub"; }
op_unlink() { rm "$1/rb"; }
op_falloc() { fallocate -l 300000 "$1/fa" && fallocate -n -o 1048576 -l 65536 "$1/fa" && echo x >>"$1/fa"; }
op_append_dd() { dd if="$D/host/a/b/rand.bin" of="$1/newdir/hard.txt" bs=4096 seek=3 conv=notrunc status=none; }

# The operations above, in order, on $A and $B.
write_ops() {
	local op
	for op in create copy truncate mkdir link symlink rename \
		rename_over chmod xattr special cp_a falloc append_dd touch \
		rm_tree unlink; do
		both "$op" "op_$op"
	done
}

# ------------------------------------------------------------- tests

# ext4 holding a full tree (devices, ACLs, owners, odd times) and ext3:
# everything issue 23 lists, against the kernel; the tree is then read
# back through the mount and after the unmount.
t_ext4_ext3() {
	local n
	setup
	ref_mount 1
	ref_mount 4
	T python3 -c 'import os, sys; os.statvfs(sys.argv[1])' "$M/p1" ||
		die "statfs of p1 failed"
	local free0 free1
	free0=$(stat -f -c %f "$M/p1")
	for n in 1 4; do
		A=$M/p$n B=$TD/ref$n write_ops
	done
	# Also an existing file and folder of the tree the image came with.
	rm_old() { rm -f "$1/special/fifo" && rm -rf "$1/deep"; }
	A=$M/p1 B=$TD/ref1 both "remove old" rm_old
	free1=$(stat -f -c %f "$M/p1")
	[ "$free1" -lt "$free0" ] || die "statfs free blocks $free0 before, $free1 after writing"
	# Through the mount, as written: times set on both, then compared.
	[ "$(stat -c %y "$M/p1/newdir/sym")" = "$(stat -c %y "$TD/ref1/newdir/sym")" ] ||
		die "touch -h: $(stat -c %y "$M/p1/newdir/sym") vs $(stat -c %y "$TD/ref1/newdir/sym")"
	[ "$(stat -c %y "$M/p1/newdir/hard.txt")" = "$(stat -c %y "$TD/ref1/newdir/hard.txt")" ] ||
		die "touch before 1970: $(stat -c %y "$M/p1/newdir/hard.txt")"
	for n in 1 4; do
		T python3 "$FSX" --ops 0 "$M/p$n" "$TD/ref$n" >"$TD/cmp$n.out" 2>&1 ||
			die "through the mount: $(cat "$TD/cmp$n.out")"
	done
	finish
	for n in 1 4; do
		part_out "$n"
		same_as_model "$n"
	done
	tidy
}

# ext2 (1 KiB blocks, block maps, no journal) and an fsx-like random
# workload on ext4.
t_ext2() {
	setup
	ref_mount 3
	A=$M/p3 B=$TD/ref3 write_ops
	T python3 "$FSX" --ops 0 "$M/p3" "$TD/ref3" >"$TD/cmp.out" 2>&1 ||
		die "through the mount: $(cat "$TD/cmp.out")"
	finish
	part_out 3
	same_as_model 3
	tidy
}

t_fsx() {
	local seed ops=400 n=3
	[ "${VD_FULL:-}" = 1 ] && ops=3000
	setup
	ref_mount 1
	ref_mount 3
	# VD_FSX_SEEDS: other seeds (odd places on ext4, even on ext2).
	for seed in ${VD_FSX_SEEDS:-1 2}; do
		n=$((n == 1 ? 3 : 1))
		mkdir "$M/p$n/fsx$seed" "$TD/ref$n/fsx$seed" || die "mkdir failed"
		T python3 "$FSX" --seed "$seed" --ops "$ops" "$M/p$n/fsx$seed" \
			"$TD/ref$n/fsx$seed" >"$TD/fsx.out" 2>&1 || die "$(cat "$TD/fsx.out")"
		cat "$TD/fsx.out"
		touch -d @1500000000 "$M/p$n" "$TD/ref$n"
	done
	finish
	for n in 1 3; do
		part_out "$n"
		same_as_model "$n"
	done
	tidy
}

# The kernel's errors; other filesystems and a read-only mount: EROFS.
t_errors() {
	local long
	setup
	mkdir "$M/p1/full" && touch "$M/p1/full/x" || die "mkdir failed"
	T rmdir "$M/p1/full" 2>"$TD/e" && die "rmdir of a non-empty folder succeeded"
	grep -q "Directory not empty" "$TD/e" || die "rmdir: $(cat "$TD/e")"
	T mkdir "$M/p1/full" 2>"$TD/e" && die "mkdir of an existing folder succeeded"
	grep -q "File exists" "$TD/e" || die "mkdir: $(cat "$TD/e")"
	long=$(printf 'n%.0s' $(seq 256))
	T touch "$M/p1/$long" 2>"$TD/e" && die "a 256-byte name was made"
	grep -q "File name too long" "$TD/e" || die "long name: $(cat "$TD/e")"
	T touch "$M/p1/${long:1}" || die "a 255-byte name was refused"
	# Between two filesystems of the mount.
	T python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' \
		"$M/p1/full/x" "$M/p3/x" 2>"$TD/e" && die "a rename across filesystems succeeded"
	grep -q "Invalid cross-device link" "$TD/e" || die "rename: $(cat "$TD/e")"
	T python3 -c 'import os, sys; os.link(sys.argv[1], sys.argv[2])' \
		"$M/p1/full/x" "$M/p4/x" 2>"$TD/e" && die "a link across filesystems succeeded"
	grep -q "Invalid cross-device link" "$TD/e" || die "link: $(cat "$TD/e")"
	# vfat stays read-only in a writable mount, as do the tree's names.
	for what in "touch $M/p2/new" "mkdir $M/p2/d" "rm $M/p2/hello.txt" \
		"mkdir $M/top" "touch $M/p2/hello.txt"; do
		T $what 2>"$TD/e" && die "$what succeeded"
		grep -q "Read-only file system" "$TD/e" || die "$what: $(cat "$TD/e")"
	done
	[ "$(cat "$M/p2/hello.txt")" = hello ] || die "p2/hello.txt changed"
	finish
	part_out 1
	umount_ok_ro() {
		local m
		m=$(vd_mnt ro)
		mount_ok "$m" "$TD/child.qcow2" "$m"
		[ -e "$m/p1/full/x" ] || die "the read-only mount lacks p1/full/x"
		T touch "$m/p1/y" 2>"$TD/e" && die "a read-only mount made a file"
		grep -q "Read-only file system" "$TD/e" || die "read-only: $(cat "$TD/e")"
		umount_ok "$m"
	}
	umount_ok_ro
	tidy
}

# A full filesystem: ENOSPC, the daemon stays up, e2fsck finds it clean.
t_enospc() {
	setup
	T dd if=/dev/zero of="$M/p3/fill" bs=65536 2>"$TD/e" && die "filling p3 succeeded"
	grep -q "No space left on device" "$TD/e" || die "dd: $(cat "$TD/e")"
	[ "$(stat -f -c %a "$M/p3")" -lt 64 ] || die "statfs: $(stat -f -c %a "$M/p3") blocks left after filling"
	rm "$M/p3/fill" || die "rm failed"
	echo after >"$M/p3/after" || die "no write after the filesystem was freed"
	finish
	part_out 3
	tidy
}

# A full ext4 met by many files of every size (extent trees that must
# grow to map what is written): each write that does not fit is cut or
# refused whole, and e2fsck -fn finds nothing (no block counted and
# mapped nowhere).
t_enospc_many() {
	setup
	python3 - "$TD/many" <<-'PY' || die "making the host tree failed"
		import os, random, sys
		rng = random.Random(73)
		for d in range(30):
		    p = os.path.join(sys.argv[1], "d%02d" % d)
		    os.makedirs(p)
		    for f in range(100):
		        with open(os.path.join(p, "f%03d" % f), "wb") as fh:
		            fh.write(rng.randbytes(rng.choice((0, 900, 5000, 30000, 70000))))
	PY
	T cp -a "$TD/many" "$M/p1/" 2>"$TD/e" && die "the copy fitted: p1 is larger than the test expects"
	grep -q "No space left on device" "$TD/e" || die "cp: $(head -n 3 "$TD/e")"
	finish
	part_out 1
	tidy
}

# SIGKILL after an fsync: the child opens in qemu-img without
# corruption, and after e2fsck -fy the fsynced bytes are there.
t_crash() {
	local pid
	setup
	head -c 300000 /dev/urandom >"$TD/want"
	T python3 -c 'import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
os.close(fd)' "$TD/want" "$M/p3/synced" "$M/p3/unsynced" || die "writes failed"
	pid=$(vd_daemon_pids "$M")
	[ -n "$pid" ] || die "no daemon"
	kill -KILL $pid
	umount_ok "$M"
	local out rc
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1)
	rc=$?
	{ [ $rc = 0 ] || [ $rc = 3 ]; } || die "qemu-img check (exit $rc): $out"
	echo "$out" | grep -qi corrupt && die "qemu-img check: $out"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "convert failed"
	dd if="$TD/out.raw" of="$TD/p3.out" bs=1M skip="${PSTART[3]}" \
		count="${PSIZE[3]}" conv=sparse status=none || die "dd failed"
	T e2fsck -fy "$TD/p3.out" >"$TD/fsck.out" 2>&1
	rc=$?
	[ $rc -le 1 ] || die "e2fsck -fy (exit $rc): $(tail -n 5 "$TD/fsck.out" | tr '\n' '|')"
	T e2fsck -fn "$TD/p3.out" >"$TD/fsck2.out" 2>&1 || die "not clean after e2fsck -fy"
	T debugfs -R "dump /synced $TD/got" "$TD/p3.out" >/dev/null 2>&1
	cmp "$TD/got" "$TD/want" || die "the fsynced file's bytes are not there"
	tidy
}

# Writers in parallel (the daemon's threads serialise them on the
# filesystem's lock): each file as written, through the mount and in the
# kernel's mount of the result.
t_parallel() {
	local i
	setup
	head -c 3000000 /dev/urandom >"$TD/src"
	mkdir "$M/p1/par" || die "mkdir failed"
	for i in 1 2 3 4 5 6; do
		T dd if="$TD/src" of="$M/p1/par/f$i" bs=$((i * 13000)) status=none &
	done
	T find "$M/p1" -type f -exec cat {} + >/dev/null 2>&1 &
	wait
	for i in 1 2 3 4 5 6; do
		cmp "$TD/src" "$M/p1/par/f$i" || die "f$i differs through the mount"
	done
	finish
	part_out 1
	kmount "$TD/p1.out" 0 $((PSIZE[1] * MIB)) "$TD/k1"
	for i in 1 2 3 4 5 6; do
		cmp "$TD/src" "$TD/k1/par/f$i" || die "f$i differs in the kernel's mount"
	done
	kumount_ok "$TD/k1"
	tidy
}

# SIGTERM without an fsync: the daemon flushes and leaves the child and
# the guest filesystem clean, the writes there.
t_sigterm() {
	local pid
	setup
	echo data >"$M/p3/t.txt" && mkdir "$M/p3/dir" || die "writes failed"
	pid=$(vd_daemon_pids "$M")
	[ -n "$pid" ] || die "no daemon"
	kill -TERM $pid
	finish
	part_out 3
	[ "$(T debugfs -R "cat /t.txt" "$TD/p3.out" 2>/dev/null)" = data ] ||
		die "t.txt is not in the filesystem after SIGTERM"
	tidy
}

# needs_recovery over a journal with nothing in it (debugfs sets the
# flag): the first change clears it, as the kernel's recovery would, and
# the filesystem is then written as any other (t-76 replays real
# journals).
gen_dirty() {
	truncate -s $((16 * MIB)) fs.img
	mkfs.ext4 -q -F -b 4096 fs.img || return 1
	debugfs -w -R "feature needs_recovery" fs.img || return 1
	dumpe2fs -h fs.img 2>/dev/null | grep -q needs_recovery || return 1
	qemu-img convert -O qcow2 fs.img dirty.qcow2
}

t_dirty_journal() {
	local d m
	d=$(img_or_die dirty) || exit 1
	cp "$d/dirty.qcow2" "$TD/" || die "copy failed"
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/c.qcow2" "$TD/dirty.qcow2" "$m"
	grep -q "read-only" "$TD/mount.err" && die "stays read-only: $(cat "$TD/mount.err")"
	echo x >"$m/fs/x" || die "no file was made"
	umount_ok "$m"
	T qemu-img convert -O raw "$TD/c.qcow2" "$TD/out.raw" || die "convert failed"
	T e2fsck -fn "$TD/out.raw" >"$TD/fsck.out" 2>&1 ||
		die "e2fsck -fn: $(tail -n 6 "$TD/fsck.out" | tr '\n' '|')"
	dumpe2fs -h "$TD/out.raw" 2>/dev/null | grep -q needs_recovery &&
		die "needs_recovery is still set"
	[ "$(T debugfs -R "cat /x" "$TD/out.raw" 2>/dev/null)" = x ] || die "x is not there"
	tidy
}

# vdtool copy-in: the same write calls without FUSE. -p keeps modes,
# owners, times, xattrs and hard links (the kernel's view of the result
# against the host tree); --parents makes the folders; a guest symlink
# in the way is not followed.
t_copy_in() {
	local out
	D=$(img_or_die disk) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	BASESUM=$(sha256sum <"$TD/base.qcow2")
	ci() { T "$VDTOOL" copy-in "$@" >"$TD/ci.out" 2>&1; }
	ci -p --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$D/host" /p1/ ||
		die "copy-in -p: $(cat "$TD/ci.out")"
	ci --parents --rw "$TD/child.qcow2" "$D/host/a/one.txt" /p3/new/deep/ ||
		die "copy-in --parents: $(cat "$TD/ci.out")"
	ci --rw "$TD/child.qcow2" "$D/host/a/one.txt" /p3/none/x.txt &&
		die "copy-in made a folder without --parents"
	# A guest symlink to / where a folder is to be merged into.
	mkdir -p "$TD/trap" "$TD/trap2/sub"
	ln -s / "$TD/trap/sub"
	echo x >"$TD/trap2/sub/escaped"
	ci --rw "$TD/child.qcow2" "$TD/trap" /p4/ || die "copy-in trap: $(cat "$TD/ci.out")"
	ci --rw "$TD/child.qcow2" "$TD/trap2/." /p4/trap/ &&
		die "copy-in through a guest symlink succeeded"
	grep -q "symlink in the guest" "$TD/ci.out" || die "copy-in: $(cat "$TD/ci.out")"
	ci --rw "$TD/child.qcow2" "$D/host/a/one.txt" /p2/ && die "copy-in to vfat succeeded"
	grep -q "Read-only file system" "$TD/ci.out" || die "copy-in to vfat: $(cat "$TD/ci.out")"
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1) || die "qemu-img check: $out"
	echo "$out" | grep -q "No errors were found" || die "qemu-img check: $out"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$BASESUM" ] || die "the base changed"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "convert failed"
	part_out 1
	part_out 3
	part_out 4
	kmount "$TD/p1.out" 0 $((PSIZE[1] * MIB)) "$TD/k1"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino \
		"$D/host" "$TD/k1/host" >"$TD/treecmp.out" 2>&1 ||
		die "the copy differs from the host tree: $(head -n 6 "$TD/treecmp.out" | tr '\n' '|')"
	kumount_ok "$TD/k1"
	kmount "$TD/p3.out" 0 $((PSIZE[3] * MIB)) "$TD/k3"
	cmp "$TD/k3/new/deep/one.txt" "$D/host/a/one.txt" || die "--parents: not copied"
	[ -e "$TD/k3/none" ] && die "a folder was made without --parents"
	kumount_ok "$TD/k3"
	kmount "$TD/p4.out" 0 $((PSIZE[4] * MIB)) "$TD/k4"
	[ -L "$TD/k4/trap/sub" ] || die "the guest symlink is gone"
	[ -e "$TD/k4/escaped" ] && die "a file was written through the guest symlink"
	kumount_ok "$TD/k4"
	tidy
}

vd_test ext4_ext3 t_ext4_ext3
vd_test ext2 t_ext2
vd_test fsx t_fsx
vd_test errors t_errors
vd_test enospc t_enospc
vd_test enospc_many t_enospc_many
vd_test crash t_crash
vd_test parallel t_parallel
vd_test sigterm t_sigterm
vd_test dirty_journal t_dirty_journal
vd_test copy_in t_copy_in
vd_finish
