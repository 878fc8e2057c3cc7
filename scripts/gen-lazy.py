#!/usr/bin/python3
"""Write common/lazy-LIB.c: stand-ins for the functions vdmount and vdtool
call in libraries they need only for some images (encryption, NTFS, some
btrfs checksums and compression), which load the library with dlopen on
first use instead of at every start (see common/lazy.h).

    python3 scripts/gen-lazy.py      # after adding a function to a list

Each stand-in has the prototype of the library's header (the compiler
checks it against the header), finds the real function once and calls
it. The prototypes are taken from the preprocessed headers."""
import os
import re
import subprocess
import sys

LIBS = [
    ("cryptsetup", "libcryptsetup", ["libcryptsetup.h"], [
        "crypt_free", "crypt_get_cipher", "crypt_get_cipher_mode",
        "crypt_get_data_offset", "crypt_get_integrity_info",
        "crypt_get_iv_offset", "crypt_get_label", "crypt_get_sector_size",
        "crypt_get_type", "crypt_get_uuid", "crypt_get_volume_key_size",
        "crypt_init", "crypt_keyslot_area", "crypt_keyslot_get_pbkdf",
        "crypt_keyslot_max", "crypt_keyslot_status", "crypt_load",
        "crypt_metadata_locking", "crypt_reencrypt_status",
        "crypt_set_debug_level", "crypt_set_log_callback",
        "crypt_volume_key_get"]),
    ("crypto", "libcrypto", ["openssl/evp.h", "openssl/crypto.h"], [
        "CRYPTO_memcmp", "EVP_CIPHER_CTX_copy", "EVP_CIPHER_CTX_free",
        "EVP_CIPHER_CTX_get_block_size", "EVP_CIPHER_CTX_get_iv_length",
        "EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_set_padding",
        "EVP_CIPHER_get_key_length", "EVP_CipherInit_ex",
        "EVP_DecryptInit_ex", "EVP_DecryptUpdate", "EVP_Digest",
        "EVP_DigestFinal_ex", "EVP_DigestInit_ex", "EVP_DigestUpdate",
        "EVP_EncryptInit_ex", "EVP_EncryptUpdate", "EVP_CipherUpdate", "EVP_MD_CTX_free",
        "EVP_MD_CTX_new", "EVP_MD_get_size", "EVP_get_cipherbyname",
        "EVP_get_digestbyname", "OPENSSL_cleanse", "PKCS5_PBKDF2_HMAC",
        "EVP_aes_128_ctr"]),
    ("ntfs3g", "libntfs-3g", [
        "ntfs-3g/types.h", "ntfs-3g/attrib.h", "ntfs-3g/cache.h",
        "ntfs-3g/device.h", "ntfs-3g/dir.h", "ntfs-3g/ea.h",
        "ntfs-3g/inode.h", "ntfs-3g/logfile.h", "ntfs-3g/logging.h",
        "ntfs-3g/reparse.h", "ntfs-3g/security.h", "ntfs-3g/unistr.h",
        "ntfs-3g/volume.h", "ntfs-3g/xattrs.h"], [
        "ntfs_attr_close", "ntfs_attr_get_search_ctx", "ntfs_attr_lookup",
        "ntfs_attr_map_whole_runlist", "ntfs_attr_open", "ntfs_attr_pread",
        "ntfs_attr_put_search_ctx", "ntfs_check_logfile",
        "ntfs_create_lru_caches", "ntfs_destroy_security_context",
        "ntfs_device_alloc", "ntfs_device_free", "ntfs_device_mount",
        "ntfs_ea_check_wsldev", "ntfs_get_reparse_point",
        "ntfs_inode_close", "ntfs_inode_lookup_by_mbsname",
        "ntfs_inode_open", "ntfs_interix_types", "ntfs_is_logfile_clean",
        "ntfs_log_set_handler", "ntfs_log_set_levels", "ntfs_make_symlink",
        "ntfs_mbstoucs", "ntfs_readdir", "ntfs_reparse_check_wsl",
        "ntfs_set_shown_files", "ntfs_ucstombs", "ntfs_umount",
        "ntfs_volume_check_hiberfile", "ntfs_volume_get_free_space",
        "ntfs_xattr_system_getxattr", "ntfs_xattr_system_type"]),
    ("lzo2", "lzo2", ["lzo/lzo1x.h"], ["lzo1x_decompress_safe"]),
    ("xxhash", "libxxhash", ["xxhash.h"], ["XXH64"]),
    ("b2", "libb2", ["blake2.h"], ["blake2b"]),
    # vdtool inspect alone: Windows hives, rpm databases (librpm; the
    # rpmio functions are found through it, a library it depends on).
    ("hivex", "hivex", ["hivex.h"], [
        "hivex_close", "hivex_node_children", "hivex_node_get_child",
        "hivex_node_get_value", "hivex_node_name", "hivex_node_values",
        "hivex_open", "hivex_root", "hivex_value_dword", "hivex_value_key",
        "hivex_value_string", "hivex_value_type", "hivex_value_value"]),
    ("rpm", "rpm", [
        "rpm/header.h", "rpm/rpmdb.h", "rpm/rpmlib.h", "rpm/rpmlog.h",
        "rpm/rpmmacro.h", "rpm/rpmts.h"], [
        "headerGetNumber", "headerGetString", "headerIsEntry",
        "rpmPopMacro", "rpmPushMacro", "rpmReadConfigFiles",
        "rpmdbFreeIterator", "rpmdbNextIterator", "rpmlogRecMessage",
        "rpmlogRecPriority", "rpmlogSetCallback", "rpmtsCreate",
        "rpmtsFree", "rpmtsInitIterator", "rpmtsOpenDB",
        "rpmtsSetRootDir", "rpmtsSetVSFlags"]),
    ("sqlite3", "sqlite3", ["sqlite3.h"], [
        "sqlite3_close", "sqlite3_errmsg", "sqlite3_errstr",
        "sqlite3_exec", "sqlite3_free", "sqlite3_open_v2"]),
]

# System headers some library headers expect to have been included.
PRE = ["stdarg.h", "stddef.h", "stdint.h", "sys/types.h", "sys/stat.h",
       "time.h"]

IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def cflags(pkg):
    return subprocess.run(["pkg-config", "--cflags", pkg], check=True,
                          capture_output=True, text=True).stdout.split()


def protos(pkg, headers):
    src = "".join("#include <%s>\n" % h for h in PRE + headers)
    out = subprocess.run(["gcc", "-E", "-P", "-D_GNU_SOURCE", "-x", "c", "-"]
                         + cflags(pkg), input=src, check=True,
                         capture_output=True, text=True).stdout
    return " ".join(out.split()).split(";")


def split_params(p):
    parts, depth, cur = [], 0, ""
    for ch in p:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch in "(["
        depth -= ch in ")]"
        cur += ch
    parts.append(cur)
    return [x.strip() for x in parts]


def param_name(p):
    p = re.sub(r"__attribute__\s*\(\(.*\)\)", "", p)
    m = re.search(r"\(\s*\*\s*([A-Za-z_][A-Za-z_0-9]*)\s*\)", p)
    if m:
        return m.group(1)
    names = IDENT.findall(p)
    return names[-1]


TYPE_WORDS = {"int", "char", "long", "short", "unsigned", "signed",
              "double", "float", "void", "_Bool", "const", "volatile"}


def unnamed(p):
    """Whether parameter declaration p names no parameter: it ends with a
    pointer star, or with a type word, or is a single (typedef) name."""
    p = re.sub(r"__attribute__\s*\(\(.*\)\)", "", p).strip()
    if "(" in p:
        return False
    if p.endswith("*"):
        return True
    words = IDENT.findall(p)
    words = [w for w in words if w not in ("const", "volatile", "struct",
                                           "union", "enum")]
    return len(words) <= 1 or words[-1] in TYPE_WORDS


def stub(decls, name):
    pat = re.compile(r"(?:^|[\s*])%s\s*\(" % re.escape(name))
    for d in decls:
        d = d.strip()
        if d.startswith("typedef") or "{" in d:
            continue
        m = pat.search(d)
        if not m:
            continue
        start = d.index("(", m.start())
        ret = d[:start].strip()
        ret = re.sub(r"^(extern|__extern_always_inline)\s+", "", ret)
        ret = ret[: ret.rfind(name)].strip()
        params = d[start + 1: d.rindex(")")].strip()
        if params in ("", "void"):
            args = []
        else:
            # A parameter without a name (sqlite3.h has them) gets one.
            plist = split_params(params)
            for i, p in enumerate(plist):
                if p != "..." and unnamed(p):
                    plist[i] = "%s a%d" % (p, i)
            params = ", ".join(plist)
            args = [param_name(p) for p in plist]
        if "..." in args:
            sys.exit("%s: variadic, not supported" % name)
        proto = "%s%s%s(%s)" % (ret, "" if ret.endswith("*") else " ",
                               name, params or "void")
        call = "f(%s)" % ", ".join(args)
        body = ("\tVD_LAZY_FN(%s);\n\n\t%s%s;\n" %
                (name, "" if ret == "void" else "return ", call))
        return "%s\n{\n%s}\n" % (proto, body)
    sys.exit("%s: no prototype found" % name)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for lib, pkg, headers, funcs in LIBS:
        decls = protos(pkg, headers)
        out = ["/* Generated by scripts/gen-lazy.py: stand-ins that load "
               "%s on first use\n * (common/lazy.h). Do not edit. */" % pkg]
        out += ["#include <%s>" % h for h in PRE]
        out += [""] + ["#include <%s>" % h for h in headers]
        out += ["", '#include "common/lazy.h"', "",
                "#define VD_LAZY_LIB vd_lazy_%s" % lib, ""]
        out += [stub(decls, f) for f in funcs]
        path = os.path.join(root, "common", "lazy-%s.c" % lib)
        with open(path, "w") as fh:
            fh.write("\n".join(out))
        print("wrote", path)


main()
