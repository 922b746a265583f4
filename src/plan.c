/* The execution plan and the driver that walks it.
 *
 * A workspace is made for one kind of pass (cnnviz_workspace_options). When
 * it is made, its plan lists the steps from layer 0 to the last layer run:
 * each a layer or a group of layers that know about each other (a Conv2D
 * with ReLU and its max pooling; the first such pair run as one pass in
 * training), with the hints each layer is given (which part of its output
 * is read, which ReLU backward is done by the pooling above). Forward and
 * backward only walk the plan: whole batches step by step or, for batches
 * larger than CNNVIZ_DEPTH_BATCH on small models, micro-batch by
 * micro-batch through every step (depth-first). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers/layers.h"
#include "model-impl.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* depth-first passes: samples per micro-batch, and the largest model they
 * are used for (its weights are read per micro-batch) */
#define CNNVIZ_DEPTH_BATCH 8
#define DEPTH_MAX_PARAMS ((size_t)1 << 19)
#define DEPTH_GROUPS 8

/* Micro-batches go in groups, j = s, s + S, s + 2S, ... for s < S, a group
 * to a thread in forward and backward alike (its activations stay in that
 * core's cache), and a group's weight gradients go into one slab, in j
 * order; the slabs are added in group order. S is DEPTH_GROUPS (or the
 * number of micro-batches, when fewer), not the thread count, so the sums
 * are the same bits for any thread count on any machine: a batch of 64 has
 * eight micro-batches, a slab each, for up to eight threads. Passes that
 * sum nothing across samples (inference, input gradients alone) take a
 * group a thread. */
static int depth_groups(int nmb) { return DEPTH_GROUPS < nmb ? DEPTH_GROUPS : nmb; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

cnnviz_workspace_options cnnviz_workspace_options_init(int max_batch) {
    cnnviz_workspace_options o = {.max_batch = max_batch, .last = -1, .keep = CNNVIZ_KEEP_ALL, .grad_layer = -1};
    return o;
}

/* --- making the plan ----------------------------------------------------- */

/* A max pooling right after a Conv2D with ReLU takes the ReLU's backward
 * over: a maximum of zero passes no gradient down (the ReLU's slope there
 * is zero), and the Conv2D then uses dout as it is. The result is the
 * same bits as running both backwards; it saves a pass over the larger
 * tensor. The pooling's input must be the Conv2D's output, which it is in
 * a sequential model. */
int cnnviz_fused_relu_pool(const cnnviz_model *m, int i) {
    if (i <= 0 || i >= m->nlayers) return 0;
    const cnnviz_layer *pool = m->layers[i], *below = m->layers[i - 1];
    return pool->type == CNNVIZ_LAYER_MAXPOOL2D && below->type == CNNVIZ_LAYER_CONV2D &&
           below->activation == CNNVIZ_ACT_RELU;
}

/* Layer i's hints. Where the caller does not read outputs whole, a Conv2D
 * with ReLU under a max pooling makes only the rows and columns the
 * pooling's windows read: a valid pooling may leave the last ones out (11
 * -> 5 reads 10 of 11: 25 of F(2x2)'s 36 tiles), and the Conv2D's backward
 * does not read its output (the pooling does the ReLU's backward). */
static cnnviz_layer_hints layer_hints(const cnnviz_model *m, int i, int last, cnnviz_keep keep) {
    cnnviz_layer_hints h = {0};
    h.relu_input = cnnviz_fused_relu_pool(m, i);
    h.dout_masked = i < last && cnnviz_fused_relu_pool(m, i + 1);
    if (keep != CNNVIZ_KEEP_ALL && h.dout_masked) {
        const cnnviz_shape *s = &m->layers[i]->out_shape;
        int r, c;
        cnnviz_pool_input_read(m->layers[i + 1], &r, &c);
        if (r < s->dim[0] || c < s->dim[1]) h.rows_read = r, h.cols_read = c;
    }
    return h;
}

static int has_aux(const cnnviz_workspace *ws, int last) {
    for (int i = 0; i <= last; i++)
        if (ws->aux[i]) return 1;
    return 0;
}

/* Whether batches larger than a micro-batch may go depth-first: not where
 * Dropout draws its masks (from one generator, in sample order), nor a
 * backward through layers that keep per-batch state in aux. */
static void plan_depth(cnnviz_workspace *ws) {
    const cnnviz_model *m = ws->model;
    cnnviz_plan *pl = &ws->plan;
    int last = pl->opt.last, backward = pl->opt.input_grad || pl->opt.weight_grads;
    /* one_map's passes are the ascent's few images at a time */
    pl->depth_forward = ws->depth_threads > 0 && !pl->opt.one_map;
    for (int i = 0; i <= last && pl->opt.training; i++)
        if (m->layers[i]->type == CNNVIZ_LAYER_DROPOUT) pl->depth_forward = 0;
    pl->depth_backward = backward && pl->depth_forward && !has_aux(ws, last) &&
                         !(pl->opt.weight_grads && m->num_params && !ws->depth_slabs);
}

/* The first Conv2D and its pooling go as one pass where nothing else needs
 * the conv's output: a depth-first training pass that wants weight
 * gradients only and keeps only the last output. */
static int plan_conv_pool(const cnnviz_workspace *ws) {
    const cnnviz_model *m = ws->model;
    const cnnviz_plan *pl = &ws->plan;
    return pl->depth_forward && pl->depth_backward && pl->opt.training && pl->opt.weight_grads &&
           !pl->opt.input_grad && pl->opt.keep != CNNVIZ_KEEP_ALL && pl->opt.last >= 1 && m->num_params &&
           cnnviz_conv_pool_fusable(m->layers[0], m->layers[1]);
}

static int plan_steps(cnnviz_workspace *ws) {
    const cnnviz_model *m = ws->model;
    cnnviz_plan *pl = &ws->plan;
    int last = pl->opt.last;
    size_t n = last >= 0 ? (size_t)last + 1 : 1;
    pl->steps = calloc(n, sizeof *pl->steps);
    pl->hints = calloc(n, sizeof *pl->hints);
    if (!pl->steps || !pl->hints) return -1;
    for (int i = 0; i <= last; i++) pl->hints[i] = layer_hints(m, i, last, pl->opt.keep);
    /* d/d(output of grad_layer) is the gradient at the ReLU's output,
     * before its backward: the pooling above must not do it */
    if (pl->opt.grad_layer >= 0 && pl->opt.grad_layer < last) pl->hints[pl->opt.grad_layer + 1].relu_input = 0;
    for (int i = 0; i <= last;) {
        cnnviz_step *s = &pl->steps[pl->nsteps++];
        s->first = i;
        s->count = 1;
        s->kind = CNNVIZ_STEP_LAYER;
        if (i == last && pl->opt.one_map)
            s->kind = CNNVIZ_STEP_ONE_MAP;
        else if (i == 0 && plan_conv_pool(ws))
            s->kind = CNNVIZ_STEP_CONV_POOL, s->count = 2;
        else if (i < last && cnnviz_fused_relu_pool(m, i + 1))
            s->kind = CNNVIZ_STEP_CONV_RELU_POOL, s->count = 2;
        i += s->count;
    }
    return 0;
}

/* --- the workspace -------------------------------------------------------- */

/* The one-map head of the last layer and its gathered weights. */
static cnnviz_status plan_one_map(cnnviz_workspace *ws, cnnviz_error *err) {
    const cnnviz_layer *l = ws->model->layers[ws->plan.opt.last];
    ws->head = malloc(sizeof *ws->head);
    if (!ws->head) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    if (cnnviz_one_map_init(ws->head, l))
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "layer '%s' (%s): cannot evaluate its maps one by one",
                                l->name, l->class_name);
    ws->kmap = malloc(ws->head->K * (size_t)ws->head->channels * sizeof *ws->kmap);
    if (!ws->kmap) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
    return CNNVIZ_OK;
}

static cnnviz_status check_options(const cnnviz_model *m, const cnnviz_workspace_options *o, cnnviz_error *err) {
    if (o->max_batch < 1)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "a workspace needs a batch of at least 1, not %d",
                                o->max_batch);
    if (o->last < -1 || o->last >= m->nlayers)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer %d is not in the model (0..%d)", o->last,
                                m->nlayers - 1);
    if (o->grad_layer < -1 || o->grad_layer >= (o->last < 0 ? m->nlayers - 1 : o->last) ||
        (o->grad_layer >= 0 && (!o->input_grad || o->weight_grads)))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                "grad_layer %d: an input gradient alone, from a layer below the last", o->grad_layer);
    if (o->one_map && o->weight_grads)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "a one-map plan has no weight gradients");
    if (o->weight_grads && m->num_params && !m->grads)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                "weight gradients need the model's grads (cnnviz_model_alloc_grads)");
    return CNNVIZ_OK;
}

/* Per-layer outputs, state, prepared weights and the shared buffers. */
static int alloc_layer_buffers(cnnviz_workspace *ws, size_t *biggest) {
    const cnnviz_model *m = ws->model;
    int B = ws->max_batch, training = ws->plan.opt.training;
    size_t scratch = 0;
    *biggest = cnnviz_shape_size(&m->input_shape);
    ws->out = calloc((size_t)m->nlayers, sizeof *ws->out);
    ws->aux = calloc((size_t)m->nlayers, sizeof *ws->aux);
    ws->prep = calloc((size_t)m->nlayers, sizeof *ws->prep);
    if (!ws->out || !ws->aux || !ws->prep) return -1;
    for (int i = 0; i <= ws->plan.opt.last; i++) {
        const cnnviz_layer *l = m->layers[i];
        size_t n = cnnviz_shape_size(&l->out_shape);
        if (n > *biggest) *biggest = n;
        ws->out[i] = malloc((size_t)B * n * sizeof(float));
        size_t a = l->ops->aux_floats ? l->ops->aux_floats(l, B, training) : 0;
        if (a) ws->aux[i] = calloc(a, sizeof(float));
        size_t s = l->ops->scratch_floats ? l->ops->scratch_floats(l, B) : 0;
        if (s > scratch) scratch = s;
        size_t pf = l->ops->prep_floats ? l->ops->prep_floats(l) : 0;
        if (pf) ws->prep[i] = malloc(pf * sizeof(float));
        if (!ws->out[i] || (a && !ws->aux[i]) || (pf && !ws->prep[i])) return -1;
    }
    if (scratch && !(ws->scratch = malloc(scratch * sizeof(float)))) return -1;
    ws->grad_a = malloc((size_t)B * *biggest * sizeof(float));
    ws->grad_b = malloc((size_t)B * *biggest * sizeof(float));
    return ws->grad_a && ws->grad_b ? 0 : -1;
}

/* Depth-first passes' per-thread buffers and per-group weight-gradient slabs. */
static int alloc_depth_buffers(cnnviz_workspace *ws, size_t biggest) {
    const cnnviz_model *m = ws->model;
    if (ws->max_batch <= CNNVIZ_DEPTH_BATCH || m->num_params > DEPTH_MAX_PARAMS) return 0;
    size_t s = 0;
    for (int i = 0; i <= ws->plan.opt.last; i++) {
        const cnnviz_layer *l = m->layers[i];
        size_t n = l->ops->scratch_floats ? l->ops->scratch_floats(l, CNNVIZ_DEPTH_BATCH) : 0;
        if (n > s) s = n;
    }
    int t = cnnviz_procs();
    ws->depth_threads = t < 1 ? 1 : t > 64 ? 64 : t;
    ws->depth_scratch_floats = s ? s : 1;
    ws->depth_scratch = malloc((size_t)ws->depth_threads * ws->depth_scratch_floats * sizeof(float));
    ws->depth_grad_floats = (size_t)CNNVIZ_DEPTH_BATCH * biggest;
    ws->depth_grad = malloc((size_t)ws->depth_threads * 2 * ws->depth_grad_floats * sizeof(float));
    if (!ws->depth_scratch || !ws->depth_grad) return -1;
    if (ws->plan.opt.weight_grads && m->num_params) {
        size_t n = (size_t)depth_groups((ws->max_batch + CNNVIZ_DEPTH_BATCH - 1) / CNNVIZ_DEPTH_BATCH);
        /* zero, and zero again after every sum (backward_depth_first) */
        ws->depth_slabs = calloc(n * m->num_params, sizeof(float));
        if (!ws->depth_slabs) return -1;
    }
    return 0;
}

cnnviz_workspace *cnnviz_workspace_new(const cnnviz_model *m, const cnnviz_workspace_options *o,
                                       cnnviz_error *err) {
    if (check_options(m, o, err)) return NULL;
    cnnviz_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) goto nomem;
    ws->model = m;
    ws->max_batch = o->max_batch;
    ws->plan.opt = *o;
    if (o->last < 0) ws->plan.opt.last = m->nlayers - 1;
    size_t biggest;
    if (alloc_layer_buffers(ws, &biggest) || alloc_depth_buffers(ws, biggest)) goto nomem;
    plan_depth(ws);
    if (plan_steps(ws)) goto nomem;
    if (ws->plan.opt.one_map && plan_one_map(ws, err)) {
        cnnviz_workspace_free(ws);
        return NULL;
    }
    if (ws->plan.steps[0].kind == CNNVIZ_STEP_CONV_POOL) {
        ws->codes_size = cnnviz_shape_size(&m->layers[1]->out_shape);
        ws->codes = malloc((size_t)ws->max_batch * ws->codes_size * sizeof *ws->codes);
        if (!ws->codes) goto nomem;
    }
    return ws;
nomem:
    cnnviz_workspace_free(ws);
    cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for a batch of %d", o->max_batch);
    return NULL;
}

void cnnviz_workspace_free(cnnviz_workspace *ws) {
    if (!ws) return;
    for (int i = 0; ws->out && i < ws->model->nlayers; i++) free(ws->out[i]);
    for (int i = 0; ws->aux && i < ws->model->nlayers; i++) free(ws->aux[i]);
    for (int i = 0; ws->prep && i < ws->model->nlayers; i++) free(ws->prep[i]);
    free(ws->out);
    free(ws->aux);
    free(ws->prep);
    free(ws->scratch);
    free(ws->grad_a);
    free(ws->grad_b);
    free(ws->depth_scratch);
    free(ws->depth_grad);
    free(ws->depth_slabs);
    free(ws->codes);
    free(ws->plan.steps);
    free(ws->plan.hints);
    free(ws->thread_seconds);
    free(ws->head);
    free(ws->kmap);
    free(ws);
}

int cnnviz_workspace_max_batch(const cnnviz_workspace *ws) { return ws->max_batch; }
int cnnviz_workspace_last(const cnnviz_workspace *ws) { return ws->plan.opt.last; }
void cnnviz_workspace_set_rng(cnnviz_workspace *ws, cnnviz_rng *rng) { ws->rng = rng; }
int cnnviz_workspace_num_steps(const cnnviz_workspace *ws) { return ws->plan.nsteps; }
const cnnviz_step *cnnviz_workspace_step(const cnnviz_workspace *ws, int s) { return &ws->plan.steps[s]; }

void cnnviz_workspace_time_steps(cnnviz_workspace *ws, double *seconds) {
    ws->step_seconds = seconds;
    if (seconds && !ws->thread_seconds)
        ws->thread_seconds = calloc((size_t)(ws->depth_threads > 1 ? ws->depth_threads : 1) * 2 * ws->plan.nsteps,
                                    sizeof *ws->thread_seconds);
}

const float *cnnviz_layer_output(const cnnviz_workspace *ws, int i, cnnviz_error *err) {
    const cnnviz_plan *pl = &ws->plan;
    if (i < 0 || i > pl->opt.last) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer %d is not run by this workspace (layers 0..%d)", i,
                         pl->opt.last);
        return NULL;
    }
    if (!ws->pass_batch) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "no forward pass has run yet");
        return NULL;
    }
    if (pl->opt.keep != CNNVIZ_KEEP_ALL && i != pl->opt.last) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                         "the output of layer '%s' is not kept: this workspace keeps only the last layer's",
                         ws->model->layers[i]->name);
        return NULL;
    }
    return ws->out[i];
}

/* --- forward -------------------------------------------------------------- */

/* What layer i's forward is told. */
static cnnviz_pass forward_pass(const cnnviz_workspace *ws, int i, float *aux, float *scratch) {
    const cnnviz_layer_hints *h = &ws->plan.hints[i];
    cnnviz_pass p = {.aux = aux, .scratch = scratch, .prep = ws->prep[i], .training = ws->plan.opt.training,
                     .rng = ws->rng, .rows_read = h->rows_read, .cols_read = h->cols_read};
    return p;
}

/* Whole batches, step by step. */
static void forward_whole(cnnviz_workspace *ws, const float *input, int B) {
    const cnnviz_model *m = ws->model;
    const float *in = input;
    for (int s = 0; s < ws->plan.nsteps; s++) {
        const cnnviz_step *st = &ws->plan.steps[s];
        double t0 = ws->step_seconds ? now() : 0;
        if (st->kind == CNNVIZ_STEP_ONE_MAP)
            cnnviz_one_map_forward(ws->head, ws->kmap, in, ws->maps, B, ws->out[st->first]);
        else
            for (int i = st->first; i < st->first + st->count; i++) {
                const cnnviz_layer *l = m->layers[i];
                cnnviz_pass p = forward_pass(ws, i, ws->aux[i], ws->scratch);
                l->ops->forward(l, in, ws->out[i], B, &p);
                in = ws->out[i];
            }
        if (ws->step_seconds) ws->step_seconds[2 * s] += now() - t0;
    }
}

/* Threads for a depth-first pass over nmb micro-batches: no more than the
 * workspace has buffers for, nor than there are micro-batches. */
static int depth_thread_count(const cnnviz_workspace *ws, int nmb) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (threads > ws->depth_threads) threads = ws->depth_threads;
    return threads < nmb ? threads : nmb;
}

static int thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The calling thread's scratch and its two ping-pong activation/gradient buffers. */
static void depth_thread_buffers(cnnviz_workspace *ws, float **scratch, float **a, float **b) {
    int t = thread_index();
    *scratch = ws->depth_scratch + (size_t)t * ws->depth_scratch_floats;
    *a = ws->depth_grad + (size_t)t * 2 * ws->depth_grad_floats;
    *b = *a + ws->depth_grad_floats;
}

/* The threads' time on each step of a depth-first pass, over the thread
 * count, into the caller's timers (and the threads' cleared). */
static void add_thread_seconds(cnnviz_workspace *ws, int threads, int backward) {
    int n = ws->plan.nsteps;
    for (int s = 0; s < n; s++) {
        double sum = 0;
        for (int t = 0; t < threads; t++) {
            double *v = &ws->thread_seconds[(size_t)t * 2 * n + 2 * s + backward];
            sum += *v;
            *v = 0;
        }
        ws->step_seconds[2 * s + backward] += sum / threads;
    }
}

/* Whether layer i's output goes to ws->out: all where the caller reads
 * them or a backward will, else only the last (predict: the others stay
 * in the thread's two buffers and never leave its cache). */
static int stores_output(const cnnviz_plan *pl, int i) {
    return pl->opt.keep == CNNVIZ_KEEP_ALL || i == pl->opt.last || pl->opt.input_grad || pl->opt.weight_grads;
}

/* One micro-batch of nb samples from b0 through every step. */
static void forward_micro_batch(cnnviz_workspace *ws, const float *input, int j, int nb, double *clock) {
    const cnnviz_model *m = ws->model;
    const cnnviz_plan *pl = &ws->plan;
    int b0 = j * CNNVIZ_DEPTH_BATCH;
    float *scratch, *ping, *pong;
    depth_thread_buffers(ws, &scratch, &ping, &pong);
    const float *in = input + (size_t)b0 * cnnviz_shape_size(&m->input_shape);
    for (int s = 0; s < pl->nsteps; s++) {
        const cnnviz_step *st = &pl->steps[s];
        double t0 = clock ? now() : 0;
        if (st->kind == CNNVIZ_STEP_CONV_POOL) {
            float *pooled = ws->out[1] + (size_t)b0 * ws->codes_size;
            cnnviz_conv_pool_forward(m->layers[0], in, pooled, ws->codes + (size_t)b0 * ws->codes_size, nb);
            in = pooled;
        } else {
            for (int i = st->first; i < st->first + st->count; i++) {
                const cnnviz_layer *l = m->layers[i];
                float *out = stores_output(pl, i) ? ws->out[i] + (size_t)b0 * cnnviz_shape_size(&l->out_shape)
                                                  : in == ping ? pong : ping;
                /* what a layer records about the pass in aux (Dropout: "no
                 * mask") is written once, by the first micro-batch */
                cnnviz_pass p = forward_pass(ws, i, j == 0 ? ws->aux[i] : NULL, scratch);
                l->ops->forward(l, in, out, nb, &p);
                in = out;
            }
        }
        if (clock) clock[2 * s] += now() - t0;
    }
}

/* Depth-first forward: each thread takes micro-batches of
 * CNNVIZ_DEPTH_BATCH samples through every step with a scratch of its own,
 * so a micro-batch's activations stay in that core's cache instead of the
 * whole batch streaming through memory layer after layer, and threads do
 * not wait for each other between layers. Every layer treats samples
 * independently in such a pass, and the micro-batches are a fixed split of
 * the batch, so the results do not depend on the thread count. Layers
 * still see whole micro-batches (a conv's sgemm wants rows), and small
 * models only: each micro-batch reads all the weights. */
static void forward_depth_first(cnnviz_workspace *ws, const float *input, int B) {
    int nmb = (B + CNNVIZ_DEPTH_BATCH - 1) / CNNVIZ_DEPTH_BATCH, threads = depth_thread_count(ws, nmb);
    /* a pass with weight gradients has its backward's groups; otherwise a group a thread */
    int groups = ws->depth_slabs ? depth_groups(nmb) : threads;
    #pragma omp parallel num_threads(threads)
    {
        cnnviz_omp_serial_inside();
        double *clock = ws->step_seconds ? ws->thread_seconds + (size_t)thread_index() * 2 * ws->plan.nsteps : NULL;
        #pragma omp for schedule(static)
        for (int gr = 0; gr < groups; gr++)
            for (int j = gr; j < nmb; j += groups) {
                int b0 = j * CNNVIZ_DEPTH_BATCH;
                forward_micro_batch(ws, input, j, B - b0 < CNNVIZ_DEPTH_BATCH ? B - b0 : CNNVIZ_DEPTH_BATCH, clock);
            }
    }
    if (ws->step_seconds) add_thread_seconds(ws, threads, 0);
}

/* What layers derive from their weights (Winograd's transformed kernels,
 * one map's gathered weights): before every forward, or the first only
 * when the weights are fixed. */
static void prepare_weights(cnnviz_workspace *ws) {
    const cnnviz_model *m = ws->model;
    const cnnviz_plan *pl = &ws->plan;
    if (pl->opt.fixed_weights && ws->prepared) return;
    for (int i = 0; i <= pl->opt.last; i++)
        if (ws->prep[i] && !(pl->opt.one_map && i == pl->opt.last))
            m->layers[i]->ops->prepare(m->layers[i], ws->prep[i], pl->opt.training);
    if (pl->opt.one_map) cnnviz_one_map_gather(ws->head, ws->kmap);
    ws->prepared = 1;
}

static const float *forward(cnnviz_workspace *ws, const float *input, const int *maps, int B, cnnviz_error *err) {
    const cnnviz_plan *pl = &ws->plan;
    if (B < 1 || B > ws->max_batch) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "a batch of %d in a workspace for 1 to %d", B,
                         ws->max_batch);
        return NULL;
    }
    if (!maps != !pl->opt.one_map) {
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "%s", maps ? "the plan does not take maps (one_map)"
                                                                : "a one-map plan's forward takes the maps");
        return NULL;
    }
    ws->input = input;
    ws->maps = maps;
    ws->pass_batch = B;
    prepare_weights(ws);
    if (pl->depth_forward && B > CNNVIZ_DEPTH_BATCH)
        forward_depth_first(ws, input, B);
    else
        forward_whole(ws, input, B);
    return ws->out[pl->opt.last];
}

const float *cnnviz_forward(cnnviz_workspace *ws, const float *input, int B, cnnviz_error *err) {
    return forward(ws, input, NULL, B, err);
}

const float *cnnviz_forward_maps(cnnviz_workspace *ws, const float *input, const int *maps, int B,
                                 cnnviz_error *err) {
    return forward(ws, input, maps, B, err);
}

/* --- backward ------------------------------------------------------------- */

/* What layer i's backward is told, in a backward that starts at layer from. */
static cnnviz_pass backward_pass(const cnnviz_workspace *ws, int i, int from, float *scratch, float *slab) {
    const cnnviz_layer_hints *h = &ws->plan.hints[i];
    cnnviz_pass p = {.aux = ws->aux[i], .scratch = scratch, .prep = ws->prep[i], .training = ws->plan.opt.training,
                     .weight_grads = ws->plan.opt.weight_grads, .rng = ws->rng, .grads = slab,
                     .relu_input = h->relu_input, .dout_masked = i < from && h->dout_masked};
    return p;
}

/* The step whose last layer is `from`, or -1. */
static int step_ending_at(const cnnviz_plan *pl, int from) {
    for (int s = 0; s < pl->nsteps; s++)
        if (pl->steps[s].first + pl->steps[s].count - 1 == from) return s;
    return -1;
}

/* Whether the backward stops before layer 0: nothing wants its input gradient or its weights'. */
static int skips_first_layer(const cnnviz_workspace *ws, const float *dinput) {
    return !dinput && !(ws->plan.opt.weight_grads && ws->model->layers[0]->nparam);
}

static void backward_whole(cnnviz_workspace *ws, int from_step, int from, const float *dout, float *dinput) {
    const cnnviz_model *m = ws->model;
    int B = ws->pass_batch, bottom = ws->plan.opt.grad_layer + 1;
    const float *d = dout;
    for (int s = from_step; s >= 0 && ws->plan.steps[s].first + ws->plan.steps[s].count > bottom; s--) {
        const cnnviz_step *st = &ws->plan.steps[s];
        double t0 = ws->step_seconds ? now() : 0;
        for (int i = st->first + st->count - 1; i >= st->first; i--) {
            if (i < bottom || (i == 0 && skips_first_layer(ws, dinput))) break;
            const cnnviz_layer *l = m->layers[i];
            /* layers with weights accept din == NULL and skip that work */
            float *din = i > bottom ? (d == ws->grad_a ? ws->grad_b : ws->grad_a) : dinput;
            cnnviz_pass p = backward_pass(ws, i, from, ws->scratch, NULL);
            if (st->kind == CNNVIZ_STEP_ONE_MAP)
                cnnviz_one_map_backward(ws->head, ws->kmap, d, ws->maps, B, din);
            else
                l->ops->backward(l, i ? ws->out[i - 1] : ws->input, ws->out[i], d, din, B, &p);
            d = din;
        }
        if (ws->step_seconds) ws->step_seconds[2 * s + 1] += now() - t0;
    }
}

/* One micro-batch j of nb samples back from step from_step to layer 0. */
static void backward_micro_batch(cnnviz_workspace *ws, int from_step, int from, const float *dout, float *dinput,
                                 int j, int nb, float *slab, double *clock) {
    const cnnviz_model *m = ws->model;
    int b0 = j * CNNVIZ_DEPTH_BATCH, bottom = ws->plan.opt.grad_layer + 1;
    size_t in_size = cnnviz_shape_size(&m->input_shape);
    size_t din_size = bottom ? cnnviz_shape_size(&m->layers[bottom - 1]->out_shape) : in_size;
    float *scratch, *ga, *gb;
    depth_thread_buffers(ws, &scratch, &ga, &gb);
    const float *d = dout + (size_t)b0 * cnnviz_shape_size(&m->layers[from]->out_shape);
    for (int s = from_step; s >= 0 && ws->plan.steps[s].first + ws->plan.steps[s].count > bottom; s--) {
        const cnnviz_step *st = &ws->plan.steps[s];
        double t0 = clock ? now() : 0;
        if (st->kind == CNNVIZ_STEP_CONV_POOL) {
            const cnnviz_layer *conv = m->layers[0];
            cnnviz_pass p = {.grads = slab};
            cnnviz_conv_pool_backward(conv, ws->input + (size_t)b0 * in_size, ws->out[1] + (size_t)b0 * ws->codes_size,
                                      ws->codes + (size_t)b0 * ws->codes_size, d, nb,
                                      cnnviz_param_grad(&conv->param[0], &p),
                                      conv->nparam > 1 ? cnnviz_param_grad(&conv->param[1], &p) : NULL);
        } else {
            for (int i = st->first + st->count - 1; i >= st->first; i--) {
                if (i < bottom || (i == 0 && skips_first_layer(ws, dinput))) break;
                const cnnviz_layer *l = m->layers[i];
                float *din = i > bottom ? (d == ga ? gb : ga) : dinput ? dinput + (size_t)b0 * din_size : NULL;
                const float *in = i ? ws->out[i - 1] + (size_t)b0 * cnnviz_shape_size(&m->layers[i - 1]->out_shape)
                                    : ws->input + (size_t)b0 * in_size;
                const float *out = ws->out[i] + (size_t)b0 * cnnviz_shape_size(&l->out_shape);
                cnnviz_pass p = backward_pass(ws, i, from, scratch, slab);
                p.aux = NULL; /* a plan with per-batch state does not go depth-first */
                l->ops->backward(l, in, out, d, din, nb, &p);
                d = din;
            }
        }
        if (clock) clock[2 * s + 1] += now() - t0;
    }
}

/* g[k] += slab_0[k] + slab_1[k] + ... in this order for every k, a block of
 * k at a time so the adds vectorise; each slab is left zero for the next
 * pass while its lines are in cache, which costs less than clearing it
 * before. */
static void add_slabs(float *g, float *slabs, size_t np, int groups, int threads) {
    size_t nblocks = (np + 1023) / 1024;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t bk = 0; bk < nblocks; bk++) {
        size_t k0 = bk * 1024, n = np - k0 < 1024 ? np - k0 : 1024;
        float sum[1024];
        memcpy(sum, slabs + k0, n * sizeof *sum);
        memset(slabs + k0, 0, n * sizeof *slabs);
        for (int j = 1; j < groups; j++) {
            float *sl = slabs + (size_t)j * np + k0;
            #pragma omp simd
            for (size_t k = 0; k < n; k++) sum[k] += sl[k];
            memset(sl, 0, n * sizeof *sl);
        }
        #pragma omp simd
        for (size_t k = 0; k < n; k++) g[k0 + k] += sum[k];
    }
}

/* Depth-first backward, the mirror of forward_depth_first: a micro-batch
 * goes back through every step with its gradients in per-thread buffers,
 * and its weight gradients into its group's slab (depth_groups); the slabs
 * are then added in group order. */
static void backward_depth_first(cnnviz_workspace *ws, int from_step, int from, const float *dout, float *dinput) {
    const cnnviz_model *m = ws->model;
    int B = ws->pass_batch;
    int nmb = (B + CNNVIZ_DEPTH_BATCH - 1) / CNNVIZ_DEPTH_BATCH, threads = depth_thread_count(ws, nmb);
    size_t np = m->num_params;
    float *slabs = ws->plan.opt.weight_grads && np ? ws->depth_slabs : NULL;
    /* without weight gradients nothing is summed across samples */
    int groups = slabs ? depth_groups(nmb) : threads;
    #pragma omp parallel num_threads(threads)
    {
        cnnviz_omp_serial_inside();
        double *clock = ws->step_seconds ? ws->thread_seconds + (size_t)thread_index() * 2 * ws->plan.nsteps : NULL;
        #pragma omp for schedule(static)
        for (int gr = 0; gr < groups; gr++)
            for (int j = gr; j < nmb; j += groups) {
                int b0 = j * CNNVIZ_DEPTH_BATCH, nb = B - b0 < CNNVIZ_DEPTH_BATCH ? B - b0 : CNNVIZ_DEPTH_BATCH;
                backward_micro_batch(ws, from_step, from, dout, dinput, j, nb, slabs ? slabs + (size_t)gr * np : NULL,
                                     clock);
            }
    }
    if (ws->step_seconds) add_thread_seconds(ws, threads, 1);
    if (slabs) add_slabs(m->grads, slabs, np, groups, threads);
}

cnnviz_status cnnviz_backward_from(cnnviz_workspace *ws, int from, const float *dout, float *dinput,
                                   cnnviz_error *err) {
    const cnnviz_plan *pl = &ws->plan;
    if (!pl->opt.input_grad && !pl->opt.weight_grads)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "this workspace's plan has no backward");
    if (!ws->pass_batch) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "backward before any forward");
    if (!dinput != !pl->opt.input_grad)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the plan %s an input gradient",
                                pl->opt.input_grad ? "gives" : "does not give");
    int s = from >= 0 && from <= pl->opt.last ? step_ending_at(pl, from) : -1;
    if (s < 0 || (from < pl->opt.last && pl->hints[from].rows_read))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the plan cannot start a backward at layer %d", from);
    if (pl->depth_backward && ws->pass_batch > CNNVIZ_DEPTH_BATCH)
        backward_depth_first(ws, s, from, dout, dinput);
    else
        backward_whole(ws, s, from, dout, dinput);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_backward(cnnviz_workspace *ws, const float *dout, float *dinput, cnnviz_error *err) {
    return cnnviz_backward_from(ws, ws->plan.opt.last, dout, dinput, err);
}

cnnviz_status cnnviz_model_predict(const cnnviz_model *m, const float *x, int n, int batch, float *out,
                                   cnnviz_error *err) {
    if (batch <= 0) batch = 256;
    if (batch > n) batch = n > 0 ? n : 1;
    cnnviz_workspace_options o = cnnviz_workspace_options_init(batch);
    o.keep = CNNVIZ_KEEP_LAST;
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &o, err);
    if (!ws) return err ? err->code : CNNVIZ_ERR_NOMEM;
    size_t in_size = cnnviz_shape_size(&m->input_shape);
    cnnviz_shape os = cnnviz_model_output_shape(m);
    size_t out_size = cnnviz_shape_size(&os);
    for (int i = 0; i < n; i += batch) {
        int b = n - i < batch ? n - i : batch;
        const float *y = cnnviz_forward(ws, x + (size_t)i * in_size, b, err);
        memcpy(out + (size_t)i * out_size, y, (size_t)b * out_size * sizeof(float));
    }
    cnnviz_workspace_free(ws);
    return CNNVIZ_OK;
}

int cnnviz_model_ends_in_softmax(const cnnviz_model *m) {
    const cnnviz_layer *l = m->layers[m->nlayers - 1];
    return (l->type == CNNVIZ_LAYER_DENSE || l->type == CNNVIZ_LAYER_ACTIVATION || l->type == CNNVIZ_LAYER_CONV2D) &&
           l->activation == CNNVIZ_ACT_SOFTMAX;
}

void cnnviz_softmax(const float *logits, float *probs, int n) {
    float mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (probs[i] = expf(logits[i] - mx));
    for (int i = 0; i < n; i++) probs[i] = (float)(probs[i] / sum);
}

cnnviz_status cnnviz_model_probabilities(const cnnviz_model *m, const float *x, int n, float *probs,
                                         cnnviz_error *err) {
    cnnviz_status st = cnnviz_model_predict(m, x, n, 256, probs, err);
    if (st != CNNVIZ_OK || cnnviz_model_ends_in_softmax(m)) return st;
    cnnviz_shape os = cnnviz_model_output_shape(m);
    int k = (int)cnnviz_shape_size(&os);
    for (int i = 0; i < n; i++) cnnviz_softmax(probs + (size_t)i * k, probs + (size_t)i * k, k);
    return CNNVIZ_OK;
}
