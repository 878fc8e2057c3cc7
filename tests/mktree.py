#!/usr/bin/env python3
"""mktree.py [--seed N] [--profile full|small|inline] DIR

Make a file tree in DIR (which must not exist, or be empty) for
`mkfs.ext4 -d DIR`, deterministic for a seed: every name, size, byte,
owner, mode, xattr and time comes from the seed. Must run as root (device
nodes, owners, trusted.* xattrs). The tree exercises what an ext reader
gets wrong: file sizes around block and inline boundaries, holes (one file
over 4 GiB, one with hundreds of extents), fast and slow symlinks
(dangling ones too), hard links, UTF-8 and 255-byte names, 30-deep
nesting, fifos, sockets, device nodes (also with 12-bit majors and 20-bit
minors), xattrs in the user., trusted. and security. namespaces (in the
inode and spilling into an xattr block), POSIX ACLs (access and default),
setuid/setgid/sticky and 0000 modes, owners above 65535, times with
nanoseconds before 1970 and after 2038, a directory of 10,000 entries
(htree).

mkfs.ext4 1.47.0 -d copies whole seconds only and wraps times past 2038,
so an image builder mounts the new image read-write and runs
`mktree.py --times-only` with the same seed on it: the kernel then writes
the nanoseconds and the extra epoch bits.

Profiles:
  full    everything, with a 64 MiB file, a sparse file over 4 GiB and the
          10,000-entry directory
  small   everything else (a few MiB): for many small volumes
  inline  small files and directories that fit an inode's inline data,
          for an `-O inline_data` volume, with a few that do not fit

The ACLs are written as system.posix_acl_* xattrs in the kernel's format
(what setfacl writes), so the acl package is not needed.
"""
import argparse
import os
import random
import socket
import stat
import struct
import sys

MIB = 1 << 20


class Tree:
    def __init__(self, root, seed):
        self.root = root
        self.rng = random.Random(seed)
        self.seed = seed
        # Paths (relative) in creation order, for the final times pass.
        self.made = []
        self.symlink_max = 4095
        self.fs = "ext"

    def p(self, rel):
        return os.path.join(self.root, rel)

    def note(self, rel):
        self.made.append(rel)

    def data(self, n):
        return self.rng.randbytes(n)

    def mkdir(self, rel, mode=0o755):
        os.mkdir(self.p(rel))
        os.chmod(self.p(rel), mode)
        self.note(rel)

    def file(self, rel, content=b"", mode=0o644):
        with open(self.p(rel), "wb") as f:
            f.write(content)
        os.chmod(self.p(rel), mode)
        self.note(rel)

    def sparse(self, rel, size, runs):
        """runs: (offset, length) of data; the rest are holes."""
        with open(self.p(rel), "wb") as f:
            for off, ln in runs:
                f.seek(off)
                # Never a zero block: mkfs -d turns zero blocks into holes,
                # which is fine, but keep the data runs exact.
                f.write(self.data(ln).replace(b"\0", b"\1"))
            f.truncate(size)
        self.note(rel)

    def symlink(self, rel, target):
        os.symlink(target, self.p(rel))
        self.note(rel)

    def link(self, rel, existing):
        os.link(self.p(existing), self.p(rel))

    def xattr(self, rel, name, value, follow=True):
        os.setxattr(self.p(rel), name, value, follow_symlinks=follow)

    def chown(self, rel, uid, gid):
        os.chown(self.p(rel), uid, gid, follow_symlinks=False)


# POSIX ACL xattr format (linux/posix_acl_xattr.h): a 4-byte version (2),
# then 8-byte entries: tag (u16), perm (u16), id (u32), all little-endian,
# sorted by tag then id.
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20)
ACL_UNDEF = 0xFFFFFFFF


def acl(entries):
    b = struct.pack("<I", 2)
    for tag, perm, ident in sorted(entries):
        b += struct.pack("<HHI", tag, perm, ident)
    return b


def make_files(t, big):
    t.mkdir("files")
    t.file("files/empty")
    # Sizes around the 60-byte i_block, 1 KiB/4 KiB blocks and 12 direct
    # blocks (ext2/3 block maps go indirect after 12 blocks).
    for n in (1, 59, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097,
              12 * 1024 + 1, 12 * 4096, 12 * 4096 + 1, 65537,
              268 * 1024 + 7, MIB + 3):
        t.file("files/size_%d" % n, t.data(n))
    t.file("files/text.txt", b"".join(
        b"line %d of a text file\n" % i for i in range(2000)))
    if big:
        # 64 MiB, written in pieces so memory stays small.
        with open(t.p("files/big64m"), "wb") as f:
            for _ in range(64):
                f.write(t.data(MIB))
        t.note("files/big64m")


def make_sparse(t, big):
    t.mkdir("sparse")
    t.sparse("sparse/hole_middle", 3 * MIB, [(0, 4096), (MIB + 100, 5000)])
    t.sparse("sparse/hole_start", 2 * MIB + 777, [(2 * MIB, 777)])
    t.sparse("sparse/all_hole", 10 * MIB, [])
    # Hundreds of one-block data runs: an extent tree deeper than the
    # inode's four slots (and, on 1 KiB blocks, several leaf blocks).
    t.sparse("sparse/many_extents", 700 * 8192,
             [(i * 8192, 1000 + i % 3000) for i in range(700)])
    # On ext2/3 with 1 KiB blocks, data past 12 + 256 + 65536 blocks needs
    # the triple-indirect block.
    tri = (12 + 256 + 65536) * 1024
    t.sparse("sparse/past_64m", tri + 3 * MIB + 5,
             [(0, 10), (tri - 5000, 10000), (tri + 3 * MIB + 5 - 10, 10)])
    if big:
        g4 = 1 << 32
        # Over 4 GiB: data across the 2^32 boundary and at the very end
        # (on ext2/3 with 4 KiB blocks this is past the double-indirect
        # range).
        t.sparse("sparse/over_4g", g4 + 12345,
                 [(0, 100), (g4 - 2000, 4000), (g4 + 12345 - 300, 300)])


def make_links(t, big):
    t.mkdir("links")
    t.file("links/target", b"the target\n")
    t.symlink("links/fast", "target")
    t.symlink("links/fast_59", "t" * 55 + "/xyz")          # 59 bytes
    t.symlink("links/slow_60", "s" * 56 + "/xyz")          # 60 bytes: slow
    t.symlink("links/slow_61", "s" * 57 + "/xyz")
    t.symlink("links/slow_1000", "/".join(["dir%03d" % i for i in range(166)])[:1000])
    t.symlink("links/dangling_fast", "nowhere")
    t.symlink("links/dangling_slow", "/no/such/" + "directory/" * 10 + "file")
    t.symlink("links/to_dir", "../files")
    # Absolute: a reader that follows it would escape the image.
    t.symlink("links/absolute", "/etc/passwd")
    t.symlink("links/loop_a", "loop_b")
    t.symlink("links/loop_b", "loop_a")
    t.symlink("links/utf8", "célèbre → ziel")
    if big and t.symlink_max >= 3000:
        # Longer than a 1 KiB block (libext2fs 1.47 refuses 4095 bytes).
        t.symlink("links/slow_3000", ("a" * 199 + "/") * 15)
    elif big:
        # XFS's longest (XFS_SYMLINK_MAXLEN): two blocks of 512 bytes.
        t.symlink("links/slow_%d" % t.symlink_max,
                  (("a" * 99 + "/") * 11)[:t.symlink_max])


def make_hardlinks(t):
    t.mkdir("hard")
    t.mkdir("hard/other")
    t.file("hard/a", t.data(5000))
    t.link("hard/b", "hard/a")
    t.link("hard/other/c", "hard/a")
    t.file("hard/x", b"")
    t.link("hard/y", "hard/x")
    # Two names in one directory that differ only in case.
    t.file("hard/Case", b"upper")
    t.link("hard/case", "hard/Case")


def make_names(t):
    t.mkdir("names")
    names = [
        "héllo wörld", "日本語のファイル名", "emoji 🙂🎉", "Ελληνικά",
        "a" * 255,                      # longest ASCII name
        "é" * 127 + "x",                # 255 bytes of UTF-8
        "中" * 85,                       # 255 bytes, 3-byte characters
        "-rf", ".hidden", "...", "name with  spaces ", "tab\there",
        "new\nline", "back\\slash", "quote\"'", "semi;colon", "*star?",
        "%s%n", "x" * 254,
    ]
    for i, n in enumerate(names):
        t.file("names/" + n, b"name %d\n" % i)
    t.mkdir("names/" + "d" * 255)
    t.file("names/" + "d" * 255 + "/inside", b"in a 255-byte dir\n")
    # A name that is not valid UTF-8 (ext stores bytes).
    raw = os.path.join(os.fsencode(t.p("names")), b"latin1-\xe9t\xe9")
    with open(raw, "wb") as f:
        f.write(b"latin-1 name\n")
    t.note(os.fsdecode(os.path.join(b"names", b"latin1-\xe9t\xe9")))


def make_deep(t):
    rel = "deep"
    t.mkdir(rel)
    for i in range(1, 31):
        rel += "/d%02d" % i
        t.mkdir(rel)
    t.file(rel + "/leaf", b"30 levels down\n")
    t.symlink(rel + "/up", "../" * 30 + "files/size_1")


def make_special(t):
    t.mkdir("special")
    os.mkfifo(t.p("special/fifo"), 0o640)
    t.note("special/fifo")
    # A socket: bind from inside the folder (sun_path is short).
    cwd = os.getcwd()
    os.chdir(t.p("special"))
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("sock")
        s.close()
    finally:
        os.chdir(cwd)
    os.chmod(t.p("special/sock"), 0o755)
    t.note("special/sock")
    for name, kind, major, minor in (
            ("null", stat.S_IFCHR, 1, 3),
            ("loop0", stat.S_IFBLK, 7, 0),
            # 12-bit major and 20-bit minor: ext's "new" device encoding.
            ("bigdev_c", stat.S_IFCHR, 300, 70000),
            ("bigdev_b", stat.S_IFBLK, 4095, 1048575),
            ("zero_dev", stat.S_IFCHR, 0, 0)):
        if t.fs == "xfs":
            # The largest XFS stores.
            major, minor = min(major, 511), min(minor, 262143)
        os.mknod(t.p("special/" + name), kind | 0o600, os.makedev(major, minor))
        t.note("special/" + name)


def make_xattrs(t, big):
    t.mkdir("xattr")
    t.file("xattr/few", b"few\n")
    t.xattr("xattr/few", "user.a", b"alpha")
    t.xattr("xattr/few", "user.empty", b"")
    t.xattr("xattr/few", "trusted.t", b"trusted value")
    t.xattr("xattr/few", "security.s", b"security value\0with nul")
    # Too many and too big for the inode: spills into an xattr block (of
    # 1 KiB on the small volumes).
    t.file("xattr/many", b"many\n")
    for i in range(20):
        t.xattr("xattr/many", "user.k%02d" % i, t.data(10 + i))
    if big:
        t.xattr("xattr/many", "user.big", t.data(2000))
    t.file("xattr/binary", b"")
    t.xattr("xattr/binary", "user.bin", bytes(range(256)))
    t.mkdir("xattr/dir")
    t.xattr("xattr/dir", "user.on_dir", b"dir attr")
    t.symlink("xattr/link", "few")
    # user.* is not allowed on symlinks; trusted.* is.
    t.xattr("xattr/link", "trusted.on_link", b"link attr", follow=False)
    # Two files with the same xattrs: ext may share one xattr block.
    for n in ("shared1", "shared2"):
        t.file("xattr/" + n, n.encode())
        t.xattr("xattr/" + n, "user.same", b"S" * 300)
        t.xattr("xattr/" + n, "user.same2", b"T" * 300)


def make_acls(t):
    t.mkdir("acl")
    t.file("acl/file", b"acl file\n", 0o640)
    t.xattr("acl/file", "system.posix_acl_access", acl([
        (ACL_USER_OBJ, 6, ACL_UNDEF), (ACL_USER, 4, 1234),
        (ACL_USER, 7, 100000), (ACL_GROUP_OBJ, 4, ACL_UNDEF),
        (ACL_GROUP, 6, 5678), (ACL_MASK, 6, ACL_UNDEF),
        (ACL_OTHER, 0, ACL_UNDEF)]))
    t.mkdir("acl/dir", 0o750)
    t.xattr("acl/dir", "system.posix_acl_access", acl([
        (ACL_USER_OBJ, 7, ACL_UNDEF), (ACL_USER, 5, 1234),
        (ACL_GROUP_OBJ, 5, ACL_UNDEF), (ACL_MASK, 5, ACL_UNDEF),
        (ACL_OTHER, 0, ACL_UNDEF)]))
    t.xattr("acl/dir", "system.posix_acl_default", acl([
        (ACL_USER_OBJ, 7, ACL_UNDEF), (ACL_USER, 7, 1234),
        (ACL_GROUP_OBJ, 5, ACL_UNDEF), (ACL_GROUP, 5, 65534),
        (ACL_MASK, 7, ACL_UNDEF), (ACL_OTHER, 1, ACL_UNDEF)]))
    # Made inside the default-ACL dir: inherits an access ACL.
    t.file("acl/dir/inherited", b"inherits\n")


def make_modes(t):
    t.mkdir("modes")
    for mode in (0o4755, 0o2755, 0o6711, 0o0000, 0o0007, 0o0777, 0o0400,
                 0o1644, 0o7777):
        t.file("modes/f%04o" % mode, b"mode %04o\n" % mode)
        os.chmod(t.p("modes/f%04o" % mode), mode)
    t.mkdir("modes/sticky", 0o1777)
    t.mkdir("modes/setgid_dir", 0o2775)
    t.file("modes/setgid_dir/f", b"x")
    t.mkdir("modes/closed", 0o755)
    t.file("modes/closed/inside", b"in a 0000 dir\n", 0o644)
    # After its child is made: a 0000 directory root can still read.
    os.chmod(t.p("modes/closed"), 0)


def make_owners(t):
    t.mkdir("owners")
    for uid, gid in ((1234, 5678), (65534, 65534), (100000, 100000),
                     (70000, 0), (0, 4294967294), (65535, 65536),
                     (2 ** 31, 7)):
        rel = "owners/u%d_g%d" % (uid, gid)
        t.file(rel, b"%d:%d\n" % (uid, gid))
        t.chown(rel, uid, gid)
    t.mkdir("owners/dir_1234")
    t.chown("owners/dir_1234", 1234, 5678)
    t.symlink("owners/link_100000", "u1234_g5678")
    t.chown("owners/link_100000", 100000, 100001)


# mtimes, atimes as (seconds, nanoseconds); applied at the end.
TIMES = [
    (1234567890, 123456789), (0, 0), (0, 1), (-1000000000, 500000000),
    (-1, 999999999), (2147483647, 999999999), (2147483648, 0),
    (4102444800, 999999999), (1700000000, 100), (946684800, 999000000),
]


def make_times(t):
    t.mkdir("times")
    for i, (s, ns) in enumerate(TIMES):
        t.file("times/t%02d" % i, b"time %d.%09d\n" % (s, ns))


def make_bigdir(t):
    t.mkdir("bigdir")
    for i in range(10000):
        # Names of varied length so the htree's hash order matters.
        n = "e%05d_%s" % (i, "x" * (i % 37))
        if i % 1000 == 0:
            t.mkdir("bigdir/" + n)
        else:
            fd = os.open(t.p("bigdir/" + n), os.O_CREAT | os.O_WRONLY, 0o644)
            if i % 97 == 0:
                os.write(fd, b"%d\n" % i)
            os.close(fd)


def make_inline(t):
    # Data up to 60 bytes lives in i_block; with 256-byte inodes up to
    # about 100 more in the inode's system.data xattr.
    t.mkdir("inline")
    for n in (0, 1, 40, 59, 60, 61, 100, 120, 140, 150, 160, 200, 4096):
        t.file("inline/size_%d" % n, t.data(n))
    t.file("inline/with_xattr", b"small and with an xattr")
    t.xattr("inline/with_xattr", "user.x", b"v" * 20)
    for n in (0, 1, 3, 6, 12, 40, 200):
        d = "inline/dir_%d" % n
        t.mkdir(d)
        for i in range(n):
            t.file(d + "/f%d" % i, b"%d" % i)
    t.symlink("inline/link", "size_40")
    t.symlink("inline/slow_link", "l" * 80)
    t.mkdir("inline/nest")
    t.mkdir("inline/nest/a")
    t.mkdir("inline/nest/a/b")
    t.file("inline/nest/a/b/c", b"nested inline\n")
    t.file("inline/hard1", b"linked inline data")
    t.link("inline/hard2", "inline/hard1")
    t.mkdir("inline/utf8_名前")
    t.file("inline/utf8_名前/ファイル", b"inline utf8\n")


def set_times(t):
    """Every entry's atime and mtime from the seed, deepest first, so that
    making a child does not move its parent's mtime afterwards."""
    rng = random.Random(t.seed * 7 + 1)
    paths = set(t.made)
    for dirpath, dirnames, filenames in os.walk(t.root):
        if dirpath == t.root and "lost+found" in dirnames:
            # On a mounted image (--times-only): not ours.
            dirnames.remove("lost+found")
        for n in dirnames + filenames:
            paths.add(os.path.relpath(os.path.join(dirpath, n), t.root))
    paths.add(".")
    for rel in sorted(paths, key=lambda r: (1, r) if r == "." else (-r.count("/"), r)):
        if rel.startswith("times/t"):
            s, ns = TIMES[int(rel[7:9])]
            m = s * 10 ** 9 + ns
            a = m + 7
        else:
            m = rng.randrange(10 ** 9, 2 * 10 ** 9) * 10 ** 9 + rng.randrange(10 ** 9)
            a = m + rng.randrange(10 ** 12)
        os.utime(t.p(rel), ns=(a, m), follow_symlinks=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=("full", "small", "inline"),
                    default="full")
    ap.add_argument("--times-only", action="store_true",
                    help="only set the times, on a copy of a tree made "
                    "with the same seed and profile (mkfs.ext4 -d keeps "
                    "whole seconds only, and no times past 2038)")
    ap.add_argument("--fs", choices=("ext", "xfs"), default="ext",
                    help="the filesystem's limits: xfs takes symlinks "
                    "of at most 1023 bytes and SysV device numbers (9-bit "
                    "majors, 18-bit minors)")
    ap.add_argument("dir")
    a = ap.parse_args()
    if a.times_only:
        set_times(Tree(a.dir, a.seed))
        return
    if os.geteuid() != 0:
        sys.exit("mktree.py: must run as root (mknod, chown, trusted.*)")
    os.makedirs(a.dir, exist_ok=True)
    if os.listdir(a.dir):
        sys.exit("mktree.py: %s is not empty" % a.dir)
    os.umask(0o022)
    t = Tree(a.dir, a.seed)
    t.fs = a.fs
    t.symlink_max = 1023 if a.fs == "xfs" else 4095
    if a.profile == "inline":
        make_inline(t)
    else:
        big = a.profile == "full"
        make_files(t, big)
        make_sparse(t, big)
        make_links(t, big)
        make_hardlinks(t)
        make_names(t)
        make_deep(t)
        make_special(t)
        make_xattrs(t, big)
        make_acls(t)
        make_modes(t)
        make_owners(t)
        make_times(t)
        if big:
            make_bigdir(t)
    set_times(t)


if __name__ == "__main__":
    main()
