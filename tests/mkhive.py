#!/usr/bin/python3
"""tests/mkhive.py OUT — an empty Windows registry hive, for
`hivexregedit --merge` to fill (hivex edits hives but cannot start one,
and no tool here makes one).

The smallest hive hivex opens and can add keys to: the 4 KiB base block
("regf": sequence numbers, version 1.3, the root cell's offset, the size
of the hive bins, the XOR checksum of its first 508 bytes) and one 4 KiB
hive bin ("hbin") holding the root key's nk cell, the security (sk) cell
every key must point to (hivex gives a new key its parent's), and the
rest of the bin as one free cell. Offsets of cells are relative to the
first bin, as in the format (Microsoft's and libyal's descriptions of
REGF); hivex's open checks the checksum, the bins' offsets and sizes, and
that the root is a used nk cell. The test reads the filled hive back
with hivexregedit --export (hivex's reader) and inspects with ours."""
import struct
import sys

BIN = 4096
hdr = bytearray(4096)
struct.pack_into("<4sIIQIIIIIII", hdr, 0, b"regf", 1, 1, 0, 1, 3, 0, 1,
                 0x20, BIN, 1)
name = "vdtest".encode("utf-16-le")
hdr[48:48 + len(name)] = name
csum = 0
for i in range(0, 508, 4):
    csum ^= struct.unpack_from("<I", hdr, i)[0]
struct.pack_into("<I", hdr, 508, csum)

hbin = bytearray(BIN)
struct.pack_into("<4sII", hbin, 0, b"hbin", 0, BIN)

# Root key (nk) at 0x20: flags 0x2c = HIVE_ENTRY | NO_DELETE |
# COMP_NAME (an ASCII name); no subkeys (list offsets 0xffffffff), no
# values, its sk cell right after it.
root_name = b"ROOT"
nk_len = (80 + len(root_name) + 7) & ~7
sk_off = 0x20 + nk_len
nk = bytearray(nk_len)
struct.pack_into("<i2sHQIIIIIIIIIIHHIIII", nk, 0, -nk_len, b"nk", 0x2c, 0, 0,
                 0, 0, 0, 0xffffffff, 0xffffffff, 0, 0xffffffff, sk_off,
                 0xffffffff, 0, 0, 0, 0, 0, 0)
struct.pack_into("<HH", nk, 76, len(root_name), 0)
nk[80:80 + len(root_name)] = root_name
hbin[0x20:0x20 + nk_len] = nk

# Security cell: a circular list of one (next and previous are itself),
# one reference (the root), and a self-relative security descriptor with
# no owner, group or ACLs (revision 1, control SE_SELF_RELATIVE).
sd = struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)
sk_len = (24 + len(sd) + 7) & ~7
sk = bytearray(sk_len)
struct.pack_into("<i2sHIIII", sk, 0, -sk_len, b"sk", 0, sk_off, sk_off, 1,
                 len(sd))
sk[24:24 + len(sd)] = sd
hbin[sk_off:sk_off + sk_len] = sk

# The rest of the bin: one free cell (a positive size).
free_off = sk_off + sk_len
struct.pack_into("<i", hbin, free_off, BIN - free_off)

with open(sys.argv[1], "wb") as f:
    f.write(hdr)
    f.write(hbin)
