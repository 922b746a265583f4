/* The training loop: shuffled mini-batches, forward, fused softmax
 * cross-entropy backward, regularizers, one optimizer step; per-epoch
 * validation and the history Keras' fit() would return.
 *
 * Memory is set up once: the workspace for one batch, the batch's inputs
 * (gathered from the uint8 set and scaled as they are needed, so a 60,000-
 * image set costs 47 MB, not the 188 MB of its float copy), the loss
 * scratch, a copy of the weights of the last good epoch. The batch loop
 * calls no allocator. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnviz/io.h"
#include "cnnviz/train.h"
#include "model-impl.h"
#include "train/train-impl.h"

/* Streams of the seeded generator: one for the epoch shuffles, one for
 * Dropout masks, so adding Dropout does not change the batch order. */
enum { STREAM_SHUFFLE = 1, STREAM_DROPOUT = 2 };

cnnviz_train_config cnnviz_train_config_init(void) {
    cnnviz_train_config c;
    memset(&c, 0, sizeof c);
    c.epochs = 5;
    c.batch = 64;
    c.seed = 1;
    c.opt = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    c.scale.kind = CNNVIZ_SCALE_UNIT;
    c.scale.std = 1.0f;
    c.shuffle = 1;
    return c;
}

void cnnviz_train_result_free(cnnviz_train_result *res) {
    if (!res) return;
    free(res->history);
    res->history = NULL;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* x (n, sample) and y (n) from the samples idx[0..n) of set (idx NULL: first..first+n) */
static void gather_batch(const cnnviz_labelled_set *set, const int *idx, int first, int n, size_t sample,
                         cnnviz_input_scale scale, float *x, uint8_t *y) {
    /* per sample, so the threads' split changes nothing */
    #pragma omp parallel for schedule(static) if (n >= 32)
    for (int i = 0; i < n; i++) {
        size_t k = (size_t)(idx ? idx[first + i] : first + i);
        cnnviz_scale_pixels(set->pixels + k * sample, x + (size_t)i * sample, sample, scale);
        y[i] = set->labels[k];
    }
}

static cnnviz_status check_set(const cnnviz_model *m, const cnnviz_labelled_set *set, const char *what,
                               cnnviz_error *err) {
    cnnviz_shape out = cnnviz_model_output_shape(m);
    int classes = (int)cnnviz_shape_size(&out);
    if (!set || set->count <= 0 || !set->pixels || !set->labels)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the %s set is empty", what);
    for (int i = 0; i < set->count; i++)
        if (set->labels[i] >= classes)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                    "label %d of %s sample %d is outside the model's %d classes", set->labels[i],
                                    what, i, classes);
    return CNNVIZ_OK;
}

/* Mean cross-entropy and accuracy over set with an inference pass through
 * ws (whose batch buffers x/y are reused). */
static void evaluate_with(const cnnviz_model *m, cnnviz_workspace *ws, const cnnviz_labelled_set *set,
                          cnnviz_input_scale scale, float *x, uint8_t *y, double *loss, double *accuracy) {
    size_t sample = cnnviz_shape_size(&m->input_shape);
    cnnviz_shape os = cnnviz_model_output_shape(m);
    int classes = (int)cnnviz_shape_size(&os), batch = cnnviz_workspace_max_batch(ws);
    double sum = 0.0;
    int correct = 0;
    for (int i = 0; i < set->count; i += batch) {
        int b = set->count - i < batch ? set->count - i : batch;
        gather_batch(set, NULL, i, b, sample, scale, x, y);
        const float *p = cnnviz_forward(ws, x, b, NULL);
        sum += cnnviz_softmax_xent(p, y, b, classes, NULL, &correct);
    }
    *loss = sum / set->count;
    *accuracy = (double)correct / set->count;
}

cnnviz_status cnnviz_evaluate_set(const cnnviz_model *m, const cnnviz_labelled_set *set, cnnviz_input_scale scale,
                                  int batch, double *loss, double *accuracy, cnnviz_error *err) {
    cnnviz_status st = check_set(m, set, "evaluation", err);
    if (st) return st;
    if (batch <= 0) batch = 256;
    if (batch > set->count) batch = set->count;
    size_t sample = cnnviz_shape_size(&m->input_shape);
    cnnviz_workspace_options o = cnnviz_workspace_options_init(batch);
    o.keep = CNNVIZ_KEEP_LAST;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, err);
    float *x = malloc((size_t)batch * sample * sizeof *x);
    uint8_t *y = malloc((size_t)batch);
    if (ws && x && y) evaluate_with(m, ws, set, scale, x, y, loss, accuracy);
    else st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d", batch);
    cnnviz_workspace_free(ws);
    free(x);
    free(y);
    return st;
}

/* Everything the loop needs, allocated once. */
typedef struct {
    cnnviz_workspace *ws, *val_ws; /* training passes; validation's inference passes (or NULL) */
    cnnviz_optimizer *opt;
    float *x, *scratch, *good_weights;
    uint8_t *y;
    int *order;
} trainer;

static void trainer_free(trainer *t) {
    cnnviz_workspace_free(t->ws);
    cnnviz_workspace_free(t->val_ws);
    cnnviz_optimizer_free(t->opt);
    free(t->x);
    free(t->scratch);
    free(t->good_weights);
    free(t->y);
    free(t->order);
}

static cnnviz_status trainer_init(trainer *t, cnnviz_model *m, const cnnviz_train_config *cfg, int count,
                                  int validate, cnnviz_error *err) {
    memset(t, 0, sizeof *t);
    if (cnnviz_model_alloc_grads(m, err) != CNNVIZ_OK) return err ? err->code : CNNVIZ_ERR_NOMEM;
    /* the loss reads the last two outputs; the others may be cropped or fused */
    cnnviz_workspace_options o = cnnviz_workspace_options_init(cfg->batch);
    o.training = o.weight_grads = 1;
    o.keep = CNNVIZ_KEEP_LAST;
    t->ws = cnnviz_workspace_new(m, &o, err);
    if (!t->ws) return err ? err->code : CNNVIZ_ERR_NOMEM;
    if (validate) {
        o = cnnviz_workspace_options_init(cfg->batch);
        o.keep = CNNVIZ_KEEP_LAST;
        if (!(t->val_ws = cnnviz_workspace_new(m, &o, err))) return err ? err->code : CNNVIZ_ERR_NOMEM;
    }
    t->opt = cnnviz_optimizer_new(m, &cfg->opt, err);
    if (!t->opt) return err ? err->code : CNNVIZ_ERR_INVALID;
    size_t sample = cnnviz_shape_size(&m->input_shape);
    t->x = malloc((size_t)cfg->batch * sample * sizeof *t->x);
    t->y = malloc((size_t)cfg->batch);
    t->scratch = malloc(cnnviz_loss_scratch_floats(m, cfg->batch) * sizeof *t->scratch);
    t->good_weights = malloc((m->num_params ? m->num_params : 1) * sizeof *t->good_weights);
    t->order = malloc((size_t)count * sizeof *t->order);
    if (!t->x || !t->y || !t->scratch || !t->good_weights || !t->order)
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for training");
    for (int i = 0; i < count; i++) t->order[i] = i;
    memcpy(t->good_weights, m->params, m->num_params * sizeof *m->params);
    return CNNVIZ_OK;
}

/* One epoch of updates. Returns 0, or the 1-based batch whose loss was not finite. */
static int train_epoch(cnnviz_model *m, trainer *t, const cnnviz_train_config *cfg, const cnnviz_labelled_set *set,
                       int epoch, double *loss, double *accuracy) {
    size_t sample = cnnviz_shape_size(&m->input_shape);
    int nbatches = (set->count + cfg->batch - 1) / cfg->batch;
    double loss_sum = 0.0;
    int correct = 0, seen = 0;
    for (int k = 0; k < nbatches; k++) {
        int first = k * cfg->batch;
        int b = set->count - first < cfg->batch ? set->count - first : cfg->batch;
        gather_batch(set, t->order, first, b, sample, cfg->scale, t->x, t->y);
        cnnviz_model_zero_grads(m);
        cnnviz_forward(t->ws, t->x, b, NULL);
        double xent = cnnviz_loss_backward(m, t->ws, t->y, b, t->scratch, &correct);
        /* Keras' training loss includes the regularizers, at the weights
         * before the update */
        double batch_loss = xent / b + cnnviz_regularization_apply(m);
        if (!isfinite(batch_loss)) return k + 1;
        cnnviz_optimizer_step(t->opt);
        /* Keras' epoch loss is the mean of batch losses weighted by batch size */
        loss_sum += batch_loss * b;
        seen += b;
        if (cfg->on_batch) cfg->on_batch(cfg->ctx, epoch, k + 1, nbatches, loss_sum / seen, (double)correct / seen);
    }
    *loss = loss_sum / seen;
    *accuracy = (double)correct / seen;
    return 0;
}

static cnnviz_status train_run(cnnviz_model *m, const cnnviz_train_config *cfg, const cnnviz_labelled_set *train,
                               const cnnviz_labelled_set *val, cnnviz_train_result *res, cnnviz_error *err) {
    cnnviz_status st;
    if (cfg->epochs <= 0 || cfg->batch <= 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "epochs (%d) and batch size (%d) must be positive",
                                cfg->epochs, cfg->batch);
    if ((st = cnnviz_check_trainable(m, err)) || (st = check_set(m, train, "training", err)) ||
        (val && (st = check_set(m, val, "validation", err))))
        return st;
    res->history = calloc((size_t)cfg->epochs, sizeof *res->history);
    if (!res->history) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    res->has_val = val != NULL;
    trainer t;
    if ((st = trainer_init(&t, m, cfg, train->count, val != NULL, err))) {
        trainer_free(&t);
        return st;
    }
    cnnviz_rng shuffle_rng, dropout_rng;
    cnnviz_rng_seed(&shuffle_rng, cfg->seed, STREAM_SHUFFLE);
    cnnviz_rng_seed(&dropout_rng, cfg->seed, STREAM_DROPOUT);
    cnnviz_workspace_set_rng(t.ws, &dropout_rng);
    for (int e = 1; e <= cfg->epochs; e++) {
        double t0 = now_seconds();
        cnnviz_epoch_stats *s = &res->history[e - 1];
        s->epoch = e;
        if (cfg->shuffle) cnnviz_rng_shuffle(&shuffle_rng, t.order, train->count);
        int bad = train_epoch(m, &t, cfg, train, e, &s->loss, &s->accuracy);
        if (bad) {
            /* keep the last good checkpoint: the weights after the last complete epoch */
            memcpy(m->params, t.good_weights, m->num_params * sizeof *m->params);
            res->nan_epoch = e;
            res->nan_batch = bad;
            res->steps = cnnviz_optimizer_iterations(t.opt);
            st = cnnviz_error_set(err, CNNVIZ_ERR_NUMERIC, "",
                                  "the loss became NaN or infinite at epoch %d, batch %d; %s", e, bad,
                                  res->epochs_done ? "the weights of the last complete epoch were kept"
                                                   : "no epoch completed");
            trainer_free(&t);
            return st;
        }
        if (val) {
            evaluate_with(m, t.val_ws, val, cfg->scale, t.x, t.y, &s->val_loss, &s->val_accuracy);
            /* Keras' val_loss includes the regularizers too */
            s->val_loss += cnnviz_regularization_loss(m);
        }
        s->steps = cnnviz_optimizer_iterations(t.opt);
        s->lr = cnnviz_optimizer_lr(t.opt);
        s->seconds = now_seconds() - t0;
        memcpy(t.good_weights, m->params, m->num_params * sizeof *m->params);
        res->epochs_done = e;
        res->steps = s->steps;
        if (cfg->on_epoch && cfg->on_epoch(cfg->ctx, s)) break;
    }
    trainer_free(&t);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_train(cnnviz_model *m, const cnnviz_train_config *cfg, const cnnviz_labelled_set *train,
                           const cnnviz_labelled_set *val, cnnviz_train_result *res, cnnviz_error *err) {
    memset(res, 0, sizeof *res);
    unsigned mode = cfg->keep_subnormals ? 0 : cnnviz_flush_subnormals_begin();
    cnnviz_status st = train_run(m, cfg, train, val, res, err);
    if (!cfg->keep_subnormals) cnnviz_flush_subnormals_end(mode);
    return st;
}

/* --- what gets recorded in the model file ------------------------------------ */

char *cnnviz_history_json(const cnnviz_train_result *res) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    static const char *const keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    for (int k = 0; k < (res->has_val ? 4 : 2); k++) {
        cJSON *a = cJSON_AddArrayToObject(j, keys[k]);
        for (int e = 0; a && e < res->epochs_done; e++) {
            const cnnviz_epoch_stats *s = &res->history[e];
            double v = k == 0 ? s->loss : k == 1 ? s->accuracy : k == 2 ? s->val_loss : s->val_accuracy;
            cJSON_AddItemToArray(a, cJSON_CreateNumber(v));
        }
    }
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}

cnnviz_status cnnviz_train_record_meta(cnnviz_model *m, const cnnviz_train_config *cfg,
                                       const cnnviz_train_result *res, const char *arch, cnnviz_error *err) {
    char *history = cnnviz_history_json(res), *opt = cnnviz_optimizer_config_json(&cfg->opt);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    cnnviz_status st = CNNVIZ_OK;
    if (!history || !opt) st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    if (!st) st = cnnviz_model_set_meta(m, "cnnviz_history", history, err);
    if (!st) st = cnnviz_model_set_meta(m, "cnnviz_optimizer", opt, err);
    if (!st) st = cnnviz_model_set_meta(m, "cnnviz_seed", seed, err);
    if (!st && arch) st = cnnviz_model_set_meta(m, "cnnviz_arch", arch, err);
    if (!st) cnnviz_model_set_input_scale(m, cfg->scale);
    free(history);
    free(opt);
    return st;
}
