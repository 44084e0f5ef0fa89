/*
 * bench_tee.h - bench_dnn's measurements through host/pnet.c, the path `darknetp classifier`
 * takes, with layers in the (simulated) TEE: one partition per run (`tee`), and a partition
 * paired iteration by iteration with the run without TEE in one process (`tee-pair`).
 */
#ifndef TOOLS_BENCH_BENCH_TEE_H
#define TOOLS_BENCH_BENCH_TEE_H

#include <stdbool.h>

#include "dnn/dnn.h"

/* The network of one measurement and its partition. */
struct bench_tee_case {
    const char *cfg;
    int batch;       /* images per step */
    int first, last; /* layers in the TEE; -1, -1: none (pnet's own path without TEE) */
    /* tee-pair's side A: layers in the TEE there, -1, -1 (the default) for none. A segment
     * of a few microseconds' work (the softmax and the cost) makes A pay a call, so that
     * B's ratio to it is the rest of B's segment without the price of the call itself. */
    int base_first, base_last;
    bool train;                     /* training steps, else inference */
    const struct dnn_parallel *par; /* normal-world threads, NULL: the calling thread */
};

/*
 * bench_tee_run - @warmup untimed steps, then @iters timed ones: one BENCH line with wall
 * seconds and CPU seconds (this process plus the simulated TEE's) per step. Returns 0, or 1
 * after a `FAIL <message>` line when the partition cannot open (e.g. over TA_DATA_SIZE).
 */
int bench_tee_run(const struct bench_tee_case *c, long iters, long warmup);

/*
 * bench_tee_pair - the partition of @c (B) and the same network without TEE (A, FIRST = LAST
 * = -1), or with @c's base_first..base_last in the TEE, open side by side in this process; @warmup
 * steps of each, then @pairs pairs of steps in the order A B, B A, A B, ..., each timed step after
 * BENCH_SETTLE (default 1) untimed steps of its own side. Prints one `PAIR i order a_wall a_cpu
 * b_wall b_cpu b_tee` line per pair (seconds of each step, CPU of this process plus the TEE's;
 * b_tee: the TEE processes' share of b_cpu), the per-step medians of each side as `BENCH pair/none`
 * and `BENCH pair/tee` lines, and for each clock `RATIO cpu|wall median min max q1 q3 pairs`: B's
 * time over A's within each pair. Returns 0, or 1 after a FAIL line as bench_tee_run.
 */
int bench_tee_pair(const struct bench_tee_case *c, long pairs, long warmup);

#endif
