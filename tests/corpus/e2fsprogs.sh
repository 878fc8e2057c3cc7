# tests/corpus/e2fsprogs.sh — sourced by the tests that use e2fsprogs'
# test images (t-92-ext-journal.sh, t-92-ext-corpus.sh), after lib.sh.
#
# e2fs_tree — inside a test: print the e2fsprogs source tree (fetched
# once into $BUILD/corpus by get-e2fsprogs.sh, or $VD_E2FSPROGS_SRC) and
# check every image against tests/corpus/e2fsprogs.sha256; skip the test
# with the reason when the tree cannot be had.
# e2fs_image NAME OUT — inside a test: decompress NAME's image into OUT.

E2FS_SUMS=$VD_LIB_DIR/corpus/e2fsprogs.sha256

e2fs_tree() {
	local t
	t=$("$VD_LIB_DIR/corpus/get-e2fsprogs.sh" "$BUILD/corpus" 2>"$TD/.e2fs.err") ||
		skip_test "no e2fsprogs source tree: $(cat "$TD/.e2fs.err")"
	if [ ! -e "$t/.sums-ok" ] || [ "$E2FS_SUMS" -nt "$t/.sums-ok" ]; then
		(cd "$t" && sha256sum --quiet -c "$E2FS_SUMS") >"$TD/.sums.out" 2>&1 ||
			die "e2fsprogs images differ from tests/corpus/e2fsprogs.sha256: $(head -n 3 "$TD/.sums.out" | tr '\n' ' ')"
		# Only when the tree is ours to mark.
		[ -n "${VD_E2FSPROGS_SRC:-}" ] || touch "$t/.sums-ok"
	fi
	echo "$t"
}

# The images the list names (each once), in list order.
e2fs_names() {
	awk '{ split($2, p, "/"); print p[2] }' "$E2FS_SUMS"
}

e2fs_image() {
	local f
	f=$(ls "$E2FS_TREE/tests/$1"/image.* 2>/dev/null | head -n 1)
	[ -n "$f" ] || die "no image for $1"
	case $f in
	# A filesystem and its external journal: the filesystem
	# (NAME.img; the journal, NAME.img.jnl, is not used).
	*.tar.bz2) tar -xjOf "$f" "$1.img" >"$2" ;;
	*.gz) gzip -dc "$f" >"$2" ;;
	*.bz2) bzip2 -dc "$f" >"$2" ;;
	*) die "unknown compression: $f" ;;
	esac || die "cannot decompress $f"
}
