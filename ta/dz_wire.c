/*
 * dz_wire.c - encoder and decoder of the model description (dz_wire.h), one table of fields
 * for both directions. Pure C with no I/O: compiled into the TA and into the host.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ta/include/dz_wire.h"

/* The wire arrays are the engine's arrays: a change of either must change the protocol. */
_Static_assert(sizeof(((struct dz_wire_spec *)0)->route) / sizeof(int32_t) == DNN_MAX_ROUTE,
               "dz_wire_spec.route must hold DNN_MAX_ROUTE indexes");
_Static_assert(sizeof(((struct dz_model_header *)0)->steps) / sizeof(int32_t) == DNN_MAX_STEPS,
               "dz_model_header.steps must hold DNN_MAX_STEPS values");
_Static_assert(sizeof(((struct dz_model_header *)0)->scales) / sizeof(float) == DNN_MAX_STEPS,
               "dz_model_header.scales must hold DNN_MAX_STEPS values");
_Static_assert(DNN_LAYER_KIND_COUNT <= 32, "layer kinds are a 32-bit mask below");

const char *dz_wire_fail(char msg[DZ_WIRE_MSG_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, DZ_WIRE_MSG_MAX, fmt, ap);
    va_end(ap);
    return msg;
}

/* NaN and +-inf are not finite; written without == on floats (-Wfloat-equal). */
static bool is_finite(float x)
{
    return x >= -3.4028235e38f && x <= 3.4028235e38f;
}

/* ------------------------------------------------------------- the field table */

enum field_type { FT_INT, FT_FLOAT };

enum field_check {
    FC_RANGE,      /* int in [lo, hi] */
    FC_FINITE,     /* float, finite */
    FC_UNIT,       /* float in [0, 1) */
    FC_POSITIVE,   /* float, finite and > 0 */
    FC_RATE_SCALE, /* float in [0, 1] (-0.0 included) */
};

#define KIND(k) (1u << (k))
#define CONV KIND(DNN_LAYER_CONVOLUTIONAL)
#define LOCAL KIND(DNN_LAYER_LOCAL)
#define LRN KIND(DNN_LAYER_NORMALIZATION)
#define POOL KIND(DNN_LAYER_MAXPOOL)

/* One scalar of struct dz_wire_spec and its twin in struct dnn_layer_spec. */
struct spec_field {
    const char *name;
    size_t wire_off, spec_off;
    enum field_type type;
    enum field_check check;
    uint32_t kinds; /* the layer kinds that use it; zero on the wire for the others */
    int32_t lo;
    uint32_t hi;
};

#define SF(f, t, c, k, lo, hi)                                                                     \
    {                                                                                              \
#f, offsetof(struct dz_wire_spec, f), offsetof(struct dnn_layer_spec, f), t, c, k, lo, hi  \
    }

static const struct spec_field spec_fields[] = {
    SF(filters, FT_INT, FC_RANGE, CONV | LOCAL, 1, DZ_MAX_DIM),
    SF(size, FT_INT, FC_RANGE, CONV | POOL | LOCAL | LRN, 1, DZ_MAX_KERNEL),
    SF(stride, FT_INT, FC_RANGE, CONV | POOL, 1, DZ_MAX_KERNEL),
    SF(pad, FT_INT, FC_RANGE, CONV | POOL | LOCAL, 0, DZ_MAX_KERNEL),
    SF(groups, FT_INT, FC_RANGE, CONV, 1, DZ_MAX_DIM),
    SF(outputs, FT_INT, FC_RANGE, KIND(DNN_LAYER_CONNECTED), 1, DZ_MAX_OUTPUTS),
    SF(probability, FT_FLOAT, FC_UNIT, KIND(DNN_LAYER_DROPOUT), 0, 0),
    SF(softmax_groups, FT_INT, FC_RANGE, KIND(DNN_LAYER_SOFTMAX), 1, DZ_MAX_OUTPUTS),
    SF(temperature, FT_FLOAT, FC_POSITIVE, KIND(DNN_LAYER_SOFTMAX), 0, 0),
    SF(cost_scale, FT_FLOAT, FC_FINITE, KIND(DNN_LAYER_COST), 0, 0),
    SF(cost_ratio, FT_FLOAT, FC_FINITE, KIND(DNN_LAYER_COST), 0, 0),
    SF(alpha, FT_FLOAT, FC_FINITE, KIND(DNN_LAYER_SHORTCUT) | LRN, 0, 0),
    SF(beta, FT_FLOAT, FC_FINITE, KIND(DNN_LAYER_SHORTCUT) | LRN, 0, 0),
    SF(dilation, FT_INT, FC_RANGE, CONV, 0, DZ_MAX_KERNEL),
    SF(learning_rate_scale, FT_FLOAT, FC_RATE_SCALE,
       CONV | KIND(DNN_LAYER_CONNECTED) | KIND(DNN_LAYER_BATCHNORM) | KIND(DNN_LAYER_SHORTCUT), 0,
       0),
    SF(route_groups, FT_INT, FC_RANGE, KIND(DNN_LAYER_ROUTE), 0, DZ_MAX_DIM),
    SF(group_id, FT_INT, FC_RANGE, KIND(DNN_LAYER_ROUTE), 0, DZ_MAX_DIM),
    SF(kappa, FT_FLOAT, FC_FINITE, LRN, 0, 0),
    SF(crop_height, FT_INT, FC_RANGE, KIND(DNN_LAYER_CROP), 1, DZ_MAX_DIM),
    SF(crop_width, FT_INT, FC_RANGE, KIND(DNN_LAYER_CROP), 1, DZ_MAX_DIM),
    SF(extra, FT_INT, FC_RANGE, KIND(DNN_LAYER_REORG), 0, DZ_MAX_OUTPUTS),
    SF(scale, FT_FLOAT, FC_FINITE, KIND(DNN_LAYER_UPSAMPLE), 0, 0),
    SF(antialiasing, FT_INT, FC_RANGE, CONV | POOL, 0, 2),
};

/* stride has a second range: reorg's is positive, upsample's negative to downsample. */
static const struct spec_field stride_fields[] = {
    SF(stride, FT_INT, FC_RANGE, KIND(DNN_LAYER_REORG) | LOCAL, 1, DZ_MAX_KERNEL),
    SF(stride, FT_INT, FC_RANGE, KIND(DNN_LAYER_UPSAMPLE), -(int32_t)DZ_MAX_KERNEL, DZ_MAX_KERNEL),
};

/* The bool fields packed in layer_flags: bit, kind, spec field. */
static const struct {
    uint32_t bit;
    enum dnn_layer_kind kind;
    size_t spec_off;
} flag_fields[] = {
    {DZ_LF_FLIP, DNN_LAYER_CROP, offsetof(struct dnn_layer_spec, flip)},
    {DZ_LF_NOADJUST, DNN_LAYER_CROP, offsetof(struct dnn_layer_spec, noadjust)},
    {DZ_LF_REVERSE, DNN_LAYER_REORG, offsetof(struct dnn_layer_spec, reverse)},
    {DZ_LF_REORG3D, DNN_LAYER_REORG, offsetof(struct dnn_layer_spec, reorg3d)},
    {DZ_LF_SCALE_WH, DNN_LAYER_SCALE_CHANNELS, offsetof(struct dnn_layer_spec, scale_wh)},
};

/* The kinds that use the enum and bool fields (checked in range for every kind). */
#define ACTIVATION_KINDS                                                                           \
    (CONV | KIND(DNN_LAYER_CONNECTED) | KIND(DNN_LAYER_SHORTCUT) |                                 \
     KIND(DNN_LAYER_SCALE_CHANNELS) | KIND(DNN_LAYER_ACTIVATION) | KIND(DNN_LAYER_SAM) | LOCAL)
#define FROM_KINDS (KIND(DNN_LAYER_SHORTCUT) | KIND(DNN_LAYER_SCALE_CHANNELS) | KIND(DNN_LAYER_SAM))
#define BN_KINDS (CONV | KIND(DNN_LAYER_CONNECTED))
#define COST_KINDS KIND(DNN_LAYER_COST)
/* Kinds with route[]: route's layers, a shortcut's sources after from. */
#define ROUTE_KINDS (KIND(DNN_LAYER_ROUTE) | KIND(DNN_LAYER_SHORTCUT))

/* Kinds whose stride stride_fields checks instead of spec_fields. */
static bool stride_kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof(stride_fields) / sizeof(stride_fields[0]); i++) {
        if (stride_fields[i].kinds & kind)
            return true;
    }
    return false;
}

static int32_t get_i32(const void *base, size_t off)
{
    int32_t v = 0;
    memcpy(&v, (const uint8_t *)base + off, sizeof(v));
    return v;
}

static float get_f32(const void *base, size_t off)
{
    float v = 0;
    memcpy(&v, (const uint8_t *)base + off, sizeof(v));
    return v;
}

/* The engine spec's int and float fields are int and float: 4 bytes each, as on the wire. */
_Static_assert(sizeof(int) == sizeof(int32_t) && sizeof(float) == 4, "4-byte int and float");

static void copy4(void *dst, size_t dst_off, const void *src, size_t src_off)
{
    memcpy((uint8_t *)dst + dst_off, (const uint8_t *)src + src_off, 4);
}

static bool field_zero(const struct dz_wire_spec *w, const struct spec_field *f)
{
    return get_i32(w, f->wire_off) == 0; /* all-zero bits, +0.0f for floats */
}

static const char *check_field(const struct dz_wire_spec *w, const struct spec_field *f,
                               uint32_t index, char msg[DZ_WIRE_MSG_MAX])
{
    if (f->type == FT_INT) {
        const int32_t v = get_i32(w, f->wire_off);
        if (v < f->lo || (int64_t)v > (int64_t)f->hi)
            return dz_wire_fail(msg, "layer %u: %s = %d out of %d..%u", (unsigned)index, f->name,
                                (int)v, (int)f->lo, (unsigned)f->hi);
        return NULL;
    }
    const float v = get_f32(w, f->wire_off);
    bool ok = is_finite(v);
    if (f->check == FC_UNIT)
        ok = v >= 0.0f && v < 1.0f;
    else if (f->check == FC_POSITIVE)
        ok = ok && v > 0.0f;
    else if (f->check == FC_RATE_SCALE)
        ok = v >= 0.0f && v <= 1.0f;
    return ok ? NULL : dz_wire_fail(msg, "layer %u: %s out of range", (unsigned)index, f->name);
}

void dz_wire_encode_spec(const struct dnn_layer_spec *s, struct dz_wire_spec *w)
{
    const uint32_t kind = KIND(s->kind);

    memset(w, 0, sizeof(*w));
    w->kind = (uint32_t)s->kind;
    if (kind & ACTIVATION_KINDS)
        w->activation = (uint32_t)s->activation;
    if (kind & BN_KINDS)
        w->batch_normalize = s->batch_normalize ? 1u : 0u;
    if (kind & COST_KINDS)
        w->cost_type = (uint32_t)s->cost_type;
    for (size_t i = 0; i < sizeof(spec_fields) / sizeof(spec_fields[0]); i++) {
        if (spec_fields[i].kinds & kind)
            copy4(w, spec_fields[i].wire_off, s, spec_fields[i].spec_off);
    }
    /* The neutral values travel as 0, as they did before these fields existed. */
    if (w->dilation == 1)
        w->dilation = 0;
    if (w->route_groups == 1)
        w->route_groups = 0;
    for (size_t i = 0; i < sizeof(stride_fields) / sizeof(stride_fields[0]); i++) {
        if (stride_fields[i].kinds & kind)
            w->stride = s->stride;
    }
    for (size_t i = 0; i < sizeof(flag_fields) / sizeof(flag_fields[0]); i++) {
        bool v = false;
        memcpy(&v, (const uint8_t *)s + flag_fields[i].spec_off, sizeof(v));
        if (flag_fields[i].kind == s->kind && v)
            w->layer_flags |= flag_fields[i].bit;
    }
    if (s->kind == DNN_LAYER_SOFTMAX && s->tree_group_size)
        w->layer_flags |= DZ_LF_TREE;
    if (kind & FROM_KINDS)
        w->from = s->from; /* absolute, as the protocol wants */
    if (s->kind == DNN_LAYER_SHORTCUT) {
        w->weights_type = (uint16_t)s->weights_type;
        w->weights_normalization = (uint16_t)s->weights_normalization;
    }
    if (kind & ROUTE_KINDS) {
        w->n_route = s->n_route;
        for (int r = 0; r < s->n_route && r < DNN_MAX_ROUTE; r++)
            w->route[r] = s->route[r];
    }
}

/* A layer index read from the wire: absolute, inside the segment, before layer @index. */
static bool earlier_in_segment(int32_t ref, uint32_t first, uint32_t index)
{
    return ref >= 0 && (uint32_t)ref >= first && (uint32_t)ref < index;
}

/* The enum, bool and index fields, which the table does not describe. */
static const char *decode_special(const struct dz_wire_spec *w, uint32_t first, uint32_t index,
                                  struct dnn_layer_spec *out, char msg[DZ_WIRE_MSG_MAX])
{
    const uint32_t kind = KIND(w->kind);

    if (w->activation >= DNN_ACT_COUNT || (!(kind & ACTIVATION_KINDS) && w->activation))
        return dz_wire_fail(msg, "layer %u: activation %u", (unsigned)index,
                            (unsigned)w->activation);
    if (w->batch_normalize > 1 || (!(kind & BN_KINDS) && w->batch_normalize))
        return dz_wire_fail(msg, "layer %u: batch_normalize %u", (unsigned)index,
                            (unsigned)w->batch_normalize);
    if (w->cost_type >= DNN_COST_COUNT || (!(kind & COST_KINDS) && w->cost_type))
        return dz_wire_fail(msg, "layer %u: cost type %u", (unsigned)index, (unsigned)w->cost_type);
    out->activation = (enum dnn_activation)w->activation;
    out->batch_normalize = w->batch_normalize != 0;
    out->cost_type = (enum dnn_cost_type)w->cost_type;

    if ((w->layer_flags & DZ_LF_TREE) && w->kind != DNN_LAYER_SOFTMAX)
        return dz_wire_fail(msg, "layer %u: layer_flags 0x%x has a flag of another kind",
                            (unsigned)index, (unsigned)w->layer_flags);
    for (size_t i = 0; i < sizeof(flag_fields) / sizeof(flag_fields[0]); i++) {
        const bool set = (w->layer_flags & flag_fields[i].bit) != 0;
        if (set && flag_fields[i].kind != w->kind)
            return dz_wire_fail(msg, "layer %u: layer_flags 0x%x has a flag of another kind",
                                (unsigned)index, (unsigned)w->layer_flags);
        memcpy((uint8_t *)out + flag_fields[i].spec_off, &set, sizeof(set));
    }
    if (w->layer_flags & ~(uint32_t)(DZ_LF_FLIP | DZ_LF_NOADJUST | DZ_LF_REVERSE | DZ_LF_REORG3D |
                                     DZ_LF_SCALE_WH | DZ_LF_TREE))
        return dz_wire_fail(msg, "layer %u: layer_flags 0x%x has unknown bits", (unsigned)index,
                            (unsigned)w->layer_flags);

    if (kind & FROM_KINDS) {
        if (!earlier_in_segment(w->from, first, index))
            return dz_wire_fail(msg, "layer %u: from %d outside layers %u..%u", (unsigned)index,
                                (int)w->from, (unsigned)first, (unsigned)index - 1);
        out->from = (int)((uint32_t)w->from - first);
    } else if (w->from) {
        return dz_wire_fail(msg, "layer %u: from is set on a layer that does not read one",
                            (unsigned)index);
    }
    const int32_t n_route = (kind & ROUTE_KINDS) ? w->n_route : 0;
    const int32_t min_route = w->kind == DNN_LAYER_ROUTE ? 1 : 0;
    if ((kind & ROUTE_KINDS) && (n_route < min_route || n_route > DNN_MAX_ROUTE))
        return dz_wire_fail(msg, "layer %u: route of %d layers", (unsigned)index, (int)w->n_route);
    if (!(kind & ROUTE_KINDS) && w->n_route)
        return dz_wire_fail(msg, "layer %u: n_route is set on a layer that is not a route",
                            (unsigned)index);
    if (w->weights_type >= DNN_SHORTCUT_WEIGHTS_COUNT ||
        w->weights_normalization >= DNN_WEIGHTS_NORM_COUNT ||
        (w->kind != DNN_LAYER_SHORTCUT && (w->weights_type || w->weights_normalization)))
        return dz_wire_fail(msg, "layer %u: weights_type %u, weights_normalization %u",
                            (unsigned)index, (unsigned)w->weights_type,
                            (unsigned)w->weights_normalization);
    out->weights_type = (enum dnn_shortcut_weights)w->weights_type;
    out->weights_normalization = (enum dnn_weights_normalization)w->weights_normalization;
    for (int32_t r = 0; r < DNN_MAX_ROUTE; r++) {
        if (r >= n_route) {
            if (w->route[r])
                return dz_wire_fail(msg, "layer %u: route[%d] is set past n_route", (unsigned)index,
                                    (int)r);
            continue;
        }
        if (!earlier_in_segment(w->route[r], first, index))
            return dz_wire_fail(msg, "layer %u: route to layer %d outside layers %u..%u",
                                (unsigned)index, (int)w->route[r], (unsigned)first,
                                (unsigned)index - 1);
        out->route[r] = (int)((uint32_t)w->route[r] - first);
    }
    out->n_route = n_route;
    return NULL;
}

const char *dz_wire_decode_spec(const struct dz_wire_spec *w, uint32_t first, uint32_t index,
                                struct dnn_layer_spec *out, char msg[DZ_WIRE_MSG_MAX])
{
    const char *why = NULL;

    memset(out, 0, sizeof(*out));
    if (w->kind >= DNN_LAYER_KIND_COUNT)
        return dz_wire_fail(msg, "layer %u: kind %u", (unsigned)index, (unsigned)w->kind);
    for (size_t i = 0; i < sizeof(w->reserved) / sizeof(w->reserved[0]); i++) {
        if (w->reserved[i])
            return dz_wire_fail(msg, "layer %u: reserved[%zu] is not zero", (unsigned)index, i);
    }
    out->kind = (enum dnn_layer_kind)w->kind;
    const uint32_t kind = KIND(w->kind);
    for (size_t i = 0; i < sizeof(spec_fields) / sizeof(spec_fields[0]); i++) {
        const struct spec_field *f = &spec_fields[i];
        if (!(f->kinds & kind)) {
            if (!field_zero(w, f) &&
                !(f->wire_off == offsetof(struct dz_wire_spec, stride) && stride_kind(kind)))
                return dz_wire_fail(msg, "layer %u: %s is set on a layer that does not use it",
                                    (unsigned)index, f->name);
            continue;
        }
        why = check_field(w, f, index, msg);
        if (why)
            return why;
        copy4(out, f->spec_off, w, f->wire_off);
    }
    for (size_t i = 0; i < sizeof(stride_fields) / sizeof(stride_fields[0]); i++) {
        const struct spec_field *f = &stride_fields[i];
        if (!(f->kinds & kind))
            continue;
        why = check_field(w, f, index, msg);
        if (why)
            return why;
        if (w->stride == 0)
            return dz_wire_fail(msg, "layer %u: stride 0", (unsigned)index);
        copy4(out, f->spec_off, w, f->wire_off);
    }
    if (out->kind == DNN_LAYER_CONVOLUTIONAL && out->filters % out->groups != 0)
        return dz_wire_fail(msg, "layer %u: %d filters in %d groups", (unsigned)index, out->filters,
                            out->groups);
    if (out->kind == DNN_LAYER_ROUTE &&
        out->group_id >= (out->route_groups > 1 ? out->route_groups : 1))
        return dz_wire_fail(msg, "layer %u: route group_id %d of %d groups", (unsigned)index,
                            out->group_id, out->route_groups);
    return decode_special(w, first, index, out, msg);
}

/* ------------------------------------------------------------------- the header */

/* One [net] training key: floats must be finite on the wire, ints >= 0. */
struct cfg_field {
    const char *name;
    size_t wire_off, cfg_off;
};

#define CF(f)                                                                                      \
    {                                                                                              \
#f, offsetof(struct dz_model_header, f), offsetof(struct dnn_net_config, f)                \
    }
static const struct cfg_field cfg_floats[] = {
    CF(learning_rate), CF(momentum), CF(decay), CF(gamma), CF(scale), CF(power),
};

#define CI(f)                                                                                      \
    {                                                                                              \
#f, offsetof(struct dz_model_header, f), offsetof(struct dnn_net_config, f)                \
    }
static const struct cfg_field cfg_ints[] = {CI(step), CI(max_batches), CI(burn_in)};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void dz_wire_encode_header(const struct dz_wire_request *r, const struct dnn_net_config *cfg,
                           struct dz_model_header *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = DZ_MODEL_MAGIC;
    h->version = DZ_TA_PROTOCOL_VERSION;
    h->n_layers = r->n_layers;
    h->first = r->first;
    h->last = r->last;
    h->n_specs = r->last - r->first + 1;
    h->batch = r->batch;
    h->subdivisions = r->subdivisions;
    h->training = r->training ? 1u : 0u;
    h->in_h = r->in_h;
    h->in_w = r->in_w;
    h->in_c = r->in_c;
    for (size_t i = 0; i < COUNT(cfg_floats); i++)
        copy4(h, cfg_floats[i].wire_off, cfg, cfg_floats[i].cfg_off);
    for (size_t i = 0; i < COUNT(cfg_ints); i++)
        copy4(h, cfg_ints[i].wire_off, cfg, cfg_ints[i].cfg_off);
    h->policy = (uint32_t)cfg->policy;
    h->n_steps = (uint32_t)cfg->n_steps;
    for (int i = 0; i < cfg->n_steps && i < DNN_MAX_STEPS; i++) {
        h->steps[i] = cfg->steps[i];
        h->scales[i] = cfg->scales[i];
    }
    h->seed_lo = (uint32_t)r->seed;
    h->seed_hi = (uint32_t)(r->seed >> 32);
    h->output_policy = (uint32_t)r->output;
    h->top_k = r->top_k;
    if (cfg->policy == DNN_POLICY_SGDR) {
        h->learning_rate_min = cfg->learning_rate_min;
        h->sgdr_cycle = cfg->sgdr_cycle;
        h->sgdr_mult = cfg->sgdr_mult;
    }
    if (cfg->adam) {
        h->adam = 1;
        h->beta1 = cfg->beta1;
        h->beta2 = cfg->beta2;
        h->epsilon = cfg->epsilon;
    }
}

/* sgdr's keys: with sgdr, cycles of at least one batch (a cycle of 0 never ends); with
 * another policy, zero. */
static const char *check_sgdr(const struct dz_model_header *h, char msg[DZ_WIRE_MSG_MAX])
{
    if (h->policy != DNN_POLICY_SGDR) {
        if (get_i32(h, offsetof(struct dz_model_header, learning_rate_min)) || h->sgdr_cycle ||
            h->sgdr_mult)
            return dz_wire_fail(msg, "model: sgdr keys set with another policy");
        return NULL;
    }
    if (!is_finite(h->learning_rate_min) || h->learning_rate_min < 0 || h->sgdr_cycle < 1 ||
        h->sgdr_mult < 1)
        return dz_wire_fail(msg, "model: sgdr learning_rate_min, cycle %d or mult %d out of range",
                            (int)h->sgdr_cycle, (int)h->sgdr_mult);
    return NULL;
}

/* adam's keys: on, each in its range; off, all zero (as encoded before they existed). */
static const char *check_adam(const struct dz_model_header *h, char msg[DZ_WIRE_MSG_MAX])
{
    if (h->adam > 1)
        return dz_wire_fail(msg, "model: adam %u", (unsigned)h->adam);
    if (!h->adam) {
        if (get_i32(h, offsetof(struct dz_model_header, beta1)) ||
            get_i32(h, offsetof(struct dz_model_header, beta2)) ||
            get_i32(h, offsetof(struct dz_model_header, epsilon)))
            return dz_wire_fail(msg, "model: adam's B1, B2 or eps set without adam");
        return NULL;
    }
    if (!(h->beta1 >= 0.0f && h->beta1 < 1.0f) || !(h->beta2 >= 0.0f && h->beta2 < 1.0f) ||
        !(h->epsilon > 0.0f) || !is_finite(h->epsilon))
        return dz_wire_fail(msg, "model: adam's B1, B2 or eps out of range");
    return NULL;
}

static const char *check_partition(const struct dz_model_header *h, char msg[DZ_WIRE_MSG_MAX])
{
    if (h->magic != DZ_MODEL_MAGIC)
        return dz_wire_fail(msg, "model: bad magic %#x", (unsigned)h->magic);
    if (h->version != DZ_TA_PROTOCOL_VERSION)
        return dz_wire_fail(msg, "model: protocol version %u, this TA speaks %u",
                            (unsigned)h->version, (unsigned)DZ_TA_PROTOCOL_VERSION);
    if (h->n_layers < 1 || h->n_layers > DZ_MAX_LAYERS)
        return dz_wire_fail(msg, "model: n_layers %u", (unsigned)h->n_layers);
    if (h->first > h->last || h->last >= h->n_layers)
        return dz_wire_fail(msg, "model: partition %u..%u of %u layers", (unsigned)h->first,
                            (unsigned)h->last, (unsigned)h->n_layers);
    if (h->n_specs != h->last - h->first + 1 || h->n_specs > DZ_MAX_SPECS)
        return dz_wire_fail(msg, "model: n_specs %u for layers %u..%u", (unsigned)h->n_specs,
                            (unsigned)h->first, (unsigned)h->last);
    if (h->batch < 1 || h->batch > DZ_MAX_BATCH || h->subdivisions < 1 ||
        h->subdivisions > DZ_MAX_DIM || h->training > 1)
        return dz_wire_fail(msg, "model: batch %u, subdivisions %u, training %u",
                            (unsigned)h->batch, (unsigned)h->subdivisions, (unsigned)h->training);
    if (h->in_h < 1 || h->in_h > DZ_MAX_DIM || h->in_w < 1 || h->in_w > DZ_MAX_DIM || h->in_c < 1 ||
        h->in_c > DZ_MAX_DIM)
        return dz_wire_fail(msg, "model: input shape %u x %u x %u", (unsigned)h->in_h,
                            (unsigned)h->in_w, (unsigned)h->in_c);
    return NULL;
}

static const char *check_training_keys(const struct dz_model_header *h, char msg[DZ_WIRE_MSG_MAX])
{
    for (size_t i = 0; i < COUNT(cfg_floats); i++) {
        if (!is_finite(get_f32(h, cfg_floats[i].wire_off)))
            return dz_wire_fail(msg, "model: %s is not finite", cfg_floats[i].name);
    }
    for (size_t i = 0; i < COUNT(cfg_ints); i++) {
        if (get_i32(h, cfg_ints[i].wire_off) < 0)
            return dz_wire_fail(msg, "model: %s = %d", cfg_ints[i].name,
                                (int)get_i32(h, cfg_ints[i].wire_off));
    }
    /* A negative rate, momentum or decay is a step the owner's maxima would not bound
     * (dz_policy_within compares from above only); darknet has no use for one. */
    if (h->learning_rate < 0 || h->momentum < 0 || h->decay < 0)
        return dz_wire_fail(msg, "model: learning_rate, momentum and decay must not be negative");
    if (h->policy >= DNN_POLICY_COUNT)
        return dz_wire_fail(msg, "model: policy %u", (unsigned)h->policy);
    if (h->n_steps > DNN_MAX_STEPS)
        return dz_wire_fail(msg, "model: n_steps %u", (unsigned)h->n_steps);
    for (uint32_t i = 0; i < DNN_MAX_STEPS; i++) {
        if (i >= h->n_steps) {
            if (h->steps[i] || get_i32(h->scales, i * sizeof(float)))
                return dz_wire_fail(msg, "model: steps[%u] is set past n_steps", (unsigned)i);
        } else if (h->steps[i] < 0 || !is_finite(h->scales[i])) {
            return dz_wire_fail(msg, "model: steps[%u] = %d or its scale is bad", (unsigned)i,
                                (int)h->steps[i]);
        }
    }
    return NULL;
}

const char *dz_wire_decode_header(const struct dz_model_header *h, struct dnn_net_config *cfg,
                                  char msg[DZ_WIRE_MSG_MAX])
{
    const char *why = check_partition(h, msg);

    if (!why)
        why = check_training_keys(h, msg);
    if (!why)
        why = check_adam(h, msg);
    if (!why)
        why = check_sgdr(h, msg);
    if (why)
        return why;
    if (h->output_policy >= DZ_OUTPUT_COUNT || h->top_k > DZ_MAX_LABELS ||
        (h->output_policy == DZ_OUTPUT_TOPK && h->top_k < 1))
        return dz_wire_fail(msg, "model: output policy %u, top_k %u", (unsigned)h->output_policy,
                            (unsigned)h->top_k);
    if (h->tree_words > DZ_MAX_TREE_WORDS)
        return dz_wire_fail(msg, "model: tree_words %u above %u", (unsigned)h->tree_words,
                            (unsigned)DZ_MAX_TREE_WORDS);
    if (h->stream_chunk_bytes &&
        (h->stream_chunk_bytes % 4 || h->stream_chunk_bytes < DZ_STREAM_CHUNK_MIN ||
         h->stream_chunk_bytes > DZ_STREAM_CHUNK_MAX || (h->training && h->adam)))
        return dz_wire_fail(msg,
                            "model: stream_chunk_bytes %u (a multiple of 4 in %u..%u, not with "
                            "adam)",
                            (unsigned)h->stream_chunk_bytes, DZ_STREAM_CHUNK_MIN,
                            DZ_STREAM_CHUNK_MAX);

    memset(cfg, 0, sizeof(*cfg));
    cfg->batch = (int)h->batch;
    cfg->subdivisions = (int)h->subdivisions;
    cfg->h = (int)h->in_h;
    cfg->w = (int)h->in_w;
    cfg->c = (int)h->in_c;
    for (size_t i = 0; i < COUNT(cfg_floats); i++)
        copy4(cfg, cfg_floats[i].cfg_off, h, cfg_floats[i].wire_off);
    for (size_t i = 0; i < COUNT(cfg_ints); i++)
        copy4(cfg, cfg_ints[i].cfg_off, h, cfg_ints[i].wire_off);
    cfg->policy = (enum dnn_lr_policy)h->policy;
    cfg->n_steps = (int)h->n_steps;
    for (uint32_t i = 0; i < h->n_steps; i++) {
        cfg->steps[i] = h->steps[i];
        cfg->scales[i] = h->scales[i];
    }
    cfg->learning_rate_min = h->learning_rate_min;
    cfg->sgdr_cycle = (int)h->sgdr_cycle;
    cfg->sgdr_mult = (int)h->sgdr_mult;
    cfg->adam = h->adam != 0;
    cfg->beta1 = h->beta1;
    cfg->beta2 = h->beta2;
    cfg->epsilon = h->epsilon;
    cfg->index_base = (int)h->first;
    cfg->stream_params = h->stream_chunk_bytes != 0;
    return NULL;
}

/* ------------------------------------------------------------- tree group table */

size_t dz_wire_tree_words(const struct dnn_layer_spec *specs, size_t n)
{
    size_t words = 0;
    for (size_t i = 0; i < n; i++) {
        if (specs[i].kind == DNN_LAYER_SOFTMAX && specs[i].tree_group_size)
            words += 1 + (size_t)specs[i].tree_groups;
    }
    return words;
}

void dz_wire_encode_tree(const struct dnn_layer_spec *specs, size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (specs[i].kind != DNN_LAYER_SOFTMAX || !specs[i].tree_group_size)
            continue;
        *out++ = (uint32_t)specs[i].tree_groups;
        for (int g = 0; g < specs[i].tree_groups; g++)
            *out++ = (uint32_t)specs[i].tree_group_size[g];
    }
}

const char *dz_wire_decode_tree(const struct dz_wire_spec *w, size_t n, uint32_t first,
                                const uint32_t *words, size_t n_words, int *sizes,
                                struct dnn_layer_spec *specs, char msg[DZ_WIRE_MSG_MAX])
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned index = (unsigned)(first + i);
        specs[i].tree_group_size = NULL;
        specs[i].tree_groups = 0;
        if (!(w[i].layer_flags & DZ_LF_TREE))
            continue;
        if (w[i].kind != DNN_LAYER_SOFTMAX)
            return dz_wire_fail(msg, "layer %u: a tree on a layer that is not a softmax", index);
        if (at >= n_words)
            return dz_wire_fail(msg, "layer %u: tree softmax without its record in the group table",
                                index);
        const uint32_t groups = words[at++];
        /* at most every word left: then G sizes fit, and G fits an int (n_words is capped) */
        if (groups == 0 || groups > n_words - at)
            return dz_wire_fail(msg,
                                "layer %u: tree of %u groups, the group table has %zu words left",
                                index, (unsigned)groups, n_words - at);
        uint32_t sum = 0;
        for (uint32_t g = 0; g < groups; g++) {
            const uint32_t size = words[at + g];
            if (size == 0 || size > DZ_MAX_OUTPUTS - sum)
                return dz_wire_fail(msg,
                                    "layer %u: tree group %u of size %u (sizes from 1, summing "
                                    "to at most %u)",
                                    index, (unsigned)g, (unsigned)size, (unsigned)DZ_MAX_OUTPUTS);
            sum += size;
            sizes[at + g] = (int)size;
        }
        specs[i].tree_group_size = &sizes[at];
        specs[i].tree_groups = (int)groups;
        at += groups;
    }
    if (at != n_words)
        return dz_wire_fail(msg, "model: %zu words of the group table belong to no tree softmax",
                            n_words - at);
    return NULL;
}

/* ------------------------------------------------------------- digest of shapes */

size_t dz_wire_shape_size(size_t n)
{
    return 12 + 24 * n;
}

void dz_wire_shape_bytes(uint32_t first, uint32_t last, uint32_t n_layers,
                         const struct dnn_layer *layers, size_t n, uint8_t *buf)
{
    dz_put_le32(buf, first);
    dz_put_le32(buf + 4, last);
    dz_put_le32(buf + 8, n_layers);
    buf += 12;
    for (size_t i = 0; i < n; i++, buf += 24) {
        const struct dnn_layer *l = &layers[i];
        const int dims[6] = {l->h, l->w, l->c, l->out_h, l->out_w, l->out_c};
        for (int d = 0; d < 6; d++)
            dz_put_le32(buf + 4 * d, (uint32_t)dims[d]);
    }
}
