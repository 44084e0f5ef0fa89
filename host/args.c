#include "host/args.h"

#include <errno.h>
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
