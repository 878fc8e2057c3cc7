#!/usr/bin/env python3
"""tests/mksesparse.py — VMDK seSparse images (ESXi 6.5+ snapshots) for
the tests. No tool here writes seSparse and QEMU only reads it, so this
writes the format as QEMU's reader (block/vmdk.c, vmdk_open_se_sparse and
get_cluster_offset) describes it; the tests check every image it makes
with `qemu-img convert` as well as through vdmount.

  mksesparse.py OUT.vmdk --size BYTES --cur CUR [--parent P.vmdk]
      [--write OFF:LEN:BYTE]... [--zero OFF:LEN]... [--unmap OFF:LEN]...
      [--grain-base N] [--reverse-tables]

OUT.vmdk is a descriptor (createType "seSparse", one SESPARSE extent
OUT-sesparse.vmdk); with --parent it is a delta over P.vmdk (its
parentCID is P's CID, found in P's descriptor text). CUR is the raw disk
the chain showed before this layer: the writes are applied to it in
place, and each 4 KiB grain they touch is stored whole. --zero and
--unmap mark whole grains zeroed or unmapped (both read as zeros).
--grain-base N stores the first grain at index N (the index is split
into two fields of the table entry above 4095); --reverse-tables places
the grain tables in the reverse order of the directory.

Layout, in sectors: constant header 0, volatile header 1, grain directory
from 8 (u64 entries 0x10000000_IIIIIIII), grain tables of 64 sectors
(4096 u64 entries), then the grains of 8 sectors.
"""
import argparse
import os
import random
import re
import struct

SECTOR = 512
GRAIN = 4096
GTES = 4096
GT_SECTORS = 64


def parent_cid(path):
    with open(path, 'rb') as f:
        text = f.read(1 << 16).decode('latin-1')
    m = re.search(r'^CID=([0-9a-fA-F]+)', text, re.M)
    if not m:
        raise SystemExit('%s: no CID in its descriptor' % path)
    return int(m.group(1), 16)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--size', type=int, required=True)
    p.add_argument('--cur', required=True)
    p.add_argument('--parent')
    p.add_argument('--write', action='append', default=[])
    p.add_argument('--zero', action='append', default=[])
    p.add_argument('--unmap', action='append', default=[])
    p.add_argument('--grain-base', type=int, default=0)
    p.add_argument('--reverse-tables', action='store_true')
    a = p.parse_args()

    cap = a.size // SECTOR
    with open(a.cur, 'r+b') as f:
        cur = bytearray(f.read())
        assert len(cur) == a.size, 'CUR must be the disk size'
        data, special = set(), {}
        for w in a.write:
            off, ln, b = (int(x, 0) for x in w.split(':'))
            cur[off:off + ln] = bytes([b]) * ln
            for g in range(off // GRAIN, (off + ln - 1) // GRAIN + 1):
                data.add(g)
                special.pop(g, None)
        for kind, lst in ((2, a.zero), (1, a.unmap)):
            for z in lst:
                off, ln = (int(x, 0) for x in z.split(':'))
                for g in range(off // GRAIN, (off + ln - 1) // GRAIN + 1):
                    special[g] = kind
                    data.discard(g)
                    cur[g * GRAIN:(g + 1) * GRAIN] = bytes(
                        len(cur[g * GRAIN:(g + 1) * GRAIN]))
        f.seek(0)
        f.write(cur)

    span = GTES * GRAIN
    gd_entries = (a.size + span - 1) // span
    gd_sectors = (gd_entries * 8 + SECTOR - 1) // SECTOR
    gd_off = 8
    tables = sorted({g // GTES for g in data} | {g // GTES for g in special})
    order = list(reversed(tables)) if a.reverse_tables else tables
    slot = {t: i for i, t in enumerate(order)}
    gt_off = gd_off + gd_sectors
    grains_off = (gt_off + len(tables) * GT_SECTORS + 7) // 8 * 8

    gd = bytearray(gd_sectors * SECTOR)
    for t in tables:
        struct.pack_into('<Q', gd, t * 8, 0x1000000000000000 | slot[t])
    gts = bytearray(len(tables) * GT_SECTORS * SECTOR)
    grains = []
    for g in sorted(data):
        c = a.grain_base + len(grains)
        e = 3 << 60 | (c & 0xfff) << 48 | c >> 12
        t = g // GTES
        struct.pack_into('<Q', gts, slot[t] * GT_SECTORS * SECTOR + (g % GTES) * 8, e)
        grains.append(bytes(cur[g * GRAIN:(g + 1) * GRAIN]).ljust(GRAIN, b'\0'))
    for g, kind in special.items():
        t = g // GTES
        struct.pack_into('<Q', gts, slot[t] * GT_SECTORS * SECTOR + (g % GTES) * 8,
                         kind << 60)

    ch = bytearray(SECTOR)
    struct.pack_into('<26Q', ch, 0,
                     0xcafebabe, 0x0000000200000001, cap, 8, GT_SECTORS, 0,
                     0, 0, 0, 0,
                     1, 1,          # volatile header
                     2, 1,          # journal header
                     3, 1,          # journal
                     gd_off, gd_sectors,
                     gt_off, len(tables) * GT_SECTORS,
                     0, 0,          # free bitmap
                     0, 0,          # backmap
                     grains_off, (a.grain_base + len(grains)) * 8)
    vh = bytearray(SECTOR)
    struct.pack_into('<4Q', vh, 0, 0xcafecafe, 0, 1, 0)

    base = a.out[:-5] if a.out.endswith('.vmdk') else a.out
    ext = base + '-sesparse.vmdk'
    with open(ext, 'wb') as f:
        f.write(ch)
        f.write(vh)
        f.seek(gd_off * SECTOR)
        f.write(gd)
        f.seek(gt_off * SECTOR)
        f.write(gts)
        f.seek((grains_off + a.grain_base * 8) * SECTOR)
        for g in grains:
            f.write(g)
        f.truncate(max(f.tell(), (grains_off + a.grain_base * 8) * SECTOR))

    cid = random.randrange(1, 0xfffffffe)
    lines = ['# Disk DescriptorFile', 'version=1', 'encoding="UTF-8"',
             'CID=%08x' % cid]
    if a.parent:
        lines.append('parentCID=%08x' % parent_cid(a.parent))
    else:
        lines.append('parentCID=ffffffff')
    lines.append('createType="seSparse"')
    if a.parent:
        lines.append('parentFileNameHint="%s"' % os.path.relpath(
            a.parent, os.path.dirname(os.path.abspath(a.out))))
    lines += ['', '# Extent description',
              'RW %d SESPARSE "%s"' % (cap, os.path.basename(ext)), '',
              '# The Disk Data Base', '#DDB', '',
              'ddb.virtualHWVersion = "14"', 'ddb.grain = "8"', '']
    with open(a.out, 'w') as f:
        f.write('\n'.join(lines))


if __name__ == '__main__':
    main()
