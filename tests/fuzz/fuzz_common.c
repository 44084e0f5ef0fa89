/* fuzz_common.c - see fuzz_common.h. */
#define _XOPEN_SOURCE 700
#include "tests/fuzz/fuzz_common.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* libFuzzer exits through exit() after -runs/-max_total_time: leave no folder behind. */
static void remove_dir(void)
{
    if (dir[0])
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    if (dir[0])
        return dir;
    /* Memory-backed when possible: a million inputs written to a disk-backed /tmp spend
     * their time in the block layer (a tenth of the speed measured here). */
    const char *tmp = getenv("FUZZ_TMPDIR");
    struct stat st;
    if (!tmp || !*tmp || strlen(tmp) >= 40)
        tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                  ? "/dev/shm"
                  : "/tmp";
    int n = snprintf(dir, sizeof dir, "%s/dz-fuzz-XXXXXX", tmp);
    if (n <= 0 || (size_t)n >= sizeof dir || !mkdtemp(dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return dir;
}

const char *fuzz_path(int slot, const char *name)
{
    static char paths[8][128];
    char *p = paths[slot & 7];
    int n = snprintf(p, sizeof paths[0], "%s/%s", fuzz_dir(), name);
    if (n <= 0 || (size_t)n >= sizeof paths[0])
        abort();
    return p;
}

const char *fuzz_write(int slot, const char *name, const void *data, size_t len)
{
    const char *path = fuzz_path(slot, name);
    /* O_TRUNC on a file opened afresh: the reader under test sees this input only. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const unsigned char *p = data;
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            perror(path);
            abort();
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
    return path;
}
