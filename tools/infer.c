#include "infer.h"

#include <math.h>

static int ends_in_softmax(const cnnviz_model *m) {
    cnnviz_layer_info li;
    cnnviz_model_layer_info(m, cnnviz_model_num_layers(m) - 1, &li);
    return (li.type == CNNVIZ_LAYER_DENSE || li.type == CNNVIZ_LAYER_ACTIVATION || li.type == CNNVIZ_LAYER_CONV2D) &&
           li.activation == CNNVIZ_ACT_SOFTMAX;
}

cnnviz_status infer_probabilities(const cnnviz_model *m, const float *x, int n, float *probs, cnnviz_error *err) {
    cnnviz_status st = cnnviz_model_predict(m, x, n, 256, probs, err);
    if (st != CNNVIZ_OK || ends_in_softmax(m)) return st;
    cnnviz_shape os = cnnviz_model_output_shape(m);
    size_t k = cnnviz_shape_size(&os);
    for (int i = 0; i < n; i++) {
        float *p = probs + (size_t)i * k, mx = p[0];
        double sum = 0;
        for (size_t j = 1; j < k; j++) mx = p[j] > mx ? p[j] : mx;
        for (size_t j = 0; j < k; j++) sum += (p[j] = expf(p[j] - mx));
        for (size_t j = 0; j < k; j++) p[j] = (float)(p[j] / sum);
    }
    return CNNVIZ_OK;
}

int infer_argmax(const float *p, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (p[j] > p[best]) best = j;
    return (int)best;
}
