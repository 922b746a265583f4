/* cnnviz plot history: the loss and accuracy curves that cnnviz train
 * stores in the model it saves. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cnnviz/render.h"
#include "render_cli.h"

enum { OPT_TITLE = OPT_FIRST_COMMAND_OPTION };

static const cli_option options[] = {
    {"output", 'o', "FILE", "the figure: .png (default history.png), .svg or .pdf"},
    {"title", OPT_TITLE, "TEXT", "the figure's title"},
    {0},
};

static const cli_spec spec = {
    .name = "plot",
    .usage = "history [MODEL] [options]",
    .summary = "Plot what a model remembers of its training. 'history': loss and accuracy per epoch,\n"
               "training (solid) and validation (dashed), from the history cnnviz train stores in the\n"
               "model file (the root attribute cnnviz_history, Keras' History.history as JSON).",
    .details = NULL,
    .options = options,
    .common = CLI_COMMON_QUIET,
};

typedef struct {
    const char *output, *title;
} plot_args;

static int on_option(int key, const char *arg, void *ctx) {
    plot_args *a = ctx;
    switch (key) {
    case 'o': a->output = arg; return 0;
    case OPT_TITLE: a->title = arg; return 0;
    }
    return cli_usage_error(spec.name, "option is not known");
}

int cmd_plot(int argc, char **argv) {
    plot_args a = {"history.png", NULL};
    cli_common common;
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &a, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos < 1) return cli_usage_error(spec.name, "say what to plot: history");
    if (strcmp(argv[0], "history") != 0)
        return cli_usage_error(spec.name, "'%s' is not something to plot (there is: history)", argv[0]);
    if (npos > 2) return cli_usage_error(spec.name, "give at most one MODEL");
    const char *model_path = npos == 2 ? argv[1] : NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_check_path(a.output, &err) != CNNVIZ_OK) return cli_report(&err);
    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;
    if (!model_path) model_path = cli_default_model();
    const char *history = cnnviz_model_meta(m, "cnnviz_history");
    if (!history || !*history) {
        rc = cli_error(model_path, "no training history in this model (it was not trained by cnnviz train)");
        goto done;
    }
    char title[512];
    const char *slash = strrchr(model_path, '/');
    snprintf(title, sizeof title, "training history \xc2\xb7 %s", slash ? slash + 1 : model_path);
    cnnviz_render_options ro = cnnviz_render_options_default();
    ro.title = a.title ? a.title : title;
    render_cli_provenance prov;
    const char *seed = cnnviz_model_meta(m, "cnnviz_seed");
    if ((rc = render_cli_provenance_init(&prov, model_path, seed))) goto done;
    ro.prov = prov.prov;
    if (cnnviz_render_history(a.output, history, &ro, &err) != CNNVIZ_OK) {
        if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", model_path);
        rc = cli_report(&err);
        goto done;
    }
    if (!common.quiet) printf("wrote %s\n", a.output);
done:
    cnnviz_model_free(m);
    return rc;
}
