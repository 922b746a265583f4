/* Optimizers with Keras 3's update rules (keras/src/optimizers/sgd.py,
 * rmsprop.py, adam.py), which for these settings match tf.keras 2.x's fused
 * TF kernels (ResourceApplyRMSProp, ResourceApplyKerasMomentum, ...).
 *
 * Like llm.c, the moments live in one slab laid out like the parameters, so
 * an update is one pass over each run of trainable weights (BatchNorm's
 * moving statistics are the only weights skipped). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/train.h"
#include "layers/layers.h"
#include "model-impl.h"

typedef struct {
    size_t offset, size;
} weight_run;

struct cnnviz_optimizer {
    cnnviz_model *model;
    cnnviz_optimizer_config c;
    long iterations;
    float *slab;         /* nstate * num_params */
    float *s1, *s2, *s3; /* moments; NULL when the settings do not use them */
    int nrun;
    weight_run *run;
};

cnnviz_optimizer_config cnnviz_optimizer_config_init(cnnviz_optimizer_kind kind) {
    cnnviz_optimizer_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr.kind = CNNVIZ_DECAY_NONE;
    c.lr.initial = kind == CNNVIZ_OPT_SGD ? 0.01 : 0.001;
    c.lr.decay_steps = 1.0;
    c.rho = 0.9;
    c.beta_1 = 0.9;
    c.beta_2 = 0.999;
    c.epsilon = 1e-7;
    return c;
}

const char *cnnviz_optimizer_name(cnnviz_optimizer_kind kind) {
    switch (kind) {
    case CNNVIZ_OPT_SGD: return "sgd";
    case CNNVIZ_OPT_RMSPROP: return "rmsprop";
    case CNNVIZ_OPT_ADAM: return "adam";
    }
    return "?";
}

/* Number of moment arrays each optimizer keeps. */
static int state_arrays(const cnnviz_optimizer_config *c) {
    switch (c->kind) {
    case CNNVIZ_OPT_SGD: return c->momentum != 0.0 ? 1 : 0;
    case CNNVIZ_OPT_RMSPROP: return 1 + (c->momentum > 0.0) + (c->centered != 0);
    case CNNVIZ_OPT_ADAM: return 2;
    }
    return 0;
}

cnnviz_optimizer *cnnviz_optimizer_new(cnnviz_model *m, const cnnviz_optimizer_config *c, cnnviz_error *err) {
    if (!m->grads) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the model has no gradients to optimize");
        return NULL;
    }
    if (!(c->lr.initial > 0.0) || (c->lr.kind != CNNVIZ_DECAY_NONE && !(c->lr.decay_steps > 0.0))) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "learning rate %g and decay steps %g must be positive",
                         c->lr.initial, c->lr.decay_steps);
        return NULL;
    }
    cnnviz_optimizer *o = calloc(1, sizeof *o);
    int nlayer_params = 0;
    for (int i = 0; i < m->nlayers; i++) nlayer_params += m->layers[i]->nparam;
    int nstate = state_arrays(c);
    if (o) {
        o->run = calloc((size_t)nlayer_params + 1, sizeof *o->run);
        o->slab = calloc((size_t)nstate * m->num_params + 1, sizeof(float));
    }
    if (!o || !o->run || !o->slab) {
        cnnviz_optimizer_free(o);
        cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for the optimizer's state");
        return NULL;
    }
    o->model = m;
    o->c = *c;
    float *next = o->slab;
    float **slot[3] = {&o->s1, &o->s2, &o->s3};
    for (int k = 0; k < nstate; k++, next += m->num_params) *slot[k] = next;
    /* runs of trainable weights, merged where tensors are adjacent */
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++) {
            const cnnviz_param *p = &m->layers[i]->param[k];
            if (!p->trainable || p->size == 0) continue;
            weight_run *prev = o->nrun ? &o->run[o->nrun - 1] : NULL;
            if (prev && prev->offset + prev->size == p->offset)
                prev->size += p->size;
            else
                o->run[o->nrun++] = (weight_run){p->offset, p->size};
        }
    return o;
}

void cnnviz_optimizer_free(cnnviz_optimizer *o) {
    if (!o) return;
    free(o->slab);
    free(o->run);
    free(o);
}

long cnnviz_optimizer_iterations(const cnnviz_optimizer *o) { return o->iterations; }
float cnnviz_optimizer_lr(const cnnviz_optimizer *o) { return cnnviz_schedule_lr(&o->c.lr, o->iterations); }

/* velocity = momentum*velocity - lr*g; w += velocity, or with Nesterov
 * w += momentum*velocity - lr*g (keras/src/optimizers/sgd.py). */
static void sgd_update(const cnnviz_optimizer *o, float *w, const float *g, float *vel, size_t n, float lr) {
    float mu = (float)o->c.momentum;
    if (!vel) {
        for (size_t j = 0; j < n; j++) w[j] -= g[j] * lr;
        return;
    }
    for (size_t j = 0; j < n; j++) {
        vel[j] = vel[j] * mu - g[j] * lr;
        w[j] += o->c.nesterov ? vel[j] * mu - g[j] * lr : vel[j];
    }
}

/* v = rho*v + (1-rho)*g^2; centered: a = rho*a + (1-rho)*g, denominator
 * v - a^2 + eps, else v + eps; increment = lr*g/sqrt(denominator);
 * with momentum m = momentum*m + increment, w -= m; else w -= increment
 * (keras/src/optimizers/rmsprop.py).
 *
 * The usual settings (not centered) go through a loop the compiler
 * vectorizes (a square root and a division per weight, which scalar code
 * pays for one at a time): 190 us a step of the seed net before. */
CNNVIZ_HOT
static void rmsprop_plain(float *restrict w, const float *restrict g, float *restrict v, float *restrict mom,
                          size_t n, float lr, float rho, float one_minus_rho, float eps, float mu) {
    if (mom) {
        #pragma omp simd
        for (size_t j = 0; j < n; j++) {
            float gj = g[j];
            v[j] = rho * v[j] + one_minus_rho * (gj * gj);
            mom[j] = mu * mom[j] + lr * gj / sqrtf(v[j] + eps);
            w[j] -= mom[j];
        }
    } else {
        #pragma omp simd
        for (size_t j = 0; j < n; j++) {
            float gj = g[j];
            v[j] = rho * v[j] + one_minus_rho * (gj * gj);
            w[j] -= lr * gj / sqrtf(v[j] + eps);
        }
    }
}

static void rmsprop_update(const cnnviz_optimizer *o, float *w, const float *g, float *v, float *mom, float *avg,
                           size_t n, float lr) {
    float rho = (float)o->c.rho, one_minus_rho = (float)(1.0 - o->c.rho);
    float eps = (float)o->c.epsilon, mu = (float)o->c.momentum;
    if (!avg) {
        rmsprop_plain(w, g, v, mom, n, lr, rho, one_minus_rho, eps, mu);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        float gj = g[j];
        v[j] = rho * v[j] + one_minus_rho * (gj * gj);
        avg[j] = rho * avg[j] + one_minus_rho * gj;
        float increment = lr * gj / sqrtf(v[j] - avg[j] * avg[j] + eps);
        if (mom) {
            mom[j] = mu * mom[j] + increment;
            w[j] -= mom[j];
        } else {
            w[j] -= increment;
        }
    }
}

/* alpha = lr*sqrt(1 - beta_2^t)/(1 - beta_1^t) with t = iterations + 1;
 * m += (g - m)*(1 - beta_1); v += (g^2 - v)*(1 - beta_2);
 * w -= m*alpha/(sqrt(v) + eps) (keras/src/optimizers/adam.py). */
static void adam_update(const cnnviz_optimizer *o, float *w, const float *g, float *m, float *v, size_t n,
                        float lr) {
    float t = (float)(o->iterations + 1);
    float b1 = (float)o->c.beta_1, b2 = (float)o->c.beta_2, eps = (float)o->c.epsilon;
    float b1_power = powf(b1, t), b2_power = powf(b2, t);
    float alpha = lr * sqrtf(1.0f - b2_power) / (1.0f - b1_power);
    float one_minus_b1 = (float)(1.0 - o->c.beta_1), one_minus_b2 = (float)(1.0 - o->c.beta_2);
    for (size_t j = 0; j < n; j++) {
        float gj = g[j];
        m[j] += (gj - m[j]) * one_minus_b1;
        v[j] += (gj * gj - v[j]) * one_minus_b2;
        w[j] -= m[j] * alpha / (sqrtf(v[j]) + eps);
    }
}

/* pieces of a run the threads share: every update is per weight, so the
 * split changes no bits */
#define STEP_PIECE 16384

void cnnviz_optimizer_step(cnnviz_optimizer *o) {
    float lr = cnnviz_schedule_lr(&o->c.lr, o->iterations);
    float *w = o->model->params;
    const float *g = o->model->grads;
    for (int r = 0; r < o->nrun; r++) {
        long pieces = (long)((o->run[r].size + STEP_PIECE - 1) / STEP_PIECE);
        #pragma omp parallel for schedule(static) if (pieces > 1)
        for (long q = 0; q < pieces; q++) {
            size_t at = o->run[r].offset + (size_t)q * STEP_PIECE, end = o->run[r].offset + o->run[r].size;
            size_t n = end - at < STEP_PIECE ? end - at : STEP_PIECE;
#define AT(p) ((p) ? (p) + at : NULL)
            switch (o->c.kind) {
            case CNNVIZ_OPT_SGD: sgd_update(o, w + at, g + at, AT(o->s1), n, lr); break;
            case CNNVIZ_OPT_RMSPROP: {
                /* s1 velocity, then momentum and/or average gradient in that order */
                float *mom = o->c.momentum > 0.0 ? AT(o->s2) : NULL;
                float *avg = o->c.centered ? (o->c.momentum > 0.0 ? AT(o->s3) : AT(o->s2)) : NULL;
                rmsprop_update(o, w + at, g + at, o->s1 + at, mom, avg, n, lr);
                break;
            }
            case CNNVIZ_OPT_ADAM: adam_update(o, w + at, g + at, o->s1 + at, o->s2 + at, n, lr); break;
            }
#undef AT
        }
    }
    o->iterations++;
}

/* --- configuration as Keras' get_config() ------------------------------------ */

static cJSON *schedule_json(const cnnviz_schedule *s) {
    if (s->kind == CNNVIZ_DECAY_NONE) return cJSON_CreateNumber(s->initial);
    const char *cls = s->kind == CNNVIZ_DECAY_INVERSE_TIME ? "InverseTimeDecay" : "ExponentialDecay";
    cJSON *j = cJSON_CreateObject(), *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "module", "keras.optimizers.schedules");
    cJSON_AddStringToObject(j, "class_name", cls);
    cJSON_AddNumberToObject(cfg, "initial_learning_rate", s->initial);
    cJSON_AddNumberToObject(cfg, "decay_steps", s->decay_steps);
    cJSON_AddNumberToObject(cfg, "decay_rate", s->rate);
    cJSON_AddBoolToObject(cfg, "staircase", s->staircase);
    cJSON_AddStringToObject(cfg, "name", cls);
    cJSON_AddItemToObject(j, "config", cfg);
    return j;
}

char *cnnviz_optimizer_config_json(const cnnviz_optimizer_config *c) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "name", cnnviz_optimizer_name(c->kind));
    cJSON_AddItemToObject(j, "learning_rate", schedule_json(&c->lr));
    switch (c->kind) {
    case CNNVIZ_OPT_SGD:
        cJSON_AddNumberToObject(j, "momentum", c->momentum);
        cJSON_AddBoolToObject(j, "nesterov", c->nesterov);
        break;
    case CNNVIZ_OPT_RMSPROP:
        cJSON_AddNumberToObject(j, "rho", c->rho);
        cJSON_AddNumberToObject(j, "momentum", c->momentum);
        cJSON_AddNumberToObject(j, "epsilon", c->epsilon);
        cJSON_AddBoolToObject(j, "centered", c->centered);
        break;
    case CNNVIZ_OPT_ADAM:
        cJSON_AddNumberToObject(j, "beta_1", c->beta_1);
        cJSON_AddNumberToObject(j, "beta_2", c->beta_2);
        cJSON_AddNumberToObject(j, "epsilon", c->epsilon);
        cJSON_AddBoolToObject(j, "amsgrad", 0);
        break;
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}
