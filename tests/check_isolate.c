// labels: unit data
/* The child-process load (src/io/isolate.c): it gives the same model, bit
 * for bit, as the in-process load for the bundled model and every real model
 * in shared/data/keras; the child's own errors come back unchanged; a child
 * that hangs is killed at the time limit and one that dies of a signal is
 * one error; neither leaves a zombie or a descriptor behind. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cnnviz/model.h"
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

static cnnviz_status load(const char *path, int in_process, double timeout_s, cnnviz_model **m, cnnviz_error *err) {
    cnnviz_load_options opt;
    cnnviz_load_options_init(&opt);
    opt.in_process = in_process;
    if (timeout_s > 0) opt.timeout_s = timeout_s;
    cnnviz_error_clear(err);
    return cnnviz_model_load_opts(path, &opt, m, err);
}

static void same_shape(const cnnviz_shape *a, const cnnviz_shape *b, const char *what, int layer) {
    ck_assert_msg(a->rank == b->rank && memcmp(a->dim, b->dim, sizeof(int) * (size_t)a->rank) == 0,
                  "layer %d: %s shapes differ", layer, what);
}

/* Everything a caller can see of the two models is the same. */
static void same_model(cnnviz_model *a, cnnviz_model *b) {
    ck_assert_int_eq(cnnviz_model_num_layers(a), cnnviz_model_num_layers(b));
    cnnviz_shape ia = cnnviz_model_input_shape(a), ib = cnnviz_model_input_shape(b);
    same_shape(&ia, &ib, "input", -1);
    for (int i = 0; i < cnnviz_model_num_layers(a); i++) {
        cnnviz_layer_info la, lb;
        cnnviz_model_layer_info(a, i, &la);
        cnnviz_model_layer_info(b, i, &lb);
        ck_assert_str_eq(la.name, lb.name);
        ck_assert_str_eq(la.class_name, lb.class_name);
        ck_assert_int_eq(la.type, lb.type);
        ck_assert_int_eq(la.activation, lb.activation);
        same_shape(&la.input_shape, &lb.input_shape, "input", i);
        same_shape(&la.output_shape, &lb.output_shape, "output", i);
        ck_assert_uint_eq(la.params, lb.params);
        ck_assert_int_eq(la.nparam, lb.nparam);
        for (int k = 0; k < la.nparam; k++) {
            ck_assert_str_eq(la.param[k].name, lb.param[k].name);
            ck_assert_uint_eq(la.param[k].offset, lb.param[k].offset);
            same_shape(&la.param[k].shape, &lb.param[k].shape, la.param[k].name, i);
        }
    }
    size_t n = cnnviz_model_num_params(a);
    ck_assert_uint_eq(n, cnnviz_model_num_params(b));
    ck_assert_msg(memcmp(cnnviz_model_params(a), cnnviz_model_params(b), n * sizeof(float)) == 0,
                  "the weights differ");
    ck_assert_int_eq(cnnviz_model_meta_count(a), cnnviz_model_meta_count(b));
    for (int i = 0; i < cnnviz_model_meta_count(a); i++) {
        const char *key = cnnviz_model_meta_key(a, i);
        ck_assert_str_eq(key, cnnviz_model_meta_key(b, i));
        ck_assert_str_eq(cnnviz_model_meta(a, key), cnnviz_model_meta(b, key));
    }
    ck_assert_int_eq(cnnviz_model_has_input_scale(a), cnnviz_model_has_input_scale(b));
    cnnviz_input_scale sa = cnnviz_model_input_scale(a), sb = cnnviz_model_input_scale(b);
    ck_assert_int_eq(sa.kind, sb.kind);
    ck_assert(memcmp(&sa.mean, &sb.mean, sizeof sa.mean) == 0 && memcmp(&sa.std, &sb.std, sizeof sa.std) == 0);
}

static void same_both_ways(const char *path) {
    cnnviz_model *a = NULL, *b = NULL;
    cnnviz_error err;
    ck_assert_msg(load(path, 0, 0, &a, &err) == CNNVIZ_OK, "%s isolated: %s", path, err.msg);
    ck_assert_msg(load(path, 1, 0, &b, &err) == CNNVIZ_OK, "%s in process: %s", path, err.msg);
    same_model(a, b);
    cnnviz_model_free(a);
    cnnviz_model_free(b);
}

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* No child left behind: neither running nor a zombie. */
static void no_children(void) {
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- tests ------------------------------------------------------------------ */

START_TEST(test_bundled_same_bits) {
    same_both_ways(CNNVIZ_SOURCE_DIR "/samples/model.h5");
    no_children();
}
END_TEST

START_TEST(test_child_errors_come_back) {
    char missing[4200], junk[4200]; /* in_scratch's buffer is static */
    snprintf(missing, sizeof missing, "%s", in_scratch("no-such-model.h5"));
    snprintf(junk, sizeof junk, "%s", in_scratch("junk.h5"));
    FILE *f = fopen(junk, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("not a model\n", f);
    fclose(f);
    const char *paths[] = {missing, junk};
    for (int i = 0; i < 2; i++) {
        cnnviz_model *m = NULL;
        cnnviz_error iso, inp;
        cnnviz_status a = load(paths[i], 0, 0, &m, &iso);
        ck_assert_ptr_null(m);
        cnnviz_status b = load(paths[i], 1, 0, &m, &inp);
        ck_assert_ptr_null(m);
        ck_assert_int_eq(a, b);
        ck_assert_int_ne(a, CNNVIZ_OK);
        ck_assert_str_eq(iso.msg, inp.msg);
        ck_assert_str_eq(iso.file, paths[i]);
    }
    ck_assert_int_eq(load(missing, 0, 0, &(cnnviz_model *){NULL}, &(cnnviz_error){0}), CNNVIZ_ERR_IO);
    no_children();
}
END_TEST

/* The size cap is checked before the file is read, the same both ways. */
START_TEST(test_file_size_cap) {
    const char *path = CNNVIZ_SOURCE_DIR "/samples/model.h5";
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char want[128];
    snprintf(want, sizeof want, "the file is %jd bytes, over the limit of 1000", (intmax_t)st.st_size);
    for (int in_process = 0; in_process <= 1; in_process++) {
        cnnviz_load_options opt;
        cnnviz_load_options_init(&opt);
        opt.in_process = in_process;
        opt.max_file_bytes = 1000;
        cnnviz_model *m = NULL;
        cnnviz_error err;
        cnnviz_error_clear(&err);
        ck_assert_int_eq(cnnviz_model_load_opts(path, &opt, &m, &err), CNNVIZ_ERR_FORMAT);
        ck_assert_ptr_null(m);
        ck_assert_str_eq(err.msg, want);
    }
    no_children();
}
END_TEST

/* A child out of address space fails with one error line, whatever libhdf5
 * makes of malloc returning NULL (or, under ASan, its allocator of a failed
 * mmap). */
START_TEST(test_memory_limit) {
    cnnviz_load_options opt;
    cnnviz_load_options_init(&opt);
    opt.max_memory_bytes = 256 << 10; /* a quarter of the bundled model's file image */
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_int_ne(cnnviz_model_load_opts(CNNVIZ_SOURCE_DIR "/samples/model.h5", &opt, &m, &err), CNNVIZ_OK);
    ck_assert_ptr_null(m);
    ck_assert(err.msg[0] && !strchr(err.msg, '\n'));
    no_children();
}
END_TEST

/* A FIFO that nobody writes: the child blocks in open() for good. */
static const char *make_fifo(void) {
    const char *fifo = in_scratch("never.h5");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    return fifo;
}

START_TEST(test_timeout_kills_the_child) {
    const char *fifo = make_fifo();
    int fds = count_fds();
    cnnviz_model *m = NULL;
    cnnviz_error err;
    double t0 = now_s();
    cnnviz_status st = load(fifo, 0, 0.3, &m, &err);
    double took = now_s() - t0;
    ck_assert_int_eq(st, CNNVIZ_ERR_FORMAT);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.msg, "reading this file took longer than 0.3 s (corrupt or hostile)");
    ck_assert_str_eq(err.file, fifo);
    ck_assert_msg(took >= 0.3 && took < 2.0, "took %.2f s", took);
    ck_assert_int_eq(count_fds(), fds);
    no_children();
}
END_TEST

/* Send SIGSEGV to every child of this process once it exists: the reader
 * process, which is blocked opening the FIFO (a crash inside libhdf5 ends
 * the child the same way). */
static void *segv_children(void *arg) {
    (void)arg;
    for (int tries = 0; tries < 400; tries++) {
        usleep(5000);
        DIR *d = opendir("/proc");
        int sent = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            char path[300], stat[512];
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
            snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            size_t n = fread(stat, 1, sizeof stat - 1, f);
            fclose(f);
            stat[n] = 0;
            /* "pid (comm) state ppid ...": comm may hold spaces, not ')' last */
            const char *close = strrchr(stat, ')');
            char state;
            int ppid;
            if (close && sscanf(close + 1, " %c %d", &state, &ppid) == 2 && ppid == (int)getpid()) {
                kill((pid_t)atoi(e->d_name), SIGSEGV);
                sent = 1;
            }
        }
        if (d) closedir(d);
        if (sent) return NULL;
    }
    return NULL;
}

START_TEST(test_signal_in_child_is_one_error) {
    const char *fifo = make_fifo();
    int fds = count_fds();
    pthread_t killer;
    ck_assert_int_eq(pthread_create(&killer, NULL, segv_children, NULL), 0);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_status st = load(fifo, 0, 5.0, &m, &err);
    pthread_join(killer, NULL);
    ck_assert_int_eq(st, CNNVIZ_ERR_FORMAT);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.msg, "the HDF5 library failed while reading this file (corrupt or hostile)");
    ck_assert_int_eq(count_fds(), fds);
    no_children();
}
END_TEST

START_TEST(test_real_model_same_bits) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", keras_dir, models[_i]);
    same_both_ways(path);
    no_children();
}
END_TEST

/* External storage naming /etc/passwd: the filter refuses the open, so the
 * host file never becomes weights whatever the reader checks. */
START_TEST(test_external_storage_refused) {
    char path[4400];
    snprintf(path, sizeof path, "%s/hostile/a3_ext_densekernel_etc_passwd.h5", keras_dir);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    ck_assert_int_ne(load(path, 0, 0, &m, &err), CNNVIZ_OK);
    ck_assert_ptr_null(m);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}
END_TEST

static Suite *local_suite(void) {
    Suite *s = suite_create("isolate");
    TCase *tc = tcase_create("child");
    tcase_add_checked_fixture(tc, make_scratch, drop_scratch);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bundled_same_bits);
    tcase_add_test(tc, test_child_errors_come_back);
    tcase_add_test(tc, test_file_size_cap);
    tcase_add_test(tc, test_memory_limit);
    tcase_add_test(tc, test_timeout_kills_the_child);
    tcase_add_test(tc, test_signal_in_child_is_one_error);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *data_suite(void) {
    Suite *s = suite_create("isolate-data");
    TCase *tc = tcase_create("real-files");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_real_model_same_bits, 0, NMODELS);
    tcase_add_test(tc, test_external_storage_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suites_with_keras_data(local_suite(), data_suite, keras_dir, sizeof keras_dir);
}
