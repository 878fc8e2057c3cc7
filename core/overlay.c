/* Creating a writable overlay: a qcow2 version 3 child whose backing
 * file is the image the user named (vdmount --overlay=CHILD IMAGE).
 *
 * The child is what `qemu-img create -f qcow2 -b IMAGE -F FMT CHILD`
 * makes, laid out by hand: header with the backing format extension and
 * the backing name in cluster 0, the refcount table in cluster 1, one
 * refcount block in cluster 2, the L1 table from cluster 3 on. The
 * backing name is relative when the base lies in the child's folder (so
 * the pair can move together), else absolute; either way the base must
 * lie where the rule for files that images name (ARCHITECTURE.md) lets
 * the child's later opens find it: the child's folder or a --backing-dir.
 *
 * Every byte is written (zeros too: a full disk must fail the creation,
 * not a later write of the tables), and nothing is synced here: the
 * writer syncs the child and its folder before its first write
 * (vd_open_opts.fresh), so that a mount does not wait for the disk. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/layer.h"
#include "core/qcow2.h"

#define OV_CLUSTER_BITS 16
#define OV_CS (1u << OV_CLUSTER_BITS)
#define OV_EXT_BACKING_FORMAT 0xe2792acau

/* The canonical folder of path (which need not exist yet). */
static char *ov_dir_real(const char *path)
{
	char *tmp = strdup(path), *r;

	if (!tmp)
		return NULL;
	r = realpath(dirname(tmp), NULL);
	free(tmp);
	return r;
}

/* Whether canonical p lies inside canonical folder d. */
static bool ov_inside(const char *p, const char *d)
{
	size_t n = strlen(d);

	if (n == 1 && d[0] == '/')
		return true;
	return !strncmp(p, d, n) && p[n] == '/';
}

static int ov_write_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int vd_overlay_create(const char *child, const char *base,
		      const struct vd_open_opts *o, struct vd_err *e)
{
	struct vd_open_opts bo = { 0 };
	struct vd_disk *d = NULL;
	char *cdir = NULL, *breal = NULL, *name = NULL;
	const char *fmt;
	uint8_t *img = NULL;
	uint64_t size, l1_entries, l1_clusters, total;
	size_t name_len, pos;
	bool allowed;
	int fd = -1, ret;

	/* The base, read-only, with the options it would have as a
	 * top image: its own chain must open. */
	if (o) {
		bo.format = o->format;
		bo.backing_dirs = o->backing_dirs;
		bo.n_backing_dirs = o->n_backing_dirs;
		bo.ignore_parent_ids = o->ignore_parent_ids;
	}
	ret = vd_disk_open(base, &bo, &d, e);
	if (ret)
		return ret;
	if (strcmp(vd_layer_path(vd_disk_top(d)), base)) {
		ret = vd_fail(e, -ENOTSUP, "%s: a disk of an appliance cannot "
			      "be the base of an overlay; extract it first",
			      base);
		goto out;
	}
	size = vd_disk_size(d);
	fmt = vd_layer_format(vd_disk_top(d));

	cdir = ov_dir_real(child);
	breal = realpath(base, NULL);
	if (!cdir || !breal) {
		ret = vd_fail(e, -errno, "%s: %s", cdir ? base : child,
			      strerror(errno));
		goto out;
	}
	allowed = ov_inside(breal, cdir);
	for (unsigned i = 0; o && !allowed && i < o->n_backing_dirs; i++) {
		char *bd = realpath(o->backing_dirs[i], NULL);

		allowed = bd && ov_inside(breal, bd);
		free(bd);
	}
	if (!allowed) {
		char *bdir = ov_dir_real(breal);

		ret = vd_fail(e, -EPERM, "%s: the base %s is outside the "
			      "overlay's folder %s; allow it with "
			      "--backing-dir=%s", child, breal, cdir,
			      bdir ? bdir : "DIR");
		free(bdir);
		goto out;
	}
	/* Relative inside the child's folder, else absolute. */
	name = strdup(ov_inside(breal, cdir) ?
			      breal + strlen(cdir) + (strcmp(cdir, "/") != 0) :
			      breal);
	if (!name) {
		ret = vd_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	name_len = strlen(name);
	if (name_len > 1023) {
		ret = vd_fail(e, -ENAMETOOLONG, "%s: backing file name of %zu "
			      "bytes (at most 1023)", child, name_len);
		goto out;
	}

	/* qcow2.txt: L1 entries cover cluster_size * (cluster_size / 8)
	 * bytes each. */
	l1_entries = (size + ((uint64_t)OV_CS * (OV_CS / 8)) - 1) /
		     ((uint64_t)OV_CS * (OV_CS / 8));
	l1_clusters = (l1_entries * 8 + OV_CS - 1) / OV_CS;
	if (l1_clusters + 3 > OV_CS / 2) {
		ret = vd_fail(e, -EFBIG, "%s: a virtual size of %llu bytes is "
			      "too large for an overlay", base,
			      (unsigned long long)size);
		goto out;
	}
	total = (3 + l1_clusters) * OV_CS;
	img = calloc(1, (size_t)total);
	if (!img) {
		ret = vd_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	put_be32(img, QCOW2_MAGIC);
	put_be32(img + 4, 3);			 /* version */
	put_be32(img + 20, OV_CLUSTER_BITS);	 /* cluster_bits */
	put_be64(img + 24, size);		 /* size */
	put_be32(img + 36, (uint32_t)l1_entries); /* l1_size */
	put_be64(img + 40, l1_entries ? 3 * OV_CS : 0); /* l1_table_offset */
	put_be64(img + 48, 1 * OV_CS);		 /* refcount_table_offset */
	put_be32(img + 56, 1);			 /* refcount_table_clusters */
	put_be32(img + 96, 4);			 /* refcount_order: 16 bits */
	put_be32(img + 100, 104);		 /* header_length */
	/* Extensions from 104: the backing format, then the end. */
	pos = 104;
	put_be32(img + pos, OV_EXT_BACKING_FORMAT);
	put_be32(img + pos + 4, (uint32_t)strlen(fmt));
	memcpy(img + pos + 8, fmt, strlen(fmt));
	pos += 8 + ((strlen(fmt) + 7) & ~7u);
	pos += 8; /* end of extensions: type 0, length 0 */
	put_be64(img + 8, pos);			 /* backing_file_offset */
	put_be32(img + 16, (uint32_t)name_len);	 /* backing_file_size */
	memcpy(img + pos, name, name_len);
	put_be64(img + OV_CS, 2 * OV_CS);	 /* refcount block 0 */
	for (uint64_t c = 0; c < 3 + l1_clusters; c++)
		img[2 * OV_CS + 2 * c + 1] = 1;	 /* 16-bit refcount 1 */

	fd = open(child, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = vd_fail(e, -errno, "%s: %s", child, strerror(errno));
		goto out;
	}
	ret = ov_write_all(fd, img, (size_t)total, 0);
	if (ret) {
		vd_fail(e, ret, "%s: %s", child, strerror(-ret));
		unlink(child);
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	free(img);
	free(name);
	free(breal);
	free(cdir);
	vd_disk_close(d);
	return ret;
}
