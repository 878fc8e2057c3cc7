#!/usr/bin/python3
"""vicompare.py VDTOOL_JSON VIRT_INSPECTOR_XML [--differs FIELD=WHY]...

Compares what `vdtool inspect --json --packages` and libguestfs's
`virt-inspector` report for the same image, field by field, for every
field both give: the root, OS type, distribution, major and minor version,
product name, hostname, architecture, package format and manager, the
installed packages (count, and name/epoch/version/release for Linux),
the fstab's mountpoints that name a filesystem of the image (a Windows
root is mounted at "/", as libguestfs says), and for Windows the system
root, current control set and drive letters.

libguestfs names devices as its appliance sees them (/dev/sda2,
/dev/VG/LV, btrfsvol:/dev/sda1/root, a whole-disk filesystem as /dev/sda);
they are mapped onto vdmount's paths (/p2, /VG-LV, /p1/root, /fs).

A field may be declared a known difference with --differs FIELD=WHY (it
is then reported, not failed; where both agree after all, as another
libguestfs release may, that is said too). Exit 0 when everything else agrees, 1
with one line per difference otherwise, 2 on unreadable input.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET


def vd_path(dev):
    """libguestfs's device name -> vdmount's path (None if unknown)."""
    if dev is None:
        return None
    m = re.fullmatch(r"btrfsvol:(/dev/[^/]+)/(.*)", dev)
    if m:
        base = vd_path(m.group(1))
        return None if base is None else base + "/" + m.group(2).strip("/")
    m = re.fullmatch(r"/dev/[sv]d[a-z]+", dev)
    if m:
        return "/fs"
    m = re.fullmatch(r"/dev/[sv]d[a-z]+([0-9]+)", dev)
    if m:
        return "/p" + m.group(1)
    m = re.fullmatch(r"/dev/([^/]+)/([^/]+)", dev)
    if m and m.group(1) != "mapper":
        return "/" + m.group(1).replace("-", "--") + "-" + m.group(2).replace("-", "--")
    return None


def text(e, tag):
    c = e.find(tag)
    return None if c is None or c.text is None else c.text


def num(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def virt_facts(o):
    f = {}
    f["root"] = vd_path(text(o, "root"))
    f["type"] = text(o, "name")
    f["distro"] = text(o, "distro")
    f["major_version"] = num(text(o, "major_version"))
    f["minor_version"] = num(text(o, "minor_version"))
    f["product_name"] = text(o, "product_name")
    f["hostname"] = text(o, "hostname")
    f["arch"] = text(o, "arch")
    f["package_format"] = text(o, "package_format")
    f["package_management"] = text(o, "package_management")
    mps = o.find("mountpoints")
    f["mountpoints"] = sorted(
        (m.text, vd_path(m.get("dev"))) for m in (mps if mps is not None else []))
    apps = o.find("applications")
    if apps is not None:
        al = list(apps)
        f["packages_count"] = len(al)
        f["packages"] = sorted(
            (text(a, "name"), num(text(a, "epoch")) or 0, text(a, "version") or "",
             text(a, "release") or "") for a in al)
        f["package_names"] = sorted(text(a, "name") for a in al)
    if f["type"] == "windows":
        f["windows_systemroot"] = text(o, "windows_systemroot")
        f["windows_current_control_set"] = text(o, "windows_current_control_set")
        dms = o.find("drive_mappings")
        f["drive_mappings"] = sorted(
            (d.get("name").rstrip(":") + ":", vd_path(d.text))
            for d in (dms if dms is not None else []))
    return f


def vd_facts(o):
    f = {k: o.get(k) for k in (
        "root", "type", "distro", "major_version", "minor_version",
        "product_name", "hostname", "arch", "package_format",
        "package_management", "packages_count")}
    # virt-inspector lists only the fstab entries it could resolve to a
    # filesystem of the image; so does this.
    f["mountpoints"] = sorted(
        (m["mountpoint"], m["path"]) for m in o.get("mountpoints") or []
        if m.get("path"))
    apps = o.get("applications")
    if apps is not None:
        f["packages"] = sorted(
            (a["name"], num(a.get("epoch")) or 0, a.get("version") or "",
             a.get("release") or "") for a in apps)
        f["package_names"] = sorted(a["name"] for a in apps)
    if f["type"] == "windows":
        # libguestfs names a Windows root's filesystem mountpoint "/".
        f["mountpoints"] = [("/", f["root"])]
        f["windows_systemroot"] = o.get("windows_systemroot")
        f["windows_current_control_set"] = o.get("windows_current_control_set")
        f["drive_mappings"] = sorted(
            (d["name"], d["path"]) for d in o.get("drive_mappings") or []
            if d.get("path"))
    return f


def short(v):
    s = json.dumps(v)
    return s if len(s) <= 300 else s[:300] + "..."


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    differs = {}
    args = sys.argv[3:]
    while args:
        if args[0] != "--differs" or len(args) < 2 or "=" not in args[1]:
            sys.exit("usage: vicompare.py JSON XML [--differs FIELD=WHY]...")
        k, why = args[1].split("=", 1)
        differs[k] = why
        args = args[2:]
    try:
        vj = json.load(open(sys.argv[1]))
        vx = ET.parse(sys.argv[2]).getroot()
    except (OSError, ValueError, ET.ParseError) as e:
        print("unreadable input: %s" % e)
        sys.exit(2)
    voss = vj.get("operatingsystems") or []
    xoss = vx.findall("operatingsystem")
    bad = []
    if len(voss) != len(xoss):
        bad.append("operating systems: vdtool %d, virt-inspector %d" % (len(voss), len(xoss)))
    xs = {}
    for x in xoss:
        xf = virt_facts(x)
        xs[xf["root"]] = xf
    agreed = []
    for o in voss:
        vf = vd_facts(o)
        xf = xs.get(vf["root"])
        if xf is None:
            bad.append("root %s: virt-inspector found no OS there (its roots: %s)"
                       % (vf["root"], short(sorted(str(k) for k in xs))))
            continue
        for k in xf:
            if k not in vf or vf[k] is None and xf[k] is None:
                continue
            if k in ("packages", "package_names") and "packages" not in vf:
                continue
            same = vf[k] == xf[k]
            if k in differs:
                if same:
                    # Another libguestfs release may agree: say so only.
                    print("declared different (%s) but both say %s: %s"
                          % (differs[k], k, short(vf[k])))
                else:
                    print("known difference %s %s (%s): vdtool %s, virt-inspector %s"
                          % (vf["root"], k, differs[k], short(vf[k]), short(xf[k])))
                continue
            if same:
                agreed.append(k)
            elif k == "packages" and vf.get("package_names") != xf.get("package_names"):
                # The names differ: say which, not the whole list.
                a, b = set(vf["package_names"]), set(xf["package_names"])
                bad.append("%s packages: only vdtool lists %s; only virt-inspector %s"
                           % (vf["root"], short(sorted(a - b)[:10]), short(sorted(b - a)[:10])))
            elif k == "packages":
                d = sorted(set(vf[k]) ^ set(xf[k]))[:6]
                bad.append("%s packages' versions differ: %s" % (vf["root"], short(d)))
            else:
                bad.append("%s %s: vdtool %s, virt-inspector %s"
                           % (vf["root"], k, short(vf[k]), short(xf[k])))
    print("agree: " + " ".join(agreed))
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
