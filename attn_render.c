// attn_render.c - section "rendering" of attn (see attn.c for the table of
// contents): colormaps, text in our bitmap font (the glyphs: attn_font.c),
// an RGB raster, the figure layout shared by the PNG, SVG and terminal
// pictures, the PNG encoder (stb_image_write, the one file that compiles it,
// with our own deflate),
// the logit-lens picture.
//
// A figure (attn.h) is rows x cols square panels of (T, T) attention. Layout:
//
//   title (2x), note lines                          (the scale is always named)
//             column headings
//   row   y   +-------+ +-------+   colorbar  diverging bar
//   head  l   | panel | | panel |   ticks     ticks
//         a   +-------+ +-------+   hatched swatch: masked
//         b   x labels (rotated)
//              "attended to"
//
// with "from position" rotated along the left edge.
#include "attn.h"
#include "attn_font.h"
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// ---------------------------------------------------------------- deflate
// The zlib stream inside each PNG (RFC 1950/1951), in place of
// stb_image_write's own compressor, which searched hash chains and took 86%
// of `attn maps` (15 ms a picture of 892 x 816). Pictures are flat cells,
// repeated rows and text: greedy matching of 4 bytes against the last place
// the same 4 bytes were seen, extended 8 bytes at a time, finds their runs.
// One block of the fixed Huffman codes; stored blocks where that would be
// larger than the data.

#define ZHASH_BITS 15
#define ZWINDOW 32768
#define ZMAXLEN 258
#ifndef ZWAYS
#define ZWAYS 4 // earlier places kept per hash
#endif

// Fixed literal/length codes, bit-reversed (deflate sends a code's MSB first).
static uint16_t zlit_code[288];
static uint8_t zlit_bits[288];
static pthread_once_t zlit_once = PTHREAD_ONCE_INIT;

static uint32_t bit_reverse(uint32_t v, int n) {
    uint32_t r = 0;
    for (int i = 0; i < n; i++) r = r << 1 | (v >> i & 1);
    return r;
}

static void zlit_init(void) {
    for (int s = 0; s < 288; s++) {
        int n = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
        uint32_t c = s < 144 ? 0x30 + s : s < 256 ? 0x190 + s - 144 : s < 280 ? s - 256 : 0xC0 + s - 280;
        zlit_code[s] = (uint16_t)bit_reverse(c, n), zlit_bits[s] = (uint8_t)n;
    }
}

typedef struct { uint8_t *out; size_t n; uint64_t bits; int count; } zout;

// n <= 32 bits of v, least significant first
static void zput(zout *z, uint32_t v, int n) {
    z->bits |= (uint64_t)v << z->count;
    z->count += n;
    while (z->count >= 8) z->out[z->n++] = (uint8_t)z->bits, z->bits >>= 8, z->count -= 8;
}

static int top_bit(uint32_t x) { return 31 - __builtin_clz(x); }

// A match of len (3..258) bytes, dist (1..32768) back: the length symbol and
// its extra bits, then the distance code (5 bits) and its extra bits.
static void zmatch(zout *z, int len, int dist) {
    int x = len - 3, sym, eb = 0;
    if (x < 8) sym = 257 + x;
    else if (len == ZMAXLEN) sym = 285;
    else eb = top_bit((uint32_t)x) - 2, sym = 257 + 4 * (eb + 1) + (x >> eb & 3);
    zput(z, zlit_code[sym], zlit_bits[sym]);
    if (eb) zput(z, (uint32_t)x & ((1u << eb) - 1), eb);
    int y = dist - 1, dc = y, db = 0;
    if (y >= 4) db = top_bit((uint32_t)y) - 1, dc = 2 * (db + 1) + (y >> db & 1);
    zput(z, bit_reverse((uint32_t)dc, 5), 5);
    if (db) zput(z, (uint32_t)y & ((1u << db) - 1), db);
}

static uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Bytes equal at a and b, at most max (16 at a time with SSE2, then 8).
static int match_len(const uint8_t *a, const uint8_t *b, int max) {
    int n = 0;
#if defined(__SSE2__)
    for (; n + 16 <= max; n += 16) {
        int eq = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(a + n)),
                                                  _mm_loadu_si128((const __m128i *)(b + n))));
        if (eq != 0xffff) return n + __builtin_ctz(~(unsigned)eq);
    }
#endif
    while (n + 8 <= max) {
        uint64_t u, v;
        memcpy(&u, a + n, 8), memcpy(&v, b + n, 8);
        if (u != v) return n + __builtin_ctzll(u ^ v) / 8;
        n += 8;
    }
    while (n < max && a[n] == b[n]) n++;
    return n;
}

// The longest match for data + i among the ZWAYS earlier places in its
// bucket (the nearest of equal ones), then i put in the bucket; 0 if < 4.
// The bucket holds the places nearest first, so a farther one wins only by
// a longer match: one that does not hold the byte after the best so far, or
// any once the best is as long as can be, is not measured.
static int zfind(const uint8_t *data, int n, int i, uint32_t *bucket, int *dist) {
    int best = 0, max = n - i < ZMAXLEN ? n - i : ZMAXLEN;
    for (int w = 0; w < ZWAYS && best < max; w++) {
        int c = (int)bucket[w] - 1;
        if (c < 0 || i - c > ZWINDOW || data[c + best] != data[i + best]) continue;
        int len = match_len(data + c, data + i, max);
        if (len > best) best = len, *dist = i - c;
    }
    memmove(bucket + 1, bucket, (ZWAYS - 1) * sizeof *bucket);
    bucket[0] = (uint32_t)i + 1;
    return best >= 4 ? best : 0;
}

// The fixed-code block of data[0..n) into z; head: ZWAYS << ZHASH_BITS zeros.
static void zcompress(zout *z, const uint8_t *data, int n, uint32_t *head) {
    zput(z, 3, 3); // BFINAL, BTYPE 01: fixed codes
    int i = 0;
    while (i + 4 <= n) {
        int dist = 0, len = zfind(data, n, i, head + ZWAYS * (load32(data + i) * 2654435761u >> (32 - ZHASH_BITS)), &dist);
        if (len) {
            zmatch(z, len, dist);
            i += len;
        } else {
            zput(z, zlit_code[data[i]], zlit_bits[data[i]]);
            i++;
        }
    }
    for (; i < n; i++) zput(z, zlit_code[data[i]], zlit_bits[data[i]]);
    zput(z, zlit_code[256], zlit_bits[256]); // end of block
    if (z->count) zput(z, 0, 8 - z->count);
}

// data[0..n) as stored blocks of up to 65535 bytes.
static void zstored(zout *z, const uint8_t *data, int n) {
    int i = 0;
    do {
        int len = n - i < 65535 ? n - i : 65535;
        uint8_t *o = z->out + z->n;
        o[0] = i + len == n, o[1] = (uint8_t)len, o[2] = (uint8_t)(len >> 8), o[3] = (uint8_t)~len,
        o[4] = (uint8_t)(~len >> 8);
        memcpy(o + 5, data + i, (size_t)len);
        z->n += 5 + (size_t)len, i += len;
    } while (i < n);
}

#if defined(__SSE2__)
static uint32_t hsum_u32(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return (uint32_t)_mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1))));
}

// Adler-32's step over nb blocks of 16 bytes at p, from *a, *b (no mod): per
// block, b += 16 a + sum (16 - j) p[j] and a += sum p[j], so over them all
// b += 16 nb a + 16 (the sums of the blocks before each) + the weighted sums.
static void adler_blocks(const uint8_t *p, size_t nb, uint32_t *a, uint32_t *b) {
    const __m128i z = _mm_setzero_si128(), w_lo = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9),
                  w_hi = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
    __m128i s1 = z, before = z, s2 = z;
    for (size_t i = 0; i < nb; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * i));
        before = _mm_add_epi32(before, s1);
        s1 = _mm_add_epi32(s1, _mm_sad_epu8(v, z)); // (two 64-bit sums: u32 lanes 0 and 2)
        s2 = _mm_add_epi32(s2, _mm_madd_epi16(_mm_unpacklo_epi8(v, z), w_lo));
        s2 = _mm_add_epi32(s2, _mm_madd_epi16(_mm_unpackhi_epi8(v, z), w_hi));
    }
    *b += 16 * (uint32_t)nb * *a + 16 * hsum_u32(before) + hsum_u32(s2);
    *a += hsum_u32(s1);
}
#endif

// Adler-32 (RFC 1950) of p[0..n): a = 1 + the bytes, b = the sum of a after
// each byte, both mod 65521. With SSE2 16 bytes a step in vector sums, else
// a chain of two additions a byte (3.4 GB/s here, 10-15% of `attn maps`).
static uint32_t adler32(const uint8_t *p, size_t n) {
    uint32_t a = 1, b = 0;
    while (n) {
        size_t k = n < 5552 ? n : 5552, i = 0; // the most bytes before b can overflow
#if defined(__SSE2__)
        adler_blocks(p, k / 16, &a, &b);
        i = k / 16 * 16;
#endif
        for (; i < k; i++) a += p[i], b += a;
        a %= 65521, b %= 65521, p += k, n -= k;
    }
    return b << 16 | a;
}

// stb_image_write's STBIW_ZLIB_COMPRESS: a zlib stream of data in a malloc'ed
// buffer (its length in *out_len), or NULL. quality is not used.
static unsigned char *attn_deflate(unsigned char *data, int n, int *out_len, int quality) {
    (void)quality;
    pthread_once(&zlit_once, zlit_init);
    size_t stored = 2 + (size_t)n + 5 * ((size_t)n / 65535 + 1) + 4;
    size_t cap = (size_t)n + (size_t)n / 8 + 64 > stored ? (size_t)n + (size_t)n / 8 + 64 : stored;
    zout z = { malloc(cap), 2, 0, 0 };
    uint32_t *head = calloc((size_t)ZWAYS << ZHASH_BITS, sizeof *head);
    if (!z.out || !head || cap > (size_t)INT32_MAX) {
        free(z.out), free(head);
        return NULL;
    }
    z.out[0] = 0x78, z.out[1] = 0x01; // deflate, 32 KB window; (0x7801 % 31 == 0)
    zcompress(&z, data, n, head);
    free(head);
    if (z.n + 4 > stored) z.n = 2, zstored(&z, data, n);
    uint32_t a = adler32(data, (size_t)n);
    for (int s = 24; s >= 0; s -= 8) z.out[z.n++] = (uint8_t)(a >> s);
    *out_len = (int)z.n;
    return z.out;
}
#define STBIW_ZLIB_COMPRESS attn_deflate

// The PNG chunks' CRC-32 (ISO 3309: reflected polynomial 0xEDB88320, from
// ~0, inverted at the end) 8 bytes a step through 8 tables ("slicing by 8"),
// in place of stb_image_write's byte at a time (4.5% of `attn maps`).
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ c >> 1 : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++) // table t: a byte followed by t zero bytes
        for (int i = 0; i < 256; i++) crc_tab[t][i] = crc_tab[t - 1][i] >> 8 ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static unsigned int png_crc32(unsigned char *p, int n) {
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~0u;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ (p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24),
                 hi = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][lo >> 8 & 0xff] ^ crc_tab[5][lo >> 16 & 0xff] ^ crc_tab[4][lo >> 24] ^
            crc_tab[3][hi & 0xff] ^ crc_tab[2][hi >> 8 & 0xff] ^ crc_tab[1][hi >> 16 & 0xff] ^ crc_tab[0][hi >> 24];
    }
    for (; n > 0; n--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ c >> 8;
    return ~c;
}
#define STBIW_CRC32 png_crc32

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// ---------------------------------------------------------------- colormaps
// Both maps are curves in OKLab (Ottosson 2020), where equal distances look
// equally different. Sequential: lightness rises linearly from 0.27 to 0.93
// while the hue turns from violet (310 deg) through blue and teal to yellow
// (105 deg); chroma dips in the middle, where sRGB is narrow. Diverging: a
// blue arm (hue 255) and a red arm (hue 30) of equal lightness at equal |t|,
// meeting at near-white. Chroma is cut back into the sRGB gamut by bisection.
static void oklab_to_lin(double L, double a, double b, double rgb[3]) {
    double l = L + 0.3963377774 * a + 0.2158037573 * b;
    double m = L - 0.1055613458 * a - 0.0638541728 * b;
    double s = L - 0.0894841775 * a - 1.2914855480 * b;
    l = l * l * l, m = m * m * m, s = s * s * s;
    rgb[0] = +4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
    rgb[1] = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
    rgb[2] = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
}

static int lch_in_gamut(double L, double C, double h) {
    double c[3];
    oklab_to_lin(L, C * cos(h), C * sin(h), c);
    for (int i = 0; i < 3; i++)
        if (c[i] < -1e-7 || c[i] > 1 + 1e-7) return 0;
    return 1;
}

static void lch_to_srgb8(double L, double C, double hdeg, uint8_t out[3]) {
    double h = hdeg * M_PI / 180, c[3];
    if (!lch_in_gamut(L, C, h)) {
        double lo = 0, hi = C;
        for (int i = 0; i < 40; i++) {
            double mid = 0.5 * (lo + hi);
            if (lch_in_gamut(L, mid, h)) lo = mid; else hi = mid;
        }
        C = lo;
    }
    oklab_to_lin(L, C * cos(h), C * sin(h), c);
    for (int i = 0; i < 3; i++) {
        double x = c[i] < 0 ? 0 : c[i] > 1 ? 1 : c[i];
        x = x <= 0.0031308 ? 12.92 * x : 1.055 * pow(x, 1 / 2.4) - 0.055; // sRGB transfer
        out[i] = (uint8_t)lrint(255 * x);
    }
}

#define SEQ_N 256
#define DIV_N 257 // odd, so t = 0 is the middle entry
static uint8_t lut_seq[SEQ_N][3], lut_div[DIV_N][3];
static pthread_once_t lut_once = PTHREAD_ONCE_INIT;

// First use of the section: the colormap tables, and PNG rows stored unfiltered
// (stb's per-row filter search halves the encoding speed for ~10% smaller files).
static void lut_init(void) {
    stbi_write_force_png_filter = 0;
    for (int i = 0; i < SEQ_N; i++) {
        double t = i / (double)(SEQ_N - 1);
        lch_to_srgb8(0.27 + 0.66 * t, 0.12 - 0.04 * sin(M_PI * t) + 0.08 * t * t, 310 - 205 * t,
                     lut_seq[i]);
    }
    for (int i = 0; i < DIV_N; i++) {
        double t = 2.0 * i / (DIV_N - 1) - 1, u = fabs(t);
        lch_to_srgb8(0.97 - 0.52 * u, 0.16 * pow(u, 0.8), t < 0 ? 255 : 30, lut_div[i]);
    }
}

void attn_colormap(float t, uint8_t rgb[3]) {
    pthread_once(&lut_once, lut_init);
    if (isnan(t)) { rgb[0] = 255, rgb[1] = 0, rgb[2] = 255; return; } // as C_NAN
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    memcpy(rgb, lut_seq[lrintf(t * (SEQ_N - 1))], 3);
}

void attn_colormap_div(float t, uint8_t rgb[3]) {
    pthread_once(&lut_once, lut_init);
    if (isnan(t)) { rgb[0] = 255, rgb[1] = 0, rgb[2] = 255; return; } // as C_NAN
    if (!(t > -1)) t = -1;
    if (t > 1) t = 1;
    memcpy(rgb, lut_div[lrintf((t + 1) * 0.5f * (DIV_N - 1))], 3);
}

float attn_scale_t(attn_scale s, float v, float row_max) {
    float t;
    switch (s) {
    case ATTN_SCALE_ROW: t = row_max > 0 ? v / row_max : 0; break;
    case ATTN_SCALE_LOG:
        t = v > ATTN_LOG_FLOOR ? 1 - log10f(v) / log10f(ATTN_LOG_FLOOR) : 0;
        break;
    default: t = v; break;
    }
    return !(t > 0) ? 0 : t > 1 ? 1 : t;
}

// ---------------------------------------------------------------- text
// Next code point of UTF-8 text (advancing *s); a byte that starts no valid
// sequence is returned as U+FFFD and skipped alone.
static uint32_t utf8_next(const char **s) {
    uint32_t c;
    int n = attn_utf8_decode((const uint8_t *)*s, strnlen(*s, 4), &c);
    *s += n < 0 ? 1 : n;
    return c;
}

int attn_text_width(const char *s, int scale) {
    int w = 0;
    attn_glyph g;
    while (*s) {
        attn_glyph_of(utf8_next(&s), &g);
        w += (g.w + 1) * scale;
    }
    return w;
}

// ---------------------------------------------------------------- raster
static const uint8_t C_INK[3] = {0, 0, 0},
                     C_NOTE[3] = {70, 70, 70}, C_FRAME[3] = {120, 120, 120},
                     C_MASK[3] = {214, 214, 214}, C_HATCH[3] = {150, 150, 150},
                     C_NAN[3] = {255, 0, 255}; // non-finite cells: magenta, in neither colormap

static void put(attn_image *im, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->rgb + 3 * ((size_t)y * im->w + x), c, 3);
}

// [x, x + w) x [y, y + h) cut to the image; 0 if nothing is left.
static int clip(const attn_image *im, int *x, int *y, int *w, int *h) {
    int x0 = *x < 0 ? 0 : *x, y0 = *y < 0 ? 0 : *y;
    int x1 = *x + *w > im->w ? im->w : *x + *w, y1 = *y + *h > im->h ? im->h : *y + *h;
    if (x1 <= x0 || y1 <= y0) return 0;
    *x = x0, *y = y0, *w = x1 - x0, *h = y1 - y0;
    return 1;
}

// (the first row pixel by pixel, the others copies of it)
static void fill(attn_image *im, int x, int y, int w, int h, const uint8_t c[3]) {
    if (!clip(im, &x, &y, &w, &h)) return;
    uint8_t *row = im->rgb + 3 * ((size_t)y * im->w + x);
    for (int i = 0; i < w; i++) memcpy(row + 3 * i, c, 3);
    for (int j = 1; j < h; j++) memcpy(row + 3 * (size_t)j * im->w, row, 3 * (size_t)w);
}

static void frame(attn_image *im, int x, int y, int w, int h, const uint8_t c[3]) {
    fill(im, x, y, w, 1, c);
    fill(im, x, y + h - 1, w, 1, c);
    fill(im, x, y, 1, h, c);
    fill(im, x + w - 1, y, 1, h, c);
}

// Masked cells: light grey with diagonal hatching that runs across cells
// (drawn in image coordinates), never a colour of either colormap.
static void hatch(attn_image *im, int x, int y, int w, int h) {
    if (!clip(im, &x, &y, &w, &h)) return;
    fill(im, x, y, w, h, C_MASK);
    for (int j = y; j < y + h; j++) // pixels of (i + j) % 6 == 0
        for (int i = x + (6 - (x + j) % 6) % 6; i < x + w; i += 6) memcpy(im->rgb + 3 * ((size_t)j * im->w + i), C_HATCH, 3);
}

int attn_draw_text(attn_image *im, int x, int y, const char *s, const uint8_t rgb[3], int scale,
                   int rot90) {
    int pen = 0;
    attn_glyph g;
    while (*s) {
        attn_glyph_of(utf8_next(&s), &g);
        for (int r = 0; r < BOX_H; r++)
            for (int c = 0; c < g.w; c++) {
                if (!(g.row[r] >> (g.w - 1 - c) & 1)) continue;
                int gx = pen + c * scale, gy = r * scale;
                for (int j = 0; j < scale; j++)
                    for (int i = 0; i < scale; i++) {
                        if (rot90) put(im, x + gy + j, y - 1 - (gx + i), rgb);
                        else put(im, x + gx + i, y + gy + j, rgb);
                    }
            }
        pen += (g.w + 1) * scale;
    }
    return pen;
}

void attn_image_free(attn_image *im) {
    free(im->rgb);
    im->rgb = NULL;
}

// ---------------------------------------------------------------- layout
#define MAX_PX 4000 // every picture stays under 4096 pixels a side
#define MARGIN 16
#define BAR_W 16
#define MAX_NOTES 12
#define BIG_PX 1400 // panels larger than this get their surrounding text at 2x

// Where everything of a figure goes; computed once, drawn by every renderer.
typedef struct {
    int ts;                       // zoom of the text around the panels (1, or 2 on big pictures)
    int n, tpc, cell, panel, gap; // cells a side, tokens per cell, pixels
    int stride, lab_chars;        // label every stride-th token, cut to lab_chars
    int pos_labels;               // labels start with their position (when thinned out)
    int heads_rot;                // column headings turned upright: wider than their columns
    int x0, y0, dx, dy, mat_w, mat_h, w, h;
    int note_y, colhead_y, rowhead_r, ylab_r, xlab_y, xtitle_y;
    int bar_x, bar_y, bar_w, bar_h, dbar_x, legend_y;
    int has_seq, has_div, has_nan; // has_nan: some cell is NaN or inf (drawn C_NAN, in the legend)
    float dmax;
    char notes[MAX_NOTES][160];
    int n_notes;
} layout;

static void add_note(layout *L, const char *fmt, ...) {
    if (L->n_notes >= MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->notes[L->n_notes++], sizeof L->notes[0], fmt, ap);
    va_end(ap);
}

// Label i cut to at most max code points ("…" marks a cut), after its
// position when pos is set (labels thinned out); positions when the figure
// has no labels.
static void label_text(const attn_figure *f, int i, int max, int pos, char *out, size_t n) {
    if (!f->labels || !f->labels[i]) { snprintf(out, n, "%d", f->label0 + i); return; }
    int o = pos ? snprintf(out, n, "%d ", f->label0 + i) : 0;
    out += o, n -= (size_t)o;
    const char *s = f->labels[i], *cut = s;
    for (int k = 0; *s && k < max; k++) {
        if (k == max - 1) cut = s;
        utf8_next(&s);
    }
    size_t len = (size_t)((*s ? cut : s) - f->labels[i]);
    if (len > n - 4) len = n - 4;
    memcpy(out, f->labels[i], len);
    strcpy(out + len, *s ? "\xE2\x80\xA6" : "");
}

// 1, 2, 5, 10, 20, 50 ... the first at least s
static int nice_stride(double s) {
    for (int m = 1;; m *= 10) {
        if (s <= m) return m;
        if (s <= 2 * m) return 2 * m;
        if (s <= 5 * m) return 5 * m;
    }
}

static const char *const scale_names[] = {
    "colour scale: fixed 0..1, the same on every picture",
    "colour scale: row - each row divided by its largest value",
    "colour scale: log10 of attention, values below 1e-4 drawn as 1e-4",
};

// Tick positions (0 = bottom, 1 = top) and texts of a colorbar.
static void bar_ticks(const attn_figure *f, int div, float dmax, float t[5], char txt[5][16]) {
    static const char *const lg[5] = {"<=1e-4", "0.001", "0.01", "0.1", "1"};
    for (int i = 0; i < 5; i++) {
        t[i] = i / 4.0f;
        if (div && i != 2) snprintf(txt[i], 16, "%+.2g", (i - 2) / 2.0f * dmax);
        else if (div) snprintf(txt[i], 16, "0");
        else if (f->scale == ATTN_SCALE_LOG) snprintf(txt[i], 16, "%s", lg[i]);
        else snprintf(txt[i], 16, "%g", t[i]);
    }
}

static const char *bar_title(const attn_figure *f, int div) {
    if (div) return "difference";
    return f->scale == ATTN_SCALE_ROW ? "/ row max" : f->scale == ATTN_SCALE_LOG ? "log10" : "attention";
}
// The legend of masked cells: the future, and outside a sliding window when a panel has one.
static const char *legend_text(const attn_figure *f) {
    for (int i = 0; i < f->rows * f->cols; i++)
        if (f->panels[i].window) return "masked (future, outside the window)";
    return "masked (future)";
}
#define NAN_TEXT "non-finite (NaN/inf)"

// The figure checked; which kinds of panel it has, any non-finite cell, the
// diverging panels' range.
static int layout_scan(const attn_figure *f, layout *L) {
    if (f->T < 1 || f->rows < 1 || f->cols < 1 || !f->panels || f->T > (1 << 20) ||
        f->rows > 256 || f->cols > 256 || (unsigned)f->scale > ATTN_SCALE_LOG)
        return attn_err(ATTN_EINPUT, "render: bad figure (T=%d, %d x %d panels)", f->T, f->rows,
                        f->cols);
    int T = f->T;
    float dmax = 0;
    for (int i = 0; i < f->rows * f->cols; i++) {
        const attn_panel *p = &f->panels[i];
        if (!p->p) continue;
        for (size_t k = 0; k < (size_t)T * T && !L->has_nan; k++) L->has_nan = !isfinite(p->p[k]);
        if (!p->diverging) { L->has_seq = 1; continue; }
        L->has_div = 1;
        for (size_t k = 0; k < (size_t)T * T; k++)
            if (fabsf(p->p[k]) > dmax && isfinite(p->p[k])) dmax = fabsf(p->p[k]);
    }
    L->dmax = f->dmax > 0 ? f->dmax : dmax > 0 ? dmax : 1e-6f;
    return 0;
}

// The note lines under the title: the caller's, then the scales.
static void layout_notes(const attn_figure *f, layout *L) {
    for (const char *s = f->note; s && *s;) {
        const char *e = strchr(s, '\n');
        int len = e ? (int)(e - s) : (int)strlen(s);
        add_note(L, "%.*s", len, s);
        s += len + (e != NULL);
    }
    if (L->has_seq) add_note(L, "%s", scale_names[f->scale]);
    if (L->has_div)
        add_note(L, "difference: diverging colours, symmetric scale -%.3g..+%.3g", L->dmax, L->dmax);
    if (f->drop_first) add_note(L, "--drop-first: first key column removed, rows renormalised");
}

// Room around the panel matrix, pixels.
typedef struct { int lab_w, bar_col, left, right, bottom, title_h, heads_h; } margins;

static void layout_margins(const attn_figure *f, layout *L, margins *m) {
    int ts = L->ts, line = LINE_H * ts, rowhead_w = 0, tick_w = 0;
    L->lab_chars = f->rows * f->cols == 1 ? 16 : 10;
    m->lab_w = 0;
    for (int i = 0; i < f->T; i++) {
        char s[128];
        label_text(f, i, L->lab_chars, L->pos_labels, s, sizeof s);
        int w = attn_text_width(s, 1);
        if (w > m->lab_w) m->lab_w = w;
    }
    for (int r = 0; f->row_names && r < f->rows; r++) {
        int w = attn_text_width(f->row_names[r] ? f->row_names[r] : "", ts) + 8 * ts;
        if (w > rowhead_w) rowhead_w = w;
    }
    for (int d = 0; d < 2; d++) {
        float t[5];
        char txt[5][16];
        bar_ticks(f, d, L->dmax, t, txt);
        for (int i = 0; i < 5; i++)
            if (attn_text_width(txt[i], ts) > tick_w) tick_w = attn_text_width(txt[i], ts);
    }
    L->bar_w = BAR_W * ts;
    int bar_t = attn_text_width("difference", ts) + 10;
    m->bar_col = L->bar_w + 10 + tick_w + 16;
    if (m->bar_col < bar_t) m->bar_col = bar_t;
    m->right = 24 + (L->has_seq + L->has_div) * m->bar_col;
    int legend_w = 24 + 18 * ts + attn_text_width(NAN_TEXT, ts);
    if (f->causal && legend_w < 24 + 18 * ts + attn_text_width(legend_text(f), ts))
        legend_w = 24 + 18 * ts + attn_text_width(legend_text(f), ts);
    if ((f->causal || L->has_nan) && m->right < legend_w) m->right = legend_w;
    m->right += MARGIN;
    m->left = MARGIN + line + 8 + rowhead_w + m->lab_w + 6;
    m->bottom = 6 + m->lab_w + 8 + line + MARGIN;
    m->title_h = BOX_H * (ts + 1) + 8;
    m->heads_h = f->col_names ? line + 4 : 0;
    if (m->heads_h < line + line / 2 + 6) m->heads_h = line + line / 2 + 6; // room for the colorbar titles
    L->gap = f->rows * f->cols == 1 ? 0 : f->col_names || f->row_names ? 12 : 8;
}

// Cell size: a comfortable panel, every label of a short single map, and
// never more than the picture allows (then several tokens per cell). Two
// notes may follow from it, so their room is kept.
static int layout_cells(const attn_figure *f, layout *L, const margins *m) {
    int T = f->T, single = f->rows * f->cols == 1, line = LINE_H * L->ts;
    int top = MARGIN + m->title_h + (L->n_notes + 2) * line + 8 + m->heads_h;
    int fit_w = (MAX_PX - m->left - m->right - (f->cols - 1) * L->gap) / f->cols;
    int fit_h = (MAX_PX - top - m->bottom - (f->rows - 1) * L->gap) / f->rows;
    int fit = fit_w < fit_h ? fit_w : fit_h;
    if (fit < 8)
        return attn_err(ATTN_EINPUT, "render: %d x %d panels do not fit in %d pixels", f->rows,
                        f->cols, MAX_PX);
    int target = single ? 720 : 1800 / (f->rows > f->cols ? f->rows : f->cols);
    if (target < 64) target = 64;
    int cell = target / T;
    if (cell > 48) cell = 48;
    if (single && T <= 96 && cell < LINE_H) cell = LINE_H;
    if (cell < 1) cell = 1;
    L->tpc = 1;
    if (cell * T > fit) {
        cell = fit / T;
        if (cell < 1) cell = 1, L->tpc = (T + fit - 1) / fit;
    }
    L->cell = cell;
    L->n = (T + L->tpc - 1) / L->tpc;
    L->panel = L->n * cell;
    L->stride = nice_stride(LINE_H * (double)L->tpc / cell);
    if (L->stride > 1) add_note(L, "labels: every %d%s token", L->stride, L->stride == 2 ? "nd" : "th");
    if (L->tpc > 1)
        add_note(L, "%d x %d tokens per cell, drawn with the block's largest value", L->tpc, L->tpc);
    return 0;
}

// Where everything goes, and the picture's size.
static int layout_place(const attn_figure *f, layout *L, const margins *m) {
    int ts = L->ts, line = LINE_H * ts, left = m->left;
    int top = MARGIN + m->title_h + L->n_notes * line + 8 + m->heads_h;
    L->dx = L->dy = L->panel + L->gap;
    L->mat_w = f->cols * L->panel + (f->cols - 1) * L->gap;
    L->mat_h = f->rows * L->panel + (f->rows - 1) * L->gap;
    L->note_y = MARGIN + m->title_h;
    L->x0 = left;
    L->y0 = top;
    L->colhead_y = L->heads_rot ? top - 6 : top - line - 2; // (upright: where each heading starts)
    L->ylab_r = left - 6;
    L->rowhead_r = left - 6 - m->lab_w - 8;
    L->xlab_y = top + L->mat_h + 6;
    L->xtitle_y = L->xlab_y + m->lab_w + 8;
    L->bar_x = left + L->mat_w + 24;
    L->bar_y = top;
    L->bar_h = L->mat_h < 120 ? 120 : L->mat_h > 400 * ts ? 400 * ts : L->mat_h;
    L->dbar_x = L->has_div ? L->bar_x + (L->has_seq ? m->bar_col : 0) : -1;
    L->legend_y = L->bar_y + L->bar_h + 16 * ts;
    L->w = left + L->mat_w + m->right;
    int tw = MARGIN * 2 + attn_text_width(f->title ? f->title : "", ts + 1);
    if (L->w < tw) L->w = tw;
    for (int i = 0; i < L->n_notes; i++)
        if (L->w < MARGIN * 2 + attn_text_width(L->notes[i], ts))
            L->w = MARGIN * 2 + attn_text_width(L->notes[i], ts);
    L->h = L->xtitle_y + line + MARGIN;
    int bar_end = L->legend_y + (f->causal ? line + 8 : 0) + (L->has_nan ? line + 8 : 0) + MARGIN;
    if (L->h < bar_end) L->h = bar_end;
    if (L->w > 4095) L->w = 4095; // a very long title or note is cut, the picture stays small
    if (L->h > 4095) return attn_err(ATTN_EINPUT, "render: the picture would be %d pixels tall", L->h);
    return 0;
}

static int layout_pass(const attn_figure *f, layout *L, int ts, int pos_labels) {
    memset(L, 0, sizeof *L);
    L->pos_labels = pos_labels;
    L->ts = ts;
    margins m;
    int rc = layout_scan(f, L);
    if (rc) return rc;
    layout_notes(f, L);
    layout_margins(f, L, &m);
    int n_notes = L->n_notes, wide = 0;
    rc = layout_cells(f, L, &m);
    for (int c = 0; f->col_names && c < f->cols; c++)
        if (f->col_names[c] && attn_text_width(f->col_names[c], ts) > wide) wide = attn_text_width(f->col_names[c], ts);
    if (!rc && wide + 4 > L->panel + L->gap) { // headings that would touch stand upright above their columns
        L->heads_rot = 1, L->n_notes = n_notes;
        if (m.heads_h < wide + wide / 4 + 8) m.heads_h = wide + wide / 4 + 8; // (an SVG viewer's font runs wider)
        rc = layout_cells(f, L, &m);
    }
    return rc ? rc : layout_place(f, L, &m);
}

static int layout_figure(const attn_figure *f, layout *L) {
    int rc = layout_pass(f, L, 1, 0);
    if (!rc && (L->mat_w > BIG_PX || L->mat_h > BIG_PX)) rc = layout_pass(f, L, 2, 0);
    if (!rc && L->stride > 1 && f->labels) rc = layout_pass(f, L, L->ts, 1);
    return rc;
}

// Colours of a panel's n x n cells (tpc x tpc tokens each: the largest value
// of the block, or for a difference the value of largest |v|); mask[i] = 1
// where every token of the block is above the diagonal of a causal figure
// (or, in a sliding-window panel, left of the window).
static void panel_cells(const attn_figure *f, const attn_panel *pn, float dmax, int tpc, int n,
                        uint8_t *rgb, uint8_t *mask) {
    int T = f->T;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            int q1 = (a + 1) * tpc < T ? (a + 1) * tpc : T, k1 = (b + 1) * tpc < T ? (b + 1) * tpc : T;
            float best = 0, bestabs = -1;
            int any = 0, bad = 0;
            for (int q = a * tpc; q < q1; q++) {
                if (f->rows_shown && !f->rows_shown[q]) continue;
                const float *row = pn->p + (size_t)q * T;
                float rmax = 0;
                if (f->scale == ATTN_SCALE_ROW && !pn->diverging)
                    for (int k = 0; k < T; k++) rmax = row[k] > rmax && isfinite(row[k]) ? row[k] : rmax;
                for (int k = b * tpc; k < k1; k++) {
                    if (f->causal && (k > q || (pn->window && k <= q - pn->window))) continue;
                    if (!isfinite(row[k])) bad = any = 1;
                    float v = pn->diverging ? row[k] / dmax : attn_scale_t(f->scale, row[k], rmax);
                    float av = pn->diverging ? fabsf(v) : v;
                    if (!any || av > bestabs) best = v, bestabs = av;
                    any = 1;
                }
            }
            size_t i = (size_t)a * n + b;
            mask[i] = !any;
            if (!any) memcpy(rgb + 3 * i, C_MASK, 3);
            else if (bad) memcpy(rgb + 3 * i, C_NAN, 3);
            else if (pn->diverging) attn_colormap_div(best, rgb + 3 * i);
            else attn_colormap(best, rgb + 3 * i);
        }
}

// ---------------------------------------------------------------- drawing
// One walk over the figure draws it on either canvas: the RGB raster (with
// our font) or SVG (real text). Text is placed by the top of its box (a
// rotated text: by the left), and by its start, middle or end along the line.
typedef struct { uint8_t *p; size_t n, cap; int oom; } membuf;
typedef struct {
    attn_image *im; // the raster, or NULL for SVG into sb
    membuf *sb;
} canvas;
enum { A_START, A_MIDDLE, A_END };

static void membuf_add(membuf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_printf(membuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) { membuf_add(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    membuf_add(b, big, (size_t)n);
    free(big);
}

// Text as XML character data: & < > " escaped, characters XML cannot carry
// (controls, invalid UTF-8) as U+FFFD.
static void sb_xml(membuf *b, const char *s) {
    while (*s) {
        const char *start = s;
        uint32_t c = utf8_next(&s);
        if (c == '&') membuf_add(b, "&amp;", 5);
        else if (c == '<') membuf_add(b, "&lt;", 4);
        else if (c == '>') membuf_add(b, "&gt;", 4);
        else if (c == '"') membuf_add(b, "&quot;", 6);
        else if (c == 0xFFFD || (c < 0x20 && c != '\t') || (c >= 0x7F && c < 0xA0) || c == 0xFFFE ||
                 c == 0xFFFF)
            membuf_add(b, "\xEF\xBF\xBD", 3);
        else membuf_add(b, start, (size_t)(s - start));
    }
}

static void png_sink(void *ctx, void *data, int n) { membuf_add(ctx, data, (size_t)n); }

int attn_png_encode(const attn_image *im, uint8_t **png, size_t *len) {
    membuf b = {0};
    pthread_once(&lut_once, lut_init);
    if (!stbi_write_png_to_func(png_sink, &b, im->w, im->h, 3, im->rgb, im->w * 3) || b.oom) {
        free(b.p);
        return attn_err(ATTN_EFAIL, "png: cannot encode a %d x %d picture", im->w, im->h);
    }
    *png = b.p, *len = b.n;
    return 0;
}

int attn_write_png(const char *path, const attn_image *im) {
    uint8_t *png;
    size_t n;
    int rc = attn_png_encode(im, &png, &n);
    if (rc) return rc;
    rc = attn_write_file(path, png, n);
    free(png);
    return rc;
}

// A w x h RGB raster as an SVG <image> stretched over (x, y, dw, dh), pixels kept sharp.
static void sb_image(membuf *b, int x, int y, int dw, int dh, const uint8_t *rgb, int w, int h) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    attn_image im = {.w = w, .h = h, .rgb = (uint8_t *)rgb};
    uint8_t *png;
    size_t n;
    if (attn_png_encode(&im, &png, &n)) { b->oom = 1; return; }
    sb_printf(b, "<image x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" preserveAspectRatio=\"none\" "
                 "style=\"image-rendering:pixelated;image-rendering:crisp-edges\" "
                 "href=\"data:image/png;base64,", x, y, dw, dh);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)png[i] << 16 | (i + 1 < n ? png[i + 1] << 8 : 0) | (i + 2 < n ? png[i + 2] : 0);
        char q[4] = {b64[v >> 18], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        membuf_add(b, q, 4);
    }
    sb_printf(b, "\"/>\n");
    free(png);
}

static void cv_text(canvas *cv, int x, int y, int anchor, int scale, int rot90, const uint8_t c[3],
                    const char *s) {
    if (cv->im) {
        int w = attn_text_width(s, scale), off = anchor == A_START ? 0 : anchor == A_MIDDLE ? w / 2 : w;
        if (rot90) attn_draw_text(cv->im, x, y + off, s, c, scale, 1);
        else attn_draw_text(cv->im, x - off, y, s, c, scale, 0);
        return;
    }
    static const char *const anchors[] = {"start", "middle", "end"};
    int bx = rot90 ? x + 9 * scale : x, by = rot90 ? y : y + 9 * scale; // the baseline
    sb_printf(cv->sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" fill=\"#%02x%02x%02x\"", bx, by,
              anchors[anchor], c[0], c[1], c[2]);
    if (scale != 1) sb_printf(cv->sb, " font-size=\"%d\"", 10 * scale);
    if (rot90) sb_printf(cv->sb, " transform=\"rotate(-90 %d %d)\"", bx, by);
    sb_printf(cv->sb, ">");
    sb_xml(cv->sb, s);
    sb_printf(cv->sb, "</text>\n");
}

static void cv_rect(canvas *cv, int x, int y, int w, int h, const uint8_t c[3]) {
    if (cv->im) fill(cv->im, x, y, w, h, c);
    else sb_printf(cv->sb, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n",
                   x, y, w, h, c[0], c[1], c[2]);
}

// A grey outline just outside the box (x, y, w, h).
static void cv_frame(canvas *cv, int x, int y, int w, int h) {
    if (cv->im) frame(cv->im, x - 1, y - 1, w + 2, h + 2, C_FRAME);
    else sb_printf(cv->sb, "<rect x=\"%d.5\" y=\"%d.5\" width=\"%d\" height=\"%d\" fill=\"none\" "
                           "stroke=\"#787878\"/>\n", x - 1, y - 1, w + 1, h + 1);
}

static void cv_swatch(canvas *cv, int x, int y, int w, int h) {
    if (cv->im) hatch(cv->im, x, y, w, h);
    else sb_printf(cv->sb, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"url(#hatch)\"/>\n",
                   x, y, w, h);
}

// A panel's n x n cells at (x, y); masked cells hatched.
static void cv_cells(canvas *cv, int x, int y, const layout *L, const uint8_t *rgb, const uint8_t *mask) {
    int n = L->n, s = L->cell;
    if (cv->im) {
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                size_t i = (size_t)a * n + b;
                if (mask[i]) hatch(cv->im, x + b * s, y + a * s, s, s);
                else fill(cv->im, x + b * s, y + a * s, s, s, rgb + 3 * i);
            }
        return;
    }
    sb_image(cv->sb, x, y, L->panel, L->panel, rgb, n, n);
    if (n > 1 && mask[1]) { // causal: hatch the staircase above the diagonal
        sb_printf(cv->sb, "<path fill=\"url(#hatch)\" d=\"M%d %dH%dV%d", x + s, y, x + n * s, y + (n - 1) * s);
        for (int j = n - 1; j >= 1; j--) sb_printf(cv->sb, "H%dV%d", x + j * s, y + (j - 1) * s);
        sb_printf(cv->sb, "Z\"/>\n");
    }
    for (int a = 1; a < n; a++) { // sliding window: the masked cells left of each row's window
        int m = 0;
        while (m < a && mask[(size_t)a * n + m]) m++;
        if (m) sb_printf(cv->sb, "<rect fill=\"url(#hatch)\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n",
                         x, y + a * s, m * s, s);
    }
}

// A colorbar, largest value at the top.
static void cv_bar(canvas *cv, int x, int y, int w, int h, int div) {
    int n = cv->im ? h : 256;
    uint8_t *rgb = malloc((size_t)n * 3);
    if (!rgb) return;
    for (int i = 0; i < n; i++) {
        float u = 1 - i / (float)(n - 1);
        if (div) attn_colormap_div(2 * u - 1, rgb + 3 * i); else attn_colormap(u, rgb + 3 * i);
    }
    if (cv->im) for (int i = 0; i < h; i++) fill(cv->im, x, y + i, w, 1, rgb + 3 * i);
    else sb_image(cv->sb, x, y, w, h, rgb, 1, n);
    free(rgb);
}

// Each cell's value in it, two decimals ("0.52"), dark on light cells and
// white on dark ones; only when "0.00" fits a cell with 3 pixels on each side
// (then in every cell) and each cell holds one token.
static void cv_annot(canvas *cv, const attn_figure *f, const attn_panel *pn, int x, int y, const layout *L,
                     const uint8_t *rgb, const uint8_t *mask) {
    static const uint8_t white[3] = {255, 255, 255};
    int s = L->cell;
    if (L->tpc != 1 || s < LINE_H + 2 || attn_text_width("0.00", 1) > s - 6) return;
    for (int a = 0; a < L->n; a++)
        for (int b = 0; b < L->n; b++) {
            size_t i = (size_t)a * L->n + b;
            if (mask[i]) continue;
            char t[16];
            snprintf(t, sizeof t, "%.2f", pn->p[(size_t)a * f->T + b]);
            const uint8_t *c = rgb + 3 * i;
            int light = 299 * c[0] + 587 * c[1] + 114 * c[2] > 128000;
            cv_text(cv, x + b * s + s / 2, y + a * s + (s - LINE_H) / 2 + 1, A_MIDDLE, 1, 0, light ? C_INK : white, t);
        }
}

static void draw_figure(canvas *cv, const attn_figure *f, const layout *L, uint8_t *cells, uint8_t *mask) {
    int ts = L->ts, line = LINE_H * ts;
    double ppt = L->cell / (double)L->tpc; // pixels per token
    if (f->title) cv_text(cv, MARGIN, MARGIN, A_START, ts + 1, 0, C_INK, f->title);
    for (int i = 0; i < L->n_notes; i++)
        cv_text(cv, MARGIN, L->note_y + i * line, A_START, ts, 0, C_NOTE, L->notes[i]);
    for (int r = 0; r < f->rows; r++)
        for (int c = 0; c < f->cols; c++) {
            const attn_panel *pn = &f->panels[r * f->cols + c];
            int px = L->x0 + c * L->dx, py = L->y0 + r * L->dy;
            if (r == 0 && f->col_names && f->col_names[c] && L->heads_rot)
                cv_text(cv, px + L->panel / 2 - 6 * ts, L->colhead_y, A_START, ts, 1, C_INK, f->col_names[c]);
            else if (r == 0 && f->col_names && f->col_names[c])
                cv_text(cv, px + L->panel / 2, L->colhead_y, A_MIDDLE, ts, 0, C_INK, f->col_names[c]);
            if (c == 0 && f->row_names && f->row_names[r])
                cv_text(cv, L->rowhead_r, py + (L->panel - line) / 2, A_END, ts, 0, C_INK, f->row_names[r]);
            cv_frame(cv, px, py, L->panel, L->panel);
            if (!pn->p) continue;
            panel_cells(f, pn, L->dmax, L->tpc, L->n, cells, mask);
            cv_cells(cv, px, py, L, cells, mask);
            if (f->annot) cv_annot(cv, f, pn, px, py, L, cells, mask);
            for (int k = 0; k < f->T; k += L->stride) {
                char s[128];
                label_text(f, k, L->lab_chars, L->pos_labels, s, sizeof s);
                int mid = (int)((k + 0.5) * ppt);
                if (c == 0) cv_text(cv, L->ylab_r, py + mid - 6, A_END, 1, 0, C_INK, s);
                if (r == f->rows - 1) cv_text(cv, px + mid - 6, L->xlab_y, A_END, 1, 1, C_INK, s);
            }
        }
    cv_text(cv, L->x0 + L->mat_w / 2, L->xtitle_y, A_MIDDLE, ts, 0, C_INK, "attended to");
    cv_text(cv, MARGIN, L->y0 + L->mat_h / 2, A_MIDDLE, ts, 1, C_INK, "from position");
    for (int div = 0; div < 2; div++) {
        if (!(div ? L->has_div : L->has_seq)) continue;
        int x = div ? L->dbar_x : L->bar_x;
        float t[5];
        char txt[5][16];
        cv_bar(cv, x, L->bar_y, L->bar_w, L->bar_h, div);
        cv_frame(cv, x, L->bar_y, L->bar_w, L->bar_h);
        bar_ticks(f, div, L->dmax, t, txt);
        for (int i = 0; i < 5; i++) {
            int y = L->bar_y + (int)lrintf((1 - t[i]) * (L->bar_h - 1));
            cv_rect(cv, x + L->bar_w, y, 4, 1, C_INK);
            cv_text(cv, x + L->bar_w + 7, y - line / 2, A_START, ts, 0, C_INK, txt[i]);
        }
        cv_text(cv, x, L->bar_y - line - line / 2 - 2, A_START, ts, 0, C_INK, bar_title(f, div));
    }
    if (f->causal) {
        cv_swatch(cv, L->bar_x, L->legend_y, 12 * ts, 12 * ts);
        cv_frame(cv, L->bar_x, L->legend_y, 12 * ts, 12 * ts);
        cv_text(cv, L->bar_x + 18 * ts, L->legend_y, A_START, ts, 0, C_INK, legend_text(f));
    }
    if (L->has_nan) {
        int y = L->legend_y + (f->causal ? line + 8 : 0);
        cv_rect(cv, L->bar_x, y, 12 * ts, 12 * ts, C_NAN);
        cv_frame(cv, L->bar_x, y, 12 * ts, 12 * ts);
        cv_text(cv, L->bar_x + 18 * ts, y, A_START, ts, 0, C_INK, NAN_TEXT);
    }
}

int attn_render_image(const attn_figure *f, attn_image *out) {
    layout L;
    memset(out, 0, sizeof *out);
    int rc = layout_figure(f, &L);
    if (rc) return rc;
    attn_image im = {.w = L.w, .h = L.h};
    size_t nn = (size_t)L.n * L.n;
    im.rgb = malloc((size_t)L.w * L.h * 3);
    uint8_t *cells = malloc(nn * 3), *mask = malloc(nn);
    if (!im.rgb || !cells || !mask) {
        free(im.rgb), free(cells), free(mask);
        return attn_err(ATTN_EFAIL, "render: out of memory for a %d x %d picture", L.w, L.h);
    }
    memset(im.rgb, 255, (size_t)L.w * L.h * 3);
    canvas cv = {.im = &im};
    draw_figure(&cv, f, &L, cells, mask);
    free(cells), free(mask);
    im.x0 = L.x0, im.y0 = L.y0, im.dx = L.dx, im.dy = L.dy, im.cell = L.cell, im.tpc = L.tpc;
    im.label_stride = L.stride;
    im.bar_x = L.has_seq ? L.bar_x : -1, im.bar_y = L.bar_y, im.bar_w = L.bar_w, im.bar_h = L.bar_h;
    im.dbar_x = L.dbar_x;
    *out = im;
    return 0;
}

int attn_render_svg(const attn_figure *f, char **svg, size_t *len) {
    layout L;
    int rc = layout_figure(f, &L);
    if (rc) return rc;
    size_t nn = (size_t)L.n * L.n;
    uint8_t *cells = malloc(nn * 3), *mask = malloc(nn);
    membuf b = {0};
    if (!cells || !mask) b.oom = 1;
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                  "font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"10\">\n"
                  "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
                  "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#d6d6d6\"/>"
                  "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#969696\" stroke-width=\"1.5\"/>"
                  "</pattern></defs>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              L.w, L.h, L.w, L.h);
    if (!b.oom) {
        canvas cv = {.sb = &b};
        draw_figure(&cv, f, &L, cells, mask);
    }
    sb_printf(&b, "</svg>\n");
    free(cells), free(mask);
    if (b.oom) {
        free(b.p);
        return attn_err(ATTN_EFAIL, "svg: out of memory");
    }
    *svg = (char *)b.p, *len = b.n;
    return 0;
}

// ---------------------------------------------------------------- terminal
// Each cell is two spaces on a 24-bit background colour (one when the prompt
// is long), masked cells a grey shade character; labels are written down the
// columns above the map when cells are two wide.
#define TERM_MAX_CELLS 160

// Terminal: the labels down the columns, one character per 2-wide cell.
static void term_col_labels(membuf *b, const attn_figure *f, int n) {
    char lab[128];
    for (int line = 0; line < 8; line++) {
        int any = 0;
        membuf row = {0};
        sb_printf(&row, "%12s ", "");
        for (int k = 0; k < n; k++) {
            label_text(f, k, 8, 0, lab, sizeof lab);
            const char *s = lab;
            for (int j = 0; j < line && *s; j++) utf8_next(&s);
            if (*s) {
                const char *st = s;
                uint32_t cp = utf8_next(&s);
                membuf_add(&row, st, (size_t)(s - st));
                if (cp < 0x1100) membuf_add(&row, " ", 1); // wide characters fill the cell
                any = 1;
            } else membuf_add(&row, "  ", 2);
        }
        if (any) sb_printf(b, "%s\n", row.p);
        free(row.p);
        if (!any) break;
    }
}

// Terminal: the colorbars, left to right, and the legend.
static void term_bars(membuf *b, const attn_figure *f, const layout *L) {
    for (int div = 0; div < 2; div++) {
        if (!(div ? L->has_div : L->has_seq)) continue;
        float t[5];
        char txt[5][16];
        bar_ticks(f, div, L->dmax, t, txt);
        sb_printf(b, "%12s %s ", bar_title(f, div), txt[0]);
        for (int i = 0; i < 32; i++) {
            uint8_t col[3];
            if (div) attn_colormap_div(i / 15.5f - 1, col); else attn_colormap(i / 31.0f, col);
            sb_printf(b, "\x1b[48;2;%d;%d;%dm ", col[0], col[1], col[2]);
        }
        sb_printf(b, "\x1b[0m %s\n", txt[4]);
    }
    if (f->causal) sb_printf(b, "%12s \x1b[38;2;150;150;150m\xE2\x96\x91\xE2\x96\x91\x1b[0m %s\n", "", legend_text(f));
    if (L->has_nan)
        sb_printf(b, "%12s \x1b[48;2;%d;%d;%dm  \x1b[0m %s\n", "", C_NAN[0], C_NAN[1], C_NAN[2], NAN_TEXT);
}

int attn_render_term(const attn_figure *f, char **text, size_t *len) {
    layout L;
    int rc = layout_figure(f, &L); // for dmax and the notes
    if (rc) return rc;
    int tpc = (f->T + TERM_MAX_CELLS - 1) / TERM_MAX_CELLS, n = (f->T + tpc - 1) / tpc;
    int cw = n <= 64 ? 2 : 1;
    uint8_t *cells = malloc((size_t)n * n * 3), *mask = malloc((size_t)n * n);
    membuf b = {0};
    if (!cells || !mask) b.oom = 1;
    if (f->title) sb_printf(&b, "\x1b[1m%s\x1b[0m\n", f->title);
    for (int i = 0; i < L.n_notes; i++)
        if (!strstr(L.notes[i], "labels: every") && !strstr(L.notes[i], "tokens per cell"))
            sb_printf(&b, "%s\n", L.notes[i]);
    if (tpc > 1) sb_printf(&b, "%d x %d tokens per cell, drawn with the block's largest value\n", tpc, tpc);
    for (int pi = 0; pi < f->rows * f->cols && !b.oom; pi++) {
        const attn_panel *pn = &f->panels[pi];
        int r = pi / f->cols, c = pi % f->cols;
        if (!pn->p) continue;
        const char *rn = f->row_names ? f->row_names[r] : NULL, *cn = f->col_names ? f->col_names[c] : NULL;
        if (rn || cn) sb_printf(&b, "\n\x1b[1m%s%s%s\x1b[0m\n", rn ? rn : "", rn && cn ? "  " : "", cn ? cn : "");
        panel_cells(f, pn, L.dmax, tpc, n, cells, mask);
        char lab[128];
        if (cw == 2 && tpc == 1) term_col_labels(&b, f, n);
        for (int a = 0; a < n; a++) {
            label_text(f, a * tpc, 12, tpc > 1, lab, sizeof lab);
            int pad = 12;
            for (const char *s = lab; *s; utf8_next(&s)) pad--;
            sb_printf(&b, "%*s%s ", pad > 0 ? pad : 0, "", lab);
            for (int k = 0; k < n; k++) {
                size_t i = (size_t)a * n + k;
                if (mask[i]) sb_printf(&b, "\x1b[0;38;2;150;150;150m%s", cw == 2 ? "\xE2\x96\x91\xE2\x96\x91" : "\xE2\x96\x91");
                else sb_printf(&b, "\x1b[48;2;%d;%d;%dm%s", cells[3 * i], cells[3 * i + 1], cells[3 * i + 2], cw == 2 ? "  " : " ");
            }
            sb_printf(&b, "\x1b[0m\n");
        }
    }
    term_bars(&b, f, &L);
    free(cells), free(mask);
    if (b.oom) {
        free(b.p);
        return attn_err(ATTN_EFAIL, "term: out of memory");
    }
    *text = (char *)b.p, *len = b.n;
    return 0;
}

// ---------------------------------------------------------------- lens picture

#define LENS_M 16      // margin, pixels
#define LENS_BAR 16    // colorbar width
#define LENS_LAB 14    // code points at most in an axis label
#define LENS_TXT 11    // text box height of the font

// s cut (at code points) to at most max code points and maxw pixels, into out.
static void fit_label(const char *s, int max, int maxw, char *out, size_t n) {
    size_t len = 0;
    int cps = 0;
    for (const char *p = s; *p && cps < max && len + 5 < n;) {
        size_t c = 1;
        while ((p[c] & 0xC0) == 0x80) c++;
        memcpy(out + len, p, c);
        out[len + c] = 0;
        if (attn_text_width(out, 1) > maxw) break;
        len += c;
        p += c;
        cps++;
    }
    out[len] = 0;
}

typedef struct {
    int R, T;          // rows (embeddings + layers), positions
    char **in, **fin;  // [T] labels of the input and the finally chosen tokens
    char **top;        // [R*T] label of each cell's top token
    const char *note, *note2;
    int cw, ch, text;  // cell size, pixels; 1: text in the cells
    int step, lab_h;   // label every step-th column; rotated label height
    int x0, y0, gw, gh; // grid origin and size
} lens_layout;

// The three sets of token labels of the picture.
static int lens_labels(const attn_lens *l, const attn_tokenizer *tok, const int32_t *ids, lens_layout *L) {
    int R = L->R, T = L->T, k = l->k;
    int32_t *top1 = malloc((size_t)R * T * sizeof *top1);
    if (!top1) return attn_err(ATTN_EFAIL, "lens picture: out of memory");
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) top1[(size_t)r * T + t] = l->top_id[((size_t)r * T + t) * k];
    int rc = attn_token_labels(tok, ids, T, &L->in);
    if (!rc) rc = attn_token_labels(tok, l->final_id, T, &L->fin);
    if (!rc) rc = attn_token_labels(tok, top1, R * T, &L->top);
    free(top1);
    return rc;
}

// Cell size, label sizes, grid origin and the picture's size (*w, *h).
static void lens_layout_of(const attn_lens *l, const char *title, lens_layout *L, int *w, int *h) {
    int R = L->R, T = L->T;
    // cells wide enough for a short token where the picture allows (< 4000 px)
    L->cw = 3600 / T, L->ch = 18;
    if (L->cw > 48) L->cw = 48;
    if (L->cw < 2) L->cw = 2;
    L->text = L->cw >= 20;
    int name_w = attn_text_width("emb", 1);
    for (int r = 1; r < R; r++) {
        char b[16];
        snprintf(b, sizeof b, "L%d", r - 1);
        if (attn_text_width(b, 1) > name_w) name_w = attn_text_width(b, 1);
    }
    L->step = L->cw >= 12 ? 1 : (12 + L->cw - 1) / L->cw;
    L->lab_h = 0; // rotated labels: the longest, cut to LENS_LAB code points
    char b[64];
    for (int t = 0; t < T; t += L->step)
        for (int s = 0; s < 2; s++) {
            fit_label(s ? L->fin[t] : L->in[t], LENS_LAB, 1 << 20, b, sizeof b);
            if (attn_text_width(b, 1) > L->lab_h) L->lab_h = attn_text_width(b, 1);
        }
    L->lab_h += 4;
    L->note = "row: residual stream after that layer (emb = embeddings) -> final norm -> unembedding;";
    int bad = 0; // non-finite probabilities: magenta cells, said in the note
    for (int i = 0; i < R * T; i++) bad |= !isfinite(l->final_prob[i]);
    L->note2 = bad ? "colour: probability of the token the model finally ranks first (above the columns), "
                     "fixed 0..1, magenta = non-finite (NaN/inf); cell text: top token there"
                   : "colour: probability of the token the model finally ranks first (above the columns), "
                     "fixed 0..1; cell text: top token there";
    L->x0 = LENS_M + name_w + 6, L->y0 = LENS_M + 2 * LENS_TXT + 6 + 2 * (LENS_TXT + 2) + 6 + L->lab_h;
    L->gw = T * L->cw, L->gh = R * L->ch;
    *w = L->x0 + L->gw + 12 + LENS_BAR + 6 + attn_text_width("0.75", 1) + LENS_M;
    int nw = attn_text_width(L->note2, 1) + 2 * LENS_M, tw = attn_text_width(title ? title : "", 2) + 2 * LENS_M;
    if (*w < nw) *w = nw;
    if (*w < tw) *w = tw;
    *h = L->y0 + L->gh + 6 + L->lab_h + LENS_M;
}

// One row per lens row (the embeddings at the bottom): its name, then the cells.
static void lens_cells(attn_image *im, const attn_lens *l, const lens_layout *L) {
    static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
    int T = L->T, ch = L->ch, cw = L->cw;
    char b[64];
    for (int r = 0; r < L->R; r++) {
        int yy = L->y0 + (L->R - 1 - r) * ch;
        if (r == 0) snprintf(b, sizeof b, "emb");
        else snprintf(b, sizeof b, "L%d", r - 1);
        attn_draw_text(im, L->x0 - 6 - attn_text_width(b, 1), yy + (ch - LENS_TXT) / 2, b, black, 1, 0);
        for (int t = 0; t < T; t++) {
            float p = l->final_prob[(size_t)r * T + t];
            uint8_t c[3];
            attn_colormap(p, c);
            fill(im, L->x0 + t * cw, yy, cw, ch, c);
            if (L->text) {
                fit_label(L->top[(size_t)r * T + t], LENS_LAB, cw - 3, b, sizeof b);
                attn_draw_text(im, L->x0 + t * cw + 2, yy + (ch - LENS_TXT) / 2, b, p > 0.55f ? black : white, 1, 0);
            }
        }
    }
}

// Column labels: the finally chosen token above (reading upwards), the input
// token below; the colorbar 0..1 with ticks on the right.
static void lens_axes(attn_image *im, const lens_layout *L) {
    static const uint8_t black[3] = {0, 0, 0};
    char b[64];
    for (int t = 0; t < L->T; t += L->step) {
        int xx = L->x0 + t * L->cw + (L->cw - LENS_TXT) / 2;
        fit_label(L->fin[t], LENS_LAB, L->lab_h - 4, b, sizeof b);
        attn_draw_text(im, xx, L->y0 - 4, b, black, 1, 1);
        fit_label(L->in[t], LENS_LAB, L->lab_h - 4, b, sizeof b);
        attn_draw_text(im, xx, L->y0 + L->gh + 6 + attn_text_width(b, 1), b, black, 1, 1);
    }
    int bx = L->x0 + L->gw + 12, gh = L->gh;
    for (int j = 0; j < gh; j++) {
        uint8_t c[3];
        attn_colormap(1.0f - (float)j / (gh > 1 ? gh - 1 : 1), c);
        fill(im, bx, L->y0 + j, LENS_BAR, 1, c);
    }
    int n_ticks = gh >= 5 * (LENS_TXT + 2) ? 4 : gh >= 3 * (LENS_TXT + 2) ? 2 : 1;
    for (int i = 0; i <= n_ticks; i++) {
        int yy = L->y0 + (gh - 1) * (n_ticks - i) / n_ticks;
        fill(im, bx + LENS_BAR, yy, 3, 1, black);
        snprintf(b, sizeof b, "%g", (double)i / n_ticks);
        attn_draw_text(im, bx + LENS_BAR + 5, yy - LENS_TXT / 2, b, black, 1, 0);
    }
}

int attn_lens_image(const attn_lens *l, const attn_tokenizer *tok, const int32_t *ids, const char *title,
                    attn_image *out) {
    lens_layout L = {.R = l->n_layer + 1, .T = l->T};
    int rc = lens_labels(l, tok, ids, &L), w, h;
    if (rc) goto done;
    lens_layout_of(l, title, &L, &w, &h);
    attn_image im = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3)};
    if (!im.rgb) {
        rc = attn_err(ATTN_EFAIL, "lens picture: out of memory for %d x %d pixels", w, h);
        goto done;
    }
    static const uint8_t black[3] = {0, 0, 0}, grey[3] = {90, 90, 90};
    memset(im.rgb, 255, (size_t)w * h * 3);
    attn_draw_text(&im, LENS_M, LENS_M, title ? title : "logit lens", black, 2, 0);
    int y = LENS_M + 2 * LENS_TXT + 6;
    attn_draw_text(&im, LENS_M, y, L.note, grey, 1, 0);
    attn_draw_text(&im, LENS_M, y + LENS_TXT + 2, L.note2, grey, 1, 0);
    lens_cells(&im, l, &L);
    lens_axes(&im, &L);
    *out = im;
done:
    if (L.in) attn_labels_free(L.in, L.T);
    if (L.fin) attn_labels_free(L.fin, L.T);
    if (L.top) attn_labels_free(L.top, L.R * L.T);
    return rc;
}

// ---------------------------------------------------------------- grid picture
// attn_grid (attn.h): patching and attribution results.

// Longest text width of n labels (scale 1).
static int widest(char *const *s, int n) {
    int w = 0;
    for (int i = 0; i < n; i++)
        if (s[i] && attn_text_width(s[i], 1) > w) w = attn_text_width(s[i], 1);
    return w;
}

int attn_grid_image(const attn_grid *g, attn_image *out) {
    const int M = 12, TXT = 12, BAR = 16, cw = g->cols > 60 ? 12 : g->cols > 16 ? 24 : 44, ch = g->rows > 24 ? 18 : 28;
    float dmax = g->dmax;
    for (size_t i = 0; i < (size_t)g->rows * g->cols; i++)
        if (fabsf(g->v[i]) > dmax) dmax = fabsf(g->v[i]);
    if (!(dmax > 0)) dmax = 1;
    int name_w = widest(g->row_names, g->rows), lab_h = widest(g->col_names, g->cols) + 6;
    int x0 = M + name_w + 6, y0 = M + 2 * TXT + 8 + 2 * (TXT + 2) + 4;
    int gw = g->cols * cw, gh = g->rows * ch;
    char mark_lab[64];
    snprintf(mark_lab, sizeof mark_lab, "%g %s", g->mark, g->mark_name ? g->mark_name : "");
    int lab_w = attn_text_width("-0.000e+00", 1);
    if (g->mark == g->mark && attn_text_width(mark_lab, 1) > lab_w) lab_w = attn_text_width(mark_lab, 1);
    int w = x0 + gw + 16 + BAR + 8 + lab_w + M;
    int tw = attn_text_width(g->title, 2) + 2 * M, nw = attn_text_width(g->note ? g->note : "", 1) + 2 * M;
    if (w < tw) w = tw;
    if (w < nw) w = nw;
    int h = y0 + gh + lab_h + M;
    if (h < y0 + 200 + M) h = y0 + 200 + M;
    attn_image im = {0};
    im.w = w;
    im.h = h;
    if (!(im.rgb = malloc((size_t)w * h * 3))) return attn_err(ATTN_EFAIL, "picture: out of memory");
    memset(im.rgb, 255, (size_t)w * h * 3);
    static const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255}, grey[3] = {90, 90, 90},
                         nan_c[3] = {200, 200, 200};
    attn_draw_text(&im, M, M, g->title, black, 2, 0);
    if (g->note) attn_draw_text(&im, M, M + 2 * TXT + 8, g->note, grey, 1, 0);
    for (int r = 0; r < g->rows; r++) {
        int y = y0 + r * ch;
        attn_draw_text(&im, x0 - 6 - attn_text_width(g->row_names[r], 1), y + (ch - TXT) / 2, g->row_names[r], black, 1, 0);
        for (int c = 0; c < g->cols; c++) {
            float v = g->v[(size_t)r * g->cols + c];
            uint8_t col[3];
            if (v == v) attn_colormap_div(v / dmax, col);
            fill(&im, x0 + c * cw, y, cw - 1, ch - 1, v == v ? col : nan_c);
            if (cw >= 44 && v == v) { // the value, when the cell has room
                char b[16];
                snprintf(b, sizeof b, "%.2f", fabsf(v) < 0.005f ? 0.0f : v); // no "-0.00"
                const uint8_t *tc = fabsf(v) > 0.6f * dmax ? white : black;
                attn_draw_text(&im, x0 + c * cw + (cw - attn_text_width(b, 1)) / 2, y + (ch - TXT) / 2, b, tc, 1, 0);
            }
        }
    }
    for (int c = 0; c < g->cols; c++) // column labels below, reading upwards
        attn_draw_text(&im, x0 + c * cw + (cw - TXT) / 2, y0 + gh + 4 + attn_text_width(g->col_names[c], 1),
                       g->col_names[c], black, 1, 1);
    // the colorbar: dmax at the top, -dmax at the bottom, 0 and g->mark labelled
    int bx = x0 + gw + 16, by = y0, bh = 200;
    for (int j = 0; j < bh; j++) {
        uint8_t col[3];
        attn_colormap_div(1 - 2.0f * j / (bh - 1), col);
        fill(&im, bx, by + j, BAR, 1, col);
    }
    float ticks[4] = { dmax, 0, -dmax, g->mark };
    for (int k = 0; k < (g->mark == g->mark && fabsf(g->mark) <= dmax ? 4 : 3); k++) {
        int y = by + (int)lroundf((1 - ticks[k] / dmax) / 2 * (bh - 1));
        char b[64];
        if (k == 3) snprintf(b, sizeof b, "%s", mark_lab);
        else snprintf(b, sizeof b, "%.3g", ticks[k]);
        fill(&im, bx - 3, y, BAR + 6, k == 3 ? 2 : 1, black);
        attn_draw_text(&im, bx + BAR + 6, y - TXT / 2, b, black, 1, 0);
    }
    *out = im;
    return 0;
}
