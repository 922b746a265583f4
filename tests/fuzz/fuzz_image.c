/* libFuzzer harness: a PNG or JPEG digit (src/io/image.c) with and without
 * the MNIST-style preprocessing (src/io/preprocess.c), as cnnviz predict
 * loads it. */
#include "cnnviz/io.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    float digit[28 * 28];
    cnnviz_preprocess_report report;
    cnnviz_error err;
    /* one decode per input (the costly part): odd lengths preprocessed,
     * even ones taken as they are; mutations change the length freely */
    cnnviz_image_load_digit(path, (int)(size & 1), 28, 28, digit, size & 1 ? &report : NULL, &err);
    return 0;
}
