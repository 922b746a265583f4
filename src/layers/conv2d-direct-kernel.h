/* The direct convolution's forward (tiny K, the first layer of an MNIST
 * net) and the fused Conv2D(relu) + MaxPooling2D(2) pass, for one vector
 * width: included by conv2d.c once per width, with (undefined again at its end)
 *   DK_V, DK_VU, DK_VI, DK_VIU  the vector type, its unaligned variant and
 *                               their int variants
 *   DK_L        its lanes (16: AVX-512, 8: AVX2)
 *   DK_BG       groups of DK_L filters the fused backward keeps in
 *               registers at once (2 in AVX-512's 32 registers, 1 in
 *               AVX2's 16: nine taps and a bias sum per group)
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
                        #pragma GCC unroll 9
                        for (int j = 0; j < 9; j++) {
                            float v = cp[off[j]];
                            #pragma GCC unroll 2
                            for (int g = 0; g < DK_BG; g++) a[g][j] += v * dt[g];
                        }
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

#undef DK_RELU

/* the parameters, for the next width */
#undef DK_V
#undef DK_VU
#undef DK_VI
#undef DK_VIU
#undef DK_L
#undef DK_BG
#undef DK_NAME
#undef DK_TARGET
