/* Encoders of compressed clusters and grains (see writer.h).
 *
 * qcow2's "zlib" clusters are raw deflate streams that QEMU inflates
 * with a 4 KiB window (inflateInit2 with -12), so they are made with the
 * same window: a stream with references further back would not decode
 * there. VMDK grains are zlib streams (RFC 1950). zstd clusters are one
 * frame each at zstd's default level. */
#include <errno.h>
#include <fcntl.h>
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
	z_stream zl;	/* zlib stream */
	bool zl_ready;
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
	if (enc->zl_ready)
		deflateEnd(&enc->zl);
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

long vd_encode(struct vd_encoder *enc, enum vd_codec codec, const void *in,
	       size_t in_len, void *out, size_t out_cap)
{
	size_t n;

	switch (codec) {
	case VD_CODEC_DEFLATE:
		return enc_deflate(&enc->raw, &enc->raw_ready, -12, in, in_len,
				   out, out_cap);
	case VD_CODEC_ZLIB:
		return enc_deflate(&enc->zl, &enc->zl_ready, 15, in, in_len,
				   out, out_cap);
	case VD_CODEC_ZSTD:
		if (!enc->zc && !(enc->zc = ZSTD_createCCtx()))
			return -ENOMEM;
		n = ZSTD_compressCCtx(enc->zc, out, out_cap, in, in_len,
				      ZSTD_CLEVEL_DEFAULT);
		if (ZSTD_isError(n))
			return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ?
				       0 : -EIO;
		return (long)n;
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
