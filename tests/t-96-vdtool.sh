#!/bin/bash
# vdtool ls, cat, cp and convert: the tree without FUSE must equal the
# tree the mount shows (itself checked against the kernel by t-91), and
# convert must equal `qemu-img convert -O raw`.
#
# Images are made here by real tools: mkfs.ext4 -d from tests/mktree.py
# trees (times set by the kernel's read-write mount, as t-91 does),
# mkfs.vfat + mcopy, sfdisk, qemu-img. Oracles: the FUSE mount of the
# same image (tests/treecmp.py, and a python walk printing ls -l's
# fields), qemu-img convert, mtools. The hostile image is a tool-made
# ext4 whose directory entry is poked to duplicate a name, plus a
# directory linked into itself by debugfs.
. "$(dirname "$0")/lib.sh"

MKTREE=$VD_LIB_DIR/mktree.py
TREECMP=$VD_LIB_DIR/treecmp.py
MIB=1048576

# vdt ARGS... — vdtool under timeout.
vdt() { T "$VDTOOL" "$@"; }

# ------------------------------------------------------------ builders

# mkext_tree IMG SIZE SEED MKFS-ARGS... — an ext4 from mktree's small
# tree; the kernel then sets the times mkfs -d cannot (as t-91's mkext).
mkext_tree() {
	local img=$1 size=$2 seed=$3 rc
	shift 3
	rm -rf "$img.tree" "$img.mnt"
	python3 "$MKTREE" --profile small --seed "$seed" "$img.tree" || return 1
	truncate -s "$size" "$img" || return 1
	mkfs.ext4 -q -F -E root_owner=0:0 "$@" -d "$img.tree" "$img" || return 1
	mkdir -p "$img.mnt"
	echo "$PWD/$img.mnt" >>"$VD_MOUNTS"
	timeout -k 5 60 mount -o loop "$img" "$img.mnt" || return 1
	python3 "$MKTREE" --times-only --seed "$seed" "$img.mnt"
	rc=$?
	kumount "$PWD/$img.mnt" || return 1
	rmdir "$img.mnt"
	rm -rf "$img.tree"
	return $rc
}

# GPT: p1 a FAT32 ESP (odd names, a file of 300 kB, an empty file), p2
# ext4 with mktree's small tree; qcow2.
gen_vdt() {
	mkext_tree root.img $((64 * MIB)) 7 -b 4096 -I 256 || return 1
	truncate -s $((40 * MIB)) esp.img
	mkfs.vfat -F 32 -n ESP esp.img || return 1
	mkdir -p esp/EFI/BOOT "esp/deep/er dir"
	printf 'boot\n' >esp/EFI/BOOT/BOOTX64.EFI
	head -c 300000 /dev/urandom >"esp/a long file name.bin"
	printf 'x' >"esp/deep/er dir/tiny.txt"
	: >esp/empty
	TZ=UTC mcopy -s -m -i esp.img esp/* :: || return 1
	truncate -s $((112 * MIB)) disk.raw
	sfdisk -q disk.raw <<-EOF || return 1
		label: gpt
		unit: sectors
		start=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"
		start=83968, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
	EOF
	dd if=esp.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none || return 1
	dd if=root.img of=disk.raw bs=512 seek=83968 conv=notrunc,sparse status=none || return 1
	qemu-img convert -O qcow2 disk.raw vdt.qcow2 || return 1
	rm -rf disk.raw root.img esp
}

# An ext4 (no metadata checksums, so a poked entry still reads) whose
# directory h holds a symlink "evil" to a folder outside and, poked from
# "evim", a directory also named "evil" with a file in it; "one/evil" is
# that symlink again and "two/evil/" a directory (for two copies into
# one DEST); "escape" and "d/x" point outside; "d/loop" is h itself
# (debugfs ln), so the tree holds a cycle. The outside folder's name is
# kept in esc.
gen_hostile() {
	local esc=/tmp/vdt-escape-$$-$RANDOM dots blk bs
	dots=$(printf '../%.0s' $(seq 12))
	echo "$esc" >esc
	rm -rf t
	mkdir -p t/h/evim t/h/d t/h/one t/h/two/evil
	echo payload >t/h/evim/payload
	echo payload >t/h/two/evil/payload
	ln -s "$esc" t/h/evil
	ln -s "$esc" t/h/one/evil
	ln -s "$dots${esc#/}" t/h/escape
	ln -s "$esc/x" t/h/d/x
	truncate -s $((8 * MIB)) h.img
	mkfs.ext4 -q -F -b 1024 -O ^metadata_csum,^dir_index -d t h.img || return 1
	debugfs -w -R "ln h h/d/loop" h.img || return 1
	bs=$(dumpe2fs -h h.img 2>/dev/null | sed -n 's/^Block size: *//p')
	blk=$(debugfs -R "blocks h" h.img 2>/dev/null | awk '{ print $1 }')
	[ -n "$bs" ] && [ -n "$blk" ] || return 1
	python3 - h.img $((bs * blk)) "$bs" <<-'EOF' || return 1
		import sys
		f = open(sys.argv[1], "r+b")
		off, bs = int(sys.argv[2]), int(sys.argv[3])
		f.seek(off)
		b = f.read(bs)
		i = b.find(b"evim")
		assert i > 0 and b.count(b"evim") == 1, "no single evim entry"
		f.seek(off + i)
		f.write(b"evil")
	EOF
	rm -rf t
}

# Formats for convert, all from one seeded raw file.
gen_conv() {
	local size=$((24 * MIB + 1536))
	seed_raw seed.raw "$size"
	qemu-img convert -O qcow2 -c seed.raw zlib.qcow2 || return 1
	qemu-img convert -O vmdk seed.raw sparse.vmdk || return 1
	qemu-img convert -O vmdk -o subformat=streamOptimized seed.raw stream.vmdk || return 1
	qemu-img convert -O vpc seed.raw dyn.vhd || return 1
	# Mostly empty: 1 GiB with three small writes.
	qemu-img create -q -f qcow2 empty.qcow2 1G || return 1
	qio qcow2 empty.qcow2 "write -P 0x5a 0 4096" "write -P 0xa5 500M 65536" \
		"write -P 0x11 1073737728 4096" || return 1
	rm -f seed.raw
}

# ------------------------------------------------------------ oracles

# A python walk of a mounted tree printing what `vdtool ls [-l] [-R]
# [-a]` prints: the same fields, escaping and order, from lstat.
LS_ORACLE='
import os, stat, sys, time
args = sys.argv[1:]
flags = set()
while args and args[0].startswith("-"):
    flags |= set(args.pop(0)[1:])
root, shown = os.fsencode(args[0]), args[1]
C = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r"}
def esc(b):
    out, i = [], 0
    while i < len(b):
        c = b[i]
        if c == 0x5c:
            out.append("\\\\"); i += 1; continue
        if 0x20 <= c < 0x7f:
            out.append(chr(c)); i += 1; continue
        if c in C:
            out.append("\\" + C[c]); i += 1; continue
        if c >= 0x80:
            for n in (2, 3, 4):
                try:
                    s = b[i:i + n].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if len(s) == 1 and not 0x80 <= ord(s) <= 0x9f:
                    out.append(s); i += n; break
            else:
                out.append("\\%03o" % c); i += 1
            continue
        out.append("\\%03o" % c); i += 1
    return "".join(out)
def line(p, name):
    st = os.lstat(p)
    m = st.st_mode
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        size = "%d, %d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    else:
        size = str(st.st_size)
    t = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(st.st_mtime_ns // 10**9))
    s = "%s %d %d %d %s %s %s" % (stat.filemode(m), st.st_nlink, st.st_uid,
                                  st.st_gid, size, t, esc(name))
    if stat.S_ISLNK(m):
        s += " -> " + esc(os.readlink(p))
    return s
out = []
def listdir(p, shownp, header):
    names = sorted(os.listdir(p))
    if "a" in flags:
        names = sorted(names + [b".", b".."])
    else:
        names = [n for n in names if not n.startswith(b".")]
    if header:
        if out:
            out.append("")
        out.append(esc(shownp) + ":")
    for n in names:
        out.append(line(os.path.join(p, n), n) if "l" in flags else esc(n))
    if "R" in flags:
        for n in names:
            q = os.path.join(p, n)
            if n not in (b".", b"..") and stat.S_ISDIR(os.lstat(q).st_mode):
                listdir(q, shownp + b"/" + n, True)
listdir(root, os.fsencode(shown), "R" in flags)
sys.stdout.write("".join(s + "\n" for s in out))
'

# ls_oracle FLAGS MNTDIR SHOWN — the oracle's listing on stdout.
ls_oracle() {
	T python3 -c "$LS_ORACLE" "$@"
}

# ------------------------------------------------------------ tests

t_ls() {
	local d m f
	d=$(img_or_die vdt)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/vdt.qcow2" "$m"
	# The root, as LC_ALL=C ls of the mount.
	must vdt ls "$d/vdt.qcow2" >root.got
	LC_ALL=C ls "$m" >root.want
	cmp -s root.got root.want || die "ls / differs: $(diff root.got root.want | head -5 | tr '\n' ' ')"
	for f in -lRa -lR -R -l -a ""; do
		must vdt ls ${f:+"$f"} "$d/vdt.qcow2" /p2 >"ls$f.got"
		ls_oracle ${f:+"$f"} "$m/p2" /p2 >"ls$f.want" || die "oracle failed"
		cmp -s "ls$f.got" "ls$f.want" ||
			die "ls $f /p2 differs from the mount: $(diff "ls$f.got" "ls$f.want" | head -6 | tr '\n' ' ')"
	done
	[ "$(wc -l <ls-lRa.got)" -gt 150 ] || die "ls -lRa /p2 has only $(wc -l <ls-lRa.got) lines"
	# The escapes really happen: mktree's names hold a tab, a newline,
	# a backslash and Latin-1 bytes.
	grep -qF 'tab\there' ls-lR.got || die "no escaped tab in ls -lR"
	grep -qF 'new\nline' ls-lR.got || die "no escaped newline"
	grep -qF 'back\\slash' ls-lR.got || die "no escaped backslash"
	grep -qF 'latin1-\351t\351' ls-lR.got || die "no octal escapes for Latin-1"
	# A file PATH lists just it; a symlink is shown as one with -l.
	must vdt ls -l "$d/vdt.qcow2" /p2/files/size_1 >one.got
	[ "$(cut -d' ' -f8- one.got)" = "/p2/files/size_1" ] || die "ls -l of a file: $(cat one.got)"
	must vdt ls -l "$d/vdt.qcow2" /p2.raw >raw.got
	[ "$(cut -d' ' -f5 raw.got)" = "$(stat -c %s "$m/p2.raw")" ] || die "ls -l /p2.raw: $(cat raw.got)"
	umount_ok "$m"
}

t_cat() {
	local d m rel files=() want
	d=$(img_or_die vdt)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/vdt.qcow2" "$m"
	# Every regular file under 2 MiB of three folders, in one command.
	while IFS= read -r -d '' rel; do
		files+=("/p2/${rel#"$m"/p2/}")
	done < <(find "$m/p2/files" "$m/p2/sparse" "$m/p2/hard" "$m/p2/names" -type f -size -2M -print0 2>/dev/null | sort -z)
	[ "${#files[@]}" -gt 20 ] || die "only ${#files[@]} files found"
	must vdt cat "$d/vdt.qcow2" "${files[@]}" >cat.got
	for rel in "${files[@]}"; do cat "$m$rel"; done >cat.want
	cmp cat.got cat.want >/dev/null || die "cat of ${#files[@]} files differs from the mount"
	# Through a symlink (followed inside the volume), the disk, a
	# partition.
	must vdt cat "$d/vdt.qcow2" /p2/links/fast /p2/links/to_dir/size_1 >up.got
	cat "$m/p2/links/target" "$m/p2/files/size_1" >up.want
	cmp -s up.got up.want || die "cat through symlinks differs"
	vdt cat "$d/vdt.qcow2" /p2/links/loop_a >/dev/null 2>loop.err && die "cat of a symlink loop succeeded"
	grep -q "Too many levels of symbolic links" loop.err || die "message: $(cat loop.err)"
	vdt cat "$d/vdt.qcow2" /disk.raw | cmp - "$m/disk.raw" >/dev/null || die "cat /disk.raw differs"
	vdt cat "$d/vdt.qcow2" /p2.raw | cmp - "$m/p2.raw" >/dev/null || die "cat /p2.raw differs"
	want=$(vd_oracle "$d/vdt.qcow2") || die "qemu-img convert failed"
	cmp -s "$m/disk.raw" "$want" || die "the mount's disk.raw is not qemu's"
	# A directory is an error naming it; the other files still come.
	vdt cat "$d/vdt.qcow2" /p2/files /p2/files/size_1 >dir.got 2>dir.err
	[ $? = 1 ] || die "cat of a directory: exit $?, expected 1"
	grep -q '^vdtool cat: /p2/files: Is a directory$' dir.err || die "message: $(cat dir.err)"
	cmp -s dir.got "$m/p2/files/size_1" || die "cat did not go on after the directory"
	vdt cat "$d/vdt.qcow2" /p2/nonexistent >/dev/null 2>nx.err && die "cat of a missing path succeeded"
	grep -q 'No such file' nx.err || die "message: $(cat nx.err)"
	umount_ok "$m"
}

# sparse_like MNTDIR COPY — every regular file the guest keeps sparse
# (allocated < size - 64 KiB) is sparse in the copy too.
sparse_like() {
	T python3 - "$1" "$2" <<-'EOF'
		import os, stat, sys
		a, b = sys.argv[1], sys.argv[2]
		n = 0
		for dp, dns, fns in os.walk(a):
		    for f in fns:
		        p = os.path.join(dp, f)
		        s = os.lstat(p)
		        if not stat.S_ISREG(s.st_mode) or s.st_blocks * 512 >= s.st_size - 65536:
		            continue
		        q = os.path.join(b, os.path.relpath(p, a))
		        t = os.lstat(q)
		        if t.st_blocks * 512 >= t.st_size - 65536:
		            sys.exit("%s: %d bytes allocated of %d (guest: %d)" % (q, t.st_blocks * 512, t.st_size, s.st_blocks * 512))
		        n += 1
		if n < 3:
		    sys.exit("only %d sparse files" % n)
		print("%d sparse files stay sparse" % n)
	EOF
}

t_cp() {
	local d m
	[ "$(id -u)" = 0 ] || skip_test "not root: owners and device nodes"
	d=$(img_or_die vdt)
	m=$(vd_mnt m)
	mount_ok "$m" "$d/vdt.qcow2" "$m"
	mkdir out
	must vdt cp -r -p "$d/vdt.qcow2" /p2 out >/dev/null
	# Everything but what a copy cannot keep: ctime, the blocks the
	# host file system allocates, directory sizes.
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p2" out/p2 >/dev/null
	must sparse_like "$m/p2" out/p2 >/dev/null
	# A second copy into the same place replaces files, merges folders.
	must vdt cp -a "$d/vdt.qcow2" /p2 out >/dev/null
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p2" out/p2 >/dev/null
	# DEST that does not exist becomes the copy; "/p2/." merges into
	# an existing DEST.
	must vdt cp -r -p "$d/vdt.qcow2" /p2/hard new >/dev/null
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p2/hard" new >/dev/null
	mkdir merged
	must vdt cp -r -p "$d/vdt.qcow2" /p2/. merged >/dev/null
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p2/files" merged/files >/dev/null
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p2/hard" merged/hard >/dev/null
	# Files: one to a new name, several into a folder, a partition.
	must vdt cp "$d/vdt.qcow2" /p2/files/size_1 one >/dev/null
	cmp -s one "$m/p2/files/size_1" || die "cp of one file differs"
	mkdir several
	must vdt cp "$d/vdt.qcow2" /p2/files/size_1 /p2/hard/a /p2.raw several >/dev/null
	cmp -s several/a "$m/p2/hard/a" || die "cp of several files differs"
	cmp -s several/p2.raw "$m/p2.raw" || die "cp of /p2.raw differs"
	[ "$(du -k several/p2.raw | cut -f1)" -lt $(($(stat -c %s several/p2.raw) / 1024 / 2)) ] ||
		die "p2.raw is not sparse: $(du -k several/p2.raw)"
	# Refusals as cp words them.
	vdt cp "$d/vdt.qcow2" /p2/files nodir 2>r.err >/dev/null && die "cp of a directory without -r succeeded"
	grep -qF -- "-r not specified; omitting directory '/p2/files'" r.err || die "message: $(cat r.err)"
	[ ! -e nodir ] || die "cp without -r made nodir"
	vdt cp "$d/vdt.qcow2" /p2/files/size_1 /p2/hard/a notthere 2>n.err >/dev/null && die "two files to a new name succeeded"
	grep -q "not a directory" n.err || die "message: $(cat n.err)"
	umount_ok "$m"
}

t_cp_vfat() {
	local d m
	d=$(img_or_die vdt)
	vdt ls "$d/vdt.qcow2" | grep -qx p1 || skip_test "no vfat driver in this build: /p1 is not shown"
	m=$(vd_mnt m)
	mount_ok "$m" "$d/vdt.qcow2" "$m"
	must vdt cp -r -p "$d/vdt.qcow2" /p1 out >/dev/null
	must T python3 "$TREECMP" --ignore ctime,blocks,dirsize "$m/p1" out >/dev/null
	# And the bytes as mtools reads them from the partition.
	must vdt cat "$d/vdt.qcow2" /p1.raw >esp.img
	mkdir mt
	must T mcopy -s -n -m -i esp.img ::/ mt/
	must T python3 "$TREECMP" --ignore mode,uid,gid,nlink,blocks,atime,ctime,mtime,dirsize,xattr,links,dino mt out
	umount_ok "$m"
}

t_hostile() {
	local d esc out rc
	d=$(img_or_die hostile)
	esc=$(cat "$d/esc")
	mkdir -p "$esc"
	# Left behind only when something was written into it.
	trap 'rmdir "$esc" 2>/dev/null' EXIT
	out=$TD/dest
	mkdir "$out"
	vdt cp -r -p "$d/h.img" /fs/h "$out" >cp.out 2>cp.err
	rc=$?
	rmdir "$esc" 2>/dev/null || die "something was written into $esc: $(ls -la "$esc" | tr '\n' ' ')"
	[ $rc = 1 ] || die "cp exit $rc, expected 1: $(cat cp.err)"
	grep -q "cannot overwrite a non-directory with a directory" cp.err || die "no refusal for h/evil: $(cat cp.err)"
	grep -q "/fs/h/d/loop: the same directory as" cp.err || die "no refusal of the loop: $(cat cp.err)"
	[ -L "$out/h/evil" ] || die "h/evil is not a symlink in the copy"
	[ "$(readlink "$out/h/escape")" = "$(printf '../%.0s' $(seq 12))${esc#/}" ] || die "escape's target changed"
	[ "$(readlink "$out/h/d/x")" = "$esc/x" ] || die "d/x's target changed"
	[ -f "$out/h/two/evil/payload" ] && [ -L "$out/h/one/evil" ] || die "the rest of the tree was not copied"
	# Two copies into one DEST: a symlink first, a directory of the
	# same name next.
	mkdir -p "$esc" dest2
	vdt cp -a "$d/h.img" /fs/h/one/evil dest2 2>c1.err || die "first cp failed: $(cat c1.err)"
	[ -L dest2/evil ] || die "dest2/evil is not a symlink"
	vdt cp -r "$d/h.img" /fs/h/two/evil dest2 2>c2.err
	rc=$?
	rmdir "$esc" 2>/dev/null || die "the second cp wrote into $esc: $(ls -la "$esc" | tr '\n' ' ')"
	[ $rc = 1 ] || die "second cp exit $rc, expected 1"
	grep -q "cannot overwrite a non-directory" c2.err || die "message: $(cat c2.err)"
	# /fs/h/two/. merged into DEST: the same.
	mkdir -p "$esc"
	vdt cp -r "$d/h.img" /fs/h/two/. dest2 2>c3.err
	rmdir "$esc" 2>/dev/null || die "the merge wrote into $esc"
	# ls -R meets the loop, says so, and ends.
	vdt ls -R "$d/h.img" /fs/h >ls.out 2>ls.err
	[ $? = 1 ] || die "ls -R of a looping tree: exit not 1"
	grep -q "contains itself" ls.err || die "ls message: $(cat ls.err)"
}

t_convert() {
	local c s i
	c=$(img_or_die conv)
	s=$(img_or_die shared_chain)
	for i in "$s/top.qcow2" "$c/zlib.qcow2" "$c/sparse.vmdk" "$c/stream.vmdk" "$c/dyn.vhd" "$c/empty.qcow2"; do
		must vdt convert "$i" out.raw >/dev/null
		cmp_files out.raw "$(vd_oracle "$i")"
	done
	# Sparse: 1 GiB with three writes.
	[ "$(du -k out.raw | cut -f1)" -lt 1024 ] || die "converted empty.qcow2 takes $(du -k out.raw | cut -f1) KiB"
	# Every byte to stdout, with -O raw said aloud.
	vdt convert -O raw "$s/top.qcow2" - >stdout.raw || die "convert to stdout failed"
	cmp_files stdout.raw "$(vd_oracle "$s/top.qcow2")"
	vdt convert "$c/zlib.qcow2" - | cmp - "$(vd_oracle "$c/zlib.qcow2")" >/dev/null || die "convert through a pipe differs"
	# Over an existing, longer file: truncated.
	head -c $((40 * MIB)) /dev/urandom >long.raw
	must vdt convert "$c/dyn.vhd" long.raw >/dev/null
	cmp_files long.raw "$(vd_oracle "$c/dyn.vhd")"
	# Refusals: another format (usage, 2), the image itself as OUT (1).
	vdt convert -O qed "$c/zlib.qcow2" x.qed 2>f.err
	[ $? = 2 ] || die "-O qed: exit not 2"
	grep -q "not supported" f.err || die "message: $(cat f.err)"
	cp "$s/top.qcow2" self.qcow2
	cp "$s/base.qcow2" base.qcow2
	vdt convert self.qcow2 base.qcow2 2>self.err
	[ $? = 1 ] || die "convert onto its own backing file: exit not 1"
	cmp -s base.qcow2 "$s/base.qcow2" || die "the backing file was overwritten"
	grep -q "is a file of the image" self.err || die "message: $(cat self.err)"
}

# Run CMD with stderr on a pseudo-terminal; print what it drew.
on_pty() {
	T python3 - "$@" <<-'EOF'
		import os, pty, subprocess, sys
		m, s = pty.openpty()
		p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=s)
		os.close(s)
		out = b""
		while True:
		    try:
		        b = os.read(m, 4096)
		    except OSError:
		        break
		    if not b:
		        break
		    out += b
		rc = p.wait()
		sys.stdout.write(out.decode("utf-8", "replace"))
		sys.exit(rc)
	EOF
}

t_progress() {
	local d
	d=$(img_or_die vdt)
	on_pty "$VDTOOL" convert "$d/vdt.qcow2" conv.raw >pty.txt || die "convert on a pty failed"
	grep -q "100%" pty.txt && grep -q "/s  in " pty.txt || die "no progress bar on a terminal: $(head -c 300 pty.txt)"
	on_pty "$VDTOOL" cp -r "$d/vdt.qcow2" /p2 cpdir >pty2.txt || die "cp on a pty failed"
	grep -q "100%" pty2.txt || die "no progress bar for cp: $(head -c 300 pty2.txt)"
	on_pty "$VDTOOL" convert -q "$d/vdt.qcow2" conv2.raw >pty3.txt || die "convert -q failed"
	[ ! -s pty3.txt ] || die "-q still drew: $(head -c 200 pty3.txt)"
	must vdt convert "$d/vdt.qcow2" conv3.raw 2>err.txt
	must vdt cp -r "$d/vdt.qcow2" /p2 cpdir2 2>>err.txt
	[ ! -s err.txt ] || die "progress drawn into a file: $(head -c 200 err.txt)"
}

t_usage() {
	local c rc d
	d=$(img_or_die vdt)
	for c in ls cat cp convert; do
		vdt "$c" --help >help.txt 2>&1 || die "vdtool $c --help: exit $?"
		grep -q "^usage: vdtool $c" help.txt || die "vdtool $c --help: $(head -1 help.txt)"
	done
	vdt --help >/dev/null || die "vdtool --help failed"
	for args in "" "ls" "cat $d/vdt.qcow2" "cp $d/vdt.qcow2 /p2" "convert $d/vdt.qcow2" \
		"ls --bogus $d/vdt.qcow2" "frobnicate x" "convert -O"; do
		# shellcheck disable=SC2086
		vdt $args >/dev/null 2>u.err
		rc=$?
		[ $rc = 2 ] || die "vdtool $args: exit $rc, expected 2"
	done
	for c in "ls" "cat" "convert" "cp"; do
		case $c in
		ls) vdt ls missing.qcow2 2>m.err ;;
		cat) vdt cat missing.qcow2 /disk.raw 2>m.err ;;
		convert) vdt convert missing.qcow2 o.raw 2>m.err ;;
		cp) vdt cp missing.qcow2 /disk.raw o.raw 2>m.err ;;
		esac
		rc=$?
		[ $rc = 1 ] || die "vdtool $c of a missing image: exit $rc"
		[ "$(wc -l <m.err)" = 1 ] && grep -q '^vdtool: .*missing.qcow2' m.err ||
			die "vdtool $c of a missing image: $(cat m.err)"
	done
}

[ -x "$VDTOOL" ] || { fail vdtool "$VDTOOL is missing; build with make check-build"; exit 0; }
vd_test vdtool-ls t_ls
vd_test vdtool-cat t_cat
vd_test vdtool-cp t_cp
vd_test vdtool-cp-vfat t_cp_vfat
vd_test vdtool-hostile t_hostile
vd_test vdtool-convert t_convert
vd_test vdtool-progress t_progress
vd_test vdtool-usage t_usage
vd_finish
