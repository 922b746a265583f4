/* cnnviz kernels: a layer's raw kernel weights and biases as a figure. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cnnviz/render.h"
#include "render_cli.h"

enum { OPT_CMAP = OPT_FIRST_COMMAND_OPTION, OPT_PIXEL, OPT_TITLE, OPT_TOP, OPT_NO_FOLD };

static const cli_option options[] = {
    {"layer", 'l', "L", "the Conv2D (or Dense) layer, by Keras name or index (default: the first Conv2D)"},
    {"output", 'o', "FILE", "the figure: .png (default kernels.png), .svg or .pdf"},
    {"cmap", OPT_CMAP, "NAME", "colormap: RdBu (default), gray, viridis or magma; the scale is always symmetric around 0"},
    {"pixel", OPT_PIXEL, "N", "figure pixels per weight (default: 16 for first-layer tiles, 4 in a matrix)"},
    {"title", OPT_TITLE, "TEXT", "the figure's title"},
    {"top", OPT_TOP, "K", "layers with more than 8 inputs: a heatmap of kernel norms and each map's K strongest\n"
                          "                           inputs (default 4); 0: the whole out x in matrix"},
    {"no-fold", OPT_NO_FOLD, NULL, "a Dense layer after Flatten as its (in, out) matrix, not folded onto the maps"},
    {0},
};

static const cli_spec spec = {
    .name = "kernels",
    .usage = "[MODEL] [--layer L] [options]",
    .summary = "Draw a layer's learned kernels on a symmetric scale around 0 (RdBu: red negative, blue\n"
               "positive). A layer on a one-channel input (conv1) gets a tile per map with its bias\n"
               "under it. A deeper Conv2D gets a heatmap of the L2 norm of each (map, input) kernel and,\n"
               "for each map, the kernels of its strongest inputs (--top; up to 8 inputs, or --top 0:\n"
               "an out x in matrix of kernels grouped by 8, with the biases beside it). A Dense layer\n"
               "after Flatten is folded back onto the maps it reads: each unit's weights as kernels the\n"
               "size of those maps (an MLP on 28x28 pixels: a 28x28 tile per unit).",
    .details = NULL,
    .options = options,
    .common = CLI_COMMON_QUIET | CLI_COMMON_MAX_PARAMS,
};

typedef struct {
    const char *layer, *output, *title;
    cnnviz_render_options ro;
    int top, top_set, no_fold;
} kernels_args;

static int on_option(int key, const char *arg, void *ctx) {
    kernels_args *a = ctx;
    switch (key) {
    case 'l': a->layer = arg; return 0;
    case 'o': a->output = arg; return 0;
    case OPT_TITLE: a->title = arg; return 0;
    case OPT_CMAP: return render_cli_cmap(spec.name, arg, &a->ro.cmap);
    case OPT_PIXEL: return render_cli_pixel(spec.name, arg, &a->ro.pixel);
    case OPT_NO_FOLD: a->no_fold = 1; return 0;
    case OPT_TOP: {
        long v;
        if (cli_parse_int(spec.name, "top", arg, 0, 64, &v)) return CLI_USAGE;
        a->top = (int)v;
        a->top_set = 1;
        return 0;
    }
    }
    return cli_usage_error(spec.name, "option is not known");
}

static const cnnviz_param *find_param(const cnnviz_layer_info *li, const char *name) {
    for (int k = 0; k < li->nparam; k++)
        if (strcmp(li->param[k].name, name) == 0) return &li->param[k];
    return NULL;
}

int cmd_kernels(int argc, char **argv) {
    kernels_args a;
    memset(&a, 0, sizeof a);
    a.ro = cnnviz_render_options_default();
    a.ro.cmap = CNNVIZ_CMAP_RDBU;
    a.output = "kernels.png";
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &a, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos > 1) return cli_usage_error(spec.name, "give at most one MODEL");
    const char *model_path = npos ? argv[0] : NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_check_path(a.output, &err) != CNNVIZ_OK) return cli_report(&err);
    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;
    if (!model_path) model_path = cli_default_model();

    int idx = -1;
    if (a.layer) {
        idx = cnnviz_model_find_layer(m, a.layer);
        if (idx < 0) {
            rc = render_cli_unknown_layer(m, model_path, a.layer);
            goto done;
        }
    } else {
        for (int i = 0; i < cnnviz_model_num_layers(m) && idx < 0; i++) {
            cnnviz_layer_info li;
            cnnviz_model_layer_info(m, i, &li);
            if (li.type == CNNVIZ_LAYER_CONV2D) idx = i;
        }
        if (idx < 0) {
            rc = cli_error(model_path, "the model has no Conv2D layer; choose a Dense layer with --layer");
            goto done;
        }
    }
    cli_note_activated_output(m, idx, &common);
    cnnviz_layer_info li;
    cnnviz_model_layer_info(m, idx, &li);
    const cnnviz_param *kernel = find_param(&li, "kernel"), *bias = find_param(&li, "bias");
    if ((li.type != CNNVIZ_LAYER_CONV2D && li.type != CNNVIZ_LAYER_DENSE) || !kernel) {
        rc = cli_error(model_path, "layer '%s' (%s) has no kernel; kernels draws Conv2D and Dense layers", li.name,
                       li.class_name);
        goto done;
    }
    cnnviz_kernel_panel kp = {li.name, li.class_name, kernel->shape, kernel->data, bias ? bias->data : NULL, 0, 0};
    /* a Dense after Flatten of (H,W,C) maps: its (H*W*C, units) kernel is laid out as (H,W,C,units) */
    cnnviz_shape maps = {0, {0}};
    if (li.type == CNNVIZ_LAYER_DENSE && idx > 0) {
        cnnviz_layer_info prev;
        cnnviz_model_layer_info(m, idx - 1, &prev);
        if (prev.type == CNNVIZ_LAYER_FLATTEN) maps = prev.input_shape;
    } else if (li.type == CNNVIZ_LAYER_DENSE && li.input_shape.rank == 1 && li.input_shape.dim[0] == 784) {
        maps = cnnviz_shape3(28, 28, 1); /* an MLP on flat MNIST pixels */
    }
    if (!a.no_fold && maps.rank >= 2) {
        int c = maps.rank == 3 ? maps.dim[2] : 1;
        kp.shape = (cnnviz_shape){4, {maps.dim[0], maps.dim[1], c, kernel->shape.dim[1]}};
        kp.folded = 1;
    }
    int inputs = kp.shape.rank == 4 ? kp.shape.dim[2] : 1;
    kp.top = a.top_set ? a.top : inputs > 8 ? 4 : 0;
    char title[512];
    const char *slash = strrchr(model_path, '/');
    snprintf(title, sizeof title, "kernels \xc2\xb7 %s", slash ? slash + 1 : model_path);
    a.ro.title = a.title ? a.title : title;
    render_cli_provenance prov;
    if ((rc = render_cli_provenance_init(&prov, model_path, NULL))) goto done;
    a.ro.prov = prov.prov;
    if (cnnviz_render_kernels(a.output, &kp, &a.ro, &err) != CNNVIZ_OK) {
        rc = cli_report(&err);
        goto done;
    }
    if (!common.quiet) {
        char shape[64];
        cnnviz_shape_format(&kernel->shape, shape, sizeof shape);
        printf("wrote %s (%s kernel %s)\n", a.output, li.name, shape);
    }
done:
    cnnviz_model_free(m);
    return rc;
}
