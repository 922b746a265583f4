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
    int lanes;  /* max pooling by the *_v16 (AVX-512) or *_v8 (AVX2) kernels: 16 or 8; 0: neither */
    int two_by_two; /* max pooling 2x2/2 with every window whole: maxpool_backward_2x2 */
} pool2d_layer;

/* the window of output (oy, ox) clipped to the input: rows [y0,y1), cols [x0,x1) */
static void pool_window(const pool2d_layer *q, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
    int ys = oy * q->sh - q->pad_top, xs = ox * q->sw - q->pad_left;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + q->ph > q->H ? q->H : ys + q->ph;
    *x1 = xs + q->pw > q->W ? q->W : xs + q->pw;
}

CNNVIZ_HOT
static void pool_forward_sample(const pool2d_layer *q, const float *restrict x, float *restrict y) {
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

/* channels handled at once in max backward (a stack buffer of pending gradients) */
#define MAX_BLOCK 64

CNNVIZ_HOT
static void pool_backward_sample(const pool2d_layer *q, const float *restrict x, const float *restrict y,
                                 const float *restrict dy, float *restrict dx, int relu_input) {
    int C = q->C;
    memset(dx, 0, (size_t)q->H * q->W * C * sizeof *dx);
    for (int oy = 0; oy < q->OH; oy++)
        for (int ox = 0; ox < q->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(q, oy, ox, &y0, &y1, &x0, &x1);
            size_t o = ((size_t)oy * q->OW + ox) * C;
            if (q->is_max) {
                /* the first input equal to the output, in row-major window
                 * order, is the one forward picked: it takes the gradient
                 * and later ties get nothing */
                for (int c0 = 0; c0 < C; c0 += MAX_BLOCK) {
                    int nc = C - c0 < MAX_BLOCK ? C - c0 : MAX_BLOCK;
                    float g[MAX_BLOCK];
                    const float *m = y + o + c0;
                    memcpy(g, dy + o + c0, (size_t)nc * sizeof *g);
                    if (relu_input) /* the ReLU below passes nothing where its output is 0 */
                        for (int c = 0; c < nc; c++) g[c] = m[c] > 0.0f ? g[c] : 0.0f;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            size_t i = ((size_t)iy * q->W + ix) * C + c0;
                            const float *restrict v = x + i;
                            float *restrict d = dx + i;
                            #pragma omp simd
                            for (int c = 0; c < nc; c++) {
                                int hit = v[c] == m[c];
                                d[c] += hit ? g[c] : 0.0f;
                                g[c] = hit ? 0.0f : g[c];
                            }
                        }
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

/* Windows that tile the input (stride = pool) cover each input pixel at
 * most once, so backward writes instead of accumulating and zeroes only
 * what no window covers: the rows and columns a floor leaves out. */
static int tiles(const pool2d_layer *q) { return q->sh == q->ph && q->sw == q->pw; }

#define PK_V cnnviz_v16
#define PK_VU cnnviz_v16u
#define PK_VI cnnviz_v16i
#define PK_L 16
#define PK_NAME(x) x##_v16
#include "pool2d-max-kernel.h"

#define PK_V cnnviz_v8
#define PK_VU cnnviz_v8u
#define PK_VI cnnviz_v8i
#define PK_L 8
#define PK_NAME(x) x##_v8
#include "pool2d-max-kernel.h"

/* Max backward for the common 2x2 pool with stride 2 and no padding, in
 * plain loops over the channels that vectorise at any width (the path of
 * CPUs without AVX2, and of channel counts that are not a multiple of 8): each
 * input written once, the first maximum of the window taking the
 * gradient. The rows and columns the floor leaves out get zeros. */
CNNVIZ_HOT
static void maxpool_backward_2x2(const pool2d_layer *q, const float *restrict x, const float *restrict y,
                                 const float *restrict dy, float *restrict dx, int relu_input) {
    int C = q->C, W = q->W;
    size_t row = (size_t)W * C;
    if (2 * q->OH < q->H) memset(dx + (size_t)(2 * q->OH) * row, 0, (size_t)(q->H - 2 * q->OH) * row * sizeof *dx);
    for (int oy = 0; oy < q->OH; oy++) {
        if (2 * q->OW < W)
            for (int r = 2 * oy; r < 2 * oy + 2; r++)
                memset(dx + (size_t)r * row + (size_t)(2 * q->OW) * C, 0, (size_t)(W - 2 * q->OW) * C * sizeof *dx);
        for (int ox = 0; ox < q->OW; ox++) {
            size_t i = (size_t)(2 * oy) * row + (size_t)(2 * ox) * C, o = ((size_t)oy * q->OW + ox) * C;
            const float *restrict a = x + i, *restrict b = a + C, *restrict cc = a + row, *restrict d = cc + C;
            float *restrict da = dx + i, *restrict db = da + C, *restrict dc = da + row, *restrict dd = dc + C;
            const float *restrict m = y + o, *restrict g = dy + o;
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float gv = relu_input && !(m[c] > 0.0f) ? 0.0f : g[c];
                int h0 = a[c] == m[c], h1 = !h0 && b[c] == m[c], h2 = !h0 && !h1 && cc[c] == m[c];
                int h3 = !h0 && !h1 && !h2 && d[c] == m[c];
                da[c] = h0 ? gv : 0.0f;
                db[c] = h1 ? gv : 0.0f;
                dc[c] = h2 ? gv : 0.0f;
                dd[c] = h3 ? gv : 0.0f;
            }
        }
    }
}

static void pool2d_forward(const cnnviz_layer *l, const float *in, float *out, int B, cnnviz_pass *p) {
    (void)p;
    const pool2d_layer *q = (const pool2d_layer *)l;
    size_t isz = (size_t)q->H * q->W * q->C, osz = (size_t)q->OH * q->OW * q->C;
    #pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        if (q->lanes == 16)
            maxpool_forward_v16(q, in + b * isz, out + b * osz);
        else if (q->lanes == 8)
            maxpool_forward_v8(q, in + b * isz, out + b * osz);
        else
            pool_forward_sample(q, in + b * isz, out + b * osz);
    }
}

static void pool2d_backward(const cnnviz_layer *l, const float *in, const float *out, const float *dout,
                            float *din, int B, cnnviz_pass *p) {
    const pool2d_layer *q = (const pool2d_layer *)l;
    size_t isz = (size_t)q->H * q->W * q->C, osz = (size_t)q->OH * q->OW * q->C;
    int relu = q->is_max && p->relu_input;
    #pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        if (q->lanes == 16)
            maxpool_backward_v16(q, in + b * isz, out + b * osz, dout + b * osz, din + b * isz, relu);
        else if (q->lanes == 8)
            maxpool_backward_v8(q, in + b * isz, out + b * osz, dout + b * osz, din + b * isz, relu);
        else if (q->two_by_two)
            maxpool_backward_2x2(q, in + b * isz, out + b * osz, dout + b * osz, din + b * isz, relu);
        else
            pool_backward_sample(q, in + b * isz, out + b * osz, dout + b * osz, din + b * isz, relu);
    }
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
    /* the window geometry is int arithmetic on these */
    if (!cnnviz_int_product(3, in->dim) || !cnnviz_int_product(2, spec->pool) ||
        spec->strides[0] > CNNVIZ_MAX_DIM || spec->strides[1] > CNNVIZ_MAX_DIM) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "pooling window %dx%d on input %s is too large", spec->pool[0],
                         spec->pool[1], buf);
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
    if (q->is_max && cnnviz_wide_vectors() && q->C % 16 == 0)
        q->lanes = 16;
    else if (q->is_max && cnnviz_avx2_vectors() && q->C % 8 == 0)
        q->lanes = 8;
    q->two_by_two = q->is_max && q->ph == 2 && q->pw == 2 && q->sh == 2 && q->sw == 2 &&
                    cnnviz_windows_inside(q->H, 2, 2, q->OH, q->pad_top) &&
                    cnnviz_windows_inside(q->W, 2, 2, q->OW, q->pad_left);
    q->base.out_shape = cnnviz_shape3(q->OH, q->OW, q->C);
    return &q->base;
}

void cnnviz_pool_input_read(const cnnviz_layer *l, int *rows, int *cols) {
    const pool2d_layer *q = (const pool2d_layer *)l;
    int y0, y1, x0, x1;
    pool_window(q, q->OH - 1, q->OW - 1, &y0, &y1, &x0, &x1);
    *rows = y1, *cols = x1;
}
