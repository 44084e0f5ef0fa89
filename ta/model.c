/*
 * model.c - DZ_CMD_OPEN_MODEL: validate the model blob, plan the segment's secure memory,
 * refuse it before allocating when it does not fit, then build it.
 *
 * The blob is copied into TA memory once (header, then specs) and only the copies are read.
 * Every header and spec field is checked by the protocol's codec (dz_wire.h: fixed ceilings,
 * enums in range, unused fields zero) before the engine sees it; the engine then checks shapes
 * and size arithmetic again. Route and shortcut indexes are absolute on the wire and must lie
 * inside the segment, before their own layer; the codec rebases them to the segment.
 */
#include <string.h>
#include <tee_internal_api.h>
#include <user_ta_header_defines.h>

#include "dz_session.h"
#include "dz_ta_memory.h"
#include "dz_wire.h"

/* The engine built what it planned (same setup and layout, so anything else is a TA bug). */
static bool matches_plan(const struct dnn_network *net, const struct dnn_plan *plan)
{
    return net->n == plan->n &&
           net->arena_bytes + net->n * sizeof(struct dnn_layer) + sizeof(*net) == plan->bytes &&
           net->layers[0].inputs == plan->inputs &&
           net->layers[net->n - 1].outputs == plan->outputs && net->truths == plan->truths;
}

static void set_need(TEE_Param *p, uint64_t bytes)
{
    p->value.a = (uint32_t)bytes;
    p->value.b = (uint32_t)(bytes >> 32);
}

static void *alloc_floats(size_t bytes)
{
    return bytes ? TEE_Malloc(bytes, TEE_MALLOC_FILL_ZERO) : NULL;
}

TEE_Result dz_cmd_open_model(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    const uint32_t want = TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT,
                                          TEE_PARAM_TYPE_NONE, TEE_PARAM_TYPE_NONE);
    TEE_Result res = TEE_ERROR_GENERIC;
    struct dz_model_header hdr;
    struct dnn_net_config cfg;
    struct dz_wire_spec *wire = NULL;
    struct dnn_layer_spec *specs = NULL;
    int *tree = NULL;
    TEE_OperationHandle digest = TEE_HANDLE_NULL;
    struct dnn_network *net = NULL;
    float *input = NULL, *truth = NULL, *io = NULL, *work = NULL;
    uint32_t n_chunks = 0;
    struct dnn_plan plan;
    struct dz_ta_memory mem;
    size_t wire_bytes = 0, spec_bytes = 0, tree_bytes = 0, classes = 0;
    enum dnn_status st = DNN_OK;
    char why[DZ_WIRE_MSG_MAX];

    memset(&mem, 0, sizeof(mem));
    memset(&plan, 0, sizeof(plan));
    if (types != want)
        return TEE_ERROR_BAD_PARAMETERS;
    if (s->net) {
        EMSG("a model is already open in this session");
        return TEE_ERROR_BAD_STATE;
    }
    set_need(&p[1], 0);

    /* Copy, then check: the header once, then the specs and the tree group table once. */
    const size_t size = p[0].memref.size;
    if (size < sizeof(hdr)) {
        EMSG("model blob of %zu bytes, shorter than its header (%zu)", size, sizeof(hdr));
        return TEE_ERROR_BAD_PARAMETERS;
    }
    TEE_MemMove(&hdr, p[0].memref.buffer, sizeof(hdr));
    if (dz_wire_decode_header(&hdr, &cfg, why)) {
        EMSG("%s", why);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    const size_t n = hdr.n_specs;
    const size_t n_words = hdr.tree_words;                        /* <= DZ_MAX_TREE_WORDS */
    const size_t specs_on_wire = n * sizeof(struct dz_wire_spec); /* n <= DZ_MAX_SPECS */
    wire_bytes = specs_on_wire + n_words * sizeof(uint32_t);
    if (size != sizeof(hdr) + wire_bytes) {
        EMSG("model blob of %zu bytes, expected %zu for %zu layers and %zu tree words", size,
             sizeof(hdr) + wire_bytes, n, n_words);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    /* The specs and the table in one buffer, in blob order: one copy, and the digest covers
     * them in the order `darknetp seal` hashes them. */
    wire = TEE_Malloc(wire_bytes, TEE_MALLOC_FILL_ZERO);
    spec_bytes = n * sizeof(struct dnn_layer_spec);
    specs = TEE_Malloc(spec_bytes, TEE_MALLOC_FILL_ZERO);
    tree_bytes = n_words * sizeof(int);
    tree = n_words ? TEE_Malloc(tree_bytes, TEE_MALLOC_FILL_ZERO) : NULL;
    if (!wire || !specs || (n_words && !tree)) {
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    TEE_MemMove(wire, (const uint8_t *)p[0].memref.buffer + sizeof(hdr), wire_bytes);
    for (size_t i = 0; i < n; i++) {
        if (dz_wire_decode_spec(&wire[i], hdr.first, hdr.first + (uint32_t)i, &specs[i], why)) {
            EMSG("%s", why);
            res = TEE_ERROR_BAD_PARAMETERS;
            goto out;
        }
    }
    /* The sizes land in the session's own array, which the specs (and so the network) borrow. */
    if (dz_wire_decode_tree(wire, n, hdr.first,
                            (const uint32_t *)(const void *)((const uint8_t *)wire + specs_on_wire),
                            n_words, tree, specs, why)) {
        EMSG("%s", why);
        res = TEE_ERROR_BAD_PARAMETERS;
        goto out;
    }
    const bool has_tree = n_words != 0;
    res = dz_model_digest_begin(&digest, wire, wire_bytes);
    if (res != TEE_SUCCESS)
        goto out;
    dz_wipe_free(wire, wire_bytes);
    wire = NULL;

    /* Plan: the engine's plan of the segment (shapes, buffers, bytes), then the verdict;
     * nothing big is allocated before it. */
    const bool training = hdr.training != 0;
    st = dnn_plan_build(&plan, &cfg, specs, n, training);
    if (st != DNN_OK && plan.failed_layer < n) {
        const struct dnn_layer_ops *ops = dnn_layer_ops_for(specs[plan.failed_layer].kind);
        EMSG("layer %zu (%s%s): %s", hdr.first + plan.failed_layer, ops ? ops->name : "?",
             specs[plan.failed_layer].tree_group_size
                 ? " with a tree, whose group sizes must sum to its inputs"
                 : "",
             dnn_status_str(st));
    }
    const bool ends = hdr.last == hdr.n_layers - 1;
    const struct dz_ta_memory_args args = {
        .engine_bytes = plan.bytes,
        .spec_bytes = spec_bytes + tree_bytes, /* the session keeps the tree's sizes */
        .batch = hdr.batch,
        .inputs = plan.inputs,
        .outputs = plan.outputs,
        .truths = plan.truths,
        .param_floats = plan.param_floats,
        .training = training,
        .first_layer = hdr.first == 0,
        .ends_network = ends,
        .takes_truth = training && plan.has_cost,
        .stream_chunk_bytes = hdr.stream_chunk_bytes,
    };
    if (st == DNN_OK && !dz_ta_memory_compute(&args, CFG_DZ_TA_HEAP_RESERVE, &mem))
        st = DNN_ERR_OVERFLOW;
    if (st == DNN_ERR_OVERFLOW) {
        EMSG("layers %u..%u: secure memory need overflows size_t", (unsigned)hdr.first,
             (unsigned)hdr.last);
        set_need(&p[1], UINT64_MAX);
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (st != DNN_OK) {
        res = st == DNN_ERR_NOMEM ? TEE_ERROR_OUT_OF_MEMORY : TEE_ERROR_BAD_PARAMETERS;
        goto out;
    }
    /* A segment of cost layers only ranks what it received. */
    classes = plan.layers[plan.output_index].kind == DNN_LAYER_COST ? plan.inputs : plan.truths;
    /* The per-layer table is not needed past here: free it before the segment is built, so
     * that it does not count against the heap the check above granted. */
    dnn_plan_free(&plan);
    /* darknet ranks a tree's scores after hierarchy_predictions, which needs the tree's
     * parents; the TA holds only its group sizes, so it would rank other labels than the
     * normal world. The scores leave instead, and the host applies the hierarchy. A training
     * session may open (its FORWARD(TRAIN) sends no labels); its label forwards are refused
     * (commands.c). */
    if (ends && has_tree && !training && hdr.output_policy != DZ_OUTPUT_SCORES) {
        EMSG("a segment holding a tree softmax ranks no labels (darknet ranks them after "
             "hierarchy_predictions, which needs the tree): ask for output policy scores");
        res = TEE_ERROR_ACCESS_DENIED;
        goto out;
    }
    if (ends && hdr.output_policy == DZ_OUTPUT_RANK && classes > DZ_MAX_LABELS) {
        EMSG("rank of %zu labels asked, a prediction holds %u", classes, (unsigned)DZ_MAX_LABELS);
        res = TEE_ERROR_BAD_PARAMETERS;
        goto out;
    }
    set_need(&p[1], mem.total);
    /* (The sealed header counts payload bytes in 32 bits; any heap that fits it is smaller.) */
    if (mem.total > (size_t)TA_DATA_SIZE || mem.payload > UINT32_MAX) {
        EMSG("layers %u..%u need %zu bytes of secure memory, TA_DATA_SIZE is %zu",
             (unsigned)hdr.first, (unsigned)hdr.last, mem.total, (size_t)TA_DATA_SIZE);
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }

    /* Allocate: the session's buffers, then the segment. */
    input = alloc_floats(mem.input);
    truth = alloc_floats(mem.truth);
    io = alloc_floats(mem.io);
    work = alloc_floats(mem.work);
    if (!input || (mem.truth && !truth) || (mem.io && !io) || (mem.work && !work)) {
        res = TEE_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    const uint64_t seed = ((uint64_t)hdr.seed_hi << 32) | hdr.seed_lo;
    st = dnn_network_create(&net, &cfg, specs, n, training, seed);
    if (st != DNN_OK) {
        EMSG("layers %u..%u: %s", (unsigned)hdr.first, (unsigned)hdr.last, dnn_status_str(st));
        res = st == DNN_ERR_NOMEM ? TEE_ERROR_OUT_OF_MEMORY : TEE_ERROR_BAD_PARAMETERS;
        goto out;
    }
    if (!matches_plan(net, &plan)) {
        EMSG("layers %u..%u: the engine built other shapes than planned", (unsigned)hdr.first,
             (unsigned)hdr.last);
        res = TEE_ERROR_GENERIC;
        goto out;
    }
    if (mem.work) {
        res = dz_stream_chunks(net, &hdr, mem.work, &n_chunks);
        if (res != TEE_SUCCESS)
            goto out;
    }
    res = dz_model_digest_finish(&digest, &hdr, net, s->model_digest);
    if (res != TEE_SUCCESS)
        goto out;

    s->net = net;
    s->hdr = hdr;
    s->training = training;
    s->ends_network = ends;
    s->has_cost = plan.has_cost;
    s->takes_truth = args.takes_truth;
    s->classes = classes;
    s->in_floats = mem.input / sizeof(float);
    s->out_floats = (size_t)hdr.batch * plan.outputs; /* <= the engine's output buffer */
    s->truth_floats = mem.truth / sizeof(float);
    s->io_floats = mem.io / sizeof(float);
    s->payload_bytes = mem.payload;
    s->sealed_bytes = mem.sealed;
    s->input = input;
    s->truth = truth;
    s->io = io;
    s->streaming = mem.work != 0;
    s->chunk_bytes = mem.work;
    s->work = work;
    s->n_chunks = n_chunks;
    dz_policy_of_request(&hdr, &s->policy); /* until a sealed load brings the owner's */
    s->policy_sealed = false;
    s->model_version = 0;
    s->tree = tree;
    s->tree_bytes = tree_bytes;
    s->has_tree = has_tree;
    tree = NULL;
    net = NULL;
    input = truth = io = work = NULL;
    IMSG("layers %u..%u of %u open: %zu bytes of secure memory, %zu parameters%s",
         (unsigned)hdr.first, (unsigned)hdr.last, (unsigned)hdr.n_layers, mem.total,
         plan.param_floats, mem.work ? ", streamed" : "");
    res = TEE_SUCCESS;
out:
    dnn_plan_free(&plan);
    dnn_network_free(net);
    dz_wipe_free(work, mem.work);
    dz_wipe_free(io, mem.io);
    dz_wipe_free(truth, mem.truth);
    dz_wipe_free(input, mem.input);
    dz_model_digest_abort(&digest);
    dz_wipe_free(specs, spec_bytes);
    dz_wipe_free(wire, wire_bytes);
    dz_wipe_free(tree, tree_bytes);
    return res;
}
