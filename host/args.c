#include "host/args.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void remove_args(int *argc, char **argv, int at, int count)
{
    for (int i = at; i + count <= *argc; i++)
        argv[i] = i + count < *argc ? argv[i + count] : NULL;
    *argc -= count;
}

static int find(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (argv[i] && strcmp(argv[i], flag) == 0)
            return i;
    return -1;
}

bool dz_arg_flag(int *argc, char **argv, const char *flag)
{
    int at = find(*argc, argv, flag);
    if (at < 0)
        return false;
    remove_args(argc, argv, at, 1);
    return true;
}

const char *dz_arg_str(int *argc, char **argv, const char *flag)
{
    int at = find(*argc, argv, flag);
    if (at < 0 || at + 1 >= *argc)
        return NULL;
    const char *v = argv[at + 1];
    remove_args(argc, argv, at, 2);
    return v;
}

int dz_arg_int(int *argc, char **argv, const char *flag, long min, long max, long *out)
{
    int at = find(*argc, argv, flag);
    if (at < 0)
        return 0;
    if (at + 1 >= *argc) {
        fprintf(stderr, "darknetp: %s needs a value\n", flag);
        return -1;
    }
    const char *v = argv[at + 1];
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        fprintf(stderr, "darknetp: %s: expected an integer from %ld to %ld, got '%s'\n", flag, min,
                max, v);
        return -1;
    }
    *out = x;
    remove_args(argc, argv, at, 2);
    return 0;
}

int dz_arg_mib(int *argc, char **argv, const char *flag, unsigned long max_mib, size_t *bytes)
{
    int at = find(*argc, argv, flag);
    if (at < 0)
        return 0;
    /* Bytes are MiB << 20: a larger count would wrap a 32-bit size_t. */
    if (max_mib > SIZE_MAX >> 20)
        max_mib = SIZE_MAX >> 20;
    const char *v = at + 1 < *argc ? argv[at + 1] : NULL;
    if (!v) {
        fprintf(stderr, "darknetp: %s needs a size in MiB (0..%lu)\n", flag, max_mib);
        return -1;
    }
    /* Digits only: strtol would take a sign, blanks and a trailing unit silently. Each digit
     * is checked against max_mib before the next, so the count never overflows. */
    unsigned long x = 0;
    const char *c = v;
    for (; *c >= '0' && *c <= '9' && x <= max_mib; c++)
        x = x * 10 + (unsigned long)(*c - '0');
    if (c == v || *c || x > max_mib) {
        fprintf(stderr, "darknetp: %s: '%s' is not a size in MiB (0..%lu)\n", flag, v, max_mib);
        return -1;
    }
    *bytes = (size_t)x << 20;
    remove_args(argc, argv, at, 2);
    return 1;
}

/* Optimal string alignment distance, capped: strings longer than 63 bytes are never close. */
static int edit_distance(const char *a, const char *b)
{
    enum { MAX = 64 };
    const size_t n = strlen(a), m = strlen(b);
    if (n >= MAX || m >= MAX)
        return MAX;
    int d[MAX][MAX];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

const char *dz_arg_suggest(const char *word, const char *const *choices, size_t n)
{
    const char *best = NULL;
    int best_d = 3;
    bool tie = false;
    for (size_t i = 0; i < n; i++) {
        const int d = edit_distance(word, choices[i]);
        if (d < best_d) {
            best = choices[i];
            best_d = d;
            tie = false;
        } else if (d == best_d) {
            tie = true;
        }
    }
    return tie ? NULL : best;
}
