/* The explainer: finding the score, checking the options, the workspaces,
 * and the batched forward and backward passes the methods share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain-impl.h"

static const char *const method_names[CNNVIZ_EXPLAIN_METHOD_COUNT] = {
    "saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++", "scorecam", "occlusion",
};

const char *cnnviz_explain_method_name(cnnviz_explain_method m) {
    return m >= 0 && m < CNNVIZ_EXPLAIN_METHOD_COUNT ? method_names[m] : "?";
}

int cnnviz_explain_method_parse(const char *name) {
    for (int i = 0; i < CNNVIZ_EXPLAIN_METHOD_COUNT; i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

int cnnviz_explain_method_uses_layer(cnnviz_explain_method m) {
    return m == CNNVIZ_EXPLAIN_GRADCAM || m == CNNVIZ_EXPLAIN_GRADCAM_PP || m == CNNVIZ_EXPLAIN_SCORECAM;
}

void cnnviz_explain_options_init(cnnviz_explain_options *o) {
    memset(o, 0, sizeof *o);
    o->class_index = -1;
    o->layer = -1;
    o->noise = 0.15f;
    o->samples = 20;
    o->steps = 64;
    o->patch = 4;
    o->stride = 2;
    o->batch = 256;
}

/* Where the score is: the input of the final softmax (see explain.h). */
static cnnviz_status find_score(cnnviz_explainer *ex, cnnviz_error *err) {
    const cnnviz_model *m = ex->m;
    int last = m->nlayers - 1, logit = last;
    const cnnviz_layer *l = m->layers[last];
    if (l->type == CNNVIZ_LAYER_ACTIVATION && l->activation == CNNVIZ_ACT_SOFTMAX) logit = last - 1;
    else if (l->activation == CNNVIZ_ACT_SOFTMAX && l->type != CNNVIZ_LAYER_DENSE)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "a softmax in layer '%s' (%s): no logit to explain",
                                l->name, l->class_name);
    if (logit < 0) return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "the model has no layer under its softmax");
    const cnnviz_layer *t = m->layers[logit];
    ex->head_dense = t->type == CNNVIZ_LAYER_DENSE && t->in_shape.rank == 1 &&
                     (t->activation == CNNVIZ_ACT_SOFTMAX || t->activation == CNNVIZ_ACT_LINEAR);
    ex->eng_last = ex->head_dense ? logit - 1 : logit;
    if (ex->eng_last < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "the model is a single Dense layer: nothing to explain");
    ex->nclasses = (int)cnnviz_shape_size(&t->out_shape);
    ex->eng_out = cnnviz_shape_size(&m->layers[ex->eng_last]->out_shape);
    if (ex->head_dense) {
        ex->kernel = t->param[0].data;
        ex->bias = t->nparam > 1 ? t->param[1].data : NULL;
    } else if (ex->eng_out != (size_t)ex->nclasses)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "layer '%s' does not give one score per class",
                                t->name);
    return CNNVIZ_OK;
}

static int is_spatial(const cnnviz_layer *l) { return l->out_shape.rank == 3; }

/* The last Conv2D, or the Activation after it (past a BatchNormalization). */
static int default_cam_layer(const cnnviz_explainer *ex) {
    const cnnviz_model *m = ex->m;
    int c = -1;
    for (int i = 0; i <= ex->eng_last; i++)
        if (m->layers[i]->type == CNNVIZ_LAYER_CONV2D) c = i;
    if (c < 0) return -1;
    int j = c + 1;
    if (j <= ex->eng_last && m->layers[j]->type == CNNVIZ_LAYER_BATCHNORM) j++;
    return j <= ex->eng_last && m->layers[j]->type == CNNVIZ_LAYER_ACTIVATION ? j : c;
}

/* "conv2d, max_pooling2d, ..." : the layers a CAM method can use */
static void spatial_layers(const cnnviz_explainer *ex, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i <= ex->eng_last && len < n; i++)
        if (is_spatial(ex->m->layers[i]))
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", ex->m->layers[i]->name);
    if (!buf[0]) snprintf(buf, n, "none");
}

static cnnviz_status check_cam_layer(cnnviz_explainer *ex, cnnviz_error *err) {
    int L = ex->opt.layer >= 0 ? ex->opt.layer : default_cam_layer(ex);
    if (L < 0 || L > ex->eng_last || !is_spatial(ex->m->layers[L])) {
        char list[768];
        spatial_layers(ex, list, sizeof list);
        if (L < 0) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the model has no Conv2D layer (layers with spatial maps: %s)", list);
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer '%s' has no spatial maps (layers that have them: %s)",
                                ex->m->layers[L]->name, list);
    }
    const cnnviz_shape *s = &ex->m->layers[L]->out_shape;
    ex->cam_layer = L;
    ex->cam_h = s->dim[0], ex->cam_w = s->dim[1], ex->cam_k = s->dim[2];
    return CNNVIZ_OK;
}

static cnnviz_status check_options(cnnviz_explainer *ex, unsigned methods, cnnviz_error *err) {
    const cnnviz_explain_options *o = &ex->opt;
    if (o->class_index < -1 || o->class_index >= ex->nclasses)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "class %d is outside the model's outputs (0..%d)",
                                o->class_index, ex->nclasses - 1);
    if (o->samples < 1) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "smoothgrad needs at least 1 sample");
    if (o->steps < 1) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "integrated gradients need at least 1 step");
    if (!(o->noise >= 0) || !isfinite(o->noise) || !isfinite(o->baseline))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the noise and the baseline must be finite, the noise >= 0");
    if (o->patch < 1 || o->stride < 1)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the occlusion patch and stride must be at least 1");
    if (o->patch > ex->H || o->patch > ex->W)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "a %d x %d patch is larger than the %d x %d image",
                                o->patch, o->patch, ex->H, ex->W);
    if (o->layer < -1 || o->layer >= ex->m->nlayers)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer %d is not in the model", o->layer);
    ex->cam_layer = -1;
    for (int k = 0; k < CNNVIZ_EXPLAIN_METHOD_COUNT; k++)
        if ((methods >> k & 1) && cnnviz_explain_method_uses_layer(k)) return check_cam_layer(ex, err);
    return CNNVIZ_OK;
}

static cnnviz_workspace *make_ws(cnnviz_explainer *ex, int input_grad, int grad_layer, cnnviz_keep keep,
                                 cnnviz_error *err) {
    cnnviz_workspace_options o = cnnviz_workspace_options_init(ex->batch);
    o.last = ex->eng_last;
    o.keep = keep;
    o.input_grad = input_grad;
    o.grad_layer = grad_layer;
    return cnnviz_workspace_new(ex->m, &o, err);
}

/* The input seen as an image: (H, W, C), or a flat vector of a square number of pixels. */
static void input_geometry(cnnviz_explainer *ex) {
    const cnnviz_shape *s = &ex->m->input_shape;
    if (s->rank == 3) {
        ex->H = s->dim[0], ex->W = s->dim[1], ex->C = s->dim[2];
    } else {
        int side = (int)lround(sqrt((double)ex->in_size));
        if ((size_t)side * (size_t)side == ex->in_size) ex->H = ex->W = side, ex->C = 1;
        else ex->H = 1, ex->W = (int)ex->in_size, ex->C = 1;
    }
}

static cnnviz_status make_buffers(cnnviz_explainer *ex, unsigned methods, cnnviz_error *err) {
    unsigned grads = 1u << CNNVIZ_EXPLAIN_SALIENCY | 1u << CNNVIZ_EXPLAIN_SMOOTHGRAD |
                     1u << CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS;
    ex->ws_fwd = make_ws(ex, 0, -1, CNNVIZ_KEEP_LAST, err);
    if (!ex->ws_fwd) return err ? err->code : CNNVIZ_ERR_NOMEM;
    if (methods & grads && !(ex->ws_grad = make_ws(ex, 1, -1, CNNVIZ_KEEP_LAST, err)))
        return err ? err->code : CNNVIZ_ERR_NOMEM;
    if (ex->cam_layer >= 0) {
        int below = ex->cam_layer < ex->eng_last;
        ex->ws_cam = make_ws(ex, below, below ? ex->cam_layer : -1, CNNVIZ_KEEP_ALL, err);
        if (!ex->ws_cam) return err ? err->code : CNNVIZ_ERR_NOMEM;
    }
    size_t g = ex->in_size, cam = (size_t)ex->cam_h * ex->cam_w * ex->cam_k;
    if (cam > g) g = cam;
    size_t B = (size_t)ex->batch;
    ex->logits = malloc(B * ex->nclasses * sizeof(float));
    ex->dout = malloc(B * ex->eng_out * sizeof(float));
    ex->rows = malloc(B * ex->in_size * sizeof(float));
    ex->grad = malloc(B * g * sizeof(float));
    if (!ex->logits || !ex->dout || !ex->rows || !ex->grad)
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d", ex->batch);
    return CNNVIZ_OK;
}

cnnviz_explainer *cnnviz_explainer_new(const cnnviz_model *m, const cnnviz_explain_options *o, unsigned methods,
                                       cnnviz_error *err) {
    cnnviz_explainer *ex = calloc(1, sizeof *ex);
    if (!ex) {
        cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    ex->m = m;
    ex->opt = *o;
    ex->batch = o->batch > 0 ? o->batch : 256;
    ex->in_size = cnnviz_shape_size(&m->input_shape);
    input_geometry(ex);
    ex->grid_h = ex->H >= o->patch && o->stride > 0 ? (ex->H - o->patch) / o->stride + 1 : 0;
    ex->grid_w = ex->W >= o->patch && o->stride > 0 ? (ex->W - o->patch) / o->stride + 1 : 0;
    if (find_score(ex, err) || check_options(ex, methods, err) || make_buffers(ex, methods, err)) {
        cnnviz_explainer_free(ex);
        return NULL;
    }
    return ex;
}

void cnnviz_explainer_free(cnnviz_explainer *ex) {
    if (!ex) return;
    cnnviz_workspace_free(ex->ws_fwd);
    cnnviz_workspace_free(ex->ws_grad);
    cnnviz_workspace_free(ex->ws_cam);
    free(ex->logits);
    free(ex->dout);
    free(ex->rows);
    free(ex->grad);
    free(ex);
}

int cnnviz_explain_num_classes(const cnnviz_explainer *ex) { return ex->nclasses; }
int cnnviz_explain_layer(const cnnviz_explainer *ex) { return ex->cam_layer; }

cnnviz_shape cnnviz_explain_map_shape(const cnnviz_explainer *ex, cnnviz_explain_method m) {
    cnnviz_shape s = {0};
    if (m <= CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS) return ex->m->input_shape;
    s.rank = 2;
    if (m == CNNVIZ_EXPLAIN_OCCLUSION) s.dim[0] = ex->grid_h, s.dim[1] = ex->grid_w;
    else s.dim[0] = ex->cam_h, s.dim[1] = ex->cam_w;
    return s;
}

/* --- the score head and the passes ------------------------------------------ */

void explain_head(const cnnviz_explainer *ex, const float *h, int B, float *logits) {
    int K = ex->nclasses;
    if (!ex->head_dense) {
        memcpy(logits, h, (size_t)B * K * sizeof *logits);
        return;
    }
    for (int b = 0; b < B; b++) {
        float *z = logits + (size_t)b * K;
        const float *hb = h + (size_t)b * ex->eng_out;
        for (int k = 0; k < K; k++) z[k] = ex->bias ? ex->bias[k] : 0.0f;
        for (size_t i = 0; i < ex->eng_out; i++) {
            float v = hb[i];
            const float *w = ex->kernel + i * K;
            for (int k = 0; k < K; k++) z[k] += v * w[k];
        }
    }
}

float explain_probability(const cnnviz_explainer *ex, const float *z, int c) {
    float mx = z[0];
    for (int k = 1; k < ex->nclasses; k++) mx = z[k] > mx ? z[k] : mx;
    double sum = 0;
    for (int k = 0; k < ex->nclasses; k++) sum += exp((double)z[k] - mx);
    return (float)(exp((double)z[c] - mx) / sum);
}

cnnviz_status explain_forward(cnnviz_explainer *ex, const float *rows, int B, cnnviz_error *err) {
    const float *h = cnnviz_forward(ex->ws_fwd, rows, B, err);
    if (!h) return err ? err->code : CNNVIZ_ERR_INVALID;
    explain_head(ex, h, B, ex->logits);
    return CNNVIZ_OK;
}

cnnviz_status explain_gradient(cnnviz_explainer *ex, cnnviz_workspace *ws, const float *rows, int B,
                               const int *cls, float *score, float *grad, cnnviz_error *err) {
    const float *h = cnnviz_forward(ws, rows, B, err);
    if (!h) return err ? err->code : CNNVIZ_ERR_INVALID;
    explain_head(ex, h, B, ex->logits);
    int K = ex->nclasses;
    for (int b = 0; b < B; b++) {
        float *d = ex->dout + (size_t)b * ex->eng_out;
        if (score) score[b] = ex->logits[(size_t)b * K + cls[b]];
        /* d logit_c / d(input of the Dense head) is the class's kernel column */
        if (ex->head_dense)
            for (size_t i = 0; i < ex->eng_out; i++) d[i] = ex->kernel[i * K + cls[b]];
        else
            for (size_t i = 0; i < ex->eng_out; i++) d[i] = (int)i == cls[b] ? 1.0f : 0.0f;
    }
    /* a CAM layer that is the engine's last: its gradient is dout itself */
    if (ws == ex->ws_cam && ex->cam_layer == ex->eng_last) {
        memcpy(grad, ex->dout, (size_t)B * ex->eng_out * sizeof *grad);
        return CNNVIZ_OK;
    }
    return cnnviz_backward(ws, ex->dout, grad, err);
}

/* --- the calls ---------------------------------------------------------------- */

cnnviz_status cnnviz_explain_classify(cnnviz_explainer *ex, const float *x, int n, int *cls, float *score,
                                      float *prob, cnnviz_error *err) {
    int K = ex->nclasses;
    for (int i = 0; i < n; i += ex->batch) {
        int B = n - i < ex->batch ? n - i : ex->batch;
        if (explain_forward(ex, x + (size_t)i * ex->in_size, B, err)) return err ? err->code : CNNVIZ_ERR_INVALID;
        for (int b = 0; b < B; b++) {
            const float *z = ex->logits + (size_t)b * K;
            int c = ex->opt.class_index;
            if (c < 0) {
                c = 0;
                for (int k = 1; k < K; k++) c = z[k] > z[c] ? k : c;
            }
            if (cls) cls[i + b] = c;
            if (score) score[i + b] = z[c];
            if (prob) prob[i + b] = explain_probability(ex, z, c);
        }
    }
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_explain_scores(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *score,
                                    cnnviz_error *err) {
    for (int i = 0; i < n; i += ex->batch) {
        int B = n - i < ex->batch ? n - i : ex->batch;
        if (explain_forward(ex, x + (size_t)i * ex->in_size, B, err)) return err ? err->code : CNNVIZ_ERR_INVALID;
        for (int b = 0; b < B; b++) score[i + b] = ex->logits[(size_t)b * ex->nclasses + cls[i + b]];
    }
    return CNNVIZ_OK;
}

static cnnviz_status check_classes(const cnnviz_explainer *ex, const int *cls, int n, cnnviz_error *err) {
    for (int i = 0; i < n; i++)
        if (cls[i] < 0 || cls[i] >= ex->nclasses)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "class %d is outside the model's outputs (0..%d)",
                                    cls[i], ex->nclasses - 1);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_explain_run(cnnviz_explainer *ex, cnnviz_explain_method m, const float *x, int n,
                                 const int *cls, float *maps, float *completeness, cnnviz_error *err) {
    if (check_classes(ex, cls, n, err)) return err ? err->code : CNNVIZ_ERR_INVALID;
    if (completeness && m != CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS) memset(completeness, 0, (size_t)n * sizeof(float));
    if (m <= CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS && !ex->ws_grad)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "%s was not asked of this explainer",
                                cnnviz_explain_method_name(m));
    if (cnnviz_explain_method_uses_layer(m) && ex->cam_layer < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "%s was not asked of this explainer",
                                cnnviz_explain_method_name(m));
    switch (m) {
    case CNNVIZ_EXPLAIN_SALIENCY: return explain_saliency(ex, x, n, cls, maps, err);
    case CNNVIZ_EXPLAIN_SMOOTHGRAD: return explain_smoothgrad(ex, x, n, cls, maps, err);
    case CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS: return explain_integrated(ex, x, n, cls, maps, completeness, err);
    case CNNVIZ_EXPLAIN_GRADCAM: return explain_gradcam(ex, 0, x, n, cls, maps, err);
    case CNNVIZ_EXPLAIN_GRADCAM_PP: return explain_gradcam(ex, 1, x, n, cls, maps, err);
    case CNNVIZ_EXPLAIN_SCORECAM: return explain_scorecam(ex, x, n, cls, maps, err);
    case CNNVIZ_EXPLAIN_OCCLUSION: return explain_occlusion(ex, x, n, cls, maps, err);
    default: return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "no method %d", (int)m);
    }
}
