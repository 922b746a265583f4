/* Images in and out: PNG through libpng, JPEG through libjpeg-turbo, both
 * decoded to 8-bit RGBA; grey PNGs written through libpng.
 *
 * The whole file is read into memory first: the format is chosen by its magic
 * bytes (file names lie: a WEBP called .jpeg is common), and both decoders
 * then read from that buffer, so a truncated file shows up as "ran out of
 * bytes" at a known point instead of as a stdio error.
 *
 * Both libraries report fatal errors by calling a handler that must not
 * return. Ours record the message and longjmp back to the one setjmp in the
 * decoding function, which is the only frame the jump crosses besides the
 * library's own; everything that function allocates hangs off a context
 * struct reached through a pointer, so nothing lives in a local variable that
 * the jump could leave stale (C11 7.13.2.1). Warnings are recorded, never
 * printed: the library does not write to stderr. */
#include "cnnviz/io.h"
#include "io-impl.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h> /* after stdio.h, which it needs */
#include <jerror.h>

/* Refuse before allocating: 16384 a side and 64 Mpixel (256 MiB of RGBA)
 * covers any photo or canvas export while keeping a forged header from
 * asking for gigabytes. */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS ((size_t)64 << 20)
#define IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)

static cnnviz_status check_image_size(const char *path, size_t w, size_t h, cnnviz_error *err) {
    if (w == 0 || h == 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "image has no pixels (%zux%zu)", w, h);
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || w * h > IMAGE_MAX_PIXELS)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path,
                                "image is %zux%zu, larger than the limit of %d pixels a side and %zu Mpixel", w,
                                h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS >> 20);
    return CNNVIZ_OK;
}

static cnnviz_status read_whole_file(const char *path, uint8_t **data, size_t *len, cnnviz_error *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot open %s: is a directory", path);
    }
    if ((size_t)st.st_size > IMAGE_MAX_FILE_BYTES) {
        fclose(f);
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path, "file is %lld bytes, more than the %zu MiB an image may have",
                                (long long)st.st_size, IMAGE_MAX_FILE_BYTES >> 20);
    }
    /* +1 so an empty file still gets a real buffer */
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot read %s: %s", path, strerror(errno));
    }
    *data = buf;
    *len = n;
    return CNNVIZ_OK;
}

/* --- format detection ------------------------------------------------------ */
typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_OTHER } image_format;

/* Formats people commonly hand to a digit recogniser, named so the error can
 * say what the file really is. */
static image_format sniff_format(const uint8_t *p, size_t n, const char **name) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *name = NULL;
    if (n >= 8 && memcmp(p, png_sig, 8) == 0) return FMT_PNG;
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return FMT_JPEG;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) *name = "WEBP";
    else if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) *name = "GIF";
    else if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) *name = "TIFF";
    else if (n >= 14 && p[0] == 'B' && p[1] == 'M' && p[6] == 0 && p[7] == 0 && p[8] == 0 && p[9] == 0) *name = "BMP";
    else if (n >= 12 && memcmp(p + 4, "ftypavif", 8) == 0) *name = "AVIF";
    else if (n >= 12 && (memcmp(p + 4, "ftypheic", 8) == 0 || memcmp(p + 4, "ftypmif1", 8) == 0)) *name = "HEIF";
    else if (n >= 4 && memcmp(p, "qoif", 4) == 0) *name = "QOI";
    else if (n >= 12 && memcmp(p, "\0\0\0\x0cjP  \r\n\x87\n", 12) == 0) *name = "JPEG 2000";
    else if (n >= 2 && p[0] == 0xff && p[1] == 0x0a) *name = "JPEG XL";
    else if (n >= 12 && memcmp(p, "\0\0\0\x0cJXL \r\n\x87\n", 12) == 0) *name = "JPEG XL";
    else if (n >= 5 && memcmp(p, "%PDF-", 5) == 0) *name = "PDF";
    else if (n >= 8 && p[0] == 0x8a && memcmp(p + 1, "MNG", 3) == 0) *name = "MNG";
    return *name ? FMT_OTHER : FMT_UNKNOWN;
}

/* --- PNG --------------------------------------------------------------------- */
typedef struct {
    const uint8_t *data;
    size_t len, pos;
    int ran_out;     /* the reader hit the end of the file */
    char msg[200];   /* libpng's error message */
    uint8_t *rgba;   /* the result, owned by the caller on success */
    png_bytep *rows;
    char desc[64];
} png_read_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_read_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* Warnings (an sRGB profile libpng dislikes, a damaged ancillary chunk it
 * skipped) do not stop decoding, and the library never prints. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
    png_read_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        c->ran_out = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

static cnnviz_status decode_png(const char *path, png_read_ctx *c, int *w, int *h, cnnviz_error *err) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (png == NULL) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(c->rows);
        free(c->rgba);
        c->rows = NULL;
        c->rgba = NULL;
        if (c->ran_out) return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "truncated PNG (the file ends early)");
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "damaged PNG (%s)", c->msg);
    }
    png_set_read_fn(png, c, png_read_from_memory);
    /* Unknown chunks (Apple's iDOT, vendor data) carry nothing we need:
     * skip them without storing. Critical unknown chunks still fail in libpng. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    /* libpng's own size limit (1e6 a side) would answer first with its own
     * words; lift it to the format's maximum so check_image_size speaks. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);

    png_uint_32 width, height;
    int depth, color, interlace;
    png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
    cnnviz_status st = check_image_size(path, width, height, err);
    if (st != CNNVIZ_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    /* Everything to 8-bit RGBA. No gamma transform: the pixels are taken as
     * stored, so a decoded image (and its checksum) does not depend on gAMA
     * or on libpng's colour management. */
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (has_trns) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_scale_16(png); /* rounds, where strip_16 would truncate */
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (!(color & PNG_COLOR_MASK_ALPHA) && !has_trns) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * 4) png_error(png, "unexpected row size after conversion");

    c->rgba = malloc((size_t)width * height * 4);
    c->rows = malloc(sizeof(png_bytep) * height);
    if (c->rgba == NULL || c->rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) c->rows[y] = c->rgba + (size_t)y * width * 4;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    static const char *const kinds[7] = {"grey", "?", "RGB", "palette", "grey+alpha", "?", "RGBA"};
    snprintf(c->desc, sizeof c->desc, "PNG %s %d-bit%s%s", kinds[color & 7], depth, has_trns ? " tRNS" : "",
             interlace != PNG_INTERLACE_NONE ? " interlaced" : "");
    png_destroy_read_struct(&png, &info, NULL);
    free(c->rows);
    c->rows = NULL;
    *w = (int)width;
    *h = (int)height;
    return CNNVIZ_OK;
}

/* --- JPEG -------------------------------------------------------------------- */
typedef struct {
    struct jpeg_error_mgr pub; /* first, so libjpeg's err pointer is ours too */
    struct jpeg_decompress_struct cinfo; /* here, not a local of decode_jpeg: it changes after setjmp */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int ran_out; /* libjpeg warned that the data ended early */
    uint8_t *rgba;
    uint8_t *row; /* CMYK scanline */
    char desc[64];
} jpeg_read_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_read_ctx *c = (jpeg_read_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, c->msg);
    longjmp(c->jump, 1);
}

/* libjpeg reports damaged data as warnings and fills the gap with grey. A
 * file that simply stops is an error for us (half a digit is not a digit);
 * other warnings (stray bytes before a marker) are harmless and ignored. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_read_ctx *c = (jpeg_read_ctx *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) c->ran_out = 1;
        cinfo->err->num_warnings++;
    }
}

static void jpeg_no_output(j_common_ptr cinfo) { (void)cinfo; }

/* Adobe writes CMYK JPEGs inverted (0 = full ink); libjpeg hands them over as
 * stored, so this is the usual naive conversion for that convention. */
static void cmyk_row_to_rgba(const uint8_t *cmyk, uint8_t *rgba, int w, int adobe_inverted) {
    for (int x = 0; x < w; x++) {
        int C = cmyk[4 * x], M = cmyk[4 * x + 1], Y = cmyk[4 * x + 2], K = cmyk[4 * x + 3];
        if (!adobe_inverted) {
            C = 255 - C;
            M = 255 - M;
            Y = 255 - Y;
            K = 255 - K;
        }
        rgba[4 * x] = (uint8_t)((C * K + 127) / 255);
        rgba[4 * x + 1] = (uint8_t)((M * K + 127) / 255);
        rgba[4 * x + 2] = (uint8_t)((Y * K + 127) / 255);
        rgba[4 * x + 3] = 255;
    }
}

static cnnviz_status decode_jpeg(const char *path, const uint8_t *data, size_t len, jpeg_read_ctx *c, int *w,
                                 int *h, cnnviz_error *err) {
    j_decompress_ptr cinfo = &c->cinfo;
    cinfo->err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpeg_on_error;
    c->pub.emit_message = jpeg_on_message;
    c->pub.output_message = jpeg_no_output;
    if (setjmp(c->jump)) {
        jpeg_destroy_decompress(cinfo);
        free(c->rgba);
        free(c->row);
        c->rgba = NULL;
        c->row = NULL;
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "damaged JPEG (%s)", c->msg);
    }
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    cnnviz_status st = check_image_size(path, cinfo->image_width, cinfo->image_height, err);
    if (st != CNNVIZ_OK) {
        jpeg_destroy_decompress(cinfo);
        return st;
    }
    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
    /* Progressive files keep every coefficient in memory; the size check
     * above bounds that, this keeps libjpeg from going past it. */
    cinfo->mem->max_memory_to_use = (long)1 << 30;
    snprintf(c->desc, sizeof c->desc, "JPEG %s%s", cinfo->progressive_mode ? "progressive " : "",
             cinfo->num_components == 1 ? "grey" : (cmyk ? "CMYK" : "colour"));
    jpeg_start_decompress(cinfo);
    size_t width = cinfo->output_width, height = cinfo->output_height;
    c->rgba = malloc(width * height * 4);
    if (cmyk) c->row = malloc(width * 4);
    if (c->rgba == NULL || (cmyk && c->row == NULL)) {
        snprintf(c->msg, sizeof c->msg, "out of memory");
        longjmp(c->jump, 1);
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        uint8_t *dst = c->rgba + (size_t)cinfo->output_scanline * width * 4;
        JSAMPROW row = cmyk ? c->row : dst;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) break;
        if (cmyk) cmyk_row_to_rgba(c->row, dst, (int)width, cinfo->saw_Adobe_marker);
    }
    if (!c->ran_out) jpeg_finish_decompress(cinfo);
    jpeg_destroy_decompress(cinfo);
    free(c->row);
    c->row = NULL;
    if (c->ran_out) {
        free(c->rgba);
        c->rgba = NULL;
        return cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "truncated JPEG (the file ends early)");
    }
    *w = (int)width;
    *h = (int)height;
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_image_read_rgba8(const char *path, int *w, int *h, uint8_t **rgba, cnnviz_error *err) {
    return cnnviz_image_decode(path, w, h, rgba, NULL, 0, err);
}

cnnviz_status cnnviz_image_decode(const char *path, int *w, int *h, uint8_t **rgba, char *desc, size_t desc_n,
                                  cnnviz_error *err) {
    *w = *h = 0;
    if (desc && desc_n) desc[0] = '\0';
    *rgba = NULL;
    uint8_t *data;
    size_t len;
    cnnviz_status st = read_whole_file(path, &data, &len, err);
    if (st != CNNVIZ_OK) return st;
    const char *name;
    image_format fmt = sniff_format(data, len, &name);
    if (fmt == FMT_PNG) {
        png_read_ctx c;
        memset(&c, 0, sizeof c);
        c.data = data;
        c.len = len;
        st = decode_png(path, &c, w, h, err);
        *rgba = c.rgba;
        if (desc && desc_n) snprintf(desc, desc_n, "%s", c.desc);
    } else if (fmt == FMT_JPEG) {
        jpeg_read_ctx c;
        memset(&c, 0, sizeof c);
        st = decode_jpeg(path, data, len, &c, w, h, err);
        *rgba = c.rgba;
        if (desc && desc_n) snprintf(desc, desc_n, "%s", c.desc);
    } else if (fmt == FMT_OTHER) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, path,
                              "unsupported image format (%s); convert it to PNG or JPEG", name);
    } else if (len == 0) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "empty file, not a PNG or JPEG image");
    } else {
        st = cnnviz_error_set(err, CNNVIZ_ERR_FORMAT, path, "not a PNG or JPEG image");
    }
    free(data);
    if (st != CNNVIZ_OK) {
        free(*rgba);
        *rgba = NULL;
        *w = *h = 0;
    }
    return st;
}

/* --- PNG out ----------------------------------------------------------------- */
typedef struct {
    char msg[200];
    uint8_t *pixels;
    png_bytep *rows;
    FILE *f;
} png_write_ctx;

static void png_write_on_error(png_structp png, png_const_charp msg) {
    png_write_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static cnnviz_status write_gray_png(const char *path, png_write_ctx *c, int h, int w, cnnviz_error *err) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, png_write_on_error, png_on_warning);
    if (png == NULL) return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, c->msg);
    }
    png_init_io(png, c->f);
    /* No tIME chunk and fixed settings: the same pixels give the same bytes. */
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, c->rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return CNNVIZ_OK;
}

cnnviz_status cnnviz_png_write_gray(const char *path, const float *x, int h, int w, float lo, float hi,
                                    cnnviz_error *err) {
    if (h <= 0 || w <= 0 || (size_t)h * (size_t)w > IMAGE_MAX_PIXELS)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "cannot write a %dx%d image", w, h);
    if (!(hi > lo)) return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "empty value range [%g, %g]", lo, hi);
    png_write_ctx c;
    memset(&c, 0, sizeof c);
    c.pixels = malloc((size_t)h * w);
    c.rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (c.pixels == NULL || c.rows == NULL) {
        free(c.pixels);
        free(c.rows);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "out of memory");
    }
    float span = hi - lo;
    for (size_t i = 0; i < (size_t)h * w; i++) {
        float v = (x[i] - lo) / span * 255.0f + 0.5f;
        /* NaN fails both tests and ends up black */
        c.pixels[i] = v >= 255.0f ? 255 : (v >= 0.0f ? (uint8_t)v : 0);
    }
    for (int y = 0; y < h; y++) c.rows[y] = c.pixels + (size_t)y * w;

    cnnviz_atomic_file af;
    cnnviz_status st = cnnviz_atomic_begin(&af, path, err);
    if (st == CNNVIZ_OK) {
        c.f = fopen(af.tmp_path, "wb");
        if (c.f == NULL) {
            st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(errno));
        } else {
            st = write_gray_png(path, &c, h, w, err);
            if (fclose(c.f) != 0 && st == CNNVIZ_OK)
                st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(errno));
        }
        if (st == CNNVIZ_OK)
            st = cnnviz_atomic_commit(&af, err);
        else
            cnnviz_atomic_abort(&af);
    }
    free(c.pixels);
    free(c.rows);
    return st;
}
