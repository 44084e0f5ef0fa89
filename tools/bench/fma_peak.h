/*
 * fma_peak.h - the widest multiply-add loop this CPU runs, so that every benchmark states
 * its GFLOP/s against a peak measured in the same run, by one definition.
 */
#ifndef TOOLS_BENCH_FMA_PEAK_H
#define TOOLS_BENCH_FMA_PEAK_H

/* A loop of independent multiply-add chains, more than the FMA latency times the issue
 * width, so it runs at the units' throughput. */
struct fma_peak_loop {
    /* Runs @iters iterations; returns a sum so that nothing is optimised away. */
    float (*run)(long iters);
    double flops_per_iter; /* two per lane per chain */
    const char *what;      /* e.g. "AVX2 FMA" */
};

/* The widest loop this CPU has: AVX-512 FMA, AVX2 FMA, or a 4-lane multiply then add. */
struct fma_peak_loop fma_peak_select(void);

#endif
