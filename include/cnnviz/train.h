/* cnnviz — training: loss, regularizers, optimizers and learning-rate
 * schedules with Keras' formulas, the compact architecture spec, and the
 * training loop over a labelled uint8 data set.
 *
 * Everything follows Keras 3 (the optimizers in keras/src/optimizers, keras/src/losses,
 * keras/src/optimizers/schedules/learning_rate_schedule.py), which for the
 * pieces used here computes the same numbers as tf.keras 2.x. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"
#include "cnnviz/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

/* --- architecture spec ----------------------------------------------------- */
/* The seed network of the articles: 96,844 parameters on 28x28x1 input. */
#define CNNVIZ_SEED_ARCH "C32k3-P2-C64k3-P2-C64k3-F-D70-D10"

/* Build (and finalize) a model from a compact spec such as
 * "C32k3-P2-C64k3-P2-C64k3-F-D70-D10"; the grammar is in src/train/spec.c and
 * in `cnnviz train --help`. Weights are all zero: call
 * cnnviz_model_init_weights. Errors name the spec, the item and its 1-based
 * position: "arch 'C32k3-Q2': unknown layer 'Q2' at position 2". */
cnnviz_status cnnviz_model_from_spec(const char *spec, const cnnviz_shape *input, cnnviz_model **out,
                                     cnnviz_error *err);
/* The grammar as help text (several lines, no trailing newline). */
const char *cnnviz_spec_help(void);

/* --- loss ------------------------------------------------------------------ */
/* Keras' backend epsilon: categorical cross-entropy clips probabilities to
 * [eps, 1-eps] before the log (keras/src/backend/tensorflow/nn.py). */
#define CNNVIZ_XENT_EPSILON 1e-7f

/* Softmax outputs probs (B, C) against integer labels (B): returns the SUM
 * over the batch of -log(clip(p[label])) (divide by B for Keras' mean) and
 * adds the number of argmax hits to *correct (may be NULL). With dlogits
 * non-NULL writes the fused softmax + cross-entropy gradient with respect to
 * the logits of the batch MEAN, (p - onehot)/B, which is what TF computes for a
 * softmax output (softmax_cross_entropy_with_logits) and avoids dividing by
 * small probabilities. Labels must be < C. */
double cnnviz_softmax_xent(const float *probs, const uint8_t *labels, int B, int C, float *dlogits,
                           int *correct);

/* Can cnnviz train m? The output must be one softmax vector: a Dense with
 * softmax activation, or an Activation/Softmax layer. */
cnnviz_status cnnviz_check_trainable(const cnnviz_model *m, cnnviz_error *err);
/* --- regularizers ---------------------------------------------------------- */
/* Sum over every weight tensor with l1/l2 of l1*sum|w| + l2*sum(w^2), the
 * term Keras adds to the loss (keras/src/regularizers/regularizers.py). */
double cnnviz_regularization_loss(const cnnviz_model *m);
/* Add the regularizers' gradient to the model's grads (2*l2*w + l1*sign(w),
 * sign(0) = 0 as in TF) and return the same value as
 * cnnviz_regularization_loss. */
double cnnviz_regularization_apply(cnnviz_model *m);
/* Put l1/l2 on every Dense kernel (the articles' recipe regularizes only the
 * dense layers). Returns the number of kernels changed. */
int cnnviz_regularize_dense_kernels(cnnviz_model *m, float l1, float l2);

/* --- learning-rate schedules ---------------------------------------------- */
typedef enum {
    CNNVIZ_DECAY_NONE,
    CNNVIZ_DECAY_INVERSE_TIME, /* lr0 / (1 + rate * p), p = step / decay_steps */
    CNNVIZ_DECAY_EXPONENTIAL,  /* lr0 * rate^p */
} cnnviz_decay_kind;

typedef struct {
    cnnviz_decay_kind kind;
    double initial;     /* learning rate at step 0 */
    double rate;        /* decay_rate */
    double decay_steps; /* > 0 */
    int staircase;     /* p = floor(step / decay_steps) */
} cnnviz_schedule;

/* The learning rate for the update after `step` updates (0 for the first):
 * Keras calls the schedule with optimizer.iterations before incrementing. */
float cnnviz_schedule_lr(const cnnviz_schedule *s, long step);

/* --- optimizers ------------------------------------------------------------ */
typedef enum { CNNVIZ_OPT_SGD, CNNVIZ_OPT_RMSPROP, CNNVIZ_OPT_ADAM } cnnviz_optimizer_kind;

typedef struct {
    cnnviz_optimizer_kind kind;
    cnnviz_schedule lr;
    /* Hyperparameters are doubles, like the Python floats Keras keeps; they
     * are rounded to float32 where Keras casts them to the variable's dtype. */
    double rho;      /* RMSprop */
    double momentum; /* RMSprop, SGD */
    int nesterov;    /* SGD */
    int centered;    /* RMSprop */
    double beta_1, beta_2; /* Adam */
    double epsilon;  /* RMSprop, Adam */
} cnnviz_optimizer_config;

/* Keras' defaults for the kind: SGD lr 0.01 momentum 0; RMSprop lr 0.001
 * rho 0.9 momentum 0 epsilon 1e-7; Adam lr 0.001 beta_1 0.9 beta_2 0.999
 * epsilon 1e-7; no decay. */
cnnviz_optimizer_config cnnviz_optimizer_config_init(cnnviz_optimizer_kind kind);
const char *cnnviz_optimizer_name(cnnviz_optimizer_kind kind); /* "sgd", "rmsprop", "adam" */
/* Keras-like get_config() as JSON ({"name": "rmsprop", "learning_rate": ...,
 * "rho": ...}); malloc'd, NULL when out of memory. */
char *cnnviz_optimizer_config_json(const cnnviz_optimizer_config *c);

typedef struct cnnviz_optimizer cnnviz_optimizer;

/* State (moments) for every trainable weight of m, in one slab laid out like
 * the parameters, zero to start. m needs its grads (cnnviz_model_alloc_grads). */
cnnviz_optimizer *cnnviz_optimizer_new(cnnviz_model *m, const cnnviz_optimizer_config *c, cnnviz_error *err);
/* One update of every trainable weight from the model's grads (which should
 * already hold the regularizers' gradient), then iterations += 1. */
void cnnviz_optimizer_step(cnnviz_optimizer *o);
long cnnviz_optimizer_iterations(const cnnviz_optimizer *o);
/* the learning rate the next step will use */
float cnnviz_optimizer_lr(const cnnviz_optimizer *o);
void cnnviz_optimizer_free(cnnviz_optimizer *o);

/* --- the training loop ----------------------------------------------------- */
/* A labelled set of uint8 images (count, sample size), e.g. an IDX pair. */
typedef struct {
    const uint8_t *pixels;
    const uint8_t *labels;
    int count;
} cnnviz_labelled_set;

typedef struct {
    int epoch; /* 1-based */
    double loss, accuracy;         /* running means over the epoch, as Keras reports them */
    double val_loss, val_accuracy; /* when validation data is given */
    double seconds;                /* training and validation wall time */
    long steps;                    /* optimizer iterations after this epoch */
    float lr;                      /* learning rate of the next step */
} cnnviz_epoch_stats;

typedef struct {
    int epochs, batch;
    uint64_t seed;               /* shuffling and Dropout */
    cnnviz_optimizer_config opt;
    cnnviz_input_scale scale;    /* how pixels become inputs */
    int shuffle;                 /* 0 = batches in order (the reference test) */
    /* 0 (the default): subnormal floats are flushed to zero while training,
     * as results and as operands, which is how TensorFlow runs Keras' ops;
     * 1: IEEE arithmetic with subnormals, as cnnviz trained before it
     * flushed them (the bits of its older model files) */
    int keep_subnormals;
    /* Called after every batch (progress) and after every epoch; may be NULL.
     * A nonzero return from on_epoch stops training after that epoch. */
    void (*on_batch)(void *ctx, int epoch, int batch, int nbatches, double loss, double accuracy);
    int (*on_epoch)(void *ctx, const cnnviz_epoch_stats *s);
    void *ctx;
} cnnviz_train_config;

/* Batch 64, 5 epochs, RMSprop defaults, seed 1, unit input scale, shuffling. */
cnnviz_train_config cnnviz_train_config_init(void);

typedef struct {
    int epochs_done;             /* complete epochs whose weights the model holds */
    cnnviz_epoch_stats *history; /* epochs_done entries, malloc'd: cnnviz_train_result_free */
    int has_val;
    long steps;
    int nan_epoch, nan_batch;    /* where a non-finite loss stopped training (1-based), else 0 */
} cnnviz_train_result;

/* Train m (finalized, weights initialised) on train, evaluating on val
 * (may be NULL) after each epoch. Shuffles each epoch from the seeded
 * generator; the last partial batch is kept. The hot loop allocates nothing.
 *
 * A non-finite loss stops training: the model gets back the weights of the
 * last complete epoch (or its starting weights) and CNNVIZ_ERR_NUMERIC says
 * where; res->epochs_done tells whether there is anything worth saving.
 *
 * Unless cfg->keep_subnormals, the calling thread and its OpenMP team run
 * with subnormals flushed to zero until it returns; then they have their
 * mode back. cnnviz_set_threads() must not change while it runs. */
cnnviz_status cnnviz_train(cnnviz_model *m, const cnnviz_train_config *cfg, const cnnviz_labelled_set *train,
                           const cnnviz_labelled_set *val, cnnviz_train_result *res, cnnviz_error *err);
void cnnviz_train_result_free(cnnviz_train_result *res);

/* Mean clipped cross-entropy (without regularizers) and accuracy of m on a
 * labelled set, `batch` at a time (0 = 256). */
cnnviz_status cnnviz_evaluate_set(const cnnviz_model *m, const cnnviz_labelled_set *set, cnnviz_input_scale scale,
                                  int batch, double *loss, double *accuracy, cnnviz_error *err);

/* Record how the model was trained in its metadata: cnnviz_history (Keras'
 * History.history as JSON), cnnviz_optimizer, cnnviz_seed, cnnviz_arch (the spec or
 * a description), and the input scale. */
cnnviz_status cnnviz_train_record_meta(cnnviz_model *m, const cnnviz_train_config *cfg,
                                       const cnnviz_train_result *res, const char *arch, cnnviz_error *err);
/* Keras' History.history as JSON: {"loss": [..], "accuracy": [..],
 * "val_loss": [..], "val_accuracy": [..]}; malloc'd. */
char *cnnviz_history_json(const cnnviz_train_result *res);

#ifdef __cplusplus
}
#endif
