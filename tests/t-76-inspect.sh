#!/bin/bash
# t-76-inspect: vdtool inspect on guests made at test time.
#
#  - debian: a GPT qcow2, p1 an ESP (mkfs.vfat, serial set), p2 an ext4
#    made by mkfs.ext4 -d (UUID set) from a usrmerged tree: /bin ->
#    usr/bin, usr/bin/sh -> dash (the host's own ELF binary),
#    /etc/os-release -> ../usr/lib/os-release as Debian has it,
#    debian_version 12.5, hostname, an fstab naming both by UUID= plus
#    swap, proc, a LABEL= and a /dev/sdb1 that are not in the image, and
#    the host's own dpkg status file. Oracles: dpkg-query --admindir on
#    that status file (every installed package, name version arch), the
#    facts the test wrote, uname -m for the architecture.
#  - luks: the same on LUKS2 (cryptsetup reencrypt --encrypt), fstab by
#    crypttab's name and by luks-UUID.
#  - alpine: an MBR disk (disk signature set), p1 a btrfs made by
#    mkfs.btrfs --rootdir: /bin/sh -> /bin/busybox (absolute: resolved
#    inside the guest), apk's installed file written by the test, fstab
#    by /dev/vda1 and by PARTUUID=SIG-01.
#  - rocky: RHEL's layout (tests/mklvm.sh): GPT, p1 ESP, p2 an LVM PV
#    holding VG rl with LV root, an XFS filled by the kernel; an rpm
#    database made by the rpm tool (rpm --initdb, packages built by
#    rpmbuild and installed with --justdb); fstab by /dev/mapper/rl-root
#    and /dev/rl/root. Oracle: rpm -qa on the same database.
#  - centos7: the same packages in a BerkeleyDB Packages file (rpm here
#    writes only SQLite: the headers are read out by sqlite3 and loaded
#    by db5.3_load), an ext4 filling the disk, centos-release only.
#    Oracle: rpm -qa through librpm's bdb_ro.
#  - windows: a GPT disk, p1 an NTFS made by mkntfs and filled through
#    ntfs-3g: Windows/system32/config/SOFTWARE and SYSTEM, hives made
#    empty by tests/mkhive.py and filled by hivexregedit --merge from
#    .reg files the test writes (read back by hivexregedit --export as
#    a check), and cmd.exe, a PE header with machine AMD64; a copy whose
#    SOFTWARE lists its Uninstall key and the root as the Uninstall
#    key's subkeys (a loop) and whose SYSTEM is garbage.
#  - fedora: a btrfs filling the disk (/fs), made by mkfs.btrfs and filled
#    by the kernel: the OS in subvolume "root" (found as /fs/root), a
#    "home" subvolume, a read-only snapshot of root (not a second OS),
#    fstab by UUID= with subvol=, absolute symlinks resolved inside the
#    subvolume (/bin/sh -> /usr/bin/bash).
#  - hostile: an ext4 whose os-release has a 2 MiB line, whose /bin/sh
#    is a loop of symlinks, whose hostname climbs above the root
#    (../../../p1/...: the guest's own /p1), whose rpm database is
#    garbage and whose state says "not clean" (debugfs ssv), its fstab
#    naming a filesystem whose journal needs recovery (debugfs feature,
#    dumpe2fs the oracle) and a FAT32 ESP whose FAT[1] lacks the clean
#    bit (poked; fsck.fat -n the oracle): exit 0, each as a warning; a disk with no
#    operating system: exit 1.
# With VD_FULL=1 (make check-full) also:
#  - debootstrap: a Debian made by debootstrap --variant=minbase (the
#    network and ~5 minutes, so not in make check), in the Debian guest's
#    layout. Oracles: its debian_version and os-release, dpkg-query.
#  - vi-*: virt-inspector (libguestfs) on the debootstrapped Debian and
#    the rocky, alpine and windows images, compared field by field with
#    vdtool's report by tests/vicompare.py. libguestfs boots an appliance
#    (under TCG without /dev/kvm: a minute or more per image).
. "$(dirname "$0")/lib.sh"
. "$VD_LIB_DIR/mklvm.sh"

VDTOOL=${VDTOOL:-$BUILD/asan/vdtool}
MKHIVE=$VD_LIB_DIR/mkhive.py
ESP_SERIAL=1234ABCD
ROOT_UUID=5b3c4f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f

# ------------------------------------------------------------ helpers

# jcheck JSON EXPR... — inside a test: each python EXPR must hold, with
# j the report and o its first operating system.
jcheck() {
	"$PY" - "$TD/.jcheck" "$@" <<-'EOF' || die "$(cat "$TD/.jcheck")"
		import json, sys
		why = sys.argv[1]
		j = json.load(open(sys.argv[2]))
		oss = j.get("operatingsystems") or []
		o = oss[0] if oss else {}
		for e in sys.argv[3:]:
		    try:
		        ok = eval(e)
		    except Exception as x:
		        ok, e = False, "%s (%r)" % (e, x)
		    if not ok:
		        open(why, "w").write("failed: %s; got: %s" % (e, json.dumps(o)[:1200]))
		        sys.exit(1)
	EOF
}

# inspect OUT ARGS... — vdtool inspect ARGS >OUT (stderr: OUT.err); the
# exit status is returned.
inspect() {
	local out=$1
	shift
	T "$VDTOOL" inspect "$@" >"$out" 2>"$out.err"
}

inspect_ok() {
	local out=$1 rc
	inspect "$@"
	rc=$?
	[ $rc -eq 0 ] || die "vdtool inspect ${*:2} exit $rc: $(head -c 600 "$out.err" | tr '\n' ' ')"
}

# The machine of the host's own binaries, in virt-inspector's names.
host_arch() {
	case $(uname -m) in
	armv7l | armv6l) echo arm ;;
	*) uname -m ;;
	esac
}

# ------------------------------------------------------------ debian

mk_debian_tree() {
	local t=$1
	mkdir -p "$t"/{usr/bin,usr/lib,etc,boot/efi,var/lib/dpkg/info,var/lib/dpkg/updates,home}
	ln -s usr/bin "$t/bin"
	cp "$(readlink -f /bin/sh)" "$t/usr/bin/dash"
	ln -s dash "$t/usr/bin/sh"
	cat >"$t/usr/lib/os-release" <<-'EOF'
		PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
		NAME="Debian GNU/Linux"
		VERSION_ID="12"
		VERSION="12 (bookworm)"
		VERSION_CODENAME=bookworm
		ID=debian
		HOME_URL="https://www.debian.org/"
	EOF
	ln -s ../usr/lib/os-release "$t/etc/os-release"
	echo 12.5 >"$t/etc/debian_version"
	echo web01 >"$t/etc/hostname"
	cat >"$t/etc/fstab" <<-EOF
		# /etc/fstab: static file system information.
		UUID=$ROOT_UUID /               ext4    errors=remount-ro 0       1
		UUID=1234-ABCD  /boot/efi       vfat    umask=0077      0       1
		UUID=00000000-dead-beef-0000-000000000000 none swap sw 0 0
		proc            /proc           proc    defaults        0       0
		LABEL=data      /srv/data       ext4    defaults,nofail 0       2
		/dev/sdb1       /mnt/other      ext4    defaults        0       0
	EOF
	cp /var/lib/dpkg/status "$t/var/lib/dpkg/status"
}

gen_debian() {
	mk_debian_tree tree || return 1
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -i "$ESP_SERIAL" -n ESP esp.img >/dev/null || return 1
	truncate -s $((64 * MIB)) root.img
	mkfs.ext4 -q -F -U "$ROOT_UUID" -E root_owner=0:0 -b 4096 -d tree root.img || return 1
	lvm_gpt disk.raw 80 8:esp 70:linux || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw root.img "$(lvm_part_off disk.raw 2)" || return 1
	qemu-img convert -f raw -O qcow2 disk.raw debian.qcow2 || return 1
	# The oracle: every installed package as dpkg reads the file.
	dpkg-query --admindir=tree/var/lib/dpkg -W \
		-f='${db:Status-Status} ${Package} ${Version} ${Architecture}\n' |
		awk '$1 == "installed" { print $2, $3, $4 }' | LC_ALL=C sort >pkgs.want || return 1
	[ -s pkgs.want ] || return 1
	rm -f disk.raw esp.img root.img
}

t_debian() {
	local d n
	d=$(img_or_die debian) || exit 1
	n=$(wc -l <"$d/pkgs.want")
	inspect_ok out.json --json "$d/debian.qcow2"
	jcheck out.json 'len(j["operatingsystems"]) == 1' \
		'o["root"] == "/p2"' 'o["type"] == "linux"' 'o["distro"] == "debian"' \
		'o["product_name"] == "Debian GNU/Linux 12 (bookworm)"' \
		'o["version"] == "12.5"' 'o["major_version"] == 12' 'o["minor_version"] == 5' \
		'o["codename"] == "bookworm"' "o['arch'] == '$(host_arch)'" \
		'o["hostname"] == "web01"' 'o["package_format"] == "deb"' \
		'o["package_management"] == "apt"' "o['packages_count'] == $n" \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/", "/p2"), ("/boot/efi", "/p1"), ("/srv/data", None), ("/mnt/other", None)]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/p2", "ext4", True), ("/p1", "vfat", True)]' \
		'o["warnings"] == []' '"applications" not in o'
	[ -s out.json.err ] && die "warnings on a clean guest: $(head -c 300 out.json.err)"
	inspect_ok out.txt "$d/debian.qcow2"
	head -n 1 out.txt | grep -qxF "root /p2 (ext4): linux, debian 12.5 \"bookworm\", $(host_arch), hostname web01, dpkg/apt, $n packages" ||
		die "summary line: $(head -n 1 out.txt)"
	grep -qF "  fstab: /p2 → /, /p1 → /boot/efi, LABEL=data (not found) → /srv/data, /dev/sdb1 (not found) → /mnt/other" out.txt ||
		die "fstab line: $(grep fstab out.txt)"
	# --packages: every installed package, as dpkg-query lists them.
	inspect_ok pk.json --json --packages "$d/debian.qcow2"
	"$PY" - pk.json >pkgs.got <<-'EOF' || die "no applications in the report"
		import json, sys
		o = json.load(open(sys.argv[1]))["operatingsystems"][0]
		for a in o["applications"]:
		    v = (a["epoch"] + ":" if a["epoch"] else "") + a["version"] + \
		        ("-" + a["release"] if a["release"] else "")
		    print(a["name"], v, a["arch"])
	EOF
	LC_ALL=C sort pkgs.got >pkgs.sorted
	cmp -s pkgs.sorted "$d/pkgs.want" ||
		die "packages differ from dpkg-query's: $(diff pkgs.sorted "$d/pkgs.want" | head -n 5 | tr '\n' ' ')"
	inspect_ok pk.txt --packages "$d/debian.qcow2"
	[ "$(grep -c '^    ' pk.txt)" -eq "$n" ] || die "--packages lists $(grep -c '^    ' pk.txt) lines, want $n"
}

# A debootstrapped Debian: the host's release (minbase), made by
# debootstrap (from its default mirror: it needs the network) once per
# run, in a GPT qcow2 as the Debian guest above (p1 an ESP, p2 the ext4,
# fstab by UUID=). The oracles: the tree's own /etc/debian_version and
# os-release, and dpkg-query --admindir on its database.
DEB_UUID=6a1f0c3e-2d4b-4e5f-8a9b-0c1d2e3f4a5b

gen_deboot() {
	local suite
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$suite" ] || { echo "the host's os-release names no codename"; return 1; }
	command -v debootstrap >/dev/null || { echo "debootstrap is not installed"; return 1; }
	timeout -k 10 1200 debootstrap --variant=minbase "$suite" "$PWD/tree" >deboot.log 2>&1 ||
		{ tail -n 5 deboot.log; return 1; }
	echo debdeb01 >tree/etc/hostname
	printf 'UUID=%s / ext4 errors=remount-ro 0 1\nUUID=1234-ABCD /boot/efi vfat umask=0077 0 1\n' \
		"$DEB_UUID" >tree/etc/fstab
	mkdir -p tree/boot/efi
	cat tree/etc/debian_version >version.want
	echo "$suite" >codename.want
	(. tree/etc/os-release && echo "$PRETTY_NAME") >product.want || return 1
	dpkg-query --admindir=tree/var/lib/dpkg -W \
		-f='${db:Status-Status} ${Package} ${Version} ${Architecture}\n' |
		awk '$1 == "installed" { print $2, $3, $4 }' | LC_ALL=C sort >pkgs.want || return 1
	[ "$(wc -l <pkgs.want)" -gt 50 ] || return 1
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -i "$ESP_SERIAL" -n ESP esp.img >/dev/null || return 1
	truncate -s $((600 * MIB)) root.img
	mkfs.ext4 -q -F -U "$DEB_UUID" -b 4096 -d tree root.img || return 1
	lvm_gpt disk.raw 610 8:esp 600:linux || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw root.img "$(lvm_part_off disk.raw 2)" || return 1
	qemu-img convert -f raw -O qcow2 disk.raw deboot.qcow2 || return 1
	rm -rf disk.raw esp.img root.img tree
}

t_deboot() {
	local d n v
	command -v debootstrap >/dev/null || skip_test "debootstrap is not installed"
	d=$(img_or_die deboot) || exit 1
	n=$(wc -l <"$d/pkgs.want")
	v=$(cat "$d/version.want")
	inspect_ok out.json --json --packages "$d/deboot.qcow2"
	jcheck out.json 'len(j["operatingsystems"]) == 1' \
		'o["root"] == "/p2"' 'o["type"] == "linux"' 'o["distro"] == "debian"' \
		"o['version'] == '$v'" "o['major_version'] == ${v%%.*}" \
		"o['minor_version'] == $(echo "$v" | awk -F. '{ print $2 + 0 }')" \
		"o['codename'] == '$(cat "$d/codename.want")'" \
		"o['product_name'] == '$(cat "$d/product.want")'" \
		"o['arch'] == '$(host_arch)'" 'o["hostname"] == "debdeb01"' \
		'o["package_format"] == "deb"' 'o["package_management"] == "apt"' \
		"o['packages_count'] == $n" \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/", "/p2"), ("/boot/efi", "/p1")]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/p2", "ext4", True), ("/p1", "vfat", True)]' \
		'o["warnings"] == []'
	"$PY" - out.json >pkgs.got <<-'EOF' || die "no applications in the report"
		import json, sys
		o = json.load(open(sys.argv[1]))["operatingsystems"][0]
		for a in o["applications"]:
		    v = (a["epoch"] + ":" if a["epoch"] else "") + a["version"] + \
		        ("-" + a["release"] if a["release"] else "")
		    print(a["name"], v, a["arch"])
	EOF
	LC_ALL=C sort pkgs.got | cmp -s - "$d/pkgs.want" ||
		die "packages differ from dpkg-query's: $(LC_ALL=C sort pkgs.got | diff - "$d/pkgs.want" | head -n 5 | tr '\n' ' ')"
}

# Debian on LUKS: GPT, p1 the ESP, p2 LUKS2 (cryptsetup reencrypt
# --encrypt, offline, UUID set) holding the ext4; fstab names the root
# by crypttab's name (/dev/mapper/cryptroot, opened from UUID=) and by
# vdmount's own (/dev/mapper/luks-UUID).
LUKS_UUID=0d4c2a7e-51f3-4b8a-9c1d-2e3f4a5b6c7d

gen_luks() {
	mk_debian_tree tree || return 1
	printf 'cryptroot UUID=%s none luks,discard\n' "${LUKS_UUID^^}" >tree/etc/crypttab
	cat >tree/etc/fstab <<-EOF
		/dev/mapper/cryptroot / ext4 errors=remount-ro 0 1
		/dev/mapper/luks-$LUKS_UUID /again ext4 ro 0 0
		UUID=1234-ABCD /boot/efi vfat umask=0077 0 1
	EOF
	printf 'vdtest inspect key' >key
	truncate -s $((32 * MIB)) root.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -d tree root.img || return 1
	truncate -s $((64 * MIB)) root.img
	cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 32M \
		--uuid "$LUKS_UUID" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file key root.img || return 1
	[ "$(cryptsetup luksUUID root.img)" = "$LUKS_UUID" ] || return 1
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -i "$ESP_SERIAL" -n ESP esp.img >/dev/null || return 1
	lvm_gpt disk.raw 80 8:esp 70:linux || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw root.img "$(lvm_part_off disk.raw 2)" || return 1
	qemu-img convert -f raw -O qcow2 disk.raw luks.qcow2 || return 1
	rm -rf disk.raw esp.img root.img tree
}

t_luks() {
	local d
	command -v cryptsetup >/dev/null || skip_test "cryptsetup is not installed"
	d=$(img_or_die luks) || exit 1
	inspect_ok out.json --json --key-file="$d/key" "$d/luks.qcow2"
	jcheck out.json "o['root'] == '/luks-$LUKS_UUID'" 'o["distro"] == "debian"' \
		"[(m['mountpoint'], m['path']) for m in o['mountpoints']] == [('/', '/luks-$LUKS_UUID'), ('/again', '/luks-$LUKS_UUID'), ('/boot/efi', '/p1')]" \
		'o["warnings"] == []'
	# Without the key: nothing to inspect.
	inspect out2.json --json "$d/luks.qcow2" </dev/null
	[ $? -eq 1 ] || die "without the key: want exit 1"
	return 0
}

# ------------------------------------------------------------ alpine

gen_alpine() {
	local t=tree
	mkdir -p $t/{bin,etc,lib/apk/db,usr/bin,root}
	cp "$(readlink -f /bin/sh)" $t/bin/busybox
	ln -s /bin/busybox $t/bin/sh
	cat >$t/etc/os-release <<-'EOF'
		NAME="Alpine Linux"
		ID=alpine
		VERSION_ID=3.19.1
		PRETTY_NAME="Alpine Linux v3.19"
	EOF
	echo 3.19.1 >$t/etc/alpine-release
	printf 'alp1\n' >$t/etc/hostname
	printf '/dev/vda1 / btrfs rw,relatime 0 1\nPARTUUID=0badcafe-01 /mnt/same btrfs ro 0 0\n' >$t/etc/fstab
	# As apk writes it, each record ends with an empty line (libguestfs
	# drops a last record without one; tests/unit has that case).
	cat >$t/lib/apk/db/installed <<-'EOF'
		C:Q1lUPyRxuTNOyG6HQkAJt0+PEAE3A=
		P:musl
		V:1.2.4_git20230717-r4
		A:x86_64
		S:407330
		T:the musl c library (libc) implementation

		C:Q1GUIdEyNK9fXaShv/2r3jALcjf2s=
		P:busybox
		V:1.36.1-r15
		A:x86_64
		F:bin
		R:busybox

		P:alpine-baselayout
		V:3.4.3-r2
		A:x86_64

	EOF
	truncate -s $((400 * MIB)) root.img
	mkfs.btrfs -q -f --rootdir $t root.img || return 1
	truncate -s $((402 * MIB)) disk.raw
	printf 'label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=%d, type=83\n' $((400 * 2048)) |
		sfdisk -q disk.raw || return 1
	dd if=root.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	qemu-img convert -f raw -O qcow2 disk.raw alpine.qcow2 || return 1
	rm -f disk.raw root.img
}

t_alpine() {
	local d
	d=$(img_or_die alpine) || exit 1
	inspect_ok out.json --json --packages "$d/alpine.qcow2"
	jcheck out.json 'o["root"] == "/p1"' 'o["distro"] == "alpinelinux"' \
		'o["version"] == "3.19.1"' 'o["major_version"] == 3' 'o["minor_version"] == 19' \
		"o['arch'] == '$(host_arch)'" 'o["hostname"] == "alp1"' \
		'o["package_format"] == "apk"' 'o["package_management"] == "apk"' \
		'o["packages_count"] == 3' \
		'[(a["name"], a["version"], a["arch"]) for a in o["applications"]] == [("alpine-baselayout", "3.4.3-r2", "x86_64"), ("busybox", "1.36.1-r15", "x86_64"), ("musl", "1.2.4_git20230717-r4", "x86_64")]' \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/", "/p1"), ("/mnt/same", "/p1")]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/p1", "btrfs", True)]' \
		'o["warnings"] == []'
}

# ------------------------------------------------------------ fedora

FEDORA_UUID=3f0c8d8e-2b1a-4c55-9b7e-6d5c4b3a2f10

gen_fedora() {
	local r=fs.mnt/root
	truncate -s $((400 * MIB)) fs.img
	mkfs.btrfs -q -f -U "$FEDORA_UUID" -L fedora fs.img || return 1
	vd_mount_rw fs.img fs.mnt || return 1
	{
		btrfs subvolume create $r >/dev/null &&
			btrfs subvolume create fs.mnt/home >/dev/null &&
			mkdir -p $r/etc $r/usr/bin $r/usr/lib $r/var/lib &&
			ln -s usr/bin $r/bin &&
			cp "$(readlink -f /bin/sh)" $r/usr/bin/bash &&
			ln -s /usr/bin/bash $r/usr/bin/sh &&
			printf 'NAME="Fedora Linux"\nVERSION="39 (Server Edition)"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME="Fedora Linux 39 (Server Edition)"\n' >$r/usr/lib/os-release &&
			ln -s ../usr/lib/os-release $r/etc/os-release &&
			echo fedora39 >$r/etc/hostname &&
			printf 'UUID=%s / btrfs subvol=root,compress=zstd:1 0 0\nUUID=%s /home btrfs subvol=/home,compress=zstd:1 0 0\n' \
				"$FEDORA_UUID" "$FEDORA_UUID" >$r/etc/fstab &&
			btrfs subvolume snapshot -r $r fs.mnt/root-snap >/dev/null &&
			sync -f fs.mnt
	} || { lvm_kumount fs.mnt; return 1; }
	lvm_kumount fs.mnt || return 1
	qemu-img convert -f raw -O qcow2 fs.img fedora.qcow2 || return 1
	rm -f fs.img
}

t_fedora() {
	local d
	need_loop
	d=$(img_or_die fedora) || exit 1
	inspect_ok out.json --json "$d/fedora.qcow2"
	jcheck out.json 'len(j["operatingsystems"]) == 1' \
		'o["root"] == "/fs/root"' 'o["distro"] == "fedora"' \
		'o["product_name"] == "Fedora Linux 39 (Server Edition)"' \
		'(o["major_version"], o["minor_version"]) == (39, 0)' \
		"o['arch'] == '$(host_arch)'" 'o["hostname"] == "fedora39"' \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/", "/fs/root"), ("/home", "/fs/home")]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/fs", "btrfs", True)]' \
		'o["warnings"] == []'
}

# ------------------------------------------------------------ rocky

# A noarch package NAME-VERSION-RELEASE with one file, built by rpmbuild.
mk_rpm() {
	local name=$1 ver=$2 rel=$3 epoch=${4:-}
	cat >"$name.spec" <<-EOF
		Name: $name
		Version: $ver
		Release: $rel
		${epoch:+Epoch: $epoch}
		Summary: vdmount test package $name
		License: MIT
		BuildArch: noarch
		%description
		A test package.
		%install
		mkdir -p %{buildroot}/usr/share/$name
		echo $name > %{buildroot}/usr/share/$name/README
		%files
		/usr/share/$name/README
	EOF
	rpmbuild -bb --define "_topdir $PWD/rb" --define '_build_id_links none' \
		--define '__os_install_post %{nil}' "$name.spec" >"$name.log" 2>&1 || { cat "$name.log"; return 1; }
}

mk_centos7() {
	local sq=$1 c=c7 k v
	mkdir -p $c/{etc,usr/bin,var/lib/rpm}
	ln -s usr/bin $c/bin
	cp "$(readlink -f /bin/sh)" $c/usr/bin/bash
	ln -s bash $c/usr/bin/sh
	cp "$(readlink -f /bin/sh)" $c/usr/bin/yum
	echo 'CentOS Linux release 7.9.2009 (Core)' >$c/etc/centos-release
	ln -s centos-release $c/etc/redhat-release
	echo c7.example.com >$c/etc/hostname
	{
		printf 'VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n 00000000\n %08x\n' 1000
		sqlite3 "$sq" "select printf('%08x', hnum), lower(hex(blob)) from Packages" |
			while IFS='|' read -r k v; do
				printf ' %s\n %s\n' "${k:6:2}${k:4:2}${k:2:2}${k:0:2}" "$v"
			done
		printf 'DATA=END\n'
	} >c7.dump || return 1
	db5.3_load -f c7.dump $c/var/lib/rpm/Packages || return 1
	rpm --define '_db_backend bdb_ro' --dbpath "$PWD/$c/var/lib/rpm" -qa \
		--qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\n' 2>/dev/null |
		sed 's/ (none) / - /' | LC_ALL=C sort >c7.want || return 1
	[ "$(wc -l <c7.want)" -eq 3 ] || return 1
	truncate -s $((32 * MIB)) c7.img
	mkfs.ext4 -q -F -E root_owner=0:0 -d $c c7.img || return 1
	qemu-img convert -f raw -O qcow2 c7.img centos7.qcow2 || return 1
	rm -rf c7.img $c c7.dump
}

gen_rocky() {
	local t=tree db p
	command -v rpmbuild >/dev/null && command -v rpm >/dev/null || return 1
	mkdir -p $t/{etc/sysconfig,usr/bin,usr/lib/sysimage/rpm,var/lib,boot/efi}
	ln -s usr/bin $t/bin
	ln -s ../../usr/lib/sysimage/rpm $t/var/lib/rpm
	cp "$(readlink -f /bin/sh)" $t/usr/bin/bash
	ln -s bash $t/usr/bin/sh
	cp "$(readlink -f /bin/sh)" $t/usr/bin/dnf
	cat >$t/etc/os-release <<-'EOF'
		NAME="Rocky Linux"
		VERSION="9.3 (Blue Onyx)"
		ID="rocky"
		ID_LIKE="rhel centos fedora"
		VERSION_ID="9.3"
		PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
	EOF
	echo 'Rocky Linux release 9.3 (Blue Onyx)' >$t/etc/redhat-release
	printf 'NETWORKING=yes\nHOSTNAME=rocky9.example.com\n' >$t/etc/sysconfig/network
	printf '/dev/mapper/rl-root / xfs defaults 0 0\n/dev/rl/root /mnt/again xfs ro 0 0\nUUID=1234-ABCD /boot/efi vfat umask=0077 0 2\n' >$t/etc/fstab
	# rpm's own configuration, as the rpm package installs it (much
	# shortened): librpm run inside the guest, as libguestfs runs it,
	# reads its dbpath from there.
	mkdir -p $t/usr/lib/rpm $t/mnt/again
	: >$t/usr/lib/rpm/rpmrc
	printf '%%_dbpath /var/lib/rpm\n%%_db_backend sqlite\n' >$t/usr/lib/rpm/macros
	# rpm's --dbpath lies inside --root.
	db=/usr/lib/sysimage/rpm
	rpm --root "$PWD/$t" --dbpath "$db" --initdb || return 1
	mk_rpm vdtest-tools 1.2.3 4.el9 || return 1
	mk_rpm vdtest-lib 0.9 1.el9 2 || return 1
	mk_rpm vdtest-data 2024.1 7.el9 || return 1
	for p in rb/RPMS/noarch/*.rpm; do
		rpm --dbpath "$db" --root "$PWD/$t" -i --justdb --nodeps --noscripts \
			--ignoreos --ignorearch --nosignature --nodigest "$p" || return 1
	done
	rpm --root "$PWD/$t" --dbpath "$db" -qa --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\n' |
		sed 's/ (none) / - /' | LC_ALL=C sort >pkgs.want || return 1
	[ "$(wc -l <pkgs.want)" -eq 3 ] || return 1
	ls "$t$db" >dbfiles
	# CentOS 7's database: BerkeleyDB, which rpm here no longer writes.
	# The same headers (sqlite3 reads them out of rpmdb.sqlite) go into
	# a hash database made by db5.3_load (its dump format: key, then
	# data, hex; the key a header number in the host's byte order, as
	# rpm kept it; key 0 the next number), read back by rpm's bdb_ro.
	if command -v db5.3_load >/dev/null && command -v sqlite3 >/dev/null; then
		mk_centos7 "$t$db/rpmdb.sqlite" || return 1
	fi
	# The root LV: XFS filled by the kernel.
	truncate -s $((64 * MIB)) root.img
	TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 mkfs.xfs -q -f root.img || return 1
	vd_mount_rw root.img root.mnt || return 1
	cp -a $t/. root.mnt/ || { lvm_kumount root.mnt; return 1; }
	lvm_kumount root.mnt || return 1
	truncate -s $((8 * MIB)) esp.img
	mkfs.vfat -i "$ESP_SERIAL" -n ESP esp.img >/dev/null || return 1
	lvm_gpt disk.raw 90 8:esp 80:lvm || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_attach disk.raw || return 1
	lvmc pvcreate "${LDEV}p2" || return 1
	lvmc vgcreate rl "${LDEV}p2" || return 1
	lvc -n root -L 64m rl || return 1
	mlvm put rl root=root.img || return 1
	lvm_detach || return 1
	qemu-img convert -f raw -O qcow2 disk.raw rocky.qcow2 || return 1
	rm -f disk.raw root.img esp.img
}

t_rocky() {
	local d
	command -v rpmbuild >/dev/null || skip_test "rpmbuild is not installed"
	need_loop
	d=$(img_or_die rocky) || exit 1
	inspect_ok out.json --json --packages "$d/rocky.qcow2"
	jcheck out.json 'o["root"] == "/rl-root"' 'o["distro"] == "rocky"' \
		'o["product_name"] == "Rocky Linux 9.3 (Blue Onyx)"' \
		'(o["major_version"], o["minor_version"]) == (9, 3)' \
		"o['arch'] == '$(host_arch)'" 'o["hostname"] == "rocky9.example.com"' \
		'o["package_format"] == "rpm"' 'o["package_management"] == "dnf"' \
		'o["packages_count"] == 3' \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/", "/rl-root"), ("/mnt/again", "/rl-root"), ("/boot/efi", "/p1")]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/rl-root", "xfs", True), ("/p1", "vfat", True)]' \
		'o["warnings"] == []'
	"$PY" - out.json >pkgs.got <<-'EOF' || die "no applications"
		import json, sys
		o = json.load(open(sys.argv[1]))["operatingsystems"][0]
		for a in o["applications"]:
		    print(a["name"], a["epoch"] or "-", a["version"], a["release"], a["arch"])
	EOF
	LC_ALL=C sort pkgs.got | cmp -s - "$d/pkgs.want" ||
		die "packages differ from rpm -qa's ($(cat "$d/dbfiles" | tr '\n' ' ')): $(LC_ALL=C sort pkgs.got | diff - "$d/pkgs.want" | tr '\n' ' ')"
}

t_centos7() {
	local d
	command -v rpmbuild >/dev/null || skip_test "rpmbuild is not installed"
	command -v db5.3_load >/dev/null || skip_test "db5.3_load is not installed (db5.3-util)"
	need_loop
	d=$(img_or_die rocky) || exit 1
	[ -f "$d/centos7.qcow2" ] || die "no centos7.qcow2 (sqlite3 missing when it was made?)"
	inspect_ok out.json --json --packages "$d/centos7.qcow2"
	jcheck out.json 'o["root"] == "/fs"' 'o["distro"] == "centos"' \
		'o["version"] == "7.9.2009"' '(o["major_version"], o["minor_version"]) == (7, 9)' \
		'o["codename"] == "Core"' 'o["hostname"] == "c7.example.com"' \
		'o["package_format"] == "rpm"' 'o["package_management"] == "yum"' \
		'o["packages_count"] == 3' 'o["warnings"] == []'
	"$PY" - out.json >pkgs.got <<-'EOF' || die "no applications"
		import json, sys
		o = json.load(open(sys.argv[1]))["operatingsystems"][0]
		for a in o["applications"]:
		    print(a["name"], a["epoch"] or "-", a["version"], a["release"], a["arch"])
	EOF
	LC_ALL=C sort pkgs.got | cmp -s - "$d/c7.want" ||
		die "packages differ from rpm -qa's (bdb_ro): $(LC_ALL=C sort pkgs.got | diff - "$d/c7.want" | tr '\n' ' ')"
}

# ------------------------------------------------------------ windows

# The bytes of a GUID as Windows and GPT store them, as .reg hex.
guid_hex() {
	"$PY" -c 'import sys, uuid; print(",".join("%02x" % b for b in uuid.UUID(sys.argv[1]).bytes_le))' "$1"
}

gen_windows() {
	local guid
	command -v hivexregedit >/dev/null || return 1
	truncate -s $((48 * MIB)) disk.raw
	printf 'label: gpt\nstart=2048, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' $((40 * 2048)) |
		sfdisk -q disk.raw || return 1
	guid=$(sfdisk --json disk.raw | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["uuid"])') || return 1
	"$PY" "$MKHIVE" SOFTWARE || return 1
	"$PY" "$MKHIVE" SYSTEM || return 1
	cat >software.reg <<-'EOF'
		Windows Registry Editor Version 5.00

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft]

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT]

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion]
		"ProductName"="Windows Server 2022 Standard"
		"CurrentMajorVersionNumber"=dword:0000000a
		"CurrentMinorVersionNumber"=dword:00000000
		"CurrentVersion"="6.3"
		"CurrentBuildNumber"="20348"
		"CurrentBuild"="20348"
		"EditionID"="ServerStandard"
		"InstallationType"="Server"

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows]

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion]

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall]

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\7-Zip]
		"DisplayName"="7-Zip 23.01 (x64)"
		"DisplayVersion"="23.01"
		"Publisher"="Igor Pavlov"

		[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{90160000-008C-0000-1000-0000000FF1CE}]
		"DisplayName"="Office 16 Click-to-Run Extensibility Component"
		"DisplayVersion"="16.0.17126.20132"

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node]

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft]

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows]

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion]

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall]

		[HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\Notepad++]
		"DisplayName"="Notepad++ (32-bit x86)"
		"DisplayVersion"="8.6.2"
	EOF
	cat >system.reg <<-EOF
		Windows Registry Editor Version 5.00

		[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]
		"Current"=dword:00000001
		"Default"=dword:00000001

		[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001]

		[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services]

		[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Tcpip]

		[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Tcpip\\Parameters]
		"Hostname"="DC01"

		[HKEY_LOCAL_MACHINE\\SYSTEM\\MountedDevices]
		"\\\\DosDevices\\\\C:"=hex:44,4d,49,4f,3a,49,44,3a,$(guid_hex "$guid")
		"\\\\DosDevices\\\\D:"=hex:78,56,34,12,00,00,10,00,00,00,00,00
	EOF
	hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' SOFTWARE software.reg || return 1
	hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' SYSTEM system.reg || return 1
	# hivex's own reader sees what was merged.
	hivexregedit --export --unsafe-printable-strings --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' SOFTWARE '\' >software.out || return 1
	grep -qxF '"ProductName"=str(1):"Windows Server 2022 Standard"' software.out || return 1
	hivexregedit --export --unsafe-printable-strings --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' SYSTEM '\' >system.out || return 1
	grep -qi 'DosDevices' system.out || return 1
	# cmd.exe: an MZ header whose e_lfanew leads to "PE\0\0" and the
	# COFF machine AMD64 (0x8664), then what file(1) needs to call it
	# "PE32+ executable (console) x86-64" (as virt-inspector asks it):
	# the optional header's size (240), characteristics (executable,
	# large address aware), magic (0x20b: PE32+) and subsystem (3).
	"$PY" -c '
import struct, sys
b = bytearray(1024)
b[0:2] = b"MZ"
struct.pack_into("<I", b, 0x3c, 0x80)
b[0x80:0x84] = b"PE\0\0"
struct.pack_into("<H", b, 0x84, 0x8664)
struct.pack_into("<H", b, 0x84 + 16, 240)
struct.pack_into("<H", b, 0x84 + 18, 0x0022)
struct.pack_into("<H", b, 0x98, 0x20b)
struct.pack_into("<H", b, 0x98 + 68, 3)
open(sys.argv[1], "wb").write(b)' cmd.exe || return 1
	! command -v file >/dev/null || file cmd.exe | grep -q 'PE32+ executable (console) x86-64' || return 1
	# The hostile copies: SOFTWARE whose Uninstall key lists itself and
	# the root as its subkeys (a loop; hivex's handles are the nk
	# cells' file offsets, its lh record's entries are offsets from the
	# first bin), SYSTEM garbage.
	mkdir -p bad && cp SOFTWARE bad/SOFTWARE || return 1
	perl -MWin::Hivex -e '
		my $h = Win::Hivex->open($ARGV[0]);
		my $n = $h->root();
		$n = $h->node_get_child($n, $_) for qw(Microsoft Windows CurrentVersion Uninstall);
		print $n, " ", $h->root(), "\n";' bad/SOFTWARE >bad/offsets || return 1
	"$PY" - bad/SOFTWARE $(cat bad/offsets) <<-'EOF' || return 1
		import struct, sys
		path, nk, root = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		b = bytearray(open(path, "rb").read())
		lh = 0x1000 + struct.unpack_from("<I", b, nk + 32)[0]
		assert b[lh + 4:lh + 6] == b"lh" and struct.unpack_from("<H", b, lh + 6)[0] == 2
		struct.pack_into("<I", b, lh + 8, nk - 0x1000)
		struct.pack_into("<I", b, lh + 16, root - 0x1000)
		open(path, "wb").write(b)
	EOF
	head -c 20000 /dev/urandom >bad/SYSTEM
	for v in c:SOFTWARE:SYSTEM bad:bad/SOFTWARE:bad/SYSTEM; do
		IFS=: read -r n sw sy <<<"$v"
		truncate -s $((40 * MIB)) $n.img
		mkntfs -Q -F -q -c 4096 -L OS $n.img 2>/dev/null || return 1
		mkdir -p rw
		echo "$PWD/rw" >>"$VD_MOUNTS"
		timeout -k 5 120 ntfs-3g $n.img rw || return 1
		mkdir -p rw/Windows/system32/config "rw/Program Files" rw/Users &&
			cp "$sw" rw/Windows/system32/config/SOFTWARE &&
			cp "$sy" rw/Windows/system32/config/SYSTEM &&
			cp cmd.exe rw/Windows/system32/cmd.exe || { umount rw; return 1; }
		timeout -k 5 60 umount rw || return 1
		grep -vxF -- "$PWD/rw" "$VD_MOUNTS" >"$VD_MOUNTS.new"
		mv "$VD_MOUNTS.new" "$VD_MOUNTS"
		dd if=$n.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
		qemu-img convert -f raw -O qcow2 disk.raw windows-$n.qcow2 || return 1
		[ $n != c ] || {
			# The same volume on an MBR disk whose signature and
			# offset are D:'s in MountedDevices.
			truncate -s $((48 * MIB)) mbr.raw
			printf 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=%d, type=7\n' $((40 * 2048)) |
				sfdisk -q mbr.raw || return 1
			dd if=$n.img of=mbr.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
			qemu-img convert -f raw -O qcow2 mbr.raw windows-mbr.qcow2 || return 1
			rm -f mbr.raw
		}
		rm -f $n.img
	done
	mv windows-c.qcow2 windows.qcow2
	rm -f disk.raw
}

t_windows() {
	local d
	command -v hivexregedit >/dev/null || skip_test "hivexregedit is not installed"
	command -v ntfs-3g >/dev/null || skip_test "ntfs-3g is not installed"
	[ "$(id -u)" = 0 ] || skip_test "filling NTFS needs an ntfs-3g mount (root)"
	d=$(img_or_die windows) || exit 1
	inspect_ok out.json --json --packages "$d/windows.qcow2"
	jcheck out.json 'o["root"] == "/p1"' 'o["type"] == "windows"' \
		'o["distro"] == "windows"' \
		'o["product_name"] == "Windows Server 2022 Standard"' \
		'(o["major_version"], o["minor_version"]) == (10, 0)' \
		'o["build_id"] == "20348"' 'o["edition"] == "ServerStandard"' \
		'o["product_variant"] == "Server"' 'o["arch"] == "x86_64"' \
		'o["hostname"] == "DC01"' 'o["windows_systemroot"] == "/Windows"' \
		'o["windows_current_control_set"] == "ControlSet001"' \
		'o["packages_count"] == 3' \
		'[(a["name"], a["display_name"], a["version"], a["publisher"]) for a in o["applications"]] == [("7-Zip", "7-Zip 23.01 (x64)", "23.01", "Igor Pavlov"), ("Notepad++", "Notepad++ (32-bit x86)", "8.6.2", None), ("{90160000-008C-0000-1000-0000000FF1CE}", "Office 16 Click-to-Run Extensibility Component", "16.0.17126.20132", None)]' \
		'[(m["name"], m["path"]) for m in o["drive_mappings"]] == [("C:", "/p1"), ("D:", None)]' \
		'[(f["path"], f["type"], f["clean"]) for f in o["filesystems"]] == [("/p1", "ntfs", True)]' \
		'o["warnings"] == []'
	inspect_ok out.txt "$d/windows.qcow2"
	head -n 1 out.txt | grep -qxF 'root /p1 (ntfs): windows, "Windows Server 2022 Standard", 10.0 build 20348, x86_64, hostname DC01, 3 applications' ||
		die "summary line: $(head -n 1 out.txt)"
	grep -qxF '  drive letters: C: → /p1, D: → ?' out.txt || die "drive letters: $(grep drive out.txt)"
	# On the MBR disk D: (signature 0x12345678, offset 1 MiB) is p1.
	inspect_ok mbr.json --json "$d/windows-mbr.qcow2"
	jcheck mbr.json '[(m["name"], m["path"]) for m in o["drive_mappings"]] == [("C:", None), ("D:", "/p1")]'
}

# The hostile copy: a loop in SOFTWARE's subkeys is read one level
# deep (no hang, the two "applications" it lists named by their keys),
# a garbage SYSTEM is one warning, the rest reads.
t_windows_hostile() {
	local d
	command -v hivexregedit >/dev/null || skip_test "hivexregedit is not installed"
	command -v ntfs-3g >/dev/null || skip_test "ntfs-3g is not installed"
	[ "$(id -u)" = 0 ] || skip_test "filling NTFS needs an ntfs-3g mount (root)"
	d=$(img_or_die windows) || exit 1
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=100:allocator_may_return_null=0" \
		inspect_ok out.json --json --packages "$d/windows-bad.qcow2"
	jcheck out.json 'o["type"] == "windows"' \
		'o["product_name"] == "Windows Server 2022 Standard"' \
		'o["hostname"] is None' 'o["drive_mappings"] == []' \
		'[(a["name"], a["display_name"]) for a in o["applications"]] == [("Notepad++", "Notepad++ (32-bit x86)"), ("ROOT", None), ("Uninstall", None)]' \
		'len(o["warnings"]) == 1' \
		'"SYSTEM: not a registry hive hivex can read" in o["warnings"][0]'
}

# ------------------------------------------------------------ hostile

OTHER_UUID=7e0b6a52-9f31-4d2c-8a44-5c6d7e8f9a0b

gen_hostile() {
	local t=tree
	mkdir -p $t/{etc,bin,usr/bin,var/lib/rpm}
	ln -s sh2 $t/bin/sh
	ln -s sh $t/bin/sh2
	# Read up to its cap (64 KiB): the keys before the long line count,
	# PRETTY_NAME after it is never seen.
	{
		echo 'NAME="Debian GNU/Linux"'
		echo 'ID=debian'
		echo 'VERSION_ID="12"'
		echo 'VERSION_CODENAME=bookworm'
		head -c $((2 * MIB)) /dev/zero | tr '\0' 'A'
		echo
		echo 'PRETTY_NAME="not read"'
	} >$t/etc/os-release
	# Climbs above the root: resolved as in a chroot, to the guest's
	# own /p1/secret, never the image's p1 (which has a file of that
	# name too).
	mkdir -p $t/p1
	echo guest-p1 >$t/p1/secret
	ln -s ../../../p1/secret $t/etc/hostname
	head -c 100000 /dev/urandom >$t/var/lib/rpm/rpmdb.sqlite
	mkdir -p other
	echo 'not the guest hostname' >other/secret
	truncate -s $((16 * MIB)) other.img
	mkfs.ext4 -q -F -U "$OTHER_UUID" -E root_owner=0:0 -d other other.img || return 1
	# p1's journal "needs recovery" (the flag a crash leaves), as
	# dumpe2fs then says; the guest's fstab names p1.
	debugfs -w -R 'feature needs_recovery' other.img >/dev/null 2>&1 || return 1
	dumpe2fs -h other.img 2>/dev/null | grep -q '^Filesystem features:.* needs_recovery' || return 1
	printf 'UUID=%s /srv ext4 defaults 0 2\nUUID=0BAD-0BAD /boot/efi vfat umask=0077 0 1\n' \
		"$OTHER_UUID" >$t/etc/fstab
	# p3: a FAT32 ESP whose FAT[1] lacks the "clean shutdown" bit, as
	# Windows leaves it when it did not unmount; fsck.fat says so.
	truncate -s $((40 * MIB)) esp.img
	mkfs.vfat -F 32 -i 0BAD0BAD esp.img >/dev/null || return 1
	"$PY" - esp.img <<-'EOF' || return 1
		import struct, sys
		f = open(sys.argv[1], "r+b")
		b = f.read(512)
		off = struct.unpack_from("<H", b, 11)[0] * struct.unpack_from("<H", b, 14)[0] + 4
		f.seek(off)
		v = struct.unpack("<I", f.read(4))[0]
		f.seek(off)
		f.write(struct.pack("<I", v & ~0x08000000))
	EOF
	fsck.fat -n esp.img 2>&1 | grep -q 'Dirty bit is set' || return 1
	truncate -s $((32 * MIB)) root.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -d $t root.img || return 1
	debugfs -w -R 'ssv state 0' root.img >/dev/null 2>&1 || return 1
	dumpe2fs -h root.img 2>/dev/null | grep -q '^Filesystem state: *not clean$' || return 1
	lvm_gpt disk.raw 92 16:linux 32:linux 40:esp || return 1
	lvm_place disk.raw other.img "$(lvm_part_off disk.raw 1)" || return 1
	lvm_place disk.raw root.img "$(lvm_part_off disk.raw 2)" || return 1
	lvm_place disk.raw esp.img "$(lvm_part_off disk.raw 3)" || return 1
	qemu-img convert -f raw -O qcow2 disk.raw hostile.qcow2 || return 1
	qemu-img convert -f raw -O qcow2 other.img noos.qcow2 || return 1
	rm -f disk.raw root.img other.img esp.img
}

t_hostile() {
	local d
	d=$(img_or_die hostile) || exit 1
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=100:allocator_may_return_null=0" \
		inspect_ok out.json --json "$d/hostile.qcow2"
	jcheck out.json 'o["root"] == "/p2"' 'o["distro"] == "debian"' \
		'o["version"] == "12"' 'o["codename"] == "bookworm"' \
		'o["product_name"] == "Debian GNU/Linux"' \
		'any("etc/os-release: larger than 65536 bytes" in w for w in o["warnings"])' \
		'o["arch"] is None' 'o["hostname"] == "guest-p1"' \
		'o["package_format"] == "rpm"' \
		'[(m["mountpoint"], m["path"]) for m in o["mountpoints"]] == [("/srv", "/p1"), ("/boot/efi", "/p3")]' \
		'[(f["path"], f["clean"], f["state"]) for f in o["filesystems"]] == [("/p2", False, "not cleanly unmounted"), ("/p1", False, "journal needs recovery"), ("/p3", False, "dirty bit set")]' \
		'any("etc/os-release: 1 line longer" in w for w in o["warnings"])' \
		'any("bin/sh: Too many levels of symbolic links" in w for w in o["warnings"])' \
		'any("rpm" in w for w in o["warnings"])'
	# Each warning is one line on stderr, naming the root.
	[ "$(grep -c '^vdtool inspect: /p2: ' out.json.err)" -eq "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["operatingsystems"][0]["warnings"]))' out.json)" ] ||
		die "stderr lines differ from warnings: $(head -c 600 out.json.err)"
	inspect out.txt "$d/noos.qcow2"
	[ $? -eq 1 ] || die "an image without an OS: exit $?, want 1"
	grep -q 'no operating system found' out.txt.err || die "no message: $(cat out.txt.err)"
	inspect out.txt "$d/missing.qcow2"
	[ $? -eq 1 ] || die "a missing image: want exit 1"
	return 0
}

# ------------------------------------------------------------ huge (VD_FULL)

# A dpkg status file of 72 MiB (past the 64 MiB cap) with more packages
# than are listed (200,000): both capped, each with a warning.
gen_huge() {
	local t=tree
	mkdir -p $t/{etc,usr/bin,var/lib/dpkg}
	ln -s usr/bin $t/bin
	cp "$(readlink -f /bin/sh)" $t/usr/bin/sh
	printf 'ID=debian\nVERSION_ID="12"\n' >$t/etc/os-release
	"$PY" - $t/var/lib/dpkg/status <<-'EOF' || return 1
		import sys
		with open(sys.argv[1], "w") as f:
		    n = 0
		    while f.tell() < 72 * 1024 * 1024:
		        f.write("Package: p%07d\nStatus: install ok installed\n"
		                "Version: 1.0-%d\nArchitecture: all\n\n" % (n, n))
		        n += 1
	EOF
	truncate -s $((160 * MIB)) root.img
	mkfs.ext4 -q -F -E root_owner=0:0 -b 4096 -d $t root.img || return 1
	qemu-img convert -f raw -O qcow2 root.img huge.qcow2 || return 1
	rm -rf root.img $t
}

t_huge() {
	local d
	d=$(img_or_die huge) || exit 1
	inspect_ok out.json --json "$d/huge.qcow2"
	jcheck out.json 'o["package_format"] == "deb"' \
		'o["packages_count"] > 200000' \
		'any("var/lib/dpkg/status: larger than 67108864 bytes" in w for w in o["warnings"])' \
		'any("only the first 200000 packages" in w for w in o["warnings"])'
}

# ------------------------------------------------------------ virt-inspector (VD_FULL)

# The oracle we did not write: libguestfs's virt-inspector on the same
# images, one per OS family (Debian, rpm-based, Alpine, Windows on NTFS),
# compared field by field by tests/vicompare.py (what it compares and how
# it maps libguestfs's device names is said there). virt-inspector boots
# an appliance (supermin: the host's kernel from /boot and its binaries);
# without /dev/kvm qemu emulates it (TCG), a minute or more per image, so
# these run only under VD_FULL=1 (make check-full, whose install-deps
# adds libguestfs-tools, and a kernel when /boot has none).
vi_ready() {
	command -v virt-inspector >/dev/null ||
		skip_test "virt-inspector is not installed (Debian package libguestfs-tools)"
	compgen -G '/boot/vmlinuz-*' >/dev/null ||
		skip_test "no kernel in /boot: libguestfs's appliance needs one (linux-image-$(dpkg --print-architecture 2>/dev/null))"
}

# virt_inspect IMG OUT [OPTION...] — virt-inspector's XML of IMG in OUT
# (its stderr in OUT.err). A cold appliance build plus a TCG boot: 15
# minutes allowed.
virt_inspect() {
	local img=$1 out=$2
	shift 2
	LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct} \
		timeout -k 10 900 virt-inspector "$@" --format=qcow2 -a "$img" >"$out" 2>"$out.err"
}

# t_vi GEN IMAGE VI_OPTIONS [--differs FIELD=WHY]... — both inspect
# IMAGE of set GEN (VI_OPTIONS: more options to virt-inspector).
t_vi() {
	local d gen=$1 img=$2 rc
	local -a vio
	read -ra vio <<<"$3"
	shift 3
	vi_ready
	[ "$gen" != deboot ] || command -v debootstrap >/dev/null ||
		skip_test "debootstrap is not installed"
	d=$(img_or_die "$gen") || exit 1
	[ -f "$d/$img" ] || die "no $img in $d"
	inspect_ok vd.json --json --packages "$d/$img"
	virt_inspect "$d/$img" vi.xml "${vio[@]}"
	rc=$?
	[ $rc -eq 0 ] || die "virt-inspector exit $rc: $(tail -n 4 vi.xml.err | tr '\n' ' ')"
	"$PY" "$VD_LIB_DIR/vicompare.py" vd.json vi.xml "$@" >cmp.out
	rc=$?
	cat cmp.out
	[ $rc -eq 0 ] || die "vdtool and virt-inspector differ: $(grep -v '^agree: \|^known difference' cmp.out | head -n 6 | tr '\n' ';')"
}

t_usage() {
	local rc
	T "$VDTOOL" inspect --help >help.txt 2>&1 || die "--help: exit $?"
	grep -q '^usage: vdtool inspect' help.txt || die "--help: $(head -n 1 help.txt)"
	for args in "" "--bogus x.qcow2" "a.qcow2 b.qcow2"; do
		# shellcheck disable=SC2086
		T "$VDTOOL" inspect $args >/dev/null 2>u.err
		rc=$?
		[ $rc = 2 ] || die "vdtool inspect $args: exit $rc, expected 2"
	done
	return 0
}

vd_test inspect-usage t_usage
vd_test inspect-debian t_debian
vd_test inspect-luks t_luks
vd_test inspect-alpine t_alpine
vd_test inspect-fedora t_fedora
vd_test inspect-rocky t_rocky
vd_test inspect-centos7 t_centos7
vd_test inspect-windows t_windows
vd_test inspect-windows-hostile t_windows_hostile
vd_test inspect-hostile t_hostile
if [ "${VD_FULL:-0}" = 1 ]; then
	vd_test inspect-huge t_huge
	vd_test inspect-debootstrap t_deboot
	vd_test inspect-vi-debootstrap t_vi deboot deboot.qcow2 "" \
		--differs "product_name=libguestfs takes Debian's from debian_version when os-release's VERSION_ID has no minor; vdtool keeps PRETTY_NAME"
	# libguestfs lists rpm packages with librpm run inside the guest (its
	# rpm configuration, the guest's database opened on the read-only
	# mount): with Debian's librpm in the appliance that fails on this
	# SQLite database ("sqlite failure: ... unable to open database
	# file"), so its package list is left out here; rpm -qa is the oracle
	# of t_rocky's.
	vd_test inspect-vi-rocky t_vi rocky rocky.qcow2 --no-applications
	vd_test inspect-vi-alpine t_vi alpine alpine.qcow2 "" \
		--differs "mountpoints=libguestfs 1.48 does not resolve fstab's PARTUUID= (later releases do)" \
		--differs "packages=libguestfs splits apk's version at -r (1.36.1 release 15); vdtool keeps apk's own (1.36.1-r15)"
	vd_test inspect-vi-windows t_vi windows windows.qcow2 ""
fi
vd_finish
