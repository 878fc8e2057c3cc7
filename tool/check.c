/* vdtool check: an image's metadata checked as `qemu-img check` checks
 * it, with its words, its JSON and its exit codes:
 *   0  no errors, 2  corruptions, 3  leaked clusters only,
 *   1  the check could not run (or was asked for badly),
 *   63 the format has no check here.
 * Read-only: -r (repair) is refused. With --backing-chain every layer of
 * the chain is checked, top first, and the worst verdict is the exit
 * code (1, then 2, then 3). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "tool/json.h"
#include "tool/vdtool.h"

enum {
	CHK_OK = 0,
	CHK_FAILED = 1,
	CHK_CORRUPT = 2,
	CHK_LEAKS = 3,
	CHK_NOT_SUPPORTED = 63,
};

enum {
	CHK_OPT_OUTPUT = VDT_OPT_FIRST_FREE,
	CHK_OPT_CHAIN,
};

/* The format of the file at path, by its magic, as qemu-img names it;
 * "raw" when nothing is recognised. */
static const char *chk_probe(const char *path)
{
	uint8_t b[512];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return NULL;
	n = pread(fd, b, sizeof(b), 0);
	end = lseek(fd, 0, SEEK_END);
	if (n >= 4 && !memcmp(b, "QFI\xfb", 4)) {
		close(fd);
		return "qcow2";
	}
	if (n >= 4 && (!memcmp(b, "KDMV", 4) || !memcmp(b, "COWD", 4) ||
		       !memcmp(b, "# Disk Descriptor", n >= 17 ? 17 : 4))) {
		close(fd);
		return "vmdk";
	}
	if (n >= 8 && !memcmp(b, "vhdxfile", 8)) {
		close(fd);
		return "vhdx";
	}
	if (n >= 0x44 && get_le32(b + 0x40) == 0xbeda107f) {
		close(fd);
		return "vdi";
	}
	if (n >= 8 && !memcmp(b, "conectix", 8)) {
		close(fd);
		return "vpc";
	}
	if (end >= 512 && pread(fd, b, 8, end - 512) == 8 &&
	    !memcmp(b, "conectix", 8)) {
		close(fd);
		return "vpc";
	}
	close(fd);
	return "raw";
}

static void chk_human(const struct vd_check *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the "
			       "image may corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to "
			       "data.\n", (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n%llu internal errors have occurred during the "
			       "check.\n", (unsigned long long)r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, "
		       "%0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n",
		       (unsigned long long)r->image_end_offset);
}

/* qemu-img's ImageCheck: members that are 0 are left out, as qemu
 * leaves them out (check-errors always there). */
static void chk_json(struct vdt_json *j, const char *path, const char *fmt,
		     const struct vd_check *r)
{
	vdt_json_obj(j, NULL);
	if (r->image_end_offset)
		vdt_json_u64(j, "image-end-offset", r->image_end_offset);
	if (r->total_clusters)
		vdt_json_u64(j, "total-clusters", r->total_clusters);
	vdt_json_u64(j, "check-errors", r->check_errors);
	if (r->leaks)
		vdt_json_u64(j, "leaks", r->leaks);
	if (r->corruptions)
		vdt_json_u64(j, "corruptions", r->corruptions);
	if (r->allocated_clusters)
		vdt_json_u64(j, "allocated-clusters", r->allocated_clusters);
	vdt_json_str(j, "filename", path);
	vdt_json_str(j, "format", fmt);
	if (r->compressed_clusters)
		vdt_json_u64(j, "compressed-clusters", r->compressed_clusters);
	if (r->fragmented_clusters)
		vdt_json_u64(j, "fragmented-clusters", r->fragmented_clusters);
	vdt_json_end_obj(j);
}

/* Check one file: its exit code. */
static int chk_one(const char *path, const char *fmt, bool json, bool quiet,
		   struct vdt_json *j, bool chain)
{
	struct vd_err e = { "" };
	struct vd_check r;
	int ret;

	if (!fmt)
		fmt = chk_probe(path);
	if (!fmt) {
		vdt_error("%s: %s", path, strerror(errno));
		return CHK_FAILED;
	}
	if (!strcmp(fmt, "qcow2")) {
		ret = vd_qcow2_check(path, stderr, &r, &e);
	} else if (!strcmp(fmt, "vdi")) {
		ret = vd_vdi_check(path, stderr, &r, &e);
	} else if (!strcmp(fmt, "vpc")) {
		ret = vd_vhd_check(path, stderr, &r, &e);
	} else if (!strcmp(fmt, "vmdk")) {
		ret = vd_vmdk_check(path, stderr, &r, &e);
	} else if (!strcmp(fmt, "vhdx")) {
		ret = vd_vhdx_check(path, stderr, &r, &e);
	} else {
		vdt_error("%s: this image format (%s) does not support checks",
			  path, fmt);
		return CHK_NOT_SUPPORTED;
	}
	if (ret) {
		vdt_error("%s", e.msg);
		return ret == -ENOTSUP ? CHK_NOT_SUPPORTED : CHK_FAILED;
	}
	if (!quiet) {
		if (json) {
			chk_json(j, path, fmt, &r);
		} else {
			if (chain)
				printf("image: %s\n", path);
			chk_human(&r);
		}
	}
	if (r.check_errors) {
		vdt_error("%s: check failed", path);
		return CHK_FAILED;
	}
	return r.corruptions ? CHK_CORRUPT : r.leaks ? CHK_LEAKS : CHK_OK;
}

/* The worse of two exit codes: could not check, corrupt, leaks, clean. */
static int chk_worse(int a, int b)
{
	static const int rank[] = { CHK_OK, CHK_LEAKS, CHK_NOT_SUPPORTED,
				    CHK_CORRUPT, CHK_FAILED };
	int ra = 0, rb = 0;

	for (int i = 0; i < (int)VD_ARRAY_SIZE(rank); i++) {
		if (rank[i] == a)
			ra = i;
		if (rank[i] == b)
			rb = i;
	}
	return ra >= rb ? a : b;
}

static void chk_usage(FILE *f)
{
	fprintf(f,
"usage: vdtool check [options] IMAGE\n"
"Check IMAGE's metadata as `qemu-img check` does (qcow2: refcounts, leaked\n"
"clusters, L1/L2 entries outside the file, overlapping metadata,\n"
"compressed clusters, copied flags; VDI, VHD, VHDX, VMDK sparse extents:\n"
"tables naming blocks past the end or twice). Read-only: nothing is\n"
"repaired.\n"
"\n"
"  --output=human|json  the report's shape, as qemu-img's (default human)\n"
"  --backing-chain      check every layer of IMAGE's chain, top first\n"
"  -q, --quiet          no report, only the exit status\n"
"  -r MODE              refused: vdtool check does not repair\n"
"\n"
"Exit status: 0 no errors, 2 corruptions, 3 leaked clusters only, 1 the\n"
"check could not run, 63 the format has no check.\n"
"\n%s", vdt_common_help);
}

int vdt_check(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, CHK_OPT_OUTPUT },
		{ "backing-chain", no_argument, NULL, CHK_OPT_CHAIN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "repair", required_argument, NULL, 'r' },
		VDT_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct vd_image img = { 0 };
	struct vdt_json j;
	bool json = false, chain = false, quiet = false;
	const char *path;
	int opt, status = CHK_FAILED;

	while ((opt = getopt_long(argc, argv, "qr:f:" VDT_COMMON_SHORTOPTS, lo,
				  NULL)) != -1) {
		switch (opt) {
		case CHK_OPT_OUTPUT:
			if (!strcmp(optarg, "json")) {
				json = true;
			} else if (strcmp(optarg, "human")) {
				vdt_error("--output must be human or json, not "
					  "'%s'", optarg);
				goto out;
			}
			continue;
		case CHK_OPT_CHAIN:
			chain = true;
			continue;
		case 'q':
			quiet = true;
			continue;
		case 'r':
			vdt_error("-r: repairs are not supported (vdtool check "
				  "only reads); use qemu-img check -r");
			goto out;
		case 'f':
			c.io.open.format = optarg;
			continue;
		case 'h':
			chk_usage(stdout);
			status = CHK_OK;
			goto out;
		}
		int r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);

		if (r <= 0) {
			if (r == 0)
				fprintf(stderr, "Try 'vdtool check --help'.\n");
			goto out;
		}
	}
	if (argc - optind != 1) {
		vdt_error(argc == optind ? "no IMAGE given" :
					   "too many arguments");
		fprintf(stderr, "Try 'vdtool check --help'.\n");
		goto out;
	}
	path = argv[optind];
	vdt_json_init(&j, stdout);
	if (!chain) {
		status = chk_one(path, c.io.open.format, json, quiet, &j, false);
		goto out;
	}
	if (vdt_open_disk(&c, path, &img))
		goto out;
	if (json && !quiet)
		vdt_json_arr(&j, NULL);
	status = CHK_OK;
	for (const struct vd_layer *l = vd_disk_top(img.disk); l;
	     l = vd_layer_backing(l)) {
		const char *fmt = vd_layer_format(l);

		if (!json && !quiet && l != vd_disk_top(img.disk))
			printf("\n");
		status = chk_worse(status, chk_one(vd_layer_path(l), fmt, json,
						   quiet, &j, true));
	}
	if (json && !quiet)
		vdt_json_end_arr(&j);
	vdt_close(&img);
out:
	if (json && !quiet)
		fflush(stdout);
	vdt_common_free(&c);
	return status;
}
