/* bench_infer: cnnviz inference speed on the MNIST test set.
 *
 *   bench_infer MODEL.h5 T10K-IMAGES [THREADS]
 *
 * Prints one line of key=value results (bench/infer.sh puts them in a table
 * beside PyTorch): throughput over all images at batch 256 (best of 5 passes),
 * and single-image latency in process (median of 2000 calls). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/io.h"
#include "cnnviz/model.h"
#include "bench.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.h5 T10K-IMAGES [THREADS]\n", argv[0]);
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    cnnviz_set_threads(threads);
    cnnviz_error err;
    cnnviz_model *m;
    cnnviz_idx_images im;
    if (cnnviz_model_load(argv[1], &m, &err) || cnnviz_idx_load_images(argv[2], &im, &err)) {
        fprintf(stderr, "bench_infer: %s: %s\n", err.file, err.msg);
        return 1;
    }
    int n = im.count;
    cnnviz_shape in = cnnviz_model_input_shape(m), os = cnnviz_model_output_shape(m);
    size_t in_size = cnnviz_shape_size(&in), out_size = cnnviz_shape_size(&os);
    float *x = malloc((size_t)n * in_size * sizeof *x), *y = malloc((size_t)n * out_size * sizeof *y);
    cnnviz_scale_pixels(im.pixels, x, (size_t)n * in_size, cnnviz_model_input_scale(m));

    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now();
        cnnviz_model_predict(m, x, n, 256, y, &err);
        double t = bench_now() - t0;
        if (t < best) best = t;
    }
    /* single image, workspace reused as an interactive tool would */
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(1);
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &wo, &err);
    enum { CALLS = 2000 };
    static double lat[CALLS];
    for (int i = 0; i < CALLS; i++) {
        double t0 = bench_now();
        cnnviz_forward(ws, x + (size_t)(i % n) * in_size, 1, NULL);
        lat[i] = bench_now() - t0;
    }
    qsort(lat, CALLS, sizeof *lat, cmp_double);
    printf("threads=%d images=%d throughput=%.0f latency_us=%.1f\n", cnnviz_get_threads(), n, n / best,
           lat[CALLS / 2] * 1e6);
    cnnviz_workspace_free(ws);
    free(x);
    free(y);
    cnnviz_idx_images_free(&im);
    cnnviz_model_free(m);
    return 0;
}
