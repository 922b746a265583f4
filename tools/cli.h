/* Shared pieces of the cnnviz command: option tables that also generate
 * --help, error printing in the "cnnviz: FILE: problem" form, and loading a
 * model or an image argument. Each subcommand lives in tools/cmd_<name>.c. */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "cnnviz/error.h"
#include "cnnviz/model.h"

/* exit codes */
enum { CLI_OK = 0, CLI_RUNTIME = 1, CLI_USAGE = 2 };

typedef struct {
    const char *name; /* long name without dashes, e.g. "layer" */
    int key;          /* short option letter, or a value >= 256 for long-only */
    const char *arg;  /* argument name for help ("N", "FILE"), NULL = flag */
    const char *help;
} cli_option;

/* Common options every command accepts (DESIGN.md "Shared options"). */
typedef struct {
    int threads; /* 0 = all cores */
    int json, quiet;
    const char *device;
    uint64_t seed;
    int seed_set;
    const char *input_scale; /* --input-scale, NULL = the model's own */
    int transpose;           /* --transpose: feed images transposed (models trained on transposed data) */
    size_t max_params;       /* --max-params: most weights a model may have (0: the library's default) */
} cli_common;

enum {
    OPT_THREADS = 1000,
    OPT_JSON,
    OPT_QUIET,
    OPT_DEVICE,
    OPT_SEED,
    OPT_INPUT_SCALE,
    OPT_TRANSPOSE,
    OPT_MAX_PARAMS,
    OPT_HELP,
    OPT_FIRST_COMMAND_OPTION = 1100 /* commands number their own long-only options from here */
};

/* A command's description, the table of its own options (ending with {0}),
 * and the callback that takes each option. */
typedef struct {
    const char *name;     /* "activations" */
    const char *usage;    /* "[MODEL] IMAGE [options]" */
    const char *summary;  /* one line */
    const char *details;  /* extra help text after the options, may be NULL */
    const cli_option *options;
    int common;           /* bit set of CLI_COMMON_* the command accepts */
} cli_spec;

enum {
    CLI_COMMON_THREADS = 1,
    CLI_COMMON_JSON = 2,
    CLI_COMMON_QUIET = 4,
    CLI_COMMON_DEVICE = 8,
    CLI_COMMON_SEED = 16,
    CLI_COMMON_SCALE = 32, /* --input-scale and --transpose */
    CLI_COMMON_MAX_PARAMS = 64, /* --max-params (commands that load or build a model) */
    CLI_COMMON_ALL = 127,
};

/* What --help prints: text for a person, or, for the build's generators of man
 * pages and shell completion (cmake/gen-docs.sh), the same tables as a man
 * page or as tab-separated completion data. main.c sets it for the hidden
 * --help-man and --help-complete arguments. */
typedef enum { CLI_HELP_TEXT, CLI_HELP_MAN, CLI_HELP_COMPLETE } cli_help_format;
void cli_set_help_format(cli_help_format format);
/* Print man-page text with troff's special characters escaped. */
void cli_man_text(const char *text);

/* Parse argv. For each command option calls on_option(key, optarg, ctx),
 * which returns 0 or a usage error already printed (CLI_USAGE). Positional
 * arguments are moved to the front of argv; *npos gets their count.
 * Returns -1 after printing --help (exit 0), CLI_USAGE on a usage error,
 * or 0. Also applies --threads. */
int cli_parse(const cli_spec *spec, int argc, char **argv, cli_common *common,
              int (*on_option)(int key, const char *arg, void *ctx), void *ctx, int *npos);

/* Print "cnnviz: FILE: problem" (or "cnnviz: problem" when file is NULL/empty). */
int cli_error(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the same for a library error record; returns CLI_RUNTIME */
int cli_report(const cnnviz_error *err);
/* print "cnnviz: <cmd>: problem" + a hint to --help on stderr; returns CLI_USAGE */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse helpers that print a usage error; return 0 on success. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, double *out);

/* The bundled default model: $CNNVIZ_MODEL, else the installed copy
 * (<prefix>/share/cnnviz/model.h5 beside <prefix>/bin/cnnviz), else
 * samples/model.h5 in the source tree the binary was built from. */
const char *cli_default_model(void);
/* Does this argument name a model file (.h5/.keras/.hdf5) rather than an image? */
int cli_is_model_path(const char *arg);
/* Load a model (NULL path = default) and apply --input-scale; prints the
 * error and returns NULL on failure. */
cnnviz_model *cli_load_model(const char *path, const cli_common *common);

/* Load IMAGE (PNG/JPEG path or IDXFILE@K) into the model's input: x is
 * (input size) floats in the model's input scale. preprocess=0 takes a 28x28
 * image as it is. Prints the error and returns nonzero on failure. */
int cli_load_input(const cnnviz_model *m, const char *image, int preprocess, const cli_common *common,
                   float *x);

/* Find a data set's IDX pair: name is "mnist" or "fashion", split "train" or
 * "t10k". Looks in dir (if non-NULL), $CNNVIZ_DATA, $CNNVIZ_SHARED/data/mnist,
 * ../shared/data/mnist beside the source tree, /usr/share/datasets/<name>.
 * Files may be gzipped or not. Prints an error and returns nonzero if absent. */
int cli_find_dataset(const char *name, const char *split, const char *dir, char *images, char *labels, size_t n);

/* Warnings that name the fix (tools/warnings.c): one line each on stderr
 * ("cnnviz: warning: ...", unless --quiet) and kept for --json. */
#define CLI_MAX_WARNINGS 4
typedef struct {
    int n;
    char text[CLI_MAX_WARNINGS][320];
} cli_warnings;
struct cJSON;
void cli_warn(cli_warnings *w, const cli_common *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* near-uniform probabilities (n inputs of `classes` probabilities each) */
void cli_warn_probabilities(cli_warnings *w, const cnnviz_model *m, const cli_common *c, const float *probs, int n,
                            size_t classes);
/* accuracy near chance */
void cli_warn_accuracy(cli_warnings *w, const cnnviz_model *m, const cli_common *c, double accuracy, size_t classes);
/* more than half of a layer's maps dead (what: "dead", "never active on this input") */
void cli_warn_dead_maps(cli_warnings *w, const cnnviz_model *m, const cli_common *c, const char *layer, int dead,
                        int maps, const char *what);
/* obj["warnings"] = [...] (always present, maybe empty) */
void cli_warnings_json(const cli_warnings *w, struct cJSON *obj);

/* A linear Conv2D or Dense whose activation is a layer of its own (next,
 * or after one BatchNormalization), as Keras users often write it: the
 * index of that Activation layer, or -1 (a layer with its own activation,
 * or a linear one followed by softmax: the logit is the thing to show). */
int cli_activated_output(const cnnviz_model *m, int layer);
/* When layer is such a linear layer, say on stderr (unless quiet) which
 * layer holds its activated output; returns that layer or -1. */
int cli_note_activated_output(const cnnviz_model *m, int layer, const cli_common *c);

/* A whole text file, NUL-terminated (malloc'd); prints the error and
 * returns NULL when it cannot be read or is larger than max_bytes. */
#define CLI_MAX_TEXT_BYTES ((size_t)64 << 20)
char *cli_read_text(const char *path, size_t max_bytes);

/* Class names for a model's output units: from --class-names FILE (one a
 * line) or "fashion" (Fashion-MNIST's ten, also used when the model was
 * trained by cnnviz on it); n = 0 when there are none. Prints the error and
 * returns nonzero for a file that does not name every class. */
#define CLI_MAX_CLASSES 1000
typedef struct {
    int n;
    const char *names[CLI_MAX_CLASSES];
    char *text;
} cli_class_labels;
int cli_class_names(const cnnviz_model *m, const char *arg, int classes, cli_class_labels *out);
void cli_class_labels_free(cli_class_labels *l);

/* Flush stdout and report a write failure (a full disk must not exit 0). */
int cli_finish_stdout(int rc);

/* Progress bar on a terminal (stderr), silent when not a tty or quiet. */
typedef struct {
    int enabled;
    long total;
    const char *label;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total, int quiet);
void cli_progress_update(cli_progress *p, long done, const char *suffix);
void cli_progress_end(cli_progress *p);

/* The command line as one string (for PNG provenance). */
const char *cli_command_line(void);

/* Subcommands: int cmd_<name>(int argc, char **argv), argv[0] = the name. */
#define CLI_COMMANDS(X)                                                                              \
    X(activations, "per-layer outputs for an image, as a figure and as data")                          \
    X(checksum, "SHA-256 of an image's decoded pixels")                                                \
    X(evaluate, "accuracy and loss on a labelled IDX set")                                             \
    X(explain, "attribution maps: which pixels made the model choose a class")                        \
    X(filters, "optimal input patterns of a layer's maps by gradient ascent")                          \
    X(kernels, "a layer's kernel weights as a grid")                                                   \
    X(plot, "plot the training history stored in a model")                                             \
    X(predict, "class and probabilities for images")                                                   \
    X(summary, "the layers of a model, like Keras model.summary()")                                    \
    X(train, "train a network on MNIST or Fashion-MNIST and save it as Keras .h5")

#define X(name, summary) int cmd_##name(int argc, char **argv);
CLI_COMMANDS(X)
#undef X
