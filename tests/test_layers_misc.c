/*
 * test_layers_misc.c - the parameter-free layers and the activations.
 *
 * Backward passes are checked against finite differences (tests/helpers/gradcheck);
 * forward passes and costs against answers worked out by hand from darknet's
 * formulas. Networks are built only from the layers under test (a 1x1/1 maxpool is
 * an identity layer with its own delta), so a failure points here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn_internal.h"
#include "tests/helpers/gradcheck.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct dnn_layer_spec maxpool(int size, int stride, int pad)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_MAXPOOL, .size = size, .stride = stride, .pad = pad};
    return s;
}

/* A 1x1 stride-1 maxpool: output = input, with a delta of its own. */
static struct dnn_layer_spec identity(void)
{
    return maxpool(1, 1, 0);
}

static struct dnn_layer_spec avgpool(void)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_AVGPOOL};
    return s;
}

static struct dnn_layer_spec dropout(float p)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_DROPOUT, .probability = p};
    return s;
}

static struct dnn_layer_spec softmax(int groups, float temperature)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_SOFTMAX, .softmax_groups = groups, .temperature = temperature};
    return s;
}

static struct dnn_layer_spec cost(enum dnn_cost_type type, float scale)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_COST, .cost_type = type, .cost_scale = scale};
    return s;
}

static struct dnn_layer_spec shortcut(int from, float alpha, float beta, enum dnn_activation a)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_SHORTCUT, .from = from, .alpha = alpha, .beta = beta, .activation = a};
    return s;
}

static struct dnn_layer_spec route2(int a, int b)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_ROUTE, .n_route = 2, .route = {a, b}};
    return s;
}

static struct dnn_layer_spec route1(int a)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_ROUTE, .n_route = 1, .route = {a}};
    return s;
}

/* AlexeyAB's route groups: run group_id of groups equal runs of channels of each layer. */
static struct dnn_layer_spec route_part(int a, int b, int groups, int group_id)
{
    struct dnn_layer_spec s = route2(a, b);
    s.route_groups = groups;
    s.group_id = group_id;
    return s;
}

static double max_gradcheck_error;

static void expect_gradients(const char *what, int batch, int h, int w, int c,
                             const struct dnn_layer_spec *specs, size_t n, float step, double tol)
{
    struct dnn_net_config cfg = gradcheck_config(batch, h, w, c);
    struct gradcheck_result r = gradcheck_network(&cfg, specs, n, step, tol, 400);
    printf("  %-36s %4zu derivatives, max error %.2e\n", what, r.checked, r.max_error);
    if (r.max_error > max_gradcheck_error)
        max_gradcheck_error = r.max_error;
    assert_true(r.checked > 0);
    assert_int_equal(r.mismatches, 0);
}

/* ------------------------------------------------------------ gradient checks */

static void test_maxpool_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec s2[] = {maxpool(2, 2, 1)};
    expect_gradients("maxpool 2/2", 2, 6, 5, 2, s2, N_OF(s2), 1e-3f, 1e-3);
    const struct dnn_layer_spec s3[] = {maxpool(3, 1, 2)};
    expect_gradients("maxpool 3/1 pad 2 (overlapping)", 2, 5, 4, 2, s3, N_OF(s3), 1e-3f, 1e-3);
    const struct dnn_layer_spec s4[] = {maxpool(3, 2, 2), identity()};
    expect_gradients("maxpool 3/2 pad 2", 1, 7, 7, 1, s4, N_OF(s4), 1e-3f, 1e-3);
}

static void test_avgpool_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {avgpool()};
    expect_gradients("avgpool", 2, 3, 4, 3, s, N_OF(s), 1e-2f, 1e-3);
}

static void test_dropout_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {dropout(0.4f), identity()};
    expect_gradients("dropout p=0.4", 2, 3, 3, 2, s, N_OF(s), 1e-2f, 1e-3);
}

static void test_shortcut_gradients(void **state)
{
    (void)state;
    /* same shape, alpha/beta != 1, smooth activation */
    const struct dnn_layer_spec same[] = {identity(), identity(),
                                          shortcut(0, 0.5f, 0.7f, DNN_ACT_LOGISTIC)};
    expect_gradients("shortcut same shape", 2, 3, 3, 2, same, N_OF(same), 1e-2f, 1e-3);
    /* from has fewer channels: route [0,0] doubles them */
    const struct dnn_layer_spec fewer[] = {identity(), route2(0, 0),
                                           shortcut(0, 1.0f, 0.6f, DNN_ACT_LINEAR)};
    expect_gradients("shortcut from fewer channels", 2, 3, 3, 2, fewer, N_OF(fewer), 1e-2f, 1e-3);
    /* from has more channels */
    const struct dnn_layer_spec more[] = {identity(), route2(0, 0), identity(), route1(0),
                                          shortcut(2, 1.0f, 0.6f, DNN_ACT_TANH)};
    expect_gradients("shortcut from more channels", 2, 3, 3, 2, more, N_OF(more), 1e-2f, 1e-3);
    /* from is twice as large: subsampled with stride 2 */
    const struct dnn_layer_spec larger[] = {identity(), maxpool(2, 2, 1),
                                            shortcut(0, 1.0f, 0.5f, DNN_ACT_LINEAR)};
    expect_gradients("shortcut from a larger layer", 1, 4, 4, 2, larger, N_OF(larger), 1e-3f, 1e-3);
    /* from is half as large: spread over every second position */
    const struct dnn_layer_spec smaller[] = {identity(), maxpool(2, 2, 1), identity(), route1(0),
                                             shortcut(2, 1.0f, 0.5f, DNN_ACT_LINEAR)};
    expect_gradients("shortcut from a smaller layer", 1, 4, 4, 2, smaller, N_OF(smaller), 1e-3f,
                     1e-3);
}

static void test_route_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {identity(), maxpool(3, 1, 2), route2(0, 1),
                                       maxpool(2, 2, 1)};
    expect_gradients("route of two layers", 2, 4, 4, 2, s, N_OF(s), 1e-3f, 1e-3);
    const struct dnn_layer_spec r1[] = {identity(), avgpool(), route2(1, 1)};
    expect_gradients("route of one layer twice", 2, 3, 3, 2, r1, N_OF(r1), 1e-2f, 1e-3);
    /* groups: the second half of each layer's channels; the first half gets no delta */
    const struct dnn_layer_spec g[] = {identity(), maxpool(3, 1, 2), route_part(0, 1, 2, 1),
                                       maxpool(2, 2, 1)};
    expect_gradients("route groups=2 group_id=1", 2, 4, 4, 4, g, N_OF(g), 1e-3f, 1e-3);
    const struct dnn_layer_spec g0[] = {identity(), route_part(0, 0, 2, 0), identity()};
    expect_gradients("route groups=2 group_id=0", 2, 3, 3, 2, g0, N_OF(g0), 1e-3f, 1e-3);
}

/*
 * darknet's softmax backward passes the cross-entropy delta (truth - p) straight
 * through, so it is checked against the cross-entropy L = -sum t log p rather than
 * the generic objective. For temperature T, p = softmax(x / T) and -dL/dx = (t - p)/T:
 * darknet's delta is the gradient with respect to x/T, so it equals T * (-dL/dx).
 */
static double xent(struct dnn_network *net, const float *x, const float *t, size_t n)
{
    dnn_network_forward(net, x, t, true);
    double loss = 0;
    for (size_t i = 0; i < n; i++)
        loss -= t[i] ? t[i] * log((double)net->layers[0].output[i]) : 0;
    return loss;
}

static void softmax_xent_check(int groups, float temperature)
{
    enum { BATCH = 2, INPUTS = 6 };
    struct dnn_net_config cfg = gradcheck_config(BATCH, 1, 1, INPUTS);
    const struct dnn_layer_spec s[] = {softmax(groups, temperature)};
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, s, 1, true, 1), DNN_OK);
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 5);
    float x[BATCH * INPUTS], t[BATCH * INPUTS], dx[BATCH * INPUTS] = {0};
    const int gs = INPUTS / groups;
    for (int i = 0; i < BATCH * INPUTS; i++)
        x[i] = dnn_rng_uniform(&rng, -2, 2);
    /* a soft target per group: weights that sum to one */
    for (int g = 0; g < BATCH * groups; g++) {
        float sum = 0;
        for (int i = 0; i < gs; i++)
            sum += t[g * gs + i] = dnn_rng_uniform(&rng, 0, 1);
        for (int i = 0; i < gs; i++)
            t[g * gs + i] /= sum;
    }
    xent(net, x, t, BATCH * INPUTS);
    dnn_network_backward_range(net, 0, 0, x, dx);
    const float h = 1e-3f;
    double max_err = 0;
    for (int i = 0; i < BATCH * INPUTS; i++) {
        const float keep = x[i];
        x[i] = keep + h;
        const double lp = xent(net, x, t, BATCH * INPUTS);
        x[i] = keep - h;
        const double lm = xent(net, x, t, BATCH * INPUTS);
        x[i] = keep;
        const double numeric = -temperature * (lp - lm) / (2.0 * (double)h);
        const double err = fabs(dx[i] - numeric) / fmax(1.0, fabs(numeric));
        if (err > max_err)
            max_err = err;
    }
    printf("  softmax x-ent groups %d temperature %g  %4d derivatives, max error %.2e\n", groups,
           (double)temperature, BATCH * INPUTS, max_err);
    if (max_err > max_gradcheck_error)
        max_gradcheck_error = max_err;
    assert_true(max_err < 1e-3);
    dnn_network_free(net);
}

static void test_softmax_gradients(void **state)
{
    (void)state;
    softmax_xent_check(1, 1.0f);
    softmax_xent_check(2, 1.0f);
    softmax_xent_check(2, 2.0f);
    softmax_xent_check(1, 2.0f);
}

/* relu and leaky over arrays (four lanes at a time, then a tail) give the bits of one value
 * at a time (the scalar expressions): -0, NaN, infinities, subnormals, values whose product
 * by 0.1 rounds differently in float and in double. */
static void test_activation_lanes_match_scalar(void **state)
{
    (void)state;
    const float special[] = {0.0f,    -0.0f,    NAN,    -NAN,     INFINITY,  -INFINITY,
                             FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f,  FLT_MAX,   -FLT_MAX,
                             -3.0f,   3.0f,     -0.3f,  1.0f / 3, -7.77e-3f, -123456.7f};
    enum { N = 4 * 9 + 3 };
    float x[N], y[N], d[N];
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        x[i] = i < (int)N_OF(special) ? special[i] : dnn_rng_uniform(&rng, -5, 5);
        d[i] = dnn_rng_uniform(&rng, -2, 2);
    }
    const enum dnn_activation acts[] = {DNN_ACT_RELU, DNN_ACT_LEAKY};
    for (size_t k = 0; k < N_OF(acts); k++) {
        /* shifted starts: every value meets every lane and the tail */
        for (int shift = 0; shift < 4; shift++) {
            float all[N], one[N], g_all[N], g_one[N];
            memcpy(all, x, sizeof x);
            memcpy(one, x, sizeof x);
            dnn_activate_array(all + shift, (size_t)(N - shift), acts[k]);
            for (int i = shift; i < N; i++)
                dnn_activate_array(&one[i], 1, acts[k]);
            assert_memory_equal(all, one, sizeof all);
            memcpy(y, one, sizeof y);
            memcpy(g_all, d, sizeof d);
            memcpy(g_one, d, sizeof d);
            dnn_gradient_array(y + shift, (size_t)(N - shift), acts[k], g_all + shift);
            for (int i = shift; i < N; i++)
                dnn_gradient_array(&y[i], 1, acts[k], &g_one[i]);
            assert_memory_equal(g_all, g_one, sizeof g_all);
        }
    }
    /* and the values themselves, for the cases the lanes must not get wrong */
    float v[4] = {-0.0f, -2.0f, 2.0f, NAN};
    dnn_activate_array(v, 4, DNN_ACT_RELU);
    assert_true(v[0] == 0 && signbit(v[0]));
    assert_true(v[1] == 0 && signbit(v[1])); /* -2 * 0 = -0, as darknet */
    assert_true(v[2] == 2.0f);
    assert_true(isnan(v[3]));
    float w[4] = {-2.0f, 2.0f, -0.0f, -10.0f};
    dnn_activate_array(w, 4, DNN_ACT_LEAKY);
    assert_true(w[0] == (float)(0.1 * -2.0));
    assert_true(w[1] == 2.0f);
    assert_true(w[2] == 0 && signbit(w[2]));
    assert_true(w[3] == (float)(0.1 * -10.0));
}

/* Every activation's gradient (from its output) against finite differences of it. */
static float act1(float x, enum dnn_activation a)
{
    dnn_activate_array(&x, 1, a);
    return x;
}

static bool near_kink(double x, double h)
{
    static const double kinks[] = {0, 1, -1, 4, -4, 6, -2};
    for (size_t k = 0; k < N_OF(kinks); k++) {
        if (fabs(x - kinks[k]) < 4 * h)
            return true;
    }
    return fabs(x - floor(x + 0.5)) < 4 * h; /* stair steps at integers */
}

static void test_activation_gradients(void **state)
{
    (void)state;
    const float h = 1e-3f;
    double max_err = 0;
    for (int a = 0; a < DNN_ACT_COUNT; a++) {
        const enum dnn_activation act = (enum dnn_activation)a;
        double act_max = 0;
        for (int i = 0; i <= 2000; i++) {
            const float x = -8.0f + 16.0f * (float)i / 2000.0f + 1.234e-4f;
            if (near_kink(x, h))
                continue;
            const float y = act1(x, act);
            float g = 1.0f;
            /* x is read only by the activations that keep their input */
            dnn_gradient_array_keep(&y, &x, 1, act, &g);
            const double numeric =
                ((double)act1(x + h, act) - (double)act1(x - h, act)) / (double)(2 * h);
            const double err = fabs(g - numeric) / fmax(1.0, fabs(numeric));
            if (err > act_max)
                act_max = err;
        }
        printf("  activation %-9s gradient vs finite differences: max error %.2e\n",
               dnn_activation_name(act), act_max);
        assert_true(act_max < 2e-3);
        if (act_max > max_err)
            max_err = act_max;
    }
    if (max_err > max_gradcheck_error)
        max_gradcheck_error = max_err;
}

/* ----------------------------------------------------------- known answers */

static void test_activation_names(void **state)
{
    (void)state;
    static const char *names[] = {"logistic", "relu",    "relie",     "linear", "ramp",
                                  "tanh",     "plse",    "leaky",     "elu",    "loggy",
                                  "stair",    "hardtan", "lhtan",     "selu",   "relu6",
                                  "swish",    "mish",    "hard_mish", "gelu"};
    assert_int_equal(N_OF(names), DNN_ACT_COUNT);
    for (size_t i = 0; i < N_OF(names); i++) {
        enum dnn_activation a = DNN_ACT_LINEAR;
        assert_true(dnn_activation_from_name(names[i], &a));
        assert_string_equal(dnn_activation_name(a), names[i]);
    }
    enum dnn_activation a = DNN_ACT_LEAKY;
    assert_false(dnn_activation_from_name("normalize_channels", &a));
    assert_false(dnn_activation_from_name("", &a));
    assert_false(dnn_activation_from_name("Relu", &a));
    assert_int_equal(a, DNN_ACT_LEAKY);
}

/* AlexeyAB's float formulas, computed with libm in double as the reference. */
static void expect_close(float got, double want, double tol, const char *what)
{
    const double err = fabs((double)got - want) / fmax(1e-30, fabs(want));
    if (!(err < tol))
        fail_msg("%s: %.9g, expected %.9g (relative error %.2e)", what, (double)got, want, err);
}

static void test_alexeyab_activation_values(void **state)
{
    (void)state;
    static const float xs[] = {-25.0f, -7.5f, -2.5f, -1.0f, -0.3f, 0.1f, 0.7f, 2.0f, 5.5f, 30.0f};
    for (size_t i = 0; i < N_OF(xs); i++) {
        const double x = xs[i];
        const double sig = 1.0 / (1.0 + exp(-x));
        const double sp = x > 20 ? x : (x < -20 ? exp(x) : log1p(exp(x)));
        expect_close(act1(xs[i], DNN_ACT_SWISH), x * sig, 4e-7, "swish");
        /* mish as AlexeyAB computes it in float: tanh_activate is 2 / (1 + e^-2s) - 1,
         * which cancels to 0 for tiny s (x < -17): compare with that, not tanh */
        const float spf = xs[i] > 20 ? xs[i] : (xs[i] < -20 ? expf(xs[i]) : logf(expf(xs[i]) + 1));
        const double mish = (double)(xs[i] * (2.0f / (1.0f + expf(-2.0f * spf)) - 1.0f));
        const float got = act1(xs[i], DNN_ACT_MISH);
        if (!(fabs((double)got - mish) <= 1e-6 * fmax(1e-3, fabs(mish))))
            fail_msg("mish(%g) = %.9g, AlexeyAB's float formula %.9g", x, (double)got, mish);
        const double u = 0.797885 * x + 0.035677 * x * x * x;
        if (fabs(x) < 20)
            expect_close(act1(xs[i], DNN_ACT_GELU), 0.5 * x * (1 + tanh(u)), 1e-4, "gelu");
        /* gradients at the input, from the kept x */
        float y = act1(xs[i], DNN_ACT_MISH), g = 1;
        dnn_gradient_array_keep(&y, &xs[i], 1, DNN_ACT_MISH, &g);
        const double t = tanh(sp);
        if (fabs(x) < 20)
            /* AlexeyAB's softplus in float, log(e^x + 1), loses digits for x << 0 */
            expect_close(g, t + x * (1 - t * t) * sig, 2e-4, "mish gradient");
        y = act1(xs[i], DNN_ACT_SWISH);
        g = 1;
        dnn_gradient_array_keep(&y, &xs[i], 1, DNN_ACT_SWISH, &g);
        if (fabs(x) < 20)
            expect_close(g, sig + x * sig * (1 - sig), 1e-5, "swish gradient");
    }
    /* mish at darknet's softplus threshold: x * tanh(x) above 20 (tanh = 1 in float) */
    assert_true(act1(30.0f, DNN_ACT_MISH) == 30.0f);
    assert_true(act1(-30.0f, DNN_ACT_MISH) == 0.0f);
    assert_true(act1(-3.0f, DNN_ACT_RELU6) == 0.0f && act1(3.5f, DNN_ACT_RELU6) == 3.5f &&
                act1(7.0f, DNN_ACT_RELU6) == 6.0f);
    assert_true(act1(-3.0f, DNN_ACT_HARD_MISH) == 0.0f && act1(2.5f, DNN_ACT_HARD_MISH) == 2.5f &&
                act1(-1.0f, DNN_ACT_HARD_MISH) == -0.5f);
    /* relu6's gradient comes from the output, as darknet's */
    const float ys[] = {0.0f, 3.0f, 6.0f};
    float gs[] = {1, 1, 1};
    dnn_gradient_array(ys, 3, DNN_ACT_RELU6, gs);
    assert_true(gs[0] == 0.0f && gs[1] == 1.0f && gs[2] == 0.0f);
    assert_false(dnn_activation_keeps_input(DNN_ACT_RELU6));
    assert_true(
        dnn_activation_keeps_input(DNN_ACT_MISH) && dnn_activation_keeps_input(DNN_ACT_SWISH) &&
        dnn_activation_keeps_input(DNN_ACT_HARD_MISH) && dnn_activation_keeps_input(DNN_ACT_GELU));
    /* keep copies the input before activating, and only for those */
    float v[2] = {-1.0f, 2.0f}, kept[2] = {9, 9};
    dnn_activate_array_keep(v, 2, DNN_ACT_RELU6, kept);
    assert_true(kept[0] == 9 && kept[1] == 9);
    dnn_activate_array_keep(v, 2, DNN_ACT_MISH, kept);
    assert_true(kept[0] == 0.0f && kept[1] == 2.0f);
}

static struct dnn_layer_spec connected_act(int outputs, enum dnn_activation a)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_CONNECTED, .outputs = outputs, .activation = a};
    return s;
}

static struct dnn_layer_spec conv_act(int filters, int size, enum dnn_activation a, bool bn)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_CONVOLUTIONAL,
                               .filters = filters,
                               .size = size,
                               .stride = 1,
                               .pad = size / 2,
                               .groups = 1,
                               .batch_normalize = bn,
                               .activation = a};
    return s;
}

/* The layers keep the pre-activation values in act_input; the whole backward
 * pass through them, parameters included, against finite differences. */
static void test_kept_input_activation_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec mish[] = {conv_act(3, 3, DNN_ACT_MISH, false),
                                          connected_act(4, DNN_ACT_MISH)};
    expect_gradients("conv + connected, mish", 2, 4, 4, 2, mish, N_OF(mish), 1e-2f, 2e-3);
    const struct dnn_layer_spec swish[] = {conv_act(3, 3, DNN_ACT_SWISH, true),
                                           connected_act(3, DNN_ACT_SWISH)};
    expect_gradients("conv bn + connected, swish", 2, 4, 4, 2, swish, N_OF(swish), 1e-2f, 2e-3);
    const struct dnn_layer_spec gelu[] = {conv_act(2, 1, DNN_ACT_GELU, false), identity(),
                                          shortcut(0, 0.5f, 0.7f, DNN_ACT_GELU)};
    expect_gradients("conv + shortcut, gelu", 2, 3, 3, 2, gelu, N_OF(gelu), 1e-2f, 2e-3);
    const struct dnn_layer_spec hm[] = {connected_act(5, DNN_ACT_HARD_MISH),
                                        connected_act(3, DNN_ACT_RELU6)};
    expect_gradients("connected, hard_mish + relu6", 2, 3, 3, 2, hm, N_OF(hm), 1e-3f, 2e-3);

    /* act_input exists only where needed, and only to train */
    struct dnn_net_config cfg = gradcheck_config(2, 4, 4, 2);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, mish, N_OF(mish), true, 1), DNN_OK);
    assert_non_null(net->layers[0].act_input);
    dnn_network_free(net);
    net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, mish, N_OF(mish), false, 1), DNN_OK);
    assert_null(net->layers[0].act_input);
    dnn_network_free(net);
}

static void test_activation_values(void **state)
{
    (void)state;
    /* darknet forms the products with double constants, then rounds to float */
    assert_true(act1(-2.0f, DNN_ACT_LEAKY) == (float)(0.1 * -2.0));
    assert_true(act1(3.0f, DNN_ACT_LEAKY) == 3.0f);
    assert_true(act1(-1.0f, DNN_ACT_RELIE) == (float)-0.01);
    assert_true(act1(-1.0f, DNN_ACT_RAMP) == (float)-0.1 && act1(2.0f, DNN_ACT_RAMP) == 2.2f);
    assert_true(act1(-3.0f, DNN_ACT_RELU) == 0.0f && act1(3.0f, DNN_ACT_RELU) == 3.0f);
    assert_true(act1(0.0f, DNN_ACT_LOGISTIC) == 0.5f);
    assert_true(act1(2.0f, DNN_ACT_LOGISTIC) == (float)(1.0 / (1.0 + exp(-2.0))));
    assert_true(act1(2.0f, DNN_ACT_LOGGY) == (float)(2.0 / (1.0 + exp(-2.0)) - 1.0));
    assert_true(act1(-1.0f, DNN_ACT_ELU) == (float)(exp(-1.0) - 1.0));
    assert_true(act1(1.0f, DNN_ACT_SELU) == (float)1.0507);
    assert_true(act1(-1.0f, DNN_ACT_SELU) == (float)(1.0507 * 1.6732 * (exp(-1.0) - 1.0)));
    assert_true(act1(0.5f, DNN_ACT_TANH) == (float)tanh(0.5));
    assert_true(act1(5.0f, DNN_ACT_PLSE) == (float)(0.01 * 1.0 + 1.0));
    assert_true(act1(-5.0f, DNN_ACT_PLSE) == (float)(0.01 * -1.0));
    assert_true(act1(0.0f, DNN_ACT_PLSE) == 0.5f && act1(2.0f, DNN_ACT_PLSE) == 0.75f);
    assert_true(act1(2.0f, DNN_ACT_LHTAN) == (float)(0.001 * 1.0 + 1.0));
    assert_true(act1(-1.0f, DNN_ACT_LHTAN) == (float)-0.001 && act1(0.5f, DNN_ACT_LHTAN) == 0.5f);
    assert_true(act1(3.0f, DNN_ACT_HARDTAN) == 1.0f && act1(-3.0f, DNN_ACT_HARDTAN) == -1.0f);
    assert_true(act1(0.25f, DNN_ACT_HARDTAN) == 0.25f && act1(7.5f, DNN_ACT_LINEAR) == 7.5f);
    /* stair: floor(x/2) on even floors, fraction + floor(x/2) on odd ones */
    assert_true(act1(2.5f, DNN_ACT_STAIR) == 1.0f);
    assert_true(act1(3.5f, DNN_ACT_STAIR) == 1.5f);
    assert_true(act1(-0.5f, DNN_ACT_STAIR) == -0.5f);
    assert_true(act1(-1.5f, DNN_ACT_STAIR) == -1.0f);
    assert_true(act1(-2.25f, DNN_ACT_STAIR) == -1.25f); /* 0.75 + floor(-1.125) */
    assert_true(act1(1e9f, DNN_ACT_STAIR) == 5e8f);
    /* gradients from outputs: darknet's constants */
    float y[] = {-0.3f, 0.2f, 1.5f};
    float d[] = {1, 1, 1};
    dnn_gradient_array(y, 3, DNN_ACT_LEAKY, d);
    assert_true(d[0] == (float)0.1 && d[1] == 1.0f && d[2] == 1.0f);
    float d2[] = {2, 2, 2};
    dnn_gradient_array(y, 3, DNN_ACT_PLSE, d2);
    assert_true(d2[0] == 2 * (float)0.01 && d2[1] == 2 * 0.125f && d2[2] == 2 * (float)0.01);
    float d3[] = {1, 1, 1};
    dnn_gradient_array(y, 3, DNN_ACT_SELU, d3);
    assert_true(d3[0] == (float)(-0.3f + 1.0507 * 1.6732) && d3[1] == (float)1.0507);
    float ys[] = {1.0f, 1.5f, -2.0f};
    float d4[] = {1, 1, 1};
    dnn_gradient_array(ys, 3, DNN_ACT_STAIR, d4);
    assert_true(d4[0] == 0 && d4[1] == 1 && d4[2] == 0);
}

static struct dnn_network *make_net(int batch, int h, int w, int c,
                                    const struct dnn_layer_spec *specs, size_t n, bool training)
{
    struct dnn_net_config cfg = gradcheck_config(batch, h, w, c);
    struct dnn_network *net = NULL;
    assert_int_equal(dnn_network_create(&net, &cfg, specs, n, training, 3), DNN_OK);
    return net;
}

/* ------------------------------------------- crop, reorg, scale_channels, upsample */

static struct dnn_layer_spec reorg(int stride, bool reverse, bool reorg3d, int extra)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_REORG,
                               .stride = stride,
                               .reverse = reverse,
                               .reorg3d = reorg3d,
                               .extra = extra};
    return s;
}

static struct dnn_layer_spec scale_channels(int from, bool scale_wh, enum dnn_activation a)
{
    struct dnn_layer_spec s = {
        .kind = DNN_LAYER_SCALE_CHANNELS, .from = from, .scale_wh = scale_wh, .activation = a};
    return s;
}

static struct dnn_layer_spec upsample(int stride, float scale)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_UPSAMPLE, .stride = stride, .scale = scale};
    return s;
}

static void test_new_kind_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec r1[] = {reorg(2, false, false, 0), identity()};
    expect_gradients("reorg /2 (both trees)", 2, 4, 4, 4, r1, N_OF(r1), 1e-2f, 1e-3);
    const struct dnn_layer_spec r2[] = {reorg(2, true, false, 0), identity()};
    expect_gradients("reorg /2 reverse", 2, 2, 2, 8, r2, N_OF(r2), 1e-2f, 1e-3);
    const struct dnn_layer_spec r3[] = {reorg(2, false, true, 0), identity()};
    expect_gradients("reorg3d /2", 2, 4, 6, 2, r3, N_OF(r3), 1e-2f, 1e-3);
    const struct dnn_layer_spec r4[] = {reorg(2, true, true, 0), identity()};
    expect_gradients("reorg3d /2 reverse", 1, 2, 2, 16, r4, N_OF(r4), 1e-2f, 1e-3);
    const struct dnn_layer_spec r5[] = {reorg(1, false, false, 1), identity()};
    expect_gradients("reorg extra=1 (Go)", 2, 3, 3, 1, r5, N_OF(r5), 1e-2f, 1e-3);

    /* squeeze-excitation: layer 0 (W, H, C), avgpool to (1, 1, C), scale layer 0 by it */
    const struct dnn_layer_spec se[] = {identity(), avgpool(),
                                        scale_channels(0, false, DNN_ACT_LOGISTIC)};
    expect_gradients("scale_channels", 2, 3, 4, 3, se, N_OF(se), 1e-2f, 1e-3);
    /* scale_wh: a one-channel (W, H, 1) map scales every channel of layer 0 */
    const struct dnn_layer_spec wh[] = {identity(), conv_act(1, 1, DNN_ACT_LINEAR, false),
                                        scale_channels(0, true, DNN_ACT_LINEAR)};
    expect_gradients("scale_channels scale_wh", 2, 3, 3, 2, wh, N_OF(wh), 1e-2f, 1e-3);

    const struct dnn_layer_spec u1[] = {upsample(2, 1), identity()};
    expect_gradients("upsample x2", 2, 3, 2, 2, u1, N_OF(u1), 1e-2f, 1e-3);
    const struct dnn_layer_spec u2[] = {upsample(3, 0.5f), identity()};
    expect_gradients("upsample x3 scale .5", 1, 2, 2, 2, u2, N_OF(u2), 1e-2f, 1e-3);
    const struct dnn_layer_spec u3[] = {upsample(-2, 0.25f), identity()};
    expect_gradients("downsample /2 scale .25", 2, 4, 6, 2, u3, N_OF(u3), 1e-2f, 1e-3);

    const struct dnn_layer_spec a1[] = {
        {.kind = DNN_LAYER_ACTIVATION, .activation = DNN_ACT_LOGISTIC}, identity()};
    expect_gradients("[activation] logistic", 2, 3, 3, 2, a1, N_OF(a1), 1e-2f, 1e-3);
    const struct dnn_layer_spec a2[] = {{.kind = DNN_LAYER_ACTIVATION, .activation = DNN_ACT_MISH},
                                        identity()};
    expect_gradients("[activation] mish", 2, 3, 3, 2, a2, N_OF(a2), 1e-2f, 1e-3);
}

/* Forward of a one-layer network on x (inference unless train); returns its output. */
static const float *run_one(struct dnn_network *net, const float *x, bool train)
{
    dnn_network_forward(net, x, NULL, train);
    return net->layers[net->n - 1].output;
}

static void test_reorg_known_answers(void **state)
{
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i;
    /* reorg3d /2 on (w 4, h 4, c 1): channel k of (i, j) is the input at (2i + k%2, 2j + k/2) */
    const struct dnn_layer_spec r3[] = {reorg(2, false, true, 0)};
    struct dnn_network *net = make_net(1, 4, 4, 1, r3, 1, false);
    assert_int_equal(net->layers[0].out_c, 4);
    const float *y = run_one(net, x, false);
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 2; i++)
                assert_true(y[i + 2 * (j + 2 * k)] == x[(2 * i + k % 2) + 4 * (2 * j + k / 2)]);
    dnn_network_free(net);

    /* [reorg] /2 on (4, 4, 4) reads the input as if it were (8, 8, 1): element
     * (i, j, k) of the input's shape takes x at (2i + k%2, 2j + k/2) of an 8-wide plane
     * (darknet's reorg_cpu given the input shape); the output is declared (2, 2, 16). */
    const struct dnn_layer_spec r1[] = {reorg(2, false, false, 0)};
    net = make_net(1, 4, 4, 4, r1, 1, false);
    assert_int_equal(net->layers[0].out_w, 2);
    assert_int_equal(net->layers[0].out_c, 16);
    y = run_one(net, x, false);
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 4; i++)
                assert_true(y[i + 4 * (j + 4 * k)] == x[(2 * i + k % 2) + 8 * (2 * j + k / 2)]);
    dnn_network_free(net);

    /* extra=2: (1, 1, inputs + 2), the input then zeros */
    const struct dnn_layer_spec r5[] = {reorg(1, false, false, 2)};
    net = make_net(1, 3, 3, 1, r5, 1, false);
    assert_int_equal(net->layers[0].out_c, 11);
    y = run_one(net, x, false);
    for (int i = 0; i < 9; i++)
        assert_true(y[i] == x[i]);
    assert_true(y[9] == 0 && y[10] == 0);
    dnn_network_free(net);
}

static void test_crop_behaviour(void **state)
{
    (void)state;
    float x[2 * 5 * 6 * 2];
    for (size_t i = 0; i < N_OF(x); i++)
        x[i] = (float)i / 100.0f;
    /* inference: the centred 3 x 4 window of each 5 x 6 plane, as 2x - 1 */
    struct dnn_layer_spec c = {.kind = DNN_LAYER_CROP, .crop_height = 3, .crop_width = 4};
    struct dnn_network *net = make_net(2, 5, 6, 2, &c, 1, true);
    const float *y = run_one(net, x, false);
    for (int p = 0; p < 4; p++) /* batch * channels planes */
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_true(y[(p * 3 + i) * 4 + j] == x[p * 30 + (i + 1) * 6 + (j + 1)] * 2 - 1);
    dnn_network_free(net);

    /* training with flip and noadjust: every window fits and is one offset for the batch;
     * over many passes both mirror states and several offsets appear */
    c.flip = true;
    c.noadjust = true;
    net = make_net(2, 5, 6, 2, &c, 1, true);
    bool seen_flip = false, seen_plain = false;
    int seen_offsets = 0;
    for (int pass = 0; pass < 64; pass++) {
        y = run_one(net, x, true);
        /* find (dh, dw, flip) from the first value of plane 0, then check everything */
        bool found = false;
        for (int dh = 0; dh <= 2 && !found; dh++) {
            for (int dw = 0; dw <= 2 && !found; dw++) {
                for (int f = 0; f < 2 && !found; f++) {
                    bool all = true;
                    for (int p = 0; p < 4 && all; p++)
                        for (int i = 0; i < 3 && all; i++)
                            for (int j = 0; j < 4 && all; j++) {
                                const int col = f ? 6 - dw - j - 1 : j + dw;
                                all = y[(p * 3 + i) * 4 + j] == x[p * 30 + (i + dh) * 6 + col];
                            }
                    if (all) {
                        found = true;
                        seen_flip |= f == 1;
                        seen_plain |= f == 0;
                        seen_offsets |= 1 << (dh * 3 + dw);
                    }
                }
            }
        }
        assert_true(found);
    }
    assert_true(seen_flip && seen_plain);
    assert_true(__builtin_popcount((unsigned)seen_offsets) > 3);
    dnn_network_free(net);

    /* darknet's crop passes no delta back: a convolution before it never changes */
    const struct dnn_layer_spec cc[] = {
        conv_act(2, 1, DNN_ACT_LINEAR, false),
        {.kind = DNN_LAYER_CROP, .crop_height = 3, .crop_width = 4},
        {.kind = DNN_LAYER_COST, .cost_type = DNN_COST_SSE, .cost_scale = 1}};
    net = make_net(2, 5, 6, 2, cc, N_OF(cc), true);
    float before[4];
    memcpy(before, net->layers[0].weights, sizeof(before));
    float truth[2 * 24];
    for (size_t i = 0; i < N_OF(truth); i++)
        truth[i] = 1;
    for (int step = 0; step < 3; step++)
        (void)dnn_network_train_batch(net, x, truth);
    for (int i = 0; i < 4; i++)
        assert_true(net->layers[0].weights[i] == before[i]);
    dnn_network_free(net);
}

static struct dnn_layer_spec local(int filters, int size, int stride, int pad,
                                   enum dnn_activation a)
{
    struct dnn_layer_spec s = {.kind = DNN_LAYER_LOCAL,
                               .filters = filters,
                               .size = size,
                               .stride = stride,
                               .pad = pad,
                               .activation = a};
    return s;
}

static void test_local_and_sam_gradients(void **state)
{
    (void)state;
    const struct dnn_layer_spec l1[] = {local(3, 3, 1, 1, DNN_ACT_LOGISTIC)};
    expect_gradients("local 3x3/1 pad 1", 2, 4, 5, 2, l1, N_OF(l1), 1e-2f, 1e-3);
    const struct dnn_layer_spec l2[] = {local(2, 2, 2, 0, DNN_ACT_LINEAR), identity()};
    expect_gradients("local 2x2/2", 2, 4, 6, 3, l2, N_OF(l2), 1e-2f, 1e-3);
    const struct dnn_layer_spec l3[] = {local(2, 3, 2, 1, DNN_ACT_MISH)};
    expect_gradients("local 3x3/2 pad 1 mish", 1, 5, 5, 2, l3, N_OF(l3), 1e-2f, 1e-3);

    const struct dnn_layer_spec sam[] = {
        identity(),
        conv_act(2, 1, DNN_ACT_LINEAR, false),
        {.kind = DNN_LAYER_SAM, .from = 0, .activation = DNN_ACT_LOGISTIC}};
    expect_gradients("sam", 2, 3, 3, 2, sam, N_OF(sam), 1e-2f, 1e-3);
}

static void test_local_setup_and_known_answer(void **state)
{
    (void)state;
    /* darknet's shapes: (h - 1) / stride + 1 with pad, (h - size) / stride + 1 without;
     * a pad im2col would disagree with (size 5, pad 1) is refused */
    const struct dnn_layer_spec ok[] = {local(2, 3, 1, 1, DNN_ACT_LINEAR)};
    struct dnn_network *net = make_net(1, 4, 4, 1, ok, 1, false);
    assert_int_equal(net->layers[0].out_h, 4);
    assert_int_equal(net->layers[0].nweights, (size_t)2 * 9 * 16);
    assert_int_equal(net->layers[0].nbiases, (size_t)2 * 16);
    /* each location its own filter: weights of location j = j + 1 at the centre tap only,
     * so out(f, j) = (j + 1) * in(j) + bias(f, j) */
    dnn_fill(net->layers[0].weights, net->layers[0].nweights, 0);
    for (int j = 0; j < 16; j++)
        for (int f = 0; f < 2; f++) {
            net->layers[0].weights[(size_t)j * 18 + (size_t)f * 9 + 4] = (float)(j + 1);
            net->layers[0].biases[f * 16 + j] = (float)f;
        }
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    const float *y = dnn_network_predict(net, x);
    for (int f = 0; f < 2; f++)
        for (int j = 0; j < 16; j++)
            assert_true(y[f * 16 + j] == (float)((j + 1) * j + f));
    dnn_network_free(net);

    struct dnn_net_config cfg = gradcheck_config(1, 6, 6, 1);
    const struct dnn_layer_spec bad[] = {local(2, 5, 1, 1, DNN_ACT_LINEAR)};
    assert_int_equal(dnn_network_create(&net, &cfg, bad, 1, false, 1), DNN_ERR_SHAPE);
    assert_null(net);
}

static void test_normalization_and_l2norm(void **state)
{
    (void)state;
    /* LRN with darknet's running window, c = 3, size 3: channel 0 sums {0}, channel 1
     * adds 2 ({0, 2}), channel 2 drops 0 ({2}) */
    struct dnn_layer_spec lrn = {
        .kind = DNN_LAYER_NORMALIZATION, .size = 3, .alpha = 1, .beta = 1, .kappa = 1};
    struct dnn_network *net = make_net(1, 1, 1, 3, &lrn, 1, true);
    const float x[3] = {1, 2, 3};
    dnn_network_forward(net, x, NULL, true);
    const float *y = net->layers[0].output;
    assert_float_equal(y[0], 1.0f / 2, 1e-6);
    assert_float_equal(y[1], 2.0f / 11, 1e-6);
    assert_float_equal(y[2], 3.0f / 10, 1e-6);
    /* darknet's approximate backward: delta * norm^-beta */
    float dx[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        net->layers[0].delta[i] = 1;
    dnn_network_backward_range(net, 0, 0, x, dx);
    assert_float_equal(dx[0], 1.0f / 2, 1e-6);
    assert_float_equal(dx[1], 1.0f / 11, 1e-6);
    assert_float_equal(dx[2], 1.0f / 10, 1e-6);
    dnn_network_free(net);

    /* l2norm: each position's channel vector to unit length; delta passes unchanged */
    struct dnn_layer_spec l2 = {.kind = DNN_LAYER_L2NORM};
    net = make_net(1, 1, 2, 2, &l2, 1, true);
    const float v[4] = {3, 0, 4, -2}; /* position 0: (3, 4), position 1: (0, -2) */
    dnn_network_forward(net, v, NULL, true);
    y = net->layers[0].output;
    assert_float_equal(y[0], 0.6f, 1e-6);
    assert_float_equal(y[2], 0.8f, 1e-6);
    assert_float_equal(y[1], 0.0f, 1e-6);
    assert_float_equal(y[3], -1.0f, 1e-6);
    float d4[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        net->layers[0].delta[i] = (float)(i + 1);
    dnn_network_backward_range(net, 0, 0, v, d4);
    for (int i = 0; i < 4; i++)
        assert_true(d4[i] == (float)(i + 1));
    dnn_network_free(net);
}

static void test_maxpool_known_answer(void **state)
{
    (void)state;
    /* 4x4, values 0..15 in a scrambled order */
    const float in[16] = {3, 9, 1, 14, 7, 0, 12, 5, 15, 2, 8, 11, 4, 13, 6, 10};
    const struct dnn_layer_spec s[] = {maxpool(2, 2, 1)};
    struct dnn_network *net = make_net(1, 4, 4, 1, s, 1, true);
    struct dnn_layer *l = &net->layers[0];
    assert_int_equal(l->out_h, 2);
    assert_int_equal(l->out_w, 2);
    dnn_network_forward(net, in, NULL, true);
    const float want[4] = {9, 14, 15, 11};
    const int want_idx[4] = {1, 3, 8, 11};
    for (int i = 0; i < 4; i++) {
        assert_true(l->output[i] == want[i]);
        assert_int_equal(l->indexes[i], want_idx[i]);
    }
    float din[16] = {0};
    for (int i = 0; i < 4; i++)
        l->delta[i] = (float)(i + 1);
    dnn_network_backward_range(net, 0, 0, in, din);
    for (int i = 0; i < 16; i++) {
        float w = 0;
        for (int k = 0; k < 4; k++)
            w += want_idx[k] == i ? (float)(k + 1) : 0;
        assert_true(din[i] == w);
    }
    dnn_network_free(net);

    /* 3x3 stride 1, total padding 2: a 3x3 max filter of the same size */
    const struct dnn_layer_spec s3[] = {maxpool(3, 1, 2)};
    net = make_net(1, 4, 4, 1, s3, 1, false);
    l = &net->layers[0];
    assert_int_equal(l->out_h, 4);
    const float *out = dnn_network_predict(net, in);
    const float want3[16] = {9, 12, 14, 14, 15, 15, 14, 14, 15, 15, 13, 12, 15, 15, 13, 11};
    for (int i = 0; i < 16; i++)
        assert_true(out[i] == want3[i]);
    assert_null(l->indexes); /* inference networks have no argmax buffer */
    dnn_network_free(net);

    /* darknet's default on an odd size: 5 wide, size 2 stride 2 pad 1 -> 3 wide,
     * the last window half outside */
    const struct dnn_layer_spec s5[] = {maxpool(2, 2, 1)};
    net = make_net(1, 1, 5, 1, s5, 1, false);
    const float row[5] = {1, 5, 2, 3, -4};
    out = dnn_network_predict(net, row);
    assert_int_equal(net->layers[0].out_w, 3);
    assert_int_equal(net->layers[0].out_h, 1);
    assert_true(out[0] == 5 && out[1] == 3 && out[2] == -4);
    dnn_network_free(net);
}

static void test_maxpool_no_winner(void **state)
{
    (void)state;
    /* NaN/-inf everywhere: no index is recorded, and backward must not write */
    const struct dnn_layer_spec s[] = {maxpool(2, 2, 1)};
    struct dnn_network *net = make_net(1, 2, 2, 1, s, 1, true);
    const float in[4] = {-INFINITY, NAN, -INFINITY, NAN};
    dnn_network_forward(net, in, NULL, true);
    assert_int_equal(net->layers[0].indexes[0], -1);
    assert_true(net->layers[0].output[0] == -FLT_MAX);
    net->layers[0].delta[0] = 1;
    float din[4] = {0};
    dnn_network_backward_range(net, 0, 0, in, din);
    for (int i = 0; i < 4; i++)
        assert_true(din[i] == 0);
    dnn_network_free(net);
}

static void test_avgpool_known_answer(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {avgpool()};
    struct dnn_network *net = make_net(1, 2, 2, 2, s, 1, false);
    const float in[8] = {1, 2, 3, 4, -1, -1, 5, 1};
    const float *out = dnn_network_predict(net, in);
    assert_int_equal(net->layers[0].outputs, 2);
    assert_true(out[0] == 2.5f && out[1] == 1.0f);
    dnn_network_free(net);
}

static void test_dropout_behaviour(void **state)
{
    (void)state;
    enum { N = 4000 };
    const struct dnn_layer_spec s[] = {dropout(0.25f)};
    struct dnn_network *net = make_net(1, 1, 1, N, s, 1, true);
    struct dnn_layer *l = &net->layers[0];
    assert_true(l->dropout_scale == (float)(1.0 / 0.75));
    float *in = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        in[i] = 1.0f + (float)i / N;
    /* inference: the input, unscaled */
    dnn_network_forward(net, in, NULL, false);
    for (int i = 0; i < N; i++)
        assert_true(l->output[i] == in[i]);
    /* training: about a quarter dropped, the rest scaled; the input untouched */
    dnn_network_forward(net, in, NULL, true);
    int dropped = 0;
    for (int i = 0; i < N; i++) {
        assert_true(in[i] == 1.0f + (float)i / N);
        if (l->rand[i] < 0.25f) {
            assert_true(l->output[i] == 0);
            dropped++;
        } else {
            assert_true(l->output[i] == in[i] * l->dropout_scale);
        }
    }
    assert_in_range(dropped, N / 4 - 150, N / 4 + 150);
    /* backward adds delta*scale where kept */
    float *din = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) {
        l->delta[i] = 2.0f;
        din[i] = 1.0f;
    }
    dnn_network_backward_range(net, 0, 0, in, din);
    for (int i = 0; i < N; i++)
        assert_true(din[i] == (l->rand[i] < 0.25f ? 1.0f : 1.0f + 2.0f * l->dropout_scale));
    free(din);
    free(in);
    dnn_network_free(net);
}

static void test_softmax_known_answer(void **state)
{
    (void)state;
    const struct dnn_layer_spec s[] = {softmax(1, 1.0f)};
    struct dnn_network *net = make_net(1, 1, 1, 3, s, 1, true);
    struct dnn_layer *l = &net->layers[0];
    const float x[3] = {1, 2, 3};
    const float t[3] = {0, 0, 1};
    dnn_network_forward(net, x, t, true);
    const double z = exp(1.0) + exp(2.0) + exp(3.0);
    const double p[3] = {exp(1.0) / z, exp(2.0) / z, exp(3.0) / z};
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(l->output[i] - p[i]) < 1e-7);
        assert_true(fabs(l->delta[i] - (t[i] - p[i])) < 1e-7);
    }
    /* error = -log p only where the truth is non-zero */
    assert_true(l->loss[0] == 0 && l->loss[1] == 0);
    assert_true(fabs(l->loss[2] - 0.40760596444) < 1e-6);
    assert_true(fabs(l->cost - 0.40760596444) < 1e-6);
    assert_true(l->has_cost);
    assert_true(fabs(net->cost - 0.40760596444) < 1e-6);
    /* backward: delta passed through, added */
    float dx[3] = {1, 1, 1};
    dnn_network_backward_range(net, 0, 0, x, dx);
    for (int i = 0; i < 3; i++)
        assert_true(dx[i] == 1.0f + l->delta[i]);
    /* no truth: no cost */
    dnn_network_forward(net, x, NULL, false);
    assert_true(l->cost == 0);
    dnn_network_free(net);

    /* groups 2 and temperature 2 over a batch of 2 */
    const struct dnn_layer_spec s2[] = {softmax(2, 2.0f)};
    net = make_net(2, 1, 1, 4, s2, 1, false);
    const float x2[8] = {0, 2, 5, 5, -1, 1, 3, 7};
    const float *out = dnn_network_predict(net, x2);
    for (int g = 0; g < 4; g++) {
        const double a = x2[2 * g] / 2.0, b = x2[2 * g + 1] / 2.0;
        const double pa = 1.0 / (1.0 + exp(b - a));
        assert_true(fabs(out[2 * g] - pa) < 1e-7);
        assert_true(fabs(out[2 * g + 1] - (1.0 - pa)) < 1e-7);
    }
    assert_true(out[2] == 0.5f && out[3] == 0.5f);
    /* a truth in an inference network: the cost, without the training buffers */
    const float t2[8] = {0, 1, 1, 0, 0, 1, 0, 1};
    dnn_network_forward(net, x2, t2, false);
    assert_null(net->layers[0].loss);
    double want = 0;
    for (int i = 0; i < 8; i++)
        want -= t2[i] ? log((double)out[i]) : 0;
    assert_true(fabs(net->layers[0].cost - want) < 1e-5);
    dnn_network_free(net);
}

/* [identity, cost]: pred is the net input, truth the given vector. */
static void check_cost(enum dnn_cost_type type, float scale, const float *pred, const float *truth,
                       const float *want_err, const float *want_delta, float want_cost)
{
    const struct dnn_layer_spec s[] = {identity(), cost(type, scale)};
    struct dnn_network *net = make_net(1, 1, 1, 4, s, 2, true);
    assert_int_equal(net->truths, 4);
    assert_int_equal(dnn_network_output_index(net), 0);
    struct dnn_layer *l = &net->layers[1];
    dnn_network_forward(net, pred, truth, true);
    for (int i = 0; i < 4; i++) {
        assert_true(l->output[i] == want_err[i]);
        assert_true(l->delta[i] == want_delta[i]);
    }
    assert_true(l->cost == want_cost);
    assert_true(net->cost == want_cost);
    float din[4] = {0};
    dnn_network_backward_range(net, 0, 1, pred, din);
    for (int i = 0; i < 4; i++)
        assert_true(din[i] == scale * want_delta[i]);
    /* no truth: nothing computed, no cost */
    dnn_network_forward(net, pred, NULL, false);
    assert_true(l->cost == 0);
    dnn_network_free(net);
}

static void test_cost_known_answers(void **state)
{
    (void)state;
    const float pred[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    const float truth[4] = {1.0f, 1.0f, -1.0f, 0.0f};
    /* diff = truth - pred = {0.5, 2, -3, 0} */
    const float sse_err[4] = {0.25f, 4, 9, 0};
    const float sse_delta[4] = {0.5f, 2, -3, 0};
    check_cost(DNN_COST_SSE, 1.0f, pred, truth, sse_err, sse_delta, 13.25f);
    check_cost(DNN_COST_SSE, 2.0f, pred, truth, sse_err, sse_delta, 13.25f);
    /* L1: |diff|, delta = diff > 0 ? 1 : -1 (so -1 at diff == 0, as darknet) */
    const float l1_err[4] = {0.5f, 2, 3, 0};
    const float l1_delta[4] = {1, 1, -1, -1};
    check_cost(DNN_COST_L1, 1.0f, pred, truth, l1_err, l1_delta, 5.5f);
    /* smooth: diff^2 and diff below 1; 2|diff|-1 and darknet's (diff < 0 ? 1 : -1) above */
    const float sm_err[4] = {0.25f, 3, 5, 0};
    const float sm_delta[4] = {0.5f, -1, 1, 0};
    check_cost(DNN_COST_SMOOTH, 0.5f, pred, truth, sm_err, sm_delta, 8.25f);
    /* masked: sse, except where the truth is SECRET_NUM (-1234) */
    const float mtruth[4] = {1.0f, -1234.0f, -1.0f, -1234.0f};
    const float m_err[4] = {0.25f, 0, 9, 0};
    const float m_delta[4] = {0.5f, 0, -3, 0};
    check_cost(DNN_COST_MASKED, 1.0f, pred, mtruth, m_err, m_delta, 9.25f);
}

static void test_route_and_shortcut_forward(void **state)
{
    (void)state;
    /* route [1, 0] over a batch of 2: per image, layer 1's channels then layer 0's */
    const struct dnn_layer_spec s[] = {identity(), maxpool(1, 1, 0), route2(1, 0)};
    struct dnn_network *net = make_net(2, 1, 2, 1, s, 3, false);
    const float in[4] = {1, 2, 3, 4};
    const float *out = dnn_network_predict(net, in);
    assert_int_equal(net->layers[2].out_c, 2);
    const float want[8] = {1, 2, 1, 2, 3, 4, 3, 4};
    for (int i = 0; i < 8; i++)
        assert_true(out[i] == want[i]);
    dnn_network_free(net);

    /* shortcut: leaky(alpha * in + beta * from) */
    const struct dnn_layer_spec sc[] = {identity(), identity(),
                                        shortcut(0, 0.5f, 2.0f, DNN_ACT_LEAKY)};
    net = make_net(1, 1, 2, 1, sc, 3, false);
    const float in2[2] = {1, -4};
    out = dnn_network_predict(net, in2);
    assert_true(out[0] == 2.5f);
    assert_true(out[1] == (float)(0.1 * -10.0));
    dnn_network_free(net);

    /* route groups=2 group_id=1 of [0, 0] over a batch of 2, 4 channels of 1x1:
     * per image channels 2, 3 twice */
    const struct dnn_layer_spec rg[] = {identity(), route_part(0, 0, 2, 1)};
    net = make_net(2, 1, 1, 4, rg, 2, false);
    const float in3[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    out = dnn_network_predict(net, in3);
    assert_int_equal(net->layers[1].out_c, 4);
    const float want3[8] = {3, 4, 3, 4, 7, 8, 7, 8};
    for (int i = 0; i < 8; i++)
        assert_true(out[i] == want3[i]);
    dnn_network_free(net);
}

static void test_setup_rejects(void **state)
{
    (void)state;
    struct dnn_network *net = NULL;
    const struct {
        struct dnn_layer_spec specs[3];
        size_t n;
        enum dnn_status want;
        int h, w;
    } cases[] = {
        {{maxpool(0, 1, 0)}, 1, DNN_ERR_INVALID, 4, 4},
        {{maxpool(2, 0, 1)}, 1, DNN_ERR_INVALID, 4, 4},
        {{maxpool(2, 1, -1)}, 1, DNN_ERR_INVALID, 4, 4},
        {{maxpool(9, 1, 0)}, 1, DNN_ERR_SHAPE, 4, 4},
        {{maxpool(2, 1, 2147483646)}, 1, DNN_ERR_INVALID, 4, 4},
        {{dropout(1.0f)}, 1, DNN_ERR_INVALID, 4, 4},
        {{dropout(-0.1f)}, 1, DNN_ERR_INVALID, 4, 4},
        {{softmax(3, 1.0f)}, 1, DNN_ERR_INVALID, 4, 4},
        {{softmax(0, 1.0f)}, 1, DNN_ERR_INVALID, 4, 4},
        {{softmax(1, 0.0f)}, 1, DNN_ERR_INVALID, 4, 4},
        {{identity(), route2(0, 1)}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), route2(0, -1)}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), avgpool(), route2(0, 1)}, 3, DNN_ERR_SHAPE, 4, 4},
        {{identity(), {.kind = DNN_LAYER_ROUTE, .n_route = 0}}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), route_part(0, 0, 2, 2)}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), route_part(0, 0, 2, -1)}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), route_part(0, 0, 3, 0)}, 2, DNN_ERR_SHAPE, 4, 4}, /* 2 channels */
        {{identity(), shortcut(1, 1, 1, DNN_ACT_LINEAR)}, 2, DNN_ERR_INVALID, 4, 4},
        {{identity(), shortcut(-1, 1, 1, DNN_ACT_LINEAR)}, 2, DNN_ERR_INVALID, 4, 4},
        /* 4x8 -> 1x1 scales the axes by different factors */
        {{identity(), avgpool(), shortcut(0, 1, 1, DNN_ACT_LINEAR)}, 3, DNN_ERR_SHAPE, 4, 8},
        {{identity(), {.kind = DNN_LAYER_COST, .cost_type = (enum dnn_cost_type)9}},
         2,
         DNN_ERR_INVALID,
         4,
         4},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct dnn_net_config cfg = gradcheck_config(1, cases[i].h, cases[i].w, 2);
        enum dnn_status st = dnn_network_create(&net, &cfg, cases[i].specs, cases[i].n, true, 1);
        if (st != cases[i].want)
            fprintf(stderr, "case %zu: got %s\n", i, dnn_status_str(st));
        assert_int_equal(st, cases[i].want);
        assert_null(net);
    }
}

static int report_max(void **state)
{
    (void)state;
    printf("  largest gradient-check error: %.2e\n", max_gradcheck_error);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool_gradients),
        cmocka_unit_test(test_avgpool_gradients),
        cmocka_unit_test(test_dropout_gradients),
        cmocka_unit_test(test_shortcut_gradients),
        cmocka_unit_test(test_route_gradients),
        cmocka_unit_test(test_softmax_gradients),
        cmocka_unit_test(test_activation_gradients),
        cmocka_unit_test(test_activation_lanes_match_scalar),
        cmocka_unit_test(test_activation_names),
        cmocka_unit_test(test_activation_values),
        cmocka_unit_test(test_alexeyab_activation_values),
        cmocka_unit_test(test_kept_input_activation_gradients),
        cmocka_unit_test(test_maxpool_known_answer),
        cmocka_unit_test(test_maxpool_no_winner),
        cmocka_unit_test(test_avgpool_known_answer),
        cmocka_unit_test(test_dropout_behaviour),
        cmocka_unit_test(test_softmax_known_answer),
        cmocka_unit_test(test_cost_known_answers),
        cmocka_unit_test(test_route_and_shortcut_forward),
        cmocka_unit_test(test_setup_rejects),
        cmocka_unit_test(test_new_kind_gradients),
        cmocka_unit_test(test_reorg_known_answers),
        cmocka_unit_test(test_crop_behaviour),
        cmocka_unit_test(test_local_and_sam_gradients),
        cmocka_unit_test(test_local_setup_and_known_answer),
        cmocka_unit_test(test_normalization_and_l2norm),
    };
    return cmocka_run_group_tests_name("layers_misc", tests, NULL, report_max);
}
