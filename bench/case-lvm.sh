# bench/case-lvm.sh — an LVM2 logical volume against a partition holding
# the same bytes, in one disk, through vdmount in the same run:
#   lvseq    VG-LV.raw against pN.raw, read whole (dd bs=1M)
#   lvbig    VG-LV/big.bin against pN/big.bin, the guest's 1 GiB file
#   lvstart  mount of a VG of 200 LVs to the first stat of an LV's file
# and the images it needs (group "lvm": made from the gpt group's
# partition, so the gpt group comes first).
# shellcheck shell=bash

# lvm.qcow2: GPT; p1 holds gpt-p1.raw (the *files* case's ext4: big.bin
# and tree/); p2 is a PV of VG bench-vg whose one linear LV, data, holds
# the same bytes. lvm200.qcow2: one PV, VG many-vg, 200 linear LVs of 64
# to 192 KiB (lv000..lv199), each with its own random bytes. Made with
# lvm2's tools on loop devices with activation disabled, the LVs' bytes
# written where lvm2 reports their extents (tests/mklvm.py).
SPEC[lvm]="v1 gpt=(${SPEC[gpt]}) vg=bench-vg lv=data extent=1m lvs200=64k"
FILES_OF[lvm]="lvm.qcow2 lvm200.qcow2"
LVM_LV=bench--vg-data
LVM_LAST=many--vg-lv199.raw
MKLVM=$ROOTDIR/tests/mklvm.py

# lvm_loop FILE: a loop device over FILE with its partitions (this
# kernel may have no partition parsers: partx adds them); sets LOOPDEV
# and MKLVM_DEVICES.
lvm_loop() {
	local i
	LOOPDEV=$(losetup -P -f --show "$1") || return 1
	LOOPS+=("$LOOPDEV")
	partx -a "$LOOPDEV" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		[ ! -b "${LOOPDEV}p1" ] || break
		sleep 0.1
	done
	[ -b "${LOOPDEV}p1" ] || return 1
	MKLVM_DEVICES=$(printf '%s,' "$LOOPDEV"p* | sed 's/,$//')
	export MKLVM_DEVICES
}

img_lvm() {
	local psize p1 p2 ext
	[ "$(id -u)" = 0 ] || die "making the lvm images needs root (loop devices)"
	psize=$(cat "$WORK/gpt.size")
	ext=$((psize / MIB))
	say "  lvm.raw: GPT, p1 the gpt image's ext4, p2 a PV whose LV holds the same bytes"
	rm -f "$WORK/lvm.raw"
	truncate -s $((psize * 2 + 8 * MIB)) "$WORK/lvm.raw"
	p1=$((MIB / 512))
	p2=$(((MIB + psize) / 512))
	printf 'label: gpt\nstart=%d, size=%d, type=linux\nstart=%d, size=%d, type=lvm\n' \
		"$p1" $((psize / 512)) "$p2" $(((psize + 4 * MIB) / 512)) |
		sfdisk -q "$WORK/lvm.raw" >/dev/null
	dd if="$WORK/gpt-p1.raw" of="$WORK/lvm.raw" bs=1M seek=1 conv=sparse,notrunc status=none
	lvm_loop "$WORK/lvm.raw" || die "losetup of lvm.raw failed"
	python3 "$MKLVM" lvm pvcreate "${LOOPDEV}p2" >/dev/null
	python3 "$MKLVM" lvm vgcreate -s 1m bench-vg "${LOOPDEV}p2" >/dev/null
	python3 "$MKLVM" lvm lvcreate -an -Zn -Wn -n data -l "$ext" bench-vg >/dev/null
	say "  writing the LV's $psize bytes where lvm2 places them"
	python3 "$MKLVM" put bench-vg "data=$WORK/gpt-p1.raw"
	sync
	loop_detach "$LOOPDEV"
	say "  lvm.qcow2: qemu-img convert"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/lvm.raw" "$WORK/lvm.qcow2"
	rm -f "$WORK/lvm.raw"

	say "  lvm200.qcow2: a VG of 200 LVs (one metadata edit, vgcfgrestore)"
	rm -f "$WORK/lvm200.raw"
	truncate -s $((40 * MIB)) "$WORK/lvm200.raw"
	printf 'label: gpt\nstart=2048, size=%d, type=lvm\n' $((38 * 2048)) |
		sfdisk -q "$WORK/lvm200.raw" >/dev/null
	lvm_loop "$WORK/lvm200.raw" || die "losetup of lvm200.raw failed"
	python3 "$MKLVM" lvm pvcreate "${LOOPDEV}p1" >/dev/null
	python3 "$MKLVM" lvm vgcreate -s 64k many-vg "${LOOPDEV}p1" >/dev/null
	python3 "$MKLVM" edit many-vg many:lv:200:0:pv0
	(
		cd "$SCR" &&
			python3 -c '
import os
for k in range(200):
    with open("lv%03d.img" % k, "wb") as f:
        f.write(os.urandom((1 + k % 3) * 65536))' &&
			python3 "$MKLVM" put many-vg $(for k in $(seq 0 199); do printf 'lv%03d=lv%03d.img ' "$k" "$k"; done) &&
			rm -f lv???.img
	) || die "writing the 200 LVs failed"
	sync
	loop_detach "$LOOPDEV"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/lvm200.raw" "$WORK/lvm200.qcow2"
	rm -f "$WORK/lvm200.raw"
}

# lv_file TOOL OP: the file TOOL reads in OP, under $MNT
lv_file() {
	case $1:$2 in
	vdmount:lvseq) echo "$MNT/$LVM_LV.raw" ;;
	vd-part:lvseq) echo "$MNT/p1.raw" ;;
	vdmount:lvbig) echo "$MNT/$LVM_LV/big.bin" ;;
	vd-part:lvbig) echo "$MNT/p1/big.bin" ;;
	esac
}

# verify_lvm: once per run, the LV's bytes against the partition file
# the LV was written from (not vdmount's), and big.bin through the LV
# against big.bin through the partition; sets BAD. An LV the mount does
# not show fails the run as wrong data does.
verify_lvm() {
	local differ
	fuse_mount vdmount "$WORK/lvm.qcow2" || { BAD["lvm|vdmount"]="n/a: $REASON"; return 0; }
	if [ ! -f "$MNT/$LVM_LV.raw" ]; then
		BAD["lvm|vdmount"]="n/a: the mount shows no $LVM_LV.raw"
		FAILED=1
	elif ! differ=$(T cmp ${VERIFY_BYTES:+-n "$VERIFY_BYTES"} "$MNT/$LVM_LV.raw" "$WORK/gpt-p1.raw" 2>&1); then
		BAD["lvm|vdmount"]="WRONG: $LVM_LV.raw differs from the partition it was written from: $differ"
	elif [ -z "$VERIFY_BYTES" ] && ! T cmp -s "$MNT/$LVM_LV/big.bin" "$MNT/p1/big.bin"; then
		BAD["lvm|vdmount"]="WRONG: $LVM_LV/big.bin differs from p1/big.bin"
	fi
	fuse_umount
	fuse_mount vdmount "$WORK/lvm200.qcow2" || { BAD["lvm200|vdmount"]="n/a: $REASON"; return 0; }
	[ -f "$MNT/$LVM_LAST" ] || { BAD["lvm200|vdmount"]="n/a: the mount shows no $LVM_LAST"; FAILED=1; }
	fuse_umount
}

# lv_op OP TOOL COLD: one timed read on a fresh mount; 1 with REASON
lv_op() {
	local op=$1 tool=$2 cold=$3 ok=1 f
	[ "$cold" = 1 ] || cat "$WORK/lvm.qcow2" >/dev/null
	fuse_mount vdmount "$WORK/lvm.qcow2" || return 1
	f=$(lv_file "$tool" "$op")
	[ "$cold" = 0 ] || drop_caches
	start_clock
	T dd if="$f" of=/dev/null bs=1M status=none || ok=0
	stop_clock
	fuse_umount
	[ "$ok" = 1 ] || { REASON="dd of ${f#"$MNT"/} failed"; return 1; }
}

# lv_start COLD: ELAPSED from exec of vdmount to the first stat of the
# 200th LV's file. fuse_mount stats it (READY_REL) and stamps READY_AT
# before it looks for the daemon's pid: that pgrep, a scan of /proc, is
# the bench's bookkeeping, not the mount's time (it was counted here
# until 2026-12-07: 5 to 100 ms, more on a loaded machine).
lv_start() {
	[ "$1" = 0 ] || drop_caches
	start_clock
	READY_REL=$LVM_LAST fuse_mount vdmount "$WORK/lvm200.qcow2" || return 1
	ELAPSED=$(awk -v a="$T0" -v b="$READY_AT" 'BEGIN { printf "%.6f", b - a }')
	[ -e "$MNT/$LVM_LAST" ] || { fuse_umount; REASON="no $LVM_LAST after 5 s"; return 1; }
	fuse_umount
}

case_lvm() {
	local cache cold run r op tool line v sz order
	sz=$(cat "$WORK/gpt.size")
	case_begin lvseq MB/s high "LVM: a linear LV against the partition holding the same bytes" \
"\`dd if=… of=/dev/null bs=1M\` of vdmount's \`$LVM_LV.raw\` (a linear LV,
one segment, in VG bench-vg on p2 of a GPT qcow2) and of \`p1.raw\` (the
partition holding the same ext4, $sz bytes), on fresh mounts of the same
image, taking turns. Ratio: LV / partition."
	case_begin lvbig MB/s high "LVM: the guest's 1 GiB file in the LV against the partition" \
"\`dd if=…/big.bin of=/dev/null bs=1M\` through vdmount's \`$LVM_LV/\` and
through its \`p1/\` (the same ext4 in both). Ratio: LV / partition."
	case_begin lvstart ms low "LVM: mount of a VG of 200 LVs to first stat" \
"Wall time from starting \`vdmount lvm200.qcow2 MNT\` to the first stat that
finds \`MNT/$LVM_LAST\` (the 200th LV of VG many-vg: the PV's label and
metadata read, 200 LVs assembled). Median of $STARTS; cold: caches
dropped before each."
	LABEL[vd-part]="vdmount p1.raw / p1/ (the partition)"
	say "lvm: checking the LV's bytes against the partition they were written from"
	verify_lvm
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r=$cache
		row lvseq "$r" vdmount vd-part
		row lvbig "$r" vdmount vd-part
		row lvstart "$r" vdmount
		# Warm: the whole image cached by one sequential read, so the
		# LV's and the partition's host pages are cached alike (pages
		# first cached by other reads splice more slowly: the LV read
		# 0.8 of the partition after the checks above, 1.0 after this).
		if [ "$cold" = 0 ]; then
			drop_caches
			cat "$WORK/lvm.qcow2" >/dev/null
		fi
		for ((run = 1; run <= RUNS; run++)); do
			for op in lvseq lvbig; do
				line="$op $r, run $run/$RUNS:"
				# Odd runs start with the LV, even runs with the
				# partition: the first of a pair was seen to be
				# slower whichever it was.
				order="vdmount vd-part"
				((run % 2)) || order="vd-part vdmount"
				for tool in $order; do
					! skip_bad "$op" "$r" "$tool" lvm || continue
					[ -z "${WHY["$op|$r|$tool"]:-}" ] || continue
					if lv_op "$op" "$tool" "$cold"; then
						if [ "$op" = lvseq ]; then v=$(mbs_of "$sz" "$ELAPSED")
						else v=$(mbs_of "$G_BIG" "$ELAPSED"); fi
						rec "$op" "$r" "$tool" "$v"
						line="$line $tool $v"
					else
						na "$op" "$r" "$tool" "n/a: $REASON"
						FAILED=1
						say "  $tool: $REASON"
					fi
				done
				say "$line"
			done
		done
		[ "$cold" = 1 ] || cat "$WORK/lvm200.qcow2" >/dev/null
		line="lvstart $r:"
		for ((run = 1; run <= STARTS; run++)); do
			! skip_bad lvstart "$r" vdmount lvm200 || break
			if lv_start "$cold"; then
				rec lvstart "$r" vdmount "$(ms_of "$ELAPSED")"
				line="$line $(ms_of "$ELAPSED")"
			else
				na lvstart "$r" vdmount "n/a: $REASON"
				FAILED=1
				break
			fi
		done
		say "$line"
	done
}
