/* A small program using libcnnviz: classify PNG/JPEG digits with a Keras model.
 *
 *   build/classify samples/model.h5 samples/digit-7.png
 *
 * It shows the whole public flow: load, preprocess, scale, run, read the output. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnviz/io.h"
#include "cnnviz/model.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.h5 IMAGE...\n", argv[0]);
        return 2;
    }
    cnnviz_error err;
    cnnviz_model *model;
    if (cnnviz_model_load(argv[1], &model, &err) != CNNVIZ_OK) {
        fprintf(stderr, "classify: %s: %s\n", err.file, err.msg);
        return 1;
    }
    cnnviz_shape in = cnnviz_model_input_shape(model), out = cnnviz_model_output_shape(model);
    size_t n_in = cnnviz_shape_size(&in), n_out = cnnviz_shape_size(&out);
    float *x = malloc(n_in * sizeof *x), *y = malloc(n_out * sizeof *y);
    int rc = 0;
    for (int i = 2; i < argc && x && y; i++) {
        /* a 28x28 MNIST-style digit, 0..255, white ink on black */
        if (cnnviz_image_load_digit(argv[i], 1, 28, 28, x, NULL, &err) != CNNVIZ_OK) {
            fprintf(stderr, "classify: %s: %s\n", err.file, err.msg);
            rc = 1;
            continue;
        }
        cnnviz_scale_values(x, x, n_in, cnnviz_model_input_scale(model));
        if (cnnviz_model_predict(model, x, 1, 1, y, &err) != CNNVIZ_OK) {
            fprintf(stderr, "classify: %s\n", err.msg);
            rc = 1;
            break;
        }
        size_t best = 0;
        for (size_t k = 1; k < n_out; k++)
            if (y[k] > y[best]) best = k;
        printf("%s: %zu (p=%.3f)\n", argv[i], best, y[best]);
    }
    free(x);
    free(y);
    cnnviz_model_free(model);
    return rc;
}
