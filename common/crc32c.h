/* CRC-32C (Castagnoli), the checksum of btrfs, XFS v5, VHDX and
 * dm-thin metadata: one implementation for all of them, on the CPU's
 * crc32 instruction where it has one (SSE4.2), else sliced tables.
 *
 * As the kernel's crc32c(): crc is the running register, updated over
 * n bytes at p, with no inversion on entry or exit; callers start from
 * their format's seed (usually ~0) and invert at the end as it says. */
#ifndef VD_CRC32C_H
#define VD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t vd_crc32c(uint32_t crc, const void *p, size_t n);

/* The table version alone, for tests to compare the fast one with. */
uint32_t vd_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
