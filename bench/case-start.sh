# bench/case-start.sh — time from exec to the first successful stat of
# the mounted disk (or, for the GPT disk under vdmount, of a file in p1/),
# for the 1 TiB image, the 20-deep chain, the GPT+ext4 disk and a 64 TiB
# VHDX.
# shellcheck shell=bash

DISK[tb1]="tb1.qcow2 qcow2 - qcowmount"
DISK[gpt]="gpt.qcow2 qcow2 gpt.raw qcowmount"
DISK[vx64]="vx64.vhdx vhdx - vhdimount"
START_TOOLS="vdmount qcowmount qsd"
# the tools of each image: qcowmount reads qcow2 only
declare -A START_TOOLS_OF=([vx64]="vdmount vhdimount qsd")
start_tools() { echo "${START_TOOLS_OF[$1]:-$START_TOOLS}"; }

# verify_tb1 TOOL: a 1 TiB disk is not compared whole: the last of the
# eight qemu-io writes (pattern 8 at 899 GiB) and the zeros after it
verify_tb1() {
	local tool=$1
	[ -z "${VERIFIED["tb1|$tool"]:-}" ] || return 0
	VERIFIED["tb1|$tool"]=1
	have_tool "$tool" || { BAD["tb1|$tool"]="n/a: ${MISSING[$tool]}"; return 0; }
	fuse_mount "$tool" "$WORK/tb1.qcow2" || { BAD["tb1|$tool"]="n/a: $REASON"; return 0; }
	if ! cmp -s <(T dd if="$FLAT" bs=512K skip=$((899 * 2048)) count=2 status=none) \
		<(head -c 524288 /dev/zero | tr '\0' '\010'; head -c 524288 /dev/zero); then
		BAD["tb1|$tool"]="WRONG: the bytes at 899 GiB are not qemu-io's"
	fi
	fuse_umount
}

# verify_vx64 TOOL: as verify_tb1, the last write (pattern 8 at 59 TiB)
verify_vx64() {
	local tool=$1
	[ -z "${VERIFIED["vx64|$tool"]:-}" ] || return 0
	VERIFIED["vx64|$tool"]=1
	have_tool "$tool" || { BAD["vx64|$tool"]="n/a: ${MISSING[$tool]}"; return 0; }
	fuse_mount "$tool" "$WORK/vx64.vhdx" vhdx || { BAD["vx64|$tool"]="n/a: $REASON"; return 0; }
	if ! cmp -s <(T dd if="$FLAT" bs=512K skip=$((59 * 1024 * 1024 * 2)) count=2 status=none) \
		<(head -c 524288 /dev/zero | tr '\0' '\010'; head -c 524288 /dev/zero); then
		BAD["vx64|$tool"]="WRONG: the bytes at 59 TiB are not qemu-io's"
	fi
	fuse_umount
}

# time_start TOOL NAME COLD: sets ELAPSED, exec of the mount command to
# the first stat that finds the disk (or p1/big.bin)
time_start() {
	local tool=$1 name=$2 cold=$3 file fmt i
	read -r file fmt _ <<<"${DISK[$name]}"
	[ "$cold" = 0 ] || drop_caches
	start_clock
	fuse_mount "$tool" "$WORK/$file" "$fmt" || return 1
	if [ "$tool" = vdmount ] && [ "$name" = gpt ]; then
		for ((i = 0; i < 5000; i++)); do
			[ ! -e "$MNT/p1/big.bin" ] || break
			sleep 0.001
		done
		READY_AT=$EPOCHREALTIME
	fi
	ELAPSED=$(awk -v a="$T0" -v b="$READY_AT" 'BEGIN { printf "%.6f", b - a }')
	fuse_umount
}

case_start() {
	local name cache cold run r tool line
	case_begin start ms low "Time from exec to first stat" \
"Wall time from starting the mount command to the first stat that sees
the disk: \`vdmount IMG MNT\` then \`stat MNT/disk.raw\` (for *gpt*:
\`MNT/p1/big.bin\`, the guest's file: partition table and ext4 read), the
same with qcowmount's \`MNT/qcow1\`, and qemu-storage-daemon started in
the background until \`stat\` of its export file shows the virtual size.
*tb1*: 1 TiB qcow2 with 4 MiB written; *chain20*: a 1 GiB qcow2 with 20
qcow2 layers above it; *gpt*: the GPT+ext4 disk of *big*; *vx64*: a
64 TiB dynamic VHDX with 4 MiB written (vhdimount in qcowmount's place;
vdmount stats disk.raw). Median of
$STARTS; cold: caches dropped before each."
	say "start: checking the chain and the 1 TiB image through each tool"
	for tool in $START_TOOLS; do
		verify_disk "$tool" chain20
		verify_tb1 "$tool"
		verify_disk "$tool" gpt
	done
	for tool in $(start_tools vx64); do verify_vx64 "$tool"; done
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		for name in tb1 chain20 gpt vx64; do
			r="$name, $cache"
			# shellcheck disable=SC2046 # a list of tools
			row start "$r" $(start_tools "$name")
			[ "$cold" = 1 ] || cat "$WORK"/chain-*.qcow2 "$WORK/tb1.qcow2" "$WORK/gpt.qcow2" \
				"$WORK/vx64.vhdx" >/dev/null
			for ((run = 1; run <= STARTS; run++)); do
				line="start $r, run $run/$STARTS:"
				for tool in $(start_tools "$name"); do
					! skip_bad start "$r" "$tool" "$name" || continue
					[ -z "${WHY["start|$r|$tool"]:-}" ] || continue
					if time_start "$tool" "$name" "$cold"; then
						rec start "$r" "$tool" "$(ms_of "$ELAPSED")"
						line="$line $tool $(ms_of "$ELAPSED")"
					else
						na start "$r" "$tool" "n/a: $REASON"
						[ "$tool" != vdmount ] || FAILED=1
					fi
				done
				say "$line"
			done
		done
	done
}
