/* The engine's matrix products, written so that an element's bits depend
 * on its row of op(A) and its column of op(B) only: not on M or N, not on
 * where the element stands in C, not on the thread count.
 *
 * OpenBLAS cannot promise that. Its kernels compute a full register tile
 * in another order than the rows and columns left over at the edges
 * (seen with the Haswell kernels this project's machines run: rows 0-3 of
 * a 37-row product differ in the last bits from the same rows computed
 * alone, and a two-thread call splits the tiles elsewhere than a
 * one-thread one). A sample's activations then changed with the batch it
 * came in and with the thread count, and figures with them.
 *
 * The order, for every element, wherever it stands:
 *  - B not transposed (NN, TN): one multiply-add per k, k = 0 .. K-1 in
 *    order, from 0; vectors run along the row of C. Both paths below.
 *  - B transposed (NT): sixteen partial sums over k = l, l+16, ... (zeros
 *    past K), added in a fixed tree. Both paths below.
 * With `accumulate` the finished sum is added to what C held.
 *
 * AVX-512 kernels with masked edges where the CPU has it; portable code
 * (GCC vector extensions, cloned for AVX2) elsewhere, and where tests ask
 * for it through cnnviz_force_wide_vectors(0). Both keep the same order
 * everywhere (with FMA: the AVX-512 and AVX2 clones), so they give the
 * same bits, and a machine always gets the same bits. The portable NN/TN
 * code takes heap memory for a copy of B's last columns; without it, it
 * goes element by element in the same order. The callers that run
 * threads call the products serially inside their own regions, with
 * chunks that do not depend on the thread count. */
#include <stddef.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

#ifdef CNNVIZ_CLONES
#include <immintrin.h>
#define GEMM_V4 __attribute__((target("arch=x86-64-v4")))
#define GEMM_INLINE static inline __attribute__((always_inline))
#endif

/* rows of C a tile holds, and the most vectors of 16 columns it holds
 * (AVX-512: 4 x 5 accumulators, 20 of its 32 registers; portable: 6 rows
 * of 16 columns, 12 of AVX2's 16 registers) */
#define TILE_ROWS 4
#define TILE_VECS 5
#define PLAIN_ROWS 6

/* --- portable ------------------------------------------------------------ */

/* C rows 0 .. R-1, columns 0 .. w-1 (w <= 16; B holds 16 columns either
 * way) = [C +] sum over k = 0 .. K-1 in order of a(i, k) b(k, j), B not
 * transposed: a(i, k) = a[i*ars + k*aks]; R is a constant where it is
 * inlined, so the sums stay in registers */
static inline __attribute__((always_inline)) void axpy16_plain(const int R, int K, const float *a, size_t ars,
                                                               size_t aks, const float *b, size_t ldb, float *c,
                                                               size_t ldc, int w, int accumulate) {
    cnnviz_v8u s[PLAIN_ROWS][2];
    for (int r = 0; r < R; r++) s[r][0] = s[r][1] = (cnnviz_v8u){0};
    for (int k = 0; k < K; k++) {
        cnnviz_v8u b0 = *(const cnnviz_v8u *)(b + (size_t)k * ldb), b1 = *(const cnnviz_v8u *)(b + (size_t)k * ldb + 8);
        #pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            float av = a[(size_t)r * ars + (size_t)k * aks];
            s[r][0] += av * b0;
            s[r][1] += av * b1;
        }
    }
    for (int r = 0; r < R; r++) {
        float *cr = c + (size_t)r * ldc;
        if (w == 16) {
            cnnviz_v8u *c0 = (cnnviz_v8u *)cr, *c1 = (cnnviz_v8u *)(cr + 8);
            *c0 = accumulate ? *c0 + s[r][0] : s[r][0];
            *c1 = accumulate ? *c1 + s[r][1] : s[r][1];
        } else {
            float t[16];
            *(cnnviz_v8u *)t = s[r][0], *(cnnviz_v8u *)(t + 8) = s[r][1];
            for (int j = 0; j < w; j++) cr[j] = accumulate ? cr[j] + t[j] : t[j];
        }
    }
}

static inline __attribute__((always_inline)) void axpy16_any_plain(int R, int K, const float *a, size_t ars,
                                                                   size_t aks, const float *b, size_t ldb, float *c,
                                                                   size_t ldc, int w, int accumulate) {
    switch (R) {
    case 6: axpy16_plain(6, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    case 5: axpy16_plain(5, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    case 4: axpy16_plain(4, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    case 3: axpy16_plain(3, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    case 2: axpy16_plain(2, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    default: axpy16_plain(1, K, a, ars, aks, b, ldb, c, ldc, w, accumulate); break;
    }
}

/* C (M, N) element by element where there is no memory for a copy of B:
 * each element's multiply-adds one at a time, k in order, as one lane of
 * axpy16_plain does them; b(k, j) = B[k*ldb + j] */
static inline __attribute__((always_inline)) void elements_plain(int M, int N, int K, const float *A, size_t ars,
                                                                 size_t aks, const float *B, size_t ldb, float *C,
                                                                 size_t ldc, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += A[(size_t)i * ars + (size_t)k * aks] * B[(size_t)k * ldb + j];
            float *c = C + (size_t)i * ldc + j;
            *c = accumulate ? *c + s : s;
        }
}

static int no_copies;

void cnnviz_gemm_force_no_copies(int on) { no_copies = on != 0; }

/* Rows outer, so a tile's rows of A stay in L1 while B, column block by
 * column block, comes from L2 */
CNNVIZ_HOT
static void axpy_plain(int M, int N, int K, const float *A, size_t ars, size_t aks, const float *B, size_t ldb,
                       float *C, size_t ldc, int accumulate) {
    /* the last columns, fewer than 16, copied out with zeros after them:
     * the same multiply-adds per lane as a full block */
    int full = N / 16 * 16, w = N - full;
    float *panel = NULL;
    if (w) {
        panel = no_copies ? NULL : malloc((size_t)K * 16 * sizeof *panel);
        if (!panel) {
            elements_plain(M, w, K, A, ars, aks, B + full, ldb, C + full, ldc, accumulate);
            N = full;
        } else {
            for (int k = 0; k < K; k++)
                for (int j = 0; j < 16; j++) panel[(size_t)k * 16 + j] = j < w ? B[(size_t)k * ldb + full + j] : 0.0f;
        }
    }
    for (int i0 = 0; i0 < M; i0 += PLAIN_ROWS) {
        int R = M - i0 < PLAIN_ROWS ? M - i0 : PLAIN_ROWS;
        const float *a = A + (size_t)i0 * ars;
        for (int j0 = 0; j0 < N; j0 += 16) {
            if (j0 < full)
                axpy16_any_plain(R, K, a, ars, aks, B + j0, ldb, C + (size_t)i0 * ldc + j0, ldc, 16, accumulate);
            else
                axpy16_any_plain(R, K, a, ars, aks, panel, 16, C + (size_t)i0 * ldc + j0, ldc, w, accumulate);
        }
    }
    free(panel);
}

/* R rows by J columns (each 1 or 2) of an NT product, each element summed
 * as the AVX-512 kernel sums it: sixteen partial sums over k = l, l+16,
 * ... (the last sixteen from zero-padded copies, zeros past K, as its
 * masked loads give), then cnnviz_hsum16_halves */
static inline __attribute__((always_inline)) void dot_tile_plain(const int R, const int J, int K, const float *a,
                                                                 size_t lda, const float *b, size_t ldb, float *c,
                                                                 size_t ldc, int accumulate) {
    cnnviz_v8u lo[2][2], hi[2][2];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) lo[r][j] = hi[r][j] = (cnnviz_v8u){0};
    for (int k = 0; k < K; k += 16) {
        const float *ar[2], *br[2];
        float pa[2][16], pb[2][16];
        for (int r = 0; r < R; r++) ar[r] = a + (size_t)r * lda + k;
        for (int j = 0; j < J; j++) br[j] = b + (size_t)j * ldb + k;
        if (K - k < 16) {
            for (int r = 0; r < R; r++) {
                for (int l = 0; l < 16; l++) pa[r][l] = l < K - k ? ar[r][l] : 0.0f;
                ar[r] = pa[r];
            }
            for (int j = 0; j < J; j++) {
                for (int l = 0; l < 16; l++) pb[j][l] = l < K - k ? br[j][l] : 0.0f;
                br[j] = pb[j];
            }
        }
        cnnviz_v8u al[2], ah[2];
        for (int r = 0; r < R; r++) al[r] = *(const cnnviz_v8u *)ar[r], ah[r] = *(const cnnviz_v8u *)(ar[r] + 8);
        for (int j = 0; j < J; j++) {
            cnnviz_v8u bl = *(const cnnviz_v8u *)br[j], bh = *(const cnnviz_v8u *)(br[j] + 8);
            for (int r = 0; r < R; r++) lo[r][j] += al[r] * bl, hi[r][j] += ah[r] * bh;
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < J; j++) {
            float sum = cnnviz_hsum16_halves(lo[r][j], hi[r][j]), *cij = c + (size_t)r * ldc + j;
            *cij = accumulate ? *cij + sum : sum;
        }
}

/* NT: the AVX-512 kernel's order, so both paths give the same bits; two
 * rows by two columns at a time, no heap memory */
CNNVIZ_HOT
static void nt_plain(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                     int accumulate) {
    for (int i0 = 0; i0 < M; i0 += 2)
        for (int j0 = 0; j0 < N; j0 += 2) {
            const float *a = A + (size_t)i0 * lda, *b = B + (size_t)j0 * ldb;
            float *c = C + (size_t)i0 * ldc + j0;
            int two_rows = M - i0 > 1, two_cols = N - j0 > 1;
            if (two_rows && two_cols)
                dot_tile_plain(2, 2, K, a, (size_t)lda, b, (size_t)ldb, c, (size_t)ldc, accumulate);
            else if (two_rows)
                dot_tile_plain(2, 1, K, a, (size_t)lda, b, (size_t)ldb, c, (size_t)ldc, accumulate);
            else if (two_cols)
                dot_tile_plain(1, 2, K, a, (size_t)lda, b, (size_t)ldb, c, (size_t)ldc, accumulate);
            else
                dot_tile_plain(1, 1, K, a, (size_t)lda, b, (size_t)ldb, c, (size_t)ldc, accumulate);
        }
}

static void gemm_plain(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate) {
    if (tb)
        nt_plain(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    else
        axpy_plain(M, N, K, A, ta ? 1 : (size_t)lda, ta ? (size_t)lda : 1, B, (size_t)ldb, C, (size_t)ldc, accumulate);
}

/* --- AVX-512 ------------------------------------------------------------- */

#ifdef CNNVIZ_CLONES
static __mmask16 lanes(int n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* R rows by NV vectors of C, the last vector's lanes masked by m; R and NV
 * are constants where it is inlined, so the accumulators stay in registers */
GEMM_INLINE GEMM_V4 void axpy_tile_v4(const int R, const int NV, int K, const float *a, size_t ars, size_t aks,
                                      const float *b, size_t ldb, __mmask16 m, float *c, size_t ldc, int accumulate) {
    __m512 acc[TILE_ROWS][TILE_VECS];
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 5
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * ldb;
        __m512 bv[TILE_VECS];
        #pragma GCC unroll 5
        for (int v = 0; v < NV - 1; v++) bv[v] = _mm512_loadu_ps(bk + 16 * v);
        bv[NV - 1] = _mm512_maskz_loadu_ps(m, bk + 16 * (NV - 1));
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(a[(size_t)r * ars + (size_t)k * aks]);
            #pragma GCC unroll 5
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 5
        for (int v = 0; v < NV; v++) {
            float *cp = c + (size_t)r * ldc + 16 * v;
            __mmask16 mv = v == NV - 1 ? m : 0xffff;
            __m512 s = acc[r][v];
            if (accumulate) s = _mm512_add_ps(_mm512_maskz_loadu_ps(mv, cp), s);
            _mm512_mask_storeu_ps(cp, mv, s);
        }
}

#define AXPY_CASE(R, NV)                                                                                           \
    case (R) * 8 + (NV): axpy_tile_v4(R, NV, K, a, ars, aks, b, ldb, m, c, ldc, accumulate); break

GEMM_V4 static void axpy_tile_any_v4(int R, int NV, int K, const float *a, size_t ars, size_t aks, const float *b,
                                     size_t ldb, __mmask16 m, float *c, size_t ldc, int accumulate) {
    switch (R * 8 + NV) {
    AXPY_CASE(4, 5); AXPY_CASE(4, 4); AXPY_CASE(4, 3); AXPY_CASE(4, 2); AXPY_CASE(4, 1);
    AXPY_CASE(3, 5); AXPY_CASE(3, 4); AXPY_CASE(3, 3); AXPY_CASE(3, 2); AXPY_CASE(3, 1);
    AXPY_CASE(2, 5); AXPY_CASE(2, 4); AXPY_CASE(2, 3); AXPY_CASE(2, 2); AXPY_CASE(2, 1);
    AXPY_CASE(1, 5); AXPY_CASE(1, 4); AXPY_CASE(1, 3); AXPY_CASE(1, 2); AXPY_CASE(1, 1);
    default: break;
    }
}

/* R rows by J columns of an NT product; k in vectors of 16, the last masked */
GEMM_INLINE GEMM_V4 void dot_tile_v4(const int R, const int J, int K, const float *a, size_t lda, const float *b,
                                     size_t ldb, float *c, size_t ldc, int accumulate) {
    __m512 acc[TILE_ROWS][TILE_ROWS];
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 4
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        __mmask16 m = lanes(K - k);
        __m512 av[TILE_ROWS], bv[TILE_ROWS];
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++) av[r] = _mm512_maskz_loadu_ps(m, a + (size_t)r * lda + k);
        #pragma GCC unroll 4
        for (int j = 0; j < J; j++) bv[j] = _mm512_maskz_loadu_ps(m, b + (size_t)j * ldb + k);
        #pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            #pragma GCC unroll 4
            for (int j = 0; j < J; j++) acc[r][j] = _mm512_fmadd_ps(av[r], bv[j], acc[r][j]);
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        #pragma GCC unroll 4
        for (int j = 0; j < J; j++) {
            /* a fixed tree: lanes l and l+8, then l+4, l+2, l+1 */
            __m512 v = acc[r][j];
            __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
            __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
            __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
            __m128 h1 = _mm_add_ss(h2, _mm_movehdup_ps(h2));
            float s = _mm_cvtss_f32(h1);
            float *cij = c + (size_t)r * ldc + j;
            *cij = accumulate ? *cij + s : s;
        }
}

#define DOT_CASE(R, J)                                                                                             \
    case (R) * 8 + (J): dot_tile_v4(R, J, K, a, lda, b, ldb, c, ldc, accumulate); break

GEMM_V4 static void dot_tile_any_v4(int R, int J, int K, const float *a, size_t lda, const float *b, size_t ldb,
                                    float *c, size_t ldc, int accumulate) {
    switch (R * 8 + J) {
    DOT_CASE(4, 4); DOT_CASE(4, 3); DOT_CASE(4, 2); DOT_CASE(4, 1);
    DOT_CASE(3, 4); DOT_CASE(3, 3); DOT_CASE(3, 2); DOT_CASE(3, 1);
    DOT_CASE(2, 4); DOT_CASE(2, 3); DOT_CASE(2, 2); DOT_CASE(2, 1);
    DOT_CASE(1, 4); DOT_CASE(1, 3); DOT_CASE(1, 2); DOT_CASE(1, 1);
    default: break;
    }
}

GEMM_V4 static void gemm_v4(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                            float *C, int ldc, int accumulate) {
    if (tb) {
        for (int i0 = 0; i0 < M; i0 += TILE_ROWS) {
            int R = M - i0 < TILE_ROWS ? M - i0 : TILE_ROWS;
            for (int j0 = 0; j0 < N; j0 += TILE_ROWS) {
                int J = N - j0 < TILE_ROWS ? N - j0 : TILE_ROWS;
                dot_tile_any_v4(R, J, K, A + (size_t)i0 * lda, (size_t)lda, B + (size_t)j0 * ldb, (size_t)ldb,
                                C + (size_t)i0 * ldc + j0, (size_t)ldc, accumulate);
            }
        }
        return;
    }
    size_t ars = ta ? 1 : (size_t)lda, aks = ta ? (size_t)lda : 1;
    for (int j0 = 0; j0 < N;) {
        /* 64 columns a block; the last block takes up to 80 (a 70-unit
         * Dense in one block instead of 64 + a thin 6) */
        int rest = N - j0, nv = rest > 16 * TILE_VECS ? 4 : (rest + 15) / 16;
        int w = rest < 16 * nv ? rest : 16 * nv;
        __mmask16 m = lanes(w - 16 * (nv - 1));
        for (int i0 = 0; i0 < M; i0 += TILE_ROWS) {
            int R = M - i0 < TILE_ROWS ? M - i0 : TILE_ROWS;
            axpy_tile_any_v4(R, nv, K, A + (size_t)i0 * ars, ars, aks, B + j0, (size_t)ldb, m,
                             C + (size_t)i0 * ldc + j0, (size_t)ldc, accumulate);
        }
        j0 += w;
    }
}
#endif

/* --- entry points -------------------------------------------------------- */

#ifdef CNNVIZ_CLONES
static int use_v4(void) { return __builtin_cpu_supports("x86-64-v4") && cnnviz_wide_vectors(); }
#endif

void cnnviz_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
#ifdef CNNVIZ_CLONES
    if (use_v4()) {
        gemm_v4(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
#endif
    gemm_plain(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

/* below this many multiply-adds a second thread costs more than it saves */
#define PARALLEL_MIN_WORK (1 << 17)

void cnnviz_gemm_parallel(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc, int accumulate) {
#ifdef _OPENMP
    int blocks = (M + TILE_ROWS - 1) / TILE_ROWS;
    /* cnnviz_set_threads sets omp_get_max_threads(); it is 1 inside the
     * engine's own regions (cnnviz_omp_serial_inside) */
    int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (t > cnnviz_procs()) t = cnnviz_procs();
    if (t > blocks) t = blocks;
    if (t > 1 && (double)M * N * K >= PARALLEL_MIN_WORK) {
        size_t arow = ta ? 1 : (size_t)lda;
        #pragma omp parallel num_threads(t)
        {
            int id = omp_get_thread_num(), n = omp_get_num_threads();
            int i0 = TILE_ROWS * (int)((long)blocks * id / n), i1 = TILE_ROWS * (int)((long)blocks * (id + 1) / n);
            if (i1 > M) i1 = M;
            if (i1 > i0)
                cnnviz_gemm(ta, tb, i1 - i0, N, K, A + (size_t)i0 * arow, lda, B, ldb, C + (size_t)i0 * ldc, ldc,
                            accumulate);
        }
        return;
    }
#endif
    cnnviz_gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}
