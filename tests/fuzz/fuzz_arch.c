/* libFuzzer harness: the --arch grammar (src/train/spec.c) on the 28x28x1
 * input that cnnviz train gives it. */
#include "cnnviz/train.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *spec = fuzz_cstring(data, size);
    cnnviz_shape in = {3, {28, 28, 1, 0}};
    cnnviz_model *m = NULL;
    cnnviz_error err;
    if (cnnviz_model_from_spec(spec, &in, &m, &err) == CNNVIZ_OK) cnnviz_model_free(m);
    free(spec);
    return 0;
}
