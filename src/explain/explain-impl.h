/* Internal to src/explain: the explainer, the score head and the batched
 * passes every method is built from. */
#pragma once
#include "cnnviz/explain.h"
#include "model-impl.h"

struct cnnviz_explainer {
    const cnnviz_model *m;
    cnnviz_explain_options opt;
    int nclasses;
    size_t in_size;      /* floats of one input */
    int H, W, C;         /* the input as an image (a flat 784 is 28 x 28 x 1) */
    /* The score head. head_dense: the logit layer is a Dense that the
     * engine does not run: its pre-activation is computed here from the
     * engine's last output (head_in floats), which also gives d score /
     * d(its input) = the class's kernel column. Otherwise the engine's last
     * output is the logit vector itself. */
    int head_dense;
    int eng_last;        /* the engine's last layer */
    size_t eng_out;      /* floats of its output */
    const float *kernel, *bias; /* head_dense: (eng_out, nclasses), (nclasses) or NULL */
    int cam_layer;       /* -1: no CAM method asked */
    int cam_h, cam_w, cam_k;
    int grid_h, grid_w;  /* occlusion's patch positions */
    cnnviz_workspace *ws_fwd;  /* forward, only the last output */
    cnnviz_workspace *ws_grad; /* forward and d/d(input) */
    cnnviz_workspace *ws_cam;  /* forward keeping every output, d/d(output of cam_layer) when below eng_last */
    int batch;
    float *logits;       /* (batch, nclasses) */
    float *dout;         /* (batch, eng_out) */
    float *rows;         /* (batch, in_size): inputs a method builds */
    float *grad;         /* (batch, max(in_size, cam layer size)) */
};

/* The logits of the B samples whose engine output is h. */
void explain_head(const cnnviz_explainer *ex, const float *h, int B, float *logits);
/* softmax probability of class c from one logit vector */
float explain_probability(const cnnviz_explainer *ex, const float *logits, int c);

/* Run B rows (B <= ex->batch) forward: ex->logits gets their logits. */
cnnviz_status explain_forward(cnnviz_explainer *ex, const float *rows, int B, cnnviz_error *err);
/* Forward and backward of class cls[b]'s score through ws (ws_grad: grad
 * gets d/d(input); ws_cam: d/d(output of the CAM layer)); score (B) may be
 * NULL. */
cnnviz_status explain_gradient(cnnviz_explainer *ex, cnnviz_workspace *ws, const float *rows, int B,
                               const int *cls, float *score, float *grad, cnnviz_error *err);

/* the methods (src/explain/gradients.c, cam.c) */
cnnviz_status explain_saliency(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                               cnnviz_error *err);
cnnviz_status explain_smoothgrad(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                 cnnviz_error *err);
cnnviz_status explain_integrated(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                 float *completeness, cnnviz_error *err);
cnnviz_status explain_gradcam(cnnviz_explainer *ex, int plus_plus, const float *x, int n, const int *cls,
                              float *maps, cnnviz_error *err);
cnnviz_status explain_scorecam(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                               cnnviz_error *err);
cnnviz_status explain_occlusion(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                cnnviz_error *err);
