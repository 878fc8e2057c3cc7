#!/usr/bin/env python3
"""mkvmdk.py — VMDK files that qemu-img cannot write, for tests/t-80-vmdk.sh.

The tests cross-check vdmount against qemu-img's *reading* of these files,
so this generator is not an oracle: it only has to write what VMware
would. Every field it sets is listed here with its spec.

  mkvmdk.py cowd DESC RAW [--grain S] [--parent NAME --parent-cid HEX]
      An ESX vmfsSparse disk: descriptor DESC (createType "vmfsSparse",
      one VMFSSPARSE extent) and its extent DESC-delta.vmdk, a COWD
      sparse file holding the grains of RAW that are not all zeros
      (the others are unallocated: the parent shows through).
      COWD header (libyal "VMware Virtual Disk (VMDK) format", COWD
      sparse extent header; QEMU's VMDK3Header), little-endian:
        0  magic "COWD"         4  version 1        8  flags 3
        12 numSectors           16 grainSize (sectors)
        20 gdOffset (sector 4)  24 numGDEntries     28 freeSector
      The grain directory (u32 sector of each grain table, 0: none) is
      at sector 4; grain tables have 4096 u32 entries (sector of each
      grain, 0: not allocated); the header is 4 sectors (2048 bytes).

  mkvmdk.py stream OUT RAW [--grain S] [--cid HEX]
      A VMware-style streamOptimized file whose grain directory is only
      in the footer (Virtual Disk Format 1.1, "The Stream-Optimized
      Compressed Sparse Extent"). qemu-img writes its grain directory in
      place instead. SparseExtentHeader (little-endian):
        0  magic "KDMV"          4  version 3
        8  flags 0x30001 (valid newline test, compressed grains, markers)
        12 capacity (sectors)   20 grainSize (sectors)
        28 descriptorOffset 1   36 descriptorSize 20
        44 numGTEsPerGT 512     48 rgdOffset 0
        56 gdOffset 0xffffffffffffffff (GD_AT_END) in the header, the
           real sector in the footer's copy
        64 overHead (sectors)   72 uncleanShutdown 0
        73 "\\n \\r\\n"          77 compressAlgorithm 1 (deflate)
      Each grain that is not all zeros: a grain marker (u64 lba, u32
      size of the zlib data) and the zlib stream of the whole grain
      (zero-padded past the capacity), padded to a sector. Then, per
      grain table: a metadata marker (u64 sectors, u32 0, u32 type 1 =
      grain table) and the table; a marker of type 2 and the grain
      directory; a marker of type 3 and the footer (the header again,
      with gdOffset set); the end-of-stream marker (type 0).

  mkvmdk.py container OUT DESCTEXT
      A hosted sparse file that only carries a descriptor: header with
      capacity 0 and descriptorOffset 1 (QEMU reads such a file as the
      descriptor it embeds), the text of DESCTEXT at sector 1.
"""
import argparse
import struct
import sys
import zlib

SECTOR = 512


def sectors(n):
    return (n + SECTOR - 1) // SECTOR


def pad(b):
    return b + b"\0" * (sectors(len(b)) * SECTOR - len(b))


def read_raw(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % SECTOR:
        sys.exit("%s: size %d is not a multiple of 512" % (path, len(data)))
    return data


def grains(data, grain):
    """(index, bytes) of each grain of data that is not all zeros."""
    zero = bytes(grain)
    for i in range(0, len(data), grain):
        g = data[i:i + grain]
        if g != zero[:len(g)]:
            yield i // grain, g


def descriptor(create_type, extent_lines, cid, parent_cid=0xffffffff,
               parent=None):
    lines = ["# Disk DescriptorFile", "version=1", 'encoding="UTF-8"',
             "CID=%08x" % cid, "parentCID=%08x" % parent_cid,
             'isNativeSnapshot="no"', 'createType="%s"' % create_type]
    if parent:
        lines.append('parentFileNameHint="%s"' % parent)
    lines += ["", "# Extent description"] + extent_lines
    lines += ["", "# The Disk Data Base", "#DDB", "",
              'ddb.virtualHWVersion = "4"', 'ddb.adapterType = "lsilogic"',
              'ddb.longContentID = "0123456789abcdef0123456789abcdef"', ""]
    return "\n".join(lines)


def cmd_cowd(a):
    data = read_raw(a.raw)
    grain = a.grain * SECTOR
    cap = len(data) // SECTOR
    gtes = 4096
    n_gd = -(-cap // (gtes * a.grain))
    gd_sec = 4
    gt_sec0 = gd_sec + sectors(4 * n_gd)
    allocated = dict(grains(data, grain))
    tables = sorted({i // gtes for i in allocated})
    gd = [0] * n_gd
    for k, t in enumerate(tables):
        gd[t] = gt_sec0 + k * (gtes * 4 // SECTOR)
    nxt = gt_sec0 + len(tables) * (gtes * 4 // SECTOR)
    gts = {t: [0] * gtes for t in tables}
    body = []
    for i in sorted(allocated):
        gts[i // gtes][i % gtes] = nxt
        g = allocated[i]
        body.append(g + bytes(grain - len(g)))
        nxt += a.grain
    hdr = b"COWD" + struct.pack("<7I", 1, 3, cap, a.grain, gd_sec, n_gd, nxt)
    out = bytearray(pad(hdr).ljust(gd_sec * SECTOR, b"\0"))
    out += pad(struct.pack("<%dI" % n_gd, *gd))
    for t in tables:
        out += struct.pack("<%dI" % gtes, *gts[t])
    for g in body:
        out += g
    ext = a.desc[:-5] if a.desc.endswith(".vmdk") else a.desc
    ext += "-delta.vmdk"
    with open(ext, "wb") as f:
        f.write(out)
    name = ext.rsplit("/", 1)[-1]
    text = descriptor("vmfsSparse", ['RW %d VMFSSPARSE "%s"' % (cap, name)],
                      int(a.cid, 16), int(a.parent_cid, 16), a.parent)
    with open(a.desc, "w") as f:
        f.write(text)


def sparse_header(cap, grain_sec, gd_sec, over, flags, version, alg,
                  desc_sec=1, desc_len=20):
    h = b"KDMV" + struct.pack("<IIQQQQIQQQ", version, flags, cap, grain_sec,
                              desc_sec, desc_len, 512, 0, gd_sec, over)
    h += b"\0\n \r\n" + struct.pack("<H", alg)
    return pad(h)


def marker(val, typ):
    return pad(struct.pack("<QII", val, 0, typ))


def cmd_stream(a):
    data = read_raw(a.raw)
    grain = a.grain * SECTOR
    cap = len(data) // SECTOR
    gtes = 512
    n_gd = -(-cap // (gtes * a.grain))
    flags = 0x30001
    over = 128
    text = descriptor("streamOptimized",
                      ['RW %d SPARSE "%s"' % (cap, a.out.rsplit("/", 1)[-1])],
                      int(a.cid, 16)).encode()
    if len(text) > 20 * SECTOR:
        sys.exit("descriptor too long")
    out = bytearray(sparse_header(cap, a.grain, 0xffffffffffffffff, over,
                                  flags, 3, 1))
    out += text.ljust(20 * SECTOR, b"\0")
    out = out.ljust(over * SECTOR, b"\0")
    gt = [0] * (n_gd * gtes)
    for i, g in grains(data, grain):
        z = zlib.compress(g + bytes(grain - len(g)))
        gt[i] = len(out) // SECTOR
        out += pad(struct.pack("<QI", i * a.grain, len(z)) + z)
    gd = []
    for t in range(n_gd):
        entries = gt[t * gtes:(t + 1) * gtes]
        if not any(entries):
            gd.append(0)
            continue
        out += marker(gtes * 4 // SECTOR, 1)
        gd.append(len(out) // SECTOR)
        out += struct.pack("<%dI" % gtes, *entries)
    gd_bytes = pad(struct.pack("<%dI" % n_gd, *gd))
    out += marker(len(gd_bytes) // SECTOR, 2)
    gd_sec = len(out) // SECTOR
    out += gd_bytes
    out += marker(1, 3)
    out += sparse_header(cap, a.grain, gd_sec, over, flags, 3, 1)
    out += marker(0, 0)
    with open(a.out, "wb") as f:
        f.write(out)


def cmd_container(a):
    with open(a.desctext, "rb") as f:
        text = f.read()
    n = max(20, sectors(len(text)))
    out = sparse_header(0, 128, 0, 0, 1, 1, 0, 1, n)
    out += text.ljust(n * SECTOR, b"\0")
    with open(a.out, "wb") as f:
        f.write(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cowd")
    c.add_argument("desc")
    c.add_argument("raw")
    c.add_argument("--grain", type=int, default=1)
    c.add_argument("--cid", default="1234abcd")
    c.add_argument("--parent")
    c.add_argument("--parent-cid", default="ffffffff")
    s = sub.add_parser("stream")
    s.add_argument("out")
    s.add_argument("raw")
    s.add_argument("--grain", type=int, default=128)
    s.add_argument("--cid", default="5eed0001")
    k = sub.add_parser("container")
    k.add_argument("out")
    k.add_argument("desctext")
    a = p.parse_args()
    {"cowd": cmd_cowd, "stream": cmd_stream, "container": cmd_container}[a.cmd](a)


if __name__ == "__main__":
    main()
