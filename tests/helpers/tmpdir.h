/* tmpdir.h - a fresh temporary folder per test (cmocka setup/teardown) and a
 * way to run a command and capture what it prints. */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stddef.h>

struct tmp {
    char dir[64];
};

/* cmocka setup: *state becomes a struct tmp with a new empty folder. */
int tmp_setup(void **state);
/* cmocka teardown: removes the folder (files directly inside it) and frees state. */
int tmp_teardown(void **state);

/* Runs cmd with /bin/sh, captures its stdout (NUL-terminated, truncated to
 * size - 1) and returns its exit status, or -1 if it did not exit normally. */
int run_capture(const char *cmd, char *out, size_t size);

/* Writes text to DIR/NAME (its path into path[0..size) when path is not NULL).
 * Returns 0, or -1 if the file cannot be written. */
int write_text_file(const char *dir, const char *name, const char *text, char *path, size_t size);

/* Reads the whole file at path into *data (malloc'd, NUL after its last byte; free()).
 * Returns its length, or -1 (with *data NULL) if it cannot be read. */
long read_whole_file(const char *path, unsigned char **data);

#endif
