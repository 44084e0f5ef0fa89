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
 *   bench_dnn layers CFG BATCH ITERS WARMUP          forward/backward time per layer
 *   bench_dnn gemm   CFG BATCH SECONDS               dnn_gemm on every shape the network's
 *                                                    training calls it with
 *   bench_dnn gemm-size TA TB M N K SECONDS          dnn_gemm on one shape
 *   bench_dnn peak   SECONDS                         the core's FMA peak, GFLOP/s
 *
 * Output: one line per figure, `BENCH <id> <wall_s> <cpu_s> <work> <unit> [label]`: wall and
 * thread CPU seconds per iteration (or per call), the work one iteration does (images or
 * flop) and a free-text label. CPU time is the figure the bench reports: on a shared machine
 * wall time also counts what other processes took from us. `tee` counts the CPU time of the
 * whole process and of the simulated TEE's processes (its core and TA instances).
 * Everything runs on the calling thread: the engine has no threads of its own. Convolutions
 * lower up to a batch of images per product (dnn_network_set_lowering), as darknetp's normal
 * world does; BENCH_LOWER_IMAGES=1 in the environment measures them one image at a time.
 * Training convolutions keep their forward pass's columns for the backward pass within
 * DNN_COL_CACHE_BYTES_DEFAULT (dnn_network_set_column_cache), as darknetp does;
 * BENCH_COL_CACHE_BYTES=N sets that budget (0: every image lowered twice, darknet's way).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "darknet/error.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "dnn/conv_lower.h"
#include "dnn/dnn_internal.h"
#include "host/pnet.h"
#include "tools/bench/fma_peak.h"

#define SEED 1

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A stopwatch over both clocks. */
struct clock2 {
    double wall, cpu;
};

static struct clock2 clock2_now(void)
{
    return (struct clock2){wall_now(), cpu_now()};
}

static void emit(const char *id, struct clock2 t0, struct clock2 t1, long n, double work,
                 const char *unit, const char *label)
{
    printf("BENCH %s %.9g %.9g %.9g %s %s\n", id, (t1.wall - t0.wall) / (double)n,
           (t1.cpu - t0.cpu) / (double)n, work, unit, label ? label : "");
    fflush(stdout);
}

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

/* The cfg with its batch replaced by BATCH images per forward, one forward per update. */
static int load_model(const char *cfg, int batch, struct dk_model *m)
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

/* Synthetic batch: pixels uniform in [0,1), truths one-hot over `classes`. */
struct batch_data {
    float *x; /* (batch, inputs) */
    float *y; /* (batch, classes) */
};

static int batch_data_make(struct batch_data *d, size_t batch, size_t inputs, size_t classes)
{
    struct dnn_rng rng;
    dnn_rng_seed(&rng, SEED ^ 0xBE7Cull);
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

static void batch_data_free(struct batch_data *d)
{
    free(d->x);
    free(d->y);
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

/* Builds the whole network of CFG at BATCH, with training buffers or not. */
static struct dnn_network *open_net(const char *cfg, int batch, bool training, struct dk_model *m)
{
    struct dnn_network *net = NULL;
    if (load_model(cfg, batch, m) != 0)
        return NULL;
    enum dnn_status st = dnn_network_create(&net, &m->net, m->specs, m->n, training, SEED);
    if (st == DNN_OK)
        st = dnn_network_set_lowering(net, lower_images(batch), DNN_LOWER_BYTES_DEFAULT);
    if (st == DNN_OK)
        st = dnn_network_set_column_cache(net, col_cache_bytes());
    if (st != DNN_OK) {
        fprintf(stderr, "bench_dnn: %s: %s\n", cfg, dnn_status_str(st));
        dnn_network_free(net);
        return NULL;
    }
    return net;
}

static int cmd_run(const char *cfg, int batch, long iters, long warmup, bool train)
{
    struct dk_model m = {0};
    struct batch_data d = {0};
    int rc = 1;
    struct dnn_network *net = open_net(cfg, batch, train, &m);
    if (!net || batch_data_make(&d, (size_t)batch, net->inputs, net->truths) != 0)
        goto out;
    for (long i = 0; i < warmup; i++) {
        if (train)
            dnn_network_train_batch(net, d.x, d.y);
        else
            dnn_network_predict(net, d.x);
    }
    struct clock2 t0 = clock2_now();
    for (long i = 0; i < iters; i++) {
        if (train)
            dnn_network_train_batch(net, d.x, d.y);
        else
            dnn_network_predict(net, d.x);
    }
    emit(train ? "train" : "infer", t0, clock2_now(), iters, batch, "images", cfg);
    rc = 0;
out:
    batch_data_free(&d);
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}

/* Parent of process `pid` from /proc/PID/stat, or -1. */
static long parent_of(long pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    const bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so start after
     * the last ')'. */
    const char *rp = ok ? strrchr(line, ')') : NULL;
    long ppid = -1;
    if (!rp || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
        return -1;
    return ppid;
}

#define MAX_TEE_PROCS 16

/* CPU clocks of this process's children and grandchildren: with the simulated TEE, its core
 * (forked by TEEC_InitializeContext) and the TA instances the core forks. Returns how many. */
static int tee_clocks(clockid_t *ids, int max)
{
    long kids[MAX_TEE_PROCS];
    int n_kids = 0, n = 0;
    const long self = (long)getpid();
    for (int pass = 0; pass < 2; pass++) {
        DIR *d = opendir("/proc");
        const struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            const long pid = atol(e->d_name), ppid = parent_of(pid);
            bool take = pass == 0 ? ppid == self : false;
            for (int i = 0; pass == 1 && i < n_kids; i++)
                take = take || ppid == kids[i];
            if (!take || n == max || (pass == 0 && n_kids == MAX_TEE_PROCS))
                continue;
            if (pass == 0)
                kids[n_kids++] = pid;
            if (clock_getcpuclockid((pid_t)pid, &ids[n]) == 0)
                n++;
        }
        if (d)
            closedir(d);
    }
    return n;
}

/* This process's CPU time plus that of the TEE's processes, in seconds. */
static double tee_cpu_now(const clockid_t *ids, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    double s = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    for (int i = 0; i < n; i++)
        if (clock_gettime(ids[i], &ts) == 0)
            s += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    return s;
}

/* One step through host/pnet.c, the path `darknetp classifier` takes. */
static int pnet_step(struct dz_pnet *p, const struct batch_data *d, bool train,
                     struct dk_error *err)
{
    if (train) {
        float loss = 0;
        bool known = false;
        return dz_pnet_train_batch(p, d->x, d->y, &loss, &known, err);
    }
    struct dz_pnet_output out = {0};
    return dz_pnet_predict(p, d->x, &out, err);
}

static int cmd_tee(const char *cfg, int batch, long iters, long warmup, int first, int last,
                   bool train)
{
    struct dk_model m = {0};
    struct dk_error err = {{0}};
    struct batch_data d = {0};
    struct dz_pnet p;
    int rc = 1;
    memset(&p, 0, sizeof p);
    if (load_model(cfg, batch, &m) != 0)
        return 1;
    struct dz_pnet_opts o = {.first = first,
                             .last = last,
                             .batch = batch,
                             .training = train,
                             .seed = SEED,
                             .policy = DZ_OUTPUT_TOP1,
                             .top_k = 1};
    if (dz_pnet_open(&p, &m, &o, &err) != 0)
        goto fail;
    size_t classes = p.shapes->truths;
    if (batch_data_make(&d, (size_t)batch, dz_pnet_inputs(&p), classes) != 0)
        goto out;
    for (long i = 0; i < warmup; i++)
        if (pnet_step(&p, &d, train, &err) != 0)
            goto fail;
    /* The TEE's work happens in other processes: count their CPU time too. */
    clockid_t ids[MAX_TEE_PROCS];
    const int n_ids = tee_clocks(ids, MAX_TEE_PROCS);
    struct clock2 t0 = {wall_now(), tee_cpu_now(ids, n_ids)};
    for (long i = 0; i < iters; i++)
        if (pnet_step(&p, &d, train, &err) != 0)
            goto fail;
    struct clock2 t1 = {wall_now(), tee_cpu_now(ids, n_ids)};
    char label[300];
    snprintf(label, sizeof label, "%s, %d TEE processes", cfg, n_ids);
    emit(train ? "train" : "infer", t0, t1, iters, batch, "images", label);
    rc = 0;
    goto out;
fail:
    /* The orchestrator shows this line: a partition that does not fit says so here. */
    printf("FAIL %s\n", err.msg);
out:
    batch_data_free(&d);
    dz_pnet_close(&p); /* also after a failed open, as pnet.h asks */
    dk_model_free(&m);
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
static int cmd_layers(const char *cfg, int batch, long iters, long warmup)
{
    struct dk_model m = {0};
    struct batch_data d = {0};
    double *fwd = NULL, *bwd = NULL;
    int rc = 1;
    struct dnn_network *net = open_net(cfg, batch, true, &m);
    if (!net || batch_data_make(&d, (size_t)batch, net->inputs, net->truths) != 0)
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
            struct clock2 t0 = clock2_now();
            if (l->delta)
                dnn_fill(l->delta, l->outputs * (size_t)l->batch, 0);
            l->ops->forward(l, &run);
            struct clock2 t1 = clock2_now();
            fwd[i] += keep ? t1.wall - t0.wall : 0;
            fwd[net->n + i] += keep ? t1.cpu - t0.cpu : 0;
        }
        for (size_t i = net->n; i-- > 0;) {
            struct dnn_layer *l = &net->layers[i];
            run.input = i == 0 ? d.x : net->layers[i - 1].output;
            run.input_delta = i == 0 ? NULL : net->layers[i - 1].delta;
            struct clock2 t0 = clock2_now();
            l->ops->backward(l, &run);
            struct clock2 t1 = clock2_now();
            bwd[i] += keep ? t1.wall - t0.wall : 0;
            bwd[net->n + i] += keep ? t1.cpu - t0.cpu : 0;
        }
        dnn_network_update_range(net, 0, net->n - 1);
    }
    for (size_t i = 0; i < net->n; i++) {
        char id[64], label[128];
        const struct dnn_layer *l = &net->layers[i];
        const struct clock2 zero = {0, 0};
        layer_label(l, label, sizeof label);
        snprintf(id, sizeof id, "layer/%zu/fwd", i);
        emit(id, zero, (struct clock2){fwd[i], fwd[net->n + i]}, iters, dnn_layer_flops(l) * batch,
             "flop", label);
        snprintf(id, sizeof id, "layer/%zu/bwd", i);
        emit(id, zero, (struct clock2){bwd[i], bwd[net->n + i]}, iters,
             2 * dnn_layer_flops(l) * batch, "flop", label);
    }
    rc = 0;
out:
    free(fwd);
    free(bwd);
    batch_data_free(&d);
    dnn_network_free(net);
    dk_model_free(&m);
    return rc;
}

/* One dnn_gemm shape: C(m, n) = op(A)(m, k) * op(B)(k, n) + C. */
struct gemm_shape {
    bool ta, tb;
    int m, n, k;
};

/* Calls dnn_gemm on random operands until `seconds` have passed (after one warm-up call). */
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
    dnn_rng_seed(&rng, SEED);
    for (size_t i = 0; i < na; i++)
        a[i] = dnn_rng_uniform(&rng, -1, 1);
    for (size_t i = 0; i < nb; i++)
        b[i] = dnn_rng_uniform(&rng, -1, 1);
    /* Leading dimensions of row-major op(A) and op(B) as the layers pass them. */
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    dnn_gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 1, c, s.n);
    long calls = 0;
    struct clock2 t0 = clock2_now(), t1 = t0;
    while (t1.wall - t0.wall < seconds) {
        /* beta 0: C stays bounded however many calls run. */
        dnn_gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n);
        calls++;
        t1 = clock2_now();
    }
    char id[96];
    snprintf(id, sizeof id, "gemm/%s%s/%dx%dx%d", s.ta ? "T" : "N", s.tb ? "T" : "N", s.m, s.n,
             s.k);
    emit(id, t0, t1, calls, 2.0 * s.m * s.n * s.k, "flop", label);
    free(a);
    free(b);
    free(c);
    return 0;
}

/* The dnn_gemm calls of one training step of layer l of net (see layer_convolutional.c,
 * conv_lower.c and layer_connected.c): forward, weight gradient, input delta; a convolution
 * lowering several images has their columns side by side. Returns how many it wrote. */
static int layer_gemms(const struct dnn_network *net, const struct dnn_layer *l, bool first_layer,
                       struct gemm_shape out[3])
{
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
    struct dnn_network *net = open_net(cfg, batch, false, &m);
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
            snprintf(label, sizeof label, "layer %zu %s %s", i, net->layers[i].ops->name, role[j]);
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
    struct clock2 t0 = clock2_now(), t1 = t0;
    /* Double the loop until one run lasts `seconds`; the last run is the measurement. */
    for (;;) {
        t0 = clock2_now();
        sink = loop.run(iters);
        t1 = clock2_now();
        if (t1.wall - t0.wall >= seconds || iters > (1L << 40))
            break;
        iters *= 2;
    }
    (void)sink;
    emit("peak", t0, t1, 1, loop.flops_per_iter * (double)iters, "flop", loop.what);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_dnn train|infer|layers CFG BATCH ITERS WARMUP\n"
                    "       bench_dnn tee CFG BATCH ITERS WARMUP FIRST LAST train|infer\n"
                    "       bench_dnn gemm CFG BATCH SECONDS\n"
                    "       bench_dnn gemm-size NT|NN|TN|TT M N K SECONDS\n"
                    "       bench_dnn peak SECONDS\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    const long big = 1L << 30;
    if ((!strcmp(cmd, "train") || !strcmp(cmd, "infer") || !strcmp(cmd, "layers")) && argc == 6) {
        const int batch = (int)arg_long(argv[3], 1, 1 << 16);
        const long iters = arg_long(argv[4], 1, big), warmup = arg_long(argv[5], 0, big);
        if (!strcmp(cmd, "layers"))
            return cmd_layers(argv[2], batch, iters, warmup);
        return cmd_run(argv[2], batch, iters, warmup, !strcmp(cmd, "train"));
    }
    if (!strcmp(cmd, "tee") && argc == 9) {
        const bool train = !strcmp(argv[8], "train");
        if (!train && strcmp(argv[8], "infer"))
            return usage();
        return cmd_tee(argv[2], (int)arg_long(argv[3], 1, 1 << 16), arg_long(argv[4], 1, big),
                       arg_long(argv[5], 0, big), (int)arg_long(argv[6], -1, 1 << 20),
                       (int)arg_long(argv[7], -1, 1 << 20), train);
    }
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
    return usage();
}
