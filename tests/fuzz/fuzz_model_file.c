/* libFuzzer harness: a Keras model file (.h5 or .keras zip, told apart by
 * magic bytes as cnnviz_model_load does) through the in-process reader,
 * src/io/keras_h5.c and keras_zip.c, straight from the buffer
 * (cnnviz_model_load_memory, what the child process of cnnviz_model_load
 * runs). Built twice, as fuzz_keras_h5 and fuzz_keras_zip: the same code,
 * seeded with the one format or the other. libhdf5's own crashes show up
 * here; scripts/fuzz.sh tells them apart from cnnviz's by the stack. */
#include <hdf5.h>
#include <stdint.h>

#include "cnnviz/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    if (cnnviz_model_load_memory(data, size, "fuzz-input", NULL, &m, &err) == CNNVIZ_OK) cnnviz_model_free(m);
    /* libhdf5 keeps freed objects on free lists for reuse; give them back
     * so LeakSanitizer and the RSS limit see only what cnnviz holds */
    H5garbage_collect();
    return 0;
}
