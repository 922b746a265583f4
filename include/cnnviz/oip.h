/* cnnviz — optimal input patterns (OIPs): for each chosen map of a layer,
 * an input image that makes the map respond as strongly as it can, found by
 * gradient ascent on the image.
 *
 * All maps go through the network together, one image per map in one batch
 * (in chunks of o->batch), the network evaluated only up to the layer, and
 * backward in "input gradient only" mode. A Conv2D or Dense layer is not run
 * by the engine at all: only the one map each image is about is computed,
 * which for the seed net's second conv layer is 1/64 of that layer's work.
 *
 * Every random number a map uses comes from a generator seeded with
 * (seed, restart, map index), so a map's pattern does not depend on which
 * other maps are in the batch or how the batch is chunked, and the same seed
 * gives the same bits whatever the thread count. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CNNVIZ_OIP_INIT_UNIFORM,    /* every pixel uniform over the input range */
    CNNVIZ_OIP_INIT_MULTISCALE, /* uniform noise on 1, 2, 4 and 8 pixel grids, bilinearly upsampled and averaged */
    CNNVIZ_OIP_INIT_IMAGE,      /* o->init_image (restarts after the first add +-10% uniform noise) */
} cnnviz_oip_init;

/* How the gradient is scaled before a step: the step then moves the pixels
 * by o->step times the input range as RMS (rms, std) or as the L2 length of
 * the whole step (l2). */
typedef enum {
    CNNVIZ_OIP_NORM_RMS, /* g / sqrt(mean(g^2)) */
    CNNVIZ_OIP_NORM_L2,  /* g / |g| */
    CNNVIZ_OIP_NORM_STD, /* g / std(g): the direction is kept, only the scale differs from rms */
} cnnviz_oip_norm;

typedef struct {
    int layer;            /* index in model.layers */
    int neuron_y, neuron_x; /* one neuron of each map; -1 = the mean over the map (default) */
    int steps;            /* ascent steps per start (200) */
    float step;           /* step size in units of the input range (0.2) */
    int constant_step;    /* 0: the step decays linearly to 0 over the steps (default) */
    cnnviz_oip_norm norm; /* rms */
    cnnviz_oip_init init; /* uniform */
    const float *init_image; /* INIT_IMAGE: one input (the model's input shape) in its input scale */
    /* Where a ReLU of the objective's own layer is off (pre-activation <= 0)
     * the gradient is taken with this slope instead of 0 (0.3). A map that is
     * negative everywhere on the start image then still has a direction to
     * climb, and positions that are off are pulled up too. 0 = the plain
     * gradient. The reported activation is always the true ReLU output. */
    float leak;
    float l2_decay;       /* per step, pixels move this fraction towards the bottom of the range (0) */
    int blur_every;       /* Gaussian blur every k steps (0 = never) */
    float blur_sigma;     /* its sigma in pixels (0.5) */
    float tv;             /* weight of the total-variation descent added to the normalised gradient (0) */
    int jitter;           /* roll each image by up to this many pixels each step (0) */
    int restarts;         /* starts per map; the best result is kept (1) */
    uint64_t seed;        /* 0 */
    int batch;            /* images per batch (0 = 256) */
    int snapshot_every;   /* keep the image every k steps for an evolution strip (0 = none) */
    /* called after every step with the steps done and the total; may be NULL */
    void (*progress)(void *ctx, long done, long total);
    void *progress_ctx;
} cnnviz_oip_options;

/* The defaults written next to each field above. */
void cnnviz_oip_options_init(cnnviz_oip_options *o);

typedef struct {
    int n;                   /* maps */
    cnnviz_shape input_shape;
    int h, w, c;             /* the input as an image (a flat 784 input is 28x28x1) */
    size_t image_size;       /* floats per image = h*w*c */
    float lo, hi;            /* the model's input range (unit scale: 0 and 1) */
    int *map;                /* (n) map indices */
    float *image;            /* (n, image_size) the best pattern, in the model's input scale */
    float *start;            /* (n, image_size) the start of the restart that gave it */
    float *activation;       /* (n) objective at image */
    float *start_activation; /* (n) objective at start */
    int *restart;            /* (n) which restart gave the pattern */
    int *dead;               /* (n) the objective was exactly 0 at every step of every restart */
    int nsnap;               /* snapshots per map (0 without o->snapshot_every) */
    int *snap_step;          /* (nsnap) the step each snapshot was taken at */
    float *snapshots;        /* (n, nsnap, image_size) of the winning restart */
} cnnviz_oip_result;

/* Check that o names a layer with maps (not Flatten), that the neuron and
 * every map are in range and that steps >= 1. *nmaps gets the number of
 * maps (the last axis of the layer's output). CNNVIZ_ERR_INVALID with a
 * message fit for a usage error otherwise. */
cnnviz_status cnnviz_oip_check(const cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n,
                               int *nmaps, cnnviz_error *err);

/* The smallest and largest input value: pixels 0 and 255 in the model's input scale. */
void cnnviz_oip_input_range(const cnnviz_model *m, float *lo, float *hi);

/* Run the ascent for maps[0..n) of o->layer. r is filled (free it with
 * cnnviz_oip_result_free, also after a failure). */
cnnviz_status cnnviz_oip_run(const cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n,
                             cnnviz_oip_result *r, cnnviz_error *err);
void cnnviz_oip_result_free(cnnviz_oip_result *r);

#ifdef __cplusplus
}
#endif
