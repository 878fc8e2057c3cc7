#!/usr/bin/env python3
"""treecmp.py [options] A B — compare two file trees, A the reference.

Prints one line per difference, `PATH: WHAT: A=... B=...`, and exits 1 if
there is any (2 on bad usage). Compared for every path (the roots
included): presence, file type, the readdir d_type and d_ino against
lstat, mode, uid, gid, size, nlink, st_blocks, atime/mtime/ctime to the
nanosecond, rdev of device nodes, symlink targets, xattrs of every
namespace (system.posix_acl_* included), regular file contents, and
hard-link grouping: paths that share an (st_dev, st_ino) on one side must
share it on the other (and only those). With --statfs, also the statvfs numbers of
the two roots.

It never follows a symlink and never opens anything but a regular file
(fifos would block; device nodes are not the tree's data). Contents are
read in 1 MiB chunks at the same offsets on both sides, in parallel
threads, with O_DIRECT for files of 32 MiB or more; each side's sha256 (all-zero chunks counted by their offset, so
that a 4 GiB hole costs no hashing) is printed when they differ, with the
first differing byte.

  --ignore LIST    comma-separated: mode uid gid size dirsize nlink blocks
                   atime mtime ctime rdev symlink xattr content links
                   dtype dino
  --ignore-xattr P skip xattrs whose name starts with P (repeatable)
  --exclude REL    skip the path REL (relative to the roots) and what is
                   under it (repeatable)
  --statfs         compare statvfs: bsize frsize blocks bfree bavail
                   files ffree favail namemax
  --max N          print at most N differences (default 100)
  --jobs N         threads reading contents (default 4)
"""
import argparse
import concurrent.futures
import errno
import hashlib
import mmap
import os
import stat
import sys

CHUNK = 1 << 20
DIRECT_MIN = 32 << 20
ZERO = bytes(CHUNK)
ATTRS = ("mode uid gid size dirsize nlink blocks atime mtime ctime rdev "
         "symlink xattr content links dtype dino").split()


def show(rel):
    """A path for a report line: printable, unambiguous."""
    s = rel.decode("utf-8", "backslashreplace")
    s = s.encode("unicode_escape").decode("ascii") if any(
        c in s for c in "\n\t\r") else s
    return "/" + s if s else "/"


def err(e):
    return "error %s" % errno.errorcode.get(e.errno, e.errno)


class Cmp:
    def __init__(self, a, b, opt):
        self.a = os.fsencode(a)
        self.b = os.fsencode(b)
        self.ign = set(opt.ignore)
        self.ign_x = [os.fsencode(p) for p in opt.ignore_xattr]
        self.excl = {os.fsencode(p).strip(b"/") for p in opt.exclude}
        self.max = opt.max
        self.jobs = opt.jobs
        self.ndiff = 0
        self.npaths = 0
        # path -> st_ino per side, for hard-link grouping
        self.ino = ({}, {})
        self.content = []

    def diff(self, rel, what, va, vb):
        self.ndiff += 1
        if self.ndiff <= self.max:
            print("%s: %s: A=%s B=%s" % (show(rel), what, va, vb), flush=True)

    def on(self, what):
        return what not in self.ign

    def excluded(self, rel):
        r = rel
        while r:
            if r in self.excl:
                return True
            r = os.path.dirname(r)
        return False

    # ------------------------------------------------------------ walk
    def listdir(self, root, rel):
        """{name: DirEntry} or an OSError."""
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                return {e.name: e for e in it}
        except OSError as e:
            return e

    def run(self):
        self.entry(b"", None, None)
        stack = [b""]
        while stack:
            rel = stack.pop()
            la = self.listdir(self.a, rel)
            lb = self.listdir(self.b, rel)
            if isinstance(la, OSError) or isinstance(lb, OSError):
                if not (isinstance(la, OSError) and isinstance(lb, OSError)):
                    self.diff(rel, "readdir",
                              err(la) if isinstance(la, OSError) else "ok",
                              err(lb) if isinstance(lb, OSError) else "ok")
                continue
            for name in sorted(set(la) | set(lb)):
                r = os.path.join(rel, name) if rel else name
                if self.excluded(r):
                    continue
                if name not in lb:
                    self.diff(r, "presence", "present", "missing")
                    continue
                if name not in la:
                    self.diff(r, "presence", "missing", "present")
                    continue
                if self.entry(r, la[name], lb[name]):
                    stack.append(r)
        self.check_content()
        if self.on("links"):
            self.check_links()

    def entry(self, rel, ea, eb):
        """Compare one path; True when both sides are directories."""
        self.npaths += 1
        pa = os.path.join(self.a, rel) if rel else self.a
        pb = os.path.join(self.b, rel) if rel else self.b
        try:
            sa = os.lstat(pa)
        except OSError as e:
            sa = e
        try:
            sb = os.lstat(pb)
        except OSError as e:
            sb = e
        if isinstance(sa, OSError) or isinstance(sb, OSError):
            if not (isinstance(sa, OSError) and isinstance(sb, OSError)):
                self.diff(rel, "lstat",
                          err(sa) if isinstance(sa, OSError) else "ok",
                          err(sb) if isinstance(sb, OSError) else "ok")
            return False
        ta, tb = stat.S_IFMT(sa.st_mode), stat.S_IFMT(sb.st_mode)
        if ta != tb:
            self.diff(rel, "type", oct(ta), oct(tb))
            return False
        for side, e, s in ((0, ea, sa), (1, eb, sb)):
            if e is None:
                continue
            # st_dev too: the kernel gives every btrfs subvolume its
            # own, and numbers inodes per subvolume.
            self.ino[side][rel] = (s.st_dev, s.st_ino)
            self.dirent(rel, "AB"[side], e, s)
        self.attrs(rel, ta, sa, sb)
        if ta == stat.S_IFLNK and self.on("symlink"):
            try:
                la = os.readlink(pa)
            except OSError as e:
                la = err(e)
            try:
                lb = os.readlink(pb)
            except OSError as e:
                lb = err(e)
            if la != lb:
                self.diff(rel, "symlink", repr(la)[:300], repr(lb)[:300])
        if self.on("xattr"):
            self.xattrs(rel, pa, pb)
        if ta == stat.S_IFREG and self.on("content") and \
                sa.st_size == sb.st_size:
            self.content.append((rel, pa, pb, sa.st_size))
        return ta == stat.S_IFDIR

    def dirent(self, rel, side, e, s):
        """What readdir said (d_type, d_ino) must agree with lstat."""
        if self.on("dtype"):
            try:
                isl = e.is_symlink()
                isd = e.is_dir(follow_symlinks=False)
                isf = e.is_file(follow_symlinks=False)
            except OSError as x:
                self.diff(rel, "d_type on " + side, "", err(x))
                return
            m = s.st_mode
            if (isl, isd, isf) != (stat.S_ISLNK(m), stat.S_ISDIR(m),
                                  stat.S_ISREG(m)):
                self.diff(rel, "d_type vs lstat on " + side,
                          "link=%d dir=%d reg=%d" % (isl, isd, isf),
                          "mode %o" % m)
        if self.on("dino") and e.inode() != s.st_ino:
            self.diff(rel, "d_ino vs st_ino on " + side, e.inode(), s.st_ino)

    def attrs(self, rel, typ, sa, sb):
        checks = [("mode", sa.st_mode, sb.st_mode),
                  ("uid", sa.st_uid, sb.st_uid),
                  ("gid", sa.st_gid, sb.st_gid),
                  ("nlink", sa.st_nlink, sb.st_nlink),
                  ("blocks", sa.st_blocks, sb.st_blocks),
                  ("atime", sa.st_atime_ns, sb.st_atime_ns),
                  ("mtime", sa.st_mtime_ns, sb.st_mtime_ns),
                  ("ctime", sa.st_ctime_ns, sb.st_ctime_ns)]
        checks.append(("dirsize" if typ == stat.S_IFDIR else "size",
                       sa.st_size, sb.st_size))
        if typ in (stat.S_IFCHR, stat.S_IFBLK):
            checks.append(("rdev", "%d:%d" % (os.major(sa.st_rdev),
                                              os.minor(sa.st_rdev)),
                           "%d:%d" % (os.major(sb.st_rdev),
                                      os.minor(sb.st_rdev))))
        for what, va, vb in checks:
            if va != vb and self.on(what):
                if what == "mode":
                    va, vb = "%o" % va, "%o" % vb
                self.diff(rel, what, va, vb)

    def xattrs(self, rel, pa, pb):
        def get(p):
            try:
                names = os.listxattr(p, follow_symlinks=False)
            except OSError as e:
                if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    return {}
                return err(e)
            out = {}
            for n in names:
                nb = os.fsencode(n)
                if any(nb.startswith(x) for x in self.ign_x):
                    continue
                try:
                    out[n] = os.getxattr(p, n, follow_symlinks=False)
                except OSError as e:
                    out[n] = err(e)
            return out
        xa, xb = get(pa), get(pb)
        if isinstance(xa, str) or isinstance(xb, str):
            if xa != xb:
                self.diff(rel, "listxattr", xa if isinstance(xa, str) else
                          "ok", xb if isinstance(xb, str) else "ok")
            return
        for n in sorted(set(xa) | set(xb)):
            va, vb = xa.get(n, "absent"), xb.get(n, "absent")
            if va != vb:
                self.diff(rel, "xattr " + n, short(va), short(vb))

    # ------------------------------------------------------------ contents
    def check_content(self):
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as ex:
            for rel, what, va, vb in ex.map(lambda c: compare_file(*c),
                                            self.content):
                if what:
                    self.diff(rel, what, va, vb)

    # ------------------------------------------------------------ hard links
    def check_links(self):
        groups = []
        for side in (0, 1):
            by = {}
            for rel, ino in self.ino[side].items():
                by.setdefault(ino, []).append(rel)
            groups.append({rel: tuple(sorted(g)) for g in by.values()
                           for rel in g})
        seen = set()
        for rel in sorted(set(groups[0]) & set(groups[1])):
            ga, gb = groups[0][rel], groups[1][rel]
            if ga != gb and (ga, gb) not in seen:
                seen.add((ga, gb))
                self.diff(rel, "hard-link group (paths sharing st_ino)",
                          " ".join(show(g) for g in ga[:5]),
                          " ".join(show(g) for g in gb[:5]))


def short(v):
    if isinstance(v, bytes) and len(v) > 64:
        return "%r...(%d bytes, sha256 %s)" % (
            v[:32], len(v), hashlib.sha256(v).hexdigest()[:16])
    return repr(v)


def read_chunk(fd, buf, off):
    """CHUNK bytes at off, fewer only at end of file. buf is page-aligned
    (O_DIRECT needs that); a short read is retried where it ended."""
    mv = memoryview(buf)
    got = 0
    while got < CHUNK:
        n = os.preadv(fd, [mv[got:]], off + got)
        if n == 0:
            break
        got += n
    return bytes(mv[:got])


def open_side(p, size):
    """Files of DIRECT_MIN bytes or more are read with O_DIRECT where the
    file system allows it: a 4 GiB hole read through the page cache would
    fill 4 GiB of memory on each side. Smaller files go through the page
    cache, so both paths get exercised."""
    fl = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    if size >= DIRECT_MIN:
        try:
            return os.open(p, fl | os.O_DIRECT)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    return os.open(p, fl)


def compare_file(rel, pa, pb, size):
    """(rel, None, ..) when equal, else (rel, what, A, B)."""
    fds = []
    bufs = [mmap.mmap(-1, CHUNK), mmap.mmap(-1, CHUNK)]
    try:
        for p in (pa, pb):
            try:
                fds.append(open_side(p, size))
            except OSError as e:
                return (rel, "open", "ok" if fds else err(e),
                        err(e) if fds else "?")
        hs = [hashlib.sha256(), hashlib.sha256()]
        first = None
        off = 0
        while True:
            cs = []
            for i in (0, 1):
                try:
                    cs.append(read_chunk(fds[i], bufs[i], off))
                except OSError as e:
                    return (rel, "read at %d" % off,
                            "ok" if i else err(e), err(e) if i else "?")
            for i in (0, 1):
                c = cs[i]
                if c == ZERO[:len(c)]:
                    hs[i].update(b"zero chunk at %d len %d;" % (off, len(c)))
                else:
                    hs[i].update(c)
            if first is None and cs[0] != cs[1]:
                n = min(len(cs[0]), len(cs[1]))
                first = off + next((j for j in range(n)
                                    if cs[0][j] != cs[1][j]), n)
            if len(cs[0]) < CHUNK or len(cs[1]) < CHUNK:
                if len(cs[0]) != len(cs[1]) or off + len(cs[0]) != size:
                    return (rel, "bytes read (st_size %d)" % size,
                            off + len(cs[0]), off + len(cs[1]))
                break
            off += CHUNK
        if first is not None:
            return (rel, "content (first difference at byte %d; sha256)"
                    % first, hs[0].hexdigest()[:16], hs[1].hexdigest()[:16])
        return (rel, None, None, None)
    finally:
        for fd in fds:
            os.close(fd)
        for b in bufs:
            b.close()


STATFS = ("bsize frsize blocks bfree bavail files ffree favail "
          "namemax").split()


def statfs(a, b, c):
    sa, sb = os.statvfs(a), os.statvfs(b)
    for f in STATFS:
        va, vb = getattr(sa, "f_" + f), getattr(sb, "f_" + f)
        if va != vb:
            c.diff(b"", "statfs " + f, va, vb)


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n")[0])
    ap.add_argument("--ignore", default="")
    ap.add_argument("--ignore-xattr", action="append", default=[])
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--statfs", action="store_true")
    ap.add_argument("--max", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("a")
    ap.add_argument("b")
    opt = ap.parse_args()
    opt.ignore = [x for x in opt.ignore.split(",") if x]
    bad = [x for x in opt.ignore if x not in ATTRS]
    if bad:
        ap.error("unknown --ignore %s (known: %s)" % (",".join(bad),
                                                       " ".join(ATTRS)))
    for r in (opt.a, opt.b):
        if not os.path.isdir(r):
            ap.error("%s is not a directory" % r)
    c = Cmp(opt.a, opt.b, opt)
    if opt.statfs:
        statfs(opt.a, opt.b, c)
    c.run()
    if c.ndiff > c.max:
        print("... %d more differences" % (c.ndiff - c.max))
    print("treecmp: %d paths, %d differences" % (c.npaths, c.ndiff),
          file=sys.stderr)
    sys.exit(1 if c.ndiff else 0)


if __name__ == "__main__":
    main()
