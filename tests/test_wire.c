/*
 * test_wire.c - the TA protocol's codec (ta/dz_wire.c) and policy rules (ta/dz_policy.c), in
 * this process, without the TEE:
 *  - per layer kind (a loop over DNN_LAYER_KIND_COUNT that fails on a kind without a case):
 *    dz_wire_encode_spec then dz_wire_decode_spec gives back the fields the kind uses, route
 *    and shortcut indexes rebased to the segment; every other field is zero on the wire and in
 *    the decoded spec;
 *  - the decoder refuses each used field out of its range, each unused field set (also to
 *    -0.0f), NaN and infinite floats, every reserved word set, indexes outside the segment;
 *  - the model header round trips and every field is refused out of range;
 *  - dz_policy_check and dz_policy_within: each rule once, accepted at its bound and refused
 *    past it; dz_policy_of_request; the shape bytes of the model digest.
 * The kinds' fields are listed here independently of the codec's own table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dnn/dnn.h"
#include "ta/include/darknetz_ta.h"
#include "ta/include/dz_wire.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static float nanf_(void)
{
    return __builtin_nanf("");
}

static float inff_(void)
{
    return __builtin_inff();
}

static uint32_t bits(float f)
{
    uint32_t u = 0;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* ------------------------------------------------------------ the spec fields */

enum ftype { F_INT, F_FLOAT, F_ENUM, F_BOOL };

/* One scalar of struct dnn_layer_spec and its place on the wire. */
struct field {
    const char *name;
    size_t spec_off, wire_off;
    enum ftype type;
};

#define FLD(f, t)                                                                                  \
    {                                                                                              \
#f, offsetof(struct dnn_layer_spec, f), offsetof(struct dz_wire_spec, f), t                \
    }
static const struct field fields[] = {
    FLD(activation, F_ENUM),      FLD(filters, F_INT),       FLD(size, F_INT),
    FLD(stride, F_INT),           FLD(pad, F_INT),           FLD(groups, F_INT),
    FLD(batch_normalize, F_BOOL), FLD(outputs, F_INT),       FLD(probability, F_FLOAT),
    FLD(softmax_groups, F_INT),   FLD(temperature, F_FLOAT), FLD(cost_type, F_ENUM),
    FLD(cost_scale, F_FLOAT),     FLD(cost_ratio, F_FLOAT),  FLD(from, F_INT),
    FLD(alpha, F_FLOAT),          FLD(beta, F_FLOAT),        FLD(n_route, F_INT),
    FLD(crop_height, F_INT),      FLD(crop_width, F_INT),    FLD(extra, F_INT),
    FLD(scale, F_FLOAT),          FLD(kappa, F_FLOAT),       FLD(dilation, F_INT),
    FLD(route_groups, F_INT),     FLD(group_id, F_INT),      FLD(learning_rate_scale, F_FLOAT),
    FLD(antialiasing, F_INT),
};

/* The bool fields packed in layer_flags, and the kind that owns each. */
static const struct {
    const char *name;
    size_t spec_off;
    uint32_t bit;
    enum dnn_layer_kind kind;
} flags[] = {
    {"flip", offsetof(struct dnn_layer_spec, flip), DZ_LF_FLIP, DNN_LAYER_CROP},
    {"noadjust", offsetof(struct dnn_layer_spec, noadjust), DZ_LF_NOADJUST, DNN_LAYER_CROP},
    {"reverse", offsetof(struct dnn_layer_spec, reverse), DZ_LF_REVERSE, DNN_LAYER_REORG},
    {"reorg3d", offsetof(struct dnn_layer_spec, reorg3d), DZ_LF_REORG3D, DNN_LAYER_REORG},
    {"scale_wh", offsetof(struct dnn_layer_spec, scale_wh), DZ_LF_SCALE_WH,
     DNN_LAYER_SCALE_CHANNELS},
};

static bool flag_of(const struct dnn_layer_spec *s, size_t i)
{
    bool v = false;
    memcpy(&v, (const uint8_t *)s + flags[i].spec_off, sizeof(v));
    return v;
}
#undef FLD

/* Where the decoded segment starts and where the layer under test sits (absolute). */
enum { FIRST = 5, INDEX = 9 };

/* Every field of @s set to something nonzero that no kind needs. */
static void junk(struct dnn_layer_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->activation = DNN_ACT_TANH;
    s->filters = 12;
    s->size = 5;
    s->stride = 2;
    s->pad = 1;
    s->groups = 3;
    s->batch_normalize = true;
    s->outputs = 17;
    s->probability = 0.25f;
    s->softmax_groups = 2;
    s->temperature = 0.5f;
    s->cost_type = DNN_COST_SMOOTH;
    s->cost_scale = 2;
    s->cost_ratio = 0.125f;
    s->from = 7;
    s->alpha = 0.75f;
    s->crop_height = 3;
    s->crop_width = 4;
    s->extra = 2;
    s->scale = 0.5f;
    s->kappa = 0.25f;
    s->flip = s->noadjust = s->reverse = s->reorg3d = s->scale_wh = true;
    s->beta = 1.5f;
    s->n_route = 3;
    s->dilation = 2;
    s->learning_rate_scale = 0.5f;
    s->route_groups = 4;
    s->group_id = 3;
    for (int r = 0; r < DNN_MAX_ROUTE; r++)
        s->route[r] = 5 + r % 4;
    s->weights_type = DNN_SHORTCUT_WEIGHTS_PER_CHANNEL;
    s->weights_normalization = DNN_WEIGHTS_NORM_RELU;
    s->antialiasing = 1;
}

/*
 * A valid spec of @kind with every field junk first (so the encoder must drop the unused
 * ones), and the names of the fields the kind uses. A kind without a case fails the test.
 */
static void example(enum dnn_layer_kind kind, struct dnn_layer_spec *s, const char **used,
                    size_t *n_used)
{
    size_t n = 0;
    junk(s);
    s->kind = kind;
    switch (kind) {
    case DNN_LAYER_CONVOLUTIONAL:
        s->activation = DNN_ACT_LEAKY;
        s->filters = 8;
        s->size = 3;
        s->stride = 1;
        s->pad = 1;
        s->groups = 2;
        s->dilation = 3;
        s->batch_normalize = true;
        used[n++] = "activation", used[n++] = "filters", used[n++] = "size";
        used[n++] = "stride", used[n++] = "pad", used[n++] = "groups";
        used[n++] = "batch_normalize", used[n++] = "dilation";
        used[n++] = "learning_rate_scale"; /* junk's 0.5 */
        used[n++] = "antialiasing";        /* junk's 1 */
        break;
    case DNN_LAYER_CONNECTED:
        s->activation = DNN_ACT_RELU;
        s->outputs = 10;
        s->batch_normalize = true;
        used[n++] = "activation", used[n++] = "outputs", used[n++] = "batch_normalize";
        used[n++] = "learning_rate_scale";
        break;
    case DNN_LAYER_MAXPOOL:
        s->size = 2;
        s->stride = 2;
        s->pad = 1;
        s->antialiasing = 2;
        used[n++] = "size", used[n++] = "stride", used[n++] = "pad", used[n++] = "antialiasing";
        break;
    case DNN_LAYER_AVGPOOL:
        break;
    case DNN_LAYER_BATCHNORM:
        used[n++] = "learning_rate_scale";
        break;
    case DNN_LAYER_DROPOUT:
        s->probability = 0.5f;
        used[n++] = "probability";
        break;
    case DNN_LAYER_SOFTMAX:
        s->softmax_groups = 1;
        s->temperature = 2;
        used[n++] = "softmax_groups", used[n++] = "temperature";
        break;
    case DNN_LAYER_COST:
        s->cost_type = DNN_COST_L1;
        s->cost_scale = 3;
        s->cost_ratio = 0.5f;
        used[n++] = "cost_type", used[n++] = "cost_scale", used[n++] = "cost_ratio";
        break;
    case DNN_LAYER_SHORTCUT:
        s->activation = DNN_ACT_LINEAR;
        s->from = 6;
        s->alpha = 0.5f;
        s->beta = -2;
        s->n_route = 1; /* AlexeyAB's from=-3,-4: a second source */
        s->route[0] = FIRST;
        for (int r = 1; r < DNN_MAX_ROUTE; r++)
            s->route[r] = 77; /* past n_route: not on the wire */
        s->weights_type = DNN_SHORTCUT_WEIGHTS_PER_FEATURE;
        s->weights_normalization = DNN_WEIGHTS_NORM_SOFTMAX;
        used[n++] = "activation", used[n++] = "from", used[n++] = "alpha", used[n++] = "beta";
        used[n++] = "n_route", used[n++] = "learning_rate_scale";
        break;
    case DNN_LAYER_ROUTE:
        s->n_route = 2;
        s->route[0] = FIRST;
        s->route[1] = INDEX - 1;
        for (int r = 2; r < DNN_MAX_ROUTE; r++)
            s->route[r] = 77; /* past n_route: not on the wire */
        s->route_groups = 2;
        s->group_id = 1;
        used[n++] = "n_route", used[n++] = "route_groups", used[n++] = "group_id";
        break;
    case DNN_LAYER_CROP:
        s->crop_height = 4;
        s->crop_width = 5;
        s->flip = true;
        s->noadjust = false;
        used[n++] = "crop_height", used[n++] = "crop_width", used[n++] = "flip";
        break;
    case DNN_LAYER_REORG:
        s->stride = 2;
        s->extra = 0;
        s->reverse = true;
        s->reorg3d = true;
        used[n++] = "stride", used[n++] = "extra", used[n++] = "reverse", used[n++] = "reorg3d";
        break;
    case DNN_LAYER_SCALE_CHANNELS:
        s->activation = DNN_ACT_LOGISTIC;
        s->from = 6;
        s->scale_wh = true;
        used[n++] = "activation", used[n++] = "from", used[n++] = "scale_wh";
        break;
    case DNN_LAYER_UPSAMPLE:
        s->stride = -2; /* downsample */
        s->scale = 0.5f;
        used[n++] = "stride", used[n++] = "scale";
        break;
    case DNN_LAYER_ACTIVATION:
        s->activation = DNN_ACT_MISH;
        used[n++] = "activation";
        break;
    case DNN_LAYER_SAM:
        s->activation = DNN_ACT_LOGISTIC;
        s->from = 6;
        used[n++] = "activation", used[n++] = "from";
        break;
    case DNN_LAYER_L2NORM:
        break;
    case DNN_LAYER_NORMALIZATION:
        s->size = 5;
        s->alpha = 0.0001f;
        s->beta = 0.75f;
        s->kappa = 2;
        used[n++] = "size", used[n++] = "alpha", used[n++] = "beta", used[n++] = "kappa";
        break;
    case DNN_LAYER_LOCAL:
        s->activation = DNN_ACT_LEAKY;
        s->filters = 4;
        s->size = 3;
        s->stride = 2;
        s->pad = 1;
        used[n++] = "activation", used[n++] = "filters", used[n++] = "size";
        used[n++] = "stride", used[n++] = "pad";
        break;
    case DNN_LAYER_KIND_COUNT:
    default:
        fail_msg("layer kind %d has no case in test_wire.c", (int)kind);
    }
    *n_used = n;
}

static bool is_used(const char *name, const char *const *used, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(used[i], name))
            return true;
    return false;
}

static int32_t wire_i32(const struct dz_wire_spec *w, size_t off)
{
    int32_t v = 0;
    memcpy(&v, (const uint8_t *)w + off, 4);
    return v;
}

static void wire_set_i32(struct dz_wire_spec *w, size_t off, int32_t v)
{
    memcpy((uint8_t *)w + off, &v, 4);
}

static void wire_set_f32(struct dz_wire_spec *w, size_t off, float v)
{
    memcpy((uint8_t *)w + off, &v, 4);
}

/* The spec's field as 32 bits (bool as 0 or 1). */
static int32_t spec_i32(const struct dnn_layer_spec *s, const struct field *f)
{
    if (f->type == F_BOOL)
        return *(const bool *)(const void *)((const uint8_t *)s + f->spec_off) ? 1 : 0;
    int32_t v = 0;
    memcpy(&v, (const uint8_t *)s + f->spec_off, 4);
    return v;
}

static void test_spec_round_trip_per_kind(void **state)
{
    (void)state;
    const char *used[16];
    char msg[DZ_WIRE_MSG_MAX];

    for (int k = 0; k < DNN_LAYER_KIND_COUNT; k++) {
        struct dnn_layer_spec s, out;
        struct dz_wire_spec w;
        size_t n = 0;
        example((enum dnn_layer_kind)k, &s, used, &n);
        memset(&w, 0xA5, sizeof(w));
        dz_wire_encode_spec(&s, &w);

        /* The wire: the kind, its fields as given (indexes absolute), all else zero. */
        assert_int_equal(w.kind, (uint32_t)k);
        for (size_t i = 0; i < COUNT(fields); i++) {
            const struct field *f = &fields[i];
            const int32_t v = wire_i32(&w, f->wire_off);
            if (is_used(f->name, used, n)) {
                if (v != spec_i32(&s, f))
                    fail_msg("kind %d: %s encoded as %#x", k, f->name, (unsigned)v);
            } else if (v != 0) {
                fail_msg("kind %d: unused %s is %#x on the wire", k, f->name, (unsigned)v);
            }
        }
        const int n_route = k == DNN_LAYER_ROUTE || k == DNN_LAYER_SHORTCUT ? s.n_route : 0;
        for (int r = 0; r < DNN_MAX_ROUTE; r++)
            assert_int_equal(w.route[r], r < n_route ? s.route[r] : 0);
        for (size_t r = 0; r < COUNT(w.reserved); r++)
            assert_int_equal(w.reserved[r], 0);
        assert_int_equal(w.weights_type, k == DNN_LAYER_SHORTCUT ? (unsigned)s.weights_type : 0);
        assert_int_equal(w.weights_normalization,
                         k == DNN_LAYER_SHORTCUT ? (unsigned)s.weights_normalization : 0);
        uint32_t want_flags = 0;
        for (size_t i = 0; i < COUNT(flags); i++) {
            if (is_used(flags[i].name, used, n) && flag_of(&s, i))
                want_flags |= flags[i].bit;
        }
        assert_int_equal(w.layer_flags, want_flags);

        /* Decoded: the same used fields, indexes rebased to the segment, the rest zero. */
        memset(&out, 0x5A, sizeof(out));
        const char *why = dz_wire_decode_spec(&w, FIRST, INDEX, &out, msg);
        if (why)
            fail_msg("kind %d refused: %s", k, why);
        assert_int_equal(out.kind, k);
        for (size_t i = 0; i < COUNT(fields); i++) {
            const struct field *f = &fields[i];
            int32_t want = is_used(f->name, used, n) ? spec_i32(&s, f) : 0;
            if (!strcmp(f->name, "from") && want)
                want -= FIRST;
            if (spec_i32(&out, f) != want)
                fail_msg("kind %d: %s decoded as %#x, expected %#x", k, f->name,
                         (unsigned)spec_i32(&out, f), (unsigned)want);
        }
        for (int r = 0; r < DNN_MAX_ROUTE; r++)
            assert_int_equal(out.route[r], r < n_route ? s.route[r] - FIRST : 0);
        for (size_t i = 0; i < COUNT(flags); i++) {
            const bool want = is_used(flags[i].name, used, n) && flag_of(&s, i);
            if (flag_of(&out, i) != want)
                fail_msg("kind %d: %s decoded as %d", k, flags[i].name, (int)flag_of(&out, i));
        }

        /* Encoding the decoded spec at index base FIRST gives the same wire back once the
         * indexes are made absolute again. */
        struct dnn_layer_spec abs = out;
        if (dnn_kind_reads_from((enum dnn_layer_kind)k))
            abs.from += FIRST;
        for (int r = 0; r < abs.n_route; r++)
            abs.route[r] += FIRST;
        struct dz_wire_spec w2;
        dz_wire_encode_spec(&abs, &w2);
        assert_memory_equal(&w, &w2, sizeof(w));
    }
}

/* The decoder must refuse @w (a mutation of a valid spec of @kind). */
static void refused(const struct dz_wire_spec *w, int kind, const char *what)
{
    char msg[DZ_WIRE_MSG_MAX];
    struct dnn_layer_spec out;
    memset(msg, 0, sizeof(msg));
    const char *why = dz_wire_decode_spec(w, FIRST, INDEX, &out, msg);
    if (!why)
        fail_msg("kind %d: %s was accepted", kind, what);
    assert_ptr_equal(why, msg);
    assert_true(strlen(msg) > 0 && strlen(msg) < DZ_WIRE_MSG_MAX);
}

static void accepted(const struct dz_wire_spec *w, int kind, const char *what)
{
    char msg[DZ_WIRE_MSG_MAX];
    struct dnn_layer_spec out;
    const char *why = dz_wire_decode_spec(w, FIRST, INDEX, &out, msg);
    if (why)
        fail_msg("kind %d: %s was refused: %s", kind, what, why);
}

/* Out-of-range values of a used int field, and the bounds that must pass. */
struct int_range {
    const char *name;
    int32_t bad[4];
    size_t n_bad;
    int32_t good[3];
    size_t n_good;
};

static const struct int_range int_ranges[] = {
    {"filters", {0, -1, (int32_t)DZ_MAX_DIM + 1}, 3, {2, (int32_t)DZ_MAX_DIM}, 2},
    {"size", {0, -1, (int32_t)DZ_MAX_KERNEL + 1}, 3, {1, (int32_t)DZ_MAX_KERNEL}, 2},
    {"stride", {0, -2, (int32_t)DZ_MAX_KERNEL + 1}, 3, {1, (int32_t)DZ_MAX_KERNEL}, 2},
    /* upsample's stride: negative downsamples (checked for that kind instead of the above) */
    {"stride@upsample",
     {0, -(int32_t)DZ_MAX_KERNEL - 1, (int32_t)DZ_MAX_KERNEL + 1},
     3,
     {-(int32_t)DZ_MAX_KERNEL, 1, (int32_t)DZ_MAX_KERNEL},
     3},
    {"crop_height", {0, -1, (int32_t)DZ_MAX_DIM + 1}, 3, {1, (int32_t)DZ_MAX_DIM}, 2},
    {"crop_width", {0, -1, (int32_t)DZ_MAX_DIM + 1}, 3, {1, (int32_t)DZ_MAX_DIM}, 2},
    {"extra", {-1, (int32_t)DZ_MAX_OUTPUTS + 1, INT32_MIN}, 3, {0, (int32_t)DZ_MAX_OUTPUTS}, 2},
    {"pad", {-1, (int32_t)DZ_MAX_KERNEL + 1, INT32_MIN}, 3, {0, (int32_t)DZ_MAX_KERNEL}, 2},
    {"groups", {0, -1, (int32_t)DZ_MAX_DIM + 1, 3}, 4, {1}, 1}, /* 3 does not divide 8 */
    {"outputs",
     {0, -3, (int32_t)DZ_MAX_OUTPUTS + 1, INT32_MAX},
     4,
     {1, (int32_t)DZ_MAX_OUTPUTS},
     2},
    {"softmax_groups", {0, -1, (int32_t)DZ_MAX_OUTPUTS + 1}, 3, {1, (int32_t)DZ_MAX_OUTPUTS}, 2},
    {"activation", {DNN_ACT_COUNT, -1}, 2, {0, DNN_ACT_COUNT - 1}, 2},
    {"cost_type", {DNN_COST_COUNT, -1}, 2, {0, DNN_COST_COUNT - 1}, 2},
    {"batch_normalize", {2, -1}, 2, {0, 1}, 2},
    {"antialiasing", {-1, 3}, 2, {0, 2}, 2},
    /* indexes: absolute, in [FIRST, INDEX) */
    {"from", {FIRST - 1, INDEX, INDEX + 1, -1}, 4, {FIRST, INDEX - 1}, 2},
    {"n_route", {0, DNN_MAX_ROUTE + 1, -1}, 3, {2}, 1}, /* the example routes 2 */
    /* a shortcut's sources after from: the example reads 1 (2 would read route[1] = 0,
     * outside the segment; 0 leaves route[0] set past n_route) */
    {"n_route@shortcut", {DNN_MAX_ROUTE + 1, -1, 2, 0}, 4, {1}, 1},
    {"dilation", {-1, (int32_t)DZ_MAX_KERNEL + 1, INT32_MIN}, 3, {0, (int32_t)DZ_MAX_KERNEL}, 2},
    /* the example takes group 1: fewer than 2 groups leave no group 1 */
    {"route_groups", {-1, 0, 1, (int32_t)DZ_MAX_DIM + 1}, 4, {2, (int32_t)DZ_MAX_DIM}, 2},
    {"group_id", {-1, 2, (int32_t)DZ_MAX_DIM + 1}, 3, {0, 1}, 2},
};

static void test_spec_refusals(void **state)
{
    (void)state;
    const char *used[16];
    char what[96];

    for (int k = 0; k < DNN_LAYER_KIND_COUNT; k++) {
        struct dnn_layer_spec s;
        struct dz_wire_spec good, w;
        size_t n = 0;
        example((enum dnn_layer_kind)k, &s, used, &n);
        dz_wire_encode_spec(&s, &good);
        accepted(&good, k, "the example");

        /* The kind itself. */
        w = good;
        w.kind = DNN_LAYER_KIND_COUNT;
        refused(&w, k, "kind COUNT");
        w.kind = 0xFFFFFFFFu;
        refused(&w, k, "kind ~0");

        /* Every reserved word. */
        for (size_t r = 0; r < COUNT(w.reserved); r++) {
            w = good;
            w.reserved[r] = 1u << (r * 7 % 32);
            snprintf(what, sizeof(what), "reserved[%zu]", r);
            refused(&w, k, what);
        }

        /* layer_flags: another kind's bit, or a bit no kind has. */
        for (size_t i = 0; i < COUNT(flags); i++) {
            w = good;
            w.layer_flags |= flags[i].bit;
            snprintf(what, sizeof(what), "layer flag %s", flags[i].name);
            if (flags[i].kind == (enum dnn_layer_kind)k)
                accepted(&w, k, what);
            else
                refused(&w, k, what);
        }
        w = good;
        w.layer_flags |= 1u << 31;
        refused(&w, k, "layer flag bit 31");

        /* weights_type and weights_normalization: a shortcut's, in range */
        for (uint16_t v = 1; v <= DNN_SHORTCUT_WEIGHTS_COUNT; v++) {
            w = good;
            w.weights_type = v;
            snprintf(what, sizeof(what), "weights_type %u", (unsigned)v);
            if (k == DNN_LAYER_SHORTCUT && v < DNN_SHORTCUT_WEIGHTS_COUNT)
                accepted(&w, k, what);
            else
                refused(&w, k, what);
        }
        for (uint16_t v = 1; v <= DNN_WEIGHTS_NORM_COUNT; v++) {
            w = good;
            w.weights_normalization = v;
            snprintf(what, sizeof(what), "weights_normalization %u", (unsigned)v);
            if (k == DNN_LAYER_SHORTCUT && v < DNN_WEIGHTS_NORM_COUNT)
                accepted(&w, k, what);
            else
                refused(&w, k, what);
        }

        /* Route entries on a layer that is not a route (a shortcut's past its sources). */
        for (int r = k == DNN_LAYER_SHORTCUT ? 1 : 0; k != DNN_LAYER_ROUTE && r < DNN_MAX_ROUTE;
             r++) {
            w = good;
            w.route[r] = FIRST;
            snprintf(what, sizeof(what), "route[%d] on a layer that is not a route", r);
            refused(&w, k, what);
        }

        for (size_t i = 0; i < COUNT(fields); i++) {
            const struct field *f = &fields[i];
            if (!is_used(f->name, used, n)) {
                /* Unused: any nonzero bit pattern is refused, -0.0f included. */
                const int32_t vals[] = {1, -1, (int32_t)bits(-0.0f), (int32_t)bits(1.0f)};
                for (size_t v = 0; v < COUNT(vals); v++) {
                    w = good;
                    wire_set_i32(&w, f->wire_off, vals[v]);
                    snprintf(what, sizeof(what), "unused %s = %#x", f->name, (unsigned)vals[v]);
                    refused(&w, k, what);
                }
                continue;
            }
            if (f->type == F_FLOAT) {
                /* Never NaN or infinite; the float's own range on top. */
                const float bad[] = {nanf_(), inff_(), -inff_()};
                for (size_t v = 0; v < COUNT(bad); v++) {
                    w = good;
                    wire_set_f32(&w, f->wire_off, bad[v]);
                    snprintf(what, sizeof(what), "%s = %g", f->name, (double)bad[v]);
                    refused(&w, k, what);
                }
                continue;
            }
            for (size_t r = 0; r < COUNT(int_ranges); r++) {
                const struct int_range *ir = &int_ranges[r];
                char name[48];
                snprintf(name, sizeof(name), "%s%s", f->name,
                         k == DNN_LAYER_UPSAMPLE && !strcmp(f->name, "stride")    ? "@upsample"
                         : k == DNN_LAYER_SHORTCUT && !strcmp(f->name, "n_route") ? "@shortcut"
                                                                                  : "");
                if (strcmp(ir->name, name))
                    continue;
                for (size_t v = 0; v < ir->n_bad; v++) {
                    w = good;
                    wire_set_i32(&w, f->wire_off, ir->bad[v]);
                    snprintf(what, sizeof(what), "%s = %d", f->name, (int)ir->bad[v]);
                    refused(&w, k, what);
                }
                for (size_t v = 0; v < ir->n_good; v++) {
                    w = good;
                    wire_set_i32(&w, f->wire_off, ir->good[v]);
                    snprintf(what, sizeof(what), "%s = %d", f->name, (int)ir->good[v]);
                    accepted(&w, k, what);
                }
            }
        }
    }

    /* The float ranges of their kinds. */
    struct dnn_layer_spec s;
    struct dz_wire_spec good, w;
    size_t n = 0;
    example(DNN_LAYER_DROPOUT, &s, used, &n);
    dz_wire_encode_spec(&s, &good);
    const float bad_prob[] = {1.0f, 1.5f, -0.001f};
    for (size_t v = 0; v < COUNT(bad_prob); v++) {
        w = good;
        w.probability = bad_prob[v];
        refused(&w, DNN_LAYER_DROPOUT, "probability out of [0, 1)");
    }
    w = good;
    w.probability = 0.0f;
    accepted(&w, DNN_LAYER_DROPOUT, "probability 0");
    w.probability = 0.999f;
    accepted(&w, DNN_LAYER_DROPOUT, "probability .999");

    example(DNN_LAYER_SOFTMAX, &s, used, &n);
    dz_wire_encode_spec(&s, &good);
    const float bad_temp[] = {0.0f, -1.0f, -0.0f};
    for (size_t v = 0; v < COUNT(bad_temp); v++) {
        w = good;
        w.temperature = bad_temp[v];
        refused(&w, DNN_LAYER_SOFTMAX, "temperature <= 0");
    }
    w = good;
    w.temperature = 1e-30f;
    accepted(&w, DNN_LAYER_SOFTMAX, "tiny temperature");

    example(DNN_LAYER_COST, &s, used, &n);
    dz_wire_encode_spec(&s, &good);
    w = good;
    w.cost_scale = -3e38f;
    accepted(&w, DNN_LAYER_COST, "a finite negative cost scale");

    /* Routes: each index outside the segment, entries past n_route, at any position. */
    example(DNN_LAYER_ROUTE, &s, used, &n);
    dz_wire_encode_spec(&s, &good);
    const int32_t bad_route[] = {FIRST - 1, INDEX, INDEX + 1, -1, INT32_MIN};
    for (int r = 0; r < 2; r++)
        for (size_t v = 0; v < COUNT(bad_route); v++) {
            w = good;
            w.route[r] = bad_route[v];
            snprintf(what, sizeof(what), "route[%d] = %d", r, (int)bad_route[v]);
            refused(&w, DNN_LAYER_ROUTE, what);
        }
    for (int r = 2; r < DNN_MAX_ROUTE; r++) {
        w = good;
        w.route[r] = FIRST;
        snprintf(what, sizeof(what), "route[%d] set past n_route 2", r);
        refused(&w, DNN_LAYER_ROUTE, what);
    }
    w = good;
    w.n_route = DNN_MAX_ROUTE;
    for (int r = 0; r < DNN_MAX_ROUTE; r++)
        w.route[r] = FIRST + r % (INDEX - FIRST);
    accepted(&w, DNN_LAYER_ROUTE, "a full route");

    /* Convolution: filters must divide into groups. */
    example(DNN_LAYER_CONVOLUTIONAL, &s, used, &n);
    dz_wire_encode_spec(&s, &good);
    w = good;
    w.filters = 9;
    refused(&w, DNN_LAYER_CONVOLUTIONAL, "9 filters in 2 groups");
    w.groups = 3;
    accepted(&w, DNN_LAYER_CONVOLUTIONAL, "9 filters in 3 groups");

    /* Per-layer learning_rate: at most 1 (the owner's learning_rate_max bounds it), never
     * negative; -0.0 is a scale of 0. */
    const float bad_scale[] = {1.5f, -0.5f, 2.0f};
    for (size_t v = 0; v < COUNT(bad_scale); v++) {
        w = good;
        w.learning_rate_scale = bad_scale[v];
        refused(&w, DNN_LAYER_CONVOLUTIONAL, "learning_rate_scale out of [0, 1]");
    }
    const float good_scale[] = {-0.0f, 1.0f, 0.125f};
    for (size_t v = 0; v < COUNT(good_scale); v++) {
        w = good;
        w.learning_rate_scale = good_scale[v];
        accepted(&w, DNN_LAYER_CONVOLUTIONAL, "learning_rate_scale in [0, 1]");
    }

    /* The neutral dilation and route groups travel as 0, as before the fields existed. */
    s.dilation = 1;
    dz_wire_encode_spec(&s, &w);
    assert_int_equal(w.dilation, 0);
    example(DNN_LAYER_ROUTE, &s, used, &n);
    s.route_groups = 1;
    s.group_id = 0;
    dz_wire_encode_spec(&s, &w);
    assert_int_equal(w.route_groups, 0);
    accepted(&w, DNN_LAYER_ROUTE, "route_groups 1 sent as 0");
}

/* ------------------------------------------------------------------- the header */

static void example_header(struct dz_wire_request *r, struct dnn_net_config *cfg)
{
    memset(r, 0, sizeof(*r));
    r->n_layers = 12;
    r->first = 3;
    r->last = 7;
    r->batch = 32;
    r->subdivisions = 4;
    r->training = true;
    r->in_h = 14;
    r->in_w = 15;
    r->in_c = 6;
    r->seed = 0x0123456789ABCDEFull;
    r->output = DZ_OUTPUT_TOPK;
    r->top_k = 5;

    memset(cfg, 0, sizeof(*cfg));
    cfg->batch = 99; /* the request's batch is what goes on the wire */
    cfg->subdivisions = 99;
    cfg->h = cfg->w = cfg->c = 99;
    cfg->learning_rate = 0.01f;
    cfg->momentum = 0.9f;
    cfg->decay = 0.0005f;
    cfg->policy = DNN_POLICY_STEPS;
    cfg->gamma = 0.1f;
    cfg->scale = 0.5f;
    cfg->power = 4;
    cfg->step = 100;
    cfg->n_steps = 3;
    cfg->steps[0] = 10;
    cfg->steps[1] = 20;
    cfg->steps[2] = 30;
    cfg->scales[0] = 0.1f;
    cfg->scales[1] = 0.2f;
    cfg->scales[2] = 0.3f;
    cfg->max_batches = 5000;
    cfg->burn_in = 100;
    cfg->index_base = 42; /* not on the wire */
}

static void test_header_round_trip(void **state)
{
    (void)state;
    struct dz_wire_request r;
    struct dnn_net_config cfg, out;
    struct dz_model_header h;
    char msg[DZ_WIRE_MSG_MAX];

    example_header(&r, &cfg);
    memset(&h, 0xA5, sizeof(h));
    dz_wire_encode_header(&r, &cfg, &h);
    assert_int_equal(h.magic, DZ_MODEL_MAGIC);
    assert_int_equal(h.version, DZ_TA_PROTOCOL_VERSION);
    assert_int_equal(h.n_layers, 12);
    assert_int_equal(h.first, 3);
    assert_int_equal(h.last, 7);
    assert_int_equal(h.n_specs, 5);
    assert_int_equal(h.batch, 32);
    assert_int_equal(h.subdivisions, 4);
    assert_int_equal(h.training, 1);
    assert_int_equal(h.in_h, 14);
    assert_int_equal(h.in_w, 15);
    assert_int_equal(h.in_c, 6);
    assert_int_equal(bits(h.learning_rate), bits(0.01f));
    assert_int_equal(bits(h.momentum), bits(0.9f));
    assert_int_equal(bits(h.decay), bits(0.0005f));
    assert_int_equal(h.policy, DNN_POLICY_STEPS);
    assert_int_equal(bits(h.gamma), bits(0.1f));
    assert_int_equal(bits(h.scale), bits(0.5f));
    assert_int_equal(bits(h.power), bits(4.0f));
    assert_int_equal(h.step, 100);
    assert_int_equal(h.max_batches, 5000);
    assert_int_equal(h.burn_in, 100);
    assert_int_equal(h.n_steps, 3);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(h.steps[i], i < 3 ? cfg.steps[i] : 0);
        assert_int_equal(bits(h.scales[i]), i < 3 ? bits(cfg.scales[i]) : 0);
    }
    assert_int_equal(h.seed_lo, 0x89ABCDEFu);
    assert_int_equal(h.seed_hi, 0x01234567u);
    assert_int_equal(h.output_policy, DZ_OUTPUT_TOPK);
    assert_int_equal(h.top_k, 5);
    assert_int_equal(h.sgdr_cycle, 0); /* policy steps: no sgdr keys */

    memset(&out, 0x5A, sizeof(out));
    const char *why = dz_wire_decode_header(&h, &out, msg);
    if (why)
        fail_msg("refused: %s", why);
    assert_int_equal(out.batch, 32);
    assert_int_equal(out.subdivisions, 4);
    assert_int_equal(out.h, 14);
    assert_int_equal(out.w, 15);
    assert_int_equal(out.c, 6);
    assert_int_equal(bits(out.learning_rate), bits(cfg.learning_rate));
    assert_int_equal(bits(out.momentum), bits(cfg.momentum));
    assert_int_equal(bits(out.decay), bits(cfg.decay));
    assert_int_equal(out.policy, cfg.policy);
    assert_int_equal(bits(out.gamma), bits(cfg.gamma));
    assert_int_equal(bits(out.scale), bits(cfg.scale));
    assert_int_equal(bits(out.power), bits(cfg.power));
    assert_int_equal(out.step, cfg.step);
    assert_int_equal(out.n_steps, 3);
    for (int i = 0; i < DNN_MAX_STEPS; i++) {
        assert_int_equal(out.steps[i], i < 3 ? cfg.steps[i] : 0);
        assert_int_equal(bits(out.scales[i]), i < 3 ? bits(cfg.scales[i]) : 0);
    }
    assert_int_equal(out.max_batches, cfg.max_batches);
    assert_int_equal(out.burn_in, cfg.burn_in);
    assert_int_equal(out.index_base, 3); /* the segment's first layer */

    /* And back: the decoded config re-encodes to the same header. */
    struct dz_model_header h2;
    dz_wire_encode_header(&r, &out, &h2);
    assert_memory_equal(&h, &h2, sizeof(h));

    /* Bounds that pass: 16 steps, TOPK of 64, every ceiling. */
    struct dz_model_header b = h;
    b.n_steps = DNN_MAX_STEPS;
    for (int i = 0; i < DNN_MAX_STEPS; i++)
        b.steps[i] = i, b.scales[i] = 1;
    b.top_k = DZ_MAX_LABELS;
    b.batch = DZ_MAX_BATCH;
    b.subdivisions = DZ_MAX_DIM;
    b.in_h = b.in_w = b.in_c = DZ_MAX_DIM;
    assert_null(dz_wire_decode_header(&b, &out, msg));
    b = h;
    b.output_policy = DZ_OUTPUT_TOP1;
    b.top_k = 0;
    b.training = 0;
    assert_null(dz_wire_decode_header(&b, &out, msg));
    b.output_policy = DZ_OUTPUT_SCORES;
    assert_null(dz_wire_decode_header(&b, &out, msg));
    assert_false(out.adam);
    assert_int_equal(h.adam, 0);

    /* adam and its keys travel, bit for bit; the request then asks for DZ_MODE_ADAM. */
    cfg.adam = true;
    cfg.beta1 = 0.8f;
    cfg.beta2 = 0.999f;
    cfg.epsilon = 1e-7f;
    dz_wire_encode_header(&r, &cfg, &b);
    assert_int_equal(b.adam, 1);
    assert_int_equal(bits(b.beta1), bits(0.8f));
    assert_int_equal(bits(b.beta2), bits(0.999f));
    assert_int_equal(bits(b.epsilon), bits(1e-7f));
    assert_null(dz_wire_decode_header(&b, &out, msg));
    assert_true(out.adam);
    assert_int_equal(bits(out.beta1), bits(0.8f));
    assert_int_equal(bits(out.beta2), bits(0.999f));
    assert_int_equal(bits(out.epsilon), bits(1e-7f));
    struct dz_policy asked;
    dz_policy_of_request(&b, &asked);
    assert_int_equal(asked.modes, DZ_MODE_INFER | DZ_MODE_TRAIN | DZ_MODE_ADAM);
    b.beta1 = 0; /* the edges of the ranges */
    b.beta2 = 0.99999994f;
    assert_null(dz_wire_decode_header(&b, &out, msg));
}

#define HM(name, stmt)                                                                             \
    static void name(struct dz_model_header *h)                                                    \
    {                                                                                              \
        stmt;                                                                                      \
    }
HM(h_magic, h->magic ^= 0x100)
HM(h_version1, h->version = 1)
HM(h_version3, h->version = DZ_TA_PROTOCOL_VERSION + 1)
HM(h_layers0, h->n_layers = 0)
HM(h_layers_huge, (h->n_layers = DZ_MAX_LAYERS + 1))
HM(h_first_gt_last, (h->first = 7, h->last = 3))
HM(h_last_past_end, (h->last = 12, h->n_specs = 10))
HM(h_n_specs, h->n_specs = 4)
HM(h_n_specs_huge,
   (h->n_layers = 2000, h->first = 0, h->last = DZ_MAX_SPECS, h->n_specs = DZ_MAX_SPECS + 1))
HM(h_batch0, h->batch = 0)
HM(h_batch_huge, h->batch = DZ_MAX_BATCH + 1)
HM(h_subdiv0, h->subdivisions = 0)
HM(h_subdiv_huge, h->subdivisions = DZ_MAX_DIM + 1)
HM(h_training2, h->training = 2)
HM(h_in_h0, h->in_h = 0)
HM(h_in_w_huge, h->in_w = DZ_MAX_DIM + 1)
HM(h_in_c0, h->in_c = 0)
HM(h_rate_nan, h->learning_rate = nanf_())
HM(h_rate_inf, h->learning_rate = inff_())
HM(h_momentum_inf, h->momentum = -inff_())
HM(h_decay_nan, h->decay = nanf_())
HM(h_gamma_inf, h->gamma = inff_())
HM(h_scale_nan, h->scale = nanf_())
HM(h_power_inf, h->power = inff_())
HM(h_step_negative, h->step = -1)
HM(h_max_batches_negative, h->max_batches = -1)
HM(h_burn_in_negative, h->burn_in = INT32_MIN)
HM(h_policy, h->policy = DNN_POLICY_COUNT)
HM(h_n_steps, h->n_steps = DNN_MAX_STEPS + 1)
HM(h_steps_negative, h->steps[1] = -3)
HM(h_scales_nan, h->scales[2] = nanf_())
HM(h_steps_past_n, h->steps[3] = 1)
HM(h_scales_past_n, h->scales[15] = 1)
HM(h_scales_past_n_negative_zero, h->scales[3] = -0.0f)
HM(h_output_policy, h->output_policy = DZ_OUTPUT_COUNT)
HM(h_top_k_huge, h->top_k = DZ_MAX_LABELS + 1)
HM(h_topk_zero, h->top_k = 0)
HM(h_tree_words_huge, h->tree_words = DZ_MAX_TREE_WORDS + 1)
HM(h_stream_odd, h->stream_chunk_bytes = 65538)
HM(h_stream_huge, h->stream_chunk_bytes = 0x80000000u)
HM(h_sgdr_min_without_sgdr, h->learning_rate_min = 1e-5f)
HM(h_sgdr_mult_without_sgdr, h->sgdr_mult = 2)
HM(h_sgdr_cycle0, (h->policy = DNN_POLICY_SGDR, h->sgdr_cycle = 0, h->sgdr_mult = 2))
HM(h_sgdr_mult0, (h->policy = DNN_POLICY_SGDR, h->sgdr_cycle = 10, h->sgdr_mult = 0))
HM(h_sgdr_min_nan, (h->policy = DNN_POLICY_SGDR, h->sgdr_cycle = 10, h->sgdr_mult = 2,
                    h->learning_rate_min = nanf_()))
HM(h_sgdr_min_negative, (h->policy = DNN_POLICY_SGDR, h->sgdr_cycle = 2, h->sgdr_mult = 1,
                         h->learning_rate_min = -1e30f))
HM(h_learning_rate_negative, h->learning_rate = -1e30f)
HM(h_momentum_negative, h->momentum = -1e30f)
HM(h_decay_negative, h->decay = -0.5f)
HM(h_adam2, h->adam = 2)
HM(h_adam_b1_without_adam, h->beta1 = 0.9f)
HM(h_adam_eps_negative_zero, h->epsilon = -0.0f)
HM(h_adam_b1_one, (h->adam = 1, h->beta1 = 1, h->beta2 = .9f, h->epsilon = 1e-6f))
HM(h_adam_b2_negative, (h->adam = 1, h->beta1 = .9f, h->beta2 = -.1f, h->epsilon = 1e-6f))
HM(h_adam_b2_nan, (h->adam = 1, h->beta1 = .9f, h->beta2 = nanf_(), h->epsilon = 1e-6f))
HM(h_adam_eps0, (h->adam = 1, h->beta1 = .9f, h->beta2 = .9f, h->epsilon = 0))
HM(h_adam_eps_inf, (h->adam = 1, h->beta1 = .9f, h->beta2 = .9f, h->epsilon = inff_()))
#undef HM

static void test_header_refusals(void **state)
{
    (void)state;
    const struct {
        const char *what;
        void (*apply)(struct dz_model_header *);
    } muts[] = {
#define M(f) {#f, f}
        M(h_magic),
        M(h_version1),
        M(h_version3),
        M(h_layers0),
        M(h_layers_huge),
        M(h_first_gt_last),
        M(h_last_past_end),
        M(h_n_specs),
        M(h_n_specs_huge),
        M(h_batch0),
        M(h_batch_huge),
        M(h_subdiv0),
        M(h_subdiv_huge),
        M(h_training2),
        M(h_in_h0),
        M(h_in_w_huge),
        M(h_in_c0),
        M(h_rate_nan),
        M(h_rate_inf),
        M(h_momentum_inf),
        M(h_decay_nan),
        M(h_gamma_inf),
        M(h_scale_nan),
        M(h_power_inf),
        M(h_step_negative),
        M(h_max_batches_negative),
        M(h_burn_in_negative),
        M(h_policy),
        M(h_n_steps),
        M(h_steps_negative),
        M(h_scales_nan),
        M(h_steps_past_n),
        M(h_scales_past_n),
        M(h_scales_past_n_negative_zero),
        M(h_output_policy),
        M(h_top_k_huge),
        M(h_topk_zero),
        M(h_tree_words_huge),
        M(h_stream_odd),
        M(h_stream_huge),
        M(h_sgdr_min_without_sgdr),
        M(h_sgdr_mult_without_sgdr),
        M(h_sgdr_cycle0),
        M(h_sgdr_mult0),
        M(h_sgdr_min_nan),
        M(h_sgdr_min_negative),
        M(h_learning_rate_negative),
        M(h_momentum_negative),
        M(h_decay_negative),
        M(h_adam2),
        M(h_adam_b1_without_adam),
        M(h_adam_eps_negative_zero),
        M(h_adam_b1_one),
        M(h_adam_b2_negative),
        M(h_adam_b2_nan),
        M(h_adam_eps0),
        M(h_adam_eps_inf),
#undef M
    };
    struct dz_wire_request r;
    struct dnn_net_config cfg, out;
    struct dz_model_header good, h;
    char msg[DZ_WIRE_MSG_MAX];

    example_header(&r, &cfg);
    dz_wire_encode_header(&r, &cfg, &good);
    assert_null(dz_wire_decode_header(&good, &out, msg));
    for (size_t i = 0; i < COUNT(muts); i++) {
        h = good;
        muts[i].apply(&h);
        memset(msg, 0, sizeof(msg));
        const char *why = dz_wire_decode_header(&h, &out, msg);
        if (!why)
            fail_msg("%s was accepted", muts[i].what);
        assert_ptr_equal(why, msg);
        assert_true(strlen(msg) > 0);
    }
    /* The version message names both versions (a v1 host gets a clear answer). */
    h = good;
    h.version = 1;
    assert_non_null(dz_wire_decode_header(&h, &out, msg));
    assert_non_null(strstr(msg, "version 1"));
    assert_non_null(strstr(msg, "speaks 3"));
}

/* ------------------------------------------------------------------- the policy */

static struct dz_policy base_policy(void)
{
    return (struct dz_policy){.modes = DZ_MODES_VALID,
                              .output = DZ_OUTPUT_TOPK,
                              .top_k_max = 5,
                              .batch_min = 2,
                              .batch_max = 8,
                              .subdivisions_max = 4,
                              .learning_rate_max = 0.1f,
                              .momentum_max = 0.9f,
                              .decay_max = 0.001f};
}

#define PM(name, stmt)                                                                             \
    static void name(struct dz_policy *p)                                                          \
    {                                                                                              \
        stmt;                                                                                      \
    }
PM(p_modes0, p->modes = 0)
PM(p_modes_train_only, p->modes = DZ_MODE_TRAIN)
PM(p_modes_unknown, p->modes = DZ_MODES_VALID | 8)
PM(p_adam_without_train, p->modes = DZ_MODE_INFER | DZ_MODE_ADAM)
PM(p_output, p->output = DZ_OUTPUT_COUNT)
PM(p_top_k0, p->top_k_max = 0)
PM(p_top_k_huge, p->top_k_max = DZ_MAX_LABELS + 1)
PM(p_batch_min0, p->batch_min = 0)
PM(p_batch_min_gt_max, (p->batch_min = 9, p->batch_max = 8))
PM(p_batch_max_huge, p->batch_max = DZ_MAX_BATCH + 1)
PM(p_subdiv0, p->subdivisions_max = 0)
PM(p_subdiv_huge, p->subdivisions_max = DZ_MAX_DIM + 1)
PM(p_rate_negative, p->learning_rate_max = -0.5f)
PM(p_rate_nan, p->learning_rate_max = nanf_())
PM(p_rate_inf, p->learning_rate_max = inff_())
PM(p_momentum_negative, p->momentum_max = -1e-30f)
PM(p_momentum_nan, p->momentum_max = nanf_())
PM(p_decay_inf, p->decay_max = inff_())
PM(p_decay_negative, p->decay_max = -1)
PM(p_reserved0, p->reserved[0] = 1)
PM(p_reserved1, p->reserved[1] = 0x100)
PM(p_reserved2, p->reserved[2] = 0x80000000u)
#undef PM

static void test_policy_check(void **state)
{
    (void)state;
    const struct {
        const char *what;
        void (*apply)(struct dz_policy *);
    } bad[] = {
#define M(f) {#f, f}
        M(p_modes0),
        M(p_modes_train_only),
        M(p_modes_unknown),
        M(p_output),
        M(p_adam_without_train),
        M(p_top_k0),
        M(p_top_k_huge),
        M(p_batch_min0),
        M(p_batch_min_gt_max),
        M(p_batch_max_huge),
        M(p_subdiv0),
        M(p_subdiv_huge),
        M(p_rate_negative),
        M(p_rate_nan),
        M(p_rate_inf),
        M(p_momentum_negative),
        M(p_momentum_nan),
        M(p_decay_inf),
        M(p_decay_negative),
        M(p_reserved0),
        M(p_reserved1),
        M(p_reserved2),
#undef M
    };
    char msg[DZ_WIRE_MSG_MAX];
    struct dz_policy p = base_policy();

    assert_null(dz_policy_check(&p, msg));
    for (size_t i = 0; i < COUNT(bad); i++) {
        p = base_policy();
        bad[i].apply(&p);
        memset(msg, 0, sizeof(msg));
        const char *why = dz_policy_check(&p, msg);
        if (!why)
            fail_msg("%s was accepted", bad[i].what);
        assert_ptr_equal(why, msg);
        assert_true(strlen(msg) > 0);
    }

    /* The bounds themselves pass. */
    p = base_policy();
    p.modes = DZ_MODE_INFER;
    p.output = DZ_OUTPUT_SCORES;
    p.top_k_max = DZ_MAX_LABELS;
    p.batch_min = 1;
    p.batch_max = DZ_MAX_BATCH;
    p.subdivisions_max = DZ_MAX_DIM;
    p.learning_rate_max = 0;
    p.momentum_max = -0.0f; /* compares equal to 0: not negative */
    p.decay_max = 3.4e38f;
    assert_null(dz_policy_check(&p, msg));
    p = base_policy();
    p.output = DZ_OUTPUT_TOP1;
    p.top_k_max = 1;
    p.batch_min = p.batch_max = 4;
    assert_null(dz_policy_check(&p, msg));
}

/* dz_policy_within(want, allowed): each rule once, at its bound (within) and past it. */
static void test_policy_within(void **state)
{
    (void)state;
    char msg[DZ_WIRE_MSG_MAX];
    const struct dz_policy allowed = base_policy();
    struct dz_policy want;
    struct {
        const char *what;
        struct dz_policy want;
        bool within;
    } rows[32];
    size_t n = 0;

#define ROW(what_, stmt, within_)                                                                  \
    do {                                                                                           \
        struct dz_policy *p = &want;                                                               \
        want = allowed;                                                                            \
        stmt;                                                                                      \
        rows[n].what = what_;                                                                      \
        rows[n].want = want;                                                                       \
        rows[n].within = within_;                                                                  \
        n++;                                                                                       \
    } while (0)
    ROW("the same policy", (void)p, true);
    /* output: a lower level always; TOPK up to top_k_max when both are TOPK */
    ROW("top1 under topk", p->output = DZ_OUTPUT_TOP1, true);
    ROW("topk 5 under topk 5", p->top_k_max = 5, true);
    ROW("topk 6 under topk 5", p->top_k_max = 6, false);
    ROW("rank under topk", p->output = DZ_OUTPUT_RANK, false);
    ROW("scores under topk", p->output = DZ_OUTPUT_SCORES, false);
    /* modes */
    ROW("inference only under all", p->modes = DZ_MODE_INFER, true);
    ROW("SGD training under adam allowed", p->modes = DZ_MODE_INFER | DZ_MODE_TRAIN, true);
    /* training bounds */
    ROW("batch 2..8", (p->batch_min = 2, p->batch_max = 8), true);
    ROW("batch 4..4", (p->batch_min = 4, p->batch_max = 4), true);
    ROW("batch_min 1", p->batch_min = 1, false);
    ROW("batch_max 9", p->batch_max = 9, false);
    ROW("subdivisions 4", p->subdivisions_max = 4, true);
    ROW("subdivisions 5", p->subdivisions_max = 5, false);
    ROW("rate 0.1", p->learning_rate_max = 0.1f, true);
    ROW("rate 0.05", p->learning_rate_max = 0.05f, true);
    ROW("rate 0.2", p->learning_rate_max = 0.2f, false);
    ROW("momentum 0.95", p->momentum_max = 0.95f, false);
    ROW("momentum 0", p->momentum_max = 0, true);
    ROW("decay 0.01", p->decay_max = 0.01f, false);
    ROW("decay 0.001", p->decay_max = 0.001f, true);
    /* the training bounds do not apply to inference */
    ROW("inference at batch 100 with rate 100",
        (p->modes = DZ_MODE_INFER, p->batch_min = 100, p->batch_max = 100, p->subdivisions_max = 64,
         p->learning_rate_max = 100, p->momentum_max = 5, p->decay_max = 5),
        true);
#undef ROW
    for (size_t i = 0; i < n; i++) {
        memset(msg, 0, sizeof(msg));
        const char *why = dz_policy_within(&rows[i].want, &allowed, msg);
        if (rows[i].within && why)
            fail_msg("%s: refused (%s)", rows[i].what, why);
        if (!rows[i].within && !why)
            fail_msg("%s: accepted", rows[i].what);
        if (why)
            assert_true(why == msg && strlen(msg) > 0);
    }

    /* Allowed inference only: training refused, inference fine. */
    struct dz_policy infer = allowed;
    infer.modes = DZ_MODE_INFER;
    want = allowed;
    assert_non_null(dz_policy_within(&want, &infer, msg));
    want.modes = DZ_MODE_INFER;
    assert_null(dz_policy_within(&want, &infer, msg));
    /* An allowed policy without inference (not well formed, but the rule holds). */
    struct dz_policy train_only = allowed;
    train_only.modes = DZ_MODE_TRAIN;
    want = allowed;
    want.modes = DZ_MODE_INFER;
    assert_non_null(dz_policy_within(&want, &train_only, msg));
    /* Allowed rank: TOPK of any k, rank, top1 within; scores not. */
    struct dz_policy rank = allowed;
    rank.output = DZ_OUTPUT_RANK;
    rank.top_k_max = 1;
    want = allowed;
    want.top_k_max = DZ_MAX_LABELS;
    assert_null(dz_policy_within(&want, &rank, msg));
    want.output = DZ_OUTPUT_RANK;
    assert_null(dz_policy_within(&want, &rank, msg));
    want.output = DZ_OUTPUT_SCORES;
    assert_non_null(dz_policy_within(&want, &rank, msg));
    /* Allowed top1: nothing above it. */
    struct dz_policy top1 = allowed;
    top1.output = DZ_OUTPUT_TOP1;
    want = allowed;
    want.output = DZ_OUTPUT_TOPK;
    want.top_k_max = 1;
    assert_non_null(dz_policy_within(&want, &top1, msg));
    want.output = DZ_OUTPUT_TOP1;
    assert_null(dz_policy_within(&want, &top1, msg));
    /* adam only where the owner allowed it. */
    struct dz_policy sgd = allowed;
    sgd.modes = DZ_MODE_INFER | DZ_MODE_TRAIN;
    want = allowed;
    want.modes = DZ_MODE_INFER | DZ_MODE_TRAIN | DZ_MODE_ADAM;
    assert_non_null(dz_policy_within(&want, &sgd, msg));
    assert_non_null(strstr(msg, "momentum SGD only, adam was asked"));
    assert_null(dz_policy_within(&want, &allowed, msg));
}

static void test_policy_of_request_and_names(void **state)
{
    (void)state;
    struct dz_wire_request r;
    struct dnn_net_config cfg;
    struct dz_model_header h;
    struct dz_policy p;
    char msg[DZ_WIRE_MSG_MAX];

    example_header(&r, &cfg);
    dz_wire_encode_header(&r, &cfg, &h);
    memset(&p, 0xA5, sizeof(p));
    dz_policy_of_request(&h, &p);
    assert_int_equal(p.modes, DZ_MODES_ALL); /* SGD: no DZ_MODE_ADAM */
    assert_int_equal(p.output, DZ_OUTPUT_TOPK);
    assert_int_equal(p.top_k_max, 5);
    assert_int_equal(p.batch_min, 32);
    assert_int_equal(p.batch_max, 32);
    assert_int_equal(p.subdivisions_max, 4);
    assert_int_equal(bits(p.learning_rate_max), bits(cfg.learning_rate));
    assert_int_equal(bits(p.momentum_max), bits(cfg.momentum));
    assert_int_equal(bits(p.decay_max), bits(cfg.decay));
    for (size_t i = 0; i < COUNT(p.reserved); i++)
        assert_int_equal(p.reserved[i], 0);
    assert_null(dz_policy_check(&p, msg));
    assert_null(dz_policy_within(&p, &p, msg));

    r.training = false;
    r.output = DZ_OUTPUT_TOP1;
    r.top_k = 0;
    dz_wire_encode_header(&r, &cfg, &h);
    dz_policy_of_request(&h, &p);
    assert_int_equal(p.modes, DZ_MODE_INFER);
    assert_int_equal(p.output, DZ_OUTPUT_TOP1);
    assert_int_equal(p.top_k_max, 1); /* well formed even without a top_k */
    assert_null(dz_policy_check(&p, msg));

    assert_string_equal(dz_output_name(DZ_OUTPUT_TOP1), "top1");
    assert_string_equal(dz_output_name(DZ_OUTPUT_TOPK), "topk");
    assert_string_equal(dz_output_name(DZ_OUTPUT_RANK), "rank");
    assert_string_equal(dz_output_name(DZ_OUTPUT_SCORES), "scores");
    assert_string_equal(dz_output_name(DZ_OUTPUT_COUNT), "?");
}

/* The part of the model digest after the specs: partition, then six dims per layer, LE. */
static void test_shape_bytes(void **state)
{
    (void)state;
    struct dnn_layer layers[2];
    uint8_t buf[12 + 48 + 1];
    memset(layers, 0, sizeof(layers));
    layers[0].h = 1, layers[0].w = 2, layers[0].c = 3;
    layers[0].out_h = 4, layers[0].out_w = 5, layers[0].out_c = 0x01020304;
    layers[1].h = 7, layers[1].w = 8, layers[1].c = 9;
    layers[1].out_h = 10, layers[1].out_w = 11, layers[1].out_c = 12;
    assert_int_equal(dz_wire_shape_size(0), 12);
    assert_int_equal(dz_wire_shape_size(2), 12 + 48);
    memset(buf, 0xEE, sizeof(buf));
    dz_wire_shape_bytes(3, 4, 0x00010203, layers, 2, buf);
    const uint8_t want[12 + 48] = {
        3, 0, 0, 0, 4, 0, 0, 0, 3, 2, 1, 0,                                        /* partition */
        1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,  0, 0, 0, 5,  0, 0, 0, 4,  3, 2, 1, /* layer 0 */
        7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0, 12, 0, 0, 0};
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(buf[sizeof(want)], 0xEE); /* nothing written past it */
}

/* ------------------------------------------------------------- tree group table */

/* A segment of three layers: connected, a tree softmax of groups {2, 3}, then a second tree
 * softmax of groups {1, 4}, as wire specs and the table the encoder writes for them. */
static const int tree_a[] = {2, 3}, tree_b[] = {1, 4};

static void tree_segment(struct dnn_layer_spec specs[3], struct dz_wire_spec w[3])
{
    memset(specs, 0, 3 * sizeof(*specs));
    specs[0] = (struct dnn_layer_spec){
        .kind = DNN_LAYER_CONNECTED, .activation = DNN_ACT_LINEAR, .outputs = 5};
    for (int i = 1; i < 3; i++) {
        specs[i] = (struct dnn_layer_spec){
            .kind = DNN_LAYER_SOFTMAX, .softmax_groups = 1, .temperature = 1};
        specs[i].tree_group_size = i == 1 ? tree_a : tree_b;
        specs[i].tree_groups = 2;
    }
    for (int i = 0; i < 3; i++)
        dz_wire_encode_spec(&specs[i], &w[i]);
}

/* Decodes @table (@n words) for the segment at absolute layers 4..6; NULL or the refusal. */
static const char *decode_table(const struct dz_wire_spec w[3], const uint32_t *table, size_t n,
                                int *sizes, struct dnn_layer_spec out[3], char msg[DZ_WIRE_MSG_MAX])
{
    for (uint32_t i = 0; i < 3; i++) {
        const char *why = dz_wire_decode_spec(&w[i], 4, 4 + i, &out[i], msg);
        if (why)
            return why;
    }
    return dz_wire_decode_tree(w, 3, 4, table, n, sizes, out, msg);
}

static void test_tree_table_round_trip(void **state)
{
    (void)state;
    struct dnn_layer_spec specs[3], out[3];
    struct dz_wire_spec w[3];
    char msg[DZ_WIRE_MSG_MAX];
    int sizes[6];
    tree_segment(specs, w);
    assert_true(w[1].layer_flags == DZ_LF_TREE && w[2].layer_flags == DZ_LF_TREE);
    assert_int_equal(w[0].layer_flags, 0);
    assert_int_equal(dz_wire_tree_words(specs, 3), 6);
    assert_int_equal(dz_wire_tree_words(specs, 1), 0);
    uint32_t table[7];
    memset(table, 0xEE, sizeof table);
    dz_wire_encode_tree(specs, 3, table);
    const uint32_t want[6] = {2, 2, 3, 2, 1, 4};
    assert_memory_equal(table, want, sizeof want);
    assert_int_equal(table[6], 0xEEEEEEEEu); /* nothing written past it */

    assert_null(decode_table(w, table, 6, sizes, out, msg));
    assert_null(out[0].tree_group_size);
    assert_int_equal(out[0].tree_groups, 0);
    assert_ptr_equal(out[1].tree_group_size, &sizes[1]);
    assert_ptr_equal(out[2].tree_group_size, &sizes[4]);
    assert_int_equal(out[1].tree_groups, 2);
    assert_int_equal(out[2].tree_groups, 2);
    assert_memory_equal(out[1].tree_group_size, tree_a, sizeof tree_a);
    assert_memory_equal(out[2].tree_group_size, tree_b, sizeof tree_b);

    /* the engine takes the decoded layers: the sizes sum to the inputs */
    struct dnn_net_config cfg = {.batch = 1, .subdivisions = 1, .h = 1, .w = 1, .c = 3};
    size_t bytes = 0;
    assert_int_equal(dnn_network_plan(&cfg, out, 3, false, &bytes), DNN_OK);
    /* sizes that do not sum to the inputs: the engine refuses the layer at setup */
    table[2] = 2;
    assert_null(decode_table(w, table, 6, sizes, out, msg));
    assert_int_equal(dnn_network_plan(&cfg, out, 3, false, &bytes), DNN_ERR_INVALID);
    table[2] = 4;
    assert_null(decode_table(w, table, 6, sizes, out, msg));
    assert_int_equal(dnn_network_plan(&cfg, out, 3, false, &bytes), DNN_ERR_INVALID);
}

/* Each hostile table is refused with a message naming what is wrong. */
static void test_tree_table_refusals(void **state)
{
    (void)state;
    struct dnn_layer_spec specs[3], out[3];
    struct dz_wire_spec w[3];
    char msg[DZ_WIRE_MSG_MAX];
    int sizes[8];
    tree_segment(specs, w);
    static const struct {
        const char *what;
        uint32_t table[8];
        size_t n;
        const char *expect;
    } cases[] = {
        {"no table", {0}, 0, "layer 5: tree softmax without its record"},
        {"truncated: the second record missing", {2, 2, 3}, 3, "layer 6: tree softmax without"},
        {"truncated: a size missing",
         {2, 2, 3, 2, 1},
         5,
         "layer 6: tree of 2 groups, the group "
         "table has 1 words left"},
        {"group count too large",
         {0xFFFFFFFFu, 2, 3, 2, 1, 4},
         6,
         "layer 5: tree of 4294967295 "
         "groups"},
        {"group count zero", {0, 2, 3, 2, 1, 4}, 6, "layer 5: tree of 0 groups"},
        {"a zero size", {2, 2, 0, 2, 1, 4}, 6, "layer 5: tree group 1 of size 0"},
        {"a size above the cap", {2, 2, DZ_MAX_OUTPUTS + 1, 2, 1, 4}, 6, "tree group 1 of size"},
        {"sizes summing above the cap", {2, DZ_MAX_OUTPUTS, 1, 2, 1, 4}, 6, "tree group 1 of"},
        {"words left over",
         {2, 2, 3, 2, 1, 4, 7},
         7,
         "model: 1 words of the group table belong "
         "to no tree softmax"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *why = decode_table(w, cases[c].table, cases[c].n, sizes, out, msg);
        if (!why || !strstr(why, cases[c].expect))
            fail_msg("%s: got '%s', want '%s'", cases[c].what, why ? why : "(accepted)",
                     cases[c].expect);
    }

    /* groups given for a layer that is not a tree: the records belong to no tree */
    struct dz_wire_spec plain[3];
    memcpy(plain, w, sizeof plain);
    plain[1].layer_flags = plain[2].layer_flags = 0;
    for (uint32_t i = 0; i < 3; i++)
        assert_null(dz_wire_decode_spec(&plain[i], 4, 4 + i, &out[i], msg));
    const uint32_t table[6] = {2, 2, 3, 2, 1, 4};
    const char *why = dz_wire_decode_tree(plain, 3, 4, table, 6, sizes, out, msg);
    assert_non_null(why);
    assert_non_null(strstr(why, "6 words of the group table belong to no tree softmax"));
    /* DZ_LF_TREE on a layer that is not a softmax: refused by the spec decoder */
    plain[0].layer_flags = DZ_LF_TREE;
    why = dz_wire_decode_spec(&plain[0], 4, 4, &out[0], msg);
    assert_non_null(why);
    assert_non_null(strstr(why, "layer 4: layer_flags 0x20 has a flag of another kind"));
    /* and by the table's decoder, which does not trust that the spec decoder ran */
    why = dz_wire_decode_tree(plain, 3, 4, table, 6, sizes, out, msg);
    assert_non_null(why);
    assert_non_null(strstr(why, "layer 4: a tree on a layer that is not a softmax"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_table_round_trip),
        cmocka_unit_test(test_tree_table_refusals),
        cmocka_unit_test(test_spec_round_trip_per_kind),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_policy_within),
        cmocka_unit_test(test_policy_of_request_and_names),
        cmocka_unit_test(test_shape_bytes),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
