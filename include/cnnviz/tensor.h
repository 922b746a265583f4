/* cnnviz — shapes and the seeded random generator.
 *
 * Tensors are plain float32 arrays in Keras' own layout: NHWC activations,
 * HWIO conv kernels (kh,kw,in,out), Dense kernels (in,out). A cnnviz_shape is
 * the shape of ONE sample (no batch axis): (H,W,C), (H,W) or (N). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define CNNVIZ_MAX_RANK 4

typedef struct {
    int rank;
    int dim[CNNVIZ_MAX_RANK];
} cnnviz_shape;

size_t cnnviz_shape_size(const cnnviz_shape *s);
int cnnviz_shape_equal(const cnnviz_shape *a, const cnnviz_shape *b);
/* "(26, 26, 32)" like Keras prints it, without the batch axis. */
void cnnviz_shape_format(const cnnviz_shape *s, char *buf, size_t n);
cnnviz_shape cnnviz_shape3(int h, int w, int c);
cnnviz_shape cnnviz_shape1(int n);

/* One seeded generator, passed explicitly wherever randomness is used, so the
 * same seed gives the same numbers on every platform (PCG32, O'Neill 2014). */
typedef struct {
    uint64_t state, inc;
} cnnviz_rng;

void cnnviz_rng_seed(cnnviz_rng *r, uint64_t seed, uint64_t stream);
uint32_t cnnviz_rng_u32(cnnviz_rng *r);
/* uniform in [0, 1) with 24 random bits */
float cnnviz_rng_uniform(cnnviz_rng *r);
/* uniform integer in [0, n) without modulo bias */
uint32_t cnnviz_rng_below(cnnviz_rng *r, uint32_t n);
/* standard normal (Box-Muller in double, one value per call) */
float cnnviz_rng_normal(cnnviz_rng *r);
/* Fisher-Yates shuffle of idx[0..n) */
void cnnviz_rng_shuffle(cnnviz_rng *r, int *idx, int n);

/* Thread count for the engine's OpenMP loops; 0 = all cores. */
void cnnviz_set_threads(int n);
int cnnviz_get_threads(void);

#ifdef __cplusplus
}
#endif
