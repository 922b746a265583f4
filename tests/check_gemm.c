// labels: unit
/* cnnviz_gemm: the products against float64 sums, and the promise that an
 * element's bits do not depend on M, N, its place in C or the thread count,
 * for the AVX-512 kernels (where the CPU has them) and the portable code. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cnnviz/tensor.h"
#include "layers/layers.h"

typedef struct {
    int ta, tb, M, N, K;
} shape;

/* NN, TN and NT, with edges in every direction: the Dense layers of the
 * seed net (576 -> 70 -> 10), a conv's im2col product, thin and odd ones */
static const shape shapes[] = {
    {0, 0, 37, 70, 576}, {0, 0, 8, 10, 70},  {0, 0, 1, 1, 1},   {0, 0, 13, 96, 17}, {0, 0, 6, 81, 5},
    {0, 0, 9, 64, 288},  {1, 0, 576, 70, 64}, {1, 0, 70, 10, 9}, {1, 0, 7, 33, 3},  {0, 1, 64, 576, 70},
    {0, 1, 37, 70, 10},  {0, 1, 5, 7, 33},    {0, 1, 3, 2, 16},  {0, 1, 6, 9, 1},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* op(A) (M, K) and op(B) (K, N) as stored */
static size_t a_rows(const shape *s) { return s->ta ? (size_t)s->K : (size_t)s->M; }
static int lda(const shape *s) { return s->ta ? s->M : s->K; }
static int ldb(const shape *s) { return s->tb ? s->K : s->N; }
static size_t b_rows(const shape *s) { return s->tb ? (size_t)s->N : (size_t)s->K; }
static float a_at(const shape *s, const float *A, int i, int k) {
    return s->ta ? A[(size_t)k * s->M + i] : A[(size_t)i * s->K + k];
}
static float b_at(const shape *s, const float *B, int k, int j) {
    return s->tb ? B[(size_t)j * s->K + k] : B[(size_t)k * s->N + j];
}

static float *random_floats(size_t n, unsigned seed) {
    cnnviz_rng r;
    cnnviz_rng_seed(&r, seed, 3);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cnnviz_rng_uniform(&r) - 1.0f;
    return x;
}

/* both paths where the CPU has AVX-512; the portable one alone elsewhere */
static void set_path(int wide) { cnnviz_force_wide_vectors(wide); }

START_TEST(gemm_matches_float64) {
    int wide = _i;
    set_path(wide);
    for (int t = 0; t < NSHAPES; t++)
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            const shape *s = &shapes[t];
            float *A = random_floats(a_rows(s) * lda(s), 10 + t), *B = random_floats(b_rows(s) * ldb(s), 20 + t);
            float *C = random_floats((size_t)s->M * s->N, 30 + t);
            float *C0 = malloc((size_t)s->M * s->N * sizeof *C0);
            memcpy(C0, C, (size_t)s->M * s->N * sizeof *C0);
            cnnviz_gemm(s->ta, s->tb, s->M, s->N, s->K, A, lda(s), B, ldb(s), C, s->N, accumulate);
            for (int i = 0; i < s->M; i++)
                for (int j = 0; j < s->N; j++) {
                    double ref = accumulate ? C0[(size_t)i * s->N + j] : 0.0, mag = fabs(ref);
                    for (int k = 0; k < s->K; k++) {
                        double p = (double)a_at(s, A, i, k) * b_at(s, B, k, j);
                        ref += p, mag += fabs(p);
                    }
                    double err = fabs(C[(size_t)i * s->N + j] - ref);
                    ck_assert_msg(err <= 1e-6 * mag + 1e-30, "shape %d (%d%d %dx%dx%d) acc %d wide %d: C[%d][%d] = %g, "
                                  "float64 %g", t, s->ta, s->tb, s->M, s->N, s->K, accumulate, wide, i, j,
                                  C[(size_t)i * s->N + j], ref);
                }
            free(A), free(B), free(C), free(C0);
        }
    set_path(-1);
}
END_TEST

/* every row alone, blocks of rows and columns cut out anywhere, and the
 * parallel product with one and two threads: the same bits as the whole */
START_TEST(gemm_bits_independent_of_place) {
    int wide = _i;
    set_path(wide);
    for (int t = 0; t < NSHAPES; t++) {
        const shape *s = &shapes[t];
        size_t mn = (size_t)s->M * s->N;
        float *A = random_floats(a_rows(s) * lda(s), 40 + t), *B = random_floats(b_rows(s) * ldb(s), 50 + t);
        float *C = malloc(mn * sizeof *C), *P = malloc(mn * sizeof *P);
        cnnviz_gemm(s->ta, s->tb, s->M, s->N, s->K, A, lda(s), B, ldb(s), C, s->N, 0);
        int nonzero = 0;
        for (size_t e = 0; e < mn; e++) nonzero += C[e] != 0.0f;
        ck_assert_int_gt(nonzero, (int)mn / 2);
        /* rows i0 .. i0+h-1 and columns j0 .. j0+w-1 of op(A)·op(B) */
        for (int i0 = 0; i0 < s->M; i0 += 1 + s->M / 7)
            for (int j0 = 0; j0 < s->N; j0 += 1 + s->N / 5) {
                int h = s->M - i0 < 3 ? s->M - i0 : 3, w = s->N - j0 < 17 ? s->N - j0 : 17;
                const float *a = s->ta ? A + i0 : A + (size_t)i0 * s->K;
                const float *b = s->tb ? B + (size_t)j0 * s->K : B + j0;
                float sub[3 * 17];
                cnnviz_gemm(s->ta, s->tb, h, w, s->K, a, lda(s), b, ldb(s), sub, w, 0);
                for (int r = 0; r < h; r++)
                    ck_assert_msg(memcmp(sub + (size_t)r * w, C + (size_t)(i0 + r) * s->N + j0, w * sizeof(float)) == 0,
                                  "shape %d wide %d: rows %d.. columns %d.. differ from the whole product", t, wide,
                                  i0, j0);
            }
        for (int threads = 1; threads <= 2; threads++) {
            cnnviz_set_threads(threads);
            cnnviz_gemm_parallel(s->ta, s->tb, s->M, s->N, s->K, A, lda(s), B, ldb(s), P, s->N, 0);
            ck_assert_msg(memcmp(P, C, mn * sizeof *P) == 0, "shape %d wide %d: %d threads differ", t, wide, threads);
        }
        cnnviz_set_threads(0);
        free(A), free(B), free(C), free(P);
    }
    set_path(-1);
}
END_TEST

/* Every shape, NN, TN and NT, with and without accumulate, computed twice,
 * with second_run(0) before the first run and second_run(1) before the
 * second: the same bits */
static void both_runs_same_bits(const char *what, unsigned seed, void (*second_run)(int)) {
    for (int t = 0; t < NSHAPES; t++)
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            const shape *s = &shapes[t];
            size_t mn = (size_t)s->M * s->N;
            float *A = random_floats(a_rows(s) * lda(s), seed + t);
            float *B = random_floats(b_rows(s) * ldb(s), seed + 10 + t);
            float *C = random_floats(mn, seed + 20 + t), *E = malloc(mn * sizeof *E);
            memcpy(E, C, mn * sizeof *E);
            second_run(0);
            cnnviz_gemm(s->ta, s->tb, s->M, s->N, s->K, A, lda(s), B, ldb(s), C, s->N, accumulate);
            second_run(1);
            cnnviz_gemm(s->ta, s->tb, s->M, s->N, s->K, A, lda(s), B, ldb(s), E, s->N, accumulate);
            size_t at = mn;
            for (size_t i = 0; i < mn && at == mn; i++)
                if (memcmp(&C[i], &E[i], sizeof *C)) at = i;
            ck_assert_msg(at == mn, "shape %d (%d%d %dx%dx%d) acc %d: %s differs at %zu (%.9g, %.9g)", t, s->ta,
                          s->tb, s->M, s->N, s->K, accumulate, what, at, at < mn ? C[at] : 0.0, at < mn ? E[at] : 0.0);
            free(A), free(B), free(C), free(E);
        }
}

/* the portable products without memory for their copies (the last
 * columns' panel, NN/TN) sum each element element by element: the same
 * bits as with the copies */
START_TEST(gemm_no_memory_path_same_bits) {
    set_path(0);
    both_runs_same_bits("the no-memory path", 60, cnnviz_gemm_force_no_copies);
    cnnviz_gemm_force_no_copies(0);
    set_path(-1);
}
END_TEST

/* The AVX-512 kernels and the portable code sum every element in the
 * same order: the same bits (where the CPU has no AVX-512 both runs take
 * the portable code) */
static void portable_second(int second) { set_path(!second); }

START_TEST(gemm_paths_same_bits) {
    both_runs_same_bits("the portable path", 90, portable_second);
    set_path(-1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gemm");
    TCase *t = tcase_create("gemm");
    tcase_add_loop_test(t, gemm_matches_float64, 0, 2);
    tcase_add_loop_test(t, gemm_bits_independent_of_place, 0, 2);
    tcase_add_test(t, gemm_no_memory_path_same_bits);
    tcase_add_test(t, gemm_paths_same_bits);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
