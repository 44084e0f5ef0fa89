/*
 * gemm_bench.c - GFLOP/s of dnn_gemm beside the previous dnn_gemm (gemm_prev.c, commit
 * 9c8bcd0), the gemm before the packed kernels (gemm_old.c) and the CPU's measured
 * multiply-add peak, in one run (`make bench-gemm`; not part of `make test`).
 *
 * Shapes: 512 x 512 x 512 in each transpose case; the products of VGG-7 (cfg/
 * vgg-7_cifar10.cfg, one image per product) and LeNet (the fixture's mnist_lenet.cfg, batch
 * 100) forward and backward with the transposes the layers use, the weight gradients also
 * as layer_convolutional.c runs them (C^T: dnn_gemm_par_tc); a batch of one through
 * AlexNet's and VGG-16's connected layers. beta is the layer's: 0 for forward outputs and a
 * convolution's column workspace, else 1. All on one thread, with the kernel dnn_gemm picks.
 *
 * The machine may be shared, so each shape is timed in rounds: every round takes one sample
 * of about 10 ms (CPU time of this thread) of each side, in an order that alternates from
 * round to round; a figure is the median over the rounds with its range, and new/prev is the
 * median of each round's ratio. Arguments: [rounds] (default 7) [filter] (only shapes whose
 * name contains it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnn/dnn_internal.h"
#include "tools/bench/fma_peak.h"

void gemm_old(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);
void gemm_prev_with(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
void gemm_prev_with_tc(enum dnn_gemm_kernel kernel, bool ta, bool tb, int m, int n, int k,
                       float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc);

#define MAX_ROUNDS 31

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

/* One product: C(m, n) = op(A)(m, k) op(B)(k, n) + beta C, C stored transposed when tc;
 * beta as the layer passes it (0: a forward output or a convolution's column workspace). */
struct shape {
    const char *name;
    bool ta, tb, tc;
    int m, n, k;
    float beta;
};

enum side { OLD, PREV, NEW, SIDES };

static void run(enum side side, const struct shape *s, const float *a, const float *b, float *c)
{
    const enum dnn_gemm_kernel kern = dnn_gemm_kernel_best();
    const int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    const int ldc = s->tc ? s->m : s->n;
    switch (side) {
    case OLD: /* no C^T form: C by rows, the same terms */
        gemm_old(s->ta, s->tb, s->m, s->n, s->k, 1, a, lda, b, ldb, s->beta, c, s->n);
        break;
    case PREV:
        if (s->tc)
            gemm_prev_with_tc(kern, s->ta, s->tb, s->m, s->n, s->k, 1, a, lda, b, ldb, s->beta, c,
                              ldc);
        else
            gemm_prev_with(kern, s->ta, s->tb, s->m, s->n, s->k, 1, a, lda, b, ldb, s->beta, c,
                           ldc);
        break;
    default:
        if (s->tc)
            dnn_gemm_with_tc(kern, s->ta, s->tb, s->m, s->n, s->k, 1, a, lda, b, ldb, s->beta, c,
                             ldc);
        else
            dnn_gemm_with(kern, s->ta, s->tb, s->m, s->n, s->k, 1, a, lda, b, ldb, s->beta, c, ldc);
        break;
    }
}

/* GFLOP/s of one sample of reps calls. */
static double sample(enum side side, const struct shape *s, int reps, const float *a,
                     const float *b, float *c)
{
    const double t0 = now_s();
    for (int r = 0; r < reps; r++)
        run(side, s, a, b, c);
    const double t = now_s() - t0;
    return 2.0 * s->m * s->n * s->k * reps / (t > 1e-9 ? t : 1e-9) * 1e-9;
}

/* Calls per sample of about 10 ms, from a warm-up call and a first estimate. */
static int calibrate(enum side side, const struct shape *s, const float *a, const float *b,
                     float *c)
{
    run(side, s, a, b, c);
    const double g = sample(side, s, 1, a, b, c);
    const double per_call = 2.0 * s->m * s->n * s->k / (g * 1e9);
    const int reps = (int)(0.01 / per_call);
    return reps < 1 ? 1 : reps;
}

static int cmp_double(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median of v[0..n-1] (sorted in place); *lo and *hi get the range. */
static double median(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *lo = v[0];
    *hi = v[n - 1];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const struct shape shapes[] = {
    {"512^3", false, false, false, 512, 512, 512, 1},
    {"512^3", false, true, false, 512, 512, 512, 1},
    {"512^3", true, false, false, 512, 512, 512, 1},
    {"vgg7 conv1 fwd", false, false, false, 128, 1024, 27, 0},
    {"vgg7 conv1 dW", false, true, false, 128, 27, 1024, 1},
    {"vgg7 conv2 fwd", false, false, false, 128, 1024, 1152, 0},
    {"vgg7 conv2 dW", false, true, false, 128, 1152, 1024, 1},
    {"vgg7 conv2 dW C^T", false, true, true, 1152, 128, 1024, 1},
    {"vgg7 conv2 dX", true, false, false, 1152, 1024, 128, 0},
    {"vgg7 conv4 fwd", false, false, false, 256, 256, 1152, 0},
    {"vgg7 conv4 dW", false, true, false, 256, 1152, 256, 1},
    {"vgg7 conv4 dW C^T", false, true, true, 1152, 256, 256, 1},
    {"vgg7 conv4 dX", true, false, false, 1152, 256, 256, 0},
    {"vgg7 conv7 fwd", false, false, false, 512, 64, 4608, 0},
    {"vgg7 conv7 dW", false, true, false, 512, 4608, 64, 1},
    {"vgg7 conv7 dW C^T", false, true, true, 4608, 512, 64, 1},
    {"lenet conv1 fwd", false, false, false, 6, 784, 75, 0},
    {"lenet conv1 dW", false, true, false, 6, 75, 784, 1},
    {"lenet conv1 dW C^T", false, true, true, 75, 6, 784, 1},
    {"lenet conv2 fwd", false, false, false, 6, 196, 150, 0},
    {"lenet conv2 dW", false, true, false, 6, 150, 196, 1},
    {"lenet conv2 dW C^T", false, true, true, 150, 6, 196, 1},
    {"lenet conv2 dX", true, false, false, 150, 196, 6, 0},
    {"lenet fc1 fwd", false, true, false, 100, 120, 294, 0},
    {"lenet fc1 dW", true, false, false, 120, 294, 100, 1},
    {"lenet fc1 dX", false, false, false, 100, 294, 120, 1},
    {"lenet fc2 fwd", false, true, false, 100, 84, 120, 0},
    {"lenet fc2 dW", true, false, false, 84, 120, 100, 1},
    {"lenet fc3 fwd", false, true, false, 100, 10, 84, 0},
    {"lenet fc3 dW", true, false, false, 10, 84, 100, 1},
    {"lenet fc3 dX", false, false, false, 100, 84, 10, 1},
    {"alexnet fc6 b1 fwd", false, true, false, 1, 4096, 9216, 0},
    {"vgg16 fc7 b1 fwd", false, true, false, 1, 4096, 4096, 0},
    {"vgg7 fc b1 fwd", false, true, false, 1, 256, 4096, 0},
    {"alexnet fc6 b1 dX", false, false, false, 1, 9216, 4096, 1},
};

static float *filled(size_t n, unsigned mult)
{
    float *x = malloc(n * sizeof(float));
    if (x)
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i * mult) % 1000) * 1e-3f - 0.5f;
    return x;
}

static const char *op_name(const struct shape *s)
{
    static const char *const names[] = {"NN", "NT", "TN", "TT"};
    return names[(s->ta ? 2 : 0) + (s->tb ? 1 : 0)];
}

/* Times one shape in `rounds` alternated rounds and prints its line. */
static int bench_shape(const struct shape *s, int rounds, double peak)
{
    const size_t na = (size_t)s->m * (size_t)s->k, nb = (size_t)s->k * (size_t)s->n;
    float *a = filled(na, 7919), *b = filled(nb, 104729);
    float *c = calloc((size_t)s->m * (size_t)s->n, sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        fprintf(stderr, "gemm_bench: out of memory\n");
        return -1;
    }
    double g[SIDES][MAX_ROUNDS], ratio[MAX_ROUNDS];
    int reps[SIDES];
    for (int side = 0; side < SIDES; side++)
        reps[side] = calibrate((enum side)side, s, a, b, c);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < SIDES; i++) {
            const int side = r % 2 ? SIDES - 1 - i : i;
            g[side][r] = sample((enum side)side, s, reps[side], a, b, c);
        }
        ratio[r] = g[NEW][r] / g[PREV][r];
    }
    double lo[SIDES], hi[SIDES], med[SIDES], rlo, rhi;
    for (int side = 0; side < SIDES; side++)
        med[side] = median(g[side], rounds, &lo[side], &hi[side]);
    const double rmed = median(ratio, rounds, &rlo, &rhi);
    char dims[40];
    snprintf(dims, sizeof dims, "%s %dx%dx%d", op_name(s), s->m, s->n, s->k);
    printf("%-19s %-17s %6.1f %6.1f [%5.1f-%5.1f] %6.1f [%5.1f-%5.1f] %5.2f [%4.2f-%4.2f] %5.2f\n",
           s->name, dims, med[OLD], med[PREV], lo[PREV], hi[PREV], med[NEW], lo[NEW], hi[NEW], rmed,
           rlo, rhi, med[NEW] / peak);
    fflush(stdout);
    free(c);
    free(b);
    free(a);
    return 0;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 7;
    const char *filter = argc > 2 ? argv[2] : "";
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: gemm_bench [rounds 1..%d] [shape filter]\n", MAX_ROUNDS);
        return 2;
    }
    const char *what = "";
    const double peak = measure_peak(&what) * 1e-9;
    printf("measured peak (%s, 1 thread): %.1f GFLOP/s\n", what, peak);
    printf("dnn_gemm uses the %s kernel; GFLOP/s on 1 thread, medians of %d alternated rounds "
           "[range]\nold = before the packed kernels, prev = commit 9c8bcd0, new = this tree\n",
           dnn_gemm_kernel_name(dnn_gemm_kernel_best()), rounds);
    printf("%-19s %-17s %6s %6s %13s %6s %13s %5s %11s %5s\n", "shape", "op m x n x k", "old",
           "prev", "", "new", "", "new/prev", "", "/peak");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strstr(shapes[i].name, filter) && bench_shape(&shapes[i], rounds, peak) != 0)
            return 1;
    return 0;
}
