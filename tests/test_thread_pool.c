/*
 * test_thread_pool.c - host/thread_pool.c: every task runs exactly once, whatever the
 * thread count; empty, single, nested and concurrent runs; clean shutdown. Built on its own
 * under ThreadSanitizer by `make test-tsan-pool`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>

#include "host/thread_pool.h"

#define MANY 1000

struct counts {
    atomic_int hits[MANY];
    size_t n;
};

static void count_task(void *arg, size_t i)
{
    struct counts *c = arg;
    assert_true(i < c->n);
    atomic_fetch_add(&c->hits[i], 1);
}

static void run_and_check(struct dz_pool *pool, size_t n)
{
    struct counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->n = n;
    dz_pool_run(pool, n, count_task, c);
    for (size_t i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&c->hits[i]), i < n ? 1 : 0);
    free(c);
}

static void test_every_task_once(void **state)
{
    (void)state;
    const unsigned threads[] = {1, 2, 3, 7};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        struct dz_pool *pool = dz_pool_create(threads[t]);
        assert_non_null(pool);
        assert_int_equal(dz_pool_threads(pool), threads[t]);
        /* Many runs in a row: a worker late for one run must not miss or repeat the next. */
        for (int rep = 0; rep < 200; rep++)
            run_and_check(pool, (size_t)(rep % 17) + 2);
        run_and_check(pool, MANY);
        dz_pool_destroy(pool);
    }
}

static void test_empty_and_single(void **state)
{
    (void)state;
    struct dz_pool *pool = dz_pool_create(3);
    assert_non_null(pool);
    run_and_check(pool, 0);
    run_and_check(pool, 1);
    dz_pool_destroy(pool);
    /* No pool at all: the caller runs the tasks. */
    run_and_check(NULL, 5);
    assert_int_equal(dz_pool_threads(NULL), 1);
}

struct nest {
    struct dz_pool *pool;
    struct counts inner[8];
};

static void outer_task(void *arg, size_t i)
{
    struct nest *n = arg;
    n->inner[i].n = 50;
    /* A run from inside a task: serial on this thread, but complete. */
    dz_pool_run(n->pool, 50, count_task, &n->inner[i]);
}

static void test_nested_run(void **state)
{
    (void)state;
    struct dz_pool *pool = dz_pool_create(3);
    assert_non_null(pool);
    struct nest *n = calloc(1, sizeof *n);
    assert_non_null(n);
    n->pool = pool;
    dz_pool_run(pool, 8, outer_task, n);
    for (size_t i = 0; i < 8; i++)
        for (size_t j = 0; j < MANY; j++)
            assert_int_equal(atomic_load(&n->inner[i].hits[j]), j < 50 ? 1 : 0);
    free(n);
    dz_pool_destroy(pool);
}

struct caller {
    struct dz_pool *pool;
    struct counts c;
};

static void *caller_main(void *arg)
{
    struct caller *k = arg;
    for (int rep = 0; rep < 50; rep++)
        dz_pool_run(k->pool, k->c.n, count_task, &k->c);
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    struct dz_pool *pool = dz_pool_create(2);
    assert_non_null(pool);
    struct caller *k = calloc(2, sizeof *k);
    assert_non_null(k);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        k[i].pool = pool;
        k[i].c.n = 40;
        assert_int_equal(pthread_create(&th[i], NULL, caller_main, &k[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < MANY; j++)
            assert_int_equal(atomic_load(&k[i].c.hits[j]), j < 40 ? 50 : 0);
    free(k);
    dz_pool_destroy(pool);
}

static void test_parallel_hook(void **state)
{
    (void)state;
    struct dz_pool *pool = dz_pool_create(2);
    assert_non_null(pool);
    struct dnn_parallel par = dz_pool_parallel(pool);
    assert_non_null(par.run);
    assert_int_equal(par.threads, 2);
    struct counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->n = 9;
    par.run(par.ctx, 9, count_task, c);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(atomic_load(&c->hits[i]), 1);
    free(c);
    dz_pool_destroy(pool);
    /* One thread: the engine is told to stay serial. */
    struct dz_pool *one = dz_pool_create(1);
    assert_non_null(one);
    assert_null(dz_pool_parallel(one).run);
    dz_pool_destroy(one);
    assert_true(dz_online_cores() >= 1);
    /* Shut down without ever running. */
    dz_pool_destroy(dz_pool_create(7));
}

struct meet {
    atomic_int arrived;
    atomic_int sigint_blocked; /* tasks whose thread blocks SIGINT */
};

/* Both tasks wait for each other, so each runs on a thread of its own: the caller and the
 * worker. */
static void meet_task(void *arg, size_t i)
{
    (void)i;
    struct meet *m = arg;
    atomic_fetch_add(&m->arrived, 1);
    while (atomic_load(&m->arrived) < 2)
        sched_yield();
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    if (sigismember(&mask, SIGINT) == 1)
        atomic_fetch_add(&m->sigint_blocked, 1);
}

/* Workers leave SIGINT and SIGTERM to the threads that handle and block them. */
static void test_workers_block_signals(void **state)
{
    (void)state;
    struct dz_pool *pool = dz_pool_create(2);
    assert_non_null(pool);
    struct meet m;
    atomic_init(&m.arrived, 0);
    atomic_init(&m.sigint_blocked, 0);
    dz_pool_run(pool, 2, meet_task, &m);
    /* The caller does not block SIGINT; the worker does. */
    assert_int_equal(atomic_load(&m.sigint_blocked), 1);
    dz_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once), cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_nested_run),      cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_parallel_hook),   cmocka_unit_test(test_workers_block_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
