/* BatchNormalization in inference mode over the last axis:
 * y = gamma*(x - mean)/sqrt(var + eps) + beta. Written as TF does
 * (tf.nn.batch_normalization): inv = gamma*rsqrt(var+eps), y = x*inv + (beta - mean*inv).
 * Backward uses the same formula (training with batch statistics is not supported). */
#include <math.h>

#include "layers.h"

typedef struct {
    cnnviz_layer base;
    float epsilon;
    int channels;
    int gamma, beta, mean, var; /* param index, -1 when absent (center/scale = False) */
} batchnorm_layer;

static size_t batchnorm_scratch_floats(const cnnviz_layer *l, int B) {
    (void)B;
    return 2 * (size_t)((const batchnorm_layer *)l)->channels;
}

/* inv[c] = gamma/sqrt(var+eps) and shift[c] = beta - mean*inv into scratch */
static void batchnorm_coefficients(const batchnorm_layer *b, float *inv, float *shift) {
    const cnnviz_param *P = b->base.param;
    for (int c = 0; c < b->channels; c++) {
        float g = b->gamma >= 0 ? P[b->gamma].data[c] : 1.0f;
        float be = b->beta >= 0 ? P[b->beta].data[c] : 0.0f;
        inv[c] = g / sqrtf(P[b->var].data[c] + b->epsilon);
        shift[c] = be - P[b->mean].data[c] * inv[c];
    }
}

static void batchnorm_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    const batchnorm_layer *b = (const batchnorm_layer *)l;
    int C = b->channels;
    float *inv = p->scratch, *shift = p->scratch + C;
    batchnorm_coefficients(b, inv, shift);
    size_t rows = (size_t)B * cnnviz_shape_size(&l->out_shape) / (size_t)C;
    #pragma omp parallel for schedule(static) if (rows * (size_t)C >= 32768)
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) out[r * C + c] = in[r * C + c] * inv[c] + shift[c];
}

static void batchnorm_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                               float *din, int B, cnnviz_pass *p) {
    (void)out;
    const batchnorm_layer *b = (const batchnorm_layer *)l;
    const cnnviz_param *P = l->param;
    int C = b->channels;
    float *inv = p->scratch, *shift = p->scratch + C;
    batchnorm_coefficients(b, inv, shift);
    size_t rows = (size_t)B * cnnviz_shape_size(&l->out_shape) / (size_t)C;
    if (din) {
        #pragma omp parallel for schedule(static) if (rows * (size_t)C >= 32768)
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < C; c++) din[r * C + c] = dout[r * C + c] * inv[c];
    }
    if (!p->weight_grads) return;
    /* d/dbeta = sum dy; d/dgamma = sum dy*(x-mean)/sqrt(var+eps); summed in row order */
    for (int c = 0; c < C; c++) {
        double sb = 0.0, sg = 0.0;
        float rs = 1.0f / sqrtf(P[b->var].data[c] + b->epsilon);
        float mu = P[b->mean].data[c];
        for (size_t r = 0; r < rows; r++) {
            float dy = dout[r * C + c];
            sb += dy;
            sg += dy * (in[r * C + c] - mu) * rs;
        }
        float *gb = b->beta >= 0 ? cnnviz_param_grad(&P[b->beta], p) : NULL;
        float *gg = b->gamma >= 0 ? cnnviz_param_grad(&P[b->gamma], p) : NULL;
        if (gb) gb[c] += (float)sb;
        if (gg) gg[c] += (float)sg;
    }
}

static const cnnviz_layer_ops batchnorm_ops = {
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .scratch_floats = batchnorm_scratch_floats,
};

cnnviz_layer *cnnviz_batchnorm_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    if (in->rank < 1) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "batch normalization needs an input with a channel axis");
        return NULL;
    }
    batchnorm_layer *b = cnnviz_layer_alloc(sizeof *b, &batchnorm_ops, err);
    if (!b) return NULL;
    cnnviz_layer *l = &b->base;
    l->out_shape = *in;
    b->channels = cnnviz_last_dim(in);
    b->epsilon = spec->epsilon;
    cnnviz_shape c = cnnviz_shape1(b->channels);
    /* Keras' order of weights: gamma, beta, moving_mean, moving_variance,
     * leaving out gamma when scale=False and beta when center=False */
    b->gamma = b->beta = -1;
    if (spec->bn_scale) b->gamma = l->nparam, cnnviz_layer_add_param(l, "gamma", c, 1);
    if (spec->bn_center) b->beta = l->nparam, cnnviz_layer_add_param(l, "beta", c, 1);
    b->mean = l->nparam, cnnviz_layer_add_param(l, "moving_mean", c, 0);
    b->var = l->nparam, cnnviz_layer_add_param(l, "moving_variance", c, 0);
    return l;
}
