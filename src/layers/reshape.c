/* Layers that only relabel the data: Flatten, Reshape, and the identity
 * (Random* augmentation and noise layers, which do nothing at inference).
 * NHWC is already Keras' (h*W + w)*C + c Flatten order, so all three copy. */
#include <stdio.h>
#include <string.h>

#include "layers.h"

static void copy_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    memcpy(out, in, (size_t)B * cnnviz_shape_size(&l->out_shape) * sizeof *out);
}

static void copy_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout, float *din,
                          int B, cnnviz_pass *p) {
    (void)in, (void)out, (void)p;
    memcpy(din, dout, (size_t)B * cnnviz_shape_size(&l->out_shape) * sizeof *din);
}

static const cnnviz_layer_ops copy_ops = {
    .forward = copy_forward,
    .backward = copy_backward,
};

cnnviz_layer *cnnviz_flatten_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    (void)spec;
    if (!cnnviz_int_product(in->rank, in->dim)) { /* the output's one dimension is an int */
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "flatten: the input is too large");
        return NULL;
    }
    cnnviz_layer *l = cnnviz_layer_alloc(sizeof *l, &copy_ops, err);
    if (!l) return NULL;
    l->out_shape = cnnviz_shape1((int)cnnviz_shape_size(in));
    return l;
}

cnnviz_layer *cnnviz_identity_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    (void)spec;
    cnnviz_layer *l = cnnviz_layer_alloc(sizeof *l, &copy_ops, err);
    if (!l) return NULL;
    l->out_shape = *in;
    return l;
}

/* Keras allows one -1 in target_shape, inferred from the input size. */
cnnviz_layer *cnnviz_reshape_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    cnnviz_shape t = spec->target;
    size_t n = cnnviz_shape_size(in), known = 1;
    int unknown = -1;
    char a[64], b[64];
    cnnviz_shape_format(in, a, sizeof a);
    cnnviz_shape_format(&t, b, sizeof b);
    if (t.rank < 1 || t.rank > CNNVIZ_MAX_RANK) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "reshape target %s has an unsupported rank", b);
        return NULL;
    }
    for (int i = 0; i < t.rank; i++) {
        if (t.dim[i] == -1 && unknown < 0) {
            unknown = i;
        } else if (t.dim[i] <= 0 || t.dim[i] > CNNVIZ_MAX_DIM) {
            cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "reshape target %s has a bad dimension", b);
            return NULL;
        } else if (__builtin_mul_overflow(known, (size_t)t.dim[i], &known)) {
            cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "cannot reshape %s into %s", a, b);
            return NULL;
        }
    }
    if (unknown >= 0 && known && n % known == 0) t.dim[unknown] = (int)(n / known);
    if (cnnviz_shape_size(&t) != n || (unknown >= 0 && (!known || n % known))) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "cannot reshape %s into %s", a, b);
        return NULL;
    }
    cnnviz_layer *l = cnnviz_layer_alloc(sizeof *l, &copy_ops, err);
    if (!l) return NULL;
    l->out_shape = t;
    return l;
}
