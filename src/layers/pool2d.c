/* MaxPooling2D and AveragePooling2D over NHWC, TF's valid/same windows.
 * With same padding TF's max pool ignores the padded cells and its average
 * divides by the number of real pixels in the window, not the window size.
 *
 * Max backward finds the window's maximum again from the input instead of
 * keeping an argmax: it is cheap, and a workspace used for gradient ascent
 * runs inference forwards whose state nothing would have kept. Ties go to
 * the first maximum in row-major window order. */
#include <float.h>
#include <string.h>

#include "layers.h"

typedef struct {
    cnnviz_layer base;
    int H, W, C, OH, OW;
    int ph, pw, sh, sw, pad_top, pad_left;
    int is_max;
} pool2d_layer;

/* the window of output (oy, ox) clipped to the input: rows [y0,y1), cols [x0,x1) */
static void pool_window(const pool2d_layer *q, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
    int ys = oy * q->sh - q->pad_top, xs = ox * q->sw - q->pad_left;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + q->ph > q->H ? q->H : ys + q->ph;
    *x1 = xs + q->pw > q->W ? q->W : xs + q->pw;
}

static void pool_forward_sample(const pool2d_layer *q, const float *x, float *y) {
    int C = q->C;
    for (int oy = 0; oy < q->OH; oy++)
        for (int ox = 0; ox < q->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(q, oy, ox, &y0, &y1, &x0, &x1);
            float *o = y + ((size_t)oy * q->OW + ox) * C;
            if (q->is_max) {
                memcpy(o, x + ((size_t)y0 * q->W + x0) * C, (size_t)C * sizeof *o);
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float *v = x + ((size_t)iy * q->W + ix) * C;
                        #pragma omp simd
                        for (int c = 0; c < C; c++) o[c] = v[c] > o[c] ? v[c] : o[c];
                    }
            } else {
                memset(o, 0, (size_t)C * sizeof *o);
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const float *v = x + ((size_t)iy * q->W + ix) * C;
                        #pragma omp simd
                        for (int c = 0; c < C; c++) o[c] += v[c];
                    }
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                #pragma omp simd
                for (int c = 0; c < C; c++) o[c] *= inv;
            }
        }
}

static void pool_backward_sample(const pool2d_layer *q, const float *x, const float *y, const float *dy,
                                 float *dx) {
    int C = q->C;
    memset(dx, 0, (size_t)q->H * q->W * C * sizeof *dx);
    for (int oy = 0; oy < q->OH; oy++)
        for (int ox = 0; ox < q->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(q, oy, ox, &y0, &y1, &x0, &x1);
            size_t o = ((size_t)oy * q->OW + ox) * C;
            if (q->is_max) {
                for (int c = 0; c < C; c++) {
                    /* the first input equal to the output is the one forward picked */
                    float m = y[o + c];
                    size_t at = ((size_t)y0 * q->W + x0) * C + c;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            size_t i = ((size_t)iy * q->W + ix) * C + c;
                            if (x[i] == m) {
                                at = i;
                                goto found;
                            }
                        }
                found:
                    dx[at] += dy[o + c];
                }
            } else {
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float *d = dx + ((size_t)iy * q->W + ix) * C;
                        #pragma omp simd
                        for (int c = 0; c < C; c++) d[c] += dy[o + c] * inv;
                    }
            }
        }
}

static void pool2d_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    const pool2d_layer *q = (const pool2d_layer *)l;
    size_t isz = (size_t)q->H * q->W * q->C, osz = (size_t)q->OH * q->OW * q->C;
    #pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) pool_forward_sample(q, in + b * isz, out + b * osz);
}

static void pool2d_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                            float *din, int B, cnnviz_pass *p) {
    (void)p;
    const pool2d_layer *q = (const pool2d_layer *)l;
    size_t isz = (size_t)q->H * q->W * q->C, osz = (size_t)q->OH * q->OW * q->C;
    #pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) pool_backward_sample(q, in + b * isz, out + b * osz, dout + b * osz, din + b * isz);
}

static const cnnviz_layer_ops pool2d_ops = {
    .forward = pool2d_forward,
    .backward = pool2d_backward,
};

/* MaxPooling2D and AveragePooling2D share this; spec->type picks which. */
cnnviz_layer *cnnviz_pool2d_create(const cnnviz_layer_spec *spec, const cnnviz_shape *in, cnnviz_error *err) {
    char buf[64];
    cnnviz_shape_format(in, buf, sizeof buf);
    if (in->rank != 3) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "pooling needs an (h, w, c) input, not %s", buf);
        return NULL;
    }
    if (spec->pool[0] <= 0 || spec->pool[1] <= 0 || spec->strides[0] < 0 || spec->strides[1] < 0) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "pooling needs a positive pool size and strides");
        return NULL;
    }
    pool2d_layer *q = cnnviz_layer_alloc(sizeof *q, &pool2d_ops, err);
    if (!q) return NULL;
    q->is_max = spec->type == CNNVIZ_LAYER_MAXPOOL2D;
    q->H = in->dim[0], q->W = in->dim[1], q->C = in->dim[2];
    q->ph = spec->pool[0], q->pw = spec->pool[1];
    /* Keras: strides=None means the pool size */
    q->sh = spec->strides[0] ? spec->strides[0] : q->ph;
    q->sw = spec->strides[1] ? spec->strides[1] : q->pw;
    cnnviz_window_geometry(q->H, q->ph, q->sh, spec->padding, &q->OH, &q->pad_top);
    cnnviz_window_geometry(q->W, q->pw, q->sw, spec->padding, &q->OW, &q->pad_left);
    q->base.out_shape = cnnviz_shape3(q->OH, q->OW, q->C);
    return &q->base;
}
