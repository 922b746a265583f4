/* bench_train: seconds per epoch and peak RSS of cnnviz training the seed
 * net on MNIST, and (--profile) where the time goes, layer by layer.
 *
 *   bench_train [--epochs N] [--threads N] [--batch B] [--limit N] [--profile] [--data DIR]
 *
 * Prints one line "cnnviz seconds_per_epoch=S peak_rss_mb=M test_accuracy=A
 * images=N" for bench/train.sh, and with --profile a table of forward and
 * backward time per step of the driver's plan, timed by the driver in
 * the same passes training runs (cnnviz_workspace_time_steps). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cnnviz/io.h"
#include "cnnviz/train.h"
#include "model-impl.h"
#include "train/train-impl.h"
#include "bench.h"

/* user + system CPU seconds of the whole process: less disturbed than wall
 * time when other jobs share the cores (but it counts threads spinning) */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

typedef struct {
    double *step; /* forward and backward seconds of each of the plan's steps */
    double loss, optimizer, gather, total;
} profile;

static double backward_seconds(const cnnviz_workspace *ws, const profile *p) {
    double s = 0;
    for (int k = 0; k < cnnviz_workspace_num_steps(ws); k++) s += p->step[2 * k + 1];
    return s;
}

/* One epoch like cnnviz_train's, through the same plan, timing each step. */
static void profiled_epoch(cnnviz_model *m, cnnviz_workspace *ws, const cnnviz_labelled_set *set, int batch,
                           profile *p) {
    cnnviz_error err;
    cnnviz_optimizer_config oc = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    cnnviz_optimizer *opt = cnnviz_optimizer_new(m, &oc, &err);
    size_t sample = cnnviz_shape_size(&m->input_shape);
    float *x = malloc((size_t)batch * sample * sizeof *x);
    uint8_t *y = malloc((size_t)batch);
    float *scratch = malloc(cnnviz_loss_scratch_floats(m, batch) * sizeof *scratch);
    cnnviz_input_scale unit = {CNNVIZ_SCALE_UNIT, 0.0f, 1.0f};
    cnnviz_workspace_time_steps(ws, p->step);
    double t_all = bench_now();
    for (int first = 0; first < set->count; first += batch) {
        int b = set->count - first < batch ? set->count - first : batch;
        double t = bench_now();
        cnnviz_scale_pixels(set->pixels + (size_t)first * sample, x, (size_t)b * sample, unit);
        memcpy(y, set->labels + first, (size_t)b);
        p->gather += bench_now() - t;
        cnnviz_model_zero_grads(m);
        cnnviz_forward(ws, x, b, NULL);
        /* the loss's own part: softmax + cross-entropy and the output
         * layer's backward, which the loss does before the plan's steps */
        double steps_before = backward_seconds(ws, p);
        t = bench_now();
        cnnviz_loss_backward(m, ws, y, b, scratch, NULL);
        p->loss += bench_now() - t - (backward_seconds(ws, p) - steps_before);
        t = bench_now();
        cnnviz_regularization_apply(m);
        cnnviz_optimizer_step(opt);
        p->optimizer += bench_now() - t;
    }
    p->total = bench_now() - t_all;
    cnnviz_workspace_time_steps(ws, NULL);
    free(x);
    free(y);
    free(scratch);
    cnnviz_optimizer_free(opt);
}

static void print_profile(const cnnviz_model *m, const cnnviz_workspace *ws, const profile *p, int images) {
    printf("\nwhere one epoch's time goes (%d images, %.2f s; depth-first steps: the threads' time over the "
           "thread count):\n",
           images, p->total);
    printf("  %-34s %-15s %10s %10s %7s\n", "step", "output", "forward s", "backward s", "share");
    for (int s = 0; s < cnnviz_workspace_num_steps(ws); s++) {
        const cnnviz_step *st = cnnviz_workspace_step(ws, s);
        const cnnviz_layer *l = m->layers[st->first + st->count - 1];
        char shape[64], name[300];
        cnnviz_shape_format(&l->out_shape, shape, sizeof shape);
        snprintf(name, sizeof name, "%s%s%s", m->layers[st->first]->name, st->count > 1 ? " + " : "",
                 st->count > 1 ? l->name : "");
        printf("  %-34s %-15s %10.3f %10.3f %6.1f%%\n", name, shape, p->step[2 * s], p->step[2 * s + 1],
               100.0 * (p->step[2 * s] + p->step[2 * s + 1]) / p->total);
    }
    printf("  %-50s %10.3f %10s %6.1f%%\n", "softmax + cross-entropy + output layer's backward", p->loss, "",
           100.0 * p->loss / p->total);
    printf("  %-50s %10.3f %10s %6.1f%%\n", "batch gather + scaling", p->gather, "", 100.0 * p->gather / p->total);
    printf("  %-50s %10.3f %10s %6.1f%%\n", "regularizer + RMSprop step", p->optimizer, "",
           100.0 * p->optimizer / p->total);
}

int main(int argc, char **argv) {
    int epochs = 1, threads = 2, batch = 64, limit = 0, do_profile = 0;
    const char *data = NULL, *arch = CNNVIZ_SEED_ARCH;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--profile")) do_profile = 1;
        else {
            fprintf(stderr, "usage: bench_train [--epochs N] [--threads N] [--batch B] [--limit N] [--arch SPEC] "
                            "[--profile] [--data DIR]\n");
            return 2;
        }
    }
    cnnviz_set_threads(threads);
    char images[4096], labels[4096], timages[4096], tlabels[4096];
    const char *dir = data ? data : getenv("CNNVIZ_DATA");
    char fallback[4096];
    if (!dir) {
        /* ../shared/data/mnist beside the source tree this file is in */
        snprintf(fallback, sizeof fallback, "%s", __FILE__);
        char *slash = strrchr(fallback, '/');
        if (slash) *slash = 0;
        strncat(fallback, "/../../shared/data/mnist", sizeof fallback - strlen(fallback) - 1);
        dir = fallback;
    }
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
    snprintf(timages, sizeof timages, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(tlabels, sizeof tlabels, "%s/t10k-labels-idx1-ubyte.gz", dir);
    cnnviz_error err;
    cnnviz_idx_images im = {0}, tim = {0};
    uint8_t *lab = NULL, *tlab = NULL;
    int n = 0, tn = 0;
    if (cnnviz_idx_load_images(images, &im, &err) || cnnviz_idx_load_labels(labels, &lab, &n, &err) ||
        cnnviz_idx_load_images(timages, &tim, &err) || cnnviz_idx_load_labels(tlabels, &tlab, &tn, &err)) {
        fprintf(stderr, "bench_train: %s: %s\n", err.file, err.msg);
        return 1;
    }
    cnnviz_labelled_set train = {im.pixels, lab, limit > 0 && limit < n ? limit : n};
    cnnviz_labelled_set test = {tim.pixels, tlab, tn};
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = NULL;
    if (cnnviz_model_from_spec(arch, &in, &m, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 1, 0);
    cnnviz_model_init_weights(m, &rng);
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cfg.epochs = epochs;
    cfg.batch = batch;
    cnnviz_train_result res;
    double t0 = bench_now(), c0 = cpu_seconds();
    if (cnnviz_train(m, &cfg, &train, NULL, &res, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    double per_epoch = (bench_now() - t0) / epochs, cpu_per_epoch = (cpu_seconds() - c0) / epochs;
    double loss, acc;
    cnnviz_evaluate_set(m, &test, cfg.scale, 64, &loss, &acc, &err);
    printf("cnnviz seconds_per_epoch=%.3f cpu_seconds_per_epoch=%.3f peak_rss_mb=%.1f test_accuracy=%.4f images=%d "
           "threads=%d batch=%d\n",
           per_epoch, cpu_per_epoch, peak_rss_mb(), acc, train.count, threads, batch);
    for (int e = 0; e < res.epochs_done; e++) printf("  epoch %d: %.2f s\n", e + 1, res.history[e].seconds);
    if (do_profile) {
        profile p;
        memset(&p, 0, sizeof p);
        cnnviz_workspace *ws = bench_training_workspace(m, batch, "bench_train");
        p.step = calloc(2 * (size_t)cnnviz_workspace_num_steps(ws), sizeof *p.step);
        profiled_epoch(m, ws, &train, batch, &p);
        print_profile(m, ws, &p, train.count);
        free(p.step);
        cnnviz_workspace_free(ws);
    }
    cnnviz_train_result_free(&res);
    cnnviz_model_free(m);
    cnnviz_idx_images_free(&im);
    cnnviz_idx_images_free(&tim);
    free(lab);
    free(tlab);
    return 0;
}
