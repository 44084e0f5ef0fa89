/*
 * fma_peak.c - the peak loops of tools/bench (fma_peak.h). Vector extensions, with the
 * AVX2 and AVX-512 variants compiled for their targets and chosen at run time.
 */
#include "tools/bench/fma_peak.h"

/* Independent multiply-add chains, more than the FMA latency times the issue width, so the
 * loop runs at the FMA units' throughput. Returns flops per second. */
#define PEAK_CHAINS 12
/* Unrolled, the chains stay in registers. */
#if defined(__clang__)
#define PEAK_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define PEAK_UNROLL _Pragma("GCC unroll 32")
#else
#define PEAK_UNROLL
#endif
#if defined(__x86_64__) && defined(__GNUC__)
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

__attribute__((target("avx2,fma"), noinline)) static float peak_avx2(long iters)
{
    v8 acc[PEAK_CHAINS], x = {0}, y = {0};
    for (int l = 0; l < 8; l++)
        x[l] = 1.0f - 1e-7f * (float)l, y[l] = 1e-7f;
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = x * (float)c;
    for (long i = 0; i < iters; i++) {
        PEAK_UNROLL
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = __builtin_ia32_vfmaddps256(acc[c], x, y);
        __asm__ volatile("" : "+x"(x));
    }
    float s = 0;
    for (int c = 0; c < PEAK_CHAINS; c++)
        s += acc[c][0];
    return s;
}

__attribute__((target("avx512f"), noinline)) static float peak_avx512(long iters)
{
    v16 acc[PEAK_CHAINS * 2], x, y;
    for (int l = 0; l < 16; l++)
        x[l] = 1.0f - 1e-7f * (float)l, y[l] = 1e-7f;
    for (int c = 0; c < PEAK_CHAINS * 2; c++)
        acc[c] = x * (float)c;
    for (long i = 0; i < iters; i++) {
        PEAK_UNROLL
        for (int c = 0; c < PEAK_CHAINS * 2; c++)
            acc[c] = __builtin_ia32_vfmaddps512_mask(acc[c], x, y, (unsigned short)0xffff, 4);
        __asm__ volatile("" : "+v"(x));
    }
    float s = 0;
    for (int c = 0; c < PEAK_CHAINS * 2; c++)
        s += acc[c][0];
    return s;
}
#endif

typedef float v4 __attribute__((vector_size(16)));

__attribute__((noinline)) static float peak_generic(long iters)
{
    v4 acc[PEAK_CHAINS], x, y;
    for (int l = 0; l < 4; l++)
        x[l] = 1.0f - 1e-7f * (float)l, y[l] = 1e-7f;
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = x * (float)c;
    for (long i = 0; i < iters; i++) {
        PEAK_UNROLL
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = acc[c] * x + y;
        __asm__ volatile("" : "+x"(x));
    }
    float s = 0;
    for (int c = 0; c < PEAK_CHAINS; c++)
        s += acc[c][0];
    return s;
}

struct fma_peak_loop fma_peak_select(void)
{
    struct fma_peak_loop loop = {peak_generic, 2.0 * 4 * PEAK_CHAINS, "4-lane multiply+add"};
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        loop = (struct fma_peak_loop){peak_avx512, 2.0 * 16 * 2 * PEAK_CHAINS, "AVX-512 FMA"};
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        loop = (struct fma_peak_loop){peak_avx2, 2.0 * 8 * PEAK_CHAINS, "AVX2 FMA"};
    }
#endif
    return loop;
}
