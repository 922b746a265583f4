/* libFuzzer harness: the Keras model.to_json() text (src/io/keras_config.c)
 * that cnnviz train --config reads and every model file carries. */
#include "cnnviz/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstring(data, size);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    if (cnnviz_model_from_keras_json(text, "fuzz.json", &m, &err) == CNNVIZ_OK) cnnviz_model_free(m);
    free(text);
    return 0;
}
