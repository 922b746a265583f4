/* Helpers shared by the layer constructors. */
#include <stdlib.h>

#include "layers.h"

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
