#!/bin/bash
# VHD ("vpc"): every subformat qemu-img writes (dynamic, fixed, each also
# with force_size=on), differencing chains made by tests/mkvhd.py over
# qemu-made parents (located through W2ru, W2ku and MacX locators), and
# hostile images: bad checksum, BAT entries and bitmaps past the end, an
# absurd BAT, a parent unique id mismatch, a locator leading out of the
# folder.
#
# Oracles: qemu-img convert -O raw for what qemu writes. QEMU 7.2 cannot
# write differencing VHDs and reads one as if it were dynamic (no parent,
# sector bitmaps ignored), so for those the expected bytes are qemu-img's
# reading of the parent with the generator's writes applied by qemu-io to
# that raw copy; qemu's reading of the child itself is cross-checked on
# the written ranges only.
. "$(dirname "$0")/lib.sh"

MKVHD=$VD_LIB_DIR/mkvhd.py
# 8 MiB + 3.5 KiB: not a whole number of 2 MiB blocks (and CHS rounds
# it up further unless force_size=on).
SIZE=$((8 * 1024 * 1024 + 3584))

# mkv OUT SEED CREATE-OPTIONS — a vpc image converted from seeded data,
# then scattered qemu-io writes over its virtual size.
mkv() {
	local out=$1 seed=$2 opts=$3 vs
	seed_raw "$out.seed" "$SIZE"
	qemu-img convert -O vpc -o "$opts" "$out.seed" "$out" || return 1
	rm -f "$out.seed"
	vs=$(virtual_size -f vpc "$out")
	[ -n "$vs" ] || return 1
	scatter vpc "$out" "$vs" "$seed"
}

gen_vpc() {
	mkv dynamic.vhd 1 subformat=dynamic || return 1
	mkv dynamic-force.vhd 2 subformat=dynamic,force_size=on || return 1
	mkv fixed.vhd 3 subformat=fixed || return 1
	mkv fixed-force.vhd 4 subformat=fixed,force_size=on || return 1
	# Mostly unallocated blocks: zeros, as qemu reads them.
	qemu-img create -q -f vpc sparse.vhd "$SIZE" || return 1
	scatter vpc sparse.vhd "$(virtual_size sparse.vhd)" 5 || return 1
	# 100 GiB with a few writes: open must not read the whole BAT.
	qemu-img create -q -f vpc -o force_size=on big.vhd 100G || return 1
	qio vpc big.vhd "write -P 0x61 0 65536" \
		"write -P 0x62 $((50 * 1024 * 1024 * 1024 + 1000 * 512)) 4096" \
		"write -P 0x63 $((100 * 1024 * 1024 * 1024 - 4096)) 4096"
}

# A dynamic image, mounted by probing: bytes and size as qemu reads them.
t_dynamic() {
	local d
	d=$(img_or_die vpc)
	mount_compare "$d/$1"
}

# A fixed image has only its footer, at the end. qemu probes it as raw;
# we recognise it by that footer (valid, of a fixed disk, its size the
# file's less the footer), so probing reads it as --format=vpc (or its
# alias vhd) does.
t_fixed() {
	local d m f
	d=$(img_or_die vpc)
	f=$d/$1
	m=$(vd_mnt m)
	mount_ok "$m" --format="$2" "$f" "$m"
	check_root_tree "$m" "$(virtual_size -f vpc "$f")"
	cmp_oracle "$m/disk.raw" "$f" -f vpc
	umount_ok "$m"
	# Probed: the same disk, without the footer.
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" "$(virtual_size -f vpc "$f")"
	cmp_oracle "$m/disk.raw" "$f" -f vpc
	umount_ok "$m"
	# --format=raw: the file itself, footer included.
	mount_ok "$m" --format=raw "$f" "$m"
	cmp_files "$m/disk.raw" "$f"
	umount_ok "$m"
}

# A footer at the end that is valid but not that of a fixed disk of the
# file's size is only data: the file probes as raw.
t_fixed_not_footer() {
	local f m
	f=$(corrupt_copy fixed.vhd)
	m=$(vd_mnt m)
	# One more sector: the footer's size no longer matches the file.
	{ head -c 512 /dev/zero; cat "$(img_or_die vpc)/fixed.vhd"; } >"$f.shifted"
	mount_ok "$m" "$f.shifted" "$m"
	cmp_files "$m/disk.raw" "$f.shifted"
	umount_ok "$m"
	# Disk type dynamic (checksum fixed up): no footer copy at 0.
	poke "$f" $(($(stat -c %s "$f") - 512 + 63)) 03
	python3 "$MKVHD" fix "$f" || die "fix failed"
	mount_ok "$m" "$f" "$m"
	cmp_files "$m/disk.raw" "$f"
	umount_ok "$m"
}

t_big() {
	local d m f g=$((1024 * 1024 * 1024))
	d=$(img_or_die vpc)
	f=$d/big.vhd
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	check_root_tree "$m" $((100 * g))
	cmp_range "$m/disk.raw" "$f" vpc 0 131072
	cmp_range "$m/disk.raw" "$f" vpc $((50 * g)) 2097152
	cmp_range "$m/disk.raw" "$f" vpc $((100 * g - 3 * 1048576)) $((3 * 1048576))
	umount_ok "$m"
}

# ------------------------------------------------------------ differencing

# Writes the children get (OFF:LEN:BYTE, whole sectors): blocks written in
# part (sectors from the child next to sectors from the parent), one
# sector alone, a whole block, a run crossing a block boundary, and the
# last sectors of the disk.
W1="0:4096:0x11 1048576:512:0x12 1049600:1024:0x13 1050624:3584:0x14
2097152:2097152:0x15 $((6 * 1048576 - 2560)):8192:0x16 LAST:1024:0x17"
W2="512:512:0x21 1049088:1024:0x22 $((2097152 + 65536)):512:0x23
$((6 * 1048576)):1024:0x24 LAST:512:0x25"

# child PARENT OUT WRITES LOCATOR... — OUT differencing over PARENT with
# WRITES (LAST: the last sectors of the disk), and its expected bytes in
# OUT.want: EXPECTED (qemu's reading of the chain below) with the writes
# applied by qemu-io.
child() {
	local parent=$1 out=$2 writes=$3 base_want=$4 vs w o l b args=() qargs=()
	shift 4
	vs=$(virtual_size -f vpc "$parent")
	for w in $writes; do
		IFS=: read -r o l b <<<"$w"
		[ "$o" = LAST ] && o=$((vs - l))
		args+=(--write "$o:$l:$b")
		qargs+=("write -P $b $o $l")
	done
	for l in "$@"; do args+=(--locator "$l"); done
	python3 "$MKVHD" diff "$parent" "$out" "${args[@]}" || return 1
	cp "$base_want" "$out.want" || return 1
	qio raw "$out.want" "${qargs[@]}"
}

gen_diff() {
	local abs
	mkv base.vhd 6 subformat=dynamic || return 1
	qemu-img convert -f vpc -O raw base.vhd base.want || return 1
	# W2ru relative path.
	child base.vhd w2ru.vhd "$W1" base.want 'W2ru:.\base.vhd' || return 1
	# A chain of three: a child of the child.
	child w2ru.vhd top.vhd "$W2" w2ru.vhd.want 'W2ru:w2ru.vhd' || return 1
	# Parents with names beyond ASCII, found by W2ku (an absolute
	# Windows path: its last component beside the child) and MacX (a
	# file:// URL, UTF-8, percent-encoded).
	cp base.vhd 'bäse ü.vhd' || return 1
	child 'bäse ü.vhd' w2ku.vhd "$W1" base.want \
		'W2ku:C:\Hyper-V\Virtual Hard Disks\bäse ü.vhd' || return 1
	abs=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1/bäse ü.vhd")
	child 'bäse ü.vhd' macx.vhd "$W1" base.want "MacX:file://$abs" || return 1
	# Several locators: the W2ru one names a missing file, the W2ku one
	# the parent.
	child base.vhd several.vhd "$W1" base.want 'MacX:file:///nowhere/x.vhd' \
		'W2ku:D:\old\base.vhd' 'W2ru:.\gone.vhd' || return 1
	# A fixed parent.
	mkv fixed.vhd 7 subformat=fixed || return 1
	qemu-img convert -f vpc -O raw fixed.vhd fixed.want || return 1
	child fixed.vhd overfixed.vhd "$W2" fixed.want 'W2ru:fixed.vhd' || return 1
	# In a subfolder, the parent one folder up.
	mkdir -p sub || return 1
	child base.vhd sub/up.vhd "$W2" base.want 'W2ru:..\base.vhd' || return 1
	# Hostile: a parent unique id that is not the parent's, a locator
	# leading out of the folder.
	python3 "$MKVHD" diff base.vhd wrongid.vhd --write 0:512:0x31 \
		--parent-id 00112233445566778899aabbccddeeff || return 1
	cp base.want wrongid.vhd.want && qio raw wrongid.vhd.want "write -P 0x31 0 512" || return 1
	python3 "$MKVHD" diff base.vhd passwd.vhd --write 0:512:0x31 \
		--locator 'W2ru:..\..\..\..\..\..\..\..\..\..\..\..\etc\passwd' || return 1
	python3 "$MKVHD" diff base.vhd missing.vhd --locator 'W2ru:.\not-there.vhd' \
		--parent-name 'nor-this.vhd'
}

# Mount CHILD and compare with its expected bytes; cross-check the written
# ranges against qemu's own reading of the child.
t_diff() {
	local d m f w o l b vs
	d=$(img_or_die diff)
	f=$d/$1
	m=$(vd_mnt m)
	# From elsewhere: names are resolved from the child's folder.
	cd / || die "cd /"
	mount_ok "$m" "${@:3}" "$f" "$m"
	check_root_tree "$m" "$(stat -c %s "$f.want")"
	cmp_files "$m/disk.raw" "$f.want"
	must random_reads "$m/disk.raw" "$f.want" >/dev/null
	# qemu reads the child's blocks without the bitmap: where the child
	# was written, it must agree with us.
	T qemu-img convert -f vpc -O raw "$f" "$TD/q.raw" || die "qemu-img convert of $1 failed"
	vs=$(stat -c %s "$f.want")
	for w in $2; do
		IFS=: read -r o l b <<<"$w"
		[ "$o" = LAST ] && o=$((vs - l))
		T cmp -i "$o:$o" -n "$l" "$m/disk.raw" "$TD/q.raw" >/dev/null ||
			die "written range $o+$l differs from qemu's reading of the child"
	done
	umount_ok "$m"
}

# Sectors of a partly written block that the child does not hold come
# from the parent; qemu (ignoring the bitmap) shows the generator's
# poison there, we must not.
t_diff_bitmap() {
	local d m f got
	d=$(img_or_die diff)
	f=$d/w2ru.vhd
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	T qemu-img convert -f vpc -O raw "$f" "$TD/q.raw" || die "convert failed"
	# 1049088: the sector between 0x12 at 1048576 and 0x13 at 1049600.
	got=$(od -An -tx1 -j 1049088 -N 1 "$TD/q.raw" | tr -d ' ')
	[ "$got" = db ] || die "qemu shows $got, not the poison byte, in an unwritten sector"
	cmp_range_file "$m/disk.raw" "$d/base.want" 1049088 512
	cmp_range_file "$m/disk.raw" "$d/base.want" 1048064 512
	umount_ok "$m"
}

# cmp_range_file A B OFF LEN — inside a test.
cmp_range_file() {
	T cmp -i "$3:$3" -n "$4" "$1" "$2" >/dev/null || die "bytes $3+$4 of $1 differ from $2"
}

t_diff_outside() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "'$d/base.vhd' is outside the allowed folders" \
		"--backing-dir=$d" -- "$d/sub/up.vhd" "$m"
	mount_ok "$m" --backing-dir="$d" "$d/sub/up.vhd" "$m"
	cmp_files "$m/disk.raw" "$d/sub/up.vhd.want"
	umount_ok "$m"
}

t_diff_wrong_id() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "parent unique id 00112233-4455-6677-8899-aabbccddeeff does not match" \
		"--ignore-parent-id" -- "$d/wrongid.vhd" "$m"
	mount_ok "$m" --ignore-parent-id "$d/wrongid.vhd" "$m"
	cmp_files "$m/disk.raw" "$d/wrongid.vhd.want"
	umount_ok "$m"
}

t_diff_passwd() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "'/etc/passwd' is outside the allowed folders" -- "$d/passwd.vhd" "$m"
}

t_diff_missing() {
	local d m
	d=$(img_or_die diff)
	m=$(vd_mnt m)
	mount_fails "$m" "backing file 'not-there.vhd' not found" -- "$d/missing.vhd" "$m"
}

# The size rule: CHS geometry or current_size by creator application.
# qemu-img writes a current_size equal to the geometry's size, so a copy
# gets a smaller current_size (both footers) and a creator application
# (or the maximum geometry); qemu-img's reading says which size is right.
t_size_rule() {
	local d f m vs
	d=$(img_or_die vpc)
	f=$TD/rule.vhd
	cp "$d/dynamic.vhd" "$f" || die "cp failed"
	vs=$(virtual_size "$f")
	size_poke() {
		local at
		for at in 0 $(($(stat -c %s "$f") - 512)); do
			poke_be64 "$f" $((at + 48)) $((vs - 1049600))
			# shellcheck disable=SC2086
			poke "$f" $((at + 28)) $1
			[ -n "${2:-}" ] && poke "$f" $((at + 56)) ff ff 10 ff
		done
		python3 "$MKVHD" fix "$f" || die "fix failed"
	}
	size_poke "$1" "${2:-}"
	case $3 in
	chs) [ "$(virtual_size "$f")" = "$vs" ] || die "qemu does not use CHS here" ;;
	cur) [ "$(virtual_size "$f")" = $((vs - 1049600)) ] || die "qemu does not use current_size here" ;;
	esac
	mount_compare "$f"
}

# ------------------------------------------------------------ hostile

# corrupt_copy NAME — a copy of image NAME (set vpc) in the test folder.
corrupt_copy() {
	local d
	d=$(img_or_die vpc)
	cp "$d/$1" "$TD/$1" || die "cp failed"
	echo "$TD/$1"
}

t_bad_checksum() {
	local f m
	f=$(corrupt_copy dynamic.vhd)
	poke "$f" 24 ff # time stamp of the footer copy at offset 0
	m=$(vd_mnt m)
	mount_fails "$m" "vhd: footer copy at offset 0: checksum" "does not match" -- "$f" "$m"
	# A fixed disk's only footer: refused, probed or not, unless the
	# file is taken as raw.
	f=$(corrupt_copy fixed.vhd)
	poke "$f" $(($(stat -c %s "$f") - 512 + 24)) ff
	mount_fails "$m" "vhd: footer at the end of the file: checksum" -- --format=vpc "$f" "$m"
	mount_fails "$m" "vhd: footer at the end of the file: checksum" "-F raw" -- "$f" "$m"
	mount_ok "$m" -F raw "$f" "$m"
	cmp_files "$m/disk.raw" "$f"
	umount_ok "$m"
}

t_absurd_bat() {
	local f m
	f=$(corrupt_copy dynamic.vhd)
	poke "$f" $((512 + 28)) 7f ff ff ff # max table entries
	python3 "$MKVHD" fix "$f" || die "fix failed"
	m=$(vd_mnt m)
	mount_fails "$m" "BAT (2147483647 entries at 0x600) lies past the end of the file" -- "$f" "$m"
	# Too few entries for the virtual size.
	poke "$f" $((512 + 28)) 00 00 00 01
	python3 "$MKVHD" fix "$f" || die "fix failed"
	mount_fails "$m" "BAT of 1 entries is too small" -- "$f" "$m"
}

# Point block 2's BAT entry at a bad place: far past the end (BAT entry
# past the end), at the end of the file (its bitmap past EOF), or at the
# footer (bitmap inside, data past EOF). Reading that block fails with
# EIO; the rest reads as before and the daemon stays up.
t_bad_block() {
	local f m want size ent out
	f=$(corrupt_copy dynamic.vhd)
	want=$(vd_oracle "$(img_or_die vpc)/dynamic.vhd") || die "oracle failed"
	size=$(stat -c %s "$f")
	case $1 in
	far) ent=$((0x7fffff00)) ;;
	eof) ent=$((size / 512)) ;;
	footer) ent=$((size / 512 - 1)) ;;
	esac
	python3 "$MKVHD" info "$f" | grep -q '"bat": \[[0-9]*, [0-9]*, [0-9]' ||
		die "unexpected BAT: $(python3 "$MKVHD" info "$f")"
	# shellcheck disable=SC2046
	poke "$f" $((1536 + 2 * 4)) $(printf '%08x' "$ent" | sed 's/../& /g')
	m=$(vd_mnt m)
	mount_ok "$m" "$f" "$m"
	out=$(T dd if="$m/disk.raw" of=/dev/null bs=4096 skip=$((2 * 512)) count=1 2>&1) &&
		die "reading the bad block succeeded"
	echo "$out" | grep -q 'Input/output error' || die "read error is not EIO: $out"
	vd_is_mounted "$m" || die "unmounted after the bad read"
	cmp_range_file "$m/disk.raw" "$want" 0 $((2 * 1048576))
	cmp_range_file "$m/disk.raw" "$want" $((6 * 1048576)) 2097152
	T dd if="$m/disk.raw" of=/dev/null bs=4096 skip=$((3 * 512 - 1)) count=1 2>/dev/null &&
		die "second bad read succeeded"
	vd_is_mounted "$m" || die "unmounted after the second bad read"
	umount_ok "$m"
}

vd_test vpc-dynamic t_dynamic dynamic.vhd
vd_test vpc-dynamic-force-size t_dynamic dynamic-force.vhd
vd_test vpc-dynamic-sparse t_dynamic sparse.vhd
vd_test vpc-fixed t_fixed fixed.vhd vpc
vd_test vpc-fixed-alias-vhd t_fixed fixed.vhd vhd
vd_test vpc-fixed-force-size t_fixed fixed-force.vhd vpc
vd_test vpc-fixed-footer-not-claimed t_fixed_not_footer
vd_test vpc-100g-sparse t_big
vd_test vpc-size-qemu-uses-chs t_size_rule "71 65 6d 75" "" chs
vd_test vpc-size-vpc-uses-chs t_size_rule "76 70 63 20" "" chs
vd_test vpc-size-win-uses-current t_size_rule "77 69 6e 20" "" cur
vd_test vpc-size-qem2-uses-current t_size_rule "71 65 6d 32" "" cur
vd_test vpc-size-d2v-uses-current t_size_rule "64 32 76 20" "" cur
vd_test vpc-size-ctxs-uses-current t_size_rule "43 54 58 53" "" cur
vd_test vpc-size-tap-uses-current t_size_rule "74 61 70 00" "" cur
vd_test vpc-size-max-geometry-uses-current t_size_rule "71 65 6d 75" max cur
vd_test vhd-diff-w2ru t_diff w2ru.vhd "$W1"
vd_test vhd-diff-chain-of-3 t_diff top.vhd "$W2"
vd_test vhd-diff-w2ku-utf16 t_diff w2ku.vhd "$W1"
vd_test vhd-diff-macx-url t_diff macx.vhd "$W1"
vd_test vhd-diff-first-existing-locator t_diff several.vhd "$W1"
vd_test vhd-diff-fixed-parent t_diff overfixed.vhd "$W2"
vd_test vhd-diff-sector-bitmap t_diff_bitmap
vd_test vhd-diff-parent-outside-folder t_diff_outside
vd_test vhd-diff-parent-id-mismatch t_diff_wrong_id
vd_test vhd-diff-locator-etc-passwd t_diff_passwd
vd_test vhd-diff-parent-missing t_diff_missing
vd_test vhd-bad-footer-checksum t_bad_checksum
vd_test vhd-absurd-bat t_absurd_bat
vd_test vhd-bat-entry-past-end-eio t_bad_block far
vd_test vhd-bitmap-past-eof-eio t_bad_block eof
vd_test vhd-block-data-past-eof-eio t_bad_block footer
vd_finish
