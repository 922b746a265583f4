/* cnnviz evaluate: accuracy and loss on a labelled IDX set. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cnnviz/io.h"
#include "infer.h"

enum {
    OPT_IMAGES = OPT_FIRST_COMMAND_OPTION,
    OPT_LABELS,
    OPT_LIMIT,
    OPT_DATASET,
    OPT_DATA,
    OPT_PREDICTIONS,
    OPT_PROBS,
};

static const cli_option options[] = {
    {"images", OPT_IMAGES, "FILE", "IDX image file, gzip or plain (default: the MNIST test set)"},
    {"labels", OPT_LABELS, "FILE", "IDX label file"},
    {"dataset", OPT_DATASET, "NAME", "mnist (default) or fashion: its t10k test set"},
    {"data", OPT_DATA, "DIR", "folder holding t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"},
    {"limit", OPT_LIMIT, "N", "only the first N images"},
    {"predictions", OPT_PREDICTIONS, "FILE", "write the predicted class of each image, one per line"},
    {"probs", OPT_PROBS, "FILE", "write each image's probabilities, one line of %.9e values per image"},
    {0},
};

static const cli_spec spec = {
    .name = "evaluate",
    .usage = "[MODEL] [--images FILE --labels FILE] [--limit N] [options]",
    .summary = "Accuracy and mean categorical cross-entropy of a model on a labelled IDX set\n"
               "(default: the 10,000-image MNIST test set). Images are taken as they are, scaled\n"
               "as the model records (or --input-scale).",
    .details = "--json prints {\"n\": N, \"accuracy\": a, \"loss\": l}. The data set is looked for in --data,\n"
               "$CNNVIZ_DATA, $CNNVIZ_SHARED/data/mnist, ../shared/data/mnist beside the source tree\n"
               "and /usr/share/datasets/{mnist,fashion-mnist}.",
    .options = options,
    .common = CLI_COMMON_ALL,
};

typedef struct {
    const char *images, *labels, *dataset, *data, *predictions, *probs;
    long limit;
} eval_opts;

static int on_option(int key, const char *arg, void *ctx) {
    eval_opts *o = ctx;
    switch (key) {
    case OPT_IMAGES: o->images = arg; break;
    case OPT_LABELS: o->labels = arg; break;
    case OPT_DATASET: o->dataset = arg; break;
    case OPT_DATA: o->data = arg; break;
    case OPT_PREDICTIONS: o->predictions = arg; break;
    case OPT_PROBS: o->probs = arg; break;
    case OPT_LIMIT: return cli_parse_int("evaluate", "limit", arg, 1, 100000000, &o->limit);
    }
    return 0;
}

/* Write text lines atomically: the file appears whole or not at all. */
static int write_lines(const char *path, const float *probs, int n, size_t k, int classes_only) {
    cnnviz_atomic_file af;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_atomic_begin(&af, path, &err) != CNNVIZ_OK) return cli_report(&err);
    FILE *f = fopen(af.tmp_path, "w");
    if (!f) {
        cnnviz_atomic_abort(&af);
        return cli_error(path, "cannot write");
    }
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        if (classes_only)
            fprintf(f, "%d\n", infer_argmax(p, k));
        else
            for (size_t j = 0; j < k; j++) fprintf(f, j + 1 < k ? "%.9e " : "%.9e\n", (double)p[j]);
    }
    if (fclose(f) != 0) {
        cnnviz_atomic_abort(&af);
        return cli_error(path, "cannot write");
    }
    if (cnnviz_atomic_commit(&af, &err) != CNNVIZ_OK) return cli_report(&err);
    return 0;
}

int cmd_evaluate(int argc, char **argv) {
    cli_common common;
    eval_opts o = {0};
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &o, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos > 1) return cli_usage_error("evaluate", "expected at most one MODEL, got %d arguments", npos);
    if (!o.images != !o.labels) return cli_usage_error("evaluate", "--images and --labels go together");
    char images[4096], labels[4096];
    if (o.images) {
        snprintf(images, sizeof images, "%s", o.images);
        snprintf(labels, sizeof labels, "%s", o.labels);
    } else if (cli_find_dataset(o.dataset ? o.dataset : "mnist", "t10k", o.data, images, labels, sizeof images))
        return CLI_RUNTIME;

    cnnviz_model *m = cli_load_model(npos ? argv[0] : NULL, &common);
    if (!m) return CLI_RUNTIME;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_idx_images im = {0};
    uint8_t *lab = NULL;
    float *x = NULL, *probs = NULL;
    int nlab = 0;
    rc = CLI_RUNTIME;
    if (cnnviz_idx_load_images(images, &im, &err) != CNNVIZ_OK || cnnviz_idx_load_labels(labels, &lab, &nlab, &err) != CNNVIZ_OK) {
        cli_report(&err);
        goto done;
    }
    if (nlab != im.count) {
        cli_error(labels, "%d labels for %d images in %s", nlab, im.count, images);
        goto done;
    }
    cnnviz_shape in = cnnviz_model_input_shape(m), out = cnnviz_model_output_shape(m);
    size_t in_size = cnnviz_shape_size(&in), k = cnnviz_shape_size(&out);
    if ((size_t)im.rows * (size_t)im.cols != in_size) {
        cli_error(images, "images are %dx%d, the model takes %zu values per input", im.rows, im.cols, in_size);
        goto done;
    }
    int n = im.count;
    if (o.limit && o.limit < n) n = (int)o.limit;
    for (int i = 0; i < n; i++)
        if (lab[i] >= k) {
            cli_error(labels, "label %d of image %d is outside the model's %zu classes", lab[i], i, k);
            goto done;
        }
    x = malloc((size_t)n * in_size * sizeof *x);
    probs = malloc((size_t)n * k * sizeof *probs);
    if (!x || !probs) {
        cli_error(NULL, "out of memory for %d images", n);
        goto done;
    }
    cnnviz_scale_pixels(im.pixels, x, (size_t)n * in_size, cnnviz_model_input_scale(m));
    if (common.transpose)
        for (int i = 0; i < n; i++) cnnviz_transpose_image(x + (size_t)i * in_size, im.rows, im.cols);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cnnviz_model_probabilities(m, x, n, probs, &err) != CNNVIZ_OK) {
        cli_report(&err);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    int correct = 0;
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        correct += infer_argmax(p, k) == lab[i];
        /* Keras clips probabilities to [1e-7, 1-1e-7] in categorical cross-entropy */
        double q = p[lab[i]];
        q = q < 1e-7 ? 1e-7 : (q > 1 - 1e-7 ? 1 - 1e-7 : q);
        loss -= log(q);
    }
    loss /= n;
    double acc = (double)correct / n;
    if (o.predictions && write_lines(o.predictions, probs, n, k, 1)) goto done;
    if (o.probs && write_lines(o.probs, probs, n, k, 0)) goto done;
    if (common.json)
        printf("{\"n\": %d, \"accuracy\": %.6f, \"loss\": %.6f}\n", n, acc, loss);
    else
        printf("%d images: accuracy %.4f (%d correct), loss %.4f  [%.0f images/s]\n", n, acc, correct, loss,
               n / seconds);
    rc = CLI_OK;
done:
    free(x);
    free(probs);
    free(lab);
    cnnviz_idx_images_free(&im);
    cnnviz_model_free(m);
    return rc;
}
