/* The canvas: a Cairo surface chosen by the output file's extension, the
 * fixed font, and the drawing pieces every figure shares. */
#include <cairo-ft.h>
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

#include "render-impl.h"

/* --- formats ---------------------------------------------------------------- */

int render_format_of(const char *path, cnnviz_error *err) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && strcasecmp(dot, ".png") == 0) return RENDER_PNG;
    if (dot && strcasecmp(dot, ".svg") == 0) return RENDER_SVG;
    if (dot && strcasecmp(dot, ".pdf") == 0) return RENDER_PDF;
    struct stat st;
    if (!*base || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "is a directory (give a file name such as %s%sfigure.png)",
                         path, *base ? "/" : "");
    else if (dot && dot[1])
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "unknown output format '%s' (use .png, .svg or .pdf)", dot);
    else
        cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "no output format in the name (use .png, .svg or .pdf)");
    return -1;
}

cnnviz_status cnnviz_render_check_path(const char *path, cnnviz_error *err) {
    return render_format_of(path, err) < 0 ? CNNVIZ_ERR_INVALID : CNNVIZ_OK;
}

/* --- fonts -------------------------------------------------------------------- */

/* Fixed options so the glyph outlines do not depend on the machine's
 * fontconfig defaults: no hinting (which would snap outlines to a grid the
 * way the local configuration prefers) and unhinted metrics, so advances are
 * the font's own. */
static void set_font_options(cairo_t *cr) {
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_subpixel_order(fo, CAIRO_SUBPIXEL_ORDER_DEFAULT);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
}

void render_set_font(cairo_t *cr, int weight, double size) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           weight == FONT_BOLD ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* The toy font API asks fontconfig for "DejaVu Sans", which silently gives
 * some other family when DejaVu is not installed; the figures would then
 * differ from machine to machine, so refuse instead. */
static cnnviz_status check_font(cairo_t *cr, int weight, cnnviz_error *err) {
    render_set_font(cr, weight, 12);
    cairo_scaled_font_t *sf = cairo_get_scaled_font(cr);
    if (cairo_scaled_font_status(sf) != CAIRO_STATUS_SUCCESS || cairo_scaled_font_get_type(sf) != CAIRO_FONT_TYPE_FT)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "", "no usable font (install fonts-dejavu-core)");
    FT_Face face = cairo_ft_scaled_font_lock_face(sf);
    char family[128] = "";
    if (face && face->family_name) snprintf(family, sizeof family, "%s", face->family_name);
    cairo_ft_scaled_font_unlock_face(sf);
    if (strcmp(family, "DejaVu Sans") != 0)
        return cnnviz_error_set(err, CNNVIZ_ERR_UNSUPPORTED, "",
                                "font 'DejaVu Sans' not found (fontconfig gave '%s'; install fonts-dejavu-core)",
                                family);
    return CNNVIZ_OK;
}

cairo_t *render_measure_context(cnnviz_error *err) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(s);
    cairo_surface_destroy(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    set_font_options(cr);
    if (check_font(cr, FONT_REGULAR, err) != CNNVIZ_OK || check_font(cr, FONT_BOLD, err) != CNNVIZ_OK) {
        cairo_destroy(cr);
        return NULL;
    }
    return cr;
}

double render_text_width(cairo_t *cr, int weight, double size, const char *s) {
    cairo_text_extents_t e;
    render_set_font(cr, weight, size);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

void render_text(const render_canvas *cv, double x, double y, int weight, double size, int align, const char *s) {
    cairo_t *cr = cv->cr;
    render_set_font(cr, weight, size);
    if (align != ALIGN_LEFT) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, s, &e);
        x -= align == ALIGN_CENTER ? e.x_advance / 2 : e.x_advance;
    }
    cairo_move_to(cr, x, y);
    if (cv->fmt == RENDER_PNG) {
        cairo_text_path(cr, s);
        cairo_fill(cr);
    } else {
        cairo_show_text(cr, s);
    }
}

void render_set_rgb(cairo_t *cr, uint32_t rgb) {
    cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0, (rgb & 255) / 255.0);
}

/* --- the canvas --------------------------------------------------------------- */

/* SVG has no metadata API in Cairo: the provenance goes in as a <metadata>
 * element right after the root <svg ...> start tag, found in the stream as
 * it passes ("<svg" then the next '>'; the attributes hold no '>'). */
static cairo_status_t write_stream(void *closure, const unsigned char *data, unsigned int length) {
    render_canvas *cv = closure;
    if (cv->write_failed) return CAIRO_STATUS_WRITE_ERROR;
    static const char tag[] = "<svg";
    for (unsigned int i = 0; cv->svg_metadata && i < length; i++) {
        if (cv->svg_tag_state < 4) { /* matching "<svg" */
            cv->svg_tag_state = data[i] == (unsigned char)tag[cv->svg_tag_state] ? cv->svg_tag_state + 1
                                : data[i] == '<'                                ? 1
                                                                                : 0;
            continue;
        }
        if (data[i] != '>') continue;
        if (fwrite(data, 1, i + 1, cv->fp) != i + 1 || fputs(cv->svg_metadata, cv->fp) < 0) cv->write_failed = 1;
        free(cv->svg_metadata);
        cv->svg_metadata = NULL;
        data += i + 1;
        length -= i + 1;
        break;
    }
    if (length && fwrite(data, 1, length, cv->fp) != length) cv->write_failed = 1;
    return cv->write_failed ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Append s to buf (capacity n, length *off), escaped for XML text when
 * escape is set. Sized by the caller so it always fits; clipped if not. */
static void append(char *buf, size_t n, size_t *off, const char *s, int escape) {
    for (; s && *s; s++) {
        const char *rep = !escape ? NULL : *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        size_t k = rep ? strlen(rep) : 1;
        if (*off + k + 1 > n) break;
        memcpy(buf + *off, rep ? rep : s, k);
        *off += k;
    }
    buf[*off] = 0;
}

static char *svg_metadata(const cnnviz_provenance *p, const char *title) {
    const char *keys[] = {"title", "software", "model", "model-sha256", "command", "seed"};
    const char *vals[] = {title, "cnnviz " CNNVIZ_VERSION, p->model, p->model_sha256, p->command, p->seed};
    size_t n = 64, off = 0;
    for (int i = 0; i < 6; i++) n += 80 + (vals[i] ? 5 * strlen(vals[i]) : 0); /* "&amp;" is 5 */
    char *buf = malloc(n);
    if (!buf) return NULL;
    buf[0] = 0;
    /* starts a line of its own after the tag; Cairo's newline follows it */
    append(buf, n, &off, "\n<metadata>\n", 0);
    for (int i = 0; i < 6; i++) {
        if (!vals[i] || !*vals[i]) continue;
        append(buf, n, &off, "<cnnviz:", 0);
        append(buf, n, &off, keys[i], 0);
        append(buf, n, &off, " xmlns:cnnviz=\"urn:cnnviz\">", 0);
        append(buf, n, &off, vals[i], 1);
        append(buf, n, &off, "</cnnviz:", 0);
        append(buf, n, &off, keys[i], 0);
        append(buf, n, &off, ">\n", 0);
    }
    append(buf, n, &off, "</metadata>", 0);
    return buf;
}

static void pdf_metadata(cairo_surface_t *s, const cnnviz_provenance *p, const char *title) {
    /* Cairo stamps the current time as the creation date unless told
     * otherwise; an empty date leaves the entry out, so two runs give the
     * same bytes. */
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATE_DATE, "");
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_MOD_DATE, "");
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "cnnviz " CNNVIZ_VERSION);
    if (title) cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
    char subject[8192];
    snprintf(subject, sizeof subject, "%s%s%s%s%s%s%s%s", p->model ? "model " : "", p->model ? p->model : "",
             p->model_sha256 ? "; sha256 " : "", p->model_sha256 ? p->model_sha256 : "",
             p->command ? "; command: " : "", p->command ? p->command : "", p->seed ? "; seed " : "",
             p->seed ? p->seed : "");
    if (subject[0]) cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_SUBJECT, subject);
}

cnnviz_status render_canvas_open(render_canvas *cv, const char *path, int width, int height, const char *title,
                                 const cnnviz_render_options *opt, cnnviz_error *err) {
    memset(cv, 0, sizeof *cv);
    int fmt = render_format_of(path, err);
    if (fmt < 0) return CNNVIZ_ERR_INVALID;
    if (width < 1 || height < 1 || width > 32000 || height > 32000)
        return cnnviz_error_set(err, CNNVIZ_ERR_INVALID, path, "figure of %dx%d pixels is too large", width, height);
    cv->fmt = (render_format)fmt;
    cv->width = width;
    cv->height = height;
    cv->opt = opt;
    cnnviz_status st = cnnviz_atomic_begin(&cv->af, path, err);
    if (st != CNNVIZ_OK) return st;
    cv->fp = fopen(cv->af.tmp_path, "wb");
    if (!cv->fp) {
        int e = errno;
        cnnviz_atomic_abort(&cv->af);
        return cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(e));
    }
    if (cv->fmt == RENDER_PNG) {
        /* opaque figures: RGB24 skips alpha, and the PNG is written as RGB */
        cv->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    } else if (cv->fmt == RENDER_SVG) {
        cv->svg_metadata = svg_metadata(&opt->prov, title);
        cv->surface = cairo_svg_surface_create_for_stream(write_stream, cv, width, height);
        cairo_svg_surface_restrict_to_version(cv->surface, CAIRO_SVG_VERSION_1_1);
        /* px, so an SVG shows at the same size as the PNG of the same figure */
        cairo_svg_surface_set_document_unit(cv->surface, CAIRO_SVG_UNIT_PX);
    } else {
        cv->surface = cairo_pdf_surface_create_for_stream(write_stream, cv, width, height);
        pdf_metadata(cv->surface, &opt->prov, title);
    }
    cv->cr = cairo_create(cv->surface);
    if (cairo_status(cv->cr) != CAIRO_STATUS_SUCCESS) {
        render_canvas_abort(cv);
        return cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "cannot create a %dx%d figure", width, height);
    }
    set_font_options(cv->cr);
    st = check_font(cv->cr, FONT_REGULAR, err);
    if (st == CNNVIZ_OK) st = check_font(cv->cr, FONT_BOLD, err);
    if (st != CNNVIZ_OK) {
        render_canvas_abort(cv);
        return st;
    }
    cairo_set_source_rgb(cv->cr, 1, 1, 1);
    cairo_paint(cv->cr);
    return CNNVIZ_OK;
}

void render_canvas_abort(render_canvas *cv) {
    if (cv->cr) cairo_destroy(cv->cr);
    if (cv->surface) {
        /* a vector surface flushes into the stream when destroyed: stop the
         * writes first, the file is being thrown away */
        cv->write_failed = 1;
        cairo_surface_destroy(cv->surface);
    }
    if (cv->fp) fclose(cv->fp);
    free(cv->svg_metadata);
    cnnviz_atomic_abort(&cv->af);
    memset(cv, 0, sizeof *cv);
}

cnnviz_status render_canvas_close(render_canvas *cv, cnnviz_error *err) {
    const char *path = cv->af.final_path;
    cnnviz_status st = CNNVIZ_OK;
    cairo_status_t cs = cairo_status(cv->cr);
    cairo_destroy(cv->cr);
    cv->cr = NULL;
    if (cs != CAIRO_STATUS_SUCCESS) {
        st = cnnviz_error_set(err, CNNVIZ_ERR_NOMEM, path, "drawing failed: %s", cairo_status_to_string(cs));
    } else if (cv->fmt == RENDER_PNG) {
        cairo_surface_flush(cv->surface);
        st = render_png_write(cv->fp, path, cv->surface, 0, &cv->opt->prov, cv->opt->title, err);
    } else {
        cairo_surface_finish(cv->surface);
        cs = cairo_surface_status(cv->surface);
        if (cv->write_failed || cs != CAIRO_STATUS_SUCCESS)
            st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path,
                                  cv->write_failed ? strerror(errno ? errno : EIO) : cairo_status_to_string(cs));
    }
    cairo_surface_destroy(cv->surface);
    cv->surface = NULL;
    if (st == CNNVIZ_OK && (fflush(cv->fp) != 0 || ferror(cv->fp)))
        st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
    if (fclose(cv->fp) != 0 && st == CNNVIZ_OK)
        st = cnnviz_error_set(err, CNNVIZ_ERR_IO, path, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
    cv->fp = NULL;
    free(cv->svg_metadata);
    cv->svg_metadata = NULL;
    if (st == CNNVIZ_OK) st = cnnviz_atomic_commit(&cv->af, err);
    else cnnviz_atomic_abort(&cv->af);
    memset(cv, 0, sizeof *cv);
    return st;
}

/* --- maps, frames, colorbars ------------------------------------------------------- */

/* An RGB24 image surface holding the map with every value repeated pw x ph times. */
static cairo_surface_t *map_surface(const render_map *m, int pw, int ph, const uint8_t (*lut)[3], float lo, float hi) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, m->w * pw, m->h * ph);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) return s;
    cairo_surface_flush(s);
    unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int r = 0; r < m->h; r++) {
        uint32_t *row = (uint32_t *)(px + (size_t)r * ph * stride);
        const float *src = m->data + (size_t)r * m->row_stride;
        for (int c = 0; c < m->w; c++) {
            const uint8_t *rgb = lut[render_cmap_level(src[(size_t)c * m->step], lo, hi)];
            uint32_t v = 0xff000000u | (uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | rgb[2];
            for (int k = 0; k < pw; k++) row[c * pw + k] = v;
        }
        for (int k = 1; k < ph; k++) memcpy(px + ((size_t)r * ph + k) * stride, row, (size_t)m->w * pw * 4);
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* Paint at integer coordinates, 1:1: a plain copy on an image surface. */
static void paint_surface(render_canvas *cv, cairo_surface_t *s, int x, int y) {
    cairo_t *cr = cv->cr;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
}

void render_paint_map(render_canvas *cv, int x, int y, const render_map *m, int pw, int ph,
                      const uint8_t (*lut)[3], float lo, float hi) {
    /* The squares are baked in at the figure's resolution for every format:
     * Cairo 1.16's SVG output has no way to ask for nearest-neighbour
     * scaling, and PDF viewers differ (poppler smooths images scaled up less
     * than 4x even when /Interpolate is false). Baked squares are crisp in
     * every viewer at 100% and compress to almost nothing. */
    cairo_surface_t *s = map_surface(m, pw, ph, lut, lo, hi);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) paint_surface(cv, s, x, y);
    cairo_surface_destroy(s);
}

void render_paint_rgb(render_canvas *cv, int x, int y, const float *rgb, int h, int w, int p, float lo, float hi) {
    /* p x p squares baked in, as in render_paint_map */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w * p, h * p);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return;
    }
    cairo_surface_flush(s);
    unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int r = 0; r < h * p; r++) {
        uint32_t *row = (uint32_t *)(px + (size_t)r * stride);
        for (int c = 0; c < w * p; c++) {
            const float *v = rgb + ((size_t)(r / p) * w + (size_t)(c / p)) * 3;
            uint32_t out = 0xff000000u;
            for (int k = 0; k < 3; k++) {
                float f = (v[k] - lo) * scale + 0.5f;
                int b = f >= 255.0f ? 255 : f > 0.0f ? (int)f : 0;
                out |= (uint32_t)b << (16 - 8 * k);
            }
            row[c] = out;
        }
    }
    cairo_surface_mark_dirty(s);
    paint_surface(cv, s, x, y);
    cairo_surface_destroy(s);
}

void render_frame(render_canvas *cv, int x, int y, int w, int h, uint32_t rgb) {
    cairo_t *cr = cv->cr;
    render_set_rgb(cr, rgb);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x - 0.5, y - 0.5, w + 1, h + 1);
    cairo_stroke(cr);
}

int render_colorbar_label_width(cairo_t *measure, float lo, float hi) {
    char a[32], b[32];
    render_format_number(a, sizeof a, lo);
    render_format_number(b, sizeof b, hi);
    double wa = render_text_width(measure, FONT_REGULAR, TEXT_LABEL, a);
    double wb = render_text_width(measure, FONT_REGULAR, TEXT_LABEL, b);
    /* ticks between may be as wide as "-0.25" */
    double wt = render_text_width(measure, FONT_REGULAR, TEXT_LABEL, "-0.025");
    double w = wa > wb ? wa : wb;
    if (wt > w) w = wt;
    return (int)ceil(w) + 8;
}

void render_colorbar(render_canvas *cv, int x, int y, int w, int h, const uint8_t (*lut)[3], float lo, float hi,
                     const char *lo_label, const char *hi_label) {
    /* one row per figure pixel, coloured by the level its value falls in,
     * baked like the maps (a scaled-up 256-level ramp would be smoothed by
     * viewers, and bands drawn as rectangles show seams) */
    int rows = h;
    float *ramp = malloc((size_t)rows * sizeof *ramp);
    if (!ramp) return;
    /* the ramp runs over [0, 1], not [lo, hi]: its pixels are the same for
     * any range, so a last-bit change of the data's maximum cannot move a
     * level boundary of the bar (figures are checked by checksum) */
    for (int r = 0; r < rows; r++) ramp[r] = 1.0f - ((float)r + 0.5f) / (float)rows;
    render_map m = {ramp, rows, 1, 1, 1};
    cairo_surface_t *s = map_surface(&m, w, 1, lut, 0.0f, hi > lo ? 1.0f : 0.0f);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) paint_surface(cv, s, x, y);
    cairo_surface_destroy(s);
    free(ramp);
    render_frame(cv, x, y, w, h, COLOR_AXIS);

    /* exact ends, then nice ticks that keep clear of them */
    char buf[32];
    render_set_rgb(cv->cr, COLOR_TEXT);
    render_format_number(buf, sizeof buf, hi);
    render_text(cv, x + w + 4, y + 4, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, hi_label ? hi_label : buf);
    render_format_number(buf, sizeof buf, lo);
    render_text(cv, x + w + 4, y + h + 4, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, lo_label ? lo_label : buf);
    double ticks[16];
    int nt = hi > lo && !lo_label && !hi_label ? render_nice_ticks(lo, hi, h / 40 > 1 ? h / 40 : 1, ticks, 16) : 0;
    cairo_set_line_width(cv->cr, 1);
    for (int i = 0; i < nt; i++) {
        double ty = y + h - (ticks[i] - lo) / (hi - lo) * h;
        if (ty - y < 16 || y + h - ty < 16) continue; /* keep clear of the end labels */
        double py = floor(ty) + 0.5;
        render_set_rgb(cv->cr, COLOR_AXIS);
        cairo_move_to(cv->cr, x + w, py);
        cairo_line_to(cv->cr, x + w + 3, py);
        cairo_stroke(cv->cr);
        render_set_rgb(cv->cr, COLOR_MUTED);
        render_format_tick(buf, sizeof buf, ticks[i], nt > 1 ? ticks[1] - ticks[0] : ticks[i]);
        render_text(cv, x + w + 5, ty + 3.5, FONT_REGULAR, TEXT_LABEL, ALIGN_LEFT, buf);
    }
}
