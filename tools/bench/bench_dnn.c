/*
 * bench_dnn.c - the darknetp side of `make bench` (tools/bench/bench.py drives it).
 *
 * One measurement per invocation, on synthetic input of the network's shape (uniform [0,1)
 * pixels, one-hot truths from a fixed seed), so that only compute is timed: building the
 * network, parsing the cfg and opening a TEE session happen before the clock starts.
 *
 *   bench_dnn train  CFG BATCH ITERS WARMUP          training images/s (whole network)
 *   bench_dnn infer  CFG BATCH ITERS WARMUP          inference images/s
 *   bench_dnn tee    CFG BATCH ITERS WARMUP FIRST LAST train|infer
 *                                                    the same through host/pnet.c, layers
 *                                                    FIRST..LAST in the (simulated) TEE;
 *                                                    FIRST = LAST = -1: no TEE, same code path
 *   bench_dnn tee-pair CFG BATCH PAIRS WARMUP FIRST LAST train|infer [A_FIRST A_LAST]
 *                                                    FIRST..LAST in the TEE against no TEE
 *                                                    (or A_FIRST..A_LAST in the TEE),
 *                                                    both in this process, steps alternated
 *                                                    A B, B A, ...; per-pair time ratios
 *                                                    (bench_tee.c says why pairs)
 *   bench_dnn threads-pair CFG BATCH PAIRS WARMUP    training on one thread against
 *                                                    BENCH_THREADS (>= 2), two networks in
 *                                                    this process, steps alternated A B,
 *                                                    B A, ...; per-pair wall ratios and
 *                                                    their median (`THREADS` line): slow
 *                                                    spells of a shared machine fall on
 *                                                    both sides of a pair
 *   bench_dnn layers CFG BATCH ITERS WARMUP          forward/backward time per layer
 *   bench_dnn gemm   CFG BATCH SECONDS               dnn_gemm on every shape the network's
 *                                                    training calls it with
 *   bench_dnn gemm-size TA TB M N K SECONDS          dnn_gemm on one shape
 *   bench_dnn peak   SECONDS                         the core's FMA peak, GFLOP/s
 *   bench_dnn spin   THREADS STEPS                   THREADS threads each run a busy loop of
 *                                                    STEPS steps: with THREADS = 1 against N,
 *                                                    the share of N cores the machine gave
 *
 * Output: one line per figure, `BENCH <id> <wall_s> <cpu_s> <work> <unit> [label]`: wall and
 * thread CPU seconds per iteration (or per call), the work one iteration does (images, flop
 * or steps) and a free-text label. CPU time is the figure the bench reports for one thread:
 * on a shared machine wall time also counts what other processes took from us. `tee` and
 * `tee-pair` count the CPU time of the whole process and of the simulated TEE's processes
 * (its core and TA instances); `tee-pair` adds `PAIR` and `RATIO` lines (bench_tee.h).
 *
 * Environment:
 *   BENCH_THREADS=N        train, infer, layers, tee and tee-pair run the normal world's
 *                          layers on N threads (host/thread_pool.c, as darknetp's -threads N;
 *                          results are the same for any N). Unset or 1: the calling thread
 *                          alone, no pool. With N > 1 the CPU column is still the calling
 *                          thread's (for tee: the whole process's): compare wall times.
 *   BENCH_LOWER_IMAGES=N   convolutions lower up to N images per product; default the whole
 *                          batch (dnn_network_set_lowering), as darknetp's normal world does.
 *   BENCH_PIN=0            tee and tee-pair with one normal-world thread bind the process
 *                          to the CPU it starts on (tools/bench/bench_tee.c says why); 0
 *                          leaves it where the scheduler puts it.
 *   BENCH_SETTLE=N         tee-pair runs N untimed steps (0..4, default 1) of a side before
 *                          each of its timed steps (tools/bench/bench_tee.c says why); 0
 *                          alternates the timed steps alone.
 *   BENCH_COL_CACHE_BYTES=N  the budget training convolutions keep their forward pass's
 *                          columns in for the backward pass (dnn_network_set_column_cache);
 *                          default DNN_COL_CACHE_BYTES_DEFAULT as darknetp, 0: every image
 *                          lowered twice, darknet's way.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "dnn/conv_lower.h"
#include "dnn/conv_winograd.h"
#include "dnn/dnn_internal.h"
#include "host/thread_pool.h"
#include "tools/bench/bench_tee.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/fma_peak.h"

static long arg_long(const char *s, long lo, long hi)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_dnn: '%s' is not a number in [%ld, %ld]\n", s, lo, hi);
        exit(2);
    }
    return v;
}

static double arg_seconds(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || *end || !(v > 0 && v < 3600)) {
        fprintf(stderr, "bench_dnn: '%s' is not a duration in seconds\n", s);
        exit(2);
    }
    return v;
}

/* Most images a convolution lowers at once: the environment's BENCH_LOWER_IMAGES (1: one
 * image at a time, the engine as created), else the whole batch, as darknetp's normal world. */
static int lower_images(int batch)
{
    const char *v = getenv("BENCH_LOWER_IMAGES");
    return v && *v ? atoi(v) : batch;
}

/* Bytes the convolutions may keep their columns in: BENCH_COL_CACHE_BYTES, else darknetp's
 * default. */
static size_t col_cache_bytes(void)
{
    const char *v = getenv("BENCH_COL_CACHE_BYTES");
    return v && *v ? (size_t)strtoull(v, NULL, 10) : DNN_COL_CACHE_BYTES_DEFAULT;
}

/* Builds the whole network of CFG at BATCH, with training buffers or not, on the threads of
 * par (NULL: the calling thread only). */
static struct dnn_network *open_net(const char *cfg, int batch, bool training,
                                    const struct dnn_parallel *par, struct dk_model *m)
{
    struct dnn_network *net = NULL;
    if (bench_load_model(cfg, batch, m) != 0)
        return NULL;
    enum dnn_status st = dnn_network_create(&net, &m->net, m->specs, m->n, training, BENCH_SEED);
    if (st == DNN_OK)
        st = dnn_network_set_lowering(net, lower_images(batch), DNN_LOWER_BYTES_DEFAULT);
    if (st == DNN_OK)
        st = dnn_network_set_column_cache(net, col_cache_bytes());
    if (st == DNN_OK && par)
        st = dnn_network_set_parallel(net, par);
    if (st != DNN_OK) {
        fprintf(stderr, "bench_dnn: %s: %s\n", cfg, dnn_status_str(st));
        dnn_network_free(net);
        return NULL;
    }
    return net;
}

static int cmd_run(const char *cfg, int batch, long iters, long warmup, bool train,
                   const struct dnn_parallel *par)
{
    struct dk_model m = {0};
    struct bench_batch d = {0};
    int rc = 1;
    struct dnn_network *net = open_net(cfg, batch, train, par, &m);
    if (!net || bench_batch_make(&d, (size_t)batch, net->inputs, net->truths) != 0)
        goto out;
    for (long i = 0; i < warmup; i++) {
        if (train)
            dnn_network_train_batch(net, d.x, d.y);
        else
            dnn_network_predict(net, d.x);
    }
    struct bench_clock2 t0 = bench_clock2_now();
    for (long i = 0; i < iters; i++) {
        if (train)
            dnn_network_train_batch(net, d.x, d.y);
        else
            dnn_network_predict(net, d.x);
    }
    char label[300];
    snprintf(label, sizeof label, "%s, threads %u", cfg, par ? par->threads : 1);
    bench_emit(train ? "train" : "infer", t0, bench_clock2_now(), iters, batch, "images", label);
    rc = 0;
out:
    bench_batch_free(&d);
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* `threads-pair`: the same training step on one thread (network a) and on par's threads
 * (network b, built alike), alternated; prints each step's `BENCH pair/1` or `pair/N` line and
 * `THREADS <median> <min> <max> <pairs> <threads> same|differ`, the median of the per-pair
 * ratios (one thread's wall time over N's). The two networks' losses must agree bit for bit
 * (the engine's promise for any thread count): exit 1 when they do not. */
static int cmd_threads_pair(const char *cfg, int batch, long pairs, long warmup,
                            const struct dnn_parallel *par)
{
    struct dk_model ma = {0}, mb = {0};
    struct bench_batch d = {0};
    double *ratio = NULL;
    int rc = 1;
    struct dnn_network *a = open_net(cfg, batch, true, NULL, &ma);
    struct dnn_network *b = a ? open_net(cfg, batch, true, par, &mb) : NULL;
    if (!b || bench_batch_make(&d, (size_t)batch, a->inputs, a->truths) != 0 ||
        !(ratio = malloc((size_t)pairs * sizeof *ratio)))
        goto out;
    bool same = true;
    for (long i = 0; i < warmup; i++) {
        const float la = dnn_network_train_batch(a, d.x, d.y);
        const float lb = dnn_network_train_batch(b, d.x, d.y);
        same = same && !memcmp(&la, &lb, sizeof la);
    }
    char label[300];
    snprintf(label, sizeof label, "%s, threads 1 against %u", cfg, par->threads);
    for (long p = 0; p < pairs; p++) {
        double wall[2];
        float loss[2];
        for (int k = 0; k < 2; k++) {
            const int side = (int)(p & 1) ^ k; /* 0: one thread, 1: par */
            const struct bench_clock2 t0 = bench_clock2_now();
            loss[side] = dnn_network_train_batch(side ? b : a, d.x, d.y);
            const struct bench_clock2 t1 = bench_clock2_now();
            wall[side] = t1.wall - t0.wall;
            bench_emit(side ? "pair/N" : "pair/1", t0, t1, 1, batch, "images", label);
        }
        same = same && !memcmp(&loss[0], &loss[1], sizeof loss[0]);
        ratio[p] = wall[1] > 0 ? wall[0] / wall[1] : 0;
    }
    qsort(ratio, (size_t)pairs, sizeof *ratio, cmp_double);
    printf("THREADS %.4f %.4f %.4f %ld %u %s\n",
           pairs % 2 ? ratio[pairs / 2] : (ratio[pairs / 2 - 1] + ratio[pairs / 2]) / 2, ratio[0],
           ratio[pairs - 1], pairs, par->threads, same ? "same" : "differ");
    rc = same ? 0 : 1;
out:
    free(ratio);
    bench_batch_free(&d);
    dnn_network_free(b);
    dnn_network_free(a);
    dk_model_free(&mb);
    dk_model_free(&ma);
    return rc;
}

/* One busy loop of the control: `steps` multiply-adds, each waiting for the one before, so
 * that the loop needs a core's time and nothing a sibling could contend for. */
struct spin_job {
    uint64_t steps;
    uint64_t result; /* kept, so that the loop is not optimised away */
};

static void *spin_loop(void *arg)
{
    struct spin_job *j = arg;
    uint64_t x = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < j->steps; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    j->result = x;
    return NULL;
}

/*
 * The control of the threads comparison: THREADS threads each run the same busy loop; the
 * wall time until all are done gives THREADS * STEPS steps' rate. Against THREADS = 1 it says
 * how many cores the machine actually gave us just then: the most any threading could gain.
 */
static int cmd_spin(unsigned threads, uint64_t steps)
{
    struct spin_job *jobs = calloc(threads, sizeof *jobs);
    pthread_t *ids = calloc(threads, sizeof *ids);
    unsigned started = 0;
    int rc = 1;
    if (!jobs || !ids)
        goto out;
    const struct bench_clock2 t0 = bench_clock2_now();
    for (; started < threads; started++) {
        jobs[started].steps = steps;
        if (pthread_create(&ids[started], NULL, spin_loop, &jobs[started]) != 0) {
            fprintf(stderr, "bench_dnn: cannot start thread %u\n", started + 1);
            goto out;
        }
    }
    for (; started > 0; started--)
        pthread_join(ids[started - 1], NULL);
    const struct bench_clock2 t1 = bench_clock2_now();
    uint64_t all = 0;
    for (unsigned i = 0; i < threads; i++)
        all ^= jobs[i].result;
    char label[64];
    snprintf(label, sizeof label, "%u busy threads (check %016llx)", threads,
             (unsigned long long)all);
    bench_emit("spin", t0, t1, 1, (double)threads * (double)steps, "steps", label);
    rc = 0;
out:
    while (started > 0)
        pthread_join(ids[--started], NULL);
    free(ids);
    free(jobs);
    return rc;
}

/* "conv 3x3/1 32x32x3 -> 32x32x128" and the like, for the per-layer table. */
static void layer_label(const struct dnn_layer *l, char *buf, size_t size)
{
    if (l->kind == DNN_LAYER_CONVOLUTIONAL || l->kind == DNN_LAYER_MAXPOOL)
        snprintf(buf, size, "%s %dx%d/%d %dx%dx%d -> %dx%dx%d", l->ops->name, l->spec.size,
                 l->spec.size, l->spec.stride, l->w, l->h, l->c, l->out_w, l->out_h, l->out_c);
    else
        snprintf(buf, size, "%s %zu -> %zu", l->ops->name, l->inputs, l->outputs);
}

/*
 * Forward and backward one layer at a time, timed each, in the order and with the run
 * arguments of dnn_network_forward_range / dnn_network_backward_range, then the update.
 */
static int cmd_layers(const char *cfg, int batch, long iters, long warmup,
                      const struct dnn_parallel *par)
{
    struct dk_model m = {0};
    struct bench_batch d = {0};
    double *fwd = NULL, *bwd = NULL;
    int rc = 1;
    struct dnn_network *net = open_net(cfg, batch, true, par, &m);
    if (!net || bench_batch_make(&d, (size_t)batch, net->inputs, net->truths) != 0)
        goto out;
    fwd = calloc(2 * net->n, sizeof(double)); /* (n) wall, (n) cpu */
    bwd = calloc(2 * net->n, sizeof(double));
    if (!fwd || !bwd)
        goto out;
    for (long it = 0; it < warmup + iters; it++) {
        const bool keep = it >= warmup;
        struct dnn_run run = {.truth = d.y, .train = true, .workspace = net->workspace, .net = net};
        net->seen += (uint64_t)batch;
        for (size_t i = 0; i < net->n; i++) {
            struct dnn_layer *l = &net->layers[i];
            run.input = i == 0 ? d.x : net->layers[i - 1].output;
            struct bench_clock2 t0 = bench_clock2_now();
            if (l->delta)
                dnn_fill(l->delta, l->outputs * (size_t)l->batch, 0);
            l->ops->forward(l, &run);
            struct bench_clock2 t1 = bench_clock2_now();
            fwd[i] += keep ? t1.wall - t0.wall : 0;
            fwd[net->n + i] += keep ? t1.cpu - t0.cpu : 0;
        }
        for (size_t i = net->n; i-- > 0;) {
            struct dnn_layer *l = &net->layers[i];
            run.input = i == 0 ? d.x : net->layers[i - 1].output;
            run.input_delta = i == 0 ? NULL : net->layers[i - 1].delta;
            struct bench_clock2 t0 = bench_clock2_now();
            l->ops->backward(l, &run);
            struct bench_clock2 t1 = bench_clock2_now();
            bwd[i] += keep ? t1.wall - t0.wall : 0;
            bwd[net->n + i] += keep ? t1.cpu - t0.cpu : 0;
        }
        dnn_network_update_range(net, 0, net->n - 1);
    }
    for (size_t i = 0; i < net->n; i++) {
        char id[64], label[128];
        const struct dnn_layer *l = &net->layers[i];
        const struct bench_clock2 zero = {0, 0};
        layer_label(l, label, sizeof label);
        snprintf(id, sizeof id, "layer/%zu/fwd", i);
        bench_emit(id, zero, (struct bench_clock2){fwd[i], fwd[net->n + i]}, iters,
                   dnn_layer_flops(l) * batch, "flop", label);
        snprintf(id, sizeof id, "layer/%zu/bwd", i);
        bench_emit(id, zero, (struct bench_clock2){bwd[i], bwd[net->n + i]}, iters,
                   2 * dnn_layer_flops(l) * batch, "flop", label);
    }
    rc = 0;
out:
    free(fwd);
    free(bwd);
    bench_batch_free(&d);
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}

/* One dnn_gemm shape: C(m, n) = op(A)(m, k) * op(B)(k, n) + C. */
struct gemm_shape {
    bool ta, tb;
    int m, n, k;
};

/* time_gemm's samples: at least this many per shape, of about this many CPU seconds each. */
#define GEMM_MIN_SAMPLES 5
#define GEMM_SAMPLE_SECONDS 0.01

/*
 * Times dnn_gemm on random operands: a warm-up call (C faulted in, the packing buffers
 * allocated once), then samples of whole calls, each about GEMM_SAMPLE_SECONDS of this
 * thread's CPU time, until `seconds` of wall time have passed and at least GEMM_MIN_SAMPLES
 * were taken; the line reports the sample with the least CPU time per call. On a shared
 * machine, whatever runs on our core between two of our calls evicts the operands from L1 and
 * L2, and their refill counts as our CPU time: one mean over 0.1 s read 512^3 TN at 65 to 77
 * GFLOP/s in three runs a minute apart. The least disturbed sample is the kernel's speed.
 * bench_torch.py times torch.mm the same way.
 */
static int time_gemm(struct gemm_shape s, double seconds, const char *label)
{
    const size_t na = (size_t)s.m * (size_t)s.k, nb = (size_t)s.k * (size_t)s.n,
                 nc = (size_t)s.m * (size_t)s.n;
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float)),
          *c = calloc(nc, sizeof(float));
    struct dnn_rng rng;
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        fprintf(stderr, "bench_dnn: out of memory for gemm %dx%dx%d\n", s.m, s.n, s.k);
        return -1;
    }
    dnn_rng_seed(&rng, BENCH_SEED);
    for (size_t i = 0; i < na; i++)
        a[i] = dnn_rng_uniform(&rng, -1, 1);
    for (size_t i = 0; i < nb; i++)
        b[i] = dnn_rng_uniform(&rng, -1, 1);
    /* Leading dimensions of row-major op(A) and op(B) as the layers pass them. */
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    dnn_gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c, s.n);
    /* A second, timed call sizes the samples. beta 0 from here: C stays bounded however many
     * calls run. */
    const struct bench_clock2 start = bench_clock2_now();
    dnn_gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n);
    struct bench_clock2 t1 = bench_clock2_now(), best0 = start, best1 = t1;
    const double one = t1.cpu - start.cpu > 1e-7 ? t1.cpu - start.cpu : 1e-7;
    const long calls = one * 2 < GEMM_SAMPLE_SECONDS ? (long)(GEMM_SAMPLE_SECONDS / one) : 1;
    for (int samples = 0; samples < GEMM_MIN_SAMPLES || t1.wall - start.wall < seconds; samples++) {
        const struct bench_clock2 t0 = bench_clock2_now();
        for (long i = 0; i < calls; i++)
            dnn_gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n);
        t1 = bench_clock2_now();
        if (samples == 0 || t1.cpu - t0.cpu < best1.cpu - best0.cpu) {
            best0 = t0;
            best1 = t1;
        }
    }
    char id[96];
    snprintf(id, sizeof id, "gemm/%s%s/%dx%dx%d", s.ta ? "T" : "N", s.tb ? "T" : "N", s.m, s.n,
             s.k);
    bench_emit(id, best0, best1, calls, 2.0 * s.m * s.n * s.k, "flop", label);
    free(a);
    free(b);
    free(c);
    return 0;
}

/* The dnn_gemm calls of one training step of layer l of net (see layer_convolutional.c,
 * conv_lower.c and layer_connected.c): forward, weight gradient, input delta; a convolution
 * lowering several images has their columns side by side. A layer on Winograd's path
 * (conv_winograd.h) makes 16 calls of each per block of tiles and filters, the blocks the
 * engine's own functions cut in the network's scratch (with the filters' transform in the
 * network's buffer, dnn_network_set_lowering, as here). Returns how many it wrote. */
static int layer_gemms(const struct dnn_network *net, const struct dnn_layer *l, bool first_layer,
                       struct gemm_shape out[3])
{
    if (dnn_conv_winograd_applies(l)) {
        const size_t tiles = dnn_wino_tiles(l->h, l->w) * (size_t)l->batch;
        const int k = l->spec.filters, c = l->c;
        const bool u = net->wino_u != NULL;
        /* the forward pass and the input delta cut alike (dnn_wino_forward, _input_delta) */
        int tb = 0, kb = 0, gtb = 0, gkb = 0;
        dnn_wino_blocks(net->workspace_floats, c, k, tiles, DNN_WINO_TILE_BLOCK, !u, &tb, &kb);
        dnn_wino_weight_gradient_blocks(net->workspace_floats, c, k, tiles, u, &gtb, &gkb);
        out[0] = (struct gemm_shape){false, false, kb, tb, c};
        out[1] = (struct gemm_shape){false, true, gkb, c, gtb};
        out[2] = (struct gemm_shape){false, false, c, tb, kb};
        return first_layer ? 2 : 3;
    }
    if (l->kind == DNN_LAYER_CONVOLUTIONAL) {
        const int g = l->spec.groups, n = l->out_h * l->out_w;
        const int m = l->spec.filters / g, k = l->spec.size * l->spec.size * l->c / g;
        const int nf = n * dnn_conv_lower_images(l, net, false);
        const int nb = n * dnn_conv_lower_images(l, net, true);
        out[0] = (struct gemm_shape){false, false, m, nf, k};
        out[1] = (struct gemm_shape){false, true, m, k, nb};
        out[2] = (struct gemm_shape){true, false, k, nb, m};
        return first_layer ? 2 : 3;
    }
    if (l->kind == DNN_LAYER_CONNECTED) {
        const int batch = l->batch, in = (int)l->inputs, o = (int)l->outputs;
        out[0] = (struct gemm_shape){false, true, batch, o, in};
        out[1] = (struct gemm_shape){true, false, o, in, batch};
        out[2] = (struct gemm_shape){false, false, batch, in, o};
        return first_layer ? 2 : 3;
    }
    return 0;
}

static bool same_shape(struct gemm_shape a, struct gemm_shape b)
{
    return a.ta == b.ta && a.tb == b.tb && a.m == b.m && a.n == b.n && a.k == b.k;
}

static int cmd_gemm(const char *cfg, int batch, double seconds)
{
    struct dk_model m = {0};
    int rc = 1;
    struct dnn_network *net = open_net(cfg, batch, false, NULL, &m);
    if (!net)
        goto out;
    struct gemm_shape done[64];
    size_t n_done = 0;
    static const char *const role[3] = {"forward", "weight gradient", "input delta"};
    for (size_t i = 0; i < net->n; i++) {
        struct gemm_shape s[3];
        const int n = layer_gemms(net, &net->layers[i], i == 0, s);
        for (int j = 0; j < n; j++) {
            bool seen = false;
            for (size_t q = 0; q < n_done; q++)
                seen = seen || same_shape(done[q], s[j]);
            if (seen || n_done == sizeof done / sizeof done[0])
                continue;
            done[n_done++] = s[j];
            char label[96];
            snprintf(label, sizeof label, "layer %zu %s %s%s", i, net->layers[i].ops->name, role[j],
                     dnn_conv_winograd_applies(&net->layers[i]) ? ", Winograd" : "");
            if (time_gemm(s[j], seconds, label) != 0)
                goto out;
        }
    }
    rc = 0;
out:
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}

static int cmd_peak(double seconds)
{
    const struct fma_peak_loop loop = fma_peak_select();
    volatile float sink = 0;
    long iters = 1000;
    struct bench_clock2 t0 = bench_clock2_now(), t1 = t0;
    /* Double the loop until one run lasts `seconds`; the last run is the measurement. */
    for (;;) {
        t0 = bench_clock2_now();
        sink = loop.run(iters);
        t1 = bench_clock2_now();
        if (t1.wall - t0.wall >= seconds || iters > (1L << 40))
            break;
        iters *= 2;
    }
    (void)sink;
    bench_emit("peak", t0, t1, 1, loop.flops_per_iter * (double)iters, "flop", loop.what);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_dnn train|infer|layers CFG BATCH ITERS WARMUP\n"
                    "       bench_dnn tee CFG BATCH ITERS WARMUP FIRST LAST train|infer\n"
                    "       bench_dnn tee-pair CFG BATCH PAIRS WARMUP FIRST LAST train|infer\n"
                    "                [A_FIRST A_LAST]\n"
                    "       BENCH_THREADS=N bench_dnn threads-pair CFG BATCH PAIRS WARMUP\n"
                    "       bench_dnn gemm CFG BATCH SECONDS\n"
                    "       bench_dnn gemm-size NT|NN|TN|TT M N K SECONDS\n"
                    "       bench_dnn peak SECONDS\n"
                    "       bench_dnn spin THREADS STEPS\n"
                    "environment: BENCH_THREADS=N (train, infer, layers, tee, tee-pair),\n"
                    "             BENCH_LOWER_IMAGES=N, BENCH_COL_CACHE_BYTES=N, BENCH_PIN=0,\n"
                    "             BENCH_SETTLE=N\n");
    return 2;
}

/* `tee` and `tee-pair`: argv[2..8] = CFG BATCH ITERS WARMUP FIRST LAST train|infer, and for
 * `tee-pair` optionally argv[9..10] = side A's FIRST LAST (argc 11). */
static int cmd_tee(int argc, char **argv, const struct dnn_parallel *par, bool paired)
{
    const long big = 1L << 30;
    const bool train = !strcmp(argv[8], "train");
    if (!train && strcmp(argv[8], "infer"))
        return usage();
    const struct bench_tee_case c = {
        .cfg = argv[2],
        .batch = (int)arg_long(argv[3], 1, 1 << 16),
        .first = (int)arg_long(argv[6], -1, 1 << 20),
        .last = (int)arg_long(argv[7], -1, 1 << 20),
        .base_first = argc == 11 ? (int)arg_long(argv[9], -1, 1 << 20) : -1,
        .base_last = argc == 11 ? (int)arg_long(argv[10], -1, 1 << 20) : -1,
        .train = train,
        .par = par};
    const long iters = arg_long(argv[4], 1, big), warmup = arg_long(argv[5], 0, big);
    return paired ? bench_tee_pair(&c, iters, warmup) : bench_tee_run(&c, iters, warmup);
}

static int run_cmd(int argc, char **argv, const struct dnn_parallel *par)
{
    const char *cmd = argv[1];
    const long big = 1L << 30;
    if ((!strcmp(cmd, "train") || !strcmp(cmd, "infer") || !strcmp(cmd, "layers")) && argc == 6) {
        const int batch = (int)arg_long(argv[3], 1, 1 << 16);
        const long iters = arg_long(argv[4], 1, big), warmup = arg_long(argv[5], 0, big);
        if (!strcmp(cmd, "layers"))
            return cmd_layers(argv[2], batch, iters, warmup, par);
        return cmd_run(argv[2], batch, iters, warmup, !strcmp(cmd, "train"), par);
    }
    if (!strcmp(cmd, "threads-pair") && argc == 6 && par)
        return cmd_threads_pair(argv[2], (int)arg_long(argv[3], 1, 1 << 16),
                                arg_long(argv[4], 1, 1 << 20), arg_long(argv[5], 0, big), par);
    if ((!strcmp(cmd, "tee") && argc == 9) ||
        (!strcmp(cmd, "tee-pair") && (argc == 9 || argc == 11)))
        return cmd_tee(argc, argv, par, !strcmp(cmd, "tee-pair"));
    if (!strcmp(cmd, "gemm") && argc == 5)
        return cmd_gemm(argv[2], (int)arg_long(argv[3], 1, 1 << 16), arg_seconds(argv[4]));
    if (!strcmp(cmd, "gemm-size") && argc == 7 && strlen(argv[2]) == 2) {
        const struct gemm_shape s = {
            argv[2][0] == 'T', argv[2][1] == 'T', (int)arg_long(argv[3], 1, 1 << 14),
            (int)arg_long(argv[4], 1, 1 << 14), (int)arg_long(argv[5], 1, 1 << 14)};
        return time_gemm(s, arg_seconds(argv[6]), "square") != 0;
    }
    if (!strcmp(cmd, "peak") && argc == 3)
        return cmd_peak(arg_seconds(argv[2]));
    if (!strcmp(cmd, "spin") && argc == 4)
        return cmd_spin((unsigned)arg_long(argv[2], 1, 1024),
                        (uint64_t)arg_long(argv[3], 1, 1L << 40));
    return usage();
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    /* BENCH_THREADS: the normal world's threads, as darknetp's -threads; unset, empty or 1:
     * the calling thread alone, with no pool at all. */
    const char *env = getenv("BENCH_THREADS");
    const unsigned threads = env && *env ? (unsigned)arg_long(env, 1, 1024) : 1;
    struct dz_pool *pool = NULL;
    struct dnn_parallel par = {0};
    if (threads > 1) {
        if (!(pool = dz_pool_create(threads))) {
            fprintf(stderr, "bench_dnn: cannot start %u threads\n", threads);
            return 1;
        }
        par = dz_pool_parallel(pool);
    }
    const int rc = run_cmd(argc, argv, pool ? &par : NULL);
    dz_pool_destroy(pool);
    return rc;
}
