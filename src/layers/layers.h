/* Internal helpers shared by the layer files (src/layers/). */
#pragma once
#include <stddef.h>

#include "model-impl.h"

/* calloc a layer struct of `size` bytes whose first member is cnnviz_layer,
 * with its ops set; NULL with an error on failure. */
void *cnnviz_layer_alloc(size_t size, const cnnviz_layer_ops *ops, cnnviz_error *err);
/* Append a parameter declaration; data/grad pointers come at finalize. */
cnnviz_param *cnnviz_layer_add_param(cnnviz_layer *l, const char *name, cnnviz_shape shape, int trainable);

/* The "C" in the input's last axis; rank-3 inputs are (H,W,C), rank-1 (N). */
static inline int cnnviz_last_dim(const cnnviz_shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }

/* TF's output size and leading pad for one spatial axis
 * (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSize):
 * valid: floor((in-k)/s)+1, no pad; same: ceil(in/s), the total pad
 * max((out-1)*s+k-in, 0) split with the smaller half first. */
void cnnviz_window_geometry(int in, int k, int s, cnnviz_padding pad, int *out, int *pad_before);
/* Whether all `out` windows of size k, stride s, after pad_before lie
 * inside the input along one axis (no padding read, none cut by the end). */
static inline int cnnviz_windows_inside(int in, int k, int s, int out, int pad_before) {
    return pad_before == 0 && (out - 1) * s + k <= in;
}

/* Keras' default slope/alpha for an activation named by string on a
 * Conv2D/Dense (keras.activations.leaky_relu: 0.2, elu: 1.0). */
float cnnviz_fused_activation_alpha(cnnviz_activation a);

/* Hot loops are compiled for AVX-512 and AVX2+FMA as well as the baseline,
 * and the loader picks one at start-up (GCC function multiversioning), so
 * a portable -O2 build still runs wide vectors. The same machine always
 * picks the same version, so results stay bit-identical run to run.
 * CNNVIZ_AVX2_MAX leaves out the AVX-512 versions (and cnnviz_wide_vectors
 * says 0): on an AVX-512 CPU, such a build runs just what the usual build
 * runs on an AVX2 CPU, every other function compiled the same, so the two
 * can be compared on one machine (CI's last pass, scripts/compare-builds.sh). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(CNNVIZ_NO_CLONES)
#ifdef CNNVIZ_AVX2_MAX
#define CNNVIZ_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CNNVIZ_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#define CNNVIZ_CLONES 1
#else
#define CNNVIZ_HOT
#endif

/* The processors the engine sizes its per-thread buffers for
 * (omp_get_num_procs()); tests force another count (0: the machine's) to
 * run more threads than this machine has cores the way a bigger one would. */
int cnnviz_procs(void);
void cnnviz_force_procs(int n);

/* Whether the hot loops run with 16-float vectors in one register
 * (AVX-512: the x86-64-v4 clone, or a build for it). The kernels written
 * around cnnviz_v16 with many accumulators (the direct conv, Winograd,
 * the gradient-ascent head) spill on AVX2, where they measured 8 to 14
 * times slower than a BLAS sgemm or the plain loops; there layers take
 * those kernels' 8-float versions (cnnviz_avx2_vectors). */
int cnnviz_wide_vectors(void);
/* Tests: 1 or 0 makes layers built from now on take the wide or the
 * narrow paths whatever the CPU; -1 goes back to asking the CPU. */
void cnnviz_force_wide_vectors(int wide);
/* Whether this CPU runs 8-float vectors in one register with FMA (AVX2,
 * x86-64-v3 and later): where cnnviz_wide_vectors() is 0, the kernels
 * written for them (Winograd F(2x2, 3x3) and F(3x3, 3x3), the direct
 * conv, the fused conv+pool pass, the sparse window kernels, max
 * pooling, the gradient-ascent head) take the place of the sgemm and
 * plain paths. Tests force it with
 * cnnviz_force_avx2_vectors(0 or 1; -1: the CPU again). */
int cnnviz_avx2_vectors(void);
void cnnviz_force_avx2_vectors(int on);

/* Keep short copy loops as loops (GCC would call memcpy for each). */
#if defined(__GNUC__) && !defined(__clang__)
#define CNNVIZ_NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CNNVIZ_NO_MEMCPY_CALLS
#endif

/* 16 floats, GCC vector extension (one AVX-512 register, two AVX2 ones);
 * the unaligned type loads and stores anywhere. */
typedef float cnnviz_v16 __attribute__((vector_size(64)));
typedef float cnnviz_v16u __attribute__((vector_size(64), aligned(4)));
typedef int cnnviz_v16i __attribute__((vector_size(64)));
typedef int cnnviz_v16iu __attribute__((vector_size(64), aligned(4)));
/* 8 floats (one AVX2 register, two SSE ones), for the kernels' narrow
 * paths, where 16-float vectors with many accumulators spill */
typedef float cnnviz_v8 __attribute__((vector_size(32)));
typedef float cnnviz_v8u __attribute__((vector_size(32), aligned(4)));
typedef int cnnviz_v8i __attribute__((vector_size(32)));
typedef int cnnviz_v8iu __attribute__((vector_size(32), aligned(4)));

/* the sum of a vector's lanes, in a fixed tree order */
static inline float cnnviz_hsum16(cnnviz_v16 v) {
    v += __builtin_shuffle(v, (cnnviz_v16i){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    v += __builtin_shuffle(v, (cnnviz_v16i){4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11});
    v += __builtin_shuffle(v, (cnnviz_v16i){2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13});
    v += __builtin_shuffle(v, (cnnviz_v16i){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
    return v[0];
}

/* cnnviz_hsum16 of a vector held in two halves, lanes 0-7 (lo) and 8-15
 * (hi): the same tree (lanes l and l+8, then l+4, l+2, l+1), so the same
 * bits; for 8-float code that sums as the 16-float code does */
static inline float cnnviz_hsum16_halves(cnnviz_v8 lo, cnnviz_v8 hi) {
    cnnviz_v8 h8 = lo + hi;
    float h4[4];
    for (int i = 0; i < 4; i++) h4[i] = h8[i] + h8[i + 4];
    return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

/* C (M, N) = op(A)·op(B), or C += it with accumulate (gemm.c). ta: A is
 * stored (K, M) instead of (M, K); tb: B is stored (N, K) instead of
 * (K, N); not both. Every element is summed in an order fixed by K alone,
 * so its bits do not depend on M, N, its place in C or the thread count
 * (which OpenBLAS' kernels do not promise). cnnviz_gemm is serial;
 * cnnviz_gemm_parallel splits the rows of C among the threads when called
 * outside a parallel region. */
void cnnviz_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, int accumulate);
void cnnviz_gemm_parallel(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc, int accumulate);
/* Tests: 1 makes the portable products take their no-memory path (element
 * by element, the same order) as if every copy's malloc failed; 0 undoes it. */
void cnnviz_gemm_force_no_copies(int on);

/* Dense's backward after its activation's (dense.c): din = dz·W^T (if
 * din), gw += in^T·dz and gb += dz's rows summed in order (each if not
 * NULL), over rows rows of in_dim / units. */
void cnnviz_dense_linear_backward(const cnnviz_layer *l, const float *in, const float *dz, float *din, int rows,
                                  float *gw, float *gb);

/* y = act(y + bias) over rows of n, in one pass for relu/linear (bias may
 * be NULL). Serial: callers run it on their own share of the rows. */
void cnnviz_bias_activation_rows(float *y, const float *bias, size_t rows, int n, cnnviz_activation act,
                                 float alpha);
/* db[j] += sum_r dz[r][j], rows summed in order. Serial. */
void cnnviz_bias_grad_rows(float *db, const float *dz, size_t rows, int n);

/* Winograd F(2x2, 3x3) for stride-1 3x3 convolutions (src/layers/winograd.c).
 * usable: the geometry is supported (C and F multiples of 16) and saves at
 * least 1.5x of the arithmetic. weights: U (weight_floats) from the HWIO
 * kernel. sample: one sample's output with bias and, if relu, ReLU, using
 * a block of block_floats; only its first NH rows and NW columns (the
 * rest zero), each the same bits as in the whole output. */
int cnnviz_winograd_usable(int kh, int kw, int sh, int sw, int C, int F, int OH, int OW);
size_t cnnviz_winograd_weight_floats(int C, int F);
size_t cnnviz_winograd_block_floats(int C, int F);
void cnnviz_winograd_weights(const float *w, int C, int F, float *u);
void cnnviz_winograd_sample(const float *in, int H, int W, int C, int pad_top, int pad_left, const float *u,
                            const float *bias, int relu, float *out, int OH, int OW, int F, int NH, int NW,
                            float *block);

/* Winograd F(3x3, 3x3) (winograd.c), forward and backward, for layers whose
 * output comes in few 3x3 blocks (5x5 -> 3x3). Rows of its products are
 * the blocks of all nb samples of a call. weights: U and its transpose
 * (weight_floats, with room for the transposed kernel) from the HWIO kernel. forward: out with bias and, if relu,
 * ReLU. backward, from dz (the gradient at the pre-activation output): din
 * overwritten (if not NULL) and du (du_floats: 25 planes of (C, F)) accumulated (if not NULL;
 * du_fresh: overwritten);
 * weight_grad turns du into dw (3, 3, C, F) += G^T du G. */
int cnnviz_winograd3_usable(int kh, int kw, int sh, int sw, int C, int F, int OH, int OW);
size_t cnnviz_winograd3_weight_floats(int C, int F);
size_t cnnviz_winograd3_block_floats(int C, int F);
size_t cnnviz_winograd3_du_floats(int C, int F);
void cnnviz_winograd3_weights(const float *w, int C, int F, float *u);
void cnnviz_winograd3_forward(const float *in, int nb, int H, int W, int C, int pad_top, int pad_left,
                              const float *u, const float *bias, int relu, float *out, int OH, int OW, int F,
                              float *block);
void cnnviz_winograd3_backward(const float *in, const float *dz, int nb, int H, int W, int C, int pad_top,
                               int pad_left, const float *u, float *din, float *du, int du_fresh, int OH, int OW,
                               int F, float *block);
void cnnviz_winograd3_weight_grad(const float *du, int C, int F, float *dw);

/* Conv2D(relu, 3x3, one input channel, valid) + MaxPooling2D(2) as one pass
 * (conv2d.c), for training: forward writes the pooled output and an int per
 * pooled value saying which window position was the (first) maximum, and
 * not the conv's output; backward adds the conv's kernel and bias
 * gradients from the pooled gradient. fusable: whether conv and pool can go
 * that way. */
int cnnviz_conv_pool_fusable(const cnnviz_layer *conv, const cnnviz_layer *pool);

/* The rows and columns of a pooling layer's input that its windows cover
 * (a valid pooling may leave the last ones out: 11 -> 5 reads 10). */
void cnnviz_pool_input_read(const cnnviz_layer *pool, int *rows, int *cols);
void cnnviz_conv_pool_forward(const cnnviz_layer *conv, const float *in, float *pooled, int *codes, int nb);
void cnnviz_conv_pool_backward(const cnnviz_layer *conv, const float *in, const float *pooled,
                               const int *codes, const float *dpooled, int nb, float *gw, float *gb);

/* A Conv2D's window: kernel, strides and the padding before the first row
 * and column, as the layer was made. */
void cnnviz_conv2d_window(const cnnviz_layer *conv, int *kh, int *kw, int *sh, int *sw, int *pad_top,
                          int *pad_left);

/* One map of a Conv2D or Dense layer per sample, before its activation:
 * what gradient ascent asks of the layer it ascends (one_map.c). Sample b
 * takes map maps[b]; computing only that one saves the other maps' work
 * (63 of every 64 on the seed net's second conv layer), forward and
 * backward. A Dense layer is a 1x1 conv over its rows. */
typedef struct cnnviz_one_map {
    int H, W, C, OH, OW, kh, kw, sh, sw, pad_top, pad_left;
    int channels;  /* maps */
    int positions; /* OH * OW */
    size_t K;      /* weights of one map */
    size_t in_size;
    /* cnnviz_one_map_forward_vec's lanes, 16 (AVX-512) or 8 (AVX2), when
     * every window is inside and rows are 16k floats; 0: the plain loop */
    int vector;
    const cnnviz_param *kernel; /* HWIO, or (in, units) */
    const float *bias;          /* (channels) or NULL */
} cnnviz_one_map;
/* 0, or -1 when l is neither a Conv2D nor a Dense layer */
int cnnviz_one_map_init(cnnviz_one_map *h, const cnnviz_layer *l);
/* (channels, K): each map's weights gathered, map m at m * K */
void cnnviz_one_map_gather(const cnnviz_one_map *h, float *kmap);
/* z (B, positions) from in (B, in_size) */
void cnnviz_one_map_forward(const cnnviz_one_map *h, const float *kmap, const float *in, const int *maps, int B,
                            float *z);
/* din (B, in_size) = d/d(in) given dz (B, positions) */
void cnnviz_one_map_backward(const cnnviz_one_map *h, const float *kmap, const float *dz, const int *maps, int B,
                             float *din);
