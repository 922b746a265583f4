#include "cnnviz/tensor.h"
#include "model-impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

size_t cnnviz_shape_size(const cnnviz_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= (size_t)s->dim[i];
    return n;
}

int cnnviz_shape_equal(const cnnviz_shape *a, const cnnviz_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

void cnnviz_shape_format(const cnnviz_shape *s, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < s->rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %d" : "%d", s->dim[i]);
    if (off < n) snprintf(buf + off, n - off, s->rank == 1 ? ")" : ")");
}

cnnviz_shape cnnviz_shape3(int h, int w, int c) {
    cnnviz_shape s = {3, {h, w, c, 0}};
    return s;
}

cnnviz_shape cnnviz_shape1(int n) {
    cnnviz_shape s = {1, {n, 0, 0, 0}};
    return s;
}

void cnnviz_rng_seed(cnnviz_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    cnnviz_rng_u32(r);
    r->state += seed;
    cnnviz_rng_u32(r);
}

uint32_t cnnviz_rng_u32(cnnviz_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float cnnviz_rng_uniform(cnnviz_rng *r) {
    return (float)(cnnviz_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

uint32_t cnnviz_rng_below(cnnviz_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = cnnviz_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

float cnnviz_rng_normal(cnnviz_rng *r) {
    /* Box-Muller in double so the result does not depend on libm's float paths */
    double u1 = ((double)cnnviz_rng_u32(r) + 1.0) / 4294967297.0;
    double u2 = (double)cnnviz_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void cnnviz_rng_shuffle(cnnviz_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnnviz_rng_below(r, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static int g_threads = 0;

void cnnviz_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    if (n <= 0) n = 1;
#endif
    g_threads = n;
}

int cnnviz_get_threads(void) {
#ifdef _OPENMP
    return g_threads > 0 ? g_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

/* --- subnormal floats ------------------------------------------------------
 * x86: MXCSR's FTZ (bit 15: a result below FLT_MIN becomes 0) and DAZ
 * (bit 6: such an operand is read as 0). ARM64: FPCR's FZ (bit 24), which
 * does both. The mode is each thread's own, so it is set on the caller and
 * on the OpenMP team the engine's regions run on; threads the runtime adds
 * later are cloned from the caller and start with its mode. */
#if defined(__x86_64__) || defined(__i386__)
#define FLUSH_BITS 0x8040u
static unsigned fp_mode_get(void) { return _mm_getcsr(); }
static void fp_mode_set(unsigned v) { _mm_setcsr(v); }
#elif defined(__aarch64__)
#define FLUSH_BITS (1u << 24)
static unsigned fp_mode_get(void) {
    unsigned long v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return (unsigned)v;
}
static void fp_mode_set(unsigned v) { __asm__ volatile("msr fpcr, %0" : : "r"((unsigned long)v)); }
#else
#define FLUSH_BITS 0u
static unsigned fp_mode_get(void) { return 0; }
static void fp_mode_set(unsigned v) { (void)v; }
#endif

/* the flush bits of this thread and its team set to those of bits */
static void fp_flush_set_all(unsigned bits) {
    if (!FLUSH_BITS) return;
    fp_mode_set((fp_mode_get() & ~FLUSH_BITS) | (bits & FLUSH_BITS));
#ifdef _OPENMP
    if (omp_in_parallel()) return;
    #pragma omp parallel num_threads(cnnviz_get_threads())
    fp_mode_set((fp_mode_get() & ~FLUSH_BITS) | (bits & FLUSH_BITS));
#endif
}

unsigned cnnviz_flush_subnormals_begin(void) {
    unsigned saved = fp_mode_get() & FLUSH_BITS;
    fp_flush_set_all(FLUSH_BITS);
    return saved;
}

void cnnviz_flush_subnormals_end(unsigned saved) { fp_flush_set_all(saved); }
