/* The model: a chain of layers over one parameter slab, and the driver that
 * runs forward and backward through a workspace. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"
#include "model-impl.h"

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
