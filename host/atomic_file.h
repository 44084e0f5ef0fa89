/*
 * atomic_file.h - files that appear whole or not at all: data goes to a temporary file
 * beside its destination, is synced, and is renamed over it by the caller (who may have
 * another file to put in place first, as a sealed pair does).
 */
#ifndef DZ_ATOMIC_FILE_H
#define DZ_ATOMIC_FILE_H

#include <stddef.h>

#include "darknet/error.h"

/*
 * dz_write_temp - write @size bytes of @data to a new file `PATH.tmp-XXXXXX` beside @path
 * (mode 0644), fsync it and close it. On success *tmp is its name (malloc'd; the caller
 * renames or unlinks it, then frees it). Returns 0, or -1 with a message naming @path in
 * err (no temporary is left behind and *tmp is NULL).
 */
int dz_write_temp(const char *path, const void *data, size_t size, char **tmp,
                  struct dk_error *err);

/* fsync the folder holding @path, so a rename in it is durable. Best effort: both files
 * were synced already, so a failure only loses the rename on a crash. */
void dz_sync_dir_of(const char *path);

#endif
