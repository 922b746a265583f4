/* cnnviz — the network: building, loading, inspecting and running it.
 *
 * A model is a chain of Keras layers (Sequential, or a Functional model that
 * is a simple chain). Layer indices are those of Keras' model.layers: the
 * InputLayer is not a layer. Parameters live in one slab (model->params) with
 * each layer's kernel/bias/... pointing into it, so loading a Keras file is
 * a copy into a slice and an optimizer step is one loop over the slab. */
#pragma once
#include <stddef.h>

#include "cnnviz/error.h"
#include "cnnviz/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnnviz_model cnnviz_model;
typedef struct cnnviz_workspace cnnviz_workspace;

typedef enum {
    CNNVIZ_LAYER_CONV2D,
    CNNVIZ_LAYER_DENSE,
    CNNVIZ_LAYER_MAXPOOL2D,
    CNNVIZ_LAYER_AVGPOOL2D,
    CNNVIZ_LAYER_FLATTEN,
    CNNVIZ_LAYER_RESHAPE,
    CNNVIZ_LAYER_DROPOUT,
    CNNVIZ_LAYER_BATCHNORM,
    CNNVIZ_LAYER_ACTIVATION, /* Activation, ReLU, LeakyReLU, Softmax, ELU layers */
    CNNVIZ_LAYER_RESCALING,  /* x*scale + offset */
    CNNVIZ_LAYER_IDENTITY,   /* layers that do nothing at inference: RandomRotation, GaussianNoise, ... */
    CNNVIZ_LAYER_TYPE_COUNT
} cnnviz_layer_type;

typedef enum {
    CNNVIZ_ACT_LINEAR,
    CNNVIZ_ACT_RELU,
    CNNVIZ_ACT_SOFTMAX,
    CNNVIZ_ACT_SIGMOID,
    CNNVIZ_ACT_TANH,
    CNNVIZ_ACT_ELU,
    CNNVIZ_ACT_LEAKY_RELU,
} cnnviz_activation;

typedef enum { CNNVIZ_PAD_VALID, CNNVIZ_PAD_SAME } cnnviz_padding;

/* How a model's input pixels are scaled from 0..255 (DESIGN.md --input-scale). */
typedef enum {
    CNNVIZ_SCALE_UNIT,    /* x/255 (default) */
    CNNVIZ_SCALE_RAW,     /* x */
    CNNVIZ_SCALE_CENTER,  /* x/255 - 0.5 */
    CNNVIZ_SCALE_MEANSTD, /* (x/255 - mean)/std */
} cnnviz_scale_kind;

typedef struct {
    cnnviz_scale_kind kind;
    float mean, std;
} cnnviz_input_scale;

/* Everything needed to add one layer: readers fill it from Keras JSON, the
 * spec parser from "C32k3-P2-...". Fields a type does not use are ignored. */
typedef struct {
    cnnviz_layer_type type;
    const char *name;       /* Keras name; NULL = generated like Keras (conv2d, conv2d_1, ...) */
    const char *class_name; /* Keras class, kept for summary (e.g. "ReLU", "RandomZoom"); NULL = default */
    int filters;            /* Conv2D */
    int units;              /* Dense */
    int kernel[2];          /* Conv2D kernel size (kh, kw) */
    int strides[2];         /* Conv2D / pooling strides; 0 = default (1 for conv, pool size for pooling) */
    int pool[2];            /* pooling window */
    cnnviz_padding padding;
    cnnviz_activation activation; /* Conv2D, Dense, Activation */
    float alpha;                  /* LeakyReLU slope / ELU alpha */
    int no_bias;                  /* use_bias=False */
    float rate;                   /* Dropout */
    float epsilon;                /* BatchNormalization (Keras default 1e-3) */
    int bn_center, bn_scale;      /* BatchNormalization: has beta / gamma (both 1 by default via spec_init) */
    float scale, offset;          /* Rescaling */
    cnnviz_shape target;          /* Reshape */
    float l1, l2;                 /* kernel regularizer */
} cnnviz_layer_spec;

/* A spec with Keras' defaults for the given type. */
cnnviz_layer_spec cnnviz_layer_spec_init(cnnviz_layer_type type);

/* One named weight tensor of a layer, a slice of the model's slab. */
typedef struct {
    const char *name; /* "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance" */
    cnnviz_shape shape;
    size_t size;
    size_t offset; /* into the slab */
    float *data;
    float *grad;   /* NULL until cnnviz_model_alloc_grads */
    int trainable; /* BatchNormalization moving statistics are not */
    float l1, l2;  /* regularizer on this tensor (kernels only) */
} cnnviz_param;

typedef struct {
    int index;
    const char *name;       /* Keras name */
    const char *class_name; /* Keras class */
    cnnviz_layer_type type;
    cnnviz_shape input_shape, output_shape;
    size_t params;   /* number of weights, like model.summary() */
    int nparam;      /* number of weight tensors */
    cnnviz_param *param;
    cnnviz_activation activation; /* for Conv2D/Dense/Activation */
} cnnviz_layer_info;

/* --- building ----------------------------------------------------------- */
cnnviz_model *cnnviz_model_new(const cnnviz_shape *input_shape);
cnnviz_status cnnviz_model_add(cnnviz_model *m, const cnnviz_layer_spec *spec, cnnviz_error *err);
/* Allocate the parameter slab after the last add; weights start at zero
 * (Keras-default initialisation is cnnviz_model_init_weights). */
cnnviz_status cnnviz_model_finalize(cnnviz_model *m, cnnviz_error *err);
/* glorot_uniform kernels, zero biases, BN gamma=1 beta=0 mean=0 var=1 */
void cnnviz_model_init_weights(cnnviz_model *m, cnnviz_rng *rng);
cnnviz_status cnnviz_model_alloc_grads(cnnviz_model *m, cnnviz_error *err);
void cnnviz_model_free(cnnviz_model *m);

/* --- inspecting --------------------------------------------------------- */
int cnnviz_model_num_layers(const cnnviz_model *m);
void cnnviz_model_layer_info(const cnnviz_model *m, int i, cnnviz_layer_info *info);
/* by Keras name or decimal index; -1 when not found */
int cnnviz_model_find_layer(const cnnviz_model *m, const char *name_or_index);
cnnviz_shape cnnviz_model_input_shape(const cnnviz_model *m);
cnnviz_shape cnnviz_model_output_shape(const cnnviz_model *m);
size_t cnnviz_model_num_params(const cnnviz_model *m);
float *cnnviz_model_params(cnnviz_model *m);
float *cnnviz_model_grads(cnnviz_model *m);
/* CNNVIZ_ERR_NUMERIC naming the layer and tensor when any weight is NaN/Inf */
cnnviz_status cnnviz_model_check_finite(const cnnviz_model *m, const char *path, cnnviz_error *err);

/* input scaling recorded in (or assumed for) the model: what it records
 * (cnnviz_input_scale), else raw 0..255 for a model whose first layer
 * rescales its input (cnnviz_model_rescales_input), else unit (x/255) */
cnnviz_input_scale cnnviz_model_input_scale(const cnnviz_model *m);
/* index of the Rescaling layer a model starts with (only layers that are
 * identities at inference before it), or -1 */
int cnnviz_model_rescales_input(const cnnviz_model *m);
int cnnviz_model_has_input_scale(const cnnviz_model *m);
void cnnviz_model_set_input_scale(cnnviz_model *m, cnnviz_input_scale s);
const char *cnnviz_activation_name(cnnviz_activation a);
const char *cnnviz_layer_type_name(cnnviz_layer_type t); /* default Keras class name */

/* --- running ------------------------------------------------------------ */
/* What a workspace's passes do, fixed when it is made: the workspace plans
 * its passes once (which layers run, which outputs it keeps whole, which
 * layers it runs as one) and every forward and backward follows that plan.
 * cnnviz_workspace_options_init fills an inference pass over the whole
 * model that keeps every output and has no backward. */
typedef enum {
    CNNVIZ_KEEP_ALL,  /* every output of layers 0..last can be read after a forward */
    CNNVIZ_KEEP_LAST, /* only layer last's: the others may be cropped, fused or never stored */
} cnnviz_keep;

typedef struct {
    int max_batch;     /* the most samples a pass takes (>= 1) */
    int training;      /* training passes: Dropout drops, Conv2D may take its training paths */
    int last;          /* passes run layers 0..last; -1: all */
    cnnviz_keep keep;  /* which outputs a caller can read (cnnviz_layer_output) */
    int input_grad;    /* backward writes d/d(input) */
    int weight_grads;  /* backward adds d/d(weights) to the model's grads (cnnviz_model_alloc_grads first) */
    /* with input_grad: >= 0, the backward stops above this layer and
     * writes d/d(its output) instead of d/d(input) (Grad-CAM); -1 (what
     * _init sets): d/d(input) */
    int grad_layer;
    /* the last layer (a Conv2D or Dense) makes one map per sample, before
     * its activation (cnnviz_forward_maps); no weight gradients */
    int one_map;
    /* the weights do not change while the workspace lives: what layers
     * derive from them (Winograd's kernels, one_map's gathered weights) is
     * made by the first forward only */
    int fixed_weights;
} cnnviz_workspace_options;
cnnviz_workspace_options cnnviz_workspace_options_init(int max_batch);

/* Buffers and the plan for passes of up to o->max_batch samples. */
cnnviz_workspace *cnnviz_workspace_new(const cnnviz_model *m, const cnnviz_workspace_options *o,
                                       cnnviz_error *err);
void cnnviz_workspace_free(cnnviz_workspace *ws);
int cnnviz_workspace_max_batch(const cnnviz_workspace *ws);
/* the last layer the workspace's passes run */
int cnnviz_workspace_last(const cnnviz_workspace *ws);
/* rng used by Dropout in training passes (not owned) */
void cnnviz_workspace_set_rng(cnnviz_workspace *ws, cnnviz_rng *rng);

/* Run the plan's layers on B samples of input (B, input shape), 1 <= B <=
 * max_batch. Returns layer last's output, or NULL (and err) for a bad B. */
const float *cnnviz_forward(cnnviz_workspace *ws, const float *input, int B, cnnviz_error *err);
/* A one_map plan's forward: sample b's map maps[b] of the last layer at
 * each of its P positions, before the activation: (B, P). maps stays the
 * caller's until the backward; that backward takes dout (B, P). */
const float *cnnviz_forward_maps(cnnviz_workspace *ws, const float *input, const int *maps, int B,
                                 cnnviz_error *err);
/* Output of layer i from the latest forward (B, output shape of i): NULL
 * (and err) when the plan does not keep it (cnnviz_workspace_options.keep)
 * or no forward has run. Nothing is computed here. */
const float *cnnviz_layer_output(const cnnviz_workspace *ws, int i, cnnviz_error *err);

/* Back-propagate dout (B of the latest forward, output shape of layer last)
 * through layers last..0 as the plan says: weight gradients accumulate (+=)
 * into the model's grads (zero them first with cnnviz_model_zero_grads);
 * dinput (B, input shape) receives d/d(input) and must be given exactly
 * when the plan asks for it. Never runs a forward. */
cnnviz_status cnnviz_backward(cnnviz_workspace *ws, const float *dout, float *dinput, cnnviz_error *err);
void cnnviz_model_zero_grads(cnnviz_model *m);

/* Run the whole model on n samples (n, input shape), `batch` at a time
 * (0 = 256), writing the last layer's outputs (n, output size) to out. */
cnnviz_status cnnviz_model_predict(const cnnviz_model *m, const float *x, int n, int batch, float *out,
                                   cnnviz_error *err);

/* Class probabilities for n samples: the model's output when its last
 * layer is a softmax, else the softmax of that output. */
cnnviz_status cnnviz_model_probabilities(const cnnviz_model *m, const float *x, int n, float *probs,
                                         cnnviz_error *err);
/* Whether the last layer (Dense, Conv2D or Activation) ends in a softmax. */
int cnnviz_model_ends_in_softmax(const cnnviz_model *m);
/* probs = softmax(logits) over n values: the max subtracted, the sum in
 * double; probs may be logits. */
void cnnviz_softmax(const float *logits, float *probs, int n);

/* --- files ---------------------------------------------------------------- */
/* How an untrusted model file is read: the budget every declared size is
 * checked against before anything is allocated, and whether the file is
 * parsed in a child process. cnnviz_load_options_init fills the defaults. */
typedef struct {
    size_t max_params;       /* weights in the whole model */
    size_t max_file_bytes;   /* the model file, and each member of a .keras zip */
    size_t max_config_bytes; /* the Keras JSON config */
    int max_layers;
    int max_json_depth;      /* nesting of the Keras JSON config */
    int in_process;          /* 0 (default): parse in a child process (src/io/isolate.c) */
    double timeout_s;        /* the child's wall-clock limit (its CPU limit is 1 s more); <= 0: none */
    size_t max_memory_bytes; /* address space the child may add to what it inherits; 0: no limit */
} cnnviz_load_options;
void cnnviz_load_options_init(cnnviz_load_options *o);

/* Keras legacy .h5 (Keras 2.x, tf.keras 2.x, Keras 3) or Keras 3 .keras zip,
 * chosen by the file's magic bytes. opt NULL: the defaults.
 * cnnviz_model_load (what the CLI uses) = cnnviz_model_load_opts(path, NULL):
 * parsed in a child process (src/io/isolate.c) that holds no other file,
 * runs under rlimits and a seccomp filter, and hands back the config text and
 * the weights, which the caller's process checks and rebuilds under the same
 * budget; a signal or timeout in the child is an error (CNNVIZ_ERR_FORMAT),
 * never a crash or a hang of the caller. The fork duplicates only the calling
 * thread; the child uses no OpenMP. cnnviz_model_load_in_process parses the
 * file in the calling process (src/io/keras_h5.c); so does
 * cnnviz_model_load_opts with opt->in_process (the CLI's
 * CNNVIZ_LOAD_IN_PROCESS=1). */
cnnviz_status cnnviz_model_load_opts(const char *path, const cnnviz_load_options *opt, cnnviz_model **out,
                                     cnnviz_error *err);
cnnviz_status cnnviz_model_load(const char *path, cnnviz_model **out, cnnviz_error *err);
cnnviz_status cnnviz_model_load_in_process(const char *path, cnnviz_model **out, cnnviz_error *err);
/* A model file already in memory (name is used in errors), parsed in the
 * calling process with opt's budget. */
cnnviz_status cnnviz_model_load_memory(const void *buf, size_t len, const char *name,
                                       const cnnviz_load_options *opt, cnnviz_model **out, cnnviz_error *err);
/* tf.keras 2.x legacy .h5, written to a temporary name and renamed. */
cnnviz_status cnnviz_model_save(const cnnviz_model *m, const char *path, cnnviz_error *err);
/* A model from the JSON Keras' model.to_json() prints (tf.keras 2.x or
 * Keras 3: {"class_name": "Sequential", "config": {...}, ...}), finalized
 * with zero weights: call cnnviz_model_init_weights before training.
 * path_for_errors names the source in err (may be NULL). */
cnnviz_status cnnviz_model_from_keras_json(const char *json_text, const char *path_for_errors,
                                           cnnviz_model **out, cnnviz_error *err);
/* The same under opt's budget (NULL: the defaults, as above). */
cnnviz_status cnnviz_model_from_keras_json_opts(const char *json_text, const char *path_for_errors,
                                                const cnnviz_load_options *opt, cnnviz_model **out,
                                                cnnviz_error *err);


/* --- metadata ----------------------------------------------------------- */
/* String attributes carried with the model and saved as extra root attributes
 * of the .h5 (Keras ignores them): "keras_version" of the file read,
 * "cnnviz_input_scale", "cnnviz_history" (JSON like Keras' History.history:
 * {"loss":[..],"accuracy":[..],"val_loss":[..],"val_accuracy":[..]}),
 * "cnnviz_optimizer" (JSON), "cnnviz_seed", "cnnviz_arch". */
const char *cnnviz_model_meta(const cnnviz_model *m, const char *key); /* NULL if absent */
cnnviz_status cnnviz_model_set_meta(cnnviz_model *m, const char *key, const char *value,
                                    cnnviz_error *err);
int cnnviz_model_meta_count(const cnnviz_model *m);
const char *cnnviz_model_meta_key(const cnnviz_model *m, int i);

#ifdef __cplusplus
}
#endif
