#!/bin/bash
# A guest ext3/ext4 whose journal needs recovery (tests/mkdirty.sh: a copy
# of a live kernel mount, made before the kernel checkpointed its
# journal), written through vdmount --overlay: the journal is replayed
# into the child before the first change, needs_recovery and the
# journal's s_start cleared as e2fsck and the kernel leave them, then the
# change made.
#
# The model is the kernel's own: a read-write loop mount of a copy of the
# same dirty partition (the kernel recovers it before it mounts), with the
# same changes. Oracles not ours, after the unmount: qemu-img check of the
# child (no errors, no leaks), the base's sha256 unchanged, e2fsck -fn of
# the written partition clean (no journal left to replay, counts right),
# dumpe2fs (no needs_recovery, journal start 0), and the kernel's
# read-only mount of it compared with the model (tests/treecmp.py).
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/corpus/e2fsprogs.sh"

PATH=/usr/bin:$PATH
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# p1: ext4 (4 KiB blocks, metadata_csum: journal checksums v3), p2: ext3
# (1 KiB blocks, no checksums), both dirty; start and size in MiB.
declare -A PSTART=([1]=1 [2]=65)
declare -A PSIZE=([1]=64 [2]=32)

gen_dirty() {
	bash "$VD_LIB_DIR/mkdirty.sh" -t ext4 -s 64M p1.img || return 1
	bash "$VD_LIB_DIR/mkdirty.sh" -t ext3 -b 1024 -s 32M p2.img || return 1
	truncate -s $((98 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=131072, type=L
		start=133120, size=65536, type=L
	EOF
	for n in 1 2; do
		dd if="p$n.img" of=disk.raw bs=1M seek="${PSTART[$n]}" \
			conv=notrunc,sparse status=none || return 1
	done
	qemu-img convert -O qcow2 disk.raw base.qcow2 || return 1
	rm -f disk.raw
}

# The same changes on vdmount's folder and the model's ($1): a new file,
# a folder, a file rewritten and one removed (both from the journal), a
# rename; then the times of what changed set alike.
changes() {
	local d=$1
	printf 'written after recovery\n' >"$d/added.txt" &&
		mkdir "$d/newdir" &&
		head -c 123456 "$D/p1.img" >"$d/newdir/blob" &&
		printf 'over\n' >"$d/new/e.txt" &&
		rm -f "$d/new/small" &&
		mv "$d/new/sub/many-3" "$d/newdir/moved" &&
		touch -d @1500000000.5 "$d" "$d/added.txt" "$d/newdir" \
			"$d/newdir/blob" "$d/new" "$d/new/e.txt" "$d/new/sub" \
			"$d/newdir/moved"
}

t_recover() {
	local n out
	need_loop
	D=$(img_or_die dirty) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	BASESUM=$(sha256sum <"$TD/base.qcow2")
	M=$(vd_mnt m)
	mount_ok "$M" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$M"
	grep -q "read-only" "$TD/mount.err" && die "a volume stays read-only: $(cat "$TD/mount.err")"
	for n in 1 2; do
		cp --sparse=always "$D/p$n.img" "$TD/ref$n.img" || die "copy failed"
		vd_mount_rw "$TD/ref$n.img" "$TD/ref$n" || die "the kernel cannot recover p$n"
		# Before the first change: the replayed tree, read.
		cmp "$M/p$n/new/sub/f.bin" "$TD/ref$n/new/sub/f.bin" ||
			die "p$n: new/sub/f.bin differs before writing"
		changes "$M/p$n" || die "changes through vdmount on p$n failed"
		changes "$TD/ref$n" || die "changes on the model p$n failed"
		T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino \
			--exclude lost+found "$TD/ref$n" "$M/p$n" >"$TD/cmp$n.out" 2>&1 ||
			die "p$n through the mount: $(head -n 6 "$TD/cmp$n.out" | tr '\n' '|')"
	done
	umount_ok "$M"
	out=$(T qemu-img check "$TD/child.qcow2" 2>&1) || die "qemu-img check: $out"
	echo "$out" | grep -q "No errors were found" || die "qemu-img check: $out"
	[ "$(sha256sum <"$TD/base.qcow2")" = "$BASESUM" ] || die "the base changed"
	T qemu-img convert -O raw "$TD/child.qcow2" "$TD/out.raw" || die "convert failed"
	for n in 1 2; do
		dd if="$TD/out.raw" of="$TD/p$n.out" bs=1M skip="${PSTART[$n]}" \
			count="${PSIZE[$n]}" conv=sparse status=none || die "dd failed"
		T e2fsck -fn "$TD/p$n.out" >"$TD/fsck$n.out" 2>&1 ||
			die "e2fsck -fn of p$n: $(tail -n 6 "$TD/fsck$n.out" | tr '\n' '|')"
		dumpe2fs -h "$TD/p$n.out" >"$TD/dump$n.out" 2>/dev/null || die "dumpe2fs p$n"
		grep -q '^Filesystem features:.*needs_recovery' "$TD/dump$n.out" &&
			die "p$n still needs recovery"
		grep -q '^Journal start: *0$' "$TD/dump$n.out" ||
			die "p$n: journal not emptied: $(grep '^Journal' "$TD/dump$n.out" | tr '\n' '|')"
		grep -q '^Filesystem state: *clean$' "$TD/dump$n.out" ||
			die "p$n: $(grep '^Filesystem state' "$TD/dump$n.out")"
		kmount "$TD/p$n.out" 0 $((PSIZE[$n] * MIB)) "$TD/k$n"
		T python3 "$TREECMP" --ignore dirsize,ctime,atime,blocks,dino \
			--exclude lost+found "$TD/ref$n" "$TD/k$n" >"$TD/treecmp$n.out" 2>&1 ||
			die "p$n differs from the model: $(head -n 6 "$TD/treecmp$n.out" | tr '\n' '|')"
		kumount_ok "$TD/k$n"
	done
	rm -f "$TD"/*.raw "$TD"/*.out "$TD"/*.qcow2
}

# A mount that only reads leaves the journal as it was: the child holds
# nothing, the partition still needs recovery.
t_read_only_use() {
	local out
	D=$(img_or_die dirty) || exit 1
	cp --sparse=always "$D/base.qcow2" "$TD/base.qcow2" || die "copy failed"
	M=$(vd_mnt m)
	mount_ok "$M" --overlay="$TD/child.qcow2" "$TD/base.qcow2" "$M"
	cat "$M/p1/new/e.txt" >/dev/null || die "read failed"
	umount_ok "$M"
	out=$(T qemu-img map --output=json "$TD/child.qcow2" 2>&1) || die "qemu-img map: $out"
	echo "$out" | grep -q '"depth": 0, [^}]*"data": true' &&
		die "the child holds data after reads only: $out"
	rm -f "$TD"/*.qcow2
}

# Journals that are not written home stay read-only in a writable mount,
# with one warning each (e2fsprogs' own test images): one holding fast
# commits (their in-memory replay does not keep the bitmaps), one whose
# copy fails its checksum (the kernel refuses to recover it). Nothing
# reaches the child.
t_not_recovered() {
	local n m out
	E2FS_TREE=$(e2fs_tree) || exit 1
	for n in j_recover_fast_commit j_corrupt_journal_block; do
		e2fs_image "$n" "$TD/$n.img"
		m=$(vd_mnt "$n")
		mount_ok "$m" --overlay="$TD/$n.qcow2" "$TD/$n.img" "$m"
		case $n in
		j_recover_fast_commit) grep -q "needs recovery of fast commits; its files stay read-only" "$TD/mount.err" ;;
		*) grep -q "cannot be recovered as the kernel would; its files stay read-only" "$TD/mount.err" ;;
		esac || die "$n: no warning: $(tr '\n' ' ' <"$TD/mount.err")"
		T touch "$m/fs/new" 2>"$TD/e" && die "$n: a file was made"
		grep -q "Read-only file system" "$TD/e" || die "$n: touch: $(cat "$TD/e")"
		umount_ok "$m"
		out=$(T qemu-img map --output=json "$TD/$n.qcow2" 2>&1) || die "qemu-img map: $out"
		echo "$out" | grep -q '"depth": 0, [^}]*"data": true' &&
			die "$n: the child holds data: $out"
	done
	rm -f "$TD"/*.img "$TD"/*.qcow2
}

vd_test recover t_recover
vd_test read_only_use t_read_only_use
vd_test not_recovered t_not_recovered
vd_finish
