/* Dropout: identity at inference; in training, inverted dropout (kept
 * values scaled by 1/(1-rate), as Keras does) with the mask kept in aux for
 * backward.
 *
 * aux[0] says whether aux[1..] holds the mask of the latest forward: a
 * training workspace also serves gradient ascent, whose forward passes are
 * inference passes, and backward must then be the identity too. */
#include <string.h>

#include "layers.h"

typedef struct {
    cnnviz_layer base;
    float rate;
} dropout_layer;

static size_t dropout_aux_floats(const cnnviz_layer *l, int B, int training) {
    return training ? 1 + (size_t)B * cnnviz_shape_size(&l->out_shape) : 0;
}

static void dropout_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    const dropout_layer *d = (const dropout_layer *)l;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    int active = p->training && p->aux && p->rng && d->rate > 0.0f;
    if (p->aux) p->aux[0] = active ? 1.0f : 0.0f;
    if (!active) {
        memcpy(out, in, n * sizeof *out);
        return;
    }
    float *mask = p->aux + 1;
    float keep_scale = d->rate < 1.0f ? 1.0f / (1.0f - d->rate) : 0.0f;
    /* serial: the mask must not depend on the thread count */
    for (size_t i = 0; i < n; i++) mask[i] = cnnviz_rng_uniform(p->rng) >= d->rate ? keep_scale : 0.0f;
    for (size_t i = 0; i < n; i++) out[i] = in[i] * mask[i];
}

static void dropout_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                             float *din, int B, cnnviz_pass *p) {
    (void)in, (void)out;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    if (!p->aux || p->aux[0] == 0.0f) {
        memcpy(din, dout, n * sizeof *din);
        return;
    }
    const float *mask = p->aux + 1;
    for (size_t i = 0; i < n; i++) din[i] = dout[i] * mask[i];
}

static const cnnviz_layer_ops dropout_ops = {
    .forward = dropout_forward,
    .backward = dropout_backward,
    .aux_floats = dropout_aux_floats,
};

cnnviz_layer *cnnviz_dropout_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    if (!(spec->rate >= 0.0f && spec->rate < 1.0f)) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "dropout rate %g is not in [0, 1)", (double)spec->rate);
        return NULL;
    }
    dropout_layer *d = cnnviz_layer_alloc(sizeof *d, &dropout_ops, err);
    if (!d) return NULL;
    d->base.out_shape = *in;
    d->rate = spec->rate;
    return &d->base;
}
