#!/bin/sh
# scripts/demo.sh - make a small guest disk (GPT, ext4) as a qcow2 chain,
# mount it with vdmount, copy a guest file out, and show that the files
# and disk.raw hold exactly what they should. `make demo` runs it
# after building; it builds nothing itself.
#
#   BUILD=build sh scripts/demo.sh
#
# Everything happens in a fresh temporary folder, which is unmounted and
# removed on any exit. Needs qemu-img and qemu-io (qemu-utils), sfdisk
# (fdisk), mkfs.ext4 (e2fsprogs) and fusermount3 (fuse3).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$root/$BUILD ;; esac
vdmount=$BUILD/vdmount

die() { echo "demo: $*" >&2; exit 1; }

[ -x "$vdmount" ] || die "$vdmount not found: build it first (make all, or make demo)"
for tool in qemu-img qemu-io fusermount3 sfdisk mkfs.ext4 cmp diff; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found (make deps installs what is missing)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdmount-demo.XXXXXX")
mnt=$tmp/mnt
mounted=0

cleanup() {
	status=$?
	if [ "$mounted" = 1 ]; then
		fusermount3 -u "$mnt" 2>/dev/null ||
			fusermount3 -u -z "$mnt" 2>/dev/null || true
	fi
	# rmdir fails on a folder that is still a mountpoint, so nothing
	# below a live mount is ever deleted.
	if [ ! -d "$mnt" ] || rmdir "$mnt" 2>/dev/null; then
		rm -rf "$tmp"
	else
		echo "demo: $mnt is still mounted; left $tmp in place" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

cd "$tmp"
mkdir mnt
mib=1048576

# --- a small guest disk: GPT, one ext4 partition with a few files -----
mkdir -p tree/etc tree/home/alice
echo demo-vm >tree/etc/hostname
printf 'NAME="Demo Linux"\nVERSION_ID=1\n' >tree/etc/os-release
head -c 300000 /dev/urandom >tree/home/alice/photo.jpg
ln -s ../etc/hostname tree/home/alice/hostname-link

truncate -s 64M guest.raw
printf 'label: gpt\nstart=2048, size=100000, type=linux, name="root"\n' |
	sfdisk -q guest.raw
mkfs.ext4 -q -F -d tree root.img $((100000 / 2))k
dd if=root.img of=guest.raw bs=512 seek=2048 conv=notrunc status=none
rm root.img

# --- as a two-image qcow2 chain, written by QEMU's own tools ------------
qemu-img convert -q -f raw -O qcow2 guest.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2
# 64 KiB of new data near the disk's end, in the free space after p1.
qemu-io -c "write -q -P 0x55 $((60 * mib)) 64k" overlay.qcow2
rm guest.raw

echo "== The chain (qemu-img info --backing-chain overlay.qcow2)"
qemu-img info --backing-chain overlay.qcow2 | awk '
	/^image:/ && n++ { print "" }
	/^(image|file format|virtual size|disk size|backing file):/ { print "  " $0 }'
echo

# --- mount it ----------------------------------------------------------
"$vdmount" overlay.qcow2 mnt
mounted=1

echo "== vdmount overlay.qcow2 mnt; ls -l mnt"
ls -l mnt
echo

echo "== ls -l mnt/p1/etc mnt/p1/home/alice"
ls -l mnt/p1/etc mnt/p1/home/alice
echo

echo "== cp mnt/p1/etc/hostname . ; cat hostname"
cp mnt/p1/etc/hostname .
cat hostname
echo

echo "== diff -r tree mnt/p1 (the files mkfs.ext4 -d was given)"
if diff -r --no-dereference -x lost+found tree mnt/p1; then
	echo "identical"
else
	die "the guest's files differ from the tree they were made from"
fi
echo

echo "== cmp mnt/disk.raw against qemu-img convert -O raw overlay.qcow2"
qemu-img convert -O raw overlay.qcow2 reference.raw
if cmp mnt/disk.raw reference.raw; then
	echo identical
else
	die "disk.raw differs from what qemu-img reads"
fi
echo

fusermount3 -u mnt
mounted=0

cat <<EOF
== What happened
- sfdisk and mkfs.ext4 -d made a 64 MiB guest disk with a GPT and one
  ext4 partition; qemu-img made it base.qcow2, and overlay.qcow2 on top,
  into which qemu-io wrote 64 KiB.
- vdmount mounted overlay.qcow2: mnt/disk.raw was the whole disk,
  mnt/p1.raw the partition, and mnt/p1/ its files, read by vdmount itself
  (no loop device, no root): cp copied a guest file out.
- Every byte of disk.raw matched QEMU's own conversion of the chain.
- fusermount3 -u unmounted it; the temporary folder is now removed.
EOF
