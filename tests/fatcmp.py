#!/usr/bin/env python3
"""fatcmp.py [options] ORACLE MOUNT — compare a FAT volume's tree as
mtools copied it out (`mcopy -s -m -n -i VOL '::*' ORACLE/`) with the
same volume's tree under a vdmount mount.

Every path (the root excepted) is compared for presence, type, size,
sha256 of the contents and mtime to the second. With --mdir, the names
of every directory as `mdir -/ -a` lists them must be exactly the names
readdir gives (long names; a short name, as mtools shows it with the NT
case flags, when there is none). With --mattrib, the attributes that
`mattrib -/` lists decide the mode (directories 0755, files 0644, or
0444 with the read-only attribute, as Linux's vfat shows them with umask
022) and the xattr user.fat.attrib of each path (the set attributes in
the order readonly,hidden,system,archive; absent when none). Also checked: st_ino is unique per
path and agrees with readdir's d_ino, nlink of files is 1.

  --mdir FILE      `mdir -/ -a -i VOL ::` output
  --mattrib FILE   `mattrib -/ -i VOL ::` output
  --uid N --gid N  every path's owner
  --mtime REL=EPOCH  expect this mtime for REL instead of the oracle's
                   (repeatable: mtools gets dates after 2100-02-28 wrong)
  --max N          print at most N differences (default 50)

Prints one line per difference and exits 1 when there is any.
"""
import argparse
import errno
import hashlib
import os
import re
import stat
import sys

ATTR_ORDER = (("R", "readonly"), ("H", "hidden"), ("S", "system"),
              ("A", "archive"))


def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def parse_mdir(path):
    """{dir relative path: set of names}"""
    out = {}
    cur = None
    line_re = re.compile(r"^(.{8}) (.{3}) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +"
                         r"(\d+:\d\d) ?(.*)$")
    for line in open(path, encoding="utf-8", errors="surrogateescape"):
        line = line.rstrip("\n")
        if line.startswith("Directory for ::"):
            cur = line[len("Directory for ::"):].strip("/")
            out.setdefault(cur, set())
            continue
        m = line_re.match(line)
        if not m or cur is None:
            continue
        base, ext, long = m.group(1).rstrip(), m.group(2).rstrip(), \
            m.group(6).strip(" ")
        if long:
            name = long
        else:
            name = base + ("." + ext if ext else "")
        if name in (".", ".."):
            continue
        out[cur].add(name)
    return out


def parse_mattrib(path):
    """{relative path: set of letters}"""
    out = {}
    for line in open(path, encoding="utf-8", errors="surrogateescape"):
        line = line.rstrip("\n")
        i = line.find("::/")
        if i < 0:
            continue
        out[line[i + 3:].strip("/")] = set(line[:i].replace(" ", ""))
    return out


class Cmp:
    def __init__(self, opt):
        self.o = opt.oracle
        self.m = opt.mount
        self.opt = opt
        self.ndiff = 0
        self.npaths = 0
        self.inos = {}
        self.mtimes = {}
        for s in opt.mtime:
            rel, _, t = s.rpartition("=")
            self.mtimes[rel.strip("/")] = int(t)
        self.mdir = parse_mdir(opt.mdir) if opt.mdir else None
        self.attrs = parse_mattrib(opt.mattrib) if opt.mattrib else None

    def diff(self, rel, what, want, got):
        self.ndiff += 1
        if self.ndiff <= self.opt.max:
            print("/%s: %s: want %s got %s" % (rel, what, want, got),
                  flush=True)

    def run(self):
        stack = [""]
        while stack:
            rel = stack.pop()
            po = os.path.join(self.o, rel) if rel else self.o
            pm = os.path.join(self.m, rel) if rel else self.m
            lo = set(os.listdir(po))
            try:
                with os.scandir(pm) as it:
                    em = {e.name: e for e in it}
            except OSError as e:
                self.diff(rel, "readdir", "ok", errno.errorcode[e.errno])
                continue
            lm = set(em)
            if self.mdir is not None:
                want = self.mdir.get(rel)
                if want is None:
                    self.diff(rel, "mdir listing", "present", "missing")
                elif want != lm:
                    self.diff(rel, "names vs mdir",
                              sorted(want - lm)[:5], sorted(lm - want)[:5])
            for n in sorted(lo - lm):
                self.diff(os.path.join(rel, n), "presence", "present",
                          "missing")
            for n in sorted(lm - lo):
                self.diff(os.path.join(rel, n), "presence", "absent",
                          "present")
            for n in sorted(lo & lm):
                r = os.path.join(rel, n) if rel else n
                if self.entry(r, em[n]):
                    stack.append(r)
        # Every path has its own inode number.
        by = {}
        for r, i in self.inos.items():
            by.setdefault(i, []).append(r)
        for i, rs in by.items():
            if len(rs) > 1:
                self.diff(rs[0], "st_ino %d shared with" % i, "none",
                          rs[1:4])

    def entry(self, rel, de):
        self.npaths += 1
        po, pm = os.path.join(self.o, rel), os.path.join(self.m, rel)
        so = os.lstat(po)
        try:
            sm = os.lstat(pm)
        except OSError as e:
            self.diff(rel, "lstat", "ok", errno.errorcode[e.errno])
            return False
        to, tm = stat.S_IFMT(so.st_mode), stat.S_IFMT(sm.st_mode)
        if to != tm:
            self.diff(rel, "type", oct(to), oct(tm))
            return False
        isdir = to == stat.S_IFDIR
        self.inos[rel] = sm.st_ino
        if de.inode() != sm.st_ino:
            self.diff(rel, "d_ino vs st_ino", sm.st_ino, de.inode())
        if de.is_dir(follow_symlinks=False) != isdir:
            self.diff(rel, "d_type", "dir" if isdir else "file", "other")
        want_t = self.mtimes.get(rel, int(so.st_mtime))
        if sm.st_mtime_ns != want_t * 10**9:
            self.diff(rel, "mtime", want_t, sm.st_mtime_ns / 1e9)
        if self.opt.uid is not None and sm.st_uid != self.opt.uid:
            self.diff(rel, "uid", self.opt.uid, sm.st_uid)
        if self.opt.gid is not None and sm.st_gid != self.opt.gid:
            self.diff(rel, "gid", self.opt.gid, sm.st_gid)
        if self.attrs is not None:
            letters = self.attrs.get(rel)
            if letters is None:
                self.diff(rel, "mattrib line", "present", "missing")
                letters = set()
            perm = 0o755 if isdir else 0o644
            if "R" in letters and not isdir:
                perm &= ~0o222
            if stat.S_IMODE(sm.st_mode) != perm:
                self.diff(rel, "mode", "%o" % perm,
                          "%o" % stat.S_IMODE(sm.st_mode))
            want = ",".join(n for c, n in ATTR_ORDER if c in letters)
            try:
                got = os.getxattr(pm, "user.fat.attrib",
                                  follow_symlinks=False).decode()
            except OSError as e:
                got = None if e.errno == errno.ENODATA else \
                    errno.errorcode[e.errno]
            if (want or None) != got:
                self.diff(rel, "user.fat.attrib", want or "absent", got)
        if isdir:
            return True
        if sm.st_nlink != 1:
            self.diff(rel, "nlink", 1, sm.st_nlink)
        if so.st_size != sm.st_size:
            self.diff(rel, "size", so.st_size, sm.st_size)
            return False
        try:
            hm = sha(pm)
        except OSError as e:
            self.diff(rel, "read", "ok", errno.errorcode[e.errno])
            return False
        ho = sha(po)
        if ho != hm:
            self.diff(rel, "sha256", ho[:16], hm[:16])
        return False


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n")[0])
    ap.add_argument("--mdir")
    ap.add_argument("--mattrib")
    ap.add_argument("--uid", type=int)
    ap.add_argument("--gid", type=int)
    ap.add_argument("--mtime", action="append", default=[])
    ap.add_argument("--max", type=int, default=50)
    ap.add_argument("oracle")
    ap.add_argument("mount")
    opt = ap.parse_args()
    c = Cmp(opt)
    c.run()
    if c.ndiff > opt.max:
        print("... %d more differences" % (c.ndiff - opt.max))
    print("fatcmp: %d paths, %d differences" % (c.npaths, c.ndiff),
          file=sys.stderr)
    if c.npaths < 2:
        print("fatcmp: fewer than two paths compared", file=sys.stderr)
        sys.exit(1)
    sys.exit(1 if c.ndiff else 0)


if __name__ == "__main__":
    main()
