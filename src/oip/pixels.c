/* Image operations of the gradient ascent: start images, gradient scaling,
 * and the regularisers (total variation, blur, jitter). One image at a time,
 * h x w pixels of c channels, channels last. */
#include <math.h>
#include <string.h>

#include "oip-impl.h"

void oip_image_geometry(const cnnviz_shape *in, int *h, int *w, int *c) {
    size_t n = cnnviz_shape_size(in);
    if (in->rank == 3) {
        *h = in->dim[0], *w = in->dim[1], *c = in->dim[2];
    } else if (in->rank == 2) {
        *h = in->dim[0], *w = in->dim[1], *c = 1;
    } else if (n == 784) { /* a flat MLP still takes a 28x28 digit */
        *h = 28, *w = 28, *c = 1;
    } else {
        *h = 1, *w = (int)n, *c = 1;
    }
}

void oip_init_uniform(float *x, int h, int w, int c, float lo, float hi, cnnviz_rng *rng) {
    size_t n = (size_t)h * w * c;
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * cnnviz_rng_uniform(rng);
}

/* The articles' "multi-scale" start: fluctuations on several length scales
 * summed, so the first steps see blobs and strokes of many sizes rather than
 * pixel noise only, which 3x3 filters average away. */
void oip_init_multiscale(float *x, int h, int w, int c, float lo, float hi, cnnviz_rng *rng, float *grid) {
    static const int scales[] = {1, 2, 4, 8};
    const int nscales = (int)(sizeof scales / sizeof *scales);
    size_t n = (size_t)h * w * c;
    memset(x, 0, n * sizeof *x);
    for (int si = 0; si < nscales; si++) {
        int s = scales[si];
        /* a coarse grid covering the image, one node more for the last cell's far edge */
        int gh = (h + s - 1) / s + 1, gw = (w + s - 1) / s + 1;
        for (int ch = 0; ch < c; ch++) {
            for (int i = 0; i < gh * gw; i++) grid[i] = 2.0f * cnnviz_rng_uniform(rng) - 1.0f;
            for (int y = 0; y < h; y++) {
                int y0 = y / s;
                float ty = (float)(y - y0 * s) / (float)s;
                const float *r0 = grid + (size_t)y0 * gw, *r1 = r0 + gw;
                for (int xx = 0; xx < w; xx++) {
                    int x0 = xx / s;
                    float tx = (float)(xx - x0 * s) / (float)s;
                    float v = (1 - ty) * ((1 - tx) * r0[x0] + tx * r0[x0 + 1]) +
                              ty * ((1 - tx) * r1[x0] + tx * r1[x0 + 1]);
                    x[((size_t)y * w + xx) * c + ch] += v;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (0.5f + 0.5f * x[i] / (float)nscales);
}

int oip_normalise(float *g, size_t n, cnnviz_oip_norm norm) {
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += g[i];
        sq += (double)g[i] * g[i];
    }
    if (sq == 0.0) return 0;
    double scale;
    switch (norm) {
    case CNNVIZ_OIP_NORM_L2: scale = sqrt(sq); break;
    case CNNVIZ_OIP_NORM_STD: {
        double mean = sum / (double)n, var = sq / (double)n - mean * mean;
        /* a constant gradient has no spread: fall back to its RMS */
        scale = var > 1e-12 * (sq / (double)n) ? sqrt(var) : sqrt(sq / (double)n);
        break;
    }
    case CNNVIZ_OIP_NORM_RMS:
    default: scale = sqrt(sq / (double)n); break;
    }
    float inv = (float)(1.0 / scale);
    for (size_t i = 0; i < n; i++) g[i] *= inv;
    return 1;
}

static float sign_of(float v) { return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : 0.0f; }

void oip_tv_descent(float *d, const float *x, int h, int w, int c, float weight) {
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int ch = 0; ch < c; ch++) {
                size_t i = ((size_t)y * w + xx) * c + ch;
                float v = x[i], s = 0.0f;
                if (y > 0) s += sign_of(v - x[i - (size_t)w * c]);
                if (y + 1 < h) s += sign_of(v - x[i + (size_t)w * c]);
                if (xx > 0) s += sign_of(v - x[i - c]);
                if (xx + 1 < w) s += sign_of(v - x[i + c]);
                d[i] -= weight * s;
            }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void oip_blur(float *x, int h, int w, int c, float sigma, float *tmp) {
    if (!(sigma > 0.0f)) return;
    int r = (int)ceilf(3.0f * sigma);
    if (r > 16) r = 16;
    float k[33], sum = 0.0f;
    for (int i = -r; i <= r; i++) sum += k[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
    /* rows into tmp, then columns back into x */
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int i = -r; i <= r; i++) acc += k[i + r] * x[((size_t)y * w + clampi(xx + i, 0, w - 1)) * c + ch];
                tmp[((size_t)y * w + xx) * c + ch] = acc;
            }
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int i = -r; i <= r; i++) acc += k[i + r] * tmp[((size_t)clampi(y + i, 0, h - 1) * w + xx) * c + ch];
                x[((size_t)y * w + xx) * c + ch] = acc;
            }
}

void oip_roll(float *dst, const float *src, int h, int w, int c, int dy, int dx) {
    dy %= h, dx %= w;
    if (dy < 0) dy += h;
    if (dx < 0) dx += w;
    for (int y = 0; y < h; y++) {
        int ty = (y + dy) % h;
        for (int xx = 0; xx < w; xx++) {
            int tx = (xx + dx) % w;
            memcpy(dst + ((size_t)ty * w + tx) * c, src + ((size_t)y * w + xx) * c, (size_t)c * sizeof *dst);
        }
    }
}

void oip_clip(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}
