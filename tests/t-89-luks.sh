#!/bin/bash
# LUKS1 and LUKS2 volumes inside guests: unlocked with --key-file, shown
# as luks-UUID.raw and luks-UUID/ and scanned like any volume.
#
# Oracle: the plaintext. Each LUKS volume is made from a known ext4
# (mkfs.ext4 -d) by `cryptsetup reencrypt --encrypt` run offline on a
# file (no device-mapper needed); LUKS1 by `cryptsetup convert` of such a
# LUKS2 (reencrypt --type luks1 needs device-mapper here). A second
# reader for LUKS1: qemu's luks driver. Key slots are added and killed
# by cryptsetup, so the key that opens a volume sits in slot 3 only.
#
# Cases: a GPT disk (qcow2) with p1 plain ext4 and p2 LUKS2 (argon2id in
# slot 1, the key in slot 3, PBKDF2); LUKS1 aes-cbc-essiv:sha256 filling
# a whole disk; LUKS2 with 4096-byte sectors; LUKS2 inside an LVM LV and
# LVM inside LUKS2 (Ubuntu's layout: GPT, ESP, /boot, p3 LUKS2 -> LVM ->
# ext4); a wrong key and no key (the mount goes on, one notice); a LUKS1
# slot whose iterations exceed the cap; vdtool info without a key; the
# prompt under a pseudo-terminal, and no prompt without one; the
# passphrase in no output and no sanitizer log; LUKS1 written by qemu's
# luks driver with aes-192-xts (read: cryptsetup cannot make it here, as
# its cipher check needs device-mapper) and serpent-256-xts (refused by
# name, the mount going on).
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/mklvm.sh"

MIB=$((1 << 20))
K0='correct horse 89'
K3='slot three key'
K1='argon two'

keys() {
	printf '%s' "$K0" >K0
	printf '%s' "$K3" >K3
	printf '%s' "$K1" >K1
	printf 'not the key' >KW
}

# plain.img: 24 MiB ext4 of tree/. NAME.luks: it encrypted (NAME.luks is
# plain.img + 32 MiB: reencrypt keeps its header in the first 16 MiB).
mk_plain() {
	mkdir -p tree/sub
	printf 'hello from inside LUKS\n' >tree/hello
	head -c 300000 /dev/urandom >tree/sub/blob
	truncate -s $((24 * MIB)) plain.img
	mkfs.ext4 -q -F -b 4096 -d tree plain.img
}

# enc OUT TYPE-ARGS... — OUT from plain.img.
enc() {
	local out=$1
	shift
	cp plain.img "$out"
	truncate -s $((56 * MIB)) "$out"
	cryptsetup reencrypt -q --encrypt --reduce-device-size 32M \
		--key-file K0 "$@" "$out"
}

slots() {
	local f=$1
	cryptsetup luksAddKey -q --key-file K0 --key-slot 3 --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 "$f" K3 || return 1
	cryptsetup luksAddKey -q --key-file K0 --key-slot 1 --pbkdf argon2id \
		--pbkdf-force-iterations 4 --pbkdf-memory 64 "$f" K1 || return 1
	cryptsetup luksKillSlot -q --key-file K3 "$f" 0
}

gen_luks() {
	keys
	mk_plain || return 1
	# LUKS2 partition (argon2id data key slot, killed later).
	enc p2.luks --type luks2 --pbkdf argon2id --pbkdf-force-iterations 4 \
		--pbkdf-memory 64 || return 1
	slots p2.luks || return 1
	cryptsetup luksUUID p2.luks >p2.uuid
	truncate -s $((8 * MIB)) p1.img
	mkfs.ext4 -q -F p1.img
	truncate -s $((80 * MIB)) gpt.raw
	printf 'label: gpt\nstart=2048, size=16384\nstart=18432, size=114688\n' |
		sfdisk -q gpt.raw || return 1
	dd if=p1.img of=gpt.raw bs=512 seek=2048 conv=notrunc status=none
	dd if=p2.luks of=gpt.raw bs=512 seek=18432 conv=notrunc status=none
	qemu-img convert -f raw -O qcow2 gpt.raw gpt.qcow2 || return 1
	rm -f gpt.raw p1.img
	# LUKS1 over the whole disk, the old default cipher.
	enc w1.luks --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--hash sha1 --cipher aes-cbc-essiv:sha256 --key-size 256 || return 1
	cryptsetup convert -q --type luks1 w1.luks || return 1
	cryptsetup luksAddKey -q --key-file K0 --key-slot 3 \
		--pbkdf-force-iterations 1000 w1.luks K3 || return 1
	cryptsetup luksKillSlot -q --key-file K3 w1.luks 0 || return 1
	cryptsetup luksUUID w1.luks >w1.uuid
	# LUKS2 with 4096-byte sectors.
	enc s4k.luks --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--sector-size 4096 --cipher aes-xts-plain64 --key-size 256 || return 1
	cryptsetup luksUUID s4k.luks >s4k.uuid
	# A re-encryption begun and not finished (--init-only).
	cp plain.img ri.luks
	truncate -s $((56 * MIB)) ri.luks
	cryptsetup reencrypt -q --encrypt --init-only --type luks2 \
		--reduce-device-size 32M --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file K0 ri.luks
}

# one_gpt OUT FILE — a raw GPT disk OUT whose p1 holds FILE's bytes.
one_gpt() {
	local mib=$((($(stat -c %s "$2") + MIB - 1) / MIB))
	lvm_gpt "$1" $((mib + 2)) "$mib:linux" || return 1
	lvm_place "$1" "$2" "$(lvm_part_off "$1" 1)"
}

# luks2_json FILE PYTHON-EXPR — rewrite the JSON area of both LUKS2
# header copies of FILE as the expression makes it of j (the parsed
# JSON), each copy's SHA-256 checksum (LUKS2 spec 1.1, section 2:
# hdr_size at 8, the checksum at 448 over hdr_size bytes with it
# zeroed) made right, so that libcryptsetup loads it.
luks2_json() {
	/usr/bin/python3 - "$@" <<'PY'
import hashlib, json, struct, sys
f, expr = sys.argv[1], sys.argv[2]
d = bytearray(open(f, "rb").read())
hs = struct.unpack(">Q", d[8:16])[0]
j = json.loads(bytes(d[4096:hs]).rstrip(b"\0"))
exec(expr)
nj = json.dumps(j, separators=(",", ":")).encode()
assert len(nj) < hs - 4096
for at in (0, hs):
    a = bytearray(hs)
    a[:4096] = d[at:at + 4096]
    a[4096:4096 + len(nj)] = nj
    a[448:512] = bytes(64)
    a[448:480] = hashlib.sha256(a).digest()
    d[at:at + hs] = a
open(f, "r+b").write(d)
PY
}

# The LUKS2 variants vdmount does not read, each in p1 of a GPT disk:
# integrity protection (cryptsetup luksFormat --integrity needs
# device-mapper to format dm-integrity, so the JSON of a LUKS2 header
# is given an "integrity" object, as --integrity hmac-sha256 writes it),
# an unfinished re-encryption (ri.luks), and the data of a LUKS2 volume
# whose header is detached (reencrypt --encrypt --header: the header in
# its own file, dh.hdr, the data partition holds ciphertext only).
gen_variants() {
	local L
	L=$(vd_img luks) || return 1
	cp "$L"/K0 . || return 1
	cp "$L/s4k.luks" int.luks || return 1
	luks2_json int.luks 'j["segments"]["0"]["integrity"] = {"type": "hmac(sha256)", "journal_encryption": "none", "journal_integrity": "none"}' || return 1
	cryptsetup luksDump int.luks | grep -q "integrity: hmac(sha256)" || return 1
	one_gpt int.raw int.luks || return 1
	one_gpt ri.raw "$L/ri.luks" || return 1
	cp "$L/plain.img" dh.data
	cryptsetup reencrypt -q --encrypt --type luks2 --header dh.hdr \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file K0 dh.data || return 1
	cmp -s dh.data "$L/plain.img" && return 1
	one_gpt dh.raw dh.data || return 1
	rm -f int.luks dh.data
}

# LUKS1 made by qemu's luks driver, the data encrypted by qemu from
# plain.img: aes-192-xts (libcrypto has no AES-192-XTS: the data is read
# by XTS over its ECB, the key slot by our own LUKS1 code, libcryptsetup's
# OpenSSL backend having no such cipher either) and serpent-256-xts
# (refused by name). Creation retried (qemu's PBKDF timing).
gen_qluks() {
	local L c i
	L=$(vd_img luks) || return 1
	for c in aes-192:q192 serpent-256:qserp; do
		for i in 1 2 3 4 5; do
			qemu-img convert -f raw -O luks --object secret,id=s,file="$L/K0" \
				-o key-secret=s,iter-time=10,cipher-alg=${c%%:*},cipher-mode=xts \
				"$L/plain.img" "${c#*:}.luks" && break
			rm -f "${c#*:}.luks"
		done
		[ -e "${c#*:}.luks" ] || return 1
		cryptsetup luksUUID "${c#*:}.luks" >"${c#*:}.uuid" || return 1
	done
}

# Ubuntu's encrypted layout: GPT with p1 ESP (FAT), p2 /boot (ext4), p3
# LUKS2 holding a PV of VG vgubuntu with LVs root (plain.img's ext4) and
# vault (w1.luks: LUKS1 again, inside the LV). The PV is made by lvm2 on
# a loop partition (tests/mklvm.sh), its bytes then encrypted.
gen_ubuntu() {
	local L
	L=$(vd_img luks) || return 1
	cp "$L"/K0 "$L"/K3 . || return 1
	lvm_gpt pvdisk.raw 90 88:lvm || return 1
	lvm_attach pvdisk.raw || return 1
	lvmc pvcreate "${LDEV}p1" || return 1
	lvmc vgcreate -s 1m vgubuntu "${LDEV}p1" || return 1
	lvc -n root -L 24m vgubuntu || return 1
	lvc -n vault -L 56m vgubuntu || return 1
	mlvm put vgubuntu root="$L/plain.img" vault="$L/w1.luks" || return 1
	lvm_detach || return 1
	dd if=pvdisk.raw of=pv.luks bs=1M skip=1 count=88 status=none
	rm -f pvdisk.raw pvdisk.raw.json
	truncate -s $((120 * MIB)) pv.luks
	cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 32M \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file K0 pv.luks || return 1
	cryptsetup luksUUID pv.luks >pv.uuid
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -n ESP esp.img >/dev/null || return 1
	truncate -s $((24 * MIB)) boot.img
	mkfs.ext4 -q -F boot.img || return 1
	lvm_gpt disk.raw 154 8:esp 24:linux 120:linux || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw boot.img "$(lvm_part_off disk.raw 2)" || return 1
	lvm_place disk.raw pv.luks "$(lvm_part_off disk.raw 3)" || return 1
	qemu-img convert -f raw -O qcow2 disk.raw ubuntu-enc.qcow2 || return 1
	rm -f disk.raw esp.img boot.img pv.luks
}

# vt ARGS... — vdtool with stdin not a terminal.
vt() { "$VDTOOL" "$@" </dev/null; }

# same VOLRAW-SOURCE: the first 24 MiB of a luks-UUID.raw are plain.img.
same_plain() {
	cmp -n $((24 * MIB)) "$1" "$D/plain.img" || die "$1 differs from the plaintext"
}

t_partition() {
	D=$(img_or_die luks) || exit 1
	local u m
	u=$(cat "$D/p2.uuid")
	m=$(vd_mnt a)
	mount_ok "$m" --key-file="$D/K3" "$D/gpt.qcow2" "$m"
	ls "$m" >ls.txt
	grep -qx "luks-$u.raw" ls.txt || die "no luks-$u.raw: $(tr '\n' ' ' <ls.txt)"
	grep -qx "p2.raw" ls.txt || die "no p2.raw"
	same_plain "$m/luks-$u.raw"
	cmp "$m/luks-$u/hello" "$D/tree/hello" || die "hello differs"
	cmp "$m/luks-$u/sub/blob" "$D/tree/sub/blob" || die "blob differs"
	umount_ok "$m"
	# -o key_file=, and the slot-1 argon2id key.
	mount_ok "$m" "$D/gpt.qcow2" "$m" -o key_file="$D/K1"
	cmp "$m/luks-$u/hello" "$D/tree/hello" || die "hello differs (argon2id slot)"
	umount_ok "$m"
	vt cat --key-file="$D/KW" --key-file="$D/K3" "$D/gpt.qcow2" "/luks-$u/sub/blob" |
		cmp - "$D/tree/sub/blob" || die "vdtool cat with two keys"
}

t_whole_luks1() {
	D=$(img_or_die luks) || exit 1
	local u
	u=$(cat "$D/w1.uuid")
	vt cat --key-file="$D/K3" "$D/w1.luks" "/luks-$u.raw" >v.raw || die "vdtool cat"
	same_plain v.raw
	# qemu's luks driver as a second reader.
	qemu-img convert --object secret,id=s,file="$D/K3" --image-opts \
		"driver=luks,file.filename=$D/w1.luks,key-secret=s" -O raw q.raw ||
		die "qemu-img cannot read it"
	cmp -n "$(stat -c %s q.raw)" v.raw q.raw || die "differs from qemu's luks driver"
	vt cat --key-file="$D/K3" "$D/w1.luks" "/luks-$u/hello" | cmp - "$D/tree/hello" ||
		die "hello"
}

t_sector4k() {
	D=$(img_or_die luks) || exit 1
	local u
	u=$(cat "$D/s4k.uuid")
	vt cat --key-file="$D/K0" "$D/s4k.luks" "/luks-$u.raw" >v.raw || die "vdtool cat"
	same_plain v.raw
}

t_wrong_and_none() {
	D=$(img_or_die luks) || exit 1
	local u m
	u=$(cat "$D/p2.uuid")
	m=$(vd_mnt w)
	mount_ok "$m" --key-file="$D/KW" "$D/gpt.qcow2" "$m"
	grep -q "no key slot of .*p2.* opens with the given keys" "$TD/mount.err" ||
		die "no wrong-key notice: $(cat "$TD/mount.err")"
	[ -e "$m/p2.raw" ] && [ ! -e "$m/luks-$u.raw" ] && [ -d "$m/p1" ] || die "tree"
	umount_ok "$m"
	mount_ok "$m" "$D/gpt.qcow2" "$m"
	grep -q "LUKS2-encrypted.*--key-file" "$TD/mount.err" || die "no notice without a key"
	grep -q "Passphrase" "$TD/mount.err" && die "a prompt without a terminal"
	[ "$(grep -c . "$TD/mount.err")" -eq 1 ] || die "not one line: $(cat "$TD/mount.err")"
	umount_ok "$m"
}

t_info() {
	D=$(img_or_die luks) || exit 1
	vt info "$D/gpt.qcow2" >info.txt 2>/dev/null || die "vdtool info"
	grep -q "p2: LUKS2, UUID $(cat "$D/p2.uuid"), cipher aes-xts-plain64" info.txt || die "$(cat info.txt)"
	grep -q "key slot 1: argon2id, 4 passes, 64 KiB" info.txt || die "slot 1: $(cat info.txt)"
	grep -q "key slot 3: pbkdf2 sha256, 1000 iterations" info.txt || die "slot 3"
	grep -q "key slot 0" info.txt && die "slot 0 was killed"
	grep -q "^    locked" info.txt || die "not locked"
	vt info --json --key-file="$D/K3" "$D/w1.luks" >info.json 2>/dev/null || die "json"
	/usr/bin/python3 -c 'import json,sys; l=json.load(open("info.json"))["luks"][0]; assert l["version"]==1 and l["cipher"]=="aes-cbc-essiv:sha256" and l["unlocked-as"].startswith("luks-"), l' || die "json: $(cat info.json)"
}

# A LUKS1 header (no checksum) whose slot 3 claims 2^32-1 iterations:
# refused with the cap, never tried.
t_kdf_cap() {
	D=$(img_or_die luks) || exit 1
	cp "$D/w1.luks" cap.luks
	# LUKS1 key slot 3 at 208 + 3 * 48, iterations at +4 (big-endian).
	printf '\xff\xff\xff\xff' | dd of=cap.luks bs=1 seek=$((208 + 3 * 48 + 4)) conv=notrunc status=none
	timeout 60 "$VDTOOL" ls --key-file="$D/K3" cap.luks / </dev/null >ls.txt 2>err.txt
	grep -q "iterations 4294967295 are beyond the cap" err.txt || die "$(cat err.txt)"
}

# The prompt: under a pseudo-terminal, typed; not echoed; the passphrase
# in no output and no sanitizer log.
t_prompt() {
	D=$(img_or_die luks) || exit 1
	local u
	u=$(cat "$D/p2.uuid")
	timeout -k 5 120 /usr/bin/python3 - "$VDTOOL" "$D/gpt.qcow2" "/luks-$u/hello" "$K3" >out.txt <<'PY' || die "pty: $(cat out.txt)"
import os, pty, sys, time
tool, img, path, key = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tool, [tool, "cat", img, path])
buf = b""
def read_until(pat, t=60):
    global buf
    end = time.time() + t
    while pat not in buf and time.time() < end:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        buf += d
read_until(b"Passphrase for ")
assert b"(LUKS2 " in buf and b"p2" in buf, buf
os.write(fd, key.encode() + b"\n")
read_until(b"hello from inside LUKS")
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    buf += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors="replace"))
assert os.WEXITSTATUS(st) == 0, st
assert b"hello from inside LUKS" in buf, buf
assert key.encode() not in buf, "echoed"
PY
	grep -q "Passphrase for .*p2 (LUKS2 $u)" out.txt || die "prompt: $(cat out.txt)"
	# vdmount asks before it daemonises; the mount is live when it
	# returns.
	local m pid
	m=$(vd_mnt k)
	echo "$m" >>"$VD_MOUNTS"
	timeout -k 5 120 /usr/bin/python3 - "$VDMOUNT" "$D/gpt.qcow2" "$m" "$K3" >mount-pty.txt <<'PY' || die "vdmount under a pty: $(cat mount-pty.txt)"
import os, pty, sys, time
tool, img, mnt, key = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tool, [tool, img, mnt])
buf = b""
end = time.time() + 60
while b"Passphrase for " not in buf and time.time() < end:
    d = os.read(fd, 4096)
    if not d:
        break
    buf += d
os.write(fd, key.encode() + b"\n")
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    buf += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors="replace"))
assert os.WEXITSTATUS(st) == 0, st
PY
	vd_is_mounted "$m" || die "not mounted after the prompt: $(cat mount-pty.txt)"
	cmp "$m/luks-$u/hello" "$D/tree/hello" || die "hello after the prompt"
	umount_ok "$m"
	# A daemon that dies (SIGSEGV) under ASan writes its report to a
	# log of our own: no passphrase in it either.
	m=$(vd_mnt s)
	ASAN_OPTIONS=log_path=$TD/asan-daemon:handle_segv=1 \
		mount_ok "$m" --key-file="$D/K3" "$D/gpt.qcow2" "$m"
	cat "$m/luks-$u/hello" >/dev/null
	pid=$(vd_daemon_pids "$m")
	[ -n "$pid" ] || die "no daemon"
	kill -SEGV $pid
	for _ in $(seq 100); do
		ls "$TD"/asan-daemon.* >/dev/null 2>&1 && ! kill -0 $pid 2>/dev/null && break
		sleep 0.1
	done
	ls "$TD"/asan-daemon.* >/dev/null 2>&1 || die "no ASan report from the daemon"
	vd_umount "$m" 2>/dev/null
	for f in out.txt mount-pty.txt "$TD/mount.err" "$TD/mount.out" \
		"$TD"/asan-daemon.* "$VD_SAN"/*; do
		[ -e "$f" ] || continue
		grep -qF "$K3" "$f" && die "the passphrase is in $f"
	done
	return 0
}

t_ubuntu() {
	D=$(img_or_die luks) || exit 1
	local U m pu wu
	U=$(img_or_die ubuntu) || exit 1
	pu=$(cat "$U/pv.uuid")
	wu=$(cat "$D/w1.uuid")
	m=$(vd_mnt u)
	mount_ok "$m" --key-file="$D/K0" --key-file="$D/K3" "$U/ubuntu-enc.qcow2" "$m"
	ls "$m" >ls.txt
	for f in p1 p2 p3.raw "luks-$pu.raw" vgubuntu-root vgubuntu-root.raw \
		vgubuntu-vault.raw "luks-$wu" "luks-$wu.raw"; do
		grep -qx "$f" ls.txt || die "no $f: $(tr '\n' ' ' <ls.txt)"
	done
	cmp "$m/vgubuntu-root.raw" "$D/plain.img" || die "root LV differs"
	cmp "$m/vgubuntu-root/hello" "$D/tree/hello" || die "root hello"
	cmp "$m/vgubuntu-vault.raw" "$D/w1.luks" || die "vault LV differs"
	same_plain "$m/luks-$wu.raw"
	cmp "$m/luks-$wu/sub/blob" "$D/tree/sub/blob" || die "LUKS in LV: blob"
	umount_ok "$m"
	# Only the outer key: the vault stays locked, one notice.
	mount_ok "$m" --key-file="$D/K0" "$U/ubuntu-enc.qcow2" "$m"
	[ -e "$m/vgubuntu-root/hello" ] && [ ! -e "$m/luks-$wu.raw" ] || die "tree with one key"
	grep -q "vgubuntu-vault is LUKS1-encrypted\|no key slot of .*vgubuntu-vault" "$TD/mount.err" ||
		die "no notice for the vault: $(cat "$TD/mount.err")"
	umount_ok "$m"
}

t_unfinished() {
	D=$(img_or_die luks) || exit 1
	vt ls --key-file="$D/K0" "$D/ri.luks" / >ls.txt 2>err.txt || die "vdtool ls"
	[ "$(cat ls.txt)" = disk.raw ] || die "$(cat ls.txt)"
	grep -q "ri.luks: an unfinished re-encryption is not supported" err.txt || die "$(cat err.txt)"
	vt info "$D/ri.luks" 2>/dev/null | grep -q "unsupported: an unfinished re-encryption" ||
		die "vdtool info does not say it"
}

t_qemu_aes192() {
	D=$(img_or_die luks) || exit 1
	local Q u
	Q=$(img_or_die qluks) || exit 1
	u=$(cat "$Q/q192.uuid")
	vt info "$Q/q192.luks" 2>/dev/null | grep -q "disk: LUKS1, UUID $u, cipher aes-xts-plain64, 384-bit key" ||
		die "info: $(vt info "$Q/q192.luks" 2>&1)"
	vt cat --key-file="$D/KW" --key-file="$D/K0" "$Q/q192.luks" "/luks-$u.raw" >v.raw 2>err.txt ||
		die "vdtool cat: $(cat err.txt)"
	cmp v.raw "$D/plain.img" || die "differs from the plaintext qemu encrypted"
	vt cat --key-file="$D/K0" "$Q/q192.luks" "/luks-$u/sub/blob" | cmp - "$D/tree/sub/blob" ||
		die "blob"
	vt ls --key-file="$D/KW" "$Q/q192.luks" / >ls.txt 2>err.txt
	grep -q "no key slot of .*q192.luks (LUKS1 $u) opens with the given keys" err.txt ||
		die "wrong key: $(cat err.txt)"
}

# A cipher libcrypto lacks, in a guest: the mount goes on, the volume is
# its ciphertext, one notice names the cipher.
t_qemu_serpent() {
	D=$(img_or_die luks) || exit 1
	local Q m
	Q=$(img_or_die qluks) || exit 1
	m=$(vd_mnt s)
	mount_ok "$m" --key-file="$D/K0" "$Q/qserp.luks" "$m"
	[ "$(ls "$m")" = disk.raw ] || die "tree: $(ls "$m" | tr '\n' ' ')"
	grep -q "qserp.luks: cipher serpent-xts-plain64 with a 512-bit key is not in libcrypto" "$TD/mount.err" ||
		die "notice: $(cat "$TD/mount.err")"
	[ "$(grep -c . "$TD/mount.err")" -eq 1 ] || die "not one line: $(cat "$TD/mount.err")"
	umount_ok "$m"
}

# variant NAME REASON — p1 of NAME.raw: the mount goes on, p1 is its
# ciphertext, one notice names REASON, vdtool info says it.
variant() {
	local m
	m=$(vd_mnt "$1")
	mount_ok "$m" --key-file="$D/K0" "$V/$1.raw" "$m"
	[ "$(ls "$m" | tr '\n' ' ')" = "disk.raw p1.raw " ] || die "tree: $(ls "$m" | tr '\n' ' ')"
	grep -q "p1: $2" "$TD/mount.err" || die "notice: $(cat "$TD/mount.err")"
	[ "$(grep -c . "$TD/mount.err")" -eq 1 ] || die "not one line: $(cat "$TD/mount.err")"
	umount_ok "$m"
	vt info "$V/$1.raw" >info.txt 2>/dev/null || die "vdtool info"
	grep -q "^    unsupported: $2" info.txt || die "info: $(cat info.txt)"
}

t_integrity() {
	D=$(img_or_die luks) || exit 1
	V=$(img_or_die variants) || exit 1
	variant int "integrity protection (hmac(sha256)) is not supported"
}

t_reencrypt_partition() {
	D=$(img_or_die luks) || exit 1
	V=$(img_or_die variants) || exit 1
	variant ri "an unfinished re-encryption is not supported"
}

# A detached header: the data partition holds ciphertext and nothing
# is found there; the header file alone is described by vdtool info and
# named in the one notice of a mount.
t_detached() {
	D=$(img_or_die luks) || exit 1
	V=$(img_or_die variants) || exit 1
	local m
	m=$(vd_mnt d)
	mount_ok "$m" --key-file="$D/K0" "$V/dh.raw" "$m"
	[ "$(ls "$m" | tr '\n' ' ')" = "disk.raw p1.raw " ] || die "tree: $(ls "$m" | tr '\n' ' ')"
	[ -s "$TD/mount.err" ] && die "a notice for plain ciphertext: $(cat "$TD/mount.err")"
	umount_ok "$m"
	vt info "$V/dh.hdr" >info.txt 2>/dev/null || die "vdtool info"
	grep -q "disk: LUKS2, UUID $(cryptsetup luksUUID "$V/dh.hdr")" info.txt || die "info: $(cat info.txt)"
	grep -q "^    unsupported: a detached header" info.txt || die "info: $(cat info.txt)"
	mount_ok "$m" --key-file="$D/K0" "$V/dh.hdr" "$m"
	[ "$(ls "$m")" = disk.raw ] || die "tree: $(ls "$m" | tr '\n' ' ')"
	grep -q "dh.hdr: a detached header" "$TD/mount.err" || die "notice: $(cat "$TD/mount.err")"
	[ "$(grep -c . "$TD/mount.err")" -eq 1 ] || die "not one line: $(cat "$TD/mount.err")"
	umount_ok "$m"
}

vd_test luks1-qemu-aes192-xts t_qemu_aes192
vd_test luks1-qemu-serpent-refused t_qemu_serpent
vd_test luks2-integrity-refused t_integrity
vd_test luks2-unfinished-reencryption-partition t_reencrypt_partition
vd_test luks2-detached-header t_detached
vd_test luks2-unfinished-reencryption-refused t_unfinished
vd_test luks2-lvm-ubuntu-layout-and-luks-in-lv t_ubuntu
vd_test luks2-partition-qcow2 t_partition
vd_test luks1-whole-disk-vs-qemu t_whole_luks1
vd_test luks2-4k-sectors t_sector4k
vd_test luks-wrong-key-and-no-key t_wrong_and_none
vd_test luks-info-without-key t_info
vd_test luks1-kdf-cap t_kdf_cap
vd_test luks-prompt-pty-no-leak t_prompt
vd_finish
