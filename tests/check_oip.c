// labels: unit
/* Optimal input patterns (src/oip/): the gradient the ascent follows against
 * central finite differences for every kind of objective layer, the
 * objective against the engine's own outputs, the ascent itself (every live
 * map ends higher than it started, a map that cannot fire is dead), the
 * reproducibility promises, the option checks and the image operations. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cnnviz/model.h"
#include "cnnviz/oip.h"
#include "model-impl.h"
#include "layers/layers.h"
#include "oip/oip-impl.h"
#include "testutil.h"

/* A small net with every kind of head the objective knows:
 *  0 conv2d   C4k3 relu        (10,10,1) -> (8,8,4)   conv head on the input
 *  1 max_pooling2d 2           -> (4,4,4)             engine head
 *  2 conv2d_1 C3k3 same relu   -> (4,4,3)             conv head, padding
 *  3 conv2d_2 C2k2 s2 linear   -> (2,2,2)             strides
 *  4 activation relu           -> (2,2,2)             folded into conv2d_2
 *  5 flatten                   -> (8)                 no maps
 *  6 dense    5 relu           -> (5)                 dense head
 *  7 dense_1  3 softmax        -> (3)                 logits */
static cnnviz_model *small_net(uint64_t seed) {
    cnnviz_shape in = cnnviz_shape3(10, 10, 1);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_error err;
    cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = 4, s.activation = CNNVIZ_ACT_RELU;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_MAXPOOL2D);
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = 3, s.activation = CNNVIZ_ACT_RELU, s.padding = CNNVIZ_PAD_SAME;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = 2, s.kernel[0] = s.kernel[1] = 2, s.strides[0] = s.strides[1] = 2;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s.activation = CNNVIZ_ACT_RELU;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s.units = 5, s.activation = CNNVIZ_ACT_RELU;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s.units = 3, s.activation = CNNVIZ_ACT_SOFTMAX;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, seed, 1);
    cnnviz_model_init_weights(m, &rng);
    /* small positive biases, so that some ReLUs are on and some off */
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->nparam > 1)
            for (size_t k = 0; k < m->layers[i]->param[1].size; k++)
                m->layers[i]->param[1].data[k] = 0.2f * cnnviz_rng_uniform(&rng) - 0.05f;
    return m;
}

static void random_inputs(float *x, size_t n, uint64_t seed) {
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, seed, 2);
    for (size_t i = 0; i < n; i++) x[i] = cnnviz_rng_uniform(&rng);
}

/* d surrogate / d x of every pixel of B images against central differences */
static void check_gradient(cnnviz_model *m, int layer, int ny, int nx, float leak) {
    enum { B = 3 };
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.layer = layer, o.neuron_y = ny, o.neuron_x = nx, o.leak = leak;
    cnnviz_error err;
    cnnviz_oip_objective *ob = cnnviz_oip_objective_new(m, &o, B, &err);
    ck_assert_msg(ob != NULL, "layer %d: %s", layer, err.msg);
    size_t S = 100;
    float x[B * 100], g[B * 100], v[B], sur[B], vp[B], sp[B], vm[B], sm[B];
    random_inputs(x, B * S, 10 + (uint64_t)layer);
    cnnviz_layer_info li;
    cnnviz_model_layer_info(m, layer, &li);
    int C = li.output_shape.dim[li.output_shape.rank - 1];
    int maps[B];
    for (int b = 0; b < B; b++) maps[b] = (b + 1) % C;
    cnnviz_oip_objective_eval(ob, x, maps, B, v, sur, g);
    const double eps = 1e-3;
    double gmax = 0;
    for (size_t i = 0; i < B * S; i++) gmax = fmax(gmax, fabs(g[i]));
    ck_assert_msg(gmax > 0, "layer %d: the gradient is all zero, the test would prove nothing", layer);
    for (size_t i = 0; i < S; i++) {
        float keep[B];
        for (int b = 0; b < B; b++) keep[b] = x[b * S + i], x[b * S + i] = keep[b] + (float)eps;
        cnnviz_oip_objective_eval(ob, x, maps, B, vp, sp, NULL);
        for (int b = 0; b < B; b++) x[b * S + i] = keep[b] - (float)eps;
        cnnviz_oip_objective_eval(ob, x, maps, B, vm, sm, NULL);
        for (int b = 0; b < B; b++) {
            x[b * S + i] = keep[b];
            double fd = ((double)sp[b] - (double)sm[b]) / (2 * eps);
            ck_assert_msg(fabs(fd - g[b * S + i]) <= 1e-2 * gmax + 2e-4,
                          "layer %d neuron (%d,%d) leak %g image %d pixel %zu: gradient %g, finite difference %g", layer,
                          ny, nx, (double)leak, b, i, (double)g[b * S + i], fd);
        }
    }
    cnnviz_oip_objective_free(ob);
}

START_TEST(gradient_matches_finite_differences) {
    cnnviz_model *m = small_net(3);
    static const int layers[] = {0, 1, 2, 3, 4, 6, 7};
    for (size_t k = 0; k < sizeof layers / sizeof *layers; k++) {
        check_gradient(m, layers[k], -1, -1, 0.0f);
        check_gradient(m, layers[k], -1, -1, 0.3f);
    }
    check_gradient(m, 0, 3, 5, 0.3f);
    check_gradient(m, 2, 0, 3, 0.0f);
    check_gradient(m, 2, 1, 2, 0.3f);
    check_gradient(m, 1, 2, 1, 0.0f);
    cnnviz_model_free(m);
}
END_TEST

/* The objective computed by the head equals what the engine outputs: the
 * map's mean, one neuron, and for the softmax layer the logits, whose
 * differences are log-ratios of the probabilities. */
START_TEST(objective_matches_engine_outputs) {
    cnnviz_model *m = small_net(5);
    enum { B = 4 };
    float x[B * 100];
    random_inputs(x, B * 100, 99);
    cnnviz_error err;
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(B);
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &wo, &err);
    cnnviz_forward(ws, x, B, NULL);
    int maps[B] = {2, 0, 1, 2};
    float v[B], s[B];
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    static const int layers[] = {0, 1, 2, 4, 6};
    for (size_t k = 0; k < sizeof layers / sizeof *layers; k++) {
        o.layer = layers[k];
        cnnviz_oip_objective *ob = cnnviz_oip_objective_new(m, &o, B, &err);
        ck_assert_ptr_nonnull(ob);
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, o.layer, &li);
        int C = li.output_shape.dim[li.output_shape.rank - 1], mk[B];
        for (int b = 0; b < B; b++) mk[b] = maps[b] % C;
        cnnviz_oip_objective_eval(ob, x, mk, B, v, s, NULL);
        size_t P = cnnviz_shape_size(&li.output_shape) / (size_t)C;
        const float *y = cnnviz_layer_output(ws, o.layer, NULL);
        for (int b = 0; b < B; b++) {
            int mp = mk[b];
            double mean = 0;
            for (size_t p = 0; p < P; p++) mean += y[((size_t)b * P + p) * C + mp];
            mean /= (double)P;
            ck_assert_msg(fabs(v[b] - mean) <= 1e-5 * fmax(1.0, fabs(mean)), "layer %d image %d: %g vs engine %g",
                          o.layer, b, (double)v[b], mean);
            ck_assert(s[b] <= v[b] + 1e-6); /* the leak term is never positive */
        }
        cnnviz_oip_objective_free(ob);
    }
    /* one neuron of conv2d_1 (4x4x3 output) */
    o.layer = 2, o.neuron_y = 1, o.neuron_x = 3;
    cnnviz_oip_objective *ob = cnnviz_oip_objective_new(m, &o, B, &err);
    cnnviz_oip_objective_eval(ob, x, maps, B, v, s, NULL);
    const float *y = cnnviz_layer_output(ws, 2, NULL);
    for (int b = 0; b < B; b++) ck_assert_float_eq_tol(v[b], y[(size_t)b * 48 + (1 * 4 + 3) * 3 + maps[b]], 1e-6);
    cnnviz_oip_objective_free(ob);
    /* logits of the softmax layer */
    o.layer = 7, o.neuron_y = o.neuron_x = -1;
    ob = cnnviz_oip_objective_new(m, &o, B, &err);
    const float *p = cnnviz_layer_output(ws, 7, NULL);
    for (int b = 0; b < B; b++) {
        float l[3];
        for (int k = 0; k < 3; k++) {
            int mk[B] = {k, k, k, k};
            float vv[B];
            cnnviz_oip_objective_eval(ob, x, mk, B, vv, NULL, NULL);
            l[k] = vv[b];
        }
        ck_assert_float_eq_tol(l[0] - l[1], logf(p[b * 3] / p[b * 3 + 1]), 1e-4);
        ck_assert_float_eq_tol(l[2] - l[1], logf(p[b * 3 + 2] / p[b * 3 + 1]), 1e-4);
    }
    cnnviz_oip_objective_free(ob);
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
}
END_TEST

/* Every map that can fire ends above its start; a map whose pre-activation
 * is negative for every possible input is dead, with activation 0. */
START_TEST(ascent_rises_and_marks_dead_maps) {
    cnnviz_model *m = small_net(7);
    /* conv2d_1 map 0: every weight and the bias negative on a ReLU'd input */
    cnnviz_layer *l = m->layers[2];
    for (size_t k = 0; k < l->param[0].size; k += 3) l->param[0].data[k] = -fabsf(l->param[0].data[k]) - 0.01f;
    l->param[1].data[0] = -0.1f;
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.steps = 60;
    static const int layers[] = {0, 1, 2, 4, 6, 7};
    for (size_t k = 0; k < sizeof layers / sizeof *layers; k++) {
        o.layer = layers[k];
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, o.layer, &li);
        int C = li.output_shape.dim[li.output_shape.rank - 1], maps[8];
        for (int i = 0; i < C; i++) maps[i] = i;
        cnnviz_oip_result r;
        cnnviz_error err;
        ck_assert_int_eq(cnnviz_oip_run(m, &o, maps, C, &r, &err), CNNVIZ_OK);
        ck_assert_int_eq(r.n, C);
        for (int i = 0; i < C; i++) {
            int should_be_dead = o.layer == 2 && i == 0;
            ck_assert_msg(r.dead[i] == should_be_dead, "layer %d map %d: dead %d", o.layer, i, r.dead[i]);
            if (r.dead[i]) {
                ck_assert_float_eq(r.activation[i], 0.0f);
                continue;
            }
            ck_assert_msg(r.activation[i] > r.start_activation[i], "layer %d map %d: %g not above the start %g",
                          o.layer, i, (double)r.activation[i], (double)r.start_activation[i]);
            for (size_t k2 = 0; k2 < r.image_size; k2++) {
                ck_assert(r.image[(size_t)i * r.image_size + k2] >= r.lo);
                ck_assert(r.image[(size_t)i * r.image_size + k2] <= r.hi);
            }
        }
        cnnviz_oip_result_free(&r);
    }
    cnnviz_model_free(m);
}
END_TEST

static void run_maps(cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n, cnnviz_oip_result *r) {
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_oip_run(m, o, maps, n, r, &err), CNNVIZ_OK);
}

/* Same seed: the same bits; another seed: other images; a map's pattern
 * does not depend on the other maps of its batch or on the chunking. */
START_TEST(reproducible_and_independent_of_the_batch) {
    cnnviz_model *m = small_net(11);
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.layer = 2, o.steps = 40, o.restarts = 2, o.jitter = 1, o.snapshot_every = 10;
    int maps[3] = {0, 1, 2}, one = 1;
    cnnviz_oip_result a, b, c, d;
    run_maps(m, &o, maps, 3, &a);
    run_maps(m, &o, maps, 3, &b);
    size_t S = a.image_size;
    ck_assert_mem_eq(a.image, b.image, 3 * S * sizeof(float));
    ck_assert_mem_eq(a.start, b.start, 3 * S * sizeof(float));
    ck_assert_mem_eq(a.activation, b.activation, 3 * sizeof(float));
    ck_assert_int_eq(a.nsnap, 5);
    ck_assert_mem_eq(a.snapshots, b.snapshots, 3 * 5 * S * sizeof(float));
    ck_assert_mem_eq(a.snapshots + 0, a.start, S * sizeof(float)); /* snapshot 0 is the start */
    run_maps(m, &o, &one, 1, &c);
    ck_assert_mem_eq(c.image, a.image + S, S * sizeof(float));
    o.batch = 2;
    cnnviz_oip_result_free(&c);
    run_maps(m, &o, maps, 3, &c);
    ck_assert_mem_eq(c.image, a.image, 3 * S * sizeof(float));
    o.batch = 0, o.seed = 1;
    run_maps(m, &o, maps, 3, &d);
    ck_assert(memcmp(d.start, a.start, S * sizeof(float)) != 0);
    ck_assert(memcmp(d.image, a.image, 3 * S * sizeof(float)) != 0);
    cnnviz_oip_result_free(&a);
    cnnviz_oip_result_free(&b);
    cnnviz_oip_result_free(&c);
    cnnviz_oip_result_free(&d);
    cnnviz_model_free(m);
}
END_TEST

/* Restarts keep each map's best: never worse than the first start alone. */
START_TEST(restarts_keep_the_best) {
    cnnviz_model *m = small_net(13);
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.layer = 4, o.steps = 30, o.init = CNNVIZ_OIP_INIT_MULTISCALE;
    int maps[2] = {0, 1};
    cnnviz_oip_result one, four;
    run_maps(m, &o, maps, 2, &one);
    o.restarts = 4;
    run_maps(m, &o, maps, 2, &four);
    for (int i = 0; i < 2; i++) {
        ck_assert(four.activation[i] >= one.activation[i]);
        ck_assert(four.restart[i] >= 0 && four.restart[i] < 4);
    }
    cnnviz_oip_result_free(&one);
    cnnviz_oip_result_free(&four);
    cnnviz_model_free(m);
}
END_TEST

/* Every option runs, keeps pixels in range and still climbs. */
START_TEST(options_keep_pixels_in_range) {
    cnnviz_model *m = small_net(17);
    cnnviz_input_scale centre = {CNNVIZ_SCALE_CENTER, 0, 1};
    cnnviz_model_set_input_scale(m, centre);
    float image[100];
    random_inputs(image, 100, 5);
    for (int i = 0; i < 100; i++) image[i] -= 0.5f;
    for (int variant = 0; variant < 7; variant++) {
        cnnviz_oip_options o;
        cnnviz_oip_options_init(&o);
        o.layer = 2, o.steps = 40;
        switch (variant) {
        case 0: o.init = CNNVIZ_OIP_INIT_MULTISCALE; break;
        case 1: o.norm = CNNVIZ_OIP_NORM_L2, o.step = 1.0f; break;
        case 2: o.norm = CNNVIZ_OIP_NORM_STD, o.constant_step = 1; break;
        case 3: o.blur_every = 4, o.blur_sigma = 0.7f, o.l2_decay = 0.01f; break;
        case 4: o.tv = 0.2f, o.jitter = 2; break;
        case 5: o.init = CNNVIZ_OIP_INIT_IMAGE, o.init_image = image, o.restarts = 2; break;
        case 6: o.leak = 0.0f, o.neuron_y = 2, o.neuron_x = 1; break;
        }
        int maps[3] = {0, 1, 2};
        cnnviz_oip_result r;
        run_maps(m, &o, maps, 3, &r);
        ck_assert_float_eq(r.lo, -0.5f);
        ck_assert_float_eq(r.hi, 0.5f);
        for (int i = 0; i < 3; i++) {
            ck_assert(isfinite(r.activation[i]));
            if (!r.dead[i])
                ck_assert_msg(r.activation[i] > r.start_activation[i], "variant %d map %d: %g <= start %g", variant, i,
                              (double)r.activation[i], (double)r.start_activation[i]);
            for (size_t k = 0; k < r.image_size; k++) {
                ck_assert(r.image[i * r.image_size + k] >= -0.5f && r.image[i * r.image_size + k] <= 0.5f);
                ck_assert(r.start[i * r.image_size + k] >= -0.5f && r.start[i * r.image_size + k] <= 0.5f);
            }
        }
        for (int i = 0; variant == 5 && i < 3; i++) /* the first start is the image itself */
            if (r.restart[i] == 0) ck_assert_mem_eq(r.start + i * r.image_size, image, 100 * sizeof(float));
        cnnviz_oip_result_free(&r);
    }
    cnnviz_model_free(m);
}
END_TEST

static void expect_invalid(const cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n,
                           const char *msg) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    int nmaps;
    ck_assert_int_eq(cnnviz_oip_check(m, o, maps, n, &nmaps, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, msg);
}

START_TEST(bad_requests_are_refused) {
    cnnviz_model *m = small_net(1);
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.layer = 5;
    expect_invalid(m, &o, NULL, 0,
                   "layer 'flatten' (Flatten) has no maps of its own: choose a Conv2D, pooling or Dense layer");
    o.layer = 6, o.neuron_y = 0, o.neuron_x = 0;
    expect_invalid(m, &o, NULL, 0, "layer 'dense' (Dense) has no (y, x) positions for a neuron: its output is (5)");
    o.layer = 0, o.neuron_y = 8, o.neuron_x = 0;
    expect_invalid(m, &o, NULL, 0, "neuron (8, 0) is outside layer 'conv2d' output (8, 8, 4)");
    o.neuron_y = o.neuron_x = -1;
    int maps[2] = {1, 4};
    expect_invalid(m, &o, maps, 2, "map 4 is out of range: layer 'conv2d' has maps 0 to 3");
    o.steps = 0;
    expect_invalid(m, &o, NULL, 0, "steps must be at least 1, not 0");
    o.steps = 10, o.layer = 8;
    expect_invalid(m, &o, NULL, 0, "layer 8 is out of range (the model has 8 layers)");
    o.layer = 0;
    int nmaps = 0;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_oip_check(m, &o, maps, 1, &nmaps, &err), CNNVIZ_OK);
    ck_assert_int_eq(nmaps, 4);
    /* run refuses too, and leaves nothing to free */
    cnnviz_oip_result r;
    o.steps = 0;
    ck_assert_int_eq(cnnviz_oip_run(m, &o, maps, 1, &r, &err), CNNVIZ_ERR_INVALID);
    ck_assert_ptr_null(r.image);
    cnnviz_oip_result_free(&r);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(image_operations) {
    enum { H = 6, W = 7, C = 2, N = H * W * C };
    float x[N], y[N], z[N], tmp[(H + 1) * (W + 1) * C];
    random_inputs(x, N, 3);
    oip_roll(y, x, H, W, C, 2, -3);
    ck_assert(memcmp(x, y, sizeof x) != 0);
    ck_assert_float_eq(y[((2 * W) + (W - 3)) * C + 1], x[1]); /* (0,0) went to (2,-3 mod 7) */
    oip_roll(z, y, H, W, C, -2, 3);
    ck_assert_mem_eq(x, z, sizeof x);
    for (int i = 0; i < N; i++) z[i] = 0.25f;
    oip_blur(z, H, W, C, 1.0f, tmp);
    for (int i = 0; i < N; i++) ck_assert_float_eq_tol(z[i], 0.25f, 1e-6);
    memcpy(z, x, sizeof z);
    oip_blur(z, H, W, C, 1.0f, tmp);
    double vx = 0, vz = 0;
    for (int i = 0; i < N; i++) vx += (x[i] - 0.5) * (x[i] - 0.5), vz += (z[i] - 0.5) * (z[i] - 0.5);
    ck_assert(vz < 0.5 * vx); /* blurred noise has far less spread */
    memcpy(z, x, sizeof z);
    ck_assert_int_eq(oip_normalise(z, N, CNNVIZ_OIP_NORM_RMS), 1);
    double sq = 0;
    for (int i = 0; i < N; i++) sq += (double)z[i] * z[i], ck_assert(z[i] * x[i] >= 0);
    ck_assert_double_eq_tol(sqrt(sq / N), 1.0, 1e-5);
    memcpy(z, x, sizeof z);
    oip_normalise(z, N, CNNVIZ_OIP_NORM_L2);
    sq = 0;
    for (int i = 0; i < N; i++) sq += (double)z[i] * z[i];
    ck_assert_double_eq_tol(sqrt(sq), 1.0, 1e-5);
    memset(z, 0, sizeof z);
    ck_assert_int_eq(oip_normalise(z, N, CNNVIZ_OIP_NORM_STD), 0);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 4, 4);
    oip_init_multiscale(z, H, W, C, -1.0f, 3.0f, &rng, tmp);
    float lo = 9, hi = -9;
    for (int i = 0; i < N; i++) lo = fminf(lo, z[i]), hi = fmaxf(hi, z[i]);
    ck_assert(lo >= -1.0f && hi <= 3.0f && hi - lo > 0.5f);
    /* TV descent pulls a lone bright pixel down and its neighbours up */
    memset(y, 0, sizeof y);
    memset(z, 0, sizeof z);
    z[(2 * W + 3) * C] = 1.0f;
    oip_tv_descent(y, z, H, W, C, 0.5f);
    ck_assert_float_eq(y[(2 * W + 3) * C], -2.0f);
    ck_assert_float_eq(y[(2 * W + 4) * C], 0.5f);
    ck_assert_float_eq(y[(2 * W + 3) * C + 1], 0.0f);
}
END_TEST

/* On the bundled model (when it is there): every live map of every conv
 * layer climbs above its start. */
/* the bundled model, or NULL (with a note) when it is not there */
static cnnviz_model *bundled_model(const char *check) {
    char path[4096];
    snprintf(path, sizeof path, "%s/samples/model.h5", CNNVIZ_SOURCE_DIR);
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("note: %s not there yet, %s skipped\n", path, check);
        return NULL;
    }
    cnnviz_model *m;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_load(path, &m, &err), CNNVIZ_OK);
    return m;
}

START_TEST(default_model_every_live_map_climbs) {
    cnnviz_model *m = bundled_model("default-model check");
    if (!m) return;
    int convs = 0;
    for (int L = 0; L < cnnviz_model_num_layers(m); L++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, L, &li);
        if (li.type != CNNVIZ_LAYER_CONV2D) continue;
        convs++;
        int C = li.output_shape.dim[2];
        int *maps = malloc((size_t)C * sizeof *maps);
        for (int i = 0; i < C; i++) maps[i] = i;
        cnnviz_oip_options o;
        cnnviz_oip_options_init(&o);
        o.layer = L, o.steps = 60;
        cnnviz_oip_result r;
        run_maps(m, &o, maps, C, &r);
        int live = 0;
        for (int i = 0; i < C; i++) {
            if (r.dead[i]) continue;
            live++;
            ck_assert_msg(r.activation[i] > r.start_activation[i], "%s map %d: %g <= start %g", li.name, i,
                          (double)r.activation[i], (double)r.start_activation[i]);
        }
        ck_assert_msg(live >= C / 2, "%s: only %d of %d maps live", li.name, live, C);
        cnnviz_oip_result_free(&r);
        free(maps);
    }
    ck_assert_int_ge(convs, 1);
    cnnviz_model_free(m);
}
END_TEST

/* The bundled model's patterns of maps 0..5 at a layer, 25 steps, into r;
 * 0 when the model is not there (the check is skipped). */
static int bundled_patterns(int layer, const char *check, cnnviz_oip_result *r) {
    static const int maps[6] = {0, 1, 2, 3, 4, 5};
    cnnviz_model *m = bundled_model(check);
    if (!m) return 0;
    cnnviz_oip_options o;
    cnnviz_oip_options_init(&o);
    o.layer = layer, o.steps = 25;
    run_maps(m, &o, maps, 6, r);
    cnnviz_model_free(m);
    return 1;
}

/* a and b, two runs of bundled_patterns, hold the same bits; the ascent
 * moved a's pixels, so the check compared real work. */
static void same_patterns(const cnnviz_oip_result *a, const cnnviz_oip_result *b, const char *what, int layer) {
    size_t n = 6 * a->image_size, at = n;
    for (size_t k = 0; k < n && at == n; k++)
        if (memcmp(&a->image[k], &b->image[k], sizeof(float))) at = k;
    ck_assert_msg(at == n, "layer %d, %s: patterns differ from pixel %zu on (%.9g, %.9g)", layer, what, at,
                  at < n ? b->image[at] : 0.0, at < n ? a->image[at] : 0.0);
    ck_assert_mem_eq(a->activation, b->activation, 6 * sizeof(float));
    ck_assert(memcmp(a->image, a->start, n * sizeof(float)) != 0);
}

/* The bundled model's patterns with the AVX-512 kernels and with the AVX2
 * ones (the vector head in two 8-float halves, the direct conv's input
 * gradient, the sparse and matrix kernels' narrow paths): the same bits,
 * so a figure's checksum does not depend on which of the two CPUs drew
 * it. Heads: conv2d_1 (the vector head, the gradient through the direct
 * conv), conv2d_2 (through the sparse window kernels too) and dense. */
START_TEST(patterns_same_bits_avx512_and_avx2) {
    static const int layers[3] = {2, 4, 6};
    for (int i = 0; i < 3; i++) {
        cnnviz_oip_result r[2];
        int ran = 1;
        for (int wide = 1; wide >= 0 && ran; wide--) {
            cnnviz_force_wide_vectors(wide);
            cnnviz_force_avx2_vectors(1);
            ran = bundled_patterns(layers[i], "two-widths check", &r[wide]);
        }
        cnnviz_force_wide_vectors(-1);
        cnnviz_force_avx2_vectors(-1);
        if (!ran) return;
        same_patterns(&r[0], &r[1], "AVX-512 and AVX2", layers[i]);
        cnnviz_oip_result_free(&r[0]);
        cnnviz_oip_result_free(&r[1]);
    }
}
END_TEST

/* The same patterns for several (cores, threads): the same bits, since
 * every map's ascent is its own and nothing sums across the maps of a
 * batch. */
START_TEST(patterns_same_bits_any_thread_count) {
    static const int layers[3] = {2, 4, 6}, runs[4][2] = {{1, 1}, {2, 2}, {8, 3}, {8, 8}};
    for (int i = 0; i < 3; i++) {
        cnnviz_oip_result r[4];
        int ran = 1;
        for (int k = 0; k < 4 && ran; k++) {
            cnnviz_force_procs(runs[k][0]);
            cnnviz_set_threads(runs[k][1]);
            ran = bundled_patterns(layers[i], "thread-count check", &r[k]);
        }
        cnnviz_force_procs(0);
        cnnviz_set_threads(0);
        if (!ran) return;
        for (int k = 1; k < 4; k++) {
            char what[64];
            snprintf(what, sizeof what, "(%d cores, %d threads) against (1, 1)", runs[k][0], runs[k][1]);
            same_patterns(&r[0], &r[k], what, layers[i]);
        }
        for (int k = 0; k < 4; k++) cnnviz_oip_result_free(&r[k]);
    }
}
END_TEST

static Suite *make_oip_suite(void) {
    Suite *s = suite_create("oip");
    TCase *t = tcase_create("oip");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, gradient_matches_finite_differences);
    tcase_add_test(t, objective_matches_engine_outputs);
    tcase_add_test(t, ascent_rises_and_marks_dead_maps);
    tcase_add_test(t, reproducible_and_independent_of_the_batch);
    tcase_add_test(t, restarts_keep_the_best);
    tcase_add_test(t, options_keep_pixels_in_range);
    tcase_add_test(t, bad_requests_are_refused);
    tcase_add_test(t, image_operations);
    tcase_add_test(t, default_model_every_live_map_climbs);
    tcase_add_test(t, patterns_same_bits_avx512_and_avx2);
    tcase_add_test(t, patterns_same_bits_any_thread_count);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return run_suite(make_oip_suite()); }
