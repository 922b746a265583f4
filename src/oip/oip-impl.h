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
