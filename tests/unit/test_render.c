// tests/unit/test_render.c - pictures from synthetic attention of known structure
// (identity, previous token, uniform, one-hot on the first token): the RGB
// buffer is checked before encoding (cell centres, colorbar ends, label ink,
// masked cells), then the PNG container, the SVG text and the terminal codes.
#include "attn.h"
#include "check.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { IDENTITY, PREVIOUS, UNIFORM, FIRST };

// (T, T) causal attention with a known structure
static float *synth(int T, int kind) {
    float *p = calloc((size_t)T * T, sizeof *p);
    for (int q = 0; q < T; q++)
        for (int k = 0; k <= q; k++) {
            float v = kind == IDENTITY ? k == q
                    : kind == PREVIOUS ? (q == 0 ? 1 : k == q - 1)
                    : kind == UNIFORM  ? 1.0f / (q + 1)
                                       : k == 0;
            p[(size_t)q * T + k] = v;
        }
    return p;
}

static const uint8_t *px(const attn_image *im, int x, int y) { return im->rgb + 3 * ((size_t)y * im->w + x); }
static int same(const uint8_t *a, const uint8_t *b) { return a[0] == b[0] && a[1] == b[1] && a[2] == b[2]; }
static int grey(const uint8_t *a) { return a[0] == a[1] && a[1] == a[2]; }

// centre pixel of cell (q, k) of panel (r, c)
static const uint8_t *cell(const attn_image *im, int r, int c, int q, int k) {
    return px(im, im->x0 + c * im->dx + k * im->cell + im->cell / 2, im->y0 + r * im->dy + q * im->cell + im->cell / 2);
}

// Every pixel of every cell of panel (r, c) of a (T, T) map against the
// colour expected from value(q, k) under `scale`; above the diagonal the
// masked cells' hatching: grey, darker on the lines x + y = 0 mod 6 that run
// across cells, one grey on the lines and one off them.
static int check_cells(const attn_image *im, int r, int c, const float *p, int T, attn_scale scale,
                       char *why, size_t n) {
    const uint8_t *line = NULL, *off = NULL;
    uint8_t zero[3];
    attn_colormap(0, zero);
    for (int q = 0; q < T; q++) {
        float rmax = 0;
        for (int k = 0; k < T; k++) rmax = p[q * T + k] > rmax ? p[q * T + k] : rmax;
        for (int k = 0; k < T; k++) {
            uint8_t want[3];
            attn_colormap(attn_scale_t(scale, p[q * T + k], rmax), want);
            int x0 = im->x0 + c * im->dx + k * im->cell, y0 = im->y0 + r * im->dy + q * im->cell;
            for (int y = y0; y < y0 + im->cell; y++)
                for (int x = x0; x < x0 + im->cell; x++) {
                    const uint8_t *got = px(im, x, y), **seen = (x + y) % 6 ? &off : &line;
                    if (k <= q && !same(got, want)) {
                        snprintf(why, n, "cell (%d,%d) value %g at pixel (%d,%d) is %d,%d,%d, colormap gives %d,%d,%d",
                                 q, k, p[q * T + k], x, y, got[0], got[1], got[2], want[0], want[1], want[2]);
                        return 0;
                    }
                    if (k <= q) continue;
                    if (!*seen) *seen = got;
                    if (!grey(got) || same(got, zero) || !same(got, *seen)) {
                        snprintf(why, n, "masked cell (%d,%d) pixel (%d,%d) is %d,%d,%d, not the grey of its %s", q,
                                 k, x, y, got[0], got[1], got[2], seen == &line ? "hatch lines" : "background");
                        return 0;
                    }
                }
        }
    }
    if (line && off && line[0] >= off[0]) {
        snprintf(why, n, "hatch lines %d not darker than the masked background %d", line[0], off[0]);
        return 0;
    }
    return 1;
}

static int ink(const attn_image *im, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            if (x >= 0 && y >= 0 && x < im->w && y < im->h && px(im, x, y)[0] < 60 && grey(px(im, x, y))) n++;
    return n;
}

static double luminance(const uint8_t c[3]) {
    double l = 0, w[3] = {0.2126, 0.7152, 0.0722};
    for (int i = 0; i < 3; i++) {
        double v = c[i] / 255.0;
        l += w[i] * (v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    return l;
}

static void test_colormaps(void) {
    uint8_t a[3], b[3];
    int mono = 1, chroma = 1;
    double prev = -1;
    for (int i = 0; i <= 255; i++) {
        attn_colormap(i / 255.0f, a);
        double l = luminance(a);
        if (l <= prev) mono = 0;
        prev = l;
        int mx = a[0] > a[1] ? (a[0] > a[2] ? a[0] : a[2]) : (a[1] > a[2] ? a[1] : a[2]);
        int mn = a[0] < a[1] ? (a[0] < a[2] ? a[0] : a[2]) : (a[1] < a[2] ? a[1] : a[2]);
        if (mx - mn < 20) chroma = 0;
    }
    check(mono, "render_cmap_monotone", "luminance does not rise along the sequential map");
    check(chroma, "render_cmap_not_grey", "a sequential colour is grey (masked cells would be confused)");
    attn_colormap(0, a), attn_colormap(1, b);
    check(luminance(a) < 0.05 && a[2] > a[1] && b[0] > 200 && b[1] > 200 && b[2] < 120,
          "render_cmap_ends", "0 -> %d,%d,%d (want dark violet), 1 -> %d,%d,%d (want yellow)", a[0], a[1], a[2],
          b[0], b[1], b[2]);
    attn_colormap_div(0, a);
    check(a[0] > 235 && a[1] > 235 && a[2] > 235, "render_div_centre", "0 -> %d,%d,%d", a[0], a[1], a[2]);
    int sym = 1;
    for (int i = 1; i <= 10; i++) {
        attn_colormap_div(-i / 10.0f, a), attn_colormap_div(i / 10.0f, b);
        if (fabs(luminance(a) - luminance(b)) > 0.03 || a[2] <= a[0] || b[0] <= b[2]) sym = 0;
    }
    check(sym, "render_div_symmetric", "the blue and red arms differ in lightness or hue");
}

static void test_font(void) {
    attn_image im = {.w = 64, .h = 16};
    im.rgb = malloc(64 * 16 * 3);
    const uint8_t black[3] = {0, 0, 0};
    int all = 1;
    char s[8];
    for (int c = 0x21; c < 0x7F && all; c++) { // every printable ASCII glyph has ink
        memset(im.rgb, 255, 64 * 16 * 3);
        snprintf(s, sizeof s, "%c", c);
        attn_draw_text(&im, 0, 0, s, black, 1, 0);
        if (!ink(&im, 0, 0, 64, 16)) all = 0, printf("no ink for '%c'\n", c);
    }
    for (int c = 0xA1; c <= 0xFF && all; c++) { // and Latin-1 (not the soft hyphen's neighbours only)
        memset(im.rgb, 255, 64 * 16 * 3);
        snprintf(s, sizeof s, "%c%c", 0xC0 | c >> 6, 0x80 | (c & 63));
        attn_draw_text(&im, 0, 0, s, black, 1, 0);
        if (!ink(&im, 0, 0, 64, 16)) all = 0, printf("no ink for U+%04X\n", c);
    }
    check(all, "render_font_coverage", "a printable ASCII or Latin-1 character draws nothing");
    // a character the font lacks is a box, never dropped; é differs from e
    memset(im.rgb, 255, 64 * 16 * 3);
    int w = attn_draw_text(&im, 0, 0, "\xE4\xB8\x80", black, 1, 0); // U+4E00
    int box = ink(&im, 0, 0, 64, 16);
    check(w > 0 && box >= 16, "render_font_placeholder", "missing character: width %d, %d ink pixels", w, box);
    memset(im.rgb, 255, 64 * 16 * 3);
    attn_draw_text(&im, 0, 0, "e", black, 1, 0);
    int e = ink(&im, 0, 0, 64, 16);
    memset(im.rgb, 255, 64 * 16 * 3);
    attn_draw_text(&im, 0, 0, "\xC3\xA9", black, 1, 0);
    check(ink(&im, 0, 0, 64, 16) > e, "render_font_accent", "é has no more ink than e");
    // Hangul syllables composed from jamo: every one drawn, two cells wide, and
    // syllables that differ in one jamo differ in ink
    int hangul = 1, differ = 1;
    uint8_t prev[64 * 16 * 3];
    for (uint32_t cp = 0xAC00; cp <= 0xD7A3; cp++) {
        char u[4] = {(char)(0xE0 | cp >> 12), (char)(0x80 | (cp >> 6 & 63)), (char)(0x80 | (cp & 63)), 0};
        memset(im.rgb, 255, 64 * 16 * 3);
        int hw = attn_draw_text(&im, 0, 0, u, black, 1, 0);
        if (hw != 2 * attn_text_width("a", 1) || ink(&im, 0, 0, 64, 16) < 8) hangul = 0;
        if (cp > 0xAC00 && !memcmp(prev, im.rgb, sizeof prev)) differ = 0, printf("U+%04X looks like U+%04X\n", cp, cp - 1);
        memcpy(prev, im.rgb, sizeof prev);
    }
    check(hangul && differ, "render_font_hangul", "a Hangul syllable is missing, narrow or the same as its neighbour");
    check(attn_text_width("ab\xC3\xA9\xFF", 1) == 4 * attn_text_width("a", 1), "render_font_width",
          "width of 4 characters (one an invalid byte) is %d", attn_text_width("ab\xC3\xA9\xFF", 1));
    free(im.rgb);
}

static void test_heatmaps(void) {
    const int T = 8;
    const char *labels[8] = {"<s>", "\xC2\xB7" "The", "\xC2\xB7" "cat", "\xC2\xB7" "sat", "\xC2\xB7" "on", "\xC2\xB7" "the",
                             "\xC2\xB7" "mat", "."};
    static const char *const kinds[] = {"identity", "previous", "uniform", "first"};
    for (int kind = IDENTITY; kind <= FIRST; kind++)
        for (int scale = ATTN_SCALE_FIXED; scale <= ATTN_SCALE_LOG; scale++) {
            float *p = synth(T, kind);
            attn_panel pn = {p, 0, 0};
            attn_figure f = {.T = T, .labels = labels, .title = "test - layer 0, head 0", .panels = &pn,
                             .rows = 1, .cols = 1, .causal = 1, .scale = scale};
            attn_image im;
            char name[64], why[256] = "";
            snprintf(name, sizeof name, "render_cells_%s_%s", kinds[kind],
                     scale == ATTN_SCALE_FIXED ? "fixed" : scale == ATTN_SCALE_ROW ? "row" : "log");
            int rc = attn_render_image(&f, &im);
            if (rc) { check(0, name, "%s", attn_errmsg()); free(p); continue; }
            check(check_cells(&im, 0, 0, p, T, scale, why, sizeof why), name, "%s", why);
            if (kind == UNIFORM && scale == ATTN_SCALE_FIXED) {
                // the values the test expects, without attn_scale_t: 1/(q+1) on the fixed scale
                uint8_t want[3];
                attn_colormap(1.0f / 3, want);
                check(same(cell(&im, 0, 0, 2, 1), want), "render_uniform_third", "row 2 is not 1/3");
                attn_colormap(1, want);
                check(same(cell(&im, 0, 0, 0, 0), want), "render_uniform_first_row", "row 0 is not 1");
            }
            if (kind == IDENTITY && scale == ATTN_SCALE_FIXED) {
                uint8_t top[3], bottom[3];
                attn_colormap(1, top), attn_colormap(0, bottom);
                int cx = im.bar_x + im.bar_w / 2;
                check(same(px(&im, cx, im.bar_y), top) && same(px(&im, cx, im.bar_y + im.bar_h - 1), bottom),
                      "render_colorbar_ends", "colorbar top %d,%d,%d bottom %d,%d,%d", px(&im, cx, im.bar_y)[0],
                      px(&im, cx, im.bar_y)[1], px(&im, cx, im.bar_y)[2], px(&im, cx, im.bar_y + im.bar_h - 1)[0],
                      px(&im, cx, im.bar_y + im.bar_h - 1)[1], px(&im, cx, im.bar_y + im.bar_h - 1)[2]);
                check(ink(&im, im.bar_x + im.bar_w + 4, im.bar_y - 8, im.bar_x + im.bar_w + 40, im.bar_y + 8) > 3,
                      "render_colorbar_ticks", "no tick text beside the top of the colorbar");
                int ylab = 1, xlab = 1;
                for (int k = 0; k < T; k++) { // every label present, on both axes, when cells are large
                    int y = im.y0 + k * im.cell, x = im.x0 + k * im.cell;
                    if (ink(&im, im.x0 - 100, y, im.x0 - 2, y + im.cell) < 4) ylab = 0;
                    if (ink(&im, x, im.y0 + T * im.cell + 2, x + im.cell, im.y0 + T * im.cell + 100) < 4) xlab = 0;
                }
                check(im.label_stride == 1 && ylab && xlab, "render_labels", "stride %d, y labels %s, x labels %s",
                      im.label_stride, ylab ? "ok" : "missing", xlab ? "ok" : "missing");
                check(ink(&im, 0, 0, im.w, im.y0 - 30) > 200, "render_title", "no title ink above the map");
                check(im.w < 4096 && im.h < 4096 && im.cell >= 12, "render_size", "%d x %d, cell %d", im.w, im.h,
                      im.cell);
                uint8_t *png;
                size_t n;
                rc = attn_png_encode(&im, &png, &n);
                int ok = !rc && n > 33 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8) && !memcmp(png + 12, "IHDR", 4);
                uint32_t w = ok ? (uint32_t)png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19] : 0;
                uint32_t h = ok ? (uint32_t)png[20] << 24 | png[21] << 16 | png[22] << 8 | png[23] : 0;
                check(ok && w == (uint32_t)im.w && h == (uint32_t)im.h && png[24] == 8 && png[25] == 2,
                      "render_png_header", "PNG %s, %u x %u (want %d x %d), depth %d type %d", ok ? "ok" : "bad", w,
                      h, im.w, im.h, ok ? png[24] : -1, ok ? png[25] : -1);
                if (!rc) free(png);
            }
            attn_image_free(&im);
            free(p);
        }
}

static void test_drop_first_and_jsd(void) {
    const int T = 5;
    float *u = synth(T, UNIFORM), d[16], *f1 = synth(T, FIRST);
    attn_drop_first(u, T, d);
    int ok = 1;
    for (int q = 1; q < T; q++) // row q keeps keys 1..q, each 1/q
        for (int k = 1; k < T; k++)
            if (fabsf(d[(q - 1) * (T - 1) + k - 1] - (k <= q ? 1.0f / q : 0)) > 1e-6f) ok = 0;
    check(ok, "render_drop_first_uniform", "rows not renormalised to 1/q");
    attn_drop_first(f1, T, d);
    ok = 1;
    for (int i = 0; i < 16; i++) ok &= d[i] == 0;
    check(ok, "render_drop_first_empty", "rows with all mass on key 0 are not zero after dropping it");
    float a[2] = {1, 0}, b[2] = {0, 1}, c[2] = {0.5f, 0.5f};
    check(fabs(attn_jsd_bits(a, b, 2) - 1) < 1e-9 && fabs(attn_jsd_bits(a, a, 2)) < 1e-12 &&
              fabs(attn_jsd_bits(a, c, 2) - (1.5 - 0.75 * log2(3.0) + 0.0) ) < 1e-6,
          "render_jsd", "JSD(a,b)=%g JSD(a,a)=%g JSD(a,c)=%g", attn_jsd_bits(a, b, 2), attn_jsd_bits(a, a, 2),
          attn_jsd_bits(a, c, 2));
    // a difference map: panels on one scale, a diverging panel, symmetric range
    float *prev = synth(T, PREVIOUS), *diff = malloc(sizeof(float) * T * T);
    for (int i = 0; i < T * T; i++) diff[i] = u[i] - prev[i];
    attn_panel pn[3] = {{u, 0, 0}, {prev, 0, 0}, {diff, 1, 0}};
    attn_figure f = {.T = T, .title = "A vs B", .panels = pn, .rows = 1, .cols = 3, .causal = 1};
    attn_image im;
    char why[256] = "";
    int rc = attn_render_image(&f, &im);
    check(!rc, "render_compare", "%s", attn_errmsg());
    if (!rc) {
        check(check_cells(&im, 0, 0, u, T, ATTN_SCALE_FIXED, why, sizeof why) &&
                  check_cells(&im, 0, 1, prev, T, ATTN_SCALE_FIXED, why, sizeof why),
              "render_compare_panels", "%s", why);
        uint8_t want[3];
        // the symmetric range is max |A - B| = 4/5 (last row: uniform 1/5 against previous 1)
        attn_colormap_div(-1, want);
        int ok1 = same(cell(&im, 0, 2, 4, 3), want);
        attn_colormap_div(-0.5f / 0.8f, want);
        ok1 &= same(cell(&im, 0, 2, 1, 0), want);
        attn_colormap_div(0, want);
        int ok0 = same(cell(&im, 0, 2, 0, 0), want);
        check(ok1 && ok0 && im.dbar_x > 0, "render_compare_diff", "diff cells (4,3), (1,0) %s, (0,0) %s, bar %d",
              ok1 ? "ok" : "wrong", ok0 ? "ok" : "wrong", im.dbar_x);
        attn_image_free(&im);
    }
    free(u), free(f1), free(prev), free(diff);
}

static void test_sizes(void) {
    // long prompts: cells shrink, labels thin out with a stated stride, size < 4096
    int Ts[] = {100, 700, 5000};
    for (int i = 0; i < 3; i++) {
        int T = Ts[i];
        float *p = synth(T, PREVIOUS);
        attn_panel pn = {p, 0, 0};
        attn_figure f = {.T = T, .title = "long", .panels = &pn, .rows = 1, .cols = 1, .causal = 1};
        attn_image im;
        char name[64];
        snprintf(name, sizeof name, "render_long_%d", T);
        int rc = attn_render_image(&f, &im);
        check(!rc && im.w < 4096 && im.h < 4096 && im.label_stride >= 1 && (T < 1000 || im.tpc > 1), name,
              "rc %d, %d x %d, stride %d, tokens/cell %d", rc, im.w, im.h, im.label_stride, im.tpc);
        if (!rc && T == 700) {
            char why[128] = "";
            check(im.label_stride > 1 && check_cells(&im, 0, 0, p, T, ATTN_SCALE_FIXED, why, sizeof why),
                  "render_long_cells", "stride %d %s", im.label_stride, why);
        }
        if (!rc) attn_image_free(&im);
        free(p);
    }
    // grids of layer x head panels with one colorbar
    int shapes[2][2] = {{6, 8}, {12, 12}};
    for (int s = 0; s < 2; s++) {
        int R = shapes[s][0], C = shapes[s][1], T = 16;
        attn_panel *pn = calloc((size_t)R * C, sizeof *pn);
        for (int i = 0; i < R * C; i++) pn[i].p = synth(T, i % 4);
        attn_figure f = {.T = T, .title = "grid", .panels = pn, .rows = R, .cols = C, .causal = 1};
        attn_image im;
        char name[64], why[256] = "";
        snprintf(name, sizeof name, "render_grid_%dx%d", R, C);
        int rc = attn_render_image(&f, &im);
        int ok = !rc && im.w < 4096 && im.h < 4096 && im.cell >= 4;
        if (ok) ok = check_cells(&im, R - 1, C - 1, pn[R * C - 1].p, T, ATTN_SCALE_FIXED, why, sizeof why);
        check(ok, name, "rc %d %d x %d cell %d %s", rc, im.w, im.h, im.cell, why);
        if (!rc) attn_image_free(&im);
        for (int i = 0; i < R * C; i++) free((void *)pn[i].p);
        free(pn);
    }
}

static void test_svg_term(void) {
    const int T = 4;
    const char *labels[4] = {"<s>", "a&b", "\xED\x95\x9C\xEA\xB5\xAD", "\xF0\x9F\x99\x82\xFF"};
    float *p = synth(T, IDENTITY);
    attn_panel pn = {p, 0, 0};
    attn_figure f = {.T = T, .labels = labels, .title = "t <1>", .panels = &pn, .rows = 1, .cols = 1, .causal = 1};
    char *svg;
    size_t n;
    int rc = attn_render_svg(&f, &svg, &n);
    check(!rc && strstr(svg, ">&lt;s&gt;<") && strstr(svg, ">a&amp;b<") && strstr(svg, ">\xED\x95\x9C\xEA\xB5\xAD<") &&
              strstr(svg, ">\xF0\x9F\x99\x82\xEF\xBF\xBD<") && strstr(svg, "t &lt;1&gt;") && strstr(svg, "</svg>"),
          "render_svg_text", "labels are not real, escaped UTF-8 text in the SVG");
    if (!rc) free(svg);
    char *txt;
    rc = attn_render_term(&f, &txt, &n);
    uint8_t one[3];
    attn_colormap(1, one);
    char want[64];
    snprintf(want, sizeof want, "\x1b[48;2;%d;%d;%dm", one[0], one[1], one[2]);
    check(!rc && strstr(txt, want) && strstr(txt, "\xE2\x96\x91"), "render_term", "no truecolor cells or masked shade");
    if (!rc) free(txt);
    free(p);
}

// --png-cases DIR: rasters whose zlib streams reach the deflate's edges
// (a 4-byte stream, incompressible noise, 258-byte matches, matches exactly
// 32768 bytes back and none further, runs of every length), written as DIR/<name>.png for
// tests/unit/t_deflate.py to inflate with Python's zlib and compare with the
// same pixels made there. Pixel (x, y) channel c of each is px_case().
static uint32_t mix(uint32_t a) {
    a ^= a >> 16, a *= 0x7feb352dU, a ^= a >> 15, a *= 0x846ca68bU, a ^= a >> 16;
    return a;
}

static uint8_t px_case(int which, int x, int y, int c) {
    switch (which) {
    case 0: return (uint8_t)mix((uint32_t)c);                                           // one: 1 x 1
    case 1: return (uint8_t)mix((uint32_t)(y * 1000003 + x * 3 + c));                   // noise
    case 2: return (uint8_t)(c == 0 ? 17 : c == 1 ? 99 : 201);                          // flat
    case 3: return (uint8_t)mix((uint32_t)((y % 2) * 7919 + x * 3 + c));                // window: rows 2 apart equal
    case 4: return (uint8_t)mix((uint32_t)((y % 3) * 7919 + x * 3 + c));                // far: rows 3 apart equal
    default: return (uint8_t)(mix((uint32_t)(x / (1 + (int)(mix((uint32_t)y) % 97)) * 31 + y / 3)) >> 8 * c); // runs
    }
}

static int png_cases(const char *dir) {
    static const struct { const char *name; int w, h; } cases[] = {
        { "one", 1, 1 }, { "noise", 200, 150 }, { "flat", 3000, 40 }, { "window", 5461, 6 }, { "far", 5461, 6 },
        { "runs", 700, 60 }
    }; // (rows of 1 + 3 * 5461 = 16384 bytes: window's equal the one 32768 bytes back, far's 49152)
    for (int i = 0; i < 6; i++) {
        attn_image im = { .w = cases[i].w, .h = cases[i].h, .rgb = malloc((size_t)cases[i].w * cases[i].h * 3) };
        if (!im.rgb) return 1;
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++)
                for (int c = 0; c < 3; c++) im.rgb[((size_t)y * im.w + x) * 3 + c] = px_case(i, x, y, c);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.png", dir, cases[i].name);
        int rc = attn_write_png(path, &im);
        free(im.rgb);
        if (rc) return fprintf(stderr, "%s: %s\n", path, attn_errmsg()), 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--png-cases")) return png_cases(argv[2]);
    test_colormaps();
    test_font();
    test_heatmaps();
    test_drop_first_and_jsd();
    test_sizes();
    test_svg_term();
    CHECK_EXIT();
}
