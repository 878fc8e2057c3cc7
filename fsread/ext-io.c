/* The io_manager through which libext2fs reads a volume: every byte comes
 * from core (vd_vol_read), never from a host file, and through the
 * in-memory journal overlay when one is installed.
 *
 * libext2fs gives an io_manager only a name string, so each volume is
 * registered under a generated name "vdext:<serial>" and open looks the
 * serial up in a registry; a name that is not exactly one of ours is
 * refused. Writes fail in a read-only mount, but for those of the
 * fast-commit replay while the mount opens, which go to the overlay's
 * memory; in a writable mount they go to the volume, and so down to the
 * qcow2 child, never to a base (a journal overlay is written home and
 * dropped before: ext-recover.c).
 *
 * A channel is used only under its filesystem's lock (libext2fs calls).
 * In a read-only mount vd_ext_io_read is also called by file reads in
 * parallel: it uses only the immutable vol and the thread-safe overlay.
 * In a writable mount writes are held in a write-back cache (ext-wc.c)
 * until io_channel_flush, and every read, vd_ext_io_read's too, runs
 * under the lock and sees what the cache holds. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fsread/ext.h"

struct ext_io {
	const struct vd_vol *vol;
	uint64_t serial;
	/* Set before channels use it; dropped (atomically: file reads
	 * load it outside any lock) once written home. */
	struct vd_ext_replay *replay;
	unsigned replay_bs;
	bool writable; /* the fast-commit replay is writing */
	bool volume_writes; /* a writable mount: writes go to vol */
	struct ext_wc *wc; /* with volume_writes: the blocks held (lock) */
	struct ext_io *next; /* registry list, guarded by ext_io_lock */
};

static pthread_mutex_t ext_io_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ext_io *ext_io_list; /* guarded by ext_io_lock */
static uint64_t ext_io_serial;	   /* guarded by ext_io_lock */

int vd_ext_io_new(const struct vd_vol *v, struct ext_io **io_r,
		  char *name_r, size_t name_size)
{
	struct ext_io *io = calloc(1, sizeof(*io));

	if (!io)
		return -ENOMEM;
	io->vol = v;
	pthread_mutex_lock(&ext_io_lock);
	io->serial = ++ext_io_serial;
	io->next = ext_io_list;
	ext_io_list = io;
	pthread_mutex_unlock(&ext_io_lock);
	snprintf(name_r, name_size, "vdext:%" PRIu64, io->serial);
	*io_r = io;
	return 0;
}

void vd_ext_io_free(struct ext_io *io)
{
	struct ext_io **p;

	if (!io)
		return;
	pthread_mutex_lock(&ext_io_lock);
	for (p = &ext_io_list; *p; p = &(*p)->next) {
		if (*p == io) {
			*p = io->next;
			break;
		}
	}
	pthread_mutex_unlock(&ext_io_lock);
	if (io->wc) {
		/* Written at the unmount already; a failure then is
		 * tried once more, and logged. */
		vd_ext_wc_flush(io->wc, io->vol);
		vd_ext_wc_free(io->wc);
	}
	free(io);
}

void vd_ext_io_set_replay(struct ext_io *io, struct vd_ext_replay *r,
			  unsigned block_size)
{
	io->replay = r;
	io->replay_bs = block_size;
}

void vd_ext_io_set_writable(struct ext_io *io, bool on)
{
	io->writable = on;
}

void vd_ext_io_drop_replay(struct ext_io *io)
{
	__atomic_store_n(&io->replay, NULL, __ATOMIC_RELEASE);
}

void vd_ext_io_set_volume_writes(struct ext_io *io)
{
	io->volume_writes = true;
	/* Without memory for it, writes go straight down. */
	if (!io->wc)
		io->wc = vd_ext_wc_new();
}

/* The registered volume named name, or NULL. The name must be exactly
 * "vdext:" and a decimal serial, nothing before or after. */
static struct ext_io *ext_io_find(const char *name)
{
	unsigned long long serial;
	struct ext_io *io;
	int n = -1;

	if (!name || sscanf(name, "vdext:%llu%n", &serial, &n) != 1 ||
	    n < 0 || name[n] != '\0' || name[6] < '0' || name[6] > '9')
		return NULL;
	pthread_mutex_lock(&ext_io_lock);
	for (io = ext_io_list; io; io = io->next)
		if (io->serial == serial)
			break;
	pthread_mutex_unlock(&ext_io_lock);
	return io;
}

int vd_ext_io_read(struct ext_io *io, void *buf, size_t len, uint64_t off)
{
	struct vd_ext_replay *r = __atomic_load_n(&io->replay, __ATOMIC_ACQUIRE);
	uint64_t bs = io->replay_bs, blk, end;
	uint8_t *tmp;
	int ret;

	/* All held (an inode table block written a moment ago): no read
	 * of the volume. (No replay overlay in a writable mount.) */
	if (io->wc && !r && vd_ext_wc_read(io->wc, buf, len, off))
		return 0;
	ret = vd_vol_read(io->vol, buf, len, off);
	if (!ret && io->wc)
		vd_ext_wc_overlay(io->wc, buf, len, off);
	if (ret || !r || !len)
		return ret;
	/* Lay the journal's newer copies of the blocks over what the
	 * volume holds. */
	tmp = malloc(bs);
	if (!tmp)
		return -ENOMEM;
	end = off + len; /* vd_vol_read checked that this fits */
	for (blk = off / bs; blk * bs < end; blk++) {
		uint64_t b0 = blk * bs, from = VD_MAX(b0, off),
			 to = VD_MIN(b0 + bs, end);

		ret = vd_ext_replay_block(r, blk, tmp);
		if (ret < 0) {
			vd_log(VD_LOG_ERR, "%s: ext: journal copy of block "
			       "%" PRIu64 " unreadable", io->vol->name, blk);
			ret = -EIO;
			break;
		}
		if (ret == 1)
			memcpy((uint8_t *)buf + (from - off), tmp + (from - b0),
			       to - from);
		ret = 0;
	}
	free(tmp);
	return ret;
}

static errcode_t ext_io_open(const char *name, int flags, io_channel *ch_r)
{
	struct ext_io *io = ext_io_find(name);
	io_channel ch;

	if (!io)
		return EXT2_ET_BAD_DEVICE_NAME;
	if ((flags & IO_FLAG_RW) && !io->writable && !io->volume_writes)
		return EXT2_ET_RO_FILSYS;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return EXT2_ET_NO_MEMORY;
	ch->name = strdup(name);
	if (!ch->name) {
		free(ch);
		return EXT2_ET_NO_MEMORY;
	}
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = vd_ext_io_manager;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = io;
	*ch_r = ch;
	return 0;
}

static errcode_t ext_io_close(io_channel ch)
{
	struct ext_io *io = ch->private_data;

	if (--ch->refcount > 0)
		return 0;
	if (io->wc)
		vd_ext_wc_flush(io->wc, io->vol); /* a failure is logged */
	free(ch->name);
	free(ch);
	return 0;
}

static errcode_t ext_io_set_blksize(io_channel ch, int blksize)
{
	/* libext2fs asks for 1024 (the superblock) and then the block
	 * size, which it has checked against 1 KiB .. 64 KiB. */
	if (blksize < 512 || blksize > 65536)
		return EXT2_ET_INVALID_ARGUMENT;
	ch->block_size = blksize;
	return 0;
}

static errcode_t ext_io_read_blk64(io_channel ch, unsigned long long block,
				   int count, void *data)
{
	struct ext_io *io = ch->private_data;
	uint64_t off, len;
	int ret;

	/* A negative count is a byte count (libext2fs convention). */
	if (count < 0)
		len = (uint64_t)-(int64_t)count;
	else
		len = (uint64_t)count * (uint64_t)ch->block_size;
	if (__builtin_mul_overflow((uint64_t)block, (uint64_t)ch->block_size,
				   &off) ||
	    !vd_range_ok(off, len, io->vol->len))
		return EXT2_ET_SHORT_READ;
	ret = vd_ext_io_read(io, data, (size_t)len, off);
	if (ret == -ENOMEM)
		return EXT2_ET_NO_MEMORY;
	return ret ? EIO : 0;
}

static errcode_t ext_io_read_blk(io_channel ch, unsigned long block,
				 int count, void *data)
{
	return ext_io_read_blk64(ch, block, count, data);
}

/* len bytes at byte off into the overlay's memory, whole filesystem
 * blocks at a time (a partial block is read first, through the
 * overlay). Only while the fast-commit replay writes; the image is
 * never written. */
static errcode_t ext_io_write(struct ext_io *io, unsigned ch_bs,
			      const void *buf, uint64_t len, uint64_t off)
{
	uint64_t bs = io->replay_bs, blk, end;
	uint8_t *tmp;
	int ret = 0;

	if (io->volume_writes) {
		/* Into the write-back cache, or straight down. libext2fs
		 * keeps no cache of its own here, so nothing can go stale.
		 * A failure keeps its errno (the host disk full is ENOSPC
		 * for the writer too). */
		if (!vd_range_ok(off, len, io->vol->len) || len > SIZE_MAX)
			return EXT2_ET_SHORT_WRITE;
		if (io->wc) {
			ret = vd_ext_wc_put(io->wc, io->vol, ch_bs, buf, len,
					    off);
			if (ret <= 0)
				return ret ? (errcode_t)-ret : 0;
		}
		ret = vd_vol_write(io->vol, buf, (size_t)len, off);
		if (ret)
			vd_log(VD_LOG_ERR, "%s: ext: write of %" PRIu64 " bytes "
			       "at %" PRIu64 " failed: %s", io->vol->name, len,
			       off, strerror(-ret));
		return ret ? (errcode_t)-ret : 0;
	}
	if (!io->writable || !io->replay || !bs)
		return EXT2_ET_RO_FILSYS;
	if (!vd_range_ok(off, len, io->vol->len))
		return EXT2_ET_SHORT_WRITE;
	tmp = malloc(bs);
	if (!tmp)
		return EXT2_ET_NO_MEMORY;
	end = off + len;
	for (blk = off / bs; !ret && blk * bs < end; blk++) {
		uint64_t b0 = blk * bs, from = VD_MAX(b0, off),
			 to = VD_MIN(b0 + bs, end);

		if (!vd_range_ok(b0, bs, io->vol->len)) {
			ret = -EIO;
			break;
		}
		if (from != b0 || to != b0 + bs)
			ret = vd_ext_io_read(io, tmp, bs, b0);
		if (ret)
			break;
		memcpy(tmp + (from - b0), (const uint8_t *)buf + (from - off),
		       to - from);
		ret = vd_ext_replay_put(io->replay, blk, tmp);
	}
	free(tmp);
	if (ret == -ENOMEM)
		return EXT2_ET_NO_MEMORY;
	return ret ? EXT2_ET_SHORT_WRITE : 0;
}

static errcode_t ext_io_write_blk64(io_channel ch, unsigned long long block,
				    int count, const void *data)
{
	struct ext_io *io = ch->private_data;
	uint64_t off, len;

	if (count < 0)
		len = (uint64_t)-(int64_t)count;
	else
		len = (uint64_t)count * (uint64_t)ch->block_size;
	if (__builtin_mul_overflow((uint64_t)block, (uint64_t)ch->block_size,
				   &off))
		return EXT2_ET_SHORT_WRITE;
	return ext_io_write(io, (unsigned)ch->block_size, data, len, off);
}

static errcode_t ext_io_write_blk(io_channel ch, unsigned long block,
				  int count, const void *data)
{
	return ext_io_write_blk64(ch, block, count, data);
}

static errcode_t ext_io_write_byte(io_channel ch, unsigned long offset,
				   int count, const void *data)
{
	if (count < 0)
		return EXT2_ET_INVALID_ARGUMENT;
	return ext_io_write(ch->private_data, (unsigned)ch->block_size, data,
			    (uint64_t)count, offset);
}

/* ext2fs_flush (fsync, the unmount) ends with this: the held blocks go
 * down (the caller then flushes the disk). */
static errcode_t ext_io_flush(io_channel ch)
{
	struct ext_io *io = ch->private_data;
	int ret = io->wc ? vd_ext_wc_flush(io->wc, io->vol) : 0;

	return ret ? (errcode_t)-ret : 0;
}

static errcode_t ext_io_set_option(io_channel ch, const char *opt,
				   const char *arg)
{
	(void)ch;
	(void)opt;
	(void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager ext_io_manager_struct = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "vdmount core I/O manager",
	.open = ext_io_open,
	.close = ext_io_close,
	.set_blksize = ext_io_set_blksize,
	.read_blk = ext_io_read_blk,
	.write_blk = ext_io_write_blk,
	.flush = ext_io_flush,
	.write_byte = ext_io_write_byte,
	.set_option = ext_io_set_option,
	.read_blk64 = ext_io_read_blk64,
	.write_blk64 = ext_io_write_blk64,
};

io_manager vd_ext_io_manager = &ext_io_manager_struct;

int vd_ext_errno(errcode_t err)
{
	if (!err)
		return 0;
	/* libext2fs passes plain errno values through (our channel
	 * returns EIO). */
	if (err > 0 && err < 4096)
		return -(int)err;
	switch (err) {
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_RO_FILSYS:
		return -EROFS;
	case EXT2_ET_SHORT_READ:
	case EXT2_ET_LLSEEK_FAILED:
	case EXT2_ET_BAD_DEVICE_NAME:
		return -EIO;
	case EXT2_ET_UNSUPP_FEATURE:
	case EXT2_ET_RO_UNSUPP_FEATURE:
	case EXT2_ET_UNIMPLEMENTED:
	case EXT2_ET_OP_NOT_SUPPORTED:
	case EXT2_ET_UNKNOWN_CSUM:
		return -ENOTSUP;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return -ENODATA;
	case EXT2_ET_FILE_NOT_FOUND:
		return -ENOENT;
	default:
		/* Everything else libext2fs reports about what it read is
		 * damage: bad magic, counts, checksums, block numbers. */
		return -EUCLEAN;
	}
}
