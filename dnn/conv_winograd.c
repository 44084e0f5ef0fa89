/*
 * conv_winograd.c - F(2x2, 3x3) Winograd convolution (conv_winograd.h): the transforms of
 * filters, input patches and output tiles, and the passes that block them around dnn_gemm.
 *
 * Layouts: a transformed block holds position xi's matrix at xi * xs floats (xs = rows x
 * columns of one position), rows (channels or filters) of `ld` floats, tiles in order along
 * a row. Tiles are numbered over the images of a call: tile g is tile g % T of image g / T
 * (T tiles per image, row-major, ceil(w/2) per row), so one block may span several small
 * images, whose GEMMs then have columns enough.
 */
#include "dnn/conv_winograd.h"

#include "dnn/conv_lower.h"
#include "dnn/vec4.h"

#include <string.h>

static int wino_min(int a, int b)
{
    return a < b ? a : b;
}

bool dnn_conv_winograd_applies(const struct dnn_layer *l)
{
#ifdef DNN_CONV_NO_WINOGRAD
    (void)l;
    return false;
#else
    const struct dnn_layer_spec *s = &l->spec;
    return l->kind == DNN_LAYER_CONVOLUTIONAL && s->size == 3 && s->stride == 1 && s->pad == 1 &&
           dnn_conv_dilation(l) == 1 && s->groups == 1 && !s->antialiasing &&
           l->c >= DNN_WINO_MIN_CHANNELS && s->filters >= DNN_WINO_MIN_FILTERS &&
           (size_t)l->batch * dnn_wino_tiles(l->h, l->w) >= DNN_WINO_MIN_TILES;
#endif
}

size_t dnn_wino_tiles(int h, int w)
{
    return (size_t)((h + 1) / 2) * (size_t)((w + 1) / 2);
}

size_t dnn_wino_delta_acc_floats(int c, int h, int w)
{
    return (size_t)DNN_WINO_XI * (size_t)c * dnn_wino_tiles(h, w);
}

/* Floats a block of tb tiles and kb filters takes: the fixed block (V, or the input delta's
 * sums) of c x tb per position, M (or the delta's V) of kb x tb, and U of kb x c unless the
 * caller transformed the filters (with_u false). */
static size_t wino_block_floats(size_t c, size_t tb, size_t kb, bool with_u)
{
    return (size_t)DNN_WINO_XI * (c * tb + kb * tb + (with_u ? kb * c : 0));
}

size_t dnn_conv_winograd_scratch_floats(const struct dnn_layer *l)
{
    const size_t c = (size_t)l->c, k = (size_t)l->spec.filters;
    const size_t per_image = dnn_wino_tiles(l->h, l->w);
    size_t tiles = 0;
    if (!dnn_mul_size(per_image, (size_t)l->batch, &tiles) || c > (size_t)1 << 24 ||
        per_image > (size_t)1 << 30)
        return 0;
    const size_t tb = tiles < DNN_WINO_TILE_BLOCK ? tiles : DNN_WINO_TILE_BLOCK;
    const size_t kb = k < DNN_WINO_FILTER_BLOCK ? k : DNN_WINO_FILTER_BLOCK;
    const size_t block = wino_block_floats(c, tb, kb, true);
    size_t acc = 0;
    if (!dnn_mul_size((size_t)DNN_WINO_XI * c, per_image, &acc))
        return 0;
    return block > acc ? block : acc;
}

void dnn_wino_blocks(size_t scratch_floats, int c, int k, size_t tiles, size_t tile_block,
                     bool with_u, int *tb, int *kb)
{
    size_t t = tiles < tile_block ? tiles : tile_block;
    const size_t per_pos = scratch_floats / DNN_WINO_XI;
    for (;;) {
        const size_t fixed = (size_t)c * t, per_filter = t + (with_u ? (size_t)c : 0);
        /* per_filter is 0 only for 0 tiles without @with_u, where no pass is made */
        size_t f = per_pos > fixed && per_filter ? (per_pos - fixed) / per_filter : 0;
        if (f >= 1 || t <= 1) {
            *tb = (int)t;
            *kb = f > (size_t)k ? k : (f < 1 ? 1 : (int)f);
            return;
        }
        t /= 2;
    }
}

/* The 16 positions of G g G^T for one 3x3 filter g. */
static void wino_filter_one(const float *g, float u[DNN_WINO_XI])
{
    float t[4][3];
    /* G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 */
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = ((g[j] + g[3 + j]) + g[6 + j]) * 0.5f;
        t[2][j] = ((g[j] - g[3 + j]) + g[6 + j]) * 0.5f;
        t[3][j] = g[6 + j];
    }
    /* (G g) G^T: the same on each row */
    for (int i = 0; i < 4; i++) {
        u[i * 4 + 0] = t[i][0];
        u[i * 4 + 1] = ((t[i][0] + t[i][1]) + t[i][2]) * 0.5f;
        u[i * 4 + 2] = ((t[i][0] - t[i][1]) + t[i][2]) * 0.5f;
        u[i * 4 + 3] = t[i][2];
    }
}

/* Filters transformed before their 16 positions are stored: each position's run of
 * WINO_FILTER_RUN floats fills whole cache lines at once. Stored one filter at a time, the 16
 * positions went k * c floats apart, a power of two in VGG-7 (1 MB for 512 x 512), so their
 * lines shared one cache set and were fetched again for every filter: the transform was 58%
 * of a batch-1 pass. */
#define WINO_FILTER_RUN 16

/* Runs [r0, r1) of WINO_FILTER_RUN filters of the xs = k x c filters of
 * dnn_wino_filter_transform. */
static void wino_filter_runs(const float *weights, size_t xs, size_t r0, size_t r1, float *u)
{
    for (size_t f0 = r0 * WINO_FILTER_RUN; f0 < xs && f0 < r1 * WINO_FILTER_RUN;
         f0 += WINO_FILTER_RUN) {
        const size_t n = xs - f0 < WINO_FILTER_RUN ? xs - f0 : WINO_FILTER_RUN;
        float one[WINO_FILTER_RUN][DNN_WINO_XI];
        for (size_t f = 0; f < n; f++)
            wino_filter_one(weights + (f0 + f) * 9, one[f]);
        for (int xi = 0; xi < DNN_WINO_XI; xi++)
            for (size_t f = 0; f < n; f++)
                u[(size_t)xi * xs + f0 + f] = one[f][xi];
    }
}

void dnn_wino_filter_transform(const float *weights, int k, int c, float *u)
{
    const size_t xs = (size_t)k * (size_t)c;
    wino_filter_runs(weights, xs, 0, (xs + WINO_FILTER_RUN - 1) / WINO_FILTER_RUN, u);
}

/* The position of U that the filter turned 180 degrees has at xi: G reverses with g's rows
 * (rows 1 and 2 of G are palindromes), so rows and columns 0 and 3 swap. */
static int wino_mirror(int xi)
{
    static const int p[4] = {3, 1, 2, 0};
    return p[xi / 4] * 4 + p[xi % 4];
}

/* Input channels [ch0, ch1) of dnn_wino_filter_transform_turned. */
static void wino_filter_turned_channels(const float *weights, int k, int c, int ch0, int ch1,
                                        float *ut)
{
    const size_t xs = (size_t)k * (size_t)c;
    /* filters in the order they are stored to: 16 runs of consecutive floats (stored in
     * the filters' order, the transform's stores went k floats apart: 1.7% of a VGG-7 step) */
    for (int ch = ch0; ch < ch1; ch++)
        for (int r0 = 0; r0 < k; r0 += WINO_FILTER_RUN) {
            const int n = k - r0 < WINO_FILTER_RUN ? k - r0 : WINO_FILTER_RUN;
            float one[WINO_FILTER_RUN][DNN_WINO_XI];
            for (int r = 0; r < n; r++)
                wino_filter_one(weights + ((size_t)(r0 + r) * (size_t)c + (size_t)ch) * 9, one[r]);
            for (int xi = 0; xi < DNN_WINO_XI; xi++) {
                float *dst = ut + (size_t)xi * xs + (size_t)ch * (size_t)k + (size_t)r0;
                for (int r = 0; r < n; r++)
                    dst[r] = one[r][wino_mirror(xi)];
            }
        }
}

void dnn_wino_filter_transform_turned(const float *weights, int k, int c, float *ut)
{
    wino_filter_turned_channels(weights, k, c, 0, c, ut);
}

/* Filters a task of the split transforms takes at least: a 512 x 512 layer's transform
 * (262,144 filters, some 8 ms) in tasks of a few hundred us, far above a run's hand-off. */
#define WINO_FILTER_TASK_MIN 4096

/* One transform split among threads: each task a piece of the runs of filters (forward) or of
 * the input channels (turned). */
struct wino_filter_split {
    const float *weights;
    int k, c;
    float *u;
};

static void wino_filter_range(void *arg, size_t r0, size_t r1)
{
    const struct wino_filter_split *s = arg;
    wino_filter_runs(s->weights, (size_t)s->k * (size_t)s->c, r0, r1, s->u);
}

static void wino_filter_turned_range(void *arg, size_t c0, size_t c1)
{
    const struct wino_filter_split *s = arg;
    wino_filter_turned_channels(s->weights, s->k, s->c, (int)c0, (int)c1, s->u);
}

void dnn_wino_filter_transform_par(const struct dnn_parallel *par, const float *weights, int k,
                                   int c, float *u)
{
    const size_t xs = (size_t)k * (size_t)c, runs = (xs + WINO_FILTER_RUN - 1) / WINO_FILTER_RUN;
    struct wino_filter_split s = {weights, k, c, u};
    dnn_parallel_ranges(par, runs, WINO_FILTER_TASK_MIN / WINO_FILTER_RUN, wino_filter_range, &s);
}

void dnn_wino_filter_transform_turned_par(const struct dnn_parallel *par, const float *weights,
                                          int k, int c, float *ut)
{
    struct wino_filter_split s = {weights, k, c, ut};
    const size_t per_task = k > 0 ? WINO_FILTER_TASK_MIN / (size_t)k : 1;
    dnn_parallel_ranges(par, (size_t)c, per_task ? per_task : 1, wino_filter_turned_range, &s);
}

/* V = B^T d B for tiles tx0 .. tx0+len-1 of tile row ty of one channel im (h, w): position
 * xi of tile x at v[xi * xs + x]. B^T d combines the patch's four rows (d0 - d2, d1 + d2,
 * d2 - d1, d1 - d3), column by column; then the same over each row's four columns, which
 * are columns 2x-1, 2x, 2x+1, 2x+2 of the image: the even ones (e, 2x-1 and 2x+1) and odd
 * ones (o) kept apart so every loop runs over consecutive tiles, four at a time (vec4.h:
 * each lane the scalar tail's operations, so the same bits). */
static void wino_input_segment(const float *im, int h, int w, int ty, int tx0, int len, float *v,
                               size_t xs)
{
    /* DNN_WINO_SEG + 1 columns used, padded to whole vectors */
    float e[4][DNN_WINO_SEG + 4], o[4][DNN_WINO_SEG + 4];
    for (int i = 0; i < 4; i++) {
        const int y = 2 * ty - 1 + i;
        if (y < 0 || y >= h) {
            memset(e[i], 0, sizeof e[i]);
            memset(o[i], 0, sizeof o[i]);
            continue;
        }
        const float *row = im + (size_t)y * (size_t)w;
        /* len + 1 columns, and zeros or true pixels up to the vectors' end */
        for (int j = 0; j < len + 4; j++) {
            const int xe = 2 * (tx0 + j) - 1, xo = xe + 1;
            e[i][j] = xe >= 0 && xe < w ? row[xe] : 0.0f;
            o[i][j] = xo < w ? row[xo] : 0.0f;
        }
    }
    float te[4][DNN_WINO_SEG + 4], to[4][DNN_WINO_SEG + 4];
    int j = 0;
#if DNN_V4
    for (; j <= len; j += DNN_V4_LANES) { /* past len: columns never read */
        const dnn_v4 e0 = dnn_v4_load(e[0] + j), e1 = dnn_v4_load(e[1] + j);
        const dnn_v4 e2 = dnn_v4_load(e[2] + j), e3 = dnn_v4_load(e[3] + j);
        const dnn_v4 o0 = dnn_v4_load(o[0] + j), o1 = dnn_v4_load(o[1] + j);
        const dnn_v4 o2 = dnn_v4_load(o[2] + j), o3 = dnn_v4_load(o[3] + j);
        dnn_v4_store(te[0] + j, e0 - e2);
        dnn_v4_store(te[1] + j, e1 + e2);
        dnn_v4_store(te[2] + j, e2 - e1);
        dnn_v4_store(te[3] + j, e1 - e3);
        dnn_v4_store(to[0] + j, o0 - o2);
        dnn_v4_store(to[1] + j, o1 + o2);
        dnn_v4_store(to[2] + j, o2 - o1);
        dnn_v4_store(to[3] + j, o1 - o3);
    }
#endif
    for (; j <= len; j++) {
        te[0][j] = e[0][j] - e[2][j];
        te[1][j] = e[1][j] + e[2][j];
        te[2][j] = e[2][j] - e[1][j];
        te[3][j] = e[1][j] - e[3][j];
        to[0][j] = o[0][j] - o[2][j];
        to[1][j] = o[1][j] + o[2][j];
        to[2][j] = o[2][j] - o[1][j];
        to[3][j] = o[1][j] - o[3][j];
    }
    for (int i = 0; i < 4; i++) {
        float *v0 = v + (size_t)(i * 4) * xs, *v1 = v0 + xs, *v2 = v1 + xs, *v3 = v2 + xs;
        int x = 0;
#if DNN_V4
        for (; x + DNN_V4_LANES <= len; x += DNN_V4_LANES) {
            const dnn_v4 a = dnn_v4_load(te[i] + x), a1 = dnn_v4_load(te[i] + x + 1);
            const dnn_v4 b = dnn_v4_load(to[i] + x), b1 = dnn_v4_load(to[i] + x + 1);
            dnn_v4_store(v0 + x, a - a1);
            dnn_v4_store(v1 + x, b + a1);
            dnn_v4_store(v2 + x, a1 - b);
            dnn_v4_store(v3 + x, b - b1);
        }
#endif
        for (; x < len; x++) {
            v0[x] = te[i][x] - te[i][x + 1];
            v1[x] = to[i][x] + te[i][x + 1];
            v2[x] = te[i][x + 1] - to[i][x];
            v3[x] = to[i][x] - to[i][x + 1];
        }
    }
}

bool dnn_wino_next_segment(const struct dnn_wino_tiles *tl, size_t *g, struct dnn_wino_seg *s)
{
    const size_t end = tl->g0 + (size_t)tl->nt;
    if (*g >= end)
        return false;
    const size_t per_image = dnn_wino_tiles(tl->h, tl->w), tw = (size_t)(tl->w + 1) / 2;
    const size_t t = *g % per_image;
    size_t len = tw - t % tw;
    if (len > end - *g)
        len = end - *g;
    if (len > DNN_WINO_SEG)
        len = DNN_WINO_SEG;
    s->b = *g / per_image;
    s->j = *g - tl->g0;
    s->ty = (int)(t / tw);
    s->tx0 = (int)(t % tw);
    s->len = (int)len;
    *g += len;
    return true;
}

void dnn_wino_input_transform(const float *in, size_t in_stride, int c0, int c1, int ch,
                              const struct dnn_wino_tiles *tl, float *v)
{
    const size_t xs = (size_t)ch * (size_t)tl->nt, plane = (size_t)tl->h * (size_t)tl->w;
    struct dnn_wino_seg sg;
    for (size_t g = tl->g0; dnn_wino_next_segment(tl, &g, &sg);) {
        for (int c = c0; c < c1; c++)
            wino_input_segment(in + sg.b * in_stride + (size_t)c * plane, tl->h, tl->w, sg.ty,
                               sg.tx0, sg.len, v + (size_t)c * (size_t)tl->nt + sg.j, xs);
    }
}

/* A^T m A of one tile: m0..m15 its positions; y00, y01 (first output row), y10, y11. */
#define WINO_OUTPUT_TILE(T, m, y00, y01, y10, y11)                                                 \
    do {                                                                                           \
        const T a00 = (m[0] + m[4]) + m[8], a01 = (m[1] + m[5]) + m[9];                            \
        const T a02 = (m[2] + m[6]) + m[10], a03 = (m[3] + m[7]) + m[11];                          \
        const T a10 = (m[4] - m[8]) - m[12], a11 = (m[5] - m[9]) - m[13];                          \
        const T a12 = (m[6] - m[10]) - m[14], a13 = (m[7] - m[11]) - m[15];                        \
        y00 = (a00 + a01) + a02;                                                                   \
        y01 = (a01 - a02) - a03;                                                                   \
        y10 = (a10 + a11) + a12;                                                                   \
        y11 = (a11 - a12) - a13;                                                                   \
    } while (0)

/* A^T m A for tiles tx0 .. tx0+len-1 of tile row ty of one channel: position xi of tile x at
 * m[xi * xs + x]; the 2x2 pixels written to (or added into) out (h, w), the rows and
 * columns past the image's edge dropped. Four tiles at a time, as the input's. */
static void wino_output_segment(const float *m, size_t xs, int ty, int tx0, int len, int h, int w,
                                float *out, bool add)
{
    float y[4][DNN_WINO_SEG]; /* y00, y01, y10, y11 of each tile */
    int x = 0;
#if DNN_V4
    for (; x + DNN_V4_LANES <= len; x += DNN_V4_LANES) {
        dnn_v4 mv[DNN_WINO_XI], y00, y01, y10, y11;
        for (int xi = 0; xi < DNN_WINO_XI; xi++)
            mv[xi] = dnn_v4_load(m + (size_t)xi * xs + (size_t)x);
        WINO_OUTPUT_TILE(dnn_v4, mv, y00, y01, y10, y11);
        dnn_v4_store(y[0] + x, y00);
        dnn_v4_store(y[1] + x, y01);
        dnn_v4_store(y[2] + x, y10);
        dnn_v4_store(y[3] + x, y11);
    }
#endif
    for (; x < len; x++) {
        float ms[DNN_WINO_XI];
        for (int xi = 0; xi < DNN_WINO_XI; xi++)
            ms[xi] = m[(size_t)xi * xs + (size_t)x];
        WINO_OUTPUT_TILE(float, ms, y[0][x], y[1][x], y[2][x], y[3][x]);
    }
    const int x0 = 2 * tx0, xn = wino_min(2 * len, w - x0);
    for (int r = 0; r < 2 && 2 * ty + r < h; r++) {
        float *o = out + (size_t)(2 * ty + r) * (size_t)w + (size_t)x0;
        const float *ya = y[2 * r], *yb = y[2 * r + 1];
        if (add) {
            for (int c = 0; c < xn; c++)
                o[c] += (c & 1) ? yb[c / 2] : ya[c / 2];
        } else {
            for (int c = 0; c < xn; c++)
                o[c] = (c & 1) ? yb[c / 2] : ya[c / 2];
        }
    }
}

/* Rows [0, rows) of the transformed block m (16, rows, ld: position xi at xi * xs) back to
 * channels 0 .. rows-1 of images (rows, h, w) out_stride apart. */
static void wino_output_transform(const float *m, size_t xs, size_t ld, int rows,
                                  const struct dnn_wino_tiles *tl, float *out, size_t out_stride,
                                  bool add)
{
    const size_t plane = (size_t)tl->h * (size_t)tl->w;
    struct dnn_wino_seg sg;
    for (size_t g = tl->g0; dnn_wino_next_segment(tl, &g, &sg);) {
        for (int r = 0; r < rows; r++)
            wino_output_segment(m + (size_t)r * ld + sg.j, xs, sg.ty, sg.tx0, sg.len, tl->h, tl->w,
                                out + sg.b * out_stride + (size_t)r * plane, add);
    }
}

/* M[xi] = U[xi] (kn x c, rows c apart, positions uxs apart) * V[xi] (c x nt), then the
 * output transform into filters k0 .. k0+kn-1 of the images. */
static void wino_forward_block(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                               const float *u, size_t uxs, int k0, int kn, const float *v,
                               const struct dnn_wino_tiles *tl, float *m, float *out,
                               size_t out_stride)
{
    const int nt = tl->nt;
    for (int xi = 0; xi < DNN_WINO_XI; xi++)
        dnn_gemm_par(par, false, false, kn, nt, cv->c, 1, u + (size_t)xi * uxs, cv->c,
                     v + (size_t)xi * (size_t)cv->c * (size_t)nt, nt, 0,
                     m + (size_t)xi * (size_t)kn * (size_t)nt, nt);
    wino_output_transform(m, (size_t)kn * (size_t)nt, (size_t)nt, kn, tl,
                          out + (size_t)k0 * (size_t)cv->h * (size_t)cv->w, out_stride, false);
}

void dnn_wino_forward(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                      const float *in, size_t in_stride, int images, float *out, size_t out_stride,
                      float *scratch, size_t scratch_floats)
{
    const size_t tiles = dnn_wino_tiles(cv->h, cv->w) * (size_t)images;
    int tb = 0, kb = 0;
    dnn_wino_blocks(scratch_floats, cv->c, cv->k, tiles, DNN_WINO_TILE_BLOCK, !cv->u, &tb, &kb);
    float *v = scratch;
    float *m = v + (size_t)DNN_WINO_XI * (size_t)cv->c * (size_t)tb;
    float *ub = m + (size_t)DNN_WINO_XI * (size_t)kb * (size_t)tb;
    struct dnn_wino_tiles tl = {.h = cv->h, .w = cv->w};
    if (cv->u) {
        /* filters transformed once: each block of tiles transformed once, all filters */
        for (tl.g0 = 0; tl.g0 < tiles; tl.g0 += (size_t)tb) {
            tl.nt = (int)(tiles - tl.g0 < (size_t)tb ? tiles - tl.g0 : (size_t)tb);
            dnn_wino_input_transform(in, in_stride, 0, cv->c, cv->c, &tl, v);
            for (int k0 = 0; k0 < cv->k; k0 += kb)
                wino_forward_block(cv, par, cv->u + (size_t)k0 * (size_t)cv->c,
                                   (size_t)cv->k * (size_t)cv->c, k0, wino_min(kb, cv->k - k0), v,
                                   &tl, m, out, out_stride);
        }
        return;
    }
    /* each block of filters transformed once, the tiles again per block (a streamed tile
     * has few filters: mostly one block) */
    for (int k0 = 0; k0 < cv->k; k0 += kb) {
        const int kn = wino_min(kb, cv->k - k0);
        dnn_wino_filter_transform(cv->weights + (size_t)k0 * (size_t)cv->c * 9, kn, cv->c, ub);
        for (tl.g0 = 0; tl.g0 < tiles; tl.g0 += (size_t)tb) {
            tl.nt = (int)(tiles - tl.g0 < (size_t)tb ? tiles - tl.g0 : (size_t)tb);
            dnn_wino_input_transform(in, in_stride, 0, cv->c, cv->c, &tl, v);
            wino_forward_block(cv, par, ub, (size_t)kn * (size_t)cv->c, k0, kn, v, &tl, m, out,
                               out_stride);
        }
    }
}

/* acc[xi] (c x nt, rows ldacc apart) (+)= Ut[xi] (c x kn, rows ldu apart) * Vd[xi] (kn x nt):
 * the turned filters' share of the input delta's transform. Ut is transposed once (the
 * turned transform's layout) so that the product is NN, 25-30% faster than TN on these
 * shapes (`bench_dnn gemm-size`: 512x64x512 72.6 against 55.8 GFLOP/s). */
static void wino_delta_block(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                             const float *ut, size_t uxs, int ldu, int kn, const float *vd, int nt,
                             bool overwrite, float *acc, size_t acc_xs, int ldacc)
{
    for (int xi = 0; xi < DNN_WINO_XI; xi++)
        dnn_gemm_par(par, false, false, cv->c, nt, kn, 1, ut + (size_t)xi * uxs, ldu,
                     vd + (size_t)xi * (size_t)kn * (size_t)nt, nt, overwrite ? 0 : 1,
                     acc + (size_t)xi * acc_xs, ldacc);
}

void dnn_wino_input_delta(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                          const float *delta, size_t delta_stride, int images, float *in_delta,
                          size_t in_stride, float *scratch, size_t scratch_floats)
{
    const size_t tiles = dnn_wino_tiles(cv->h, cv->w) * (size_t)images;
    const size_t plane = (size_t)cv->h * (size_t)cv->w;
    int tb = 0, kb = 0;
    dnn_wino_blocks(scratch_floats, cv->c, cv->k, tiles, DNN_WINO_TILE_BLOCK, !cv->ut, &tb, &kb);
    float *acc = scratch;
    float *vd = acc + (size_t)DNN_WINO_XI * (size_t)cv->c * (size_t)tb;
    float *ub = vd + (size_t)DNN_WINO_XI * (size_t)kb * (size_t)tb;
    struct dnn_wino_tiles tl = {.h = cv->h, .w = cv->w};
    for (tl.g0 = 0; tl.g0 < tiles; tl.g0 += (size_t)tb) {
        tl.nt = (int)(tiles - tl.g0 < (size_t)tb ? tiles - tl.g0 : (size_t)tb);
        /* the sum over filters in increasing order, block after block */
        for (int k0 = 0; k0 < cv->k; k0 += kb) {
            const int kn = wino_min(kb, cv->k - k0);
            const float *ut = cv->ut ? cv->ut + k0 : ub;
            const int ldu = cv->ut ? cv->k : kn;
            if (!cv->ut)
                dnn_wino_filter_transform_turned(cv->weights + (size_t)k0 * (size_t)cv->c * 9, kn,
                                                 cv->c, ub);
            dnn_wino_input_transform(delta + (size_t)k0 * plane, delta_stride, 0, kn, kn, &tl, vd);
            wino_delta_block(cv, par, ut, (size_t)ldu * (size_t)cv->c, ldu, kn, vd, tl.nt, k0 == 0,
                             acc, (size_t)cv->c * (size_t)tl.nt, tl.nt);
        }
        wino_output_transform(acc, (size_t)cv->c * (size_t)tl.nt, (size_t)tl.nt, cv->c, &tl,
                              in_delta, in_stride, true);
    }
}

void dnn_wino_delta_accumulate(const struct dnn_wino_conv *cv, const float *delta,
                               size_t delta_stride, int images, bool first, float *acc,
                               size_t acc_stride, float *scratch, size_t scratch_floats)
{
    const size_t per_image = dnn_wino_tiles(cv->h, cv->w);
    const size_t plane = (size_t)cv->h * (size_t)cv->w;
    const size_t acc_xs = (size_t)cv->c * per_image;
    int tb = 0, kb = 0;
    /* no sums of their own (acc is the caller's): the blocks' figure only over-reserves */
    dnn_wino_blocks(scratch_floats, cv->c, cv->k, per_image, DNN_WINO_TILE_BLOCK, true, &tb, &kb);
    float *vd = scratch;
    float *ub = vd + (size_t)DNN_WINO_XI * (size_t)kb * (size_t)tb;
    struct dnn_wino_tiles tl = {.h = cv->h, .w = cv->w};
    for (int k0 = 0; k0 < cv->k; k0 += kb) {
        const int kn = wino_min(kb, cv->k - k0);
        dnn_wino_filter_transform_turned(cv->weights + (size_t)k0 * (size_t)cv->c * 9, kn, cv->c,
                                         ub);
        for (int b = 0; b < images; b++) {
            for (tl.g0 = 0; tl.g0 < per_image; tl.g0 += (size_t)tb) {
                tl.nt = (int)(per_image - tl.g0 < (size_t)tb ? per_image - tl.g0 : (size_t)tb);
                dnn_wino_input_transform(delta + (size_t)b * delta_stride + (size_t)k0 * plane, 0,
                                         0, kn, kn, &tl, vd);
                wino_delta_block(cv, NULL, ub, (size_t)kn * (size_t)cv->c, kn, kn, vd, tl.nt,
                                 first && k0 == 0, acc + (size_t)b * acc_stride + tl.g0, acc_xs,
                                 (int)per_image);
            }
        }
    }
}

void dnn_wino_delta_fold(int c, int h, int w, const float *acc, size_t acc_stride, int images,
                         float *in_delta, size_t in_stride)
{
    const size_t per_image = dnn_wino_tiles(h, w);
    const struct dnn_wino_tiles tl = {.h = h, .w = w, .g0 = 0, .nt = (int)per_image};
    for (int b = 0; b < images; b++)
        wino_output_transform(acc + (size_t)b * acc_stride, (size_t)c * per_image, per_image, c,
                              &tl, in_delta + (size_t)b * in_stride, 0, true);
}
