/*
 * fmt_float.c - "%.5f" for floats without printf's floating point (OP-TEE's TA libc has none).
 *
 * A finite float is M * 2^E with M < 2^24. The text is N = round(M * 2^E * 10^5) printed
 * with a point before its last 5 digits. For E < 0, M * 10^5 < 2^41 fits in 64 bits and the
 * division by 2^-E is a shift whose remainder decides the rounding exactly. For E >= 0 the
 * value is an integer up to 2^128 and N is computed exactly in base 10^9 limbs by doubling.
 * No floating-point arithmetic is used, so the result does not depend on the FPU.
 */
#include "fmt_float.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define LIMB_BASE 1000000000u
#define LIMB_DIGITS 9
/* N < 2^24 * 10^5 * 2^104 < 10^44: five limbs of nine digits. */
#define LIMBS 5

/* Decimal digits of N (limbs little-endian) into out, most significant first; returns count. */
static size_t limbs_to_digits(const uint32_t *limb, char *out)
{
    size_t top = LIMBS - 1, n = 0;
    char tmp[LIMB_DIGITS];

    while (top > 0 && limb[top] == 0)
        top--;
    for (size_t i = top + 1; i-- > 0;) {
        uint32_t v = limb[i];
        size_t k = 0;
        /* The most significant limb has no leading zeros (but at least one digit). */
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (i == top ? v != 0 : k < LIMB_DIGITS);
        while (k > 0)
            out[n++] = tmp[--k];
    }
    return n;
}

/* limb = v (v < 10^18). */
static void limbs_set(uint32_t *limb, uint64_t v)
{
    for (size_t i = 0; i < LIMBS; i++) {
        limb[i] = (uint32_t)(v % LIMB_BASE);
        v /= LIMB_BASE;
    }
}

static void limbs_double(uint32_t *limb)
{
    uint32_t carry = 0;

    for (size_t i = 0; i < LIMBS; i++) {
        uint32_t v = limb[i] * 2 + carry; /* < 2 * 10^9 + 1 < 2^32 */
        carry = v >= LIMB_BASE;
        limb[i] = carry ? v - LIMB_BASE : v;
    }
}

/* Copies text into buf as snprintf would; returns its length. */
static size_t emit(char *buf, size_t size, const char *text, size_t len)
{
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, text, n);
        buf[n] = '\0';
    }
    return len;
}

size_t dz_fmt_float(char *buf, size_t size, float x)
{
    uint32_t bits = 0;
    char text[DZ_FMT_FLOAT_MAX];
    size_t len = 0;

    memcpy(&bits, &x, sizeof(bits));
    const bool negative = (bits >> 31) != 0;
    const uint32_t biased = (bits >> 23) & 0xFFu;
    const uint32_t fraction = bits & 0x7FFFFFu;

    if (negative)
        text[len++] = '-';
    if (biased == 0xFFu) {
        const char *word = fraction ? "nan" : "inf";
        memcpy(text + len, word, 3);
        return emit(buf, size, text, len + 3);
    }

    /* x = m * 2^e exactly. */
    const uint64_t m = biased ? (fraction | 0x800000u) : fraction;
    const int e = biased ? (int)biased - 150 : -149;
    uint32_t limb[LIMBS];
    const uint64_t scaled = m * 100000u; /* < 2^41 */

    if (e >= 0) {
        limbs_set(limb, scaled);
        for (int i = 0; i < e; i++)
            limbs_double(limb);
    } else {
        const int shift = -e;
        uint64_t q = 0;
        if (shift < 64) {
            const uint64_t rem = scaled & ((UINT64_C(1) << shift) - 1);
            const uint64_t half = UINT64_C(1) << (shift - 1);
            q = scaled >> shift;
            if (rem > half || (rem == half && (q & 1u)))
                q++;
        } /* else scaled < 2^41 < half: rounds to 0 */
        limbs_set(limb, q);
    }

    char digits[LIMBS * LIMB_DIGITS];
    size_t nd = limbs_to_digits(limb, digits);
    /* At least one integer digit: pad to DECIMALS + 1 digits with leading zeros. */
    size_t pad = nd < DZ_FMT_FLOAT_DECIMALS + 1 ? DZ_FMT_FLOAT_DECIMALS + 1 - nd : 0;
    const size_t int_digits = nd + pad - DZ_FMT_FLOAT_DECIMALS;
    for (size_t i = 0; i < nd + pad; i++) {
        if (i == int_digits)
            text[len++] = '.';
        text[len++] = i < pad ? '0' : digits[i - pad];
    }
    return emit(buf, size, text, len);
}
