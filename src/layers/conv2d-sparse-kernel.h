/* The sparse backward kernels that read a conv's windows straight from its
 * input, for one vector width: included by conv2d.c once per width, with (undefined again at its end)
 *   SK_V, SK_VU  the vector type and its unaligned variant
 *   SK_L         its lanes (16: AVX-512, 8: AVX2)
 *   SK_RP        window rows of sparse_weight_grad_filters kept in
 *                registers at once (3 in AVX-512's 32 registers: the
 *                whole 3-row kernel; 1 in AVX2's 16)
 *   SK_NAME(x)   the name of this width's x
 * A window row (kw*C floats) is NV vectors, NV = kw*C / SK_L. Lanes are
 * kernel taps or input channels, never summed with each other, and every
 * element sums the same products in the same order at either width (a
 * filter's rows in row order, a pixel's nonzero filters in filter order),
 * so both widths give the same bits (check_layers holds them to it). The
 * kernel gradient is also the same bits as the column-based
 * sparse_weight_grad's; the input gradient adds up a pixel's window in
 * another order than sparse_input_grad does. */

/* sparse_weight_grad reading the windows straight from the input instead
 * of columns: every window inside the input (no padding). off[i] is row
 * p0+i's window in `in`. */
static inline __attribute__((always_inline)) void
SK_NAME(weight_grad_windows_nv)(const conv2d_layer *c, const float *restrict in, const float *restrict dz, int rows,
                                float *restrict dwt, int *restrict lp, float *restrict lv, const int NV) {
    int F = c->F, K = c->K, seg = c->kw * c->C, rstride = c->W * c->C;
    int ohw = c->OH * c->OW;
    int off[SPARSE_TILE];
    for (int p0 = 0; p0 < rows; p0 += SPARSE_TILE) {
        int pn = rows - p0 < SPARSE_TILE ? rows - p0 : SPARSE_TILE;
        for (int i = 0; i < pn; i++) {
            int p = p0 + i;
            off[i] = (int)((size_t)(p / ohw) * in_floats(c) + window_at(c, p % ohw));
        }
        for (int f = 0; f < F; f++) {
            int n = 0;
            for (int i = 0; i < pn; i++) {
                float v = dz[(size_t)(p0 + i) * F + f];
                lp[n] = off[i], lv[n] = v, n += v != 0.0f;
            }
            if (!n) continue;
            float *out = dwt + (size_t)f * K;
            for (int ky = 0; ky < c->kh; ky++) {
                float *o = out + (size_t)ky * seg;
                SK_V a[16];
                #pragma GCC unroll 16
                for (int i = 0; i < NV; i++) a[i] = *(const SK_VU *)(o + SK_L * i);
                for (int j = 0; j < n; j++) {
                    const float *src = in + lp[j] + (size_t)ky * rstride;
                    float v = lv[j];
                    #pragma GCC unroll 16
                    for (int i = 0; i < NV; i++) a[i] += v * *(const SK_VU *)(src + SK_L * i);
                }
                #pragma GCC unroll 16
                for (int i = 0; i < NV; i++) *(SK_VU *)(o + SK_L * i) = a[i];
            }
        }
    }
}

CNNVIZ_HOT
static void SK_NAME(weight_grad_windows)(const conv2d_layer *c, const float *restrict in, const float *restrict dz,
                                         int rows, float *restrict dwt, int *restrict lp, float *restrict lv) {
    switch (c->kw * c->C / SK_L) {
    case 32 / SK_L: SK_NAME(weight_grad_windows_nv)(c, in, dz, rows, dwt, lp, lv, 32 / SK_L); break;
    case 64 / SK_L: SK_NAME(weight_grad_windows_nv)(c, in, dz, rows, dwt, lp, lv, 64 / SK_L); break;
    case 96 / SK_L: SK_NAME(weight_grad_windows_nv)(c, in, dz, rows, dwt, lp, lv, 96 / SK_L); break;
    default: SK_NAME(weight_grad_windows_nv)(c, in, dz, rows, dwt, lp, lv, 128 / SK_L); break;
    }
}

/* sparse_weight_grad_windows from the row lists of nonzero_rows, turned
 * per sample into lists by filter (cp/cv, OH*OW*F entries; pos 2F ints),
 * so that SK_RP rows of a filter's kernel gradient (SK_RP*NV vectors; 3
 * rows: all of it) stay in registers over all its nonzeros in the sample
 * instead of being loaded and stored again for every 24-row tile and
 * window row, while the sample's input (its windows) stays in L1. The same
 * sums in the same order (each filter's rows in row order), so the same
 * bits. */
static inline __attribute__((always_inline)) void
SK_NAME(weight_grad_filters_nv)(const conv2d_layer *c, const float *restrict in, int rows, const int *restrict rs,
                                const int *restrict lf, const float *restrict lv, float *restrict dwt,
                                int *restrict pos, int *restrict cp, float *restrict cv, const int NV) {
    int F = c->F, K = c->K, seg = c->kw * c->C, rstride = c->W * c->C, ohw = c->OH * c->OW;
    int *next = pos + F;
    for (int p0 = 0; p0 < rows; p0 += ohw) {
        const float *x = in + (size_t)(p0 / ohw) * in_floats(c);
        for (int f = 0; f < F; f++) pos[f] = 0;
        for (int j = rs[p0]; j < rs[p0 + ohw]; j++) pos[lf[j]]++;
        for (int f = 0, at = 0; f < F; f++) {
            int n = pos[f];
            pos[f] = next[f] = at;
            at += n;
        }
        for (int q = 0; q < ohw; q++) {
            int off = (int)window_at(c, q);
            for (int j = rs[p0 + q]; j < rs[p0 + q + 1]; j++) {
                int i = next[lf[j]]++;
                cp[i] = off, cv[i] = lv[j];
            }
        }
        for (int f = 0; f < F; f++) {
            if (pos[f] == next[f]) continue;
            for (int ky = 0; ky < 3; ky += SK_RP) {
                float *o = dwt + (size_t)f * K + (size_t)ky * seg;
                SK_V a[SK_RP][16];
                #pragma GCC unroll 3
                for (int r = 0; r < SK_RP; r++)
                    #pragma GCC unroll 16
                    for (int i = 0; i < NV; i++) a[r][i] = *(const SK_VU *)(o + (size_t)r * seg + SK_L * i);
                for (int j = pos[f]; j < next[f]; j++) {
                    const float *r0 = x + cp[j] + (size_t)ky * rstride, *rp[SK_RP];
                    float v = cv[j];
                    /* one pointer per window row, opaque to GCC, so that the
                     * loads are that pointer plus a constant; else it
                     * computes an index per load and spills them */
                    #pragma GCC unroll 3
                    for (int r = 0; r < SK_RP; r++) {
                        rp[r] = r0 + (size_t)r * rstride;
                        __asm__("" : "+r"(rp[r]));
                    }
                    #pragma GCC unroll 3
                    for (int r = 0; r < SK_RP; r++)
                        #pragma GCC unroll 16
                        for (int i = 0; i < NV; i++) a[r][i] += v * *(const SK_VU *)(rp[r] + SK_L * i);
                }
                #pragma GCC unroll 3
                for (int r = 0; r < SK_RP; r++)
                    #pragma GCC unroll 16
                    for (int i = 0; i < NV; i++) *(SK_VU *)(o + (size_t)r * seg + SK_L * i) = a[r][i];
            }
        }
    }
}

CNNVIZ_HOT
static void SK_NAME(weight_grad_filters)(const conv2d_layer *c, const float *restrict in, int rows,
                                         const int *restrict rs, const int *restrict lf, const float *restrict lv,
                                         float *restrict dwt, int *restrict pos, int *restrict cp, float *restrict cv) {
    switch (c->kw * c->C / SK_L) {
    case 32 / SK_L: SK_NAME(weight_grad_filters_nv)(c, in, rows, rs, lf, lv, dwt, pos, cp, cv, 32 / SK_L); break;
    case 64 / SK_L: SK_NAME(weight_grad_filters_nv)(c, in, rows, rs, lf, lv, dwt, pos, cp, cv, 64 / SK_L); break;
    case 96 / SK_L: SK_NAME(weight_grad_filters_nv)(c, in, rows, rs, lf, lv, dwt, pos, cp, cv, 96 / SK_L); break;
    default: SK_NAME(weight_grad_filters_nv)(c, in, rows, rs, lf, lv, dwt, pos, cp, cv, 128 / SK_L); break;
    }
}

/* sparse_input_grad for the layers sparse_weight_grad_windows takes: each
 * window row (ky) of W^T in turn, a few KiB that stay in L1, over every
 * pixel's nonzero dz (kept as lists, rs[p] to rs[p+1] in lf/lv), added
 * straight into the window's input row. */
static inline __attribute__((always_inline)) void
SK_NAME(input_grad_windows_nv)(const conv2d_layer *c, const float *restrict wt, float *restrict din, int nb,
                               const int *restrict rs, const int *restrict lf, const float *restrict lv,
                               const int NV) {
    int K = c->K, seg = c->kw * c->C;
    const SK_V zero = {0};
    memset(din, 0, (size_t)nb * in_floats(c) * sizeof *din);
    for (int ky = 0; ky < c->kh; ky++) {
        const float *w = wt + (size_t)ky * seg;
        int p = 0;
        for (int b = 0; b < nb; b++)
            for (int oy = 0; oy < c->OH; oy++)
                for (int ox = 0; ox < c->OW; ox++, p++) {
                    int j0 = rs[p], j1 = rs[p + 1];
                    if (j0 == j1) continue;
                    SK_V a[16];
                    #pragma GCC unroll 16
                    for (int i = 0; i < NV; i++) a[i] = zero;
                    for (int j = j0; j < j1; j++) {
                        const float *wr = w + (size_t)lf[j] * K;
                        float v = lv[j];
                        #pragma GCC unroll 16
                        for (int i = 0; i < NV; i++) a[i] += v * *(const SK_VU *)(wr + SK_L * i);
                    }
                    float *dst = din + (size_t)b * in_floats(c) + window_at(c, oy * c->OW + ox) +
                                 (size_t)ky * c->W * c->C;
                    #pragma GCC unroll 16
                    for (int i = 0; i < NV; i++) *(SK_VU *)(dst + SK_L * i) += a[i];
                }
    }
}

CNNVIZ_HOT
static void SK_NAME(input_grad_windows)(const conv2d_layer *c, const float *restrict wt, float *restrict din, int nb,
                                        const int *restrict rs, const int *restrict lf, const float *restrict lv) {
    switch (c->kw * c->C / SK_L) {
    case 32 / SK_L: SK_NAME(input_grad_windows_nv)(c, wt, din, nb, rs, lf, lv, 32 / SK_L); break;
    case 64 / SK_L: SK_NAME(input_grad_windows_nv)(c, wt, din, nb, rs, lf, lv, 64 / SK_L); break;
    case 96 / SK_L: SK_NAME(input_grad_windows_nv)(c, wt, din, nb, rs, lf, lv, 96 / SK_L); break;
    default: SK_NAME(input_grad_windows_nv)(c, wt, din, nb, rs, lf, lv, 128 / SK_L); break;
    }
}

/* the parameters, for the next width */
#undef SK_V
#undef SK_VU
#undef SK_L
#undef SK_RP
#undef SK_NAME
