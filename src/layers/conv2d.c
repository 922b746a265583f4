/* Conv2D, NHWC input, HWIO kernel (kh,kw,Cin,Cout), TF's valid/same padding.
 *
 * Two forward paths:
 *  - direct, when K = kh*kw*Cin is tiny (the first layer of an MNIST net has
 *    K = 9): a gemm with K = 9 is bound by writing its output, so we write
 *    each output pixel once from a loop the compiler vectorises over Cout;
 *  - otherwise im2col + sgemm. The HWIO kernel is already the (K, Cout)
 *    row-major matrix and the (B*OH*OW, Cout) product is already NHWC.
 *    Samples go in chunks whose columns fit in L2, one chunk per thread
 *    with a single-threaded sgemm (OpenBLAS runs serially inside an OpenMP
 *    region), so a chunk's bits do not depend on the thread count.
 *
 * Backward: dz = dout*act'(y); dW += col^T·dz and db += sum dz over the
 * whole batch (threaded sgemm splits rows/columns, never the sum);
 * din = col2im(dz·W^T) chunk by chunk. The columns come from aux when the
 * workspace keeps them (training) or are rebuilt into scratch. */
#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

/* im2col for up to this many bytes of columns per chunk: a chunk's columns
 * and its output stay in a 2 MiB L2 while sgemm reads them */
#define CHUNK_COL_BYTES (512 * 1024)
/* Below this K the direct kernel beats im2col + sgemm */
#define DIRECT_MAX_K 16

typedef struct {
    cnnviz_layer base;
    int H, W, C;       /* input */
    int OH, OW, F;     /* output */
    int kh, kw, sh, sw;
    int pad_top, pad_left;
    int K;             /* kh*kw*C */
    int use_bias, direct;
    float alpha;
} conv2d_layer;

static int thread_slots(void) {
#ifdef _OPENMP
    int n = omp_get_num_procs();
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
    size_t per = col_floats_per_sample(c) * sizeof(float);
    size_t n = CHUNK_COL_BYTES / (per ? per : 1);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* col (nb*OH*OW, K) from in (nb, H, W, C); zeros where the window hangs over the padding */
static void im2col(const conv2d_layer *c, const float *in, float *col, int nb) {
    for (int b = 0; b < nb; b++) {
        const float *x = in + (size_t)b * in_floats(c);
        for (int oy = 0; oy < c->OH; oy++)
            for (int ox = 0; ox < c->OW; ox++) {
                float *row = col + (((size_t)b * c->OH + oy) * c->OW + ox) * c->K;
                int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
                for (int ky = 0; ky < c->kh; ky++) {
                    float *dst = row + (size_t)ky * c->kw * c->C;
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= c->H) {
                        memset(dst, 0, (size_t)c->kw * c->C * sizeof *dst);
                        continue;
                    }
                    int kx0 = ix0 < 0 ? -ix0 : 0;
                    int kx1 = ix0 + c->kw > c->W ? c->W - ix0 : c->kw;
                    if (kx0 > 0) memset(dst, 0, (size_t)kx0 * c->C * sizeof *dst);
                    if (kx1 > kx0)
                        memcpy(dst + (size_t)kx0 * c->C, x + ((size_t)iy * c->W + ix0 + kx0) * c->C,
                               (size_t)(kx1 - kx0) * c->C * sizeof *dst);
                    if (kx1 < c->kw) {
                        int from = kx1 > kx0 ? kx1 : kx0;
                        memset(dst + (size_t)from * c->C, 0, (size_t)(c->kw - from) * c->C * sizeof *dst);
                    }
                }
            }
    }
}

/* din (nb, H, W, C) = sum of dcol's entries over every window position that read each pixel */
static void col2im(const conv2d_layer *c, const float *dcol, float *din, int nb) {
    memset(din, 0, (size_t)nb * in_floats(c) * sizeof *din);
    for (int b = 0; b < nb; b++) {
        float *dx = din + (size_t)b * in_floats(c);
        for (int oy = 0; oy < c->OH; oy++)
            for (int ox = 0; ox < c->OW; ox++) {
                const float *row = dcol + (((size_t)b * c->OH + oy) * c->OW + ox) * c->K;
                int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
                for (int ky = 0; ky < c->kh; ky++) {
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= c->H) continue;
                    for (int kx = 0; kx < c->kw; kx++) {
                        int ix = ix0 + kx;
                        if (ix < 0 || ix >= c->W) continue;
                        const float *src = row + ((size_t)ky * c->kw + kx) * c->C;
                        float *dst = dx + ((size_t)iy * c->W + ix) * c->C;
                        #pragma omp simd
                        for (int ch = 0; ch < c->C; ch++) dst[ch] += src[ch];
                    }
                }
            }
    }
}

/* Direct convolution of one sample: out (OH, OW, F) from x (H, W, C). */
static void conv2d_direct_sample(const conv2d_layer *c, const float *x, const float *w, const float *bias,
                                 float *out) {
    int F = c->F;
    for (int oy = 0; oy < c->OH; oy++)
        for (int ox = 0; ox < c->OW; ox++) {
            float *acc = out + ((size_t)oy * c->OW + ox) * F;
            if (bias)
                memcpy(acc, bias, (size_t)F * sizeof *acc);
            else
                memset(acc, 0, (size_t)F * sizeof *acc);
            int iy0 = oy * c->sh - c->pad_top, ix0 = ox * c->sw - c->pad_left;
            for (int ky = 0; ky < c->kh; ky++) {
                int iy = iy0 + ky;
                if (iy < 0 || iy >= c->H) continue;
                for (int kx = 0; kx < c->kw; kx++) {
                    int ix = ix0 + kx;
                    if (ix < 0 || ix >= c->W) continue;
                    const float *xp = x + ((size_t)iy * c->W + ix) * c->C;
                    const float *wp = w + ((size_t)ky * c->kw + kx) * c->C * F;
                    for (int ch = 0; ch < c->C; ch++) {
                        float v = xp[ch];
                        const float *wr = wp + (size_t)ch * F;
                        #pragma omp simd
                        for (int f = 0; f < F; f++) acc[f] += v * wr[f];
                    }
                }
            }
        }
}

static void conv2d_forward_direct(const conv2d_layer *c, const float *in, float *out, int B) {
    const cnnviz_layer *l = &c->base;
    const float *bias = c->use_bias ? l->param[1].data : NULL;
    #pragma omp parallel for schedule(static) num_threads(threads_for(B))
    for (int b = 0; b < B; b++) {
        float *y = out + (size_t)b * out_floats(c);
        conv2d_direct_sample(c, in + (size_t)b * in_floats(c), l->param[0].data, bias, y);
        cnnviz_activation_forward(l->activation, c->alpha, y, out_floats(c), c->F);
    }
}

static void conv2d_forward_gemm(const conv2d_layer *c, const float *in, float *out, int B, cnnviz_pass *p) {
    const cnnviz_layer *l = &c->base;
    int per = chunk_samples(c);
    int nchunks = (B + per - 1) / per;
    size_t colps = col_floats_per_sample(c);
    #pragma omp parallel for schedule(static) num_threads(threads_for(nchunks))
    for (int ch = 0; ch < nchunks; ch++) {
        int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
        /* a training workspace keeps every chunk's columns for backward */
        float *col = p->aux ? p->aux + (size_t)b0 * colps : p->scratch + (size_t)thread_id() * per * colps;
        im2col(c, in + (size_t)b0 * in_floats(c), col, nb);
        int rows = nb * c->OH * c->OW;
        float *y = out + (size_t)b0 * out_floats(c);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, c->F, c->K, 1.0f, col, c->K,
                    l->param[0].data, c->F, 0.0f, y, c->F);
        if (c->use_bias) cnnviz_add_bias_rows(y, l->param[1].data, (size_t)rows, c->F);
        cnnviz_activation_forward(l->activation, c->alpha, y, (size_t)rows * c->F, c->F);
    }
}

static void conv2d_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    if (c->direct)
        conv2d_forward_direct(c, in, out, B);
    else
        conv2d_forward_gemm(c, in, out, B, p);
}

/* Backward scratch: dz (B*OH*OW*F), then the columns when aux does not keep
 * them (B*OH*OW*K), then one dcol chunk per thread. */
static size_t conv2d_scratch_floats(const cnnviz_layer *l, int B) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    size_t fwd = c->direct ? 0 : (size_t)thread_slots() * chunk_samples(c) * col_floats_per_sample(c);
    size_t bwd = (size_t)B * out_floats(c) + (size_t)B * col_floats_per_sample(c) +
                 (size_t)thread_slots() * chunk_samples(c) * col_floats_per_sample(c);
    return fwd > bwd ? fwd : bwd;
}

static size_t conv2d_aux_floats(const cnnviz_layer *l, int B, int training) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    return training && !c->direct ? (size_t)B * col_floats_per_sample(c) : 0;
}

static void conv2d_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                            float *din, int B, cnnviz_pass *p) {
    const conv2d_layer *c = (const conv2d_layer *)l;
    size_t M = (size_t)B * c->OH * c->OW;
    size_t colps = col_floats_per_sample(c);
    float *dz_buf = p->scratch;
    float *col_buf = dz_buf + (size_t)B * out_floats(c);
    float *dcol_buf = col_buf + (size_t)B * colps;
    const float *dz = dout;
    if (l->activation != CNNVIZ_ACT_LINEAR) {
        cnnviz_activation_backward(l->activation, c->alpha, out, dout, dz_buf, M * c->F, c->F);
        dz = dz_buf;
    }
    if (p->weight_grads) {
        const float *col = p->aux;
        if (!col) {
            int per = chunk_samples(c), nchunks = (B + per - 1) / per;
            #pragma omp parallel for schedule(static) num_threads(threads_for(nchunks))
            for (int ch = 0; ch < nchunks; ch++) {
                int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
                im2col(c, in + (size_t)b0 * in_floats(c), col_buf + (size_t)b0 * colps, nb);
            }
            col = col_buf;
        }
        if (l->param[0].grad)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->K, c->F, (int)M, 1.0f, col, c->K, dz, c->F,
                        1.0f, l->param[0].grad, c->F);
        if (c->use_bias && l->param[1].grad) cnnviz_bias_grad_rows(l->param[1].grad, dz, M, c->F);
    }
    if (!din) return;
    int per = chunk_samples(c), nchunks = (B + per - 1) / per;
    #pragma omp parallel for schedule(static) num_threads(threads_for(nchunks))
    for (int ch = 0; ch < nchunks; ch++) {
        int b0 = ch * per, nb = B - b0 < per ? B - b0 : per;
        int rows = nb * c->OH * c->OW;
        float *dcol = dcol_buf + (size_t)thread_id() * per * colps;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, c->K, c->F, 1.0f,
                    dz + (size_t)b0 * out_floats(c), c->F, l->param[0].data, c->F, 0.0f, dcol, c->K);
        col2im(c, dcol, din + (size_t)b0 * in_floats(c), nb);
    }
}

static const cnnviz_layer_ops conv2d_ops = {
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .aux_floats = conv2d_aux_floats,
    .scratch_floats = conv2d_scratch_floats,
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
    c->direct = c->K <= DIRECT_MAX_K;
    c->alpha = cnnviz_fused_activation_alpha(spec->activation);
    l->activation = spec->activation;
    l->out_shape = cnnviz_shape3(c->OH, c->OW, c->F);
    cnnviz_param *k = cnnviz_layer_add_param(l, "kernel", (cnnviz_shape){4, {c->kh, c->kw, c->C, c->F}}, 1);
    k->l1 = spec->l1;
    k->l2 = spec->l2;
    if (c->use_bias) cnnviz_layer_add_param(l, "bias", cnnviz_shape1(c->F), 1);
    return l;
}
