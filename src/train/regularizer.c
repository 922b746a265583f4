/* L1/L2 kernel regularizers, per weight tensor (cnnviz_param.l1/l2).
 *
 * Keras' L1L2 regularizer adds l1*sum|w| + l2*sum(w^2) to the loss
 * (keras/src/regularizers/regularizers.py); its gradient, which autodiff
 * adds to the kernel's, is l1*sign(w) + 2*l2*w. Note Keras' l2 is NOT
 * halved: 0.001 means 0.001*sum(w^2). */
#include <math.h>
#include <string.h>

#include "cnnviz/train.h"
#include "model-impl.h"

static double tensor_penalty(const cnnviz_param *p) {
    double s1 = 0.0, s2 = 0.0;
    for (size_t j = 0; j < p->size; j++) {
        double w = p->data[j];
        s1 += fabs(w);
        s2 += w * w;
    }
    return (double)p->l1 * s1 + (double)p->l2 * s2;
}

double cnnviz_regularization_loss(const cnnviz_model *m) {
    double loss = 0.0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++) {
            const cnnviz_param *p = &m->layers[i]->param[k];
            if (p->l1 != 0.0f || p->l2 != 0.0f) loss += tensor_penalty(p);
        }
    return loss;
}

double cnnviz_regularization_apply(cnnviz_model *m) {
    double loss = 0.0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++) {
            cnnviz_param *p = &m->layers[i]->param[k];
            if (p->l1 == 0.0f && p->l2 == 0.0f) continue;
            if (!p->grad || !p->trainable) {
                loss += tensor_penalty(p);
                continue;
            }
            /* the penalty and its gradient in one pass over the weights */
            double s1 = 0.0, s2 = 0.0;
            float two_l2 = 2.0f * p->l2, l1 = p->l1;
            for (size_t j = 0; j < p->size; j++) {
                float w = p->data[j];
                s1 += fabsf(w);
                s2 += (double)w * w;
                /* TF's sign: 0 at 0, so an exactly-zero weight gets no L1 push */
                float sign = (float)((w > 0.0f) - (w < 0.0f));
                p->grad[j] += two_l2 * w + l1 * sign;
            }
            loss += (double)p->l1 * s1 + (double)p->l2 * s2;
        }
    return loss;
}

int cnnviz_regularize_dense_kernels(cnnviz_model *m, float l1, float l2) {
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) {
        cnnviz_layer *l = m->layers[i];
        if (l->type != CNNVIZ_LAYER_DENSE) continue;
        /* the spec too, so the saved model_config names the regularizer */
        l->spec.l1 = l1;
        l->spec.l2 = l2;
        for (int k = 0; k < l->nparam; k++)
            if (strcmp(l->param[k].name, "kernel") == 0) {
                l->param[k].l1 = l1;
                l->param[k].l2 = l2;
                n++;
            }
    }
    return n;
}
