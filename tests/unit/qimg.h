/* Building qcow2 images field by field in memory for unit tests, and
 * opening them through a memfd, so each test pokes exactly one thing.
 *
 * Layout: header in cluster 0, the L1 table in cluster 1, up to QIMG_L2S
 * L2 tables in the clusters after it (one per L1 entry, made as needed),
 * then data clusters appended as they are added. add_compressed's
 * cluster idx holds byte (seed + i / 1000) at offset i. */
#ifndef VD_UNIT_QIMG_H
#define VD_UNIT_QIMG_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "core/disk.h"
#include "core/qcow2.h"
#include "tests/unit/unit.h"

#define CB 16
#define CS (1u << CB)
#define L1_AT CS
#define L2_AT (2 * CS)
#define QIMG_L2S 4
#define MAXLEN (40 * CS)

struct img {
	uint8_t b[MAXLEN];
	size_t len;
	unsigned entry; /* L2 entry bytes */
};

static struct img m;

static void img_init(uint64_t size)
{
	memset(&m, 0, sizeof(m));
	put_be32(m.b, QCOW2_MAGIC);
	put_be32(m.b + 4, 3);
	put_be32(m.b + 20, CB);
	put_be64(m.b + 24, size);
	/* l1_size: enough for size, at least 1 */
	put_be32(m.b + 36, (uint32_t)VD_MAX(1, (size + (1ULL << (2 * CB - 3)) - 1) >>
						  (2 * CB - 3)));
	put_be64(m.b + 40, L1_AT);	/* l1_table_offset */
	put_be32(m.b + 100, 104);	/* header_length */
	put_be64(m.b + L1_AT, L2_AT | QCOW2_OFLAG_COPIED);
	m.len = (2 + QIMG_L2S) * CS;
	m.entry = 8;
}

/* L2 entry for guest cluster idx (across tables), with the L1 entry of
 * its table made when missing. */
static void l2_set(uint64_t idx, uint64_t v, uint64_t bitmap)
{
	unsigned per = CS / m.entry;
	uint64_t t = idx / per, at = L2_AT + t * CS + (idx % per) * m.entry;

	if (t >= QIMG_L2S)
		return;
	if (!get_be64(m.b + L1_AT + t * 8))
		put_be64(m.b + L1_AT + t * 8, (L2_AT + t * CS) | QCOW2_OFLAG_COPIED);
	put_be64(m.b + at, v);
	if (m.entry == 16)
		put_be64(m.b + at + 8, bitmap);
}

/* A data cluster filled with byte, mapped at guest cluster idx. */
static uint64_t add_cluster(uint64_t idx, int byte, uint64_t bitmap)
{
	uint64_t host = (m.len + CS - 1) / CS * CS; /* after a compressed one */

	memset(m.b + host, byte, CS);
	m.len = host + CS;
	l2_set(idx, host | QCOW2_OFLAG_COPIED, bitmap);
	return host;
}

/* Raw-deflate pattern data as QEMU does, into the image at host. */
static size_t add_compressed(uint64_t idx, int byte_seed)
{
	static uint8_t plain[CS];
	z_stream z = { 0 };
	uint64_t host = m.len + 100; /* deliberately not sector aligned */
	uint64_t nsec, clen;

	for (unsigned i = 0; i < CS; i++)
		plain[i] = (uint8_t)(byte_seed + i / 1000);
	deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
		     Z_DEFAULT_STRATEGY);
	z.next_in = plain;
	z.avail_in = CS;
	z.next_out = m.b + host;
	z.avail_out = MAXLEN - (uInt)host;
	deflate(&z, Z_FINISH);
	clen = z.total_out;
	deflateEnd(&z);
	nsec = (host % 512 + clen + 511) / 512 - 1;
	l2_set(idx, QCOW2_OFLAG_COMPRESSED | nsec << (62 - (CB - 8)) | host,
	       0);
	m.len = host + clen; /* the last sector runs past EOF */
	return clen;
}

/* Open the image as it stands; 0 or -errno with msg filled. */
static const char *img_format;
static size_t img_cache_bytes;

static int img_open(struct vd_disk **d, const char *snapshot, char *msg)
{
	struct vd_open_opts o = { .snapshot = snapshot, .format = img_format,
				  .cache_bytes = img_cache_bytes };

	return unit_mem_disk(m.b, m.len, &o, d, msg);
}

#endif
