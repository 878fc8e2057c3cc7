/* NTFS file data: the runlist mapped once per open file, data read
 * through core outside the mount's lock.
 *
 * open reads the unnamed $DATA attribute's whole runlist under the lock
 * (libntfs-3g decodes the mapping pairs and follows the attribute list)
 * and copies it into an immutable array of runs, each checked to lie
 * inside the volume and to follow the one before. A read then finds its
 * runs by binary search and reads the volume with no lock held, so reads
 * of one file and of many run in parallel, and map() hands the runs to
 * the front end to splice from the host file. Sparse runs and the bytes
 * past the initialized size are zeros.
 *
 * What is not stored plainly is read through the library, under the
 * lock, a request at a time: resident data (in the MFT record, fixed up),
 * LZNT1-compressed data. Encrypted (EFS) data has no key here: open
 * fails with EIO and a log line, never ciphertext. Files compressed by
 * WOF (Compact OS) are read by ntfs-wof.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ntfs.h"

#include <ntfs-3g/runlist.h>

/* Runs per file at most: 16 bytes each, so 256 MiB of map for a file in
 * sixteen million fragments, which no volume this size could hold past
 * its own MFT. */
#define NT_RUNS_MAX (16u << 20)

struct nt_run {
	uint64_t vcn;
	uint64_t lcn; /* NT_HOLE: sparse */
};
#define NT_HOLE UINT64_MAX

struct nt_file {
	struct vd_fs_file base; /* first */
	struct nt_fs *x;
	uint64_t ino;
	uint64_t size;	   /* data_size */
	uint64_t init;	   /* initialized_size: zeros from here on */
	bool lib;	   /* read through the library */
	struct nt_wof *wof; /* or read by ntfs-wof.c */
	size_t n;	   /* runs; run i covers [run[i].vcn, run[i+1].vcn) */
	struct nt_run *run; /* n + 1 entries, the last one the end */
};

/* Copy na's runlist into f, checked. Under the lock. */
static int nt_file_runs(struct nt_file *f, ntfs_attr *na)
{
	struct nt_fs *x = f->x;
	runlist_element *rl;
	uint64_t need, vcn = 0;
	size_t n = 0, cap = 0;

	if (ntfs_attr_map_whole_runlist(na)) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": runlist "
		       "unreadable: %s", x->name, f->ino, strerror(errno));
		return -EIO;
	}
	need = (f->init + x->cluster - 1) / x->cluster;
	/* Ends: the library ends every runlist with a zero-length element,
	 * and we stop once the runs cover the initialized bytes. */
	for (rl = na->rl; rl && rl->length > 0 && vcn < need; rl++) {
		uint64_t len = (uint64_t)rl->length, lcn;

		if (rl->vcn < 0 || (uint64_t)rl->vcn != vcn)
			goto bad;
		if (rl->lcn == LCN_HOLE)
			lcn = NT_HOLE;
		else if (rl->lcn >= 0 &&
			 vd_range_ok((uint64_t)rl->lcn, len, x->clusters))
			lcn = (uint64_t)rl->lcn;
		else
			goto bad;
		if (n + 2 > cap) {
			struct nt_run *r;

			if (cap >= NT_RUNS_MAX)
				goto bad;
			cap = cap ? cap * 2 : 16;
			r = realloc(f->run, cap * sizeof(*r));
			if (!r)
				return -ENOMEM;
			f->run = r;
		}
		f->run[n++] = (struct nt_run){ vcn, lcn };
		vcn += len;
	}
	if (vcn < need)
		goto bad;
	if (!f->run) {
		f->run = malloc(sizeof(*f->run));
		if (!f->run)
			return -ENOMEM;
	}
	f->run[n] = (struct nt_run){ vcn, NT_HOLE };
	f->n = n;
	return 0;
bad:
	vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": runlist does not "
	       "cover the file or lies outside the volume (at cluster %" PRIu64
	       " of %" PRIu64 ")", x->name, f->ino, vcn, need);
	return -EIO;
}

int vd_ntfs_open(struct vd_fs *fs, uint64_t ino, struct vd_fs_file **f_r)
{
	struct nt_fs *x = (struct nt_fs *)fs;
	struct nt_file *f = calloc(1, sizeof(*f));
	ntfs_inode *ni;
	ntfs_attr *na;
	int ret;

	if (!f)
		return -ENOMEM;
	f->base.fs = fs;
	f->x = x;
	f->ino = ino;
	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, ino, &ret);
	if (!ni)
		goto out;
	if (ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) {
		ret = -EISDIR;
		goto close;
	}
	if (ni->flags & FILE_ATTR_ENCRYPTED) {
		/* Before the library is asked for $DATA: it refuses it. */
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 " is "
		       "encrypted (EFS); its contents cannot be read without "
		       "the user's key", x->name, ino);
		ret = -EIO;
		goto close;
	}
	ret = vd_ntfs_wof_open(x, ni, &f->wof);
	if (ret || f->wof) {
		f->size = f->wof ? vd_ntfs_wof_size(f->wof) : 0;
		f->lib = true; /* no runs to map */
		goto close;
	}
	errno = 0;
	na = ntfs_attr_open(ni, AT_DATA, VD_AT_UNNAMED, 0);
	if (!na) {
		/* No unnamed $DATA: an empty file, as ntfs-3g reads it. */
		ret = errno == ENOENT ? 0 : -EIO;
		if (ret)
			vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64
			       ": $DATA unreadable: %s", x->name, ino,
			       strerror(errno));
		goto close;
	}
	if ((na->data_flags & ATTR_IS_ENCRYPTED) ||
	    (ni->flags & FILE_ATTR_ENCRYPTED)) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 " is "
		       "encrypted (EFS); its contents cannot be read without "
		       "the user's key", x->name, ino);
		ret = -EIO;
	} else if (na->data_size < 0 || na->initialized_size < 0) {
		ret = -EIO;
	} else {
		f->size = (uint64_t)na->data_size;
		f->init = VD_MIN((uint64_t)na->initialized_size, f->size);
		f->lib = !NAttrNonResident(na) ||
			 (na->data_flags & ATTR_COMPRESSION_MASK);
		ret = f->lib ? 0 : nt_file_runs(f, na);
	}
	ntfs_attr_close(na);
close:
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	if (ret) {
		vd_ntfs_release(&f->base);
		return ret;
	}
	*f_r = &f->base;
	return 0;
}

void vd_ntfs_release(struct vd_fs_file *ff)
{
	struct nt_file *f = (struct nt_file *)ff;

	if (!f)
		return;
	vd_ntfs_wof_close(f->wof);
	free(f->run);
	free(f);
}

/* The run holding cluster vcn (< the end of the runs). */
static size_t nt_run_find(const struct nt_file *f, uint64_t vcn)
{
	size_t lo = 0, hi = f->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->run[mid].vcn <= vcn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Append a piece, merging with the last when they touch. */
static bool nt_piece_add(struct vd_fs_piece *p, unsigned max, unsigned *n,
			   bool zero, uint64_t vol_off, uint64_t len)
{
	struct vd_fs_piece *last = *n ? &p[*n - 1] : NULL;

	if (last && last->zero == zero &&
	    (zero || last->vol_off + last->len == vol_off)) {
		last->len += len;
		return true;
	}
	if (*n == max)
		return false;
	p[(*n)++] = (struct vd_fs_piece){ vol_off, len, zero };
	return true;
}

/* Pieces of [off, off + len) inside the file, at most max, for the
 * *got_r bytes from off. */
static void nt_pieces(const struct nt_file *f, uint64_t off, uint64_t len,
			struct vd_fs_piece *p, unsigned max, unsigned *n_r,
			uint64_t *got_r)
{
	uint64_t cs = f->x->cluster, pos = off, end = off + len;

	*n_r = 0;
	/* Ends: each pass consumes bytes up to a run's end or init, or
	 * finds no room. */
	while (pos < end) {
		uint64_t n, vcn;
		size_t i;
		bool ok;

		if (pos >= f->init) {
			ok = nt_piece_add(p, max, n_r, true, 0, end - pos);
			n = end - pos;
		} else {
			vcn = pos / cs;
			i = nt_run_find(f, vcn);
			n = VD_MIN(end, VD_MIN(f->init, f->run[i + 1].vcn * cs)) -
			    pos;
			if (f->run[i].lcn == NT_HOLE)
				ok = nt_piece_add(p, max, n_r, true, 0, n);
			else
				ok = nt_piece_add(p, max, n_r, false,
						    f->run[i].lcn * cs +
							    (pos - f->run[i].vcn *
									   cs),
						    n);
		}
		if (!ok)
			break;
		pos += n;
	}
	*got_r = pos - off;
}

int vd_ntfs_map(struct vd_fs_file *ff, uint64_t off, size_t len,
		struct vd_fs_piece *p, unsigned max, unsigned *n_r,
		size_t *got_r)
{
	struct nt_file *f = (struct nt_file *)ff;
	uint64_t got;

	*n_r = 0;
	*got_r = 0;
	if (f->lib)
		return -EOPNOTSUPP;
	if (off >= f->size || !len || !max)
		return 0;
	nt_pieces(f, off, VD_MIN(len, f->size - off), p, max, n_r, &got);
	*got_r = (size_t)got;
	return 0;
}

/* Read through the library, under the lock. */
static int nt_lib_read(struct nt_file *f, void *buf, size_t len,
			 uint64_t off)
{
	struct nt_fs *x = f->x;
	ntfs_inode *ni;
	ntfs_attr *na;
	int ret;

	pthread_mutex_lock(&x->lock);
	ni = vd_ntfs_iget(x, f->ino, &ret);
	if (!ni)
		goto out;
	ret = -EIO;
	na = ntfs_attr_open(ni, AT_DATA, VD_AT_UNNAMED, 0);
	if (na) {
		/* The size may not have changed under a read-only mount,
		 * but a damaged record read twice must not overrun buf. */
		if ((uint64_t)na->data_size >= off + len &&
		    ntfs_attr_pread(na, (s64)off, (s64)len, buf) == (s64)len)
			ret = 0;
		ntfs_attr_close(na);
	}
	if (ret)
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": read of "
		       "%zu bytes at %" PRIu64 " failed: %s", x->name, f->ino,
		       len, off, strerror(errno ? errno : EIO));
	ntfs_inode_close(ni);
out:
	pthread_mutex_unlock(&x->lock);
	return ret;
}

int vd_ntfs_read(struct vd_fs_file *ff, void *buf, size_t len, uint64_t off,
		 size_t *got_r)
{
	struct nt_file *f = (struct nt_file *)ff;
	uint8_t *out = buf;
	uint64_t pos, end;
	int ret = 0;

	*got_r = 0;
	if (off >= f->size || !len)
		return 0;
	len = (size_t)VD_MIN(len, f->size - off);
	if (f->wof) {
		ret = vd_ntfs_wof_read(f->x, f->wof, buf, len, off);
		if (!ret)
			*got_r = len;
		return ret;
	}
	if (f->lib) {
		ret = nt_lib_read(f, buf, len, off);
		if (!ret)
			*got_r = len;
		return ret;
	}
	pos = off;
	end = off + len;
	/* Ends: every pass maps at least one byte of [pos, end). */
	while (pos < end && !ret) {
		struct vd_fs_piece p[16];
		unsigned n;
		uint64_t got;

		nt_pieces(f, pos, end - pos, p, 16, &n, &got);
		for (unsigned i = 0; i < n && !ret; i++) {
			if (p[i].zero)
				memset(out + (pos - off), 0, p[i].len);
			else
				ret = vd_vol_read(f->x->base.vol,
						  out + (pos - off), p[i].len,
						  p[i].vol_off);
			if (!ret)
				pos += p[i].len;
		}
	}
	if (ret) {
		vd_log(VD_LOG_ERR, "%s: ntfs: MFT record %" PRIu64 ": read at "
		       "%" PRIu64 " failed", f->x->name, f->ino, pos);
		return -EIO;
	}
	*got_r = len;
	return 0;
}

int vd_ntfs_seek(struct vd_fs_file *ff, uint64_t off, bool want_data,
		 uint64_t *off_r)
{
	struct nt_file *f = (struct nt_file *)ff;
	uint64_t cs = f->x->cluster, pos = off;

	if (off >= f->size)
		return -ENXIO;
	if (f->lib) {
		*off_r = want_data ? off : f->size;
		return 0;
	}
	/* Ends: each pass moves pos to the end of a run, or to init. */
	while (pos < f->size) {
		bool data;
		uint64_t next;
		size_t i;

		if (pos >= f->init) {
			data = false;
			next = f->size;
		} else {
			i = nt_run_find(f, pos / cs);
			data = f->run[i].lcn != NT_HOLE;
			next = VD_MIN(f->init, f->run[i + 1].vcn * cs);
		}
		if (data == want_data) {
			*off_r = pos;
			return 0;
		}
		pos = next;
	}
	if (want_data)
		return -ENXIO;
	*off_r = f->size;
	return 0;
}
