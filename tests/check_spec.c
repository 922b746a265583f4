// labels: unit
/* The compact architecture spec: every item and option builds the Keras
 * layer it documents, and every mistake gets a message naming the spec, the
 * item and its position (the messages are part of the contract). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/model.h"
#include "cnnviz/train.h"
#include "model-impl.h"
#include "testutil.h"

static cnnviz_model *build(const char *spec) {
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_msg(cnnviz_model_from_spec(spec, &in, &m, &err) == CNNVIZ_OK, "%s: %s", spec, err.msg);
    return m;
}

static void expect_error(const char *spec, const char *msg) {
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = (cnnviz_model *)1;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_from_spec(spec, &in, &m, &err), CNNVIZ_ERR_INVALID);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.msg, msg);
}

static void expect_shape(const cnnviz_model *m, int i, const char *name, const char *shape) {
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, i, &info);
    char buf[64];
    cnnviz_shape_format(&info.output_shape, buf, sizeof buf);
    ck_assert_str_eq(info.name, name);
    ck_assert_str_eq(buf, shape);
}

START_TEST(test_seed_net) {
    cnnviz_model *m = build(CNNVIZ_SEED_ARCH);
    ck_assert_int_eq(cnnviz_model_num_layers(m), 8);
    ck_assert_int_eq((int)cnnviz_model_num_params(m), 96844); /* the articles' count */
    expect_shape(m, 0, "conv2d", "(26, 26, 32)");
    expect_shape(m, 1, "max_pooling2d", "(13, 13, 32)");
    expect_shape(m, 2, "conv2d_1", "(11, 11, 64)");
    expect_shape(m, 3, "max_pooling2d_1", "(5, 5, 64)");
    expect_shape(m, 4, "conv2d_2", "(3, 3, 64)");
    expect_shape(m, 5, "flatten", "(576)");
    expect_shape(m, 6, "dense", "(70)");
    expect_shape(m, 7, "dense_1", "(10)");
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_RELU);
    cnnviz_model_layer_info(m, 6, &info);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_RELU);
    cnnviz_model_layer_info(m, 7, &info);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_SOFTMAX);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_check_trainable(m, &err), CNNVIZ_OK);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(test_variants) {
    /* the articles' wider variant: 64/64/128 maps and Dense 120 */
    cnnviz_model *m = build("C64k3-P2-C64k3-P2-C128k3-F-D120-D10");
    expect_shape(m, 4, "conv2d_2", "(3, 3, 128)");
    ck_assert_int_eq((int)cnnviz_model_num_params(m),
                     (9 * 64 + 64) + (9 * 64 * 64 + 64) + (9 * 64 * 128 + 128) + (1152 * 120 + 120) + (1210));
    cnnviz_model_free(m);
    /* 5x5 kernels */
    m = build("C32k5-P2-C64k5-P2-F-D10");
    expect_shape(m, 0, "conv2d", "(24, 24, 32)");
    expect_shape(m, 3, "max_pooling2d_1", "(4, 4, 64)");
    expect_shape(m, 4, "flatten", "(1024)");
    cnnviz_model_free(m);
}
END_TEST

START_TEST(test_options) {
    cnnviz_model *m = build("C8k5x3s2same:tanh-A3s1-P2same-Dr0.25-F-D12l2=1e-3l1=0.5-D10:linear");
    expect_shape(m, 0, "conv2d", "(14, 14, 8)");            /* same, stride 2: ceil(28/2) */
    expect_shape(m, 1, "average_pooling2d", "(12, 12, 8)"); /* window 3, stride 1 */
    expect_shape(m, 2, "max_pooling2d", "(6, 6, 8)");
    expect_shape(m, 3, "dropout", "(6, 6, 8)");
    expect_shape(m, 5, "dense", "(12)");
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_TANH);
    ck_assert_int_eq(info.param[0].shape.dim[0], 5);
    ck_assert_int_eq(info.param[0].shape.dim[1], 3);
    cnnviz_model_layer_info(m, 5, &info);
    ck_assert_float_eq(info.param[0].l2, 1e-3f);
    ck_assert_float_eq(info.param[0].l1, 0.5f);
    ck_assert_float_eq(info.param[1].l2, 0.0f); /* kernel regularizers only */
    cnnviz_model_layer_info(m, 6, &info);
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_LINEAR); /* :linear overrides the softmax */
    cnnviz_model_free(m);
    /* P alone is a 2x2 pool; Dr with a bare fraction */
    m = build("P-F-Dr.5-D10");
    expect_shape(m, 0, "max_pooling2d", "(14, 14, 1)");
    cnnviz_model_free(m);
}
END_TEST

START_TEST(test_regularize_dense_kernels) {
    cnnviz_model *m = build(CNNVIZ_SEED_ARCH);
    ck_assert_int_eq(cnnviz_regularize_dense_kernels(m, 0.0f, 0.001f), 2);
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_float_eq(info.param[0].l2, 0.0f); /* conv kernels untouched */
    cnnviz_model_layer_info(m, 7, &info);
    ck_assert_float_eq(info.param[0].l2, 0.001f);
    /* the layer's spec follows, so a saved model_config names the regularizer */
    ck_assert_float_eq(m->layers[7]->spec.l2, 0.001f);
    cnnviz_model_free(m);
}
END_TEST

START_TEST(test_errors) {
    expect_error("C32k3-Q2", "arch 'C32k3-Q2': unknown layer 'Q2' at position 2");
    expect_error("", "arch '': the spec is empty");
    expect_error("C32--D10", "arch 'C32--D10': empty layer at position 2");
    expect_error("C32k3-F", "arch 'C32k3-F': the last layer must be D<units> (the softmax output), not 'F' at position 2");
    expect_error("C32-D10", "arch 'C32-D10': 'D10' needs a flat input: put F before it at position 2");
    expect_error("C-F-D10", "arch 'C-F-D10': 'C' needs a positive size after 'C' at position 1");
    expect_error("C32kx-F-D10", "arch 'C32kx-F-D10': bad option 'kx' in 'C32kx' at position 1");
    expect_error("C32k3z-F-D10", "arch 'C32k3z-F-D10': bad option 'z' in 'C32k3z' at position 1");
    expect_error("F-D10:swish", "arch 'F-D10:swish': bad option ':swish' in 'D10:swish' at position 2");
    expect_error("Fx-D10", "arch 'Fx-D10': bad option 'x' in 'Fx' at position 1");
    expect_error("Dr1.5-F-D10", "arch 'Dr1.5-F-D10': dropout 'Dr1.5' needs a rate in [0, 1), e.g. Dr0.25 at position 1");
    expect_error("P4s2l2=1-F-D10", "arch 'P4s2l2=1-F-D10': bad option 'l2=1' in 'P4s2l2=1' at position 1");
    /* sizes past the budget are one-line errors, not an int overflow in
     * conv2d_create or an allocation of gigabytes (the last two are
     * tests/fuzz/fuzz_arch's reproducers as found) */
    expect_error("C1k46341x46341same-F-D10", "arch 'C1k46341x46341same-F-D10': cannot build 'C1k46341x46341same' at "
                                            "position 1: conv2d with a 46341x46341 kernel and 1 filters on input "
                                            "(28, 28, 1) is too large");
    expect_error("C1k65536-F-D10", "arch 'C1k65536-F-D10': cannot build 'C1k65536' at position 1: conv2d with a "
                                   "65536x65536 kernel and 1 filters on input (28, 28, 1) is too large");
    expect_error("C999999-C2-F-D10", "arch 'C999999-C2-F-D10': 'C999999' outputs 675999324 values a sample, over the "
                                     "limit of 33554432 at position 1");
    expect_error("C37777-F-D96", "arch 'C37777-F-D96': cannot build 'D96' at position 3: dense with 96 units on "
                                 "25537252 inputs is too large");
    expect_error("C3k5-P2-C64k463412-C64k4631FD10", "arch 'C3k5-P2-C64k463412-C64k4631FD10': cannot build "
                                                    "'C64k463412' at position 3: conv2d with a 463412x463412 kernel "
                                                    "and 64 filters on input (12, 12, 3) is too large");
    expect_error("F-D646341-D726-D46", "arch 'F-D646341-D726-D46': 'D646341' makes the model 507377685 weights, over "
                                       "the limit of 33554432 at position 2");
    /* a layer that cannot be built says why */
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_from_spec("C8k3-P2-C8k3-P2-C8k3-P2-C8k3-F-D10", &in, &m, &err), CNNVIZ_ERR_INVALID);
    ck_assert_msg(strncmp(err.msg, "arch 'C8k3-P2-C8k3-P2-C8k3-P2-C8k3-F-D10': cannot build 'C8k3' at position 7: ",
                          77) == 0,
                  "%s", err.msg);
}
END_TEST

START_TEST(test_help_mentions_every_item) {
    const char *h = cnnviz_spec_help();
    static const char *const items[] = {"C<filters>", "P<n>", "A<n>", "F ", "D<units>", "Dr<rate>", "l2=", "same"};
    for (size_t i = 0; i < sizeof items / sizeof *items; i++)
        ck_assert_msg(strstr(h, items[i]) != NULL, "help lacks %s", items[i]);
}
END_TEST

static Suite *make_spec_suite(void) {
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("spec");
    tcase_add_test(tc, test_seed_net);
    tcase_add_test(tc, test_variants);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_regularize_dense_kernels);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_help_mentions_every_item);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(make_spec_suite()); }
