#!/usr/bin/env python3
"""seekcheck.py FILE MAPJSON WRITES... - check lseek SEEK_DATA/SEEK_HOLE.

The data extents that SEEK_DATA/SEEK_HOLE report over FILE must cover
every written extent (WRITES: lines "offset length pattern") and lie
inside the data extents of `qemu-img map --output=json` (MAPJSON); SEEK_DATA
at a data offset stays there, SEEK_HOLE inside a hole stays there, and
SEEK_DATA at or past the end fails with ENXIO.
"""
import errno, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seekmap import data_extents
path, mapfile = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
got = data_extents(fd, 0, size)
# A hole offset inside data stays put; SEEK_HOLE in a hole returns the offset.
for s, e in got:
    if os.lseek(fd, s, os.SEEK_DATA) != s:
        sys.exit("SEEK_DATA at data offset %d moved" % s)
for e in json.load(open(mapfile)):
    if not e["data"] and e["length"] > 0:
        o = e["start"] + e["length"] // 2
        if os.lseek(fd, o, os.SEEK_HOLE) != o:
            sys.exit("SEEK_HOLE inside a hole at %d did not return %d" % (o, o))
        break
for bad in (size, size + 4096):
    try:
        r = os.lseek(fd, bad, os.SEEK_DATA)
        sys.exit("SEEK_DATA at %d returned %d, expected ENXIO" % (bad, r))
    except OSError as e:
        if e.errno != errno.ENXIO:
            sys.exit("SEEK_DATA at %d: %s, expected ENXIO" % (bad, e))
mapped = []
for e in json.load(open(mapfile)):
    if e["data"]:
        s, n = e["start"], e["length"]
        if mapped and mapped[-1][1] == s:
            mapped[-1] = (mapped[-1][0], s + n)
        else:
            mapped.append((s, s + n))
def inside(a, b, ranges):
    return any(s <= a and b <= e for s, e in ranges)
print("lseek data extents:", got)
print("qemu-img map data: ", mapped)
for w in sys.argv[3:]:
    for line in w.splitlines():
        o, l, _ = line.split()
        o, l = int(o), int(l)
        if not inside(o, o + l, got):
            sys.exit("written bytes %d+%d not inside one data extent" % (o, l))
for s, e in got:
    if not inside(s, e, mapped):
        sys.exit("data extent %d-%d is not data in qemu-img map" % (s, e))
