#!/bin/sh
# scripts/demo.sh - mount a small qcow2 backing chain with vdmount and
# show that disk.raw holds exactly what QEMU reads. `make demo` runs it
# after building; it builds nothing itself.
#
#   BUILD=build sh scripts/demo.sh
#
# Everything happens in a fresh temporary folder, which is unmounted and
# removed on any exit. Needs qemu-img and qemu-io (qemu-utils) and
# fusermount3 (fuse3).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$root/$BUILD ;; esac
vdmount=$BUILD/vdmount

die() { echo "demo: $*" >&2; exit 1; }

[ -x "$vdmount" ] || die "$vdmount not found: build it first (make all, or make demo)"
for tool in qemu-img qemu-io fusermount3 od cmp; do
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

# --- a two-image chain, written by QEMU's own tools -------------------
printf 'base layer data ' >base.txt
printf 'Hello, overlay! ' >overlay.txt

qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -c "write -q -P 0x11 0 1M" \
	-c "write -q -s base.txt $((4 * mib)) 2M" \
	-c "write -q -P 0x55 $((12 * mib)) 2M" base.qcow2

qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2
# 32 bytes of new text over the base's text (qcow2 copies the rest of
# the 64 KiB cluster up from the base), and 64 KiB of zeros over data.
qemu-io -c "write -q -s overlay.txt $((4 * mib)) 32" \
	-c "write -q -z $((13 * mib)) 64k" overlay.qcow2

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

echo "== 64 bytes at 4 MiB, read through the mount (od -v -A x -t x1z)"
od -v -A x -t x1z -j $((4 * mib)) -N 64 mnt/disk.raw
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
- qemu-img and qemu-io made base.qcow2 (64 MiB, 5 MiB written) and
  overlay.qcow2 on top of it, which overwrites 32 bytes at 4 MiB and
  zeroes 64 KiB at 13 MiB.
- vdmount mounted overlay.qcow2: mnt/disk.raw was the whole 64 MiB disk,
  the overlay's new text followed by the base's data underneath.
- Every byte of disk.raw matched QEMU's own conversion of the chain.
- fusermount3 -u unmounted it; the temporary folder is now removed.
EOF
