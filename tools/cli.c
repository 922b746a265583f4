/* Shared pieces of the cnnviz command (see cli.h). */
#include "cli.h"

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
    {"threads", OPT_THREADS, "N", "threads for the engine (default: all cores)"},
    {"json", OPT_JSON, NULL, "print machine-readable results on stdout"},
    {"quiet", OPT_QUIET, NULL, "no progress or reports on stderr"},
    {"device", OPT_DEVICE, "DEV", "cpu (cuda is not available in this build)"},
    {"seed", OPT_SEED, "S", "seed of the random generator"},
    {"input-scale", OPT_INPUT_SCALE, "S", "unit (x/255), raw (0..255), center (x/255-0.5) or meanstd:M:S, for models that do not record it"},
    {"transpose", OPT_TRANSPOSE, NULL, "feed images transposed (for models trained on transposed images)"},
    {0},
};
static const int common_bits[] = {CLI_COMMON_THREADS, CLI_COMMON_JSON,  CLI_COMMON_QUIET, CLI_COMMON_DEVICE,
                                  CLI_COMMON_SEED,    CLI_COMMON_SCALE, CLI_COMMON_SCALE};

static void print_option(const cli_option *o) {
    char left[64];
    if (o->key > 0 && o->key < 256)
        snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    else
        snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    printf("  %-24s %s\n", left, o->help);
}

static void print_help(const cli_spec *spec) {
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
        case OPT_INPUT_SCALE: common->input_scale = arg; continue;
        case OPT_TRANSPOSE: common->transpose = 1; continue;
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

const char *cli_default_model(void) {
    const char *env = getenv("CNNVIZ_MODEL");
    if (env && *env) return env;
    static char buf[PATH_MAX + 64];
    struct stat st;
#ifdef CNNVIZ_SOURCE_DIR
    snprintf(buf, sizeof buf, "%s/samples/model.h5", CNNVIZ_SOURCE_DIR);
    if (stat(buf, &st) == 0) return buf;
#endif
    /* next to the binary: <prefix>/bin/cnnviz -> <prefix>/share/cnnviz/model.h5 */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, sizeof buf, "%s/../share/cnnviz/model.h5", exe);
            if (stat(buf, &st) == 0) return buf;
        }
    }
    return "samples/model.h5";
}

int cli_is_model_path(const char *arg) {
    const char *dot = strrchr(arg, '.');
    return dot && (strcasecmp(dot, ".h5") == 0 || strcasecmp(dot, ".keras") == 0 || strcasecmp(dot, ".hdf5") == 0);
}

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

cnnviz_model *cli_load_model(const char *path, const cli_common *common) {
    if (!path) path = cli_default_model();
    cnnviz_input_scale scale;
    if (common->input_scale && parse_scale(common->input_scale, &scale)) {
        cli_usage_error(NULL, "--input-scale: '%s' is not unit, raw, center or meanstd:M:S", common->input_scale);
        return NULL;
    }
    cnnviz_model *m = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    if (cnnviz_model_load(path, &m, &err) != CNNVIZ_OK) {
        if (!err.file[0]) snprintf(err.file, sizeof err.file, "%s", path);
        cli_report(&err);
        return NULL;
    }
    if (common->input_scale) cnnviz_model_set_input_scale(m, scale);
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
            cnnviz_idx_images_free(&im);
            return cli_error(path, "image index %ld is out of range (the file has %d images)", k, im.count);
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

int cli_find_dataset(const char *name, const char *split, const char *dir, char *images, char *labels, size_t n) {
    int fashion = strcmp(name, "fashion") == 0 || strcmp(name, "fashion-mnist") == 0;
    if (!fashion && strcmp(name, "mnist") != 0)
        return cli_usage_error(NULL, "unknown data set '%s' (use mnist or fashion)", name);
    if (dir) {
        if (find_pair(dir, split, images, labels, n)) return 0;
        return cli_error(dir, "no %s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz] here", split, split);
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
    return cli_error(NULL, "%s %s set not found (give --data DIR, set CNNVIZ_DATA, or install %s)",
                     fashion ? "Fashion-MNIST" : "MNIST", split, fashion ? "dataset-fashion-mnist" : "it under ../shared/data/mnist");
}
