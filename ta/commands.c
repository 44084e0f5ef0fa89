/*
 * commands.c - DZ_CMD_VERSION, LOAD_PLAIN, FORWARD, BACKWARD and UPDATE.
 *
 * Every handler checks, in this order: the parameter types (TEE_ERROR_BAD_PARAMETERS), that
 * a model is open (TEE_ERROR_BAD_STATE), the exact type word this segment takes, every memref
 * size against sizes OPEN_MODEL computed (an input of another size: BAD_PARAMETERS; an output
 * too small: TEE_ERROR_SHORT_BUFFER with the size needed; a larger output is cut to size), then
 * the session state (BAD_STATE) and the policy of the parameters now loaded (ACCESS_DENIED,
 * with an EMSG naming the rule). Only then does it copy its inputs into TA memory, once,
 * compute on the copies, and write its outputs last.
 */
#include <tee_internal_api.h>
#include <user_ta_header_defines.h>

#include "dz_session.h"
#include "fmt_float.h"

#define T_NONE TEE_PARAM_TYPE_NONE
#define T_VALUE_IN TEE_PARAM_TYPE_VALUE_INPUT
#define T_VALUE_OUT TEE_PARAM_TYPE_VALUE_OUTPUT
#define T_MEM_IN TEE_PARAM_TYPE_MEMREF_INPUT
#define T_MEM_OUT TEE_PARAM_TYPE_MEMREF_OUTPUT

static bool type_is(uint32_t types, unsigned i, uint32_t a, uint32_t b)
{
    const uint32_t t = TEE_PARAM_TYPE_GET(types, i);
    return t == a || t == b;
}

TEE_Result dz_cmd_version(uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_VALUE_OUT, T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    p[0].value.a = DZ_TA_PROTOCOL_VERSION;
    p[0].value.b = (uint32_t)TA_DATA_SIZE;
    return TEE_SUCCESS;
}

/* The parameters of the segment's first n_layers layers from src, in .weights order. */
static void copy_params_upto(struct dz_session *s, const uint8_t *src, size_t n_layers)
{
    size_t off = 0;
    for (size_t i = 0; i < n_layers; i++) {
        const struct dnn_layer *l = &s->net->layers[i];
        for (size_t k = 0; k < l->n_params; k++) {
            const size_t bytes = l->params[k].count * sizeof(float);
            if (bytes)
                TEE_MemMove(l->params[k].value, src + off, bytes);
            off += bytes;
        }
    }
}

/*
 * Whether bytes is the parameter size of the segment's first *held layers, for some
 * *held from 0 (nothing) to all: a whole segment, or the part a partial .weights file
 * holds. Parameter-free layers right after the boundary count as held.
 */
static bool plain_prefix(const struct dz_session *s, size_t bytes, size_t *held)
{
    size_t sum = 0;
    bool found = bytes == 0;
    *held = 0;
    for (size_t i = 0; i < s->net->n && sum <= bytes; i++) {
        const struct dnn_layer *l = &s->net->layers[i];
        for (size_t k = 0; k < l->n_params; k++)
            sum += l->params[k].count * sizeof(float); /* <= payload_bytes: OPEN_MODEL */
        if (sum == bytes) {
            *held = i + 1;
            found = true;
        }
    }
    return found;
}

TEE_Result dz_resident(const struct dz_session *s, const char *what)
{
    if (!s->streaming)
        return TEE_SUCCESS;
    EMSG("%s in a weight-streaming session: its parameters are not resident", what);
    return TEE_ERROR_BAD_STATE;
}

TEE_Result dz_cmd_load_plain(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (types != TEE_PARAM_TYPES(T_MEM_IN, T_VALUE_IN, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "LOAD_PLAIN") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    size_t held = 0;
    if (!plain_prefix(s, p[0].memref.size, &held)) {
        EMSG("plain parameters of %zu bytes refused: layers %u..%u have %zu, and it is not "
             "the size of their first layers either",
             (size_t)p[0].memref.size, (unsigned)s->hdr.first, (unsigned)s->hdr.last,
             s->payload_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    /* Each byte is read once, straight into the parameter it belongs to. */
    copy_params_upto(s, p[0].memref.buffer, held);
    /* A partial file (darknet's `partial`) lacks the rest: drawn from the session's seed
     * as the normal world draws a new network's, so both worlds start alike. */
    dnn_network_init_params(s->net, held);
    s->params_lost = false;
    s->net->seen = ((uint64_t)p[1].value.b << 32) | p[1].value.a;
    dz_reset_training(s);
    /* Plain parameters are the normal world's own: the session's request is the policy. */
    dz_policy_of_request(&s->hdr, &s->policy);
    s->policy_sealed = false;
    s->model_version = 0;
    return TEE_SUCCESS;
}

void dz_reset_training(struct dz_session *s)
{
    dnn_network_clear_state(s->net);
    TEE_MemFill(s->input, 0, s->in_floats * sizeof(float));
    if (s->truth)
        TEE_MemFill(s->truth, 0, s->truth_floats * sizeof(float));
    if (s->io)
        TEE_MemFill(s->io, 0, s->io_floats * sizeof(float));
    s->forward_pending = false;
    s->backwards = 0;
    s->loss_sum = 0;
    s->avg_loss = 0; /* the running average of the previous parameters' losses too */
    s->avg_valid = false;
}

/* A session whose parameters a failed load wiped computes nothing until the next load. */
TEE_Result dz_params_held(const struct dz_session *s, const char *what)
{
    if (!s->params_lost)
        return TEE_SUCCESS;
    EMSG("%s refused: the session holds no parameters since a load failed; load again", what);
    return TEE_ERROR_BAD_STATE;
}

/* Training is the owner's to allow: refused (ACCESS_DENIED) under an inference-only policy. */
TEE_Result dz_training_allowed(const struct dz_session *s, const char *what)
{
    if (s->policy.modes & DZ_MODE_TRAIN)
        return TEE_SUCCESS;
    EMSG("%s refused: the model's policy allows inference only", what);
    return TEE_ERROR_ACCESS_DENIED;
}

TEE_Result dz_cmd_forward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (TEE_PARAM_TYPE_GET(types, 0) != T_MEM_IN || !type_is(types, 1, T_MEM_IN, T_NONE) ||
        TEE_PARAM_TYPE_GET(types, 2) != T_VALUE_IN || !type_is(types, 3, T_MEM_OUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "FORWARD") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    const uint32_t flags = p[2].value.a;
    if (flags & ~DZ_FORWARD_TRAIN)
        return TEE_ERROR_BAD_PARAMETERS;
    const bool train = (flags & DZ_FORWARD_TRAIN) != 0;
    if (train && !s->training) {
        EMSG("training forward on a segment opened for inference");
        return TEE_ERROR_BAD_STATE;
    }
    if (train && dz_training_allowed(s, "training forward") != TEE_SUCCESS)
        return TEE_ERROR_ACCESS_DENIED;

    /* What crosses for this segment and this kind of pass (darknetz_ta.h, DZ_CMD_FORWARD). */
    const bool with_truth = train && s->takes_truth;
    const bool predictions = s->ends_network && !train;
    const bool with_output = !s->ends_network || predictions;
    /* The conditionals make the macro's value an int: compare as the uint32_t it is. */
    if (types != (uint32_t)TEE_PARAM_TYPES(T_MEM_IN, with_truth ? T_MEM_IN : T_NONE, T_VALUE_IN,
                                           with_output ? T_MEM_OUT : T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    const size_t in_bytes = s->in_floats * sizeof(float);
    const size_t truth_bytes = s->truth_floats * sizeof(float);
    const bool scores = predictions && s->hdr.output_policy == DZ_OUTPUT_SCORES;
    const size_t out_bytes = scores        ? (size_t)s->hdr.batch * s->classes * sizeof(float)
                             : predictions ? (size_t)s->hdr.batch * sizeof(struct dz_prediction)
                                           : s->out_floats * sizeof(float);
    if (p[0].memref.size != in_bytes) {
        EMSG("forward input of %zu bytes refused: expected %zu", (size_t)p[0].memref.size,
             in_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    if (with_truth && p[1].memref.size != truth_bytes) {
        EMSG("truth of %zu bytes refused: expected %zu", (size_t)p[1].memref.size, truth_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    /* model.c: a tree's labels are ranked after darknet's hierarchy, in the normal world */
    if (predictions && !scores && s->has_tree) {
        EMSG("labels of a tree softmax are not ranked in the TA: ask for output policy scores");
        return TEE_ERROR_ACCESS_DENIED;
    }
    if (with_output && p[3].memref.size < out_bytes) {
        p[3].memref.size = out_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }

    if (dz_params_held(s, "forward") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;

    /* One gradient query per step: after `subdivisions` BACKWARDs the parameters must
     * change (UPDATE) before another training forward. */
    if (train && s->backwards >= s->hdr.subdivisions) {
        EMSG("training forward refused: %u backward passes since the last update; UPDATE first",
             (unsigned)s->backwards);
        return TEE_ERROR_BAD_STATE;
    }

    TEE_MemMove(s->input, p[0].memref.buffer, in_bytes);
    if (with_truth)
        TEE_MemMove(s->truth, p[1].memref.buffer, truth_bytes);
    struct dnn_network *net = s->net;
    if (train)
        net->seen += s->hdr.batch; /* as darknet's train_network_datum, before the pass */
    dnn_network_forward_range(net, 0, net->n - 1, s->input, with_truth ? s->truth : NULL, train);
    s->forward_pending = train;
    if (train && s->ends_network && s->has_cost)
        s->loss_sum += dnn_network_cost(net);

    if (scores)
        dz_output_scores(s, p[3].memref.buffer);
    else if (predictions)
        dz_output_predictions(s, p[3].memref.buffer);
    else if (with_output)
        TEE_MemMove(p[3].memref.buffer, net->layers[net->n - 1].output, out_bytes);
    if (with_output)
        p[3].memref.size = out_bytes;
    return TEE_SUCCESS;
}

TEE_Result dz_cmd_backward(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (!type_is(types, 0, T_MEM_IN, T_NONE) || !type_is(types, 1, T_MEM_OUT, T_NONE) ||
        TEE_PARAM_TYPE_GET(types, 2) != T_NONE || TEE_PARAM_TYPE_GET(types, 3) != T_NONE)
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net || !s->training)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "BACKWARD") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;

    /* The delta at last's output comes in unless the segment's own cost made it; the delta
     * at first's input goes back unless the segment starts the network. */
    const bool delta_in = !s->ends_network;
    const bool delta_out = s->hdr.first > 0;
    if (types != (uint32_t)TEE_PARAM_TYPES(delta_in ? T_MEM_IN : T_NONE,
                                           delta_out ? T_MEM_OUT : T_NONE, T_NONE, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    const size_t in_bytes = s->out_floats * sizeof(float);
    const size_t out_bytes = s->in_floats * sizeof(float);
    if (delta_in && p[0].memref.size != in_bytes) {
        EMSG("backward delta of %zu bytes refused: expected %zu", (size_t)p[0].memref.size,
             in_bytes);
        return TEE_ERROR_BAD_PARAMETERS;
    }
    if (delta_out && p[1].memref.size < out_bytes) {
        p[1].memref.size = out_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }
    if (dz_params_held(s, "backward") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    if (!s->forward_pending) {
        EMSG("backward without a training forward before it");
        return TEE_ERROR_BAD_STATE;
    }
    if (dz_training_allowed(s, "backward") != TEE_SUCCESS)
        return TEE_ERROR_ACCESS_DENIED;

    struct dnn_network *net = s->net;
    if (delta_in) {
        float *delta = net->layers[net->n - 1].delta; /* (batch, outputs) */
        TEE_MemMove(s->io, p[0].memref.buffer, in_bytes);
        for (size_t i = 0; i < s->out_floats; i++)
            delta[i] += s->io[i];
    }
    float *input_delta = NULL;
    if (delta_out) {
        TEE_MemFill(s->io, 0, out_bytes); /* backward adds into it */
        input_delta = s->io;
    }
    dnn_network_backward_range(net, 0, net->n - 1, s->input, input_delta);
    s->forward_pending = false;
    s->backwards++;

    if (delta_out) {
        TEE_MemMove(p[1].memref.buffer, s->io, out_bytes);
        p[1].memref.size = out_bytes;
    }
    return TEE_SUCCESS;
}

/*
 * The loss line of darknet's classifier for one iteration (batch * subdivisions images):
 * the forwards' network costs summed, divided by the images, and the running average
 * avg = avg * .9 + loss * .1 started at the first loss, in float as the normal world does.
 * Both numbers go to *loss_out and *avg_out, for UPDATE's optional output.
 */
static void log_loss(struct dz_session *s, float *loss_out, float *avg_out)
{
    const uint64_t images = (uint64_t)s->hdr.subdivisions * s->hdr.batch;
    const float loss = s->loss_sum / (float)images;
    char loss_text[DZ_FMT_FLOAT_MAX];
    char avg_text[DZ_FMT_FLOAT_MAX];

    if (!s->avg_valid) {
        s->avg_loss = loss;
        s->avg_valid = true;
    }
    s->avg_loss = s->avg_loss * .9f + loss * .1f;
    dz_fmt_float(loss_text, sizeof(loss_text), loss);
    dz_fmt_float(avg_text, sizeof(avg_text), s->avg_loss);
    IMSG("loss = %s, avg loss = %s from the TA", loss_text, avg_text);
    *loss_out = loss;
    *avg_out = s->avg_loss;
}

/*
 * The loss is a function of the final scores and the truth, which the normal world holds:
 * it may leave exactly when the scores may, i.e. the session asked for DZ_OUTPUT_SCORES and
 * its policy (the request's own, or a sealed one LOAD_SEALED found it within) allows them.
 * Under a label policy it would hand the normal world the loss-threshold membership attack
 * the partition is there to stop.
 */
static TEE_Result loss_may_leave(const struct dz_session *s)
{
    if (s->hdr.output_policy == DZ_OUTPUT_SCORES && s->policy.output >= DZ_OUTPUT_SCORES)
        return TEE_SUCCESS;
    EMSG("loss refused: it leaves only with the scores (output policy scores); this session "
         "lets labels leave");
    return TEE_ERROR_ACCESS_DENIED;
}

/* A float in a value parameter's 32 bits, as IEEE-754 single precision. */
static uint32_t float_bits(float f)
{
    uint32_t u = 0;
    TEE_MemMove(&u, &f, sizeof(u));
    return u;
}

TEE_Result dz_update_allowed(const struct dz_session *s, bool loss_out)
{
    if (dz_params_held(s, "update") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    /* Only a segment that ends the network with a cost has a loss to give. */
    if (loss_out && !(s->ends_network && s->has_cost))
        return TEE_ERROR_BAD_PARAMETERS;
    if (s->backwards == 0) {
        EMSG("update without a backward since the last update or load");
        return TEE_ERROR_BAD_STATE;
    }
    if (dz_training_allowed(s, "update") != TEE_SUCCESS)
        return TEE_ERROR_ACCESS_DENIED;
    if (loss_out && loss_may_leave(s) != TEE_SUCCESS)
        return TEE_ERROR_ACCESS_DENIED;
    /* The engine takes the rate from the TA's own `seen` and the header's schedule; a sealed
     * policy bounds the rate of every update, whatever the schedule does, from both sides: a
     * negative rate (a step scale or sgdr's minimum below zero) is as large a step. */
    const float rate = dnn_network_current_rate(s->net);
    if (s->policy_sealed && !(rate >= 0.0f && rate <= s->policy.learning_rate_max)) {
        char have[DZ_FMT_FLOAT_MAX], max[DZ_FMT_FLOAT_MAX];
        dz_fmt_float(have, sizeof(have), rate);
        dz_fmt_float(max, sizeof(max), s->policy.learning_rate_max);
        EMSG("update refused: the schedule's rate %s is outside the model's 0..%s", have, max);
        return TEE_ERROR_ACCESS_DENIED;
    }
    return TEE_SUCCESS;
}

void dz_update_done(struct dz_session *s, uint32_t *loss_bits, uint32_t *avg_bits)
{
    s->backwards = 0;
    float loss = 0, avg = 0;
    if (s->ends_network && s->has_cost)
        log_loss(s, &loss, &avg);
    s->loss_sum = 0;
    *loss_bits = float_bits(loss);
    *avg_bits = float_bits(avg);
}

TEE_Result dz_cmd_update(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (!type_is(types, 0, T_VALUE_OUT, T_NONE) || TEE_PARAM_TYPE_GET(types, 1) != T_NONE ||
        TEE_PARAM_TYPE_GET(types, 2) != T_NONE || TEE_PARAM_TYPE_GET(types, 3) != T_NONE)
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net || !s->training)
        return TEE_ERROR_BAD_STATE;
    if (dz_resident(s, "UPDATE") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    const bool loss_out = TEE_PARAM_TYPE_GET(types, 0) == T_VALUE_OUT;
    const TEE_Result res = dz_update_allowed(s, loss_out);
    if (res != TEE_SUCCESS)
        return res;
    dnn_network_update_range(s->net, 0, s->net->n - 1);
    uint32_t loss = 0, avg = 0;
    dz_update_done(s, &loss, &avg);
    if (loss_out) {
        p[0].value.a = loss;
        p[0].value.b = avg;
    }
    return TEE_SUCCESS;
}

/* FORWARD (training), BACKWARD and optionally UPDATE in one call: each step is the command
 * itself, entered with the parameters it would get alone, so its checks all apply. */
TEE_Result dz_cmd_train_step(struct dz_session *s, uint32_t types, TEE_Param p[TEE_NUM_PARAMS])
{
    if (TEE_PARAM_TYPE_GET(types, 0) != T_MEM_IN || !type_is(types, 1, T_MEM_IN, T_NONE) ||
        TEE_PARAM_TYPE_GET(types, 2) != TEE_PARAM_TYPE_VALUE_INOUT ||
        !type_is(types, 3, T_MEM_OUT, T_NONE))
        return TEE_ERROR_BAD_PARAMETERS;
    const uint32_t flags = p[2].value.a;
    if ((flags & ~(DZ_STEP_UPDATE | DZ_STEP_LOSS)) ||
        ((flags & DZ_STEP_LOSS) && !(flags & DZ_STEP_UPDATE)))
        return TEE_ERROR_BAD_PARAMETERS;
    if (!s->net || !s->training)
        return TEE_ERROR_BAD_STATE;
    if (!s->ends_network) {
        EMSG("TRAIN_STEP refused: the segment does not end the network");
        return TEE_ERROR_BAD_STATE;
    }
    if (dz_resident(s, "TRAIN_STEP") != TEE_SUCCESS)
        return TEE_ERROR_BAD_STATE;
    /* The delta's room first, so that a short buffer leaves nothing done. */
    const bool delta_out = s->hdr.first > 0;
    if ((TEE_PARAM_TYPE_GET(types, 3) == T_MEM_OUT) != delta_out)
        return TEE_ERROR_BAD_PARAMETERS;
    const size_t out_bytes = s->in_floats * sizeof(float);
    if (delta_out && p[3].memref.size < out_bytes) {
        p[3].memref.size = out_bytes;
        return TEE_ERROR_SHORT_BUFFER;
    }

    TEE_Param fp[TEE_NUM_PARAMS] = {p[0], p[1]};
    fp[2].value.a = DZ_FORWARD_TRAIN;
    TEE_Result res = dz_cmd_forward(
        s, TEE_PARAM_TYPES(T_MEM_IN, TEE_PARAM_TYPE_GET(types, 1), T_VALUE_IN, T_NONE), fp);
    if (res != TEE_SUCCESS)
        return res;

    TEE_Param bp[TEE_NUM_PARAMS] = {{.value = {0, 0}}, p[3]};
    res = dz_cmd_backward(s, TEE_PARAM_TYPES(T_NONE, TEE_PARAM_TYPE_GET(types, 3), T_NONE, T_NONE),
                          bp);
    if (delta_out)
        p[3].memref.size = bp[1].memref.size;
    if (res != TEE_SUCCESS || !(flags & DZ_STEP_UPDATE))
        return res;

    const bool loss = (flags & DZ_STEP_LOSS) != 0;
    TEE_Param up[TEE_NUM_PARAMS] = {{.value = {0, 0}}};
    res =
        dz_cmd_update(s, TEE_PARAM_TYPES(loss ? T_VALUE_OUT : T_NONE, T_NONE, T_NONE, T_NONE), up);
    if (res == TEE_SUCCESS && loss) {
        p[2].value.a = up[0].value.a;
        p[2].value.b = up[0].value.b;
    }
    return res;
}
