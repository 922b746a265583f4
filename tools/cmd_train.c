/* cnnviz train: train a network on MNIST or Fashion-MNIST and save it as a
 * Keras .h5 that records its history, optimizer, seed and architecture. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cnnviz/io.h"
#include "cnnviz/train.h"

enum {
    OPT_OUTPUT = 'o',
    OPT_ARCH = OPT_FIRST_COMMAND_OPTION,
    OPT_CONFIG,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_OPTIMIZER,
    OPT_LR,
    OPT_RHO,
    OPT_MOMENTUM,
    OPT_NESTEROV,
    OPT_CENTERED,
    OPT_BETA1,
    OPT_BETA2,
    OPT_EPSILON,
    OPT_DECAY,
    OPT_DECAY_RATE,
    OPT_DECAY_STEPS,
    OPT_STAIRCASE,
    OPT_L2,
    OPT_L1,
    OPT_DATA,
    OPT_DATASET,
    OPT_VALIDATION,
    OPT_VAL_SPLIT,
    OPT_LIMIT,
    OPT_KEEP_SUBNORMALS,
};

static const cli_option options[] = {
    {"output", OPT_OUTPUT, "MODEL.h5", "where to save the trained model (required)"},
    {"arch", OPT_ARCH, "SPEC", "architecture as a compact spec (below; default: the seed net " CNNVIZ_SEED_ARCH ")"},
    {"config", OPT_CONFIG, "FILE", "architecture from a Keras model.to_json() file instead"},
    {"epochs", OPT_EPOCHS, "N", "passes over the training set (default 5)"},
    {"batch", OPT_BATCH, "B", "batch size (default 64); the last partial batch is kept"},
    {"optimizer", OPT_OPTIMIZER, "NAME", "rmsprop (default), sgd or adam, with Keras' update rules"},
    {"lr", OPT_LR, "X", "initial learning rate (default: Keras' 0.001 for rmsprop/adam, 0.01 for sgd)"},
    {"rho", OPT_RHO, "X", "RMSprop's discount of old squared gradients (default 0.9)"},
    {"momentum", OPT_MOMENTUM, "X", "RMSprop/SGD momentum (default 0)"},
    {"nesterov", OPT_NESTEROV, NULL, "SGD: Nesterov momentum"},
    {"centered", OPT_CENTERED, NULL, "RMSprop: centered variant"},
    {"beta1", OPT_BETA1, "X", "Adam's beta_1 (default 0.9)"},
    {"beta2", OPT_BETA2, "X", "Adam's beta_2 (default 0.999)"},
    {"epsilon", OPT_EPSILON, "X", "RMSprop/Adam epsilon (default 1e-7)"},
    {"decay", OPT_DECAY, "KIND", "learning-rate schedule stepped per batch: none (default), inverse-time, exponential"},
    {"decay-rate", OPT_DECAY_RATE, "R", "schedule's decay_rate (inverse-time: lr0/(1+R*step/S); exponential: lr0*R^(step/S))"},
    {"decay-steps", OPT_DECAY_STEPS, "S", "schedule's decay_steps (default 1)"},
    {"staircase", OPT_STAIRCASE, NULL, "schedule uses floor(step/S)"},
    {"l2", OPT_L2, "X", "L2 regularizer l2*sum(w^2) on every Dense kernel (Keras' L2: not halved)"},
    {"l1", OPT_L1, "X", "L1 regularizer l1*sum|w| on every Dense kernel"},
    {"dataset", OPT_DATASET, "NAME", "mnist (default) or fashion (Fashion-MNIST)"},
    {"data", OPT_DATA, "DIR", "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"},
    {"validation", OPT_VALIDATION, "WHAT", "test (default: the 10,000-image test set, as the articles do) or none"},
    {"val-split", OPT_VAL_SPLIT, "F", "validate on the last fraction F of the training set instead, like Keras' validation_split"},
    {"limit", OPT_LIMIT, "N", "train on the first N training images only (quick runs)"},
    {"keep-subnormals", OPT_KEEP_SUBNORMALS, NULL,
     "keep subnormal floats instead of flushing them to zero as TensorFlow does (slower)"},
    {0},
};

static char details[4096];

static const cli_spec spec = {
    .name = "train",
    .usage = "-o MODEL.h5 [--arch SPEC | --config FILE] [options]",
    .summary = "Train a CNN on MNIST (or Fashion-MNIST) and save it as a Keras .h5 (tf.keras 2.x layout)\n"
               "that Keras and cnnviz load. Defaults: the seed net, RMSprop lr 0.001, batch 64, 5 epochs,\n"
               "seed 1, pixels scaled x/255. One line per epoch on stderr; the file records the history,\n"
               "the optimizer, the seed and the architecture.",
    .details = details,
    .options = options,
    .common = CLI_COMMON_THREADS | CLI_COMMON_JSON | CLI_COMMON_QUIET | CLI_COMMON_SEED | CLI_COMMON_MAX_PARAMS,
};

typedef struct {
    const char *output, *arch, *config, *data, *dataset, *validation;
    long epochs, batch, limit;
    const char *optimizer, *decay;
    double lr, rho, momentum, beta1, beta2, epsilon, decay_rate, decay_steps, l1, l2, val_split;
    int lr_set, rho_set, momentum_set, beta1_set, beta2_set, epsilon_set, rate_set, steps_set;
    int nesterov, centered, staircase, l1_set, l2_set, split_set, keep_subnormals;
} train_opts;

static int parse_nonneg(const char *opt, const char *arg, double *out, int *set) {
    if (cli_parse_float("train", opt, arg, out)) return CLI_USAGE;
    if (*out < 0) return cli_usage_error("train", "--%s: '%s' must not be negative", opt, arg);
    if (set) *set = 1;
    return 0;
}

static int on_option(int key, const char *arg, void *ctx) {
    train_opts *o = ctx;
    switch (key) {
    case OPT_OUTPUT: o->output = arg; return 0;
    case OPT_ARCH: o->arch = arg; return 0;
    case OPT_CONFIG: o->config = arg; return 0;
    case OPT_EPOCHS: return cli_parse_int("train", "epochs", arg, 1, 100000, &o->epochs);
    case OPT_BATCH: return cli_parse_int("train", "batch", arg, 1, 65536, &o->batch);
    case OPT_LIMIT: return cli_parse_int("train", "limit", arg, 1, 100000000, &o->limit);
    case OPT_OPTIMIZER: o->optimizer = arg; return 0;
    case OPT_LR: return parse_nonneg("lr", arg, &o->lr, &o->lr_set);
    case OPT_RHO: return parse_nonneg("rho", arg, &o->rho, &o->rho_set);
    case OPT_MOMENTUM: return parse_nonneg("momentum", arg, &o->momentum, &o->momentum_set);
    case OPT_BETA1: return parse_nonneg("beta1", arg, &o->beta1, &o->beta1_set);
    case OPT_BETA2: return parse_nonneg("beta2", arg, &o->beta2, &o->beta2_set);
    case OPT_EPSILON: return parse_nonneg("epsilon", arg, &o->epsilon, &o->epsilon_set);
    case OPT_NESTEROV: o->nesterov = 1; return 0;
    case OPT_CENTERED: o->centered = 1; return 0;
    case OPT_DECAY: o->decay = arg; return 0;
    case OPT_DECAY_RATE: return parse_nonneg("decay-rate", arg, &o->decay_rate, &o->rate_set);
    case OPT_DECAY_STEPS: return parse_nonneg("decay-steps", arg, &o->decay_steps, &o->steps_set);
    case OPT_STAIRCASE: o->staircase = 1; return 0;
    case OPT_KEEP_SUBNORMALS: o->keep_subnormals = 1; return 0;
    case OPT_L2: return parse_nonneg("l2", arg, &o->l2, &o->l2_set);
    case OPT_L1: return parse_nonneg("l1", arg, &o->l1, &o->l1_set);
    case OPT_DATA: o->data = arg; return 0;
    case OPT_DATASET: o->dataset = arg; return 0;
    case OPT_VALIDATION: o->validation = arg; return 0;
    case OPT_VAL_SPLIT: return parse_nonneg("val-split", arg, &o->val_split, &o->split_set);
    }
    return 0;
}

/* The optimizer settings from the options, checked. */
static int make_optimizer(const train_opts *o, cnnviz_optimizer_config *c) {
    const char *name = o->optimizer ? o->optimizer : "rmsprop";
    cnnviz_optimizer_kind kind;
    if (strcmp(name, "rmsprop") == 0) kind = CNNVIZ_OPT_RMSPROP;
    else if (strcmp(name, "sgd") == 0) kind = CNNVIZ_OPT_SGD;
    else if (strcmp(name, "adam") == 0) kind = CNNVIZ_OPT_ADAM;
    else return cli_usage_error("train", "--optimizer: '%s' is not rmsprop, sgd or adam", name);
    *c = cnnviz_optimizer_config_init(kind);
    if ((o->rho_set || o->centered) && kind != CNNVIZ_OPT_RMSPROP)
        return cli_usage_error("train", "--rho and --centered are RMSprop options");
    if (o->momentum_set && kind == CNNVIZ_OPT_ADAM) return cli_usage_error("train", "--momentum is for rmsprop or sgd");
    if (o->nesterov && kind != CNNVIZ_OPT_SGD) return cli_usage_error("train", "--nesterov is an SGD option");
    if ((o->beta1_set || o->beta2_set) && kind != CNNVIZ_OPT_ADAM)
        return cli_usage_error("train", "--beta1 and --beta2 are Adam options");
    if (o->lr_set) {
        if (!(o->lr > 0)) return cli_usage_error("train", "--lr must be positive");
        c->lr.initial = o->lr;
    }
    if (o->rho_set) c->rho = o->rho;
    if (o->momentum_set) c->momentum = o->momentum;
    if (o->beta1_set) c->beta_1 = o->beta1;
    if (o->beta2_set) c->beta_2 = o->beta2;
    if (o->epsilon_set) c->epsilon = o->epsilon;
    if (c->rho >= 1 || c->momentum >= 1 || c->beta_1 >= 1 || c->beta_2 >= 1)
        return cli_usage_error("train", "--rho, --momentum, --beta1 and --beta2 must be below 1");
    c->nesterov = o->nesterov;
    c->centered = o->centered;
    const char *decay = o->decay ? o->decay : "none";
    if (strcmp(decay, "none") == 0) c->lr.kind = CNNVIZ_DECAY_NONE;
    else if (strcmp(decay, "inverse-time") == 0) c->lr.kind = CNNVIZ_DECAY_INVERSE_TIME;
    else if (strcmp(decay, "exponential") == 0) c->lr.kind = CNNVIZ_DECAY_EXPONENTIAL;
    else return cli_usage_error("train", "--decay: '%s' is not none, inverse-time or exponential", decay);
    if (c->lr.kind == CNNVIZ_DECAY_NONE && (o->rate_set || o->steps_set || o->staircase))
        return cli_usage_error("train", "--decay-rate, --decay-steps and --staircase need --decay");
    if (c->lr.kind != CNNVIZ_DECAY_NONE && !o->rate_set)
        return cli_usage_error("train", "--decay %s needs --decay-rate", decay);
    c->lr.rate = o->decay_rate;
    if (o->steps_set) {
        if (!(o->decay_steps > 0)) return cli_usage_error("train", "--decay-steps must be positive");
        c->lr.decay_steps = o->decay_steps;
    }
    c->lr.staircase = o->staircase;
    return 0;
}

/* Fail before training when the model could not be written: try to create a
 * file in the target's folder (what the atomic writer will do) and remove it. */
static int check_writable(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return cli_error(path, "is a directory");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.cnnviz-train-XXXXXX", dirname(buf));
    int fd = mkstemp(probe);
    if (fd < 0) return cli_error(path, "cannot write here (%s)", strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}


static cnnviz_model *build_model(const train_opts *o, size_t max_params) {
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (o->config) {
        char *text = cli_read_text(o->config, CLI_MAX_TEXT_BYTES);
        if (!text) return NULL;
        cnnviz_load_options opt;
        cnnviz_load_options_init(&opt);
        if (max_params) opt.max_params = max_params;
        cnnviz_status st = cnnviz_model_from_keras_json_opts(text, o->config, &opt, &m, &err);
        free(text);
        if (st) {
            cli_report(&err);
            return NULL;
        }
    } else {
        cnnviz_shape in = cnnviz_shape3(28, 28, 1);
        if (cnnviz_model_from_spec_max(o->arch ? o->arch : CNNVIZ_SEED_ARCH, &in, max_params, &m, &err)) {
            cli_report(&err);
            return NULL;
        }
    }
    if (cnnviz_check_trainable(m, &err)) {
        if (o->config) snprintf(err.file, sizeof err.file, "%s", o->config);
        cli_report(&err);
        cnnviz_model_free(m);
        return NULL;
    }
    return m;
}

/* --- data ---------------------------------------------------------------------- */

typedef struct {
    cnnviz_idx_images im;
    uint8_t *labels;
    cnnviz_labelled_set set;
} idx_set;

static int load_set(const char *images, const char *labels, size_t sample, idx_set *s) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    int n = 0;
    if (cnnviz_idx_load_images(images, &s->im, &err) || cnnviz_idx_load_labels(labels, &s->labels, &n, &err))
        return cli_report(&err);
    if (n != s->im.count) return cli_error(labels, "%d labels for %d images in %s", n, s->im.count, images);
    if ((size_t)s->im.rows * (size_t)s->im.cols != sample)
        return cli_error(images, "images are %dx%d, the model takes %zu values per input", s->im.rows, s->im.cols,
                         sample);
    s->set = (cnnviz_labelled_set){s->im.pixels, s->labels, n};
    return 0;
}

static void free_set(idx_set *s) {
    cnnviz_idx_images_free(&s->im);
    free(s->labels);
}

/* The training set (maybe cut by --limit) and the validation set: the test
 * set, the tail of the training set (--val-split), or none. */
typedef struct {
    idx_set train_file, test_file;
    cnnviz_labelled_set train, split;
    const cnnviz_labelled_set *val;
} train_data;

static int load_data(const train_opts *o, size_t sample, train_data *d) {
    const char *dataset = o->dataset ? o->dataset : "mnist";
    char images[4096], labels[4096];
    if (cli_find_dataset(dataset, "train", o->data, images, labels, sizeof images) ||
        load_set(images, labels, sample, &d->train_file))
        return CLI_RUNTIME;
    d->train = d->train_file.set;
    if (o->limit && o->limit < d->train.count) d->train.count = (int)o->limit;
    if (o->split_set) {
        /* Keras' validation_split takes the LAST samples, before any shuffling */
        int nval = (int)floor(d->train.count * o->val_split);
        if (nval < 1 || nval >= d->train.count)
            return cli_error(NULL, "--val-split %g leaves no training or no validation images", o->val_split);
        d->train.count -= nval;
        d->split = (cnnviz_labelled_set){d->train.pixels + (size_t)d->train.count * sample,
                                         d->train.labels + d->train.count, nval};
        d->val = &d->split;
    } else if (!o->validation || strcmp(o->validation, "test") == 0) {
        if (cli_find_dataset(dataset, "t10k", o->data, images, labels, sizeof images) ||
            load_set(images, labels, sample, &d->test_file))
            return CLI_RUNTIME;
        d->val = &d->test_file.set;
    }
    return 0;
}

static void free_data(train_data *d) {
    free_set(&d->train_file);
    free_set(&d->test_file);
}

/* --- reporting ------------------------------------------------------------------- */

typedef struct {
    cli_progress bar;
    int epochs, quiet, has_val;
} reporter;

static void on_batch(void *ctx, int epoch, int batch, int nbatches, double loss, double acc) {
    reporter *r = ctx;
    (void)epoch;
    if (!r->bar.enabled) return;
    if (batch == 1) {
        static char label[32];
        snprintf(label, sizeof label, "Epoch %d/%d", epoch, r->epochs);
        cli_progress_start(&r->bar, label, nbatches, r->quiet);
    }
    if (batch % 8 && batch != nbatches) return; /* a terminal need not redraw 938 times */
    char suffix[96];
    snprintf(suffix, sizeof suffix, "- loss: %.4f - accuracy: %.4f", loss, acc);
    cli_progress_update(&r->bar, batch, suffix);
}

static int on_epoch(void *ctx, const cnnviz_epoch_stats *s) {
    reporter *r = ctx;
    cli_progress_end(&r->bar);
    if (r->quiet) return 0;
    fprintf(stderr, "Epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f", s->epoch, r->epochs, s->seconds, s->loss,
            s->accuracy);
    if (r->has_val) fprintf(stderr, " - val_loss: %.4f - val_accuracy: %.4f", s->val_loss, s->val_accuracy);
    fputc('\n', stderr);
    return 0;
}

static void print_json(const cnnviz_train_result *res) {
    printf("{\"epochs\": [");
    for (int e = 0; e < res->epochs_done; e++) {
        const cnnviz_epoch_stats *s = &res->history[e];
        printf("%s{\"epoch\": %d, \"loss\": %.6f, \"accuracy\": %.6f", e ? ", " : "", s->epoch, s->loss, s->accuracy);
        if (res->has_val) printf(", \"val_loss\": %.6f, \"val_accuracy\": %.6f", s->val_loss, s->val_accuracy);
        printf(", \"seconds\": %.3f}", s->seconds);
    }
    printf("]}\n");
}

static int save(cnnviz_model *m, const cnnviz_train_config *cfg, const cnnviz_train_result *res, const char *arch,
                const train_opts *o, const char *path) {
    cnnviz_error err;
    cnnviz_error_clear(&err);
    /* what the val_* curves measured: plot history labels a test set so */
    const char *val = !res->has_val ? NULL : o->split_set ? "split" : "test";
    if (cnnviz_train_record_meta(m, cfg, res, arch, &err) ||
        (val && cnnviz_model_set_meta(m, "cnnviz_validation", val, &err)) ||
        cnnviz_model_set_meta(m, "cnnviz_dataset", o->dataset && strncmp(o->dataset, "fashion", 7) == 0 ? "fashion" : "mnist", &err) ||
        cnnviz_model_save(m, path, &err)) {
        if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", path);
        return cli_report(&err);
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    snprintf(details, sizeof details,
             "%s\n\n"
             "Data: MNIST from --data, $CNNVIZ_DATA, $CNNVIZ_SHARED/data/mnist, ../shared/data/mnist\n"
             "beside the source tree or /usr/share/datasets/mnist; Fashion-MNIST from --data or\n"
             "/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). Training shuffles each\n"
             "epoch from --seed; the same seed and data give bit-identical weights, whatever --threads.\n"
             "Loss: categorical cross-entropy on the softmax output (probabilities clipped to\n"
             "[1e-7, 1-1e-7] as Keras does), plus the regularizers. A NaN or infinite loss stops\n"
             "training; the weights of the last complete epoch are saved and the command exits 1.\n"
             "--json prints {\"epochs\": [{\"epoch\", \"loss\", \"accuracy\", \"val_loss\", \"val_accuracy\",\n"
             "\"seconds\"}]} on stdout.\n\n"
             "The articles' best recipe (99.35-99.45%% in Keras):\n"
             "  cnnviz train -o model.h5 --epochs 15 --momentum 0.9 --decay inverse-time \\\n"
             "      --decay-rate 0.001 --l2 0.001",
             cnnviz_spec_help());
    cli_common common;
    train_opts o = {0};
    int npos;
    int rc = cli_parse(&spec, argc, argv, &common, on_option, &o, &npos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (npos) return cli_usage_error("train", "unexpected argument '%s'", argv[0]);
    if (!o.output) return cli_usage_error("train", "-o MODEL.h5 is required");
    if (o.arch && o.config) return cli_usage_error("train", "--arch and --config exclude each other");
    if (o.split_set && !(o.val_split > 0 && o.val_split < 1))
        return cli_usage_error("train", "--val-split must be between 0 and 1");
    if (o.validation && strcmp(o.validation, "test") && strcmp(o.validation, "none"))
        return cli_usage_error("train", "--validation: '%s' is not test or none", o.validation);
    if (o.split_set && o.validation) return cli_usage_error("train", "--val-split and --validation exclude each other");
    cnnviz_train_config cfg = cnnviz_train_config_init();
    if (make_optimizer(&o, &cfg.opt)) return CLI_USAGE;
    if (o.epochs) cfg.epochs = (int)o.epochs;
    if (o.batch) cfg.batch = (int)o.batch;
    if (common.seed_set) cfg.seed = common.seed;
    cfg.keep_subnormals = o.keep_subnormals;

    if (check_writable(o.output)) return CLI_RUNTIME;
    cnnviz_model *m = build_model(&o, common.max_params);
    if (!m) return CLI_RUNTIME;
    if ((o.l1_set || o.l2_set) && cnnviz_regularize_dense_kernels(m, (float)o.l1, (float)o.l2) == 0) {
        cnnviz_model_free(m);
        return cli_error(NULL, "--l1/--l2 apply to Dense kernels, and this model has no Dense layer");
    }
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, cfg.seed, 0);
    cnnviz_model_init_weights(m, &rng);

    train_data data = {0};
    cnnviz_train_result res = {0};
    cnnviz_shape in_shape = cnnviz_model_input_shape(m);
    rc = CLI_RUNTIME;
    if (load_data(&o, cnnviz_shape_size(&in_shape), &data)) goto done;

    reporter rep = {.epochs = cfg.epochs, .quiet = common.quiet, .has_val = data.val != NULL};
    cli_progress_start(&rep.bar, "", 0, common.quiet);
    cfg.on_batch = on_batch;
    cfg.on_epoch = on_epoch;
    cfg.ctx = &rep;
    const char *arch = o.config ? o.config : o.arch ? o.arch : CNNVIZ_SEED_ARCH;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_train(m, &cfg, &data.train, data.val, &res, &err);
    cli_progress_end(&rep.bar);
    if (st == CNNVIZ_ERR_NUMERIC) {
        /* keep the last good checkpoint: the weights of the last complete epoch */
        if (res.epochs_done > 0 && save(m, &cfg, &res, arch, &o, o.output) == 0)
            cli_error(o.output, "the loss became NaN or infinite at epoch %d, batch %d; saved the weights of epoch %d, "
                      "the last complete one", res.nan_epoch, res.nan_batch, res.epochs_done);
        else if (res.epochs_done == 0)
            cli_error(NULL, "the loss became NaN or infinite at epoch %d, batch %d; no epoch completed, no model "
                      "was written", res.nan_epoch, res.nan_batch);
        goto done;
    }
    if (st) {
        cli_report(&err);
        goto done;
    }
    if (save(m, &cfg, &res, arch, &o, o.output)) goto done;
    if (common.json) print_json(&res);
    if (!common.quiet) {
        const cnnviz_epoch_stats *last = &res.history[res.epochs_done - 1];
        fprintf(stderr, "saved %s (%zu parameters", o.output, cnnviz_model_num_params(m));
        if (data.val) fprintf(stderr, ", val_accuracy %.4f", last->val_accuracy);
        fprintf(stderr, ")\n");
    }
    rc = CLI_OK;
done:
    cnnviz_train_result_free(&res);
    free_data(&data);
    cnnviz_model_free(m);
    return rc;
}
