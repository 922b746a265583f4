/* Internal: the pieces shared by the Keras readers and writer
 * (keras_h5.c, keras_zip.c, keras_config.c, keras_save.c). Never installed. */
#pragma once
#include <cJSON.h>
#include <hdf5.h>

#include "model-impl.h"

/* Build and finalize a model (weights zero) from a parsed Keras model config:
 * the model_config attribute of a legacy .h5, a .keras config.json or what
 * model.to_json() prints: {"class_name": "Sequential"|"Functional"|"Model",
 * "config": [...] | {"layers": [...], ...}}. path is only used in errors.
 * opt's budget (layers, each dimension, weights per layer and in all) is
 * checked before the weights are allocated; opt NULL: the defaults. */
cnnviz_status cnnviz_keras_build(const cJSON *root, const char *path, const cnnviz_load_options *opt,
                                 cnnviz_model **out, cnnviz_error *err);

/* The same from JSON text of len bytes (need not be NUL-terminated): its
 * length and nesting are checked against opt before cJSON parses it. What
 * the parent of the loader's child process rebuilds the model with. */
cnnviz_status cnnviz_keras_build_json(const char *json, size_t len, const char *name, const cnnviz_load_options *opt,
                                      cnnviz_model **out, cnnviz_error *err);

/* Refuse JSON text longer than opt->max_config_bytes or nested deeper than
 * opt->max_json_depth, before anything parses it. what names the text in
 * the error ("the model_config attribute", "config.json"). */
cnnviz_status cnnviz_keras_check_json(const char *json, size_t len, const char *what, const char *path,
                                      const cnnviz_load_options *opt, cnnviz_error *err);

/* A Keras model file (legacy .h5 or .keras zip, by its magic bytes) held in
 * memory, parsed in this process under opt's budget (NULL: the defaults).
 * config_json, when not NULL, receives the Keras JSON config text the model
 * was built from (malloc'd; NULL on failure): with the weights slab and the
 * meta entries it is all a parent needs to rebuild the model with
 * cnnviz_keras_build_json. name is used in errors. */
cnnviz_status cnnviz_keras_load_memory(const void *buf, size_t len, const char *name, const cnnviz_load_options *opt,
                                       cnnviz_model **out, char **config_json, cnnviz_error *err);

/* Turn off libhdf5's loading of filter plugins (HDF5_PLUGIN_PATH), once
 * per process, before the readers open any file: a model file naming an
 * unknown filter must not make the library dlopen anything. */
void cnnviz_keras_hdf5_init(void);

/* Open an HDF5 file image of len bytes read-only (copied by HDF5, with
 * the core driver: nothing is read from or written to disk); < 0 when
 * damaged. */
hid_t cnnviz_keras_open_image(const void *buf, size_t len);

/* Whether every component of `name` (relative to loc) is a hard link, so
 * that opening it cannot leave the file. *found: 1 when it is and exists,
 * 0 when some component is missing. A soft, external or user-defined link
 * on the way is an error naming `what`, the link and its kind. */
cnnviz_status cnnviz_keras_hard_path(hid_t loc, const char *name, const char *what, const char *path, int *found,
                                     cnnviz_error *err);

/* Read the HDF5 dataset `name` (relative to loc) into p->data, checking it is
 * a float tensor of exactly p's shape, reached through hard links, stored in
 * the file (no external storage, not virtual) and filtered only the way
 * Keras files may be; float64 files are converted by HDF5. file_bytes is the
 * size of the file image, which no chunk's stored data may exceed. */
cnnviz_status cnnviz_keras_read_tensor(hid_t loc, const char *name, const cnnviz_layer *l, cnnviz_param *p,
                                       size_t file_bytes, const char *path, cnnviz_error *err);

/* The .keras zip reader (keras_zip.c) over an archive in memory. */
cnnviz_status cnnviz_keras_load_zip_memory(const void *buf, size_t len, const char *path,
                                           const cnnviz_load_options *opt, cnnviz_model **out, char **config_json,
                                           cnnviz_error *err);

/* Parse / format cnnviz_input_scale: "unit", "raw", "center", "meanstd:M:S". */
int cnnviz_keras_parse_scale(const char *s, cnnviz_input_scale *out);
void cnnviz_keras_format_scale(cnnviz_input_scale s, char *buf, size_t n);

/* Keras 3 names a layer's weight group snake_case(class name)
 * (keras/src/utils/naming.py to_snake_case); out has room for n bytes. */
void cnnviz_keras_snake_case(const char *class_name, char *out, size_t n);

/* The keras_version our writer records (see keras_save.c for why). */
#define CNNVIZ_KERAS_WRITE_VERSION "2.15.0"
