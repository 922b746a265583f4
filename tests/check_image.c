// labels: unit data
/* Image decoding (every PNG colour type and depth, JPEG baseline and
 * progressive, damaged files), MNIST-style preprocessing, and grey PNG
 * output. Synthetic images are written here with libpng and libjpeg so the
 * expected pixels are known exactly. */
#define _GNU_SOURCE /* nftw */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "cnnviz/io.h"
#include "testutil.h"


static int count_entries(const char *dir) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* --- writing test PNGs ------------------------------------------------------------- */
typedef struct {
    int color, depth, interlace;
    const png_color *palette;
    int npalette;
    const png_byte *trns; /* palette alpha entries, or NULL */
    int ntrns;
    const png_color_16 *trns_colour; /* grey/RGB transparent colour, or NULL */
} png_spec;

/* rows: raw PNG sample bytes, row-major, big-endian for 16-bit */
static void write_png(const char *path, int w, int h, const png_spec *sp, const uint8_t *rows, size_t rowbytes) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng failed writing a test image");
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, sp->depth, sp->color, sp->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (sp->palette) png_set_PLTE(png, info, sp->palette, sp->npalette);
    if (sp->trns || sp->trns_colour)
        png_set_tRNS(png, info, sp->trns, sp->ntrns, (png_color_16p)sp->trns_colour);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rows + (size_t)y * rowbytes));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *decode_ok(const char *path, int want_w, int want_h) {
    int w = -1, h = -1;
    uint8_t *px = NULL;
    cnnviz_error err;
    cnnviz_error_clear(&err);
    cnnviz_status st = cnnviz_image_read_rgba8(path, &w, &h, &px, &err);
    ck_assert_msg(st == CNNVIZ_OK, "%s: %s", path, err.msg);
    ck_assert_int_eq(w, want_w);
    ck_assert_int_eq(h, want_h);
    ck_assert_ptr_nonnull(px);
    return px;
}

static void expect_rgba(const uint8_t *px, int i, int r, int g, int b, int a) {
    ck_assert_msg(px[4 * i] == r && px[4 * i + 1] == g && px[4 * i + 2] == b && px[4 * i + 3] == a,
                  "pixel %d is (%d,%d,%d,%d), expected (%d,%d,%d,%d)", i, px[4 * i], px[4 * i + 1], px[4 * i + 2],
                  px[4 * i + 3], r, g, b, a);
}

/* --- PNG colour types ------------------------------------------------------------------ */
START_TEST(test_png_grey8_and_interlaced) {
    uint8_t rows[5 * 7];
    for (int i = 0; i < 35; i++) rows[i] = (uint8_t)(i * 7);
    for (int inter = 0; inter < 2; inter++) {
        png_spec sp = {PNG_COLOR_TYPE_GRAY, 8, inter ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
        write_png(in_scratch("g.png"), 7, 5, &sp, rows, 7);
        uint8_t *px = decode_ok(in_scratch("g.png"), 7, 5);
        for (int i = 0; i < 35; i++) expect_rgba(px, i, i * 7, i * 7, i * 7, 255);
        free(px);
    }
}
END_TEST

START_TEST(test_png_grey_low_depths_and_trns) {
    /* 1, 2 and 4-bit grey scale up to 0..255 (1-bit: 0 and 255) */
    uint8_t row1[1] = {0xa0}; /* 1 0 1 0 */
    png_spec sp = {PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("g1.png"), 4, 1, &sp, row1, 1);
    uint8_t *px = decode_ok(in_scratch("g1.png"), 4, 1);
    expect_rgba(px, 0, 255, 255, 255, 255);
    expect_rgba(px, 1, 0, 0, 0, 255);
    free(px);
    uint8_t row2[1] = {0x1b}; /* 0 1 2 3 */
    sp.depth = 2;
    write_png(in_scratch("g2.png"), 4, 1, &sp, row2, 1);
    px = decode_ok(in_scratch("g2.png"), 4, 1);
    for (int i = 0; i < 4; i++) expect_rgba(px, i, i * 85, i * 85, i * 85, 255);
    free(px);
    /* tRNS on grey: value 5 of 4-bit is transparent */
    uint8_t row4[2] = {0x5f, 0x05};
    png_color_16 tc = {0, 0, 0, 0, 5};
    png_spec sp4 = {PNG_COLOR_TYPE_GRAY, 4, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, &tc};
    write_png(in_scratch("g4.png"), 4, 1, &sp4, row4, 2);
    px = decode_ok(in_scratch("g4.png"), 4, 1);
    expect_rgba(px, 0, 85, 85, 85, 0);
    expect_rgba(px, 1, 255, 255, 255, 255);
    expect_rgba(px, 2, 0, 0, 0, 255);
    expect_rgba(px, 3, 85, 85, 85, 0);
    free(px);
}
END_TEST

START_TEST(test_png_grey_alpha_and_16bit) {
    uint8_t ga[4] = {10, 20, 200, 255};
    png_spec sp = {PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("ga.png"), 2, 1, &sp, ga, 4);
    uint8_t *px = decode_ok(in_scratch("ga.png"), 2, 1);
    expect_rgba(px, 0, 10, 10, 10, 20);
    expect_rgba(px, 1, 200, 200, 200, 255);
    free(px);
    /* 16-bit RGBA, big-endian samples; scaled with rounding: 0x8080 -> 128, 0xffff -> 255, 0x0101 -> 1 */
    uint8_t rgba16[16] = {0x80, 0x80, 0xff, 0xff, 0x01, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0x7f, 0x7f};
    png_spec s16 = {PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("c16.png"), 2, 1, &s16, rgba16, 16);
    px = decode_ok(in_scratch("c16.png"), 2, 1);
    expect_rgba(px, 0, 128, 255, 1, 0);
    expect_rgba(px, 1, 0, 0, 255, 127);
    free(px);
    /* 16-bit grey */
    uint8_t g16[4] = {0x12, 0x34, 0xfe, 0xff};
    png_spec sg16 = {PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("g16.png"), 2, 1, &sg16, g16, 4);
    px = decode_ok(in_scratch("g16.png"), 2, 1);
    expect_rgba(px, 0, 0x12, 0x12, 0x12, 255);
    expect_rgba(px, 1, 0xfe, 0xfe, 0xfe, 255);
    free(px);
}
END_TEST

START_TEST(test_png_rgb_and_palette) {
    uint8_t rgb[6] = {1, 2, 3, 250, 251, 252};
    png_spec sp = {PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("rgb.png"), 2, 1, &sp, rgb, 6);
    uint8_t *px = decode_ok(in_scratch("rgb.png"), 2, 1);
    expect_rgba(px, 0, 1, 2, 3, 255);
    expect_rgba(px, 1, 250, 251, 252, 255);
    free(px);
    /* 1-bit palette with a transparent first entry, 9 pixels wide (a partial byte) */
    static const png_color pal[2] = {{255, 0, 0}, {0, 0, 255}};
    static const png_byte alpha[1] = {0};
    uint8_t rows[2 * 2] = {0x55, 0x00, 0xaa, 0x80};
    png_spec sp1 = {PNG_COLOR_TYPE_PALETTE, 1, PNG_INTERLACE_NONE, pal, 2, alpha, 1, NULL};
    write_png(in_scratch("p1.png"), 9, 2, &sp1, rows, 2);
    px = decode_ok(in_scratch("p1.png"), 9, 2);
    expect_rgba(px, 0, 255, 0, 0, 0);
    expect_rgba(px, 1, 0, 0, 255, 255);
    expect_rgba(px, 8, 255, 0, 0, 0);
    expect_rgba(px, 9, 0, 0, 255, 255);
    expect_rgba(px, 17, 0, 0, 255, 255);
    free(px);
    /* 4-bit palette without tRNS */
    static const png_color pal4[3] = {{0, 0, 0}, {10, 20, 30}, {200, 100, 50}};
    uint8_t row4[1] = {0x12};
    png_spec sp4 = {PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, pal4, 3, NULL, 0, NULL};
    write_png(in_scratch("p4.png"), 2, 1, &sp4, row4, 1);
    px = decode_ok(in_scratch("p4.png"), 2, 1);
    expect_rgba(px, 0, 10, 20, 30, 255);
    expect_rgba(px, 1, 200, 100, 50, 255);
    free(px);
}
END_TEST

/* --- JPEG -------------------------------------------------------------------------- */
static void write_jpeg(const char *path, int w, int h, int comps, int progressive, const uint8_t *px) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : (comps == 4 ? JCS_CMYK : JCS_RGB);
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_jpeg_baseline_progressive_grey) {
    int w = 40, h = 24;
    uint8_t *rgb = malloc((size_t)w * h * 3), *grey = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* two flat halves, so JPEG's loss stays small away from the edge */
            uint8_t *p = rgb + 3 * (y * w + x);
            p[0] = x < 20 ? 200 : 30;
            p[1] = x < 20 ? 60 : 30;
            p[2] = x < 20 ? 40 : 220;
            grey[y * w + x] = x < 20 ? 230 : 20;
        }
    const char *names[3] = {"base.jpg", "prog.jpg", "grey.jpeg"};
    for (int k = 0; k < 3; k++) {
        if (k < 2)
            write_jpeg(in_scratch(names[k]), w, h, 3, k == 1, rgb);
        else
            write_jpeg(in_scratch(names[k]), w, h, 1, 0, grey);
        uint8_t *px = decode_ok(in_scratch(names[k]), w, h);
        int probe[2] = {5 * w + 4, 12 * w + 35};
        for (int j = 0; j < 2; j++) {
            const uint8_t *p = px + 4 * probe[j];
            int want[3];
            if (k < 2)
                for (int c = 0; c < 3; c++) want[c] = rgb[3 * probe[j] + c];
            else
                want[0] = want[1] = want[2] = grey[probe[j]];
            for (int c = 0; c < 3; c++) ck_assert_msg(abs(p[c] - want[c]) <= 6, "%s channel %d: %d vs %d", names[k], c, p[c], want[c]);
            ck_assert_int_eq(p[3], 255);
        }
        free(px);
    }
    /* CMYK as Adobe stores it (inverted, 255 = no ink; libjpeg writes the
     * Adobe marker for CMYK): a red left half, a grey right half */
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        uint8_t *p = cmyk + 4 * i;
        int left = i % w < 20;
        p[0] = 255;
        p[1] = left ? 0 : 255;
        p[2] = left ? 0 : 255;
        p[3] = left ? 255 : 128;
    }
    write_jpeg(in_scratch("cmyk.jpg"), w, h, 4, 0, cmyk);
    free(cmyk);
    uint8_t *cp = decode_ok(in_scratch("cmyk.jpg"), w, h);
    const uint8_t *red = cp + 4 * (5 * w + 4), *grey_px = cp + 4 * (12 * w + 35);
    ck_assert_msg(red[0] >= 249 && red[1] <= 6 && red[2] <= 6, "(%d,%d,%d)", red[0], red[1], red[2]);
    for (int c = 0; c < 3; c++) ck_assert_msg(abs(grey_px[c] - 128) <= 6, "%d", grey_px[c]);
    free(cp);
    /* cut the progressive file short: a clean error, not a grey half image */
    size_t n;
    uint8_t *b = read_bytes(in_scratch("prog.jpg"), &n);
    write_bytes(in_scratch("cut.jpg"), b, n * 2 / 3);
    int w2, h2;
    uint8_t *px = (uint8_t *)1;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_image_read_rgba8(in_scratch("cut.jpg"), &w2, &h2, &px, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "truncated JPEG (the file ends early)");
    ck_assert_ptr_null(px);
    free(b);
    free(rgb);
    free(grey);
}
END_TEST

/* --- shared real files ----------------------------------------------------------------- */
typedef struct {
    const char *name;
    int w, h;
} known_size;

START_TEST(test_shared_digits_decode) {
    static const known_size files[] = {
        {"0_cleanwhite_1.png", 400, 400}, {"1_bilevel_1.png", 280, 280},      {"5_palette_1.png", 204, 192},
        {"4_graycanvas_1.png", 480, 480}, {"3_bold28_1.png", 28, 28},         {"5_thick80_1.png", 80, 80},
        {"6_smallrgba_1.png", 82, 96},    {"5_big2048_1.png", 2048, 2048},    {"5_transparent_1.png", 1239, 1428},
        {"3_paperphoto_1.jpg", 518, 518}, {"7_brushjpg_1.jpg", 600, 800},     {"7_brushjpg_2.jpg", 1080, 1741},
        {"2_tinyink_1.png", 2048, 1205},  {"1_widethin_1.png", 1507, 810},
    };
    char rel[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(rel, sizeof rel, "data/digits/%s", files[i].name);
        uint8_t *px = decode_ok(require_shared(rel), files[i].w, files[i].h);
        size_t n = (size_t)files[i].w * files[i].h, transparent = 0, mid = 0;
        for (size_t k = 0; k < n; k++) {
            transparent += px[4 * k + 3] == 0;
            mid += px[4 * k] > 0 && px[4 * k] < 255;
        }
        if (strcmp(files[i].name, "5_transparent_1.png") == 0)
            ck_assert_msg(transparent > n / 2 && transparent < n * 6 / 10, "%zu of %zu transparent", transparent, n);
        else
            ck_assert_uint_eq(transparent, 0);
        /* the 1-bit palette image is pure black and white */
        if (strcmp(files[i].name, "1_bilevel_1.png") == 0) ck_assert_uint_eq(mid, 0);
        free(px);
    }
}
END_TEST

typedef struct {
    const char *name;
    cnnviz_status code;
    const char *msg;
} bad_case;

/* Every file in digits/bad fails cleanly, with nothing on stderr. */
START_TEST(test_shared_bad_files) {
    static const bad_case cases[] = {
        {"empty.png", CNNVIZ_ERR_FORMAT, "empty file, not a PNG or JPEG image"},
        {"text_not_png.png", CNNVIZ_ERR_FORMAT, "not a PNG or JPEG image"},
        {"webp_named_as.jpeg", CNNVIZ_ERR_UNSUPPORTED, "unsupported image format (WEBP); convert it to PNG or JPEG"},
        {"huge_dims_100000x100000.png", CNNVIZ_ERR_UNSUPPORTED,
         "image is 100000x100000, larger than the limit of 16384 pixels a side and 64 Mpixel"},
        {"truncated_half.png", CNNVIZ_ERR_FORMAT, "truncated PNG (the file ends early)"},
        /* the flipped byte breaks the zlib stream before libpng reaches the CRC */
        {"idat_crc_mismatch.png", CNNVIZ_ERR_FORMAT, "damaged PNG (bad adaptive filter value)"},
    };
    require_shared("data/digits/bad");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(in_scratch("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    char rel[256], got[sizeof cases / sizeof cases[0]][1024];
    cnnviz_status codes[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(rel, sizeof rel, "data/digits/bad/%s", cases[i].name);
        const char *path = require_shared(rel);
        int w = 7, h = 7;
        uint8_t *px = (uint8_t *)1;
        cnnviz_error err;
        cnnviz_error_clear(&err);
        codes[i] = cnnviz_image_read_rgba8(path, &w, &h, &px, &err);
        snprintf(got[i], sizeof got[i], "%s", err.msg);
        ck_assert_ptr_null(px);
        ck_assert_int_eq(w, 0);
        ck_assert_str_eq(err.file, path);
        /* the digit loader passes the same error through */
        float out[784];
        cnnviz_error err2;
        ck_assert_int_eq(cnnviz_image_load_digit(path, 1, 28, 28, out, NULL, &err2), codes[i]);
        ck_assert_str_eq(err2.msg, err.msg);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(codes[i] == cases[i].code, "%s: status %d", cases[i].name, codes[i]);
        ck_assert_str_eq(got[i], cases[i].msg);
    }
    struct stat st;
    ck_assert_int_eq(stat(in_scratch("stderr.txt"), &st), 0);
    ck_assert_msg(st.st_size == 0, "the decoders wrote %lld bytes to stderr", (long long)st.st_size);
}
END_TEST

START_TEST(test_damaged_crc_and_missing) {
    /* a flipped byte in IHDR's CRC: libpng refuses the critical chunk */
    const char *src = require_shared("data/digits/4_tiny28_1.png");
    size_t n;
    uint8_t *b = read_bytes(src, &n);
    b[8 + 8 + 13] ^= 0x01; /* signature, length+type, 13 bytes of IHDR data, then the CRC */
    write_bytes(in_scratch("crc.png"), b, n);
    int w, h;
    uint8_t *px;
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_image_read_rgba8(in_scratch("crc.png"), &w, &h, &px, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "damaged PNG (IHDR: CRC error)");
    /* a PNG cut right after its signature */
    write_bytes(in_scratch("sig.png"), b, 8);
    ck_assert_int_eq(cnnviz_image_read_rgba8(in_scratch("sig.png"), &w, &h, &px, &err), CNNVIZ_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "truncated PNG (the file ends early)");
    free(b);
    char want[4400];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", in_scratch("none.png"));
    ck_assert_int_eq(cnnviz_image_read_rgba8(in_scratch("none.png"), &w, &h, &px, &err), CNNVIZ_ERR_IO);
    ck_assert_str_eq(err.msg, want);
    /* other formats are named */
    write_bytes(in_scratch("x.png"), "GIF89a\x01\x00\x01\x00", 10);
    ck_assert_int_eq(cnnviz_image_read_rgba8(in_scratch("x.png"), &w, &h, &px, &err), CNNVIZ_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "unsupported image format (GIF); convert it to PNG or JPEG");
}
END_TEST

/* --- preprocessing ----------------------------------------------------------------------- */
typedef struct {
    double mass, cx, cy, peak;
    int x0, y0, x1, y1; /* box of pixels > 25 */
} digit_stats;

static digit_stats stats_of(const float *x, int n) {
    digit_stats s = {0, 0, 0, 0, n, n, -1, -1};
    for (int y = 0; y < n; y++)
        for (int c = 0; c < n; c++) {
            double v = x[y * n + c];
            s.mass += v;
            s.cx += v * c;
            s.cy += v * y;
            if (v > s.peak) s.peak = v;
            if (v > 25) {
                if (c < s.x0) s.x0 = c;
                if (c > s.x1) s.x1 = c;
                if (y < s.y0) s.y0 = y;
                if (y > s.y1) s.y1 = y;
            }
        }
    s.cx /= s.mass;
    s.cy /= s.mass;
    return s;
}

/* What every preprocessed digit must look like: 0..255, peak 255, black
 * corners, ink inside a 20-ish box, centre of mass within half a pixel of
 * (14,14) as an integer shift gives, and a plausible amount of ink (MNIST:
 * median 101 full pixels). */
static void check_mnist_like(const char *name, const float *x, const cnnviz_preprocess_report *rep) {
    digit_stats s = stats_of(x, 28);
    for (int i = 0; i < 784; i++) ck_assert_msg(x[i] >= 0 && x[i] <= 255, "%s: pixel %d = %g", name, i, x[i]);
    ck_assert_msg(s.peak == 255, "%s: peak %g", name, s.peak);
    ck_assert_msg(x[0] == 0 && x[27] == 0 && x[27 * 28] == 0 && x[783] == 0, "%s: corners not black", name);
    ck_assert_msg(fabs(s.cx - 14) <= 0.55 && fabs(s.cy - 14) <= 0.55, "%s: centre of mass (%g,%g)", name, s.cx, s.cy);
    ck_assert_msg(s.x1 - s.x0 <= 21 && s.y1 - s.y0 <= 21, "%s: ink box %dx%d", name, s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);
    ck_assert_msg(s.x1 - s.x0 >= 17 || s.y1 - s.y0 >= 17, "%s: ink box %dx%d", name, s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);
    ck_assert_msg(s.mass / 255 > 35 && s.mass / 255 < 240, "%s: ink mass %g", name, s.mass / 255);
    ck_assert_msg(rep->summary[0] != '\0', "%s: empty summary", name);
}

START_TEST(test_preprocess_every_shared_digit) {
    static const char *const dark_on_light[] = {
        "1_bilevel_1.png",  "1_widethin_1.png",   "2_inkcrop_1.png",    "2_mouse130_1.png", "2_tinyink_1.png",
        "3_bold28_1.png",   "3_paperphoto_1.jpg", "3_widethin_1.png",   "4_thingrey_1.png", "4_tiny28_1.png",
        "5_big2048_1.png",  "5_palette_1.png",    "5_thick80_1.png",    "5_thick81_1.png",  "6_inkcrop_1.png",
        "6_offcenter_1.png", "7_noisy28_1.png",   "7_paperphoto_1.jpg", "8_canvas128_1.png", "8_marker_1.png",
        "9_faint28_1.png"};
    static const char *const light_on_dark[] = {
        "0_cleanwhite_1.png", "2_hairline_1.png",   "3_pixel28_1.png",  "3_specks_1.png",   "4_graycanvas_1.png",
        "4_tallcanvas_1.png", "6_smallrgba_1.png",  "7_brushjpg_1.jpg", "7_brushjpg_2.jpg", "7_thickwhite_1.png",
        "7_widecanvas_1.png", "8_darkgrey_1.png",   "5_transparent_1.png"};
    char rel[256];
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? dark_on_light : light_on_dark;
        size_t n = pass == 0 ? sizeof dark_on_light / sizeof *dark_on_light : sizeof light_on_dark / sizeof *light_on_dark;
        for (size_t i = 0; i < n; i++) {
            snprintf(rel, sizeof rel, "data/digits/%s", list[i]);
            float x[784];
            cnnviz_preprocess_report rep;
            cnnviz_error err;
            cnnviz_status st = cnnviz_image_load_digit(require_shared(rel), 1, 28, 28, x, &rep, &err);
            ck_assert_msg(st == CNNVIZ_OK, "%s: %s", list[i], err.msg);
            check_mnist_like(list[i], x, &rep);
            ck_assert_msg(rep.inverted == (pass == 0), "%s: inverted=%d (%s)", list[i], rep.inverted, rep.summary);
        }
    }
}
END_TEST

START_TEST(test_preprocess_quirks) {
    float x[784];
    cnnviz_preprocess_report rep;
    cnnviz_error err;
    /* the light frame round 7_thickwhite is removed, so the box is the 7 only */
    ck_assert(cnnviz_image_load_digit(require_shared("data/digits/7_thickwhite_1.png"), 1, 28, 28, x, &rep, &err) ==
              CNNVIZ_OK);
    ck_assert_int_eq(rep.inverted, 0);
    ck_assert_msg(rep.crop_x > 20 && rep.crop_y > 8 && rep.crop_x + rep.crop_w < 289 - 20 &&
                      rep.crop_y + rep.crop_h < 281 - 8,
                  "%s", rep.summary);
    ck_assert_ptr_nonnull(strstr(rep.summary, "frame removed"));
    /* transparency is reported */
    ck_assert(cnnviz_image_load_digit(require_shared("data/digits/5_transparent_1.png"), 1, 28, 28, x, &rep, &err) ==
              CNNVIZ_OK);
    ck_assert_int_eq(rep.alpha_composited, 1);
    ck_assert_int_eq(rep.src_w, 1239);
    /* a 2048x1205 canvas with a small thin 2: the box is the 2, not the canvas */
    ck_assert(cnnviz_image_load_digit(require_shared("data/digits/2_tinyink_1.png"), 1, 28, 28, x, &rep, &err) ==
              CNNVIZ_OK);
    ck_assert_int_lt(rep.crop_w, 500);
    ck_assert_int_lt(rep.crop_h, 500);
    ck_assert_ptr_nonnull(strstr(rep.summary, "2048x1205 PNG RGBA 8-bit, dark-on-light (inverted)"));
    /* the paper photo's dust specks do not widen the box */
    ck_assert(cnnviz_image_load_digit(require_shared("data/digits/7_paperphoto_1.jpg"), 1, 28, 28, x, &rep, &err) ==
              CNNVIZ_OK);
    ck_assert_int_gt(rep.crop_x, 110);
    ck_assert_ptr_nonnull(strstr(rep.summary, "dropped"));
}
END_TEST

/* A synthetic dark "1" on grey paper with a speck far away and a thin frame. */
START_TEST(test_preprocess_synthetic) {
    int w = 200, h = 150;
    uint8_t *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) g[i] = 180; /* grey paper */
    for (int y = 30; y < 120; y++)
        for (int x = 95; x < 105; x++) g[y * w + x] = 40; /* a bar 10x90 */
    for (int y = 10; y < 13; y++)
        for (int x = 10; x < 13; x++) g[y * w + x] = 40; /* a speck */
    for (int x = 0; x < w; x++) g[x] = g[(h - 1) * w + x] = 60; /* dark frame top and bottom */
    png_spec sp = {PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("one.png"), w, h, &sp, g, (size_t)w);
    float x[784];
    cnnviz_preprocess_report rep;
    cnnviz_error err;
    ck_assert(cnnviz_image_load_digit(in_scratch("one.png"), 1, 28, 28, x, &rep, &err) == CNNVIZ_OK);
    ck_assert_int_eq(rep.inverted, 1);
    ck_assert_int_eq(rep.crop_x, 95);
    ck_assert_int_eq(rep.crop_y, 30);
    ck_assert_int_eq(rep.crop_w, 10);
    ck_assert_int_eq(rep.crop_h, 90);
    /* 90 px -> 20 px: the bar is 2.2 px wide, so 3 columns, the middle one full */
    digit_stats s = stats_of(x, 28);
    /* 20 rows, centre of mass 9.5 rows down: placed at row 4 or 5 */
    ck_assert_int_eq(s.y1 - s.y0 + 1, 20);
    ck_assert(s.y0 == 4 || s.y0 == 5);
    ck_assert_msg(s.x1 - s.x0 + 1 >= 2 && s.x1 - s.x0 + 1 <= 4, "%s", rep.summary);
    ck_assert_float_eq(s.peak, 255);
    ck_assert(fabs(s.cx - 14) <= 0.5 && fabs(s.cy - 14) <= 0.5);
    ck_assert_ptr_nonnull(strstr(rep.summary, "200x150 PNG grey 8-bit, dark-on-light (inverted), ink 10x90 at (95,30)"));

    /* blank paper is an error, not a digit */
    for (int i = 0; i < w * h; i++) g[i] = (uint8_t)(200 + (i % 3));
    write_png(in_scratch("blank.png"), w, h, &sp, g, (size_t)w);
    ck_assert_int_eq(cnnviz_image_load_digit(in_scratch("blank.png"), 1, 28, 28, x, &rep, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no digit found: the image is blank");
    free(g);
}
END_TEST

/* Odd shapes and noise: a digit or a clean "blank" error, never a crash, and
 * the output always in 0..255 (this runs under ASan/UBSan in CI). */
START_TEST(test_preprocess_odd_inputs) {
    static const int sizes[][2] = {{1, 1}, {2, 1}, {1, 100}, {100, 1}, {3, 3}, {50, 50}, {7, 300}};
    png_spec sp = {PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    unsigned seed = 12345;
    int digits = 0, blanks = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        uint8_t *g = malloc((size_t)w * h);
        for (int pattern = 0; pattern < 3; pattern++) {
            for (int i = 0; i < w * h; i++) {
                seed = seed * 1103515245u + 12345u;
                g[i] = pattern == 0 ? (uint8_t)(seed >> 24) : (pattern == 1 ? (i % 2 ? 255 : 0) : 77);
            }
            write_png(in_scratch("odd.png"), w, h, &sp, g, (size_t)w);
            float x[32 * 32];
            cnnviz_preprocess_report rep;
            cnnviz_error err;
            cnnviz_status st = cnnviz_image_load_digit(in_scratch("odd.png"), 1, 32, 32, x, &rep, &err);
            if (st == CNNVIZ_OK) {
                digits++;
                for (int i = 0; i < 32 * 32; i++) ck_assert(x[i] >= 0 && x[i] <= 255);
            } else {
                blanks++;
                ck_assert_int_eq(st, CNNVIZ_ERR_INVALID);
                ck_assert_str_eq(err.msg, "no digit found: the image is blank");
            }
        }
        free(g);
    }
    /* the 7 flat images and the two other 1x1 ones are blank, the rest are not */
    ck_assert_int_eq(blanks, 9);
    ck_assert_int_eq(digits, 12);
    float x[784];
    cnnviz_error err;
    ck_assert_int_eq(cnnviz_image_load_digit(in_scratch("odd.png"), 1, 4, 4, x, NULL, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "cannot make a 4x4 digit image");
}
END_TEST

/* A hairline in a big canvas survives: thickened to about MNIST's width. */
START_TEST(test_preprocess_hairline_thickened) {
    int w = 1600, h = 1600;
    uint8_t *g = calloc((size_t)w * h, 1);
    for (int y = 100; y < 1500; y++) g[y * w + 800] = 255; /* 1 px white line on black */
    for (int x = 500; x < 1100; x++) g[100 * w + x] = 255;
    png_spec sp = {PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("hair.png"), w, h, &sp, g, (size_t)w);
    free(g);
    float x[784];
    cnnviz_preprocess_report rep;
    cnnviz_error err;
    ck_assert(cnnviz_image_load_digit(in_scratch("hair.png"), 1, 28, 28, x, &rep, &err) == CNNVIZ_OK);
    ck_assert_int_eq(rep.inverted, 0);
    ck_assert_ptr_nonnull(strstr(rep.summary, "strokes thickened"));
    /* the vertical stroke, midway down: about 2 px of full ink */
    double across = 0;
    for (int c = 0; c < 28; c++) across += x[16 * 28 + c] / 255.0;
    ck_assert_msg(across > 1.5 && across < 3.5, "stroke is %g px wide", across);
}
END_TEST

/* White ink on a transparent canvas: compositing over white would erase it. */
START_TEST(test_preprocess_white_on_transparent) {
    int w = 60, h = 60;
    uint8_t *px = calloc((size_t)w * h * 4, 1);
    for (int y = 10; y < 50; y++)
        for (int x = 27; x < 33; x++) {
            uint8_t *p = px + 4 * (y * w + x);
            p[0] = p[1] = p[2] = p[3] = 255;
        }
    png_spec sp = {PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    write_png(in_scratch("t.png"), w, h, &sp, px, (size_t)w * 4);
    /* and the same with black ink */
    for (int i = 0; i < w * h; i++) px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = 0;
    write_png(in_scratch("k.png"), w, h, &sp, px, (size_t)w * 4);
    free(px);
    const char *names[2] = {"t.png", "k.png"};
    float first[784];
    for (int k = 0; k < 2; k++) {
        float x[784];
        cnnviz_preprocess_report rep;
        cnnviz_error err;
        ck_assert(cnnviz_image_load_digit(in_scratch(names[k]), 1, 28, 28, x, &rep, &err) == CNNVIZ_OK);
        ck_assert_int_eq(rep.alpha_composited, 1);
        ck_assert_int_eq(rep.crop_h, 40);
        digit_stats s = stats_of(x, 28);
        ck_assert_float_eq(s.peak, 255);
        ck_assert_int_eq(s.y1 - s.y0 + 1, 20);
        if (k == 0) memcpy(first, x, sizeof x);
        else ck_assert_mem_eq(first, x, sizeof x); /* ink colour does not matter */
    }
}
END_TEST

START_TEST(test_no_preprocess) {
    float x[784];
    cnnviz_preprocess_report rep;
    cnnviz_error err;
    const char *p80 = require_shared("data/digits/5_thick80_1.png");
    ck_assert_int_eq(cnnviz_image_load_digit(p80, 0, 28, 28, x, &rep, &err), CNNVIZ_ERR_INVALID);
    ck_assert_str_eq(err.msg, "image is 80x80, the model needs 28x28 (use preprocessing or resize it)");
    ck_assert_str_eq(err.file, p80);
    /* a 28x28 grey PNG is taken pixel for pixel */
    const char *p28 = require_shared("data/digits/3_bold28_1.png");
    ck_assert(cnnviz_image_load_digit(p28, 0, 28, 28, x, &rep, &err) == CNNVIZ_OK);
    int w, h;
    uint8_t *px = decode_ok(p28, 28, 28);
    for (int i = 0; i < 784; i++) ck_assert_float_eq(x[i], px[4 * i]);
    free(px);
    ck_assert_int_eq(rep.inverted, 0);
    (void)w;
    (void)h;
}
END_TEST

/* --- PNG out -------------------------------------------------------------------------------- */
START_TEST(test_png_write_gray_roundtrip) {
    float x[3 * 5] = {0, 0.25f, 0.5f, 1, 2, -1, NAN, 0.1f, 0.9f, 0.999f, 0.002f, 0.5f, 0.5f, 0.5f, 0.5f};
    cnnviz_error err;
    ck_assert(cnnviz_png_write_gray(in_scratch("o.png"), x, 3, 5, 0, 1, &err) == CNNVIZ_OK);
    uint8_t *px = decode_ok(in_scratch("o.png"), 5, 3);
    static const int want[15] = {0, 64, 128, 255, 255, 0, 0, 26, 230, 255, 1, 128, 128, 128, 128};
    for (int i = 0; i < 15; i++) expect_rgba(px, i, want[i], want[i], want[i], 255);
    free(px);
    /* the same pixels give the same bytes (no timestamp) */
    ck_assert(cnnviz_png_write_gray(in_scratch("o2.png"), x, 3, 5, 0, 1, &err) == CNNVIZ_OK);
    size_t n1, n2;
    uint8_t *a = read_bytes(in_scratch("o.png"), &n1), *b = read_bytes(in_scratch("o2.png"), &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(a, b, n1);
    free(a);
    free(b);
    /* a missing folder: clean error, nothing left behind */
    char path[4300], want_msg[4400];
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", scratch);
    ck_assert_int_eq(cnnviz_png_write_gray(path, x, 3, 5, 0, 1, &err), CNNVIZ_ERR_IO);
    snprintf(want_msg, sizeof want_msg, "cannot write %s: No such file or directory", path);
    ck_assert_str_eq(err.msg, want_msg);
    ck_assert_int_eq(count_entries(scratch), 2);
    ck_assert_int_eq(cnnviz_png_write_gray(in_scratch("z.png"), x, 3, 5, 1, 1, &err), CNNVIZ_ERR_INVALID);
    ck_assert_int_eq(count_entries(scratch), 2);
}
END_TEST

static Suite *make_image_suite(int with_data) {
    Suite *s = suite_create("image");
    TCase *t = tcase_create("decode");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_add_test(t, test_png_grey8_and_interlaced);
    tcase_add_test(t, test_png_grey_low_depths_and_trns);
    tcase_add_test(t, test_png_grey_alpha_and_16bit);
    tcase_add_test(t, test_png_rgb_and_palette);
    tcase_add_test(t, test_jpeg_baseline_progressive_grey);
    tcase_add_test(t, test_png_write_gray_roundtrip);
    suite_add_tcase(s, t);
    t = tcase_create("synthetic digits");
    tcase_add_checked_fixture(t, make_scratch, drop_scratch);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_preprocess_synthetic);
    tcase_add_test(t, test_preprocess_hairline_thickened);
    tcase_add_test(t, test_preprocess_odd_inputs);
    tcase_add_test(t, test_preprocess_white_on_transparent);
    suite_add_tcase(s, t);
    if (with_data) {
        t = tcase_create("shared digits");
        tcase_add_checked_fixture(t, make_scratch, drop_scratch);
        tcase_set_timeout(t, 120);
        tcase_add_test(t, test_shared_digits_decode);
        tcase_add_test(t, test_shared_bad_files);
        tcase_add_test(t, test_damaged_crc_and_missing);
        tcase_add_test(t, test_preprocess_every_shared_digit);
        tcase_add_test(t, test_preprocess_quirks);
        tcase_add_test(t, test_no_preprocess);
        suite_add_tcase(s, t);
    }
    return s;
}

/* Without the shared digits the synthetic cases still run; the result is
 * then "skipped" (77) if they pass. */
int main(void) {
    int with_data = shared_path("data/digits/bad") != NULL;
    int rc = run_suite(make_image_suite(with_data));
    if (rc == 0 && !with_data) {
        printf("SKIP: shared data 'data/digits' not found (set CNNVIZ_SHARED to the shared/ folder)\n");
        return 77;
    }
    return rc;
}
