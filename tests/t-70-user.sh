#!/bin/bash
# Mounting as an ordinary user (fusermount3), and a root mount with
# -o allow_other read by an ordinary user.
. "$(dirname "$0")/lib.sh"

VD_USER=vdtest
SIZE=$((8 * 1024 * 1024 + 3584))

# as_user CMD... — run CMD as the test user, under timeout.
as_user() {
	timeout -k 5 "$VD_TIMEOUT" setpriv --reuid="$VD_USER" --regid="$VD_USER" --clear-groups "$@"
}

need_user() {
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot create or switch to user $VD_USER"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	vd_useradd "$VD_USER" || skip_test "useradd $VD_USER failed"
	[ -u "$(command -v fusermount3)" ] || skip_test "fusermount3 is not setuid root"
}

# libfuse opens /dev/fuse itself before falling back to fusermount3; with
# /dev/fuse closed to other users (mode 0600, no udev rule) no FUSE file
# system can be mounted by an ordinary user.
need_dev_fuse() {
	as_user test -r /dev/fuse -a -w /dev/fuse ||
		skip_test "/dev/fuse ($(stat -c %a /dev/fuse)) is not open to $VD_USER, so no ordinary user can mount FUSE here"
}

# The binary must be reachable by the user; copy it if it is not.
user_binary() {
	if as_user test -x "$VDMOUNT"; then
		echo "$VDMOUNT"
	else
		cp "$VDMOUNT" "$TD/u/vdmount"
		chmod 755 "$TD/u/vdmount"
		echo "$TD/u/vdmount"
	fi
}

t_user_mount() {
	local d m o p uid
	need_user
	need_dev_fuse
	d=$(img_or_die shared_chain)
	mkdir -p "$TD/u/img" "$TD/u/mnt"
	cp "$d/top.qcow2" "$d/base.qcow2" "$TD/u/img/"
	chown -R "$VD_USER:" "$TD/u"
	chmod 700 "$TD/u/img"
	m=$TD/u/mnt
	# (This test runs in a subshell: the change stays here.)
	VDMOUNT=$(user_binary)
	VD_AS_USER=$VD_USER mount_ok "$m" "$TD/u/img/top.qcow2" "$m"
	uid=$(id -u "$VD_USER")
	p=$(vd_daemon_pids "$m")
	[ -n "$p" ] || die "no daemon found"
	awk '/^Uid:/ { print $2 }' "/proc/$p/status" | grep -qx "$uid" || die "daemon does not run as $VD_USER"
	o=$(vd_oracle "$d/top.qcow2") || die "oracle failed"
	cp "$o" "$TD/u/oracle.raw"
	chown "$VD_USER:" "$TD/u/oracle.raw"
	as_user cmp "$m/disk.raw" "$TD/u/oracle.raw" >"$TD/cmp.out" 2>&1 ||
		die "cmp as $VD_USER failed: $(cat "$TD/cmp.out")"
	got=$(as_user stat -c '%a %s' "$m/disk.raw") || die "stat as user failed"
	[ "$got" = "444 $SIZE" ] || die "disk.raw is '$got' for the user"
	as_user fusermount3 -u "$m" >"$TD/fu.out" 2>&1 || die "fusermount3 -u as $VD_USER failed: $(cat "$TD/fu.out")"
	vd_is_mounted "$m" && die "still mounted after the user's fusermount3 -u"
	umount_ok "$m"
}

t_allow_other() {
	local d m o
	need_user
	d=$(img_or_die shared_chain)
	m=$(vd_mnt m)
	mount_ok "$m" -o allow_other "$d/top.qcow2" "$m"
	o=$(vd_oracle "$d/top.qcow2") || die "oracle failed"
	mkdir -p "$TD/u"
	cp "$o" "$TD/u/oracle.raw"
	chmod 644 "$TD/u/oracle.raw"
	as_user cmp "$m/disk.raw" "$TD/u/oracle.raw" >"$TD/cmp.out" 2>&1 ||
		die "cmp as $VD_USER on an allow_other mount failed: $(cat "$TD/cmp.out")"
	as_user sh -c ': >>"$1"' sh "$m/disk.raw" 2>/dev/null && die "$VD_USER could open disk.raw for writing"
	umount_ok "$m"
}

# Debian's udev rule opens /dev/fuse to everyone (0666); some machines
# (containers, this CI) leave it 0600, where no ordinary user can mount
# FUSE at all. As root, open it the Debian way for this one test and put
# the old mode back after it (the test runs in a subshell, so a failure
# inside still comes back here).
dev_fuse_mode=
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] &&
	[ "$(( 0$(stat -c %a /dev/fuse) & 06 ))" != 6 ]; then
	dev_fuse_mode=$(stat -c %a /dev/fuse)
	chmod 0666 /dev/fuse
fi
vd_test unprivileged-user-mount t_user_mount
[ -n "$dev_fuse_mode" ] && chmod "$dev_fuse_mode" /dev/fuse
vd_test allow-other-read-by-user t_allow_other
vd_finish
