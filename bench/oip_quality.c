/* How good are the patterns of `cnnviz filters`? For every Conv2D layer of a
 * model, against the 10,000 MNIST test digits:
 *
 *  - coverage: of the maps that respond (mean > 0) to at least one digit,
 *    how many patterns are live (activation > 0) and how many reach at least
 *    the strongest response any digit gives that map;
 *  - selectivity: feeding all patterns back, for how many live maps m does
 *    pattern m excite map m more than any other map's pattern does.
 *
 * Exits 1 when a layer misses the bar (coverage 95%; selectivity 70%
 * for the first conv layer, 90% for the others), so a test can run it.
 *
 * usage: bench_oip_quality [MODEL] [--images IDX] [--steps N] [--restarts N]
 *        [--init uniform|multiscale] [--leak X] [--step X] [--seed S]
 *        [--jitter N] [--blur-every K] [--blur-sigma S] [--tv X]
 *        [--threads N] [--converge]
 * --converge prints the mean activation of the second conv layer after
 * 25..800 steps instead (how the default step count was chosen). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/io.h"
#include "cnnviz/model.h"
#include "cnnviz/oip.h"
#include "bench.h"

/* means (n, C) of layer L's C maps for n inputs */
static int layer_means(const cnnviz_model *m, int L, const float *x, int n, float *means) {
    cnnviz_error err;
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(500);
    wo.last = L;
    wo.keep = CNNVIZ_KEEP_LAST;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &wo, &err);
    if (!ws) return -1;
    cnnviz_layer_info li;
    cnnviz_model_layer_info(m, L, &li);
    size_t in_size = cnnviz_shape_size(&li.input_shape);
    cnnviz_shape is = cnnviz_model_input_shape(m);
    in_size = cnnviz_shape_size(&is);
    int C = li.output_shape.dim[li.output_shape.rank - 1];
    size_t P = cnnviz_shape_size(&li.output_shape) / (size_t)C;
    for (int i = 0; i < n; i += 500) {
        int b = n - i < 500 ? n - i : 500;
        const float *y = cnnviz_forward(ws, x + (size_t)i * in_size, b, NULL);
        for (int s = 0; s < b; s++)
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (size_t p = 0; p < P; p++) acc += y[((size_t)s * P + p) * C + c];
                means[(size_t)(i + s) * C + c] = (float)(acc / (double)P);
            }
    }
    cnnviz_workspace_free(ws);
    return 0;
}

static int converge(const cnnviz_model *m, cnnviz_oip_options o, int layer) {
    cnnviz_layer_info li;
    cnnviz_model_layer_info(m, layer, &li);
    int C = li.output_shape.dim[2];
    int *maps = malloc((size_t)C * sizeof *maps);
    for (int i = 0; i < C; i++) maps[i] = i;
    o.layer = layer;
    printf("layer %d (%s): mean and median activation by steps, step %.3g %s\n", layer, li.name, (double)o.step,
           o.constant_step ? "constant" : "decaying linearly");
    static const int steps[] = {25, 50, 100, 200, 400, 800};
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        o.steps = steps[k];
        cnnviz_oip_result r;
        cnnviz_error err;
        if (cnnviz_oip_run(m, &o, maps, C, &r, &err) != CNNVIZ_OK) {
            fprintf(stderr, "bench_oip_quality: %s\n", err.msg);
            return 1;
        }
        double mean = 0;
        float *v = malloc((size_t)C * sizeof *v);
        for (int i = 0; i < C; i++) mean += (v[i] = r.activation[i]);
        for (int i = 1; i < C; i++)
            for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
                float t = v[j];
                v[j] = v[j - 1], v[j - 1] = t;
            }
        printf("  steps %4d  mean %.4f  median %.4f\n", steps[k], mean / C, (double)v[C / 2]);
        free(v);
        cnnviz_oip_result_free(&r);
    }
    free(maps);
    return 0;
}

int main(int argc, char **argv) {
    const char *model = "samples/model.h5", *images = NULL, *init = "uniform";
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    int threads = 0, conv_mode = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--images") && v) images = v, i++;
        else if (!strcmp(a, "--steps") && v) o.steps = atoi(v), i++;
        else if (!strcmp(a, "--restarts") && v) o.restarts = atoi(v), i++;
        else if (!strcmp(a, "--init") && v) init = v, i++;
        else if (!strcmp(a, "--leak") && v) o.leak = (float)atof(v), i++;
        else if (!strcmp(a, "--step") && v) o.step = (float)atof(v), i++;
        else if (!strcmp(a, "--seed") && v) o.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads") && v) threads = atoi(v), i++;
        else if (!strcmp(a, "--jitter") && v) o.jitter = atoi(v), i++;
        else if (!strcmp(a, "--blur-every") && v) o.blur_every = atoi(v), i++;
        else if (!strcmp(a, "--blur-sigma") && v) o.blur_sigma = (float)atof(v), i++;
        else if (!strcmp(a, "--tv") && v) o.tv = (float)atof(v), i++;
        else if (!strcmp(a, "--converge")) conv_mode = 1;
        else if (a[0] != '-') model = a;
        else {
            fprintf(stderr, "usage: bench_oip_quality [MODEL] [--images IDX] [--steps N] [--restarts N] "
                            "[--init uniform|multiscale] [--leak X] [--step X] [--seed S] [--jitter N] [--blur-every K] "
                            "[--blur-sigma S] [--tv X] [--threads N] [--converge]\n");
            return 2;
        }
    }
    o.init = strcmp(init, "multiscale") == 0 ? CNNVIZ_OIP_INIT_MULTISCALE : CNNVIZ_OIP_INIT_UNIFORM;
    cnnviz_set_threads(threads);
    cnnviz_error err;
    cnnviz_model *m = NULL;
    if (cnnviz_model_load(model, &m, &err) != CNNVIZ_OK) {
        fprintf(stderr, "bench_oip_quality: %s: %s\n", model, err.msg);
        return 1;
    }
    int convs[16], nconv = 0;
    for (int i = 0; i < cnnviz_model_num_layers(m) && nconv < 16; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        if (li.type == CNNVIZ_LAYER_CONV2D) convs[nconv++] = i;
    }
    if (conv_mode) {
        int rc = converge(m, o, convs[nconv > 1 ? 1 : 0]);
        cnnviz_model_free(m);
        return rc;
    }
    char buf[4096];
    if (!images) {
        const char *sh = getenv("CNNVIZ_SHARED");
        snprintf(buf, sizeof buf, "%s/data/mnist/t10k-images-idx3-ubyte.gz", sh && *sh ? sh : "../shared");
        images = buf;
    }
    cnnviz_idx_images im;
    if (cnnviz_idx_load_images(images, &im, &err) != CNNVIZ_OK) {
        fprintf(stderr, "bench_oip_quality: %s: %s\n", images, err.msg);
        return 1;
    }
    size_t S = (size_t)im.rows * im.cols;
    float *x = malloc((size_t)im.count * S * sizeof *x);
    cnnviz_scale_pixels(im.pixels, x, (size_t)im.count * S, cnnviz_model_input_scale(m));
    printf("model %s, %d test digits, init %s, %d restart(s), %d steps, step %.3g, leak %.2g, seed %llu\n", model,
           im.count, init, o.restarts, o.steps, (double)o.step, (double)o.leak, (unsigned long long)o.seed);
    printf("| layer | maps | respond to a digit | live patterns | beat best digit | coverage | selective (live) | selectivity | time s |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    int ok = 1;
    for (int k = 0; k < nconv; k++) {
        int L = convs[k];
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, L, &li);
        int C = li.output_shape.dim[2];
        float *dm = malloc((size_t)im.count * C * sizeof *dm), *best = malloc((size_t)C * sizeof *best);
        float *fb = malloc((size_t)C * C * sizeof *fb);
        int *maps = malloc((size_t)C * sizeof *maps);
        layer_means(m, L, x, im.count, dm);
        for (int c = 0; c < C; c++) {
            best[c] = -INFINITY;
            for (int i = 0; i < im.count; i++) best[c] = fmaxf(best[c], dm[(size_t)i * C + c]);
            maps[c] = c;
        }
        o.layer = L;
        cnnviz_oip_result r;
        double t0 = bench_now();
        if (cnnviz_oip_run(m, &o, maps, C, &r, &err) != CNNVIZ_OK) {
            fprintf(stderr, "bench_oip_quality: %s\n", err.msg);
            return 1;
        }
        double dt = bench_now() - t0;
        layer_means(m, L, r.image, C, fb); /* fb[pattern][map] */
        int respond = 0, live = 0, beat = 0, nlive = 0, sel = 0;
        for (int c = 0; c < C; c++) {
            int is_live = r.activation[c] > 0.0f;
            nlive += is_live;
            if (best[c] > 0.0f) {
                respond++;
                live += is_live;
                beat += is_live && r.activation[c] >= best[c];
            }
            if (!is_live) continue;
            int wins = 1;
            for (int p = 0; p < C; p++)
                if (p != c && r.activation[p] > 0.0f && fb[(size_t)p * C + c] >= fb[(size_t)c * C + c]) wins = 0;
            sel += wins;
        }
        double cov = respond ? 100.0 * beat / respond : 100.0, selp = nlive ? 100.0 * sel / nlive : 100.0;
        double bar = k == 0 ? 70.0 : 90.0;
        if (cov < 95.0 || selp < bar) ok = 0;
        printf("| %d %s | %d | %d | %d | %d | %.0f%% | %d / %d | %.0f%% | %.2f |\n", L, li.name, C, respond, live, beat,
               cov, sel, nlive, selp, dt);
        cnnviz_oip_result_free(&r);
        free(dm), free(best), free(fb), free(maps);
    }
    printf("%s\n", ok ? "all layers meet the bar (coverage >= 95%, selectivity >= 70% / 90%)"
                      : "SOME LAYER MISSES THE BAR (coverage >= 95%, selectivity >= 70% / 90%)");
    free(x);
    cnnviz_idx_images_free(&im);
    cnnviz_model_free(m);
    return ok ? 0 : 1;
}
