/*
 * thread_pool.c - fork-join worker threads for the engine's parallel loops (thread_pool.h).
 *
 * A run publishes its job under the lock, bumps the generation and wakes the workers; every
 * thread, the caller included, then takes task indexes from one atomic ticket until none is
 * left, and the caller returns when all tasks are done. The ticket holds the generation
 * beside the next index, so a worker that wakes late (the machine is shared: it often does)
 * takes nothing of a later run with an earlier run's job, and the caller never waits for a
 * worker that has not started: it does the work itself.
 */
#include "host/thread_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct dz_pool {
    pthread_mutex_t lock;
    pthread_cond_t start;     /* the generation moved on, or stop */
    pthread_cond_t done_cv;   /* every task of the run is done */
    pthread_mutex_t run_lock; /* held by the run under way */
    pthread_t *workers;       /* (n_workers) */
    unsigned n_workers;
    bool stop;
    uint32_t generation; /* runs started (mod 2^32) */
    /* The job of this generation, set under lock before the generation moves. */
    void (*task)(void *arg, size_t i);
    void *arg;
    size_t n_tasks;
    _Atomic uint64_t ticket; /* generation << 32 | the next task index to hand out */
    atomic_size_t done;      /* tasks of this generation done */
    atomic_bool stopping;    /* stop, for workers that poll (wait_spinning) */
    bool spins_first;        /* workers poll before they sleep: a core for every thread */
};

unsigned dz_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

/* Takes and runs tasks of run `gen` until none is left or another run has begun. */
static void drain(struct dz_pool *p, uint32_t gen, void (*task)(void *, size_t), void *arg,
                  size_t n)
{
    uint64_t v = atomic_load(&p->ticket);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen || (uint32_t)v >= n)
            return;
        if (!atomic_compare_exchange_weak(&p->ticket, &v, v + 1))
            continue; /* v now holds the current ticket */
        task(arg, (uint32_t)v);
        if (atomic_fetch_add(&p->done, 1) + 1 == n) {
            /* Under the lock: the caller tests done under it before it waits. */
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->lock);
        }
        v = atomic_load(&p->ticket);
    }
}

/*
 * How long an idle worker polls for the next run before it sleeps, in ns. A training step
 * starts a run every 50-500 us (LeNet: about 200 runs a step), and a virtual CPU that went
 * to sleep takes about as long to wake: with sleeping workers, 2 threads trained LeNet at
 * 0.92x the speed of one (bench_dnn, alternated); polling first, 1.1-1.5x. Only while every
 * thread has a core of its own (spins_first): otherwise the poll takes the core from the
 * thread that would start the run.
 */
#define POOL_SPIN_NS 200000

/* Pause i of a poll that started at t0: true once POOL_SPIN_NS have passed (the clock is read
 * every 64 pauses: a few us). */
static bool spin_expired(unsigned i, const struct timespec *t0)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
    if ((i & 63) != 63)
        return false;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec) > POOL_SPIN_NS;
}

/* Polls until a run after generation `seen` is handed out, the pool stops, or POOL_SPIN_NS
 * pass; the caller then sleeps on the condition variable as before. */
static void wait_spinning(struct dz_pool *p, uint32_t seen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0;; i++) {
        if ((uint32_t)(atomic_load_explicit(&p->ticket, memory_order_acquire) >> 32) != seen ||
            atomic_load_explicit(&p->stopping, memory_order_acquire) || spin_expired(i, &t0))
            return;
    }
}

/* Polls until the run's n tasks are done or POOL_SPIN_NS pass: the caller, done with its own
 * share, waits for a worker's last task. Asleep on the condition variable, it took a wake-up
 * (tens of us on a virtual CPU) after every run whose last task a worker ran, some 300 runs
 * of a VGG-7 step; only while every thread has a core of its own (spins_first). */
static void wait_done_spinning(struct dz_pool *p, size_t n)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0;; i++)
        if (atomic_load_explicit(&p->done, memory_order_acquire) >= n || spin_expired(i, &t0))
            return;
}

static void *worker_main(void *arg)
{
    struct dz_pool *p = arg;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->spins_first && !p->stop && p->generation == seen) {
            pthread_mutex_unlock(&p->lock);
            wait_spinning(p, seen);
            pthread_mutex_lock(&p->lock);
        }
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->start, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        void (*task)(void *, size_t) = p->task;
        void *task_arg = p->arg;
        size_t n = p->n_tasks;
        pthread_mutex_unlock(&p->lock);
        drain(p, seen, task, task_arg, n);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct dz_pool *dz_pool_create(unsigned threads)
{
    struct dz_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    const unsigned want = threads > 1 ? threads - 1 : 0;
    if (want && !(p->workers = calloc(want, sizeof *p->workers))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->stopping, false);
    p->spins_first = threads > 1 && threads <= dz_online_cores();
    /* Workers block every signal: a process-directed SIGINT or SIGTERM must reach the thread
     * that blocks it around a checkpoint save (host/classifier.c), not run its handler on a
     * worker mid-save. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (; p->n_workers < want; p->n_workers++)
        if ((rc = pthread_create(&p->workers[p->n_workers], NULL, worker_main, p)) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        dz_pool_destroy(p);
        errno = rc;
        return NULL;
    }
    return p;
}

void dz_pool_destroy(struct dz_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->start);
    pthread_mutex_destroy(&p->run_lock);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

unsigned dz_pool_threads(const struct dz_pool *p)
{
    return p ? p->n_workers + 1 : 1;
}

void dz_pool_run(struct dz_pool *p, size_t n_tasks, void (*task)(void *arg, size_t i), void *arg)
{
    /* A nested run (from a task) or a second caller finds run_lock taken: it must not wait
     * for workers that may be busy with its own parent, so it works alone. */
    if (!p || p->n_workers == 0 || n_tasks < 2 || n_tasks > UINT32_MAX ||
        pthread_mutex_trylock(&p->run_lock) != 0) {
        for (size_t i = 0; i < n_tasks; i++)
            task(arg, i);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->task = task;
    p->arg = arg;
    p->n_tasks = n_tasks;
    const uint32_t gen = ++p->generation;
    atomic_store(&p->done, 0);
    atomic_store(&p->ticket, (uint64_t)gen << 32);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);

    drain(p, gen, task, arg, n_tasks);
    if (p->spins_first)
        wait_done_spinning(p, n_tasks);
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->done) < n_tasks)
        pthread_cond_wait(&p->done_cv, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->run_lock);
}

static void pool_parallel_run(void *ctx, size_t n_tasks, void (*task)(void *arg, size_t i),
                              void *arg)
{
    dz_pool_run(ctx, n_tasks, task, arg);
}

struct dnn_parallel dz_pool_parallel(struct dz_pool *p)
{
    if (!p || p->n_workers == 0)
        return (struct dnn_parallel){0};
    return (struct dnn_parallel){.run = pool_parallel_run, .ctx = p, .threads = p->n_workers + 1};
}
