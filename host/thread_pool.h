/*
 * thread_pool.h - a small pool of worker threads that lends itself to the engine as a
 * struct dnn_parallel (dnn/dnn.h). The engine stays free of pthreads: the TA has none.
 */
#ifndef HOST_THREAD_POOL_H
#define HOST_THREAD_POOL_H

#include <stddef.h>

#include "dnn/dnn.h"

struct dz_pool;

/* The machine's online cores (>= 1): the default of -threads. */
unsigned dz_online_cores(void);

/*
 * dz_pool_create - a pool that runs tasks on `threads` threads: the caller of dz_pool_run
 * and threads - 1 workers, started here (threads 0 or 1: none, every run is serial).
 * Returns NULL when a thread or memory cannot be had (errno set).
 */
struct dz_pool *dz_pool_create(unsigned threads);
/* Stops and joins the workers; must not race a dz_pool_run. NULL is a no-op. */
void dz_pool_destroy(struct dz_pool *pool);
/* Threads that run tasks (workers + the caller). */
unsigned dz_pool_threads(const struct dz_pool *pool);

/*
 * dz_pool_run - calls task(arg, i) once for every i in 0 .. n_tasks-1 and returns when all
 * have returned. The caller works too. One run at a time: a run started while another is
 * under way (from a task, or from another thread) runs its tasks serially on its caller.
 */
void dz_pool_run(struct dz_pool *pool, size_t n_tasks, void (*task)(void *arg, size_t i),
                 void *arg);

/* The pool as the engine's parallel-for ({0}: serial, when pool is NULL). */
struct dnn_parallel dz_pool_parallel(struct dz_pool *pool);

#endif
