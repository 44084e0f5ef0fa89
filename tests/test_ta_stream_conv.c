/*
 * test_ta_stream_conv.c - weight streaming of convolutional and batch-normalised layers
 * (ta/stream.c, the engine's tiles in dnn/tiles.c), through the simulated TEE's client API
 * with the protocol's raw commands:
 *  - cfg/fashion_lenet.cfg (5x5 convolutions and a connected layer, all with
 *    batch_normalize) and cfg/fashion_vgg7.cfg (3x3 convolutions with batch_normalize and a
 *    1x1 one), whole in the TA, streamed through small working buffers that cut the wider
 *    layers into several chunks: scores byte-identical to the engine with no TEE;
 *  - the engine's tile functions over any tiling equal the layer's own forward, backward and
 *    update, for convolutional and connected layers with and without batch_normalize;
 *  - training streamed (fashion_vgg7 with layer 0 in the normal world, so that the delta
 *    crosses; fashion_lenet whole), one and two subdivisions: losses, final weights, biases,
 *    BN scales and rolling statistics, and momenta bit-identical to training with no TEE
 *    (the chunks decrypted with a key re-derived from the simulated device key);
 *  - a training forward moves BN's rolling statistics, so it re-seals: a chunk of a
 *    convolutional layer from before that forward, replayed in the BACKWARD after it, is
 *    refused, as are a swapped chunk and an abandoned forward;
 *  - the trained streamed save of a convolutional segment loads into a resident session
 *    (DZ_CMD_LOAD_CHUNK) and predicts the scores of its weights in the engine;
 *  - a grouped convolution is refused for streaming, by name;
 *  - the shapes those networks lack (edges_text: stride 2, no padding, dilation, a
 *    convolution with biases and no batch_normalize, out_c 1, tiles of one filter and a
 *    shorter last tile, activations that keep their input, a batch-normalised connected
 *    layer): scores, tiles and training as above, the input delta crossing after each of the
 *    first five layers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tee_client_api.h>

#include "darknet/cfg.h"
#include "darknet/parse_network.h"
#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "tests/helpers/sim_chunks.h"
#include "tests/helpers/test_rng.h"
#include "tests/ta_client.h"
#include "tests/tee_conformance.h"

static struct tee_env env;
static struct dk_model lenet, vgg7, edges;
static struct dk_cfg *edges_cfg;

/* The shapes the fashion networks lack: a first convolution with stride 2, no padding and
 * more filters (40) than terms per filter (36), so that the whole layer's weight gradient and
 * a tile's take products of other shapes; a convolution with biases and no batch_normalize
 * whose 7 filters leave a shorter last tile, and tiles of one filter in training, with an
 * activation that keeps its input (mish; swish on the connected one); a dilated
 * one; a 1x1 one with a single filter (out_c 1, the in-place columns); a 2x2 one with stride
 * 2 and no padding; a batch-normalised connected layer. */
static const char edges_text[] =
    "[net]\nbatch=3\nsubdivisions=1\nheight=13\nwidth=13\nchannels=4\nmomentum=0.9\n"
    "decay=0.0005\nlearning_rate=0.05\n"
    "[convolutional]\nbatch_normalize=1\nfilters=40\nsize=3\nstride=2\npad=0\n"
    "activation=leaky\n"
    "[convolutional]\nfilters=7\nsize=3\nstride=1\npad=1\nactivation=mish\n"
    "[convolutional]\nbatch_normalize=1\nfilters=24\nsize=3\nstride=1\npad=1\ndilation=2\n"
    "activation=leaky\n"
    "[convolutional]\nbatch_normalize=1\nfilters=1\nsize=1\nstride=1\npad=0\n"
    "activation=linear\n"
    "[convolutional]\nfilters=6\nsize=2\nstride=2\npad=0\nactivation=logistic\n"
    "[connected]\nbatch_normalize=1\noutput=12\nactivation=swish\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\n";

enum { BATCH = 3, CLASSES = 10, MAX_CHUNKS = 512, ITERS = 2 };
#define SEED 0xC0DEull

/* ------------------------------------------------------------- the networks */

static struct dnn_net_config net_cfg(const struct dk_model *m, int subdivisions)
{
    struct dnn_net_config cfg = m->net;
    cfg.batch = BATCH;
    cfg.subdivisions = subdivisions;
    return cfg;
}

/* Random parameters where the seed's are constant: biases, BN scales and rolling statistics
 * (positive variances), so that every tensor reaches the scores. */
static void shake(struct dnn_network *net, uint64_t seed)
{
    uint64_t rng = seed;
    for (size_t i = 0; i < net->n; i++) {
        struct dnn_layer *l = &net->layers[i];
        for (size_t p = 0; p < l->n_params; p++) {
            const struct dnn_param *prm = &l->params[p];
            if (strcmp(prm->name, "weights") == 0)
                continue;
            const bool var = strcmp(prm->name, "rolling_variance") == 0;
            const bool scale = strcmp(prm->name, "scales") == 0;
            test_rng_fill(&rng, prm->value, prm->count,
                          var     ? 0.5f
                          : scale ? 0.8f
                                  : -0.2f,
                          var     ? 2.0f
                          : scale ? 1.2f
                                  : 0.2f);
        }
    }
}

static struct dnn_network *network(const struct dk_model *m, const struct dnn_net_config *cfg,
                                   bool training)
{
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, cfg, m->specs, m->n, training, SEED), DNN_OK);
    shake(net, SEED + 1);
    return net;
}

/* ------------------------------------------------------------- the chunks */

struct save {
    size_t n;
    struct dnn_tile c[MAX_CHUNKS]; /* layer: absolute */
    uint8_t *blob[MAX_CHUNKS];
    size_t size[MAX_CHUNKS];
};

static void save_free(struct save *s)
{
    for (size_t k = 0; k < s->n; k++)
        free(s->blob[k]);
    s->n = 0;
}

/* The chunks of layers first..last of @net as the TA cuts them (the engine's tiles). */
static size_t cut(const struct dnn_network *net, size_t first, size_t last, size_t work,
                  bool training, struct dnn_tile *c)
{
    const size_t n = dnn_tile_count(&net->layers[first], last - first + 1, work, training);
    assert_true(n > 0 && n <= MAX_CHUNKS);
    for (size_t k = 0; k < n; k++) {
        dnn_tile_at(&net->layers[first], last - first + 1, work, training, k, &c[k]);
        c[k].layer += first;
    }
    return n;
}

/* The plaintext STREAM_IMPORT takes for chunk @c of @net: each tensor's slice. */
static float *plain_of(const struct dnn_network *net, const struct dnn_tile *c)
{
    const struct dnn_layer *l = &net->layers[c->layer];
    struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
    const size_t n = dnn_tile_parts(l, c, false, parts);
    float *p = malloc(c->param_floats * sizeof(float));
    assert_non_null(p);
    for (size_t j = 0; j < n; j++)
        memcpy(p + parts[j].offset, l->params[parts[j].param].value + parts[j].src,
               parts[j].count * sizeof(float));
    return p;
}

static TEEC_Result import(struct ta *t, uint32_t k, const void *plain, size_t bytes, void *out,
                          size_t *out_size, uint64_t seen)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_MEMREF_TEMP_OUTPUT, TEEC_VALUE_INPUT);
    op.params[0].value.a = k;
    op.params[3].value.a = (uint32_t)seen;
    op.params[3].value.b = (uint32_t)(seen >> 32);
    set_mem(&op, 1, plain, bytes);
    set_mem(&op, 2, out, *out_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_IMPORT, &op);
    *out_size = op.params[2].tmpref.size;
    return res;
}

static void import_all(struct ta *t, const struct dnn_network *net, size_t first, size_t last,
                       size_t work, bool training, struct save *s)
{
    s->n = cut(net, first, last, work, training, s->c);
    for (size_t k = 0; k < s->n; k++) {
        const struct dnn_tile *c = &s->c[k];
        float *p = plain_of(net, c);
        s->size[k] =
            sizeof(struct dz_chunk_header) + c->floats * sizeof(float) + DZ_SEALED_TAG_BYTES;
        s->blob[k] = malloc(s->size[k]);
        assert_non_null(s->blob[k]);
        size_t size = s->size[k];
        assert_int_equal(import(t, (uint32_t)k, p, c->param_floats * sizeof(float), s->blob[k],
                                &size, net->seen),
                         TEEC_SUCCESS);
        assert_int_equal(size, s->size[k]);
        free(p);
    }
}

/* ------------------------------------------------------------- the passes */

static TEEC_Result begin(struct ta *t, uint32_t kind, const void *data, size_t data_bytes,
                         const void *truth, size_t truth_bytes, uint32_t flags, uint32_t *next)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    const bool infer = kind == DZ_STREAM_FORWARD;
    op.paramTypes = TEEC_PARAM_TYPES(data ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE, TEEC_VALUE_OUTPUT,
                                     infer ? TEEC_NONE : TEEC_VALUE_INPUT,
                                     truth ? TEEC_MEMREF_TEMP_INPUT : TEEC_NONE);
    if (data)
        set_mem(&op, 0, data, data_bytes);
    op.params[2].value.a = kind;
    op.params[2].value.b = flags;
    if (truth)
        set_mem(&op, 3, truth, truth_bytes);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_BEGIN, &op);
    *next = op.params[1].value.a;
    return res;
}

static TEEC_Result feed(struct ta *t, const void *blob, size_t size, uint32_t *next, void *out,
                        size_t *out_size, void *resealed, size_t *resealed_size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT,
                                     out ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE,
                                     resealed ? TEEC_MEMREF_TEMP_OUTPUT : TEEC_NONE);
    set_mem(&op, 0, blob, size);
    if (out)
        set_mem(&op, 2, out, *out_size);
    if (resealed)
        set_mem(&op, 3, resealed, *resealed_size);
    TEEC_Result res = invoke(t, DZ_CMD_STREAM_CHUNK, &op);
    *next = op.params[1].value.a;
    if (out)
        *out_size = op.params[2].tmpref.size;
    if (resealed)
        *resealed_size = op.params[3].tmpref.size;
    return res;
}

/* Every chunk of a pass from @next on; @reseal: each is replaced by what the TA re-seals,
 * the one replaced kept in @old (NULL: freed). */
static void pass_on(struct ta *t, struct save *s, bool reseal, uint32_t next, void *out,
                    size_t out_bytes, struct save *old)
{
    if (old)
        old->n = s->n;
    for (size_t i = 0; i < s->n; i++) {
        assert_true(next < s->n);
        const uint32_t k = next;
        size_t out_size = out_bytes, rsize = s->size[k];
        uint8_t *re = reseal ? malloc(rsize) : NULL;
        assert_true(!reseal || re);
        const TEEC_Result res =
            feed(t, s->blob[k], s->size[k], &next, out, &out_size, re, reseal ? &rsize : NULL);
        if (res != TEEC_SUCCESS)
            fail_msg("chunk %u: %#x", (unsigned)k, (unsigned)res);
        assert_int_equal(out_size, i + 1 == s->n ? out_bytes : 0);
        if (reseal) {
            assert_int_equal(rsize, s->size[k]);
            if (old) {
                free(old->blob[k]);
                old->blob[k] = s->blob[k];
                old->size[k] = s->size[k];
                old->c[k] = s->c[k];
            } else {
                free(s->blob[k]);
            }
            s->blob[k] = re;
        }
    }
    assert_int_equal(next, DZ_STREAM_DONE);
}

static void pass(struct ta *t, struct save *s, uint32_t kind, uint32_t flags, const void *data,
                 size_t data_bytes, const void *truth, size_t truth_bytes, void *out,
                 size_t out_bytes, struct save *old)
{
    uint32_t next = 0;
    const TEEC_Result res = begin(t, kind, data, data_bytes, truth, truth_bytes, flags, &next);
    if (res != TEEC_SUCCESS)
        fail_msg("STREAM_BEGIN %u: %#x", (unsigned)kind, (unsigned)res);
    /* BN in every segment here: FORWARD_TRAIN re-seals as BACKWARD and UPDATE do */
    pass_on(t, s, kind != DZ_STREAM_FORWARD, next, out, out_bytes, old);
}

static void open_segment(struct ta *t, const struct dk_model *m, const struct dnn_net_config *cfg,
                         uint32_t first, bool training, uint32_t work, TEEC_Result want)
{
    const struct seg g = {.cfg = cfg,
                          .specs = m->specs,
                          .n_layers = m->n,
                          .first = first,
                          .last = (uint32_t)m->n - 1,
                          .batch = BATCH,
                          .training = training,
                          .output_policy = DZ_OUTPUT_SCORES,
                          .seed = SEED};
    size_t size = 0;
    uint64_t need = 0;
    uint8_t *blob = make_blob(&g, &size);
    blob_header(blob)->stream_chunk_bytes = work;
    ta_start(t);
    assert_int_equal(ta_open_model(t, blob, size, &need), want);
    free(blob);
}

/* -------------------------------------------------------------- inference */

/* @m whole in the TA, streamed through @work bytes: the scores of the engine. */
static void infer_equivalence(const struct dk_model *m, uint32_t work, size_t min_conv_chunks)
{
    const struct dnn_net_config cfg = net_cfg(m, 1);
    struct dnn_network *ref = network(m, &cfg, false);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(x_floats * sizeof(float));
    assert_non_null(x);
    uint64_t rng = 0x1234 + work;
    test_rng_fill(&rng, x, x_floats, 0, 1);
    dnn_network_forward_range(ref, 0, ref->n - 1, x, NULL, false);
    const float *want = ref->layers[dnn_network_output_index(ref)].output;
    float y[BATCH * CLASSES];
    struct ta t;
    static struct save s;

    open_segment(&t, m, &cfg, 0, false, work, TEEC_SUCCESS);
    import_all(&t, ref, 0, ref->n - 1, work, false, &s);
    size_t most = 0; /* the most chunks of one convolutional layer */
    for (size_t k = 0, run = 0; k < s.n; k++) {
        run = s.c[k].first_rows ? 1 : run + 1;
        if (ref->layers[s.c[k].layer].kind == DNN_LAYER_CONVOLUTIONAL && run > most)
            most = run;
    }
    assert_true(most >= min_conv_chunks);
    for (int rep = 0; rep < 2; rep++) {
        memset(y, 0, sizeof(y));
        pass(&t, &s, DZ_STREAM_FORWARD, 0, x, x_floats * sizeof(float), NULL, 0, y, sizeof(y),
             NULL);
        assert_memory_equal(y, want, sizeof(y));
    }
    printf("%zu layers, working buffer %u: %zu chunks (up to %zu per conv layer), scores "
           "byte-identical\n",
           ref->n, (unsigned)work, s.n, most);
    save_free(&s);
    ta_stop(&t);
    free(x);
    dnn_network_free(ref);
}

static void test_conv_bn_streamed_scores(void **state)
{
    (void)state;
    infer_equivalence(&lenet, 8192, 4);
    infer_equivalence(&lenet, 65536, 1);
    infer_equivalence(&vgg7, 4096, 8);
    infer_equivalence(&vgg7, 20000, 2);
}

/* ------------------------------------------------------- tiles in the engine */

/* The slices of @l's own tensors from output @r0 on. */
static void own_slices(struct dnn_layer *l, size_t r0, struct dnn_tile_params *p)
{
    const size_t per = l->nweights / (size_t)l->out_c;
    memset(p, 0, sizeof(*p));
    p->biases = l->biases + r0;
    p->weights = l->weights + r0 * per;
    p->bias_updates = l->bias_updates + r0;
    p->weight_updates = l->weight_updates + r0 * per;
    if (l->spec.batch_normalize) {
        p->scales = l->bn.scales + r0;
        p->rolling_mean = l->bn.rolling_mean + r0;
        p->rolling_variance = l->bn.rolling_variance + r0;
        p->scale_updates = l->bn.scale_updates + r0;
    }
}

/* Forward, backward and update of every layer with parameters by tiles of @rows, against
 * the layers' own, after the same training forward. */
static void tiles_match(const struct dk_model *m, size_t rows)
{
    const struct dnn_net_config cfg = net_cfg(m, 1);
    struct dnn_network *ref = network(m, &cfg, true), *tiled = network(m, &cfg, true);
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES] = {0};
    assert_non_null(x);
    uint64_t rng = 99;
    test_rng_fill(&rng, x, x_floats, 0, 1);
    for (int b = 0; b < BATCH; b++)
        y[b * CLASSES + b] = 1;
    dnn_network_train_batch(ref, x, y);

    /* The same, layer by layer, the layers with parameters by tiles. */
    tiled->seen += BATCH;
    float *cols = malloc((tiled->workspace_floats * BATCH + 1) * sizeof(float));
    assert_non_null(cols);
    for (size_t i = 0; i < tiled->n; i++) {
        struct dnn_layer *l = &tiled->layers[i];
        const float *in = i ? tiled->layers[i - 1].output : x;
        if (!l->n_params) {
            dnn_network_forward_range(tiled, i, i, in, y, true);
            continue;
        }
        memset(l->delta, 0, l->outputs * (size_t)BATCH * sizeof(float));
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_forward(l, in, true, &p, r0, n, tiled->workspace), DNN_OK);
        }
    }
    for (size_t i = tiled->n; i-- > 0;) {
        struct dnn_layer *l = &tiled->layers[i];
        const float *in = i ? tiled->layers[i - 1].output : x;
        float *in_delta = i ? tiled->layers[i - 1].delta : NULL;
        if (!l->n_params) {
            dnn_network_backward_range(tiled, i, i, in, in_delta);
            continue;
        }
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_backward(l, in, in_delta, &p, r0, n, r0 == 0,
                                               r0 + n == (size_t)l->out_c, tiled->workspace, cols),
                             DNN_OK);
        }
    }
    for (size_t i = 0; i < tiled->n; i++) {
        struct dnn_layer *l = &tiled->layers[i];
        if (!l->n_params)
            continue;
        struct dnn_update_args a;
        dnn_network_update_args(tiled, i, &a);
        for (size_t r0 = 0; r0 < (size_t)l->out_c; r0 += rows) {
            const size_t n = (size_t)l->out_c - r0 < rows ? (size_t)l->out_c - r0 : rows;
            struct dnn_tile_params p;
            own_slices(l, r0, &p);
            assert_int_equal(dnn_tile_update(l, &a, &p, n), DNN_OK);
        }
    }
    for (size_t i = 0; i < ref->n; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++) {
            const struct dnn_param *w = &ref->layers[i].params[p], *g = &tiled->layers[i].params[p];
            if (memcmp(g->value, w->value, w->count * sizeof(float)) != 0)
                fail_msg("tiles of %zu: layer %zu %s differ", rows, i, w->name);
            if (w->update && memcmp(g->update, w->update, w->count * sizeof(float)) != 0)
                fail_msg("tiles of %zu: layer %zu %s updates differ", rows, i, w->name);
        }
    free(cols);
    free(x);
    dnn_network_free(tiled);
    dnn_network_free(ref);
}

static void test_tiles_match_layers(void **state)
{
    (void)state;
    static const size_t rows[] = {1, 3, 7, 1000};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        tiles_match(&lenet, rows[r]);
        tiles_match(&vgg7, rows[r]);
    }
}

/* ------------------------------------------------------------- training */

/* Every chunk of @s decrypts to @ref's tensors and update buffers, slice by slice. */
static void check_chunks(const struct save *s, const struct dnn_network *ref, uint32_t generation)
{
    for (size_t k = 0; k < s->n; k++) {
        const struct dnn_tile *c = &s->c[k];
        const struct dnn_layer *l = &ref->layers[c->layer];
        struct dz_chunk_header h;
        float *p = sim_unseal_chunk(env.storage, s->blob[k], s->size[k], &h);
        assert_non_null(p);
        assert_int_equal(h.layer, c->layer);
        assert_int_equal(h.generation, generation);
        struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
        const size_t n = dnn_tile_parts(l, c, true, parts);
        for (size_t j = 0; j < n; j++) {
            const struct dnn_param *prm = &l->params[parts[j].param];
            const float *want = (parts[j].update ? prm->update : prm->value) + parts[j].src;
            if (memcmp(p + parts[j].offset, want, parts[j].count * sizeof(float)) != 0)
                fail_msg("chunk %zu (layer %zu rows %zu..): %s%s differ from no TEE", k, c->layer,
                         c->row0, prm->name, parts[j].update ? " updates" : "");
        }
        free(p);
    }
}

/* One batch of random images and one-hot labels. */
static void batch_data(uint64_t *rng, float *x, size_t x_floats, float *y)
{
    test_rng_fill(rng, x, x_floats, 0, 1);
    memset(y, 0, BATCH * CLASSES * sizeof(float));
    for (int b = 0; b < BATCH; b++)
        y[b * CLASSES + (int)(test_rng_next(rng) % CLASSES)] = 1;
}

/* Trains @m ITERS iterations with layers first.. streamed through @work bytes, against the
 * whole network with no TEE: the same losses, parameters, rolling statistics and momenta. */
static void train_equivalence(const struct dk_model *m, size_t first, uint32_t work,
                              int subdivisions)
{
    const struct dnn_net_config cfg = net_cfg(m, subdivisions);
    struct dnn_network *ref = network(m, &cfg, true), *nw = network(m, &cfg, true);
    const size_t last = ref->n - 1;
    const size_t x_floats = (size_t)BATCH * ref->layers[0].inputs;
    const size_t mid_floats = (size_t)BATCH * ref->layers[first].inputs;
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES];
    float *delta = malloc(mid_floats * sizeof(float));
    assert_non_null(x);
    assert_non_null(delta);
    struct ta t;
    static struct save s;

    open_segment(&t, m, &cfg, (uint32_t)first, true, work, TEEC_SUCCESS);
    import_all(&t, nw, first, last, work, true, &s);
    uint64_t rng_ref = 77, rng_tee = 77;
    float avg_ref = 0;
    for (int it = 0; it < ITERS; it++) {
        float sum = 0;
        for (int sd = 0; sd < subdivisions; sd++) {
            batch_data(&rng_ref, x, x_floats, y);
            sum += dnn_network_train_batch(ref, x, y);
        }
        const float loss_ref = sum / (float)(subdivisions * BATCH);
        avg_ref = it == 0 ? loss_ref : avg_ref;
        avg_ref = avg_ref * .9f + loss_ref * .1f;

        for (int sd = 0; sd < subdivisions; sd++) {
            batch_data(&rng_tee, x, x_floats, y);
            nw->seen += BATCH;
            const float *mid = x;
            if (first > 0) {
                dnn_network_forward_range(nw, 0, first - 1, x, NULL, true);
                mid = nw->layers[first - 1].output;
            }
            pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_floats * sizeof(float), y, sizeof(y),
                 NULL, 0, NULL);
            pass(&t, &s, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, first ? delta : NULL,
                 first ? mid_floats * sizeof(float) : 0, NULL);
            if (first > 0) {
                for (size_t i = 0; i < mid_floats; i++)
                    nw->layers[first - 1].delta[i] += delta[i];
                dnn_network_backward_range(nw, 0, first - 1, x, NULL);
            }
        }
        if (first > 0)
            dnn_network_update_range(nw, 0, first - 1);
        uint32_t loss[2] = {0, 0};
        pass(&t, &s, DZ_STREAM_UPDATE, DZ_STREAM_WANT_LOSS, NULL, 0, NULL, 0, loss, sizeof(loss),
             NULL);
        float got, got_avg;
        memcpy(&got, &loss[0], 4);
        memcpy(&got_avg, &loss[1], 4);
        if (memcmp(&got, &loss_ref, 4) != 0 || memcmp(&got_avg, &avg_ref, 4) != 0)
            fail_msg("iteration %d: loss %.9g avg %.9g, no TEE %.9g avg %.9g", it + 1, got, got_avg,
                     loss_ref, avg_ref);
        printf("layers %zu..%zu, %zu chunks, subdivisions %d, iteration %d: loss %.9g "
               "(bit-identical)\n",
               first, last, s.n, subdivisions, it + 1, got);
    }
    for (size_t i = 0; i < first; i++)
        for (size_t p = 0; p < ref->layers[i].n_params; p++)
            assert_memory_equal(nw->layers[i].params[p].value, ref->layers[i].params[p].value,
                                ref->layers[i].params[p].count * sizeof(float));
    /* Each iteration re-seals every chunk in each forward, backward and the update. */
    check_chunks(&s, ref, (uint32_t)(ITERS * (2 * subdivisions + 1)));
    save_free(&s);
    ta_stop(&t);
    free(delta);
    free(x);
    dnn_network_free(nw);
    dnn_network_free(ref);
}

static void test_train_conv_bn_streamed(void **state)
{
    (void)state;
    train_equivalence(&vgg7, 1, 8192, 1);
    train_equivalence(&vgg7, 1, 8192, 2);
    train_equivalence(&lenet, 0, 16384, 1);
    train_equivalence(&lenet, 0, 16384, 2);
}

/* ------------------------------------------------------------- hostile */

static void test_hostile_conv_chunks(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = net_cfg(&vgg7, 1);
    struct dnn_network *nw = network(&vgg7, &cfg, true);
    const size_t first = 1, work = 8192;
    const size_t x_floats = (size_t)BATCH * nw->layers[0].inputs;
    const size_t mid_bytes = (size_t)BATCH * nw->layers[first].inputs * sizeof(float);
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES];
    float *delta = malloc(mid_bytes);
    assert_non_null(x);
    assert_non_null(delta);
    uint64_t rng = 5;
    batch_data(&rng, x, x_floats, y);
    dnn_network_forward_range(nw, 0, first - 1, x, NULL, false);
    const float *mid = nw->layers[first - 1].output;
    struct ta t;
    static struct save s, old;
    uint32_t next = 0;

    open_segment(&t, &vgg7, &cfg, (uint32_t)first, true, (uint32_t)work, TEEC_SUCCESS);
    import_all(&t, nw, first, nw->n - 1, work, true, &s);
    /* A chunk of a convolutional layer in several: swapped with its neighbour. */
    size_t k = 1;
    while (k < s.n && !(nw->layers[s.c[k].layer].kind == DNN_LAYER_CONVOLUTIONAL &&
                        !s.c[k].first_rows && !s.c[k].last_rows))
        k++;
    assert_true(k + 1 < s.n);
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, mid, mid_bytes, y, sizeof(y), 0, &next),
                     TEEC_SUCCESS);
    for (size_t i = 0; i < k; i++) {
        size_t rsize = s.size[i];
        uint8_t *re = malloc(rsize);
        assert_int_equal(feed(&t, s.blob[i], s.size[i], &next, NULL, NULL, re, &rsize),
                         TEEC_SUCCESS);
        free(re);
    }
    size_t rsize = s.size[k] > s.size[k + 1] ? s.size[k] : s.size[k + 1];
    uint8_t *re = malloc(rsize);
    assert_non_null(re);
    assert_int_equal(feed(&t, s.blob[k + 1], s.size[k + 1], &next, NULL, NULL, re, &rsize),
                     TEEC_ERROR_SECURITY);
    /* Half the chunks were re-sealed by that forward: the parameters are lost until an
     * import. */
    assert_true(tee_log_contains(&env, "the streamed parameters are lost"));
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, mid, mid_bytes, y, sizeof(y), 0, &next),
                     TEEC_ERROR_BAD_STATE);
    save_free(&s);
    import_all(&t, nw, first, nw->n - 1, work, true, &s);

    /* An abandoned training forward: the next pass is refused. */
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, mid, mid_bytes, y, sizeof(y), 0, &next),
                     TEEC_SUCCESS);
    rsize = s.size[0];
    assert_int_equal(feed(&t, s.blob[0], s.size[0], &next, NULL, NULL, re, &rsize), TEEC_SUCCESS);
    assert_int_equal(begin(&t, DZ_STREAM_FORWARD_TRAIN, mid, mid_bytes, y, sizeof(y), 0, &next),
                     TEEC_ERROR_BAD_STATE);
    assert_true(tee_log_contains(&env, "abandoned"));
    save_free(&s);
    import_all(&t, nw, first, nw->n - 1, work, true, &s);

    /* The training forward re-seals (BN's rolling statistics moved): the chunk of a
     * convolutional layer from before it, replayed in the BACKWARD, is refused. */
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, &old);
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, NULL, 0, NULL, 0, 0, &next), TEEC_SUCCESS);
    /* BACKWARD starts from the last layer: the first chunk it asks for is the 1x1
     * convolution's */
    assert_int_equal(nw->layers[s.c[next].layer].kind, DNN_LAYER_CONVOLUTIONAL);
    rsize = s.size[next];
    size_t dsize = mid_bytes;
    assert_int_equal(feed(&t, old.blob[next], old.size[next], &next, delta, &dsize, re, &rsize),
                     TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "an older generation: replayed"));
    free(re);
    save_free(&s);
    save_free(&old);
    ta_stop(&t);

    /* A grouped convolution does not stream: refused by name. */
    struct dk_model grouped = vgg7;
    struct dnn_layer_spec specs[64];
    assert_true(vgg7.n <= 64);
    memcpy(specs, vgg7.specs, vgg7.n * sizeof(specs[0]));
    specs[3].groups = 2;
    grouped.specs = specs;
    open_segment(&t, &grouped, &cfg, 1, false, (uint32_t)work, TEEC_ERROR_BAD_PARAMETERS);
    assert_true(tee_log_contains(&env, "grouped convolution"));
    ta_stop(&t);
    free(delta);
    free(x);
    dnn_network_free(nw);
}

/* ------------------------------------------------------------ the edges */

/* The edge shapes (edges_text): scores, tiles and training as the fashion networks'. */
static void test_edges_streamed(void **state)
{
    (void)state;
    infer_equivalence(&edges, 4096, 4);
    infer_equivalence(&edges, 8192, 2);
    static const size_t rows[] = {1, 2, 3, 7, 1000};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
        tiles_match(&edges, rows[r]);
}

static void test_edges_train_streamed(void **state)
{
    (void)state;
    /* the input delta crosses from a convolution with biases, a dilated and batch-normalised
     * one, the 1x1 one with one filter, and the 2x2 one with stride 2 */
    for (size_t first = 0; first <= 4; first++) {
        train_equivalence(&edges, first, 4096, 1);
        train_equivalence(&edges, first, 8192, 2);
    }
}

/* ------------------------------------------------------------ forked saves */

/* A deep copy of @src into @dst. */
static void save_copy(struct save *dst, const struct save *src)
{
    dst->n = src->n;
    for (size_t k = 0; k < src->n; k++) {
        dst->c[k] = src->c[k];
        dst->size[k] = src->size[k];
        dst->blob[k] = malloc(src->size[k]);
        assert_non_null(dst->blob[k]);
        memcpy(dst->blob[k], src->blob[k], src->size[k]);
    }
}

/* STREAM_IMPORT's kept save: the normal world streams chunks it kept, `seen` @seen. */
static TEEC_Result adopt_kept(struct ta *t, uint64_t seen)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_VALUE_INPUT);
    op.params[0].value.a = DZ_STREAM_DONE;
    op.params[3].value.a = (uint32_t)seen;
    op.params[3].value.b = (uint32_t)(seen >> 32);
    return invoke(t, DZ_CMD_STREAM_IMPORT, &op);
}

/* One save trained twice from the same generation (a kept copy loaded again) forks: each
 * re-sealing pass moves the rolling statistics (or, in UPDATE, the weights) its own way. A
 * pass takes every chunk from one lineage; a chunk of the other fork, of the same save and
 * generation number, is refused, or a pass would run a model the TA never computed. */
static void test_forked_save_refused(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = net_cfg(&vgg7, 1);
    struct dnn_network *nw = network(&vgg7, &cfg, true);
    const size_t first = 1, work = 8192;
    const size_t x_floats = (size_t)BATCH * nw->layers[0].inputs;
    const size_t mid_floats = (size_t)BATCH * nw->layers[first].inputs;
    const size_t mid_bytes = mid_floats * sizeof(float);
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES];
    float *mid = malloc(mid_bytes), *delta = malloc(mid_bytes);
    assert_non_null(x);
    assert_non_null(mid);
    assert_non_null(delta);
    struct ta t;
    static struct save a, b;
    uint64_t rng = 11;

    open_segment(&t, &vgg7, &cfg, (uint32_t)first, true, (uint32_t)work, TEEC_SUCCESS);
    import_all(&t, nw, first, nw->n - 1, work, true, &a);
    save_copy(&b, &a); /* the normal world keeps generation 0 */
    for (int fork = 0; fork < 2; fork++) {
        batch_data(&rng, x, x_floats, y);
        dnn_network_forward_range(nw, 0, first - 1, x, NULL, false);
        memcpy(mid, nw->layers[first - 1].output, mid_bytes);
        if (fork == 1)
            assert_int_equal(adopt_kept(&t, 0), TEEC_SUCCESS);
        pass(&t, fork ? &b : &a, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0,
             NULL);
    }
    /* The session follows fork b: its BACKWARD takes b's first chunk, not a's second. */
    uint32_t next = 0;
    assert_int_equal(begin(&t, DZ_STREAM_BACKWARD, NULL, 0, NULL, 0, 0, &next), TEEC_SUCCESS);
    size_t rsize = b.size[next], dsize = mid_bytes;
    uint8_t *re = malloc(rsize > a.size[0] ? rsize : a.size[0]);
    assert_non_null(re);
    assert_int_equal(feed(&t, b.blob[next], b.size[next], &next, delta, &dsize, re, &rsize),
                     TEEC_SUCCESS);
    rsize = a.size[next];
    dsize = mid_bytes;
    assert_int_equal(feed(&t, a.blob[next], a.size[next], &next, delta, &dsize, re, &rsize),
                     TEEC_ERROR_SECURITY);
    assert_true(tee_log_contains(&env, "not of the session's save"));
    free(re);
    save_free(&a);
    save_free(&b);
    ta_stop(&t);
    free(delta);
    free(mid);
    free(x);
    dnn_network_free(nw);
}

/* ---------------------------------------------------- back to resident */

static TEEC_Result load_chunk(struct ta *t, uint32_t k, uint32_t work, uint32_t n,
                              const uint8_t *blob, size_t size)
{
    TEEC_Operation op;
    memset(&op, 0, sizeof(op));
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                     TEEC_VALUE_INPUT);
    op.params[0].value.a = k;
    op.params[0].value.b = 1; /* training chunks */
    op.params[1].value.a = work;
    op.params[1].value.b = n;
    set_mem(&op, 2, blob, size);
    return invoke(t, DZ_CMD_LOAD_CHUNK, &op);
}

static void test_conv_save_loads_resident(void **state)
{
    (void)state;
    const struct dnn_net_config cfg = net_cfg(&vgg7, 1);
    struct dnn_network *nw = network(&vgg7, &cfg, true);
    const size_t first = 1, work = 8192;
    const size_t x_floats = (size_t)BATCH * nw->layers[0].inputs;
    const size_t mid_bytes = (size_t)BATCH * nw->layers[first].inputs * sizeof(float);
    float *x = malloc(x_floats * sizeof(float)), y[BATCH * CLASSES];
    float *delta = malloc(mid_bytes);
    assert_non_null(x);
    assert_non_null(delta);
    uint64_t rng = 8;
    batch_data(&rng, x, x_floats, y);
    dnn_network_forward_range(nw, 0, first - 1, x, NULL, false);
    const float *mid = nw->layers[first - 1].output;
    struct ta t;
    static struct save s;

    open_segment(&t, &vgg7, &cfg, (uint32_t)first, true, (uint32_t)work, TEEC_SUCCESS);
    import_all(&t, nw, first, nw->n - 1, work, true, &s);
    pass(&t, &s, DZ_STREAM_FORWARD_TRAIN, 0, mid, mid_bytes, y, sizeof(y), NULL, 0, NULL);
    pass(&t, &s, DZ_STREAM_BACKWARD, 0, NULL, 0, NULL, 0, delta, mid_bytes, NULL);
    pass(&t, &s, DZ_STREAM_UPDATE, 0, NULL, 0, NULL, 0, NULL, 0, NULL);
    ta_stop(&t);

    /* The reference: the trained parameters as the chunks hold them. */
    struct dnn_network *ref = NULL;
    assert_int_equal(dnn_network_create(&ref, &cfg, vgg7.specs, vgg7.n, false, SEED), DNN_OK);
    for (size_t k = 0; k < s.n; k++) {
        struct dz_chunk_header h;
        float *p = sim_unseal_chunk(env.storage, s.blob[k], s.size[k], &h);
        assert_non_null(p);
        const struct dnn_layer *l = &ref->layers[h.layer];
        struct dnn_tile_part parts[2 * DNN_MAX_PARAMS];
        const size_t n = dnn_tile_parts(l, &s.c[k], true, parts);
        for (size_t j = 0; j < n; j++)
            if (!parts[j].update)
                memcpy(l->params[parts[j].param].value + parts[j].src, p + parts[j].offset,
                       parts[j].count * sizeof(float));
        free(p);
    }
    dnn_network_forward_range(ref, first, ref->n - 1, mid, NULL, false);
    const float *want = ref->layers[dnn_network_output_index(ref)].output;

    open_segment(&t, &vgg7, &cfg, (uint32_t)first, false, 0, TEEC_SUCCESS);
    for (uint32_t k = 0; k < (uint32_t)s.n; k++)
        assert_int_equal(load_chunk(&t, k, (uint32_t)work, (uint32_t)s.n, s.blob[k], s.size[k]),
                         TEEC_SUCCESS);
    float scores[BATCH * CLASSES];
    size_t ssize = sizeof(scores);
    assert_int_equal(ta_forward(&t, mid, mid_bytes, NULL, 0, 0, scores, &ssize), TEEC_SUCCESS);
    assert_memory_equal(scores, want, sizeof(scores));
    ta_stop(&t);
    save_free(&s);
    free(delta);
    free(x);
    dnn_network_free(ref);
    dnn_network_free(nw);
}

static int group_setup(void **state)
{
    (void)state;
    struct dk_error err = {{0}};
    if (dk_parse_network("cfg/fashion_lenet.cfg", &lenet, &err) != 0 ||
        dk_parse_network("cfg/fashion_vgg7.cfg", &vgg7, &err) != 0 ||
        dk_cfg_read_mem("edges", edges_text, sizeof(edges_text) - 1, false, &edges_cfg, &err) !=
            0 ||
        dk_parse_network_cfg(edges_cfg, &edges, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return tee_env_setup(&env);
}

static int group_teardown(void **state)
{
    (void)state;
    dk_model_free(&lenet);
    dk_model_free(&vgg7);
    dk_model_free(&edges);
    dk_cfg_free(edges_cfg);
    tee_env_teardown(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_streamed_scores),  cmocka_unit_test(test_tiles_match_layers),
        cmocka_unit_test(test_train_conv_bn_streamed),   cmocka_unit_test(test_hostile_conv_chunks),
        cmocka_unit_test(test_conv_save_loads_resident), cmocka_unit_test(test_edges_streamed),
        cmocka_unit_test(test_edges_train_streamed),     cmocka_unit_test(test_forked_save_refused),
    };
    return cmocka_run_group_tests_name("ta_stream_conv", tests, group_setup, group_teardown);
}
