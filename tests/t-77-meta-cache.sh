#!/bin/bash
# What the kernel may cache of a read-only mount (issue 28: POSIX ACLs
# cached per inode, symlink targets in the page cache, long entry and
# attribute timeouts, negative entries, no FLUSH on close) must not
# change what anyone sees: modes, owners, ACLs, xattrs and symlinks
# through vdmount equal the kernel's ext4 view of the same partition,
# for root and, with -o allow_other, for another user (whose access the
# kernel now decides from the guest's modes and ACLs), on a first walk
# and again from the caches; a name looked up in vain never hides one
# that exists, and in a writable mount a name made after a failed lookup
# is there at once.
#
# Oracles: the kernel's ext4 (read-only loop mount of the same
# partition), getfacl, getfattr, stat and ls; the other user's access as
# the kernel grants it on its own mount.
. "$(dirname "$0")/lib.sh"

VD_USER=vdtest
MIB=1048576
NMANY=3000

as_user() {
	timeout -k 5 "$VD_TIMEOUT" setpriv --reuid="$VD_USER" --regid="$VD_USER" --clear-groups "$@"
}

need_user() {
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot create or switch to user $VD_USER"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	vd_useradd "$VD_USER" || skip_test "useradd $VD_USER failed"
}

need_tools() {
	need_loop
	command -v setfacl >/dev/null && command -v getfacl >/dev/null ||
		skip_test "setfacl/getfacl missing (Debian package acl)"
	command -v setfattr >/dev/null && command -v getfattr >/dev/null ||
		skip_test "setfattr/getfattr missing (Debian package attr)"
	vd_useradd "$VD_USER" || skip_test "useradd $VD_USER failed"
}

# A GPT disk, partition 1 ext4 (32 MiB at 1 MiB), filled through the
# kernel's read-write loop mount: files with ACLs that grant, deny and
# mask the test user, folders with access and default ACLs, user,
# trusted and security xattrs, fast and slow symlinks, odd modes, and
# many/, a folder of NMANY names (htree-indexed by the kernel).
gen_meta() {
	local u rc=0 i
	u=$(id -u "$VD_USER") || return 1
	truncate -s $((32 * MIB)) fs.img
	mkfs.ext4 -q -F -b 4096 -I 256 -E root_owner=0:0 fs.img || return 1
	mkdir -p k
	echo "$PWD/k" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o loop,acl,user_xattr fs.img k || return 1
	(
		set -e
		cd k
		mkdir pub private closed many
		printf 'plain\n' >pub/plain
		printf 'secret\n' >pub/secret
		printf 'read by acl\n' >pub/acl-read
		printf 'denied by acl\n' >pub/acl-deny
		printf 'group acl\n' >pub/acl-group
		printf 'masked\n' >pub/acl-masked
		printf 'suid\n' >pub/setuid
		printf 'none\n' >pub/none
		printf 'xattrs\n' >pub/xa
		printf 'mine\n' >pub/owned
		chmod 644 pub/plain
		chmod 600 pub/secret pub/acl-read pub/acl-masked
		chmod 644 pub/acl-deny
		chmod 640 pub/acl-group
		chmod 4755 pub/setuid
		chmod 000 pub/none
		chown "$u:$u" pub/owned
		chmod 640 pub/owned
		setfacl -m "u:$u:r" pub/acl-read
		setfacl -m "u:$u:-" pub/acl-deny
		setfacl -m "g:$u:rw,m::r" pub/acl-group
		setfacl -m "u:$u:rw,m::-" pub/acl-masked
		setfattr -n user.colour -v blue pub/xa
		setfattr -n trusted.t -v "$(printf 'v%.0s' $(seq 300))" pub/xa
		setfattr -n security.s -v label pub/xa
		ln -s plain pub/short
		ln -s "$(printf 'x%.0s' $(seq 100))/plain" pub/long
		ln -s ../nowhere pub/dangling
		chmod 700 private closed
		setfacl -m "u:$u:rx" private
		printf 'inside\n' >private/inside
		chmod 644 private/inside
		mkdir private/defdir
		setfacl -d -m "u:$u:rwx" private/defdir
		printf 'made under a default acl\n' >private/defdir/child
		printf 'closed\n' >closed/inside
		chmod 644 closed/inside
		for ((i = 0; i < NMANY; i++)); do : >"many/f$(printf %07d "$i")"; done
		printf 'Upper\n' >many/Case
	) || rc=1
	timeout -k 5 60 umount k || return 1
	grep -vxF -- "$PWD/k" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	[ $rc = 0 ] || return 1
	e2fsck -fn fs.img >fsck.out 2>&1 || return 1
	truncate -s $((40 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		start=2048, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	dd if=fs.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O qcow2 disk.raw meta.qcow2 || return 1
	rm -f disk.raw
}

# view DIR — what root sees under DIR: every path's mode, owner, size,
# link count, link target, ACLs and xattrs of every namespace (values
# in hex), path by path in name order (the kernel lists an indexed
# folder in hash order, vdmount in on-disk order), and ls -l (ACL
# markers).
view() {
	(
		cd "$1" || exit 1
		T find . -path ./many -prune -o -print | LC_ALL=C sort | while IFS= read -r p; do
			T stat -c '%n %A %u %g %s %h %F' -- "$p"
			[ ! -L "$p" ] || echo "-> $(T readlink -- "$p")"
			T getfacl -P -n -p -- "$p" 2>&1
			T getfattr -h -d -m - -e hex -- "$p" 2>&1
		done
		LC_ALL=C T ls -lR --time-style=+%s pub private closed
	)
}

# user_view DIR — what the test user may do under DIR: for each path,
# stat, access(2) for r (and x for folders: the kernel's mount is
# noexec), and reading (files) or listing (folders).
user_view() {
	as_user bash -c '
		cd "$1" || exit 1
		for p in . pub private private/defdir closed pub/* private/inside \
			private/defdir/child closed/inside; do
			s=$(stat -c %A -- "$p" 2>/dev/null) || s=nostat
			a=
			test -r "$p" && a=${a}r || a=${a}-
			if [ -d "$p" ]; then
				test -x "$p" && a=${a}x || a=${a}-
				ls -- "$p" >/dev/null 2>&1 && o=list || o=nolist
			else
				cat -- "$p" >/dev/null 2>&1 && o=read || o=noread
			fi
			echo "$p $s $a $o"
		done' _ "$1"
}

# ok_mounts — inside a test: the image, vdmount at $M (options in "$@"),
# the kernel's ext4 at $K over the same partition.
ok_mounts() {
	D=$(img_or_die meta) || exit 1
	M=$(vd_mnt m)
	K=$TD/k
	mount_ok "$M" "$@" "$D/meta.qcow2" "$M"
	kmount "$D/fs.img" 0 $((32 * MIB)) "$K"
}

# same A B WHAT — die with the first lines that differ
same() {
	cmp -s "$1" "$2" || die "$3 differs from the kernel's: $(diff "$2" "$1" | head -n 8 | tr '\n' ' ')"
}

t_root_view() {
	need_tools
	ok_mounts
	view "$K" >"$TD/k.view"
	grep -q 'user:[0-9]*:r--' "$TD/k.view" || die "the kernel shows no ACL: the image is not what this test needs"
	grep -q 'user.colour' "$TD/k.view" || die "the kernel shows no xattr: the image is not what this test needs"
	view "$M/p1" >"$TD/m1.view"
	same "$TD/m1.view" "$TD/k.view" "root's first view"
	# Again, from whatever the kernel kept of the first walk.
	view "$M/p1" >"$TD/m2.view"
	same "$TD/m2.view" "$TD/k.view" "root's second view"
	kumount_ok "$K"
	umount_ok "$M"
}

t_user_view() {
	need_user
	need_tools
	chmod 755 "$TD"
	ok_mounts -o allow_other
	user_view "$K" >"$TD/k.user"
	# the kernel grants by ACL what the mode refuses, and the reverse
	grep -q '^pub/acl-read .* read$' "$TD/k.user" &&
		grep -q '^pub/acl-deny .* noread$' "$TD/k.user" &&
		grep -q '^private/inside .* read$' "$TD/k.user" ||
		die "the kernel's view is not what this test needs: $(tr '\n' ' ' <"$TD/k.user")"
	user_view "$M/p1" >"$TD/m1.user"
	same "$TD/m1.user" "$TD/k.user" "$VD_USER's first view"
	user_view "$M/p1" >"$TD/m2.user"
	same "$TD/m2.user" "$TD/k.user" "$VD_USER's second view"
	# root's view of the allow_other mount too
	view "$K" >"$TD/k.view"
	view "$M/p1" >"$TD/m.view"
	same "$TD/m.view" "$TD/k.view" "root's view with allow_other"
	kumount_ok "$K"
	umount_ok "$M"
}

# A name looked up in vain, then the names that exist: in the same
# folder (names one letter longer, other case, and names of the same
# length whose hash in ext's lookup table (ext-dir.c: FNV-1a) equals an
# existing name's), in another, at the top; twice, the second time from
# whatever the kernel kept.
t_negative_ro() {
	local out
	need_tools
	ok_mounts
	out=$(T python3 - "$M" "$K" "$NMANY" <<-'EOF' 2>&1
		import os, sys
		m, k, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
		def exists(p):
		    try:
		        os.lstat(p)
		        return True
		    except FileNotFoundError:
		        return False
		P, M32 = 16777619, 0xffffffff
		PINV = pow(P, -1, 1 << 32)
		def fnv(bs):
		    h = 2166136261
		    for b in bs:
		        h = ((h ^ b) * P) & M32
		    return h
		names = [b"f%07d" % i for i in range(n)]
		have = set(names)
		# name = prefix + b7 + b8 hashes to T when ((fnv(prefix) ^ b7)
		# * P) ^ b8 == T * PINV: look the top 24 bits up.
		by_top = {}
		for x in names:
		    u = (fnv(x) * PINV) & M32
		    by_top.setdefault(u >> 8, []).append((u, x))
		twins = []
		for i in range(200000):
		    pre = b"g%05d" % i
		    h6 = fnv(pre)
		    for b7 in range(1, 256):
		        v = ((h6 ^ b7) * P) & M32
		        for u, x in by_top.get(v >> 8, ()):
		            b8 = (u ^ v) & 0xff
		            cand = pre + bytes([b7, b8])
		            if b7 != 47 and b8 not in (0, 47) and cand not in have:
		                assert fnv(cand) == fnv(x) and len(cand) == len(x)
		                twins.append((cand, x))
		    if len(twins) >= 40:
		        break
		if len(twins) < 40:
		    sys.exit("found only %d hash twins" % len(twins))
		many_m, many_k = os.fsencode(m + "/p1/many/"), os.fsencode(k + "/many/")
		missing = [x + b"x" for x in names] + [b"F" + x[1:] for x in names]
		missing += [t for t, _ in twins] + [b"case", b"CASE"]
		for rnd in range(2):
		    for x in missing:
		        for top in (many_m, many_k):
		            if exists(top + x):
		                sys.exit("round %d: %r exists" % (rnd, top + x))
		    for x in names + [b"Case"] + [e for _, e in twins]:
		        if not exists(many_m + x):
		            sys.exit("round %d: many/%r hidden after failed lookups" % (rnd, x))
		    if exists(m + "/p1/pub/f0000000") or not exists(m + "/p1/pub/plain"):
		        sys.exit("pub/ is wrong")
		    if exists(m + "/p9") or not exists(m + "/p1") or not exists(m + "/p1.raw"):
		        sys.exit("the top folder is wrong")
		if sorted(os.listdir(m + "/p1/many")) != sorted(os.listdir(k + "/many")):
		    sys.exit("many/ lists differently from the kernel's")
	EOF
	) || die "$out"
	kumount_ok "$K"
	umount_ok "$M"
}

# In a writable mount (an overlay), names made through the mount after a
# failed lookup of them are there at once, and names removed are gone.
t_negative_rw() {
	local d m
	need_tools
	d=$(img_or_die meta)
	cp "$d/meta.qcow2" "$TD/base.qcow2" || die "copy failed"
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	cd "$m/p1" || die "no p1/"
	for n in new newdir sym hard moved; do
		[ ! -e "pub/$n" ] || die "pub/$n exists before it was made"
	done
	printf 'new\n' >pub/new || die "create failed"
	[ "$(cat pub/new)" = new ] || die "pub/new not seen at once"
	mkdir pub/newdir || die "mkdir failed"
	[ -d pub/newdir ] || die "pub/newdir not seen at once"
	ln -s plain pub/sym || die "symlink failed"
	[ "$(readlink pub/sym)" = plain ] && [ "$(cat pub/sym)" = plain ] || die "pub/sym not seen at once"
	ln pub/new pub/hard || die "link failed"
	[ "$(stat -c %h pub/hard)" = 2 ] || die "pub/hard: $(stat -c %h pub/hard) links"
	mv pub/plain pub/moved || die "rename failed"
	[ "$(cat pub/moved)" = plain ] || die "pub/moved not seen at once"
	[ ! -e pub/plain ] || die "pub/plain still there after the rename"
	[ "$(readlink pub/sym)" = plain ] && [ ! -e pub/sym ] || die "pub/sym still resolves"
	rm pub/new || die "unlink failed"
	[ ! -e pub/new ] || die "pub/new still there after rm"
	[ "$(cat pub/hard)" = new ] || die "pub/hard lost its data"
	cd "$TD" || exit 1
	ls "$m/p1/pub" | grep -qx newdir || die "ls does not show newdir"
	umount_ok "$m"
}

# The user who mounts (no allow_other) is not held to the guest's modes
# or ACLs: nothing of default_permissions reaches that mount.
t_mounter_unchecked() {
	local d m
	need_user
	need_tools
	[ -u "$(command -v fusermount3)" ] || skip_test "fusermount3 is not setuid root"
	as_user test -r /dev/fuse -a -w /dev/fuse ||
		skip_test "/dev/fuse is not open to $VD_USER"
	d=$(img_or_die meta)
	mkdir -p "$TD/u/mnt"
	cp "$d/meta.qcow2" "$TD/u/"
	chown -R "$VD_USER:" "$TD/u"
	chmod 755 "$TD"
	m=$TD/u/mnt
	# (a subshell: the change stays in this test)
	if ! as_user test -x "$VDMOUNT"; then
		cp "$VDMOUNT" "$TD/u/vdmount"
		chmod 755 "$TD/u/vdmount"
		VDMOUNT=$TD/u/vdmount
	fi
	VD_AS_USER=$VD_USER mount_ok "$m" "$TD/u/meta.qcow2" "$m"
	for p in pub/secret pub/acl-deny pub/acl-masked closed/inside; do
		as_user cat "$m/p1/$p" >/dev/null 2>"$TD/err" ||
			die "the mounting user cannot read $p: $(cat "$TD/err")"
	done
	vd_umount "$m" || die "unmount failed"
}

vd_test meta-root-view-equals-kernel t_root_view
vd_test meta-user-view-equals-kernel t_user_view
vd_test meta-negative-never-hides-ro t_negative_ro
vd_test meta-negative-made-at-once-rw t_negative_rw
# /dev/fuse opened the Debian way (0666) for this one test where it is
# 0600, as t-70-user.sh does, and its mode put back after.
dev_fuse_mode=
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] &&
	[ "$(( 0$(stat -c %a /dev/fuse) & 06 ))" != 6 ]; then
	dev_fuse_mode=$(stat -c %a /dev/fuse)
	chmod 0666 /dev/fuse
fi
vd_test meta-mounter-not-checked t_mounter_unchecked
[ -n "$dev_fuse_mode" ] && chmod "$dev_fuse_mode" /dev/fuse
vd_finish
