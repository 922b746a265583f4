/* A small program using libcnnviz: export MNIST digits as PNG files, the
 * way samples/digit-*.png were made.
 *
 *   build/export_digits IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR [PER_CLASS]
 *
 * writes OUTDIR/digit-<label>.png for the first test image of each class
 * (with PER_CLASS > 1 also digit-<label>-<k>.png for the next ones), 28x28
 * grey, white ink on black, pixel for pixel as the IDX file holds them. It
 * prints the IDX index each file came from. */
#include <stdio.h>
#include <stdlib.h>

#include "cnnviz/io.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR [PER_CLASS]\n", argv[0]);
        return 2;
    }
    int per_class = argc > 4 ? atoi(argv[4]) : 1;
    if (per_class < 1) per_class = 1;
    cnnviz_error err;
    cnnviz_idx_images im;
    uint8_t *labels = NULL;
    int n = 0;
    if (cnnviz_idx_load_images(argv[1], &im, &err) != CNNVIZ_OK ||
        cnnviz_idx_load_labels(argv[2], &labels, &n, &err) != CNNVIZ_OK) {
        fprintf(stderr, "export_digits: %s: %s\n", err.file, err.msg);
        return 1;
    }
    if (n != im.count) {
        fprintf(stderr, "export_digits: %d labels for %d images\n", n, im.count);
        return 1;
    }
    size_t size = (size_t)im.rows * (size_t)im.cols;
    float *x = malloc(size * sizeof *x);
    int done[10] = {0}, rc = 0;
    for (int i = 0; i < n && x && rc == 0; i++) {
        int label = labels[i];
        if (label > 9 || done[label] >= per_class) continue;
        char path[4096];
        if (done[label] == 0)
            snprintf(path, sizeof path, "%s/digit-%d.png", argv[3], label);
        else
            snprintf(path, sizeof path, "%s/digit-%d-%d.png", argv[3], label, done[label]);
        for (size_t j = 0; j < size; j++) x[j] = im.pixels[(size_t)i * size + j];
        if (cnnviz_png_write_gray(path, x, im.rows, im.cols, 0.0f, 255.0f, &err) != CNNVIZ_OK) {
            fprintf(stderr, "export_digits: %s: %s\n", err.file, err.msg);
            rc = 1;
            break;
        }
        printf("%s  (index %d)\n", path, i);
        done[label]++;
    }
    free(x);
    free(labels);
    cnnviz_idx_images_free(&im);
    return rc;
}
