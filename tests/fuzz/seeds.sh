#!/bin/bash
# tests/fuzz/seeds.sh OUTDIR — small seed corpora for the fuzz targets,
# made by the real tools the image tests use (qemu-img, qemu-io,
# tests/mkvmdk.py, tests/mkvhd.py, tests/mkvdi.py, tests/mksesparse.py,
# tar, sfdisk, fdisk, mkfs.vfat + mcopy, mkfs.ext4 -d, tests/mkdirty.sh).
# OUTDIR/NAME/ holds target NAME's seeds (see tests/fuzz/fuzz.h for the
# split convention "MAIN\n--8<--\nSIBLING" whose SIBLING the harness
# writes as e.vmdk, p.vhd, d.img and p.vdi). Every seed
# is at most 4 MiB. A generator that fails (a tool missing) is reported
# and skipped; the exit status is non-zero only when a folder stays empty.
set -u
umask 022
OUT=${1:?usage: seeds.sh OUTDIR}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/vdseeds.XXXXXX) || exit 1
trap 'rm -rf --one-file-system "$W"' EXIT
cd "$W" || exit 1
KIB=1024
MIB=$((1024 * 1024))

# split MAIN SIBLING OUT — the split convention.
split() {
	{ cat "$1"; printf '\n--8<--\n'; cat "$2"; } >"$3"
}

# pattern FILE SIZE — SIZE bytes of text-like, compressible data.
pattern() {
	yes "vdmount fuzz seed $(basename "$1") $2" | head -c "$2" >"$1"
}

# qw FMT IMG OFF:LEN:BYTE... — qemu-io writes.
qw() {
	local fmt=$1 img=$2 w o l b args=()
	shift 2
	for w in "$@"; do
		IFS=: read -r o l b <<<"$w"
		args+=(-c "write -P $b $o $l")
	done
	timeout 60 qemu-io -f "$fmt" "${args[@]}" "$img" >/dev/null
}

# ---------------------------------------------------------------- qcow2
seeds_qcow2() {
	local o=$OUT/qcow2 f
	mkdir -p "$o"
	qemu-img create -q -f qcow2 q.qcow2 64M &&
		qw qcow2 q.qcow2 0:4096:0x11 1048576:70000:0x22 67104768:4096:0x33 &&
		cp q.qcow2 "$o/plain"
	qemu-img create -q -f qcow2 -o cluster_size=4096,compat=0.10 q010.qcow2 16M &&
		qw qcow2 q010.qcow2 0:8192:0x44 5000000:3000:0x45 && cp q010.qcow2 "$o/compat010"
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=65536 qx.qcow2 16M &&
		qw qcow2 qx.qcow2 0:4096:0x55 40960:2048:0x56 1048576:512:0x57 &&
		qemu-io -f qcow2 -c 'write -z 8192 8192' qx.qcow2 >/dev/null &&
		cp qx.qcow2 "$o/extl2"
	qemu-img create -q -f qcow2 -o refcount_bits=1,lazy_refcounts=on,compat=1.1 qr.qcow2 8M &&
		qw qcow2 qr.qcow2 512:1024:0x66 && cp qr.qcow2 "$o/refbits1"
	# Compressed clusters, zlib and zstd.
	pattern src.raw $((1 * MIB))
	for c in zlib zstd; do
		qemu-img convert -q -c -O qcow2 -o compression_type=$c,cluster_size=4096 \
			src.raw "qc-$c.qcow2" && cp "qc-$c.qcow2" "$o/compressed-$c"
	done
	# Internal snapshots.
	qemu-img create -q -f qcow2 qs.qcow2 8M && qw qcow2 qs.qcow2 0:4096:0x71 &&
		qemu-img snapshot -c first qs.qcow2 && qw qcow2 qs.qcow2 0:4096:0x72 4096:512:0x73 &&
		qemu-img snapshot -c second qs.qcow2 && cp qs.qcow2 "$o/snapshots"
	# Backing chains: the backing file is d.img (the split sibling), of
	# format qcow2 or raw; one without a recorded backing format.
	qemu-img create -q -f qcow2 d.img 8M && qw qcow2 d.img 0:65536:0x81 &&
		qemu-img create -q -f qcow2 -b d.img -F qcow2 top.qcow2 &&
		qw qcow2 top.qcow2 4096:4096:0x82 && split top.qcow2 d.img "$o/chain-qcow2"
	rm -f d.img
	truncate -s 256K d.img && qemu-img create -q -f qcow2 -b d.img -F raw top2.qcow2 &&
		qw qcow2 top2.qcow2 0:512:0x83 && split top2.qcow2 d.img "$o/chain-raw"
	rm -f d.img
	qemu-img create -q -f vmdk d.img 1M && qemu-img create -q -f qcow2 -b d.img -F vmdk top3.qcow2 &&
		split top3.qcow2 d.img "$o/chain-vmdk"
	# An external data file (raw), named d.img.
	rm -f d.img
	qemu-img create -q -f qcow2 -o data_file=d.img,data_file_raw=on qd.qcow2 256K &&
		qw qcow2 qd.qcow2 0:4096:0x91 && split qd.qcow2 d.img "$o/data-file"
	rm -f d.img
}

# ---------------------------------------------------------------- VMDK
# desc_to_e DESC — rename the (single) extent file a descriptor names to
# e.vmdk, the split sibling.
desc_to_e() {
	sed -i -E 's/^(R[WD]ONLY|RW|RDONLY|NOACCESS) ([0-9]+) ([A-Z]+) "[^"]*"/\1 \2 \3 "e.vmdk"/' "$1"
}

seeds_vmdk() {
	local o=$OUT/vmdk d=$OUT/vmdk-desc sf
	mkdir -p "$o" "$d"
	# 1 MiB, mostly zeros: a few grains of data and a few random ones.
	truncate -s 1M vsrc.raw
	pattern vdata 100000
	dd if=vdata of=vsrc.raw bs=4096 seek=3 conv=notrunc status=none
	dd if=/dev/urandom of=vsrc.raw bs=4096 seek=200 count=4 conv=notrunc status=none
	for sf in monolithicSparse streamOptimized; do
		qemu-img convert -q -O vmdk -o subformat=$sf vsrc.raw "v-$sf.vmdk" &&
			cp "v-$sf.vmdk" "$o/$sf"
	done
	mkdir -p 2g flat
	qemu-img convert -q -O vmdk -o subformat=twoGbMaxExtentSparse vsrc.raw 2g/v.vmdk &&
		desc_to_e 2g/v.vmdk && cp 2g/v.vmdk "$d/twoGb.desc" &&
		split 2g/v.vmdk 2g/v-s001.vmdk "$o/twoGbMaxExtentSparse"
	qemu-img convert -q -O vmdk -o subformat=monolithicFlat vsrc.raw flat/v.vmdk &&
		desc_to_e flat/v.vmdk && cp flat/v.vmdk "$d/flat.desc" &&
		split flat/v.vmdk flat/v-flat.vmdk "$o/monolithicFlat"
	# A child whose parent (e.vmdk) is monolithicSparse.
	mkdir -p ch
	qemu-img convert -q -O vmdk vsrc.raw ch/e.vmdk &&
		(cd ch && qemu-img create -q -f vmdk -b e.vmdk -F vmdk c.vmdk) &&
		qw vmdk ch/c.vmdk 0:4096:0x61 && split ch/c.vmdk ch/e.vmdk "$o/child"
	# What qemu-img cannot write: ESX COWD, VMware-style stream footer.
	mkdir -p cowd
	if python3 "$SRC/tests/mkvmdk.py" cowd cowd/v.vmdk vsrc.raw; then
		desc_to_e cowd/v.vmdk && cp cowd/v.vmdk "$d/cowd.desc" &&
			split cowd/v.vmdk cowd/v-delta.vmdk "$o/cowd"
		cp cowd/v-delta.vmdk "$o/cowd-alone"
	fi
	# seSparse (tests/mksesparse.py), its extent as e.vmdk.
	mkdir -p se
	truncate -s 1M se/cur.raw
	if python3 "$SRC/tests/mksesparse.py" se/v.vmdk --size 1048576 --cur se/cur.raw \
		--write 0:4096:0x71 --write 300000:5000:0x72 --zero 8192:4096; then
		desc_to_e se/v.vmdk && cp se/v.vmdk "$d/sesparse.desc" &&
			split se/v.vmdk se/v-sesparse.vmdk "$o/sesparse"
	fi
	python3 "$SRC/tests/mkvmdk.py" stream vstream.vmdk vsrc.raw && cp vstream.vmdk "$o/vmware-stream"
	# Descriptors by hand-picked keys as VMware writes them.
	cat >"$d/vmfs.desc" <<-'E'
		# Disk DescriptorFile
		version=1
		encoding="UTF-8"
		CID=fffffffe
		parentCID=12345678
		createType="vmfs"
		parentFileNameHint="base.vmdk"

		# Extent description
		RW 2048 VMFS "e.vmdk"
		RDONLY 100 FLAT "e.vmdk" 7
		NOACCESS 8 ZERO

		# The Disk Data Base
		#DDB
		ddb.adapterType = "lsilogic"
		ddb.geometry.cylinders = "1"
	E
}

# ---------------------------------------------------------------- VHD
seeds_vhd() {
	local o=$OUT/vhd
	mkdir -p "$o"
	truncate -s 1M hsrc.raw
	pattern hdata 50000
	dd if=hdata of=hsrc.raw bs=512 seek=9 conv=notrunc status=none
	qemu-img convert -q -O vpc -o subformat=fixed,force_size=on hsrc.raw h-fixed.vhd &&
		cp h-fixed.vhd "$o/fixed"
	qemu-img convert -q -O vpc -o subformat=dynamic hsrc.raw h-dyn.vhd && cp h-dyn.vhd "$o/dynamic"
	qemu-img create -q -f vpc -o subformat=dynamic h-empty.vhd 64M && cp h-empty.vhd "$o/empty"
	# Differencing over p.vhd (the split sibling): an empty dynamic
	# parent keeps the seed small.
	qemu-img create -q -f vpc -o subformat=dynamic,force_size=on p.vhd 4M &&
		python3 "$SRC/tests/mkvhd.py" diff p.vhd h-diff.vhd --block-size 65536 \
			--write 0:4096:0x61 --write 70144:1024:0x62 &&
		split h-diff.vhd p.vhd "$o/differencing"
	python3 "$SRC/tests/mkvhd.py" diff p.vhd h-diff2.vhd --block-size 65536 \
		--write 512:512:0x63 --locator 'W2ku:C:\vms\p.vhd' --locator 'MacX:file://./p.vhd' \
		--locator 'W2ru:.\p.vhd' && split h-diff2.vhd p.vhd "$o/differencing-locators"
}

# ---------------------------------------------------------------- VDI
seeds_vdi() {
	local o=$OUT/vdi
	mkdir -p "$o"
	truncate -s 3M isrc.raw
	pattern idata 50000
	dd if=idata of=isrc.raw bs=4096 seek=300 conv=notrunc status=none
	qemu-img convert -q -O vdi isrc.raw i-dyn.vdi && cp i-dyn.vdi "$o/dynamic"
	truncate -s 1M isrc1.raw
	dd if=idata of=isrc1.raw bs=4096 seek=3 conv=notrunc status=none
	qemu-img convert -q -O vdi -o static=on isrc1.raw i-static.vdi && cp i-static.vdi "$o/static"
	# Small blocks (qemu writes only 1 MiB ones; VirtualBox may differ):
	# a differencing image over p.vdi, the split sibling.
	truncate -s 256K ismall.raw
	dd if=idata of=ismall.raw bs=4096 seek=5 count=3 conv=notrunc status=none
	python3 "$SRC/tests/mkvdi.py" base --block-size 4096 ismall.raw p.vdi &&
		cp ismall.raw icur.raw &&
		python3 "$SRC/tests/mkvdi.py" diff p.vdi i-diff.vdi --cur icur.raw \
			--write 0:4096:0x61 --write 20000:100:0x62 --zero 65536:1 &&
		split i-diff.vdi p.vdi "$o/differencing" && cp p.vdi "$o/small-blocks"
}

# ---------------------------------------------------------------- VHDX
# Regions are whole MiB ([MS-VHDX] 2.2.3), so the smallest image with a
# block is 4 MiB: tests/mkvhdx.py's layout without a log (metadata at 1
# MiB, BAT at 2 MiB); a log seed has a log and no block (the log adds
# one past the end of the file). A differencing seed cannot fit with its
# parent: its sibling p.vhd is no VHDX, the locator parser still runs.
seeds_vhdx() {
	local o=$OUT/vhdx m=$SRC/tests/mkvhdx.py
	mkdir -p "$o"
	truncate -s 1M xsrc.raw
	pattern xdata 50000
	dd if=xdata of=xsrc.raw bs=512 seek=9 conv=notrunc status=none
	python3 "$m" new "$o/dynamic" --size 3M --block-size 1M --from xsrc.raw --no-log
	python3 "$m" new "$o/lss4096" --size 3M --block-size 1M --lss 4096 \
		--from xsrc.raw --no-log
	python3 "$m" new "$o/fixed" --size 1M --block-size 1M --fixed --from xsrc.raw --no-log
	python3 "$m" new xlog.vhdx --size 3M --block-size 1M &&
		python3 "$m" log xlog.vhdx --write 0:8192:0x41 --write 1M:4096:0x42 \
			--per-entry 2 && cp xlog.vhdx "$o/log"
	python3 "$m" new xp.vhdx --size 3M --block-size 1M --no-log &&
		python3 "$m" diff xp.vhdx xd.vhdx --zero 1M:1M --relative '.\p.vhd' \
			--absolute 'C:\vms\p.vhd' --no-log &&
		printf 'not a vhdx' >p.vhd && split xd.vhdx p.vhd "$o/differencing"
}

# ---------------------------------------------------------------- OVA
write_ovf() {
	local out=$1 i=0 h
	shift
	{
		echo '<?xml version="1.0" encoding="UTF-8"?>'
		echo '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"'
		echo '    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">'
		echo '  <References>'
		for h in "$@"; do
			i=$((i + 1))
			echo "    <File ovf:href=\"$h\" ovf:id=\"file$i\"/>"
		done
		echo '  </References>'
		echo '  <DiskSection>'
		echo '    <Info>Virtual disk information &amp; more</Info>'
		i=0
		for h in "$@"; do
			i=$((i + 1))
			echo "    <Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^20\"" \
				"ovf:diskId=\"vmdisk$i\" ovf:fileRef=\"file$i\"/>"
		done
		echo '  </DiskSection>'
		echo '  <VirtualSystem ovf:id="vm"><Info>A VM</Info></VirtualSystem>'
		echo '</Envelope>'
	} >"$out"
}

seeds_ova() {
	local o=$OUT/ova
	mkdir -p "$o" ova
	(
		cd ova || exit 1
		pattern d1.raw $((64 * KIB))
		qemu-img convert -q -O qcow2 -o cluster_size=4096 d1.raw d1.qcow2 || exit 1
		qemu-img convert -q -O vmdk -o subformat=streamOptimized d1.raw d3.vmdk || exit 1
		write_ovf one.ovf d1.qcow2 && tar cf "$o/qcow2.ova" one.ovf d1.qcow2
		write_ovf raw.ovf d1.raw && tar cf "$o/raw.ova" raw.ovf d1.raw
		write_ovf two.ovf d3.vmdk d1.raw && tar cf "$o/two-desc-last.ova" d1.raw d3.vmdk two.ovf
		tar --format=pax -cf "$o/pax.ova" two.ovf d3.vmdk d1.raw
		# A GNU long name (over 100 bytes).
		long=$(printf 'x%.0s' $(seq 120)).raw
		cp d1.raw "$long"
		write_ovf long.ovf "$long" && tar --format=gnu -cf "$o/gnu-long.ova" long.ovf "$long"
		# A plain .ovf beside its disk d.img (the split sibling).
		cp d1.qcow2 d.img && write_ovf plain.ovf d.img && split plain.ovf d.img "$o/ovf-plain"
	)
}

# ---------------------------------------------------------------- MBR, GPT
seeds_mbr() {
	local o=$OUT/mbr
	mkdir -p "$o"
	truncate -s 2M m.img
	sfdisk -q m.img <<-'E'
		label: dos
		label-id: 0x12345678
		start=64, size=512, type=83, bootable
		start=600, size=3000, type=5
		start=4000, size=64, type=82
	E
	# Logical partitions inside the extended one (5, 6, 7).
	printf 'start=700, size=800, type=c\nsize=400, type=83\nsize=200, type=83\n' |
		sfdisk -q -a m.img
	# A FAT12 volume in partition 5 so a file tree is walked too.
	local p5
	p5=$(sfdisk -d m.img | sed -n 's/.*m.img5 : start= *\([0-9]*\).*/\1/p')
	if [ -n "$p5" ]; then
		mkfs.vfat -F 12 --offset "$p5" m.img 400 >/dev/null &&
			echo hello >hi.txt && mcopy -i m.img@@$((p5 * 512)) hi.txt ::HI.TXT
	fi
	cp m.img "$o/extended"
	truncate -s 1M m85.img
	printf 'label: dos\nstart=100, size=1500, type=85\nstart=1700, size=100, type=83\n' | sfdisk -q m85.img &&
		printf 'start=200, size=100, type=83\nsize=100, type=83\n' | sfdisk -q -a m85.img &&
		cp m85.img "$o/linux-extended"
}

seeds_gpt() {
	local o=$OUT/gpt
	mkdir -p "$o"
	truncate -s 1M g.img
	sfdisk -q g.img <<-'E'
		label: gpt
		start=40, size=200, type=L, name="first one"
		start=300, size=100, type=U, name="EFI"
		start=500, size=64, type=S
	E
	cp g.img "$o/gpt"
	# Four entries only (a small entry array), 128 used in the other.
	truncate -s 1M g2.img
	printf 'label: gpt\ntable-length: 4\nstart=34, size=100, type=L\nstart=1000, size=100, type=L\n' |
		sfdisk -q g2.img && cp g2.img "$o/gpt-4-entries"
	# 4096-byte sectors (fdisk -b 4096, as t-90 does).
	truncate -s 2M g4.img
	printf 'g\nn\n\n\n+256K\nn\n\n\n+128K\nx\nn\n2\nsecond 4k\nr\nw\n' |
		fdisk -b 4096 g4.img >/dev/null && cp g4.img "$o/gpt-4k"
	# Hybrid MBR.
	cp g.img gh.img && printf 'start=1, size=39, type=ee\nstart=40, size=200, type=83\n' |
		sfdisk -q -Y dos gh.img && cp gh.img "$o/gpt-hybrid"
}

# ---------------------------------------------------------------- FAT
fat_tree() {
	rm -rf ft && mkdir -p ft/sub/deeper ft/"Long Directory Name"
	echo short >ft/A.TXT
	pattern "ft/a rather long file name.txt" 5000
	pattern ft/sub/deeper/data.bin 20000
	: >ft/empty
	for i in $(seq 40); do echo "$i" >"ft/Long Directory Name/entry number $i.txt"; done
	printf 'caf\xc3\xa9' >ft/sub/utf8-$'\xc3\xa9'.txt
}

seeds_fat() {
	local o=$OUT/fat f
	mkdir -p "$o"
	fat_tree
	# FAT32 needs 65525 clusters (33 MiB of 512-byte ones) for mtools to
	# fill it; its first 4 MiB (boot sectors, both FATs, the tree) are
	# kept: the reader warns about the short volume and goes on.
	for f in "12 256K" "16 3M -s 1" "32 33M -s 1"; do
		set -- $f
		local v=fat$1.img
		truncate -s "$2" "$v"
		mkfs.vfat -F "$1" ${3:-} ${4:-} -n "FUZZ$1" "$v" >/dev/null 2>&1 &&
			mcopy -s -i "$v" ft/* :: && head -c 4M "$v" >"$o/fat$1"
	done
	# FAT12 with 4096-byte sectors, and one with 2 FATs of 1 sector.
	truncate -s 1M fat4k.img && mkfs.vfat -F 12 -S 4096 fat4k.img >/dev/null 2>&1 &&
		mcopy -s -i fat4k.img ft/sub :: && cp fat4k.img "$o/fat12-4k"
}

# ---------------------------------------------------------------- ext
ext_tree() {
	rm -rf et && mkdir -p et/dir/sub et/big
	echo hello >et/hello.txt
	pattern et/dir/file.txt 3000
	pattern et/dir/sub/more.bin 70000
	ln -s hello.txt et/fast-link
	ln -s "$(printf 'long/%.0s' $(seq 30))target" et/slow-link
	ln et/hello.txt et/hard-link
	truncate -s 300K et/sparse && printf 'end' >>et/sparse
	printf 'x' | dd of=et/sparse bs=1 seek=70000 conv=notrunc status=none
	setfattr -n user.color -v blue et/hello.txt 2>/dev/null
	setfattr -n user.big -v "$(printf 'v%.0s' $(seq 300))" et/dir/file.txt 2>/dev/null
	for i in $(seq 120); do : >"et/big/a-fairly-long-name-for-an-htree-entry-$i"; done
	mkfifo et/fifo
}

seeds_ext() {
	local o=$OUT/ext
	mkdir -p "$o"
	ext_tree
	mke() {
		local out=$1 size=$2
		shift 2
		rm -f x.img
		truncate -s "$size" x.img &&
			mkfs.ext4 -q -F -N 256 -E root_owner=0:0 "$@" -d et x.img >/dev/null 2>&1 &&
			cp x.img "$o/$out"
	}
	mke ext2 1M -t ext2 -b 1024
	mke ext3 2M -t ext3 -b 1024
	mke ext4 2M -t ext4 -b 1024
	mke ext4-4k 4M -t ext4 -b 4096 -O ^has_journal
	mke ext4-64bit 2M -t ext4 -b 1024 -O 64bit,^metadata_csum
	mke ext4-noextents 1M -t ext4 -b 1024 -O ^extent,^has_journal
	mke ext4-inline 1M -t ext4 -b 1024 -I 256 -O inline_data,^has_journal
	mke ext4-nodirindex 1M -t ext4 -b 1024 -O ^dir_index,^has_journal
	# A journal that needs recovery (root and loop devices).
	if [ "$(id -u)" = 0 ] && bash "$SRC/tests/mkdirty.sh" -t ext4 -b 1024 -s 2M dirty.img \
		>/dev/null 2>&1; then
		cp dirty.img "$o/ext4-dirty-journal"
	fi
	seeds_ext_fc
}

# Fast commits the kernel wrote (fsync with a long commit interval, the
# image copied while mounted): the image for fuzz-ext, and for fuzz-ext-fc
# its fast-commit area (the journal's last 256 blocks) after the tid of
# the transaction they belong to (the journal's s_sequence + 1).
seeds_ext_fc() {
	local o=$OUT/ext d rc seq
	mkdir -p "$o" "$OUT/ext-fc"
	# Always one seed, even without root: tid 0 and an empty block.
	head -c 1028 /dev/zero >"$OUT/ext-fc/empty"
	[ "$(id -u)" = 0 ] || return 0
	rm -f fc.img && truncate -s 2M fc.img &&
		mkfs.ext4 -q -F -b 1024 -O fast_commit -E lazy_itable_init=0,lazy_journal_init=0 fc.img ||
		return 1
	d=$(mktemp -d "$PWD/fcm.XXXXXX")
	timeout 60 mount -o loop,noatime,commit=300 fc.img "$d" || return 1
	rc=0
	{ mkdir "$d/a" && head -c 3000 /dev/zero | tr '\0' a >"$d/a/f" && sync &&
		ln "$d/a/f" "$d/a/g" && head -c 5000 /dev/zero | tr '\0' b >>"$d/a/f" &&
		: >"$d/a/new" && sync "$d/a/f" "$d/a/new" && cp fc.img fc-dirty.img; } || rc=1
	timeout 60 umount "$d"
	rmdir "$d"
	[ $rc = 0 ] || return 1
	cp fc-dirty.img "$o/ext4-fast-commit"
	debugfs -R "dump <8> jnl.bin" fc-dirty.img >/dev/null 2>&1 || return 1
	seq=$(debugfs -R "logdump" fc-dirty.img 2>/dev/null | sed -n 's/.*Journal starts at block [0-9]*, transaction \([0-9]*\).*/\1/p')
	# The last complete transaction is not known here: try the tids
	# around the log's start (one of them opens the area).
	for t in $((seq)) $((seq + 1)) $((seq + 2)); do
		python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<I", int(sys.argv[1])))' "$t" >"$OUT/ext-fc/area-$t"
		tail -c $((256 * 1024)) jnl.bin >>"$OUT/ext-fc/area-$t"
	done
}

# ---------------------------------------------------------------- xfs
# Small XFS filesystems (mkfs.xfs, filled by the kernel's read-write
# mount; v4 through a prototype, as this kernel mounts no v4), as qcow2
# images of 4 KiB clusters: see fuzz-xfs.c.
seeds_xfs() {
	local o=$OUT/xfs m=$W/xm
	mkdir -p "$o"
	[ "$(id -u)" = 0 ] || return 1
	mkx() {
		local out=$1 rc
		shift
		rm -f x.img
		truncate -s 20M x.img &&
			TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 \
				mkfs.xfs -q -f "$@" x.img >/dev/null 2>&1 || return 1
		mkdir -p "$m" && mount -o loop x.img "$m" || return 1
		mkdir -p "$m/d/sub" "$m/many" && echo hello >"$m/hello.txt" &&
			pattern "$m/d/file.txt" 3000 && pattern "$m/d/sub/more.bin" 70000 &&
			ln -s hello.txt "$m/fast-link" &&
			ln -s "$(printf 'long/%.0s' $(seq 60))target" "$m/slow-link" &&
			ln "$m/hello.txt" "$m/hard-link" &&
			truncate -s 300K "$m/sparse" && fallocate -o 8192 -l 16384 "$m/sparse" &&
			setfattr -n user.color -v blue "$m/hello.txt" &&
			setfattr -n user.big -v "$(printf 'v%.0s' $(seq 3000))" "$m/d/file.txt" &&
			for i in $(seq 40); do setfattr -n "user.a$i" -v "value $i" "$m/d"; done &&
			for i in $(seq 150); do : >"$m/many/a-fairly-long-name-for-a-leaf-entry-$i"; done &&
			python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)
for first in (0, 1):
    for i in range(first, 120, 2):
        os.pwrite(fd, b"x" * 1024, i * 1024)
    os.fsync(fd)' "$m/frag" && mkfifo "$m/fifo"
		rc=$?
		[ "$out" = dirty ] && [ $rc = 0 ] && xfs_io -c fsync "$m/frag" && xfs_io -x -c 'shutdown -f' "$m"
		umount "$m" || return 1
		[ $rc = 0 ] && qemu-img convert -O qcow2 -o cluster_size=4096 x.img "$o/$out"
	}
	mkx v5 -b size=1024
	mkx dir8k -b size=1024 -n size=8192
	mkx nrext64 -b size=1024 -i nrext64=1
	mkx sect4k -s size=4096
	mkx dirty -b size=1024
	# v4 from a prototype.
	mkdir -p v4/dir && echo v4 >v4/file && ln -s file v4/link &&
		for i in $(seq 100); do : >"v4/dir/entry-with-a-long-name-$i"; done &&
		printf 'x\n0 0\nd--755 0 0\nfile ---644 0 0 %s\nlink l--777 0 0 file\ndir d--755 0 0\n%s\n$\n$\n' \
			"$W/v4/file" "$(for i in $(seq 100); do echo "entry-with-a-long-name-$i ---644 0 0 $W/v4/file"; done)" >v4.proto &&
		truncate -s 20M v4.img &&
		TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 \
			mkfs.xfs -q -f -m crc=0 -b size=1024 -p v4.proto v4.img >/dev/null 2>&1 &&
		qemu-img convert -O qcow2 -o cluster_size=4096 v4.img "$o/v4"
}

# ---------------------------------------------------------------- btrfs
# Small btrfs filesystems (mkfs.btrfs, filled by the kernel's read-write
# mount) as qcow2 images of 4 KiB clusters: see fuzz-btrfs.c. Subvolumes
# and a snapshot, compressed files of each kind, inline, sparse and
# prealloc'ed files, xattrs, links; checksum and profile variants; a log
# tree (the image copied after an fsync).
seeds_btrfs() {
	local o=$OUT/btrfs m=$W/bm
	mkdir -p "$o"
	[ "$(id -u)" = 0 ] || return 1
	mkb() {
		local out=$1 rc c
		shift
		rm -f b.img
		truncate -s "${SZ:-120M}" b.img && mkfs.btrfs -q -f "$@" b.img >/dev/null 2>&1 || return 1
		mkdir -p "$m" && mount -o loop,commit=300 b.img "$m" || return 1
		mkdir -p "$m/d/sub" "$m/many" && echo hello >"$m/hello.txt" &&
			pattern "$m/d/file.txt" 3000 && pattern "$m/d/sub/more.bin" 70000 &&
			for c in zlib lzo zstd; do
				mkdir "$m/$c" && btrfs property set "$m/$c" compression $c &&
					pattern "$m/$c/text" 300000 && pattern "$m/$c/small" 1500 || break
			done &&
			ln -s hello.txt "$m/link" && ln "$m/hello.txt" "$m/hard-link" &&
			truncate -s 300K "$m/sparse" && fallocate -o 8192 -l 16384 "$m/sparse" &&
			setfattr -n user.color -v blue "$m/hello.txt" &&
			for i in $(seq 60); do : >"$m/many/a-fairly-long-name-$i"; done &&
			btrfs -q subvolume create "$m/sv" && echo in-sv >"$m/sv/f" &&
			btrfs -q subvolume snapshot -r "$m/sv" "$m/snap" && mkfifo "$m/fifo"
		rc=$?
		[ "$out" = dirty ] && [ $rc = 0 ] && sync && echo more >>"$m/hello.txt" &&
			xfs_io -c fsync "$m/hello.txt" && cp b.img dirty.img
		umount "$m" || return 1
		[ "$out" = dirty ] && mv dirty.img b.img
		[ $rc = 0 ] && qemu-img convert -O qcow2 -o cluster_size=4096 b.img "$o/$out"
	}
	mkb default
	mkb xxhash-single --csum xxhash -m single
	mkb sha256-holes --csum sha256 -O ^no-holes
	SZ=256M mkb blake2-dup --csum blake2 -m dup -d dup
	mkb dirty
}

# ---------------------------------------------------------------- ntfs
# Volumes filled through ntfs-3g (root: a FUSE mount) with what the
# driver reads: names, hard links, symlinks, streams, compressed and
# sparse files, a directory with an index allocation, WOF files.
seeds_ntfs() {
	local o=$OUT/ntfs c
	mkdir -p "$o" nm
	command -v mkntfs >/dev/null || return 1
	for c in 512 4096; do
		rm -f n.img
		truncate -s 3M n.img && mkntfs -Q -F -q -c "$c" n.img >/dev/null 2>&1 || return 1
		cp n.img "$o/ntfs-empty-$c"
		[ "$(id -u)" = 0 ] || continue
		timeout -k 5 60 ntfs-3g -o compression n.img nm || continue
		mkdir -p nm/dir/sub nm/comp nm/big
		echo hello >nm/hello.txt
		pattern nm/dir/file.txt 3000
		pattern nm/dir/sub/more.bin 70000
		ln nm/hello.txt nm/hard
		ln -s hello.txt nm/link
		setfattr -n user.stream -v data nm/hello.txt
		setfattr -n system.ntfs_attrib_be -v 0x00000800 nm/comp
		pattern nm/comp/packed 90000
		truncate -s 200K nm/sparse && printf 'x' >>nm/sparse
		for i in $(seq 150); do : >"nm/big/an-entry-with-a-longer-name-$i"; done
		# WOF-compressed (Compact OS) files: ntfs-wof.c and its decoders.
		/usr/bin/python3 "$SRC/tests/mkwof.py" put nm/wof-lzx lzx 40000
		/usr/bin/python3 "$SRC/tests/mkwof.py" put nm/wof-x4k xpress4k 9000
		timeout -k 5 60 umount nm
		cp n.img "$o/ntfs-filled-$c"
	done
}

# ---------------------------------------------------------------- LVM2
# lvm_mda_text PV OUT — the committed metadata text of the PV's first
# metadata area, as LVM wrote it (label, PV header, mda_header, raw_locn).
lvm_mda_text() {
	python3 - "$1" "$2" <<-'E'
		import struct, sys
		d = open(sys.argv[1], "rb").read()
		for s in range(4):
		    l = d[s * 512:(s + 1) * 512]
		    if l[:8] == b"LABELONE":
		        break
		else:
		    sys.exit(1)
		h = l[struct.unpack_from("<I", l, 20)[0]:]
		p = 40
		while struct.unpack_from("<Q", h, p)[0]:
		    p += 16
		mda = struct.unpack_from("<Q", h, p + 16)[0]
		off, size = struct.unpack_from("<QQ", d, mda + 40)
		open(sys.argv[2], "wb").write(d[mda + off:mda + off + size].rstrip(b"\0"))
	E
}

# Two 3 MiB PVs made by pvcreate on loop devices (the first with both
# metadata areas; the seeds are their first 256 KiB), one VG, a linear LV in two segments and a striped
# one; the metadata text as vgcfgbackup and as the area hold it; and
# texts of the types lvcreate cannot make without device-mapper (raid1,
# mirror, thin), written as LVM writes them.
seeds_lvm() {
	local ol=$OUT/lvm-label ot=$OUT/lvm-text l1 l2 rc
	mkdir -p "$ol" "$ot"
	cat >"$ot/types" <<-'E'
		vg {
		id = "SOqMZf-ueao-kjKT-OQW8-4Nfc-ju3n-9Ad7Yi"
		seqno = 9
		format = "lvm2"
		status = ["RESIZEABLE", "READ", "WRITE"]
		flags = []
		extent_size = 128
		physical_volumes {
		pv0 {
		id = "w9L3xq-3jK0-zrvx-SLye-GBOv-9GSY-oBKxNq"
		device = "/dev/vda3"	# Hint only
		status = ["ALLOCATABLE"]
		dev_size = 131072
		pe_start = 2048
		pe_count = 15
		}
		}
		logical_volumes {
		r1 {
		id = "VeI0gz-Wjt3-ugW0-vS60-grcr-DeJ8-LcNcmQ"
		status = ["READ", "WRITE", "VISIBLE"]
		segment1 {
		start_extent = 0
		extent_count = 1
		type = "raid1"
		device_count = 2
		region_size = 1024
		raids = ["r1_rmeta_0", "r1_rimage_0", "r1_rmeta_1", "r1_rimage_1"]
		}
		}
		r1_rimage_0 {
		id = "quLdzc-hOQ9-tpZ1-6XGG-6fmf-NtwY-8cCkAA"
		status = ["READ", "WRITE"]
		segment1 {
		start_extent = 0
		extent_count = 1
		type = "striped"
		stripe_count = 1
		stripes = ["pv0", 1]
		}
		}
		m {
		id = "7cPBOz-B2fF-fHqm-S2ul-f0Ai-jN75-JzwLfu"
		status = ["READ", "WRITE", "VISIBLE"]
		segment1 {
		start_extent = 0
		extent_count = 1
		type = "mirror"
		mirror_count = 2
		mirror_log = "m_mlog"
		mirrors = ["m_mimage_0", 0, "pv0", 3]
		}
		}
		pool {
		id = "7cPBOz-B2fF-fHqm-S2ul-f0Ai-jN75-JzwLf2"
		status = ["READ", "WRITE", "VISIBLE"]
		segment1 {
		start_extent = 0
		extent_count = 2
		type = "thin-pool"
		metadata = "pool_tmeta"
		pool = "pool_tdata"
		transaction_id = 2
		chunk_size = 128
		}
		}
		thin {
		id = "7cPBOz-B2fF-fHqm-S2ul-f0Ai-jN75-JzwLf3"
		status = ["READ", "WRITE", "VISIBLE"]
		segment1 {
		start_extent = 0
		extent_count = 4
		type = "thin"
		thin_pool = "pool"
		transaction_id = 1
		device_id = 1
		origin = "r1"
		}
		}
		}
		}
		contents = "Text Format Volume Group"
		version = 1
		description = "a \"quoted\" \\ text"
	E
	if [ "$(id -u)" != 0 ] || ! command -v pvcreate >/dev/null; then
		echo "seeds: lvm-label: needs root and lvm2" >&2
		return 1
	fi
	truncate -s 3M lvm1.img lvm2.img
	l1=$(losetup -f --show lvm1.img) || return 1
	l2=$(losetup -f --show lvm2.img) || { losetup -d "$l1"; return 1; }
	(
		export LVM_SUPPRESS_FD_WARNINGS=1
		c=(--config 'global{activation=0}' --devices "$l1,$l2")
		pvcreate "${c[@]}" -q --metadatacopies 2 --metadatasize 64k "$l1" &&
			pvcreate "${c[@]}" -q --metadatasize 64k "$l2" &&
			vgcreate "${c[@]}" -q -s 64k seed-vg "$l1" "$l2" &&
			lvcreate "${c[@]}" -q -an -Zn -L 256k -n lv-one seed-vg &&
			lvcreate "${c[@]}" -q -an -Zn -i2 -I16k -L 512k -n striped seed-vg &&
			lvextend "${c[@]}" -q -L 512k seed-vg/lv-one &&
			vgcfgbackup "${c[@]}" -q -f vg.txt seed-vg
	) >/dev/null 2>&1
	rc=$?
	losetup -d "$l1" "$l2"
	[ $rc = 0 ] || return 1
	# The label and first metadata area lie in the first 256 KiB (the
	# whole 3 MiB would slow the fuzzer a hundredfold); the first PV's
	# second area then lies past the input's end, an error path too.
	head -c 262144 lvm1.img >"$ol/pv-two-mdas"
	head -c 262144 lvm2.img >"$ol/pv-one-mda"
	cp vg.txt "$ot/vgcfgbackup"
	lvm_mda_text lvm1.img "$ot/mda-text"
	# The whole pipeline (fuzz-lvm): one 2 MiB PV, its LVs at 1 MiB,
	# a linear LV in two segments and a striped-on-one-PV one.
	local o=$OUT/lvm l3
	mkdir -p "$o"
	truncate -s 2M lvm3.img
	l3=$(losetup -f --show lvm3.img) || return 1
	(
		export LVM_SUPPRESS_FD_WARNINGS=1
		c=(--config 'global{activation=0}' --devices "$l3")
		pvcreate "${c[@]}" -q "$l3" &&
			vgcreate "${c[@]}" -q -s 16k tvg "$l3" &&
			lvcreate "${c[@]}" -q -an -Zn -Wn -l 8 -n a tvg &&
			lvcreate "${c[@]}" -q -an -Zn -Wn -l 4 -n b tvg &&
			lvextend "${c[@]}" -q -l 12 tvg/a
	) >/dev/null 2>&1
	rc=$?
	losetup -d "$l3"
	[ $rc = 0 ] || return 1
	# Some bytes in the LVs, so their reads see more than zeros.
	pattern lvdata 200000
	dd if=lvdata of=lvm3.img bs=1M seek=1 conv=notrunc status=none
	cp lvm3.img "$o/pv-2m"
}

# ---------------------------------------------------------------- xpress, lzx
# WOF chunks made by our own encoders (tests/mkwof.py), which wimlib's
# decompressor reads back in t-86-ntfs-wof.
seeds_wof() {
	/usr/bin/python3 "$SRC/tests/mkwof.py" seeds "$OUT"
}

# The qcow2 seeds, opened for writing.
seeds_qcow2w() {
	mkdir -p "$OUT/qcow2w" && cp "$OUT"/qcow2/* "$OUT/qcow2w/"
}

# The qcow2 seeds, checked (vdtool check).
seeds_qcow2check() {
	mkdir -p "$OUT/qcow2check" && cp "$OUT"/qcow2/* "$OUT/qcow2check/"
}

# The vmdk seeds and the descriptors, checked (vdtool check).
seeds_vmdkcheck() {
	mkdir -p "$OUT/vmdkcheck" && cp "$OUT"/vmdk/* "$OUT/vmdkcheck/" &&
		cp "$OUT"/vmdk-desc/* "$OUT/vmdkcheck/"
}

# LUKS headers by cryptsetup (small metadata and key-slot areas, cheap
# KDFs, so the fuzzer reaches the unlock): LUKS2 with PBKDF2 and argon2id
# slots, LUKS1 aes-cbc-essiv, qemu's LUKS1 aes-192-xts; and an encrypted qcow2 (qemu's LUKS1
# header inside) for the qcow2 target.
seeds_luks() {
	local o=$OUT/luks
	mkdir -p "$o"
	printf 'fuzz' >key
	truncate -s $((4 * MIB)) l2.img
	cryptsetup luksFormat -q --type luks2 --luks2-metadata-size 16k \
		--luks2-keyslots-size 1m --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file key l2.img &&
		cryptsetup luksAddKey -q --key-file key --pbkdf argon2id \
			--pbkdf-force-iterations 4 --pbkdf-memory 32 l2.img key &&
		head -c $((1536 * KIB)) l2.img >"$o/luks2"
	truncate -s $((3 * MIB)) l1.img
	cryptsetup luksFormat -q --type luks1 --cipher aes-cbc-essiv:sha256 \
		--key-size 256 --pbkdf-force-iterations 1000 --key-file key l1.img &&
		head -c $((2 * MIB + 4 * KIB)) l1.img >"$o/luks1"
	# qemu's LUKS1 with aes-192-xts: libcryptsetup cannot open its slot
	# here, our own code (common/luks1.c) does.
	qemu-img create -q -f luks --object secret,id=s,file=key \
		-o key-secret=s,iter-time=10,cipher-alg=aes-192,cipher-mode=xts \
		l1x.img 2M && head -c $((2 * MIB)) l1x.img >"$o/luks1-aes192xts"
	for i in 1 2 3; do
		qemu-img create -q -f qcow2 --object secret,id=s,file=key \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
			e.qcow2 4M && break
	done
	[ -f e.qcow2 ] && cp e.qcow2 "$OUT/qcow2/luks"
}

# ---------------------------------------------------------------- inspect
# The text and headers vdtool inspect parses: files as distributions
# write them (the host's own where it has them), and headers of real
# binaries.
seeds_inspect() {
	local o=$OUT/inspect f
	mkdir -p "$o"
	for f in /etc/os-release /usr/lib/os-release /etc/lsb-release /etc/fstab \
		/etc/debian_version /etc/hostname; do
		[ -f "$f" ] && head -c 65536 "$f" >"$o/$(echo "$f" | tr / _)"
	done
	[ -f /var/lib/dpkg/status ] && head -c 200000 /var/lib/dpkg/status >"$o/dpkg-status"
	head -c 4096 /bin/sh >"$o/elf-sh"
	printf 'ID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\nexport X=a\\ b\x27c\x27"d"\n' >"$o/os-release-quoted"
	printf 'Rocky Linux release 9.3 (Blue Onyx)\n' >"$o/redhat-release"
	printf 'UUID=0a1b2c3d-0000-4000-8000-000000000001 / ext4 defaults 0 1\nLABEL=My\\040Data /srv/my\\040data xfs ro 0 0\n/dev/vg0/home /home ext4 defaults 0 2\n' >"$o/fstab-escapes"
	printf 'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\n' >"$o/apk-installed"
	printf 'MZ' >"$o/pe"
	head -c 58 /dev/zero >>"$o/pe"
	printf '\x40\x00\x00\x00PE\x00\x00\x64\x86' >>"$o/pe"
}

fail=0
for t in qcow2 qcow2w vmdk vhd vdi vhdx ova mbr gpt fat ext xfs btrfs ntfs lvm wof luks qcow2check vmdkcheck inspect; do
	echo "seeds: $t"
	seeds_$t || echo "seeds: $t: a generator failed" >&2
done
for d in qcow2 qcow2w qcow2check vmdkcheck vmdk vmdk-desc vhd vdi vhdx ova mbr gpt fat ext ext-fc xfs btrfs ntfs lvm lvm-label lvm-text xpress lzx luks inspect; do
	n=$(find "$OUT/$d" -type f 2>/dev/null | wc -l)
	echo "seeds: $d: $n"
	[ "$n" -gt 0 ] || fail=1
	big=$(find "$OUT/$d" -type f -size +4096k 2>/dev/null)
	[ -z "$big" ] || { echo "seeds: larger than 4 MiB: $big" >&2; fail=1; }
done
exit $fail
