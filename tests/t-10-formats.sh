#!/bin/bash
# Image formats, one layer each: raw, qcow2 v2/v3, cluster sizes, zero
# clusters, compression, extended L2, external data files, a sparse 1 TiB
# image, metadata preallocation, dirty and corrupt headers.
# Oracle: qemu-img convert -O raw.
. "$(dirname "$0")/lib.sh"

# 8 MiB plus 3.5 KiB: the last cluster is partial for every cluster size.
SIZE=$((8 * 1024 * 1024 + 3584))

# mkq OUT SEEDNO CONVERT-OPTIONS... — qcow2 from a seeded raw file, then
# scattered qemu-io writes on top.
mkq() {
	local out=$1 seed=$2
	shift 2
	seed_raw "$out.seed" "$SIZE"
	qemu-img convert -O qcow2 "$@" "$out.seed" "$out" || return 1
	rm -f "$out.seed"
	scatter qcow2 "$out" "$SIZE" "$seed"
}

# ------------------------------------------------------------ raw
gen_raw() {
	seed_raw disk.img "$SIZE"
	# A raw image whose size is not a multiple of 512.
	seed_raw odd.img 5000001
}

t_raw() {
	local d m
	d=$(img_or_die raw)
	mount_compare "$d/disk.img"
	# Raw: the file is its own oracle.
	m=$(vd_mnt raw)
	mount_ok "$m" "$d/disk.img" "$m"
	cmp_files "$m/disk.raw" "$d/disk.img"
	umount_ok "$m"
}

t_raw_odd() {
	local d m
	d=$(img_or_die raw)
	m=$(vd_mnt odd)
	mount_ok "$m" "$d/odd.img" "$m"
	check_root_tree "$m" 5000001
	cmp_files "$m/disk.raw" "$d/odd.img"
	umount_ok "$m"
}

# ------------------------------------------------------------ qcow2 versions, clusters
gen_qcow2() {
	mkq v2.qcow2 1 -o compat=0.10 || return 1
	mkq v2-4k.qcow2 2 -o compat=0.10,cluster_size=4096 || return 1
	mkq v3.qcow2 3 -o compat=1.1 || return 1
	mkq c512.qcow2 4 -o cluster_size=512 || return 1
	mkq c4k.qcow2 5 -o cluster_size=4096 || return 1
	mkq c2m.qcow2 6 -o cluster_size=2M || return 1
	mkq refcount1.qcow2 7 -o refcount_bits=1 || return 1
}

t_qcow2() {
	local d
	d=$(img_or_die qcow2)
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ zero clusters
gen_zero() {
	mkq zero-v3.qcow2 8 -o compat=1.1 || return 1
	# Whole-cluster zero over data (zero flag, allocation kept), unmapped
	# zero (-u), partial-cluster zero inside data, zero over unallocated
	# space, and data written again over part of a zero cluster.
	qio qcow2 zero-v3.qcow2 \
		"write -z 0 65536" \
		"write -z -u 196608 131072" \
		"write -z 70000 5000" \
		"write -z $((SIZE / 4)) 262144" \
		"write -z $((6 * 1048576)) 65536" \
		"write -P 0x5a $((SIZE / 4 + 1000)) 3000" \
		"write -z $((SIZE - 512)) 512" || return 1
	mkq zero-v2.qcow2 9 -o compat=0.10 || return 1
	qio qcow2 zero-v2.qcow2 "write -z 0 65536" "write -z 70000 5000" \
		"write -z -u 196608 131072" || return 1
	# Zero flags in a 512-byte-cluster image.
	mkq zero-c512.qcow2 10 -o cluster_size=512 || return 1
	qio qcow2 zero-c512.qcow2 "write -z 0 4096" "write -z 1000 24" \
		"write -z -u 65536 1024" || return 1
}

t_zero() {
	local d
	d=$(img_or_die zero)
	# Make sure qemu really left zero-flagged clusters in the v3 image.
	if [ "$1" = zero-v3.qcow2 ]; then
		qemu-img map --output=json "$d/$1" | grep -q '"zero": true, "data": false, "offset"' ||
			die "no zero-flagged allocated cluster in $1 (qemu-img map)"
	fi
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ compression
gen_comp() {
	local c t
	seed_raw seed.raw "$SIZE"
	for c in 512 4096 65536 2M; do
		for t in zlib zstd; do
			qemu-img convert -c -O qcow2 -o cluster_size=$c,compression_type=$t \
				seed.raw "comp-$c-$t.qcow2" || return 1
		done
	done
	# Compressed clusters mixed with plain ones written afterwards.
	cp comp-65536-zstd.qcow2 comp-mixed-zstd.qcow2
	scatter qcow2 comp-mixed-zstd.qcow2 "$SIZE" 11 || return 1
	cp comp-65536-zlib.qcow2 comp-mixed-zlib.qcow2
	scatter qcow2 comp-mixed-zlib.qcow2 "$SIZE" 12 || return 1
	# Compressed clusters in an extended-L2 image.
	qemu-img convert -c -O qcow2 -o extended_l2=on,compression_type=zstd \
		seed.raw comp-extl2.qcow2 || return 1
	rm -f seed.raw
}

t_comp() {
	local d
	d=$(img_or_die comp)
	qemu-img check "$d/$1" | grep -q 'compressed clusters' ||
		die "qemu-img check finds no compressed cluster in $1"
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ extended L2
gen_extl2() {
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k ext64k.qcow2 "$SIZE" || return 1
	# 64 KiB clusters: 2 KiB subclusters.
	qio qcow2 ext64k.qcow2 \
		"write -P 0x21 2048 2048" \
		"write -P 0x22 8191 2" \
		"write -P 0x23 65536 65536" \
		"write -z 67584 2048" \
		"write -z -u 71680 4096" \
		"write -P 0x24 $((SIZE / 2 + 30000)) 10000" \
		"write -z $((SIZE / 2 + 32768)) 2048" \
		"write -P 0x25 $((SIZE - 1000)) 1000" || return 1
	mkq ext32k.qcow2 13 -o extended_l2=on,cluster_size=32k || return 1
	qio qcow2 ext32k.qcow2 "write -z 1024 1024" "write -z -u 32768 3072" || return 1
	# Subclusters over a backing file: unallocated subclusters show the
	# backing file's bytes, zero subclusters hide them.
	mkq base.qcow2 14 -o cluster_size=4096 || return 1
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k \
		-b base.qcow2 -F qcow2 ext-over.qcow2 || return 1
	qio qcow2 ext-over.qcow2 \
		"write -P 0x31 2048 2048" \
		"write -z 6144 2048" \
		"write -P 0x32 $((65536 + 1000)) 100" \
		"write -z -u $((SIZE / 3 + 4096)) 4096" \
		"write -P 0x33 $((SIZE - 2048)) 2048" || return 1
}

t_extl2() {
	local d
	d=$(img_or_die extl2)
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ external data file
gen_datafile() {
	qemu-img create -q -f qcow2 -o data_file=plain.data df.qcow2 "$SIZE" || return 1
	scatter qcow2 df.qcow2 "$SIZE" 15 || return 1
	qemu-img create -q -f qcow2 -o data_file=raw.data,data_file_raw=on dfraw.qcow2 "$SIZE" || return 1
	scatter qcow2 dfraw.qcow2 "$SIZE" 16 || return 1
	qio qcow2 dfraw.qcow2 "write -z 0 4096" || return 1
}

t_datafile() {
	local d
	d=$(img_or_die datafile)
	mount_compare "$d/$1"
}

# ------------------------------------------------------------ 1 TiB sparse
TIB=$((1024 * 1024 * 1024 * 1024))
# offset length pattern
SPARSE_WRITES="0 4096 0x11
$((300 * 1024 * 1024 * 1024 + 12345)) 70000 0x22
$((512 * 1024 * 1024 * 1024)) 1048576 0x33
$((TIB - 700)) 700 0x44"

gen_sparse1t() {
	local cmds=() o l p
	qemu-img create -q -f qcow2 big.qcow2 1T || return 1
	while read -r o l p; do
		cmds+=("write -P $p $o $l")
	done <<<"$SPARSE_WRITES"
	qio qcow2 big.qcow2 "${cmds[@]}"
	qemu-img map --output=json big.qcow2 >big.map
}

t_sparse1t() {
	local d m o l p
	d=$(img_or_die sparse1t)
	m=$(vd_mnt big)
	mount_ok "$m" "$d/big.qcow2" "$m"
	check_root_tree "$m" "$TIB"
	# Each written extent with 64 KiB of context either side, and two
	# stretches that were never written.
	while read -r o l p; do
		# qemu's raw driver wants 512-byte multiples.
		local s=$((o > 65536 ? (o - 65536) / 512 * 512 : 0))
		local e=$(((o + l + 65536 + 511) / 512 * 512))
		[ "$e" -le "$TIB" ] || e=$TIB
		cmp_range "$m/disk.raw" "$d/big.qcow2" qcow2 "$s" $((e - s))
	done <<<"$SPARSE_WRITES"
	cmp_range "$m/disk.raw" "$d/big.qcow2" qcow2 $((100 * 1024 * 1024 * 1024)) 1048576
	cmp_range "$m/disk.raw" "$d/big.qcow2" qcow2 $((TIB - 3 * 1048576)) 1048576
	# Reading across the end gives the last bytes, then end of file.
	local n
	n=$(T dd if="$m/disk.raw" bs=4096 iflag=skip_bytes skip=$((TIB - 1000)) status=none | wc -c)
	[ "$n" = 1000 ] || die "read across end of disk gave $n bytes, expected 1000"
	T python3 -c 'import sys' || die "python3 missing"
	must seek_check "$m/disk.raw" "$d/big.map" "$SPARSE_WRITES"
	umount_ok "$m"
}

# cp --sparse=always can only finish a 1 TiB copy in time by seeking from
# data to data.
t_sparse1t_cp() {
	local d m o l p
	d=$(img_or_die sparse1t)
	m=$(vd_mnt big)
	mount_ok "$m" "$d/big.qcow2" "$m"
	local blocks
	blocks=$(stat -c %b "$m/disk.raw")
	# cp (coreutils >= 9) looks for holes with SEEK_DATA only in a file
	# whose st_blocks is below its size; otherwise it reads every byte.
	[ $((blocks * 512)) -lt "$TIB" ] ||
		die "disk.raw reports st_blocks $blocks (fully allocated), so cp --sparse=always reads all 1 TiB instead of seeking past holes"
	timeout -k 5 120 cp --sparse=always "$m/disk.raw" "$TD/copy.raw" ||
		die "cp --sparse=always of 1 TiB disk.raw did not finish in 120 s (st_blocks of disk.raw: $blocks)"
	[ "$(stat -c %s "$TD/copy.raw")" = "$TIB" ] || die "copy is not 1 TiB"
	local kib
	kib=$(du -k "$TD/copy.raw" | cut -f1)
	[ "$kib" -lt 65536 ] || die "copy uses $kib KiB on disk"
	while read -r o l p; do
		local s=$((o > 65536 ? (o - 65536) / 512 * 512 : 0))
		local n=$(((o + l - s + 511) / 512 * 512))
		range_oracle "$d/big.qcow2" qcow2 "$s" "$n" "$TD/want" || die "range oracle failed"
		dd if="$TD/copy.raw" of="$TD/got" bs=65536 iflag=skip_bytes,count_bytes \
			skip="$s" count="$n" status=none
		cmp "$TD/got" "$TD/want" >/dev/null || die "copy differs near $o"
	done <<<"$SPARSE_WRITES"
	rm -f "$TD/copy.raw"
	umount_ok "$m"
}

# ------------------------------------------------------------ preallocation, dirty, corrupt
gen_prealloc() {
	qemu-img create -q -f qcow2 -o preallocation=metadata meta.qcow2 "$SIZE" || return 1
	scatter qcow2 meta.qcow2 "$SIZE" 17 || return 1
	qemu-img create -q -f qcow2 -o preallocation=metadata,compat=0.10 meta-v2.qcow2 "$SIZE" || return 1
	scatter qcow2 meta-v2.qcow2 "$SIZE" 18
}

t_prealloc() {
	local d
	d=$(img_or_die prealloc)
	mount_compare "$d/$1"
}

gen_dirty() {
	mkq dirty.qcow2 19 -o lazy_refcounts=on || return 1
	# Killed by SIGKILL while the lazy-refcount image is open for writing:
	# the dirty bit stays set.
	{ qemu-io -f qcow2 -c "write -P 0x77 $((SIZE / 5)) 200000" -c "sigraise 9" dirty.qcow2; } >/dev/null 2>&1
	return 0
}

t_dirty() {
	local d m sum
	d=$(img_or_die dirty)
	qemu-img info --output=json "$d/dirty.qcow2" | grep -q '"dirty-flag": true' ||
		die "qemu-img info does not call dirty.qcow2 dirty"
	# Incompatible feature bit 0 (dirty), header offset 72.
	[ "$(peek "$d/dirty.qcow2" 79 1)" = 01 ] || die "dirty bit not set in the header"
	sum=$(md5sum <"$d/dirty.qcow2")
	mount_compare "$d/dirty.qcow2"
	[ "$(md5sum <"$d/dirty.qcow2")" = "$sum" ] || die "vdmount modified the image"
}

gen_corrupt() {
	mkq corrupt.qcow2 20 || return 1
	# Incompatible feature bit 1 (corrupt), header offset 72.
	local b
	b=$(peek corrupt.qcow2 79 1)
	poke corrupt.qcow2 79 "$(printf '%02x' $((0x$b | 2)))"
}

t_corrupt() {
	local d m sum
	d=$(img_or_die corrupt)
	qemu-img info "$d/corrupt.qcow2" | grep -q 'corrupt: true' || die "qemu does not see the corrupt bit"
	sum=$(md5sum <"$d/corrupt.qcow2")
	m=$(vd_mnt c)
	mount_ok "$m" "$d/corrupt.qcow2" "$m"
	grep -qi 'corrupt' "$TD/mount.err" ||
		die "no warning about the corrupt bit on stderr: $(cat "$TD/mount.err")"
	cmp_oracle "$m/disk.raw" "$d/corrupt.qcow2"
	umount_ok "$m"
	[ "$(md5sum <"$d/corrupt.qcow2")" = "$sum" ] || die "vdmount modified the image"
}

vd_test raw t_raw
vd_test raw-odd-size t_raw_odd
vd_test qcow2-v2 t_qcow2 v2.qcow2
vd_test qcow2-v2-cluster-4k t_qcow2 v2-4k.qcow2
vd_test qcow2-v3 t_qcow2 v3.qcow2
vd_test qcow2-cluster-512 t_qcow2 c512.qcow2
vd_test qcow2-cluster-4k t_qcow2 c4k.qcow2
vd_test qcow2-cluster-2M t_qcow2 c2m.qcow2
vd_test qcow2-refcount-bits-1 t_qcow2 refcount1.qcow2
vd_test zero-clusters-v3 t_zero zero-v3.qcow2
vd_test zero-writes-v2 t_zero zero-v2.qcow2
vd_test zero-clusters-512 t_zero zero-c512.qcow2
for c in 512 4096 65536 2M; do
	for t in zlib zstd; do
		vd_test compressed-$t-cluster-$c t_comp comp-$c-$t.qcow2
	done
done
vd_test compressed-zstd-then-written t_comp comp-mixed-zstd.qcow2
vd_test compressed-zlib-then-written t_comp comp-mixed-zlib.qcow2
vd_test compressed-extended-l2 t_comp comp-extl2.qcow2
vd_test extended-l2-64k t_extl2 ext64k.qcow2
vd_test extended-l2-32k t_extl2 ext32k.qcow2
vd_test extended-l2-over-backing t_extl2 ext-over.qcow2
vd_test data-file t_datafile df.qcow2
vd_test data-file-raw t_datafile dfraw.qcow2
vd_test sparse-1tib t_sparse1t
vd_test sparse-1tib-cp-sparse t_sparse1t_cp
vd_test prealloc-metadata t_prealloc meta.qcow2
vd_test prealloc-metadata-v2 t_prealloc meta-v2.qcow2
vd_test lazy-refcounts-dirty t_dirty
vd_test corrupt-bit-warns t_corrupt
vd_finish
