#!/bin/bash
# vdtool info and vdtool verify.
#
# info --json against oracles we did not write: `qemu-img info
# --output=json --backing-chain` for every layer field the two share
# (sizes, cluster size, backing names and format, dirty flag, snapshots,
# format-specific), the sum of `qemu-img map --output=json` data extents
# for allocated-bytes, `sfdisk --json` for partitions, `blkid -p` for
# filesystem type/label/UUID and the kernel's `df -B1` of a read-only
# loop mount for size/used. Images: a qcow2 chain (backing format
# recorded and not), zlib and zstd compressed qcow2, a qcow2 with two
# internal snapshots, VMDK monolithicSparse / streamOptimized /
# twoGbMaxExtentSparse, VHD dynamic and fixed, raw, a GPT disk with ext4 +
# swap + an ext4 whose superblock was poked, an MBR disk with logical
# partitions, an unpartitioned ext4 with a label that is not UTF-8.
#
# verify against OVAs made by GNU tar with manifests made by sha256sum /
# sha1sum: passes on a good one; a tampered byte (found with python's
# tarfile) fails naming the member, with the digest sha256sum gives;
# unlisted, missing and absent manifests.
. "$(dirname "$0")/lib.sh"

VDTOOL=${VDTOOL:-$BUILD/asan/vdtool}
MiB=$((1024 * 1024))

# ------------------------------------------------------------ images

# Some data at scattered places of a qcow2/vmdk-to-be.
mkdata() {
	seed_raw "$1" "$2"
}

gen_formats() {
	mkdata seed.raw $((16 * MiB))
	# A chain of three qcow2: base <- mid (format recorded) <- top
	# (format recorded, then its extension renamed so that none is: an
	# image as qemu before 6.1 wrote with -b alone).
	qemu-img convert -O qcow2 -o cluster_size=4096 seed.raw base.qcow2 || return 1
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 || return 1
	scatter qcow2 mid.qcow2 $((16 * MiB)) 2 || return 1
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 -o cluster_size=131072 top.qcow2 || return 1
	scatter qcow2 top.qcow2 $((16 * MiB)) 3 || return 1
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 nofmt.qcow2 || return 1
	python3 - nofmt.qcow2 <<-'EOF' || return 1
		import sys
		f = open(sys.argv[1], "r+b")
		head = f.read(65536)
		i = head.find(bytes.fromhex("e2792aca"), 104)
		assert i > 0, "no backing format extension"
		f.seek(i)
		f.write(bytes.fromhex("0badf00d"))
	EOF
	qemu-img convert -c -O qcow2 seed.raw zlib.qcow2 || return 1
	qemu-img convert -c -O qcow2 -o compression_type=zstd,lazy_refcounts=on,refcount_bits=32 \
		seed.raw zstd.qcow2 || return 1
	qemu-img convert -O qcow2 -o compat=0.10 seed.raw old.qcow2 || return 1
	# Two internal snapshots with different data between them.
	qemu-img convert -O qcow2 seed.raw snap.qcow2 || return 1
	qemu-img snapshot -c first snap.qcow2 || return 1
	scatter qcow2 snap.qcow2 $((16 * MiB)) 5 || return 1
	qemu-img snapshot -c "second one" snap.qcow2 || return 1
	qemu-img convert -O vmdk seed.raw sparse.vmdk || return 1
	qemu-img convert -O vmdk -o subformat=streamOptimized seed.raw stream.vmdk || return 1
	qemu-img convert -O vmdk -o subformat=twoGbMaxExtentSparse seed.raw split.vmdk || return 1
	qemu-img convert -O vpc seed.raw dyn.vhd || return 1
	qemu-img convert -O vpc -o subformat=fixed seed.raw fixed.vhd || return 1
	cp --sparse=always seed.raw plain.raw
	rm -f seed.raw
}

gen_disks() {
	local s=512
	# GPT: p1 ext4 with files, p2 swap, p3 ext4 whose superblock says
	# blocks of 2^(10+32) bytes (recognised by its magic, not mountable).
	truncate -s $((64 * MiB)) gpt.raw
	sfdisk -q gpt.raw <<-'EOF' || return 1
		label: gpt
		start=2048, size=40960, type=L, name="root fs"
		start=43008, size=8192, type=S, name="swap"
		start=51200, size=40960, type=L, name="broken"
	EOF
	mkdir -p tree/etc tree/data
	echo vdtool >tree/etc/hostname
	head -c 3000000 /dev/urandom >tree/data/blob
	mke2fs -q -F -t ext4 -L rootfs -d tree -E offset=$((2048 * s)) gpt.raw $((40960 * s / 1024))k || return 1
	truncate -s $((8192 * s)) sw.img
	chmod 600 sw.img
	mkswap -L swappy sw.img >/dev/null || return 1
	dd if=sw.img of=gpt.raw bs=512 seek=43008 conv=notrunc status=none || return 1
	rm -f sw.img
	mke2fs -q -F -t ext4 -L broken -E offset=$((51200 * s)) gpt.raw $((40960 * s / 1024))k || return 1
	# s_log_block_size, superblock offset 24.
	poke gpt.raw $((51200 * s + 1024 + 24)) 20 00 00 00
	qemu-img convert -O qcow2 gpt.raw gpt.qcow2 || return 1
	# MBR: p1 ext4 (bootable), p2 extended with logical p5 ext2 and p6.
	truncate -s $((48 * MiB)) mbr.raw
	sfdisk -q mbr.raw <<-'EOF' || return 1
		label: dos
		label-id: 0x5eed1234
		start=2048, size=20480, type=83, bootable
		start=22528, size=40960, type=5
		start=24576, size=20480, type=83
		start=47104, size=8192, type=82
	EOF
	local p5
	p5=$(sfdisk --json mbr.raw | python3 -c 'import json,sys; print([p["start"] for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith("5")][0])')
	# Filesystems made apart and copied in: mke2fs wipes the signatures
	# it finds at the start of the file it is given, the MBR included.
	mke2fs -q -F -t ext4 -L mbrroot -d tree p1.img $((20480 * s / 1024))k || return 1
	mke2fs -q -F -t ext2 -L logical p5.img $((20480 * s / 1024))k || return 1
	dd if=p1.img of=mbr.raw bs=512 seek=2048 conv=notrunc status=none || return 1
	dd if=p5.img of=mbr.raw bs=512 seek="$p5" conv=notrunc status=none || return 1
	rm -f p1.img p5.img
	sfdisk --json mbr.raw >/dev/null || return 1
	qemu-img convert -O vmdk mbr.raw mbr.vmdk || return 1
	# No table: one ext4 over the whole disk, its label not UTF-8.
	truncate -s $((24 * MiB)) whole.raw
	mke2fs -q -F -t ext4 -d tree -L "$(printf 'a\xff\xfeb\x01c')" whole.raw || return 1
	qemu-img convert -O qcow2 whole.raw whole.qcow2 || return 1
}

# ------------------------------------------------------------ helpers

# info_json OUT ARGS... — inside a test: vdtool info --json ARGS > OUT,
# exit 0, valid JSON (python3 -m json.tool).
info_json() {
	local out=$1 rc
	shift
	T "$VDTOOL" info --json "$@" >"$out" 2>"$TD/info.err"
	rc=$?
	[ $rc -eq 0 ] || die "vdtool info --json $* exited $rc: $(head -c 400 "$TD/info.err")"
	T python3 -m json.tool "$out" >/dev/null 2>"$TD/json.err" ||
		die "vdtool info --json $* is not JSON: $(head -c 300 "$TD/json.err")"
}

# cmp_qemu IMG [-f FMT] — inside a test: our JSON's layers against
# qemu-img info --backing-chain, field by field, and allocated-bytes
# against qemu-img map.
cmp_qemu() {
	local img=$1
	shift
	local qargs=() vargs=()
	if [ $# -ge 2 ] && [ "$1" = -f ]; then
		qargs=(-f "$2")
		vargs=(-F "$2")
	fi
	# Written back first: until then ext4's delayed allocation leaves
	# the extent tree's blocks out of st_blocks (actual-size), so the
	# two readings could straddle a writeback.
	T sync -f "$img"
	info_json "$TD/ours.json" "${vargs[@]}" "$img"
	T qemu-img info --output=json --backing-chain "${qargs[@]}" "$img" >"$TD/qemu.json" ||
		die "qemu-img info $img failed"
	T qemu-img map --output=json "${qargs[@]}" "$img" >"$TD/map.json" ||
		die "qemu-img map $img failed"
	T python3 - "$TD/ours.json" "$TD/qemu.json" "$TD/map.json" >"$TD/py.out" 2>&1 <<-'EOF' ||
		import json, sys
		ours = json.load(open(sys.argv[1]))
		qemu = json.load(open(sys.argv[2]))
		if isinstance(qemu, dict):
		    qemu = [qemu]
		qmap = json.load(open(sys.argv[3]))
		errs = []
		chain = ours["backing-chain"]
		if len(chain) != len(qemu):
		    errs.append("chain of %d layers, qemu has %d" % (len(chain), len(qemu)))
		keys = ["filename", "format", "virtual-size", "actual-size", "cluster-size",
		        "dirty-flag", "backing-filename", "full-backing-filename",
		        "format-specific"]
		for depth, (o, q) in enumerate(zip(chain, qemu)):
		    ks = list(keys)
		    # VMDK records no parent format; qemu assumes "vmdk".
		    if q.get("format") != "vmdk":
		        ks.append("backing-filename-format")
		    for k in ks:
		        if o.get(k) != q.get(k):
		            errs.append("layer %d %s: ours %r, qemu %r" % (depth, k, o.get(k), q.get(k)))
		    osn = o.get("snapshots", [])
		    qsn = q.get("snapshots", [])
		    if osn != qsn:
		        errs.append("layer %d snapshots: ours %r, qemu %r" % (depth, osn, qsn))
		top = dict(chain[0])
		for k in top:
		    if ours.get(k) != top[k]:
		        errs.append("top-level %s differs from backing-chain[0]" % k)
		data = sum(e["length"] for e in qmap if e["data"])
		if ours["allocated-bytes"] != data:
		    errs.append("allocated-bytes %r, qemu-img map data %d" % (ours["allocated-bytes"], data))
		for e in errs:
		    print(e)
		if errs:
		    sys.exit(errs[0])
		print("layers: %d, allocated %d" % (len(chain), data))
	EOF
		die "vs qemu-img: $(head -n 3 "$TD/py.out" | tr '\n' ' ')"
}

# cmp_parts RAW JSON — inside a test: partitions of our JSON against
# sfdisk --json of the raw file.
cmp_parts() {
	T sfdisk --json "$1" >"$TD/sfdisk.json" || die "sfdisk --json $1 failed"
	T python3 - "$2" "$TD/sfdisk.json" >"$TD/py.out" 2>&1 <<-'EOF' ||
		import json, re, sys
		ours = json.load(open(sys.argv[1]))
		pt = json.load(open(sys.argv[2]))["partitiontable"]
		ss = pt.get("sectorsize", 512)
		errs = []
		want_type = {"gpt": "gpt", "dos": "dos"}[pt["label"]]
		if ours["partition-table"]["type"] != want_type:
		    errs.append("table %r, sfdisk %r" % (ours["partition-table"]["type"], want_type))
		if ours["partition-table"].get("sector-size") != ss:
		    errs.append("sector size")
		theirs = {}
		for p in pt["partitions"]:
		    n = int(re.search(r"(\d+)$", p["node"]).group(1))
		    t = p["type"].lower()
		    if pt["label"] == "dos":
		        t = "0x%02x" % int(t, 16)
		    theirs[n] = {"number": n, "start": p["start"] * ss, "size": p["size"] * ss,
		                 "type": t}
		    if pt["label"] == "gpt":
		        theirs[n]["uuid"] = p["uuid"].lower()
		        theirs[n]["name"] = p.get("name", "")
		    else:
		        theirs[n]["bootable"] = bool(p.get("bootable", False))
		mine = {}
		for p in ours["partitions"]:
		    mine[p["number"]] = {k: p[k] for k in theirs.get(p["number"], {}) if k in p}
		if set(mine) != set(theirs):
		    errs.append("numbers %r, sfdisk %r" % (sorted(mine), sorted(theirs)))
		for n in theirs:
		    if mine.get(n) != theirs[n]:
		        errs.append("p%d: ours %r, sfdisk %r" % (n, mine.get(n), theirs[n]))
		for e in errs:
		    print(e)
		sys.exit(1 if errs else 0)
	EOF
		die "partitions vs sfdisk: $(head -n 3 "$TD/py.out" | tr '\n' ' ')"
}

# cmp_fs JSON RAW NUM — inside a test: partition NUM's filesystem in our
# JSON (NUM "whole": the top-level one) against blkid -p on its bytes of
# RAW and the kernel's df of a read-only loop mount of them.
cmp_fs() {
	local json=$1 raw=$2 num=$3 off len
	read -r off len < <(python3 - "$json" "$num" "$(stat -c %s "$raw")" <<-'EOF'
		import json, sys
		d = json.load(open(sys.argv[1]))
		if sys.argv[2] == "whole":
		    print(0, sys.argv[3])
		else:
		    p = [p for p in d["partitions"] if p["number"] == int(sys.argv[2])][0]
		    print(p["start"], p["size"])
	EOF
	)
	[ -n "$len" ] || die "no partition $num in our JSON"
	T blkid -p -o udev -O "$off" -S "$len" "$raw" >"$TD/blkid.$num" ||
		die "blkid -p found nothing on $raw at $off"
	kmount "$raw" "$off" "$len" "$TD/k$num"
	T df -B1 --output=size,used "$TD/k$num" | tail -n 1 >"$TD/df.$num" || die "df failed"
	kumount_ok "$TD/k$num"
	T python3 - "$json" "$num" "$TD/blkid.$num" "$TD/df.$num" >"$TD/py.out" 2>&1 <<-'EOF' ||
		import json, re, sys
		d = json.load(open(sys.argv[1]))
		if sys.argv[2] == "whole":
		    fs = d["filesystem"]
		else:
		    fs = [p for p in d["partitions"] if p["number"] == int(sys.argv[2])][0]["filesystem"]
		# blkid -o udev: ID_FS_LABEL_ENC has unsafe bytes as \xHH.
		b = {}
		for line in open(sys.argv[3]).read().split("\n"):
		    if "=" in line:
		        k, v = line.split("=", 1)
		        b[k] = v
		label = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
		               b.get("ID_FS_LABEL_ENC", "").encode()).decode("utf-8", "replace")
		size, used = map(int, open(sys.argv[4]).read().split())
		errs = []
		if fs is None:
		    sys.exit("no filesystem in our JSON")
		if fs["type"] != b["ID_FS_TYPE"]:
		    errs.append("type %r, blkid %r" % (fs["type"], b["ID_FS_TYPE"]))
		if fs["uuid"] != b["ID_FS_UUID"]:
		    errs.append("uuid %r, blkid %r" % (fs["uuid"], b["ID_FS_UUID"]))
		if fs["label"] != label:
		    errs.append("label %r, blkid %r" % (fs["label"], label))
		if (fs["size"], fs["used"]) != (size, used):
		    errs.append("size/used %d/%d, df %d/%d" % (fs["size"], fs["used"], size, used))
		if fs["journal-needed-recovery"] or fs["journal-replayed"]:
		    errs.append("journal flags set on a clean filesystem")
		for e in errs:
		    print(e)
		sys.exit(1 if errs else 0)
	EOF
		die "filesystem $num: $(head -n 3 "$TD/py.out" | tr '\n' ' ')"
}

# ------------------------------------------------------------ info tests

t_help() {
	local out
	out=$(T "$VDTOOL" info --help) || die "info --help failed"
	echo "$out" | grep -q -- --json || die "info --help does not mention --json"
	out=$(T "$VDTOOL" verify --help) || die "verify --help failed"
	echo "$out" | grep -q "Exit status" || die "verify --help lacks the exit status"
	T "$VDTOOL" info >/dev/null 2>&1
	[ $? -eq 2 ] || die "info without IMAGE should exit 2"
	T "$VDTOOL" info --bogus x >/dev/null 2>&1
	[ $? -eq 2 ] || die "info --bogus should exit 2"
	T "$VDTOOL" info "$TD/nonexistent.qcow2" >/dev/null 2>"$TD/err"
	[ $? -eq 1 ] || die "info on a missing file should exit 1"
	grep -q "^vdtool: .*nonexistent.qcow2" "$TD/err" || die "no message naming the file: $(cat "$TD/err")"
}

t_fmt() {
	local d
	d=$(img_or_die formats)
	cmp_qemu "$d/$1" "${@:2}"
}

# The three-layer chain: what the layers record, as seen by a person too.
t_chain_text() {
	local d
	d=$(img_or_die formats)
	info_json "$TD/o.json" "$d/top.qcow2"
	python3 - "$TD/o.json" "$d" <<-'EOF' || die "chain fields"
		import json, sys
		o = json.load(open(sys.argv[1]))
		c = o["backing-chain"]
		assert [l["filename"] for l in c] == [sys.argv[2] + "/" + n for n in ("top.qcow2", "mid.qcow2", "base.qcow2")], c
		assert c[0]["cluster-size"] == 131072 and c[2]["cluster-size"] == 4096
		assert c[0]["backing-filename-format"] == "qcow2"
		assert "backing-filename" not in c[2]
	EOF
	T "$VDTOOL" info "$d/top.qcow2" >"$TD/o.txt" || die "text info failed"
	for s in top.qcow2 mid.qcow2 base.qcow2 "backing file:" "allocated:" "partition table: none"; do
		grep -qF "$s" "$TD/o.txt" || die "text output lacks '$s'"
	done
	info_json "$TD/n.json" "$d/nofmt.qcow2"
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert "backing-filename-format" not in o, o; assert o["backing-filename"] == "mid.qcow2"' "$TD/n.json" ||
		die "a chain without a recorded backing format"
}

t_snapshots() {
	local d
	d=$(img_or_die formats)
	cmp_qemu "$d/snap.qcow2"
	python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert [(s["id"], s["name"]) for s in o["snapshots"]] == [("1", "first"), ("2", "second one")], o["snapshots"]' "$TD/ours.json" ||
		die "snapshot list"
	T "$VDTOOL" info "$d/snap.qcow2" >"$TD/o.txt" || die "text info failed"
	grep -q "second one" "$TD/o.txt" || die "text output lacks the snapshot"
}

t_gpt() {
	local d
	d=$(img_or_die disks)
	cmp_qemu "$d/gpt.qcow2"
	cp "$TD/ours.json" "$TD/gpt.json"
	cmp_parts "$d/gpt.raw" "$TD/gpt.json"
	cmp_fs "$TD/gpt.json" "$d/gpt.raw" 1
	python3 - "$TD/gpt.json" <<-'EOF' || die "partition details"
		import json, sys
		o = json.load(open(sys.argv[1]))
		p = {x["number"]: x for x in o["partitions"]}
		assert p[1]["type-name"] == "Linux filesystem", p[1]
		assert p[1]["filesystem"]["label"] == "rootfs"
		assert p[1]["filesystem"]["type"] == "ext4"
		assert "error" not in p[1]
		assert p[2]["type-name"] == "Linux swap" and p[2]["filesystem"] is None, p[2]
		assert p[3]["filesystem"] is None, p[3]
		assert "broken" in o["partitions"][2]["name"]
		assert p[3]["error"], p[3]
	EOF
	# The text report names every partition and why p3 is not shown.
	T "$VDTOOL" info "$d/gpt.qcow2" >"$TD/o.txt" 2>"$TD/o.err" || die "text info exited non-zero"
	for s in p1 p2 p3 "not shown" rootfs "Linux swap"; do
		grep -qF "$s" "$TD/o.txt" || die "text output lacks '$s'"
	done
}

t_mbr() {
	local d
	d=$(img_or_die disks)
	cmp_qemu "$d/mbr.vmdk"
	cp "$TD/ours.json" "$TD/mbr.json"
	cmp_parts "$d/mbr.raw" "$TD/mbr.json"
	cmp_fs "$TD/mbr.json" "$d/mbr.raw" 1
	cmp_fs "$TD/mbr.json" "$d/mbr.raw" 5
	python3 - "$TD/mbr.json" <<-'EOF' || die "MBR details"
		import json, sys
		o = json.load(open(sys.argv[1]))
		assert o["partition-table"]["id"] == "0x5eed1234", o["partition-table"]
		p = {x["number"]: x for x in o["partitions"]}
		assert p[1]["bootable"] and p[1]["type"] == "0x83", p[1]
		assert p[2]["extended"] and p[2]["filesystem"] is None, p[2]
		assert p[5]["filesystem"]["type"] == "ext2", p[5]
		assert p[6]["type"] == "0x82", p[6]
	EOF
}

t_whole() {
	local d
	d=$(img_or_die disks)
	cmp_qemu "$d/whole.qcow2"
	cp "$TD/ours.json" "$TD/whole.json"
	cmp_fs "$TD/whole.json" "$d/whole.raw" whole
	python3 - "$TD/whole.json" <<-'EOF' || die "the label that is not UTF-8"
		import json, sys
		o = json.load(open(sys.argv[1]))
		assert o["partition-table"]["type"] is None and o["partitions"] == []
		want = b"a\xff\xfeb\x01c".decode("utf-8", "replace")
		assert o["filesystem"]["label"] == want, o["filesystem"]["label"]
	EOF
	# The text report shows control characters as '?'.
	T "$VDTOOL" info "$d/whole.qcow2" >"$TD/o.txt" || die "text info failed"
	grep -qF "filesystem on the whole disk" "$TD/o.txt" || die "text lacks the whole-disk filesystem"
	LC_ALL=C grep -q $'\x01' "$TD/o.txt" && die "a control character reached the text output"
	return 0
}

# A partition table that cannot be read: exit 0, and the error is in the
# report.
t_bad_table() {
	local d
	d=$(img_or_die disks)
	cp "$d/gpt.raw" bad.raw
	# Break the primary GPT header and the backup (their signatures).
	poke bad.raw 512 00
	poke bad.raw $(($(stat -c %s bad.raw) - 512)) 00
	# Keep the protective MBR: the table is GPT but unreadable.
	info_json "$TD/b.json" bad.raw
	python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); t=o["partition-table"]; assert t["type"] is None and t.get("error"), t' "$TD/b.json" ||
		die "no error for an unreadable table: $(head -c 300 "$TD/b.json")"
}

# ------------------------------------------------------------ verify

# mkova DIR — an appliance in DIR: app.ovf naming two VMDKs, the disks,
# and a few manifests; the OVA is built per test.
gen_ova() {
	mkdata seed.raw $((8 * MiB))
	qemu-img convert -O vmdk -o subformat=streamOptimized seed.raw disk1.vmdk || return 1
	head -c $((3 * MiB + 123)) /dev/urandom >seed2.raw
	truncate -s $((4 * MiB)) seed2.raw
	qemu-img convert -O vmdk -o subformat=streamOptimized seed2.raw disk2.vmdk || return 1
	rm -f seed.raw seed2.raw
	cat >app.ovf <<-'EOF'
		<?xml version="1.0" encoding="UTF-8"?>
		<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
		  <References>
		    <File ovf:id="file1" ovf:href="disk1.vmdk"/>
		    <File ovf:id="file2" ovf:href="disk2.vmdk"/>
		  </References>
		  <DiskSection>
		    <Info>Virtual disks</Info>
		    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="8388608"/>
		    <Disk ovf:diskId="vmdisk2" ovf:fileRef="file2" ovf:capacity="4194304"/>
		  </DiskSection>
		</Envelope>
	EOF
	sha256sum app.ovf disk1.vmdk disk2.vmdk | awk '{ print "SHA256(" $2 ")= " $1 }' >sha256.mf
	sha1sum app.ovf disk1.vmdk disk2.vmdk | awk '{ print "SHA1(" $2 ")= " $1 }' >sha1.mf
	# Mixed: SHA1 and SHA256, spaces around '=', CRLF line ends.
	{
		sha1sum app.ovf | awk '{ printf "SHA1(%s) = %s\r\n", $2, $1 }'
		sha256sum disk1.vmdk | awk '{ printf "SHA256(%s)=%s\r\n", $2, toupper($1) }'
		sha1sum disk2.vmdk | awk '{ printf "SHA1(%s)= %s\r\n", $2, $1 }'
	} >mixed.mf
}

# ova MANIFEST [EXTRA FILES...] — build app.ova in $TD from the appliance
# with MANIFEST as app.mf (none when MANIFEST is "-").
ova() {
	local d mf=$1
	shift
	d=$(img_or_die ova)
	mkdir -p "$TD/a"
	cp "$d/app.ovf" "$d/disk1.vmdk" "$d/disk2.vmdk" "$TD/a/"
	local members=(app.ovf)
	if [ "$mf" != - ]; then
		cp "$d/$mf" "$TD/a/app.mf"
		members+=(app.mf)
	fi
	members+=(disk1.vmdk disk2.vmdk "$@")
	(cd "$TD/a" && T tar -cf "$TD/app.ova" "${members[@]}") || die "tar failed"
}

# verify_run ARGS — stdout to $TD/v.out, stderr to $TD/v.err; prints the
# exit status.
verify_run() {
	T "$VDTOOL" verify "$@" >"$TD/v.out" 2>"$TD/v.err"
	echo $?
}

t_verify_good() {
	local mf=$1 rc alg
	ova "$mf"
	rc=$(verify_run "$TD/app.ova")
	[ "$rc" = 0 ] || die "verify exited $rc: $(cat "$TD/v.out" "$TD/v.err" | tr '\n' ' ')"
	for f in app.ovf disk1.vmdk disk2.vmdk; do
		grep -qE "^OK $f \((SHA1|SHA256)\)$" "$TD/v.out" || die "no OK line for $f: $(tr '\n' ' ' <"$TD/v.out")"
	done
	[ "$(grep -c '^OK ' "$TD/v.out")" = 3 ] || die "not three OK lines"
	grep -qE '^(FAILED|MISSING|WARNING)' "$TD/v.out" && die "unexpected: $(tr '\n' ' ' <"$TD/v.out")"
	case $mf in sha1.mf) alg=SHA1 ;; *) alg=SHA256 ;; esac
	[ "$mf" = mixed.mf ] || grep -q "^OK disk2.vmdk ($alg)$" "$TD/v.out" || die "wrong algorithm named"
	if [ "$mf" = mixed.mf ]; then
		grep -q "^OK disk1.vmdk (SHA256)$" "$TD/v.out" && grep -q "^OK disk2.vmdk (SHA1)$" "$TD/v.out" ||
			die "mixed manifest: $(tr '\n' ' ' <"$TD/v.out")"
	fi
	# The same appliance unpacked: an .ovf beside its files.
	cp "$TD/a/app.mf" "$TD/a/app.mf.keep"
	rc=$(verify_run "$TD/a/app.ovf")
	[ "$rc" = 0 ] || die "verify of the .ovf exited $rc: $(cat "$TD/v.out" "$TD/v.err" | tr '\n' ' ')"
	[ "$(grep -c '^OK ' "$TD/v.out")" = 3 ] || die "not three OK lines for the .ovf"
	return 0
}

t_verify_tampered() {
	local rc off want got
	ova sha256.mf
	# The middle byte of disk2.vmdk's data inside the tar.
	off=$(python3 -c '
import sys, tarfile
t = tarfile.open(sys.argv[1])
m = t.getmember("disk2.vmdk")
print(m.offset_data + m.size // 2)' "$TD/app.ova") || die "tarfile failed"
	local b
	b=$(peek "$TD/app.ova" "$off" 1)
	poke "$TD/app.ova" "$off" "$(printf '%02x' $((0x$b ^ 0x5a)))"
	rc=$(verify_run "$TD/app.ova")
	[ "$rc" = 1 ] || die "verify of a tampered OVA exited $rc"
	grep -q '^FAILED disk2.vmdk (SHA256): expected ' "$TD/v.out" || die "no FAILED line for disk2.vmdk: $(tr '\n' ' ' <"$TD/v.out")"
	grep -q '^OK disk1.vmdk (SHA256)$' "$TD/v.out" || die "disk1.vmdk should still be OK"
	grep -q '^OK app.ovf (SHA256)$' "$TD/v.out" || die "app.ovf should still be OK"
	# The digest we report is the one sha256sum computes of the member.
	want=$(tar -xOf "$TD/app.ova" disk2.vmdk | sha256sum | cut -d' ' -f1)
	got=$(sed -n 's/^FAILED disk2.vmdk (SHA256): expected [0-9a-f]*, got \([0-9a-f]*\)$/\1/p' "$TD/v.out")
	[ "$got" = "$want" ] || die "reported digest $got, sha256sum says $want"
}

t_verify_unlisted() {
	local rc
	ova sha256.mf
	grep -v disk2.vmdk "$TD/a/app.mf" >"$TD/a/m" && mv "$TD/a/m" "$TD/a/app.mf"
	echo "not a certificate" >"$TD/a/app.cert"
	(cd "$TD/a" && T tar -cf "$TD/app.ova" app.ovf app.mf app.cert disk1.vmdk disk2.vmdk) || die "tar failed"
	rc=$(verify_run "$TD/app.ova")
	[ "$rc" = 0 ] || die "verify exited $rc: $(cat "$TD/v.out" "$TD/v.err" | tr '\n' ' ')"
	grep -q '^WARNING disk2.vmdk: not in the manifest$' "$TD/v.out" || die "disk2.vmdk not reported: $(tr '\n' ' ' <"$TD/v.out")"
	grep -q '^CERTIFICATE app.cert: present, not checked' "$TD/v.out" || die "the certificate is not reported"
	[ "$(grep -c '^OK ' "$TD/v.out")" = 2 ] || die "not two OK lines"
}

t_verify_missing() {
	local rc
	ova sha256.mf
	echo "SHA256(disk3.vmdk)= $(printf x | sha256sum | cut -d' ' -f1)" >>"$TD/a/app.mf"
	(cd "$TD/a" && T tar -cf "$TD/app.ova" app.ovf app.mf disk1.vmdk disk2.vmdk) || die "tar failed"
	rc=$(verify_run "$TD/app.ova")
	[ "$rc" = 1 ] || die "verify with a missing file exited $rc"
	grep -q '^MISSING disk3.vmdk$' "$TD/v.out" || die "no MISSING line: $(tr '\n' ' ' <"$TD/v.out")"
	[ "$(grep -c '^OK ' "$TD/v.out")" = 3 ] || die "the others should be OK"
	# Beside an .ovf too.
	rc=$(verify_run "$TD/a/app.ovf")
	[ "$rc" = 1 ] || die "verify of the .ovf with a missing file exited $rc"
	grep -q '^MISSING disk3.vmdk$' "$TD/v.out" || die "no MISSING line for the .ovf"
}

t_verify_no_manifest() {
	local rc
	ova -
	rc=$(verify_run "$TD/app.ova")
	[ "$rc" = 1 ] || die "verify without a manifest exited $rc"
	grep -q '^vdtool verify: .*no manifest' "$TD/v.err" || die "no clear message: $(cat "$TD/v.err")"
	[ "$(wc -l <"$TD/v.err")" = 1 ] || die "message is not one line"
	rc=$(verify_run "$TD/a/app.ovf")
	[ "$rc" = 1 ] || die "verify of an .ovf without a manifest exited $rc"
	grep -q 'no manifest' "$TD/v.err" || die "no clear message for the .ovf"
	# Not an appliance at all.
	rc=$(verify_run "$TD/a/disk1.vmdk")
	[ "$rc" = 1 ] || die "verify of a VMDK exited $rc"
	grep -q 'neither an OVA' "$TD/v.err" || die "no message for a VMDK: $(cat "$TD/v.err")"
}

# A manifest that climbs out of the folder is not followed.
t_verify_outside() {
	local rc
	ova sha256.mf
	echo "secret" >"$TD/secret"
	echo "SHA256(../secret)= $(sha256sum "$TD/secret" | cut -d' ' -f1)" >>"$TD/a/app.mf"
	rc=$(verify_run "$TD/a/app.ovf")
	[ "$rc" = 1 ] || die "verify followed ../secret (exit $rc)"
	grep -q '^FAILED ../secret (SHA256): outside' "$TD/v.out" || die "no FAILED line for ../secret: $(tr '\n' ' ' <"$TD/v.out")"
}

vd_test info-help-and-usage t_help
vd_test info-chain-vs-qemu t_fmt top.qcow2
vd_test info-chain-fields-and-text t_chain_text
vd_test info-no-backing-format-vs-qemu t_fmt nofmt.qcow2
vd_test info-qcow2-zlib-vs-qemu t_fmt zlib.qcow2
vd_test info-qcow2-zstd-vs-qemu t_fmt zstd.qcow2
vd_test info-qcow2-compat010-vs-qemu t_fmt old.qcow2
vd_test info-qcow2-snapshots-vs-qemu t_snapshots
vd_test info-vmdk-sparse-vs-qemu t_fmt sparse.vmdk
vd_test info-vmdk-stream-vs-qemu t_fmt stream.vmdk
vd_test info-vmdk-split-vs-qemu t_fmt split.vmdk
vd_test info-vhd-dynamic-vs-qemu t_fmt dyn.vhd
vd_test info-vhd-fixed-vs-qemu t_fmt fixed.vhd -f vpc
vd_test info-raw-vs-qemu t_fmt plain.raw
vd_test info-gpt-ext4-swap-broken t_gpt
vd_test info-mbr-logical t_mbr
vd_test info-whole-disk-ext4-bad-utf8 t_whole
vd_test info-unreadable-table t_bad_table
vd_test verify-sha256 t_verify_good sha256.mf
vd_test verify-sha1 t_verify_good sha1.mf
vd_test verify-mixed-crlf t_verify_good mixed.mf
vd_test verify-tampered-member t_verify_tampered
vd_test verify-unlisted-and-cert t_verify_unlisted
vd_test verify-missing-file t_verify_missing
vd_test verify-no-manifest t_verify_no_manifest
vd_test verify-name-outside-folder t_verify_outside
vd_finish
