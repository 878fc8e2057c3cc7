#!/bin/bash
# LVM2 logical volumes: every visible LV at the mount's root as VG-LV.raw
# (its bytes) and VG-LV/ (its files), named as device-mapper names them
# (a hyphen in a VG or LV name doubled), and the same names in vdtool's
# paths.
#
# Images are built at test time by lvm2's own tools (tests/mklvm.sh,
# tests/mklvm.py): pvcreate/vgcreate/lvcreate on loop partitions with
# activation disabled (this kernel has no device-mapper); raid1, mirror,
# raid5 and thin pools, which lvcreate refuses without device-mapper, by
# editing the metadata text and restoring it with vgcfgrestore (lvm2
# validates it); the LVs' bytes written at the extents lvm2 reports, thin
# volumes' through pool metadata written by thin_restore from a mapping
# we choose. Oracles: each LV's source file for VG-LV.raw; the kernel's
# ext4 or XFS mount of that file for VG-LV/ (tests/treecmp.py). The builders
# are checked against lvm2's own reports (segment types, extents, the
# missing PV), vslvminfo (libvslvm, a second reader of the metadata: the
# Ubuntu and 200-LV images; it cannot read raid or mirror metadata) and
# thin_dump/thin_check (the pool metadata read back from the disk
# rebuilds every thin volume); qemu-img for the qcow2 chain.
#
# Cases: an Ubuntu-server-like disk (GPT: ESP, /boot, PV holding
# ubuntu-vg/ubuntu-lv), also as a qcow2 chain and a VMDK; a RHEL-like
# one (XFS /boot, PV holding rhel/root on XFS and rhel/swap); a VG over four
# PVs holding an LV spanning two, an LV in three out-of-order segments,
# striped 2 and 3 ways, raid1, mirror, a thin pool with two thin volumes
# and a snapshot, and a raid5 (unsupported: not shown, one notice); a VG
# with a PV missing; two VGs with the same name; a VG of 200 LVs.
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/mklvm.sh"

dmname() { echo "${1//-/--}-${2//-/--}"; }

# ------------------------------------------------------------ images

# The tree every ext4 here is made from (each adds a file of its own).
gen_tree() {
	"$PY" "$MKTREE" --profile small --seed 86 tree
}

# Ubuntu server's layout: GPT, p1 ESP (FAT), p2 /boot (ext4), p3 a PV
# holding ubuntu-vg with one LV, ubuntu-lv (ext4), half the VG (the
# installer leaves the rest free). The LV's v1 is under a qcow2 whose
# child holds v2 (files changed by the kernel): base.qcow2, top.qcow2.
# ubuntu.qcow2 and ubuntu.vmdk hold v2 whole.
# Oracles: lv.img (v2), lv1.img (v1), boot.img, disk.raw (v2).
gen_ubuntu() {
	lvm_mkext lv1.img $((48 * MIB)) lv1 || return 1
	lvm_ext_change lv1.img lv.img ubuntu-v2 || return 1
	lvm_mkext boot.img $((24 * MIB)) boot || return 1
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -n ESP esp.img >/dev/null || return 1
	mkdir -p esp/EFI/ubuntu
	printf 'grub\n' >esp/EFI/ubuntu/grub.cfg
	TZ=UTC mcopy -s -m -i esp.img esp/* :: || return 1
	lvm_gpt disk.raw 136 8:esp 24:linux 100:lvm || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw boot.img "$(lvm_part_off disk.raw 2)" || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p3" || return 1
	lvmc vgcreate ubuntu-vg "${LDEV}p3" || return 1
	lvc -n ubuntu-lv -L 48m ubuntu-vg || return 1
	mlvm put ubuntu-vg ubuntu-lv=lv1.img || return 1
	mlvm pieces ubuntu-vg ubuntu-lv || return 1
	mlvm layout ubuntu-vg >layout.json || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw base.qcow2 || return 1
	# v2: the same disk with the LV's new bytes; the child holds only
	# the clusters that differ from base.qcow2.
	lvm_attach disk.raw || return 1
	mlvm put ubuntu-vg ubuntu-lv=lv.img || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 -B base.qcow2 -F qcow2 disk.raw top.qcow2 || return 1
	qemu-img convert -f raw -O qcow2 disk.raw ubuntu.qcow2 || return 1
	qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse disk.raw ubuntu.vmdk || return 1
	[ "$(qemu-img info --output=json top.qcow2 | grep -c backing-filename\")" -ge 1 ] || return 1
	rm -rf esp esp.img
}

# RHEL's server layout: GPT, p1 ESP (FAT), p2 /boot (XFS), p3 a PV
# holding rhel with root (XFS, filled by the kernel) and swap. Oracles:
# root.img, xboot.img (the kernel's XFS mounts them).
gen_rhel() {
	local tree
	tree=$(vd_img tree) || return 1
	for f in root:64 xboot:32; do
		truncate -s "$((${f#*:} * MIB))" "${f%%:*}.img"
		# Small test filesystems: mkfs.xfs wants 300 MB unless it
		# runs under xfstests' variables (as t-91-xfs does).
		TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f "${f%%:*}.img" || return 1
		vd_mount_rw "${f%%:*}.img" "${f%%:*}.mnt" || return 1
		# The tree but its devices (XFS refuses bigdev_b's numbers).
		tar -C "$tree/tree" --xattrs --sparse --exclude=./special -cf - . |
			tar -C "${f%%:*}.mnt" --xattrs -xf - &&
			printf 'rhel-%s\n' "${f%%:*}" >"${f%%:*}.mnt/tag" || { lvm_kumount "${f%%:*}.mnt"; return 1; }
		lvm_kumount "${f%%:*}.mnt" || return 1
	done
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -n ESP esp.img >/dev/null || return 1
	lvm_gpt disk.raw 120 8:esp 32:linux 76:lvm || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw xboot.img "$(lvm_part_off disk.raw 2)" || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p3" || return 1
	lvmc vgcreate rhel "${LDEV}p3" || return 1
	lvc -n swap -L 8m rhel || return 1
	lvc -n root -L 64m rhel || return 1
	truncate -s $((8 * MIB)) swap.img && mkswap -q swap.img >/dev/null || return 1
	mlvm put rhel root=root.img swap=swap.img || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw rhel.qcow2 || return 1
	rm -f esp.img disk.raw
}

# One VG, data-vg, over four PVs (p1..p4, 64 MiB each, 1 MiB extents):
#   span     linear, 12 extents on p1 then 12 on p2 (ext4)
#   my-frag  linear in three segments, the second before the first on
#            p3, the third on p4: created, then "gap" made, then
#            extended twice at given extents (ext4)
#   gap      linear, between my-frag's pieces (data)
#   st2      striped 2 ways, 64 KiB stripes (ext4)
#   st3      striped 3 ways, 16 KiB stripes (data)
#   st3b     striped 3 ways, 256 KiB stripes (data)
#   r1       raid1, two legs (ext4); r1_rmeta_N, r1_rimage_N hidden
#   mi       mirror, two legs and a log (data)
#   pool     thin pool (64 KiB chunks), not shown; pool_tdata, pool_tmeta
#   thin1    thin volume (ext4), thin2 (data), snap1 a snapshot of thin1
#            (thin1's ext4 changed by the kernel: shares unchanged chunks)
#   r5       raid5_ls over three devices: not shown, one notice
gen_multi() {
	local p
	lvm_mkext span.img $((24 * MIB)) span || return 1
	lvm_mkext my-frag.img $((20 * MIB)) my-frag || return 1
	lvm_mkext st2.img $((16 * MIB)) st2 || return 1
	lvm_mkext r1.img $((16 * MIB)) r1 || return 1
	lvm_mkext thin1.img $((24 * MIB)) thin1 || return 1
	lvm_ext_change thin1.img snap1.img snapshot || return 1
	lvm_data gap.img $((4 * MIB)) 76
	lvm_data st3.img $((12 * MIB)) 77
	lvm_data st3b.img $((6 * MIB)) 78
	lvm_data mi.img $((8 * MIB)) 79
	lvm_data thin2.img $((16 * MIB)) 80
	lvm_data r5.img $((1 * MIB)) 81
	lvm_gpt disk.raw 258 64:lvm 64:lvm 64:lvm 64:lvm || return 1
	lvm_attach disk.raw || return 1
	p=${LDEV}p
	lvmc pvcreate "${p}1" "${p}2" "${p}3" "${p}4" || return 1
	lvmc vgcreate -s 1m data-vg "${p}1" "${p}2" "${p}3" "${p}4" || return 1
	lvc -n span -l 24 data-vg "${p}1:0-11" "${p}2:0-11" || return 1
	lvc -n my-frag -l 8 data-vg "${p}3:20-27" || return 1
	lvc -n gap -l 4 data-vg "${p}3:0-3" || return 1
	lvmc lvextend -l +6 data-vg/my-frag "${p}3:4-9" || return 1
	lvmc lvextend -l +6 data-vg/my-frag "${p}4:30-35" || return 1
	lvc -n st2 -i 2 -I 64k -l 16 data-vg "${p}1" "${p}2" || return 1
	lvc -n st3 -i 3 -I 16k -l 12 data-vg "${p}1" "${p}2" "${p}3" || return 1
	lvc -n st3b -i 3 -I 256k -l 6 data-vg "${p}1" "${p}2" "${p}3" || return 1
	# What lvcreate cannot make without device-mapper, at extents we
	# choose (pv0..pv3 are p1..p4): raid1 legs and their metadata, the
	# mirror's legs and log, the pool's metadata and data (two
	# segments), the raid5's three images and metadata.
	mlvm edit data-vg \
		linear:r1+m0:pv0:26:1 linear:r1+i0:pv0:27:16 \
		linear:r1+m1:pv1:26:1 linear:r1+i1:pv1:27:16 \
		linear:mi+i0:pv2:28:8 linear:mi+i1:pv3:0:8 linear:mi+log:pv3:8:1 \
		linear:pool+tmeta:pv2:16:2 linear:pool+tdata:pv3:9:5:pv3:36:27 \
		linear:r5+m0:pv0:43:1 linear:r5+i0:pv0:44:1 linear:r5+m1:pv1:43:1 \
		linear:r5+i1:pv1:44:1 linear:r5+m2:pv2:18:1 linear:r5+i2:pv2:19:1 \
		raid:raid1:r1:2 mirror:mi:2 raid:raid5_ls:r5:3:64 \
		thinpool:pool:64 thinlv:pool:thin1:1:24 thinlv:pool:thin2:2:16 \
		thinlv:pool:snap1:3:24:thin1 || return 1
	# (raid5 is never read, but its images get bytes all the same.)
	mlvm put data-vg span=span.img my-frag=my-frag.img gap=gap.img st2=st2.img \
		st3=st3.img st3b=st3b.img r1=r1.img mi=mi.img \
		r5_rimage_0=r5.img r5_rimage_1=r5.img r5_rimage_2=r5.img || return 1
	mlvm thin data-vg pool thin1=thin1.img thin2=thin2.img snap1=snap1.img@thin1 || return 1
	mlvm thincheck data-vg pool thin1=thin1.img thin2=thin2.img snap1=snap1.img || return 1
	mlvm pieces data-vg span my-frag st3 || return 1
	mlvm layout data-vg >layout.json || return 1
	mlvm lvm lvs -a --segments -o lv_name,segtype,seg_pe_ranges data-vg >lvs.txt || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw multi.qcow2 || return 1
	rm -f disk.raw
}

# A VG over p1 and p2 whose second PV is gone (p2 zeroed whole):
#   whole1 on p1 only (shown), both on p1 and p2, whole2 on p2 only (not
#   shown). gone.uuid: p2's PV UUID.
gen_missing() {
	lvm_data whole1.img $((8 * MIB)) 91
	lvm_gpt disk.raw 66 32:lvm 32:lvm || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p1" "${LDEV}p2" || return 1
	lvmc vgcreate half-vg "${LDEV}p1" "${LDEV}p2" || return 1
	lvc -n whole1 -l 2 half-vg "${LDEV}p1" || return 1
	lvc -n both -l 4 half-vg "${LDEV}p1:2-3" "${LDEV}p2:0-1" || return 1
	lvc -n whole2 -l 2 half-vg "${LDEV}p2" || return 1
	lvm_data both.img $((16 * MIB)) 92
	lvm_data whole2.img $((8 * MIB)) 93
	mlvm put half-vg whole1=whole1.img both=both.img whole2=whole2.img || return 1
	mlvm lvm pvs --noheadings -o pv_uuid "${LDEV}p2" | tr -d ' \n' >gone.uuid || return 1
	[ -s gone.uuid ] || return 1
	lvm_detach || return 1
	dd if=/dev/zero of=disk.raw bs=1M seek=33 count=32 conv=notrunc status=none
	# lvm2's own view now: whole1 intact, both and whole2 partial ("p"
	# in the attributes' 9th place), the UUID of p2 missing.
	lvm_attach disk.raw || return 1
	mlvm lvm lvs --noheadings -o lv_name,lv_attr half-vg >lvs.txt 2>lvs.err
	lvm_detach || return 1
	awk '$1 == "whole1" && substr($2, 9, 1) != "p" { a = 1 }
		$1 == "both" && substr($2, 9, 1) == "p" { b = 1 }
		$1 == "whole2" && substr($2, 9, 1) == "p" { c = 1 }
		END { exit !(a && b && c) }' lvs.txt || { cat lvs.txt lvs.err; return 1; }
	grep -qF "$(cat gone.uuid)" lvs.err || { cat lvs.err; return 1; }
	qemu-img convert -f raw -O qcow2 disk.raw missing.qcow2 || return 1
	rm -f disk.raw
}

# Two VGs named dup-vg (made on two loop files, one PV each, then copied
# into p1 and p2 of one GPT disk), each with an LV "lv" of its own bytes.
# pN.uuid: the VG UUID on partition N.
gen_dup() {
	local n
	for n in 1 2; do
		truncate -s $((32 * MIB)) "pv$n.img"
		LDEV=$(losetup -f --show "pv$n.img") || return 1
		echo "$LDEV" >>"$VD_LOOPS"
		export MKLVM_DEVICES=$LDEV
		LVMCONF=$(mlvm config) || return 1
		LDIR=$PWD/.lvm
		lvmc pvcreate "$LDEV" || return 1
		lvmc vgcreate dup-vg "$LDEV" || return 1
		lvc -n lv -l 3 dup-vg || return 1
		lvm_data "lv$n.img" $((12 * MIB)) $((100 + n))
		mlvm put dup-vg "lv=lv$n.img" || return 1
		mlvm lvm vgs --noheadings -o vg_uuid dup-vg | tr -d ' \n' >"p$n.uuid" || return 1
		lvm_detach || return 1
	done
	lvm_gpt disk.raw 66 32:lvm 32:lvm || return 1
	lvm_place disk.raw pv1.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw pv2.img "$(lvm_part_off disk.raw 2)" || return 1
	# lvm2's own view of the disk: two VGs named dup-vg, ours.
	lvm_attach disk.raw || return 1
	mlvm lvm vgs --noheadings -o vg_name,vg_uuid >vgs.txt 2>vgs.err
	lvm_detach || return 1
	[ "$(grep -c 'dup-vg' vgs.txt)" = 2 ] && grep -qF "$(cat p1.uuid)" vgs.txt &&
		grep -qF "$(cat p2.uuid)" vgs.txt || { cat vgs.txt vgs.err; return 1; }
	qemu-img convert -f raw -O qcow2 disk.raw dup.qcow2 || return 1
	rm -f disk.raw pv1.img pv2.img
}

# A VG of 200 linear LVs (lv000..lv199, 1 to 3 extents of 64 KiB each),
# made in one metadata edit; each LV's own random bytes in lvNNN.img.
gen_many() {
	local k specs=()
	lvm_gpt disk.raw 40 38:lvm || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p1" || return 1
	lvmc vgcreate -s 64k many-vg "${LDEV}p1" || return 1
	mlvm edit many-vg many:lv:200:0:pv0 || return 1
	"$PY" -c '
import os
for k in range(200):
    with open("lv%03d.img" % k, "wb") as f:
        f.write(os.urandom((1 + k % 3) * 65536))' || return 1
	for k in $(seq 0 199); do
		specs+=("$(printf 'lv%03d=lv%03d.img' "$k" "$k")")
	done
	mlvm put many-vg "${specs[@]}" || return 1
	mlvm layout many-vg >layout.json || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw many.qcow2 || return 1
	rm -f disk.raw
}

# ------------------------------------------------------------ helpers

# lv_entries MNT — the mount's root entries other than disk.raw, pN.raw
# and pN, sorted.
lv_entries() {
	T ls -A "$1" | grep -vE '^(disk\.raw|p[0-9]+(\.raw)?)$' | LC_ALL=C sort
}

# check_root MNT RAW... -- DIR... — inside a test: the LV entries at the
# root are exactly NAME.raw for each RAW and NAME/ for each DIR.
check_root() {
	local m=$1 want=() n got
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		want+=("$1.raw")
		shift
	done
	shift
	for n in "$@"; do want+=("$n"); done
	got=$(lv_entries "$m") || die "ls $m failed"
	[ "$got" = "$(printf '%s\n' "${want[@]}" | LC_ALL=C sort)" ] ||
		die "LV entries: got '$(echo $got)', expected '$(printf '%s\n' "${want[@]}" | LC_ALL=C sort | tr '\n' ' ')'"
	for n in "$@"; do
		T test -d "$m/$n" || die "$m/$n is not a folder"
	done
}

# check_raw MNT NAME ORACLE — inside a test: NAME.raw is ORACLE's bytes,
# read whole and at random.
check_raw() {
	T test -f "$1/$2.raw" || die "no $2.raw (ls: $(ls "$1" | tr '\n' ' '))"
	cmp_files "$1/$2.raw" "$3"
	must random_reads "$1/$2.raw" "$3" 100 >/dev/null
}

# check_tree MNT NAME ORACLE — inside a test: NAME/ against the kernel's
# ext4 mount of ORACLE.
check_tree() {
	local k=$TD/k-$2
	T test -d "$1/$2" || die "no $2/ (ls: $(ls "$1" | tr '\n' ' '))"
	kmount "$3" 0 "$(stat -c %s "$3")" "$k"
	treecmp "$k" "$1/$2" >/dev/null
	kumount_ok "$k"
}

# check_seek MNT NAME PIECES — inside a test: the data extents lseek
# reports over NAME.raw are disk.raw's over the LV's pieces (lines
# "LVOFF DISKOFF LEN" from mklvm.py pieces), shifted to the LV's offsets
# and merged.
check_seek() {
	local m=$1 name=$2 pieces=$3
	T "$PY" - "$VD_LIB_DIR" "$m/disk.raw" "$m/$name.raw" "$pieces" >"$TD/seek.out" 2>&1 <<-'EOF' ||
		import os, sys
		sys.path.insert(0, sys.argv[1])
		from seekmap import data_extents
		disk, lv, pieces = sys.argv[2:]
		dfd, lfd = os.open(disk, os.O_RDONLY), os.open(lv, os.O_RDONLY)
		want = []
		for line in open(pieces):
		    lo, do, n = map(int, line.split())
		    for s, e in data_extents(dfd, do, do + n):
		        s, e = max(s, do) - do + lo, min(e, do + n) - do + lo
		        if want and want[-1][1] == s:
		            want[-1][1] = e
		        elif s < e:
		            want.append([s, e])
		got = [list(x) for x in data_extents(lfd, 0, os.fstat(lfd).st_size)]
		if got != want:
		    sys.exit("%s: lseek data extents %s, expected %s" % (lv, got[:8], want[:8]))
		print(len(got), "extents match")
	EOF
		die "$(tail -n 2 "$TD/seek.out" | tr '\n' ' ')"
}

# mount_lvm GEN FILE — inside a test: mount GEN's FILE at MNT; IMGDIR is
# GEN's folder; stderr (the notices) in $TD/mount.err.
mount_lvm() {
	need_loop
	IMGDIR=$(img_or_die "$1") || exit 1
	MNT=$(vd_mnt m)
	mount_ok "$MNT" "$IMGDIR/$2" "$MNT"
}

vdt() { T "$VDTOOL" "$@"; }

# check_info IMG WORD... — inside a test: `vdtool info IMG` names every
# WORD (VG and LV names, segment types), and `vdtool info --json IMG`
# parses and holds every WORD too. The one place that knows the format of
# info's LVM part, which is not settled yet: keep these loose.
check_info() {
	local img=$1 w
	shift
	vdt info "$img" >"$TD/info.txt" 2>"$TD/info.err" ||
		die "vdtool info $img failed: $(head -c 300 "$TD/info.err")"
	vdt info --json "$img" >"$TD/info.json" 2>>"$TD/info.err" ||
		die "vdtool info --json $img failed: $(head -c 300 "$TD/info.err")"
	"$PY" -m json.tool "$TD/info.json" >/dev/null 2>"$TD/json.err" ||
		die "vdtool info --json is not JSON: $(head -c 200 "$TD/json.err")"
	for w in "$@"; do
		grep -qF -- "$w" "$TD/info.txt" || die "vdtool info does not name '$w'"
		grep -qF -- "$w" "$TD/info.json" || die "vdtool info --json does not name '$w'"
	done
}

# one_notice FILE WORD... — inside a test: exactly one line of FILE holds
# every WORD (case-insensitive).
one_notice() {
	local f=$1 n
	shift
	n=$("$PY" - "$f" "$@" <<-'EOF'
		import sys
		words = [w.lower() for w in sys.argv[2:]]
		print(sum(all(w in l.lower() for w in words) for l in open(sys.argv[1], errors="replace")))
	EOF
	)
	[ "$n" = 1 ] || die "$n lines of the mount's messages name '$*' (want one): $(head -c 400 "$f" | tr '\n' '|')"
}

# ------------------------------------------------------------ tests:
# the builders and oracles (these pass without the product)

# lvm2's report of each image is what the builders meant, and libvslvm (a
# second reader of the metadata) places every linear and striped LV where
# lvm2 does.
t_builders() {
	local d off raw
	need_loop
	d=$(img_or_die ubuntu) || exit 1
	off=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["partitiontable"]["partitions"][2]["start"] * 512)' "$d/disk.raw.json")
	T vslvminfo -o "$off" "$d/disk.raw" >vi.txt 2>&1 || die "vslvminfo failed: $(tail -n 3 vi.txt)"
	grep -q 'Name:.*ubuntu-vg' vi.txt && grep -q 'Name:.*ubuntu-lv' vi.txt ||
		die "vslvminfo does not see ubuntu-vg/ubuntu-lv: $(head -c 300 vi.txt)"
	must "$PY" "$MKLVM" vslvmcheck "$d/layout.json" vi.txt
	# The chain: qemu-img's view of the top is v2, of the base v1.
	cmp -s "$(vd_oracle "$d/top.qcow2")" "$d/disk.raw" || die "top.qcow2 is not disk.raw"
	[ "$(qemu-img map --output=json "$d/top.qcow2" | grep -c '"depth": 0, "present": true')" -gt 0 ] ||
		die "top.qcow2 holds no clusters of its own"

	d=$(img_or_die multi) || exit 1
	"$PY" - "$d/layout.json" >check.out 2>&1 <<-'EOF' || die "lvm2 reports otherwise: $(tail -n 3 check.out | tr '\n' ' ')"
		import json, sys
		lay = json.load(open(sys.argv[1]))
		lvs = lay["lvs"]
		def types(n): return [s["type"] for s in lvs[n]["segs"]]
		def want(c, m):
		    if not c: sys.exit(m)
		want(len(lay["pvs"]) == 4, "not 4 PVs")
		want(set(types("span")) == {"linear"} and
		     len({r[0] for s in lvs["span"]["segs"] for r in s["ranges"]}) == 2, "span is not on two PVs")
		f = lvs["my-frag"]["segs"]
		want(len(f) == 3 and all(s["type"] == "linear" for s in f), "my-frag: %s" % f)
		want(f[1]["ranges"][0][1] < f[0]["ranges"][0][1], "my-frag's segments are in order")
		want(f[2]["ranges"][0][0] != f[0]["ranges"][0][0], "my-frag's third segment is on the same PV")
		for n, k, ss in (("st2", 2, 65536), ("st3", 3, 16384), ("st3b", 3, 262144)):
		    s = lvs[n]["segs"][0]
		    want(s["type"] == "striped" and s["stripes"] == k and s["stripe_size"] == ss, "%s: %s" % (n, s))
		want(types("r1") == ["raid1"] and types("mi") == ["mirror"] and types("r5") == ["raid5_ls"], "raid types")
		want(types("pool") == ["thin-pool"], "pool")
		for n in ("thin1", "thin2", "snap1"):
		    want(types(n) == ["thin"] and lvs[n]["pool"] == "pool", n)
		want(lvs["snap1"]["origin"] == "thin1", "snap1's origin")
		for n in ("r1_rimage_0", "r1_rmeta_1", "mi_mimage_1", "mi_mlog", "pool_tdata", "pool_tmeta"):
		    want(n in lvs, "no hidden " + n)
	EOF
	# (libvslvm 20181227 cannot read this VG: it fails on the mirror's
	# and raids' lists, so no second reader here.)
	# thin_dump of the pool metadata as written read back the volumes
	# (checked when the image was built; the snapshot shares chunks).
	"$PY" - "$d/pool.map.json" <<-'EOF' || die "snap1 shares no chunk with thin1, or all"
		import json, sys
		m = json.load(open(sys.argv[1]))
		shared = set(m["thin1"].values()) & set(m["snap1"].values())
		sys.exit(not (0 < len(shared) < len(m["snap1"])))
	EOF
	grep -q range_mapping "$d/pool.xml" && grep -q single_mapping "$d/pool.xml" ||
		die "pool.xml lacks range or single mappings"

	if [ "${VD_FULL:-0}" = 1 ]; then
		d=$(img_or_die many) || exit 1
		off=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["partitiontable"]["partitions"][0]["start"] * 512)' "$d/disk.raw.json")
		raw=$(vd_oracle "$d/many.qcow2") || die "qemu-img convert failed"
		T vslvminfo -o "$off" "$raw" >vi.txt 2>&1 || die "vslvminfo failed: $(tail -n 3 vi.txt)"
		must "$PY" "$MKLVM" vslvmcheck "$d/layout.json" vi.txt | grep -q '^200 LVs compared' ||
			die "vslvminfo does not agree on the 200 LVs"
		[ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["lvs"]))' "$d/layout.json")" = 200 ] ||
			die "many-vg does not hold 200 LVs"
	fi
	d=$(img_or_die missing) || exit 1
	d=$(img_or_die dup) || exit 1
	[ "$(cat "$d/p1.uuid")" != "$(cat "$d/p2.uuid")" ] || die "the two dup-vg have one UUID"
}

# The ext4 oracles hold what the kernel sees: the changed copy differs
# from its original where lvm_ext_change changed it. (Every other ext4
# oracle is mounted by the kernel in the test that uses it.)
t_oracles() {
	local d
	need_loop
	d=$(img_or_die ubuntu) || exit 1
	kmount "$d/lv.img" 0 "$(stat -c %s "$d/lv.img")" "$TD/k2"
	kmount "$d/lv1.img" 0 "$(stat -c %s "$d/lv1.img")" "$TD/k1"
	[ "$(cat "$TD/k2/changed/hostname")" = ubuntu-v2 ] || die "lv.img lacks changed/hostname"
	T test -e "$TD/k1/changed" && die "lv1.img holds changed/"
	T "$PY" "$TREECMP" "$TD/k1" "$TD/k2" >/dev/null 2>&1 && die "v1 and v2 do not differ"
	kumount_ok "$TD/k1"
	kumount_ok "$TD/k2"
	d=$(img_or_die multi) || exit 1
	[ "$(debugfs -R 'cat /changed/hostname' "$d/snap1.img" 2>/dev/null)" = snapshot ] ||
		die "snap1.img lacks changed/hostname"
	debugfs -R 'stat /changed' "$d/thin1.img" 2>&1 | grep -q 'File not found' ||
		die "thin1.img holds changed/"
}

# ------------------------------------------------------------ tests:
# the product

t_ubuntu_root() {
	local n
	mount_lvm ubuntu ubuntu.qcow2
	n=$(dmname ubuntu-vg ubuntu-lv)
	[ "$n" = ubuntu--vg-ubuntu--lv ] || die "dmname gives $n"
	check_root "$MNT" "$n" -- "$n"
	T test -f "$MNT/p3.raw" || die "no p3.raw for the PV partition"
	T test -e "$MNT/p3" && die "p3/ exists for a PV"
	T test -d "$MNT/p2" || die "no p2/ for /boot"
	umount_ok "$MNT"
}

t_ubuntu_lv() {
	mount_lvm ubuntu ubuntu.qcow2
	check_raw "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	check_tree "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	check_tree "$MNT" p2 "$IMGDIR/boot.img"
	[ "$(cat "$MNT/ubuntu--vg-ubuntu--lv/changed/hostname")" = ubuntu-v2 ] ||
		die "changed/hostname is not ubuntu-v2"
	umount_ok "$MNT"
}

t_ubuntu_seek() {
	mount_lvm ubuntu ubuntu.qcow2
	check_seek "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/ubuntu-lv.pieces"
	umount_ok "$MNT"
}

t_ubuntu_vdtool() {
	local img n=ubuntu--vg-ubuntu--lv
	[ "$(id -u)" = 0 ] || skip_test "not root: owners and device nodes"
	mount_lvm ubuntu ubuntu.qcow2
	img=$IMGDIR/ubuntu.qcow2
	kmount "$IMGDIR/lv.img" 0 "$(stat -c %s "$IMGDIR/lv.img")" "$TD/k"
	must vdt ls "$img" >root.got
	grep -qx "$n.raw" root.got && grep -qx "$n" root.got ||
		die "vdtool ls / lacks $n and $n.raw: $(tr '\n' ' ' <root.got)"
	must vdt ls "$img" "/$n/files" >ls.got
	LC_ALL=C ls "$TD/k/files" >ls.want
	cmp -s ls.got ls.want || die "vdtool ls /$n/files differs: $(diff ls.got ls.want | head -4 | tr '\n' ' ')"
	vdt cat "$img" "/$n/changed/hostname" >host.got || die "vdtool cat /$n/changed/hostname failed"
	cmp -s host.got "$TD/k/changed/hostname" || die "vdtool cat of hostname differs"
	vdt cat "$img" "/$n/files/size_4097" | cmp -s - "$TD/k/files/size_4097" ||
		die "vdtool cat /$n/files/size_4097 differs"
	vdt cat "$img" "/$n.raw" | cmp -s - "$IMGDIR/lv.img" || die "vdtool cat /$n.raw differs from the LV"
	mkdir out
	# As cp(1) does: the folder itself lands in out/.
	must vdt cp -r -p "$img" "/$n/" out/ >/dev/null
	must T "$PY" "$TREECMP" --ignore ctime,blocks,dirsize "$TD/k" "out/$n" >/dev/null
	kumount_ok "$TD/k"
	umount_ok "$MNT"
}

t_ubuntu_info() {
	need_loop
	IMGDIR=$(img_or_die ubuntu) || exit 1
	check_info "$IMGDIR/ubuntu.qcow2" ubuntu-vg ubuntu-lv linear
}

# The LV's bytes split between a qcow2 and its backing file; a VMDK.
t_ubuntu_chain() {
	mount_lvm ubuntu top.qcow2
	check_raw "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	check_tree "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	umount_ok "$MNT"
	MNT=$(vd_mnt base)
	mount_ok "$MNT" "$IMGDIR/base.qcow2" "$MNT"
	check_raw "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv1.img"
	umount_ok "$MNT"
}

t_ubuntu_vmdk() {
	mount_lvm ubuntu ubuntu.vmdk
	check_root "$MNT" ubuntu--vg-ubuntu--lv -- ubuntu--vg-ubuntu--lv
	check_raw "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	check_tree "$MNT" ubuntu--vg-ubuntu--lv "$IMGDIR/lv.img"
	umount_ok "$MNT"
}

MULTI_RAW="span my-frag gap st2 st3 st3b r1 mi thin1 thin2 snap1"
MULTI_FS="span my-frag st2 r1 thin1 snap1"

# Visible LVs shown, hidden sub-LVs, the pool and the raid5 not; one
# notice naming raid5.
# XFS on an LV and on a partition beside it, against the kernel's XFS.
t_rhel() {
	mount_lvm rhel rhel.qcow2
	check_root "$MNT" rhel-root rhel-swap -- rhel-root
	check_raw "$MNT" rhel-root "$IMGDIR/root.img"
	check_raw "$MNT" rhel-swap "$IMGDIR/swap.img"
	check_tree "$MNT" rhel-root "$IMGDIR/root.img"
	check_tree "$MNT" p2 "$IMGDIR/xboot.img"
	[ "$(cat "$MNT/rhel-root/tag")" = rhel-root ] || die "rhel-root/tag is wrong"
	umount_ok "$MNT"
}

t_multi_root() {
	local n raws=() dirs=()
	mount_lvm multi multi.qcow2
	for n in $MULTI_RAW; do raws+=("$(dmname data-vg "$n")"); done
	for n in $MULTI_FS; do dirs+=("$(dmname data-vg "$n")"); done
	check_root "$MNT" "${raws[@]}" -- "${dirs[@]}"
	for n in 1 2 3 4; do
		T test -f "$MNT/p$n.raw" || die "no p$n.raw"
		T test -e "$MNT/p$n" && die "p$n/ exists for a PV"
	done
	one_notice "$TD/mount.err" raid5
	umount_ok "$MNT"
}

# t_multi_lv LV — its bytes, and its files when it holds an ext4.
t_multi_lv() {
	local n
	mount_lvm multi multi.qcow2
	n=$(dmname data-vg "$1")
	check_raw "$MNT" "$n" "$IMGDIR/$1.img"
	[[ " $MULTI_FS " != *" $1 "* ]] || check_tree "$MNT" "$n" "$IMGDIR/$1.img"
	umount_ok "$MNT"
}

t_multi_seek() {
	local lv
	mount_lvm multi multi.qcow2
	for lv in span my-frag; do
		check_seek "$MNT" "$(dmname data-vg "$lv")" "$IMGDIR/$lv.pieces"
	done
	umount_ok "$MNT"
}

t_multi_info() {
	need_loop
	IMGDIR=$(img_or_die multi) || exit 1
	check_info "$IMGDIR/multi.qcow2" data-vg span my-frag st2 st3 r1 mi thin1 snap1 \
		linear striped raid1 mirror thin
}

# vdtool's paths reach LVs of every kind: a striped LV's bytes, a thin
# snapshot's files, a raid1's.
t_multi_vdtool() {
	local img
	need_loop
	IMGDIR=$(img_or_die multi) || exit 1
	img=$IMGDIR/multi.qcow2
	vdt cat "$img" /data--vg-st3.raw | cmp -s - "$IMGDIR/st3.img" ||
		die "vdtool cat /data--vg-st3.raw differs from st3.img"
	vdt cat "$img" /data--vg-thin2.raw | cmp -s - "$IMGDIR/thin2.img" ||
		die "vdtool cat /data--vg-thin2.raw differs from thin2.img"
	vdt cat "$img" /data--vg-snap1/changed/hostname >host.got 2>host.err ||
		die "vdtool cat /data--vg-snap1/changed/hostname failed: $(head -c 200 host.err)"
	[ "$(cat host.got)" = snapshot ] || die "snap1's changed/hostname is '$(cat host.got)'"
	vdt cat "$img" /data--vg-thin1/changed/hostname >/dev/null 2>&1 &&
		die "thin1 (the origin) holds the snapshot's changed/hostname"
	kmount "$IMGDIR/r1.img" 0 "$(stat -c %s "$IMGDIR/r1.img")" "$TD/k"
	# (Notices about the VG go to stderr, the listing to stdout.)
	vdt ls "$img" /data--vg-r1/files >ls.got 2>ls.err ||
		die "vdtool ls /data--vg-r1/files failed: $(head -c 200 ls.err)"
	LC_ALL=C ls "$TD/k/files" >ls.want
	cmp -s ls.got ls.want || die "vdtool ls /data--vg-r1/files differs: $(diff ls.got ls.want | head -4 | tr '\n' ' ')"
	kumount_ok "$TD/k"
}

t_missing() {
	local uuid
	mount_lvm missing missing.qcow2
	check_root "$MNT" half--vg-whole1 --
	check_raw "$MNT" half--vg-whole1 "$IMGDIR/whole1.img"
	# The UUID as lvm2 prints it, or without its hyphens.
	uuid=$(cat "$IMGDIR/gone.uuid")
	grep -qF -- "$uuid" "$TD/mount.err" || uuid=${uuid//-/}
	one_notice "$TD/mount.err" "$uuid"
	umount_ok "$MNT"
}

# Both dup-vg shown: one as dup--vg-lv, the other with its UUID (hyphens
# removed) after the VG name; each name holds that VG's LV.
t_dup() {
	local u1 u2 n1 n2
	mount_lvm dup dup.qcow2
	u1=$(tr -d '-' <"$IMGDIR/p1.uuid")
	u2=$(tr -d '-' <"$IMGDIR/p2.uuid")
	n1=$(dmname "dup-vg_$u1" lv)
	n2=$(dmname "dup-vg_$u2" lv)
	if T test -e "$MNT/$n2.raw"; then
		check_root "$MNT" dup--vg-lv "$n2" --
		check_raw "$MNT" dup--vg-lv "$IMGDIR/lv1.img"
		check_raw "$MNT" "$n2" "$IMGDIR/lv2.img"
		one_notice "$TD/mount.err" dup-vg
	else
		check_root "$MNT" dup--vg-lv "$n1" --
		check_raw "$MNT" dup--vg-lv "$IMGDIR/lv2.img"
		check_raw "$MNT" "$n1" "$IMGDIR/lv1.img"
		one_notice "$TD/mount.err" dup-vg
	fi
	umount_ok "$MNT"
}

# 200 LVs: all listed, every size right, every LV's bytes. The image
# takes a while to build: make check-full (VD_FULL=1) only.
t_many() {
	local k n
	[ "${VD_FULL:-0}" = 1 ] || skip_test "VD_FULL=1 only (make check-full)"
	mount_lvm many many.qcow2
	lv_entries "$MNT" >got
	for k in $(seq 0 199); do printf 'many--vg-lv%03d.raw\n' "$k"; done | LC_ALL=C sort >want
	cmp -s got want || die "root: $(diff got want | head -5 | tr '\n' ' ')"
	# Every size and every byte, in one process.
	T "$PY" - "$MNT" "$IMGDIR" >cmp.out 2>&1 <<-'EOF' || die "$(tail -n 1 cmp.out)"
		import os, sys
		m, d = sys.argv[1:]
		for k in range(200):
		    got, want = "%s/many--vg-lv%03d.raw" % (m, k), "%s/lv%03d.img" % (d, k)
		    gs, ws = os.stat(got).st_size, os.stat(want).st_size
		    if gs != ws:
		        sys.exit("%s is %d bytes, want %d" % (got, gs, ws))
		    if open(got, "rb").read() != open(want, "rb").read():
		        sys.exit("%s differs from lv%03d.img" % (got, k))
		print("200 LVs match")
	EOF
	umount_ok "$MNT"
}

vd_test lvm-builders-vs-lvm2-and-libvslvm t_builders
vd_test lvm-ext4-oracles t_oracles
vd_test lvm-ubuntu-root t_ubuntu_root
vd_test lvm-ubuntu-lv-vs-kernel t_ubuntu_lv
vd_test lvm-ubuntu-seek t_ubuntu_seek
vd_test lvm-ubuntu-vdtool t_ubuntu_vdtool
vd_test lvm-ubuntu-info t_ubuntu_info
vd_test lvm-ubuntu-qcow2-chain t_ubuntu_chain
vd_test lvm-ubuntu-vmdk t_ubuntu_vmdk
vd_test lvm-rhel-xfs-vs-kernel t_rhel
vd_test lvm-multi-root t_multi_root
for lv in $MULTI_RAW; do
	vd_test "lvm-multi-$lv" t_multi_lv "$lv"
done
vd_test lvm-multi-seek t_multi_seek
vd_test lvm-multi-info t_multi_info
vd_test lvm-multi-vdtool t_multi_vdtool
vd_test lvm-missing-pv t_missing
vd_test lvm-duplicate-vg-names t_dup
vd_test lvm-200-lvs t_many
vd_finish
