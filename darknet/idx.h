/*
 * idx.h - IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
 *
 * Format: bytes 0 and 1 are zero, byte 2 is the element type (0x08 = unsigned
 * byte, the only type read here), byte 3 the number of dimensions; then one
 * big-endian uint32 per dimension; then the elements, row-major, nothing after.
 * Images are (n, rows, cols), labels (n). zlib's gzread reads compressed and
 * uncompressed files alike.
 */
#ifndef DK_IDX_H
#define DK_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "darknet/error.h"

#define DK_IDX_MAX_DIMS 4
#define DK_IDX_TYPE_U8 0x08

struct dk_idx {
    int ndims;
    uint32_t dims[DK_IDX_MAX_DIMS]; /* (ndims), outermost first */
    uint8_t *data;                  /* (dims[0], ..., dims[ndims-1]) */
    size_t size;                    /* bytes in data: the product of dims */
};

/*
 * dk_idx_read - reads and validates a whole IDX file of unsigned bytes.
 * Rejects: a bad magic, a type other than 0x08, 0 or more than 4 dimensions, a
 * zero dimension, a size that overflows, a payload shorter than the header says
 * (naming expected and actual bytes) and any byte after the payload.
 * Limits (darknet/user_file.h): a regular file (FIFOs, devices and directories are
 * refused unread) of at most DK_IDX_MAX_FILE_BYTES (1 GiB) whose header announces at
 * most DK_IDX_MAX_DATA_BYTES (1 GiB) of elements, no more than an uncompressed file
 * holds and no more than 1032 times a gzip file's size; all checked before any buffer
 * is allocated, and the buffer grows only as data arrives.
 * Returns 0 and fills *out (free with dk_idx_free), or -1 with a message.
 */
int dk_idx_read(const char *path, struct dk_idx *out, struct dk_error *err);

/* Frees idx->data and empties *idx; accepts NULL. */
void dk_idx_free(struct dk_idx *idx);

/*
 * An IDX file of unsigned bytes opened for reading element by element: the header in
 * memory, the elements read on demand (dk_idx_file_read), so only what is read costs the
 * process memory. A plain file is read in place; a gzip file is inflated once into an
 * unlinked temporary file in $TMPDIR (default /tmp), which the kernel's page cache holds,
 * not the process. Reads from several threads at once are safe (pread).
 */
struct dk_idx_file {
    int ndims;
    uint32_t dims[DK_IDX_MAX_DIMS]; /* (ndims), outermost first */
    size_t size;                    /* element bytes: the product of dims */
    int fd;                         /* the elements from byte offset on; -1 when closed */
    uint64_t offset;
    char *path; /* the user's path, for messages */
};

/*
 * dk_idx_open - opens and validates an IDX file for dk_idx_file_read: dk_idx_read's checks,
 * limits and messages, all made before the call returns (a gzip file is inflated whole
 * then, so a bad stream is refused at once). Returns 0 and fills *out (close it with
 * dk_idx_file_close), or -1 with a message (also when the temporary file cannot be made).
 */
int dk_idx_open(const char *path, struct dk_idx_file *out, struct dk_error *err);

/*
 * dk_idx_file_read - copies the element bytes [first, first + n) into dst (n bytes).
 * Returns 0, or -1 with a message naming the file: a range past the elements, a read error,
 * a file cut while open.
 */
int dk_idx_file_read(const struct dk_idx_file *idx, size_t first, size_t n, uint8_t *dst,
                     struct dk_error *err);

/* Closes idx and empties it (fd -1); accepts NULL and a closed file. */
void dk_idx_file_close(struct dk_idx_file *idx);

/*
 * dk_idx_probe - tells an IDX file (gzipped or not) from anything else by its
 * first bytes: 0x00 0x00, a known IDX type byte, 1..255 dimensions. A text file
 * (a list of paths) never starts with a zero byte.
 * Returns 0 with *is_idx set, or -1 when the file cannot be opened or read, is not
 * a regular file or is larger than DK_IDX_MAX_FILE_BYTES.
 */
int dk_idx_probe(const char *path, bool *is_idx, struct dk_error *err);

#endif
