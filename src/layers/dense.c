/* Dense: y = act(x·W + b) over the last axis, W (in, units) row-major as
 * Keras stores it, so the whole batch is one matrix product
 * (cnnviz_gemm). */
#include <string.h>

#include "layers.h"

typedef struct {
    cnnviz_layer base;
    int in_dim, units, use_bias;
    float alpha;
} dense_layer;

/* rows of the (rows, in_dim) matrix a batch of B samples makes */
static int dense_rows(const dense_layer *d, int B) {
    return (int)((size_t)B * cnnviz_shape_size(&d->base.in_shape) / (size_t)d->in_dim);
}

static size_t dense_scratch_floats(const cnnviz_layer *l, int B) {
    const dense_layer *d = (const dense_layer *)l;
    return (size_t)dense_rows(d, B) * (size_t)d->units; /* dz in backward */
}

static void dense_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    const dense_layer *d = (const dense_layer *)l;
    int rows = dense_rows(d, B);
    cnnviz_gemm_parallel(0, 0, rows, d->units, d->in_dim, in, d->in_dim, l->param[0].data, d->units, out, d->units,
                         0);
    cnnviz_bias_activation_rows(out, d->use_bias ? l->param[1].data : NULL, (size_t)rows, d->units, l->activation,
                                d->alpha);
}

void cnnviz_dense_linear_backward(const cnnviz_layer *l, const float *in, const float *dz, float *din, int rows,
                                  float *gw, float *gb) {
    const dense_layer *d = (const dense_layer *)l;
    if (din)
        cnnviz_gemm_parallel(0, 1, rows, d->in_dim, d->units, dz, d->units, l->param[0].data, d->units, din,
                             d->in_dim, 0);
    if (gw) cnnviz_gemm_parallel(1, 0, d->in_dim, d->units, rows, in, d->in_dim, dz, d->units, gw, d->units, 1);
    if (gb) cnnviz_bias_grad_rows(gb, dz, (size_t)rows, d->units);
}

static void dense_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                           float *din, int B, cnnviz_pass *p) {
    const dense_layer *d = (const dense_layer *)l;
    int rows = dense_rows(d, B);
    const float *dz = dout;
    if (l->activation != CNNVIZ_ACT_LINEAR) {
        cnnviz_activation_backward(l->activation, d->alpha, out, dout, p->scratch, (size_t)rows * d->units,
                                   d->units);
        dz = p->scratch;
    }
    float *gw = p->weight_grads ? cnnviz_param_grad(&l->param[0], p) : NULL;
    float *gb = p->weight_grads && d->use_bias ? cnnviz_param_grad(&l->param[1], p) : NULL;
    cnnviz_dense_linear_backward(l, in, dz, din, rows, gw, gb);
}

static const cnnviz_layer_ops dense_ops = {
    .forward = dense_forward,
    .backward = dense_backward,
    .scratch_floats = dense_scratch_floats,
};

cnnviz_layer *cnnviz_dense_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    if (spec->units <= 0) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "dense units must be positive, not %d", spec->units);
        return NULL;
    }
    if (in->rank < 1) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "dense needs an input with at least one axis");
        return NULL;
    }
    if ((unsigned)spec->activation > CNNVIZ_ACT_LEAKY_RELU) {
        cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "unknown activation %d", (int)spec->activation);
        return NULL;
    }
    /* the kernel and the output are indexed with int */
    cnnviz_shape out = *in;
    out.dim[in->rank - 1] = spec->units;
    if (!cnnviz_int_product(2, (int[]){cnnviz_last_dim(in), spec->units}) || !cnnviz_int_product(out.rank, out.dim)) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "dense with %d units on %d inputs is too large", spec->units,
                         cnnviz_last_dim(in));
        return NULL;
    }
    dense_layer *d = cnnviz_layer_alloc(sizeof *d, &dense_ops, err);
    if (!d) return NULL;
    cnnviz_layer *l = &d->base;
    /* Keras' Dense acts on the last axis of inputs of any rank */
    d->in_dim = cnnviz_last_dim(in);
    d->units = spec->units;
    d->use_bias = !spec->no_bias;
    d->alpha = cnnviz_fused_activation_alpha(spec->activation);
    l->activation = spec->activation;
    l->out_shape = *in;
    l->out_shape.dim[in->rank - 1] = spec->units;
    l->in_shape = *in; /* the driver sets it too; dense_rows needs it before */
    cnnviz_param *k = cnnviz_layer_add_param(l, "kernel", (cnnviz_shape){2, {d->in_dim, d->units, 0, 0}}, 1);
    k->l1 = spec->l1;
    k->l2 = spec->l2;
    if (d->use_bias) cnnviz_layer_add_param(l, "bias", cnnviz_shape1(d->units), 1);
    return l;
}
