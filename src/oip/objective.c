/* The objective of the ascent and its gradient with respect to the input.
 *
 * For a Conv2D or Dense layer L (the usual case) the engine runs layers
 * 0..L-1 and this file computes layer L itself, for the one map each image
 * is about: z = bias[m] + window . kernel[..., m] at each position, the
 * activation, the mean (or one neuron), and d/d(input of L), which the
 * engine's backward then carries from L-1 to the input. Running L in the
 * engine would compute all of its maps forward and backward, 63 of every
 * 64 of them for nothing on the seed net's second conv layer. Computing z
 * here also gives the pre-activation, which is what a softmax layer's
 * "logit" objective and the leaky ReLU gradient (options.leak) need: the
 * engine's backward only sees the activation's output.
 *
 * Any other layer (pooling, BatchNormalization, ...) runs in the engine
 * through L, and backward starts at L with 1/P on the map's P positions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
    cnnviz_workspace *ws; /* NULL when the engine runs no layer (head on the input) */
    int max_batch;        /* images per round: min(the caller's batch, OIP_MICRO_BATCH) */
    head_kind kind;
    int obj_layer;        /* the layer whose output holds the objective */
    int eng_last;         /* the last layer the engine runs; -1 = none */
    cnnviz_activation act;/* the head's activation; a softmax is taken as linear (logits) */
    float alpha, leak;
    int neuron;           /* position index of the neuron, -1 = mean over positions */
    int positions;        /* P: positions of a map (OH*OW, Dense rows, or engine output size / channels) */
    int channels;         /* maps */
    /* HEAD_CONV geometry (HEAD_DENSE: H = rows, W = kh = kw = 1, C = K = in_dim) */
    int H, W, C, OH, OW, kh, kw, sh, sw, pad_top, pad_left;
    int vector_head;      /* head_forward_vec's lanes, 16 (AVX-512) or 8 (AVX2), when every window is inside
                           * and rows are 16k floats; 0: the plain loop */
    size_t K;             /* weights per map */
    float *kmap;          /* (channels, K): map m's weights contiguous */
    const float *bias;    /* (channels) or NULL */
    size_t in_size;       /* floats of one model input */
    size_t head_in;       /* floats of one input of the head (or of the engine output at obj_layer) */
    float *z;             /* (max_batch, positions) pre-activations */
    float *dhead;         /* (max_batch, head_in) d/d(head input); HEAD_ENGINE: d/d(output of L) */
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

/* 0, or 1 when the layer cannot be a head, 2 when out of memory */
static int setup_head(cnnviz_oip_objective *ob, const cnnviz_model *m) {
    const cnnviz_layer *l = m->layers[ob->obj_layer];
    const cnnviz_shape *in = &l->in_shape, *out = &l->out_shape;
    ob->head_in = cnnviz_shape_size(in);
    ob->channels = out->dim[out->rank - 1];
    ob->positions = (int)(cnnviz_shape_size(out) / (size_t)ob->channels);
    if (ob->kind == HEAD_ENGINE) {
        ob->head_in = cnnviz_shape_size(out);
        return 0;
    }
    const cnnviz_param *kernel = &l->param[0];
    ob->bias = l->nparam > 1 ? l->param[1].data : NULL;
    if (ob->kind == HEAD_CONV) {
        ob->H = in->dim[0], ob->W = in->dim[1], ob->C = in->dim[2];
        ob->OH = out->dim[0], ob->OW = out->dim[1];
        ob->kh = l->spec.kernel[0], ob->kw = l->spec.kernel[1];
        ob->sh = l->spec.strides[0] ? l->spec.strides[0] : 1;
        ob->sw = l->spec.strides[1] ? l->spec.strides[1] : 1;
        int oh, ow;
        cnnviz_window_geometry(ob->H, ob->kh, ob->sh, l->spec.padding, &oh, &ob->pad_top);
        cnnviz_window_geometry(ob->W, ob->kw, ob->sw, l->spec.padding, &ow, &ob->pad_left);
        if (oh != ob->OH || ow != ob->OW) return 1; /* the layer does not match its own spec */
    } else {
        int in_dim = in->dim[in->rank - 1];
        ob->C = in_dim, ob->H = (int)(ob->head_in / (size_t)in_dim), ob->W = 1;
        ob->OH = ob->H, ob->OW = 1, ob->kh = ob->kw = ob->sh = ob->sw = 1;
    }
    ob->K = (size_t)ob->kh * ob->kw * ob->C;
    if (ob->kind == HEAD_CONV && (size_t)ob->kw * ob->C % 16 == 0 &&
        cnnviz_windows_inside(ob->H, ob->kh, ob->sh, ob->OH, ob->pad_top) &&
        cnnviz_windows_inside(ob->W, ob->kw, ob->sw, ob->OW, ob->pad_left))
        ob->vector_head = cnnviz_wide_vectors() ? 16 : cnnviz_avx2_vectors() ? 8 : 0;
    if (kernel->size != ob->K * (size_t)ob->channels) return 1;
    ob->kmap = malloc(kernel->size * sizeof *ob->kmap);
    if (!ob->kmap) return 2;
    /* HWIO / (in, out) has map m at stride `channels`: gather each map's weights */
    for (int f = 0; f < ob->channels; f++)
        for (size_t k = 0; k < ob->K; k++) ob->kmap[(size_t)f * ob->K + k] = kernel->data[k * ob->channels + f];
    return 0;
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
    int rc = setup_head(ob, m);
    if (rc == 2) goto nomem;
    if (rc) {
        cnnviz_oip_objective_free(ob);
        cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "layer '%s' (%s): cannot evaluate its maps one by one",
                         m->layers[o->layer]->name, m->layers[o->layer]->class_name);
        return NULL;
    }
    ob->neuron = -1;
    if (o->neuron_y >= 0) {
        const cnnviz_shape *out = &m->layers[ob->obj_layer]->out_shape;
        ob->neuron = o->neuron_y * (out->rank == 3 ? out->dim[1] : 1) + o->neuron_x;
    }
    ob->eng_last = ob->kind == HEAD_ENGINE ? ob->obj_layer : ob->obj_layer - 1;
    if (ob->eng_last >= 0) {
        /* An inference workspace: backward in "input gradient only" mode needs
         * no state from forward (max pooling finds its maxima again, Dropout
         * is the identity), and without kept im2col columns each conv works
         * on L2-sized chunks. */
        cnnviz_workspace_options wo = cnnviz_workspace_options_init(ob->max_batch);
        wo.last = ob->eng_last;
        wo.input_grad = 1;
        ob->ws = cnnviz_workspace_new(m, &wo, err);
        if (!ob->ws) {
            cnnviz_oip_objective_free(ob);
            return NULL;
        }
    }
    ob->z = malloc((size_t)ob->max_batch * ob->positions * sizeof *ob->z);
    ob->dhead = malloc((size_t)ob->max_batch * ob->head_in * sizeof *ob->dhead);
    if (!ob->z || !ob->dhead) goto nomem;
    return ob;
nomem:
    cnnviz_oip_objective_free(ob);
    cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d patterns", max_batch);
    return NULL;
}

void cnnviz_oip_objective_free(cnnviz_oip_objective *ob) {
    if (!ob) return;
    cnnviz_workspace_free(ob->ws);
    free(ob->kmap);
    free(ob->z);
    free(ob->dhead);
    free(ob);
}

/* The column range [k0, k1) of window row (oy, ox, ky) that lies inside the
 * input; -1 when the row is in the padding. Returns the input row. */
static int window_row(const cnnviz_oip_objective *ob, int oy, int ox, int ky, int *k0, int *k1) {
    int iy = oy * ob->sh - ob->pad_top + ky;
    if (iy < 0 || iy >= ob->H) return -1;
    int ix0 = ox * ob->sw - ob->pad_left;
    *k0 = ix0 < 0 ? -ix0 : 0;
    *k1 = ix0 + ob->kw > ob->W ? ob->W - ix0 : ob->kw;
    return iy;
}

/* z at position (oy, ox) when its window lies inside the input and its
 * rows are a multiple of 16 floats (the seed net's second and third conv
 * layers): one 16-float accumulator, one reduction; on AVX2 as two
 * 8-float halves summed the same way (the same bits). */
CNNVIZ_HOT
static void head_forward_vec(const cnnviz_oip_objective *ob, const float *in, const float *k, float b, float *z) {
    size_t rowlen = (size_t)ob->kw * ob->C;
    int wide = ob->vector_head == 16;
    for (int oy = 0; oy < ob->OH; oy++)
        for (int ox = 0; ox < ob->OW; ox++) {
            const float *x0 = in + ((size_t)(oy * ob->sh) * ob->W + ox * ob->sw) * ob->C;
            cnnviz_v16 v = {0};
            cnnviz_v8 lo = {0}, hi = {0};
            for (int ky = 0; ky < ob->kh; ky++) {
                const float *xr = x0 + (size_t)ky * ob->W * ob->C, *kr = k + ky * rowlen;
                if (wide)
                    for (size_t i = 0; i < rowlen; i += 16)
                        v += *(const cnnviz_v16u *)(xr + i) * *(const cnnviz_v16u *)(kr + i);
                else
                    for (size_t i = 0; i < rowlen; i += 16) {
                        lo += *(const cnnviz_v8u *)(xr + i) * *(const cnnviz_v8u *)(kr + i);
                        hi += *(const cnnviz_v8u *)(xr + i + 8) * *(const cnnviz_v8u *)(kr + i + 8);
                    }
            }
            z[oy * ob->OW + ox] = (wide ? cnnviz_hsum16(v) : cnnviz_hsum16_halves(lo, hi)) + b;
        }
}

/* z[p] for every position p of map m of one sample. */
static void head_forward(const cnnviz_oip_objective *ob, const float *in, int m, float *z) {
    const float *k = ob->kmap + (size_t)m * ob->K;
    float b = ob->bias ? ob->bias[m] : 0.0f;
    if (ob->vector_head) {
        head_forward_vec(ob, in, k, b, z);
        return;
    }
    for (int oy = 0; oy < ob->OH; oy++)
        for (int ox = 0; ox < ob->OW; ox++) {
            float acc = 0.0f;
            for (int ky = 0; ky < ob->kh; ky++) {
                int k0, k1, iy = window_row(ob, oy, ox, ky, &k0, &k1);
                if (iy < 0 || k1 <= k0) continue;
                int ix = ox * ob->sw - ob->pad_left + k0;
                const float *xr = in + ((size_t)iy * ob->W + ix) * ob->C;
                const float *kr = k + ((size_t)ky * ob->kw + k0) * ob->C;
                size_t len = (size_t)(k1 - k0) * ob->C;
                #pragma omp simd reduction(+ : acc)
                for (size_t i = 0; i < len; i++) acc += xr[i] * kr[i];
            }
            z[oy * ob->OW + ox] = acc + b;
        }
}

/* din (one sample, head input) = sum over positions of g[p] * map m's window weights */
static void head_backward(const cnnviz_oip_objective *ob, const float *g, int m, float *din) {
    const float *k = ob->kmap + (size_t)m * ob->K;
    memset(din, 0, ob->head_in * sizeof *din);
    for (int oy = 0; oy < ob->OH; oy++)
        for (int ox = 0; ox < ob->OW; ox++) {
            float gp = g[oy * ob->OW + ox];
            if (gp == 0.0f) continue;
            for (int ky = 0; ky < ob->kh; ky++) {
                int k0, k1, iy = window_row(ob, oy, ox, ky, &k0, &k1);
                if (iy < 0 || k1 <= k0) continue;
                int ix = ox * ob->sw - ob->pad_left + k0;
                float *dr = din + ((size_t)iy * ob->W + ix) * ob->C;
                const float *kr = k + ((size_t)ky * ob->kw + k0) * ob->C;
                size_t len = (size_t)(k1 - k0) * ob->C;
                #pragma omp simd
                for (size_t i = 0; i < len; i++) dr[i] += gp * kr[i];
            }
        }
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

static int threads_for(int jobs) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1; /* called from one of cnnviz_oip_run's groups */
#endif
    int t = cnnviz_get_threads();
    return t < 1 ? 1 : t < jobs ? t : jobs > 0 ? jobs : 1;
}

static void eval_batch(cnnviz_oip_objective *ob, const float *x, const int *maps, int B, float *value,
                       float *surrogate, float *grad) {
    const float *in = x;
    if (ob->eng_last >= 0) in = cnnviz_forward(ob->ws, x, B, NULL);
    /* with no engine layer before the head, d/d(head input) is d/d(input) */
    float *dh = ob->eng_last >= 0 ? ob->dhead : grad;
    if (ob->kind == HEAD_ENGINE) {
        for (int b = 0; b < B; b++) {
            engine_objective(ob, in + (size_t)b * ob->head_in, maps[b], &value[b],
                             grad ? dh + (size_t)b * ob->head_in : NULL);
            if (surrogate) surrogate[b] = value[b];
        }
    } else {
        #pragma omp parallel for schedule(static) num_threads(threads_for(B))
        for (int b = 0; b < B; b++) {
            float *z = ob->z + (size_t)b * ob->positions, sur;
            head_forward(ob, in + (size_t)b * ob->head_in, maps[b], z);
            head_objective(ob, z, &value[b], &sur);
            if (surrogate) surrogate[b] = sur;
            if (grad) head_backward(ob, z, maps[b], dh + (size_t)b * ob->head_in);
        }
    }
    if (grad && ob->eng_last >= 0) (void)cnnviz_backward(ob->ws, ob->dhead, grad, NULL);
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
