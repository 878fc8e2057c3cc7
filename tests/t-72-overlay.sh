#!/bin/bash
# Writing: vdmount --overlay=CHILD (a qcow2 child made over any base) and
# --rw (an existing qcow2 top layer), through disk.raw and pN.raw.
# Oracles not ours: qemu-img check (no errors, no leaks after a clean
# unmount; no corruption after SIGKILL), qemu-img convert -O raw of the
# child against the expected disk (the base with the same writes made by
# qemu-io, or tests/wmodel.py's model), the base's sha256 unchanged.
. "$(dirname "$0")/lib.sh"

# wmodel.py is called once per workload; still, the real interpreter.
PATH=/usr/bin:$PATH
WMODEL=$VD_LIB_DIR/wmodel.py
SIZE=$((24 * 1024 * 1024 + 4096))
MIB=$((1024 * 1024))

gen_bases() {
	seed_raw seed.raw "$SIZE" || return 1
	qemu-img convert -O qcow2 seed.raw base.qcow2 || return 1
	qemu-img convert -O vmdk -o subformat=monolithicSparse seed.raw \
		base.vmdk || return 1
	qemu-img convert -c -O qcow2 -o cluster_size=4096 seed.raw \
		comp.qcow2 || return 1
	# A chain: raw seed under a qcow2 with its own writes.
	qemu-img create -q -f qcow2 -o cluster_size=16384 -b base.qcow2 \
		-F qcow2 mid.qcow2 || return 1
	scatter qcow2 mid.qcow2 "$SIZE" 5
}

# base_copy NAME... — the named bases of gen_bases, copied into the test's
# folder (the child is made beside them; the cache stays untouched).
base_copy() {
	local d f
	d=$(img_or_die bases)
	for f in "$@"; do
		cp --sparse=always "$d/$f" "$TD/$f" || die "cannot copy $f"
	done
}

# check_clean CHILD — qemu-img check finds no error and no leak.
check_clean() {
	local out
	out=$(T qemu-img check "$1" 2>&1) || die "qemu-img check $1: $out"
	echo "$out" | grep -q "No errors were found" ||
		die "qemu-img check $1: $out"
}

# check_no_corruption CHILD — after a crash: leaks allowed (exit 3).
check_no_corruption() {
	local out rc
	out=$(T qemu-img check "$1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] || [ $rc -eq 3 ] || die "qemu-img check $1 (exit $rc): $out"
	echo "$out" | grep -qi "corrupt" && die "qemu-img check $1: $out"
	return 0
}

# same_raw CHILD EXPECTED_RAW — qemu-img's view of CHILD is EXPECTED_RAW.
same_raw() {
	T qemu-img convert -O raw "$1" "$TD/.conv.raw" || die "convert $1 failed"
	cmp "$TD/.conv.raw" "$2" >/dev/null || die "$1 differs from $2: $(cmp "$TD/.conv.raw" "$2" 2>&1 | head -1)"
	rm -f "$TD/.conv.raw"
}

# pwrite FILE BYTE OFF LEN — LEN bytes BYTE at OFF of FILE, in place.
pwrite_pat() {
	T python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
b, off, n = int(sys.argv[2], 0), int(sys.argv[3]), int(sys.argv[4])
if os.pwrite(fd, bytes([b]) * n, off) != n:
    sys.exit("short write")
os.fsync(fd)' "$@" || die "write to $1 at $3 failed"
}

# The writes of t_overlay (pattern offset length): unaligned, across
# clusters and L2 tables' ranges, the first and the last byte.
WRITES="0x11 0 1
0x22 4095 2
0x33 65000 200000
0x44 $((8 * MIB - 7)) 70001
0x55 $((SIZE - 1)) 1
0x66 $((3 * MIB)) 1048576
0x77 12345 100"

t_overlay() {
	local m sum i exp p o l
	base_copy base.qcow2
	sum=$(sha256sum <"$TD/base.qcow2")
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	[ -w "$m/disk.raw" ] || die "disk.raw is not writable"
	T qemu-img convert -O raw "$TD/base.qcow2" "$TD/exp.raw" || die "convert failed"
	while read -r p o l; do
		pwrite_pat "$m/disk.raw" "$p" "$o" "$l"
		T qemu-io -f raw -c "write -P $p $o $l" "$TD/exp.raw" >/dev/null ||
			die "qemu-io failed"
	done <<<"$WRITES"
	cmp_files "$m/disk.raw" "$TD/exp.raw" || die "disk.raw differs from the expected disk"
	# The size is the disk's.
	T truncate -s 1M "$m/disk.raw" 2>"$TD/trunc.err" && die "truncate succeeded"
	grep -q "Operation not permitted" "$TD/trunc.err" || die "truncate: $(cat "$TD/trunc.err")"
	umount_ok "$m"
	check_clean "$TD/child.qcow2"
	same_raw "$TD/child.qcow2" "$TD/exp.raw"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$sum" ] || die "the base changed"
	info=$(T qemu-img info "$TD/child.qcow2")
	echo "$info" | grep -q "^backing file: base.qcow2" || die "backing name: $info"
	echo "$info" | grep -q "^backing file format: qcow2" || die "backing format: $info"
	echo "$info" | grep -q "compat: 1.1" || die "not version 3: $info"

	# Again: the existing child is used, its writes are there.
	mount_ok "$m" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	cmp_files "$m/disk.raw" "$TD/exp.raw" || die "remount: disk.raw differs"
	pwrite_pat "$m/disk.raw" 0x99 $((5 * MIB)) 5000
	umount_ok "$m"
	T qemu-io -f raw -c "write -P 0x99 $((5 * MIB)) 5000" "$TD/exp.raw" >/dev/null
	# --rw on the child itself.
	mount_ok "$m" --rw "$TD/child.qcow2" "$m"
	cmp_files "$m/disk.raw" "$TD/exp.raw" || die "--rw: disk.raw differs"
	pwrite_pat "$m/disk.raw" 0xaa $((SIZE - 70000)) 70000
	umount_ok "$m"
	T qemu-io -f raw -c "write -P 0xaa $((SIZE - 70000)) 70000" "$TD/exp.raw" >/dev/null
	check_clean "$TD/child.qcow2"
	same_raw "$TD/child.qcow2" "$TD/exp.raw"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$sum" ] || die "the base changed"
}

t_refusals() {
	local m
	base_copy base.qcow2 base.vmdk
	m=$(vd_mnt m)
	# Read-only by default: writes fail.
	mount_ok "$m" "$TD/base.qcow2" "$m"
	T python3 -c 'import os, sys; os.open(sys.argv[1], os.O_WRONLY)' \
		"$m/disk.raw" 2>"$TD/w.err" && die "a read-only mount opened for writing"
	grep -q "Read-only file system" "$TD/w.err" || die "$(cat "$TD/w.err")"
	umount_ok "$m"
	mount_fails "$m" "base.vmdk" "cannot be written" "--overlay" -- \
		--rw "$TD/base.vmdk" "$m"
	# An existing child that does not lead to the image.
	T qemu-img create -q -f qcow2 "$TD/other.qcow2" 1M || die "create failed"
	mount_fails "$m" "other.qcow2" "does not lead to" -- \
		--overlay="$TD/other.qcow2" "$TD/base.qcow2" "$m"
	# A base outside the child's folder, unless allowed.
	mkdir -p "$TD/sub"
	mount_fails "$m" "--backing-dir=" -- \
		--overlay="$TD/sub/c.qcow2" "$TD/base.qcow2" "$m"
	[ -e "$TD/sub/c.qcow2" ] && die "a refused overlay was created"
	mount_ok "$m" --backing-dir="$TD" --overlay="$TD/sub/c.qcow2" \
		"$TD/base.vmdk" "$m"
	pwrite_pat "$m/disk.raw" 0x12 100000 5
	umount_ok "$m"
	check_clean "$TD/sub/c.qcow2"
	T qemu-img info "$TD/sub/c.qcow2" | grep -q "^backing file: $TD/base.vmdk" ||
		die "an absolute backing name was expected"
	T qemu-img info "$TD/sub/c.qcow2" | grep -q "^backing file format: vmdk" ||
		die "backing format vmdk expected"
	# An unknown incompatible feature (bit 20): refused, read-only too.
	T qemu-img create -q -f qcow2 "$TD/feat.qcow2" 1M || die "create failed"
	poke "$TD/feat.qcow2" 77 10
	mount_fails "$m" "unsupported incompatible feature" -- \
		--rw "$TD/feat.qcow2" "$m"
}

# model NAME CHILD MOUNT_ARGS... — the model workload on disk.raw of a
# writable mount, judged by qemu-img afterwards.
model() {
	local name=$1 child=$2 m sums
	shift 2
	m=$(vd_mnt "$name")
	sums=$(sha256sum "$TD"/*.qcow2 "$TD"/*.vmdk 2>/dev/null | grep -v " $child\$")
	mount_ok "$m" "$@" "$m"
	T cp --sparse=always "$m/disk.raw" "$TD/$name.model" || die "cannot read disk.raw"
	T python3 "$WMODEL" run --threads 8 --ops "${OPS:-60}" --seed "${#name}" \
		"$m/disk.raw" "$TD/$name.model" || die "the model workload failed"
	umount_ok "$m"
	check_clean "$child"
	same_raw "$child" "$TD/$name.model"
	[ "$(sha256sum "$TD"/*.qcow2 "$TD"/*.vmdk 2>/dev/null | grep -v " $child\$")" = "$sums" ] ||
		die "a base changed"
	rm -f "$TD/$name.model"
}

t_model_qcow2() {
	base_copy base.qcow2
	model q "$TD/c.qcow2" --overlay="$TD/c.qcow2" "$TD/base.qcow2"
}

t_model_vmdk() {
	base_copy base.vmdk
	model v "$TD/c.qcow2" --overlay="$TD/c.qcow2" "$TD/base.vmdk"
}

t_model_chain() {
	base_copy base.qcow2 mid.qcow2
	model ch "$TD/c.qcow2" --overlay="$TD/c.qcow2" "$TD/mid.qcow2"
}

# The compressed image itself, written: compressed clusters rewritten.
t_model_compressed() {
	base_copy comp.qcow2
	model z "$TD/comp.qcow2" --rw "$TD/comp.qcow2"
}

# A child with extended L2 entries (subclusters) and small clusters
# (L2 tables every 1 MiB), made by qemu-img, written with --rw.
t_model_extl2() {
	base_copy base.qcow2
	T qemu-img create -q -f qcow2 -o cluster_size=16384,extended_l2=on \
		-b base.qcow2 -F qcow2 "$TD/x.qcow2" || die "create failed"
	model x "$TD/x.qcow2" --rw "$TD/x.qcow2"
}

# pN.raw writes land in the disk at the partition's start (guest ext
# files are writable too: tests/t-73-ext-write.sh).
t_partition() {
	local m
	T truncate -s $((40 * MIB)) "$TD/d.raw"
	echo 'start=2048, size=32768, type=83' | T sfdisk -q "$TD/d.raw" >/dev/null ||
		die "sfdisk failed"
	T mkfs.ext4 -q -F -E offset=$MIB "$TD/d.raw" 16M >/dev/null 2>&1 || die "mkfs failed"
	T qemu-img convert -O qcow2 "$TD/d.raw" "$TD/d.qcow2" || die "convert failed"
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/dc.qcow2" "$TD/d.qcow2" "$m"
	[ -d "$m/p1" ] || die "no p1/"
	T python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"x" * 4096, 20 << 20)' "$m/p1.raw" 2>"$TD/p.err" &&
		die "a write past the end of p1.raw succeeded"
	grep -q "No space left" "$TD/p.err" || die "past the end: $(cat "$TD/p.err")"
	pwrite_pat "$m/p1.raw" 0x5e 3000000 10000
	umount_ok "$m"
	check_clean "$TD/dc.qcow2"
	T qemu-io -f raw -c "write -P 0x5e $((MIB + 3000000)) 10000" "$TD/d.raw" >/dev/null
	same_raw "$TD/dc.qcow2" "$TD/d.raw"
}

# SIGKILL under writers that fsync: qemu-img check finds no corruption,
# and every write fsynced before the kill is in the child.
t_crash() {
	local m rounds=${1:-3} r pid wpid
	base_copy base.qcow2
	m=$(vd_mnt m)
	for r in $(seq "$rounds"); do
		mount_ok "$m" --overlay="$TD/c.qcow2" "$TD/base.qcow2" "$m"
		pid=$(vd_daemon_pids "$m")
		[ -n "$pid" ] || die "no daemon"
		T python3 "$WMODEL" crash --threads 4 --seed "$r" "$m/disk.raw" \
			"$TD/log" &
		wpid=$!
		sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
		kill -KILL "$pid"
		wait "$wpid"
		vd_umount "$m" 2>/dev/null
		check_no_corruption "$TD/c.qcow2"
		T qemu-img convert -O raw "$TD/c.qcow2" "$TD/c.raw" || die "convert failed"
		T python3 "$WMODEL" verify "$TD/c.raw" "$TD/log" || die "round $r: fsynced writes lost"
		rm -f "$TD/c.raw"
	done
	[ "$(wc -l <"$TD/log")" -gt 0 ] || die "no write was fsynced in $rounds rounds"
}

# SIGTERM: the daemon unmounts, syncs and leaves the child clean, with
# what was written (not fsynced) in it.
t_sigterm() {
	local m pid i
	base_copy base.qcow2
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/c.qcow2" "$TD/base.qcow2" "$m"
	pid=$(vd_daemon_pids "$m")
	T dd if=/dev/zero bs=4096 count=300 status=none | tr '\0' 'T' |
		T dd of="$m/disk.raw" bs=4096 seek=100 conv=notrunc status=none ||
		die "dd failed"
	kill -TERM "$pid"
	for i in $(seq 600); do
		vd_alive "$pid" || break
		sleep 0.1
	done
	vd_alive "$pid" && die "the daemon outlived SIGTERM by 60 s"
	vd_umount "$m" 2>/dev/null
	check_clean "$TD/c.qcow2"
	T qemu-img convert -O raw "$TD/c.qcow2" "$TD/c.raw" || die "convert failed"
	[ "$(dd if="$TD/c.raw" bs=4096 skip=100 count=300 status=none | tr -d T | wc -c)" = 0 ] ||
		die "the writes before SIGTERM are not all in the child"
}

# The child on a small tmpfs: writes that do not fit fail with ENOSPC,
# the daemon stays up, the child stays valid.
t_enospc() {
	local m s
	[ "$(id -u)" = 0 ] || skip_test "not root: tmpfs needs root"
	base_copy base.qcow2
	s=$TD/small
	mkdir -p "$s"
	echo "$s" >>"$VD_MOUNTS"
	T mount -t tmpfs -o size=2m tmpfs "$s" || die "cannot mount a tmpfs"
	m=$(vd_mnt m)
	mount_ok "$m" --backing-dir="$TD" --overlay="$s/c.qcow2" "$TD/base.qcow2" "$m"
	T dd if=/dev/urandom of="$m/disk.raw" bs=64k count=64 conv=notrunc,fsync \
		2>"$TD/dd.err" && die "4 MiB fitted in a 2 MiB tmpfs"
	grep -q "No space left on device" "$TD/dd.err" || die "dd: $(cat "$TD/dd.err")"
	T head -c 4096 "$m/disk.raw" >/dev/null || die "the mount died"
	pwrite_pat "$m/disk.raw" 0x42 0 512
	umount_ok "$m"
	check_no_corruption "$s/c.qcow2"
	T qemu-io -f qcow2 -c "read -P 0x42 0 512" "$s/c.qcow2" | grep -q "read 512" ||
		die "the write after ENOSPC is not there"
	T umount "$s" || die "umount $s failed"
}

# A new child is synced at its first write (or its unmount), not while
# mounting: one mounted and unmounted with no write is whole, and an
# empty CHILD (what a power loss before that may leave) is made again.
t_fresh() {
	local m
	base_copy base.qcow2
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/c.qcow2" "$TD/base.qcow2" "$m"
	umount_ok "$m"
	check_clean "$TD/c.qcow2"
	T qemu-img info "$TD/c.qcow2" | grep -q "^backing file: base.qcow2" ||
		die "no backing file after a mount with no write"
	: >"$TD/e.qcow2"
	mount_ok "$m" --overlay="$TD/e.qcow2" "$TD/base.qcow2" "$m"
	pwrite_pat "$m/disk.raw" 0x3c 70000 5000
	umount_ok "$m"
	check_clean "$TD/e.qcow2"
	T qemu-io -f qcow2 -c "read -P 0x3c 70000 5000" "$TD/e.qcow2" |
		grep -q "read 5000" || die "the write is not in the child made again"
}

# Sequential writes: in new clusters (1 MiB O_DIRECT, as the bench's
# wseq), again in place, and in runs of 1,000,000 bytes that no cluster
# boundary aligns. The write-behind (qcow2-write.c, qw_behind) has
# started the child's disk writes before any fsync or close (a close of
# disk.raw syncs): most of the 16 MiB sits in extents with a place on
# the host disk, not in delayed allocations ("unknown_loc,delalloc" in
# filefrag -v), where the host's ext4 shows that.
t_sequential() {
	local m n
	base_copy base.qcow2
	head -c $((16 * MIB)) /dev/urandom >"$TD/src" || die "no source"
	T qemu-img convert -O raw "$TD/base.qcow2" "$TD/exp.raw" || die "convert failed"
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	n=$(T python3 - "$TD/src" "$m/disk.raw" "$TD/child.qcow2" <<'EOF'
import mmap, os, subprocess, sys
buf = mmap.mmap(-1, 1 << 20)
src = open(sys.argv[1], "rb")
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_DIRECT)
for i in range(16):
    src.readinto(buf)
    if os.pwrite(fd, buf, (i + 1) << 20) != 1 << 20:
        sys.exit("short write")
# (a child that closed fd would sync the child file: the flush of a
# close; filefrag keeps it open until after it has looked)
out = subprocess.run(["filefrag", "-k", "-v", sys.argv[3]], pass_fds=(fd,),
                     capture_output=True, text=True).stdout
n = 0
for line in out.splitlines():
    f = line.split(":")
    if len(f) > 4 and f[0].strip().isdigit() and "delalloc" not in line:
        n += int(f[3]) * 1024
print(n)
os.close(fd)
EOF
) || die "the 1 MiB writes failed"
	if [ "$(stat -f -c %T "$TD")" = ext2/ext3 ]; then
		[ "${n:-0}" -ge $((8 * MIB)) ] ||
			die "only ${n:-0} bytes of the child on the disk after 16 MiB written"
	fi
	T dd if="$TD/src" of="$m/disk.raw" bs=1M count=8 skip=3 seek=2 oflag=direct \
		conv=notrunc,fsync status=none || die "dd in place failed"
	T dd if="$TD/src" of="$m/disk.raw" bs=1000000 count=5 seek=19 \
		conv=notrunc,fsync status=none || die "unaligned dd failed"
	umount_ok "$m"
	T dd if="$TD/src" of="$TD/exp.raw" bs=1M count=16 seek=1 conv=notrunc status=none &&
		T dd if="$TD/src" of="$TD/exp.raw" bs=1M count=8 skip=3 seek=2 conv=notrunc status=none &&
		T dd if="$TD/src" of="$TD/exp.raw" bs=1000000 count=5 seek=19 conv=notrunc status=none ||
		die "dd of the expected disk failed"
	check_clean "$TD/child.qcow2"
	same_raw "$TD/child.qcow2" "$TD/exp.raw"
}

# Corrupt children: refused with --rw (one line), read-only still mounts.
hostile() {
	local what=$1 m
	T qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$TD/h.qcow2" || die "create"
	T qemu-io -f qcow2 -c "write -P 0x21 0 128k" "$TD/h.qcow2" >/dev/null || die "qemu-io"
	T python3 - "$TD/h.qcow2" "$what" <<'EOF' || die "poke failed"
import struct, sys
p, what = sys.argv[1], sys.argv[2]
with open(p, "r+b") as f:
    h = f.read(104)
    rt = struct.unpack(">Q", h[48:56])[0]
    l1 = struct.unpack(">Q", h[40:48])[0]
    f.seek(l1)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2)
    d0 = struct.unpack(">Q", f.read(8))[0]
    if what == "rb-past-end":
        f.seek(rt)
        f.write(struct.pack(">Q", 1 << 40))
    elif what == "overlap":  # two guest clusters, one host cluster
        f.seek(l2 + 8)
        f.write(struct.pack(">Q", d0))
    elif what == "l2-is-data":  # guest cluster 2 stored in the L2 table
        f.seek(l2 + 16)
        f.write(struct.pack(">Q", l2 | 1 << 63))
EOF
	m=$(vd_mnt m)
	mount_fails "$m" "h.qcow2" -- --rw "$TD/h.qcow2" "$m"
	mount_ok "$m" "$TD/h.qcow2" "$m"
	T head -c 4096 "$m/disk.raw" >/dev/null || die "read-only read failed"
	umount_ok "$m"
}

t_hostile() {
	base_copy base.qcow2
	hostile rb-past-end
	hostile overlap
	hostile l2-is-data
}

vd_test overlay t_overlay
vd_test refusals t_refusals
vd_test model-qcow2 t_model_qcow2
vd_test model-vmdk t_model_vmdk
vd_test model-chain t_model_chain
vd_test model-compressed t_model_compressed
vd_test model-extl2 t_model_extl2
vd_test partition t_partition
vd_test sequential t_sequential
if [ "${VD_FULL:-}" = 1 ]; then
	vd_test crash-50 t_crash 50
else
	vd_test crash t_crash 3
fi
vd_test sigterm t_sigterm
vd_test fresh t_fresh
vd_test enospc t_enospc
vd_test hostile t_hostile
vd_finish
