#!/usr/bin/env python3
"""mkvhdx.py - VHDX images for the tests that qemu-img cannot write: disks
with 4096-byte logical sectors, differencing disks (QEMU 7.2 refuses a
VHDX with a parent) and disks with a log to replay (qemu-img replays a log
only when it opens an image for writing, and never leaves one behind).

  mkvhdx.py new OUT --size N [--block-size N] [--lss 512|4096] [--pss N]
           [--from RAW] [--fixed] [--no-log]
      A dynamic (or, --fixed, fully allocated) VHDX of virtual size N; the
      blocks of RAW that hold any non-zero byte are stored fully present,
      the others not present. --no-log (here and for diff): no log
      region, the metadata region at 1 MiB and the BAT at 2 MiB (small
      fuzz seeds).
  mkvhdx.py diff PARENT OUT [--write OFF:LEN:BYTE]... [--zero OFF:LEN]...
           [--block-size N] [--relative NAME] [--absolute PATH]
           [--volume PATH] [--linkage GUID] [--parent-raw RAW --expect OUT]
           [--no-log]
      A differencing VHDX over the VHDX PARENT (same virtual size and
      logical sector size). Each --write fills LEN bytes at OFF (multiples
      of the logical sector) with BYTE: a block every one of whose sectors
      is written is fully present, one partly written is partially present
      with its sectors' bits set in the chunk's sector bitmap and a poison
      byte (0xdb) in the sectors not written, so a reader that ignores the
      bitmap shows 0xdb. --zero (whole blocks) stores the ZERO state: the
      parent is not read there. The parent locator holds parent_linkage
      (PARENT's data write GUID, or --linkage) and relative_path (default:
      PARENT's file name), absolute_win32_path, volume_path when given.
      --expect writes the disk the child shows: RAW (the parent's disk)
      with the writes and zeros applied.
  mkvhdx.py log IMG [--write OFF:LEN:BYTE]... [--zero OFF:LEN]...
           [--per-entry N] [--at SECTOR] [--stale] [--torn]
      Rewrite IMG (a dynamic VHDX, as qemu-img makes it) so that the
      changes are in its log only, as a host that stopped before copying
      them leaves it. Writes (4 KiB aligned) to a block that is present go
      to its data as logged sectors; to a block that is not, a new block is
      allocated at the end of the file (a zero descriptor for all of it,
      then the written sectors) and its BAT page is logged. --zero (4 KiB
      aligned, inside present blocks) logs zero descriptors. The
      descriptors are split into entries of N (default 4) with consecutive
      sequence numbers, starting at log sector SECTOR (default 0; the
      sequence may wrap around the end of the log); every entry's tail is
      the first. --stale adds, after a gap, an older valid sequence that
      writes 0xee over block 0 (it must not be replayed); --torn adds
      after the head an entry whose checksum is wrong. The header's log
      GUID is set; nothing else is changed.
  mkvhdx.py fix IMG
      Recompute the CRC-32C of both headers, both region tables and the
      log entries that lie whole inside the log, after a test poked a
      field.
  mkvhdx.py info IMG
      Print the layout as JSON.

Structures ([MS-VHDX]; little-endian; GUIDs in Microsoft's layout):
  0: "vhdxfile", creator (UTF-16LE). 64 KiB, 128 KiB: headers (4 KiB):
    0 "head", 4 CRC-32C (of the 4 KiB, this field zero), 8 sequence,
    16 file write GUID, 32 data write GUID, 48 log GUID, 64 log version 0,
    66 version 1, 68 log length, 72 log offset.
  192 KiB, 256 KiB: region tables (64 KiB): 0 "regi", 4 CRC-32C, 8 count;
    entries of 32 bytes from 16: GUID, offset (8), length (4), required.
  Written here: log at 1 MiB (1 MiB), metadata region at 2 MiB (1 MiB):
    table "metadata", count at 10, entries of 32 bytes from 32: item GUID,
    offset (4, from the region's start), length (4), flags (4: bit 2
    required); items from 64 KiB. BAT at 3 MiB; blocks from there on.
  BAT entry: state in bits 0-2 (payload: 0 not present, 2 zero, 6 fully,
    7 partially present; sector bitmap: 6 present), file offset in MiB in
    bits 20-63; after every chunk_ratio = 2^23 * lss / block_size payload
    entries, the sector bitmap entry of that chunk. Sector bitmap: bit i
    (byte i / 8, bit i % 8) for sector i of the chunk.
  Log entry: header sector (0 "loge", 4 CRC-32C of the whole entry, 8
    length, 12 tail, 16 sequence, 24 descriptor count, 32 log GUID,
    48 flushed file offset, 56 last file offset), descriptors of 32 bytes
    from 64 ("zero": 8 length, 16 offset, 24 sequence; "desc": 4 trailing
    4 bytes, 8 leading 8 bytes, 16 offset, 24 sequence), then one data
    sector per "desc" ("data", 4 sequence high, 8..4092 the sector's bytes
    8..4092, 4092 sequence low).
"""
import json
import os
import struct
import sys
import uuid

MIB = 1 << 20
POISON = 0xDB
LOG_SECTOR = 4096


def guid_bytes(s):
    return uuid.UUID(s).bytes_le


BAT_GUID = guid_bytes("2DC27766-F623-4200-9D64-115E9BFD4A08")
META_GUID = guid_bytes("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FPARAMS = guid_bytes("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VSIZE = guid_bytes("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83 = guid_bytes("BECA12AB-B2E6-4523-93EF-C309E000C746")
LSS = guid_bytes("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PSS = guid_bytes("CDA348C7-445D-4471-9CC9-E9885251C556")
LOCATOR = guid_bytes("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
LOCTYPE = guid_bytes("B04AEFB7-D19E-4A81-B789-25B8E9445913")

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(data, crc=0xFFFFFFFF):
    t = _T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def csum(buf, at):
    """CRC-32C of buf with the 4 bytes at `at` zero, stored there."""
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    struct.pack_into("<I", b, at, crc32c(b) ^ 0xFFFFFFFF)
    return b


def parse_size(s):
    s = s.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if s[-1].upper() in mult:
        return int(s[:-1]) * mult[s[-1].upper()]
    return int(s, 0)


# ------------------------------------------------------------------ read

class Img:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = bytearray(f.read())
        d = self.data
        assert d[:8] == b"vhdxfile", "not a VHDX"
        hs = []
        for off in (64 << 10, 128 << 10):
            h = d[off:off + 4096]
            if h[:4] == b"head" and struct.unpack_from("<I", h, 4)[0] == \
                    struct.unpack_from("<I", csum(h, 4), 4)[0]:
                hs.append((struct.unpack_from("<Q", h, 8)[0], off))
        assert hs, "no valid header"
        self.hdr_off = max(hs)[1]
        h = d[self.hdr_off:self.hdr_off + 4096]
        self.data_write = bytes(h[32:48])
        self.log_len, self.log_off = struct.unpack_from("<IQ", h, 68)
        rt = d[192 << 10:256 << 10]
        n = struct.unpack_from("<I", rt, 8)[0]
        for i in range(n):
            e = rt[16 + 32 * i:48 + 32 * i]
            off, ln = struct.unpack_from("<QI", e, 16)
            if bytes(e[:16]) == BAT_GUID:
                self.bat_off, self.bat_len = off, ln
            elif bytes(e[:16]) == META_GUID:
                self.meta_off, self.meta_len = off, ln
        mt = d[self.meta_off:self.meta_off + (64 << 10)]
        n = struct.unpack_from("<H", mt, 10)[0]
        self.has_parent = False
        for i in range(n):
            e = mt[32 + 32 * i:64 + 32 * i]
            off, ln = struct.unpack_from("<II", e, 16)
            item = d[self.meta_off + off:self.meta_off + off + ln]
            g = bytes(e[:16])
            if g == FPARAMS:
                self.block_size, flags = struct.unpack_from("<II", item)
                self.has_parent = bool(flags & 2)
            elif g == VSIZE:
                self.size = struct.unpack_from("<Q", item)[0]
            elif g == LSS:
                self.lss = struct.unpack_from("<I", item)[0]
        self.chunk = (1 << 23) * self.lss // self.block_size

    def bat_index(self, blk):
        return blk + blk // self.chunk

    def bat(self, idx):
        return struct.unpack_from("<Q", self.data, self.bat_off + 8 * idx)[0]


# ------------------------------------------------------------------ write

def header(seq, file_write, data_write, log_guid, log_off, log_len):
    h = bytearray(4096)
    h[0:4] = b"head"
    struct.pack_into("<Q", h, 8, seq)
    h[16:32] = file_write
    h[32:48] = data_write
    h[48:64] = log_guid
    struct.pack_into("<HHIQ", h, 64, 0, 1, log_len, log_off)
    return csum(h, 4)


def region_table(entries):
    rt = bytearray(64 << 10)
    rt[0:4] = b"regi"
    struct.pack_into("<I", rt, 8, len(entries))
    for i, (g, off, ln) in enumerate(entries):
        rt[16 + 32 * i:32 + 32 * i] = g
        struct.pack_into("<QII", rt, 32 + 32 * i, off, ln, 1)
    return csum(rt, 4)


def utf16(s):
    return s.encode("utf-16-le")


def locator(pairs):
    """The parent locator item: type GUID, count, entries, UTF-16 keys and
    values."""
    head = bytearray(LOCTYPE + struct.pack("<HH", 0, len(pairs)))
    at = 20 + 12 * len(pairs)
    ents, blob = bytearray(), bytearray()
    for k, v in pairs:
        kb, vb = utf16(k), utf16(v)
        ents += struct.pack("<IIHH", at + len(blob), at + len(blob) + len(kb),
                            len(kb), len(vb))
        blob += kb + vb
    return bytes(head + ents + blob)


def write_vhdx(out, size, block_size, lss, pss, blocks, bitmaps,
               parent_pairs=None, fixed=False, nolog=False):
    """blocks: {blk: (state, bytes or None)}; bitmaps: {chunk: bytearray}."""
    chunk = (1 << 23) * lss // block_size
    nblk = (size + block_size - 1) // block_size
    if parent_pairs is not None:
        nbat = (nblk + chunk - 1) // chunk * (chunk + 1)
    else:
        nbat = nblk + (nblk - 1) // chunk
    bat_len = (nbat * 8 + MIB - 1) // MIB * MIB
    log_off, meta_off, bat_off = MIB, 2 * MIB, 3 * MIB
    log_len = MIB
    if nolog:
        log_len, meta_off, bat_off = 0, MIB, 2 * MIB
    f = bytearray(bat_off + bat_len)
    f[0:8] = b"vhdxfile"
    cr = utf16("mkvhdx.py test")
    f[8:8 + len(cr)] = cr
    fw, dw = uuid.uuid4().bytes_le, uuid.uuid4().bytes_le
    zero = bytes(16)
    f[64 << 10:(64 << 10) + 4096] = header(1, fw, dw, zero, log_off,
                                           log_len)
    f[128 << 10:(128 << 10) + 4096] = header(2, fw, dw, zero, log_off,
                                            log_len)
    rt = region_table([(BAT_GUID, bat_off, bat_len),
                       (META_GUID, meta_off, MIB)])
    f[192 << 10:256 << 10] = rt
    f[256 << 10:320 << 10] = rt
    items = [(FPARAMS, struct.pack("<II", block_size,
                                   (2 if parent_pairs is not None else 0) |
                                   (1 if fixed else 0)), 4),
             (VSIZE, struct.pack("<Q", size), 6),
             (PAGE83, uuid.uuid4().bytes_le, 6),
             (LSS, struct.pack("<I", lss), 6),
             (PSS, struct.pack("<I", pss), 4)]
    if parent_pairs is not None:
        items.append((LOCATOR, locator(parent_pairs), 4))
    mt = bytearray(64 << 10)
    mt[0:8] = b"metadata"
    struct.pack_into("<H", mt, 10, len(items))
    at = 64 << 10
    for i, (g, val, flags) in enumerate(items):
        mt[32 + 32 * i:48 + 32 * i] = g
        struct.pack_into("<III", mt, 48 + 32 * i, at, len(val), flags)
        f[meta_off + at:meta_off + at + len(val)] = val
        at += (len(val) + 4095) // 4096 * 4096
    f[meta_off:meta_off + len(mt)] = mt
    end = len(f)
    for blk in sorted(blocks):
        state, data = blocks[blk]
        off = 0
        if data is not None:
            off = end
            f += data.ljust(block_size, b"\0")
            end += block_size
        struct.pack_into("<Q", f, bat_off + 8 * (blk + blk // chunk),
                         off | state)
    for c in sorted(bitmaps):
        off = end
        f += bitmaps[c]
        end += MIB
        struct.pack_into("<Q", f, bat_off + 8 * (c * (chunk + 1) + chunk),
                         off | 6)
    with open(out, "wb") as fo:
        fo.write(f)
    return dw


def cmd_new(args):
    size = parse_size(args["--size"])
    bs = parse_size(args.get("--block-size", "1M"))
    lss = int(args.get("--lss", "512"))
    pss = int(args.get("--pss", "4096"))
    fixed = "--fixed" in args
    blocks = {}
    raw = None
    if "--from" in args:
        raw = open(args["--from"], "rb")
    for blk in range((size + bs - 1) // bs):
        data = b""
        if raw:
            raw.seek(blk * bs)
            data = raw.read(min(bs, size - blk * bs))
        if fixed or data.strip(b"\0"):
            blocks[blk] = (6, data)
    write_vhdx(args["OUT"], size, bs, lss, pss, blocks, {}, fixed=fixed,
               nolog="--no-log" in args)


def parse_writes(args, key, n):
    out = []
    for w in args.get(key, []):
        parts = w.split(":")
        out.append(tuple(parse_size(p) if i < 2 else int(p, 0)
                         for i, p in enumerate(parts[:n])))
    return out


def cmd_diff(args):
    p = Img(args["PARENT"])
    size, lss = p.size, p.lss
    bs = parse_size(args.get("--block-size", str(p.block_size)))
    chunk = (1 << 23) * lss // bs
    spb = bs // lss
    writes = parse_writes(args, "--write", 3)
    zeros = parse_writes(args, "--zero", 2)
    data, bits = {}, {}
    for off, ln, byte in writes:
        assert off % lss == 0 and ln % lss == 0 and off + ln <= size
        for s in range(off // lss, (off + ln) // lss):
            blk, i = divmod(s, spb)
            if blk not in data:
                data[blk] = bytearray([POISON]) * bs
                bits[blk] = set()
            data[blk][i * lss:(i + 1) * lss] = bytes([byte]) * lss
            bits[blk].add(i)
    blocks, bitmaps = {}, {}
    for blk in data:
        if len(bits[blk]) == spb:
            blocks[blk] = (6, bytes(data[blk]))
            continue
        blocks[blk] = (7, bytes(data[blk]))
        c = blk // chunk
        bm = bitmaps.setdefault(c, bytearray(MIB))
        for i in bits[blk]:
            k = (blk % chunk) * spb + i
            bm[k // 8] |= 1 << (k % 8)
    for off, ln in zeros:
        assert off % bs == 0 and ln % bs == 0
        for blk in range(off // bs, (off + ln) // bs):
            blocks[blk] = (2, None)
    link = args.get("--linkage")
    if not link:
        link = "{%s}" % uuid.UUID(bytes_le=p.data_write)
    pairs = [("parent_linkage", link),
             ("relative_path", args.get("--relative",
                                        ".\\" + os.path.basename(p.path)))]
    if "--absolute" in args:
        pairs.append(("absolute_win32_path", args["--absolute"]))
    if "--volume" in args:
        pairs.append(("volume_path", args["--volume"]))
    write_vhdx(args["OUT"], size, bs, lss, 4096, blocks, bitmaps, pairs,
               nolog="--no-log" in args)
    if "--expect" in args:
        with open(args["--parent-raw"], "rb") as f:
            raw = bytearray(f.read())
        assert len(raw) == size
        for off, ln, byte in writes:
            raw[off:off + ln] = bytes([byte]) * ln
        for off, ln in zeros:
            raw[off:off + ln] = bytes(ln)
        with open(args["--expect"], "wb") as f:
            f.write(raw)


# ------------------------------------------------------------------ log

def log_entry(seq, descs, pages, guid, tail, flushed, last, bad=False):
    """descs: list of ("zero", off, len) / ("desc", off); pages: the 4 KiB
    pages of the "desc" ones, in order."""
    n = len(descs)
    dsec = (64 + 32 * n + 4095) // 4096
    total = (dsec + len(pages)) * 4096
    e = bytearray(total)
    e[0:4] = b"loge"
    struct.pack_into("<IIQI", e, 8, total, tail, seq, n)
    e[32:48] = guid
    struct.pack_into("<QQ", e, 48, flushed, last)
    pi = 0
    for i, d in enumerate(descs):
        at = 64 + 32 * i
        if d[0] == "zero":
            e[at:at + 4] = b"zero"
            struct.pack_into("<QQQ", e, at + 8, d[2], d[1], seq)
        else:
            pg = pages[pi]
            e[at:at + 4] = b"desc"
            e[at + 4:at + 8] = pg[4092:4096]
            e[at + 8:at + 16] = pg[0:8]
            struct.pack_into("<QQ", e, at + 16, d[1], seq)
            s = (dsec + pi) * 4096
            e[s:s + 4] = b"data"
            struct.pack_into("<I", e, s + 4, seq >> 32)
            e[s + 8:s + 4092] = pg[8:4092]
            struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
            pi += 1
    e = csum(e, 4)
    if bad:
        e[100] ^= 0xFF
    return e


def cmd_log(args):
    img = Img(args["IMG"])
    assert not img.has_parent
    d = img.data
    bs = img.block_size
    size0 = len(d)
    end = (size0 + MIB - 1) // MIB * MIB
    # Changes as (off, page bytes) and zero ranges, in order.
    changes = []
    shadow = {}  # file page offset -> current bytes, as the log leaves it

    def page(off):
        if off in shadow:
            return bytearray(shadow[off])
        return bytearray(d[off:off + 4096].ljust(4096, b"\0"))

    newblk = {}
    for off, ln, byte in parse_writes(args, "--write", 3):
        assert off % 4096 == 0 and ln % 4096 == 0
        for p in range(off, off + ln, 4096):
            blk = p // bs
            ent = img.bat(img.bat_index(blk))
            if blk in newblk:
                host = newblk[blk]
            elif ent & 7 == 6:
                host = ent & ~0xFFFFF
            else:
                host = end
                end += bs
                newblk[blk] = host
                changes.append(("zero", host, bs))
                for q in range(host, host + bs, 4096):
                    shadow[q] = bytes(4096)
                bo = img.bat_off + 8 * img.bat_index(blk)
                bp = bo // 4096 * 4096
                pg = page(bp)
                struct.pack_into("<Q", pg, bo - bp, host | 6)
                shadow[bp] = bytes(pg)
                changes.append(("desc", bp, bytes(pg)))
            fo = host + p % bs
            pg = bytes([byte]) * 4096
            shadow[fo] = pg
            changes.append(("desc", fo, pg))
    for off, ln in parse_writes(args, "--zero", 2):
        assert off % 4096 == 0 and ln % 4096 == 0
        blk = off // bs
        ent = img.bat(img.bat_index(blk))
        assert ent & 7 == 6 and (off + ln - 1) // bs == blk
        changes.append(("zero", (ent & ~0xFFFFF) + off % bs, ln))
    per = int(args.get("--per-entry", "4"))
    groups = [changes[i:i + per] for i in range(0, len(changes), per)]
    guid = uuid.uuid4().bytes_le
    nsec = img.log_len // 4096
    at = int(args.get("--at", "0"))
    seq0 = 1000
    entries = []
    for k, g in enumerate(groups):
        descs = [(c[0], c[1], c[2]) if c[0] == "zero" else (c[0], c[1])
                 for c in g]
        pages = [c[2] for c in g if c[0] == "desc"]
        entries.append(log_entry(seq0 + k, descs, pages, guid, at * 4096,
                                 size0, end))
    if "--torn" in args:
        entries.append(log_entry(seq0 + len(groups),
                                 [("desc", MIB * 3)], [bytes(4096)], guid,
                                 at * 4096, size0, end, bad=True))
    log = bytearray(d[img.log_off:img.log_off + img.log_len])
    pos = at
    for e in entries:
        for i in range(0, len(e), 4096):
            s = (pos % nsec) * 4096
            log[s:s + 4096] = e[i:i + 4096]
            pos += 1
    used = pos - at
    if "--stale" in args:
        pos += 1
        s = (pos % nsec) * 4096
        log[s:s + 4096] = bytes(4096)  # a gap: a sector that is no entry
        pos += 1
        ent = img.bat(img.bat_index(0))
        assert ent & 7 == 6
        st = log_entry(10, [("desc", ent & ~0xFFFFF)], [b"\xee" * 4096],
                       guid, (pos % nsec) * 4096, size0, size0)
        for i in range(0, len(st), 4096):
            s = (pos % nsec) * 4096
            log[s:s + 4096] = st[i:i + 4096]
            pos += 1
        used = pos - at
    assert used <= nsec, "log too small"
    d[img.log_off:img.log_off + img.log_len] = log
    for off in (64 << 10, 128 << 10):
        h = bytearray(d[off:off + 4096])
        h[48:64] = guid
        d[off:off + 4096] = csum(h, 4)
    with open(args["IMG"], "wb") as f:
        f.write(d)


def cmd_fix(args):
    with open(args["IMG"], "r+b") as f:
        d = bytearray(f.read())
        for off, ln in ((64 << 10, 4096), (128 << 10, 4096),
                        (192 << 10, 64 << 10), (256 << 10, 64 << 10)):
            d[off:off + ln] = csum(d[off:off + ln], 4)
        f.seek(0)
        f.write(d)
    # Log entries that lie whole inside the log the current header names
    # (none when the poked image no longer parses).
    try:
        img = Img(args["IMG"])
    except Exception:
        return
    d = img.data
    end = img.log_off + img.log_len
    if end > len(d):
        return
    for s in range(img.log_off, end, 4096):
        ln = struct.unpack_from("<I", d, s + 8)[0]
        if d[s:s + 4] == b"loge" and ln % 4096 == 0 and 0 < ln <= end - s:
            d[s:s + ln] = csum(d[s:s + ln], 4)
    with open(args["IMG"], "wb") as f:
        f.write(d)


def cmd_info(args):
    img = Img(args["IMG"])
    nblk = (img.size + img.block_size - 1) // img.block_size
    print(json.dumps({
        "header": img.hdr_off, "size": img.size, "block_size": img.block_size,
        "lss": img.lss, "log": [img.log_off, img.log_len],
        "bat": [img.bat_off, img.bat_len], "meta": [img.meta_off,
                                                    img.meta_len],
        "has_parent": img.has_parent, "chunk_ratio": img.chunk,
        "data_write_guid": str(uuid.UUID(bytes_le=img.data_write)),
        "blocks": [[b, img.bat(img.bat_index(b)) & 7,
                    img.bat(img.bat_index(b)) & ~0xFFFFF]
                   for b in range(nblk)
                   if img.bat(img.bat_index(b)) & 7]}, indent=1))


FLAGS = {"--fixed", "--stale", "--torn", "--no-log"}
MULTI = {"--write", "--zero"}
POS = {"new": ["OUT"], "diff": ["PARENT", "OUT"], "log": ["IMG"],
       "fix": ["IMG"], "info": ["IMG"]}


def main(argv):
    if len(argv) < 2 or argv[1] not in POS:
        sys.exit(__doc__)
    cmd = argv[1]
    args = {k: [] for k in MULTI}
    pos = []
    it = iter(argv[2:])
    for a in it:
        if a in FLAGS:
            args[a] = True
        elif a.startswith("--"):
            v = next(it)
            if a in MULTI:
                args[a].append(v)
            else:
                args[a] = v
        else:
            pos.append(a)
    if len(pos) != len(POS[cmd]):
        sys.exit(__doc__)
    args.update(zip(POS[cmd], pos))
    {"new": cmd_new, "diff": cmd_diff, "log": cmd_log, "fix": cmd_fix,
     "info": cmd_info}[cmd](args)


if __name__ == "__main__":
    main(sys.argv)
