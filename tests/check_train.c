// labels: unit data
/* Training math: the loss and its fused gradient, regularizers, schedules and
 * optimizers against Keras' formulas; the whole loss gradient against finite
 * differences; three RMSprop+momentum+L2+InverseTimeDecay steps of the seed
 * network against the float64 reference dump (every activation, gradient and
 * weight, the way llm.c's test_gpt2.c checks every tensor); determinism and
 * the NaN stop of the training loop. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/model.h"
#include "cnnviz/train.h"
#include "layers/layers.h"
#include "train/train-impl.h"
#include "testutil.h"

/* --- helpers ---------------------------------------------------------------- */

/* Read a whole dataset of a reference file as float (HDF5 converts int and
 * float64 datasets); returns malloc'd data and the element count. */
static float *h5_floats(hid_t file, const char *name, size_t *count) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "reference dataset %s is missing", name);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    ck_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    *count = (size_t)n;
    return buf;
}

static double h5_scalar(hid_t file, const char *name) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "reference dataset %s is missing", name);
    double v = 0;
    ck_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
    H5Dclose(d);
    return v;
}

static cnnviz_param *find_param(cnnviz_model *m, const char *layer, const char *name) {
    int i = cnnviz_model_find_layer(m, layer);
    ck_assert_msg(i >= 0, "layer %s not in the model", layer);
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, i, &info);
    for (int k = 0; k < info.nparam; k++)
        if (strcmp(info.param[k].name, name) == 0) return &info.param[k];
    ck_abort_msg("layer %s has no %s", layer, name);
    return NULL;
}

static cnnviz_model *spec_model(const char *spec, cnnviz_shape in) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_msg(cnnviz_model_from_spec(spec, &in, &m, &err) == CNNVIZ_OK, "%s", err.msg);
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    return m;
}

/* --- loss ------------------------------------------------------------------- */

START_TEST(test_xent_value_gradient_and_clipping) {
    /* row 0: label 2 with p = 0.7; row 1: label 0 with p = 0 (clipped to 1e-7) */
    const float p[6] = {0.1f, 0.2f, 0.7f, 0.0f, 1.0f, 0.0f};
    const uint8_t y[2] = {2, 0};
    float d[6];
    int correct = 0;
    double sum = cnnviz_softmax_xent(p, y, 2, 3, d, &correct);
    ck_assert_double_eq_tol(sum, -log(0.7f) - log(1e-7f), 1e-6);
    ck_assert_int_eq(correct, 1);
    const float want[6] = {0.05f, 0.1f, -0.15f, -0.5f, 0.5f, 0.0f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq_tol(d[i], want[i], 1e-7f);
    /* p = 1 is clipped to 1 - 1e-7, so the loss is not exactly 0 */
    const float one[2] = {1.0f, 0.0f};
    const uint8_t y0 = 0;
    ck_assert_double_gt(cnnviz_softmax_xent(one, &y0, 1, 2, NULL, NULL), 0.0);
}
END_TEST

/* --- regularizers ------------------------------------------------------------- */

START_TEST(test_regularizers) {
    cnnviz_model *m = spec_model("F-D2", cnnviz_shape3(1, 1, 2));
    ck_assert_int_eq(cnnviz_regularize_dense_kernels(m, 0.01f, 0.001f), 1);
    cnnviz_param *k = find_param(m, "dense", "kernel"), *b = find_param(m, "dense", "bias");
    const float w[4] = {1.0f, -2.0f, 0.0f, 3.0f};
    memcpy(k->data, w, sizeof w);
    b->data[0] = 5.0f; /* biases are not regularized */
    cnnviz_model_zero_grads(m);
    double want = 0.01 * 6.0 + 0.001 * 14.0;
    ck_assert_double_eq_tol(cnnviz_regularization_loss(m), want, 1e-9);
    ck_assert_double_eq_tol(cnnviz_regularization_apply(m), want, 1e-9);
    const float g[4] = {0.002f + 0.01f, -0.004f - 0.01f, 0.0f, 0.006f + 0.01f};
    for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(k->grad[i], g[i], 1e-8f);
    ck_assert_float_eq(b->grad[0], 0.0f);
    cnnviz_model_free(m);
}
END_TEST

/* --- schedules ------------------------------------------------------------------ */

START_TEST(test_schedules) {
    cnnviz_schedule s = {CNNVIZ_DECAY_INVERSE_TIME, 0.001, 0.001, 1.0, 0};
    ck_assert_float_eq(cnnviz_schedule_lr(&s, 0), 0.001f);
    ck_assert_float_eq_tol(cnnviz_schedule_lr(&s, 1000), 0.0005f, 1e-10f);
    s = (cnnviz_schedule){CNNVIZ_DECAY_INVERSE_TIME, 0.1, 0.5, 10.0, 1};
    ck_assert_float_eq_tol(cnnviz_schedule_lr(&s, 19), 0.1f / 1.5f, 1e-8f); /* floor(1.9) = 1 */
    s = (cnnviz_schedule){CNNVIZ_DECAY_EXPONENTIAL, 0.1, 0.96, 100.0, 0};
    ck_assert_float_eq_tol(cnnviz_schedule_lr(&s, 50), (float)(0.1 * pow(0.96, 0.5)), 1e-8f);
    s.staircase = 1;
    ck_assert_float_eq_tol(cnnviz_schedule_lr(&s, 250), (float)(0.1 * 0.96 * 0.96), 1e-8f);
    s.kind = CNNVIZ_DECAY_NONE;
    ck_assert_float_eq(cnnviz_schedule_lr(&s, 12345), 0.1f);
}
END_TEST

/* --- optimizers ----------------------------------------------------------------- */

/* Runs `steps` updates of the 6 weights of an F-D2 model with gradient
 * g = w + 0.1*(j+1) (a quadratic bowl) and returns weight 0 after each. */
static void run_optimizer(const cnnviz_optimizer_config *c, float w0, int steps, float *w_after) {
    cnnviz_model *m = spec_model("F-D2", cnnviz_shape3(1, 1, 2));
    cnnviz_error err;
    cnnviz_optimizer *o = cnnviz_optimizer_new(m, c, &err);
    ck_assert_ptr_nonnull(o);
    float *w = cnnviz_model_params(m), *g = cnnviz_model_grads(m);
    ck_assert_int_eq((int)cnnviz_model_num_params(m), 6);
    for (int j = 0; j < 6; j++) w[j] = w0;
    for (int t = 0; t < steps; t++) {
        for (int j = 0; j < 6; j++) g[j] = w[j] + 0.1f * (float)(j == 0);
        cnnviz_optimizer_step(o);
        w_after[t] = w[0];
    }
    ck_assert_int_eq((int)cnnviz_optimizer_iterations(o), steps);
    cnnviz_optimizer_free(o);
    cnnviz_model_free(m);
}

START_TEST(test_rmsprop_keras_docstring) {
    /* keras.optimizers.RMSprop's docstring: lr 0.1, var 10, loss var^2/2
     * -> 9.683772 after one step */
    cnnviz_model *m = spec_model("F-D2", cnnviz_shape3(1, 1, 2));
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    c.lr.initial = 0.1;
    cnnviz_optimizer *o = cnnviz_optimizer_new(m, &c, NULL);
    float *w = cnnviz_model_params(m), *g = cnnviz_model_grads(m);
    w[0] = 10.0f;
    g[0] = 10.0f;
    cnnviz_optimizer_step(o);
    ck_assert_float_eq_tol(w[0], 9.683772f, 2e-6f);
    cnnviz_optimizer_free(o);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(test_rmsprop_momentum_and_decay) {
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    c.momentum = 0.9;
    c.lr = (cnnviz_schedule){CNNVIZ_DECAY_INVERSE_TIME, 0.01, 0.5, 1.0, 0};
    float got[4];
    run_optimizer(&c, 1.0f, 4, got);
    /* the same recurrence in double, written out from Keras' rmsprop.py */
    double w = 1.0, v = 0.0, mom = 0.0;
    for (int t = 0; t < 4; t++) {
        double g = w + 0.1, lr = 0.01 / (1.0 + 0.5 * t);
        v = 0.9 * v + 0.1 * g * g;
        mom = 0.9 * mom + lr * g / sqrt(v + 1e-7);
        w -= mom;
        ck_assert_double_eq_tol(got[t], w, 1e-6);
    }
}
END_TEST

START_TEST(test_rmsprop_centered) {
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    c.centered = 1;
    float got[3];
    run_optimizer(&c, 1.0f, 3, got);
    double w = 1.0, v = 0.0, a = 0.0;
    for (int t = 0; t < 3; t++) {
        double g = w + 0.1;
        v = 0.9 * v + 0.1 * g * g;
        a = 0.9 * a + 0.1 * g;
        w -= 0.001 * g / sqrt(v - a * a + 1e-7);
        ck_assert_double_eq_tol(got[t], w, 1e-6);
    }
}
END_TEST

START_TEST(test_sgd_momentum_nesterov) {
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_SGD);
        c.momentum = 0.9;
        c.nesterov = nesterov;
        c.lr.initial = 0.1;
        float got[3];
        run_optimizer(&c, 1.0f, 3, got);
        double w = 1.0, vel = 0.0;
        for (int t = 0; t < 3; t++) {
            double g = w + 0.1;
            vel = 0.9 * vel - 0.1 * g;
            w += nesterov ? 0.9 * vel - 0.1 * g : vel;
            ck_assert_double_eq_tol(got[t], w, 1e-6);
        }
    }
    /* plain SGD: w -= lr*g */
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_SGD);
    float got[1];
    run_optimizer(&c, 1.0f, 1, got);
    ck_assert_float_eq_tol(got[0], 1.0f - 0.01f * 1.1f, 1e-7f);
}
END_TEST

START_TEST(test_adam_bias_correction) {
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_ADAM);
    c.lr.initial = 0.01;
    float got[5];
    run_optimizer(&c, 1.0f, 5, got);
    double w = 1.0, m = 0.0, v = 0.0;
    for (int t = 0; t < 5; t++) {
        double g = w + 0.1;
        double alpha = 0.01 * sqrt(1.0 - pow(0.999, t + 1)) / (1.0 - pow(0.9, t + 1));
        m += (g - m) * 0.1;
        v += (g * g - v) * 0.001;
        w -= m * alpha / (sqrt(v) + 1e-7);
        ck_assert_double_eq_tol(got[t], w, 1e-6);
    }
    /* the first Adam step moves every weight by about lr */
    ck_assert_double_eq_tol(got[0], 1.0 - 0.01, 1e-6);
}
END_TEST

START_TEST(test_optimizer_json) {
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    c.momentum = 0.9;
    c.lr = (cnnviz_schedule){CNNVIZ_DECAY_INVERSE_TIME, 0.001, 0.001, 1.0, 0};
    char *s = cnnviz_optimizer_config_json(&c);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "{\"name\":\"rmsprop\",\"learning_rate\":{\"module\":\"keras.optimizers.schedules\","
                        "\"class_name\":\"InverseTimeDecay\",\"config\":{\"initial_learning_rate\":0.001,"
                        "\"decay_steps\":1,\"decay_rate\":0.001,\"staircase\":false,\"name\":\"InverseTimeDecay\"}},"
                        "\"rho\":0.9,\"momentum\":0.9,\"epsilon\":1e-07,\"centered\":false}");
    free(s);
}
END_TEST

START_TEST(test_history_json) {
    cnnviz_epoch_stats h[2] = {{.epoch = 1, .loss = 0.5, .accuracy = 0.75, .val_loss = 0.25, .val_accuracy = 0.875},
                               {.epoch = 2, .loss = 0.125, .accuracy = 1, .val_loss = 0.0625, .val_accuracy = 1}};
    cnnviz_train_result res = {.epochs_done = 2, .history = h, .has_val = 1};
    char *s = cnnviz_history_json(&res);
    ck_assert_str_eq(s, "{\"loss\":[0.5,0.125],\"accuracy\":[0.75,1],\"val_loss\":[0.25,0.0625],"
                        "\"val_accuracy\":[0.875,1]}");
    free(s);
    res.has_val = 0;
    res.epochs_done = 1;
    s = cnnviz_history_json(&res);
    ck_assert_str_eq(s, "{\"loss\":[0.5],\"accuracy\":[0.75]}");
    free(s);
}
END_TEST

/* --- the whole loss gradient against finite differences -------------------------- */

/* mean loss (cross-entropy + regularizers) of m on (x, y) */
static double model_loss(cnnviz_model *m, cnnviz_workspace *ws, const float *x, const uint8_t *y, int B) {
    const float *p = cnnviz_forward(ws, x, B, NULL);
    cnnviz_shape os = cnnviz_model_output_shape(m);
    return cnnviz_softmax_xent(p, y, B, (int)cnnviz_shape_size(&os), NULL, NULL) / B +
           cnnviz_regularization_loss(m);
}

static void finite_difference_check(const char *spec, int softmax_layer) {
    cnnviz_shape in = cnnviz_shape3(7, 7, 1);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    if (!softmax_layer) {
        m = spec_model(spec, in);
    } else {
        /* the same net ending in a linear Dense + a Softmax layer, as Keras
         * files often have it */
        m = cnnviz_model_new(&in);
        cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
        s.filters = 3;
        s.activation = CNNVIZ_ACT_TANH;
        ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
        s = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
        ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
        s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
        s.units = 4;
        ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
        s = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
        s.activation = CNNVIZ_ACT_SOFTMAX;
        ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
        ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
        ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    }
    ck_assert_int_eq(cnnviz_check_trainable(m, &err), CNNVIZ_OK);
    /* L2 only: L1's kink at 0 would upset finite differences of weights near
     * zero (test_regularizers checks L1 exactly) */
    cnnviz_regularize_dense_kernels(m, 0.0f, 0.02f);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 11, 0);
    cnnviz_model_init_weights(m, &rng);
    float *w = cnnviz_model_params(m), *g = cnnviz_model_grads(m);
    size_t n = cnnviz_model_num_params(m);
    for (size_t j = 0; j < n; j++) w[j] += 0.05f * (cnnviz_rng_uniform(&rng) - 0.5f); /* biases non-zero */
    /* more samples than the driver's micro-batches, so its batched paths run too */
    enum { B = 19 };
    float x[B * 49];
    uint8_t y[B];
    for (int i = 0; i < B; i++) y[i] = (uint8_t)(i * 7 % 4);
    for (int i = 0; i < B * 49; i++) x[i] = cnnviz_rng_uniform(&rng);
    cnnviz_workspace_options o = cnnviz_workspace_options_init(B);
    o.training = o.weight_grads = 1;
    o.keep = CNNVIZ_KEEP_LAST;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    ck_assert_ptr_nonnull(ws);
    float *scratch = malloc(cnnviz_loss_scratch_floats(m, B) * sizeof *scratch);
    cnnviz_model_zero_grads(m);
    cnnviz_forward(ws, x, B, NULL);
    cnnviz_loss_backward(m, ws, y, B, scratch, NULL);
    cnnviz_regularization_apply(m);
    double worst = 0;
    for (size_t j = 0; j < n; j++) {
        /* central differences in float32 weights: h large enough that the
         * loss's float rounding (~1e-7) stays far below the difference */
        const float h = 1e-2f;
        float saved = w[j];
        w[j] = saved + h;
        double up = model_loss(m, ws, x, y, B);
        w[j] = saved - h;
        double down = model_loss(m, ws, x, y, B);
        w[j] = saved;
        double fd = (up - down) / (2.0 * h);
        double err_j = fabs(fd - g[j]) / fmax(fabs(fd), 1e-2);
        if (err_j > worst) worst = err_j;
        ck_assert_msg(err_j < 5e-3, "%s: weight %zu: analytic %g, finite difference %g", spec, j, (double)g[j], fd);
    }
    ck_assert_double_lt(worst, 5e-3);
    free(scratch);
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
}

START_TEST(test_gradient_finite_differences) {
    /* tanh keeps the loss smooth, so differences measure the math, not kinks */
    finite_difference_check("C3k3:tanh-A2-F-D5:tanh-D4", 0);
    finite_difference_check("C3k3s2same:tanh-F-D4", 0);
    finite_difference_check("softmax layer", 1);
}
END_TEST

/* --- the float64 reference: three full training steps of the seed net ---------- */

/* Two measures of how far a float32 tensor is from the float64 reference:
 * norm_err = max|a-b| / max|b|, relative to the tensor's scale, which is
 * (a ReLU output or a gradient entry that is nearly 0 beside the rest cannot
 * be relatively accurate in float32), and elem_err = max |a-b|/|b| over the
 * entries with |b| >= 1% of max|b|. The README's tolerance applies to both. */
static double check_tensor(const char *what, const float *got, hid_t f, const char *name, size_t n, double tol) {
    size_t count;
    float *want = h5_floats(f, name, &count);
    ck_assert_msg(count == n, "%s: %zu values, reference %zu", what, n, count);
    double scale = 0, diff = 0, elem = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        diff = fmax(diff, d);
        if (fabs(want[i]) >= 0.01 * scale) elem = fmax(elem, d / fabs(want[i]));
    }
    double e = scale > 0 ? diff / scale : diff;
    printf("  %-44s norm err %.2e  elem err %.2e%s\n", name, e, elem, tol > 1e-4 ? "  (kink tolerance)" : "");
    free(want);
    /* under the kink tolerance single entries may be far off (a flipped
     * unit's whole contribution); the tensor as a whole may not */
    return tol > 1e-4 ? e : fmax(e, elem);
}

/* ReLU's kink, max pooling's near-ties and float32. A conv unit whose exact
 * pre-activation is within float32 rounding of 0 (the reference has units at
 * -8e-9 where values are O(1)), or a pooling window whose two largest values
 * differ by about an ulp (0.14772805 against 0.14772807 in step 2), may come
 * out either way depending on the order a build sums in; when it flips, the
 * gradient of one unit appears in or vanishes from the weight gradients of
 * its layer and the layers below, which then differ from the float64
 * reference far more than rounding does (float32 PyTorch happens to get
 * step 2 right; a different but equally valid summation order does not).
 * So the test recomputes the conv stack in double from the current weights
 * and counts, per conv layer, the units within 1e-6 of the layer's largest
 * |z| of the kink and the windows of the pool after it whose top two values
 * are closer than that (exact ties are not counted: equal math gives equal
 * floats). Gradients of a conv layer with such units in it or above it must
 * still match, at 1e-2 of the tensor's largest entry instead of 1e-4 per
 * entry: a real bug is off by O(1). */
static void conv_stack_kinks(cnnviz_model *m, const float *images, int B, int kinks[8]) {
    int H = 28, W = 28, C = 1, nconv = 0;
    double *x = malloc((size_t)B * H * W * sizeof *x);
    for (size_t i = 0; i < (size_t)B * H * W; i++) x[i] = images[i];
    for (int li = 0; li < cnnviz_model_num_layers(m); li++) {
        cnnviz_layer_info info;
        cnnviz_model_layer_info(m, li, &info);
        if (info.type == CNNVIZ_LAYER_CONV2D) {
            const float *k = info.param[0].data, *b = info.param[1].data;
            int F = info.output_shape.dim[2], OH = H - 2, OW = W - 2;
            double *z = malloc((size_t)B * OH * OW * F * sizeof *z), zmax = 0;
            for (int n = 0; n < B; n++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                        for (int fo = 0; fo < F; fo++) {
                            double s = b[fo];
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++)
                                    for (int c = 0; c < C; c++)
                                        s += x[(((size_t)n * H + oy + ky) * W + ox + kx) * C + c] *
                                             k[((ky * 3 + kx) * C + c) * F + fo];
                            z[(((size_t)n * OH + oy) * OW + ox) * F + fo] = s;
                            zmax = fmax(zmax, fabs(s));
                        }
            kinks[nconv] = 0;
            for (size_t i = 0; i < (size_t)B * OH * OW * F; i++) {
                kinks[nconv] += fabs(z[i]) < 1e-6 * zmax;
                z[i] = z[i] > 0 ? z[i] : 0;
            }
            nconv++;
            free(x);
            x = z;
            H = OH, W = OW, C = F;
        } else if (info.type == CNNVIZ_LAYER_MAXPOOL2D) {
            int OH = H / 2, OW = W / 2;
            double *y = malloc((size_t)B * OH * OW * C * sizeof *y);
            for (int n = 0; n < B; n++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                        for (int c = 0; c < C; c++) {
                            double top = -1e300, second = -1e300;
                            for (int dy = 0; dy < 2; dy++)
                                for (int dx = 0; dx < 2; dx++) {
                                    double v = x[(((size_t)n * H + 2 * oy + dy) * W + 2 * ox + dx) * C + c];
                                    if (v > top) second = top, top = v;
                                    else if (v > second) second = v;
                                }
                            y[(((size_t)n * OH + oy) * OW + ox) * C + c] = top;
                            if (nconv && top > 0 && top > second && top - second < 1e-6 * top) kinks[nconv - 1]++;
                        }
            free(x);
            x = y;
            H = OH, W = OW;
        } else {
            break;
        }
    }
    free(x);
}

START_TEST(test_reference_three_steps) {
    const char *path = shared_path("data/reference/train_steps.h5");
    if (!path) {
        printf("SKIP: shared data 'data/reference/train_steps.h5' not found (set CNNVIZ_SHARED)\n");
        return;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    cnnviz_model *m = spec_model(CNNVIZ_SEED_ARCH, cnnviz_shape3(28, 28, 1));
    ck_assert_int_eq((int)cnnviz_model_num_params(m), 96844);
    ck_assert_int_eq(cnnviz_regularize_dense_kernels(m, 0.0f, 0.001f), 2);
    static const char *const layers[] = {"conv2d", "conv2d_1", "conv2d_2", "dense", "dense_1"};
    static const char *const tensors[] = {"kernel", "bias"};
    char name[256];
    for (int l = 0; l < 5; l++)
        for (int t = 0; t < 2; t++) {
            cnnviz_param *p = find_param(m, layers[l], tensors[t]);
            size_t n;
            snprintf(name, sizeof name, "init/%s/%s", layers[l], tensors[t]);
            float *v = h5_floats(f, name, &n);
            ck_assert_int_eq((int)n, (int)p->size);
            memcpy(p->data, v, n * sizeof *v);
            free(v);
        }
    size_t nimg, nlab;
    float *images = h5_floats(f, "batch/images", &nimg);
    float *labf = h5_floats(f, "batch/labels", &nlab);
    ck_assert_int_eq((int)nimg, 192 * 784);
    uint8_t labels[192];
    for (int i = 0; i < 192; i++) labels[i] = (uint8_t)labf[i];

    cnnviz_error err;
    /* training passes that keep every output, for the reference's activations */
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(64);
    wo.training = wo.weight_grads = 1;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &wo, &err);
    ck_assert_ptr_nonnull(ws);
    float *scratch = malloc(cnnviz_loss_scratch_floats(m, 64) * sizeof *scratch);
    cnnviz_optimizer_config c = cnnviz_optimizer_config_init(CNNVIZ_OPT_RMSPROP);
    /* the hyperparameters the reference file records */
    c.momentum = 0.9;
    c.lr = (cnnviz_schedule){CNNVIZ_DECAY_INVERSE_TIME, 0.001, 0.001, 1.0, 0};
    cnnviz_optimizer *o = cnnviz_optimizer_new(m, &c, &err);
    ck_assert_ptr_nonnull(o);

    /* every layer's output at the starting weights */
    cnnviz_forward(ws, images, 64, NULL);
    for (int i = 0; i < cnnviz_model_num_layers(m); i++) {
        cnnviz_layer_info info;
        cnnviz_model_layer_info(m, i, &info);
        snprintf(name, sizeof name, "step0/activations/%s", info.name);
        double e = check_tensor(info.name, cnnviz_layer_output(ws, i, NULL), f, name,
                                64 * cnnviz_shape_size(&info.output_shape), 1e-4);
        ck_assert_msg(e < 1e-4, "%s: error %g above 1e-4", name, e);
    }
    /* 1e-4, the README's tolerance, for every tensor; a tensor whose
     * gradient a ReLU-kink flip (see conv_stack_kinks) pushes past it is
     * checked at 1e-2 from then on, and so is everything in later steps,
     * which start from its slightly different weights */
    double tol_of[5][2], later_steps = 1e-4;
    for (int l = 0; l < 5; l++) tol_of[l][0] = tol_of[l][1] = 1e-4;
    for (int step = 0; step < 3; step++) {
        const float *x = images + (size_t)step * 64 * 784;
        int kinks[8] = {0};
        conv_stack_kinks(m, x, 64, kinks);
        printf("  step%d: conv units at ReLU's kink or a pooling near-tie: %d, %d, %d\n", step, kinks[0], kinks[1],
               kinks[2]);
        cnnviz_model_zero_grads(m);
        cnnviz_forward(ws, x, 64, NULL);
        double xent = cnnviz_loss_backward(m, ws, labels + step * 64, 64, scratch, NULL) / 64;
        double loss = xent + cnnviz_regularization_apply(m);
        snprintf(name, sizeof name, "step%d/cross_entropy", step);
        double want_xent = h5_scalar(f, name);
        snprintf(name, sizeof name, "step%d/loss", step);
        double want_loss = h5_scalar(f, name);
        printf("  step%d: loss %.9f (reference %.9f), cross-entropy %.9f (%.9f)\n", step, loss, want_loss, xent,
               want_xent);
        ck_assert_double_lt(fabs(loss - want_loss) / want_loss, 1e-5);
        ck_assert_double_lt(fabs(xent - want_xent) / want_xent, 1e-5);
        for (int l = 0; l < 5; l++)
            for (int t = 0; t < 2; t++) tol_of[l][t] = fmax(tol_of[l][t], later_steps);
        for (int l = 4; l >= 0; l--)
            for (int t = 0; t < 2; t++) {
                cnnviz_param *p = find_param(m, layers[l], tensors[t]);
                snprintf(name, sizeof name, "step%d/grads/%s/%s", step, layers[l], tensors[t]);
                double e = check_tensor(name, p->grad, f, name, p->size, tol_of[l][t]);
                int kinks_here_or_above = 0;
                for (int c = l; c < 3; c++) kinks_here_or_above += kinks[c];
                if (e >= tol_of[l][t] && tol_of[l][t] == 1e-4 && kinks_here_or_above) {
                    printf("  %s: %d units at a kink or near-tie in or above %s: 1e-2 for this tensor\n", name,
                           kinks_here_or_above, layers[l]);
                    tol_of[l][t] = later_steps = 1e-2;
                    e = check_tensor(name, p->grad, f, name, p->size, tol_of[l][t]);
                }
                ck_assert_msg(e < tol_of[l][t], "%s: error %g above %g", name, e, tol_of[l][t]);
            }
        cnnviz_optimizer_step(o);
        for (int l = 0; l < 5; l++)
            for (int t = 0; t < 2; t++) {
                cnnviz_param *p = find_param(m, layers[l], tensors[t]);
                snprintf(name, sizeof name, "step%d/weights_after/%s/%s", step, layers[l], tensors[t]);
                double e = check_tensor(name, p->data, f, name, p->size, tol_of[l][t]);
                ck_assert_msg(e < tol_of[l][t], "%s: error %g above %g", name, e, tol_of[l][t]);
            }
    }
    cnnviz_optimizer_free(o);
    free(scratch);
    free(images);
    free(labf);
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
    H5Fclose(f);
}
END_TEST

/* --- the training loop ------------------------------------------------------------- */

/* A synthetic 4-class set: class k has a bright 5x5 square in quadrant k of
 * a noisy 14x14 image, so a small net learns it in one or two epochs. */
typedef struct {
    uint8_t *pixels, *labels;
    cnnviz_labelled_set set;
} synthetic;

static void synthetic_make(synthetic *s, int count, uint64_t seed) {
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, seed, 3);
    s->pixels = malloc((size_t)count * 196);
    s->labels = malloc((size_t)count);
    for (int i = 0; i < count; i++) {
        uint8_t *im = s->pixels + (size_t)i * 196;
        int k = (int)cnnviz_rng_below(&rng, 4);
        s->labels[i] = (uint8_t)k;
        for (int j = 0; j < 196; j++) im[j] = (uint8_t)cnnviz_rng_below(&rng, 60);
        int y0 = (k / 2) * 7 + 1, x0 = (k % 2) * 7 + 1;
        for (int y = y0; y < y0 + 5; y++)
            for (int x = x0; x < x0 + 5; x++) im[y * 14 + x] = (uint8_t)(180 + cnnviz_rng_below(&rng, 76));
    }
    s->set = (cnnviz_labelled_set){s->pixels, s->labels, count};
}

static void synthetic_free(synthetic *s) {
    free(s->pixels);
    free(s->labels);
}

static const char *const small_arch = "C6k3-P2-F-D16-Dr0.25-D4";

/* Train a fresh small net (weights from seed) and return it. */
static cnnviz_model *train_small(const cnnviz_train_config *cfg, const synthetic *train, const synthetic *val,
                                 cnnviz_status *st, cnnviz_train_result *res, cnnviz_error *err) {
    cnnviz_model *m = spec_model(small_arch, cnnviz_shape3(14, 14, 1));
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, cfg->seed, 0);
    cnnviz_model_init_weights(m, &rng);
    *st = cnnviz_train(m, cfg, &train->set, val ? &val->set : NULL, res, err);
    return m;
}

static int epochs_seen;
static int count_epochs(void *ctx, const cnnviz_epoch_stats *s) {
    (void)ctx;
    epochs_seen = s->epoch;
    return 0;
}

START_TEST(test_train_learns_and_records) {
    synthetic train, val;
    synthetic_make(&train, 600, 1);
    synthetic_make(&val, 200, 2);
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cfg.epochs = 3;
    cfg.batch = 32; /* 600 = 18*32 + 24: the last partial batch is kept */
    cfg.on_epoch = count_epochs;
    cnnviz_train_result res;
    cnnviz_error err;
    cnnviz_status st;
    cnnviz_model *m = train_small(&cfg, &train, &val, &st, &res, &err);
    ck_assert_msg(st == CNNVIZ_OK, "%s", err.msg);
    ck_assert_int_eq(res.epochs_done, 3);
    ck_assert_int_eq(epochs_seen, 3);
    ck_assert_int_eq((int)res.steps, 3 * 19);
    ck_assert_double_lt(res.history[2].loss, res.history[0].loss);
    ck_assert_double_gt(res.history[2].val_accuracy, 0.9);
    double loss, acc;
    ck_assert_int_eq(cnnviz_evaluate_set(m, &val.set, cfg.scale, 0, &loss, &acc, &err), CNNVIZ_OK);
    /* another batch size, the same numbers up to float rounding; val_loss
     * would carry the regularizers, there are none here */
    ck_assert_double_eq_tol(acc, res.history[2].val_accuracy, 0.011);
    ck_assert_double_eq_tol(loss, res.history[2].val_loss, 1e-4);

    ck_assert_int_eq(cnnviz_train_record_meta(m, &cfg, &res, small_arch, &err), CNNVIZ_OK);
    ck_assert_str_eq(cnnviz_model_meta(m, "cnnviz_arch"), small_arch);
    ck_assert_str_eq(cnnviz_model_meta(m, "cnnviz_seed"), "1");
    const char *h = cnnviz_model_meta(m, "cnnviz_history");
    ck_assert_ptr_nonnull(strstr(h, "\"val_accuracy\":["));
    ck_assert_ptr_nonnull(strstr(cnnviz_model_meta(m, "cnnviz_optimizer"), "\"name\":\"rmsprop\""));
    ck_assert_int_eq(cnnviz_model_has_input_scale(m), 1);
    cnnviz_train_result_free(&res);
    cnnviz_model_free(m);
    synthetic_free(&train);
    synthetic_free(&val);
}
END_TEST

START_TEST(test_train_deterministic) {
    synthetic train;
    synthetic_make(&train, 200, 5);
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cfg.epochs = 2;
    cfg.batch = 48;
    cfg.seed = 77;
    cfg.opt.momentum = 0.9;
    cnnviz_train_result r1, r2, r3;
    cnnviz_error err;
    cnnviz_status st;
    cnnviz_model *a = train_small(&cfg, &train, NULL, &st, &r1, &err);
    ck_assert_int_eq(st, CNNVIZ_OK);
    cnnviz_model *b = train_small(&cfg, &train, NULL, &st, &r2, &err);
    ck_assert_int_eq(st, CNNVIZ_OK);
    size_t n = cnnviz_model_num_params(a);
    /* bit-identical, Dropout masks and shuffles included */
    ck_assert_int_eq(memcmp(cnnviz_model_params(a), cnnviz_model_params(b), n * sizeof(float)), 0);
    ck_assert(r1.history[1].loss == r2.history[1].loss);
    /* another shuffle/Dropout seed with the same starting weights gives other weights */
    cfg.seed = 78;
    cnnviz_model *c = spec_model(small_arch, cnnviz_shape3(14, 14, 1));
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 77, 0);
    cnnviz_model_init_weights(c, &rng);
    ck_assert_int_eq(cnnviz_train(c, &cfg, &train.set, NULL, &r3, &err), CNNVIZ_OK);
    ck_assert_int_ne(memcmp(cnnviz_model_params(a), cnnviz_model_params(c), n * sizeof(float)), 0);
    cnnviz_train_result_free(&r1);
    cnnviz_train_result_free(&r2);
    cnnviz_train_result_free(&r3);
    cnnviz_model_free(a);
    cnnviz_model_free(b);
    cnnviz_model_free(c);
    synthetic_free(&train);
}
END_TEST

/* The seed network trained with the AVX-512 kernels and with the AVX2 ones
 * (8-float vectors, the products' portable code): bit-identical weights,
 * so a model trained on either kind of CPU is the same file. Random
 * 28x28 images and labels, 4 steps of 64 and a partial one, RMSprop with
 * momentum, L2 on the Dense kernels. (On a CPU without AVX-512 both runs
 * take the AVX2 kernels.) */
START_TEST(test_train_same_bits_avx512_and_avx2) {
    enum { N = 300 };
    static const char *const seed_arch = "C32k3-P2-C64k3-P2-C64k3-F-D70-D10";
    uint8_t *pixels = malloc((size_t)N * 784), labels[N];
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 5, 3);
    for (size_t i = 0; i < (size_t)N * 784; i++) pixels[i] = (uint8_t)cnnviz_rng_below(&rng, 256);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)cnnviz_rng_below(&rng, 10);
    cnnviz_labelled_set set = {pixels, labels, N};
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cfg.epochs = 1;
    cfg.opt.momentum = 0.9;
    cnnviz_model *m[2];
    double loss[2];
    for (int wide = 1; wide >= 0; wide--) {
        cnnviz_force_wide_vectors(wide);
        cnnviz_force_avx2_vectors(1);
        m[wide] = spec_model(seed_arch, cnnviz_shape3(28, 28, 1));
        ck_assert_int_eq(cnnviz_regularize_dense_kernels(m[wide], 0.0f, 0.001f), 2);
        cnnviz_rng wr;
        cnnviz_rng_seed(&wr, 1, 0);
        cnnviz_model_init_weights(m[wide], &wr);
        cnnviz_train_result res;
        cnnviz_error err;
        ck_assert_msg(cnnviz_train(m[wide], &cfg, &set, NULL, &res, &err) == CNNVIZ_OK, "%s", err.msg);
        loss[wide] = res.history[0].loss;
        cnnviz_train_result_free(&res);
    }
    cnnviz_force_wide_vectors(-1);
    cnnviz_force_avx2_vectors(-1);
    size_t n = cnnviz_model_num_params(m[0]), at = n;
    const float *a = cnnviz_model_params(m[0]), *b = cnnviz_model_params(m[1]);
    for (size_t i = 0; i < n && at == n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a)) at = i;
    ck_assert_msg(at == n, "weights differ from parameter %zu on (%.9g, %.9g)", at, at < n ? a[at] : 0.0,
                  at < n ? b[at] : 0.0);
    ck_assert(loss[0] == loss[1]);
    ck_assert_msg(isfinite(loss[0]) && loss[0] > 0.0, "loss %g", loss[0]);
    cnnviz_model_free(m[0]);
    cnnviz_model_free(m[1]);
    free(pixels);
}
END_TEST

/* Index of the first weight where a and b differ, n when none. */
static size_t first_difference(cnnviz_model *a, cnnviz_model *b) {
    size_t n = cnnviz_model_num_params(a);
    const float *x = cnnviz_model_params(a), *y = cnnviz_model_params(b);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&x[i], &y[i], sizeof *x)) return i;
    return n;
}

/* Training gives the same bits for every thread count, on a machine of any
 * core count: the weight gradients are summed in a fixed set of groups
 * (eight micro-batches depth-first, eight chunk partitions layer by layer),
 * not one per thread or core. The engine is told how many cores it has,
 * so its buffers and teams are those of that machine whatever this one
 * is. Two
 * nets: the seed net (depth-first, the fused first conv and pooling,
 * Winograd F(3x3, 3x3)) on random images, and one with Dropout (layer by
 * layer: the sgemm conv's partitions) on the synthetic set. */
START_TEST(test_train_same_bits_any_thread_count) {
    enum { N = 300 };
    static const char *const arch[2] = {"C32k3-P2-C64k3-P2-C64k3-F-D70-D10", "C8k3-C16k3-P2-C32k3-F-Dr0.25-D4"};
    const int side[2] = {28, 14};
    uint8_t *pixels = malloc((size_t)N * 784), labels[N];
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 5, 3);
    for (size_t i = 0; i < (size_t)N * 784; i++) pixels[i] = (uint8_t)cnnviz_rng_below(&rng, 256);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)cnnviz_rng_below(&rng, 10);
    synthetic syn;
    synthetic_make(&syn, N, 4);
    const cnnviz_labelled_set sets[2] = {{pixels, labels, N}, syn.set};
    /* (cores, threads) */
    static const int runs[][2] = {{1, 1}, {2, 2}, {8, 3}, {8, 5}, {8, 8}, {3, 8}, {16, 16}};
    for (int net = 0; net < 2; net++) {
        cnnviz_model *first = NULL;
        for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
            cnnviz_force_procs(runs[k][0]);
            cnnviz_set_threads(runs[k][1]);
            cnnviz_model *m = spec_model(arch[net], cnnviz_shape3(side[net], side[net], 1));
            ck_assert_int_eq(cnnviz_regularize_dense_kernels(m, 0.0f, 0.001f), net ? 1 : 2);
            cnnviz_rng wr;
            cnnviz_rng_seed(&wr, 1, 0);
            cnnviz_model_init_weights(m, &wr);
            cnnviz_train_config cfg = cnnviz_train_config_init();
            cfg.epochs = 1;
            cfg.opt.momentum = 0.9;
            cnnviz_train_result res;
            cnnviz_error err;
            ck_assert_msg(cnnviz_train(m, &cfg, &sets[net], NULL, &res, &err) == CNNVIZ_OK, "%s", err.msg);
            cnnviz_train_result_free(&res);
            if (!first) {
                first = m;
                continue;
            }
            size_t at = first_difference(first, m);
            ck_assert_msg(at == cnnviz_model_num_params(m),
                          "%s: %d cores, %d threads differ from 1 core, 1 thread from weight %zu on", arch[net],
                          runs[k][0], runs[k][1], at);
            cnnviz_model_free(m);
        }
        cnnviz_model_free(first);
    }
    cnnviz_force_procs(0);
    cnnviz_set_threads(0);
    synthetic_free(&syn);
    free(pixels);
}
END_TEST

/* 1e-30 * 1e-10 on the calling thread and on both threads of a team:
 * how many of the three products were flushed to zero */
static int products_flushed(void) {
    int flushed = 0;
    volatile float a = 1e-30f, b = 1e-10f;
    flushed += a * b == 0.0f;
    #pragma omp parallel num_threads(2) reduction(+ : flushed)
    {
        volatile float c = 1e-30f, d = 1e-10f;
        flushed += c * d == 0.0f;
    }
    return flushed;
}

static int flushed_in_batch;
static void note_flushed(void *ctx, int epoch, int batch, int nbatches, double loss, double accuracy) {
    (void)ctx, (void)epoch, (void)batch, (void)nbatches, (void)loss, (void)accuracy;
    flushed_in_batch = products_flushed();
}

/* Training flushes subnormal floats to zero, as TensorFlow does, on every
 * thread of the team, and gives the caller its mode back. Dense weights of
 * pixels that are zero in every image get a zero gradient, so RMSprop
 * writes w - 0 back: a subnormal w stays with keep_subnormals and becomes
 * 0 without. Those pixels are the first and last two image rows, whose
 * weights fall in both threads' pieces of the update (the first Dense
 * kernel, 784 x 24 floats, is more than one piece of 16384). */
START_TEST(test_train_flushes_subnormals) {
    enum { N = 96, HID = 24 };
    uint8_t *pixels = malloc((size_t)N * 784), labels[N];
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 9, 3);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 784; j++)
            pixels[i * 784 + j] = j < 28 || j >= 728 ? 0 : (uint8_t)cnnviz_rng_below(&rng, 256);
        labels[i] = (uint8_t)cnnviz_rng_below(&rng, 10);
    }
    cnnviz_labelled_set set = {pixels, labels, N};
    const float tiny = 1e-39f, normal = 0.25f; /* tiny < FLT_MIN */
    cnnviz_set_threads(2);
    ck_assert_int_eq(products_flushed(), 0);
    for (int keep = 0; keep <= 1; keep++) {
        cnnviz_model *m = spec_model("F-D24-D10", cnnviz_shape3(28, 28, 1));
        cnnviz_rng wr;
        cnnviz_rng_seed(&wr, 1, 0);
        cnnviz_model_init_weights(m, &wr);
        float *k = find_param(m, "dense", "kernel")->data;
        ck_assert_int_gt(HID * 784, 16384);
        for (int j = 0; j < 784; j++)
            if (j < 28 || j >= 728)
                for (int o = 0; o < HID; o++) k[j * HID + o] = o % 2 ? tiny : normal;
        cnnviz_train_config cfg = cnnviz_train_config_init();
        cfg.epochs = 1;
        cfg.batch = 32;
        cfg.opt.momentum = 0.9;
        cfg.keep_subnormals = keep;
        cfg.on_batch = note_flushed;
        float live = k[400 * HID];
        flushed_in_batch = -1;
        cnnviz_train_result res;
        cnnviz_error err;
        ck_assert_msg(cnnviz_train(m, &cfg, &set, NULL, &res, &err) == CNNVIZ_OK, "%s", err.msg);
        cnnviz_train_result_free(&res);
        for (int j = 0; j < 784; j++)
            if (j < 28 || j >= 728)
                for (int o = 0; o < HID; o++) {
                    float want = o % 2 ? (keep ? tiny : 0.0f) : normal;
                    ck_assert_msg(k[j * HID + o] == want, "keep_subnormals %d: pixel %d, unit %d: %g, not %g", keep,
                                  j, o, (double)k[j * HID + o], (double)want);
                }
        /* the weights of live pixels did train, and the callbacks ran in
         * training's mode */
        ck_assert(k[400 * HID] != live);
        ck_assert_int_eq(flushed_in_batch, keep ? 0 : 3);
        ck_assert_int_eq(products_flushed(), 0);
        cnnviz_model_free(m);
    }
    cnnviz_set_threads(0);
    free(pixels);
}
END_TEST

START_TEST(test_train_nan_keeps_last_good_epoch) {
    synthetic train;
    synthetic_make(&train, 128, 9);
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cfg.batch = 32;
    cfg.epochs = 1;
    cfg.opt = cnnviz_optimizer_config_init(CNNVIZ_OPT_SGD);
    cnnviz_train_result good, bad;
    cnnviz_error err;
    cnnviz_status st;
    cnnviz_model *one = train_small(&cfg, &train, NULL, &st, &good, &err);
    ck_assert_int_eq(st, CNNVIZ_OK);
    /* the same first epoch, then a learning rate of 1e30 from the second
     * (staircase exponential decay with one step per epoch's 4 batches) */
    cfg.epochs = 3;
    cfg.opt.lr = (cnnviz_schedule){CNNVIZ_DECAY_EXPONENTIAL, 0.01, 1e32, 4.0, 1};
    cnnviz_model *blown = train_small(&cfg, &train, NULL, &st, &bad, &err);
    ck_assert_int_eq(st, CNNVIZ_ERR_NUMERIC);
    ck_assert_msg(strncmp(err.msg, "the loss became NaN or infinite at epoch 2, batch ", 50) == 0 &&
                      strstr(err.msg, "; the weights of the last complete epoch were kept"),
                  "%s", err.msg);
    ck_assert_int_eq(bad.epochs_done, 1);
    ck_assert_int_eq(bad.nan_epoch, 2);
    ck_assert_int_eq(memcmp(cnnviz_model_params(one), cnnviz_model_params(blown),
                            cnnviz_model_num_params(one) * sizeof(float)),
                     0);
    cnnviz_train_result_free(&good);
    cnnviz_train_result_free(&bad);
    cnnviz_model_free(one);
    cnnviz_model_free(blown);
    synthetic_free(&train);
}
END_TEST

START_TEST(test_train_rejects_bad_setups) {
    synthetic train;
    synthetic_make(&train, 16, 4);
    cnnviz_train_config cfg = cnnviz_train_config_init();
    cnnviz_train_result res;
    cnnviz_error err;
    /* a net without a softmax output */
    cnnviz_model *m = spec_model("F-D4:linear", cnnviz_shape3(14, 14, 1));
    ck_assert_int_eq(cnnviz_train(m, &cfg, &train.set, NULL, &res, &err), CNNVIZ_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "training needs a softmax output (a Dense layer with softmax activation, or a "
                              "Softmax layer after a flat output); the last layer is 'dense' (Dense)");
    cnnviz_model_free(m);
    /* labels beyond the classes */
    m = spec_model("F-D3", cnnviz_shape3(14, 14, 1));
    ck_assert_int_eq(cnnviz_train(m, &cfg, &train.set, NULL, &res, &err), CNNVIZ_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "is outside the model's 3 classes"));
    cfg.batch = 0;
    ck_assert_int_eq(cnnviz_train(m, &cfg, &train.set, NULL, &res, &err), CNNVIZ_ERR_INVALID);
    cnnviz_model_free(m);
    synthetic_free(&train);
}
END_TEST

static Suite *make_train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("math");
    tcase_set_timeout(tc, 120); /* a loaded machine or a sanitizer build is slow */
    tcase_add_test(tc, test_xent_value_gradient_and_clipping);
    tcase_add_test(tc, test_regularizers);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_rmsprop_keras_docstring);
    tcase_add_test(tc, test_rmsprop_momentum_and_decay);
    tcase_add_test(tc, test_rmsprop_centered);
    tcase_add_test(tc, test_sgd_momentum_nesterov);
    tcase_add_test(tc, test_adam_bias_correction);
    tcase_add_test(tc, test_optimizer_json);
    tcase_add_test(tc, test_history_json);
    tcase_add_test(tc, test_gradient_finite_differences);
    suite_add_tcase(s, tc);
    TCase *ref = tcase_create("reference");
    tcase_set_timeout(ref, 600);
    tcase_add_test(ref, test_reference_three_steps);
    suite_add_tcase(s, ref);
    TCase *loop = tcase_create("loop");
    tcase_set_timeout(loop, 600);
    tcase_add_test(loop, test_train_learns_and_records);
    tcase_add_test(loop, test_train_deterministic);
    tcase_add_test(loop, test_train_same_bits_avx512_and_avx2);
    tcase_add_test(loop, test_train_same_bits_any_thread_count);
    tcase_add_test(loop, test_train_flushes_subnormals);
    tcase_add_test(loop, test_train_nan_keeps_last_good_epoch);
    tcase_add_test(loop, test_train_rejects_bad_setups);
    suite_add_tcase(s, loop);
    return s;
}

int main(void) {
    int rc = run_suite(make_train_suite());
    /* the reference test needs the shared data: without it the run is
     * reported as skipped (77), never as a full pass */
    if (rc == 0 && !shared_path("data/reference/train_steps.h5")) return 77;
    return rc;
}
