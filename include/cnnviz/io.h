/* cnnviz — data in and out: IDX data sets, PNG/JPEG images with MNIST-style
 * preprocessing, and activation dumps (.npy, .h5). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"
#ifdef __cplusplus
extern "C" {
#endif

/* --- IDX (MNIST / Fashion-MNIST), gzip or plain, header-validated ---------- */
typedef struct {
    int count, rows, cols;
    uint8_t *pixels; /* count*rows*cols, row-major */
} cnnviz_idx_images;

cnnviz_status cnnviz_idx_load_images(const char *path, cnnviz_idx_images *out, cnnviz_error *err);
cnnviz_status cnnviz_idx_load_labels(const char *path, uint8_t **labels, int *count, cnnviz_error *err);
void cnnviz_idx_images_free(cnnviz_idx_images *im);

/* Scale n uint8 pixels into the model's input scale. */
void cnnviz_scale_pixels(const uint8_t *px, float *out, size_t n, cnnviz_input_scale s);
/* In place: x[r][c] = old x[c][r] for a square image (models trained on transposed data). */
void cnnviz_transpose_image(float *x, int rows, int cols);

/* --- images ---------------------------------------------------------------- */
/* Decode a PNG (any colour type / bit depth) or JPEG, chosen by magic bytes,
 * to 8-bit RGBA (w*h*4). Sizes are checked before allocating. */
cnnviz_status cnnviz_image_read_rgba8(const char *path, int *w, int *h, uint8_t **rgba, cnnviz_error *err);

/* What MNIST-style preprocessing did, for the report on stderr. */
typedef struct {
    int src_w, src_h;
    int inverted;          /* dark-on-light input was inverted */
    int alpha_composited;  /* transparent pixels were composited */
    int crop_x, crop_y, crop_w, crop_h; /* the ink box in the source */
    float scale;           /* source pixels -> 28x28 pixels */
    float shift_x, shift_y;/* centre-of-mass shift applied */
    char summary[256];     /* one line: "400x400 RGBA, light-on-dark, ink 120x300 at (10,20), fit 20x20, shifted (+1,-2)" */
} cnnviz_preprocess_report;

/* Load IMAGE and make a 28x28 MNIST-style digit, 0..255 floats, white ink on
 * black: grey, invert dark-on-light, crop to the ink, fit in 20x20 keeping the
 * aspect, centre by mass in 28x28. preprocess=0: the image must already be
 * out_h x out_w and is taken as it is (only converted to grey). */
cnnviz_status cnnviz_image_load_digit(const char *path, int preprocess, int out_h, int out_w, float *out,
                                      cnnviz_preprocess_report *report, cnnviz_error *err);

/* Write a grey 8-bit PNG of a h x w float image in [lo, hi] (used to export samples). */
cnnviz_status cnnviz_png_write_gray(const char *path, const float *x, int h, int w, float lo, float hi,
                                    cnnviz_error *err);

/* --- dumps ------------------------------------------------------------------- */
/* One float32 array as .npy (v1.0, '<f4', C order), atomically written. */
cnnviz_status cnnviz_npy_write(const char *path, const float *data, const int *dims, int rank,
                               cnnviz_error *err);

/* Named float32 datasets into one HDF5 file, atomically (temp name + rename). */
typedef struct {
    const char *name;
    const float *data;
    int rank;
    int dims[5];
} cnnviz_dataset;
cnnviz_status cnnviz_h5_write_datasets(const char *path, const cnnviz_dataset *sets, int n,
                                       cnnviz_error *err);
/* Read one float32 dataset (any rank up to 5); malloc'd. */
cnnviz_status cnnviz_h5_read_dataset(const char *path, const char *name, float **data, int *rank, int dims[5],
                                     cnnviz_error *err);

/* Atomic output: open "<path>.tmp-XXXXXX" in the target's folder; commit renames it over path,
 * abort removes it. Used by every writer so a failed run leaves no partial file. */
typedef struct {
    char final_path[4096];
    char tmp_path[4112];
} cnnviz_atomic_file;
cnnviz_status cnnviz_atomic_begin(cnnviz_atomic_file *af, const char *path, cnnviz_error *err);
cnnviz_status cnnviz_atomic_commit(cnnviz_atomic_file *af, cnnviz_error *err);
void cnnviz_atomic_abort(cnnviz_atomic_file *af);

#ifdef __cplusplus
}
#endif
