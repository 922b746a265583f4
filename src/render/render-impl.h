/* Internal to src/render: the canvas every figure draws on, text and colour
 * helpers, and the pieces figures share (tiles, colorbars, number formats).
 *
 * A figure is laid out first (sizes are integers in figure pixels; SVG and
 * PDF use the same numbers as px / pt) and then drawn once on a canvas whose
 * size is known, so no figure needs a recording surface or a second pass. */
#pragma once
#include <cairo.h>
#include <stdint.h>
#include <stdio.h>

#include "cnnviz/io.h"
#include "cnnviz/render.h"

#ifndef CNNVIZ_VERSION
#define CNNVIZ_VERSION "unknown"
#endif

/* 8-bit RGB lookup table of a colormap (src/render/colormaps.c, generated). */
const uint8_t (*cnnviz_cmap_lut(cnnviz_cmap c))[3];
/* level 0..255 of v in [lo, hi], matplotlib's rule (see cnnviz_cmap_rgb) */
int render_cmap_level(float v, float lo, float hi);

typedef enum { RENDER_PNG, RENDER_SVG, RENDER_PDF } render_format;

typedef struct {
    render_format fmt;
    int width, height;
    cairo_surface_t *surface;
    cairo_t *cr;
    cnnviz_atomic_file af;
    FILE *fp;           /* the temporary file the vector surfaces stream into */
    int write_failed;   /* a stream write failed (disk full) */
    int svg_tag_state;  /* SVG: 0-3 chars of "<svg" matched, 4: inside the tag, to place <metadata> */
    char *svg_metadata; /* SVG: the <metadata> element still to insert, or NULL */
    const cnnviz_render_options *opt;
} render_canvas;

/* From the extension of path; -1 with err filled for anything else. */
int render_format_of(const char *path, cnnviz_error *err);

/* Start a width x height figure on a white background: checks the extension,
 * opens the temporary file and sets up the font. On failure nothing is left. */
cnnviz_status render_canvas_open(render_canvas *cv, const char *path, int width, int height, const char *title,
                                 const cnnviz_render_options *opt, cnnviz_error *err);
/* Finish the surface, write the file (PNG: with provenance) and rename it
 * into place. Always releases the canvas; on failure no file is left. */
cnnviz_status render_canvas_close(render_canvas *cv, cnnviz_error *err);
void render_canvas_abort(render_canvas *cv);

/* PNG from a cairo RGB24/ARGB32 surface (un-premultiplied when alpha is kept),
 * fixed zlib settings, tEXt provenance and no time chunk. */
cnnviz_status render_png_write(FILE *fp, const char *path, cairo_surface_t *surface, int keep_alpha,
                               const cnnviz_provenance *prov, const char *title, cnnviz_error *err);

/* --- text ------------------------------------------------------------------- */
enum { FONT_REGULAR = 0, FONT_BOLD = 1 };
enum { ALIGN_LEFT, ALIGN_CENTER, ALIGN_RIGHT };

/* Text sizes used by every figure, in figure pixels. */
#define TEXT_FIGURE_TITLE 16
#define TEXT_PANEL_TITLE 13
#define TEXT_NOTE 11
#define TEXT_LABEL 10
#define TEXT_SMALL 9

/* A 1x1 context for measuring text before the canvas exists; NULL on failure
 * with err filled (also when DejaVu Sans does not resolve to DejaVu). */
cairo_t *render_measure_context(cnnviz_error *err);
void render_set_font(cairo_t *cr, int weight, double size);
double render_text_width(cairo_t *cr, int weight, double size, const char *s);
/* Draw s with its baseline at y; align picks which end x is. PNG output
 * fills the glyph outlines (cairo's own rasteriser, so no FreeType bitmap
 * differences between machines); SVG/PDF keep real text. */
void render_text(const render_canvas *cv, double x, double y, int weight, double size, int align, const char *s);
void render_set_rgb(cairo_t *cr, uint32_t rgb);

/* Colours (0xRRGGBB). */
#define COLOR_TEXT 0x222222u
#define COLOR_MUTED 0x666666u
#define COLOR_FRAME 0xb0b0b0u
#define COLOR_AXIS 0x444444u
#define COLOR_GRID 0xe4e4e4u
#define COLOR_C0 0x1f77b4u /* matplotlib's first two cycle colours */
#define COLOR_C1 0xff7f0eu
#define COLOR_DEAD 0xd62728u
#define COLOR_WEAK 0xc07000u /* dark amber: alive but weak */

/* --- shared pieces -------------------------------------------------------- */
/* Paint an h x w value array (row_stride floats between rows, step floats
 * between neighbours in a row) at (x, y), each value as a pw x ph block
 * coloured through lut over [lo, hi]. */
typedef struct {
    const float *data;
    int h, w;
    size_t row_stride, step;
} render_map;
void render_paint_map(render_canvas *cv, int x, int y, const render_map *m, int pw, int ph,
                      const uint8_t (*lut)[3], float lo, float hi);
/* Paint an RGB image (h,w,3 floats) stretched from [lo, hi] to 0..255. */
void render_paint_rgb(render_canvas *cv, int x, int y, const float *rgb, int h, int w, int p, float lo, float hi);
/* A 1-px frame just outside the rectangle (x, y, w, h). */
void render_frame(render_canvas *cv, int x, int y, int w, int h, uint32_t rgb);

/* Vertical colorbar at (x, y), w x h, lo at the bottom, hi at the top, with
 * the exact ends labelled and nice ticks between them where they fit.
 * lo_label/hi_label replace the end numbers (and drop the ticks) when given. */
void render_colorbar(render_canvas *cv, int x, int y, int w, int h, const uint8_t (*lut)[3], float lo, float hi,
                     const char *lo_label, const char *hi_label);
/* Width the colorbar's labels need right of the bar. */
int render_colorbar_label_width(cairo_t *measure, float lo, float hi);

/* "%.3g" without "-0" and with "e" exponents only where needed. */
void render_format_number(char *buf, size_t n, double v);
/* A tick label with as many decimals as the tick step needs, the same for
 * every tick of an axis (0.90, 0.92, ... rather than 0.9, 0.92). */
void render_format_tick(char *buf, size_t n, double v, double step);
/* Ticks at 1, 2, 2.5 or 5 times a power of ten covering [lo, hi], at most
 * max_ticks of them; returns how many were written to out. */
int render_nice_ticks(double lo, double hi, int max_ticks, double *out, int cap);

/* Columns for a near-square grid of n tiles: from ceil(sqrt n) up to
 * ceil(sqrt 2n), the one that leaves fewest empty cells. */
int render_grid_columns(int n);

/* Range of n values, ignoring NaN; lo = hi = 0 when there are none. */
void render_range(const float *v, size_t n, size_t stride, float *lo, float *hi);
