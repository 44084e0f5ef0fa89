/*
 * bench_util.c - clocks, the output line, the model and the synthetic batch of bench_dnn
 * (bench_util.h).
 */
#include "tools/bench/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "darknet/error.h"
#include "dnn/dnn.h"

static double seconds_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_wall_now(void)
{
    return seconds_of(CLOCK_MONOTONIC);
}

double bench_cpu_now(void)
{
    return seconds_of(CLOCK_THREAD_CPUTIME_ID);
}

struct bench_clock2 bench_clock2_now(void)
{
    return (struct bench_clock2){bench_wall_now(), bench_cpu_now()};
}

void bench_emit(const char *id, struct bench_clock2 t0, struct bench_clock2 t1, long n, double work,
                const char *unit, const char *label)
{
    printf("BENCH %s %.9g %.9g %.9g %s %s\n", id, (t1.wall - t0.wall) / (double)n,
           (t1.cpu - t0.cpu) / (double)n, work, unit, label ? label : "");
    fflush(stdout);
}

int bench_load_model(const char *cfg, int batch, struct dk_model *m)
{
    struct dk_error err = {{0}};
    if (dk_parse_network(cfg, m, &err) != 0) {
        fprintf(stderr, "bench_dnn: %s\n", err.msg);
        return -1;
    }
    m->net.batch = batch;
    m->net.subdivisions = 1;
    m->cfg_batch = batch;
    return 0;
}

int bench_batch_make(struct bench_batch *d, size_t batch, size_t inputs, size_t classes)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, BENCH_SEED ^ 0xBE7Cull);
    d->x = malloc(batch * inputs * sizeof(float));
    d->y = calloc(batch * classes, sizeof(float));
    if (!d->x || !d->y) {
        fprintf(stderr, "bench_dnn: out of memory for a batch of %zu\n", batch);
        return -1;
    }
    for (size_t i = 0; i < batch * inputs; i++)
        d->x[i] = dnn_rng_uniform(&rng, 0, 1);
    for (size_t b = 0; b < batch; b++)
        d->y[b * classes + dnn_rng_u32(&rng) % classes] = 1;
    return 0;
}

void bench_batch_free(struct bench_batch *d)
{
    free(d->x);
    free(d->y);
    d->x = d->y = NULL;
}
