/* libFuzzer harness: a Keras model file (.h5 or .keras zip, told apart by
 * magic bytes as cnnviz_model_load does) through the in-process reader,
 * src/io/keras_h5.c and keras_zip.c. Built twice, as fuzz_keras_h5 and
 * fuzz_keras_zip: the same code, seeded with the one format or the other.
 * libhdf5's own crashes show up here; scripts/fuzz.sh tells them apart
 * from cnnviz's by the stack.
 * The input goes through a file on /dev/shm (fuzz_util.h says why); when
 * cnnviz_model_load_memory lands (the reader helper's work), load from the
 * buffer instead. */
#include <hdf5.h>

#include "cnnviz/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    const char *path = fuzz_tmpfile_path(data, size, "model");
    if (cnnviz_model_load_in_process(path, &m, &err) == CNNVIZ_OK) cnnviz_model_free(m);
    /* libhdf5 keeps freed objects on free lists for reuse; give them back
     * so LeakSanitizer and the RSS limit see only what cnnviz holds */
    H5garbage_collect();
    return 0;
}
