/*
 * test_math.c - the engine's libm replacement against the host's libm.
 *
 * The float functions are compared with the host's DOUBLE functions (exp, log,
 * tanh, pow), which are accurate to well under a double ulp, so the error measured
 * is the engine's own, in float ulps of the exact value; a correctly rounded result
 * scores at most 0.5. Sweeps step through float bit patterns; DNN_TEST_QUICK=1
 * (used under ASan) takes larger steps.
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

static uint32_t stride_for_sweep(uint32_t full)
{
    const char *q = getenv("DNN_TEST_QUICK");
    return (q && *q && *q != '0') ? full * 61u : full;
}

static float f_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t u_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Floats in increasing order as integers: -0 and +0 both map to 0. */
static int64_t float_key(float f)
{
    uint32_t u = u_of(f);
    return (u >> 31) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

static float float_of_key(int64_t k)
{
    return k < 0 ? f_of((uint32_t)(-k) | 0x80000000u) : f_of((uint32_t)k);
}

/* The spacing of floats around the exact value ref (2^104 past FLT_MAX). */
static double float_ulp(double ref)
{
    int ex = 0;
    frexp(fabs(ref), &ex); /* |ref| in [2^(ex-1), 2^ex) */
    if (ex - 24 < -149)
        return ldexp(1.0, -149);
    if (ex > 128)
        ex = 128;
    return ldexp(1.0, ex - 24);
}

/* Error of got in float ulps of the exact value ref. */
static double ulp_error(float got, double ref)
{
    if (isnan(ref))
        return isnan(got) ? 0 : INFINITY;
    if ((double)got == ref)
        return 0;
    if (isinf(got)) /* only right when ref rounds to inf */
        return fabs(ref) >= 0x1.ffffffp127 && (got > 0) == (ref > 0) ? 0 : INFINITY;
    if (isinf(ref))
        return INFINITY;
    return fabs((double)got - ref) / float_ulp(ref);
}

static double double_ulp_error(double got, double ref)
{
    if (got == ref || (isnan(got) && isnan(ref)))
        return 0;
    if (isinf(got) || isinf(ref) || isnan(got) || isnan(ref))
        return INFINITY;
    int ex = 0;
    frexp(fabs(ref), &ex);
    double ulp = ex - 53 < -1074 ? ldexp(1.0, -1074) : ldexp(1.0, ex - 53);
    return fabs(got - ref) / ulp;
}

struct err_stats {
    double max_ulp;
    float worst_x;
    uint64_t n;
    uint64_t not_nearest; /* results that differ from the correctly rounded float */
};

static void record(struct err_stats *s, float x, float got, double ref)
{
    double e = ulp_error(got, ref);
    s->n++;
    if (e > s->max_ulp) {
        s->max_ulp = e;
        s->worst_x = x;
    }
    float nearest = fabs(ref) >= 0x1.ffffffp127 ? copysignf(INFINITY, (float)ref) : (float)ref;
    if (!(isnan(nearest) && isnan(got)) && u_of(got) != u_of(nearest))
        s->not_nearest++;
}

static void report(const char *name, const struct err_stats *s)
{
    printf("  %-6s %10llu values: max error %.4f float ulp (x = %a), %llu not nearest\n", name,
           (unsigned long long)s->n, s->max_ulp, (double)s->worst_x,
           (unsigned long long)s->not_nearest);
}

/* Every stride-th float bit pattern, both signs, with the given function. */
typedef void (*sweep_fn)(struct err_stats *s, float x);

static void sweep_all(struct err_stats *s, uint32_t stride, sweep_fn fn)
{
    for (uint64_t u = 0; u < 0x7f800000u; u += stride) {
        fn(s, f_of((uint32_t)u));
        fn(s, f_of((uint32_t)u | 0x80000000u));
    }
}

static void check_exp(struct err_stats *s, float x)
{
    record(s, x, dnn_expf(x), exp((double)x));
}

static void check_log(struct err_stats *s, float x)
{
    record(s, x, dnn_logf(x), log((double)x));
}

static void check_tanh(struct err_stats *s, float x)
{
    record(s, x, dnn_tanhf(x), tanh((double)x));
}

static void test_expf_accuracy(void **state)
{
    (void)state;
    struct err_stats s = {0};
    sweep_all(&s, stride_for_sweep(997), check_exp);
    /* denser over the range where the result is neither 0 nor inf */
    for (int64_t k = float_key(-104.0f); k <= float_key(89.0f); k += stride_for_sweep(61))
        check_exp(&s, float_of_key(k));
    report("expf", &s);
    assert_true(s.max_ulp <= 1.0);
}

static void test_logf_accuracy(void **state)
{
    (void)state;
    struct err_stats s = {0};
    sweep_all(&s, stride_for_sweep(157), check_log);
    report("logf", &s);
    assert_true(s.max_ulp <= 1.0);
}

static void test_tanhf_accuracy(void **state)
{
    (void)state;
    struct err_stats s = {0};
    sweep_all(&s, stride_for_sweep(157), check_tanh);
    report("tanhf", &s);
    assert_true(s.max_ulp <= 1.0);
}

static void test_powf_accuracy(void **state)
{
    (void)state;
    struct err_stats s = {0};
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 7);
    const uint32_t n = 4000000u / (stride_for_sweep(1) == 1 ? 1 : 20);
    for (uint32_t i = 0; i < n; i++) {
        /* x: a random positive finite float; y: scaled so that x^y spans the
         * whole float range including its overflow and underflow edges */
        float x = f_of(dnn_rng_u32(&rng) % 0x7f800000u);
        if (x == 0)
            continue;
        double lx = fabs(log2((double)x));
        float y = 0;
        switch (i % 4) {
        case 0:
            y = (float)(dnn_rng_uniform(&rng, -160, 160) / (lx > 1e-3 ? lx : 1e-3));
            break;
        case 1:
            y = dnn_rng_uniform(&rng, -8, 8);
            break;
        case 2: /* x near 1, where log x is small and y large */
            x = 1.0f + dnn_rng_uniform(&rng, -0.01f, 0.01f);
            y = dnn_rng_uniform(&rng, -20000, 20000);
            break;
        default: /* negative x with an integer exponent */
            x = -dnn_rng_uniform(&rng, 0.01f, 30);
            y = (float)((int)(dnn_rng_u32(&rng) % 61) - 30);
            break;
        }
        record(&s, x, dnn_powf(x, y), pow((double)x, (double)y));
    }
    /* exact cases: powers of two and small integers */
    for (int a = 1; a <= 20; a++) {
        for (int b = -12; b <= 12; b++) {
            float got = dnn_powf((float)a, (float)b);
            record(&s, (float)a, got, pow(a, b));
            if (b >= 0 && pow(a, b) < 0x1p24)
                assert_true(got == (float)pow(a, b));
        }
    }
    report("powf", &s);
    assert_true(s.max_ulp <= 1.0);
}

/* exp and log in double: near double precision over their whole range. */
static void test_double_exp_log_accuracy(void **state)
{
    (void)state;
    struct dnn_rng rng;
    dnn_rng_seed(&rng, 11);
    double max_exp = 0, max_log = 0;
    const uint32_t n = stride_for_sweep(1) == 1 ? 2000000u : 100000u;
    for (uint32_t i = 0; i < n; i++) {
        double u = (double)dnn_rng_u32(&rng) / 4294967296.0;
        double x = -745.0 + u * (709.7 + 745.0);
        if (i % 2)
            x = (u - 0.5) * 2.0; /* the reduced range itself */
        double e = double_ulp_error(dnn_exp(x), exp(x));
        if (e > max_exp)
            max_exp = e;
        /* log over all magnitudes, subnormals included */
        uint64_t bits =
            ((uint64_t)dnn_rng_u32(&rng) << 32 | dnn_rng_u32(&rng)) & 0x7fefffffffffffffull;
        double y = 0;
        memcpy(&y, &bits, sizeof y);
        if (i % 3 == 0)
            y = 1.0 + (u - 0.5) * 0.1;
        double el = double_ulp_error(dnn_log(y), log(y));
        if (el > max_log)
            max_log = el;
    }
    printf("  exp    max error %.4f double ulp\n", max_exp);
    printf("  log    max error %.4f double ulp\n", max_log);
    /* subnormal results (x < -708.4) included: they are rounded once, on the subnormal grid */
    assert_true(max_exp < 2.0);
    assert_true(max_log < 2.0);
}

static bool same_bits(float a, float b)
{
    return u_of(a) == u_of(b);
}

static void test_special_values(void **state)
{
    (void)state;
    const float inf = INFINITY;
    const float nan = NAN;
    /* exp */
    assert_true(isnan(dnn_expf(nan)));
    assert_true(dnn_expf(inf) == inf);
    assert_true(same_bits(dnn_expf(-inf), 0.0f));
    assert_true(dnn_expf(0.0f) == 1.0f && dnn_expf(-0.0f) == 1.0f);
    assert_true(dnn_expf(88.72283f) == expf(88.72283f)); /* just below FLT_MAX */
    assert_true(dnn_expf(88.7229f) == inf);
    assert_true(dnn_expf(1000.0f) == inf);
    assert_true(dnn_expf(-87.33655f) == expf(-87.33655f)); /* just above FLT_MIN */
    assert_true(dnn_expf(-100.0f) == expf(-100.0f));       /* subnormal */
    assert_true(dnn_expf(-103.2789f) == f_of(1));          /* the smallest subnormal */
    assert_true(same_bits(dnn_expf(-104.0f), 0.0f));
    assert_true(same_bits(dnn_expf(-1000.0f), 0.0f));
    assert_true(dnn_exp(710.0) == INFINITY && dnn_exp(-746.0) == 0.0);
    assert_true(isnan(dnn_exp(NAN)));
    assert_true(dnn_exp(-745.0) == exp(-745.0)); /* 2^-1074 */
    /* log */
    assert_true(same_bits(dnn_logf(1.0f), 0.0f));
    assert_true(dnn_logf(0.0f) == -inf && dnn_logf(-0.0f) == -inf);
    assert_true(isnan(dnn_logf(-1.0f)) && isnan(dnn_logf(-inf)) && isnan(dnn_logf(nan)));
    assert_true(isnan(dnn_logf(-f_of(1))));
    assert_true(dnn_logf(inf) == inf);
    assert_true(dnn_logf(f_of(1)) == logf(f_of(1)));
    assert_true(dnn_logf(FLT_MAX) == logf(FLT_MAX));
    assert_true(dnn_log(0.0) == -INFINITY && isnan(dnn_log(-2.0)) && dnn_log(INFINITY) == INFINITY);
    /* tanh */
    assert_true(same_bits(dnn_tanhf(0.0f), 0.0f) && same_bits(dnn_tanhf(-0.0f), -0.0f));
    assert_true(dnn_tanhf(inf) == 1.0f && dnn_tanhf(-inf) == -1.0f);
    assert_true(dnn_tanhf(400.0f) == 1.0f && dnn_tanhf(-400.0f) == -1.0f);
    assert_true(isnan(dnn_tanhf(nan)));
    assert_true(dnn_tanhf(1e-30f) == 1e-30f && dnn_tanhf(f_of(1)) == f_of(1));
    /* pow, C11 F.10.4.4 */
    assert_true(dnn_powf(nan, 0.0f) == 1.0f && dnn_powf(nan, -0.0f) == 1.0f);
    assert_true(dnn_powf(1.0f, nan) == 1.0f && dnn_powf(1.0f, inf) == 1.0f);
    assert_true(isnan(dnn_powf(nan, 1.0f)) && isnan(dnn_powf(2.0f, nan)));
    assert_true(isnan(dnn_powf(-2.0f, 0.5f)));
    assert_true(dnn_powf(-2.0f, 3.0f) == -8.0f && dnn_powf(-2.0f, 2.0f) == 4.0f);
    assert_true(dnn_powf(-2.0f, -1.0f) == -0.5f);
    assert_true(dnn_powf(-1.0f, inf) == 1.0f && dnn_powf(-1.0f, -inf) == 1.0f);
    assert_true(dnn_powf(0.5f, inf) == 0.0f && dnn_powf(0.5f, -inf) == inf);
    assert_true(dnn_powf(2.0f, inf) == inf && dnn_powf(2.0f, -inf) == 0.0f);
    assert_true(dnn_powf(-0.0f, -3.0f) == -inf && dnn_powf(0.0f, -3.0f) == inf);
    assert_true(dnn_powf(-0.0f, -2.0f) == inf && dnn_powf(-0.0f, -0.5f) == inf);
    assert_true(same_bits(dnn_powf(-0.0f, 3.0f), -0.0f) && same_bits(dnn_powf(-0.0f, 2.0f), 0.0f));
    assert_true(same_bits(dnn_powf(0.0f, 0.5f), 0.0f));
    assert_true(same_bits(dnn_powf(-inf, -3.0f), -0.0f) && same_bits(dnn_powf(-inf, -2.0f), 0.0f));
    assert_true(dnn_powf(-inf, 3.0f) == -inf && dnn_powf(-inf, 2.0f) == inf);
    assert_true(same_bits(dnn_powf(inf, -1.0f), 0.0f) && dnn_powf(inf, 0.5f) == inf);
    assert_true(dnn_powf(-3.0f, 0x1p25f) == dnn_powf(3.0f, 0x1p25f)); /* huge y is even */
    assert_true(dnn_powf(2.0f, 0.5f) == sqrtf(2.0f));
    assert_true(dnn_powf(10.0f, 38.6f) == inf && dnn_powf(10.0f, -46.0f) == 0.0f);
    assert_true(dnn_powf(2.0f, -149.0f) == f_of(1));
    /* sqrt, floor, fabs */
    assert_true(dnn_sqrtf(4.0f) == 2.0f && dnn_sqrtf(2.0f) == sqrtf(2.0f));
    assert_true(isnan(dnn_sqrtf(-1.0f)) && isnan(dnn_sqrtf(nan)));
    assert_true(same_bits(dnn_sqrtf(-0.0f), -0.0f) && dnn_sqrtf(inf) == inf);
    assert_true(dnn_floorf(-0.5f) == -1.0f && same_bits(dnn_floorf(0.5f), 0.0f));
    assert_true(same_bits(dnn_floorf(-0.0f), -0.0f) && dnn_floorf(-1.0f) == -1.0f);
    assert_true(dnn_floorf(0x1p23f + 1) == 0x1p23f + 1 && dnn_floorf(-inf) == -inf);
    assert_true(isnan(dnn_floorf(nan)) && dnn_floorf(-8388607.5f) == -8388608.0f);
    assert_true(same_bits(dnn_fabsf(-0.0f), 0.0f) && dnn_fabsf(-inf) == inf);
    assert_true(isnan(dnn_fabsf(-nan)) && dnn_fabsf(-3.5f) == 3.5f);
}

/* sqrt, floor and fabs are exact operations: bit-identical to the host's. */
static void check_exact(struct err_stats *s, float x)
{
    s->n++;
    if (!same_bits(dnn_sqrtf(x), sqrtf(x)) && !(isnan(x) || x < 0))
        s->not_nearest++;
    if (x < 0 && !isnan(dnn_sqrtf(x)) && x != 0)
        s->not_nearest++;
    if (!same_bits(dnn_floorf(x), floorf(x)))
        s->not_nearest++;
    if (!same_bits(dnn_fabsf(x), fabsf(x)))
        s->not_nearest++;
}

static void test_exact_functions(void **state)
{
    (void)state;
    struct err_stats s = {0};
    sweep_all(&s, stride_for_sweep(241), check_exact);
    assert_int_equal(s.not_nearest, 0);
}

/* A correctly rounded exp is monotonic; check it over a dense sweep and across
 * every float in windows around the points where the reduction changes. */
static void test_expf_monotonic(void **state)
{
    (void)state;
    uint64_t checked = 0;
    const int64_t step = stride_for_sweep(29);
    float prev = dnn_expf(-105.0f);
    for (int64_t k = float_key(-105.0f); k <= float_key(89.0f); k += step) {
        float y = dnn_expf(float_of_key(k));
        assert_true(y >= prev);
        prev = y;
        checked++;
    }
    /* every float near the reduction boundaries k*ln2 +- ln2/2 and near 0 */
    static const float centres[] = {0.0f,    0.34657359f, -0.34657359f, 1.0397208f, -1.0397208f,
                                    44.014f, -44.014f,    88.7f,        -87.3f,     -103.0f};
    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
        float x = centres[c];
        for (int i = 0; i < 200000; i++)
            x = nextafterf(x, -INFINITY);
        float p = dnn_expf(x);
        for (int i = 0; i < 400000; i++) {
            x = nextafterf(x, INFINITY);
            float y = dnn_expf(x);
            assert_true(y >= p);
            p = y;
            checked++;
        }
    }
    printf("  expf monotonic over %llu consecutive pairs\n", (unsigned long long)checked);
}

/* The engine's results must not depend on the host: a few pinned bit patterns. */
static void test_pinned_values(void **state)
{
    (void)state;
    assert_true(dnn_expf(1.0f) == 2.71828183f);
    assert_true(dnn_logf(10.0f) == 2.30258509f);
    assert_true(dnn_tanhf(0.5f) == 0.462117157f);
    assert_true(dnn_powf(10.0f, 0.5f) == 3.16227766f);
    assert_true(double_ulp_error(dnn_exp(1.0), 2.718281828459045) <= 1.0);
    assert_true(double_ulp_error(dnn_log(2.0), 0.6931471805599453) <= 1.0);
    assert_true(double_ulp_error(dnn_exp(-1.0), 0.36787944117144233) <= 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_values),          cmocka_unit_test(test_pinned_values),
        cmocka_unit_test(test_expf_accuracy),           cmocka_unit_test(test_logf_accuracy),
        cmocka_unit_test(test_tanhf_accuracy),          cmocka_unit_test(test_powf_accuracy),
        cmocka_unit_test(test_double_exp_log_accuracy), cmocka_unit_test(test_exact_functions),
        cmocka_unit_test(test_expf_monotonic),
    };
    return cmocka_run_group_tests_name("math", tests, NULL, NULL);
}
