#!/bin/bash
# The host reads a mount starts ahead of a reader (fuse/tree.c): for a
# reader that goes on front to back, and not for one whose reads only
# happen to land near each other. Measured as what of the image file is
# in the host's page cache (fincore), starting from none of it.
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))

# resident FILE: bytes of FILE in the page cache
resident() {
	T fincore -b -n -o RES "$1" | tr -d ' '
}

# drop FILE: its clean pages out of the page cache
drop() {
	T python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1" || die "fadvise failed"
}

# reads FILE OFF:LEN...: O_DIRECT preads of FILE, one descriptor, in order
reads() {
	T python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
for a in sys.argv[2:]:
    off, ln = (int(x) for x in a.split(":"))
    if len(os.pread(fd, ln, off)) != ln:
        sys.exit("short read at %d" % off)' "$@" || die "reads of $1 failed"
}

t_ahead() {
	local m img base got i
	command -v fincore >/dev/null || skip_test "fincore is not installed"
	img=$TD/ahead.raw
	T head -c $((64 * MIB)) /dev/urandom >"$img" || die "cannot write $img"
	T sync "$img" || die "sync failed"
	m=$(vd_mnt m)
	mount_ok "$m" "$img" "$m"
	drop "$img"
	base=$(resident "$img")
	[ "$base" -lt $((MIB / 2)) ] ||
		skip_test "the page cache of $img cannot be emptied here ($base bytes stay)"

	# Two 4 KiB reads 600 KiB apart: near enough to count as going on
	# from the last, but one such read is not yet a sequential reader.
	reads "$m/disk.raw" $((8 * MIB)):4096 $((8 * MIB + 600 * 1024)):4096
	sleep 0.5
	got=$(($(resident "$img") - base))
	[ "$got" -lt "$MIB" ] ||
		die "two reads near each other started $got bytes of host reads"

	# Four 512 KiB reads front to back: the host reads of the next
	# 16 MiB start (asked for, not waited on: poll for them, for up to
	# 60 s; how fast they come does not matter).
	reads "$m/disk.raw" $((32 * MIB)):524288 $((32 * MIB + 524288)):524288 \
		$((33 * MIB)):524288 $((33 * MIB + 524288)):524288
	for i in $(seq 600); do
		got=$(($(resident "$img") - base))
		[ "$got" -lt $((17 * MIB)) ] || break
		sleep 0.1
	done
	[ "$got" -ge $((17 * MIB)) ] ||
		die "a sequential reader of 2 MiB got only $got bytes read for it"
	umount_ok "$m"
}

vd_test host-readahead-only-for-sequential-readers t_ahead
vd_finish
