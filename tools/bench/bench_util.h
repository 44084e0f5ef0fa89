/*
 * bench_util.h - what the commands of bench_dnn share: two clocks, the output line, the model
 * at the bench's batch and a synthetic batch. Normal world only (files, the C library's time).
 */
#ifndef TOOLS_BENCH_BENCH_UTIL_H
#define TOOLS_BENCH_BENCH_UTIL_H

#include <stddef.h>

#include "darknet/parse_network.h"

#define BENCH_SEED 1

/* Seconds on the monotonic clock. */
double bench_wall_now(void);
/* CPU seconds of the calling thread. */
double bench_cpu_now(void);

/* A stopwatch over both clocks: wall and CPU seconds. */
struct bench_clock2 {
    double wall, cpu;
};

struct bench_clock2 bench_clock2_now(void);

/*
 * bench_emit - prints `BENCH <id> <wall_s> <cpu_s> <work> <unit> <label>`: the seconds from t0
 * to t1 divided by @n (per iteration or call), the @work of one, its @unit (images, flop...),
 * a free-text label (NULL: empty). Flushes, so that a driver reads each line as it comes.
 */
void bench_emit(const char *id, struct bench_clock2 t0, struct bench_clock2 t1, long n, double work,
                const char *unit, const char *label);

/* The cfg with its batch replaced by @batch images per forward, one forward per update.
 * Returns 0, or -1 with the parser's message on stderr; dk_model_free(m) either way. */
int bench_load_model(const char *cfg, int batch, struct dk_model *m);

/* Synthetic batch: pixels uniform in [0,1), truths one-hot over the classes; fixed seed. */
struct bench_batch {
    float *x; /* (batch, inputs) */
    float *y; /* (batch, classes) */
};

/* Allocates and fills @d. Returns 0, or -1 on a failed malloc (said on stderr); either way
 * bench_batch_free releases what was taken. */
int bench_batch_make(struct bench_batch *d, size_t batch, size_t inputs, size_t classes);
void bench_batch_free(struct bench_batch *d);

#endif
