/*
 * conv_winograd_grad.c - the weight gradient of a 3x3 stride-1 pad-1 convolution by Winograd's
 * F(2x2, 3x3) (conv_winograd.h), for the layers whose forward pass takes that path.
 *
 * Forward, each 2x2 tile of output pixels is Y = A^T M A with M = U (.) V, U = G g G^T and
 * V = B^T d B. So, for the tile's output delta dY (2x2, zero past the image's edge), the delta
 * of M is dM = A dY A^T, and the delta of U, summed over the tiles t, is at each position xi
 *   dU[xi] (filters x channels) = sum_t dM_t[xi] V_t[xi]  =  dM[xi] (filters x tiles) V[xi]^T,
 * 16 products of 16 multiply-adds per tile, filter and channel where im2col's product spends
 * 4 x 9 = 36. The filter's delta is dg = G^T dU G, added into the weight updates.
 *
 * The bits: the transforms are element-wise, and dnn_gemm adds each call's terms straight into
 * C in increasing order, so every element of dU gets its tiles' terms in increasing tile order
 * whatever the blocks of tiles or filters (and whatever the threads: they split positions,
 * channels and filters, never tiles). A block of filters (a streamed tile's rows) thus gets the
 * bits of the whole layer's gradient, in the normal world and the TA. They differ from im2col's
 * product in the last bits, as the forward pass does.
 */
#include "dnn/conv_winograd.h"

#include "dnn/conv_lower.h"
#include "dnn/vec4.h"

#include <string.h>

/* Tiles per block of the products: K of each of the 16 products dM[xi] V[xi]^T, whose C (one
 * position's dU, filters x channels) is read and written once per block. The forward pass's
 * DNN_WINO_TILE_BLOCK: `bench_dnn gemm-size NT` gave 128x128 and 512x512 products 104 and 103
 * GFLOP/s at K = 64 (98 for a VGG-7 layer's im2col product), and VGG-7's backward pass took
 * the same time at 64, 128 and 256 tiles (`bench_dnn layers`, 3 alternated runs). */
#define WINO_GRAD_TILE_BLOCK DNN_WINO_TILE_BLOCK

/* Least tiles per block that dnn_wino_weight_gradient gives up for a block of all filters. */
#define WINO_GRAD_MIN_TILES 16

/* Least channels or filters per task of the split transforms: 32 channels of a block of 64
 * tiles are some 40 us of V (VGG-7's step spends about 18 ns on a channel of a tile). */
#define WINO_GRAD_TASK_MIN 32

/* dM = A dY A^T for tiles tx0 .. tx0+len-1 of tile row ty of one delta channel dy (h, w):
 * position xi of tile x at m[xi * xs + x]. A dY's rows are y0, y0 + y1, y0 - y1, -y1 of the
 * tile's rows y0, y1; the same again over each row's two columns. The columns 2x and 2x+1 of
 * each row are gathered apart (e, o) so that the loops run over consecutive tiles, four at a
 * time (vec4.h: each lane the scalar tail's operations, so the same bits). */
static void wino_delta_tile_segment(const float *dy, int h, int w, int ty, int tx0, int len,
                                    float *m, size_t xs)
{
    float e[2][DNN_WINO_SEG], o[2][DNN_WINO_SEG];
    for (int r = 0; r < 2; r++) {
        const int y = 2 * ty + r;
        if (y >= h) {
            memset(e[r], 0, sizeof e[r]);
            memset(o[r], 0, sizeof o[r]);
            continue;
        }
        const float *row = dy + (size_t)y * (size_t)w;
        for (int j = 0; j < len; j++) {
            const int xe = 2 * (tx0 + j), xo = xe + 1;
            e[r][j] = xe < w ? row[xe] : 0.0f;
            o[r][j] = xo < w ? row[xo] : 0.0f;
        }
    }
    int x = 0;
#if DNN_V4
    for (; x + DNN_V4_LANES <= len; x += DNN_V4_LANES) {
        const dnn_v4 e0 = dnn_v4_load(e[0] + x), e1 = dnn_v4_load(e[1] + x);
        const dnn_v4 o0 = dnn_v4_load(o[0] + x), o1 = dnn_v4_load(o[1] + x);
        const dnn_v4 pe[4] = {e0, e0 + e1, e0 - e1, -e1}, po[4] = {o0, o0 + o1, o0 - o1, -o1};
        for (int i = 0; i < 4; i++) {
            float *mi = m + (size_t)(4 * i) * xs + (size_t)x;
            dnn_v4_store(mi, pe[i]);
            dnn_v4_store(mi + xs, pe[i] + po[i]);
            dnn_v4_store(mi + 2 * xs, pe[i] - po[i]);
            dnn_v4_store(mi + 3 * xs, -po[i]);
        }
    }
#endif
    for (; x < len; x++) {
        const float e0 = e[0][x], e1 = e[1][x], o0 = o[0][x], o1 = o[1][x];
        const float pe[4] = {e0, e0 + e1, e0 - e1, -e1}, po[4] = {o0, o0 + o1, o0 - o1, -o1};
        for (int i = 0; i < 4; i++) {
            float *mi = m + (size_t)(4 * i) * xs + (size_t)x;
            mi[0] = pe[i];
            mi[xs] = pe[i] + po[i];
            mi[2 * xs] = pe[i] - po[i];
            mi[3 * xs] = -po[i];
        }
    }
}

/* dM (16, ch, nt) of the tiles of tl from deltas (ch, h, w) delta_stride floats apart, for
 * channels [c0, c1) only: position xi of channel c's tile j at m[xi * ch * nt + c * nt + j]. */
static void wino_delta_tile_transform(const float *delta, size_t delta_stride, int c0, int c1,
                                      int ch, const struct dnn_wino_tiles *tl, float *m)
{
    const size_t xs = (size_t)ch * (size_t)tl->nt, plane = (size_t)tl->h * (size_t)tl->w;
    struct dnn_wino_seg sg;
    for (size_t g = tl->g0; dnn_wino_next_segment(tl, &g, &sg);) {
        for (int c = c0; c < c1; c++)
            wino_delta_tile_segment(delta + sg.b * delta_stride + (size_t)c * plane, tl->h, tl->w,
                                    sg.ty, sg.tx0, sg.len, m + (size_t)c * (size_t)tl->nt + sg.j,
                                    xs);
    }
}

/* dw (3x3) += G^T du G for one filter and channel, du its 16 positions. G^T's rows combine
 * du's rows as u0 + (u1 + u2) / 2, (u1 - u2) / 2, (u1 + u2) / 2 + u3; then the same over
 * each row's columns. */
static void wino_grad_filter_one(const float du[DNN_WINO_XI], float *dw)
{
    float t[3][4];
    for (int j = 0; j < 4; j++) {
        const float s = (du[4 + j] + du[8 + j]) * 0.5f;
        t[0][j] = du[j] + s;
        t[1][j] = (du[4 + j] - du[8 + j]) * 0.5f;
        t[2][j] = s + du[12 + j];
    }
    for (int i = 0; i < 3; i++) {
        const float s = (t[i][1] + t[i][2]) * 0.5f;
        dw[i * 3 + 0] += t[i][0] + s;
        dw[i * 3 + 1] += (t[i][1] - t[i][2]) * 0.5f;
        dw[i * 3 + 2] += s + t[i][3];
    }
}

/* (filter, channel) pairs gathered from their 16 positions at once: each position's run fills
 * whole cache lines (the positions lie xs floats apart, a power of two in VGG-7's layers, so
 * one pair at a time would fetch 16 lines of one cache set per pair). */
#define WINO_GRAD_RUN 16

/* dw[p * 9 ..] += G^T du G for pairs p in [p0, p1) of du (16, pairs: position xi at xi * xs). */
static void wino_grad_filter_pairs(const float *du, size_t xs, size_t p0, size_t p1, float *dw)
{
    for (size_t f0 = p0; f0 < p1; f0 += WINO_GRAD_RUN) {
        const size_t n = p1 - f0 < WINO_GRAD_RUN ? p1 - f0 : WINO_GRAD_RUN;
        float one[WINO_GRAD_RUN][DNN_WINO_XI];
        for (int xi = 0; xi < DNN_WINO_XI; xi++)
            for (size_t f = 0; f < n; f++)
                one[f][xi] = du[(size_t)xi * xs + f0 + f];
        for (size_t f = 0; f < n; f++)
            wino_grad_filter_one(one[f], dw + (f0 + f) * 9);
    }
}

/* One block of filters' gradient, shared among the tasks of its phases. */
struct wino_grad_block {
    int c, kn;               /* input channels; filters of the block */
    const float *in, *delta; /* images; the block's first filter's delta */
    size_t in_stride, delta_stride;
    struct dnn_wino_tiles tl; /* the block of tiles of the phases below */
    float *v, *dm, *du, *dw;  /* V (16, c, nt), dM (16, kn, nt), dU (16, kn, c), dw (kn, c, 9) */
};

/* Items [i0, i1) of a block of tiles' transforms: the c channels of V, then the kn filters of
 * dM. */
static void wino_grad_transform_range(void *arg, size_t i0, size_t i1)
{
    const struct wino_grad_block *b = arg;
    const size_t c = (size_t)b->c;
    if (i0 < c)
        dnn_wino_input_transform(b->in, b->in_stride, (int)i0, (int)(i1 < c ? i1 : c), b->c, &b->tl,
                                 b->v);
    if (i1 > c)
        wino_delta_tile_transform(b->delta, b->delta_stride, (int)(i0 > c ? i0 - c : 0),
                                  (int)(i1 - c), b->kn, &b->tl, b->dm);
}

/* dU[xi] (kn x c) += dM[xi] (kn x nt) * V[xi]^T for one position xi. */
static void wino_grad_product(void *arg, size_t xi)
{
    const struct wino_grad_block *b = arg;
    const size_t nt = (size_t)b->tl.nt, c = (size_t)b->c, kn = (size_t)b->kn;
    dnn_conv_weight_product(NULL, b->kn, b->c, b->tl.nt, b->dm + xi * kn * nt, b->tl.nt,
                            b->v + xi * c * nt, b->tl.nt, b->du + xi * kn * c, b->c);
}

/* Pairs [p0, p1) of dw += G^T dU G. */
static void wino_grad_filter_range(void *arg, size_t p0, size_t p1)
{
    const struct wino_grad_block *b = arg;
    wino_grad_filter_pairs(b->du, (size_t)b->kn * (size_t)b->c, p0, p1, b->dw);
}

void dnn_wino_weight_gradient_blocks(size_t scratch_floats, int c, int k, size_t tiles,
                                     bool with_acc, int *tb, int *kb)
{
    dnn_wino_blocks(scratch_floats, c, k, tiles, WINO_GRAD_TILE_BLOCK, !with_acc, tb, kb);
    /* with the sums outside the scratch: fewer tiles per block (down to WINO_GRAD_MIN_TILES)
     * rather than V transformed again for each block of filters (VGG-7's 512 x 512 layer:
     * 7 ms a step) */
    for (int half = *tb / 2; with_acc && *kb < k && half >= WINO_GRAD_MIN_TILES; half = *tb / 2)
        dnn_wino_blocks(scratch_floats, c, k, tiles, (size_t)half, false, tb, kb);
}

void dnn_wino_weight_gradient(const struct dnn_wino_conv *cv, const struct dnn_parallel *par,
                              const float *in, size_t in_stride, const float *delta,
                              size_t delta_stride, int images, float *dw, float *acc,
                              float *scratch, size_t scratch_floats)
{
    const size_t tiles = dnn_wino_tiles(cv->h, cv->w) * (size_t)images;
    const size_t plane = (size_t)cv->h * (size_t)cv->w;
    int tb = 0, kb = 0;
    dnn_wino_weight_gradient_blocks(scratch_floats, cv->c, cv->k, tiles, acc != NULL, &tb, &kb);
    struct wino_grad_block b = {
        .c = cv->c, .in = in, .in_stride = in_stride, .delta_stride = delta_stride};
    b.v = scratch;
    b.dm = b.v + (size_t)DNN_WINO_XI * (size_t)cv->c * (size_t)tb;
    b.tl.h = cv->h;
    b.tl.w = cv->w;
    for (int k0 = 0; k0 < cv->k; k0 += kb) {
        b.kn = cv->k - k0 < kb ? cv->k - k0 : kb;
        b.du = acc ? acc : b.dm + (size_t)DNN_WINO_XI * (size_t)kb * (size_t)tb;
        b.delta = delta + (size_t)k0 * plane;
        b.dw = dw + (size_t)k0 * (size_t)cv->c * 9;
        const size_t pairs = (size_t)b.kn * (size_t)cv->c;
        memset(b.du, 0, (size_t)DNN_WINO_XI * pairs * sizeof(float));
        /* the tiles in order: each element of dU sums them so, whatever tb and kb are */
        for (b.tl.g0 = 0; b.tl.g0 < tiles; b.tl.g0 += (size_t)tb) {
            b.tl.nt = (int)(tiles - b.tl.g0 < (size_t)tb ? tiles - b.tl.g0 : (size_t)tb);
            dnn_parallel_ranges(par, (size_t)cv->c + (size_t)b.kn, WINO_GRAD_TASK_MIN,
                                wino_grad_transform_range, &b);
            dnn_parallel_for(par, DNN_WINO_XI, wino_grad_product, &b);
        }
        dnn_parallel_ranges(par, pairs, WINO_GRAD_TASK_MIN * WINO_GRAD_RUN, wino_grad_filter_range,
                            &b);
    }
}
