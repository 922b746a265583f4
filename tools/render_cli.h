/* Pieces shared by the figure commands (activations, kernels, plot, and the
 * patterns figure of filters): option parsing for the render options, the
 * unknown-layer message, and the provenance a figure carries. */
#pragma once
#include "cnnviz/model.h"
#include "cnnviz/render.h"

/* Parse --norm / --cmap / --pixel; print a usage error and return CLI_USAGE
 * on a bad value, else 0. */
int render_cli_norm(const char *cmd, const char *arg, cnnviz_norm *out);
int render_cli_cmap(const char *cmd, const char *arg, cnnviz_cmap *out);
int render_cli_pixel(const char *cmd, const char *arg, int *out);

/* "cnnviz: MODEL: no layer 'x'; layers are 0 conv2d_5, 1 max_pooling2d_5, ..."; returns CLI_RUNTIME */
int render_cli_unknown_layer(const cnnviz_model *m, const char *model_path, const char *name);

/* Provenance for a figure: the model file's SHA-256, the command line with
 * the program named "cnnviz" (not the path it was run from, so the same
 * command gives the same bytes from any build folder), and the seed. */
typedef struct {
    char sha256[65];
    char command[4096];
    char seed[32];
    cnnviz_provenance prov;
} render_cli_provenance;
/* seed may be NULL (the figure does not depend on one); prints and returns
 * CLI_RUNTIME when the model file cannot be read. */
int render_cli_provenance_init(render_cli_provenance *p, const char *model_path, const char *seed);
