/* Warnings that name the fix: signs that a model is being fed what it was
 * not trained on (wrong input scaling, transposed images), each one line on
 * stderr and an entry of the --json "warnings" array. The thresholds are
 * far from what a working model gives: on every correctly scaled model of
 * the shared corpus the mean top probability over the test set is above
 * 0.9 and the accuracy above 0.88, where a model fed the wrong scaling sits
 * near 1/classes on both (tfk2_same_pool4_raw.h5 fed x/255: about 0.10). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* What to try: the other scalings, and --transpose for square images. */
static const char *fix_hint(const cnnviz_model *m, const cli_common *c, char *buf, size_t n) {
    cnnviz_input_scale s = cnnviz_model_input_scale(m);
    const char *scale = s.kind == CNNVIZ_SCALE_UNIT ? "--input-scale raw"
                        : s.kind == CNNVIZ_SCALE_RAW ? "--input-scale unit"
                                                     : "--input-scale unit or raw";
    cnnviz_shape in = cnnviz_model_input_shape(m);
    int square = in.rank >= 2 && in.dim[0] == in.dim[1];
    snprintf(buf, n, "try %s%s", scale, square && !c->transpose ? ", or --transpose" : "");
    return buf;
}

void cli_warn(cli_warnings *w, const cli_common *c, const char *fmt, ...) {
    if (w->n == CLI_MAX_WARNINGS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text[w->n], sizeof w->text[w->n], fmt, ap);
    va_end(ap);
    if (!c->quiet) fprintf(stderr, "cnnviz: warning: %s\n", w->text[w->n]);
    w->n++;
}

void cli_warn_probabilities(cli_warnings *w, const cnnviz_model *m, const cli_common *c, const float *probs, int n,
                            size_t classes) {
    if (n <= 0 || classes < 2) return;
    double top = 0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        float best = p[0];
        for (size_t k = 1; k < classes; k++) best = p[k] > best ? p[k] : best;
        top += best;
    }
    top /= n;
    char hint[96];
    if (top < 2.0 / (double)classes)
        cli_warn(w, c, "the probabilities are near uniform (mean top probability %.3f over %d input%s, %zu classes): "
                 "the model may expect other input; %s", top, n, n == 1 ? "" : "s", classes, fix_hint(m, c, hint, sizeof hint));
}

void cli_warn_accuracy(cli_warnings *w, const cnnviz_model *m, const cli_common *c, double accuracy, size_t classes) {
    char hint[96];
    if (classes >= 2 && accuracy < 2.0 / (double)classes)
        cli_warn(w, c, "accuracy %.4f is near chance (%zu classes): the model may expect other input; %s", accuracy,
                 classes, fix_hint(m, c, hint, sizeof hint));
}

void cli_warn_dead_maps(cli_warnings *w, const cnnviz_model *m, const cli_common *c, const char *layer, int dead,
                        int maps, const char *what) {
    char hint[96];
    if (maps > 1 && 2 * dead > maps)
        cli_warn(w, c, "%d of the %d maps of layer '%s' are %s: the model may expect other input (%s), or look at a "
                 "later layer", dead, maps, layer, what, fix_hint(m, c, hint, sizeof hint));
}

void cli_warnings_json(const cli_warnings *w, cJSON *obj) {
    cJSON *arr = cJSON_AddArrayToObject(obj, "warnings");
    for (int i = 0; i < w->n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(w->text[i]));
}
