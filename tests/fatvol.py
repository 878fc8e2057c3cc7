#!/usr/bin/env python3
"""fatvol.py CMD ... — build and poke FAT test volumes (tests/t-9[45]-*.sh).

This is a test tool, not an oracle: volumes are made by mkfs.vfat and
filled by mtools; this script only generates the source tree, finds where
a field lives (from the BPB and the directories it reads) so that a test
can poke one field of a tool-made volume, and copies a sparse volume into
a disk image. What a volume holds is always read back through mtools.

A volume is IMG or IMG@@BYTEOFFSET (as mtools writes it).

  tree DIR [--esp]          the source tree for mcopy -s -m (deterministic)
  geom VOL                  KEY=VALUE lines: bps spc rsvd nfats fatsz
                            rootents totsec first_data root_clus fat_bits
                            clusters fat0 (byte offsets are absolute)
  entry VOL PATH            off= clus= size= attr= nlfn= lfn= of PATH
                            ("/" separated, long or short names): the
                            short entry's absolute offset, and those of
                            its LFN slots in disk order (comma separated)
  fatget VOL CLUS           the FAT entry of CLUS (first FAT)
  fatset VOL CLUS VALUE     set the entry of CLUS in every FAT copy
  chain VOL CLUS            the cluster chain from CLUS, space separated
  clusoff VOL CLUS          the absolute byte offset of cluster CLUS
  rootfree VOL              free entries of the fixed root (FAT12/16)
  dirfree VOL PATH          free entries and clusters of directory PATH
  lfnname VOL PATH NAME     rewrite the long name of PATH as NAME (same
                            number of LFN entries; the checksum stays)
  nohint VOL                FAT32: FSInfo next-free := 0xFFFFFFFF (unknown)
  place DISK VOL OFFSET     copy the data extents of VOL into DISK at OFFSET
"""
import os
import random
import struct
import sys


def split(vol):
    if "@@" in vol:
        p, o = vol.rsplit("@@", 1)
        return p, int(o)
    return vol, 0


class Vol:
    def __init__(self, spec, write=False):
        self.path, self.base = split(spec)
        self.f = open(self.path, "r+b" if write else "rb")
        b = self.pread(0, 512)
        g = {}
        g["bps"], = struct.unpack_from("<H", b, 11)
        g["spc"] = b[13]
        g["rsvd"], = struct.unpack_from("<H", b, 14)
        g["nfats"] = b[16]
        g["rootents"], = struct.unpack_from("<H", b, 17)
        ts16, = struct.unpack_from("<H", b, 19)
        fz16, = struct.unpack_from("<H", b, 22)
        ts32, = struct.unpack_from("<I", b, 32)
        fz32, = struct.unpack_from("<I", b, 36)
        g["totsec"] = ts16 or ts32
        g["fatsz"] = fz16 or fz32
        g["root_clus"] = struct.unpack_from("<I", b, 44)[0] if not fz16 else 0
        g["fsinfo"] = struct.unpack_from("<H", b, 48)[0] if not fz16 else 0
        rootsec = (g["rootents"] * 32 + g["bps"] - 1) // g["bps"]
        g["root_sec"] = g["rsvd"] + g["nfats"] * g["fatsz"]
        g["first_data"] = g["root_sec"] + rootsec
        g["clusters"] = (g["totsec"] - g["first_data"]) // g["spc"]
        c = g["clusters"]
        g["fat_bits"] = 12 if c < 4085 else 16 if c < 65525 else 32
        g["fat0"] = self.base + g["rsvd"] * g["bps"]
        self.g = g
        self.csize = g["bps"] * g["spc"]

    def pread(self, off, n):
        self.f.seek(self.base + off)
        return self.f.read(n)

    def pwrite(self, off, data):
        self.f.seek(self.base + off)
        self.f.write(data)

    # ------------------------------------------------------------ FAT
    def fat_loc(self, c, k=0):
        g = self.g
        start = (g["rsvd"] + k * g["fatsz"]) * g["bps"]
        if g["fat_bits"] == 12:
            return start + c + c // 2
        return start + c * g["fat_bits"] // 8

    def fatget(self, c):
        bits = self.g["fat_bits"]
        o = self.fat_loc(c)
        if bits == 12:
            v, = struct.unpack("<H", self.pread(o, 2))
            return v >> 4 if c & 1 else v & 0xFFF
        if bits == 16:
            return struct.unpack("<H", self.pread(o, 2))[0]
        return struct.unpack("<I", self.pread(o, 4))[0] & 0x0FFFFFFF

    def fatset(self, c, val):
        bits = self.g["fat_bits"]
        for k in range(self.g["nfats"]):
            o = self.fat_loc(c, k)
            if bits == 12:
                v, = struct.unpack("<H", self.pread(o, 2))
                if c & 1:
                    v = (v & 0x000F) | ((val & 0xFFF) << 4)
                else:
                    v = (v & 0xF000) | (val & 0xFFF)
                self.pwrite(o, struct.pack("<H", v))
            elif bits == 16:
                self.pwrite(o, struct.pack("<H", val & 0xFFFF))
            else:
                old, = struct.unpack("<I", self.pread(o, 4))
                self.pwrite(o, struct.pack("<I", (old & 0xF0000000) |
                                           (val & 0x0FFFFFFF)))

    def eoc(self, v):
        return v >= {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.g["fat_bits"]]

    def chain(self, c):
        out = []
        while 2 <= c < self.g["clusters"] + 2 and len(out) <= self.g["clusters"]:
            out.append(c)
            c = self.fatget(c)
            if self.eoc(c):
                break
        return out

    def clusoff(self, c):
        return (self.g["first_data"] * self.g["bps"] +
                (c - 2) * self.csize)

    # ------------------------------------------------------------ dirs
    def dir_slots(self, clus):
        """[(volume-relative byte offset, 32 bytes)] of a directory;
        clus 0 is the root."""
        g = self.g
        if clus == 0 and g["fat_bits"] != 32:
            base = g["root_sec"] * g["bps"]
            return [(base + i * 32, self.pread(base + i * 32, 32))
                    for i in range(g["rootents"])]
        if clus == 0:
            clus = g["root_clus"]
        out = []
        for c in self.chain(clus):
            o = self.clusoff(c)
            data = self.pread(o, self.csize)
            out += [(o + i, data[i:i + 32]) for i in range(0, self.csize, 32)]
        return out

    def entries(self, clus):
        """[(long name or None, short name, short offset, entry bytes,
        offsets of the LFN slots in disk order, LFN slot count)]"""
        out = []
        lfn = []
        for off, e in self.dir_slots(clus):
            if e[0] == 0:
                break
            if e[0] == 0xE5:
                lfn = []
                continue
            if e[11] & 0x3F == 0x0F:
                lfn.append((off, e))
                continue
            if e[11] & 0x08:
                lfn = []
                continue
            long = None
            if lfn:
                units = b""
                for _, le in reversed(lfn):
                    units += le[1:11] + le[14:26] + le[28:32]
                s = units.decode("utf-16-le", "surrogatepass")
                long = s.split("\0")[0]
            base = e[0:8].rstrip(b" ").decode("latin-1")
            ext = e[8:11].rstrip(b" ").decode("latin-1")
            short = base + ("." + ext if ext else "")
            out.append((long, short, off, e, [o for o, _ in lfn],
                        len(lfn)))
            lfn = []
        return out

    def find(self, path):
        clus = 0
        hit = None
        for part in [p for p in path.split("/") if p]:
            for ent in self.entries(clus):
                if part.upper() in ((ent[0] or "").upper(), ent[1].upper()):
                    hit = ent
                    break
            else:
                sys.exit("fatvol: %s: no %s" % (path, part))
            e = hit[3]
            clus = struct.unpack_from("<H", e, 26)[0]
            if self.g["fat_bits"] == 32:
                clus |= struct.unpack_from("<H", e, 20)[0] << 16
        return hit, clus


# ---------------------------------------------------------------- the tree
def touch(p, when):
    os.utime(p, (when, when), follow_symlinks=False)


def write(p, data, when=None):
    with open(p, "wb") as f:
        f.write(data)
    if when is not None:
        touch(p, when)


def tree(root, esp):
    """Names, sizes and times a FAT reader gets wrong. Files whose mtime
    the test checks against a fixed value carry it in their name."""
    rng = random.Random(94)
    os.makedirs(root)
    t = 1262304000  # 2010-01-01, a base for ordinary files
    j = os.path.join
    write(j(root, "MixedCase.TXT"), b"mixed\n", t + 1)
    write(j(root, "lower.txt"), b"lower\n", t + 3)
    write(j(root, "UPPER.TXT"), b"upper\n", t + 5)
    write(j(root, "CASE.txt"), b"ext lower\n", t + 6)
    write(j(root, "case.TXT"), b"base lower\n", t + 7)
    write(j(root, "Case.txt"), b"differs only in case\n", t + 8)
    write(j(root, "name with spaces.and.several.dots.txt"), b"dots\n", t)
    write(j(root, ".hidden start"), b"leading dot\n", t)
    write(j(root, "trail.dot."), b"x", t)
    long = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 -_")
                   for _ in range(228)) + ".long"
    write(j(root, long.strip()), b"a long name\n", t + 10)
    write(j(root, "한국어.txt"), "한국어\n".encode(), t + 12)
    write(j(root, "日本語ファイル.txt"), "日本語\n".encode(), t + 14)
    # Poked to an emoji (a surrogate pair) after mcopy: mtools writes only
    # the low 16 bits of a code point above U+FFFF.
    write(j(root, "ZZ fox.txt"), b"fox\n", t + 16)
    write(j(root, "empty"), b"", t + 18)
    write(j(root, "big.bin"), rng.randbytes(5 << 20), t + 20)
    d = root
    for i in range(1, 21):
        d = j(d, "d%02d" % i)
        os.mkdir(d)
    write(j(d, "leaf.txt"), b"twenty deep\n", t + 22)
    for i in range(20, 0, -1):
        touch(d, t + 100 + 2 * i)
        d = os.path.dirname(d)
    m = j(root, "many")
    os.mkdir(m)
    for i in range(300):
        name = ("F%03d.DAT" % i, "file number %03d with a long name.data" % i,
                "Mixed%03d.Txt" % i)[i % 3]
        write(j(m, name), b"%d\n" % i * (i % 7), t + 2 * i)
    touch(m, t + 1000)
    tm = j(root, "times")
    os.mkdir(tm)
    for name, when in (("t1980", 315532800),  # 1980-01-01 00:00:00
                       ("t1999", 946684798),  # 1999-12-31 23:59:58
                       ("t2000", 946684800),
                       ("t2038", 2147483650),  # past 2^31
                       ("t2099", 4102444798),  # 2099-12-31 23:59:58
                       ("t2100", 4107542400),  # 2100-03-01 (no Feb 29)
                       ("t2107", 4354819198),  # 2107-12-31 23:59:58
                       ("odd", 981173107)):    # 2001-02-03 04:05:07
        write(j(tm, name + ".txt"), name.encode(), when)
    touch(tm, 946684800)
    a = j(root, "attr")
    os.mkdir(a)
    for name in ("ro.txt", "hidden.txt", "system.txt", "rhs.txt",
                 "noarch.txt"):
        write(j(a, name), name.encode(), t)
    os.mkdir(j(a, "hdir"))
    write(j(a, "hdir", "in.txt"), b"in", t)
    touch(j(a, "hdir"), t + 40)
    touch(a, t + 42)
    if esp:
        os.makedirs(j(root, "EFI", "BOOT"))
        write(j(root, "EFI", "BOOT", "BOOTX64.EFI"),
              b"MZ" + rng.randbytes(70000), t + 30)
        touch(j(root, "EFI", "BOOT"), t + 44)
        touch(j(root, "EFI"), t + 46)
    touch(root, t)


# ---------------------------------------------------------------- main
def place(disk, vol, offset):
    fi = os.open(vol, os.O_RDONLY)
    fo = os.open(disk, os.O_WRONLY)
    size = os.fstat(fi).st_size
    pos = 0
    while pos < size:
        try:
            pos = os.lseek(fi, pos, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fi, pos, os.SEEK_HOLE)
        while pos < end:
            n = min(end - pos, 1 << 20)
            os.pwrite(fo, os.pread(fi, n, pos), offset + pos)
            pos += n
    os.close(fi)
    os.close(fo)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "tree":
        tree(a[1], "--esp" in a)
    elif cmd == "place":
        place(a[1], a[2], int(a[3]))
    elif cmd == "geom":
        v = Vol(a[1])
        for k, val in sorted(v.g.items()):
            print("%s=%d" % (k, val))
    elif cmd == "entry":
        v = Vol(a[1])
        (long, short, off, e, lo, nl), clus = v.find(a[2])
        print("off=%d clus=%d size=%d attr=%d nlfn=%d lfn=%s" %
              (v.base + off, clus, struct.unpack_from("<I", e, 28)[0],
               e[11], nl, ",".join(str(v.base + o) for o in lo)))
    elif cmd == "fatget":
        print(Vol(a[1]).fatget(int(a[2])))
    elif cmd == "fatset":
        Vol(a[1], True).fatset(int(a[2]), int(a[3], 0))
    elif cmd == "chain":
        print(" ".join(str(c) for c in Vol(a[1]).chain(int(a[2]))))
    elif cmd == "clusoff":
        v = Vol(a[1])
        print(v.base + v.clusoff(int(a[2])))
    elif cmd == "rootfree":
        v = Vol(a[1])
        print(sum(1 for _, e in v.dir_slots(0) if e[0] in (0, 0xE5)))
    elif cmd == "dirfree":
        v = Vol(a[1])
        _, clus = v.find(a[2])
        print(sum(1 for _, e in v.dir_slots(clus) if e[0] in (0, 0xE5)),
              len(v.chain(clus)))
    elif cmd == "lfnname":
        v = Vol(a[1], True)
        (long, short, off, e, lo, nl), _ = v.find(a[2])
        units = a[3].encode("utf-16-le")
        n = len(units) // 2
        if nl == 0 or n > 13 * nl or n <= 13 * (nl - 1):
            sys.exit("fatvol: %s: %d units do not fill %d LFN entries" %
                     (a[3], n, nl))
        units += b"\0\0" if n < 13 * nl else b""
        units += b"\xff" * (26 * nl - len(units))
        for k in range(nl):  # slot k holds units [13*(nl-1-k), ...)
            so = lo[k]
            le = bytearray(v.pread(so, 32))
            u = units[26 * (nl - 1 - k):26 * (nl - k)]
            le[1:11], le[14:26], le[28:32] = u[0:10], u[10:22], u[22:26]
            v.pwrite(so, bytes(le))
    elif cmd == "nohint":
        v = Vol(a[1], True)
        if v.g["fat_bits"] != 32:
            sys.exit("fatvol: not FAT32")
        v.pwrite(v.g["fsinfo"] * v.g["bps"] + 492, b"\xff" * 4)
    else:
        sys.exit("fatvol: unknown command %s" % cmd)


if __name__ == "__main__":
    main()
