# bench/images.sh — the benchmark's images, made with qemu-img, qemu-io,
# sfdisk and mkfs.ext4 in $WORK, once: each group has a spec stamp
# ($WORK/GROUP.spec) and is remade only when the stamp differs from the
# spec below (or a file is missing). Every image has an equivalent raw
# file (sparse), the bytes every tool's output is checked against.
# shellcheck shell=bash

MIB=$((1024 * 1024))
GIB=$((1024 * MIB))
CLUSTER=65536

# The 4 GiB disks: 2 GiB of data in 1 MiB runs, each followed by a 1 MiB
# hole, so half of every read is holes (which each tool must return as
# zeros) and the data sits in 64 KiB clusters.
D_VSIZE=$((4 * GIB))
D_CHUNKS=2048
# The 20-deep chain: a 1 GiB base (512 MiB of data, same pattern) and 20
# qcow2 layers, each writing 8 scattered 64 KiB clusters.
C_VSIZE=$GIB
C_CHUNKS=512
C_DEPTH=20
# The GPT disk: ext4 in partition 1 at 1 MiB, holding big.bin (1 GiB of
# random bytes) and tree/ (20,000 generated files, ~0.5 GB).
G_BIG=$GIB
G_FILES=20000
G_OFFSET=$MIB
# The metadata disk (issue 28): ext4 holding one folder of $M_ENTRIES
# entries, as a guest's mail spool or cache folder would.
M_ENTRIES=100000

declare -A SPEC=(
	[rand]="v2 vsize=$D_VSIZE chunks=$D_CHUNKS cluster=$CLUSTER vmdk=monolithicSparse vhd=dynamic,force_size"
	[text]="v3 vsize=$D_VSIZE chunks=$D_CHUNKS cluster=$CLUSTER plain zlib zstd src=/usr"
	[chain]="v2 vsize=$C_VSIZE chunks=$C_CHUNKS depth=$C_DEPTH cluster=$CLUSTER"
	[tb1]="v2 vsize=1T writes=8x512K"
	[vx64]="v1 vsize=64T writes=8x512K"
	[vdi]="v1 from=rand.raw format=vdi-dynamic"
	[vhdx]="v1 from=rand vhdx=dynamic"
	[gpt]="v2 big=$G_BIG files=$G_FILES offset=$G_OFFSET seed=7 cluster=$CLUSTER"
	[ntfs]="v1 big=$G_BIG files=$G_FILES offset=$G_OFFSET seed=7 cluster=$CLUSTER"
	[xgpt]="v1 big=$G_BIG files=$G_FILES offset=$G_OFFSET seed=7 cluster=$CLUSTER xfs"
	[meta]="v2 entries=$M_ENTRIES offset=$G_OFFSET cluster=$CLUSTER kernel-made"
)
declare -A FILES_OF=(
	[rand]="rand.raw rand.qcow2 rand.vmdk rand.vhd"
	[text]="text.raw text.qcow2 zlib.qcow2"
	[chain]="chain.raw chain-$C_DEPTH.qcow2"
	[tb1]="tb1.qcow2"
	[vx64]="vx64.vhdx"
	[vdi]="rand.vdi"
	[vhdx]="rand.vhdx"
	[gpt]="gpt.raw gpt-p1.raw gpt.qcow2 gpt.size"
	[ntfs]="ntfs.raw ntfs-p1.raw ntfs.qcow2 ntfs.size"
	[xgpt]="xgpt.raw xgpt-p1.raw xgpt.qcow2 xgpt.size"
	[meta]="meta.raw meta-p1.raw meta.qcow2 meta.size"
)

# scatter SRC DST VSIZE CHUNKS: DST becomes a sparse VSIZE raw file holding
# SRC's CHUNKS 1 MiB chunks, chunk i at offset 2*i MiB.
scatter() {
	rm -f "$2"
	truncate -s "$3" "$2"
	python3 - "$1" "$2" "$4" <<'EOF'
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mib = 1 << 20
with open(src, "rb") as s, open(dst, "r+b") as d:
    for i in range(n):
        d.seek(2 * i * mib)
        d.write(s.read(mib))
EOF
}

img_rand() {
	say "  rand.raw: 2 GiB of /dev/urandom in a 4 GiB sparse disk"
	head -c $((D_CHUNKS * MIB)) /dev/urandom >"$WORK/src.tmp"
	scatter "$WORK/src.tmp" "$WORK/rand.raw" "$D_VSIZE" "$D_CHUNKS"
	rm -f "$WORK/src.tmp"
	say "  rand.qcow2, rand.vmdk (monolithicSparse), rand.vhd (dynamic): qemu-img convert"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/rand.raw" "$WORK/rand.qcow2"
	qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$WORK/rand.raw" "$WORK/rand.vmdk"
	# force_size: the VHD's size is exactly 4 GiB, not rounded to CHS
	qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$WORK/rand.raw" "$WORK/rand.vhd"
}

# Apart from rand's group, so that adding it did not remake those.
img_vdi() {
	say "  rand.vdi (dynamic, 1 MiB blocks): qemu-img convert of rand.raw"
	qemu-img convert -f raw -O vdi "$WORK/rand.raw" "$WORK/rand.vdi"
}

# The same data as VHDX (qemu-img's default 32 MiB blocks for 4 GiB); made
# after the rand group, from its rand.raw.
img_vhdx() {
	say "  rand.vhdx (dynamic): qemu-img convert of rand.raw"
	qemu-img convert -f raw -O vhdx -o subformat=dynamic "$WORK/rand.raw" "$WORK/rand.vhdx"
}

img_text() {
	local need=$((D_CHUNKS * MIB)) have
	# Compressible data that looks like a system disk: this machine's
	# /usr files, concatenated (compresses about 2.5:1).
	say "  text.raw: 2 GiB of files from /usr in a 4 GiB sparse disk"
	find /usr -xdev -type f -size +16k -print0 2>/dev/null | sort -z |
		xargs -0 cat 2>/dev/null | head -c "$need" >"$WORK/src.tmp" || true
	have=$(stat -c %s "$WORK/src.tmp")
	[ "$have" -gt 0 ] || die "found no files to read in /usr"
	while [ "$have" -lt "$need" ]; do # a small /usr: repeat what there is
		cat "$WORK/src.tmp" "$WORK/src.tmp" | head -c "$need" >"$WORK/src2.tmp" || true
		mv "$WORK/src2.tmp" "$WORK/src.tmp"
		have=$(stat -c %s "$WORK/src.tmp")
	done
	scatter "$WORK/src.tmp" "$WORK/text.raw" "$D_VSIZE" "$D_CHUNKS"
	rm -f "$WORK/src.tmp"
	say "  text.qcow2: qemu-img convert, uncompressed (convert's compressible input)"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/text.raw" "$WORK/text.qcow2"
	say "  zlib.qcow2: qemu-img convert -c, compression_type=zlib (about a minute)"
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=$CLUSTER,compression_type=zlib \
		"$WORK/text.raw" "$WORK/zlib.qcow2"
	say "  zstd.qcow2: qemu-img convert -c, compression_type=zstd"
	rm -f "$WORK/zstd.qcow2"
	if ! qemu-img convert -c -f raw -O qcow2 -o cluster_size=$CLUSTER,compression_type=zstd \
		"$WORK/text.raw" "$WORK/zstd.qcow2"; then
		rm -f "$WORK/zstd.qcow2"
		say "  (this qemu-img cannot write zstd clusters)"
	fi
}

img_chain() {
	local i k off prev cur
	say "  chain-00..$C_DEPTH.qcow2: a 1 GiB base with 512 MiB of random data, $C_DEPTH qcow2 layers (qemu-io writes)"
	head -c $((C_CHUNKS * MIB)) /dev/urandom >"$WORK/src.tmp"
	scatter "$WORK/src.tmp" "$WORK/chain-base.raw" "$C_VSIZE" "$C_CHUNKS"
	rm -f "$WORK/src.tmp"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/chain-base.raw" "$WORK/chain-00.qcow2"
	rm -f "$WORK/chain-base.raw"
	for ((i = 1; i <= C_DEPTH; i++)); do
		prev=$(printf 'chain-%02d.qcow2' $((i - 1)))
		cur=$(printf 'chain-%02d.qcow2' "$i")
		# relative backing names, resolved from the layer's folder
		(cd "$WORK" && qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER \
			-b "$prev" -F qcow2 "$cur")
		local cmds=()
		for ((k = 0; k < 8; k++)); do
			# scattered, repeatable cluster numbers over the 16384 of 1 GiB
			off=$(((i * 7919 + k * 104729) % 16384 * CLUSTER))
			cmds+=(-c "write -q -P $((i * 8 + k)) $off 64k")
		done
		qemu-io -f qcow2 "${cmds[@]}" "$WORK/$cur" >/dev/null
	done
	say "  chain.raw: qemu-img convert -O raw of the top layer"
	qemu-img convert -O raw "$WORK/chain-$C_DEPTH.qcow2" "$WORK/chain.raw"
}

img_tb1() {
	local cmds=() k
	say "  tb1.qcow2: 1 TiB virtual, 8 writes of 512 KiB spread over it"
	qemu-img create -q -f qcow2 -o cluster_size=$CLUSTER "$WORK/tb1.qcow2" 1T
	for ((k = 0; k < 8; k++)); do
		cmds+=(-c "write -q -P $((k + 1)) $((k * 128 + 3))G 512k")
	done
	qemu-io -f qcow2 "${cmds[@]}" "$WORK/tb1.qcow2" >/dev/null
}

img_vx64() {
	local cmds=() k
	say "  vx64.vhdx: 64 TiB virtual (VHDX's largest), 8 writes of 512 KiB spread over it"
	qemu-img create -q -f vhdx "$WORK/vx64.vhdx" 64T
	for ((k = 0; k < 8; k++)); do
		cmds+=(-c "write -q -P $((k + 1)) $((k * 8 + 3))T 512k")
	done
	qemu-io -f vhdx "${cmds[@]}" "$WORK/vx64.vhdx" >/dev/null
}

# gpt_disk STEM TYPE PSIZE: $WORK/STEM.raw, a GPT disk whose partition 1
# (sfdisk type TYPE, at G_OFFSET) holds $WORK/STEM-p1.raw (PSIZE bytes),
# its qcow2 $WORK/STEM.qcow2, and $WORK/STEM.size
gpt_disk() {
	local stem=$1 type=$2 psize=$3
	rm -f "$WORK/$stem.raw"
	truncate -s $((G_OFFSET + psize + MIB)) "$WORK/$stem.raw"
	printf 'label: gpt\nstart=%d, size=%d, type=%s\n' $((G_OFFSET / 512)) $((psize / 512)) "$type" |
		sfdisk -q "$WORK/$stem.raw" >/dev/null
	dd if="$WORK/$stem-p1.raw" of="$WORK/$stem.raw" bs=1M seek=$((G_OFFSET / MIB)) \
		conv=sparse,notrunc status=none
	say "  $stem.qcow2: qemu-img convert"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/$stem.raw" "$WORK/$stem.qcow2"
	echo "$psize" >"$WORK/$stem.size"
}

# The tree: $G_FILES files in 20 x 25 folders of 40 (and a symlink in
# each folder), sizes drawn from a fixed-seed generator: 60% under 4 KiB,
# 30% 4-64 KiB, 10% 64-256 KiB; names of varied length.
make_tree() {
	python3 - "$1" "$G_FILES" <<'EOF'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = ["alpha", "conf", "data", "lib", "x", "module-loader", "README",
         "index", "q", "a_rather_long_file_name_for_a_directory_entry"]
per_dir = 40
n = 0
for a in range(20):
    for b in range(25):
        d = os.path.join(root, "d%02d" % a, "%s-%02d" % (rng.choice(words), b))
        os.makedirs(d, exist_ok=True)
        for f in range(per_dir):
            if n >= total:
                break
            r = rng.random()
            if r < 0.6:
                size = rng.randrange(0, 4096)
            elif r < 0.9:
                size = rng.randrange(4096, 65536)
            else:
                size = rng.randrange(65536, 262144)
            name = "%s.%d" % (rng.choice(words), f)
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(rng.randbytes(size))
            n += 1
        os.symlink("../" + os.path.basename(d), os.path.join(d, "up-link"))
EOF
}

img_gpt() {
	local src=$WORK/gpt-src psize used
	say "  gpt.raw: GPT, partition 1 ext4 (mkfs.ext4 -d) with a 1 GiB file and $G_FILES files"
	rm -rf "$src"
	mkdir -p "$src/tree"
	head -c "$G_BIG" /dev/urandom >"$src/big.bin"
	make_tree "$src/tree"
	used=$(du -sb "$src" | awk '{ print $1 }')
	# room for the inode tables, the journal and 20% free
	psize=$(((used * 12 / 10 + 256 * MIB) / MIB * MIB))
	rm -f "$WORK/gpt-p1.raw"
	truncate -s "$psize" "$WORK/gpt-p1.raw"
	mkfs.ext4 -q -F -L bench -d "$src" "$WORK/gpt-p1.raw"
	rm -rf "$src"
	gpt_disk gpt linux "$psize"
}

# The metadata disk: GPT, ext4 in partition 1 holding many/, a folder of
# $M_ENTRIES entries (names of 8-40 bytes, modes 0600-0755 from a fixed
# seed; every 10th file holds 1-4000 bytes, the rest are empty; a
# symlink every 100), made through the kernel's read-write loop mount,
# so the folder is htree-indexed as a guest's would be (mkfs -d links
# entries one by one into a linear folder: hours for 100,000). 512 MiB:
# ext4 holds at most 32,768 inodes per 128 MiB group of 4 KiB blocks.
img_meta() {
	local m=$WORK/meta-mnt psize=$((512 * MIB))
	say "  meta.raw: GPT, partition 1 ext4 with a folder of $M_ENTRIES entries"
	rm -f "$WORK/meta-p1.raw"
	truncate -s "$psize" "$WORK/meta-p1.raw"
	mkfs.ext4 -q -F -L meta -N $((M_ENTRIES + 20000)) "$WORK/meta-p1.raw"
	mkdir -p "$m"
	mount -o loop "$WORK/meta-p1.raw" "$m"
	KMOUNTS+=("$m")
	mkdir "$m/many"
	python3 - "$m/many" "$M_ENTRIES" <<'PYEOF'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(28)
modes = [0o600, 0o640, 0o644, 0o644, 0o644, 0o755]
for i in range(total):
    name = "f%06d-%s" % (i, "x" * rng.randrange(0, 33))
    p = os.path.join(root, name)
    if i % 100 == 99:
        os.symlink("f%06d" % (i - 1), p)
        continue
    with open(p, "wb") as fh:
        if i % 10 == 0:
            fh.write(b"m" * rng.randrange(1, 4001))
    os.chmod(p, rng.choice(modes))
PYEOF
	kumount "$m"
	rmdir "$m"
	gpt_disk meta linux "$psize"
}

# The same disk with XFS (mkfs.xfs defaults) in partition 1, filled by
# the kernel's read-write loop mount (mkfs.xfs 6.1 has no -d DIR).
img_xgpt() {
	local src=$WORK/xgpt-src m=$WORK/xgpt-mnt psize used
	say "  xgpt.raw: GPT, partition 1 XFS (mkfs.xfs, filled by the kernel) with a 1 GiB file and $G_FILES files"
	rm -rf "$src"
	mkdir -p "$src/tree"
	head -c "$G_BIG" /dev/urandom >"$src/big.bin"
	make_tree "$src/tree"
	used=$(du -sb "$src" | awk '{ print $1 }')
	psize=$(((used * 12 / 10 + 256 * MIB) / MIB * MIB))
	rm -f "$WORK/xgpt-p1.raw"
	truncate -s "$psize" "$WORK/xgpt-p1.raw"
	mkfs.xfs -q -f -L bench "$WORK/xgpt-p1.raw"
	mkdir -p "$m"
	mount -o loop "$WORK/xgpt-p1.raw" "$m"
	cp -a "$src/big.bin" "$src/tree" "$m/"
	umount "$m"
	rmdir "$m"
	rm -rf "$src"
	gpt_disk xgpt linux "$psize"
}

# The same files on NTFS: mkntfs -Q, filled through ntfs-3g's read-write
# mount (the way files get onto NTFS here).
img_ntfs() {
	local src=$WORK/ntfs-src psize used m=$WORK/ntfs-rw
	say "  ntfs.raw: GPT, partition 1 NTFS (mkntfs, filled by ntfs-3g) with a 1 GiB file and $G_FILES files"
	rm -rf "$src"
	mkdir -p "$src/tree" "$m"
	head -c "$G_BIG" /dev/urandom >"$src/big.bin"
	make_tree "$src/tree"
	used=$(du -sb "$src" | awk '{ print $1 }')
	psize=$(((used * 12 / 10 + 256 * MIB) / MIB * MIB))
	rm -f "$WORK/ntfs-p1.raw"
	truncate -s "$psize" "$WORK/ntfs-p1.raw"
	mkntfs -Q -F -q -L bench "$WORK/ntfs-p1.raw" >/dev/null 2>&1 || die "mkntfs failed"
	ntfs-3g -o big_writes "$WORK/ntfs-p1.raw" "$m" || die "ntfs-3g (rw) failed"
	KMOUNTS+=("$m")
	# owners and modes do not go onto NTFS through ntfs-3g: cp says so
	cp -a "$src/." "$m/" 2>/dev/null || true
	kumount "$m"
	rm -rf "$src"
	gpt_disk ntfs EBD0A0A2-B9E5-4433-87C0-68B6B72699C7 "$psize"
}

# need_images GROUP...: make each group that is missing or stale
need_images() {
	local g f ok
	for g in "$@"; do
		ok=1
		[ "$(cat "$WORK/$g.spec" 2>/dev/null)" = "${SPEC[$g]}" ] || ok=0
		for f in ${FILES_OF[$g]}; do [ -f "$WORK/$f" ] || ok=0; done
		[ "$ok" = 0 ] || continue
		say "making the $g images in $WORK (once; later runs reuse them)"
		rm -f "$WORK/$g.spec"
		"img_$g"
		echo "${SPEC[$g]}" >"$WORK/$g.spec"
	done
}
