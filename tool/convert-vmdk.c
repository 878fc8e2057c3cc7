/* vdtool convert -O vmdk: -o subformat=monolithicSparse (the default;
 * grains of 64 KiB, only those holding data stored), streamOptimized
 * (every stored grain compressed, on every core) or monolithicFlat (OUT
 * is the descriptor, OUT's name with -flat.vmdk the raw extent, written
 * sparse). A VMDK's size is a multiple of 512 bytes: a disk of another
 * size is rounded up, and said so. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/convert.h"

struct cvm {
	struct vd_vmdk_out *w;
	int flat_fd;
	uint64_t size;
};

static int cvm_put(void *ctx, uint64_t g, const struct conv_block *b)
{
	struct cvm *c = ctx;

	if (b->kind == CONV_HOLE || b->kind == CONV_ZERO)
		return 0;
	if (c->flat_fd >= 0) {
		uint64_t off = g * VD_VMDK_GRAIN;

		return vdt_pwrite_sparse(c->flat_fd, b->data,
					 (size_t)VD_MIN((uint64_t)VD_VMDK_GRAIN,
							c->size - off), off);
	}
	if (b->kind == CONV_COMP)
		return vd_vmdk_out_cgrain(c->w, g, b->data, b->len);
	return vd_vmdk_out_grain(c->w, g, b->data);
}

/* Write a streamOptimized or monolithicSparse extent of disk into fd
 * (the descriptor naming it as name). 0, or -1 (reported). */
int conv_vmdk_sparse(const struct conv_args *a, int fd, const char *name,
		     bool stream, uint64_t size)
{
	struct vd_vmdk_out_opts vo = { .size = size, .stream = stream,
				       .name = name };
	struct cvm c = { .flat_fd = -1, .size = size };
	struct conv_sink sink = { 0 };
	struct vd_err e = { "" };
	struct vdt_progress prog;
	uint64_t err_off = 0;
	bool err_write = false;
	int ret;

	ret = vd_vmdk_out_open(fd, &vo, &c.w, &e);
	if (ret) {
		vdt_error("%s: %s", a->out, e.msg);
		return -1;
	}
	sink.block = VD_VMDK_GRAIN;
	sink.codec = stream ? VD_CODEC_ZLIB : VD_CODEC_NONE;
	/* Every grain of a stream is compressed, even one that grows. */
	sink.comp_cap = VD_VMDK_GRAIN + 4096;
	sink.put = cvm_put;
	sink.ctx = &c;
	vdt_progress_init(&prog, a->quiet, a->src->size);
	ret = conv_pipe_run(a->src, NULL, &sink, &prog, &err_off, &err_write);
	vdt_progress_end(&prog);
	if (!ret) {
		err_write = true;
		ret = vd_vmdk_out_finish(c.w);
	}
	vd_vmdk_out_free(c.w);
	if (ret) {
		if (err_write)
			vdt_error("%s: write: %s", a->out, strerror(-ret));
		else
			vdt_error("%s: read at byte %llu of the disk: %s",
				  a->in_path, (unsigned long long)err_off,
				  strerror(-ret));
		return -1;
	}
	return 0;
}

/* monolithicFlat: the extent, then the descriptor; each complete before
 * it is named. */
static int cvm_flat(const struct conv_args *a, uint64_t size)
{
	struct conv_out ext = { .fd = -1 }, desc = { .fd = -1 };
	struct cvm c = { .size = size };
	struct conv_sink sink = { 0 };
	struct vdt_progress prog;
	char *ext_path = NULL, *tmp = NULL, d[8192];
	const char *base;
	uint64_t err_off = 0;
	bool err_write = false;
	size_t n = strlen(a->out);
	int ret, len, status = VDT_EXIT_FAIL;

	if (n > 5 && !strcmp(a->out + n - 5, ".vmdk"))
		n -= 5;
	if (asprintf(&ext_path, "%.*s-flat.vmdk", (int)n, a->out) < 0 ||
	    !(tmp = strdup(ext_path))) {
		vdt_error("out of memory");
		goto out;
	}
	base = basename(tmp);
	len = vd_vmdk_desc(d, sizeof(d), "monolithicFlat", size / 512, "FLAT",
			   base);
	if (len < 0) {
		vdt_error("%s: name too long", a->out);
		goto out;
	}
	if (conv_out_open(&ext, ext_path, a->force) ||
	    conv_out_open(&desc, a->out, a->force))
		goto out;
	c.flat_fd = ext.fd;
	sink.block = VD_VMDK_GRAIN;
	sink.codec = VD_CODEC_NONE;
	sink.put = cvm_put;
	sink.ctx = &c;
	if (ftruncate(ext.fd, (off_t)size)) {
		vdt_error("%s: %s", ext_path, strerror(errno));
		goto out;
	}
	vdt_progress_init(&prog, a->quiet, a->src->size);
	ret = conv_pipe_run(a->src, NULL, &sink, &prog, &err_off, &err_write);
	vdt_progress_end(&prog);
	if (!ret)
		ret = vdt_pwrite_all(desc.fd, d, (size_t)len, 0);
	if (ret) {
		if (err_write || !err_off)
			vdt_error("%s: write: %s", ext_path, strerror(-ret));
		else
			vdt_error("%s: read at byte %llu of the disk: %s",
				  a->in_path, (unsigned long long)err_off,
				  strerror(-ret));
		goto out;
	}
	if (conv_out_commit(&ext) || conv_out_commit(&desc))
		goto out;
	status = VDT_EXIT_OK;
out:
	if (ext.fd >= 0)
		conv_out_abort(&ext);
	if (desc.fd >= 0)
		conv_out_abort(&desc);
	free(ext_path);
	free(tmp);
	return status;
}

int conv_vmdk(const struct conv_args *a)
{
	const char *sub = a->subformat ? a->subformat : "monolithicSparse";
	uint64_t size = a->src->size, rsize = (size + 511) & ~511ULL;
	struct conv_out out = { .fd = -1 };
	char *tmp;
	int status = VDT_EXIT_FAIL;

	if (strcmp(sub, "monolithicSparse") && strcmp(sub, "streamOptimized") &&
	    strcmp(sub, "monolithicFlat")) {
		vdt_error("vmdk subformat must be monolithicSparse, "
			  "streamOptimized or monolithicFlat, not '%s'", sub);
		return VDT_EXIT_USAGE;
	}
	if (rsize != size)
		fprintf(stderr, "vdtool convert: %s: the disk's %llu bytes "
			"rounded up to %llu (a multiple of 512 bytes, as VMDK "
			"requires)\n", a->out, (unsigned long long)size,
			(unsigned long long)rsize);
	if (!strcmp(sub, "monolithicFlat"))
		return cvm_flat(a, rsize);
	if (conv_out_open(&out, a->out, a->force))
		goto out;
	tmp = strdup(a->out);
	if (!tmp) {
		vdt_error("out of memory");
		goto out;
	}
	if (!conv_vmdk_sparse(a, out.fd, basename(tmp),
			      !strcmp(sub, "streamOptimized"), rsize) &&
	    !conv_out_commit(&out))
		status = VDT_EXIT_OK;
	free(tmp);
out:
	if (out.fd >= 0)
		conv_out_abort(&out);
	return status;
}
