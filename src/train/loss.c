/* Softmax + categorical cross-entropy, and the backward pass that starts
 * from it.
 *
 * Keras' categorical_crossentropy on probabilities clips them to
 * [1e-7, 1 - 1e-7] before the log (keras/src/backend/tensorflow/nn.py), so the
 * loss VALUE uses the clipped probability. For the GRADIENT, TF sees that the
 * output comes from a softmax and differentiates softmax + cross-entropy as
 * one op, which gives (p - onehot)/B with respect to the logits; we do the
 * same, so no gradient ever divides by a small probability. */
#include <math.h>
#include <string.h>

#include "cnnviz/train.h"
#include "layers/layers.h"
#include "train/train-impl.h"

double cnnviz_softmax_xent(const float *probs, const uint8_t *labels, int B, int C, float *dlogits,
                           int *correct) {
    double sum = 0.0;
    int hits = 0;
    float inv_b = 1.0f / (float)B;
    for (int i = 0; i < B; i++) {
        const float *p = probs + (size_t)i * C;
        int y = labels[i];
        int best = 0;
        for (int j = 1; j < C; j++)
            if (p[j] > p[best]) best = j; /* first maximum wins, like argmax */
        hits += best == y;
        double q = p[y];
        if (q < CNNVIZ_XENT_EPSILON) q = CNNVIZ_XENT_EPSILON;
        if (q > 1.0 - CNNVIZ_XENT_EPSILON) q = 1.0 - CNNVIZ_XENT_EPSILON;
        sum -= log(q);
        if (dlogits) {
            float *d = dlogits + (size_t)i * C;
            for (int j = 0; j < C; j++) d[j] = (p[j] - (j == y ? 1.0f : 0.0f)) * inv_b;
        }
    }
    if (correct) *correct += hits;
    return sum;
}

/* The output layer's kind for training, or -1 when we cannot train it. */
enum { OUT_DENSE_SOFTMAX, OUT_SOFTMAX_LAYER };

static int output_kind(const cnnviz_model *m) {
    if (m->nlayers == 0) return -1;
    const cnnviz_layer *l = m->layers[m->nlayers - 1];
    if (l->out_shape.rank != 1 || l->activation != CNNVIZ_ACT_SOFTMAX) return -1;
    if (l->type == CNNVIZ_LAYER_DENSE && l->in_shape.rank == 1) return OUT_DENSE_SOFTMAX;
    if (l->type == CNNVIZ_LAYER_ACTIVATION) return OUT_SOFTMAX_LAYER;
    return -1;
}

cnnviz_status cnnviz_check_trainable(const cnnviz_model *m, cnnviz_error *err) {
    if (output_kind(m) < 0) {
        const cnnviz_layer *l = m->nlayers ? m->layers[m->nlayers - 1] : NULL;
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "",
                                "training needs a softmax output (a Dense layer with softmax activation, or a "
                                "Softmax layer after a flat output); the last layer is '%s' (%s)",
                                l ? l->name : "none", l ? l->class_name : "-");
    }
    for (int i = 0; i < m->nlayers; i++)
        if (!m->layers[i]->ops->backward)
            return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "layer '%s' (%s) cannot be trained",
                                    m->layers[i]->name, m->layers[i]->class_name);
    return CNNVIZ_OK;
}

size_t cnnviz_loss_scratch_floats(const cnnviz_model *m, int max_batch) {
    const cnnviz_layer *l = m->layers[m->nlayers - 1];
    /* dlogits, then the output layer's input gradient */
    return (size_t)max_batch * (cnnviz_shape_size(&l->out_shape) + cnnviz_shape_size(&l->in_shape));
}

double cnnviz_loss_backward(cnnviz_model *m, cnnviz_workspace *ws, const uint8_t *labels, int B, float *scratch,
                            int *correct) {
    int last = m->nlayers - 1;
    const cnnviz_layer *l = m->layers[last];
    int classes = l->out_shape.dim[0];
    float *dlogits = scratch;
    float *dx = scratch + (size_t)B * classes;
    double sum = cnnviz_softmax_xent(ws->out[last], labels, B, classes, dlogits, correct);
    if (output_kind(m) == OUT_DENSE_SOFTMAX) {
        const float *x = last ? ws->out[last - 1] : ws->input;
        /* the linear part of Dense's backward: the fused gradient has
         * already gone through the softmax */
        cnnviz_dense_linear_backward(l, x, dlogits, last ? dx : NULL, B, l->param[0].grad,
                                     l->nparam > 1 ? l->param[1].grad : NULL);
        if (last) (void)cnnviz_backward_from(ws, last - 1, dx, NULL, NULL);
    } else if (last) {
        (void)cnnviz_backward_from(ws, last - 1, dlogits, NULL, NULL);
    }
    return sum;
}
