#!/usr/bin/python3
"""mkwof.py — files compressed as Windows' Compact OS (WOF) stores them,
for the NTFS tests, with compressors of our own and, where libwim15 is
installed, wimlib's.

With no Windows here, the test images' WofCompressedData streams are
made by this script: an XPRESS Huffman encoder ([MS-XCA] 2.1/2.2) and an
LZX encoder (WIM's LZX: 32 KiB chunks, E8 translation with the fixed size
12000000, verbatim, aligned-offset and uncompressed blocks), both greedy
LZ77 with canonical Huffman codes. When wimlib's library (libwim.so.15)
loads, every chunk we make is also decoded by wimlib's decompressor and
must give the original bytes back (a reader we did not write), and the
same plaintexts are also compressed by wimlib's compressors (a writer we
did not write).

  mkwof.py cases OUTDIR   the test cases: OUTDIR/NAME.plain (the original
                          bytes, the oracle), NAME.stream (the stream),
                          NAME.rp (the reparse point, setfattr's 0x...),
                          and OUTDIR/cases.txt: NAME SIZE EXPECT FORMAT
                          ROUTE per line (EXPECT: ok, eio or symlink)
  mkwof.py seeds DIR      fuzz seeds: DIR/xpress/ and DIR/lzx/, each a
                          le16 (chunk size - 1) then one compressed chunk
  mkwof.py big FILE.rp FILE.stream SIZE  an LZX file of SIZE bytes (> 4
                          GiB: 8-byte table entries) cycling 7 chunks;
                          prints the sha256 of chunk variants in order,
                          then that of the last (partial) chunk
  mkwof.py efs IMG INO    mark MFT record INO of IMG encrypted (EFS)
  mkwof.py put FILE FORMAT SIZE  make FILE, on an ntfs-3g mount, a WOF
                          file (its stream set as an xattr: < 64 KiB)
"""
import ctypes
import hashlib
import heapq
import os
import random
import struct
import sys

XPRESS4K, LZX, XPRESS8K, XPRESS16K = 0, 1, 2, 3
FORMATS = {"xpress4k": XPRESS4K, "lzx": LZX, "xpress8k": XPRESS8K,
           "xpress16k": XPRESS16K}
CHUNK = {XPRESS4K: 4096, LZX: 32768, XPRESS8K: 8192, XPRESS16K: 16384}


# ---------------------------------------------------------------- Huffman

def huff_lengths(freq, maxlen, need_two=True):
    """Code lengths (complete code, at most maxlen bits) for freq; all
    zeros when nothing is used and need_two is False."""
    used = [s for s, f in enumerate(freq) if f]
    n = len(freq)
    if not used:
        if not need_two:
            return [0] * n
        used = []
    freq = list(freq)
    # A complete code needs two symbols at least.
    while len([f for f in freq if f]) < 2:
        for s in range(n):
            if not freq[s]:
                freq[s] = 1
                break
    scale = 0
    while True:
        f2 = [((f >> scale) or 1) if f else 0 for f in freq]
        heap = [(f, i, (s,)) for i, (s, f) in enumerate((s, f) for s, f in enumerate(f2) if f)]
        heapq.heapify(heap)
        lens = [0] * n
        cnt = len(heap)
        while len(heap) > 1:
            fa, _, a = heapq.heappop(heap)
            fb, _, b = heapq.heappop(heap)
            for s in a + b:
                lens[s] += 1
            cnt += 1
            heapq.heappush(heap, (fa + fb, cnt, a + b))
        if max(lens) <= maxlen:
            return lens
        scale += 1


def canon_codes(lens):
    """Canonical codes (MSB-first values) for lens, as the decoders
    assign them: by length, then by symbol."""
    maxlen = max(lens) if lens else 0
    count = [0] * (maxlen + 2)
    for l in lens:
        count[l] += 1
    count[0] = 0
    nxt = [0] * (maxlen + 2)
    code = 0
    for l in range(1, maxlen + 1):
        code = (code + count[l - 1]) << 1
        nxt[l] = code
    codes = [0] * len(lens)
    for s, l in enumerate(lens):
        if l:
            codes[s] = nxt[l]
            nxt[l] += 1
    return codes


# ---------------------------------------------------------------- LZ77

def match_len(d, p, i, lim):
    l = 0
    while l + 32 <= lim and d[p + l:p + l + 32] == d[i + l:i + l + 32]:
        l += 32
    while l < lim and d[p + l] == d[i + l]:
        l += 1
    return l


def lz77(d, min_len, max_len, max_off, depth=8):
    """Greedy LZ77: a list of ints (literals) and (length, offset)."""
    head = {}
    out = []
    i, n = 0, len(d)
    while i < n:
        best, boff = 0, 0
        if i + 3 <= n:
            key = d[i:i + 3]
            cands = head.get(key)
            if cands:
                for p in reversed(cands[-depth:]):
                    off = i - p
                    if off > max_off:
                        break
                    l = match_len(d, p, i, min(max_len, n - i))
                    if l > best:
                        best, boff = l, off
        step = best if best >= min_len else 1
        if step > 1:
            out.append((best, boff))
        else:
            out.append(d[i])
        for k in range(i, min(i + step, n - 2)):
            key = d[k:k + 3]
            lst = head.get(key)
            if lst is None:
                head[key] = [k]
            else:
                lst.append(k)
                if len(lst) > 32:
                    del lst[:16]
        i += step
    return out


# ---------------------------------------------------------------- XPRESS

class XpressWriter:
    """[MS-XCA]'s layout: 16-bit words, most significant bit first, with
    the extra length bytes placed just after the last word the decoder
    has read when it reads them (it reads the next word as soon as fewer
    than 16 bits are left, starting with two)."""

    def __init__(self, out):
        self.out = out
        self.slots = [len(out), len(out) + 2]
        out += b"\0\0\0\0"
        self.acc = 0
        self.nbits = 0

    def bits(self, v, n):
        if not n:
            return
        self.acc = (self.acc << n) | v
        self.nbits += n
        if self.nbits > 16 * (len(self.slots) - 1):
            self.slots.append(len(self.out))
            self.out += b"\0\0"

    def byte(self, b):
        self.out.append(b)

    def finish(self):
        total = 16 * len(self.slots)
        acc = self.acc << (total - self.nbits)
        for k, pos in enumerate(self.slots):
            w = (acc >> (total - 16 * (k + 1))) & 0xFFFF
            self.out[pos:pos + 2] = struct.pack("<H", w)
        return self.out


def xpress_encode(d, eof=True, tokens=None):
    if tokens is None:
        tokens = lz77(d, 3, 65535 + 3, 65535)
    syms = []
    for t in tokens:
        if isinstance(t, int):
            syms.append((t, None))
        else:
            l, off = t
            nb = off.bit_length() - 1
            syms.append((256 + nb * 16 + min(l - 3, 15), (l, off, nb)))
    freq = [0] * 512
    for s, _ in syms:
        freq[s] += 1
    if eof:
        freq[256] += 1
    lens = huff_lengths(freq, 15)
    codes = canon_codes(lens)
    out = bytearray(lens[2 * k] | lens[2 * k + 1] << 4 for k in range(256))
    w = XpressWriter(out)
    for s, m in syms:
        w.bits(codes[s], lens[s])
        if m is None:
            continue
        l, off, nb = m
        if l - 3 >= 15:
            e = l - 3 - 15
            if e < 255:
                w.byte(e)
            else:
                w.byte(255)
                if l - 3 <= 0xFFFF:
                    for b in struct.pack("<H", l - 3):
                        w.byte(b)
                else:
                    for b in struct.pack("<HI", 0, l - 3):
                        w.byte(b)
        w.bits(off - (1 << nb), nb)
    if eof:
        w.bits(codes[256], lens[256])
    return bytes(w.finish())


# ---------------------------------------------------------------- LZX

LX_E8 = 12000000


def lx_extra(slot):
    return 0 if slot < 4 else slot // 2 - 1


def lx_base(slot):
    return slot if slot < 4 else (2 | (slot & 1)) << lx_extra(slot)


LX_SLOT_OF = []  # formatted offset -> slot, up to 32767
for _s in range(3, 30):
    _lo, _hi = lx_base(_s), lx_base(_s) + (1 << lx_extra(_s))
    LX_SLOT_OF.extend([None] * (_hi - len(LX_SLOT_OF)))
    for _f in range(_lo, _hi):
        LX_SLOT_OF[_f] = _s


def e8_translate(d):
    d = bytearray(d)
    n = len(d)
    if n <= 10:
        return d
    i = 0
    while i < n - 10:
        if d[i] != 0xE8:
            i += 1
            continue
        rel = struct.unpack_from("<i", d, i + 1)[0]
        if -i <= rel < LX_E8:
            a = rel + i if rel < LX_E8 - i else rel - LX_E8
            struct.pack_into("<i", d, i + 1, a)
        i += 5
    return d


class BitWriter:
    """LZX's bits: 16-bit little-endian words, most significant first."""

    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def bits(self, v, n):
        assert 0 <= v < (1 << n) or n == 0
        self.acc = (self.acc << n) | v
        self.n += n
        while self.n >= 16:
            self.n -= 16
            self.out += struct.pack("<H", (self.acc >> self.n) & 0xFFFF)
        self.acc &= (1 << self.n) - 1

    def align(self):
        if self.n:
            self.bits(0, 16 - self.n)


def lx_pretree_items(prev, new):
    """The pretree symbols (with extra bits) that turn prev into new."""
    items = []
    i, n = 0, len(new)
    while i < n:
        run = 1
        while i + run < n and new[i + run] == new[i]:
            run += 1
        if new[i] == 0 and run >= 20:
            r = min(run, 51)
            items.append((18, r - 20, 5, None))
            i += r
            continue
        if new[i] == 0 and run >= 4:
            r = min(run, 19)
            items.append((17, r - 4, 4, None))
            i += r
            continue
        if run >= 4 and new[i] != 0:
            r = min(run, 5)
            q = (prev[i] - new[i]) % 17
            items.append((19, r - 4, 1, q))
            i += r
            continue
        items.append(((prev[i] - new[i]) % 17, 0, 0, None))
        i += 1
    return items


def lx_write_lens(w, prev, new):
    items = lx_pretree_items(prev, new)
    freq = [0] * 20
    for s, _, _, q in items:
        freq[s] += 1
        if q is not None:
            freq[q] += 1
    pl = huff_lengths(freq, 15)
    pc = canon_codes(pl)
    for l in pl:
        w.bits(l, 4)
    for s, e, eb, q in items:
        w.bits(pc[s], pl[s])
        w.bits(e, eb)
        if q is not None:
            w.bits(pc[q], pl[q])


def lzx_encode(chunk, blocks=2, stored_first=0, aligned=True):
    """One chunk (<= 32 KiB) as LZX: stored_first bytes in an
    uncompressed block first, then the rest in `blocks` compressed
    blocks (the second and later aligned-offset when aligned)."""
    d = e8_translate(chunk)
    n = len(d)
    w = BitWriter()
    r = [1, 1, 1]
    o = 0
    if stored_first:
        size = min(stored_first, n)
        w.bits(3, 3)
        if size == 32768:
            w.bits(1, 1)
        else:
            w.bits(0, 1)
            w.bits(size, 16)
        w.align()
        out = w.out
        r = [1, 2, 3]
        out += struct.pack("<III", *r)
        out += d[:size]
        if size & 1:
            out.append(0)
        o = size
    toks = lz77(bytes(d[o:]), 3, 257, 32765)
    # Offsets are from the chunk's start: fine, the window is the chunk
    # and lz77 only looks back inside d[o:]. Cut into blocks at tokens.
    per = max(1, len(toks) // max(1, blocks))
    groups = [toks[k:k + per] for k in range(0, len(toks), per)] if toks else []
    prev_main = [0] * 496
    prev_len = [0] * 249
    for gi, g in enumerate(groups):
        is_al = aligned and gi >= 1
        items = []
        size = 0
        for t in g:
            if isinstance(t, int):
                items.append((t, None))
                size += 1
                continue
            l, off = t
            size += l
            if off == r[0]:
                slot = 0
            elif off == r[1]:
                slot = 1
                r[0], r[1] = r[1], r[0]
            elif off == r[2]:
                slot = 2
                r[0], r[2] = r[2], r[0]
            else:
                slot = LX_SLOT_OF[off + 2]
                r = [off, r[0], r[1]]
            hdr = min(l - 2, 7)
            items.append((256 + slot * 8 + hdr, (l, off, slot)))
        fm = [0] * 496
        fl = [0] * 249
        fa = [0] * 8
        for s, m in items:
            fm[s] += 1
            if m is None:
                continue
            l, off, slot = m
            if l - 2 >= 7:
                fl[l - 9] += 1
            if is_al and slot >= 3 and lx_extra(slot) >= 3:
                fa[(off + 2 - lx_base(slot)) & 7] += 1
        ml = huff_lengths(fm, 16)
        ll = huff_lengths(fl, 16, need_two=False)
        if is_al and not any(fa):
            is_al = False
        al = huff_lengths(fa, 7) if is_al else None
        w.bits(2 if is_al else 1, 3)
        if size == 32768:
            w.bits(1, 1)
        else:
            w.bits(0, 1)
            w.bits(size, 16)
        if is_al:
            for l in al:
                w.bits(l, 3)
        lx_write_lens(w, prev_main[:256], ml[:256])
        lx_write_lens(w, prev_main[256:], ml[256:])
        lx_write_lens(w, prev_len, ll)
        prev_main, prev_len = ml, ll
        mc, lc = canon_codes(ml), canon_codes(ll)
        ac = canon_codes(al) if is_al else None
        for s, m in items:
            w.bits(mc[s], ml[s])
            if m is None:
                continue
            l, off, slot = m
            if l - 2 >= 7:
                w.bits(lc[l - 9], ll[l - 9])
            if slot < 3:
                continue
            eb = lx_extra(slot)
            v = off + 2 - lx_base(slot)
            if is_al and eb >= 3:
                w.bits(v >> 3, eb - 3)
                w.bits(ac[v & 7], al[v & 7])
            else:
                w.bits(v, eb)
        o += size
    assert o == n, (o, n)
    w.align()
    return bytes(w.out)


# ---------------------------------------------------------------- wimlib

class Wimlib:
    """wimlib's chunk compressors and decompressors, through libwim15."""

    def __init__(self):
        self.lib = ctypes.CDLL("libwim.so.15")
        self.c = {}
        self.d = {}

    def _ctype(self, fmt):
        return 2 if fmt == LZX else 1

    def compress(self, fmt, data):
        key = fmt
        if key not in self.c:
            h = ctypes.c_void_p()
            rc = self.lib.wimlib_create_compressor(self._ctype(fmt), ctypes.c_size_t(CHUNK[fmt]),
                                                   0, ctypes.byref(h))
            assert rc == 0, rc
            self.c[key] = h
        out = ctypes.create_string_buffer(len(data))
        n = self.lib.wimlib_compress(data, ctypes.c_size_t(len(data)), out,
                                     ctypes.c_size_t(len(data) - 1), self.c[key])
        return out.raw[:n] if n else None

    def decompress(self, fmt, data, size):
        key = fmt
        if key not in self.d:
            h = ctypes.c_void_p()
            rc = self.lib.wimlib_create_decompressor(self._ctype(fmt), ctypes.c_size_t(CHUNK[fmt]),
                                                     ctypes.byref(h))
            assert rc == 0, rc
            self.d[key] = h
        out = ctypes.create_string_buffer(size)
        rc = self.lib.wimlib_decompress(data, ctypes.c_size_t(len(data)), out,
                                        ctypes.c_size_t(size), self.d[key])
        return out.raw if rc == 0 else None


def load_wimlib():
    try:
        return Wimlib()
    except OSError:
        return None


# ---------------------------------------------------------------- WOF

def reparse_hex(fmt, provider=2, version=1):
    body = struct.pack("<IIII", 1, provider, version, fmt)
    return "0x" + (struct.pack("<IHH", 0x80000017, len(body), 0) + body).hex()


def own_chunk(fmt, c, variant=0):
    if fmt == LZX:
        return lzx_encode(c, blocks=2 if len(c) > 8192 else 1,
                          stored_first=(1001 if variant == 1 else 0))
    return xpress_encode(c, eof=(variant != 2))


def wof_stream(data, fmt, compress):
    """The WofCompressedData stream of data: the table, then each chunk
    compressed by compress(fmt, chunk) (None: stored as it is). Returns
    (stream, chunks stored raw)."""
    cs = CHUNK[fmt]
    chunks = [data[i:i + cs] for i in range(0, len(data), cs)]
    parts = []
    raw = 0
    for k, c in enumerate(chunks):
        z = compress(fmt, c, k)
        if z is None or len(z) >= len(c):
            z = bytes(c)
            raw += 1
        parts.append(z)
    entry = "<Q" if len(data) > 0xFFFFFFFF else "<I"
    table = bytearray()
    at = 0
    for z in parts[:-1]:
        at += len(z)
        table += struct.pack(entry, at)
    return bytes(table) + b"".join(parts), raw


def gen_data(seed, size):
    """Deterministic bytes that compress some and not all: text lines,
    x86-like call instructions (E8 + target), zeros, random runs and
    repeats at many distances."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        k = rnd.randrange(6)
        if k == 0:
            for _ in range(rnd.randrange(5, 60)):
                out += b"line %d of file %d: the quick brown fox\n" % (rnd.randrange(10 ** 6), seed)
        elif k == 1:
            for _ in range(rnd.randrange(10, 200)):
                out += b"\xe8" + struct.pack("<i", rnd.randrange(-70000, 70000))
                out += bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 4)))
        elif k == 2:
            out += bytes(rnd.randrange(1, 3000))
        elif k == 3:
            out += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000)))
        elif k == 4 and len(out) > 10:
            a = rnd.randrange(len(out))
            out += out[a:a + rnd.randrange(3, 400)]
        else:
            out += bytes([rnd.randrange(256)]) * rnd.randrange(1, 300)
    return bytes(out[:size])


def check_with_wimlib(wl, fmt, chunk, z):
    """Our chunk must decode to the same bytes under wimlib's reader."""
    if wl is None or len(z) >= len(chunk):
        return
    got = wl.decompress(fmt, z, len(chunk))
    if got != bytes(chunk):
        sys.exit("mkwof: wimlib does not read back our %s chunk of %d bytes"
                 % ([k for k, v in FORMATS.items() if v == fmt][0], len(chunk)))


def cases(outdir):
    wl = load_wimlib()
    os.makedirs(outdir, exist_ok=True)
    lines = []
    checked = [0]

    def own(fmt, c, k):
        z = own_chunk(fmt, c, k % 3)
        check_with_wimlib(wl, fmt, c, z)
        checked[0] += 1 if wl else 0
        return z

    def wim(fmt, c, k):
        return wl.compress(fmt, bytes(c))

    def add(name, data, fmt, expect="ok", stream=None, rp=None, route="own"):
        if stream is None:
            stream, _ = wof_stream(data, fmt, own if route == "own" else wim)
        with open(os.path.join(outdir, name + ".plain"), "wb") as f:
            f.write(data)
        with open(os.path.join(outdir, name + ".stream"), "wb") as f:
            f.write(stream)
        with open(os.path.join(outdir, name + ".rp"), "w") as f:
            f.write((rp or reparse_hex(fmt)) + "\n")
        lines.append("%s %d %s %d %s" % (name, len(data), expect, fmt, route))

    seed = 1
    for fname, fmt in FORMATS.items():
        cs = CHUNK[fmt]
        seed += 1
        add(fname + "-mixed", gen_data(seed, 5 * cs + 1234), fmt)
        add(fname + "-empty", b"", fmt)
        add(fname + "-one-byte", b"x", fmt)
        add(fname + "-one-chunk", gen_data(seed + 100, cs), fmt)
        add(fname + "-chunk-plus-one", gen_data(seed + 200, cs + 1), fmt)
        add(fname + "-random", random.Random(seed).randbytes(3 * cs + 77), fmt)  # stored raw
        if wl:
            add("wimlib-" + fname, gen_data(seed + 300, 7 * cs + 999), fmt, route="wimlib")
    # Several MiB, both routes for LZX, ours for XPRESS4K.
    big = gen_data(99, 3 * 1048576 + 4321)
    add("lzx-big", big, LZX)
    add("xpress4k-big", big[:2 * 1048576 + 17], XPRESS4K)
    if wl:
        add("wimlib-lzx-big", big, LZX, route="wimlib")

    # Hostile: each must fail its reads with EIO (or, for what the
    # plugin would not recognise, stay a symlink).
    d = gen_data(7, 3 * 4096 + 100)
    good, _ = wof_stream(d, XPRESS4K, own)
    tbl = 3 * 4
    # An entry past the end of the stream.
    s = bytearray(good)
    struct.pack_into("<I", s, 4, len(good) * 4)
    add("bad-table-past-end", d, XPRESS4K, "eio", bytes(s))
    # Entries going backwards.
    s = bytearray(good)
    struct.pack_into("<I", s, 4, 1)
    add("bad-table-backwards", d, XPRESS4K, "eio", bytes(s))
    # A chunk that claims more stored bytes than its size.
    s = bytearray(good)
    struct.pack_into("<I", s, 0, 4097)
    add("bad-table-chunk-too-big", d, XPRESS4K, "eio", bytes(s))
    # Chunk 0 cut short: its bits end before the chunk does.
    c0 = xpress_encode(d[:4096], eof=False)
    rest = good[tbl + struct.unpack_from("<I", good, 0)[0]:]
    cut = c0[:len(c0) * 2 // 3]
    t = bytearray(good[:tbl])
    delta = len(c0) - len(cut)
    first = struct.unpack_from("<I", good, 0)[0]
    for k in range(3):
        struct.pack_into("<I", t, 4 * k, struct.unpack_from("<I", good, 4 * k)[0] - first + len(cut))
    add("bad-xpress-short", d, XPRESS4K, "eio", bytes(t) + cut + rest)
    # A chunk whose last match runs past the chunk's end.
    src = d[:4090] + d[100:140]
    toks = lz77(src, 3, 65538, 65535)
    assert not isinstance(toks[-1], int), "no match at the end"
    longz = xpress_encode(src, eof=False, tokens=toks)
    cutd = bytearray(d)
    cutd[:4096] = src[:4096]
    t = bytearray(good[:tbl])
    for k in range(3):
        struct.pack_into("<I", t, 4 * k, struct.unpack_from("<I", good, 4 * k)[0] - first + len(longz))
    add("bad-xpress-long", bytes(cutd), XPRESS4K, "eio", bytes(t) + longz + rest)
    # Over-full Huffman code lengths (all 1 bit).
    s = bytearray(good)
    s[tbl:tbl + 256] = b"\x11" * 256
    add("bad-xpress-huffman", d, XPRESS4K, "eio", bytes(s))
    # LZX: an unknown block type (0) in the first chunk.
    dl = gen_data(8, 2 * 32768)
    goodl, _ = wof_stream(dl, LZX, own)
    s = bytearray(goodl)
    s[4 + 1] &= 0x1F  # the first word's top 3 bits: the block type
    add("bad-lzx-block-type", dl, LZX, "eio", bytes(s))
    # LZX chunk 1 cut to half.
    first = struct.unpack_from("<I", goodl, 0)[0]
    c1 = goodl[4 + first:]
    add("bad-lzx-short", dl, LZX, "eio", goodl[:4 + first] + c1[:len(c1) // 2])
    # The stream shorter than its own table.
    add("bad-stream-no-table", d, XPRESS4K, "eio", good[:5])
    # Not recognised (as ntfs-3g's plugin): another format, WIM provider.
    add("unknown-format", d, XPRESS4K, "symlink", good, reparse_hex(7))
    add("wim-provider", d, XPRESS4K, "symlink", good, reparse_hex(0, provider=1))
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("mkwof: %d cases, wimlib %s, %d of our chunks read back by wimlib"
          % (len(lines), "loaded" if wl else "not installed", checked[0]))


def seeds(outdir):
    for sub in ("xpress", "lzx"):
        os.makedirs(os.path.join(outdir, sub), exist_ok=True)
    k = 0
    for size in (1, 300, 4096, 8192, 16384, 5000):
        d = gen_data(size, size)
        z = xpress_encode(d, eof=(size % 2 == 0))
        with open(os.path.join(outdir, "xpress", "x%d" % k), "wb") as f:
            f.write(struct.pack("<H", size - 1) + z)
        k += 1
    for size, stored in ((1, 0), (300, 0), (32768, 0), (32768, 1001), (20000, 0), (12, 0)):
        d = gen_data(size + 1, size)
        z = lzx_encode(d, blocks=2 if size > 8192 else 1, stored_first=stored)
        with open(os.path.join(outdir, "lzx", "l%d" % k), "wb") as f:
            f.write(struct.pack("<H", size - 1) + z)
        k += 1


def big(rp_path, stream_path, size):
    """A file of size bytes, LZX, of 7 chunk variants in turn: variant i
    is chunk index i mod 7. Only the stream's table and 7 compressed
    chunks are made; the stream repeats them."""
    cs = CHUNK[LZX]
    variants = [(b"chunk variant %d " % i) * (i + 1) for i in range(7)]
    variants = [v + bytes(cs - len(v) - 8) + struct.pack("<Q", i * 0x0101010101)
                for i, v in enumerate(variants)]
    comp = [lzx_encode(v, blocks=1) for v in variants]
    n = (size + cs - 1) // cs
    last = size - (n - 1) * cs
    lastc = lzx_encode(variants[(n - 1) % 7][:last], blocks=1)
    entry = "<Q" if size > 0xFFFFFFFF else "<I"
    with open(stream_path, "wb") as f:
        at = 0
        tbl = bytearray()
        for k in range(n - 1):
            at += len(comp[k % 7])
            tbl += struct.pack(entry, at)
        f.write(tbl)
        for k in range(n - 1):
            f.write(comp[k % 7])
        f.write(lastc)
    with open(rp_path, "w") as f:
        f.write(reparse_hex(LZX) + "\n")
    for v in variants:
        print(hashlib.sha256(v).hexdigest())
    print(hashlib.sha256(variants[(n - 1) % 7][:last]).hexdigest())


def efs(img, ino):
    """Mark MFT record ino of the NTFS volume img encrypted (EFS), as
    ntfs-3g will not: FILE_ATTR_ENCRYPTED in its standard information.
    The record must lie in the $MFT's first extent (a fresh volume)."""
    with open(img, "r+b") as f:
        boot = f.read(512)
        bps = struct.unpack_from("<H", boot, 0x0B)[0]
        cs = bps * boot[0x0D]
        mft = struct.unpack_from("<Q", boot, 0x30)[0] * cs
        c = struct.unpack_from("<b", boot, 0x40)[0]
        rec = cs * c if c > 0 else 1 << -c
        at = mft + ino * rec
        f.seek(at)
        r = bytearray(f.read(rec))
        assert r[:4] == b"FILE", "no FILE record %d" % ino
        a = struct.unpack_from("<H", r, 0x14)[0]
        while a + 8 <= rec:
            typ, ln = struct.unpack_from("<II", r, a)
            if typ == 0xFFFFFFFF or ln == 0:
                break
            if typ == 0x10:
                v = a + struct.unpack_from("<H", r, a + 0x14)[0]
                fa = struct.unpack_from("<I", r, v + 0x20)[0]
                struct.pack_into("<I", r, v + 0x20, fa | 0x4000)
                f.seek(at)
                f.write(r)
                return
            a += ln
        sys.exit("mkwof: no standard information in record %d" % ino)


def put(path, fmt, size, seed):
    """Make path (on an ntfs-3g mount with the xattr streams interface)
    a WOF file of size bytes in format fmt, its stream (< 64 KiB) set as
    user.WofCompressedData."""
    data = gen_data(seed, size)
    stream, _ = wof_stream(data, fmt, lambda f, c, k: own_chunk(f, c, k % 3))
    with open(path, "wb") as f:
        f.truncate(size)
    os.setxattr(path, "user.WofCompressedData", stream)
    os.setxattr(path, "system.ntfs_reparse_data", bytes.fromhex(reparse_hex(fmt)[2:]))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "cases":
        cases(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "seeds":
        seeds(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "put":
        put(sys.argv[2], FORMATS[sys.argv[3]], int(sys.argv[4]), 5)
    elif len(sys.argv) == 4 and sys.argv[1] == "efs":
        efs(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "big":
        big(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
