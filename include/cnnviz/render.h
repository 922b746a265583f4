/* cnnviz — figures: activation grids, kernels, training curves and
 * gradient-ascent patterns, drawn with Cairo.
 *
 * The output format follows the file extension: .png (our own libpng writer,
 * with tEXt provenance), .svg or .pdf (Cairo's vector surfaces). Rendering is
 * deterministic: fixed colormap tables (matplotlib's), DejaVu Sans at fixed
 * sizes with fixed hinting and antialiasing, no timestamps, so the same input
 * gives the same bytes. Every file is written to a temporary name and renamed. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"
#include "cnnviz/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

/* --- colormaps and normalisation ------------------------------------------- */
typedef enum {
    CNNVIZ_CMAP_GRAY,
    CNNVIZ_CMAP_VIRIDIS,
    CNNVIZ_CMAP_MAGMA,
    CNNVIZ_CMAP_RDBU,
} cnnviz_cmap;

/* "gray", "viridis", "magma", "RdBu" (matplotlib's names; case-insensitive).
 * Returns 0, or -1 for an unknown name. */
int cnnviz_cmap_parse(const char *name, cnnviz_cmap *out);
const char *cnnviz_cmap_name(cnnviz_cmap c);
/* RGB of value v in [lo, hi] the way matplotlib's imshow colours it:
 * level = floor((v-lo)/(hi-lo) * 256) clamped to 0..255; lo == hi gives level 0. */
void cnnviz_cmap_rgb(cnnviz_cmap c, float v, float lo, float hi, uint8_t rgb[3]);

typedef enum {
    CNNVIZ_NORM_LAYER,  /* one range per layer (default) */
    CNNVIZ_NORM_MAP,    /* one range per map; each tile states its own */
    CNNVIZ_NORM_GLOBAL, /* one range over every map drawn in the figure */
    CNNVIZ_NORM_FIXED,  /* the given [lo, hi]; values outside are clipped */
} cnnviz_norm_kind;

typedef struct {
    cnnviz_norm_kind kind;
    float lo, hi; /* CNNVIZ_NORM_FIXED */
} cnnviz_norm;

/* "layer", "map", "global" or "fixed:LO:HI" with LO < HI. */
cnnviz_status cnnviz_norm_parse(const char *s, cnnviz_norm *out, cnnviz_error *err);
/* "layer", "map", "global", "fixed [-1, 1]": the words written on a figure. */
void cnnviz_norm_format(const cnnviz_norm *n, char *buf, size_t size);

/* --- options shared by every figure ----------------------------------------- */
/* Provenance written into PNG tEXt chunks ("Software", "Model", "Model SHA-256",
 * "Command", "Seed") and PDF/SVG metadata where the format has a place for it.
 * NULL fields are left out. Nothing time-dependent is ever written. */
typedef struct {
    const char *model;        /* the model file as named on the command line */
    const char *model_sha256; /* 64 hex digits of the model file */
    const char *command;      /* the command line */
    const char *seed;         /* decimal seed, when the figure depends on one */
} cnnviz_provenance;

typedef struct {
    cnnviz_cmap cmap; /* map colours (kernels always use RdBu around 0) */
    cnnviz_norm norm;
    int pixel;        /* figure pixels per map pixel; 0 = automatic (tiles of about 80 px) */
    const char *title;/* first line of the figure; NULL = a default per figure */
    int columns;      /* activations: panels flow into this many page columns; 0 = what fits a page best */
    int one_sided;    /* activations: draw panels with negative values in cmap too (default: RdBu around 0) */
    cnnviz_provenance prov;
} cnnviz_render_options;

/* cmap gray, norm layer, pixel automatic, no title or provenance */
cnnviz_render_options cnnviz_render_options_default(void);

/* --- activations ------------------------------------------------------------ */
typedef enum {
    CNNVIZ_PANEL_AUTO,  /* rank-3 (H,W,C): a grid of C maps; rank 1 or 2: a strip of cells */
    CNNVIZ_PANEL_PROBS, /* a labelled bar chart of class probabilities, the highest highlighted */
} cnnviz_panel_kind;

typedef struct {
    const char *name;       /* Keras name, e.g. "conv2d_5" */
    const char *class_name; /* Keras class, e.g. "Conv2D" */
    const char *note;       /* extra words for the title ("relu"), may be NULL */
    cnnviz_shape shape;     /* one sample, no batch axis */
    const float *data;      /* (shape), channels last */
    cnnviz_panel_kind kind;
    const char *const *labels; /* CNNVIZ_PANEL_PROBS: a label per class; NULL = 0, 1, 2, ... */
} cnnviz_panel;

/* One figure: the model input (drawn in grey with its own colorbar), then a
 * panel per layer from top to bottom. input may be NULL. Each grid panel
 * has a title with the layer's name, class and shape, a near-square grid of
 * maps with each map's index, and a colorbar that states the value range of
 * the normalisation in use, which is also written on the figure. */
cnnviz_status cnnviz_render_activations(const char *path, const cnnviz_panel *input, const cnnviz_panel *panels,
                                        int npanels, const cnnviz_render_options *opt, cnnviz_error *err);

/* --- kernels ---------------------------------------------------------------- */
/* A Conv2D kernel (kh,kw,in,out) and its bias (out) or NULL, drawn on a
 * symmetric RdBu scale around 0 (blue positive, red negative, as matplotlib's
 * RdBu). in == 1: one tile per output map with its bias under it; in > 1
 * with top == 0: an out x in matrix of kh x kw tiles, rows grouped by 8,
 * with a bias column; in > 1 with top = K: a heatmap of each (output,
 * input) kernel's L2 norm, and for each output map the kernels of its K
 * strongest inputs, labelled with the input. A Dense kernel (in,out) is
 * drawn as one in x out matrix; a Dense after Flatten of (H,W,C) maps has
 * the same memory layout as a (H,W,C,units) kernel and can be drawn as one
 * ("folded back" onto the maps, unit = output map; set folded). */
typedef struct {
    const char *name, *class_name;
    cnnviz_shape shape; /* (kh,kw,in,out) or (in,out) */
    const float *kernel;
    const float *bias;  /* (out) or NULL */
    int top;            /* in > 1: the strongest inputs per output map drawn (0: the whole matrix) */
    int folded;         /* a Dense kernel drawn as (H,W,C,units): units, maps of the layer before */
} cnnviz_kernel_panel;

cnnviz_status cnnviz_render_kernels(const char *path, const cnnviz_kernel_panel *k, const cnnviz_render_options *opt,
                                    cnnviz_error *err);

/* --- training history --------------------------------------------------------- */
/* history_json is Keras' History.history as cnnviz train stores it in model
 * meta "cnnviz_history": {"loss":[..],"accuracy":[..],"val_loss":[..],
 * "val_accuracy":[..]} (val_* optional; "acc"/"val_acc" of old Keras accepted).
 * Two panels side by side: loss and accuracy per epoch, training and validation. */
cnnviz_status cnnviz_render_history(const char *path, const char *history_json, const cnnviz_render_options *opt,
                                    cnnviz_error *err);
/* The same with the second curve named val_label ("test" when it is the
 * test set; NULL: "validation"). Both mark the best epoch: the highest
 * validation accuracy, else training accuracy, else the lowest loss. */
cnnviz_status cnnviz_render_history_labelled(const char *path, const char *history_json, const char *val_label,
                                             const cnnviz_render_options *opt, cnnviz_error *err);

/* --- gradient-ascent patterns ---------------------------------------------------- */
/* n images (n,h,w,c), c = 1 (drawn with opt->cmap, each tile on its own range)
 * or 3 (RGB, each tile stretched to its own range). Each tile is labelled
 * with labels[i] (or "map <map[i]>") and activation[i]; dead[i] != 0 greys
 * the tile out and marks it "dead"; a map whose activation is below
 * weak_fraction of the largest is framed and marked "weak". map,
 * activation, dead, labels, settings may be NULL (index i, no value, none
 * dead); weak_fraction 0 marks none; cols 0 = a near-square grid. */
typedef struct {
    const char *layer;      /* Keras name for the title */
    int n, h, w, c;
    const float *images;    /* (n,h,w,c) */
    const int *map;
    const float *activation;
    const int *dead;
    const char *const *labels; /* a label per tile, e.g. "class 3" */
    float weak_fraction;
    const char *settings;   /* what shaped the patterns, for the subtitle ("200 steps, jitter 2, ...") */
    int cols;
    int shared_range;       /* every tile on [lo, hi] instead of its own range */
    float lo, hi;
} cnnviz_pattern_set;

cnnviz_status cnnviz_render_patterns(const char *path, const cnnviz_pattern_set *p, const cnnviz_render_options *opt,
                                     cnnviz_error *err);

/* --- explanations ------------------------------------------------------------ */
/* A row per image: the input, then a panel per method with the map
 * overlaid on the input and its colorbar, titled with the method, the
 * class and its probability. Maps come at the input's resolution (the
 * caller resizes them); a signed map is drawn on RdBu around 0, the others
 * on magma from 0 to their largest value. */
typedef struct {
    int n, nmethods;
    int h, w, c;                 /* the input */
    const float *inputs;         /* (n, h, w, c) as the model saw them */
    const char *const *names;    /* a label per image */
    const int *cls;              /* (n) the class explained */
    const float *prob;           /* (n) its probability */
    const char *const *methods;  /* a name per method */
    const float *const *maps;    /* per method (n, h, w) */
    const int *signed_maps;      /* per method: 1 when its values have either sign */
} cnnviz_explain_figure;

cnnviz_status cnnviz_render_explain(const char *path, const cnnviz_explain_figure *f, const cnnviz_render_options *opt,
                                    cnnviz_error *err);

/* --- checksums ---------------------------------------------------------------- */
/* SHA-256 of decoded pixels, the hash `cnnviz checksum` prints: the input is
 * width and height as 4-byte big-endian unsigned integers, then the w*h*4
 * RGBA8 bytes row by row, top row first (not premultiplied). hex gets 64
 * lower-case hex digits and a NUL. */
void cnnviz_pixels_sha256(const uint8_t *rgba, int w, int h, char hex[65]);
/* SHA-256 of a whole file (for provenance); hex as above. */
cnnviz_status cnnviz_file_sha256(const char *path, char hex[65], cnnviz_error *err);

/* Does the extension of path name a format we write? Returns 0 for .png,
 * .svg, .pdf (case-insensitive), else fills err:
 * "unknown output format '.jpg' (use .png, .svg or .pdf)". */
cnnviz_status cnnviz_render_check_path(const char *path, cnnviz_error *err);

#ifdef __cplusplus
}
#endif
