/* What the bench programs share. */
#ifndef CNNVIZ_BENCH_H
#define CNNVIZ_BENCH_H

#include <time.h>

/* wall-clock seconds, from a clock that never steps back */
static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
