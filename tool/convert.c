/* vdtool convert: the flat disk as a raw file, equal byte for byte to
 * what `qemu-img convert -O raw` writes.
 *
 * To a regular file the output is sparse: the file is cut to the
 * virtual size first, and only data is written — runs the chain holds
 * as data (vd_disk_status), and of those only the 4 KiB blocks that are
 * not all zero. Reading (decompressing) and writing overlap: a few
 * threads each take the next VDT_CONV_UNIT of the disk and pwrite it in
 * place, so the order of writes does not matter. To standard output, or
 * to anything that is not a regular file (a pipe, a block device), every
 * byte is written in order, zeros included. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "tool/convert.h"

/* One read; one worker's share at a time. */
#define CONV_CHUNK (1u << 20)
#define CONV_UNIT (16u << 20)
#define CONV_MAX_THREADS 4

struct conv {
	struct vd_disk *disk;
	uint64_t size;
	int fd;
	_Atomic uint64_t next_unit;
	_Atomic int err;     /* the first failure: -errno */
	_Atomic uint64_t err_off;
	bool err_write;	     /* err came from writing (set with err) */
	struct vdt_progress prog;
};

static void conv_set_err(struct conv *cv, int err, uint64_t off, bool wr)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&cv->err, &zero, err)) {
		atomic_store(&cv->err_off, off);
		cv->err_write = wr;
	}
}

/* [off, end) of the disk into the file, sparse. */
static int conv_range(struct conv *cv, char *buf, uint64_t off, uint64_t end)
{
	uint64_t ahead = 0, from, len;

	while (off < end) {
		uint64_t run;
		bool data;
		int ret;

		ret = vd_disk_status(cv->disk, off, end - off, &data, &run);
		if (!ret && (!run || run > end - off))
			ret = -EIO; /* no progress: never loop */
		if (ret) {
			conv_set_err(cv, ret, off, false);
			return ret;
		}
		if (!data) {
			off += run;
			vdt_progress_add(&cv->prog, run);
			continue;
		}
		for (uint64_t done = 0; done < run;) {
			size_t n = (size_t)VD_MIN((uint64_t)CONV_CHUNK,
						  run - done);

			if ((len = vdt_ahead(&ahead, off + done, end, &from)))
				vd_disk_prefetch(cv->disk, from, len);
			ret = vd_disk_read(cv->disk, buf, n, off + done);
			if (ret) {
				conv_set_err(cv, ret, off + done, false);
				return ret;
			}
			ret = vdt_pwrite_sparse(cv->fd, buf, n, off + done);
			if (ret) {
				conv_set_err(cv, ret, off + done, true);
				return ret;
			}
			done += n;
			vdt_progress_add(&cv->prog, n);
			if (atomic_load(&cv->err))
				return -ECANCELED;
		}
		off += run;
	}
	return 0;
}

static void *conv_worker(void *arg)
{
	struct conv *cv = arg;
	char *buf = malloc(CONV_CHUNK);

	if (!buf) {
		conv_set_err(cv, -ENOMEM, 0, false);
		return NULL;
	}
	/* Ends: next_unit only grows, and past the disk's end we stop. */
	while (!atomic_load(&cv->err)) {
		uint64_t u = atomic_fetch_add(&cv->next_unit, 1);
		uint64_t off = u * CONV_UNIT;

		if (u >= (cv->size + CONV_UNIT - 1) / CONV_UNIT)
			break;
		if (conv_range(cv, buf, off,
			       VD_MIN(cv->size, off + CONV_UNIT)))
			break;
	}
	free(buf);
	return NULL;
}

static int conv_sparse(struct conv *cv)
{
	pthread_t th[CONV_MAX_THREADS];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = ncpu < 2 ? 2 : ncpu > CONV_MAX_THREADS ? CONV_MAX_THREADS :
							       (unsigned)ncpu;
	unsigned started = 0;

	if (ftruncate(cv->fd, (off_t)cv->size)) {
		conv_set_err(cv, -errno, cv->size, true);
		return atomic_load(&cv->err);
	}
	for (; started < n; started++)
		if (pthread_create(&th[started], NULL, conv_worker, cv))
			break;
	if (!started)
		conv_worker(cv);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&cv->err);
}

/* Every byte, in order: holes as zeros. */
static int conv_stream(struct conv *cv)
{
	char *buf = malloc(CONV_CHUNK);
	uint64_t off = 0, ahead = 0, from, len;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (off < cv->size) {
		size_t n = (size_t)VD_MIN((uint64_t)CONV_CHUNK, cv->size - off);
		uint64_t run;
		bool data;

		ret = vd_disk_status(cv->disk, off, n, &data, &run);
		if (!ret && (!run || run > n))
			ret = -EIO;
		if (ret) {
			conv_set_err(cv, ret, off, false);
			break;
		}
		n = (size_t)run;
		if (data) {
			if ((len = vdt_ahead(&ahead, off, cv->size, &from)))
				vd_disk_prefetch(cv->disk, from, len);
			ret = vd_disk_read(cv->disk, buf, n, off);
			if (ret) {
				conv_set_err(cv, ret, off, false);
				break;
			}
		} else {
			memset(buf, 0, n);
		}
		ret = vdt_write_all(cv->fd, buf, n);
		if (ret) {
			conv_set_err(cv, ret, off, true);
			break;
		}
		off += n;
		vdt_progress_add(&cv->prog, n);
	}
	free(buf);
	return ret;
}

static void conv_usage(FILE *f)
{
	fprintf(f,
"usage: vdtool convert [-O FMT] [-c] [-o OPTS] [-B BACKING] [-f] [-q]\n"
"                      [options] IMAGE OUT\n"
"Write IMAGE's virtual disk (its whole backing chain read as one) to OUT.\n"
"IMAGE may be any image vdmount reads, or any readable file or block\n"
"device (read as raw).\n"
"\n"
"  -O FMT       the output format:\n"
"                 raw    (default) byte for byte what `qemu-img convert\n"
"                        -O raw` writes; a regular OUT is created or\n"
"                        truncated and written sparse; OUT '-' writes\n"
"                        every byte to standard output\n"
"                 qcow2  version 3; -o cluster_size=N (default 64k),\n"
"                        compression_type=zstd|zlib, preallocation=\n"
"                        metadata; -c compresses (zstd by default)\n"
"                 vmdk   -o subformat=monolithicSparse (default),\n"
"                        streamOptimized or monolithicFlat (OUT is the\n"
"                        descriptor, OUT-flat.vmdk the data)\n"
"                 vpc    VHD; -o subformat=dynamic (default) or fixed\n"
"                        (its size rounded up to 1 MiB, as Azure\n"
"                        requires, and said so)\n"
"                 ova    an OVF 1.0 descriptor, a SHA-256 manifest and a\n"
"                        streamOptimized disk, in that order, in a tar\n"
"  -c           qcow2: compress the data clusters\n"
"  -o OPTS      format options, NAME=VALUE separated by commas\n"
"  -B BACKING   qcow2: an image OUT is to be written over: only clusters\n"
"               that differ from BACKING are stored (a relative name is\n"
"               relative to OUT's folder, as it is recorded)\n"
"  -f, --force  replace an existing OUT (other than raw OUT is never\n"
"               replaced otherwise; it appears only when complete)\n"
"  --path=PATH  image formats: convert this file of IMAGE's tree instead\n"
"               of the whole disk: a volume (/p2.raw, /VG-LV.raw) or a\n"
"               guest file, as a mount shows it\n"
"  -q, --quiet  no progress bar (it is drawn only on a terminal)\n"
"\n%s", vdt_common_help);
}

/* A size with an optional k/M/G suffix (powers of 1024). */
static int conv_size(const char *s, uint64_t *v_r)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	*v_r = v;
	return 0;
}

/* -o NAME=VALUE,... into a. */
static int conv_opts(struct conv_args *a, char *s)
{
	char *save = NULL;

	for (char *kv = strtok_r(s, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v) {
			vdt_error("-o %s: expected NAME=VALUE", kv);
			return -1;
		}
		*v++ = '\0';
		if (!strcmp(kv, "compression_type")) {
			if (!strcmp(v, "zlib"))
				a->codec = VD_CODEC_DEFLATE;
			else if (!strcmp(v, "zstd"))
				a->codec = VD_CODEC_ZSTD;
			else {
				vdt_error("compression_type must be zlib or "
					  "zstd, not '%s'", v);
				return -1;
			}
			a->codec_given = true;
		} else if (!strcmp(kv, "cluster_size")) {
			if (conv_size(v, &a->cluster_size)) {
				vdt_error("bad cluster_size '%s'", v);
				return -1;
			}
		} else if (!strcmp(kv, "preallocation")) {
			if (!strcmp(v, "metadata"))
				a->prealloc_metadata = true;
			else if (strcmp(v, "off")) {
				vdt_error("preallocation must be off or "
					  "metadata, not '%s'", v);
				return -1;
			}
		} else if (!strcmp(kv, "subformat")) {
			a->subformat = v;
		} else {
			vdt_error("-o %s: unknown option", kv);
			return -1;
		}
	}
	return 0;
}

/* Whether OUT names a file of the image's chain (writing it would
 * destroy what is being read). */
static bool conv_is_input(const struct vd_disk *d, const struct stat *out)
{
	struct stat st;

	for (const struct vd_layer *l = vd_disk_top(d); l;
	     l = vd_layer_backing(l))
		if (!stat(vd_layer_path(l), &st) && st.st_dev == out->st_dev &&
		    st.st_ino == out->st_ino)
			return true;
	return false;
}

int vdt_convert(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "force", no_argument, NULL, 'f' },
		{ "path", required_argument, NULL, VDT_OPT_FIRST_FREE },
		VDT_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	struct vdt_common c = { .io = { .uid = -1, .gid = -1 } };
	struct vd_image img = { 0 };
	struct conv cv = { .fd = -1 };
	struct conv_args a = { .fmt = "raw", .codec = VD_CODEC_ZSTD };
	struct conv_src src = { 0 };
	const char *out, *path = NULL;
	bool quiet = false, to_stdout, regular;
	struct stat st;
	int opt, ret, status = VDT_EXIT_FAIL;

	while ((opt = getopt_long(argc, argv, "O:qfco:B:" VDT_COMMON_SHORTOPTS,
				  lo, NULL)) != -1) {
		switch (opt) {
		case 'O':
			if (strcmp(optarg, "raw") && strcmp(optarg, "qcow2") &&
			    strcmp(optarg, "vmdk") && strcmp(optarg, "vpc") &&
			    strcmp(optarg, "ova")) {
				vdt_error("output format '%s' is not "
					  "supported (raw, qcow2, vmdk, vpc, "
					  "ova)", optarg);
				vdt_common_free(&c);
				return VDT_EXIT_USAGE;
			}
			a.fmt = optarg;
			continue;
		case 'q': quiet = true; continue;
		case 'f': a.force = true; continue;
		case 'c': a.compress = true; continue;
		case 'B': a.backing = optarg; continue;
		case VDT_OPT_FIRST_FREE: path = optarg; continue;
		case 'o':
			if (conv_opts(&a, optarg)) {
				vdt_common_free(&c);
				return VDT_EXIT_USAGE;
			}
			continue;
		case 'h':
			conv_usage(stdout);
			vdt_common_free(&c);
			return VDT_EXIT_OK;
		}
		int r = opt == '?' ? 0 : vdt_common_opt(&c, opt, optarg);

		if (r <= 0) {
			if (r == 0)
				fprintf(stderr,
					"Try 'vdtool convert --help'.\n");
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		vdt_error(argc - optind > 2 ? "too many arguments" :
			  argc == optind    ? "no IMAGE given" :
					      "no OUT given");
		fprintf(stderr, "Try 'vdtool convert --help'.\n");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	if (strcmp(a.fmt, "raw")) {
		bool bad_c = a.compress && strcmp(a.fmt, "qcow2");
		bool bad_b = a.backing && strcmp(a.fmt, "qcow2");

		if (bad_c || bad_b || !strcmp(argv[optind + 1], "-")) {
			vdt_error(bad_c ? "-c: %s output is not compressed" :
				  bad_b ? "-B: %s output has no backing file" :
					  "%s output cannot go to standard "
					  "output", a.fmt);
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
		if ((strcmp(a.fmt, "qcow2") && (a.cluster_size ||
						a.prealloc_metadata ||
						a.codec_given)) ||
		    (a.subformat && (!strcmp(a.fmt, "qcow2") ||
				     !strcmp(a.fmt, "ova")))) {
			vdt_error("-o: an option %s output does not take",
				  a.fmt);
			vdt_common_free(&c);
			return VDT_EXIT_USAGE;
		}
		/* The tree too for --path, and for an OVA's OS section. */
		if (path || !strcmp(a.fmt, "ova") ?
			    vdt_open(&c, argv[optind], &img) :
			    vdt_open_disk(&c, argv[optind], &img))
			goto out;
		if (!stat(argv[optind + 1], &st) &&
		    conv_is_input(img.disk, &st)) {
			vdt_error("%s: is a file of the image being read",
				  argv[optind + 1]);
			goto out;
		}
		src.disk = img.disk;
		src.size = vd_disk_size(img.disk);
		if (path) {
			uint64_t ino;
			struct vd_fs_attr at;

			ret = vdt_resolve(img.ns, path, true, &ino);
			if (!ret)
				ret = vd_ns_getattr(img.ns, ino, &at);
			if (!ret)
				ret = vd_ns_open_file(img.ns, ino, &src.file);
			if (ret) {
				vdt_error("%s: %s", path, strerror(-ret));
				goto out;
			}
			src.disk = NULL;
			src.size = at.size;
		}
		a.in_path = argv[optind];
		a.src = &src;
		a.ns = img.ns;
		a.out = argv[optind + 1];
		a.quiet = quiet;
		a.common = &c;
		status = !strcmp(a.fmt, "qcow2") ? conv_qcow2(&a) :
			 !strcmp(a.fmt, "vmdk")	 ? conv_vmdk(&a) :
			 !strcmp(a.fmt, "vpc")	 ? conv_vpc(&a) :
						   conv_ova(&a);
		if (src.file)
			vd_ns_release(src.file);
		goto out;
	}
	if (a.compress || a.backing || a.subformat || a.cluster_size ||
	    a.prealloc_metadata || a.codec_given || path) {
		vdt_error("raw output takes no -c, -B, -o or --path (vdtool "
			  "cat writes one file of the tree)");
		vdt_common_free(&c);
		return VDT_EXIT_USAGE;
	}
	out = argv[optind + 1];
	to_stdout = !strcmp(out, "-");
	if (to_stdout && isatty(STDOUT_FILENO)) {
		vdt_error("refusing to write a disk to a terminal");
		vdt_common_free(&c);
		return VDT_EXIT_FAIL;
	}
	if (vdt_open_disk(&c, argv[optind], &img))
		goto out;
	cv.disk = img.disk;
	cv.size = vd_disk_size(img.disk);
	if (to_stdout) {
		cv.fd = STDOUT_FILENO;
	} else {
		if (!stat(out, &st) && conv_is_input(img.disk, &st)) {
			vdt_error("%s: is a file of the image being read", out);
			goto out;
		}
		cv.fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0666);
		if (cv.fd < 0) {
			vdt_error("%s: %s", out, strerror(errno));
			goto out;
		}
	}
	regular = !fstat(cv.fd, &st) && S_ISREG(st.st_mode);
	vdt_progress_init(&cv.prog, quiet, cv.size);
	ret = regular && !to_stdout ? conv_sparse(&cv) : conv_stream(&cv);
	vdt_progress_end(&cv.prog);
	if (ret) {
		ret = atomic_load(&cv.err) ? atomic_load(&cv.err) : ret;
		if (cv.err_write)
			vdt_error("%s: write at byte %llu: %s",
				  to_stdout ? "standard output" : out,
				  (unsigned long long)atomic_load(&cv.err_off),
				  strerror(-ret));
		else
			vdt_error("%s: read at byte %llu of the disk: %s",
				  img.path,
				  (unsigned long long)atomic_load(&cv.err_off),
				  strerror(-ret));
		goto out;
	}
	if (!to_stdout && close(cv.fd)) {
		cv.fd = -1;
		vdt_error("%s: %s", out, strerror(errno));
		goto out;
	}
	cv.fd = -1;
	status = VDT_EXIT_OK;
out:
	if (cv.fd > STDOUT_FILENO)
		close(cv.fd);
	vdt_close(&img);
	vdt_common_free(&c);
	return status;
}
