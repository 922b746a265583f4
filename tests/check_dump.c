// labels: unit
/* Activation dumps (.npy and .h5) and the atomic output files they go
 * through. Round trips use our own readers; numpy and h5py (Debian's
 * /usr/bin/python3) confirm that the files are what other tools expect. */
#define _GNU_SOURCE /* nftw */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnviz/io.h"
#include "testutil.h"


/* Names in the scratch folder, sorted and joined with spaces: shows any
 * temporary file a writer left behind. */
static const char *listing(void) {
    static char buf[4096];
    struct dirent **names;
    int n = scandir(scratch, &names, NULL, alphasort);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            if (buf[0]) strncat(buf, " ", sizeof buf - strlen(buf) - 1);
            strncat(buf, names[i]->d_name, sizeof buf - strlen(buf) - 1);
        }
        free(names[i]);
    }
    free(names);
    return buf;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = '\0';
    fclose(f);
    return b;
}

/* 0 when /usr/bin/python3 can import `module` */
static int have_python_module(const char *module) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", module);
    return access("/usr/bin/python3", X_OK) == 0 && system(cmd) == 0;
}

/* --- atomic files ---------------------------------------------------------------- */
START_TEST(test_atomic_commit_and_abort) {
    cnnviz_atomic_file af;
    cnnviz_error err;
    const char *path = in_scratch("out.txt");
    ck_assert(cnnviz_atomic_begin(&af, path, &err) == CNNVIZ_OK);
    ck_assert_str_eq(af.final_path, path);
    ck_assert_int_eq(strncmp(af.tmp_path, path, strlen(path)), 0);
    ck_assert_ptr_nonnull(strstr(af.tmp_path, ".tmp-"));
    FILE *f = fopen(af.tmp_path, "w");
    fputs("first", f);
    fclose(f);
    ck_assert_int_eq(access(path, F_OK), -1); /* not there until commit */
    ck_assert(cnnviz_atomic_commit(&af, &err) == CNNVIZ_OK);
    ck_assert_str_eq(listing(), "out.txt");
    /* a second write that is aborted leaves the first one intact */
    ck_assert(cnnviz_atomic_begin(&af, path, &err) == CNNVIZ_OK);
    f = fopen(af.tmp_path, "w");
    fputs("second, half written", f);
    fclose(f);
    cnnviz_atomic_abort(&af);
    size_t n;
    char *text = slurp(path, &n);
    ck_assert_str_eq(text, "first");
    free(text);
    ck_assert_str_eq(listing(), "out.txt");
    /* a committed file is an ordinary file, not mkstemp's 0600 */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    ck_assert_int_eq(st.st_mode & 0777, 0666 & ~mask);
}
END_TEST

START_TEST(test_atomic_errors) {
    cnnviz_atomic_file af;
    cnnviz_error err;
    char path[4300], want[4400];
    snprintf(path, sizeof path, "%s/missing/x.h5", scratch);
    ck_assert_int_eq(cnnviz_atomic_begin(&af, path, &err), CNNVIZ_ERR_IO);
    snprintf(want, sizeof want, "cannot write %s: No such file or directory", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(err.file, path);
    /* committing over a folder fails and cleans up */
    ck_assert_int_eq(mkdir(in_scratch("adir"), 0755), 0);
    snprintf(path, sizeof path, "%s", in_scratch("adir"));
    ck_assert(cnnviz_atomic_begin(&af, path, &err) == CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_atomic_commit(&af, &err), CNNVIZ_ERR_IO);
    snprintf(want, sizeof want, "cannot write %s: is a directory", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(listing(), "adir");
    ck_assert_int_eq(cnnviz_atomic_begin(&af, "", &err), CNNVIZ_ERR_INVALID);
}
END_TEST

/* --- npy ------------------------------------------------------------------------------- */
START_TEST(test_npy_roundtrip_and_header) {
    float data[2 * 3 * 4];
    for (int i = 0; i < 24; i++) data[i] = (float)i * 0.5f - 3.0f;
    int dims[3] = {2, 3, 4};
    cnnviz_error err;
    ck_assert(cnnviz_npy_write(in_scratch("a.npy"), data, dims, 3, &err) == CNNVIZ_OK);
    int rank, rd[8];
    size_t count;
    float *back = read_npy_f32(in_scratch("a.npy"), &rank, rd, &count);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(rank, 3);
    ck_assert_int_eq(rd[0], 2);
    ck_assert_int_eq(rd[1], 3);
    ck_assert_int_eq(rd[2], 4);
    ck_assert_uint_eq(count, 24);
    ck_assert_mem_eq(back, data, sizeof data);
    free(back);
    size_t n;
    char *raw = slurp(in_scratch("a.npy"), &n);
    ck_assert_mem_eq(raw, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (unsigned char)raw[8] | (size_t)(unsigned char)raw[9] << 8;
    ck_assert_uint_eq((10 + hlen) % 64, 0);
    ck_assert_uint_eq(n, 10 + hlen + sizeof data);
    ck_assert_int_eq(raw[10 + hlen - 1], '\n');
    ck_assert_int_eq(strncmp(raw + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 62), 0);
    free(raw);
    /* rank 1 needs Python's one-tuple comma; rank 0 is a scalar */
    int one[1] = {5};
    ck_assert(cnnviz_npy_write(in_scratch("v.npy"), data, one, 1, &err) == CNNVIZ_OK);
    raw = slurp(in_scratch("v.npy"), &n);
    ck_assert_ptr_nonnull(strstr(raw + 10, "'shape': (5,), }"));
    free(raw);
    ck_assert(cnnviz_npy_write(in_scratch("s.npy"), data, NULL, 0, &err) == CNNVIZ_OK);
    raw = slurp(in_scratch("s.npy"), &n);
    ck_assert_ptr_nonnull(strstr(raw + 10, "'shape': (), }"));
    ck_assert_uint_eq(n % 64, 4);
    free(raw);
    ck_assert_str_eq(listing(), "a.npy s.npy v.npy");
}
END_TEST

START_TEST(test_npy_errors_leave_nothing) {
    float x = 1;
    int dims[2] = {2, -1};
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_npy_write(in_scratch("bad.npy"), &x, dims, 2, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "dimension 1 is negative (-1)");
    char path[4300], want[4400];
    snprintf(path, sizeof path, "%s/nope/a.npy", scratch);
    dims[1] = 1;
    ck_assert_int_eq(cnnviz_npy_write(path, &x, dims, 1, &err), CNNVIZ_ERR_IO);
    snprintf(want, sizeof want, "cannot write %s: No such file or directory", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(listing(), "");
}
END_TEST

/* --- HDF5 ------------------------------------------------------------------------------ */
static float conv_data[1 * 4 * 3 * 2], dense_data[10];

static void fill_sets(cnnviz_dataset sets[2]) {
    for (int i = 0; i < 24; i++) conv_data[i] = (float)i / 7.0f;
    for (int i = 0; i < 10; i++) dense_data[i] = -(float)i;
    memset(sets, 0, 2 * sizeof *sets);
    sets[0].name = "conv2d";
    sets[0].data = conv_data;
    sets[0].rank = 4;
    sets[0].dims[0] = 1;
    sets[0].dims[1] = 4;
    sets[0].dims[2] = 3;
    sets[0].dims[3] = 2;
    sets[1].name = "dense_1";
    sets[1].data = dense_data;
    sets[1].rank = 2;
    sets[1].dims[0] = 1;
    sets[1].dims[1] = 10;
}

START_TEST(test_h5_roundtrip) {
    cnnviz_dataset sets[2];
    fill_sets(sets);
    cnnviz_error err;
    ck_assert_msg(cnnviz_h5_write_datasets(in_scratch("d.h5"), sets, 2, &err) == CNNVIZ_OK, "%s", err.msg);
    ck_assert_str_eq(listing(), "d.h5");
    float *data;
    int rank, dims[5];
    ck_assert(cnnviz_h5_read_dataset(in_scratch("d.h5"), "conv2d", &data, &rank, dims, &err) == CNNVIZ_OK);
    ck_assert_int_eq(rank, 4);
    ck_assert(dims[0] == 1 && dims[1] == 4 && dims[2] == 3 && dims[3] == 2);
    ck_assert_mem_eq(data, conv_data, sizeof conv_data);
    free(data);
    ck_assert(cnnviz_h5_read_dataset(in_scratch("d.h5"), "dense_1", &data, &rank, dims, &err) == CNNVIZ_OK);
    ck_assert_int_eq(rank, 2);
    ck_assert_int_eq(dims[1], 10);
    ck_assert_mem_eq(data, dense_data, sizeof dense_data);
    free(data);
    /* rewriting replaces the file as a whole */
    sets[1].name = "softmax";
    ck_assert(cnnviz_h5_write_datasets(in_scratch("d.h5"), sets + 1, 1, &err) == CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_h5_read_dataset(in_scratch("d.h5"), "conv2d", &data, &rank, dims, &err),
                     CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no dataset named 'conv2d'");
    ck_assert_ptr_null(data);
    ck_assert_int_eq(cnnviz_h5_read_dataset(in_scratch("d.h5"), "a/b/c", &data, &rank, dims, &err),
                     CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no dataset named 'a/b/c'");
    ck_assert_str_eq(listing(), "d.h5");
}
END_TEST

START_TEST(test_h5_errors_leave_nothing) {
    cnnviz_dataset sets[2];
    fill_sets(sets);
    cnnviz_error err;
    sets[1].name = "dense/1";
    ck_assert_int_eq(cnnviz_h5_write_datasets(in_scratch("x.h5"), sets, 2, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "dataset name 'dense/1' may not contain '/'");
    sets[1].name = "conv2d";
    ck_assert_int_eq(cnnviz_h5_write_datasets(in_scratch("x.h5"), sets, 2, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "two datasets are named 'conv2d'");
    sets[1].name = "dense";
    sets[1].rank = 6;
    ck_assert_int_eq(cnnviz_h5_write_datasets(in_scratch("x.h5"), sets, 2, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "dataset 'dense' has rank 6 (at most 5)");
    sets[1].rank = 2;
    char path[4300], want[4400];
    snprintf(path, sizeof path, "%s/nope/x.h5", scratch);
    ck_assert_int_eq(cnnviz_h5_write_datasets(path, sets, 2, &err), CNNVIZ_ERR_IO);
    snprintf(want, sizeof want, "cannot write %s: No such file or directory", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(listing(), "");
    /* reading: missing file, not HDF5 */
    float *data;
    int rank, dims[5];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", in_scratch("none.h5"));
    ck_assert_int_eq(cnnviz_h5_read_dataset(in_scratch("none.h5"), "x", &data, &rank, dims, &err), CNNVIZ_ERR_IO);
    ck_assert_str_eq(err.msg, want);
    FILE *f = fopen(in_scratch("text.h5"), "w");
    fputs("not hdf5\n", f);
    fclose(f);
    ck_assert_int_eq(cnnviz_h5_read_dataset(in_scratch("text.h5"), "x", &data, &rank, dims, &err),
                     CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "not an HDF5 file");
}
END_TEST

/* HDF5 must not print its error stack: run a failing read with stderr in a file. */
START_TEST(test_h5_is_quiet) {
    cnnviz_dataset sets[2];
    fill_sets(sets);
    cnnviz_error err;
    ck_assert(cnnviz_h5_write_datasets(in_scratch("q.h5"), sets, 2, &err) == CNNVIZ_OK);
    fflush(stderr);
    FILE *saved = freopen(in_scratch("stderr.txt"), "w", stderr);
    ck_assert_ptr_nonnull(saved);
    float *data;
    int rank, dims[5];
    cnnviz_status st1 = cnnviz_h5_read_dataset(in_scratch("q.h5"), "x/y", &data, &rank, dims, &err);
    cnnviz_status st2 = cnnviz_h5_read_dataset(in_scratch("q.h5"), "", &data, &rank, dims, &err);
    fflush(stderr);
    ck_assert_int_eq(st1, CNNVIZ_ERR_INVALID);
    ck_assert_int_eq(st2, CNNVIZ_ERR_INVALID);
    size_t n;
    char *text = slurp(in_scratch("stderr.txt"), &n);
    ck_assert_msg(n == 0, "HDF5 printed: %s", text);
    free(text);
}
END_TEST

/* --- other readers ----------------------------------------------------------------------- */
START_TEST(test_numpy_reads_npy) {
    if (!have_python_module("numpy")) {
        printf("SKIP: /usr/bin/python3 with numpy not found; numpy check not run\n");
        return;
    }
    float data[3 * 2] = {1.5f, -2, 0, 3.25f, 1e-3f, 7};
    int dims[2] = {3, 2};
    cnnviz_error err;
    ck_assert(cnnviz_npy_write(in_scratch("m.npy"), data, dims, 2, &err) == CNNVIZ_OK);
    int one[1] = {4};
    ck_assert(cnnviz_npy_write(in_scratch("v.npy"), data, one, 1, &err) == CNNVIZ_OK);
    char cmd[9000], mpath[4200];
    snprintf(mpath, sizeof mpath, "%s", in_scratch("m.npy")); /* in_scratch's buffer is reused */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load(sys.argv[1]); v = np.load(sys.argv[2]);"
             " assert a.dtype == np.float32 and a.shape == (3, 2), (a.dtype, a.shape);"
             " assert a.tolist() == [[1.5, -2.0], [0.0, 3.25], [np.float32(1e-3), 7.0]], a.tolist();"
             " assert v.shape == (4,) and v[3] == 3.25\" '%s' '%s'",
             mpath, in_scratch("v.npy"));
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_h5py_reads_h5) {
    if (!have_python_module("h5py")) {
        printf("SKIP: /usr/bin/python3 with h5py not found; h5py check not run\n");
        return;
    }
    cnnviz_dataset sets[2];
    fill_sets(sets);
    cnnviz_error err;
    ck_assert(cnnviz_h5_write_datasets(in_scratch("p.h5"), sets, 2, &err) == CNNVIZ_OK);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py, sys; f = h5py.File(sys.argv[1], 'r');"
             " assert sorted(f.keys()) == ['conv2d', 'dense_1'], list(f.keys());"
             " c = f['conv2d']; assert c.shape == (1, 4, 3, 2) and c.dtype == 'float32', (c.shape, c.dtype);"
             " assert abs(float(c[0, 3, 2, 1]) - 23 / 7) < 1e-6; assert f['dense_1'][0, 9] == -9\" '%s'",
             in_scratch("p.h5"));
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *make_dump_suite(void) {
    Suite *s = suite_create("dump");
    TCase *t = tcase_create("atomic");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_add_test(t, test_atomic_commit_and_abort);
    tcase_add_test(t, test_atomic_errors);
    suite_add_tcase(s, t);
    t = tcase_create("npy");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_add_test(t, test_npy_roundtrip_and_header);
    tcase_add_test(t, test_npy_errors_leave_nothing);
    suite_add_tcase(s, t);
    t = tcase_create("h5");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_add_test(t, test_h5_roundtrip);
    tcase_add_test(t, test_h5_errors_leave_nothing);
    tcase_add_test(t, test_h5_is_quiet);
    suite_add_tcase(s, t);
    t = tcase_create("python");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_numpy_reads_npy);
    tcase_add_test(t, test_h5py_reads_h5);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return run_suite(make_dump_suite()); }
