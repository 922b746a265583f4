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
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
 * *budget is the bytes left for attribute text; what is read is taken from
 * it. Returns 1 when read, 0 when absent, -1 when not strings or
 * unreadable, -2 when over the budget. */
static int read_str_attr(hid_t obj, const char *name, strlist *out, size_t *budget) {
    if (H5Aexists(obj, name) <= 0) return 0;
    int ret = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t mem = -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t need;
    if (t < 0 || np < 0) goto done;
    if (np == 0) {
        ret = 1;
        goto done;
    }
    if (H5Tget_class(t) != H5T_STRING) goto done;
    int vlen = H5Tis_variable_str(t) > 0;
    /* what the read allocates, checked before it does */
    if (__builtin_mul_overflow((size_t)np, vlen ? sizeof(char *) : H5Tget_size(t), &need) || need > *budget) {
        ret = -2;
        goto done;
    }
    if (vlen) {
        mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(t));
        char **buf = calloc((size_t)np, sizeof *buf);
        if (buf && H5Aread(a, mem, buf) >= 0) {
            ret = 1;
            for (hssize_t i = 0; i < np; i++) {
                size_t len = buf[i] ? strlen(buf[i]) : 0;
                if (ret > 0 && len > *budget) ret = -2;
                if (ret > 0 && strlist_push(out, buf[i], len)) ret = -1;
                if (ret > 0) *budget -= len;
                if (buf[i]) H5free_memory(buf[i]);
            }
        }
        free(buf);
    } else {
        size_t size = H5Tget_size(t);
        char *buf = size ? malloc(need) : NULL;
        if (buf && H5Aread(a, t, buf) >= 0) {
            ret = 1;
            *budget -= need;
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
static int read_str_attr_chunked(hid_t obj, const char *name, strlist *out, size_t *budget) {
    int r = read_str_attr(obj, name, out, budget);
    if (r) return r;
    char chunk[256];
    for (int k = 0;; k++) {
        snprintf(chunk, sizeof chunk, "%s%d", name, k);
        r = read_str_attr(obj, chunk, out, budget);
        if (r <= 0) return k == 0 ? r : r < 0 ? r : 1;
    }
}

/* One string attribute as a malloc'd string; NULL when absent, not a
 * single string or over *budget (*over set then). */
static char *read_str_scalar(hid_t obj, const char *name, size_t *budget, int *over) {
    strlist l = {0, NULL};
    char *s = NULL;
    int r = read_str_attr(obj, name, &l, budget);
    if (over) *over = r == -2;
    if (r > 0 && l.n == 1) {
        s = l.s[0];
        l.s[0] = NULL;
    }
    strlist_free(&l);
    return s;
}

/* --- nothing outside the file ------------------------------------------------ */

static pthread_once_t hdf5_once = PTHREAD_ONCE_INIT;

/* Plugins are how libhdf5 meets a filter it does not know: it dlopens every
 * library in HDF5_PLUGIN_PATH (or its default folder) and runs their code.
 * Keras files use no filter that needs one. */
static void hdf5_init(void) { H5PLset_loading_state(0); }

void cnnviz_keras_hdf5_init(void) { pthread_once(&hdf5_once, hdf5_init); }

hid_t cnnviz_keras_open_image(const void *buf, size_t len) {
    cnnviz_keras_hdf5_init();
    /* The core driver with an image reads nothing from disk, but libhdf5
     * 1.10 first open()s the name and refuses the image if that succeeds,
     * and takes two open images of one name for the same file. So: a name
     * that can never be opened (/dev/null is no folder), new each time. */
    static unsigned long serial;
    char name[64];
    snprintf(name, sizeof name, "/dev/null/cnnviz-image-%lu", __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    hid_t f = -1;
    H5E_BEGIN_TRY {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 && H5Pset_file_image(fapl, (void *)buf, len) >= 0)
            f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
        if (fapl >= 0) H5Pclose(fapl);
    } H5E_END_TRY;
    return f;
}

/* A name from the file, printable, for an error message. */
static void printable(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++) out[k++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
    if (n) out[k] = 0;
}

cnnviz_status cnnviz_keras_hard_path(hid_t loc, const char *name, const char *what, const char *path, int *found,
                                     cnnviz_error *err) {
    size_t n = strlen(name);
    char *prefix = malloc(n + 1);
    *found = 0;
    if (!prefix) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    cnnviz_status st = CNNVIZ_OK;
    int ret = n > 0;
    /* each component in turn: a link is only traversed once it is known to
     * be hard (H5Lexists and H5Lget_info do not follow the last one) */
    for (size_t i = 1; i <= n && ret > 0 && !st; i++) {
        if ((name[i] != '/' && name[i]) || name[i - 1] == '/') continue;
        memcpy(prefix, name, i);
        prefix[i] = 0;
        H5L_info_t li;
        if (H5Lexists(loc, prefix, H5P_DEFAULT) <= 0 || H5Lget_info(loc, prefix, &li, H5P_DEFAULT) < 0) {
            ret = 0;
        } else if (li.type != H5L_TYPE_HARD) {
            char shown[256];
            printable(prefix, shown, sizeof shown);
            const char *kind = li.type == H5L_TYPE_SOFT       ? "a soft link"
                               : li.type == H5L_TYPE_EXTERNAL ? "an external link into another file"
                                                              : "a user-defined link";
            if (i == n)
                st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                      "%s is %s, refused (a model is read through hard links only)", what, kind);
            else
                st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                      "%s: '%s' on its path is %s, refused (a model is read through hard links only)",
                                      what, shown, kind);
        }
    }
    free(prefix);
    *found = !st && ret > 0;
    return st;
}

/* HDF5 filter ids (the registry at support.hdfgroup.org) that a refusal
 * names; the file's own name for a filter is not trusted. */
static const char *filter_name(H5Z_filter_t id) {
    switch (id) {
    case H5Z_FILTER_DEFLATE: return "deflate";
    case H5Z_FILTER_SHUFFLE: return "shuffle";
    case H5Z_FILTER_FLETCHER32: return "Fletcher32";
    case H5Z_FILTER_SZIP: return "SZIP";
    case H5Z_FILTER_NBIT: return "N-Bit";
    case H5Z_FILTER_SCALEOFFSET: return "Scale-Offset";
    case 307: return "BZIP2";
    case 32000: return "LZF";
    case 32001: return "Blosc";
    case 32004: return "LZ4";
    case 32008: return "Bitshuffle";
    case 32015: return "Zstandard";
    default: return "unknown";
    }
}

/* How the dataset is stored: in this file (no external storage, not
 * virtual), filtered only by deflate and shuffle (what h5py's gzip
 * compression writes; Keras itself writes no filter), and with chunks no
 * larger than the tensor and stored data no larger than the file. */
static cnnviz_status check_storage(hid_t d, hid_t t, const char *name, size_t elems, size_t file_bytes,
                                   const char *path, cnnviz_error *err) {
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0) return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "weight '%s' cannot be read", name);
    cnnviz_status st = CNNVIZ_OK;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int next = H5Pget_external_count(dcpl), nf = H5Pget_nfilters(dcpl);
    size_t tensor_bytes = 0, chunk_bytes = H5Tget_size(t);
    char shown[256];
    if (next > 0) {
        char ext[256] = "";
        off_t offset;
        hsize_t size;
        H5Pget_external(dcpl, 0, sizeof ext, ext, &offset, &size);
        ext[sizeof ext - 1] = 0;
        printable(ext, shown, sizeof shown);
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                              "weight '%s' has HDF5 external storage in '%s', refused (its data must be in the file)",
                              name, shown);
    } else if (layout == H5D_VIRTUAL) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                              "weight '%s' is a virtual dataset (its data comes from other files), refused", name);
    } else if (layout < 0 || next < 0 || nf < 0) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "weight '%s' has a damaged storage description", name);
    }
    for (int i = 0; i < nf && !st; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char fname[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname, fname, NULL);
        if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE)
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                  "weight '%s' uses HDF5 filter %d (%s), which Keras files do not use", name, (int)id,
                                  filter_name(id));
    }
    if (!st && layout == H5D_CHUNKED) {
        hsize_t cdims[32];
        int rank = H5Pget_chunk(dcpl, 32, cdims);
        int bad = rank <= 0 || rank > 32 || __builtin_mul_overflow(elems, H5Tget_size(t), &tensor_bytes);
        for (int i = 0; i < rank && !bad; i++) bad = __builtin_mul_overflow(chunk_bytes, (size_t)cdims[i], &chunk_bytes);
        /* a chunk is decompressed whole into a buffer of its size */
        if (bad || chunk_bytes > tensor_bytes)
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                  "weight '%s' has chunks larger than the tensor (%zu bytes), refused", name,
                                  tensor_bytes);
    }
    if (!st && H5Dget_storage_size(d) > file_bytes)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "weight '%s' claims more stored bytes than the file has",
                              name);
    H5Pclose(dcpl);
    return st;
}

cnnviz_status cnnviz_keras_read_tensor(hid_t loc, const char *name, const cnnviz_layer *l, cnnviz_param *p,
                                       size_t file_bytes, const char *path, cnnviz_error *err) {
    char what[320];
    snprintf(what, sizeof what, "layer '%s': weight '%s'", l->name, name);
    int found;
    cnnviz_status st = cnnviz_keras_hard_path(loc, name, what, path, &found, err);
    if (st) return st;
    if (!found)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' is missing from the file",
                                l->name, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': weight '%s' is not a dataset", l->name,
                                name);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[8];
    cnnviz_shape file_shape = {0, {0}};
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) > 16) {
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
        if (i < CNNVIZ_MAX_RANK) file_shape.dim[i] = dims[i] > INT_MAX ? INT_MAX : (int)dims[i];
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
    snprintf(what, sizeof what, "%s", name);
    if ((st = check_storage(d, t, what, p->size, file_bytes, path, err))) goto done;
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
static cnnviz_status load_layer(hid_t g, const strlist *wn, cnnviz_layer *l, const char *gname, size_t file_bytes,
                                const char *path, cnnviz_error *err) {
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
        cnnviz_status st = cnnviz_keras_read_tensor(g, wn->s[by_name ? order[j] : j], l, &l->param[j], file_bytes, path,
                                                    err);
        if (st) return st;
    }
    return CNNVIZ_OK;
}

/* What the .h5 reader is given: the budget, the file image's size. */
typedef struct {
    const cnnviz_load_options *opt;
    size_t file_bytes;
    size_t attr_budget; /* bytes of attribute text left to read */
    const char *path;
} h5_ctx;

static cnnviz_status attr_over(const h5_ctx *c, const char *what, cnnviz_error *err) {
    return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, c->path, "%s: the attributes hold more than the limit of %zu bytes",
                            what, c->opt->max_config_bytes);
}

/* The group of one saved layer, opened through hard links only. */
static cnnviz_status open_layer_group(hid_t mw, const char *lname, const char *path, hid_t *g, cnnviz_error *err) {
    char what[300];
    int found;
    snprintf(what, sizeof what, "the group of layer '%s'", lname);
    cnnviz_status st = cnnviz_keras_hard_path(mw, lname, what, path, &found, err);
    *g = found ? H5Gopen2(mw, lname, H5P_DEFAULT) : -1;
    if (!st && *g < 0)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "model_weights has no group for layer '%s'", lname);
    return st;
}

static cnnviz_status load_weights(hid_t mw, cnnviz_model *m, h5_ctx *c, cnnviz_error *err) {
    const char *path = c->path;
    strlist names = {0, NULL};
    int r = read_str_attr_chunked(mw, "layer_names", &names, &c->attr_budget);
    if (r == -2) return strlist_free(&names), attr_over(c, "layer_names", err);
    if (r <= 0) {
        strlist_free(&names);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "model_weights has no layer_names attribute");
    }
    cnnviz_status st = CNNVIZ_OK;
    int with_weights = 0, saved = 0, k = 0;
    for (int i = 0; i < m->nlayers; i++) with_weights += m->layers[i]->nparam > 0;
    if (names.n > c->opt->max_layers + 1)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer_names lists %d layers, over the limit of %d",
                              names.n, c->opt->max_layers);
    for (int i = 0; i < names.n && !st; i++) {
        strlist wn = {0, NULL};
        hid_t g;
        if ((st = open_layer_group(mw, names.s[i], path, &g, err))) break;
        r = read_str_attr_chunked(g, "weight_names", &wn, &c->attr_budget);
        if (r == -2) {
            st = attr_over(c, "weight_names", err);
        } else if (r < 0) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "layer '%s': bad weight_names attribute", names.s[i]);
        } else if (wn.n > 0) {
            saved++;
            while (k < m->nlayers && m->layers[k]->nparam == 0) k++;
            if (k < m->nlayers) st = load_layer(g, &wn, m->layers[k++], names.s[i], c->file_bytes, path, err);
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
    size_t *budget;
    int over; /* the names alone went over the budget */
} attr_names;

static herr_t collect_cnnviz_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc, (void)info;
    attr_names *an = data;
    size_t len = strlen(name);
    if (strncmp(name, "cnnviz_", 7) != 0) return 0;
    if (len > *an->budget) an->over = 1;
    if (an->over || strlist_push(&an->names, name, len)) return -1;
    *an->budget -= len;
    return 0;
}

static cnnviz_status load_meta(hid_t f, cnnviz_model *m, h5_ctx *c, cnnviz_error *err) {
    const char *path = c->path;
    cnnviz_status st = CNNVIZ_OK;
    int over;
    char *v = read_str_scalar(f, "keras_version", &c->attr_budget, &over);
    if (v) st = cnnviz_model_set_meta(m, "keras_version", v, err);
    free(v);
    attr_names an = {{0, NULL}, &c->attr_budget, 0};
    if (!st && H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_cnnviz_attr, &an) < 0 && an.over)
        st = attr_over(c, "the root attributes", err);
    for (int i = 0; i < an.names.n && !st; i++) {
        v = read_str_scalar(f, an.names.s[i], &c->attr_budget, &over);
        if (over) st = attr_over(c, an.names.s[i], err);
        if (!v) continue; /* not a string: not ours */
        if (!st) st = cnnviz_model_set_meta(m, an.names.s[i], v, err);
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

/* The weights under /model_weights, reached through a hard link. */
static cnnviz_status load_model_weights(hid_t f, cnnviz_model *m, h5_ctx *c, cnnviz_error *err) {
    int found;
    cnnviz_status st = cnnviz_keras_hard_path(f, "model_weights", "the model_weights group", c->path, &found, err);
    if (st) return st;
    if (!found)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, c->path,
                                "no model_weights group (the model was saved without its weights)");
    hid_t mw = H5Gopen2(f, "model_weights", H5P_DEFAULT);
    if (mw < 0) return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, c->path, "cannot open model_weights");
    st = load_weights(mw, m, c, err);
    H5Gclose(mw);
    return st;
}

static cnnviz_status load_h5(hid_t f, h5_ctx *c, cnnviz_model **out, char **config_out, cnnviz_error *err) {
    const char *path = c->path;
    int over;
    char *config = read_str_scalar(f, "model_config", &c->attr_budget, &over);
    if (!config) {
        if (over)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path,
                                    "the model_config attribute is over the limit of %zu bytes",
                                    c->opt->max_config_bytes);
        if (H5Aexists(f, "model_config") > 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the model_config attribute is not a string");
        return no_config_error(f, path, err);
    }
    char *version = read_str_scalar(f, "keras_version", &c->attr_budget, &over);
    cnnviz_status st = CNNVIZ_OK;
    cnnviz_model *m = NULL;
    /* Keras 1 named layers and weights differently (Convolution2D, _W/_b, Theano kernels) */
    if (version && version[0] == '1' && version[1] == '.') {
        st = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "Keras 1 model files are not supported (keras_version %s)",
                              version);
        goto done;
    }
    if ((st = cnnviz_keras_build_json(config, strlen(config), path, c->opt, &m, err))) goto done;
    if (!(st = load_model_weights(f, m, c, err))) st = load_meta(f, m, c, err);
    if (!st) st = cnnviz_model_check_finite(m, path, err);
done:
    free(version);
    if (st) {
        cnnviz_model_free(m);
        m = NULL;
        free(config);
        config = NULL;
    }
    if (config_out) *config_out = config;
    else free(config);
    *out = m;
    return st;
}

/* --- dispatch --------------------------------------------------------------- */

static const unsigned char hdf5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* The HDF5 superblock sits at 0 or, after a user block, at 512, 1024, 2048,
 * ... (a power of two; HDF5 spec, "Format Signature"). */
static int has_hdf5_magic(const unsigned char *buf, size_t len) {
    for (size_t off = 0; off + 8 <= len; off = off ? off * 2 : 512)
        if (memcmp(buf + off, hdf5_magic, 8) == 0) return 1;
    return 0;
}

cnnviz_status cnnviz_keras_load_memory(const void *buf, size_t len, const char *name, const cnnviz_load_options *opt,
                                       cnnviz_model **out, char **config_json, cnnviz_error *err) {
    *out = NULL;
    if (config_json) *config_json = NULL;
    cnnviz_load_options def;
    if (!opt) cnnviz_load_options_init(&def), opt = &def;
    const unsigned char *b = buf;
    if (len > opt->max_file_bytes)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, name, "the file is %zu bytes, over the limit of %zu", len,
                                opt->max_file_bytes);
    if (len >= 4 && memcmp(b, "PK\003\004", 4) == 0)
        return cnnviz_keras_load_zip_memory(buf, len, name, opt, out, config_json, err);
    if (!has_hdf5_magic(b, len)) {
        /* what a clone without git-lfs leaves in place of the model */
        if (len >= 40 && memcmp(b, "version https://git-lfs.github.com/spec/", 40) == 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, name, "git lfs pointer, not the model file (run git lfs pull)");
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, name, "not a Keras model file (neither HDF5 nor .keras zip)");
    }
    hid_t f = cnnviz_keras_open_image(buf, len);
    if (f < 0) return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, name, "truncated or damaged HDF5 file");
    h5_ctx c = {opt, len, opt->max_config_bytes, name};
    cnnviz_status st;
    /* HDF5 prints its error stack on failures unless told not to; the library
     * never prints, so silence it for the duration of the load */
    H5E_BEGIN_TRY {
        st = load_h5(f, &c, out, config_json, err);
        H5Fclose(f);
    } H5E_END_TRY;
    return st;
}

cnnviz_status cnnviz_model_load_memory(const void *buf, size_t len, const char *name, const cnnviz_load_options *opt,
                                       cnnviz_model **out, cnnviz_error *err) {
    return cnnviz_keras_load_memory(buf, len, name, opt, out, NULL, err);
}

/* The whole file in a malloc'd buffer, refused unread past max bytes. */
static cnnviz_status read_file_capped(const char *path, size_t max, unsigned char **buf, size_t *len,
                                      cnnviz_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat sb = {0};
    cnnviz_status st = CNNVIZ_OK;
    /* regular files are sized up front; a pipe or a device is read up to the cap */
    size_t cap = fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 1 << 16;
    if (S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > max) {
        fclose(fp);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the file is %jd bytes, over the limit of %zu",
                                (intmax_t)sb.st_size, max);
    }
    unsigned char *b = malloc(cap);
    size_t n = 0;
    while (b) {
        n += fread(b + n, 1, cap - n, fp);
        if (n < cap) break;
        if (n > max) break;
        unsigned char *nb = realloc(b, cap * 2);
        if (!nb) free(b);
        b = nb;
        cap *= 2;
    }
    if (!b)
        st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    else if (ferror(fp))
        st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot read: %s", strerror(errno));
    else if (n > max)
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "the file is over the limit of %zu bytes", max);
    fclose(fp);
    if (st) free(b);
    else *buf = b, *len = n;
    return st;
}

cnnviz_status cnnviz_model_load_in_process(const char *path, cnnviz_model **out, cnnviz_error *err) {
    cnnviz_load_options opt;
    cnnviz_load_options_init(&opt);
    *out = NULL;
    unsigned char *buf;
    size_t len;
    cnnviz_status st = read_file_capped(path, opt.max_file_bytes, &buf, &len, err);
    if (st) return st;
    if (len == 0) st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "not a Keras model file (neither HDF5 nor .keras zip)");
    else st = cnnviz_keras_load_memory(buf, len, path, &opt, out, NULL, err);
    free(buf);
    return st;
}
