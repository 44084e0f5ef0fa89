/*
 * jpeg_check.h - a JPEG's marker segments checked before stb_image decodes it.
 *
 * Debian's stb_image (v2.27) trusts a JPEG in three ways a hostile file exploits (found by
 * fuzzing stb compiled with ASan, MSan and UBSan):
 *   - a DHT table's 16 code counts may sum past 256: stbi__build_huffman and the value
 *     loop then write past the table's arrays, and the corrupted table sends
 *     stbi__jpeg_huff_decode to a wild address (a 1.8 KB file crashed darknetp);
 *   - a scan may name a Huffman table no DHT defined: stb decodes with uninitialised
 *     heap memory (its decoder state is malloc'd, not cleared), which can crash;
 *   - a component that no scan codes is never written, so the image comes back with
 *     uninitialised heap bytes as pixels; and every scan decodes the whole image again,
 *     so 1,000 scans of 10 bytes each keep an 8192 x 8192 image busy for minutes.
 */
#ifndef DK_JPEG_CHECK_H
#define DK_JPEG_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"

/* The most scans a JPEG may have, whatever its size; bigger images get fewer (see
 * dk_jpeg_check). Progressive encoders write about 10. */
#define DK_JPEG_MAX_SCANS 256u

/*
 * dk_jpeg_check - read a JPEG from f's start and refuse what stb_image would mishandle.
 * @f:      the open image file; rewound before returning, whatever the result
 * @path:   the file's name, for messages
 * @err:    receives the message on refusal
 *
 * A file that does not start with SOI (FF D8, after any FF fill bytes, as stb reads it)
 * is not checked (0). It is meant to run before any stb call, stbi_info included: stb
 * reads the tables before the frame while looking for its size. Otherwise the marker
 * segments (ITU-T T.81, annex B) are walked as stb reads them, entropy-coded data skipped
 * up to the next marker, until EOI, and the file is refused when:
 *   - a DHT table's code counts sum to more than 256;
 *   - a scan (SOS) uses a DC or AC table that no earlier DHT defined (a baseline scan uses
 *     both; a progressive one its DC table on a first DC pass, its AC table on an AC pass),
 *     or codes a component whose quantisation table no earlier DQT defined;
 *   - there are more than min(DK_JPEG_MAX_SCANS, 2^32 / (width x height x components))
 *     scans, by the frame (SOF);
 *   - at EOI, a component of the frame (SOF) was in no scan (progressive: in no first DC
 *     pass).
 * The walk ends without refusing where stb itself refuses the file before decoding
 * another scan (other SOF types, bad segment lengths, a missing marker); a file cut
 * short is checked as far as it goes, and stb fails at its end.
 * Returns 0, or -1 with a message naming the file, the segment and its offset.
 */
int dk_jpeg_check(FILE *f, const char *path, struct dk_error *err);

#endif
