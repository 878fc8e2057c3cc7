#!/bin/bash
# VHDX: every block size qemu-img writes (1, 2, 8, 32 MiB; 4, 16, 64,
# 128, 256 MiB behind VD_FULL=1), dynamic and fixed, 4096-byte logical sectors, a GPT
# disk with an ext4 partition read through the mount, a 64 TiB disk,
# differencing chains and logs to replay made by tests/mkvhdx.py, and the
# errors a user meets (a bad header, a parent that is not the one recorded
# or outside the folder, a log that does not validate).
#
# Oracles: qemu-img convert -O raw for what qemu-img writes; the kernel's
# ext4 (loop mount of qemu's raw disk) for the files. QEMU 7.2 cannot
# read a VHDX with a parent or with 4096-byte logical sectors: for those
# the oracle is the raw bytes the builder was given (the builder itself is
# checked by qemu on the 512-byte variant). A VHDX whose changes are only
# in its log is compared with qemu-img's reading of a copy after
# `qemu-img check -r all` (qemu replays a log only when it opens an image
# for writing).
. "$(dirname "$0")/lib.sh"

MKVHDX=$VD_LIB_DIR/mkvhdx.py
MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576
# 24 MiB + 3.5 KiB: not a whole number of blocks of any size; S4K, the
# same for 4096-byte sectors.
SIZE=$((24 * MIB + 3584))
S4K=$((24 * MIB + 8192))

# mkq OUT SEED OPTIONS — a vhdx converted by qemu-img from seeded data,
# then scattered qemu-io writes.
mkq() {
	local out=$1 seed=$2 opts=$3
	seed_raw "$out.seed" "$SIZE"
	qemu-img convert -O vhdx -o "$opts" "$out.seed" "$out" || return 1
	rm -f "$out.seed"
	scatter vhdx "$out" "$SIZE" "$seed"
}

gen_qemu() {
	local bs
	for bs in 1 2 8 32; do
		mkq "dyn-$bs.vhdx" "$bs" "block_size=${bs}M" || return 1
	done
	mkq fixed-1.vhdx 41 block_size=1M,subformat=fixed || return 1
	mkq fixed-32.vhdx 42 block_size=32M,subformat=fixed || return 1
	mkq log4m.vhdx 43 block_size=4M,log_size=4M || return 1
	# Mostly not present: zeros.
	qemu-img create -q -f vhdx -o block_size=2M sparse.vhdx "$SIZE" || return 1
	scatter vhdx sparse.vhdx "$SIZE" 44
}

gen_big() {
	local bs
	for bs in 4 16 64 128 256; do
		mkq "dyn-$bs.vhdx" "$bs" "block_size=${bs}M" || return 1
	done
	mkq fixed-256.vhdx 45 block_size=256M,subformat=fixed
}

t_qemu() {
	mount_compare "$(img_or_die "$1")/$2"
}

# 64 TiB (qemu's largest) with writes at both ends and the middle: opens
# without reading the BAT (16 MiB for 32 MiB blocks).
gen_huge() {
	local t=$((64 * 1024 * 1024 * MIB))
	qemu-img create -q -f vhdx huge.vhdx 64T || return 1
	qio vhdx huge.vhdx "write -P 0x61 0 65536" \
		"write -P 0x62 $((t / 2 + 4096)) 8192" \
		"write -P 0x63 $((t - 4096)) 4096"
}

t_huge() {
	local d m f t=$((64 * 1024 * 1024 * MIB))
	d=$(img_or_die huge)
	f=$d/huge.vhdx
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" "$t"
	cmp_range "$m/disk.raw" "$f" vhdx 0 131072
	cmp_range "$m/disk.raw" "$f" vhdx $((t / 2)) $((2 * MIB))
	cmp_range "$m/disk.raw" "$f" vhdx $((t - 2 * MIB)) $((2 * MIB))
	umount_ok "$m"
}

# vdtool info --json: the fields qemu-img info names, with its values.
t_info() {
	local d f k want got
	d=$(img_or_die qemu)
	f=$d/$1
	T "$VDTOOL" info --json "$f" >"$TD/info.json" || die "vdtool info failed"
	for k in format virtual-size cluster-size dirty-flag; do
		want=$(qemu-img info --output=json "$f" |
			python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$k")
		got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[2]))[sys.argv[1]])' \
			"$k" "$TD/info.json") || die "no $k in vdtool's JSON"
		[ "$got" = "$want" ] || die "$k: vdtool says $got, qemu-img $want"
	done
	got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["subformat"])' \
		"$TD/info.json")
	[ "$got" = "$2" ] || die "subformat $got, expected $2"
}

# ------------------------------------------------------------ 4 KiB sectors

gen_lss() {
	seed_raw src.raw "$S4K" || return 1
	python3 "$MKVHDX" new lss4096.vhdx --size "$S4K" --block-size 2M \
		--lss 4096 --from src.raw || return 1
	python3 "$MKVHDX" new lss512.vhdx --size "$S4K" --block-size 2M \
		--lss 512 --from src.raw || return 1
	python3 "$MKVHDX" new fixed4096.vhdx --size "$S4K" --block-size 1M \
		--lss 4096 --fixed --from src.raw
}

# The builder's 512-byte image is what qemu reads too (so the builder
# writes VHDX as qemu reads it); the 4096-byte ones (qemu refuses them)
# show the same bytes.
t_lss() {
	local d m
	d=$(img_or_die lss)
	T qemu-img convert -O raw "$d/lss512.vhdx" "$TD/q.raw" || die "qemu cannot read the builder's image"
	cmp_files "$TD/q.raw" "$d/src.raw"
	m=$(vd_mnt m)
	mount_ok "$m" "$d/$1" "$m"
	check_root_tree "$m" "$S4K"
	cmp_files "$m/disk.raw" "$d/src.raw"
	must random_reads "$m/disk.raw" "$d/src.raw" >/dev/null
	umount_ok "$m"
}

# ------------------------------------------------------------ GPT + ext4

gen_gpt() {
	python3 "$MKTREE" --profile small --seed 84 tree || return 1
	truncate -s $((48 * MIB)) fs.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -I 256 -d tree fs.img || return 1
	e2fsck -fn fs.img >/dev/null || return 1
	truncate -s $((56 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=98304, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
	EOF
	dd if=fs.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O vhdx -o block_size=8M disk.raw gpt.vhdx || return 1
	rm -f fs.img disk.raw
}

t_gpt() {
	local d m o
	need_loop
	d=$(img_or_die gpt)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/gpt.vhdx" "$m"
	cmp_oracle "$m/disk.raw" "$d/gpt.vhdx"
	o=$(vd_oracle "$d/gpt.vhdx") || die "oracle failed"
	T cmp -n $((98304 * 512)) -i "0:$MIB" "$m/p1.raw" "$o" >/dev/null || die "p1.raw differs"
	T test -d "$m/p1" || die "no p1/ (ls: $(ls "$m" | tr '\n' ' '))"
	kmount "$o" "$MIB" $((98304 * 512)) "$TD/k1"
	T python3 "$TREECMP" --statfs "$TD/k1" "$m/p1" >"$TD/treecmp.out" 2>&1 ||
		die "p1/ differs from the kernel's mount: $(head -n 8 "$TD/treecmp.out" | tr '\n' '|')"
	kumount_ok "$TD/k1"
	umount_ok "$m"
}

# ------------------------------------------------------------ differencing

# Writes (OFF:LEN:BYTE, whole 4 KiB pages so that they fit both sector
# sizes): blocks written in part (sectors from the child beside the
# parent's), a whole block, a run across a block boundary, the last
# pages of the disk.
W1="0:4096:0x11 $((MIB + 8192)):4096:0x12 $((2 * MIB)):$((2 * MIB)):0x13
$((6 * MIB - 8192)):16384:0x14 $((SIZE - 3584 - 8192)):8192:0x15"
W2="4096:4096:0x21 $((MIB + 4096)):8192:0x22 $((3 * MIB)):4096:0x23
$((20 * MIB)):$((MIB + 4096)):0x24"

# child PARENT OUT PARENT_RAW WRITES [mkvhdx options] — OUT over PARENT,
# its expected disk in OUT.want.
child() {
	local parent=$1 out=$2 praw=$3 w args=()
	shift 3
	for w in $1; do args+=(--write "$w"); done
	shift
	python3 "$MKVHDX" diff "$parent" "$out" "${args[@]}" "$@" \
		--parent-raw "$praw" --expect "$out.want"
}

gen_diff() {
	mkq base.vhdx 51 block_size=1M || return 1
	qemu-img convert -O raw base.vhdx base.raw || return 1
	child base.vhdx child.vhdx base.raw "$W1" --zero $((8 * MIB)):"$MIB" || return 1
	# A chain of three, the middle one with 2 MiB blocks.
	child child.vhdx mid.vhdx child.vhdx.want "$W2" --block-size 2M || return 1
	child mid.vhdx top.vhdx mid.vhdx.want "$W1" || return 1
	# Found by the absolute path (its last component beside the child)
	# when the relative one names a missing file.
	child base.vhdx abs.vhdx base.raw "$W2" --relative '.\gone.vhdx' \
		--absolute 'C:\Hyper-V\Virtual Hard Disks\base.vhdx' || return 1
	child base.vhdx vol.vhdx base.raw "$W2" --relative 'gone.vhdx' \
		--volume '\\?\Volume{0e1f2a3b-0000-0000-0000-100000000000}\vms\base.vhdx' || return 1
	# In a subfolder, the parent one folder up.
	mkdir -p sub || return 1
	child base.vhdx sub/up.vhdx base.raw "$W2" --relative '..\base.vhdx' || return 1
	# 4096-byte sectors, over the builder's own parent.
	seed_raw src.raw "$S4K" || return 1
	python3 "$MKVHDX" new base4k.vhdx --size "$S4K" --block-size 2M \
		--lss 4096 --from src.raw || return 1
	child base4k.vhdx child4k.vhdx src.raw "$W1" || return 1
	# Hostile: a linkage that is not the parent's data write GUID, a
	# locator out of the folder, a missing parent.
	child base.vhdx wrongid.vhdx base.raw "0:4096:0x31" \
		--linkage '{00112233-4455-6677-8899-aabbccddeeff}' || return 1
	child base.vhdx passwd.vhdx base.raw "0:4096:0x31" \
		--relative '..\..\..\..\..\..\..\..\..\..\etc\passwd' || return 1
	child base.vhdx missing.vhdx base.raw "0:4096:0x31" --relative '.\not-there.vhdx'
}

t_diff() {
	local d m f
	d=$(img_or_die diff)
	f=$d/$1
	m=$(vd_mnt m)
	cd / || die "cd /"
	mount_ok "$m" "${@:2}" "$f" "$m"
	check_root_tree "$m" "$(stat -c %s "$f.want")"
	cmp_files "$m/disk.raw" "$f.want"
	must random_reads "$m/disk.raw" "$f.want" >/dev/null
	umount_ok "$m"
}

# The unwritten sectors of a partly present block hold the builder's
# poison: a reader that ignored the sector bitmap would show it.
t_diff_bitmap() {
	local d
	d=$(img_or_die diff)
	python3 -c 'import sys; sys.exit(b"\xdb" * 4096 not in open(sys.argv[1], "rb").read())' \
		"$d/child.vhdx" || die "the builder wrote no poison: this test tests nothing"
	t_diff child.vhdx
}

t_diff_outside() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "'$d/base.vhdx' is outside the allowed folders" \
		"--backing-dir=$d" -- "$d/sub/up.vhdx" "$m"
	mount_ok "$m" --backing-dir="$d" "$d/sub/up.vhdx" "$m"
	cmp_files "$m/disk.raw" "$d/sub/up.vhdx.want"
	umount_ok "$m"
}

t_diff_wrong_id() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "vhdx: parent linkage {00112233-4455-6677-8899-aabbccddeeff} does not match the data write GUID" \
		"--ignore-parent-id" -- "$d/wrongid.vhdx" "$m"
	mount_ok "$m" --ignore-parent-id "$d/wrongid.vhdx" "$m"
	cmp_files "$m/disk.raw" "$d/wrongid.vhdx.want"
	umount_ok "$m"
}

t_diff_refused() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "$2" -- "$d/$1" "$m"
}

# ------------------------------------------------------------ log replay

# logimg OUT SEED LOG-OPTIONS — a qemu-made vhdx whose changes (writes
# into present blocks, to new blocks, zeroed pages) are in its log only.
LOGW=(--write 4096:8192:0x41 --write $((9 * MIB)):12288:0x42
	--write $((15 * MIB)):4096:0x43 --write $((16 * MIB + 8192)):4096:0x44
	--zero 65536:65536 --zero $((10 * MIB + 8192)):4096)

logimg() {
	local out=$1
	shift
	cp base.vhdx "$out" || return 1
	python3 "$MKVHDX" log "$out" "${LOGW[@]}" "$@" || return 1
	# qemu's reading after its own replay (of a copy).
	cp "$out" "$out.q" && qemu-img check -q -r all "$out.q" >/dev/null 2>&1
	qemu-img convert -O raw "$out.q" "$out.want" || return 1
	rm -f "$out.q"
	md5sum <"$out" >"$out.md5"
}

gen_log() {
	# Blocks 0-13 and 20-24 present, 14-19 not (new blocks go there).
	head -c $((14 * MIB)) /dev/urandom >base.seed || return 1
	dd if=/dev/urandom of=base.seed bs=1M seek=20 count=4 conv=notrunc status=none
	truncate -s "$SIZE" base.seed
	qemu-img convert -O vhdx -o block_size=1M base.seed base.vhdx || return 1
	rm -f base.seed
	logimg one.vhdx --per-entry 100 || return 1
	logimg many.vhdx --per-entry 2 --at 37 || return 1
	logimg stale.vhdx --per-entry 3 --at 5 --stale --torn || return 1
	# The same changes with the sequence wrapping around the end of the
	# log (qemu 7.2 replays only the part after the wrap: compared with
	# qemu's reading of the unwrapped one).
	logimg wrap.vhdx --per-entry 3 --at 250 || return 1
	cp one.vhdx.want wrap.vhdx.want
	# Hostile: a log GUID with no valid entry (the only entry's
	# checksum broken after the fact).
	cp one.vhdx nolog.vhdx || return 1
	python3 - nolog.vhdx <<-'EOF' || return 1
		import sys
		f = open(sys.argv[1], "r+b")
		f.seek(1048576 + 100)
		b = f.read(1)
		f.seek(1048576 + 100)
		f.write(bytes([b[0] ^ 0xff]))
	EOF
}

t_log() {
	local d m f
	d=$(img_or_die log)
	f=$d/$1
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" "$SIZE"
	cmp_files "$m/disk.raw" "$f.want"
	must random_reads "$m/disk.raw" "$f.want" >/dev/null
	umount_ok "$m"
	# The image is never written.
	[ "$(md5sum <"$f")" = "$(cat "$f.md5")" ] || die "the image changed"
}

# Without the replay the disk differs: qemu's reading with the log
# ignored (by clearing the GUID in a copy) is not what we show.
t_log_matters() {
	local d m f
	d=$(img_or_die log)
	f=$TD/noreplay.vhdx
	cp "$d/one.vhdx" "$f" || die "cp failed"
	python3 - "$f" <<-'EOF' || die "clearing the log GUID failed"
		import sys
		f = open(sys.argv[1], "r+b")
		for off in (64 << 10, 128 << 10):
		    f.seek(off + 48)
		    f.write(bytes(16))
	EOF
	python3 "$MKVHDX" fix "$f" || die "fix failed"
	T qemu-img convert -O raw "$f" "$TD/q.raw" || die "qemu-img failed"
	T cmp -s "$TD/q.raw" "$d/one.vhdx.want" && die "the log changes nothing"
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	cmp_files "$m/disk.raw" "$TD/q.raw"
	umount_ok "$m"
}

t_log_invalid() {
	local d m
	d=$(img_or_die log)
	m=$(vd_mnt m)
	mount_fails "$m" "vhdx: the header says the log (1048576 bytes at 0x100000) must be replayed, but it holds no valid sequence of entries" \
		-- "$d/nolog.vhdx" "$m"
}

# ------------------------------------------------------------ headers

# A copy of dyn-1.vhdx with bytes poked: one header, then the first
# region table, then both headers.
t_header() {
	local d f m want
	d=$(img_or_die qemu)
	f=$TD/h.vhdx
	cp "$d/dyn-1.vhdx" "$f" || die "cp failed"
	want=$(vd_oracle "$d/dyn-1.vhdx") || die "oracle failed"
	m=$(vd_mnt m)
	# One header broken: the other is used.
	poke "$f" $((64 * 1024 + 200)) ff
	mount_ok "$m" "$f" "$m"
	cmp_files "$m/disk.raw" "$want"
	umount_ok "$m"
	# The first region table broken: the second is used.
	poke "$f" $((192 * 1024 + 100)) ff
	mount_ok "$m" "$f" "$m"
	cmp_files "$m/disk.raw" "$want"
	umount_ok "$m"
	# Both headers broken.
	poke "$f" $((128 * 1024 + 200)) ff
	mount_fails "$m" "vhdx: neither header (at 64 KiB and 128 KiB) is valid" -- "$f" "$m"
}

for bs in 1 2 8 32; do
	vd_test "vhdx-dynamic-${bs}m" t_qemu qemu "dyn-$bs.vhdx"
done
vd_test vhdx-fixed-1m t_qemu qemu fixed-1.vhdx
vd_test vhdx-fixed-32m t_qemu qemu fixed-32.vhdx
vd_test vhdx-log-size-4m t_qemu qemu log4m.vhdx
vd_test vhdx-sparse t_qemu qemu sparse.vhdx
if [ "${VD_FULL:-0}" = 1 ]; then
	for bs in 4 16 64 128 256; do
		vd_test "vhdx-dynamic-${bs}m" t_qemu big "dyn-$bs.vhdx"
	done
	vd_test vhdx-fixed-256m t_qemu big fixed-256.vhdx
fi
vd_test vhdx-64t t_huge
vd_test vhdx-info-dynamic t_info dyn-8.vhdx dynamic
vd_test vhdx-info-fixed t_info fixed-32.vhdx fixed
vd_test vhdx-lss-4096 t_lss lss4096.vhdx
vd_test vhdx-lss-4096-fixed t_lss fixed4096.vhdx
vd_test vhdx-gpt-ext4 t_gpt
vd_test vhdx-diff-sector-bitmap t_diff_bitmap
vd_test vhdx-diff-chain-of-3 t_diff top.vhdx
vd_test vhdx-diff-absolute-path t_diff abs.vhdx
vd_test vhdx-diff-volume-path t_diff vol.vhdx
vd_test vhdx-diff-lss-4096 t_diff child4k.vhdx
vd_test vhdx-diff-parent-outside-folder t_diff_outside
vd_test vhdx-diff-parent-id-mismatch t_diff_wrong_id
vd_test vhdx-diff-locator-etc-passwd t_diff_refused passwd.vhdx "'/etc/passwd' is outside the allowed folders"
vd_test vhdx-diff-parent-missing t_diff_refused missing.vhdx "backing file 'not-there.vhdx' not found"
vd_test vhdx-log-one-entry t_log one.vhdx
vd_test vhdx-log-many-entries t_log many.vhdx
vd_test vhdx-log-stale-and-torn t_log stale.vhdx
vd_test vhdx-log-wraps t_log wrap.vhdx
vd_test vhdx-log-matters t_log_matters
vd_test vhdx-log-invalid t_log_invalid
vd_test vhdx-headers t_header
vd_finish
