/* One map of a Conv2D or Dense layer per sample (cnnviz_one_map in
 * layers.h): z = bias[m] + window . kernel[..., m] at each position, and
 * the input gradient of that. Samples are independent; each goes to one
 * thread, so the bits do not depend on the thread count. */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

int cnnviz_one_map_init(cnnviz_one_map *h, const cnnviz_layer *l) {
    memset(h, 0, sizeof *h);
    if (l->type != CNNVIZ_LAYER_CONV2D && l->type != CNNVIZ_LAYER_DENSE) return -1;
    const cnnviz_shape *in = &l->in_shape, *out = &l->out_shape;
    h->in_size = cnnviz_shape_size(in);
    h->channels = out->dim[out->rank - 1];
    h->positions = (int)(cnnviz_shape_size(out) / (size_t)h->channels);
    h->kernel = &l->param[0];
    h->bias = l->nparam > 1 ? l->param[1].data : NULL;
    if (l->type == CNNVIZ_LAYER_CONV2D) {
        h->H = in->dim[0], h->W = in->dim[1], h->C = in->dim[2];
        h->OH = out->dim[0], h->OW = out->dim[1];
        cnnviz_conv2d_window(l, &h->kh, &h->kw, &h->sh, &h->sw, &h->pad_top, &h->pad_left);
    } else {
        int in_dim = in->dim[in->rank - 1];
        h->C = in_dim, h->H = (int)(h->in_size / (size_t)in_dim), h->W = 1;
        h->OH = h->H, h->OW = 1, h->kh = h->kw = h->sh = h->sw = 1;
    }
    h->K = (size_t)h->kh * h->kw * h->C;
    if (l->type == CNNVIZ_LAYER_CONV2D && (size_t)h->kw * h->C % 16 == 0 &&
        cnnviz_windows_inside(h->H, h->kh, h->sh, h->OH, h->pad_top) &&
        cnnviz_windows_inside(h->W, h->kw, h->sw, h->OW, h->pad_left))
        h->vector = cnnviz_wide_vectors() ? 16 : cnnviz_avx2_vectors() ? 8 : 0;
    return h->kernel->size == h->K * (size_t)h->channels ? 0 : -1;
}

/* HWIO / (in, out) has map m at stride `channels` */
void cnnviz_one_map_gather(const cnnviz_one_map *h, float *kmap) {
    const float *w = h->kernel->data;
    for (int f = 0; f < h->channels; f++)
        for (size_t k = 0; k < h->K; k++) kmap[(size_t)f * h->K + k] = w[k * h->channels + f];
}

static int threads_for(int jobs) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1; /* called from one of cnnviz_oip_run's groups */
#endif
    int t = cnnviz_get_threads();
    return t < 1 ? 1 : t < jobs ? t : jobs > 0 ? jobs : 1;
}

/* The column range [k0, k1) of window row (oy, ox, ky) that lies inside the
 * input; -1 when the row is in the padding. Returns the input row. */
static int window_row(const cnnviz_one_map *h, int oy, int ox, int ky, int *k0, int *k1) {
    int iy = oy * h->sh - h->pad_top + ky;
    if (iy < 0 || iy >= h->H) return -1;
    int ix0 = ox * h->sw - h->pad_left;
    *k0 = ix0 < 0 ? -ix0 : 0;
    *k1 = ix0 + h->kw > h->W ? h->W - ix0 : h->kw;
    return iy;
}

/* z at position (oy, ox) when its window lies inside the input and its
 * rows are a multiple of 16 floats (the seed net's second and third conv
 * layers): one 16-float accumulator, one reduction; on AVX2 as two
 * 8-float halves summed the same way (the same bits). */
CNNVIZ_HOT
static void forward_vec(const cnnviz_one_map *h, const float *in, const float *k, float b, float *z) {
    size_t rowlen = (size_t)h->kw * h->C;
    int wide = h->vector == 16;
    for (int oy = 0; oy < h->OH; oy++)
        for (int ox = 0; ox < h->OW; ox++) {
            const float *x0 = in + ((size_t)(oy * h->sh) * h->W + ox * h->sw) * h->C;
            cnnviz_v16 v = {0};
            cnnviz_v8 lo = {0}, hi = {0};
            for (int ky = 0; ky < h->kh; ky++) {
                const float *xr = x0 + (size_t)ky * h->W * h->C, *kr = k + ky * rowlen;
                if (wide)
                    for (size_t i = 0; i < rowlen; i += 16)
                        v += *(const cnnviz_v16u *)(xr + i) * *(const cnnviz_v16u *)(kr + i);
                else
                    for (size_t i = 0; i < rowlen; i += 16) {
                        lo += *(const cnnviz_v8u *)(xr + i) * *(const cnnviz_v8u *)(kr + i);
                        hi += *(const cnnviz_v8u *)(xr + i + 8) * *(const cnnviz_v8u *)(kr + i + 8);
                    }
            }
            z[oy * h->OW + ox] = (wide ? cnnviz_hsum16(v) : cnnviz_hsum16_halves(lo, hi)) + b;
        }
}

/* z[p] for every position p of map m of one sample. */
static void forward_sample(const cnnviz_one_map *h, const float *kmap, const float *in, int m, float *z) {
    const float *k = kmap + (size_t)m * h->K;
    float b = h->bias ? h->bias[m] : 0.0f;
    if (h->vector) {
        forward_vec(h, in, k, b, z);
        return;
    }
    for (int oy = 0; oy < h->OH; oy++)
        for (int ox = 0; ox < h->OW; ox++) {
            float acc = 0.0f;
            for (int ky = 0; ky < h->kh; ky++) {
                int k0, k1, iy = window_row(h, oy, ox, ky, &k0, &k1);
                if (iy < 0 || k1 <= k0) continue;
                int ix = ox * h->sw - h->pad_left + k0;
                const float *xr = in + ((size_t)iy * h->W + ix) * h->C;
                const float *kr = k + ((size_t)ky * h->kw + k0) * h->C;
                size_t len = (size_t)(k1 - k0) * h->C;
                #pragma omp simd reduction(+ : acc)
                for (size_t i = 0; i < len; i++) acc += xr[i] * kr[i];
            }
            z[oy * h->OW + ox] = acc + b;
        }
}

/* din (one sample) = sum over positions of g[p] * map m's window weights */
static void backward_sample(const cnnviz_one_map *h, const float *kmap, const float *g, int m, float *din) {
    const float *k = kmap + (size_t)m * h->K;
    memset(din, 0, h->in_size * sizeof *din);
    for (int oy = 0; oy < h->OH; oy++)
        for (int ox = 0; ox < h->OW; ox++) {
            float gp = g[oy * h->OW + ox];
            if (gp == 0.0f) continue;
            for (int ky = 0; ky < h->kh; ky++) {
                int k0, k1, iy = window_row(h, oy, ox, ky, &k0, &k1);
                if (iy < 0 || k1 <= k0) continue;
                int ix = ox * h->sw - h->pad_left + k0;
                float *dr = din + ((size_t)iy * h->W + ix) * h->C;
                const float *kr = k + ((size_t)ky * h->kw + k0) * h->C;
                size_t len = (size_t)(k1 - k0) * h->C;
                #pragma omp simd
                for (size_t i = 0; i < len; i++) dr[i] += gp * kr[i];
            }
        }
}

void cnnviz_one_map_forward(const cnnviz_one_map *h, const float *kmap, const float *in, const int *maps, int B,
                            float *z) {
    #pragma omp parallel for schedule(static) num_threads(threads_for(B))
    for (int b = 0; b < B; b++)
        forward_sample(h, kmap, in + (size_t)b * h->in_size, maps[b], z + (size_t)b * h->positions);
}

void cnnviz_one_map_backward(const cnnviz_one_map *h, const float *kmap, const float *dz, const int *maps, int B,
                             float *din) {
    #pragma omp parallel for schedule(static) num_threads(threads_for(B))
    for (int b = 0; b < B; b++)
        backward_sample(h, kmap, dz + (size_t)b * h->positions, maps[b], din + (size_t)b * h->in_size);
}
