/* cnnviz — explaining a prediction: attribution maps over a batch of images.
 *
 * The score every method explains is the class's logit: the input of the
 * model's final softmax (a Dense with softmax: its pre-activation; a
 * separate Activation(softmax) layer: the output of the layer before it; a
 * model without a softmax: its output). Maps are raw values, in the
 * resolution each method states, never normalised or resized:
 *   saliency, smoothgrad, integrated-gradients  (N, H, W, C) of the input
 *   gradcam, gradcam++, scorecam                 (N, h, w) of the CAM layer
 *   occlusion                                    (N, gh, gw) patch positions
 * Every method runs its work (noisy copies, interpolation steps, masked
 * or occluded inputs) through the engine in batches. The same options and
 * images give the same bits for the same thread count. */
#pragma once
#include <stdint.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CNNVIZ_EXPLAIN_SALIENCY,
    CNNVIZ_EXPLAIN_SMOOTHGRAD,
    CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS,
    CNNVIZ_EXPLAIN_GRADCAM,
    CNNVIZ_EXPLAIN_GRADCAM_PP,
    CNNVIZ_EXPLAIN_SCORECAM,
    CNNVIZ_EXPLAIN_OCCLUSION,
    CNNVIZ_EXPLAIN_METHOD_COUNT
} cnnviz_explain_method;

/* "saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++",
 * "scorecam", "occlusion" */
const char *cnnviz_explain_method_name(cnnviz_explain_method m);
/* the method of that name, or -1 */
int cnnviz_explain_method_parse(const char *name);
/* gradcam, gradcam++ and scorecam read a layer's maps */
int cnnviz_explain_method_uses_layer(cnnviz_explain_method m);

typedef struct {
    int class_index; /* the class explained; -1: each image's predicted class */
    int layer;       /* CAM layer; -1: the last Conv2D, or the Activation right after it */
    float noise;     /* smoothgrad: sigma as a fraction of max x - min x (0.15) */
    int samples;     /* smoothgrad: noisy copies (20) */
    uint64_t seed;   /* smoothgrad's noise (0) */
    float baseline;  /* integrated gradients' x' and occlusion's patch value, in model input units (0) */
    int steps;       /* integrated gradients: m (64) */
    int patch, stride; /* occlusion (4, 2) */
    int batch;       /* images through the engine at a time (256) */
} cnnviz_explain_options;
void cnnviz_explain_options_init(cnnviz_explain_options *o);

typedef struct cnnviz_explainer cnnviz_explainer;

/* Check the options against the model for the methods in `methods` (a bit
 * 1 << method each) and make the workspaces. CNNVIZ_ERR_INVALID for a bad
 * option: a class outside the outputs, a CAM layer without spatial maps
 * (the message lists those that have them), a patch larger than the image,
 * zero steps or samples. CNNVIZ_ERR_UNSUPPORTED when the model's score
 * cannot be found (a softmax on a layer that is not Dense). */
cnnviz_explainer *cnnviz_explainer_new(const cnnviz_model *m, const cnnviz_explain_options *o, unsigned methods,
                                       cnnviz_error *err);
void cnnviz_explainer_free(cnnviz_explainer *ex);
int cnnviz_explain_num_classes(const cnnviz_explainer *ex);
/* the CAM layer's index, or -1 when no method asked for one */
int cnnviz_explain_layer(const cnnviz_explainer *ex);
/* one image's map of method m (no batch axis) */
cnnviz_shape cnnviz_explain_map_shape(const cnnviz_explainer *ex, cnnviz_explain_method m);

/* For n images (n, input shape): the class explained (options.class_index
 * or the predicted one), its score (logit) and softmax probability. Any
 * output may be NULL. */
cnnviz_status cnnviz_explain_classify(cnnviz_explainer *ex, const float *x, int n, int *cls, float *score,
                                      float *prob, cnnviz_error *err);
/* The scores of classes cls (n) for n images. */
cnnviz_status cnnviz_explain_scores(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *score,
                                    cnnviz_error *err);

/* Method m's maps (n, map shape) for classes cls (n). completeness, when
 * not NULL, gets integrated gradients' |sum of attributions - (score(x) -
 * score(x'))| per image (0 for the other methods). */
cnnviz_status cnnviz_explain_run(cnnviz_explainer *ex, cnnviz_explain_method m, const float *x, int n,
                                 const int *cls, float *maps, float *completeness, cnnviz_error *err);

/* An (h, w) map resized to (H, W) by bilinear interpolation with half-pixel
 * centres, as tf.image.resize (Score-CAM's masks, and figures). */
/* 0, or -1 when out of memory */
int cnnviz_explain_resize(const float *map, int h, int w, int H, int W, float *out);

#ifdef __cplusplus
}
#endif
