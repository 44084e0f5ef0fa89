/*
 * math.c - the engine's own elementary functions.
 *
 * The TA has no libm, and both worlds must round alike, so the engine never calls
 * the C library's math. exp and log are computed in double with a Cody-Waite
 * range reduction and a polynomial accurate to about one double ulp; the float
 * functions round that double once, which makes them correctly rounded except when
 * the exact value lies within about 2^-50 (relative) of a float rounding boundary.
 *
 * Bit patterns are read through unions (defined in C11), so no <string.h> or
 * <math.h> is needed.
 */
#include "dnn/dnn_internal.h"

/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11: LN2_HI has 42 significant
 * bits and LN2_HI + LN2_LO equals ln 2 to about 2^-100. */
static const double LN2_HI = 0x1.62e42fefa3800p-1;
static const double LN2_LO = 0x1.ef35793c76730p-45;
static const double INV_LN2 = 0x1.71547652b82fep+0;
static const double SQRT2 = 0x1.6a09e667f3bcdp+0;

/* exp(x) overflows a double above ln(DBL_MAX) and is below half the smallest
 * subnormal under -745.14. */
static const double EXP_OVERFLOW = 709.79;
static const double EXP_UNDERFLOW = -745.2;

/* Above this |x| tanh(x) rounds to +-1 in float: 1 - tanh(x) ~ 2 exp(-2x) < 2^-25
 * once x > 13 ln 2 = 9.01. */
static const double TANH_SATURATE = 9.1;

/* The smallest double that rounds to +inf in float: FLT_MAX plus half an ulp
 * (an exact tie, which rounds to the even neighbour 2^128). */
static const double FLOAT_OVERFLOW = 0x1.ffffffp127;

union fbits {
    float f;
    uint32_t u;
};

union dbits {
    double d;
    uint64_t u;
};

static uint32_t bits_of_float(float x)
{
    union fbits b = {.f = x};
    return b.u;
}

static float float_of_bits(uint32_t u)
{
    union fbits b = {.u = u};
    return b.f;
}

static uint64_t bits_of_double(double x)
{
    union dbits b = {.d = x};
    return b.u;
}

static double double_of_bits(uint64_t u)
{
    union dbits b = {.u = u};
    return b.d;
}

static float float_inf(void)
{
    return float_of_bits(0x7f800000u);
}

static float float_nan(void)
{
    return float_of_bits(0x7fc00000u);
}

static double double_inf(void)
{
    return double_of_bits(0x7ff0000000000000ull);
}

static double double_nan(void)
{
    return double_of_bits(0x7ff8000000000000ull);
}

/* 2^k for -1022 <= k <= 1023, built from its bits. */
static double pow2(int k)
{
    return double_of_bits((uint64_t)(k + 1023) << 52);
}

/* double -> float with IEEE overflow to +-inf spelled out (a conversion out of
 * range is undefined in ISO C even where the hardware saturates). */
static float round_to_float(double d)
{
    if (d >= FLOAT_OVERFLOW)
        return float_inf();
    if (d <= -FLOAT_OVERFLOW)
        return -float_inf();
    return (float)d;
}

/*
 * exp(r) - 1 for |r| <= ln2/2 + tiny, by its Taylor series to r^13/13!: the
 * first omitted term is below 2^-57 relative. Horner form keeps the rounding
 * error near one ulp, and the result stays accurate relative to r itself.
 */
static double expm1_reduced(double r)
{
    double p = 1.0 / 6227020800.0;
    p = 1.0 / 479001600.0 + r * p;
    p = 1.0 / 39916800.0 + r * p;
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    p = 0.5 + r * p;
    return r + (r * r) * p;
}

/* x = k ln2 + r with |r| <= ln2/2 (plus rounding); returns k, stores r. */
static int reduce_ln2(double x, double *r)
{
    double kf = x * INV_LN2;
    int k = (int)(kf + (kf >= 0 ? 0.5 : -0.5));
    /* x - k*LN2_HI is exact (k*LN2_HI is exact and close to x). */
    *r = (x - (double)k * LN2_HI) - (double)k * LN2_LO;
    return k;
}

double dnn_exp(double x)
{
    if (dnn_isnan(x))
        return x + x;
    if (x > EXP_OVERFLOW)
        return double_inf();
    if (x < EXP_UNDERFLOW)
        return 0.0;
    double r = 0;
    int k = reduce_ln2(x, &r);
    double y = 1.0 + expm1_reduced(r);
    /* Scale by 2^k in two steps at the ends of the range, so that an overflow
     * or a subnormal result is rounded once, by the last multiplication. */
    if (k > 1000)
        return y * pow2(k - 64) * pow2(64);
    if (k < -1000)
        return y * pow2(k + 64) * pow2(-64);
    return y * pow2(k);
}

float dnn_expf(float x)
{
    return round_to_float(dnn_exp((double)x));
}

/*
 * log(1 + f) for f = m - 1, m in [sqrt(2)/2, sqrt(2)). With s = f / (2 + f),
 * log(1 + f) = 2 atanh(s) = 2s + s*R, R = 2s^2/3 + 2s^4/5 + ...; since 2s = f - s*f,
 * this is f - s*(f - R), where only the small correction carries s's rounding error.
 * |s| <= 0.1716, so the terms to s^20 leave an error below 2^-60 relative.
 */
static double log1p_reduced(double f)
{
    double s = f / (2.0 + f);
    double z = s * s;
    double p = 2.0 / 21.0;
    p = 2.0 / 19.0 + z * p;
    p = 2.0 / 17.0 + z * p;
    p = 2.0 / 15.0 + z * p;
    p = 2.0 / 13.0 + z * p;
    p = 2.0 / 11.0 + z * p;
    p = 2.0 / 9.0 + z * p;
    p = 2.0 / 7.0 + z * p;
    p = 2.0 / 5.0 + z * p;
    p = 2.0 / 3.0 + z * p;
    double r = z * p;
    return f - s * (f - r);
}

double dnn_log(double x)
{
    if (dnn_isnan(x))
        return x + x;
    if (x < 0)
        return double_nan();
    if (dnn_deq(x, 0))
        return -double_inf();
    if (dnn_deq(x, double_inf()))
        return x;
    int e = 0;
    uint64_t b = bits_of_double(x);
    if ((b >> 52) == 0) { /* subnormal: scale into the normal range first */
        b = bits_of_double(x * 0x1p54);
        e = -54;
    }
    e += (int)(b >> 52) - 1023;
    /* m in [1, 2) with x's mantissa; fold it into [sqrt(2)/2, sqrt(2)). */
    double m = double_of_bits((b & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    if (m > SQRT2) {
        m *= 0.5;
        e += 1;
    }
    double f = m - 1.0; /* exact: m is within a factor 2 of 1 */
    double ed = (double)e;
    return ed * LN2_HI + (ed * LN2_LO + log1p_reduced(f));
}

float dnn_logf(float x)
{
    return (float)dnn_log((double)x);
}

/* exp(y) - 1 for 0 <= y <= 2 * TANH_SATURATE, accurate relative to the result. */
static double expm1_nonneg(double y)
{
    double r = 0;
    int k = reduce_ln2(y, &r);
    double p = expm1_reduced(r);
    if (k == 0)
        return p;
    /* 2^k (1 + p) - 1 = 2^k p + (2^k - 1); 2^k - 1 is exact here (k <= 27). */
    double s = pow2(k);
    return s * p + (s - 1.0);
}

float dnn_tanhf(float x)
{
    if (dnn_isnan(x))
        return x + x;
    double ax = (double)dnn_fabsf(x);
    double t = 1.0;
    if (ax < TANH_SATURATE) {
        /* tanh(a) = (e^2a - 1) / (e^2a + 1), written with expm1 so that small
         * arguments keep their relative accuracy. */
        double em1 = expm1_nonneg(2.0 * ax);
        t = em1 / (em1 + 2.0);
    }
    float r = (float)t;
    return (bits_of_float(x) >> 31) ? -r : r;
}

/* For a float y that is an integer: is it odd? Floats >= 2^24 are even. */
static bool float_is_odd_integer(float y)
{
    float ay = dnn_fabsf(y);
    if (!(ay < 0x1p24f) || !dnn_feq(dnn_floorf(y), y))
        return false;
    return ((uint32_t)ay & 1u) != 0;
}

static bool float_is_integer(float y)
{
    /* true for +-inf, which callers handle first */
    return !dnn_isnan(y) && dnn_feq(dnn_floorf(y), y);
}

/*
 * x^y as exp(y log x) in double. log x is accurate to ~2^-52 relative and
 * |y log x| < 160 wherever the float result is neither 0 nor inf, so the error of
 * the double result stays near 2^-45 relative: far below half a float ulp.
 * Special cases follow C11 Annex F (F.10.4.4).
 */
float dnn_powf(float x, float y)
{
    if (dnn_feq(y, 0) || dnn_feq(x, 1.0f))
        return 1.0f;
    if (dnn_isnan(x) || dnn_isnan(y))
        return x + y;
    float ax = dnn_fabsf(x);
    float ay = dnn_fabsf(y);
    bool y_neg = y < 0;
    if (dnn_feq(ay, float_inf())) {
        if (dnn_feq(ax, 1.0f))
            return 1.0f; /* (-1)^+-inf */
        return (ax < 1.0f) == y_neg ? float_inf() : 0.0f;
    }
    bool odd = float_is_odd_integer(y);
    bool x_neg = (bits_of_float(x) >> 31) != 0;
    if (dnn_feq(x, 0) || dnn_feq(ax, float_inf())) {
        /* 0^y and inf^y: the magnitude is 0 or inf, the sign is x's for odd y. */
        bool big = dnn_feq(x, 0) == y_neg;
        float mag = big ? float_inf() : 0.0f;
        return (x_neg && odd) ? -mag : mag;
    }
    if (x_neg && !float_is_integer(y))
        return float_nan();
    if (dnn_feq(y, 1.0f))
        return x;
    if (dnn_feq(y, 2.0f))
        return round_to_float((double)x * (double)x); /* exact in double: one rounding */
    double r = dnn_exp((double)y * dnn_log((double)ax));
    float f = round_to_float(r);
    return (x_neg && odd) ? -f : f;
}

/*
 * Correctly rounded square root without the FPU instruction, for builds that keep
 * math errno (where __builtin_sqrtf would call the library for negative inputs).
 * The root of m * 2^28 is found bit by bit with its remainder; the remainder becomes
 * a half-unit sticky bit below 26 result bits, so the final conversion rounds once,
 * exactly as IEEE sqrt does.
 */
#if !(defined(__GNUC__) && defined(__NO_MATH_ERRNO__))
static float soft_sqrtf(float x)
{
    uint32_t b = bits_of_float(x);
    if (dnn_isnan(x) || dnn_feq(x, 0) || b == 0x7f800000u)
        return x; /* NaN, +-0, +inf */
    if (b >> 31)
        return float_nan();
    int e = (int)(b >> 23);
    uint64_t m = b & 0x7fffffu;
    if (e == 0) {
        e = 1;
        while (!(m & 0x800000u)) {
            m <<= 1;
            e--;
        }
    } else {
        m |= 0x800000u;
    }
    int ex = e - 150; /* x = m * 2^ex, m in [2^23, 2^24) */
    if (ex % 2 != 0) {
        m <<= 1;
        ex -= 1;
    }
    uint64_t n = m << 28; /* < 2^53 */
    uint64_t root = 0;
    uint64_t bit = 1ull << 52;
    while (bit > n)
        bit >>= 2;
    while (bit) {
        if (n >= root + bit) {
            n -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    double v = (double)root + (n != 0 ? 0.5 : 0.0);
    return (float)(v * pow2(ex / 2 - 14));
}
#endif

float dnn_sqrtf(float x)
{
#if defined(__GNUC__) && defined(__NO_MATH_ERRNO__)
    /* With -fno-math-errno this is the IEEE instruction (correctly rounded). */
    return __builtin_sqrtf(x);
#else
    return soft_sqrtf(x);
#endif
}

float dnn_floorf(float x)
{
    if (!(dnn_fabsf(x) < 0x1p23f) || dnn_feq(x, 0))
        return x;                /* NaN, +-inf, integers already, and +-0 keeping its sign */
    float t = (float)(int32_t)x; /* truncation, exact below 2^23 */
    return t > x ? t - 1.0f : t;
}

float dnn_fabsf(float x)
{
    return float_of_bits(bits_of_float(x) & 0x7fffffffu);
}

/* pi to double precision, split for the reflection below. */
static const double PI_D = 0x1.921fb54442d18p+1;

double dnn_cos_0_pi(double x)
{
    /* Out-of-range input is clamped: the callers' arguments are fractions of pi. */
    if (!(x > 0))
        x = 0;
    if (x > PI_D)
        x = PI_D;
    /* cos(x) = -cos(pi - x) brings x into [0, pi/2], where the Taylor series to x^28
     * (terms below 2^-60 of the sum) converges to about one double ulp. */
    double sign = 1;
    if (x > PI_D / 2) {
        x = PI_D - x;
        sign = -1;
    }
    const double x2 = x * x;
    double term = 1, sum = 1;
    for (int k = 1; k <= 14; k++) {
        term *= -x2 / (double)((2 * k - 1) * (2 * k));
        sum += term;
    }
    return sign * sum;
}
