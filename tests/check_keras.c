// labels: unit data
/* Keras files in and out: every real model in shared/data/keras loads and
 * reproduces the reference per-layer outputs; every file in bad/ fails with
 * the right code and message; a saved model reads back bit-exact and an
 * independent numpy reader (tests/tools/keras_h5_reader.py) computes the same
 * outputs from it; to_json() text builds the right model. */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include "cnnviz/io.h"
#include "cnnviz/model.h"
#include "io/keras-impl.h"
#include "testutil.h"

static char keras_dir[4096]; /* shared/data/keras, empty when absent */

static const char *const models[] = {
    "k2_conv4_kaggle_transposed.h5", "k2_fashion_bn.h5",     "k3_bn_rescaling_aug.keras",
    "k3_strides.keras",              "k3h5_cnn.h5",          "k3h5_mlp.h5",
    "tfk2_15_cnn.h5",                "tfk2_5x5_same_dropout.h5", "tfk2_avgpool.h5",
    "tfk2_bn_strides_same.h5",       "tfk2_fashion_mlp.h5",  "tfk2_pool3_sigmoid_raw.h5",
    "tfk2_same_pool4_raw.h5",
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

/* Per-layer agreement with the float64 reference: |a-b| / max(|b|, floor)
 * <= 1e-5 with floor = max(1e-3, 0.1 * max|b| of the layer). A plain 1e-3
 * floor is stricter than float32 allows: a conv output near zero is a sum of
 * O(1) terms, so its float32 error is ~1e-7 of the layer's scale, and even
 * two float64 readers differ by that much once their inputs are float32. */
#define LAYER_TOL 1e-5

static double layer_diff(const float *a, const float *b, size_t n, size_t *where) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)b[i]));
    return max_rel_diff(a, b, n, fmax(1e-3, 0.1 * mx), where);
}

static cnnviz_model *load_ok(const char *path) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_model_load(path, &m, &err);
    ck_assert_msg(st == CNNVIZ_OK && m, "%s: %s", path, err.msg);
    return m;
}

/* --- every real model, layer by layer --------------------------------------- */

START_TEST(test_real_model_layers) {
    const char *file = models[_i];
    char path[4300], dir[4600], name[256];
    snprintf(path, sizeof path, "%s/%s", keras_dir, file);
    snprintf(name, sizeof name, "%.*s", (int)(strrchr(file, '.') - file), file);
    snprintf(dir, sizeof dir, "%s/expected/%s/layers_img0", keras_dir, name);
    cnnviz_model *m = load_ok(path);
    ck_assert_ptr_nonnull(cnnviz_model_meta(m, "keras_version"));
    ck_assert_int_eq(cnnviz_model_has_input_scale(m), 0); /* Keras files do not record it */

    char p[4900];
    int rank, dims[8];
    size_t count;
    snprintf(p, sizeof p, "%s/input.npy", dir);
    float *input = read_npy_f32(p, &rank, dims, &count);
    ck_assert_msg(input != NULL, "cannot read %s", p);
    cnnviz_shape in = cnnviz_model_input_shape(m);
    ck_assert_uint_eq(count, cnnviz_shape_size(&in));

    cnnviz_error err;
    cnnviz_workspace_options o = cnnviz_workspace_options_init(1);
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    ck_assert_ptr_nonnull(ws);
    ck_assert_ptr_nonnull(cnnviz_forward(ws, input, 1, &err));

    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int matched = 0, skipped_input = 0;
    double worst = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 8 || e->d_name[2] != '_' || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
        char lname[256];
        snprintf(lname, sizeof lname, "%.*s", (int)(len - 7), e->d_name + 3);
        int li = cnnviz_model_find_layer(m, lname);
        if (li < 0) {
            /* the reference numbers the InputLayer as 00; it is not a layer */
            ck_assert_msg(strncmp(e->d_name, "00_", 3) == 0, "%s: no layer '%s'", file, lname);
            skipped_input++;
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        float *ref = read_npy_f32(p, &rank, dims, &count);
        ck_assert_msg(ref != NULL, "cannot read %s", p);
        cnnviz_layer_info info;
        cnnviz_model_layer_info(m, li, &info);
        ck_assert_int_eq(rank, info.output_shape.rank);
        for (int k = 0; k < rank; k++) ck_assert_int_eq(dims[k], info.output_shape.dim[k]);
        size_t where = 0;
        double r = layer_diff(cnnviz_layer_output(ws, li, NULL), ref, count, &where);
        ck_assert_msg(r <= LAYER_TOL, "%s layer %s: relative difference %g at %zu (%g vs %g)", file, lname, r, where,
                      (double)cnnviz_layer_output(ws, li, NULL)[where], (double)ref[where]);
        worst = fmax(worst, r);
        free(ref);
        matched++;
    }
    closedir(d);
    ck_assert_int_eq(matched, cnnviz_model_num_layers(m));
    ck_assert_int_le(skipped_input, 1);
    printf("%-32s %2d layers, %7zu weights, worst layer difference %.3g\n", file, matched,
           cnnviz_model_num_params(m), worst);
    cnnviz_workspace_free(ws);
    free(input);
    cnnviz_model_free(m);
}
END_TEST

/* The first 100 test images through the whole model against
 * probs_first100.txt, with the preprocessing accuracy.txt names ("scale none"
 * = raw 0..255, "scale 255" = x/255, "transpose", "dataset fashion-mnist"). */
START_TEST(test_real_model_probs) {
    const char *file = models[_i];
    char path[4300], exp[4600], line[4096];
    snprintf(path, sizeof path, "%s/%s", keras_dir, file);
    snprintf(exp, sizeof exp, "%s/expected/%.*s/accuracy.txt", keras_dir, (int)(strrchr(file, '.') - file), file);
    FILE *f = fopen(exp, "r");
    ck_assert_ptr_nonnull(f);
    int raw = 0, transpose = 0, fashion = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "scale none", 10) == 0) raw = 1;
        if (strncmp(line, "scale ", 6) == 0 && strstr(line, "transpose")) transpose = 1;
        if (strncmp(line, "dataset fashion-mnist", 21) == 0) fashion = 1;
    }
    fclose(f);
    char images[4300];
    if (fashion) {
        snprintf(images, sizeof images, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
        if (access(images, R_OK) != 0) {
            printf("note: %s probabilities skipped (Fashion-MNIST not installed)\n", file);
            return;
        }
    } else {
        const char *mn = shared_path("data/mnist/t10k-images-idx3-ubyte.gz");
        ck_assert_msg(mn != NULL, "shared data/mnist is missing");
        snprintf(images, sizeof images, "%s", mn);
    }
    cnnviz_error err;
    cnnviz_idx_images im;
    ck_assert_msg(cnnviz_idx_load_images(images, &im, &err) == CNNVIZ_OK, "%s", err.msg);
    enum { N = 100, PIX = 784 };
    ck_assert_int_ge(im.count, N);
    ck_assert_int_eq(im.rows * im.cols, PIX);
    cnnviz_model *m = load_ok(path);
    cnnviz_shape in = cnnviz_model_input_shape(m);
    ck_assert_uint_eq(cnnviz_shape_size(&in), PIX);
    float *x = malloc(sizeof(float) * N * PIX), y[N * 10];
    cnnviz_input_scale sc = {raw ? CNNVIZ_SCALE_RAW : CNNVIZ_SCALE_UNIT, 0.0f, 1.0f};
    cnnviz_scale_pixels(im.pixels, x, (size_t)N * PIX, sc);
    for (int i = 0; transpose && i < N; i++) cnnviz_transpose_image(x + (size_t)i * PIX, im.rows, im.cols);
    ck_assert_int_eq(cnnviz_model_predict(m, x, N, 0, y, &err), CNNVIZ_OK);

    snprintf(exp + strlen(exp) - strlen("accuracy.txt"), 32, "probs_first100.txt");
    f = fopen(exp, "r");
    ck_assert_ptr_nonnull(f);
    double worst = 0;
    for (int i = 0; i < N * 10; i++) {
        double want;
        ck_assert_int_eq(fscanf(f, "%lf", &want), 1);
        worst = fmax(worst, fabs(want - (double)y[i]));
    }
    fclose(f);
    ck_assert_msg(worst <= 1e-5, "%s: probabilities of the first 100 images differ by up to %g", file, worst);
    printf("%-32s first 100 probabilities within %.3g\n", file, worst);
    free(x);
    cnnviz_idx_images_free(&im);
    cnnviz_model_free(m);
}
END_TEST

/* Spot checks of what the MANIFEST calls out per file. */
START_TEST(test_real_model_quirks) {
    char path[4300];
    cnnviz_layer_info info;
    /* Keras 3 .keras: weight groups named by class counter, not layer name */
    snprintf(path, sizeof path, "%s/k3_strides.keras", keras_dir);
    cnnviz_model *m = load_ok(path);
    ck_assert_str_eq(cnnviz_model_meta(m, "keras_version"), "3.13.2");
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_str_eq(info.name, "conv2d_12");
    ck_assert_int_eq(info.output_shape.dim[0], 13);
    ck_assert_uint_eq(cnnviz_model_num_params(m), 42762);
    cnnviz_model_free(m);
    /* augmentation layers are identities that keep their Keras class */
    snprintf(path, sizeof path, "%s/k3_bn_rescaling_aug.keras", keras_dir);
    m = load_ok(path);
    cnnviz_model_layer_info(m, 1, &info);
    ck_assert_str_eq(info.class_name, "RandomRotation");
    ck_assert_int_eq(info.type, CNNVIZ_LAYER_IDENTITY);
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_int_eq(info.type, CNNVIZ_LAYER_RESCALING);
    ck_assert_uint_eq(cnnviz_model_num_params(m), 94218);
    cnnviz_model_free(m);
    /* rank-2 input without a channel axis */
    snprintf(path, sizeof path, "%s/tfk2_fashion_mlp.h5", keras_dir);
    m = load_ok(path);
    cnnviz_shape in = cnnviz_model_input_shape(m);
    ck_assert_int_eq(in.rank, 2);
    ck_assert_str_eq(cnnviz_model_meta(m, "keras_version"), "2.8.0");
    cnnviz_model_free(m);
    /* rank-1 input */
    snprintf(path, sizeof path, "%s/k3h5_mlp.h5", keras_dir);
    m = load_ok(path);
    in = cnnviz_model_input_shape(m);
    ck_assert_int_eq(in.rank, 1);
    ck_assert_int_eq(in.dim[0], 784);
    cnnviz_model_free(m);
    /* Keras <= 2.1 config list, separate Activation layers, BN eps */
    snprintf(path, sizeof path, "%s/k2_fashion_bn.h5", keras_dir);
    m = load_ok(path);
    ck_assert_int_eq(cnnviz_model_num_layers(m), 18);
    cnnviz_model_layer_info(m, 1, &info);
    ck_assert_int_eq(info.type, CNNVIZ_LAYER_BATCHNORM);
    ck_assert_int_eq(info.nparam, 4);
    ck_assert_str_eq(info.param[2].name, "moving_mean");
    cnnviz_model_free(m);
}
END_TEST

/* --- files that must be rejected ------------------------------------------ */

static const struct {
    const char *file;
    cnnviz_status code;
    const char *msg;
} bad_files[] = {
    {"bad/truncated_60pct.h5", CNNVIZ_ERR_FORMAT, "truncated or damaged HDF5 file"},
    {"bad/lfs_pointer.h5", CNNVIZ_ERR_FORMAT, "git lfs pointer, not the model file (run git lfs pull)"},
    {"bad/weights_only_k2.h5", CNNVIZ_ERR_FORMAT,
     "weights only, no architecture (save the whole model with model.save)"},
    {"bad/weights_only_k1.h5", CNNVIZ_ERR_FORMAT,
     "weights only, no architecture (a Keras 1 save_weights file; save the whole model with model.save)"},
    {"bad/weights_only_k3.weights.h5", CNNVIZ_ERR_FORMAT,
     "weights only, no architecture (save the whole model with model.save)"},
    {"bad/unsupported_upsampling2d_k3.h5", CNNVIZ_ERR_UNSUPPORTED,
     "layer 'up_sampling2d' (UpSampling2D) is not supported"},
};

START_TEST(test_bad_files) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", keras_dir, bad_files[_i].file);
    cnnviz_model *m = (cnnviz_model *)&m; /* must be reset to NULL */
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_model_load(path, &m, &err);
    ck_assert_int_eq(st, bad_files[_i].code);
    ck_assert_int_eq(err.code, bad_files[_i].code);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.msg, bad_files[_i].msg);
    ck_assert_str_eq(err.file, path);
}
END_TEST

/* --- building models without data ------------------------------------------ */

static cnnviz_model *from_json(const char *json) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_model_from_keras_json(json, "model.json", &m, &err);
    ck_assert_msg(st == CNNVIZ_OK, "from_keras_json: %s", err.msg);
    return m;
}

static void expect_json_error(const char *json, cnnviz_status code, const char *msg) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_from_keras_json(json, "model.json", &m, &err), code);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, msg) != NULL, "'%s' does not contain '%s'", err.msg, msg);
    ck_assert_str_eq(err.file, "model.json");
}

/* What tf.keras 2.15 model.to_json() prints for a small CNN (trimmed of
 * initializer details, which we ignore anyway). */
static const char *tfk2_json =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 28, 28, 1], \"dtype\": "
    "\"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"conv2d_input\"}},"
    "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"trainable\": true, \"dtype\": \"float32\", "
    "\"filters\": 8, \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"valid\", \"data_format\": "
    "\"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1, \"activation\": \"relu\", \"use_bias\": true, "
    "\"kernel_regularizer\": {\"class_name\": \"L2\", \"config\": {\"l2\": 0.0005}}}},"
    "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"max_pooling2d\", \"pool_size\": [2, 2], "
    "\"padding\": \"valid\", \"strides\": null, \"data_format\": \"channels_last\"}},"
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\", \"data_format\": \"channels_last\"}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 10, \"activation\": \"softmax\", "
    "\"use_bias\": true}}]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}";

START_TEST(test_json_sequential) {
    cnnviz_model *m = from_json(tfk2_json);
    cnnviz_layer_info info;
    ck_assert_int_eq(cnnviz_model_num_layers(m), 4);
    cnnviz_model_layer_info(m, 0, &info);
    ck_assert_str_eq(info.name, "conv2d");
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_RELU);
    ck_assert_float_eq_tol(info.param[0].l2, 0.0005f, 1e-9f);
    cnnviz_model_layer_info(m, 1, &info);
    ck_assert_int_eq(info.output_shape.dim[0], 13); /* strides null = pool size */
    cnnviz_shape out = cnnviz_model_output_shape(m);
    ck_assert_int_eq(out.dim[0], 10);
    ck_assert_uint_eq(cnnviz_model_num_params(m), 8 * 9 + 8 + 13 * 13 * 8 * 10 + 10);
    ck_assert_str_eq(cnnviz_model_meta(m, "keras_version"), "2.15.0");
    cnnviz_model_free(m);
}
END_TEST

/* Keras 3 Functional chain (to_json of keras.Model(inputs, outputs)). */
static const char *k3_functional =
    "{\"module\": \"keras.src.models.functional\", \"class_name\": \"Functional\", \"config\": {\"name\": "
    "\"functional\", \"trainable\": true, \"layers\": ["
    "{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 28, 28], "
    "\"dtype\": \"float32\", \"sparse\": false, \"name\": \"input_layer\"}, \"registered_name\": null, \"name\": "
    "\"input_layer\", \"inbound_nodes\": []},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\", \"dtype\": "
    "{\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": \"float32\"}}, "
    "\"data_format\": \"channels_last\"}, \"name\": \"flatten\", \"inbound_nodes\": [{\"args\": [{\"class_name\": "
    "\"__keras_tensor__\", \"config\": {\"shape\": [null, 28, 28], \"dtype\": \"float32\", \"keras_history\": "
    "[\"input_layer\", 0, 0]}}], \"kwargs\": {}}]},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 32, "
    "\"activation\": \"relu\"}, \"name\": \"dense\", \"inbound_nodes\": [{\"args\": [{\"class_name\": "
    "\"__keras_tensor__\", \"config\": {\"shape\": [null, 784], \"keras_history\": [\"flatten\", 0, 0]}}], "
    "\"kwargs\": {}}]},"
    "{\"module\": \"keras.layers\", \"class_name\": \"LeakyReLU\", \"config\": {\"name\": \"leaky_re_lu\", "
    "\"negative_slope\": 0.1}, \"name\": \"leaky_re_lu\", \"inbound_nodes\": [{\"args\": [{\"class_name\": "
    "\"__keras_tensor__\", \"config\": {\"keras_history\": [\"dense\", 0, 0]}}], \"kwargs\": {}}]},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Dense\", \"config\": {\"name\": \"dense_1\", \"units\": 10, "
    "\"activation\": \"softmax\"}, \"name\": \"dense_1\", \"inbound_nodes\": [{\"args\": [{\"class_name\": "
    "\"__keras_tensor__\", \"config\": {\"keras_history\": [\"leaky_re_lu\", 0, 0]}}], \"kwargs\": {}}]}],"
    "\"input_layers\": [[\"input_layer\", 0, 0]], \"output_layers\": [[\"dense_1\", 0, 0]]}}";

START_TEST(test_json_functional) {
    cnnviz_model *m = from_json(k3_functional);
    ck_assert_int_eq(cnnviz_model_num_layers(m), 4);
    cnnviz_shape in = cnnviz_model_input_shape(m);
    ck_assert_int_eq(in.rank, 2);
    cnnviz_layer_info info;
    cnnviz_model_layer_info(m, 2, &info);
    ck_assert_str_eq(info.class_name, "LeakyReLU");
    ck_assert_int_eq(info.activation, CNNVIZ_ACT_LEAKY_RELU);
    cnnviz_model_free(m);

    /* a skip connection: dense_1 reads flatten, not leaky_re_lu */
    char *branchy = strdup(k3_functional);
    char *p = strstr(branchy, "[\"leaky_re_lu\", 0, 0]");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "[\"flatten\",     0, 0]", 21);
    expect_json_error(branchy, CNNVIZ_ERR_UNSUPPORTED, "functional model with branches is not supported");
    free(branchy);
}
END_TEST

/* Keras 2.0 list form with batch_input_shape on the first layer. */
START_TEST(test_json_list_form_and_errors) {
    cnnviz_model *m = from_json(
        "{\"class_name\": \"Sequential\", \"config\": [{\"class_name\": \"Dense\", \"config\": {\"name\": "
        "\"dense_1\", \"batch_input_shape\": [null, 20], \"units\": 5, \"activation\": \"tanh\", \"use_bias\": "
        "false}}, {\"class_name\": \"Activation\", \"config\": {\"name\": \"act\", \"activation\": \"elu\"}}]}");
    ck_assert_uint_eq(cnnviz_model_num_params(m), 100);
    cnnviz_model_free(m);

    expect_json_error("{\"class_name\": \"Sequential\", \"config\": [", CNNVIZ_ERR_FORMAT, "not valid JSON");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Dense\", "
                      "\"config\": {\"name\": \"d\", \"units\": 4}}]}}",
                      CNNVIZ_ERR_FORMAT, "the model config has no input shape");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Dense\", "
                      "\"config\": {\"name\": \"d\", \"units\": 4, \"batch_input_shape\": [null, 3], "
                      "\"activation\": \"selu\"}}]}}",
                      CNNVIZ_ERR_UNSUPPORTED, "layer 'd' (Dense): activation 'selu' is not supported");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Conv2D\", "
                      "\"config\": {\"name\": \"c\", \"filters\": 4, \"kernel_size\": 3, \"batch_input_shape\": "
                      "[null, 1, 8, 8], \"data_format\": \"channels_first\"}}]}}",
                      CNNVIZ_ERR_UNSUPPORTED, "layer 'c' (Conv2D): data_format 'channels_first' is not supported");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"ReLU\", "
                      "\"config\": {\"name\": \"r\", \"max_value\": 6.0, \"batch_input_shape\": [null, 3]}}]}}",
                      CNNVIZ_ERR_UNSUPPORTED, "layer 'r' (ReLU): max_value");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"LSTM\", "
                      "\"config\": {\"name\": \"lstm\", \"batch_input_shape\": [null, 3, 4]}}]}}",
                      CNNVIZ_ERR_UNSUPPORTED, "layer 'lstm' (LSTM) is not supported");
    expect_json_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Dense\", "
                      "\"config\": {\"name\": \"d\", \"units\": 4, \"batch_input_shape\": [null, null]}}]}}",
                      CNNVIZ_ERR_UNSUPPORTED, "has unknown dimensions");
}
END_TEST

/* A model that uses every layer type and option the writer knows. */
static cnnviz_model *build_everything(void) {
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_error err;
    cnnviz_layer_spec s[24];
    int n = 0;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_RESCALING);
    s[n].scale = 1.0f / 255, s[n++].offset = -0.25f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_IDENTITY);
    s[n++].class_name = "RandomRotation";
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s[n].filters = 6, s[n].padding = CNNVIZ_PAD_SAME, s[n].strides[0] = s[n].strides[1] = 2;
    s[n].activation = CNNVIZ_ACT_RELU, s[n++].l2 = 5e-4f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_BATCHNORM);
    s[n++].epsilon = 1e-5f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s[n].class_name = "LeakyReLU", s[n].activation = CNNVIZ_ACT_LEAKY_RELU, s[n++].alpha = 0.1f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_MAXPOOL2D);
    n++;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_IDENTITY);
    s[n].class_name = "SpatialDropout2D", s[n++].rate = 0.125f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s[n].filters = 4, s[n].kernel[0] = s[n].kernel[1] = 2, s[n].no_bias = 1, s[n++].activation = CNNVIZ_ACT_TANH;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_AVGPOOL2D);
    s[n].padding = CNNVIZ_PAD_SAME, s[n].strides[0] = s[n].strides[1] = 1;
    n++;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_DROPOUT);
    s[n++].rate = 0.25f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    n++;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s[n].units = 16, s[n++].activation = CNNVIZ_ACT_ELU;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_BATCHNORM);
    s[n++].bn_center = 0;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s[n].class_name = "ELU", s[n].activation = CNNVIZ_ACT_ELU, s[n++].alpha = 0.5f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s[n++].activation = CNNVIZ_ACT_SIGMOID;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_RESHAPE);
    s[n++].target = cnnviz_shape3(4, 4, 1);
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s[n].class_name = "ReLU", s[n++].activation = CNNVIZ_ACT_RELU;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    s[n++].name = "flat_again";
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s[n].units = 10, s[n].l1 = 1e-4f, s[n++].l2 = 2e-3f;
    s[n] = cnnviz_layer_spec_init(CNNVIZ_LAYER_ACTIVATION);
    s[n].class_name = "Softmax", s[n++].activation = CNNVIZ_ACT_SOFTMAX;
    for (int i = 0; i < n; i++) ck_assert_msg(cnnviz_model_add(m, &s[i], &err) == CNNVIZ_OK, "add %d: %s", i, err.msg);
    ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 7, 1);
    cnnviz_model_init_weights(m, &rng);
    /* non-trivial BN statistics and biases so every tensor matters */
    for (int i = 0; i < cnnviz_model_num_layers(m); i++) {
        cnnviz_layer_info info;
        cnnviz_model_layer_info(m, i, &info);
        for (int k = 0; k < info.nparam; k++)
            if (strcmp(info.param[k].name, "kernel") != 0)
                for (size_t j = 0; j < info.param[k].size; j++)
                    info.param[k].data[j] = 0.5f + 0.5f * cnnviz_rng_uniform(&rng);
    }
    return m;
}

static float *random_input(const cnnviz_model *m, int n) {
    cnnviz_shape in = cnnviz_model_input_shape(m);
    size_t sz = cnnviz_shape_size(&in) * (size_t)n;
    float *x = malloc(sz * sizeof *x);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 11, 3);
    for (size_t i = 0; i < sz; i++) x[i] = 255.0f * cnnviz_rng_uniform(&rng);
    return x;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

START_TEST(test_save_load_round_trip) {
    const char *dir = scratch_dir();
    ck_assert_ptr_nonnull(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/everything.h5", dir);
    cnnviz_model *m = build_everything();
    cnnviz_error err;
    cnnviz_input_scale sc = {CNNVIZ_SCALE_MEANSTD, 0.1307f, 0.3081f};
    cnnviz_model_set_input_scale(m, sc);
    ck_assert_int_eq(cnnviz_model_set_meta(m, "cnnviz_history", "{\"loss\":[0.5,0.25]}", &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_set_meta(m, "cnnviz_seed", "42", &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_set_meta(m, "keras_version", "9.9", &err), CNNVIZ_OK); /* not ours: not saved */
    ck_assert_msg(cnnviz_model_save(m, path, &err) == CNNVIZ_OK, "save: %s", err.msg);
    ck_assert_int_eq(count_entries(dir), 1); /* no temporary left behind */

    cnnviz_model *r = load_ok(path);
    ck_assert_int_eq(cnnviz_model_num_layers(r), cnnviz_model_num_layers(m));
    for (int i = 0; i < cnnviz_model_num_layers(m); i++) {
        cnnviz_layer_info a, b;
        cnnviz_model_layer_info(m, i, &a);
        cnnviz_model_layer_info(r, i, &b);
        ck_assert_str_eq(a.name, b.name);
        ck_assert_str_eq(a.class_name, b.class_name);
        ck_assert_int_eq(a.type, b.type);
        ck_assert_int_eq(a.activation, b.activation);
        ck_assert(cnnviz_shape_equal(&a.output_shape, &b.output_shape));
        ck_assert_int_eq(a.nparam, b.nparam);
        for (int k = 0; k < a.nparam; k++) {
            ck_assert_str_eq(a.param[k].name, b.param[k].name);
            ck_assert(a.param[k].l1 == b.param[k].l1 && a.param[k].l2 == b.param[k].l2);
        }
    }
    ck_assert_uint_eq(cnnviz_model_num_params(r), cnnviz_model_num_params(m));
    ck_assert_int_eq(memcmp(cnnviz_model_params(r), cnnviz_model_params(m),
                            cnnviz_model_num_params(m) * sizeof(float)),
                     0);
    /* meta: every cnnviz_* entry, the input scale, and the version we claim */
    ck_assert_str_eq(cnnviz_model_meta(r, "cnnviz_history"), "{\"loss\":[0.5,0.25]}");
    ck_assert_str_eq(cnnviz_model_meta(r, "cnnviz_seed"), "42");
    ck_assert_str_eq(cnnviz_model_meta(r, "keras_version"), "2.15.0");
    ck_assert_int_eq(cnnviz_model_has_input_scale(r), 1);
    cnnviz_input_scale rs = cnnviz_model_input_scale(r);
    ck_assert_int_eq(rs.kind, CNNVIZ_SCALE_MEANSTD);
    ck_assert(rs.mean == sc.mean && rs.std == sc.std);

    /* the same numbers out, bit for bit */
    float *x = random_input(m, 3);
    float ya[30], yb[30];
    ck_assert_int_eq(cnnviz_model_predict(m, x, 3, 0, ya, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_predict(r, x, 3, 0, yb, &err), CNNVIZ_OK);
    ck_assert_int_eq(memcmp(ya, yb, sizeof ya), 0);

    /* saving the loaded model again gives the same file content */
    char again[4300];
    snprintf(again, sizeof again, "%s/again.h5", dir);
    ck_assert_int_eq(cnnviz_model_save(r, again, &err), CNNVIZ_OK);
    cnnviz_model *r2 = load_ok(again);
    ck_assert_int_eq(memcmp(cnnviz_model_params(r2), cnnviz_model_params(m),
                            cnnviz_model_num_params(m) * sizeof(float)),
                     0);
    cnnviz_model_free(r2);
    free(x);
    cnnviz_model_free(r);
    cnnviz_model_free(m);
    unlink(path);
    unlink(again);
    rmdir(dir);
}
END_TEST

START_TEST(test_save_errors) {
    const char *dir = scratch_dir();
    ck_assert_ptr_nonnull(dir);
    char path[4300];
    cnnviz_model *m = build_everything();
    cnnviz_error err;
    /* a folder that does not exist */
    snprintf(path, sizeof path, "%s/no/such/folder/m.h5", dir);
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_ERR_IO);
    ck_assert_str_eq(err.file, path);
    ck_assert_msg(strstr(err.msg, "No such file or directory") != NULL, "%s", err.msg);
    /* a "folder" that is a file (unwritable even for root) */
    char file[4300];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/plain/m.h5", dir);
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_ERR_IO);
    ck_assert_int_eq(count_entries(dir), 1); /* only "plain": nothing left behind */
    /* a name HDF5 cannot hold */
    cnnviz_shape in = cnnviz_shape1(4);
    cnnviz_model *bad = cnnviz_model_new(&in);
    cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s.units = 2, s.name = "a/b";
    ck_assert_int_eq(cnnviz_model_add(bad, &s, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(bad, &err), CNNVIZ_OK);
    snprintf(path, sizeof path, "%s/bad.h5", dir);
    ck_assert_int_eq(cnnviz_model_save(bad, path, &err), CNNVIZ_ERR_INVALID);
    ck_assert_int_eq(access(path, F_OK), -1);
    cnnviz_model_free(bad);
    cnnviz_model_free(m);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* Overwrite one element of a dataset in a saved file through HDF5. */
static void poke(const char *path, const char *dataset, size_t index, float value) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t sp = H5Dget_space(d);
    hsize_t npts = (hsize_t)H5Sget_simple_extent_npoints(sp);
    float *buf = malloc(npts * sizeof *buf);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    buf[index] = value;
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    free(buf);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static void set_root_attr(const char *path, const char *name, const char *value) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, t, &value), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
}

static void expect_load_error(const char *path, cnnviz_status code, const char *msg) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_load(path, &m, &err), code);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, msg) != NULL, "'%s' does not contain '%s'", err.msg, msg);
}

START_TEST(test_damaged_saved_files) {
    const char *dir = scratch_dir();
    ck_assert_ptr_nonnull(dir);
    char path[4300];
    snprintf(path, sizeof path, "%s/m.h5", dir);
    cnnviz_model *m = from_json(tfk2_json);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 1, 1);
    cnnviz_model_init_weights(m, &rng);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_OK);
    cnnviz_model_free(load_ok(path));

    /* a NaN weight */
    poke(path, "model_weights/dense/dense/kernel:0", 17, NAN);
    expect_load_error(path, CNNVIZ_ERR_NUMERIC, "layer 'dense' kernel has a non-finite weight");
    /* a config whose Dense wants another shape than the file holds */
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_OK);
    char *json = strdup(tfk2_json), *p = strstr(json, "\"filters\": 8");
    p[11] = '9';
    set_root_attr(path, "model_config", json);
    expect_load_error(path, CNNVIZ_ERR_FORMAT,
                      "layer 'conv2d': kernel has shape (3, 3, 1, 8) in the file but the layer needs (3, 3, 1, 9)");
    free(json);
    /* a bad input scale of ours */
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_OK);
    set_root_attr(path, "cnnviz_input_scale", "meanstd:0.5");
    expect_load_error(path, CNNVIZ_ERR_FORMAT, "bad cnnviz_input_scale 'meanstd:0.5'");
    /* Keras 1 full models */
    ck_assert_int_eq(cnnviz_model_save(m, path, &err), CNNVIZ_OK);
    set_root_attr(path, "keras_version", "1.2.2");
    expect_load_error(path, CNNVIZ_ERR_UNSUPPORTED, "Keras 1 model files are not supported");
    unlink(path);

    /* not a model at all; an empty file; a missing file; a zip that is not .keras */
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    expect_load_error(path, CNNVIZ_ERR_FORMAT, "not a Keras model file (neither HDF5 nor .keras zip)");
    f = fopen(path, "w");
    fclose(f);
    expect_load_error(path, CNNVIZ_ERR_FORMAT, "not a Keras model file");
    unlink(path);
    expect_load_error(path, CNNVIZ_ERR_IO, "cannot open: No such file or directory");
    snprintf(path, sizeof path, "%s/other.keras", dir);
    int ze;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    ck_assert_ptr_nonnull(z);
    zip_source_t *src = zip_source_buffer(z, "{}", 2, 0);
    ck_assert_int_ge(zip_file_add(z, "readme.json", src, 0), 0);
    ck_assert_int_eq(zip_close(z), 0);
    expect_load_error(path, CNNVIZ_ERR_FORMAT, "zip file without config.json, not a .keras model");
    unlink(path);
    cnnviz_model_free(m);
    rmdir(dir);
}
END_TEST

/* --- the independent numpy reader on a file we wrote --------------------- */

START_TEST(test_independent_reader) {
    const char *py = "/usr/bin/python3";
    if (access(py, X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy, h5py' 2>/dev/null") != 0) {
        printf("note: independent reader check skipped (no /usr/bin/python3 with numpy and h5py)\n");
        return;
    }
    const char *dir = scratch_dir();
    ck_assert_ptr_nonnull(dir);
    char model[4300], input[4300], cmd[13000];
    snprintf(model, sizeof model, "%s/everything.h5", dir);
    snprintf(input, sizeof input, "%s/input.f32", dir);
    cnnviz_model *m = build_everything();
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_model_save(m, model, &err), CNNVIZ_OK);
    const int n = 4;
    float *x = random_input(m, n), y[4 * 10];
    FILE *f = fopen(input, "wb");
    cnnviz_shape in = cnnviz_model_input_shape(m);
    ck_assert_uint_eq(fwrite(x, sizeof(float), cnnviz_shape_size(&in) * n, f), cnnviz_shape_size(&in) * n);
    fclose(f);
    ck_assert_int_eq(cnnviz_model_predict(m, x, n, 0, y, &err), CNNVIZ_OK);

    snprintf(cmd, sizeof cmd, "%s %s/tests/tools/keras_h5_reader.py '%s' '%s'", py, CNNVIZ_SOURCE_DIR, model, input);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    float theirs[4 * 10];
    int got = 0;
    while (got < n * 10 && fscanf(p, "%f", &theirs[got]) == 1) got++;
    int rc = pclose(p);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed (status %d)", cmd, rc);
    ck_assert_int_eq(got, n * 10);
    size_t where = 0;
    double r = max_rel_diff(y, theirs, (size_t)n * 10, 1e-3, &where);
    ck_assert_msg(r <= 1e-5, "independent reader disagrees: %g at %zu (%g vs %g)", r, where, (double)y[where],
                  (double)theirs[where]);
    printf("independent reader on a saved model: %d outputs agree to %.3g\n", n * 10, r);
    free(x);
    cnnviz_model_free(m);
    unlink(model);
    unlink(input);
    rmdir(dir);
}
END_TEST

/* --- the in-memory loader and its budget ------------------------------------ */

static unsigned char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void expect_memory_error(const void *buf, size_t len, const cnnviz_load_options *opt, const char *msg) {
    cnnviz_model *m = (cnnviz_model *)1;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_load_memory(buf, len, "mem", opt, &m, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.file, "mem");
    ck_assert_msg(strstr(err.msg, msg), "'%s' does not contain '%s'", err.msg, msg);
}

/* Every real model loads from memory with the same weights as from its
 * file; the config text handed back rebuilds the same model (what the
 * isolated loader's parent does); and each limit of the budget, set just
 * under what the model needs, refuses it. */
START_TEST(test_memory_loader_and_budget) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", keras_dir, models[_i]);
    size_t len;
    unsigned char *buf = read_whole(path, &len);
    cnnviz_model *ref = NULL, *m = NULL, *rebuilt = NULL;
    char *config = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_eq(cnnviz_model_load_in_process(path, &ref, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_keras_load_memory(buf, len, path, NULL, &m, &config, &err), CNNVIZ_OK);
    ck_assert_ptr_nonnull(config);
    size_t n = cnnviz_model_num_params(m);
    ck_assert_uint_eq(n, cnnviz_model_num_params(ref));
    ck_assert_int_eq(memcmp(cnnviz_model_params(m), cnnviz_model_params(ref), n * sizeof(float)), 0);
    ck_assert_int_eq(cnnviz_keras_build_json(config, strlen(config), path, NULL, &rebuilt, &err), CNNVIZ_OK);
    ck_assert_uint_eq(cnnviz_model_num_params(rebuilt), n);
    ck_assert_int_eq(cnnviz_model_num_layers(rebuilt), cnnviz_model_num_layers(m));

    cnnviz_load_options opt;
    cnnviz_load_options_init(&opt);
    opt.max_params = n - 1;
    expect_memory_error(buf, len, &opt, "over the limit of");
    cnnviz_load_options_init(&opt);
    opt.max_layers = cnnviz_model_num_layers(m) - 1;
    expect_memory_error(buf, len, &opt, "over the limit of");
    cnnviz_load_options_init(&opt);
    opt.max_file_bytes = len - 1;
    expect_memory_error(buf, len, &opt, "over the limit of");
    cnnviz_load_options_init(&opt);
    opt.max_config_bytes = strlen(config) - 1;
    expect_memory_error(buf, len, &opt, "over the limit of");
    cnnviz_load_options_init(&opt);
    opt.max_json_depth = 3;
    expect_memory_error(buf, len, &opt, "nests deeper than the limit of 3 levels");
    /* the defaults hold the model with room to spare */
    cnnviz_load_options_init(&opt);
    ck_assert_uint_ge(opt.max_params, 30 * n);
    ck_assert_uint_ge(opt.max_file_bytes, 30 * len);
    ck_assert_uint_ge(opt.max_config_bytes, 30 * strlen(config));
    ck_assert_int_ge(opt.max_layers, 20 * cnnviz_model_num_layers(m));
    free(config);
    free(buf);
    cnnviz_model_free(rebuilt);
    cnnviz_model_free(m);
    cnnviz_model_free(ref);
}
END_TEST

static Suite *local_suite(void) {
    Suite *s = suite_create("keras");
    TCase *tc = tcase_create("build-save-load");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_json_sequential);
    tcase_add_test(tc, test_json_functional);
    tcase_add_test(tc, test_json_list_form_and_errors);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_save_errors);
    tcase_add_test(tc, test_damaged_saved_files);
    tcase_add_test(tc, test_independent_reader);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *data_suite(void) {
    Suite *s = suite_create("keras-data");
    TCase *tc = tcase_create("real-files");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_real_model_layers, 0, NMODELS);
    tcase_add_loop_test(tc, test_real_model_probs, 0, NMODELS);
    tcase_add_test(tc, test_real_model_quirks);
    tcase_add_loop_test(tc, test_memory_loader_and_budget, 0, NMODELS);
    tcase_add_loop_test(tc, test_bad_files, 0, (int)(sizeof bad_files / sizeof bad_files[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suites_with_keras_data(local_suite(), data_suite, keras_dir, sizeof keras_dir);
}
