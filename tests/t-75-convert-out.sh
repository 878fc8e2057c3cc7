#!/bin/bash
# vdtool convert to image formats: -O qcow2 (plain, -c zstd and zlib,
# cluster sizes, preallocation=metadata, -B over a base).
#
# Oracles not ours: `qemu-img compare` of every output against its input
# (and, with -B, of the output read through its backing file),
# `qemu-img check` of every qcow2 output (no errors, no leaks), `qemu-img
# info` agreeing on format and virtual size (and on the compression type
# and the backing file). Plus: an existing output is refused without
# --force and replaced with it; an interrupted convert (SIGINT, SIGKILL)
# leaves no file under the output's name nor a temporary one.
. "$(dirname "$0")/lib.sh"

export PATH=/usr/bin:$PATH
MiB=$((1024 * 1024))

vdt() { T "$VDTOOL" "$@"; }

gen_conv() {
	seed_raw seed.raw $((24 * MiB + 4096))
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw plain.qcow2 || return 1
	qemu-img convert -c -O qcow2 seed.raw zlib.qcow2 || return 1
	qemu-img convert -O vmdk -o subformat=streamOptimized seed.raw stream.vmdk || return 1
	qemu-img convert -O vpc seed.raw dyn.vhd || return 1
	qemu-img create -q -f qcow2 -b plain.qcow2 -F qcow2 top.qcow2 || return 1
	scatter qcow2 top.qcow2 $((24 * MiB + 4096)) 2 || return 1
	# A raw input that is not a multiple of the cluster sizes.
	head -c $((3 * MiB + 1536)) seed.raw >odd.raw
	# A GPT disk whose second partition holds data (sfdisk writes the
	# table; the partition's bytes, cut out by dd, are the oracle).
	truncate -s $((40 * MiB)) gpt.raw
	printf 'label: gpt\nstart=2048, size=20480\nstart=22528, size=36864\n' | sfdisk -q gpt.raw || return 1
	dd if=seed.raw of=gpt.raw bs=512 seek=$((22528 + 100)) count=6000 conv=notrunc status=none || return 1
	qemu-img convert -O qcow2 gpt.raw gpt.qcow2 || return 1
	dd if=gpt.raw of=p2.raw bs=512 skip=22528 count=36864 status=none || return 1
	rm -f seed.raw gpt.raw
}

# info_field IMG KEY — a top-level field of qemu-img info --output=json.
info_field() {
	/usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
v = d
for k in sys.argv[1].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$2" <"$1"
}

# good_qcow2 OUT IN [compare options] — the oracles for one output.
good_qcow2() {
	local out=$1 in=$2
	shift 2
	T qemu-img info --output=json "$out" >info.json || die "qemu-img info $out failed"
	[ "$(info_field info.json format)" = qcow2 ] || die "$out: format $(info_field info.json format)"
	T qemu-img info --output=json "$in" >in.json || die "qemu-img info $in failed"
	[ "$(info_field info.json virtual-size)" = "$(info_field in.json virtual-size)" ] ||
		die "$out: virtual size $(info_field info.json virtual-size), input $(info_field in.json virtual-size)"
	T qemu-img check "$out" >chk.txt 2>&1 || die "qemu-img check $out: exit $?: $(head -n 3 chk.txt | tr '\n' ' ')"
	grep -q "No errors were found" chk.txt || die "qemu-img check $out: $(head -n 3 chk.txt)"
	T qemu-img compare "$@" "$in" "$out" >cmp.txt 2>&1 || die "qemu-img compare $in $out: $(cat cmp.txt)"
	vdt check "$out" >/dev/null 2>&1 || die "vdtool check $out: exit $?"
}

t_qcow2_plain() {
	local d i
	d=$(img_or_die conv)
	for i in plain.qcow2 zlib.qcow2 stream.vmdk dyn.vhd top.qcow2 odd.raw; do
		rm -f out.qcow2
		must vdt convert -O qcow2 "$d/$i" out.qcow2 >/dev/null
		good_qcow2 out.qcow2 "$d/$i"
	done
	# Zero and unallocated clusters are not written: far smaller than
	# the disk (24 MiB of which about 2.5 MiB hold data).
	[ "$(stat -c %s out.qcow2)" -lt $((2 * MiB)) ] || die "odd.raw became $(stat -c %s out.qcow2) bytes"
	must vdt convert -O qcow2 "$d/top.qcow2" top.qcow2 >/dev/null
	[ "$(stat -c %s top.qcow2)" -lt $((8 * MiB)) ] || die "top.qcow2 became $(stat -c %s top.qcow2) bytes"
}

t_qcow2_compressed() {
	local d t
	d=$(img_or_die conv)
	for t in zstd zlib; do
		rm -f c.qcow2
		must vdt convert -O qcow2 -c -o compression_type=$t "$d/top.qcow2" c.qcow2 >/dev/null
		good_qcow2 c.qcow2 "$d/top.qcow2"
		T qemu-img info --output=json c.qcow2 >ci.json
		[ "$(info_field ci.json format-specific.data.compression-type)" = $t ] ||
			die "compression type $(info_field ci.json format-specific.data.compression-type), asked $t"
	done
	# -c alone: zstd.
	must vdt convert -O qcow2 -c "$d/plain.qcow2" z.qcow2 >/dev/null
	good_qcow2 z.qcow2 "$d/plain.qcow2"
	T qemu-img info --output=json z.qcow2 >zi.json
	[ "$(info_field zi.json format-specific.data.compression-type)" = zstd ] || die "-c is not zstd"
	# Compressed: smaller than the plain conversion.
	must vdt convert -O qcow2 "$d/plain.qcow2" p.qcow2 >/dev/null
	[ "$(stat -c %s z.qcow2)" -lt "$(stat -c %s p.qcow2)" ] || die "-c output not smaller"
	# Other cluster sizes, compressed and not (the extremes with
	# VD_FULL=1).
	for c in 4k ${VD_FULL:+512 2M}; do
		rm -f cs.qcow2 csc.qcow2
		must vdt convert -O qcow2 -o cluster_size=$c "$d/odd.raw" cs.qcow2 >/dev/null
		good_qcow2 cs.qcow2 "$d/odd.raw"
		must vdt convert -O qcow2 -c -o cluster_size=$c,compression_type=zlib "$d/odd.raw" csc.qcow2 >/dev/null
		good_qcow2 csc.qcow2 "$d/odd.raw"
	done
}

t_qcow2_prealloc() {
	local d
	d=$(img_or_die conv)
	must vdt convert -O qcow2 -o preallocation=metadata "$d/top.qcow2" pre.qcow2 >/dev/null
	good_qcow2 pre.qcow2 "$d/top.qcow2"
	# Every cluster allocated (qemu-img map: one data extent), the file
	# sparse.
	T qemu-img map --output=json pre.qcow2 >map.json || die "qemu-img map failed"
	/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert all(e["data"] for e in m), [e for e in m if not e["data"]][:3]' map.json || die "not all clusters allocated"
	[ "$(du -k pre.qcow2 | cut -f1)" -lt $((12 * 1024)) ] || die "the preallocated file is not sparse: $(du -k pre.qcow2)"
	vdt convert -O qcow2 -c -o preallocation=metadata "$d/top.qcow2" x.qcow2 2>/dev/null
	[ $? = 2 ] || die "-c with preallocation=metadata: exit not 2"
}

t_qcow2_backing() {
	local d
	d=$(img_or_die conv)
	cp "$d/plain.qcow2" base.qcow2
	must vdt convert -O qcow2 -B base.qcow2 "$d/top.qcow2" over.qcow2 >/dev/null
	T qemu-img info --output=json over.qcow2 >oi.json
	[ "$(info_field oi.json backing-filename)" = base.qcow2 ] || die "backing file $(info_field oi.json backing-filename)"
	[ "$(info_field oi.json backing-filename-format)" = qcow2 ] || die "backing format $(info_field oi.json backing-filename-format)"
	good_qcow2 over.qcow2 "$d/top.qcow2"
	# Only what differs is stored: the scattered writes, a few clusters.
	[ "$(stat -c %s over.qcow2)" -lt $((1 * MiB)) ] || die "over.qcow2 is $(stat -c %s over.qcow2) bytes"
	# Zeros over data: the zero flag.
	cp "$d/plain.qcow2" base2.qcow2
	qemu-img create -q -f qcow2 -b base2.qcow2 -F qcow2 zeroed.qcow2 || die "create failed"
	qio qcow2 zeroed.qcow2 "write -z 0 1M" || die "qemu-io failed"
	must vdt convert -O qcow2 -B base2.qcow2 zeroed.qcow2 z2.qcow2 >/dev/null
	good_qcow2 z2.qcow2 zeroed.qcow2
}

t_force() {
	local d rc
	d=$(img_or_die conv)
	echo keep >exists.qcow2
	vdt convert -O qcow2 "$d/odd.raw" exists.qcow2 2>e.err
	rc=$?
	[ $rc = 1 ] || die "over an existing output: exit $rc, expected 1"
	[ "$(cat exists.qcow2)" = keep ] || die "the existing output was changed"
	grep -q "exists" e.err || die "message: $(cat e.err)"
	must vdt convert -O qcow2 --force "$d/odd.raw" exists.qcow2 >/dev/null
	good_qcow2 exists.qcow2 "$d/odd.raw"
	must vdt convert -O qcow2 -f "$d/plain.qcow2" exists.qcow2 >/dev/null
	good_qcow2 exists.qcow2 "$d/plain.qcow2"
	# No temporary file left in the folder.
	[ "$(ls -A | grep -c 'exists\.qcow2.')" = 0 ] || die "left behind: $(ls -A | tr '\n' ' ')"
}

# SIGINT, SIGKILL and SIGTERM while converting: a 256 MiB input of
# random data, compressed, takes seconds. Once the convert has its
# output open (a file of out/ among its descriptors) it is stopped, then
# signalled. If it had ended already the test says so and is skipped.
t_interrupt() {
	local sig pid i
	# Job control: a background job whose SIGINT is not ignored.
	set -m
	mkdir -p in out
	head -c $((256 * MiB)) /dev/urandom >in/big.raw
	for sig in INT KILL TERM; do
		"$VDTOOL" convert -q -O qcow2 -c in/big.raw out/big.qcow2 2>/dev/null &
		pid=$!
		for i in $(seq 200); do
			ls -l /proc/$pid/fd 2>/dev/null | grep -q "$PWD/out/" && break
			sleep 0.05
		done
		kill -STOP $pid 2>/dev/null
		if ! kill -0 $pid 2>/dev/null || [ -e out/big.qcow2 ]; then
			wait $pid
			echo "the convert ended before SIG$sig" >"$TD/.skip"
			return 0
		fi
		kill -$sig $pid
		kill -CONT $pid 2>/dev/null
		wait $pid
		[ ! -e out/big.qcow2 ] || die "SIG$sig left out/big.qcow2"
		[ "$(ls -A out | wc -l)" = 0 ] || die "SIG$sig left $(ls -A out)"
	done
}

t_vmdk() {
	local d sub
	d=$(img_or_die conv)
	for sub in monolithicSparse streamOptimized monolithicFlat; do
		rm -f v.vmdk v-flat.vmdk
		must vdt convert -O vmdk -o subformat=$sub "$d/top.qcow2" v.vmdk >/dev/null
		T qemu-img info --output=json v.vmdk >vi.json || die "$sub: qemu-img info failed"
		[ "$(info_field vi.json format)" = vmdk ] || die "$sub: format $(info_field vi.json format)"
		[ "$(info_field vi.json virtual-size)" = $((24 * MiB + 4096)) ] || die "$sub: size $(info_field vi.json virtual-size)"
		[ "$(info_field vi.json format-specific.data.create-type)" = $sub ] ||
			die "create type $(info_field vi.json format-specific.data.create-type), asked $sub"
		T qemu-img compare "$d/top.qcow2" v.vmdk >cmp.txt 2>&1 || die "$sub: qemu-img compare: $(cat cmp.txt)"
		vdt check v.vmdk >/dev/null 2>&1 || [ $sub = monolithicFlat ] || die "$sub: vdtool check: exit $?"
		# Our reader too.
		must vdt convert v.vmdk back.raw >/dev/null
		cmp_files back.raw "$(vd_oracle "$d/top.qcow2")"
		rm -f back.raw
	done
	[ -e v-flat.vmdk ] || die "no v-flat.vmdk"
	must vdt convert -O vmdk -o subformat=streamOptimized "$d/top.qcow2" s.vmdk >/dev/null
	[ "$(stat -c %s s.vmdk)" -lt $((4 * MiB)) ] || die "streamOptimized is $(stat -c %s s.vmdk) bytes"
	# A size that is not a multiple of a grain.
	must vdt convert -O vmdk "$d/odd.raw" odd.vmdk >/dev/null
	T qemu-img compare "$d/odd.raw" odd.vmdk >/dev/null 2>&1 || die "odd.vmdk differs"
}

t_vpc() {
	local d
	d=$(img_or_die conv)
	must vdt convert -O vpc "$d/top.qcow2" dyn.vhd >/dev/null
	T qemu-img info --output=json dyn.vhd >vi.json || die "qemu-img info failed"
	[ "$(info_field vi.json format)" = vpc ] || die "format $(info_field vi.json format)"
	[ "$(info_field vi.json virtual-size)" = $((24 * MiB + 4096)) ] || die "dynamic: size $(info_field vi.json virtual-size)"
	T qemu-img compare "$d/top.qcow2" dyn.vhd >cmp.txt 2>&1 || die "dynamic: $(cat cmp.txt)"
	# Only the 2 MiB blocks that hold data.
	[ "$(stat -c %s dyn.vhd)" -lt $((20 * MiB)) ] || die "dynamic VHD is $(stat -c %s dyn.vhd) bytes"
	vdt convert -O vpc -o subformat=fixed "$d/top.qcow2" fixed.vhd >/dev/null 2>fixed.err ||
		die "fixed: exit $?: $(cat fixed.err)"
	grep -q "rounded up to $((25 * MiB)) (a multiple of 1 MiB, as Azure requires)" fixed.err ||
		die "no Azure rounding message: $(cat fixed.err)"
	# qemu probes a VHD by the footer copy at 0, which a fixed one lacks.
	T qemu-img info -f vpc --output=json fixed.vhd >fi.json || die "qemu-img info failed"
	[ "$(info_field fi.json format)" = vpc ] || die "fixed: format $(info_field fi.json format)"
	[ "$(info_field fi.json virtual-size)" = $((25 * MiB)) ] || die "fixed: size $(info_field fi.json virtual-size)"
	[ "$(stat -c %s fixed.vhd)" = $((25 * MiB + 512)) ] || die "fixed: file of $(stat -c %s fixed.vhd) bytes"
	T qemu-img compare -F vpc "$d/top.qcow2" fixed.vhd >cmp.txt 2>&1 || die "fixed: $(cat cmp.txt)"
	must vdt convert fixed.vhd back.raw >/dev/null
	cmp -n $((24 * MiB + 4096)) back.raw "$(vd_oracle "$d/top.qcow2")" || die "fixed: our reader differs"
}

t_ova() {
	local d
	d=$(img_or_die conv)
	must vdt convert -O ova "$d/top.qcow2" app.ova >/dev/null
	T tar tf app.ova >list.txt || die "tar tf failed"
	printf 'app.ovf\napp.mf\napp-disk1.vmdk\n' | cmp -s - list.txt || die "tar order: $(tr '\n' ' ' <list.txt)"
	mkdir x && T tar xf app.ova -C x || die "tar xf failed"
	(cd x && T sha256sum -c --strict app.mf) >sum.txt 2>&1 || die "sha256sum -c: $(cat sum.txt)"
	must vdt verify app.ova >/dev/null
	if command -v xmllint >/dev/null; then
		T xmllint --noout x/app.ovf 2>xl.err || die "xmllint: $(head -n 3 xl.err)"
	fi
	grep -q 'ovf:capacity="'$((24 * MiB + 4096))'"' x/app.ovf || die "capacity missing"
	grep -q 'ovf:size="'"$(stat -c %s x/app-disk1.vmdk)"'"' x/app.ovf || die "file size missing"
	grep -q '<OperatingSystemSection' x/app.ovf || die "no OS section"
	T qemu-img info --output=json x/app-disk1.vmdk >di.json || die "qemu-img info of the disk failed"
	[ "$(info_field di.json format-specific.data.create-type)" = streamOptimized ] || die "the disk is not streamOptimized"
	T qemu-img compare "$d/top.qcow2" x/app-disk1.vmdk >cmp.txt 2>&1 || die "the disk differs: $(cat cmp.txt)"
	# Our own reader of appliances reads it back.
	must vdt convert app.ova back.raw >/dev/null
	cmp_files back.raw "$(vd_oracle "$d/top.qcow2")"
}

# An OVA's OperatingSystemSection names what vdtool inspect finds: an
# ext4 (mkfs.ext4 -d) holding a Debian root (os-release, the host's own
# sh for the architecture) gets Debian's CIM OsType (95, 96 for 64-bit:
# uname -m the oracle) and the PRETTY_NAME; a disk with no OS "Other"
# (1). The descriptor stays well-formed (xmllint when present) and the
# manifest right.
t_ova_os() {
	local d id
	d=$(img_or_die conv)
	mkdir -p t/etc t/usr/bin
	cat >t/etc/os-release <<-'EOF'
		PRETTY_NAME="Debian GNU/Linux 12 (bookworm) <&>"
		NAME="Debian GNU/Linux"
		VERSION_ID="12"
		ID=debian
	EOF
	cp "$(readlink -f /bin/sh)" t/usr/bin/sh
	truncate -s $((16 * MiB)) deb.raw
	T mkfs.ext4 -q -F -d t deb.raw >/dev/null 2>&1 || die "mkfs.ext4 -d failed"
	case $(uname -m) in x86_64 | aarch64 | ppc64* | s390x | riscv64) id=96 ;; *) id=95 ;; esac
	must vdt convert -O ova deb.raw deb.ova >/dev/null
	mkdir x && T tar xf deb.ova -C x || die "tar xf failed"
	(cd x && T sha256sum -c --strict deb.mf) >sum.txt 2>&1 || die "sha256sum -c: $(cat sum.txt)"
	if command -v xmllint >/dev/null; then
		T xmllint --noout x/deb.ovf 2>xl.err || die "xmllint: $(head -n 3 xl.err)"
	fi
	grep -q "<OperatingSystemSection ovf:id=\"$id\">" x/deb.ovf ||
		die "OS id: $(grep -A3 OperatingSystemSection x/deb.ovf | tr '\n' ' ')"
	grep -q '<Description>Debian GNU/Linux 12 (bookworm) &lt;&amp;&gt;</Description>' x/deb.ovf ||
		die "OS description: $(grep -A3 OperatingSystemSection x/deb.ovf | tr '\n' ' ')"
	must vdt convert -O ova "$d/plain.qcow2" none.ova >/dev/null
	mkdir y && T tar xf none.ova -C y || die "tar xf failed"
	grep -q '<OperatingSystemSection ovf:id="1">' y/none.ovf &&
		grep -q '<Description>Other</Description>' y/none.ovf ||
		die "no OS: $(grep -A3 OperatingSystemSection y/none.ovf | tr '\n' ' ')"
}

# --path: one volume of the tree (a partition) rather than the disk.
t_path() {
	local d
	d=$(img_or_die conv)
	must vdt convert -O qcow2 --path=/p2.raw "$d/gpt.qcow2" p2.qcow2 >/dev/null
	good_qcow2 p2.qcow2 "$d/p2.raw"
	must vdt convert -O vpc --path=/p2.raw "$d/gpt.qcow2" p2.vhd >/dev/null
	T qemu-img compare "$d/p2.raw" p2.vhd >cmp.txt 2>&1 || die "p2.vhd: $(cat cmp.txt)"
	vdt convert -O qcow2 --path=/p9.raw "$d/gpt.qcow2" p9.qcow2 2>p9.err
	[ $? = 1 ] || die "a missing path: exit not 1"
	[ ! -e p9.qcow2 ] || die "a missing path left an output"
}

[ -x "$VDTOOL" ] || { fail convert "$VDTOOL is missing; build with make check-build"; exit 0; }
vd_test convert-qcow2 t_qcow2_plain
vd_test convert-qcow2-compressed t_qcow2_compressed
vd_test convert-qcow2-prealloc t_qcow2_prealloc
vd_test convert-qcow2-backing t_qcow2_backing
vd_test convert-vmdk t_vmdk
vd_test convert-vpc t_vpc
vd_test convert-ova t_ova
vd_test convert-ova-os t_ova_os
vd_test convert-path t_path
vd_test convert-force t_force
vd_test convert-interrupt t_interrupt
vd_finish
