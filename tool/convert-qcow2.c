/* vdtool convert -O qcow2: the pipe's blocks (one per cluster) into the
 * qcow2 stream writer (core/qcow2-out.c).
 *
 * Unallocated and all-zero clusters are left unallocated (they read as
 * zeros, or with -B as the backing image reads: then a cluster that is
 * zero here but not there gets the zero flag, and one equal to the
 * backing image's is left to it, as qemu-img convert -B does). With -c
 * every data cluster that compresses to less than a cluster is stored
 * compressed (zstd unless -o compression_type=zlib). With
 * preallocation=metadata every cluster gets a host cluster; those that
 * hold only zeros are not written, so the file stays sparse. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tool/convert.h"

struct cq {
	struct vd_qcow2_out *w;
	bool prealloc;
};

static int cq_put(void *ctx, uint64_t g, const struct conv_block *b)
{
	struct cq *c = ctx;

	switch (b->kind) {
	case CONV_HOLE:
		return c->prealloc ? vd_qcow2_out_alloc(c->w, g) : 0;
	case CONV_ZERO:
		return vd_qcow2_out_zero(c->w, g);
	case CONV_DATA:
		return vd_qcow2_out_data(c->w, g, b->data);
	case CONV_COMP:
		return vd_qcow2_out_compressed(c->w, g, b->data, b->len);
	}
	return -EINVAL;
}

/* The pipe is done with a unit: its clusters go out (one pwritev of the
 * pipe's buffers). */
static int cq_flush(void *ctx)
{
	return vd_qcow2_out_flush(((struct cq *)ctx)->w);
}

/* The base a -B output is over, opened as the output will open it:
 * a relative name from the output's folder. */
static int cq_open_base(const struct conv_args *a, struct vd_disk **d_r,
			const char **fmt_r)
{
	struct vd_open_opts bo = { 0 };
	struct vd_err e = { "" };
	char *path = NULL, *tmp;
	int ret;

	if (a->backing[0] == '/') {
		path = strdup(a->backing);
	} else {
		tmp = strdup(a->out);
		if (!tmp || asprintf(&path, "%s/%s", dirname(tmp),
				     a->backing) < 0)
			path = NULL;
		free(tmp);
	}
	if (!path) {
		vdt_error("out of memory");
		return -1;
	}
	bo.backing_dirs = a->common->io.open.backing_dirs;
	bo.n_backing_dirs = a->common->io.open.n_backing_dirs;
	bo.ignore_parent_ids = a->common->io.open.ignore_parent_ids;
	ret = vd_disk_open(path, &bo, d_r, &e);
	free(path);
	if (ret) {
		vdt_error("-B %s: %s", a->backing, e.msg);
		return -1;
	}
	*fmt_r = vd_layer_format(vd_disk_top(*d_r));
	return 0;
}

int conv_qcow2(const struct conv_args *a)
{
	struct vd_qcow2_out_opts qo = { 0 };
	struct conv_out out = { .fd = -1 };
	struct vd_disk *base = NULL;
	struct vd_err e = { "" };
	struct vdt_progress prog;
	struct conv_sink sink = { 0 };
	struct cq c = { .prealloc = a->prealloc_metadata };
	uint64_t cs = a->cluster_size ? a->cluster_size : 65536, err_off = 0;
	bool err_write = false;
	int ret, status = VDT_EXIT_FAIL;

	if (!vd_is_pow2(cs) || cs < 512 || cs > (2u << 20)) {
		vdt_error("cluster_size %llu is not a power of two from 512 to "
			  "2M", (unsigned long long)cs);
		return VDT_EXIT_USAGE;
	}
	if (a->prealloc_metadata && a->compress) {
		vdt_error("preallocation=metadata and compression (-c) "
			  "exclude each other");
		return VDT_EXIT_USAGE;
	}
	if (a->backing && cq_open_base(a, &base, &qo.backing_fmt))
		return VDT_EXIT_FAIL;
	qo.size = a->src->size;
	qo.cluster_bits = (unsigned)__builtin_ctzll(cs);
	qo.codec = a->compress ? a->codec : VD_CODEC_NONE;
	if (qo.codec == VD_CODEC_NONE && a->codec == VD_CODEC_ZSTD &&
	    a->codec_given)
		qo.codec = VD_CODEC_ZSTD;
	qo.backing = a->backing;
	if (conv_out_open(&out, a->out, a->force))
		goto out;
	ret = vd_qcow2_out_open(out.fd, &qo, &c.w, &e);
	if (ret) {
		vdt_error("%s: %s", a->out, e.msg);
		goto out;
	}
	sink.block = cs;
	sink.codec = a->compress ? a->codec : VD_CODEC_NONE;
	sink.comp_cap = cs - 1;
	sink.put = cq_put;
	sink.flush = cq_flush;
	sink.ctx = &c;
	vdt_progress_init(&prog, a->quiet, qo.size);
	ret = conv_pipe_run(a->src, base, &sink, &prog, &err_off, &err_write);
	vdt_progress_end(&prog);
	if (!ret) {
		err_write = true;
		err_off = qo.size;
		ret = vd_qcow2_out_finish(c.w);
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
	vd_qcow2_out_free(c.w);
	vd_disk_close(base);
	return status;
}
