#!/bin/bash
# Encrypted qcow2: encrypt.format=luks (each cipher, mode, IV generator
# and hash qemu-img accepts: AES read in every mode, serpent, twofish and
# cast5 refused by name; the default set is a sample, VD_FULL=1 runs
# them all) and the legacy encrypt.format=aes, alone and in chains.
#
# Images are made by qemu-img/qemu-io with a secret read from a file
# (encrypt.iter-time=10; creation is retried, as qemu-img's LUKS timing
# of the PBKDF fails now and then on a busy machine); the oracle is
# `qemu-img convert --image-opts ...,encrypt.key-secret=s -O raw`.
. "$(dirname "$0")/lib.sh"

KEY='qcow2 secret 89'

# qc_create OUT OPTS — a 32 MiB encrypted qcow2 holding src.raw's bytes.
qc_create() {
	local out=$1 opts=$2 i
	for i in 1 2 3 4 5; do
		qemu-img convert -f raw -O qcow2 --object secret,id=s,file=K \
			-o "encrypt.key-secret=s,$opts" src.raw "$out" 2>"$out.err" && return 0
		rm -f "$out"
		# An abort is no timing accident: no retry.
		grep -q "Assertion" "$out.err" && break
	done
	cat "$out.err" >&2
	return 1
}

oracle() {
	qemu-img convert --object secret,id=s,file=K --image-opts \
		"driver=qcow2,file.filename=$1,encrypt.key-secret=s" -O raw "$2"
}

gen_qc() {
	printf '%s' "$KEY" >K
	printf 'wrong' >KW
	truncate -s $((32 << 20)) src.raw
	head -c $((3 << 20)) /dev/urandom | dd of=src.raw bs=1M seek=1 conv=notrunc status=none
	head -c 100000 /dev/urandom | dd of=src.raw bs=1 seek=$((20 << 20)) conv=notrunc status=none
	qc_create luks.qcow2 encrypt.format=luks,encrypt.iter-time=10 || return 1
	qc_create aes.qcow2 encrypt.format=aes || return 1
	oracle luks.qcow2 luks.raw || return 1
	oracle aes.qcow2 aes.raw || return 1
	cmp luks.raw src.raw && cmp aes.raw src.raw || return 1
	# Chains: a plain child over the LUKS base (one cluster of its own),
	# and a LUKS child over a plain base.
	qemu-img create -q -f qcow2 -u -b luks.qcow2 -F qcow2 child.qcow2 32M || return 1
	qemu-io --object secret,id=s,file=K --image-opts \
		"driver=qcow2,file.filename=child.qcow2,backing.encrypt.key-secret=s" \
		-c "write -P 0x33 2M 64k" >/dev/null || return 1
	qemu-img convert --object secret,id=s,file=K --image-opts \
		"driver=qcow2,file.filename=child.qcow2,backing.encrypt.key-secret=s" \
		-O raw child.raw || return 1
	qemu-img convert -f raw -O qcow2 src.raw plainbase.qcow2 || return 1
	local i
	for i in 1 2 3 4 5; do
		qemu-img create -q -f qcow2 -b plainbase.qcow2 -F qcow2 \
			--object secret,id=s,file=K \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
			encchild.qcow2 && break
	done
	qemu-io --object secret,id=s,file=K --image-opts \
		"driver=qcow2,file.filename=encchild.qcow2,encrypt.key-secret=s" \
		-c "write -P 0x44 5M 128k" >/dev/null || return 1
	oracle encchild.qcow2 encchild.raw
}

t_luks_default() {
	D=$(img_or_die qc) || exit 1
	local m
	m=$(vd_mnt a)
	mount_ok "$m" --key-file="$D/K" "$D/luks.qcow2" "$m"
	cmp "$m/disk.raw" "$D/luks.raw" || die "disk.raw differs from qemu-img's"
	umount_ok "$m"
}

t_aes() {
	D=$(img_or_die qc) || exit 1
	"$VDTOOL" cat --key-file="$D/K" "$D/aes.qcow2" /disk.raw </dev/null | cmp - "$D/aes.raw" ||
		die "AES disk differs"
}

t_refusals() {
	D=$(img_or_die qc) || exit 1
	local m
	m=$(vd_mnt r)
	mount_fails "$m" "luks.qcow2" "--key-file" -- "$D/luks.qcow2" "$m"
	mount_fails "$m" "no key slot of" "luks.qcow2" -- --key-file="$D/KW" "$D/luks.qcow2" "$m"
	mount_fails "$m" "aes.qcow2" "--key-file" -- "$D/aes.qcow2" "$m"
}

t_chains() {
	D=$(img_or_die qc) || exit 1
	"$VDTOOL" cat --key-file="$D/K" "$D/child.qcow2" /disk.raw </dev/null | cmp - "$D/child.raw" ||
		die "plain child over LUKS base"
	"$VDTOOL" cat --key-file="$D/KW" --key-file="$D/K" "$D/encchild.qcow2" /disk.raw </dev/null |
		cmp - "$D/encchild.raw" || die "LUKS child over plain base"
}

# t_matrix CIPHER MODE IVGEN [IVHASH [HASH]] — one LUKS combination
# (ivgen-hash-alg IVHASH, hash-alg HASH: PBKDF2's and AF's). AES is
# read, in every mode (aes-192-xts by XTS over libcrypto's ECB, its key
# slot by our own LUKS1 code, as libcryptsetup's OpenSSL backend lacks
# it); serpent, twofish and cast5, which libcrypto lacks, are refused
# with one line naming the cipher.
t_matrix() {
	local o="encrypt.format=luks,encrypt.iter-time=10,encrypt.cipher-alg=$1,encrypt.cipher-mode=$2,encrypt.ivgen-alg=$3"
	[ -n "${4:-}" ] && o="$o,encrypt.ivgen-hash-alg=$4"
	[ -n "${5:-}" ] && o="$o,encrypt.hash-alg=$5"
	D=$(img_or_die qc) || exit 1
	cp "$D/K" K
	cp "$D/src.raw" src.raw
	if ! qc_create m.qcow2 "$o" 2>create.err; then
		# qemu-img 7.2 aborts on some (a 24-byte key in a mode
		# without XTS: its key material is not whole sectors, an
		# assertion in crypto/block.c): nothing to read, not ours.
		grep -q "Assertion" create.err &&
			skip_test "qemu-img aborts creating $1-$2-$3: $(grep Assertion create.err | head -n 1)"
		die "qemu-img cannot create $1-$2-$3${4:+:$4}: $(tail -n 2 create.err)"
	fi
	oracle m.qcow2 m.raw || die "oracle"
	"$VDTOOL" cat --key-file=K m.qcow2 /disk.raw </dev/null >v.raw 2>v.err
	case $1-${5:-} in
	*-md5)
		# qemu-img takes hash-alg=md5; libcryptsetup refuses a LUKS1
		# digest hash shorter than its 20-byte digest.
		[ -s v.raw ] && die "md5 read: move it to the read ones"
		grep -q "vdtool: .*m.qcow2: LUKS1 hash md5 (a 16-byte digest) is not supported" v.err ||
			die "not refused by name: $(cat v.err)"
		[ "$(grep -c . v.err)" -eq 1 ] || die "not one line: $(cat v.err)" ;;
	serpent* | twofish* | cast5*)
		[ -s v.raw ] && die "$1 read: a library has it now; move it to the read ones"
		grep -q "vdtool: .*m.qcow2: cipher ${1%-*}-$2-$3.* is not in libcrypto" v.err ||
			die "not refused by name: $(cat v.err)"
		[ "$(grep -c . v.err)" -eq 1 ] || die "not one line: $(cat v.err)" ;;
	*)
		cmp v.raw m.raw || die "differs from qemu-img: $(cat v.err)" ;;
	esac
	# Passed: the 32 MiB files go (VD_FULL runs 120 of these).
	rm -f src.raw m.raw v.raw m.qcow2
}

# A compressed cluster in an encrypted image (the L2 entry of guest
# offset 1 MiB given the compressed flag): that read fails with EIO and
# one log line, as under qemu; the rest of the disk reads.
t_compressed() {
	D=$(img_or_die qc) || exit 1
	cp "$D/luks.qcow2" c.qcow2
	/usr/bin/python3 - c.qcow2 <<'PY' || die "poke"
import struct, sys
f = open(sys.argv[1], "r+b")
h = f.read(48)
cb = struct.unpack(">I", h[20:24])[0]
l1 = struct.unpack(">Q", h[40:48])[0]
f.seek(l1)
l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
at = l2 + 8 * ((1 << 20) >> cb)
f.seek(at)
e = struct.unpack(">Q", f.read(8))[0]
assert e & 0x00fffffffffffe00, hex(e)
f.seek(at)
f.write(struct.pack(">Q", e | 1 << 62))
PY
	"$VDTOOL" cat --key-file="$D/K" c.qcow2 /disk.raw </dev/null >v.raw 2>err.txt &&
		die "a compressed cluster in an encrypted image was read"
	grep -q "compressed cluster at guest offset 0x100000 in an encrypted image" err.txt ||
		die "$(cat err.txt)"
	cmp -n $((1 << 20)) v.raw "$D/luks.raw" || die "the bytes before it"
}

vd_test qcow2-luks-compressed-cluster-refused t_compressed
vd_test qcow2-luks-default-mount t_luks_default
vd_test qcow2-aes-legacy t_aes
vd_test qcow2-crypt-refusals t_refusals
vd_test qcow2-crypt-chains t_chains
vd_test qcow2-luks-aes128-cbc-essiv t_matrix aes-128 cbc essiv sha256
vd_test qcow2-luks-aes192-xts-essiv-sha512 t_matrix aes-192 xts essiv sha256 sha512
vd_test qcow2-luks-aes256-cbc-plain t_matrix aes-256 cbc plain
vd_test qcow2-luks-aes256-xts-plain64-ivhash t_matrix aes-256 xts plain64 sha256
vd_test qcow2-luks-aes128-ctr t_matrix aes-128 ctr plain64
vd_test qcow2-luks-serpent-refused t_matrix serpent-256 xts plain64
if [ "${VD_FULL:-}" = 1 ]; then
	# Every cipher-alg, cipher-mode and ivgen-alg qemu-img 7.2 takes
	# for LUKS (qapi/crypto.json; crypto/block-luks.c's name map: aes,
	# cast5, serpent, twofish; its nettle backend: ecb, cbc, ctr, xts
	# but xts not with cast5's 8-byte blocks); ESSIV with each hash
	# giving a key size the cipher has; each PBKDF2/AF hash.
	for c in aes-128 aes-192 aes-256 serpent-128 serpent-192 serpent-256 \
		twofish-128 twofish-192 twofish-256 cast5-128; do
		for mode in xts cbc ctr ecb; do
			[ $c = cast5-128 ] && [ $mode = xts ] && continue
			for iv in plain plain64 essiv; do
				# qemu: "Cipher cast5-128 not supported with essiv".
				[ $iv = essiv ] && [ $c = cast5-128 ] && continue
				h=
				[ $iv = essiv ] && h=sha256
				vd_test "qcow2-luks-full-$c-$mode-$iv" t_matrix $c $mode $iv $h
			done
		done
	done
	vd_test qcow2-luks-full-aes128-essiv-md5 t_matrix aes-128 cbc essiv md5
	for h in md5 sha1 sha224 sha256 sha384 sha512 ripemd160; do
		vd_test "qcow2-luks-full-hash-$h" t_matrix aes-256 xts plain64 "" $h
	done
fi
vd_finish
