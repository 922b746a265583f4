/* cnnviz filters: optimal input patterns, one per map of a layer, found by
 * gradient ascent on the input (the library's cnnviz_oip_run), drawn as a
 * grid and optionally dumped as data. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cnnviz/io.h"
#include "cnnviz/oip.h"
#include "cnnviz/render.h"
#include "render_cli.h"

enum {
    OPT_LAYER = OPT_FIRST_COMMAND_OPTION,
    OPT_MAPS,
    OPT_NEURON,
    OPT_STEPS,
    OPT_STEP,
    OPT_CONSTANT_STEP,
    OPT_GRAD_NORM,
    OPT_INIT,
    OPT_LEAK,
    OPT_L2_DECAY,
    OPT_BLUR_EVERY,
    OPT_BLUR_SIGMA,
    OPT_TV,
    OPT_JITTER,
    OPT_RESTARTS,
    OPT_BATCH,
    OPT_DUMP,
    OPT_SNAPSHOTS,
    OPT_CMAP,
    OPT_PIXEL,
    OPT_TITLE,
    OPT_PRE_ACTIVATION,
    OPT_SORT,
    OPT_TOP,
    OPT_WEAK,
    OPT_CLASS_NAMES,
    OPT_PRESET,
};

static const cli_option options[] = {
    {"layer", 'l', "L", "the layer, by Keras name or index (required)"},
    {"maps", OPT_MAPS, "LIST", "maps to run, e.g. 0-7,12 (default: all)"},
    {"neuron", OPT_NEURON, "Y,X", "maximise one neuron of each map instead of the map's mean"},
    {"steps", OPT_STEPS, "N", "ascent steps per start (default 200)"},
    {"step", OPT_STEP, "X", "step size in units of the input range (default 0.2)"},
    {"constant-step", OPT_CONSTANT_STEP, NULL, "keep the step size (default: it decays linearly to 0)"},
    {"grad-norm", OPT_GRAD_NORM, "N", "gradient scaling: rms (default), l2 or std"},
    {"init", OPT_INIT, "I", "start: uniform (default), multiscale, or an IMAGE (PNG/JPEG/IDXFILE@K)"},
    {"leak", OPT_LEAK, "X", "gradient slope where the layer's ReLU is off (default 0.3; 0 = plain)"},
    {"l2-decay", OPT_L2_DECAY, "X", "per step, move pixels this fraction towards black (default 0)"},
    {"blur-every", OPT_BLUR_EVERY, "K", "Gaussian blur every K steps (default: never)"},
    {"blur-sigma", OPT_BLUR_SIGMA, "S", "the blur's sigma in pixels (default 0.5)"},
    {"tv", OPT_TV, "X", "total-variation weight, relative to the normalised gradient (default 0)"},
    {"jitter", OPT_JITTER, "N", "roll the image by up to N pixels at each step (default 0)"},
    {"restarts", OPT_RESTARTS, "N", "starts per map, each with its own noise; the best is kept (default 1)"},
    {"batch", OPT_BATCH, "N", "images per batch (default 256)"},
    {"output", 'o', "FILE", "the figure: .png (default filters.png), .svg or .pdf"},
    {"dump", OPT_DUMP, "FILE.h5", "also write images, start and activations as HDF5 datasets"},
    {"snapshots", OPT_SNAPSHOTS, "K", "also write FILE-snapshots.png: each map's image every K steps, a row per map"},
    {"cmap", OPT_CMAP, "NAME", "colormap: gray (default), viridis, magma or RdBu"},
    {"pixel", OPT_PIXEL, "N", "figure pixels per input pixel (default: tiles of about 80 px)"},
    {"title", OPT_TITLE, "TEXT", "the figure's title"},
    {"preset", OPT_PRESET, "NAME", "smooth: jitter 2, blur every 4, tv 0.1, 3 restarts, multiscale start (flags after it\n"
                                   "                           override it); smoother strokes, less selective maps (bench/RESULTS.md)"},
    {"sort", OPT_SORT, "ORDER", "tiles by map (default) or activation (strongest first)"},
    {"top", OPT_TOP, "K", "draw only the K maps that reached the highest activation (--json and --dump keep all)"},
    {"weak", OPT_WEAK, "F", "mark maps below F of the layer's best activation as weak (default 0.05; 0: none)"},
    {"class-names", OPT_CLASS_NAMES, "FILE", "names of an output layer's classes, one a line, or 'fashion'"},
    {"pre-activation", OPT_PRE_ACTIVATION, NULL,
     "for a linear layer whose activation is a layer of its own: its linear output (default: the activated one)"},
    {0},
};

static const cli_spec spec = {
    .name = "filters",
    .usage = "[MODEL] --layer L [options]",
    .summary = "Find, for each map of a layer, an input image that excites it as strongly as possible\n"
               "(an \"optimal input pattern\"), by gradient ascent on the image: all maps at once, one\n"
               "image per map, pixels kept in the model's input range. The objective is the mean of the\n"
               "map after its activation, one neuron with --neuron, a unit of a Dense layer, and for a\n"
               "softmax layer the logit before the softmax. Each tile of the figure gives the map index\n"
               "and the activation reached; maps that stay at zero in every start are marked dead.",
    .details = "Each step adds step * (input range) * g / scale(g) to the image, g the gradient and\n"
               "scale its RMS (rms), standard deviation (std) or L2 norm (l2: the step is then the L2\n"
               "length of the whole change), and clips the pixels to the input range. The step decays\n"
               "linearly to 0 over the steps unless --constant-step; the best iterate is kept.\n"
               "Defaults: on the seed network's second conv layer a step of 0.2 reaches after 200 steps\n"
               "99% of the mean activation that 800 steps reach (bench_oip_quality --converge prints\n"
               "the curve); a step of 0.1 reaches 96-97% of that in the same 200 steps.\n"
               "--leak: where the pre-activation of the layer's own ReLU is <= 0 the gradient uses this\n"
               "slope, so a map that is off everywhere on the start image still climbs; the activation\n"
               "reported is always the real ReLU output. With --leak 0 a single start leaves about 40% of\n"
               "the seed network's second and third conv maps at zero; with 0.3 none that a digit excites.\n"
               "uniform: each pixel uniform over the input range; multiscale: noise on 1, 2, 4 and 8\n"
               "pixel grids, upsampled and averaged; IMAGE: that image (restarts add +-10% noise).\n"
               "Each (seed, restart, map) has its own random stream: the same seed gives the same\n"
               "patterns, PNG and dump, whatever the maps chosen or the batch size.\n"
               "--dump FILE.h5: datasets 'images' (maps, H, W, C) in the model's input scale,\n"
               "'activations' (maps), 'start' (maps, H, W, C), 'start_activations' (maps), 'maps'.\n"
               "--json prints {\"layer\",\"index\",\"maps\":[{\"map\",\"activation\",\"start_activation\",\"dead\"}]}.\n"
               "--transpose: the figure shows the patterns transposed back (strokes upright); the dump\n"
               "keeps the model's own layout.",
    .options = options,
    .common = CLI_COMMON_ALL,
};

typedef struct {
    const char *layer, *maps, *init, *output, *dump, *title;
    int neuron_set, snapshots, pre_activation, sort_activation, top;
    float weak;
    const char *class_names;
    const char *activation_of; /* the linear layer asked for, when the activated output is shown */
    cnnviz_oip_options o;
    cnnviz_render_options ro;
} filters_args;

static int parse_float_opt(const char *opt, const char *arg, double lo, double hi, float *out) {
    double v;
    if (cli_parse_float(spec.name, opt, arg, &v)) return CLI_USAGE;
    if (v < lo || v > hi) return cli_usage_error(spec.name, "--%s: %s is not in [%g, %g]", opt, arg, lo, hi);
    *out = (float)v;
    return 0;
}

static int parse_int_opt(const char *opt, const char *arg, long lo, long hi, int *out) {
    long v;
    if (cli_parse_int(spec.name, opt, arg, lo, hi, &v)) return CLI_USAGE;
    *out = (int)v;
    return 0;
}

static int on_option(int key, const char *arg, void *ctx) {
    filters_args *a = ctx;
    cnnviz_oip_options *o = &a->o;
    switch (key) {
    case 'l': a->layer = arg; return 0;
    case OPT_MAPS: a->maps = arg; return 0;
    case OPT_NEURON: {
        char *end;
        long y = strtol(arg, &end, 10), x = -1;
        if (end != arg && *end == ',') {
            char *e2;
            x = strtol(end + 1, &e2, 10);
            if (e2 == end + 1 || *e2) x = -1;
        }
        if (y < 0 || x < 0 || y > 100000 || x > 100000)
            return cli_usage_error(spec.name, "--neuron: '%s' is not Y,X (two whole numbers >= 0)", arg);
        o->neuron_y = (int)y, o->neuron_x = (int)x;
        return 0;
    }
    case OPT_STEPS: return parse_int_opt("steps", arg, 1, 1000000, &o->steps);
    case OPT_STEP: return parse_float_opt("step", arg, 1e-9, 1e6, &o->step);
    case OPT_CONSTANT_STEP: o->constant_step = 1; return 0;
    case OPT_GRAD_NORM:
        if (strcmp(arg, "rms") == 0) o->norm = CNNVIZ_OIP_NORM_RMS;
        else if (strcmp(arg, "l2") == 0) o->norm = CNNVIZ_OIP_NORM_L2;
        else if (strcmp(arg, "std") == 0) o->norm = CNNVIZ_OIP_NORM_STD;
        else return cli_usage_error(spec.name, "--grad-norm: '%s' is not rms, l2 or std", arg);
        return 0;
    case OPT_INIT: a->init = arg; return 0;
    case OPT_LEAK: return parse_float_opt("leak", arg, 0, 1, &o->leak);
    case OPT_L2_DECAY: return parse_float_opt("l2-decay", arg, 0, 0.999, &o->l2_decay);
    case OPT_BLUR_EVERY: return parse_int_opt("blur-every", arg, 0, 1000000, &o->blur_every);
    case OPT_BLUR_SIGMA: return parse_float_opt("blur-sigma", arg, 0, 5, &o->blur_sigma);
    case OPT_TV: return parse_float_opt("tv", arg, 0, 1e3, &o->tv);
    case OPT_JITTER: return parse_int_opt("jitter", arg, 0, 1000, &o->jitter);
    case OPT_RESTARTS: return parse_int_opt("restarts", arg, 1, 10000, &o->restarts);
    case OPT_BATCH: return parse_int_opt("batch", arg, 1, 100000, &o->batch);
    case 'o': a->output = arg; return 0;
    case OPT_DUMP: a->dump = arg; return 0;
    case OPT_SNAPSHOTS: return parse_int_opt("snapshots", arg, 1, 1000000, &a->snapshots);
    case OPT_CMAP: return render_cli_cmap(spec.name, arg, &a->ro.cmap);
    case OPT_PIXEL: return render_cli_pixel(spec.name, arg, &a->ro.pixel);
    case OPT_TITLE: a->title = arg; return 0;
    case OPT_PRE_ACTIVATION: a->pre_activation = 1; return 0;
    case OPT_SORT:
        if (strcmp(arg, "map") && strcmp(arg, "activation"))
            return cli_usage_error(spec.name, "--sort: '%s' is not map or activation", arg);
        a->sort_activation = strcmp(arg, "activation") == 0;
        return 0;
    case OPT_TOP: return parse_int_opt("top", arg, 1, 1000000, &a->top);
    case OPT_WEAK: return parse_float_opt("weak", arg, 0, 1, &a->weak);
    case OPT_CLASS_NAMES: a->class_names = arg; return 0;
    case OPT_PRESET:
        if (strcmp(arg, "smooth")) return cli_usage_error(spec.name, "--preset: '%s' is not smooth", arg);
        /* the regularised ascent of the articles; not the default, because it
         * loses selectivity in first conv layers (77% -> 48% on the bundled
         * model, bench_oip_quality, 2026-12-07) */
        o->jitter = 2, o->blur_every = 4, o->tv = 0.1f, o->restarts = 3;
        a->init = "multiscale";
        return 0;
    }
    return cli_usage_error(spec.name, "option is not known");
}

/* "0-7,12,20-23" into maps (each < count, in the order given, repeats
 * allowed); returns the number of maps or -1 after a usage error. */
static int parse_maps(const char *s, int count, int **out) {
    int n = 0, cap = 16;
    int *maps = malloc((size_t)cap * sizeof *maps);
    const char *p = s;
    while (maps && *p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0) goto bad;
        b = a;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q || b < a) goto bad;
        }
        if (*end && *end != ',') goto bad;
        for (long v = a; v <= b; v++) {
            if (v >= count) {
                free(maps);
                cli_usage_error(spec.name, "--maps: map %ld is out of range: the layer has maps 0 to %d", v, count - 1);
                return -1;
            }
            if (n == cap) {
                int *g = realloc(maps, (size_t)(cap *= 2) * sizeof *maps);
                if (!g) goto bad;
                maps = g;
            }
            maps[n++] = (int)v;
        }
        p = *end ? end + 1 : end;
    }
    if (!maps || n == 0) goto bad;
    *out = maps;
    return n;
bad:
    free(maps);
    cli_usage_error(spec.name, "--maps: '%s' is not a list like 0-7,12", s);
    return -1;
}

typedef struct {
    cli_progress bar;
} progress_ctx;

static void on_progress(void *ctx, long done, long total) {
    progress_ctx *p = ctx;
    p->bar.total = total;
    if (done % 10 == 0 || done == total) cli_progress_update(&p->bar, done, "steps");
}

static int write_dump(const char *path, const cnnviz_oip_result *r) {
    float *maps = malloc((size_t)r->n * sizeof *maps);
    if (!maps) return cli_error(NULL, "out of memory");
    for (int i = 0; i < r->n; i++) maps[i] = (float)r->map[i];
    cnnviz_dataset sets[5] = {
        {"images", r->image, 4, {r->n, r->h, r->w, r->c}},
        {"activations", r->activation, 1, {r->n}},
        {"start", r->start, 4, {r->n, r->h, r->w, r->c}},
        {"start_activations", r->start_activation, 1, {r->n}},
        {"maps", maps, 1, {r->n}},
    };
    cnnviz_error err;
    cnnviz_error_clear(&err);
    int rc = cnnviz_h5_write_datasets(path, sets, 5, &err) == CNNVIZ_OK ? 0 : cli_report(&err);
    free(maps);
    return rc;
}

/* FILE.ext -> FILE-snapshots.png */
static void snapshot_path(const char *output, char *buf, size_t n) {
    const char *dot = strrchr(output, '.'), *slash = strrchr(output, '/');
    int stem = dot && (!slash || dot > slash) ? (int)(dot - output) : (int)strlen(output);
    snprintf(buf, n, "%.*s-snapshots.png", stem, output);
}

/* A plain grey PNG: a row per map, a column per snapshot, each tile on the
 * input range (so brightness is comparable along the row), 2x enlarged with
 * a 2-pixel mid-grey gap. Channels are averaged. */
/* What shaped the patterns, for the figure's subtitle: every setting that
 * differs from the plain ascent, so a reader can make the figure again. */
static void settings_words(const cnnviz_oip_options *o, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "step %g%s, leak %g", (double)o->step, o->constant_step ? " constant" : "",
                                (double)o->leak);
#define ADD(...) k += k < n ? (size_t)snprintf(buf + k, n - k, __VA_ARGS__) : 0
    if (o->jitter) ADD(", jitter %d", o->jitter);
    if (o->blur_every) ADD(", blur every %d (sigma %g)", o->blur_every, (double)o->blur_sigma);
    if (o->tv > 0) ADD(", tv %g", (double)o->tv);
    if (o->l2_decay > 0) ADD(", l2 decay %g", (double)o->l2_decay);
    if (o->restarts > 1) ADD(", %d restarts", o->restarts);
    if (o->init == CNNVIZ_OIP_INIT_MULTISCALE) ADD(", multiscale start");
    else if (o->init == CNNVIZ_OIP_INIT_IMAGE) ADD(", image start");
#undef ADD
}

/* How the patterns form: a row per map, a column per snapshot, every tile
 * on the input range so the contrast growing is seen. */
static int write_snapshots(const char *path, const filters_args *a, const cnnviz_layer_info *li,
                           const cnnviz_oip_result *r, const char *model_path, uint64_t seed) {
    size_t tiles = (size_t)r->n * r->nsnap;
    char (*label)[48] = malloc(tiles * sizeof *label);
    const char **labels = malloc(tiles * sizeof *labels);
    int rc = 0;
    if (!label || !labels) {
        rc = cli_error(NULL, "out of memory");
        goto done;
    }
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < r->nsnap; k++) {
            size_t t = (size_t)i * r->nsnap + k;
            snprintf(label[t], sizeof label[t], "map %d \xc2\xb7 step %d", r->map[i], r->snap_step[k]);
            labels[t] = label[t];
        }
    char seed_s[32], title[512], settings[256];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    snprintf(title, sizeof title, "how the patterns of %s form \xc2\xb7 a row per map, a column every %d steps \xc2\xb7 seed %s",
             li->name, a->snapshots, seed_s);
    settings_words(&a->o, settings, sizeof settings);
    render_cli_provenance prov;
    if ((rc = render_cli_provenance_init(&prov, model_path, seed_s))) goto done;
    cnnviz_render_options ro = a->ro;
    ro.prov = prov.prov;
    ro.title = title;
    cnnviz_pattern_set ps = {li->name, (int)tiles, r->h, r->w, r->c, r->snapshots, NULL, NULL, NULL, labels, 0.0f,
                             settings, r->nsnap, 1, r->lo, r->hi};
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_patterns(path, &ps, &ro, &err) != CNNVIZ_OK) rc = cli_report(&err);
done:
    free(label);
    free(labels);
    return rc;
}

static int print_json(const char *layer, int index, const char *activation_of, const cnnviz_oip_result *r,
                      const cli_warnings *warn) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "layer", layer);
    cJSON_AddNumberToObject(root, "index", index);
    if (activation_of) cJSON_AddStringToObject(root, "activation_of", activation_of);
    cJSON *arr = cJSON_AddArrayToObject(root, "maps");
    for (int i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "map", r->map[i]);
        cJSON_AddNumberToObject(o, "activation", r->activation[i]);
        cJSON_AddNumberToObject(o, "start_activation", r->start_activation[i]);
        cJSON_AddBoolToObject(o, "dead", r->dead[i]);
        cJSON_AddItemToArray(arr, o);
    }
    cli_warnings_json(warn, root);
    char *s = cJSON_PrintUnformatted(root);
    int rc = s ? (puts(s), 0) : cli_error(NULL, "out of memory");
    free(s);
    cJSON_Delete(root);
    return rc;
}

static void print_table(const cnnviz_layer_info *li, const filters_args *a, const cnnviz_oip_result *r, double secs) {
    const cnnviz_oip_options *o = &a->o;
    printf("layer %d %s (%s): %d map%s, %d steps x %d start%s, %.2f s\n", li->index, li->name, li->class_name, r->n,
           r->n == 1 ? "" : "s", o->steps, o->restarts, o->restarts == 1 ? "" : "s", secs);
    printf("  map   activation        start%s\n", o->restarts > 1 ? "  restart" : "");
    int dead = 0;
    for (int i = 0; i < r->n; i++) {
        printf("%5d %12.6g %12.6g", r->map[i], (double)r->activation[i], (double)r->start_activation[i]);
        if (o->restarts > 1) printf(" %8d", r->restart[i]);
        printf("%s\n", r->dead[i] ? "  dead" : "");
        dead += r->dead[i];
    }
    printf("dead maps: ");
    if (!dead) printf("none");
    for (int i = 0, k = 0; i < r->n; i++)
        if (r->dead[i]) printf(k++ ? ", %d" : "%d", r->map[i]);
    printf("\n");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The tiles in the order drawn (--sort), the strongest K only (--top). */
static int display_order(const filters_args *a, const cnnviz_oip_result *r, int *order) {
    for (int i = 0; i < r->n; i++) order[i] = i;
    int by_activation = a->sort_activation || a->top;
    for (int i = 1; i < r->n && by_activation; i++) /* insertion sort: stable, ties keep map order */
        for (int j = i; j > 0 && r->activation[order[j]] > r->activation[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int n = a->top && a->top < r->n ? a->top : r->n;
    if (!a->sort_activation) /* --top alone: the strongest K, drawn in map order */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && order[j] < order[j - 1]; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    return n;
}

/* The figure: each tile as the model saw it (transposed back for models
 * trained on transposed images, so the strokes stand upright). */
static int write_figure(const filters_args *a, const cnnviz_model *m, const cnnviz_layer_info *li,
                        const cnnviz_oip_result *r, int transpose, const char *model_path, uint64_t seed) {
    int *order = malloc((size_t)r->n * sizeof *order), *map = malloc((size_t)r->n * sizeof *map);
    int *dead = malloc((size_t)r->n * sizeof *dead);
    float *act = malloc((size_t)r->n * sizeof *act), *shown = malloc((size_t)r->n * r->image_size * sizeof *shown);
    char (*label)[64] = malloc((size_t)r->n * sizeof *label);
    const char **labels = malloc((size_t)r->n * sizeof *labels);
    cli_class_labels names = {0};
    int rc = 0;
    if (!order || !map || !dead || !act || !shown || !label || !labels) {
        rc = cli_error(NULL, "out of memory");
        goto done;
    }
    /* an output layer's units are classes */
    int is_output = li->index == cnnviz_model_num_layers(m) - 1 && li->output_shape.rank == 1;
    if (is_output && (rc = cli_class_names(m, a->class_names, li->output_shape.dim[0], &names))) goto done;
    int n = display_order(a, r, order);
    for (int i = 0; i < n; i++) {
        int k = order[i];
        map[i] = r->map[k];
        dead[i] = r->dead[k];
        act[i] = r->activation[k];
        float *img = shown + (size_t)i * r->image_size;
        memcpy(img, r->image + (size_t)k * r->image_size, r->image_size * sizeof *img);
        if (transpose && r->h == r->w && r->c == 1) cnnviz_transpose_image(img, r->h, r->w);
        if (names.n) snprintf(label[i], sizeof label[i], "%d %s", map[i], names.names[map[i]]);
        else snprintf(label[i], sizeof label[i], is_output ? "class %d" : "map %d", map[i]);
        labels[i] = label[i];
    }
    char seed_s[32], title[512], settings[256], words[320];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    settings_words(&a->o, settings, sizeof settings);
    snprintf(words, sizeof words, "%s%s", settings,
             n < r->n ? (a->sort_activation ? ", strongest first" : ", the strongest only")
                      : a->sort_activation ? ", strongest first" : "");
    render_cli_provenance prov;
    rc = render_cli_provenance_init(&prov, model_path, seed_s);
    if (!rc) {
        cnnviz_render_options ro = a->ro;
        ro.prov = prov.prov;
        char shows[300];
        if (a->activation_of)
            snprintf(shows, sizeof shows, "%s (%s of %s)", li->name, cnnviz_activation_name(li->activation),
                     a->activation_of);
        else
            snprintf(shows, sizeof shows, "%s (%s)", li->name, li->class_name);
        if (a->o.neuron_y >= 0)
            snprintf(title, sizeof title, "patterns that excite %s at neuron (%d, %d) \xc2\xb7 seed %s", shows,
                     a->o.neuron_y, a->o.neuron_x, seed_s);
        else
            snprintf(title, sizeof title, "patterns that excite %s \xc2\xb7 %d steps \xc2\xb7 seed %s", shows,
                     a->o.steps, seed_s);
        ro.title = a->title ? a->title : title;
        cnnviz_pattern_set ps = {li->name, n, r->h, r->w, r->c, shown, map, act, dead, labels, a->weak, words,
                                 0, 0, 0.0f, 0.0f};
        cnnviz_error err;
        cnnviz_error_clear(&err);
        if (cnnviz_render_patterns(a->output, &ps, &ro, &err) != CNNVIZ_OK) rc = cli_report(&err);
    }
done:
    cli_class_labels_free(&names);
    free(order), free(map), free(dead), free(act), free(shown), free(label), free(labels);
    return rc;
}

int cmd_filters(int argc, char **argv) {
    filters_args a;
    memset(&a, 0, sizeof a);
    cnnviz_oip_options_init(&a.o);
    a.ro = cnnviz_render_options_default();
    a.weak = 0.05f;
    a.output = "filters.png";
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &a, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *model_path = NULL;
    if (npos == 1 && cli_is_model_path(argv[0])) model_path = argv[0];
    else if (npos > 0) return cli_usage_error(spec.name, "'%s' is not a model file (.h5, .keras)", argv[0]);
    if (!a.layer) return cli_usage_error(spec.name, "--layer is required");
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_check_path(a.output, &err) != CNNVIZ_OK) return cli_report(&err);
    if (a.dump && (strlen(a.dump) < 3 || strcmp(a.dump + strlen(a.dump) - 3, ".h5") != 0))
        return cli_usage_error(spec.name, "--dump: '%s' does not end in .h5", a.dump);

    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;
    if (!model_path) model_path = cli_default_model();
    int *maps = NULL, n = 0, count = 0;
    float *init_image = NULL;
    cnnviz_oip_result r;
    memset(&r, 0, sizeof r);
    cnnviz_layer_info li;
    progress_ctx pc;
    char snap_path[4200] = "";
    int wrote_dump = 0;

    a.o.layer = cnnviz_model_find_layer(m, a.layer);
    if (a.o.layer < 0) {
        rc = render_cli_unknown_layer(m, model_path, a.layer);
        goto done;
    }
    cnnviz_model_layer_info(m, a.o.layer, &li);
    int act = a.pre_activation ? -1 : cli_activated_output(m, a.o.layer);
    if (act >= 0) {
        /* maximise what the network passes on, not the linear sum under it */
        a.activation_of = li.name; /* points into the model, which outlives a */
        a.o.layer = act;
        cnnviz_model_layer_info(m, act, &li);
        if (!common.quiet && !common.json)
            fprintf(stderr, "layer '%s' is linear: showing its activated output '%s' (%s); --pre-activation shows "
                    "the linear one\n", a.activation_of, li.name, cnnviz_activation_name(li.activation));
    }
    a.o.seed = common.seed;
    /* the layer, neuron and steps first, so a bad --maps is reported against a layer that has maps */
    if (cnnviz_oip_check(m, &a.o, NULL, 0, &count, &err) != CNNVIZ_OK) {
        rc = cli_usage_error(spec.name, "%s", err.msg);
        goto done;
    }
    if (a.maps) {
        if ((n = parse_maps(a.maps, count, &maps)) < 0) {
            rc = CLI_USAGE;
            goto done;
        }
    } else {
        n = count;
        maps = malloc((size_t)n * sizeof *maps);
        if (!maps) {
            rc = cli_error(NULL, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++) maps[i] = i;
    }
    if (a.init && strcmp(a.init, "uniform") == 0) a.o.init = CNNVIZ_OIP_INIT_UNIFORM;
    else if (a.init && strcmp(a.init, "multiscale") == 0) a.o.init = CNNVIZ_OIP_INIT_MULTISCALE;
    else if (a.init) {
        cnnviz_shape in = cnnviz_model_input_shape(m);
        init_image = malloc(cnnviz_shape_size(&in) * sizeof *init_image);
        if (!init_image) {
            rc = cli_error(NULL, "out of memory");
            goto done;
        }
        if ((rc = cli_load_input(m, a.init, 1, &common, init_image))) goto done;
        a.o.init = CNNVIZ_OIP_INIT_IMAGE;
        a.o.init_image = init_image;
    }
    if (a.snapshots) {
        a.o.snapshot_every = a.snapshots;
        snapshot_path(a.output, snap_path, sizeof snap_path);
    }
    cli_progress_start(&pc.bar, li.name, 0, common.quiet || common.json);
    a.o.progress = on_progress;
    a.o.progress_ctx = &pc;
    double t0 = now();
    cnnviz_status st = cnnviz_oip_run(m, &a.o, maps, n, &r, &err);
    double secs = now() - t0;
    cli_progress_end(&pc.bar);
    if (st != CNNVIZ_OK) {
        rc = st == CNNVIZ_ERR_INVALID ? cli_usage_error(spec.name, "%s", err.msg) : cli_report(&err);
        goto done;
    }
    /* data first: if the figure then fails, the dump is removed again */
    if (a.dump) {
        if ((rc = write_dump(a.dump, &r))) goto done;
        wrote_dump = 1;
    }
    if ((rc = write_figure(&a, m, &li, &r, common.transpose, model_path, common.seed))) goto done;
    if (a.snapshots && (rc = write_snapshots(snap_path, &a, &li, &r, model_path, common.seed))) {
        unlink(a.output);
        goto done;
    }
    cli_warnings warn = {0};
    int dead = 0;
    for (int i = 0; i < r.n; i++) dead += r.dead[i] != 0;
    cli_warn_dead_maps(&warn, m, &common, li.name, dead, r.n, "dead");
    if (common.json) {
        rc = print_json(li.name, li.index, a.activation_of, &r, &warn);
    } else if (!common.quiet) {
        print_table(&li, &a, &r, secs);
        printf("wrote %s", a.output);
        if (a.dump) printf(", %s", a.dump);
        if (a.snapshots) printf(", %s", snap_path);
        printf("\n");
    }
done:
    if (rc && wrote_dump) unlink(a.dump);
    cnnviz_oip_result_free(&r);
    free(maps);
    free(init_image);
    cnnviz_model_free(m);
    return rc;
}
