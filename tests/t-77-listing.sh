#!/bin/bash
# Folder listings (issue 28): folders are listed by (inode, position)
# alone, with no open, and the kernel keeps listings; what ls, find, cp
# and rsync see must not change. Every kind of folder — the top folder,
# pN/ (a filesystem's root), guest folders of ext4, XFS and btrfs (a
# btrfs subvolume too), a folder of 100,000 entries — lists the names
# and types the kernel's own mount of the same bytes lists, each once,
# with d_ino equal to st_ino; telldir/seekdir/rewinddir give back what
# was read at each position, on a mount that has listed the folder and
# on a fresh one that has not; and in a writable mount a folder lists
# what was made, removed and renamed in it, also to a handle opened
# before the change.
#
# Oracles: the kernel's ext4, XFS and btrfs (read-only loop mounts of the
# same filesystems); glibc's readdir/telldir/seekdir (tests/dircheck.py);
# in the writable mount, the names the test itself made and removed.
. "$(dirname "$0")/lib.sh"

MIB=1048576
DIRCHECK=$VD_LIB_DIR/dircheck.py
NMANY=100000

# ------------------------------------------------------------ builders
# (run inside vd_img: plain return codes, no die)

# rw_mount FILE MNT — a read-write loop mount for building (lib.sh's,
# recorded so that the cleanup unmounts it if the builder fails halfway).
rw_mount() { vd_mount_rw "$@"; }

rw_unmount() { vd_umount_rw "$1" && rmdir "$1"; }

# src_tree DIR — nested folders, files, symlinks, an empty folder, wide/
# of 3,000 names (8 to 255 bytes, some UTF-8) and mid/ of 300: folders
# of one block and of many on every filesystem.
src_tree() {
	python3 - "$1" <<-'EOF'
		import os, random, sys
		r, rng = sys.argv[1], random.Random(77)
		os.makedirs(r + "/a/b/c/d")
		os.makedirs(r + "/empty")
		for p in ("top", "a/one", "a/b/two", "a/b/c/d/leaf"):
		    with open(os.path.join(r, p), "wb") as f:
		        f.write(rng.randbytes(rng.randrange(0, 5000)))
		os.symlink("a/b", r + "/link-b")
		os.symlink("../nowhere", r + "/a/dangling")
		for d, n in (("wide", 3000), ("mid", 300)):
		    os.mkdir(r + "/" + d)
		    for i in range(n):
		        k = rng.randrange(8)
		        if k == 0:
		            name = "L%05d" % i + "l" * 249
		        elif k == 1:
		            name = "\u00fcn\u00efc\u00f6d\u00e9-%d-\u540d\u524d" % i
		        else:
		            name = "n%05d-%s" % (i, "x" * rng.randrange(0, 40))
		        p = os.path.join(r, d, name)
		        if i % 50 == 7:
		            os.mkdir(p)
		        elif i % 50 == 9:
		            os.symlink("target-%d" % i, p)
		        else:
		            with open(p, "wb") as f:
		                f.write(b"x" * (i % 3))
	EOF
}

# many DIR — NMANY names in DIR (htree-indexed by the kernel): hard links
# to 20 files (ext4 allows 65,000 links to one inode), so the filesystem
# needs no inode per name.
many() {
	python3 - "$1" "$NMANY" <<-'EOF'
		import os, random, sys
		d, n = sys.argv[1], int(sys.argv[2])
		rng = random.Random(28)
		os.mkdir(d)
		base = []
		for i in range(20):
		    p = os.path.join(d, "base%02d" % i)
		    with open(p, "wb") as f:
		        f.write(b"b" * i)
		    base.append(p)
		for i in range(n - 20):
		    os.link(base[i % 20], os.path.join(d, "f%06d-%s" % (i, "y" * rng.randrange(0, 33))))
	EOF
}

# GPT: p1 ext4 (the tree and many/), p2 XFS (the tree), p3 btrfs (the
# tree and a subvolume sv/ holding mid/), each made by its mkfs and
# filled through the kernel's read-write loop mount; as qcow2, with the
# filesystems' images kept for the kernel's read-only mounts.
gen_lists() {
	local rc=0
	src_tree src || return 1
	truncate -s $((64 * MIB)) ext.img || return 1
	mkfs.ext4 -q -F -b 4096 -E root_owner=0:0 ext.img || return 1
	rw_mount ext.img ext.mnt || return 1
	{ cp -a src/. ext.mnt/ && many ext.mnt/many; } || rc=1
	rw_unmount ext.mnt || return 1
	[ $rc = 0 ] && e2fsck -fn ext.img >ext.fsck 2>&1 || { cat ext.fsck; return 1; }
	truncate -s $((64 * MIB)) xfs.img || return 1
	TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f xfs.img || return 1
	rw_mount xfs.img xfs.mnt || return 1
	cp -a src/. xfs.mnt/ || rc=1
	rw_unmount xfs.mnt || return 1
	[ $rc = 0 ] || return 1
	truncate -s $((128 * MIB)) bt.img || return 1
	mkfs.btrfs -q -f bt.img || return 1
	rw_mount bt.img bt.mnt || return 1
	{ cp -a src/. bt.mnt/ && btrfs -q subvolume create bt.mnt/sv &&
		cp -a src/mid bt.mnt/sv/; } || rc=1
	rw_unmount bt.mnt || return 1
	[ $rc = 0 ] || return 1
	truncate -s $((260 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		start=2048, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=133120, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=264192, size=262144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	dd if=ext.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none &&
		dd if=xfs.img of=disk.raw bs=1M seek=65 conv=notrunc,sparse status=none &&
		dd if=bt.img of=disk.raw bs=1M seek=129 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O qcow2 disk.raw lists.qcow2 || return 1
	rm -rf disk.raw src
}

# ------------------------------------------------------------ tests

# mounts [ARGS...] — inside a test: vdmount of the image at $M (ARGS
# before the image), the kernel's mounts at $TD/k.ext, k.xfs, k.bt.
mounts() {
	D=$(img_or_die lists) || exit 1
	M=$(vd_mnt m)
	mount_ok "$M" "$@" "$D/lists.qcow2" "$M"
	kmount "$D/ext.img" 0 $((64 * MIB)) "$TD/k.ext"
	kmount "$D/xfs.img" 0 $((64 * MIB)) "$TD/k.xfs"
	kmount "$D/bt.img" 0 $((128 * MIB)) "$TD/k.bt"
}

dircheck() {
	T python3 "$DIRCHECK" "$@"
}

# The top folder's names, and each filesystem's folders against the
# kernel's; twice, the second time from what the kernel kept.
t_same() {
	local out r
	need_loop
	mounts
	for r in 1 2; do
		out=$(T python3 -c '
import os, sys
got = sorted(os.listdir(sys.argv[1]))
want = sorted(["disk.raw"] + ["p%d%s" % (i, s) for i in (1, 2, 3) for s in ("", ".raw")])
if got != want:
    sys.exit("top folder: %r, expected %r" % (got, want))' "$M" 2>&1) || die "round $r: $out"
		out=$(dircheck same "$TD/k.ext" "$M/p1" 2>&1) || die "round $r, ext4: $(echo "$out" | head -n 5 | tr '\n' '|')"
		out=$(dircheck same "$TD/k.xfs" "$M/p2" 2>&1) || die "round $r, XFS: $(echo "$out" | head -n 5 | tr '\n' '|')"
		out=$(dircheck same "$TD/k.bt" "$M/p3" 2>&1) || die "round $r, btrfs: $(echo "$out" | head -n 5 | tr '\n' '|')"
	done
	umount_ok "$M"
}

# Positions: on the kernel's mounts (the checker's own check), on
# vdmount after listing, then on a fresh mount before listing.
t_seek() {
	local out dirs
	need_loop
	mounts
	out=$(dircheck seek "$TD/k.ext/many" "$TD/k.ext/wide" "$TD/k.xfs/wide" \
		"$TD/k.bt/wide" "$TD/k.bt/sv/mid" 2>&1) ||
		die "on the kernel's mounts: $(echo "$out" | head -n 5 | tr '\n' '|')"
	dirs=("$M" "$M/p1" "$M/p1/many" "$M/p1/wide" "$M/p1/a/b" "$M/p1/empty"
		"$M/p2" "$M/p2/wide" "$M/p2/mid" "$M/p3" "$M/p3/wide" "$M/p3/sv"
		"$M/p3/sv/mid")
	out=$(dircheck seek --save "$TD/pos.json" "${dirs[@]}" 2>&1) ||
		die "$(echo "$out" | head -n 5 | tr '\n' '|')"
	umount_ok "$M"
	mount_ok "$M" "$D/lists.qcow2" "$M"
	out=$(dircheck seek --load "$TD/pos.json" "${dirs[@]}" 2>&1) ||
		die "fresh mount: $(echo "$out" | head -n 5 | tr '\n' '|')"
	umount_ok "$M"
}

# A writable mount: folders list what was made, removed and renamed,
# at once, to new handles and to one opened before (after rewinddir;
# while it reads on, it lists no name that never was and ends); the top
# folder does not change; a fresh read-only mount of the child lists
# the same.
t_rw() {
	local out m
	need_loop
	D=$(img_or_die lists) || exit 1
	cp "$D/lists.qcow2" "$TD/base.qcow2" || die "copy failed"
	m=$(vd_mnt m)
	mount_ok "$m" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$m"
	out=$(T python3 - "$DIRCHECK" "$m" "$TD/model.json" <<-'EOF' 2>&1
		import importlib.util, json, os, sys
		spec = importlib.util.spec_from_file_location("dircheck", sys.argv[1])
		dc = importlib.util.module_from_spec(spec)
		spec.loader.exec_module(dc)
		m, model_out = sys.argv[2], sys.argv[3]
		top = sorted(os.listdir(m))
		w, mid = m + "/p1/wide", m + "/p1/mid"
		model = {w: set(os.listdir(w)), mid: set(os.listdir(mid))}
		old = set(model[w])
		def check(what):
		    for d, want in model.items():
		        got = os.listdir(d)
		        if len(got) != len(set(got)) or set(got) != want:
		            sys.exit("%s: %s lists %d names (%r...), expected %d; "
		                     "missing %r, extra %r" % (what, d, len(got), sorted(got)[:3],
		                     len(want), sorted(want - set(got))[:3],
		                     sorted(set(got) - want)[:3]))
		check("before")
		h = dc.Dir(w)
		first = [h.read()[0] for _ in range(100)]
		victims = sorted(old)[::97][:25]
		for i in range(30):
		    n = "new-%02d-%s" % (i, "z" * i)
		    with open(os.path.join(w, n), "w") as f:
		        f.write(n)
		    model[w].add(n)
		check("after creating")
		os.mkdir(w + "/newdir")
		model[w].add("newdir")
		for n in victims[:15]:
		    p = os.path.join(w, n)
		    (os.rmdir if os.path.isdir(p) and not os.path.islink(p) else os.unlink)(p)
		    model[w].discard(n)
		check("after removing")
		for n in victims[15:20]:
		    os.rename(os.path.join(w, n), os.path.join(w, n + ".moved"))
		    model[w].discard(n)
		    model[w].add(n + ".moved")
		for n in victims[20:25]:
		    os.rename(os.path.join(w, n), os.path.join(mid, n))
		    model[w].discard(n)
		    model[mid].add(n)
		check("after renaming")
		# The handle opened before: reads on to an end, naming only
		# names that were there at some time.
		rest = []
		while True:
		    e = h.read()
		    if e is None:
		        break
		    rest.append(os.fsdecode(e[0]))
		    if len(rest) > 10 * len(old):
		        sys.exit("the old handle does not end")
		ever = old | model[w] | {".", ".."}
		stray = [n for n in rest if n not in ever]
		if stray:
		    sys.exit("the old handle lists names that never were: %r" % stray[:5])
		h.rewind()
		again = [os.fsdecode(n) for _, (n, _, _) in h.listing()[0]]
		h.close()
		if sorted(again) != sorted(model[w] | {".", ".."}):
		    sys.exit("the old handle after rewinddir: %d names, expected %d"
		             % (len(again), len(model[w]) + 2))
		if sorted(os.listdir(m)) != top:
		    sys.exit("the top folder changed: %r" % sorted(os.listdir(m)))
		json.dump({k[len(m):]: sorted(v) for k, v in model.items()}, open(model_out, "w"))
	EOF
	) || die "$out"
	umount_ok "$m"
	mount_ok "$m" "$TD/child.qcow2" "$m"
	out=$(T python3 -c '
import json, os, sys
m, model = sys.argv[1], json.load(open(sys.argv[2]))
for d, want in model.items():
    got = sorted(os.listdir(m + d))
    if got != want:
        sys.exit("remounted: %s lists %d names, expected %d" % (d, len(got), len(want)))' \
		"$m" "$TD/model.json" 2>&1) || die "$out"
	umount_ok "$m"
}

vd_test listing-equals-kernel t_same
vd_test listing-seekdir-telldir t_seek
vd_test listing-writable-changes t_rw
vd_finish
