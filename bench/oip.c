/* bench_oip: gradient-ascent patterns for every map of every Conv2D layer,
 * one start of STEPS steps each, with the defaults of `cnnviz filters`.
 *
 *   bench_oip MODEL.h5 [THREADS] [STEPS] [OUT.h5]
 *
 * Prints one line per layer and a total as key=value (bench/oip.sh puts them
 * in a table beside PyTorch). OUT.h5 gets, per layer L, the datasets
 * start_L (the starting images, which bench/oip.py starts from too),
 * images_L and activations_L. The time is the wall time of cnnviz_oip_run,
 * best of REPEAT runs (default 3, $BENCH_REPEAT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/io.h"
#include "cnnviz/model.h"
#include "cnnviz/oip.h"
#include "bench.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.h5 [THREADS] [STEPS] [OUT.h5]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 0, steps = argc > 3 ? atoi(argv[3]) : 200;
    const char *out = argc > 4 ? argv[4] : NULL;
    int repeat = getenv("BENCH_REPEAT") ? atoi(getenv("BENCH_REPEAT")) : 3;
    if (repeat < 1) repeat = 1;
    cnnviz_set_threads(threads);
    cnnviz_error err;
    cnnviz_model *m;
    if (cnnviz_model_load(argv[1], &m, &err) != CNNVIZ_OK) {
        fprintf(stderr, "bench_oip: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    enum { MAX_SETS = 48 };
    cnnviz_dataset sets[MAX_SETS];
    char names[MAX_SETS][32];
    cnnviz_oip_result res[16];
    int nsets = 0, nres = 0, total_maps = 0;
    double total = 0;
    for (int L = 0; L < cnnviz_model_num_layers(m) && nres < 16; L++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, L, &li);
        if (li.type != CNNVIZ_LAYER_CONV2D) continue;
        int C = li.output_shape.dim[2];
        int *maps = malloc((size_t)C * sizeof *maps);
        for (int i = 0; i < C; i++) maps[i] = i;
        cnnviz_oip_options o;
        cnnviz_oip_options_init(&o);
        o.layer = L;
        o.steps = steps;
        double best = 1e30;
        cnnviz_oip_result *r = &res[nres++];
        for (int rep = 0; rep < repeat; rep++) {
            if (rep) cnnviz_oip_result_free(r);
            double t0 = bench_now();
            if (cnnviz_oip_run(m, &o, maps, C, r, &err) != CNNVIZ_OK) {
                fprintf(stderr, "bench_oip: layer %d: %s\n", L, err.msg);
                return 1;
            }
            double dt = bench_now() - t0;
            best = dt < best ? dt : best;
        }
        double mean = 0;
        int live = 0;
        for (int i = 0; i < C; i++) mean += r->activation[i], live += r->activation[i] > 0;
        printf("layer=%d name=%s maps=%d seconds=%.4f mean_activation=%.6g live=%d\n", L, li.name, C, best,
               mean / C, live);
        total += best;
        total_maps += C;
        const char *kinds[3] = {"start", "images", "activations"};
        for (int k = 0; k < 3 && nsets < MAX_SETS; k++, nsets++) {
            snprintf(names[nsets], sizeof names[nsets], "%s_%d", kinds[k], L);
            sets[nsets].name = names[nsets];
            sets[nsets].data = k == 0 ? r->start : k == 1 ? r->image : r->activation;
            sets[nsets].rank = k == 2 ? 1 : 4;
            int d[4] = {C, r->h, r->w, r->c};
            memcpy(sets[nsets].dims, d, sizeof d);
        }
        free(maps);
    }
    printf("total maps=%d seconds=%.4f threads=%d steps=%d\n", total_maps, total, cnnviz_get_threads(), steps);
    if (out && cnnviz_h5_write_datasets(out, sets, nsets, &err) != CNNVIZ_OK) {
        fprintf(stderr, "bench_oip: %s: %s\n", out, err.msg);
        return 1;
    }
    for (int i = 0; i < nres; i++) cnnviz_oip_result_free(&res[i]);
    cnnviz_model_free(m);
    return 0;
}
