/* bench_engine_profile: where the CPU engine spends its time on the seed
 * network (C32k3-P2-C64k3-P2-C64k3-F-D70-D10, random weights and images).
 *
 *   bench_engine_profile [THREADS...]      (default: 1 2)
 *
 * For each thread count: inference throughput over 10,000 images at batch
 * 256 (cnnviz_model_predict), the time of one training step at batch 64
 * (forward, backward with weight gradients) and what an epoch of 60,000
 * would take, then each layer's forward and backward at batch 64 and 256
 * (layer by layer, as the driver runs them when it cannot go depth-first).
 * Best of several runs. Besides wall time it prints CPU time divided by the
 * thread count, which says what wall time would be on an idle machine when
 * other processes share the cores. */
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
    cnnviz_workspace *ws = cnnviz_workspace_new(m, B, 1, &err);
    float dout[64 * 10];
    for (int i = 0; i < B * 10; i++) dout[i] = 0.01f * (float)(i % 7) - 0.03f;
    best = best_cpu = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = bench_now(), c0 = cpu();
        for (int s = 0; s < steps; s++) {
            cnnviz_forward(m, ws, x + (size_t)(s % 100) * B * 784, B, -1, 1);
            cnnviz_model_zero_grads(m);
            cnnviz_backward(m, ws, dout, B, -1, 1, NULL);
        }
        double t = (bench_now() - t0) / steps, c = (cpu() - c0) / steps / threads;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    printf("training step at batch 64: %.2f ms, epoch of 60000: %.2f s (cpu/threads: %.2f ms, %.2f s)\n",
           best * 1e3, best * 60000 / B, best_cpu * 1e3, best_cpu * 60000 / B);
    cnnviz_workspace_free(ws);
}

/* each layer alone, through its ops, on the outputs of a real forward */
static void per_layer(cnnviz_model *m, const float *x, int B, int threads) {
    cnnviz_error err;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, B, 1, &err);
    size_t biggest = 0;
    for (int i = 0; i < m->nlayers; i++) {
        size_t n = cnnviz_shape_size(&m->layers[i]->out_shape);
        if (n > biggest) biggest = n;
    }
    float *dout = malloc((size_t)B * biggest * sizeof *dout), *din = malloc((size_t)B * biggest * sizeof *din);
    for (size_t k = 0; k < (size_t)B * biggest; k++) dout[k] = 0.001f * (float)(k % 13) - 0.006f;
    cnnviz_forward(m, ws, x, B, -1, 1); /* a training pass: the paths training takes */
    printf("batch %d, %d thread%s: ms per batch   forward  backward (with weight gradients)\n", B, threads,
           threads > 1 ? "s" : "");
    double total_f = 0, total_b = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const cnnviz_layer *l = m->layers[i];
        const float *in = i ? ws->out[i - 1] : x;
        double tf = 1e30, tb = 1e30;
        for (int rep = 0; rep < 20; rep++) {
            cnnviz_pass pf = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i], .training = 1};
            cnnviz_pass_crop(m, i, m->nlayers - 1, 1, &pf.rows_read, &pf.cols_read); /* as cnnviz_forward */
            double t0 = bench_now();
            l->ops->forward(l, in, ws->out[i], B, &pf);
            double t = bench_now() - t0;
            if (t < tf) tf = t;
            cnnviz_pass pb = {.aux = ws->aux[i], .scratch = ws->scratch, .prep = ws->prep[i], .training = 1,
                              .weight_grads = 1,
                              .relu_input = cnnviz_fused_relu_pool(m, i)};
            t0 = bench_now();
            /* the first layer's input gradient is not wanted in training */
            l->ops->backward(l, in, ws->out[i], dout, i ? din : NULL, B, &pb);
            t = bench_now() - t0;
            if (t < tb) tb = t;
        }
        total_f += tf, total_b += tb;
        printf("  %-16s %9.3f %9.3f\n", l->name, tf * 1e3, tb * 1e3);
    }
    printf("  %-16s %9.3f %9.3f\n", "total", total_f * 1e3, total_b * 1e3);
    free(dout);
    free(din);
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
        per_layer(m, x, 64, counts[c]);
        per_layer(m, x, 256, counts[c]);
    }
    free(x);
    cnnviz_model_free(m);
    return 0;
}
