/*
 * dz_policy.c - the model owner's policy (struct dz_policy, darknetz_ta.h): well-formedness,
 * the policy a session's request amounts to, and "asks for no more than". Shared by the TA,
 * which enforces it, and the host, which seals it (`darknetp seal`) and explains refusals.
 */
#include <string.h>

#include "ta/include/dz_wire.h"

/* Finite and >= 0 (NaN fails both comparisons). */
static bool bound_ok(float x)
{
    return x >= 0.0f && x <= 3.4028235e38f;
}

const char *dz_output_name(uint32_t output)
{
    static const char *const names[DZ_OUTPUT_COUNT] = {"top1", "topk", "rank", "scores"};
    return output < DZ_OUTPUT_COUNT ? names[output] : "?";
}

void dz_policy_of_request(const struct dz_model_header *h, struct dz_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->modes = h->training ? DZ_MODES_ALL : DZ_MODE_INFER;
    if (h->training && h->adam)
        p->modes |= DZ_MODE_ADAM;
    p->output = h->output_policy;
    p->top_k_max = h->top_k >= 1 ? h->top_k : 1;
    p->batch_min = h->batch;
    p->batch_max = h->batch;
    p->subdivisions_max = h->subdivisions;
    p->learning_rate_max = h->learning_rate;
    p->momentum_max = h->momentum;
    p->decay_max = h->decay;
}

const char *dz_policy_check(const struct dz_policy *p, char msg[DZ_WIRE_MSG_MAX])
{
    if (!(p->modes & DZ_MODE_INFER) || (p->modes & ~DZ_MODES_VALID) ||
        ((p->modes & DZ_MODE_ADAM) && !(p->modes & DZ_MODE_TRAIN)))
        return dz_wire_fail(msg,
                            "policy: modes %#x (inference must be allowed; adam only with "
                            "training)",
                            (unsigned)p->modes);
    if (p->output >= DZ_OUTPUT_COUNT)
        return dz_wire_fail(msg, "policy: output %u", (unsigned)p->output);
    if (p->top_k_max < 1 || p->top_k_max > DZ_MAX_LABELS)
        return dz_wire_fail(msg, "policy: top_k_max %u out of 1..%u", (unsigned)p->top_k_max,
                            (unsigned)DZ_MAX_LABELS);
    if (p->batch_min < 1 || p->batch_min > p->batch_max || p->batch_max > DZ_MAX_BATCH)
        return dz_wire_fail(msg, "policy: batch %u..%u", (unsigned)p->batch_min,
                            (unsigned)p->batch_max);
    if (p->subdivisions_max < 1 || p->subdivisions_max > DZ_MAX_DIM)
        return dz_wire_fail(msg, "policy: subdivisions_max %u", (unsigned)p->subdivisions_max);
    if (!bound_ok(p->learning_rate_max) || !bound_ok(p->momentum_max) || !bound_ok(p->decay_max))
        return dz_wire_fail(msg, "policy: a training bound is negative or not finite");
    for (size_t i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++) {
        if (p->reserved[i])
            return dz_wire_fail(msg, "policy: reserved[%zu] is not zero", i);
    }
    return NULL;
}

/* The output rule: a lower level, or TOPK with no more labels than a TOPK policy allows. */
static const char *output_within(const struct dz_policy *want, const struct dz_policy *allowed,
                                 char msg[DZ_WIRE_MSG_MAX])
{
    if (want->output > allowed->output)
        return dz_wire_fail(msg, "the model allows output %s at most, %s was asked",
                            dz_output_name(allowed->output), dz_output_name(want->output));
    if (want->output == DZ_OUTPUT_TOPK && allowed->output == DZ_OUTPUT_TOPK &&
        want->top_k_max > allowed->top_k_max)
        return dz_wire_fail(msg, "the model allows the top %u labels at most, %u were asked",
                            (unsigned)allowed->top_k_max, (unsigned)want->top_k_max);
    return NULL;
}

static const char *training_within(const struct dz_policy *want, const struct dz_policy *allowed,
                                   char msg[DZ_WIRE_MSG_MAX])
{
    if (!(allowed->modes & DZ_MODE_TRAIN))
        return dz_wire_fail(msg, "the model allows inference only, training was asked");
    if ((want->modes & DZ_MODE_ADAM) && !(allowed->modes & DZ_MODE_ADAM))
        return dz_wire_fail(msg, "the model allows training with momentum SGD only, adam was "
                                 "asked");
    if (want->batch_min < allowed->batch_min || want->batch_max > allowed->batch_max)
        return dz_wire_fail(msg,
                            "the model allows training at batch %u..%u, batch %u..%u was asked",
                            (unsigned)allowed->batch_min, (unsigned)allowed->batch_max,
                            (unsigned)want->batch_min, (unsigned)want->batch_max);
    if (want->subdivisions_max > allowed->subdivisions_max)
        return dz_wire_fail(msg, "the model allows %u subdivisions at most, %u were asked",
                            (unsigned)allowed->subdivisions_max, (unsigned)want->subdivisions_max);
    /* Compared as floats, both finite (dz_policy_check): ask for less, never more. */
    if (want->learning_rate_max > allowed->learning_rate_max)
        return dz_wire_fail(msg, "the model allows learning_rate %g at most, %g was asked",
                            (double)allowed->learning_rate_max, (double)want->learning_rate_max);
    if (want->momentum_max > allowed->momentum_max)
        return dz_wire_fail(msg, "the model allows momentum %g at most, %g was asked",
                            (double)allowed->momentum_max, (double)want->momentum_max);
    if (want->decay_max > allowed->decay_max)
        return dz_wire_fail(msg, "the model allows decay %g at most, %g was asked",
                            (double)allowed->decay_max, (double)want->decay_max);
    return NULL;
}

const char *dz_policy_within(const struct dz_policy *want, const struct dz_policy *allowed,
                             char msg[DZ_WIRE_MSG_MAX])
{
    const char *why = output_within(want, allowed, msg);

    if (!why && (want->modes & ~allowed->modes & DZ_MODE_INFER))
        why = dz_wire_fail(msg, "the model does not allow inference");
    if (!why && (want->modes & DZ_MODE_TRAIN))
        why = training_within(want, allowed, msg);
    return why;
}
