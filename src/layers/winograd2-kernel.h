/* Winograd F(2x2, 3x3) for one sample, for one vector width: included by
 * winograd.c once per width, with (undefined again at its end)
 *   WK_V, WK_VU, WK_VI  the vector type, its unaligned and its int variant
 *   WK_L                its lanes (16: AVX-512, 8: AVX2)
 *   WK_NV               vectors of maps per row in the product's main tile
 *   WK_NAME(x)          the name of this width's x
 * Lanes are maps or channels, never summed with each other, and every
 * product element is one FMA chain over the channels in order, so both
 * widths give the same bits whatever their tiles (check_layers holds them
 * to it). The wide tile (4 rows by 64 maps, 16 accumulators) fills
 * AVX-512's 32 registers; AVX2 has 16 of half the width, so its tile is
 * 4 rows by 16 maps. */

/* V[xi][r][c..c+WK_L) = (B^T d B)[xi] for the 4x4 window at (y0, x0) of one
 * sample, zeros outside, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static inline __attribute__((always_inline)) void
WK_NAME(input_tile)(const float *restrict in, int H, int W, int C, int y0, int x0, float *restrict v,
                    size_t xi_stride) {
    int inside = y0 >= 0 && y0 + 4 <= H && x0 >= 0 && x0 + 4 <= W;
    for (int c = 0; c < C; c += WK_L) {
        WK_V d[4][4], t[4][4];
        if (inside) {
            const float *p = in + ((size_t)y0 * W + x0) * C + c;
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                #pragma GCC unroll 4
                for (int j = 0; j < 4; j++) d[i][j] = *(const WK_VU *)(p + ((size_t)i * W + j) * C);
        } else {
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                #pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    int y = y0 + i, x = x0 + j;
                    d[i][j] = y >= 0 && y < H && x >= 0 && x < W ? *(const WK_VU *)(in + ((size_t)y * W + x) * C + c)
                                                                 : (WK_V){0};
                }
        }
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
        }
        /* unrolled, so GCC keeps t and r in registers instead of storing r
         * to the stack and copying it out in a loop */
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            WK_V r[4] = {t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1], t[i][1] - t[i][3]};
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++) *(WK_VU *)(v + (size_t)(i * 4 + j) * xi_stride + c) = r[j];
        }
    }
}

/* m (rows, F) = v (rows, C) . u (C, F): four rows by WK_NV vectors of maps
 * at a time, then four rows by one vector, then row by row. The tiles'
 * accumulators are arrays, unrolled whole so that GCC keeps them in
 * registers. */
static inline __attribute__((always_inline)) void
WK_NAME(product)(const float *restrict v, const float *restrict u, float *restrict m, int rows, int C, int F) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *vr = v + (size_t)r * C;
        float *mr = m + (size_t)r * F;
        int f = 0;
        for (; f + WK_NV * WK_L <= F; f += WK_NV * WK_L) {
            WK_V a[4][WK_NV];
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                #pragma GCC unroll 4
                for (int j = 0; j < WK_NV; j++) a[i][j] = (WK_V){0};
            const float *uc = u + f;
            for (int c = 0; c < C; c++, uc += F) {
                WK_V b[WK_NV];
                #pragma GCC unroll 4
                for (int j = 0; j < WK_NV; j++) b[j] = *(const WK_VU *)(uc + WK_L * j);
                #pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    float x = vr[(size_t)i * C + c];
                    #pragma GCC unroll 4
                    for (int j = 0; j < WK_NV; j++) a[i][j] += x * b[j];
                }
            }
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                #pragma GCC unroll 4
                for (int j = 0; j < WK_NV; j++) *(WK_VU *)(mr + (size_t)i * F + f + WK_L * j) = a[i][j];
        }
        for (; f < F; f += WK_L) {
            WK_V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int c = 0; c < C; c++) {
                WK_V b = *(const WK_VU *)(u + (size_t)c * F + f);
                a0 += vr[c] * b, a1 += vr[C + c] * b, a2 += vr[2 * C + c] * b, a3 += vr[3 * C + c] * b;
            }
            *(WK_VU *)(mr + f) = a0, *(WK_VU *)(mr + F + f) = a1;
            *(WK_VU *)(mr + 2 * F + f) = a2, *(WK_VU *)(mr + 3 * F + f) = a3;
        }
    }
    for (; r < rows; r++)
        for (int f = 0; f < F; f += WK_L) {
            WK_V acc = {0};
            for (int c = 0; c < C; c++) acc += v[(size_t)r * C + c] * *(const WK_VU *)(u + (size_t)c * F + f);
            *(WK_VU *)(m + (size_t)r * F + f) = acc;
        }
}

/* out's 2x2 block at (y0, x0) from M[xi][r], A^T = [1 1 1 0; 0 1 -1 -1], plus bias, ReLU. */
static inline __attribute__((always_inline)) void
WK_NAME(output_tile)(const float *restrict m, size_t xi_stride, int F, const float *restrict bias, int relu,
                     float *restrict out, int OH, int OW, int y0, int x0) {
    int ny = OH - y0 < 2 ? OH - y0 : 2, nx = OW - x0 < 2 ? OW - x0 : 2;
    for (int f = 0; f < F; f += WK_L) {
        WK_V a[16], t[2][4];
        #pragma GCC unroll 16
        for (int xi = 0; xi < 16; xi++) a[xi] = *(const WK_VU *)(m + (size_t)xi * xi_stride + f);
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            t[0][j] = a[j] + a[4 + j] + a[8 + j];
            t[1][j] = a[4 + j] - a[8 + j] - a[12 + j];
        }
        WK_V b = bias ? *(const WK_VU *)(bias + f) : (WK_V){0};
        for (int i = 0; i < ny; i++) {
            WK_V y[2] = {t[i][0] + t[i][1] + t[i][2] + b, t[i][1] - t[i][2] - t[i][3] + b};
            for (int j = 0; j < nx; j++) {
                WK_V z = y[j];
                if (relu) z = (WK_V)((WK_VI)z & (WK_VI)(z > (WK_V){0}));
                *(WK_VU *)(out + ((size_t)(y0 + i) * OW + x0 + j) * F + f) = z;
            }
        }
    }
}

CNNVIZ_HOT
static void WK_NAME(sample)(const float *in, int H, int W, int C, int pad_top, int pad_left, const float *u,
                            const float *bias, int relu, float *out, int OH, int OW, int F, int NH, int NW,
                            float *block) {
    /* the 2x2 tiles that cover the first NH rows and NW columns: each
     * tile's outputs are the same bits whichever others are made */
    int TH = (NH + 1) / 2, TW = (NW + 1) / 2, T = TH * TW;
    size_t vs = plane(C), ms = plane(F), cf = (size_t)C * F;
    float *v = block, *m = block + 16 * vs;
    /* blocks of about equal size, a multiple of the kernel's four rows */
    int nblocks = (T + TILE_BLOCK - 1) / TILE_BLOCK, per = ((T + nblocks - 1) / nblocks + 3) / 4 * 4;
    if (per > TILE_BLOCK) per = TILE_BLOCK;
    for (int t0 = 0; t0 < T; t0 += per) {
        int nt = T - t0 < per ? T - t0 : per;
        for (int r = 0; r < nt; r++) {
            int ty = (t0 + r) / TW, tx = (t0 + r) % TW;
            WK_NAME(input_tile)(in, H, W, C, 2 * ty - pad_top, 2 * tx - pad_left, v + (size_t)r * C, vs);
        }
        for (int xi = 0; xi < 16; xi++) WK_NAME(product)(v + xi * vs, u + xi * cf, m + xi * ms, nt, C, F);
        for (int r = 0; r < nt; r++) {
            int ty = (t0 + r) / TW, tx = (t0 + r) % TW;
            WK_NAME(output_tile)(m + (size_t)r * F, ms, F, bias, relu, out, OH, OW, 2 * ty, 2 * tx);
        }
    }
}

/* the parameters, for the next width */
#undef WK_V
#undef WK_VU
#undef WK_VI
#undef WK_L
#undef WK_NV
#undef WK_NAME
