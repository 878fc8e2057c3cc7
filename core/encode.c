/* Encoders of compressed clusters and grains (see writer.h).
 *
 * qcow2's "zlib" clusters are raw deflate streams that QEMU inflates
 * with a 4 KiB window (inflateInit2 with -12), so they are made with the
 * same window: a stream with references further back would not decode
 * there. Before zlib's slow try, a fast one (zstd's level 1, which gives
 * up on data without matches within a few hundred bytes) looks whether
 * the cluster compresses at all: one that it shrinks by less than
 * 1/64 is stored as it is (data compressed or encrypted already; the
 * early abort ZFS makes with LZ4 before zstd). On random data the look
 * costs a hundredth of zlib's try, on compressible data a tenth more.
 * Only a cluster at the edge of compressing at all can be judged
 * otherwise than zlib alone would: it is stored, a few bytes larger,
 * never wrong. VMDK grains are zlib streams (RFC 1950) with the
 * usual 32 KiB window: libdeflate at zlib's default level makes them,
 * about twice as fast as zlib, after the same look (a grain that does
 * not shrink becomes a stream of stored blocks, libdeflate's level 0).
 * zstd clusters are one frame each at zstd's default level. */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/util.h"
#include "core/writer.h"

struct vd_encoder {
	z_stream raw;	/* raw deflate, 4 KiB window */
	bool raw_ready;
	ZSTD_CCtx *probe;		     /* level 1: does it compress? */
	uint8_t *scratch;		     /* its output */
	size_t scratch_cap;
	struct libdeflate_compressor *zl;    /* level 6: zlib streams */
	struct libdeflate_compressor *store; /* level 0: stored blocks */
	ZSTD_CCtx *zc;
};

struct vd_encoder *vd_encoder_new(void)
{
	return calloc(1, sizeof(struct vd_encoder));
}

void vd_encoder_free(struct vd_encoder *enc)
{
	if (!enc)
		return;
	if (enc->raw_ready)
		deflateEnd(&enc->raw);
	ZSTD_freeCCtx(enc->probe);
	free(enc->scratch);
	libdeflate_free_compressor(enc->zl);
	libdeflate_free_compressor(enc->store);
	ZSTD_freeCCtx(enc->zc);
	free(enc);
}

static long enc_deflate(z_stream *z, bool *ready, int window, const void *in,
			size_t in_len, void *out, size_t out_cap)
{
	int ret;

	if (!*ready) {
		memset(z, 0, sizeof(*z));
		if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		*ready = true;
	} else if (deflateReset(z) != Z_OK) {
		return -EIO;
	}
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)in_len;
	z->next_out = out;
	z->avail_out = (uInt)out_cap;
	ret = deflate(z, Z_FINISH);
	if (ret != Z_STREAM_END)
		return 0; /* it does not fit */
	return (long)(out_cap - z->avail_out);
}

/* The fast look: whether zstd's level 1 shrinks in_len bytes of in by
 * 1/64 or more. false with *err_r 0 when it does not, or with *err_r
 * -ENOMEM. */
static bool enc_shrinks(struct vd_encoder *enc, const void *in, size_t in_len,
			long *err_r)
{
	size_t cap = ZSTD_compressBound(in_len), n;

	*err_r = 0;
	if (enc->scratch_cap < cap) {
		free(enc->scratch);
		enc->scratch = malloc(cap);
		enc->scratch_cap = enc->scratch ? cap : 0;
	}
	if (!enc->scratch ||
	    (!enc->probe && !(enc->probe = ZSTD_createCCtx()))) {
		*err_r = -ENOMEM;
		return false;
	}
	n = ZSTD_compressCCtx(enc->probe, enc->scratch, cap, in, in_len, 1);
	/* A failure says nothing: the real try decides. */
	return ZSTD_isError(n) || n < in_len - in_len / 64;
}

long vd_encode(struct vd_encoder *enc, enum vd_codec codec, const void *in,
	       size_t in_len, void *out, size_t out_cap)
{
	size_t z;
	long n;

	switch (codec) {
	case VD_CODEC_DEFLATE:
		if (!enc_shrinks(enc, in, in_len, &n))
			return n;
		return enc_deflate(&enc->raw, &enc->raw_ready, -12, in, in_len,
				   out, out_cap);
	case VD_CODEC_ZLIB:
		if (!enc_shrinks(enc, in, in_len, &n)) {
			if (n)
				return n;
			if (!enc->store &&
			    !(enc->store = libdeflate_alloc_compressor(0)))
				return -ENOMEM;
			return (long)libdeflate_zlib_compress(enc->store, in,
							      in_len, out,
							      out_cap);
		}
		if (!enc->zl && !(enc->zl = libdeflate_alloc_compressor(6)))
			return -ENOMEM;
		return (long)libdeflate_zlib_compress(enc->zl, in, in_len, out,
						      out_cap);
	case VD_CODEC_ZSTD:
		if (!enc->zc && !(enc->zc = ZSTD_createCCtx()))
			return -ENOMEM;
		z = ZSTD_compressCCtx(enc->zc, out, out_cap, in, in_len,
				      ZSTD_CLEVEL_DEFAULT);
		if (ZSTD_isError(z))
			return ZSTD_getErrorCode(z) == ZSTD_error_dstSize_tooSmall ?
				       0 : -EIO;
		return (long)z;
	default:
		return -EINVAL;
	}
}

int vd_out_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	/* Ends: each pass writes at least one byte or returns. */
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int vd_out_pwritev(int fd, struct iovec *iov, unsigned n, uint64_t off)
{
	/* Ends: each pass writes at least one byte, or drops an empty
	 * piece, or returns. iov is consumed as it is written. */
	while (n) {
		ssize_t w;

		if (!iov->iov_len) {
			iov++;
			n--;
			continue;
		}
		w = pwritev(fd, iov, (int)VD_MIN(n, (unsigned)IOV_MAX),
			    (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		/* Ends: w shrinks by each whole piece skipped. */
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n && w) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

void vd_out_writeback(int fd, uint64_t *done, uint64_t end, bool last)
{
	if (end <= *done || (!last && end - *done < VD_OUT_WRITEBACK))
		return;
	/* Only a start: the writes are queued, nothing waits for them.
	 * A failure here shows again in the final fdatasync. */
	(void)sync_file_range(fd, (off_t)*done, (off_t)(end - *done),
			      SYNC_FILE_RANGE_WRITE);
	*done = end;
}
