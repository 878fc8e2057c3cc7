#!/bin/bash
# Who may read what through a mount (issue 27): the raw files (disk.raw,
# pN.raw) take the owner, group and read bits of the image file, so that
# with -o allow_other nobody reads through the mount what the image file
# itself denies them; guest files keep the guest's modes
# (default_permissions). And directory entries named "." or ".." that a
# crafted filesystem lists beside a directory's own are not shown.
#
# Oracles: the kernel's permission check (default_permissions) as an
# ordinary user made here; for the crafted directory, debugfs's own
# listing of what the image holds.
. "$(dirname "$0")/lib.sh"

VD_USER=vdtest
MIB=1048576

as_user() {
	timeout -k 5 "$VD_TIMEOUT" setpriv --reuid="$VD_USER" --regid="$VD_USER" --clear-groups "$@"
}

need_user() {
	[ "$(id -u)" = 0 ] || skip_test "not root: cannot create or switch to user $VD_USER"
	command -v setpriv >/dev/null || skip_test "setpriv missing"
	vd_useradd "$VD_USER" || skip_test "useradd $VD_USER failed"
}

# A GPT disk with one ext4 partition holding /secret (0600, root) and
# /public (0644), and a directory d/ whose block also lists a crafted
# "." (a regular file) and ".." (d itself). No metadata_csum or
# dir_index, so the patched block stays valid for the kernel too.
gen_perms() {
	local b
	mkdir -p tree/d
	printf 'secret\n' >tree/secret
	printf 'public\n' >tree/public
	printf 'in d\n' >tree/d/f
	printf 'x\n' >tree/x
	chmod 600 tree/secret
	chmod 644 tree/public tree/d/f tree/x
	truncate -s $((16 * MIB)) fs.img
	mkfs.ext4 -q -F -b 1024 -O ^metadata_csum,^dir_index -E root_owner=0:0 \
		-d tree fs.img || return 1
	debugfs -w -R "ln /x /d/Q" fs.img >/dev/null 2>&1 || return 1
	debugfs -w -R "ln /d /d/QQ" fs.img >/dev/null 2>&1 || return 1
	b=$(debugfs -R "blocks /d" fs.img 2>/dev/null) || return 1
	python3 - "$b" <<-'EOF' || return 1
		import sys
		b = int(sys.argv[1]); bs = 1024
		with open('fs.img', 'r+b') as f:
		    f.seek(b * bs); d = bytearray(f.read(bs))
		    # ext4 dirent: inode, rec_len, name_len, file_type, name
		    i = d.find(b'\x01\x01Q'); j = d.find(b'\x02\x02QQ')
		    assert i > 0 and j > 0
		    d[i + 2:i + 3] = b'.'; d[j + 2:j + 4] = b'..'
		    f.seek(b * bs); f.write(d)
	EOF
	debugfs -R "ls /d" fs.img >dlist 2>/dev/null || return 1
	truncate -s $((20 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		start=2048, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	EOF
	dd if=fs.img of=disk.raw bs=1M seek=1 conv=notrunc status=none || return 1
	qemu-img convert -O qcow2 disk.raw perms.qcow2 || return 1
	rm -f disk.raw fs.img
}

# user_reads FILE — the user can read FILE (0) or is refused (1).
user_reads() {
	as_user cat "$1" >/dev/null 2>"$TD/err"
}

t_raw_perms_0600() {
	local d m
	need_user
	d=$(img_or_die perms)
	cp "$d/perms.qcow2" "$TD/img.qcow2"
	chmod 600 "$TD/img.qcow2"
	m=$(vd_mnt m)
	mount_ok "$m" -o allow_other "$TD/img.qcow2" "$m"
	[ "$(stat -c '%a %u %g' "$m/disk.raw")" = "400 0 0" ] ||
		die "disk.raw: $(stat -c '%a %u %g' "$m/disk.raw"), want 400 0 0 (the image's)"
	user_reads "$m/disk.raw" && die "$VD_USER read disk.raw of a 0600 image"
	grep -q "Permission denied" "$TD/err" || die "disk.raw: $(cat "$TD/err")"
	user_reads "$m/p1.raw" && die "$VD_USER read p1.raw of a 0600 image"
	grep -q "Permission denied" "$TD/err" || die "p1.raw: $(cat "$TD/err")"
	user_reads "$m/p1/secret" && die "$VD_USER read the guest's 0600 file"
	user_reads "$m/p1/public" || die "$VD_USER cannot read the guest's 0644 file: $(cat "$TD/err")"
	# Root, the image's owner, still reads everything.
	cmp -s "$m/p1/secret" <(printf 'secret\n') || die "root cannot read p1/secret"
	umount_ok "$m"
}

t_raw_perms_0644() {
	local d m
	need_user
	d=$(img_or_die perms)
	cp "$d/perms.qcow2" "$TD/img.qcow2"
	chmod 644 "$TD/img.qcow2"
	m=$(vd_mnt m)
	mount_ok "$m" -o allow_other "$TD/img.qcow2" "$m"
	[ "$(stat -c %a "$m/disk.raw")" = 444 ] || die "disk.raw: $(stat -c %a "$m/disk.raw")"
	user_reads "$m/disk.raw" || die "$VD_USER cannot read disk.raw of a 0644 image: $(cat "$TD/err")"
	user_reads "$m/p1.raw" || die "$VD_USER cannot read p1.raw of a 0644 image: $(cat "$TD/err")"
	user_reads "$m/p1/secret" && die "$VD_USER read the guest's 0600 file"
	umount_ok "$m"
}

# vdtool reads only what its user can open: the image file itself.
t_vdtool_perms() {
	local d
	need_user
	d=$(img_or_die perms)
	mkdir -p "$TD/u"
	chmod 755 "$TD" "$TD/u"
	cp "$d/perms.qcow2" "$TD/u/img.qcow2"
	chmod 600 "$TD/u/img.qcow2"
	as_user "$VDTOOL" cat "$TD/u/img.qcow2" /p1/public >/dev/null 2>"$TD/err" &&
		die "$VDTOOL read a 0600 image as $VD_USER"
	grep -q "Permission denied" "$TD/err" || die "vdtool said: $(cat "$TD/err")"
}

t_dot_entries() {
	local d m got want
	d=$(img_or_die perms)
	# The image really lists the crafted entries (else this tests nothing).
	[ "$(grep -o '\.\.\? ' "$d/dlist" | wc -l)" -ge 4 ] ||
		die "debugfs does not list the crafted entries: $(cat "$d/dlist")"
	m=$(vd_mnt m)
	mount_ok "$m" "$d/perms.qcow2" "$m"
	got=$(ls -a "$m/p1/d" | tr '\n' ' ')
	want=". .. f "
	[ "$got" = "$want" ] || die "ls -a p1/d: '$got', want '$want'"
	[ "$(stat -c %i "$m/p1/d/.")" = "$(stat -c %i "$m/p1/d")" ] || die "p1/d/. is not p1/d"
	[ -d "$m/p1/d/.." ] || die "p1/d/.. is not a directory"
	umount_ok "$m"
	got=$(timeout -k 5 "$VD_TIMEOUT" "$VDTOOL" ls -a "$d/perms.qcow2" /p1/d 2>"$TD/ls.err" | tr '\n' ' ')
	[ "$got" = "$want" ] || die "vdtool ls -a /p1/d: '$got', want '$want'"
	grep -q 'lists a second entry named "\."' "$TD/ls.err" &&
		grep -q 'lists a second entry named "\.\."' "$TD/ls.err" ||
		die "no log line for each crafted entry: $(cat "$TD/ls.err")"
}

vd_test raw-files-of-0600-image t_raw_perms_0600
vd_test raw-files-of-0644-image t_raw_perms_0644
vd_test vdtool-needs-the-image-file t_vdtool_perms
vd_test crafted-dot-entries-dropped t_dot_entries
vd_finish
