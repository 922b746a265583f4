/* Shared pieces of the cnnviz command (see cli.h). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnviz/io.h"

static char g_command_line[4096];

void cli_set_command_line(int argc, char **argv);
void cli_set_command_line(int argc, char **argv) {
    size_t off = 0;
    for (int i = 0; i < argc && off + 1 < sizeof g_command_line; i++)
        off += (size_t)snprintf(g_command_line + off, sizeof g_command_line - off, i ? " %s" : "%s", argv[i]);
}

const char *cli_command_line(void) { return g_command_line; }

static void vprint_error(const char *file, const char *fmt, va_list ap) {
    fputs("cnnviz: ", stderr);
    if (file && *file) fprintf(stderr, "%s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *file, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprint_error(file, fmt, ap);
    va_end(ap);
    return CLI_RUNTIME;
}

int cli_report(const cnnviz_error *err) {
    return cli_error(err->file, "%s", err->msg[0] ? err->msg : cnnviz_status_string(err->code));
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprint_error(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'cnnviz %s --help' for more information.\n", cmd ? cmd : "");
    return CLI_USAGE;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_usage_error(cmd, "--%s: '%s' is not a whole number from %ld to %ld", opt, s, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return cli_usage_error(cmd, "--%s: '%s' is not a number", opt, s);
    *out = v;
    return 0;
}

/* --- option tables -------------------------------------------------------- */

static const cli_option common_options[] = {
    {"threads", OPT_THREADS, "N", "threads for the engine, 1 to 1024 (0 or absent: one per core); results do not depend on it"},
    {"json", OPT_JSON, NULL, "print machine-readable results on stdout"},
    {"quiet", OPT_QUIET, NULL, "no progress or reports on stderr"},
    {"device", OPT_DEVICE, "DEV", "cpu (cuda is not available in this build)"},
    {"seed", OPT_SEED, "S", "seed of the random generator"},
    {"input-scale", OPT_INPUT_SCALE, "S", "unit (x/255), raw (0..255), center (x/255-0.5) or meanstd:M:S, for models that do not record it"},
    {"transpose", OPT_TRANSPOSE, NULL, "feed images transposed (for models trained on transposed images)"},
    {"max-params", OPT_MAX_PARAMS, "N", "allow models of up to N weights (default 33554432, 32 Mi)"},
    {0},
};
static const int common_bits[] = {CLI_COMMON_THREADS, CLI_COMMON_JSON,  CLI_COMMON_QUIET, CLI_COMMON_DEVICE,
                                  CLI_COMMON_SEED,    CLI_COMMON_SCALE, CLI_COMMON_SCALE, CLI_COMMON_MAX_PARAMS};

static int parse_scale(const char *s, cnnviz_input_scale *out) {
    memset(out, 0, sizeof *out);
    out->std = 1.0f;
    if (strcmp(s, "unit") == 0) out->kind = CNNVIZ_SCALE_UNIT;
    else if (strcmp(s, "raw") == 0) out->kind = CNNVIZ_SCALE_RAW;
    else if (strcmp(s, "center") == 0) out->kind = CNNVIZ_SCALE_CENTER;
    else if (strncmp(s, "meanstd:", 8) == 0) {
        char *end;
        out->kind = CNNVIZ_SCALE_MEANSTD;
        out->mean = strtof(s + 8, &end);
        if (*end != ':') return -1;
        char *end2;
        out->std = strtof(end + 1, &end2);
        if (*end2 || !(out->std > 0)) return -1;
    } else
        return -1;
    return 0;
}

/* "--quiet=0": getopt_long says '?' for a flag given a value; tell that
 * apart from an option it does not know. */
static int takes_no_argument(const struct option *longopts, const char *word) {
    const char *name = word + strspn(word, "-");
    size_t len = strcspn(name, "=");
    for (const struct option *o = longopts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o->has_arg == no_argument;
    return 0;
}

static void print_option(const cli_option *o) {
    char left[64];
    if (o->key > 0 && o->key < 256)
        snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    else
        snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    printf("  %-24s %s\n", left, o->help);
}

static void print_text_help(const cli_spec *spec) {
    printf("usage: cnnviz %s %s\n\n%s\n", spec->name, spec->usage, spec->summary);
    if (spec->options && spec->options[0].name) {
        printf("\noptions:\n");
        for (const cli_option *o = spec->options; o->name; o++) print_option(o);
    }
    printf("\ncommon options:\n");
    for (int i = 0; common_options[i].name; i++)
        if (spec->common & common_bits[i]) print_option(&common_options[i]);
    printf("  %-24s %s\n", "-h, --help", "show this help");
    if (spec->details) printf("\n%s\n", spec->details);
}

/* --- the same tables as a man page or as completion data ------------------ */

static cli_help_format g_help_format = CLI_HELP_TEXT;

void cli_set_help_format(cli_help_format format) { g_help_format = format; }

/* troff: a backslash is the escape character, '-' must be \- to stay an ASCII
 * hyphen-minus that can be pasted into a shell, and a line that starts with
 * '.' or '\'' would be read as a request. */
static void man_chars(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') fputs("\\e", stdout);
        else if (s[i] == '-') fputs("\\-", stdout);
        else putchar(s[i]);
    }
}

void cli_man_text(const char *text) {
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n == 0) fputs(".PP", stdout);
        else if (line[0] == '.' || line[0] == '\'') fputs("\\&", stdout);
        man_chars(line, n);
        putchar('\n');
        line += n + (end != NULL);
    }
}

/* An option's help may go on over lines indented for the --help column; a man
 * page or a completion takes it as one line. */
static const char *flat_help(const cli_option *o) {
    static char buf[1024];
    size_t n = 0;
    for (const char *c = o->help; *c && n + 1 < sizeof buf; c++) {
        if (*c != '\n' && *c != '\t') {
            buf[n++] = *c;
            continue;
        }
        buf[n++] = ' ';
        while (c[1] == ' ') c++;
    }
    buf[n] = 0;
    return buf;
}

static void man_option(const cli_option *o) {
    fputs(".TP\n", stdout);
    if (o->key > 0 && o->key < 256) printf("\\fB\\-%c\\fR, ", o->key);
    fputs("\\fB\\-\\-", stdout);
    man_chars(o->name, strlen(o->name));
    fputs("\\fR", stdout);
    if (o->arg) {
        fputs(" \\fI", stdout);
        man_chars(o->arg, strlen(o->arg));
        fputs("\\fR", stdout);
    }
    putchar('\n');
    cli_man_text(flat_help(o));
}

static const char *command_summary(const char *name) {
#define X(cmd, summary) \
    if (strcmp(name, #cmd) == 0) return summary;
    CLI_COMMANDS(X)
#undef X
    return "";
}

static const cli_option help_option = {"help", 'h', NULL, "show this help"};

static void print_man_help(const cli_spec *spec) {
    fputs(".TH CNNVIZ\\-", stdout);
    for (const char *c = spec->name; *c; c++) putchar(toupper((unsigned char)*c));
    printf(" 1 \"\" \"cnnviz %s\" \"cnnviz manual\"\n", CNNVIZ_VERSION);
    printf(".SH NAME\ncnnviz\\-%s \\- ", spec->name);
    cli_man_text(command_summary(spec->name));
    printf(".SH SYNOPSIS\n\\fBcnnviz %s\\fR ", spec->name);
    cli_man_text(spec->usage);
    fputs(".SH DESCRIPTION\n", stdout);
    cli_man_text(spec->summary);
    if (spec->options && spec->options[0].name) {
        fputs(".SH OPTIONS\n", stdout);
        for (const cli_option *o = spec->options; o->name; o++) man_option(o);
    }
    fputs(".SH COMMON OPTIONS\n", stdout);
    for (int i = 0; common_options[i].name; i++)
        if (spec->common & common_bits[i]) man_option(&common_options[i]);
    man_option(&help_option);
    if (spec->details) {
        fputs(".SH NOTES\n", stdout);
        cli_man_text(spec->details);
    }
    fputs(".SH EXIT STATUS\n0 on success, 1 on a runtime error, 2 on a usage error.\n"
          ".SH SEE ALSO\n.BR cnnviz (1)\n", stdout);
}

/* One line per option: long name, short name, argument name, help, separated
 * by tabs, "-" for an empty field (bash's read would merge empty fields). */
static void complete_option(const cli_option *o) {
    printf("--%s\t", o->name);
    if (o->key > 0 && o->key < 256) printf("-%c\t", o->key);
    else fputs("-\t", stdout);
    printf("%s\t", o->arg ? o->arg : "-");
    puts(flat_help(o));
}

static void print_complete_help(const cli_spec *spec) {
    for (const cli_option *o = spec->options; o && o->name; o++) complete_option(o);
    for (int i = 0; common_options[i].name; i++)
        if (spec->common & common_bits[i]) complete_option(&common_options[i]);
    complete_option(&help_option);
}

static void print_help(const cli_spec *spec) {
    switch (g_help_format) {
    case CLI_HELP_TEXT: print_text_help(spec); break;
    case CLI_HELP_MAN: print_man_help(spec); break;
    case CLI_HELP_COMPLETE: print_complete_help(spec); break;
    }
}

int cli_parse(const cli_spec *spec, int argc, char **argv, cli_common *common,
              int (*on_option)(int key, const char *arg, void *ctx), void *ctx, int *npos) {
    memset(common, 0, sizeof *common);
    struct option longopts[128];
    char shortopts[256] = "+h"; /* '+': stop at nothing, but we permute by hand below */
    int n = 0;
    shortopts[0] = '-'; /* return positional arguments in order as key 1 */
    size_t so = 2;
    for (const cli_option *o = spec->options; o && o->name && n < 100; o++) {
        longopts[n++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->key};
        if (o->key > 0 && o->key < 256 && so + 3 < sizeof shortopts) {
            shortopts[so++] = (char)o->key;
            if (o->arg) shortopts[so++] = ':';
        }
    }
    for (int i = 0; common_options[i].name; i++)
        if (spec->common & common_bits[i])
            longopts[n++] = (struct option){common_options[i].name,
                                            common_options[i].arg ? required_argument : no_argument, NULL,
                                            common_options[i].key};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){0};
    shortopts[so] = 0;

    int pos = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const char *arg = optarg;
        long v;
        switch (c) {
        case 1: argv[pos++] = (char *)arg; continue; /* positional, in order */
        case 'h': print_help(spec); return -1;
        case '?':
            if (optopt && strchr(argv[optind - 1], '=') && takes_no_argument(longopts, argv[optind - 1]))
                return cli_usage_error(spec->name, "option '%.*s' takes no argument",
                                       (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
            if (optopt)
                return cli_usage_error(spec->name, "option '%s' %s", argv[optind - 1],
                                       optopt >= 256 || strchr(shortopts + 1, optopt) ? "needs an argument" : "is not known");
            return cli_usage_error(spec->name, "option '%s' is not known", argv[optind - 1]);
        case ':': return cli_usage_error(spec->name, "option '%s' needs an argument", argv[optind - 1]);
        case OPT_THREADS:
            if (cli_parse_int(spec->name, "threads", arg, 0, 1024, &v)) return CLI_USAGE;
            common->threads = (int)v;
            continue;
        case OPT_JSON: common->json = 1; continue;
        case OPT_QUIET: common->quiet = 1; continue;
        case OPT_DEVICE:
            if (strcmp(arg, "cpu") == 0) {
                common->device = arg;
                continue;
            }
            if (strcmp(arg, "cuda") == 0)
                return cli_error(NULL, "--device cuda: this build has no CUDA backend");
            return cli_usage_error(spec->name, "--device: '%s' is not cpu or cuda", arg);
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(arg, &end, 10);
            if (errno || end == arg || *end || arg[0] == '-')
                return cli_usage_error(spec->name, "--seed: '%s' is not a non-negative whole number", arg);
            common->seed = s;
            common->seed_set = 1;
            continue;
        }
        case OPT_INPUT_SCALE: {
            cnnviz_input_scale scale;
            if (parse_scale(arg, &scale))
                return cli_usage_error(spec->name, "--input-scale: '%s' is not unit, raw, center or meanstd:M:S", arg);
            common->input_scale = arg;
            continue;
        }
        case OPT_TRANSPOSE: common->transpose = 1; continue;
        case OPT_MAX_PARAMS:
            if (cli_parse_int(spec->name, "max-params", arg, 1, 1L << 40, &v)) return CLI_USAGE;
            common->max_params = (size_t)v;
            continue;
        default:
            if (on_option) {
                int rc = on_option(c, arg, ctx);
                if (rc) return rc;
                continue;
            }
            return cli_usage_error(spec->name, "option '%s' is not known", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) argv[pos++] = argv[i];
    *npos = pos;
    cnnviz_set_threads(common->threads);
    return 0;
}

/* --- models and inputs ---------------------------------------------------- */

/* <prefix>/bin/cnnviz -> <prefix>/share/cnnviz/model.h5, so that an
 * installed tree works wherever it was installed or moved to. */
static int installed_model(char *buf, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 0;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0;
    char model[PATH_MAX + 32];
    snprintf(model, sizeof model, "%s/../share/cnnviz/model.h5", exe);
    /* the resolved path, for error messages without "bin/.." */
    char resolved[PATH_MAX];
    if (!realpath(model, resolved)) return 0;
    snprintf(buf, n, "%s", resolved);
    return 1;
}

const char *cli_default_model(void) {
    /* An explicit setting wins over what the tree holds. */
    const char *env = getenv("CNNVIZ_MODEL");
    if (env && *env) return env;
    static char buf[PATH_MAX + 64];
    if (installed_model(buf, sizeof buf)) return buf;
#ifdef CNNVIZ_SOURCE_DIR
    /* a run from the build tree */
    struct stat st;
    snprintf(buf, sizeof buf, "%s/samples/model.h5", CNNVIZ_SOURCE_DIR);
    if (stat(buf, &st) == 0) return buf;
#endif
    return "samples/model.h5";
}

int cli_is_model_path(const char *arg) {
    const char *dot = strrchr(arg, '.');
    return dot && (strcasecmp(dot, ".h5") == 0 || strcasecmp(dot, ".keras") == 0 || strcasecmp(dot, ".hdf5") == 0);
}


cnnviz_model *cli_load_model(const char *path, const cli_common *common) {
    if (!path) path = cli_default_model();
    cnnviz_input_scale scale;
    if (common->input_scale) parse_scale(common->input_scale, &scale); /* checked by cli_parse */
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    /* CNNVIZ_LOAD_IN_PROCESS=1 parses the model in this process (for the
     * bench that measures what the child process costs); the library
     * itself never reads the environment */
    cnnviz_load_options opt;
    cnnviz_load_options_init(&opt);
    const char *in_process = getenv("CNNVIZ_LOAD_IN_PROCESS");
    opt.in_process = in_process && strcmp(in_process, "1") == 0;
    if (common->max_params) opt.max_params = common->max_params; /* --max-params */
    if (cnnviz_model_load_opts(path, &opt, &m, &err) != CNNVIZ_OK) {
        if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", path);
        cli_report(&err);
        return NULL;
    }
    if (common->input_scale) {
        cnnviz_model_set_input_scale(m, scale);
    } else if (!cnnviz_model_has_input_scale(m) && !common->quiet) {
        int r = cnnviz_model_rescales_input(m);
        if (r >= 0) {
            cnnviz_layer_info li;
            cnnviz_model_layer_info(m, r, &li);
            fprintf(stderr, "%s: the model rescales its input itself (layer '%s'): fed raw 0..255 pixels "
                    "(--input-scale overrides)\n", path, li.name);
        }
    }
    return m;
}

/* "FILE@K": the K-th image of an IDX file. */
static int split_idx_ref(const char *arg, char *path, size_t n, long *index) {
    const char *at = strrchr(arg, '@');
    if (!at || at == arg || !at[1]) return 0;
    char *end;
    long k = strtol(at + 1, &end, 10);
    if (*end || k < 0) return 0;
    size_t len = (size_t)(at - arg);
    if (len >= n) return 0;
    memcpy(path, arg, len);
    path[len] = 0;
    *index = k;
    return 1;
}

int cli_load_input(const cnnviz_model *m, const char *image, int preprocess, const cli_common *common, float *x) {
    cnnviz_shape in = cnnviz_model_input_shape(m);
    size_t size = cnnviz_shape_size(&in);
    int h = in.rank >= 2 ? in.dim[0] : 1, w = in.rank >= 2 ? in.dim[1] : (int)size;
    if (in.rank == 1 && size == 784) h = w = 28; /* a flat MLP still takes a 28x28 digit */
    if (in.rank == 3 && in.dim[2] != 1)
        return cli_error(image, "the model takes %d channels; only 1-channel (grey) models take images", in.dim[2]);
    if ((size_t)h * (size_t)w != size)
        return cli_error(image, "the model's input does not take an image");
    cnnviz_error err;
    cnnviz_error_clear(&err);
    char path[4096];
    long k;
    cnnviz_input_scale scale = cnnviz_model_input_scale(m);
    if (split_idx_ref(image, path, sizeof path, &k)) {
        cnnviz_idx_images im;
        if (cnnviz_idx_load_images(path, &im, &err) != CNNVIZ_OK) return cli_report(&err);
        if (k >= im.count) {
            int count = im.count;
            cnnviz_idx_images_free(&im);
            return cli_error(path, "image index %ld is out of range (the file has %d images, 0 to %d)", k, count,
                             count - 1);
        }
        if (im.rows != h || im.cols != w) {
            cnnviz_idx_images_free(&im);
            return cli_error(path, "images are %dx%d, the model needs %dx%d", im.rows, im.cols, h, w);
        }
        cnnviz_scale_pixels(im.pixels + (size_t)k * size, x, size, scale);
        cnnviz_idx_images_free(&im);
    } else {
        cnnviz_preprocess_report rep;
        memset(&rep, 0, sizeof rep);
        float *px = malloc(size * sizeof *px);
        if (!px) return cli_error(image, "out of memory");
        if (cnnviz_image_load_digit(image, preprocess, h, w, px, &rep, &err) != CNNVIZ_OK) {
            free(px);
            if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", image);
            return cli_report(&err);
        }
        if (preprocess && !common->quiet && rep.summary[0]) fprintf(stderr, "%s: %s\n", image, rep.summary);
        /* scale 0..255 floats exactly as IDX pixels would be */
        cnnviz_scale_values(px, x, size, scale);
        free(px);
    }
    if (common->transpose) cnnviz_transpose_image(x, h, w);
    return 0;
}

int cli_finish_stdout(int rc) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cnnviz: standard output: %s\n", strerror(errno ? errno : EIO));
        return rc ? rc : CLI_RUNTIME;
    }
    return rc;
}

/* --- progress ------------------------------------------------------------- */

void cli_progress_start(cli_progress *p, const char *label, long total, int quiet) {
    p->enabled = !quiet && isatty(2);
    p->total = total;
    p->label = label;
}

void cli_progress_update(cli_progress *p, long done, const char *suffix) {
    if (!p->enabled || p->total <= 0) return;
    int width = 30, filled = (int)(width * done / p->total);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %ld/%ld %s\033[K", p->label ? p->label : "", bar, done, p->total, suffix ? suffix : "");
}

void cli_progress_end(cli_progress *p) {
    if (p->enabled) fputs("\r\033[K", stderr);
}

/* --- data sets ------------------------------------------------------------ */

static int find_pair(const char *dir, const char *split, char *images, char *labels, size_t n) {
    static const char *const suffix[] = {".gz", ""};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        snprintf(images, n, "%s/%s-images-idx3-ubyte%s", dir, split, suffix[i]);
        snprintf(labels, n, "%s/%s-labels-idx1-ubyte%s", dir, split, suffix[i]);
        if (stat(images, &st) == 0 && stat(labels, &st) == 0) return 1;
    }
    return 0;
}

/* Where a user gets the data set that was not found. */
static const char *dataset_source(int fashion) {
    return fashion ? "install Debian's dataset-fashion-mnist"
                   : "MNIST's four .gz files are at https://ossci-datasets.s3.amazonaws.com/mnist/";
}

int cli_find_dataset(const char *name, const char *split, const char *dir, char *images, char *labels, size_t n) {
    int fashion = strcmp(name, "fashion") == 0 || strcmp(name, "fashion-mnist") == 0;
    if (!fashion && strcmp(name, "mnist") != 0)
        return cli_usage_error(NULL, "unknown data set '%s' (use mnist or fashion)", name);
    if (dir) {
        if (find_pair(dir, split, images, labels, n)) return 0;
        return cli_error(dir, "no %s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz] here (%s)", split, split,
                         dataset_source(fashion));
    }
    char buf[4096];
    const char *env = getenv("CNNVIZ_DATA");
    if (!fashion && env && *env && find_pair(env, split, images, labels, n)) return 0;
    env = getenv("CNNVIZ_SHARED");
    if (!fashion && env && *env) {
        snprintf(buf, sizeof buf, "%s/data/mnist", env);
        if (find_pair(buf, split, images, labels, n)) return 0;
    }
#ifdef CNNVIZ_SOURCE_DIR
    if (!fashion) {
        snprintf(buf, sizeof buf, "%s/../shared/data/mnist", CNNVIZ_SOURCE_DIR);
        if (find_pair(buf, split, images, labels, n)) return 0;
    }
#endif
    snprintf(buf, sizeof buf, "/usr/share/datasets/%s", fashion ? "fashion-mnist" : "mnist");
    if (find_pair(buf, split, images, labels, n)) return 0;
    return cli_error(NULL, "%s %s set not found: give --data DIR or set CNNVIZ_DATA (%s)",
                     fashion ? "Fashion-MNIST" : "MNIST", split, dataset_source(fashion));
}

int cli_activated_output(const cnnviz_model *m, int layer) {
    cnnviz_layer_info li, next;
    cnnviz_model_layer_info(m, layer, &li);
    if ((li.type != CNNVIZ_LAYER_CONV2D && li.type != CNNVIZ_LAYER_DENSE) || li.activation != CNNVIZ_ACT_LINEAR)
        return -1;
    int n = cnnviz_model_num_layers(m);
    for (int i = layer + 1; i < n && i <= layer + 2; i++) {
        cnnviz_model_layer_info(m, i, &next);
        if (next.type == CNNVIZ_LAYER_BATCHNORM && i == layer + 1) continue;
        if (next.type != CNNVIZ_LAYER_ACTIVATION) return -1;
        return next.activation == CNNVIZ_ACT_LINEAR || next.activation == CNNVIZ_ACT_SOFTMAX ? -1 : i;
    }
    return -1;
}

int cli_note_activated_output(const cnnviz_model *m, int layer, const cli_common *c) {
    int act = cli_activated_output(m, layer);
    if (act >= 0 && !c->quiet) {
        cnnviz_layer_info li, al;
        cnnviz_model_layer_info(m, layer, &li);
        cnnviz_model_layer_info(m, act, &al);
        fprintf(stderr, "layer '%s' is linear: its activated output is layer '%s' (%s)\n", li.name, al.name,
                cnnviz_activation_name(al.activation));
    }
    return act;
}

char *cli_read_text(const char *path, size_t max_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error(path, "cannot open (%s)", strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0, got;
    char *s = malloc(cap);
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n > max_bytes) {
            free(s);
            fclose(f);
            cli_error(path, "larger than %zu bytes, too large for this file type", max_bytes);
            return NULL;
        }
        if (n + 1 < cap) continue;
        char *bigger = realloc(s, cap *= 2);
        if (!bigger) free(s);
        s = bigger;
    }
    int bad = ferror(f);
    fclose(f);
    if (!s || bad) {
        free(s);
        cli_error(path, "cannot read");
        return NULL;
    }
    s[n] = 0;
    return s;
}

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

int cli_class_names(const cnnviz_model *m, const char *arg, int classes, cli_class_labels *out) {
    memset(out, 0, sizeof *out);
    const char *dataset = cnnviz_model_meta(m, "cnnviz_dataset");
    if (!arg && !(dataset && strcmp(dataset, "fashion") == 0)) return 0;
    if (!arg || strcmp(arg, "fashion") == 0) {
        if (classes != 10) return arg ? cli_error(NULL, "--class-names fashion: the model has %d classes, not 10", classes) : 0;
        for (int k = 0; k < 10; k++) out->names[k] = fashion_names[k];
        out->n = 10;
        return 0;
    }
    if (!(out->text = cli_read_text(arg, 1 << 20))) return CLI_RUNTIME;
    char *save = NULL;
    for (char *line = strtok_r(out->text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (out->n == CLI_MAX_CLASSES) break;
        out->names[out->n++] = line;
    }
    if (out->n != classes) {
        int n = out->n;
        cli_class_labels_free(out);
        return cli_error(arg, "%d class names for the model's %d classes (one name a line)", n, classes);
    }
    return 0;
}

void cli_class_labels_free(cli_class_labels *l) {
    free(l->text);
    memset(l, 0, sizeof *l);
}
