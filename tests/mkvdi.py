#!/usr/bin/env python3
"""tests/mkvdi.py — VDI images for the tests, where no tool here writes
them: differencing VDIs (VirtualBox's snapshots; VirtualBox is not in
Debian main, qemu-img writes only normal and fixed VDIs). Also normal
and fixed base images, so that a chain can be made from one raw file
(qemu-img reads those, which checks the builder).

Layout (VirtualBox VDICore.h, VDIHEADER1 of version 1.1): a 512-byte
header, the block map (u32 per block: index of the stored block, or
0xffffffff free, 0xfffffffe zero), the stored blocks.

  mkvdi.py base RAW OUT [--static] [--block-size N]
  mkvdi.py diff PARENT OUT --cur CUR [--write OFF:LEN:BYTE]... [--zero OFF:LEN]...
  mkvdi.py set FILE FIELD VALUE      (uuid, modify, link, parent-modify: hex)
  mkvdi.py show FILE

`diff` makes a differencing image over PARENT (its uuidLinkage is the
parent's uuidCreate, its uuidParentModify the parent's uuidModify). CUR
is the raw disk the chain showed before this layer; the writes are
applied to it in place, and every block they touch is stored whole in
the child (a VDI block has no sector bitmap: VirtualBox stores the whole
merged block). --zero marks the whole blocks it covers as zeroed.
"""
import argparse
import os
import struct
import sys
import uuid as uuidlib

SIG = 0xbeda107f
VERSION = 0x00010001
HEADER_SIZE = 0x180
FREE = 0xffffffff
ZERO = 0xfffffffe
FIELDS = {'uuid': 0x188, 'modify': 0x198, 'link': 0x1a8, 'parent-modify': 0x1b8}


def header(kind, disk_size, block_size, nblocks, nalloc, bmap_off, data_off,
           uid, modify, link=b'\0' * 16, parent_mod=b'\0' * 16):
    h = bytearray(512)
    h[0:40] = b'<<< Oracle VM VirtualBox Disk Image >>>\n'
    struct.pack_into('<III', h, 0x40, SIG, VERSION, HEADER_SIZE)
    struct.pack_into('<II', h, 0x4c, kind, 0)
    struct.pack_into('<II', h, 0x154, bmap_off, data_off)
    struct.pack_into('<IIII', h, 0x15c, 0, 0, 0, 512)
    struct.pack_into('<QIII', h, 0x170, disk_size, block_size, 0, nblocks)
    struct.pack_into('<I', h, 0x184, nalloc)
    h[0x188:0x198] = uid
    h[0x198:0x1a8] = modify
    h[0x1a8:0x1b8] = link
    h[0x1b8:0x1c8] = parent_mod
    return h


def layout(nblocks):
    bmap_off = 512
    data_off = (bmap_off + 4 * nblocks + 511) // 512 * 512
    return bmap_off, data_off


def write_image(out, kind, disk_size, bs, bmap, blocks, link=None, pmod=None):
    nblocks = len(bmap)
    bmap_off, data_off = layout(nblocks)
    h = header(kind, disk_size, bs, nblocks, len(blocks), bmap_off, data_off,
               uuidlib.uuid4().bytes_le, uuidlib.uuid4().bytes_le,
               link or b'\0' * 16, pmod or b'\0' * 16)
    with open(out, 'wb') as f:
        f.write(h)
        f.write(struct.pack('<%dI' % nblocks, *bmap))
        f.seek(data_off)
        for b in blocks:
            f.write(b)


def cmd_base(a):
    raw = open(a.raw, 'rb').read()
    bs = a.block_size
    n = (len(raw) + bs - 1) // bs
    bmap, blocks = [], []
    for i in range(n):
        chunk = raw[i * bs:(i + 1) * bs].ljust(bs, b'\0')
        if a.static or chunk.count(0) != bs:
            bmap.append(len(blocks))
            blocks.append(chunk)
        else:
            bmap.append(FREE)
    write_image(a.out, 2 if a.static else 1, len(raw), bs, bmap, blocks)


def read_header(path):
    with open(path, 'rb') as f:
        h = f.read(512)
    if struct.unpack_from('<I', h, 0x40)[0] != SIG:
        sys.exit('%s: not a VDI' % path)
    return h


def cmd_diff(a):
    ph = read_header(a.parent)
    disk_size, bs, = struct.unpack_from('<QI', ph, 0x170)
    nblocks = struct.unpack_from('<I', ph, 0x180)[0]
    with open(a.cur, 'r+b') as f:
        cur = bytearray(f.read())
        touched, zeroed = set(), set()
        for w in a.write:
            off, ln, byte = (int(x, 0) for x in w.split(':'))
            cur[off:off + ln] = bytes([byte]) * ln
            touched.update(range(off // bs, (off + ln - 1) // bs + 1))
        for z in a.zero:
            off, ln = (int(x, 0) for x in z.split(':'))
            for b in range(off // bs, (off + ln - 1) // bs + 1):
                zeroed.add(b)
                touched.discard(b)
                cur[b * bs:(b + 1) * bs] = bytes(min(bs, len(cur) - b * bs))
        f.seek(0)
        f.write(cur)
    bmap, blocks = [], []
    for i in range(nblocks):
        if i in zeroed:
            bmap.append(ZERO)
        elif i in touched:
            bmap.append(len(blocks))
            blocks.append(bytes(cur[i * bs:(i + 1) * bs]).ljust(bs, b'\0'))
        else:
            bmap.append(FREE)
    write_image(a.out, 4, disk_size, bs, bmap, blocks,
                link=ph[0x188:0x198], pmod=ph[0x198:0x1a8])


def cmd_set(a):
    with open(a.file, 'r+b') as f:
        f.seek(FIELDS[a.field])
        f.write(bytes.fromhex(a.value))


def cmd_show(a):
    h = read_header(a.file)
    for k, o in FIELDS.items():
        print(k, h[o:o + 16].hex())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('base')
    b.add_argument('raw')
    b.add_argument('out')
    b.add_argument('--static', action='store_true')
    b.add_argument('--block-size', type=int, default=1 << 20)
    d = sub.add_parser('diff')
    d.add_argument('parent')
    d.add_argument('out')
    d.add_argument('--cur', required=True)
    d.add_argument('--write', action='append', default=[])
    d.add_argument('--zero', action='append', default=[])
    s = sub.add_parser('set')
    s.add_argument('file')
    s.add_argument('field', choices=FIELDS)
    s.add_argument('value')
    w = sub.add_parser('show')
    w.add_argument('file')
    a = p.parse_args()
    {'base': cmd_base, 'diff': cmd_diff, 'set': cmd_set, 'show': cmd_show}[a.cmd](a)


if __name__ == '__main__':
    main()
