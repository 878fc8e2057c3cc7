#!/usr/bin/env python3
"""seekmap.py FILE [START LEN] - print the data extents that lseek
SEEK_DATA/SEEK_HOLE report over FILE, one "start end" line each.

With START and LEN, only the extents within [START, START+LEN) of FILE
are printed, clipped to that range and shifted to start at 0: what a file
holding just those bytes (a partition's pN.raw) should report. Also checks
that SEEK_DATA at or past the end fails with ENXIO.
"""
import errno, os, sys


def data_extents(fd, lo, hi):
    """The (start, end) data extents lseek reports within [lo, hi),
    clipped to hi; exits with a message when lseek contradicts itself."""
    size = os.fstat(fd).st_size
    got, off = [], lo
    while off < hi:
        if len(got) >= 1000000:
            sys.exit("more than 1000000 extents")
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        if d < off:
            sys.exit("SEEK_DATA(%d) went back to %d" % (off, d))
        if d >= hi:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        if h <= d or h > size:
            sys.exit("SEEK_HOLE(%d) = %d (size %d)" % (d, h, size))
        got.append((d, min(h, hi)))
        off = h
    return got


def main():
    fd = os.open(sys.argv[1], os.O_RDONLY)
    size = os.fstat(fd).st_size
    lo, hi = 0, size
    if len(sys.argv) > 2:
        lo = int(sys.argv[2])
        hi = lo + int(sys.argv[3])
    for d, h in data_extents(fd, lo, hi):
        print(d - lo, h - lo)
    for bad in (size, size + 4096):
        try:
            os.lseek(fd, bad, os.SEEK_DATA)
            sys.exit("SEEK_DATA at %d did not fail" % bad)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise


if __name__ == "__main__":
    main()
