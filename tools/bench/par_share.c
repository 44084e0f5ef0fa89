/*
 * par_share.c - how much of a training step the engine splits among threads, measured on
 * one thread so that the machine's other load cannot distort it (`make bench-par-share`).
 *
 *   par_share CFG BATCH ITERS [THREADS]
 *
 * The engine is lent a parallel-for that claims THREADS threads (default 2), so it takes the
 * very paths it takes with a real pool, but runs every task on the calling thread and adds up
 * the thread CPU time spent inside its runs. Of a step's CPU time T, P is spent in split
 * work and T - P in work no thread shares; with THREADS perfect threads a step would take
 * T - P + P / THREADS (Amdahl), so the best speed-up the splits allow is
 * T / (T - P + P / THREADS). Tasks are not all alike, though: each is timed too, and the
 * tasks of every run are laid out on THREADS threads as the pool hands them out (in order,
 * to the first free thread); a run lasts as long as its busiest thread, S the sum of those,
 * and T / (T - P + S) the speed-up the splits allow as cut. Input is synthetic (uniform
 * pixels, one-hot truths), data loading is left out (train loads on a background thread).
 * Prints one line: `cfg batch split_share bound_speedup threads scheduled_speedup`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Threads the greedy schedule below follows at most. */
#define SHARE_MAX_THREADS 256

/* The pretend pool: CPU seconds spent inside runs, counted once for nested runs; and what
 * those runs would take on `threads` threads that take the tasks in index order, each the
 * next task when it is free (host/thread_pool.c's ticket), from the tasks' own times: a run
 * takes as long as its busiest thread. */
struct share_clock {
    double inside;
    double scheduled;
    unsigned threads;
    int depth;
};

static void timed_run(void *ctx, size_t n, void (*task)(void *arg, size_t i), void *arg)
{
    struct share_clock *c = ctx;
    if (c->depth > 0) { /* nested: part of the enclosing task's time */
        for (size_t i = 0; i < n; i++)
            task(arg, i);
        return;
    }
    double busy[SHARE_MAX_THREADS] = {0};
    c->depth++;
    for (size_t i = 0; i < n; i++) {
        const double t0 = cpu_now();
        task(arg, i);
        const double t = cpu_now() - t0;
        unsigned first_free = 0;
        for (unsigned k = 1; k < c->threads; k++)
            if (busy[k] < busy[first_free])
                first_free = k;
        busy[first_free] += t;
        c->inside += t;
    }
    c->depth--;
    double longest = 0;
    for (unsigned k = 0; k < c->threads; k++)
        longest = busy[k] > longest ? busy[k] : longest;
    c->scheduled += longest;
}

static long arg_long(const char *s, long lo, long hi)
{
    char *end = NULL;
    const long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "par_share: '%s' is not a number in [%ld, %ld]\n", s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: par_share CFG BATCH ITERS [THREADS]\n");
        return 2;
    }
    const int batch = (int)arg_long(argv[2], 1, 4096);
    const long iters = arg_long(argv[3], 1, 1000000);
    const unsigned threads = argc == 5 ? (unsigned)arg_long(argv[4], 2, SHARE_MAX_THREADS) : 2;
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct dnn_network *net = NULL;
    float *x = NULL, *y = NULL;
    int rc = 1;
    if (dk_parse_network(argv[1], &m, &err) != 0) {
        fprintf(stderr, "par_share: %s\n", err.msg);
        goto out;
    }
    m.net.batch = batch;
    m.net.subdivisions = 1;
    m.cfg_batch = batch;
    enum dnn_status st = dnn_network_create(&net, &m.net, m.specs, m.n, true, 1);
    struct share_clock clock = {.threads = threads};
    const struct dnn_parallel par = {.run = timed_run, .ctx = &clock, .threads = threads};
    if (st == DNN_OK)
        st = dnn_network_set_parallel(net, &par);
    if (st == DNN_OK) /* as darknetp's normal world */
        st = dnn_network_set_lowering(net, batch, DNN_LOWER_BYTES_DEFAULT);
    if (st == DNN_OK)
        st = dnn_network_set_column_cache(net, DNN_COL_CACHE_BYTES_DEFAULT);
    if (st != DNN_OK) {
        fprintf(stderr, "par_share: %s: %s\n", argv[1], dnn_status_str(st));
        goto out;
    }
    x = malloc((size_t)batch * net->inputs * sizeof(float));
    y = calloc((size_t)batch * net->truths, sizeof(float));
    if (!x || !y) {
        fprintf(stderr, "par_share: out of memory for a batch of %d\n", batch);
        goto out;
    }
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)batch * net->inputs; i++)
        x[i] = dnn_rng_uniform(&rng, 0, 1);
    for (size_t b = 0; b < (size_t)batch; b++)
        y[b * net->truths + dnn_rng_u32(&rng) % net->truths] = 1;
    dnn_network_train_batch(net, x, y); /* warm-up: first touches of every buffer */
    clock.inside = clock.scheduled = 0;
    const double t0 = cpu_now();
    for (long i = 0; i < iters; i++)
        dnn_network_train_batch(net, x, y);
    const double total = cpu_now() - t0;
    const double share = total > 0 ? clock.inside / total : 0;
    const double serial = total - clock.inside;
    printf("%s %d %.4f %.3f %u %.3f\n", argv[1], batch, share,
           1.0 / (1.0 - share + share / (double)threads), threads,
           serial + clock.scheduled > 0 ? total / (serial + clock.scheduled) : 0);
    rc = 0;
out:
    free(x);
    free(y);
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}
