/* The direct convolution's forward (tiny K, the first layer of an MNIST
 * net) and the fused Conv2D(relu) + MaxPooling2D(2) pass, for one vector
 * width: included by conv2d.c once per width, with (undefined again at its end)
 *   DK_V, DK_VU, DK_VI, DK_VIU  the vector type, its unaligned variant and
 *                               their int variants
 *   DK_L        its lanes (16: AVX-512, 8: AVX2)
 *   DK_BG       groups of DK_L filters the fused backward keeps in
 *               registers at once (2 in AVX-512's 32 registers, 1 in
 *               AVX2's 16: nine taps and a bias sum per group)
 *   DK_IGP      input pixels the direct input gradient sums at once (4 at
 *               L = 16, 2 at L = 8: four accumulators a pixel at L = 8)
 *   DK_NAME(x)  the name of this width's x
 *   DK_TARGET   the attributes of the fused pass's kernels
 * Lanes are filters, never summed with each other; each output is the
 * bias plus the taps in k order (one FMA each), and each gradient sums
 * its terms in sample and pixel order, at either width, so both give the
 * same bits (check_layers holds them to it). */

#define DK_RELU(a) ((DK_V)((DK_VI)(a) & ((a) > zero)))

/* a0..a3 (filters f..f+L-1) and c0..c3 (f+L..f+2L-1) = bias + taps . w for
 * four windows starting at s0..s3: eight independent FMA chains, each
 * weight load feeding four. Shared by direct_pixels and the fused
 * conv+pool pass, whose pooled values must be the same bits. */
static inline __attribute__((always_inline)) void
DK_NAME(direct_four)(const float *s0, const float *s1, const float *s2, const float *s3, const int *restrict off,
                     int K, const float *restrict w, int F, int f, const float *bias, DK_V *a0, DK_V *a1, DK_V *a2,
                     DK_V *a3, DK_V *c0, DK_V *c1, DK_V *c2, DK_V *c3) {
    const DK_V zero = {0};
    DK_V b = bias ? *(const DK_VU *)(bias + f) : zero;
    DK_V bb = bias ? *(const DK_VU *)(bias + f + DK_L) : zero;
    DK_V x0 = b, x1 = b, x2 = b, x3 = b, y0 = bb, y1 = bb, y2 = bb, y3 = bb;
    for (int k = 0; k < K; k++) {
        DK_V wv = *(const DK_VU *)(w + (size_t)k * F + f);
        DK_V wu = *(const DK_VU *)(w + (size_t)k * F + f + DK_L);
        int ok = off[k];
        float v0 = s0[ok], v1 = s1[ok], v2 = s2[ok], v3 = s3[ok];
        x0 += v0 * wv, y0 += v0 * wu;
        x1 += v1 * wv, y1 += v1 * wu;
        x2 += v2 * wv, y2 += v2 * wu;
        x3 += v3 * wv, y3 += v3 * wu;
    }
    *a0 = x0, *a1 = x1, *a2 = x2, *a3 = x3, *c0 = y0, *c1 = y1, *c2 = y2, *c3 = y3;
}

/* out (n pixels, F) = act(taps · w (K, F) + bias) for n pixels whose
 * windows start pstride floats apart in src. 2L filters by four pixels at
 * a time: eight independent FMA chains hide the FMA latency and each
 * weight load feeds four FMAs. */
CNNVIZ_HOT
static void DK_NAME(direct_pixels)(const float *src, size_t pstride, int n, const int *restrict off, int K,
                                   const float *restrict w, int F, const float *bias, int relu, float *restrict out) {
    const DK_V zero = {0};
    for (int p0 = 0; p0 < n; p0 += 4) {
        int np = n - p0 < 4 ? n - p0 : 4;
        /* pixels past the end repeat the first one: computed, never stored */
        const float *s0 = src + (size_t)p0 * pstride;
        const float *s1 = s0 + (np > 1 ? pstride : 0);
        const float *s2 = s0 + (np > 2 ? 2 * pstride : 0);
        const float *s3 = s0 + (np > 3 ? 3 * pstride : 0);
        float *o = out + (size_t)p0 * F;
        int f = 0;
        for (; f + 2 * DK_L <= F; f += 2 * DK_L) {
            DK_V a0, a1, a2, a3, c0, c1, c2, c3;
            DK_NAME(direct_four)(s0, s1, s2, s3, off, K, w, F, f, bias, &a0, &a1, &a2, &a3, &c0, &c1, &c2, &c3);
            if (relu) {
                a0 = DK_RELU(a0), a1 = DK_RELU(a1), a2 = DK_RELU(a2), a3 = DK_RELU(a3);
                c0 = DK_RELU(c0), c1 = DK_RELU(c1), c2 = DK_RELU(c2), c3 = DK_RELU(c3);
            }
            *(DK_VU *)(o + f) = a0, *(DK_VU *)(o + f + DK_L) = c0;
            if (np > 1) *(DK_VU *)(o + F + f) = a1, *(DK_VU *)(o + F + f + DK_L) = c1;
            if (np > 2) *(DK_VU *)(o + 2 * F + f) = a2, *(DK_VU *)(o + 2 * F + f + DK_L) = c2;
            if (np > 3) *(DK_VU *)(o + 3 * F + f) = a3, *(DK_VU *)(o + 3 * F + f + DK_L) = c3;
        }
        for (; f + DK_L <= F; f += DK_L) {
            DK_V b = bias ? *(const DK_VU *)(bias + f) : zero;
            DK_V a0 = b, a1 = b, a2 = b, a3 = b;
            for (int k = 0; k < K; k++) {
                DK_V wv = *(const DK_VU *)(w + (size_t)k * F + f);
                int ok = off[k];
                a0 += s0[ok] * wv;
                a1 += s1[ok] * wv;
                a2 += s2[ok] * wv;
                a3 += s3[ok] * wv;
            }
            if (relu) a0 = DK_RELU(a0), a1 = DK_RELU(a1), a2 = DK_RELU(a2), a3 = DK_RELU(a3);
            *(DK_VU *)(o + f) = a0;
            if (np > 1) *(DK_VU *)(o + F + f) = a1;
            if (np > 2) *(DK_VU *)(o + 2 * F + f) = a2;
            if (np > 3) *(DK_VU *)(o + 3 * F + f) = a3;
        }
        for (int q = 0; q < np; q++)
            for (int g = f; g < F; g++) {
                float acc = bias ? bias[g] : 0.0f;
                for (int k = 0; k < K; k++) acc += s0[q * pstride + off[k]] * w[(size_t)k * F + g];
                o[(size_t)q * F + g] = relu && acc < 0.0f ? 0.0f : acc;
            }
    }
}

/* the 2L filters from f of a window's four outputs (ReLU'd) a0..a3 (first
 * L) and c0..c3: their maximum into o, the position of the first maximum
 * into code */
#define DK_MAX4_STEP(m, k, v, idx)                                                                                     \
    do {                                                                                                               \
        DK_VI gt_ = (v) > (m);                                                                                         \
        m = (DK_V)(((DK_VI)(v) & gt_) | ((DK_VI)(m) & ~gt_));                                                          \
        k = ((idx) & gt_) | (k & ~gt_);                                                                                \
    } while (0)
#define DK_MAX4(m, k, v0, v1, v2, v3)                                                                                  \
    do {                                                                                                               \
        m = v0, k = (DK_VI){0};                                                                                        \
        DK_MAX4_STEP(m, k, v1, one);                                                                                   \
        DK_MAX4_STEP(m, k, v2, two);                                                                                   \
        DK_MAX4_STEP(m, k, v3, three);                                                                                 \
    } while (0)

DK_TARGET
static void DK_NAME(conv_pool_forward)(const conv2d_layer *c, const float *in, float *pooled, int *codes, int nb) {
    const cnnviz_layer *l = &c->base;
    const float *w = l->param[0].data, *bias = c->use_bias ? l->param[1].data : NULL;
    int PH = c->OH / 2, PW = c->OW / 2, F = c->F, W = c->W;
    int off[DIRECT_MAX_K], identity[DIRECT_MAX_K];
    tap_tables(c, off, identity);
    const DK_V zero = {0};
    const DK_VI one = (DK_VI){0} + 1, two = one + 1, three = two + 1;
    for (int b = 0; b < nb; b++) {
        const float *x = in + (size_t)b * in_floats(c);
        size_t o = (size_t)b * PH * PW * F;
        for (int py = 0; py < PH; py++)
            for (int px = 0; px < PW; px++, o += F) {
                const float *s0 = x + (size_t)(2 * py) * W + 2 * px, *s1 = s0 + 1, *s2 = s0 + W, *s3 = s2 + 1;
                for (int f = 0; f < F; f += 2 * DK_L) {
                    DK_V a0, a1, a2, a3, c0, c1, c2, c3;
                    DK_NAME(direct_four)(s0, s1, s2, s3, off, 9, w, F, f, bias, &a0, &a1, &a2, &a3, &c0, &c1, &c2,
                                         &c3);
                    a0 = DK_RELU(a0), a1 = DK_RELU(a1), a2 = DK_RELU(a2), a3 = DK_RELU(a3);
                    c0 = DK_RELU(c0), c1 = DK_RELU(c1), c2 = DK_RELU(c2), c3 = DK_RELU(c3);
                    DK_V m, n;
                    DK_VI k, q;
                    DK_MAX4(m, k, a0, a1, a2, a3);
                    DK_MAX4(n, q, c0, c1, c2, c3);
                    *(DK_VU *)(pooled + o + f) = m, *(DK_VU *)(pooled + o + f + DK_L) = n;
                    *(DK_VIU *)(codes + o + f) = k, *(DK_VIU *)(codes + o + f + DK_L) = q;
                }
            }
    }
}
#undef DK_MAX4
#undef DK_MAX4_STEP

/* a[g][j] += tap j of the window at cp (offsets off) times d[g], for the
 * DK_BG groups: the nine-tap weight gradient's step, shared by the fused
 * pass and direct_weight_grad9 */
static inline __attribute__((always_inline)) void DK_NAME(add_taps9)(DK_V (*a)[9], const float *cp, const int *off,
                                                                      const DK_V *d) {
    #pragma GCC unroll 9
    for (int j = 0; j < 9; j++) {
        float v = cp[off[j]];
        #pragma GCC unroll 2
        for (int g = 0; g < DK_BG; g++) a[g][j] += v * d[g];
    }
}

/* DK_BG groups of L filters at a time: their nine taps' and the bias's
 * gradients stay in registers over the whole chunk */
DK_TARGET
static void DK_NAME(conv_pool_backward)(const conv2d_layer *c, const float *in, const float *pooled,
                                        const int *codes, const float *dpooled, int nb, float *gw, float *gb) {
    int PH = c->OH / 2, PW = c->OW / 2, F = c->F, W = c->W;
    int off[DIRECT_MAX_K], identity[DIRECT_MAX_K];
    tap_tables(c, off, identity);
    const DK_V zero = {0};
    for (int f = 0; f < F; f += DK_BG * DK_L) {
        DK_V a[DK_BG][9], sd[DK_BG];
        #pragma GCC unroll 2
        for (int g = 0; g < DK_BG; g++) {
            sd[g] = zero;
            #pragma GCC unroll 9
            for (int j = 0; j < 9; j++) a[g][j] = zero;
        }
        for (int b = 0; b < nb; b++) {
            const float *x = in + (size_t)b * in_floats(c);
            size_t o = (size_t)b * PH * PW * F + f;
            for (int py = 0; py < PH; py++)
                for (int px = 0; px < PW; px++, o += F) {
                    const float *s0 = x + (size_t)(2 * py) * W + 2 * px;
                    DK_V d[DK_BG];
                    DK_VI kd[DK_BG];
                    #pragma GCC unroll 2
                    for (int g = 0; g < DK_BG; g++) {
                        size_t og = o + (size_t)g * DK_L;
                        /* a maximum of zero passes nothing: the ReLU's slope there */
                        DK_VI md = *(const DK_VU *)(pooled + og) > zero;
                        d[g] = (DK_V)((DK_VI) * (const DK_VU *)(dpooled + og) & md);
                        kd[g] = *(const DK_VIU *)(codes + og);
                        sd[g] += d[g];
                    }
                    #pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) {
                        const float *cp = s0 + (t >> 1) * W + (t & 1);
                        DK_V dt[DK_BG];
                        #pragma GCC unroll 2
                        for (int g = 0; g < DK_BG; g++) dt[g] = (DK_V)((DK_VI)d[g] & (kd[g] == t));
                        DK_NAME(add_taps9)(a, cp, off, dt);
                    }
                }
        }
        #pragma GCC unroll 2
        for (int g = 0; g < DK_BG; g++) {
            #pragma GCC unroll 9
            for (int j = 0; j < 9; j++) *(DK_VU *)(gw + (size_t)j * F + f + (size_t)g * DK_L) += a[g][j];
            if (gb) *(DK_VU *)(gb + f + (size_t)g * DK_L) += sd[g];
        }
    }
}

/* --- the direct path's backward ------------------------------------------
 * Lanes are filters for the weight gradient, each summed over a sample's
 * pixels in order from zero. The Kp = 12 and K = 9 kernels hold DK_BG
 * groups of L filters; the general loop covers the filters that fill whole
 * 16-float groups (the same set at either width) and leaves the rest to
 * scalar code. The input gradient sums over filters, lanes with each
 * other: both widths keep the 16-float code's two accumulators (filters
 * f..f+15 and f+16..f+31 of each block of 32), as 16/L vectors each, and
 * reduce them in cnnviz_hsum16's tree. */
#define DK_NV (16 / DK_L)
#if DK_L == 16
#define DK_HSUM_AB(a, b) cnnviz_hsum16((a)[0] + (b)[0])
#else
#define DK_HSUM_AB(a, b) cnnviz_hsum16_halves((a)[0] + (b)[0], (a)[1] + (b)[1])
#endif
/* dz masked by a ReLU's output y > 0 (yp: y at the same place) */
#define DK_MASKED(d, yp) ((DK_V)((DK_VI)(d) & (*(const DK_VU *)(yp) > zero)))

/* d[g] = the DK_BG groups of filters of dz at dp, masked by a ReLU's
 * output at yp unless yp is NULL; sd[g] += d[g] (the bias gradient) */
static inline __attribute__((always_inline)) void DK_NAME(dz_groups)(DK_V *d, DK_V *sd, const float *dp,
                                                                      const float *yp) {
    const DK_V zero = {0};
    #pragma GCC unroll 2
    for (int g = 0; g < DK_BG; g++) {
        d[g] = *(const DK_VU *)(dp + g * DK_L);
        if (yp) d[g] = DK_MASKED(d[g], yp + g * DK_L);
        sd[g] += d[g];
    }
}

/* dw (K, F) = col^T · dz and db (F) = column sums of dz over one sample's
 * npix rows; overwritten. col rows are Kp (a multiple of 4) floats. y !=
 * NULL: dz is the gradient of a ReLU's output y, masked here rather than
 * in a separate pass over memory. */
CNNVIZ_HOT
static void DK_NAME(direct_weight_grad)(const float *restrict col, const float *restrict dz, const float *restrict y,
                                        int npix, int K, int Kp, int F, float *restrict dw, float *restrict db) {
    const DK_V zero = {0};
    int f = 0, F32 = F / 32 * 32, F16 = F / 16 * 16;
    /* Kp = 12 (a 3x3 kernel on one channel): all twelve taps of DK_BG
     * groups in one pass, so dz and the mask are read once, not three
     * times; the bias gradient too, summed in the same pixel order */
    if (Kp == 12)
        for (; f < F32; f += DK_BG * DK_L) {
            DK_V a[DK_BG][12], sd[DK_BG];
            #pragma GCC unroll 2
            for (int g = 0; g < DK_BG; g++) {
                sd[g] = zero;
                #pragma GCC unroll 12
                for (int j = 0; j < 12; j++) a[g][j] = zero;
            }
            const float *cp = col, *dp = dz + f, *yp = y ? y + f : NULL;
            for (int p = 0; p < npix; p++, cp += 12, dp += F) {
                DK_V d[DK_BG];
                DK_NAME(dz_groups)(d, sd, dp, yp);
                if (yp) yp += F;
                #pragma GCC unroll 12
                for (int j = 0; j < 12; j++) {
                    #pragma GCC unroll 2
                    for (int g = 0; g < DK_BG; g++) a[g][j] += cp[j] * d[g];
                }
            }
            #pragma GCC unroll 2
            for (int g = 0; g < DK_BG; g++) {
                if (db) *(DK_VU *)(db + f + g * DK_L) = sd[g];
                #pragma GCC unroll 12
                for (int j = 0; j < 12; j++)
                    if (j < K) *(DK_VU *)(dw + (size_t)j * F + f + g * DK_L) = a[g][j];
            }
        }
    int fdb = f; /* db[0, fdb) is done */
    /* four taps by 2L filters, then by L (only at L = 16: one group of 16) */
    for (; f + 2 * DK_L <= F16; f += 2 * DK_L)
        for (int k0 = 0; k0 < Kp; k0 += 4) {
            DK_V a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
            const float *cp = col + k0, *dp = dz + f, *yp = y ? y + f : NULL;
            for (int p = 0; p < npix; p++, cp += Kp, dp += F) {
                DK_V d = *(const DK_VU *)dp, e = *(const DK_VU *)(dp + DK_L);
                if (yp) {
                    d = DK_MASKED(d, yp), e = DK_MASKED(e, yp + DK_L);
                    yp += F;
                }
                a0 += cp[0] * d, b0 += cp[0] * e;
                a1 += cp[1] * d, b1 += cp[1] * e;
                a2 += cp[2] * d, b2 += cp[2] * e;
                a3 += cp[3] * d, b3 += cp[3] * e;
            }
            DK_V r[8] = {a0, b0, a1, b1, a2, b2, a3, b3};
            for (int j = 0; j < 4 && k0 + j < K; j++) {
                *(DK_VU *)(dw + (size_t)(k0 + j) * F + f) = r[2 * j];
                *(DK_VU *)(dw + (size_t)(k0 + j) * F + f + DK_L) = r[2 * j + 1];
            }
        }
    for (; f + DK_L <= F16; f += DK_L)
        for (int k0 = 0; k0 < Kp; k0 += 4) {
            DK_V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            const float *cp = col + k0, *dp = dz + f, *yp = y ? y + f : NULL;
            for (int p = 0; p < npix; p++, cp += Kp, dp += F) {
                DK_V d = *(const DK_VU *)dp;
                if (yp) {
                    d = DK_MASKED(d, yp);
                    yp += F;
                }
                a0 += cp[0] * d, a1 += cp[1] * d, a2 += cp[2] * d, a3 += cp[3] * d;
            }
            DK_V r[4] = {a0, a1, a2, a3};
            for (int j = 0; j < 4 && k0 + j < K; j++) *(DK_VU *)(dw + (size_t)(k0 + j) * F + f) = r[j];
        }
    for (; f < F; f++)
        for (int k = 0; k < K; k++) {
            float a = 0.0f;
            for (int p = 0; p < npix; p++)
                if (!y || y[(size_t)p * F + f] > 0.0f) a += col[(size_t)p * Kp + k] * dz[(size_t)p * F + f];
            dw[(size_t)k * F + f] = a;
        }
    if (!db || fdb == F) return;
    for (int g = fdb; g < F; g++) db[g] = 0.0f;
    for (int p = 0; p < npix; p++) {
        const float *d = dz + (size_t)p * F, *yy = y ? y + (size_t)p * F : d;
        #pragma omp simd
        for (int g = fdb; g < F; g++) db[g] += !y || yy[g] > 0.0f ? d[g] : 0.0f;
    }
}

/* direct_weight_grad for a 3x3 kernel on one channel (direct_weight_grad9_ok:
 * K = 9, F a multiple of 32, every window inside the input), the taps
 * read straight from the input (interior table), no columns built: the
 * same sums in the same order as direct_columns + direct_weight_grad. */
CNNVIZ_HOT
static void DK_NAME(direct_weight_grad9)(const conv2d_layer *c, const float *restrict x,
                                         const int *restrict interior, const float *restrict dz,
                                         const float *restrict y, float *restrict dw, float *restrict db) {
    const DK_V zero = {0};
    int F = c->F;
    int off[9];
    for (int j = 0; j < 9; j++) off[j] = interior[j];
    for (int f = 0; f < F; f += DK_BG * DK_L) {
        DK_V a[DK_BG][9], sd[DK_BG];
        #pragma GCC unroll 2
        for (int g = 0; g < DK_BG; g++) {
            sd[g] = zero;
            #pragma GCC unroll 9
            for (int j = 0; j < 9; j++) a[g][j] = zero;
        }
        const float *dp = dz + f, *yp = y ? y + f : NULL;
        for (int oy = 0; oy < c->OH; oy++) {
            const float *xr = x + (size_t)oy * c->sh * c->W * c->C;
            for (int ox = 0; ox < c->OW; ox++, dp += F) {
                const float *cp = xr + (size_t)ox * c->sw * c->C;
                DK_V d[DK_BG];
                DK_NAME(dz_groups)(d, sd, dp, yp);
                if (yp) yp += F;
                DK_NAME(add_taps9)(a, cp, off, d);
            }
        }
        #pragma GCC unroll 2
        for (int g = 0; g < DK_BG; g++) {
            #pragma GCC unroll 9
            for (int j = 0; j < 9; j++) *(DK_VU *)(dw + (size_t)j * F + f + g * DK_L) = a[g][j];
            if (db) *(DK_VU *)(db + f + g * DK_L) = sd[g];
        }
    }
}

/* For P input pixels q whose dz rows start F floats apart at d: a[q] +=
 * d·w and b[q] += over one tap's filters wp, in blocks of 32 (a: the
 * first 16, b: the next), then one of 16 (a), then s[q] += the rest one by
 * one: the 16-float code's order at either width. Each weight load feeds
 * the P pixels. */
static inline __attribute__((always_inline)) void DK_NAME(tap_sums)(const int P, DK_V (*a)[DK_NV], DK_V (*b)[DK_NV],
                                                                     float *s, const float *d, const float *wp,
                                                                     int F) {
    int f = 0;
    for (; f + 32 <= F; f += 32) {
        DK_V wa[DK_NV], wb[DK_NV];
        #pragma GCC unroll 2
        for (int h = 0; h < DK_NV; h++)
            wa[h] = *(const DK_VU *)(wp + f + h * DK_L), wb[h] = *(const DK_VU *)(wp + f + 16 + h * DK_L);
        #pragma GCC unroll 4
        for (int q = 0; q < P; q++) {
            #pragma GCC unroll 2
            for (int h = 0; h < DK_NV; h++) {
                a[q][h] += *(const DK_VU *)(d + (size_t)q * F + f + h * DK_L) * wa[h];
                b[q][h] += *(const DK_VU *)(d + (size_t)q * F + f + 16 + h * DK_L) * wb[h];
            }
        }
    }
    for (; f + 16 <= F; f += 16) {
        DK_V wa[DK_NV];
        #pragma GCC unroll 2
        for (int h = 0; h < DK_NV; h++) wa[h] = *(const DK_VU *)(wp + f + h * DK_L);
        #pragma GCC unroll 4
        for (int q = 0; q < P; q++) {
            #pragma GCC unroll 2
            for (int h = 0; h < DK_NV; h++) a[q][h] += *(const DK_VU *)(d + (size_t)q * F + f + h * DK_L) * wa[h];
        }
    }
    for (; f < F; f++) {
        #pragma GCC unroll 4
        for (int q = 0; q < P; q++) s[q] += d[(size_t)q * F + f] * wp[f];
    }
}

/* dx (H, W, C) of one sample from dz (OH, OW, F), stride 1, gathered
 * rather than scattered: each input value is the sum, over the taps whose
 * output pixel exists, of dz(that pixel)·W(tap, ch). No memset, no
 * read-modify-write; DK_IGP neighbouring input pixels at a time where
 * every tap exists, one by one at the border (the same sums: pixels are
 * independent). The order of the sums is fixed per sample, whatever the
 * thread count. */
CNNVIZ_HOT
static void DK_NAME(direct_input_grad_s1)(const conv2d_layer *c, const float *restrict dz, const float *restrict w,
                                          float *restrict dx) {
    int F = c->F, C = c->C, OH = c->OH, OW = c->OW, kh = c->kh, kw = c->kw, T = kh * kw;
    int pt = c->pad_top, pl = c->pad_left;
    const DK_V zero = {0};
    /* a tap t = (ky, kx) reads dz at (oy, ox) = (iy + pt - ky, ix + pl - kx) */
    ptrdiff_t doff[DIRECT_MAX_K];
    for (int ky = 0, t = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++, t++) doff[t] = -((ptrdiff_t)ky * OW + kx) * F;
    /* input pixels whose every tap has an output pixel: [y0, y1) x [x0, x1) */
    int y0 = kh - 1 - pt, y1 = OH - pt, x0 = kw - 1 - pl, x1 = OW - pl;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > c->H) y1 = c->H;
    if (x1 > c->W) x1 = c->W;
    for (int iy = 0; iy < c->H; iy++) {
        int row_inside = iy >= y0 && iy < y1;
        for (int ix = 0; ix < c->W;) {
            float *xp = dx + ((size_t)iy * c->W + ix) * C;
            if (row_inside && ix >= x0 && ix + DK_IGP <= x1) {
                const float *d0 = dz + ((ptrdiff_t)(iy + pt) * OW + (ix + pl)) * F;
                for (int ch = 0; ch < C; ch++) {
                    DK_V a[DK_IGP][DK_NV], b[DK_IGP][DK_NV];
                    float s[DK_IGP];
                    #pragma GCC unroll 4
                    for (int q = 0; q < DK_IGP; q++) {
                        s[q] = 0.0f;
                        #pragma GCC unroll 2
                        for (int h = 0; h < DK_NV; h++) a[q][h] = b[q][h] = zero;
                    }
                    for (int t = 0; t < T; t++)
                        DK_NAME(tap_sums)(DK_IGP, a, b, s, d0 + doff[t], w + ((size_t)t * C + ch) * F, F);
                    #pragma GCC unroll 4
                    for (int q = 0; q < DK_IGP; q++) xp[q * C + ch] = DK_HSUM_AB(a[q], b[q]) + s[q];
                }
                ix += DK_IGP;
                continue;
            }
            for (int ch = 0; ch < C; ch++) {
                DK_V a[1][DK_NV], b[1][DK_NV];
                float s[1] = {0.0f};
                #pragma GCC unroll 2
                for (int h = 0; h < DK_NV; h++) a[0][h] = b[0][h] = zero;
                for (int ky = 0, t = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++, t++) {
                        int oy = iy + pt - ky, ox = ix + pl - kx;
                        if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                        const float *d = dz + ((size_t)oy * OW + ox) * F, *wp = w + ((size_t)t * C + ch) * F;
                        DK_NAME(tap_sums)(1, a, b, s, d, wp, F);
                    }
                xp[ch] = DK_HSUM_AB(a[0], b[0]) + s[0];
            }
            ix++;
        }
    }
}
#undef DK_MASKED
#undef DK_HSUM_AB
#undef DK_NV

#undef DK_RELU

/* the parameters, for the next width */
#undef DK_V
#undef DK_VU
#undef DK_VI
#undef DK_VIU
#undef DK_L
#undef DK_BG
#undef DK_IGP
#undef DK_NAME
#undef DK_TARGET
