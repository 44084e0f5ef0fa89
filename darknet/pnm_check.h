/*
 * pnm_check.h - a binary PGM or PPM checked before stb_image decodes it.
 *
 * Debian's stb_image (v2.27) mishandles two PNM files a user can hand it (found by
 * fuzzing stb compiled with ASan and MSan):
 *   - a 16-bit file (maxval over 255) asked for another channel count is converted with
 *     the 8-bit converter and then read as 16-bit, twice past its buffer: a 19-byte PGM
 *     header crashed darknetp, whose classifier asks for 3 channels (fixed in stb 2.28);
 *   - a file shorter than its header's pixels is decoded anyway, the missing pixels left
 *     as uninitialised heap memory.
 */
#ifndef DK_PNM_CHECK_H
#define DK_PNM_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"

/*
 * dk_pnm_check - read f's header as stbi__pnm_info does (Netpbm's P5 and P6: the magic,
 * then width, height and maxval as decimal numbers between whitespace and # comments,
 * then one byte, then the pixels) and refuse a file stb would mishandle.
 * @f:        the open image file; rewound before returning, whatever the result
 * @path:     the file's name, for messages
 * @size:     the file's size in bytes (from fstat)
 * @channels: the channel count dk_image_load was asked for, 0 for the file's own
 * @err:      receives the message on refusal
 *
 * A file not starting with "P5" or "P6" is not checked (0). Refused: a 16-bit file when
 * channels is neither 0 nor the file's count, and a file whose pixels (width x height x
 * 1 or 3 samples of 1 or 2 bytes) do not all follow the header.
 * Returns 0, or -1 with a message naming the file and the fault.
 */
int dk_pnm_check(FILE *f, const char *path, uint64_t size, int channels, struct dk_error *err);

#endif
