#!/bin/bash
# LVM2 through the assembler alone (volumes/lvm*.c, by
# build/asan/tests/lvm_test --scan): the hostile corpus's LVM bases
# (tests/hostile/build.sh: PVs, a VG and LVs made by pvcreate, vgcreate
# and lvcreate on loop partitions) and each case of
# tests/hostile/lvm.cases.pending, its edits made by hostile.py: the
# notices the case expects, the LVs shown (its "expect ls" less the
# disk and partitions), and each LV it compares read out whole and
# compared with the disk's own bytes where lvm2 put them; and the VG as
# vslvminfo (libvslvm) reads it, where that reader can. The same
# cases run through vdmount once discovery and the namespace show LVs.
. "$(dirname "$0")/lib.sh"

LVT=$BUILD/asan/tests/lvm_test
HB_DIR=$VD_LIB_DIR/hostile
. "$HB_DIR/build.sh"

# check_cases DIR — every prepared case under DIR (one Python for all):
# its partitions p1 (1-4 MiB) and p2 (4-7 MiB) are cut out of the disk
# and scanned together, every LV written out (LVM_TEST_DUMP); what is
# wrong goes to the case's folder as "result" ("" when all is well).
check_cases() {
	timeout -k 5 600 python3 - "$1" "$LVT" <<-'EOF'
		import json, os, subprocess, sys
		root, lvt = sys.argv[1], sys.argv[2]

		def check(cdir):
		    c = json.load(open(os.path.join(cdir, "case.json")))
		    img = c["image"]
		    d = os.path.dirname(img)
		    data = open(img, "rb").read()
		    parts = [os.path.join(d, "p1"), os.path.join(d, "p2")]
		    open(parts[0], "wb").write(data[1 << 20:4 << 20])
		    open(parts[1], "wb").write(data[4 << 20:7 << 20])

		    dump = os.path.join(d, "lvs")
		    os.makedirs(dump, exist_ok=True)
		    r = subprocess.run([lvt, "--scan"] + parts, capture_output=True, text=True,
		                       env=dict(os.environ, LVM_TEST_DUMP=dump), timeout=120)
		    if r.returncode:
		        return "lvm_test --scan: exit %d: %s" % (r.returncode, r.stderr[-300:])
		    out, err = r.stdout, r.stderr
		    shown = ["disk.raw", "p1.raw", "p2.raw"] + [
		        l.split()[2] + ".raw" for l in out.splitlines()
		        if l.startswith("  lv ") and l.split()[5] == "shown"]
		    bad = []
		    for e in c["expect"]:
		        if e[0] == "warn":
		            if e[1].replace(img, "t.img") not in err:
		                bad.append("no notice '%s'" % e[1].replace(img, "t.img"))
		        elif e[0] == "ls":
		            if sorted(e[1:]) != sorted(shown):
		                bad.append("shown %s, expected %s" % (" ".join(shown), " ".join(e[1:])))
		        elif e[0] == "same":
		            f = os.path.join(dump, e[1][:-4])
		            got = open(f, "rb").read() if os.path.exists(f) else b""
		            want = open(e[3], "rb").read()[e[2]:e[2] + len(got)]
		            if not got or got != want:
		                bad.append("%s (%d bytes) differs from the disk at %d" % (e[1], len(got), e[2]))
		    if bad:
		        return "; ".join(bad) + " | notices: " + err.replace("\n", " | ")[:600]
		    return ""
		for name in sorted(os.listdir(root)):
		    cdir = os.path.join(root, name)
		    try:
		        res = check(cdir)
		    except Exception as ex:
		        res = "the check failed: %r" % ex
		    open(os.path.join(cdir, "result"), "w").write(res)
	EOF
}

t_case() {
	[ -f "$VD_T/cases/$1/case.json" ] || die "not prepared (its base failed to build)"
	[ -f "$VD_T/cases/$1/result" ] || die "not checked: $(tail -c 300 "$VD_T/check.err")"
	[ -s "$VD_T/cases/$1/result" ] && die "$(cat "$VD_T/cases/$1/result")"
	return 0
}

t_prepare() {
	[ -x "$LVT" ] || die "$LVT is missing; make check-build"
	[ -s "$VD_T/prepare.err" ] && die "$(head -n 5 "$VD_T/prepare.err" | tr '\n' '|')"
	return 0
}

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

need_root_lvm() {
	[ "$(id -u)" = 0 ] && command -v pvcreate >/dev/null && [ -e /dev/loop-control ]
}

if need_root_lvm; then
	for b in lvm lvmclash; do
		vd_img "hb_$b" >/dev/null 2>>"$VD_T/build.err"
	done
	[ -s "$VD_T/build.err" ] && sed 's/^/# /' "$VD_T/build.err"
	rm -rf --one-file-system "$VD_T/cases"
	mkdir -p "$VD_T/cases"
	python3 "$HB_DIR/hostile.py" prepare "$VD_T/cases" "$VD_WORK/img/$VD_SCRIPT.hb_" \
		"$HB_DIR/lvm.cases.pending" >/dev/null 2>"$VD_T/prepare.err"
	vd_test lvm-scan-prepare t_prepare
	check_cases "$VD_T/cases" 2>"$VD_T/check.err"
	while read -r name base; do
		vd_test "lvm-scan-$name" t_case "$name"
	done < <(python3 "$HB_DIR/hostile.py" list "$HB_DIR/lvm.cases.pending")
	vd_test lvm-scan-vslvminfo t_vslvm
else
	vd_test lvm-scan-prepare skip_test "needs root, lvm2 and loop devices"
fi
vd_finish
