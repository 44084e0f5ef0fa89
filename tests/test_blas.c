/*
 * test_blas.c - the engine's shared vector helpers (dnn/blas.c) give the bits of darknet's
 * plain loops: fill, copy, axpy, scal, add_bias, scale_bias element by element, and
 * backward_bias as one serial sum per (image, channel) added in image order (darknet's
 * backward_bias over sum_array), for lengths around the 4-float vectors and channel counts
 * around the 8 channels summed side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dnn/dnn_internal.h"

/* Values of every magnitude and sign, so that a changed order of adds changes bits. */
static void fill_random(float *x, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        const float m = (float)(rand() % 2000 - 1000) / 7.0f;
        const int e = rand() % 24 - 12;
        x[i] = m * (float)(1 << (e < 0 ? 0 : e)) / (float)(1 << (e < 0 ? -e : 0));
    }
}

static void test_elementwise(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 37; n++) {
        float x[40], y[40], r[40];
        fill_random(x, n, (unsigned)n + 1);
        fill_random(y, n, (unsigned)n + 101);

        memcpy(r, y, sizeof r);
        dnn_axpy(n, 0.3f, x, y);
        for (size_t i = 0; i < n; i++) {
            const float want = r[i] + 0.3f * x[i];
            assert_memory_equal(&y[i], &want, sizeof want);
        }
        memcpy(r, y, sizeof r);
        dnn_scal(n, -1.7f, y);
        for (size_t i = 0; i < n; i++) {
            const float want = r[i] * -1.7f;
            assert_memory_equal(&y[i], &want, sizeof want);
        }
        y[n] = 99.0f; /* beyond n: untouched */
        dnn_fill(y, n, -0.0f);
        for (size_t i = 0; i < n; i++) {
            const float want = -0.0f;
            assert_memory_equal(&y[i], &want, sizeof want);
        }
        assert_true(y[n] == 99.0f);
        dnn_copy(x, n, y);
        assert_memory_equal(y, x, n * sizeof(float));
        assert_true(y[n] == 99.0f);
    }
}

static void test_bias_rows(void **state)
{
    (void)state;
    enum { B = 3, C = 11, S = 13 };
    float out[B * C * S], ref[B * C * S], bias[C];
    fill_random(out, B * C * S, 7);
    fill_random(bias, C, 8);
    memcpy(ref, out, sizeof ref);
    dnn_add_bias(out, bias, B, C, S);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < C; i++)
            for (int j = 0; j < S; j++)
                ref[(b * C + i) * S + j] += bias[i];
    assert_memory_equal(out, ref, sizeof ref);
    dnn_scale_bias(out, bias, B, C, S);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < C; i++)
            for (int j = 0; j < S; j++)
                ref[(b * C + i) * S + j] *= bias[i];
    assert_memory_equal(out, ref, sizeof ref);
}

static void test_backward_bias_order(void **state)
{
    (void)state;
    const int channels[] = {1, 3, 6, 7, 8, 9, 16, 17, 20};
    for (size_t t = 0; t < sizeof channels / sizeof channels[0]; t++)
        for (int spatial = 1; spatial <= 30; spatial += 29 / 3) {
            const int batch = 3, c = channels[t];
            const size_t n = (size_t)batch * (size_t)c * (size_t)spatial;
            float *delta = malloc(n * sizeof(float));
            float got[20], want[20];
            assert_non_null(delta);
            fill_random(delta, n, (unsigned)(c * 31 + spatial));
            fill_random(got, (size_t)c, 5);
            memcpy(want, got, sizeof got);
            dnn_backward_bias(got, delta, batch, c, spatial);
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < c; i++) {
                    float sum = 0;
                    for (int j = 0; j < spatial; j++)
                        sum += delta[((size_t)b * c + i) * spatial + j];
                    want[i] += sum;
                }
            assert_memory_equal(got, want, (size_t)c * sizeof(float));
            free(delta);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_bias_rows),
        cmocka_unit_test(test_backward_bias_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
