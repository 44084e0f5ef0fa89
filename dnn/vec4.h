/*
 * vec4.h - four floats at a time with GCC/Clang vector extensions, for the engine's
 * elementwise loops that -O2 leaves scalar (it vectorises no loop of unknown length).
 * Every lane does the scalar expression's operations in the same order, so the bits are the
 * scalar loop's: a loop takes DNN_V4_LANES values per step, then a scalar tail. Without
 * vector extensions DNN_V4 is 0 and callers keep only their scalar loops.
 */
#ifndef DNN_VEC4_H
#define DNN_VEC4_H

#include <string.h>

#if defined(__GNUC__)
#define DNN_V4 1
#define DNN_V4_LANES 4
typedef float dnn_v4 __attribute__((vector_size(16)));
typedef int dnn_v4i __attribute__((vector_size(16)));
typedef double dnn_v4d __attribute__((vector_size(32)));

static inline dnn_v4 dnn_v4_load(const float *p)
{
    dnn_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void dnn_v4_store(float *p, dnn_v4 v)
{
    memcpy(p, &v, sizeof v);
}

static inline dnn_v4 dnn_v4_splat(float x)
{
    return (dnn_v4){x, x, x, x};
}

/* a where the mask (a comparison's result) is set, b elsewhere, bit for bit. */
static inline dnn_v4 dnn_v4_select(dnn_v4i m, dnn_v4 a, dnn_v4 b)
{
    return (dnn_v4)((m & (dnn_v4i)a) | (~m & (dnn_v4i)b));
}
#else
#define DNN_V4 0
#define DNN_V4_LANES 1
#endif

#endif
