/* The explanation figure: a row per image, the input and then each
 * method's map laid over it, each with a colorbar of the map's own range. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render-impl.h"

enum {
    MARGIN = 20,
    HEADER_H = 48,
    TILE_TARGET = 112,
    LABEL_H = 16,
    BAR_GAP = 6,
    BAR_W = 10,
    GAP_X = 14,
    GAP_Y = 12,
};

/* how much of the map's colour is laid over the grey input */
#define OVERLAY 0.6f

/* The image's grey (its own range) under the map's colours. */
static void blend(const float *img, int h, int w, int c, const float *map, const uint8_t (*lut)[3], float lo,
                  float hi, float *rgb) {
    float ilo, ihi;
    render_range(img, (size_t)h * w * c, 1, &ilo, &ihi);
    for (int p = 0; p < h * w; p++) {
        double g = 0;
        for (int k = 0; k < c; k++) g += img[(size_t)p * c + k];
        g /= c;
        float grey = ihi > ilo ? (float)(255.0 * (g - ilo) / (ihi - ilo)) : 0.0f;
        for (int k = 0; k < 3; k++) {
            float col = map ? lut[render_cmap_level(map[p], lo, hi)][k] : grey;
            rgb[(size_t)p * 3 + k] = map ? (1 - OVERLAY) * grey + OVERLAY * col : grey;
        }
    }
}

/* The colour range of one map: symmetric around 0 when signed. */
static void map_range(const float *map, size_t n, int is_signed, float *lo, float *hi) {
    float a, b;
    render_range(map, n, 1, &a, &b);
    if (is_signed) {
        float m = fmaxf(fabsf(a), fabsf(b));
        if (!(m > 0)) m = 1;
        *lo = -m, *hi = m;
    } else {
        *lo = 0, *hi = b > 0 ? b : 1;
    }
}

static cnnviz_status check_figure(const char *path, const cnnviz_explain_figure *f, cnnviz_error *err) {
    if (render_format_of(path, err) < 0) return CNNVIZ_ERR_INVALID;
    if (!f || f->n < 1 || f->nmethods < 0 || f->h < 1 || f->w < 1 || f->c < 1 || !f->inputs)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "an explanation figure needs images");
    return CNNVIZ_OK;
}

static void draw_panel(render_canvas *cv, int x, int y, int p, const cnnviz_explain_figure *f, int i, int m,
                       float *rgb, const char *title) {
    size_t hw = (size_t)f->h * f->w;
    const float *img = f->inputs + (size_t)i * hw * f->c;
    const float *map = m >= 0 ? f->maps[m] + (size_t)i * hw : NULL;
    int is_signed = m >= 0 && f->signed_maps && f->signed_maps[m];
    const uint8_t(*lut)[3] = cnnviz_cmap_lut(is_signed ? CNNVIZ_CMAP_RDBU : CNNVIZ_CMAP_MAGMA);
    float lo = 0, hi = 1;
    if (map) map_range(map, hw, is_signed, &lo, &hi);
    blend(img, f->h, f->w, f->c, map, lut, lo, hi, rgb);
    render_paint_rgb(cv, x, y + LABEL_H, rgb, f->h, f->w, p, 0, 255);
    render_frame(cv, x, y + LABEL_H, f->w * p, f->h * p, COLOR_FRAME);
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, x, y + LABEL_H - 5, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, title);
    if (map) render_colorbar(cv, x + f->w * p + BAR_GAP, y + LABEL_H, BAR_W, f->h * p, lut, lo, hi, NULL, NULL);
}

cnnviz_status cnnviz_render_explain(const char *path, const cnnviz_explain_figure *f, const cnnviz_render_options *opt_in,
                                    cnnviz_error *err) {
    cnnviz_render_options opt = opt_in ? *opt_in : cnnviz_render_options_default();
    cnnviz_status st = check_figure(path, f, err);
    if (st) return st;
    int d = f->h > f->w ? f->h : f->w;
    int p = opt.pixel > 0 ? opt.pixel : (TILE_TARGET + d / 2) / d;
    if (p < 1) p = 1;
    int tw = f->w * p, th = f->h * p;
    cairo_t *measure = render_measure_context(err);
    if (!measure) return err ? err->code : CNNVIZ_ERR_UNSUPPORTED;
    /* room for the widest colorbar labels a map's range could need */
    int label_w = render_colorbar_label_width(measure, -8.88e-8f, -8.88e-8f);
    int cell_w = tw + BAR_GAP + BAR_W + label_w + GAP_X, cell_h = LABEL_H + th + GAP_Y;
    char title[256], sub[256];
    snprintf(title, sizeof title, "%s", opt.title ? opt.title : "explanations");
    snprintf(sub, sizeof sub,
             "maps laid over the input \xc2\xb7 signed maps on RdBu around 0, the others on magma from 0 \xc2\xb7 "
             "each on its own range");
    double text_w = fmax(render_text_width(measure, FONT_BOLD, TEXT_FIGURE_TITLE, title),
                         render_text_width(measure, FONT_REGULAR, TEXT_NOTE, sub));
    cairo_destroy(measure);
    int grid_w = (f->nmethods + 1) * cell_w;
    int fig_w = 2 * MARGIN + (int)ceil(fmax(text_w, grid_w));
    int fig_h = 2 * MARGIN + HEADER_H + f->n * cell_h - GAP_Y;
    float *rgb = malloc((size_t)f->h * f->w * 3 * sizeof *rgb);
    if (!rgb) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    render_canvas cv;
    st = render_canvas_open(&cv, path, fig_w, fig_h, title, &opt, err);
    if (st != CNNVIZ_OK) {
        free(rgb);
        return st;
    }
    render_set_rgb(cv.cr, COLOR_TEXT);
    render_text(&cv, MARGIN, MARGIN + 16, FONT_BOLD, TEXT_FIGURE_TITLE, ALIGN_LEFT, title);
    render_set_rgb(cv.cr, COLOR_MUTED);
    render_text(&cv, MARGIN, MARGIN + 36, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, sub);
    char label[160];
    for (int i = 0; i < f->n; i++) {
        int y = MARGIN + HEADER_H + i * cell_h;
        /* a long name keeps its end, where IDXFILE@K has its index */
        const char *name = f->names && f->names[i] ? f->names[i] : "input";
        size_t len = strlen(name);
        snprintf(label, sizeof label, "%s%s", len > 24 ? "\xe2\x80\xa6" : "", len > 24 ? name + len - 23 : name);
        draw_panel(&cv, MARGIN, y, p, f, i, -1, rgb, label);
        for (int m = 0; m < f->nmethods; m++) {
            snprintf(label, sizeof label, "%s \xc2\xb7 %d \xc2\xb7 p %.3f", f->methods[m], f->cls[i], (double)f->prob[i]);
            draw_panel(&cv, MARGIN + (m + 1) * cell_w, y, p, f, i, m, rgb, label);
        }
    }
    free(rgb);
    return render_canvas_close(&cv, err);
}
