#!/usr/bin/env python3
"""dircheck.py — how folders list, through libc's opendir/readdir/
telldir/seekdir (what ls, find, cp and rsync use).

  dircheck.py same A B [--exclude REL]...
      Every folder under A (A the reference: the kernel's mount of the
      same bytes) lists the same names with the same d_type under B, each
      name once, "." and ".." included; on B each entry's d_ino is its
      lstat st_ino (d_type too). Prints one line per difference, exits 1
      if any.
  dircheck.py seek DIR...
      In each DIR: the listing read with telldir before each readdir;
      then seekdir to positions taken from it (the first, the last, the
      end, and up to 200 more) gives back the entry read there, and the
      rest of the listing after it; telldir after a seekdir says the
      position; rewinddir starts again; two handles read side by side
      do not disturb each other. Writes the positions to DIR's line of
      --save FILE, or (--load FILE) first seeks to those saved by an
      earlier mount before anything else is read (a fresh mount: the
      kernel has no listing kept, so the filesystem is asked at each
      position).
"""
import ctypes
import ctypes.util
import json
import os
import random
import stat
import sys

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Dirent(ctypes.Structure):  # struct dirent of 64-bit glibc
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]

DT = {stat.S_IFDIR: 4, stat.S_IFREG: 8, stat.S_IFLNK: 10, stat.S_IFCHR: 2,
      stat.S_IFBLK: 6, stat.S_IFIFO: 1, stat.S_IFSOCK: 12}


class Dir:
    def __init__(self, path):
        self.path = path
        self.d = libc.opendir(os.fsencode(path))
        if not self.d:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), path)

    def read(self):
        """The next (name, d_type, d_ino), or None at the end."""
        ctypes.set_errno(0)
        p = libc.readdir(self.d)
        if not p:
            e = ctypes.get_errno()
            if e:
                raise OSError(e, os.strerror(e), self.path)
            return None
        return (p.contents.d_name, p.contents.d_type, p.contents.d_ino)

    def tell(self):
        return libc.telldir(self.d)

    def seek(self, pos):
        libc.seekdir(self.d, pos)

    def rewind(self):
        libc.rewinddir(self.d)

    def close(self):
        libc.closedir(self.d)
        self.d = None

    def listing(self):
        """[(position before, entry)] to the end."""
        out = []
        while True:
            pos = self.tell()
            e = self.read()
            if e is None:
                return out, pos
            out.append((pos, e))


def entries(path):
    d = Dir(path)
    try:
        return [e for _, e in d.listing()[0]]
    finally:
        d.close()


def same(a, b, excludes):
    bad = []

    def say(rel, what):
        bad.append("%s: %s" % (rel or "/", what))

    stack = [""]
    folders = 0
    while stack and len(bad) < 50:
        rel = stack.pop()
        pa, pb = os.path.join(a, rel), os.path.join(b, rel)
        folders += 1
        ea, eb = entries(pa), entries(pb)
        na = sorted((n, t) for n, t, _ in ea)
        nb = sorted((n, t) for n, t, _ in eb)
        if len(set(n for n, _ in nb)) != len(nb):
            seen = set()
            dup = [n for n, _ in nb if n in seen or seen.add(n)]
            say(rel, "names listed twice: %r" % dup[:5])
        if na != nb:
            only_a = sorted(set(na) - set(nb))
            only_b = sorted(set(nb) - set(na))
            say(rel, "%d entries, reference %d; only in reference %r, "
                "only here %r" % (len(nb), len(na), only_a[:5], only_b[:5]))
        for n, t, ino in eb:
            if n in (b".", b".."):
                continue
            st = os.lstat(os.path.join(os.fsencode(pb), n))
            if st.st_ino != ino:
                say(rel, "%r: d_ino %d, lstat %d" % (n, ino, st.st_ino))
            if DT.get(stat.S_IFMT(st.st_mode)) != t:
                say(rel, "%r: d_type %d, lstat mode %o" % (n, t, st.st_mode))
        for n, t, _ in ea:
            if t == 4 and n not in (b".", b".."):
                r = os.path.join(rel, os.fsdecode(n))
                if r not in excludes:
                    stack.append(r)
    for line in bad:
        print(line)
    print("%d folders compared" % folders, file=sys.stderr)
    return 1 if bad else 0


def check_seek(path, rng, saved):
    bad = []

    def fail(what):
        bad.append("%s: %s" % (path, what))

    d = Dir(path)
    try:
        if saved:
            # Before anything is listed on this mount: each position is
            # the filesystem's to find.
            for pos, name in saved:
                d.seek(pos)
                e = d.read()
                if e is None or e[0] != os.fsencode(name):
                    fail("fresh seekdir(%d): %r, expected %r" %
                         (pos, e and e[0], name))
                    break
        d.rewind()
        lst, end = d.listing()
        names = [e[0] for _, e in lst]
        want = sorted([b".", b".."] + [os.fsencode(n)
                                        for n in os.listdir(path)])
        if sorted(names) != want:
            fail("readdir lists %d names, listdir %d" %
                 (len(names), len(want) - 2))
        if len(set(names)) != len(names):
            fail("a name listed twice")
        if d.read() is not None:
            fail("readdir after the end gave an entry")
        picks = {0, len(lst) - 1} if lst else set()
        picks |= set(rng.sample(range(len(lst)), min(200, len(lst))))
        for k in sorted(picks, key=lambda _: rng.random()):
            pos, e = lst[k]
            d.seek(pos)
            if d.tell() != pos:
                fail("telldir after seekdir(%d): %d" % (pos, d.tell()))
            got = d.read()
            if got is None or got[0] != e[0]:
                fail("seekdir(%d): %r, expected %r" %
                     (pos, got and got[0], e[0]))
                break
        # The rest of the listing from a few positions.
        for k in rng.sample(range(len(lst)), min(3, len(lst))):
            d.seek(lst[k][0])
            rest = [e[0] for _, e in d.listing()[0]]
            if rest != names[k:]:
                fail("listing from entry %d differs (%d names, expected "
                     "%d)" % (k, len(rest), len(names) - k))
        d.seek(end)
        if d.read() is not None:
            fail("seekdir to the end: an entry follows")
        d.rewind()
        first = d.read()
        if not lst or first is None or first[0] != names[0]:
            fail("rewinddir: %r, expected %r" %
                 (first and first[0], names[:1]))
        # Two handles, read by turns.
        d2 = Dir(path)
        try:
            d.rewind()
            a, b = [], []
            while True:
                x, y = d.read(), d2.read()
                if x:
                    a.append(x[0])
                if y:
                    b.append(y[0])
                if not x and not y:
                    break
            if a != names or b != names:
                fail("two handles read by turns list differently")
        finally:
            d2.close()
    finally:
        d.close()
    sample = [(p, os.fsdecode(e[0])) for p, e in
              (lst[k] for k in sorted(rng.sample(range(len(lst)),
                                                 min(50, len(lst)))))]
    return bad, sample


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "same":
        excludes, rest = [], []
        it = iter(args[1:])
        for x in it:
            if x == "--exclude":
                excludes.append(next(it))
            else:
                rest.append(x)
        if len(rest) != 2:
            return 2
        return same(rest[0], rest[1], set(excludes))
    if args[0] == "seek":
        save = load = None
        dirs = []
        it = iter(args[1:])
        for x in it:
            if x == "--save":
                save = next(it)
            elif x == "--load":
                load = next(it)
            else:
                dirs.append(x)
        saved = json.load(open(load)) if load else {}
        rng = random.Random(28)
        bad, out = [], {}
        for i, p in enumerate(dirs):
            b, sample = check_seek(p, rng, saved.get(str(i)))
            bad += b
            out[str(i)] = sample
        if save:
            with open(save, "w") as f:
                json.dump(out, f)
        for line in bad[:50]:
            print(line)
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
