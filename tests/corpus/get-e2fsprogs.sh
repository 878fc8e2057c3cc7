#!/bin/bash
# tests/corpus/get-e2fsprogs.sh DEST — put e2fsprogs' source tree (its
# tests/*/image.gz and image.bz2 are the corpus) in DEST/e2fsprogs and
# print that folder.
#
# With VD_E2FSPROGS_SRC set, that folder is used as it is (an unpacked
# e2fsprogs source tree, or any folder holding tests/*/image.*): nothing
# is downloaded. Otherwise Debian bookworm's source package is fetched
# with `apt-get source` after adding a deb-src entry for it
# (/etc/apt/sources.list.d/vdmount-src.sources, written once; apt-get
# update runs only when the entry was new or apt knows no e2fsprogs
# source). Idempotent: a DEST that already holds the tree is reused.
# Exits 2 with one line on stderr saying why when the tree cannot be had
# (no network, no root to add the entry), so a test can skip with it.
set -u

if [ -n "${VD_E2FSPROGS_SRC:-}" ]; then
	if ! ls "$VD_E2FSPROGS_SRC"/tests/*/image.* >/dev/null 2>&1; then
		echo "VD_E2FSPROGS_SRC=$VD_E2FSPROGS_SRC holds no tests/*/image.*" >&2
		exit 2
	fi
	echo "$VD_E2FSPROGS_SRC"
	exit 0
fi

dest=${1:?usage: get-e2fsprogs.sh DEST}
tree=$dest/e2fsprogs
if [ -e "$tree/.ok" ]; then
	echo "$tree"
	exit 0
fi

list=/etc/apt/sources.list.d/vdmount-src.sources
added=
if ! [ -e "$list" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "no deb-src entry ($list) and not root to add it" >&2
		exit 2
	fi
	cat >"$list.tmp" <<'SRC' || exit 2
# Added by vdmount's tests/corpus/get-e2fsprogs.sh: e2fsprogs' source
# package holds the test images of tests/t-92-ext-corpus.sh.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	mv "$list.tmp" "$list"
	added=1
fi
if [ -n "$added" ] || ! apt-cache showsrc e2fsprogs 2>/dev/null | grep -q '^Package: e2fsprogs'; then
	if ! timeout 300 apt-get update -o Dir::Etc::sourcelist="$list" \
		-o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 \
		>"$dest.apt.log" 2>&1; then
		mkdir -p "$dest"
		echo "apt-get update for the deb-src entry failed (network?): $(tail -n 2 "$dest.apt.log" | tr '\n' ' ')" >&2
		exit 2
	fi
fi

rm -rf "$dest/src"
mkdir -p "$dest/src"
if ! (cd "$dest/src" && timeout 600 apt-get source -q e2fsprogs) >"$dest/src.log" 2>&1; then
	echo "apt-get source e2fsprogs failed: $(tail -n 2 "$dest/src.log" | tr '\n' ' ')" >&2
	exit 2
fi
d=$(find "$dest/src" -mindepth 1 -maxdepth 1 -type d -name 'e2fsprogs-*' | head -n 1)
if [ -z "$d" ] || ! ls "$d"/tests/*/image.* >/dev/null 2>&1; then
	echo "apt-get source e2fsprogs gave no tests/*/image.*" >&2
	exit 2
fi
rm -rf "$tree"
mv "$d" "$tree"
rm -rf "$dest/src"
touch "$tree/.ok"
echo "$tree"
