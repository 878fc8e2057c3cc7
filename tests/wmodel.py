#!/usr/bin/env python3
"""Writers against a model, for tests/t-72-overlay.sh.

  wmodel.py run [--threads N] [--ops N] [--seed S] [--stripe B]
                [--max B] FILE MODEL
      MODEL is a regular file holding what FILE (a writable disk.raw)
      reads now. N threads write random bytes at random offsets and
      sizes (1 byte to --max, across cluster and L2 boundaries) to FILE
      and to an in-memory copy of MODEL; each thread owns every Nth
      stripe of --stripe bytes, so the expected bytes never depend on
      how the threads interleave, though they share clusters and L2
      tables. Every write is followed, now and then, by a read of a
      random range of the thread's stripes, compared with the model;
      some threads fsync now and then. At the end FILE is read whole
      and compared, and the model written back to MODEL (for qemu-img
      convert to be compared with). Exit 0 when everything matched.

  wmodel.py crash [--threads N] [--seed S] FILE LOG
      Writers that never stop: each writes a block (70000 bytes of a
      pattern of its index) to a slot no other write touches, fsyncs
      FILE, and then appends "index offset length" to LOG and fsyncs
      LOG. A test kills the daemon under them (the writers then fail and
      end). Slots not yet used are chosen from LOG's existing records'
      complement, so runs can follow each other on one child.

  wmodel.py verify FILE LOG
      Every block LOG records is in FILE (a raw image): exit 0, else 1.
"""
import argparse
import os
import random
import sys
import threading

BLOCK = 70000
SLOT = 77777


def pattern(index, length):
    b = bytes([(index * 7 + 13) & 0xFF, (index >> 8) & 0xFF, 0x5A,
               (index * 31) & 0xFF])
    return (b * (length // 4 + 1))[:length]


def cmd_run(a):
    with open(a.model, "rb") as f:
        model = bytearray(f.read())
    size = len(model)
    nstripes = size // a.stripe
    errors = []
    lock = threading.Lock()

    def worker(t):
        rng = random.Random(a.seed * 1000 + t)
        fd = os.open(a.file, os.O_RDWR)
        mine = [s for s in range(nstripes) if s % a.threads == t]
        try:
            for i in range(a.ops):
                s = rng.choice(mine)
                base = s * a.stripe
                off = base + rng.randrange(a.stripe)
                n = 1 + rng.randrange(min(a.max, base + a.stripe - off))
                data = rng.randbytes(n)
                if os.pwrite(fd, data, off) != n:
                    raise OSError("short write at %d" % off)
                model[off:off + n] = data
                if i % 5 == 0:
                    s = rng.choice(mine)
                    off = s * a.stripe + rng.randrange(a.stripe)
                    n = 1 + rng.randrange(s * a.stripe + a.stripe - off)
                    got = os.pread(fd, n, off)
                    if got != bytes(model[off:off + n]):
                        raise OSError("read of %d bytes at %d differs from "
                                      "the model" % (n, off))
                if t % 2 == 0 and i % 50 == 49:
                    os.fsync(fd)
        except Exception as e:  # noqa: BLE001 (reported, fails the run)
            with lock:
                errors.append("thread %d: %s" % (t, e))
        finally:
            os.close(fd)

    th = [threading.Thread(target=worker, args=(t,))
          for t in range(a.threads)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    fd = os.open(a.file, os.O_RDONLY)
    pos = 0
    while pos < size:
        n = min(1 << 20, size - pos)
        if os.pread(fd, n, pos) != bytes(model[pos:pos + n]):
            print("final read at %d differs from the model" % pos,
                  file=sys.stderr)
            return 1
        pos += n
    os.close(fd)
    with open(a.model, "wb") as f:
        f.write(model)
    print("seed %d: %d writes of %d threads matched" %
          (a.seed, a.ops * a.threads, a.threads))
    return 0


def read_log(path):
    recs = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    recs.append(tuple(int(x) for x in p))
    except FileNotFoundError:
        pass
    return recs


def cmd_crash(a):
    size = os.stat(a.file).st_size
    used = {off // SLOT for _, off, _ in read_log(a.log)}
    slots = [s for s in range(size // SLOT) if s not in used]
    random.Random(a.seed).shuffle(slots)
    start = len(read_log(a.log))
    lock = threading.Lock()
    logfd = os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    state = {"next": 0}

    def worker():
        fd = os.open(a.file, os.O_RDWR)
        try:
            while True:
                with lock:
                    k = state["next"]
                    state["next"] += 1
                if k >= len(slots):
                    return
                idx = start + k
                off = slots[k] * SLOT + (idx * 613) % (SLOT - BLOCK)
                os.pwrite(fd, pattern(idx, BLOCK), off)
                os.fsync(fd)
                with lock:
                    os.write(logfd, b"%d %d %d\n" % (idx, off, BLOCK))
                    os.fsync(logfd)
        except OSError:
            return
        finally:
            os.close(fd)

    th = [threading.Thread(target=worker) for _ in range(a.threads)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return 0


def cmd_verify(a):
    bad = 0
    recs = read_log(a.log)
    with open(a.file, "rb") as f:
        for idx, off, n in recs:
            f.seek(off)
            if f.read(n) != pattern(idx, n):
                print("fsynced block %d (%d bytes at %d) is missing" %
                      (idx, n, off), file=sys.stderr)
                bad += 1
    print("%d fsynced blocks checked, %d missing" % (len(recs), bad))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--threads", type=int, default=8)
    r.add_argument("--ops", type=int, default=200)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--stripe", type=int, default=300007)
    r.add_argument("--max", type=int, default=200000)
    r.add_argument("file")
    r.add_argument("model")
    c = sub.add_parser("crash")
    c.add_argument("--threads", type=int, default=4)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("file")
    c.add_argument("log")
    v = sub.add_parser("verify")
    v.add_argument("file")
    v.add_argument("log")
    a = ap.parse_args()
    return {"run": cmd_run, "crash": cmd_crash, "verify": cmd_verify}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
