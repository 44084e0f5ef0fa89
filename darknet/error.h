/*
 * error.h - error messages for the normal-world framework.
 *
 * Functions that can fail on user input return 0 on success and -1 on failure,
 * after writing a complete, user-facing message (file, line, key, what was
 * expected) into a caller-owned struct dk_error. Nothing below main() exits.
 */
#ifndef DK_ERROR_H
#define DK_ERROR_H

#include <stddef.h>

struct dk_error {
    char msg[1024];
};

#if defined(__GNUC__)
#define DK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DK_PRINTF(a, b)
#endif

/* Formats a message into err (may be NULL); always returns -1 so callers can
 * `return dk_fail(err, ...)`. */
int dk_fail(struct dk_error *err, const char *fmt, ...) DK_PRINTF(2, 3);

#endif
