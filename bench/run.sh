#!/bin/bash
# bench/run.sh — vdmount beside its peers, measured in one run on one
# machine so the figures can be compared (what `make bench` runs).
#
#   BUILD=build bash bench/run.sh
#   VDBENCH_QUICK=1 bash bench/run.sh             a ~3-minute smoke run
#   VDBENCH_CASES="seq start" bash bench/run.sh   some cases only
#
# Cases (bench/case-*.sh; bench/README.md says exactly what each measures):
#   seq    whole-disk sequential read: qcow2, VMDK, VHD
#   comp   whole-disk read of zlib and zstd compressed qcow2, vdmount's CPU use
#   rand   random 4 KiB reads (fio, 1 and 4 jobs)
#   files  the guest's 1 GiB file, cp -a, find and rsync -a of its 20,000-file
#          tree, ls -l of a folder of 100,000 entries
#   start  exec to first stat: 1 TiB image, 20-deep chain, GPT+ext4 disk
#   lvm    a linear LV against the partition with the same bytes (VG-LV.raw,
#          VG-LV/big.bin), mount of a VG of 200 LVs to first stat
#   luks   encrypted qcow2 read whole (--key-file), a LUKS2 partition against
#          its plaintext, opening against cryptsetup open --test-passphrase
#   btrfs  the 1 GiB file, a 1 GiB zstd-compressed file and find over the
#          tree in btrfs, against the kernel's btrfs
#   write  sequential 1 MiB and random 4 KiB writes through an overlay, and
#          creating + mounting it, against qemu-storage-daemon's writable export;
#          cp -a of the tree into p1/ against fuse2fs -o rw, and vdtool copy-in
#   inspect  vdtool inspect of a debootstrapped Debian guest against virt-inspector,
#          and vdtool's peak RSS
#   convert  vdtool convert of the 4 GiB qcow2 to qcow2 (plain, zlib, zstd) and
#          streamOptimized VMDK against qemu-img convert; vdtool check of a
#          1 TiB qcow2 against qemu-img check
# and, from every mount of every case, each daemon's peak RSS.
#
# Tools take turns (round-robin, VDBENCH_RUNS rounds) so drift on the
# machine hits them all alike; each FUSE tool gets a fresh mount for every
# timed run; rounds run with the host's page cache warm and, where
# /proc/sys/vm/drop_caches can be written, cold. Every tool's bytes are
# checked against an oracle before it is timed. Medians, ratios, the
# issue's targets met or not, and every run go to stdout and to
# bench/results/<date>.md.
#
# Environment:
#   BUILD           where vdmount was built (default: build)
#   VDBENCH_DIR     where the images are made and kept (default: /var/tmp/vdbench)
#   VDBENCH_CASES   cases to run (default: "seq comp rand files xfs start ntfs lvm luks btrfs write inspect convert fsmeta")
#   VDBENCH_RUNS    rounds per case and cache state (default: 3; quick: 1)
#   VDBENCH_STARTS  mounts per tool and image in *start* (default: 7; quick: 3)
#   VDBENCH_FIO_SECS  seconds per fio run (default: 5; quick: 2)
#   VDBENCH_CACHE   cache states (default: "warm cold"; quick: "warm")
#   VDBENCH_SEQ_IMAGES  the images of *seq* (default: "qcow2 vmdk vhd vdi vhdx";
#                   quick: "qcow2")
#   VDBENCH_QUICK=1 quick defaults for the above, only the qcow2 image in
#                   *seq*, and the checks of each tool's output on a sample
#   VDBENCH_CP_DEST where cp -a copies to: tmpfs (default, a private one) or disk
#   VDBENCH_FILE_TOOLS  the tools of *files* (default: all six)
#   VDBENCH_WRITE_OPS   the parts of *write*: disk (wseq, wrand, wstart), wcp
#                   (default: both)
#   VDBENCH_FILE_OPS    the operations of *files* (default: "big cp find ls
#                   findp rsync probe"); VDBENCH_PROBES: probes per run (20000)
#   VDBENCH_INSTALL=0  do not apt-get install missing peers
#   VDBENCH_TIMEOUT seconds allowed to one command (default: 600)
# shellcheck disable=SC2317 # cleanup is called by the trap
set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in printf's numbers

HERE=$(cd "$(dirname "$0")" && pwd)
ROOTDIR=$(dirname "$HERE")
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOTDIR/$BUILD ;; esac
VDMOUNT=$BUILD/vdmount
WORK=${VDBENCH_DIR:-/var/tmp/vdbench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd) # absolute: daemons are found by their argv
QUICK=${VDBENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${VDBENCH_RUNS:-1} STARTS=${VDBENCH_STARTS:-3}
	FIO_SECS=${VDBENCH_FIO_SECS:-2} CACHES=${VDBENCH_CACHE:-warm}
	SEQ_IMAGES="qcow2"
	VERIFY_BYTES=$((1024 * 1024 * 1024)) # the first GiB of each disk, the tree but not big.bin
else
	RUNS=${VDBENCH_RUNS:-3} STARTS=${VDBENCH_STARTS:-7}
	FIO_SECS=${VDBENCH_FIO_SECS:-5} CACHES=${VDBENCH_CACHE:-warm cold}
	SEQ_IMAGES="qcow2 vmdk vhd vdi vhdx"
	VERIFY_BYTES=
fi
SEQ_IMAGES=${VDBENCH_SEQ_IMAGES:-$SEQ_IMAGES}
CASES=${VDBENCH_CASES:-seq comp rand files xfs start ntfs lvm luks btrfs write inspect convert fsmeta}
VDBENCH_TIMEOUT=${VDBENCH_TIMEOUT:-600}
RESULTS=$HERE/results

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
# shellcheck source=bench/images.sh
. "$HERE/images.sh"
# shellcheck source=bench/case-disk.sh
. "$HERE/case-disk.sh"
# shellcheck source=bench/case-files.sh
. "$HERE/case-files.sh"
# shellcheck source=bench/case-xfs.sh
. "$HERE/case-xfs.sh"
# shellcheck source=bench/case-start.sh
. "$HERE/case-start.sh"
# shellcheck source=bench/case-ntfs.sh
. "$HERE/case-ntfs.sh"
# shellcheck source=bench/case-lvm.sh
. "$HERE/case-lvm.sh"
# shellcheck source=bench/case-luks.sh
. "$HERE/case-luks.sh"
# shellcheck source=bench/case-btrfs.sh
. "$HERE/case-btrfs.sh"
# shellcheck source=bench/case-write.sh
. "$HERE/case-write.sh"
# shellcheck source=bench/case-inspect.sh
. "$HERE/case-inspect.sh"
# shellcheck source=bench/case-convert.sh
. "$HERE/case-convert.sh"
# shellcheck source=bench/case-fsmeta.sh
. "$HERE/case-fsmeta.sh"
# shellcheck source=bench/report.sh
. "$HERE/report.sh"

for c in $CASES; do
	case $c in seq | comp | rand | files | xfs | start | ntfs | lvm | luks | btrfs | write | inspect | convert | fsmeta) ;; *) die "unknown case '$c' (seq comp rand files xfs start ntfs lvm luks btrfs write inspect convert fsmeta)" ;; esac
done

# --- one run at a time per image folder; a private scratch folder -----------

exec 9>"$WORK/.lock"
if ! flock -n 9; then
	say "another bench run is using $WORK: waiting for it to end"
	flock 9
fi
SCR=$(mktemp -d "$WORK/run.XXXXXX")
RESULT_TMP=
cleanup() {
	bench_cleanup
	# our own scratch folder only: mountpoints (empty once unmounted)
	# and the cp -a destination
	rm -rf "$SCR/cp" 2>/dev/null || true
	find "$SCR" -mindepth 1 -maxdepth 1 -type d -empty -delete 2>/dev/null || true
	rm -f "$SCR"/qsd.log "$SCR"/m-qsd 2>/dev/null || true
	rm -f "$SCR"/conv-out "$SCR"/conv-err "$SCR"/conv-time 2>/dev/null || true
	rmdir "$SCR" 2>/dev/null || say "left $SCR behind (something is still mounted there?)"
	[ -z "$RESULT_TMP" ] || rm -f "$RESULT_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the tools ---------------------------------------------------------------------

command -v qemu-img >/dev/null || die "qemu-img not found (apt-get install qemu-utils)"
command -v fusermount3 >/dev/null || die "fusermount3 not found (apt-get install fuse3)"
command -v python3 >/dev/null || die "python3 not found (the image builders use it)"
[ -x "$VDMOUNT" ] || die "$VDMOUNT not found: build it first (make BUILD=${BUILD#"$ROOTDIR"/} all)"

# peers installed when missing: command -> Debian package
declare -A PKG=([qcowmount]=libqcow-utils [vmdkmount]=libvmdk-utils
	[vhdimount]=libvhdi-utils [fio]=fio [fuse2fs]=fuse2fs [rsync]=rsync
	[debootstrap]=debootstrap [qemu-storage-daemon]=qemu-system-common)
want=()
for cmd in "${!PKG[@]}"; do command -v "$cmd" >/dev/null || want+=("${PKG[$cmd]}"); done
if [ ${#want[@]} -gt 0 ] && [ "${VDBENCH_INSTALL:-1}" != 0 ] &&
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	say "installing the missing peers: apt-get install ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${want[@]}" >/dev/null 2>&1 || say "apt-get install failed; going on without"
fi

declare -A MISSING # tool -> why it cannot run here
need_cmd() { # need_cmd TOOL CMD PKG
	command -v "$2" >/dev/null || MISSING[$1]="$2 is not installed (Debian package $3)"
}
need_cmd qsd qemu-storage-daemon qemu-system-common
need_cmd qcowmount qcowmount libqcow-utils
need_cmd vmdkmount vmdkmount libvmdk-utils
need_cmd vhdimount vhdimount libvhdi-utils
need_cmd fuse2fs fuse2fs fuse2fs
need_cmd debugfs debugfs e2fsprogs
command -v fio >/dev/null || MISSING[fio]="fio is not installed"
if [ "$(id -u)" != 0 ]; then
	for t in ext4-vd ext4-qcow ext4-qsd ext4-raw; do MISSING[$t]="losetup and mount need root"; done
elif ! grep -qw ext4 /proc/filesystems && ! modprobe ext4 2>/dev/null; then
	for t in ext4-vd ext4-qcow ext4-qsd ext4-raw; do MISSING[$t]="this kernel has no ext4"; done
fi
[ -z "${MISSING[qcowmount]:-}" ] || MISSING[ext4-qcow]=${MISSING[qcowmount]}
[ -z "${MISSING[qcowmount]:-}" ] || MISSING[xfs-qcow]=${MISSING[qcowmount]}
[ "$(id -u)" = 0 ] || for t in xfs-qcow xfs-raw; do MISSING[$t]="losetup and mount need root"; done
grep -qw xfs /proc/filesystems || for t in xfs-qcow xfs-raw; do MISSING[$t]="this kernel has no XFS"; done
[ -z "${MISSING[qsd]:-}" ] || MISSING[ext4-qsd]=${MISSING[qsd]}
[ -z "${MISSING[qcowmount]:-}" ] || MISSING[btrfs-qcow]=${MISSING[qcowmount]}
[ "$(id -u)" = 0 ] || for t in btrfs-qcow btrfs-raw; do MISSING[$t]="losetup and mount need root"; done
grep -qw btrfs /proc/filesystems || for t in btrfs-qcow btrfs-raw; do MISSING[$t]="this kernel has no btrfs"; done
have_tool() { [ -z "${MISSING[$1]:-}" ]; }

case " $CACHES " in *" cold "*)
	if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
		:
	else
		note "cannot write /proc/sys/vm/drop_caches (not root, or in a container): cold-cache runs skipped."
		CACHES=${CACHES//cold/}
	fi
esac
read -ra words <<<"$CACHES"
CACHES=${words[*]:-}
[ -n "$CACHES" ] || die "no cache states left to run"

# --- images, then the cases ---------------------------------------------------------

groups=()
for c in $CASES; do
	case $c in
	seq) groups+=(rand vdi vhdx) ;;
	rand) groups+=(rand) ;;
	comp) groups+=(text) ;;
	files) groups+=(gpt)
		case " $FILE_OPS " in *" ls "*) groups+=(meta) ;; esac ;;
	xfs) groups+=(xgpt) ;;
	start) groups+=(tb1 chain gpt vx64) ;;
	ntfs) groups+=(ntfs) ;;
	lvm) groups+=(gpt lvm) ;;
	luks) groups+=(luks) ;;
	btrfs) groups+=(btrfs) ;;
	write) groups+=(write gpt wtree) ;;
	inspect) groups+=(insp) ;;
	convert) groups+=(rand text conv1t) ;;
	fsmeta) for g in $FSMETA_FS; do groups+=("$(fm_img "$g")"); done ;;
	esac
done
read -ra groups <<<"$(printf '%s\n' "${groups[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
need_images "${groups[@]}"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$EPOCHREALTIME
FAILED=0
for c in $CASES; do
	if [ "$c" = ntfs ] && { [ "$(id -u)" != 0 ] || ! command -v ntfs-3g >/dev/null; }; then
		note "case ntfs skipped: needs root and ntfs-3g (losetup, the FUSE mounts)"
		continue
	fi
	if [ "$c" = rand ] && ! have_tool fio; then
		note "case rand skipped: ${MISSING[fio]}"
		continue
	fi
	say "=== case $c"
	"case_$c"
done
ELAPSED_ALL=$(awk -v a="$STARTED" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$RESULTS"
OUT=$RESULTS/$(date +%Y-%m-%d_%H%M%S)$([ "$QUICK" != 1 ] || echo -quick).md
RESULT_TMP=$OUT.tmp
report >"$RESULT_TMP"
mv "$RESULT_TMP" "$OUT"
RESULT_TMP=
echo
cat "$OUT"
echo
say "written to ${OUT#"$ROOTDIR"/}"
[ "$FAILED" = 0 ] || say "vdmount failed or returned wrong data somewhere: see the report"
exit "$FAILED"
