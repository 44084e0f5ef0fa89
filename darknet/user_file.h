/*
 * user_file.h - opening a file the user named (cfg, .data, lists, names, labels,
 * .weights, .weights.tz, IDX, images) safely.
 *
 * Every such file is opened the same way: O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
 * then fstat on the descriptor, so that
 *   - a FIFO never blocks the open (without O_NONBLOCK, opening a FIFO for reading
 *     waits for a writer for ever),
 *   - the type checked is the type of the file actually opened (no stat-then-open race),
 *   - only a regular file is read: FIFOs, character and block devices (/dev/zero),
 *     sockets and directories are refused with a message naming the file and its type,
 *   - the file's size is known before a byte is read and is checked against the
 *     reader's limit, so no reader's memory grows beyond what the limit allows
 *     (/dev/zero given as a list would otherwise be read for ever).
 * O_NONBLOCK is cleared once the file is known to be regular (it has no effect on
 * regular files, but the descriptor is handed to stdio, zlib and stb).
 *
 * Messages: "PATH: cannot open: <strerror>", "PATH: not a regular file (a FIFO)",
 * "PATH: <what> of N bytes exceeds the limit of M bytes (M MiB)".
 */
#ifndef DK_USER_FILE_H
#define DK_USER_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet/error.h"

/* The limits of the readers, in one place (README "Limits"). */
#define DK_MIB ((uint64_t)1 << 20)
#define DK_CFG_MAX_BYTES (16 * DK_MIB)          /* a network .cfg or a .data file */
#define DK_CFG_MAX_KEYS 1024                    /* keys in one [section] (or one .data file) */
#define DK_MAX_LAYERS 262144                    /* layers of a network cfg (2^18) */
#define DK_LIST_MAX_BYTES (256 * DK_MIB)        /* a train=/valid= list of image paths */
#define DK_LIST_MAX_LINES 16777216              /* lines of such a list (2^24) */
#define DK_NAMES_MAX_BYTES (16 * DK_MIB)        /* a names= or labels= file */
#define DK_NAMES_MAX_LINES 1048576              /* lines of such a file (2^20) */
#define DK_IDX_MAX_FILE_BYTES (1024 * DK_MIB)   /* an IDX file as stored (gzip or not) */
#define DK_IDX_MAX_DATA_BYTES (1024 * DK_MIB)   /* the elements an IDX header announces */
#define DK_IMAGE_MAX_FILE_BYTES (256 * DK_MIB)  /* an image file (PNG, JPEG, BMP, ...) */
#define DK_IMAGE_MAX_PIXELS ((uint64_t)1 << 26) /* width * height: 8192 x 8192 */
/* A .weights file must hold exactly its cfg's parameters (checked before any network
 * is built); this outer bound only keeps offsets within off_t. */
#define DK_WEIGHTS_MAX_BYTES ((uint64_t)INT64_MAX)

/*
 * dk_user_file_open - open path for reading as a regular file of at most max_bytes.
 * @path:      the file, as the user gave it (named in every message)
 * @what:      what the file is, for the size message ("a cfg file", "a list")
 * @max_bytes: the reader's size limit
 * @fd:        receives the open descriptor (blocking again), -1 on error
 * @size:      receives st_size at open time, or NULL
 * Returns 0, or -1 with a message in err when the file cannot be opened, is not a
 * regular file, or is larger than max_bytes (nothing is left open then).
 */
int dk_user_file_open(const char *path, const char *what, uint64_t max_bytes, int *fd,
                      uint64_t *size, struct dk_error *err);

/* dk_user_file_open as a stdio stream ("rb"); *f is NULL on error. */
int dk_user_file_fopen(const char *path, const char *what, uint64_t max_bytes, FILE **f,
                       uint64_t *size, struct dk_error *err);

/*
 * dk_user_file_read - the whole file in memory, with a '\0' after its last byte.
 * The buffer is sized from fstat (at most max_bytes + 1) and never grows: a file
 * that grows while it is read is refused rather than followed, one that shrinks
 * yields what was there. Free *data with free(). Errors as dk_user_file_open, plus
 * read errors and "changed while being read".
 */
int dk_user_file_read(const char *path, const char *what, uint64_t max_bytes, char **data,
                      size_t *len, struct dk_error *err);

/*
 * dk_user_file_check - is path a regular file this process may read? It is opened
 * (as dk_user_file_open does, with no size limit) and closed again, so permissions
 * are checked by the kernel, not guessed from the mode bits.
 * Returns 0, or -1 with the reason in err.
 */
int dk_user_file_check(const char *path, struct dk_error *err);

#endif
