/* Conv2D, NHWC input, HWIO kernel (kh,kw,Cin,Cout), TF's valid/same padding.
 *
 * Two paths:
 *  - direct, when K = kh*kw*Cin is tiny (the first layer of an MNIST net has
 *    K = 9): a gemm with K = 9 is bound by writing its output, so each
 *    output pixel is written once from a vector kernel; backward sums
 *    per-sample partial kernels in sample order;
 *  - otherwise im2col + sgemm (cnnviz_gemm, gemm.c). The HWIO kernel is
 *    already the (K, Cout) row-major matrix and the (B*OH*OW, Cout) product
 *    is already NHWC. Samples go in chunks whose columns fit in L2, one
 *    chunk per thread with a serial product. Backward rebuilds a chunk's
 *    columns instead of keeping the batch's (they would not stay in
 *    cache), accumulates the kernel
 *    gradient into one of a fixed set of partitions and hands din back
 *    through col2im(dz·W^T). A chunk whose dz is mostly zeros (ReLU and
 *    max pooling after the layer) skips them instead: both gradients are
 *    summed over the nonzero dz only, reading the windows straight from
 *    the input where no window hangs over the padding.
 * Forward of a 3x3 stride-1 layer with C and F multiples of 16 (the seed
 * net's second conv) goes through Winograd F(2x2, 3x3) instead (winograd.c):
 * 2.25x less arithmetic than the sgemm, and its own kernel, 1.5x faster on
 * that layer. Backward keeps the paths above. Where the output is a few
 * 3x3 blocks (the seed net's third conv, 5x5 -> 3x3), training passes
 * take Winograd F(3x3, 3x3) forward and backward, 3.24x less arithmetic;
 * its float error (a few 1e-6) is above what the Keras checks allow, so
 * inference keeps the sgemm there.
 * In training, the first layer (3x3, one channel, ReLU) and a 2x2 max
 * pooling after it run as one pass (cnnviz_conv_pool_forward/backward).
 * The direct path's input gradient (stride 1) is gathered per input pixel,
 * a few pixels at a time, rather than scattered per output pixel.
 * The direct path, the fused pass, the sparse window kernels and Winograd
 * come in 16-float (AVX-512) and 8-float (AVX2) vectors with the same bits
 * (conv2d-direct-kernel.h, conv2d-sparse-kernel.h, winograd*-kernel.h).
 * Chunking depends on the layer's geometry only, never on the thread count,
 * so results are bit-identical for any number of threads. */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

#ifdef CNNVIZ_CLONES
#include <immintrin.h>
#endif

/* im2col for up to this many bytes of columns per chunk: a chunk's columns
 * and its output stay in a 2 MiB L2 while sgemm reads them */
#define CHUNK_COL_BYTES (512 * 1024)
/* and at most this many samples, so a training batch of 64 makes eight
 * chunks: four weight partitions to share among the threads, where 25-sample
 * chunks of a small late layer (3 chunks) left the second core idle */
#define CHUNK_MAX_SAMPLES 8
/* Below this K the direct kernel beats im2col + sgemm */
#define DIRECT_MAX_K 16

typedef struct {
    cnnviz_layer base;
    int H, W, C;       /* input */
    int OH, OW, F;     /* output */
    int kh, kw, sh, sw;
    int pad_top, pad_left;
    int K;             /* kh*kw*C */
    int use_bias;
    /* the direct path, forward and backward (AVX-512 or AVX2) */
    int direct;
    /* 2: forward by Winograd F(2x2, 3x3); 3: forward and backward by
     * F(3x3, 3x3) in training passes, sgemm otherwise (winograd.c); 0: neither */
    int winograd;
    float alpha;
} conv2d_layer;

static int thread_slots(void) {
#ifdef _OPENMP
    int n = cnnviz_procs();
    return n < 1 ? 1 : n > 64 ? 64 : n;
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int threads_for(int jobs) {
#ifdef _OPENMP
    int t = omp_get_max_threads();
    if (t > thread_slots()) t = thread_slots();
    return t < jobs ? t : jobs > 0 ? jobs : 1;
#else
    (void)jobs;
    return 1;
#endif
}

static size_t col_floats_per_sample(const conv2d_layer *c) { return (size_t)c->OH * c->OW * c->K; }
static size_t in_floats(const conv2d_layer *c) { return (size_t)c->H * c->W * c->C; }
static size_t out_floats(const conv2d_layer *c) { return (size_t)c->OH * c->OW * c->F; }

/* samples per chunk: a function of the geometry only, never of B or threads */
static int chunk_samples(const conv2d_layer *c) {
    if (c->winograd == 3) return CHUNK_MAX_SAMPLES; /* a block each, no columns */
    size_t per = col_floats_per_sample(c) * sizeof(float);
    size_t n = CHUNK_COL_BYTES / (per ? per : 1);
    return n < 1 ? 1 : n > CHUNK_MAX_SAMPLES ? CHUNK_MAX_SAMPLES : (int)n;
}

/* col (nb*OH*OW, K) from in (nb, H, W, C); zeros where the window hangs
 * over the padding. GCC would turn the copy loops into memcpy calls, which
 * cost more than they copy when rows are short (kw*C floats), hence the
 * optimize attribute. */
CNNVIZ_HOT CNNVIZ_NO_MEMCPY_CALLS
static void im2col(const conv2d_layer *c, const float *restrict in, float *restrict col, int nb) {
    int C = c->C, kw = c->kw;
    for (int b = 0; b < nb; b++) {
        const float *x = in + (size_t)b * in_floats(c);
        for (int oy = 0; oy < c->OH; oy++)
            for (int ox = 0; ox < c->OW; ox++) {
                float *row = col + (((size_t)b * c->OH + oy) * c->OW + ox) * c->K;
                int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
                for (int ky = 0; ky < c->kh; ky++) {
                    float *dst = row + (size_t)ky * kw * C;
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= c->H) {
                        for (int t = 0; t < kw * C; t++) dst[t] = 0.0f;
                        continue;
                    }
                    const float *xrow = x + (size_t)iy * c->W * C;
                    if (ix0 >= 0 && ix0 + kw <= c->W) {
                        const float *src = xrow + (size_t)ix0 * C;
                        #pragma omp simd
                        for (int t = 0; t < kw * C; t++) dst[t] = src[t];
                        continue;
                    }
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ix0 + kx;
                        if (ix >= 0 && ix < c->W)
                            for (int t = 0; t < C; t++) dst[kx * C + t] = xrow[(size_t)ix * C + t];
                        else
                            for (int t = 0; t < C; t++) dst[kx * C + t] = 0.0f;
                    }
                }
            }
    }
}

/* dx (H, W, C) += row, the K = kh*kw*C gradient of output position (oy, ox)'s
 * window, skipping taps that fall in the padding: col2im for one position.
 * Always inlined so each vector clone of its callers gets its own copy. */
static inline __attribute__((always_inline)) void add_window(const conv2d_layer *c, float *restrict dx,
                                                             const float *restrict row, int oy, int ox) {
    int C = c->C, kw = c->kw;
    int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
    for (int ky = 0; ky < c->kh; ky++) {
        int iy = iy0 + ky;
        if (iy < 0 || iy >= c->H) continue;
        const float *src = row + (size_t)ky * kw * C;
        float *drow = dx + (size_t)iy * c->W * C;
        if (ix0 >= 0 && ix0 + kw <= c->W) {
            float *dst = drow + (size_t)ix0 * C;
            #pragma omp simd
            for (int t = 0; t < kw * C; t++) dst[t] += src[t];
            continue;
        }
        for (int kx = 0; kx < kw; kx++) {
            int ix = ix0 + kx;
            if (ix < 0 || ix >= c->W) continue;
            float *dst = drow + (size_t)ix * C;
            #pragma omp simd
            for (int t = 0; t < C; t++) dst[t] += src[kx * C + t];
        }
    }
}

/* din (nb, H, W, C) = sum of dcol's entries over every window position that read each pixel */
CNNVIZ_HOT
static void col2im(const conv2d_layer *c, const float *restrict dcol, float *restrict din, int nb) {
    memset(din, 0, (size_t)nb * in_floats(c) * sizeof *din);
    for (int b = 0; b < nb; b++) {
        float *dx = din + (size_t)b * in_floats(c);
        for (int oy = 0; oy < c->OH; oy++)
            for (int ox = 0; ox < c->OW; ox++) {
                const float *row = dcol + (((size_t)b * c->OH + oy) * c->OW + ox) * c->K;
                add_window(c, dx, row, oy, ox);
            }
    }
}

/* --- the direct path (tiny K) ------------------------------------------- */

/* Where the K taps of a window lie: an interior window reads src[off[k]]
 * from its top-left input pixel (interior table); a window over the
 * padding is first gathered into a small buffer (zeros for the padding) and
 * read with the identity table. No im2col: the first layer's columns would
 * be 9x its input. */
static void tap_tables(const conv2d_layer *c, int *interior, int *identity) {
    for (int ky = 0, k = 0; ky < c->kh; ky++)
        for (int kx = 0; kx < c->kw; kx++)
            for (int ch = 0; ch < c->C; ch++, k++) {
                interior[k] = (ky * c->W + kx) * c->C + ch;
                identity[k] = k;
            }
}

static void gather_window(const conv2d_layer *c, const float *x, int oy, int ox, float *g) {
    int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
    for (int ky = 0, k = 0; ky < c->kh; ky++)
        for (int kx = 0; kx < c->kw; kx++)
            for (int ch = 0; ch < c->C; ch++, k++) {
                int iy = iy0 + ky, ix = ix0 + kx;
                g[k] = iy >= 0 && iy < c->H && ix >= 0 && ix < c->W ? x[((size_t)iy * c->W + ix) * c->C + ch] : 0.0f;
            }
}

/* [lo, hi) of the output columns whose windows lie inside the input */
static void interior_columns(const conv2d_layer *c, int *lo, int *hi) {
    int a = 0, b = c->OW;
    while (a < b && a * c->sw - c->pad_left < 0) a++;
    while (b > a && (b - 1) * c->sw - c->pad_left + c->kw > c->W) b--;
    *lo = a, *hi = b;
}

/* The direct forward and the fused conv+pool pass in 16-float (AVX-512)
 * and 8-float (AVX2) vectors (conv2d-direct-kernel.h). The fused pass is
 * built for one target a width, taken only on CPUs that have it: GCC 12
 * builds its compares lane by lane inside a target_clones clone (not for
 * a plain target attribute). */
#ifdef CNNVIZ_CLONES
#define CONV_POOL_TARGET16 __attribute__((target("arch=x86-64-v4")))
#define CONV_POOL_TARGET8 __attribute__((target("arch=x86-64-v3")))
#else
#define CONV_POOL_TARGET16
#define CONV_POOL_TARGET8
#endif

#define DK_V cnnviz_v16
#define DK_VU cnnviz_v16u
#define DK_VI cnnviz_v16i
#define DK_VIU cnnviz_v16iu
#define DK_L 16
#define DK_BG 2
#define DK_IGP 4
#define DK_NAME(x) x##_v16
#define DK_TARGET CONV_POOL_TARGET16
#include "conv2d-direct-kernel.h"

#define DK_V cnnviz_v8
#define DK_VU cnnviz_v8u
#define DK_VI cnnviz_v8i
#define DK_VIU cnnviz_v8iu
#define DK_L 8
#define DK_BG 1
#define DK_IGP 2
#define DK_NAME(x) x##_v8
#define DK_TARGET CONV_POOL_TARGET8
#include "conv2d-direct-kernel.h"

static void direct_pixels(const float *src, size_t pstride, int n, const int *restrict off, int K,
                          const float *restrict w, int F, const float *bias, int relu, float *restrict out) {
    if (cnnviz_wide_vectors())
        direct_pixels_v16(src, pstride, n, off, K, w, F, bias, relu, out);
    else
        direct_pixels_v8(src, pstride, n, off, K, w, F, bias, relu, out);
}

/* One sample: interior runs of each output row in one call, windows over
 * the padding one by one through a gathered copy. */
static void direct_forward_sample(const conv2d_layer *c, const float *x, const float *w, const float *bias,
                                  int relu, const int *interior, const int *identity, float *y) {
    int lo, hi;
    float gather[DIRECT_MAX_K];
    interior_columns(c, &lo, &hi);
    for (int oy = 0; oy < c->OH; oy++) {
        int iy0 = oy * c->sh - c->pad_top;
        int row_inside = iy0 >= 0 && iy0 + c->kh <= c->H;
        float *yr = y + (size_t)oy * c->OW * c->F;
        for (int ox = 0; ox < c->OW; ox++) {
            if (row_inside && ox == lo && hi > lo) {
                const float *src = x + ((size_t)iy0 * c->W + (lo * c->sw - c->pad_left)) * c->C;
                direct_pixels(src, (size_t)c->sw * c->C, hi - lo, interior, c->K, w, c->F, bias, relu,
                              yr + (size_t)lo * c->F);
                ox = hi - 1;
                continue;
            }
            gather_window(c, x, oy, ox, gather);
            direct_pixels(gather, 0, 1, identity, c->K, w, c->F, bias, relu, yr + (size_t)ox * c->F);
        }
    }
}

/* Taps of one sample's windows as rows of Kp >= K floats (zeros past K),
 * for the weight gradient's kernel to read without remainders. */
static int padded_k(const conv2d_layer *c) { return (c->K + 3) / 4 * 4; }

static void direct_columns(const conv2d_layer *c, const float *x, const int *interior, float *col) {
    int Kp = padded_k(c);
    for (int oy = 0; oy < c->OH; oy++)
        for (int ox = 0; ox < c->OW; ox++) {
            float *row = col + ((size_t)oy * c->OW + ox) * Kp;
            int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
            if (iy0 >= 0 && ix0 >= 0 && iy0 + c->kh <= c->H && ix0 + c->kw <= c->W) {
                const float *src = x + ((size_t)iy0 * c->W + ix0) * c->C;
                for (int k = 0; k < c->K; k++) row[k] = src[interior[k]];
            } else {
                gather_window(c, x, oy, ox, row);
            }
            for (int k = c->K; k < Kp; k++) row[k] = 0.0f;
        }
}

/* whether direct_weight_grad9 applies: a 3x3 kernel on one channel (K = 9,
 * F a multiple of 32) whose windows all lie inside the input */
static int direct_weight_grad9_ok(const conv2d_layer *c) {
    return c->K == 9 && c->F % 32 == 0 && c->pad_top == 0 && c->pad_left == 0 &&
           (c->OH - 1) * c->sh + c->kh <= c->H && (c->OW - 1) * c->sw + c->kw <= c->W;
}

/* the direct path's backward kernels at this CPU's width
 * (conv2d-direct-kernel.h) */
static void direct_weight_grad(const float *col, const float *dz, const float *y, int npix, int K, int Kp, int F,
                               float *dw, float *db) {
    if (cnnviz_wide_vectors())
        direct_weight_grad_v16(col, dz, y, npix, K, Kp, F, dw, db);
    else
        direct_weight_grad_v8(col, dz, y, npix, K, Kp, F, dw, db);
}

static void direct_weight_grad9(const conv2d_layer *c, const float *x, const int *interior, const float *dz,
                                const float *y, float *dw, float *db) {
    if (cnnviz_wide_vectors())
        direct_weight_grad9_v16(c, x, interior, dz, y, dw, db);
    else
        direct_weight_grad9_v8(c, x, interior, dz, y, dw, db);
}

static void conv2d_forward_direct(const conv2d_layer *c, const float *in, float *out, int B) {
    const cnnviz_layer *l = &c->base;
    const float *bias = c->use_bias ? l->param[1].data : NULL;
    int relu = l->activation == CNNVIZ_ACT_RELU;
    int interior[DIRECT_MAX_K], identity[DIRECT_MAX_K];
    tap_tables(c, interior, identity);
    #pragma omp parallel num_threads(threads_for(B))
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            float *y = out + (size_t)b * out_floats(c);
            direct_forward_sample(c, in + (size_t)b * in_floats(c), l->param[0].data, bias, relu, interior, identity,
                                  y);
            if (!relu) cnnviz_activation_forward(l->activation, c->alpha, y, out_floats(c), c->F);
        }
    }
}

/* --- Conv2D(relu) + MaxPooling2D(2) in one pass, for training ------------
 *
 * The first layer of an MNIST net writes 26x26x32 floats a sample that
 * only the pooling after it reads, and whose backward then writes a
 * gradient of the same size, three quarters zeros, that only this layer's
 * kernel gradient reads. In a training pass the two layers can go as one:
 * forward computes a 2x2 window's four outputs with the same arithmetic as
 * direct_pixels (so the pooled values are the same bits), keeps their
 * maximum and which of the four it was (an int per pooled value: the
 * first maximum in row-major order, as the pooling's own backward picks);
 * backward sends each pooled gradient, where the maximum is above zero
 * (the ReLU's backward), to its window position and sums the kernel
 * gradient from there. The conv's own output is never written. */
/* the width of the fused kernels this CPU runs: 16, 8, or 0 (none) */
static int conv_pool_width(void) {
#ifdef CNNVIZ_CLONES
    if (cnnviz_wide_vectors() && __builtin_cpu_supports("x86-64-v4")) return 16;
    if (cnnviz_avx2_vectors() && __builtin_cpu_supports("x86-64-v3")) return 8;
    return 0;
#else
    return cnnviz_wide_vectors() ? 16 : cnnviz_avx2_vectors() ? 8 : 0;
#endif
}

int cnnviz_conv_pool_fusable(const cnnviz_layer *l, const cnnviz_layer *pool) {
    if (!conv_pool_width()) return 0;
    if (l->type != CNNVIZ_LAYER_CONV2D || pool->type != CNNVIZ_LAYER_MAXPOOL2D) return 0;
    const conv2d_layer *c = (const conv2d_layer *)l;
    const cnnviz_layer_spec *ps = &pool->spec;
    int sh = ps->strides[0] ? ps->strides[0] : ps->pool[0], sw = ps->strides[1] ? ps->strides[1] : ps->pool[1];
    return c->direct && direct_weight_grad9_ok(c) && c->sh == 1 && c->sw == 1 && c->C == 1 &&
           l->activation == CNNVIZ_ACT_RELU && ps->pool[0] == 2 && ps->pool[1] == 2 && sh == 2 && sw == 2 &&
           ps->padding == CNNVIZ_PAD_VALID && pool->out_shape.dim[0] == c->OH / 2 &&
           pool->out_shape.dim[1] == c->OW / 2;
}

void cnnviz_conv2d_window(const cnnviz_layer *l, int *kh, int *kw, int *sh, int *sw, int *pad_top,
                          int *pad_left) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    *kh = c->kh, *kw = c->kw, *sh = c->sh, *sw = c->sw, *pad_top = c->pad_top, *pad_left = c->pad_left;
}

void cnnviz_conv_pool_forward(const cnnviz_layer *l, const float *in, float *pooled, int *codes, int nb) {
    if (conv_pool_width() == 16)
        conv_pool_forward_v16((const conv2d_layer *)l, in, pooled, codes, nb);
    else
        conv_pool_forward_v8((const conv2d_layer *)l, in, pooled, codes, nb);
}

void cnnviz_conv_pool_backward(const cnnviz_layer *l, const float *in, const float *pooled, const int *codes,
                               const float *dpooled, int nb, float *gw, float *gb) {
    if (conv_pool_width() == 16)
        conv_pool_backward_v16((const conv2d_layer *)l, in, pooled, codes, dpooled, nb, gw, gb);
    else
        conv_pool_backward_v8((const conv2d_layer *)l, in, pooled, codes, dpooled, nb, gw, gb);
}

/* --- the im2col + sgemm path ------------------------------------------- */

static float *thread_block(const conv2d_layer *c, float *scratch, int B);

/* y += x */
CNNVIZ_HOT
static void add_floats(float *restrict y, const float *restrict x, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void conv2d_forward_gemm(const conv2d_layer *c, const float *in, float *out, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    int per = chunk_samples(c);
    int nchunks = (B + per - 1) / per;
    #pragma omp parallel num_threads(threads_for(nchunks))
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
            float *col = thread_block(c, p->scratch, B);
            im2col(c, in + (size_t)b0 * in_floats(c), col, nb);
            int rows = nb * c->OH * c->OW;
            float *y = out + (size_t)b0 * out_floats(c);
            cnnviz_gemm(0, 0, rows, c->F, c->K, col, c->K, l->param[0].data, c->F, y, c->F, 0);
            cnnviz_bias_activation_rows(y, c->use_bias ? l->param[1].data : NULL, (size_t)rows, c->F, l->activation,
                                        c->alpha);
        }
    }
}

/* Winograd's transformed kernel: made once per pass (prepare), before the
 * forward and the backward after it read it. */
static size_t conv2d_prep_floats(const cnnviz_layer *l) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    return c->winograd == 2   ? cnnviz_winograd_weight_floats(c->C, c->F)
           : c->winograd == 3 ? cnnviz_winograd3_weight_floats(c->C, c->F)
                              : 0;
}

static void conv2d_prepare(const cnnviz_layer *l, float *prep, int training) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    if (c->winograd == 2)
        cnnviz_winograd_weights(l->param[0].data, c->C, c->F, prep);
    else if (c->winograd == 3 && training) /* its only user */
        cnnviz_winograd3_weights(l->param[0].data, c->C, c->F, prep);
}

/* Winograd F(2x2, 3x3) one sample at a time, F(3x3, 3x3) a chunk of
 * samples at a time (a block each), in the thread's block. */
static void conv2d_forward_winograd(const conv2d_layer *c, const float *in, float *out, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    const float *bias = c->use_bias ? l->param[1].data : NULL;
    int relu = l->activation == CNNVIZ_ACT_RELU;
    int per = c->winograd == 3 ? chunk_samples(c) : 1, jobs = (B + per - 1) / per;
    #pragma omp parallel num_threads(threads_for(jobs))
    {
        cnnviz_omp_serial_inside();
        float *block = thread_block(c, p->scratch, B);
        #pragma omp for schedule(static)
        for (int j = 0; j < jobs; j++) {
            int b0 = j * per, nb = B - b0 < per ? B - b0 : per;
            float *y = out + (size_t)b0 * out_floats(c);
            const float *x = in + (size_t)b0 * in_floats(c);
            if (c->winograd == 3)
                cnnviz_winograd3_forward(x, nb, c->H, c->W, c->C, c->pad_top, c->pad_left, p->prep, bias, relu, y,
                                         c->OH, c->OW, c->F, block);
            else
                cnnviz_winograd_sample(x, c->H, c->W, c->C, c->pad_top, c->pad_left, p->prep, bias, relu, y, c->OH,
                                       c->OW, c->F, p->rows_read ? p->rows_read : c->OH,
                                       p->cols_read ? p->cols_read : c->OW, block);
            if (!relu) cnnviz_activation_forward(l->activation, c->alpha, y, (size_t)nb * out_floats(c), c->F);
        }
    }
}

static void conv2d_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    if (c->direct)
        conv2d_forward_direct(c, in, out, B);
    else if (c->winograd == 2 || (c->winograd == 3 && p->training))
        conv2d_forward_winograd(c, in, out, B, p);
    else
        conv2d_forward_gemm(c, in, out, B, p);
}

/* --- backward ----------------------------------------------------------- */

/* Weight-gradient partitions of the sgemm and Winograd paths: a fixed
 * split of the batch's chunks, each summed into its own partial kernel and
 * the partials added in order. Eight, whatever the thread count and the
 * machine's core count, so the bits depend on neither; a batch of 64 makes
 * eight chunks, one a partition, for up to eight threads. */
static int weight_partitions(void) { return 8; }

/* Scratch, in floats: a shared region, then one block per thread.
 *   direct: shared = dz (B, OH, OW, F) when ReLU's mask cannot be fused, and
 *           per-sample partial kernels + biases; thread = the sample's taps.
 *   sgemm:  shared = per-partition partial kernels and per-chunk partial
 *           biases; thread = columns, dcol and dz of one chunk (forward
 *           uses the columns only). */
static size_t shared_floats(const conv2d_layer *c, int B) {
    size_t kf = (size_t)c->K * c->F;
    if (c->direct) return (size_t)B * out_floats(c) + (size_t)B * (kf + c->F);
    int per = chunk_samples(c), nchunks = (B + per - 1) / per;
    return (size_t)weight_partitions() * kf + (size_t)nchunks * c->F;
}

static size_t thread_floats(const conv2d_layer *c) {
    if (c->direct) return (size_t)c->OH * c->OW * padded_k(c);
    int per = chunk_samples(c);
    size_t n = (size_t)per * (2 * col_floats_per_sample(c) + out_floats(c));
    size_t w = c->winograd == 2 ? cnnviz_winograd_block_floats(c->C, c->F) : 0;
    /* F(3x3, 3x3): its block, then the chunk's dU and dz */
    if (c->winograd == 3)
        w = cnnviz_winograd3_block_floats(c->C, c->F) + cnnviz_winograd3_du_floats(c->C, c->F) +
            (size_t)per * out_floats(c);
    return n > w ? n : w;
}

/* this thread's block; B must be the batch the shared region was laid out for */
static float *thread_block(const conv2d_layer *c, float *scratch, int B) {
    return scratch + shared_floats(c, B) + (size_t)thread_id() * thread_floats(c);
}

static size_t conv2d_scratch_floats(const cnnviz_layer *l, int B) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    return shared_floats(c, B) + (size_t)thread_slots() * thread_floats(c);
}

/* dx (H, W, C) of one sample from dz (OH, OW, F): each output pixel hands
 * dz·W^T back to the inputs its window read. Any stride; the stride-1 case
 * goes through direct_input_grad_s1 (conv2d-direct-kernel.h). */
CNNVIZ_HOT
static void direct_input_grad_any(const conv2d_layer *c, const float *dz, const float *w, float *dx) {
    int F = c->F, C = c->C;
    memset(dx, 0, in_floats(c) * sizeof *dx);
    for (int oy = 0; oy < c->OH; oy++)
        for (int ox = 0; ox < c->OW; ox++) {
            const float *d = dz + ((size_t)oy * c->OW + ox) * F;
            for (int ky = 0; ky < c->kh; ky++) {
                int iy = oy * c->sh - c->pad_top + ky;
                if (iy < 0 || iy >= c->H) continue;
                for (int kx = 0; kx < c->kw; kx++) {
                    int ix = ox * c->sw - c->pad_left + kx;
                    if (ix < 0 || ix >= c->W) continue;
                    float *xp = dx + ((size_t)iy * c->W + ix) * C;
                    const float *wp = w + ((size_t)ky * c->kw + kx) * C * F;
                    for (int ch = 0; ch < C; ch++) {
                        float s = 0.0f;
                        for (int f = 0; f < F; f++) s += d[f] * wp[(size_t)ch * F + f];
                        xp[ch] += s;
                    }
                }
            }
        }
}

static void direct_input_grad(const conv2d_layer *c, const float *dz, const float *w, float *dx) {
    if (c->sh == 1 && c->sw == 1 && cnnviz_wide_vectors())
        direct_input_grad_s1_v16(c, dz, w, dx);
    else if (c->sh == 1 && c->sw == 1)
        direct_input_grad_s1_v8(c, dz, w, dx);
    else
        direct_input_grad_any(c, dz, w, dx);
}

static void conv2d_backward_direct(const conv2d_layer *c, const float *in, const float *out, const float *dout,
                                   float *din, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    float *gw = p->weight_grads ? cnnviz_param_grad(&l->param[0], p) : NULL;
    float *gb = p->weight_grads && c->use_bias ? cnnviz_param_grad(&l->param[1], p) : NULL;
    int npix = c->OH * c->OW, wg = gw != NULL;
    int masked = p->dout_masked && l->activation == CNNVIZ_ACT_RELU;
    size_t kf = (size_t)c->K * c->F;
    float *dz_all = p->scratch, *partial = p->scratch + (size_t)B * out_floats(c);
    int interior[DIRECT_MAX_K], identity[DIRECT_MAX_K];
    tap_tables(c, interior, identity);
    #pragma omp parallel num_threads(threads_for(B))
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * out_floats(c);
            const float *dz = dout + o, *relu_y = NULL;
            /* ReLU's mask goes into the weight-gradient kernel unless the input
             * gradient needs dz too */
            if (masked) {
                /* the max pooling above did the ReLU's backward */
            } else if (l->activation == CNNVIZ_ACT_RELU && !din) {
                relu_y = out + o;
            } else if (l->activation != CNNVIZ_ACT_LINEAR) {
                cnnviz_activation_backward(l->activation, c->alpha, out + o, dout + o, dz_all + o, out_floats(c), c->F);
                dz = dz_all + o;
            }
            if (wg) {
                float *col = thread_block(c, p->scratch, B);
                float *part = partial + (size_t)b * (kf + c->F);
                if (direct_weight_grad9_ok(c)) {
                    direct_weight_grad9(c, in + (size_t)b * in_floats(c), interior, dz, relu_y, part,
                                        c->use_bias ? part + kf : NULL);
                } else {
                    direct_columns(c, in + (size_t)b * in_floats(c), interior, col);
                    direct_weight_grad(col, dz, relu_y, npix, c->K, padded_k(c), c->F, part,
                                       c->use_bias ? part + kf : NULL);
                }
            }
            if (din) direct_input_grad(c, dz, l->param[0].data, din + (size_t)b * in_floats(c));
        }
    }
    if (!wg) return;
    /* samples summed in order: the same bits for any thread count */
    for (int b = 0; b < B; b++) {
        const float *part = partial + (size_t)b * (kf + c->F);
        add_floats(gw, part, kf);
        if (gb) add_floats(gb, part + kf, (size_t)c->F);
    }
}

/* dz's share of nonzeros up to which backward skips the zeros (the
 * sparse_* kernels) instead of running col^T·dz and dz·W^T as sgemms.
 * Behind a ReLU and a 2x2 max pooling at most one value in four is
 * nonzero (about one in six on the seed net), where the sparse kernels
 * take half the sgemms' time; their time grows with the density and meets
 * the sgemms' near one in four. A dense dz keeps the sgemms. The choice
 * depends on the data only, never on the thread count. */
#ifndef SPARSE_MAX_DENSITY
#define SPARSE_MAX_DENSITY 0.25
#endif

CNNVIZ_HOT
static size_t count_nonzero(const float *restrict x, size_t n) {
    size_t nz = 0;
    #pragma omp simd reduction(+ : nz)
    for (size_t i = 0; i < n; i++) nz += x[i] != 0.0f;
    return nz;
}

/* wt (F, K) = W^T from the HWIO kernel, viewed as (K, F) */
static void transpose_kernel(const float *restrict w, int K, int F, float *restrict wt) {
    for (int k = 0; k < K; k++)
        for (int f = 0; f < F; f++) wt[(size_t)f * K + k] = w[(size_t)k * F + f];
}

/* The nonzeros of dz (rows, F), row by row: row p's are lf/lv[rs[p] ..
 * rs[p+1]), filters in order. lf/lv have room for rows*F entries. With
 * AVX-512 sixteen filters at a time compressed, with AVX2 eight at a time
 * permuted; else branch-free scalar code (which values are nonzero is as
 * good as random). */
static void nonzero_rows_plain(const float *restrict dz, int rows, int F, int *restrict rs, int *restrict lf,
                               float *restrict lv) {
    int n = 0;
    for (int p = 0; p < rows; p++) {
        const float *d = dz + (size_t)p * F;
        rs[p] = n;
        for (int f = 0; f < F; f++) lf[n] = f, lv[n] = d[f], n += d[f] != 0.0f;
    }
    rs[rows] = n;
}

#ifdef CNNVIZ_CLONES
/* pack_left[m]: the set bits of m in order, one per nibble (the first in
 * the lowest), a permutation that moves the lanes of mask m to the front */
static const uint32_t pack_left[256] = {
    0x00000000, 0x00000000, 0x00000001, 0x00000010, 0x00000002, 0x00000020, 0x00000021, 0x00000210,
    0x00000003, 0x00000030, 0x00000031, 0x00000310, 0x00000032, 0x00000320, 0x00000321, 0x00003210,
    0x00000004, 0x00000040, 0x00000041, 0x00000410, 0x00000042, 0x00000420, 0x00000421, 0x00004210,
    0x00000043, 0x00000430, 0x00000431, 0x00004310, 0x00000432, 0x00004320, 0x00004321, 0x00043210,
    0x00000005, 0x00000050, 0x00000051, 0x00000510, 0x00000052, 0x00000520, 0x00000521, 0x00005210,
    0x00000053, 0x00000530, 0x00000531, 0x00005310, 0x00000532, 0x00005320, 0x00005321, 0x00053210,
    0x00000054, 0x00000540, 0x00000541, 0x00005410, 0x00000542, 0x00005420, 0x00005421, 0x00054210,
    0x00000543, 0x00005430, 0x00005431, 0x00054310, 0x00005432, 0x00054320, 0x00054321, 0x00543210,
    0x00000006, 0x00000060, 0x00000061, 0x00000610, 0x00000062, 0x00000620, 0x00000621, 0x00006210,
    0x00000063, 0x00000630, 0x00000631, 0x00006310, 0x00000632, 0x00006320, 0x00006321, 0x00063210,
    0x00000064, 0x00000640, 0x00000641, 0x00006410, 0x00000642, 0x00006420, 0x00006421, 0x00064210,
    0x00000643, 0x00006430, 0x00006431, 0x00064310, 0x00006432, 0x00064320, 0x00064321, 0x00643210,
    0x00000065, 0x00000650, 0x00000651, 0x00006510, 0x00000652, 0x00006520, 0x00006521, 0x00065210,
    0x00000653, 0x00006530, 0x00006531, 0x00065310, 0x00006532, 0x00065320, 0x00065321, 0x00653210,
    0x00000654, 0x00006540, 0x00006541, 0x00065410, 0x00006542, 0x00065420, 0x00065421, 0x00654210,
    0x00006543, 0x00065430, 0x00065431, 0x00654310, 0x00065432, 0x00654320, 0x00654321, 0x06543210,
    0x00000007, 0x00000070, 0x00000071, 0x00000710, 0x00000072, 0x00000720, 0x00000721, 0x00007210,
    0x00000073, 0x00000730, 0x00000731, 0x00007310, 0x00000732, 0x00007320, 0x00007321, 0x00073210,
    0x00000074, 0x00000740, 0x00000741, 0x00007410, 0x00000742, 0x00007420, 0x00007421, 0x00074210,
    0x00000743, 0x00007430, 0x00007431, 0x00074310, 0x00007432, 0x00074320, 0x00074321, 0x00743210,
    0x00000075, 0x00000750, 0x00000751, 0x00007510, 0x00000752, 0x00007520, 0x00007521, 0x00075210,
    0x00000753, 0x00007530, 0x00007531, 0x00075310, 0x00007532, 0x00075320, 0x00075321, 0x00753210,
    0x00000754, 0x00007540, 0x00007541, 0x00075410, 0x00007542, 0x00075420, 0x00075421, 0x00754210,
    0x00007543, 0x00075430, 0x00075431, 0x00754310, 0x00075432, 0x00754320, 0x00754321, 0x07543210,
    0x00000076, 0x00000760, 0x00000761, 0x00007610, 0x00000762, 0x00007620, 0x00007621, 0x00076210,
    0x00000763, 0x00007630, 0x00007631, 0x00076310, 0x00007632, 0x00076320, 0x00076321, 0x00763210,
    0x00000764, 0x00007640, 0x00007641, 0x00076410, 0x00007642, 0x00076420, 0x00076421, 0x00764210,
    0x00007643, 0x00076430, 0x00076431, 0x00764310, 0x00076432, 0x00764320, 0x00764321, 0x07643210,
    0x00000765, 0x00007650, 0x00007651, 0x00076510, 0x00007652, 0x00076520, 0x00076521, 0x00765210,
    0x00007653, 0x00076530, 0x00076531, 0x00765310, 0x00076532, 0x00765320, 0x00765321, 0x07653210,
    0x00007654, 0x00076540, 0x00076541, 0x00765410, 0x00076542, 0x00765420, 0x00765421, 0x07654210,
    0x00076543, 0x00765430, 0x00765431, 0x07654310, 0x00765432, 0x07654320, 0x07654321, 0x76543210,
};

/* eight filters at a time: the nonzero lanes moved to the front by a
 * permutation and stored whole, n advancing by their count. A store of 8
 * at n never passes rows*F: n counts nonzeros before this group, at most
 * its offset p*F + f0. The lanes past the count are overwritten next. */
__attribute__((target("avx2,popcnt"))) static void nonzero_rows_avx2(const float *restrict dz, int rows, int F,
                                                                    int *restrict rs, int *restrict lf,
                                                                    float *restrict lv) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256i nibble = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), seven = _mm256_set1_epi32(7);
    int n = 0;
    for (int p = 0; p < rows; p++) {
        const float *d = dz + (size_t)p * F;
        rs[p] = n;
        for (int f0 = 0; f0 < F; f0 += 8) {
            __m256 v = _mm256_loadu_ps(d + f0);
            /* not-equal or unordered: a NaN counts as nonzero, as d != 0 does */
            int m = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
            __m256i perm = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)pack_left[m]), nibble), seven);
            _mm256_storeu_ps(lv + n, _mm256_permutevar8x32_ps(v, perm));
            _mm256_storeu_si256((__m256i *)(lf + n), _mm256_add_epi32(perm, _mm256_set1_epi32(f0)));
            n += __builtin_popcount((unsigned)m);
        }
    }
    rs[rows] = n;
}
#endif

#if defined(CNNVIZ_CLONES) && !defined(CNNVIZ_AVX2_MAX)
__attribute__((target("avx512f,popcnt"))) static void nonzero_rows_avx512(const float *restrict dz, int rows, int F,
                                                                         int *restrict rs, int *restrict lf,
                                                                         float *restrict lv) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512i sixteen = _mm512_set1_epi32(16);
    int n = 0;
    for (int p = 0; p < rows; p++) {
        const float *d = dz + (size_t)p * F;
        rs[p] = n;
        __m512i f = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int f0 = 0; f0 < F; f0 += 16, f = _mm512_add_epi32(f, sixteen)) {
            __m512 v = _mm512_loadu_ps(d + f0);
            /* not-equal or unordered: a NaN counts as nonzero, as d != 0 does */
            __mmask16 m = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);
            /* compressed in a register, then a masked store of the first
             * popcount lanes: the store form of vcompressps is microcoded
             * on Zen 4 (10% of a training epoch there, against 1% this way) */
            int k = __builtin_popcount(m);
            __mmask16 first = (__mmask16)((1u << k) - 1);
            _mm512_mask_storeu_ps(lv + n, first, _mm512_maskz_compress_ps(m, v));
            _mm512_mask_storeu_epi32(lf + n, first, _mm512_maskz_compress_epi32(m, f));
            n += k;
        }
    }
    rs[rows] = n;
}
#endif

static void nonzero_rows(const float *restrict dz, int rows, int F, int *restrict rs, int *restrict lf,
                         float *restrict lv) {
#ifdef CNNVIZ_CLONES
    /* the CPU itself, not cnnviz_wide_vectors(): tests force the wide paths
     * anywhere. Every path lists the same entries. Asked on every call, as
     * gemm.c does: a read of what the loader found, where a cached answer
     * in a static would be written by every thread of the caller's team. */
#ifndef CNNVIZ_AVX2_MAX
    if (F % 16 == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt")) {
        nonzero_rows_avx512(dz, rows, F, rs, lf, lv);
        return;
    }
#endif
    if (F % 8 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) {
        nonzero_rows_avx2(dz, rows, F, rs, lf, lv);
        return;
    }
#endif
    nonzero_rows_plain(dz, rows, F, rs, lf, lv);
}

/* combine_rows' blocks of NV vectors of type VT (W floats) while cond */
#define COMBINE_BLOCKS(cond, VT, NV, W)                                                                             \
    for (; (cond) && k + (NV) * (W) <= K; k += (NV) * (W)) {                                                        \
        VT a[NV];                                                                                                   \
        _Pragma("GCC unroll 16") for (int i = 0; i < (NV); i++) a[i] =                                              \
            from_zero ? (VT){0} : *(const VT *)(out + k + (W) * i);                                                 \
        for (int j = 0; j < n; j++) {                                                                               \
            const float *r = base + (size_t)idx[j] * K + k;                                                         \
            float v = val[j];                                                                                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < (NV); i++) a[i] += v * *(const VT *)(r + (W) * i);         \
        }                                                                                                           \
        _Pragma("GCC unroll 16") for (int i = 0; i < (NV); i++) *(VT *)(out + k + (W) * i) = a[i];                  \
    }

/* out (K) = (from_zero ? 0 : out) + sum_j val[j] * base[idx[j]*K ..], the
 * rows in list order: a row of dz·W^T from a pixel's nonzero filters, or a
 * filter's row of col^T·dz from its nonzero pixels. Always inlined, so each
 * vector clone of its callers gets its own copy. Where not wide, in 8-float
 * vectors: the 16-float ones spilled on AVX2 and the kernels ran there 5x
 * slower than on AVX-512. Each element has the same multiply-adds in the
 * same order either way. */
static inline __attribute__((always_inline)) void combine_rows(float *restrict out, int from_zero,
                                                               const float *restrict base, const int *restrict idx,
                                                               const float *restrict val, int n, int K, int wide) {
    int k = 0;
    COMBINE_BLOCKS(!wide, cnnviz_v8u, 8, 8)
    COMBINE_BLOCKS(!wide, cnnviz_v8u, 1, 8)
    COMBINE_BLOCKS(wide, cnnviz_v16u, 9, 16)
    COMBINE_BLOCKS(wide, cnnviz_v16u, 1, 16)
    for (; k < K; k++) {
        float a = from_zero ? 0.0f : out[k];
        for (int j = 0; j < n; j++) a += val[j] * base[(size_t)idx[j] * K + k];
        out[k] = a;
    }
}

/* din (nb, H, W, C) = col2im(dz·W^T), one output pixel at a time, each
 * pixel's row of dz·W^T summed over the pixel's nonzero dz only (in filter
 * order) and handed back to the inputs its window read. wt is W^T (F, K);
 * row is K floats of scratch; nzf/nzv hold F entries. */
CNNVIZ_HOT
static void sparse_input_grad(const conv2d_layer *c, const float *restrict dz, const float *restrict wt,
                              float *restrict din, int nb, float *restrict row, int *restrict nzf,
                              float *restrict nzv) {
    int F = c->F, wide = cnnviz_wide_vectors();
    memset(din, 0, (size_t)nb * in_floats(c) * sizeof *din);
    for (int b = 0; b < nb; b++) {
        float *dx = din + (size_t)b * in_floats(c);
        for (int oy = 0; oy < c->OH; oy++)
            for (int ox = 0; ox < c->OW; ox++) {
                int rs[2];
                nonzero_rows(dz + (((size_t)b * c->OH + oy) * c->OW + ox) * F, 1, F, rs, nzf, nzv);
                if (!rs[1]) continue;
                combine_rows(row, 1, wt, nzf, nzv, rs[1], c->K, wide);
                add_window(c, dx, row, oy, ox);
            }
    }
}

/* dwt (F, K) (+)= (col^T·dz)^T over a chunk's rows, filter by filter over
 * that filter's nonzero dz only, in row order; acc = 0 overwrites dwt.
 * Rows go in tiles whose columns stay in L1 while every filter reads the
 * few of them its nonzeros pick. lp/lv hold SPARSE_TILE entries. */
#define SPARSE_TILE 24
CNNVIZ_HOT
static void sparse_weight_grad(const float *restrict col, const float *restrict dz, int rows, int K, int F,
                               float *restrict dwt, int acc, int *restrict lp, float *restrict lv) {
    int wide = cnnviz_wide_vectors();
    if (!acc) memset(dwt, 0, (size_t)F * K * sizeof *dwt);
    for (int p0 = 0; p0 < rows; p0 += SPARSE_TILE) {
        int pn = rows - p0 < SPARSE_TILE ? rows - p0 : SPARSE_TILE;
        for (int f = 0; f < F; f++) {
            int n = 0;
            for (int p = p0; p < p0 + pn; p++) {
                float v = dz[(size_t)p * F + f];
                lp[n] = p, lv[n] = v, n += v != 0.0f;
            }
            if (!n) continue;
            combine_rows(dwt + (size_t)f * K, 0, col, lp, lv, n, K, wide);
        }
    }
}

/* where output pixel q (oy*OW + ox) of a sample finds its window: the
 * floats from the sample's input to the window's top-left tap (no padding) */
static size_t window_at(const conv2d_layer *c, int q) {
    return ((size_t)(q / c->OW) * c->sh * c->W + (size_t)(q % c->OW) * c->sw) * c->C;
}

/* The kernels that read the windows straight from the input, in 16-float
 * (AVX-512) and 8-float (AVX2) vectors (conv2d-sparse-kernel.h). */
#define SK_V cnnviz_v16
#define SK_VU cnnviz_v16u
#define SK_L 16
#define SK_RP 3
#define SK_NAME(x) x##_v16
#include "conv2d-sparse-kernel.h"

#define SK_V cnnviz_v8
#define SK_VU cnnviz_v8u
#define SK_L 8
#define SK_RP 1
#define SK_NAME(x) x##_v8
#include "conv2d-sparse-kernel.h"

/* dwt (F, K) (+)= the kernel gradient as sparse_weight_grad sums it, from
 * the windows in `in` (every window inside the input, a window row of
 * kw*C = 32, 64, 96 or 128 floats) */
static void sparse_weight_grad_windows(const conv2d_layer *c, const float *restrict in, const float *restrict dz,
                                       int rows, float *restrict dwt, int acc, int *restrict lp, float *restrict lv) {
    if (!acc) memset(dwt, 0, (size_t)c->F * c->K * sizeof *dwt);
    if (cnnviz_wide_vectors())
        weight_grad_windows_v16(c, in, dz, rows, dwt, lp, lv);
    else
        weight_grad_windows_v8(c, in, dz, rows, dwt, lp, lv);
}

/* whether sparse_weight_grad_filters takes a layer sparse_weight_grad_windows
 * takes: its registers hold rows of the kernel gradient of a 3-row window */
static int filters_direct(const conv2d_layer *c) { return c->kh == 3; }

static void sparse_weight_grad_filters(const conv2d_layer *c, const float *restrict in, int rows,
                                       const int *restrict rs, const int *restrict lf, const float *restrict lv,
                                       float *restrict dwt, int acc, int *restrict pos, int *restrict cp,
                                       float *restrict cv) {
    if (!acc) memset(dwt, 0, (size_t)c->F * c->K * sizeof *dwt);
    if (cnnviz_wide_vectors())
        weight_grad_filters_v16(c, in, rows, rs, lf, lv, dwt, pos, cp, cv);
    else
        weight_grad_filters_v8(c, in, rows, rs, lf, lv, dwt, pos, cp, cv);
}

static void sparse_input_grad_windows(const conv2d_layer *c, const float *restrict wt, float *restrict din, int nb,
                                      const int *restrict rs, const int *restrict lf, const float *restrict lv) {
    if (cnnviz_wide_vectors())
        input_grad_windows_v16(c, wt, din, nb, rs, lf, lv);
    else
        input_grad_windows_v8(c, wt, din, nb, rs, lf, lv);
}

/* whether the kernels of one of the two vector widths run here */
static int vector_kernels(void) { return cnnviz_wide_vectors() || cnnviz_avx2_vectors(); }

/* whether sparse_weight_grad_windows handles this layer */
static int windows_direct(const conv2d_layer *c) {
    int seg = c->kw * c->C;
    return vector_kernels() && cnnviz_windows_inside(c->H, c->kh, c->sh, c->OH, c->pad_top) &&
           cnnviz_windows_inside(c->W, c->kw, c->sw, c->OW, c->pad_left) && seg % 16 == 0 &&
           (seg == 32 || seg == 64 || seg == 96 || seg == 128) &&
           (size_t)chunk_samples(c) * in_floats(c) < ((size_t)1 << 30);
}

/* partial (K, F) = (zero ? 0 : partial) + dwt^T */
static void add_transposed(float *restrict partial, const float *restrict dwt, int K, int F, int zero) {
    for (int k = 0; k < K; k++) {
        float *pr = partial + (size_t)k * F;
        for (int f = 0; f < F; f++) pr[f] = (zero ? 0.0f : pr[f]) + dwt[(size_t)f * K + k];
    }
}

/* A chunk's dz (samples from b0, rows output pixels), the gradient at
 * the pre-activation output: dout itself, or dout*act'(y) in dzbuf; and,
 * with pb, the chunk's bias gradient into its own row of pb. With
 * dout_masked the max pooling above did the ReLU's backward. */
static const float *chunk_dz(const conv2d_layer *c, const float *out, const float *dout, size_t o, int rows,
                             const cnnviz_pass *p, float *dzbuf, float *pb) {
    const cnnviz_layer *l = &c->base;
    const float *dz = dout + o;
    if (l->activation != CNNVIZ_ACT_LINEAR && !(p->dout_masked && l->activation == CNNVIZ_ACT_RELU)) {
        cnnviz_activation_backward(l->activation, c->alpha, out + o, dout + o, dzbuf, (size_t)rows * c->F, c->F);
        dz = dzbuf;
    }
    if (pb) {
        memset(pb, 0, (size_t)c->F * sizeof *pb);
        cnnviz_bias_grad_rows(pb, dz, (size_t)rows, c->F);
    }
    return dz;
}

/* gw += the parts' partial kernels (parts > 1) and gb += the chunks'
 * partial biases, in order */
static void add_partials(const conv2d_layer *c, float *gw, float *gb, const float *pw, const float *pb, int parts,
                         int nchunks) {
    size_t kf = (size_t)c->K * c->F;
    if (gw && parts > 1)
        for (int j = 0; j < parts; j++) add_floats(gw, pw + (size_t)j * kf, kf);
    if (gb)
        for (int ch = 0; ch < nchunks; ch++) add_floats(gb, pb + (size_t)ch * c->F, (size_t)c->F);
}

/* Chunk by chunk, all in L2: dz = dout*act'(y); partial kernel += col^T·dz
 * with the columns rebuilt from the input (cheaper than keeping a batch of
 * them in memory); din = col2im(dz·W^T). */
static void conv2d_backward_gemm(const conv2d_layer *c, const float *in, const float *out, const float *dout,
                                 float *din, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    size_t colps = col_floats_per_sample(c), kf = (size_t)c->K * c->F;
    int per = chunk_samples(c), nchunks = (B + per - 1) / per;
    float *gw = p->weight_grads ? cnnviz_param_grad(&l->param[0], p) : NULL;
    float *gb = p->weight_grads && c->use_bias ? cnnviz_param_grad(&l->param[1], p) : NULL;
    int wg = gw != NULL;
    /* a few chunks (a depth-first micro-batch, gradient ascent) go in order
     * straight into the gradient: partitions would cost more than they save */
    int parts = nchunks <= 4 ? 1 : weight_partitions();
    float *pw = parts == 1 ? gw : p->scratch, *pb = p->scratch + (size_t)weight_partitions() * kf;
    /* the sparse input gradient's buffers fit in a chunk's dcol */
    int sparse_ok = (size_t)per * colps >= 2 * kf + (size_t)c->K + 2 * (size_t)c->F + 2 * (size_t)per * c->OH * c->OW;
    int windows = windows_direct(c);
    size_t maxrows = (size_t)per * c->OH * c->OW;
    /* and the lists of sparse_input_grad_windows after them */
    size_t lists_end = 2 * kf + (size_t)c->K + 2 * (size_t)c->F + 3 * maxrows + 1 + 2 * maxrows * c->F;
    int windows_in = windows && sparse_ok && (size_t)per * colps >= lists_end;
    /* and sparse_weight_grad_filters' per-sample lists by filter after those */
    size_t ohwf = (size_t)c->OH * c->OW * c->F;
    int filters = windows_in && filters_direct(c) && (size_t)per * colps >= lists_end + 2 * ohwf + 2 * (size_t)c->F;
    #pragma omp parallel num_threads(threads_for(parts))
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int j = 0; j < parts; j++) {
            float *col = thread_block(c, p->scratch, B);
            float *dcol = col + (size_t)per * colps;
            float *dzbuf = dcol + (size_t)per * colps;
            float *partial = wg ? pw + (size_t)j * kf : NULL;
            int first = 1, have_wt = 0, have_dwt = 0;
            /* dcol's room, when the sparse kernels run: W^T (F, K), the
             * kernel gradient's (F, K) sum, a row of K, nonzero lists */
            float *wt = dcol, *dwt = wt + kf, *row = dwt + kf, *nzv = row + c->K, *lv = nzv + c->F;
            int *nzf = (int *)(lv + (size_t)per * c->OH * c->OW), *lp = nzf + c->F;
            int *rs = lp + maxrows, *lf = rs + maxrows + 1;
            float *lvv = (float *)(lf + maxrows * (size_t)c->F);
            int *cp = (int *)(lvv + maxrows * (size_t)c->F), *pos = cp + ohwf;
            float *cv = (float *)(pos + 2 * c->F);
            for (int ch = nchunks * j / parts; ch < nchunks * (j + 1) / parts; ch++) {
                int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
                int rows = nb * c->OH * c->OW;
                const float *dz = chunk_dz(c, out, dout, (size_t)b0 * out_floats(c), rows, p, dzbuf,
                                           gb ? pb + (size_t)ch * c->F : NULL);
                /* a mostly zero dz (ReLU and max pooling after this layer) goes
                 * through the kernels that skip its zeros */
                int sparse = sparse_ok && (double)count_nonzero(dz, (size_t)rows * c->F) <=
                                              SPARSE_MAX_DENSITY * rows * c->F;
                /* the nonzeros listed once for both kernels that read them */
                if (sparse && windows_in && ((wg && filters) || din)) nonzero_rows(dz, rows, c->F, rs, lf, lvv);
                if (wg && sparse && filters) {
                    sparse_weight_grad_filters(c, in + (size_t)b0 * in_floats(c), rows, rs, lf, lvv, dwt, have_dwt,
                                               pos, cp, cv);
                    have_dwt = 1;
                } else if (wg && sparse && windows) {
                    sparse_weight_grad_windows(c, in + (size_t)b0 * in_floats(c), dz, rows, dwt, have_dwt, lp, lv);
                    have_dwt = 1;
                } else if (wg) {
                    im2col(c, in + (size_t)b0 * in_floats(c), col, nb);
                    if (sparse) {
                        sparse_weight_grad(col, dz, rows, c->K, c->F, dwt, have_dwt, lp, lv);
                        have_dwt = 1;
                    } else {
                        cnnviz_gemm(1, 0, c->K, c->F, rows, col, c->K, dz, c->F, partial, c->F,
                                    !(first && parts > 1));
                        first = 0;
                    }
                }
                if (din && sparse) {
                    if (!have_wt) transpose_kernel(l->param[0].data, c->K, c->F, wt), have_wt = 1;
                    if (windows_in)
                        sparse_input_grad_windows(c, wt, din + (size_t)b0 * in_floats(c), nb, rs, lf, lvv);
                    else
                        sparse_input_grad(c, dz, wt, din + (size_t)b0 * in_floats(c), nb, row, nzf, nzv);
                } else if (din) {
                    if (have_dwt) { /* dcol is about to be overwritten */
                        add_transposed(partial, dwt, c->K, c->F, first && parts > 1);
                        first = have_dwt = 0;
                    }
                    cnnviz_gemm(0, 1, rows, c->K, c->F, dz, c->F, l->param[0].data, c->F, dcol, c->K, 0);
                    have_wt = 0;
                    col2im(c, dcol, din + (size_t)b0 * in_floats(c), nb);
                }
            }
            if (have_dwt) {
                add_transposed(partial, dwt, c->K, c->F, first && parts > 1);
                first = 0;
            }
            if (wg && first && parts > 1) memset(partial, 0, kf * sizeof *partial);
        }
    }
    add_partials(c, gw, gb, pw, pb, parts, nchunks);
}

/* F(3x3, 3x3): chunks of samples in a fixed set of partitions as on the
 * sgemm path, each partition's kernel gradient summed in the Winograd
 * domain (dU) over its chunks and turned into a partial kernel at its end. */
static void conv2d_backward_winograd3(const conv2d_layer *c, const float *in, const float *out, const float *dout,
                                      float *din, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    size_t kf = (size_t)c->K * c->F, uf = cnnviz_winograd3_du_floats(c->C, c->F);
    int per = chunk_samples(c), nchunks = (B + per - 1) / per;
    float *gw = p->weight_grads ? cnnviz_param_grad(&l->param[0], p) : NULL;
    float *gb = p->weight_grads && c->use_bias ? cnnviz_param_grad(&l->param[1], p) : NULL;
    int parts = nchunks <= 4 ? 1 : weight_partitions();
    float *pw = p->scratch, *pb = p->scratch + (size_t)weight_partitions() * kf;
    #pragma omp parallel num_threads(threads_for(parts))
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int j = 0; j < parts; j++) {
            float *block = thread_block(c, p->scratch, B);
            float *du = block + cnnviz_winograd3_block_floats(c->C, c->F), *dzbuf = du + uf;
            int c0 = nchunks * j / parts, c1 = nchunks * (j + 1) / parts;
            for (int ch = c0; ch < c1; ch++) {
                int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
                const float *dz = chunk_dz(c, out, dout, (size_t)b0 * out_floats(c), nb * c->OH * c->OW, p, dzbuf,
                                           gb ? pb + (size_t)ch * c->F : NULL);
                cnnviz_winograd3_backward(in + (size_t)b0 * in_floats(c), dz, nb, c->H, c->W, c->C, c->pad_top,
                                          c->pad_left, p->prep, din ? din + (size_t)b0 * in_floats(c) : NULL,
                                          gw ? du : NULL, ch == c0, c->OH, c->OW, c->F, block);
            }
            /* a partition without chunks (more partitions than chunks) adds zeros */
            if (gw && parts > 1) memset(pw + (size_t)j * kf, 0, kf * sizeof *pw);
            if (gw && c1 > c0) cnnviz_winograd3_weight_grad(du, c->C, c->F, parts == 1 ? gw : pw + (size_t)j * kf);
        }
    }
    add_partials(c, gw, gb, pw, pb, parts, nchunks);
}

static void conv2d_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                            float *din, int B, cnnviz_pass *p) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    if (c->winograd == 3 && p->training)
        conv2d_backward_winograd3(c, in, out, dout, din, B, p);
    else if (c->direct)
        conv2d_backward_direct(c, in, out, dout, din, B, p);
    else
        conv2d_backward_gemm(c, in, out, dout, din, B, p);
}

static const cnnviz_layer_ops conv2d_ops = {
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .scratch_floats = conv2d_scratch_floats,
    .prep_floats = conv2d_prep_floats,
    .prepare = conv2d_prepare,
};

cnnviz_layer *cnnviz_conv2d_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    char buf[64];
    cnnviz_shape_format(in, buf, sizeof buf);
    if (in->rank != 3) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "conv2d needs an (h, w, c) input, not %s", buf);
        return NULL;
    }
    if (spec->filters <= 0 || spec->kernel[0] <= 0 || spec->kernel[1] <= 0 || spec->strides[0] < 0 ||
        spec->strides[1] < 0) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "conv2d needs positive filters, kernel size and strides");
        return NULL;
    }
    if ((unsigned)spec->activation > CNNVIZ_ACT_LEAKY_RELU) {
        cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "unknown activation %d", (int)spec->activation);
        return NULL;
    }
    conv2d_layer *c = cnnviz_layer_alloc(sizeof *c, &conv2d_ops, err);
    if (!c) return NULL;
    cnnviz_layer *l = &c->base;
    c->H = in->dim[0], c->W = in->dim[1], c->C = in->dim[2];
    c->F = spec->filters;
    c->kh = spec->kernel[0], c->kw = spec->kernel[1];
    c->sh = spec->strides[0] ? spec->strides[0] : 1;
    c->sw = spec->strides[1] ? spec->strides[1] : 1;
    cnnviz_window_geometry(c->H, c->kh, c->sh, spec->padding, &c->OH, &c->pad_top);
    cnnviz_window_geometry(c->W, c->kw, c->sw, spec->padding, &c->OW, &c->pad_left);
    c->K = c->kh * c->kw * c->C;
    c->use_bias = !spec->no_bias;
    /* the direct and Winograd kernels, in AVX-512 (cnnviz_wide_vectors) or
     * AVX2 (cnnviz_avx2_vectors) vectors; CPUs with neither take sgemm */
    int vec = vector_kernels();
    c->direct = vec && c->K <= DIRECT_MAX_K;
    if (vec && !c->direct) {
        if (cnnviz_winograd_usable(c->kh, c->kw, c->sh, c->sw, c->C, c->F, c->OH, c->OW))
            c->winograd = 2;
        else if (cnnviz_winograd3_usable(c->kh, c->kw, c->sh, c->sw, c->C, c->F, c->OH, c->OW))
            c->winograd = 3;
    }
    c->alpha = cnnviz_fused_activation_alpha(spec->activation);
    l->activation = spec->activation;
    l->out_shape = cnnviz_shape3(c->OH, c->OW, c->F);
    cnnviz_param *k = cnnviz_layer_add_param(l, "kernel", (cnnviz_shape){4, {c->kh, c->kw, c->C, c->F}}, 1);
    k->l1 = spec->l1;
    k->l2 = spec->l2;
    if (c->use_bias) cnnviz_layer_add_param(l, "bias", cnnviz_shape1(c->F), 1);
    return l;
}
