/* libFuzzer harness: IDX images and labels, plain or gzip (src/io/idx.c). */
#include "cnnviz/io.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    cnnviz_error err;
    cnnviz_idx_images im;
    if (cnnviz_idx_load_images(path, &im, &err) == CNNVIZ_OK) cnnviz_idx_images_free(&im);
    uint8_t *labels = NULL;
    int count = 0;
    if (cnnviz_idx_load_labels(path, &labels, &count, &err) == CNNVIZ_OK) free(labels);
    return 0;
}
