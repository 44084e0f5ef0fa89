/*
 * test_ta_fmt.c - the TA's float formatter (ta/fmt_float.c, compiled in directly): it must
 * print exactly what glibc's printf("%.5f", (double)x) prints, for every kind of float:
 * zeros, halfway cases (which round to even), subnormals, the largest floats, infinities,
 * NaNs and a few hundred thousand random bit patterns over every exponent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ta/fmt_float.c"

static float from_bits(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

/* Formats x both ways and fails with both texts when they differ. */
static void check(float x)
{
    char want[128], got[DZ_FMT_FLOAT_MAX];
    int n = snprintf(want, sizeof(want), "%.5f", (double)x);
    size_t len = dz_fmt_float(got, sizeof(got), x);
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    if ((size_t)n != len || strcmp(want, got) != 0)
        fail_msg("bits %#010x: printf \"%s\", dz_fmt_float \"%s\" (length %zu)", (unsigned)bits,
                 want, got, len);
}

static void test_known_values(void **state)
{
    (void)state;
    static const struct {
        float x;
        const char *text;
    } cases[] = {
        {0.0f, "0.00000"},
        {-0.0f, "-0.00000"},
        {1.0f, "1.00000"},
        {-2.5f, "-2.50000"},
        {1.62141f, "1.62141"},
        {0.015625f, "0.01562"}, /* exactly halfway: to even */
        {0.046875f, "0.04688"}, /* exactly halfway: to even */
        {-0.015625f, "-0.01562"},
        {1e-6f, "0.00000"},
        {-1e-6f, "-0.00000"},
        {0.5f, "0.50000"},
        {100000.0f, "100000.00000"},
        {16777216.0f, "16777216.00000"},
        {1e10f, "10000000000.00000"},
    };
    char buf[DZ_FMT_FLOAT_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dz_fmt_float(buf, sizeof(buf), cases[i].x);
        assert_string_equal(buf, cases[i].text);
        check(cases[i].x);
    }
}

static void test_special_values(void **state)
{
    (void)state;
    char buf[DZ_FMT_FLOAT_MAX];
    dz_fmt_float(buf, sizeof(buf), from_bits(0x7F800000u));
    assert_string_equal(buf, "inf");
    dz_fmt_float(buf, sizeof(buf), from_bits(0xFF800000u));
    assert_string_equal(buf, "-inf");
    dz_fmt_float(buf, sizeof(buf), from_bits(0x7FC00000u));
    assert_string_equal(buf, "nan");
    dz_fmt_float(buf, sizeof(buf), from_bits(0xFFC00001u));
    assert_string_equal(buf, "-nan");

    const uint32_t edges[] = {
        0x00000001u, /* smallest subnormal */
        0x007FFFFFu, /* largest subnormal */
        0x00800000u, /* FLT_MIN */
        0x7F7FFFFFu, /* FLT_MAX: 39 integer digits */
        0xFF7FFFFFu, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u, 0x3727C5ACu, /* ~1e-5 */
        0x3F7FFFFFu, /* just below 1 */
        0x4B7FFFFFu, /* 2^24 - 1 */
        0x4B800000u, /* 2^24 */
    };
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check(from_bits(edges[i]));
    assert_true(strlen("-340282346638528859811704183484516925440.00000") < DZ_FMT_FLOAT_MAX);
}

/* Every float with an exact sixth decimal 5 is a halfway case: k/64 has six decimals. */
static void test_halfway_cases(void **state)
{
    (void)state;
    for (int k = -2000; k <= 2000; k++) {
        check((float)k / 64.0f);
        check((float)k / 128.0f + 3.0f);
        check((float)k / 32.0f);
    }
    /* Values around every rounding boundary n * 1e-5 + 5e-6. */
    for (int n = 0; n < 20000; n++) {
        const float mid = (float)((n + 0.5) * 1e-5);
        check(mid);
        check(nextafterf(mid, 0.0f));
        check(nextafterf(mid, 1.0f));
    }
}

/* Random bit patterns over every exponent, both signs. */
static void test_random_bits(void **state)
{
    (void)state;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 300000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        check(from_bits((uint32_t)s));
    }
    /* Each exponent with a few mantissas. */
    for (uint32_t e = 0; e < 256; e++) {
        for (uint32_t m = 0; m < 8; m++) {
            check(from_bits((e << 23) | (m * 0x0FFFFFu)));
            check(from_bits(0x80000000u | (e << 23) | (m * 0x0FFFFFu + 1)));
        }
    }
}

/* snprintf's contract: cut to size - 1 characters, NUL-terminated, full length returned. */
static void test_truncation(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(dz_fmt_float(buf, 5, -12.5f), strlen("-12.50000"));
    assert_string_equal(buf, "-12.");
    assert_int_equal(buf[5], 'x');
    assert_int_equal(dz_fmt_float(buf, 1, 3.0f), strlen("3.00000"));
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(dz_fmt_float(buf, 0, 3.0f), strlen("3.00000"));
    assert_int_equal(buf[0], 'x');
    assert_int_equal(dz_fmt_float(buf, 4, from_bits(0xFF800000u)), 4);
    assert_string_equal(buf, "-in");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),  cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_halfway_cases), cmocka_unit_test(test_random_bits),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests_name("ta_fmt_float", tests, NULL, NULL);
}
