/* atomic_file.c - temporary files synced before they are renamed into place (atomic_file.h). */
#include "host/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dz_write_temp(const char *path, const void *data, size_t size, char **tmp, struct dk_error *err)
{
    static const char suffix[] = ".tmp-XXXXXX";
    const unsigned char *bytes = data;
    const size_t len = strlen(path);
    *tmp = malloc(len + sizeof suffix);
    if (!*tmp)
        return dk_fail(err, "%s: out of memory", path);
    memcpy(*tmp, path, len);
    memcpy(*tmp + len, suffix, sizeof suffix);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        int e = errno;
        free(*tmp);
        *tmp = NULL;
        return dk_fail(err, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    size_t done = 0;
    int e = 0;
    while (done < size) {
        ssize_t w = write(fd, bytes + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (done == size && fchmod(fd, 0644) != 0)
        e = errno;
    if (done == size && e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (done == size && e == 0)
        return 0;
    unlink(*tmp);
    free(*tmp);
    *tmp = NULL;
    return dk_fail(err, "%s: cannot write: %s", path, strerror(e ? e : EIO));
}

void dz_sync_dir_of(const char *path)
{
    char dir[4200];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return;
    if (fsync(fd) != 0) {
        /* Best effort (see atomic_file.h). */
    }
    close(fd);
}
