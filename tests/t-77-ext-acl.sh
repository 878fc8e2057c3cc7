#!/bin/bash
# Default ACLs in a writable guest ext4: what is made in a folder with a
# default ACL gets the ACL as the kernel's ext4 gives it (an access ACL
# from the default one, masked by the mode asked for; folders the default
# ACL too; the umask not applied), what is made elsewhere the mode less
# the umask, and a chmod carries over to the access ACL.
#
# The model is the kernel's own: the same operations on a read-write loop
# mount of a copy of the partition. Compared: getfacl of every path, and
# tests/treecmp.py (modes, owners, xattrs, ACLs included) through the
# mount and, after the unmount, in the kernel's read-only mount of the
# written partition; e2fsck -fn of it clean. vdtool copy-in into such a
# folder against cp on the kernel.
. "$(dirname "$0")/lib.sh"

PATH=/usr/bin:$PATH
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

gen_acl() {
	truncate -s $((24 * MIB)) p1.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -I 256 p1.img || return 1
	truncate -s $((26 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=49152, type=L
	EOF
	dd if=p1.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O qcow2 disk.raw base.qcow2 || return 1
	rm -f disk.raw
	printf 'host file\n' >host.txt
	chmod 0664 host.txt
}

# The operations, on folder $1; every step must work on both sides.
PATHS="d d/f1 d/f600 d/sub d/sub/deep d/m750 d/fifo d/sym d/x700 e e/f e/d
u u/f u/d"
ops() {
	local r=$1
	mkdir "$r/d" &&
		setfacl -d -m u:1234:rwx,g:2345:r-x,g::r-x,o::---,m::rwx "$r/d" &&
		(umask 022 && touch "$r/d/f1" && mkdir "$r/d/sub" &&
			python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600))' "$r/d/f600" &&
			mkdir -m 0750 "$r/d/m750" && mkfifo "$r/d/fifo" &&
			ln -s f1 "$r/d/sym" && touch "$r/d/sub/deep" &&
			touch "$r/d/x700" && chmod 0700 "$r/d/x700") &&
		chmod 0640 "$r/d/f1" &&
		# A default ACL that says no more than a mode: no access ACL.
		mkdir "$r/e" && setfacl -d --set u::rw,g::r,o::- "$r/e" &&
		(umask 0 && touch "$r/e/f" && mkdir "$r/e/d") &&
		# No default ACL: the umask.
		mkdir "$r/u" && (umask 027 && touch "$r/u/f" && mkdir "$r/u/d")
}

facls() {
	local r=$1 p
	for p in $PATHS; do
		echo "== $p $(stat -c %A "$r/$p")"
		getfacl -cnp "$r/$p" 2>&1 | grep -v '^#'
	done
}

t_acl() {
	local out
	need_loop
	D=$(img_or_die acl) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	BASESUM=$(sha256sum <"$TD/base.qcow2")
	cp --sparse=always "$D/p1.img" "$TD/ref.img" || die "copy failed"
	vd_mount_rw "$TD/ref.img" "$TD/ref" || die "kernel mount of the model failed"
	M=$(vd_mnt m)
	mount_ok "$M" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$M"
	ops "$TD/ref" >"$TD/ops.ref" 2>&1 || die "on the kernel: $(cat "$TD/ops.ref")"
	ops "$M/p1" >"$TD/ops.vd" 2>&1 || die "through vdmount: $(cat "$TD/ops.vd")"
	facls "$TD/ref" >"$TD/facl.ref"
	facls "$M/p1" >"$TD/facl.vd"
	diff "$TD/facl.ref" "$TD/facl.vd" >"$TD/facl.diff" ||
		die "getfacl differs (< kernel, > vdmount): $(head -n 12 "$TD/facl.diff" | tr '\n' '|')"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,mtime,blocks,dino \
		--exclude lost+found "$TD/ref" "$M/p1" >"$TD/cmp.out" 2>&1 ||
		die "through the mount: $(head -n 6 "$TD/cmp.out" | tr '\n' '|')"
	umount_ok "$M"
	# copy-in into the folder with the default ACL, cp on the kernel.
	(umask 022 && T "$VDTOOL" copy-in --rw "$TD/child.qcow2" "$D/host.txt" /p1/d/) \
		>"$TD/ci.out" 2>&1 || die "copy-in: $(cat "$TD/ci.out")"
	(umask 022 && cp "$D/host.txt" "$TD/ref/d/") || die "cp failed"
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1) || die "qemu-img check: $out"
	echo "$out" | grep -q "No errors were found" || die "qemu-img check: $out"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$BASESUM" ] || die "the base changed"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "convert failed"
	dd if="$TD/out.raw" of="$TD/p1.out" bs=1M skip=1 count=24 conv=sparse \
		status=none || die "dd failed"
	T e2fsck -fn "$TD/p1.out" >"$TD/fsck.out" 2>&1 ||
		die "e2fsck -fn: $(tail -n 6 "$TD/fsck.out" | tr '\n' '|')"
	kmount "$TD/p1.out" 0 $((24 * MIB)) "$TD/k"
	PATHS="$PATHS d/host.txt"
	facls "$TD/ref" >"$TD/facl.ref"
	facls "$TD/k" >"$TD/facl.k"
	diff "$TD/facl.ref" "$TD/facl.k" >"$TD/facl.diff" ||
		die "getfacl differs after the unmount (< model, > written): $(head -n 12 "$TD/facl.diff" | tr '\n' '|')"
	T python3 "$TREECMP" --ignore dirsize,ctime,atime,mtime,blocks,dino \
		--exclude lost+found "$TD/ref" "$TD/k" >"$TD/cmp.out" 2>&1 ||
		die "after the unmount: $(head -n 6 "$TD/cmp.out" | tr '\n' '|')"
	kumount_ok "$TD/k"
	rm -f "$TD"/*.raw "$TD"/*.out "$TD"/*.qcow2 "$TD"/*.img
}

vd_test acl t_acl
vd_finish
