/* cnnviz explain: attribution maps for images (saliency, SmoothGrad,
 * Integrated Gradients, Grad-CAM, Grad-CAM++, Score-CAM, occlusion) as a
 * figure, as data (--dump) and as numbers (--json). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cnnviz/explain.h"
#include "cnnviz/io.h"
#include "cnnviz/render.h"
#include "render_cli.h"

enum {
    OPT_METHOD = OPT_FIRST_COMMAND_OPTION,
    OPT_CLASS,
    OPT_LAYER,
    OPT_DUMP,
    OPT_NOISE,
    OPT_SAMPLES,
    OPT_BASELINE,
    OPT_STEPS,
    OPT_PATCH,
    OPT_STRIDE,
    OPT_NO_PREPROCESS,
    OPT_PIXEL,
};

static const cli_option options[] = {
    {"method", OPT_METHOD, "M", "saliency, smoothgrad, integrated-gradients, gradcam, gradcam++,\n"
                                "                           scorecam, occlusion or all (repeatable; default: all the\n"
                                "                           model allows)"},
    {"class", OPT_CLASS, "K|predicted", "the class explained (default: each image's predicted class)"},
    {"layer", OPT_LAYER, "L", "the CAM layer, by Keras name or index (default: the last Conv2D, or the\n"
                              "                           Activation after it)"},
    {"output", 'o', "FILE", "the figure: .png (default explain.png), .svg or .pdf"},
    {"dump", OPT_DUMP, "FILE.h5|DIR/", "also write the raw maps: one HDF5 dataset, or one .npy file, per method"},
    {"noise", OPT_NOISE, "SIGMA", "smoothgrad: noise as a fraction of the image's range (default 0.15)"},
    {"samples", OPT_SAMPLES, "N", "smoothgrad: noisy copies (default 20)"},
    {"baseline", OPT_BASELINE, "V", "integrated gradients' and occlusion's baseline value (default 0)"},
    {"steps", OPT_STEPS, "M", "integrated gradients: steps (default 64)"},
    {"patch", OPT_PATCH, "P", "occlusion: patch side in pixels (default 4)"},
    {"stride", OPT_STRIDE, "S", "occlusion: stride in pixels (default 2)"},
    {"pixel", OPT_PIXEL, "N", "figure pixels per input pixel (default: tiles of about 112 px)"},
    {"no-preprocess", OPT_NO_PREPROCESS, NULL, "take a 28x28 image as it is (no inversion, cropping or centring)"},
    {0},
};

static const cli_spec spec = {
    .name = "explain",
    .usage = "[MODEL] IMAGE... [options]",
    .summary = "Which pixels made the model choose a class: attribution maps of the class's logit (the input\n"
               "of the final softmax) for each IMAGE (a PNG or JPEG file or IDXFILE@K). saliency: the\n"
               "gradient; smoothgrad: its mean over noisy copies; integrated-gradients: (x - x') times the\n"
               "mean gradient on the path from the baseline x'; gradcam, gradcam++, scorecam: weighted\n"
               "maps of a conv layer; occlusion: the score lost when a patch is set to the baseline.",
    .details = "The figure (written unless only --dump or --json is given, or -o is) has a row per image:\n"
               "the input and a panel per method with the map laid over it. --dump FILE.h5 writes one\n"
               "float32 dataset per method, named after it, of shape (N, ...) in the method's own\n"
               "resolution with raw values (input size for the gradient methods, the layer's for the CAM\n"
               "methods, the patch positions for occlusion), and 'class', 'score', 'probability' and\n"
               "'input' (N, H, W, C); --dump DIR/ writes the same as .npy files. --json prints per image\n"
               "the class, probability and score and per method the map's min and max (and integrated\n"
               "gradients' completeness error). The same command gives the same bytes every time.",
    .options = options,
    .common = CLI_COMMON_THREADS | CLI_COMMON_JSON | CLI_COMMON_QUIET | CLI_COMMON_DEVICE | CLI_COMMON_SEED |
              CLI_COMMON_SCALE,
};

typedef struct {
    unsigned methods;
    const char *class_arg, *layer, *output, *dump;
    cnnviz_explain_options eo;
    int preprocess, pixel;
} explain_args;

static int parse_method(const char *arg, unsigned *methods) {
    if (!strcmp(arg, "all")) {
        *methods |= (1u << CNNVIZ_EXPLAIN_METHOD_COUNT) - 1;
        return 0;
    }
    int m = cnnviz_explain_method_parse(arg);
    if (m < 0)
        return cli_usage_error(spec.name, "--method: '%s' is not a method (saliency, smoothgrad, "
                               "integrated-gradients, gradcam, gradcam++, scorecam, occlusion, all)", arg);
    *methods |= 1u << m;
    return 0;
}

static int parse_count(const char *opt, const char *arg, int *out) {
    long v;
    if (cli_parse_int(spec.name, opt, arg, 1, 1000000, &v)) return CLI_USAGE;
    *out = (int)v;
    return 0;
}

static int parse_real(const char *opt, const char *arg, float *out, int nonneg) {
    double v;
    if (cli_parse_float(spec.name, opt, arg, &v)) return CLI_USAGE;
    if (!isfinite(v) || (nonneg && v < 0))
        return cli_usage_error(spec.name, "%s: '%s' must be a finite%s number", opt, arg, nonneg ? " non-negative" : "");
    *out = (float)v;
    return 0;
}

static int on_option(int key, const char *arg, void *ctx) {
    explain_args *a = ctx;
    switch (key) {
    case OPT_METHOD: return parse_method(arg, &a->methods);
    case OPT_CLASS: a->class_arg = arg; return 0;
    case OPT_LAYER: a->layer = arg; return 0;
    case 'o': a->output = arg; return 0;
    case OPT_DUMP: a->dump = arg; return 0;
    case OPT_NOISE: return parse_real("--noise", arg, &a->eo.noise, 1);
    case OPT_SAMPLES: return parse_count("--samples", arg, &a->eo.samples);
    case OPT_BASELINE: return parse_real("--baseline", arg, &a->eo.baseline, 0);
    case OPT_STEPS: return parse_count("--steps", arg, &a->eo.steps);
    case OPT_PATCH: return parse_count("--patch", arg, &a->eo.patch);
    case OPT_STRIDE: return parse_count("--stride", arg, &a->eo.stride);
    case OPT_PIXEL: return render_cli_pixel(spec.name, arg, &a->pixel);
    case OPT_NO_PREPROCESS: a->preprocess = 0; return 0;
    }
    return cli_usage_error(spec.name, "option is not known");
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* What the run made: per image its class, score and probability, per
 * method its maps (and integrated gradients' completeness errors). */
typedef struct {
    int n, nmethods;
    int method[CNNVIZ_EXPLAIN_METHOD_COUNT];
    cnnviz_shape shape[CNNVIZ_EXPLAIN_METHOD_COUNT];
    float *maps[CNNVIZ_EXPLAIN_METHOD_COUNT];
    float *completeness;
    int *cls;
    float *score, *prob;
    float *x;
    cnnviz_shape in_shape;
} explain_result;

static void result_free(explain_result *r) {
    for (int k = 0; k < r->nmethods; k++) free(r->maps[k]);
    free(r->completeness);
    free(r->cls);
    free(r->score);
    free(r->prob);
    free(r->x);
}

/* Many IDXFILE@K arguments of one file read it once (cli_load_input
 * would read the whole file for each). */
typedef struct {
    char path[4096];
    cnnviz_idx_images im;
    int loaded;
} idx_cache;

static int idx_ref(const char *arg, char *path, size_t n, long *k) {
    const char *at = strrchr(arg, '@');
    if (!at || at == arg || !at[1] || (size_t)(at - arg) >= n) return 0;
    char *end;
    errno = 0;
    *k = strtol(at + 1, &end, 10);
    if (*end || errno || *k < 0 || at[1] < '0' || at[1] > '9') return 0;
    memcpy(path, arg, (size_t)(at - arg));
    path[at - arg] = 0;
    return 1;
}

static int load_image(const cnnviz_model *m, const char *arg, const explain_args *a, const cli_common *common,
                      idx_cache *c, float *x) {
    char path[4096];
    long k;
    cnnviz_shape in = cnnviz_model_input_shape(m);
    size_t size = cnnviz_shape_size(&in);
    if (!idx_ref(arg, path, sizeof path, &k) || common->transpose || size != 784)
        return cli_load_input(m, arg, a->preprocess, common, x);
    if (!c->loaded || strcmp(c->path, path)) {
        if (c->loaded) cnnviz_idx_images_free(&c->im);
        c->loaded = 0;
        cnnviz_error err;
        cnnviz_error_clear(&err);
        if (cnnviz_idx_load_images(path, &c->im, &err) != CNNVIZ_OK) return cli_report(&err);
        snprintf(c->path, sizeof c->path, "%s", path);
        c->loaded = 1;
    }
    if (k >= c->im.count)
        return cli_error(path, "image index %ld is out of range (the file has %d images)", k, c->im.count);
    if ((size_t)c->im.rows * (size_t)c->im.cols != size) return cli_load_input(m, arg, a->preprocess, common, x);
    cnnviz_scale_pixels(c->im.pixels + (size_t)k * size, x, size, cnnviz_model_input_scale(m));
    return 0;
}

static int model_has_conv(const cnnviz_model *m) {
    for (int i = 0; i < cnnviz_model_num_layers(m); i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        if (li.type == CNNVIZ_LAYER_CONV2D) return 1;
    }
    return 0;
}

/* --class and --layer against the model; usage errors name the model */
static int resolve_model_options(const cnnviz_model *m, const char *model_path, explain_args *a) {
    if (a->class_arg && strcmp(a->class_arg, "predicted")) {
        long k;
        if (cli_parse_int(spec.name, "--class", a->class_arg, 0, 1000000, &k)) return CLI_USAGE;
        a->eo.class_index = (int)k;
    }
    if (a->layer) {
        a->eo.layer = cnnviz_model_find_layer(m, a->layer);
        if (a->eo.layer < 0) {
            render_cli_unknown_layer(m, model_path, a->layer);
            return CLI_USAGE;
        }
    }
    if (!a->methods) {
        int cam = a->layer || model_has_conv(m);
        for (int k = 0; k < CNNVIZ_EXPLAIN_METHOD_COUNT; k++)
            if (cam || !cnnviz_explain_method_uses_layer(k)) a->methods |= 1u << k;
    }
    return 0;
}

static int run_methods(cnnviz_explainer *ex, explain_result *r) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_explain_classify(ex, r->x, r->n, r->cls, r->score, r->prob, &err)) return cli_report(&err);
    for (int j = 0; j < r->nmethods; j++) {
        int k = r->method[j];
        r->shape[j] = cnnviz_explain_map_shape(ex, k);
        size_t size = cnnviz_shape_size(&r->shape[j]);
        r->maps[j] = malloc((size_t)r->n * size * sizeof(float));
        if (!r->maps[j]) return cli_error(NULL, "out of memory");
        float *comp = k == CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS ? r->completeness : NULL;
        if (cnnviz_explain_run(ex, k, r->x, r->n, r->cls, r->maps[j], comp, &err)) return cli_report(&err);
    }
    return 0;
}

static int is_dump_dir(const char *dump) {
    struct stat st;
    size_t len = strlen(dump);
    return (len && dump[len - 1] == '/') || (stat(dump, &st) == 0 && S_ISDIR(st.st_mode));
}

static cnnviz_dataset dataset(const char *name, const float *data, int n, const cnnviz_shape *s) {
    cnnviz_dataset d = {name, data, 1, {n}};
    for (int i = 0; s && i < s->rank; i++) d.dims[d.rank++] = s->dim[i];
    return d;
}

/* One dataset per method, then class, score, probability, input (and
 * integrated gradients' completeness errors) */
static int write_dump(const char *dump, const explain_result *r) {
    cnnviz_dataset sets[CNNVIZ_EXPLAIN_METHOD_COUNT + 5];
    int ns = 0, ig = 0;
    float *cls = malloc((size_t)r->n * sizeof *cls);
    if (!cls) return cli_error(NULL, "out of memory");
    for (int i = 0; i < r->n; i++) cls[i] = (float)r->cls[i];
    for (int j = 0; j < r->nmethods; j++) {
        sets[ns++] = dataset(cnnviz_explain_method_name(r->method[j]), r->maps[j], r->n, &r->shape[j]);
        ig |= r->method[j] == CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS;
    }
    sets[ns++] = dataset("class", cls, r->n, NULL);
    sets[ns++] = dataset("score", r->score, r->n, NULL);
    sets[ns++] = dataset("probability", r->prob, r->n, NULL);
    sets[ns++] = dataset("input", r->x, r->n, &r->in_shape);
    if (ig) sets[ns++] = dataset("completeness", r->completeness, r->n, NULL);
    cnnviz_error err;
    cnnviz_error_clear(&err);
    int rc = 0;
    if (is_dump_dir(dump)) {
        struct stat st;
        size_t len = strlen(dump);
        if (stat(dump, &st) != 0 && mkdir(dump, 0777) != 0)
            rc = cli_error(dump, "cannot create the folder: %s", strerror(errno));
        for (int i = 0; i < ns && !rc; i++) {
            char path[4352];
            snprintf(path, sizeof path, "%s%s%s.npy", dump, dump[len - 1] == '/' ? "" : "/", sets[i].name);
            if (cnnviz_npy_write(path, sets[i].data, sets[i].dims, sets[i].rank, &err) != CNNVIZ_OK)
                rc = cli_report(&err);
        }
    } else if (cnnviz_h5_write_datasets(dump, sets, ns, &err) != CNNVIZ_OK) {
        rc = cli_report(&err);
    }
    free(cls);
    return rc;
}

static void range(const float *v, size_t n, float *lo, float *hi) {
    *lo = *hi = n ? v[0] : 0;
    for (size_t i = 1; i < n; i++) *lo = v[i] < *lo ? v[i] : *lo, *hi = v[i] > *hi ? v[i] : *hi;
}

static int print_json(const explain_result *r, char **names) {
    cJSON *root = cJSON_CreateArray();
    for (int i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", names[i]);
        cJSON_AddNumberToObject(o, "class", r->cls[i]);
        cJSON_AddNumberToObject(o, "probability", r->prob[i]);
        cJSON_AddNumberToObject(o, "score", r->score[i]);
        cJSON *ms = cJSON_AddObjectToObject(o, "methods");
        for (int j = 0; j < r->nmethods; j++) {
            size_t size = cnnviz_shape_size(&r->shape[j]);
            float lo, hi;
            range(r->maps[j] + (size_t)i * size, size, &lo, &hi);
            cJSON *mo = cJSON_AddObjectToObject(ms, cnnviz_explain_method_name(r->method[j]));
            cJSON_AddNumberToObject(mo, "min", lo);
            cJSON_AddNumberToObject(mo, "max", hi);
            if (r->method[j] == CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS)
                cJSON_AddNumberToObject(mo, "completeness_error", r->completeness[i]);
        }
        cJSON_AddItemToArray(root, o);
    }
    char *s = cJSON_PrintUnformatted(root);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(root);
    return s ? 0 : cli_error(NULL, "out of memory");
}

/* The input as a picture (a flat 784 is 28 x 28) */
static void picture_shape(const cnnviz_shape *in, int *h, int *w, int *c) {
    size_t size = cnnviz_shape_size(in);
    if (in->rank == 3) {
        *h = in->dim[0], *w = in->dim[1], *c = in->dim[2];
        return;
    }
    int side = (int)lround(sqrt((double)size));
    *c = 1;
    if ((size_t)side * side == size) *h = *w = side;
    else *h = 1, *w = (int)size;
}

/* Each method's maps at the input's resolution: channels summed, layer and
 * patch grids resized by bilinear interpolation. */
static int display_maps(const explain_result *r, int h, int w, int c, float **shown) {
    size_t hw = (size_t)h * w;
    for (int j = 0; j < r->nmethods; j++) {
        if (!(shown[j] = malloc((size_t)r->n * hw * sizeof(float)))) return -1;
        size_t size = cnnviz_shape_size(&r->shape[j]);
        for (int i = 0; i < r->n; i++) {
            const float *src = r->maps[j] + (size_t)i * size;
            float *dst = shown[j] + (size_t)i * hw;
            if (r->method[j] <= CNNVIZ_EXPLAIN_INTEGRATED_GRADIENTS) {
                for (size_t p = 0; p < hw; p++) {
                    double s = 0;
                    for (int k = 0; k < c; k++) s += src[p * c + k];
                    dst[p] = (float)s;
                }
            } else if (cnnviz_explain_resize(src, r->shape[j].dim[0], r->shape[j].dim[1], h, w, dst)) {
                return -1;
            }
        }
    }
    return 0;
}

static int draw_figure(const char *output, const char *model_path, const explain_result *r, char **names,
                       const explain_args *a, const cli_common *common) {
    int h, w, c, rc = 0;
    picture_shape(&r->in_shape, &h, &w, &c);
    float *shown[CNNVIZ_EXPLAIN_METHOD_COUNT] = {0};
    const char *mnames[CNNVIZ_EXPLAIN_METHOD_COUNT];
    int signed_maps[CNNVIZ_EXPLAIN_METHOD_COUNT];
    const char **labels = malloc((size_t)r->n * sizeof *labels);
    if (!labels || display_maps(r, h, w, c, shown)) rc = cli_error(NULL, "out of memory");
    for (int j = 0; j < r->nmethods; j++) {
        mnames[j] = cnnviz_explain_method_name(r->method[j]);
        signed_maps[j] = !cnnviz_explain_method_uses_layer(r->method[j]);
    }
    for (int i = 0; !rc && i < r->n; i++) labels[i] = base_name(names[i]);
    render_cli_provenance prov;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)common->seed);
    if (!rc) rc = render_cli_provenance_init(&prov, model_path, common->seed_set ? seed : NULL);
    if (!rc) {
        cnnviz_explain_figure f = {r->n, r->nmethods, h, w, c, r->x, labels, r->cls, r->prob,
                                   mnames, (const float *const *)shown, signed_maps};
        cnnviz_render_options ro = cnnviz_render_options_default();
        char title[512];
        snprintf(title, sizeof title, "explain \xc2\xb7 %s", base_name(model_path));
        ro.title = title;
        ro.pixel = a->pixel;
        ro.prov = prov.prov;
        cnnviz_error err;
        cnnviz_error_clear(&err);
        if (cnnviz_render_explain(output, &f, &ro, &err) != CNNVIZ_OK) rc = cli_report(&err);
    }
    for (int j = 0; j < r->nmethods; j++) free(shown[j]);
    free(labels);
    return rc;
}

/* Load every image, then make the explainer (option errors are usage errors). */
static int prepare(const cnnviz_model *m, const char *model_path, char **images, explain_args *a,
                   const cli_common *common, explain_result *r, cnnviz_explainer **ex) {
    r->in_shape = cnnviz_model_input_shape(m);
    size_t in = cnnviz_shape_size(&r->in_shape);
    r->x = malloc((size_t)r->n * in * sizeof *r->x);
    r->cls = malloc((size_t)r->n * sizeof *r->cls);
    r->score = malloc((size_t)r->n * sizeof *r->score);
    r->prob = malloc((size_t)r->n * sizeof *r->prob);
    r->completeness = calloc((size_t)r->n, sizeof *r->completeness);
    if (!r->x || !r->cls || !r->score || !r->prob || !r->completeness) return cli_error(NULL, "out of memory");
    for (int k = 0; k < CNNVIZ_EXPLAIN_METHOD_COUNT; k++)
        if (a->methods >> k & 1) r->method[r->nmethods++] = k;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    *ex = cnnviz_explainer_new(m, &a->eo, a->methods, &err);
    if (!*ex) {
        cli_error(model_path, "%s", err.msg);
        return err.code == CNNVIZ_ERR_INVALID ? CLI_USAGE : CLI_RUNTIME;
    }
    idx_cache cache = {0};
    int rc = 0;
    for (int i = 0; i < r->n && !rc; i++) rc = load_image(m, images[i], a, common, &cache, r->x + (size_t)i * in);
    if (cache.loaded) cnnviz_idx_images_free(&cache.im);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    explain_args a;
    memset(&a, 0, sizeof a);
    cnnviz_explain_options_init(&a.eo);
    a.preprocess = 1;
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &a, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    a.eo.seed = common.seed;
    const char *model_path = NULL;
    char **images = argv;
    if (npos >= 1 && cli_is_model_path(argv[0])) model_path = argv[0], images++, npos--;
    if (npos < 1) return cli_usage_error(spec.name, "no IMAGE given");
    /* the figure unless the caller asked only for data */
    const char *output = a.output ? a.output : a.dump || common.json ? NULL : "explain.png";
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (output && cnnviz_render_check_path(output, &err) != CNNVIZ_OK) {
        cli_error(output, "%s", err.msg);
        return CLI_USAGE;
    }
    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;
    if (!model_path) model_path = cli_default_model();
    explain_result r = {.n = npos};
    cnnviz_explainer *ex = NULL;
    rc = resolve_model_options(m, model_path, &a);
    if (!rc) rc = prepare(m, model_path, images, &a, &common, &r, &ex);
    if (!rc) rc = run_methods(ex, &r);
    if (!rc && a.dump) rc = write_dump(a.dump, &r);
    if (!rc && output) rc = draw_figure(output, model_path, &r, images, &a, &common);
    if (!rc && common.json) rc = print_json(&r, images);
    else if (!rc && !common.quiet) {
        printf("explained %d image%s", r.n, r.n == 1 ? "" : "s");
        if (output) printf(", wrote %s", output);
        if (a.dump) printf("%s%s", output ? " and " : ", wrote ", a.dump);
        printf("\n");
    }
    cnnviz_explainer_free(ex);
    result_free(&r);
    cnnviz_model_free(m);
    return cli_finish_stdout(rc);
}
