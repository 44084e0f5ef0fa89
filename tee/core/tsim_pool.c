/*
 * The secure-memory pool shared by all the simulated secure worlds of a user: granules held as
 * open-file-description locks on one file (see tsim_pool.h for the layout and why).
 */
#define _GNU_SOURCE
#include "tee/core/tsim_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MUTEX_BYTE 0
#define MEMBER_BYTE 1

/* fcntl(F_OFD_*) on [@start, @start + @len) of the lock space. Return: 0 or -errno. */
static int ofd_lock(int fd, int cmd, short type, uint64_t start, uint64_t len, struct flock *out)
{
    struct flock l = {.l_type = type,
                      .l_whence = SEEK_SET,
                      .l_start = (off_t)start,
                      .l_len = (off_t)len,
                      .l_pid = 0};
    int rc;
    do {
        rc = fcntl(fd, cmd, &l);
    } while (rc < 0 && errno == EINTR);
    if (out)
        *out = l;
    return rc < 0 ? -errno : 0;
}

/* Waits for the pool's mutex: held only while a core attaches or scans, never while blocked. */
static int mutex_lock(int fd)
{
    return ofd_lock(fd, F_OFD_SETLKW, F_WRLCK, MUTEX_BYTE, 1, NULL);
}

static void mutex_unlock(int fd)
{
    ofd_lock(fd, F_OFD_SETLK, F_UNLCK, MUTEX_BYTE, 1, NULL);
}

/* The size the file's text records, or 0 when it records none. */
static uint64_t recorded_bytes(int fd)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long v = 0;
    char nl = 0;
    if (sscanf(buf, "dz-tee-pool %llu%c", &v, &nl) != 2 || nl != '\n')
        return 0;
    return v;
}

static int record_bytes(int fd, uint64_t bytes)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "dz-tee-pool %" PRIu64 "\n", bytes);
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        return -errno ? -errno : -EIO;
    return 0;
}

int tsim_pool_attach(struct tsim_pool *p, const char *path, uint64_t bytes, uint64_t *file_bytes)
{
    struct stat st;
    struct flock l;
    int rc;

    p->granules = bytes / TSIM_POOL_GRANULE;
    snprintf(p->path, sizeof(p->path), "%s", path);
    /* Not a symlink, and checked to be this user's: /dev/shm is writable by every user. */
    p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (p->fd < 0)
        return errno == ELOOP ? -EPERM : -errno;
    if (fstat(p->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        rc = -EPERM;
        goto fail;
    }
    rc = mutex_lock(p->fd);
    if (rc < 0)
        goto fail;
    /* Is any core attached? Their read locks conflict with a write lock's test. */
    rc = ofd_lock(p->fd, F_OFD_GETLK, F_WRLCK, MEMBER_BYTE, 1, &l);
    if (rc == 0 && l.l_type == F_UNLCK) {
        rc = record_bytes(p->fd, bytes);
    } else if (rc == 0) {
        /* Others are: the pool is theirs as the first of them fixed it. */
        *file_bytes = recorded_bytes(p->fd);
        if (*file_bytes != bytes)
            rc = -EBUSY;
    }
    if (rc == 0)
        rc = ofd_lock(p->fd, F_OFD_SETLK, F_RDLCK, MEMBER_BYTE, 1, NULL);
    mutex_unlock(p->fd);
    if (rc == 0)
        return 0;
fail:
    close(p->fd);
    p->fd = -1;
    return rc;
}

void tsim_pool_hold_init(struct tsim_pool_hold *h)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
}

/* Records granules [@first, @first + @count) as held by @h. Return: 0 or -ENOMEM. */
static int hold_add(struct tsim_pool_hold *h, uint64_t first, uint64_t count)
{
    if (h->n && h->ranges[h->n - 1].first + h->ranges[h->n - 1].count == first) {
        h->ranges[h->n - 1].count += count;
        return 0;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        struct tsim_pool_range *r = realloc(h->ranges, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        h->ranges = r;
        h->cap = cap;
    }
    h->ranges[h->n++] = (struct tsim_pool_range){first, count};
    return 0;
}

/*
 * Under the mutex: write-locks free granules from the lowest up until @need are held or the
 * pool has been scanned to its end. Another holder's lock is skipped whole (F_OFD_GETLK names
 * it), so a scan costs a few calls per holder, not one per granule.
 * Return: granules now held (all the free ones when fewer than @need), or -errno.
 */
static int64_t lock_free_granules(struct tsim_pool *p, struct tsim_pool_hold *h, uint64_t need,
                                  uint64_t *ending)
{
    uint64_t got = 0, pos = 0;

    while (got < need && pos < p->granules) {
        uint64_t len = need - got < p->granules - pos ? need - got : p->granules - pos;
        for (;;) {
            struct flock l;
            int rc = ofd_lock(h->fd, F_OFD_SETLK, F_WRLCK, TSIM_POOL_BASE + pos, len, NULL);
            if (rc == 0) {
                if (hold_add(h, pos, len) < 0)
                    return -ENOMEM;
                got += len;
                pos += len;
                break;
            }
            if (rc != -EAGAIN && rc != -EACCES)
                return rc;
            rc = ofd_lock(h->fd, F_OFD_GETLK, F_WRLCK, TSIM_POOL_BASE + pos, len, &l);
            if (rc < 0)
                return rc;
            if (l.l_type == F_UNLCK)
                continue; /* given back meanwhile */
            uint64_t start = (uint64_t)l.l_start;
            if (start > TSIM_POOL_BASE + pos) {
                /* Free or another holder's before it: try the part before it. */
                len = start - TSIM_POOL_BASE - pos;
                continue;
            }
            uint64_t end = l.l_len == 0 ? p->granules : start + (uint64_t)l.l_len - TSIM_POOL_BASE;
            if (end > p->granules)
                end = p->granules;
            if (l.l_type == F_RDLCK)
                *ending += end - pos;
            pos = end;
            break;
        }
    }
    return (int64_t)got;
}

int tsim_pool_take(struct tsim_pool *p, uint64_t bytes, struct tsim_pool_hold *h,
                   struct tsim_pool_census *c)
{
    const uint64_t need = bytes / TSIM_POOL_GRANULE + (bytes % TSIM_POOL_GRANULE != 0);
    uint64_t ending = 0;
    char self[64];

    c->free = c->ending = 0;
    if (need == 0)
        return 1;
    /*
     * A new open file description of the same file: through /proc rather than the path, which
     * may since name another file; the path only where /proc is not mounted.
     */
    snprintf(self, sizeof(self), "/proc/self/fd/%d", p->fd);
    h->fd = open(self, O_RDWR | O_CLOEXEC);
    if (h->fd < 0 && errno == ENOENT)
        h->fd = open(p->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (h->fd < 0)
        return -errno;
    int rc = mutex_lock(p->fd);
    if (rc < 0) {
        tsim_pool_release(h);
        return rc;
    }
    int64_t got = lock_free_granules(p, h, need, &ending);
    mutex_unlock(p->fd);
    if (got >= 0 && (uint64_t)got == need)
        return 1;
    if (got >= 0) {
        c->free = (uint64_t)got * TSIM_POOL_GRANULE;
        c->ending = ending * TSIM_POOL_GRANULE;
    }
    tsim_pool_release(h);
    return got < 0 ? (int)got : 0;
}

void tsim_pool_ending(struct tsim_pool_hold *h)
{
    /* A write lock turned into a read lock on the same ranges: nobody else can hold them. */
    for (size_t i = 0; h->fd >= 0 && i < h->n; i++)
        ofd_lock(h->fd, F_OFD_SETLK, F_RDLCK, TSIM_POOL_BASE + h->ranges[i].first,
                 h->ranges[i].count, NULL);
}

void tsim_pool_release(struct tsim_pool_hold *h)
{
    if (h->fd >= 0)
        close(h->fd); /* drops every lock of this open file description */
    free(h->ranges);
    tsim_pool_hold_init(h);
}
