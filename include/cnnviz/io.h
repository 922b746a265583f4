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

/* --- IDX (MNIST / Fashion-MNIST), gzip or plain, header-validated ----------
 * The magic (0x00000803 images, 0x00000801 labels) and the sizes (at most
 * 10,000,000 items, sides 1..4096) are checked before anything is allocated,
 * and the data must be exactly as long as the header says: a short, long or
 * damaged file is CNNVIZ_ERR_FORMAT ("truncated: header says 10000 images of
 * 28x28, file has 4321 bytes of pixels"). */
typedef struct {
    int count, rows, cols;
    uint8_t *pixels; /* count*rows*cols, row-major */
} cnnviz_idx_images;

cnnviz_status cnnviz_idx_load_images(const char *path, cnnviz_idx_images *out, cnnviz_error *err);
cnnviz_status cnnviz_idx_load_labels(const char *path, uint8_t **labels, int *count, cnnviz_error *err);
void cnnviz_idx_images_free(cnnviz_idx_images *im);

/* Scale n uint8 pixels into the model's input scale (meanstd with std 0 divides by 1). */
void cnnviz_scale_pixels(const uint8_t *px, float *out, size_t n, cnnviz_input_scale s);
/* The same for n pixel values already in floats, 0..255 (a loaded image);
 * out may be px. */
void cnnviz_scale_values(const float *px, float *out, size_t n, cnnviz_input_scale s);
/* In place: the rows x cols image becomes its cols x rows transpose, x[c][r] = old x[r][c]
 * (models trained on transposed data); no allocation, any shape. */
void cnnviz_transpose_image(float *x, int rows, int cols);

/* --- images ---------------------------------------------------------------- */
/* Decode a PNG (any colour type / bit depth, tRNS, interlaced) or JPEG
 * (baseline, progressive, grey, CMYK), chosen by magic bytes, to 8-bit RGBA
 * (w*h*4, malloc'd), the samples as stored (no gamma or colour management).
 * Images over 16384 pixels a side or 64 Mpixel are refused before
 * allocating (CNNVIZ_ERR_UNSUPPORTED), as are other formats ("unsupported
 * image format (WEBP); ..."); damaged and truncated files are
 * CNNVIZ_ERR_FORMAT. Nothing is printed. On error *rgba is NULL. */
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
 * black: grey, invert dark-on-light, remove the background level, crop to the
 * ink (ignoring a frame and specks), fit in 20x20 keeping the aspect (area
 * averaging; hairlines thickened), centre by mass in 28x28. Other out sizes
 * scale the 20/28 box alike. src/io/preprocess.c explains each step. A blank
 * image is CNNVIZ_ERR_INVALID "no digit found: the image is blank".
 * preprocess=0: the image must already be out_h x out_w (else
 * CNNVIZ_ERR_INVALID "image is 80x80, the model needs 28x28 (use
 * preprocessing or resize it)") and is taken as it is, only made grey
 * (Rec. 601 luminance, transparent as black). report may be NULL. */
cnnviz_status cnnviz_image_load_digit(const char *path, int preprocess, int out_h, int out_w, float *out,
                                      cnnviz_preprocess_report *report, cnnviz_error *err);

/* Write a grey 8-bit PNG of a h x w float image, mapping [lo, hi] to 0..255
 * (rounded, clamped, NaN as 0), atomically, with no timestamp. */
cnnviz_status cnnviz_png_write_gray(const char *path, const float *x, int h, int w, float lo, float hi,
                                    cnnviz_error *err);

/* --- dumps ------------------------------------------------------------------- */
/* One float32 array as .npy (v1.0, '<f4', C order), atomically written. */
cnnviz_status cnnviz_npy_write(const char *path, const float *data, const int *dims, int rank,
                               cnnviz_error *err);

/* Named float32 datasets into one HDF5 file, atomically (temp name + rename).
 * Names may not contain '/' and must differ; rank 0..5. */
typedef struct {
    const char *name;
    const float *data;
    int rank;
    int dims[5];
} cnnviz_dataset;
cnnviz_status cnnviz_h5_write_datasets(const char *path, const cnnviz_dataset *sets, int n,
                                       cnnviz_error *err);
/* Read one dataset (any float or integer type, converted to float32; rank up
 * to 5); malloc'd. A missing name is CNNVIZ_ERR_INVALID "no dataset named 'x'". */
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
