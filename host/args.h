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

/* Finds `flag VALUE` for a string; returns NULL when absent. */
const char *dz_arg_str(int *argc, char **argv, const char *flag);

/* The choice closest to word by edit distance (insertions, deletions, substitutions and
 * swaps of neighbours each count 1), when at most 2 edits away and the only one that
 * close at that distance; else NULL: a likely typo's intended spelling. */
const char *dz_arg_suggest(const char *word, const char *const *choices, size_t n);

#endif
