#!/usr/bin/env python3
"""mklvm.py — build LVM2 test volumes with lvm2's own tools, on a kernel
without device-mapper (tests/t-86-lvm.sh and bench/ use it).

Every lvm2 command runs with --devices MKLVM_DEVICES (comma-separated:
only our loop devices are seen, other workers' stay invisible) and
activation disabled, so nothing reaches device-mapper.

  mklvm.py lvm CMD ARGS...          run an lvm2 command with our options
  mklvm.py config                   print the --config string it uses
  mklvm.py edit VG OP...            vgcfgbackup VG, rewrite its metadata,
                                    vgcfgrestore --force (see OPS below)
  mklvm.py layout VG                the VG as lvm2 reports it (JSON)
  mklvm.py put VG LV=FILE...        write FILE's bytes where lvm2 says
                                    LV's extents are (linear, striped;
                                    raid1/mirror: every leg)
  mklvm.py pieces VG LV...          for each LV, LV.pieces: lines "LVOFF
                                    DISKOFF LEN", where its bytes (first
                                    leg) lie in the loop device's backing
                                    file (partition start from sysfs)
  mklvm.py thin VG POOL SPEC...     thin volumes' bytes: SPEC is
                                    NAME=FILE (every non-zero chunk gets a
                                    data block of its own) or
                                    NAME=FILE@ORIGIN (a snapshot: chunks
                                    equal to ORIGIN's share its block).
                                    Writes the mapping as thin_restore
                                    XML (POOL.xml), the pool metadata with
                                    thin_restore into _tmeta, the chunks
                                    into _tdata, in a shuffled order.
  mklvm.py vslvmcheck LAYOUT INFO   LAYOUT (from layout) and vslvminfo's
                                    output INFO agree on every linear and
                                    striped LV's segments
  mklvm.py thincheck VG POOL NAME=FILE...
                                    read _tmeta back from the devices,
                                    thin_dump it, rebuild each thin
                                    volume from _tdata and compare with
                                    FILE (a second route to the bytes)

lvcreate refuses raid1, mirror, raid5 and thin pools without
device-mapper, so those are made by editing the metadata text: lvcreate
makes plain linear LVs with temporary names (lvm2 reserves _rimage and
the like), and edit OPs turn them into the real thing; vgcfgrestore
checks the result with lvm2's own validation.

OPS (applied in order):
  linear:NAME:PV:PE:COUNT[:PV:PE:COUNT...]  a linear LV at extents we
          choose (PV as the metadata names it: pv0, pv1...), one segment
          per area; lvm2 refuses overlaps when it restores
  raid:TYPE:LV:N[:STRIPE_KIB]  temporaries LV+m0..LV+mN-1 (1 extent) and
          LV+i0..LV+iN-1 become LV_rmeta_K / LV_rimage_K under a new LV
          of segment type TYPE (raid1, raid5_ls, ...)
  mirror:LV:N   LV+i0.. become LV_mimage_K, LV+log becomes LV_mlog
  thinpool:POOL:CHUNK_KIB  POOL+tdata/POOL+tmeta become POOL_tdata and
          POOL_tmeta under a thin-pool LV POOL
  thinlv:POOL:NAME:ID:EXTENTS[:ORIGIN]  a thin volume in POOL
  many:PREFIX:COUNT:FIRST_PE:PV   COUNT linear LVs PREFIX000..., LV k of
          1 + k % 3 extents, one after another on PV from FIRST_PE
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

# Our devices are seen by no other lvm2 command on this machine, so the
# VG locks can be private too (a folder of our own): lvm2 commands of
# other jobs holding /run/lock/lvm's global lock do not stall ours.
CONFIG = ("global{activation=0 locking_dir=\"%s\"} "
          "activation{udev_sync=0 udev_rules=0} "
          "devices{obtain_device_list_from_udev=0 write_cache_state=0 hints=\"none\"} "
          "backup{backup=0 archive=0}")
QUIET = re.compile(r"WARNING: (Activation disabled|This metadata update is NOT backed up"
                   r"|Logical volume .* not zeroed|Skipping zeroing)")


def devices():
    d = os.environ.get("MKLVM_DEVICES", "")
    if not d:
        sys.exit("mklvm: MKLVM_DEVICES is not set")
    return d


def lock_dir():
    d = os.path.join(tempfile.gettempdir(), "mklvm-locks-%d" % os.getuid())
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def lvm(args, capture=False, check=True):
    cmd = [args[0], "--devices", devices(), "--config", CONFIG % lock_dir()] + list(args[1:])
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, stdin=subprocess.DEVNULL, text=True)
    err = "\n".join(l for l in p.stderr.splitlines() if not QUIET.search(l))
    if check and p.returncode != 0:
        sys.exit("mklvm: %s failed (%d): %s" % (" ".join(cmd), p.returncode, err))
    if not capture:
        sys.stdout.write(p.stdout)
        if err.strip():
            sys.stderr.write(err + "\n")
    return p.stdout


def report(cmd, fields, extra=()):
    out = lvm([cmd, "--reportformat", "json", "--units", "b", "--nosuffix",
               "-o", fields] + list(extra), capture=True)
    rep = json.loads(out)["report"][0]
    return next(iter(rep.values()))


# ------------------------------------------------------------ metadata text

def lv_uuid(rng):
    a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    s = "".join(rng.choice(a) for _ in range(32))
    parts, i = [], 0
    for n in (6, 4, 4, 4, 4, 4, 6):
        parts.append(s[i:i + n])
        i += n
    return "-".join(parts)


class Meta:
    """The vgcfgbackup text, with LV blocks found by their indentation
    (two tabs) under logical_volumes."""

    def __init__(self, text, rng):
        self.rng = rng
        lines = text.split("\n")
        if "\tlogical_volumes {" not in lines:
            # A VG without LVs has no section: add an empty one at the
            # end of the VG's block (the first line "}").
            end = lines.index("}")
            lines[end:end] = ["", "\tlogical_volumes {", "\t}"]
        lvs = lines.index("\tlogical_volumes {")
        end = lvs + 1
        while lines[end] != "\t}":
            end += 1
        self.head, self.tail = lines[:lvs + 1], lines[end:]
        self.blocks = []  # [name, [lines]]
        i = lvs + 1
        while i < end:
            m = re.match(r"^\t\t(\S+) \{$", lines[i])
            if not m:
                i += 1
                continue
            j = i
            while lines[j] != "\t\t}":
                j += 1
            self.blocks.append([m.group(1), lines[i:j + 1]])
            i = j + 1

    def text(self):
        body = []
        for _, b in self.blocks:
            body += [""] + b
        return "\n".join(self.head + body + [""] + self.tail)

    def find(self, name):
        for b in self.blocks:
            if b[0] == name:
                return b
        sys.exit("mklvm: no LV %s in the metadata" % name)

    def extents(self, name):
        total = 0
        for l in self.find(name)[1]:
            m = re.match(r"^\s*extent_count = (\d+)", l)
            if m:
                total += int(m.group(1))
        return total

    def rename(self, old, new, visible=False):
        b = self.find(old)
        b[0] = new
        b[1][0] = "\t\t%s {" % new
        for k, l in enumerate(b[1]):
            if l.startswith("\t\t\tstatus = "):
                b[1][k] = ('\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]' if visible
                           else '\t\t\tstatus = ["READ", "WRITE"]')

    def add(self, name, seg_lines, extents):
        b = ["\t\t%s {" % name,
             '\t\t\tid = "%s"' % lv_uuid(self.rng),
             '\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]',
             "\t\t\tflags = []",
             "\t\t\tcreation_time = 1700000000",
             '\t\t\tcreation_host = "mklvm"',
             "\t\t\tsegment_count = 1",
             "",
             "\t\t\tsegment1 {",
             "\t\t\t\tstart_extent = 0",
             "\t\t\t\textent_count = %d" % extents,
             ""]
        b += ["\t\t\t\t" + l for l in seg_lines]
        b += ["\t\t\t}", "\t\t}"]
        self.blocks.append([name, b])


def op_raid(meta, typ, lv, n, stripe_kib=None):
    n = int(n)
    names = []
    for k in range(n):
        meta.rename("%s+m%d" % (lv, k), "%s_rmeta_%d" % (lv, k))
        meta.rename("%s+i%d" % (lv, k), "%s_rimage_%d" % (lv, k))
        names += ['"%s_rmeta_%d"' % (lv, k), '"%s_rimage_%d"' % (lv, k)]
    img = meta.extents("%s_rimage_0" % lv)
    data = img if typ in ("raid1",) else img * (n - {"raid4": 1, "raid5": 1, "raid6": 2}
                                                .get(typ[:5], 1))
    seg = ['type = "%s"' % typ, "device_count = %d" % n]
    if stripe_kib:
        seg.append("stripe_size = %d" % (int(stripe_kib) * 2))
    seg += ["region_size = 1024", "", "raids = [", "\t" + ", ".join(names), "]"]
    meta.add(lv, seg, data)


def op_mirror(meta, lv, n):
    n = int(n)
    names = []
    for k in range(n):
        meta.rename("%s+i%d" % (lv, k), "%s_mimage_%d" % (lv, k))
        names.append('"%s_mimage_%d", 0' % (lv, k))
    meta.rename("%s+log" % lv, "%s_mlog" % lv)
    seg = ['type = "mirror"', "mirror_count = %d" % n, 'mirror_log = "%s_mlog"' % lv,
           "region_size = 1024", "", "mirrors = [", "\t" + ", ".join(names), "]"]
    meta.add(lv, seg, meta.extents("%s_mimage_0" % lv))


def op_thinpool(meta, pool, chunk_kib):
    meta.rename("%s+tdata" % pool, "%s_tdata" % pool)
    meta.rename("%s+tmeta" % pool, "%s_tmeta" % pool)
    seg = ['type = "thin-pool"', 'metadata = "%s_tmeta"' % pool,
           'pool = "%s_tdata"' % pool, "transaction_id = 1000",
           "chunk_size = %d" % (int(chunk_kib) * 2), 'discards = "passdown"',
           "zero_new_blocks = 0"]
    meta.add(pool, seg, meta.extents("%s_tdata" % pool))


def op_thinlv(meta, pool, name, dev_id, extents, origin=None):
    seg = ['type = "thin"', 'thin_pool = "%s"' % pool, "transaction_id = %d" % int(dev_id),
           "device_id = %d" % int(dev_id)]
    if origin:
        seg.append('origin = "%s"' % origin)
    meta.add(name, seg, int(extents))


def op_linear(meta, name, *areas):
    """A linear LV at extents we choose: PV:PE:COUNT, one segment each."""
    segs, start = [], 0
    for k in range(0, len(areas), 3):
        pv, pe, n = areas[k], int(areas[k + 1]), int(areas[k + 2])
        segs.append((start, n, pv, pe))
        start += n
    b = ["\t\t%s {" % name, '\t\t\tid = "%s"' % lv_uuid(meta.rng),
         '\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]', "\t\t\tflags = []",
         "\t\t\tcreation_time = 1700000000", '\t\t\tcreation_host = "mklvm"',
         "\t\t\tsegment_count = %d" % len(segs)]
    for i, (st, n, pv, pe) in enumerate(segs):
        b += ["", "\t\t\tsegment%d {" % (i + 1), "\t\t\t\tstart_extent = %d" % st,
              "\t\t\t\textent_count = %d" % n, "", '\t\t\t\ttype = "striped"',
              "\t\t\t\tstripe_count = 1", "", "\t\t\t\tstripes = [",
              '\t\t\t\t\t"%s", %d' % (pv, pe), "\t\t\t\t]", "\t\t\t}"]
    b.append("\t\t}")
    meta.blocks.append([name, b])


def op_many(meta, prefix, count, first_pe, pv):
    pe = int(first_pe)
    for k in range(int(count)):
        n = 1 + k % 3
        seg = ['type = "striped"', "stripe_count = 1", "", "stripes = [",
               '\t"%s", %d' % (pv, pe), "]"]
        meta.add("%s%03d" % (prefix, k), seg, n)
        pe += n


def cmd_edit(vg, ops):
    rng = random.Random(vg + " ".join(ops))
    with tempfile.TemporaryDirectory() as td:
        f = os.path.join(td, "vg")
        lvm(["vgcfgbackup", "-f", f, vg], capture=True)
        meta = Meta(open(f).read(), rng)
        for op in ops:
            w = op.split(":")
            fn = {"linear": op_linear, "raid": op_raid, "mirror": op_mirror, "thinpool": op_thinpool,
                  "thinlv": op_thinlv, "many": op_many}.get(w[0])
            if not fn:
                sys.exit("mklvm: unknown op %s" % op)
            fn(meta, *w[1:])
        open(f, "w").write(meta.text())
        if os.environ.get("MKLVM_KEEP"):
            open(os.environ["MKLVM_KEEP"], "w").write(meta.text())
        lvm(["vgcfgrestore", "--force", "-f", f, vg], capture=True)


# ------------------------------------------------------------ layout

def layout(vg):
    vgs = report("vgs", "vg_name,vg_uuid,vg_extent_size", [vg])
    ext = int(vgs[0]["vg_extent_size"])
    pvs = {}
    for p in report("pvs", "pv_name,pv_uuid,pe_start,vg_name"):
        if p["vg_name"] == vg:
            pvs[p["pv_name"]] = {"uuid": p["pv_uuid"], "pe_start": int(p["pe_start"])}
    lvs = {}
    for s in report("lvs", "lv_name,lv_uuid,segtype,seg_start_pe,seg_size_pe,stripes,"
                    "stripe_size,seg_pe_ranges,lv_size,thin_id,pool_lv,origin,chunk_size",
                    ["-a", "--segments", vg]):
        name = s["lv_name"].strip("[]")
        ranges = []
        for r in s["seg_pe_ranges"].split():
            m = re.match(r"^(.*):(\d+)-(\d+)$", r)
            if not m:
                sys.exit("mklvm: cannot read the PE range %r of %s" % (r, name))
            ranges.append([m.group(1).strip("[]"), int(m.group(2)), int(m.group(3))])
        lvs.setdefault(name, {"uuid": s["lv_uuid"], "size": int(s["lv_size"]),
                              "thin_id": s["thin_id"], "pool": s["pool_lv"].strip("[]"),
                              "origin": s["origin"], "chunk": int(s["chunk_size"] or 0),
                              "segs": []})
        lvs[name]["segs"].append({"type": s["segtype"], "start": int(s["seg_start_pe"]),
                                  "extents": int(s["seg_size_pe"]),
                                  "stripes": int(s["stripes"]),
                                  "stripe_size": int(s["stripe_size"]), "ranges": ranges})
    return {"vg": vg, "uuid": vgs[0]["vg_uuid"], "extent_size": ext, "pvs": pvs, "lvs": lvs}


def pieces(lay, lv, off, n):
    """(device, device offset, length) pieces of LV bytes off..off+n, one
    list per leg (raid1/mirror have several; everything else one)."""
    ext = lay["extent_size"]
    out = []
    info = lay["lvs"][lv]
    legs = None
    for seg in info["segs"]:
        s0, s1 = seg["start"] * ext, (seg["start"] + seg["extents"]) * ext
        a, b = max(off, s0), min(off + n, s1)
        if a >= b:
            continue
        t = seg["type"]
        if t in ("raid1", "mirror"):
            sub = [r for r in seg["ranges"] if "_rmeta_" not in r[0]]
            got = [pieces(lay, r[0], r[1] * ext + a - s0, b - a)[0] for r in sub]
        elif t in ("linear", "striped"):
            k = len(seg["ranges"])
            ss = seg["stripe_size"] if k > 1 else (b - a)
            got, x = [[]], a - s0
            while x < b - s0:
                if k == 1:
                    stripe, within = 0, x
                    ln = b - s0 - x
                else:
                    c = x // ss
                    stripe, row = c % k, c // k
                    within = row * ss + x % ss
                    ln = min(ss - x % ss, b - s0 - x)
                dev, pe0, _ = seg["ranges"][stripe]
                if dev in lay["pvs"]:
                    got[0].append((dev, lay["pvs"][dev]["pe_start"] + pe0 * ext + within, ln))
                else:  # a sub-LV (a raid image, _tdata): resolve through it
                    got[0] += pieces(lay, dev, pe0 * ext + within, ln)[0]
                x += ln
        else:
            sys.exit("mklvm: cannot place bytes in %s segment of %s" % (t, lv))
        if legs is None:
            legs = [[] for _ in got]
        for k, g in enumerate(got):
            legs[k] += g
    return legs or [[]]


FDS = {}  # (device, mode) -> fd, open until close_all()


def dev_fd(dev, mode):
    if (dev, mode) not in FDS:
        FDS[(dev, mode)] = os.open(dev, mode)
    return FDS[(dev, mode)]


def close_all():
    for (_, mode), fd in FDS.items():
        if mode == os.O_WRONLY:
            os.fsync(fd)
        os.close(fd)
    FDS.clear()


def write_at(lay, lv, off, data):
    for leg in pieces(lay, lv, off, len(data)):
        pos = 0
        for dev, doff, ln in leg:
            os.pwrite(dev_fd(dev, os.O_WRONLY), data[pos:pos + ln], doff)
            pos += ln
        if pos != len(data):
            sys.exit("mklvm: %s: placed %d of %d bytes" % (lv, pos, len(data)))


def read_at(lay, lv, off, n):
    # What was written must be on the device before it is read back.
    close_all()
    out = b""
    for dev, doff, ln in pieces(lay, lv, off, n)[0]:
        out += os.pread(dev_fd(dev, os.O_RDONLY), ln, doff)
    return out


def cmd_put(vg, specs):
    lay = layout(vg)
    for spec in specs:
        lv, path = spec.split("=", 1)
        put_one(lay, lv, path)


def put_one(lay, lv, path):
    size = lay["lvs"][lv]["size"]
    have = os.path.getsize(path)
    if have > size:
        sys.exit("mklvm: %s is %d bytes, LV %s only %d" % (path, have, lv, size))
    step = 4 << 20
    with open(path, "rb") as f:
        for off in range(0, size, step):
            chunk = f.read(min(step, size - off))
            chunk += bytes(min(step, size - off) - len(chunk))
            write_at(lay, lv, off, chunk)


def dev_start(dev):
    """The byte offset of a partition device in its disk (0 for a whole
    device)."""
    name = os.path.basename(os.path.realpath(dev))
    try:
        return int(open("/sys/class/block/%s/start" % name).read()) * 512
    except FileNotFoundError:
        return 0


def cmd_pieces(vg, lvs):
    lay = layout(vg)
    for lv in lvs:
        with open(lv + ".pieces", "w") as f:
            off = 0
            for dev, doff, ln in pieces(lay, lv, 0, lay["lvs"][lv]["size"])[0]:
                f.write("%d %d %d\n" % (off, dev_start(dev) + doff, ln))
                off += ln


# ------------------------------------------------------------ thin

def chunks_of(path, cs):
    with open(path, "rb") as f:
        data = f.read()
    return [data[i:i + cs] for i in range(0, len(data), cs)]


def cmd_thin(vg, pool, specs):
    lay = layout(vg)
    p = lay["lvs"][pool]
    cs = p["chunk"]
    tdata, tmeta = pool + "_tdata", pool + "_tmeta"
    nr_blocks = lay["lvs"][tdata]["size"] // cs
    rng = random.Random(vg + pool)
    # Shuffled runs of 4 blocks: thin_restore gets both single and range
    # mappings, and a volume's chunks are not in order on _tdata.
    runs = [list(range(b, min(b + 4, nr_blocks))) for b in range(0, nr_blocks, 4)]
    rng.shuffle(runs)
    free = [b for r in reversed(runs) for b in reversed(r)]
    blocks = {}  # name -> {thin block: data block}
    content = {}
    devs = []
    for spec in specs:
        name, path = spec.split("=", 1)
        origin = None
        if "@" in path:
            path, origin = path.split("@", 1)
        info = lay["lvs"][name]
        if os.path.getsize(path) != info["size"]:
            sys.exit("mklvm: %s is not %d bytes (the size of %s)" % (path, info["size"], name))
        ch = chunks_of(path, cs)
        content[name] = ch
        m = {}
        for i, c in enumerate(ch):
            if not any(c):
                continue
            if origin and i in blocks[origin] and content[origin][i] == c:
                m[i] = blocks[origin][i]  # shared with the origin
                continue
            if not free:
                sys.exit("mklvm: pool %s is full" % pool)
            m[i] = free.pop()
            write_at(lay, tdata, m[i] * cs, c.ljust(cs, b"\0"))
        blocks[name] = m
        devs.append((int(info["thin_id"]), name, m, info["size"] // cs))
    # The XML: runs of consecutive blocks become range mappings.
    x = ['<superblock uuid="" time="1" transaction="1000" version="2" '
         'data_block_size="%d" nr_data_blocks="%d">' % (cs // 512, nr_blocks)]
    for dev_id, name, m, nblk in sorted(devs):
        x.append('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
                 'creation_time="0" snap_time="1">' % (dev_id, len(m), dev_id))
        keys = sorted(m)
        i = 0
        while i < len(keys):
            j = i
            while j + 1 < len(keys) and keys[j + 1] == keys[j] + 1 and \
                    m[keys[j + 1]] == m[keys[j]] + 1:
                j += 1
            if j == i:
                x.append('    <single_mapping origin_block="%d" data_block="%d" time="0"/>'
                         % (keys[i], m[keys[i]]))
            else:
                x.append('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" '
                         'time="0"/>' % (keys[i], m[keys[i]], j - i + 1))
            i = j + 1
        x.append("  </device>")
    x.append("</superblock>")
    xml = pool + ".xml"
    open(xml, "w").write("\n".join(x) + "\n")
    msize = lay["lvs"][tmeta]["size"]
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "tmeta")
        with open(out, "wb") as f:
            f.truncate(msize)
        subprocess.run(["thin_restore", "-q", "-i", xml, "-o", out], check=True)
        subprocess.run(["thin_check", "-q", out], check=True)
        with open(out, "rb") as f:
            write_at(lay, tmeta, 0, f.read())
    json.dump({n: {str(k): v for k, v in blocks[n].items()} for n in blocks},
              open(pool + ".map.json", "w"))


def cmd_thincheck(vg, pool, specs):
    """A second route to the thin volumes' bytes: thin_dump of the
    metadata read back from the devices, not our XML."""
    lay = layout(vg)
    cs = lay["lvs"][pool]["chunk"]
    tdata, tmeta = pool + "_tdata", pool + "_tmeta"
    with tempfile.TemporaryDirectory() as td:
        m = os.path.join(td, "tmeta")
        with open(m, "wb") as f:
            f.write(read_at(lay, tmeta, 0, lay["lvs"][tmeta]["size"]))
        subprocess.run(["thin_check", "-q", m], check=True)
        xml = subprocess.run(["thin_dump", m], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
    maps, cur = {}, None
    for l in xml.splitlines():
        a = dict(re.findall(r'(\w+)="([^"]*)"', l))
        if "<device " in l:
            cur = maps.setdefault(int(a["dev_id"]), {})
        elif "<single_mapping" in l:
            cur[int(a["origin_block"])] = int(a["data_block"])
        elif "<range_mapping" in l:
            for k in range(int(a["length"])):
                cur[int(a["origin_begin"]) + k] = int(a["data_begin"]) + k
    bad = 0
    for spec in specs:
        name, path = spec.split("=", 1)
        info = lay["lvs"][name]
        mp = maps.get(int(info["thin_id"]), {})
        want = open(path, "rb").read()
        for i in range(info["size"] // cs):
            got = read_at(lay, tdata, mp[i] * cs, cs) if i in mp else bytes(cs)
            if got != want[i * cs:(i + 1) * cs]:
                print("%s: chunk %d differs (data block %s)" % (name, i, mp.get(i)))
                bad += 1
                break
        print("%s: thin id %s, %d mapped chunks" % (name, info["thin_id"], len(mp)))
    sys.exit(1 if bad else 0)


def cmd_vslvmcheck(layfile, infofile):
    """libvslvm (vslvminfo's output) and lvm2 (a layout) must agree on
    every linear and striped LV: its segments' offsets and sizes, and
    each stripe's PV and offset in the PV's data area."""
    lay = json.load(open(layfile))
    ext = lay["extent_size"]
    uuid_of_dev = {d: p["uuid"] for d, p in lay["pvs"].items()}
    pv_uuid, lvs, cur, seg = {}, {}, None, None
    pvname = None
    for l in open(infofile, errors="replace"):
        l = l.strip()
        k, _, v = l.partition(":")
        v = v.strip()
        if l.startswith("Physical Volume (PV)"):
            cur, pvname = "pv", None
        elif l.startswith("Logical Volume (LV)"):
            cur = "lv"
        elif k == "Name" and cur == "pv":
            pvname = v
        elif k == "Identifier" and cur == "pv":
            pv_uuid[pvname] = v
        elif k == "Name" and cur == "lv":
            lv = lvs.setdefault(v, [])
        elif l.startswith("Segment:"):
            seg = {"stripes": []}
            lv.append(seg)
        elif k == "Offset":
            seg["offset"] = int(v.split("(")[1].rstrip(")"))
        elif k == "Size" and seg is not None and cur == "lv":
            seg["size"] = int(v.split("(")[1].split()[0])
        elif k == "Physical volume":
            seg["stripes"].append([v])
        elif k == "Data area offset":
            seg["stripes"][-1].append(int(v.split("(")[1].rstrip(")")))
    bad, n = 0, 0
    for name, info in lay["lvs"].items():
        if any(s["type"] not in ("linear", "striped") for s in info["segs"]):
            continue
        if any(r[0] not in uuid_of_dev for s in info["segs"] for r in s["ranges"]):
            continue
        want = [(s["start"] * ext, s["extents"] * ext,
                 [(uuid_of_dev[r[0]], r[1] * ext) for r in s["ranges"]])
                for s in info["segs"]]
        got = [(s.get("offset"), s.get("size"),
                [(pv_uuid.get(t[0]), t[1] if len(t) > 1 else None) for t in s["stripes"]])
               for s in lvs.get(name, [])]
        n += 1
        if sorted(got) != sorted(want):
            print("%s: libvslvm %s, lvm2 %s" % (name, got, want))
            bad += 1
    print("%d LVs compared, %d differ" % (n, bad))
    sys.exit(1 if bad or not n else 0)


def main():
    try:
        run(sys.argv[1:])
    finally:
        close_all()


def run(a):
    if not a:
        sys.exit(__doc__)
    c = a[0]
    if c == "lvm":
        lvm(a[1:])
    elif c == "config":
        print(CONFIG % lock_dir())
    elif c == "edit":
        cmd_edit(a[1], a[2:])
    elif c == "layout":
        json.dump(layout(a[1]), sys.stdout, indent=1)
        print()
    elif c == "put":
        cmd_put(a[1], a[2:])
    elif c == "pieces":
        cmd_pieces(a[1], a[2:])
    elif c == "thin":
        cmd_thin(a[1], a[2], a[3:])
    elif c == "vslvmcheck":
        cmd_vslvmcheck(a[1], a[2])
    elif c == "thincheck":
        cmd_thincheck(a[1], a[2], a[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
