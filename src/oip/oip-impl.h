/* Internal pieces of the gradient ascent (src/oip/): image operations on one
 * image of h x w pixels with c channels, channels last. */
#pragma once
#include <stddef.h>

#include "cnnviz/oip.h"
#include "cnnviz/tensor.h"

/* The model input seen as an image: (H,W,C) as it is, (H,W) as (H,W,1), a
 * flat 784 as 28x28x1, any other flat N as 1xNx1. */
void oip_image_geometry(const cnnviz_shape *in, int *h, int *w, int *c);

/* x (h,w,c) = uniform noise over [lo, hi] */
void oip_init_uniform(float *x, int h, int w, int c, float lo, float hi, cnnviz_rng *rng);
/* x = mid-range plus the average of uniform [-1,1] noise drawn on grids of
 * 1, 2, 4 and 8 pixels and bilinearly upsampled, scaled to fill [lo, hi].
 * grid holds (h+1)*(w+1) floats. */
void oip_init_multiscale(float *x, int h, int w, int c, float lo, float hi, cnnviz_rng *rng, float *grid);

/* g scaled in place so that a step of 1 moves the image by 1 in the sense of
 * norm (see cnnviz_oip_norm). Returns 0 when g is all zero (left as it is). */
int oip_normalise(float *g, size_t n, cnnviz_oip_norm norm);

/* d -= weight * (a subgradient of the anisotropic total variation of x):
 * each pixel is pulled towards its four neighbours. */
void oip_tv_descent(float *d, const float *x, int h, int w, int c, float weight);

/* Gaussian blur in place, separable, edges repeated; tmp holds h*w*c floats. */
void oip_blur(float *x, int h, int w, int c, float sigma, float *tmp);

/* dst = src rolled by (dy, dx) pixels with wrap-around; dst != src. */
void oip_roll(float *dst, const float *src, int h, int w, int c, int dy, int dx);

/* clip every value into [lo, hi] */
void oip_clip(float *x, size_t n, float lo, float hi);

/* --- the objective on its own (tests, benchmarks) ---------------------------- */
typedef struct cnnviz_oip_objective cnnviz_oip_objective;

/* For o->layer, o->neuron_*, o->leak; up to max_batch images per call. */
cnnviz_oip_objective *cnnviz_oip_objective_new(const cnnviz_model *m, const cnnviz_oip_options *o,
                                               int max_batch, cnnviz_error *err);
void cnnviz_oip_objective_free(cnnviz_oip_objective *ob);

/* For B images x (B, input shape), image b about map maps[b]: value[b] is
 * the objective (the map's mean after its activation, a neuron, or for a
 * softmax layer the logit); surrogate[b] is the function grad differentiates
 * (value plus the leak term, see cnnviz_oip_options.leak; may be NULL);
 * grad (B, input shape) = d surrogate / d x, or NULL for values only. */
void cnnviz_oip_objective_eval(cnnviz_oip_objective *ob, const float *x, const int *maps, int B, float *value,
                               float *surrogate, float *grad);
