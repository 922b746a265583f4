/* Helpers shared by the Check tests. */
#pragma once
#include <stddef.h>

/* The shared data folder ($CNNVIZ_SHARED or ../shared next to the source
 * tree) joined with rel; NULL when it is not there. Static buffer. */
const char *shared_path(const char *rel);
/* Exit 77 (CTest: skipped) with a message when shared_path(rel) is absent. */
const char *require_shared(const char *rel);
/* A fresh scratch directory under $TMPDIR; static buffer. */
const char *scratch_dir(void);
/* A scratch folder per test, for Check fixtures:
 * tcase_add_checked_fixture(t, make_scratch, drop_scratch). drop_scratch
 * removes the folder and everything in it. */
extern char scratch[4096];
void make_scratch(void);
void drop_scratch(void);
/* scratch/name in a static buffer */
const char *in_scratch(const char *name);
/* Largest |a-b| / max(|b|, floor) over n values; *where gets the index. */
double max_rel_diff(const float *a, const float *b, size_t n, double floor, size_t *where);
/* Read a little-endian float32 .npy (v1/v2); returns malloc'd data, fills shape. */
float *read_npy_f32(const char *path, int *rank, int dims[8], size_t *count);
/* A workspace for passes of up to B samples through layers 0..last (-1:
 * all) with the given plan; fails the test when it cannot be made. */
#include "cnnviz/model.h"
cnnviz_workspace *test_workspace(const cnnviz_model *m, int B, int training, int last, cnnviz_keep keep,
                                 int input_grad, int weight_grads);
/* Run Check suite and return the exit code for CTest. */
#include <check.h>
int run_suite(Suite *s);
/* Run the suite that needs no data, then, when shared/data/keras is there,
 * put its path into keras_dir (n bytes) and run data_suite(); without the
 * data that part is reported as skipped (77), never as a silent pass. */
int run_suites_with_keras_data(Suite *local, Suite *(*data_suite)(void), char *keras_dir, size_t n);
