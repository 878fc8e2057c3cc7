/* tests/fuzz/ — libFuzzer targets for vdmount's parsers.
 *
 * Each target is one fuzz-<name>.c that fills a struct fuzz_target and,
 * for most, lets fuzz-common.c do the work: the input becomes an image
 * file (an in-memory file, or files in a private tmpfs folder when the
 * input carries a sibling), which is opened as a disk, read in a spread
 * of places, seeked, and then walked through the namespace: partitions,
 * filesystems, every directory (bounded in entries and depth), every
 * file read at its start, end, middle and past its end, links, xattrs,
 * statfs. A target with its own parser entry point (the VMDK descriptor)
 * sets one instead; one of vdtool check's walks sets check.
 *
 * The same target source links with libFuzzer (make fuzz, clang) or with
 * replay.c, a main() that feeds saved inputs to LLVMFuzzerTestOneInput,
 * so every crasher kept under crashers/ is a regression test (t-98). */
#ifndef VD_FUZZ_H
#define VD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vd_check;
struct vd_err;

struct fuzz_target {
	/* Format forced for the top layer ("qcow2", "vmdk", "vpc", "raw"),
	 * or NULL to probe (OVA, OVF). */
	const char *format;
	/* The input is MAIN "\n--8<--\n" SIBLING: SIBLING is written as
	 * e.vmdk, p.vhd, d.img and p.vdi beside MAIN (img), so a VMDK
	 * descriptor, a VHD parent locator, a qcow2 backing file name, an
	 * OVF href naming one of those, or a differencing VDI (whose parent
	 * is found by UUID among the .vdi files) opens it. Without the separator MAIN is the
	 * whole input and the siblings are empty. */
	bool split;
	/* Recompute the checksums a mutation breaks before opening, so the
	 * fuzzer gets past them: VHD footers and dynamic header, GPT
	 * headers and entry arrays. */
	bool fix;
	/* The target's own checksum fixer, run on the input (after fix's)
	 * before the open-and-walk; NULL: none. */
	void (*fix_fn)(uint8_t *data, size_t size);
	/* A target of its own: called instead of the open-and-walk. */
	int (*one)(const uint8_t *data, size_t size);
	/* A check of vdtool check (core/check.h): called on the input's
	 * file instead of the open-and-walk, its per-problem lines going
	 * to /dev/null. Whatever the input, it must end with a verdict or
	 * a refusal, bounded in time and memory. */
	int (*check)(const char *path, FILE *msgs, struct vd_check *r,
		     struct vd_err *e);
};

/* Defined by each fuzz-<name>.c. */
extern const struct fuzz_target fuzz_target;

#define FUZZ_SPLIT_SEP "\n--8<--\n"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
