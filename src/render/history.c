/* The training-history figure: loss and accuracy per epoch, training and
 * validation, from the Keras-style History.history JSON that cnnviz train
 * stores in the model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render-impl.h"

enum {
    MARGIN = 20,
    HEADER_H = 52,
    PLOT_W = 380,
    PLOT_H = 250,
    AXIS_L = 52,  /* y tick labels */
    AXIS_B = 40,  /* x tick labels and "epoch" */
    TITLE_H = 24,
    PLOT_GAP = 36,
    MAX_EPOCHS = 100000,
};

typedef struct {
    const char *name; /* "loss", "accuracy" */
    double *train, *val;
    int ntrain, nval;
} series_pair;

/* A JSON array of numbers; NULL when absent. Non-numbers become NaN (Keras
 * writes NaN losses as NaN, which cJSON reads as null or fails on). */
static double *read_series(const cJSON *root, const char *key, const char *alt, int *n, int *bad) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a && alt) a = cJSON_GetObjectItemCaseSensitive(root, alt);
    *n = 0;
    if (!a) return NULL;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > MAX_EPOCHS) {
        *bad = 1;
        return NULL;
    }
    int len = cJSON_GetArraySize(a);
    if (len == 0) return NULL;
    double *v = malloc((size_t)len * sizeof *v);
    if (!v) {
        *bad = 1;
        return NULL;
    }
    int i = 0;
    for (const cJSON *e = a->child; e && i < len; e = e->next) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    *n = i;
    return v;
}

static void series_range(const series_pair *s, double *lo, double *hi) {
    int any = 0;
    for (int k = 0; k < 2; k++) {
        const double *v = k ? s->val : s->train;
        int n = k ? s->nval : s->ntrain;
        for (int i = 0; i < n; i++) {
            if (!isfinite(v[i])) continue;
            if (!any || v[i] < *lo) *lo = v[i];
            if (!any || v[i] > *hi) *hi = v[i];
            any = 1;
        }
    }
    if (!any) *lo = 0, *hi = 1;
    double pad = (*hi - *lo) * 0.06;
    if (pad == 0) pad = fabs(*hi) > 0 ? fabs(*hi) * 0.05 : 0.5;
    *lo -= pad;
    *hi += pad;
}

static void draw_line(render_canvas *cv, const double *v, int n, double x0, double xs, double y0, double lo,
                      double ys, uint32_t color, int dashed) {
    cairo_t *cr = cv->cr;
    render_set_rgb(cr, color);
    cairo_set_line_width(cr, 1.8);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (dashed) {
        double d[2] = {6, 3};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            pen = 0;
            continue;
        }
        double x = x0 + (i + 1) * xs, y = y0 - (v[i] - lo) * ys;
        if (pen) cairo_line_to(cr, x, y);
        else cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        cairo_arc(cr, x0 + (i + 1) * xs, y0 - (v[i] - lo) * ys, 3, 0, 2 * M_PI);
        cairo_fill(cr);
    }
}

/* The best epoch (1-based): highest validation accuracy, else highest
 * training accuracy, else lowest validation or training loss; the first
 * of ties, as Keras' ModelCheckpoint(save_best_only) keeps it. 0: none. */
static int best_epoch(const series_pair s[2], const char *val_label, char *what, size_t n) {
    const struct { const double *v; int n, higher; } order[4] = {
        {s[1].val, s[1].nval, 1}, {s[1].train, s[1].ntrain, 1}, {s[0].val, s[0].nval, 0}, {s[0].train, s[0].ntrain, 0}};
    for (int k = 0; k < 4; k++) {
        int best = 0;
        for (int i = 0; i < order[k].n; i++) {
            double v = order[k].v[i];
            if (isfinite(v) && (!best || (order[k].higher ? v > order[k].v[best - 1] : v < order[k].v[best - 1])))
                best = i + 1;
        }
        if (best) {
            char v[32];
            snprintf(v, sizeof v, "%.4g", order[k].v[best - 1]);
            snprintf(what, n, "%s %s %s", k % 2 == 0 ? val_label : "training", k < 2 ? "accuracy" : "loss", v);
            return best;
        }
    }
    return 0;
}

/* Epoch ticks: every epoch up to 12, else "nice" steps with epoch 1 always
 * labelled (a step of 5 from 0 would leave the first epoch unlabelled). */
static int epoch_ticks(int epochs, double *ticks, int cap) {
    int nt = 0;
    if (epochs <= 12) {
        for (int e = 1; e <= epochs && nt < cap; e++) ticks[nt++] = e;
        return nt;
    }
    double nice[32];
    int nn = render_nice_ticks(1, epochs, 8, nice, 32);
    double step = nn > 1 ? nice[1] - nice[0] : epochs;
    ticks[nt++] = 1;
    for (int i = 0; i < nn && nt < cap; i++)
        if (nice[i] == floor(nice[i]) && nice[i] >= 1 + step / 2) ticks[nt++] = nice[i];
    return nt;
}

static void draw_plot(render_canvas *cv, const series_pair *s, int x, int y, int epochs, int legend_top,
                      const char *val_label, int best) {
    cairo_t *cr = cv->cr;
    char buf[48];
    int px = x + AXIS_L, py = y + TITLE_H, pw = PLOT_W, ph = PLOT_H;
    render_set_rgb(cr, COLOR_TEXT);
    render_text(cv, px + pw / 2.0, y + 15, FONT_BOLD, TEXT_PANEL_TITLE, ALIGN_CENTER, s->name);

    double lo = 0, hi = 1;
    series_range(s, &lo, &hi);
    /* epochs 1..N sit half a step in from the frame */
    double xs = pw / (epochs + 0.0 + 1.0), ys = ph / (hi - lo);
    double base = py + ph;
    double ticks[32];
    cairo_set_line_width(cr, 1);
    int nt = render_nice_ticks(lo, hi, 6, ticks, 32);
    for (int i = 0; i < nt; i++) {
        double ty = floor(base - (ticks[i] - lo) * ys) + 0.5;
        render_set_rgb(cr, COLOR_GRID);
        cairo_move_to(cr, px, ty);
        cairo_line_to(cr, px + pw, ty);
        cairo_stroke(cr);
        render_set_rgb(cr, COLOR_MUTED);
        render_format_tick(buf, sizeof buf, ticks[i], nt > 1 ? ticks[1] - ticks[0] : 1);
        render_text(cv, px - 6, ty + 3.5, FONT_REGULAR, TEXT_LABEL, ALIGN_RIGHT, buf);
    }
    nt = epoch_ticks(epochs, ticks, 32);
    for (int i = 0; i < nt; i++) {
        double tx = floor(px + ticks[i] * xs) + 0.5;
        render_set_rgb(cr, COLOR_GRID);
        cairo_move_to(cr, tx, py);
        cairo_line_to(cr, tx, py + ph);
        cairo_stroke(cr);
        render_set_rgb(cr, COLOR_MUTED);
        snprintf(buf, sizeof buf, "%d", (int)ticks[i]);
        render_text(cv, tx, py + ph + 14, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, buf);
    }
    render_set_rgb(cr, COLOR_TEXT);
    render_text(cv, px + pw / 2.0, py + ph + 32, FONT_REGULAR, TEXT_LABEL, ALIGN_CENTER, "epoch");

    cairo_save(cr);
    cairo_rectangle(cr, px, py, pw, ph);
    cairo_clip(cr);
    if (best) { /* the best epoch: a dotted rule under the curves */
        double bx = floor(px + best * xs) + 0.5, d[2] = {2, 3};
        render_set_rgb(cr, COLOR_MUTED);
        cairo_set_dash(cr, d, 2, 0);
        cairo_move_to(cr, bx, py);
        cairo_line_to(cr, bx, py + ph);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
    }
    if (s->train) draw_line(cv, s->train, s->ntrain, px, xs, base, lo, ys, COLOR_C0, 0);
    if (s->val) draw_line(cv, s->val, s->nval, px, xs, base, lo, ys, COLOR_C1, 1);
    cairo_restore(cr);
    render_set_rgb(cr, COLOR_AXIS);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, px + 0.5, py + 0.5, pw - 1, ph - 1);
    cairo_stroke(cr);

    /* legend with the last value of each curve, in the corner the curves
     * leave free (loss falls, accuracy rises) */
    int rows = (s->train != NULL) + (s->val != NULL);
    char text[2][64];
    double tw = 0;
    for (int k = 0; k < 2; k++) {
        const double *v = k ? s->val : s->train;
        int n = k ? s->nval : s->ntrain;
        text[k][0] = 0;
        if (!v) continue;
        char last[32];
        render_format_number(last, sizeof last, v[n - 1]);
        snprintf(text[k], sizeof text[k], "%s (last %s)", k ? val_label : "training", last);
        tw = fmax(tw, render_text_width(cr, FONT_REGULAR, TEXT_LABEL, text[k]));
    }
    int lw = 44 + (int)ceil(tw), lh = 10 + 16 * rows;
    int lx = px + pw - lw - 8, ly = legend_top ? py + 8 : py + ph - lh - 8;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, lx, ly, lw, lh);
    cairo_fill(cr);
    render_set_rgb(cr, COLOR_FRAME);
    cairo_rectangle(cr, lx + 0.5, ly + 0.5, lw - 1, lh - 1);
    cairo_stroke(cr);
    int row = 0;
    for (int k = 0; k < 2; k++) {
        if (!(k ? s->val : s->train)) continue;
        double yy = ly + 14 + 16 * row++;
        render_set_rgb(cr, k ? COLOR_C1 : COLOR_C0);
        cairo_set_line_width(cr, 1.8);
        if (k) {
            double d[2] = {6, 3};
            cairo_set_dash(cr, d, 2, 0);
        }
        cairo_move_to(cr, lx + 8, yy - 4);
        cairo_line_to(cr, lx + 30, yy - 4);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_arc(cr, lx + 19, yy - 4, 3, 0, 2 * M_PI);
        cairo_fill(cr);
        render_set_rgb(cr, COLOR_TEXT);
        render_text(cv, lx + 36, yy, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, text[k]);
    }
}

cnnviz_status cnnviz_render_history(const char *path, const char *history_json, const cnnviz_render_options *opt,
                                    cnnviz_error *err) {
    return cnnviz_render_history_labelled(path, history_json, NULL, opt, err);
}

cnnviz_status cnnviz_render_history_labelled(const char *path, const char *history_json, const char *val_label,
                                             const cnnviz_render_options *opt_in, cnnviz_error *err) {
    if (!val_label) val_label = "validation";
    cnnviz_render_options opt = opt_in ? *opt_in : cnnviz_render_options_default();
    if (render_format_of(path, err) < 0) return CNNVIZ_ERR_INVALID;
    if (!history_json) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no training history given");
    cJSON *root = cJSON_Parse(history_json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, "", "the training history is not a JSON object");
    }
    int bad = 0;
    series_pair s[2] = {{"loss", NULL, NULL, 0, 0}, {"accuracy", NULL, NULL, 0, 0}};
    s[0].train = read_series(root, "loss", NULL, &s[0].ntrain, &bad);
    s[0].val = read_series(root, "val_loss", NULL, &s[0].nval, &bad);
    s[1].train = read_series(root, "accuracy", "acc", &s[1].ntrain, &bad);
    s[1].val = read_series(root, "val_accuracy", "val_acc", &s[1].nval, &bad);
    cJSON_Delete(root);
    cnnviz_status st = CNNVIZ_OK;
    int epochs = 0, panels = 0;
    for (int i = 0; i < 2; i++) {
        if (s[i].ntrain > epochs) epochs = s[i].ntrain;
        if (s[i].nval > epochs) epochs = s[i].nval;
        panels += s[i].train || s[i].val;
    }
    if (bad) st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, "", "the training history has a value that is not a list of numbers");
    else if (!panels) st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, "", "the training history has no loss or accuracy");
    if (st == CNNVIZ_OK) {
        const char *title = opt.title ? opt.title : "training history";
        char sub[200], best_s[112] = "", what[64];
        int best = best_epoch(s, val_label, what, sizeof what);
        if (best) snprintf(best_s, sizeof best_s, " \xc2\xb7 best epoch %d, %s (dotted)", best, what);
        snprintf(sub, sizeof sub, "%d epoch%s \xc2\xb7 training solid, %s dashed%s", epochs, epochs == 1 ? "" : "s",
                 val_label, best_s);
        int fig_w = 2 * MARGIN + panels * (AXIS_L + PLOT_W) + (panels - 1) * PLOT_GAP;
        int fig_h = 2 * MARGIN + HEADER_H + TITLE_H + PLOT_H + AXIS_B;
        render_canvas cv;
        st = render_canvas_open(&cv, path, fig_w, fig_h, title, &opt, err);
        if (st == CNNVIZ_OK) {
            render_set_rgb(cv.cr, COLOR_TEXT);
            render_text(&cv, MARGIN, MARGIN + 16, FONT_BOLD, TEXT_FIGURE_TITLE, ALIGN_LEFT, title);
            render_set_rgb(cv.cr, COLOR_MUTED);
            render_text(&cv, MARGIN, MARGIN + 36, FONT_REGULAR, TEXT_NOTE, ALIGN_LEFT, sub);
            int x = MARGIN;
            for (int i = 0; i < 2; i++) {
                if (!s[i].train && !s[i].val) continue;
                draw_plot(&cv, &s[i], x, MARGIN + HEADER_H, epochs, i == 0, val_label, best);
                x += AXIS_L + PLOT_W + PLOT_GAP;
            }
            st = render_canvas_close(&cv, err);
        }
    }
    for (int i = 0; i < 2; i++) {
        free(s[i].train);
        free(s[i].val);
    }
    return st;
}
