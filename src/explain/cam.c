/* The maps at a layer's resolution (Grad-CAM, Grad-CAM++, Score-CAM) and
 * occlusion's map over patch positions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "explain-impl.h"

/* map = ReLU(sum_k w_k A^k) over P positions of K maps (A: (P, K)) */
static void weighted_maps(const float *A, const double *w, int P, int K, float *map) {
    for (int p = 0; p < P; p++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += w[k] * A[(size_t)p * K + k];
        map[p] = s > 0 ? (float)s : 0.0f;
    }
}

/* Grad-CAM: w_k = mean over positions of g. Grad-CAM++ (the weights for an
 * exponential score, as tf-keras-vis computes them from g):
 * alpha_ij = g^2 / (2 g^2 + (sum_ab A_ab) g^3), 0 where that is 0, and
 * w_k = sum_ij alpha_ij ReLU(g_ij). */
static void cam_weights(const float *A, const float *g, int P, int K, int plus_plus, double *w) {
    for (int k = 0; k < K; k++) {
        double gsum = 0, asum = 0, wpp = 0;
        for (int p = 0; p < P; p++) gsum += g[(size_t)p * K + k], asum += A[(size_t)p * K + k];
        for (int p = 0; plus_plus && p < P; p++) {
            double gv = g[(size_t)p * K + k], g2 = gv * gv, den = 2 * g2 + asum * g2 * gv;
            if (den != 0 && gv > 0) wpp += g2 / den * gv;
        }
        w[k] = plus_plus ? wpp : gsum / P;
    }
}

cnnviz_status explain_gradcam(cnnviz_explainer *ex, int plus_plus, const float *x, int n, const int *cls,
                              float *maps, cnnviz_error *err) {
    int P = ex->cam_h * ex->cam_w, K = ex->cam_k;
    double *w = malloc((size_t)K * sizeof *w);
    if (!w) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_status st = CNNVIZ_OK;
    for (int i = 0; i < n && !st; i += ex->batch) {
        int B = n - i < ex->batch ? n - i : ex->batch;
        st = explain_gradient(ex, ex->ws_cam, x + (size_t)i * ex->in_size, B, cls + i, NULL, ex->grad, err);
        const float *A = st ? NULL : cnnviz_layer_output(ex->ws_cam, ex->cam_layer, err);
        if (!st && !A) st = err ? err->code : CNNVIZ_ERR_INVALID;
        for (int b = 0; b < B && !st; b++) {
            size_t off = (size_t)b * P * K;
            cam_weights(A + off, ex->grad + off, P, K, plus_plus, w);
            weighted_maps(A + off, w, P, K, maps + (size_t)(i + b) * P);
        }
    }
    free(w);
    return st;
}

/* tf.image.resize's bilinear weights with half-pixel centres, from n to N */
typedef struct {
    int lo, hi;
    float t;
} lerp;

static void resize_weights(int n, int N, lerp *out) {
    float scale = (float)n / (float)N;
    for (int i = 0; i < N; i++) {
        float s = ((float)i + 0.5f) * scale - 0.5f, f = floorf(s);
        out[i].lo = f > 0 ? (int)f : 0;
        out[i].hi = (int)ceilf(s) < n - 1 ? (int)ceilf(s) : n - 1;
        if (out[i].hi < 0) out[i].hi = 0;
        out[i].t = s - f;
    }
}

int cnnviz_explain_resize(const float *map, int h, int w, int H, int W, float *out) {
    lerp *ly = malloc((size_t)(H + W) * sizeof *ly), *lx = ly ? ly + H : NULL;
    if (!ly) return -1;
    resize_weights(h, H, ly);
    resize_weights(w, W, lx);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float *r0 = map + (size_t)ly[y].lo * w, *r1 = map + (size_t)ly[y].hi * w;
            float top = r0[lx[x].lo] + (r0[lx[x].hi] - r0[lx[x].lo]) * lx[x].t;
            float bottom = r1[lx[x].lo] + (r1[lx[x].hi] - r1[lx[x].lo]) * lx[x].t;
            out[(size_t)y * W + x] = top + (bottom - top) * ly[y].t;
        }
    free(ly);
    return 0;
}

/* Map k of A (h, w, K) resized to (H, W) and scaled to [0, 1] by its min
 * and max; 0 when the map is constant (skipped). */
static int upsampled_mask(const cnnviz_explainer *ex, const float *A, int k, const lerp *ly, const lerp *lx,
                          float *mask) {
    int h = ex->cam_h, w = ex->cam_w, K = ex->cam_k;
    for (int y = 0; y < ex->H; y++) {
        const float *r0 = A + (size_t)ly[y].lo * w * K, *r1 = A + (size_t)ly[y].hi * w * K;
        for (int x = 0; x < ex->W; x++) {
            float tl = r0[(size_t)lx[x].lo * K + k], tr = r0[(size_t)lx[x].hi * K + k];
            float bl = r1[(size_t)lx[x].lo * K + k], br = r1[(size_t)lx[x].hi * K + k];
            float top = tl + (tr - tl) * lx[x].t, bottom = bl + (br - bl) * lx[x].t;
            mask[(size_t)y * ex->W + x] = top + (bottom - top) * ly[y].t;
        }
    }
    (void)h;
    size_t P = (size_t)ex->H * ex->W;
    float lo = mask[0], hi = mask[0];
    for (size_t p = 1; p < P; p++) lo = mask[p] < lo ? mask[p] : lo, hi = mask[p] > hi ? mask[p] : hi;
    if (!(hi > lo)) return 0;
    for (size_t p = 0; p < P; p++) mask[p] = (mask[p] - lo) / (hi - lo);
    return 1;
}

/* Queued rows for the forward workspace: each row's image and what it
 * adds to, flushed as one engine batch when full. */
typedef struct {
    int count;
    int *image, *slot;
} row_queue;

/* Score-CAM for one block of images whose CAM-layer maps are in A. */
static cnnviz_status scorecam_block(cnnviz_explainer *ex, const float *x, int i0, int B, const int *cls,
                                    const float *A, float *maps, float *mask, row_queue *q, double *s,
                                    cnnviz_error *err) {
    int P = ex->cam_h * ex->cam_w, K = ex->cam_k, C = ex->C;
    size_t in = ex->in_size, HW = (size_t)ex->H * ex->W;
    lerp *ly = malloc((size_t)(ex->H + ex->W) * sizeof *ly), *lx = ly ? ly + ex->H : NULL;
    if (!ly) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    resize_weights(ex->cam_h, ex->H, ly);
    resize_weights(ex->cam_w, ex->W, lx);
    memset(s, 0, (size_t)B * K * sizeof *s);
    cnnviz_status st = CNNVIZ_OK;
    for (int b = 0; b < B && !st; b++) {
        for (int k = 0; k < K && !st; k++) {
            if (!upsampled_mask(ex, A + (size_t)b * P * K, k, ly, lx, mask)) continue;
            float *row = ex->rows + (size_t)q->count * in;
            const float *xi = x + (size_t)(i0 + b) * in;
            for (size_t p = 0; p < HW; p++)
                for (int c = 0; c < C; c++) row[p * C + c] = xi[p * C + c] * mask[p];
            q->image[q->count] = b, q->slot[q->count] = k;
            int last = b == B - 1 && k == K - 1;
            if (++q->count < ex->batch && !last) continue;
            st = explain_forward(ex, ex->rows, q->count, err);
            for (int r = 0; r < q->count && !st; r++)
                s[(size_t)q->image[r] * K + q->slot[r]] =
                    explain_probability(ex, ex->logits + (size_t)r * ex->nclasses, cls[i0 + q->image[r]]);
            q->count = 0;
        }
    }
    if (!st && q->count) { /* the block's last maps were constant */
        st = explain_forward(ex, ex->rows, q->count, err);
        for (int r = 0; r < q->count && !st; r++)
            s[(size_t)q->image[r] * K + q->slot[r]] =
                explain_probability(ex, ex->logits + (size_t)r * ex->nclasses, cls[i0 + q->image[r]]);
        q->count = 0;
    }
    for (int b = 0; b < B && !st; b++)
        weighted_maps(A + (size_t)b * P * K, s + (size_t)b * K, P, K, maps + (size_t)(i0 + b) * P);
    free(ly);
    return st;
}

cnnviz_status explain_scorecam(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                               cnnviz_error *err) {
    int P = ex->cam_h * ex->cam_w, K = ex->cam_k;
    /* a block of images small enough that its masked inputs fill a few batches */
    int block = ex->batch / K > 0 ? ex->batch / K : 1;
    float *A = malloc((size_t)block * P * K * sizeof *A);
    float *mask = malloc((size_t)ex->H * ex->W * sizeof *mask);
    double *s = malloc((size_t)block * K * sizeof *s);
    row_queue q = {0, malloc((size_t)ex->batch * sizeof(int)), malloc((size_t)ex->batch * sizeof(int))};
    cnnviz_status st = CNNVIZ_OK;
    if (!A || !mask || !s || !q.image || !q.slot) st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    for (int i = 0; i < n && !st; i += block) {
        int B = n - i < block ? n - i : block;
        const float *a = NULL;
        if (!cnnviz_forward(ex->ws_cam, x + (size_t)i * ex->in_size, B, err) ||
            !(a = cnnviz_layer_output(ex->ws_cam, ex->cam_layer, err)))
            st = err ? err->code : CNNVIZ_ERR_INVALID;
        if (st) break;
        memcpy(A, a, (size_t)B * P * K * sizeof *A);
        st = scorecam_block(ex, x, i, B, cls, A, maps, mask, &q, s, err);
    }
    free(A);
    free(mask);
    free(s);
    free(q.image);
    free(q.slot);
    return st;
}

/* Occlusion: rows are (image, patch position) in order; value =
 * score(x) - score(x with the patch set to the baseline). */
cnnviz_status explain_occlusion(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                cnnviz_error *err) {
    int G = ex->grid_h * ex->grid_w, Pt = ex->opt.patch, S = ex->opt.stride, C = ex->C;
    size_t in = ex->in_size;
    float *score = malloc((size_t)n * sizeof *score);
    if (!score) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_status st = cnnviz_explain_scores(ex, x, n, cls, score, err);
    long total = (long)n * G;
    for (long r0 = 0; r0 < total && !st; r0 += ex->batch) {
        int B = total - r0 < ex->batch ? (int)(total - r0) : ex->batch;
        for (int b = 0; b < B; b++) {
            long r = r0 + b, i = r / G;
            int g = (int)(r % G), oy = g / ex->grid_w * S, ox = g % ex->grid_w * S;
            float *row = ex->rows + (size_t)b * in;
            memcpy(row, x + (size_t)i * in, in * sizeof *row);
            for (int y = oy; y < oy + Pt; y++)
                for (int xx = ox; xx < ox + Pt; xx++)
                    for (int c = 0; c < C; c++) row[((size_t)y * ex->W + xx) * C + c] = ex->opt.baseline;
        }
        st = explain_forward(ex, ex->rows, B, err);
        for (int b = 0; b < B && !st; b++) {
            long r = r0 + b, i = r / G;
            maps[r] = score[i] - ex->logits[(size_t)b * ex->nclasses + cls[i]];
        }
    }
    free(score);
    return st;
}
