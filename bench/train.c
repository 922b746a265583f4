/* bench_train: seconds per epoch and peak RSS of cnnviz training the seed
 * net on MNIST, and (--profile) where the time goes, layer by layer.
 *
 *   bench_train [--epochs N] [--threads N] [--batch B] [--limit N] [--profile] [--data DIR]
 *
 * Prints one line "cnnviz seconds_per_epoch=S peak_rss_mb=M test_accuracy=A
 * images=N" for bench/train.sh, and with --profile a table of forward and
 * backward time per layer. The profile runs the layers one by one, the
 * whole batch through each layer in turn, with a clock around each (the
 * driver may instead run small groups of samples through several layers
 * at a time, so the profile's total can differ from the timed epochs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cnnviz/io.h"
#include "cnnviz/train.h"
#include "model-impl.h"
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
    double fwd[64], bwd[64], loss, optimizer, gather, total;
} profile;

/* One epoch like cnnviz_train's, timing each layer. */
static void profiled_epoch(cnnviz_model *m, const cnnviz_labelled_set *set, int batch, profile *p) {
    cnnviz_error err;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, batch, 1, &err);
    cnnviz_optimizer_config oc = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    cnnviz_optimizer *opt = cnnviz_optimizer_new(m, &oc, &err);
    size_t sample = cnnviz_shape_size(&m->input_shape);
    float *x = malloc((size_t)batch * sample * sizeof *x);
    uint8_t *y = malloc((size_t)batch);
    float *scratch = malloc(cnnviz_loss_scratch_floats(m, batch) * sizeof *scratch);
    cnnviz_input_scale unit = {CNNVIZ_SCALE_UNIT, 0.0f, 1.0f};
    int last = m->nlayers - 1, classes = m->layers[last]->out_shape.dim[0];
    double t_all = bench_now();
    for (int first = 0; first < set->count; first += batch) {
        int b = set->count - first < batch ? set->count - first : batch;
        double t = bench_now();
        cnnviz_scale_pixels(set->pixels + (size_t)first * sample, x, (size_t)b * sample, unit);
        memcpy(y, set->labels + first, (size_t)b);
        p->gather += bench_now() - t;
        cnnviz_model_zero_grads(m);
        ws->input = x;
        const float *in = x;
        for (int i = 0; i <= last; i++) {
            const cnnviz_layer *l = m->layers[i];
            cnnviz_pass pass = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i], .training = 1,
                                .rng = ws->rng};
            cnnviz_pass_crop(m, i, last, 1, &pass.rows_read, &pass.cols_read); /* as cnnviz_forward */
            t = bench_now();
            if (ws->prep[i]) l->ops->prepare(l, ws->prep[i], 1); /* Winograd's kernel transform */
            l->ops->forward(l, in, ws->out[i], b, &pass);
            p->fwd[i] += bench_now() - t;
            in = ws->out[i];
        }
        /* the output layer's fused softmax/cross-entropy backward is counted
         * as "loss"; then the rest of the layers */
        t = bench_now();
        float *dlogits = scratch, *d = scratch + (size_t)b * classes;
        cnnviz_softmax_xent(ws->out[last], y, b, classes, dlogits, NULL);
        p->loss += bench_now() - t;
        t = bench_now();
        const cnnviz_layer *out_layer = m->layers[last];
        cnnviz_pass pass = {.aux = ws->aux[last], .scratch = ws->scratch, .prep = ws->prep[last], .training = 1,
                            .weight_grads = 1, .rng = ws->rng};
        /* time the output Dense as a linear layer: the same three sgemms */
        cnnviz_activation saved = out_layer->activation;
        ((cnnviz_layer *)out_layer)->activation = CNNVIZ_ACT_LINEAR;
        out_layer->ops->backward(out_layer, ws->out[last - 1], ws->out[last], dlogits, d, b, &pass);
        ((cnnviz_layer *)out_layer)->activation = saved;
        p->bwd[last] += bench_now() - t;
        const float *dout = d;
        for (int i = last - 1; i >= 0; i--) {
            const cnnviz_layer *l = m->layers[i];
            if (i == 0 && l->nparam == 0) break;
            /* as cnnviz_backward: nobody wants the input's gradient */
            float *din = i == 0 ? NULL : dout == ws->grad_a ? ws->grad_b : ws->grad_a;
            const float *lin = i ? ws->out[i - 1] : ws->input;
            cnnviz_pass pb = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i], .training = 1,
                              .weight_grads = 1,
                              .rng = ws->rng, .relu_input = cnnviz_fused_relu_pool(m, i),
                              .dout_masked = cnnviz_fused_relu_pool(m, i + 1)};
            t = bench_now();
            l->ops->backward(l, lin, ws->out[i], dout, din, b, &pb);
            p->bwd[i] += bench_now() - t;
            dout = din;
        }
        t = bench_now();
        cnnviz_regularization_apply(m);
        cnnviz_optimizer_step(opt);
        p->optimizer += bench_now() - t;
    }
    p->total = bench_now() - t_all;
    free(x);
    free(y);
    free(scratch);
    cnnviz_optimizer_free(opt);
    cnnviz_workspace_free(ws);
}

static void print_profile(const cnnviz_model *m, const profile *p, int images) {
    printf("\nwhere one epoch's time goes (%d images, %.2f s):\n", images, p->total);
    printf("  %-18s %-15s %10s %10s %7s\n", "layer", "output", "forward s", "backward s", "share");
    for (int i = 0; i < m->nlayers; i++) {
        const cnnviz_layer *l = m->layers[i];
        char shape[64];
        cnnviz_shape_format(&l->out_shape, shape, sizeof shape);
        printf("  %-18s %-15s %10.3f %10.3f %6.1f%%\n", l->name, shape, p->fwd[i], p->bwd[i],
               100.0 * (p->fwd[i] + p->bwd[i]) / p->total);
    }
    printf("  %-34s %10.3f %10s %6.1f%%\n", "softmax + cross-entropy", p->loss, "", 100.0 * p->loss / p->total);
    printf("  %-34s %10.3f %10s %6.1f%%\n", "batch gather + scaling", p->gather, "", 100.0 * p->gather / p->total);
    printf("  %-34s %10.3f %10s %6.1f%%\n", "regularizer + RMSprop step", p->optimizer, "",
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
        profiled_epoch(m, &train, batch, &p);
        print_profile(m, &p, train.count);
    }
    cnnviz_train_result_free(&res);
    cnnviz_model_free(m);
    cnnviz_idx_images_free(&im);
    cnnviz_idx_images_free(&tim);
    free(lab);
    free(tlab);
    return 0;
}
