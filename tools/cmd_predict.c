/* cnnviz predict: class and probabilities for each image. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "infer.h"

enum { OPT_NO_PREPROCESS = OPT_FIRST_COMMAND_OPTION };

static const cli_option options[] = {
    {"no-preprocess", OPT_NO_PREPROCESS, NULL, "take a 28x28 image as it is (no inversion, cropping or centring)"},
    {0},
};

static const cli_spec spec = {
    .name = "predict",
    .usage = "[MODEL] IMAGE... [options]",
    .summary = "Classify images. IMAGE is a PNG or JPEG file (MNIST-style preprocessing: grey, invert\n"
               "dark-on-light, crop to the ink, fit in 20x20, centre by mass in 28x28; reported on\n"
               "stderr) or IDXFILE@K, the K-th (0-based) image of an IDX file, taken as it is.",
    .details = "--json prints [{\"input\",\"class\",\"probs\":[...]}]. For a model whose last layer is not\n"
               "softmax, probs is softmax of its output.",
    .options = options,
    .common = CLI_COMMON_ALL,
};

static int on_option(int key, const char *arg, void *ctx) {
    (void)arg;
    if (key == OPT_NO_PREPROCESS) *(int *)ctx = 0;
    return 0;
}

int cmd_predict(int argc, char **argv) {
    cli_common common;
    int npos, preprocess = 1;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &preprocess, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    const char *model_path = NULL;
    int first = 0;
    if (npos > 0 && cli_is_model_path(argv[0])) {
        model_path = argv[0];
        first = 1;
    }
    if (npos - first < 1) return cli_usage_error("predict", "no IMAGE given");
    cnnviz_model *m = cli_load_model(model_path, &common);
    if (!m) return CLI_RUNTIME;

    int nimg = npos - first;
    cnnviz_shape in = cnnviz_model_input_shape(m), out = cnnviz_model_output_shape(m);
    size_t in_size = cnnviz_shape_size(&in), nclass = cnnviz_shape_size(&out);
    float *x = malloc((size_t)nimg * in_size * sizeof *x);
    float *probs = malloc((size_t)nimg * nclass * sizeof *probs);
    if (!x || !probs) {
        rc = cli_error(NULL, "out of memory");
        goto done;
    }
    for (int i = 0; i < nimg; i++)
        if (cli_load_input(m, argv[first + i], preprocess, &common, x + (size_t)i * in_size)) {
            rc = CLI_RUNTIME;
            goto done;
        }
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_model_probabilities(m, x, nimg, probs, &err) != CNNVIZ_OK) {
        rc = cli_report(&err);
        goto done;
    }
    if (common.json) {
        cJSON *root = cJSON_CreateArray();
        for (int i = 0; i < nimg; i++) {
            const float *p = probs + (size_t)i * nclass;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "input", argv[first + i]);
            cJSON_AddNumberToObject(o, "class", infer_argmax(p, nclass));
            cJSON *arr = cJSON_AddArrayToObject(o, "probs");
            for (size_t k = 0; k < nclass; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(p[k]));
            cJSON_AddItemToArray(root, o);
        }
        char *s = cJSON_PrintUnformatted(root);
        puts(s);
        free(s);
        cJSON_Delete(root);
    } else {
        for (int i = 0; i < nimg; i++) {
            const float *p = probs + (size_t)i * nclass;
            int c = infer_argmax(p, nclass);
            printf("%s: %d (%.4f)  [", argv[first + i], c, p[c]);
            for (size_t k = 0; k < nclass; k++) printf(k ? " %.4f" : "%.4f", p[k]);
            printf("]\n");
        }
    }
done:
    free(x);
    free(probs);
    cnnviz_model_free(m);
    return rc;
}
