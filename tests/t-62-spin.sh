#!/bin/bash
# How the daemon receives requests (fuse/spin.c): one worker at a time
# reads /dev/fuse, serves metadata requests itself and hands file data
# to the others; with VDMOUNT_SPIN_US it watches for the next request
# before it sleeps. Behaviour only, never speed:
#   - an idle mount does no work, even watching (VDMOUNT_SPIN_US=50):
#     after a burst of back-to-back requests the daemon's CPU time over
#     2 s at rest stays near zero (a spinning daemon would use all of it);
#   - many readers at once, of names, attributes, xattrs and bytes, all
#     get what the source tree holds, multi-threaded and with -s;
#   - SIGTERM ends a foreground daemon, idle or just after a burst, and
#     unmounts;
#   - VDMOUNT_RECEIVE=libfuse (libfuse's own receive, the default) still
#     works.
# Taking turns is not the default (VDMOUNT_RECEIVE=turns, set here).
. "$(dirname "$0")/lib.sh"
export VDMOUNT_RECEIVE=turns

# The source tree and an ext4 image made from it by mkfs.ext4 -d (the
# filesystem fills the image: the mount shows it at fs/).
gen_tree() {
	local d=$1 i j
	mkdir -p src/tree
	for i in $(seq 0 19); do
		mkdir -p "src/tree/d$i"
		for j in $(seq 0 49); do
			printf 'file %d/%d\n' "$i" "$j" >"src/tree/d$i/f$j"
		done
		head -c $((100000 + i * 7919)) /dev/urandom >"src/tree/d$i/big"
		ln -s "f0" "src/tree/d$i/link"
	done
	chmod 0640 src/tree/d3/f1
	setfattr -n user.tag -v hello src/tree/d5/f5 2>/dev/null || true
	truncate -s 64M "$d/ext4.raw"
	mkfs.ext4 -q -F -d src "$d/ext4.raw" || return 1
}

# ticks PID: user + system CPU time of PID, in clock ticks
ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# burst DIR [N]: N (5,000) back-to-back requests from one caller (an
# xattr probe is never cached by the kernel: each is a round trip), then
# a listing.
burst() {
	T python3 -c 'import os, sys
p = sys.argv[1]
for i in range(int(sys.argv[2])):
    try:
        os.getxattr(p, "security.selinux", follow_symlinks=False)
    except OSError:
        pass' "$1/tree/d0/f0" "${2:-5000}" || die "the xattr probes failed"
	T ls -lR "$1" >/dev/null || die "ls -lR failed"
}

# listing DIR: names, types, modes, file sizes and link targets under
# DIR/tree (not folder sizes: the image's blocks are 1 KiB)
listing() {
	(cd "$1" && T find tree \( -type d -printf '%y %p %m\n' \) -o \
		-printf '%y %p %m %s %l\n' | sort)
}

t_idle() {
	local img m pid t1 t2
	img=$(img_or_die tree)
	m=$(vd_mnt m)
	export VDMOUNT_SPIN_US=50
	mount_ok "$m" "$img/ext4.raw" "$m"
	pid=$(vd_daemon_pids "$m")
	[ -n "$pid" ] || die "no daemon for $m"
	burst "$m/fs"
	sleep 0.5
	t1=$(ticks "$pid")
	sleep 2
	t2=$(ticks "$pid")
	echo "daemon CPU over 2 s at rest: $((t2 - t1)) ticks of $(getconf CLK_TCK)/s"
	# 10 ticks: 5 % of one CPU; spinning through the rest would be 200.
	[ $((t2 - t1)) -le 10 ] ||
		die "the idle daemon used $((t2 - t1)) ticks of CPU in 2 s"
	umount_ok "$m"
}

# t_readers [VDMOUNT ARGS...]: 4 readers at once: listings, attributes,
# xattr probes and every file's bytes, against the source tree.
t_readers() {
	local img m ref i pids=() rc=0
	img=$(img_or_die tree)
	m=$(vd_mnt m)
	mount_ok "$m" "$@" "$img/ext4.raw" "$m"
	ref=$(listing "$img/src")
	for i in $(seq 4); do
		(
			for _ in 1 2; do
				[ "$(listing "$m/fs")" = "$ref" ] || exit 1
				T diff -r "$img/src/tree" "$m/fs/tree" >/dev/null || exit 2
				burst "$m/fs" 2000 2>/dev/null
			done
		) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=$?
	done
	[ "$rc" = 0 ] || die "a reader saw something else than the source tree (exit $rc)"
	# The xattr, if the source tree's filesystem could hold it.
	if getfattr -n user.tag "$img/src/tree/d5/f5" >/dev/null 2>&1; then
		T getfattr --only-values -n user.tag "$m/fs/tree/d5/f5" >xattr.out 2>xattr.err ||
			die "getfattr user.tag: $(cat xattr.err)"
		[ "$(cat xattr.out)" = hello ] || die "user.tag is '$(cat xattr.out)', not hello"
	fi
	umount_ok "$m"
}

# t_sigterm [VDMOUNT ARGS...]: a foreground daemon ends on SIGTERM, idle
# and right after a burst (when a worker may be watching the device).
t_sigterm() {
	local img m pid i rc
	img=$(img_or_die tree)
	m=$(vd_mnt m)
	for i in idle hot; do
		echo "$m" >>"$VD_MOUNTS"
		"$VDMOUNT" -f "$@" "$img/ext4.raw" "$m" </dev/null >"$i.out" 2>"$i.err" &
		pid=$!
		for _ in $(seq 1200); do
			vd_is_mounted "$m" && break
			kill -0 "$pid" 2>/dev/null || die "vdmount -f $* exited: $(head -c 300 "$i.err")"
			sleep 0.05
		done
		vd_is_mounted "$m" || die "vdmount -f $* did not mount in 60 s"
		if [ "$i" = hot ]; then
			burst "$m/fs"
		else
			sleep 0.3
		fi
		kill -TERM "$pid"
		for _ in $(seq 1200); do
			vd_alive "$pid" || break
			sleep 0.05
		done
		vd_alive "$pid" && die "$i: the daemon is still running 60 s after SIGTERM"
		wait "$pid"
		rc=$?
		[ "$rc" = 0 ] || die "$i: exit status $rc after SIGTERM: $(head -c 300 "$i.err")"
		vd_is_mounted "$m" && die "$i: $m is still mounted after the daemon ended"
		grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
		mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	done
	return 0
}

t_off() {
	export VDMOUNT_RECEIVE=libfuse
	t_readers
}

t_watch() {
	export VDMOUNT_SPIN_US=50
	"$@"
}

command -v mkfs.ext4 >/dev/null || { skip spin "mkfs.ext4 is not installed"; exit 0; }
vd_test spin-idle t_idle
vd_test spin-readers t_readers
vd_test spin-readers-single t_readers -s
vd_test spin-sigterm t_sigterm
vd_test spin-sigterm-single t_sigterm -s
vd_test spin-watch-readers t_watch t_readers
vd_test spin-watch-sigterm-single t_watch t_sigterm -s
vd_test spin-off t_off
vd_finish
