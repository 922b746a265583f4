/* The ascent loop: starts, normalised gradient steps, regularisers,
 * restarts, and keeping the best iterate of each map. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cnnviz/io.h"
#include "model-impl.h"
#include "oip-impl.h"

void cnnviz_oip_options_init(cnnviz_oip_options *o) {
    memset(o, 0, sizeof *o);
    o->neuron_y = o->neuron_x = -1;
    /* On the seed net's second conv layer a step of 0.2 decaying linearly
     * reaches after 200 steps 99% of the mean activation 800 steps reach
     * (bench_oip_quality --converge prints the curve); smaller steps reach
     * less in the same steps, larger ones gain little. */
    o->steps = 200;
    o->step = 0.2f;
    o->norm = CNNVIZ_OIP_NORM_RMS;
    o->init = CNNVIZ_OIP_INIT_UNIFORM;
    o->leak = 0.3f;
    o->blur_sigma = 0.5f;
    o->restarts = 1;
}

void cnnviz_oip_input_range(const cnnviz_model *m, float *lo, float *hi) {
    static const uint8_t ends[2] = {0, 255};
    float v[2];
    cnnviz_scale_pixels(ends, v, 2, cnnviz_model_input_scale(m));
    *lo = v[0] < v[1] ? v[0] : v[1];
    *hi = v[0] < v[1] ? v[1] : v[0];
}

cnnviz_status cnnviz_oip_check(const cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n,
                               int *nmaps, cnnviz_error *err) {
    if (o->layer < 0 || o->layer >= m->nlayers)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "layer %d is out of range (the model has %d layers)",
                                o->layer, m->nlayers);
    const cnnviz_layer *l = m->layers[o->layer];
    const cnnviz_shape *out = &l->out_shape;
    char shape[64];
    cnnviz_shape_format(out, shape, sizeof shape);
    if (l->type == CNNVIZ_LAYER_FLATTEN)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                "layer '%s' (%s) has no maps of its own: choose a Conv2D, pooling or Dense layer",
                                l->name, l->class_name);
    int count = out->dim[out->rank - 1];
    if (nmaps) *nmaps = count;
    if (o->neuron_y >= 0 || o->neuron_x >= 0) {
        if (out->rank != 3)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                    "layer '%s' (%s) has no (y, x) positions for a neuron: its output is %s",
                                    l->name, l->class_name, shape);
        if (o->neuron_y < 0 || o->neuron_x < 0 || o->neuron_y >= out->dim[0] || o->neuron_x >= out->dim[1])
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "neuron (%d, %d) is outside layer '%s' output %s",
                                    o->neuron_y, o->neuron_x, l->name, shape);
    }
    for (int i = 0; maps && i < n; i++)
        if (maps[i] < 0 || maps[i] >= count)
            return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "map %d is out of range: layer '%s' has maps 0 to %d",
                                    maps[i], l->name, count - 1);
    if (o->steps < 1) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "steps must be at least 1, not %d", o->steps);
    if (!(o->step > 0.0f) || !isfinite(o->step))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the step size must be a positive number");
    if (o->restarts < 1)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "restarts must be at least 1, not %d", o->restarts);
    if (o->batch < 0 || o->blur_every < 0 || o->jitter < 0 || o->snapshot_every < 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "batch, blur interval, jitter and snapshot interval cannot be negative");
    if (!(o->leak >= 0.0f) || !(o->l2_decay >= 0.0f && o->l2_decay < 1.0f) || !(o->tv >= 0.0f) ||
        !(o->blur_sigma >= 0.0f))
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "",
                                "leak, tv and blur sigma must be >= 0 and the L2 decay in [0, 1)");
    if (o->init == CNNVIZ_OIP_INIT_IMAGE && !o->init_image)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "the image to start from is missing");
    return CNNVIZ_OK;
}

void cnnviz_oip_result_free(cnnviz_oip_result *r) {
    if (!r) return;
    free(r->map);
    free(r->image);
    free(r->start);
    free(r->activation);
    free(r->start_activation);
    free(r->restart);
    free(r->dead);
    free(r->snap_step);
    free(r->snapshots);
    memset(r, 0, sizeof *r);
}

/* Everything one chunk of images needs while it climbs. */
typedef struct {
    const cnnviz_oip_options *o;
    cnnviz_oip_objective *ob;
    int h, w, c;
    size_t S; /* floats per image */
    float lo, hi;
    int nsnap;
    float *x, *best, *start, *grad, *snaps; /* (batch, S) each; snaps (batch, nsnap, S) */
    float *work; /* (batch, max(S, (h+1)*(w+1))) */
    float *value, *surrogate, *best_value;
    int *alive, *shift; /* shift: (batch, 2) jitter of the current step */
    cnnviz_rng *rng;
} chunk_state;

static size_t work_stride(const chunk_state *s) {
    size_t grid = (size_t)(s->h + 1) * (s->w + 1);
    return s->S > grid ? s->S : grid;
}

/* The view of images [first, first+n) of a chunk's state, for one group. */
static chunk_state group_view(const chunk_state *s, int first, cnnviz_oip_objective *ob) {
    chunk_state g = *s;
    size_t f = (size_t)first, S = s->S;
    g.ob = ob;
    g.x += f * S, g.best += f * S, g.start += f * S, g.grad += f * S;
    g.work += f * work_stride(s);
    if (g.snaps) g.snaps += f * s->nsnap * S;
    g.value += f, g.surrogate += f, g.best_value += f, g.alive += f, g.shift += 2 * f, g.rng += f;
    return g;
}

static int threads_for(int jobs) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1; /* a group's own loops run in its thread */
#endif
    int t = cnnviz_get_threads();
    return t < 1 ? 1 : t < jobs ? t : jobs > 0 ? jobs : 1;
}

static void start_images(chunk_state *s, const int *maps, int nb, int restart) {
    const cnnviz_oip_options *o = s->o;
    for (int i = 0; i < nb; i++) {
        float *x = s->x + (size_t)i * s->S;
        /* one generator per (restart, map): a map's run does not depend on its batch */
        cnnviz_rng_seed(&s->rng[i], o->seed, ((uint64_t)restart << 32) | (uint32_t)maps[i]);
        switch (o->init) {
        case CNNVIZ_OIP_INIT_MULTISCALE:
            oip_init_multiscale(x, s->h, s->w, s->c, s->lo, s->hi, &s->rng[i], s->work + (size_t)i * work_stride(s));
            break;
        case CNNVIZ_OIP_INIT_IMAGE:
            memcpy(x, o->init_image, s->S * sizeof *x);
            for (size_t k = 0; restart > 0 && k < s->S; k++)
                x[k] += (s->hi - s->lo) * 0.1f * (2.0f * cnnviz_rng_uniform(&s->rng[i]) - 1.0f);
            oip_clip(x, s->S, s->lo, s->hi);
            break;
        case CNNVIZ_OIP_INIT_UNIFORM:
        default: oip_init_uniform(x, s->h, s->w, s->c, s->lo, s->hi, &s->rng[i]); break;
        }
    }
    memcpy(s->start, s->x, (size_t)nb * s->S * sizeof *s->x);
}

/* One step's update of image i from its gradient (already in image i's frame). */
static void update_image(chunk_state *s, int i, int t) {
    const cnnviz_oip_options *o = s->o;
    float *x = s->x + (size_t)i * s->S, *g = s->grad + (size_t)i * s->S, *tmp = s->work + (size_t)i * work_stride(s);
    if (o->jitter) {
        oip_roll(tmp, g, s->h, s->w, s->c, -s->shift[2 * i], -s->shift[2 * i + 1]);
        memcpy(g, tmp, s->S * sizeof *g);
    }
    float range = s->hi - s->lo;
    float size = o->step * range * (o->constant_step ? 1.0f : 1.0f - (float)t / (float)o->steps);
    if (oip_normalise(g, s->S, o->norm)) {
        if (o->tv > 0.0f) oip_tv_descent(g, x, s->h, s->w, s->c, o->tv);
        for (size_t k = 0; k < s->S; k++) x[k] += size * g[k];
    }
    if (o->l2_decay > 0.0f)
        for (size_t k = 0; k < s->S; k++) x[k] = s->lo + (1.0f - o->l2_decay) * (x[k] - s->lo);
    if (o->blur_every && (t + 1) % o->blur_every == 0) oip_blur(x, s->h, s->w, s->c, o->blur_sigma, tmp);
    oip_clip(x, s->S, s->lo, s->hi);
}

/* Climb nb images (s->x holds the starts) for o->steps steps; s->best gets
 * the best iterate of each. *done counts steps for the progress callback. */
static void ascend(chunk_state *s, const int *maps, int nb, long *done, long total) {
    const cnnviz_oip_options *o = s->o;
    for (int i = 0; i < nb; i++) s->best_value[i] = -INFINITY, s->alive[i] = 0;
    memcpy(s->best, s->x, (size_t)nb * s->S * sizeof *s->x);
    for (int t = 0; t <= o->steps; t++) {
        const float *xe = s->x;
        if (o->jitter) {
            for (int i = 0; i < nb; i++) {
                int span = 2 * o->jitter + 1;
                s->shift[2 * i] = (int)cnnviz_rng_below(&s->rng[i], (uint32_t)span) - o->jitter;
                s->shift[2 * i + 1] = (int)cnnviz_rng_below(&s->rng[i], (uint32_t)span) - o->jitter;
                oip_roll(s->work + (size_t)i * s->S, s->x + (size_t)i * s->S, s->h, s->w, s->c, s->shift[2 * i],
                         s->shift[2 * i + 1]);
            }
            /* packed at stride S: work is free until the update uses it as scratch */
            xe = s->work;
        }
        cnnviz_oip_objective_eval(s->ob, xe, maps, nb, s->value, s->surrogate, t < o->steps ? s->grad : NULL);
        for (int i = 0; i < nb; i++) {
            if (s->value[i] != 0.0f) s->alive[i] = 1;
            if (s->value[i] > s->best_value[i]) {
                s->best_value[i] = s->value[i];
                memcpy(s->best + (size_t)i * s->S, s->x + (size_t)i * s->S, s->S * sizeof *s->x);
            }
            if (s->nsnap && t % o->snapshot_every == 0)
                memcpy(s->snaps + ((size_t)i * s->nsnap + t / o->snapshot_every) * s->S, s->x + (size_t)i * s->S,
                       s->S * sizeof *s->x);
        }
        if (t == o->steps) break;
        #pragma omp parallel for schedule(static) num_threads(threads_for(nb))
        for (int i = 0; i < nb; i++) update_image(s, i, t);
        if (done) { /* only the first group reports: the groups move in step */
            ++*done;
            if (o->progress) o->progress(o->progress_ctx, *done, total);
        }
    }
}

static cnnviz_status alloc_result(cnnviz_oip_result *r, const int *maps, int n, int nsnap, int every) {
    size_t S = r->image_size;
    r->n = n;
    r->map = malloc((size_t)n * sizeof *r->map);
    r->image = malloc((size_t)n * S * sizeof *r->image);
    r->start = malloc((size_t)n * S * sizeof *r->start);
    r->activation = malloc((size_t)n * sizeof *r->activation);
    r->start_activation = malloc((size_t)n * sizeof *r->start_activation);
    r->restart = calloc((size_t)n, sizeof *r->restart);
    r->dead = calloc((size_t)n, sizeof *r->dead);
    if (!r->map || !r->image || !r->start || !r->activation || !r->start_activation || !r->restart || !r->dead)
        return CNNVIZ_ERR_NOMEM;
    memcpy(r->map, maps, (size_t)n * sizeof *maps);
    if (nsnap) {
        r->nsnap = nsnap;
        r->snap_step = malloc((size_t)nsnap * sizeof *r->snap_step);
        r->snapshots = malloc((size_t)n * nsnap * S * sizeof *r->snapshots);
        if (!r->snap_step || !r->snapshots) return CNNVIZ_ERR_NOMEM;
        for (int k = 0; k < nsnap; k++) r->snap_step[k] = k * every;
    }
    return CNNVIZ_OK;
}

static void free_state(chunk_state *s) {
    free(s->x);
    free(s->best);
    free(s->start);
    free(s->grad);
    free(s->work);
    free(s->snaps);
    free(s->value);
    free(s->surrogate);
    free(s->best_value);
    free(s->alive);
    free(s->shift);
    free(s->rng);
}

static int alloc_state(chunk_state *s, int batch) {
    size_t S = s->S, B = (size_t)batch;
    s->x = malloc(B * S * sizeof(float));
    s->best = malloc(B * S * sizeof(float));
    s->start = malloc(B * S * sizeof(float));
    s->grad = malloc(B * S * sizeof(float));
    /* multiscale noise needs (h+1)*(w+1) floats per image */
    s->work = malloc(B * work_stride(s) * sizeof(float));
    s->snaps = s->nsnap ? malloc(B * s->nsnap * S * sizeof(float)) : NULL;
    s->value = malloc(B * sizeof(float));
    s->surrogate = malloc(B * sizeof(float));
    s->best_value = malloc(B * sizeof(float));
    s->alive = malloc(B * sizeof(int));
    s->shift = malloc(2 * B * sizeof(int));
    s->rng = malloc(B * sizeof(cnnviz_rng));
    return s->x && s->best && s->start && s->grad && s->work && (s->snaps || !s->nsnap) && s->value &&
           s->surrogate && s->best_value && s->alive && s->shift && s->rng;
}

/* Keep chunk image i for result entry j when it beats what j has. */
static void merge(cnnviz_oip_result *r, const chunk_state *s, int i, int j, int restart, float act, float start_act,
                  int *alive) {
    alive[j] |= s->alive[i] || act != 0.0f;
    if (restart > 0 && !(act > r->activation[j])) return;
    size_t S = s->S;
    memcpy(r->image + (size_t)j * S, s->best + (size_t)i * S, S * sizeof(float));
    memcpy(r->start + (size_t)j * S, s->start + (size_t)i * S, S * sizeof(float));
    r->activation[j] = act;
    r->start_activation[j] = start_act;
    r->restart[j] = restart;
    if (s->nsnap)
        memcpy(r->snapshots + (size_t)j * s->nsnap * S, s->snaps + (size_t)i * s->nsnap * S,
               s->nsnap * S * sizeof(float));
}

cnnviz_status cnnviz_oip_run(const cnnviz_model *m, const cnnviz_oip_options *o, const int *maps, int n,
                             cnnviz_oip_result *r, cnnviz_error *err) {
    memset(r, 0, sizeof *r);
    int nmaps;
    cnnviz_status st = cnnviz_oip_check(m, o, maps, n, &nmaps, err);
    if (st != CNNVIZ_OK) return st;
    if (n < 1) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, "", "no maps to run");
    chunk_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    r->input_shape = m->input_shape;
    oip_image_geometry(&m->input_shape, &s.h, &s.w, &s.c);
    r->h = s.h, r->w = s.w, r->c = s.c;
    s.S = r->image_size = cnnviz_shape_size(&m->input_shape);
    cnnviz_oip_input_range(m, &s.lo, &s.hi);
    r->lo = s.lo, r->hi = s.hi;
    s.nsnap = o->snapshot_every ? o->steps / o->snapshot_every + 1 : 0;
    int batch = o->batch > 0 ? o->batch : 256;
    if (batch > n) batch = n;
    cnnviz_oip_objective **obs = NULL;
    int groups = 0, per = 0;
    int *alive = calloc((size_t)n, sizeof *alive);
    float *act = malloc((size_t)batch * 2 * sizeof *act);
    if (alloc_result(r, maps, n, s.nsnap, o->snapshot_every) != CNNVIZ_OK || !alloc_state(&s, batch) || !alive ||
        !act) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for %d patterns", n);
        goto done;
    }
    /* Each thread climbs its own share of the images with its own workspace
     * and a single-threaded engine: one fork per chunk instead of a barrier
     * in every layer of every step, which on a busy machine costs more than
     * the work. Images do not interact, so the bits are the same. */
    groups = threads_for(batch), per = (batch + groups - 1) / groups;
    obs = calloc((size_t)groups, sizeof *obs);
    if (!obs) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory for %d patterns", n);
        goto done;
    }
    for (int g = 0; g < groups; g++)
        if (!(obs[g] = cnnviz_oip_objective_new(m, o, per, err))) {
            st = err ? err->code : CNNVIZ_ERR_NOMEM;
            goto done;
        }
    long steps_done = 0, total = (long)o->restarts * ((n + batch - 1) / batch) * o->steps;
    for (int rs = 0; rs < o->restarts; rs++)
        for (int c0 = 0; c0 < n; c0 += batch) {
            int nb = n - c0 < batch ? n - c0 : batch;
            int ng = (nb + per - 1) / per;
            start_images(&s, maps + c0, nb, rs);
            #pragma omp parallel for schedule(static, 1) num_threads(ng)
            for (int g = 0; g < ng; g++) {
                int first = g * per, cnt = nb - first < per ? nb - first : per;
                chunk_state v = group_view(&s, first, obs[g]);
                ascend(&v, maps + c0 + first, cnt, g == 0 ? &steps_done : NULL, total);
                /* the kept image and the start, measured without jitter */
                cnnviz_oip_objective_eval(obs[g], v.best, maps + c0 + first, cnt, act + first, NULL, NULL);
                cnnviz_oip_objective_eval(obs[g], v.start, maps + c0 + first, cnt, act + batch + first, NULL, NULL);
            }
            for (int i = 0; i < nb; i++) merge(r, &s, i, c0 + i, rs, act[i], act[batch + i], alive);
        }
    for (int j = 0; j < n; j++) r->dead[j] = !alive[j];
    for (int j = 0; j < n; j++)
        if (!isfinite(r->activation[j])) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_NUMERIC, "", "map %d: the objective became %g", maps[j],
                                  (double)r->activation[j]);
            break;
        }
done:
    for (int g = 0; obs && g < groups; g++) cnnviz_oip_objective_free(obs[g]);
    free(obs);
    free_state(&s);
    free(alive);
    free(act);
    return st;
}
