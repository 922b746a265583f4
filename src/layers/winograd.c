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

/* V[xi][r][c..c+16) = (B^T d B)[xi] for the 4x4 window at (y0, x0) of one
 * sample, zeros outside, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static inline __attribute__((always_inline)) void
input_tile(const float *restrict in, int H, int W, int C, int y0, int x0, float *restrict v, size_t xi_stride) {
    int inside = y0 >= 0 && y0 + 4 <= H && x0 >= 0 && x0 + 4 <= W;
    for (int c = 0; c < C; c += 16) {
        cnnviz_v16 d[4][4], t[4][4];
        if (inside) {
            const float *p = in + ((size_t)y0 * W + x0) * C + c;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i][j] = *(const cnnviz_v16u *)(p + ((size_t)i * W + j) * C);
        } else {
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    int y = y0 + i, x = x0 + j;
                    d[i][j] = y >= 0 && y < H && x >= 0 && x < W
                                  ? *(const cnnviz_v16u *)(in + ((size_t)y * W + x) * C + c)
                                  : (cnnviz_v16){0};
                }
        }
        for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {
            cnnviz_v16 r[4] = {t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1], t[i][1] - t[i][3]};
            for (int j = 0; j < 4; j++) *(cnnviz_v16u *)(v + (size_t)(i * 4 + j) * xi_stride + c) = r[j];
        }
    }
}

/* m (rows, F) = v (rows, C) . u (C, F), four rows and 64 maps at a time
 * in sixteen named accumulators (GCC keeps an array of them in memory). */
static inline __attribute__((always_inline)) void
product(const float *restrict v, const float *restrict u, float *restrict m, int rows, int C, int F) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *v0 = v + (size_t)r * C, *v1 = v0 + C, *v2 = v1 + C, *v3 = v2 + C;
        float *m0 = m + (size_t)r * F, *m1 = m0 + F, *m2 = m1 + F, *m3 = m2 + F;
        int f = 0;
        for (; f + 64 <= F; f += 64) {
            cnnviz_v16 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
            cnnviz_v16 a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
            const float *uc = u + f;
            for (int c = 0; c < C; c++, uc += F) {
                cnnviz_v16 b0 = *(const cnnviz_v16u *)uc, b1 = *(const cnnviz_v16u *)(uc + 16);
                cnnviz_v16 b2 = *(const cnnviz_v16u *)(uc + 32), b3 = *(const cnnviz_v16u *)(uc + 48);
                float x0 = v0[c], x1 = v1[c], x2 = v2[c], x3 = v3[c];
                a00 += x0 * b0, a01 += x0 * b1, a02 += x0 * b2, a03 += x0 * b3;
                a10 += x1 * b0, a11 += x1 * b1, a12 += x1 * b2, a13 += x1 * b3;
                a20 += x2 * b0, a21 += x2 * b1, a22 += x2 * b2, a23 += x2 * b3;
                a30 += x3 * b0, a31 += x3 * b1, a32 += x3 * b2, a33 += x3 * b3;
            }
#define STORE4(mr, a0, a1, a2, a3)                                                                                     \
    *(cnnviz_v16u *)(mr + f) = a0, *(cnnviz_v16u *)(mr + f + 16) = a1, *(cnnviz_v16u *)(mr + f + 32) = a2,           \
    *(cnnviz_v16u *)(mr + f + 48) = a3
            STORE4(m0, a00, a01, a02, a03);
            STORE4(m1, a10, a11, a12, a13);
            STORE4(m2, a20, a21, a22, a23);
            STORE4(m3, a30, a31, a32, a33);
#undef STORE4
        }
        for (; f < F; f += 16) {
            cnnviz_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int c = 0; c < C; c++) {
                cnnviz_v16 b = *(const cnnviz_v16u *)(u + (size_t)c * F + f);
                a0 += v0[c] * b, a1 += v1[c] * b, a2 += v2[c] * b, a3 += v3[c] * b;
            }
            *(cnnviz_v16u *)(m0 + f) = a0, *(cnnviz_v16u *)(m1 + f) = a1;
            *(cnnviz_v16u *)(m2 + f) = a2, *(cnnviz_v16u *)(m3 + f) = a3;
        }
    }
    for (; r < rows; r++)
        for (int f = 0; f < F; f += 16) {
            cnnviz_v16 acc = {0};
            for (int c = 0; c < C; c++) acc += v[(size_t)r * C + c] * *(const cnnviz_v16u *)(u + (size_t)c * F + f);
            *(cnnviz_v16u *)(m + (size_t)r * F + f) = acc;
        }
}

/* out's 2x2 block at (y0, x0) from M[xi][r], A^T = [1 1 1 0; 0 1 -1 -1], plus bias, ReLU. */
static inline __attribute__((always_inline)) void
output_tile(const float *restrict m, size_t xi_stride, int F, const float *restrict bias, int relu, float *restrict out,
            int OH, int OW, int y0, int x0) {
    int ny = OH - y0 < 2 ? OH - y0 : 2, nx = OW - x0 < 2 ? OW - x0 : 2;
    for (int f = 0; f < F; f += 16) {
        cnnviz_v16 a[16], t[2][4];
        for (int xi = 0; xi < 16; xi++) a[xi] = *(const cnnviz_v16u *)(m + (size_t)xi * xi_stride + f);
        for (int j = 0; j < 4; j++) {
            t[0][j] = a[j] + a[4 + j] + a[8 + j];
            t[1][j] = a[4 + j] - a[8 + j] - a[12 + j];
        }
        cnnviz_v16 b = bias ? *(const cnnviz_v16u *)(bias + f) : (cnnviz_v16){0};
        for (int i = 0; i < ny; i++) {
            cnnviz_v16 y[2] = {t[i][0] + t[i][1] + t[i][2] + b, t[i][1] - t[i][2] - t[i][3] + b};
            for (int j = 0; j < nx; j++) {
                cnnviz_v16 z = y[j];
                if (relu) z = (cnnviz_v16)((cnnviz_v16i)z & (cnnviz_v16i)(z > (cnnviz_v16){0}));
                *(cnnviz_v16u *)(out + ((size_t)(y0 + i) * OW + x0 + j) * F + f) = z;
            }
        }
    }
}

CNNVIZ_HOT
void cnnviz_winograd_sample(const float *in, int H, int W, int C, int pad_top, int pad_left, const float *u,
                            const float *bias, int relu, float *out, int OH, int OW, int F, float *block) {
    int TH = (OH + 1) / 2, TW = (OW + 1) / 2, T = TH * TW;
    size_t vs = plane(C), ms = plane(F), cf = (size_t)C * F;
    float *v = block, *m = block + 16 * vs;
    /* blocks of about equal size, a multiple of the kernel's four rows */
    int nblocks = (T + TILE_BLOCK - 1) / TILE_BLOCK, per = ((T + nblocks - 1) / nblocks + 3) / 4 * 4;
    if (per > TILE_BLOCK) per = TILE_BLOCK;
    for (int t0 = 0; t0 < T; t0 += per) {
        int nt = T - t0 < per ? T - t0 : per;
        for (int r = 0; r < nt; r++) {
            int ty = (t0 + r) / TW, tx = (t0 + r) % TW;
            input_tile(in, H, W, C, 2 * ty - pad_top, 2 * tx - pad_left, v + (size_t)r * C, vs);
        }
        for (int xi = 0; xi < 16; xi++) product(v + xi * vs, u + xi * cf, m + xi * ms, nt, C, F);
        for (int r = 0; r < nt; r++) {
            int ty = (t0 + r) / TW, tx = (t0 + r) % TW;
            output_tile(m + (size_t)r * F, ms, F, bias, relu, out, OH, OW, 2 * ty, 2 * tx);
        }
    }
}
