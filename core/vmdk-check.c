/* vdtool check of a VMDK: its descriptor and each extent the descriptor
 * names (VMware's "Virtual Disk Format 1.1", "The Descriptor File").
 *
 * A descriptor, in a file of its own or embedded in a sparse extent,
 * must parse (vmdk-desc.c) and name a createType the format defines.
 * Each extent line of a descriptor file must name a file in the
 * descriptor's folder that holds what the line says: a FLAT or VMFS
 * extent its sectors from its offset; a SPARSE or VMFSSPARSE extent at
 * least as many sectors as the line gives it (its header's capacity).
 * Each hosted sparse extent is then checked as one (table-check.c:
 * grain tables and grains inside the file, no grain named twice). A
 * finding is one corruption; a file that cannot be looked at (or lies
 * outside the descriptor's folder, which is not opened) is a check
 * error. QEMU checks only the sparse extents' grains. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "core/check.h"
#include "core/vmdk.h"

#define VC_MSG(fmt, ...) fprintf(msgs, fmt "\n", ##__VA_ARGS__)

/* The createType values of the format (VMware's list, the ESXi ones
 * QEMU knows, and seSparse). */
static const char *const vc_create_types[] = {
	"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
	"twoGbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsSparse",
	"vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick", "vmfsRaw",
	"vmfsRawDeviceMap", "vmfsPassthroughRawDeviceMap", "fullDevice",
	"partitionedDevice", "custom", "seSparse",
};

static void vc_create_type(const char *path, const struct vmdk_desc *d,
			   FILE *msgs, struct vd_check *r)
{
	if (!d->create_type) {
		VC_MSG("ERROR: %s: the descriptor has no createType", path);
		r->corruptions++;
		return;
	}
	for (unsigned i = 0; i < VD_ARRAY_SIZE(vc_create_types); i++)
		if (!strcmp(d->create_type, vc_create_types[i]))
			return;
	VC_MSG("ERROR: %s: createType '%s' is not one the VMDK format "
	       "defines", path, d->create_type);
	r->corruptions++;
}

static int vc_read(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	/* Ends: each pass reads at least one byte or returns. */
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

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

/* Is the canonical path p inside the canonical folder dir? */
static bool vc_inside(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(p, dir, n) && p[n] == '/';
}

/* A hosted sparse extent's tables, counted into r. */
static void vc_sparse_tables(const char *path, FILE *msgs,
			     struct vd_check *r)
{
	struct vd_err e = { "" };
	struct vd_check x;
	int ret = vd_vmdk_sparse_check(path, msgs, &x, &e);

	if (ret == -ENOTSUP)
		return; /* COWD: no check of its tables */
	if (ret) {
		VC_MSG("ERROR: %s", e.msg);
		r->check_errors++;
		return;
	}
	r->corruptions += x.corruptions;
	r->leaks += x.leaks;
	r->check_errors += x.check_errors;
}

/* Extent i of descriptor d (the file at path, in folder rdir). */
static void vc_extent(const char *path, const char *rdir,
		      const struct vmdk_desc *d, unsigned i, FILE *msgs,
		      struct vd_check *r)
{
	const struct vmdk_desc_extent *x = &d->ext[i];
	char *joined = NULL, *real = NULL;
	struct vmdk_sparse sp;
	uint8_t h[512], foot[1536];
	struct vd_err e = { "" };
	struct stat st;
	bool at_end = false;
	uint64_t need;
	int fd = -1, ret;

	if (x->name[0] == '/')
		joined = strdup(x->name);
	else if (asprintf(&joined, "%s/%s", rdir, x->name) < 0)
		joined = NULL;
	if (!joined) {
		VC_MSG("ERROR: %s: out of memory", path);
		r->check_errors++;
		return;
	}
	real = realpath(joined, NULL);
	if (!real) {
		VC_MSG("ERROR: %s: extent %u (line %u): file '%s': %s", path,
		       i + 1, x->line, x->name, strerror(errno));
		if (errno == ENOENT)
			r->corruptions++;
		else
			r->check_errors++;
		goto out;
	}
	if (!vc_inside(real, rdir)) {
		VC_MSG("ERROR: %s: extent %u (line %u): file '%s' lies outside "
		       "the descriptor's folder: not checked", path, i + 1,
		       x->line, real);
		r->check_errors++;
		goto out;
	}
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		VC_MSG("ERROR: %s: extent %u (line %u): file '%s': %s", path,
		       i + 1, x->line, x->name,
		       fd < 0 ? strerror(errno) : "not a regular file");
		r->check_errors++;
		goto out;
	}
	switch (x->type) {
	case VMDK_EXT_FLAT:
	case VMDK_EXT_VMFS:
		/* Both at most 2^44 sectors: no overflow. */
		need = (x->offset + x->sectors) * VMDK_SECTOR;
		if (need > (uint64_t)st.st_size) {
			VC_MSG("ERROR: %s: extent %u (line %u): %llu sectors "
			       "from sector %llu of '%s' end at byte %llu, "
			       "past the end of the file (%llu bytes)", path,
			       i + 1, x->line, (unsigned long long)x->sectors,
			       (unsigned long long)x->offset, x->name,
			       (unsigned long long)need,
			       (unsigned long long)st.st_size);
			r->corruptions++;
		}
		break;
	case VMDK_EXT_SPARSE:
	case VMDK_EXT_VMFSSPARSE:
		memset(h, 0, sizeof(h));
		ret = vc_read(fd, h, (size_t)VD_MIN((uint64_t)sizeof(h),
						   (uint64_t)st.st_size), 0);
		if (!ret)
			ret = vmdk_sparse_parse(h, NULL, (uint64_t)st.st_size,
						x->name, &sp, &at_end, &e);
		if (!ret && at_end && (uint64_t)st.st_size < sizeof(foot))
			ret = vd_fail(&e, -EUCLEAN, "'%s' has no footer",
				      x->name);
		else if (!ret && at_end) {
			ret = vc_read(fd, foot, sizeof(foot),
				      (uint64_t)st.st_size - sizeof(foot));
			if (!ret)
				ret = vmdk_sparse_parse(h, foot,
							(uint64_t)st.st_size,
							x->name, &sp, NULL, &e);
		}
		if (ret) {
			VC_MSG("ERROR: %s: extent %u (line %u): %s", path,
			       i + 1, x->line, e.msg[0] ? e.msg :
			       strerror(-ret));
			r->corruptions++;
			break;
		}
		if (sp.capacity < x->sectors) {
			VC_MSG("ERROR: %s: extent %u (line %u): '%s' holds "
			       "%llu sectors, the descriptor gives it %llu",
			       path, i + 1, x->line, x->name,
			       (unsigned long long)sp.capacity,
			       (unsigned long long)x->sectors);
			r->corruptions++;
		}
		vc_sparse_tables(real, msgs, r);
		break;
	default:
		break; /* seSparse: that it is there */
	}
out:
	if (fd >= 0)
		close(fd);
	free(joined);
	free(real);
}

/* A descriptor file: the text, then every extent. */
static int vc_descriptor(const char *path, int fd, uint64_t fsize,
			 FILE *msgs, struct vd_check *r, struct vd_err *e)
{
	struct vmdk_desc d = { 0 };
	char *text = NULL, *tmp = NULL, *rdir = NULL;
	int ret;

	if (fsize > VMDK_DESC_MAX_BYTES)
		return vd_fail(e, -EUCLEAN, "%s: vmdk: not a sparse extent, "
			       "and too large for a descriptor (%llu bytes)",
			       path, (unsigned long long)fsize);
	text = malloc((size_t)fsize + 1);
	if (!text)
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	ret = vc_read(fd, text, (size_t)fsize, 0);
	if (ret) {
		vd_fail(e, ret, "%s: %s", path, strerror(-ret));
		goto out;
	}
	ret = vmdk_desc_parse(text, (size_t)fsize, &d, e);
	if (ret) {
		char msg[sizeof(e->msg)];

		snprintf(msg, sizeof(msg), "%s", e->msg);
		vd_fail(e, ret, "%s: vmdk: descriptor %s", path, msg);
		goto out;
	}
	/* The folder the extents are named from, canonical. */
	tmp = strdup(path);
	rdir = tmp ? realpath(dirname(tmp), NULL) : NULL;
	if (!rdir) {
		ret = vd_fail(e, tmp ? -errno : -ENOMEM, "%s: %s", path,
			      tmp ? strerror(errno) : "out of memory");
		goto out;
	}
	vc_create_type(path, &d, msgs, r);
	for (unsigned i = 0; i < d.n_ext; i++)
		if (d.ext[i].type != VMDK_EXT_ZERO)
			vc_extent(path, rdir, &d, i, msgs, r);
	ret = 0;
out:
	vmdk_desc_free(&d);
	free(text);
	free(tmp);
	free(rdir);
	return ret;
}

/* A sparse extent's embedded descriptor: its createType. */
static int vc_embedded(const char *path, int fd, uint64_t fsize,
		       const uint8_t *h, FILE *msgs, struct vd_check *r,
		       struct vd_err *e)
{
	/* KDMV header, offset 28: descriptorOffset, 36: descriptorSize
	 * (sectors). */
	uint64_t off = get_le64(h + 28), len = get_le64(h + 36);
	struct vmdk_desc d = { 0 };
	char *text;
	int ret;

	if (!off || !len)
		return 0;
	if (len > VMDK_DESC_MAX_BYTES / VMDK_SECTOR ||
	    off > fsize / VMDK_SECTOR ||
	    !vd_range_ok(off * VMDK_SECTOR, len * VMDK_SECTOR, fsize)) {
		VC_MSG("ERROR: %s: the embedded descriptor (%llu sectors at "
		       "sector %llu) lies outside the file (%llu bytes)",
		       path, (unsigned long long)len, (unsigned long long)off,
		       (unsigned long long)fsize);
		r->corruptions++;
		return 0;
	}
	text = malloc((size_t)(len * VMDK_SECTOR));
	if (!text)
		return vd_fail(e, -ENOMEM, "%s: out of memory", path);
	ret = vc_read(fd, text, (size_t)(len * VMDK_SECTOR), off * VMDK_SECTOR);
	if (ret) {
		free(text);
		return vd_fail(e, ret, "%s: %s", path, strerror(-ret));
	}
	ret = vmdk_desc_parse(text, (size_t)(len * VMDK_SECTOR), &d, e);
	if (ret == -ENOMEM) {
		/* e says so */
	} else if (ret) {
		VC_MSG("ERROR: %s: the embedded descriptor: %s", path, e->msg);
		r->corruptions++;
		ret = 0;
	} else {
		vc_create_type(path, &d, msgs, r);
	}
	vmdk_desc_free(&d);
	free(text);
	return ret;
}

int vd_vmdk_check(const char *path, FILE *msgs, struct vd_check *r,
		  struct vd_err *e)
{
	uint8_t h[512] = { 0 };
	struct stat st;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vd_fail(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = vd_fail(e, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = vc_read(fd, h, (size_t)VD_MIN((uint64_t)sizeof(h),
					   (uint64_t)st.st_size), 0);
	if (ret) {
		vd_fail(e, ret, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (get_le32(h) == VMDK3_MAGIC) {
		ret = vd_fail(e, -ENOTSUP, "%s: vmdk: a COWD (vmfsSparse) "
			      "extent is not checked", path);
	} else if (get_le32(h) != VMDK4_MAGIC) {
		ret = vc_descriptor(path, fd, (uint64_t)st.st_size, msgs, r, e);
	} else {
		ret = vd_vmdk_sparse_check(path, msgs, r, e);
		if (!ret)
			ret = vc_embedded(path, fd, (uint64_t)st.st_size, h,
					  msgs, r, e);
	}
out:
	close(fd);
	return ret;
}
