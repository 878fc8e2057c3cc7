#!/usr/bin/env python3
"""mkvhd.py - VHD differencing images for the tests, which qemu-img cannot
write (QEMU 7.2 reads a differencing VHD as if it were dynamic: it ignores
the parent and the sector bitmaps).

  mkvhd.py diff PARENT CHILD [--write OFF:LEN:BYTE]... [--locator KIND:TEXT]...
           [--parent-name NAME] [--parent-id HEX] [--block-size N]
      Write CHILD, a differencing disk over the VHD PARENT (fixed, dynamic or
      differencing), with the same virtual size. Each --write fills LEN bytes
      at OFF (both multiples of 512: a VHD sector bitmap has one bit per
      sector) with BYTE; later writes win. Sectors of an allocated block that
      no write covers keep a poison byte (0xdb) in the data area and a clear
      bitmap bit, so a reader that ignores the bitmap shows 0xdb, not the
      parent's bytes. Locators are stored in the order given:
        W2ru:TEXT  W2ku:TEXT  -> UTF-16LE (TEXT as a Windows path, '\\')
        MacX:TEXT             -> UTF-8 (TEXT a file:// URL)
        Mac:TEXT, Wi2r:TEXT, Wi2k:TEXT -> raw bytes (readers skip them)
      Default: one W2ru locator with PARENT's file name.
  mkvhd.py fix FILE
      Recompute the checksums of the footer copy at offset 0, the footer at
      the end and the dynamic header (after a test poked a field).
  mkvhd.py info FILE
      Print the layout as JSON: footer and header fields, BAT entries.

Fields set (Microsoft "Virtual Hard Disk Image Format Specification" 1.0;
big-endian; offsets within each structure):
  Footer (512 bytes; a copy at file offset 0, the original at the end):
    0 cookie "conectix"; 8 features 2 (reserved bit, always set);
    12 file format version 0x00010000; 16 data offset 512 (the dynamic
    header); 24 time stamp (seconds since 2000-01-01 UTC); 28 creator
    application and 32 creator version, 36 creator host OS, 40 original
    size, 48 current size, 56 disk geometry (cylinders be16, heads u8,
    sectors per track u8): all copied from PARENT's footer, so the virtual
    size is computed the same way as the parent's; 60 disk type 4
    (differencing); 64 checksum (one's complement of the byte sum with this
    field zero); 68 unique id (16 random bytes); 84 saved state 0.
  Dynamic header (1024 bytes at 512):
    0 cookie "cxsparse"; 8 data offset ~0 (unused); 16 table offset 1536;
    24 header version 0x00010000; 28 max table entries (blocks covering the
    virtual size); 32 block size; 36 checksum; 40 parent unique id (PARENT's
    footer unique id, or --parent-id); 56 parent time stamp (PARENT's
    footer time stamp); 64 parent unicode name (UTF-16BE, 512 bytes);
    576 parent locator entries, 8 x 24 bytes: 0 platform code, 4 platform
    data space (512-byte sectors reserved), 8 platform data length (bytes),
    12 reserved, 16 platform data offset (sector aligned, after the BAT).
  BAT at 1536: one be32 per block, the sector of the block's bitmap, or
    0xffffffff when the block is not allocated.
  Block: sector bitmap (one bit per 512-byte sector, most significant bit
    first, padded to 512 bytes), then the block's data.
"""
import json
import os
import struct
import sys
import time

SECTOR = 512
POISON = 0xDB
VHD_EPOCH = 946684800
CODES = {"W2ru": b"W2ru", "W2ku": b"W2ku", "MacX": b"MacX", "Mac": b"Mac ",
         "Wi2r": b"Wi2r", "Wi2k": b"Wi2k"}


def checksum(buf, skip):
    s = sum(buf[:skip]) + sum(buf[skip + 4:])
    return (~s) & 0xFFFFFFFF


def read_footer(path):
    with open(path, "rb") as f:
        head = f.read(SECTOR)
        if head[:8] == b"conectix":
            return head, True
        f.seek(-SECTOR, os.SEEK_END)
        tail = f.read(SECTOR)
        if tail[:8] != b"conectix":
            sys.exit("%s: not a VHD" % path)
        return tail, False


def read_dyn(path, footer):
    off = struct.unpack(">Q", footer[16:24])[0]
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(1024)


def parse_int(s):
    return int(s, 0)


def cmd_diff(args):
    parent, child = args[0], args[1]
    writes, locators = [], []
    pname = os.path.basename(parent)
    pid = None
    block = None
    i = 2
    while i < len(args):
        opt, val = args[i], args[i + 1]
        i += 2
        if opt == "--write":
            o, n, b = val.split(":")
            o, n, b = parse_int(o), parse_int(n), parse_int(b)
            if o % SECTOR or n % SECTOR or n <= 0:
                sys.exit("--write %s: offset and length must be whole sectors" % val)
            writes.append((o, n, b))
        elif opt == "--locator":
            kind, text = val.split(":", 1)
            locators.append((kind, text))
        elif opt == "--parent-name":
            pname = val
        elif opt == "--parent-id":
            pid = bytes.fromhex(val)
        elif opt == "--block-size":
            block = parse_int(val)
        else:
            sys.exit("unknown option " + opt)
    if not locators:
        locators = [("W2ru", ".\\" + os.path.basename(parent))]

    pf, _ = read_footer(parent)
    if pid is None:
        pid = pf[68:84]
    if block is None:
        block = 2 << 20
        if struct.unpack(">I", pf[60:64])[0] in (3, 4):
            block = struct.unpack(">I", read_dyn(parent, pf)[32:36])[0]
    size = struct.unpack(">Q", pf[48:56])[0]
    cyl, heads, spt = struct.unpack(">HBB", pf[56:60])
    app = pf[28:32]
    chs = cyl * heads * spt * SECTOR
    exact = app in (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")
    vsize = size // SECTOR * SECTOR if exact or chs == 65535 * 16 * 255 * SECTOR else chs
    nblocks = (vsize + block - 1) // block
    bitmap_bytes = ((block // SECTOR // 8) + SECTOR - 1) // SECTOR * SECTOR

    # Block contents: bitmap bits and data, for the blocks writes touch.
    blocks = {}
    for o, n, b in writes:
        if o + n > vsize:
            sys.exit("--write %d:%d runs past the virtual size %d" % (o, n, vsize))
        pos = o
        while pos < o + n:
            bi = pos // block
            ib = pos % block
            take = min(o + n - pos, block - ib)
            bm, data = blocks.setdefault(bi, (bytearray(bitmap_bytes),
                                              bytearray([POISON]) * block))
            data[ib:ib + take] = bytes([b]) * take
            for s in range(ib // SECTOR, (ib + take) // SECTOR):
                bm[s // 8] |= 0x80 >> (s % 8)
            pos += take

    # Layout: footer copy, header, BAT, locator data, blocks, footer.
    bat_off = 1536
    bat_bytes = (nblocks * 4 + SECTOR - 1) // SECTOR * SECTOR
    pos = bat_off + bat_bytes
    locs = []
    for kind, text in locators:
        if kind in ("W2ru", "W2ku"):
            data = text.encode("utf-16-le")
        else:
            data = text.encode("utf-8")
        space = (len(data) + SECTOR - 1) // SECTOR
        locs.append((CODES[kind], space, len(data), pos, data))
        pos += max(space, 1) * SECTOR
    bat = [0xFFFFFFFF] * nblocks
    block_at = {}
    for bi in sorted(blocks):
        bat[bi] = pos // SECTOR
        block_at[bi] = pos
        pos += bitmap_bytes + block
    end = pos

    footer = bytearray(SECTOR)
    footer[0:8] = b"conectix"
    struct.pack_into(">IIQI", footer, 8, 2, 0x00010000, 512,
                     (int(time.time()) - VHD_EPOCH) & 0xFFFFFFFF)
    footer[28:60] = pf[28:60]
    struct.pack_into(">I", footer, 60, 4)
    footer[68:84] = os.urandom(16)
    struct.pack_into(">I", footer, 64, checksum(footer, 64))

    dyn = bytearray(1024)
    dyn[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", dyn, 8, 0xFFFFFFFFFFFFFFFF, bat_off,
                     0x00010000, nblocks, block)
    dyn[40:56] = pid
    dyn[56:60] = pf[24:28]
    name = pname.encode("utf-16-be")[:512]
    dyn[64:64 + len(name)] = name
    for k, (code, space, length, at, _) in enumerate(locs):
        struct.pack_into(">4sIIIQ", dyn, 576 + 24 * k, code, space, length, 0, at)
    struct.pack_into(">I", dyn, 36, checksum(dyn, 36))

    with open(child, "wb") as f:
        f.write(footer)
        f.write(dyn)
        f.write(b"".join(struct.pack(">I", e) for e in bat))
        for _, _, _, at, data in locs:
            f.seek(at)
            f.write(data)
        for bi, at in block_at.items():
            bm, data = blocks[bi]
            f.seek(at)
            f.write(bm)
            f.write(data)
        f.seek(end)
        f.write(footer)


def cmd_fix(args):
    path = args[0]
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        for at in (0, size - SECTOR):
            f.seek(at)
            ft = bytearray(f.read(SECTOR))
            if ft[:8] != b"conectix":
                continue
            struct.pack_into(">I", ft, 64, checksum(ft, 64))
            f.seek(at)
            f.write(ft)
            if at == 0:
                dyn_off = struct.unpack(">Q", ft[16:24])[0]
                f.seek(dyn_off)
                dyn = bytearray(f.read(1024))
                if dyn[:8] == b"cxsparse":
                    struct.pack_into(">I", dyn, 36, checksum(dyn, 36))
                    f.seek(dyn_off)
                    f.write(dyn)


def cmd_info(args):
    path = args[0]
    ft, at_head = read_footer(path)
    info = {"footer_at_head": at_head,
            "type": struct.unpack(">I", ft[60:64])[0],
            "creator_app": ft[28:32].decode("latin-1"),
            "current_size": struct.unpack(">Q", ft[48:56])[0],
            "unique_id": ft[68:84].hex()}
    if at_head:
        dyn = read_dyn(path, ft)
        bat_off, _, n, block = struct.unpack(">QIII", dyn[16:36])
        with open(path, "rb") as f:
            f.seek(bat_off)
            raw = f.read(4 * n)
        info.update({"dyn_offset": struct.unpack(">Q", ft[16:24])[0],
                     "bat_offset": bat_off, "bat_entries": n,
                     "block_size": block,
                     "parent_id": dyn[40:56].hex(),
                     "bat": [struct.unpack(">I", raw[4 * k:4 * k + 4])[0]
                             for k in range(n)]})
    print(json.dumps(info))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd = {"diff": cmd_diff, "fix": cmd_fix, "info": cmd_info}.get(sys.argv[1])
    if not cmd:
        sys.exit(__doc__)
    cmd(sys.argv[2:])


if __name__ == "__main__":
    main()
