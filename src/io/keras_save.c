/* Writing a model as a tf.keras 2.x legacy .h5, the layout of
 * keras/src/legacy/saving/legacy_h5_format.py save_model_to_hdf5:
 *
 *   /                    attrs keras_version, backend, model_config (JSON)
 *   /model_weights       attrs layer_names, backend, keras_version
 *   /model_weights/<L>   attr weight_names ["<L>/kernel:0", ...] (empty: a
 *                        float64 array of shape (0,), what h5py writes for [])
 *   /model_weights/<L>/<L>/kernel:0   float32 dataset in Keras' own layout
 *
 * keras_version is "2.15.0": the config we write is tf.keras 2.x style
 * (class_name + config, no "module" keys, InputLayer with
 * batch_input_shape), which tf.keras 2.x loads natively and Keras 3 loads
 * through its legacy path (use_legacy_config=True). Both loaders only look
 * at the version to detect Keras 1 weights; 2.15.0 is the last tf.keras 2
 * release, so the file claims nothing newer than the format it holds.
 *
 * Our extras are root string attributes named cnnviz_* (input scale,
 * history, seed, ...), which Keras never reads. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cnnviz/io.h"
#include "keras-impl.h"

/* The shortest decimal that reads back as the same float, so the JSON says
 * 0.001 rather than 0.0010000000474974513. */
static double tidy(float f) {
    char buf[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return (double)f;
}

static void add_num(cJSON *o, const char *k, float v) { cJSON_AddNumberToObject(o, k, tidy(v)); }

static void add_pair(cJSON *o, const char *k, int a, int b) {
    int v[2] = {a, b};
    cJSON_AddItemToObject(o, k, cJSON_CreateIntArray(v, 2));
}

/* {"class_name": cls, "config": {...}} as Keras 2 serializes initializers */
static void add_object(cJSON *o, const char *k, const char *cls, cJSON *config) {
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "class_name", cls);
    cJSON_AddItemToObject(v, "config", config ? config : cJSON_CreateObject());
    cJSON_AddItemToObject(o, k, v);
}

static void add_glorot(cJSON *o, const char *k) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNullToObject(c, "seed");
    add_object(o, k, "GlorotUniform", c);
}

static void add_regularizer(cJSON *o, const char *k, float l1, float l2) {
    if (l1 == 0.0f && l2 == 0.0f) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    cJSON *c = cJSON_CreateObject();
    if (l1 != 0.0f) add_num(c, "l1", l1);
    if (l2 != 0.0f) add_num(c, "l2", l2);
    add_object(o, k, l1 != 0.0f && l2 != 0.0f ? "L1L2" : l1 != 0.0f ? "L1" : "L2", c);
}

/* The keys Conv2D and Dense share after their own (tf.keras 2.15 get_config). */
static void add_kernel_keys(cJSON *c, const cnnviz_layer_spec *s, int activity) {
    cJSON_AddStringToObject(c, "activation", cnnviz_activation_name(s->activation));
    cJSON_AddBoolToObject(c, "use_bias", !s->no_bias);
    add_glorot(c, "kernel_initializer");
    add_object(c, "bias_initializer", "Zeros", NULL);
    add_regularizer(c, "kernel_regularizer", s->l1, s->l2);
    cJSON_AddNullToObject(c, "bias_regularizer");
    if (activity) cJSON_AddNullToObject(c, "activity_regularizer");
    cJSON_AddNullToObject(c, "kernel_constraint");
    cJSON_AddNullToObject(c, "bias_constraint");
}

/* An activation layer keeps its Keras class when the class can say what it
 * computes; otherwise it is written as the class that can. */
static const char *activation_config(const cnnviz_layer *l, cJSON *c) {
    const cnnviz_layer_spec *s = &l->spec;
    const char *cls = l->class_name;
    if (strcmp(cls, "ReLU") == 0 && (s->activation == CNNVIZ_ACT_RELU || s->activation == CNNVIZ_ACT_LEAKY_RELU)) {
        cJSON_AddNullToObject(c, "max_value");
        add_num(c, "negative_slope", s->activation == CNNVIZ_ACT_LEAKY_RELU ? s->alpha : 0.0f);
        add_num(c, "threshold", 0.0f);
        return "ReLU";
    }
    if (s->activation == CNNVIZ_ACT_LEAKY_RELU && (strcmp(cls, "LeakyReLU") == 0 || s->alpha != 0.2f)) {
        /* Keras 3 reads the Keras 2 name alpha too (keras/src/layers/activations/leaky_relu.py) */
        add_num(c, "alpha", s->alpha);
        return "LeakyReLU";
    }
    if (s->activation == CNNVIZ_ACT_ELU && (strcmp(cls, "ELU") == 0 || s->alpha != 1.0f)) {
        add_num(c, "alpha", s->alpha);
        return "ELU";
    }
    if (s->activation == CNNVIZ_ACT_SOFTMAX && strcmp(cls, "Softmax") == 0) {
        cJSON_AddNumberToObject(c, "axis", -1);
        return "Softmax";
    }
    cJSON_AddStringToObject(c, "activation", cnnviz_activation_name(s->activation));
    return "Activation";
}

/* Identity-at-inference layers: we do not keep their training-time settings
 * (cnnviz never applies them), so they are written with settings that make
 * them the identity in training too, which is what cnnviz trained with. A
 * class with no such setting becomes Activation("linear"). */
static const char *identity_config(const cnnviz_layer *l, cJSON *c) {
    const char *cls = l->class_name;
    if (strcmp(cls, "RandomRotation") == 0 || strcmp(cls, "RandomContrast") == 0) {
        add_num(c, "factor", 0.0f);
    } else if (strcmp(cls, "RandomZoom") == 0 || strcmp(cls, "RandomTranslation") == 0) {
        add_num(c, "height_factor", 0.0f);
        add_num(c, "width_factor", 0.0f);
    } else if (strcmp(cls, "GaussianNoise") == 0) {
        add_num(c, "stddev", 0.0f);
    } else if (strcmp(cls, "GaussianDropout") == 0 || strcmp(cls, "SpatialDropout2D") == 0 ||
               strcmp(cls, "AlphaDropout") == 0) {
        add_num(c, "rate", l->spec.rate);
    } else if (strcmp(cls, "ActivityRegularization") == 0) {
        add_num(c, "l1", 0.0f);
        add_num(c, "l2", 0.0f);
    } else {
        cJSON_AddStringToObject(c, "activation", "linear");
        return "Activation";
    }
    return cls;
}

/* {"class_name": ..., "config": {...}} of one layer, with the keys tf.keras
 * 2.15's get_config writes and Keras' defaults for what we do not model. */
static cJSON *layer_json(const cnnviz_layer *l) {
    const cnnviz_layer_spec *s = &l->spec;
    cJSON *c = cJSON_CreateObject();
    const char *cls = cnnviz_layer_type_name(l->type);
    const cnnviz_param *kernel = NULL;
    for (int k = 0; k < l->nparam; k++)
        if (strcmp(l->param[k].name, "kernel") == 0 && l->param[k].shape.rank == 4) kernel = &l->param[k];
    cJSON_AddStringToObject(c, "name", l->name);
    cJSON_AddBoolToObject(c, "trainable", 1);
    cJSON_AddStringToObject(c, "dtype", "float32");
    switch (l->type) {
    case CNNVIZ_LAYER_CONV2D:
        /* the kernel (kh, kw, in, out) is the authority on sizes */
        cJSON_AddNumberToObject(c, "filters", l->out_shape.dim[l->out_shape.rank - 1]);
        add_pair(c, "kernel_size", kernel ? kernel->shape.dim[0] : s->kernel[0],
                 kernel ? kernel->shape.dim[1] : s->kernel[1]);
        add_pair(c, "strides", s->strides[0] ? s->strides[0] : 1, s->strides[1] ? s->strides[1] : 1);
        cJSON_AddStringToObject(c, "padding", s->padding == CNNVIZ_PAD_SAME ? "same" : "valid");
        cJSON_AddStringToObject(c, "data_format", "channels_last");
        add_pair(c, "dilation_rate", 1, 1);
        cJSON_AddNumberToObject(c, "groups", 1);
        add_kernel_keys(c, s, 1);
        break;
    case CNNVIZ_LAYER_DENSE:
        cJSON_AddNumberToObject(c, "units", l->out_shape.dim[l->out_shape.rank - 1]);
        add_kernel_keys(c, s, 1);
        break;
    case CNNVIZ_LAYER_MAXPOOL2D:
    case CNNVIZ_LAYER_AVGPOOL2D:
        add_pair(c, "pool_size", s->pool[0], s->pool[1]);
        cJSON_AddStringToObject(c, "padding", s->padding == CNNVIZ_PAD_SAME ? "same" : "valid");
        add_pair(c, "strides", s->strides[0] ? s->strides[0] : s->pool[0], s->strides[1] ? s->strides[1] : s->pool[1]);
        cJSON_AddStringToObject(c, "data_format", "channels_last");
        break;
    case CNNVIZ_LAYER_FLATTEN:
        cJSON_AddStringToObject(c, "data_format", "channels_last");
        break;
    case CNNVIZ_LAYER_RESHAPE:
        cJSON_AddItemToObject(c, "target_shape", cJSON_CreateIntArray(l->out_shape.dim, l->out_shape.rank));
        break;
    case CNNVIZ_LAYER_DROPOUT:
        add_num(c, "rate", s->rate);
        cJSON_AddNullToObject(c, "noise_shape");
        cJSON_AddNullToObject(c, "seed");
        break;
    case CNNVIZ_LAYER_BATCHNORM:
        /* -1, not tf.keras' [3]: Keras 3 requires an int axis */
        cJSON_AddNumberToObject(c, "axis", -1);
        add_num(c, "momentum", 0.99f);
        add_num(c, "epsilon", s->epsilon);
        cJSON_AddBoolToObject(c, "center", s->bn_center);
        cJSON_AddBoolToObject(c, "scale", s->bn_scale);
        add_object(c, "beta_initializer", "Zeros", NULL);
        add_object(c, "gamma_initializer", "Ones", NULL);
        add_object(c, "moving_mean_initializer", "Zeros", NULL);
        add_object(c, "moving_variance_initializer", "Ones", NULL);
        cJSON_AddNullToObject(c, "beta_regularizer");
        cJSON_AddNullToObject(c, "gamma_regularizer");
        cJSON_AddNullToObject(c, "beta_constraint");
        cJSON_AddNullToObject(c, "gamma_constraint");
        break;
    case CNNVIZ_LAYER_ACTIVATION: cls = activation_config(l, c); break;
    case CNNVIZ_LAYER_RESCALING:
        add_num(c, "scale", s->scale);
        add_num(c, "offset", s->offset);
        break;
    case CNNVIZ_LAYER_IDENTITY: cls = identity_config(l, c); break;
    default: break;
    }
    cJSON *layer = cJSON_CreateObject();
    cJSON_AddStringToObject(layer, "class_name", cls);
    cJSON_AddItemToObject(layer, "config", c);
    return layer;
}

/* model_config: a Sequential whose first entry is the InputLayer, named
 * "<first layer>_input" as tf.keras 2.x names it. No "ragged" key: Keras
 * 3.0-3.3's InputLayer does not take it. */
static char *model_config_json(const cnnviz_model *m) {
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    cJSON *in = cJSON_CreateObject(), *inc = cJSON_CreateObject(), *shape = cJSON_CreateArray();
    char in_name[160];
    cJSON_AddItemToArray(shape, cJSON_CreateNull());
    for (int i = 0; i < m->input_shape.rank; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber(m->input_shape.dim[i]));
    snprintf(in_name, sizeof in_name, "%s_input", m->layers[0]->name);
    cJSON_AddItemToObject(inc, "batch_input_shape", shape);
    cJSON_AddStringToObject(inc, "dtype", "float32");
    cJSON_AddBoolToObject(inc, "sparse", 0);
    cJSON_AddStringToObject(inc, "name", in_name);
    cJSON_AddStringToObject(in, "class_name", "InputLayer");
    cJSON_AddItemToObject(in, "config", inc);
    cJSON_AddItemToArray(layers, in);
    for (int i = 0; i < m->nlayers; i++) cJSON_AddItemToArray(layers, layer_json(m->layers[i]));
    cJSON_AddStringToObject(cfg, "name", "sequential");
    cJSON_AddItemToObject(cfg, "layers", layers);
    cJSON_AddStringToObject(root, "class_name", "Sequential");
    cJSON_AddItemToObject(root, "config", cfg);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* --- HDF5 writing ------------------------------------------------------------ */

/* n variable-length UTF-8 strings (n < 0: a scalar), as h5py writes str. */
static int write_strings(hid_t obj, const char *name, const char *const *v, int n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    hsize_t dim = n < 0 ? 1 : (hsize_t)n;
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    int ok = t >= 0 && sp >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0;
    hid_t a = ok ? H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return ok ? 0 : -1;
}

static int write_string(hid_t obj, const char *name, const char *value) { return write_strings(obj, name, &value, -1); }

/* weight_names of a layer without weights: h5py's np.array([]), float64 (0,) */
static int write_empty_list(hid_t obj, const char *name) {
    hsize_t zero = 0;
    hid_t sp = H5Screate_simple(1, &zero, NULL);
    hid_t a = sp >= 0 ? H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return a >= 0 ? 0 : -1;
}

static int write_layer(hid_t mw, const cnnviz_layer *l) {
    hid_t g = H5Gcreate2(mw, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    int ok = 1;
    if (l->nparam == 0) {
        ok = write_empty_list(g, "weight_names") == 0;
    } else {
        char names[CNNVIZ_MAX_PARAMS][300];
        const char *ptr[CNNVIZ_MAX_PARAMS];
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        ok = lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0;
        for (int k = 0; k < l->nparam && ok; k++) {
            const cnnviz_param *p = &l->param[k];
            hsize_t dims[CNNVIZ_MAX_RANK];
            for (int d = 0; d < p->shape.rank; d++) dims[d] = (hsize_t)p->shape.dim[d];
            snprintf(names[k], sizeof names[k], "%s/%s:0", l->name, p->name);
            ptr[k] = names[k];
            hid_t sp = H5Screate_simple(p->shape.rank, dims, NULL);
            hid_t d = sp >= 0 ? H5Dcreate2(g, names[k], H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
            ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->data) >= 0;
            if (d >= 0) H5Dclose(d);
            if (sp >= 0) H5Sclose(sp);
        }
        if (lcpl >= 0) H5Pclose(lcpl);
        if (ok) ok = write_strings(g, "weight_names", ptr, l->nparam) == 0;
    }
    H5Gclose(g);
    return ok ? 0 : -1;
}

static cnnviz_status write_model(hid_t f, const cnnviz_model *m, const char *path, cnnviz_error *err) {
    char *config = model_config_json(m);
    int ok = config && write_string(f, "keras_version", CNNVIZ_KERAS_WRITE_VERSION) == 0 &&
             write_string(f, "backend", "tensorflow") == 0 && write_string(f, "model_config", config) == 0;
    free(config);
    char scale[96];
    cnnviz_keras_format_scale(m->scale, scale, sizeof scale);
    for (int i = 0; i < m->nmeta && ok; i++) {
        const char *k = m->meta[i].key;
        if (strncmp(k, "cnnviz_", 7) != 0) continue;
        if (m->has_scale && strcmp(k, "cnnviz_input_scale") == 0) continue; /* the model's own scale wins */
        ok = write_string(f, k, m->meta[i].value) == 0;
    }
    if (ok && m->has_scale) ok = write_string(f, "cnnviz_input_scale", scale) == 0;

    hid_t mw = ok ? H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    const char **names = calloc((size_t)m->nlayers, sizeof *names);
    ok = mw >= 0 && names;
    for (int i = 0; ok && i < m->nlayers; i++) names[i] = m->layers[i]->name;
    ok = ok && write_strings(mw, "layer_names", names, m->nlayers) == 0 &&
         write_string(mw, "backend", "tensorflow") == 0 &&
         write_string(mw, "keras_version", CNNVIZ_KERAS_WRITE_VERSION) == 0;
    for (int i = 0; ok && i < m->nlayers; i++) ok = write_layer(mw, m->layers[i]) == 0;
    free(names);
    if (mw >= 0) H5Gclose(mw);
    return ok ? CNNVIZ_OK : cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write the HDF5 file");
}

/* Layer names become HDF5 group names: no '/', not "." or "..". */
static cnnviz_status check_names(const cnnviz_model *m, const char *path, cnnviz_error *err) {
    for (int i = 0; i < m->nlayers; i++) {
        const char *n = m->layers[i]->name;
        if (!*n || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "layer name '%s' cannot be saved in HDF5", n);
        for (int j = 0; j < i; j++)
            if (strcmp(n, m->layers[j]->name) == 0)
                return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "two layers are named '%s'", n);
    }
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_model_save(const cnnviz_model *m, const char *path, cnnviz_error *err) {
    if (!m->finalized || m->nlayers == 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "the model is not finalized");
    cnnviz_status st = check_names(m, path, err);
    if (st) return st;
    cnnviz_atomic_file af;
    st = cnnviz_atomic_begin(&af, path, err);
    if (st) return st;
    H5E_BEGIN_TRY {
        hid_t f = H5Fcreate(af.tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot create the HDF5 file");
        } else {
            st = write_model(f, m, path, err);
            if (H5Fclose(f) < 0 && !st) st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write the HDF5 file");
        }
    } H5E_END_TRY;
    if (st) {
        cnnviz_atomic_abort(&af);
        return st;
    }
    return cnnviz_atomic_commit(&af, err);
}
