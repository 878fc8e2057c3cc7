#!/bin/bash
# vdtool check against qemu-img check.
#
# Clean images that qemu-img made (plain, zlib and zstd compressed, with
# internal snapshots, extended L2 entries, 1- and 64-bit refcounts, the
# top of a chain) and images with injected errors: refcounts edited up
# (leaks) and down (corruptions), L1 and L2 entries pointing past the
# end of the file or at other metadata, a compressed cluster past the
# end, a refcount block outside the image, leaks left by a qemu-io whose
# L1 updates failed (blkdebug error injection); VDI block maps (qemu-img
# checks them too) and VHD BATs with blocks twice or past the end. Each must get qemu-img check's exit code and its counts
# (corruptions, leaks, check errors, image end offset, allocated,
# fragmented and compressed clusters) in --output=json, and the same
# summary lines in the human shape.
. "$(dirname "$0")/lib.sh"

export PATH=/usr/bin:$PATH
MiB=$((1024 * 1024))

vdt() { T "$VDTOOL" "$@"; }

gen_chk() {
	seed_raw seed.raw $((6 * MiB))
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw plain.qcow2 || return 1
	qemu-img convert -c -O qcow2 -o cluster_size=4096 seed.raw zlib.qcow2 || return 1
	qemu-img convert -c -O qcow2 -o compression_type=zstd seed.raw zstd.qcow2 || return 1
	qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=65536 seed.raw ext.qcow2 || return 1
	qemu-img convert -O qcow2 -o refcount_bits=1,cluster_size=4096 seed.raw rc1.qcow2 || return 1
	qemu-img convert -O qcow2 -o refcount_bits=64 seed.raw rc64.qcow2 || return 1
	qemu-img convert -O qcow2 -o compat=0.10 seed.raw v2.qcow2 || return 1
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw snap.qcow2 || return 1
	qemu-img snapshot -c one snap.qcow2 || return 1
	scatter qcow2 snap.qcow2 $((6 * MiB)) 3 || return 1
	qemu-img snapshot -c two snap.qcow2 || return 1
	scatter qcow2 snap.qcow2 $((6 * MiB)) 4 || return 1
	qemu-img create -q -f qcow2 -b plain.qcow2 -F qcow2 top.qcow2 || return 1
	scatter qcow2 top.qcow2 $((6 * MiB)) 5 || return 1
	qemu-img create -q -f qcow2 empty.qcow2 1G || return 1
	qemu-img convert -O vdi seed.raw t.vdi || return 1
	qemu-img convert -O vpc seed.raw t.vhd || return 1
	qemu-img convert -O vmdk seed.raw t.vmdk || return 1
	qemu-img convert -O vhdx -o subformat=dynamic,block_size=1M seed.raw t.vhdx || return 1
	rm -f seed.raw
}

# qfield FILE WHAT — offsets in a qcow2 (4 KiB clusters or any):
# l1 (L1 table), l2 (first L2 table), data (the host cluster of the first
# normal L2 entry; entry: the byte offset of that entry), comp (the first
# compressed entry's offset), rt (refcount table), rb (first refcount
# block), end (file size), cs (cluster size), free (a cluster past the
# last referenced one, inside the first refcount block's range).
qfield() {
	/usr/bin/python3 - "$1" "$2" <<-'EOF'
		import struct, sys, os
		f = open(sys.argv[1], "rb"); what = sys.argv[2]
		h = f.read(104)
		cb = struct.unpack(">I", h[20:24])[0]; cs = 1 << cb
		l1n, l1 = struct.unpack(">IQ", h[36:48])
		rt = struct.unpack(">Q", h[48:56])[0]
		M = 0x00fffffffffffe00
		def be64(o):
		    f.seek(o); return struct.unpack(">Q", f.read(8))[0]
		l2 = next(be64(l1 + 8 * i) & M for i in range(l1n) if be64(l1 + 8 * i) & M)
		out = {"l1": l1, "l2": l2, "rt": rt, "rb": be64(rt) & M, "cs": cs,
		       "end": os.path.getsize(sys.argv[1])}
		for i in range(cs // 8):
		    e = be64(l2 + 8 * i)
		    if e & (1 << 62):
		        out.setdefault("compentry", l2 + 8 * i)
		    elif e & M:
		        out.setdefault("entry", l2 + 8 * i); out.setdefault("data", e & M)
		out["free"] = (out["end"] + cs - 1) // cs * cs
		print(out[what])
	EOF
}

# set_refcount FILE CLUSTER VALUE — 16-bit refcounts, the block present.
set_refcount() {
	/usr/bin/python3 - "$@" <<-'EOF'
		import struct, sys
		path, c, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		f = open(path, "r+b")
		h = f.read(104)
		cs = 1 << struct.unpack(">I", h[20:24])[0]
		rt = struct.unpack(">Q", h[48:56])[0]
		per = cs // 2
		f.seek(rt + 8 * (c // per)); rb = struct.unpack(">Q", f.read(8))[0]
		assert rb, "no refcount block for cluster %d" % c
		f.seek(rb + 2 * (c % per)); f.write(struct.pack(">H", v))
	EOF
}

# The fields both report, from qemu-img check's JSON (missing: 0).
check_fields() {
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if isinstance(d, list): d = d[0]
print(" ".join("%s=%s" % (k, d.get(k, 0)) for k in ("check-errors", "corruptions", "leaks",
      "image-end-offset", "total-clusters", "allocated-clusters", "fragmented-clusters",
      "compressed-clusters")))' "$1"
}

vrc_seen=

# same_verdict IMG — vdtool check and qemu-img check agree on IMG: exit
# code, JSON counts, and the human summary (stdout).
same_verdict() {
	local img=$1 qrc vrc
	T qemu-img check --output=json "$img" >q.json 2>q.err
	qrc=$?
	vdt check --output=json "$img" >v.json 2>v.err
	vrc=$?
	vrc_seen=$vrc
	[ "$qrc" = "$vrc" ] || die "$img: exit $vrc, qemu-img check exits $qrc ($(tail -n 2 q.err | tr '\n' ' ') / $(tail -n 2 v.err | tr '\n' ' '))"
	[ "$qrc" = 1 ] && return 0
	[ "$(check_fields q.json)" = "$(check_fields v.json)" ] ||
		die "$img: vdtool: $(check_fields v.json); qemu-img: $(check_fields q.json)"
	T qemu-img check "$img" >q.txt 2>/dev/null
	vdt check "$img" >v.txt 2>/dev/null
	cmp -s q.txt v.txt || die "$img: human output differs: $(diff q.txt v.txt | head -n 6 | tr '\n' ' ')"
	# The per-cluster lines (stderr) name the same problems.
	grep -c '^\(ERROR\|Leaked\)' q.err >q.n
	grep -c '^\(ERROR\|Leaked\)' v.err >v.n
	cmp -s q.n v.n || die "$img: $(cat v.n) problem lines, qemu-img $(cat q.n)"
	return 0
}

t_clean() {
	local d i
	d=$(img_or_die chk)
	for i in plain zlib zstd ext rc1 rc64 v2 snap top empty; do
		same_verdict "$d/$i.qcow2"
		[ "$(cat q.json | grep -c '"leaks"')" = 0 ] || die "$i: qemu finds leaks in a clean image"
	done
	# The chain, layer by layer.
	vdt check --backing-chain --output=json "$d/top.qcow2" >chain.json || die "--backing-chain: exit $?"
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [x["filename"].split("/")[-1] for x in d] == ["top.qcow2", "plain.qcow2"], d' chain.json ||
		die "--backing-chain JSON: $(head -c 300 chain.json)"
}

# poke_case NAME SRC CMD... — copy SRC to NAME.qcow2, run CMD (with the
# copy's name as last argument), compare the verdicts.
poke_case() {
	local name=$1 src=$2
	shift 2
	cp "$src" "$name.qcow2"
	"$@" "$name.qcow2" || die "$name: the poke failed"
	same_verdict "$name.qcow2"
}

leak_refcount() { set_refcount "$1" $(($(qfield "$1" free) / 4096)) 1 && truncate -s $(($(qfield "$1" free) + 4096)) "$1"; }
leak_high() { set_refcount "$1" $(($(qfield "$1" data) / 4096)) 2; }
refcount_low() { set_refcount "$1" $(($(qfield "$1" data) / 4096)) 0; }
l2_past_end() { poke_be64 "$1" "$(qfield "$1" entry)" $(((1 << 63) | ($(qfield "$1" end) + 40960))); }
l2_at_l1() { poke_be64 "$1" "$(qfield "$1" entry)" $(((1 << 63) | $(qfield "$1" l1))); }
l2_unaligned() { poke_be64 "$1" "$(qfield "$1" entry)" $(((1 << 63) | ($(qfield "$1" data) + 512))); }
l1_past_end() { poke_be64 "$1" "$(qfield "$1" l1)" $(((1 << 63) | ($(qfield "$1" end) + 8192))); }
l1_at_rb() { poke_be64 "$1" "$(qfield "$1" l1)" $(((1 << 63) | $(qfield "$1" rb))); }
rb_outside() { poke_be64 "$1" $(($(qfield "$1" rt) + 8)) $(($(qfield "$1" end) + 65536)); }
comp_past_end() {
	local e o
	e=$(qfield "$1" compentry)
	o=$(peek "$1" "$e" 8)
	# Keep the flag and the sector count, move the offset (bits 0-57
	# with 4 KiB clusters) past the end.
	poke_be64 "$1" "$e" $(((0x$o & ~((1 << 58) - 1)) | ($(qfield "$1" end) + 1000000)))
}
copied_cleared() {
	local e o
	e=$(qfield "$1" entry)
	o=$(peek "$1" "$e" 8)
	poke_be64 "$1" "$e" $((0x$o & ~(1 << 63)))
}

t_injected() {
	local d
	d=$(img_or_die chk)
	poke_case leak "$d/plain.qcow2" leak_refcount
	[ "$(check_fields q.json | sed 's/.*leaks=\([0-9]*\).*/\1/')" -ge 1 ] || die "the leak case leaks nothing: $(cat q.json)"
	poke_case leak2 "$d/plain.qcow2" leak_high
	poke_case low "$d/plain.qcow2" refcount_low
	poke_case l2past "$d/plain.qcow2" l2_past_end
	poke_case l2atl1 "$d/plain.qcow2" l2_at_l1
	poke_case l2unal "$d/plain.qcow2" l2_unaligned
	poke_case l1past "$d/plain.qcow2" l1_past_end
	poke_case l1atrb "$d/plain.qcow2" l1_at_rb
	poke_case rbout "$d/plain.qcow2" rb_outside
	poke_case comppast "$d/zlib.qcow2" comp_past_end
	poke_case copied "$d/plain.qcow2" copied_cleared
	poke_case snaplow "$d/snap.qcow2" refcount_low
	# Exit codes: 3 for leaks only, 2 for corruption.
	vdt check leak.qcow2 >/dev/null 2>&1
	[ $? = 3 ] || die "leaks only: exit not 3"
	vdt check low.qcow2 >/dev/null 2>&1
	[ $? = 2 ] || die "corruption: exit not 2"
}

# Leaks as a failed writer leaves them: qemu-io writing through
# blkdebug, which fails every L1 table update (QEMU's iotest 026 way):
# the clusters were allocated and counted, then never linked.
t_failed_writer() {
	qemu-img create -q -f qcow2 -o cluster_size=4096 k.qcow2 1G || die "create failed"
	printf '[inject-error]\nevent = "l1_update"\nerrno = "5"\nimmediately = "off"\nonce = "off"\n' >bd.cfg
	T qemu-io -c "write -P 0x33 0 128k" -c "write -P 0x44 600M 64k" "blkdebug:bd.cfg:k.qcow2" >/dev/null 2>&1
	T qemu-img check k.qcow2 >/dev/null 2>&1
	[ $? = 3 ] || die "qemu-io through blkdebug left no leaks (qemu-img check exit not 3)"
	same_verdict k.qcow2
	[ "$vrc_seen" = 3 ] || die "leaks only: exit $vrc_seen, expected 3"
}

t_refusals() {
	local d rc
	d=$(img_or_die chk)
	vdt check -r all "$d/plain.qcow2" >/dev/null 2>r.err
	rc=$?
	[ $rc = 1 ] || die "-r: exit $rc, expected 1"
	[ "$(wc -l <r.err)" = 1 ] && grep -q "repairs are not supported" r.err || die "-r message: $(cat r.err)"
	head -c 1048576 /dev/zero >raw.img
	vdt check raw.img >/dev/null 2>raw.err
	rc=$?
	[ $rc = 63 ] || die "raw: exit $rc, expected 63 (as qemu-img)"
	vdt check missing.qcow2 >/dev/null 2>/dev/null
	[ $? = 1 ] || die "a missing image: exit not 1"
	# A header qemu refuses: the check cannot run (1), as qemu-img's.
	cp "$d/plain.qcow2" bad.qcow2
	poke bad.qcow2 20 00 00 00 30
	same_verdict bad.qcow2
}

# le32/be32/be64 FILE OFFSET — a field, decimal.
rd() { /usr/bin/python3 -c 'import struct,sys; f=open(sys.argv[2],"rb"); f.seek(int(sys.argv[3])); t={"le32":"<I","be32":">I","be64":">Q"}[sys.argv[1]]; print(struct.unpack(t, f.read(struct.calcsize(t)))[0])' "$@"; }
poke_le32() { poke "$1" "$2" $(printf '%08x' "$3" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4 \3 \2 \1/'); }
poke_be32() { poke "$1" "$2" $(printf '%08x' "$3" | sed 's/../& /g'); }

# VDI and VMDK against qemu-img check (it checks their tables too); VHD,
# which qemu-img does not check, and what only vdtool finds, against the
# exit codes documented.
t_tables() {
	local d bm rc bat gt
	d=$(img_or_die chk)
	same_verdict "$d/t.vdi"
	bm=$(rd le32 "$d/t.vdi" $((0x154)))
	cp "$d/t.vdi" dup.vdi
	poke_le32 dup.vdi $((bm + 4)) "$(rd le32 dup.vdi "$bm")"
	same_verdict dup.vdi
	[ "$vrc_seen" = 2 ] || die "a block used twice: exit $vrc_seen, expected 2"
	cp "$d/t.vdi" big.vdi
	poke_le32 big.vdi "$bm" 100000
	same_verdict big.vdi
	[ "$vrc_seen" = 2 ] || die "a block index too large: exit $vrc_seen, expected 2"
	vdt check "$d/t.vhd" >/dev/null 2>&1 || die "a clean VHD: exit $?"
	bat=$(rd be64 "$d/t.vhd" $(($(rd be64 "$d/t.vhd" 16) + 16)))
	[ "$(rd be32 "$d/t.vhd" "$bat")" != 4294967295 ] || die "the VHD's first block is not stored"
	cp "$d/t.vhd" dup.vhd
	poke_be32 dup.vhd $((bat + 4)) "$(rd be32 dup.vhd "$bat")"
	vdt check dup.vhd >/dev/null 2>dup.err
	rc=$?
	[ $rc = 2 ] || die "two VHD blocks at one offset: exit $rc"
	grep -q "overlaps block" dup.err || die "message: $(cat dup.err)"
	cp "$d/t.vhd" past.vhd
	poke_be32 past.vhd "$bat" 4000000
	vdt check past.vhd >/dev/null 2>past.err
	rc=$?
	[ $rc = 2 ] || die "a VHD block past the end: exit $rc"
	grep -q "past the end" past.err || die "message: $(cat past.err)"
	# VMDK: a grain past the end (qemu-img check finds it too, and exits
	# 1: its check stops there with EINVAL; ours says corrupt, 2), a
	# grain named twice (only vdtool finds it).
	same_verdict "$d/t.vmdk"
	gt=$(($(rd le32 "$d/t.vmdk" $(($(rd le32 "$d/t.vmdk" 56) * 512))) * 512))
	[ "$(rd le32 "$d/t.vmdk" "$gt")" -gt 1 ] || die "the VMDK's first grain is not stored"
	cp "$d/t.vmdk" gpast.vmdk
	poke_le32 gpast.vmdk "$gt" 40000000
	T qemu-img check gpast.vmdk >/dev/null 2>q.err
	[ $? != 0 ] && grep -q "points after EOF" q.err || die "qemu-img check does not see the grain past the end"
	vdt check gpast.vmdk >/dev/null 2>gpast.err
	rc=$?
	[ $rc = 2 ] || die "a VMDK grain past the end: exit $rc"
	grep -q "past the end" gpast.err || die "message: $(cat gpast.err)"
	cp "$d/t.vmdk" gdup.vmdk
	poke_le32 gdup.vmdk $((gt + 4)) "$(rd le32 gdup.vmdk "$gt")"
	vdt check gdup.vmdk >/dev/null 2>gdup.err
	rc=$?
	[ $rc = 2 ] || die "a VMDK grain named twice: exit $rc"
	grep -q "overlaps grain" gdup.err || die "message: $(cat gdup.err)"
	# VHDX: a payload block past the end (qemu-img check agrees), two
	# entries naming one block (only vdtool finds it). The BAT's place:
	# the region table at 192 KiB ([MS-VHDX] 2.2.3), the BAT's GUID.
	same_verdict "$d/t.vhdx"
	bat=$(/usr/bin/python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read(1 << 20)
g = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")
n = struct.unpack_from("<I", d, 196608 + 8)[0]
print([struct.unpack_from("<Q", d, o + 16)[0] for o in (196608 + 16 + 32 * i for i in range(n)) if d[o:o + 16] == g][0])' "$d/t.vhdx")
	[ $(($(rd le32 "$d/t.vhdx" "$bat") & 7)) = 6 ] || die "the VHDX's first block is not present"
	cp "$d/t.vhdx" bpast.vhdx
	poke_le32 bpast.vhdx "$bat" $(((4000 << 20) | 6))
	T qemu-img check bpast.vhdx >/dev/null 2>q.err
	[ $? = 2 ] && grep -q "points after end of file" q.err || die "qemu-img check does not see the VHDX block past the end"
	vdt check bpast.vhdx >/dev/null 2>bpast.err
	rc=$?
	[ $rc = 2 ] || die "a VHDX block past the end: exit $rc"
	grep -q "past the end" bpast.err || die "message: $(cat bpast.err)"
	cp "$d/t.vhdx" bdup.vhdx
	poke_le32 bdup.vhdx $((bat + 8)) "$(rd le32 bdup.vhdx "$bat")"
	vdt check bdup.vhdx >/dev/null 2>bdup.err
	rc=$?
	[ $rc = 2 ] || die "two VHDX entries naming one block: exit $rc"
	grep -q "overlaps that of entry" bdup.err || die "message: $(cat bdup.err)"
}

# chk_expect RC PATTERN IMAGE — vdtool check IMAGE exits RC and says
# PATTERN (a grep -E pattern) on stderr.
chk_expect() {
	local want=$1 pat=$2 img=$3 rc
	vdt check "$img" >/dev/null 2>chk.err
	rc=$?
	[ "$rc" = "$want" ] || die "$img: exit $rc, expected $want: $(head -c 400 chk.err)"
	[ -z "$pat" ] || grep -Eq "$pat" chk.err || die "$img: no '$pat' in: $(head -c 400 chk.err)"
}

# VMDK descriptors (qemu-img check looks only at sparse extents' grains):
# a monolithicFlat and a twoGbMaxExtentSparse set that qemu-img made are
# clean (qemu-img agrees); then, each on a copy, a flat extent cut short,
# a line giving a sparse extent more sectors than it holds, a grain of
# the sparse extent past its end, a missing extent file and a createType
# the format does not define are corruptions (2), each with its message;
# an extent named outside the descriptor's folder is not opened (1).
t_vmdk_desc() {
	local ext gt
	T qemu-img create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 4M || die "qemu-img create monolithicFlat"
	T qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse sp.vmdk 4M || die "qemu-img create twoGbMaxExtentSparse"
	T qemu-io -f vmdk -c 'write -P 0x5a 0 256k' sp.vmdk >/dev/null || die "qemu-io write"
	[ -f flat-flat.vmdk ] && [ -f sp-s001.vmdk ] || die "qemu-img named the extents otherwise: $(ls)"
	grep -q '^RW 8192 FLAT "flat-flat.vmdk" 0' flat.vmdk || die "flat.vmdk's extent line: $(grep -a RW flat.vmdk)"
	grep -q '^RW 8192 SPARSE "sp-s001.vmdk"' sp.vmdk || die "sp.vmdk's extent line: $(grep -a RW sp.vmdk)"
	for ext in flat.vmdk sp.vmdk; do
		T qemu-img check "$ext" >/dev/null 2>&1 || die "qemu-img check $ext: exit $?"
		chk_expect 0 "" "$ext"
	done
	# the flat extent one sector short
	cp flat-flat.vmdk keep.vmdk
	truncate -s $((4 * MiB - 512)) flat-flat.vmdk
	chk_expect 2 "extent 1 \(line [0-9]+\): 8192 sectors from sector 0 of 'flat-flat.vmdk' end at byte 4194304, past the end of the file \(4193792 bytes\)" flat.vmdk
	mv keep.vmdk flat-flat.vmdk
	sed 's/^RW 8192 SPARSE/RW 8200 SPARSE/' sp.vmdk >big.vmdk
	chk_expect 2 "'sp-s001.vmdk' holds 8192 sectors, the descriptor gives it 8200" big.vmdk
	sed 's/"flat-flat.vmdk"/"gone-flat.vmdk"/' flat.vmdk >gone.vmdk
	chk_expect 2 "extent 1 \(line [0-9]+\): file 'gone-flat.vmdk': No such file" gone.vmdk
	sed 's/^createType=.*/createType="monolithicFlatt"/' flat.vmdk >ct.vmdk
	chk_expect 2 "createType 'monolithicFlatt' is not one the VMDK format defines" ct.vmdk
	mkdir -p sub
	sed 's/"flat-flat.vmdk"/"..\/flat-flat.vmdk"/' flat.vmdk >sub/out.vmdk
	chk_expect 1 "lies outside the descriptor's folder: not checked" sub/out.vmdk
	# a grain of the sparse extent past its end: its first grain table
	# (the directory's first entry) names one
	gt=$(($(rd le32 sp-s001.vmdk $(($(rd le32 sp-s001.vmdk 56) * 512))) * 512))
	[ "$(rd le32 sp-s001.vmdk "$gt")" -gt 1 ] || die "sp-s001.vmdk's first grain is not stored"
	poke_le32 sp-s001.vmdk "$gt" 40000000
	chk_expect 2 "grain 0 at sector 40000000 lies past the end of the file" sp.vmdk
}

[ -x "$VDTOOL" ] || { fail check "$VDTOOL is missing; build with make check-build"; exit 0; }
vd_test check-clean t_clean
vd_test check-injected t_injected
vd_test check-failed-writer t_failed_writer
vd_test check-refusals t_refusals
vd_test check-tables t_tables
vd_test check-vmdk-descriptor t_vmdk_desc
vd_finish
