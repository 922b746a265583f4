/* cnnviz plot history: loss and accuracy curves, from the history cnnviz
 * train stores in the model it saves, or from a Keras user's own files:
 * json.dump(history.history) or a CSVLogger CSV. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    .usage = "history [MODEL | HISTORY.json | LOG.csv] [options]",
    .summary = "Plot loss and accuracy per epoch, training (solid) and validation (dashed), with the best\n"
               "epoch marked (highest validation accuracy). From a model cnnviz train saved (its root\n"
               "attribute cnnviz_history; the second curve is labelled 'test' when it is the test set,\n"
               "train's default), from Keras' History.history written with json.dump, or from a\n"
               "CSVLogger file (a header line 'epoch,accuracy,loss,val_accuracy,val_loss', any order).",
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

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* A CSVLogger file as History.history JSON: one array per column but
 * 'epoch'. Returns malloc'd JSON, or NULL after printing the error. */
static char *csv_history(const char *path, const char *text) {
    cJSON *root = cJSON_CreateObject(), *cols[64] = {0};
    char *copy = strdup(text), *save = NULL;
    int ncol = 0, epoch_col = -1, line_no = 0, ok = root && copy;
    for (char *line = ok ? strtok_r(copy, "\r\n", &save) : NULL; ok && line; line = strtok_r(NULL, "\r\n", &save)) {
        line_no++;
        int c = 0;
        for (char *field = line, *next; field && ok; field = next, c++) {
            next = strchr(field, ',');
            if (next) *next++ = 0;
            if (line_no == 1) {
                if (c >= 64 || !*field) ok = 0;
                else if (strcmp(field, "epoch") == 0) epoch_col = c;
                else if (!(cols[c] = cJSON_AddArrayToObject(root, field))) ok = 0;
                ncol = c + 1;
            } else if (c >= ncol) {
                ok = 0;
            } else if (c != epoch_col) {
                char *end;
                double v = strtod(field, &end);
                if (end == field || *end) ok = 0;
                else cJSON_AddItemToArray(cols[c], cJSON_CreateNumber(isfinite(v) ? v : NAN));
            }
        }
        if (line_no > 1 && c != ncol) ok = 0;
    }
    char *json = ok && line_no > 1 ? cJSON_PrintUnformatted(root) : NULL;
    if (!json)
        cli_error(path, "not a CSVLogger file (line %d: want a header of column names, then one number per column)",
                  line_no);
    free(copy);
    cJSON_Delete(root);
    return json;
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
    if (npos > 2) return cli_usage_error(spec.name, "give at most one MODEL or history file");
    const char *source = npos == 2 ? argv[1] : NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_render_check_path(a.output, &err) != CNNVIZ_OK) return cli_report(&err);
    cnnviz_model *m = NULL;
    char *history = NULL;
    const char *val_label = NULL, *seed = NULL;
    if (source && (has_suffix(source, ".json") || has_suffix(source, ".csv"))) {
        char *text = cli_read_text(source, CLI_MAX_TEXT_BYTES);
        if (!text) return CLI_RUNTIME;
        history = has_suffix(source, ".csv") ? csv_history(source, text) : text;
        if (history != text) free(text);
        if (!history) return CLI_RUNTIME;
    } else {
        if (!(m = cli_load_model(source, &common))) return CLI_RUNTIME;
        if (!source) source = cli_default_model();
        const char *h = cnnviz_model_meta(m, "cnnviz_history");
        if (!h || !*h) {
            rc = cli_error(source, "no training history in this model (it was not trained by cnnviz train; "
                           "plot a Keras History JSON or CSVLogger file instead)");
            goto done;
        }
        history = strdup(h);
        const char *v = cnnviz_model_meta(m, "cnnviz_validation");
        if (v && strcmp(v, "test") == 0) val_label = "test";
        seed = cnnviz_model_meta(m, "cnnviz_seed");
    }
    char title[512];
    const char *slash = strrchr(source, '/');
    snprintf(title, sizeof title, "training history \xc2\xb7 %s", slash ? slash + 1 : source);
    cnnviz_render_options ro = cnnviz_render_options_default();
    ro.title = a.title ? a.title : title;
    render_cli_provenance prov;
    if ((rc = render_cli_provenance_init(&prov, source, seed))) goto done;
    ro.prov = prov.prov;
    if (cnnviz_render_history_labelled(a.output, history, val_label, &ro, &err) != CNNVIZ_OK) {
        if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", source);
        rc = cli_report(&err);
        goto done;
    }
    if (!common.quiet) printf("wrote %s\n", a.output);
done:
    free(history);
    cnnviz_model_free(m);
    return rc;
}
