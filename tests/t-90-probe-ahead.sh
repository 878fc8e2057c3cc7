#!/bin/bash
# Discovery asks for the pages its probes will read before it probes
# (volumes/discover.c): with the host's cache cold, a VG of 200 LVs was
# 400 disk reads waited for one after another. Seen in the system calls
# of `vdtool info` on a raw GPT disk of six partitions: for every
# partition, a WILLNEED read-ahead of its first 8 KiB and of 4 KiB at
# 64 KiB comes before the first read there; and the disk itself, probed
# alone, is not read ahead. What the probes find is checked elsewhere
# (t-90-parts, t-86-lvm); here only that the read-ahead is asked for
# early and names the right host offsets.
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))

t_ahead() {
	local n
	command -v strace >/dev/null || skip_test "strace is not installed"
	# Every byte written: a hole in a raw file needs no read (core maps
	# it as zeros), so there would be nothing to ask for there.
	T head -c $((16 * MiB)) /dev/urandom >disk.raw || die "cannot write disk.raw"
	# Six partitions of 1 MiB and one of 64 KiB (too small for the
	# read-ahead at 64 KiB) at known offsets.
	sfdisk -q disk.raw <<-'EOF' || die "sfdisk failed"
		label: gpt
		start=2048, size=2048, type=linux
		start=4096, size=2048, type=linux
		start=8192, size=2048, type=linux
		start=12288, size=2048, type=linux
		start=16384, size=2048, type=linux
		start=20480, size=2048, type=linux
		start=24576, size=128, type=linux
	EOF
	# The release build: LeakSanitizer does not run under ptrace.
	[ -x "$BUILD/vdtool" ] || skip_test "$BUILD/vdtool is not built"
	T strace -f -qq -e trace=fadvise64,pread64 -o trace.log \
		"$BUILD/vdtool" info disk.raw >info.out 2>info.err ||
		die "vdtool info failed: $(head -c 300 info.err)"
	grep -q 'p7' info.out || die "vdtool info does not list p7: $(head -c 300 info.out)"
	n=$(T python3 - trace.log 2>&1 <<-'EOF'
		import re, sys
		MiB, KiB = 1 << 20, 1 << 10
		starts = [1 * MiB, 2 * MiB, 4 * MiB, 6 * MiB, 8 * MiB, 10 * MiB,
		          12 * MiB]
		# (offset, length) asked for ahead, and the line it was asked on
		ahead, reads = {}, []
		for i, line in enumerate(open(sys.argv[1])):
		    m = re.search(r"fadvise64\(\d+, (\d+), (\d+), POSIX_FADV_WILLNEED", line)
		    if m:
		        ahead.setdefault((int(m[1]), int(m[2])), i)
		        continue
		    m = re.search(r"pread64\(\d+, .*, (\d+), (\d+)\) = ", line)
		    if m:
		        reads.append((i, int(m[2]), int(m[1])))
		def first_read(lo, hi):
		    return min((i for i, off, ln in reads if lo <= off < hi),
		               default=None)
		bad = []
		for k, s in enumerate(starts):
		    want = [(s, 8 * KiB)]
		    if k < 6:
		        want.append((s + 64 * KiB, 4 * KiB))
		    elif (s + 64 * KiB, 4 * KiB) in ahead:
		        bad.append("p7 (64 KiB) read ahead at 64 KiB, past its end")
		    for off, ln in want:
		        at, r = ahead.get((off, ln)), first_read(off, off + ln)
		        if at is None:
		            bad.append("p%d: no read-ahead of %d bytes at %d" % (k + 1, ln, off))
		        elif r is not None and r < at:
		            bad.append("p%d: read at %d before its read-ahead" % (k + 1, off))
		if (0, 8 * KiB) in ahead:
		    bad.append("the disk, probed alone, was read ahead")
		if bad:
		    sys.exit("; ".join(bad[:4]))
		print(len(ahead))
	EOF
	) || die "$n"
	[ "$n" -ge 13 ] || die "only $n read-aheads"
}

vd_test discovery-reads-probe-pages-ahead t_ahead
vd_finish
