/* vdtool convert -O vpc: the pipe's 2 MiB blocks into the VHD writer
 * (core/vhd-out.c). -o subformat=dynamic (the default) stores only the
 * blocks that hold data; subformat=fixed is the disk's bytes and a
 * footer, its size rounded up to a multiple of 1 MiB as Azure requires
 * (said on standard error when it changes). A VHD's size is a multiple
 * of 512 bytes: a disk of another size is rounded up, and said so. */
#include <errno.h>
#include <string.h>

#include "tool/convert.h"

static int cv_put(void *ctx, uint64_t idx, const struct conv_block *b)
{
	if (b->kind != CONV_DATA)
		return 0;
	return vd_vhd_out_block(ctx, idx, b->data);
}

int conv_vpc(const struct conv_args *a)
{
	struct vd_vhd_out_opts vo = { 0 };
	struct vd_vhd_out *w = NULL;
	struct conv_out out = { .fd = -1 };
	struct vd_err e = { "" };
	struct vdt_progress prog;
	struct conv_sink sink = { 0 };
	uint64_t size = a->src->size, err_off = 0;
	bool err_write = false;
	int ret, status = VDT_EXIT_FAIL;

	if (a->subformat && strcmp(a->subformat, "dynamic") &&
	    strcmp(a->subformat, "fixed")) {
		vdt_error("vpc subformat must be dynamic or fixed, not '%s'",
			  a->subformat);
		return VDT_EXIT_USAGE;
	}
	vo.fixed = a->subformat && !strcmp(a->subformat, "fixed");
	vo.size = vo.fixed ? (size + (1u << 20) - 1) & ~((1ULL << 20) - 1) :
			     (size + 511) & ~511ULL;
	if (vo.size != size)
		fprintf(stderr, "vdtool convert: %s: the disk's %llu bytes "
			"rounded up to %llu (%s)\n", a->out,
			(unsigned long long)size, (unsigned long long)vo.size,
			vo.fixed ? "a multiple of 1 MiB, as Azure requires" :
				   "a multiple of 512 bytes, as VHD requires");
	if (conv_out_open(&out, a->out, a->force))
		goto out;
	ret = vd_vhd_out_open(out.fd, &vo, &w, &e);
	if (ret) {
		vdt_error("%s: %s", a->out, e.msg);
		goto out;
	}
	sink.block = VD_VHD_BLOCK;
	sink.codec = VD_CODEC_NONE;
	sink.put = cv_put;
	sink.ctx = w;
	vdt_progress_init(&prog, a->quiet, size);
	ret = conv_pipe_run(a->src, NULL, &sink, &prog, &err_off, &err_write);
	vdt_progress_end(&prog);
	if (!ret) {
		err_write = true;
		ret = vd_vhd_out_finish(w);
	}
	if (ret) {
		if (err_write)
			vdt_error("%s: write: %s", a->out, strerror(-ret));
		else
			vdt_error("%s: read at byte %llu of the disk: %s",
				  a->in_path, (unsigned long long)err_off,
				  strerror(-ret));
		goto out;
	}
	if (conv_out_commit(&out))
		goto out;
	status = VDT_EXIT_OK;
out:
	if (out.fd >= 0)
		conv_out_abort(&out);
	vd_vhd_out_free(w);
	return status;
}
