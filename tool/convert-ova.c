/* vdtool convert -O ova: an appliance of one disk, as VMware and
 * VirtualBox import it. The tar (POSIX ustar) holds, in this order:
 *   NAME.ovf        the OVF 1.0 descriptor (DMTF DSP0243): the disk's
 *                   file and size, its capacity, a virtual system with
 *                   the operating system vdtool inspect finds on the
 *                   disk (else "Other"), one CPU, 1 GiB of memory, a
 *                   SCSI controller and the disk;
 *   NAME.mf         the manifest: SHA256(file)= digest, for both;
 *   NAME-disk1.vmdk the disk, streamOptimized (grains compressed on
 *                   every core).
 * The descriptor comes first and the manifest next, as both importers
 * require. NAME is OUT's name without ".ova". The disk is written to an
 * unnamed temporary file in OUT's folder first (its size and digest go
 * into the descriptor), then copied into the tar. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sha.h"
#include "tool/convert.h"
#include "tool/inspect.h"

#define OVA_BLOCK 512u
#define OVA_COPY (1u << 20)

/* s with XML's five special characters escaped, malloc'd. */
static char *ova_xml(const char *s)
{
	size_t n = 1;
	char *out, *p;

	for (const char *c = s; *c; c++)
		n += strchr("&<>\"'", *c) ? 6 : 1;
	out = p = malloc(n);
	if (!out)
		return NULL;
	for (; *s; s++) {
		switch (*s) {
		case '&': p = stpcpy(p, "&amp;"); break;
		case '<': p = stpcpy(p, "&lt;"); break;
		case '>': p = stpcpy(p, "&gt;"); break;
		case '"': p = stpcpy(p, "&quot;"); break;
		case '\'': p = stpcpy(p, "&apos;"); break;
		default: *p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

/* v in octal, n - 1 digits with leading zeros, then a NUL. */
static void ova_octal(uint8_t *dst, unsigned n, uint64_t v)
{
	dst[n - 1] = '\0';
	for (unsigned i = n - 1; i-- > 0; v >>= 3)
		dst[i] = (uint8_t)('0' + (v & 7));
}

/* One ustar header (POSIX.1-2001 "ustar Interchange Format"). Sizes of
 * 8 GiB and more are stored base-256, as GNU tar stores them. */
static void ova_tar_header(uint8_t *h, const char *name, uint64_t size)
{
	unsigned sum = 0;

	memset(h, 0, OVA_BLOCK);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);		/* mode */
	memcpy(h + 108, "0000000", 8);		/* uid */
	memcpy(h + 116, "0000000", 8);		/* gid */
	if (size < (1ULL << 33)) {
		ova_octal(h + 124, 12, size);
	} else {
		h[124] = 0x80;
		for (int i = 0; i < 8; i++)
			h[135 - i] = (uint8_t)(size >> (8 * i));
	}
	ova_octal(h + 136, 12, (uint64_t)time(NULL));
	memset(h + 148, ' ', 8);		/* checksum, counted as spaces */
	h[156] = '0';				/* a regular file */
	memcpy(h + 257, "ustar", 6);		/* magic, NUL-ended */
	memcpy(h + 263, "00", 2);		/* version */
	memcpy(h + 265, "root", 4);		/* uname */
	memcpy(h + 297, "root", 4);		/* gname */
	for (unsigned i = 0; i < OVA_BLOCK; i++)
		sum += h[i];
	ova_octal(h + 148, 7, sum);
	h[155] = ' ';
}

struct ova_tar {
	int fd;
	uint64_t off;
};

static int ova_put(struct ova_tar *t, const void *buf, size_t n)
{
	int ret = vdt_pwrite_all(t->fd, buf, n, t->off);

	if (!ret)
		t->off += n;
	return ret;
}

static int ova_member(struct ova_tar *t, const char *name, const void *buf,
		      size_t n)
{
	static const uint8_t zero[OVA_BLOCK];
	uint8_t h[OVA_BLOCK];
	int ret;

	ova_tar_header(h, name, n);
	ret = ova_put(t, h, sizeof(h));
	if (!ret)
		ret = ova_put(t, buf, n);
	if (!ret && n % OVA_BLOCK)
		ret = ova_put(t, zero, OVA_BLOCK - n % OVA_BLOCK);
	return ret;
}

/* The disk (fd, n bytes) as a member: copied, hashed already. */
static int ova_member_fd(struct ova_tar *t, const char *name, int fd,
			 uint64_t n)
{
	static const uint8_t zero[OVA_BLOCK];
	uint8_t h[OVA_BLOCK], *buf = malloc(OVA_COPY);
	int ret;

	if (!buf)
		return -ENOMEM;
	ova_tar_header(h, name, n);
	ret = ova_put(t, h, sizeof(h));
	for (uint64_t done = 0; !ret && done < n;) {
		size_t k = (size_t)VD_MIN((uint64_t)OVA_COPY, n - done);
		ssize_t r = pread(fd, buf, k, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			break;
		}
		ret = ova_put(t, buf, (size_t)r);
		done += (uint64_t)r;
	}
	free(buf);
	if (!ret && n % OVA_BLOCK)
		ret = ova_put(t, zero, OVA_BLOCK - n % OVA_BLOCK);
	return ret;
}

static int ova_hash_fd(int fd, uint64_t n, char hex[65])
{
	uint8_t *buf = malloc(OVA_COPY), d[VD_SHA256_LEN];
	struct vd_sha s;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	vd_sha_init(&s, VD_SHA256);
	for (uint64_t done = 0; done < n;) {
		ssize_t r = pread(fd, buf, (size_t)VD_MIN((uint64_t)OVA_COPY,
							  n - done),
				  (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			break;
		}
		vd_sha_update(&s, buf, (size_t)r);
		done += (uint64_t)r;
	}
	free(buf);
	vd_sha_final(&s, d);
	for (unsigned i = 0; i < VD_SHA256_LEN; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
	return ret;
}

static void ova_hash_buf(const void *p, size_t n, char hex[65])
{
	uint8_t d[VD_SHA256_LEN];
	struct vd_sha s;

	vd_sha_init(&s, VD_SHA256);
	vd_sha_update(&s, p, n);
	vd_sha_final(&s, d);
	for (unsigned i = 0; i < VD_SHA256_LEN; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

/* The OperatingSystemSection's id: a CIM_OperatingSystem OsType value
 * (DMTF CIM schema, CIM_OperatingSystem.mof; the ones VirtualBox and
 * VMware write for these systems), from what inspect found. */
struct ova_os_id {
	const char *distro;
	unsigned id32, id64;
};

static const struct ova_os_id ova_linux_ids[] = {
	{ "rhel", 79, 80 },	   { "sles", 84, 85 },
	{ "opensuse", 82, 83 },	   { "mandriva", 89, 90 },
	{ "turbolinux", 91, 92 },  { "ubuntu", 93, 94 },
	{ "debian", 95, 96 },	   { "centos", 106, 107 },
	{ "oraclelinux", 108, 109 },
};

/* Windows by its NT version: client and server ids (0: none). */
struct ova_win_id {
	long major, minor;
	unsigned client32, client64, server32, server64;
};

static const struct ova_win_id ova_win_ids[] = {
	{ 5, 0, 58, 58, 58, 58 },	/* 2000 */
	{ 5, 1, 67, 71, 67, 71 },	/* XP */
	{ 5, 2, 71, 71, 69, 70 },	/* XP x64, Server 2003 */
	{ 6, 0, 73, 74, 76, 77 },	/* Vista, Server 2008 */
	{ 6, 1, 105, 105, 103, 103 },	/* 7, Server 2008 R2 */
	{ 6, 2, 113, 114, 112, 112 },	/* 8, Server 2012 */
	{ 6, 3, 116, 117, 115, 115 },	/* 8.1, Server 2012 R2 */
	{ 10, 0, 119, 120, 118, 118 },	/* 10 and 11, Server 2016 on */
};

#define OVA_OS_OTHER 1
#define OVA_OS_OTHER_64 102
#define OVA_OS_LINUX 36
#define OVA_OS_LINUX_64 101
#define OVA_OS_WINNT 18

static unsigned ova_os_id(const struct vdt_insp_brief *b)
{
	bool x64 = strstr(b->arch, "64") || !strcmp(b->arch, "s390x");

	if (!strcmp(b->type, "linux")) {
		for (unsigned i = 0; i < VD_ARRAY_SIZE(ova_linux_ids); i++)
			if (!strcmp(b->distro, ova_linux_ids[i].distro))
				return x64 ? ova_linux_ids[i].id64 :
					     ova_linux_ids[i].id32;
		return x64 ? OVA_OS_LINUX_64 : OVA_OS_LINUX;
	}
	if (!strcmp(b->type, "windows")) {
		bool server = strstr(b->product_variant, "Server") ||
			      strstr(b->product_name, "Server");

		for (unsigned i = 0; i < VD_ARRAY_SIZE(ova_win_ids); i++) {
			const struct ova_win_id *w = &ova_win_ids[i];

			if (w->major != b->major || w->minor != b->minor)
				continue;
			return server ? (x64 ? w->server64 : w->server32) :
					(x64 ? w->client64 : w->client32);
		}
		return OVA_OS_WINNT;
	}
	return x64 ? OVA_OS_OTHER_64 : OVA_OS_OTHER;
}

static char *ova_descriptor(const char *stem, const char *disk,
			    uint64_t disk_bytes, uint64_t capacity,
			    unsigned os_id, const char *os_desc)
{
	char *xs = ova_xml(stem), *xd = ova_xml(disk), *ovf = NULL;
	char *xo = ova_xml(os_desc);

	if (xs && xd && xo &&
	    asprintf(&ovf,
"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
"<Envelope ovf:version=\"1.0\" xml:lang=\"en-US\""
" xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""
" xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
" xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\""
" xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\""
" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
"  <References>\n"
"    <File ovf:href=\"%s\" ovf:id=\"file1\" ovf:size=\"%llu\"/>\n"
"  </References>\n"
"  <DiskSection>\n"
"    <Info>Virtual disk information</Info>\n"
"    <Disk ovf:capacity=\"%llu\" ovf:capacityAllocationUnits=\"byte\""
" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\""
" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n"
"  </DiskSection>\n"
"  <VirtualSystem ovf:id=\"%s\">\n"
"    <Info>A virtual machine</Info>\n"
"    <Name>%s</Name>\n"
"    <OperatingSystemSection ovf:id=\"%u\">\n"
"      <Info>The kind of installed guest operating system</Info>\n"
"      <Description>%s</Description>\n"
"    </OperatingSystemSection>\n"
"    <VirtualHardwareSection>\n"
"      <Info>Virtual hardware requirements</Info>\n"
"      <System>\n"
"        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n"
"        <vssd:InstanceID>0</vssd:InstanceID>\n"
"        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n"
"        <vssd:VirtualSystemType>vmx-07</vssd:VirtualSystemType>\n"
"      </System>\n"
"      <Item>\n"
"        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>\n"
"        <rasd:Description>Number of Virtual CPUs</rasd:Description>\n"
"        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>\n"
"        <rasd:InstanceID>1</rasd:InstanceID>\n"
"        <rasd:ResourceType>3</rasd:ResourceType>\n"
"        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>\n"
"      </Item>\n"
"      <Item>\n"
"        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>\n"
"        <rasd:Description>Memory Size</rasd:Description>\n"
"        <rasd:ElementName>1024MB of memory</rasd:ElementName>\n"
"        <rasd:InstanceID>2</rasd:InstanceID>\n"
"        <rasd:ResourceType>4</rasd:ResourceType>\n"
"        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>\n"
"      </Item>\n"
"      <Item>\n"
"        <rasd:Address>0</rasd:Address>\n"
"        <rasd:Description>SCSI Controller</rasd:Description>\n"
"        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>\n"
"        <rasd:InstanceID>3</rasd:InstanceID>\n"
"        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>\n"
"        <rasd:ResourceType>6</rasd:ResourceType>\n"
"      </Item>\n"
"      <Item>\n"
"        <rasd:AddressOnParent>0</rasd:AddressOnParent>\n"
"        <rasd:ElementName>Hard Disk 1</rasd:ElementName>\n"
"        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>\n"
"        <rasd:InstanceID>4</rasd:InstanceID>\n"
"        <rasd:Parent>3</rasd:Parent>\n"
"        <rasd:ResourceType>17</rasd:ResourceType>\n"
"      </Item>\n"
"    </VirtualHardwareSection>\n"
"  </VirtualSystem>\n"
"</Envelope>\n",
		     xd, (unsigned long long)disk_bytes,
		     (unsigned long long)capacity, xs, xs, os_id, xo, xs) < 0)
		ovf = NULL;
	free(xs);
	free(xd);
	free(xo);
	return ovf;
}

/* An unnamed scratch file in dir (or one unlinked at once). */
static int ova_scratch(const char *dir)
{
	char *p = NULL;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (asprintf(&p, "%s/.vdtool-ova.XXXXXX", dir) < 0)
		return -1;
	fd = mkostemp(p, O_CLOEXEC);
	if (fd >= 0)
		unlink(p);
	free(p);
	return fd;
}

int conv_ova(const struct conv_args *a)
{
	struct conv_out out = { .fd = -1 };
	struct ova_tar t = { .fd = -1 };
	uint64_t size = a->src->size, rsize = (size + 511) & ~511ULL;
	char *tmp = strdup(a->out), *stem = NULL, *disk = NULL, *ovfn = NULL;
	char *mfn = NULL, *ovf = NULL, *mf = NULL, dhex[65], ohex[65];
	struct vdt_insp_brief os = { .type = "" };
	const char *os_desc = "Other";
	struct stat st;
	int sfd = -1, ret, status = VDT_EXIT_FAIL;
	size_t n;

	if (!tmp)
		goto nomem;
	stem = strdup(basename(tmp));
	if (!stem)
		goto nomem;
	n = strlen(stem);
	if (n > 4 && !strcasecmp(stem + n - 4, ".ova"))
		stem[n - 4] = '\0';
	if (asprintf(&disk, "%s-disk1.vmdk", stem) < 0 ||
	    asprintf(&ovfn, "%s.ovf", stem) < 0 ||
	    asprintf(&mfn, "%s.mf", stem) < 0) {
		disk = ovfn = mfn = NULL;
		goto nomem;
	}
	if (strlen(disk) > 99) {
		vdt_error("%s: the name is too long for the tar (at most 88 "
			  "bytes before .ova)", a->out);
		goto out;
	}
	/* The guest's OS for the descriptor, when one is found. */
	if (a->ns && !vdt_insp_brief(a->ns, &os))
		os_desc = os.product_name[0] ? os.product_name :
			  os.distro[0]	     ? os.distro :
					       os.type;
	if (conv_out_open(&out, a->out, a->force))
		goto out;
	sfd = ova_scratch(out.dir);
	if (sfd < 0) {
		vdt_error("%s: %s", out.dir, strerror(errno));
		goto out;
	}
	if (conv_vmdk_sparse(a, sfd, disk, true, rsize))
		goto out;
	if (fstat(sfd, &st)) {
		vdt_error("%s: %s", a->out, strerror(errno));
		goto out;
	}
	ret = ova_hash_fd(sfd, (uint64_t)st.st_size, dhex);
	ovf = ret ? NULL : ova_descriptor(stem, disk, (uint64_t)st.st_size,
					  rsize, ova_os_id(&os), os_desc);
	if (ret || !ovf) {
		vdt_error("%s: %s", a->out, ret ? strerror(-ret) :
						  "out of memory");
		goto out;
	}
	ova_hash_buf(ovf, strlen(ovf), ohex);
	if (asprintf(&mf, "SHA256(%s)= %s\nSHA256(%s)= %s\n", ovfn, ohex, disk,
		     dhex) < 0) {
		mf = NULL;
		goto nomem;
	}
	t.fd = out.fd;
	ret = ova_member(&t, ovfn, ovf, strlen(ovf));
	if (!ret)
		ret = ova_member(&t, mfn, mf, strlen(mf));
	if (!ret)
		ret = ova_member_fd(&t, disk, sfd, (uint64_t)st.st_size);
	if (!ret) {
		/* The end of the archive: two zero blocks. */
		uint8_t z[2 * OVA_BLOCK] = { 0 };

		ret = ova_put(&t, z, sizeof(z));
	}
	if (ret) {
		vdt_error("%s: write: %s", a->out, strerror(-ret));
		goto out;
	}
	if (conv_out_commit(&out))
		goto out;
	status = VDT_EXIT_OK;
	goto out;
nomem:
	vdt_error("out of memory");
out:
	if (out.fd >= 0)
		conv_out_abort(&out);
	if (sfd >= 0)
		close(sfd);
	free(tmp);
	free(stem);
	free(disk);
	free(ovfn);
	free(mfn);
	free(ovf);
	free(mf);
	return status;
}
