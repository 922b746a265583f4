/* The activations figure: the model input, then one panel per layer in
 * model order, down page columns: a grid of maps for (H,W,C) outputs, a
 * strip of cells for flat ones, and a bar chart for the class
 * probabilities. Panels with negative values are drawn on RdBu centred at
 * 0 (blue positive), and maps that are zero everywhere are crossed out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render-impl.h"

enum { PANEL_GRID, PANEL_STRIP, PANEL_PROBS };

/* Layout constants in figure pixels. */
enum {
    MARGIN = 20,
    HEADER_H = 52,     /* figure title and the line that states the normalisation */
    PANEL_GAP = 26,    /* between panels */
    TITLE_H = 22,      /* panel title line */
    LABEL_H = 13,      /* map index above each tile */
    RANGE_H = 12,      /* per-map range under each tile (norm map) */
    GAP_X = 8,         /* between tiles */
    GAP_Y = 6,
    CBAR_GAP = 18,     /* grid to colorbar */
    CBAR_W = 14,
    CBAR_MIN_H = 64,
    CBAR_MAX_H = 300,
    TILE_TARGET = 80,  /* automatic pixel size aims at tiles this wide */
    PIXEL_MAX = 8,     /* ... with values no larger than this */
    WIDE_GRID = 720,   /* grids of small tiles may widen up to this */
    MAX_GRID = 960,    /* wider grids get smaller tiles (automatic pixel size only) */
    STRIP_MAX = 64,    /* cells per strip row */
    STRIP_CELL_W = 11,
    STRIP_CELL_H = 18,
    STRIP_TICK_H = 12,
    BAR_W = 34,
    BAR_GAP = 10,
    BAR_PLOT_H = 110,
    BAR_AXIS_W = 34,
    COLUMN_GAP = 40,   /* between page columns */
    MAX_COLUMNS = 4,
};

typedef struct {
    const cnnviz_panel *src;
    int kind;
    int n, h, w, c; /* grid: n maps of h x w, channel stride c; strip/probs: n values */
    int p;          /* figure pixels per value */
    int cols, rows;
    int tile_w, tile_h, cell_h; /* cell_h: label + tile + range line + gap */
    int pitch_w;                /* grid: tile or range text, whichever is wider */
    int grid_w, grid_h;
    int cbar_h, cbar_label_w;
    int x, y, width, height;
    float lo, hi;   /* colour range (unused for norm map: per map) */
    float dlo, dhi; /* data range */
    int gray;       /* the input is always drawn in grey on its own range */
    int per_map;    /* norm map */
    int diverging;  /* negative values: RdBu on a range symmetric around 0 */
    int zero_maps;  /* grid maps that are 0 everywhere */
    char title[256], info[256];
} panel_layout;

/* Tiles of about TILE_TARGET px, but no value larger than PIXEL_MAX px:
 * a 4x4 map blown up to 80 px says no more than at 32 px and makes deep
 * layers take most of the figure. */
static int auto_pixel(int h, int w, int fixed) {
    if (fixed > 0) return fixed;
    int d = h > w ? h : w;
    int p = (TILE_TARGET + d / 2) / d;
    return p < 1 ? 1 : p > PIXEL_MAX ? PIXEL_MAX : p;
}

/* Near-square, but a grid of small tiles doubles its columns while it stays
 * within WIDE_GRID px, so 64 small maps make 4 rows of 16 instead of a tall
 * narrow block. */
static int widen_columns(int n, int cols, int pitch_w) {
    while (cols * 2 <= n && n % (cols * 2) == 0 && (cols * 2) * (pitch_w + GAP_X) - GAP_X <= WIDE_GRID) cols *= 2;
    return cols;
}

static int grid_width(int cols, int pitch_w) { return cols * (pitch_w + GAP_X) - GAP_X; }

/* Columns of a near-square grid (ceil(sqrt n) .. ceil(sqrt 2n), fewest
 * empty cells) that fits in MAX_GRID px at this pitch; 0 if none does. */
static int fitting_columns(int n, int pitch_w) {
    int lo = (int)ceil(sqrt((double)n)), hi = (int)ceil(sqrt(2.0 * n)), best = 0, best_empty = n + 1;
    if (n <= 1) lo = hi = 1;
    for (int c = lo; c <= hi; c++) {
        int empty = ((n + c - 1) / c) * c - n;
        if (grid_width(c, pitch_w) <= MAX_GRID && empty < best_empty) {
            best = c;
            best_empty = empty;
        }
    }
    return best;
}

/* [lo, hi] widened to [-a, a]: 0 at the middle of a diverging map */
static void symmetric(float *lo, float *hi) {
    float a = fmaxf(fabsf(*lo), fabsf(*hi));
    *lo = -a;
    *hi = a;
}

static void map_view(const panel_layout *pl, int m, render_map *out) {
    out->data = pl->src->data + m;
    out->h = pl->h;
    out->w = pl->w;
    out->row_stride = (size_t)pl->w * pl->c;
    out->step = (size_t)pl->c;
}

static void map_range(const panel_layout *pl, int m, float *lo, float *hi) {
    const float *d = pl->src->data + m;
    int any = 0;
    float a = 0, b = 0;
    for (size_t i = 0; i < (size_t)pl->h * pl->w; i++) {
        float v = d[i * pl->c];
        if (isnan(v)) continue;
        if (!any || v < a) a = v;
        if (!any || v > b) b = v;
        any = 1;
    }
    *lo = a;
    *hi = b;
}

static int map_is_zero(const panel_layout *pl, int m) {
    const float *d = pl->src->data + m;
    for (size_t i = 0; i < (size_t)pl->h * pl->w; i++)
        if (d[i * pl->c] != 0.0f) return 0;
    return 1;
}

static void fmt_range(char *buf, size_t n, float lo, float hi) {
    char a[32], b[32];
    render_format_number(a, sizeof a, lo);
    render_format_number(b, sizeof b, hi);
    snprintf(buf, n, "%s \xe2\x80\x93 %s", a, b); /* en dash */
}

static size_t panel_size(const cnnviz_panel *p) { return cnnviz_shape_size(&p->shape); }

/* Classify a panel and fix its grid geometry (sizes that do not depend on text). */
static void shape_panel(panel_layout *pl, const cnnviz_panel *src, int is_input, const cnnviz_render_options *opt,
                        cairo_t *measure) {
    memset(pl, 0, sizeof *pl);
    pl->src = src;
    pl->gray = is_input;
    const cnnviz_shape *s = &src->shape;
    render_range(src->data, panel_size(src), 1, &pl->dlo, &pl->dhi);
    if (src->kind == CNNVIZ_PANEL_PROBS) {
        pl->kind = PANEL_PROBS;
        pl->n = (int)panel_size(src);
        pl->grid_w = BAR_AXIS_W + pl->n * (BAR_W + BAR_GAP);
        pl->grid_h = 14 + BAR_PLOT_H + 18; /* value labels, bars, class labels */
        return;
    }
    if (s->rank == 3 || s->rank == 2) {
        pl->kind = PANEL_GRID;
        pl->h = s->dim[0];
        pl->w = s->dim[1];
        pl->c = s->rank == 3 ? s->dim[2] : 1;
        pl->n = pl->c;
        pl->p = auto_pixel(pl->h, pl->w, opt->pixel);
        pl->per_map = !is_input && opt->norm.kind == CNNVIZ_NORM_MAP;
        /* the widest range text under a tile (norm map) sets a minimum pitch */
        int text_w = 0;
        if (pl->per_map)
            for (int m = 0; m < pl->n; m++) {
                char buf[96];
                float lo, hi;
                map_range(pl, m, &lo, &hi);
                fmt_range(buf, sizeof buf, lo, hi);
                int tw = (int)ceil(render_text_width(measure, FONT_REGULAR, TEXT_SMALL, buf)) + 2;
                if (tw > text_w) text_w = tw;
            }
        /* the largest squares (down to 1 px) whose near-square grid fits in MAX_GRID */
        for (;;) {
            int pitch = pl->w * pl->p > text_w ? pl->w * pl->p : text_w;
            pl->cols = fitting_columns(pl->n, pitch);
            if (pl->cols || opt->pixel > 0 || pl->p == 1) break;
            pl->p--;
        }
        if (!pl->cols) pl->cols = render_grid_columns(pl->n);
        pl->tile_w = pl->w * pl->p;
        pl->tile_h = pl->h * pl->p;
        pl->pitch_w = pl->tile_w > text_w ? pl->tile_w : text_w;
        pl->cols = widen_columns(pl->n, pl->cols, pl->pitch_w);
        pl->rows = (pl->n + pl->cols - 1) / pl->cols;
        int label = pl->n > 1 ? LABEL_H : 0;
        pl->cell_h = label + pl->tile_h + (pl->per_map ? RANGE_H : 0) + GAP_Y;
        pl->grid_w = pl->cols * pl->pitch_w + (pl->cols - 1) * GAP_X;
        pl->grid_h = pl->rows * pl->cell_h - GAP_Y;
        for (int m = 0; m < pl->n && !is_input; m++) pl->zero_maps += map_is_zero(pl, m);
        return;
    }
    pl->kind = PANEL_STRIP;
    pl->n = (int)panel_size(src);
    pl->rows = (pl->n + STRIP_MAX - 1) / STRIP_MAX;
    if (pl->rows < 1) pl->rows = 1;
    pl->cols = (pl->n + pl->rows - 1) / pl->rows;
    pl->tile_w = opt->pixel > 0 ? opt->pixel : STRIP_CELL_W;
    pl->tile_h = STRIP_CELL_H;
    pl->cell_h = pl->tile_h + STRIP_TICK_H + 4;
    pl->grid_w = pl->cols * pl->tile_w;
    pl->grid_h = pl->rows * pl->cell_h - 4;
}

static int argmax(const float *v, int n) {
    int k = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[k]) k = i;
    return k;
}

static void panel_titles(panel_layout *pl, int is_input) {
    const cnnviz_panel *s = pl->src;
    char shape[64], range[96];
    cnnviz_shape_format(&s->shape, shape, sizeof shape);
    fmt_range(range, sizeof range, pl->dlo, pl->dhi);
    snprintf(pl->title, sizeof pl->title, "%s", s->name ? s->name : (is_input ? "input" : "?"));
    if (pl->kind == PANEL_PROBS) {
        int k = argmax(s->data, pl->n);
        char label[32];
        if (s->labels) snprintf(label, sizeof label, "%s", s->labels[k]);
        else snprintf(label, sizeof label, "%d", k);
        snprintf(pl->info, sizeof pl->info, "%s%s%s%s%s \xc2\xb7 predicted %s (p = %.3f)",
                 s->class_name ? s->class_name : "", s->class_name ? " " : "", shape, s->note ? " \xc2\xb7 " : "",
                 s->note ? s->note : "", label, (double)s->data[k]);
    } else {
        char zeros[64] = "";
        if (pl->zero_maps)
            snprintf(zeros, sizeof zeros, " \xc2\xb7 %d map%s all 0 (crossed)", pl->zero_maps,
                     pl->zero_maps == 1 ? "" : "s");
        snprintf(pl->info, sizeof pl->info, "%s%s%s%s%s \xc2\xb7 values %s%s%s", s->class_name ? s->class_name : "",
                 s->class_name ? " " : "", shape, s->note ? " \xc2\xb7 " : "", s->note ? s->note : "", range,
                 pl->diverging ? " \xc2\xb7 RdBu around 0" : "", zeros);
    }
}

/* --- drawing -------------------------------------------------------------------- */

static void draw_title(render_canvas *cv, const panel_layout *pl) {
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, pl->x, pl->y + 14, FONT_BOLD, TEXT_PANEL_TITLE, ALIGN_LEFT, pl->title);
    double w = render_text_width(cv->cr, FONT_BOLD, TEXT_PANEL_TITLE, pl->title);
    render_set_rgb(cv->cr, COLOR_MUTED);
    render_text(cv, pl->x + w + 10, pl->y + 14, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, pl->info);
}

static void draw_grid(render_canvas *cv, const panel_layout *pl, const uint8_t (*lut)[3]) {
    int x0 = pl->x, y0 = pl->y + TITLE_H;
    int label = pl->n > 1 ? LABEL_H : 0;
    char buf[96];
    for (int m = 0; m < pl->n; m++) {
        int col = m % pl->cols, row = m / pl->cols;
        int tx = x0 + col * (pl->pitch_w + GAP_X) + (pl->pitch_w - pl->tile_w) / 2, ty = y0 + row * pl->cell_h + label;
        float lo = pl->lo, hi = pl->hi;
        if (pl->per_map) {
            map_range(pl, m, &lo, &hi);
            if (pl->diverging) symmetric(&lo, &hi);
        }
        render_map view;
        map_view(pl, m, &view);
        render_paint_map(cv, tx, ty, &view, pl->p, pl->p, lut, lo, hi);
        render_frame(cv, tx, ty, pl->tile_w, pl->tile_h, COLOR_FRAME);
        int zero = pl->zero_maps && map_is_zero(pl, m);
        if (zero) { /* nothing there on this input: say so rather than show a flat tile */
            render_set_rgb(cv->cr, COLOR_DEAD);
            cairo_set_line_width(cv->cr, 1);
            cairo_move_to(cv->cr, tx + 0.5, ty + pl->tile_h - 0.5);
            cairo_line_to(cv->cr, tx + pl->tile_w - 0.5, ty + 0.5);
            cairo_stroke(cv->cr);
        }
        render_set_rgb(cv->cr, zero ? COLOR_DEAD : COLOR_MUTED);
        if (label) {
            snprintf(buf, sizeof buf, "%d", m);
            render_text(cv, tx + pl->tile_w / 2.0, ty - 3, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, buf);
        }
        if (pl->per_map) {
            fmt_range(buf, sizeof buf, lo, hi);
            render_text(cv, tx + pl->tile_w / 2.0, ty + pl->tile_h + 10, FONT_REGULAR, TEXT_SMALL, ALIGN_CENTER, buf);
        }
    }
}

static void draw_strip(render_canvas *cv, const panel_layout *pl, const uint8_t (*lut)[3]) {
    int x0 = pl->x, y0 = pl->y + TITLE_H;
    char buf[32];
    for (int r = 0; r < pl->rows; r++) {
        int first = r * pl->cols, count = pl->n - first < pl->cols ? pl->n - first : pl->cols;
        int y = y0 + r * pl->cell_h;
        render_map view = {pl->src->data + first, 1, count, 0, 1};
        render_paint_map(cv, x0, y, &view, pl->tile_w, pl->tile_h, lut, pl->lo, pl->hi);
        /* thin separators so single cells can be told apart */
        if (pl->tile_w >= 6) {
            cairo_set_source_rgba(cv->cr, 1, 1, 1, 0.9);
            for (int i = 1; i < count; i++) {
                cairo_rectangle(cv->cr, x0 + i * pl->tile_w, y, 1, pl->tile_h);
            }
            cairo_fill(cv->cr);
        }
        render_frame(cv, x0, y, count * pl->tile_w, pl->tile_h, COLOR_FRAME);
        render_set_rgb(cv->cr, COLOR_MUTED);
        for (int i = 0; i < count; i += 10) {
            snprintf(buf, sizeof buf, "%d", first + i);
            double cx = x0 + (i + 0.5) * pl->tile_w;
            cairo_rectangle(cv->cr, floor(cx), y + pl->tile_h + 1, 1, 3);
            cairo_fill(cv->cr);
            render_text(cv, cx, y + pl->tile_h + STRIP_TICK_H + 1, FONT_REGULAR, TEXT_SMALL, ALIGN_CENTER, buf);
        }
    }
}

static void draw_probs(render_canvas *cv, const panel_layout *pl) {
    const float *v = pl->src->data;
    int k = argmax(v, pl->n);
    float top = pl->dhi > 1.0f ? pl->dhi : 1.0f, bottom = pl->dlo < 0.0f ? pl->dlo : 0.0f;
    int px = pl->x + BAR_AXIS_W, py = pl->y + TITLE_H + 14; /* plot area top-left */
    double scale = BAR_PLOT_H / (double)(top - bottom);
    double base = py + top * scale; /* y of value 0 */
    int plot_w = pl->n * (BAR_W + BAR_GAP);
    cairo_t *cr = cv->cr;
    char buf[32];
    double ticks[8];
    int nt = render_nice_ticks(bottom, top, 2, ticks, 8);
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < nt; i++) {
        double ty = floor(base - ticks[i] * scale) + 0.5;
        render_set_rgb(cr, COLOR_GRID);
        cairo_move_to(cr, px, ty);
        cairo_line_to(cr, px + plot_w, ty);
        cairo_stroke(cr);
        render_set_rgb(cr, COLOR_MUTED);
        render_format_tick(buf, sizeof buf, ticks[i], nt > 1 ? ticks[1] - ticks[0] : 1);
        render_text(cv, px - 6, ty + 3.5, FONT_REGULAR, TEXT_LABEL, ALIGN_RIGHT, buf);
    }
    for (int i = 0; i < pl->n; i++) {
        double bx = px + BAR_GAP / 2.0 + i * (BAR_W + BAR_GAP);
        double y1 = base - v[i] * scale;
        render_set_rgb(cr, i == k ? COLOR_C1 : COLOR_C0);
        cairo_rectangle(cr, bx, fmin(y1, base), BAR_W, fabs(base - y1));
        cairo_fill(cr);
        render_set_rgb(cr, i == k ? COLOR_TEXT : COLOR_MUTED);
        snprintf(buf, sizeof buf, "%.2f", (double)v[i]);
        render_text(cv, bx + BAR_W / 2.0, fmin(y1, base) - 4, i == k ? FONT_BOLD : FONT_REGULAR, TEXT_SMALL,
                    ALIGN_CENTER, buf);
        if (pl->src->labels) snprintf(buf, sizeof buf, "%s", pl->src->labels[i]);
        else snprintf(buf, sizeof buf, "%d", i);
        render_set_rgb(cr, COLOR_TEXT);
        render_text(cv, bx + BAR_W / 2.0, py + BAR_PLOT_H + 15, i == k ? FONT_BOLD : FONT_REGULAR, TEXT_LABEL,
                    ALIGN_CENTER, buf);
    }
    render_set_rgb(cr, COLOR_AXIS);
    cairo_move_to(cr, px, floor(base) + 0.5);
    cairo_line_to(cr, px + plot_w, floor(base) + 0.5);
    cairo_stroke(cr);
}

/* --- the figure ------------------------------------------------------------------- */

static void colour_ranges(panel_layout *pl, int n, const cnnviz_render_options *opt) {
    for (int i = 1; i < n; i++) /* [0] is the input: grey, its own range */
        pl[i].diverging = pl[i].src && pl[i].kind != PANEL_PROBS && !opt->one_sided && pl[i].dlo < 0;
    int any = 0;
    float glo = 0, ghi = 0;
    for (int i = 1; i < n; i++) { /* [0] is the input, never part of the global range */
        if (!pl[i].src || pl[i].kind == PANEL_PROBS) continue;
        if (!any || pl[i].dlo < glo) glo = pl[i].dlo;
        if (!any || pl[i].dhi > ghi) ghi = pl[i].dhi;
        any = 1;
    }
    for (int i = 0; i < n; i++) {
        if (!pl[i].src) continue;
        pl[i].lo = pl[i].dlo;
        pl[i].hi = pl[i].dhi;
        if (i == 0) continue;
        if (opt->norm.kind == CNNVIZ_NORM_GLOBAL) {
            pl[i].lo = glo;
            pl[i].hi = ghi;
        } else if (opt->norm.kind == CNNVIZ_NORM_FIXED) {
            pl[i].lo = opt->norm.lo;
            pl[i].hi = opt->norm.hi;
        }
        if (pl[i].diverging && opt->norm.kind != CNNVIZ_NORM_FIXED) symmetric(&pl[i].lo, &pl[i].hi);
    }
}

/* Panels in model order, split into `cols` consecutive runs (page columns,
 * read down then across) so that the tallest column is as short as it can
 * be: first[c] is the first panel of column c, first[cols] = n. */
static int split_columns(const int *height, int n, int cols, int *first) {
    /* best[c][i]: the tallest of c columns holding panels 0..i-1, at its least */
    int best[MAX_COLUMNS + 1][64], cut[MAX_COLUMNS + 1][64];
    for (int i = 0; i <= n; i++) best[1][i] = i ? best[1][i - 1] + height[i - 1] : 0, cut[1][i] = 0;
    for (int c = 2; c <= cols; c++)
        for (int i = 0; i <= n; i++) {
            best[c][i] = best[c - 1][i];
            cut[c][i] = i;
            int run = 0;
            for (int j = i - 1; j >= 0; j--) { /* column c holds panels j..i-1 */
                run += height[j];
                int tallest = run > best[c - 1][j] ? run : best[c - 1][j];
                if (tallest < best[c][i]) best[c][i] = tallest, cut[c][i] = j;
            }
        }
    first[cols] = n;
    for (int c = cols, i = n; c >= 1; c--) first[c - 1] = i = c > 1 ? cut[c][i] : 0;
    return best[cols][n];
}

/* Sets each panel's x and y for `cols` page columns (0: the count in
 * 1..MAX_COLUMNS whose figure is nearest a page's shape, sqrt(2) either
 * way); widens *width to the columns' span. Returns the count used. */
static int place_columns(panel_layout *pl, const int *order, const int *height, int np, int cols, int top,
                         double *width) {
    int first[MAX_COLUMNS + 1];
    if (cols <= 0) {
        double best = INFINITY;
        for (int c = 1; c <= MAX_COLUMNS && c <= np; c++) {
            int tallest = split_columns(height, np, c, first), w = -COLUMN_GAP;
            for (int k = 0; k < c; k++) {
                int cw = 0;
                for (int j = first[k]; j < first[k + 1]; j++) cw = pl[order[j]].width > cw ? pl[order[j]].width : cw;
                w += cw + COLUMN_GAP;
            }
            double aspect = fmax(w, *width) / (double)(tallest + top), off = fabs(log(fmax(aspect, 1 / aspect)) - log(sqrt(2)));
            if (off < best - 1e-9) best = off, cols = c;
        }
    }
    if (cols > np) cols = np > 0 ? np : 1;
    if (cols > MAX_COLUMNS) cols = MAX_COLUMNS;
    split_columns(height, np, cols, first);
    int x = MARGIN;
    for (int c = 0; c < cols; c++) {
        int y = top, cw = 0;
        for (int j = first[c]; j < first[c + 1]; j++) {
            panel_layout *p = &pl[order[j]];
            p->x = x;
            p->y = y;
            y += height[j];
            cw = p->width > cw ? p->width : cw;
        }
        x += cw + COLUMN_GAP;
    }
    *width = fmax(*width, x - COLUMN_GAP - MARGIN);
    return cols;
}

static void norm_words(const cnnviz_render_options *opt, char *buf, size_t n) {
    char what[64];
    cnnviz_norm_format(&opt->norm, what, sizeof what);
    const char *why = opt->norm.kind == CNNVIZ_NORM_LAYER    ? "each layer on its own range"
                      : opt->norm.kind == CNNVIZ_NORM_MAP    ? "each map on its own range, stated under it"
                      : opt->norm.kind == CNNVIZ_NORM_GLOBAL ? "one range for every layer"
                                                             : "values outside are clipped";
    snprintf(buf, n, "normalisation: %s (%s) \xc2\xb7 colormap: %s \xc2\xb7 input in grey", what, why,
             cnnviz_cmap_name(opt->cmap));
}

cnnviz_status cnnviz_render_activations(const char *path, const cnnviz_panel *input, const cnnviz_panel *panels,
                                        int npanels, const cnnviz_render_options *opt_in, cnnviz_error *err) {
    cnnviz_render_options opt = opt_in ? *opt_in : cnnviz_render_options_default();
    if (render_format_of(path, err) < 0) return CNNVIZ_ERR_INVALID;
    if (npanels < 0 || (npanels == 0 && !input))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "nothing to draw");
    for (int i = 0; i < npanels; i++)
        if (!panels[i].data || panel_size(&panels[i]) == 0)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "panel %d has no data", i);
    int n = npanels + 1;
    panel_layout *pl = calloc((size_t)n, sizeof *pl);
    if (!pl) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    cairo_t *measure = render_measure_context(err);
    if (!measure) {
        free(pl);
        return err ? err->code : CNNVIZ_ERR_UNSUPPORTED;
    }
    if (input) shape_panel(&pl[0], input, 1, &opt, measure);
    for (int i = 0; i < npanels; i++) shape_panel(&pl[i + 1], &panels[i], 0, &opt, measure);
    colour_ranges(pl, n, &opt);

    const char *title = opt.title ? opt.title : "activations";
    char subtitle[256];
    norm_words(&opt, subtitle, sizeof subtitle);
    double width = fmax(render_text_width(measure, FONT_BOLD, TEXT_FIGURE_TITLE, title),
                        render_text_width(measure, FONT_REGULAR, TEXT_NOTE, subtitle));
    /* each panel's size, then page columns */
    int order[64], height[64], np = 0;
    for (int i = 0; i < n; i++) {
        if (!pl[i].src) continue;
        panel_titles(&pl[i], i == 0);
        double tw = render_text_width(measure, FONT_BOLD, TEXT_PANEL_TITLE, pl[i].title) + 10 +
                    render_text_width(measure, FONT_REGULAR, TEXT_NOTE, pl[i].info);
        int body_w = pl[i].grid_w, body_h = pl[i].grid_h;
        if (pl[i].kind != PANEL_PROBS) {
            pl[i].cbar_h = body_h < CBAR_MIN_H ? CBAR_MIN_H : body_h > CBAR_MAX_H ? CBAR_MAX_H : body_h;
            pl[i].cbar_label_w = pl[i].per_map
                                     ? (int)ceil(render_text_width(measure, FONT_REGULAR, TEXT_LABEL, "map max")) + 8
                                     : render_colorbar_label_width(measure, pl[i].lo, pl[i].hi);
            body_w += CBAR_GAP + CBAR_W + pl[i].cbar_label_w;
            if (pl[i].cbar_h > body_h) body_h = pl[i].cbar_h;
        }
        pl[i].width = (int)fmax(tw, body_w);
        pl[i].height = TITLE_H + body_h;
        if (np < 64) {
            order[np] = i;
            height[np++] = pl[i].height + PANEL_GAP;
        }
    }
    cairo_destroy(measure);
    int cols = place_columns(pl, order, height, np, opt.columns, MARGIN + HEADER_H, &width);
    (void)cols;
    int fig_w = (int)ceil(width) + 2 * MARGIN, fig_h = 0;
    for (int k = 0; k < np; k++) {
        int bottom = pl[order[k]].y + pl[order[k]].height + MARGIN;
        if (bottom > fig_h) fig_h = bottom;
    }

    render_canvas cv;
    cnnviz_status st = render_canvas_open(&cv, path, fig_w, fig_h, title, &opt, err);
    if (st != CNNVIZ_OK) {
        free(pl);
        return st;
    }
    render_set_rgb(cv.cr, COLOR_TEXT);
    render_text(&cv, MARGIN, MARGIN + 16, FONT_BOLD, TEXT_FIGURE_TITLE, ALIGN_LEFT, title);
    render_set_rgb(cv.cr, COLOR_MUTED);
    render_text(&cv, MARGIN, MARGIN + 36, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, subtitle);
    for (int i = 0; i < n; i++) {
        if (!pl[i].src) continue;
        const uint8_t(*lut)[3] =
            cnnviz_cmap_lut(pl[i].gray ? CNNVIZ_CMAP_GRAY : pl[i].diverging ? CNNVIZ_CMAP_RDBU : opt.cmap);
        draw_title(&cv, &pl[i]);
        if (pl[i].kind == PANEL_PROBS) {
            draw_probs(&cv, &pl[i]);
            continue;
        }
        if (pl[i].kind == PANEL_GRID) draw_grid(&cv, &pl[i], lut);
        else draw_strip(&cv, &pl[i], lut);
        int cx = pl[i].x + pl[i].grid_w + CBAR_GAP, cy = pl[i].y + TITLE_H + (pl[i].n > 1 && pl[i].kind == PANEL_GRID ? LABEL_H : 0);
        if (pl[i].per_map) {
            /* each tile states its own range; the bar only shows the colours */
            render_colorbar(&cv, cx, cy, CBAR_W, pl[i].cbar_h, lut, 0.0f, 1.0f, "map min", "map max");
        } else {
            render_colorbar(&cv, cx, cy, CBAR_W, pl[i].cbar_h, lut, pl[i].lo, pl[i].hi, NULL, NULL);
        }
    }
    free(pl);
    return render_canvas_close(&cv, err);
}
