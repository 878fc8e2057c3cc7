#!/usr/bin/env python3
"""hostile.py — the poke engine and the read checks of the hostile corpus.

  hostile.py list CASES...
      One line per case: NAME BASE (for the runner to build the bases).
  hostile.py prepare OUT BASEPREFIX CASES...
      For every case whose base is built: copy BASEPREFIX<base>/img to
      OUT/<name>/img, apply the case's edits there, and write
      OUT/<name>/case.json (image path, options, expectations with the
      placeholders filled in). Prints the names, one per line.
  hostile.py check CASEDIR MNT
      Run the read expectations of a mounted case (see below); exit 1
      with one line per failed expectation.

The manifest (tests/hostile/*.cases) is a list of stanzas separated by
blank lines; '#' starts a comment. Directives, one per line:

  case NAME           the case's name (unique across all files)
  base BUILDER        the image set tests/hostile/build.sh makes
  image FILE          the file given to vdmount (default: the builder's)
  file FILE           the file later edits apply to (default: the image)
  let NAME = EXPR     name a value (a Python expression; see below)
  set TYPE OFF = VAL  store VAL as TYPE (u8 le16 le32 le64 be16 be32 be64)
                      at byte OFF of the current file
  bytes OFF = EXPR    write the bytes EXPR (b"..." or a str) at OFF
  truncate LEN        cut (or extend) the current file to LEN bytes
  call EXPR           evaluate EXPR for its effect: replace(OLD, NEW)
                      rewrites the first OLD (bytes or str) of the current
                      file as NEW; tar_fix(OFF) recomputes the checksum
                      of the tar header at OFF; gpt_fix(LBA) those of
                      the GPT header at LBA and its entry array;
                      lvm_edit(OLD, NEW) rewrites the first OLD in the
                      metadata text of every LVM2 PV, its size and CRCs
                      made right
  sh CMD              run CMD with sh in the case's image folder; names
                      are substituted as {name}
  opt ARG             an extra vdmount argument (before IMAGE)
  secret [PATH]       the image names a host file outside the allowed
                      folders: the runner asserts, under strace, that the
                      secret file (%S, or PATH) is never opened
  assert EXPR         the base is as the case expects (else the case
                      fails at preparation, not with a misleading result)
  expect refuse MSG   vdmount fails with exactly the one line
                      "vdmount: MSG"
  expect ls NAME...   the mount's root holds exactly these names
  expect same FILE    FILE equals the oracle (the base's oracle.raw,
                      made by qemu-img convert -O raw of the unedited
                      image, or the unedited raw disk), except for the
                      eio ranges of FILE
  expect same FILE@OFF  ... FILE equals the oracle's bytes from OFF
  expect same FILE OFF LEN  ... only that range of FILE
  expect qemu FILE    FILE equals qemu-img convert -O raw of the poked
                      image (where qemu reads the poked field as harmless,
                      e.g. an offset 0 that means "unallocated")
  expect eio FILE OFF LEN   every read inside that range fails with EIO
  expect fileeio PATH reading the guest file PATH fails with EIO
  expect filesame PATH SRC  guest file PATH equals the base's SRC
  expect lseio PATH   listing the guest directory PATH fails with EIO
  expect lsnames PATH NAME...  the guest directory PATH lists exactly
                      these names (none: an empty listing)
  expect absent PATH  PATH does not exist in the mount
  expect link PATH TARGET   readlink of the guest symlink PATH gives TARGET
  expect linkeio PATH       readlink of PATH fails with EIO
  expect linklen PATH N     readlink of PATH gives N bytes
  expect warn TEXT    vdmount's stderr at mount time contains TEXT
Strings may be quoted with "..."; in MSG and TEXT, %D is the case's image
folder, %S the secret file's path and %C the case's folder (which holds
the image folder and the secret's folder, "outside").

Expressions see: zlib and struct (Python's), size (the current file's size), u8(o), le16(o), le32(o),
le64(o), be16(o), be32(o), be64(o) (read from the current file), find(b)
(offset of the first occurrence of bytes b, or an error), filesize(name),
content() (the current file's bytes),
the names made by `let`, and the builder's numbers in BASEPREFIX<base>/vars
(NAME=VALUE lines).
"""

import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import zlib

TYPES = {
    "u8": "<B", "le16": "<H", "le32": "<I", "le64": "<Q",
    "be16": ">H", "be32": ">I", "be64": ">Q",
}


class CaseError(Exception):
    pass


def parse(paths):
    cases = []
    names = set()
    for path in paths:
        cur = None
        with open(path) as f:
            for no, raw in enumerate(f, 1):
                line = raw.rstrip("\n")
                s = line.strip()
                if not s:
                    cur = None
                    continue
                if s.startswith("#"):
                    continue
                word, _, rest = s.partition(" ")
                rest = rest.strip()
                where = "%s:%d" % (os.path.basename(path), no)
                if word == "case":
                    if rest in names:
                        raise CaseError("%s: case %s defined twice" % (where, rest))
                    names.add(rest)
                    cur = {"name": rest, "where": where, "steps": [],
                           "expect": [], "opts": [], "secret": False}
                    cases.append(cur)
                    continue
                if cur is None:
                    raise CaseError("%s: '%s' outside a case stanza" % (where, word))
                if word in ("base", "image"):
                    cur[word] = rest
                elif word == "opt":
                    cur["opts"].append(rest)
                elif word == "secret":
                    cur["secret"] = rest or True
                elif word == "expect":
                    cur["expect"].append((where, shlex.split(rest)))
                elif word in ("file", "let", "set", "bytes", "truncate", "sh", "assert",
                              "call"):
                    cur["steps"].append((where, word, rest))
                else:
                    raise CaseError("%s: unknown directive '%s'" % (where, word))
    for c in cases:
        if "base" not in c:
            raise CaseError("%s: case %s has no base" % (c["where"], c["name"]))
        if not c["expect"]:
            raise CaseError("%s: case %s has no expectation" % (c["where"], c["name"]))
    return cases


class Editor:
    def __init__(self, imgdir, names):
        self.dir = imgdir
        self.names = dict(names)
        self.cur = None

    def path(self):
        return os.path.join(self.dir, self.cur)

    def read(self, off, n):
        with open(self.path(), "rb") as f:
            f.seek(off)
            b = f.read(n)
        if len(b) != n:
            raise CaseError("read of %d bytes at %d of %s: past its end" % (n, off, self.cur))
        return b

    def env(self):
        e = dict(self.names)

        def rd(t):
            return lambda o: struct.unpack(TYPES[t], self.read(o, struct.calcsize(TYPES[t])))[0]
        for t in TYPES:
            e[t] = rd(t)
        e["size"] = os.path.getsize(self.path())

        def find(b):
            with open(self.path(), "rb") as f:
                data = f.read()
            i = data.find(b.encode() if isinstance(b, str) else b)
            if i < 0:
                raise CaseError("%r not found in %s" % (b, self.cur))
            return i
        e["find"] = find
        e["filesize"] = lambda n: os.path.getsize(os.path.join(self.dir, n))

        def content():
            with open(self.path(), "rb") as f:
                return f.read()

        def replace(old, new):
            old = old.encode() if isinstance(old, str) else old
            new = new.encode() if isinstance(new, str) else new
            data = content()
            if old not in data:
                raise CaseError("%r not found in %s" % (old, self.cur))
            with open(self.path(), "wb") as f:
                f.write(data.replace(old, new, 1))
            return True
        def tar_fix(off):
            """Recompute the checksum of the tar header at off (POSIX
            ustar: the byte sum with the field as spaces, six octal
            digits, NUL, space)."""
            h = bytearray(self.read(off, 512))
            h[148:156] = b" " * 8
            h[148:156] = b"%06o\0 " % sum(h)
            self.write(off, bytes(h))
            return True
        def gpt_fix(lba, entries=True):
            """Recompute the CRC32s of the GPT header at LBA lba (512-byte
            sectors; UEFI 2.10 section 5.3.2): the entry array's (offset
            88) from the header's own entry fields when entries is true
            and the array lies in the file, then the header's (offset
            16, over header size bytes, itself as zero)."""
            h = bytearray(self.read(lba * 512, 512))
            hsize = struct.unpack_from("<I", h, 12)[0]
            at, count, esize = struct.unpack_from("<QII", h, 72)
            n = count * esize
            if entries and n <= (16 << 20) and (at * 512 + n) <= os.path.getsize(self.path()):
                struct.pack_into("<I", h, 88, zlib.crc32(self.read(at * 512, n)))
            struct.pack_into("<I", h, 16, 0)
            struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:min(hsize, 512)])))
            self.write(lba * 512, bytes(h))
            return True
        def lvm_edit(old, new):
            """Rewrite the first OLD as NEW in the committed metadata
            text of every LVM2 PV in the file, fixing what LVM checks
            (LVM2's lib/format_text/layout.h): a PV's label is in one of
            its first four sectors ("LABELONE", 8 its sector, 20 the PV
            header's offset); the PV header's lists of (offset u64, size
            u64) from 40, data areas then metadata areas, each ended by a
            zero entry; an mda_header (checksum at 0 over bytes 4-511,
            raw_locn at 40: the text's offset from the area u64, its size
            with its NUL u64, its checksum u32) starts each metadata area.
            The text must not wrap around its area. Returns how many texts
            changed (an error when none did)."""
            old = old.encode() if isinstance(old, str) else old
            new = new.encode() if isinstance(new, str) else new
            data = content()

            def crc(b):
                return zlib.crc32(b, 0xf597a6cf ^ 0xffffffff) ^ 0xffffffff
            n = 0
            for at in range(0, len(data) - 511, 512):
                if data[at:at + 8] != b"LABELONE" or data[at + 24:at + 32] != b"LVM2 001":
                    continue
                sec = struct.unpack_from("<Q", data, at + 8)[0]
                if sec > 3 or at < sec * 512:
                    continue
                base = at - sec * 512
                p = at + struct.unpack_from("<I", data, at + 20)[0] + 40
                while struct.unpack_from("<Q", data, p)[0]:
                    p += 16
                p += 16
                while struct.unpack_from("<Q", data, p)[0]:
                    mda, msize = struct.unpack_from("<QQ", data, p)
                    p += 16
                    h = bytearray(self.read(base + mda, 512))
                    toff, tsize = struct.unpack_from("<QQ", h, 40)
                    if not toff or toff + tsize > msize:
                        continue
                    text = self.read(base + mda + toff, tsize).rstrip(b"\0")
                    if old not in text:
                        continue
                    text = text.replace(old, new, 1) + b"\0"
                    if toff + len(text) > msize:
                        raise CaseError("lvm_edit: the text no longer fits its area")
                    self.write(base + mda + toff, text)
                    struct.pack_into("<QI", h, 48, len(text), crc(text))
                    struct.pack_into("<I", h, 0, crc(bytes(h[4:])))
                    self.write(base + mda, bytes(h))
                    n += 1
            if not n:
                raise CaseError("lvm_edit: %r is in no PV's metadata" % old)
            return n
        e["lvm_edit"] = lvm_edit
        e["gpt_fix"] = gpt_fix
        e["content"] = content
        e["replace"] = replace
        e["tar_fix"] = tar_fix
        return e

    def ev(self, expr):
        # One dict for globals and locals, so comprehensions see the names.
        g = self.env()
        g.update({"__builtins__": {"len": len, "min": min, "max": max, "range": range,
                                   "bytes": bytes, "int": int, "hex": hex},
                  "zlib": zlib, "struct": struct})
        return eval(expr, g)

    def write(self, off, b):
        with open(self.path(), "r+b") as f:
            f.seek(off)
            f.write(b)

    def step(self, word, rest):
        if word == "file":
            self.cur = rest
            if not os.path.exists(self.path()):
                raise CaseError("no file %s in the base" % rest)
        elif word == "let":
            name, _, expr = rest.partition("=")
            self.names[name.strip()] = self.ev(expr)
        elif word == "set":
            lhs, _, expr = rest.partition("=")
            t, _, off = lhs.strip().partition(" ")
            if t not in TYPES:
                raise CaseError("unknown type %s" % t)
            v = self.ev(expr)
            bits = struct.calcsize(TYPES[t]) * 8
            self.write(self.ev(off), struct.pack(TYPES[t], v & ((1 << bits) - 1)))
        elif word == "bytes":
            off, _, expr = rest.partition("=")
            v = self.ev(expr)
            if isinstance(v, str):
                v = v.encode()
            self.write(self.ev(off), v)
        elif word == "call":
            self.ev(rest)
        elif word == "assert":
            if not self.ev(rest):
                raise CaseError("the base is not as the case expects: %s" % rest)
        elif word == "truncate":
            os.truncate(self.path(), self.ev(rest))
        elif word == "sh":
            cmd = rest.format(**{k: v for k, v in self.names.items()})
            r = subprocess.run(["sh", "-c", cmd], cwd=self.dir,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            if r.returncode:
                raise CaseError("sh %s: exit %d: %s" % (cmd, r.returncode,
                                                       r.stdout.decode(errors="replace")[-300:]))


def read_vars(basedir):
    names = {}
    p = os.path.join(basedir, "vars")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.strip().partition("=")
            if k:
                try:
                    names[k] = int(v, 0)
                except ValueError:
                    names[k] = v
    return names


def prepare(out, baseroot, paths):
    cases = parse(paths)
    for c in cases:
        basedir = baseroot + c["base"]
        if not os.path.isfile(os.path.join(basedir, ".ok")):
            continue  # not selected, or its builder failed: the runner says so
        cdir = os.path.join(out, c["name"])
        if os.path.exists(cdir):
            shutil.rmtree(cdir)
        os.makedirs(cdir)
        imgdir = os.path.join(cdir, "img")
        shutil.copytree(os.path.join(basedir, "img"), imgdir, symlinks=True)
        os.makedirs(os.path.join(cdir, "outside"))
        secret = os.path.join(cdir, "outside", "secret.img")
        with open(secret, "wb") as f:
            f.write(b"vdmount hostile corpus: this file must never be opened\n" * 20000)
        names = read_vars(basedir)
        names["D"] = imgdir
        names["S"] = secret
        image = c.get("image") or names.get("image")
        if not image:
            raise CaseError("%s: no image named" % c["where"])
        ed = Editor(imgdir, names)
        ed.cur = image
        for where, word, rest in c["steps"]:
            try:
                ed.step(word, rest)
            except CaseError as e:
                raise CaseError("%s: %s" % (where, e))
            except Exception as e:
                raise CaseError("%s: %s %s: %s" % (where, word, rest, e))

        def fill(s):
            return s.replace("%D", imgdir).replace("%S", secret).replace("%C", cdir)
        exp = []
        info_oracle = os.path.join(basedir, "oracle.raw")
        for where, words in c["expect"]:
            words = [fill(w) for w in words]
            kind = words[0]
            if kind in ("eio",):
                words = [kind, words[1], ed.ev(words[2]), ed.ev(words[3])]
            elif kind == "same":
                f, _, o = words[1].partition("@")
                rng = [ed.ev(w) for w in words[2:4]] if len(words) >= 4 else None
                words = [kind, f, ed.ev(o) if o else 0, info_oracle, rng]
            elif kind == "qemu":
                # qemu's own reading of the poked image is the oracle.
                q = os.path.join(cdir, "qemu.raw")
                if not os.path.exists(q):
                    r = subprocess.run(["timeout", "-k", "5", "120", "qemu-img", "convert",
                                        "-O", "raw", image, q], cwd=imgdir,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                    if r.returncode:
                        raise CaseError("%s: qemu-img convert of the poked image failed: %s"
                                        % (where, r.stdout.decode(errors="replace").strip()))
                words = ["same", words[1], 0, q, None]
            elif kind == "check":
                if len(words) != 2 or not (words[1] == "qemu" or words[1].isdigit()):
                    raise CaseError("%s: expect check takes an exit code or qemu" % where)
            elif kind not in ("refuse", "ls", "fileeio", "filesame", "warn", "lseio", "lsnames", "absent",
                              "link", "linkeio", "linklen"):
                raise CaseError("%s: unknown expectation %s" % (where, kind))
            exp.append(words)
        refuse = [e for e in exp if e[0] == "refuse"]
        checks = [e for e in exp if e[0] == "check"]
        if refuse and len(exp) - len(checks) != 1:
            raise CaseError("%s: refuse excludes other expectations" % c["where"])
        info = {"name": c["name"], "where": c["where"], "image": os.path.join(imgdir, image),
                "opts": [fill(o) for o in c["opts"]], "secret": (fill(c["secret"]) if isinstance(c["secret"], str) else secret)
                if c["secret"] else "",
                "oracle": os.path.join(basedir, "oracle.raw"), "base": basedir,
                "expect": exp}
        # For the runner (bash): one value per file.
        def put(name, text):
            with open(os.path.join(cdir, name), "w") as f:
                f.write(text)
        put("image", info["image"])
        put("opts", "".join(o + "\n" for o in info["opts"]))
        put("secret", info["secret"])
        put("warn", "".join(e[1] + "\n" for e in exp if e[0] == "warn"))
        # vdtool check's expected exit code ("qemu": qemu-img check's);
        # a case with nothing else is not mounted.
        put("check", checks[0][1] if checks else "")
        put("checkonly", "1" if checks and len(checks) == len(exp) else "")
        if refuse:
            put("refuse", refuse[0][1])
        with open(os.path.join(cdir, "case.json"), "w") as f:
            json.dump(info, f, indent=1)
        print(c["name"])


def pread_all(path, off, ln):
    """Read LEN bytes at OFF with O_DIRECT when allowed (so the daemon sees
    this range, not the page cache's readahead); an OSError propagates."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        fd = os.open(path, os.O_RDONLY)
    try:
        out = bytearray()
        while len(out) < ln:
            b = os.pread(fd, min(1 << 20, ln - len(out)), off + len(out))
            if not b:
                break
            out += b
        return bytes(out)
    finally:
        os.close(fd)


def check(cdir, mnt):
    info = json.load(open(os.path.join(cdir, "case.json")))
    bad = []
    eios = {}
    for e in info["expect"]:
        if e[0] == "eio":
            eios.setdefault(e[1], []).append((e[2], e[3]))
    for e in info["expect"]:
        if e[0] == "check":
            continue
        try:
            check_one(info, e, mnt, eios, bad)
        except OSError as x:
            bad.append("%s: %s" % (" ".join(str(w) for w in e[:2]), x))
    for b in bad:
        print(b)
    return 1 if bad else 0


def check_one(info, e, mnt, eios, bad):
    if True:
        kind = e[0]
        if kind == "ls":
            got = sorted(os.listdir(mnt))
            want = sorted(e[1:])
            if got != want:
                bad.append("root holds %s, expected %s" % (" ".join(got), " ".join(want)))
        elif kind == "eio":
            f, off, ln = e[1], e[2], e[3]
            p = os.path.join(mnt, f)
            # The first byte, the last, and a read across the whole range.
            for o, n in ((off, 1), (off + ln - 1, 1), (off, ln)):
                try:
                    b = pread_all(p, o, n)
                    bad.append("%s: read of %d bytes at %d succeeded (%d bytes); expected EIO"
                               % (f, n, o, len(b)))
                except OSError as x:
                    if x.errno != 5:
                        bad.append("%s: read of %d bytes at %d: %s; expected EIO" % (f, n, o, x))
        elif kind == "same":
            f, base, oracle, rng = e[1], e[2], e[3], e[4]
            p = os.path.join(mnt, f)
            size = os.path.getsize(p)
            osize = os.path.getsize(oracle)
            if base + size > osize:
                bad.append("%s is %d bytes; the oracle from %d has %d" % (f, size, base, osize - base))
                return
            holes = sorted(eios.get(f, []))
            pos = 0
            spans = []
            for o, n in holes + [(size, 0)]:
                if o > pos:
                    spans.append((pos, o - pos))
                pos = max(pos, o + n)
            if rng:
                lo, hi = rng[0], rng[0] + rng[1]
                spans = [(max(o, lo), min(o + n, hi) - max(o, lo)) for o, n in spans
                         if min(o + n, hi) > max(o, lo)]
            with open(oracle, "rb") as orc:
                for o, n in spans:
                    for c in range(o, o + n, 1 << 22):
                        k = min(1 << 22, o + n - c)
                        try:
                            got = pread_all(p, c, k)
                        except OSError as x:
                            bad.append("%s: read of %d bytes at %d: %s" % (f, k, c, x))
                            return
                        orc.seek(base + c)
                        want = orc.read(k)
                        if got != want:
                            i = next((j for j in range(min(len(got), len(want)))
                                      if got[j] != want[j]), min(len(got), len(want)))
                            bad.append("%s: bytes differ from the oracle at %d (read %d of %d)"
                                       % (f, c + i, len(got), k))
                            return
        elif kind == "fileeio":
            p = os.path.join(mnt, e[1])
            try:
                with open(p, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
                bad.append("%s: read whole; expected EIO" % e[1])
            except OSError as x:
                if x.errno != 5:
                    bad.append("%s: %s; expected EIO" % (e[1], x))
        elif kind == "lseio":
            p = os.path.join(mnt, e[1])
            try:
                os.listdir(p)
                bad.append("%s: listed; expected EIO" % e[1])
            except OSError as x:
                if x.errno != 5:
                    bad.append("%s: %s; expected EIO" % (e[1], x))
        elif kind == "lsnames":
            try:
                got = sorted(os.listdir(os.path.join(mnt, e[1])))
                if got != sorted(e[2:]):
                    bad.append("%s lists %s, expected %s" % (e[1], " ".join(got[:20]), " ".join(e[2:]) or "nothing"))
            except OSError as x:
                bad.append("%s: %s; expected a listing" % (e[1], x))
        elif kind == "link":
            got = os.readlink(os.path.join(mnt, e[1]))
            if got != e[2]:
                bad.append("%s: readlink gives %r, expected %r" % (e[1], got[:200], e[2]))
        elif kind == "linklen":
            try:
                got = os.readlink(os.path.join(mnt, e[1]))
                if len(got) != int(e[2]):
                    bad.append("%s: readlink gives %d bytes, expected %s" % (e[1], len(got), e[2]))
            except OSError as x:
                bad.append("%s: %s; expected %s bytes" % (e[1], x, e[2]))
        elif kind == "linkeio":
            try:
                got = os.readlink(os.path.join(mnt, e[1]))
                bad.append("%s: readlink gives %r; expected EIO" % (e[1], got[:200]))
            except OSError as x:
                if x.errno != 5:
                    bad.append("%s: %s; expected EIO" % (e[1], x))
        elif kind == "absent":
            if os.path.lexists(os.path.join(mnt, e[1])):
                bad.append("%s exists; expected it absent" % e[1])
        elif kind == "filesame":
            p = os.path.join(mnt, e[1])
            try:
                got = open(p, "rb").read()
            except OSError as x:
                bad.append("%s: %s" % (e[1], x))
                return
            if got != open(os.path.join(info["base"], e[2]), "rb").read():
                bad.append("%s differs from %s" % (e[1], e[2]))


def main():
    a = sys.argv[1:]
    try:
        if a and a[0] == "list":
            for c in parse(a[1:]):
                print(c["name"], c["base"])
            return 0
        if a and a[0] == "prepare" and len(a) >= 4:
            prepare(a[1], a[2], a[3:])
            return 0
        if a and a[0] == "check" and len(a) == 3:
            return check(a[1], a[2])
    except CaseError as e:
        print("hostile.py: %s" % e, file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
