#!/usr/bin/env python3
"""extfsx.py [--seed N] [--ops K] A B — fsx-like random operations on two
folders at once: A under test (a folder of vdmount's writable pN/), B the
model (the same folder on the kernel's own ext4, a read-write loop mount
of a copy of the same filesystem).

Each operation runs on both sides and must end the same way: the same
errno (or none), the same bytes read back, the same stat (type, mode,
size, nlink, uid, gid) of what it touched. Operations, over a small set
of names so that they collide: create and write at random offsets
(across block boundaries), append, truncate, read, rename (plain,
RENAME_NOREPLACE, RENAME_EXCHANGE), unlink, link, mkdir, rmdir, symlink,
setxattr/removexattr (user.*), chmod, chown, utimes, fsync, and a file
unlinked while open and read through its descriptor.

At the end every path's mtime and atime are set to values derived from
its name on both sides (utimensat, symlinks too), so that a tree
comparison after the unmount (tests/treecmp.py, ctime ignored) finds
nothing. Prints the first difference and exits 1; exits 0 when none.
"""
import argparse
import ctypes
import errno
import hashlib
import os
import random
import stat
import sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                      os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


NAMES = ["f%d" % i for i in range(6)] + ["d%d" % i for i in range(3)]
MAXSIZE = 256 * 1024


class Fail(Exception):
    pass


def outcome(fn):
    """(errno or 0, value) of fn()."""
    try:
        return 0, fn()
    except OSError as e:
        return e.errno, None


def lstat_sig(p):
    try:
        st = os.lstat(p)
    except OSError as e:
        return ("err", e.errno)
    sig = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink,
           st.st_uid, st.st_gid)
    if not stat.S_ISDIR(st.st_mode):
        sig += (st.st_size,)
    return sig


def read_all(p):
    with open(p, "rb") as f:
        return f.read()


class Fsx:
    def __init__(self, a, b, seed):
        self.a, self.b = a, b
        self.r = random.Random(seed)
        self.n = 0

    def path(self):
        """A random relative path: a name in the root or one level down."""
        r = self.r
        if r.random() < 0.4:
            return os.path.join(r.choice(NAMES[6:]), r.choice(NAMES))
        return r.choice(NAMES)

    def both(self, what, fn, check=()):
        """Run fn(root) on both sides: same errno, same value, same stat
        of the paths in check."""
        ea, va = outcome(lambda: fn(self.a))
        eb, vb = outcome(lambda: fn(self.b))
        if ea != eb:
            raise Fail("op %d %s: errno %s under test, %s in the model" %
                       (self.n, what, errno.errorcode.get(ea, ea),
                        errno.errorcode.get(eb, eb)))
        if va != vb:
            raise Fail("op %d %s: result differs (%r... vs %r...)" %
                       (self.n, what, repr(va)[:60], repr(vb)[:60]))
        for rel in check:
            sa = lstat_sig(os.path.join(self.a, rel))
            sb = lstat_sig(os.path.join(self.b, rel))
            if sa != sb:
                raise Fail("op %d %s: %s is %r under test, %r in the model"
                           % (self.n, what, rel, sa, sb))
        return ea

    def data(self, n):
        return self.r.randbytes(n)

    def op(self):
        r = self.r
        k = r.choice(["write", "write", "write", "append", "truncate",
                      "read", "rename", "rename", "unlink", "link", "mkdir",
                      "mkdir", "rmdir", "symlink", "xattr", "xattr",
                      "chmod", "chown", "utime", "fsync", "orphan"])
        p = self.path()
        j = os.path.join
        if k == "write":
            off = r.choice([0, r.randrange(MAXSIZE), r.randrange(8) * 4096,
                            r.randrange(8) * 4096 - 1 if r.random() < .5
                            else 4095])
            off = max(off, 0)
            buf = self.data(r.choice([1, 100, 4096, 5000, 70000,
                                      r.randrange(1, 130000)]))

            def w(root):
                fd = os.open(j(root, p), os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    return os.pwrite(fd, buf, off)
                finally:
                    os.close(fd)
            self.both("write %s at %d+%d" % (p, off, len(buf)), w, [p])
        elif k == "append":
            buf = self.data(r.randrange(1, 9000))

            def w(root):
                with open(j(root, p), "ab") as f:
                    return f.write(buf)
            self.both("append %s %d" % (p, len(buf)), w, [p])
        elif k == "truncate":
            size = r.choice([0, r.randrange(MAXSIZE), 4096, 4095, 12289])
            self.both("truncate %s %d" % (p, size),
                      lambda root: os.truncate(j(root, p), size), [p])
        elif k == "read":
            self.both("read %s" % p, lambda root: hashlib.sha256(
                read_all(j(root, p))).hexdigest())
        elif k == "rename":
            q = self.path()
            flags = r.choice([0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE])
            self.both("rename %s %s flags %d" % (p, q, flags),
                      lambda root: renameat2(j(root, p), j(root, q), flags),
                      [p, q, os.path.dirname(p) or ".",
                       os.path.dirname(q) or "."])
        elif k == "unlink":
            self.both("unlink %s" % p, lambda root: os.unlink(j(root, p)),
                      [p])
        elif k == "link":
            q = self.path()
            self.both("link %s %s" % (p, q),
                      lambda root: os.link(j(root, p), j(root, q)), [p, q])
        elif k == "mkdir":
            self.both("mkdir %s" % p,
                      lambda root: os.mkdir(j(root, p), 0o755),
                      [p, os.path.dirname(p) or "."])
        elif k == "rmdir":
            self.both("rmdir %s" % p, lambda root: os.rmdir(j(root, p)),
                      [p, os.path.dirname(p) or "."])
        elif k == "symlink":
            t = r.choice(["f0", "../d0/f1", "x" * r.choice([10, 59, 60,
                                                             200, 1000])])
            self.both("symlink %s" % p,
                      lambda root: os.symlink(t, j(root, p)), [p])
            self.both("readlink %s" % p,
                      lambda root: os.readlink(j(root, p)))
        elif k == "xattr":
            name = "user." + r.choice(["a", "b", "long" * 10])
            if r.random() < 0.3:
                self.both("removexattr %s %s" % (p, name),
                          lambda root: os.removexattr(j(root, p), name,
                                                      follow_symlinks=False))
            else:
                v = self.data(r.choice([0, 5, 300, 700]))
                fl = r.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
                self.both("setxattr %s %s %d" % (p, name, fl),
                          lambda root: os.setxattr(j(root, p), name, v, fl,
                                                   follow_symlinks=False))
            self.both("listxattr %s" % p, lambda root: sorted(
                os.listxattr(j(root, p), follow_symlinks=False)))
        elif k == "chmod":
            mode = r.choice([0o600, 0o644, 0o4755, 0o2750, 0o1777, 0])
            self.both("chmod %s %o" % (p, mode),
                      lambda root: os.chmod(j(root, p), mode), [p])
        elif k == "chown":
            uid, gid = r.choice([(0, 0), (1000, 100), (70000, 80000)])
            self.both("chown %s" % p,
                      lambda root: os.chown(j(root, p), uid, gid,
                                            follow_symlinks=False), [p])
        elif k == "utime":
            # ext4's range with 256-byte inodes: 1901 to 2446.
            ns = r.randrange(-2 ** 31, 2 ** 33) * 10 ** 9 + \
                r.randrange(10 ** 9)
            self.both("utime %s" % p, lambda root: os.utime(
                j(root, p), ns=(ns, ns), follow_symlinks=False))
            self.both("mtime %s" % p,
                      lambda root: os.lstat(j(root, p)).st_mtime_ns)
        elif k == "fsync":
            def fs(root):
                fd = os.open(j(root, p), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.both("fsync %s" % p, fs)
        elif k == "orphan":
            # Open, unlink, then read and write through the descriptor.
            buf = self.data(r.randrange(1, 20000))
            fds = {}

            def opn(root):
                fds[root] = os.open(j(root, p), os.O_RDWR)
            if self.both("open %s" % p, opn) == 0:
                try:
                    self.both("unlink open %s" % p,
                              lambda root: os.unlink(j(root, p)), [p])
                    self.both("write unlinked %s" % p,
                              lambda root: os.pwrite(fds[root], buf, 10))
                    self.both("read unlinked %s" % p, lambda root: hashlib.
                              sha256(os.pread(fds[root], MAXSIZE * 2, 0))
                              .hexdigest())
                finally:
                    for fd in fds.values():
                        os.close(fd)

    def settimes(self):
        """Every path's times from its name, on both sides."""
        for root in (self.a, self.b):
            # In name order on both sides (the kernel lists a folder in
            # hash order): the names of one inode get the last one's.
            for d, dirs, files in os.walk(root):
                dirs.sort()
                for n in sorted(dirs + files):
                    p = os.path.join(d, n)
                    rel = os.path.relpath(p, root)
                    h = int(hashlib.sha256(os.fsencode(rel)).hexdigest()[:12],
                            16)
                    ns = (h % 2 ** 32) * 10 ** 9 + h % 10 ** 9
                    os.utime(p, ns=(ns, ns), follow_symlinks=False)
            os.utime(root, ns=(10 ** 18, 10 ** 18))

    def compare(self):
        """The two trees, as seen through the mounts."""
        seen = []
        for root in (self.a, self.b):
            out = {}
            for d, dirs, files in os.walk(root):
                for n in dirs + files:
                    p = os.path.join(d, n)
                    rel = os.path.relpath(p, root)
                    st = os.lstat(p)
                    v = lstat_sig(p) + (st.st_mtime_ns,)
                    if stat.S_ISREG(st.st_mode):
                        v += (hashlib.sha256(read_all(p)).hexdigest(),)
                    elif stat.S_ISLNK(st.st_mode):
                        v += (os.readlink(p),)
                    v += (tuple(sorted((x, os.getxattr(
                        p, x, follow_symlinks=False)) for x in os.listxattr(
                            p, follow_symlinks=False))),)
                    out[rel] = v
            seen.append(out)
        a, b = seen
        for rel in sorted(set(a) | set(b)):
            if a.get(rel) != b.get(rel):
                raise Fail("at the end, %s: %r under test, %r in the model"
                           % (rel, a.get(rel), b.get(rel)))
        return len(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=400,
                    help="0: only set the times and compare")
    ap.add_argument("a")
    ap.add_argument("b")
    o = ap.parse_args()
    os.umask(0o022)
    f = Fsx(o.a, o.b, o.seed)
    try:
        for f.n in range(o.ops):
            f.op()
        f.settimes()
        n = f.compare()
    except Fail as e:
        print("extfsx: seed %d: %s" % (o.seed, e))
        return 1
    print("extfsx: seed %d: %d operations, %d paths alike" %
          (o.seed, o.ops, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
