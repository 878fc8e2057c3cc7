#!/bin/bash
# LVM2 through the assembler alone (volumes/lvm*.c, by
# build/asan/tests/lvm_test --scan, LVM_TEST_DUMP writing each LV out):
#  - the VG as vslvminfo (libvslvm), a reader we did not write, lists it,
#    on a PV that older reader can read (tests/hostile/build.sh's
#    lvmclash base, made by pvcreate, vgcreate and lvcreate);
#  - raid1, mirror, thin volumes and a thin snapshot whose metadata
#    lvm2 itself checked (vgcfgrestore), read back from the extents and
#    the thin mappings (thin_restore) they were given;
#  - vdtool info's LVM part (--json and text) against lvm2's reports.
# The hostile cases of tests/hostile/lvm.cases run through vdmount in
# t-99-hostile; t-86-lvm makes whole images with the lvm2 tools.
. "$(dirname "$0")/lib.sh"

LVT=$BUILD/asan/tests/lvm_test
HB_DIR=$VD_LIB_DIR/hostile
. "$HB_DIR/build.sh"

# A second reader: vslvminfo (libvslvm, 2018) on the clash base's second
# PV alone (one metadata area, one linear LV: what that version reads),
# its VG and LVs listed as lvm_test --scan lists them.
t_vslvm() {
	local d
	command -v vslvminfo >/dev/null || skip_test "no vslvminfo (libvslvm-utils)"
	d=$(img_or_die hb_lvmclash)
	dd if="$d/oracle.raw" of="$TD/pv.img" bs=1M skip=4 count=3 status=none
	T vslvminfo "$TD/pv.img" >"$TD/vs.out" 2>&1 || die "vslvminfo: $(tail -n 3 "$TD/vs.out")"
	awk -F'\t+' '
		/^Volume Group/ { s = "vg" }
		/^Physical Volume/ { s = "pv" }
		/^Logical Volume/ { s = "lv" }
		s == "vg" && $2 == "Name:" { name = $3 }
		s == "vg" && $2 == "Identifier:" { id = $3 }
		s == "vg" && $2 == "Sequence number:" { seq = $3 }
		s == "vg" && $2 == "Extent size:" { ext = $3; sub(/.*\(/, "", ext); sub(/ .*/, "", ext)
			print "vg " name " " id " " seq " " ext }
		s == "lv" && $2 == "Name:" { print "lv " $3 }
		s == "lv" && $2 == "Size:" { sz = $3; sub(/.*\(/, "", sz); sub(/ .*/, "", sz); print "size " sz }
	' "$TD/vs.out" >"$TD/vs.list"
	T "$LVT" --scan "$TD/pv.img" >"$TD/scan.out" 2>&1 || die "lvm_test --scan failed"
	awk '$1 == "vg" { print "vg " $2 " " $3 " " $5 " " $7 }
		$1 == "lv" { print "lv " $2; print "size " $5 }' "$TD/scan.out" >"$TD/scan.list"
	[ -s "$TD/vs.list" ] || die "nothing read from vslvminfo: $(head -c 300 "$TD/vs.out")"
	diff "$TD/vs.list" "$TD/scan.list" >"$TD/diff" || die "vslvminfo and the assembler differ: $(tr '\n' '|' <"$TD/diff")"
}

# ------------------------------------------------------------ raid1, mirror, thin
# lvcreate cannot make these without device-mapper, so their metadata is
# written into vgcfgbackup's text and given back with vgcfgrestore
# (which checks it: lvm2 refuses what it would not write); the data is
# random bytes in every extent, and the pool's metadata is made by
# thin_restore (thin-provisioning-tools) from a mapping we choose. VG rvg
# of 1 MiB extents on two 24 MiB PVs: r1 (raid1, rmeta at extent 0 and
# rimage at 1-4 of each PV), m (mirror, legs at pv0 5-6 and pv1 5-6, log
# at pv1 7), pool (_tmeta pv0 10-11, _tdata pv0 12-19: 64 KiB blocks),
# thin1 (device 1) and its snapshot snap1 (device 2), 16 MiB each.
# lvm_types_text IN OUT — vgcfgbackup's text with the LVs above added.
lvm_types_text() {
	python3 - "$1" "$2" <<-'E'
		import sys
		t = open(sys.argv[1]).read()
		n = [0]

		def lv(name, visible, seg):
		    n[0] += 1
		    return ('%s {\nid = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-%06d"\n'
		            'status = ["READ", "WRITE"%s]\nflags = []\n'
		            'creation_time = 1796609309\ncreation_host = "vm"\n'
		            'segment_count = 1\n\nsegment1 {\nstart_extent = 0\n%s}\n}\n'
		            % (name, n[0], ', "VISIBLE"' if visible else "", seg))

		def lin(pv, pe, count):
		    return ('extent_count = %d\ntype = "striped"\nstripe_count = 1\n'
		            'stripes = [\n"%s", %d\n]\n' % (count, pv, pe))
		lvs = "".join([
		    lv("r1", True, 'extent_count = 4\ntype = "raid1"\ndevice_count = 2\n'
		       'region_size = 1024\nraids = [\n"r1_rmeta_0", "r1_rimage_0",\n'
		       '"r1_rmeta_1", "r1_rimage_1"\n]\n'),
		    lv("r1_rmeta_0", False, lin("pv0", 0, 1)),
		    lv("r1_rimage_0", False, lin("pv0", 1, 4)),
		    lv("r1_rmeta_1", False, lin("pv1", 0, 1)),
		    lv("r1_rimage_1", False, lin("pv1", 1, 4)),
		    lv("m", True, 'extent_count = 2\ntype = "mirror"\nmirror_count = 2\n'
		       'mirror_log = "m_mlog"\nregion_size = 1024\nmirrors = [\n'
		       '"m_mimage_0", 0,\n"m_mimage_1", 0\n]\n'),
		    lv("m_mlog", False, lin("pv1", 7, 1)),
		    lv("m_mimage_0", False, lin("pv0", 5, 2)),
		    lv("m_mimage_1", False, lin("pv1", 5, 2)),
		    lv("pool", True, 'extent_count = 8\ntype = "thin-pool"\n'
		       'metadata = "pool_tmeta"\npool = "pool_tdata"\ntransaction_id = 2\n'
		       'chunk_size = 128\ndiscards = "passdown"\nzero_new_blocks = 1\n'),
		    lv("pool_tmeta", False, lin("pv0", 10, 2)),
		    lv("pool_tdata", False, lin("pv0", 12, 8)),
		    lv("thin1", True, 'extent_count = 16\ntype = "thin"\nthin_pool = "pool"\n'
		       'transaction_id = 0\ndevice_id = 1\n'),
		    lv("snap1", True, 'extent_count = 16\ntype = "thin"\nthin_pool = "pool"\n'
		       'transaction_id = 1\ndevice_id = 2\norigin = "thin1"\n'),
		])
		k = t.rindex("}")
		open(sys.argv[2], "w").write(t[:k] + "\nlogical_volumes {\n" + lvs + "}\n" + t[k:])
	E
}

gen_lvm_types() {
	local l1 l2 rc
	truncate -s 24M pv0.img pv1.img
	head -c $((24 * 1024 * 1024)) /dev/urandom >pv0.img
	head -c $((24 * 1024 * 1024)) /dev/urandom >pv1.img
	l1=$(losetup -f --show pv0.img) || return 1
	echo "$l1" >>"$VD_LOOPS"
	l2=$(losetup -f --show pv1.img) || { vd_loop_detach "$l1"; return 1; }
	echo "$l2" >>"$VD_LOOPS"
	(
		export LVM_SUPPRESS_FD_WARNINGS=1
		c=(--config 'global{activation=0}' --devices "$l1,$l2")
		pvcreate "${c[@]}" -q "$l1" "$l2" &&
			vgcreate "${c[@]}" -q -s 1m rvg "$l1" "$l2" &&
			vgcfgbackup "${c[@]}" -q -f vg.txt rvg &&
			lvm_types_text vg.txt vg2.txt &&
			vgcfgrestore "${c[@]}" -q --force -f vg2.txt rvg &&
			lvs "${c[@]}" -a --noheadings -o lv_name,segtype >lvs.txt
	) </dev/null
	rc=$?
	sync "$l1" "$l2"
	vd_loop_detach "$l1"
	vd_loop_detach "$l2"
	[ $rc = 0 ] || return 1
	cat >t.xml <<-'E'
		<superblock uuid="" time="1" transaction="2" flags="0" version="2" data_block_size="128" nr_data_blocks="128">
		<device dev_id="1" mapped_blocks="5" transaction="0" creation_time="0" snap_time="1">
		<range_mapping origin_begin="0" data_begin="40" length="4" time="0"/>
		<single_mapping origin_block="200" data_block="7" time="0"/>
		</device>
		<device dev_id="2" mapped_blocks="2" transaction="1" creation_time="1" snap_time="1">
		<single_mapping origin_block="0" data_block="40" time="0"/>
		<single_mapping origin_block="1" data_block="99" time="1"/>
		</device>
		</superblock>
	E
	truncate -s 2M meta.bin && thin_restore -q -i t.xml -o meta.bin || return 1
	# pv0's extents start at pe_start (1 MiB): _tmeta is extents 10-11.
	dd if=meta.bin of=pv0.img bs=1M seek=11 conv=notrunc status=none
}

t_types() {
	local d
	command -v thin_restore >/dev/null || skip_test "no thin_restore (thin-provisioning-tools)"
	d=$(img_or_die lvm_types)
	rm -rf "$TD/lvs" && mkdir -p "$TD/lvs"
	LVM_TEST_DUMP=$TD/lvs T "$LVT" --scan "$d/pv0.img" "$d/pv1.img" >"$TD/scan.out" 2>"$TD/scan.err" ||
		die "lvm_test --scan failed: $(tail -c 300 "$TD/scan.err")"
	T python3 - "$d" "$TD/lvs" >"$TD/cmp.out" 2>&1 <<-'E' || die "$(cat "$TD/cmp.out") | $(tr '\n' '|' <"$TD/scan.err")"
		import os, sys
		d, lvs = sys.argv[1], sys.argv[2]
		M, B = 1 << 20, 65536
		pv = [open(os.path.join(d, "pv%d.img" % i), "rb").read() for i in (0, 1)]

		def ext(p, first, n):  # extents first.. of PV p (pe_start 1 MiB)
		    return pv[p][M + first * M:M + (first + n) * M]
		tdata = ext(0, 12, 8)

		def thin(mapping):
		    out = bytearray(16 * M)
		    for v, dblk in mapping.items():
		        out[v * B:(v + 1) * B] = tdata[dblk * B:(dblk + 1) * B]
		    return bytes(out)
		want = {
		    "rvg-r1": ext(0, 1, 4),
		    "rvg-m": ext(0, 5, 2),
		    "rvg-thin1": thin({0: 40, 1: 41, 2: 42, 3: 43, 200: 7}),
		    "rvg-snap1": thin({0: 40, 1: 99}),
		}
		bad = []
		for name, w in want.items():
		    f = os.path.join(lvs, name)
		    got = open(f, "rb").read() if os.path.exists(f) else None
		    if got is None:
		        bad.append(name + ": not made")
		    elif got != w:
		        at = next((i for i in range(min(len(got), len(w))) if got[i] != w[i]), None)
		        bad.append("%s: %d bytes, want %d; first difference at %s" % (name, len(got), len(w), at))
		if os.path.exists(os.path.join(lvs, "rvg-pool")):
		    bad.append("the pool itself became a volume")
		if bad:
		    sys.exit("; ".join(bad))
	E
	grep -q 'lv pool rvg-pool size 8388608 sub' "$TD/scan.out" || die "pool: $(grep pool "$TD/scan.out")"
}

# vdtool info on the hostile corpus's lvm base: its --json against lvm2's
# own reports made when the base was built (pvs, lvs), its text naming
# each LV's volume.
t_info() {
	local d
	d=$(img_or_die hb_lvm)
	T "$BUILD/asan/vdtool" info --json "$d/img/disk.raw" >"$TD/info.json" 2>"$TD/info.err" ||
		die "vdtool info --json failed: $(tail -c 300 "$TD/info.err")"
	T python3 - "$TD/info.json" "$d" >"$TD/cmp.out" 2>&1 <<-'E' || die "$(cat "$TD/cmp.out")"
		import json, os, sys
		info = json.load(open(sys.argv[1]))
		d = sys.argv[2]
		vgs = info["lvm-volume-groups"]
		if len(vgs) != 1:
		    sys.exit("%d VGs, expected 1" % len(vgs))
		g = vgs[0]
		pvs = [l.split() for l in open(os.path.join(d, "pvs.txt")) if l.strip()]
		lvs = [l.split() for l in open(os.path.join(d, "lvs.txt")) if l.strip()]
		got_pv = [(p["uuid"], p["pe-start"], p["volume"]) for p in g["physical-volumes"]]
		want_pv = [(u, int(s), "p" + n[-1]) for n, s, u in pvs]
		if sorted(got_pv) != sorted(want_pv):
		    sys.exit("PVs %s, lvm2 says %s" % (got_pv, want_pv))
		got_lv = sorted((l["name"], l["size"], len(l["segments"]), l["volume"])
		                for l in g["logical-volumes"])
		want_lv = sorted((n, int(s), int(c), "hvg-" + n) for u, n, s, c in lvs)
		if got_lv != want_lv or any(u != g["uuid"] for u, n, s, c in lvs):
		    sys.exit("LVs %s, lvm2 says %s" % (got_lv, want_lv))
	E
	T "$BUILD/asan/vdtool" info "$d/img/disk.raw" >"$TD/info.txt" 2>&1 || die "vdtool info failed"
	grep -q '^LVM volume groups:' "$TD/info.txt" &&
		grep -q '^    LV st .*hvg-st.raw$' "$TD/info.txt" &&
		grep -q '^        extents 0-3: striped, 2 stripes of 16 KiB$' "$TD/info.txt" ||
		die "the text lacks the LVM part: $(sed -n '/^LVM/,$p' "$TD/info.txt" | tr '\n' '|')"
}

need_root_lvm() {
	[ "$(id -u)" = 0 ] && command -v pvcreate >/dev/null && [ -e /dev/loop-control ]
}

if need_root_lvm; then
	vd_test lvm-scan-vslvminfo t_vslvm
	vd_test lvm-scan-raid1-mirror-thin t_types
	vd_test lvm-vdtool-info t_info
else
	vd_test lvm-scan skip_test "needs root, lvm2 and loop devices"
fi
vd_finish
