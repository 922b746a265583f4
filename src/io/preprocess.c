/* Pixels into model inputs: scaling, transposing, and MNIST-style digit
 * preprocessing of arbitrary pictures.
 *
 * MNIST digits are white ink on black, anti-aliased, with the ink's bounding
 * box fitted into 20x20 keeping the aspect ratio and the centre of mass put
 * at the centre of the 28x28 field by an integer shift (LeCun et al.; the test
 * set's mean centre of mass is (14.0, 14.0) in pixel indices with a spread of
 * 0.29 = 1/sqrt(12), which is what rounding to whole pixels gives). A picture
 * someone drew or photographed differs in every respect, so
 * cnnviz_image_load_digit runs these steps, each chosen for a failure seen
 * in real uploads (shared/data/digits/MANIFEST.md):
 *
 *  1. grey = Rec. 601 luminance (what PIL's convert("L") gives, so results
 *     match the usual Python tutorials); on a transparent canvas the opaque
 *     shape is the ink, and a few soft edges are composited over the colour
 *     that contrasts with the ink (see grey_for_digit);
 *  2. polarity from which side of the median the far-off pixels lie on, over
 *     the whole image, not from the border ring (a light frame round a
 *     white-on-black digit fools the ring);
 *  3. the background level (median) is subtracted and the ink stretched so
 *     its strong pixels reach 255: grey paper, dark-grey canvases, faint
 *     pencil and coloured ink all come out as MNIST-like white on black;
 *  4. a frame of ink along the image edge is removed;
 *  5. connected ink regions much smaller than the digit and away from it
 *     (specks, dust) are dropped before taking the ink box;
 *  6. the box is resampled by area averaging (a box filter) to 4x the target
 *     size, very thin strokes are thickened there to MNIST's stroke width
 *     (about 2 px at 28x28), and the result is area-averaged down into 20x20;
 *  7. the digit is placed in 28x28 with its centre of mass at (14, 14).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/io.h"
#include "io-impl.h"

/* The input-scaling formula, the one place it is written: IDX pixels and
 * the same pixels from a PNG scale alike. */
static inline float scale_value(float v, cnnviz_input_scale s, float std) {
    switch (s.kind) {
    case CNNVIZ_SCALE_UNIT: return v / 255.0f;
    case CNNVIZ_SCALE_RAW: return v;
    case CNNVIZ_SCALE_CENTER: return v / 255.0f - 0.5f;
    case CNNVIZ_SCALE_MEANSTD: return (v / 255.0f - s.mean) / std;
    }
    return v;
}

void cnnviz_scale_pixels(const uint8_t *px, float *out, size_t n, cnnviz_input_scale s) {
    float std = s.std != 0.0f ? s.std : 1.0f;
    for (size_t i = 0; i < n; i++) out[i] = scale_value((float)px[i], s, std);
}

void cnnviz_scale_values(const float *px, float *out, size_t n, cnnviz_input_scale s) {
    float std = s.std != 0.0f ? s.std : 1.0f;
    for (size_t i = 0; i < n; i++) out[i] = scale_value(px[i], s, std);
}

void cnnviz_transpose_image(float *x, int rows, int cols) {
    if (rows == cols) {
        for (int r = 0; r < rows; r++)
            for (int c = r + 1; c < cols; c++) {
                float t = x[r * cols + c];
                x[r * cols + c] = x[c * cols + r];
                x[c * cols + r] = t;
            }
        return;
    }
    /* Non-square, in place without allocating: element i of the rows x cols
     * array goes to (i * rows) mod (n - 1). Each cycle of that permutation is
     * rotated once, from its smallest index. */
    size_t n = (size_t)rows * cols;
    if (n < 3) return;
    for (size_t start = 1; start < n - 1; start++) {
        size_t i = (start * rows) % (n - 1);
        while (i > start) i = (i * rows) % (n - 1);
        if (i != start) continue;
        float carry = x[start];
        i = start;
        do {
            size_t to = (i * rows) % (n - 1);
            float t = x[to];
            x[to] = carry;
            carry = t;
            i = to;
        } while (i != start);
    }
}

/* --- grey ---------------------------------------------------------------- */
static float luminance(const uint8_t *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

/* Grey from RGBA, compositing transparent pixels over `background` (0 or
 * 255). Returns whether any pixel was not opaque. */
static int grey_over(const uint8_t *rgba, size_t n, int background, uint8_t *grey) {
    int any_alpha = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgba + 4 * i;
        if (p[3] != 255) any_alpha = 1;
        float a = p[3] / 255.0f;
        float v = a * luminance(p) + (1.0f - a) * (float)background;
        grey[i] = (uint8_t)(v + 0.5f);
    }
    return any_alpha;
}

typedef enum { OPAQUE, COMPOSITED, ALPHA_IS_INK } alpha_use;

/* Grey for preprocessing. A transparent canvas has no colour of its own, so
 * no fixed background is right for every picture: over white, white ink
 * vanishes; over black (or ignoring alpha), dark ink does, as in
 * 5_transparent_1.png where the RGB under alpha 0 is black.
 *  - When a real part of the picture is transparent (at least a tenth of the
 *    pixels nearly fully so), the drawing is the opaque part: alpha itself is
 *    the ink, with its anti-aliasing, whatever colours the strokes have (a
 *    clip-art digit's outline and fill become one solid shape, like a pen
 *    stroke would be).
 *  - Otherwise (a few soft edges) composite over the colour that contrasts
 *    with the visible pixels, judged by their alpha-weighted mean luminance:
 *    dark strokes over white, light strokes over black. */
static alpha_use grey_for_digit(const uint8_t *rgba, size_t n, uint8_t *grey) {
    double wsum = 0, lsum = 0;
    size_t clear = 0, partial = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgba + 4 * i;
        clear += p[3] < 16;
        partial += p[3] != 255;
        wsum += p[3];
        lsum += p[3] * (double)luminance(p);
    }
    if (partial == 0) {
        grey_over(rgba, n, 0, grey);
        return OPAQUE;
    }
    if (clear * 10 >= n) {
        for (size_t i = 0; i < n; i++) grey[i] = rgba[4 * i + 3];
        return ALPHA_IS_INK;
    }
    grey_over(rgba, n, (wsum > 0 && lsum / wsum < 128.0) ? 255 : 0, grey);
    return COMPOSITED;
}

/* --- levels ---------------------------------------------------------------- */
/* Smallest value v with more than q of the n counted pixels at or below it. */
static int hist_quantile(const size_t hist[256], size_t n, double q) {
    size_t want = (size_t)(q * (double)n), acc = 0;
    for (int v = 0; v < 256; v++) {
        acc += hist[v];
        if (acc > want) return v;
    }
    return 255;
}

typedef struct {
    int invert;     /* dark ink on a light ground */
    int background; /* the background level after inversion (ink bright) */
    int ink;        /* the level strong ink reaches, after inversion */
} levels;

/* The background is the median: in a digit picture the ground covers more
 * than half of the pixels. Ink is what lies well away from it, and which
 * side holds more of that (weighted by distance) gives the polarity. This
 * looks at every pixel, so a light frame or a shadowed corner only adds its
 * own small share. Returns 0 when there is nothing but background. */
static int find_levels(const uint8_t *g, size_t n, levels *lv) {
    size_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[g[i]]++;
    int med = hist_quantile(hist, n, 0.5), lo = 0, hi = 255;
    while (hist[lo] == 0) lo++;
    while (hist[hi] == 0) hi--;
    int spread = hi - med > med - lo ? hi - med : med - lo;
    int margin = spread / 4 > 8 ? spread / 4 : 8;
    double dark = 0, light = 0;
    for (int v = 0; v < 256; v++) {
        if (v < med - margin) dark += (double)hist[v] * (med - v);
        if (v > med + margin) light += (double)hist[v] * (v - med);
    }
    if (dark == 0 && light == 0) return 0;
    lv->invert = dark > light;
    lv->background = lv->invert ? 255 - med : med;
    /* strong ink: the 95th percentile of the pixels beyond the margin, so a
     * few extreme pixels do not set the scale */
    size_t ink_hist[256] = {0}, nink = 0;
    for (int v = 0; v < 256; v++) {
        int iv = lv->invert ? 255 - v : v;
        if (iv > lv->background + margin) {
            ink_hist[iv] += hist[v];
            nink += hist[v];
        }
    }
    lv->ink = hist_quantile(ink_hist, nink, 0.95);
    return lv->ink > lv->background;
}

/* In place: ink bright, background 0, strong ink 255. */
static void apply_levels(uint8_t *g, size_t n, const levels *lv) {
    uint8_t map[256];
    float gain = 255.0f / (float)(lv->ink - lv->background);
    for (int v = 0; v < 256; v++) {
        int iv = lv->invert ? 255 - v : v;
        float y = (float)(iv - lv->background) * gain;
        map[v] = y <= 0 ? 0 : (y >= 255 ? 255 : (uint8_t)(y + 0.5f));
    }
    for (size_t i = 0; i < n; i++) g[i] = map[g[i]];
}

/* --- frame ----------------------------------------------------------------- */
/* A frame is a few lines along an edge that are mostly ink, with background
 * behind them. Lines are only cleared when background follows within a
 * shallow depth, so a thick stroke that touches the edge (a 5's top bar in a
 * tight crop) is left alone. Returns how many lines were cleared. */
static int line_mean(const uint8_t *g, int w, int h, int side, int k) {
    long sum = 0;
    int len = (side < 2) ? w : h;
    for (int t = 0; t < len; t++) {
        int x = side == 0 || side == 1 ? t : (side == 2 ? k : w - 1 - k);
        int y = side == 0 ? k : (side == 1 ? h - 1 - k : t);
        sum += g[(size_t)y * w + x];
    }
    return (int)(sum / len);
}

static void clear_line(uint8_t *g, int w, int h, int side, int k) {
    int len = (side < 2) ? w : h;
    for (int t = 0; t < len; t++) {
        int x = side == 0 || side == 1 ? t : (side == 2 ? k : w - 1 - k);
        int y = side == 0 ? k : (side == 1 ? h - 1 - k : t);
        g[(size_t)y * w + x] = 0;
    }
}

static int remove_frame(uint8_t *g, int w, int h) {
    int cleared = 0;
    for (int side = 0; side < 4; side++) { /* top, bottom, left, right */
        int dim = side < 2 ? h : w;
        int depth_max = dim / 25 > 2 ? dim / 25 : 2;
        int k = 0;
        while (k < depth_max && k < dim / 2 && line_mean(g, w, h, side, k) > 160) k++;
        if (k == 0 || k >= dim / 2 || line_mean(g, w, h, side, k) > 64) continue;
        /* one more line for the frame's anti-aliased inner edge */
        for (int j = 0; j <= k; j++) clear_line(g, w, h, side, j);
        cleared += k + 1;
    }
    return cleared;
}

/* --- ink regions ------------------------------------------------------------- */
static int uf_find(int *parent, int i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

typedef struct {
    long area;
    int x0, y0, x1, y1; /* inclusive, in cells */
    int keep;
} region;

/* In place: m |= any set cell within `reach` (a separable square dilation).
 * Each pass remembers the nearest set cell behind it, sweeping both ways, so
 * the cost does not grow with reach (the gap on a 2048 px canvas is about 70
 * cells), and both passes walk rows in memory order. */
static int dilate_mask(uint8_t *m, int cw, int ch, int reach) {
    uint8_t *tmp = malloc((size_t)cw * ch);
    int *last = malloc((size_t)cw * sizeof *last);
    if (tmp == NULL || last == NULL) {
        free(tmp);
        free(last);
        return -1;
    }
    for (int cy = 0; cy < ch; cy++) { /* along rows, into tmp */
        const uint8_t *in = m + (size_t)cy * cw;
        uint8_t *out = tmp + (size_t)cy * cw;
        int near = -1 - reach;
        for (int x = 0; x < cw; x++) {
            if (in[x]) near = x;
            out[x] = x - near <= reach;
        }
        near = cw + reach;
        for (int x = cw - 1; x >= 0; x--) {
            if (in[x]) near = x;
            if (near - x <= reach) out[x] = 1;
        }
    }
    for (int x = 0; x < cw; x++) last[x] = -1 - reach; /* down the columns, into m */
    for (int cy = 0; cy < ch; cy++)
        for (int x = 0; x < cw; x++) {
            if (tmp[(size_t)cy * cw + x]) last[x] = cy;
            m[(size_t)cy * cw + x] = cy - last[x] <= reach;
        }
    for (int x = 0; x < cw; x++) last[x] = ch + reach;
    for (int cy = ch - 1; cy >= 0; cy--)
        for (int x = 0; x < cw; x++) {
            if (tmp[(size_t)cy * cw + x]) last[x] = cy;
            if (last[x] - cy <= reach) m[(size_t)cy * cw + x] = 1;
        }
    free(tmp);
    free(last);
    return 0;
}

#define INK_THRESHOLD 96  /* about 38% of full ink: a stroke's core, not its halo */
#define HALO_THRESHOLD 24 /* what still counts as ink when finding the box */

/* Label 8-connected ink cells (cells are f x f pixel blocks, f > 1 only for
 * very large images, to bound memory) and mark which regions are the digit:
 * those at least a tenth of the largest, plus smaller ones lying within the
 * digit's box grown by a tenth of its size (the detached bar of a 5, a
 * broken pen stroke). Everything else (specks, dust, noise) is dropped.
 * Fills keep[] per cell; returns the number of regions kept, -1 on no memory. */
static int find_digit_cells(const uint8_t *g, int w, int h, int f, uint8_t *keep, int cw, int ch, int *nregions) {
    size_t ncell = (size_t)cw * ch;
    int *label = calloc(ncell, sizeof *label);
    int *parent = malloc((ncell + 1) * sizeof *parent);
    if (label == NULL || parent == NULL) {
        free(label);
        free(parent);
        return -1;
    }
    memset(keep, 0, ncell);
    for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
            int on = 0;
            for (int y = cy * f; y < (cy + 1) * f && y < h && !on; y++)
                for (int x = cx * f; x < (cx + 1) * f && x < w; x++)
                    if (g[(size_t)y * w + x] >= INK_THRESHOLD) {
                        on = 1;
                        break;
                    }
            keep[(size_t)cy * cw + cx] = (uint8_t)on;
        }
    /* two-pass labelling with union-find */
    int next = 1;
    parent[0] = 0;
    for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
            size_t i = (size_t)cy * cw + cx;
            if (!keep[i]) continue;
            int best = 0;
            static const int dx[4] = {-1, -1, 0, 1}, dy[4] = {0, -1, -1, -1};
            for (int k = 0; k < 4; k++) {
                int nx = cx + dx[k], ny = cy + dy[k];
                if (nx < 0 || ny < 0 || nx >= cw) continue;
                int l = label[(size_t)ny * cw + nx];
                if (l == 0) continue;
                l = uf_find(parent, l);
                if (best == 0) best = l;
                else if (l != best) {
                    if (l < best) { int t = l; l = best; best = t; }
                    parent[l] = best;
                }
            }
            if (best == 0) {
                best = next;
                parent[next] = next;
                next++;
            }
            label[i] = best;
        }
    region *rg = calloc((size_t)next, sizeof *rg);
    if (rg == NULL) {
        free(label);
        free(parent);
        return -1;
    }
    long largest = 0;
    for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
            size_t i = (size_t)cy * cw + cx;
            if (!label[i]) continue;
            int r = label[i] = uf_find(parent, label[i]);
            region *q = &rg[r];
            if (q->area == 0) {
                q->x0 = q->x1 = cx;
                q->y0 = q->y1 = cy;
            }
            q->area++;
            if (cx < q->x0) q->x0 = cx;
            if (cx > q->x1) q->x1 = cx;
            if (cy < q->y0) q->y0 = cy;
            if (cy > q->y1) q->y1 = cy;
            if (q->area > largest) largest = q->area;
        }
    int bx0 = cw, by0 = ch, bx1 = -1, by1 = -1, kept = 0, total = 0;
    for (int r = 1; r < next; r++) {
        if (rg[r].area == 0) continue;
        total++;
        if (rg[r].area * 10 < largest) continue;
        rg[r].keep = 1;
        kept++;
        if (rg[r].x0 < bx0) bx0 = rg[r].x0;
        if (rg[r].y0 < by0) by0 = rg[r].y0;
        if (rg[r].x1 > bx1) bx1 = rg[r].x1;
        if (rg[r].y1 > by1) by1 = rg[r].y1;
    }
    /* Small regions close to the big ones are pieces of the digit; "close"
     * is a gap of 5% of the digit's size. A dot of dust on photographed
     * paper is usually farther from every stroke than that. */
    int gap = ((bx1 - bx0 > by1 - by0 ? bx1 - bx0 : by1 - by0) + 1) / 20;
    for (size_t i = 0; i < ncell; i++) keep[i] = label[i] && rg[label[i]].keep;
    if (dilate_mask(keep, cw, ch, gap > 2 ? gap : 2) != 0) {
        free(rg);
        free(label);
        free(parent);
        return -1;
    }
    for (size_t i = 0; i < ncell; i++) {
        region *q = &rg[label[i]];
        if (label[i] && keep[i] && !q->keep) {
            q->keep = 1;
            kept++;
        }
    }
    for (size_t i = 0; i < ncell; i++) keep[i] = label[i] && rg[label[i]].keep;
    *nregions = total;
    free(rg);
    free(label);
    free(parent);
    return kept;
}

/* Clear every pixel farther than `reach` cells from a kept region: specks
 * go, the anti-aliased rim of the digit's own strokes stays. keep[] is
 * widened in place. Returns -1 on no memory. */
static int clear_outside(uint8_t *g, int w, int h, int f, uint8_t *keep, int cw, int ch, int reach) {
    if (dilate_mask(keep, cw, ch, reach) != 0) return -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *krow = keep + (size_t)(y / f) * cw;
        uint8_t *grow = g + (size_t)y * w;
        if (f == 1) {
            for (int x = 0; x < w; x++) grow[x] &= (uint8_t)-krow[x]; /* keep is 0 or 1 */
        } else {
            for (int x = 0; x < w; x++)
                if (!krow[x / f]) grow[x] = 0;
        }
    }
    return 0;
}

/* --- resampling ---------------------------------------------------------------- */
/* Area averaging along one axis: output cell j covers source [j*s, (j+1)*s)
 * with s = n_in/n_out, and is the mean over that span (partial pixels
 * weighted by overlap). Unlike nearest neighbour it keeps a 1 px stroke in a
 * 2000 px canvas as a faint line rather than dropping it; for s < 1 it is a
 * box reconstruction. `stride` steps between inputs and between outputs. */
static void resample_line(const float *in, int n_in, size_t in_stride, float *out, int n_out, size_t out_stride) {
    double s = (double)n_in / n_out;
    for (int j = 0; j < n_out; j++) {
        double a = j * s, b = (j + 1) * s, acc = 0;
        int i0 = (int)a, i1 = (int)ceil(b);
        if (i1 > n_in) i1 = n_in;
        for (int i = i0; i < i1; i++) {
            double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
            if (hi > lo) acc += (hi - lo) * in[(size_t)i * in_stride];
        }
        out[(size_t)j * out_stride] = (float)(acc / s);
    }
}

/* src (sw x sh, row stride src_stride floats) -> dst (dw x dh, packed) */
static int resample_area(const float *src, int sw, int sh, size_t src_stride, float *dst, int dw, int dh) {
    float *tmp = malloc((size_t)dw * sh * sizeof *tmp);
    if (tmp == NULL) return -1;
    for (int y = 0; y < sh; y++) resample_line(src + (size_t)y * src_stride, sw, 1, tmp + (size_t)y * dw, dw, 1);
    for (int x = 0; x < dw; x++) resample_line(tmp + x, sh, (size_t)dw, dst + x, dh, (size_t)dw);
    free(tmp);
    return 0;
}

/* The same from a box of the 8-bit working image, a row at a time, so a
 * large crop is never held as floats. */
static int resample_box_u8(const uint8_t *g, int w, int x0, int y0, int bw, int bh, float *dst, int dw, int dh) {
    float *tmp = malloc((size_t)dw * bh * sizeof *tmp), *row = malloc((size_t)bw * sizeof *row);
    if (tmp == NULL || row == NULL) {
        free(tmp);
        free(row);
        return -1;
    }
    for (int y = 0; y < bh; y++) {
        const uint8_t *src = g + (size_t)(y + y0) * w + x0;
        for (int x = 0; x < bw; x++) row[x] = src[x];
        resample_line(row, bw, 1, tmp + (size_t)y * dw, dw, 1);
    }
    for (int x = 0; x < dw; x++) resample_line(tmp + x, bh, (size_t)dw, dst + x, dh, (size_t)dw);
    free(tmp);
    free(row);
    return 0;
}

/* Mean stroke width of the ink above half the peak: a stroke of width t and
 * length L has area tL and about 2L edges between ink and background, so
 * t = 2 * area / edges. */
static double stroke_width(const float *x, int w, int h) {
    float peak = 0;
    for (int i = 0; i < w * h; i++) peak = x[i] > peak ? x[i] : peak;
    float t = peak * 0.5f;
    long area = 0, edges = 0;
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            int on = x[y * w + xx] > t;
            area += on;
            int right = xx + 1 < w && x[y * w + xx + 1] > t, down = y + 1 < h && x[(y + 1) * w + xx] > t;
            int left = xx > 0 && x[y * w + xx - 1] > t, up = y > 0 && x[(y - 1) * w + xx] > t;
            if (on) edges += !right + !down + !left + !up;
        }
    return edges ? 2.0 * (double)area / (double)edges : 0.0;
}

/* Grey dilation by a (2r+1)^2 square, into a canvas padded by r. */
static float *dilate(const float *x, int w, int h, int r, int *ow, int *oh) {
    int W = w + 2 * r, H = h + 2 * r;
    float *pad = calloc((size_t)W * H, sizeof *pad), *tmp = calloc((size_t)W * H, sizeof *tmp);
    if (pad == NULL || tmp == NULL) {
        free(pad);
        free(tmp);
        return NULL;
    }
    for (int y = 0; y < h; y++) memcpy(pad + (size_t)(y + r) * W + r, x + (size_t)y * w, (size_t)w * sizeof *x);
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            float m = 0;
            for (int k = xx - r; k <= xx + r; k++)
                if (k >= 0 && k < W && pad[(size_t)y * W + k] > m) m = pad[(size_t)y * W + k];
            tmp[(size_t)y * W + xx] = m;
        }
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            float m = 0;
            for (int k = y - r; k <= y + r; k++)
                if (k >= 0 && k < H && tmp[(size_t)k * W + xx] > m) m = tmp[(size_t)k * W + xx];
            pad[(size_t)y * W + xx] = m;
        }
    free(tmp);
    *ow = W;
    *oh = H;
    return pad;
}

/* Scale x so that its q-quantile among the inked pixels (above 5% of the
 * peak) becomes 255, clipping what lies above. q = 1 is the peak itself. */
static void stretch_to_255(float *x, size_t n, double q) {
    float peak = 0;
    for (size_t i = 0; i < n; i++) peak = x[i] > peak ? x[i] : peak;
    if (peak <= 0) return;
    float level = peak;
    if (q < 1.0) {
        size_t hist[256] = {0}, inked = 0;
        for (size_t i = 0; i < n; i++)
            if (x[i] > 0.05f * peak) {
                int bin = (int)(x[i] / peak * 255.0f);
                hist[bin > 255 ? 255 : bin]++;
                inked++;
            }
        level = (float)(hist_quantile(hist, inked, q) + 1) / 256.0f * peak;
        if (level > peak) level = peak;
    }
    for (size_t i = 0; i < n; i++) x[i] = x[i] >= level ? 255.0f : x[i] * 255.0f / level;
}

/* --- the pipeline ------------------------------------------------------------------- */
/* MNIST's stroke width measured like stroke_width() on the 28x28 test set:
 * median 2.0 px, 10th percentile 1.5. Strokes thinner than THIN_STROKE after
 * fitting are widened to TARGET_STROKE. */
#define TARGET_STROKE 2.2
#define THIN_STROKE 1.5
#define SUPERSAMPLE 4

typedef struct {
    uint8_t *rgba, *g, *keep;
    float *mid, *thick, *fit;
} digit_buffers;

static void free_buffers(digit_buffers *b) {
    free(b->rgba);
    free(b->g);
    free(b->keep);
    free(b->mid);
    free(b->thick);
    free(b->fit);
}

static cnnviz_status take_as_is(const char *path, const uint8_t *rgba, int w, int h, int out_h, int out_w,
                                float *out, const char *desc, cnnviz_preprocess_report *rep, uint8_t *g,
                                cnnviz_error *err) {
    if (w != out_w || h != out_h)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path,
                                "image is %dx%d, the model needs %dx%d (use preprocessing or resize it)", w, h,
                                out_w, out_h);
    /* Taken as it is: only made grey. Transparent means "no ink", which in
     * MNIST's convention is black. */
    int alpha = grey_over(rgba, (size_t)w * h, 0, g);
    for (size_t i = 0; i < (size_t)w * h; i++) out[i] = g[i];
    if (rep) {
        rep->alpha_composited = alpha;
        rep->crop_w = w;
        rep->crop_h = h;
        rep->scale = 1.0f;
        snprintf(rep->summary, sizeof rep->summary, "%dx%d %s, taken as it is%s", w, h, desc,
                 alpha ? " (transparent pixels as black)" : "");
    }
    return CNNVIZ_OK;
}

/* Append to a report line; a long line is cut, never overrun. */
static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Where to put the fitted digit: the integer offset that brings its centre
 * of mass nearest (out/2, out/2), kept inside the field. */
static void place_by_mass(const float *fit, int fw, int fh, int out_w, int out_h, int *ox, int *oy) {
    double m = 0, mx = 0, my = 0;
    for (int y = 0; y < fh; y++)
        for (int x = 0; x < fw; x++) {
            double v = fit[y * fw + x];
            m += v;
            mx += v * x;
            my += v * y;
        }
    double cx = m > 0 ? mx / m : (fw - 1) / 2.0, cy = m > 0 ? my / m : (fh - 1) / 2.0;
    int x = (int)floor(out_w / 2.0 - cx + 0.5), y = (int)floor(out_h / 2.0 - cy + 0.5);
    *ox = x < 0 ? 0 : (x > out_w - fw ? out_w - fw : x);
    *oy = y < 0 ? 0 : (y > out_h - fh ? out_h - fh : y);
}

cnnviz_status cnnviz_image_load_digit(const char *path, int preprocess, int out_h, int out_w, float *out,
                                      cnnviz_preprocess_report *report, cnnviz_error *err) {
    if (report) memset(report, 0, sizeof *report);
    if (out_h < 8 || out_w < 8 || out_h > 4096 || out_w > 4096)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "cannot make a %dx%d digit image", out_w, out_h);
    digit_buffers b;
    memset(&b, 0, sizeof b);
    int w, h;
    char desc[64];
    cnnviz_status st = cnnviz_image_decode(path, &w, &h, &b.rgba, desc, sizeof desc, err);
    if (st != CNNVIZ_OK) return st;
    size_t n = (size_t)w * h;
    if (report) {
        report->src_w = w;
        report->src_h = h;
    }
    b.g = malloc(n);
    if (b.g == NULL) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    if (!preprocess) {
        st = take_as_is(path, b.rgba, w, h, out_h, out_w, out, desc, report, b.g, err);
        free_buffers(&b);
        return st;
    }

    /* 1-3: grey, polarity, levels */
    alpha_use alpha = grey_for_digit(b.rgba, n, b.g);
    free(b.rgba);
    b.rgba = NULL;
    levels lv;
    if (!find_levels(b.g, n, &lv)) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no digit found: the image is blank");
    }
    apply_levels(b.g, n, &lv);
    /* 4: frame */
    int framed = remove_frame(b.g, w, h);

    /* 5: the digit's ink regions. Cells of f x f pixels keep the label
     * arrays under 4 Mcells on very large canvases. */
    int f = 1;
    while ((size_t)((w + f - 1) / f) * (size_t)((h + f - 1) / f) > ((size_t)4 << 20)) f++;
    int cw = (w + f - 1) / f, ch = (h + f - 1) / f, nregions = 0;
    b.keep = malloc((size_t)cw * ch);
    int kept = b.keep ? find_digit_cells(b.g, w, h, f, b.keep, cw, ch, &nregions) : -1;
    if (kept < 0) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    if (kept == 0) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no digit found: the image is blank");
    }
    if (clear_outside(b.g, w, h, f, b.keep, cw, ch, f == 1 ? 2 : 1) != 0) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (b.g[(size_t)y * w + x] >= HALO_THRESHOLD) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1, longest = bw > bh ? bw : bh;

    /* 6: box -> SUPERSAMPLE x the fit size, thicken, -> fit size */
    int fit = (int)((out_h < out_w ? out_h : out_w) * 20.0 / 28.0 + 0.5);
    int big = fit * SUPERSAMPLE;
    int mw = (int)((double)bw * big / longest + 0.5), mh = (int)((double)bh * big / longest + 0.5);
    mw = mw < 1 ? 1 : mw;
    mh = mh < 1 ? 1 : mh;
    b.mid = malloc((size_t)mw * mh * sizeof *b.mid);
    if (b.mid == NULL || resample_box_u8(b.g, w, x0, y0, bw, bh, b.mid, mw, mh) != 0) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    double stroke = stroke_width(b.mid, mw, mh) / SUPERSAMPLE; /* in output pixels */
    int r = 0, tw = mw, th = mh;
    const float *mid = b.mid;
    if (stroke < THIN_STROKE) {
        /* widen by 2r at SUPERSAMPLE x; the box grows by 2r too, so solve
         * (t + 2r) / (big + 2r) = TARGET / fit for r */
        double t = stroke * SUPERSAMPLE, goal = TARGET_STROKE / fit;
        r = (int)((goal * big - t) / (2.0 * (1.0 - goal)) + 0.5);
        if (r > 0) {
            b.thick = dilate(b.mid, mw, mh, r, &tw, &th);
            if (b.thick == NULL) {
                free_buffers(&b);
                return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
            }
            mid = b.thick;
        }
    }
    /* Averaging a hairline across a big canvas leaves it faint, and a
     * crossing of two faint lines twice as bright: lift the stroke body, not
     * the brightest crossing, to full ink. */
    stretch_to_255(b.thick ? b.thick : b.mid, (size_t)tw * th, 0.9);
    int tl = tw > th ? tw : th;
    int fw = (int)((double)tw * fit / tl + 0.5), fh = (int)((double)th * fit / tl + 0.5);
    fw = fw < 1 ? 1 : fw;
    fh = fh < 1 ? 1 : fh;
    b.fit = malloc((size_t)fw * fh * sizeof *b.fit);
    if (b.fit == NULL || resample_area(mid, tw, th, (size_t)tw, b.fit, fw, fh) != 0) {
        free_buffers(&b);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    /* MNIST ink peaks at exactly 255 (every test digit does) */
    stretch_to_255(b.fit, (size_t)fw * fh, 1.0);

    /* 7: centre of mass to the centre */
    int ox, oy;
    place_by_mass(b.fit, fw, fh, out_w, out_h, &ox, &oy);
    memset(out, 0, (size_t)out_w * out_h * sizeof *out);
    for (int y = 0; y < fh; y++)
        for (int x = 0; x < fw; x++) out[(size_t)(y + oy) * out_w + (x + ox)] = b.fit[y * fw + x];

    if (report) {
        report->inverted = lv.invert;
        report->alpha_composited = alpha != OPAQUE;
        report->crop_x = x0;
        report->crop_y = y0;
        report->crop_w = bw;
        report->crop_h = bh;
        report->scale = (float)((double)fw / tw * mw / bw);
        report->shift_x = (float)(ox - (out_w - fw) / 2.0);
        report->shift_y = (float)(oy - (out_h - fh) / 2.0);
        char *sum = report->summary;
        size_t cap = sizeof report->summary;
        append(sum, cap, "%dx%d %s%s, %s, ink %dx%d at (%d,%d), fit %dx%d, shifted (%+g,%+g)", w, h, desc,
               alpha == ALPHA_IS_INK ? ", transparent background (opaque part taken as ink)"
                                     : (alpha == COMPOSITED ? ", alpha composited" : ""),
               lv.invert ? "dark-on-light (inverted)" : "light-on-dark", bw, bh,
               x0, y0, fw, fh, report->shift_x, report->shift_y);
        if (framed) append(sum, cap, ", frame removed");
        if (nregions > kept)
            append(sum, cap, ", %d speck%s dropped", nregions - kept, nregions - kept == 1 ? "" : "s");
        if (r > 0) append(sum, cap, ", strokes thickened");
    }
    free_buffers(&b);
    return CNNVIZ_OK;
}
