/* The patterns figure: one tile per map of the input that gradient ascent
 * found for it, with the map index and the activation it reached. Each tile
 * is stretched over its own range, since the patterns differ in contrast by
 * orders of magnitude; dead maps (nothing to ascend) are greyed and marked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render-impl.h"

enum {
    MARGIN = 20,
    HEADER_H = 56,
    TILE_TARGET = 84,
    LABEL_H = 14,
    VALUE_H = 14,
    GAP_X = 10,
    GAP_Y = 8,
};

/* Alive, but reaching less than weak_below (0: no marking): a pattern that
 * stretched to its own range would look like a real texture. */
static int is_weak(const cnnviz_pattern_set *ps, int i, float weak_below) {
    return weak_below > 0 && !(ps->dead && ps->dead[i]) && ps->activation[i] < weak_below;
}

cnnviz_status cnnviz_render_patterns(const char *path, const cnnviz_pattern_set *ps, const cnnviz_render_options *opt_in,
                                     cnnviz_error *err) {
    cnnviz_render_options opt = opt_in ? *opt_in : cnnviz_render_options_default();
    if (render_format_of(path, err) < 0) return CNNVIZ_ERR_INVALID;
    if (!ps || !ps->images || ps->n < 1 || ps->h < 1 || ps->w < 1 || (ps->c != 1 && ps->c != 3))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "patterns need n >= 1 images of 1 or 3 channels");
    int d = ps->h > ps->w ? ps->h : ps->w;
    int p = opt.pixel > 0 ? opt.pixel : (TILE_TARGET + d / 2) / d;
    if (p < 1) p = 1;
    int tw = ps->w * p, th = ps->h * p;
    int cell_w = tw > 64 ? tw : 64;
    int cols = ps->cols > 0 ? ps->cols : render_grid_columns(ps->n), rows = (ps->n + cols - 1) / cols;
    int cell_h = LABEL_H + th + VALUE_H + GAP_Y;
    int grid_w = cols * cell_w + (cols - 1) * GAP_X;

    cairo_t *measure = render_measure_context(err);
    if (!measure) return err ? err->code : CNNVIZ_ERR_UNSUPPORTED;
    char title[256], sub[512];
    if (opt.title) snprintf(title, sizeof title, "%s", opt.title);
    else snprintf(title, sizeof title, "patterns that excite %s", ps->layer ? ps->layer : "the layer");
    int dead = 0, weak = 0;
    float best = 0, weak_below = 0;
    for (int i = 0; i < ps->n; i++) {
        dead += ps->dead && ps->dead[i];
        if (ps->activation && ps->activation[i] > best) best = ps->activation[i];
    }
    if (ps->activation && ps->weak_fraction > 0 && best > 0) weak_below = ps->weak_fraction * best;
    for (int i = 0; i < ps->n; i++) weak += is_weak(ps, i, weak_below);
    char weak_s[96] = "";
    if (weak_below > 0) {
        char v[32];
        render_format_number(v, sizeof v, weak_below);
        snprintf(weak_s, sizeof weak_s, " \xc2\xb7 %d weak (below %g%% of the best, %s)", weak,
                 100.0 * ps->weak_fraction, v);
    }
    snprintf(sub, sizeof sub, "%d %s%s \xc2\xb7 %d dead%s \xc2\xb7 %s \xc2\xb7 %s%s%s%s", ps->n,
             ps->map || !ps->labels ? "map" : "tile", ps->n == 1 ? "" : "s", dead, weak_s, ps->shared_range ? "one range for all tiles" : "each tile on its own range",
             ps->c == 3 ? "RGB" : "colormap: ", ps->c == 3 ? "" : cnnviz_cmap_name(opt.cmap),
             ps->settings ? " \xc2\xb7 " : "", ps->settings ? ps->settings : "");
    double text_w = fmax(render_text_width(measure, FONT_BOLD, TEXT_FIGURE_TITLE, title),
                         render_text_width(measure, FONT_REGULAR, TEXT_NOTE, sub));
    cairo_destroy(measure);
    int fig_w = 2 * MARGIN + (int)ceil(fmax(text_w, grid_w));
    int fig_h = 2 * MARGIN + HEADER_H + rows * cell_h - GAP_Y;

    render_canvas cv;
    cnnviz_status st = render_canvas_open(&cv, path, fig_w, fig_h, title, &opt, err);
    if (st != CNNVIZ_OK) return st;
    const uint8_t(*lut)[3] = cnnviz_cmap_lut(opt.cmap);
    render_set_rgb(cv.cr, COLOR_TEXT);
    render_text(&cv, MARGIN, MARGIN + 16, FONT_BOLD, TEXT_FIGURE_TITLE, ALIGN_LEFT, title);
    render_set_rgb(cv.cr, COLOR_MUTED);
    render_text(&cv, MARGIN, MARGIN + 36, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, sub);
    size_t size = (size_t)ps->h * ps->w * ps->c;
    char buf[64];
    for (int i = 0; i < ps->n; i++) {
        int col = i % cols, row = i / cols;
        int cx = MARGIN + col * (cell_w + GAP_X), cy = MARGIN + HEADER_H + row * cell_h;
        int tx = cx + (cell_w - tw) / 2, ty = cy + LABEL_H;
        const float *img = ps->images + (size_t)i * size;
        float lo = ps->lo, hi = ps->hi;
        if (!ps->shared_range) render_range(img, size, 1, &lo, &hi);
        if (ps->c == 1) {
            render_map m = {img, ps->h, ps->w, (size_t)ps->w, 1};
            render_paint_map(&cv, tx, ty, &m, p, p, lut, lo, hi);
        } else {
            render_paint_rgb(&cv, tx, ty, img, ps->h, ps->w, p, lo, hi);
        }
        int is_dead = ps->dead && ps->dead[i];
        if (is_dead) {
            /* wash the tile out and cross it, so it cannot be mistaken for a pattern */
            cairo_set_source_rgba(cv.cr, 1, 1, 1, 0.75);
            cairo_rectangle(cv.cr, tx, ty, tw, th);
            cairo_fill(cv.cr);
            render_set_rgb(cv.cr, COLOR_DEAD);
            cairo_set_line_width(cv.cr, 1.5);
            cairo_move_to(cv.cr, tx, ty);
            cairo_line_to(cv.cr, tx + tw, ty + th);
            cairo_move_to(cv.cr, tx + tw, ty);
            cairo_line_to(cv.cr, tx, ty + th);
            cairo_stroke(cv.cr);
        }
        int weak_tile = is_weak(ps, i, weak_below);
        if (weak_tile) { /* half washed out: its own range would make noise look like a texture */
            cairo_set_source_rgba(cv.cr, 1, 1, 1, 0.5);
            cairo_rectangle(cv.cr, tx, ty, tw, th);
            cairo_fill(cv.cr);
        }
        render_frame(&cv, tx, ty, tw, th, is_dead ? COLOR_DEAD : weak_tile ? COLOR_WEAK : COLOR_FRAME);
        render_set_rgb(cv.cr, COLOR_TEXT);
        if (ps->labels) snprintf(buf, sizeof buf, "%s", ps->labels[i]);
        else snprintf(buf, sizeof buf, "map %d", ps->map ? ps->map[i] : i);
        render_text(&cv, cx + cell_w / 2.0, ty - 4, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, buf);
        if (is_dead) {
            render_set_rgb(cv.cr, COLOR_DEAD);
            render_text(&cv, cx + cell_w / 2.0, ty + th + 12, FONT_BOLD, TEXT_LABEL, ALIGN_CENTER, "dead");
        } else if (ps->activation) {
            char v[32];
            render_format_number(v, sizeof v, ps->activation[i]);
            snprintf(buf, sizeof buf, "act %s%s", v, weak_tile ? " weak" : "");
            render_set_rgb(cv.cr, weak_tile ? COLOR_WEAK : COLOR_MUTED);
            render_text(&cv, cx + cell_w / 2.0, ty + th + 12, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, buf);
        }
    }
    return render_canvas_close(&cv, err);
}
