/* Writing new images front to back (vdtool convert): the qcow2 stream
 * writer (qcow2-out.c) and the encoders of compressed clusters
 * (encode.c).
 *
 * A stream writer gets the guest clusters of a disk in increasing order
 * and appends what they hold to a file it owns from the start: data and
 * tables go out in large sequential writes, and the tables that must name
 * everything (L1, refcounts, the header) are written last. Until
 * vd_qcow2_out_finish returns 0 the file is not a valid image; the caller
 * writes it under a temporary name. */
#ifndef VD_WRITER_H
#define VD_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

struct iovec;

/* Write all len bytes of buf at off of fd (retrying short writes and
 * EINTR): 0 or -errno. Every output writer's one way to the file. */
int vd_out_pwrite(int fd, const void *buf, size_t len, uint64_t off);
/* The same for n pieces, one after the other from off (any number of
 * them: IOV_MAX at a time); iov is consumed (changed) as it goes. */
int vd_out_pwritev(int fd, struct iovec *iov, unsigned n, uint64_t off);

/* Write-behind: start the disk writes of the bytes [*done, end) of fd
 * once they are VD_OUT_WRITEBACK or more (or last), without waiting for
 * them, and move *done to end. A stream writer calls it after each
 * write: the output reaches the disk while the rest is converted,
 * instead of all in the final fdatasync. */
#define VD_OUT_WRITEBACK (32u << 20)
void vd_out_writeback(int fd, uint64_t *done, uint64_t end, bool last);

/* Codecs of compressed clusters and grains. */
enum vd_codec {
	VD_CODEC_NONE = -1,
	VD_CODEC_DEFLATE = 0, /* raw deflate, 4 KiB window: qcow2 "zlib" */
	VD_CODEC_ZSTD = 1,    /* a zstd frame: qcow2 "zstd" */
	VD_CODEC_ZLIB = 2,    /* a zlib stream (RFC 1950): VMDK grains */
};

/* One thread's encoder state (not shared between threads). */
struct vd_encoder;
struct vd_encoder *vd_encoder_new(void);
void vd_encoder_free(struct vd_encoder *enc);
/* Compress in_len bytes of in into out (at most out_cap bytes): the
 * compressed length, 0 when it does not fit (store the data as it is),
 * or -errno. */
long vd_encode(struct vd_encoder *enc, enum vd_codec codec, const void *in,
	       size_t in_len, void *out, size_t out_cap);

struct vd_qcow2_out_opts {
	uint64_t size;		  /* virtual size, bytes */
	unsigned cluster_bits;	  /* 9 to 21 */
	enum vd_codec codec;	  /* of compressed clusters (header field) */
	const char *backing;	  /* backing file name to record, or NULL */
	const char *backing_fmt;  /* its format, or NULL */
};

struct vd_qcow2_out;

/* Start a qcow2 version 3 image in the empty file fd (not closed by the
 * writer). 0 or -errno (e says why). */
int vd_qcow2_out_open(int fd, const struct vd_qcow2_out_opts *o,
		      struct vd_qcow2_out **w_r, struct vd_err *e);
/* Guest cluster g (clusters come in increasing order, each at most once;
 * one not given reads as unallocated): */
/* ... holds these cluster_size bytes (stored as they are). Not copied:
 * buf must hold them until the next vd_qcow2_out_flush; */
int vd_qcow2_out_data(struct vd_qcow2_out *w, uint64_t g, const void *buf);
/* ... holds what these len bytes of the image's codec decode to (len
 * below the cluster size; not copied either); */
int vd_qcow2_out_compressed(struct vd_qcow2_out *w, uint64_t g,
			    const void *buf, size_t len);
/* ... reads as zeros whatever the backing file holds (version 3 zero
 * flag); */
int vd_qcow2_out_zero(struct vd_qcow2_out *w, uint64_t g);
/* ... has a host cluster that is not written (reads as zeros: the file
 * stays sparse there): preallocation=metadata. */
int vd_qcow2_out_alloc(struct vd_qcow2_out *w, uint64_t g);
/* Write what the calls since the last flush gave (one pwritev of the
 * callers' buffers): after it they may be reused. 0 or -errno. */
int vd_qcow2_out_flush(struct vd_qcow2_out *w);
/* Write the L1 table, the refcounts and the header; fdatasync. */
int vd_qcow2_out_finish(struct vd_qcow2_out *w);
void vd_qcow2_out_free(struct vd_qcow2_out *w);
/* Bytes of the image written so far. */
uint64_t vd_qcow2_out_bytes(const struct vd_qcow2_out *w);

/* VHD (vhd-out.c): dynamic (blocks of VD_VHD_BLOCK bytes, only those
 * given are stored) or fixed (the disk's bytes, then the footer). */
#define VD_VHD_BLOCK (2u << 20)

struct vd_vhd_out_opts {
	uint64_t size; /* a multiple of 512 */
	bool fixed;
};

struct vd_vhd_out;

int vd_vhd_out_open(int fd, const struct vd_vhd_out_opts *o,
		    struct vd_vhd_out **w_r, struct vd_err *e);
/* Block idx (in increasing order) holds buf (VD_VHD_BLOCK bytes, the
 * last block zero-padded). A block not given reads as zeros. */
int vd_vhd_out_block(struct vd_vhd_out *w, uint64_t idx, const void *buf);
int vd_vhd_out_finish(struct vd_vhd_out *w);
void vd_vhd_out_free(struct vd_vhd_out *w);

/* VMDK (vmdk-out.c): a monolithicSparse or streamOptimized extent with
 * its descriptor embedded. */
#define VD_VMDK_GRAIN 65536u

struct vd_vmdk_out_opts {
	uint64_t size;	   /* a multiple of 512 */
	bool stream;	   /* streamOptimized: compressed grains, markers */
	const char *name;  /* the extent's file name, for the descriptor */
};

struct vd_vmdk_out;

int vd_vmdk_out_open(int fd, const struct vd_vmdk_out_opts *o,
		     struct vd_vmdk_out **w_r, struct vd_err *e);
/* Grain g (in increasing order): monolithicSparse stores buf's 64 KiB
 * as they are; streamOptimized takes them as a zlib stream of len
 * bytes. A grain not given reads as zeros. */
int vd_vmdk_out_grain(struct vd_vmdk_out *w, uint64_t g, const void *buf);
int vd_vmdk_out_cgrain(struct vd_vmdk_out *w, uint64_t g, const void *buf,
		       size_t len);
int vd_vmdk_out_finish(struct vd_vmdk_out *w);
void vd_vmdk_out_free(struct vd_vmdk_out *w);
/* A descriptor naming one extent of type extent_type ("SPARSE",
 * "FLAT") of sectors sectors: its length, or -ENAMETOOLONG. */
int vd_vmdk_desc(char *buf, size_t cap, const char *type, uint64_t sectors,
		 const char *extent_type, const char *extent);

#endif
