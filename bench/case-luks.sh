# bench/case-luks.sh — encryption (issue 18), through vdmount --key-file
# beside the tools that read the same images with the same secret:
#   lqcow   disk.raw of an encrypted qcow2 (encrypt.format=luks) read whole
#           against qemu-storage-daemon's FUSE export and qemu-img convert
#           to a null target, both given the secret
#   lpart   a LUKS2 partition's luks-UUID.raw against the partition of the
#           same disk holding the plaintext, and the AES-XTS rate of
#           libcrypto on one core (openssl speed), the ceiling
#   lopen   mount to the first stat of luks-UUID.raw against cryptsetup
#           open --test-passphrase of the same header
# and the images it needs (group "luks").
# shellcheck shell=bash

# luks.qcow2: 1 GiB virtual, every cluster allocated (1 GiB of
# /dev/urandom, luks.raw: so every read decrypts), encrypt.format=luks
# with qemu-img's defaults (aes-256-xts-plain64, sha256) and
# encrypt.iter-time=10. luks2.qcow2: a plain qcow2 holding a GPT disk,
# p1 = 512 MiB of /dev/urandom (luks2-plain.raw), p2 = the same bytes
# encrypted by `cryptsetup reencrypt --encrypt --type luks2` offline on a
# file (luks2-p2.raw; cryptsetup's defaults: aes-xts-plain64, 512-bit key,
# with an argon2id key slot of fixed cost, 256 MiB and 4 iterations).
L_QSIZE=$GIB
L_PSIZE=$((512 * MIB))
L_KDF="--pbkdf argon2id --pbkdf-memory 262144 --pbkdf-parallel 2 --pbkdf-force-iterations 4"
SPEC[luks]="v1 qcow=$L_QSIZE iter-time=10 part=$L_PSIZE kdf=($L_KDF)"
FILES_OF[luks]="luks.key luks.raw luks.qcow2 luks2.qcow2 luks2-plain.raw luks2-p2.raw luks2.uuid"
L_CIPHER=aes-256-xts # what both images use: openssl speed's name for it

img_luks() {
	local i p2len
	command -v cryptsetup >/dev/null || die "making the luks images needs cryptsetup"
	printf 'vdmount bench secret' >"$WORK/luks.key"
	say "  luks.raw: 1 GiB of /dev/urandom; luks.qcow2: qemu-img convert, encrypt.format=luks"
	head -c "$L_QSIZE" /dev/urandom >"$WORK/luks.raw"
	# qemu-img's LUKS creation fails now and then here: retried
	for ((i = 0; i < 5; i++)); do
		rm -f "$WORK/luks.qcow2"
		qemu-img convert -f raw -O qcow2 --object "secret,id=s,file=$WORK/luks.key" \
			-o "cluster_size=$CLUSTER,encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10" \
			"$WORK/luks.raw" "$WORK/luks.qcow2" 2>"$WORK/luks.err" && break
	done
	[ "$i" -lt 5 ] || die "qemu-img could not make luks.qcow2: $(cat "$WORK/luks.err")"
	rm -f "$WORK/luks.err"
	say "  luks2.qcow2: GPT, p1 512 MiB of /dev/urandom, p2 the same in LUKS2 (cryptsetup reencrypt --encrypt)"
	head -c "$L_PSIZE" /dev/urandom >"$WORK/luks2-plain.raw"
	cp "$WORK/luks2-plain.raw" "$WORK/luks2-p2.raw"
	truncate -s $((L_PSIZE + 32 * MIB)) "$WORK/luks2-p2.raw"
	# shellcheck disable=SC2086 # L_KDF is words
	cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 32M \
		$L_KDF --key-file "$WORK/luks.key" "$WORK/luks2-p2.raw" ||
		die "cryptsetup reencrypt of luks2-p2.raw failed"
	cryptsetup luksUUID "$WORK/luks2-p2.raw" >"$WORK/luks2.uuid"
	p2len=$(stat -c %s "$WORK/luks2-p2.raw")
	rm -f "$WORK/luks2.raw"
	truncate -s $((MIB + L_PSIZE + p2len + MIB)) "$WORK/luks2.raw"
	printf 'label: gpt\nstart=%d, size=%d, type=linux\nstart=%d, size=%d, type=linux\n' \
		$((MIB / 512)) $((L_PSIZE / 512)) $(((MIB + L_PSIZE) / 512)) $((p2len / 512)) |
		sfdisk -q "$WORK/luks2.raw" >/dev/null
	dd if="$WORK/luks2-plain.raw" of="$WORK/luks2.raw" bs=1M seek=1 conv=notrunc status=none
	dd if="$WORK/luks2-p2.raw" of="$WORK/luks2.raw" bs=1M seek=$((1 + L_PSIZE / MIB)) \
		conv=notrunc status=none
	qemu-img convert -f raw -O qcow2 -o cluster_size=$CLUSTER "$WORK/luks2.raw" "$WORK/luks2.qcow2"
	rm -f "$WORK/luks2.raw"
}

# the secret, as each tool takes it
l_keys() {
	VD_ARGS=("--key-file=$WORK/luks.key")
	QSD_OBJ=(--object "secret,id=s,file=$WORK/luks.key")
	QSD_FMT_OPTS=",encrypt.format=luks,encrypt.key-secret=s"
}
l_nokeys() { VD_ARGS=() QSD_OBJ=() QSD_FMT_OPTS=; }
l_qopts() { echo "driver=qcow2,file.filename=$WORK/luks.qcow2,encrypt.key-secret=s"; }

# verify_luks: once per run, each tool's bytes against the plaintext the
# images were made from; sets BAD.
verify_luks() {
	local tool differ u
	u=$(cat "$WORK/luks2.uuid")
	l_keys
	for tool in vdmount qsd; do
		if ! have_tool "$tool"; then BAD["luks|$tool"]="n/a: ${MISSING[$tool]}"; continue; fi
		if ! fuse_mount "$tool" "$WORK/luks.qcow2"; then BAD["luks|$tool"]="n/a: $REASON"; continue; fi
		differ=$(T cmp ${VERIFY_BYTES:+-n "$VERIFY_BYTES"} "$FLAT" "$WORK/luks.raw" 2>&1) ||
			BAD["luks|$tool"]="WRONG: its disk differs from luks.raw: ${differ##*: }"
		fuse_umount
	done
	T qemu-img compare -q "${QSD_OBJ[@]}" --image-opts "$(l_qopts)" \
		"driver=raw,file.filename=$WORK/luks.raw" ||
		BAD["luks|qemu-convert"]="WRONG: qemu-img compare finds the image differs from luks.raw"
	if fuse_mount vdmount "$WORK/luks2.qcow2"; then
		if [ ! -f "$MNT/luks-$u.raw" ]; then
			BAD["luks2|vdmount"]="n/a: the mount shows no luks-$u.raw"
			FAILED=1
		elif ! differ=$(T cmp -n "$L_PSIZE" "$MNT/luks-$u.raw" "$WORK/luks2-plain.raw" 2>&1); then
			BAD["luks2|vdmount"]="WRONG: luks-$u.raw differs from the plaintext: ${differ##*: }"
		elif ! T cmp -s "$MNT/p1.raw" "$WORK/luks2-plain.raw"; then
			BAD["luks2|vdmount"]="WRONG: p1.raw differs from the plaintext"
		fi
		fuse_umount
	else
		BAD["luks2|vdmount"]="n/a: $REASON"
	fi
	[ -z "${BAD["luks2|vdmount"]:-}" ] || BAD["luks2|vd-plain"]=${BAD["luks2|vdmount"]}
	l_nokeys
	# cryptsetup's own check of the header and key the mounts use
	command -v cryptsetup >/dev/null || BAD["luks2|cryptsetup"]="n/a: cryptsetup is not installed"
}

# lq_read TOOL COLD: the encrypted qcow2's whole disk once; ELAPSED, CPU
lq_read() {
	local tool=$1 cold=$2 ok=1 c0
	CPU=
	[ "$cold" = 1 ] || cat "$WORK/luks.qcow2" >/dev/null
	l_keys
	case $tool in
	qemu-convert)
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T qemu-img convert -n "${QSD_OBJ[@]}" --image-opts "$(l_qopts)" \
			--target-image-opts "driver=null-co,size=$L_QSIZE" || ok=0
		stop_clock
		l_nokeys
		[ "$ok" = 1 ] || { REASON="qemu-img convert failed"; return 1; }
		return 0 ;;
	raw)
		l_nokeys
		[ "$cold" = 1 ] || cat "$WORK/luks.raw" >/dev/null
		[ "$cold" = 0 ] || drop_caches
		start_clock
		T dd if="$WORK/luks.raw" of=/dev/null bs=1M status=none || ok=0
		stop_clock
		[ "$ok" = 1 ] || { REASON="read failed"; return 1; }
		return 0 ;;
	esac
	fuse_mount "$tool" "$WORK/luks.qcow2" || { l_nokeys; return 1; }
	l_nokeys
	[ "$cold" = 0 ] || drop_caches
	c0=$(cpu_s "$DPID")
	start_clock
	T dd if="$FLAT" of=/dev/null bs=1M status=none || ok=0
	stop_clock
	CPU=$(awk -v a="$c0" -v b="$(cpu_s "$DPID")" -v s="$ELAPSED" 'BEGIN { printf "%.2f", (b - a) / s }')
	fuse_umount
	[ "$ok" = 1 ] || { REASON="read failed"; return 1; }
}

# lp_read TOOL COLD: vdmount's luks-UUID.raw (vdmount) or p1.raw
# (vd-plain), read whole on a fresh mount; ELAPSED and LP_BYTES
LP_BYTES=
lp_read() {
	local tool=$1 cold=$2 ok=1 f u
	u=$(cat "$WORK/luks2.uuid")
	[ "$cold" = 1 ] || cat "$WORK/luks2.qcow2" >/dev/null
	l_keys
	fuse_mount vdmount "$WORK/luks2.qcow2" || { l_nokeys; return 1; }
	l_nokeys
	if [ "$tool" = vdmount ]; then f=$MNT/luks-$u.raw; else f=$MNT/p1.raw; fi
	LP_BYTES=$(stat -c %s "$f")
	[ "$cold" = 0 ] || drop_caches
	start_clock
	T dd if="$f" of=/dev/null bs=1M status=none || ok=0
	stop_clock
	fuse_umount
	[ "$ok" = 1 ] || { REASON="dd of ${f##*/} failed"; return 1; }
}

# l_open TOOL COLD: vdmount: exec to the first stat of luks-UUID.raw;
# cryptsetup: open --test-passphrase of luks2-p2.raw (the same header:
# the partition p2 was copied from)
l_open() {
	local tool=$1 cold=$2 i u ok=1
	u=$(cat "$WORK/luks2.uuid")
	[ "$cold" = 1 ] || cat "$WORK/luks2.qcow2" "$WORK/luks2-p2.raw" >/dev/null
	[ "$cold" = 0 ] || drop_caches
	if [ "$tool" = cryptsetup ]; then
		start_clock
		T cryptsetup open --test-passphrase --key-file "$WORK/luks.key" "$WORK/luks2-p2.raw" || ok=0
		stop_clock
		[ "$ok" = 1 ] || { REASON="cryptsetup open --test-passphrase failed"; return 1; }
		return 0
	fi
	l_keys
	start_clock
	fuse_mount vdmount "$WORK/luks2.qcow2" || { l_nokeys; return 1; }
	l_nokeys
	for ((i = 0; i < 5000; i++)); do
		[ ! -e "$MNT/luks-$u.raw" ] || break
		sleep 0.001
	done
	READY_AT=$EPOCHREALTIME
	ELAPSED=$(awk -v a="$T0" -v b="$READY_AT" 'BEGIN { printf "%.6f", b - a }')
	fuse_umount
	[ "$i" -lt 5000 ] || { REASON="no luks-$u.raw after 5 s"; return 1; }
}

# the AES-XTS rate of libcrypto on one core, MB/s (64 KiB blocks)
l_aes() {
	openssl speed -mr -evp "$L_CIPHER" -bytes 65536 -seconds 1 2>/dev/null |
		awk -F: '/^\+F:/ { printf "%.0f", $4 / 1e6; exit }'
}

case_luks() {
	local cache cold run r tool line v tools
	LABEL[vd-plain]="vdmount p1.raw (the plaintext partition)"
	LABEL[aes-xts]="openssl speed -evp $L_CIPHER, one core"
	LABEL[cryptsetup]="cryptsetup open --test-passphrase"
	case_begin lqcow MB/s high "Encrypted qcow2 (LUKS): whole-disk read" \
"\`dd if=…/disk.raw of=/dev/null bs=1M\` of a 1 GiB encrypted qcow2
(encrypt.format=luks, aes-xts-plain64 with a 512-bit key, every cluster
allocated: 1 GiB of random bytes), through \`vdmount --key-file\` and
qemu-storage-daemon's FUSE export given the same secret (\`--object
secret,file=…\`, \`encrypt.key-secret\`); \`qemu-img convert -n\` of the
same image with the same secret to a null-co target; the plaintext raw
file (the limit). *vdmount CPU use*: the daemon's CPU seconds over the
read's wall time (2.00 = both cores)."
	case_begin lpart MB/s high "LUKS2 partition: luks-UUID.raw against the plaintext partition" \
"\`dd bs=1M\` of vdmount's \`luks-UUID.raw\` (a LUKS2 partition,
aes-xts-plain64, 512-bit key, 4 KiB sectors as cryptsetup chose) and of
\`p1.raw\` (512 MiB: the same plaintext, unencrypted, in the same disk),
fresh mounts taking turns. The last row is libcrypto's AES-256-XTS rate
on one core (\`openssl speed -evp $L_CIPHER\`, 64 KiB blocks, once per
round): the ceiling of one decrypting thread."
	case_begin lopen ms low "LUKS2: opening" \
"vdmount: from starting \`vdmount --key-file=K luks2.qcow2 MNT\` to the first
stat that finds \`luks-UUID.raw\` (the key slot's argon2id, 256 MiB and
4 iterations, dominates); cryptsetup: \`cryptsetup open --test-passphrase
--key-file=K\` of the same LUKS2 header (the partition's file before it
was put in the disk): the key slot opened, no device made. Median of
$STARTS."
	say "luks: checking each tool's bytes against the plaintext"
	cat "$WORK/luks.qcow2" "$WORK/luks.raw" "$WORK/luks2.qcow2" >/dev/null
	verify_luks
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="qcow2-luks, $cache"
		tools="vdmount qsd qemu-convert raw"
		# shellcheck disable=SC2086
		row lqcow "$r" $tools vdmount-cpu
		for ((run = 1; run <= RUNS; run++)); do
			line="lqcow $r, run $run/$RUNS:"
			for tool in $tools; do
				! skip_bad lqcow "$r" "$tool" luks || continue
				[ -z "${WHY["lqcow|$r|$tool"]:-}" ] || continue
				if lq_read "$tool" "$cold"; then
					v=$(mbs_of "$L_QSIZE" "$ELAPSED")
					rec lqcow "$r" "$tool" "$v"
					line="$line $tool $v"
					if [ "$tool" = vdmount ]; then
						rec lqcow "$r" vdmount-cpu "$CPU"
						line="$line (cpu $CPU)"
					fi
				else
					na lqcow "$r" "$tool" "n/a: $REASON"
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
			say "$line"
		done
		r=$cache
		row lpart "$r" vdmount vd-plain aes-xts
		for ((run = 1; run <= RUNS; run++)); do
			line="lpart $r, run $run/$RUNS:"
			for tool in vdmount vd-plain; do
				! skip_bad lpart "$r" "$tool" luks2 || continue
				[ -z "${WHY["lpart|$r|$tool"]:-}" ] || continue
				if lp_read "$tool" "$cold"; then
					v=$(mbs_of "$LP_BYTES" "$ELAPSED")
					rec lpart "$r" "$tool" "$v"
					line="$line $tool $v"
				else
					na lpart "$r" "$tool" "n/a: $REASON"
					FAILED=1
					say "  $tool: $REASON"
				fi
			done
			if v=$(l_aes) && [ -n "$v" ]; then
				rec lpart "$r" aes-xts "$v"
				line="$line aes-xts $v"
			else
				na lpart "$r" aes-xts "n/a: openssl speed -evp $L_CIPHER failed"
			fi
			say "$line"
		done
		row lopen "$r" vdmount cryptsetup
		line="lopen $r:"
		for ((run = 1; run <= STARTS; run++)); do
			for tool in vdmount cryptsetup; do
				! skip_bad lopen "$r" "$tool" luks2 || continue
				[ -z "${WHY["lopen|$r|$tool"]:-}" ] || continue
				if l_open "$tool" "$cold"; then
					rec lopen "$r" "$tool" "$(ms_of "$ELAPSED")"
					line="$line $tool $(ms_of "$ELAPSED")"
				else
					na lopen "$r" "$tool" "n/a: $REASON"
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
		done
		say "$line"
	done
}
