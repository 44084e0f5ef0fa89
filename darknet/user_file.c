/*
 * user_file.c - opening user-named files as regular files with a size limit (see user_file.h).
 */
#include "darknet/user_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kind of a file that is not regular, for the refusal message. */
static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a file";
}

int dk_user_file_open(const char *path, const char *what, uint64_t max_bytes, int *fd,
                      uint64_t *size, struct dk_error *err)
{
    struct stat st;
    *fd = -1;
    /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, so fstat can
     * refuse it; O_NOCTTY: a terminal device never becomes the controlling tty. */
    int d = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (d < 0)
        return dk_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(d, &st) != 0) {
        int e = errno;
        close(d);
        return dk_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(d);
        return dk_fail(err, "%s: not a regular file (%s)", path, kind_of(st.st_mode));
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        close(d);
        return dk_fail(err, "%s: %s of %llu bytes exceeds the limit of %llu bytes (%llu MiB)", path,
                       what, (unsigned long long)st.st_size, (unsigned long long)max_bytes,
                       (unsigned long long)(max_bytes / DK_MIB));
    }
    /* Regular files ignore O_NONBLOCK, but stdio, zlib and stb get a plain descriptor. */
    int fl = fcntl(d, F_GETFL);
    if (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return dk_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    *fd = d;
    if (size)
        *size = (uint64_t)st.st_size;
    return 0;
}

int dk_user_file_fopen(const char *path, const char *what, uint64_t max_bytes, FILE **f,
                       uint64_t *size, struct dk_error *err)
{
    int fd = -1;
    *f = NULL;
    if (dk_user_file_open(path, what, max_bytes, &fd, size, err) != 0)
        return -1;
    *f = fdopen(fd, "rb");
    if (!*f) {
        int e = errno;
        close(fd);
        return dk_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    return 0;
}

int dk_user_file_read(const char *path, const char *what, uint64_t max_bytes, char **data,
                      size_t *len, struct dk_error *err)
{
    int fd = -1;
    uint64_t size = 0;
    *data = NULL;
    *len = 0;
    if (max_bytes >= SIZE_MAX)
        max_bytes = SIZE_MAX - 1;
    if (dk_user_file_open(path, what, max_bytes, &fd, &size, err) != 0)
        return -1;
    /* One byte more than fstat said: reading it means the file grew under us. */
    char *buf = malloc((size_t)size + 2);
    if (!buf) {
        close(fd);
        return dk_fail(err, "%s: out of memory for its %llu bytes", path, (unsigned long long)size);
    }
    size_t got = 0;
    while (got < (size_t)size + 1) {
        ssize_t r = read(fd, buf + got, (size_t)size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return dk_fail(err, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > (size_t)size) {
        free(buf);
        return dk_fail(err, "%s: changed while being read (it grew past %llu bytes)", path,
                       (unsigned long long)size);
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

int dk_user_file_check(const char *path, struct dk_error *err)
{
    int fd = -1;
    if (dk_user_file_open(path, "a file", UINT64_MAX, &fd, NULL, err) != 0)
        return -1;
    close(fd);
    return 0;
}
