/* rng.c - the engine's random numbers: xorshift128+ state passed by pointer,
 * so every run with the same seed draws the same numbers in either world. */
#include "dnn/dnn_internal.h"

/* splitmix64: spreads a seed over the whole state, never leaving it all zero. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dnn_rng_seed(struct dnn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    r->s[0] = splitmix64(&x);
    r->s[1] = splitmix64(&x);
    if ((r->s[0] | r->s[1]) == 0)
        r->s[1] = 1;
}

uint32_t dnn_rng_u32(struct dnn_rng *r)
{
    uint64_t s1 = r->s[0];
    const uint64_t s0 = r->s[1];
    const uint64_t result = s0 + s1;
    r->s[0] = s0;
    s1 ^= s1 << 23;
    r->s[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return (uint32_t)(result >> 32); /* high bits are the strongest */
}

float dnn_rng_uniform(struct dnn_rng *r, float lo, float hi)
{
    /* 24 random bits: every value is exactly representable and < 1. */
    float u = (float)(dnn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

float dnn_rng_normal(struct dnn_rng *r)
{
    for (;;) {
        float u = dnn_rng_uniform(r, -1, 1);
        float v = dnn_rng_uniform(r, -1, 1);
        float s = u * u + v * v;
        if (s > 0 && s < 1)
            return u * dnn_sqrtf(-2.0f * dnn_logf(s) / s);
    }
}
