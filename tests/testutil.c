#define _GNU_SOURCE /* nftw */
#include "testutil.h"

#include <ftw.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <math.h>
#include <unistd.h>

const char *shared_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("CNNVIZ_SHARED");
    if (!root || !*root) root = CNNVIZ_SHARED_DEFAULT;
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *require_shared(const char *rel) {
    const char *p = shared_path(rel);
    if (!p) {
        printf("SKIP: shared data '%s' not found (set CNNVIZ_SHARED to the shared/ folder)\n", rel);
        exit(77);
    }
    return p;
}

const char *scratch_dir(void) {
    static char buf[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/cnnviz-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf)) return NULL;
    return buf;
}

double max_rel_diff(const float *a, const float *b, size_t n, double floor, size_t *where) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double s = fabs((double)b[i]);
        double r = d / (s > floor ? s : floor);
        if (!(r <= worst)) {
            worst = r;
            if (where) *where = i;
        }
    }
    return worst;
}

float *read_npy_f32(const char *path, int *rank, int dims[8], size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return NULL;
    }
    size_t hlen = pre[8] | (pre[9] << 8);
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) { fclose(f); return NULL; }
        hlen = pre[8] | (pre[9] << 8) | ((size_t)pre[10] << 16) | ((size_t)pre[11] << 24);
    }
    char *h = calloc(1, hlen + 1);
    if (fread(h, 1, hlen, f) != hlen || !strstr(h, "'<f4'") || strstr(h, "'fortran_order': True")) {
        free(h);
        fclose(f);
        return NULL;
    }
    char *s = strchr(strstr(h, "'shape'"), '(');
    *rank = 0;
    *count = 1;
    for (s++; *s && *s != ')';) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        long v = strtol(s, &s, 10);
        dims[(*rank)++] = (int)v;
        *count *= (size_t)v;
    }
    free(h);
    float *data = malloc(*count * sizeof(float) + 1);
    if (fread(data, sizeof(float), *count, f) != *count) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

char scratch[4096];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void make_scratch(void) {
    const char *d = scratch_dir();
    ck_assert_ptr_nonnull(d);
    snprintf(scratch, sizeof scratch, "%s", d);
}

void drop_scratch(void) {
    if (scratch[0]) nftw(scratch, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    scratch[0] = '\0';
}

const char *in_scratch(const char *name) {
    static char buf[4200];
    snprintf(buf, sizeof buf, "%s/%s", scratch, name);
    return buf;
}

cnnviz_workspace *test_workspace(const cnnviz_model *m, int B, int training, int last, cnnviz_keep keep,
                                 int input_grad, int weight_grads) {
    cnnviz_workspace_options o = cnnviz_workspace_options_init(B);
    o.training = training, o.last = last, o.keep = keep, o.input_grad = input_grad, o.weight_grads = weight_grads;
    cnnviz_error err;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    ck_assert_msg(ws != NULL, "workspace: %s", err.msg);
    return ws;
}

int run_suites_with_keras_data(Suite *local, Suite *(*data_suite)(void), char *keras_dir, size_t n) {
    int rc = run_suite(local);
    if (rc) return rc;
    const char *k = shared_path("data/keras/MANIFEST.md");
    if (!k) {
        printf("SKIP: shared data 'data/keras' not found (set CNNVIZ_SHARED to the shared/ folder)\n");
        return 77;
    }
    snprintf(keras_dir, n, "%.*s", (int)(strlen(k) - strlen("/MANIFEST.md")), k);
    return run_suite(data_suite());
}
