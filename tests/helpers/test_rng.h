/*
 * test_rng.h - the tests' one generator of reproducible inputs: xorshift64 (Marsaglia 2003,
 * shifts 13, 7, 17) over a state the caller keeps, so each test file draws the same data on
 * every run and machine whatever else runs.
 */
#ifndef TESTS_TEST_RNG_H
#define TESTS_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

/* The next 64-bit value of the stream at *state (which must not be 0). */
static inline uint64_t test_rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* A float in [lo, hi), from the top 24 bits of the next value. */
static inline float test_rng_float(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)(test_rng_next(state) >> 40) / (float)(1u << 24);
}

/* x[0..n) from test_rng_float. */
static inline void test_rng_fill(uint64_t *state, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_float(state, lo, hi);
}

#endif
