/* Value scales: colormap lookup, normalisation options, tick positions and
 * number formats shared by every figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render-impl.h"

static const char *const cmap_names[] = {
    [CNNVIZ_CMAP_GRAY] = "gray",
    [CNNVIZ_CMAP_VIRIDIS] = "viridis",
    [CNNVIZ_CMAP_MAGMA] = "magma",
    [CNNVIZ_CMAP_RDBU] = "RdBu",
};

int cnnviz_cmap_parse(const char *name, cnnviz_cmap *out) {
    for (int i = 0; i < (int)(sizeof cmap_names / sizeof *cmap_names); i++)
        if (name && strcasecmp(name, cmap_names[i]) == 0) {
            *out = (cnnviz_cmap)i;
            return 0;
        }
    return -1;
}

const char *cnnviz_cmap_name(cnnviz_cmap c) {
    return (unsigned)c < sizeof cmap_names / sizeof *cmap_names ? cmap_names[c] : "?";
}

/* matplotlib: Normalize maps v to x = (v-lo)/(hi-lo) in the data's own float
 * type, then Colormap.__call__ takes level = int(x*N) with x == 1 going to
 * N-1 and values outside [0, 1] to the end colours (the default under/over
 * colours are the end colours). Computed in float like matplotlib does for
 * float32 arrays, so a level boundary falls on the same value. */
int render_cmap_level(float v, float lo, float hi) {
    if (!(hi > lo) || isnan(v)) return 0;
    float x = (v - lo) / (hi - lo) * 256.0f;
    if (!(x >= 0.0f)) return 0;
    if (x >= 255.0f) return 255;
    return (int)x;
}

void cnnviz_cmap_rgb(cnnviz_cmap c, float v, float lo, float hi, uint8_t rgb[3]) {
    const uint8_t(*lut)[3] = cnnviz_cmap_lut(c);
    int k = render_cmap_level(v, lo, hi);
    memcpy(rgb, lut[k], 3);
}

cnnviz_status cnnviz_norm_parse(const char *s, cnnviz_norm *out, cnnviz_error *err) {
    memset(out, 0, sizeof *out);
    if (!s) s = "";
    if (strcmp(s, "layer") == 0) out->kind = CNNVIZ_NORM_LAYER;
    else if (strcmp(s, "map") == 0) out->kind = CNNVIZ_NORM_MAP;
    else if (strcmp(s, "global") == 0) out->kind = CNNVIZ_NORM_GLOBAL;
    else if (strncmp(s, "fixed:", 6) == 0) {
        char *end, *end2;
        double lo = strtod(s + 6, &end);
        double hi = end != s + 6 && *end == ':' ? strtod(end + 1, &end2) : 0;
        if (end == s + 6 || *end != ':' || end2 == end + 1 || *end2 || !isfinite(lo) || !isfinite(hi))
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "--norm: '%s' is not fixed:LO:HI with two numbers", s);
        if (!(lo < hi))
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "--norm: '%s' needs LO below HI", s);
        out->kind = CNNVIZ_NORM_FIXED;
        out->lo = (float)lo;
        out->hi = (float)hi;
    } else
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "--norm: '%s' is not layer, map, global or fixed:LO:HI", s);
    return CNNVIZ_OK;
}

void cnnviz_norm_format(const cnnviz_norm *n, char *buf, size_t size) {
    switch (n->kind) {
    case CNNVIZ_NORM_LAYER: snprintf(buf, size, "layer"); return;
    case CNNVIZ_NORM_MAP: snprintf(buf, size, "map"); return;
    case CNNVIZ_NORM_GLOBAL: snprintf(buf, size, "global"); return;
    case CNNVIZ_NORM_FIXED: {
        char lo[32], hi[32];
        render_format_number(lo, sizeof lo, n->lo);
        render_format_number(hi, sizeof hi, n->hi);
        snprintf(buf, size, "fixed [%s, %s]", lo, hi);
        return;
    }
    }
    snprintf(buf, size, "?");
}

cnnviz_render_options cnnviz_render_options_default(void) {
    cnnviz_render_options o;
    memset(&o, 0, sizeof o);
    o.cmap = CNNVIZ_CMAP_GRAY;
    o.norm.kind = CNNVIZ_NORM_LAYER;
    return o;
}

void render_format_number(char *buf, size_t n, double v) {
    if (v == 0 || fabs(v) < 1e-30) v = 0; /* never print "-0" */
    snprintf(buf, n, "%.3g", v);
}

void render_format_tick(char *buf, size_t n, double v, double step) {
    int dec = 0;
    for (double s = fabs(step); dec < 8 && fabs(s - floor(s + 0.5)) > 1e-6 * fmax(1.0, s); s *= 10) dec++;
    if (fabs(v) < step * 1e-6) v = 0;
    if (fabs(v) >= 1e6 || (v != 0 && fabs(v) < 1e-4)) {
        render_format_number(buf, n, v);
        return;
    }
    snprintf(buf, n, "%.*f", dec, v);
}

int render_nice_ticks(double lo, double hi, int max_ticks, double *out, int cap) {
    if (!(hi > lo) || max_ticks < 1) return 0;
    double span = hi - lo, raw = span / max_ticks;
    double mag = pow(10.0, floor(log10(raw)));
    static const double mult[] = {1, 2, 2.5, 5, 10};
    double step = 10 * mag;
    for (int i = 0; i < 5; i++)
        if (mult[i] * mag >= raw) {
            step = mult[i] * mag;
            break;
        }
    int k = 0;
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && k < cap; t += step) {
        out[k++] = fabs(t) < step * 1e-9 ? 0.0 : t;
    }
    return k;
}

int render_grid_columns(int n) {
    if (n <= 1) return 1;
    int lo = (int)ceil(sqrt((double)n)), hi = (int)ceil(sqrt(2.0 * n));
    int best = lo, best_empty = n;
    for (int c = lo; c <= hi; c++) {
        int rows = (n + c - 1) / c, empty = rows * c - n;
        if (empty < best_empty) {
            best = c;
            best_empty = empty;
        }
    }
    return best;
}

void render_range(const float *v, size_t n, size_t stride, float *lo, float *hi) {
    int any = 0;
    float a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        float x = v[i * stride];
        if (isnan(x)) continue;
        if (!any || x < a) a = x;
        if (!any || x > b) b = x;
        any = 1;
    }
    *lo = a;
    *hi = b;
}
