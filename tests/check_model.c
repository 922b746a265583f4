// labels: unit data
/* The model: building the seed network, finding layers, the workspace and
 * predict, determinism across thread counts, and the seed network's forward
 * and backward against an independent float64 reference
 * (shared/data/reference/train_steps.h5, read here with the HDF5 C API). */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/model.h"
#include "cnnviz/train.h"
#include "model-impl.h"
#include "testutil.h"

/* C32k3-P2-C64k3-P2-C64k3-F-D70-D10 with L2 0.001 on the Dense kernels, as
 * Keras builds it; with_dropout puts a Dropout(0.3) after the Flatten */
static cnnviz_model *seed_net_variant(int with_dropout) {
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    const char *spec = with_dropout ? "C32k3-P2-C64k3-P2-C64k3-F-Dr0.3-D70l2=0.001-D10l2=0.001"
                                    : "C32k3-P2-C64k3-P2-C64k3-F-D70l2=0.001-D10l2=0.001";
    ck_assert_msg(cnnviz_model_from_spec(spec, &in, &m, &err) == CNNVIZ_OK, "%s", err.msg);
    return m;
}

static cnnviz_model *seed_net(void) { return seed_net_variant(0); }

static float *random_images(int n, uint64_t seed) {
    cnnviz_rng r;
    cnnviz_rng_seed(&r, seed, 1);
    float *x = malloc((size_t)n * 784 * sizeof(float));
    for (size_t i = 0; i < (size_t)n * 784; i++) x[i] = cnnviz_rng_uniform(&r);
    return x;
}

START_TEST(seed_net_layers) {
    cnnviz_model *m = seed_net();
    const char *names[8] = {"conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                            "conv2d_2", "flatten", "dense", "dense_1"};
    const char *classes[8] = {"Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                              "Conv2D", "Flatten", "Dense", "Dense"};
    const char *shapes[8] = {"(26, 26, 32)", "(13, 13, 32)", "(11, 11, 64)", "(5, 5, 64)",
                             "(3, 3, 64)", "(576)", "(70)", "(10)"};
    const size_t params[8] = {320, 0, 18496, 0, 36928, 0, 40390, 710};
    ck_assert_int_eq(cnnviz_model_num_layers(m), 8);
    for (int i = 0; i < 8; i++) {
        cnnviz_layer_info info;
        char buf[64];
        cnnviz_model_layer_info(m, i, &info);
        ck_assert_str_eq(info.name, names[i]);
        ck_assert_str_eq(info.class_name, classes[i]);
        cnnviz_shape_format(&info.output_shape, buf, sizeof buf);
        ck_assert_str_eq(buf, shapes[i]);
        ck_assert_uint_eq(info.params, params[i]);
        if (params[i]) {
            ck_assert_int_eq(info.nparam, 2);
            ck_assert_str_eq(info.param[0].name, "kernel");
            ck_assert_str_eq(info.param[1].name, "bias");
            ck_assert_int_eq(info.param[0].trainable, 1);
        }
    }
    ck_assert_uint_eq(cnnviz_model_num_params(m), 96844);
    /* the conv kernel is HWIO, the dense kernel (in, out); the regularizer sits on the kernel only */
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, 2, &info);
    ck_assert_int_eq(info.param[0].shape.rank, 4);
    ck_assert_int_eq(info.param[0].shape.dim[2], 32);
    ck_assert_int_eq(info.param[0].shape.dim[3], 64);
    cnnviz_model_layer_info(m, 6, &info);
    ck_assert_int_eq(info.param[0].shape.dim[0], 576);
    ck_assert_float_eq(info.param[0].l2, 0.001f);
    ck_assert_float_eq(info.param[1].l2, 0.0f);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_RELU);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(find_layer_by_name_and_index) {
    cnnviz_model *m = seed_net();
    ck_assert_int_eq(cnnviz_model_find_layer(m, "conv2d"), 0);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "conv2d_1"), 2);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "dense_1"), 7);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "2"), 2);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "-1"), 7);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "8"), -1);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "conv2d_9"), -1);
    ck_assert_int_eq(cnnviz_model_find_layer(m, "2x"), -1);
    ck_assert_int_eq(cnnviz_model_find_layer(m, ""), -1);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(explicit_names_and_errors) {
    cnnviz_shape in = cnnviz_shape3(8, 8, 1);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_error err;
    cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = 2;
    s.name = "conv2d_1"; /* taken first: the next unnamed conv is conv2d, then conv2d_2 */
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s.name = NULL;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s.kernel[0] = s.kernel[1] = 1;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    ck_assert_str_eq(m->layers[1]->name, "conv2d");
    ck_assert_str_eq(m->layers[2]->name, "conv2d_2");
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_MAXPOOL2D);
    s.pool[0] = s.pool[1] = 7; /* 4x4 input */
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "layer 'max_pooling2d' (MaxPooling2D) has an empty output for input (4, 4, 2)");
    cnnviz_model_free(m);
}
END_TEST

/* predict in batches equals one forward over everything, and the output is
 * a probability distribution */
START_TEST(workspace_and_predict) {
    cnnviz_model *m = seed_net();
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 5, 0);
    cnnviz_model_init_weights(m, &rng);
    int n = 37;
    float *x = random_images(n, 3);
    float *p = malloc((size_t)n * 10 * sizeof(float));
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_predict(m, x, n, 8, p, &err), CNNVIZ_OK);
    cnnviz_workspace_options o = cnnviz_workspace_options_init(n);
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(cnnviz_workspace_max_batch(ws), n);
    const float *y = cnnviz_forward(ws, x, n, &err);
    ck_assert_ptr_eq(y, cnnviz_layer_output(ws, 7, &err));
    /* batches of 8 run layer by layer, 37 depth-first in micro-batches: the
     * same arithmetic on every sample, so the same bits */
    ck_assert_msg(memcmp(p, y, (size_t)n * 10 * sizeof(float)) == 0, "predict differs from forward");
    /* predict over one batch of 37 keeps only the last output (depth-first) */
    float *p37 = malloc((size_t)n * 10 * sizeof(float));
    ck_assert_int_eq(cnnviz_model_predict(m, x, n, 0, p37, &err), CNNVIZ_OK);
    ck_assert_msg(memcmp(p37, y, (size_t)n * 10 * sizeof(float)) == 0, "predict(37) differs from forward");
    free(p37);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < 10; k++) s += p[i * 10 + k];
        ck_assert_msg(fabs(s - 1.0) < 1e-5, "probabilities of %d sum to %g", i, s);
    }
    /* a batch the workspace was not made for is an error */
    ck_assert_ptr_null(cnnviz_forward(ws, x, n + 1, &err));
    ck_assert_ptr_null(cnnviz_forward(ws, x, 0, &err));
    cnnviz_workspace_free(ws);
    /* a plan up to a layer stops there and leaves that layer's output */
    o.last = 2;
    ws = cnnviz_workspace_new(m, &o, &err);
    const float *c2 = cnnviz_forward(ws, x, 3, &err);
    ck_assert_ptr_eq(c2, cnnviz_layer_output(ws, 2, &err));
    ck_assert_ptr_null(cnnviz_layer_output(ws, 3, &err));
    cnnviz_workspace_free(ws);
    free(p);
    free(x);
    cnnviz_model_free(m);
}
END_TEST

/* A training plan that keeps only the last output makes only the rows and
 * columns of conv2d_1 (11x11) that max_pooling2d_1 reads (10x10: 25 of
 * F(2x2)'s 36 tiles) and leaves the rest zero; those it makes and the
 * pooled output are the same bits as an inference pass's (conv2d_2 after
 * them is not: training takes F(3x3) for it). Its output is not kept, so
 * reading it or starting a backward there is an error; a plan that ends
 * at conv2d_1 makes it whole. B = 37 runs depth-first, B = 8 layer by
 * layer. */
START_TEST(training_pass_crops_pooled_conv) {
    cnnviz_model *m = seed_net();
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 9, 0);
    cnnviz_model_init_weights(m, &rng);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    const int sizes[2] = {37, 8};
    for (int t = 0; t < 2; t++) {
        int n = sizes[t];
        float *x = random_images(n, 4);
        size_t conv = (size_t)11 * 11 * 64, pooled = (size_t)5 * 5 * 64;
        cnnviz_workspace *wi = test_workspace(m, n, 0, -1, CNNVIZ_KEEP_ALL, 0, 0);
        cnnviz_workspace *wt = test_workspace(m, n, 1, -1, CNNVIZ_KEEP_LAST, 0, 1);
        ck_assert_int_eq(wt->plan.hints[2].rows_read, 10);
        ck_assert_int_eq(wi->plan.hints[2].rows_read, 0);
        (void)cnnviz_forward(wi, x, n, &err);
        (void)cnnviz_forward(wt, x, n, &err);
        ck_assert_msg(memcmp(wi->out[3], wt->out[3], n * pooled * sizeof(float)) == 0, "B=%d: pooled output", n);
        const float *ci = cnnviz_layer_output(wi, 2, &err), *ct = wt->out[2];
        ck_assert_ptr_nonnull(ci);
        for (int b = 0; b < n; b++)
            for (int y = 0; y < 11; y++)
                for (int xx = 0; xx < 11; xx++)
                    for (int f = 0; f < 64; f++) {
                        size_t k = (size_t)b * conv + ((size_t)y * 11 + xx) * 64 + f;
                        if (y < 10 && xx < 10)
                            ck_assert_msg(memcmp(&ci[k], &ct[k], sizeof *ct) == 0,
                                          "B=%d: sample %d (%d, %d, %d): %g, not %g", n, b, y, xx, f, ct[k], ci[k]);
                        else
                            ck_assert_msg(ct[k] == 0.0f, "B=%d: (%d, %d) made: %g", n, y, xx, ct[k]);
                    }
        /* not kept: an error, not a recomputation */
        ck_assert_ptr_null(cnnviz_layer_output(wt, 2, &err));
        ck_assert_int_eq(err.code, CNNVIZ_ERR_INVALID);
        float *dy = calloc(n * conv, sizeof *dy), *dx = malloc((size_t)n * 784 * sizeof *dx);
        for (size_t k = 0; k < n * conv; k++) dy[k] = cnnviz_rng_uniform(&rng) - 0.5f;
        ck_assert_int_eq(cnnviz_backward_from(wt, 2, dy, NULL, &err), CNNVIZ_ERR_INVALID);
        /* a plan whose backward starts at conv2d_1 makes its whole output */
        cnnviz_workspace *w2 = test_workspace(m, n, 1, 2, CNNVIZ_KEEP_LAST, 1, 0);
        (void)cnnviz_forward(w2, x, n, &err);
        ck_assert_msg(memcmp(cnnviz_layer_output(w2, 2, &err), ci, n * conv * sizeof(float)) == 0,
                      "B=%d: whole for a backward", n);
        ck_assert_int_eq(cnnviz_backward(w2, dy, dx, &err), CNNVIZ_OK);
        free(dy);
        free(dx);
        cnnviz_workspace_free(wi);
        cnnviz_workspace_free(wt);
        cnnviz_workspace_free(w2);
        free(x);
    }
    cnnviz_model_free(m);
}
END_TEST

/* The plan's test: a caller that keeps every output and one that keeps
 * only the last get the same final outputs, in inference and in training
 * (where keeping only the last lets the plan crop conv2d_1 and, on CPUs
 * with AVX2 or AVX-512, run the first conv and its pooling as one), and
 * the same weight gradients (in the same order, but for that one pass's,
 * conv_pool_fused_matches_separate); the output of a layer the plan did
 * not keep is an error. B = 37 depth-first, 5 layer by layer. */
START_TEST(keep_all_and_keep_last_agree) {
    cnnviz_model *m = seed_net();
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 21, 0);
    cnnviz_model_init_weights(m, &rng);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    const int sizes[2] = {37, 5};
    for (int t = 0; t < 2; t++)
        for (int training = 0; training < 2; training++) {
            int n = sizes[t];
            float *x = random_images(n, 6), *g[2], y[2][37 * 10];
            int one_pass = 0; /* the first conv and its pooling went as one */
            float *dout = malloc((size_t)n * 10 * sizeof *dout);
            for (int k = 0; k < n * 10; k++) dout[k] = cnnviz_rng_uniform(&rng) - 0.5f;
            for (int keep = 0; keep < 2; keep++) {
                cnnviz_keep how = keep ? CNNVIZ_KEEP_LAST : CNNVIZ_KEEP_ALL;
                cnnviz_workspace *ws = test_workspace(m, n, training, -1, how, 0, training);
                one_pass |= cnnviz_workspace_step(ws, 0)->kind == CNNVIZ_STEP_CONV_POOL && n > 8;
                const float *out = cnnviz_forward(ws, x, n, &err);
                ck_assert_ptr_nonnull(out);
                memcpy(y[keep], out, (size_t)n * 10 * sizeof(float));
                ck_assert_ptr_eq(cnnviz_layer_output(ws, 7, &err), out);
                const float *mid = cnnviz_layer_output(ws, 2, &err);
                if (keep) {
                    ck_assert_ptr_null(mid);
                    ck_assert_str_eq(err.msg, "the output of layer 'conv2d_1' is not kept: this workspace keeps "
                                              "only the last layer's");
                } else {
                    ck_assert_ptr_nonnull(mid);
                }
                g[keep] = calloc(m->num_params, sizeof(float));
                if (training) {
                    cnnviz_model_zero_grads(m);
                    ck_assert_int_eq(cnnviz_backward(ws, dout, NULL, &err), CNNVIZ_OK);
                    memcpy(g[keep], m->grads, m->num_params * sizeof(float));
                } else {
                    /* no backward in the plan */
                    ck_assert_int_eq(cnnviz_backward(ws, dout, NULL, &err), CNNVIZ_ERR_INVALID);
                }
                cnnviz_workspace_free(ws);
            }
            ck_assert_msg(memcmp(y[0], y[1], (size_t)n * 10 * sizeof(float)) == 0, "B=%d training=%d: outputs", n,
                          training);
            /* one pass sums the first conv's weight gradients in another order */
            if (one_pass)
                ck_assert_msg(max_rel_diff(g[0], g[1], m->num_params, 1.0, NULL) < 1e-5, "B=%d: gradients", n);
            else
                ck_assert_msg(memcmp(g[0], g[1], m->num_params * sizeof(float)) == 0, "B=%d training=%d: gradients",
                              n, training);
            free(g[0]), free(g[1]), free(dout), free(x);
        }
    cnnviz_model_free(m);
}
END_TEST

/* A one-map plan (gradient ascent's): conv2d_1's map maps[b] of image b
 * before its ReLU, against the whole layer's output; the plan wants the
 * maps, and only a Conv2D or Dense layer has maps to take one by one. */
START_TEST(one_map_plan) {
    cnnviz_model *m = seed_net();
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 23, 0);
    cnnviz_model_init_weights(m, &rng);
    cnnviz_error err;
    enum { B = 3 };
    float *x = random_images(B, 7);
    int maps[B] = {5, 0, 63};
    cnnviz_workspace_options o = cnnviz_workspace_options_init(B);
    o.last = 2, o.one_map = 1, o.input_grad = 1, o.fixed_weights = 1;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(cnnviz_workspace_step(ws, cnnviz_workspace_num_steps(ws) - 1)->kind, CNNVIZ_STEP_ONE_MAP);
    ck_assert_ptr_null(cnnviz_forward(ws, x, B, &err));
    const float *z = cnnviz_forward_maps(ws, x, maps, B, &err);
    ck_assert_ptr_nonnull(z);
    cnnviz_workspace *whole = test_workspace(m, B, 0, 2, CNNVIZ_KEEP_LAST, 0, 0);
    const float *y = cnnviz_forward(whole, x, B, &err);
    int positive = 0;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < 121; p++) {
            float want = y[((size_t)b * 121 + p) * 64 + maps[b]], got = z[b * 121 + p] > 0 ? z[b * 121 + p] : 0;
            positive += got > 0;
            ck_assert_msg(fabsf(got - want) <= 1e-5f * fmaxf(1.0f, fabsf(want)), "image %d position %d: %g, not %g",
                          b, p, got, want);
        }
    ck_assert_int_gt(positive, 0);
    float dz[B * 121], dx[B * 784];
    for (int k = 0; k < B * 121; k++) dz[k] = 1.0f / 121;
    ck_assert_int_eq(cnnviz_backward(ws, dz, dx, &err), CNNVIZ_OK);
    cnnviz_workspace_free(ws);
    cnnviz_workspace_free(whole);
    o.last = 1;
    ck_assert_ptr_null(cnnviz_workspace_new(m, &o, &err));
    ck_assert_str_eq(err.msg, "layer 'max_pooling2d' (MaxPooling2D): cannot evaluate its maps one by one");
    free(x);
    cnnviz_model_free(m);
}
END_TEST

/* Forward, and backward with weight gradients, give the same bits with 1
 * and 2 threads (fixed chunking, fixed reduction orders): depth-first
 * (the seed net) and layer by layer (a Dropout in training rules out
 * depth-first; the same mask is drawn for both thread counts). */
START_TEST(deterministic_across_threads) {
    cnnviz_model *m = seed_net_variant(_i);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 11, 0);
    cnnviz_model_init_weights(m, &rng);
    int B = 64;
    float *x = random_images(B, 4);
    float *y[2], *g[2], *dx[2], *gw[2];
    float *dout = malloc((size_t)B * 10 * sizeof(float));
    for (int i = 0; i < B * 10; i++) dout[i] = cnnviz_rng_uniform(&rng) - 0.5f;
    /* training with an input gradient; training as cnnviz_train does it */
    cnnviz_workspace *ws = test_workspace(m, B, 1, -1, CNNVIZ_KEEP_LAST, 1, 1);
    cnnviz_workspace *wt = test_workspace(m, B, 1, -1, CNNVIZ_KEEP_LAST, 0, 1);
    for (int t = 0; t < 2; t++) {
        cnnviz_rng drop;
        cnnviz_rng_seed(&drop, 13, 0);
        cnnviz_workspace_set_rng(ws, &drop);
        cnnviz_workspace_set_rng(wt, &drop);
        cnnviz_set_threads(t + 1);
        y[t] = malloc((size_t)B * 10 * sizeof(float));
        g[t] = malloc(m->num_params * sizeof(float));
        dx[t] = malloc((size_t)B * 784 * sizeof(float));
        memcpy(y[t], cnnviz_forward(ws, x, B, &err), (size_t)B * 10 * sizeof(float));
        cnnviz_model_zero_grads(m);
        ck_assert_int_eq(cnnviz_backward(ws, dout, dx[t], &err), CNNVIZ_OK);
        memcpy(g[t], m->grads, m->num_params * sizeof(float));
        /* and training's backward, no input gradient: the seed net's first
         * conv and pooling then go as one pass (where the CPU has AVX-512) */
        gw[t] = malloc(m->num_params * sizeof(float));
        (void)cnnviz_forward(wt, x, B, &err);
        cnnviz_model_zero_grads(m);
        ck_assert_int_eq(cnnviz_backward(wt, dout, NULL, &err), CNNVIZ_OK);
        memcpy(gw[t], m->grads, m->num_params * sizeof(float));
    }
    cnnviz_set_threads(0);
    ck_assert_msg(memcmp(y[0], y[1], (size_t)B * 10 * sizeof(float)) == 0, "forward differs across threads");
    /* the gradients are real: not all zero */
    int nonzero = 0;
    for (size_t k = 0; k < m->num_params; k++) nonzero += g[0][k] != 0.0f;
    ck_assert_int_gt(nonzero, (int)m->num_params / 2);
    ck_assert_msg(memcmp(g[0], g[1], m->num_params * sizeof(float)) == 0, "weight gradients differ across threads");
    ck_assert_msg(memcmp(dx[0], dx[1], (size_t)B * 784 * sizeof(float)) == 0, "input gradient differs");
    ck_assert_msg(memcmp(gw[0], gw[1], m->num_params * sizeof(float)) == 0,
                  "weight gradients without an input gradient differ across threads");
    for (int t = 0; t < 2; t++) free(y[t]), free(g[t]), free(dx[t]), free(gw[t]);
    free(dout);
    free(x);
    cnnviz_workspace_free(ws);
    cnnviz_workspace_free(wt);
    cnnviz_model_free(m);
}
END_TEST

/* Gradient ascent's use: a training workspace, an inference forward up to
 * a middle layer, input gradient only. Checked by finite differences on
 * the mean of one feature map of conv2d_1. */
START_TEST(input_gradient_of_a_feature_map) {
    cnnviz_model *m = seed_net();
    cnnviz_error err;
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 12, 0);
    cnnviz_model_init_weights(m, &rng);
    for (size_t i = 0; i < m->num_params; i++) m->params[i] += 0.01f; /* biases off zero: fewer dead units */
    int last = 2, map = 5;
    cnnviz_workspace *ws = test_workspace(m, 1, 0, last, CNNVIZ_KEEP_ALL, 1, 0);
    float *x = random_images(1, 5);
    size_t n = 11 * 11 * 64;
    float *dout = calloc(n, sizeof(float));
    for (size_t i = (size_t)map; i < n; i += 64) dout[i] = 1.0f / 121.0f;
    cnnviz_forward(ws, x, 1, &err);
    float dx[784];
    ck_assert_int_eq(cnnviz_backward(ws, dout, dx, &err), CNNVIZ_OK);
    ck_assert_ptr_null(m->grads);
    int checked = 0, bad = 0;
    for (int i = 0; i < 784; i += 7) {
        float keep = x[i];
        double v[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = keep + (sgn ? -1e-2f : 1e-2f);
            const float *y = cnnviz_forward(ws, x, 1, &err);
            double s = 0;
            for (size_t k = (size_t)map; k < n; k += 64) s += y[k];
            v[sgn] = s / 121.0;
        }
        x[i] = keep;
        double fd = (v[0] - v[1]) / 2e-2;
        checked++;
        /* ReLU kinks can spoil a few finite differences */
        if (fabs(fd - dx[i]) > 1e-3 + 2e-2 * fabs(fd)) bad++;
    }
    ck_assert_msg(bad <= checked / 20, "%d of %d input gradient entries disagree", bad, checked);
    free(dout);
    free(x);
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
}
END_TEST

/* An inference plan with an input gradient (what gradient ascent makes)
 * back-propagates through Dropout as the identity, also when its passes
 * run depth-first in micro-batches, after a training plan on the same
 * model has drawn a mask. */
START_TEST(dropout_after_inference_pass_is_identity) {
    cnnviz_shape in = cnnviz_shape3(6, 6, 2);
    cnnviz_model *m[2];
    cnnviz_error err;
    for (int k = 0; k < 2; k++) {
        m[k] = cnnviz_model_new(&in);
        cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
        s.filters = 4;
        s.activation = CNNVIZ_ACT_TANH;
        ck_assert_int_eq(cnnviz_model_add(m[k], &s, &err), CNNVIZ_OK);
        if (k == 0) {
            s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
            s.rate = 0.5f;
            ck_assert_int_eq(cnnviz_model_add(m[k], &s, &err), CNNVIZ_OK);
        }
        s = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
        ck_assert_int_eq(cnnviz_model_add(m[k], &s, &err), CNNVIZ_OK);
        s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
        s.units = 3;
        ck_assert_int_eq(cnnviz_model_add(m[k], &s, &err), CNNVIZ_OK);
        ck_assert_int_eq(cnnviz_model_finalize(m[k], &err), CNNVIZ_OK);
        cnnviz_rng r;
        cnnviz_rng_seed(&r, 3, 0);
        cnnviz_model_init_weights(m[k], &r);
    }
    ck_assert_uint_eq(m[0]->num_params, m[1]->num_params);
    int B = 20;
    cnnviz_rng data, drop;
    cnnviz_rng_seed(&data, 8, 0);
    cnnviz_rng_seed(&drop, 9, 0);
    float x[20 * 72], dout[20 * 3], dx[2][20 * 72];
    for (int i = 0; i < B * 72; i++) x[i] = cnnviz_rng_uniform(&data);
    for (int i = 0; i < B * 3; i++) dout[i] = cnnviz_rng_uniform(&data) - 0.5f;
    for (int k = 0; k < 2; k++) {
        cnnviz_workspace *wt = test_workspace(m[k], B, 1, -1, CNNVIZ_KEEP_ALL, 1, 0);
        cnnviz_workspace_set_rng(wt, &drop);
        cnnviz_forward(wt, x, B, &err); /* draws a mask */
        cnnviz_workspace *ws = test_workspace(m[k], B, 0, -1, CNNVIZ_KEEP_ALL, 1, 0);
        cnnviz_forward(ws, x, B, &err);
        ck_assert_int_eq(cnnviz_backward(ws, dout, dx[k], &err), CNNVIZ_OK);
        cnnviz_workspace_free(ws);
        cnnviz_workspace_free(wt);
    }
    ck_assert_int_eq(memcmp(dx[0], dx[1], sizeof dx[0]), 0);
    cnnviz_model_free(m[0]);
    cnnviz_model_free(m[1]);
}
END_TEST

/* --- the float64 reference ------------------------------------------------ */

#define REFERENCE "data/reference/train_steps.h5"

static float *h5_read(hid_t f, const char *name, size_t *count) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "no dataset %s", name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8];
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((n ? n : 1) * sizeof(float));
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Sclose(sp);
    H5Dclose(d);
    if (count) *count = n;
    return v;
}

static cnnviz_model *seed_net_from_reference(hid_t f) {
    cnnviz_model *m = seed_net();
    for (int i = 0; i < m->nlayers; i++) {
        cnnviz_layer *l = m->layers[i];
        for (int k = 0; k < l->nparam; k++) {
            char name[256];
            size_t n;
            snprintf(name, sizeof name, "init/%s/%s", l->name, l->param[k].name);
            float *v = h5_read(f, name, &n);
            ck_assert_uint_eq(n, l->param[k].size);
            memcpy(l->param[k].data, v, n * sizeof(float));
            free(v);
        }
    }
    return m;
}

START_TEST(seed_net_forward_matches_reference) {
    const char *path = shared_path(REFERENCE);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    cnnviz_model *m = seed_net_from_reference(f);
    size_t n;
    float *images = h5_read(f, "batch/images", &n);
    ck_assert_uint_eq(n, 192 * 784);
    cnnviz_error err;
    cnnviz_workspace *ws = test_workspace(m, 64, 0, -1, CNNVIZ_KEEP_ALL, 0, 0);
    cnnviz_forward(ws, images, 64, &err);
    for (int i = 0; i < m->nlayers; i++) {
        char name[256];
        snprintf(name, sizeof name, "step0/activations/%s", m->layers[i]->name);
        float *want = h5_read(f, name, &n);
        ck_assert_uint_eq(n, 64 * cnnviz_shape_size(&m->layers[i]->out_shape));
        /* relative, with a floor of 10% of the layer's largest value: ReLU
         * outputs near 0 carry the absolute float error of their sums; and
         * that absolute error small against the layer's scale */
        double scale = 0;
        for (size_t k = 0; k < n; k++) scale = fmax(scale, fabs(want[k]));
        size_t at = 0;
        const float *got = cnnviz_layer_output(ws, i, &err);
        double d = max_rel_diff(got, want, n, 0.1 * scale, &at);
        ck_assert_msg(d < 1e-5, "%s differs from the reference by %g at %zu", m->layers[i]->name, d, at);
        double a = max_rel_diff(got, want, n, 1e30, &at) * 1e30 / scale;
        ck_assert_msg(a < 2e-6, "%s differs from the reference by %g of its largest value at %zu",
                      m->layers[i]->name, a, at);
        free(want);
    }
    cnnviz_workspace_free(ws);
    free(images);
    cnnviz_model_free(m);
    H5Fclose(f);
}
END_TEST

/* Backward of the mean cross-entropy through softmax, plus the L2 term
 * 2*l2*w on the Dense kernels, against step0/grads. */
START_TEST(seed_net_gradients_match_reference) {
    const char *path = shared_path(REFERENCE);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    cnnviz_model *m = seed_net_from_reference(f);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_alloc_grads(m, &err), CNNVIZ_OK);
    size_t n;
    float *images = h5_read(f, "batch/images", &n);
    hid_t d = H5Dopen2(f, "batch/labels", H5P_DEFAULT);
    int labels[192];
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels), 0);
    H5Dclose(d);
    int B = 64;
    cnnviz_workspace *ws = test_workspace(m, B, 1, -1, CNNVIZ_KEEP_LAST, 0, 1);
    const float *p = cnnviz_forward(ws, images, B, &err);
    /* d(mean -log p[label])/dp = -1/(B p[label]) at the label, 0 elsewhere */
    float dout[64 * 10] = {0};
    for (int b = 0; b < B; b++) dout[b * 10 + labels[b]] = -1.0f / ((float)B * p[b * 10 + labels[b]]);
    cnnviz_model_zero_grads(m);
    ck_assert_int_eq(cnnviz_backward(ws, dout, NULL, &err), CNNVIZ_OK);
    for (int i = 0; i < m->nlayers; i++) {
        cnnviz_layer *l = m->layers[i];
        for (int k = 0; k < l->nparam; k++) {
            cnnviz_param *q = &l->param[k];
            char name[256];
            snprintf(name, sizeof name, "step0/grads/%s/%s", l->name, q->name);
            float *want = h5_read(f, name, &n);
            ck_assert_uint_eq(n, q->size);
            for (size_t j = 0; j < n; j++) q->grad[j] += 2.0f * q->l2 * q->data[j];
            double scale = 0;
            for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(want[j]));
            size_t at = 0;
            double dd = max_rel_diff(q->grad, want, n, 1e-2 * scale, &at);
            ck_assert_msg(dd < 1e-4, "%s/%s gradient differs by %g at %zu", l->name, q->name, dd, at);
            free(want);
        }
    }
    cnnviz_workspace_free(ws);
    free(images);
    cnnviz_model_free(m);
    H5Fclose(f);
}
END_TEST

static Suite *make_model_suite(int with_reference) {
    Suite *s = suite_create("model");
    TCase *t = tcase_create("model");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, seed_net_layers);
    tcase_add_test(t, find_layer_by_name_and_index);
    tcase_add_test(t, explicit_names_and_errors);
    tcase_add_test(t, workspace_and_predict);
    tcase_add_loop_test(t, deterministic_across_threads, 0, 2);
    tcase_add_test(t, input_gradient_of_a_feature_map);
    tcase_add_test(t, training_pass_crops_pooled_conv);
    tcase_add_test(t, keep_all_and_keep_last_agree);
    tcase_add_test(t, one_map_plan);
    tcase_add_test(t, dropout_after_inference_pass_is_identity);
    suite_add_tcase(s, t);
    if (with_reference) {
        t = tcase_create("reference");
        tcase_set_timeout(t, 120);
        tcase_add_test(t, seed_net_forward_matches_reference);
        tcase_add_test(t, seed_net_gradients_match_reference);
        suite_add_tcase(s, t);
    }
    return s;
}

/* Without the shared reference the other tests still run; a pass is then
 * reported as skipped (77) so it never passes for the reference checks. */
int main(void) {
    int with_reference = shared_path(REFERENCE) != NULL;
    int rc = run_suite(make_model_suite(with_reference));
    if (rc == 0 && !with_reference) {
        printf("SKIP: shared data '%s' not found (set CNNVIZ_SHARED to the shared/ folder)\n", REFERENCE);
        return 77;
    }
    return rc;
}
