#!/usr/bin/env python3
"""btrfsfix.py — pokes for btrfs test images (ours, so that a poke gets
past the checksums to the check behind them).

  btrfsfix.py crc IMG OFF LEN
      Recompute the crc32c (btrfs' default checksum) of the LEN-byte
      block at byte OFF of IMG: a superblock (4096 bytes) or a tree block
      (the node size); the checksum covers the block after its 32-byte
      checksum field and is stored little-endian in its first 4 bytes.
  btrfsfix.py vars IMG
      From btrfs-progs' own dump of IMG (single metadata, one device):
      NAME=VALUE lines giving byte offsets in IMG of the fs tree's root
      node (fsroot), its first and last leaves (leaf0, leafn), the
      chunk tree's root (chunkroot), the extent item of z/zlib.txt's
      first extent (zext) and its leaf (zleaf), and nodesize.
"""
import re
import subprocess
import sys


def crc32c(b):
    t = crc32c.table
    c = 0xFFFFFFFF
    for x in b:
        c = t[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    crc32c.table.append(c)


def fix(img, off, ln):
    with open(img, "r+b") as f:
        f.seek(off)
        b = f.read(ln)
        f.seek(off)
        f.write(crc32c(b[32:]).to_bytes(4, "little"))


def phys(img, logical):
    out = subprocess.run(["btrfs-map-logical", "-l", str(logical), img],
                         capture_output=True, text=True).stdout
    m = re.search(r"mirror 1 logical %d physical (\d+)" % logical, out)
    if not m:
        sys.exit("btrfsfix: no mapping for %d: %s" % (logical, out))
    return int(m.group(1))


def dump(*args):
    return subprocess.run(["btrfs", "inspect-internal"] + list(args),
                          capture_output=True, text=True, check=True).stdout


def variables(img):
    sb = dump("dump-super", img)
    nodesize = int(re.search(r"^nodesize\s+(\d+)", sb, re.M).group(1))
    chunk = int(re.search(r"^chunk_root\s+(\d+)", sb, re.M).group(1))
    t = dump("dump-tree", "-t", "5", img)
    root = re.search(r"^node (\d+) level (\d+)", t, re.M)
    blocks = re.findall(r"key \(\d+ \w+ \d+\) block (\d+) gen", t)
    # z/zlib.txt: the inode whose INODE_REF names it, then its first
    # EXTENT_DATA item: the leaf it lies in and its itemoff.
    ino = re.search(r"key \((\d+) INODE_REF \d+\).*\n.*name: zlib.txt", t).group(1)
    leaf = None
    zext = zleaf = None
    for line in t.split("\n"):
        m = re.match(r"leaf (\d+) items", line)
        if m:
            leaf = int(m.group(1))
        m = re.search(r"key \(%s EXTENT_DATA 0\) itemoff (\d+)" % ino, line)
        if m and zext is None:
            zleaf = phys(img, leaf)
            zext = zleaf + 101 + int(m.group(1))
    print("fsroot=%d" % phys(img, int(root.group(1))))
    print("fsroot_level=%s" % root.group(2))
    print("leaf0=%d" % phys(img, int(blocks[0])))
    print("leafn=%d" % phys(img, int(blocks[-1])))
    print("chunkroot=%d" % phys(img, chunk))
    print("zext=%d" % zext)
    print("zleaf=%d" % zleaf)
    print("nodesize=%d" % nodesize)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "crc":
        fix(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == "vars":
        variables(sys.argv[2])
    else:
        sys.exit(__doc__)
