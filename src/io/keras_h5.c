/* Loading a Keras model: dispatch by magic bytes, and the legacy .h5 reader
 * (standalone Keras 2.x, tf.keras 2.x and Keras 3 saving to .h5).
 *
 * The layout follows keras/src/legacy/saving/legacy_h5_format.py: root
 * attributes model_config (JSON), keras_version, backend; group
 * /model_weights with attribute layer_names and, per layer, a group whose
 * attribute weight_names lists dataset paths relative to that group. Keras
 * pairs the saved layers that have weights with the model's layers that have
 * weights BY ORDER (load_weights_from_hdf5_group), and so do we. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras-impl.h"

/* --- small HDF5 helpers ----------------------------------------------------- */

typedef struct {
    int n;
    char **s;
} strlist;

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    l->n = 0;
    l->s = NULL;
}

static int strlist_push(strlist *l, const char *s, size_t len) {
    char **p = realloc(l->s, (size_t)(l->n + 1) * sizeof *p);
    if (!p) return -1;
    l->s = p;
    if (!(p[l->n] = strndup(s ? s : "", s ? len : 0))) return -1;
    l->n++;
    return 0;
}

/* Append the strings of attribute `name` of obj to out. Both flavours Keras
 * files use are read: fixed-length (NUL-padded) and variable-length strings,
 * scalar or 1-D. An attribute with no elements is an empty list whatever its
 * type: h5py writes an empty weight_names as a float64 array of shape (0,).
 * Returns 1 when read, 0 when absent, -1 when not strings or unreadable. */
static int read_str_attr(hid_t obj, const char *name, strlist *out) {
    if (H5Aexists(obj, name) <= 0) return 0;
    int ret = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t mem = -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t < 0 || np < 0) goto done;
    if (np == 0) {
        ret = 1;
        goto done;
    }
    if (H5Tget_class(t) != H5T_STRING) goto done;
    if (H5Tis_variable_str(t) > 0) {
        mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(t));
        char **buf = calloc((size_t)np, sizeof *buf);
        if (buf && H5Aread(a, mem, buf) >= 0) {
            ret = 1;
            for (hssize_t i = 0; i < np; i++) {
                if (ret > 0 && strlist_push(out, buf[i], buf[i] ? strlen(buf[i]) : 0)) ret = -1;
                if (buf[i]) H5free_memory(buf[i]);
            }
        }
        free(buf);
    } else {
        size_t size = H5Tget_size(t);
        char *buf = size ? malloc((size_t)np * size) : NULL;
        if (buf && H5Aread(a, t, buf) >= 0) {
            ret = 1;
            for (hssize_t i = 0; i < np && ret > 0; i++)
                if (strlist_push(out, buf + (size_t)i * size, strnlen(buf + (size_t)i * size, size))) ret = -1;
        }
        free(buf);
    }
done:
    if (mem >= 0) H5Tclose(mem);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ret;
}

/* Keras splits an attribute bigger than the 64 KiB object header limit into
 * name0, name1, ... (save_attributes_to_hdf5_group); read either form. */
static int read_str_attr_chunked(hid_t obj, const char *name, strlist *out) {
    int r = read_str_attr(obj, name, out);
    if (r) return r;
    char chunk[256];
    for (int k = 0;; k++) {
        snprintf(chunk, sizeof chunk, "%s%d", name, k);
        r = read_str_attr(obj, chunk, out);
        if (r <= 0) return k == 0 ? r : r < 0 ? -1 : 1;
    }
}

/* One string attribute as a malloc'd string; NULL when absent or not a
 * single string. */
static char *read_str_scalar(hid_t obj, const char *name) {
    strlist l = {0, NULL};
    char *s = NULL;
    if (read_str_attr(obj, name, &l) > 0 && l.n == 1) {
        s = l.s[0];
        l.s[0] = NULL;
    }
    strlist_free(&l);
    return s;
}

cnnviz_status cnnviz_keras_read_tensor(hid_t loc, const char *name, const cnnviz_layer *l, cnnviz_param *p,
                                       const char *path, cnnviz_error *err) {
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' is missing from the file",
                                l->name, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' is not a dataset", l->name,
                                name);
    cnnviz_status st = CNNVIZ_OK;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[8];
    cnnviz_shape file_shape = {0, {0}};
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' is not a float tensor", l->name,
                              name);
        goto done;
    }
    if (rank < 0 || rank > 8 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' has a bad shape", l->name, name);
        goto done;
    }
    int same = rank == p->shape.rank;
    file_shape.rank = rank > CNNVIZ_MAX_RANK ? CNNVIZ_MAX_RANK : rank;
    for (int i = 0; i < rank; i++) {
        if (i < CNNVIZ_MAX_RANK) file_shape.dim[i] = (int)dims[i];
        if (same && dims[i] != (hsize_t)p->shape.dim[i]) same = 0;
    }
    if (!same) {
        char have[64], want[64];
        cnnviz_shape_format(&file_shape, have, sizeof have);
        cnnviz_shape_format(&p->shape, want, sizeof want);
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                              "layer '%s': %s has shape %s%s in the file but the layer needs %s", l->name, p->name,
                              have, rank > CNNVIZ_MAX_RANK ? "..." : "", want);
        goto done;
    }
    /* HDF5 converts float64 (or any float layout) to native float32 here */
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->data) < 0)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': cannot read weight '%s'", l->name, name);
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return st;
}

/* --- input scale, snake_case ---------------------------------------------- */

int cnnviz_keras_parse_scale(const char *s, cnnviz_input_scale *out) {
    cnnviz_input_scale r = {CNNVIZ_SCALE_UNIT, 0.0f, 1.0f};
    if (strcmp(s, "unit") == 0) {
        r.kind = CNNVIZ_SCALE_UNIT;
    } else if (strcmp(s, "raw") == 0) {
        r.kind = CNNVIZ_SCALE_RAW;
    } else if (strcmp(s, "center") == 0) {
        r.kind = CNNVIZ_SCALE_CENTER;
    } else if (strncmp(s, "meanstd:", 8) == 0) {
        char *end;
        r.kind = CNNVIZ_SCALE_MEANSTD;
        r.mean = strtof(s + 8, &end);
        if (end == s + 8 || *end != ':') return -1;
        const char *p = end + 1;
        r.std = strtof(p, &end);
        if (end == p || *end || !(r.std > 0.0f) || r.std != r.std || r.mean != r.mean) return -1;
    } else {
        return -1;
    }
    *out = r;
    return 0;
}

void cnnviz_keras_format_scale(cnnviz_input_scale s, char *buf, size_t n) {
    switch (s.kind) {
    case CNNVIZ_SCALE_RAW: snprintf(buf, n, "raw"); return;
    case CNNVIZ_SCALE_CENTER: snprintf(buf, n, "center"); return;
    case CNNVIZ_SCALE_MEANSTD: snprintf(buf, n, "meanstd:%.9g:%.9g", (double)s.mean, (double)s.std); return;
    case CNNVIZ_SCALE_UNIT: break;
    }
    snprintf(buf, n, "unit");
}

static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }

/* keras/src/utils/naming.py to_snake_case, regex by regex:
 *   re.sub(r"\W+", "", name)
 *   re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
 *   re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
 * e.g. Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, LeakyReLU -> leaky_re_lu. */
void cnnviz_keras_snake_case(const char *cls, char *out, size_t n) {
    char a[256], b[512];
    size_t na = 0, nb = 0;
    for (const char *p = cls; *p && na + 1 < sizeof a; p++)
        if (is_upper(*p) || is_lower(*p) || (*p >= '0' && *p <= '9') || *p == '_') a[na++] = *p;
    a[na] = 0;
    for (size_t i = 0; i < na && nb + 3 < sizeof b;) {
        if (i + 2 < na && is_upper(a[i + 1]) && is_lower(a[i + 2])) {
            b[nb++] = a[i++];
            b[nb++] = '_';
            b[nb++] = a[i++];
            while (i < na && is_lower(a[i]) && nb + 1 < sizeof b) b[nb++] = a[i++];
        } else {
            b[nb++] = a[i++];
        }
    }
    b[nb] = 0;
    size_t k = 0;
    for (size_t i = 0; i < nb && k + 2 < n;) {
        if (i + 1 < nb && is_lower(b[i]) && is_upper(b[i + 1])) {
            out[k++] = b[i++];
            out[k++] = '_';
        }
        char c = b[i++];
        out[k++] = is_upper(c) ? (char)(c - 'A' + 'a') : c;
    }
    if (n) out[k < n ? k : n - 1] = 0;
}

/* --- the legacy .h5 reader ------------------------------------------------ */

/* weight_names entries look like "conv2d/kernel:0" (Keras 2) or
 * "sequential/conv2d/kernel" (Keras 3); the tensor is named by the last path
 * component without its ":N" suffix (DESIGN.md: never match full paths). */
static void base_name(const char *path, char *out, size_t n) {
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    size_t len = strlen(s);
    const char *colon = strrchr(s, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) len = (size_t)(colon - s);
    snprintf(out, n, "%.*s", (int)len, s);
}

/* Read one saved layer's tensors into model layer l. Tensors are matched to
 * params by name when every name is one of l's params; otherwise (Keras 1
 * style names such as convolution2d_1_W) by order, as Keras does. */
static cnnviz_status load_layer(hid_t g, const strlist *wn, cnnviz_layer *l, const char *gname, const char *path,
                                cnnviz_error *err) {
    if (wn->n != l->nparam)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "layer '%s' (%s): the file has %d weight tensors for it (group '%s'), the layer needs %d",
                                l->name, l->class_name, wn->n, gname, l->nparam);
    int order[CNNVIZ_MAX_PARAMS], by_name = 1;
    for (int j = 0; j < l->nparam; j++) order[j] = -1;
    for (int i = 0; i < wn->n && by_name; i++) {
        char b[128];
        base_name(wn->s[i], b, sizeof b);
        int found = 0;
        for (int j = 0; j < l->nparam && !found; j++)
            if (order[j] < 0 && strcmp(l->param[j].name, b) == 0) {
                order[j] = i;
                found = 1;
            }
        by_name = found;
    }
    for (int j = 0; j < l->nparam; j++) {
        cnnviz_status st = cnnviz_keras_read_tensor(g, wn->s[by_name ? order[j] : j], l, &l->param[j], path, err);
        if (st) return st;
    }
    return CNNVIZ_OK;
}

static cnnviz_status load_weights(hid_t mw, cnnviz_model *m, const char *path, cnnviz_error *err) {
    strlist names = {0, NULL};
    if (read_str_attr_chunked(mw, "layer_names", &names) <= 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "model_weights has no layer_names attribute");
    cnnviz_status st = CNNVIZ_OK;
    int with_weights = 0, saved = 0, k = 0;
    for (int i = 0; i < m->nlayers; i++) with_weights += m->layers[i]->nparam > 0;
    for (int i = 0; i < names.n && !st; i++) {
        strlist wn = {0, NULL};
        hid_t g = H5Lexists(mw, names.s[i], H5P_DEFAULT) > 0 ? H5Gopen2(mw, names.s[i], H5P_DEFAULT) : -1;
        if (g < 0) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "model_weights has no group for layer '%s'",
                                  names.s[i]);
            break;
        }
        if (read_str_attr_chunked(g, "weight_names", &wn) < 0) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': bad weight_names attribute", names.s[i]);
        } else if (wn.n > 0) {
            saved++;
            while (k < m->nlayers && m->layers[k]->nparam == 0) k++;
            if (k < m->nlayers) st = load_layer(g, &wn, m->layers[k++], names.s[i], path, err);
        }
        strlist_free(&wn);
        H5Gclose(g);
    }
    if (!st && saved != with_weights)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                              "the file has weights for %d layers but the model config has %d layers with weights",
                              saved, with_weights);
    strlist_free(&names);
    return st;
}

/* No model_config: tell a weights-only file (model.save_weights) apart from
 * an HDF5 file that has nothing to do with Keras. */
static cnnviz_status no_config_error(hid_t f, const char *path, cnnviz_error *err) {
    int keras1 = H5Aexists(f, "layer_names") > 0 && H5Aexists(f, "keras_version") <= 0;
    int weights = H5Aexists(f, "layer_names") > 0 || H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ||
                  H5Lexists(f, "layers", H5P_DEFAULT) > 0; /* Keras 3 .weights.h5: layers/<name>/vars */
    if (keras1)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "weights only, no architecture (a Keras 1 save_weights file; save the whole model "
                                "with model.save)");
    if (weights)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                "weights only, no architecture (save the whole model with model.save)");
    return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "HDF5 file without a Keras model (no model_config attribute)");
}

/* keras_version into meta, every root attribute named cnnviz_* too (our
 * writer's extras), and cnnviz_input_scale into the model's input scale. */
typedef struct {
    strlist names;
} attr_names;

static herr_t collect_cnnviz_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc, (void)info;
    attr_names *an = data;
    if (strncmp(name, "cnnviz_", 7) == 0 && strlist_push(&an->names, name, strlen(name))) return -1;
    return 0;
}

static cnnviz_status load_meta(hid_t f, cnnviz_model *m, const char *path, cnnviz_error *err) {
    cnnviz_status st = CNNVIZ_OK;
    char *v = read_str_scalar(f, "keras_version");
    if (v) st = cnnviz_model_set_meta(m, "keras_version", v, err);
    free(v);
    attr_names an = {{0, NULL}};
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_cnnviz_attr, &an);
    for (int i = 0; i < an.names.n && !st; i++) {
        v = read_str_scalar(f, an.names.s[i]);
        if (!v) continue; /* not a string: not ours */
        st = cnnviz_model_set_meta(m, an.names.s[i], v, err);
        if (!st && strcmp(an.names.s[i], "cnnviz_input_scale") == 0) {
            cnnviz_input_scale s;
            if (cnnviz_keras_parse_scale(v, &s))
                st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "bad cnnviz_input_scale '%s'", v);
            else
                cnnviz_model_set_input_scale(m, s);
        }
        free(v);
    }
    strlist_free(&an.names);
    if (st && err) snprintf(err->file, sizeof err->file, "%s", path);
    return st;
}

static cnnviz_status load_h5(hid_t f, const char *path, cnnviz_model **out, cnnviz_error *err) {
    char *config = read_str_scalar(f, "model_config");
    if (!config) {
        if (H5Aexists(f, "model_config") > 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model_config attribute is not a string");
        return no_config_error(f, path, err);
    }
    char *version = read_str_scalar(f, "keras_version");
    cnnviz_status st = CNNVIZ_OK;
    cnnviz_model *m = NULL;
    cJSON *root = NULL;
    /* Keras 1 named layers and weights differently (Convolution2D, _W/_b, Theano kernels) */
    if (version && version[0] == '1' && version[1] == '.') {
        st = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "Keras 1 model files are not supported (keras_version %s)",
                              version);
        goto done;
    }
    if (!(root = cJSON_Parse(config))) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model_config attribute is not valid JSON");
        goto done;
    }
    if ((st = cnnviz_keras_build(root, path, &m, err))) goto done;
    if (H5Lexists(f, "model_weights", H5P_DEFAULT) <= 0) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                              "no model_weights group (the model was saved without its weights)");
        goto done;
    }
    hid_t mw = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    st = mw < 0 ? cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "cannot open model_weights")
                : load_weights(mw, m, path, err);
    if (mw >= 0) H5Gclose(mw);
    if (!st) st = load_meta(f, m, path, err);
    if (!st) st = cnnviz_model_check_finite(m, path, err);
done:
    cJSON_Delete(root);
    free(config);
    free(version);
    if (st) {
        cnnviz_model_free(m);
        m = NULL;
    }
    *out = m;
    return st;
}

/* --- dispatch --------------------------------------------------------------- */

static const unsigned char hdf5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* The HDF5 superblock sits at 0 or, after a user block, at 512, 1024, 2048,
 * ... (a power of two; HDF5 spec, "Format Signature"). */
static int has_hdf5_magic(FILE *fp) {
    unsigned char b[8];
    for (long off = 0;; off = off ? off * 2 : 512) {
        if (fseek(fp, off, SEEK_SET) != 0 || fread(b, 1, 8, fp) != 8) return 0;
        if (memcmp(b, hdf5_magic, 8) == 0) return 1;
        if (off >= (1L << 30)) return 0;
    }
}

cnnviz_status cnnviz_model_load_in_process(const char *path, cnnviz_model **out, cnnviz_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open: %s", strerror(errno));
    char head[64] = {0};
    size_t n = fread(head, 1, sizeof head - 1, fp);
    if (n == 0 && ferror(fp)) {
        int e = errno;
        fclose(fp);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot read: %s", strerror(e));
    }
    int hdf5 = has_hdf5_magic(fp);
    fclose(fp);
    if (n >= 4 && memcmp(head, "PK\003\004", 4) == 0) return cnnviz_keras_load_zip(path, out, err);
    if (!hdf5) {
        /* what a clone without git-lfs leaves in place of the model */
        if (strncmp(head, "version https://git-lfs.github.com/spec/", 40) == 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "git lfs pointer, not the model file (run git lfs pull)");
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "not a Keras model file (neither HDF5 nor .keras zip)");
    }
    cnnviz_status st = CNNVIZ_OK;
    /* HDF5 prints its error stack on failures unless told not to; the library
     * never prints, so silence it for the duration of the load */
    H5E_BEGIN_TRY {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "truncated or damaged HDF5 file");
        } else {
            st = load_h5(f, path, out, err);
            H5Fclose(f);
        }
    } H5E_END_TRY;
    return st;
}
