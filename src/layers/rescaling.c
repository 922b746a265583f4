/* Rescaling: y = x*scale + offset (Keras preprocessing layer). */
#include "layers.h"

typedef struct {
    cnnviz_layer base;
    float scale, offset;
} rescaling_layer;

static void rescaling_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    const rescaling_layer *r = (const rescaling_layer *)l;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    for (size_t i = 0; i < n; i++) out[i] = in[i] * r->scale + r->offset;
}

static void rescaling_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                               float *din, int B, cnnviz_pass *p) {
    (void)in, (void)out, (void)p;
    const rescaling_layer *r = (const rescaling_layer *)l;
    size_t n = (size_t)B * cnnviz_shape_size(&l->out_shape);
    for (size_t i = 0; i < n; i++) din[i] = dout[i] * r->scale;
}

static const cnnviz_layer_ops rescaling_ops = {
    .forward = rescaling_forward,
    .backward = rescaling_backward,
};

cnnviz_layer *cnnviz_rescaling_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    rescaling_layer *r = cnnviz_layer_alloc(sizeof *r, &rescaling_ops, err);
    if (!r) return NULL;
    r->base.out_shape = *in;
    r->scale = spec->scale;
    r->offset = spec->offset;
    return &r->base;
}
