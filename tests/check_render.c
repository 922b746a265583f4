// labels: unit render
/* Figures: colormap tables and the value-to-colour rule, option parsing,
 * pixel checksums, golden checksums of synthetic figures (the reference PNGs
 * sit beside the hashes in tests/golden/ so a failure can be looked at),
 * byte-identical PNG/SVG/PDF on repeated renders, provenance chunks,
 * output errors that leave no file behind, and activation dumps read back.
 *
 * CNNVIZ_UPDATE_GOLDEN=1 rewrites tests/golden/render.sha256 and the PNGs
 * after a deliberate change of the figures; look at them before committing. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cnnviz/io.h"
#include "cnnviz/render.h"
#include "testutil.h"

/* Cairo 1.16's toy font API leaves a few fontconfig patterns unreferenced
 * at exit (a plain select_font_face + show_text program shows it too); they
 * are not ours, so LeakSanitizer is told to ignore allocations made inside
 * fontconfig. This hook is only read when the sanitizer is linked in. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }
const char *__lsan_default_options(void); /* and say nothing about it on stderr */
const char *__lsan_default_options(void) { return "print_suppressions=0"; }

#define GOLDEN_DIR CNNVIZ_SOURCE_DIR "/tests/golden"
#define GOLDEN_LIST GOLDEN_DIR "/render.sha256"

/* --- synthetic data, exact on every platform (integer arithmetic only) ----- */

static float pattern(int i, int j, int c, int salt) {
    return (float)((i * 7 + j * 13 + c * 5 + salt) % 17) / 16.0f;
}

/* (h,w,c) maps: a diagonal bar per map plus a small texture, relu-like zeros */
static float *synth_maps(int h, int w, int c, int salt) {
    float *x = malloc((size_t)h * w * c * sizeof *x);
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            for (int k = 0; k < c; k++) {
                float bar = abs(i - j - (k % 5) + 2) < 2 ? 1.0f + (float)k / 8.0f : 0.0f;
                float v = bar + pattern(i, j, k, salt) * 0.25f - 0.05f;
                x[((size_t)i * w + j) * c + k] = k == 3 ? 0.0f : (v > 0 ? v : 0.0f); /* map 3 is dead */
            }
    return x;
}

typedef struct {
    float *input, *conv, *pool, *dense;
    float probs[10];
    cnnviz_panel in_panel, panels[4];
} synth_activations;

static void synth_activations_init(synth_activations *s) {
    s->input = synth_maps(12, 12, 1, 0);
    s->conv = synth_maps(10, 10, 8, 1);
    s->pool = synth_maps(5, 5, 8, 2);
    s->dense = malloc(20 * sizeof(float));
    for (int i = 0; i < 20; i++) s->dense[i] = (float)((i * 5) % 7) / 3.0f;
    for (int i = 0; i < 10; i++) s->probs[i] = i == 4 ? 0.82f : 0.02f;
    s->in_panel = (cnnviz_panel){"input", NULL, "synthetic", cnnviz_shape3(12, 12, 1), s->input, CNNVIZ_PANEL_AUTO, NULL};
    s->panels[0] = (cnnviz_panel){"conv2d", "Conv2D", "relu", cnnviz_shape3(10, 10, 8), s->conv, CNNVIZ_PANEL_AUTO, NULL};
    s->panels[1] = (cnnviz_panel){"max_pooling2d", "MaxPooling2D", NULL, cnnviz_shape3(5, 5, 8), s->pool,
                                  CNNVIZ_PANEL_AUTO, NULL};
    s->panels[2] = (cnnviz_panel){"dense", "Dense", "relu", cnnviz_shape1(20), s->dense, CNNVIZ_PANEL_AUTO, NULL};
    s->panels[3] = (cnnviz_panel){"dense_1", "Dense", "softmax", cnnviz_shape1(10), s->probs, CNNVIZ_PANEL_PROBS, NULL};
}

static void synth_activations_free(synth_activations *s) {
    free(s->input);
    free(s->conv);
    free(s->pool);
    free(s->dense);
}

static const char *history_json =
    "{\"loss\":[0.42,0.12,0.083,0.064,0.052],\"accuracy\":[0.87,0.963,0.975,0.98,0.984],"
    "\"val_loss\":[0.1,0.066,0.055,0.05,0.051],\"val_accuracy\":[0.968,0.979,0.983,0.985,0.985]}";

/* The figures under golden test, by name. */
static cnnviz_status render_named(const char *name, const char *path, cnnviz_error *err) {
    if (strncmp(name, "synth_", 6) == 0) name += 6;
    cnnviz_render_options o = cnnviz_render_options_default();
    o.prov.command = "check_render";
    cnnviz_status st = CNNVIZ_ERR_INVALID;
    if (strncmp(name, "activations", 11) == 0) {
        synth_activations s;
        synth_activations_init(&s);
        if (strcmp(name, "activations_viridis_map") == 0) {
            o.cmap = CNNVIZ_CMAP_VIRIDIS;
            o.norm.kind = CNNVIZ_NORM_MAP;
        } else if (strcmp(name, "activations_magma_global") == 0) {
            o.cmap = CNNVIZ_CMAP_MAGMA;
            o.norm.kind = CNNVIZ_NORM_GLOBAL;
        } else if (strcmp(name, "activations_rdbu_fixed") == 0) {
            o.cmap = CNNVIZ_CMAP_RDBU;
            o.norm = (cnnviz_norm){CNNVIZ_NORM_FIXED, -1.0f, 1.0f};
            o.pixel = 3;
        }
        st = cnnviz_render_activations(path, &s.in_panel, s.panels, 4, &o, err);
        synth_activations_free(&s);
    } else if (strncmp(name, "kernels", 7) == 0) {
        int in = strcmp(name, "kernels_matrix") == 0 ? 12 : 1, out = 16;
        float *k = malloc((size_t)9 * in * out * sizeof *k), b[16];
        for (int i = 0; i < 9 * in * out; i++) k[i] = (float)((i * 11) % 21 - 10) / 40.0f;
        for (int i = 0; i < out; i++) b[i] = (float)(i % 5 - 2) / 100.0f;
        cnnviz_kernel_panel kp = {"conv2d", "Conv2D", {4, {3, 3, in, out}}, k, b, 0, 0};
        o.cmap = CNNVIZ_CMAP_RDBU;
        st = cnnviz_render_kernels(path, &kp, &o, err);
        free(k);
    } else if (strcmp(name, "history") == 0) {
        st = cnnviz_render_history(path, history_json, &o, err);
    } else if (strcmp(name, "patterns") == 0) {
        float *img = synth_maps(14, 14, 6, 3);
        /* (n,h,w,1) from (h,w,n) */
        float *tiles = malloc((size_t)6 * 14 * 14 * sizeof *tiles);
        for (int n = 0; n < 6; n++)
            for (int p = 0; p < 14 * 14; p++) tiles[n * 196 + p] = img[p * 6 + n];
        int map[6] = {0, 2, 4, 6, 8, 10}, dead[6] = {0, 0, 0, 1, 0, 0};
        float act[6] = {1.5f, 2.25f, 0.5f, 0.0f, 12.0f, 3.0f};
        cnnviz_pattern_set ps = {.layer = "conv2d_1", .n = 6, .h = 14, .w = 14, .c = 1, .images = tiles, .map = map, .activation = act, .dead = dead};
        o.cmap = CNNVIZ_CMAP_VIRIDIS;
        st = cnnviz_render_patterns(path, &ps, &o, err);
        free(img);
        free(tiles);
    }
    return st;
}

/* "synth_" keeps them apart from the real-model figures of tests/cli/render_golden.sh */
static const char *const golden_names[] = {
    "synth_activations_gray_layer", "synth_activations_viridis_map", "synth_activations_magma_global",
    "synth_activations_rdbu_fixed", "synth_kernels_tiles",           "synth_kernels_matrix",
    "synth_history",                "synth_patterns",
};

/* --- helpers ------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void png_checksum(const char *path, char hex[65], int *w, int *h) {
    uint8_t *rgba = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    ck_assert_msg(cnnviz_image_read_rgba8(path, w, h, &rgba, &err) == CNNVIZ_OK, "%s: %s", path, err.msg);
    cnnviz_pixels_sha256(rgba, *w, *h, hex);
    free(rgba);
}

/* "HASH  WxH  NAME.png" lines, the format `cnnviz checksum` prints */
static int golden_lookup(const char *name, char hex[65], int *w, int *h) {
    FILE *f = fopen(GOLDEN_LIST, "r");
    if (!f) return 0;
    char line[512], file[256];
    snprintf(file, sizeof file, "%s.png", name);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char fh[65], fn[256];
        int fw, fhh;
        if (sscanf(line, "%64s %dx%d %255s", fh, &fw, &fhh, fn) == 4 && strcmp(fn, file) == 0) {
            memcpy(hex, fh, 65);
            *w = fw;
            *h = fhh;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void golden_update(const char *name, const char *png, const char *hex, int w, int h) {
    char dst[1024], cmd[4096];
    snprintf(dst, sizeof dst, "%s/%s.png", GOLDEN_DIR, name);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", png, dst);
    ck_assert_int_eq(system(cmd), 0);
    /* smaller references, same pixels (tests/golden/optimize.py; skipped without Pillow) */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/optimize.py' '%s' > /dev/null 2>&1", GOLDEN_DIR, dst);
    if (system(cmd) != 0) { /* the plain copy is a valid reference too */ }
    /* rewrite the list without this name, then append it */
    size_t len = 0;
    char *old = read_file(GOLDEN_LIST, &len);
    FILE *f = fopen(GOLDEN_LIST, "w");
    ck_assert_ptr_nonnull(f);
    char file[256];
    snprintf(file, sizeof file, "  %s.png\n", name);
    for (char *line = old ? strtok(old, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char with_nl[600];
        snprintf(with_nl, sizeof with_nl, "%s\n", line);
        if (!strstr(with_nl, file)) fputs(with_nl, f);
    }
    fprintf(f, "%s  %dx%d  %s.png\n", hex, w, h, name);
    fclose(f);
    free(old);
}

/* --- colormaps and scales ------------------------------------------------------ */

START_TEST(cmap_tables_match_matplotlib) {
    /* end and middle colours as matplotlib 3.6 gives them (cmap(i, bytes=True)) */
    static const struct {
        cnnviz_cmap c;
        float v;
        uint8_t rgb[3];
    } want[] = {
        {CNNVIZ_CMAP_GRAY, 0.0f, {0, 0, 0}},         {CNNVIZ_CMAP_GRAY, 1.0f, {255, 255, 255}},
        {CNNVIZ_CMAP_GRAY, 0.5f, {128, 128, 128}},   {CNNVIZ_CMAP_VIRIDIS, 0.0f, {68, 1, 84}},
        {CNNVIZ_CMAP_VIRIDIS, 1.0f, {253, 231, 36}}, {CNNVIZ_CMAP_MAGMA, 0.0f, {0, 0, 3}},
        {CNNVIZ_CMAP_MAGMA, 1.0f, {251, 252, 191}},  {CNNVIZ_CMAP_RDBU, 0.0f, {103, 0, 31}},
        {CNNVIZ_CMAP_RDBU, 1.0f, {5, 48, 97}},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        uint8_t rgb[3];
        cnnviz_cmap_rgb(want[i].c, want[i].v, 0.0f, 1.0f, rgb);
        ck_assert_msg(memcmp(rgb, want[i].rgb, 3) == 0, "%s(%g) = (%d,%d,%d)", cnnviz_cmap_name(want[i].c),
                      (double)want[i].v, rgb[0], rgb[1], rgb[2]);
    }
}
END_TEST

START_TEST(cmap_level_rule) {
    uint8_t a[3], b[3];
    /* level = floor(x*256), 1.0 -> 255, out of range -> ends, NaN and lo == hi -> level 0 */
    cnnviz_cmap_rgb(CNNVIZ_CMAP_GRAY, 0.3f, 0.0f, 1.0f, a);
    ck_assert_int_eq(a[0], 76); /* 0.3*256 = 76.8 */
    cnnviz_cmap_rgb(CNNVIZ_CMAP_GRAY, 2.0f, 0.0f, 4.0f, a);
    ck_assert_int_eq(a[0], 128);
    cnnviz_cmap_rgb(CNNVIZ_CMAP_GRAY, -5.0f, 0.0f, 1.0f, a);
    ck_assert_int_eq(a[0], 0);
    cnnviz_cmap_rgb(CNNVIZ_CMAP_GRAY, 7.0f, 0.0f, 1.0f, a);
    ck_assert_int_eq(a[0], 255);
    cnnviz_cmap_rgb(CNNVIZ_CMAP_GRAY, NAN, 0.0f, 1.0f, a);
    ck_assert_int_eq(a[0], 0);
    cnnviz_cmap_rgb(CNNVIZ_CMAP_VIRIDIS, 3.0f, 3.0f, 3.0f, a);
    cnnviz_cmap_rgb(CNNVIZ_CMAP_VIRIDIS, 0.0f, 0.0f, 1.0f, b);
    ck_assert(memcmp(a, b, 3) == 0);
}
END_TEST

START_TEST(cmap_names) {
    cnnviz_cmap c;
    ck_assert_int_eq(cnnviz_cmap_parse("viridis", &c), 0);
    ck_assert_int_eq(c, CNNVIZ_CMAP_VIRIDIS);
    ck_assert_int_eq(cnnviz_cmap_parse("rdbu", &c), 0);
    ck_assert_int_eq(c, CNNVIZ_CMAP_RDBU);
    ck_assert_str_eq(cnnviz_cmap_name(c), "RdBu");
    ck_assert_int_eq(cnnviz_cmap_parse("jet", &c), -1);
}
END_TEST

START_TEST(norm_parsing) {
    cnnviz_norm n;
    cnnviz_error err;
    char buf[64];
    ck_assert_int_eq(cnnviz_norm_parse("map", &n, &err), CNNVIZ_OK);
    ck_assert_int_eq(n.kind, CNNVIZ_NORM_MAP);
    ck_assert_int_eq(cnnviz_norm_parse("fixed:-1:2.5", &n, &err), CNNVIZ_OK);
    ck_assert_int_eq(n.kind, CNNVIZ_NORM_FIXED);
    ck_assert(n.lo == -1.0f && n.hi == 2.5f);
    cnnviz_norm_format(&n, buf, sizeof buf);
    ck_assert_str_eq(buf, "fixed [-1, 2.5]");
    ck_assert_int_eq(cnnviz_norm_parse("fixed:2:1", &n, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "--norm: 'fixed:2:1' needs LO below HI");
    ck_assert_int_eq(cnnviz_norm_parse("fixed:a:1", &n, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "--norm: 'fixed:a:1' is not fixed:LO:HI with two numbers");
    ck_assert_int_eq(cnnviz_norm_parse("fixed:0:1x", &n, &err), CNNVIZ_ERR_INVALID);
    ck_assert_int_eq(cnnviz_norm_parse("channel", &n, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "--norm: 'channel' is not layer, map, global or fixed:LO:HI");
}
END_TEST

START_TEST(pixel_checksum_definition) {
    /* sha256(be32 width, be32 height, RGBA bytes), computed with Python's hashlib */
    const uint8_t px[4] = {1, 2, 3, 255};
    char hex[65];
    cnnviz_pixels_sha256(px, 1, 1, hex);
    ck_assert_str_eq(hex, "2c6d6454fa0f33ad896f0f3dc05130b5901d45c19ae189b41a2ad0772033cebe");
    /* the same bytes in another shape hash differently */
    const uint8_t two[8] = {1, 2, 3, 255, 1, 2, 3, 255};
    char a[65], b[65];
    cnnviz_pixels_sha256(two, 2, 1, a);
    cnnviz_pixels_sha256(two, 1, 2, b);
    ck_assert_str_ne(a, b);
}
END_TEST

/* --- goldens --------------------------------------------------------------------- */

START_TEST(golden_figures) {
    const char *dir = scratch_dir();
    int update = getenv("CNNVIZ_UPDATE_GOLDEN") && *getenv("CNNVIZ_UPDATE_GOLDEN") == '1';
    int failures = 0;
    for (size_t i = 0; i < sizeof golden_names / sizeof *golden_names; i++) {
        const char *name = golden_names[i];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.png", dir, name);
        cnnviz_error err;
        cnnviz_error_clear(&err);
        ck_assert_msg(render_named(name, path, &err) == CNNVIZ_OK, "%s: %s", name, err.msg);
        char hex[65], want[65];
        int w, h, ww, wh;
        png_checksum(path, hex, &w, &h);
        if (update) {
            golden_update(name, path, hex, w, h);
            continue;
        }
        int listed = golden_lookup(name, want, &ww, &wh);
        if (!listed) {
            printf("golden %s: no entry in %s (run with CNNVIZ_UPDATE_GOLDEN=1)\n", name, GOLDEN_LIST);
            failures++;
        } else if (strcmp(hex, want) != 0 || w != ww || h != wh) {
            printf("golden %s: %s %dx%d, expected %s %dx%d; compare %s with %s/%s.png\n", name, hex, w, h, want, ww,
                   wh, path, GOLDEN_DIR, name);
            failures++;
        }
        /* the reference kept for looking at decodes to the listed pixels */
        char ref[1024], rhex[65];
        int rw, rh;
        snprintf(ref, sizeof ref, "%s/%s.png", GOLDEN_DIR, name);
        if (!listed) {
            continue;
        } else if (file_exists(ref)) {
            png_checksum(ref, rhex, &rw, &rh);
            if (strcmp(rhex, want) != 0) {
                printf("golden %s: the reference %s does not decode to its checksum\n", name, ref);
                failures++;
            }
        } else {
            printf("golden %s: no reference PNG %s\n", name, ref);
            failures++;
        }
    }
    ck_assert_msg(failures == 0, "%d figure(s) differ from tests/golden (see above)", failures);
}
END_TEST

/* --- determinism and provenance ------------------------------------------------------ */

/* Render in a child process: Cairo numbers SVG ids from a process-wide
 * counter, so the same figure twice in one process differs in its ids; a
 * fresh process is what a user's repeated command is. */
static void render_in_child(const char *name, const char *path) {
    fflush(stdout);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        cnnviz_error err;
        _exit(render_named(name, path, &err) == CNNVIZ_OK ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rendering %s failed", path);
}

START_TEST(byte_identical_formats) {
    const char *dir = scratch_dir();
    const char *ext[3] = {"png", "svg", "pdf"};
    const char *figs[3] = {"activations_gray_layer", "kernels_matrix", "history"};
    for (int f = 0; f < 3; f++)
        for (int e = 0; e < 3; e++) {
            char a[1024], b[1024];
            snprintf(a, sizeof a, "%s/a_%s.%s", dir, figs[f], ext[e]);
            snprintf(b, sizeof b, "%s/b_%s.%s", dir, figs[f], ext[e]);
            render_in_child(figs[f], a);
            render_in_child(figs[f], b);
            size_t la, lb;
            char *da = read_file(a, &la), *db = read_file(b, &lb);
            ck_assert_ptr_nonnull(da);
            ck_assert_msg(la == lb && memcmp(da, db, la) == 0, "%s and %s differ", a, b);
            ck_assert_uint_gt(la, 1000);
            free(da);
            free(db);
        }
}
END_TEST

static int contains(const char *buf, size_t len, const char *needle, size_t nlen) {
    for (size_t i = 0; i + nlen <= len; i++)
        if (memcmp(buf + i, needle, nlen) == 0) return 1;
    return 0;
}

START_TEST(provenance_and_no_dates) {
    const char *dir = scratch_dir();
    synth_activations s;
    synth_activations_init(&s);
    cnnviz_render_options o = cnnviz_render_options_default();
    o.prov = (cnnviz_provenance){"model.h5", "ab12", "cnnviz activations model.h5 x.png", "7"};
    cnnviz_error err;
    char png[1024], pdf[1024], svg[1024];
    snprintf(png, sizeof png, "%s/p.png", dir);
    snprintf(pdf, sizeof pdf, "%s/p.pdf", dir);
    snprintf(svg, sizeof svg, "%s/p.svg", dir);
    ck_assert_int_eq(cnnviz_render_activations(png, &s.in_panel, s.panels, 4, &o, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_render_activations(pdf, &s.in_panel, s.panels, 4, &o, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_render_activations(svg, &s.in_panel, s.panels, 4, &o, &err), CNNVIZ_OK);
    synth_activations_free(&s);
    size_t n;
    char *d = read_file(png, &n);
    ck_assert(memcmp(d, "\x89PNG", 4) == 0);
    static const char sw[] = "tEXtSoftware\0cnnviz ", sha[] = "tEXtModel SHA-256\0ab12",
                      cmd[] = "tEXtCommand\0cnnviz activations model.h5 x.png", seed[] = "tEXtSeed\0" "7";
    ck_assert(contains(d, n, sw, sizeof sw - 1));
    ck_assert(contains(d, n, sha, sizeof sha - 1));
    ck_assert(contains(d, n, cmd, sizeof cmd - 1));
    ck_assert(contains(d, n, seed, sizeof seed - 1));
    ck_assert(!contains(d, n, "tIME", 4));
    free(d);
    d = read_file(pdf, &n);
    ck_assert(memcmp(d, "%PDF", 4) == 0);
    ck_assert(!contains(d, n, "CreationDate", 12));
    ck_assert(!contains(d, n, "ModDate", 7));
    ck_assert(contains(d, n, "sha256 ab12", 11));
    free(d);
    d = read_file(svg, &n);
    static const char svg_sha[] = "<cnnviz:model-sha256 xmlns:cnnviz=\"urn:cnnviz\">ab12</cnnviz:model-sha256>";
    ck_assert(contains(d, n, svg_sha, sizeof svg_sha - 1));
    ck_assert(contains(d, n, "</svg>", 6));
    free(d);
}
END_TEST

/* --- geometry --------------------------------------------------------------------------- */

/* A 2x2 map [0 1; 1 0] at 5 px per value must come out as 5x5 blocks of
 * exactly the end colours of the colormap, with no smoothing between them. */
START_TEST(crisp_squares) {
    const char *dir = scratch_dir();
    float map[4] = {0, 1, 1, 0};
    cnnviz_panel p = {"m", "Conv2D", NULL, cnnviz_shape3(2, 2, 1), map, CNNVIZ_PANEL_AUTO, NULL};
    cnnviz_render_options o = cnnviz_render_options_default();
    o.cmap = CNNVIZ_CMAP_VIRIDIS;
    o.pixel = 5;
    char path[1024];
    snprintf(path, sizeof path, "%s/sq.png", dir);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_render_activations(path, NULL, &p, 1, &o, &err), CNNVIZ_OK);
    int w, h;
    uint8_t *px;
    ck_assert_int_eq(cnnviz_image_read_rgba8(path, &w, &h, &px, &err), CNNVIZ_OK);
    const uint8_t lo[3] = {68, 1, 84}, hi[3] = {253, 231, 36};
    int found = 0;
    for (int y = 0; y + 10 <= h && !found; y++)
        for (int x = 0; x + 10 <= w && !found; x++) {
            if (memcmp(px + ((size_t)y * w + x) * 4, lo, 3) != 0) continue;
            /* the first viridis-low pixel is the tile's top-left corner */
            found = 1;
            for (int dy = 0; dy < 10; dy++)
                for (int dx = 0; dx < 10; dx++) {
                    const uint8_t *q = px + ((size_t)(y + dy) * w + x + dx) * 4;
                    const uint8_t *want = ((dy < 5) == (dx < 5)) ? lo : hi;
                    ck_assert_msg(memcmp(q, want, 3) == 0 && q[3] == 255, "pixel (%d,%d) of the tile", dx, dy);
                }
        }
    ck_assert_msg(found, "no tile found");
    free(px);
}
END_TEST

/* The activations figure of a 32-map 26x26 layer stays within about 1000 px. */
START_TEST(width_of_a_32_map_layer) {
    const char *dir = scratch_dir();
    float *x = synth_maps(26, 26, 32, 5);
    cnnviz_panel p = {"conv2d_5", "Conv2D", "relu", cnnviz_shape3(26, 26, 32), x, CNNVIZ_PANEL_AUTO, NULL};
    float in[28 * 28] = {0};
    cnnviz_panel input = {"input", NULL, NULL, cnnviz_shape3(28, 28, 1), in, CNNVIZ_PANEL_AUTO, NULL};
    cnnviz_render_options o = cnnviz_render_options_default();
    char path[1024];
    snprintf(path, sizeof path, "%s/w.png", dir);
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_render_activations(path, &input, &p, 1, &o, &err), CNNVIZ_OK);
    free(x);
    char hex[65];
    int w, h;
    png_checksum(path, hex, &w, &h);
    ck_assert_int_le(w, 1000);
    ck_assert_int_ge(w, 500); /* tiles of about 80 px in 8 columns */
}
END_TEST

/* --- errors -------------------------------------------------------------------------------- */

START_TEST(output_errors_leave_no_file) {
    const char *dir = scratch_dir();
    synth_activations s;
    synth_activations_init(&s);
    cnnviz_render_options o = cnnviz_render_options_default();
    cnnviz_error err;
    char path[1024];

    snprintf(path, sizeof path, "%s/fig.jpg", dir);
    ck_assert_int_eq(cnnviz_render_activations(path, &s.in_panel, s.panels, 4, &o, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "unknown output format '.jpg' (use .png, .svg or .pdf)");
    ck_assert_str_eq(err.file, path);

    snprintf(path, sizeof path, "%s/figure", dir);
    ck_assert_int_eq(cnnviz_render_kernels(path, NULL, &o, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no output format in the name (use .png, .svg or .pdf)");

    snprintf(path, sizeof path, "%s/no/such/folder/fig.png", dir);
    ck_assert_int_eq(cnnviz_render_history(path, history_json, &o, &err), CNNVIZ_ERR_IO);
    ck_assert_str_eq(err.file, path);

    ck_assert_int_eq(count_entries(dir), 0);

    /* an unwritable folder (skipped as root, which may write anywhere) */
    char ro[900];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    ck_assert_int_eq(mkdir(ro, 0555), 0);
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/fig.svg", ro);
        ck_assert_int_eq(cnnviz_render_activations(path, &s.in_panel, s.panels, 4, &o, &err), CNNVIZ_ERR_IO);
        ck_assert_int_eq(count_entries(ro), 0);
    }
    synth_activations_free(&s);
}
END_TEST

START_TEST(history_errors) {
    const char *dir = scratch_dir();
    cnnviz_render_options o = cnnviz_render_options_default();
    cnnviz_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/h.png", dir);
    ck_assert_int_eq(cnnviz_render_history(path, "{\"loss\": [0.5,", &o, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "the training history is not a JSON object");
    ck_assert_int_eq(cnnviz_render_history(path, "{\"lr\": [0.001]}", &o, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "the training history has no loss or accuracy");
    ck_assert_int_eq(cnnviz_render_history(path, "{\"loss\": 3}", &o, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "the training history has a value that is not a list of numbers");
    ck_assert(!file_exists(path));
    /* old Keras names (acc, val_acc) and a single epoch still draw */
    ck_assert_int_eq(cnnviz_render_history(path, "{\"acc\": [0.9], \"val_acc\": [0.95]}", &o, &err), CNNVIZ_OK);
    ck_assert(file_exists(path));
}
END_TEST

START_TEST(bad_panels_rejected) {
    const char *dir = scratch_dir();
    cnnviz_render_options o = cnnviz_render_options_default();
    cnnviz_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/x.png", dir);
    ck_assert_int_eq(cnnviz_render_activations(path, NULL, NULL, 0, &o, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "nothing to draw");
    float v = 1;
    cnnviz_pattern_set ps = {.layer = "x", .n = 1, .h = 1, .w = 1, .c = 2, .images = &v};
    ck_assert_int_eq(cnnviz_render_patterns(path, &ps, &o, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "patterns need n >= 1 images of 1 or 3 channels");
    ck_assert(!file_exists(path));
}
END_TEST

/* --- dumps ------------------------------------------------------------------------------------ */

/* What `cnnviz activations --dump` writes comes back through the library's
 * readers bit for bit, in each layer's own shape, equal to the engine's
 * outputs. */
START_TEST(dumps_round_trip) {
    const char *dir = scratch_dir();
    cnnviz_shape in = cnnviz_shape3(12, 12, 1);
    cnnviz_model *m = cnnviz_model_new(&in);
    cnnviz_error err;
    cnnviz_layer_spec s = cnnviz_layer_spec_init(CNNVIZ_LAYER_CONV2D);
    s.filters = 4;
    s.activation = CNNVIZ_ACT_RELU;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_MAXPOOL2D);
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_FLATTEN);
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    s = cnnviz_layer_spec_init(CNNVIZ_LAYER_DENSE);
    s.units = 10;
    s.activation = CNNVIZ_ACT_SOFTMAX;
    ck_assert_int_eq(cnnviz_model_add(m, &s, &err), CNNVIZ_OK);
    ck_assert_int_eq(cnnviz_model_finalize(m, &err), CNNVIZ_OK);
    cnnviz_rng rng;
    cnnviz_rng_seed(&rng, 5, 0);
    cnnviz_model_init_weights(m, &rng);
    float *x = synth_maps(12, 12, 1, 4);
    cnnviz_workspace_options wo = cnnviz_workspace_options_init(1);
    cnnviz_workspace *ws = cnnviz_workspace_new(m, &wo, &err);
    ck_assert_ptr_nonnull(ws);
    cnnviz_forward(ws, x, 1, NULL);

    int nl = cnnviz_model_num_layers(m);
    cnnviz_dataset sets[8];
    char h5[1024];
    snprintf(h5, sizeof h5, "%s/acts.h5", dir);
    for (int i = 0; i < nl; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        sets[i] = (cnnviz_dataset){li.name, cnnviz_layer_output(ws, i, NULL), li.output_shape.rank, {0}};
        for (int d = 0; d < li.output_shape.rank; d++) sets[i].dims[d] = li.output_shape.dim[d];
        char npy[1100];
        snprintf(npy, sizeof npy, "%s/%s.npy", dir, li.name);
        ck_assert_int_eq(cnnviz_npy_write(npy, sets[i].data, sets[i].dims, sets[i].rank, &err), CNNVIZ_OK);
    }
    ck_assert_int_eq(cnnviz_h5_write_datasets(h5, sets, nl, &err), CNNVIZ_OK);
    for (int i = 0; i < nl; i++) {
        cnnviz_layer_info li;
        cnnviz_model_layer_info(m, i, &li);
        size_t n = cnnviz_shape_size(&li.output_shape);
        float *back = NULL;
        int rank = 0, dims[5];
        ck_assert_int_eq(cnnviz_h5_read_dataset(h5, li.name, &back, &rank, dims, &err), CNNVIZ_OK);
        ck_assert_int_eq(rank, li.output_shape.rank);
        for (int d = 0; d < rank; d++) ck_assert_int_eq(dims[d], li.output_shape.dim[d]);
        ck_assert(memcmp(back, cnnviz_layer_output(ws, i, NULL), n * sizeof(float)) == 0);
        free(back);
        char npy[1100];
        snprintf(npy, sizeof npy, "%s/%s.npy", dir, li.name);
        int nrank, ndims[8];
        size_t count;
        float *nb = read_npy_f32(npy, &nrank, ndims, &count);
        ck_assert_ptr_nonnull(nb);
        ck_assert_int_eq(nrank, li.output_shape.rank);
        ck_assert_uint_eq(count, n);
        ck_assert(memcmp(nb, cnnviz_layer_output(ws, i, NULL), n * sizeof(float)) == 0);
        free(nb);
    }
    cnnviz_workspace_free(ws);
    cnnviz_model_free(m);
    free(x);
}
END_TEST

static Suite *make_render_suite(void) {
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("render");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cmap_tables_match_matplotlib);
    tcase_add_test(tc, cmap_level_rule);
    tcase_add_test(tc, cmap_names);
    tcase_add_test(tc, norm_parsing);
    tcase_add_test(tc, pixel_checksum_definition);
    tcase_add_test(tc, golden_figures);
    tcase_add_test(tc, byte_identical_formats);
    tcase_add_test(tc, provenance_and_no_dates);
    tcase_add_test(tc, crisp_squares);
    tcase_add_test(tc, width_of_a_32_map_layer);
    tcase_add_test(tc, output_errors_leave_no_file);
    tcase_add_test(tc, history_errors);
    tcase_add_test(tc, bad_panels_rejected);
    tcase_add_test(tc, dumps_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(make_render_suite()); }
