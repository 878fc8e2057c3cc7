#!/bin/bash
# VDI (VirtualBox): normal ("dynamic") and fixed ("static") images as
# qemu-img writes them, compared with qemu-img convert -O raw, one with a
# GPT and an ext4 whose files are compared with the kernel's mount of
# qemu's reading; differencing chains (VirtualBox snapshots) made by
# tests/mkvdi.py, which qemu cannot read or write, compared with the raw
# bytes the builder applied; the parent search by UUID (child's folder,
# its parent folder under the folder rule, --backing-dir), the parent's
# modification UUID check, loops; hostile headers and block maps.
. "$(dirname "$0")/lib.sh"

MKVDI=$VD_LIB_DIR/mkvdi.py
TREECMP=$VD_LIB_DIR/treecmp.py
MKTREE=$VD_LIB_DIR/mktree.py
MIB=1048576
# Not a whole number of 1 MiB blocks.
SIZE=$((8 * MIB + 3584))

gen_vdi() {
	seed_raw seed.raw "$SIZE"
	qemu-img convert -O vdi seed.raw dynamic.vdi || return 1
	qemu-img convert -O vdi -o static=on seed.raw static.vdi || return 1
	rm -f seed.raw
	scatter vdi dynamic.vdi "$(virtual_size dynamic.vdi)" 3 || return 1
	scatter vdi static.vdi "$(virtual_size static.vdi)" 4
}

# Slow cases (VD_FULL=1).
gen_vdi_full() {
	# Mostly unallocated.
	qemu-img create -q -f vdi sparse.vdi 64M || return 1
	scatter vdi sparse.vdi $((64 * MIB)) 5 || return 1
	# 2 TiB with a few writes: an 8 MiB block map, validated at open.
	qemu-img create -q -f vdi big.vdi 2T || return 1
	qio vdi big.vdi "write -P 0x61 0 65536" \
		"write -P 0x62 $((1024 * 1024 * MIB + 1000 * 512)) 4096" \
		"write -P 0x63 $((2 * 1024 * 1024 * MIB - 4096)) 4096"
}

# A GPT disk whose p2 is an ext4 filled by mkfs.ext4 -d, as a VDI.
gen_parts() {
	python3 "$MKTREE" --profile small --seed 11 tree || return 1
	truncate -s $((24 * MIB)) root.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -d tree root.img || return 1
	truncate -s $((34 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
		start=10240, size=49152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	dd if=root.img of=disk.raw bs=512 seek=10240 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O vdi disk.raw parts.vdi || return 1
	qemu-img convert -O vdi -o static=on disk.raw parts-static.vdi || return 1
	rm -rf disk.raw root.img tree
}

# need_full — inside a test: a slow case, run by make check-full.
need_full() {
	[ "${VD_FULL:-}" = 1 ] || skip_test "slow: VD_FULL=1 runs it"
}

t_plain() {
	local d
	d=$(img_or_die "${2:-vdi}")
	mount_compare "$d/$1"
}

t_big() {
	local d m f t=$((1024 * 1024 * MIB))
	need_full
	d=$(img_or_die vdi_full)
	f=$d/big.vdi
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" $((2 * t))
	cmp_range "$m/disk.raw" "$f" vdi 0 131072
	cmp_range "$m/disk.raw" "$f" vdi $t 2097152
	cmp_range "$m/disk.raw" "$f" vdi $((2 * t - 3 * MIB)) $((3 * MIB))
	umount_ok "$m"
}

t_sparse() {
	need_full
	t_plain sparse.vdi vdi_full
}

# The ext4 in p2: the kernel's mount of qemu's reading against ours.
t_parts() {
	local d m o
	[ "$1" = parts.vdi ] || need_full
	need_loop
	d=$(img_or_die parts)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1" "$m"
	cmp_oracle "$m/disk.raw" "$d/$1"
	o=$(vd_oracle "$d/$1") || die "oracle failed"
	T test -d "$m/p2" || die "no p2/ in $(ls "$m" | tr '\n' ' ')"
	T dd if="$o" of="$TD/p1.want" bs=512 skip=2048 count=8192 status=none || die "dd failed"
	cmp_files "$m/p1.raw" "$TD/p1.want"
	kmount "$o" $((10240 * 512)) $((49152 * 512)) "$TD/k"
	must T python3 "$TREECMP" --ignore blocks,dirsize "$TD/k" "$m/p2" >/dev/null
	kumount_ok "$TD/k"
	umount_ok "$m"
}

# vdtool info --json names the fields as qemu-img info does.
t_info() {
	local d f
	[ "$2" = dynamic ] || need_full
	d=$(img_or_die vdi)
	f=$d/$1
	T "$VDTOOL" info --json "$f" >"$TD/info.json" || die "vdtool info failed"
	qemu-img info --output=json "$f" >"$TD/q.json" || die "qemu-img info failed"
	python3 - "$TD/info.json" "$TD/q.json" "$2" <<-'EOF' || die "info differs: $(cat "$TD/py.err")"
		import json, sys
		a = json.load(open(sys.argv[1])); q = json.load(open(sys.argv[2]))
		for k in ("format", "virtual-size", "cluster-size", "actual-size"):
		    assert a[k] == q[k], (k, a[k], q[k])
		assert a["subformat"] == sys.argv[3], a["subformat"]
	EOF
}

# ------------------------------------------------------------ chains

# A VirtualBox VM folder: vm/base.vdi (from seeded data, made by the
# builder and checked against qemu-img's reading), vm/Snapshots/s1.vdi
# and s2.vdi; cur.raw after each layer is what the chain must show.
gen_chain() {
	mkdir -p vm/Snapshots other || return 1
	seed_raw seed.raw "$SIZE"
	python3 "$MKVDI" base seed.raw vm/base.vdi || return 1
	qemu-img convert -f vdi -O raw vm/base.vdi base.want || return 1
	cmp base.want seed.raw || return 1
	cp seed.raw s1.want
	python3 "$MKVDI" diff vm/base.vdi vm/Snapshots/s1.vdi --cur s1.want \
		--write 0:4096:0x11 --write $((MIB - 512)):1024:0x12 \
		--write $((3 * MIB)):$((MIB)):0x13 --zero $((5 * MIB)):1 \
		--write $((SIZE - 1000)):1000:0x14 || return 1
	cp s1.want s2.want
	python3 "$MKVDI" diff vm/Snapshots/s1.vdi vm/Snapshots/s2.vdi --cur s2.want \
		--write 512:512:0x21 --write $((5 * MIB + 4096)):512:0x22 \
		--zero $((3 * MIB)):1 || return 1
	# A static base and an orphan (VD_FULL only: their tests are).
	[ "${VD_FULL:-}" = 1 ] || { gen_chain_rest && rm -f seed.raw; return; }
	python3 "$MKVDI" base --static seed.raw vm/fixed.vdi || return 1
	cp seed.raw f1.want
	python3 "$MKVDI" diff vm/fixed.vdi vm/overfixed.vdi --cur f1.want \
		--write 8192:8192:0x31 || return 1
	cp seed.raw o.want
	python3 "$MKVDI" diff vm/base.vdi other/orphan.vdi --cur o.want --write 0:512:0x51 || return 1
	python3 "$MKVDI" set other/orphan.vdi link 99999999999999999999999999999999 || return 1
	gen_chain_rest && rm -f seed.raw
}

# The rest of gen_chain, in its folder: the parent modified since, a loop.
gen_chain_rest() {
	# A child whose parent was changed after it was made.
	cp seed.raw m1.want
	python3 "$MKVDI" diff vm/base.vdi vm/modified.vdi --cur m1.want \
		--write 0:512:0x41 || return 1
	python3 "$MKVDI" set vm/modified.vdi parent-modify 00112233445566778899aabbccddeeff || return 1
	# Parents that are nowhere, and a loop: a.vdi's parent is b.vdi's
	# UUID and b.vdi's parent a.vdi's.
	mkdir -p loop && cp seed.raw l.want
	python3 "$MKVDI" diff vm/base.vdi loop/a.vdi --cur l.want --write 0:512:0x61 || return 1
	python3 "$MKVDI" diff loop/a.vdi loop/b.vdi --cur l.want --write 512:512:0x62 || return 1
	python3 "$MKVDI" set loop/a.vdi link "$(python3 "$MKVDI" show loop/b.vdi | sed -n 's/^uuid //p')" || return 1
	cp loop/a.vdi loop/self.vdi
	python3 "$MKVDI" set loop/self.vdi link "$(python3 "$MKVDI" show loop/self.vdi | sed -n 's/^uuid //p')"
}

# mount_want IMG WANT [options] — inside a test.
mount_want() {
	local m img=$1 want=$2
	shift 2
	m=$(vd_mnt "w$RANDOM")
	mount_ok "$m" "$@" "$img" "$m"
	check_root_tree "$m" "$(stat -c %s "$want")"
	cmp_files "$m/disk.raw" "$want"
	must random_reads "$m/disk.raw" "$want" >/dev/null
	umount_ok "$m"
}

# The base beside the Snapshots folder: VirtualBox's layout, found by
# UUID in the folder above the child's and allowed there (issue 22), so
# the chain mounts with no option. Two folders up is not searched
# (--backing-dir finds it), and a .vdi in the folder above that is a
# symlink to a file elsewhere is refused by the folder rule.
t_chain() {
	local d m
	d=$(img_or_die chain)
	m=$(vd_mnt m)
	mkdir -p "$TD/far/a/b" "$TD/sym/Snapshots" || die "mkdir"
	cd / || die "cd /"
	mount_want "$d/vm/Snapshots/s2.vdi" "$d/s2.want"
	mount_want "$d/vm/Snapshots/s1.vdi" "$d/s1.want"
	cp "$d/vm/Snapshots/s1.vdi" "$TD/far/a/b/" && cp "$d/vm/base.vdi" "$TD/far/" || die "cp"
	mount_fails "$m" "not found among the .vdi files of $TD/far/a/b and $TD/far/a" \
		-- "$TD/far/a/b/s1.vdi" "$m"
	mount_want "$TD/far/a/b/s1.vdi" "$d/s1.want" --backing-dir="$TD/far"
	cp "$d/vm/Snapshots/s1.vdi" "$TD/sym/Snapshots/" || die "cp"
	ln -s "$TD/far/base.vdi" "$TD/sym/base.vdi" || die "ln"
	mount_fails "$m" "is outside the allowed folders" -- "$TD/sym/Snapshots/s1.vdi" "$m"
	# Mounted from the VM folder, both are inside.
	cd "$d/vm" || die "cd"
	mount_want Snapshots/s2.vdi "$d/s2.want"
}

# A --backing-dir folder is searched too.
t_chain_backing_dir() {
	local d
	d=$(img_or_die chain)
	mkdir -p "$TD/a/b" "$TD/elsewhere" || die "mkdir"
	cp "$d/vm/Snapshots/s1.vdi" "$d/vm/Snapshots/s2.vdi" "$TD/a/b/" || die "cp"
	cp "$d/vm/base.vdi" "$TD/elsewhere/" || die "cp"
	mount_want "$TD/a/b/s2.vdi" "$d/s2.want" --backing-dir="$TD/elsewhere"
	# Not found without it: the message names the folders searched.
	local m
	m=$(vd_mnt m)
	mount_fails "$m" "vdi: parent {" "not found among the .vdi files of $TD/a/b and $TD/a" \
		-- "$TD/a/b/s1.vdi" "$m"
}

t_fixed_parent() {
	local d
	need_full
	d=$(img_or_die chain)
	mount_want "$d/vm/overfixed.vdi" "$d/f1.want"
	T "$VDTOOL" info --json "$d/vm/overfixed.vdi" >"$TD/i.json" || die "info failed"
	grep -q '"subformat": "differencing"' "$TD/i.json" || die "no differencing subformat"
	grep -q '"backing-filename-format": "vdi"' "$TD/i.json" || die "no backing format"
	grep -q '"subformat": "static"' "$TD/i.json" || die "no static parent in the chain"
}

t_modified() {
	local d m
	d=$(img_or_die chain)
	m=$(vd_mnt m)
	mount_fails "$m" "parent modification UUID {33221100-5544-7766-8899-aabbccddeeff} does not match" \
		"--ignore-parent-id" -- "$d/vm/modified.vdi" "$m"
	mount_want "$d/vm/modified.vdi" "$d/m1.want" --ignore-parent-id
}

t_orphan() {
	local d m
	need_full
	d=$(img_or_die chain)
	m=$(vd_mnt m)
	mount_fails "$m" "parent {99999999-9999-9999-9999-999999999999} not found" \
		-- "$d/other/orphan.vdi" "$m"
}

t_loop() {
	local d m
	d=$(img_or_die chain)
	m=$(vd_mnt m)
	mount_fails "$m" "backing loop" -- "$d/loop/b.vdi" "$m"
	mount_fails "$m" "names itself" -- "$d/loop/self.vdi" "$m"
}

# ------------------------------------------------------------ hostile

corrupt_copy() {
	cp "$(img_or_die vdi)/$1" "$TD/$1" || die "cp failed"
	echo "$TD/$1"
}

# poke_le32 FILE OFFSET VALUE
poke_le32() {
	# shellcheck disable=SC2046
	poke "$1" "$2" $(printf '%08x' "$3" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4 \3 \2 \1/')
}

t_hostile_header() {
	local f m
	need_full
	m=$(vd_mnt m)
	f=$(corrupt_copy dynamic.vdi)
	poke_le32 "$f" $((0x44)) 0
	mount_fails "$m" "vdi: header version 0.0 is not supported" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	poke_le32 "$f" $((0x178)) 1000
	mount_fails "$m" "vdi: block size 1000 is not a power of two" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	poke_le32 "$f" $((0x180)) 2
	mount_fails "$m" "is larger than its 2 blocks of 1048576 bytes" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	poke_le32 "$f" $((0x154)) $((0x7ffffe00))
	mount_fails "$m" "vdi: block map (9 entries at 0x7ffffe00) overlaps the header or lies past the end" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	poke_le32 "$f" $((0x4c)) 3
	mount_fails "$m" "image type 3 is not supported" "an undo image" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	truncate -s 300 "$f"
	mount_fails "$m" "vdi: file too short for a header (300 bytes)" -- "$f" "$m"
}

# Block map entries past the blocks or past the end: refused at open.
t_hostile_map() {
	local f m bm
	need_full
	m=$(vd_mnt m)
	f=$(corrupt_copy dynamic.vdi)
	bm=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 0x154)[0])' "$f")
	poke_le32 "$f" $((bm + 8)) 5000
	mount_fails "$m" "vdi: block map entry 2 is 5000, past the 9 blocks of the image" -- "$f" "$m"
	f=$(corrupt_copy dynamic.vdi)
	truncate -s $(($(stat -c %s "$f") - 4096)) "$f"
	mount_fails "$m" "lies past the end of the file" -- "$f" "$m"
	f=$(corrupt_copy static.vdi)
	truncate -s $(($(stat -c %s "$f") / 2)) "$f"
	mount_fails "$m" "lies past the end of the file" -- "$f" "$m"
}

vd_test vdi-dynamic t_plain dynamic.vdi
vd_test vdi-static t_plain static.vdi
vd_test vdi-sparse t_sparse
vd_test vdi-2t-sparse t_big
vd_test vdi-gpt-ext4 t_parts parts.vdi
vd_test vdi-gpt-ext4-static t_parts parts-static.vdi
vd_test vdi-info-dynamic t_info dynamic.vdi dynamic
vd_test vdi-info-static t_info static.vdi static
vd_test vdi-diff-chain t_chain
vd_test vdi-diff-backing-dir t_chain_backing_dir
vd_test vdi-diff-fixed-parent t_fixed_parent
vd_test vdi-diff-parent-modified t_modified
vd_test vdi-diff-parent-missing t_orphan
vd_test vdi-diff-loop t_loop
vd_test vdi-hostile-header t_hostile_header
vd_test vdi-hostile-block-map t_hostile_map
vd_finish
