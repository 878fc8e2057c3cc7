#!/usr/bin/env python3
"""Concurrent readers for tests/t-99-stress.sh.

  stress.py run [options] FILE=ORACLE...
      N worker processes, each with its own descriptors, read random
      (offset, length) pairs from the FILEs (through the mount) and the
      same from their ORACLEs, and compare every byte. Lengths run from
      1 byte to 1 MiB (aligned, unaligned, odd); offsets are anywhere in
      the file, near its end, at its end and past it. Odd-numbered
      workers open with O_DIRECT where the file system allows it (the
      daemon then sees each read), even ones read through the page
      cache; every worker closes and reopens a file now and then.
      Each worker's --seconds start once it has opened its files, and it
      makes at least one read however long that took (on a busy machine
      too). Exit 0 when every read matched; 1 on a mismatch (file,
      offset, length and the first differing byte are printed), an
      unexpected error, or a worker that did not finish within --seconds
      + --grace (a hang: the workers are killed). --started FILE is
      created once every worker has made its first read (or ended).
      --tolerate ERRNO,... (names, e.g. ENOTCONN,EIO): such an error ends
      that worker quietly (counted), and so does a short read of right
      bytes (a read the kernel split into requests, of which a later one
      failed); wrong bytes still fail.

  stress.py range [--expect ok|eio|either] [--need-eio] [--piece N]
                  FILE ORACLE OFF LEN
      Read LEN bytes at OFF in pieces of --piece bytes (default 1 MiB;
      O_DIRECT where allowed), each compared with ORACLE: "ok" wants
      every piece right, "eio" every piece to fail with EIO, "either"
      each piece right or EIO (never wrong bytes, never another error);
      --need-eio: at least one EIO. A short read of right bytes (the
      kernel split the read, a later request failed) goes on from where
      it stopped. Exit 0 when it went as expected.

  stress.py spin FILE OFF LEN MARKER
      Read LEN bytes at OFF (O_DIRECT where allowed) again and again,
      forever; after the first read creates MARKER. A test kills it.

Seeds are printed, and --seed repeats a run's choices.
"""
import argparse
import errno
import os
import random
import select
import signal
import sys
import time

MIB = 1 << 20


def open_read(path, direct):
    """A descriptor on path; with direct, O_DIRECT when the file system
    takes unaligned O_DIRECT reads (FUSE does, a local one may not)."""
    if direct:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
            try:
                os.pread(fd, 3, 1)
                return fd
            except OSError as e:
                # Only EINVAL says "no unaligned O_DIRECT"; another
                # error comes again at the real read.
                if e.errno != errno.EINVAL:
                    return fd
                os.close(fd)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    return os.open(path, os.O_RDONLY)


def first_diff(a, b):
    n = min(len(a), len(b))
    lo, hi = 0, n
    # Binary search on prefixes (a prefix compare is a memcmp).
    while lo < hi:
        mid = (lo + hi) // 2
        if a[lo:mid + 1] == b[lo:mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def pick_len(rng):
    r = rng.random()
    if r < 0.35:
        return rng.choice((1, 2, 511, 512, 513, 4095, 4096, 4097, 65535,
                           65536, 65537, 131072, 200000, 1048575, MIB))
    if r < 0.55:
        return rng.randrange(1, 4097)
    return rng.randrange(1, MIB + 1)


def pick_off(rng, size):
    r = rng.random()
    if r < 0.08:
        return max(size - rng.randrange(0, 2 * MIB), 0)
    if r < 0.10:
        return size
    if r < 0.12:
        return size + rng.randrange(1, 3 * MIB)
    if r < 0.30:
        # Aligned: sector, page or 64 KiB cluster.
        a = rng.choice((512, 4096, 65536))
        return rng.randrange(0, max(size, 1)) // a * a
    return rng.randrange(0, max(size, 1))


def under_fuse(path):
    """Whether a FUSE mount (of any fstype fuse*) still covers path."""
    path = os.path.abspath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3 or not fields[2].startswith("fuse"):
                continue
            mnt = fields[1].encode().decode("unicode_escape")
            if path == mnt or path.startswith(mnt.rstrip("/") + "/"):
                return True
    return False


def worker(idx, pairs, seconds, seed, tolerate, out, ready):
    """ready(): called once, after the first read."""
    rng = random.Random(seed * 1000 + idx)
    direct = idx % 2 == 1
    fds = {}
    reads = nbytes = reopen = 0
    try:
        for path, oracle, size in pairs:
            fds[path] = [open_read(path, direct), os.open(oracle, os.O_RDONLY)]
        deadline = time.monotonic() + seconds
        while reads == 0 or time.monotonic() < deadline:
            if reads == 1:
                ready()
            path, oracle, size = rng.choice(pairs)
            if rng.random() < 0.02:
                os.close(fds[path][0])
                fds[path][0] = -1
                try:
                    fds[path][0] = open_read(path, direct)
                except FileNotFoundError:
                    # The daemon exited and unmounted between two reads:
                    # the path now names the bare mountpoint's contents.
                    # Tolerated only then, never while mounted.
                    if not tolerate or under_fuse(path):
                        raise
                    out.write("worker %d: ENOENT reopening after the "
                              "unmount, after %d reads (tolerated)\n"
                              % (idx, reads))
                    out.write("stats %d %d %d tolerated\n"
                              % (reads, nbytes, reopen))
                    return 0
                reopen += 1
            off = pick_off(rng, size)
            ln = pick_len(rng)
            got = os.pread(fds[path][0], ln, off)
            exp = os.pread(fds[path][1], ln, off)
            reads += 1
            nbytes += len(got)
            if tolerate and len(got) < len(exp) and got == exp[:len(got)]:
                # The kernel splits a read into requests and returns
                # what came before the first that failed: a short read
                # of right bytes when the daemon goes away.
                out.write("worker %d: short read (%d of %d bytes at %d) "
                          "after %d reads (tolerated)\n"
                          % (idx, len(got), len(exp), off, reads))
                out.write("stats %d %d %d tolerated\n"
                          % (reads, nbytes, reopen))
                return 0
            if got != exp:
                k = first_diff(got, exp)
                out.write("MISMATCH worker %d (%s, seed %d): %s pread(%d "
                          "bytes at %d): got %d bytes, expected %d; first "
                          "difference at offset %d\n"
                          % (idx, "O_DIRECT" if direct else "buffered",
                             seed, path, ln, off, len(got), len(exp),
                             off + k))
                return 1
    except OSError as e:
        if e.errno in tolerate:
            out.write("worker %d: %s after %d reads (tolerated)\n"
                      % (idx, errno.errorcode.get(e.errno, e.errno), reads))
            out.write("stats %d %d %d tolerated\n" % (reads, nbytes, reopen))
            return 0
        out.write("ERROR worker %d (seed %d) after %d reads: %s\n"
                  % (idx, seed, reads, e))
        return 1
    if reads == 0:
        out.write("ERROR worker %d did no read\n" % idx)
        return 1
    out.write("stats %d %d %d ok\n" % (reads, nbytes, reopen))
    return 0


def cmd_run(a):
    pairs = []
    for spec in a.pairs:
        path, sep, oracle = spec.partition("=")
        if not sep:
            sys.exit("stress.py: want FILE=ORACLE, got %r" % spec)
        size = os.path.getsize(oracle)
        st = os.stat(path)
        if st.st_size != size:
            print("MISMATCH %s: size %d, oracle %s has %d"
                  % (path, st.st_size, oracle, size))
            return 1
        pairs.append((path, oracle, size))
    tolerate = set()
    for name in filter(None, a.tolerate.split(",")):
        tolerate.add(getattr(errno, name))
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    kids = {}
    # Each worker writes one byte here after its first read, or when it
    # ends without one: all have once len(workers) bytes came (or EOF,
    # when one was killed).
    ready_r, ready_w = os.pipe()
    for i in range(a.workers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(ready_r)
            said = []

            def ready():
                if not said:
                    os.write(ready_w, b"r")
                    said.append(1)
            with os.fdopen(w, "w") as out:
                try:
                    rc = worker(i, pairs, a.seconds, seed, tolerate, out,
                                ready)
                except BaseException as e:  # noqa: report anything
                    out.write("ERROR worker %d: %r\n" % (i, e))
                    rc = 1
                out.flush()
            ready()
            os._exit(rc)
        os.close(w)
        kids[pid] = (i, os.fdopen(r))
    os.close(ready_w)
    t0 = time.monotonic()
    if a.started:
        # Bounded like the workers themselves; a hang is reported below.
        got = 0
        while got < a.workers:
            left_s = t0 + a.seconds + a.grace - time.monotonic()
            if left_s <= 0 or not select.select([ready_r], [], [], left_s)[0]:
                break
            n = len(os.read(ready_r, a.workers))
            if n == 0:
                break
            got += n
        open(a.started, "w").close()
    bad = 0
    reads = nbytes = reopens = tolerated = 0
    deadline = t0 + a.seconds + a.grace
    left = dict(kids)
    while left:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            if time.monotonic() > deadline:
                for p, (i, _) in left.items():
                    print("HANG worker %d (pid %d) still reading %d s after "
                          "its end" % (i, p, a.grace))
                    os.kill(p, signal.SIGKILL)
                for p in left:
                    os.waitpid(p, 0)
                bad += len(left)
                break
            time.sleep(0.05)
            continue
        i, _ = left.pop(pid)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            bad += 1
            if os.WIFSIGNALED(status):
                print("ERROR worker %d killed by signal %d"
                      % (i, os.WTERMSIG(status)))
    # Open until every worker is gone (a write to it must not fail).
    os.close(ready_r)
    for pid, (i, f) in kids.items():
        for line in f:
            if line.startswith("stats "):
                w = line.split()
                reads += int(w[1])
                nbytes += int(w[2])
                reopens += int(w[3])
                tolerated += w[4] == "tolerated"
            else:
                sys.stdout.write(line)
        f.close()
    print("%d workers, %d files: %d reads, %d MiB, %d reopens, %d ended by a "
          "tolerated error, %d failed (seed %d)"
          % (a.workers, len(pairs), reads, nbytes >> 20, reopens, tolerated,
             bad, seed))
    return 1 if bad else 0


def cmd_range(a):
    """Each piece of at most 1 MiB is "ok" (every byte right), "eio"
    (the read failed with EIO) or wrong (anything else)."""
    fd = open_read(a.file, True)
    want = open(a.oracle, "rb")
    off, end = a.off, a.off + a.len
    n_ok = n_eio = 0
    while off < end:
        ln = min(a.piece, end - off)
        try:
            got = os.pread(fd, ln, off)
        except OSError as e:
            if e.errno != errno.EIO or a.expect == "ok":
                print("%s: pread(%d bytes at %d): %s" % (a.file, ln, off, e))
                return 1
            n_eio += 1
            off += ln
            continue
        want.seek(off)
        exp = want.read(ln)
        if 0 < len(got) < len(exp) and got == exp[:len(got)]:
            # The kernel split the read into requests and a later one
            # failed: the next read starts there.
            off += len(got)
            continue
        if got != exp:
            print("%s: pread(%d bytes at %d): got %d bytes, expected %d; "
                  "first difference at offset %d"
                  % (a.file, ln, off, len(got), len(exp),
                     off + first_diff(got, exp)))
            return 1
        if a.expect == "eio":
            print("%s: pread(%d bytes at %d) gave the right bytes, "
                  "expected EIO" % (a.file, ln, off))
            return 1
        n_ok += 1
        off += ln
    print("%s: %d bytes at %d: %d pieces right, %d EIO"
          % (a.file, a.len, a.off, n_ok, n_eio))
    if a.need_eio and not n_eio:
        print("no piece failed with EIO")
        return 1
    return 0


def cmd_spin(a):
    fd = open_read(a.file, True)
    n = 0
    while True:
        os.pread(fd, a.len, a.off)
        n += 1
        if n == 1:
            open(a.marker, "w").close()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--workers", type=int, default=16)
    r.add_argument("--seconds", type=float, default=5)
    r.add_argument("--grace", type=int, default=60,
                   help="seconds a worker may overrun before it counts "
                   "as hung")
    r.add_argument("--seed", type=int)
    r.add_argument("--tolerate", default="")
    r.add_argument("--started", help="create this file once all workers "
                   "are running")
    r.add_argument("pairs", nargs="+")
    g = sub.add_parser("range")
    g.add_argument("--expect", choices=("ok", "eio", "either"),
                   default="ok")
    g.add_argument("--need-eio", action="store_true")
    g.add_argument("--piece", type=int, default=MIB)
    g.add_argument("file")
    g.add_argument("oracle")
    g.add_argument("off", type=int)
    g.add_argument("len", type=int)
    s = sub.add_parser("spin")
    s.add_argument("file")
    s.add_argument("off", type=int)
    s.add_argument("len", type=int)
    s.add_argument("marker")
    a = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    return {"run": cmd_run, "range": cmd_range, "spin": cmd_spin}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
