/*
 * The secure-memory pool shared by every simulated secure world of a user (all the cores, one
 * per TEEC_Context, of every process), as OP-TEE has one fixed secure pool for all its TAs.
 *
 * The pool is a file (DZ_TEE_POOL_FILE, default /dev/shm/dz-tee-pool-<uid>) whose byte-range
 * locks are the accounting: the pool's bytes are granules of TSIM_POOL_GRANULE bytes, granule i
 * being byte TSIM_POOL_BASE + i of the lock space. An instance holds its granules as write
 * locks of an open file description of its own (F_OFD_SETLK), so they are released when that
 * description is closed: when the core has reaped the instance, or when the core itself dies,
 * whatever kills it. No count is kept anywhere that a death could leave stale.
 *
 * Lock space: byte 0 is a mutex (write lock, held while a core attaches or takes granules, so
 * that two takers never each grab half of what is free and both fail); byte 1 holds a read
 * lock of every attached core; the file's text is "dz-tee-pool <bytes>\n", the size that the
 * first core to attach (when no core is attached) wrote, and every core attaching while others
 * are must have the same DZ_TEE_POOL_BYTES.
 *
 * An instance told to end (its last session closed) turns its write locks into read locks:
 * those granules are on their way back, and a core that needs them waits for them instead of
 * refusing an open that follows a close.
 */
#ifndef TSIM_POOL_H
#define TSIM_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one granule: the unit of the pool (instance costs are whole pages). */
#define TSIM_POOL_GRANULE 4096u
/* Lock-space offset of granule 0 (bytes 0 and 1 are the mutex and the attached cores). */
#define TSIM_POOL_BASE 64u

/* A core's attachment to the pool file. */
struct tsim_pool {
    int fd;            /* holds the read lock on byte 1 while attached */
    uint64_t granules; /* the pool's size in granules */
    char path[4096];   /* the pool file, for messages */
};

/* The granules one instance holds: ranges locked through its own open file description. */
struct tsim_pool_hold {
    int fd; /* -1: holds nothing */
    size_t n, cap;
    struct tsim_pool_range {
        uint64_t first, count; /* granules */
    } * ranges;
};

/* What a take that failed saw of the pool (bytes). */
struct tsim_pool_census {
    uint64_t free;   /* held by nobody */
    uint64_t ending; /* held by instances told to end */
};

/*
 * tsim_pool_attach() - Open the pool file @path for a pool of @bytes (rounded down to
 * granules) and join the cores attached to it.
 * @file_bytes: on -EBUSY, the size the attached cores use.
 * Return: 0; -EBUSY when attached cores use another size; -EPERM when @path is not a regular
 * file of this user (a symlink counts as not); another -errno when it cannot be opened.
 */
int tsim_pool_attach(struct tsim_pool *p, const char *path, uint64_t bytes, uint64_t *file_bytes);

/* Initializes @h to hold nothing. */
void tsim_pool_hold_init(struct tsim_pool_hold *h);

/*
 * tsim_pool_take() - Take @bytes (rounded up to granules) into @h, which must hold nothing:
 * all of them or none.
 * @c: when the bytes do not fit, what was free and what is being given back.
 * Return: 1 if taken; 0 if they do not fit; -errno on a failure of the lock calls.
 */
int tsim_pool_take(struct tsim_pool *p, uint64_t bytes, struct tsim_pool_hold *h,
                   struct tsim_pool_census *c);

/* Marks the granules of @h as on their way back (its instance was told to end). */
void tsim_pool_ending(struct tsim_pool_hold *h);

/* Gives back every granule of @h (its instance's process has ended). */
void tsim_pool_release(struct tsim_pool_hold *h);

#endif
