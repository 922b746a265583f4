/* Internal: the loss's backward, for the training loop, its tests and
 * bench_train. Never installed. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/model.h"

/* Floats of scratch cnnviz_loss_backward needs for batches up to max_batch. */
size_t cnnviz_loss_scratch_floats(const cnnviz_model *m, int max_batch);
/* After cnnviz_forward(ws, x, B) on a workspace made for training with
 * weight gradients (cnnviz_workspace_options): returns
 * the summed clipped cross-entropy of the B samples (and their hits in
 * *correct), and back-propagates the batch MEAN loss through the whole model,
 * accumulating into the model's grads. The softmax's Jacobian is never
 * applied: the output layer's backward starts from (p - onehot)/B. */
double cnnviz_loss_backward(cnnviz_model *m, cnnviz_workspace *ws, const uint8_t *labels, int B, float *scratch,
                            int *correct);
