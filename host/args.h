/*
 * args.h - darknet-style command-line flags: each finder removes the flag (and
 * its value) from argv, so what is left are the positional arguments.
 */
#ifndef DZ_ARGS_H
#define DZ_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true and removes `flag` if present. */
bool dz_arg_flag(int *argc, char **argv, const char *flag);

/* Finds `flag VALUE`. Returns 0 and sets *out (or leaves the default) on
 * success, -1 with a message on stderr when the value is missing or not an
 * integer in [min, max]. */
int dz_arg_int(int *argc, char **argv, const char *flag, long min, long max, long *out);

/*
 * dz_arg_mib - finds `flag MB`: a whole number of MiB (decimal digits only) from 0 to @max_mib
 * (lowered to what a size_t holds in bytes), stored in *bytes as bytes (MB * 2^20); *bytes is
 * left alone when the flag is absent. Returns 1 when found, 0 when absent, -1 with a message
 * on stderr naming the flag, the value and the range when the value is missing or not such
 * a number.
 */
int dz_arg_mib(int *argc, char **argv, const char *flag, unsigned long max_mib, size_t *bytes);

/* Finds `flag VALUE` for a string; returns NULL when absent. */
const char *dz_arg_str(int *argc, char **argv, const char *flag);

/* The choice closest to word by edit distance (insertions, deletions, substitutions and
 * swaps of neighbours each count 1), when at most 2 edits away and the only one that
 * close at that distance; else NULL: a likely typo's intended spelling. */
const char *dz_arg_suggest(const char *word, const char *const *choices, size_t n);

#endif
