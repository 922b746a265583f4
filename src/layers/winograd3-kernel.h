/* Winograd F(3x3, 3x3), forward and backward, for one vector width:
 * included by winograd.c once per width, with (undefined again at its end)
 *   W3_V, W3_VU, W3_VI  the vector type, its unaligned and its int variant
 *   W3_L                its lanes (16: AVX-512, 8: AVX2)
 *   W3_WR               rows of dM the weight product keeps in registers
 *                       (8 of 2 vectors in AVX-512's 32 registers, 6 in
 *                       AVX2's 16)
 *   W3_NAME(x)          the name of this width's x (its product, x =
 *                       product, comes from winograd2-kernel.h)
 * Lanes are maps or channels, never summed with each other; the
 * transforms are lane by lane and every product element one FMA chain in
 * order, so both widths give the same bits (check_layers holds them to
 * it). */

/* out (S x S) = T in T^T for a tile in (R x R) of vectors, T one of the
 * 1-D transforms above (R in, S out): down the columns, then along the rows */
#define W3_TILE(out, in, R, S, T)                                                                                      \
    do {                                                                                                               \
        W3_V col_[5], o_[5], t_[5][5];                                                                           \
        for (int j_ = 0; j_ < (R); j_++) {                                                                             \
            for (int i_ = 0; i_ < (R); i_++) col_[i_] = (in)[i_][j_];                                                  \
            T(o_, col_);                                                                                               \
            for (int i_ = 0; i_ < (S); i_++) t_[i_][j_] = o_[i_];                                                      \
        }                                                                                                              \
        for (int i_ = 0; i_ < (S); i_++) {                                                                             \
            T(o_, t_[i_]);                                                                                             \
            for (int j_ = 0; j_ < (S); j_++) (out)[i_][j_] = o_[j_];                                                   \
        }                                                                                                              \
    } while (0)

/* U[xi][c][f] = (G g G^T)[xi] for the kernel w (3, 3, C, F) */
CNNVIZ_HOT
static void W3_NAME(w3_transform)(const float *restrict w, int C, int F, float *restrict u) {
    size_t cf = (size_t)C * F, us = uplane(C, F);
    for (int c = 0; c < C; c++)
        for (int f = 0; f < F; f += W3_L) {
            W3_V g[3][3], r[5][5];
            for (int k = 0; k < 3; k++)
                for (int l = 0; l < 3; l++) g[k][l] = *(const W3_VU *)(w + (size_t)(k * 3 + l) * cf + c * F + f);
            W3_TILE(r, g, 3, 5, W3_G);
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) *(W3_VU *)(u + (size_t)(i * 5 + j) * us + c * F + f) = r[i][j];
        }
}

/* V[xi][r][c..] = (B^T d B)[xi] for the 5x5 window at (y0, x0), zeros outside */
static inline __attribute__((always_inline)) void
W3_NAME(w3_input_tile)(const float *restrict in, int H, int W, int C, int y0, int x0, float *restrict v,
                       size_t xi_stride) {
    int inside = y0 >= 0 && y0 + 5 <= H && x0 >= 0 && x0 + 5 <= W;
    for (int c = 0; c < C; c += W3_L) {
        W3_V d[5][5], r[5][5];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                int y = y0 + i, x = x0 + j;
                d[i][j] = inside || (y >= 0 && y < H && x >= 0 && x < W)
                              ? *(const W3_VU *)(in + ((size_t)y * W + x) * C + c)
                              : (W3_V){0};
            }
        W3_TILE(r, d, 5, 5, W3_BT);
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) *(W3_VU *)(v + (size_t)(i * 5 + j) * xi_stride + c) = r[i][j];
    }
}

/* the rows [r0, r0 + nt) of a call's blocks into V */
static inline __attribute__((always_inline)) void
W3_NAME(w3_input_rows)(const float *in, int H, int W, int C, int pad_top, int pad_left, int TH, int TW, int r0, int nt,
                       float *v, size_t vs) {
    size_t isz = (size_t)H * W * C;
    for (int r = 0; r < nt; r++) {
        w3_row q = w3_row_at(r0 + r, TH, TW);
        W3_NAME(w3_input_tile)(in + q.b * isz, H, W, C, q.y0 - pad_top, q.x0 - pad_left, v + (size_t)r * C, vs);
    }
}

CNNVIZ_HOT
static void W3_NAME(forward)(const float *in, int nb, int H, int W, int C, int pad_top, int pad_left,
                              const float *u, const float *bias, int relu, float *out, int OH, int OW, int F,
                              float *block) {
    int TH = (OH + 2) / 3, TW = (OW + 2) / 3, T = nb * TH * TW;
    size_t vs = plane(C), ms = plane(F), us = uplane(C, F), osz = (size_t)OH * OW * F;
    float *v = block, *m = block + 25 * vs;
    const W3_V zero = {0};
    for (int t0 = 0; t0 < T; t0 += TILE_BLOCK) {
        int nt = T - t0 < TILE_BLOCK ? T - t0 : TILE_BLOCK;
        W3_NAME(w3_input_rows)(in, H, W, C, pad_top, pad_left, TH, TW, t0, nt, v, vs);
        for (int xi = 0; xi < 25; xi++) W3_NAME(product)(v + xi * vs, u + xi * us, m + xi * ms, nt, C, F);
        for (int r = 0; r < nt; r++) {
            w3_row q = w3_row_at(t0 + r, TH, TW);
            int ny = OH - q.y0 < 3 ? OH - q.y0 : 3, nx = OW - q.x0 < 3 ? OW - q.x0 : 3;
            float *o = out + q.b * osz;
            for (int f = 0; f < F; f += W3_L) {
                W3_V a[5][5], y[3][3];
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 5; j++)
                        a[i][j] = *(const W3_VU *)(m + (size_t)(i * 5 + j) * ms + (size_t)r * F + f);
                W3_TILE(y, a, 5, 3, W3_AT);
                W3_V bv = bias ? *(const W3_VU *)(bias + f) : zero;
                for (int i = 0; i < ny; i++) {
                    for (int j = 0; j < nx; j++) {
                        W3_V z = y[i][j] + bv;
                        if (relu) z = (W3_V)((W3_VI)z & (W3_VI)(z > zero));
                        *(W3_VU *)(o + ((size_t)(q.y0 + i) * OW + q.x0 + j) * F + f) = z;
                    }
                }
            }
        }
    }
}

/* du (C, F) += v^T (C, nr) . dm (nr, F) for 2L maps from f, with the nr
 * rows' dm in registers (nr a constant where it is W3_WR, so they stay
 * there); du is loaded first and each row added to it in turn, so how the
 * rows go in blocks does not change the sums */
static inline __attribute__((always_inline)) void
W3_NAME(w3_weight_rows)(const float *restrict v, const float *restrict dm, float *restrict du, int C, int F, int f,
                        int two, int fresh, const int nr) {
    W3_V g0[W3_WR], g1[W3_WR];
    #pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        g0[r] = *(const W3_VU *)(dm + (size_t)r * F + f);
        g1[r] = two ? *(const W3_VU *)(dm + (size_t)r * F + f + W3_L) : (W3_V){0};
    }
    for (int c = 0; c < C; c++) {
        W3_V a0 = {0}, a1 = {0};
        if (!fresh) a0 = *(W3_VU *)(du + (size_t)c * F + f);
        if (two && !fresh) a1 = *(W3_VU *)(du + (size_t)c * F + f + W3_L);
        #pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float x = v[(size_t)r * C + c];
            a0 += x * g0[r];
            a1 += x * g1[r];
        }
        *(W3_VU *)(du + (size_t)c * F + f) = a0;
        if (two) *(W3_VU *)(du + (size_t)c * F + f + W3_L) = a1;
    }
}

/* du[xi] (C, F) (fresh: =, else +=) v[xi]^T (C, rows) . dm[xi] (rows, F),
 * W3_WR rows at a time */
static inline __attribute__((always_inline)) void
W3_NAME(w3_weight_product)(const float *restrict v, const float *restrict dm, float *restrict du, int rows, int C,
                           int F, int fresh) {
    for (int f = 0; f < F; f += 2 * W3_L) {
        int two = f + 2 * W3_L <= F, r0 = 0, fr = fresh;
        for (; r0 + W3_WR <= rows; r0 += W3_WR, fr = 0)
            W3_NAME(w3_weight_rows)(v + (size_t)r0 * C, dm + (size_t)r0 * F, du, C, F, f, two, fr, W3_WR);
        for (; r0 < rows; r0++, fr = 0)
            W3_NAME(w3_weight_rows)(v + (size_t)r0 * C, dm + (size_t)r0 * F, du, C, F, f, two, fr, 1);
    }
}

CNNVIZ_HOT
static void W3_NAME(backward)(const float *in, const float *dz, int nb, int H, int W, int C, int pad_top,
                               int pad_left, const float *u, float *din, float *du, int du_fresh, int OH, int OW,
                               int F, float *block) {
    int TH = (OH + 2) / 3, TW = (OW + 2) / 3, T = nb * TH * TW;
    size_t vs = plane(C), ms = plane(F), us = uplane(C, F), osz = (size_t)OH * OW * F, isz = (size_t)H * W * C;
    const float *ut = u + 25 * us;
    float *v = block, *m = block + 25 * vs;
    const W3_V zero = {0};
    if (din) memset(din, 0, (size_t)nb * isz * sizeof *din);
    for (int t0 = 0; t0 < T; t0 += TILE_BLOCK) {
        int nt = T - t0 < TILE_BLOCK ? T - t0 : TILE_BLOCK;
        /* dM = A dY A^T, the outputs past the edge taken as zero */
        for (int r = 0; r < nt; r++) {
            w3_row q = w3_row_at(t0 + r, TH, TW);
            const float *g = dz + q.b * osz;
            for (int f = 0; f < F; f += W3_L) {
                W3_V y[3][3], dm[5][5];
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        y[i][j] = q.y0 + i < OH && q.x0 + j < OW
                                      ? *(const W3_VU *)(g + ((size_t)(q.y0 + i) * OW + q.x0 + j) * F + f)
                                      : zero;
                W3_TILE(dm, y, 3, 5, W3_A);
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 5; j++)
                        *(W3_VU *)(m + (size_t)(i * 5 + j) * ms + (size_t)r * F + f) = dm[i][j];
            }
        }
        if (du) {
            W3_NAME(w3_input_rows)(in, H, W, C, pad_top, pad_left, TH, TW, t0, nt, v, vs);
            for (int xi = 0; xi < 25; xi++)
                W3_NAME(w3_weight_product)(v + xi * vs, m + xi * ms, du + xi * us, nt, C, F, du_fresh && t0 == 0);
        }
        if (!din) continue;
        /* dV = dM . U^T, then dX = B dV B^T added into the window */
        for (int xi = 0; xi < 25; xi++) W3_NAME(product)(m + xi * ms, ut + xi * us, v + xi * vs, nt, F, C);
        for (int r = 0; r < nt; r++) {
            w3_row q = w3_row_at(t0 + r, TH, TW);
            float *dx = din + q.b * isz;
            int y0 = q.y0 - pad_top, x0 = q.x0 - pad_left;
            for (int c = 0; c < C; c += W3_L) {
                W3_V a[5][5], d[5][5];
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 5; j++)
                        a[i][j] = *(const W3_VU *)(v + (size_t)(i * 5 + j) * vs + (size_t)r * C + c);
                W3_TILE(d, a, 5, 5, W3_B);
                for (int i = 0; i < 5; i++) {
                    int y = y0 + i;
                    if (y < 0 || y >= H) continue;
                    for (int j = 0; j < 5; j++) {
                        int x = x0 + j;
                        if (x >= 0 && x < W) *(W3_VU *)(dx + ((size_t)y * W + x) * C + c) += d[i][j];
                    }
                }
            }
        }
    }
}

/* dw (3, 3, C, F) += G^T dU G */
CNNVIZ_HOT
static void W3_NAME(weight_grad)(const float *restrict du, int C, int F, float *restrict dw) {
    size_t cf = (size_t)C * F, us = uplane(C, F);
    for (int c = 0; c < C; c++)
        for (int f = 0; f < F; f += W3_L) {
            W3_V a[5][5], d[3][3];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) a[i][j] = *(const W3_VU *)(du + (size_t)(i * 5 + j) * us + c * F + f);
            W3_TILE(d, a, 5, 3, W3_GT);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) *(W3_VU *)(dw + (size_t)(i * 3 + j) * cf + c * F + f) += d[i][j];
        }
}

/* the parameters, for the next width */
#undef W3_TILE
#undef W3_V
#undef W3_VU
#undef W3_VI
#undef W3_L
#undef W3_WR
#undef W3_NAME
