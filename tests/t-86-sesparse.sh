#!/bin/bash
# VMDK seSparse (ESXi 6.5+ snapshots): deltas made by tests/mksesparse.py
# (no tool here writes seSparse) over monolithicSparse and monolithicFlat
# parents made by qemu-img, over another seSparse, and alone; allocated,
# unallocated, zeroed and unmapped grains, grain indexes above 4095 (the
# split fields of a table entry), tables out of directory order.
# Oracles: qemu-img convert -O raw (QEMU reads seSparse) and the raw bytes
# the builder applied; hostile headers, directories and tables.
. "$(dirname "$0")/lib.sh"

MKSE=$VD_LIB_DIR/mksesparse.py
# Not a whole number of 4 KiB grains nor of 16 MiB grain tables.
SIZE=$((8 * 1024 * 1024 + 3584))

gen_se() {
	seed_raw seed.raw "$SIZE"
	qemu-img convert -O vmdk seed.raw base.vmdk || return 1
	qemu-img convert -O vmdk -o subformat=monolithicFlat seed.raw flat.vmdk || return 1
	cp seed.raw se1.want || return 1
	python3 "$MKSE" se1.vmdk --size "$SIZE" --cur se1.want --parent base.vmdk \
		--write 0:4096:0x11 --write 5000:100:0x12 --write 1048000:200000:0x13 \
		--write $((SIZE - 1000)):1000:0x14 --zero $((2 * 1048576)):8192 \
		--unmap $((3 * 1048576)):4096 --grain-base 5000 --reverse-tables || return 1
	cp se1.want se2.want || return 1
	python3 "$MKSE" se2.vmdk --size "$SIZE" --cur se2.want --parent se1.vmdk \
		--write 4096:4096:0x21 --write 5100:10:0x22 --zero 0:4096 || return 1
	cp seed.raw overflat.want || return 1
	python3 "$MKSE" overflat.vmdk --size "$SIZE" --cur overflat.want --parent flat.vmdk \
		--write 65536:65536:0x31 --zero 0:4096 || return 1
	truncate -s "$SIZE" alone.want
	python3 "$MKSE" alone.vmdk --size "$SIZE" --cur alone.want \
		--write 12288:4096:0x41 --write $((5 * 1048576 + 7)):3:0x42 || return 1
	rm -f seed.raw
}

# Mount NAME: disk.raw must equal both qemu-img's reading and the bytes
# the builder wrote.
t_se() {
	local d m f
	d=$(img_or_die se)
	f=$d/$1
	m=$(vd_mnt m)
	cd / || die "cd /"
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" "$SIZE"
	cmp_files "$m/disk.raw" "${f%.vmdk}.want"
	cmp_oracle "$m/disk.raw" "$f"
	umount_ok "$m"
}

# vdtool info --json: the extents as qemu-img info lists them.
t_info() {
	local d
	d=$(img_or_die se)
	T "$VDTOOL" info --json "$d/se2.vmdk" >"$TD/a.json" || die "vdtool info failed"
	qemu-img info --output=json "$d/se2.vmdk" >"$TD/q.json" || die "qemu-img info failed"
	python3 - "$TD/a.json" "$TD/q.json" <<-'EOF' || die "info differs"
		import json, sys
		a = json.load(open(sys.argv[1])); q = json.load(open(sys.argv[2]))
		for k in ("format", "virtual-size", "cluster-size", "backing-filename"):
		    assert a[k] == q[k], (k, a[k], q[k])
		fa, fq = a["format-specific"]["data"], q["format-specific"]["data"]
		for k in ("cid", "parent-cid", "create-type"):
		    assert fa[k] == fq[k], (k, fa[k], fq[k])
		ea, eq = fa["extents"], fq["extents"]
		assert len(ea) == len(eq) == 1
		for k in ("virtual-size", "cluster-size", "format"):
		    assert ea[0][k] == eq[0][k], (k, ea[0][k], eq[0][k])
		assert ea[0]["filename"].endswith("se2-sesparse.vmdk")
	EOF
}

# ------------------------------------------------------------ hostile

# copy_set NAME — se.vmdk and its extent in the test folder; prints the
# extent's path.
copy_set() {
	local d
	d=$(img_or_die se)
	cp "$d/$1.vmdk" "$d/$1-sesparse.vmdk" "$TD/" || die "cp failed"
	[ "$1" = alone ] || cp "$d/base.vmdk" "$d/flat.vmdk" "$d/flat-flat.vmdk" \
		"$d/se1.vmdk" "$d/se1-sesparse.vmdk" "$TD/" 2>/dev/null
	echo "$TD/$1-sesparse.vmdk"
}

poke_le64() {
	# shellcheck disable=SC2046
	poke "$1" "$2" $(printf '%016x' "$3" | sed 's/../& /g' | tr ' ' '\n' | tac | tr '\n' ' ')
}

# need_full — inside a test: a slow case, run by make check-full (the
# hostile corpus, tests/hostile/sesparse.cases, has the same checks).
need_full() {
	[ "${VD_FULL:-}" = 1 ] || skip_test "slow: VD_FULL=1 runs it"
}

t_hostile_header() {
	local x m
	need_full
	m=$(vd_mnt m)
	x=$(copy_set alone)
	poke "$x" 0 00
	mount_fails "$m" "alone-sesparse.vmdk: vmdk: not a seSparse extent (magic 0x00000000cafeba" \
		-- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke "$x" 8 02
	mount_fails "$m" "seSparse version 0x0000000200000002 is not supported" -- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke "$x" 24 10
	mount_fails "$m" "seSparse grain of 16 sectors is not supported" -- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke "$x" 512 00
	mount_fails "$m" "bad seSparse volatile header magic" -- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke "$x" $((512 + 24)) 01
	mount_fails "$m" "the seSparse journal needs replaying" -- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke_le64 "$x" 80 $((1 << 40))
	mount_fails "$m" "seSparse volatile header at sector 1099511627776 lies past the end" \
		-- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke_le64 "$x" 128 1000000
	mount_fails "$m" "seSparse grain directory (64 entries at sector 1000000) lies past the end" \
		-- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	poke_le64 "$x" 136 0
	mount_fails "$m" "seSparse grain directory of 0 entries does not cover the capacity" \
		-- "$TD/alone.vmdk" "$m"
	x=$(copy_set alone)
	truncate -s 300 "$x"
	mount_fails "$m" "file too short for a seSparse header (300 bytes)" -- "$TD/alone.vmdk" "$m"
}

# expect_eio M OFF — a 4 KiB read at OFF of M/disk.raw fails with EIO and
# the mount stays up.
expect_eio() {
	local out
	out=$(T dd if="$1/disk.raw" of=/dev/null bs=4096 iflag=skip_bytes skip="$2" count=1 2>&1) &&
		die "reading at $2 succeeded"
	echo "$out" | grep -q 'Input/output error' || die "read error is not EIO: $out"
	vd_is_mounted "$1" || die "unmounted after the bad read"
}

# Bad directory and table entries, a truncated file: reads of what they
# cover fail with EIO, the rest reads as before.
t_hostile_tables() {
	local x m d
	need_full
	d=$(img_or_die se)
	m=$(vd_mnt m)
	# Directory entry 0 (at sector 8) without the "allocated" tag.
	x=$(copy_set alone)
	poke_le64 "$x" 4096 $((0x2000000000000000))
	mount_ok "$m" "$TD/alone.vmdk" "$m"
	expect_eio "$m" 12288
	umount_ok "$m"
	# A grain table index far past the end.
	poke_le64 "$x" 4096 $((0x10000000ffffff00))
	mount_ok "$m" "$TD/alone.vmdk" "$m"
	expect_eio "$m" 12288
	umount_ok "$m"
	# Table entry of grain 3 (at sector 9) with top nibble 4; grain 2,
	# unallocated, still reads as zeros.
	x=$(copy_set alone)
	poke "$x" $((4608 + 3 * 8 + 7)) 40
	mount_ok "$m" "$TD/alone.vmdk" "$m"
	expect_eio "$m" 12288
	cmp_range_file "$m/disk.raw" "$d/alone.want" 8192 4096
	umount_ok "$m"
	# Grains cut off by truncation.
	x=$(copy_set alone)
	truncate -s $(($(stat -c %s "$x") - 4096)) "$x"
	mount_ok "$m" "$TD/alone.vmdk" "$m"
	expect_eio "$m" $((5 * 1048576))
	cmp_range_file "$m/disk.raw" "$d/alone.want" 0 1048576
	umount_ok "$m"
}

cmp_range_file() {
	T cmp -i "$3:$3" -n "$4" "$1" "$2" >/dev/null || die "bytes $3+$4 of $1 differ from $2"
}

# The parent changed after the snapshot: the CID check.
t_stale() {
	local m
	copy_set se1 >/dev/null
	sed -i 's/^parentCID=.*/parentCID=0badcafe/' "$TD/se1.vmdk" || die "sed"
	m=$(vd_mnt m)
	mount_fails "$m" "parentCID 0badcafe does not match the CID" "--ignore-parent-id" \
		-- "$TD/se1.vmdk" "$m"
	mount_ok "$m" --ignore-parent-id "$TD/se1.vmdk" "$m"
	cmp_files "$m/disk.raw" "$(img_or_die se)/se1.want"
	umount_ok "$m"
}

vd_test sesparse-over-monolithicSparse t_se se1.vmdk
vd_test sesparse-over-sesparse t_se se2.vmdk
vd_test sesparse-over-monolithicFlat t_se overflat.vmdk
vd_test sesparse-alone t_se alone.vmdk
vd_test sesparse-info-vs-qemu t_info
vd_test sesparse-parentCID-mismatch t_stale
vd_test sesparse-hostile-headers t_hostile_header
vd_test sesparse-hostile-tables-eio t_hostile_tables
vd_finish
