/* Internal: the pieces shared by the Keras readers and writer
 * (keras_h5.c, keras_zip.c, keras_config.c, keras_save.c). Never installed. */
#pragma once
#include <cJSON.h>
#include <hdf5.h>

#include "model-impl.h"

/* Build and finalize a model (weights zero) from a parsed Keras model config:
 * the model_config attribute of a legacy .h5, a .keras config.json or what
 * model.to_json() prints: {"class_name": "Sequential"|"Functional"|"Model",
 * "config": [...] | {"layers": [...], ...}}. path is only used in errors. */
cnnviz_status cnnviz_keras_build(const cJSON *root, const char *path, cnnviz_model **out, cnnviz_error *err);

/* Read the HDF5 dataset `name` (relative to loc) into p->data, checking it is
 * a float tensor of exactly p's shape; float64 files are converted by HDF5. */
cnnviz_status cnnviz_keras_read_tensor(hid_t loc, const char *name, const cnnviz_layer *l, cnnviz_param *p,
                                       const char *path, cnnviz_error *err);

/* The .keras zip reader (keras_zip.c); the file starts with PK\3\4. */
cnnviz_status cnnviz_keras_load_zip(const char *path, cnnviz_model **out, cnnviz_error *err);

/* Parse / format cnnviz_input_scale: "unit", "raw", "center", "meanstd:M:S". */
int cnnviz_keras_parse_scale(const char *s, cnnviz_input_scale *out);
void cnnviz_keras_format_scale(cnnviz_input_scale s, char *buf, size_t n);

/* Keras 3 names a layer's weight group snake_case(class name)
 * (keras/src/utils/naming.py to_snake_case); out has room for n bytes. */
void cnnviz_keras_snake_case(const char *class_name, char *out, size_t n);

/* The keras_version our writer records (see keras_save.c for why). */
#define CNNVIZ_KERAS_WRITE_VERSION "2.15.0"
