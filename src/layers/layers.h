/* Internal helpers shared by the layer files (src/layers/). */
#pragma once
#include <stddef.h>

#include "model-impl.h"

/* calloc a layer struct of `size` bytes whose first member is cnnviz_layer,
 * with its ops set; NULL with an error on failure. */
void *cnnviz_layer_alloc(size_t size, const cnnviz_layer_ops *ops, cnnviz_error *err);
/* Append a parameter declaration; data/grad pointers come at finalize. */
cnnviz_param *cnnviz_layer_add_param(cnnviz_layer *l, const char *name, cnnviz_shape shape, int trainable);

/* The "C" in the input's last axis; rank-3 inputs are (H,W,C), rank-1 (N). */
static inline int cnnviz_last_dim(const cnnviz_shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }

/* TF's output size and leading pad for one spatial axis
 * (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSize):
 * valid: floor((in-k)/s)+1, no pad; same: ceil(in/s), the total pad
 * max((out-1)*s+k-in, 0) split with the smaller half first. */
void cnnviz_window_geometry(int in, int k, int s, cnnviz_padding pad, int *out, int *pad_before);

/* Keras' default slope/alpha for an activation named by string on a
 * Conv2D/Dense (keras.activations.leaky_relu: 0.2, elu: 1.0). */
float cnnviz_fused_activation_alpha(cnnviz_activation a);

/* y[r][j] += bias[j] for rows r (Conv2D/Dense) */
void cnnviz_add_bias_rows(float *y, const float *bias, size_t rows, int n);
/* db[j] += sum_r dz[r][j], rows summed in order so any thread count gives the same bits */
void cnnviz_bias_grad_rows(float *db, const float *dz, size_t rows, int n);
