/* The input-gradient methods: saliency, SmoothGrad and Integrated
 * Gradients. SmoothGrad's noisy copies and the integration steps are rows
 * of one long list (image i's rows together) cut into engine batches, so
 * a batch mixes images and every row costs the same whatever the image
 * count; the sums per image are kept in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "explain-impl.h"

cnnviz_status explain_saliency(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                               cnnviz_error *err) {
    for (int i = 0; i < n; i += ex->batch) {
        int B = n - i < ex->batch ? n - i : ex->batch;
        cnnviz_status st = explain_gradient(ex, ex->ws_grad, x + (size_t)i * ex->in_size, B, cls + i, NULL,
                                            maps + (size_t)i * ex->in_size, err);
        if (st) return st;
    }
    return CNNVIZ_OK;
}

/* A list of `per` rows for each of n images, made by make_row and run
 * through the gradient workspace; sum[i] += the gradient of each of image
 * i's rows, and score[r] (when given) gets row r's score. */
typedef void (*make_row_fn)(void *ctx, long image, int k, float *row);

static cnnviz_status gradient_rows(cnnviz_explainer *ex, int n, int per, make_row_fn make, void *ctx,
                                   const int *cls, double *sum, cnnviz_error *err) {
    long total = (long)n * per;
    size_t in = ex->in_size;
    int *row_cls = malloc((size_t)ex->batch * sizeof *row_cls);
    if (!row_cls) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_status st = CNNVIZ_OK;
    for (long r0 = 0; r0 < total && !st; r0 += ex->batch) {
        int B = total - r0 < ex->batch ? (int)(total - r0) : ex->batch;
        for (int b = 0; b < B; b++) {
            long r = r0 + b;
            make(ctx, r / per, (int)(r % per), ex->rows + (size_t)b * in);
            row_cls[b] = cls[r / per];
        }
        st = explain_gradient(ex, ex->ws_grad, ex->rows, B, row_cls, NULL, ex->grad, err);
        for (int b = 0; b < B && !st; b++) {
            double *s = sum + (size_t)((r0 + b) / per) * in;
            const float *g = ex->grad + (size_t)b * in;
            for (size_t p = 0; p < in; p++) s[p] += g[p];
        }
    }
    free(row_cls);
    return st;
}

typedef struct {
    const cnnviz_explainer *ex;
    const float *x;
    cnnviz_rng rng;
    float *sigma; /* per image */
} smooth_ctx;

/* Rows are made in order from one generator, so the noise is the same
 * whatever the batch. */
static void smooth_row(void *vctx, long image, int k, float *row) {
    (void)k;
    smooth_ctx *c = vctx;
    size_t in = c->ex->in_size;
    const float *xi = c->x + (size_t)image * in;
    float s = c->sigma[image];
    for (size_t p = 0; p < in; p++) row[p] = xi[p] + (s > 0 ? s * cnnviz_rng_normal(&c->rng) : 0.0f);
}

cnnviz_status explain_smoothgrad(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                 cnnviz_error *err) {
    size_t in = ex->in_size;
    int S = ex->opt.samples;
    smooth_ctx c = {.ex = ex, .x = x};
    cnnviz_rng_seed(&c.rng, ex->opt.seed, 0);
    c.sigma = malloc((size_t)n * sizeof *c.sigma);
    double *sum = calloc((size_t)n * in, sizeof *sum);
    cnnviz_status st = CNNVIZ_OK;
    if (!c.sigma || !sum) st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    for (int i = 0; i < n && !st; i++) {
        const float *xi = x + (size_t)i * in;
        float lo = xi[0], hi = xi[0];
        for (size_t p = 1; p < in; p++) lo = xi[p] < lo ? xi[p] : lo, hi = xi[p] > hi ? xi[p] : hi;
        c.sigma[i] = ex->opt.noise * (hi - lo);
    }
    if (!st) st = gradient_rows(ex, n, S, smooth_row, &c, cls, sum, err);
    /* the sum of S equal floats is exact in double: with no noise this is the saliency */
    for (size_t k = 0; !st && k < (size_t)n * in; k++) maps[k] = (float)(sum[k] / S);
    free(c.sigma);
    free(sum);
    return st;
}

typedef struct {
    const cnnviz_explainer *ex;
    const float *x;
} path_ctx;

/* step k + 1 of m: x' + ((k+1)/m)(x - x') */
static void path_row(void *vctx, long image, int k, float *row) {
    path_ctx *c = vctx;
    size_t in = c->ex->in_size;
    const float *xi = c->x + (size_t)image * in;
    float base = c->ex->opt.baseline, t = (float)(k + 1) / (float)c->ex->opt.steps;
    for (size_t p = 0; p < in; p++) row[p] = base + t * (xi[p] - base);
}

/* |sum of attributions - (score(x) - score(x'))| per image */
static cnnviz_status completeness_errors(cnnviz_explainer *ex, const float *x, int n, const int *cls,
                                         const float *maps, float *out, cnnviz_error *err) {
    size_t in = ex->in_size;
    float *score = malloc((size_t)n * sizeof *score);
    if (!score) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_status st = cnnviz_explain_scores(ex, x, n, cls, score, err);
    for (size_t p = 0; p < in; p++) ex->rows[p] = ex->opt.baseline;
    if (!st) st = explain_forward(ex, ex->rows, 1, err);
    for (int i = 0; i < n && !st; i++) {
        double sum = 0;
        for (size_t p = 0; p < in; p++) sum += maps[(size_t)i * in + p];
        out[i] = (float)fabs(sum - ((double)score[i] - ex->logits[cls[i]]));
    }
    free(score);
    return st;
}

cnnviz_status explain_integrated(cnnviz_explainer *ex, const float *x, int n, const int *cls, float *maps,
                                 float *completeness, cnnviz_error *err) {
    size_t in = ex->in_size;
    int m = ex->opt.steps;
    path_ctx c = {ex, x};
    double *sum = calloc((size_t)n * in, sizeof *sum);
    if (!sum) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    cnnviz_status st = gradient_rows(ex, n, m, path_row, &c, cls, sum, err);
    for (size_t k = 0; !st && k < (size_t)n * in; k++)
        maps[k] = (float)(((double)x[k] - ex->opt.baseline) * (sum[k] / m));
    free(sum);
    if (!st && completeness) st = completeness_errors(ex, x, n, cls, maps, completeness, err);
    return st;
}
