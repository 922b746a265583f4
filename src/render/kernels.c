/* The kernels figure: a layer's raw weights on a symmetric scale around 0.
 *
 * A first Conv2D (one input channel) has one kh x kw kernel per map: those
 * are tiles with the map index above and the bias below. Deeper layers have
 * out x in kernels: a matrix with a row per output map and a column per
 * input channel, grouped by 8 so a reader can find "map 37, channel 12",
 * and the biases as a column of their own beside it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render-impl.h"

enum {
    MARGIN = 20,
    HEADER_H = 52,
    TITLE_H = 24,
    TILE_TARGET = 48,   /* one-channel kernels: tiles about this wide */
    CELL_TARGET = 12,   /* matrix: kernels about this wide */
    LABEL_H = 13,
    BIAS_H = 12,
    GAP = 10,
    GROUP = 8,          /* matrix rows/columns per group */
    GROUP_GAP = 4,
    AXIS_W = 40,        /* row labels left of the matrix */
    AXIS_H = 28,        /* column labels above the matrix */
    CBAR_GAP = 18,
    CBAR_W = 14,
    CBAR_MAX_H = 260,
};

typedef struct {
    int kh, kw, in, out;
    int p;            /* figure pixels per weight */
    int tile_w, tile_h;
    int gap;          /* matrix: between kernels */
    int matrix;       /* out x in layout */
    int top;          /* summary layout: a norm heatmap and each output's K strongest inputs */
    int norm_p;       /* summary: heatmap pixels per (output, input) */
    int cell_w, cell_h, heat_w, heat_h;
    float nmax;       /* the largest kernel norm */
    int dense;        /* a Dense kernel: units and inputs rather than maps and channels */
    int cols, rows;   /* tiles layout */
    int body_w, body_h;
    float wmax, bmax; /* symmetric ranges */
    float wlo, whi, blo, bhi;
} kernel_layout;

static float abs_max(const float *v, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabsf(v[i]) > m) m = fabsf(v[i]);
    return m;
}

/* x offset of matrix column (or row) i: kernels plus gaps, a wider gap between groups */
static int matrix_offset(const kernel_layout *k, int i, int size) {
    return i * (size + k->gap) + (k->gap ? (i / GROUP) * GROUP_GAP : 0);
}

/* The summary: the norm heatmap (out rows, in columns) on the left, then a
 * near-square grid of cells, one per output map, each holding the K
 * strongest input kernels side by side. */
static void summary_layout(kernel_layout *k, const cnnviz_render_options *opt) {
    int d = k->kh > k->kw ? k->kh : k->kw;
    k->p = opt->pixel > 0 ? opt->pixel : (24 + d / 2) / d;
    if (k->p < 1) k->p = 1;
    k->tile_w = k->kw * k->p;
    k->tile_h = k->kh * k->p;
    k->norm_p = 480 / (k->in > k->out ? k->in : k->out);
    k->norm_p = k->norm_p < 2 ? 2 : k->norm_p > 12 ? 12 : k->norm_p;
    k->heat_w = AXIS_W + k->in * k->norm_p;
    k->heat_h = AXIS_H + k->out * k->norm_p;
    k->cell_w = k->top * (k->tile_w + 4) - 4;
    if (k->cell_w < 52) k->cell_w = 52;
    k->cell_h = LABEL_H + k->tile_h + 11 + GAP;
    k->cols = render_grid_columns(k->out);
    k->rows = (k->out + k->cols - 1) / k->cols;
    k->body_w = k->heat_w + 2 * GAP + CBAR_W + 40 + k->cols * (k->cell_w + GAP) - GAP;
    int grid_h = AXIS_H + k->rows * k->cell_h - GAP;
    k->body_h = k->heat_h > grid_h ? k->heat_h : grid_h;
}

/* L2 norm of the (kh x kw) kernel from input i to output o */
static float kernel_norm(const kernel_layout *k, const float *w, int i, int o) {
    double s = 0;
    size_t in = (size_t)k->in, out = (size_t)k->out;
    for (int r = 0; r < k->kh * k->kw; r++) {
        double v = w[((size_t)r * in + i) * out + o];
        s += v * v;
    }
    return (float)sqrt(s);
}

static void layout(kernel_layout *k, const cnnviz_kernel_panel *kp, const cnnviz_render_options *opt) {
    memset(k, 0, sizeof *k);
    const cnnviz_shape *s = &kp->shape;
    if (s->rank == 4) {
        k->kh = s->dim[0];
        k->kw = s->dim[1];
        k->in = s->dim[2];
        k->out = s->dim[3];
    } else { /* Dense (in, out): 1x1 kernels */
        k->dense = 1;
        k->kh = k->kw = 1;
        k->in = s->dim[0];
        k->out = s->dim[1];
    }
    size_t n = cnnviz_shape_size(s);
    k->wmax = abs_max(kp->kernel, n);
    render_range(kp->kernel, n, 1, &k->wlo, &k->whi);
    if (kp->bias) {
        k->bmax = abs_max(kp->bias, (size_t)k->out);
        render_range(kp->bias, (size_t)k->out, 1, &k->blo, &k->bhi);
    }
    int d = k->kh > k->kw ? k->kh : k->kw;
    k->matrix = k->in > 1;
    if (k->matrix && kp->top > 0) {
        k->top = kp->top < k->in ? kp->top : k->in;
        summary_layout(k, opt);
        return;
    }
    if (!k->matrix) {
        k->p = opt->pixel > 0 ? opt->pixel : (TILE_TARGET + d / 2) / d;
        if (k->p < 1) k->p = 1;
        k->tile_w = k->kw * k->p;
        k->tile_h = k->kh * k->p;
        k->cols = render_grid_columns(k->out);
        k->rows = (k->out + k->cols - 1) / k->cols;
        int cell_w = k->tile_w > 44 ? k->tile_w : 44; /* room for the bias text */
        k->body_w = k->cols * cell_w + (k->cols - 1) * GAP;
        k->body_h = k->rows * (LABEL_H + k->tile_h + (kp->bias ? BIAS_H : 0) + GAP) - GAP;
        return;
    }
    k->p = opt->pixel > 0 ? opt->pixel : (CELL_TARGET + d / 2) / d;
    if (k->p < 1) k->p = 1;
    /* Dense matrices can be wide: keep them under about 1000 px */
    if (opt->pixel <= 0 && d == 1 && k->in * k->p > 960) k->p = 960 / k->in > 0 ? 960 / k->in : 1;
    k->tile_w = k->kw * k->p;
    k->tile_h = k->kh * k->p;
    k->gap = k->tile_w >= 6 ? 1 : 0;
    k->body_w = AXIS_W + matrix_offset(k, k->in - 1, k->tile_w) + k->tile_w;
    k->body_h = AXIS_H + matrix_offset(k, k->out - 1, k->tile_h) + k->tile_h;
}

/* Biases with as many decimals as give the largest three significant digits,
 * the same for all, so a column of them lines up. */
static void format_bias(char *buf, size_t n, float v, float max) {
    int decimals = max > 0 ? 2 - (int)floor(log10((double)max)) : 2;
    if (decimals < 0) decimals = 0;
    if (decimals > 6) decimals = 6;
    snprintf(buf, n, "%.*f", decimals, (double)v);
    if (strspn(buf, "-0.") == strlen(buf) && buf[0] == '-') memmove(buf, buf + 1, strlen(buf)); /* no "-0.000" */
}

static int cell_w_of(const kernel_layout *k) { return k->tile_w > 44 ? k->tile_w : 44; }

static void draw_tiles(render_canvas *cv, const kernel_layout *k, const cnnviz_kernel_panel *kp, int x0, int y0,
                       const uint8_t (*lut)[3]) {
    char buf[32];
    int cw = cell_w_of(k);
    for (int o = 0; o < k->out; o++) {
        int col = o % k->cols, row = o / k->cols;
        int cx = x0 + col * (cw + GAP), cy = y0 + row * (LABEL_H + k->tile_h + (kp->bias ? BIAS_H : 0) + GAP);
        int tx = cx + (cw - k->tile_w) / 2, ty = cy + LABEL_H;
        /* kernel (kh,kw,1,out): weight (r,c) of map o at (r*kw + c)*out + o */
        render_map m = {kp->kernel + o, k->kh, k->kw, (size_t)k->kw * k->out, (size_t)k->out};
        render_paint_map(cv, tx, ty, &m, k->p, k->p, lut, -k->wmax, k->wmax);
        render_frame(cv, tx, ty, k->tile_w, k->tile_h, COLOR_FRAME);
        render_set_rgb(cv->cr, COLOR_MUTED);
        snprintf(buf, sizeof buf, "%d", o);
        render_text(cv, cx + cw / 2.0, ty - 3, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, buf);
        if (kp->bias) {
            format_bias(buf, sizeof buf, kp->bias[o], k->bmax);
            render_text(cv, cx + cw / 2.0, ty + k->tile_h + 10, FONT_REGULAR, TEXT_SMALL, ALIGN_CENTER, buf);
        }
    }
}

static void draw_matrix(render_canvas *cv, const kernel_layout *k, const cnnviz_kernel_panel *kp, int x0, int y0,
                        const uint8_t (*lut)[3]) {
    char buf[32];
    int mx = x0 + AXIS_W, my = y0 + AXIS_H;
    size_t in = (size_t)k->in, out = (size_t)k->out;
    for (int o = 0; o < k->out; o++)
        for (int i = 0; i < k->in; i++) {
            /* kernel (kh,kw,in,out): weight (r,c) for (i,o) at ((r*kw + c)*in + i)*out + o */
            render_map m = {kp->kernel + (size_t)i * out + o, k->kh, k->kw, (size_t)k->kw * in * out, in * out};
            render_paint_map(cv, mx + matrix_offset(k, i, k->tile_w), my + matrix_offset(k, o, k->tile_h), &m, k->p,
                             k->p, lut, -k->wmax, k->wmax);
        }
    /* labels at the start of every group (or of every 8th row when there are no gaps) */
    int step = k->gap ? GROUP : (k->tile_w * GROUP >= 24 ? GROUP : 8 * GROUP);
    render_set_rgb(cv->cr, COLOR_MUTED);
    for (int i = 0; i < k->in; i += step) {
        snprintf(buf, sizeof buf, "%d", i);
        render_text(cv, mx + matrix_offset(k, i, k->tile_w), my - 4, FONT_REGULAR, TEXT_SMALL, ALIGN_LEFT, buf);
    }
    step = k->gap ? GROUP : (k->tile_h * GROUP >= 12 ? GROUP : 8 * GROUP);
    for (int o = 0; o < k->out; o += step) {
        snprintf(buf, sizeof buf, "%d", o);
        render_text(cv, mx - 5, my + matrix_offset(k, o, k->tile_h) + 8, FONT_REGULAR, TEXT_SMALL, ALIGN_RIGHT, buf);
    }
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, mx, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT,
                k->dense ? "input \xe2\x86\x92" : "input channel \xe2\x86\x92");
    render_text(cv, x0, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, k->dense ? "unit \xe2\x86\x93" : "map \xe2\x86\x93");
}

/* Biases beside the matrix: one cell per output map on their own symmetric
 * scale, with the value written next to it where the rows are tall enough. */
static int bias_column_width(cairo_t *measure, const kernel_layout *k) {
    (void)k;
    return 14 + 6 + (int)ceil(render_text_width(measure, FONT_REGULAR, TEXT_SMALL, "-0.0000")) + 8;
}

static void draw_bias_column(render_canvas *cv, const kernel_layout *k, const cnnviz_kernel_panel *kp, int x, int y0,
                             const uint8_t (*lut)[3]) {
    char buf[32];
    int my = y0 + AXIS_H;
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, x, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, "bias");
    for (int o = 0; o < k->out; o++) {
        int y = my + matrix_offset(k, o, k->tile_h);
        render_map m = {kp->bias + o, 1, 1, 1, 1};
        render_paint_map(cv, x, y, &m, 14, k->tile_h, lut, -k->bmax, k->bmax);
        if (k->tile_h >= 9) {
            render_set_rgb(cv->cr, COLOR_MUTED);
            format_bias(buf, sizeof buf, kp->bias[o], k->bmax);
            render_text(cv, x + 20, y + k->tile_h / 2.0 + 3.5, FONT_REGULAR, k->tile_h >= 11 ? TEXT_SMALL : 8,
                        ALIGN_LEFT, buf);
        }
    }
}

/* The summary view: heatmap of norms with labelled axes and its own bar,
 * then per output map its K strongest inputs' kernels (ties: lower input). */
static void draw_summary(render_canvas *cv, const kernel_layout *k, const cnnviz_kernel_panel *kp, const float *norms,
                         int x0, int y0, const uint8_t (*lut)[3]) {
    char buf[48];
    const uint8_t(*heat)[3] = cnnviz_cmap_lut(CNNVIZ_CMAP_VIRIDIS);
    int hx = x0 + AXIS_W, hy = y0 + AXIS_H;
    render_map hm = {norms, k->out, k->in, (size_t)k->in, 1};
    render_paint_map(cv, hx, hy, &hm, k->norm_p, k->norm_p, heat, 0.0f, k->nmax);
    render_frame(cv, hx, hy, k->in * k->norm_p, k->out * k->norm_p, COLOR_FRAME);
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, hx, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT,
                k->dense ? "map of the layer before \xe2\x86\x92" : "input map \xe2\x86\x92");
    render_text(cv, x0, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, k->dense ? "unit \xe2\x86\x93" : "map \xe2\x86\x93");
    render_set_rgb(cv->cr, COLOR_MUTED);
    int step = k->norm_p * GROUP >= 24 ? GROUP : 2 * GROUP;
    for (int i = 0; i < k->in; i += step) {
        snprintf(buf, sizeof buf, "%d", i);
        render_text(cv, hx + i * k->norm_p, hy - 4, FONT_REGULAR, TEXT_SMALL, ALIGN_LEFT, buf);
    }
    for (int o = 0; o < k->out; o += step) {
        snprintf(buf, sizeof buf, "%d", o);
        render_text(cv, hx - 5, hy + o * k->norm_p + 7, FONT_REGULAR, TEXT_SMALL, ALIGN_RIGHT, buf);
    }
    int bx = hx + k->in * k->norm_p + GAP;
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_text(cv, bx, hy - 4, FONT_REGULAR, TEXT_SMALL, ALIGN_LEFT, "L2 norm");
    render_colorbar(cv, bx, hy, CBAR_W, k->out * k->norm_p < 64 ? 64 : k->out * k->norm_p, heat, 0.0f, k->nmax, NULL,
                    NULL);
    /* the strongest inputs of each output map */
    int gx = x0 + k->heat_w + 2 * GAP + CBAR_W + 40, gy = y0 + AXIS_H;
    render_set_rgb(cv->cr, COLOR_TEXT);
    snprintf(buf, sizeof buf, "the %d strongest inputs of each %s", k->top, k->dense ? "unit" : "map");
    render_text(cv, gx, y0 + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, buf);
    size_t in = (size_t)k->in, out = (size_t)k->out;
    for (int o = 0; o < k->out; o++) {
        int cx = gx + (o % k->cols) * (k->cell_w + GAP), cy = gy + (o / k->cols) * k->cell_h;
        render_set_rgb(cv->cr, COLOR_TEXT);
        snprintf(buf, sizeof buf, "%s %d", k->dense ? "unit" : "map", o);
        render_text(cv, cx, cy + 10, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, buf);
        int used[64] = {0}; /* a selection sort of the K largest norms (K <= 64) */
        for (int t = 0; t < k->top; t++) {
            int best = -1;
            for (int i = 0; i < k->in; i++) {
                int taken = 0;
                for (int u = 0; u < t && !taken; u++) taken = used[u] == i;
                if (!taken && (best < 0 || norms[(size_t)o * in + i] > norms[(size_t)o * in + best])) best = i;
            }
            used[t] = best;
            int tx = cx + t * (k->tile_w + 4), ty = cy + LABEL_H;
            render_map m = {kp->kernel + (size_t)best * out + o, k->kh, k->kw, (size_t)k->kw * in * out, in * out};
            render_paint_map(cv, tx, ty, &m, k->p, k->p, lut, -k->wmax, k->wmax);
            render_frame(cv, tx, ty, k->tile_w, k->tile_h, COLOR_FRAME);
            render_set_rgb(cv->cr, COLOR_MUTED);
            snprintf(buf, sizeof buf, "%d", best);
            render_text(cv, tx + k->tile_w / 2.0, ty + k->tile_h + 10, FONT_REGULAR, TEXT_SMALL, ALIGN_CENTER, buf);
        }
    }
}

cnnviz_status cnnviz_render_kernels(const char *path, const cnnviz_kernel_panel *kp,
                                    const cnnviz_render_options *opt_in, cnnviz_error *err) {
    cnnviz_render_options opt = opt_in ? *opt_in : cnnviz_render_options_default();
    if (render_format_of(path, err) < 0) return CNNVIZ_ERR_INVALID;
    if (!kp || !kp->kernel || (kp->shape.rank != 4 && kp->shape.rank != 2) || cnnviz_shape_size(&kp->shape) == 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "kernels need a (kh, kw, in, out) or (in, out) kernel");
    if (kp->top > 64) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "at most 64 strongest inputs a map");
    kernel_layout k;
    layout(&k, kp, &opt);
    k.dense = k.dense || kp->folded;
    float *norms = NULL;
    if (k.top) {
        if (!(norms = malloc((size_t)k.out * k.in * sizeof *norms)))
            return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
        for (int o = 0; o < k.out; o++)
            for (int i = 0; i < k.in; i++) {
                norms[(size_t)o * k.in + i] = kernel_norm(&k, kp->kernel, i, o);
                if (norms[(size_t)o * k.in + i] > k.nmax) k.nmax = norms[(size_t)o * k.in + i];
            }
    }
    cairo_t *measure = render_measure_context(err);
    if (!measure) {
        free(norms);
        return err ? err->code : CNNVIZ_ERR_UNSUPPORTED;
    }

    const char *title = opt.title ? opt.title : "kernels";
    char kshape[300], head[160], info[600], wr[32], br[128], sub[256];
    char shape_s[64];
    cnnviz_shape_format(&kp->shape, shape_s, sizeof shape_s);
    if (kp->folded) /* say what the Dense kernel is before folding */
        snprintf(kshape, sizeof kshape, "(%zu, %d) folded to %s", cnnviz_shape_size(&kp->shape) / (size_t)k.out, k.out,
                 shape_s);
    else
        snprintf(kshape, sizeof kshape, "%s", shape_s);
    snprintf(head, sizeof head, "%s", kp->name ? kp->name : "kernel");
    render_format_number(wr, sizeof wr, k.wmax);
    if (kp->bias) {
        char a[32], b[32];
        render_format_number(a, sizeof a, k.blo);
        render_format_number(b, sizeof b, k.bhi);
        snprintf(br, sizeof br, " \xc2\xb7 bias (%d) %s \xe2\x80\x93 %s", k.out, a, b);
    } else {
        snprintf(br, sizeof br, " \xc2\xb7 no bias");
    }
    {
        char a[32], b[32];
        render_format_number(a, sizeof a, k.wlo);
        render_format_number(b, sizeof b, k.whi);
        snprintf(info, sizeof info, "%s%skernel %s %s \xe2\x80\x93 %s%s", kp->class_name ? kp->class_name : "",
                 kp->class_name ? " \xc2\xb7 " : "", kshape, a, b, br);
    }
    snprintf(sub, sizeof sub, "symmetric scale \xc2\xb1%s around 0 \xc2\xb7 colormap: %s%s", wr, cnnviz_cmap_name(opt.cmap),
             opt.cmap == CNNVIZ_CMAP_RDBU ? " (red negative, blue positive)" : "");

    int bias_w = k.matrix && !k.top && kp->bias ? GAP + bias_column_width(measure, &k) : 0;
    int cbar_h = k.body_h - (k.matrix ? AXIS_H : LABEL_H);
    if (cbar_h > CBAR_MAX_H) cbar_h = CBAR_MAX_H;
    if (cbar_h < 64) cbar_h = 64;
    int two_bars = k.matrix && !k.top && kp->bias;
    int cbar_lw = render_colorbar_label_width(measure, -k.wmax, k.wmax);
    if (two_bars) {
        int bw = render_colorbar_label_width(measure, -k.bmax, k.bmax);
        if (bw > cbar_lw) cbar_lw = bw;
    }
    int right = CBAR_GAP + CBAR_W + cbar_lw;
    double text_w = fmax(render_text_width(measure, FONT_BOLD, TEXT_FIGURE_TITLE, title),
                         render_text_width(measure, FONT_REGULAR, TEXT_NOTE, sub));
    text_w = fmax(text_w, render_text_width(measure, FONT_BOLD, TEXT_PANEL_TITLE, head) + 10 +
                              render_text_width(measure, FONT_REGULAR, TEXT_NOTE, info));
    cairo_destroy(measure);
    int body_h = k.body_h;
    int bars_h = (k.matrix ? AXIS_H : LABEL_H) + cbar_h + (two_bars ? 40 + cbar_h / 2 : 0);
    if (bars_h > body_h) body_h = bars_h;
    int fig_w = 2 * MARGIN + (int)ceil(fmax(text_w, k.body_w + bias_w + right));
    int fig_h = 2 * MARGIN + HEADER_H + TITLE_H + body_h;

    render_canvas cv;
    cnnviz_status st = render_canvas_open(&cv, path, fig_w, fig_h, title, &opt, err);
    if (st != CNNVIZ_OK) {
        free(norms);
        return st;
    }
    const uint8_t(*lut)[3] = cnnviz_cmap_lut(opt.cmap);
    render_set_rgb(cv.cr, COLOR_TEXT);
    render_text(&cv, MARGIN, MARGIN + 16, FONT_BOLD, TEXT_FIGURE_TITLE, ALIGN_LEFT, title);
    render_set_rgb(cv.cr, COLOR_MUTED);
    render_text(&cv, MARGIN, MARGIN + 36, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, sub);
    int y0 = MARGIN + HEADER_H;
    render_set_rgb(cv.cr, COLOR_TEXT);
    render_text(&cv, MARGIN, y0 + 14, FONT_BOLD, TEXT_PANEL_TITLE, ALIGN_LEFT, head);
    render_set_rgb(cv.cr, COLOR_MUTED);
    render_text(&cv, MARGIN + render_text_width(cv.cr, FONT_BOLD, TEXT_PANEL_TITLE, head) + 10, y0 + 14, FONT_REGULAR,
                TEXT_NOTE, ALIGN_LEFT, info);
    y0 += TITLE_H;
    if (k.top) {
        draw_summary(&cv, &k, kp, norms, MARGIN, y0, lut);
    } else if (k.matrix) {
        draw_matrix(&cv, &k, kp, MARGIN, y0, lut);
        if (kp->bias) draw_bias_column(&cv, &k, kp, MARGIN + k.body_w + GAP, y0, lut);
    } else {
        draw_tiles(&cv, &k, kp, MARGIN, y0, lut);
    }
    int cx = MARGIN + k.body_w + bias_w + CBAR_GAP, cy = y0 + (k.matrix ? AXIS_H : LABEL_H);
    render_colorbar(&cv, cx, cy, CBAR_W, cbar_h, lut, -k.wmax, k.wmax, NULL, NULL);
    if (two_bars) {
        int by = cy + cbar_h + 34;
        render_set_rgb(cv.cr, COLOR_TEXT);
        render_text(&cv, cx, by - 8, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, "bias");
        render_colorbar(&cv, cx, by, CBAR_W, cbar_h / 2, lut, -k.bmax, k.bmax, NULL, NULL);
    }
    free(norms);
    return render_canvas_close(&cv, err);
}
