#!/bin/sh
# Installs the Debian packages that building and testing vdmount need,
# but only those that are missing, so a second run costs nothing.
# Used by `make demo`, `make check` and .ci/run.
set -eu

PKGS="build-essential pkg-config libfuse3-dev fuse3 zlib1g-dev libzstd-dev
libdeflate-dev qemu-utils util-linux mount fdisk e2fsprogs libext2fs-dev
libfdisk-dev
lvm2 thin-provisioning-tools libvslvm-utils xfsprogs
mtools dosfstools attr acl python3
cryptsetup-bin libcryptsetup-dev libssl-dev
ntfs-3g ntfs-3g-dev
libwim15
btrfs-progs liblzo2-dev libxxhash-dev libb2-dev
libxml2-utils
libhivex-dev libhivex-bin libwin-hivex-perl librpm-dev rpm sqlite3 db5.3-util"

# make check-full (VD_FULL=1) also: virt-inspector, the oracle of vdtool
# inspect, with a kernel for its appliance when /boot has none, and
# debootstrap for its Debian guest.
if [ "${VD_FULL:-0}" = 1 ]; then
	PKGS="$PKGS libguestfs-tools debootstrap"
	ls /boot/vmlinuz-* >/dev/null 2>&1 || PKGS="$PKGS linux-image-$(dpkg --print-architecture)"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: need root (or sudo) to install:$missing" >&2
		exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
