/* cnnviz activations: every chosen layer's output for one image, as a figure
 * and optionally as data (.h5 or a folder of .npy). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cnnviz/io.h"
#include "cnnviz/render.h"
#include "render_cli.h"

enum {
    OPT_LAYER = OPT_FIRST_COMMAND_OPTION,
    OPT_DUMP,
    OPT_NORM,
    OPT_CMAP,
    OPT_PIXEL,
    OPT_NO_PREPROCESS,
    OPT_TITLE,
};

#define MAX_CHOSEN 256

static const cli_option options[] = {
    {"layer", 'l', "L", "a layer to show, by Keras name or index (repeatable; default: every\n"
                        "                           Conv2D, pooling and Dense layer)"},
    {"output", 'o', "FILE", "the figure: .png (default activations.png), .svg or .pdf"},
    {"dump", OPT_DUMP, "FILE.h5|DIR/", "also write the outputs: one HDF5 dataset, or one .npy file, per layer"},
    {"norm", OPT_NORM, "N", "colour range: layer (default), map, global or fixed:LO:HI"},
    {"cmap", OPT_CMAP, "NAME", "colormap: gray (default), viridis, magma or RdBu"},
    {"pixel", OPT_PIXEL, "N", "figure pixels per activation (default: tiles of about 80 px)"},
    {"no-preprocess", OPT_NO_PREPROCESS, NULL, "take a 28x28 image as it is (no inversion, cropping or centring)"},
    {"title", OPT_TITLE, "TEXT", "the figure's title (default: the model and image names)"},
    {0},
};

static const cli_spec spec = {
    .name = "activations",
    .usage = "[MODEL] IMAGE [options]",
    .summary = "Draw what each layer of the model makes of one image: the preprocessed input, a grid of\n"
               "maps for every Conv2D and pooling layer (map index on each tile, a colorbar with the real\n"
               "value range), Dense layers as strips of cells and the class probabilities as a bar chart.\n"
               "IMAGE is a PNG or JPEG file or IDXFILE@K. The output format follows the extension.",
    .details = "The same command gives the same bytes every time (no timestamps, fixed font and colour\n"
               "tables); PNGs carry the cnnviz version, the model's SHA-256 and the command line in tEXt\n"
               "chunks. --dump FILE.h5 writes one float32 dataset per layer shown, named after the layer,\n"
               "in the layer's own shape (no batch axis), and 'input', the image as the model took it\n"
               "(preprocessed and scaled); --dump DIR/ writes DIR/<layer>.npy and DIR/input.npy instead.",
    .options = options,
    .common = CLI_COMMON_THREADS | CLI_COMMON_QUIET | CLI_COMMON_DEVICE | CLI_COMMON_SCALE,
};

typedef struct {
    const char *layers[MAX_CHOSEN];
    int nlayers;
    const char *output, *dump, *title;
    cnnviz_render_options ro;
    int preprocess;
} activations_args;

static int on_option(int key, const char *arg, void *ctx) {
    activations_args *a = ctx;
    switch (key) {
    case 'l':
        if (a->nlayers == MAX_CHOSEN) return cli_usage_error(spec.name, "--layer: at most %d layers", MAX_CHOSEN);
        a->layers[a->nlayers++] = arg;
        return 0;
    case 'o': a->output = arg; return 0;
    case OPT_DUMP: a->dump = arg; return 0;
    case OPT_TITLE: a->title = arg; return 0;
    case OPT_NO_PREPROCESS: a->preprocess = 0; return 0;
    case OPT_NORM: return render_cli_norm(spec.name, arg, &a->ro.norm);
    case OPT_CMAP: return render_cli_cmap(spec.name, arg, &a->ro.cmap);
    case OPT_PIXEL: return render_cli_pixel(spec.name, arg, &a->ro.pixel);
    }
    return cli_usage_error(spec.name, "option is not known");
}

/* Layers shown when none is chosen: what readers of a CNN figure look for. */
static int shown_by_default(cnnviz_layer_type t) {
    return t == CNNVIZ_LAYER_CONV2D || t == CNNVIZ_LAYER_MAXPOOL2D || t == CNNVIZ_LAYER_AVGPOOL2D ||
           t == CNNVIZ_LAYER_DENSE;
}

/* Resolve --layer arguments to indices in model order without repeats;
 * an unknown one is reported with the names that exist. */
static int choose_layers(const cnnviz_model *m, const char *model_path, const activations_args *a, int *chosen,
                         int *n) {
    int nl = cnnviz_model_num_layers(m);
    char *mark = calloc((size_t)nl, 1);
    if (!mark) return cli_error(NULL, "out of memory");
    for (int i = 0; i < a->nlayers; i++) {
        int k = cnnviz_model_find_layer(m, a->layers[i]);
        if (k < 0) {
            free(mark);
            return render_cli_unknown_layer(m, model_path, a->layers[i]);
        }
        mark[k] = 1;
    }
    *n = 0;
    for (int i = 0; i < nl; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        if (a->nlayers ? mark[i] : shown_by_default(li.type)) chosen[(*n)++] = i;
    }
    free(mark);
    return 0;
}

/* IDXFILE@K names an image that is taken as it is (cli_load_input) */
static int is_idx_ref(const char *arg) {
    const char *at = strrchr(arg, '@');
    if (!at || at == arg || !at[1]) return 0;
    for (const char *p = at + 1; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* --dump: DIR/ (or an existing folder) gets .npy files, anything else is HDF5 */
/* The model's input goes in too, as "input" (Keras' own input layers are
 * named "<first layer>_input" or "input_1", so this does not clash): it is
 * what the network saw after preprocessing and scaling. */
static int write_dump(const char *dump, const cnnviz_model *m, cnnviz_workspace *ws, const int *chosen, int n,
                      const float *input) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    struct stat st;
    size_t len = strlen(dump);
    int is_dir = (len && dump[len - 1] == '/') || (stat(dump, &st) == 0 && S_ISDIR(st.st_mode));
    if (is_dir) {
        if (stat(dump, &st) != 0 && mkdir(dump, 0777) != 0)
            return cli_error(dump, "cannot create the folder: %s", strerror(errno));
        for (int i = -1; i < n; i++) {
            cnnviz_shape shape = cnnviz_model_input_shape(m);
            const char *name = "input";
            const float *data = input;
            if (i >= 0) {
                cnnviz_layer_info li;
                cnnviz_model_layer_info(m, chosen[i], &li);
                shape = li.output_shape;
                name = li.name;
                data = cnnviz_layer_output(ws, chosen[i], NULL);
            }
            char path[4352];
            snprintf(path, sizeof path, "%s%s%s.npy", dump, dump[len - 1] == '/' ? "" : "/", name);
            int dims[CNNVIZ_MAX_RANK];
            for (int d = 0; d < shape.rank; d++) dims[d] = shape.dim[d];
            if (cnnviz_npy_write(path, data, dims, shape.rank, &err) != CNNVIZ_OK) return cli_report(&err);
        }
        return 0;
    }
    cnnviz_dataset *sets = calloc((size_t)n + 1, sizeof *sets);
    if (!sets) return cli_error(NULL, "out of memory");
    cnnviz_shape in = cnnviz_model_input_shape(m);
    sets[0].name = "input";
    sets[0].data = input;
    sets[0].rank = in.rank;
    for (int d = 0; d < in.rank; d++) sets[0].dims[d] = in.dim[d];
    for (int i = 0; i < n; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, chosen[i], &li);
        sets[i + 1].name = li.name;
        sets[i + 1].data = cnnviz_layer_output(ws, chosen[i], NULL);
        sets[i + 1].rank = li.output_shape.rank;
        for (int d = 0; d < li.output_shape.rank; d++) sets[i + 1].dims[d] = li.output_shape.dim[d];
    }
    int rc = cnnviz_h5_write_datasets(dump, sets, n + 1, &err) == CNNVIZ_OK ? 0 : cli_report(&err);
    free(sets);
    return rc;
}

int cmd_activations(int argc, char **argv) {
    activations_args a;
    memset(&a, 0, sizeof a);
    a.ro = cnnviz_render_options_default();
    a.preprocess = 1;
    a.output = "activations.png";
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &a, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *model_path = NULL, *image;
    if (npos == 2 && cli_is_model_path(argv[0])) {
        model_path = argv[0];
        image = argv[1];
    } else if (npos == 1 && !cli_is_model_path(argv[0])) {
        image = argv[0];
    } else {
        return cli_usage_error(spec.name, npos <= 1 ? "no IMAGE given" : "give one IMAGE (and optionally a MODEL before it)");
    }
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_check_path(a.output, &err) != CNNVIZ_OK) return cli_report(&err);

    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;
    if (!model_path) model_path = cli_default_model();
    int nl = cnnviz_model_num_layers(m);
    int *chosen = malloc((size_t)(nl + 1) * sizeof *chosen);
    cnnviz_panel *panels = calloc((size_t)nl + 1, sizeof *panels);
    cnnviz_shape in_shape = cnnviz_model_input_shape(m);
    size_t in_size = cnnviz_shape_size(&in_shape);
    float *x = malloc(in_size * sizeof *x);
    cnnviz_shape out_shape = cnnviz_model_output_shape(m);
    int nout = (int)cnnviz_shape_size(&out_shape);
    float *probs = malloc((size_t)nout * sizeof *probs);
    cnnviz_workspace *ws = NULL;
    int n = 0;
    render_cli_provenance prov;
    if (!chosen || !panels || !x || !probs) {
        rc = cli_error(NULL, "out of memory");
        goto done;
    }
    if ((rc = choose_layers(m, model_path, &a, chosen, &n))) goto done;
    if ((rc = cli_load_input(m, image, a.preprocess, &common, x))) goto done;
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(1);
    ws = cnnviz_workspace_new(m, &wo, &err);
    if (!ws) {
        rc = cli_report(&err);
        goto done;
    }
    const float *y = cnnviz_forward(ws, x, 1, NULL);

    /* the last layer closes the figure as class probabilities when it is a
     * class vector, chosen or not */
    int last = nl - 1, probs_panel = out_shape.rank == 1 && nout >= 2 && nout <= 20;
    int npanels = 0;
    for (int i = 0; i < n; i++) {
        if (probs_panel && chosen[i] == last) continue;
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, chosen[i], &li);
        cnnviz_panel *p = &panels[npanels++];
        p->name = li.name;
        p->class_name = li.class_name;
        p->note = (li.type == CNNVIZ_LAYER_CONV2D || li.type == CNNVIZ_LAYER_DENSE) && li.activation != CNNVIZ_ACT_LINEAR
                      ? cnnviz_activation_name(li.activation)
                      : NULL;
        p->shape = li.output_shape;
        p->data = cnnviz_layer_output(ws, chosen[i], NULL);
        p->kind = CNNVIZ_PANEL_AUTO;
    }
    if (probs_panel) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, last, &li);
        int soft = cnnviz_model_ends_in_softmax(m);
        if (soft) memcpy(probs, y, (size_t)nout * sizeof *probs);
        else cnnviz_softmax(y, probs, nout);
        cnnviz_panel *p = &panels[npanels++];
        p->name = li.name;
        p->class_name = li.class_name;
        p->note = soft ? "softmax" : "softmax of the output";
        p->shape = out_shape;
        p->data = probs;
        p->kind = CNNVIZ_PANEL_PROBS;
    }

    /* a flat input (an MLP's 784) is still a 28x28 picture */
    cnnviz_panel input = {"input", NULL, a.preprocess && !is_idx_ref(image) ? "preprocessed" : "as given", in_shape, x,
                          CNNVIZ_PANEL_AUTO, NULL};
    if (in_shape.rank == 1 && in_size == 784) input.shape = cnnviz_shape3(28, 28, 1);

    char title[512];
    snprintf(title, sizeof title, "activations \xc2\xb7 %s \xc2\xb7 %s", base_name(model_path), base_name(image));
    a.ro.title = a.title ? a.title : title;
    if ((rc = render_cli_provenance_init(&prov, model_path, NULL))) goto done;
    a.ro.prov = prov.prov;
    if (a.dump && (rc = write_dump(a.dump, m, ws, chosen, n, x))) goto done;
    if (cnnviz_render_activations(a.output, &input, panels, npanels, &a.ro, &err) != CNNVIZ_OK) {
        rc = cli_report(&err);
        goto done;
    }
    if (!common.quiet) {
        int k = 0;
        for (int i = 1; i < nout; i++) k = probs[i] > probs[k] ? i : k;
        printf("wrote %s", a.output);
        if (probs_panel) printf(" (predicted %d, p = %.4f)", k, (double)probs[k]);
        if (a.dump) printf(" and %s", a.dump);
        printf("\n");
    }
done:
    cnnviz_workspace_free(ws);
    free(chosen);
    free(panels);
    free(x);
    free(probs);
    cnnviz_model_free(m);
    return rc;
}
