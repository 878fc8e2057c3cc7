/* Decoders for compressed units (qcow2 clusters, later VMDK grains).
 *
 * Each thread keeps its own zlib and zstd state, created on first use and
 * freed when the thread ends, so parallel reads decode in parallel
 * without locks. Output is bounded by the caller's out_len whatever the
 * input claims: a zstd frame announcing a huge window is refused rather
 * than allocated. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
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
};

static void codec_free(void *p)
{
	struct vd_codec_state *s = p;

	if (s->z_ready)
		inflateEnd(&s->z);
	ZSTD_freeDCtx(s->zd);
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
	size_t r = 0;

	if (!s)
		return -ENOMEM;
	if (!s->zd) {
		s->zd = ZSTD_createDCtx();
		if (!s->zd)
			return -ENOMEM;
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
