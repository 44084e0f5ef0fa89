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
#include <stdatomic.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once), cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_nested_run),      cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_parallel_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
