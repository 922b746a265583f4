/* Helpers shared by the layer constructors. */
#include <limits.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

static int forced_procs = 0;

void cnnviz_force_procs(int n) { forced_procs = n > 0 ? n : 0; }

int cnnviz_procs(void) {
    if (forced_procs) return forced_procs;
#ifdef _OPENMP
    int n = omp_get_num_procs();
    return n < 1 ? 1 : n;
#else
    return 1;
#endif
}

static int forced_wide = -1;

void cnnviz_force_wide_vectors(int wide) { forced_wide = wide < 0 ? -1 : wide != 0; }

int cnnviz_wide_vectors(void) {
    if (forced_wide >= 0) return forced_wide;
#if defined(CNNVIZ_CLONES) && defined(CNNVIZ_AVX2_MAX)
    return 0;
#elif defined(CNNVIZ_CLONES)
    return __builtin_cpu_supports("x86-64-v4") != 0;
#elif defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

static int forced_avx2 = -1;

void cnnviz_force_avx2_vectors(int on) { forced_avx2 = on < 0 ? -1 : on != 0; }

int cnnviz_avx2_vectors(void) {
    if (forced_avx2 >= 0) return forced_avx2;
#ifdef CNNVIZ_CLONES
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}

void *cnnviz_layer_alloc(size_t size, const cnnviz_layer_ops *ops, cnnviz_error *err) {
    cnnviz_layer *l = calloc(1, size);
    if (!l) {
        cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    l->ops = ops;
    l->activation = CNNVIZ_ACT_LINEAR;
    return l;
}

cnnviz_param *cnnviz_layer_add_param(cnnviz_layer *l, const char *name, cnnviz_shape shape, int trainable) {
    cnnviz_param *p = &l->param[l->nparam++];
    p->name = name;
    p->shape = shape;
    p->size = cnnviz_shape_size(&shape);
    p->trainable = trainable;
    return p;
}

size_t cnnviz_int_product(int n, const int *v) {
    size_t p = 1;
    for (int i = 0; i < n; i++)
        if (v[i] < 1 || v[i] > CNNVIZ_MAX_DIM || __builtin_mul_overflow(p, (size_t)v[i], &p) || p > INT_MAX) return 0;
    return p;
}

void cnnviz_window_geometry(int in, int k, int s, cnnviz_padding pad, int *out, int *pad_before) {
    if (pad == CNNVIZ_PAD_SAME) {
        int o = (in + s - 1) / s;
        int total = (o - 1) * s + k - in;
        if (total < 0) total = 0;
        *out = o;
        *pad_before = total / 2;
    } else {
        *out = in >= k ? (in - k) / s + 1 : 0;
        *pad_before = 0;
    }
}

float cnnviz_fused_activation_alpha(cnnviz_activation a) {
    return a == CNNVIZ_ACT_LEAKY_RELU ? 0.2f : 1.0f;
}

CNNVIZ_HOT
static void bias_relu_rows(float *restrict y, const float *restrict bias, size_t rows, int n, int relu) {
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * (size_t)n;
        if (bias) {
            #pragma omp simd
            for (int j = 0; j < n; j++) yr[j] += bias[j];
        }
        if (relu) {
            #pragma omp simd
            for (int j = 0; j < n; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
        }
    }
}

void cnnviz_bias_activation_rows(float *y, const float *bias, size_t rows, int n, cnnviz_activation act,
                                 float alpha) {
    if (act == CNNVIZ_ACT_RELU || act == CNNVIZ_ACT_LINEAR) {
        if (bias || act == CNNVIZ_ACT_RELU) bias_relu_rows(y, bias, rows, n, act == CNNVIZ_ACT_RELU);
        return;
    }
    if (bias) bias_relu_rows(y, bias, rows, n, 0);
    cnnviz_activation_forward(act, alpha, y, rows * (size_t)n, n);
}

CNNVIZ_HOT
void cnnviz_bias_grad_rows(float *restrict db, const float *restrict dz, size_t rows, int n) {
    for (size_t r = 0; r < rows; r++) {
        const float *z = dz + r * (size_t)n;
        #pragma omp simd
        for (int j = 0; j < n; j++) db[j] += z[j];
    }
}
