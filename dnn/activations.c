/*
 * activations.c - darknet's activation functions and their gradients.
 *
 * Each formula is darknet's (pjreddie/darknet src/activations.h), including where it
 * computes in double: the constants .1, .01, 1.0507 ... are double literals there, so
 * the product is formed in double and rounded to float once. We do the same with
 * explicit casts. The gradients take the ACTIVATED output y, as darknet's do.
 *
 * Where darknet's expression misbehaves outside any useful range, we keep the value
 * it has where it is defined: elu/selu of x >= 0 are computed without the
 * 0 * (exp(x) - 1) term (NaN above x = 709 in darknet), and tanh uses dnn_tanhf
 * (darknet's (e^2x - 1) / (e^2x + 1) in double agrees after rounding to float,
 * except that it loses accuracy for tiny |x| and gives NaN above x = 354).
 *
 * relu6, swish, mish, hard_mish and gelu are AlexeyAB/darknet's (src/activations.c
 * and .h), which computes them in float with expf/logf/tanhf: so do we, with the
 * engine's own dnn_expf/dnn_logf/dnn_tanhf, keeping its double sub-expressions
 * (gelu's constants, mish's gradient) in double. Their gradients need the input
 * x, which the layers keep in l->act_input. One deliberate difference: darknet's
 * CPU backward evaluates gelu_gradient at the OUTPUT; here it is evaluated at the
 * input, so that it is the derivative of the forward pass.
 */
#include "dnn/dnn_internal.h"
#include "dnn/vec4.h"

#include <string.h>

static const struct {
    const char *name;
    enum dnn_activation act;
} ACTIVATION_NAMES[] = {
    {"logistic", DNN_ACT_LOGISTIC}, {"relu", DNN_ACT_RELU},   {"relie", DNN_ACT_RELIE},
    {"linear", DNN_ACT_LINEAR},     {"ramp", DNN_ACT_RAMP},   {"tanh", DNN_ACT_TANH},
    {"plse", DNN_ACT_PLSE},         {"leaky", DNN_ACT_LEAKY}, {"elu", DNN_ACT_ELU},
    {"loggy", DNN_ACT_LOGGY},       {"stair", DNN_ACT_STAIR}, {"hardtan", DNN_ACT_HARDTAN},
    {"lhtan", DNN_ACT_LHTAN},       {"selu", DNN_ACT_SELU},   {"relu6", DNN_ACT_RELU6},
    {"swish", DNN_ACT_SWISH},       {"mish", DNN_ACT_MISH},   {"hard_mish", DNN_ACT_HARD_MISH},
    {"gelu", DNN_ACT_GELU},
};

/* AlexeyAB's softplus threshold for mish: beyond +-20, log(1 + e^x) is x or e^x
 * to float precision. */
#define MISH_THRESHOLD 20.0f

/* gelu's tanh approximation, with the constants AlexeyAB writes (double
 * literals): forward 0.797885 and 0.035677, gradient 0.0356774, 0.797885,
 * 0.0535161 (= 1.5 * 0.0356774) and 0.398942 (= 0.797885 / 2). */
#define GELU_A 0.797885
#define GELU_B 0.035677
#define GELU_GB 0.0356774
#define GELU_GB3 0.0535161
#define GELU_GA2 0.398942

#define N_ACTIVATIONS (sizeof ACTIVATION_NAMES / sizeof ACTIVATION_NAMES[0])

/* selu's lambda and lambda*alpha, as darknet writes them (double literals). */
#define SELU_LAMBDA 1.0507
#define SELU_LAMBDA_ALPHA (1.0507 * 1.6732)

bool dnn_activation_from_name(const char *name, enum dnn_activation *out)
{
    if (!name || !out)
        return false;
    for (size_t i = 0; i < N_ACTIVATIONS; i++) {
        if (strcmp(name, ACTIVATION_NAMES[i].name) == 0) {
            *out = ACTIVATION_NAMES[i].act;
            return true;
        }
    }
    return false;
}

const char *dnn_activation_name(enum dnn_activation a)
{
    for (size_t i = 0; i < N_ACTIVATIONS; i++) {
        if (ACTIVATION_NAMES[i].act == a)
            return ACTIVATION_NAMES[i].name;
    }
    return "unknown";
}

/* darknet's stair: floor(x/2) on even floors, plus the fraction on odd ones. */
static float stair_activate(float x)
{
    if (!(dnn_fabsf(x) < 0x1p24f))
        return dnn_isnan(x) ? x : x * 0.5f; /* NaN, inf, or an even integer */
    int32_t n = (int32_t)dnn_floorf(x);
    /* floor(x / 2) == floor(n / 2) for n = floor(x), as an exact integer. */
    int32_t half = n / 2 - (n % 2 < 0 ? 1 : 0);
    if (n % 2 == 0)
        return (float)half;
    float frac = x - (float)n;
    return (float)((double)frac + (double)half);
}

/* AlexeyAB's logistic_activate: 1.f / (1.f + expf(-x)), in float. */
static float logistic_f(float x)
{
    return 1.0f / (1.0f + dnn_expf(-x));
}

/* AlexeyAB's tanh_activate: 2 / (1 + expf(-2x)) - 1, in float. */
static float tanh_f(float x)
{
    return 2.0f / (1.0f + dnn_expf(-2.0f * x)) - 1.0f;
}

static float softplus_f(float x, float threshold)
{
    if (x > threshold)
        return x;
    if (x < -threshold)
        return dnn_expf(x);
    return dnn_logf(dnn_expf(x) + 1.0f);
}

/* x^3 as powf(x, 3) gives it, to the nearest float. */
static float cube_f(float x)
{
    return (float)((double)x * (double)x * (double)x);
}

static float gelu_activate(float x)
{
    const float t = dnn_tanhf((float)(GELU_A * (double)x + GELU_B * (double)cube_f(x)));
    return (float)(0.5 * (double)x * (double)(1.0f + t));
}

static float gelu_gradient(float x)
{
    const float x3 = cube_f(x);
    const float u = (float)(GELU_GB * (double)x3 + GELU_A * (double)x);
    /* darknet's sech(u) = 2 / (expf(u) + expf(-u)), squared with powf(., 2) */
    const float sech = 2.0f / (dnn_expf(u) + dnn_expf(-u));
    const double sech2 = (double)sech * (double)sech;
    return (float)(0.5 * (double)dnn_tanhf(u) +
                   (GELU_GB3 * (double)x3 + GELU_GA2 * (double)x) * (double)(float)sech2 + 0.5);
}

static float hard_mish_activate(float x)
{
    if (x > 0)
        return x;
    if (x > -2)
        return x * x / 2 + x;
    return 0;
}

/* The gradient of an activation that keeps its input x; y = act(x). */
static float gradient_from_input(float x, float y, enum dnn_activation a)
{
    switch (a) {
    case DNN_ACT_SWISH: {
        /* y + s (1 - y), s = sigmoid(x): AlexeyAB's form of s + x s (1 - s) */
        const float s = logistic_f(x);
        return y + s * (1 - y);
    }
    case DNN_ACT_MISH: {
        const float sp = softplus_f(x, MISH_THRESHOLD);
        const float grad_sp = (float)(1.0 - dnn_exp(-(double)sp)); /* sigmoid(x) */
        const float tsp = dnn_tanhf(sp);
        const float grad_tsp = (1 - tsp * tsp) * grad_sp;
        return x * grad_tsp + tsp;
    }
    case DNN_ACT_HARD_MISH:
        if (x > 0)
            return 1;
        if (x > -2)
            return x + 1;
        return 0;
    case DNN_ACT_GELU:
        return gelu_gradient(x);
    default:
        break;
    }
    return 0;
}

static float activate(float x, enum dnn_activation a)
{
    switch (a) {
    case DNN_ACT_LINEAR:
        return x;
    case DNN_ACT_LOGISTIC:
        return (float)(1.0 / (1.0 + dnn_exp(-(double)x)));
    case DNN_ACT_LOGGY:
        return (float)(2.0 / (1.0 + dnn_exp(-(double)x)) - 1.0);
    case DNN_ACT_RELU:
        return x * (float)(x > 0);
    case DNN_ACT_ELU:
        return x >= 0 ? x : (float)(dnn_exp((double)x) - 1.0);
    case DNN_ACT_SELU:
        return x >= 0 ? (float)(SELU_LAMBDA * (double)x)
                      : (float)(SELU_LAMBDA_ALPHA * (dnn_exp((double)x) - 1.0));
    case DNN_ACT_RELIE:
        return x > 0 ? x : (float)(0.01 * (double)x);
    case DNN_ACT_RAMP:
        return (float)((double)(x * (float)(x > 0)) + 0.1 * (double)x);
    case DNN_ACT_LEAKY:
        return x > 0 ? x : (float)(0.1 * (double)x);
    case DNN_ACT_TANH:
        return dnn_tanhf(x);
    case DNN_ACT_PLSE:
        if (x < -4)
            return (float)(0.01 * (double)(x + 4.0f));
        if (x > 4)
            return (float)(0.01 * (double)(x - 4.0f) + 1.0);
        return (float)(0.125 * (double)x + 0.5);
    case DNN_ACT_STAIR:
        return stair_activate(x);
    case DNN_ACT_HARDTAN:
        if (x < -1)
            return -1;
        if (x > 1)
            return 1;
        return x;
    case DNN_ACT_LHTAN:
        if (x < 0)
            return (float)(0.001 * (double)x);
        if (x > 1)
            return (float)(0.001 * (double)(x - 1.0f) + 1.0);
        return x;
    case DNN_ACT_RELU6:
        return x > 6 ? 6.0f : (x > 0 ? x : 0.0f);
    case DNN_ACT_SWISH:
        return x * logistic_f(x);
    case DNN_ACT_MISH:
        return x * tanh_f(softplus_f(x, MISH_THRESHOLD));
    case DNN_ACT_HARD_MISH:
        return hard_mish_activate(x);
    case DNN_ACT_GELU:
        return gelu_activate(x);
    default:
        break;
    }
    return 0;
}

/* d act / dx expressed through y = act(x). */
static float gradient(float y, enum dnn_activation a)
{
    switch (a) {
    case DNN_ACT_LINEAR:
        return 1;
    case DNN_ACT_LOGISTIC:
        return (1 - y) * y;
    case DNN_ACT_LOGGY: {
        float h = (float)(((double)y + 1.0) / 2.0);
        return 2 * (1 - h) * h;
    }
    case DNN_ACT_RELU:
        return (float)(y > 0);
    case DNN_ACT_ELU:
        return y >= 0 ? 1.0f : y + 1.0f;
    case DNN_ACT_SELU:
        return y >= 0 ? (float)SELU_LAMBDA : (float)((double)y + SELU_LAMBDA_ALPHA);
    case DNN_ACT_RELIE:
        return y > 0 ? 1.0f : (float)0.01;
    case DNN_ACT_RAMP:
        return (float)((double)(y > 0) + 0.1);
    case DNN_ACT_LEAKY:
        return y > 0 ? 1.0f : (float)0.1;
    case DNN_ACT_TANH:
        return 1 - y * y;
    case DNN_ACT_PLSE:
        return (y < 0 || y > 1) ? (float)0.01 : (float)0.125;
    case DNN_ACT_STAIR:
        return dnn_feq(dnn_floorf(y), y) ? 0.0f : 1.0f;
    case DNN_ACT_HARDTAN:
        return (y > -1 && y < 1) ? 1.0f : 0.0f;
    case DNN_ACT_LHTAN:
        return (y > 0 && y < 1) ? 1.0f : (float)0.001;
    case DNN_ACT_RELU6:
        return (y > 0 && y < 6) ? 1.0f : 0.0f;
    default:
        break;
    }
    return 0;
}

/*
 * relu and leaky, the common activations, four values at a time with GCC/Clang vector
 * extensions (-O2 vectorises no loop of unknown length by itself). Every lane computes what
 * activate() and gradient() compute, with the same roundings: a comparison mask turned into
 * 1.0f or 0.0f and multiplied (relu keeps x * 0 = -0 and NaN), leaky's product formed in
 * double and rounded once, selections by bits. The tails, and compilers without vector
 * extensions, take the scalar expressions.
 */
#if DNN_V4
static const dnn_v4 ACT_ZERO = {0, 0, 0, 0};
static const dnn_v4 ACT_ONE = {1, 1, 1, 1};
static const dnn_v4 ACT_LEAK = {(float)0.1, (float)0.1, (float)0.1, (float)0.1};
static const dnn_v4d ACT_LEAK_D = {0.1, 0.1, 0.1, 0.1};

/* Values [0, n - n % DNN_V4_LANES) of x activated; returns how many. */
static size_t activate_lanes(float *x, size_t n, enum dnn_activation a)
{
    size_t i = 0;
    for (; i + DNN_V4_LANES <= n; i += DNN_V4_LANES) {
        const dnn_v4 v = dnn_v4_load(x + i);
        const dnn_v4i pos = v > ACT_ZERO;
        if (a == DNN_ACT_RELU) {
            dnn_v4_store(x + i, v * (dnn_v4)(pos & (dnn_v4i)ACT_ONE));
        } else {
            const dnn_v4 leak =
                __builtin_convertvector(__builtin_convertvector(v, dnn_v4d) * ACT_LEAK_D, dnn_v4);
            dnn_v4_store(x + i, dnn_v4_select(pos, v, leak));
        }
    }
    return i;
}

/* Values [0, n - n % DNN_V4_LANES) of delta multiplied by the gradient; returns how many. */
static size_t gradient_lanes(const float *y, size_t n, enum dnn_activation a, float *delta)
{
    size_t i = 0;
    for (; i + DNN_V4_LANES <= n; i += DNN_V4_LANES) {
        const dnn_v4i pos = dnn_v4_load(y + i) > ACT_ZERO;
        const dnn_v4 g = a == DNN_ACT_RELU ? (dnn_v4)(pos & (dnn_v4i)ACT_ONE)
                                           : dnn_v4_select(pos, ACT_ONE, ACT_LEAK);
        dnn_v4_store(delta + i, dnn_v4_load(delta + i) * g);
    }
    return i;
}
#else
static size_t activate_lanes(float *x, size_t n, enum dnn_activation a)
{
    (void)x, (void)n, (void)a;
    return 0;
}

static size_t gradient_lanes(const float *y, size_t n, enum dnn_activation a, float *delta)
{
    (void)y, (void)n, (void)a, (void)delta;
    return 0;
}
#endif

void dnn_activate_array(float *x, size_t n, enum dnn_activation a)
{
    if (a == DNN_ACT_LINEAR)
        return;
    const size_t i0 = a == DNN_ACT_RELU || a == DNN_ACT_LEAKY ? activate_lanes(x, n, a) : 0;
    for (size_t i = i0; i < n; i++)
        x[i] = activate(x[i], a);
}

void dnn_gradient_array(const float *y, size_t n, enum dnn_activation a, float *delta)
{
    if (a == DNN_ACT_LINEAR)
        return; /* times 1 */
    const size_t i0 = a == DNN_ACT_RELU || a == DNN_ACT_LEAKY ? gradient_lanes(y, n, a, delta) : 0;
    for (size_t i = i0; i < n; i++)
        delta[i] *= gradient(y[i], a);
}

bool dnn_activation_keeps_input(enum dnn_activation a)
{
    return a == DNN_ACT_SWISH || a == DNN_ACT_MISH || a == DNN_ACT_HARD_MISH || a == DNN_ACT_GELU;
}

void dnn_activate_array_keep(float *x, size_t n, enum dnn_activation a, float *kept)
{
    if (kept && dnn_activation_keeps_input(a))
        dnn_copy(x, n, kept);
    dnn_activate_array(x, n, a);
}

void dnn_gradient_array_keep(const float *y, const float *x, size_t n, enum dnn_activation a,
                             float *delta)
{
    if (!dnn_activation_keeps_input(a)) {
        dnn_gradient_array(y, n, a, delta);
        return;
    }
    for (size_t i = 0; i < n; i++)
        delta[i] *= gradient_from_input(x[i], y[i], a);
}

/* ------------------------------------------------------ split among threads
 * Contiguous pieces of the array, one per task. Each element is computed alone, so the
 * pieces only decide who computes it: the bits are those of the serial loop. */

/* Elements a piece has at least: an activation costs a few ns an element, and waking a
 * thread some 10 us. */
#define ACT_PAR_MIN_ITEMS ((size_t)16384)

struct act_split {
    float *x;        /* (n) activated in place, or the delta multiplied by the gradient */
    const float *y;  /* (n) activated output, for gradients */
    const float *in; /* (n) kept input, for gradients (NULL when a keeps none) */
    float *kept;     /* (n) receives the input before activation, or NULL */
    enum dnn_activation a;
};

static void activate_range(void *arg, size_t i0, size_t i1)
{
    const struct act_split *s = arg;
    dnn_activate_array_keep(s->x + i0, i1 - i0, s->a, s->kept ? s->kept + i0 : NULL);
}

static void gradient_range(void *arg, size_t i0, size_t i1)
{
    const struct act_split *s = arg;
    dnn_gradient_array_keep(s->y + i0, s->in ? s->in + i0 : NULL, i1 - i0, s->a, s->x + i0);
}

void dnn_activate_array_keep_par(const struct dnn_parallel *par, float *x, size_t n,
                                 enum dnn_activation a, float *kept)
{
    if (a == DNN_ACT_LINEAR && !kept) /* the identity: nothing to hand out */
        return;
    struct act_split s = {.x = x, .kept = kept, .a = a};
    dnn_parallel_ranges(par, n, ACT_PAR_MIN_ITEMS, activate_range, &s);
}

void dnn_gradient_array_keep_par(const struct dnn_parallel *par, const float *y, const float *x,
                                 size_t n, enum dnn_activation a, float *delta)
{
    if (a == DNN_ACT_LINEAR) /* a gradient of 1: the delta stays */
        return;
    struct act_split s = {.x = delta, .y = y, .in = x, .a = a};
    dnn_parallel_ranges(par, n, ACT_PAR_MIN_ITEMS, gradient_range, &s);
}
