#!/usr/bin/env python3
"""walk.py ROOT [--max N] — a bounded walk of a mounted tree.

Visits at most N paths (default 20000) under ROOT without following
symlinks: lstat, readdir, readlink, listxattr and getxattr of every name,
a full read of every regular file. Errors are expected on corrupt images
(EIO, EUCLEAN, ENODATA...): each is counted and printed, not fatal. A
hang is what the caller's timeout catches. Exit 0 unless ROOT itself
cannot be read (2); prints one summary line.
"""
import errno
import os
import stat
import sys


def main():
    args = sys.argv[1:]
    limit = 20000
    if "--max" in args:
        i = args.index("--max")
        limit = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    root = args[0]
    seen = errs = files = byts = 0
    stack = [root]
    try:
        os.lstat(root)
    except OSError as e:
        print(f"walk: {root}: {e}", file=sys.stderr)
        return 2

    def err(what, path, e):
        nonlocal errs
        errs += 1
        if errs <= 20:
            print(f"walk: {what} {path}: {e.strerror or e}")

    while stack and seen < limit:
        p = stack.pop()
        seen += 1
        try:
            st = os.lstat(p)
        except OSError as e:
            err("lstat", p, e)
            continue
        try:
            for n in os.listxattr(p, follow_symlinks=False):
                try:
                    os.getxattr(p, n, follow_symlinks=False)
                except OSError as e:
                    err("getxattr " + n, p, e)
        except OSError as e:
            if e.errno != errno.ENOTSUP:
                err("listxattr", p, e)
        if stat.S_ISLNK(st.st_mode):
            try:
                os.readlink(p)
            except OSError as e:
                err("readlink", p, e)
        elif stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(p) as it:
                    for d in it:
                        stack.append(d.path)
            except OSError as e:
                err("readdir", p, e)
        elif stat.S_ISREG(st.st_mode):
            files += 1
            try:
                fd = os.open(p, os.O_RDONLY)
                try:
                    while True:
                        b = os.read(fd, 1 << 20)
                        if not b:
                            break
                        byts += len(b)
                finally:
                    os.close(fd)
            except OSError as e:
                err("read", p, e)
    print(f"walk: {seen} paths, {files} files, {byts} bytes, {errs} errors"
          f"{' (stopped at the limit)' if stack else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
