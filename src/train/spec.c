/* The compact architecture spec: "C32k3-P2-C64k3-P2-C64k3-F-D70-D10".
 *
 * Items are separated by '-' (a '-' inside a number's exponent, as in
 * l2=1e-3, belongs to the number). The help text below is the grammar's only
 * description, so `cnnviz train --help` and this parser cannot drift apart. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/train.h"

static const char spec_help[] =
    "Architecture spec (--arch): layers separated by '-', e.g. C32k3-P2-C64k3-P2-C64k3-F-D70-D10\n"
    "  C<filters>   Conv2D, relu. Options: k<n> or k<h>x<w> kernel (default 3), s<n> or s<h>x<w>\n"
    "               strides (default 1), same or valid padding (default valid)\n"
    "  P<n>         MaxPooling2D, n x n window (default 2). Options: s<n> strides (default n), same\n"
    "  A<n>         AveragePooling2D, the same options as P\n"
    "  F            Flatten (keeps Keras' height, width, channel order)\n"
    "  D<units>     Dense, relu; the LAST item must be a Dense and gets softmax\n"
    "  Dr<rate>     Dropout, e.g. Dr0.25 (active in training only)\n"
    "  C and D also take l1=<x> and l2=<x> (kernel regularizers, like Keras' L1L2) and\n"
    "  :<activation> to replace relu/softmax: linear, relu, sigmoid, tanh, elu, softmax.\n"
    "  Examples: C32k5-P2-C64k5-P2-F-D10, C32k3same-C32k3-P2-Dr0.25-F-D128l2=0.001-D10.\n"
    "  Layers get Keras' default names (conv2d, conv2d_1, ..., dense, dense_1). The input\n"
    "  is 28x28x1. BatchNormalization is not offered: cnnviz runs it in inference mode only.";

const char *cnnviz_spec_help(void) { return spec_help; }

/* Split point: a '-' that is not the sign of a number's exponent. */
static const char *item_end(const char *s) {
    for (const char *p = s; *p; p++)
        if (*p == '-' && !(p > s && (p[-1] == 'e' || p[-1] == 'E') && p - 1 > s && isdigit((unsigned char)p[-2])))
            return p;
    return s + strlen(s);
}

/* Read a positive integer at *p; advance. 0 when there is none. */
static long read_count(const char **p) {
    if (!isdigit((unsigned char)**p)) return 0;
    char *end;
    long v = strtol(*p, &end, 10);
    *p = end;
    return v > 0 && v < 1000000 ? v : 0;
}

/* n or <h>x<w> into pair[2]; 0 on a malformed value. */
static int read_pair(const char **p, int pair[2]) {
    long a = read_count(p);
    if (!a) return 0;
    long b = a;
    if (**p == 'x') {
        (*p)++;
        b = read_count(p);
        if (!b) return 0;
    }
    pair[0] = (int)a;
    pair[1] = (int)b;
    return 1;
}

static int read_float(const char **p, float *out) {
    char *end;
    double v = strtod(*p, &end);
    if (end == *p) return 0;
    *p = end;
    *out = (float)v;
    return 1;
}

static int read_activation(const char **p, cnnviz_activation *a) {
    static const struct {
        const char *name;
        cnnviz_activation act;
    } acts[] = {{"linear", CNNVIZ_ACT_LINEAR}, {"relu", CNNVIZ_ACT_RELU}, {"sigmoid", CNNVIZ_ACT_SIGMOID},
                {"tanh", CNNVIZ_ACT_TANH},     {"elu", CNNVIZ_ACT_ELU},   {"softmax", CNNVIZ_ACT_SOFTMAX}};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        size_t n = strlen(acts[i].name);
        if (strncmp(*p, acts[i].name, n) == 0) {
            *p += n;
            *a = acts[i].act;
            return 1;
        }
    }
    return 0;
}

static int starts(const char **p, const char *word) {
    size_t n = strlen(word);
    if (strncmp(*p, word, n) != 0) return 0;
    *p += n;
    return 1;
}

/* Options after the leading number of a C, P, A or D item; end is the item's end.
 * Returns 0 on success, else points *bad at the offending option. */
static int parse_options(const char *p, const char *end, cnnviz_layer_spec *s, int *act_set, const char **bad) {
    int is_conv = s->type == CNNVIZ_LAYER_CONV2D, is_pool = s->type == CNNVIZ_LAYER_MAXPOOL2D || s->type == CNNVIZ_LAYER_AVGPOOL2D;
    int is_dense = s->type == CNNVIZ_LAYER_DENSE;
    while (p < end) {
        *bad = p;
        if (is_conv && *p == 'k') {
            p++;
            if (!read_pair(&p, s->kernel)) return -1;
        } else if ((is_conv || is_pool) && *p == 's' && isdigit((unsigned char)p[1])) {
            p++;
            if (!read_pair(&p, s->strides)) return -1;
        } else if ((is_conv || is_pool) && starts(&p, "same")) {
            s->padding = CNNVIZ_PAD_SAME;
        } else if ((is_conv || is_pool) && starts(&p, "valid")) {
            s->padding = CNNVIZ_PAD_VALID;
        } else if ((is_conv || is_dense) && starts(&p, "l1=")) {
            if (!read_float(&p, &s->l1) || s->l1 < 0) return -1;
        } else if ((is_conv || is_dense) && starts(&p, "l2=")) {
            if (!read_float(&p, &s->l2) || s->l2 < 0) return -1;
        } else if ((is_conv || is_dense) && *p == ':') {
            p++;
            if (!read_activation(&p, &s->activation)) return -1;
            *act_set = 1;
        } else {
            return -1;
        }
        if (p > end) return -1; /* a number ran into the next item */
    }
    return 0;
}

/* Parse one item [item, end) into s. Returns 0, or an error message in msg. */
static int parse_item(const char *item, const char *end, cnnviz_layer_spec *s, int *act_set, char *msg, size_t n) {
    int len = (int)(end - item);
    const char *p = item + 1, *bad = item;
    *act_set = 0;
    long count = 0;
    switch (item[0]) {
    case 'C':
        *s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
        s->activation = CNNVIZ_ACT_RELU;
        if (!(count = read_count(&p))) goto no_number;
        s->filters = (int)count;
        break;
    case 'P':
    case 'A':
        *s = cnnviz_layer_spec_init(item[0] == 'P' ? CNNVIZ_LAYER_MAXPOOL2D : CNNVIZ_LAYER_AVGPOOL2D);
        if (isdigit((unsigned char)*p) && !read_pair(&p, s->pool)) goto no_number;
        break;
    case 'F':
        *s = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
        bad = p;
        if (p != end) goto bad_option;
        return 0;
    case 'D':
        if (item[1] == 'r') {
            *s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
            p++;
            if (!read_float(&p, &s->rate) || p != end || !(s->rate >= 0.0f && s->rate < 1.0f)) {
                snprintf(msg, n, "dropout '%.*s' needs a rate in [0, 1), e.g. Dr0.25", len, item);
                return -1;
            }
            return 0;
        }
        *s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
        s->activation = CNNVIZ_ACT_RELU;
        if (!(count = read_count(&p))) goto no_number;
        s->units = (int)count;
        break;
    default:
        snprintf(msg, n, "unknown layer '%.*s'", len, item);
        return -1;
    }
    if (parse_options(p, end, s, act_set, &bad) == 0) return 0;
bad_option:
    snprintf(msg, n, "bad option '%.*s' in '%.*s'", (int)(end - bad), bad, len, item);
    return -1;
no_number:
    snprintf(msg, n, "'%.*s' needs a positive size after '%c'", len, item, item[0]);
    return -1;
}

/* Budget of a spec, checked in size_t before a layer is built (the layers
 * size themselves in int, and a spec such as C1k46341x46341same or
 * C37777-F-D96 would overflow it or ask for gigabytes): an MNIST-scale
 * model has tens of millions of weights at most, and no layer's output
 * comes near a hundred million values a sample. */
#define SPEC_MAX_WEIGHTS ((size_t)100000000)
#define SPEC_MAX_OUTPUTS ((size_t)100000000)

/* 0 when item s, on input `in`, keeps the model within the budget (adding
 * its weights to *total); else -1 with the reason in msg. */
static int check_budget(const cnnviz_layer_spec *s, const cnnviz_shape *in, size_t *total, const char *item, int len,
                        char *msg, size_t n) {
    size_t weights = 0, outputs = 0;
    if (s->type == CNNVIZ_LAYER_CONV2D && in->rank == 3) {
        size_t kernel = (size_t)s->kernel[0] * (size_t)s->kernel[1] * (size_t)in->dim[2];
        weights = (kernel + 1) * (size_t)s->filters;
        /* no padding or stride makes the output larger than the input's side */
        outputs = (size_t)in->dim[0] * (size_t)in->dim[1] * (size_t)s->filters;
    } else if (s->type == CNNVIZ_LAYER_DENSE && in->rank == 1) {
        weights = ((size_t)in->dim[0] + 1) * (size_t)s->units;
    }
    if (outputs > SPEC_MAX_OUTPUTS) {
        snprintf(msg, n, "'%.*s' would give %zu values a sample, over the limit of %zu", len, item, outputs,
                 SPEC_MAX_OUTPUTS);
        return -1;
    }
    if (weights > SPEC_MAX_WEIGHTS || *total + weights > SPEC_MAX_WEIGHTS) {
        snprintf(msg, n, "'%.*s' would bring the model to %zu weights, over the limit of %zu", len, item,
                 *total + weights, SPEC_MAX_WEIGHTS);
        return -1;
    }
    *total += weights;
    return 0;
}

cnnviz_status cnnviz_model_from_spec(const char *spec, const cnnviz_shape *input, cnnviz_model **out,
                                     cnnviz_error *err) {
    *out = NULL;
    if (!spec || !*spec) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "arch '': the spec is empty");
    cnnviz_model *m = cnnviz_model_new(input);
    if (!m) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    char msg[512], detail[1100] = "";
    int pos = 0;
    cnnviz_shape shape = *input;
    size_t weights = 0;
    const char *item = spec;
    for (;;) {
        const char *end = item_end(item);
        int len = (int)(end - item);
        pos++;
        cnnviz_layer_spec s;
        int act_set = 0;
        if (len == 0) {
            snprintf(msg, sizeof msg, "empty layer");
            goto fail;
        }
        if (parse_item(item, end, &s, &act_set, msg, sizeof msg)) goto fail;
        if (s.type == CNNVIZ_LAYER_DENSE && shape.rank != 1) {
            snprintf(msg, sizeof msg, "'%.*s' needs a flat input: put F before it", len, item);
            goto fail;
        }
        int is_last = *end == 0;
        if (is_last && s.type != CNNVIZ_LAYER_DENSE) {
            snprintf(msg, sizeof msg, "the last layer must be D<units> (the softmax output), not '%.*s'", len, item);
            goto fail;
        }
        if (is_last && !act_set) s.activation = CNNVIZ_ACT_SOFTMAX;
        if (check_budget(&s, &shape, &weights, item, len, msg, sizeof msg)) goto fail;
        cnnviz_error sub;
        cnnviz_error_clear(&sub);
        if (cnnviz_model_add(m, &s, &sub) != CNNVIZ_OK) {
            snprintf(msg, sizeof msg, "cannot build '%.*s'", len, item);
            snprintf(detail, sizeof detail, ": %s", sub.msg);
            goto fail;
        }
        cnnviz_layer_info info;
        cnnviz_model_layer_info(m, cnnviz_model_num_layers(m) - 1, &info);
        shape = info.output_shape;
        if (is_last) break;
        item = end + 1;
    }
    if (cnnviz_model_finalize(m, err) != CNNVIZ_OK) {
        cnnviz_model_free(m);
        return err ? err->code : CNNVIZ_ERR_NOMEM;
    }
    *out = m;
    return CNNVIZ_OK;
fail:
    cnnviz_model_free(m);
    return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "arch '%s': %s at position %d%s", spec, msg, pos, detail);
}
