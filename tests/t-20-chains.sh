#!/bin/bash
# Backing chains: depth, overwrites in different layers, mixed cluster
# sizes, raw bases, short bases, relative paths, zero clusters over
# backing data, and the folders vdmount may open (--backing-dir).
# Oracle: qemu-img convert -O raw (it follows the chain itself).
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024 + 3584))

# layer OUT BACKING BACKFMT SEED [create options] — qcow2 over a backing
# file, with scattered writes plus one 4 KiB stamp at a seed-derived place.
layer() {
	local out=$1 back=$2 bfmt=$3 seed=$4
	shift 4
	qemu-img create -q -f qcow2 "$@" -b "$back" -F "$bfmt" "$out" || return 1
	scatter qcow2 "$out" "$SIZE" "$seed" || return 1
	qio qcow2 "$out" "write -P $(printf '0x%02x' $((seed + 0x40))) $((seed * 300000 + 1024)) 4096"
}

base() {
	local out=$1 seed=$2
	shift 2
	seed_raw "$out.seed" "$SIZE"
	qemu-img convert -O qcow2 "$@" "$out.seed" "$out" || return 1
	rm -f "$out.seed"
	scatter qcow2 "$out" "$SIZE" "$seed"
}

gen_chain3() {
	base base.qcow2 1 || return 1
	layer mid.qcow2 base.qcow2 qcow2 2 || return 1
	layer top.qcow2 mid.qcow2 qcow2 3
}

gen_chain20() {
	local i
	base l0.qcow2 0 || return 1
	for i in $(seq 1 19); do
		layer "l$i.qcow2" "l$((i - 1)).qcow2" qcow2 "$i" || return 1
	done
	# Zero clusters in the middle of the chain hide the layers below.
	qio qcow2 l7.qcow2 "write -z 0 131072" "write -z -u $((SIZE / 3)) 65536" || return 1
	# ... and data written later above them shows again.
	qio qcow2 l12.qcow2 "write -P 0xee 4096 8192"
}

gen_mixed() {
	base base.qcow2 1 -o cluster_size=2M || return 1
	layer c512.qcow2 base.qcow2 qcow2 2 -o cluster_size=512 || return 1
	layer c64k.qcow2 c512.qcow2 qcow2 3 -o cluster_size=65536 || return 1
	layer c4k.qcow2 c64k.qcow2 qcow2 4 -o cluster_size=4096 || return 1
	layer c16k-extl2.qcow2 c4k.qcow2 qcow2 5 -o cluster_size=16384,extended_l2=on || return 1
	# A v2 layer over v3 layers.
	layer v2.qcow2 c16k-extl2.qcow2 qcow2 6 -o compat=0.10,cluster_size=8192
}

gen_rawbase() {
	seed_raw base.raw "$SIZE"
	layer top.qcow2 base.raw raw 1 || return 1
	layer top2.qcow2 top.qcow2 qcow2 2
}

gen_short() {
	# A 1 MiB base under a larger child: the child reads zeros past the
	# end of the base.
	qemu-img create -q -f qcow2 base.qcow2 1M || return 1
	qio qcow2 base.qcow2 "write -P 0x66 0 1048576" || return 1
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 "$SIZE" || return 1
	qio qcow2 top.qcow2 "write -P 0x67 4096 4096" "write -P 0x68 $((SIZE - 4096)) 4096" || return 1
	# A raw base whose size is not a multiple of 512 nor of the cluster.
	head -c 1000001 /dev/urandom >odd.raw
	qemu-img create -q -f qcow2 -b odd.raw -F raw topodd.qcow2 "$SIZE" || return 1
	qio qcow2 topodd.qcow2 "write -P 0x69 0 512"
}

gen_relative() {
	mkdir -p sub/deeper
	base base.qcow2 1 || return 1
	# Each relative name is resolved from the folder of the image that
	# records it: sub/deeper/low.qcow2 names ../../base.qcow2.
	(cd sub/deeper && layer low.qcow2 ../../base.qcow2 qcow2 2) || return 1
	(cd sub && layer mid.qcow2 deeper/low.qcow2 qcow2 3) || return 1
	layer top.qcow2 sub/mid.qcow2 qcow2 4 || return 1
	qemu-img info --output=json top.qcow2 | grep -qF '"backing-filename": "sub/mid.qcow2"' || return 1
	qemu-img info --output=json sub/deeper/low.qcow2 |
		grep -qF '"backing-filename": "../../base.qcow2"' || return 1
	# Absolute backing paths inside the folder.
	layer abs.qcow2 "$1/sub/mid.qcow2" qcow2 5
}

gen_zeroback() {
	base base.qcow2 1 || return 1
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || return 1
	qio qcow2 top.qcow2 \
		"write -z 0 65536" \
		"write -z -u 131072 131072" \
		"write -z 300000 5000" \
		"write -z $((SIZE / 4)) 1048576" \
		"write -z $((SIZE - 65536)) 65536"
}

# Backing files in folders beside the top image's folder, which vdmount
# opens only when allowed with --backing-dir.
gen_outside() {
	mkdir -p A B C
	base B/base.qcow2 1 || return 1
	layer C/mid.qcow2 ../B/base.qcow2 qcow2 2 || return 1
	# Relative name leading out of A.
	layer A/rel.qcow2 ../B/base.qcow2 qcow2 3 || return 1
	# Absolute name outside A.
	layer A/abs.qcow2 "$1/B/base.qcow2" qcow2 4 || return 1
	# Two folders needed: A -> C -> B.
	layer A/two.qcow2 "$1/C/mid.qcow2" qcow2 5 || return 1
	# A symlink inside A that leads to B.
	ln -s ../B/base.qcow2 A/link.qcow2
	layer A/vialink.qcow2 link.qcow2 qcow2 6 || return 1
	# A symlink inside A that stays inside A.
	mkdir -p A/sub
	base A/sub/real.qcow2 7 || return 1
	ln -s sub/real.qcow2 A/inlink.qcow2
	layer A/viainlink.qcow2 inlink.qcow2 qcow2 8
}

# A raw backing file whose bytes begin with a qcow2 header (a guest disk
# that holds a qcow2 image, say). The child records "raw": the base must
# be read as the raw bytes it is, never probed and followed as qcow2.
gen_rawmagic() {
	qemu-img create -q -f qcow2 inner.qcow2 "$SIZE" || return 1
	qio qcow2 inner.qcow2 "write -P 0x77 0 65536" || return 1
	cp inner.qcow2 base.raw
	truncate -s "$SIZE" base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 || return 1
	qio qcow2 top.qcow2 "write -P 0x11 2097152 4096"
}

t_raw_magic() {
	local d m
	d=$(img_or_die rawmagic)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/top.qcow2" "$m"
	cmp_oracle "$m/disk.raw" "$d/top.qcow2"
	# The qcow2 magic shows through as data.
	[ "$(head -c 4 "$m/disk.raw" | od -An -tx1 | tr -d ' ')" = 514649fb ] ||
		die "the raw base was not read as raw"
	umount_ok "$m"
}

t_compare() {
	local d
	d=$(img_or_die "$1")
	mount_compare "$d/$2"
}

# Mount from another working folder so relative names must be resolved
# from the image's folder.
t_relative() {
	local d
	d=$(img_or_die relative)
	cd / || die "cd /"
	mount_compare "$d/$1"
}

# sub/mid.qcow2 -> deeper/low.qcow2 -> ../../base.qcow2 leads out of
# sub/, the top image's folder: refused, unless that folder is allowed.
t_relative_outside() {
	local d m
	d=$(img_or_die relative)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/sub/deeper/low.qcow2" "'$d/base.qcow2'" \
		"outside the allowed folders" "--backing-dir=" -- "$d/sub/mid.qcow2" "$m"
	mount_ok "$m" --backing-dir="$d" "$d/sub/mid.qcow2" "$m"
	cmp_oracle "$m/disk.raw" "$d/sub/mid.qcow2"
	umount_ok "$m"
}

# The image named by a relative path on the command line.
t_relative_arg() {
	local d m
	d=$(img_or_die relative)
	m=$(vd_mnt m)
	cd "$d/sub" || die "cd"
	mount_ok "$m" ../top.qcow2 "$m"
	cmp_oracle "$m/disk.raw" "$d/top.qcow2"
	umount_ok "$m"
}

t_backing_dir() {
	local d m
	d=$(img_or_die outside)
	m=$(vd_mnt m)
	case $1 in
	flag) mount_ok "$m" --backing-dir="$d/B" "$d/A/$2" "$m" ;;
	opt) mount_ok "$m" -o backing_dir="$d/B" "$d/A/$2" "$m" ;;
	two) mount_ok "$m" --backing-dir="$d/C" --backing-dir="$d/B" "$d/A/$2" "$m" ;;
	twoopt) mount_ok "$m" "$d/A/$2" "$m" -o "backing_dir=$d/C,backing_dir=$d/B" ;;
	none) mount_ok "$m" "$d/A/$2" "$m" ;;
	esac
	cmp_oracle "$m/disk.raw" "$d/A/$2"
	umount_ok "$m"
}

vd_test chain-3 t_compare chain3 top.qcow2
vd_test chain-3-middle t_compare chain3 mid.qcow2
vd_test chain-20 t_compare chain20 l19.qcow2
vd_test chain-20-layer-10 t_compare chain20 l10.qcow2
vd_test chain-mixed-cluster-sizes t_compare mixed c16k-extl2.qcow2
vd_test chain-mixed-with-v2 t_compare mixed v2.qcow2
vd_test chain-raw-base t_compare rawbase top.qcow2
vd_test chain-raw-base-2 t_compare rawbase top2.qcow2
vd_test raw-backing-with-qcow2-magic-not-probed t_raw_magic
vd_test backing-smaller-than-child t_compare short top.qcow2
vd_test backing-raw-odd-size t_compare short topodd.qcow2
vd_test zero-clusters-over-backing t_compare zeroback top.qcow2
vd_test relative-backing-subfolders t_relative top.qcow2
vd_test relative-backing-dotdot-outside t_relative_outside
vd_test absolute-backing-inside t_relative abs.qcow2
vd_test relative-image-argument t_relative_arg
vd_test backing-dir-flag-relative-name t_backing_dir flag rel.qcow2
vd_test backing-dir-flag-absolute-name t_backing_dir flag abs.qcow2
vd_test backing-dir-option t_backing_dir opt rel.qcow2
vd_test backing-dir-repeated t_backing_dir two two.qcow2
vd_test backing-dir-option-repeated t_backing_dir twoopt two.qcow2
vd_test backing-dir-via-symlink t_backing_dir flag vialink.qcow2
vd_test backing-symlink-inside-folder t_backing_dir none viainlink.qcow2
vd_finish
