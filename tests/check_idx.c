// labels: unit data
/* IDX loading (gzip and plain, real MNIST and damaged files), pixel scaling
 * and transposing. */
#define _GNU_SOURCE /* nftw */
#include <check.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cnnviz/io.h"
#include "testutil.h"

/* --- helpers ------------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX image file: header for (count, rows, cols), then `pixels` bytes of a
 * simple pattern. Returns malloc'd bytes and their length. */
static uint8_t *idx_images(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols, size_t pixels, size_t *len) {
    uint8_t *b = malloc(16 + pixels + 1);
    put_be32(b, magic);
    put_be32(b + 4, count);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < pixels; i++) b[16 + i] = (uint8_t)(i * 7 + 3);
    *len = 16 + pixels;
    return b;
}

static const char *load_images_error(const char *path) {
    static cnnviz_error err;
    cnnviz_idx_images im;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_idx_load_images(path, &im, &err);
    ck_assert_int_ne(st, CNNVIZ_OK);
    ck_assert_int_eq(st, err.code);
    ck_assert_ptr_null(im.pixels);
    ck_assert_str_eq(err.file, path);
    return err.msg;
}

/* The official MD5 of an uncompressed MNIST file, from MD5SUMS.uncompressed. */
static void official_md5(const char *name, char out[33]) {
    FILE *f = fopen(require_shared("data/mnist/MD5SUMS.uncompressed"), "r");
    ck_assert_ptr_nonnull(f);
    char line[256], sum[33], file[200];
    out[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%32s %199s", sum, file) == 2 && strcmp(file, name) == 0) snprintf(out, 33, "%s", sum);
    fclose(f);
    ck_assert_msg(out[0], "no md5 for %s", name);
}

/* MD5 of header + payload, i.e. of the uncompressed file we decoded. */
static void md5_of(const uint8_t *head, size_t hn, const uint8_t *body, size_t bn, char out[33]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(EVP_DigestInit_ex(c, EVP_md5(), NULL), 1);
    EVP_DigestUpdate(c, head, hn);
    EVP_DigestUpdate(c, body, bn);
    EVP_DigestFinal_ex(c, d, &dn);
    EVP_MD_CTX_free(c);
    for (unsigned i = 0; i < dn; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_mnist_images(const char *gz, const char *plain_name, int count) {
    char rel[256];
    snprintf(rel, sizeof rel, "data/mnist/%s", gz);
    const char *path = require_shared(rel);
    cnnviz_idx_images im;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_msg(cnnviz_idx_load_images(path, &im, &err) == CNNVIZ_OK, "%s", err.msg);
    ck_assert_int_eq(im.count, count);
    ck_assert_int_eq(im.rows, 28);
    ck_assert_int_eq(im.cols, 28);
    uint8_t head[16];
    put_be32(head, 0x803);
    put_be32(head + 4, (uint32_t)im.count);
    put_be32(head + 8, 28);
    put_be32(head + 12, 28);
    char want[33], got[33];
    official_md5(plain_name, want);
    md5_of(head, 16, im.pixels, (size_t)im.count * 784, got);
    ck_assert_str_eq(got, want);
    cnnviz_idx_images_free(&im);
    ck_assert_ptr_null(im.pixels);
}

static void check_mnist_labels(const char *gz, const char *plain_name, int count, const uint8_t *first) {
    char rel[256];
    snprintf(rel, sizeof rel, "data/mnist/%s", gz);
    const char *path = require_shared(rel);
    uint8_t *lab;
    int n;
    cnnviz_error err;
    ck_assert(cnnviz_idx_load_labels(path, &lab, &n, &err) == CNNVIZ_OK);
    ck_assert_int_eq(n, count);
    uint8_t head[8];
    put_be32(head, 0x801);
    put_be32(head + 4, (uint32_t)n);
    char want[33], got[33];
    official_md5(plain_name, want);
    md5_of(head, 8, lab, (size_t)n, got);
    ck_assert_str_eq(got, want);
    ck_assert_mem_eq(lab, first, 5);
    int hist[10] = {0};
    for (int i = 0; i < n; i++) {
        ck_assert_uint_le(lab[i], 9);
        hist[lab[i]]++;
    }
    for (int c = 0; c < 10; c++) ck_assert_int_gt(hist[c], n / 20);
    free(lab);
}

/* --- real MNIST ------------------------------------------------------------------ */
START_TEST(test_mnist_test_set_md5) {
    check_mnist_images("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", 10000);
    static const uint8_t first[5] = {7, 2, 1, 0, 4};
    check_mnist_labels("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte", 10000, first);
}
END_TEST

START_TEST(test_mnist_train_set_md5) {
    check_mnist_images("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", 60000);
    static const uint8_t first[5] = {5, 0, 4, 1, 9};
    check_mnist_labels("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte", 60000, first);
}
END_TEST

/* The same bytes uncompressed load identically (gzopen reads plain files). */
START_TEST(test_plain_equals_gzip) {
    const char *path = require_shared("data/mnist/t10k-labels-idx1-ubyte.gz");
    uint8_t *gz_lab, *plain_lab;
    int n1, n2;
    cnnviz_error err;
    ck_assert(cnnviz_idx_load_labels(path, &gz_lab, &n1, &err) == CNNVIZ_OK);
    uint8_t head[8];
    put_be32(head, 0x801);
    put_be32(head + 4, (uint32_t)n1);
    uint8_t *raw = malloc(8 + (size_t)n1);
    memcpy(raw, head, 8);
    memcpy(raw + 8, gz_lab, (size_t)n1);
    write_file(in_scratch("labels"), raw, 8 + (size_t)n1);
    ck_assert_msg(cnnviz_idx_load_labels(in_scratch("labels"), &plain_lab, &n2, &err) == CNNVIZ_OK, "%s", err.msg);
    ck_assert_int_eq(n1, n2);
    ck_assert_mem_eq(gz_lab, plain_lab, (size_t)n1);
    free(raw);
    free(gz_lab);
    free(plain_lab);
}
END_TEST

/* --- damaged files ------------------------------------------------------------------ */
START_TEST(test_small_images_roundtrip_plain_and_gz) {
    size_t len;
    uint8_t *b = idx_images(0x803, 3, 4, 5, 60, &len);
    write_file(in_scratch("a"), b, len);
    write_gz(in_scratch("a.gz"), b, len);
    const char *names[2] = {"a", "a.gz"};
    for (int k = 0; k < 2; k++) {
        cnnviz_idx_images im;
        cnnviz_error err;
        ck_assert(cnnviz_idx_load_images(in_scratch(names[k]), &im, &err) == CNNVIZ_OK);
        ck_assert_int_eq(im.count, 3);
        ck_assert_int_eq(im.rows, 4);
        ck_assert_int_eq(im.cols, 5);
        ck_assert_mem_eq(im.pixels, b + 16, 60);
        cnnviz_idx_images_free(&im);
    }
    free(b);
}
END_TEST

START_TEST(test_truncated_plain) {
    size_t len;
    uint8_t *b = idx_images(0x803, 10000, 28, 28, 4321, &len);
    write_file(in_scratch("t"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("t")),
                     "truncated: header says 10000 images of 28x28, file has 4321 bytes of pixels");
    free(b);
}
END_TEST

START_TEST(test_truncated_gzip) {
    /* a real gzip stream cut short: zlib notices the missing end */
    size_t len;
    uint8_t *b = idx_images(0x803, 100, 28, 28, 78400, &len);
    write_gz(in_scratch("full.gz"), b, len);
    FILE *f = fopen(in_scratch("full.gz"), "rb");
    uint8_t buf[200000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    write_file(in_scratch("cut.gz"), buf, n / 2);
    const char *msg = load_images_error(in_scratch("cut.gz"));
    ck_assert_msg(strncmp(msg, "truncated: header says 100 images of 28x28, file has ", 53) == 0, "%s", msg);
    ck_assert_msg(strstr(msg, "bytes of pixels (gzip: unexpected end of file)") != NULL, "%s", msg);
    free(b);
}
END_TEST

START_TEST(test_gzip_crc_damage) {
    /* flip a byte in the gzip trailer's CRC: all data arrives but is wrong */
    size_t len;
    uint8_t *b = idx_images(0x803, 2, 3, 3, 18, &len);
    write_gz(in_scratch("x.gz"), b, len);
    FILE *f = fopen(in_scratch("x.gz"), "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    buf[n - 8] ^= 0xff;
    write_file(in_scratch("x.gz"), buf, n);
    const char *msg = load_images_error(in_scratch("x.gz"));
    ck_assert_msg(strstr(msg, "gzip: incorrect data check") != NULL, "%s", msg);
    free(b);
}
END_TEST

START_TEST(test_wrong_magic) {
    size_t len;
    uint8_t *b = idx_images(0x804, 1, 2, 2, 4, &len);
    write_file(in_scratch("m"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("m")), "not an IDX image file (magic 0x00000804)");
    free(b);
    /* text is not IDX either */
    write_file(in_scratch("txt"), "hello, world\n", 13);
    ck_assert_str_eq(load_images_error(in_scratch("txt")), "not an IDX image file (magic 0x68656c6c)");
}
END_TEST

START_TEST(test_labels_file_as_images) {
    const char *path = require_shared("data/mnist/t10k-labels-idx1-ubyte.gz");
    ck_assert_str_eq(load_images_error(path), "not an IDX image file (magic 0x00000801, an IDX label file)");
    uint8_t *lab = (uint8_t *)1;
    int n = 5;
    cnnviz_error err;
    const char *img = require_shared("data/mnist/t10k-images-idx3-ubyte.gz");
    ck_assert_int_eq(cnnviz_idx_load_labels(img, &lab, &n, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "not an IDX label file (magic 0x00000803, an IDX image file)");
    ck_assert_ptr_null(lab);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_huge_dims_refused_before_allocating) {
    size_t len;
    uint8_t *b = idx_images(0x803, 4000000000u, 28, 28, 10, &len);
    write_file(in_scratch("h1"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("h1")), "bad IDX header: 4000000000 images (expected 1 to 10000000)");
    free(b);
    b = idx_images(0x803, 10, 100000, 28, 10, &len);
    write_file(in_scratch("h2"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("h2")),
                     "bad IDX header: images of 100000x28 (each side must be 1 to 4096)");
    free(b);
    b = idx_images(0x803, 0, 28, 28, 0, &len);
    write_file(in_scratch("h3"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("h3")), "bad IDX header: 0 images (expected 1 to 10000000)");
    free(b);
    /* within every limit but claiming 10M x 4096 x 4096 (10^14 bytes) */
    b = idx_images(0x803, 10000000, 4096, 4096, 10, &len);
    write_file(in_scratch("h4"), b, len);
    const char *msg = load_images_error(in_scratch("h4"));
    ck_assert_msg(strncmp(msg, "bad IDX header: 10000000 images of 4096x4096 is more than", 57) == 0, "%s", msg);
    free(b);
    /* a big but allowed claim with little data: the buffer follows the data */
    b = idx_images(0x803, 1000000, 28, 28, 100, &len);
    write_file(in_scratch("h5"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("h5")),
                     "truncated: header says 1000000 images of 28x28, file has 100 bytes of pixels");
    free(b);
}
END_TEST

START_TEST(test_trailing_data) {
    size_t len;
    uint8_t *b = idx_images(0x803, 2, 2, 2, 11, &len);
    write_file(in_scratch("long"), b, len);
    ck_assert_str_eq(load_images_error(in_scratch("long")), "header says 2 images of 2x2, but 3 more bytes follow them");
    free(b);
}
END_TEST

START_TEST(test_short_header_empty_missing) {
    write_file(in_scratch("empty"), "", 0);
    ck_assert_str_eq(load_images_error(in_scratch("empty")),
                     "truncated: file has 0 bytes, an IDX image header needs 16");
    uint8_t h[10] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0};
    write_file(in_scratch("short"), h, sizeof h);
    ck_assert_str_eq(load_images_error(in_scratch("short")),
                     "truncated: file has 10 bytes, an IDX image header needs 16");
    char want[4400];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", in_scratch("nope"));
    ck_assert_str_eq(load_images_error(in_scratch("nope")), want);
    snprintf(want, sizeof want, "cannot open %s: is a directory", scratch);
    ck_assert_str_eq(load_images_error(scratch), want);
}
END_TEST

START_TEST(test_labels_truncated) {
    uint8_t b[8 + 5] = {0, 0, 8, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5};
    write_file(in_scratch("l"), b, sizeof b);
    uint8_t *lab;
    int n;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_idx_load_labels(in_scratch("l"), &lab, &n, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "truncated: header says 9 labels, file has 5 bytes of labels");
    b[7] = 5;
    write_file(in_scratch("l"), b, sizeof b);
    ck_assert(cnnviz_idx_load_labels(in_scratch("l"), &lab, &n, &err) == CNNVIZ_OK);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(lab[4], 5);
    free(lab);
}
END_TEST

/* --- scaling and transposing ---------------------------------------------------------- */
START_TEST(test_scale_pixels) {
    const uint8_t px[3] = {0, 51, 255};
    float out[3];
    cnnviz_input_scale s = {CNNVIZ_SCALE_UNIT, 0, 1};
    cnnviz_scale_pixels(px, out, 3, s);
    ck_assert_float_eq(out[0], 0.0f);
    ck_assert_float_eq_tol(out[1], 0.2f, 1e-7);
    ck_assert_float_eq(out[2], 1.0f);
    s.kind = CNNVIZ_SCALE_RAW;
    cnnviz_scale_pixels(px, out, 3, s);
    ck_assert_float_eq(out[1], 51.0f);
    ck_assert_float_eq(out[2], 255.0f);
    s.kind = CNNVIZ_SCALE_CENTER;
    cnnviz_scale_pixels(px, out, 3, s);
    ck_assert_float_eq(out[0], -0.5f);
    ck_assert_float_eq_tol(out[1], -0.3f, 1e-7);
    ck_assert_float_eq(out[2], 0.5f);
    s.kind = CNNVIZ_SCALE_MEANSTD;
    s.mean = 0.1307f;
    s.std = 0.3081f;
    cnnviz_scale_pixels(px, out, 3, s);
    ck_assert_float_eq_tol(out[0], -0.1307f / 0.3081f, 1e-6);
    ck_assert_float_eq_tol(out[2], (1.0f - 0.1307f) / 0.3081f, 1e-6);
}
END_TEST

START_TEST(test_transpose) {
    int shapes[4][2] = {{28, 28}, {3, 5}, {5, 3}, {1, 7}};
    for (int s = 0; s < 4; s++) {
        int r = shapes[s][0], c = shapes[s][1];
        float x[784], want[784];
        for (int i = 0; i < r * c; i++) x[i] = (float)i;
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) want[j * r + i] = x[i * c + j];
        cnnviz_transpose_image(x, r, c);
        ck_assert_mem_eq(x, want, sizeof(float) * (size_t)(r * c));
        cnnviz_transpose_image(x, c, r);
        for (int i = 0; i < r * c; i++) ck_assert_float_eq(x[i], (float)i);
    }
}
END_TEST

static Suite *make_idx_suite(int with_data) {
    Suite *s = suite_create("idx");
    TCase *t;
    if (with_data) {
        t = tcase_create("mnist");
        tcase_set_timeout(t, 120);
        tcase_add_test(t, test_mnist_test_set_md5);
        tcase_add_test(t, test_mnist_train_set_md5);
        tcase_add_test(t, test_plain_equals_gzip);
        tcase_add_test(t, test_labels_file_as_images);
        tcase_add_checked_fixture(t, make_scratch, drop_scratch);
        suite_add_tcase(s, t);
    }
    t = tcase_create("damaged");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_add_test(t, test_small_images_roundtrip_plain_and_gz);
    tcase_add_test(t, test_truncated_plain);
    tcase_add_test(t, test_truncated_gzip);
    tcase_add_test(t, test_gzip_crc_damage);
    tcase_add_test(t, test_wrong_magic);
    tcase_add_test(t, test_huge_dims_refused_before_allocating);
    tcase_add_test(t, test_trailing_data);
    tcase_add_test(t, test_short_header_empty_missing);
    tcase_add_test(t, test_labels_truncated);
    suite_add_tcase(s, t);
    t = tcase_create("scale");
    tcase_add_test(t, test_scale_pixels);
    tcase_add_test(t, test_transpose);
    suite_add_tcase(s, t);
    return s;
}

/* Without the shared MNIST files the file-independent cases still run; the
 * result is then "skipped" (77) if they pass, so CTest never shows a pass
 * that did not look at the real data. */
int main(void) {
    int with_data = shared_path("data/mnist/t10k-images-idx3-ubyte.gz") != NULL;
    int rc = run_suite(make_idx_suite(with_data));
    if (rc == 0 && !with_data) {
        printf("SKIP: shared data 'data/mnist' not found (set CNNVIZ_SHARED to the shared/ folder)\n");
        return 77;
    }
    return rc;
}
