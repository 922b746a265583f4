// labels: unit
/* Layer math: forward against naive reference loops and hand-computed
 * cases, backward (input and weight gradients) against central finite
 * differences, for every layer type and option. Each layer is run inside a
 * one-layer model so the driver, workspace sizing and params are exercised. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/model.h"
#include "layers/layers.h"
#include "model-impl.h"
#include "testutil.h"

/* --- a one-layer model and its workspace ---------------------------------- */

typedef struct {
    cnnviz_model *m;
    /* ws[training][input_grad]: the rig's plans (weight gradients, every
     * output kept), made when first used; ws: the latest forward's */
    cnnviz_workspace *plans[2][2], *ws;
    int B;
    size_t in_n, out_n; /* per sample */
    float *x;           /* (B, in) */
    float *wr;          /* loss weights: L = sum(wr * out) */
    cnnviz_rng rng;
    cnnviz_rng drop_rng;
} rig;

static void rig_make(rig *r, cnnviz_shape in, const cnnviz_layer_spec *spec, int B, uint64_t seed) {
    cnnviz_error err;
    memset(r, 0, sizeof *r);
    r->B = B;
    r->m = cnnviz_model_new(&in);
    ck_assert_ptr_nonnull(r->m);
    ck_assert_int_eq(cnnviz_model_add(r->m, spec, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(r->m, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(r->m, &err), CNNVIZ_OK);
    cnnviz_rng_seed(&r->rng, seed, 7);
    /* weights in [-0.5, 0.5) so outputs stay O(1); BN variances kept positive */
    cnnviz_layer *l = r->m->layers[0];
    for (int k = 0; k < l->nparam; k++)
        for (size_t j = 0; j < l->param[k].size; j++) {
            float v = cnnviz_rng_uniform(&r->rng) - 0.5f;
            if (strcmp(l->param[k].name, "moving_variance") == 0) v = 0.5f + v;
            l->param[k].data[j] = v;
        }
    cnnviz_rng_seed(&r->drop_rng, seed, 9);
    r->in_n = cnnviz_shape_size(&in);
    r->out_n = cnnviz_shape_size(&l->out_shape);
    r->x = malloc((size_t)B * r->in_n * sizeof(float));
    r->wr = malloc((size_t)B * r->out_n * sizeof(float));
    for (size_t i = 0; i < (size_t)B * r->in_n; i++) r->x[i] = 2.0f * cnnviz_rng_uniform(&r->rng) - 1.0f;
    for (size_t i = 0; i < (size_t)B * r->out_n; i++) r->wr[i] = 2.0f * cnnviz_rng_uniform(&r->rng) - 1.0f;
}

/* A forward of the rig's input through a plan with weight gradients and,
 * with input_grad, the input's. */
static const float *rig_forward(rig *r, int training, int input_grad) {
    cnnviz_workspace **ws = &r->plans[training != 0][input_grad != 0];
    if (!*ws) {
        cnnviz_workspace_options o = cnnviz_workspace_options_init(r->B);
        o.training = training != 0, o.input_grad = input_grad != 0, o.weight_grads = 1;
        cnnviz_error err;
        *ws = cnnviz_workspace_new(r->m, &o, &err);
        ck_assert_msg(*ws != NULL, "rig: %s", err.msg);
        cnnviz_workspace_set_rng(*ws, &r->drop_rng);
    }
    r->ws = *ws;
    const float *y = cnnviz_forward(r->ws, r->x, r->B, NULL);
    ck_assert_ptr_nonnull(y);
    return y;
}

/* The backward of the latest rig_forward. */
static void rig_backward(rig *r, const float *dout, float *dx) {
    cnnviz_error err;
    ck_assert_msg(cnnviz_backward(r->ws, dout, dx, &err) == CNNVIZ_OK, "rig: %s", err.msg);
}

static void rig_free(rig *r) {
    for (int t = 0; t < 2; t++)
        for (int g = 0; g < 2; g++) cnnviz_workspace_free(r->plans[t][g]);
    cnnviz_model_free(r->m);
    free(r->x);
    free(r->wr);
}

/* The inputs as distinct values k*0.05 in random order: no two within a
 * finite-difference step, so a max pool never switches its choice. */
static void rig_distinct_inputs(rig *r) {
    size_t n = (size_t)r->B * r->in_n;
    int *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = (int)i;
    cnnviz_rng_shuffle(&r->rng, idx, (int)n);
    for (size_t i = 0; i < n; i++) r->x[i] = ((float)idx[i] - (float)n / 2) * 0.05f;
    free(idx);
}

static double rig_loss(rig *r, int training) {
    /* a dropout layer draws a new mask each training pass: replay the same one */
    cnnviz_rng saved = r->drop_rng;
    const float *y = rig_forward(r, training, 1);
    r->drop_rng = saved;
    double s = 0.0;
    for (size_t i = 0; i < (size_t)r->B * r->out_n; i++) s += (double)r->wr[i] * y[i];
    return s;
}

/* Compare analytic gradients with central differences at up to max_checks
 * entries of v (every entry when small). Returns the number of entries off
 * by more than rtol*max(|g|,|fd|) + atol*max|fd|. */
static int fd_compare(rig *r, float *v, size_t n, const float *analytic, int training, int max_checks,
                      float eps, double rtol, double atol, const char *what) {
    size_t step = n <= (size_t)max_checks ? 1 : n / (size_t)max_checks;
    double *fd = malloc(n * sizeof *fd);
    double fd_max = 0.0;
    for (size_t i = 0; i < n; i += step) {
        float keep = v[i];
        v[i] = keep + eps;
        double lp = rig_loss(r, training);
        v[i] = keep - eps;
        double lm = rig_loss(r, training);
        v[i] = keep;
        fd[i] = (lp - lm) / (2.0 * eps);
        if (fabs(fd[i]) > fd_max) fd_max = fabs(fd[i]);
    }
    int bad = 0;
    for (size_t i = 0; i < n; i += step) {
        double a = analytic[i], d = fabs(a - fd[i]);
        double tol = rtol * fmax(fabs(a), fabs(fd[i])) + atol * fd_max;
        if (!(d <= tol)) {
            if (bad < 5)
                fprintf(stderr, "%s[%zu]: analytic %.6g finite difference %.6g\n", what, i, a, fd[i]);
            bad++;
        }
    }
    free(fd);
    return bad;
}

/* Run forward + backward with L = sum(wr*out) and check d/dinput and every
 * trainable parameter's gradient. */
static void check_gradients(rig *r, int training) {
    cnnviz_layer *l = r->m->layers[0];
    float *dx = malloc((size_t)r->B * r->in_n * sizeof(float));
    cnnviz_model_zero_grads(r->m);
    rig_loss(r, training);
    rig_backward(r, r->wr, dx);
    /* the analytic gradients must be of the same forward the FD replays */
    float *gcopy = malloc((r->m->num_params + 1) * sizeof(float));
    memcpy(gcopy, r->m->grads, r->m->num_params * sizeof(float));
    int bad = fd_compare(r, r->x, (size_t)r->B * r->in_n, dx, training, 300, 1e-2f, 2e-2, 2e-3, "dinput");
    for (int k = 0; k < l->nparam; k++) {
        if (!l->param[k].trainable) continue;
        bad += fd_compare(r, l->param[k].data, l->param[k].size, gcopy + l->param[k].offset, training, 200, 1e-2f,
                          2e-2, 2e-3, l->param[k].name);
    }
    if (bad) fprintf(stderr, "  ^ %s, activation %s\n", l->class_name, cnnviz_activation_name(l->activation));
    ck_assert_msg(bad == 0, "%s: %d gradient entries disagree with finite differences", l->class_name,
                  bad);
    /* and the analytic gradient is not trivially zero */
    double s = 0.0;
    for (size_t i = 0; i < (size_t)r->B * r->in_n; i++) s += fabs(dx[i]);
    ck_assert_msg(s > 0.0, "input gradient is all zero");
    free(gcopy);
    free(dx);
}

static cnnviz_layer_spec conv_spec(int filters, int k, int stride, cnnviz_padding pad, cnnviz_activation act) {
    cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = filters;
    s.kernel[0] = s.kernel[1] = k;
    s.strides[0] = s.strides[1] = stride;
    s.padding = pad;
    s.activation = act;
    return s;
}

static cnnviz_layer_spec pool_spec(int is_max, int k, int stride, cnnviz_padding pad) {
    cnnviz_layer_spec s = cnnviz_layer_spec_init(is_max ? CNNVIZ_LAYER_MAXPOOL2D : CNNVIZ_LAYER_AVGPOOL2D);
    s.pool[0] = s.pool[1] = k;
    s.strides[0] = s.strides[1] = stride;
    s.padding = pad;
    return s;
}

/* --- naive references (double, written straight from TF's definitions) ---- */

static int tf_out(int in, int k, int s, int same) { return same ? (in + s - 1) / s : (in - k) / s + 1; }
static int tf_pad_top(int in, int k, int s, int same) {
    if (!same) return 0;
    int o = tf_out(in, k, s, same), t = (o - 1) * s + k - in;
    return t > 0 ? t / 2 : 0;
}

static void naive_conv(const float *x, int B, int H, int W, int C, const float *w, const float *bias, int kh, int kw,
                       int F, int s, int same, float *y) {
    int OH = tf_out(H, kh, s, same), OW = tf_out(W, kw, s, same);
    int pt = tf_pad_top(H, kh, s, same), pl = tf_pad_top(W, kw, s, same);
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int f = 0; f < F; f++) {
                    double acc = bias ? bias[f] : 0.0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            for (int c = 0; c < C; c++) {
                                int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)x[((b * H + iy) * W + ix) * C + c] *
                                       w[((ky * kw + kx) * C + c) * F + f];
                            }
                    y[((b * OH + oy) * OW + ox) * F + f] = (float)acc;
                }
}

static void naive_pool(const float *x, int B, int H, int W, int C, int k, int s, int same, int is_max, float *y) {
    int OH = tf_out(H, k, s, same), OW = tf_out(W, k, s, same);
    int pt = tf_pad_top(H, k, s, same), pl = tf_pad_top(W, k, s, same);
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int c = 0; c < C; c++) {
                    double acc = is_max ? -INFINITY : 0.0;
                    int count = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            double v = x[((b * H + iy) * W + ix) * C + c];
                            acc = is_max ? fmax(acc, v) : acc + v;
                            count++;
                        }
                    y[((b * OH + oy) * OW + ox) * C + c] = (float)(is_max ? acc : acc / count);
                }
}

/* --- forward against references --------------------------------------------- */

static void check_conv_forward(int H, int W, int C, int F, int k, int s, int same, int no_bias, int B) {
    cnnviz_layer_spec spec = conv_spec(F, k, s, same ? CNNVIZ_PAD_SAME : CNNVIZ_PAD_VALID, CNNVIZ_ACT_LINEAR);
    spec.no_bias = no_bias;
    rig r;
    rig_make(&r, cnnviz_shape3(H, W, C), &spec, B, (uint64_t)(H * 131 + k * 7 + s));
    cnnviz_layer *l = r.m->layers[0];
    int OH = tf_out(H, k, s, same), OW = tf_out(W, k, s, same);
    ck_assert_int_eq(l->out_shape.dim[0], OH);
    ck_assert_int_eq(l->out_shape.dim[1], OW);
    ck_assert_int_eq(l->out_shape.dim[2], F);
    ck_assert_int_eq(l->nparam, no_bias ? 1 : 2);
    float *ref = malloc((size_t)B * r.out_n * sizeof(float));
    naive_conv(r.x, B, H, W, C, l->param[0].data, no_bias ? NULL : l->param[1].data, k, k, F, s, same, ref);
    const float *y = rig_forward(&r, 0, 1);
    size_t at = 0;
    double d = max_rel_diff(y, ref, (size_t)B * r.out_n, 1.0, &at);
    ck_assert_msg(d < 1e-5, "conv %dx%dx%d k%d s%d %s: off by %g at %zu", H, W, C, k, s, same ? "same" : "valid", d,
                  at);
    /* an inference workspace without backward gives the same bits */
    cnnviz_error err;
    cnnviz_workspace_options o = cnnviz_workspace_options_init(B);
    cnnviz_workspace *ws = cnnviz_workspace_new(r.m, &o, &err);
    const float *y2 = cnnviz_forward(ws, r.x, B, &err);
    ck_assert_int_eq(memcmp(y, y2, (size_t)B * r.out_n * sizeof(float)), 0);
    cnnviz_workspace_free(ws);
    free(ref);
    rig_free(&r);
}

/* Run a check on the paths AVX-512 machines take (the hand-written
 * kernels in 16-float vectors), on those AVX2 machines take (the same
 * kernels in 8-float vectors) and on those older CPUs take (sgemm, plain
 * loops), whatever this CPU is (cnnviz_wide_vectors, cnnviz_avx2_vectors). */
static void set_vectors(int wide, int avx2) {
    cnnviz_force_wide_vectors(wide);
    cnnviz_force_avx2_vectors(avx2);
}

static void both_vector_widths(void (*check)(void)) {
    static const int modes[3][2] = {{1, 1}, {0, 1}, {0, 0}};
    for (int i = 0; i < 3; i++) {
        set_vectors(modes[i][0], modes[i][1]);
        check();
    }
    set_vectors(-1, -1);
}

static void conv_forward_matches_reference_body(void) {
    check_conv_forward(5, 5, 1, 3, 3, 2, 1, 0, 2);  /* same, stride 2, odd size */
    check_conv_forward(5, 5, 1, 3, 3, 2, 0, 0, 2);  /* valid, stride 2 */
    check_conv_forward(7, 6, 3, 4, 5, 1, 1, 0, 3);  /* 5x5 same, non-square */
    check_conv_forward(8, 8, 2, 5, 4, 3, 1, 1, 2);  /* even kernel, stride 3, no bias */
    check_conv_forward(9, 9, 6, 8, 3, 1, 0, 0, 3);  /* K = 54: the im2col path */
    check_conv_forward(9, 9, 6, 8, 3, 2, 1, 1, 3);  /* im2col with same padding */
    check_conv_forward(28, 28, 1, 32, 3, 1, 0, 0, 5);
    check_conv_forward(9, 8, 1, 36, 3, 2, 1, 0, 3); /* direct: 32 + 4 filters, same */
    check_conv_forward(9, 8, 2, 20, 2, 1, 1, 1, 3); /* direct: 16 + 4 filters, even kernel */
    /* 30x30x8 with K = 72: 2 samples per column chunk, 3 chunks */
    check_conv_forward(30, 30, 8, 16, 3, 1, 0, 0, 5);
    /* Winograd F(2x2, 3x3): C and F multiples of 16, stride 1, 3x3 */
    check_conv_forward(13, 13, 32, 64, 3, 1, 0, 0, 3); /* the seed net's second conv: odd output, edge tiles */
    check_conv_forward(12, 12, 16, 16, 3, 1, 1, 0, 2); /* same padding, even output */
    check_conv_forward(11, 10, 16, 48, 3, 1, 0, 1, 2); /* non-square, 48 maps (the 16-map loop), no bias */
    check_conv_forward(28, 28, 16, 32, 3, 1, 1, 0, 2); /* 196 tiles: several tile blocks */
}

START_TEST(conv_forward_matches_reference) {
    both_vector_widths(conv_forward_matches_reference_body);
}
END_TEST

/* bits of y[0] and y[1] (n floats) equal, and not all zero */
static void same_bits(const char *what, const char *part, float *const y[2], size_t n) {
    size_t zeros = 0, first = n;
    for (size_t i = 0; i < n; i++) {
        zeros += y[0][i] == 0.0f;
        if (first == n && memcmp(&y[0][i], &y[1][i], sizeof(float))) first = i;
    }
    ck_assert_msg(first == n, "%s: %s: 8-float vectors differ from 16-float ones at %zu (%.9g, %.9g)", what, part,
                  first, first < n ? y[0][first] : 0.0, first < n ? y[1][first] : 0.0);
    ck_assert_msg(zeros < n, "%s: %s all zero", what, part);
}

/* A layer's forward in 16-float (AVX-512) and in 8-float (AVX2) vectors:
 * the same bits; in training, its input and parameter gradients too
 * (training 2: the parameter gradients without the input's, the way a
 * first layer trains). */
static void layer_widths_same_bits(const char *what, cnnviz_shape in, const cnnviz_layer_spec *spec, int B,
                                   uint64_t seed, int training) {
    float *y[2], *dx[2], *g[2];
    size_t n = 0, nin = 0, np = 0;
    for (int wide = 1; wide >= 0; wide--) {
        set_vectors(wide, 1);
        rig r;
        rig_make(&r, in, spec, B, seed);
        n = (size_t)B * r.out_n, nin = (size_t)B * r.in_n, np = r.m->num_params;
        y[wide] = malloc(n * sizeof(float));
        dx[wide] = calloc(nin, sizeof(float));
        g[wide] = calloc(np, sizeof(float));
        memcpy(y[wide], rig_forward(&r, training, training != 2), n * sizeof(float));
        if (training) {
            cnnviz_model_zero_grads(r.m);
            rig_backward(&r, r.wr, training == 2 ? NULL : dx[wide]);
            memcpy(g[wide], r.m->grads, np * sizeof(float));
        }
        rig_free(&r);
    }
    set_vectors(-1, -1);
    same_bits(what, "output", y, n);
    if (training == 1) same_bits(what, "input gradient", dx, nin);
    if (training) same_bits(what, "parameter gradients", g, np);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(g[i]);
}

static void conv_widths_case(int H, int W, int C, int F, int k, int s, int same, int no_bias, int relu, int B,
                             int training) {
    cnnviz_layer_spec spec = conv_spec(F, k, s, same ? CNNVIZ_PAD_SAME : CNNVIZ_PAD_VALID,
                                       relu ? CNNVIZ_ACT_RELU : CNNVIZ_ACT_LINEAR);
    spec.no_bias = no_bias;
    char what[96];
    snprintf(what, sizeof what, "conv %dx%dx%d -> %d k%d s%d %s%s", H, W, C, F, k, s, same ? "same" : "valid",
             training == 1 ? ", training" : training ? ", training, no input gradient" : "");
    layer_widths_same_bits(what, cnnviz_shape3(H, W, C), &spec, B, (uint64_t)(H * 31 + F), training);
}

/* Winograd F(2x2, 3x3): the seed net's second conv (odd output, edge
 * tiles), same padding, 48 maps (the wide kernel's one-vector loop, the
 * narrow one's main tile), no bias and several tile blocks. The direct
 * conv (K <= 16): 64 maps (both widths' two-vector loop), 36 and 20 (a
 * scalar tail), 24 (the narrow one's one-vector loop, the wide one's
 * scalar tail), same padding (gathered windows), stride 2, two channels. */
START_TEST(conv_widths_same_bits) {
    conv_widths_case(13, 13, 32, 64, 3, 1, 0, 0, 1, 3, 0);
    conv_widths_case(12, 12, 16, 16, 3, 1, 1, 0, 1, 2, 0);
    conv_widths_case(11, 10, 16, 48, 3, 1, 0, 1, 1, 2, 0);
    conv_widths_case(28, 28, 16, 32, 3, 1, 1, 0, 1, 2, 0);
    conv_widths_case(12, 10, 1, 64, 3, 1, 0, 0, 1, 3, 0);
    conv_widths_case(12, 10, 1, 36, 3, 1, 0, 0, 0, 2, 0);
    conv_widths_case(9, 8, 1, 20, 3, 2, 1, 0, 1, 2, 0);
    conv_widths_case(9, 9, 1, 24, 3, 1, 1, 1, 0, 2, 0);
    conv_widths_case(9, 8, 2, 20, 2, 1, 1, 0, 1, 3, 0);
    /* training: F(3x3, 3x3) forward and backward (5x5 -> 3x3, as the seed
     * net's third conv, and 7x7 -> 5x5 with edge blocks), and the sparse
     * window kernels behind F(2x2, 3x3) */
    conv_widths_case(5, 5, 64, 64, 3, 1, 0, 0, 1, 8, 1);
    conv_widths_case(7, 7, 16, 32, 3, 1, 0, 1, 1, 5, 1);
    conv_widths_case(13, 13, 32, 64, 3, 1, 0, 0, 1, 3, 1);
    /* training the direct conv: 64 maps on 28x28 (K = 9, every window
     * inside: the kernel reading the input), same padding (the column
     * kernel, Kp = 12), 36 and 20 maps (tails; stride 2: the scattered
     * input gradient), a 2x2 kernel on two channels (K = 8), linear (no
     * ReLU mask); with the input gradient and without (the ReLU mask in
     * the weight-gradient kernels) */
    for (int training = 1; training <= 2; training++) {
        conv_widths_case(28, 28, 1, 64, 3, 1, 0, 0, 1, 2, training);
        conv_widths_case(12, 10, 1, 64, 3, 1, 1, 0, 1, 3, training);
        conv_widths_case(12, 10, 1, 36, 3, 1, 0, 0, 0, 2, training);
        conv_widths_case(9, 8, 1, 20, 3, 2, 1, 0, 1, 2, training);
        conv_widths_case(9, 8, 2, 20, 2, 1, 1, 0, 1, 3, training);
        conv_widths_case(9, 9, 1, 48, 3, 1, 1, 1, 1, 2, training);
    }
}
END_TEST

/* Which convolutions take the Winograd path (the cases above check its
 * values): 3x3, stride 1, C and F multiples of 16, and enough output that
 * the 2x2 tiles' overhang leaves a 1.5x saving. */
START_TEST(winograd_chooses_geometry) {
    ck_assert(cnnviz_winograd_usable(3, 3, 1, 1, 32, 64, 11, 11));
    ck_assert(cnnviz_winograd_usable(3, 3, 1, 1, 16, 16, 26, 26));
    ck_assert(!cnnviz_winograd_usable(3, 3, 1, 1, 64, 64, 3, 3)); /* overhang: 1.27x only */
    ck_assert(!cnnviz_winograd_usable(3, 3, 2, 2, 32, 64, 11, 11));
    ck_assert(!cnnviz_winograd_usable(5, 5, 1, 1, 32, 64, 11, 11));
    ck_assert(!cnnviz_winograd_usable(3, 3, 1, 1, 8, 64, 11, 11));
    ck_assert(!cnnviz_winograd_usable(3, 3, 1, 1, 32, 20, 11, 11));
}
END_TEST

/* Hand-computed: input 0..24 on 5x5, a 3x3 kernel of ones, stride 2, same:
 * TF pads 2 rows (1 above, 1 below), so out[0][0] sums rows/cols 0..1. */
START_TEST(conv_same_hand_computed) {
    cnnviz_layer_spec spec = conv_spec(1, 3, 2, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR);
    spec.no_bias = 1;
    rig r;
    rig_make(&r, cnnviz_shape3(5, 5, 1), &spec, 1, 1);
    for (int i = 0; i < 9; i++) r.m->layers[0]->param[0].data[i] = 1.0f;
    for (int i = 0; i < 25; i++) r.x[i] = (float)i;
    const float *y = rig_forward(&r, 0, 1);
    const float want[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    for (int i = 0; i < 9; i++) ck_assert_float_eq_tol(y[i], want[i], 1e-4);
    rig_free(&r);
}
END_TEST

/* An even kernel with same padding: the extra pad goes below/right, so a
 * kernel that picks its top-left tap returns the input unshifted. */
START_TEST(conv_same_even_kernel_pads_bottom_right) {
    cnnviz_layer_spec spec = conv_spec(1, 2, 1, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR);
    spec.no_bias = 1;
    rig r;
    rig_make(&r, cnnviz_shape3(3, 3, 1), &spec, 1, 1);
    float *w = r.m->layers[0]->param[0].data;
    w[0] = 1.0f, w[1] = w[2] = w[3] = 0.0f;
    for (int i = 0; i < 9; i++) r.x[i] = (float)(i + 1);
    const float *y = rig_forward(&r, 0, 1);
    for (int i = 0; i < 9; i++) ck_assert_float_eq(y[i], r.x[i]);
    rig_free(&r);
}
END_TEST

static void check_pool_forward(int is_max, int H, int W, int C, int k, int s, int same, int B) {
    cnnviz_layer_spec spec = pool_spec(is_max, k, s, same ? CNNVIZ_PAD_SAME : CNNVIZ_PAD_VALID);
    rig r;
    rig_make(&r, cnnviz_shape3(H, W, C), &spec, B, (uint64_t)(H + k));
    int OH = tf_out(H, k, s ? s : k, same), OW = tf_out(W, k, s ? s : k, same);
    ck_assert_int_eq(r.m->layers[0]->out_shape.dim[0], OH);
    ck_assert_int_eq(r.m->layers[0]->out_shape.dim[1], OW);
    float *ref = malloc((size_t)B * r.out_n * sizeof(float));
    naive_pool(r.x, B, H, W, C, k, s ? s : k, same, is_max, ref);
    const float *y = rig_forward(&r, 0, 1);
    double d = max_rel_diff(y, ref, (size_t)B * r.out_n, 1.0, NULL);
    ck_assert_msg(d < 1e-6, "%s pool %dx%d k%d s%d: off by %g", is_max ? "max" : "avg", H, W, k, s, d);
    free(ref);
    rig_free(&r);
}

static void pool_forward_matches_reference_body(void) {
    for (int is_max = 0; is_max < 2; is_max++) {
        check_pool_forward(is_max, 26, 26, 3, 2, 0, 0, 2);
        check_pool_forward(is_max, 11, 11, 4, 2, 0, 0, 2); /* odd: floor */
        check_pool_forward(is_max, 11, 11, 4, 2, 0, 1, 2); /* odd: same pads one */
        check_pool_forward(is_max, 7, 9, 2, 3, 2, 1, 3);
        check_pool_forward(is_max, 9, 9, 2, 3, 1, 0, 2);   /* overlapping windows */
        check_pool_forward(is_max, 10, 7, 3, 4, 0, 1, 2);
        check_pool_forward(is_max, 10, 10, 3, 4, 3, 0, 2);
        /* 16k channels: the vector path */
        check_pool_forward(is_max, 26, 26, 32, 2, 0, 0, 2);
        check_pool_forward(is_max, 11, 11, 64, 2, 0, 0, 2);
        check_pool_forward(is_max, 7, 9, 16, 3, 2, 1, 2);
        check_pool_forward(is_max, 9, 9, 16, 3, 1, 0, 2);
        check_pool_forward(is_max, 7, 7, 48, 2, 3, 0, 2); /* stride > pool: gaps */
    }
}

START_TEST(pool_forward_matches_reference) {
    both_vector_widths(pool_forward_matches_reference_body);
}
END_TEST

/* 4x4 input 0..15, 3x3 windows, stride 2, same: the pad goes below/right,
 * and the average divides by the real pixels only. */
START_TEST(pool_same_hand_computed) {
    const float want_max[4] = {10, 11, 14, 15}, want_avg[4] = {5, 6.5f, 11, 12.5f};
    for (int is_max = 0; is_max < 2; is_max++) {
        cnnviz_layer_spec spec = pool_spec(is_max, 3, 2, CNNVIZ_PAD_SAME);
        rig r;
        rig_make(&r, cnnviz_shape3(4, 4, 1), &spec, 1, 1);
        for (int i = 0; i < 16; i++) r.x[i] = (float)i;
        const float *y = rig_forward(&r, 0, 1);
        for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(y[i], (is_max ? want_max[i] : want_avg[i]), 1e-6);
        rig_free(&r);
    }
}
END_TEST

/* Max pool with same padding over negative inputs: padding is not a zero. */
START_TEST(maxpool_same_ignores_padding) {
    cnnviz_layer_spec spec = pool_spec(1, 2, 2, CNNVIZ_PAD_SAME);
    rig r;
    rig_make(&r, cnnviz_shape3(3, 3, 1), &spec, 1, 1);
    for (int i = 0; i < 9; i++) r.x[i] = -1.0f - (float)i;
    const float *y = rig_forward(&r, 0, 1);
    const float want[4] = {-1, -3, -7, -9};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(y[i], want[i]);
    rig_free(&r);
}
END_TEST

/* Equal values in a window: the gradient goes to the first in row-major
 * order only (what TF's MaxPoolGrad does), on the scalar and vector paths. */
START_TEST(maxpool_ties_take_first) {
    for (int C = 1; C <= 16; C += 15) {
        cnnviz_layer_spec spec = pool_spec(1, 2, 0, CNNVIZ_PAD_VALID);
        rig r;
        rig_make(&r, cnnviz_shape3(4, 4, C), &spec, 1, 2);
        for (size_t i = 0; i < r.in_n; i++) r.x[i] = 1.0f;
        rig_forward(&r, 1, 1);
        float dx[4 * 4 * 16];
        rig_backward(&r, r.wr, dx);
        for (int iy = 0; iy < 4; iy++)
            for (int ix = 0; ix < 4; ix++)
                for (int c = 0; c < C; c++) {
                    float want = iy % 2 == 0 && ix % 2 == 0 ? r.wr[((iy / 2) * 2 + ix / 2) * C + c] : 0.0f;
                    ck_assert_float_eq(dx[(iy * 4 + ix) * C + c], want);
                }
        rig_free(&r);
    }
}
END_TEST

START_TEST(activations_forward_values) {
    float x[6] = {-2.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f};
    struct {
        cnnviz_activation a;
        float alpha;
        float want[6];
    } cases[] = {
        {CNNVIZ_ACT_LINEAR, 0, {-2, -0.5f, 0, 0.5f, 1, 3}},
        {CNNVIZ_ACT_RELU, 0, {0, 0, 0, 0.5f, 1, 3}},
        {CNNVIZ_ACT_LEAKY_RELU, 0.3f, {-0.6f, -0.15f, 0, 0.5f, 1, 3}},
        {CNNVIZ_ACT_ELU, 1.0f, {expm1f(-2), expm1f(-0.5f), 0, 0.5f, 1, 3}},
        {CNNVIZ_ACT_SIGMOID, 0, {0.11920292f, 0.37754067f, 0.5f, 0.62245933f, 0.73105858f, 0.95257413f}},
        {CNNVIZ_ACT_TANH, 0, {-0.96402758f, -0.46211716f, 0, 0.46211716f, 0.76159416f, 0.99505475f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float y[6];
        memcpy(y, x, sizeof y);
        cnnviz_activation_forward(cases[c].a, cases[c].alpha, y, 6, 3);
        for (int i = 0; i < 6; i++)
            ck_assert_msg(fabsf(y[i] - cases[c].want[i]) < 1e-6f, "%s(%g) = %g, want %g",
                          cnnviz_activation_name(cases[c].a), (double)x[i], (double)y[i], (double)cases[c].want[i]);
    }
    /* softmax over runs of 3, stable for large logits */
    float s[6] = {1000.0f, 1001.0f, 1002.0f, -1.0f, 0.0f, 1.0f};
    cnnviz_activation_forward(CNNVIZ_ACT_SOFTMAX, 0, s, 6, 3);
    const float want[3] = {0.09003057f, 0.24472847f, 0.66524096f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(s[i], want[i % 3], 1e-6);
}
END_TEST

/* --- gradients by finite differences ----------------------------------------- */

static void conv_grad_case(int H, int W, int C, int F, int k, int s, cnnviz_padding pad, cnnviz_activation act,
                           int no_bias, int B) {
    cnnviz_layer_spec spec = conv_spec(F, k, s, pad, act);
    spec.no_bias = no_bias;
    rig r;
    rig_make(&r, cnnviz_shape3(H, W, C), &spec, B, (uint64_t)(H * 31 + C * 7 + k + s * 3 + act * 101));
    check_gradients(&r, 1);
    rig_free(&r);
}

static void conv_gradients_body(void) {
    conv_grad_case(6, 6, 1, 4, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_LINEAR, 0, 2);  /* direct path */
    conv_grad_case(7, 7, 3, 4, 3, 2, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 0, 2);   /* im2col, stride 2 */
    conv_grad_case(7, 6, 2, 3, 5, 1, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 0, 2);   /* 5x5 */
    conv_grad_case(6, 6, 2, 3, 5, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_LINEAR, 1, 2);  /* 5x5 valid no bias */
    conv_grad_case(8, 8, 3, 4, 4, 3, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 0, 2);   /* even kernel */
    conv_grad_case(5, 5, 1, 3, 3, 2, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 1, 3);   /* direct, same, stride 2 */
    conv_grad_case(30, 30, 8, 4, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_LINEAR, 0, 5); /* several chunks */
    /* the direct path's vector blocks: 32 + 4 and 16 + 4 filters */
    conv_grad_case(6, 6, 1, 36, 3, 1, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 0, 2);
    conv_grad_case(7, 5, 1, 20, 3, 2, CNNVIZ_PAD_SAME, CNNVIZ_ACT_LINEAR, 0, 2);
    /* many chunks of one sample each, more chunks than partitions */
    conv_grad_case(40, 40, 16, 3, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_LINEAR, 0, 7);
}

START_TEST(conv_gradients) {
    both_vector_widths(conv_gradients_body);
}
END_TEST

/* ReLU and LeakyReLU have a kink at 0 where a finite difference is wrong
 * whenever a pre-activation sits within eps of it; check the fused
 * activation instead against the same layer (linear, FD-checked above)
 * followed by an Activation layer (FD-checked away from the kink). */
static void compare_fused_with_separate(cnnviz_shape in, cnnviz_layer_spec spec, int B) {
    cnnviz_error err;
    cnnviz_activation act = spec.activation;
    rig r;
    rig_make(&r, in, &spec, B, 90 + act);
    cnnviz_model *m2 = cnnviz_model_new(&in);
    spec.activation = CNNVIZ_ACT_LINEAR;
    ck_assert_int_eq(cnnviz_model_add(m2, &spec, &err), CNNVIZ_OK);
    cnnviz_layer_spec a = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    a.activation = act;
    a.alpha = act == CNNVIZ_ACT_LEAKY_RELU ? 0.2f : 1.0f; /* Keras' defaults for activation="..." */
    ck_assert_int_eq(cnnviz_model_add(m2, &a, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m2, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m2, &err), CNNVIZ_OK);
    memcpy(m2->params, r.m->params, r.m->num_params * sizeof(float));
    cnnviz_workspace_options o = cnnviz_workspace_options_init(B);
    o.training = o.input_grad = o.weight_grads = 1;
    cnnviz_workspace *ws2 = cnnviz_workspace_new(m2, &o, &err);
    size_t nout = (size_t)B * r.out_n, nin = (size_t)B * r.in_n;
    const float *y1 = rig_forward(&r, 1, 1);
    const float *y2 = cnnviz_forward(ws2, r.x, B, &err);
    ck_assert_int_eq(memcmp(y1, y2, nout * sizeof(float)), 0);
    int negative = 0;
    for (size_t i = 0; i < nout; i++) negative += y1[i] <= 0.0f;
    ck_assert_msg(negative > 0 && negative < (int)nout, "the case should have both sides of the kink");
    float *dx1 = malloc(nin * sizeof(float)), *dx2 = malloc(nin * sizeof(float));
    cnnviz_model_zero_grads(r.m);
    cnnviz_model_zero_grads(m2);
    rig_backward(&r, r.wr, dx1);
    ck_assert_int_eq(cnnviz_backward(ws2, r.wr, dx2, &err), CNNVIZ_OK);
    ck_assert_msg(max_rel_diff(dx1, dx2, nin, 1e-3, NULL) < 1e-6, "fused %s input gradient",
                  cnnviz_activation_name(act));
    ck_assert_msg(max_rel_diff(r.m->grads, m2->grads, r.m->num_params, 1e-3, NULL) < 1e-6,
                  "fused %s weight gradients", cnnviz_activation_name(act));
    /* without an input gradient the first layer may fold ReLU's mask into
     * its weight-gradient kernel: the same gradients */
    cnnviz_model_zero_grads(r.m);
    rig_forward(&r, 1, 0);
    rig_backward(&r, r.wr, NULL);
    ck_assert_msg(max_rel_diff(r.m->grads, m2->grads, r.m->num_params, 1e-3, NULL) < 1e-6,
                  "fused %s weight gradients without an input gradient", cnnviz_activation_name(act));
    free(dx1);
    free(dx2);
    cnnviz_workspace_free(ws2);
    cnnviz_model_free(m2);
    rig_free(&r);
}

static void conv_activation_gradients_body(void) {
    /* smooth activations (ELU with alpha 1 is C1): finite differences */
    cnnviz_activation smooth[] = {CNNVIZ_ACT_SIGMOID, CNNVIZ_ACT_TANH, CNNVIZ_ACT_SOFTMAX, CNNVIZ_ACT_ELU};
    for (int i = 0; i < 4; i++) {
        conv_grad_case(6, 6, 2, 5, 3, 1, CNNVIZ_PAD_SAME, smooth[i], 0, 2);
        conv_grad_case(6, 6, 1, 5, 3, 1, CNNVIZ_PAD_VALID, smooth[i], 0, 2);
    }
    cnnviz_activation kinked[] = {CNNVIZ_ACT_RELU, CNNVIZ_ACT_LEAKY_RELU};
    for (int i = 0; i < 2; i++) {
        compare_fused_with_separate(cnnviz_shape3(6, 6, 2), conv_spec(5, 3, 1, CNNVIZ_PAD_SAME, kinked[i]), 2);
        compare_fused_with_separate(cnnviz_shape3(6, 6, 1), conv_spec(5, 3, 2, CNNVIZ_PAD_VALID, kinked[i]), 2);
        compare_fused_with_separate(cnnviz_shape3(7, 7, 1), conv_spec(36, 3, 1, CNNVIZ_PAD_SAME, kinked[i]), 3);
        compare_fused_with_separate(cnnviz_shape3(7, 7, 1), conv_spec(20, 3, 1, CNNVIZ_PAD_VALID, kinked[i]), 3);
        /* Winograd forward with its ReLU in the output transform */
        compare_fused_with_separate(cnnviz_shape3(8, 8, 16), conv_spec(16, 3, 1, CNNVIZ_PAD_SAME, kinked[i]), 2);
        cnnviz_layer_spec d = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
        d.units = 6;
        d.activation = kinked[i];
        compare_fused_with_separate(cnnviz_shape1(9), d, 3);
    }
}

START_TEST(conv_activation_gradients) {
    both_vector_widths(conv_activation_gradients_body);
}
END_TEST

static void dense_grad_case(cnnviz_shape in, int units, cnnviz_activation act, int no_bias) {
    cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    spec.units = units;
    spec.activation = act;
    spec.no_bias = no_bias;
    rig r;
    rig_make(&r, in, &spec, 3, (uint64_t)(units * 13 + act));
    check_gradients(&r, 1);
    rig_free(&r);
}

START_TEST(dense_forward_and_gradients) {
    /* forward: y = x·W + b checked by hand */
    cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    spec.units = 2;
    rig r;
    rig_make(&r, cnnviz_shape1(3), &spec, 1, 3);
    float *w = r.m->layers[0]->param[0].data, *b = r.m->layers[0]->param[1].data;
    const float wv[6] = {1, 2, 3, 4, 5, 6}; /* (in=3, units=2) */
    memcpy(w, wv, sizeof wv);
    b[0] = 0.5f, b[1] = -0.5f;
    r.x[0] = 1, r.x[1] = 2, r.x[2] = 3;
    const float *y = rig_forward(&r, 0, 1);
    ck_assert_float_eq_tol(y[0], 1 + 6 + 15 + 0.5f, 1e-5);
    ck_assert_float_eq_tol(y[1], 2 + 8 + 18 - 0.5f, 1e-5);
    rig_free(&r);

    /* relu and leaky_relu: compare_fused_with_separate in conv_activation_gradients */
    cnnviz_activation smooth[] = {CNNVIZ_ACT_LINEAR, CNNVIZ_ACT_SIGMOID, CNNVIZ_ACT_TANH, CNNVIZ_ACT_SOFTMAX,
                                  CNNVIZ_ACT_ELU};
    for (int i = 0; i < 5; i++) dense_grad_case(cnnviz_shape1(7), 5, smooth[i], 0);
    dense_grad_case(cnnviz_shape1(6), 4, CNNVIZ_ACT_LINEAR, 1);
    dense_grad_case(cnnviz_shape3(2, 3, 4), 5, CNNVIZ_ACT_TANH, 0); /* Dense on the last axis */
}
END_TEST

/* A max pooling right after a Conv2D with ReLU does the ReLU's backward
 * (cnnviz_fused_relu_pool): the same bits as Conv2D(linear), Activation
 * (relu), MaxPooling2D, which runs every backward on its own. */
static cnnviz_model *conv_relu_pool(int separate, cnnviz_error *err) {
    cnnviz_shape in = cnnviz_shape3(10, 10, 16);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_layer_spec c = conv_spec(32, 3, 1, CNNVIZ_PAD_VALID, separate ? CNNVIZ_ACT_LINEAR : CNNVIZ_ACT_RELU);
    ck_assert_int_eq(cnnviz_model_add(m, &c, err), CNNVIZ_OK);
    if (separate) {
        cnnviz_layer_spec a = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
        a.activation = CNNVIZ_ACT_RELU;
        ck_assert_int_eq(cnnviz_model_add(m, &a, err), CNNVIZ_OK);
    }
    cnnviz_layer_spec p = pool_spec(1, 2, 0, CNNVIZ_PAD_VALID);
    ck_assert_int_eq(cnnviz_model_add(m, &p, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, err), CNNVIZ_OK);
    return m;
}

static void relu_pool_backward_fused_body(void) {
    cnnviz_error err;
    cnnviz_model *fused = conv_relu_pool(0, &err), *plain = conv_relu_pool(1, &err);
    ck_assert(cnnviz_fused_relu_pool(fused, 1));
    ck_assert(!cnnviz_fused_relu_pool(plain, 2));
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 5, 1);
    for (size_t j = 0; j < fused->num_params; j++) fused->params[j] = cnnviz_rng_uniform(&rng) - 0.5f;
    memcpy(plain->params, fused->params, fused->num_params * sizeof(float));
    /* both batch paths: one micro-batch, and depth-first over several */
    for (int B = 3; B <= 20; B += 17) {
        size_t nin = (size_t)B * 10 * 10 * 16, nout = (size_t)B * 4 * 4 * 32;
        float *x = malloc(nin * sizeof *x), *dy = malloc(nout * sizeof *dy);
        float *dx1 = malloc(nin * sizeof *dx1), *dx2 = malloc(nin * sizeof *dx2);
        for (size_t i = 0; i < nin; i++) x[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
        for (size_t i = 0; i < nout; i++) dy[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
        cnnviz_workspace *w1 = test_workspace(fused, B, 1, -1, CNNVIZ_KEEP_ALL, 1, 1);
        cnnviz_workspace *w2 = test_workspace(plain, B, 1, -1, CNNVIZ_KEEP_ALL, 1, 1);
        const float *y1 = cnnviz_forward(w1, x, B, &err), *y2 = cnnviz_forward(w2, x, B, &err);
        ck_assert_int_eq(memcmp(y1, y2, nout * sizeof *y1), 0);
        /* some pooled maxima are 0: the case the fusion must get right */
        int zeros = 0;
        for (size_t i = 0; i < nout; i++) zeros += y1[i] == 0.0f;
        ck_assert_int_gt(zeros, 0);
        cnnviz_model_zero_grads(fused);
        cnnviz_model_zero_grads(plain);
        ck_assert_int_eq(cnnviz_backward(w1, dy, dx1, &err), CNNVIZ_OK);
        ck_assert_int_eq(cnnviz_backward(w2, dy, dx2, &err), CNNVIZ_OK);
        ck_assert_int_eq(memcmp(dx1, dx2, nin * sizeof *dx1), 0);
        ck_assert_int_eq(memcmp(fused->grads, plain->grads, fused->num_params * sizeof(float)), 0);
        cnnviz_workspace_free(w1);
        cnnviz_workspace_free(w2);
        /* backward that starts at the Conv2D itself still applies its ReLU */
        w1 = test_workspace(fused, B, 1, 0, CNNVIZ_KEEP_ALL, 1, 0);
        w2 = test_workspace(plain, B, 1, 1, CNNVIZ_KEEP_ALL, 1, 0);
        (void)cnnviz_forward(w1, x, B, &err);
        size_t nconv = (size_t)B * 8 * 8 * 32;
        float *dc = malloc(nconv * sizeof *dc);
        for (size_t i = 0; i < nconv; i++) dc[i] = 1.0f;
        ck_assert_int_eq(cnnviz_backward(w1, dc, dx1, &err), CNNVIZ_OK);
        (void)cnnviz_forward(w2, x, B, &err);
        ck_assert_int_eq(cnnviz_backward(w2, dc, dx2, &err), CNNVIZ_OK);
        ck_assert_int_eq(memcmp(dx1, dx2, nin * sizeof *dx1), 0);
        free(dc);
        cnnviz_workspace_free(w1);
        cnnviz_workspace_free(w2);
        free(x);
        free(dy);
        free(dx1);
        free(dx2);
    }
    cnnviz_model_free(fused);
    cnnviz_model_free(plain);
}

START_TEST(relu_pool_backward_fused) {
    both_vector_widths(relu_pool_backward_fused_body);
}
END_TEST

/* Conv2D(relu) + MaxPooling2D(2) backward, where the Conv2D's gradient is
 * at most a quarter nonzero and goes through the kernels that skip zeros
 * (by filter, by window row, AVX-512 lists or plain), against a float64
 * reference built here from the forward pass's own outputs: each window's
 * first maximum takes the pooled gradient when that maximum is positive.
 * Sums of ~50 terms of size ~1 in float: differences are measured against
 * max(|reference|, 1) (float rounding there is ~1e-5), where a wrong
 * or missing term shows as ~0.1. */
static void sparse_conv_case(int H, int C, int F, int k, int B) {
    cnnviz_error err;
    cnnviz_shape in = cnnviz_shape3(H, H, C);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_layer_spec cs = conv_spec(F, k, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_RELU);
    cnnviz_layer_spec ps = pool_spec(1, 2, 0, CNNVIZ_PAD_VALID);
    ck_assert_int_eq(cnnviz_model_add(m, &cs, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_add(m, &ps, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, (uint64_t)(H * 7 + C + F + k), 3);
    for (size_t j = 0; j < m->num_params; j++) m->params[j] = 0.4f * (cnnviz_rng_uniform(&rng) - 0.5f);
    int O = H - k + 1, P = O / 2;
    size_t nin = (size_t)B * H * H * C, nout = (size_t)B * P * P * F;
    float *x = malloc(nin * sizeof *x), *dy = malloc(nout * sizeof *dy), *dx = malloc(nin * sizeof *dx);
    double *dz = calloc((size_t)B * O * O * F, sizeof *dz), *dw = calloc((size_t)k * k * C * F, sizeof *dw);
    double *db = calloc((size_t)F, sizeof *db), *dxr = calloc(nin, sizeof *dxr);
    float *dwf = malloc((size_t)k * k * C * F * sizeof *dwf), *dbf = malloc((size_t)F * sizeof *dbf);
    float *dxf = malloc(nin * sizeof *dxf);
    for (size_t i = 0; i < nin; i++) x[i] = cnnviz_rng_uniform(&rng);
    for (size_t i = 0; i < nout; i++) dy[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
    cnnviz_workspace *ws = test_workspace(m, B, 1, -1, CNNVIZ_KEEP_ALL, 1, 1);
    (void)cnnviz_forward(ws, x, B, &err);
    const float *y = cnnviz_layer_output(ws, 0, &err);
    cnnviz_model_zero_grads(m);
    ck_assert_int_eq(cnnviz_backward(ws, dy, dx, &err), CNNVIZ_OK);
    size_t nz = 0;
    for (int b = 0; b < B; b++)
        for (int py = 0; py < P; py++)
            for (int px = 0; px < P; px++)
                for (int f = 0; f < F; f++) {
                    int best = -1;
                    float mx = -INFINITY;
                    for (int t = 0; t < 4; t++) {
                        float v = y[(((size_t)b * O + 2 * py + t / 2) * O + 2 * px + t % 2) * F + f];
                        if (v > mx) mx = v, best = t;
                    }
                    if (!(mx > 0.0f)) continue;
                    dz[(((size_t)b * O + 2 * py + best / 2) * O + 2 * px + best % 2) * F + f] =
                        dy[(((size_t)b * P + py) * P + px) * F + f];
                    nz++;
                }
    ck_assert_msg(nz > 0 && nz < (size_t)B * O * O * F / 4, "the case should be sparse but not empty");
    const float *w = m->layers[0]->param[0].data;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < O; oy++)
            for (int ox = 0; ox < O; ox++)
                for (int f = 0; f < F; f++) {
                    double g = dz[(((size_t)b * O + oy) * O + ox) * F + f];
                    if (g == 0.0) continue;
                    db[f] += g;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++)
                            for (int c = 0; c < C; c++) {
                                size_t xi = (((size_t)b * H + oy + ky) * H + ox + kx) * C + c;
                                size_t wi = (((size_t)ky * k + kx) * C + c) * F + f;
                                dw[wi] += g * x[xi];
                                dxr[xi] += g * w[wi];
                            }
                }
    for (size_t i = 0; i < (size_t)k * k * C * F; i++) dwf[i] = (float)dw[i];
    for (int f = 0; f < F; f++) dbf[f] = (float)db[f];
    for (size_t i = 0; i < nin; i++) dxf[i] = (float)dxr[i];
    const cnnviz_layer *l = m->layers[0];
    size_t at = 0;
    double d = max_rel_diff(m->grads + l->param[0].offset, dwf, (size_t)k * k * C * F, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d k%d F%d B%d: kernel gradient off by %g at %zu", H, H, C, k, F, B, d, at);
    d = max_rel_diff(m->grads + l->param[1].offset, dbf, (size_t)F, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d k%d F%d B%d: bias gradient off by %g at %zu", H, H, C, k, F, B, d, at);
    d = max_rel_diff(dx, dxf, nin, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d k%d F%d B%d: input gradient off by %g at %zu", H, H, C, k, F, B, d, at);
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
    free(x), free(dy), free(dx), free(dz), free(dw), free(db), free(dxr), free(dwf), free(dbf), free(dxf);
}

static void sparse_conv_backward_body(void) {
    /* B = 3: one micro-batch; B = 20: depth-first micro-batches of 8 */
    for (int B = 3; B <= 20; B += 17) {
        sparse_conv_case(13, 32, 64, 3, B); /* the seed net's conv2d_1: lists by filter */
        sparse_conv_case(9, 16, 32, 2, B);  /* a 2x2 kernel: window rows of 32 floats */
        sparse_conv_case(10, 16, 32, 3, B); /* window rows of 48 floats: the column path */
        sparse_conv_case(12, 32, 20, 3, B); /* 20 maps: plain nonzero lists */
    }
}

START_TEST(sparse_conv_backward_matches_reference) {
    both_vector_widths(sparse_conv_backward_body);
}
END_TEST

/* Winograd F(3x3, 3x3), the training passes of small 3x3 convolutions
 * (the seed net's 5x5 -> 3x3 conv2d_2): forward, and the kernel, bias and
 * input gradients of a linear or ReLU Conv2D for a random dy, against
 * float64 sums written from TF's definitions. Differences are measured
 * against max(|reference|, 1): F(3x3, 3x3)'s float error is a few 1e-6
 * there, a wrong transform entry shows as ~0.1. dropout = 1 puts a
 * Dropout(0) after the conv, which keeps the driver off its depth-first
 * micro-batches, so B = 40 makes five chunks in four weight partitions. */
static void winograd3_case(int H, int W, int C, int F, int same, int relu, int dropout, int B) {
    cnnviz_error err;
    cnnviz_shape in = cnnviz_shape3(H, W, C);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_layer_spec cs = conv_spec(F, 3, 1, same ? CNNVIZ_PAD_SAME : CNNVIZ_PAD_VALID,
                                     relu ? CNNVIZ_ACT_RELU : CNNVIZ_ACT_LINEAR);
    ck_assert_int_eq(cnnviz_model_add(m, &cs, &err), CNNVIZ_OK);
    if (dropout) {
        cnnviz_layer_spec ds = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
        ds.rate = 0.0f;
        ck_assert_int_eq(cnnviz_model_add(m, &ds, &err), CNNVIZ_OK);
    }
    ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, (uint64_t)(H * 7 + W + C + F + B), 5);
    for (size_t j = 0; j < m->num_params; j++) m->params[j] = 0.4f * (cnnviz_rng_uniform(&rng) - 0.5f);
    int OH = tf_out(H, 3, 1, same), OW = tf_out(W, 3, 1, same), pt = tf_pad_top(H, 3, 1, same),
        pl = tf_pad_top(W, 3, 1, same);
    size_t nin = (size_t)B * H * W * C, nout = (size_t)B * OH * OW * F, nw = (size_t)9 * C * F;
    float *x = malloc(nin * sizeof *x), *dy = malloc(nout * sizeof *dy), *dx = malloc(nin * sizeof *dx);
    float *yref = malloc(nout * sizeof *yref), *dwf = malloc(nw * sizeof *dwf), *dbf = malloc((size_t)F * sizeof *dbf);
    float *dxf = malloc(nin * sizeof *dxf);
    double *dw = calloc(nw, sizeof *dw), *db = calloc((size_t)F, sizeof *db), *dxr = calloc(nin, sizeof *dxr);
    for (size_t i = 0; i < nin; i++) x[i] = cnnviz_rng_uniform(&rng);
    for (size_t i = 0; i < nout; i++) dy[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
    const cnnviz_layer *l = m->layers[0];
    const float *w = l->param[0].data, *bias = l->param[1].data;
    naive_conv(x, B, H, W, C, w, bias, 3, 3, F, 1, same, yref);
    cnnviz_workspace *w0 = test_workspace(m, B, 1, 0, CNNVIZ_KEEP_ALL, 0, 0);
    const float *y = cnnviz_forward(w0, x, B, &err);
    size_t at = 0;
    for (size_t i = 0; i < nout; i++) yref[i] = relu && yref[i] < 0.0f ? 0.0f : yref[i];
    double d = max_rel_diff(y, yref, nout, 1.0, &at);
    ck_assert_msg(d < 2e-5, "%dx%dx%d F%d B%d: output off by %g at %zu", H, W, C, F, B, d, at);
    cnnviz_workspace *ws = test_workspace(m, B, 1, -1, CNNVIZ_KEEP_ALL, 1, 1);
    (void)cnnviz_forward(ws, x, B, &err);
    cnnviz_model_zero_grads(m);
    ck_assert_int_eq(cnnviz_backward(ws, dy, dx, &err), CNNVIZ_OK);
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int f = 0; f < F; f++) {
                    size_t o = (((size_t)b * OH + oy) * OW + ox) * F + f;
                    double g = relu && !(y[o] > 0.0f) ? 0.0 : dy[o];
                    db[f] += g;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = oy + ky - pt, ix = ox + kx - pl;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            for (int c = 0; c < C; c++) {
                                size_t xi = (((size_t)b * H + iy) * W + ix) * C + c;
                                size_t wi = (((size_t)ky * 3 + kx) * C + c) * F + f;
                                dw[wi] += g * x[xi];
                                dxr[xi] += g * w[wi];
                            }
                        }
                }
    for (size_t i = 0; i < nw; i++) dwf[i] = (float)dw[i];
    for (int f = 0; f < F; f++) dbf[f] = (float)db[f];
    for (size_t i = 0; i < nin; i++) dxf[i] = (float)dxr[i];
    d = max_rel_diff(m->grads + l->param[0].offset, dwf, nw, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d F%d B%d: kernel gradient off by %g at %zu", H, W, C, F, B, d, at);
    d = max_rel_diff(m->grads + l->param[1].offset, dbf, (size_t)F, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d F%d B%d: bias gradient off by %g at %zu", H, W, C, F, B, d, at);
    d = max_rel_diff(dx, dxf, nin, 1.0, &at);
    ck_assert_msg(d < 5e-5, "%dx%dx%d F%d B%d: input gradient off by %g at %zu", H, W, C, F, B, d, at);
    cnnviz_workspace_free(ws);
    cnnviz_workspace_free(w0);
    cnnviz_model_free(m);
    free(x), free(dy), free(dx), free(yref), free(dwf), free(dbf), free(dxf), free(dw), free(db), free(dxr);
}

static void winograd3_body(void) {
    winograd3_case(5, 5, 64, 64, 0, 1, 0, 3);  /* the seed net's conv2d_2, one micro-batch */
    winograd3_case(5, 5, 64, 64, 0, 1, 0, 20); /* depth-first micro-batches of 8 */
    winograd3_case(5, 5, 16, 48, 0, 0, 1, 40); /* five chunks, four partitions; 48 maps */
    winograd3_case(7, 5, 16, 32, 0, 0, 0, 3);  /* 5x3 output: a block cut by the edge */
    winograd3_case(3, 3, 16, 16, 1, 1, 0, 2);  /* same padding */
}

START_TEST(winograd3_training_matches_reference) {
    ck_assert(cnnviz_winograd3_usable(3, 3, 1, 1, 64, 64, 3, 3));
    ck_assert(cnnviz_winograd3_usable(3, 3, 1, 1, 16, 32, 5, 3));
    ck_assert(!cnnviz_winograd3_usable(3, 3, 1, 1, 64, 64, 2, 2)); /* 25 products for 4 outputs */
    ck_assert(!cnnviz_winograd3_usable(3, 3, 1, 1, 8, 64, 3, 3));
    both_vector_widths(winograd3_body);
}
END_TEST

/* The first Conv2D(relu) and the MaxPooling2D after it run as one pass in
 * training (cnnviz_conv_pool_forward/backward, where the CPU has AVX-512 or AVX2):
 * against the same net with a Dropout(0) after the pooling, which keeps
 * the driver on its layer-by-layer path where each layer runs alone. The
 * pooled output and the conv's output (in a plan that keeps it) are the
 * same bits; the gradients are the same sums in another order (measured
 * against max(|value|, 1): sums of ~400 terms of size ~0.5, where a
 * dropped term shows as ~0.1); an input gradient asked of a fused pass is
 * the same too. */
static cnnviz_model *conv_pool_net(int dropout, cnnviz_error *err) {
    cnnviz_shape in = cnnviz_shape3(12, 10, 1);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_layer_spec cs = conv_spec(64, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_RELU);
    cnnviz_layer_spec ps = pool_spec(1, 2, 0, CNNVIZ_PAD_VALID);
    cnnviz_layer_spec fs = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    cnnviz_layer_spec ds = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    ds.units = 7;
    ck_assert_int_eq(cnnviz_model_add(m, &cs, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_add(m, &ps, err), CNNVIZ_OK);
    if (dropout) {
        cnnviz_layer_spec d = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
        d.rate = 0.0f;
        ck_assert_int_eq(cnnviz_model_add(m, &d, err), CNNVIZ_OK);
    }
    ck_assert_int_eq(cnnviz_model_add(m, &fs, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_add(m, &ds, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m, err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, err), CNNVIZ_OK);
    return m;
}

static void conv_pool_fused_matches_separate_body(void) {
    cnnviz_error err;
    enum { B = 21 };
    cnnviz_model *a = conv_pool_net(0, &err), *b = conv_pool_net(1, &err);
    ck_assert_int_eq(a->num_params, b->num_params);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 77, 1);
    for (size_t j = 0; j < a->num_params; j++) a->params[j] = 0.5f * (cnnviz_rng_uniform(&rng) - 0.4f);
    memcpy(b->params, a->params, a->num_params * sizeof(float));
    size_t nin = (size_t)B * 12 * 10, nconv = (size_t)B * 10 * 8 * 64, npool = nconv / 4;
    float *x = malloc(nin * sizeof *x), *dy = malloc((size_t)B * 7 * sizeof *dy);
    float *dxa = malloc(nin * sizeof *dxa), *dxb = malloc(nin * sizeof *dxb);
    for (size_t i = 0; i < nin; i++) x[i] = cnnviz_rng_uniform(&rng);
    for (int i = 0; i < B * 7; i++) dy[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
    for (int want_dx = 0; want_dx < 2; want_dx++) {
        /* training's plan (keep only the last output, no input gradient)
         * runs a's first conv and pooling as one; b's cannot be */
        cnnviz_keep keep = want_dx ? CNNVIZ_KEEP_ALL : CNNVIZ_KEEP_LAST;
        cnnviz_workspace *wa = test_workspace(a, B, 1, -1, keep, want_dx, 1);
        cnnviz_workspace *wb = test_workspace(b, B, 1, -1, keep, want_dx, 1);
        if (!want_dx && cnnviz_conv_pool_fusable(a->layers[0], a->layers[1]))
            ck_assert_int_eq(cnnviz_workspace_step(wa, 0)->kind, CNNVIZ_STEP_CONV_POOL);
        ck_assert_int_ne(cnnviz_workspace_step(wb, 0)->kind, CNNVIZ_STEP_CONV_POOL);
        (void)cnnviz_forward(wa, x, B, &err);
        (void)cnnviz_forward(wb, x, B, &err);
        ck_assert_int_eq(memcmp(wa->out[1], wb->out[1], npool * sizeof(float)), 0);
        if (want_dx) /* a plan that keeps every output makes the conv's */
            ck_assert_int_eq(memcmp(cnnviz_layer_output(wa, 0, &err), cnnviz_layer_output(wb, 0, &err),
                                    nconv * sizeof(float)), 0);
        cnnviz_model_zero_grads(a);
        cnnviz_model_zero_grads(b);
        ck_assert_int_eq(cnnviz_backward(wa, dy, want_dx ? dxa : NULL, &err), CNNVIZ_OK);
        ck_assert_int_eq(cnnviz_backward(wb, dy, want_dx ? dxb : NULL, &err), CNNVIZ_OK);
        cnnviz_workspace_free(wa);
        cnnviz_workspace_free(wb);
        size_t at = 0;
        double d = max_rel_diff(a->grads, b->grads, a->num_params, 1.0, &at);
        ck_assert_msg(d < 1e-5, "gradients (input gradient %s) off by %g at %zu", want_dx ? "wanted" : "not wanted", d,
                      at);
        if (want_dx) ck_assert_msg(max_rel_diff(dxa, dxb, nin, 1.0, NULL) < 1e-5, "input gradient");
    }
    double s = 0.0;
    for (size_t j = 0; j < (size_t)9 * 64; j++) s += fabs(a->grads[a->layers[0]->param[0].offset + j]);
    ck_assert_msg(s > 0.0, "the conv's kernel gradient is all zero");
    cnnviz_model_free(a);
    cnnviz_model_free(b);
    free(x), free(dy), free(dxa), free(dxb);
}

START_TEST(conv_pool_fused_matches_separate) {
    both_vector_widths(conv_pool_fused_matches_separate_body);
}
END_TEST

/* The fused pass in 16-float (AVX-512) and 8-float (AVX2) vectors: the
 * same pooled values, window positions and kernel and bias gradients, bit
 * for bit (conv_pool_fused_matches_separate checks their values). */
START_TEST(conv_pool_widths_same_bits) {
    enum { B = 5, NIN = B * 12 * 10, NPOOL = B * 5 * 4 * 64, NW = 9 * 64 };
    cnnviz_error err;
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 91, 1);
    float x[NIN], dp[NPOOL];
    for (int i = 0; i < NIN; i++) x[i] = cnnviz_rng_uniform(&rng);
    for (int i = 0; i < NPOOL; i++) dp[i] = 2.0f * cnnviz_rng_uniform(&rng) - 1.0f;
    static float pooled[2][NPOOL], gw[2][NW], gb[2][64];
    static int codes[2][NPOOL];
    for (int wide = 1; wide >= 0; wide--) {
        set_vectors(wide, 1);
        cnnviz_model *m = conv_pool_net(0, &err);
        ck_assert_msg(cnnviz_conv_pool_fusable(m->layers[0], m->layers[1]), "not fused (wide %d)", wide);
        cnnviz_rng_seed(&rng, 92, 1);
        for (size_t j = 0; j < m->num_params; j++) m->params[j] = 0.5f * (cnnviz_rng_uniform(&rng) - 0.4f);
        cnnviz_conv_pool_forward(m->layers[0], x, pooled[wide], codes[wide], B);
        memset(gw[wide], 0, sizeof gw[wide]);
        memset(gb[wide], 0, sizeof gb[wide]);
        cnnviz_conv_pool_backward(m->layers[0], x, pooled[wide], codes[wide], dp, B, gw[wide], gb[wide]);
        cnnviz_model_free(m);
    }
    set_vectors(-1, -1);
    ck_assert_msg(memcmp(pooled[0], pooled[1], sizeof pooled[0]) == 0, "pooled values differ");
    ck_assert_msg(memcmp(codes[0], codes[1], sizeof codes[0]) == 0, "window positions differ");
    ck_assert_msg(memcmp(gw[0], gw[1], sizeof gw[0]) == 0, "kernel gradients differ");
    ck_assert_msg(memcmp(gb[0], gb[1], sizeof gb[0]) == 0, "bias gradients differ");
    int nonzero = 0, spread = 0;
    for (int j = 0; j < NW; j++) nonzero += gw[0][j] != 0.0f;
    for (int i = 0; i < NPOOL; i++) spread |= 1 << (codes[0][i] & 3);
    ck_assert_msg(nonzero > NW / 2 && spread == 15, "a degenerate case: %d nonzero gradients, positions %x", nonzero,
                  spread);
}
END_TEST

static void pool_gradients_body(void) {
    struct {
        int k, s, H, W;
        cnnviz_padding pad;
    } cases[] = {
        {2, 0, 6, 6, CNNVIZ_PAD_VALID}, {2, 0, 7, 5, CNNVIZ_PAD_VALID}, {2, 0, 7, 5, CNNVIZ_PAD_SAME},
        {3, 2, 7, 7, CNNVIZ_PAD_SAME},  {3, 1, 6, 6, CNNVIZ_PAD_VALID}, {4, 0, 9, 9, CNNVIZ_PAD_SAME},
        {4, 2, 9, 8, CNNVIZ_PAD_VALID}, {2, 3, 8, 7, CNNVIZ_PAD_VALID},
    };
    for (int is_max = 0; is_max < 2; is_max++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            /* 3 channels: the scalar path; 16: the vector path */
            for (int C = 3; C <= 16; C += 13) {
                cnnviz_layer_spec spec = pool_spec(is_max, cases[c].k, cases[c].s, cases[c].pad);
                rig r;
                rig_make(&r, cnnviz_shape3(cases[c].H, cases[c].W, C), &spec, 2, c + 1);
                rig_distinct_inputs(&r);
                check_gradients(&r, 1);
                rig_free(&r);
            }
        }
}

START_TEST(pool_gradients) {
    both_vector_widths(pool_gradients_body);
}
END_TEST

START_TEST(activation_layer_gradients) {
    for (cnnviz_activation a = CNNVIZ_ACT_LINEAR; a <= CNNVIZ_ACT_LEAKY_RELU; a++) {
        cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
        spec.activation = a;
        spec.alpha = a == CNNVIZ_ACT_ELU ? 0.7f : 0.3f;
        rig r;
        rig_make(&r, cnnviz_shape3(3, 2, 5), &spec, 2, 40 + a);
        /* keep inputs at least 0.1 away from the kink at 0 */
        for (size_t i = 0; i < 2 * r.in_n; i++) r.x[i] = r.x[i] < 0 ? r.x[i] - 0.1f : r.x[i] + 0.1f;
        check_gradients(&r, 1);
        rig_free(&r);
    }
}
END_TEST

START_TEST(batchnorm_forward_and_gradients) {
    cnnviz_shape shapes[2] = {cnnviz_shape1(6), cnnviz_shape3(3, 4, 5)};
    for (int si = 0; si < 2; si++)
        for (int variant = 0; variant < 3; variant++) {
            cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_BATCHNORM);
            spec.bn_center = variant != 1;
            spec.bn_scale = variant != 2;
            spec.epsilon = 1e-3f;
            rig r;
            rig_make(&r, shapes[si], &spec, 3, 50 + variant);
            cnnviz_layer *l = r.m->layers[0];
            ck_assert_int_eq(l->nparam, 2 + spec.bn_center + spec.bn_scale);
            int k = 0;
            const float *gamma = spec.bn_scale ? l->param[k++].data : NULL;
            const float *beta = spec.bn_center ? l->param[k++].data : NULL;
            ck_assert_str_eq(l->param[k].name, "moving_mean");
            ck_assert_int_eq(l->param[k].trainable, 0);
            const float *mean = l->param[k++].data;
            ck_assert_str_eq(l->param[k].name, "moving_variance");
            const float *var = l->param[k].data;
            const float *y = rig_forward(&r, 0, 1);
            int C = shapes[si].dim[shapes[si].rank - 1];
            for (size_t i = 0; i < 3 * r.in_n; i++) {
                int c = (int)(i % (size_t)C);
                double want =
                    (r.x[i] - mean[c]) / sqrt(var[c] + 1e-3) * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0);
                ck_assert_msg(fabs(y[i] - want) < 1e-5, "bn[%zu] = %g, want %g", i, (double)y[i], want);
            }
            check_gradients(&r, 1);
            rig_free(&r);
        }
}
END_TEST

START_TEST(dropout_inference_and_training) {
    cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
    spec.rate = 0.4f;
    rig r;
    rig_make(&r, cnnviz_shape1(1000), &spec, 2, 60);
    const float *y = rig_forward(&r, 0, 1);
    ck_assert_int_eq(memcmp(y, r.x, 2000 * sizeof(float)), 0);
    /* an inference plan's backward is the identity */
    float *dx = malloc(2000 * sizeof(float));
    rig_backward(&r, r.wr, dx);
    ck_assert_int_eq(memcmp(dx, r.wr, 2000 * sizeof(float)), 0);

    y = rig_forward(&r, 1, 1);
    int dropped = 0;
    for (int i = 0; i < 2000; i++) {
        if (y[i] == 0.0f)
            dropped++;
        else
            ck_assert_float_eq_tol(y[i], r.x[i] / 0.6f, 1e-6);
    }
    ck_assert_int_gt(dropped, 700); /* 800 expected */
    ck_assert_int_lt(dropped, 900);
    rig_backward(&r, r.wr, dx);
    for (int i = 0; i < 2000; i++) ck_assert_float_eq_tol(dx[i], y[i] == 0.0f ? 0.0f : r.wr[i] / 0.6f, 1e-6);
    free(dx);
    /* the finite-difference check replays the mask */
    check_gradients(&r, 1);
    rig_free(&r);
}
END_TEST

START_TEST(shape_layers) {
    cnnviz_error err;
    /* Flatten keeps (h*W + w)*C + c order */
    cnnviz_layer_spec spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    rig r;
    rig_make(&r, cnnviz_shape3(2, 3, 4), &spec, 2, 70);
    ck_assert_int_eq(r.m->layers[0]->out_shape.rank, 1);
    ck_assert_int_eq(r.m->layers[0]->out_shape.dim[0], 24);
    const float *y = rig_forward(&r, 0, 1);
    ck_assert_int_eq(memcmp(y, r.x, 48 * sizeof(float)), 0);
    check_gradients(&r, 1);
    rig_free(&r);

    spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_RESHAPE);
    spec.target = cnnviz_shape3(4, -1, 1);
    rig_make(&r, cnnviz_shape1(12), &spec, 2, 71);
    ck_assert_int_eq(r.m->layers[0]->out_shape.dim[1], 3);
    check_gradients(&r, 1);
    rig_free(&r);

    cnnviz_shape in = cnnviz_shape1(12);
    cnnviz_model *m = cnnviz_model_new(&in);
    spec.target = cnnviz_shape3(5, 5, 1);
    ck_assert_int_eq(cnnviz_model_add(m, &spec, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "cannot reshape (12) into (5, 5, 1)");
    cnnviz_model_free(m);

    spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_RESCALING);
    spec.scale = 1.0f / 255.0f;
    spec.offset = -0.5f;
    rig_make(&r, cnnviz_shape3(2, 2, 1), &spec, 2, 72);
    y = rig_forward(&r, 0, 1);
    for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(y[i], r.x[i] / 255.0f - 0.5f, 1e-7);
    check_gradients(&r, 1);
    rig_free(&r);

    spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_IDENTITY);
    rig_make(&r, cnnviz_shape3(2, 2, 3), &spec, 2, 73);
    y = rig_forward(&r, 0, 1);
    ck_assert_int_eq(memcmp(y, r.x, 24 * sizeof(float)), 0);
    check_gradients(&r, 1);
    rig_free(&r);
}
END_TEST

START_TEST(constructor_errors) {
    cnnviz_error err;
    cnnviz_shape in = cnnviz_shape1(10);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_layer_spec spec = conv_spec(4, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_RELU);
    ck_assert_int_eq(cnnviz_model_add(m, &spec, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "conv2d needs an (h, w, c) input, not (10)");
    spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    spec.units = 0;
    ck_assert_int_eq(cnnviz_model_add(m, &spec, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "dense units must be positive, not 0");
    spec = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
    spec.rate = 1.0f;
    ck_assert_int_eq(cnnviz_model_add(m, &spec, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "dropout rate 1 is not in [0, 1)");
    cnnviz_model_free(m);
    /* a window larger than a valid input leaves nothing */
    in = cnnviz_shape3(2, 2, 1);
    m = cnnviz_model_new(&in);
    spec = conv_spec(4, 3, 1, CNNVIZ_PAD_VALID, CNNVIZ_ACT_RELU);
    ck_assert_int_eq(cnnviz_model_add(m, &spec, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "layer 'conv2d' (Conv2D) has an empty output for input (2, 2, 1)");
    cnnviz_model_free(m);
}
END_TEST

static Suite *make_layers_suite(void) {
    Suite *s = suite_create("layers");
    TCase *t = tcase_create("forward");
    tcase_add_test(t, conv_forward_matches_reference);
    tcase_add_test(t, winograd_chooses_geometry);
    tcase_add_test(t, conv_widths_same_bits);
    tcase_add_test(t, conv_same_hand_computed);
    tcase_add_test(t, conv_same_even_kernel_pads_bottom_right);
    tcase_add_test(t, pool_forward_matches_reference);
    tcase_add_test(t, pool_same_hand_computed);
    tcase_add_test(t, maxpool_same_ignores_padding);
    tcase_add_test(t, maxpool_ties_take_first);
    tcase_add_test(t, activations_forward_values);
    tcase_add_test(t, shape_layers);
    tcase_add_test(t, constructor_errors);
    suite_add_tcase(s, t);
    t = tcase_create("gradients");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, conv_gradients);
    tcase_add_test(t, conv_activation_gradients);
    tcase_add_test(t, dense_forward_and_gradients);
    tcase_add_test(t, pool_gradients);
    tcase_add_test(t, relu_pool_backward_fused);
    tcase_add_test(t, sparse_conv_backward_matches_reference);
    tcase_add_test(t, winograd3_training_matches_reference);
    tcase_add_test(t, conv_pool_fused_matches_separate);
    tcase_add_test(t, conv_pool_widths_same_bits);
    tcase_add_test(t, activation_layer_gradients);
    tcase_add_test(t, batchnorm_forward_and_gradients);
    tcase_add_test(t, dropout_inference_and_training);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return run_suite(make_layers_suite()); }
