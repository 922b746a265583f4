/* Internal: the layer interface and the model/workspace structs. Never installed.
 *
 * A layer is a small struct of its own whose first member is cnnviz_layer,
 * plus a table of functions (cnnviz_layer_ops). Layer math lives in plain
 * functions over raw float arrays (src/layers/); the ops adapt them. */
#pragma once
#include "cnnviz/model.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Call first thing inside the engine's own parallel regions. Nested regions
 * (cnnviz_gemm_parallel's) then run on the calling thread alone: a team of
 * one is not an active region, so without this a one-chunk region (a single
 * image) would let the product inside it start a team of its own, which
 * costs a hundred times a small product. The setting is this implicit
 * task's own and ends with the region. */
static inline void cnnviz_omp_serial_inside(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* Subnormal floats flushed to zero, as results and as operands, on the
 * calling thread and on the OpenMP team of cnnviz_get_threads() threads,
 * until cnnviz_flush_subnormals_end() gets back what _begin() returned.
 * TensorFlow runs its ops in this mode, so Keras trains in it; cnnviz's
 * training does too (cnnviz_train_config.keep_subnormals). Where there is
 * no such mode (neither x86 nor ARM64) both do nothing. */
unsigned cnnviz_flush_subnormals_begin(void);
void cnnviz_flush_subnormals_end(unsigned saved);

#define CNNVIZ_MAX_PARAMS 4

typedef struct cnnviz_layer cnnviz_layer;

/* What one forward/backward call of one layer may use. */
typedef struct {
    float *aux;      /* this layer's own buffer, kept from forward to backward (aux_floats) */
    float *scratch;  /* shared transient buffer (scratch_floats), not kept */
    /* what prepare() made of the weights before this pass (prep_floats;
     * NULL for layers without) */
    const float *prep;
    /* a training pass: Dropout active, Conv2D may take its training-only
     * Winograd path; a backward has the value of the forward before it */
    int training;
    int weight_grads;/* backward: accumulate weight gradients into param[].grad */
    cnnviz_rng *rng; /* Dropout masks */
    /* backward: accumulate weight gradients into this slab (same layout as
     * the model's params) instead of param[].grad; NULL: param[].grad.
     * Use cnnviz_param_grad(). */
    float *grads;
    /* backward of a MaxPooling2D whose input is the output of a Conv2D's
     * ReLU: only maxima above zero take the gradient, which is the ReLU's
     * backward done here, and the Conv2D below is told so (dout_masked) */
    int relu_input;
    /* backward: dout is already zero wherever this layer's ReLU output is
     * zero, so the ReLU's backward would change nothing and is skipped */
    int dout_masked;
    /* forward: the rows and columns of the output this pass reads (0: all;
     * a training pass's valid max pooling may not read the last ones). A
     * layer may leave the others zero: Conv2D on its F(2x2) path does */
    int rows_read, cols_read;
} cnnviz_pass;

/* Whether the backward of layer i (a max pooling) can do the ReLU backward
 * of layer i-1 (a Conv2D with ReLU) for it; see cnnviz_pass. The plan
 * decides it once (src/plan.c). */
int cnnviz_fused_relu_pool(const cnnviz_model *m, int i);

/* where backward accumulates param q's gradient in this pass (NULL: nowhere) */
static inline float *cnnviz_param_grad(const cnnviz_param *q, const cnnviz_pass *p) {
    if (p->grads) return p->grads + q->offset;
    return q->grad;
}

typedef struct {
    /* out (B, out_shape) from in (B, in_shape) */
    void (*forward)(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p);
    /* din (B, in_shape) = d/d(in) given dout; din is overwritten, not accumulated.
     * in/out are this layer's input and output from the latest forward.
     * With p->weight_grads, param[k].grad += d/d(param). NULL: not trainable.
     * din is NULL for the first layer when no input gradient is wanted
     * (only layers with weights are called then). */
    void (*backward)(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                     float *din, int B, cnnviz_pass *p);
    /* floats of aux this layer needs for batch B (training selects backward state); may be NULL */
    size_t (*aux_floats)(const cnnviz_layer *l, int B, int training);
    /* floats of transient scratch for batch B; may be NULL */
    size_t (*scratch_floats)(const cnnviz_layer *l, int B);
    /* floats of a buffer of what a layer derives from its weights once per
     * pass (Winograd's transformed kernels), and the call that fills it
     * before a forward; the backward after it uses the same. May be NULL. */
    size_t (*prep_floats)(const cnnviz_layer *l);
    void (*prepare)(const cnnviz_layer *l, float *prep, int training);
} cnnviz_layer_ops;

struct cnnviz_layer {
    const cnnviz_layer_ops *ops;
    cnnviz_layer_type type;
    char name[128];
    char class_name[64];
    cnnviz_shape in_shape, out_shape;
    int nparam;
    cnnviz_param param[CNNVIZ_MAX_PARAMS];
    cnnviz_activation activation; /* reported in summary; layers that own one use it */
    /* the spec the layer was built from (name/class_name point at the fields
     * above), so a writer can emit the layer's Keras config (src/io/keras_save.c) */
    cnnviz_layer_spec spec;
};

/* Per-type constructors (src/layers/): check the spec against the input
 * shape, allocate the layer's struct, set out_shape and declare params
 * (name, shape, size, trainable, l1/l2; data pointers come at finalize). */
typedef cnnviz_layer *(*cnnviz_layer_create_fn)(const cnnviz_layer_spec *spec,
                                                const cnnviz_shape *in, cnnviz_error *err);
cnnviz_layer *cnnviz_conv2d_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_dense_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_pool2d_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_flatten_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_reshape_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_dropout_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_batchnorm_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_activation_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_rescaling_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);
cnnviz_layer *cnnviz_identity_create(const cnnviz_layer_spec *, const cnnviz_shape *, cnnviz_error *);

/* Activation functions in place over n = B*C values, channels last (softmax
 * normalises each run of `channels`). Shared by Conv2D, Dense and Activation. */
void cnnviz_activation_forward(cnnviz_activation a, float alpha, float *x, size_t n, int channels);
/* dx = dy * f'(.) given the activation's OUTPUT y (all of ours can be
 * differentiated from their output); dx may alias dy. */
void cnnviz_activation_backward(cnnviz_activation a, float alpha, const float *y, const float *dy,
                                float *dx, size_t n, int channels);

typedef struct {
    char *key, *value;
} cnnviz_meta_entry;

struct cnnviz_model {
    cnnviz_shape input_shape;
    int nlayers, cap;
    cnnviz_layer **layers;
    float *params; /* the slab */
    float *grads;  /* same layout as params, or NULL */
    size_t num_params;
    int finalized;
    int has_scale;
    cnnviz_input_scale scale;
    int nmeta;
    cnnviz_meta_entry *meta;
};

/* --- the execution plan (src/plan.c) ------------------------------------- */

typedef enum {
    CNNVIZ_STEP_LAYER,          /* one layer through its ops */
    /* a Conv2D with ReLU and the max pooling after it: the pooling does the
     * ReLU's backward (relu_input, dout_masked) and, where nobody reads the
     * conv's output whole, the conv makes only what the pooling reads */
    CNNVIZ_STEP_CONV_RELU_POOL,
    /* the first Conv2D and its pooling as one pass in depth-first training
     * passes (cnnviz_conv_pool_forward/backward: the conv's output is never
     * stored); as CONV_RELU_POOL in passes that go layer by layer */
    CNNVIZ_STEP_CONV_POOL,
    /* the last layer's one map per sample (cnnviz_workspace_options.one_map) */
    CNNVIZ_STEP_ONE_MAP,
} cnnviz_step_kind;

typedef struct {
    cnnviz_step_kind kind;
    int first, count; /* layers first .. first + count - 1 */
} cnnviz_step;

/* What the plan tells layer i's forward and backward (cnnviz_pass). */
typedef struct {
    int rows_read, cols_read; /* forward: the part of the output the plan reads (0: all) */
    int relu_input;           /* backward: a max pooling that does the ReLU's backward below it */
    int dout_masked;          /* backward: the pooling above did this layer's ReLU backward */
} cnnviz_layer_hints;

typedef struct {
    cnnviz_workspace_options opt; /* as asked, with last made a layer index */
    int nsteps;
    cnnviz_step *steps;
    cnnviz_layer_hints *hints; /* for layers 0..last */
    /* batches of more than CNNVIZ_DEPTH_BATCH go depth-first (plan.c) */
    int depth_forward, depth_backward;
} cnnviz_plan;

/* The plan's step count and step s. */
int cnnviz_workspace_num_steps(const cnnviz_workspace *ws);
const cnnviz_step *cnnviz_workspace_step(const cnnviz_workspace *ws, int s);
/* Time each step from now on: seconds[2*s] += forward, seconds[2*s + 1] +=
 * backward wall time of step s (in depth-first passes, the threads' time
 * on it over the thread count). NULL stops timing. seconds has 2 * steps. */
void cnnviz_workspace_time_steps(cnnviz_workspace *ws, double *seconds);
/* Backward from layer `from` (the last layer of a step, at most the plan's
 * last) with dout the gradient of its output: what the loss does after the
 * output layer's own backward (src/train/loss.c). */
cnnviz_status cnnviz_backward_from(cnnviz_workspace *ws, int from, const float *dout, float *dinput,
                                   cnnviz_error *err);

struct cnnviz_workspace {
    const cnnviz_model *model;
    cnnviz_plan plan;
    int max_batch;
    float **out;   /* out[i]: layer i's output, max_batch * size */
    float **aux;   /* aux[i]: layer i's state, may be NULL */
    float **prep;  /* prep[i]: layer i's prepare() buffer, may be NULL */
    float *scratch;
    float *grad_a, *grad_b; /* ping-pong buffers for backward, max activation size */
    const float *input;     /* the input of the latest forward */
    int pass_batch;         /* the latest forward's batch; 0: none yet */
    /* CNNVIZ_STEP_CONV_POOL's window positions, codes_size ints a sample */
    int *codes;
    size_t codes_size;
    cnnviz_rng *rng;
    /* depth-first passes (plan.c): per thread a scratch and two buffers
     * for one micro-batch's gradients (or, in predict, activations); per
     * micro-batch a weight-gradient slab */
    float *depth_scratch, *depth_grad, *depth_slabs;
    size_t depth_scratch_floats, depth_grad_floats;
    int depth_threads; /* 0: the model is too big to run depth-first */
    /* cnnviz_workspace_time_steps: the caller's array, and per thread
     * 2 * nsteps seconds of a depth-first pass */
    double *step_seconds, *thread_seconds;
    /* CNNVIZ_STEP_ONE_MAP: the layer's geometry, its maps' weights
     * gathered, and the latest forward's maps */
    struct cnnviz_one_map *head;
    float *kmap;
    const int *maps;
    int prepared; /* fixed_weights: the first forward has prepared */
};
