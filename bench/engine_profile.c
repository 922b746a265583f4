/* bench_engine_profile: where the CPU engine spends its time on the seed
 * network (C32k3-P2-C64k3-P2-C64k3-F-D70-D10, random weights and images).
 *
 *   bench_engine_profile [THREADS...]      (default: 1 2)
 *
 * For each thread count: inference throughput over 10,000 images at batch
 * 256 (cnnviz_model_predict), the time of one training step at batch 64
 * (forward, backward with weight gradients) and what an epoch of 60,000
 * would take, then each step's forward and backward at batch 64 and 256
 * in the driver's training passes (cnnviz_workspace_time_steps). Best of
 * several runs for the totals, the mean of 20 for the steps. Besides wall
 * time it prints CPU time divided by the thread count, which says what wall
 * time would be on an idle machine when other processes share the cores. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnviz/model.h"
#include "cnnviz/train.h"
#include "model-impl.h"
#include "bench.h"

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static cnnviz_model *seed_net(void) {
    cnnviz_shape in = cnnviz_shape3(28, 28, 1);
    cnnviz_model *m = NULL;
    cnnviz_error err;
    if (cnnviz_model_from_spec(CNNVIZ_SEED_ARCH, &in, &m, &err) || cnnviz_model_alloc_grads(m, &err)) {
        fprintf(stderr, "bench_engine_profile: %s\n", err.msg);
        exit(1);
    }
    cnnviz_rng r;
    cnnviz_rng_seed(&r, 1, 1);
    cnnviz_model_init_weights(m, &r);
    return m;
}

static void throughput(cnnviz_model *m, const float *x, int n, int threads) {
    cnnviz_error err;
    float *out = malloc((size_t)n * 10 * sizeof *out);
    cnnviz_model_predict(m, x, 1024, 256, out, &err); /* warm up */
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now(), c0 = cpu();
        cnnviz_model_predict(m, x, n, 256, out, &err);
        double t = bench_now() - t0, c = (cpu() - c0) / threads;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    printf("inference, %d images at batch 256: %.0f images/s (cpu/threads: %.0f images/s)\n", n, n / best,
           n / best_cpu);
    free(out);

    int B = 64, steps = 50;
    cnnviz_workspace *ws = bench_training_workspace(m, B, "bench_engine_profile");
    float dout[64 * 10];
    for (int i = 0; i < B * 10; i++) dout[i] = 0.01f * (float)(i % 7) - 0.03f;
    best = best_cpu = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = bench_now(), c0 = cpu();
        for (int s = 0; s < steps; s++) {
            cnnviz_forward(ws, x + (size_t)(s % 100) * B * 784, B, NULL);
            cnnviz_model_zero_grads(m);
            cnnviz_backward(ws, dout, NULL, NULL);
        }
        double t = (bench_now() - t0) / steps, c = (cpu() - c0) / steps / threads;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    printf("training step at batch 64: %.2f ms, epoch of 60000: %.2f s (cpu/threads: %.2f ms, %.2f s)\n",
           best * 1e3, best * 60000 / B, best_cpu * 1e3, best_cpu * 60000 / B);
    cnnviz_workspace_free(ws);
}

/* each step of the training plan, timed by the driver over 20 training
 * passes (forward, backward with weight gradients) */
static void per_step(cnnviz_model *m, const float *x, int B, int threads) {
    cnnviz_workspace *ws = bench_training_workspace(m, B, "bench_engine_profile");
    int nsteps = cnnviz_workspace_num_steps(ws), reps = 20;
    float *dout = malloc((size_t)B * 10 * sizeof *dout);
    double *sec = calloc(2 * (size_t)nsteps, sizeof *sec);
    for (int k = 0; k < B * 10; k++) dout[k] = 0.001f * (float)(k % 13) - 0.006f;
    cnnviz_forward(ws, x, B, NULL); /* warm up */
    cnnviz_workspace_time_steps(ws, sec);
    for (int rep = 0; rep < reps; rep++) {
        cnnviz_forward(ws, x, B, NULL);
        cnnviz_backward(ws, dout, NULL, NULL);
    }
    cnnviz_workspace_time_steps(ws, NULL);
    printf("batch %d, %d thread%s: ms per batch   forward  backward (with weight gradients; depth-first steps: the "
           "threads' time over the thread count)\n",
           B, threads, threads > 1 ? "s" : "");
    double total_f = 0, total_b = 0;
    for (int s = 0; s < nsteps; s++) {
        const cnnviz_step *st = cnnviz_workspace_step(ws, s);
        char name[300];
        snprintf(name, sizeof name, "%s%s%s", m->layers[st->first]->name, st->count > 1 ? " + " : "",
                 st->count > 1 ? m->layers[st->first + 1]->name : "");
        double tf = sec[2 * s] / reps, tb = sec[2 * s + 1] / reps;
        total_f += tf, total_b += tb;
        printf("  %-34s %9.3f %9.3f\n", name, tf * 1e3, tb * 1e3);
    }
    printf("  %-34s %9.3f %9.3f\n", "total", total_f * 1e3, total_b * 1e3);
    free(dout);
    free(sec);
    cnnviz_workspace_free(ws);
}

int main(int argc, char **argv) {
    int counts[8] = {1, 2}, nc = 2;
    if (argc > 1) {
        nc = 0;
        for (int i = 1; i < argc && nc < 8; i++) {
            char *end;
            long t = strtol(argv[i], &end, 10);
            if (*end || t < 1 || t > 64) {
                fprintf(stderr, "usage: bench_engine_profile [THREADS...]   (thread counts 1 to 64; default 1 2)\n");
                return 2;
            }
            counts[nc++] = (int)t;
        }
    }
    cnnviz_model *m = seed_net();
    int n = 10000;
    float *x = malloc((size_t)n * 784 * sizeof *x);
    cnnviz_rng r;
    cnnviz_rng_seed(&r, 2, 1);
    /* MNIST-like: mostly zeros */
    for (size_t i = 0; i < (size_t)n * 784; i++) x[i] = cnnviz_rng_uniform(&r) < 0.8f ? 0.0f : cnnviz_rng_uniform(&r);
    for (int c = 0; c < nc; c++) {
        cnnviz_set_threads(counts[c]);
        printf("== %d thread%s\n", counts[c], counts[c] > 1 ? "s" : "");
        throughput(m, x, n, counts[c]);
        per_step(m, x, 64, counts[c]);
        per_step(m, x, 256, counts[c]);
    }
    free(x);
    cnnviz_model_free(m);
    return 0;
}
