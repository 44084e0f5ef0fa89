/*
 * png_check.h - a PNG file's chunks and the size of its image data, checked before
 * stb_image decodes it.
 *
 * Debian's stb_image (v2.27) trusts two numbers a hostile PNG controls:
 *   - a chunk's declared length: it grows its buffer of compressed data to that length
 *     before reading the chunk (stbi__parse_png_file, IDAT), so a 95-byte file that
 *     declares a 1.1 GB IDAT costs a 2 GiB allocation;
 *   - the length of the inflated image data: it doubles its output buffer for as long as
 *     the zlib stream yields bytes (stbi__zexpand, up to 4 GiB), so a 4 MB file of a
 *     1 x 1 image (4 GiB of zeros, deflated) took 2 GiB of memory and 6.5 s before stb
 *     gave up.
 * stb's own limits on width and height do not bound either.
 */
#ifndef DK_PNG_CHECK_H
#define DK_PNG_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"

/*
 * dk_png_check - read a PNG from f's start and refuse what would make stb_image allocate
 * more than the image needs.
 * @f:    the open image file; rewound before returning, whatever the result
 * @path: the file's name, for messages
 * @size: the file's size in bytes (from fstat); chunks are skipped with fseek, so at
 *        most LONG_MAX (dk_image_load keeps it within 256 MiB)
 * @max_pixels: the most width x height may be, at most 2^32 (dk_image_load passes
 *        DK_IMAGE_MAX_PIXELS)
 * @err:  receives the message on refusal
 *
 * A file that does not start with the PNG signature is not checked (0). Otherwise:
 *   - every chunk (PNG 1.2 / ISO 15948, section 5.3: a 4-byte big-endian length of at most
 *     2^31 - 1, a 4-byte type, the data, a 4-byte CRC) before IEND must fit in the file;
 *   - the image data (all IDAT chunks, one zlib stream; raw deflate after Apple's CgBI
 *     chunk, as stb reads it) is inflated with zlib into a small buffer, only counted, and
 *     may yield at most twice the bytes that IHDR's size, colour type, bit depth and
 *     interlace method need, plus 1 MiB (stb accepts trailing data, and some encoders
 *     write it);
 *   - that data must be a stream zlib decodes (stb's own decoder is laxer: it accepts
 *     incomplete Huffman codes, so a stream zlib stops on could inflate further in stb);
 *     the Adler-32 is not checked, as stb does not check it;
 *   - an IDAT needs an IHDR before it, of 1 to max_pixels pixels, with a colour type and
 *     bit depth PNG defines;
 *   - a CgBI chunk may not follow image data (stb would read the data as raw deflate
 *     whatever the order, so the same bytes would be another stream to it).
 * Chunk CRCs and everything else stay stb's to judge.
 * Returns 0, or -1 with a message naming the file and the fault; also -1 when the
 * checker's 32 KiB of buffers cannot be allocated.
 */
int dk_png_check(FILE *f, const char *path, uint64_t size, uint64_t max_pixels,
                 struct dk_error *err);

#endif
