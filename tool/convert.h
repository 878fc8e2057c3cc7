/* vdtool convert's parts (convert.c: the command and raw output;
 * convert-pipe.c: reading, classifying and compressing the disk on every
 * core in guest order; convert-out.c: the output file, written under a
 * temporary name and renamed when complete; convert-qcow2.c and the
 * other format writers). */
#ifndef VDT_CONVERT_H
#define VDT_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/writer.h"
#include "tool/vdtool.h"

/* What one block of the disk is, as the pipe hands it to a writer. */
enum conv_kind {
	CONV_HOLE, /* zeros (or, with a base, the same as the base) */
	CONV_ZERO, /* zeros where the base has something else */
	CONV_DATA, /* data: len == block bytes at data */
	CONV_COMP, /* data compressed with the sink's codec: len bytes */
};

struct conv_block {
	enum conv_kind kind;
	uint32_t len;
	const uint8_t *data;
};

/* Where the blocks go: put is called on one thread, in block order, once
 * per block of the disk (the last one zero-padded to the block size).
 * A block's data stays valid until flush returns, which the pipe calls
 * (when it is set) after the blocks of each unit, before it reuses their
 * memory: so a sink can keep pointers instead of copies. */
struct conv_sink {
	uint64_t block;	      /* bytes per block, a power of two */
	enum vd_codec codec;  /* VD_CODEC_NONE: never compressed */
	uint64_t comp_cap;    /* the largest compressed block kept */
	int (*put)(void *ctx, uint64_t idx, const struct conv_block *b);
	int (*flush)(void *ctx); /* or NULL */
	void *ctx;
};

/* What is converted: the disk of an image, or one file of its tree
 * (--path: a volume such as /p2.raw, or a guest file). Thread-safe. */
struct conv_src {
	uint64_t size;
	struct vd_disk *disk;	  /* the disk, or NULL */
	struct vd_ns_file *file;  /* else this file of the tree */
};
/* As vd_disk_status and vd_disk_read, for either kind of source. */
int conv_src_status(const struct conv_src *s, uint64_t off, uint64_t len,
		    bool *data_r, uint64_t *run_r);
int conv_src_read(const struct conv_src *s, void *buf, size_t len,
		  uint64_t off);

/* Run the pipe: in (and base, the image a -B output is over, or NULL)
 * into s. 0 or -errno; on failure *err_off_r is the offset in the input
 * and *err_write_r whether writing (not reading) failed. */
int conv_pipe_run(const struct conv_src *in, struct vd_disk *base,
		  const struct conv_sink *s, struct vdt_progress *prog,
		  uint64_t *err_off_r, bool *err_write_r);

/* The output file: created under a temporary name in OUT's folder (an
 * unnamed O_TMPFILE where the filesystem has them), named OUT only when
 * complete. An existing OUT is replaced only when force. SIGINT, SIGTERM
 * and SIGHUP remove the temporary file. */
struct conv_out {
	char *final;
	char *dir;
	char *tmp;     /* the temporary name, or NULL (unnamed) */
	int fd;
	bool force;
};
int conv_out_open(struct conv_out *o, const char *final, bool force);
/* Durable, then named: 0, or -1 (reported). */
int conv_out_commit(struct conv_out *o);
/* Nothing left behind. */
void conv_out_abort(struct conv_out *o);

/* The options of one conversion (convert.c fills them). */
struct conv_args {
	const char *in_path;
	const struct conv_src *src;
	const char *out;
	const char *fmt;	  /* qcow2, vmdk, vpc, ova */
	bool compress;		  /* -c */
	bool force;
	bool quiet;
	uint64_t cluster_size;	  /* 0: the format's default */
	enum vd_codec codec;	  /* -o compression_type */
	bool codec_given;	  /* ... said aloud */
	bool prealloc_metadata;
	const char *subformat;
	const char *backing;	  /* -B, as it is to be recorded */
	struct vd_ns *ns;	  /* the image's tree (ova), or NULL */
	const struct vdt_common *common;
};

/* Each writes a->out in its format: a vdtool exit status. */
int conv_qcow2(const struct conv_args *a);
int conv_vpc(const struct conv_args *a);
int conv_vmdk(const struct conv_args *a);
int conv_ova(const struct conv_args *a);
/* A monolithicSparse or streamOptimized VMDK of size bytes of a->src
 * into fd, its descriptor naming the extent name: 0 or -1 (reported). */
int conv_vmdk_sparse(const struct conv_args *a, int fd, const char *name,
		     bool stream, uint64_t size);

#endif
