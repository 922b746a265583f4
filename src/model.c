/* The model: a chain of layers over one parameter slab, and the driver that
 * runs forward and backward through a workspace. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "model-impl.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const struct {
    const char *class_name; /* Keras' default class for the type */
    const char *base_name;  /* Keras' default layer name stem */
    cnnviz_layer_create_fn create;
} layer_types[CNNVIZ_LAYER_TYPE_COUNT] = {
    [CNNVIZ_LAYER_CONV2D] = {"Conv2D", "conv2d", cnnviz_conv2d_create},
    [CNNVIZ_LAYER_DENSE] = {"Dense", "dense", cnnviz_dense_create},
    [CNNVIZ_LAYER_MAXPOOL2D] = {"MaxPooling2D", "max_pooling2d", cnnviz_pool2d_create},
    [CNNVIZ_LAYER_AVGPOOL2D] = {"AveragePooling2D", "average_pooling2d", cnnviz_pool2d_create},
    [CNNVIZ_LAYER_FLATTEN] = {"Flatten", "flatten", cnnviz_flatten_create},
    [CNNVIZ_LAYER_RESHAPE] = {"Reshape", "reshape", cnnviz_reshape_create},
    [CNNVIZ_LAYER_DROPOUT] = {"Dropout", "dropout", cnnviz_dropout_create},
    [CNNVIZ_LAYER_BATCHNORM] = {"BatchNormalization", "batch_normalization", cnnviz_batchnorm_create},
    [CNNVIZ_LAYER_ACTIVATION] = {"Activation", "activation", cnnviz_activation_create},
    [CNNVIZ_LAYER_RESCALING] = {"Rescaling", "rescaling", cnnviz_rescaling_create},
    [CNNVIZ_LAYER_IDENTITY] = {"Identity", "identity", cnnviz_identity_create},
};

const char *cnnviz_layer_type_name(cnnviz_layer_type t) {
    return (unsigned)t < CNNVIZ_LAYER_TYPE_COUNT ? layer_types[t].class_name : "?";
}

const char *cnnviz_activation_name(cnnviz_activation a) {
    switch (a) {
    case CNNVIZ_ACT_LINEAR: return "linear";
    case CNNVIZ_ACT_RELU: return "relu";
    case CNNVIZ_ACT_SOFTMAX: return "softmax";
    case CNNVIZ_ACT_SIGMOID: return "sigmoid";
    case CNNVIZ_ACT_TANH: return "tanh";
    case CNNVIZ_ACT_ELU: return "elu";
    case CNNVIZ_ACT_LEAKY_RELU: return "leaky_relu";
    }
    return "?";
}

cnnviz_layer_spec cnnviz_layer_spec_init(cnnviz_layer_type type) {
    cnnviz_layer_spec s;
    memset(&s, 0, sizeof s);
    s.type = type;
    s.kernel[0] = s.kernel[1] = 3;
    s.pool[0] = s.pool[1] = 2;
    s.padding = CNNVIZ_PAD_VALID;
    s.activation = CNNVIZ_ACT_LINEAR;
    s.alpha = type == CNNVIZ_LAYER_ACTIVATION ? 0.3f : 1.0f;
    s.epsilon = 1e-3f;
    s.bn_center = s.bn_scale = 1;
    s.scale = 1.0f;
    return s;
}

cnnviz_model *cnnviz_model_new(const cnnviz_shape *input_shape) {
    cnnviz_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->input_shape = *input_shape;
    m->scale.kind = CNNVIZ_SCALE_UNIT;
    m->scale.std = 1.0f;
    return m;
}

/* The layer names as a hash set (open addressing, slot = layer index + 1,
 * at most half full) and, per layer type, the smallest suffix that may
 * still be free. Names are only ever added, so the smallest free suffix of
 * a stem only grows: naming n layers costs O(n), not the O(n^3) of trying
 * each suffix against every name (3,000 layers took 16 s). */
struct cnnviz_name_index {
    int *slot;
    size_t cap; /* a power of two */
    int next[CNNVIZ_LAYER_TYPE_COUNT];
};

static size_t name_hash(const char *s) { /* FNV-1a */
    size_t h = 14695981039346656037u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int name_taken(const cnnviz_model *m, const char *name) {
    const struct cnnviz_name_index *ix = m->names;
    for (size_t h = name_hash(name) & (ix->cap - 1); ix->slot[h]; h = (h + 1) & (ix->cap - 1))
        if (strcmp(m->layers[ix->slot[h] - 1]->name, name) == 0) return 1;
    return 0;
}

static void name_put(struct cnnviz_name_index *ix, const char *name, int layer) {
    size_t h = name_hash(name) & (ix->cap - 1);
    while (ix->slot[h]) h = (h + 1) & (ix->cap - 1);
    ix->slot[h] = layer + 1;
}

/* Record the name of the model's newest layer; -1 when out of memory. */
static int name_insert(cnnviz_model *m) {
    struct cnnviz_name_index *ix = m->names;
    if ((size_t)m->nlayers * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        int *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        free(ix->slot);
        ix->slot = slot;
        ix->cap = cap;
        for (int i = 0; i + 1 < m->nlayers; i++) name_put(ix, m->layers[i]->name, i);
    }
    name_put(ix, m->layers[m->nlayers - 1]->name, m->nlayers - 1);
    return 0;
}

/* Keras names unnamed layers <stem>, <stem>_1, <stem>_2, ...: the smallest free one */
static void default_name(cnnviz_model *m, cnnviz_layer_type type, char *out, size_t n) {
    for (int *k = &m->names->next[type];; (*k)++) {
        if (*k == 0)
            snprintf(out, n, "%s", layer_types[type].base_name);
        else
            snprintf(out, n, "%s_%d", layer_types[type].base_name, *k);
        if (!m->names->cap || !name_taken(m, out)) return;
    }
}

cnnviz_status cnnviz_model_add(cnnviz_model *m, const cnnviz_layer_spec *spec, cnnviz_error *err) {
    if (m->finalized)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "model is already finalized");
    if ((unsigned)spec->type >= CNNVIZ_LAYER_TYPE_COUNT)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "unknown layer type %d", spec->type);
    const cnnviz_shape *in = m->nlayers ? &m->layers[m->nlayers - 1]->out_shape : &m->input_shape;
    if (!m->names && !(m->names = calloc(1, sizeof *m->names)))
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_layer *l = layer_types[spec->type].create(spec, in, err);
    if (!l) return err ? err->code : CNNVIZ_ERR_INVALID;
    l->type = spec->type;
    l->in_shape = *in;
    if (spec->name)
        snprintf(l->name, sizeof l->name, "%s", spec->name);
    else
        default_name(m, spec->type, l->name, sizeof l->name);
    snprintf(l->class_name, sizeof l->class_name, "%s",
             spec->class_name ? spec->class_name : layer_types[spec->type].class_name);
    l->spec = *spec;
    l->spec.name = l->name;
    l->spec.class_name = l->class_name;
    if (cnnviz_shape_size(&l->out_shape) == 0) {
        char buf[64];
        cnnviz_shape_format(in, buf, sizeof buf);
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer '%s' (%s) has an empty output for input %s",
                         l->name, l->class_name, buf);
        free(l);
        return CNNVIZ_ERR_INVALID;
    }
    if (m->nlayers == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        cnnviz_layer **p = realloc(m->layers, (size_t)cap * sizeof *p);
        if (!p) {
            free(l);
            return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
        }
        m->layers = p;
        m->cap = cap;
    }
    m->layers[m->nlayers++] = l;
    if (name_insert(m)) {
        free(m->layers[--m->nlayers]);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    }
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_model_finalize(cnnviz_model *m, cnnviz_error *err) {
    if (m->finalized) return CNNVIZ_OK;
    if (m->nlayers == 0) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "model has no layers");
    size_t total = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++) {
            cnnviz_param *p = &m->layers[i]->param[k];
            p->size = cnnviz_shape_size(&p->shape);
            p->offset = total;
            total += p->size;
        }
    m->params = calloc(total ? total : 1, sizeof(float));
    if (!m->params) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for %zu weights", total);
    m->num_params = total;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++)
            m->layers[i]->param[k].data = m->params + m->layers[i]->param[k].offset;
    m->finalized = 1;
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_model_alloc_grads(cnnviz_model *m, cnnviz_error *err) {
    if (m->grads) return CNNVIZ_OK;
    m->grads = calloc(m->num_params ? m->num_params : 1, sizeof(float));
    if (!m->grads) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for gradients");
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++)
            m->layers[i]->param[k].grad = m->grads + m->layers[i]->param[k].offset;
    return CNNVIZ_OK;
}

void cnnviz_model_zero_grads(cnnviz_model *m) {
    if (m->grads) memset(m->grads, 0, m->num_params * sizeof(float));
}

/* Keras' defaults: glorot_uniform kernels (limit sqrt(6/(fan_in+fan_out)),
 * fans from the receptive field), zeros for biases and beta, ones for gamma
 * and moving_variance. */
void cnnviz_model_init_weights(cnnviz_model *m, cnnviz_rng *rng) {
    for (int i = 0; i < m->nlayers; i++) {
        cnnviz_layer *l = m->layers[i];
        for (int k = 0; k < l->nparam; k++) {
            cnnviz_param *p = &l->param[k];
            if (strcmp(p->name, "kernel") == 0) {
                size_t receptive = 1;
                for (int d = 0; d + 2 < p->shape.rank; d++) receptive *= (size_t)p->shape.dim[d];
                double fan_in = (double)receptive * p->shape.dim[p->shape.rank - 2];
                double fan_out = (double)receptive * p->shape.dim[p->shape.rank - 1];
                float limit = (float)sqrt(6.0 / (fan_in + fan_out));
                for (size_t j = 0; j < p->size; j++) p->data[j] = (2.0f * cnnviz_rng_uniform(rng) - 1.0f) * limit;
            } else {
                float v = (strcmp(p->name, "gamma") == 0 || strcmp(p->name, "moving_variance") == 0) ? 1.0f : 0.0f;
                for (size_t j = 0; j < p->size; j++) p->data[j] = v;
            }
        }
    }
}

void cnnviz_model_free(cnnviz_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nlayers; i++) free(m->layers[i]);
    free(m->layers);
    free(m->params);
    free(m->grads);
    for (int i = 0; i < m->nmeta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->meta);
    if (m->names) free(m->names->slot);
    free(m->names);
    free(m);
}

int cnnviz_model_num_layers(const cnnviz_model *m) { return m->nlayers; }

void cnnviz_model_layer_info(const cnnviz_model *m, int i, cnnviz_layer_info *info) {
    const cnnviz_layer *l = m->layers[i];
    memset(info, 0, sizeof *info);
    info->index = i;
    info->name = l->name;
    info->class_name = l->class_name;
    info->type = l->type;
    info->input_shape = l->in_shape;
    info->output_shape = l->out_shape;
    info->nparam = l->nparam;
    info->param = (cnnviz_param *)l->param;
    info->activation = l->activation;
    for (int k = 0; k < l->nparam; k++) info->params += cnnviz_shape_size(&l->param[k].shape);
}

int cnnviz_model_find_layer(const cnnviz_model *m, const char *s) {
    if (!s || !*s) return -1;
    for (int i = 0; i < m->nlayers; i++)
        if (strcmp(m->layers[i]->name, s) == 0) return i;
    const char *p = s;
    if (*p == '-') p++;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p)) return -1;
    long v = strtol(s, NULL, 10);
    if (v < 0) v += m->nlayers; /* Python-style: -1 is the last layer */
    return v >= 0 && v < m->nlayers ? (int)v : -1;
}

cnnviz_shape cnnviz_model_input_shape(const cnnviz_model *m) { return m->input_shape; }
cnnviz_shape cnnviz_model_output_shape(const cnnviz_model *m) {
    return m->nlayers ? m->layers[m->nlayers - 1]->out_shape : m->input_shape;
}
size_t cnnviz_model_num_params(const cnnviz_model *m) { return m->num_params; }
float *cnnviz_model_params(cnnviz_model *m) { return m->params; }
float *cnnviz_model_grads(cnnviz_model *m) { return m->grads; }

cnnviz_status cnnviz_model_check_finite(const cnnviz_model *m, const char *path, cnnviz_error *err) {
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparam; k++) {
            const cnnviz_param *p = &m->layers[i]->param[k];
            for (size_t j = 0; j < p->size; j++)
                if (!isfinite(p->data[j]))
                    return cnnviz_error_set(err, CNNVIZ_ERR_NUMERIC, path,
                                            "layer '%s' %s has a non-finite weight (%g at index %zu)",
                                            m->layers[i]->name, p->name, (double)p->data[j], j);
        }
    return CNNVIZ_OK;
}

/* The first layer that is not an identity at inference, when it is a
 * Rescaling: such a model takes raw 0..255 pixels (Keras' preprocessing
 * guide puts Rescaling(1/255) first for that reason). */
int cnnviz_model_rescales_input(const cnnviz_model *m) {
    for (int i = 0; i < m->nlayers; i++) {
        cnnviz_layer_type t = m->layers[i]->type;
        if (t == CNNVIZ_LAYER_RESCALING) return i;
        if (t != CNNVIZ_LAYER_IDENTITY && t != CNNVIZ_LAYER_DROPOUT) return -1;
    }
    return -1;
}

cnnviz_input_scale cnnviz_model_input_scale(const cnnviz_model *m) {
    if (!m->has_scale && cnnviz_model_rescales_input(m) >= 0)
        return (cnnviz_input_scale){CNNVIZ_SCALE_RAW, 0.0f, 1.0f};
    return m->scale;
}
int cnnviz_model_has_input_scale(const cnnviz_model *m) { return m->has_scale; }
void cnnviz_model_set_input_scale(cnnviz_model *m, cnnviz_input_scale s) {
    m->scale = s;
    m->has_scale = 1;
}

const char *cnnviz_model_meta(const cnnviz_model *m, const char *key) {
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta[i].key, key) == 0) return m->meta[i].value;
    return NULL;
}

cnnviz_status cnnviz_model_set_meta(cnnviz_model *m, const char *key, const char *value, cnnviz_error *err) {
    char *v = strdup(value);
    if (!v) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta[i].key, key) == 0) {
            free(m->meta[i].value);
            m->meta[i].value = v;
            return CNNVIZ_OK;
        }
    cnnviz_meta_entry *e = realloc(m->meta, (size_t)(m->nmeta + 1) * sizeof *e);
    char *k = strdup(key);
    if (!e || !k) {
        free(v);
        free(k);
        if (e) m->meta = e;
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    }
    m->meta = e;
    m->meta[m->nmeta].key = k;
    m->meta[m->nmeta].value = v;
    m->nmeta++;
    return CNNVIZ_OK;
}

int cnnviz_model_meta_count(const cnnviz_model *m) { return m->nmeta; }
const char *cnnviz_model_meta_key(const cnnviz_model *m, int i) { return m->meta[i].key; }

/* --- workspace and the forward/backward driver --------------------------- */

/* depth-first forward (forward_depth_first): samples per micro-batch, and
 * the largest model it is used for (its weights are read per micro-batch) */
#define DEPTH_BATCH 8
#define DEPTH_MAX_PARAMS ((size_t)1 << 19)
#define DEPTH_GROUPS 8

/* Micro-batches go in groups, j = s, s + S, s + 2S, ... for s < S, a group
 * to a thread in forward and backward alike (its activations stay in that
 * core's cache), and a group's weight gradients go into one slab, in j
 * order; the slabs are added in group order. S is DEPTH_GROUPS (or the
 * number of micro-batches, when fewer), not the thread count, so the sums
 * are the same bits for any thread count on any machine: a batch of 64 has
 * eight micro-batches, a slab each, for up to eight threads. Passes that
 * sum nothing across samples (inference, input gradients alone) take a
 * group a thread. */
static int depth_groups(int nmb) { return DEPTH_GROUPS < nmb ? DEPTH_GROUPS : nmb; }

cnnviz_workspace *cnnviz_workspace_new(const cnnviz_model *m, int max_batch, int training, cnnviz_error *err) {
    cnnviz_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) goto nomem;
    ws->model = m;
    ws->max_batch = max_batch;
    ws->training = training;
    ws->out = calloc((size_t)m->nlayers, sizeof *ws->out);
    ws->aux = calloc((size_t)m->nlayers, sizeof *ws->aux);
    ws->prep = calloc((size_t)m->nlayers, sizeof *ws->prep);
    if (!ws->out || !ws->aux || !ws->prep) goto nomem;
    size_t scratch = 0, biggest = cnnviz_shape_size(&m->input_shape);
    for (int i = 0; i < m->nlayers; i++) {
        const cnnviz_layer *l = m->layers[i];
        size_t n = cnnviz_shape_size(&l->out_shape);
        if (n > biggest) biggest = n;
        ws->out[i] = malloc((size_t)max_batch * n * sizeof(float));
        if (!ws->out[i]) goto nomem;
        size_t a = l->ops->aux_floats ? l->ops->aux_floats(l, max_batch, training) : 0;
        if (a) {
            ws->aux[i] = calloc(a, sizeof(float));
            if (!ws->aux[i]) goto nomem;
        }
        size_t s = l->ops->scratch_floats ? l->ops->scratch_floats(l, max_batch) : 0;
        if (s > scratch) scratch = s;
        size_t pf = l->ops->prep_floats ? l->ops->prep_floats(l) : 0;
        if (pf) {
            ws->prep[i] = malloc(pf * sizeof(float));
            if (!ws->prep[i]) goto nomem;
        }
    }
    if (scratch) {
        ws->scratch = malloc(scratch * sizeof(float));
        if (!ws->scratch) goto nomem;
    }
    ws->grad_a = malloc((size_t)max_batch * biggest * sizeof(float));
    ws->grad_b = malloc((size_t)max_batch * biggest * sizeof(float));
    if (!ws->grad_a || !ws->grad_b) goto nomem;
    if (max_batch > DEPTH_BATCH && m->num_params <= DEPTH_MAX_PARAMS) {
        size_t s = 0;
        for (int i = 0; i < m->nlayers; i++) {
            const cnnviz_layer *l = m->layers[i];
            size_t n = l->ops->scratch_floats ? l->ops->scratch_floats(l, DEPTH_BATCH) : 0;
            if (n > s) s = n;
        }
        int t = cnnviz_procs();
        ws->depth_threads = t < 1 ? 1 : t > 64 ? 64 : t;
        ws->depth_scratch_floats = s ? s : 1;
        ws->depth_scratch = malloc((size_t)ws->depth_threads * ws->depth_scratch_floats * sizeof(float));
        ws->depth_grad_floats = (size_t)DEPTH_BATCH * biggest;
        ws->depth_grad = malloc((size_t)ws->depth_threads * 2 * ws->depth_grad_floats * sizeof(float));
        if (!ws->depth_scratch || !ws->depth_grad) goto nomem;
        if (training && m->num_params) {
            size_t n = (size_t)depth_groups((max_batch + DEPTH_BATCH - 1) / DEPTH_BATCH);
            /* zero, and zero again after every sum (backward_depth_first) */
            ws->depth_slabs = calloc(n * m->num_params, sizeof(float));
            if (!ws->depth_slabs) goto nomem;
        }
        if (training && m->nlayers >= 2 && cnnviz_conv_pool_fusable(m->layers[0], m->layers[1])) {
            ws->codes_size = cnnviz_shape_size(&m->layers[1]->out_shape);
            ws->codes = malloc((size_t)max_batch * ws->codes_size * sizeof *ws->codes);
            if (!ws->codes) goto nomem;
        }
    }
    return ws;
nomem:
    cnnviz_workspace_free(ws);
    cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d", max_batch);
    return NULL;
}

void cnnviz_workspace_free(cnnviz_workspace *ws) {
    if (!ws) return;
    for (int i = 0; ws->out && i < ws->model->nlayers; i++) free(ws->out[i]);
    for (int i = 0; ws->aux && i < ws->model->nlayers; i++) free(ws->aux[i]);
    for (int i = 0; ws->prep && i < ws->model->nlayers; i++) free(ws->prep[i]);
    free(ws->out);
    free(ws->aux);
    free(ws->prep);
    free(ws->scratch);
    free(ws->grad_a);
    free(ws->grad_b);
    free(ws->depth_scratch);
    free(ws->depth_grad);
    free(ws->depth_slabs);
    free(ws->codes);
    free(ws);
}

int cnnviz_workspace_max_batch(const cnnviz_workspace *ws) { return ws->max_batch; }
void cnnviz_workspace_set_rng(cnnviz_workspace *ws, cnnviz_rng *rng) { ws->rng = rng; }
/* Layer 0's output after a fused training pass, which did not write it:
 * computed now from the same input (the same bits the pass's pooling saw). */
static void restore_first_output(cnnviz_workspace *ws) {
    if (!ws->out0_stale) return;
    const cnnviz_layer *l = ws->model->layers[0];
    cnnviz_pass p = {.scratch = ws->scratch, .prep = ws->prep[0]};
    l->ops->forward(l, ws->input, ws->out[0], ws->pass_batch, &p);
    ws->out0_stale = 0;
}

/* The rows and columns of layer i's output that a pass up to layer last
 * reads (0: all), for a pass that may crop (a training pass, or one that
 * keeps only the last output): of a Conv2D with ReLU under a max pooling,
 * the pooling's windows. In training the pooling does the ReLU's backward
 * (cnnviz_fused_relu_pool), so the Conv2D's backward does not read its
 * output. A valid pooling may leave the last rows and columns out (11 -> 5
 * reads 10 of 11: 25 of F(2x2)'s 36 tiles). */
void cnnviz_pass_crop(const cnnviz_model *m, int i, int last, int may_crop, int *rows, int *cols) {
    *rows = *cols = 0;
    if (!may_crop || i >= last || !cnnviz_fused_relu_pool(m, i + 1)) return;
    const cnnviz_shape *s = &m->layers[i]->out_shape;
    int r, c;
    cnnviz_pool_input_read(m->layers[i + 1], &r, &c);
    if (r < s->dim[0] || c < s->dim[1]) *rows = r, *cols = c;
}

/* The outputs a cropped training pass did not make whole, made now from
 * the same inputs with the same prepared weights (the same bits in the
 * part the pass made); before the weights change, as for layer 0. */
static void restore_cropped_outputs(cnnviz_workspace *ws) {
    if (!ws->crops_stale) return;
    const cnnviz_model *m = ws->model;
    for (int i = 0; i <= ws->pass_last; i++) {
        int rows, cols;
        cnnviz_pass_crop(m, i, ws->pass_last, 1, &rows, &cols);
        if (!rows) continue;
        const cnnviz_layer *l = m->layers[i];
        if (i == 1) restore_first_output(ws);
        cnnviz_pass p = {.scratch = ws->scratch, .prep = ws->prep[i], .training = 1};
        l->ops->forward(l, i ? ws->out[i - 1] : ws->input, ws->out[i], ws->pass_batch, &p);
    }
    ws->crops_stale = 0;
}

float *cnnviz_layer_output(cnnviz_workspace *ws, int i) {
    if (i == 0) restore_first_output(ws);
    restore_cropped_outputs(ws);
    return ws->out[i];
}

/* Depth-first forward: each thread takes micro-batches of DEPTH_BATCH
 * samples through every layer with a scratch of its own, so a micro-batch's
 * activations stay in that core's cache instead of the whole batch
 * streaming through memory layer after layer, and threads do not wait for
 * each other between layers. Every layer treats samples independently in
 * such a pass, and the micro-batches are a fixed split of the batch, so the
 * results do not depend on the thread count. Layers still see whole
 * micro-batches (a conv's sgemm wants rows), and small models only: each
 * micro-batch reads all the weights. */
static int depth_first_allowed(const cnnviz_model *m, const cnnviz_workspace *ws, int B, int last, int training) {
    if (!ws->depth_threads || B <= DEPTH_BATCH) return 0;
    /* Dropout draws its masks from one generator in sample order */
    if (training && ws->training)
        for (int i = 0; i <= last; i++)
            if (m->layers[i]->type == CNNVIZ_LAYER_DROPOUT) return 0;
    return 1;
}

/* Threads for a depth-first pass over nmb micro-batches: no more than the
 * workspace has buffers for, nor than there are micro-batches. */
static int depth_thread_count(const cnnviz_workspace *ws, int nmb) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (threads > ws->depth_threads) threads = ws->depth_threads;
    return threads < nmb ? threads : nmb;
}

/* The calling thread's scratch and its two ping-pong activation/gradient buffers. */
static void depth_thread_buffers(cnnviz_workspace *ws, float **scratch, float **a, float **b) {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    *scratch = ws->depth_scratch + (size_t)t * ws->depth_scratch_floats;
    *a = ws->depth_grad + (size_t)t * 2 * ws->depth_grad_floats;
    *b = *a + ws->depth_grad_floats;
}

/* keep_all = 0 (predict): only layer last's output is wanted, so the
 * others go to the thread's own two buffers and never leave its cache. */
static void forward_depth_first(const cnnviz_model *m, cnnviz_workspace *ws, const float *input, int B, int last,
                                int training, int keep_all) {
    int nmb = (B + DEPTH_BATCH - 1) / DEPTH_BATCH, threads = depth_thread_count(ws, nmb);
    size_t in_size = cnnviz_shape_size(&m->input_shape);
    /* a training pass's groups are its backward's; otherwise a group a thread */
    int groups = training && ws->training ? depth_groups(nmb) : threads;
    #pragma omp parallel num_threads(threads)
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int gr = 0; gr < groups; gr++)
        for (int j = gr; j < nmb; j += groups) {
            int b0 = j * DEPTH_BATCH, nb = B - b0 < DEPTH_BATCH ? B - b0 : DEPTH_BATCH;
            float *scratch, *ping, *pong;
            depth_thread_buffers(ws, &scratch, &ping, &pong);
            const float *in = input + (size_t)b0 * in_size;
            for (int i = 0; i <= last; i++) {
                const cnnviz_layer *l = m->layers[i];
                if (i == 0 && ws->fused_pass) {
                    float *pooled = ws->out[1] + (size_t)b0 * ws->codes_size;
                    cnnviz_conv_pool_forward(l, in, pooled, ws->codes + (size_t)b0 * ws->codes_size, nb);
                    in = pooled;
                    i = 1;
                    continue;
                }
                float *out = keep_all || i == last ? ws->out[i] + (size_t)b0 * cnnviz_shape_size(&l->out_shape)
                                                   : in == ping ? pong : ping;
                /* what a layer records about the pass in aux (Dropout: "no mask")
                 * is written once, by the first micro-batch */
                cnnviz_pass p = {.aux = j == 0 ? ws->aux[i] : NULL, .scratch = scratch, .prep = ws->prep[i],
                                 .training = training && ws->training, .rng = ws->rng};
                cnnviz_pass_crop(m, i, last, !keep_all || p.training, &p.rows_read, &p.cols_read);
                l->ops->forward(l, in, out, nb, &p);
                in = out;
            }
        }
    }
}

/* Run prepare() of layers 0..last into the workspace's prep buffers: what
 * a forward does first. */
static void prepare_layers(const cnnviz_model *m, cnnviz_workspace *ws, int last, int training) {
    for (int i = 0; i <= last && i < m->nlayers; i++)
        if (ws->prep[i]) m->layers[i]->ops->prepare(m->layers[i], ws->prep[i], training);
}

static const float *forward(const cnnviz_model *m, cnnviz_workspace *ws, const float *input, int B, int last,
                            int training, int keep_all) {
    if (last < 0 || last >= m->nlayers) last = m->nlayers - 1;
    ws->input = input;
    ws->pass_training = training && ws->training;
    prepare_layers(m, ws, last, ws->pass_training);
    ws->fused_pass = ws->out0_stale = 0;
    ws->pass_batch = B;
    ws->pass_last = last;
    ws->crops_stale = 0;
    for (int i = 0; i <= last; i++) {
        int rows, cols;
        cnnviz_pass_crop(m, i, last, ws->pass_training && keep_all, &rows, &cols);
        if (rows) ws->crops_stale = 1;
    }
    if (depth_first_allowed(m, ws, B, last, training)) {
        ws->fused_pass = ws->out0_stale = ws->codes && ws->pass_training && keep_all && last >= 1;
        forward_depth_first(m, ws, input, B, last, training, keep_all);
        return ws->out[last];
    }
    const float *in = input;
    for (int i = 0; i <= last; i++) {
        const cnnviz_layer *l = m->layers[i];
        cnnviz_pass p = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i],
                         .training = training && ws->training, .rng = ws->rng};
        cnnviz_pass_crop(m, i, last, !keep_all || p.training, &p.rows_read, &p.cols_read);
        l->ops->forward(l, in, ws->out[i], B, &p);
        in = ws->out[i];
    }
    return ws->out[last];
}

/* A max pooling right after a Conv2D with ReLU takes the ReLU's backward
 * over: a maximum of zero passes no gradient down (the ReLU's slope there
 * is zero), and the Conv2D then uses dout as it is. The result is the
 * same bits as running both backwards; it saves a pass over the larger
 * tensor. The pooling's input must be the Conv2D's output, which it is in
 * a sequential model. */
int cnnviz_fused_relu_pool(const cnnviz_model *m, int i) {
    if (i <= 0 || i >= m->nlayers) return 0;
    const cnnviz_layer *pool = m->layers[i], *below = m->layers[i - 1];
    return pool->type == CNNVIZ_LAYER_MAXPOOL2D && below->type == CNNVIZ_LAYER_CONV2D &&
           below->activation == CNNVIZ_ACT_RELU;
}

/* Depth-first backward, the mirror of forward_depth_first: a micro-batch
 * goes back through every layer with its gradients in per-thread buffers,
 * and its weight gradients into its group's slab (depth_groups); the slabs
 * are then added in group order.
 * Layers that keep per-batch state in aux (Dropout's masks) rule it out. */
static int depth_backward_allowed(const cnnviz_model *m, const cnnviz_workspace *ws, int B, int last,
                                  int weight_grads) {
    if (!ws->depth_threads || B <= DEPTH_BATCH) return 0;
    if (weight_grads && m->num_params && (!ws->depth_slabs || !m->grads)) return 0;
    for (int i = 0; i <= last; i++)
        if (ws->aux[i]) return 0;
    return 1;
}

static void backward_depth_first(const cnnviz_model *m, cnnviz_workspace *ws, const float *dout, int B, int last,
                                 int weight_grads, float *dinput) {
    int nmb = (B + DEPTH_BATCH - 1) / DEPTH_BATCH, threads = depth_thread_count(ws, nmb);
    size_t in_size = cnnviz_shape_size(&m->input_shape), np = m->num_params;
    size_t out_last = cnnviz_shape_size(&m->layers[last]->out_shape);
    float *slabs = weight_grads && np ? ws->depth_slabs : NULL;
    /* without weight gradients nothing is summed across samples */
    int groups = slabs ? depth_groups(nmb) : threads;
    /* the first conv and pool's backward as one (cnnviz_backward has made
     * the conv's output where this cannot be) */
    int fused = ws->fused_pass && last >= 1 && !dinput && slabs;
    #pragma omp parallel num_threads(threads)
    {
        cnnviz_omp_serial_inside();
        #pragma omp for schedule(static)
        for (int gr = 0; gr < groups; gr++)
        for (int j = gr; j < nmb; j += groups) {
            int b0 = j * DEPTH_BATCH, nb = B - b0 < DEPTH_BATCH ? B - b0 : DEPTH_BATCH;
            float *scratch, *ga, *gb;
            depth_thread_buffers(ws, &scratch, &ga, &gb);
            float *slab = slabs ? slabs + (size_t)gr * np : NULL;
            const float *d = dout + (size_t)b0 * out_last;
            for (int i = last; i >= 0; i--) {
                const cnnviz_layer *l = m->layers[i];
                if (i == 0 && !dinput && !(weight_grads && l->nparam)) break;
                if (i == 1 && fused) {
                    const cnnviz_layer *conv = m->layers[0];
                    cnnviz_pass p = {.grads = slab};
                    cnnviz_conv_pool_backward(conv, ws->input + (size_t)b0 * in_size,
                                              ws->out[1] + (size_t)b0 * ws->codes_size,
                                              ws->codes + (size_t)b0 * ws->codes_size, d, nb,
                                              cnnviz_param_grad(&conv->param[0], &p),
                                              conv->nparam > 1 ? cnnviz_param_grad(&conv->param[1], &p) : NULL);
                    break;
                }
                float *din = i > 0 ? (d == ga ? gb : ga) : dinput ? dinput + (size_t)b0 * in_size : NULL;
                const float *in = i ? ws->out[i - 1] + (size_t)b0 * cnnviz_shape_size(&m->layers[i - 1]->out_shape)
                                    : ws->input + (size_t)b0 * in_size;
                const float *out = ws->out[i] + (size_t)b0 * cnnviz_shape_size(&l->out_shape);
                cnnviz_pass p = {.scratch = scratch, .prep = ws->prep[i], .training = ws->pass_training,
                                 .weight_grads = weight_grads, .rng = ws->rng, .grads = slab,
                                 .relu_input = cnnviz_fused_relu_pool(m, i),
                                 .dout_masked = i < last && cnnviz_fused_relu_pool(m, i + 1)};
                l->ops->backward(l, in, out, d, din, nb, &p);
                d = din;
            }
        }
    }
    if (!slabs) return;
    /* g[k] += slab_0[k] + slab_1[k] + ... in this order for every k, a
     * block of k at a time so the adds vectorise; each slab is left zero
     * for the next pass while its lines are in cache, which costs less
     * than clearing it before */
    float *g = m->grads;
    size_t nblocks = (np + 1023) / 1024;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t bk = 0; bk < nblocks; bk++) {
        size_t k0 = bk * 1024, n = np - k0 < 1024 ? np - k0 : 1024;
        float sum[1024];
        memcpy(sum, slabs + k0, n * sizeof *sum);
        memset(slabs + k0, 0, n * sizeof *slabs);
        for (int j = 1; j < groups; j++) {
            float *sl = slabs + (size_t)j * np + k0;
            #pragma omp simd
            for (size_t k = 0; k < n; k++) sum[k] += sl[k];
            memset(sl, 0, n * sizeof *sl);
        }
        #pragma omp simd
        for (size_t k = 0; k < n; k++) g[k0 + k] += sum[k];
    }
}

const float *cnnviz_forward(const cnnviz_model *m, cnnviz_workspace *ws, const float *input, int B, int last,
                            int training) {
    return forward(m, ws, input, B, last, training, 1);
}

void cnnviz_backward(const cnnviz_model *m, cnnviz_workspace *ws, const float *dout, int B, int last,
                     int weight_grads, float *dinput) {
    if (last < 0 || last >= m->nlayers) last = m->nlayers - 1;
    int depth = depth_backward_allowed(m, ws, B, last, weight_grads);
    /* anything but training's backward after a fused pass wants the conv
     * output that pass did not write */
    if (!(depth && last >= 1 && !dinput && weight_grads && m->num_params)) restore_first_output(ws);
    /* a backward that ends at a cropped layer reads its output (its
     * pooling's backward is not there to do the ReLU's) */
    int crop_rows, crop_cols;
    cnnviz_pass_crop(m, last, ws->pass_last, 1, &crop_rows, &crop_cols);
    if (crop_rows) restore_cropped_outputs(ws);
    if (depth) {
        backward_depth_first(m, ws, dout, B, last, weight_grads, dinput);
        return;
    }
    const float *d = dout;
    for (int i = last; i >= 0; i--) {
        const cnnviz_layer *l = m->layers[i];
        if (i == 0 && !dinput && !(weight_grads && l->nparam)) break;
        /* the first layer's input gradient is only wanted when the caller asks;
         * layers with weights accept din == NULL and skip that work */
        float *din = i > 0 ? (d == ws->grad_a ? ws->grad_b : ws->grad_a) : dinput;
        const float *in = i ? ws->out[i - 1] : ws->input;
        cnnviz_pass p = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i], .training = ws->pass_training,
                         .weight_grads = weight_grads, .rng = ws->rng, .relu_input = cnnviz_fused_relu_pool(m, i),
                         .dout_masked = i < last && cnnviz_fused_relu_pool(m, i + 1)};
        l->ops->backward(l, in, ws->out[i], d, din, B, &p);
        d = din;
    }
}

cnnviz_status cnnviz_model_predict(const cnnviz_model *m, const float *x, int n, int batch, float *out,
                                   cnnviz_error *err) {
    if (batch <= 0) batch = 256;
    if (batch > n) batch = n > 0 ? n : 1;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, batch, 0, err);
    if (!ws) return err ? err->code : CNNVIZ_ERR_NOMEM;
    size_t in_size = cnnviz_shape_size(&m->input_shape);
    cnnviz_shape os = cnnviz_model_output_shape(m);
    size_t out_size = cnnviz_shape_size(&os);
    for (int i = 0; i < n; i += batch) {
        int b = n - i < batch ? n - i : batch;
        /* a private workspace: only the last layer's output is kept */
        const float *y = forward(m, ws, x + (size_t)i * in_size, b, -1, 0, 0);
        memcpy(out + (size_t)i * out_size, y, (size_t)b * out_size * sizeof(float));
    }
    cnnviz_workspace_free(ws);
    return CNNVIZ_OK;
}
