/* Winograd F(2x2, 3x3) for stride-1 3x3 convolutions, NHWC/HWIO.
 *
 * A 2x2 block of outputs of one map is Y = A^T [ sum_c (G g_c G^T) (.) (B^T d_c B) ] A,
 * where d_c is the 4x4 input window of channel c and g_c the 3x3 kernel
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * 2016). Over all channels that is 16 independent products
 *     M_xi (tiles, F) = V_xi (tiles, C) . U_xi (C, F),   xi = 0..15,
 * with 16 multiplications per 4 outputs and input channel where the direct
 * convolution needs 36: 2.25 times less arithmetic, less the tiles' overhang
 * at odd output sizes. The transforms are additions and halvings only
 * (points 0, 1, -1, infinity), so the result differs from the direct sum by
 * a few float roundings, well inside the 1e-5 the Keras checks ask.
 *
 * Tiles go in blocks of TILE_BLOCK so that a block's transformed input and
 * products stay in L1/L2 while the kernel reads them; U (16*C*F floats) is
 * transformed once per forward call. One sample at a time, so the result
 * of an image never depends on the batch or the thread count. */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

#ifndef TILE_BLOCK
#define TILE_BLOCK 16
#endif

int cnnviz_winograd_usable(int kh, int kw, int sh, int sw, int C, int F, int OH, int OW) {
    if (kh != 3 || kw != 3 || sh != 1 || sw != 1 || C % 16 || F % 16 || OH < 2 || OW < 2) return 0;
    /* worth it when the tiles' overhang leaves at least 1.5x less arithmetic */
    long th = (OH + 1) / 2, tw = (OW + 1) / 2;
    return 9L * OH * OW * 2 >= 3L * 16 * th * tw;
}

size_t cnnviz_winograd_weight_floats(int C, int F) { return (size_t)16 * C * F; }

/* Planes of a block are padded by a vector: at a multiple of 4 KiB apart
 * the sixteen streams of a transform would fight over the same L1 sets. */
static size_t plane(int n) { return (size_t)TILE_BLOCK * n + 16; }

size_t cnnviz_winograd_block_floats(int C, int F) { return 16 * (plane(C) + plane(F)); }

/* U[xi][c][f] = (G g G^T)[xi] for the kernel w (3, 3, C, F), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
CNNVIZ_HOT
void cnnviz_winograd_weights(const float *restrict w, int C, int F, float *restrict u) {
    size_t cf = (size_t)C * F;
    for (int c = 0; c < C; c++)
        for (int f = 0; f < F; f += 16) {
            cnnviz_v16 g[3][3], s[4][3];
            for (int k = 0; k < 3; k++)
                for (int l = 0; l < 3; l++) g[k][l] = *(const cnnviz_v16u *)(w + (size_t)(k * 3 + l) * cf + c * F + f);
            for (int l = 0; l < 3; l++) {
                s[0][l] = g[0][l];
                s[1][l] = 0.5f * (g[0][l] + g[1][l] + g[2][l]);
                s[2][l] = 0.5f * (g[0][l] - g[1][l] + g[2][l]);
                s[3][l] = g[2][l];
            }
            for (int i = 0; i < 4; i++) {
                cnnviz_v16 v[4] = {s[i][0], 0.5f * (s[i][0] + s[i][1] + s[i][2]), 0.5f * (s[i][0] - s[i][1] + s[i][2]),
                                   s[i][2]};
                for (int j = 0; j < 4; j++) *(cnnviz_v16u *)(u + (size_t)(i * 4 + j) * cf + c * F + f) = v[j];
            }
        }
}

/* The sample kernel, once for AVX-512's 16-float vectors and once for
 * AVX2's 8-float ones (winograd2-kernel.h); both give the same bits. */
#define WK_V cnnviz_v16
#define WK_VU cnnviz_v16u
#define WK_VI cnnviz_v16i
#define WK_L 16
#define WK_NV 4
#define WK_NAME(x) x##_v16
#include "winograd2-kernel.h"

#define WK_V cnnviz_v8
#define WK_VU cnnviz_v8u
#define WK_VI cnnviz_v8i
#define WK_L 8
#define WK_NV 2
#define WK_NAME(x) x##_v8
#include "winograd2-kernel.h"

void cnnviz_winograd_sample(const float *in, int H, int W, int C, int pad_top, int pad_left, const float *u,
                            const float *bias, int relu, float *out, int OH, int OW, int F, int NH, int NW,
                            float *block) {
    if (cnnviz_wide_vectors())
        sample_v16(in, H, W, C, pad_top, pad_left, u, bias, relu, out, OH, OW, F, NH, NW, block);
    else
        sample_v8(in, H, W, C, pad_top, pad_left, u, bias, relu, out, OH, OW, F, NH, NW, block);
    /* the rows and columns not made */
    for (int y = 0; y < OH; y++)
        if (y >= NH)
            memset(out + (size_t)y * OW * F, 0, (size_t)OW * F * sizeof *out);
        else if (NW < OW)
            memset(out + ((size_t)y * OW + NW) * F, 0, (size_t)(OW - NW) * F * sizeof *out);
}

/* --- F(3x3, 3x3) ----------------------------------------------------------
 *
 * The same scheme with 3x3 blocks of outputs from 5x5 windows, points 0, 1,
 * -1, 2 and infinity: 25 multiplications per 9 outputs and input channel
 * where the direct convolution needs 81, 3.24 times less. The transforms
 * now have thirds and sixths; against a float64 sum the result is off by
 * a few 1e-6 of the largest output (F(2x2, 3x3): a few 1e-7).
 *     B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
 *     G   = [1/2 0 0; -1/2 -1/2 -1/2; -1/6 1/6 -1/6; 1/6 1/3 2/3; 0 0 1]
 *     A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 1]
 * It is made for the layers where a 3x3 output is all there is (the seed
 * net's third conv, 5x5 -> 3x3, one block a sample), and it has a
 * backward: the gradients of the Winograd forward itself, with the
 * transforms transposed,
 *     dM = A dY A^T,  dV_c = sum_f U_cf (.) dM_f,  dX = B dV B^T,
 *     dU_cf = sum over blocks V_c (.) dM_f,  dW = G^T dU G,
 * so the products are again 25 (C x F) matrix products per block row set.
 * Rows of those products are the blocks of all the samples of a call, so
 * a micro-batch of 8 samples with one block each makes 8-row products. */

int cnnviz_winograd3_usable(int kh, int kw, int sh, int sw, int C, int F, int OH, int OW) {
    if (kh != 3 || kw != 3 || sh != 1 || sw != 1 || C % 16 || F % 16 || OH < 3 || OW < 3) return 0;
    long th = (OH + 2) / 3, tw = (OW + 2) / 3, t2h = (OH + 1) / 2, t2w = (OW + 1) / 2;
    /* at least 2x less arithmetic than direct, and less than F(2x2, 3x3) */
    return 9L * OH * OW >= 2L * 25 * th * tw && 25L * th * tw < 16L * t2h * t2w;
}

/* U's, UT's and dU's planes of C*F floats are padded by a vector: 16 KiB
 * apart (64 x 64 maps) the 25 streams of a transform would share one set
 * of L1 lines */
static size_t uplane(int C, int F) { return (size_t)C * F + 16; }

size_t cnnviz_winograd3_weight_floats(int C, int F) { return 50 * uplane(C, F) + (size_t)9 * C * F; }

size_t cnnviz_winograd3_du_floats(int C, int F) { return 25 * uplane(C, F); }

size_t cnnviz_winograd3_block_floats(int C, int F) { return 25 * (plane(C) + plane(F)); }

/* one 1-D transform of five (B^T) or three (G, A^T) vectors and their transposes */
#define W3_BT(o, d)                                                                                                    \
    (o)[0] = 2.0f * ((d)[0] - (d)[2]) - (d)[1] + (d)[3], (o)[1] = (d)[3] - (d)[2] - 2.0f * (d)[1],                     \
    (o)[2] = 2.0f * (d)[1] - 3.0f * (d)[2] + (d)[3], (o)[3] = (d)[3] - (d)[1],                                         \
    (o)[4] = 2.0f * ((d)[1] - (d)[3]) - (d)[2] + (d)[4]
#define W3_B(o, v)                                                                                                     \
    (o)[0] = 2.0f * (v)[0], (o)[1] = 2.0f * ((v)[2] - (v)[1] + (v)[4]) - (v)[0] - (v)[3],                              \
    (o)[2] = -2.0f * (v)[0] - (v)[1] - 3.0f * (v)[2] - (v)[4],                                                        \
    (o)[3] = (v)[0] + (v)[1] + (v)[2] + (v)[3] - 2.0f * (v)[4], (o)[4] = (v)[4]
#define W3_G(o, g)                                                                                                     \
    (o)[0] = 0.5f * (g)[0], (o)[1] = -0.5f * ((g)[0] + (g)[1] + (g)[2]),                                              \
    (o)[2] = ((g)[1] - (g)[0] - (g)[2]) * (1.0f / 6.0f),                                                               \
    (o)[3] = ((g)[0] + 2.0f * (g)[1] + 4.0f * (g)[2]) * (1.0f / 6.0f), (o)[4] = (g)[2]
#define W3_GT(o, u)                                                                                                    \
    (o)[0] = 0.5f * ((u)[0] - (u)[1]) + ((u)[3] - (u)[2]) * (1.0f / 6.0f),                                            \
    (o)[1] = (u)[2] * (1.0f / 6.0f) + (u)[3] * (1.0f / 3.0f) - 0.5f * (u)[1],                                         \
    (o)[2] = (u)[4] - 0.5f * (u)[1] - (u)[2] * (1.0f / 6.0f) + (u)[3] * (2.0f / 3.0f)
#define W3_AT(o, m)                                                                                                    \
    (o)[0] = (m)[0] + (m)[1] + (m)[2] + (m)[3], (o)[1] = (m)[1] - (m)[2] + 2.0f * (m)[3],                              \
    (o)[2] = (m)[1] + (m)[2] + 4.0f * (m)[3] + (m)[4]
#define W3_A(o, y)                                                                                                     \
    (o)[0] = (y)[0], (o)[1] = (y)[0] + (y)[1] + (y)[2], (o)[2] = (y)[0] - (y)[1] + (y)[2],                             \
    (o)[3] = (y)[0] + 2.0f * (y)[1] + 4.0f * (y)[2], (o)[4] = (y)[2]

/* block (ty, tx) of sample b among the rows of a call */
typedef struct {
    int b, y0, x0;
} w3_row;

static w3_row w3_row_at(int r, int TH, int TW) {
    int t = TH * TW;
    return (w3_row){r / t, (r % t) / TW * 3, (r % t) % TW * 3};
}

/* The F(3x3, 3x3) kernels in 16-float (AVX-512) and 8-float (AVX2)
 * vectors (winograd3-kernel.h); both give the same bits. */
#define W3_V cnnviz_v16
#define W3_VU cnnviz_v16u
#define W3_VI cnnviz_v16i
#define W3_L 16
#define W3_WR 8
#define W3_NAME(x) x##_v16
#include "winograd3-kernel.h"

#define W3_V cnnviz_v8
#define W3_VU cnnviz_v8u
#define W3_VI cnnviz_v8i
#define W3_L 8
#define W3_WR 6
#define W3_NAME(x) x##_v8
#include "winograd3-kernel.h"

static void w3_transform(const float *restrict w, int C, int F, float *restrict u) {
    if (cnnviz_wide_vectors())
        w3_transform_v16(w, C, F, u);
    else
        w3_transform_v8(w, C, F, u);
}

/* U, then its transpose UT[xi][f][c] as the transform of the transposed
 * kernel (9 (F, C) planes, a third of UT's floats to move), the two on
 * two threads where there are: this runs between the parallel passes */
void cnnviz_winograd3_weights(const float *restrict w, int C, int F, float *restrict u) {
    size_t cf = (size_t)C * F;
    float *ut = u + 25 * uplane(C, F), *wt = u + 50 * uplane(C, F);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads() < 2 ? 1 : 2;
#endif
    #pragma omp parallel sections num_threads(threads)
    {
        #pragma omp section
        w3_transform(w, C, F, u);
        #pragma omp section
        {
            for (int k = 0; k < 9; k++)
                for (int c0 = 0; c0 < C; c0 += 16)
                    for (int f = 0; f < F; f++)
                        for (int c = c0; c < c0 + 16; c++)
                            wt[k * cf + (size_t)f * C + c] = w[k * cf + (size_t)c * F + f];
            w3_transform(wt, F, C, ut);
        }
    }
}

void cnnviz_winograd3_forward(const float *in, int nb, int H, int W, int C, int pad_top, int pad_left,
                              const float *u, const float *bias, int relu, float *out, int OH, int OW, int F,
                              float *block) {
    if (cnnviz_wide_vectors())
        forward_v16(in, nb, H, W, C, pad_top, pad_left, u, bias, relu, out, OH, OW, F, block);
    else
        forward_v8(in, nb, H, W, C, pad_top, pad_left, u, bias, relu, out, OH, OW, F, block);
}

void cnnviz_winograd3_backward(const float *in, const float *dz, int nb, int H, int W, int C, int pad_top,
                               int pad_left, const float *u, float *din, float *du, int du_fresh, int OH, int OW,
                               int F, float *block) {
    if (cnnviz_wide_vectors())
        backward_v16(in, dz, nb, H, W, C, pad_top, pad_left, u, din, du, du_fresh, OH, OW, F, block);
    else
        backward_v8(in, dz, nb, H, W, C, pad_top, pad_left, u, din, du, du_fresh, OH, OW, F, block);
}

void cnnviz_winograd3_weight_grad(const float *restrict du, int C, int F, float *restrict dw) {
    if (cnnviz_wide_vectors())
        weight_grad_v16(du, C, F, dw);
    else
        weight_grad_v8(du, C, F, dw);
}
