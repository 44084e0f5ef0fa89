/*
 * gemm_bench.c - GFLOP/s of dnn_gemm's kernels beside the previous gemm and the CPU's
 * measured multiply-add peak, in one run (`make bench-gemm`; not part of `make test`).
 *
 * Shapes: 512 x 512 x 512 in each transpose case, then the products of LeNet (cfg/
 * fashion_lenet.cfg, batch 100) and of a VGG-7 for CIFAR-10 (32x32x3; 3x3 convolutions
 * 64, 64, pool, 128, 128, pool, 256, 256, pool; a 4096 -> 256 connected layer; batch 1 for
 * the convolutions) forward and backward, with the transposes the layers use. The peak is a
 * loop of independent vector FMAs of the widest vector this CPU has, on one thread.
 * Each figure is the best of many samples of about 10 ms (the peak: 4 ms): the machine may be
 * shared, and a short sample is more often one that had the core to itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnn/dnn_internal.h"
#include "tools/bench/fma_peak.h"

void gemm_old(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Flops per second of the widest multiply-add this CPU runs; *what names it. */
static double measure_peak(const char **what)
{
    const struct fma_peak_loop loop = fma_peak_select();
    *what = loop.what;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 60; rep++) {
        const long iters = 1000 * 1000;
        const double t0 = now_s();
        sink += loop.run(iters);
        const double t = now_s() - t0;
        const double f = loop.flops_per_iter * (double)iters / t;
        if (f > best)
            best = f;
    }
    (void)sink;
    return best;
}

typedef void (*gemm_fn)(int kernel, bool ta, bool tb, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, float *c, int ldc);

static void run_old(int kernel, bool ta, bool tb, int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc)
{
    (void)kernel;
    gemm_old(ta, tb, m, n, k, 1, a, lda, b, ldb, 1, c, ldc);
}

static void run_new(int kernel, bool ta, bool tb, int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc)
{
    dnn_gemm_with((enum dnn_gemm_kernel)kernel, ta, tb, m, n, k, 1, a, lda, b, ldb, 1, c, ldc);
}

/* C stored transposed: c holds C^T, n rows of ldc = m floats (time_gemm passes n). */
static void run_tc(int kernel, bool ta, bool tb, int m, int n, int k, const float *a, int lda,
                   const float *b, int ldb, float *c, int ldc)
{
    (void)kernel;
    (void)ldc;
    dnn_gemm_par_tc(NULL, ta, tb, m, n, k, 1, a, lda, b, ldb, 1, c, m);
}

/* Best GFLOP/s of fn over many samples of about 10 ms: the machine is shared, and a short
 * sample is more often one that had the core to itself. */
static double time_gemm(gemm_fn fn, int kernel, bool ta, bool tb, int m, int n, int k,
                        const float *a, const float *b, float *c)
{
    const int lda = ta ? m : k, ldb = tb ? k : n;
    const double flops = 2.0 * m * n * k;
    int reps = 1;
    double best = 0;
    for (int round = 0; round < 40; round++) {
        const double t0 = now_s();
        for (int r = 0; r < reps; r++)
            fn(kernel, ta, tb, m, n, k, a, lda, b, ldb, c, n);
        const double t = now_s() - t0;
        const double g = flops * reps / t * 1e-9;
        if (g > best)
            best = g;
        if (round < 3 && t < 0.005)
            reps = (int)(reps * 0.01 / (t > 1e-7 ? t : 1e-7)) + 1;
    }
    return best;
}

struct shape {
    const char *name;
    bool ta, tb;
    int m, n, k;
};

static const struct shape shapes[] = {
    {"512^3 NN", false, false, 512, 512, 512},
    {"512^3 NT", false, true, 512, 512, 512},
    {"512^3 TN", true, false, 512, 512, 512},
    {"lenet conv1 fwd", false, false, 16, 784, 25},
    {"lenet conv2 fwd", false, false, 32, 196, 400},
    {"lenet conv2 dW", false, true, 32, 400, 196},
    {"lenet conv2 dX", true, false, 400, 196, 32},
    {"lenet fc1 fwd", false, true, 100, 128, 1568},
    {"lenet fc1 dW", true, false, 128, 1568, 100},
    {"lenet fc1 dX", false, false, 100, 1568, 128},
    {"vgg7 conv1 fwd", false, false, 64, 1024, 27},
    {"vgg7 conv2 fwd", false, false, 64, 1024, 576},
    {"vgg7 conv4 fwd", false, false, 128, 256, 1152},
    {"vgg7 conv6 fwd", false, false, 256, 64, 2304},
    {"vgg7 conv4 dW", false, true, 128, 1152, 256},
    {"vgg7 conv4 dX", true, false, 1152, 256, 128},
    {"vgg7 fc fwd", false, true, 1, 256, 4096},
};

int main(void)
{
    const char *what = "";
    const double peak = measure_peak(&what) * 1e-9;
    const enum dnn_gemm_kernel best = dnn_gemm_kernel_best();
    printf("measured peak (%s, 1 thread): %.1f GFLOP/s\n", what, peak);
    printf("dnn_gemm uses the %s kernel; GFLOP/s on 1 thread, old = gemm before the packed "
           "kernels\n",
           dnn_gemm_kernel_name(best));
    printf("%-18s %8s %8s %8s %8s %7s\n", "shape (m,n,k)", "old", "generic", "avx2", "avx512",
           "best/pk");
    const size_t cap = 4096 * 1024;
    float *a = malloc(cap * sizeof(float)), *b = malloc(cap * sizeof(float));
    float *c = malloc(cap * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < cap; i++) {
        a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
        b[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
        c[i] = 0;
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const struct shape *sh = &shapes[s];
        printf("%-18s %8.1f", sh->name,
               time_gemm(run_old, 0, sh->ta, sh->tb, sh->m, sh->n, sh->k, a, b, c));
        double at_best = 0;
        for (int kern = 0; kern < DNN_GEMM_KERNEL_COUNT; kern++) {
            if (!dnn_gemm_kernel_available((enum dnn_gemm_kernel)kern)) {
                printf(" %8s", "-");
                continue;
            }
            const double g = time_gemm(run_new, kern, sh->ta, sh->tb, sh->m, sh->n, sh->k, a, b, c);
            if (kern == (int)best)
                at_best = g;
            printf(" %8.1f", g);
        }
        printf(" %6.0f%%\n", 100 * at_best / peak);
    }
    /* A convolution's weight gradient dW(m,k) += delta(m,n) cols(k,n)^T, as the plain NT
     * product and as its transpose into dW stored transposed (dnn_gemm_par_tc), which
     * layer_convolutional.c uses when k > m; the same bits either way. */
    static const int dw[][3] = {{6, 75, 784},      {6, 150, 196},    {128, 27, 1024},
                                {128, 1152, 1024}, {256, 1152, 256}, {512, 4608, 64}};
    printf("\nweight gradient m x k, n terms   NT    C^T  C^T/NT\n");
    for (size_t s = 0; s < sizeof dw / sizeof dw[0]; s++) {
        const int m = dw[s][0], k = dw[s][1], n = dw[s][2];
        const double nt = time_gemm(run_new, (int)best, false, true, m, k, n, a, b, c);
        const double tc = time_gemm(run_tc, (int)best, false, true, k, m, n, b, a, c);
        printf("%4d x %4d, %4d              %6.1f %6.1f %6.2f\n", m, k, n, nt, tc, tc / nt);
    }
    free(c);
    free(b);
    free(a);
    return 0;
}
