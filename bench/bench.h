/* What the bench programs share. */
#ifndef CNNVIZ_BENCH_H
#define CNNVIZ_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnnviz/model.h"

/* wall-clock seconds, from a clock that never steps back */
static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The training workspace cnnviz_train makes (src/train/loop.c), so a bench
 * times the driver's own plan; exits with the error naming the bench. */
static inline cnnviz_workspace *bench_training_workspace(const cnnviz_model *m, int batch, const char *bench) {
    cnnviz_error err;
    cnnviz_workspace_options o = cnnviz_workspace_options_init(batch);
    o.training = o.weight_grads = 1;
    o.keep = CNNVIZ_KEEP_LAST;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, &err);
    if (!ws) {
        fprintf(stderr, "%s: %s\n", bench, err.msg);
        exit(1);
    }
    return ws;
}

#endif
