/*
 * output_policy.c - what leaves the TEE when the segment ends the network and does not train:
 * per image, the labels of its final scores (softmax probabilities) chosen by
 * header.output_policy, best first, as dnn_top_k ranks them; or, only under DZ_OUTPUT_SCORES
 * (which the model's policy must allow), the scores themselves.
 */
#include <string.h>
#include <tee_internal_api.h>

#include "dz_session.h"

/* Labels per prediction under the session's policy (OPEN_MODEL bounded RANK by DZ_MAX_LABELS). */
static size_t label_count(const struct dz_session *s)
{
    switch (s->hdr.output_policy) {
    case DZ_OUTPUT_TOPK:
        return s->hdr.top_k < s->classes ? s->hdr.top_k : s->classes;
    case DZ_OUTPUT_RANK:
        return s->classes;
    case DZ_OUTPUT_TOP1:
    default:
        return 1;
    }
}

/* The scores are the last non-cost layer's output; a segment of cost layers only has none of
 * its own and ranks what it received. (batch, classes) */
static const float *final_scores(const struct dz_session *s)
{
    const struct dnn_network *net = s->net;
    const struct dnn_layer *out = &net->layers[dnn_network_output_index(net)];
    return out->kind == DNN_LAYER_COST ? s->input : out->output;
}

void dz_output_scores(const struct dz_session *s, void *dst)
{
    TEE_MemMove(dst, final_scores(s), (size_t)s->hdr.batch * s->classes * sizeof(float));
}

void dz_output_predictions(const struct dz_session *s, void *dst)
{
    const float *scores = final_scores(s);
    const size_t k = label_count(s);
    struct dz_prediction pred;
    int index[DZ_MAX_LABELS];

    for (size_t b = 0; b < s->hdr.batch; b++) {
        dnn_top_k(scores + b * s->classes, s->classes, k, index);
        memset(&pred, 0, sizeof(pred));
        pred.count = (uint32_t)k;
        for (size_t j = 0; j < DZ_MAX_LABELS; j++)
            pred.labels[j] = j < k ? index[j] : -1;
        TEE_MemMove((uint8_t *)dst + b * sizeof(pred), &pred, sizeof(pred));
    }
}
