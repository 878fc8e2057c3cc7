#!/bin/bash
# Hostile partition tables and ext metadata, through the mount: each
# image starts valid (sfdisk, mkfs.ext4 -d) and has one field poked. What
# can be worked around is, with a warning on stderr at mount time; what
# cannot gives a clear error or EIO; never a crash or a hang (each command
# runs under a timeout, the daemon must still answer afterwards, and the
# ASan build reports any memory error). Where the kernel reads the same
# bytes it is the oracle.
. "$(dirname "$0")/lib.sh"

MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# mkext IMG SIZE SEED MKFS-ARGS... — an ext filesystem from a small tree.
# No metadata_csum: a poked field must be caught by its own check, not
# by the superblock or directory block checksum.
mkext() {
	local img=$1 size=$2 seed=$3
	shift 3
	rm -rf "$img.tree"
	python3 "$MKTREE" --profile small --seed "$seed" "$img.tree" || return 1
	truncate -s "$size" "$img" || return 1
	mkfs.ext4 -q -F -b 4096 -I 256 -O ^metadata_csum "$@" -d "$img.tree" "$img" || return 1
	rm -rf "$img.tree"
}

place() {
	dd if="$2" of="$1" bs=1M oflag=seek_bytes seek="$3" conv=notrunc,sparse status=none
}

# gpt_poke FILE SECTOR WHAT — edit a 512-byte-sector GPT in both its
# primary and backup copies and fix every CRC, so that only the edit is
# wrong. WHAT: "endlba N VALUE" sets entry N's (1-based) last LBA.
gpt_poke() {
	python3 - "$@" <<-'EOF'
		import struct, sys, zlib
		path, what, n, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
		ss = 512
		with open(path, "r+b") as f:
		    f.seek(0, 2)
		    last = f.tell() // ss - 1
		    for lba in (1, last):
		        f.seek(lba * ss)
		        h = bytearray(f.read(ss))
		        assert h[:8] == b"EFI PART", "no GPT header at LBA %d" % lba
		        hsize, = struct.unpack_from("<I", h, 12)
		        ents, = struct.unpack_from("<Q", h, 72)
		        count, esize = struct.unpack_from("<II", h, 80)
		        f.seek(ents * ss)
		        arr = bytearray(f.read(count * esize))
		        if what == "endlba":
		            struct.pack_into("<Q", arr, (n - 1) * esize + 40, value)
		        f.seek(ents * ss)
		        f.write(arr)
		        struct.pack_into("<I", h, 88, zlib.crc32(arr))
		        struct.pack_into("<I", h, 16, 0)
		        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hsize])))
		        f.seek(lba * ss)
		        f.write(h)
	EOF
}

# ------------------------------------------------------------ images

# GPT, 40 MiB: p1 ext4, p2 ext4. gpt.raw is good; past.raw has p2's last
# LBA far past the disk's end (CRCs fixed); hcrc.raw has a wrong primary
# header CRC; ecrc.raw a wrong primary entry-array CRC (a byte of an
# unused entry changed). Backups are intact.
gen_gpt() {
	mkext p1.img $((16 * MIB)) 61 || return 1
	mkext p2.img $((12 * MIB)) 62 || return 1
	truncate -s $((40 * MIB)) gpt.raw
	sfdisk -q gpt.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=32768, type=L, name="one"
		start=36864, size=24576, type=L, name="two"
	EOF
	sfdisk --json gpt.raw >gpt.json || return 1
	place gpt.raw p1.img $((2048 * 512)) || return 1
	place gpt.raw p2.img $((36864 * 512)) || return 1
	cp --sparse=always gpt.raw past.raw
	gpt_poke past.raw endlba 2 $((40 * MIB / 512 + 100000)) || return 1
	cp --sparse=always gpt.raw hcrc.raw
	# Header CRC32 at offset 16 of LBA 1.
	printf '\xde\xad\xbe\xef' | dd of=hcrc.raw bs=1 seek=$((512 + 16)) conv=notrunc status=none
	cp --sparse=always gpt.raw ecrc.raw
	# Entry 100 (unused) of the primary array at LBA 2.
	printf '\x01' | dd of=ecrc.raw bs=1 seek=$((1024 + 99 * 128 + 5)) conv=notrunc status=none
	rm -f p?.img
}

# MBR, 48 MiB: p1 primary, p2 extended with p5 (ext4) and p6; loop.raw
# has p6's EBR link pointing back at p5's EBR.
gen_ebr() {
	mkext p5.img $((12 * MIB)) 71 || return 1
	truncate -s $((48 * MIB)) mbr.raw
	sfdisk -q mbr.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=2048, size=8192, type=83
		start=10240, type=5
		size=24576, type=83
		size=16384, type=83
	EOF
	sfdisk --json mbr.raw >mbr.json || return 1
	local p5
	p5=$(python3 -c '
import json
t = json.load(open("mbr.json"))["partitiontable"]
print([p["start"] for p in t["partitions"] if p["node"] == "mbr.raw5"][0] * 512)')
	place mbr.raw p5.img "$p5" || return 1
	cp --sparse=always mbr.raw loop.raw
	python3 - loop.raw <<-'EOF' || return 1
		import struct, sys
		with open(sys.argv[1], "r+b") as f:
		    mbr = f.read(512)
		    ext = next(struct.unpack_from("<I", mbr, 446 + 16 * i + 8)[0]
		               for i in range(4) if mbr[446 + 16 * i + 4] in (5, 15))
		    # The first EBR (at the extended start) links to the second.
		    f.seek(ext * 512)
		    ebr1 = f.read(512)
		    rel2 = struct.unpack_from("<I", ebr1, 462 + 8)[0]
		    assert rel2, "the first EBR has no link"
		    # The second EBR's link entry: type 5, start 0 (relative to
		    # the extended partition: the first EBR again).
		    f.seek((ext + rel2) * 512 + 462)
		    f.write(struct.pack("<4xB3xII", 5, 0, 2048))
	EOF
	rm -f p5.img
}

# MBR, 4 primaries of ext4: p1 s_inodes_count one more than the groups
# hold; p2 s_blocks_per_group 0; p3 s_log_block_size 20 (1 GiB blocks);
# p4 left intact.
gen_sb() {
	local n
	truncate -s $((80 * MIB)) sb.raw
	sfdisk -q sb.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=2048, size=32768, type=83
		start=34816, size=32768, type=83
		start=67584, size=32768, type=83
		start=100352, size=32768, type=83
	EOF
	sfdisk --json sb.raw >sb.json || return 1
	for n in 1 2 3 4; do
		mkext p$n.img $((16 * MIB)) $((80 + n)) || return 1
	done
	# Superblock at byte 1024; s_inodes_count at offset 0 (le32).
	python3 - p1.img <<-'EOF' || return 1
		import struct, sys
		with open(sys.argv[1], "r+b") as f:
		    f.seek(1024)
		    n, = struct.unpack("<I", f.read(4))
		    f.seek(1024)
		    f.write(struct.pack("<I", n + 1))
	EOF
	# s_blocks_per_group, offset 32.
	printf '\0\0\0\0' | dd of=p2.img bs=1 seek=$((1024 + 32)) conv=notrunc status=none
	# s_log_block_size, offset 24.
	printf '\x14\0\0\0' | dd of=p3.img bs=1 seek=$((1024 + 24)) conv=notrunc status=none
	place sb.raw p1.img $((2048 * 512)) || return 1
	place sb.raw p2.img $((34816 * 512)) || return 1
	place sb.raw p3.img $((67584 * 512)) || return 1
	place sb.raw p4.img $((100352 * 512)) || return 1
	rm -f p?.img
}

# A whole-disk ext4 whose /modes directory block has the rec_len of its
# first entry (offset 4, le16; ext4 disk layout, "Linear Directories")
# set to 5: neither a multiple of 4 nor large enough for the entry.
gen_reclen() {
	local blk
	mkext fs.img $((24 * MIB)) 91 -O ^dir_index || return 1
	blk=$(debugfs -R "blocks /modes" fs.img 2>/dev/null | awk '{ print $1 }')
	[ -n "$blk" ] || { echo "no block for /modes"; return 1; }
	printf '\x05\x00' | dd of=fs.img bs=1 seek=$((blk * 4096 + 4)) conv=notrunc status=none
}

# ------------------------------------------------------------ checks

# alive MNT — inside a test: the daemon still runs and answers.
alive() {
	[ -n "$(vd_daemon_pids "$1")" ] || die "the vdmount daemon for $1 is gone"
	T stat "$1/disk.raw" >/dev/null 2>&1 || die "$1 no longer answers"
}

# warned WHAT — inside a test: vdmount said something on stderr.
warned() {
	[ -s "$TD/mount.err" ] || die "no warning at mount time about $1"
	echo "warning: $(head -c 300 "$TD/mount.err" | tr '\n' ' ')"
}

# parts_of JSON — lines "N START LEN EXT" (bytes; EXT is 1 for an MBR
# extended container) from sfdisk's JSON.
parts_of() {
	python3 - "$1" <<-'EOF'
		import json, re, sys
		t = json.load(open(sys.argv[1]))["partitiontable"]
		ss = t.get("sectorsize", 512)
		for p in t["partitions"]:
		    n = re.search(r"(\d+)$", p["node"]).group(1)
		    print(n, p["start"] * ss, p["size"] * ss,
		          int(p["type"] in ("5", "f", "85")))
	EOF
}

# same_parts MNT JSON DISK — inside a test: the pN.raw of MNT are those
# sfdisk lists in JSON, with DISK's bytes (an extended container may be
# shown or not, like Linux shows it as a stub).
same_parts() {
	local m=$1 n off len ext got want
	parts_of "$2" >"$TD/parts" || die "cannot read $2"
	want=$(awk '$4 == 0 { print "p" $1 ".raw" }' "$TD/parts" | sort | tr '\n' ' ')
	got=$(T ls "$m" | grep -E '^p[0-9]+\.raw$' | sort)
	for n in $(awk '$4 == 1 { print $1 }' "$TD/parts"); do
		got=$(echo "$got" | grep -vx "p$n.raw")
	done
	got=$(echo "$got" | tr '\n' ' ')
	[ "$got" = "$want" ] || die "partitions: got '$got', expected '$want' (sfdisk of the undamaged disk)"
	while read -r n off len ext; do
		[ "$ext" = 1 ] && continue
		got=$(T stat -c %s "$m/p$n.raw") || die "stat p$n.raw failed"
		[ "$got" = "$len" ] || die "p$n.raw is $got bytes, expected $len"
		T cmp -n "$len" -i "0:$off" "$m/p$n.raw" "$3" >"$TD/cmp.out" 2>&1 ||
			die "p$n.raw differs from the disk: $(cat "$TD/cmp.out")"
	done <"$TD/parts"
}

# kernel_refuses FILE OFF LEN — the kernel will not mount those bytes
# either (so the poke made a really impossible superblock).
kernel_refuses() {
	local dev
	mkdir -p "$TD/k"
	dev=$(T losetup -r -f --show -o "$2" --sizelimit "$3" "$1") || die "losetup failed"
	echo "$dev" >>"$VD_LOOPS"
	echo "$TD/k" >>"$VD_MOUNTS"
	if T mount -o ro "$dev" "$TD/k" 2>/dev/null; then
		die "the kernel mounts the poked superblock at $2: the test image is wrong"
	fi
	vd_loop_detach "$dev"
}

# ------------------------------------------------------------ tests

t_past_end() {
	local d m size got start
	need_loop
	d=$(img_or_die gpt) || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$d/past.raw" "$m"
	warned "a GPT entry past the disk's end"
	size=$(stat -c %s "$d/past.raw")
	start=$((36864 * 512))
	T test -e "$m/p2.raw" || die "p2.raw is missing; expected it clipped"
	got=$(T stat -c %s "$m/p2.raw") || die "stat p2.raw failed"
	[ "$got" -gt 0 ] && [ $((start + got)) -le "$size" ] ||
		die "p2.raw is $got bytes from $start: past the disk's end ($size)"
	T cmp -n "$got" -i "0:$start" "$m/p2.raw" "$d/past.raw" >/dev/null 2>&1 ||
		die "p2.raw's bytes are not the disk's"
	T cmp -n $((32768 * 512)) -i "0:$((2048 * 512))" "$m/p1.raw" "$d/past.raw" >/dev/null 2>&1 ||
		die "p1.raw's bytes are not the disk's"
	T ls "$m/p1" >/dev/null || die "p1/ does not list"
	alive "$m"
	umount_ok "$m"
}

# A bad primary (header CRC, or entry-array CRC) with a good backup:
# a warning, and the same partitions as the undamaged disk.
t_bad_crc() {
	local d m
	need_loop
	d=$(img_or_die gpt) || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1" "$m"
	warned "the bad primary GPT"
	grep -qi gpt "$TD/mount.err" || die "the warning does not say GPT: $(head -c 300 "$TD/mount.err")"
	same_parts "$m" "$d/gpt.json" "$d/$1"
	T ls "$m/p1" "$m/p2" >/dev/null || die "p1/ or p2/ does not list"
	alive "$m"
	umount_ok "$m"
}

t_ebr_loop() {
	local d m got
	need_loop
	d=$(img_or_die ebr) || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$d/loop.raw" "$m"
	warned "an EBR chain that loops"
	got=$(T ls "$m" | grep -E '^p([5-9]|[1-9][0-9]+)\.raw$' | sort -V | tr '\n' ' ')
	[ "$got" = "p5.raw p6.raw " ] ||
		die "logical partitions: got '$got', expected 'p5.raw p6.raw ' (the loop followed?)"
	same_parts "$m" "$d/mbr.json" "$d/loop.raw"
	T ls "$m/p5" >/dev/null || die "p5/ does not list"
	alive "$m"
	umount_ok "$m"
}

# Impossible superblock counts: pN.raw is there, pN/ is not, a warning
# names the volume; the intact p4 still shows its files.
t_superblock() {
	local d m n
	need_loop
	d=$(img_or_die sb) || exit 1
	for n in 1 2 3; do
		kernel_refuses "$d/sb.raw" $(((2048 + (n - 1) * 32768) * 512)) $((16 * MIB))
	done
	m=$(vd_mnt m)
	mount_ok "$m" "$d/sb.raw" "$m"
	warned "impossible superblocks"
	same_parts "$m" "$d/sb.json" "$d/sb.raw"
	for n in 1 2 3; do
		T test -e "$m/p$n" && die "p$n/ exists for a superblock the kernel refuses"
		grep -q "p$n\|partition $n" "$TD/mount.err" ||
			die "no warning names p$n: $(head -c 400 "$TD/mount.err" | tr '\n' ' ')"
	done
	T ls "$m/p4/files" >/dev/null || die "the intact p4/ does not list"
	alive "$m"
	umount_ok "$m"
}

# A directory block whose first entry has a bad rec_len: vdmount lists
# what the kernel lists there (the entries before the bad one: none;
# the kernel logs it and passes over the rest of the block), and everything else reads as the kernel reads it.
t_reclen() {
	local d m dev
	need_loop
	d=$(img_or_die reclen) || exit 1
	m=$(vd_mnt m)
	mount_ok "$m" "$d/fs.img" "$m"
	T test -d "$m/fs" || die "no fs/"
	T ls -A "$m/fs/modes" >ls.out 2>ls.err || die "ls of the bad directory failed: $(cat ls.err)"
	[ -s ls.out ] && die "the bad directory lists files: $(head -c 200 ls.out)"
	alive "$m"
	mkdir -p k
	dev=$(T losetup -r -f --show "$d/fs.img") || die "losetup failed"
	echo "$dev" >>"$VD_LOOPS"
	echo "$TD/k" >>"$VD_MOUNTS"
	T mount -o ro,nodev,nosuid,noexec "$dev" k || die "kernel mount failed"
	T ls -A k/modes 2>/dev/null | grep -q . &&
		die "the kernel lists files in the poked directory: the test image is wrong"
	T python3 "$TREECMP" k "$m/fs" >cmp.out 2>&1 ||
		die "the tree differs from the kernel's: $(head -n 6 cmp.out | tr '\n' '|')"
	T umount "$TD/k" || die "umount failed"
	vd_loop_detach "$dev"
	alive "$m"
	umount_ok "$m"
}

vd_test gpt-entry-past-end-clipped t_past_end
vd_test gpt-bad-header-crc-uses-backup t_bad_crc hcrc.raw
vd_test gpt-bad-entries-crc-uses-backup t_bad_crc ecrc.raw
vd_test ebr-loop-stops t_ebr_loop
vd_test superblock-impossible-counts t_superblock
vd_test dir-bad-rec-len-as-kernel t_reclen
vd_finish
