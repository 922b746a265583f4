/* Attribution maps over the MNIST test set: saliency and Grad-CAM of each
 * image's predicted class, best of 3 runs (bench/explain.sh puts PyTorch
 * beside it).
 * usage: bench_explain MODEL.h5 t10k-images-idx3-ubyte[.gz] [THREADS] [N] */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "cnnviz/explain.h"
#include "cnnviz/io.h"
#include "cnnviz/model.h"
#include "cnnviz/tensor.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* best wall time of 3 runs of method m over n images; *cpu: that run's
 * CPU seconds over all threads (on a loaded machine, CPU time over the
 * thread count says what the wall time would be on an idle one) */
static double best_of_3(cnnviz_explainer *ex, cnnviz_explain_method m, const float *x, int n, const int *cls,
                        float *maps, double *cpu) {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = bench_now(), c0 = cpu_now();
        cnnviz_error err;
        if (cnnviz_explain_run(ex, m, x, n, cls, maps, NULL, &err)) {
            fprintf(stderr, "bench_explain: %s\n", err.msg);
            exit(1);
        }
        double t = bench_now() - t0;
        if (t < best) best = t, *cpu = cpu_now() - c0;
    }
    return best;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_explain MODEL.h5 IMAGES.idx [THREADS] [N]\n");
        return 2;
    }
    cnnviz_set_threads(argc > 3 ? atoi(argv[3]) : 0);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_idx_images im;
    if (cnnviz_model_load(argv[1], &m, &err) || cnnviz_idx_load_images(argv[2], &im, &err)) {
        fprintf(stderr, "bench_explain: %s: %s\n", err.file, err.msg);
        return 1;
    }
    int n = argc > 4 ? atoi(argv[4]) : im.count;
    if (n > im.count || n < 1) n = im.count;
    cnnviz_shape in = cnnviz_model_input_shape(m);
    size_t in_size = cnnviz_shape_size(&in);
    float *x = malloc((size_t)n * in_size * sizeof *x), *maps = malloc((size_t)n * in_size * sizeof *maps);
    int *cls = malloc((size_t)n * sizeof *cls);
    cnnviz_scale_pixels(im.pixels, x, (size_t)n * in_size, cnnviz_model_input_scale(m));
    cnnviz_explain_options o;
    cnnviz_explain_options_init(&o);
    cnnviz_explainer *ex =
        cnnviz_explainer_new(m, &o, 1u << CNNVIZ_EXPLAIN_SALIENCY | 1u << CNNVIZ_EXPLAIN_GRADCAM, &err);
    if (!ex || cnnviz_explain_classify(ex, x, n, cls, NULL, NULL, &err)) {
        fprintf(stderr, "bench_explain: %s\n", err.msg);
        return 1;
    }
    double sal_cpu, cam_cpu;
    double sal = best_of_3(ex, CNNVIZ_EXPLAIN_SALIENCY, x, n, cls, maps, &sal_cpu);
    double cam = best_of_3(ex, CNNVIZ_EXPLAIN_GRADCAM, x, n, cls, maps, &cam_cpu);
    printf("threads=%d images=%d saliency_s=%.4f saliency_cpu_s=%.4f gradcam_s=%.4f gradcam_cpu_s=%.4f\n",
           cnnviz_get_threads(), n, sal, sal_cpu, cam, cam_cpu);
    cnnviz_explainer_free(ex);
    cnnviz_model_free(m);
    cnnviz_idx_images_free(&im);
    free(x);
    free(maps);
    free(cls);
    return 0;
}
