/* tee_plan.c - `darknetp tee plan` (see tee_plan.h). */
#include "host/tee_plan.h"

#include <stdint.h>
#include <stdio.h>

#include "darknet/parse_network.h"
#include "host/args.h"
#include "host/partition.h"
/* TA_DATA_SIZE of the TA built from this tree (CFG_DZ_TA_DATA_SIZE, its default or the value
 * this build was given): the plan needs no session, so it works before the TA is installed
 * or when its heap does not fit the device's secure memory. */
#include "ta/include/user_ta_header_defines.h"

/* Tails longer than this are not tried for streaming: planning one costs time in its length,
 * and no TA streams thousands of layers. */
#define STREAM_TAIL_MAX 4096

static bool streams(const struct dk_model *m, const struct dnn_network *shapes, size_t i, int batch,
                    bool train, size_t capacity, size_t work_max, struct dz_stream_fit *fit)
{
    struct dk_error ignored;
    return dz_stream_plan(m, shapes, i, shapes->n - 1, batch, train, capacity, work_max, fit,
                          &ignored) == 0;
}

/* Sealed bytes that cross per image for a pass's @sealed bytes: inference reads each chunk
 * once; training reads it in FORWARD_TRAIN (and writes it back re-sealed when @forward_moves:
 * batch normalisation's rolling statistics live in the chunks, dnn_tile_forward_moves),
 * reads and writes it in BACKWARD, and in UPDATE once per batch * subdivisions images. */
static uint64_t crossing_per_image(uint64_t sealed, int batch, int subdivisions, bool train,
                                   bool forward_moves)
{
    if (!train)
        return sealed / (uint64_t)batch;
    const uint64_t images = (uint64_t)batch * (uint64_t)(subdivisions > 0 ? subdivisions : 1);
    return (forward_moves ? 4 : 3) * sealed / (uint64_t)batch + 2 * sealed / images;
}

/* Tails that stream get a table row each when there are at most this many. */
#define STREAM_TABLE_MAX 64

/* The streamed table's columns: start, need, working buffer, chunks, sealed bytes per image,
 * fits. */
#define STREAM_ROW "%5s  %18s  %14s  %8s  %18s  %s\n"

/* Why tail @i..n-1 cannot stream whatever TA_DATA_SIZE, in a few words for the table's fits
 * column (train says the same at length): adam, a frozen layer, a -tee_chunk below a row of
 * the widest layer, else the plan's own message. */
static void stream_refusal(const struct dk_model *m, const struct dnn_network *shapes, size_t i,
                           int batch, bool train, size_t work_max, char *buf, size_t size)
{
    struct dk_error e = {{0}};
    struct dz_stream_fit fit;
    size_t base = 0, min_chunk = 0;
    for (size_t k = i; train && k < shapes->n; k++) {
        if (shapes->layers[k].n_params && shapes->layers[k].spec.frozen) {
            snprintf(buf, size, "layer %zu is frozen (stopbackward)", k);
            return;
        }
    }
    if (train && m->net.adam) {
        snprintf(buf, size, "adam (streamed training is momentum SGD)");
        return;
    }
    if (dz_segment_stream_need(m, shapes, i, shapes->n - 1, batch, train, &base, &min_chunk, &e) ==
            0 &&
        work_max && work_max < min_chunk) {
        snprintf(buf, size, "-tee_chunk below %zu bytes (a row of the widest layer)", min_chunk);
        return;
    }
    if (!e.msg[0])
        dz_stream_plan(m, shapes, i, shapes->n - 1, batch, train, SIZE_MAX, work_max, &fit, &e);
    snprintf(buf, size, "%s", e.msg);
}

/* One row of the streamed table: tail @i..n-1 with its weights streamed, whether it fits
 * @capacity and, when it does not, its need with the largest working buffer, or why it
 * cannot stream at all. */
static void print_streamed_row(const struct dk_model *m, const struct dnn_network *shapes, size_t i,
                               int batch, bool train, size_t capacity, size_t work_max)
{
    struct dz_stream_fit fit;
    char start[24], need[24], work[24], chunks[24], sealed[24];
    const bool fits = streams(m, shapes, i, batch, train, capacity, work_max, &fit);
    snprintf(start, sizeof start, "%zu", i);
    if (!fits && !streams(m, shapes, i, batch, train, SIZE_MAX, work_max, &fit)) {
        char why[1100];
        char no[sizeof why + 8];
        stream_refusal(m, shapes, i, batch, train, work_max, why, sizeof why);
        snprintf(no, sizeof no, "no: %s", why);
        printf(STREAM_ROW, start, "-", "-", "-", "-", no);
        return;
    }
    snprintf(need, sizeof need, "%zu", fit.need);
    snprintf(work, sizeof work, "%zu", fit.chunk_bytes);
    snprintf(chunks, sizeof chunks, "%zu", fit.n_chunks);
    snprintf(sealed, sizeof sealed, "%llu",
             (unsigned long long)crossing_per_image(
                 fit.sealed_bytes, batch, m->net.subdivisions, train,
                 dnn_tile_forward_moves(&shapes->layers[i], shapes->n - i)));
    printf(STREAM_ROW, start, need, work, chunks, sealed, fits ? "yes" : "no");
}

/* Whether layers @i..n-1 hold any parameter: a tail without any has nothing to stream. */
static bool tail_has_params(const struct dnn_network *shapes, size_t i)
{
    for (; i < shapes->n; i++)
        if (shapes->layers[i].n_params)
            return true;
    return false;
}

/* Every tail i..n-1 that could stream (after the last layer that cannot), when there are at
 * most STREAM_TABLE_MAX: its secure memory with its weights streamed, the working buffer, the
 * chunks and the sealed bytes that cross per image; then the longest tail that fits streamed.
 * Starts are tried after the last layer that cannot stream, among the last STREAM_TAIL_MAX
 * layers: each in order when the table lists them all (a longer tail may need less: AlexNet's
 * whole network takes its image in, the tail from layer 1 a larger activation), else by
 * bisection, which assumes that a longer tail needs at least as much; then forward to the
 * first valid partition that fits. */
static void print_streamed(const struct dk_model *m, const struct dnn_network *shapes, int batch,
                           bool train, size_t capacity, size_t work_max)
{
    const char *mode = train ? "training" : "inference";
    const size_t n = shapes->n;
    size_t lo = n > STREAM_TAIL_MAX ? n - STREAM_TAIL_MAX : 0;
    size_t refused = n; /* the last layer that cannot stream, or n */
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const struct dnn_layer *l = &shapes->layers[i];
        if (l->n_params && dnn_tile_refusal(l) && i + 1 > lo) {
            lo = i + 1;
            refused = i;
        }
        any |= l->n_params != 0 && i >= lo;
    }
    /* Why the tails that start earlier have no row (or none has one). */
    if (refused < n)
        printf("streamed: no tail from layer %zu or before streams: layer %zu (%s): %s\n", refused,
               refused, shapes->layers[refused].ops->name,
               dnn_tile_refusal(&shapes->layers[refused]));
    if (any && n - lo <= STREAM_TABLE_MAX) {
        char range[48];
        snprintf(range, sizeof range, "layers i..%zu bytes", n - 1);
        printf("with the weights streamed (%s):\n", mode);
        printf(STREAM_ROW, "start", range, "working buffer", "chunks", "sealed bytes/image",
               "fits");
        for (size_t i = lo; i < n && tail_has_params(shapes, i); i++) {
            struct dk_error ignored;
            if (dz_partition_check(shapes, (int)i, (int)(n - 1), &ignored) == 0)
                print_streamed_row(m, shapes, i, batch, train, capacity, work_max);
        }
    }
    struct dz_stream_fit fit;
    size_t hi = n; /* the answer lies in [lo, hi]; n: none */
    if (n - lo <= STREAM_TABLE_MAX)
        hi = lo; /* the forward search below tries every start */
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (streams(m, shapes, mid, batch, train, capacity, work_max, &fit))
            hi = mid;
        else
            lo = mid + 1;
    }
    for (size_t i = hi, tries = 0; any && i < n && tries < 64; i++, tries++) {
        struct dk_error ignored;
        if (dz_partition_check(shapes, (int)i, (int)(n - 1), &ignored) != 0 ||
            !streams(m, shapes, i, batch, train, capacity, work_max, &fit))
            continue;
        printf("streamed (%s, -pp_start %zu -pp_end %zu): %zu bytes of secure memory with "
               "a working buffer of %zu bytes; %zu sealed chunks, %llu bytes of sealed weights "
               "cross per image\n",
               mode, i, n - 1, fit.need, fit.chunk_bytes, fit.n_chunks,
               (unsigned long long)crossing_per_image(
                   fit.sealed_bytes, batch, m->net.subdivisions, train,
                   dnn_tile_forward_moves(&shapes->layers[i], n - i)));
        return;
    }
    if (!any)
        return;
    /* When even the shortest tail with parameters cannot stream, whatever TA_DATA_SIZE, the
     * reason (adam, -tee_chunk, ...) is the news, not the size. */
    size_t last = n - 1;
    while (last > 0 && !shapes->layers[last].n_params)
        last--;
    if (!streams(m, shapes, last, batch, train, SIZE_MAX, work_max, &fit)) {
        char why[1100];
        stream_refusal(m, shapes, last, batch, train, work_max, why, sizeof why);
        printf("streamed (%s): no tail of layers can stream its weights: %s\n", mode, why);
        return;
    }
    printf("streamed (%s): no tail of layers fits with its weights streamed\n", mode);
}

int dz_tee_plan_main(int argc, char **argv)
{
    struct dk_error err = {{0}};
    struct dk_model m = {0};
    struct dnn_network *shapes = NULL;
    long batch = 0, cap = -1, work_max = 0;
    int rc = 1;
    if (dz_arg_int(&argc, argv, "-batch", 1, 1000000, &batch) != 0 ||
        dz_arg_int(&argc, argv, "-ta_data_size", 1, 0x7fffffffL, &cap) != 0 ||
        dz_arg_int(&argc, argv, "-tee_chunk", 4, 0x7fffffffL, &work_max) != 0)
        return 2;
    bool train = dz_arg_flag(&argc, argv, "-train");
    if (argc != 4 || argv[3][0] == '-') {
        fprintf(stderr, "usage: darknetp tee plan CFG [-batch N] [-train] [-ta_data_size BYTES] "
                        "[-tee_chunk BYTES]\n");
        return 2;
    }
    if (dk_parse_network(argv[3], &m, &err) != 0)
        goto out;
    if (m.notes)
        fputs(m.notes, stderr);
    if (batch == 0)
        batch = train ? m.net.batch : 1;
    const size_t capacity = cap < 0 ? (size_t)TA_DATA_SIZE : (size_t)cap;
    if (dz_shapes_create(&m, (int)batch, 0, &shapes, &err) != 0 ||
        dz_print_plan(stdout, &m, shapes, (int)batch, train, capacity, &err) != 0)
        goto out;
    print_streamed(&m, shapes, (int)batch, train, capacity, (size_t)work_max);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "darknetp: %s\n", err.msg);
    dz_shapes_free(shapes);
    dk_model_free(&m);
    return rc;
}
