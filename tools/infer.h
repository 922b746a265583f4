/* Inference helpers shared by predict and evaluate. */
#pragma once
#include <stddef.h>

#include "cnnviz/model.h"

/* Class probabilities for n inputs: the model's output, put through softmax
 * when the last layer is not already a softmax. */
cnnviz_status infer_probabilities(const cnnviz_model *m, const float *x, int n, float *probs, cnnviz_error *err);
int infer_argmax(const float *p, size_t n);
