/* Private to capture/: CRC-32 of the recording format (capture/recording.c). */
#ifndef KINEMA_CAPTURE_CRC32_H
#define KINEMA_CAPTURE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32/ISO-HDLC (zlib's crc32): start with crc = 0, feed the bytes in any number of
 * pieces, each call returning the running value: crc32("123456789") = 0xCBF43926. */
uint32_t km_crc32_update(uint32_t crc, const void *data, size_t size);
/* The same with the table loop only (the reference the carry-less multiplication path of
 * km_crc32_update is tested against; used by it for short inputs and tails). */
uint32_t km_crc32_update_portable(uint32_t crc, const void *data, size_t size);

#endif
