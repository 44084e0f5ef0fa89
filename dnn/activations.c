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
 */
#include "dnn/dnn_internal.h"

#include <string.h>

static const struct {
    const char *name;
    enum dnn_activation act;
} ACTIVATION_NAMES[] = {
    {"logistic", DNN_ACT_LOGISTIC}, {"relu", DNN_ACT_RELU},   {"relie", DNN_ACT_RELIE},
    {"linear", DNN_ACT_LINEAR},     {"ramp", DNN_ACT_RAMP},   {"tanh", DNN_ACT_TANH},
    {"plse", DNN_ACT_PLSE},         {"leaky", DNN_ACT_LEAKY}, {"elu", DNN_ACT_ELU},
    {"loggy", DNN_ACT_LOGGY},       {"stair", DNN_ACT_STAIR}, {"hardtan", DNN_ACT_HARDTAN},
    {"lhtan", DNN_ACT_LHTAN},       {"selu", DNN_ACT_SELU},
};

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
    default:
        break;
    }
    return 0;
}

void dnn_activate_array(float *x, size_t n, enum dnn_activation a)
{
    if (a == DNN_ACT_LINEAR)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = activate(x[i], a);
}

void dnn_gradient_array(const float *y, size_t n, enum dnn_activation a, float *delta)
{
    for (size_t i = 0; i < n; i++)
        delta[i] *= gradient(y[i], a);
}
