#!/bin/bash
# Images vdmount must refuse: each fails the command with one line
# "vdmount: ..." naming the file and the problem, a non-zero status, and
# nothing mounted. Corrupt images start from a valid one with one field
# poked. Also: metadata corruption found only when reading fails that read
# with EIO and the daemon stays up.
. "$(dirname "$0")/lib.sh"

SIZE=$((4 * 1024 * 1024))

gen_valid() {
	qemu-img create -q -f qcow2 v3.qcow2 "$SIZE" || return 1
	scatter qcow2 v3.qcow2 "$SIZE" 1
}

gen_missing() {
	mkdir -p sub
	qemu-img create -q -f qcow2 gone.qcow2 "$SIZE" || return 1
	qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 top.qcow2 || return 1
	qemu-img create -q -f qcow2 sub/gone2.qcow2 "$SIZE" || return 1
	qemu-img create -q -f qcow2 -b sub/gone2.qcow2 -F qcow2 top2.qcow2 || return 1
	# Missing two layers down.
	qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 top3.qcow2 || return 1
	rm -f gone.qcow2 sub/gone2.qcow2
	# A missing external data file.
	qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 "$SIZE" || return 1
	scatter qcow2 df.qcow2 "$SIZE" 2 || return 1
	rm -f df.data
}

gen_loop() {
	qemu-img create -q -f qcow2 a.qcow2 "$SIZE" || return 1
	qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2 || return 1
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 c.qcow2 || return 1
	# a -> c: c -> b -> a -> c.
	qemu-img rebase -u -b c.qcow2 -F qcow2 a.qcow2 || return 1
	# A self-loop.
	qemu-img create -q -f qcow2 self.qcow2 "$SIZE" || return 1
	qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2
}

gen_deep() {
	local i
	qemu-img create -q -f qcow2 d0.qcow2 1M || return 1
	qio qcow2 d0.qcow2 "write -P 0x10 0 4096" || return 1
	# -u: do not open the chain below for each new layer (quadratic).
	for i in $(seq 1 256); do
		qemu-img create -q -f qcow2 -u -b "d$((i - 1)).qcow2" -F qcow2 "d$i.qcow2" 1M || return 1
	done
	qio qcow2 d128.qcow2 "write -P 0x11 65536 4096" || return 1
	qio qcow2 d255.qcow2 "write -P 0x12 131072 4096"
}

gen_outside() {
	mkdir -p A B C
	qemu-img create -q -f qcow2 B/base.qcow2 "$SIZE" || return 1
	qio qcow2 B/base.qcow2 "write -P 0x41 0 65536" || return 1
	qemu-img create -q -f qcow2 -b ../B/base.qcow2 -F qcow2 A/rel.qcow2 || return 1
	qemu-img create -q -f qcow2 -b "$1/B/base.qcow2" -F qcow2 A/abs.qcow2 || return 1
	qemu-img create -q -f qcow2 -b ../B/base.qcow2 -F qcow2 C/mid.qcow2 || return 1
	qemu-img create -q -f qcow2 -b "$1/C/mid.qcow2" -F qcow2 A/two.qcow2 || return 1
	ln -s ../B/base.qcow2 A/link.qcow2
	qemu-img create -q -f qcow2 -b link.qcow2 -F qcow2 A/vialink.qcow2 || return 1
	# Backing files that are not regular files.
	qemu-img create -q -f qcow2 -b /dev/zero -F raw A/dev.qcow2 "$SIZE" || return 1
	mkdir -p A/adir
	qemu-img create -q -f qcow2 -b adir -F raw -u A/dir.qcow2 "$SIZE"
}

# A qcow2 whose external data file lies in another folder. (qemu 7.2
# resolves a relative data file name against its working directory;
# vdmount against the image's folder, as for backing files: made from A,
# both agree.)
gen_datafile_outside() {
	mkdir -p A B
	(cd A && qemu-img create -q -f qcow2 -o data_file=../B/out.data df.qcow2 "$SIZE") || return 1
	(cd A && qio qcow2 df.qcow2 "write -P 0x5a 4096 65536" "write -P 0x3c 1048576 512") || return 1
	(cd A && qemu-img convert -O raw df.qcow2 ../df.oracle) || return 1
}

# An image made the ordinary way, then broken by the test.
gen_corruptsrc() {
	qemu-img create -q -f qcow2 src.qcow2 "$SIZE" || return 1
	scatter qcow2 src.qcow2 "$SIZE" 3 || return 1
	# Check qemu's layout assumptions used below: v3, L1 at 0x30000.
	[ "$(peek src.qcow2 4 4)" = 00000003 ] || return 1
	[ "$(peek src.qcow2 40 8)" = 0000000000030000 ] || return 1
}

gen_luks() {
	local i
	for i in 1 2 3 4 5; do
		# Fails now and then with "Unable to get accurate CPU usage".
		qemu-img create -q -f qcow2 --object secret,id=s,data=x \
			-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
			luks.qcow2 "$SIZE" && break
		rm -f luks.qcow2
		sleep 0.2
	done
	[ -e luks.qcow2 ] || return 1
	qemu-img create -q -f qcow2 --object secret,id=s,data=x \
		-o encrypt.format=aes,encrypt.key-secret=s aes.qcow2 "$SIZE"
}

t_missing_image() {
	local m
	m=$(vd_mnt m)
	mount_fails "$m" "vdmount: $TD/nosuch.qcow2: No such file or directory" -- "$TD/nosuch.qcow2" "$m"
}

t_missing_backing() {
	local d m
	d=$(img_or_die missing)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/top.qcow2" "backing file 'gone.qcow2' not found" -- "$d/top.qcow2" "$m"
	mount_fails "$m" "$d/top2.qcow2" "backing file 'sub/gone2.qcow2' not found" -- "$d/top2.qcow2" "$m"
	mount_fails "$m" "top.qcow2" "backing file 'gone.qcow2' not found" -- "$d/top3.qcow2" "$m"
}

t_datafile_outside() {
	local d m
	d=$(img_or_die datafile_outside)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/A/df.qcow2" "data file '$d/B/out.data' is outside the allowed folders" \
		"allow it with --backing-dir=$d/B" -- "$d/A/df.qcow2" "$m"
	mount_ok "$m" --backing-dir="$d/B" "$d/A/df.qcow2" "$m"
	cmp_files "$m/disk.raw" "$d/df.oracle"
	umount_ok "$m"
}

t_missing_datafile() {
	local d m
	d=$(img_or_die missing)
	m=$(vd_mnt m)
	mount_fails "$m" "df.data" -- "$d/df.qcow2" "$m"
}

t_loop() {
	local d m
	d=$(img_or_die loop)
	m=$(vd_mnt m)
	mount_fails "$m" "backing loop" "already in the chain" "c.qcow2" -- "$d/c.qcow2" "$m"
	mount_fails "$m" "backing loop" "already in the chain" "self.qcow2" -- "$d/self.qcow2" "$m"
}

t_deep() {
	local d m
	d=$(img_or_die deep)
	m=$(vd_mnt m)
	mount_fails "$m" "backing chain deeper than 256" -- "$d/d256.qcow2" "$m"
	# 256 images in all is within the limit.
	mount_ok "$m" "$d/d255.qcow2" "$m"
	cmp_oracle "$m/disk.raw" "$d/d255.qcow2"
	umount_ok "$m"
}

t_outside() {
	local d m
	d=$(img_or_die outside)
	m=$(vd_mnt m)
	mount_fails "$m" "$d/A/rel.qcow2" "backing file '$d/B/base.qcow2' is outside the allowed folders" \
		"allow it with --backing-dir=" -- "$d/A/rel.qcow2" "$m"
	mount_fails "$m" "backing file '$d/B/base.qcow2' is outside the allowed folders" \
		"--backing-dir=" -- "$d/A/abs.qcow2" "$m"
	# A symlink inside the folder that leads out of it.
	mount_fails "$m" "outside the allowed folders" "--backing-dir=" -- "$d/A/vialink.qcow2" "$m"
	# Allowing only one of the two folders needed.
	mount_fails "$m" "$d/C/mid.qcow2" "backing file '$d/B/base.qcow2' is outside the allowed folders" \
		-- --backing-dir="$d/C" "$d/A/two.qcow2" "$m"
	mount_fails "$m" "backing file '$d/C/mid.qcow2' is outside the allowed folders" \
		-- --backing-dir="$d/B" "$d/A/two.qcow2" "$m"
	# ... and the same mount succeeds once allowed.
	mount_ok "$m" --backing-dir="$d/B" "$d/A/rel.qcow2" "$m"
	cmp_oracle "$m/disk.raw" "$d/A/rel.qcow2"
	umount_ok "$m"
}

t_not_regular() {
	local d m
	d=$(img_or_die outside)
	m=$(vd_mnt m)
	mount_fails "$m" "/dev/zero" -- --backing-dir=/dev "$d/A/dev.qcow2" "$m"
	mount_fails "$m" "adir" -- "$d/A/dir.qcow2" "$m"
}

# corrupt NAME — a copy of the valid image to break.
corrupt_copy() {
	local d
	d=$(img_or_die corruptsrc)
	cp "$d/src.qcow2" "$TD/$1"
	echo "$TD/$1"
}

t_trunc_l1() {
	local f m
	f=$(corrupt_copy t.qcow2)
	# The L1 table starts at 0x30000: keep its first 4 bytes only.
	truncate -s $((0x30000 + 4)) "$f"
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "qcow2: " "L1 table" "past the end of the file" -- "$f" "$m"
}

t_trunc_header() {
	local f m
	f=$(corrupt_copy t.qcow2)
	truncate -s "$1" "$f"
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "qcow2: " "$2" -- "$f" "$m"
}

t_l1_past_end() {
	local f m
	f=$(corrupt_copy t.qcow2)
	# Header offset 40: l1_table_offset (big-endian u64).
	poke_be64 "$f" 40 $((0x100000000))
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "qcow2: " "L1 table" "past the end of the file" -- "$f" "$m"
}

t_incompat_bit() {
	local f m b
	f=$(corrupt_copy t.qcow2)
	# Header offset 72: incompatible_features (big-endian u64); bit 12 is
	# in byte 78.
	b=$(peek "$f" 78 1)
	poke "$f" 78 "$(printf '%02x' $((0x$b | 0x10)))"
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "qcow2: unsupported incompatible feature" "bit 12" -- "$f" "$m"
}

# The feature-name table (header extension 0x6803f857) names bit 12:
# rename qemu's entry for incompatible bit 4 (extended L2 entries).
t_incompat_named() {
	local f m b off
	f=$(corrupt_copy t.qcow2)
	off=$(grep -obUa 'extended L2 entries' "$f" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || die "no feature-name table entry for extended L2 in the image"
	# Entry: u8 type, u8 bit, char name[46].
	[ "$(peek "$f" $((off - 2)) 2)" = 0004 ] || die "unexpected feature-name entry layout"
	poke "$f" $((off - 1)) 0c
	printf 'vdtest frobnication%027d' 0 | tr 0 '\0' | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
	b=$(peek "$f" 78 1)
	poke "$f" 78 "$(printf '%02x' $((0x$b | 0x10)))"
	m=$(vd_mnt m)
	mount_fails "$m" "$f" "qcow2: unsupported incompatible feature" "bit 12" "vdtest frobnication" -- "$f" "$m"
}

t_encrypted() {
	local d m
	d=$(img_or_die luks)
	m=$(vd_mnt m)
	# Without a key (and stdin not a terminal): one line naming the
	# file and --key-file (tests/t-89-qcow2-crypt.sh reads them).
	mount_fails "$m" "$d/$1" "give its passphrase with --key-file" -- "$d/$1" "$m"
}

# L1 entry 0 of a valid image made to point at an L2 table past the end of
# the file: either the open refuses the image, or reading the first 512 MiB
# fails with EIO while the rest reads and the daemon stays up.
t_corrupt_late() {
	local f m out rc
	f=$(corrupt_copy t.qcow2)
	case $1 in
	l2)
		# L1[0] at 0x30000: copied flag | 0x7fff0000.
		poke_be64 "$f" $((0x30000)) $((0x8000000000000000 | 0x7fff0000))
		;;
	data)
		# L2 entry 0 (guest offset 0, written by scatter): data cluster
		# far past the end of the file.
		local l2
		l2=$((0x$(peek "$f" $((0x30000)) 8) & 0x00fffffffffffe00))
		[ "$l2" -gt 0 ] || die "L1[0] is empty"
		poke_be64 "$f" "$l2" $((0x8000000000000000 | 0x7fff0000))
		;;
	esac
	m=$(vd_mnt m)
	vd_run_mount "$m" "$f" "$m"
	rc=$?
	if [ $rc != 0 ]; then
		grep -q "^vdmount: .*qcow2: " "$TD/mount.err" ||
			die "refused without a qcow2 message: $(cat "$TD/mount.err")"
		vd_is_mounted "$m" && die "mounted after failing"
		return 0
	fi
	out=$(T dd if="$m/disk.raw" of=/dev/null bs=4096 count=1 2>&1)
	rc=$?
	[ $rc != 0 ] || die "reading corrupt cluster 0 succeeded"
	echo "$out" | grep -q 'Input/output error' || die "read error is not EIO: $out"
	vd_is_mounted "$m" || die "unmounted after the bad read"
	# The rest of the disk still reads as qemu reads it (L1[0] covers the
	# first 512 MiB, the whole image, in the l2 case; use the tail then).
	if [ "$1" = data ]; then
		cmp_range "$m/disk.raw" "$f" qcow2 65536 $((SIZE - 65536))
	fi
	T dd if="$m/disk.raw" of=/dev/null bs=4096 count=1 2>/dev/null && die "second bad read succeeded"
	vd_is_mounted "$m" || die "unmounted after the second bad read"
	umount_ok "$m"
}

vd_test missing-image t_missing_image
vd_test missing-backing-file t_missing_backing
vd_test missing-data-file t_missing_datafile
vd_test data-file-outside-folder-refused t_datafile_outside
vd_test backing-loop t_loop
vd_test chain-257-deep-refused t_deep
vd_test backing-outside-folder-refused t_outside
vd_test backing-not-regular-file t_not_regular
vd_test truncated-in-l1-table t_trunc_l1
vd_test truncated-header-50 t_trunc_header 50 "too short"
vd_test truncated-header-100 t_trunc_header 100 "too short"
vd_test l1-offset-past-end t_l1_past_end
vd_test unknown-incompatible-bit t_incompat_bit
vd_test unknown-incompatible-bit-named t_incompat_named
vd_test encrypted-luks-refused t_encrypted luks.qcow2
vd_test encrypted-aes-refused t_encrypted aes.qcow2
vd_test corrupt-l2-offset-eio t_corrupt_late l2
vd_test corrupt-data-offset-eio t_corrupt_late data
vd_finish
