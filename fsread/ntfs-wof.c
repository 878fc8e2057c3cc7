/* NTFS files compressed by Windows' Compact OS: the Windows Overlay
 * Filter (WOF) with its "file" provider, shown as ntfs-3g's
 * system-compression plugin shows them.
 *
 * Such a file has a reparse point of tag IO_REPARSE_TAG_WOF whose data
 * is WOF_EXTERNAL_INFO (le32 version 1, le32 provider 2: FILE) then
 * FILE_PROVIDER_EXTERNAL_INFO_V1 (le32 version 1, le32 format:
 * 0 XPRESS4K, 1 LZX, 2 XPRESS8K, 3 XPRESS16K); an unnamed $DATA that
 * is sparse, of the uncompressed size; and the data itself in a named
 * stream "WofCompressedData". The stream holds the file in chunks of
 * 4, 8, 16 or (LZX) 32 KiB, the last one shorter, compressed one by
 * one: first a table giving, for every chunk after the first, where it
 * starts, counted from the end of the table (le32 entries, le64 when
 * the file is 4 GiB or more), then the chunks in order, the last one
 * ending with the stream. A chunk whose stored size equals its size is
 * stored as it is.
 *
 * Shown (as the plugin, through ntfs-3g's getattr, does): a regular
 * file, mode 0555, of the unnamed $DATA's size, with the stream's size
 * as its blocks. What the plugin does not recognise (another provider,
 * an unknown format, no stream) stays the symlink ntfs-3g shows. A
 * chunk that does not decode, or a table that points outside the
 * stream, fails the read with EIO and a log line: never zeros.
 *
 * Reads: the table entries and the stored chunks a request needs are
 * read through the library under the mount's lock, in one go for up to
 * NT_WOF_BATCH chunks; they are decoded outside it. The chunk last
 * decoded for a partial read is kept per open file, so reads smaller
 * than a chunk do not decode it again. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/mscomp.h"
#include "fsread/ntfs.h"

#define NT_WOF_TAG 0x80000017u	/* IO_REPARSE_TAG_WOF */
#define NT_WOF_VERSION 1u
#define NT_WOF_PROVIDER_FILE 2u
#define NT_WOF_FILE_VERSION 1u
#define NT_WOF_RP_LEN 16u	/* the two structures above */
#define NT_WOF_BATCH 64u	/* chunks read under one lock */
#define NT_NO_CHUNK UINT64_MAX

enum { NT_WOF_XPRESS4K, NT_WOF_LZX, NT_WOF_XPRESS8K, NT_WOF_XPRESS16K };

static const char *const nt_wof_names[] = { "XPRESS4K", "LZX", "XPRESS8K",
					    "XPRESS16K" };
static const unsigned nt_wof_shift[] = { 12, 15, 13, 14 };

/* "WofCompressedData", UTF-16LE. */
static ntfschar nt_wof_stream[] = {
	const_cpu_to_le16('W'), const_cpu_to_le16('o'), const_cpu_to_le16('f'),
	const_cpu_to_le16('C'), const_cpu_to_le16('o'), const_cpu_to_le16('m'),
	const_cpu_to_le16('p'), const_cpu_to_le16('r'), const_cpu_to_le16('e'),
	const_cpu_to_le16('s'), const_cpu_to_le16('s'), const_cpu_to_le16('e'),
	const_cpu_to_le16('d'), const_cpu_to_le16('D'), const_cpu_to_le16('a'),
	const_cpu_to_le16('t'), const_cpu_to_le16('a'),
};
#define NT_WOF_STREAM_LEN ((u32)VD_ARRAY_SIZE(nt_wof_stream))

struct nt_wof {
	uint64_t ino;
	uint64_t size;	  /* uncompressed: the unnamed $DATA's size */
	uint64_t csize;	  /* the stream's size */
	uint64_t chunks;
	uint64_t table;	  /* bytes of the chunk table */
	unsigned format;
	unsigned shift;	  /* log2 of the chunk size */
	unsigned entry;	  /* bytes per table entry: 4 or 8 */
	pthread_mutex_t lock; /* guards cached, cbuf */
	uint64_t cached;      /* the chunk in cbuf, or NT_NO_CHUNK */
	uint8_t *cbuf;
};

/* The WOF format of ni, or -1 when ni is not a WOF file the plugin
 * would show (its reparse point, then its stream). Under the lock. */
static int nt_wof_format(ntfs_inode *ni, uint64_t *csize_r)
{
	/* The reparse point's header (MS-FSCC 2.1.2.1: le32 tag, le16
	 * data length, le16 reserved) and the two WOF structures. */
	uint8_t rp[8 + NT_WOF_RP_LEN];
	ntfs_attr *na;
	int fmt = -1;

	/* WOF compresses files only; a directory stays what it was. */
	if (!(ni->flags & FILE_ATTR_REPARSE_POINT) ||
	    (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY))
		return -1;
	na = ntfs_attr_open(ni, AT_REPARSE_POINT, VD_AT_UNNAMED, 0);
	if (!na)
		return -1;
	if (na->data_size >= (s64)sizeof(rp) &&
	    ntfs_attr_pread(na, 0, sizeof(rp), rp) == (s64)sizeof(rp) &&
	    get_le32(rp) == NT_WOF_TAG && get_le16(rp + 4) >= NT_WOF_RP_LEN &&
	    get_le32(rp + 8) == NT_WOF_VERSION &&
	    get_le32(rp + 12) == NT_WOF_PROVIDER_FILE &&
	    get_le32(rp + 16) == NT_WOF_FILE_VERSION &&
	    get_le32(rp + 20) <= NT_WOF_XPRESS16K)
		fmt = (int)get_le32(rp + 20);
	ntfs_attr_close(na);
	if (fmt < 0)
		return -1;
	na = ntfs_attr_open(ni, AT_DATA, nt_wof_stream, NT_WOF_STREAM_LEN);
	if (!na)
		return -1;
	if (na->data_size < 0)
		fmt = -1;
	else if (csize_r)
		*csize_r = (uint64_t)na->data_size;
	ntfs_attr_close(na);
	return fmt;
}

bool vd_ntfs_wof_is(ntfs_inode *ni)
{
	return nt_wof_format(ni, NULL) >= 0;
}

bool vd_ntfs_wof_stat(ntfs_inode *ni, struct vd_fs_attr *a)
{
	uint64_t csize = 0;

	if (nt_wof_format(ni, &csize) < 0 || ni->data_size < 0)
		return false;
	a->mode = S_IFREG | 0555;
	a->size = (uint64_t)ni->data_size;
	a->blocks = csize / 512 + (csize % 512 != 0);
	return true;
}

int vd_ntfs_wof_open(struct nt_fs *x, ntfs_inode *ni, struct nt_wof **w_r)
{
	struct nt_wof *w;
	uint64_t csize = 0;
	int fmt = nt_wof_format(ni, &csize);

	*w_r = NULL;
	if (fmt < 0)
		return 0;
	if (ni->data_size < 0) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %llu: WOF-compressed "
		       "file with a negative size", x->name,
		       (unsigned long long)ni->mft_no);
		return -EIO;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->ino = ni->mft_no;
	w->format = (unsigned)fmt;
	w->shift = nt_wof_shift[fmt];
	w->size = (uint64_t)ni->data_size;
	w->csize = csize;
	w->chunks = (w->size >> w->shift) +
		    ((w->size & ((1u << w->shift) - 1)) != 0);
	w->entry = w->size > UINT32_MAX ? 8 : 4;
	w->table = w->chunks ? (w->chunks - 1) * w->entry : 0;
	w->cached = NT_NO_CHUNK;
	/* Each chunk is at least one byte after the table. */
	if (w->csize < w->table || w->csize - w->table < w->chunks) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %llu: WOF %s stream "
		       "of %" PRIu64 " bytes cannot hold %" PRIu64 " chunks "
		       "(a %" PRIu64 "-byte file) and their table", x->name,
		       (unsigned long long)ni->mft_no, nt_wof_names[fmt],
		       w->csize, w->chunks, w->size);
		free(w);
		return -EIO;
	}
	w->cbuf = malloc(1u << w->shift);
	if (!w->cbuf) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	*w_r = w;
	return 0;
}

void vd_ntfs_wof_close(struct nt_wof *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->lock);
	free(w->cbuf);
	free(w);
}

uint64_t vd_ntfs_wof_size(const struct nt_wof *w)
{
	return w->size;
}

/* Bytes chunk c decodes to. */
static uint32_t nt_wof_usize(const struct nt_wof *w, uint64_t c)
{
	uint64_t at = c << w->shift;

	return (uint32_t)VD_MIN(w->size - at, (uint64_t)1 << w->shift);
}

/* Under the lock: where chunks c0..c0+n-1 lie (b[k]..b[k+1], from the
 * table's end), checked, and their stored bytes into *data_r. */
static int nt_wof_fetch(struct nt_fs *x, struct nt_wof *w, uint64_t c0,
			unsigned n, uint64_t *b, uint8_t **data_r)
{
	uint8_t ent[(NT_WOF_BATCH + 1) * 8];
	uint64_t first, last, room = w->csize - w->table;
	unsigned k0, cnt;
	ntfs_inode *ni;
	ntfs_attr *na = NULL;
	uint8_t *data = NULL;
	const char *what = "chunk table";
	int ret;

	/* Entry i is where chunk i + 1 starts: chunk 0 starts at 0 and
	 * the last one ends at room. */
	first = c0 ? c0 - 1 : 0;
	last = VD_MIN(c0 + n, w->chunks - 1); /* one past the last read */
	k0 = c0 ? 0 : 1;
	cnt = (unsigned)(last - first);
	ni = vd_ntfs_iget(x, w->ino, &ret);
	if (!ni)
		return ret;
	ret = -EIO;
	na = ntfs_attr_open(ni, AT_DATA, nt_wof_stream, NT_WOF_STREAM_LEN);
	if (!na || na->data_size != (s64)w->csize)
		goto out;
	if (cnt && ntfs_attr_pread(na, (s64)(first * w->entry),
				   (s64)(cnt * w->entry), ent) !=
			   (s64)(cnt * w->entry))
		goto out;
	if (!c0)
		b[0] = 0;
	for (unsigned i = 0; i < cnt; i++)
		b[k0 + i] = w->entry == 8 ? get_le64(ent + 8 * i) :
					    get_le32(ent + 4 * i);
	if (c0 + n == w->chunks)
		b[n] = room;
	for (unsigned k = 0; k < n; k++) {
		if (b[k] <= b[k + 1] && b[k + 1] <= room &&
		    b[k + 1] - b[k] >= 1 &&
		    b[k + 1] - b[k] <= nt_wof_usize(w, c0 + k))
			continue;
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": WOF "
		       "chunk table: chunk %" PRIu64 " would lie at %" PRIu64
		       "..%" PRIu64 " of the %" PRIu64 " bytes after the "
		       "table: outside them, empty or larger than its %"
		       PRIu32 " bytes", x->name, w->ino, c0 + k, b[k],
		       b[k + 1], room, nt_wof_usize(w, c0 + k));
		what = NULL;
		goto out;
	}
	what = "chunks";
	/* At most n chunk sizes: checked above. */
	data = malloc(b[n] - b[0]);
	if (!data) {
		ret = -ENOMEM;
		goto out;
	}
	if (ntfs_attr_pread(na, (s64)(w->table + b[0]), (s64)(b[n] - b[0]),
			    data) != (s64)(b[n] - b[0]))
		goto out;
	*data_r = data;
	data = NULL;
	ret = 0;
out:
	if (ret == -EIO && what)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": WOF "
		       "stream unreadable (%s of chunks %" PRIu64 "..%" PRIu64
		       "): %s", x->name, w->ino, what, c0, c0 + n - 1,
		       strerror(errno ? errno : EIO));
	free(data);
	if (na)
		ntfs_attr_close(na);
	ntfs_inode_close(ni);
	return ret;
}

/* Decode chunk c, stored as in[0..stored), into out. */
static int nt_wof_decode(struct nt_fs *x, struct nt_wof *w, uint64_t c,
			 const uint8_t *in, uint64_t stored, uint8_t *out)
{
	uint32_t usize = nt_wof_usize(w, c);
	const char *why = "";
	int ret;

	if (stored == usize) {
		memcpy(out, in, usize);
		return 0;
	}
	if (w->format == NT_WOF_LZX)
		ret = vd_lzx_decode(in, (size_t)stored, out, usize, &why);
	else
		ret = vd_xpress_decode(in, (size_t)stored, out, usize, &why);
	if (!ret)
		return 0;
	if (ret == -ENOMEM)
		return ret;
	vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": WOF %s chunk %"
	       PRIu64 " (%" PRIu64 " bytes stored for %" PRIu32 ") does not "
	       "decode: %s", x->name, w->ino, nt_wof_names[w->format], c,
	       stored, usize, why);
	return -EIO;
}

int vd_ntfs_wof_read(struct nt_fs *x, struct nt_wof *w, void *buf,
		     size_t len, uint64_t off)
{
	uint8_t *out = buf;
	uint64_t end = off + len, c = off >> w->shift;
	uint64_t clast = (end - 1) >> w->shift;
	int ret = 0;

	if (!len || off >= w->size || len > w->size - off)
		return len ? -EINVAL : 0;
	/* Ends: every pass handles at least one chunk up to clast. */
	while (c <= clast && !ret) {
		unsigned n = (unsigned)VD_MIN(clast - c + 1, NT_WOF_BATCH);
		uint64_t b[NT_WOF_BATCH + 1];
		uint8_t *data = NULL;
		uint64_t cs = c << w->shift;
		bool whole = off <= cs && end >= cs + nt_wof_usize(w, c);

		/* A part of the chunk last decoded: no read. */
		if (n == 1 && !whole) {
			pthread_mutex_lock(&w->lock);
			if (w->cached == c) {
				uint64_t from = VD_MAX(off, cs);

				memcpy(out + (from - off),
				       w->cbuf + (from - cs),
				       VD_MIN(end, cs + nt_wof_usize(w, c)) -
					       from);
				pthread_mutex_unlock(&w->lock);
				break;
			}
			pthread_mutex_unlock(&w->lock);
		}
		pthread_mutex_lock(&x->lock);
		ret = nt_wof_fetch(x, w, c, n, b, &data);
		pthread_mutex_unlock(&x->lock);
		for (unsigned k = 0; k < n && !ret; k++, c++) {
			uint64_t at = c << w->shift;
			uint32_t usize = nt_wof_usize(w, c);
			uint64_t from = VD_MAX(off, at);
			uint64_t to = VD_MIN(end, at + usize);

			const uint8_t *in = data + (b[k] - b[0]);

			if (from == at && to == at + usize) {
				ret = nt_wof_decode(x, w, c, in, b[k + 1] - b[k],
						    out + (at - off));
				continue;
			}
			pthread_mutex_lock(&w->lock);
			if (w->cached != c) {
				w->cached = NT_NO_CHUNK;
				ret = nt_wof_decode(x, w, c, in, b[k + 1] - b[k],
						    w->cbuf);
				if (!ret)
					w->cached = c;
			}
			if (!ret)
				memcpy(out + (from - off),
				       w->cbuf + (from - at), to - from);
			pthread_mutex_unlock(&w->lock);
		}
		free(data);
	}
	return ret == -ENOMEM ? ret : ret ? -EIO : 0;
}
