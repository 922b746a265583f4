/* Shared by the figure commands; see render_cli.h. */
#include "render_cli.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

int render_cli_norm(const char *cmd, const char *arg, cnnviz_norm *out) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_norm_parse(arg, out, &err) != CNNVIZ_OK) return cli_usage_error(cmd, "%s", err.msg);
    return 0;
}

int render_cli_cmap(const char *cmd, const char *arg, cnnviz_cmap *out) {
    if (cnnviz_cmap_parse(arg, out) != 0)
        return cli_usage_error(cmd, "--cmap: '%s' is not gray, viridis, magma or RdBu", arg);
    return 0;
}

int render_cli_pixel(const char *cmd, const char *arg, int *out) {
    long v;
    if (cli_parse_int(cmd, "pixel", arg, 1, 64, &v)) return CLI_USAGE;
    *out = (int)v;
    return 0;
}

int render_cli_unknown_layer(const cnnviz_model *m, const char *model_path, const char *name) {
    char list[4096];
    size_t off = 0;
    int n = cnnviz_model_num_layers(m);
    for (int i = 0; i < n && off + 64 < sizeof list; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%d %s", i ? ", " : "", i, li.name);
    }
    return cli_error(model_path, "no layer '%s'; the layers are %s", name, list);
}

int render_cli_provenance_init(render_cli_provenance *p, const char *model_path, const char *seed) {
    memset(p, 0, sizeof *p);
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (model_path) {
        if (cnnviz_file_sha256(model_path, p->sha256, &err) != CNNVIZ_OK) return cli_report(&err);
        p->prov.model = model_path;
        p->prov.model_sha256 = p->sha256;
    }
    /* Words that cannot change the figure are left out, so that --threads 1
     * and --threads 2 (which must give the same figure) give the same bytes. */
    char line[4096];
    snprintf(line, sizeof line, "%s", cli_command_line());
    size_t off = (size_t)snprintf(p->command, sizeof p->command, "cnnviz");
    int skip_next = 0;
    char *save = NULL;
    for (char *w = strtok_r(line, " ", &save), *first = w; w; w = strtok_r(NULL, " ", &save)) {
        if (w == first) continue; /* the program, by whatever path it was run */
        if (skip_next) {
            skip_next = 0;
            continue;
        }
        if (strcmp(w, "--threads") == 0) {
            skip_next = 1;
            continue;
        }
        if (strncmp(w, "--threads=", 10) == 0 || strcmp(w, "--quiet") == 0) continue;
        if (off + strlen(w) + 2 < sizeof p->command) off += (size_t)snprintf(p->command + off, sizeof p->command - off, " %s", w);
    }
    p->prov.command = p->command;
    if (seed) {
        snprintf(p->seed, sizeof p->seed, "%s", seed);
        p->prov.seed = p->seed;
    }
    return 0;
}

/* Cairo 1.16's toy font API leaves a few fontconfig patterns unreferenced at
 * exit, which would make every figure command fail under LeakSanitizer (the
 * sanitizer build of the test suite). They are not ours: ignore allocations
 * made inside fontconfig. Only read when the sanitizer is linked in. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }
const char *__lsan_default_options(void); /* and say nothing about it on stderr */
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
