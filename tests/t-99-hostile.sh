#!/bin/bash
# The hostile-image corpus (tests/hostile/): every case in
# tests/hostile/*.cases is a valid tool-made image (tests/hostile/build.sh)
# with one field poked or the file cut, and a written expectation: the
# mount refused with an exact one-line message, or the mount succeeds, the
# named ranges or guest files read as EIO and the rest reads as the oracle
# of the unpoked image says (tests/hostile/hostile.py).
#
# Each case runs twice through the daemon:
#  - the ASan build ($VDMOUNT), with ASAN_OPTIONS max_allocation_size_mb=
#    $HB_ALLOC_MB and allocator_may_return_null=0: one allocation larger
#    than that is a sanitizer report, so a failure (ASan reserves terabytes
#    of address space, so an address-space limit cannot apply to it);
#  - the release build ($BUILD/vdmount) under prlimit --as=$HB_AS_MB MiB:
#    all the address space the daemon may map, its threads' stacks
#    included, with MALLOC_ARENA_MAX=2 (glibc reserves 64 MiB of address
#    space per arena, one per thread otherwise: the bound is meant for
#    what the code allocates). A valid image of any size needs far less
#    (measured: a 1 TiB qcow2 read through the mount peaks at 225 MiB of
#    address space, most of it thread stacks and arenas); an allocation
#    sized from a hostile field fails there and must fail cleanly.
# Cases that name a host file (backing file, extent, parent, href) also
# run the release build under strace -f: the secret file made beside the
# image folder must never be opened, whatever the message says.
# Every command runs under a timeout; every mount is unmounted.
. "$(dirname "$0")/lib.sh"

HB_DIR=$VD_LIB_DIR/hostile
HB_PY=$HB_DIR/hostile.py
. "$HB_DIR/build.sh"

HB_ALLOC_MB=64
HB_AS_MB=512
RELEASE=${VDMOUNT_RELEASE:-$BUILD/vdmount}
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=$HB_ALLOC_MB:allocator_may_return_null=0"

# The cases run in HB_LANES lanes (child runs of this script, HB_LANE set),
# each with its own scratch folder and list of mounts; the parent builds
# the bases and prepares the cases first.
HB_LANES=2
if [ -z "${HB_LANE:-}" ]; then
	HB_CASES=$VD_T/cases
	rm -rf --one-file-system "$HB_CASES"
	mkdir -p "$HB_CASES"
else
	VD_T=$VD_T/lane$HB_LANE
	mkdir -p "$VD_T"
	VD_MOUNTS=$VD_T/.mounts
	VD_LOOPS=$VD_T/.loops
	: >"$VD_MOUNTS"
	: >"$VD_LOOPS"
fi
export HB_CASES

# The release daemon under the address-space limit, as a program lib.sh's
# mount helpers can run (vd_daemon_pids finds it: prlimit execs vdmount).
HB_LIMITED=$VD_T/vdmount-limited
cat >"$HB_LIMITED" <<EOF
#!/bin/sh
MALLOC_ARENA_MAX=2 exec prlimit --as=$((HB_AS_MB * 1024 * 1024)) "$RELEASE" "\$@"
EOF
chmod +x "$HB_LIMITED"

# ------------------------------------------------------------ one case

# refused NAME WANT — inside a test, after a vdmount run: it failed with
# exactly the line WANT and left nothing behind.
refused() {
	local rc=$1 want=$2 m=$3 got
	[ "$rc" = 124 ] || [ "$rc" = 137 ] && die "$4: vdmount timed out"
	[ "$rc" != 0 ] || die "$4: vdmount succeeded; expected: $want"
	got=$(cat "$TD/mount.err")
	[ "$got" = "$want" ] || die "$4: stderr is '$(head -c 600 "$TD/mount.err" | tr '\n' '|')'; expected '$want'"
	vd_is_mounted "$m" && die "$4: $m is mounted after a failed vdmount"
	return 0
}

# checked MNT — the read expectations, and the daemon still answers.
checked() {
	local m=$1 c=$2 who=$3
	T python3 "$HB_PY" check "$c" "$m" >"$TD/check.out" 2>&1 ||
		die "$who: $(head -n 8 "$TD/check.out" | tr '\n' '|')"
	[ -n "$(vd_daemon_pids "$m")" ] || die "$who: the daemon is gone after the reads"
	T stat "$m" >/dev/null || die "$who: the mount no longer answers"
}

# checkrun IMG WANT — vdtool check of a case's image ends, with exit
# WANT ("qemu": the exit code qemu-img check gives the same image).
checkrun() {
	local img=$1 want=$2 rc
	if [ "$want" = qemu ]; then
		T qemu-img check "$img" >/dev/null 2>&1
		want=$?
	fi
	T "$VDTOOL" check "$img" >"$TD/vcheck.out" 2>&1
	rc=$?
	[ "$rc" = 124 ] || [ "$rc" = 137 ] && die "vdtool check timed out"
	[ "$rc" = "$want" ] || die "vdtool check: exit $rc, expected $want: $(tail -n 3 "$TD/vcheck.out" | tr '\n' '|')"
}

t_case() {
	local name=$1 c=$HB_CASES/$1 m img rc w
	[ -f "$c/case.json" ] || die "not prepared: its base image failed to build (see above)"
	img=$(cat "$c/image")
	[ -s "$c/check" ] && checkrun "$img" "$(cat "$c/check")"
	[ -s "$c/checkonly" ] && return 0
	local opts=()
	[ -s "$c/opts" ] && mapfile -t opts <"$c/opts"
	m=$(vd_mnt m)
	if [ -e "$c/refuse" ]; then
		local want
		want="vdmount: $(cat "$c/refuse")"
		vd_run_mount "$m" "${opts[@]}" "$img" "$m"
		refused $? "$want" "$m" asan
		VDMOUNT=$HB_LIMITED vd_run_mount "$m" "${opts[@]}" "$img" "$m"
		refused $? "$want" "$m" "release under prlimit"
		if [ -s "$c/secret" ]; then
			echo "$m" >>"$VD_MOUNTS"
			timeout -k 5 120 strace -f -y -qq -e trace=open,openat,openat2,creat \
				-o "$TD/strace.log" "$HB_LIMITED" "${opts[@]}" "$img" "$m" \
				>/dev/null 2>"$TD/mount.err" </dev/null
			refused $? "$want" "$m" "release under strace"
			[ -s "$TD/strace.log" ] || die "strace wrote nothing"
			# -y shows the file behind each descriptor an open
			# returned, however it was named (a symlink, ../).
			local sec
			sec=$(realpath -- "$(cat "$c/secret")")
			if grep -F -- "<$sec>" "$TD/strace.log" >"$TD/opened"; then
				die "the secret file was opened: $(head -n 3 "$TD/opened" | tr '\n' '|')"
			fi
		fi
		[ -z "$(vd_daemon_pids "$m")" ] || die "a vdmount process is still running after the error"
		return 0
	fi
	mount_ok "$m" "${opts[@]}" "$img" "$m"
	while IFS= read -r w; do
		[ -n "$w" ] || continue
		grep -qF -- "$w" "$TD/mount.err" ||
			die "asan: mount stderr lacks '$w': $(head -c 400 "$TD/mount.err" | tr '\n' '|')"
	done <"$c/warn"
	checked "$m" "$c" asan
	umount_ok "$m"
	VDMOUNT=$HB_LIMITED mount_ok "$m" "${opts[@]}" "$img" "$m"
	checked "$m" "$c" "release under prlimit"
	umount_ok "$m"
}

# ------------------------------------------------------------ the corpus

t_manifest() {
	[ -s "$VD_T/cases.list" ] || die "$(cat "$VD_T/list.err")"
}

t_prepare() {
	[ -s "$VD_T/prepare.err" ] && die "$(head -n 5 "$VD_T/prepare.err" | tr '\n' '|')"
	return 0
}

if [ -n "${HB_LANE:-}" ]; then
	i=0
	while read -r name base; do
		[ $((i++ % HB_LANES)) = "$HB_LANE" ] && vd_test "hostile-$name" t_case "$name"
	done <"$HB_CASES/../cases.list"
	vd_finish
fi

python3 "$HB_PY" list "$HB_DIR"/*.cases >"$VD_T/cases.list" 2>"$VD_T/list.err"
vd_test hostile-manifest t_manifest

# The bases the selected cases need, each built once.
declare -A HB_BUILT=()
while read -r name base; do
	if [ -n "${VD_ONLY:-}" ] && [[ hostile-$name != *$VD_ONLY* ]]; then
		continue
	fi
	[ -n "${HB_BUILT[$base]:-}" ] && continue
	HB_BUILT[$base]=1
	vd_img "hb_$base" >/dev/null 2>>"$VD_T/build.err"
done <"$VD_T/cases.list"
[ -s "$VD_T/build.err" ] && sed 's/^/# /' "$VD_T/build.err"

python3 "$HB_PY" prepare "$HB_CASES" "$VD_WORK/img/$VD_SCRIPT.hb_" "$HB_DIR"/*.cases \
	>/dev/null 2>"$VD_T/prepare.err"
vd_test hostile-prepare t_prepare

pids=()
for ((lane = 0; lane < HB_LANES; lane++)); do
	HB_LANE=$lane bash "$0" </dev/null >"$VD_T/lane$lane.out" 2>&1 &
	pids+=($!)
done
for lane in "${!pids[@]}"; do
	wait "${pids[$lane]}" || echo "FAIL hostile-lane-$lane: exited with status $?"
	cat "$VD_T/lane$lane.out"
done
vd_finish
