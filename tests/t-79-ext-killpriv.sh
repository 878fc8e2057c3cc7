#!/bin/bash
# Set-user-ID, set-group-ID and file capabilities in a writable guest
# ext4 (issue 23): a write, a truncate or a chown clears them as the
# kernel's ext4 does. chown clears S_ISUID, and S_ISGID when the group
# may execute, whoever calls it; a write or a truncate by a caller
# without CAP_FSETID clears them the same way; any write removes
# security.capability, root's too. The kernel does all of it (a SETATTR
# of the mode, a REMOVEXATTR) because the daemon does not claim it:
# libfuse 3.14 never grants FUSE_HANDLE_KILLPRIV (it has no reply bit
# for it) and knows no FUSE_HANDLE_KILLPRIV_V2. A daemon that claimed
# either would have to clear them itself; this test holds it to that.
#
# The same operations run through vdmount's p1/ (-o allow_other, so an
# ordinary user may write what the guest's modes let them) and on the
# model, the kernel's ext4: a read-write loop mount of a copy of the same
# partition image. Modes and the capability must come out the same, as
# seen through the mounts and, after the unmount, in the kernel's
# read-only mount of the partition written through the child (e2fsck -fn
# clean).
. "$(dirname "$0")/lib.sh"

VD_USER=vdtest
MIB=1048576
PSIZE=16

as_user() {
	T setpriv --reuid="$VD_USER" --regid="$VD_USER" --clear-groups "$@"
}

need_user() {
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot create or switch to user $VD_USER"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	command -v setfattr >/dev/null || skip_test "setfattr missing"
	vd_useradd "$VD_USER" || skip_test "useradd $VD_USER failed"
}

# A GPT disk whose partition 1 (ext4) holds files owned by root with
# set-ID bits, and one with a file capability (cap_net_raw+ep, the VFS
# v2 format).
CAP=0x0100000200200000000000000000000000000000
gen_disk() {
	local f
	mkdir -p tree
	for f in chown chown_nox write trunc root_write cap; do
		printf 'contents of %s\n' "$f" >"tree/$f"
	done
	chmod 6755 tree/chown tree/root_write
	chmod 6745 tree/chown_nox
	chmod 6777 tree/write tree/trunc
	chmod 0755 tree/cap
	setfattr -n security.capability -v "$CAP" tree/cap || return 1
	truncate -s $((PSIZE * MIB)) p1.img
	mkfs.ext4 -q -F -b 4096 -I 256 -E root_owner=0:0 -d tree p1.img || return 1
	debugfs -R "ea_get /cap security.capability" p1.img 2>/dev/null | grep -q . ||
		return 1
	truncate -s $(((PSIZE + 2) * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		start=2048, size=$((PSIZE * 2048)), type=L
	EOF
	dd if=p1.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O qcow2 disk.raw base.qcow2 || return 1
	rm -f disk.raw
}

# The operations, each on the folder it is given.
op_chown() { chown 1:1 "$1/chown" && chown 1:1 "$1/chown_nox"; }
op_write() { as_user sh -c 'printf x >>"$1"' _ "$1/write"; }
op_trunc() { as_user truncate -s 5 "$1/trunc"; }
op_root_write() { printf x >>"$1/root_write" && printf x >>"$1/cap"; }

# state DIR — what is compared: each file's mode and owner, and whether
# it has a capability.
state() {
	local f
	for f in chown chown_nox write trunc root_write cap; do
		printf '%s %s ' "$f" "$(stat -c '%a %u:%g %s' "$1/$f")"
		if getfattr -h -n security.capability "$1/$f" >/dev/null 2>&1; then
			echo cap
		else
			echo nocap
		fi
	done
}

t_killpriv() {
	local d m ra rb op
	need_user
	need_loop
	d=$(img_or_die disk)
	cp --sparse=always "$d/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	cp --sparse=always "$d/p1.img" "$TD/ref.img" || die "copy failed"
	m=$(vd_mnt m)
	mount_ok "$m" -o allow_other --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	vd_mount_rw "$TD/ref.img" "$TD/ref" || die "kernel mount of the model failed"
	state "$m/p1" >"$TD/before.a"
	state "$TD/ref" >"$TD/before.b"
	cmp -s "$TD/before.a" "$TD/before.b" ||
		die "before: $(diff "$TD/before.a" "$TD/before.b" | tr '\n' '|')"
	grep -q "^cap .* cap$" "$TD/before.a" || die "no capability to start with: $(cat "$TD/before.a")"
	for op in chown write trunc root_write; do
		"op_$op" "$m/p1" >"$TD/a.err" 2>&1
		ra=$?
		"op_$op" "$TD/ref" >"$TD/b.err" 2>&1
		rb=$?
		[ $ra = $rb ] || die "$op: exit $ra through vdmount ($(head -c 200 "$TD/a.err")), $rb on the kernel ($(head -c 200 "$TD/b.err"))"
		[ $ra = 0 ] || die "$op failed on both: $(head -c 200 "$TD/b.err")"
	done
	state "$m/p1" >"$TD/after.a"
	state "$TD/ref" >"$TD/after.b"
	cmp -s "$TD/after.a" "$TD/after.b" ||
		die "after: vdmount | kernel: $(diff "$TD/after.a" "$TD/after.b" | tr '\n' '|')"
	# The model cleared something: the test compares changes, not
	# files left as they were.
	cmp -s "$TD/before.b" "$TD/after.b" && die "the kernel changed nothing"
	umount_ok "$m"
	T umount "$TD/ref" || die "umount of the model failed"
	# What the child holds, through the kernel.
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "qemu-img convert failed"
	dd if="$TD/out.raw" of="$TD/p1.out" bs=1M skip=1 count="$PSIZE" conv=sparse \
		status=none || die "dd failed"
	T e2fsck -fn "$TD/p1.out" >"$TD/fsck.out" 2>&1 ||
		die "e2fsck -fn: $(tail -n 6 "$TD/fsck.out" | tr '\n' '|')"
	kmount "$TD/p1.out" 0 $((PSIZE * MIB)) "$TD/k"
	state "$TD/k" >"$TD/written"
	kumount_ok "$TD/k"
	cmp -s "$TD/written" "$TD/after.b" ||
		die "written: child | kernel: $(diff "$TD/written" "$TD/after.b" | tr '\n' '|')"
	rm -f "$TD"/*.raw "$TD"/*.img "$TD"/*.out "$TD"/*.qcow2
}

vd_test killpriv t_killpriv
vd_finish
