#!/bin/bash
# OVA and OVF appliances: an OVA is a tar holding an OVF descriptor and
# its disks; vdmount reads the descriptor and mounts the selected disk in
# place, as a byte range of the tar. Archives are made by GNU tar (gnu,
# posix/pax and ustar formats) from descriptors written here and disks
# made by qemu-img. Oracle: qemu-img convert -O raw of the disk file
# itself; GNU tar agrees where an archive is damaged.
. "$(dirname "$0")/lib.sh"

SIZE=$((8 * 1024 * 1024 + 3584))
LONG=disk-with-a-name-longer-than-the-hundred-bytes-of-a-tar-header-name-field-so-that-long-names-are-needed-x

# write_ovf OUT HREF... — a descriptor with one File and one Disk per
# HREF, in that order. OVF_EXTRA (attributes) is added to every File.
write_ovf() {
	local out=$1 i=0 h
	shift
	{
		echo '<?xml version="1.0" encoding="UTF-8"?>'
		echo '<!-- written by t-82-ova.sh -->'
		echo '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"'
		echo '    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"'
		echo '    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">'
		echo '  <References>'
		for h in "$@"; do
			i=$((i + 1))
			echo "    <File ovf:href=\"$h\" ovf:id=\"file$i\" ${OVF_EXTRA:-}/>"
		done
		echo '  </References>'
		echo '  <DiskSection>'
		echo '    <Info>Virtual disk information &amp; more</Info>'
		i=0
		for h in "$@"; do
			i=$((i + 1))
			echo "    <Disk ovf:capacity=\"$SIZE\" ovf:diskId=\"vmdisk$i\" ovf:fileRef=\"file$i\"" \
				"ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>"
		done
		echo '  </DiskSection>'
		echo '  <VirtualSystem ovf:id="vm">'
		echo '    <Info>A virtual machine</Info>'
		echo '    <![CDATA[ <ignored> & ]]>'
		echo '  </VirtualSystem>'
		echo '</Envelope>'
	} >"$out"
}

gen_ova() {
	seed_raw d1.seed "$SIZE"
	qemu-img convert -O qcow2 d1.seed d1.qcow2 || return 1
	scatter qcow2 d1.qcow2 "$SIZE" 21 || return 1
	seed_raw d2.raw "$SIZE"
	dd if=/dev/urandom of=d2.raw bs=4096 seek=100 count=3 conv=notrunc status=none
	qemu-img convert -O vmdk -o subformat=streamOptimized d1.seed d3.vmdk || return 1
	rm -f d1.seed
	# A qcow2 whose backing file is another member of the OVA.
	qemu-img convert -O qcow2 -o cluster_size=4096 d2.raw base.qcow2 || return 1
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 || return 1
	scatter qcow2 top.qcow2 "$SIZE" 22 || return 1

	write_ovf one.ovf d1.qcow2
	tar cf qcow2.ova one.ovf d1.qcow2 || return 1
	write_ovf raw.ovf d2.raw
	tar cf raw.ova raw.ovf d2.raw || return 1
	write_ovf two.ovf d1.qcow2 d2.raw
	tar cf two.ova two.ovf d1.qcow2 d2.raw || return 1
	# The descriptor last, the disks in another order than the OVF's.
	tar cf desc-last.ova d2.raw d1.qcow2 two.ovf || return 1
	write_ovf vmdk.ovf d3.vmdk
	tar cf vmdk.ova vmdk.ovf d3.vmdk || return 1
	# A VMDK descriptor whose extents are other members of the OVA.
	mkdir split
	qemu-img convert -O vmdk -o subformat=monolithicFlat d2.raw split/flat.vmdk || return 1
	qemu-img convert -O vmdk -o subformat=twoGbMaxExtentSparse d2.raw split/sparse.vmdk || return 1
	write_ovf split/split.ovf flat.vmdk sparse.vmdk
	(cd split && tar cf ../split.ova split.ovf flat.vmdk sparse.vmdk \
		$(sed -n 's/^RW [0-9]* [A-Z]* "\(.*\)".*/\1/p' flat.vmdk sparse.vmdk)) || return 1
	write_ovf chain.ovf top.qcow2
	tar cf chain.ova chain.ovf top.qcow2 base.qcow2 || return 1

	# Names longer than 100 bytes: GNU 'L' headers, pax path records,
	# and a ustar prefix field.
	mkdir -p long/sub-folder-with-a-long-name-to-need-the-ustar-prefix-field
	cp d1.qcow2 "long/$LONG.qcow2"
	cp d1.qcow2 "long/sub-folder-with-a-long-name-to-need-the-ustar-prefix-field/$(echo "$LONG" | cut -c1-90).qcow2"
	write_ovf long/long.ovf "$LONG.qcow2"
	write_ovf long/prefix.ovf "sub-folder-with-a-long-name-to-need-the-ustar-prefix-field/$(echo "$LONG" | cut -c1-90).qcow2"
	tar -C long --format=gnu -cf long-gnu.ova long.ovf "$LONG.qcow2" || return 1
	tar -C long --format=posix -cf long-pax.ova long.ovf "$LONG.qcow2" || return 1
	tar -C long --format=ustar -cf long-ustar.ova prefix.ovf \
		"sub-folder-with-a-long-name-to-need-the-ustar-prefix-field/$(echo "$LONG" | cut -c1-90).qcow2" || return 1

	# An OVF beside its disks, and one named .xml (content decides).
	mkdir beside
	write_ovf beside/app.ovf d1.qcow2 d2.raw
	cp beside/app.ovf beside/app.xml
	ln d1.qcow2 beside/d1.qcow2
	ln d2.raw beside/d2.raw

	# Broken appliances.
	tar cf no-ovf.ova d1.qcow2 || return 1
	echo "this is not XML" >bad.ovf
	tar cf not-xml.ova bad.ovf d1.qcow2 || return 1
	sed '/DiskSection/,/\/DiskSection/d' one.ovf >nodisks.ovf
	tar cf no-disksection.ova nodisks.ovf d1.qcow2 || return 1
	write_ovf missing.ovf missing.vmdk
	tar cf missing.ova missing.ovf d1.qcow2 || return 1
	write_ovf evil.ovf ../../etc/passwd
	tar cf evil.ova evil.ovf d1.qcow2 || return 1
	OVF_EXTRA='ovf:compression="gzip"' write_ovf gzip.ovf d1.qcow2
	tar cf gzip.ova gzip.ovf d1.qcow2 || return 1
	OVF_EXTRA='ovf:chunkSize="1048576"' write_ovf chunk.ovf d1.qcow2
	# tar --sparse stores a sparse disk as a map plus its data blocks:
	# not the disk's bytes in a row, so not mountable in place.
	truncate -s 8M holes.raw
	printf 'data' | dd of=holes.raw bs=1 seek=3000000 conv=notrunc status=none
	write_ovf holes.ovf holes.raw
	tar --sparse --format=gnu -cf sparse-gnu.ova holes.ovf holes.raw || return 1
	tar --sparse --format=posix -cf sparse-pax.ova holes.ovf holes.raw || return 1
	tar cf chunk.ova chunk.ovf d1.qcow2 || return 1
}

# mount_member OVA ORACLE_IMG [vdmount options...] — mount, compare
# disk.raw with qemu-img convert of the disk file, unmount.
mount_member() {
	local ova=$1 img=$2 m
	shift 2
	m=$(vd_mnt "m$RANDOM")
	mount_ok "$m" "$@" "$ova" "$m"
	check_root_tree "$m" "$(virtual_size "$img")"
	cmp_oracle "$m/disk.raw" "$img"
	umount_ok "$m"
}

t_ova() {
	local d
	d=$(img_or_die ova)
	mount_member "$d/$1" "$d/$2" "${@:3}"
}

t_vmdk() {
	local d
	d=$(img_or_die ova)
	qemu-img info "$d/d3.vmdk" | grep -q 'create type: streamOptimized' ||
		die "qemu-img did not make a streamOptimized vmdk"
	mount_member "$d/vmdk.ova" "$d/d3.vmdk"
}

t_long() {
	local d
	d=$(img_or_die ova)
	# Make sure tar wrote what the test is about.
	case $1 in
	long-gnu.ova) grep -aq '././@LongLink' "$d/$1" || die "no GNU long-name header in $1" ;;
	long-pax.ova) grep -aq "path=$LONG.qcow2" "$d/$1" || die "no pax path record in $1" ;;
	long-ustar.ova)
		# The second header's prefix field (offset 345).
		local off=$((512 + ($(stat -c %s "$d/long/prefix.ovf") + 511) / 512 * 512 + 345))
		[ "$(peek "$d/$1" "$off" 5)" = "$(printf 'sub-f' | od -An -tx1 | tr -d ' \n')" ] ||
			die "no ustar prefix in the second header of $1"
		;;
	esac
	mount_member "$d/$1" "$d/d1.qcow2"
}

t_beside() {
	local d
	d=$(img_or_die ova)
	mount_member "$d/beside/$1" "$d/$2" "${@:3}"
}

# The disk's bytes decide the format, not the OVF's ovf:format (which
# says streamOptimized VMDK for every disk here) nor the name.
t_chain() {
	local d
	d=$(img_or_die ova)
	mount_member "$d/chain.ova" "$d/top.qcow2"
}

# A differencing VHD over a parent in the same OVA. Its first locator
# names a file that is in neither place, so the parent is found only by
# looking in the archive first, as the open itself does. The same files
# beside each other are the reference (t-81 checks those against qemu).
gen_vhdova() {
	seed_raw p.raw $((8 * 1024 * 1024))
	qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on \
		p.raw parent.vhd || return 1
	rm -f p.raw
	python3 "$VD_SRC_DIR/tests/mkvhd.py" diff parent.vhd child.vhd \
		--write 1048576:65536:0x61 --write 3146240:1024:0x62 \
		--locator 'W2ru:.\gone.vhd' --locator 'W2ru:.\parent.vhd' || return 1
	write_ovf vhd.ovf child.vhd
	tar cf vhd.ova vhd.ovf child.vhd parent.vhd
}

t_vhd_parent() {
	local d m b
	d=$(img_or_die vhdova) || exit 1
	m=$(vd_mnt m)
	b=$(vd_mnt b)
	mount_ok "$m" "$d/vhd.ova" "$m"
	mount_ok "$b" "$d/child.vhd" "$b"
	cmp_files "$m/disk.raw" "$b/disk.raw"
	umount_ok "$m"
	umount_ok "$b"
}

t_fails() {
	local d m ova=$1
	shift
	d=$(img_or_die ova)
	m=$(vd_mnt f)
	mount_fails "$m" "$@" "$d/$ova" "$m"
}

t_disk9() {
	local d m
	d=$(img_or_die ova)
	m=$(vd_mnt f)
	mount_fails "$m" "two.ovf" "--disk=9" "has 2 disks" -- --disk=9 "$d/two.ova" "$m"
	mount_fails "$m" "app.ovf" "--disk=3" "has 2 disks" -- --disk=3 "$d/beside/app.ovf" "$m"
	mount_fails "$m" "--disk=2" "not one" -- --disk=2 "$d/d1.qcow2" "$m"
}

# Header checksum: change one byte of the second member's name.
t_bad_checksum() {
	local d m off
	d=$(img_or_die ova)
	cp "$d/two.ova" bad.ova
	off=$((512 + ($(stat -c %s "$d/two.ovf") + 511) / 512 * 512))
	[ "$(peek bad.ova "$off" 8)" = "$(printf 'd1.qcow2' | od -An -tx1 | tr -d ' \n')" ] ||
		die "second header is not at $off"
	poke bad.ova $((off + 1)) 32
	T tar tf bad.ova >/dev/null 2>&1 && die "GNU tar reads the poked archive happily"
	m=$(vd_mnt f)
	mount_fails "$m" "bad.ova" "$(printf 'header at 0x%x has a bad checksum' "$off")" -- bad.ova "$m"
}

# The archive ends inside the last member's data.
t_truncated() {
	local d m
	d=$(img_or_die ova)
	cp "$d/two.ova" cut.ova
	truncate -s $(($(stat -c %s "$d/two.ova") - 4 * 1024 * 1024)) cut.ova
	T tar tf cut.ova >/dev/null 2>&1 && die "GNU tar reads the truncated archive happily"
	m=$(vd_mnt f)
	mount_fails "$m" "cut.ova" "runs past the end of the file" -- cut.ova "$m"
}

# An OVF beside its disks names a file outside its folder: the folder
# rule refuses it (the file exists, so nothing else would).
t_beside_evil() {
	local m
	mkdir -p a/b etc
	echo "secret" >etc/passwd
	OVF_EXTRA= write_ovf a/b/evil.ovf ../../etc/passwd
	m=$(vd_mnt f)
	mount_fails "$m" "evil.ovf" "outside the allowed folders" "--backing-dir" -- a/b/evil.ovf "$m"
}

vd_test ova-qcow2 t_ova qcow2.ova d1.qcow2
vd_test ova-raw t_ova raw.ova d2.raw
vd_test ova-two-disks-first t_ova two.ova d1.qcow2
vd_test ova-two-disks-disk-1 t_ova two.ova d1.qcow2 --disk=1
vd_test ova-two-disks-disk-2 t_ova two.ova d2.raw --disk=2
vd_test ova-descriptor-last t_ova desc-last.ova d1.qcow2
vd_test ova-descriptor-last-disk-2 t_ova desc-last.ova d2.raw --disk=2
vd_test ova-stream-optimized-vmdk t_vmdk
vd_test ova-backing-file-in-archive t_chain
vd_test ova-vhd-parent-in-archive t_vhd_parent
vd_test ova-vmdk-flat-extent-in-archive t_ova split.ova split/flat.vmdk
vd_test ova-vmdk-sparse-extent-in-archive t_ova split.ova split/sparse.vmdk --disk=2
vd_test ova-gnu-long-names t_long long-gnu.ova
vd_test ova-pax-long-names t_long long-pax.ova
vd_test ova-ustar-prefix t_long long-ustar.ova
vd_test ovf-beside-disks t_beside app.ovf d1.qcow2
vd_test ovf-beside-disks-disk-2 t_beside app.ovf d2.raw --disk=2
vd_test ovf-named-xml t_beside app.xml d2.raw --disk=2
vd_test ova-disk-out-of-range t_disk9
vd_test ova-without-descriptor t_fails no-ovf.ova "no-ovf.ova" "no OVF descriptor" --
vd_test ova-descriptor-not-xml t_fails not-xml.ova "not-xml.ova/bad.ovf" "line 1" "is this XML" --
vd_test ova-no-disksection t_fails no-disksection.ova "nodisks.ovf" "no DiskSection" --
vd_test ova-file-not-in-archive t_fails missing.ova "missing.ovf" "'missing.vmdk' is not in the OVA" --
vd_test ova-dotdot-href t_fails evil.ova "evil.ovf" "'../../etc/passwd' lies outside the appliance" --
vd_test ova-gzip-refused t_fails gzip.ova "gzip.ovf" 'ovf:compression="gzip"' "not supported" --
vd_test ova-chunked-refused t_fails chunk.ova "chunk.ovf" "ovf:chunkSize" "not supported" --
vd_test ova-gnu-sparse-member-refused t_fails sparse-gnu.ova "holes.raw" "sparse file" "not supported" --
vd_test ova-pax-sparse-member-refused t_fails sparse-pax.ova "holes.raw" "sparse file" "not supported" --
vd_test ova-bad-header-checksum t_bad_checksum
vd_test ova-member-past-end t_truncated
vd_test ovf-beside-dotdot t_beside_evil
vd_finish
