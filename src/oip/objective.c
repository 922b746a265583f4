/* The objective of the ascent and its gradient with respect to the input,
 * through the engine's plan.
 *
 * For a Conv2D or Dense layer L (the usual case) the workspace is a
 * one-map plan (cnnviz_workspace_options.one_map): forward gives, for the
 * one map each image is about, its pre-activations z at every position;
 * this file takes the activation, the mean (or one neuron) and d/dz; the
 * plan's backward carries that to the input. The pre-activation is what a
 * softmax layer's "logit" objective and the leaky ReLU gradient
 * (options.leak) need: a whole layer's backward only sees the
 * activation's output.
 *
 * Any other layer (pooling, BatchNormalization, ...) runs in the engine
 * through L, and backward starts at L with 1/P on the map's P positions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "model-impl.h"
#include "oip-impl.h"

/* Images per forward-head-backward round in cnnviz_oip_objective_eval;
 * the workspace and buffers are sized for one round. */
#ifndef OIP_MICRO_BATCH
#define OIP_MICRO_BATCH 8
#endif

typedef enum { HEAD_CONV, HEAD_DENSE, HEAD_ENGINE } head_kind;

struct cnnviz_oip_objective {
    const cnnviz_model *m;
    cnnviz_workspace *ws; /* the plan: layers 0..obj_layer, input gradient */
    int max_batch;        /* images per round: min(the caller's batch, OIP_MICRO_BATCH) */
    head_kind kind;
    int obj_layer;        /* the layer whose output holds the objective */
    cnnviz_activation act;/* the head's activation; a softmax is taken as linear (logits) */
    float alpha, leak;
    int neuron;           /* position index of the neuron, -1 = mean over positions */
    int positions;        /* P: positions of a map */
    int channels;         /* maps */
    size_t in_size;       /* floats of one model input */
    size_t head_out;      /* floats of one output of obj_layer (HEAD_ENGINE) */
    float *dz;            /* (max_batch, positions): z, then d surrogate / d z (one-map heads) */
    float *dy;            /* (max_batch, head_out): HEAD_ENGINE's d/d(output of L) */
};

/* The activation and its slope at pre-activation z. */
static float act_value(cnnviz_activation a, float alpha, float z, float *slope) {
    switch (a) {
    case CNNVIZ_ACT_RELU: *slope = z > 0.0f ? 1.0f : 0.0f; return z > 0.0f ? z : 0.0f;
    case CNNVIZ_ACT_LEAKY_RELU: *slope = z > 0.0f ? 1.0f : alpha; return z > 0.0f ? z : alpha * z;
    case CNNVIZ_ACT_ELU: {
        if (z > 0.0f) {
            *slope = 1.0f;
            return z;
        }
        float e = expf(z);
        *slope = alpha * e;
        return alpha * (e - 1.0f);
    }
    case CNNVIZ_ACT_SIGMOID: {
        float s = 1.0f / (1.0f + expf(-z));
        *slope = s * (1.0f - s);
        return s;
    }
    case CNNVIZ_ACT_TANH: {
        float t = tanhf(z);
        *slope = 1.0f - t * t;
        return t;
    }
    case CNNVIZ_ACT_SOFTMAX: /* never reached: a softmax head is made linear */
    case CNNVIZ_ACT_LINEAR:
    default: *slope = 1.0f; return z;
    }
}

/* Decide how layer `layer` is evaluated. A softmax Activation layer puts the
 * objective on its input (the logits); an Activation right after a linear
 * Conv2D/Dense is folded into that layer so that it can be a head. */
static void choose_head(cnnviz_oip_objective *ob, const cnnviz_model *m, int layer) {
    const cnnviz_layer *l = m->layers[layer];
    int target = layer, folded = 0;
    cnnviz_activation act = l->activation;
    float alpha = 0.0f;
    if (l->type == CNNVIZ_LAYER_ACTIVATION && layer > 0) {
        const cnnviz_layer *prev = m->layers[layer - 1];
        int head_prev = prev->type == CNNVIZ_LAYER_CONV2D || prev->type == CNNVIZ_LAYER_DENSE;
        if (act == CNNVIZ_ACT_SOFTMAX) {
            target = layer - 1;
        } else if (head_prev && prev->activation == CNNVIZ_ACT_LINEAR) {
            target = layer - 1;
            alpha = l->spec.alpha;
            folded = 1;
        }
    }
    const cnnviz_layer *t = m->layers[target];
    ob->obj_layer = target;
    ob->kind = t->type == CNNVIZ_LAYER_CONV2D ? HEAD_CONV : t->type == CNNVIZ_LAYER_DENSE ? HEAD_DENSE : HEAD_ENGINE;
    if (!folded) {
        act = t->activation;
        alpha = cnnviz_fused_activation_alpha(act);
    }
    /* the engine applies a layer's own activation; a softmax head gives logits */
    if (ob->kind == HEAD_ENGINE || act == CNNVIZ_ACT_SOFTMAX) act = CNNVIZ_ACT_LINEAR;
    ob->act = act;
    ob->alpha = alpha;
}

/* The plan: layers 0..obj_layer with an input gradient; one map of
 * obj_layer per image unless the engine runs it whole. The ascent reads
 * only that last output (so a conv under its pooling makes only what the
 * pooling reads), and the weights do not change during an ascent. */
static cnnviz_workspace *objective_workspace(const cnnviz_oip_objective *ob, cnnviz_error *err) {
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(ob->max_batch);
    wo.last = ob->obj_layer;
    wo.input_grad = 1;
    wo.one_map = ob->kind != HEAD_ENGINE;
    wo.fixed_weights = 1;
    wo.keep = CNNVIZ_KEEP_LAST;
    return cnnviz_workspace_new(ob->m, &wo, err);
}

cnnviz_oip_objective *cnnviz_oip_objective_new(const cnnviz_model *m, const cnnviz_oip_options *o, int max_batch,
                                               cnnviz_error *err) {
    int nmaps;
    if (cnnviz_oip_check(m, o, NULL, 0, &nmaps, err) != CNNVIZ_OK) return NULL;
    cnnviz_oip_objective *ob = calloc(1, sizeof *ob);
    if (!ob) goto nomem;
    ob->m = m;
    ob->max_batch = max_batch < OIP_MICRO_BATCH ? max_batch : OIP_MICRO_BATCH;
    ob->leak = o->leak;
    ob->in_size = cnnviz_shape_size(&m->input_shape);
    choose_head(ob, m, o->layer);
    const cnnviz_shape *out = &m->layers[ob->obj_layer]->out_shape;
    ob->channels = out->dim[out->rank - 1];
    ob->positions = (int)(cnnviz_shape_size(out) / (size_t)ob->channels);
    ob->head_out = cnnviz_shape_size(out);
    ob->neuron = -1;
    if (o->neuron_y >= 0) ob->neuron = o->neuron_y * (out->rank == 3 ? out->dim[1] : 1) + o->neuron_x;
    ob->ws = objective_workspace(ob, err);
    if (!ob->ws) {
        cnnviz_oip_objective_free(ob);
        return NULL;
    }
    ob->dz = malloc((size_t)ob->max_batch * ob->positions * sizeof *ob->dz);
    if (ob->kind == HEAD_ENGINE) ob->dy = malloc((size_t)ob->max_batch * ob->head_out * sizeof *ob->dy);
    if (!ob->dz || (ob->kind == HEAD_ENGINE && !ob->dy)) goto nomem;
    return ob;
nomem:
    cnnviz_oip_objective_free(ob);
    cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d patterns", max_batch);
    return NULL;
}

void cnnviz_oip_objective_free(cnnviz_oip_objective *ob) {
    if (!ob) return;
    cnnviz_workspace_free(ob->ws);
    free(ob->dz);
    free(ob->dy);
    free(ob);
}

/* From the P pre-activations z of one map: the objective, its surrogate,
 * and in z (overwritten) d surrogate / d z. */
static void head_objective(const cnnviz_oip_objective *ob, float *z, float *value, float *surrogate) {
    int P = ob->positions, p0 = 0, p1 = P;
    if (ob->neuron >= 0) p0 = ob->neuron, p1 = ob->neuron + 1;
    float inv = 1.0f / (float)(p1 - p0);
    double v = 0.0, s = 0.0;
    int leaky = ob->act == CNNVIZ_ACT_RELU && ob->leak > 0.0f;
    for (int p = 0; p < P; p++) {
        if (p < p0 || p >= p1) {
            z[p] = 0.0f;
            continue;
        }
        float slope, a = act_value(ob->act, ob->alpha, z[p], &slope);
        v += a;
        if (leaky && z[p] <= 0.0f) {
            s += ob->leak * z[p];
            slope = ob->leak;
        }
        z[p] = slope * inv;
    }
    *value = (float)(v * inv);
    *surrogate = (float)((v + s) * inv);
}

/* Objective from the engine's output of obj_layer; dhead gets d/d(output). */
static void engine_objective(const cnnviz_oip_objective *ob, const float *y, int m, float *value, float *dy) {
    int P = ob->positions, C = ob->channels;
    int p0 = ob->neuron >= 0 ? ob->neuron : 0, p1 = ob->neuron >= 0 ? ob->neuron + 1 : P;
    float inv = 1.0f / (float)(p1 - p0);
    double v = 0.0;
    if (dy) memset(dy, 0, (size_t)P * C * sizeof *dy);
    for (int p = p0; p < p1; p++) {
        v += y[(size_t)p * C + m];
        if (dy) dy[(size_t)p * C + m] = inv;
    }
    *value = (float)(v * inv);
}

static void eval_batch(cnnviz_oip_objective *ob, const float *x, const int *maps, int B, float *value,
                       float *surrogate, float *grad) {
    if (ob->kind == HEAD_ENGINE) {
        const float *y = cnnviz_forward(ob->ws, x, B, NULL);
        for (int b = 0; b < B; b++) {
            engine_objective(ob, y + (size_t)b * ob->head_out, maps[b], &value[b],
                             grad ? ob->dy + (size_t)b * ob->head_out : NULL);
            if (surrogate) surrogate[b] = value[b];
        }
        if (grad) (void)cnnviz_backward(ob->ws, ob->dy, grad, NULL);
        return;
    }
    const float *z = cnnviz_forward_maps(ob->ws, x, maps, B, NULL);
    memcpy(ob->dz, z, (size_t)B * ob->positions * sizeof *ob->dz);
    for (int b = 0; b < B; b++) {
        float sur;
        head_objective(ob, ob->dz + (size_t)b * ob->positions, &value[b], &sur);
        if (surrogate) surrogate[b] = sur;
    }
    if (grad) (void)cnnviz_backward(ob->ws, ob->dz, grad, NULL);
}

/* A few images at a time go forward, through the head and back, so that
 * backward finds the activations forward left (the first conv layer's
 * output is 86 KB an image on the seed net) still in the cache. Images do
 * not interact: the bits are those of one batch. */
void cnnviz_oip_objective_eval(cnnviz_oip_objective *ob, const float *x, const int *maps, int B, float *value,
                               float *surrogate, float *grad) {
    for (int b0 = 0; b0 < B; b0 += OIP_MICRO_BATCH) {
        int nb = B - b0 < OIP_MICRO_BATCH ? B - b0 : OIP_MICRO_BATCH;
        eval_batch(ob, x + (size_t)b0 * ob->in_size, maps + b0, nb, value + b0, surrogate ? surrogate + b0 : NULL,
                   grad ? grad + (size_t)b0 * ob->in_size : NULL);
    }
}
