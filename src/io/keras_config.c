/* Keras model configs (the JSON in model_config, config.json or
 * model.to_json()) -> a chain of cnnviz layers.
 *
 * One reader serves every Keras generation we meet: standalone Keras 2.0/2.1
 * (config is a bare list), tf.keras 2.x ({"name", "layers"} with an
 * InputLayer carrying batch_input_shape) and Keras 3 (batch_shape, DTypePolicy
 * dicts, "module"/"registered_name"/"build_config" keys). Unknown keys are
 * ignored; known keys with values we cannot honour are errors that say why. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras-impl.h"
#include "layers/layers.h"

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key) {
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Where we are, for error messages. */
typedef struct {
    const char *path, *name, *cls;
    cnnviz_error *err;
} ctx;

static cnnviz_status bad_key(const ctx *c, const char *key) {
    return cnnviz_error_set(c->err, CNNVIZ_ERR_FORMAT, c->path, "layer '%s' (%s): bad '%s' in its config", c->name,
                            c->cls, key);
}

static cnnviz_status unsupported(const ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cnnviz_status unsupported(const ctx *c, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return cnnviz_error_set(c->err, CNNVIZ_ERR_UNSUPPORTED, c->path, "layer '%s' (%s): %s is not supported", c->name,
                            c->cls, why);
}

/* An integral JSON number into *out; missing or null keeps def. */
static cnnviz_status get_int(const ctx *c, const cJSON *cfg, const char *key, int def, int *out) {
    const cJSON *v = get(cfg, key);
    *out = def;
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9)
        return bad_key(c, key);
    *out = (int)v->valuedouble;
    return CNNVIZ_OK;
}

static cnnviz_status get_float(const ctx *c, const cJSON *cfg, const char *key, float def, float *out) {
    const cJSON *v = get(cfg, key);
    *out = def;
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    if (!cJSON_IsNumber(v)) return bad_key(c, key);
    *out = (float)v->valuedouble;
    return CNNVIZ_OK;
}

static cnnviz_status get_bool(const ctx *c, const cJSON *cfg, const char *key, int def, int *out) {
    const cJSON *v = get(cfg, key);
    *out = def;
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    if (!cJSON_IsBool(v)) return bad_key(c, key);
    *out = cJSON_IsTrue(v);
    return CNNVIZ_OK;
}

/* kernel_size, strides, pool_size: an int n (= n,n) or [a, b]. Missing or
 * null leaves out[] as it is. */
static cnnviz_status get_pair(const ctx *c, const cJSON *cfg, const char *key, int out[2]) {
    const cJSON *v = get(cfg, key);
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    if (cJSON_IsNumber(v)) {
        out[0] = out[1] = v->valueint;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) &&
               cJSON_IsNumber(cJSON_GetArrayItem(v, 1))) {
        out[0] = cJSON_GetArrayItem(v, 0)->valueint;
        out[1] = cJSON_GetArrayItem(v, 1)->valueint;
    } else {
        return bad_key(c, key);
    }
    if (out[0] <= 0 || out[1] <= 0) return bad_key(c, key);
    return CNNVIZ_OK;
}

/* Keras activations by their serialized name. "softmax_v2" is how tf.keras
 * 2.x serializes tf.nn.softmax passed as an activation. */
static const struct {
    const char *name;
    cnnviz_activation act;
} activations[] = {
    {"linear", CNNVIZ_ACT_LINEAR},   {"relu", CNNVIZ_ACT_RELU},       {"softmax", CNNVIZ_ACT_SOFTMAX},
    {"softmax_v2", CNNVIZ_ACT_SOFTMAX}, {"sigmoid", CNNVIZ_ACT_SIGMOID}, {"tanh", CNNVIZ_ACT_TANH},
    {"elu", CNNVIZ_ACT_ELU},         {"leaky_relu", CNNVIZ_ACT_LEAKY_RELU},
};

static cnnviz_status get_activation(const ctx *c, const cJSON *cfg, const char *key, cnnviz_activation *out) {
    const cJSON *v = get(cfg, key);
    *out = CNNVIZ_ACT_LINEAR;
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    const char *name = NULL;
    if (cJSON_IsString(v)) {
        name = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        /* Keras 3 may write {"class_name": "function", "config": "relu", ...} */
        name = get_str(v, "config");
        if (!name) name = get_str(v, "class_name");
    }
    if (!name) return bad_key(c, key);
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (strcmp(name, activations[i].name) == 0) {
            *out = activations[i].act;
            return CNNVIZ_OK;
        }
    return unsupported(c, "activation '%s'", name);
}

static cnnviz_status get_padding(const ctx *c, const cJSON *cfg, cnnviz_padding *out) {
    const char *p = get_str(cfg, "padding");
    *out = CNNVIZ_PAD_VALID;
    if (!p || strcmp(p, "valid") == 0) return CNNVIZ_OK;
    if (strcmp(p, "same") == 0) {
        *out = CNNVIZ_PAD_SAME;
        return CNNVIZ_OK;
    }
    return unsupported(c, "padding '%s'", p);
}

/* Our tensors are NHWC; channels_first would need a transposition. */
static cnnviz_status check_channels_last(const ctx *c, const cJSON *cfg) {
    const char *f = get_str(cfg, "data_format");
    if (!f || strcmp(f, "channels_last") == 0) return CNNVIZ_OK;
    return unsupported(c, "data_format '%s'", f);
}

/* kernel_regularizer: {"class_name": "L2"|"L1"|"L1L2", "config": {"l2": x}}.
 * Other regularizers (custom, orthogonal) only matter to training and are
 * ignored so the model still loads for inference. */
static cnnviz_status get_regularizer(const ctx *c, const cJSON *cfg, float *l1, float *l2) {
    const cJSON *r = get(cfg, "kernel_regularizer");
    *l1 = *l2 = 0.0f;
    if (!r || cJSON_IsNull(r)) return CNNVIZ_OK;
    const char *cls = get_str(r, "class_name");
    if (!cls) return bad_key(c, "kernel_regularizer");
    if (strcmp(cls, "L1") && strcmp(cls, "L2") && strcmp(cls, "L1L2") && strcmp(cls, "l1") && strcmp(cls, "l2") &&
        strcmp(cls, "l1_l2"))
        return CNNVIZ_OK;
    const cJSON *rc = get(r, "config");
    if (get_float(c, rc, "l1", 0.0f, l1) || get_float(c, rc, "l2", 0.0f, l2)) return bad_key(c, "kernel_regularizer");
    return CNNVIZ_OK;
}

/* The input shape of one sample from a Keras batch shape [null, d1, ...].
 * Returns 1 when found, 0 when v is not a shape, -1 (with err) when it has
 * unknown or bad dimensions. */
static int shape_from_json(const cJSON *v, const char *path, cnnviz_shape *out, cnnviz_error *err) {
    if (!cJSON_IsArray(v)) return 0;
    int n = cJSON_GetArraySize(v);
    if (n < 2 || n - 1 > CNNVIZ_MAX_RANK) {
        cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "input of rank %d is not supported", n - 1);
        return -1;
    }
    out->rank = n - 1;
    for (int i = 1; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(v, i);
        if (cJSON_IsNumber(d) && d->valueint > CNNVIZ_MAX_DIM) {
            cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "input dimension %d is over the limit of %d",
                             d->valueint, CNNVIZ_MAX_DIM);
            return -1;
        }
        if (!cJSON_IsNumber(d) || d->valueint <= 0) {
            char *s = cJSON_PrintUnformatted(v);
            cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "input shape %s has unknown dimensions",
                             s ? s : "?");
            free(s);
            return -1;
        }
        out->dim[i - 1] = d->valueint;
    }
    size_t size = 1;
    for (int i = 0; i < out->rank; i++)
        if (__builtin_mul_overflow(size, (size_t)out->dim[i], &size) || size > INT_MAX) {
            char *s = cJSON_PrintUnformatted(v);
            cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "input shape %s is too large", s ? s : "?");
            free(s);
            return -1;
        }
    return 1;
}

/* Keras records the input shape in one of several places, depending on the
 * version: an InputLayer's batch_input_shape (tf.keras 2) or batch_shape
 * (Keras 3), batch_input_shape on the first layer (Keras 2.0, tf.keras 1.x
 * without InputLayer), the Sequential's build_input_shape, or a build_config. */
static cnnviz_status find_input_shape(const cJSON *root, const cJSON *mcfg, const cJSON *layers, const char *path,
                                      cnnviz_shape *out, cnnviz_error *err) {
    const cJSON *first = cJSON_GetArrayItem(layers, 0);
    const cJSON *fcfg = get(first, "config");
    const cJSON *candidates[] = {
        get(fcfg, "batch_input_shape"),
        get(fcfg, "batch_shape"),
        get(mcfg, "build_input_shape"),
        get(get(first, "build_config"), "input_shape"),
        get(get(root, "build_config"), "input_shape"),
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        int r = shape_from_json(candidates[i], path, out, err);
        if (r) return r > 0 ? CNNVIZ_OK : err ? err->code : CNNVIZ_ERR_UNSUPPORTED;
    }
    return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has no input shape");
}

/* Layers that are the identity at inference (Keras applies them only with
 * training=True); kept under their own class name so summaries match Keras. */
static const char *const identity_classes[] = {
    "RandomRotation", "RandomZoom", "RandomTranslation", "RandomFlip", "RandomContrast", "RandomBrightness",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout2D", "ActivityRegularization",
};

static int is_identity_class(const char *cls) {
    for (size_t i = 0; i < sizeof identity_classes / sizeof identity_classes[0]; i++)
        if (strcmp(cls, identity_classes[i]) == 0) return 1;
    return 0;
}

/* axis of BatchNormalization / Softmax: -1, or the index of the last axis
 * counting the batch axis (= rank of one sample), or a list of one of those. */
static cnnviz_status check_last_axis(const ctx *c, const cJSON *cfg, const cnnviz_shape *in) {
    const cJSON *v = get(cfg, "axis");
    if (!v || cJSON_IsNull(v)) return CNNVIZ_OK;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1) v = cJSON_GetArrayItem(v, 0);
    if (!cJSON_IsNumber(v)) return bad_key(c, "axis");
    int axis = v->valueint;
    if (axis == -1 || axis == in->rank) return CNNVIZ_OK;
    return unsupported(c, "axis %d (only the last axis)", axis);
}

static cnnviz_status conv2d_spec(const ctx *c, const cJSON *cfg, cnnviz_layer_spec *s) {
    cnnviz_status st;
    int dil[2] = {1, 1}, groups;
    s->strides[0] = s->strides[1] = 1;
    if ((st = check_channels_last(c, cfg)) || (st = get_int(c, cfg, "filters", 0, &s->filters)) ||
        (st = get_pair(c, cfg, "kernel_size", s->kernel)) || (st = get_pair(c, cfg, "strides", s->strides)) ||
        (st = get_pair(c, cfg, "dilation_rate", dil)) || (st = get_int(c, cfg, "groups", 1, &groups)) ||
        (st = get_padding(c, cfg, &s->padding)) || (st = get_activation(c, cfg, "activation", &s->activation)) ||
        (st = get_regularizer(c, cfg, &s->l1, &s->l2)))
        return st;
    int use_bias;
    if ((st = get_bool(c, cfg, "use_bias", 1, &use_bias))) return st;
    s->no_bias = !use_bias;
    if (s->filters <= 0) return bad_key(c, "filters");
    if (!get(cfg, "kernel_size")) return bad_key(c, "kernel_size");
    if (dil[0] != 1 || dil[1] != 1) return unsupported(c, "dilation_rate (%d, %d)", dil[0], dil[1]);
    if (groups != 1) return unsupported(c, "groups=%d", groups);
    return CNNVIZ_OK;
}

static cnnviz_status dense_spec(const ctx *c, const cJSON *cfg, cnnviz_layer_spec *s) {
    cnnviz_status st;
    int use_bias;
    if ((st = get_int(c, cfg, "units", 0, &s->units)) || (st = get_bool(c, cfg, "use_bias", 1, &use_bias)) ||
        (st = get_activation(c, cfg, "activation", &s->activation)) || (st = get_regularizer(c, cfg, &s->l1, &s->l2)))
        return st;
    s->no_bias = !use_bias;
    if (s->units <= 0) return bad_key(c, "units");
    return CNNVIZ_OK;
}

static cnnviz_status pool_spec(const ctx *c, const cJSON *cfg, cnnviz_layer_spec *s) {
    cnnviz_status st;
    s->pool[0] = s->pool[1] = 2;
    if ((st = check_channels_last(c, cfg)) || (st = get_pair(c, cfg, "pool_size", s->pool)) ||
        (st = get_padding(c, cfg, &s->padding)))
        return st;
    /* strides=None means strides = pool_size (keras.layers.MaxPooling2D) */
    s->strides[0] = s->pool[0];
    s->strides[1] = s->pool[1];
    return get_pair(c, cfg, "strides", s->strides);
}

/* Reshape's target_shape may hold one -1, resolved from the input size. */
static cnnviz_status reshape_spec(const ctx *c, const cJSON *cfg, const cnnviz_shape *in, cnnviz_layer_spec *s) {
    const cJSON *t = get(cfg, "target_shape");
    int n = cJSON_GetArraySize(t);
    if (!cJSON_IsArray(t) || n < 1 || n > CNNVIZ_MAX_RANK) return bad_key(c, "target_shape");
    size_t known = 1, total = cnnviz_shape_size(in);
    int unknown = -1;
    s->target.rank = n;
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(t, i);
        if (!cJSON_IsNumber(d) || d->valueint == 0 || d->valueint < -1 || d->valueint > CNNVIZ_MAX_DIM ||
            (d->valueint == -1 && unknown >= 0))
            return bad_key(c, "target_shape");
        s->target.dim[i] = d->valueint;
        if (d->valueint == -1)
            unknown = i;
        else if (__builtin_mul_overflow(known, (size_t)d->valueint, &known))
            return bad_key(c, "target_shape");
    }
    if (unknown >= 0) {
        if (total % known || total / known > CNNVIZ_MAX_DIM) return bad_key(c, "target_shape");
        s->target.dim[unknown] = (int)(total / known);
    }
    return CNNVIZ_OK;
}

static cnnviz_status batchnorm_spec(const ctx *c, const cJSON *cfg, const cnnviz_shape *in, cnnviz_layer_spec *s) {
    cnnviz_status st;
    int renorm;
    if ((st = check_last_axis(c, cfg, in)) || (st = get_float(c, cfg, "epsilon", 1e-3f, &s->epsilon)) ||
        (st = get_bool(c, cfg, "center", 1, &s->bn_center)) || (st = get_bool(c, cfg, "scale", 1, &s->bn_scale)) ||
        (st = get_bool(c, cfg, "renorm", 0, &renorm)))
        return st;
    /* renorm adds more weights (renorm_mean, ...) that we do not carry */
    if (renorm) return unsupported(c, "renorm");
    return CNNVIZ_OK;
}

/* ReLU(max_value, negative_slope, threshold): plain relu, or with a slope
 * exactly LeakyReLU; a cap or a threshold is another function. */
static cnnviz_status relu_spec(const ctx *c, const cJSON *cfg, cnnviz_layer_spec *s) {
    cnnviz_status st;
    float threshold, slope;
    const cJSON *maxv = get(cfg, "max_value");
    if ((st = get_float(c, cfg, "threshold", 0.0f, &threshold)) ||
        (st = get_float(c, cfg, "negative_slope", 0.0f, &slope)))
        return st;
    if (maxv && !cJSON_IsNull(maxv)) return unsupported(c, "max_value (a capped relu)");
    if (threshold != 0.0f) return unsupported(c, "threshold %g", (double)threshold);
    s->activation = slope != 0.0f ? CNNVIZ_ACT_LEAKY_RELU : CNNVIZ_ACT_RELU;
    s->alpha = slope;
    return CNNVIZ_OK;
}

/* Rescaling's scale/offset are floats, or one-element lists in Keras 3. */
static cnnviz_status get_scalar_or_list1(const ctx *c, const cJSON *cfg, const char *key, float def, float *out) {
    const cJSON *v = get(cfg, key);
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 1) return unsupported(c, "a per-channel '%s'", key);
        v = cJSON_GetArrayItem(v, 0);
        if (!cJSON_IsNumber(v)) return bad_key(c, key);
        *out = (float)v->valuedouble;
        return CNNVIZ_OK;
    }
    return get_float(c, cfg, key, def, out);
}

/* One layer dict -> spec. The spec's strings point into the JSON. */
static cnnviz_status layer_spec(const cJSON *layer, const cnnviz_shape *in, const char *path, cnnviz_layer_spec *s,
                                cnnviz_error *err) {
    const cJSON *cfg = get(layer, "config");
    const char *cls = get_str(layer, "class_name");
    const char *name = get_str(cfg, "name");
    if (!name) name = get_str(layer, "name");
    ctx c = {path, name ? name : "?", cls ? cls : "?", err};
    if (!cls || !cJSON_IsObject(cfg))
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer %s: no class_name or config", c.name);
    cnnviz_status st = CNNVIZ_OK;
    cnnviz_layer_type type;
    if (strcmp(cls, "Conv2D") == 0 || strcmp(cls, "Convolution2D") == 0)
        type = CNNVIZ_LAYER_CONV2D;
    else if (strcmp(cls, "Dense") == 0)
        type = CNNVIZ_LAYER_DENSE;
    else if (strcmp(cls, "MaxPooling2D") == 0 || strcmp(cls, "MaxPool2D") == 0)
        type = CNNVIZ_LAYER_MAXPOOL2D;
    else if (strcmp(cls, "AveragePooling2D") == 0 || strcmp(cls, "AvgPool2D") == 0)
        type = CNNVIZ_LAYER_AVGPOOL2D;
    else if (strcmp(cls, "Flatten") == 0)
        type = CNNVIZ_LAYER_FLATTEN;
    else if (strcmp(cls, "Reshape") == 0)
        type = CNNVIZ_LAYER_RESHAPE;
    else if (strcmp(cls, "Dropout") == 0)
        type = CNNVIZ_LAYER_DROPOUT;
    else if (strcmp(cls, "BatchNormalization") == 0)
        type = CNNVIZ_LAYER_BATCHNORM;
    else if (strcmp(cls, "Activation") == 0 || strcmp(cls, "ReLU") == 0 || strcmp(cls, "LeakyReLU") == 0 ||
             strcmp(cls, "ELU") == 0 || strcmp(cls, "Softmax") == 0)
        type = CNNVIZ_LAYER_ACTIVATION;
    else if (strcmp(cls, "Rescaling") == 0)
        type = CNNVIZ_LAYER_RESCALING;
    else if (is_identity_class(cls))
        type = CNNVIZ_LAYER_IDENTITY;
    else
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "layer '%s' (%s) is not supported", c.name, cls);

    *s = cnnviz_layer_spec_init(type);
    s->name = name;
    s->class_name = cls;
    switch (type) {
    case CNNVIZ_LAYER_CONV2D: st = conv2d_spec(&c, cfg, s); break;
    case CNNVIZ_LAYER_DENSE: st = dense_spec(&c, cfg, s); break;
    case CNNVIZ_LAYER_MAXPOOL2D:
    case CNNVIZ_LAYER_AVGPOOL2D: st = pool_spec(&c, cfg, s); break;
    case CNNVIZ_LAYER_FLATTEN: st = check_channels_last(&c, cfg); break;
    case CNNVIZ_LAYER_RESHAPE: st = reshape_spec(&c, cfg, in, s); break;
    case CNNVIZ_LAYER_DROPOUT: st = get_float(&c, cfg, "rate", 0.5f, &s->rate); break;
    case CNNVIZ_LAYER_BATCHNORM: st = batchnorm_spec(&c, cfg, in, s); break;
    case CNNVIZ_LAYER_RESCALING:
        if (!(st = get_scalar_or_list1(&c, cfg, "scale", 1.0f, &s->scale)))
            st = get_scalar_or_list1(&c, cfg, "offset", 0.0f, &s->offset);
        break;
    case CNNVIZ_LAYER_IDENTITY:
        /* the dropout-like ones keep their rate for a writer or a trainer */
        st = get_float(&c, cfg, "rate", 0.0f, &s->rate);
        break;
    case CNNVIZ_LAYER_ACTIVATION:
        if (strcmp(cls, "Activation") == 0) {
            st = get_activation(&c, cfg, "activation", &s->activation);
            /* keras.activations.leaky_relu defaults to 0.2, elu to 1.0 */
            s->alpha = cnnviz_fused_activation_alpha(s->activation);
        } else if (strcmp(cls, "ReLU") == 0) {
            st = relu_spec(&c, cfg, s);
        } else if (strcmp(cls, "LeakyReLU") == 0) {
            /* Keras 2 calls the slope alpha, Keras 3 negative_slope; both default 0.3 */
            s->activation = CNNVIZ_ACT_LEAKY_RELU;
            st = get_float(&c, cfg, get(cfg, "negative_slope") ? "negative_slope" : "alpha", 0.3f, &s->alpha);
        } else if (strcmp(cls, "ELU") == 0) {
            s->activation = CNNVIZ_ACT_ELU;
            st = get_float(&c, cfg, "alpha", 1.0f, &s->alpha);
        } else { /* Softmax */
            s->activation = CNNVIZ_ACT_SOFTMAX;
            st = check_last_axis(&c, cfg, in);
        }
        break;
    default: break;
    }
    return st;
}

/* The layer names a node entry refers to: Keras 2 writes inbound nodes as
 * [[["prev", 0, 0, {}]]], Keras 3 as [{"args": [{"class_name":
 * "__keras_tensor__", "config": {"keras_history": ["prev", 0, 0]}}]}]. */
static void collect_refs(const cJSON *v, const char **names, int *n, int max) {
    if (cJSON_IsArray(v)) {
        const cJSON *a0 = cJSON_GetArrayItem(v, 0), *a1 = cJSON_GetArrayItem(v, 1);
        if (cJSON_IsString(a0) && cJSON_IsNumber(a1)) {
            if (*n < max) names[*n] = a0->valuestring;
            (*n)++;
            return;
        }
    } else if (cJSON_IsObject(v)) {
        const cJSON *h = get(v, "keras_history");
        if (h) {
            collect_refs(h, names, n, max);
            return;
        }
    } else {
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, v) collect_refs(e, names, n, max);
}

static const char *layer_name(const cJSON *layer) {
    const char *n = get_str(layer, "name");
    return n ? n : get_str(get(layer, "config"), "name");
}

/* A Functional model is accepted when it is a chain: one input, every layer
 * fed by exactly the layer before it, one output (the last layer). */
static cnnviz_status check_chain(const cJSON *mcfg, const cJSON *layers, const char *path, cnnviz_error *err) {
    const char *refs[4];
    int n = cJSON_GetArraySize(layers);
    const char *first = get_str(cJSON_GetArrayItem(layers, 0), "class_name");
    int ok = first && strcmp(first, "InputLayer") == 0;
    for (int i = 1; ok && i < n; i++) {
        const cJSON *layer = cJSON_GetArrayItem(layers, i);
        const cJSON *nodes = get(layer, "inbound_nodes");
        int k = 0;
        if (cJSON_GetArraySize(nodes) != 1) {
            ok = 0;
            break;
        }
        collect_refs(nodes, refs, &k, 4);
        const char *prev = layer_name(cJSON_GetArrayItem(layers, i - 1));
        ok = k == 1 && prev && strcmp(refs[0], prev) == 0;
    }
    if (ok) {
        int k = 0;
        collect_refs(get(mcfg, "input_layers"), refs, &k, 4);
        ok = k == 1 && strcmp(refs[0], layer_name(cJSON_GetArrayItem(layers, 0))) == 0;
    }
    if (ok) {
        int k = 0;
        collect_refs(get(mcfg, "output_layers"), refs, &k, 4);
        const char *last = layer_name(cJSON_GetArrayItem(layers, n - 1));
        ok = k == 1 && last && strcmp(refs[0], last) == 0;
    }
    if (!ok)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "functional model with branches is not supported");
    return CNNVIZ_OK;
}

/* --- the budget ------------------------------------------------------------- */

void cnnviz_load_options_init(cnnviz_load_options *o) {
    /* The largest real model in the shared corpus has 980,063 weights in a
     * 4.1 MB file, 20 layers and a 13.8 KB config nested 7 deep; these hold
     * 30 times that and stop a hostile file long before memory runs out. */
    o->max_params = (size_t)32 << 20;
    o->max_file_bytes = (size_t)256 << 20;
    o->max_config_bytes = (size_t)4 << 20;
    o->max_layers = 512;
    o->max_json_depth = 64;
    o->in_process = 0;
    o->timeout_s = 10.0;
    o->max_memory_bytes = (size_t)1 << 30;
}

cnnviz_status cnnviz_keras_check_json(const char *json, size_t len, const char *what, const char *path,
                                      const cnnviz_load_options *opt, cnnviz_error *err) {
    cnnviz_load_options def;
    if (!opt) cnnviz_load_options_init(&def), opt = &def;
    if (len > opt->max_config_bytes)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "%s is %zu bytes, over the limit of %zu", what, len,
                                opt->max_config_bytes);
    /* cJSON recurses once per level: count the levels first, outside strings */
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = json[i];
        if (in_string) {
            if (ch == '\\') i++;
            else if (ch == '"') in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > opt->max_json_depth)
                return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "%s nests deeper than the limit of %d levels",
                                        what, opt->max_json_depth);
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return CNNVIZ_OK;
}

/* Every size a layer spec declares, before the layer is made: no dimension
 * over CNNVIZ_MAX_DIM (the engine's int arithmetic on them stays far from
 * overflow). */
static cnnviz_status check_spec_dims(const cnnviz_layer_spec *s, const char *path, cnnviz_error *err) {
    const struct {
        const char *key;
        int v;
    } dims[] = {{"filters", s->filters},    {"units", s->units},        {"kernel_size", s->kernel[0]},
                {"kernel_size", s->kernel[1]}, {"strides", s->strides[0]}, {"strides", s->strides[1]},
                {"pool_size", s->pool[0]},  {"pool_size", s->pool[1]}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v > CNNVIZ_MAX_DIM)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                    "layer '%s' (%s): '%s' %d is over the limit of %d", s->name ? s->name : "?",
                                    s->class_name ? s->class_name : "?", dims[i].key, dims[i].v, CNNVIZ_MAX_DIM);
    return CNNVIZ_OK;
}

/* The layer just added: its weights and its output within the budget. */
static cnnviz_status check_layer_budget(const cnnviz_model *m, size_t *total, const cnnviz_load_options *opt,
                                        const char *path, cnnviz_error *err) {
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, cnnviz_model_num_layers(m) - 1, &info);
    size_t out = cnnviz_shape_size(&info.output_shape);
    if (info.params > opt->max_params || *total + info.params > opt->max_params)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "layer '%s' (%s) has %zu weights, which would make %zu in the model, over the limit "
                                "of %zu",
                                info.name, info.class_name, info.params, *total + info.params, opt->max_params);
    /* an activation larger than the whole weight budget is not MNIST-scale */
    if (out > opt->max_params)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "layer '%s' (%s) outputs %zu values a sample, over the limit of %zu", info.name,
                                info.class_name, out, opt->max_params);
    *total += info.params;
    return CNNVIZ_OK;
}

static cnnviz_status add_layers(cnnviz_model *m, const cJSON *layers, const char *path, const cnnviz_load_options *opt,
                                cnnviz_error *err) {
    const cJSON *layer;
    int index = 0;
    size_t total = 0;
    cnnviz_status st = CNNVIZ_OK;
    cJSON_ArrayForEach(layer, layers) {
        const char *lcls = get_str(layer, "class_name");
        if (lcls && strcmp(lcls, "InputLayer") == 0) {
            /* the InputLayer is not one of model.layers; only the first one may appear */
            if (index == 0) {
                index++;
                continue;
            }
            return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "an InputLayer inside the model is not supported");
        }
        index++;
        cnnviz_layer_spec spec;
        cnnviz_shape cur = cnnviz_model_output_shape(m);
        if ((st = layer_spec(layer, &cur, path, &spec, err)) || (st = check_spec_dims(&spec, path, err))) return st;
        if ((st = cnnviz_model_add(m, &spec, err))) {
            /* constructors leave the file empty: it is this file's problem */
            if (err) snprintf(err->file, sizeof err->file, "%s", path);
            return st;
        }
        if ((st = check_layer_budget(m, &total, opt, path, err))) return st;
    }
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_keras_build(const cJSON *root, const char *path, const cnnviz_load_options *opt,
                                 cnnviz_model **out, cnnviz_error *err) {
    *out = NULL;
    cnnviz_load_options def;
    if (!opt) cnnviz_load_options_init(&def), opt = &def;
    const char *cls = get_str(root, "class_name");
    const cJSON *mcfg = get(root, "config");
    if (!cls || !mcfg)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has no class_name or config");
    int functional = strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0;
    if (!functional && strcmp(cls, "Sequential") != 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path,
                                "model class '%s' is not supported (only Sequential and chain Functional models)",
                                cls);
    /* Keras <= 2.1 writes a Sequential's config as the bare list of layers */
    const cJSON *layers = cJSON_IsArray(mcfg) ? mcfg : get(mcfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has no layers");
    /* counted before anything is built (the InputLayer is one more) */
    int nlayers = cJSON_GetArraySize(layers);
    if (nlayers > opt->max_layers + 1)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has %d layers, over the limit of %d",
                                nlayers, opt->max_layers);
    cnnviz_status st;
    if (functional && (st = check_chain(mcfg, layers, path, err))) return st;
    cnnviz_shape in;
    if ((st = find_input_shape(root, mcfg, layers, path, &in, err))) return st;

    cnnviz_model *m = cnnviz_model_new(&in);
    if (!m) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    st = add_layers(m, layers, path, opt, err);
    if (!st && m->nlayers > opt->max_layers)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has %d layers, over the limit of %d",
                              m->nlayers, opt->max_layers);
    if (!st && m->nlayers == 0) st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model config has no layers");
    if (!st && (st = cnnviz_model_finalize(m, err)) && err) snprintf(err->file, sizeof err->file, "%s", path);
    if (st) {
        cnnviz_model_free(m);
        return st;
    }
    *out = m;
    return CNNVIZ_OK;
}

/* Parse checked JSON text; NULL with err on bad JSON. */
static cJSON *parse_checked(const char *json, size_t len, const char *what, const char *path,
                            const cnnviz_load_options *opt, cnnviz_error *err) {
    if (cnnviz_keras_check_json(json, len, what, path, opt, err)) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "%s is not valid JSON (at byte %ld)", what,
                         end ? (long)(end - json) : 0L);
    return root;
}

cnnviz_status cnnviz_keras_build_json(const char *json, size_t len, const char *name, const cnnviz_load_options *opt,
                                      cnnviz_model **out, cnnviz_error *err) {
    *out = NULL;
    cJSON *root = parse_checked(json, len, "the model config", name, opt, err);
    if (!root) return err ? err->code : CNNVIZ_ERR_FORMAT;
    cnnviz_status st = cnnviz_keras_build(root, name, opt, out, err);
    cJSON_Delete(root);
    return st;
}

cnnviz_status cnnviz_model_from_keras_json(const char *json_text, const char *path_for_errors, cnnviz_model **out,
                                           cnnviz_error *err) {
    return cnnviz_model_from_keras_json_opts(json_text, path_for_errors, NULL, out, err);
}

cnnviz_status cnnviz_model_from_keras_json_opts(const char *json_text, const char *path_for_errors,
                                                const cnnviz_load_options *opt, cnnviz_model **out,
                                                cnnviz_error *err) {
    const char *path = path_for_errors ? path_for_errors : "";
    *out = NULL;
    cJSON *root = parse_checked(json_text, strlen(json_text), "the model config", path, opt, err);
    if (!root) return err ? err->code : CNNVIZ_ERR_FORMAT;
    cnnviz_status st = cnnviz_keras_build(root, path, opt, out, err);
    const char *version = get_str(root, "keras_version");
    if (!st && version && (st = cnnviz_model_set_meta(*out, "keras_version", version, err))) {
        cnnviz_model_free(*out);
        *out = NULL;
    }
    cJSON_Delete(root);
    return st;
}
