# tests/hostile/build.sh — the base images of the hostile corpus.
#
# Sourced by tests/t-99-hostile.sh (after tests/lib.sh). Each builder
# gen_hb_NAME DIR is run once per test run by vd_img in its own folder
# DIR, which it fills with:
#   img/        the files of the image set (a case gets a copy of img/ and
#               pokes its copy; a case's image folder is that copy)
#   oracle.raw  what the whole virtual disk holds, made by a reader we did
#               not write (qemu-img convert -O raw), or the raw disk itself
#               before any poke
#   vars        NAME=VALUE lines for the manifests: image= (the default
#               file given to vdmount) and offsets found by real tools
#               (debugfs, fatvol.py's BPB reading, sfdisk --json)
#   tree/       for filesystems: the files the tool copied in (the oracle
#               of a guest file)
# Every image is made by a real tool (qemu-img, sfdisk, mkfs.ext4 -d,
# mkfs.vfat + mcopy, tar, tests/mkvhd.py for the VHD differencing disks
# qemu-img cannot write); only the cases' pokes are ours.

HB_SIZE=$((4 * 1024 * 1024))
HB_MIB=1048576

hb_oracle() {
	qemu-img convert -O raw "img/$1" oracle.raw
}

# A qcow2 v3 of 4 KiB clusters (so one L2 table covers 2 MiB and the
# 4 MiB disk needs two), from seeded data.
gen_hb_qcow2() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw img/disk.qcow2 || return 1
	rm -f seed.raw
	hb_oracle disk.qcow2 || return 1
	echo image=disk.qcow2 >vars
}

# The same with an internal snapshot, then more writes: a snapshot table.
gen_hb_qcow2snap() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw img/disk.qcow2 || return 1
	rm -f seed.raw
	qemu-img snapshot -c snap1 img/disk.qcow2 || return 1
	scatter qcow2 img/disk.qcow2 "$HB_SIZE" 5 || return 1
	hb_oracle disk.qcow2 || return 1
	echo image=disk.qcow2 >vars
}

# top.qcow2 over base.qcow2 (backing name "base.qcow2", format extension).
gen_hb_qcow2chain() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw img/base.qcow2 || return 1
	rm -f seed.raw
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.qcow2 -F qcow2 img/top.qcow2 || return 1
	scatter qcow2 img/top.qcow2 "$HB_SIZE" 7 || return 1
	hb_oracle top.qcow2 || return 1
	echo image=top.qcow2 >vars
}

# Compressed clusters, zlib and zstd (64 KiB clusters).
hb_qcow2z() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -c -O qcow2 -o compression_type="$1" seed.raw img/disk.qcow2 || return 1
	rm -f seed.raw
	hb_oracle disk.qcow2 || return 1
	echo image=disk.qcow2 >vars
}
gen_hb_qcow2zlib() { hb_qcow2z zlib; }
gen_hb_qcow2zstd() { hb_qcow2z zstd; }

# A chain of 257 qcow2 files: one deeper than VD_MAX_CHAIN (256).
gen_hb_deep() {
	local i
	mkdir img
	qemu-img create -q -f qcow2 img/d0.qcow2 1M || return 1
	for i in $(seq 1 256); do
		qemu-img create -q -f qcow2 -u -b "d$((i - 1)).qcow2" -F qcow2 "img/d$i.qcow2" 1M || return 1
	done
	echo image=d256.qcow2 >vars
}

# VMDK: monolithicSparse (hosted sparse extent with embedded descriptor),
# streamOptimized, monolithicFlat (descriptor file + flat extent) and
# twoGbMaxExtentSparse (descriptor file + sparse extent).
hb_vmdk() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vmdk -o subformat="$1" seed.raw img/disk.vmdk || return 1
	rm -f seed.raw
	hb_oracle disk.vmdk || return 1
	echo image=disk.vmdk >vars
}
gen_hb_vmdk() { hb_vmdk monolithicSparse; }
gen_hb_vmdkstream() { hb_vmdk streamOptimized; }
gen_hb_vmdkflat() { hb_vmdk monolithicFlat; }
gen_hb_vmdksplit() { hb_vmdk twoGbMaxExtentSparse; }

# hb_vhd_fixed FILE — a fixed time stamp (footer offset 24) and unique id
# (68) in both footers, checksums recomputed: the checksums the cases
# quote repeat from run to run.
hb_vhd_fixed() {
	python3 - "$1" <<-'EOF' || return 1
		import os, sys
		p = sys.argv[1]
		n = os.path.getsize(p)
		with open(p, "r+b") as f:
		    for at in (0, n - 512):
		        f.seek(at + 24)
		        f.write(b"\x20\x00\x00\x00")
		        f.seek(at + 68)
		        f.write(bytes(range(16)))
	EOF
	python3 "$VD_LIB_DIR/mkvhd.py" fix "$1"
}

# VHD dynamic (qemu-img), 2 MiB blocks.
gen_hb_vhd() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vpc -o subformat=dynamic seed.raw img/disk.vhd || return 1
	rm -f seed.raw
	hb_vhd_fixed img/disk.vhd || return 1
	hb_oracle disk.vhd || return 1
	{
		echo image=disk.vhd
		echo "mkvhd=$VD_LIB_DIR/mkvhd.py"
	} >vars
	# qemu rounds the size up to its CHS geometry: the oracle is the size
	# the footer says.
	echo "vsize=$(stat -c %s oracle.raw)" >>vars
}

# VHD differencing child.vhd over the dynamic parent.vhd (tests/mkvhd.py;
# qemu-img cannot write one); its W2ru locator names "parent.vhd". The
# oracle is the parent's bytes with the child's writes applied.
gen_hb_vhddiff() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vpc -o subformat=dynamic seed.raw img/parent.vhd || return 1
	rm -f seed.raw
	python3 "$VD_LIB_DIR/mkvhd.py" diff img/parent.vhd img/child.vhd \
		--write 0:4096:0x5a --write 2097152:65536:0xa5 || return 1
	qemu-img convert -O raw img/parent.vhd oracle.raw || return 1
	printf '\x5a%.0s' $(seq 4096) | dd of=oracle.raw bs=1 seek=0 conv=notrunc status=none
	head -c 65536 /dev/zero | tr '\0' '\245' |
		dd of=oracle.raw bs=4096 seek=512 conv=notrunc status=none
	{
		echo image=child.vhd
		echo "mkvhd=$VD_LIB_DIR/mkvhd.py"
	} >vars
}

# VHDX: qemu-img's dynamic image of 1 MiB blocks (log at 1 MiB, BAT at
# 2 MiB, metadata at 3 MiB, blocks from 8 MiB), every block present.
gen_hb_vhdx() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vhdx -o block_size=1M seed.raw img/disk.vhdx || return 1
	rm -f seed.raw
	hb_oracle disk.vhdx || return 1
	{
		echo image=disk.vhdx
		echo "mkvhdx=$VD_LIB_DIR/mkvhdx.py"
	} >vars
}

# child.vhdx (tests/mkvhdx.py: log at 1 MiB, metadata at 2 MiB, BAT at 3
# MiB, block 0 partially present, block 2 fully, block 3 ZERO, sector
# bitmap of chunk 0 last) over parent.vhdx (qemu-img); loopa.vhdx and
# loopb.vhdx name each other as parents.
gen_hb_vhdxdiff() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vhdx -o block_size=1M seed.raw img/parent.vhdx || return 1
	rm -f seed.raw
	qemu-img convert -O raw img/parent.vhdx parent.raw || return 1
	python3 "$VD_LIB_DIR/mkvhdx.py" diff img/parent.vhdx img/child.vhdx \
		--write 0:4096:0x5a --write 2097152:1048576:0xa5 --zero 3145728:1048576 \
		--parent-raw parent.raw --expect oracle.raw || return 1
	python3 "$VD_LIB_DIR/mkvhdx.py" diff img/parent.vhdx img/loopa.vhdx \
		--write 0:4096:0x11 --relative loopb.vhdx || return 1
	python3 "$VD_LIB_DIR/mkvhdx.py" diff img/parent.vhdx img/loopb.vhdx \
		--write 0:4096:0x22 --relative loopa.vhdx || return 1
	rm -f parent.raw
	{
		echo image=child.vhdx
		echo "mkvhdx=$VD_LIB_DIR/mkvhdx.py"
	} >vars
}

# A qemu-img VHDX (1 MiB blocks 0 and 2 present) whose changes are in its
# log only (tests/mkvhdx.py log, one entry at the log's start): writes to
# blocks 0 and 1 (new, past the end of the file), zeros in block 2. The
# oracle is qemu's reading after its own replay (qemu-img check -r all).
gen_hb_vhdxlog() {
	mkdir img
	qemu-img create -q -f vhdx -o block_size=1M img/disk.vhdx "$HB_SIZE" || return 1
	qio vhdx img/disk.vhdx "write -P 0x31 0 1048576" "write -P 0x32 2097152 1048576" || return 1
	python3 "$VD_LIB_DIR/mkvhdx.py" log img/disk.vhdx --write 4096:8192:0x41 \
		--write 1052672:4096:0x42 --zero 2101248:8192 --per-entry 100 || return 1
	cp img/disk.vhdx q.vhdx && qemu-img check -q -r all q.vhdx >/dev/null 2>&1
	qemu-img convert -O raw q.vhdx oracle.raw || return 1
	rm -f q.vhdx
	{
		echo image=disk.vhdx
		echo "mkvhdx=$VD_LIB_DIR/mkvhdx.py"
	} >vars
}

# An OVA (GNU tar, ustar headers): app.ovf then disk.qcow2.
gen_hb_ova() {
	mkdir img src
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O qcow2 seed.raw src/disk.qcow2 || return 1
	rm -f seed.raw
	cat >src/app.ovf <<-EOF
		<?xml version="1.0" encoding="UTF-8"?>
		<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
		    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
		  <References>
		    <File ovf:href="disk.qcow2" ovf:id="file1"/>
		  </References>
		  <DiskSection>
		    <Info>Virtual disk information</Info>
		    <Disk ovf:capacity="$HB_SIZE" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
		  </DiskSection>
		  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
		</Envelope>
	EOF
	# Fixed owner, mode and times: the header checksums the cases quote
	# repeat from run to run.
	touch -d @1000000000 src/app.ovf src/disk.qcow2
	tar -C src --format=ustar --owner=0 --group=0 --numeric-owner --mode=0644 \
		-cf img/app.ova app.ovf disk.qcow2 || return 1
	qemu-img convert -O raw src/disk.qcow2 oracle.raw || return 1
	cp src/app.ovf img/app.ovf.orig
	rm -rf src
	echo image=app.ova >vars
	echo "ovfsize=$(stat -c %s img/app.ovf.orig)" >>vars
}

# MBR, 16 MiB: p1 primary, p2 extended holding p5 and p6 (sfdisk).
gen_hb_mbr() {
	mkdir img
	truncate -s $((16 * HB_MIB)) img/disk.raw
	sfdisk -q img/disk.raw <<-EOF || return 1
		label: dos
		unit: sectors
		start=2048, size=4096, type=83
		start=6144, type=5
		size=4096, type=83
		size=4096, type=83
	EOF
	seed_into img/disk.raw || return 1
	cp img/disk.raw oracle.raw
	# The EBRs: the first at the extended partition's start, the second
	# where the first one's link entry (offset 462) points.
	python3 - img/disk.raw >vars <<-'EOF' || return 1
		import struct, sys
		d = open(sys.argv[1], "rb").read()
		ext = struct.unpack_from("<I", d, 446 + 16 + 8)[0]
		rel2 = struct.unpack_from("<I", d, ext * 512 + 462 + 8)[0]
		print("image=disk.raw")
		print("ebr1=%d" % (ext * 512))
		print("ebr2=%d" % ((ext + rel2) * 512))
	EOF
}

# seed_into DISK — some data in every partition's bytes (and between),
# inside the file's size,
# written after the table (sfdisk does not touch data).
seed_into() {
	local f=$1 i size
	size=$(stat -c %s "$f")
	for i in 1 3 5 7 9 11 13 15; do
		[ $((i * HB_MIB + 4096 * i + 64)) -le "$size" ] || break
		printf 'vdmount hostile %d ' "$i" | head -c 64 |
			dd of="$f" bs=1 seek=$((i * HB_MIB + 4096 * i)) conv=notrunc status=none
	done
	dd if=/dev/urandom of="$f" bs=4096 seek=$((2 * 256 + 3)) count=16 conv=notrunc status=none
}

# GPT, 8 MiB, 512-byte sectors: two partitions with names (sfdisk), with
# fixed GUIDs, so that the CRCs the messages quote are the same each run.
gen_hb_gpt() {
	mkdir img
	truncate -s $((8 * HB_MIB)) img/disk.raw
	sfdisk -q img/disk.raw <<-EOF || return 1
		label: gpt
		label-id: 5E1F2D4C-1B2A-4C3D-9E8F-0123456789AB
		unit: sectors
		start=2048, size=4096, type=L, name="first", uuid=11111111-2222-4333-8444-555555555555
		start=6144, size=4096, type=L, name="second", uuid=66666666-7777-4888-9999-AAAAAAAAAAAA
	EOF
	seed_into img/disk.raw || return 1
	cp img/disk.raw oracle.raw
	{
		echo image=disk.raw
		echo "last=$((8 * HB_MIB / 512 - 1))"
	} >vars
}

# hb_tree DIR — the guest files of the filesystem bases.
hb_tree() {
	mkdir -p "$1/dir/sub"
	printf 'hello from the hostile corpus\n' >"$1/hello.txt"
	head -c 300000 /dev/urandom >"$1/big.bin"
	yes 'inner text' | head -c 20000 >"$1/dir/inner.txt"
	printf 'deep\n' >"$1/dir/sub/deep.txt"
}

# hb_fat_entry PATH NAME — NAME_ent= (byte offset of PATH's directory
# entry) and NAME_clus= (its first cluster), as fatvol.py reads them.
hb_fat_entry() {
	python3 "$VD_LIB_DIR/fatvol.py" entry img/fat.img "$1" |
		sed "s/^off=\([0-9]*\) clus=\([0-9]*\) .*/$2_ent=\1\n$2_clus=\2/"
}

# hb_fat_volume FATBITS MIB SECTORS_PER_CLUSTER: img/fat.img, a
# whole-disk FAT volume of hb_tree made by mkfs.vfat + mcopy and checked
# by fsck.fat, its oracle.raw, and the first lines of vars (image,
# geometry). A fixed volume id (-i), as the bytes a poked BPB reads from
# there get quoted.
hb_fat_volume() {
	local geom
	mkdir img
	hb_tree tree
	truncate -s $(($2 * HB_MIB)) img/fat.img
	mkfs.vfat -F "$1" -s "$3" -i 1234abcd -n HOSTILE img/fat.img >/dev/null || return 1
	(cd tree && MTOOLS_SKIP_CHECK=1 mcopy -s -m -i ../img/fat.img -- * ::) || return 1
	fsck.fat -n img/fat.img >/dev/null || return 1
	cp img/fat.img oracle.raw
	geom=$(python3 "$VD_LIB_DIR/fatvol.py" geom img/fat.img) || return 1
	{
		echo image=fat.img
		echo "$geom"
		echo "fatvol=$VD_LIB_DIR/fatvol.py"
	} >vars
}

# FAT16, 8 MiB, whole-disk: fs/ in the mount.
gen_hb_fat() {
	hb_fat_volume 16 8 2 || return 1
	{
		hb_fat_entry big.bin big
		hb_fat_entry hello.txt hello
		hb_fat_entry dir dir
		hb_fat_entry dir/sub sub
	} >>vars
}

# FAT32, 40 MiB, whole-disk.
gen_hb_fat32() {
	hb_fat_volume 32 40 1 || return 1
	{
		hb_fat_entry big.bin big
		hb_fat_entry dir dir
	} >>vars
}

# ext4, 16 MiB, whole-disk (mkfs.ext4 -d), no metadata_csum (a poked field
# must be caught by its own check), no dir_index (linear directories).
# Offsets found by debugfs.
gen_hb_ext() {
	local ino
	mkdir img
	hb_tree tree
	ln -s hello.txt tree/fast.lnk
	ln -s "$(printf 'dir/%.0s' $(seq 30))target-of-a-slow-symlink" tree/slow.lnk
	truncate -s $((16 * HB_MIB)) img/ext.img
	mkfs.ext4 -q -F -b 4096 -I 256 -O ^metadata_csum,^dir_index -d tree img/ext.img || return 1
	cp img/ext.img oracle.raw
	{
		echo image=ext.img
		# byte offset of an inode: debugfs imap prints its block and
		# offset in the block.
		for ino in big.bin dir fast.lnk slow.lnk; do
			set -- $(debugfs -R "imap /$ino" img/ext.img 2>/dev/null |
				sed -n 's/.*located at block \([0-9]*\), offset \(0x[0-9a-f]*\).*/\1 \2/p')
			[ $# = 2 ] || return 1
			echo "ino_${ino%%.*}=$(($1 * 4096 + $2))"
		done
		echo "blk_dir=$(($(debugfs -R 'blocks /dir' img/ext.img 2>/dev/null | awk '{ print $1 }') * 4096))"
		echo "blk_slow=$(($(debugfs -R 'blocks /slow.lnk' img/ext.img 2>/dev/null | awk '{ print $1 }') * 4096))"
	} >vars
	grep -q '^ino_big=[1-9]' vars && grep -q '^blk_dir=[1-9]' vars || return 1
}

# VDI normal (qemu-img), 1 MiB blocks, all four allocated in order.
gen_hb_vdi() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vdi seed.raw img/disk.vdi || return 1
	rm -f seed.raw
	hb_oracle disk.vdi || return 1
	echo image=disk.vdi >vars
}

# VDI differencing child.vdi over parent.vdi (tests/mkvdi.py; no tool
# here writes one), with fixed UUIDs so that messages repeat: parent
# uuid 11..., modify 22...; child uuid 33..., modify 44.... The oracle is
# the bytes the builder applied.
gen_hb_vdidiff() {
	local m=$VD_LIB_DIR/mkvdi.py
	mkdir img
	seed_raw oracle.raw "$HB_SIZE"
	python3 "$m" base oracle.raw img/parent.vdi || return 1
	python3 "$m" diff img/parent.vdi img/child.vdi --cur oracle.raw \
		--write 0:4096:0x5a --write 2097152:65536:0xa5 --zero 3145728:1 || return 1
	python3 "$m" set img/parent.vdi uuid 11111111111111111111111111111111 &&
		python3 "$m" set img/parent.vdi modify 22222222222222222222222222222222 &&
		python3 "$m" set img/child.vdi uuid 33333333333333333333333333333333 &&
		python3 "$m" set img/child.vdi modify 44444444444444444444444444444444 &&
		python3 "$m" set img/child.vdi link 11111111111111111111111111111111 &&
		python3 "$m" set img/child.vdi parent-modify 22222222222222222222222222222222 ||
		return 1
	echo image=child.vdi >vars
}

# VMDK seSparse child.vmdk (extent child-sesparse.vmdk, tests/mksesparse.py)
# over a monolithicSparse parent.vmdk (qemu-img); grains from index 5000.
# The oracle is the bytes the builder applied.
gen_hb_sesparse() {
	mkdir img
	seed_raw seed.raw "$HB_SIZE"
	qemu-img convert -O vmdk seed.raw img/parent.vmdk || return 1
	qemu-img convert -O raw img/parent.vmdk oracle.raw || return 1
	rm -f seed.raw
	python3 "$VD_LIB_DIR/mksesparse.py" img/child.vmdk --size "$HB_SIZE" \
		--cur oracle.raw --parent img/parent.vmdk --write 0:8192:0x5a \
		--write 1048576:65536:0xa5 --zero 2097152:4096 --grain-base 5000 || return 1
	echo image=child.vmdk >vars
}

# XFS v5 (CRCs), 32 MiB, whole-disk: mkfs.xfs, filled through the
# kernel's read-write loop mount (no tool writes XFS files otherwise).
# Cases that must get past the CRCs to reach a deeper check poke with
# xfs_db -x, which recomputes them. vars: ino_NAME (byte offset of
# NAME's inode, from xfs_db's inode number and the superblock's
# geometry), blk_many (byte offset of many/'s first directory block),
# dblocks, agblocks.
gen_hb_xfs() {
	local m=$PWD/m rc ino
	mkdir img tree
	hb_tree tree
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)
for first in (0, 1):
    for i in range(first, 300, 2):
        os.pwrite(fd, b"%08d" % i * 512, i * 4096)
    os.fsync(fd)' tree/frag || return 1
	truncate -s $((32 * HB_MIB)) img/xfs.img
	TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f img/xfs.img || return 1
	mkdir -p "$m"
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o loop img/xfs.img "$m" || return 1
	# dir/ lists inner.txt first (shortform keeps creation order).
	mkdir "$m/dir" && cp tree/dir/inner.txt "$m/dir/" && mkdir "$m/dir/sub" &&
		cp tree/dir/sub/deep.txt "$m/dir/sub/" && cp tree/hello.txt tree/big.bin "$m/" &&
		python3 -c '
import os, sys
src = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY)
for first in (0, 1):
    for i in range(first, 300, 2):
        os.pwrite(fd, src[i * 4096:(i + 1) * 4096], i * 4096)
    os.fsync(fd)' tree/frag "$m/frag" &&
		mkdir "$m/many" && for i in $(seq 400); do : >"$m/many/entry-$i"; done &&
		ln -s hello.txt "$m/fast.lnk" && setfattr -n user.color -v blue "$m/hello.txt"
	rc=$?
	timeout -k 5 60 umount "$m" || return 1
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	[ $rc -eq 0 ] || return 1
	cp img/xfs.img oracle.raw
	{
		echo image=xfs.img
		for f in hello.txt big.bin frag dir; do
			ino=$(xfs_db -r -c "path /$f" -c inode img/xfs.img | sed -n 's/^current inode number is //p')
			[ -n "$ino" ] || return 1
			python3 - img/xfs.img "$ino" "${f%%.*}" <<-'EOF'
				import struct, sys
				sb = open(sys.argv[1], "rb").read(512)
				bs, agblocks = struct.unpack(">I", sb[4:8])[0], struct.unpack(">I", sb[84:88])[0]
				isize, agblklog, inopblog = struct.unpack(">H", sb[104:106])[0], sb[124], sb[123]
				ino = int(sys.argv[2])
				agno = ino >> (agblklog + inopblog)
				agbno = (ino >> inopblog) & ((1 << agblklog) - 1)
				print("ino_%s=%d" % (sys.argv[3], (agno * agblocks + agbno) * bs +
				                     (ino & ((1 << inopblog) - 1)) * isize))
			EOF
		done
		xfs_db -r -c 'path /many' -c 'print u3.bmx[0]' img/xfs.img |
			sed -n 's/^0:\[0,\([0-9]*\),.*/blk_many=\1/p'
		xfs_db -r -c 'sb 0' -c 'print dblocks agblocks' img/xfs.img | sed 's/ = /=/'
	} >vars
	# many/'s block: a filesystem block number in AG 0 (4 KiB blocks).
	sed -i 's/^blk_many=\([0-9]*\)$/echo blk_many=$((\1 * 4096))/e' vars
	grep -q '^ino_hello=[1-9]' vars && grep -q '^blk_many=[1-9]' vars &&
		grep -q '^agblocks=[1-9]' vars || return 1
}

# btrfs, 128 MiB, whole-disk: mkfs.btrfs (single metadata and data, so a
# poked tree block has no second copy; DUP for the "btrfsdup" base),
# filled through the kernel's read-write loop mount: hb_tree, many/ (400
# entries: the fs tree is a node over leaves), z/zlib.txt (zlib
# extents), link. vars (tests/btrfsfix.py, from btrfs-progs' dump):
# fsroot, leaf0, leafn, chunkroot, zext (byte offsets), nodesize,
# btrfsfix (the script that recomputes a block's crc32c after a poke).
hb_btrfs() {
	local m=$PWD/m rc
	mkdir img tree
	hb_tree tree
	truncate -s $((128 * HB_MIB)) img/btrfs.img
	mkfs.btrfs -q -f -m "$1" -d single img/btrfs.img >/dev/null 2>&1 || return 1
	mkdir -p "$m"
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o loop img/btrfs.img "$m" || return 1
	cp -r tree/. "$m/" && mkdir "$m/many" "$m/z" &&
		btrfs property set "$m/z" compression zlib &&
		for i in $(seq 400); do : >"$m/many/entry-$i"; done &&
		yes 'zlib text' | head -c 200000 >"$m/z/zlib.txt" && cp "$m/z/zlib.txt" tree/zlib.txt &&
		ln -s hello.txt "$m/link"
	rc=$?
	timeout -k 5 60 umount "$m" || return 1
	grep -vxF -- "$m" "$VD_MOUNTS" >"$VD_MOUNTS.new"
	mv "$VD_MOUNTS.new" "$VD_MOUNTS"
	[ $rc -eq 0 ] || return 1
	btrfs check --readonly img/btrfs.img >check.log 2>&1 || return 1
	cp img/btrfs.img oracle.raw
	{
		echo image=btrfs.img
		echo "btrfsfix=$VD_LIB_DIR/btrfsfix.py"
		python3 "$VD_LIB_DIR/btrfsfix.py" vars img/btrfs.img
	} >vars
	grep -q "^zext=[1-9]" vars
}
gen_hb_btrfs() { hb_btrfs single; }
gen_hb_btrfsdup() { hb_btrfs dup; }

# NTFS: mkntfs (4 KiB clusters, 1 KiB MFT records), filled through
# ntfs-3g's read-write mount with hb_tree and a folder big enough for an
# index allocation. vars (from the boot sector and MFT records, found by
# the inode numbers ntfs-3g gives): mft= (byte offset of $MFT), rec_NAME=
# (of big.bin's, dir's, bigdir's record), dp_big= (of big.bin's $DATA
# mapping pairs), ia_bigdir= (of bigdir's first index block).
gen_hb_ntfs() {
	local i
	mkdir img m
	hb_tree tree
	truncate -s $((16 * HB_MIB)) img/ntfs.img
	mkntfs -Q -F -q -c 4096 -L hostile img/ntfs.img >/dev/null 2>&1 || return 1
	echo "$PWD/m" >>"$VD_MOUNTS"
	timeout -k 5 60 ntfs-3g img/ntfs.img m || return 1
	cp -r tree/. m/ && mkdir m/bigdir &&
		for i in $(seq 150); do : >"m/bigdir/an-entry-with-a-long-name-$i"; done
	{
		echo image=ntfs.img
		for i in big.bin dir bigdir; do
			echo "ino_${i%%.*}=$(stat -c %i "m/$i")"
		done
	} >vars.ino
	timeout -k 5 60 umount m || return 1
	cp img/ntfs.img oracle.raw
	python3 - img/ntfs.img vars.ino >vars <<-'PY' || return 1
		import struct, sys
		img = open(sys.argv[1], "rb").read()
		v = dict(l.strip().split("=", 1) for l in open(sys.argv[2]))
		cl = struct.unpack_from("<H", img, 0x0b)[0] * img[0x0d]
		mft = struct.unpack_from("<Q", img, 0x30)[0] * cl
		print("image=ntfs.img")
		print("mft=%d" % mft)
		def attrs(rec):
		    off = struct.unpack_from("<H", img, rec + 0x14)[0]
		    while True:
		        t, ln = struct.unpack_from("<II", img, rec + off)
		        if t == 0xffffffff or ln == 0:
		            return
		        yield t, rec + off
		        off += ln
		for n in ("big", "dir", "bigdir"):
		    rec = mft + int(v["ino_" + n]) * 1024
		    print("rec_%s=%d" % (n, rec))
		    for t, a in attrs(rec):
		        if n == "big" and t == 0x80 and img[a + 9] == 0 and img[a + 8]:
		            print("dp_big=%d" % (a + struct.unpack_from("<H", img, a + 0x20)[0]))
		        if n == "bigdir" and t == 0xa0:
		            dp = a + struct.unpack_from("<H", img, a + 0x20)[0]
		            h = img[dp]
		            ll, lo = h & 15, h >> 4
		            lcn = int.from_bytes(img[dp + 1 + ll:dp + 1 + ll + lo], "little", signed=True)
		            ia = lcn * cl
		            print("ia_bigdir=%d" % ia)
		            # The block's last (END) entry, after the fixups.
		            blk = bytearray(img[ia:ia + 4096])
		            uo, uc = struct.unpack_from("<HH", blk, 4)
		            for i in range(1, uc):
		                blk[i * 512 - 2:i * 512] = blk[uo + 2 * i:uo + 2 * i + 2]
		            e = 0x18 + struct.unpack_from("<I", blk, 0x18)[0]
		            while not struct.unpack_from("<H", blk, e + 12)[0] & 2:
		                e += struct.unpack_from("<H", blk, e + 8)[0]
		            print("ie_end_bigdir=%d" % (ia + e))
		            print("ih_bigdir=%d" % (ia + 0x18))
	PY
	grep -q '^dp_big=[1-9]' vars && grep -q '^ia_bigdir=[1-9]' vars || return 1
}
# LVM2 on the two partitions of an 8 MiB raw GPT disk (p1 at 1 MiB, p2 at
# 4 MiB, 3 MiB each) filled with seeded bytes first: pvcreate, vgcreate
# (64 KiB extents) and lvcreate on a loop device (losetup -P, activation
# off, nothing zeroed or wiped, so each LV holds the seeded bytes at its
# extents). hb_lvm_make DISK MODE: MODE one makes VG hvg over p1 (both
# metadata areas) and p2 with lin (8 extents on p1), two (3 extents, b
# after it, then 2 more: two segments) and st (4 extents striped over p1
# and p2, 16 KiB stripes); MODE clash makes a VG hvg on each partition
# alone (each lvm command sees one of them), each with LV a. Writes
# lvm2's reports: pvs.txt (pv_name pe_start pv_uuid), vgs.txt (vg_name
# vg_uuid), lvs.txt (vg_uuid lv_name lv_size seg_count).
hb_lvm_make() {
	local dev rc i
	dev=$(losetup -f --show -P "$1") || return 1
	[ -n "${VD_LOOPS:-}" ] && echo "$dev" >>"$VD_LOOPS"
	# Without udev the partitions' nodes come from partx.
	partx -a "$dev" 2>/dev/null
	for i in $(seq 50); do
		[ -b "${dev}p2" ] && break
		sleep 0.1
	done
	(
		export LVM_SUPPRESS_FD_WARNINGS=1
		p1=${dev}p1 p2=${dev}p2
		c=(--config 'global{activation=0}' --devices "$p1,$p2")
		n=(-q -an -Zn -Wn)
		if [ "$2" = clash ]; then
			for p in "$p1" "$p2"; do
				c1=(--config 'global{activation=0}' --devices "$p")
				pvcreate "${c1[@]}" -q --metadatasize 128k "$p" &&
					vgcreate "${c1[@]}" -q -s 64k hvg "$p" &&
					lvcreate "${c1[@]}" "${n[@]}" -l 2 -n a hvg || exit 1
				vgs "${c1[@]}" --noheadings -o vg_name,vg_uuid >>vgs.txt || exit 1
			done
		else
			pvcreate "${c[@]}" -q --metadatacopies 2 --metadatasize 128k "$p1" &&
				pvcreate "${c[@]}" -q --metadatasize 128k "$p2" &&
				vgcreate "${c[@]}" -q -s 64k hvg "$p1" "$p2" &&
				lvcreate "${c[@]}" "${n[@]}" -l 8 -n lin hvg "$p1" &&
				lvcreate "${c[@]}" "${n[@]}" -l 3 -n two hvg "$p1" &&
				lvcreate "${c[@]}" "${n[@]}" -l 1 -n b hvg "$p1" &&
				lvextend "${c[@]}" -q -l 5 hvg/two "$p1" &&
				lvcreate "${c[@]}" "${n[@]}" -i 2 -I 16k -l 4 -n st hvg "$p1" "$p2" &&
				vgs "${c[@]}" --noheadings -o vg_name,vg_uuid >vgs.txt || exit 1
		fi
		pvs "${c[@]}" --noheadings --units b --nosuffix \
			-o pv_name,pe_start,pv_uuid >pvs.txt &&
			lvs "${c[@]}" --noheadings --units b --nosuffix \
				-o vg_uuid,lv_name,lv_size,seg_count >lvs.txt
	) </dev/null
	rc=$?
	sync
	blockdev --flushbufs "$dev" 2>/dev/null
	if [ -n "${VD_LOOPS:-}" ]; then
		vd_loop_detach "$dev"
	else
		losetup -d "$dev"
	fi
	return $rc
}

hb_lvm() {
	mkdir img
	seed_raw img/disk.raw $((8 * HB_MIB))
	sfdisk -q img/disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=6144, type=E6D6D379-F507-44C2-A23C-238F2A3DF928
		start=8192, size=6144, type=E6D6D379-F507-44C2-A23C-238F2A3DF928
	EOF
	hb_lvm_make img/disk.raw "$1" || return 1
	cp img/disk.raw oracle.raw
	{
		echo image=disk.raw
		# The first LV on p1 starts at p1's first extent.
		echo "lin_off=$((HB_MIB + $(awk 'NR == 1 { print $2 }' pvs.txt)))"
		echo "pv2_uuid=$(awk 'NR == 2 { print $3 }' pvs.txt)"
		echo "vg2_uuid=$(awk 'NR == 2 { print $2 }' vgs.txt)"
	} >vars
}
gen_hb_lvm() { hb_lvm one; }
gen_hb_lvmclash() { hb_lvm clash; }

# LUKS1 over a whole 4 MiB disk (cryptsetup luksFormat: aes-xts-plain64,
# PBKDF2 with 1000 iterations, the key "hostile key" in slot 0 and in
# img/K), UUID fixed for the manifests. Its data area is whatever the
# file held (zeros): the cases are about the header.
gen_hb_luks1() {
	mkdir img
	printf 'hostile key' >img/K
	truncate -s "$HB_SIZE" img/disk.img
	cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \
		--uuid 89000000-0000-4000-8000-000000000001 --key-file img/K \
		img/disk.img || return 1
	cp img/disk.img oracle.raw
	echo image=disk.img >vars
}

# The same as LUKS2: 16 KiB metadata areas (the JSON at 4096 and, in the
# second copy, at 20480), 1 MiB of key slots, a PBKDF2 slot.
gen_hb_luks2() {
	mkdir img
	printf 'hostile key' >img/K
	truncate -s "$HB_SIZE" img/disk.img
	cryptsetup luksFormat -q --type luks2 --luks2-metadata-size 16k \
		--luks2-keyslots-size 1m --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--uuid 89000000-0000-4000-8000-000000000002 --key-file img/K \
		img/disk.img || return 1
	cp img/disk.img oracle.raw
	echo image=disk.img >vars
}

# The same with an Argon2id slot (4 passes, 64 KiB, 1 thread): the JSON
# holds "time":4, "memory":64 and "cpus":1 for the cap cases.
gen_hb_luks2argon() {
	mkdir img
	printf 'hostile key' >img/K
	truncate -s "$HB_SIZE" img/disk.img
	cryptsetup luksFormat -q --type luks2 --luks2-metadata-size 16k \
		--luks2-keyslots-size 1m --pbkdf argon2id --pbkdf-force-iterations 4 \
		--pbkdf-memory 64 --pbkdf-parallel 1 \
		--uuid 89000000-0000-4000-8000-000000000003 --key-file img/K \
		img/disk.img || return 1
	cp img/disk.img oracle.raw
	echo image=disk.img >vars
}

# A LUKS-encrypted qcow2 (qemu-img: the LUKS1 header inside the image,
# encrypt.iter-time=10; creation retried, qemu's PBKDF timing fails now
# and then), key in img/K; oracle by qemu-img with the secret.
gen_hb_qcow2luks() {
	local i
	mkdir img
	printf 'hostile key' >img/K
	seed_raw seed.raw "$HB_SIZE"
	for i in 1 2 3 4 5; do
		qemu-img convert -f raw -O qcow2 --object secret,id=s,file=img/K \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
			seed.raw img/disk.qcow2 && break
		rm -f img/disk.qcow2
	done
	[ -e img/disk.qcow2 ] || return 1
	rm -f seed.raw
	qemu-img convert --object secret,id=s,file=img/K --image-opts \
		driver=qcow2,file.filename=img/disk.qcow2,encrypt.key-secret=s \
		-O raw oracle.raw || return 1
	echo image=disk.qcow2 >vars
}
