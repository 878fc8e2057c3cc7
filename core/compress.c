/* Decoders for compressed units (qcow2 clusters, later VMDK grains).
 *
 * Each thread keeps its own decoder state, created on first use and
 * freed when the thread ends, so parallel reads decode in parallel
 * without locks. Output is bounded by the caller's out_len whatever the
 * input claims: a zstd frame announcing a huge window is refused rather
 * than allocated.
 *
 * The fast paths decode a whole unit in one call: libdeflate for deflate
 * (about twice zlib's speed here), zstd's single-shot API on the frame
 * alone. Whatever they refuse goes to the streaming decoders (zlib, zstd
 * streaming), whose verdict stands, so the fast paths never change which
 * inputs are accepted: only how fast good ones decode. */
#include <errno.h>
#include <libdeflate.h>
#include <stdbool.h>
#include <stdlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader's window size */
#include <zlib.h>
#include <zstd.h>

#include "common/tls.h"
#include "core/layer.h"

/* Largest zstd window accepted: 4 MiB, twice the largest qcow2 cluster. */
#define VD_ZSTD_WINDOW_LOG_MAX 22

struct vd_codec_state {
	z_stream z;
	bool z_ready;
	ZSTD_DCtx *zd;
	struct libdeflate_decompressor *ld;
};

static void codec_free(void *p)
{
	struct vd_codec_state *s = p;

	if (s->z_ready)
		inflateEnd(&s->z);
	ZSTD_freeDCtx(s->zd);
	libdeflate_free_decompressor(s->ld);
	free(s);
}

static struct vd_tls codec_tls = VD_TLS_INIT(struct vd_codec_state, codec_free);

void vd_codec_thread_cleanup(void)
{
	vd_tls_clear(&codec_tls);
}

int vd_inflate(const uint8_t *in, size_t in_len, uint8_t *out,
	       size_t out_len, int window_bits)
{
	struct vd_codec_state *s = vd_tls_get(&codec_tls);
	int ret;

	if (!s)
		return -ENOMEM;
	/* Fast path: the whole unit at once. Input past the stream's end
	 * is allowed (padding to the next sector); the output must be
	 * exactly out_len. */
	if (!s->ld)
		s->ld = libdeflate_alloc_decompressor();
	if (s->ld) {
		size_t used;
		enum libdeflate_result r;

		if (window_bits < 0)
			r = libdeflate_deflate_decompress_ex(s->ld, in, in_len,
							     out, out_len,
							     &used, NULL);
		else
			r = libdeflate_zlib_decompress_ex(s->ld, in, in_len, out,
							  out_len, &used, NULL);
		if (r == LIBDEFLATE_SUCCESS)
			return 0;
	}
	if (!s->z_ready) {
		if (inflateInit2(&s->z, window_bits) != Z_OK)
			return -ENOMEM;
		s->z_ready = true;
	} else if (inflateReset2(&s->z, window_bits) != Z_OK) {
		return -EIO;
	}
	s->z.next_in = (Bytef *)in;
	s->z.avail_in = (uInt)in_len;
	s->z.next_out = out;
	s->z.avail_out = (uInt)out_len;
	ret = inflate(&s->z, Z_FINISH);
	/* Done when the unit is full: the stream may end exactly there, or
	 * run on into padding that belongs to the next unit. */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && s->z.avail_out == 0)
		return 0;
	return -EIO;
}

int vd_zstd_decode(const uint8_t *in, size_t in_len, uint8_t *out,
		   size_t out_len)
{
	struct vd_codec_state *s = vd_tls_get(&codec_tls);
	ZSTD_inBuffer ib = { in, in_len, 0 };
	ZSTD_outBuffer ob = { out, out_len, 0 };
	ZSTD_frameHeader fh;
	size_t r = 0;

	if (!s)
		return -ENOMEM;
	if (!s->zd) {
		s->zd = ZSTD_createDCtx();
		if (!s->zd)
			return -ENOMEM;
	}
	/* Fast path: one frame decoded straight into out (no window
	 * buffer, no copy), when its header allows the window we allow. */
	if (ZSTD_getFrameHeader(&fh, in, in_len) == 0 &&
	    fh.frameType == ZSTD_frame &&
	    fh.windowSize <= (1ULL << VD_ZSTD_WINDOW_LOG_MAX)) {
		size_t fsize = ZSTD_findFrameCompressedSize(in, in_len);

		if (!ZSTD_isError(fsize) &&
		    ZSTD_decompressDCtx(s->zd, out, out_len, in, fsize) ==
			    out_len)
			return 0;
	}
	ZSTD_DCtx_reset(s->zd, ZSTD_reset_session_only);
	if (ZSTD_isError(ZSTD_DCtx_setParameter(s->zd, ZSTD_d_windowLogMax,
						VD_ZSTD_WINDOW_LOG_MAX)))
		return -EIO;
	/* Ends: each pass consumes input or produces output, or we stop;
	 * both are finite. */
	while (ob.pos < ob.size) {
		size_t in_was = ib.pos, out_was = ob.pos;

		r = ZSTD_decompressStream(s->zd, &ob, &ib);
		if (ZSTD_isError(r))
			return -EIO;
		if (ib.pos == in_was && ob.pos == out_was)
			return -EIO;
	}
	/* r > 0: the frame wants to produce more than the unit holds. */
	return r == 0 ? 0 : -EIO;
}
