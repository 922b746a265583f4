/* Activation functions (fused into Conv2D/Dense, or as their own layer:
 * Activation, ReLU, LeakyReLU, ELU, Softmax). Backward works from the
 * activation's OUTPUT so no pre-activation copy has to be kept. */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif

#include "layers.h"

/* Below this many values a parallel region costs more than it saves. */
#define PARALLEL_MIN 32768

static void softmax_rows(float *x, size_t rows, int c) {
    #pragma omp parallel for schedule(static) if (rows * (size_t)c >= PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * (size_t)c;
        /* subtract the max so exp never overflows (what TF's softmax does) */
        float mx = v[0];
        for (int j = 1; j < c; j++) mx = v[j] > mx ? v[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < c; j++) {
            v[j] = expf(v[j] - mx);
            sum += v[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < c; j++) v[j] *= inv;
    }
}

/* Elementwise activations over x[0..n), serial; the public functions split
 * large arrays between threads (each element on its own: any split gives
 * the same bits). */
CNNVIZ_HOT
static void forward_range(cnnviz_activation a, float alpha, float *restrict x, size_t n) {
    switch (a) {
    case CNNVIZ_ACT_RELU:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    case CNNVIZ_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        return;
    case CNNVIZ_ACT_TANH:
        for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        return;
    case CNNVIZ_ACT_ELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
        return;
    case CNNVIZ_ACT_LEAKY_RELU:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
        return;
    case CNNVIZ_ACT_LINEAR:
    case CNNVIZ_ACT_SOFTMAX:
        return;
    }
}

CNNVIZ_HOT
static void backward_range(cnnviz_activation a, float alpha, const float *restrict y, const float *dy, float *dx,
                           size_t n) {
    switch (a) {
    case CNNVIZ_ACT_LINEAR:
        if (dx != dy) memmove(dx, dy, n * sizeof *dx);
        return;
    case CNNVIZ_ACT_RELU:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        return;
    case CNNVIZ_ACT_SIGMOID:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        return;
    case CNNVIZ_ACT_TANH:
        #pragma omp simd
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        return;
    case CNNVIZ_ACT_ELU:
        /* for x <= 0, y = alpha*(e^x - 1) so dy/dx = alpha*e^x = y + alpha */
        #pragma omp simd
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : dy[i] * (y[i] + alpha);
        return;
    case CNNVIZ_ACT_LEAKY_RELU:
        /* sign(y) = sign(x) for a positive slope */
        #pragma omp simd
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
        return;
    case CNNVIZ_ACT_SOFTMAX:
        return;
    }
}

static void softmax_backward_rows(const float *y, const float *dy, float *dx, size_t rows, int c) {
    /* dx = y * (dy - sum(dy*y)) over each row: the softmax Jacobian applied to dy */
    #pragma omp parallel for schedule(static) if (rows * (size_t)c >= PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * (size_t)c, *dyr = dy + r * (size_t)c;
        float *dxr = dx + r * (size_t)c;
        float dot = 0.0f;
        for (int j = 0; j < c; j++) dot += dyr[j] * yr[j];
        for (int j = 0; j < c; j++) dxr[j] = yr[j] * (dyr[j] - dot);
    }
}

/* [begin, end) of thread t's share of n, in multiples of 16 floats */
static void share(size_t n, int t, int nt, size_t *begin, size_t *end) {
    size_t blocks = (n + 15) / 16;
    size_t b0 = blocks * (size_t)t / (size_t)nt, b1 = blocks * (size_t)(t + 1) / (size_t)nt;
    *begin = b0 * 16 < n ? b0 * 16 : n;
    *end = b1 * 16 < n ? b1 * 16 : n;
}

void cnnviz_activation_forward(cnnviz_activation a, float alpha, float *x, size_t n, int channels) {
    if (a == CNNVIZ_ACT_LINEAR) return;
    if (a == CNNVIZ_ACT_SOFTMAX) {
        softmax_rows(x, n / (size_t)channels, channels);
        return;
    }
    if (n < PARALLEL_MIN) {
        forward_range(a, alpha, x, n);
        return;
    }
    #pragma omp parallel
    {
        size_t b, e;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &b, &e);
        forward_range(a, alpha, x + b, e - b);
    }
}

void cnnviz_activation_backward(cnnviz_activation a, float alpha, const float *y, const float *dy, float *dx,
                                size_t n, int channels) {
    if (a == CNNVIZ_ACT_SOFTMAX) {
        softmax_backward_rows(y, dy, dx, n / (size_t)channels, channels);
        return;
    }
    if (n < PARALLEL_MIN) {
        backward_range(a, alpha, y, dy, dx, n);
        return;
    }
    #pragma omp parallel
    {
        size_t b, e;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &b, &e);
        backward_range(a, alpha, y + b, dy + b, dx + b, e - b);
    }
}

/* --- the Activation layer ------------------------------------------------- */

typedef struct {
    cnnviz_layer base;
    float alpha;
    int channels;
} activation_layer;

static void activation_layer_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    const activation_layer *a = (const activation_layer *)l;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    memcpy(out, in, n * sizeof *out);
    cnnviz_activation_forward(l->activation, a->alpha, out, n, a->channels);
}

static void activation_layer_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                                      float *din, int B, cnnviz_pass *p) {
    (void)in, (void)p;
    const activation_layer *a = (const activation_layer *)l;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    cnnviz_activation_backward(l->activation, a->alpha, out, dout, din, n, a->channels);
}

static const cnnviz_layer_ops activation_ops = {
    .forward = activation_layer_forward,
    .backward = activation_layer_backward,
};

cnnviz_layer *cnnviz_activation_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    if ((unsigned)spec->activation > CNNVIZ_ACT_LEAKY_RELU) {
        cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "unknown activation %d", (int)spec->activation);
        return NULL;
    }
    activation_layer *a = cnnviz_layer_alloc(sizeof *a, &activation_ops, err);
    if (!a) return NULL;
    a->base.out_shape = *in;
    a->base.activation = spec->activation;
    a->alpha = spec->alpha;
    a->channels = cnnviz_last_dim(in);
    return &a->base;
}
