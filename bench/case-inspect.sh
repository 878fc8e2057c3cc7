# bench/case-inspect.sh — `vdtool inspect` (issue 25) of a debootstrapped
# Debian guest against virt-inspector on the same image, and vdtool's
# peak RSS.
#
# The guest (insp.qcow2, made once and kept, as every bench image): GPT,
# p1 an ESP (mkfs.vfat), p2 an ext4 made by mkfs.ext4 -d from a Debian
# tree made by `debootstrap --variant=minbase` of the host's release
# (from debootstrap's default mirror: the first run needs the network and
# about 5 minutes), with its hostname and an fstab by LABEL=. Before
# timing, vdtool's report is checked against the facts the tree holds
# (debian_version, hostname, dpkg-query's count of installed packages).
#
# virt-inspector (libguestfs-tools) boots an appliance made by supermin
# from the host's kernel (in /boot: linux-image-amd64 where there is none)
# and runs it under TCG without /dev/kvm. It is not installed by the
# bench (hundreds of MB and a kernel): install it to fill its column.
# shellcheck shell=bash

SPEC[insp]="v2 debootstrap minbase $(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
FILES_OF[insp]="insp.qcow2 insp.packages insp.version"

img_insp() {
	local t=$WORK/insp-tree i=$WORK/insp suite
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$suite" ] || die "the host's os-release names no codename for debootstrap"
	command -v debootstrap >/dev/null || die "debootstrap is not installed (the inspect case's guest needs it)"
	say "  insp.qcow2: GPT, p1 ESP, p2 ext4 (mkfs.ext4 -d) of debootstrap --variant=minbase $suite"
	rm -rf "$t"
	timeout -k 10 1800 debootstrap --variant=minbase "$suite" "$t" >"$WORK/insp-debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -n 3 "$WORK/insp-debootstrap.log" | tr '\n' ' ')"
	echo bench01 >"$t/etc/hostname"
	printf 'LABEL=root / ext4 errors=remount-ro 0 1\nLABEL=ESP /boot/efi vfat umask=0077 0 1\n' >"$t/etc/fstab"
	mkdir -p "$t/boot/efi"
	dpkg-query --admindir="$t/var/lib/dpkg" -W -f='${db:Status-Status}\n' |
		grep -cx installed >"$WORK/insp.packages" || die "dpkg-query on the bench guest failed"
	cat "$t/etc/debian_version" >"$WORK/insp.version"
	rm -f "$i-esp.img" "$i-root.img" "$i.raw"
	truncate -s $((8 * MIB)) "$i-esp.img"
	mkfs.vfat -n ESP "$i-esp.img" >/dev/null || die "mkfs.vfat failed"
	truncate -s $((600 * MIB)) "$i-root.img"
	mkfs.ext4 -q -F -L root -d "$t" "$i-root.img" || die "mkfs.ext4 -d failed"
	truncate -s $((610 * MIB)) "$i.raw"
	printf 'label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=18432, size=1228800, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
		sfdisk -q "$i.raw" >/dev/null || die "sfdisk failed"
	dd if="$i-esp.img" of="$i.raw" bs=1M seek=1 conv=sparse,notrunc status=none
	dd if="$i-root.img" of="$i.raw" bs=1M seek=9 conv=sparse,notrunc status=none
	qemu-img convert -f raw -O qcow2 "$i.raw" "$WORK/insp.qcow2" || die "qemu-img convert failed"
	rm -rf "$t" "$i-esp.img" "$i-root.img" "$i.raw"
}

INSP_TOOLS="vdmount virt-inspector"

# verify_insp: vdtool's report of the guest says what the tree holds;
# virt-inspector's names the same distribution and hostname.
verify_insp() {
	local out=$SCR/insp.json n
	n=$(cat "$WORK/insp.packages")
	if ! T "$BUILD/vdtool" inspect --json "$WORK/insp.qcow2" >"$out" 2>"$out.err" ||
		! python3 - "$out" "$n" "$(cat "$WORK/insp.version")" <<-'EOF'; then
			import json, sys
			o = json.load(open(sys.argv[1]))["operatingsystems"][0]
			want = {"root": "/p2", "distro": "debian", "version": sys.argv[3],
			        "hostname": "bench01", "packages_count": int(sys.argv[2])}
			sys.exit(any(o.get(k) != v for k, v in want.items()))
		EOF
		BAD["insp|vdmount"]="WRONG: vdtool inspect's report differs from the guest's tree"
	fi
	command -v virt-inspector >/dev/null ||
		MISSING[virt-inspector]="virt-inspector is not installed (Debian package libguestfs-tools; it boots an appliance, under TCG without /dev/kvm)"
	# supermin makes the appliance from the host's own kernel.
	have_tool virt-inspector && ! compgen -G '/boot/vmlinuz-*' >/dev/null &&
		MISSING[virt-inspector]="no kernel in /boot for libguestfs's appliance (Debian package linux-image-$(dpkg --print-architecture))"
	export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
	if ! have_tool virt-inspector; then
		BAD["insp|virt-inspector"]="n/a: ${MISSING[virt-inspector]}"
	else
		if ! T virt-inspector --format=qcow2 -a "$WORK/insp.qcow2" >"$SCR/insp.xml" 2>/dev/null ||
			! grep -q '<distro>debian</distro>' "$SCR/insp.xml" ||
			! grep -q '<hostname>bench01</hostname>' "$SCR/insp.xml"; then
			BAD["insp|virt-inspector"]="WRONG: virt-inspector did not find the Debian guest"
		fi
	fi
}

# insp_run TOOL: one timed inspection (ELAPSED), vdtool's peak RSS in
# RSS_KB; or 1 with REASON
insp_run() {
	local tool=$1 ok=1
	start_clock
	case $tool in
	vdmount)
		[ -x /usr/bin/time ] || { REASON="GNU time (/usr/bin/time) is not installed"; return 1; }
		T /usr/bin/time -f %M -o "$SCR/insp.rss" "$BUILD/vdtool" inspect --json \
			"$WORK/insp.qcow2" >/dev/null 2>&1 || ok=0 ;;
	virt-inspector)
		T virt-inspector --format=qcow2 -a "$WORK/insp.qcow2" >/dev/null 2>&1 || ok=0 ;;
	esac
	stop_clock
	[ "$ok" = 1 ] || { REASON="$tool failed"; return 1; }
	[ "$tool" != vdmount ] || RSS_KB=$(tail -n 1 "$SCR/insp.rss")
}

case_inspect() {
	local cache cold run tool r line v
	case_begin inspect ms low "Inspecting a debootstrapped Debian guest (vdtool inspect)" \
"The vdmount row is \`vdtool inspect --json\` (no FUSE: it reads the
image directly), against \`virt-inspector --format=qcow2 -a\` on the same qcow2 (GPT, ESP
+ ext4 holding a Debian $(cat "$WORK/insp.version") made by debootstrap
--variant=minbase, $(cat "$WORK/insp.packages") installed packages): from
exec to the report. Cold runs drop the page cache first."
	case_begin imem MiB low "vdtool inspect's peak RSS" \
"Maximum resident set size of \`vdtool inspect --json\` of the same guest
(GNU time's %M), median of the runs."
	say "inspect: checking vdtool's report against the guest's tree"
	verify_insp
	for cache in $CACHES; do
		cold=0
		[ "$cache" = warm ] || cold=1
		r="$cache"
		row inspect "$r" $INSP_TOOLS
		row imem "$r" vdmount
		for ((run = 1; run <= RUNS; run++)); do
			line="inspect $r, run $run/$RUNS:"
			for tool in $INSP_TOOLS; do
				! skip_bad inspect "$r" "$tool" insp || continue
				[ -z "${WHY["inspect|$r|$tool"]:-}" ] || continue
				[ "$cold" = 0 ] || drop_caches
				if insp_run "$tool"; then
					v=$(ms_of "$ELAPSED")
					rec inspect "$r" "$tool" "$v"
					line="$line $tool $v"
					[ "$tool" != vdmount ] || [ -z "${RSS_KB:-}" ] ||
						rec imem "$r" vdmount "$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')"
				else
					na inspect "$r" "$tool" "n/a: $REASON"
					[ "$tool" != vdmount ] || FAILED=1
					say "  $tool: $REASON"
				fi
			done
			say "$line"
		done
	done
	rm -f "$SCR"/insp.json "$SCR"/insp.json.err "$SCR"/insp.xml "$SCR"/insp.rss
}
